//! Announcements: a text an operator sends to every Telegram user of the bot (`/admin`).
//!
//! The same ideas as the bulk job engine ([`crate::jobs`]), applied to Telegram instead of
//! WhatsApp: the announcement and its recipients are written to the master database before
//! anything is sent; one worker sends to one recipient at a time, paced; a recipient is marked
//! `running` (in flight) immediately before its `sendMessage`, and only while the announcement
//! is still running; its result is recorded right after. An executed recipient is never put
//! back to `pending`, except after an answer that says nothing was sent (429). So after a crash
//! at most one recipient is in doubt: found `running` at start-up, it is recorded `unknown`
//! ("may have been delivered") and never sent again. A clean shutdown waits for the send in
//! flight and records it.
//!
//! Recipients: every Telegram user with a row in the master database, except suspended ones,
//! taken when the operator confirms. A user who blocked the bot (403) is recorded `blocked`,
//! marked blocked in the users table, and the announcement goes on.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension};
use tokio::sync::{watch, Notify};
use tracing::{info, warn};

use crate::account::AccountError;
use crate::db::{now, DbError};
use crate::ids::TelegramId;
use crate::jobs::JobState;
use crate::manager::AccountManager;

/// Longest announcement: one Telegram message.
pub const MAX_CHARS: usize = 4096;

/// Why an announcement request was refused.
#[derive(Debug, thiserror::Error)]
pub enum AnnouncementError {
    #[error("the announcement is empty")]
    Empty,
    #[error("the announcement has {0} characters; at most {MAX_CHARS}")]
    TooLong(usize),
    #[error("no such announcement")]
    NotFound,
    #[error("the announcement is {0:?}; that cannot be done now")]
    WrongState(JobState),
    #[error(transparent)]
    Db(#[from] AccountError),
}

impl From<rusqlite::Error> for AnnouncementError {
    fn from(e: rusqlite::Error) -> Self {
        AnnouncementError::Db(AccountError::Db(DbError::Sqlite(e)))
    }
}

/// What came of one `sendMessage` to one recipient, as the outlet saw it after the shared
/// retry policy (`bot::send::retrying`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// Delivered.
    Sent,
    /// The user blocked the bot or deleted their account (403): not delivered, not retried.
    Blocked,
    /// Telegram asked us to wait (429) and the message was not sent: wait, then try again.
    RateLimited(Duration),
    /// No answer came in time: it may have been delivered; never sent again.
    Unknown(String),
    /// Refused for good, or still failing after the retries: not delivered.
    Failed(String),
}

/// A recipient's stored state for a delivery.
impl Delivery {
    fn state(&self) -> &'static str {
        match self {
            Delivery::Sent => "sent",
            Delivery::Blocked => "blocked",
            Delivery::Unknown(_) => "unknown",
            Delivery::Failed(_) | Delivery::RateLimited(_) => "failed",
        }
    }

    fn result(&self) -> Option<String> {
        match self {
            Delivery::Unknown(r) | Delivery::Failed(r) => Some(r.clone()),
            _ => None,
        }
    }
}

/// Where announcements go out and where their progress is shown: the Telegram front-end.
#[async_trait]
pub trait Outlet: Send + Sync {
    /// Sends `text` to `to` once (the shared retry policy applies inside); `en`: the
    /// recipient reads English (the outlet's own words, such as the header, follow it).
    async fn deliver(&self, to: TelegramId, text: &str, en: bool) -> Delivery;
    /// Shows the progress (called at most every couple of seconds, and on every state change
    /// and at the end).
    async fn progress(&self, p: &Progress);
}

/// Where an announcement stands.
#[derive(Debug, Clone, PartialEq)]
pub struct Progress {
    pub id: i64,
    pub state: JobState,
    pub text: String,
    // --- bot17 ---
    /// Its English text, when the operator wrote one (English readers get `text` otherwise).
    pub text_en: Option<String>,
    /// The operator who wrote it.
    pub created_by: i64,
    /// The chat and message that show its progress.
    pub chat_id: i64,
    pub message_id: Option<i64>,
    pub total: usize,
    pub sent: usize,
    pub blocked: usize,
    pub failed: usize,
    /// Interrupted during their send (a crash): may have been delivered, never sent again.
    pub unknown: usize,
}

impl Progress {
    /// Recipients with a result.
    pub fn finished(&self) -> usize {
        self.sent + self.blocked + self.failed + self.unknown
    }
}

