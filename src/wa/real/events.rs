//! whatsapp-rust events as [`WaEvent`]s, and the sink that forwards them to the supervisor.
//!
//! [`map_event`] is a pure function so every variant can be tested with the library's payload
//! builders. [`EventSink`] adds the state a mapping cannot know: whether the owner asked for
//! QR login (QR codes are issued on every unpaired connection, but only shown on request),
//! whether a pair-code request is in flight (its failure is returned to the caller, so the
//! matching event must not fail the pairing a second time), and whether the stream has been
//! closed (after a terminal event nothing more is sent).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tracing::{debug, info, warn};
use whatsapp_rust::types::events::{
    ConnectFailureReason, Event, EventHandler, EventInterest, EventKind, LoggedOut, MessageBatch,
};
use whatsapp_rust::wacore::proto_helpers::MessageExt;
use whatsapp_rust::waproto::whatsapp::Message;

use crate::wa::{MessageKind, WaEvent};

/// The event kinds the adapter listens to; the bus skips building everything else
/// (receipts, presence), which matters with thousands of sessions.
pub const KINDS: &[EventKind] = &[
    EventKind::Connected,
    EventKind::Disconnected,
    EventKind::PairSuccess,
    EventKind::PairError,
    EventKind::LoggedOut,
    EventKind::PairingQrCode,
    EventKind::PairingCode,
    EventKind::PairingCodeRefresh,
    EventKind::PairingCodeError,
    EventKind::PairingQrCodesExhausted,
    EventKind::QrScannedWithoutMultidevice,
    EventKind::ClientOutdated,
    EventKind::StreamReplaced,
    EventKind::TemporaryBan,
    EventKind::ConnectFailure,
    EventKind::StreamError,
    EventKind::Messages,
];

/// Maps one library event to what the supervisor needs, or `None` for events it does not
/// act on. `now_unix` turns a ban's duration into a deadline.
pub fn map_event(ev: &Event, now_unix: i64) -> Option<WaEvent> {
    Some(match ev {
        Event::Connected(_) => WaEvent::Connected,
        Event::Disconnected(d) => WaEvent::Disconnected {
            reason: d.reason.to_string(),
        },
        Event::PairSuccess(p) => WaEvent::PairSuccess { jid: p.id.to_string() },
        Event::PairError(p) => WaEvent::PairFailed {
            reason: format!("pairing failed: {}", p.error),
            retry_after: None,
        },
        Event::PairingCodeError(e) => {
            let throttled = e.rejection.is_some_and(|r| r.is_throttled());
            WaEvent::PairFailed {
                reason: if throttled {
                    "WhatsApp is limiting pairing requests for this number".to_string()
                } else {
                    format!("pairing code request failed: {}", e.error)
                },
                retry_after: e.backoff,
            }
        }
        Event::PairingCodeRefresh(_) => WaEvent::PairFailed {
            reason: "WhatsApp withdrew the pairing code; request a new one".to_string(),
            retry_after: None,
        },
        Event::PairingQrCodesExhausted(_) => WaEvent::PairFailed {
            reason: "the QR codes expired without a scan".to_string(),
            retry_after: None,
        },
        Event::QrScannedWithoutMultidevice(_) => WaEvent::PairFailed {
            reason: "the phone's WhatsApp does not support linked devices; update it".to_string(),
            retry_after: None,
        },
        Event::PairingQrCode(q) => WaEvent::Qr {
            code: q.code.clone(),
            ttl: q.timeout,
        },
        // A 403 (locked) or 406 (banned) `<failure>` at login is a logout to the library
        // (`ConnectFailureReason::is_logged_out`) but a ban to the owner: whatsmeow names
        // them `ConnectFailureMainDeviceGone` ("LOCKED" in WA Web) and
        // `ConnectFailureUnknownLogout` ("BANNED"), `connectionevents.go`.
        Event::LoggedOut(l) if l.on_connect && is_ban(l.reason) => WaEvent::AccountBanned {
            reason: logout_reason(l),
            locked: l.reason == ConnectFailureReason::AccountLocked,
        },
        Event::LoggedOut(l) => WaEvent::LoggedOut {
            reason: logout_reason(l),
        },
        Event::StreamReplaced(_) => WaEvent::StreamReplaced,
        Event::TemporaryBan(b) => WaEvent::TemporaryBan {
            reason: b.code.to_string(),
            until: now_unix.saturating_add(b.expire.num_seconds().max(0)),
        },
        Event::ClientOutdated(_) => WaEvent::ClientOutdated,
        Event::ConnectFailure(f) => {
            let reason = match &f.message {
                Some(m) => format!("connect failure {}: {m}", f.reason.code()),
                None => format!("connect failure {} ({:?})", f.reason.code(), f.reason),
            };
            // Only 500 and 503 are retried by the library; every other reason turns its
            // auto-reconnect off and ends the run loop, so the session is over.
            if f.reason.should_reconnect() {
                WaEvent::ConnectAttemptFailed { reason }
            } else {
                WaEvent::ConnectFailed {
                    code: u32::try_from(f.reason.code()).unwrap_or(0),
                    reason,
                }
            }
        }
        _ => return None,
    })
}

