//! Sending to Telegram carefully: HTML parse mode, long texts split, one retry policy for
//! every send and edit ([`retrying`]: transient failures with backoff, a 429 once, a lost
//! answer repeated only when that cannot show a message twice), a user who blocked the bot
//! (403) marked so nothing more is sent to them, and every failure logged with its context
//! instead of stopping the handler.

use std::future::IntoFuture;
use std::time::Duration;

use teloxide::prelude::*;
use teloxide::types::{ChatId, InlineKeyboardMarkup, InputFile, MessageId, ParseMode};
use teloxide::{ApiError, RequestError};
use tracing::warn;

use crate::ids::TelegramId;
use crate::manager::AccountManager;
use crate::telegram::limiter::Class;

/// Telegram's limit on a message's text.
pub const MAX_TEXT: usize = 4096;

/// One piece of Telegram HTML: a tag, an entity, or one character.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token<'a> {
    /// `<b>`, `<a href="…">`, `</b>`: shows nothing.
    Tag(&'a str),
    /// `&amp;`, `&#128512;`: one character once parsed.
    Entity(&'a str),
    /// Anything else.
    Char(char),
}

impl Token<'_> {
    /// Its length as Telegram counts a message: UTF-16 code units of the parsed text.
    fn len(&self) -> usize {
        match self {
            Token::Tag(_) => 0,
            Token::Entity(e) => {
                let code = e.strip_prefix("&#").and_then(|n| n.strip_suffix(';')).and_then(|n| {
                    n.strip_prefix(['x', 'X'])
                        .map_or_else(|| n.parse().ok(), |h| u32::from_str_radix(h, 16).ok())
                });
                code.and_then(char::from_u32).map_or(1, char::len_utf16)
            }
            Token::Char(c) => c.len_utf16(),
        }
    }

    fn text(&self) -> std::borrow::Cow<'_, str> {
        match self {
            Token::Tag(t) | Token::Entity(t) => std::borrow::Cow::Borrowed(t),
            Token::Char(c) => std::borrow::Cow::Owned(c.to_string()),
        }
    }
}

/// Splits Telegram HTML into tags, entities and characters (a `<` or `&` that starts neither
/// is a character).
fn tokens(html: &str) -> Vec<Token<'_>> {
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(c) = html[i..].chars().next() {
        let rest = &html[i..];
        let tok = match c {
            '<' => rest.find('>').map(|e| Token::Tag(&rest[..=e])),
            '&' => rest
                .char_indices()
                .take(12)
                .find(|(_, ch)| *ch == ';')
                .map(|(e, _)| &rest[..=e])
                .filter(|e| {
                    e[1..e.len() - 1]
                        .chars()
                        .all(|ch| ch.is_ascii_alphanumeric() || ch == '#')
                        && e.len() > 2
                })
                .map(Token::Entity),
            _ => None,
        }
        .unwrap_or(Token::Char(c));
        i += match tok {
            Token::Tag(t) | Token::Entity(t) => t.len(),
            Token::Char(c) => c.len_utf8(),
        };
        out.push(tok);
    }
    out
}

/// The length of HTML `text` as Telegram counts it (UTF-16 units of what it shows).
pub fn visible_len(html: &str) -> usize {
    tokens(html).iter().map(Token::len).sum()
}

/// A piece being built by [`split_text`], with the tags open in it.
#[derive(Default)]
struct Piece {
    text: String,
    len: usize,
    /// Open tags, outermost first: `(name, the opening tag as written)`.
    open: Vec<(String, String)>,
}

impl Piece {
    fn push(&mut self, t: Token<'_>) {
        if let Token::Tag(tag) = t {
            let name: String = tag
                .trim_start_matches(['<', '/'])
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
                .collect();
            if tag.starts_with("</") {
                if let Some(at) = self.open.iter().rposition(|(n, _)| *n == name) {
                    self.open.truncate(at);
                }
            } else {
                self.open.push((name, tag.to_string()));
            }
        }
        self.len += t.len();
        self.text.push_str(&t.text());
    }

    /// Ends this piece (closing its open tags) and starts the next with them opened again.
    fn cut(&mut self, out: &mut Vec<String>) {
        let mut done = std::mem::take(&mut self.text);
        for (name, _) in self.open.iter().rev() {
            done.push_str(&format!("</{name}>"));
        }
        out.push(done);
        self.text = self.open.iter().map(|(_, t)| t.as_str()).collect();
        self.len = 0;
    }
}