/// What one attempt at a recipient came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SendOutcome {
    /// Sent and recorded (whatever Telegram answered).
    Done,
    /// The announcement stopped running (or shutdown came): nothing sent.
    Stopped,
    /// The in-flight mark could not be written: nothing sent.
    MarkFailed,
}

/// The first and longest wait after a failed in-flight mark.
const MARK_BACKOFF_MIN: Duration = Duration::from_secs(1);
const MARK_BACKOFF_MAX: Duration = Duration::from_secs(60);

/// What a progress message last showed: an announcement, its state and its counts.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Shown {
    id: i64,
    state: JobState,
    counts: [usize; 5],
}

impl Shown {
    fn of(p: &Progress) -> Self {
        Self {
            id: p.id,
            state: p.state,
            counts: [p.total, p.sent, p.blocked, p.failed, p.unknown],
        }
    }
}

/// Who an announcement would reach now: (recipients, suspended users left out).
pub fn audience(c: &Connection) -> Result<(usize, usize), AnnouncementError> {
    let (all, suspended): (i64, i64) = c.query_row(
        "SELECT COUNT(*), COALESCE(SUM(suspended != 0), 0) FROM telegram_users",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    Ok(((all - suspended) as usize, suspended as usize))
}

/// Stores a draft; nothing is sent before [`start`].
/// `text` may hold an English version after a line `[en]` (see [`split_languages`]).
pub fn create(c: &Connection, by: TelegramId, chat_id: i64, text: &str) -> Result<i64, AnnouncementError> {
    let (id_text, en_text) = split_languages(text);
    // Only one language written: every user gets it.
    let text = if id_text.is_empty() {
        en_text.unwrap_or("")
    } else {
        id_text
    };
    if text.is_empty() {
        return Err(AnnouncementError::Empty);
    }
    let en_text = en_text.filter(|e| *e != text);
    // Counted as Telegram counts a message: UTF-16 units (an emoji is two).
    for part in std::iter::once(text).chain(en_text) {
        let n = part.encode_utf16().count();
        if n > MAX_CHARS {
            return Err(AnnouncementError::TooLong(n));
        }
    }
    let t = now();
    c.execute(
        "INSERT INTO announcements (text, state, created_by, chat_id, created_at, updated_at, text_en)
         VALUES (?1, 'draft', ?2, ?3, ?4, ?4, ?5)",
        params![text, by.get(), chat_id, t, en_text],
    )?;
    Ok(c.last_insert_rowid())
}

// --- bot17 ---
/// The line that starts an announcement's English text: what comes before it is the
/// Indonesian text (`[id]` may open it), what follows is the English one.
pub const EN_MARK: &str = "[en]";

/// Splits an operator's text into its Indonesian and English parts (each trimmed; the
/// English one `None` without an `[en]` line). Markers are matched case-insensitively.
pub fn split_languages(text: &str) -> (&str, Option<&str>) {
    let text = text.trim();
    let text = match text.get(..4) {
        Some(head) if head.eq_ignore_ascii_case("[id]") => text[4..].trim_start(),
        _ => text,
    };
    let mut at = 0;
    for line in text.split_inclusive('\n') {
        if line.trim().eq_ignore_ascii_case(EN_MARK) {
            return (text[..at].trim(), Some(text[at + line.len()..].trim()));
        }
        at += line.len();
    }
    (text, None)
}

fn state_of(c: &Connection, id: i64) -> Result<JobState, AnnouncementError> {
    c.query_row("SELECT state FROM announcements WHERE id = ?1", [id], |r| {
        r.get::<_, String>(0)
    })
    .optional()?
    .map(|s| JobState::parse(&s))
    .ok_or(AnnouncementError::NotFound)
}

/// Confirms a draft: takes every user who is not suspended as a recipient and starts it, in
/// one transaction. Returns the number of recipients.
pub fn start(c: &mut Connection, id: i64) -> Result<usize, AnnouncementError> {
    let tx = c.transaction()?;
    let state = state_of(&tx, id)?;
    if state != JobState::Draft {
        return Err(AnnouncementError::WrongState(state));
    }
    let t = now();
    let n = tx.execute(
        "INSERT INTO announcement_recipients (announcement_id, telegram_id, state, updated_at)
         SELECT ?1, telegram_id, 'pending', ?2 FROM telegram_users WHERE suspended = 0",
        params![id, t],
    )?;
    tx.execute(
        "UPDATE announcements SET state = 'running', updated_at = ?2 WHERE id = ?1",
        params![id, t],
    )?;
    tx.commit()?;
    Ok(n)
}

/// Moves an announcement from one of `from` to `to` (pause, resume, cancel). A recipient in
/// flight stays `running`: the worker records its result.
pub fn set_state(c: &Connection, id: i64, from: &[JobState], to: JobState) -> Result<(), AnnouncementError> {
    let state = state_of(c, id)?;
    if !from.contains(&state) {
        return Err(AnnouncementError::WrongState(state));
    }
    c.execute(
        "UPDATE announcements SET state = ?2, updated_at = ?3 WHERE id = ?1",
        params![id, to.as_str(), now()],
    )?;
    Ok(())
}

/// Remembers the message that shows the progress.
pub fn set_message(c: &Connection, id: i64, chat_id: i64, message_id: i64) -> Result<(), AnnouncementError> {
    c.execute(
        "UPDATE announcements SET chat_id = ?2, message_id = ?3 WHERE id = ?1",
        params![id, chat_id, message_id],
    )?;
    Ok(())
}

/// An announcement's counts; `None` when there is no such announcement.
pub fn progress(c: &Connection, id: i64) -> Result<Option<Progress>, AnnouncementError> {
    type Row = (String, String, i64, i64, Option<i64>, Option<String>);
    let row: Option<Row> = c
        .query_row(
            "SELECT state, text, created_by, chat_id, message_id, text_en FROM announcements WHERE id = ?1",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)),
        )
        .optional()?;
    let Some((state, text, created_by, chat_id, message_id, text_en)) = row else {
        return Ok(None);
    };
    let (total, sent, blocked, failed, unknown): (i64, i64, i64, i64, i64) = c.query_row(
        "SELECT COUNT(*), COALESCE(SUM(state = 'sent'), 0), COALESCE(SUM(state = 'blocked'), 0),
                COALESCE(SUM(state = 'failed'), 0), COALESCE(SUM(state = 'unknown'), 0)
         FROM announcement_recipients WHERE announcement_id = ?1",
        [id],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
    )?;
    Ok(Some(Progress {
        id,
        state: JobState::parse(&state),
        text,
        text_en,
        created_by,
        chat_id,
        message_id,
        total: total as usize,
        sent: sent as usize,
        blocked: blocked as usize,
        failed: failed as usize,
        unknown: unknown as usize,
    }))
}

