//! A fake Telegram Bot API server on loopback for integration tests and benchmarks.
//!
//! It answers the methods the bot uses, keeps each chat's bot messages in their current state
//! (after edits), records every call, queues updates that tests push, and can inject faults
//! (429 with `retry_after`, 403 "blocked by the user", 401 and 5xx on getMe, 5xx with
//! Telegram's HTTP status, a connection closed before anything was done, an answer delayed
//! past the client's timeout after the call took effect), and can start on a chosen port (to
//! bring "Telegram" up where the bot was already knocking). It never answers 5xx unless a test
//! injects it: teloxide sleeps 10 s on every 5xx. Include it with
//! `#[path = "support/fake_telegram.rs"] mod fake_telegram;`.
#![allow(dead_code)]

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::Router;
use serde_json::{json, Value};
use tokio::sync::{oneshot, Notify};

/// The fake bot's own user ID.
pub const BOT_ID: i64 = 999_000_001;

/// One recorded Bot API call.
#[derive(Debug, Clone)]
pub struct Call {
    /// Lowercased method name (`sendmessage`).
    pub method: String,
    /// The parameters (JSON body, or multipart text fields).
    pub params: Value,
    /// The chat it targeted, if any.
    pub chat_id: Option<i64>,
    pub at: Instant,
}

/// A bot message as it stands now.
#[derive(Debug, Clone)]
pub struct Sent {
    pub message_id: i64,
    /// Text, or the caption of a document or photo.
    pub text: String,
    pub reply_markup: Option<Value>,
    pub file_name: Option<String>,
    pub bytes: Option<Vec<u8>>,
    /// The `file_id` of a file sent by its ID (nothing uploaded), with the method's kind
    /// (`photo`, `document`, `video`, `voice`, `audio`).
    pub file_id: Option<(String, String)>,
}

impl Sent {
    /// `(label, callback_data)` of every inline button.
    pub fn buttons(&self) -> Vec<(String, String)> {
        let Some(rows) = self.reply_markup.as_ref().and_then(|m| m["inline_keyboard"].as_array()) else {
            return Vec::new();
        };
        rows.iter()
            .filter_map(|r| r.as_array())
            .flatten()
            .filter_map(|b| {
                Some((
                    b["text"].as_str()?.to_string(),
                    b["callback_data"].as_str()?.to_string(),
                ))
            })
            .collect()
    }

    /// The data of the first button whose label contains `label`.
    pub fn button_data(&self, label: &str) -> Option<String> {
        self.buttons()
            .into_iter()
            .find(|(l, _)| l.contains(label))
            .map(|(_, d)| d)
    }
}

/// A document pushed as if a user uploaded it.
#[derive(Debug, Clone)]
pub struct PushedDocument {
    pub message_id: i64,
    pub file_id: String,
}

/// A position in the call log.
#[derive(Debug, Clone, Copy)]
pub struct Mark(usize);

struct Fault {
    method: String,
    chat: Option<i64>,
    kind: FaultKind,
}

enum FaultKind {
    /// An error answer (HTTP status `code` for 429 and 5xx, as Telegram sends them).
    Fail {
        code: u16,
        description: String,
        retry_after: Option<u32>,
    },
    /// The connection breaks before the call is done: nothing happens, no answer arrives.
    Drop,
    /// The call is done, and its answer held back this long.
    Delay(Duration),
    /// The call is done, then the connection breaks (reset) before the answer is read.
    DoneThenBreak,
    /// The call is done, and its answer comes back garbled (cut JSON), as a proxy that drops
    /// the end of a body would deliver it.
    DoneThenGarble,
}

#[derive(Default)]
struct Inner {
    updates: Vec<(i64, Value)>,
    next_update: i64,
    calls: Vec<Call>,
    chats: HashMap<i64, Vec<Sent>>,
    next_mid: HashMap<i64, i64>,
    files: HashMap<String, Vec<u8>>,
    next_file: u64,
    faults: Vec<Fault>,
    blocked: HashSet<i64>,
    answers: HashMap<String, Value>,
    next_callback: u64,
    /// getMe answers this many more times, then rejects the token (401); `None`: never.
    get_me_ok_left: Option<usize>,
}

struct Shared {
    inner: Mutex<Inner>,
    /// Fired on every recorded call and every pushed update.
    changed: Notify,
    token: String,
    /// While set, every request is held unanswered (Telegram unreachable); see `pause`.
    paused: std::sync::atomic::AtomicBool,
    /// Fired when `resume` clears `paused`.
    resumed: Notify,
}

/// A running fake server; a cheap `Clone` handle.
#[derive(Clone)]
pub struct FakeTelegram {
    shared: Arc<Shared>,
    url: String,
    stop: Arc<Mutex<Option<oneshot::Sender<()>>>>,
}

fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(1)
}

fn user(id: i64, lang: &str) -> Value {
    json!({"id": id, "is_bot": false, "first_name": format!("User{id}"), "language_code": lang})
}

fn bot_user() -> Value {
    json!({"id": BOT_ID, "is_bot": true, "first_name": "tgwa", "username": "tgwa_test_bot"})
}

fn chat(id: i64) -> Value {
    if id < 0 {
        json!({"id": id, "type": "supergroup", "title": format!("Group{id}")})
    } else {
        json!({"id": id, "type": "private", "first_name": format!("User{id}")})
    }
}

fn ok(result: Value) -> Response {
    axum::Json(json!({"ok": true, "result": result})).into_response()
}