/// The messages in a batch of decrypted incoming messages, as [`WaEvent::Message`]s, for an
/// account none of whose identities are known (so no mention is recognised).
pub fn map_messages(batch: &MessageBatch) -> Vec<WaEvent> {
    map_messages_for(batch, &[])
}

/// The messages in a batch, as [`WaEvent::Message`]s. Our own messages (sent from another
/// device of this account) and messages with nothing to show (reactions, protocol messages,
/// key distribution) are left out. `own` holds the user parts of this account's JIDs (its
/// phone digits, its LID when known): a group message naming one in `mentionedJid` mentions
/// it. Media arrive without their bytes here; the sink downloads the files of photos and
/// documents ([`EventSink::fetch_media_with`]).
pub fn map_messages_for(batch: &MessageBatch, own: &[String]) -> Vec<WaEvent> {
    batch
        .iter()
        .filter(|m| !m.info.source.is_from_me)
        // Status updates (`status@broadcast`) and channels are not conversations.
        .filter(|m| !matches!(m.info.source.chat.server.as_str(), "broadcast" | "newsletter"))
        .filter_map(|m| {
            let base = m.message.get_base_message();
            let (kind, text, mentions) = content_of(base, m.message.text_content(), m.message.get_caption())?;
            let src = &m.info.source;
            // A LID sender comes with its phone number as the alternate address
            // (`participant_pn` / `sender_pn`) when WhatsApp puts it in the stanza.
            let sender = match (&src.sender, &src.sender_alt) {
                (s, _) if s.is_pn() => s.user.to_string(),
                (_, Some(alt)) if alt.is_pn() => alt.user.to_string(),
                (s, _) => s.to_non_ad().to_string(),
            };
            let chat = if src.is_group {
                src.chat.to_string()
            } else {
                sender.clone()
            };
            let mentions_me = src.is_group
                && mentions
                    .iter()
                    .any(|j| own.iter().any(|o| j.split('@').next() == Some(o.as_str())));
            Some(WaEvent::Message {
                id: m.info.id.to_string(),
                chat,
                sender,
                text,
                meta: crate::wa::MessageMeta {
                    kind,
                    push_name: m.info.push_name.clone(),
                    media: None,
                    // Stanzas the server queued while we were away carry `offline`
                    // (whatsmeow `handleEncryptedMessage`, wacore `MessageInfo::is_offline`).
                    offline: m.info.is_offline,
                    mentions_me,
                    sent_at: m.info.timestamp.timestamp(),
                },
            })
        })
        .collect()
}

/// Whether a logout reason is WhatsApp stopping the account (locked or banned) rather than
/// the phone unlinking this device.
fn is_ban(reason: ConnectFailureReason) -> bool {
    matches!(
        reason,
        ConnectFailureReason::AccountLocked | ConnectFailureReason::UnknownLogout
    )
}