/// Splits HTML `text` into pieces Telegram accepts: at most `MAX_TEXT` UTF-16 units each (as
/// Telegram counts), cut at line ends where possible, never inside a tag or an entity, with
/// the tags open at a cut closed there and opened again in the next piece.
pub fn split_text(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = Piece::default();
    for line in text.split_inclusive('\n') {
        let toks = tokens(line);
        let len: usize = toks.iter().map(Token::len).sum();
        if cur.len + len > MAX_TEXT && cur.len > 0 {
            cur.cut(&mut out);
        }
        for t in toks {
            if cur.len + t.len() > MAX_TEXT && cur.len > 0 {
                cur.cut(&mut out);
            }
            cur.push(t);
        }
    }
    if cur.len > 0 || out.is_empty() {
        cur.cut(&mut out);
    }
    out
}

/// The longest `retry_after` of a 429 that is waited out; a longer one gives up at once
/// (waiting longer would hold the user's handler for nothing they would still want).
const MAX_RETRY_AFTER: Duration = Duration::from_secs(30);

/// How many times a call is retried after a transient failure (so at most this + 1 tries).
const TRANSIENT_RETRIES: u32 = 3;

/// Whether a call may be repeated when its answer was lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Repeat {
    /// Doing it twice is harmless (an edit: the second says "not modified").
    Safe,
    /// Doing it twice shows the user two messages (a send).
    Unsafe,
}

/// What a failed call means for trying it again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Failure {
    /// Telegram did not do it and may next time: the request never left (a refused
    /// connection, a name that did not resolve), or Telegram answered 5xx.
    Transient,
    /// 429: Telegram asks us to wait this long.
    RateLimited(Duration),
    /// The request went out and no usable answer came back (none in time, the connection
    /// reset after it was written, a garbled answer): it may have been done.
    Lost,
    /// It will fail the same way again (400, 403, ...).
    Final,
}

/// Descriptions Telegram (and the proxies before it) give 5xx answers; teloxide keeps the
/// description but not the status code.
const SERVER_ERRORS: [&str; 4] = [
    "Internal Server Error",
    "Bad Gateway",
    "Service Unavailable",
    "Gateway Timeout",
];

fn classify(e: &RequestError) -> Failure {
    match e {
        RequestError::RetryAfter(secs) => Failure::RateLimited(secs.duration()),
        RequestError::Network(err) if err.is_timeout() => Failure::Lost,
        // Only a failure to connect (refused, DNS) proves the request never reached Telegram.
        RequestError::Network(err) if err.is_connect() => Failure::Transient,
        RequestError::Network(_) | RequestError::InvalidJson { .. } => Failure::Lost,
        // Reading a file to upload: before anything was sent.
        RequestError::Io(_) => Failure::Transient,
        RequestError::Api(ApiError::Unknown(d)) if SERVER_ERRORS.iter().any(|s| d.contains(s)) => Failure::Transient,
        _ => Failure::Final,
    }
}

/// True when `e` leaves it open whether Telegram carried the call out (no answer in time, a
/// connection reset after the request was written, a garbled answer): a send that failed so
/// is never repeated, and an announcement records it `unknown`.
pub fn ambiguous(e: &RequestError) -> bool {
    classify(e) == Failure::Lost
}

