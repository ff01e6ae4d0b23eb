//! The inbox (issue 16): messages that arrive at a WhatsApp account, kept in the account's
//! bot data and forwarded to its owner's Telegram chat when the owner switched the inbox on.
//!
//! # Delivery: at most once to Telegram, never lost from the list
//! Every message is written to SQLite (`inbox_messages`, state `pending`) by the account's
//! supervisor before anything else happens to it; WhatsApp's redelivery of the same message
//! (after a crash before its receipt) is the same row (`UNIQUE (chat, wa_id)`). The forwarder
//! marks a row `sending` before it calls Telegram and `forwarded` (with the Telegram message,
//! the reply link) once Telegram accepted it. A `sending` row found at startup was interrupted
//! by a crash: Telegram may or may not have shown it, and `sendMessage` cannot be asked or
//! made idempotent, so it is never sent again (`unknown`) but counted in the next digest and
//! shown in "Pesan masuk". Nothing is forwarded twice; nothing is lost from the list; the one
//! message a crash interrupts is announced as a count instead of in full.
//!
//! # Rate
//! Per owner, at most `TGWA_INBOX_RATE_PER_MIN` messages are forwarded in any minute; past
//! that, rows are `held` and one digest per account every `TGWA_INBOX_DIGEST_SECS` counts them.
//! Rows older than `TGWA_INBOX_RETENTION_DAYS` are deleted by the hourly sweep.

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rusqlite::{params, Connection, OptionalExtension};
use tracing::{debug, warn};

use crate::account::{Account, AccountStatus};
use crate::db::{now, DbError, Schema};
use crate::ids::{AccountId, TelegramId};
use crate::manager::{AccountHook, AccountManager, Ending, MessageSink};
use crate::wa::{Media, MessageKind, MessageMeta, WaEvent};

/// The largest file kept to forward; a bigger one is named instead (the adapters download
/// nothing bigger: [`crate::wa::INBOX_MEDIA_LIMIT`]).
pub const MAX_MEDIA_BYTES: usize = crate::wa::INBOX_MEDIA_LIMIT;

/// Settings key: the pairing generation the inbox was switched on for (absent: off). Tied to
/// the generation so a new pairing of the number starts with the inbox off.
const KEY_ENABLED: &str = "inbox_enabled_generation";
/// Settings key: forward group messages that mention the account (`1`).
const KEY_MENTIONS: &str = "inbox_mentions";

/// The inbox's settings from the configuration.
#[derive(Debug, Clone, Copy)]
pub struct InboxOptions {
    /// Messages forwarded per owner in any minute before digests take over.
    pub rate_per_min: usize,
    /// Least time between two digests of one account.
    pub digest_every: Duration,
    /// How long stored messages are kept.
    pub retention: Duration,
}

impl InboxOptions {
    /// From the configuration.
    pub fn from_config(c: &crate::config::Config) -> Self {
        Self {
            rate_per_min: c.inbox_rate_per_min,
            digest_every: c.inbox_digest_every,
            retention: Duration::from_secs(c.inbox_retention_days * 86_400),
        }
    }
}

/// One account's inbox switches.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InboxSettings {
    /// Private messages are forwarded.
    pub enabled: bool,
    /// Group messages that mention the account are forwarded too.
    pub mentions: bool,
}

/// A stored incoming message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// Row ID, in arrival order.
    pub seq: i64,
    /// The chat: a group JID, a phone's digits, or a LID JID.
    pub chat: String,
    /// The sender's digits or LID JID.
    pub sender: String,
    /// The sender's push name.
    pub push_name: String,
    /// What it is.
    pub kind: MessageKind,
    /// Its text or caption.
    pub text: String,
    /// The file, until it is forwarded.
    pub media: Option<Media>,
    /// Queued by WhatsApp while the account was offline.
    pub offline: bool,
    /// When it was sent (Unix seconds).
    pub sent_at: i64,
    /// The owner it arrived for (Telegram ID).
    pub owner: i64,
    /// The account's pairing generation when it arrived.
    pub generation: i64,
}

/// One chat in "Pesan masuk".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatSummary {
    /// The chat: a group JID, a phone's digits, or a LID JID.
    pub chat: String,
    /// The latest sender's push name in that chat.
    pub name: String,
    /// Messages kept from it.
    pub count: i64,
    /// The latest message's kind.
    pub last_kind: MessageKind,
    /// The latest message's text.
    pub last_text: String,
    /// When the latest message was sent (Unix seconds).
    pub last_at: i64,
}