/// What a message holds: its kind, its text (or caption, or a document's file name), and the
/// JIDs it mentions; `None` for messages with nothing to show a person.
fn content_of(
    base: &whatsapp_rust::waproto::whatsapp::Message,
    text: Option<&str>,
    caption: Option<&str>,
) -> Option<(MessageKind, String, Vec<String>)> {
    let mentions = |ci: Option<&whatsapp_rust::waproto::whatsapp::ContextInfo>| {
        ci.map(|c| c.mentioned_jid.clone()).unwrap_or_default()
    };
    if let Some(t) = text {
        let ci = base
            .extended_text_message
            .as_option()
            .and_then(|e| e.context_info.as_option());
        return Some((MessageKind::Text, t.to_string(), mentions(ci)));
    }
    let caption = caption.unwrap_or("").to_string();
    if let Some(i) = base.image_message.as_option() {
        return Some((MessageKind::Image, caption, mentions(i.context_info.as_option())));
    }
    if let Some(d) = base.document_message.as_option() {
        let shown = if caption.is_empty() {
            d.file_name.clone().unwrap_or_default()
        } else {
            caption
        };
        return Some((MessageKind::Document, shown, mentions(d.context_info.as_option())));
    }
    if base.audio_message.as_option().is_some() {
        return Some((MessageKind::Voice, String::new(), Vec::new()));
    }
    if let Some(v) = base.video_message.as_option() {
        return Some((MessageKind::Video, caption, mentions(v.context_info.as_option())));
    }
    if base.sticker_message.as_option().is_some() {
        return Some((MessageKind::Sticker, String::new(), Vec::new()));
    }
    let other = base.contact_message.as_option().is_some()
        || base.location_message.as_option().is_some()
        || base.live_location_message.as_option().is_some()
        || base.contacts_array_message.as_option().is_some();
    other.then(|| (MessageKind::Other, String::new(), Vec::new()))
}

/// After these the library stops its run loop: the stream ends with them.
pub fn is_terminal(ev: &WaEvent) -> bool {
    matches!(
        ev,
        WaEvent::LoggedOut { .. }
            | WaEvent::AccountBanned { .. }
            | WaEvent::StreamReplaced
            | WaEvent::TemporaryBan { .. }
            | WaEvent::ClientOutdated
            | WaEvent::ConnectFailed { .. }
    )
}

fn logout_reason(l: &LoggedOut) -> String {
    let base = match l.reason {
        ConnectFailureReason::LoggedOut => "the device was unlinked from the phone".to_string(),
        ConnectFailureReason::AccountLocked => "WhatsApp locked the account".to_string(),
        ConnectFailureReason::UnknownLogout => "WhatsApp banned the account".to_string(),
        other => format!("logged out ({other:?})"),
    };
    let code = l.reason.code();
    match l
        .logout_message
        .as_ref()
        .and_then(|m| m.header.clone().or(m.subtext.clone()))
    {
        Some(text) => format!("{base} ({code}): {text}"),
        None => format!("{base} ({code})"),
    }
}

/// Where a session's events go. Shared by the library's event bus (which calls
/// [`EventHandler::handle_event`] inline) and the session.
#[derive(Clone)]
pub struct EventSink {
    inner: Arc<SinkInner>,
}

struct SinkInner {
    /// `None` once the stream is closed: after a terminal event, a disconnect, or the end of
    /// the run loop.
    tx: Mutex<Option<mpsc::UnboundedSender<WaEvent>>>,
    /// Once the client exists: incoming messages go through this queue, in order, so the
    /// file of a photo or document can be downloaded before its message is passed on.
    fetcher: Mutex<Option<mpsc::UnboundedSender<Box<Fetch>>>>,
    /// The owner asked for QR login: forward QR codes and QR failures.
    qr_mode: AtomicBool,
    /// The user parts of this account's own JIDs, to recognise mentions of it.
    own: Mutex<Vec<String>>,
    /// Pair-code requests in flight: their failures are returned, not sent.
    requesting: AtomicUsize,
    /// The last QR issued, re-sent when QR login starts mid-rotation.
    last_qr: Mutex<Option<(String, Duration, Instant)>>,
    /// Validity of the last pairing code issued, as the library advertised it.
    last_code_ttl: Mutex<Option<Duration>>,
    /// Connection health, for failed-attempt and outage events.
    health: Mutex<Health>,
    /// Woken on every login and when the stream ends, for calls waiting out a reconnect.
    changed: tokio::sync::Notify,
}

/// What the sink knows about the connection: the library reports neither failed connect
/// attempts nor how long an outage lasts, so the sink works both out from the transports
/// it sees created and the events that follow.
#[derive(Debug)]
struct Health {
    /// A transport was created and has not yet reached the server (no login, QR or
    /// pairing event since).
    attempt_open: bool,
    /// When the connection went down; `None` while it is up (or before the first login).
    down_since: Option<Instant>,
    /// Bumped on every recovery, so a pending outage timer knows it is stale.
    epoch: u64,
    /// The last reason the connection was down.
    reason: String,
    /// How long it may stay down before an `Outage` is sent.
    outage_after: Duration,
    // --- peer ---
    /// The last attempt failed at the account's proxy: why (masked proxy and reason).
    proxy_down: Option<String>,
}