/// The one place that decides whether a Telegram call is tried again: transient failures
/// after a bounded exponential backoff (`TGWA_TELEGRAM_RETRY_BASE_MS`, doubling), a 429 once
/// after its `retry_after` (up to [`MAX_RETRY_AFTER`]), a lost answer only when repeating is
/// harmless. The limiter (`telegram::limiter`, through [`paced`]) only decides when a call is
/// made and holds a chat back after its 429; it never repeats one.
pub async fn retrying<T, F, Fut>(base: Duration, repeat: Repeat, what: &str, mut op: F) -> Result<T, RequestError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, RequestError>>,
{
    let mut transient = 0;
    let mut waited_429 = false;
    loop {
        let e = match op().await {
            Ok(v) => return Ok(v),
            Err(e) => e,
        };
        let wait = match classify(&e) {
            Failure::RateLimited(after) if !waited_429 && after <= MAX_RETRY_AFTER => {
                waited_429 = true;
                after
            }
            Failure::Transient if transient < TRANSIENT_RETRIES => {
                transient += 1;
                base.saturating_mul(1 << (transient - 1))
            }
            Failure::Lost if repeat == Repeat::Safe && transient < TRANSIENT_RETRIES => {
                transient += 1;
                base.saturating_mul(1 << (transient - 1))
            }
            Failure::Lost => {
                // A send whose answer was lost has most likely been shown: sending it again
                // would show it twice, so it is given up and logged instead.
                warn!(error = %e, "{what}: no usable answer; not repeated, it may have been delivered");
                return Err(e);
            }
            _ => return Err(e),
        };
        warn!(error = %e, ?wait, "{what} failed; trying again");
        tokio::time::sleep(wait).await;
    }
}

/// Makes `call` when the limiter lets it (at once with `TGWA_TELEGRAM_THROTTLE=0`). A
/// progress edit replaced by a newer one of the same message before its turn is not made and
/// answers "message is not modified": the newer edit carries the text, and every caller
/// already takes that answer as done, never as a reason to retry or send anew.
pub async fn paced<T, Fut>(manager: &AccountManager, chat: ChatId, class: Class, call: Fut) -> Result<T, RequestError>
where
    Fut: std::future::Future<Output = Result<T, RequestError>>,
{
    match manager.telegram_limiter() {
        Some(l) => l
            .run(chat, class, call)
            .await
            .unwrap_or(Err(RequestError::Api(ApiError::MessageNotModified))),
        None => call.await,
    }
}

/// The backoff base from the configuration.
fn base(manager: &AccountManager) -> Duration {
    manager.config().telegram_retry_base
}

/// What a send attempt means for the user.
fn note_failure(manager: &AccountManager, chat: ChatId, e: &RequestError, what: &str) {
    crate::metrics::telegram_error(e);
    match e {
        RequestError::Api(ApiError::BotBlocked | ApiError::UserDeactivated | ApiError::CantInitiateConversation) => {
            warn!(chat_id = chat.0, "user blocked the bot; marking inactive");
            if let Ok(tid) = TelegramId::new(chat.0) {
                let m = manager.clone();
                tokio::spawn(async move {
                    let _ = m.set_blocked(tid, true).await;
                });
            }
        }
        _ => warn!(chat_id = chat.0, error = %e, "{what} failed"),
    }
}

/// Sends HTML text (split if long; the keyboard goes on the last piece). Returns the last
/// message's ID, or `None` when sending failed (already logged and handled).
pub async fn send_html<R>(
    bot: &R,
    manager: &AccountManager,
    chat: ChatId,
    text: &str,
    markup: Option<InlineKeyboardMarkup>,
) -> Option<MessageId>
where
    R: Requester<Err = RequestError>,
{
    let parts = split_text(text);
    let n = parts.len();
    let mut last = None;
    for (i, part) in parts.into_iter().enumerate() {
        let kb = if i + 1 == n { markup.clone() } else { None };
        let res = retrying(base(manager), Repeat::Unsafe, "sendMessage", || {
            let mut req = bot.send_message(chat, part.clone()).parse_mode(ParseMode::Html);
            if let Some(k) = kb.clone() {
                req = req.reply_markup(k);
            }
            paced(manager, chat, Class::Reply, req.into_future())
        })
        .await;
        match res {
            Ok(m) => {
                // --- bot17 --- the keyboard this message shows now.
                manager.screens().shown(chat.0, m.id.0, kb.as_ref());
                last = Some(m.id)
            }
            Err(e) => {
                note_failure(manager, chat, &e, "sendMessage");
                return None;
            }
        }
    }
    last
}

/// Edits a message in place; sends a new one only when Telegram says the message cannot be
/// edited or is gone (or the text is too long for one message). "Not modified" is success;
/// an edit whose answer was lost is repeated as an edit, never turned into a second message.
pub async fn edit_or_send<R>(
    bot: &R,
    manager: &AccountManager,
    chat: ChatId,
    message: Option<MessageId>,
    text: &str,
    markup: Option<InlineKeyboardMarkup>,
) -> Option<MessageId>
where
    R: Requester<Err = RequestError>,
{
    edit_or_send_as(bot, manager, chat, message, text, markup, false).await
}