/// What a digest announces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DigestCount {
    /// Messages.
    pub messages: i64,
    /// Distinct chats they came from.
    pub chats: i64,
}

/// The handle: records incoming messages (as the manager's [`MessageSink`]), ends an
/// account's inbox with it (as an [`AccountHook`]), and wakes the forwarder.
#[derive(Clone)]
pub struct Inbox {
    inner: Arc<Inner>,
}

struct Inner {
    manager: AccountManager,
    options: InboxOptions,
    /// Accounts with rows to look at, for the forwarder.
    dirty: Mutex<HashSet<AccountId>>,
    /// Wakes the forwarder.
    wake: tokio::sync::Notify,
}

impl Inbox {
    /// An inbox over `manager`, registered with it for messages and account endings.
    pub fn attach(manager: AccountManager, options: InboxOptions) -> Self {
        let inbox = Self {
            inner: Arc::new(Inner {
                manager: manager.clone(),
                options,
                dirty: Mutex::new(HashSet::new()),
                wake: tokio::sync::Notify::new(),
            }),
        };
        let weak = Arc::downgrade(&inbox.inner);
        manager.add_hook(Arc::new(Hook(weak.clone())));
        manager.set_message_sink(Arc::new(Hook(weak)));
        inbox
    }

    /// The options in force.
    pub fn options(&self) -> InboxOptions {
        self.inner.options
    }

    /// The account manager.
    pub fn manager(&self) -> &AccountManager {
        &self.inner.manager
    }

    /// Runs `f` on the account's bot data, unless its file is gone (a removed account's
    /// files are in trash: never make a new, empty one in their place).
    pub async fn db<F, R>(&self, acc: &Account, f: F) -> Result<Option<R>, DbError>
    where
        F: FnOnce(&mut Connection) -> Result<R, DbError> + Send + 'static,
        R: Send + 'static,
    {
        let path: PathBuf = acc.bot_data_db_path.clone();
        if acc.status == AccountStatus::Removed || !path.exists() {
            return Ok(None);
        }
        Ok(Some(self.inner.manager.pools().with(path, Schema::Account, f).await?))
    }

    /// The account's switches.
    pub async fn settings(&self, acc: &Account) -> Result<InboxSettings, DbError> {
        let gen = acc.generation;
        Ok(self.db(acc, move |c| settings(c, gen)).await?.unwrap_or_default())
    }

    /// Switches the inbox (or the group mentions) on or off for the account's current pairing.
    pub async fn set(&self, acc: &Account, enabled: Option<bool>, mentions: Option<bool>) -> Result<(), DbError> {
        let gen = acc.generation;
        self.db(acc, move |c| {
            if let Some(on) = enabled {
                set_setting(c, KEY_ENABLED, on.then(|| gen.to_string()))?;
            }
            if let Some(on) = mentions {
                set_setting(c, KEY_MENTIONS, on.then(|| "1".to_string()))?;
            }
            Ok(())
        })
        .await?;
        Ok(())
    }

    /// Records one incoming message for `acc` if its inbox wants it; wakes the forwarder.
    pub async fn record(&self, acc: &Account, ev: WaEvent) -> Result<bool, DbError> {
        let WaEvent::Message {
            id,
            chat,
            sender,
            text,
            meta,
        } = ev
        else {
            return Ok(false);
        };
        let (owner, gen) = (acc.telegram_id.get(), acc.generation);
        let stored = self
            .db(acc, move |c| {
                let s = settings(c, gen)?;
                if !wanted(&s, &chat, &meta) {
                    return Ok(false);
                }
                insert(c, &id, &chat, &sender, &text, &meta, owner, gen)
            })
            .await?
            .unwrap_or(false);
        if stored {
            self.mark_dirty(acc.id);
        }
        Ok(stored)
    }

    /// Asks the forwarder to look at `id`'s rows.
    pub fn mark_dirty(&self, id: AccountId) {
        self.inner.dirty.lock().unwrap_or_else(|e| e.into_inner()).insert(id);
        self.inner.wake.notify_one();
    }

    /// The accounts marked since the last call.
    pub fn take_dirty(&self) -> Vec<AccountId> {
        self.inner
            .dirty
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain()
            .collect()
    }

    /// Waits until something is marked.
    pub async fn woken(&self) {
        self.inner.wake.notified().await;
    }