/// The newest `limit` announcements, newest first.
pub fn recent(c: &Connection, limit: u32) -> Result<Vec<Progress>, AnnouncementError> {
    let ids: Vec<i64> = c
        .prepare("SELECT id FROM announcements ORDER BY id DESC LIMIT ?1")?
        .query_map([limit], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let mut out = Vec::new();
    for id in ids {
        if let Some(p) = progress(c, id)? {
            out.push(p);
        }
    }
    Ok(out)
}

/// Start-up: a recipient left in flight was interrupted by a crash during its send. It may
/// have been delivered, so it is recorded `unknown` and never sent again. Returns how many.
pub fn recover_interrupted(c: &Connection) -> Result<usize, AnnouncementError> {
    Ok(c.execute(
        "UPDATE announcement_recipients
         SET state = 'unknown', result = 'interrupted during its send: it may have been delivered; not sent again',
             updated_at = ?1
         WHERE state = 'running'",
        [now()],
    )?)
}

/// The next thing the worker should do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// Send announcement `id` (`text`, in `to`'s language when written in it) to `to`.
    Send {
        id: i64,
        text: String,
        to: TelegramId,
        /// `to` reads English.
        en: bool,
    },
    /// A running announcement with nobody left: mark it done.
    Finish { id: i64 },
    /// Nothing is running.
    Idle,
}