/// [`edit_or_send`] for a job's progress message: it waits behind replies, and when several
/// edits of the message wait, only the latest is made.
pub async fn edit_progress<R>(
    bot: &R,
    manager: &AccountManager,
    chat: ChatId,
    message: MessageId,
    text: &str,
    markup: Option<InlineKeyboardMarkup>,
) -> Option<MessageId>
where
    R: Requester<Err = RequestError>,
{
    edit_or_send_as(bot, manager, chat, Some(message), text, markup, true).await
}

async fn edit_or_send_as<R>(
    bot: &R,
    manager: &AccountManager,
    chat: ChatId,
    message: Option<MessageId>,
    text: &str,
    markup: Option<InlineKeyboardMarkup>,
    progress: bool,
) -> Option<MessageId>
where
    R: Requester<Err = RequestError>,
{
    if let Some(mid) = message {
        let class = if progress { Class::Progress(mid.0) } else { Class::Reply };
        if visible_len(text) <= MAX_TEXT {
            let res = retrying(base(manager), Repeat::Safe, "editMessageText", || {
                let mut req = bot
                    .edit_message_text(chat, mid, text.to_string())
                    .parse_mode(ParseMode::Html);
                if let Some(k) = markup.clone() {
                    req = req.reply_markup(k);
                }
                paced(manager, chat, class, req.into_future())
            })
            .await;
            match res {
                Ok(_) => {
                    // --- bot17 --- an edit without a keyboard takes the buttons off.
                    manager.screens().shown(chat.0, mid.0, markup.as_ref());
                    return Some(mid);
                }
                // Not recorded: it may be a progress edit the limiter skipped for a newer one.
                Err(RequestError::Api(ApiError::MessageNotModified)) => return Some(mid),
                Err(RequestError::Api(
                    ApiError::MessageToEditNotFound | ApiError::MessageCantBeEdited | ApiError::MessageIdInvalid,
                )) => {}
                Err(e) => {
                    // Whether the edit was made is not known: judge its buttons by signature.
                    manager.screens().forget(chat.0, mid.0);
                    note_failure(manager, chat, &e, "editMessageText");
                    return None;
                }
            }
        }
    }
    send_html(bot, manager, chat, text, markup).await
}

/// Sends a document built in memory.
pub async fn send_document<R>(
    bot: &R,
    manager: &AccountManager,
    chat: ChatId,
    file_name: &str,
    bytes: Vec<u8>,
    caption: &str,
) -> Option<MessageId>
where
    R: Requester<Err = RequestError>,
{
    let res = retrying(base(manager), Repeat::Unsafe, "sendDocument", || {
        let req = bot
            .send_document(chat, InputFile::memory(bytes.clone()).file_name(file_name.to_string()))
            .caption(caption.to_string())
            .parse_mode(ParseMode::Html);
        paced(manager, chat, Class::Reply, req.into_future())
    })
    .await;
    match res {
        Ok(m) => Some(m.id),
        Err(e) => {
            note_failure(manager, chat, &e, "sendDocument");
            None
        }
    }
}

/// Sends text, or a document when it is too long to read as messages (more than 3 pieces).
pub async fn send_long<R>(
    bot: &R,
    manager: &AccountManager,
    chat: ChatId,
    text: &str,
    file_name: &str,
    caption: &str,
) -> Option<MessageId>
where
    R: Requester<Err = RequestError>,
{
    send_long_with(bot, manager, chat, text, file_name, caption, None).await
}

/// [`send_long`] with buttons under the message or the document: the way on from a list.
pub async fn send_long_with<R>(
    bot: &R,
    manager: &AccountManager,
    chat: ChatId,
    text: &str,
    file_name: &str,
    caption: &str,
    markup: Option<InlineKeyboardMarkup>,
) -> Option<MessageId>
where
    R: Requester<Err = RequestError>,
{
    if split_text(text).len() > 3 {
        send_document_with(bot, manager, chat, file_name, text.as_bytes().to_vec(), caption, markup).await
    } else {
        send_html(bot, manager, chat, text, markup).await
    }
}