    /// Ends everything of `acc`'s inbox: no reply link of it works again, nothing waiting is
    /// forwarded, and the switches go off.
    async fn end_account(&self, acc: &Account, why: Ending) {
        // A pairing that never completed has no inbox; a re-pair's old one ended with
        // `LoggedOut` or `RePaired` already, and its file must not be touched now.
        if why == Ending::PairingAbandoned {
            return;
        }
        let res = self.db(acc, end).await;
        match res {
            Ok(Some(n)) => debug!(account_id = %acc.id, links = n, why = why.as_str(), "inbox ended"),
            Ok(None) => {}
            Err(e) => warn!(account_id = %acc.id, error = %e, "could not end the inbox"),
        }
    }
}

/// Holds the inbox weakly, so it ends with its owner.
struct Hook(std::sync::Weak<Inner>);

impl Hook {
    fn inbox(&self) -> Option<Inbox> {
        self.0.upgrade().map(|inner| Inbox { inner })
    }
}

#[async_trait::async_trait]
impl AccountHook for Hook {
    async fn account_ending(&self, acc: &Account, why: Ending) {
        if let Some(inbox) = self.inbox() {
            inbox.end_account(acc, why).await;
        }
    }
}

#[async_trait::async_trait]
impl MessageSink for Hook {
    async fn incoming(&self, acc: &Account, ev: WaEvent) {
        if let Some(inbox) = self.inbox() {
            if let Err(e) = inbox.record(acc, ev).await {
                warn!(account_id = %acc.id, error = %e, "could not record an incoming message");
            }
        }
    }
}

/// Whether a message goes to the inbox: private chats, and group messages mentioning the
/// account when that is on. Status updates and channels never.
pub fn wanted(s: &InboxSettings, chat: &str, meta: &MessageMeta) -> bool {
    if !s.enabled || chat.ends_with("@broadcast") || chat.ends_with("@newsletter") {
        return false;
    }
    if chat.ends_with("@g.us") {
        return s.mentions && meta.mentions_me;
    }
    true
}

// ----- storage (one account's bot data) -----

fn setting(c: &Connection, key: &str) -> rusqlite::Result<Option<String>> {
    c.query_row("SELECT value FROM settings WHERE key = ?1", [key], |r| r.get(0))
        .optional()
}

fn set_setting(c: &Connection, key: &str, value: Option<String>) -> Result<(), DbError> {
    match value {
        Some(v) => c.execute(
            "INSERT INTO settings (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            params![key, v],
        )?,
        None => c.execute("DELETE FROM settings WHERE key = ?1", [key])?,
    };
    Ok(())
}

/// The switches for pairing `generation`.
pub fn settings(c: &Connection, generation: i64) -> Result<InboxSettings, DbError> {
    let enabled = setting(c, KEY_ENABLED)?.and_then(|v| v.parse::<i64>().ok()) == Some(generation);
    let mentions = setting(c, KEY_MENTIONS)?.as_deref() == Some("1");
    Ok(InboxSettings { enabled, mentions })
}

/// Stores a message as `pending`; false when it was already stored (a redelivery).
#[allow(clippy::too_many_arguments)]
pub fn insert(
    c: &Connection,
    wa_id: &str,
    chat: &str,
    sender: &str,
    text: &str,
    meta: &MessageMeta,
    owner: i64,
    generation: i64,
) -> Result<bool, DbError> {
    let media = meta.media.as_ref().filter(|m| m.bytes.len() <= MAX_MEDIA_BYTES);
    let n = c.execute(
        "INSERT OR IGNORE INTO inbox_messages
             (wa_id, chat, sender, push_name, kind, text, media, media_name, media_mime, offline, sent_at,
              received_at, owner, generation)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
        params![
            wa_id,
            chat,
            sender,
            meta.push_name,
            meta.kind.as_str(),
            text,
            media.map(|m| m.bytes.as_slice()),
            meta.media.as_ref().map(|m| m.file_name.as_str()),
            meta.media.as_ref().map(|m| m.mime.as_str()),
            meta.offline,
            if meta.sent_at > 0 { meta.sent_at } else { now() },
            now(),
            owner,
            generation,
        ],
    )?;
    Ok(n == 1)
}