fn fail(code: u16, description: &str, retry_after: Option<u32>) -> Response {
    let mut body = json!({"ok": false, "error_code": code, "description": description});
    if let Some(r) = retry_after {
        body["parameters"] = json!({"retry_after": r});
    }
    // Telegram answers 429 and 5xx with that HTTP status; everything else the fake answers 200
    // (teloxide reads only the body, except that it sleeps 10 s on a 5xx status).
    let status = if code == 429 || code >= 500 {
        axum::http::StatusCode::from_u16(code).unwrap_or(axum::http::StatusCode::OK)
    } else {
        axum::http::StatusCode::OK
    };
    (status, axum::Json(body)).into_response()
}

/// Headers go out, then the body breaks off: the client sees a broken connection.
fn broken_response() -> Response {
    let stream =
        futures::stream::once(async { Err::<Bytes, std::io::Error>(std::io::Error::other("dropped by the test")) });
    Response::builder()
        .header("content-type", "application/json")
        .body(axum::body::Body::from_stream(stream))
        .unwrap_or_else(|_| fail(400, "Bad Request: fake", None))
}

/// Parses a multipart/form-data body into text fields and file parts.
/// A file part of a multipart body: field name, file name, bytes.
type FilePart = (String, Option<String>, Vec<u8>);

fn parse_multipart(content_type: &str, body: &[u8]) -> (Value, Vec<FilePart>) {
    let mut fields = serde_json::Map::new();
    let mut files = Vec::new();
    let Some(boundary) = content_type.split("boundary=").nth(1) else {
        return (Value::Object(fields), files);
    };
    let boundary = format!("--{}", boundary.trim_matches('"'));
    let b = boundary.as_bytes();
    let mut starts = Vec::new();
    let mut i = 0;
    while i + b.len() <= body.len() {
        if &body[i..i + b.len()] == b {
            starts.push(i);
            i += b.len();
        } else {
            i += 1;
        }
    }
    for w in starts.windows(2) {
        let part = &body[w[0] + b.len()..w[1]];
        let part = part.strip_prefix(b"\r\n").unwrap_or(part);
        let part = part.strip_suffix(b"\r\n").unwrap_or(part);
        let Some(split) = part.windows(4).position(|x| x == b"\r\n\r\n") else {
            continue;
        };
        let head = String::from_utf8_lossy(&part[..split]).to_string();
        let data = part[split + 4..].to_vec();
        let attr = |key: &str| {
            head.split(';')
                .map(str::trim)
                .find_map(|kv| kv.strip_prefix(&format!("{key}=")))
                .map(|v| v.trim_matches('"').to_string())
        };
        let Some(name) = attr("name") else { continue };
        match attr("filename") {
            Some(file_name) => files.push((name, Some(file_name), data)),
            None => {
                let text = String::from_utf8_lossy(&data).to_string();
                let v = serde_json::from_str::<Value>(&text)
                    .ok()
                    .filter(|v| v.is_object() || v.is_array())
                    .unwrap_or(Value::String(text));
                fields.insert(name, v);
            }
        }
    }
    (Value::Object(fields), files)
}

fn as_i64(v: &Value) -> Option<i64> {
    v.as_i64().or_else(|| v.as_str().and_then(|s| s.parse().ok()))
}

impl FakeTelegram {
    /// Starts a server on `127.0.0.1:0`.
    pub async fn start() -> Self {
        Self::start_on(0).await
    }