impl EventSink {
    /// A sink and the receiver the supervisor reads.
    pub fn new() -> (Self, mpsc::UnboundedReceiver<WaEvent>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let sink = Self {
            inner: Arc::new(SinkInner {
                tx: Mutex::new(Some(tx)),
                fetcher: Mutex::new(None),
                qr_mode: AtomicBool::new(false),
                own: Mutex::new(Vec::new()),
                requesting: AtomicUsize::new(0),
                last_qr: Mutex::new(None),
                last_code_ttl: Mutex::new(None),
                health: Mutex::new(Health {
                    attempt_open: false,
                    down_since: None,
                    epoch: 0,
                    reason: String::new(),
                    outage_after: Duration::from_secs(120),
                    proxy_down: None,
                }),
                changed: tokio::sync::Notify::new(),
            }),
        };
        (sink, rx)
    }

    /// Adds one of this account's own identities (phone digits or LID user part), so group
    /// messages mentioning it are marked.
    pub fn add_own(&self, user: &str) {
        let mut own = self.inner.own.lock().unwrap_or_else(|e| e.into_inner());
        if !own.iter().any(|o| o == user) {
            own.push(user.to_string());
        }
    }

    /// Sends one event; a terminal one closes the stream after it.
    pub fn send(&self, ev: WaEvent) {
        let terminal = is_terminal(&ev);
        let wake = terminal || matches!(ev, WaEvent::Connected);
        {
            let mut tx = self.inner.tx.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(t) = tx.as_ref() {
                if t.send(ev).is_err() {
                    *tx = None;
                }
            }
            if terminal {
                *tx = None;
            }
        }
        if wake {
            self.inner.changed.notify_waiters();
        }
    }

    /// From now on downloads the files of incoming photos and documents through `client`
    /// (from WhatsApp's media servers, decrypted by the library) before passing their
    /// messages on. One task per session keeps the messages in the order they came; it
    /// ends with the sink.
    pub fn fetch_media_with(&self, client: std::sync::Weak<whatsapp_rust::Client>) {
        // Boxed: the channel allocates its first block of 32 slots up front, 7 KiB per
        // session for an unboxed event (measured with heaptrack), 256 bytes boxed.
        let (tx, mut rx) = mpsc::unbounded_channel::<Box<Fetch>>();
        let sink = Arc::downgrade(&self.inner);
        tokio::spawn(async move {
            while let Some(fetch) = rx.recv().await {
                let (mut ev, media) = *fetch;
                if let (Some(m), Some(client)) = (media, client.upgrade()) {
                    if let WaEvent::Message { meta, .. } = &mut ev {
                        meta.media = download(&client, &m).await;
                    }
                }
                match sink.upgrade() {
                    Some(inner) => EventSink { inner }.send(ev),
                    None => break,
                }
            }
        });
        *self.inner.fetcher.lock().unwrap_or_else(|e| e.into_inner()) = Some(tx);
    }

    /// Passes incoming messages on, through the download queue when there is one.
    fn messages(&self, batch: &MessageBatch) {
        let own = self.inner.own.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let fetcher = self.inner.fetcher.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let Some(fetcher) = fetcher else {
            for m in map_messages_for(batch, &own) {
                self.send(m);
            }
            return;
        };
        let mut files: std::collections::HashMap<String, Box<Message>> = batch
            .iter()
            .filter_map(|m| {
                let b = m.message.get_base_message();
                let file = b.image_message.as_option().is_some() || b.document_message.as_option().is_some();
                file.then(|| (m.info.id.to_string(), Box::new(b.clone())))
            })
            .collect();
        for ev in map_messages_for(batch, &own) {
            let file = match &ev {
                WaEvent::Message { id, .. } => files.remove(id),
                _ => None,
            };
            if let Err(e) = fetcher.send(Box::new((ev, file))) {
                self.send(e.0 .0);
            }
        }
    }

    /// Ends the stream: the supervisor's receiver sees `None`.
    pub fn close(&self) {
        self.inner.tx.lock().unwrap_or_else(|e| e.into_inner()).take();
        self.inner.changed.notify_waiters();
    }