/// [`send_document`] with buttons under it (a report's way on).
pub async fn send_document_with<R>(
    bot: &R,
    manager: &AccountManager,
    chat: ChatId,
    file_name: &str,
    bytes: Vec<u8>,
    caption: &str,
    markup: Option<InlineKeyboardMarkup>,
) -> Option<MessageId>
where
    R: Requester<Err = RequestError>,
{
    let res = retrying(base(manager), Repeat::Unsafe, "sendDocument", || {
        let mut req = bot
            .send_document(chat, InputFile::memory(bytes.clone()).file_name(file_name.to_string()))
            .caption(caption.to_string())
            .parse_mode(ParseMode::Html);
        if let Some(kb) = &markup {
            req = req.reply_markup(kb.clone());
        }
        paced(manager, chat, Class::Reply, req.into_future())
    })
    .await;
    match res {
        Ok(m) => {
            // --- bot17 ---
            manager.screens().shown(chat.0, m.id.0, markup.as_ref());
            Some(m.id)
        }
        Err(e) => {
            note_failure(manager, chat, &e, "sendDocument");
            None
        }
    }
}

// --- media2 ---
/// Sends a file Telegram already has (by its `file_id`, so nothing is uploaded again) as
/// the kind it is, with a plain-text `caption` (none when empty) and buttons under it,
/// through the same retries and pacing as every send.
pub async fn send_file_by_id<R>(
    bot: &R,
    manager: &AccountManager,
    chat: ChatId,
    kind: crate::wa::MediaKind,
    file: teloxide::types::FileId,
    caption: &str,
    markup: Option<InlineKeyboardMarkup>,
) -> Option<MessageId>
where
    R: Requester<Err = RequestError>,
{
    use crate::wa::MediaKind;
    // One builder per kind; the caption and buttons are set the same way on each.
    macro_rules! with_extras {
        ($req:expr, $kb:ident) => {{
            // The request itself is not `Send`, the future it turns into is: it must not live
            // across the await.
            let fut = {
                let mut req = $req;
                if !caption.is_empty() {
                    req = req.caption(caption.to_string());
                }
                if let Some(k) = $kb {
                    req = req.reply_markup(k);
                }
                req.into_future()
            };
            fut.await
        }};
    }
    let what = "sendMedia";
    let res = retrying(base(manager), Repeat::Unsafe, what, || {
        let (input, kb) = (InputFile::file_id(file.clone()), markup.clone());
        let call = async move {
            match kind {
                MediaKind::Photo => with_extras!(bot.send_photo(chat, input), kb),
                MediaKind::Document => with_extras!(bot.send_document(chat, input), kb),
                MediaKind::Video => with_extras!(bot.send_video(chat, input), kb),
                MediaKind::Voice => with_extras!(bot.send_voice(chat, input), kb),
                MediaKind::Audio => with_extras!(bot.send_audio(chat, input), kb),
            }
        };
        paced(manager, chat, Class::Reply, call)
    })
    .await;
    match res {
        Ok(m) => Some(m.id),
        Err(e) => {
            note_failure(manager, chat, &e, what);
            None
        }
    }
}

/// Answers a callback query (so the button stops spinning), optionally as an alert, ahead of
/// every other waiting call and with the same retries as a send (answering twice is harmless:
/// Telegram refuses the second).
pub async fn answer<R>(
    bot: &R,
    manager: &AccountManager,
    chat: ChatId,
    id: &teloxide::types::CallbackQueryId,
    text: Option<&str>,
    alert: bool,
) where
    R: Requester<Err = RequestError>,
{
    let res = retrying(base(manager), Repeat::Safe, "answerCallbackQuery", || {
        let mut req = bot.answer_callback_query(id.clone());
        if let Some(t) = text {
            req = req.text(t.to_string()).show_alert(alert);
        }
        paced(manager, chat, Class::Answer, req.into_future())
    })
    .await;
    if let Err(e) = res {
        crate::metrics::telegram_error(&e);
        warn!(error = %e, "answerCallbackQuery failed");
    }
}