fn stored_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Stored> {
    let bytes: Option<Vec<u8>> = r.get(6)?;
    let name: Option<String> = r.get(7)?;
    let mime: Option<String> = r.get(8)?;
    Ok(Stored {
        seq: r.get(0)?,
        chat: r.get(1)?,
        sender: r.get(2)?,
        push_name: r.get(3)?,
        kind: MessageKind::parse(&r.get::<_, String>(4)?),
        text: r.get(5)?,
        media: bytes.map(|bytes| Media {
            file_name: name.unwrap_or_default(),
            mime: mime.unwrap_or_default(),
            bytes,
        }),
        offline: r.get(9)?,
        sent_at: r.get(10)?,
        owner: r.get(11)?,
        generation: r.get(12)?,
    })
}

const COLUMNS: &str =
    "seq, chat, sender, push_name, kind, text, media, media_name, media_mime, offline, sent_at, owner, generation";

/// The oldest `pending` rows, in arrival order.
pub fn pending(c: &Connection, limit: usize) -> Result<Vec<Stored>, DbError> {
    let mut st = c.prepare(&format!(
        "SELECT {COLUMNS} FROM inbox_messages WHERE state = 'pending' ORDER BY seq LIMIT ?1"
    ))?;
    let rows = st.query_map([limit as i64], stored_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Moves a row from one state to another; false when it was not in `from`.
pub fn transition(c: &Connection, seq: i64, from: &str, to: &str) -> Result<bool, DbError> {
    Ok(c.execute(
        "UPDATE inbox_messages SET state = ?3 WHERE seq = ?1 AND state = ?2",
        params![seq, from, to],
    )? == 1)
}

/// Telegram accepted the row as message `tg_message` in `tg_chat`: that is its reply link.
/// The file is dropped: Telegram keeps it now.
pub fn forwarded(c: &Connection, seq: i64, tg_chat: i64, tg_message: i64) -> Result<(), DbError> {
    c.execute(
        "UPDATE inbox_messages SET state = 'forwarded', tg_chat = ?2, tg_message = ?3, media = NULL
         WHERE seq = ?1",
        params![seq, tg_chat, tg_message],
    )?;
    Ok(())
}

/// Startup: sends a crash interrupted are never repeated (see the module docs). Returns how
/// many.
pub fn recover(c: &Connection) -> Result<usize, DbError> {
    Ok(c.execute(
        "UPDATE inbox_messages SET state = 'unknown', media = NULL WHERE state = 'sending'",
        [],
    )?)
}

/// Whether rows wait for a digest.
pub fn has_held(c: &Connection) -> Result<bool, DbError> {
    Ok(c.query_row(
        "SELECT EXISTS (SELECT 1 FROM inbox_messages WHERE state IN ('held', 'unknown'))",
        [],
        |r| r.get(0),
    )?)
}

/// Counts the rows waiting for a digest and marks them `digested`.
pub fn take_held(c: &mut Connection) -> Result<DigestCount, DbError> {
    let tx = c.transaction()?;
    let (messages, chats) = tx.query_row(
        "SELECT COUNT(*), COUNT(DISTINCT chat) FROM inbox_messages WHERE state IN ('held', 'unknown')",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    tx.execute(
        "UPDATE inbox_messages SET state = 'digested', media = NULL WHERE state IN ('held', 'unknown')",
        [],
    )?;
    tx.commit()?;
    Ok(DigestCount { messages, chats })
}

/// The row Telegram message `tg_message` in `tg_chat` was forwarded as.
pub fn link(c: &Connection, tg_chat: i64, tg_message: i64) -> Result<Option<Stored>, DbError> {
    Ok(c.query_row(
        &format!("SELECT {COLUMNS} FROM inbox_messages WHERE tg_chat = ?1 AND tg_message = ?2"),
        params![tg_chat, tg_message],
        stored_row,
    )
    .optional()?)
}

/// One page of chats, latest first, and how many messages and chats are kept in all.
pub fn chats(c: &Connection, page: u32, per_page: u32) -> Result<(Vec<ChatSummary>, DigestCount), DbError> {
    let totals = c.query_row(
        "SELECT COUNT(*), COUNT(DISTINCT chat) FROM inbox_messages WHERE state <> 'ended'",
        [],
        |r| {
            Ok(DigestCount {
                messages: r.get(0)?,
                chats: r.get(1)?,
            })
        },
    )?;
    let mut st = c.prepare(
        "SELECT m.chat, m.push_name, g.n, m.kind, m.text, m.sent_at
         FROM (SELECT chat, MAX(seq) AS last, COUNT(*) AS n FROM inbox_messages
               WHERE state <> 'ended' GROUP BY chat) g
         JOIN inbox_messages m ON m.seq = g.last
         ORDER BY g.last DESC LIMIT ?1 OFFSET ?2",
    )?;
    let rows = st.query_map(params![per_page, page.saturating_mul(per_page)], |r| {
        Ok(ChatSummary {
            chat: r.get(0)?,
            name: r.get(1)?,
            count: r.get(2)?,
            last_kind: MessageKind::parse(&r.get::<_, String>(3)?),
            last_text: r.get(4)?,
            last_at: r.get(5)?,
        })
    })?;
    Ok((rows.collect::<Result<_, _>>()?, totals))
}

/// Deletes rows received before `cutoff` (Unix seconds); returns how many.
pub fn sweep(c: &Connection, cutoff: i64) -> Result<usize, DbError> {
    Ok(c.execute("DELETE FROM inbox_messages WHERE received_at < ?1", [cutoff])?)
}

/// The account ended: every reply link goes, nothing waiting is forwarded, the switches go
/// off. Returns how many links ended.
pub fn end(c: &mut Connection) -> Result<usize, DbError> {
    let tx = c.transaction()?;
    let n = tx.execute(
        "UPDATE inbox_messages SET tg_chat = NULL, tg_message = NULL WHERE tg_message IS NOT NULL",
        [],
    )?;
    tx.execute(
        "UPDATE inbox_messages SET state = 'ended', media = NULL WHERE state IN ('pending', 'sending', 'held')",
        [],
    )?;
    tx.execute(
        "DELETE FROM settings WHERE key IN (?1, ?2)",
        params![KEY_ENABLED, KEY_MENTIONS],
    )?;
    tx.commit()?;
    Ok(n)
}

// ----- the rate -----

/// Forwards per owner in the last minute, the accounts over the rate, and when each account's
/// next digest is due.
#[derive(Debug, Default)]
pub struct Pace {
    sent: HashMap<TelegramId, VecDeque<Instant>>,
    holding: HashSet<AccountId>,
    digest_due: HashMap<AccountId, Instant>,
}

impl Pace {
    /// Whether `owner` may have one more message forwarded at `now` (and counts it if so).
    pub fn try_forward(&mut self, owner: TelegramId, rate: usize, now: Instant) -> bool {
        let q = self.sent.entry(owner).or_default();
        while q
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= Duration::from_secs(60))
        {
            q.pop_front();
        }
        if q.len() >= rate {
            return false;
        }
        q.push_back(now);
        true
    }

    /// `acc` went over the rate: its rows wait for the digest, due `every` after now (unless
    /// one is already scheduled), and until then new rows wait too, keeping their order.
    pub fn hold(&mut self, acc: AccountId, every: Duration, now: Instant) {
        self.holding.insert(acc);
        self.schedule(acc, every, now);
    }

    /// Rows of `acc` wait for a digest (found at startup): one is due `every` after now.
    pub fn schedule(&mut self, acc: AccountId, every: Duration, now: Instant) {
        self.digest_due.entry(acc).or_insert(now + every);
    }

    /// Whether `acc` is over the rate until its next digest.
    pub fn holding(&self, acc: AccountId) -> bool {
        self.holding.contains(&acc)
    }

    /// The accounts whose digest is due at `now`, forgotten here.
    pub fn due(&mut self, now: Instant) -> Vec<AccountId> {
        let due: Vec<AccountId> = self
            .digest_due
            .iter()
            .filter(|(_, at)| **at <= now)
            .map(|(a, _)| *a)
            .collect();
        for a in &due {
            self.forget(*a);
        }
        due
    }

    /// When the next digest is due, if any.
    pub fn next_due(&self) -> Option<Instant> {
        self.digest_due.values().min().copied()
    }

    /// Forgets `acc` (its digest went out, or it ended).
    pub fn forget(&mut self, acc: AccountId) {
        self.digest_due.remove(&acc);
        self.holding.remove(&acc);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> Connection {
        let mut c = Connection::open_in_memory().unwrap();
        crate::db::migrate(&mut c, Schema::Account).unwrap();
        c
    }

    fn text(_t: &str) -> MessageMeta {
        MessageMeta {
            push_name: "Budi".into(),
            sent_at: 100,
            ..MessageMeta::default()
        }
    }

    #[test]
    fn settings_belong_to_one_generation() {
        let c = db();
        assert_eq!(settings(&c, 1).unwrap(), InboxSettings::default());
        set_setting(&c, KEY_ENABLED, Some("1".into())).unwrap();
        assert!(settings(&c, 1).unwrap().enabled);
        assert!(
            !settings(&c, 2).unwrap().enabled,
            "a new pairing starts with the inbox off"
        );
    }

    #[test]
    fn only_private_chats_and_wanted_mentions() {
        let on = InboxSettings {
            enabled: true,
            mentions: false,
        };
        let m = MessageMeta::default();
        let mention = MessageMeta {
            mentions_me: true,
            ..MessageMeta::default()
        };
        assert!(wanted(&on, "6281234567890", &m));
        assert!(!wanted(&InboxSettings::default(), "6281234567890", &m));
        assert!(!wanted(&on, "1203630@g.us", &mention));
        assert!(!wanted(&on, "status@broadcast", &m));
        let both = InboxSettings {
            enabled: true,
            mentions: true,
        };
        assert!(wanted(&both, "1203630@g.us", &mention));
        assert!(!wanted(&both, "1203630@g.us", &m));
    }

    #[test]
    fn a_redelivered_message_is_stored_once_and_a_crash_never_resends() {
        let mut c = db();
        assert!(insert(&c, "A1", "628", "628", "halo", &text("halo"), 7, 1).unwrap());
        assert!(!insert(&c, "A1", "628", "628", "halo", &text("halo"), 7, 1).unwrap());
        let p = pending(&c, 10).unwrap();
        assert_eq!(p.len(), 1);
        assert!(transition(&c, p[0].seq, "pending", "sending").unwrap());
        assert_eq!(recover(&c).unwrap(), 1);
        assert!(pending(&c, 10).unwrap().is_empty());
        assert_eq!(take_held(&mut c).unwrap(), DigestCount { messages: 1, chats: 1 });
    }

    #[test]
    fn links_end_with_the_account() {
        let mut c = db();
        insert(&c, "A1", "628", "628", "halo", &text("halo"), 7, 1).unwrap();
        let seq = pending(&c, 1).unwrap()[0].seq;
        forwarded(&c, seq, 7, 42).unwrap();
        assert_eq!(link(&c, 7, 42).unwrap().map(|s| s.text), Some("halo".into()));
        assert_eq!(end(&mut c).unwrap(), 1);
        assert!(link(&c, 7, 42).unwrap().is_none());
    }

    #[test]
    fn chats_list_latest_first_with_totals() {
        let c = db();
        for (i, chat) in ["a", "b", "a", "c", "a"].iter().enumerate() {
            insert(&c, &format!("M{i}"), chat, chat, &format!("t{i}"), &text(""), 7, 1).unwrap();
        }
        let (page, totals) = chats(&c, 0, 2).unwrap();
        assert_eq!(totals, DigestCount { messages: 5, chats: 3 });
        assert_eq!(page.iter().map(|s| s.chat.as_str()).collect::<Vec<_>>(), ["a", "c"]);
        assert_eq!(page[0].count, 3);
        assert_eq!(page[0].last_text, "t4");
        assert_eq!(chats(&c, 1, 2).unwrap().0.len(), 1);
    }

    #[test]
    fn the_sweep_deletes_only_what_is_older_than_the_retention() {
        let c = db();
        insert(&c, "old", "628", "628", "lama", &text(""), 7, 1).unwrap();
        insert(&c, "new", "628", "628", "baru", &text(""), 7, 1).unwrap();
        c.execute("UPDATE inbox_messages SET received_at = 1000 WHERE wa_id = 'old'", [])
            .unwrap();
        assert_eq!(sweep(&c, now() - 30 * 86_400).unwrap(), 1);
        let (list, totals) = chats(&c, 0, 8).unwrap();
        assert_eq!(totals.messages, 1);
        assert_eq!(list[0].last_text, "baru");
    }

    #[test]
    fn the_rate_is_per_owner_per_minute() {
        let mut p = Pace::default();
        let t0 = Instant::now();
        let a = TelegramId::new(1).unwrap();
        let b = TelegramId::new(2).unwrap();
        assert!(p.try_forward(a, 2, t0));
        assert!(p.try_forward(a, 2, t0));
        assert!(!p.try_forward(a, 2, t0));
        assert!(p.try_forward(b, 2, t0));
        assert!(p.try_forward(a, 2, t0 + Duration::from_secs(60)));
    }
}