/// The oldest running announcement's next pending recipient. Marks nothing: a recipient is
/// marked in flight only immediately before its send ([`mark_in_flight`]).
pub fn pick_next(c: &Connection) -> Result<Next, AnnouncementError> {
    let row: Option<(i64, String, Option<String>)> = c
        .query_row(
            "SELECT id, text, text_en FROM announcements WHERE state = 'running' ORDER BY id LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?;
    let Some((id, text, text_en)) = row else {
        return Ok(Next::Idle);
    };
    // The recipient's language (`telegram_users.language`; anything not English reads
    // Indonesian, as `Lang::from_code` has it).
    let to: Option<(i64, bool)> = c
        .query_row(
            "SELECT r.telegram_id, COALESCE(u.language LIKE 'en%', 0)
             FROM announcement_recipients r LEFT JOIN telegram_users u ON u.telegram_id = r.telegram_id
             WHERE r.announcement_id = ?1 AND r.state = 'pending' ORDER BY r.telegram_id LIMIT 1",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    Ok(match to {
        Some((t, en)) => match TelegramId::new(t) {
            Ok(to) => {
                let text = match (en, text_en) {
                    (true, Some(e)) => e,
                    _ => text,
                };
                Next::Send { id, text, to, en }
            }
            Err(e) => {
                // Cannot be stored through the users table; never loop on it.
                c.execute(
                    "UPDATE announcement_recipients SET state = 'failed', result = ?3, updated_at = ?4
                     WHERE announcement_id = ?1 AND telegram_id = ?2",
                    params![id, t, e.to_string(), now()],
                )?;
                return pick_next(c);
            }
        },
        None => Next::Finish { id },
    })
}

/// Marks a pending recipient in flight, only while its announcement is still running; `false`
/// when it was paused or cancelled meanwhile (nothing is marked then).
pub fn mark_in_flight(c: &Connection, id: i64, to: TelegramId) -> Result<bool, AnnouncementError> {
    let n = c.execute(
        "UPDATE announcement_recipients SET state = 'running', updated_at = ?3
         WHERE announcement_id = ?1 AND telegram_id = ?2 AND state = 'pending'
           AND EXISTS (SELECT 1 FROM announcements WHERE id = ?1 AND state = 'running')",
        params![id, to.get(), now()],
    )?;
    Ok(n == 1)
}

/// Records what came of a recipient's send. A 429 (nothing was sent) puts it back to pending.
pub fn record(c: &Connection, id: i64, to: TelegramId, d: &Delivery) -> Result<(), AnnouncementError> {
    let (state, result) = match d {
        Delivery::RateLimited(_) => ("pending", None),
        other => (other.state(), other.result()),
    };
    c.execute(
        "UPDATE announcement_recipients SET state = ?3, result = ?4, updated_at = ?5
         WHERE announcement_id = ?1 AND telegram_id = ?2 AND state = 'running'",
        params![id, to.get(), state, result, now()],
    )?;
    Ok(())
}

/// Marks a running announcement done.
pub fn finish(c: &Connection, id: i64) -> Result<(), AnnouncementError> {
    c.execute(
        "UPDATE announcements SET state = 'done', updated_at = ?2 WHERE id = ?1 AND state = 'running'",
        params![id, now()],
    )?;
    Ok(())
}

/// The announcement engine: a cheap `Clone` handle. One worker ([`Announcements::run`]) sends.
#[derive(Clone)]
pub struct Announcements {
    inner: Arc<Inner>,
}

struct Inner {
    manager: AccountManager,
    /// Wakes the worker (start, resume, pause, cancel).
    notify: Notify,
    /// Minimum time between two sends (Telegram allows about 30 messages a second in all;
    /// the rest of the bot needs some of that).
    delay: Duration,
    /// How often the progress message is edited while sending.
    progress_every: Duration,
}

impl Announcements {
    /// An engine over `manager`'s master database, pacing sends `delay` apart.
    pub fn new(manager: AccountManager, delay: Duration) -> Self {
        Self {
            inner: Arc::new(Inner {
                manager,
                notify: Notify::new(),
                delay,
                progress_every: Duration::from_secs(2),
            }),
        }
    }

    async fn db<F, R>(&self, f: F) -> Result<R, AnnouncementError>
    where
        F: FnOnce(&mut Connection) -> Result<R, AnnouncementError> + Send + 'static,
        R: Send + 'static,
    {
        self.inner
            .manager
            .with_master(move |c| Ok(f(c)))
            .await
            .map_err(AnnouncementError::Db)?
    }

    /// Recipients an announcement would reach now, and suspended users left out.
    pub async fn audience(&self) -> Result<(usize, usize), AnnouncementError> {
        self.db(|c| audience(c)).await
    }

    /// Stores a draft written by `by` in `chat_id`.
    pub async fn create(&self, by: TelegramId, chat_id: i64, text: &str) -> Result<i64, AnnouncementError> {
        let text = text.to_string();
        self.db(move |c| create(c, by, chat_id, &text)).await
    }

    /// Confirms a draft and wakes the worker; returns the number of recipients.
    pub async fn start(&self, id: i64) -> Result<usize, AnnouncementError> {
        let n = self.db(move |c| start(c, id)).await?;
        self.inner.notify.notify_one();
        Ok(n)
    }