/// Takes the buttons off a message (an answered prompt), with the same retries and pacing as
/// an edit; a message already without them is not an error worth more than a log line.
pub async fn clear_buttons<R>(bot: &R, manager: &AccountManager, chat: ChatId, message: MessageId)
where
    R: Requester<Err = RequestError>,
{
    let res = retrying(base(manager), Repeat::Safe, "editMessageReplyMarkup", || {
        paced(
            manager,
            chat,
            Class::Reply,
            bot.edit_message_reply_markup(chat, message).into_future(),
        )
    })
    .await;
    // --- bot17 --- no buttons left on it (or, after an error, judged by signature).
    match &res {
        Ok(_) => manager.screens().shown(chat.0, message.0, None),
        Err(_) => manager.screens().forget(chat.0, message.0),
    }
    if let Err(e) = res {
        tracing::debug!(chat_id = chat.0, error = %e, "editMessageReplyMarkup failed");
    }
}

/// Deletes a message, with the same retries and pacing as an edit; a message already gone is
/// not an error worth more than a log line.
pub async fn delete<R>(bot: &R, manager: &AccountManager, chat: ChatId, message: MessageId)
where
    R: Requester<Err = RequestError>,
{
    let res = retrying(base(manager), Repeat::Safe, "deleteMessage", || {
        paced(
            manager,
            chat,
            Class::Reply,
            bot.delete_message(chat, message).into_future(),
        )
    })
    .await;
    if let Err(e) = res {
        warn!(chat_id = chat.0, error = %e, "deleteMessage failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};
    use teloxide::types::Seconds;

    fn server_error() -> RequestError {
        RequestError::Api(ApiError::Unknown("Internal Server Error".into()))
    }

    #[test]
    fn failures_are_classified() {
        assert_eq!(classify(&server_error()), Failure::Transient);
        assert_eq!(
            classify(&RequestError::RetryAfter(Seconds::from_seconds(3))),
            Failure::RateLimited(Duration::from_secs(3))
        );
        assert_eq!(classify(&RequestError::Api(ApiError::BotBlocked)), Failure::Final);
        assert_eq!(
            classify(&RequestError::Api(ApiError::MessageNotModified)),
            Failure::Final
        );
    }

    /// Runs `retrying` over answers given in order; returns the result and the tries made.
    async fn run(answers: Vec<Result<u32, RequestError>>, repeat: Repeat) -> (Result<u32, RequestError>, u32) {
        let tries = AtomicU32::new(0);
        let answers = std::sync::Mutex::new(answers.into_iter());
        let res = retrying(Duration::from_millis(10), repeat, "test", || {
            tries.fetch_add(1, Ordering::SeqCst);
            let next = answers.lock().unwrap().next().unwrap_or(Ok(0));
            async move { next }
        })
        .await;
        (res, tries.load(Ordering::SeqCst))
    }

    #[tokio::test]
    async fn transient_failures_are_retried_with_a_bound() {
        let (res, tries) = run(vec![Err(server_error()), Ok(7)], Repeat::Unsafe).await;
        assert_eq!(res.ok(), Some(7));
        assert_eq!(tries, 2);
        let always: Vec<_> = (0..10).map(|_| Err(server_error())).collect();
        let started = tokio::time::Instant::now();
        let (res, tries) = run(always, Repeat::Unsafe).await;
        assert!(res.is_err());
        assert_eq!(tries, TRANSIENT_RETRIES + 1);
        // 10 + 20 + 40 ms of backoff.
        assert!(started.elapsed() >= Duration::from_millis(70));
    }

    #[tokio::test]
    async fn a_429_is_waited_out_once() {
        let r429 = || Err(RequestError::RetryAfter(Seconds::from_seconds(1)));
        let started = tokio::time::Instant::now();
        let (res, tries) = run(vec![r429(), Ok(1)], Repeat::Unsafe).await;
        assert_eq!(res.ok(), Some(1));
        assert_eq!(tries, 2);
        assert!(started.elapsed() >= Duration::from_secs(1));
        let (res, tries) = run(vec![r429(), r429(), Ok(1)], Repeat::Unsafe).await;
        assert!(matches!(res, Err(RequestError::RetryAfter(_))));
        assert_eq!(tries, 2);
        // Longer than the bound: given up at once.
        let long = Err(RequestError::RetryAfter(Seconds::from_seconds(3600)));
        let (res, tries) = run(vec![long, Ok(1)], Repeat::Unsafe).await;
        assert!(res.is_err());
        assert_eq!(tries, 1);
    }

    fn garbled() -> RequestError {
        let source = serde_json::from_str::<serde_json::Value>(r#"{"ok":true,"result":{"#).unwrap_err();
        RequestError::InvalidJson {
            source: std::sync::Arc::new(source),
            raw: r#"{"ok":true,"result":{"#.into(),
        }
    }

    /// A real connection failure: nothing listens on the port, so the request never left.
    async fn refused() -> RequestError {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = format!("http://127.0.0.1:{port}").parse().unwrap();
        let bot = teloxide::Bot::new("1:x").set_api_url(url);
        bot.get_me().await.unwrap_err()
    }

    #[tokio::test]
    async fn only_what_failed_before_the_request_left_is_repeated() {
        let refused = refused().await;
        assert_eq!(classify(&refused), Failure::Transient, "{refused:?}");
        assert!(!ambiguous(&refused));
        let (res, tries) = run(vec![Err(refused.clone()), Ok(3)], Repeat::Unsafe).await;
        assert_eq!((res.ok(), tries), (Some(3), 2));
        // A garbled answer: Telegram may well have shown the message.
        assert!(ambiguous(&garbled()));
        let (res, tries) = run(vec![Err(garbled()), Ok(3)], Repeat::Unsafe).await;
        assert_eq!((res.is_err(), tries), (true, 1), "a send was repeated");
        // An edit may be repeated: a second one only says "not modified".
        let (res, tries) = run(vec![Err(garbled()), Ok(3)], Repeat::Safe).await;
        assert_eq!((res.ok(), tries), (Some(3), 2));
    }

    #[tokio::test]
    async fn final_errors_are_not_retried() {
        let (res, tries) = run(vec![Err(RequestError::Api(ApiError::BotBlocked)), Ok(1)], Repeat::Safe).await;
        assert!(res.is_err());
        assert_eq!(tries, 1);
    }

    /// Every piece is valid Telegram HTML within the limit, and together they show `text`.
    fn assert_pieces_valid(text: &str, parts: &[String]) {
        let shown = |h: &str| -> String {
            tokens(h)
                .iter()
                .filter(|t| !matches!(t, Token::Tag(_)))
                .map(|t| t.text().into_owned())
                .collect()
        };
        for p in parts {
            assert!(visible_len(p) <= MAX_TEXT, "{} units", visible_len(p));
            let mut open = Vec::new();
            for t in tokens(p) {
                match t {
                    Token::Tag(t) if t.starts_with("</") => assert!(open.pop().is_some(), "unopened {t}"),
                    Token::Tag(t) => open.push(t),
                    Token::Char('&') => panic!("a cut entity in {p:?}"),
                    _ => {}
                }
            }
            assert!(open.is_empty(), "unclosed {open:?}");
        }
        assert_eq!(parts.iter().map(|p| shown(p)).collect::<String>(), shown(text));
    }

    #[test]
    fn long_html_is_cut_between_entities_and_tags_and_counted_in_utf16() {
        // Escaped user input: entities everywhere, one line, far over the limit.
        let input = "a&b<c>\"".repeat(2000);
        let html = format!("<b>Pratinjau</b>\n<code>{}</code>", crate::bot::i18n::esc(&input));
        let parts = split_text(&html);
        assert!(parts.len() >= 3, "{}", parts.len());
        assert_pieces_valid(&html, &parts);
        assert!(parts[1].starts_with("<code>"), "the open tag is opened again");
        // 3000 emoji are 3000 characters but 6000 UTF-16 units: two messages.
        let emoji = "😀".repeat(3000);
        let parts = split_text(&emoji);
        assert_eq!(parts.len(), 2);
        assert_pieces_valid(&emoji, &parts);
        assert_eq!(visible_len("&amp;&#128512;<b>x</b>"), 4);
    }

    #[test]
    fn splitting() {
        assert_eq!(split_text("hi"), vec!["hi".to_string()]);
        let long = "a\n".repeat(5000);
        let parts = split_text(&long);
        assert!(parts.len() >= 3);
        assert!(parts.iter().all(|p| p.chars().count() <= MAX_TEXT));
        assert_eq!(parts.concat(), long);
        let one_line = "é".repeat(9000);
        let parts = split_text(&one_line);
        assert_eq!(parts.len(), 3);
        assert_eq!(parts.concat(), one_line);
    }
}