    /// Starts a server on `127.0.0.1:port` (a test that first points the bot at a closed port
    /// brings Telegram "back" there).
    pub async fn start_on(port: u16) -> Self {
        let shared = Arc::new(Shared {
            inner: Mutex::new(Inner {
                next_update: 1,
                ..Inner::default()
            }),
            changed: Notify::new(),
            token: "123456:TEST-TOKEN".into(),
            paused: std::sync::atomic::AtomicBool::new(false),
            resumed: Notify::new(),
        });
        let app = Router::new().route("/{*path}", any(handle)).with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .expect("bind fake telegram");
        let addr = listener.local_addr().expect("addr");
        let (tx, rx) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await;
        });
        Self {
            shared,
            url: format!("http://{addr}/"),
            stop: Arc::new(Mutex::new(Some(tx))),
        }
    }

    /// A port on loopback where nothing listens (bound, then released).
    pub fn closed_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port")
    }

    /// The base URL, for `TELEGRAM_API_URL`.
    pub fn url(&self) -> String {
        self.url.clone()
    }

    /// A token the fake accepts (it accepts any).
    pub fn token(&self) -> String {
        self.shared.token.clone()
    }

    /// A teloxide `Bot` pointed at the fake.
    pub fn bot(&self) -> teloxide::Bot {
        teloxide::Bot::new(self.token()).set_api_url(self.url.parse().expect("url"))
    }

    /// Stops the server.
    pub fn shutdown(&self) {
        if let Some(tx) = self.stop.lock().unwrap().take() {
            let _ = tx.send(());
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.shared.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn push_update(&self, body: Value) {
        let mut st = self.lock();
        let id = st.next_update;
        st.next_update += 1;
        let mut u = body;
        u["update_id"] = json!(id);
        st.updates.push((id, u));
        drop(st);
        self.shared.changed.notify_waiters();
    }

    fn next_mid(st: &mut Inner, chat: i64) -> i64 {
        let n = st.next_mid.entry(chat).or_insert(0);
        *n += 1;
        *n
    }

    fn command_entities(text: &str) -> Value {
        if text.starts_with('/') {
            let len = text
                .split_whitespace()
                .next()
                .map(|c| c.encode_utf16().count())
                .unwrap_or(0);
            json!([{"type": "bot_command", "offset": 0, "length": len}])
        } else {
            json!([])
        }
    }

    /// A private text message from `from`; returns its message ID.
    pub fn push_message(&self, from: i64, text: &str) -> i64 {
        self.push_message_lang(from, text, "id")
    }

    /// Like [`Self::push_message`] with the sender's Telegram language code.
    pub fn push_message_lang(&self, from: i64, text: &str, lang: &str) -> i64 {
        let mid = Self::next_mid(&mut self.lock(), from);
        self.push_update(json!({"message": {
            "message_id": mid, "date": now_unix(), "chat": chat(from), "from": user(from, lang),
            "text": text, "entities": Self::command_entities(text),
        }}));
        mid
    }

    /// A message in a group chat (`chat_id` negative).
    pub fn push_group_message(&self, chat_id: i64, from: i64, text: &str) -> i64 {
        let mid = Self::next_mid(&mut self.lock(), chat_id);
        self.push_update(json!({"message": {
            "message_id": mid, "date": now_unix(), "chat": chat(chat_id), "from": user(from, "id"),
            "text": text, "entities": Self::command_entities(text),
        }}));
        mid
    }

    /// A press of a button with `data` on message `message_id` of `from`'s chat; returns the
    /// callback query's ID.
    pub fn push_callback(&self, from: i64, message_id: i64, data: &str) -> String {
        let (id, message) = {
            let mut st = self.lock();
            st.next_callback += 1;
            let id = format!("cb{}", st.next_callback);
            let current = st
                .chats
                .get(&from)
                .and_then(|v| v.iter().find(|m| m.message_id == message_id))
                .cloned();
            let mut message = json!({
                "message_id": message_id, "date": now_unix(), "chat": chat(from), "from": bot_user(),
                "text": current.as_ref().map(|m| m.text.clone()).unwrap_or_else(|| "…".into()),
            });
            if let Some(markup) = current.and_then(|m| m.reply_markup) {
                message["reply_markup"] = markup;
            }
            (id, message)
        };
        self.push_update(json!({"callback_query": {
            "id": id, "from": user(from, "id"), "chat_instance": format!("ci{from}"),
            "data": data, "message": message,
        }}));
        id
    }

    /// The bot's message `message_id` in `from`'s chat, as Telegram nests it in a reply.
    fn replied(&self, from: i64, message_id: i64) -> Value {
        let st = self.lock();
        let current = st
            .chats
            .get(&from)
            .and_then(|v| v.iter().find(|m| m.message_id == message_id))
            .cloned();
        let mut m = json!({"message_id": message_id, "date": now_unix(), "chat": chat(from), "from": bot_user()});
        match current {
            Some(c) if c.file_name.is_some() => m["caption"] = json!(c.text),
            Some(c) => m["text"] = json!(c.text),
            None => m["text"] = json!("…"),
        }
        m
    }

    /// A text reply from `from` to the bot's message `reply_to` in their chat; returns its
    /// message ID.
    pub fn push_reply(&self, from: i64, reply_to: i64, text: &str) -> i64 {
        let replied = self.replied(from, reply_to);
        let mid = Self::next_mid(&mut self.lock(), from);
        self.push_update(json!({"message": {
            "message_id": mid, "date": now_unix(), "chat": chat(from), "from": user(from, "id"),
            "text": text, "reply_to_message": replied,
        }}));
        mid
    }

    /// A photo reply from `from` to the bot's message `reply_to`; the bot can fetch the photo
    /// with getFile. Returns the message ID.
    pub fn push_photo_reply(&self, from: i64, reply_to: i64, bytes: Vec<u8>, caption: &str) -> i64 {
        let replied = self.replied(from, reply_to);
        let (mid, file_id, size) = {
            let mut st = self.lock();
            st.next_file += 1;
            let file_id = format!("photo{}", st.next_file);
            let size = bytes.len();
            st.files.insert(file_id.clone(), bytes);
            (Self::next_mid(&mut st, from), file_id, size)
        };
        self.push_update(json!({"message": {
            "message_id": mid, "date": now_unix(), "chat": chat(from), "from": user(from, "id"),
            "photo": [{"file_id": file_id, "file_unique_id": format!("u{file_id}"), "file_size": size,
                       "width": 64, "height": 64}],
            "caption": caption, "reply_to_message": replied,
        }}));
        mid
    }

    /// A message carrying a file in `field` (`photo`, `document`, `video`, `voice` or
    /// `audio`) with `caption`, shaped as the Bot API's `Message` does it. The bot can fetch
    /// `bytes` with getFile; `announced` is the size Telegram states instead of their length
    /// (a file too large for a bot to download is announced and never stored). Returns the
    /// message ID.
    #[allow(clippy::too_many_arguments)]
    pub fn push_file(
        &self,
        from: i64,
        field: &str,
        file_name: &str,
        mime: &str,
        bytes: Vec<u8>,
        announced: Option<u64>,
        caption: &str,
    ) -> i64 {
        let (mid, file_id, size) = {
            let mut st = self.lock();
            st.next_file += 1;
            let file_id = format!("{field}{}", st.next_file);
            let size = announced.unwrap_or(bytes.len() as u64);
            if announced.is_none() {
                st.files.insert(file_id.clone(), bytes);
            }
            (Self::next_mid(&mut st, from), file_id, size)
        };
        let meta = json!({"file_id": file_id, "file_unique_id": format!("u{file_id}"), "file_size": size});
        let mut file = meta.clone();
        match field {
            "photo" => {
                file["width"] = json!(640);
                file["height"] = json!(480);
                file = json!([file]);
            }
            "video" => {
                file["width"] = json!(640);
                file["height"] = json!(480);
                file["duration"] = json!(3);
                file["file_name"] = json!(file_name);
                file["mime_type"] = json!(mime);
            }
            "voice" => {
                file["duration"] = json!(2);
                file["mime_type"] = json!(mime);
            }
            _ => {
                if field == "audio" {
                    file["duration"] = json!(5);
                }
                file["file_name"] = json!(file_name);
                file["mime_type"] = json!(mime);
            }
        }
        let mut message = json!({
            "message_id": mid, "date": now_unix(), "chat": chat(from), "from": user(from, "id"),
        });
        message[field] = file;
        if !caption.is_empty() {
            message["caption"] = json!(caption);
        }
        self.push_update(json!({"message": message}));
        mid
    }

    /// An uploaded document; the bot can fetch it with getFile and download it.
    pub fn push_document(&self, from: i64, file_name: &str, bytes: Vec<u8>, caption: Option<&str>) -> PushedDocument {
        let (mid, file_id, size) = {
            let mut st = self.lock();
            st.next_file += 1;
            let file_id = format!("doc{}", st.next_file);
            let size = bytes.len();
            st.files.insert(file_id.clone(), bytes);
            (Self::next_mid(&mut st, from), file_id, size)
        };
        let mut message = json!({
            "message_id": mid, "date": now_unix(), "chat": chat(from), "from": user(from, "id"),
            "document": {"file_id": file_id, "file_unique_id": format!("u{file_id}"), "file_size": size,
                         "file_name": file_name, "mime_type": "text/plain"},
        });
        if let Some(c) = caption {
            message["caption"] = json!(c);
        }
        self.push_update(json!({"message": message}));
        PushedDocument {
            message_id: mid,
            file_id,
        }
    }

    /// Every call so far.
    pub fn calls(&self) -> Vec<Call> {
        self.lock().calls.clone()
    }

    /// Whether a call of `method` (any case) was made at all.
    pub fn was_called(&self, method: &str) -> bool {
        let m = method.to_lowercase();
        self.lock().calls.iter().any(|c| c.method == m)
    }

    /// Calls of one method (any case).
    pub fn calls_of(&self, method: &str) -> Vec<Call> {
        let m = method.to_lowercase();
        self.lock().calls.iter().filter(|c| c.method == m).cloned().collect()
    }

    /// The current position in the call log.
    pub fn mark(&self) -> Mark {
        Mark(self.lock().calls.len())
    }

    /// Calls made after `mark`.
    pub fn calls_after(&self, mark: Mark) -> Vec<Call> {
        self.lock().calls[mark.0..].to_vec()
    }

    /// The bot's messages in `chat`, as they stand now.
    pub fn sent_to(&self, chat: i64) -> Vec<Sent> {
        self.lock().chats.get(&chat).cloned().unwrap_or_default()
    }

    /// The text of the bot's last message in `chat`.
    pub fn last_text_to(&self, chat: i64) -> Option<String> {
        self.sent_to(chat).last().map(|m| m.text.clone())
    }

    /// How the bot answered callback query `id`, if it did.
    pub fn callback_answer(&self, id: &str) -> Option<Value> {
        self.lock().answers.get(id).cloned()
    }

    /// Waits until `check` returns something, or panics after `timeout` with recent calls.
    async fn wait<T>(&self, timeout: Duration, what: &str, mut check: impl FnMut(&Inner) -> Option<T>) -> T {
        match self.try_wait(timeout, &mut check).await {
            Some(v) => v,
            None => {
                let recent: Vec<String> = self
                    .lock()
                    .calls
                    .iter()
                    .rev()
                    .take(15)
                    .map(|c| {
                        format!(
                            "{} chat={:?} {}",
                            c.method,
                            c.chat_id,
                            c.params.to_string().chars().take(300).collect::<String>()
                        )
                    })
                    .collect();
                panic!(
                    "timed out after {timeout:?} waiting for {what}; recent calls (newest first):\n{}",
                    recent.join("\n")
                );
            }
        }
    }

    async fn try_wait<T>(&self, timeout: Duration, check: &mut impl FnMut(&Inner) -> Option<T>) -> Option<T> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.shared.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(v) = check(&self.lock()) {
                return Some(v);
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return check(&self.lock());
            }
        }
    }

    fn text_match(st: &Inner, from: usize, chat: i64, needle: &str) -> Option<Sent> {
        Self::message_match(st, from, chat, |m| m.text.contains(needle))
    }

    fn message_match(st: &Inner, from: usize, chat: i64, pred: impl Fn(&Sent) -> bool) -> Option<Sent> {
        const SENDS: [&str; 9] = [
            "sendmessage",
            "editmessagetext",
            "senddocument",
            "sendphoto",
            "editmessagecaption",
            "editmessagemedia",
            "sendvideo",
            "sendvoice",
            "sendaudio",
        ];
        st.calls[from.min(st.calls.len())..]
            .iter()
            .filter(|c| c.chat_id == Some(chat) && SENDS.contains(&c.method.as_str()))
            .find_map(|c| {
                let mid = as_i64(&c.params["__message_id"])?;
                let m = st.chats.get(&chat)?.iter().find(|m| m.message_id == mid)?;
                pred(m).then(|| m.clone())
            })
    }

    /// Waits for a bot message (sent or edited, at any time) in `chat` containing `needle`.
    pub async fn wait_for_text_to(&self, chat: i64, needle: &str, timeout: Duration) -> Sent {
        self.wait(timeout, &format!("{needle:?} in chat {chat}"), |st| {
            Self::text_match(st, 0, chat, needle)
        })
        .await
    }

    /// Like [`Self::wait_for_text_to`], counting only calls after `mark`.
    pub async fn wait_for_text_to_after(&self, mark: Mark, chat: i64, needle: &str, timeout: Duration) -> Sent {
        self.wait(timeout, &format!("{needle:?} in chat {chat}"), |st| {
            Self::text_match(st, mark.0, chat, needle)
        })
        .await
    }

    /// Waits for a bot message in `chat`, sent or edited after `mark`, with a button whose
    /// label contains `label`.
    pub async fn wait_for_button_after(&self, mark: Mark, chat: i64, label: &str, timeout: Duration) -> Sent {
        self.wait(timeout, &format!("a button {label:?} in chat {chat}"), |st| {
            Self::message_match(st, mark.0, chat, |m| m.button_data(label).is_some())
        })
        .await
    }

    /// Waits for a call of `method` after `mark`.
    pub async fn wait_for_method_after(&self, mark: Mark, method: &str, timeout: Duration) -> Call {
        let m = method.to_lowercase();
        self.wait(timeout, &format!("a {m} call"), |st| {
            st.calls[mark.0..].iter().find(|c| c.method == m).cloned()
        })
        .await
    }

    /// Waits for a call after `mark` that satisfies `pred`; `None` on timeout.
    pub async fn try_wait_for_after(
        &self,
        mark: Mark,
        pred: impl Fn(&Call) -> bool,
        timeout: Duration,
    ) -> Option<Call> {
        self.try_wait(timeout, &mut |st: &Inner| {
            st.calls[mark.0..].iter().find(|c| pred(c)).cloned()
        })
        .await
    }

    /// Waits until `n` calls of `method` were made after `mark`.
    pub async fn wait_for_count_after(&self, mark: Mark, method: &str, n: usize, timeout: Duration) {
        let m = method.to_lowercase();
        self.wait(timeout, &format!("{n} {m} calls"), |st| {
            (st.calls[mark.0..].iter().filter(|c| c.method == m).count() >= n).then_some(())
        })
        .await
    }

    /// Waits for the bot's answer to callback query `id` (`text`, `show_alert`).
    pub async fn wait_for_callback_answer(&self, id: &str, timeout: Duration) -> Value {
        self.wait(timeout, &format!("an answer to callback {id}"), |st| {
            st.answers.get(id).cloned()
        })
        .await
    }

    /// The next call of `method` (to `chat`, or any) fails once with this error.
    pub fn fail_next(&self, method: &str, chat: Option<i64>, code: u16, description: &str, retry_after: Option<u32>) {
        self.push_fault(
            method,
            chat,
            FaultKind::Fail {
                code,
                description: description.to_string(),
                retry_after,
            },
        );
    }

    fn push_fault(&self, method: &str, chat: Option<i64>, kind: FaultKind) {
        self.lock().faults.push(Fault {
            method: method.to_lowercase(),
            chat,
            kind,
        });
    }

    /// Every getMe from now on fails with 401 "Unauthorized", as Telegram answers a revoked
    /// or mistyped token.
    pub fn reject_token(&self) {
        self.reject_token_after(0);
    }

    /// getMe answers normally `ok_calls` more times, then rejects the token with 401.
    pub fn reject_token_after(&self, ok_calls: usize) {
        self.lock().get_me_ok_left = Some(ok_calls);
    }

    /// The next `n` calls of `method` fail with this error (e.g. `500` for getMe).
    pub fn fail_next_n(&self, method: &str, n: usize, code: u16, description: &str) {
        for _ in 0..n {
            self.fail_next(method, None, code, description, None);
        }
    }

    /// The next call of `method` (to `chat`, or any) fails once with a 500 Internal Server
    /// Error, HTTP status included (so teloxide waits its 10 s first).
    pub fn fail_next_500(&self, method: &str, chat: Option<i64>) {
        self.fail_next(method, chat, 500, "Internal Server Error", None);
    }

    /// The next call of `method` (to `chat`, or any) is answered by a broken connection and
    /// not carried out.
    pub fn drop_next(&self, method: &str, chat: Option<i64>) {
        self.push_fault(method, chat, FaultKind::Drop);
    }

    /// The next call of `method` (to `chat`, or any) is carried out, and its answer held back
    /// for `delay` (longer than the client's timeout, the answer is lost to it).
    pub fn delay_next(&self, method: &str, chat: Option<i64>, delay: Duration) {
        self.push_fault(method, chat, FaultKind::Delay(delay));
    }

    /// The next call of `method` (to `chat`, or any) is carried out, then its connection is
    /// reset before the answer arrives: the client cannot tell whether it was done.
    pub fn break_after_next(&self, method: &str, chat: Option<i64>) {
        self.push_fault(method, chat, FaultKind::DoneThenBreak);
    }

    /// The next call of `method` (to `chat`, or any) is carried out and answered with garbled
    /// JSON.
    pub fn garble_next(&self, method: &str, chat: Option<i64>) {
        self.push_fault(method, chat, FaultKind::DoneThenGarble);
    }

    /// Injected faults not yet used.
    pub fn faults_left(&self) -> usize {
        self.lock().faults.len()
    }

    /// Every send to `chat` fails with 403 "bot was blocked by the user".
    pub fn block_bot_for(&self, chat: i64) {
        self.lock().blocked.insert(chat);
    }

    /// Removes every injected fault and block.
    pub fn clear_faults(&self) {
        let mut st = self.lock();
        st.faults.clear();
        st.blocked.clear();
        st.get_me_ok_left = None;
    }

    /// Stops answering: every request (in flight or new) is held until `resume`, as when
    /// Telegram is unreachable.
    pub fn pause(&self) {
        self.shared.paused.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// Answers again; held requests go on.
    pub fn resume(&self) {
        self.shared.paused.store(false, std::sync::atomic::Ordering::SeqCst);
        self.shared.resumed.notify_waiters();
    }

    /// Drops queued updates (as if another consumer took them).
    pub fn clear_updates(&self) {
        self.lock().updates.clear();
    }
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    Path(path): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    wait_while_paused(&shared).await;
    let mut parts = path.splitn(3, '/');
    let first = parts.next().unwrap_or("");
    if first == "file" {
        let file_path = parts.nth(1).unwrap_or("");
        let file_id = file_path.trim_end_matches(".bin");
        let st = shared.inner.lock().unwrap_or_else(|e| e.into_inner());
        return match st.files.get(file_id) {
            Some(b) => b.clone().into_response(),
            None => (axum::http::StatusCode::NOT_FOUND, "not found").into_response(),
        };
    }
    if !first.starts_with("bot") {
        return fail(404, "Not Found", None);
    }
    let method = parts.next().unwrap_or("").to_lowercase();
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let (params, files) = if content_type.starts_with("multipart/form-data") {
        parse_multipart(&content_type, &body)
    } else if body.is_empty() {
        (json!({}), Vec::new())
    } else {
        (serde_json::from_slice::<Value>(&body).unwrap_or(json!({})), Vec::new())
    };
    if method == "getupdates" {
        return get_updates(&shared, &params).await;
    }
    let fake = FakeTelegram {
        shared: shared.clone(),
        url: String::new(),
        stop: Arc::new(Mutex::new(None)),
    };
    let resp = respond(&fake, &method, params, files);
    shared.changed.notify_waiters();
    match resp {
        Answer::Now(r) => r,
        Answer::Broken => broken_response(),
        Answer::Garbled => (
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            r#"{"ok":true,"result":{"message_id":"#,
        )
            .into_response(),
        Answer::Late(r, delay) => {
            tokio::time::sleep(delay).await;
            r
        }
    }
}