    /// Pauses after the send in flight.
    pub async fn pause(&self, id: i64) -> Result<(), AnnouncementError> {
        self.change(id, &[JobState::Running], JobState::Paused).await
    }

    /// Resumes a paused announcement.
    pub async fn resume(&self, id: i64) -> Result<(), AnnouncementError> {
        self.change(id, &[JobState::Paused], JobState::Running).await
    }

    /// Cancels one that has not finished; recipients not yet reached stay unsent.
    pub async fn cancel(&self, id: i64) -> Result<(), AnnouncementError> {
        let from = &[JobState::Draft, JobState::Running, JobState::Paused];
        self.change(id, from, JobState::Cancelled).await
    }

    async fn change(&self, id: i64, from: &'static [JobState], to: JobState) -> Result<(), AnnouncementError> {
        self.db(move |c| set_state(c, id, from, to)).await?;
        self.inner.notify.notify_one();
        Ok(())
    }

    /// Remembers the message that shows the progress.
    pub async fn set_message(&self, id: i64, chat_id: i64, message_id: i64) -> Result<(), AnnouncementError> {
        self.db(move |c| set_message(c, id, chat_id, message_id)).await
    }

    /// An announcement's progress.
    pub async fn progress(&self, id: i64) -> Result<Progress, AnnouncementError> {
        self.db(move |c| progress(c, id))
            .await?
            .ok_or(AnnouncementError::NotFound)
    }

    /// The newest announcements, newest first.
    pub async fn recent(&self, limit: u32) -> Result<Vec<Progress>, AnnouncementError> {
        self.db(move |c| recent(c, limit)).await
    }

    /// The worker: records recipients a crash left in flight as `unknown`, then sends every
    /// running announcement, one recipient at a time, until `shutdown`. The send in flight
    /// when `shutdown` comes is finished and recorded first.
    pub async fn run(self, outlet: Arc<dyn Outlet>, mut shutdown: watch::Receiver<bool>) {
        match self.db(|c| recover_interrupted(c)).await {
            Ok(0) => {}
            Ok(n) => warn!(
                recipients = n,
                "announcement sends interrupted by a crash: recorded as unknown"
            ),
            Err(e) => warn!(error = %e, "could not look for interrupted announcement sends"),
        }
        let mut last_progress: Option<(i64, Instant)> = None;
        let mut shown: Option<Shown> = None;
        let mut mark_backoff = Duration::ZERO;
        let mut first = true;
        loop {
            if *shutdown.borrow() {
                break;
            }
            let next = match self.db(|c| pick_next(c)).await {
                Ok(n) => n,
                Err(e) => {
                    warn!(error = %e, "announcement worker cannot read its work; trying again later");
                    Next::Idle
                }
            };
            match next {
                Next::Idle => {
                    let gone = tokio::select! {
                        _ = self.inner.notify.notified() => false,
                        r = shutdown.changed() => r.is_err(),
                        // A database that was busy is looked at again.
                        _ = tokio::time::sleep(Duration::from_secs(60)) => false,
                    };
                    if gone {
                        break;
                    }
                    first = true;
                    continue;
                }
                Next::Finish { id } => {
                    if let Err(e) = self.db(move |c| finish(c, id)).await {
                        warn!(error = %e, announcement = id, "could not mark an announcement done");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        continue;
                    }
                    info!(announcement = id, "announcement finished");
                    self.show(&*outlet, id, &mut shown).await;
                    last_progress = None;
                }
                Next::Send { id, text, to, en } => {
                    if !first && !self.inner.delay.is_zero() {
                        tokio::select! {
                            _ = tokio::time::sleep(self.inner.delay) => {}
                            // Pause or cancel: looked at by the next pick.
                            _ = self.inner.notify.notified() => { continue; }
                            r = shutdown.changed() => {
                                if r.is_err() {
                                    break;
                                }
                                continue;
                            }
                        }
                    }
                    first = false;
                    match self.send_one(&*outlet, id, (&text, en), to, &mut shutdown).await {
                        SendOutcome::Done => mark_backoff = Duration::ZERO,
                        SendOutcome::Stopped => {
                            // Paused or cancelled meanwhile: show it.
                            self.show(&*outlet, id, &mut shown).await;
                            continue;
                        }
                        SendOutcome::MarkFailed => {
                            // The database refuses writes (full, read-only): nothing was sent.
                            // Wait longer each time instead of spinning on it.
                            mark_backoff = (mark_backoff * 2).clamp(MARK_BACKOFF_MIN, MARK_BACKOFF_MAX);
                            tokio::select! {
                                _ = tokio::time::sleep(mark_backoff) => {}
                                r = shutdown.changed() => if r.is_err() { break; },
                            }
                            continue;
                        }
                    }
                    let due = match last_progress {
                        Some((was, t)) => was != id || t.elapsed() >= self.inner.progress_every,
                        None => true,
                    };
                    if due {
                        last_progress = Some((id, Instant::now()));
                        self.show(&*outlet, id, &mut shown).await;
                    }
                }
            }
        }
        info!("announcement worker stopped");
    }