    /// Waits until `ready` holds, re-checking it after every login and when the stream ends,
    /// for at most `bound`. Whether it holds at the end is returned.
    pub async fn wait_until(&self, bound: Duration, ready: impl Fn() -> bool) -> bool {
        let deadline = tokio::time::Instant::now() + bound;
        loop {
            // Registered before the check, so a login between the check and the wait wakes it.
            let woken = self.inner.changed.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            if ready() {
                return true;
            }
            if self.is_closed() || tokio::time::timeout_at(deadline, woken).await.is_err() {
                return ready();
            }
        }
    }

    /// Whether the stream is closed.
    pub fn is_closed(&self) -> bool {
        self.inner.tx.lock().unwrap_or_else(|e| e.into_inner()).is_none()
    }

    /// Sets how long the connection may be down before one `Outage` is sent.
    pub fn set_outage_after(&self, after: Duration) {
        self.health().outage_after = after;
    }

    fn health(&self) -> std::sync::MutexGuard<'_, Health> {
        self.inner.health.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A new connection attempt starts. If the previous one never reached the server, it
    /// failed: that is reported now (the library itself says nothing about it).
    pub fn attempt_started(&self) {
        let failed = {
            let mut h = self.health();
            let failed = h.attempt_open;
            h.attempt_open = true;
            failed.then(|| {
                if h.reason.is_empty() {
                    "the connection attempt failed".to_string()
                } else {
                    h.reason.clone()
                }
            })
        };
        if let Some(reason) = failed {
            self.send(WaEvent::ConnectAttemptFailed { reason: reason.clone() });
            self.went_down(reason);
        }
    }

    /// Creating a transport failed outright (no network, refused).
    pub fn attempt_failed(&self, reason: String) {
        self.health().attempt_open = false;
        self.send(WaEvent::ConnectAttemptFailed { reason: reason.clone() });
        self.went_down(reason);
    }

    /// Creating a transport failed at the account's proxy (refused, unreachable, bad
    /// credentials): its own event, so nobody reads it as a WhatsApp outage.
    pub fn proxy_failed(&self, proxy: String, reason: String) {
        let why = format!("proxy {proxy}: {reason}");
        {
            let mut h = self.health();
            h.attempt_open = false;
            h.proxy_down = Some(why.clone());
        }
        self.send(WaEvent::ProxyFailed { proxy, reason });
        self.went_down(why);
        // --- proxy2 --- wakes a pairing request waiting on the socket.
        self.inner.changed.notify_waiters();
    }

    /// Why the proxy failed, while the connection is down because of it.
    pub fn proxy_down(&self) -> Option<String> {
        self.health().proxy_down.clone()
    }

    /// The attempt reached the server (logged in, or is pairing).
    fn attempt_reached_server(&self) {
        self.health().attempt_open = false;
    }

    fn recovered(&self) {
        let mut h = self.health();
        h.attempt_open = false;
        h.proxy_down = None;
        h.down_since = None;
        h.reason.clear();
        h.epoch += 1;
    }

    /// Notes that the connection is down; the first time per outage it arms a timer that
    /// sends one `Outage` unless the connection is back by then.
    fn went_down(&self, reason: String) {
        let (epoch, after) = {
            let mut h = self.health();
            h.reason = reason;
            if h.down_since.is_some() {
                return;
            }
            h.down_since = Some(Instant::now());
            (h.epoch, h.outage_after)
        };
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let sink = self.clone();
        rt.spawn(async move {
            tokio::time::sleep(after).await;
            let outage = {
                let h = sink.health();
                match h.down_since {
                    Some(since) if h.epoch == epoch => Some((h.reason.clone(), since.elapsed())),
                    _ => None,
                }
            };
            if let Some((reason, down_for)) = outage {
                warn!(?down_for, %reason, "whatsapp connection down too long");
                sink.send(WaEvent::Outage { reason, down_for });
            }
        });
    }

    /// Turns QR forwarding on or off; turning it on re-sends the current QR if still valid.
    pub fn set_qr_mode(&self, on: bool) {
        self.inner.qr_mode.store(on, Ordering::SeqCst);
        if !on {
            return;
        }
        let current = self.inner.last_qr.lock().unwrap_or_else(|e| e.into_inner()).clone();
        if let Some((code, ttl, at)) = current {
            let left = ttl.saturating_sub(at.elapsed());
            if left > Duration::from_secs(3) {
                self.send(WaEvent::Qr { code, ttl: left });
            }
        }
    }