/// How `respond` answers.
enum Answer {
    Now(Response),
    /// The connection breaks instead of an answer.
    Broken,
    /// A cut, unparseable answer.
    Garbled,
    /// The answer, after a delay.
    Late(Response, Duration),
}

async fn wait_while_paused(shared: &Shared) {
    loop {
        let resumed = shared.resumed.notified();
        tokio::pin!(resumed);
        resumed.as_mut().enable();
        if !shared.paused.load(std::sync::atomic::Ordering::SeqCst) {
            return;
        }
        resumed.await;
    }
}

async fn get_updates(shared: &Arc<Shared>, params: &Value) -> Response {
    let offset = as_i64(&params["offset"]).unwrap_or(0);
    let limit = as_i64(&params["limit"]).unwrap_or(100).clamp(1, 100) as usize;
    let hold =
        Duration::from_secs(as_i64(&params["timeout"]).unwrap_or(0).clamp(0, 2) as u64).max(Duration::from_millis(200));
    let deadline = tokio::time::Instant::now() + hold;
    loop {
        let notified = shared.changed.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        {
            let mut st = shared.inner.lock().unwrap_or_else(|e| e.into_inner());
            // Telegram forgets updates once a later offset confirms them.
            st.updates.retain(|(id, _)| *id >= offset);
            if !st.updates.is_empty() {
                let out: Vec<Value> = st.updates.iter().take(limit).map(|(_, u)| u.clone()).collect();
                return ok(Value::Array(out));
            }
        }
        if tokio::time::timeout_at(deadline, notified).await.is_err() {
            return ok(json!([]));
        }
    }
}