    /// Marks `to` in flight, sends, records. A 429 waits and tries the same recipient again
    /// (nothing was sent). Nothing is sent when the announcement stopped running or the mark
    /// could not be written.
    async fn send_one(
        &self,
        outlet: &dyn Outlet,
        id: i64,
        (text, en): (&str, bool),
        to: TelegramId,
        shutdown: &mut watch::Receiver<bool>,
    ) -> SendOutcome {
        loop {
            match self.db(move |c| mark_in_flight(c, id, to)).await {
                Ok(true) => {}
                Ok(false) => return SendOutcome::Stopped,
                Err(e) => {
                    warn!(error = %e, announcement = id, "could not mark a recipient in flight; not sent");
                    return SendOutcome::MarkFailed;
                }
            }
            let d = outlet.deliver(to, text, en).await;
            if d == Delivery::Blocked {
                if let Err(e) = self.inner.manager.set_blocked(to, true).await {
                    warn!(error = %e, "could not mark a user as having blocked the bot");
                }
            }
            self.record_retrying(id, to, &d).await;
            match d {
                Delivery::RateLimited(wait) => {
                    warn!(
                        announcement = id,
                        ?wait,
                        "Telegram rate-limited an announcement; waiting"
                    );
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = shutdown.changed() => return SendOutcome::Stopped,
                    }
                }
                _ => return SendOutcome::Done,
            }
        }
    }

    /// Records a result, retrying while the database is busy: a sent recipient must not be
    /// left `running` (it would become `unknown` at the next start, which is still never a
    /// second send).
    async fn record_retrying(&self, id: i64, to: TelegramId, d: &Delivery) {
        let mut wait = Duration::from_millis(200);
        for attempt in 0..6u32 {
            let d2 = d.clone();
            match self.db(move |c| record(c, id, to, &d2)).await {
                Ok(()) => return,
                Err(e) => {
                    warn!(error = %e, attempt, announcement = id, "could not record an announcement send; retrying");
                    tokio::time::sleep(wait).await;
                    wait *= 2;
                }
            }
        }
    }

    /// Shows announcement `id`'s progress unless it is what `last` says was shown already
    /// (an edit that changes nothing is a wasted call, and Telegram refuses it).
    async fn show(&self, outlet: &dyn Outlet, id: i64, last: &mut Option<Shown>) {
        match self.progress(id).await {
            Ok(p) => {
                let now = Shown::of(&p);
                if last.as_ref() != Some(&now) {
                    outlet.progress(&p).await;
                    *last = Some(now);
                }
            }
            Err(e) => warn!(error = %e, announcement = id, "could not read an announcement's progress"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::account;
    use crate::db::{migrate, Schema};

    fn db() -> Connection {
        let mut c = Connection::open_in_memory().unwrap();
        migrate(&mut c, Schema::Master).unwrap();
        for (tid, suspended) in [(11, 0), (12, 1), (13, 0), (14, 0)] {
            c.execute(
                "INSERT INTO telegram_users (telegram_id, first_seen, last_seen, suspended) VALUES (?1, 0, 0, ?2)",
                params![tid, suspended],
            )
            .unwrap();
        }
        c
    }

    fn tid(n: i64) -> TelegramId {
        TelegramId::new(n).unwrap()
    }

    #[test]
    fn a_draft_reaches_every_user_but_the_suspended_once() {
        let mut c = db();
        assert_eq!(audience(&c).unwrap(), (3, 1));
        let id = create(&c, tid(11), 11, "  Halo semua  ").unwrap();
        assert_eq!(pick_next(&c).unwrap(), Next::Idle, "a draft sends nothing");
        assert_eq!(start(&mut c, id).unwrap(), 3);
        assert!(matches!(
            start(&mut c, id),
            Err(AnnouncementError::WrongState(JobState::Running))
        ));
        let mut sent = Vec::new();
        loop {
            match pick_next(&c).unwrap() {
                Next::Send { id: got, text, to, .. } => {
                    assert_eq!((got, text.as_str()), (id, "Halo semua"));
                    assert!(mark_in_flight(&c, id, to).unwrap());
                    record(&c, id, to, &Delivery::Sent).unwrap();
                    sent.push(to.get());
                }
                Next::Finish { id: got } => {
                    assert_eq!(got, id);
                    finish(&c, id).unwrap();
                }
                Next::Idle => break,
            }
        }
        assert_eq!(sent, vec![11, 13, 14]);
        let p = progress(&c, id).unwrap().unwrap();
        assert_eq!((p.state, p.total, p.sent), (JobState::Done, 3, 3));
    }

    #[test]
    fn a_send_in_flight_at_a_crash_is_unknown_and_never_sent_again() {
        let mut c = db();
        let id = create(&c, tid(11), 11, "x").unwrap();
        start(&mut c, id).unwrap();
        let Next::Send { to, .. } = pick_next(&c).unwrap() else {
            panic!("a recipient")
        };
        assert!(mark_in_flight(&c, id, to).unwrap());
        // Crash here: the process restarts and recovers.
        assert_eq!(recover_interrupted(&c).unwrap(), 1);
        let Next::Send { to: next, .. } = pick_next(&c).unwrap() else {
            panic!("the next recipient")
        };
        assert_ne!(next, to);
        let p = progress(&c, id).unwrap().unwrap();
        assert_eq!((p.unknown, p.sent), (1, 0));
    }

    #[test]
    fn pause_stops_marking_and_a_429_puts_the_recipient_back() {
        let mut c = db();
        let id = create(&c, tid(11), 11, "x").unwrap();
        start(&mut c, id).unwrap();
        let Next::Send { to, .. } = pick_next(&c).unwrap() else {
            panic!("a recipient")
        };
        assert!(mark_in_flight(&c, id, to).unwrap());
        record(&c, id, to, &Delivery::RateLimited(Duration::from_secs(1))).unwrap();
        assert_eq!(
            pick_next(&c).unwrap(),
            Next::Send {
                id,
                text: "x".into(),
                to,
                en: false
            }
        );
        set_state(&c, id, &[JobState::Running], JobState::Paused).unwrap();
        assert!(
            !mark_in_flight(&c, id, to).unwrap(),
            "a paused announcement sends nothing"
        );
        assert_eq!(pick_next(&c).unwrap(), Next::Idle);
        record(&c, id, to, &Delivery::Blocked).unwrap();
        assert_eq!(
            progress(&c, id).unwrap().unwrap().blocked,
            0,
            "only a marked recipient is recorded"
        );
    }

    #[test]
    fn empty_and_too_long_texts_are_refused() {
        let c = db();
        assert!(matches!(create(&c, tid(11), 11, "  "), Err(AnnouncementError::Empty)));
        let long = "a".repeat(MAX_CHARS + 1);
        assert!(matches!(
            create(&c, tid(11), 11, &long),
            Err(AnnouncementError::TooLong(_))
        ));
        // 2100 emoji: 2100 characters, 4200 units as Telegram counts them.
        let emoji = "😀".repeat(2100);
        assert!(matches!(
            create(&c, tid(11), 11, &emoji),
            Err(AnnouncementError::TooLong(4200))
        ));
    }

    /// An outlet that answers from a script: per recipient, the deliveries of its attempts
    /// in order (then `Sent`), recording every attempt.
    struct Scripted {
        script: std::sync::Mutex<std::collections::HashMap<i64, Vec<Delivery>>>,
        attempts: std::sync::Mutex<Vec<i64>>,
        shown: std::sync::Mutex<Vec<Progress>>,
    }

    #[async_trait]
    impl Outlet for Scripted {
        async fn deliver(&self, to: TelegramId, _text: &str, _en: bool) -> Delivery {
            self.attempts.lock().unwrap().push(to.get());
            let mut s = self.script.lock().unwrap();
            match s.get_mut(&to.get()) {
                Some(v) if !v.is_empty() => v.remove(0),
                _ => Delivery::Sent,
            }
        }

        async fn progress(&self, p: &Progress) {
            self.shown.lock().unwrap().push(p.clone());
        }
    }

    #[tokio::test]
    async fn the_worker_waits_out_a_429_records_blocked_and_unknown_and_sends_everyone_once() {
        let dir = tempfile::tempdir().unwrap();
        let config = crate::config::Config::for_tests(dir.path());
        let backend = crate::wa::backend_for(&config).await.unwrap();
        let manager = AccountManager::open(config, backend).await.unwrap();
        let users = [21, 22, 23, 24, 25];
        manager
            .with_master(move |c| {
                for u in users {
                    account::touch_user(c, tid(u), "id")?;
                }
                Ok(())
            })
            .await
            .unwrap();
        let a = Announcements::new(manager.clone(), Duration::from_millis(5));
        let outlet = Arc::new(Scripted {
            script: std::sync::Mutex::new(
                [
                    (22, vec![Delivery::RateLimited(Duration::from_millis(300))]),
                    (23, vec![Delivery::Blocked]),
                    (24, vec![Delivery::Unknown("timeout".into())]),
                ]
                .into_iter()
                .collect(),
            ),
            attempts: std::sync::Mutex::default(),
            shown: std::sync::Mutex::default(),
        });
        let (stop, rx) = watch::channel(false);
        let worker = tokio::spawn(a.clone().run(outlet.clone(), rx));
        let id = a.create(tid(21), 21, "halo").await.unwrap();
        let started = Instant::now();
        assert_eq!(a.start(id).await.unwrap(), 5);
        let deadline = Instant::now() + Duration::from_secs(10);
        let p = loop {
            let p = a.progress(id).await.unwrap();
            if p.state == JobState::Done {
                break p;
            }
            assert!(Instant::now() < deadline, "not done: {p:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert!(
            started.elapsed() >= Duration::from_millis(300),
            "the 429 was waited out"
        );
        assert_eq!((p.sent, p.blocked, p.unknown, p.failed, p.total), (3, 1, 1, 0, 5));
        // 22 twice (the 429 sent nothing), everyone else once.
        let mut attempts = outlet.attempts.lock().unwrap().clone();
        attempts.sort_unstable();
        assert_eq!(attempts, vec![21, 22, 22, 23, 24, 25]);
        let blocked = manager
            .with_master(|c| account::user(c, tid(23)))
            .await
            .unwrap()
            .map(|u| u.blocked);
        assert_eq!(blocked, Some(true), "a 403 marks the user");
        assert_eq!(
            outlet.shown.lock().unwrap().last().map(|p| p.state),
            Some(JobState::Done)
        );
        stop.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(5), worker)
            .await
            .unwrap()
            .unwrap();
    }

    #[tokio::test]
    async fn with_an_unwritable_database_the_worker_backs_off_and_edits_only_on_change() {
        let dir = tempfile::tempdir().unwrap();
        let config = crate::config::Config::for_tests(dir.path());
        let backend = crate::wa::backend_for(&config).await.unwrap();
        let manager = AccountManager::open(config, backend).await.unwrap();
        manager
            .with_master(|c| {
                for u in [31, 32, 33] {
                    account::touch_user(c, tid(u), "id")?;
                }
                Ok(())
            })
            .await
            .unwrap();
        let a = Announcements::new(manager.clone(), Duration::ZERO);
        let outlet = Arc::new(Scripted {
            script: std::sync::Mutex::default(),
            attempts: std::sync::Mutex::default(),
            shown: std::sync::Mutex::default(),
        });
        let id = a.create(tid(31), 31, "halo").await.unwrap();
        assert_eq!(a.start(id).await.unwrap(), 3);
        // Every mark now fails, as on a full or read-only disk.
        manager
            .with_master(|c| {
                c.execute_batch(
                    "CREATE TRIGGER refuse BEFORE UPDATE ON announcement_recipients
                     BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END;",
                )?;
                Ok(())
            })
            .await
            .unwrap();
        let (stop, rx) = watch::channel(false);
        let worker = tokio::spawn(a.clone().run(outlet.clone(), rx));
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert!(outlet.attempts.lock().unwrap().is_empty(), "sent without a mark");
        let edits = outlet.shown.lock().unwrap().len();
        assert!(edits <= 1, "{edits} progress edits while nothing changed");
        // Writable again: everyone gets it once, and the end is shown.
        manager
            .with_master(|c| {
                c.execute_batch("DROP TRIGGER refuse")?;
                Ok(())
            })
            .await
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while a.progress(id).await.unwrap().state != JobState::Done {
            assert!(Instant::now() < deadline, "never finished");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(outlet.attempts.lock().unwrap().len(), 3);
        stop.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(5), worker)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            outlet.shown.lock().unwrap().last().map(|p| p.state),
            Some(JobState::Done)
        );
    }
}