    /// Marks a pair-code request as in flight until the guard drops.
    pub fn requesting(&self) -> RequestGuard {
        self.inner.requesting.fetch_add(1, Ordering::SeqCst);
        RequestGuard { sink: self.clone() }
    }

    /// The validity the library gave the last pairing code, taken once.
    pub fn take_code_ttl(&self) -> Option<Duration> {
        self.inner
            .last_code_ttl
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
    }

    /// Applies the stateful rules to one library event.
    pub fn handle(&self, ev: &Event) {
        let qr_mode = self.inner.qr_mode.load(Ordering::SeqCst);
        match ev {
            Event::Connected(_) => self.recovered(),
            Event::PairingQrCode(_) | Event::PairingCode(_) | Event::PairSuccess(_) => self.attempt_reached_server(),
            Event::Disconnected(d) => {
                self.health().attempt_open = false;
                self.went_down(format!("disconnected: {}", d.reason));
            }
            _ => {}
        }
        match ev {
            Event::PairingQrCode(q) => {
                *self.inner.last_qr.lock().unwrap_or_else(|e| e.into_inner()) =
                    Some((q.code.clone(), q.timeout, Instant::now()));
                if !qr_mode {
                    return;
                }
            }
            Event::PairingQrCodesExhausted(_) | Event::QrScannedWithoutMultidevice(_) if !qr_mode => {
                debug!("QR event outside QR login ignored");
                return;
            }
            Event::PairingCode(c) => {
                *self.inner.last_code_ttl.lock().unwrap_or_else(|e| e.into_inner()) = Some(c.timeout);
                return;
            }
            Event::PairingCodeError(e) if self.inner.requesting.load(Ordering::SeqCst) > 0 => {
                debug!(error = %e.error, "pair-code failure returned to the caller");
                return;
            }
            Event::StreamError(e) => {
                info!(code = %e.code, "stream error from WhatsApp");
                return;
            }
            Event::Messages(batch) => {
                self.messages(batch);
                return;
            }
            _ => {}
        }
        match map_event(ev, crate::db::now()) {
            Some(mapped) => {
                if is_terminal(&mapped) {
                    warn!(event = ?mapped, "session ended by WhatsApp");
                }
                self.send(mapped);
            }
            None => debug!("unmapped event ignored"),
        }
    }
}

/// Keeps a pair-code request counted as in flight.
pub struct RequestGuard {
    sink: EventSink,
}

impl Drop for RequestGuard {
    fn drop(&mut self) {
        self.sink.inner.requesting.fetch_sub(1, Ordering::SeqCst);
    }
}

/// An incoming message on its way, with the message holding its file, if any.
type Fetch = (WaEvent, Option<Box<Message>>);

/// The file of a photo or document message, downloaded and decrypted; `None` (the inbox
/// then names the file) when it is over the inbox's size limit or cannot be fetched.
async fn download(client: &whatsapp_rust::Client, m: &Message) -> Option<crate::wa::Media> {
    use whatsapp_rust::download::Downloadable;
    let (file, file_name, mime, length): (&dyn Downloadable, String, Option<String>, Option<u64>) =
        if let Some(i) = m.image_message.as_option() {
            (i, "photo.jpg".into(), i.mimetype.clone(), i.file_length)
        } else if let Some(d) = m.document_message.as_option() {
            let name = d.file_name.clone().unwrap_or_else(|| "file".into());
            (d, name, d.mimetype.clone(), d.file_length)
        } else {
            return None;
        };
    let max = crate::wa::INBOX_MEDIA_LIMIT;
    if length.is_some_and(|l| l > max as u64) {
        return None;
    }
    match tokio::time::timeout(Duration::from_secs(60), client.download(file)).await {
        Ok(Ok(bytes)) if bytes.len() <= max => Some(crate::wa::Media {
            file_name,
            mime: mime.unwrap_or_default(),
            bytes,
        }),
        Ok(Ok(_)) => None,
        Ok(Err(e)) => {
            warn!(error = %format!("{e:#}"), "could not download an incoming file");
            None
        }
        Err(_) => {
            warn!("downloading an incoming file timed out");
            None
        }
    }
}

/// The handler registered on the library's event bus.
pub struct BusHandler(pub EventSink);

impl EventHandler for BusHandler {
    fn handle_event(&self, event: Arc<Event>) {
        self.0.handle(&event);
    }

    fn interest(&self) -> EventInterest {
        EventInterest::of(KINDS)
    }
}