fn respond(fake: &FakeTelegram, method: &str, params: Value, files: Vec<(String, Option<String>, Vec<u8>)>) -> Answer {
    let chat_id = as_i64(&params["chat_id"]);
    let mut delay = None;
    let mut after = None;
    {
        let mut st = fake.lock();
        // Connection faults first (a blocked user is a proper answer, so it comes after).
        if let Some(i) = st.faults.iter().position(|f| {
            f.method == method
                && (f.chat.is_none() || f.chat == chat_id)
                && matches!(
                    f.kind,
                    FaultKind::Drop | FaultKind::Delay(_) | FaultKind::DoneThenBreak | FaultKind::DoneThenGarble
                )
        }) {
            match st.faults.remove(i).kind {
                FaultKind::DoneThenBreak => after = Some(Answer::Broken),
                FaultKind::DoneThenGarble => after = Some(Answer::Garbled),
                FaultKind::Drop => {
                    st.calls.push(Call {
                        method: method.to_string(),
                        params: params.clone(),
                        chat_id,
                        at: Instant::now(),
                    });
                    return Answer::Broken;
                }
                FaultKind::Delay(d) => delay = Some(d),
                FaultKind::Fail { .. } => {}
            }
        }
    }
    let resp = respond_now(fake, method, params, files);
    if let Some(a) = after {
        return a;
    }
    match delay {
        Some(d) => Answer::Late(resp, d),
        None => Answer::Now(resp),
    }
}

/// Tags Telegram's HTML parse mode accepts (core.telegram.org/bots/api#html-style).
const HTML_TAGS: [&str; 16] = [
    "b",
    "strong",
    "i",
    "em",
    "u",
    "ins",
    "s",
    "strike",
    "del",
    "a",
    "code",
    "pre",
    "tg-spoiler",
    "span",
    "blockquote",
    "tg-emoji",
];

/// Refuses a text as the Bot API does: with `parse_mode` HTML, an `&` that starts no entity,
/// an unknown, unopened or unclosed tag ("can't parse entities"); then more than 4096 UTF-16
/// units of what the message shows ("message is too long").
fn check_text(params: &Value, text: &str) -> Result<(), String> {
    let html = params["parse_mode"]
        .as_str()
        .is_some_and(|m| m.eq_ignore_ascii_case("html"));
    let mut shown = 0usize;
    if !html {
        shown = text.encode_utf16().count();
    } else {
        let mut open: Vec<String> = Vec::new();
        let mut rest = text;
        while let Some(c) = rest.chars().next() {
            match c {
                '<' => {
                    let end = rest
                        .find('>')
                        .ok_or("Bad Request: can't parse entities: unclosed tag")?;
                    let tag = &rest[1..end];
                    let name: String = tag
                        .trim_start_matches('/')
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
                        .collect();
                    if !HTML_TAGS.contains(&name.as_str()) {
                        return Err(format!(
                            "Bad Request: can't parse entities: unsupported start tag \"{name}\""
                        ));
                    }
                    if tag.starts_with('/') {
                        if open.pop().as_deref() != Some(name.as_str()) {
                            return Err(format!(
                                "Bad Request: can't parse entities: unmatched end tag \"{name}\""
                            ));
                        }
                    } else {
                        open.push(name);
                    }
                    rest = &rest[end + 1..];
                }
                '&' => {
                    let end = rest.find(';').filter(|e| *e > 1 && *e <= 10).ok_or(
                        "Bad Request: can't parse entities: character '&' is reserved and must be escaped as &amp;",
                    )?;
                    shown += 1;
                    rest = &rest[end + 1..];
                }
                c => {
                    shown += c.len_utf16();
                    rest = &rest[c.len_utf8()..];
                }
            }
        }
        if let Some(t) = open.last() {
            return Err(format!(
                "Bad Request: can't parse entities: can't find end tag corresponding to start tag \"{t}\""
            ));
        }
    }
    if shown > 4096 {
        return Err("Bad Request: message is too long".into());
    }
    Ok(())
}

fn respond_now(
    fake: &FakeTelegram,
    method: &str,
    mut params: Value,
    files: Vec<(String, Option<String>, Vec<u8>)>,
) -> Response {
    let chat_id = as_i64(&params["chat_id"]);
    let mut st = fake.lock();
    let record = |st: &mut Inner, params: &Value| {
        st.calls.push(Call {
            method: method.to_string(),
            params: params.clone(),
            chat_id,
            at: Instant::now(),
        });
    };
    // Injected faults.
    let sends = method.starts_with("send") || method.starts_with("edit");
    if let Some(chat) = chat_id {
        if sends && st.blocked.contains(&chat) {
            record(&mut st, &params);
            return fail(403, "Forbidden: bot was blocked by the user", None);
        }
    }
    if let Some(i) = st.faults.iter().position(|f| {
        f.method == method && (f.chat.is_none() || f.chat == chat_id) && matches!(f.kind, FaultKind::Fail { .. })
    }) {
        if let FaultKind::Fail {
            code,
            description,
            retry_after,
        } = st.faults.remove(i).kind
        {
            record(&mut st, &params);
            return fail(code, &description, retry_after);
        }
    }
    let message_json = |c: i64, m: &Sent, extra: Value| {
        let mut v = json!({"message_id": m.message_id, "date": now_unix(), "chat": chat(c), "from": bot_user()});
        if m.file_name.is_none() && m.file_id.is_none() {
            v["text"] = json!(m.text);
        } else if !m.text.is_empty() {
            v["caption"] = json!(m.text);
        }
        if let Some(k) = &m.reply_markup {
            v["reply_markup"] = k.clone();
        }
        if let Value::Object(e) = extra {
            for (k, x) in e {
                v[k] = x;
            }
        }
        v
    };
    match method {
        "getme" => {
            record(&mut st, &params);
            match st.get_me_ok_left {
                Some(0) => return fail(401, "Unauthorized", None),
                Some(n) => st.get_me_ok_left = Some(n - 1),
                None => {}
            }
            let mut me = bot_user();
            me["can_join_groups"] = json!(true);
            me["can_read_all_group_messages"] = json!(false);
            me["supports_inline_queries"] = json!(false);
            me["has_main_web_app"] = json!(false);
            ok(me)
        }
        "getwebhookinfo" => {
            record(&mut st, &params);
            ok(json!({"url": "", "has_custom_certificate": false, "pending_update_count": 0}))
        }
        "deletewebhook" | "setmycommands" | "deletemycommands" | "sendchataction" | "deletemessage"
        | "setmessagereaction" => {
            record(&mut st, &params);
            ok(json!(true))
        }
        "answercallbackquery" => {
            record(&mut st, &params);
            if let Some(id) = params["callback_query_id"].as_str() {
                let ans = json!({"text": params["text"].clone(), "show_alert": params["show_alert"].as_bool().unwrap_or(false)});
                st.answers.insert(id.to_string(), ans);
            }
            ok(json!(true))
        }
        "sendmessage" | "senddocument" | "sendphoto" | "sendvideo" | "sendvoice" | "sendaudio" => {
            let Some(chat) = chat_id else {
                record(&mut st, &params);
                return fail(400, "Bad Request: chat_id is empty", None);
            };
            // A file sent again by its `file_id` (a string where the file goes): the Bot API
            // takes only an ID it issued, and only for the same kind of file ("wrong file
            // identifier", "type of file mismatch"; Bot API "Sending files" §2). Here an ID
            // names its kind in its prefix (`push_file`).
            let kind = method.trim_start_matches("send");
            let by_id = params[kind]
                .as_str()
                .filter(|v| !v.starts_with("attach://"))
                .map(str::to_string);
            if let Some(id) = &by_id {
                if !st.files.contains_key(id) {
                    record(&mut st, &params);
                    return fail(400, "Bad Request: wrong file identifier/HTTP URL specified", None);
                }
                let issued_as = if id.starts_with("doc") && !id.starts_with("document") {
                    "document"
                } else {
                    id.trim_end_matches(|c: char| c.is_ascii_digit())
                };
                if issued_as != kind {
                    record(&mut st, &params);
                    return fail(400, "Bad Request: type of file mismatch", None);
                }
            }
            let text = params["text"]
                .as_str()
                .or(params["caption"].as_str())
                .unwrap_or("")
                .to_string();
            if method == "sendmessage" && text.is_empty() {
                record(&mut st, &params);
                return fail(400, "Bad Request: message text is empty", None);
            }
            if let Err(why) = check_text(&params, &text) {
                record(&mut st, &params);
                return fail(400, &why, None);
            }
            let file = files.into_iter().next();
            let mid = FakeTelegram::next_mid(&mut st, chat);
            let sent = Sent {
                message_id: mid,
                text,
                reply_markup: params.get("reply_markup").cloned().filter(|v| !v.is_null()),
                file_name: file
                    .as_ref()
                    .map(|(_, n, _)| n.clone().unwrap_or_else(|| "file".into())),
                bytes: file.as_ref().map(|(_, _, b)| b.clone()),
                file_id: by_id.map(|id| (kind.to_string(), id)),
            };
            let extra = match (method, &file) {
                ("senddocument", Some((_, name, b))) => json!({"document": {
                    "file_id": format!("sent{chat}_{mid}"), "file_unique_id": format!("us{chat}_{mid}"),
                    "file_size": b.len(), "file_name": name}}),
                ("sendphoto", Some((_, _, b))) => json!({"photo": [{
                    "file_id": format!("sent{chat}_{mid}"), "file_unique_id": format!("us{chat}_{mid}"),
                    "file_size": b.len(), "width": 256, "height": 256}]}),
                _ => match &sent.file_id {
                    // The Message Telegram answers with carries the file it sent.
                    Some((k, id)) => {
                        let f = json!({"file_id": id, "file_unique_id": format!("u{id}"),
                                       "width": 640, "height": 480, "duration": 3});
                        if k == "photo" {
                            json!({ "photo": [f] })
                        } else {
                            json!({ k.clone(): f })
                        }
                    }
                    None => json!({}),
                },
            };
            let reply = message_json(chat, &sent, extra);
            st.chats.entry(chat).or_default().push(sent);
            params["__message_id"] = json!(mid);
            record(&mut st, &params);
            ok(reply)
        }
        "editmessagetext" | "editmessagereplymarkup" | "editmessagecaption" => {
            let (Some(chat), Some(mid)) = (chat_id, as_i64(&params["message_id"])) else {
                record(&mut st, &params);
                return fail(400, "Bad Request: message to edit not found", None);
            };
            params["__message_id"] = json!(mid);
            let Some(m) = st
                .chats
                .get_mut(&chat)
                .and_then(|v| v.iter_mut().find(|m| m.message_id == mid))
            else {
                record(&mut st, &params);
                return fail(400, "Bad Request: message to edit not found", None);
            };
            let new_text = match method {
                "editmessagetext" => params["text"].as_str().map(str::to_string),
                "editmessagecaption" => Some(params["caption"].as_str().unwrap_or("").to_string()),
                _ => None,
            };
            if let Some(Err(why)) = new_text.as_ref().map(|t| check_text(&params, t)) {
                record(&mut st, &params);
                return fail(400, &why, None);
            }
            let new_markup = params.get("reply_markup").cloned().filter(|v| !v.is_null());
            let same_text = new_text.as_ref().is_none_or(|t| *t == m.text);
            if same_text && new_markup == m.reply_markup {
                record(&mut st, &params);
                return fail(
                    400,
                    "Bad Request: message is not modified: specified new message content and reply markup are exactly the same as a current content and reply markup of the message",
                    None,
                );
            }
            if let Some(t) = new_text {
                m.text = t;
            }
            m.reply_markup = new_markup;
            let m = m.clone();
            let reply = message_json(chat, &m, json!({"edit_date": now_unix()}));
            record(&mut st, &params);
            ok(reply)
        }
        "getfile" => {
            record(&mut st, &params);
            let id = params["file_id"].as_str().unwrap_or("").to_string();
            match st.files.get(&id) {
                Some(b) => ok(
                    json!({"file_id": id, "file_unique_id": format!("u{id}"), "file_size": b.len(),
                                     "file_path": format!("{id}.bin")}),
                ),
                None => fail(400, "Bad Request: invalid file_id", None),
            }
        }
        _ => {
            record(&mut st, &params);
            fail(
                400,
                &format!("Bad Request: method {method} is not supported by the fake"),
                None,
            )
        }
    }
}
