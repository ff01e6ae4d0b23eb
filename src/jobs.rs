//! Resumable bulk jobs: create groups, join, leave, member changes, broadcast, number check.
//!
//! A job and every item are written to the account's `bot_data` database before anything is
//! sent, so a restart resumes exactly where it stopped. One worker task per account runs that
//! account's running jobs one item at a time, paced by a minimum delay plus jitter and a daily
//! cap, backing off when WhatsApp rate-limits.
//!
//! Exactly once: an item is marked `running` (in flight) immediately before its WhatsApp call,
//! after the pacing wait, and only while its job is still running; its result is recorded
//! right after, retried while the database is busy. An executed item is never put back to
//! `pending`. So after a crash at most one item is in doubt, and it is the one whose call may
//! have gone out: a kind that must not run twice records it as `unknown` ("may have been
//! done") instead of running it again, and never reports it `failed`.
//!
//! A job belongs to one account generation (the account's ID and pairing generation): when
//! the account is removed, logged out or paired again, its jobs are cancelled and its worker
//! stopped before anything else happens to the account (see [`Jobs::end_account`]), and a
//! worker re-checks the owner and generation before every item.

pub mod media_files;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use rand::Rng;
use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};
use tokio::sync::{watch, Notify};
use tracing::{info, warn};

use crate::account::{Account, AccountError, AccountStatus};
use crate::db::{now, DbError, Schema};
use crate::ids::{AccountId, PhoneNumber, TelegramId};
use crate::manager::AccountManager;
use crate::manager::{AccountHook, Ending};
use crate::supervisor::LiveState;
use crate::wa::{Advice, ChatTarget, GroupId, JoinOutcome, MediaKind, MediaRef, MemberAction, WaError, WaSession};

/// A job's number within its account's database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct JobId(i64);

impl JobId {
    /// Wraps a stored ID.
    pub fn new(id: i64) -> Self {
        Self(id)
    }

    /// The stored ID.
    pub fn get(self) -> i64 {
        self.0
    }
}

/// What a job does to each of its items.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum JobKind {
    /// Item: a group subject. Every group gets the same initial members.
    CreateGroups { members: Vec<PhoneNumber> },
    /// Item: an invite link.
    JoinGroups,
    /// Item: a group JID.
    LeaveGroups,
    /// Item: a phone number (digits).
    Members { group: GroupId, action: MemberAction },
    /// Item: a group JID or a phone number (digits). With `media`, every message carries
    /// that file and `text` is its caption.
    Broadcast {
        text: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        media: Option<Box<JobMedia>>,
    },
    /// Item: a phone number (digits).
    CheckNumbers,
}

impl JobKind {
    fn name(&self) -> &'static str {
        match self {
            JobKind::CreateGroups { .. } => "create_groups",
            JobKind::JoinGroups => "join_groups",
            JobKind::LeaveGroups => "leave_groups",
            JobKind::Members { .. } => "members",
            JobKind::Broadcast { .. } => "broadcast",
            JobKind::CheckNumbers => "check_numbers",
        }
    }

    /// Whether running an item twice does no harm (WhatsApp answers "already done").
    fn idempotent(&self) -> bool {
        !matches!(self, JobKind::Broadcast { .. } | JobKind::CreateGroups { .. })
    }
}

/// A file a job's messages carry. The bytes stay in the account's folder
/// (`media/<file>`) until the job ends; the file is uploaded to WhatsApp once per job, before
/// its first message, and the upload's reference is written into the job before any message
/// carries it, so neither a later item nor a restarted worker uploads it again. Any stored
/// message that may carry a file (a job, later a template) holds one of these.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobMedia {
    /// Photo, document, video, voice note or audio.
    pub kind: MediaKind,
    /// Its MIME type.
    pub mime: String,
    /// The name shown with a document.
    pub file_name: String,
    /// Size in bytes.
    pub size: u64,
    /// SHA-256 of the bytes, hex: the stored file is checked against it before upload.
    pub sha256: String,
    /// The file's name inside the account's `media` folder.
    pub file: String,
    /// The upload, once done.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uploaded: Option<MediaRef>,
    // --- media2 ---
    /// Telegram's ID of the file the user sent, so a preview shows it again without
    /// uploading it (none in jobs stored before it was kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tg_file_id: Option<String>,
}

/// The folder of an account's stored job files (beside its `bot_data` database).
pub fn media_dir(acc: &Account) -> PathBuf {
    acc.bot_data_db_path
        .parent()
        .map(|p| p.join("media"))
        .unwrap_or_else(|| PathBuf::from("media"))
}

/// Stores `bytes` in `dir` (made private if new) under a fresh name; returns the name.
pub fn store_media_file(dir: &std::path::Path, bytes: &[u8]) -> std::io::Result<String> {
    crate::layout::create_private_dir(dir)?;
    let name = format!(
        "{}-{:016x}.bin",
        &crate::wa::sha256_hex(bytes)[..16],
        rand::thread_rng().gen::<u64>()
    );
    let path = dir.join(&name);
    std::fs::write(&path, bytes)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(name)
}

/// A job's life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Created, waiting for the owner's confirmation.
    Draft,
    Running,
    Paused,
    Cancelled,
    Done,
    // --- sched ---
    /// Waits for its time (`run_at`); the scheduler starts it then.
    Scheduled,
}

impl JobState {
    /// The stored name (also used by announcements, which live the same life).
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Draft => "draft",
            JobState::Running => "running",
            JobState::Paused => "paused",
            JobState::Cancelled => "cancelled",
            JobState::Done => "done",
            JobState::Scheduled => "scheduled",
        }
    }

    /// Reads a stored name (anything unknown is a draft, which never runs).
    pub fn parse(s: &str) -> Self {
        match s {
            "running" => JobState::Running,
            "paused" => JobState::Paused,
            "cancelled" => JobState::Cancelled,
            "done" => JobState::Done,
            "scheduled" => JobState::Scheduled,
            _ => JobState::Draft,
        }
    }
}

/// Where a job stands, for the progress message.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JobProgress {
    pub state: JobState,
    pub done: usize,
    pub failed: usize,
    /// Items interrupted during their WhatsApp call (a crash): they may have been done and
    /// are never run again.
    pub unknown: usize,
    pub total: usize,
    /// Why it is paused (`owner`, `daily_cap`, `account_offline`).
    pub pause_reason: Option<String>,
    /// Items per minute in this run (0 before the first item).
    pub rate_per_min: f64,
    /// Time left at the current rate.
    pub eta: Option<Duration>,
    /// The Telegram message showing the progress.
    pub message_id: Option<i64>,
    pub chat_id: i64,
    // --- sched ---
    /// When a scheduled job starts (Unix seconds, UTC).
    pub run_at: Option<i64>,
    // --- bot17 ---
    /// The number its owner sees ("#7"): unique across all of the owner's accounts, unlike
    /// the job's id, which is its row in one account's file (the id for older jobs).
    pub number: i64,
}

/// Why a job request was refused.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("no valid items")]
    Empty,
    #[error("too many items ({count}); at most {max}")]
    TooMany { count: usize, max: usize },
    #[error("no such job")]
    NotFound,
    #[error("the job is {0:?}; that cannot be done now")]
    WrongState(JobState),
    #[error("the job engine is not running")]
    NotRunning,
    #[error(transparent)]
    Account(#[from] AccountError),
    #[error(transparent)]
    Db(#[from] DbError),
}

/// Told about a job's progress; the Telegram front-end edits its progress message.
#[async_trait]
pub trait JobObserver: Send + Sync {
    /// Some items finished (called at most every couple of seconds) or the state changed.
    async fn progress(&self, owner: TelegramId, account: AccountId, job: JobId, p: &JobProgress);
    /// The engine paused the job by itself (`reason`: `daily_cap`, `account_offline`).
    async fn paused(&self, owner: TelegramId, account: AccountId, job: JobId, p: &JobProgress, reason: &str);
    /// Every item has a result.
    async fn finished(&self, owner: TelegramId, account: AccountId, job: JobId, p: &JobProgress);
    /// WhatsApp refused a message of `job` with its reach-out timelock (463): the account's
    /// jobs now skip people who never wrote to it. Said once per limit; `until` is when it
    /// ends, when WhatsApp said.
    async fn reach_out_limited(&self, owner: TelegramId, account: AccountId, job: JobId, until: Option<i64>) {
        let _ = (owner, account, job, until);
    }
    // --- sched ---
    /// A scheduled job started; `late` when its time (`run_at`) passed while the process was
    /// down.
    async fn started_on_schedule(
        &self,
        owner: TelegramId,
        account: AccountId,
        job: JobId,
        p: &JobProgress,
        run_at: i64,
        late: bool,
    ) {
        let _ = (owner, account, job, p, run_at, late);
    }
}

/// Pacing and limits.
#[derive(Debug, Clone)]
pub struct JobOptions {
    /// Minimum delay between two items of one account.
    pub item_delay: Duration,
    /// Random extra delay, up to this, per item.
    pub jitter: Duration,
    /// Items per account per UTC day.
    pub daily_cap: u32,
    /// Largest job.
    pub max_items: usize,
    // --- bot17 ---
    /// Number checks per account per UTC day: a quota of their own, apart from `daily_cap`.
    pub check_daily_cap: u32,
    /// How often the observer hears about progress.
    pub progress_every: Duration,
    /// "typing…" before each broadcast message to a person; `None`: off.
    pub typing: Option<Typing>,
    /// The daily cap of a newly linked account on its first, second, ... day (the warm-up);
    /// empty: the daily cap from the first day.
    pub warmup_caps: Vec<u32>,
}

/// How long "typing…" shows before a message: about `per_char` per character, spread at
/// random between half and one and a half times that, never longer than `max`.
#[derive(Debug, Clone, Copy)]
pub struct Typing {
    pub per_char: Duration,
    pub max: Duration,
}

impl Typing {
    /// A random typing time for `text`.
    pub fn time_for(&self, text: &str) -> Duration {
        let base = self.per_char.saturating_mul(text.chars().count().min(10_000) as u32);
        let spread = rand::thread_rng().gen_range(0.5..=1.5);
        base.mul_f64(spread).min(self.max)
    }
}

impl JobOptions {
    /// The options the configuration asks for.
    pub fn from_config(c: &crate::config::Config) -> Self {
        Self {
            item_delay: c.job_item_delay,
            jitter: c.job_jitter,
            daily_cap: c.job_daily_cap,
            max_items: c.job_max_items,
            check_daily_cap: c.check_daily_cap,
            progress_every: Duration::from_secs(2),
            typing: c.typing.then_some(Typing {
                per_char: c.typing_per_char,
                max: c.typing_max,
            }),
            warmup_caps: c.warmup_caps.clone(),
        }
    }
}

/// The job engine, a cloneable handle.
#[derive(Clone)]
pub struct Jobs {
    inner: Arc<Inner>,
}

struct Inner {
    manager: AccountManager,
    options: JobOptions,
    observer: RwLock<Option<Arc<dyn JobObserver>>>,
    /// One worker per account with running jobs.
    workers: Mutex<HashMap<AccountId, WorkerHandle>>,
    shutdown: watch::Sender<bool>,
    /// Worker tasks, so shutdown can wait for the items in flight.
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    /// Results of items that ran but could not be recorded (the database stayed busy), by
    /// account, job and item: recorded by the next worker of the account, never run again.
    unrecorded: Mutex<HashMap<ItemKey, Recorded>>,
    // --- sched ---
    /// Every scheduled job of every account: (run_at, account, job). Loaded at start-up
    /// ([`Jobs::load_schedule`]), kept up to date by scheduling, starting and cancelling.
    schedule: Mutex<std::collections::BTreeSet<(i64, AccountId, i64)>>,
    /// Tells the scheduler its index changed.
    schedule_changed: Arc<Notify>,
    /// Today's quota counts per account, so the account page does not open an idle
    /// account's database on every look (see [`QuotaCache`]).
    quota: QuotaCache,
}

/// Today's counts of an account's two quotas as last read, each valid while nothing of the
/// engine has touched the account's database since. Every database call of the engine for
/// an account (a worker's or the engine's) bumps the account's generation once it returns;
/// a read stores its counts under the generation it saw before it read, so counts read
/// before a write committed are never served after it. Forgotten when the account ends.
#[derive(Default)]
struct QuotaCache(Mutex<HashMap<AccountId, (u64, Option<QuotaSnap>)>>);

/// An account's counts for one UTC day.
#[derive(Clone, Copy)]
struct QuotaSnap {
    generation: u64,
    day_start: i64,
    linked: Option<i64>,
    used: i64,
    used_checks: i64,
}

impl QuotaCache {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<AccountId, (u64, Option<QuotaSnap>)>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The account's generation now, and its counts when they are still valid for `day_start`.
    fn get(&self, account: AccountId, day_start: i64) -> (u64, Option<QuotaSnap>) {
        let map = self.map();
        let Some((generation, snap)) = map.get(&account) else {
            return (0, None);
        };
        let valid = snap.filter(|s| s.generation == *generation && s.day_start == day_start);
        (*generation, valid)
    }

    /// Keeps `snap`, read at its generation, unless the account's database changed since.
    fn put(&self, account: AccountId, snap: QuotaSnap) {
        let mut map = self.map();
        let entry = map.entry(account).or_insert((0, None));
        if entry.0 == snap.generation {
            entry.1 = Some(snap);
        }
    }

    /// The account's database changed (or may have): its counts must be read again.
    fn touched(&self, account: AccountId) {
        let mut map = self.map();
        let entry = map.entry(account).or_insert((0, None));
        entry.0 += 1;
        entry.1 = None;
    }

    fn forget(&self, account: AccountId) {
        self.map().remove(&account);
    }
}

/// Forgets an account's quota counts when dropped.
struct ForgetQuota<'a>(&'a QuotaCache, AccountId);

impl Drop for ForgetQuota<'_> {
    fn drop(&mut self) {
        self.0.forget(self.1);
    }
}

/// An item of an account's job: (account, job, seq).
type ItemKey = (AccountId, i64, i64);
/// An item's state and result line, as they are recorded.
type Recorded = (&'static str, String);

/// A running worker: what wakes it, what stops it, and how to tell it has ended.
struct WorkerHandle {
    /// Wakes it (start, resume, cancel).
    notify: Arc<Notify>,
    /// Ends it after the item in flight (its account is ending).
    stop: watch::Sender<bool>,
    /// Closed when the worker's task ends, however it ends.
    done: watch::Receiver<()>,
    abort: tokio::task::AbortHandle,
}

/// One item to run.
struct Item {
    seq: i64,
    input: String,
    /// It was in flight (its call may have gone out) and its result was never recorded.
    interrupted: bool,
}

impl Jobs {
    /// A job engine over `manager`'s accounts.
    pub fn new(manager: AccountManager, options: JobOptions) -> Self {
        let (shutdown, _) = watch::channel(false);
        Self {
            inner: Arc::new(Inner {
                manager,
                options,
                observer: RwLock::new(None),
                workers: Mutex::new(HashMap::new()),
                shutdown,
                tasks: Mutex::new(Vec::new()),
                unrecorded: Mutex::new(HashMap::new()),
                schedule: Mutex::new(std::collections::BTreeSet::new()),
                schedule_changed: Arc::new(Notify::new()),
                quota: QuotaCache::default(),
            }),
        }
    }

    /// Registers the engine with the account manager, so an account that ends takes its jobs
    /// and worker with it. The hook holds the engine weakly.
    pub fn attach(&self) {
        self.inner
            .manager
            .add_hook(Arc::new(EndHook(Arc::downgrade(&self.inner))));
    }

    /// An account is ending (removed, logged out, paired again): cancels every job of it that
    /// has not finished, with the reason recorded, and stops its worker after the item in
    /// flight (whose result is recorded). Returns when the worker has stopped.
    pub async fn end_account(&self, acc: &Account, why: Ending) {
        // Forgotten once everything below has written (on every way out).
        let _quota = ForgetQuota(&self.inner.quota, acc.id);
        let reason = why.as_str();
        let cancelled = self
            .db(acc, move |c| {
                let ids: Vec<(i64, i64)> = c
                    .prepare(
                        "SELECT id, telegram_id FROM jobs WHERE state IN ('draft', 'running', 'paused', 'scheduled')",
                    )?
                    .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect::<Result<_, _>>()?;
                c.execute(
                    "UPDATE jobs SET state = 'cancelled', pause_reason = ?1, updated_at = ?2
                     WHERE state IN ('draft', 'running', 'paused', 'scheduled')",
                    params![reason, now()],
                )?;
                Ok(ids)
            })
            .await;
        let handle = self
            .inner
            .workers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&acc.id);
        if let Some(mut h) = handle {
            let _ = h.stop.send(true);
            h.notify.notify_one();
            // The item in flight finishes and is recorded; a call that hangs is cut off.
            let bound = self.inner.manager.config().shutdown_timeout + Duration::from_secs(60);
            if tokio::time::timeout(bound, h.done.changed()).await.is_err() {
                warn!(account_id = %acc.id, "job worker did not stop in time; aborting it");
                h.abort.abort();
            }
        }
        if why == Ending::Banned {
            // After the worker stopped (its item in flight is recorded or back to pending):
            // every item the ban keeps from running gets a result, so the report accounts
            // for all of them.
            let swept = self
                .db(acc, move |c| {
                    Ok(c.execute(
                        "UPDATE job_items SET state = 'failed', result = ?1, updated_at = ?2
                         WHERE state IN ('pending', 'running')
                           AND job_id IN (SELECT id FROM jobs WHERE state = 'cancelled' AND pause_reason = ?3)",
                        params![NOT_SENT_BANNED, now(), reason],
                    )?)
                })
                .await;
            if let Err(e) = swept {
                warn!(account_id = %acc.id, error = %e, "could not close the items of a banned account's jobs");
            }
        }
        match cancelled {
            Ok(ids) if !ids.is_empty() => {
                info!(account_id = %acc.id, jobs = ids.len(), reason, "jobs cancelled: the account is ending");
                if let Some(obs) = self.observer() {
                    for (job, tid) in ids {
                        let (Ok(owner), Ok(Some((_, p)))) = (
                            TelegramId::new(tid),
                            self.db(acc, move |c| read_progress(c, JobId(job))).await,
                        ) else {
                            continue;
                        };
                        obs.finished(owner, acc.id, JobId(job), &p).await;
                    }
                }
            }
            Ok(_) => {}
            Err(JobError::NotFound) => {}
            Err(e) => warn!(account_id = %acc.id, error = %e, "could not cancel the jobs of an ending account"),
        }
    }

    fn take_unrecorded(&self, account: AccountId, job: JobId, seq: i64) -> Option<Recorded> {
        self.inner
            .unrecorded
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&(account, job.0, seq))
    }

    /// Sets who hears about progress.
    pub fn set_observer(&self, observer: Arc<dyn JobObserver>) {
        *self.inner.observer.write().unwrap_or_else(|e| e.into_inner()) = Some(observer);
    }

    fn observer(&self) -> Option<Arc<dyn JobObserver>> {
        self.inner.observer.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The options in force.
    pub fn options(&self) -> &JobOptions {
        &self.inner.options
    }

    async fn db<F, R>(&self, acc: &Account, f: F) -> Result<R, JobError>
    where
        F: FnOnce(&mut Connection) -> Result<R, DbError> + Send + 'static,
        R: Send + 'static,
    {
        let out = self.read_db(acc, f).await;
        self.inner.quota.touched(acc.id);
        out
    }

    /// [`Self::db`] for a read that changes nothing the quota counts depend on: it leaves
    /// their generation alone (see [`QuotaCache`]).
    async fn read_db<F, R>(&self, acc: &Account, f: F) -> Result<R, JobError>
    where
        F: FnOnce(&mut Connection) -> Result<R, DbError> + Send + 'static,
        R: Send + 'static,
    {
        let path: PathBuf = acc.bot_data_db_path.clone();
        // A removed account's files are in the trash: never make a new, empty one in its place.
        if !path.exists() {
            return Err(JobError::NotFound);
        }
        Ok(self.inner.manager.pools().with(path, Schema::Account, f).await?)
    }

    /// Stores a draft job with its items (all or nothing). Nothing runs before [`Self::start`].
    pub async fn create(
        &self,
        owner: TelegramId,
        account: AccountId,
        chat_id: i64,
        kind: JobKind,
        items: Vec<String>,
    ) -> Result<JobId, JobError> {
        let acc = self.inner.manager.account_of(owner, account).await?;
        if items.is_empty() {
            return Err(JobError::Empty);
        }
        let max = self.inner.options.max_items;
        if items.len() > max {
            return Err(JobError::TooMany {
                count: items.len(),
                max,
            });
        }
        let params = serde_json::to_string(&kind).map_err(|e| DbError::Task(e.to_string()))?;
        let name = kind.name();
        let (account_id, generation) = (acc.id.get(), acc.generation);
        let number = self.next_number(&acc, owner).await?;
        let id = self
            .db(&acc, move |c| {
                let tx = c.transaction()?;
                let t = now();
                tx.execute(
                    "INSERT INTO jobs (kind, state, params, telegram_id, chat_id, created_at, updated_at, account_id, generation, number)
                     VALUES (?1, 'draft', ?2, ?3, ?4, ?5, ?5, ?6, ?7, ?8)",
                    params![name, params, owner.get(), chat_id, t, account_id, generation, number],
                )?;
                let id = tx.last_insert_rowid();
                {
                    let mut ins = tx.prepare(
                        "INSERT INTO job_items (job_id, seq, input, state, updated_at) VALUES (?1, ?2, ?3, 'pending', ?4)",
                    )?;
                    for (i, it) in items.iter().enumerate() {
                        ins.execute(params![id, i as i64, it, t])?;
                    }
                }
                tx.commit()?;
                Ok(id)
            })
            .await?;
        info!(account_id = %account, job = id, kind = name, "job created");
        Ok(JobId(id))
    }

    // --- bot17 ---
    /// The next job number of `owner`, unique across all of their accounts (kept in the master
    /// database, which every account shares). The first number given to a user starts above
    /// the jobs `acc` already holds, so an older job (shown by its id) is not shown twice.
    async fn next_number(&self, acc: &Account, owner: TelegramId) -> Result<i64, JobError> {
        let floor: i64 = self
            .db(acc, |c| {
                Ok(
                    c.query_row("SELECT COALESCE(MAX(COALESCE(number, id)), 0) FROM jobs", [], |r| {
                        r.get(0)
                    })?,
                )
            })
            .await?;
        let n = self
            .inner
            .manager
            .with_master(move |c| {
                let n = c
                    .query_row(
                        "INSERT INTO job_numbers (telegram_id, last) VALUES (?1, ?2 + 1)
                         ON CONFLICT (telegram_id) DO UPDATE SET last = MAX(last, ?2) + 1
                         RETURNING last",
                        params![owner.get(), floor],
                        |r| r.get(0),
                    )
                    .map_err(DbError::from)?;
                Ok(n)
            })
            .await?;
        Ok(n)
    }

    async fn set_state(
        &self,
        owner: TelegramId,
        account: AccountId,
        job: JobId,
        from: &'static [JobState],
        to: JobState,
        reason: Option<&str>,
    ) -> Result<Account, JobError> {
        let acc = self.inner.manager.account_of(owner, account).await?;
        let reason = reason.map(str::to_string);
        let res = self
            .db(&acc, move |c| {
                let row: Option<(String, i64)> = c
                    .query_row("SELECT state, telegram_id FROM jobs WHERE id = ?1", [job.0], |r| {
                        Ok((r.get(0)?, r.get(1)?))
                    })
                    .optional()?;
                let Some((state, tid)) = row else {
                    return Ok(Err(JobError::NotFound));
                };
                if tid != owner.get() {
                    return Ok(Err(JobError::NotFound));
                }
                let state = JobState::parse(&state);
                if !from.contains(&state) {
                    return Ok(Err(JobError::WrongState(state)));
                }
                // An item in flight stays `running`: its worker records its result.
                c.execute(
                    "UPDATE jobs SET state = ?2, pause_reason = ?3, updated_at = ?4 WHERE id = ?1",
                    params![job.0, to.as_str(), reason, now()],
                )?;
                Ok(Ok(()))
            })
            .await?;
        res.map(|_| acc)
    }

    /// Confirms a draft: it starts running.
    pub async fn start(&self, owner: TelegramId, account: AccountId, job: JobId) -> Result<(), JobError> {
        let from = &[JobState::Draft, JobState::Scheduled];
        let acc = self
            .set_state(owner, account, job, from, JobState::Running, None)
            .await?;
        self.unschedule(account, job);
        self.wake(&acc);
        Ok(())
    }

    /// Pauses a running job after the item in flight.
    pub async fn pause(&self, owner: TelegramId, account: AccountId, job: JobId) -> Result<(), JobError> {
        self.set_state(
            owner,
            account,
            job,
            &[JobState::Running],
            JobState::Paused,
            Some("owner"),
        )
        .await
        .map(|_| ())
    }

    /// Pauses a running job for the operator: the owner sees it paused "by the operator"
    /// and may resume it.
    pub async fn pause_by_operator(&self, owner: TelegramId, account: AccountId, job: JobId) -> Result<(), JobError> {
        self.set_state(
            owner,
            account,
            job,
            &[JobState::Running],
            JobState::Paused,
            Some("operator"),
        )
        .await
        .map(|_| ())
    }

    /// Resumes a paused job.
    pub async fn resume(&self, owner: TelegramId, account: AccountId, job: JobId) -> Result<(), JobError> {
        let acc = self
            .set_state(owner, account, job, &[JobState::Paused], JobState::Running, None)
            .await?;
        self.wake(&acc);
        Ok(())
    }

    /// Cancels a job that has not finished; items not yet run stay unrun.
    pub async fn cancel(&self, owner: TelegramId, account: AccountId, job: JobId) -> Result<(), JobError> {
        let from = &[
            JobState::Draft,
            JobState::Running,
            JobState::Paused,
            JobState::Scheduled,
        ];
        let acc = self
            .set_state(owner, account, job, from, JobState::Cancelled, None)
            .await?;
        self.unschedule(account, job);
        crate::metrics::job_outcome("cancelled");
        self.wake(&acc);
        self.forget_file(&acc, job).await;
        Ok(())
    }

    /// Deletes the stored file of a job that has ended (done or cancelled) once nothing
    /// needs it: a cancelled job that had started keeps it while its unsent rest may be sent
    /// again (`crate::jobs::media_files::needed`; the start-up sweep takes it after the grace), and
    /// a file another job of the account still needs stays. A failure only leaves a file
    /// behind, which is logged.
    async fn forget_file(&self, acc: &Account, job: JobId) {
        let now = now();
        let file = self
            .db(acc, move |c| {
                let params: Option<String> = c
                    .query_row(
                        "SELECT params FROM jobs WHERE id = ?1 AND state IN ('done', 'cancelled')",
                        [job.0],
                        |r| r.get(0),
                    )
                    .optional()?;
                let Some(Ok(JobKind::Broadcast { media: Some(m), .. })) =
                    params.map(|p| serde_json::from_str::<JobKind>(&p))
                else {
                    return Ok(None);
                };
                let needed = crate::jobs::media_files::needed(c, now, crate::jobs::media_files::SWEEP_GRACE)?;
                Ok((!needed.contains(&m.file)).then_some(m.file))
            })
            .await;
        match file {
            Ok(Some(name)) => crate::jobs::media_files::remove_later(media_dir(acc), name).await,
            Ok(None) => {}
            Err(e) => warn!(account_id = %acc.id, job = job.get(), error = %e, "could not read a finished job's file"),
        }
    }

    // --- media2 ---
    /// Keeps an upload of a broadcast's file made before the job started (its test send) in
    /// the job, so the job does not upload the file again: only while the job waits (draft or
    /// scheduled) and has no upload of its own. True when it was kept.
    pub async fn keep_upload(
        &self,
        owner: TelegramId,
        account: AccountId,
        job: JobId,
        uploaded: MediaRef,
    ) -> Result<bool, JobError> {
        let acc = self.inner.manager.account_of(owner, account).await?;
        self.db(&acc, move |c| {
            let tx = c.transaction()?;
            let params: Option<String> = tx
                .query_row(
                    "SELECT params FROM jobs WHERE id = ?1 AND telegram_id = ?2 AND state IN ('draft', 'scheduled')",
                    params![job.0, owner.get()],
                    |r| r.get(0),
                )
                .optional()?;
            let Some(Ok(JobKind::Broadcast { text, media: Some(m) })) =
                params.map(|p| serde_json::from_str::<JobKind>(&p))
            else {
                return Ok(false);
            };
            if m.uploaded.is_some() || m.kind != uploaded.kind {
                return Ok(false);
            }
            let new = JobKind::Broadcast {
                text,
                media: Some(Box::new(JobMedia {
                    uploaded: Some(uploaded),
                    ..*m
                })),
            };
            let params = serde_json::to_string(&new).map_err(|e| DbError::Task(e.to_string()))?;
            tx.execute("UPDATE jobs SET params = ?2 WHERE id = ?1", params![job.0, params])?;
            tx.commit()?;
            Ok(true)
        })
        .await
    }

    /// Remembers the Telegram message that shows the job's progress.
    pub async fn set_message(
        &self,
        owner: TelegramId,
        account: AccountId,
        job: JobId,
        message_id: i64,
    ) -> Result<(), JobError> {
        let acc = self.inner.manager.account_of(owner, account).await?;
        self.db(&acc, move |c| {
            c.execute(
                "UPDATE jobs SET message_id = ?2 WHERE id = ?1 AND telegram_id = ?3",
                params![job.0, message_id, owner.get()],
            )?;
            Ok(())
        })
        .await
    }

    /// A job's progress, for its owner.
    pub async fn progress(&self, owner: TelegramId, account: AccountId, job: JobId) -> Result<JobProgress, JobError> {
        let acc = self.inner.manager.account_of(owner, account).await?;
        self.db(&acc, move |c| read_progress(c, job))
            .await?
            .filter(|(tid, _)| *tid == owner.get())
            .map(|(_, p)| p)
            .ok_or(JobError::NotFound)
    }

    /// The account's jobs, newest first: (id, kind name, progress).
    pub async fn list(
        &self,
        owner: TelegramId,
        account: AccountId,
    ) -> Result<Vec<(JobId, String, JobProgress)>, JobError> {
        let acc = self.inner.manager.account_of(owner, account).await?;
        self.db(&acc, move |c| {
            let ids: Vec<(i64, String)> = c
                .prepare("SELECT id, kind FROM jobs WHERE telegram_id = ?1 ORDER BY id DESC LIMIT 50")?
                .query_map([owner.get()], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<_, _>>()?;
            let mut out = Vec::new();
            for (id, kind) in ids {
                if let Some((_, p)) = read_progress(c, JobId(id))? {
                    out.push((JobId(id), kind, p));
                }
            }
            Ok(out)
        })
        .await
    }

    /// A new draft job of the items a cancelled job never ran (still `pending`), with its kind.
    /// In the same transaction those items are marked `rerun` in the old job, so a second
    /// press finds nothing and no item can be in two jobs: none is ever sent twice. Items
    /// that were in flight (`running`, `unknown`) stay where they are.
    pub async fn rerun_unsent(&self, owner: TelegramId, account: AccountId, job: JobId) -> Result<JobId, JobError> {
        let acc = self.inner.manager.account_of(owner, account).await?;
        let (account_id, generation) = (acc.id.get(), acc.generation);
        // Given before the transaction: a refused re-run only leaves a gap in the numbers.
        let number = self.next_number(&acc, owner).await?;
        let id = self
            .db(&acc, move |c| {
                let tx = c.transaction()?;
                let row: Option<(String, String, String, i64)> = tx
                    .query_row(
                        "SELECT state, kind, params, chat_id FROM jobs WHERE id = ?1 AND telegram_id = ?2",
                        params![job.0, owner.get()],
                        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
                    )
                    .optional()?;
                let Some((state, name, params, chat_id)) = row else {
                    return Ok(Err(JobError::NotFound));
                };
                if state != "cancelled" {
                    return Ok(Err(JobError::WrongState(JobState::parse(&state))));
                }
                let items: Vec<String> = tx
                    .prepare("SELECT input FROM job_items WHERE job_id = ?1 AND state = 'pending' ORDER BY seq")?
                    .query_map([job.0], |r| r.get(0))?
                    .collect::<Result<_, _>>()?;
                if items.is_empty() {
                    return Ok(Err(JobError::Empty));
                }
                let t = now();
                tx.execute(
                    "INSERT INTO jobs (kind, state, params, telegram_id, chat_id, created_at, updated_at, account_id, generation, number)
                     VALUES (?1, 'draft', ?2, ?3, ?4, ?5, ?5, ?6, ?7, ?8)",
                    params![name, params, owner.get(), chat_id, t, account_id, generation, number],
                )?;
                let id = tx.last_insert_rowid();
                {
                    let mut ins = tx.prepare(
                        "INSERT INTO job_items (job_id, seq, input, state, updated_at) VALUES (?1, ?2, ?3, 'pending', ?4)",
                    )?;
                    for (i, it) in items.iter().enumerate() {
                        ins.execute(params![id, i as i64, it, t])?;
                    }
                }
                tx.execute(
                    "UPDATE job_items SET state = 'rerun', updated_at = ?2 WHERE job_id = ?1 AND state = 'pending'",
                    params![job.0, t],
                )?;
                tx.commit()?;
                Ok(Ok(id))
            })
            .await??;
        info!(account_id = %account, job = id, from = job.get(), "job created from a cancelled job's unsent items");
        Ok(JobId(id))
    }

    /// Today's use of the account's daily cap, as the engine counts it: `(items run today,
    /// today's cap (the warm-up's while it lasts), when the day ends (Unix, UTC midnight))`.
    /// Number checks are not in it: they have their own quota ([`Self::check_quota_today`]).
    pub async fn quota_today(&self, owner: TelegramId, account: AccountId) -> Result<(i64, u32, i64), JobError> {
        self.quota_of(owner, account, false).await
    }

    // --- bot17 ---
    /// Today's use of the account's number-check quota (`TGWA_CHECK_DAILY_CAP`), in the shape
    /// of [`Self::quota_today`].
    pub async fn check_quota_today(&self, owner: TelegramId, account: AccountId) -> Result<(i64, u32, i64), JobError> {
        self.quota_of(owner, account, true).await
    }

    /// The quota of one pool: number checks (`checks`) or everything else. The owner is
    /// checked on every call; the counts come from [`QuotaCache`] while still valid.
    async fn quota_of(&self, owner: TelegramId, account: AccountId, checks: bool) -> Result<(i64, u32, i64), JobError> {
        let acc = self.inner.manager.account_of(owner, account).await?;
        let t = now();
        let day_start = t - t.rem_euclid(86_400);
        let snap = match self.inner.quota.get(acc.id, day_start) {
            (_, Some(snap)) => snap,
            (generation, None) => {
                let (linked, used, used_checks) = self
                    .read_db(&acc, move |c| {
                        Ok((
                            crate::contacts::linked_at(c)?,
                            used_since(c, day_start, false)?,
                            used_since(c, day_start, true)?,
                        ))
                    })
                    .await?;
                let snap = QuotaSnap {
                    generation,
                    day_start,
                    linked,
                    used,
                    used_checks,
                };
                self.inner.quota.put(acc.id, snap);
                snap
            }
        };
        let (cap, _) = self.cap_for(snap.linked, t, checks);
        let used = if checks { snap.used_checks } else { snap.used };
        Ok((used, cap, day_start + 86_400))
    }

    /// Today's cap of a pool and its normal cap: number checks have their own cap, with no
    /// warm-up (a check sends nothing to anyone); everything else has the daily cap, lowered
    /// by the warm-up while a newly linked number is young.
    fn cap_for(&self, linked: Option<i64>, t: i64, checks: bool) -> (u32, u32) {
        let o = &self.inner.options;
        if checks {
            return (o.check_daily_cap, o.check_daily_cap);
        }
        let cap = match linked {
            Some(at) => daily_cap_for(o.daily_cap, &o.warmup_caps, t - at),
            None => o.daily_cap,
        };
        (cap, o.daily_cap)
    }

    /// A line per item: `seq<TAB>input<TAB>ok|failed|pending<TAB>result`.
    pub async fn report(&self, owner: TelegramId, account: AccountId, job: JobId) -> Result<String, JobError> {
        let acc = self.inner.manager.account_of(owner, account).await?;
        self.db(&acc, move |c| {
            let tid: Option<i64> = c
                .query_row("SELECT telegram_id FROM jobs WHERE id = ?1", [job.0], |r| r.get(0))
                .optional()?;
            if tid != Some(owner.get()) {
                return Ok(None);
            }
            let mut out = String::from("#\titem\tstatus\tresult\n");
            let mut st = c.prepare("SELECT seq, input, state, result FROM job_items WHERE job_id = ?1 ORDER BY seq")?;
            let rows = st.query_map([job.0], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, Option<String>>(3)?,
                ))
            })?;
            for row in rows {
                let (seq, input, state, result) = row?;
                let clean = |s: &str| s.replace(['\t', '\n', '\r'], " ");
                out.push_str(&format!(
                    "{}\t{}\t{}\t{}\n",
                    seq + 1,
                    clean(&input),
                    state,
                    clean(result.as_deref().unwrap_or(""))
                ));
            }
            Ok(Some(out))
        })
        .await?
        .ok_or(JobError::NotFound)
    }

    /// Jobs running and paused across every active account, for the operator's overview.
    pub async fn count_running_and_paused(&self) -> Result<(usize, usize), JobError> {
        self.sum_over_accounts(
            "SELECT COALESCE(SUM(state = 'running'), 0), COALESCE(SUM(state = 'paused'), 0) FROM jobs",
            0,
        )
        .await
    }

    /// Job items that failed since `since` (Unix seconds) across every active account, and
    /// how many jobs they belong to: for the operators' daily digest.
    pub async fn failed_since(&self, since: i64) -> Result<(usize, usize), JobError> {
        self.sum_over_accounts(
            "SELECT COUNT(*), COUNT(DISTINCT job_id) FROM job_items WHERE state = 'failed' AND updated_at >= ?1",
            since,
        )
        .await
    }

    /// Sums a query's two counts over every active account's bot data (`?1` is `arg` where the
    /// query names it). One unreadable account must not hide the others from the operator: it
    /// is logged and skipped.
    async fn sum_over_accounts(&self, sql: &'static str, arg: i64) -> Result<(usize, usize), JobError> {
        let mut counts = (0, 0);
        for acc in self.inner.manager.all_rows().await? {
            if acc.status != AccountStatus::Active || !acc.bot_data_db_path.exists() {
                continue;
            }
            let res = self
                .db(&acc, move |c| {
                    let mut st = c.prepare(sql)?;
                    let args: &[&dyn rusqlite::ToSql] = if st.parameter_count() == 0 { &[] } else { &[&arg] };
                    Ok(st.query_row(args, |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)))?)
                })
                .await;
            match res {
                Ok((a, b)) => {
                    counts.0 += a as usize;
                    counts.1 += b as usize;
                }
                Err(e) => warn!(account_id = %acc.id, error = %e, "could not count over the account's jobs"),
            }
        }
        Ok(counts)
    }

    /// Startup: starts a worker for every account that has running jobs.
    pub async fn resume_all(&self) -> Result<usize, JobError> {
        let accounts = self.inner.manager.all_rows().await?;
        let mut started = 0;
        for acc in accounts.into_iter().filter(|a| a.status == AccountStatus::Active) {
            if !acc.bot_data_db_path.exists() {
                continue;
            }
            let running = self
                .db(&acc, |c| {
                    Ok(
                        c.query_row("SELECT COUNT(*) FROM jobs WHERE state = 'running'", [], |r| {
                            r.get::<_, i64>(0)
                        })?,
                    )
                })
                .await;
            match running {
                Ok(n) if n > 0 => {
                    self.wake(&acc);
                    started += 1;
                }
                Ok(_) => {}
                Err(e) => warn!(account_id = %acc.id, error = %e, "could not read the account's jobs"),
            }
        }
        Ok(started)
    }

    /// Stops every worker after its item in flight, waiting at most `bound`.
    pub async fn shutdown(&self, bound: Duration) {
        let _ = self.inner.shutdown.send(true);
        let tasks: Vec<_> = std::mem::take(&mut *self.inner.tasks.lock().unwrap_or_else(|e| e.into_inner()));
        let all = futures::future::join_all(tasks);
        if tokio::time::timeout(bound, all).await.is_err() {
            warn!("job workers did not stop in time");
        }
    }

    /// Wakes the account's worker, starting one if there is none.
    fn wake(&self, acc: &Account) {
        if *self.inner.shutdown.borrow() {
            return;
        }
        let mut workers = self.inner.workers.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(h) = workers.get(&acc.id) {
            h.notify.notify_one();
            return;
        }
        let notify = Arc::new(Notify::new());
        let (stop, stop_rx) = watch::channel(false);
        let (done_tx, done) = watch::channel(());
        let worker = Worker {
            jobs: self.clone(),
            account: acc.clone(),
            notify: notify.clone(),
            shutdown: self.inner.shutdown.subscribe(),
            stop: stop_rx,
            _done: done_tx,
            today: [None, None],
            linked_at: None,
            cursors: Arc::default(),
            held: None,
        };
        let task = tokio::spawn(worker.run());
        workers.insert(
            acc.id,
            WorkerHandle {
                notify,
                stop,
                done,
                abort: task.abort_handle(),
            },
        );
        let mut tasks = self.inner.tasks.lock().unwrap_or_else(|e| e.into_inner());
        tasks.retain(|t| !t.is_finished());
        tasks.push(task);
    }
}

/// The engine's [`AccountHook`]: held weakly by the account manager, so the engine and the
/// manager do not keep each other alive.
struct EndHook(std::sync::Weak<Inner>);

#[async_trait]
impl AccountHook for EndHook {
    async fn account_ending(&self, acc: &Account, why: Ending) {
        if let Some(inner) = self.0.upgrade() {
            Jobs { inner }.end_account(acc, why).await;
        }
    }
}

/// Reads a job's counts; `None` when there is no such job. Returns the owner too.
fn read_progress(c: &Connection, job: JobId) -> Result<Option<(i64, JobProgress)>, DbError> {
    type Row = (String, Option<String>, i64, i64, Option<i64>, Option<i64>, i64);
    let row: Option<Row> = c
        .query_row(
            "SELECT state, pause_reason, telegram_id, chat_id, message_id, run_at, COALESCE(number, id)
             FROM jobs WHERE id = ?1",
            [job.0],
            |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                ))
            },
        )
        .optional()?;
    let Some((state, pause_reason, tid, chat_id, message_id, run_at, number)) = row else {
        return Ok(None);
    };
    let (total, done, failed, unknown): (i64, i64, i64, i64) = c.query_row(
        "SELECT COUNT(*), COALESCE(SUM(state = 'ok'), 0), COALESCE(SUM(state = 'failed'), 0),
                COALESCE(SUM(state = 'unknown'), 0)
         FROM job_items WHERE job_id = ?1",
        [job.0],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
    )?;
    Ok(Some((
        tid,
        JobProgress {
            state: JobState::parse(&state),
            done: done as usize,
            failed: failed as usize,
            unknown: unknown as usize,
            total: total as usize,
            pause_reason,
            rate_per_min: 0.0,
            eta: None,
            message_id,
            chat_id,
            run_at,
            number,
        },
    )))
}

// --- bot17 ---
/// Whether items of `kind` count against the number checks' quota instead of the daily cap.
fn is_check(kind: &JobKind) -> bool {
    matches!(kind, JobKind::CheckNumbers)
}

/// Items of one quota run (done or failed) since `day_start`: number checks (`checks`) or
/// every other kind.
fn used_since(c: &Connection, day_start: i64, checks: bool) -> Result<i64, DbError> {
    Ok(c.query_row(
        "SELECT COUNT(*) FROM job_items i JOIN jobs j ON j.id = i.job_id
         WHERE i.state IN ('ok', 'failed') AND i.updated_at >= ?1 AND (j.kind = 'check_numbers') = ?2",
        params![day_start, checks],
        |r| r.get::<_, i64>(0),
    )?)
}

/// The result of the item a worker just ran.
#[derive(Clone)]
struct Done {
    job: JobId,
    owner: TelegramId,
    seq: i64,
    state: &'static str,
    result: String,
    /// A WhatsApp call was made for it: pacing follows only then.
    called: bool,
    // --- bot17 ---
    /// It was a number check: counted against the checks' own daily cap.
    checks: bool,
}

/// The oldest running job's next item: the one left in flight (its call may have gone out)
/// or the lowest pending one. Marks nothing: an item is marked in flight only immediately
/// before its call ([`mark_in_flight`]).
fn pick_next(c: &Connection, cursors: &Mutex<HashMap<i64, i64>>) -> Result<Next, DbError> {
    let job: Option<(i64, i64, String, Option<i64>)> = c
        .prepare_cached(
            "SELECT id, telegram_id, params, generation FROM jobs WHERE state = 'running' ORDER BY id LIMIT 1",
        )?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .optional()?;
    let Some((job, owner, params, generation)) = job else {
        return Ok(Next::Idle);
    };
    let owner = TelegramId::new(owner).map_err(|e| DbError::Task(e.to_string()))?;
    let kind: JobKind = match serde_json::from_str(&params) {
        Ok(k) => k,
        Err(e) => {
            // Unreadable parameters: the job can never run; close it rather than loop.
            c.execute(
                "UPDATE jobs SET state = 'cancelled', pause_reason = ?2 WHERE id = ?1",
                params![job, format!("unreadable job: {e}")],
            )?;
            return Ok(Next::Finish { job: JobId(job), owner });
        }
    };
    // Items run in `seq` order, so the first not finished is the one in flight (if a crash
    // left one) or the next pending. The worker remembers where it got to, so this is one
    // primary-key step, not a scan from the start.
    let from = cursors
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(&job)
        .copied()
        .unwrap_or(0);
    let row: Option<(i64, String, String)> = c
        .prepare_cached(
            "SELECT seq, input, state FROM job_items
             WHERE job_id = ?1 AND seq >= ?2 AND state IN ('running', 'pending') ORDER BY seq LIMIT 1",
        )?
        .query_row(params![job, from], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?;
    Ok(match row {
        Some((seq, input, state)) => {
            cursors.lock().unwrap_or_else(|e| e.into_inner()).insert(job, seq);
            Next::Item {
                job: JobId(job),
                owner,
                generation,
                kind,
                item: Item {
                    seq,
                    input,
                    interrupted: state == "running",
                },
            }
        }
        None => Next::Finish { job: JobId(job), owner },
    })
}

/// Marks a pending item in flight, only while its job is still running; `false` when the job
/// was paused or cancelled meanwhile (nothing is marked then).
fn mark_in_flight(c: &Connection, job: JobId, seq: i64) -> Result<bool, DbError> {
    let n = c
        .prepare_cached(
            "UPDATE job_items SET state = 'running', updated_at = ?3
             WHERE job_id = ?1 AND seq = ?2 AND state = 'pending'
               AND EXISTS (SELECT 1 FROM jobs WHERE id = ?1 AND state = 'running')",
        )?
        .execute(params![job.0, seq, now()])?;
    Ok(n == 1)
}

/// What came of one item.
enum Outcome {
    Ok(String),
    /// Not done: WhatsApp refused it, or it never went out.
    Failed(String),
    /// The call went out and no answer came back: it may have been done.
    Unknown(String),
    /// WhatsApp refused the message with its reach-out timelock (463): not done, never
    /// retried; `until` when WhatsApp said when it ends.
    ReachOut(Option<i64>),
    /// The account cannot work now (logged out, banned): pause the job. Nothing was done.
    Offline,
    /// The job's account changed owner or pairing: cancel the job. Nothing was done.
    Stale,
    /// Stop without recording (shutdown, pause or cancel). Nothing was done.
    Interrupted,
}

/// The task that runs one account's jobs, one item at a time.
struct Worker {
    jobs: Jobs,
    account: Account,
    notify: Arc<Notify>,
    shutdown: watch::Receiver<bool>,
    /// Set when the account is ending: stop after the item in flight.
    stop: watch::Receiver<bool>,
    /// Items finished today (UTC day start, count), read once and then counted here; one
    /// count per quota: `[0]` every kind but number checks, `[1]` number checks.
    today: [Option<(i64, i64)>; 2],
    /// When tgwa first linked the number (the warm-up's day one), read once.
    linked_at: Option<Option<i64>>,
    /// Per job, the `seq` below which every item is finished.
    cursors: Arc<Mutex<HashMap<i64, i64>>>,
    /// The account's pool, held open while the worker runs (`None`: the cache holds enough
    /// already, so each use goes through its LRU). Declared before `_done`, so it is handed
    /// back before [`Jobs::end_account`] learns the worker ended and the files move away.
    held: Option<Arc<crate::db::HeldPool>>,
    /// Dropped when the worker ends, which tells [`Jobs::end_account`].
    _done: watch::Sender<()>,
}

/// The next thing the worker should do.
enum Next {
    Item {
        job: JobId,
        owner: TelegramId,
        /// The account generation the job was made for (`None` for jobs older than that).
        generation: Option<i64>,
        kind: JobKind,
        item: Item,
    },
    /// A running job with no pending item: mark it done.
    Finish {
        job: JobId,
        owner: TelegramId,
    },
    Idle,
}

impl Worker {
    fn stopping(&self) -> bool {
        *self.shutdown.borrow() || *self.stop.borrow()
    }

    /// Runs `f` on the account's database: through the held pool when the worker holds one,
    /// else through the pool cache ([`Jobs::db`]).
    async fn db<F, R>(&self, f: F) -> Result<R, JobError>
    where
        F: FnOnce(&mut Connection) -> Result<R, DbError> + Send + 'static,
        R: Send + 'static,
    {
        let Some(held) = self.held.clone() else {
            return self.jobs.db(&self.account, f).await;
        };
        // As in `Jobs::db`: a removed account's file is gone; never make an empty one.
        if !self.account.bot_data_db_path.exists() {
            return Err(JobError::NotFound);
        }
        let out = crate::db::with_conn(held.pool(), f).await;
        self.jobs.inner.quota.touched(self.account.id);
        Ok(out?)
    }

    /// Holds the account's pool open for the worker's life when the cache has room for it
    /// (see [`crate::db::PoolCache::hold_blocking`]); tried again after each job while not
    /// held.
    async fn hold(&mut self) {
        if self.held.is_some() || !self.account.bot_data_db_path.exists() {
            return;
        }
        let cache = self.jobs.inner.manager.pools().clone();
        let path = self.account.bot_data_db_path.clone();
        match crate::db::blocking(move || cache.hold_blocking(&path, Schema::Account)).await {
            Ok(held) => self.held = held.map(Arc::new),
            Err(e) => warn!(account_id = %self.account.id, error = %e, "could not hold the account's database open"),
        }
    }

    async fn run(mut self) {
        let id = self.account.id;
        let mut rate = Rate::default();
        let mut last_progress: HashMap<JobId, Instant> = HashMap::new();
        let mut done: Option<Done> = None;
        self.hold().await;
        loop {
            let recorded = done.as_ref().filter(|d| d.called).map(|d| (d.job, d.owner, d.checks));
            let mut woke = false;
            let next = match self.record_and_pick(done.take()).await {
                Ok(n) => n,
                Err(e) => {
                    warn!(account_id = %id, error = %e, "job worker cannot record or read its jobs; stopping");
                    break;
                }
            };
            if let Some((job, owner, checks)) = recorded {
                if let Some((_, n)) = &mut self.today[usize::from(checks)] {
                    *n += 1;
                }
                let due = last_progress
                    .get(&job)
                    .is_none_or(|t| t.elapsed() >= self.jobs.inner.options.progress_every);
                if due {
                    last_progress.insert(job, Instant::now());
                    if let (Some(obs), Some(mut p)) = (self.jobs.observer(), self.read(job).await) {
                        rate.fill(&mut p);
                        obs.progress(owner, id, job, &p).await;
                    }
                }
                woke = self.pace().await;
            }
            if self.stopping() {
                break;
            }
            match next {
                Next::Idle => break,
                Next::Finish { job, owner } => {
                    let _ = self
                        .db(move |c| {
                            c.execute(
                                "UPDATE jobs SET state = 'done', updated_at = ?2 WHERE id = ?1 AND state = 'running'",
                                params![job.0, now()],
                            )?;
                            Ok(())
                        })
                        .await;
                    info!(account_id = %id, job = job.get(), "job finished");
                    self.hold().await;
                    self.jobs.forget_file(&self.account, job).await;
                    crate::metrics::job_outcome("done");
                    if let (Some(obs), Some(p)) = (self.jobs.observer(), self.read(job).await) {
                        obs.finished(owner, id, job, &p).await;
                    }
                }
                Next::Item {
                    job,
                    owner,
                    generation,
                    kind,
                    item,
                } => {
                    if item.interrupted {
                        // In flight and never recorded: this process knows its result if it ran
                        // it; otherwise (a crash) it may have been done.
                        let result = match self.jobs.take_unrecorded(id, job, item.seq) {
                            Some((state, result)) => Some((state, result)),
                            None if !kind.idempotent() => Some((
                                "unknown",
                                "interrupted during its WhatsApp call: it may have been done; not run again".into(),
                            )),
                            None => None,
                        };
                        if let Some((state, result)) = result {
                            done = Some(Done {
                                job,
                                owner,
                                seq: item.seq,
                                state,
                                result,
                                called: false,
                                checks: false,
                            });
                            continue;
                        }
                    }
                    if let Some(reason) = self.must_pause(is_check(&kind)).await {
                        self.auto_pause(job, owner, reason).await;
                        if reason == "account_offline" {
                            break;
                        }
                        continue;
                    }
                    // Paused or cancelled while we paced: leave the item for later.
                    if woke && !self.still_running(job).await {
                        continue;
                    }
                    if let Some(result) = self.refused_for_reach_out(&kind, &item).await {
                        // Not sent at all: no call, no pacing, nothing counted against the cap.
                        done = Some(Done {
                            job,
                            owner,
                            seq: item.seq,
                            state: "failed",
                            result,
                            called: false,
                            checks: false,
                        });
                        continue;
                    }
                    let started = Instant::now();
                    let (state, result) = match self.run_item(job, owner, generation, &kind, &item).await {
                        Outcome::Ok(r) => ("ok", r),
                        Outcome::Failed(r) => ("failed", r),
                        Outcome::Unknown(r) => ("unknown", r),
                        Outcome::ReachOut(until) => {
                            self.reach_out_hit(job, owner, until).await;
                            ("failed", REFUSED_REACH_OUT.to_string())
                        }
                        Outcome::Offline => {
                            self.auto_pause(job, owner, "account_offline").await;
                            break;
                        }
                        Outcome::Stale => {
                            self.cancel_stale(job, owner).await;
                            continue;
                        }
                        Outcome::Interrupted => continue,
                    };
                    rate.tick(started.elapsed());
                    crate::metrics::job_item(state);
                    done = Some(Done {
                        job,
                        owner,
                        seq: item.seq,
                        state,
                        result,
                        called: true,
                        checks: is_check(&kind),
                    });
                }
            }
        }
        if let Some(d) = done {
            // Stopped right after an item: record it before going.
            if let Err(e) = self.record_and_pick(Some(d)).await {
                warn!(account_id = %id, error = %e, "could not record the last item");
            }
        }
        {
            let mut workers = self.jobs.inner.workers.lock().unwrap_or_else(|e| e.into_inner());
            // Only our own entry: an ending account may already have a new worker.
            if workers.get(&id).is_some_and(|h| Arc::ptr_eq(&h.notify, &self.notify)) {
                workers.remove(&id);
            }
        }
        // A job started between our last look and the removal above gets its own worker.
        if !self.stopping() {
            if let Ok(Next::Item { .. } | Next::Finish { .. }) = self.advance(None).await {
                self.jobs.wake(&self.account);
            }
        }
    }

    /// Records the result of the item just run (if any) and picks the next one. Recording is
    /// retried while the database is busy (another process may hold its write lock): an
    /// executed item is never left to run again. If it still cannot be recorded, the result
    /// is kept in memory for the account's next worker and the error returned.
    async fn record_and_pick(&self, done: Option<Done>) -> Result<Next, JobError> {
        let mut wait = Duration::from_millis(500);
        let mut tries = 0;
        loop {
            match self.advance(done.clone()).await {
                Ok(n) => return Ok(n),
                Err(e) if done.is_some() && tries < 8 && !*self.shutdown.borrow() => {
                    tries += 1;
                    warn!(account_id = %self.account.id, error = %e, tries, "could not record an item's result; retrying");
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(10));
                }
                Err(e) => {
                    if let Some(d) = done {
                        self.jobs
                            .inner
                            .unrecorded
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .insert(
                                (self.account.id, d.job.0, d.seq),
                                (d.state, format!("{} (result not recorded at once)", d.result)),
                            );
                    }
                    return Err(e);
                }
            }
        }
    }

    /// The job no longer matches its account (another owner or pairing): cancel it.
    async fn cancel_stale(&self, job: JobId, owner: TelegramId) {
        let res = self
            .db(move |c| {
                Ok(c.execute(
                    "UPDATE jobs SET state = 'cancelled', pause_reason = 'account changed', updated_at = ?2
                     WHERE id = ?1 AND state = 'running'",
                    params![job.0, now()],
                )?)
            })
            .await;
        warn!(account_id = %self.account.id, job = job.get(), "job cancelled: its account changed hands or was paired again");
        if let (Ok(1), Some(obs), Some(p)) = (res, self.jobs.observer(), self.read(job).await) {
            obs.finished(owner, self.account.id, job, &p).await;
        }
    }

    async fn read(&self, job: JobId) -> Option<JobProgress> {
        self.db(move |c| read_progress(c, job))
            .await
            .ok()
            .flatten()
            .map(|(_, p)| p)
    }

    /// Records the result of the item just run (if any) and picks the next one, in one
    /// transaction and one trip to the blocking pool.
    async fn advance(&self, done: Option<Done>) -> Result<Next, JobError> {
        let cursors = self.cursors.clone();
        self.db(move |c| {
            let tx = c.transaction()?;
            if let Some(d) = &done {
                tx.prepare_cached(
                    "UPDATE job_items SET state = ?3, result = ?4, updated_at = ?5 WHERE job_id = ?1 AND seq = ?2",
                )?
                .execute(params![d.job.0, d.seq, d.state, d.result, now()])?;
            }
            let next = pick_next(&tx, &cursors)?;
            tx.commit()?;
            Ok(next)
        })
        .await
    }

    /// `Some(reason)` when the account must not run items now (`checks`: the next item is a
    /// number check, which has its own daily cap).
    async fn must_pause(&mut self, checks: bool) -> Option<&'static str> {
        let m = &self.jobs.inner.manager;
        if let Some(s) = m.live_status_unchecked(self.account.id) {
            if matches!(
                s.state,
                LiveState::LoggedOut | LiveState::Banned | LiveState::Unpaired | LiveState::Stopped
            ) {
                return Some("account_offline");
            }
        }
        let t = now();
        // The warm-up counts from the day tgwa first linked the number; accounts imported
        // or found by the scan were in use before and have no such day.
        if self.linked_at.is_none() {
            let linked = self.db(|c| crate::contacts::linked_at(c)).await.unwrap_or(None);
            self.linked_at = Some(linked);
        }
        let (cap, normal) = self.jobs.cap_for(self.linked_at.flatten(), t, checks);
        let day_start = t - t.rem_euclid(86_400);
        let slot = usize::from(checks);
        let used = match self.today[slot] {
            Some((day, n)) if day == day_start => n,
            _ => {
                let n = self.db(move |c| used_since(c, day_start, checks)).await.unwrap_or(0);
                self.today[slot] = Some((day_start, n));
                n
            }
        };
        let reason = match (checks, cap < normal) {
            (true, _) => "check_cap",
            (false, true) => "warmup_cap",
            (false, false) => "daily_cap",
        };
        (used >= cap as i64).then_some(reason)
    }

    async fn auto_pause(&self, job: JobId, owner: TelegramId, reason: &'static str) {
        crate::metrics::job_outcome("auto_paused");
        let res = self.db(move |c| {
                Ok(c.execute(
                    "UPDATE jobs SET state = 'paused', pause_reason = ?2, updated_at = ?3 WHERE id = ?1 AND state = 'running'",
                    params![job.0, reason, now()],
                )?)
            })
            .await;
        info!(account_id = %self.account.id, job = job.get(), reason, "job paused");
        if let (Ok(1), Some(obs), Some(p)) = (res, self.jobs.observer(), self.read(job).await) {
            obs.paused(owner, self.account.id, job, &p, reason).await;
        }
    }

    /// Whether `job` is still running (not paused or cancelled meanwhile).
    async fn still_running(&self, job: JobId) -> bool {
        self.db(move |c| {
            Ok(
                c.query_row("SELECT state = 'running' FROM jobs WHERE id = ?1", [job.0], |r| {
                    r.get::<_, bool>(0)
                })?,
            )
        })
        .await
        .unwrap_or(false)
    }

    /// Sleeps the pacing delay; a wake-up (pause, cancel) or shutdown cuts it short. Returns
    /// whether something woke it.
    async fn pace(&mut self) -> bool {
        let o = &self.jobs.inner.options;
        let jitter = if o.jitter.is_zero() {
            Duration::ZERO
        } else {
            rand::thread_rng().gen_range(Duration::ZERO..=o.jitter)
        };
        let wait = o.item_delay + jitter;
        if wait.is_zero() {
            // No pacing: only pick up a wake-up that is already waiting.
            return futures::FutureExt::now_or_never(self.notify.notified()).is_some();
        }
        tokio::select! {
            _ = tokio::time::sleep(wait) => false,
            _ = self.notify.notified() => true,
            _ = self.shutdown.changed() => true,
        }
    }

    /// The account's live session while it still belongs to the job's owner and pairing
    /// generation, waiting a little while it reconnects. `Err(Stale)` when the account now runs
    /// for someone else or another pairing; `Err(Offline)` or `Err(Interrupted)` otherwise.
    async fn session(&mut self, owner: TelegramId, generation: Option<i64>) -> Result<Arc<dyn WaSession>, Outcome> {
        let m = self.jobs.inner.manager.clone();
        let id = self.account.id;
        let generation = generation.unwrap_or(self.account.generation);
        if owner != self.account.telegram_id || generation != self.account.generation {
            return Err(Outcome::Stale);
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let state = m.live_status_unchecked(id).map(|s| s.state);
            match state {
                Some(LiveState::Connected) => {
                    return match m.live_session_for(id, owner, generation) {
                        Some(s) => Ok(s),
                        // A session runs, but not for this job's owner and pairing.
                        None => Err(Outcome::Stale),
                    };
                }
                Some(LiveState::Connecting | LiveState::Disconnected | LiveState::Pairing)
                    if Instant::now() < deadline =>
                {
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_millis(250)) => {}
                        _ = self.shutdown.changed() => return Err(Outcome::Interrupted),
                        _ = self.stop.changed() => return Err(Outcome::Interrupted),
                    }
                }
                _ if self.stopping() => return Err(Outcome::Interrupted),
                _ => return Err(Outcome::Offline),
            }
        }
    }

    /// Marks the item in flight (retrying while the database is busy); `false` when its job
    /// is no longer running or the mark could not be written (then nothing runs).
    async fn mark(&self, job: JobId, seq: i64) -> bool {
        for attempt in 0..5u32 {
            match self.db(move |c| mark_in_flight(c, job, seq)).await {
                Ok(marked) => return marked,
                Err(e) => {
                    warn!(account_id = %self.account.id, error = %e, attempt, "could not mark an item in flight");
                    tokio::time::sleep(Duration::from_millis(500 << attempt)).await;
                }
            }
        }
        false
    }

    /// Puts an item marked in flight back to pending: only after a call that certainly did
    /// nothing (not connected, logged out, rate limited), so it is not an executed item.
    async fn unmark(&self, job: JobId, seq: i64) {
        let res = self
            .db(move |c| {
                Ok(c.execute(
                    "UPDATE job_items SET state = 'pending' WHERE job_id = ?1 AND seq = ?2 AND state = 'running'",
                    params![job.0, seq],
                )?)
            })
            .await;
        if let Err(e) = res {
            warn!(account_id = %self.account.id, error = %e, "could not put an item back to pending");
        }
    }

    /// Runs one item: checks the account, marks the item in flight immediately before the
    /// call, and classifies what came back. A call that may have done something is never
    /// repeated for a kind that must not run twice; every error has one advice
    /// ([`WaError::advice`]) and only "retry" is tried again, a few times with growing waits
    /// ([`retry_wait`]).
    async fn run_item(
        &mut self,
        job: JobId,
        owner: TelegramId,
        generation: Option<i64>,
        kind: &JobKind,
        item: &Item,
    ) -> Outcome {
        let mut marked = item.interrupted;
        let typing = self.jobs.inner.options.typing;
        let mut attempt = 0;
        let mut with_upload: Option<JobKind> = None;
        loop {
            let session = match self.session(owner, generation).await {
                Ok(s) => s,
                Err(outcome) => {
                    if marked {
                        self.unmark(job, item.seq).await;
                    }
                    return outcome;
                }
            };
            // The job's file goes up once, before the item is marked: an upload sends
            // nothing to anyone, so its failure leaves the item as it was.
            if with_upload.is_none() {
                match self.ensure_uploaded(job, session.as_ref(), kind).await {
                    Ok(k) => with_upload = k,
                    Err(e) => match self.upload_failed(job, item, marked, &e, attempt).await {
                        Some(outcome) => return outcome,
                        None => {
                            attempt += 1;
                            continue;
                        }
                    },
                }
            }
            let kind = with_upload.as_ref().unwrap_or(kind);
            if !marked {
                if !self.mark(job, item.seq).await {
                    return Outcome::Interrupted;
                }
                marked = true;
            }
            let e = match execute(session.as_ref(), kind, &item.input, typing).await {
                Ok(r) => return Outcome::Ok(r),
                Err(ItemError::Bad(r)) => return Outcome::Failed(r),
                Err(ItemError::Wa(e)) => e,
            };
            if let WaError::ReachOutLimited { until } = e {
                return Outcome::ReachOut(until);
            }
            // Errors that say the call did nothing may be retried or paused on; any other
            // error of a kind that must not run twice leaves the item in doubt.
            let did_nothing = matches!(
                e,
                WaError::NotConnected | WaError::RateLimited { .. } | WaError::NotPaired | WaError::LoggedOut(_)
            ) || matches!(e.advice(), Advice::GiveUp | Advice::StopAccount);
            if !did_nothing && !kind.idempotent() {
                return Outcome::Unknown(format!("{e}: it may have been done; not run again"));
            }
            match e.advice() {
                Advice::RePair | Advice::StopAccount => {
                    self.unmark(job, item.seq).await;
                    return Outcome::Offline;
                }
                Advice::GiveUp => return Outcome::Failed(e.to_string()),
                Advice::Retry => {}
            }
            let Some(wait) = retry_wait(&e, attempt) else {
                return Outcome::Failed(format!("{e}: gave up after {} tries", attempt + 1));
            };
            attempt += 1;
            warn!(account_id = %self.account.id, ?wait, error = %e, "item failed for a passing reason; trying again");
            let stopped = tokio::select! {
                _ = tokio::time::sleep(wait) => false,
                _ = self.shutdown.changed() => true,
                _ = self.stop.changed() => true,
            };
            if stopped {
                if did_nothing {
                    self.unmark(job, item.seq).await;
                    return Outcome::Interrupted;
                }
                return Outcome::Unknown(format!("{e}: stopped before a retry; it may have been done"));
            }
        }
    }

    /// Uploads a broadcast's file if the job has not yet: returns the job's kind with the
    /// upload's reference, written into the job first (`None`: nothing to upload).
    async fn ensure_uploaded(
        &self,
        job: JobId,
        session: &dyn WaSession,
        kind: &JobKind,
    ) -> Result<Option<JobKind>, WaError> {
        let JobKind::Broadcast { text, media: Some(m) } = kind else {
            return Ok(None);
        };
        if m.uploaded.is_some() {
            return Ok(None);
        }
        let path = media_dir(&self.account).join(&m.file);
        let bytes = crate::db::blocking(move || std::fs::read(&path).map_err(|e| DbError::Task(e.to_string())))
            .await
            .map_err(|e| WaError::Storage(format!("the job's file: {e}")))?;
        if crate::wa::sha256_hex(&bytes) != m.sha256 {
            return Err(WaError::Storage("the job's file changed on disk".into()));
        }
        let uploaded = session.upload_media(m.kind, &bytes, &m.mime, &m.file_name).await?;
        info!(account_id = %self.account.id, job = job.get(), kind = m.kind.as_str(), size = bytes.len(), "job file uploaded");
        let new = JobKind::Broadcast {
            text: text.clone(),
            media: Some(Box::new(JobMedia {
                uploaded: Some(uploaded),
                ..(**m).clone()
            })),
        };
        let params = serde_json::to_string(&new).map_err(|e| WaError::Storage(e.to_string()))?;
        self.db(move |c| {
            c.execute("UPDATE jobs SET params = ?2 WHERE id = ?1", params![job.0, params])?;
            Ok(())
        })
        .await
        .map_err(|e| WaError::Storage(format!("keeping the upload: {e}")))?;
        Ok(Some(new))
    }

    /// What to do after the job's file could not be uploaded: `None` to try again (after a
    /// wait), or the item's outcome. Nothing was sent, so no outcome is "unknown".
    async fn upload_failed(
        &mut self,
        job: JobId,
        item: &Item,
        marked: bool,
        e: &WaError,
        attempt: u32,
    ) -> Option<Outcome> {
        let outcome = match e.advice() {
            Advice::RePair | Advice::StopAccount => Outcome::Offline,
            Advice::GiveUp => Outcome::Failed(format!("the file could not be uploaded: {e}")),
            Advice::Retry => match retry_wait(e, attempt) {
                None => Outcome::Failed(format!(
                    "the file could not be uploaded: {e}: gave up after {} tries",
                    attempt + 1
                )),
                Some(wait) => {
                    warn!(account_id = %self.account.id, ?wait, error = %e, "upload failed for a passing reason; trying again");
                    let stopped = tokio::select! {
                        _ = tokio::time::sleep(wait) => false,
                        _ = self.shutdown.changed() => true,
                        _ = self.stop.changed() => true,
                    };
                    if !stopped {
                        return None;
                    }
                    Outcome::Interrupted
                }
            },
        };
        if marked && matches!(outcome, Outcome::Offline | Outcome::Interrupted) {
            self.unmark(job, item.seq).await;
        }
        Some(outcome)
    }

    /// A broadcast item to a person while the account's reach-out timelock is in force: the
    /// refusal to record, without sending, unless the person wrote to the account before.
    async fn refused_for_reach_out(&self, kind: &JobKind, item: &Item) -> Option<String> {
        if !matches!(kind, JobKind::Broadcast { .. }) || GroupId::parse(item_parts(&item.input).0).is_some() {
            return None;
        }
        let input = item_parts(&item.input).0.to_string();
        let refuse = self
            .db(move |c| Ok(reach_out_limit(c, now())?.is_some() && !crate::contacts::wrote_to_us(c, &input)?))
            .await
            .unwrap_or(false);
        refuse.then(|| NOT_SENT_REACH_OUT.to_string())
    }

    /// A message of `job` was refused with 463: the account's limit is stored (so every job
    /// of it skips strangers from now on) and the owner told, once per limit.
    async fn reach_out_hit(&self, job: JobId, owner: TelegramId, until: Option<i64>) {
        let new = self.db(move |c| set_reach_out_limit(c, now(), until)).await;
        warn!(account_id = %self.account.id, job = job.get(), ?until, "WhatsApp's reach-out timelock refused a message");
        match new {
            Ok(true) => {
                if let Some(obs) = self.jobs.observer() {
                    obs.reach_out_limited(owner, self.account.id, job, until).await;
                }
            }
            Ok(false) => {}
            Err(e) => warn!(account_id = %self.account.id, error = %e, "could not store the reach-out timelock"),
        }
    }
}

/// How long to wait before trying an item again after `e` failed it on try `attempt`
/// (0 for the first), or `None` to give up. A rate limit waits as long as WhatsApp asked
/// (else 2 s doubling), up to five more tries; any other passing failure (a timeout, a
/// server error, an error inside a usync result) two more tries, 2 s then 4 s, so no error
/// is hammered at a fixed short interval.
fn retry_wait(e: &WaError, attempt: u32) -> Option<Duration> {
    let doubling = Duration::from_secs(2).saturating_mul(1 << attempt.min(8));
    match e {
        WaError::RateLimited { retry_after } if attempt < 5 => {
            Some(retry_after.unwrap_or(doubling).min(Duration::from_secs(900)))
        }
        WaError::RateLimited { .. } => None,
        _ if e.advice() == Advice::Retry && attempt < 2 => Some(doubling),
        _ => None,
    }
}

/// The result of a broadcast item WhatsApp refused with its reach-out timelock (463), in
/// both languages (the report is read by owners of either).
pub const REFUSED_REACH_OUT: &str = "refused (463): WhatsApp limits messages from this number to new contacts / WhatsApp membatasi pesan dari nomor ini ke kontak baru";
/// The result of a broadcast item not sent because the timelock is in force and the
/// recipient never wrote to the account.
pub const NOT_SENT_REACH_OUT: &str = "not sent: WhatsApp limits messages from this number to new contacts / tidak dikirim: WhatsApp membatasi pesan dari nomor ini ke kontak baru";
/// The result of an item a ban kept from running.
pub const NOT_SENT_BANNED: &str = "not sent: WhatsApp banned this number / tidak dikirim: nomor ini diblokir WhatsApp";
/// How long a timelock whose end WhatsApp did not say is assumed to last.
const REACH_OUT_ASSUMED: i64 = 24 * 3600;
/// The `settings` key of the account's reach-out timelock: `since:until` (Unix seconds,
/// `until` empty when unknown).
const REACH_OUT_KEY: &str = "reach_out_limit";

/// The account's reach-out timelock in force at `t`: `Some(until)` (`until` as WhatsApp said
/// it, if it did), `None` when there is none.
pub fn reach_out_limit(c: &Connection, t: i64) -> Result<Option<Option<i64>>, DbError> {
    let v: Option<String> = c
        .query_row("SELECT value FROM settings WHERE key = ?1", [REACH_OUT_KEY], |r| {
            r.get(0)
        })
        .optional()?;
    let Some((since, until)) = v.as_deref().and_then(|v| v.split_once(':')) else {
        return Ok(None);
    };
    let since: i64 = since.parse().unwrap_or(0);
    let until: Option<i64> = until.parse().ok();
    let ends = until.unwrap_or(since + REACH_OUT_ASSUMED);
    Ok((ends > t).then_some(until))
}

/// Stores a reach-out timelock seen at `t`; `true` when none was in force (a new limit,
/// worth telling the owner), `false` when it only refines the one in force.
pub fn set_reach_out_limit(c: &Connection, t: i64, until: Option<i64>) -> Result<bool, DbError> {
    let current = reach_out_limit(c, t)?;
    let until = until.or(current.flatten());
    let since = match current {
        Some(_) => c
            .query_row("SELECT value FROM settings WHERE key = ?1", [REACH_OUT_KEY], |r| {
                r.get::<_, String>(0)
            })?
            .split_once(':')
            .and_then(|(s, _)| s.parse().ok())
            .unwrap_or(t),
        None => t,
    };
    let value = format!("{since}:{}", until.map(|u| u.to_string()).unwrap_or_default());
    c.execute(
        "INSERT INTO settings (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = ?2",
        params![REACH_OUT_KEY, value],
    )?;
    Ok(current.is_none())
}

enum ItemError {
    /// The item itself is malformed.
    Bad(String),
    Wa(WaError),
}

impl From<WaError> for ItemError {
    fn from(e: WaError) -> Self {
        ItemError::Wa(e)
    }
}

fn phone(input: &str) -> Result<PhoneNumber, ItemError> {
    PhoneNumber::from_digits(input).map_err(|e| ItemError::Bad(e.to_string()))
}

fn group(input: &str) -> Result<GroupId, ItemError> {
    GroupId::parse(input).ok_or_else(|| ItemError::Bad(format!("not a group: {input}")))
}

/// Runs one item against WhatsApp; `Ok` carries the result line for the report.
async fn execute(s: &dyn WaSession, kind: &JobKind, input: &str, typing: Option<Typing>) -> Result<String, ItemError> {
    match kind {
        JobKind::CreateGroups { members } => {
            let g = s.create_group(input, members).await?;
            // The report hands the owner each new group's invite link; a link WhatsApp will
            // not give now does not undo the creation.
            let link = s.invite_link(&g.id, false).await.unwrap_or_default();
            Ok(format!("created {} ({} members) {link}", g.id, g.members.len())
                .trim_end()
                .to_string())
        }
        JobKind::JoinGroups => match s.join_group(input).await? {
            JoinOutcome::Joined(g) => Ok(format!("joined {g}")),
            JoinOutcome::PendingApproval => Ok("pending approval by the group's admins".into()),
        },
        JobKind::LeaveGroups => {
            s.leave_group(&group(input)?).await?;
            Ok("left".into())
        }
        JobKind::Members { group, action } => {
            let p = phone(input)?;
            let results = s.update_members(group, *action, std::slice::from_ref(&p)).await?;
            match results.into_iter().find(|(n, _)| n == &p).map(|(_, r)| r) {
                Some(Ok(())) | None => Ok("ok".into()),
                // Already a member (or already in that role; WhatsApp's 409): what was asked
                // holds, so it is not a failure.
                Some(Err(why)) if why.starts_with("already") => Ok("already".into()),
                Some(Err(why)) => Err(ItemError::Bad(why)),
            }
        }
        JobKind::Broadcast { text, media } => {
            let (target, _) = item_parts(input);
            let to = match GroupId::parse(target) {
                Some(g) => ChatTarget::Group(g),
                None => ChatTarget::Phone(phone(target)?),
            };
            // Each recipient gets their name, then one choice of every `{a|b}` variation.
            let text = render(text, input, &mut rand::thread_rng());
            if let Some(t) = typing {
                // Best effort: a send that can work does not depend on the indicator.
                if let Err(e) = s.show_typing(&to, t.time_for(&text)).await {
                    tracing::debug!(error = %e, "could not show typing");
                }
            }
            match media {
                None => {
                    let id = s.send_text(&to, &text).await?;
                    Ok(format!("sent {id}"))
                }
                Some(m) => {
                    let uploaded = m
                        .uploaded
                        .as_ref()
                        .ok_or_else(|| ItemError::Bad("the file was not uploaded".into()))?;
                    let id = s.send_uploaded(&to, uploaded, &text).await?;
                    Ok(format!("sent {} {id}", m.kind.as_str()))
                }
            }
        }
        JobKind::CheckNumbers => {
            let p = phone(input)?;
            let res = s.is_on_whatsapp(std::slice::from_ref(&p)).await?;
            let on = res.iter().any(|(n, on)| n == &p && *on);
            Ok(if on { "on WhatsApp" } else { "not on WhatsApp" }.into())
        }
    }
}

/// The `{a|b|c}` groups of a broadcast text that are variations, each as its choices, in
/// order. A group whose first choice is a field name and that has exactly one alternative
/// (`{nama|Kak}`: the field `nama`, `Kak` when it is empty) is a personalisation field for
/// a later feature, not a variation; so is anything without a `|`.
pub fn variations(text: &str) -> Vec<Vec<String>> {
    groups(text).into_iter().map(|(_, _, choices)| choices).collect()
}

/// `text` with one choice of every variation picked at random ([`variations`]); everything
/// else is left as written.
pub fn spin(text: &str, rng: &mut impl Rng) -> String {
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for (start, end, choices) in groups(text) {
        out.push_str(&text[at..start]);
        out.push_str(&choices[rng.gen_range(0..choices.len())]);
        at = end;
    }
    out.push_str(&text[at..]);
    out
}

/// The variation groups of `text`: byte range (braces included) and choices.
fn groups(text: &str) -> Vec<(usize, usize, Vec<String>)> {
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(open) = text[from..].find('{').map(|i| i + from) {
        let Some(close) = text[open + 1..].find(['{', '}']).map(|i| i + open + 1) else {
            break;
        };
        if text.as_bytes()[close] == b'{' {
            // `{ ... {`: the first brace opens nothing; look again from the second.
            from = close;
            continue;
        }
        let inner = &text[open + 1..close];
        let choices: Vec<String> = inner.split('|').map(str::to_string).collect();
        let is_field = choices.len() == 2 && is_field_name(&choices[0]);
        if choices.len() >= 2 && !is_field {
            found.push((open, close + 1, choices));
        }
        from = close + 1;
    }
    found
}

/// A personalisation field's name: a lowercase word (`nama`, `first_name`).
fn is_field_name(s: &str) -> bool {
    let mut bytes = s.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_lowercase())
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// The daily cap of an account linked `age` seconds ago: the warm-up's cap for its day of
/// life while the warm-up lasts, never above the normal cap.
pub fn daily_cap_for(cap: u32, warmup: &[u32], age: i64) -> u32 {
    let day = (age.max(0) / 86_400) as usize;
    warmup.get(day).map_or(cap, |w| (*w).min(cap))
}

/// Items per minute over this worker's run.
#[derive(Default)]
struct Rate {
    first: Option<Instant>,
    count: u64,
}

impl Rate {
    fn tick(&mut self, took: Duration) {
        if self.first.is_none() {
            self.first = Instant::now().checked_sub(took);
        }
        self.count += 1;
    }

    fn fill(&self, p: &mut JobProgress) {
        let Some(first) = self.first else { return };
        let secs = first.elapsed().as_secs_f64().max(0.001);
        p.rate_per_min = self.count as f64 * 60.0 / secs;
        let left = p.total.saturating_sub(p.done + p.failed + p.unknown) as f64;
        if p.rate_per_min > 0.0 {
            p.eta = Some(Duration::from_secs_f64(left * 60.0 / p.rate_per_min));
        }
    }
}

// --- sched ---

/// A scheduled job, for the list of what is waiting.
#[derive(Debug, Clone)]
pub struct ScheduledJob {
    pub id: JobId,
    // --- bot17 ---
    /// The number its owner sees (see [`JobProgress::number`]).
    pub number: i64,
    pub kind: JobKind,
    /// How many items it has.
    pub total: usize,
    /// When it starts (Unix seconds, UTC).
    pub run_at: i64,
}

impl Jobs {
    /// Schedules a draft (or moves a scheduled job) to start at `run_at` (Unix seconds, UTC).
    pub async fn schedule(
        &self,
        owner: TelegramId,
        account: AccountId,
        job: JobId,
        run_at: i64,
    ) -> Result<(), JobError> {
        let acc = self.inner.manager.account_of(owner, account).await?;
        let res = self
            .db(&acc, move |c| {
                let state: Option<(String, i64)> = c
                    .query_row("SELECT state, telegram_id FROM jobs WHERE id = ?1", [job.0], |r| {
                        Ok((r.get(0)?, r.get(1)?))
                    })
                    .optional()?;
                match state {
                    Some((_, tid)) if tid != owner.get() => Ok(Err(JobError::NotFound)),
                    None => Ok(Err(JobError::NotFound)),
                    Some((s, _)) if !matches!(JobState::parse(&s), JobState::Draft | JobState::Scheduled) => {
                        Ok(Err(JobError::WrongState(JobState::parse(&s))))
                    }
                    Some(_) => {
                        c.execute(
                            "UPDATE jobs SET state = 'scheduled', run_at = ?2, updated_at = ?3
                             WHERE id = ?1 AND state IN ('draft', 'scheduled')",
                            params![job.0, run_at, now()],
                        )?;
                        Ok(Ok(()))
                    }
                }
            })
            .await?;
        res?;
        {
            let mut idx = self.inner.schedule.lock().unwrap_or_else(|e| e.into_inner());
            idx.retain(|(_, a, j)| !(*a == account && *j == job.0));
            idx.insert((run_at, account, job.0));
        }
        info!(account_id = %account, job = job.get(), run_at, "job scheduled");
        self.inner.schedule_changed.notify_one();
        Ok(())
    }

    /// The account's scheduled jobs of `owner`, soonest first.
    pub async fn list_scheduled(&self, owner: TelegramId, account: AccountId) -> Result<Vec<ScheduledJob>, JobError> {
        let acc = self.inner.manager.account_of(owner, account).await?;
        self.db(&acc, move |c| {
            let mut st = c.prepare(
                "SELECT j.id, j.params, j.run_at, (SELECT COUNT(*) FROM job_items i WHERE i.job_id = j.id),
                        COALESCE(j.number, j.id)
                 FROM jobs j WHERE j.state = 'scheduled' AND j.telegram_id = ?1 ORDER BY j.run_at, j.id LIMIT 50",
            )?;
            let rows = st.query_map([owner.get()], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, Option<i64>>(2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, i64>(4)?,
                ))
            })?;
            let mut out = Vec::new();
            for row in rows {
                let (id, params, run_at, total, number) = row?;
                // A job whose parameters no longer read cannot run; it is not offered either.
                let Ok(kind) = serde_json::from_str(&params) else {
                    continue;
                };
                out.push(ScheduledJob {
                    id: JobId(id),
                    number,
                    kind,
                    total: total as usize,
                    run_at: run_at.unwrap_or(0),
                });
            }
            Ok(out)
        })
        .await
    }

    /// The job's kind and its first `n` items, for the preview and the test send.
    pub async fn first_items(
        &self,
        owner: TelegramId,
        account: AccountId,
        job: JobId,
        n: usize,
    ) -> Result<(JobKind, Vec<String>), JobError> {
        let acc = self.inner.manager.account_of(owner, account).await?;
        self.db(&acc, move |c| {
            let row: Option<(String, i64)> = c
                .query_row("SELECT params, telegram_id FROM jobs WHERE id = ?1", [job.0], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .optional()?;
            let Some((params, tid)) = row.filter(|(_, t)| *t == owner.get()) else {
                return Ok(None);
            };
            let _ = tid;
            let kind: JobKind = serde_json::from_str(&params).map_err(|e| DbError::Task(e.to_string()))?;
            let items = c
                .prepare("SELECT input FROM job_items WHERE job_id = ?1 ORDER BY seq LIMIT ?2")?
                .query_map(params![job.0, n as i64], |r| r.get(0))?
                .collect::<Result<Vec<String>, _>>()?;
            Ok(Some((kind, items)))
        })
        .await?
        .ok_or(JobError::NotFound)
    }

    /// Start-up: reads every active account's scheduled jobs into the index. Returns how many.
    pub async fn load_schedule(&self) -> Result<usize, JobError> {
        let mut found = Vec::new();
        for acc in self.inner.manager.all_rows().await? {
            if acc.status != AccountStatus::Active || !acc.bot_data_db_path.exists() {
                continue;
            }
            let rows = self
                .db(&acc, |c| {
                    Ok(
                        c.prepare("SELECT id, run_at FROM jobs WHERE state = 'scheduled' AND run_at IS NOT NULL")?
                            .query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)))?
                            .collect::<Result<Vec<_>, _>>()?,
                    )
                })
                .await;
            match rows {
                Ok(rows) => found.extend(rows.into_iter().map(|(id, at)| (at, acc.id, id))),
                Err(e) => warn!(account_id = %acc.id, error = %e, "could not read the account's scheduled jobs"),
            }
        }
        let n = found.len();
        self.inner
            .schedule
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(found);
        self.inner.schedule_changed.notify_one();
        Ok(n)
    }

    /// Wakes the scheduler whenever the index changes.
    pub fn schedule_changed(&self) -> Arc<Notify> {
        self.inner.schedule_changed.clone()
    }

    /// The earliest `run_at` in the index.
    pub fn next_run_at(&self) -> Option<i64> {
        let idx = self.inner.schedule.lock().unwrap_or_else(|e| e.into_inner());
        idx.first().map(|(at, _, _)| *at)
    }

    /// Removes and returns every entry due at `now`: (account, job, run_at).
    pub fn take_due(&self, now: i64) -> Vec<(AccountId, JobId, i64)> {
        let mut idx = self.inner.schedule.lock().unwrap_or_else(|e| e.into_inner());
        let mut due = Vec::new();
        while idx.first().is_some_and(|(at, _, _)| *at <= now) {
            if let Some((at, a, j)) = idx.pop_first() {
                due.push((a, JobId(j), at));
            }
        }
        due
    }

    fn unschedule(&self, account: AccountId, job: JobId) {
        let mut idx = self.inner.schedule.lock().unwrap_or_else(|e| e.into_inner());
        idx.retain(|(_, a, j)| !(*a == account && *j == job.0));
    }

    /// Starts a scheduled job whose time has come: one guarded update (only while it is still
    /// scheduled for `run_at`), so it starts once however often this is called; then its
    /// worker and its owner are told. `late`: its time passed while the process was down.
    /// An account that cannot work now is the worker's to handle (it pauses the job and says
    /// why). Returns `false` when the databases could not be read: the entry is put back, to
    /// be tried again.
    pub async fn start_scheduled(&self, account: AccountId, job: JobId, run_at: i64, late: bool) -> bool {
        let acc = match self.inner.manager.get(account).await {
            Ok(Some(a)) if a.status != AccountStatus::Removed => a,
            // A removed account's jobs were cancelled with it.
            Ok(_) => return true,
            Err(e) => {
                warn!(account_id = %account, error = %e, "could not read a scheduled job's account");
                self.put_back(account, job, run_at);
                return false;
            }
        };
        let started = self
            .db(&acc, move |c| {
                let owner: Option<i64> = c
                    .query_row(
                        "SELECT telegram_id FROM jobs WHERE id = ?1 AND state = 'scheduled' AND run_at = ?2",
                        params![job.0, run_at],
                        |r| r.get(0),
                    )
                    .optional()?;
                let n = c.execute(
                    "UPDATE jobs SET state = 'running', updated_at = ?3
                     WHERE id = ?1 AND state = 'scheduled' AND run_at = ?2",
                    params![job.0, run_at, now()],
                )?;
                Ok(owner.filter(|_| n == 1))
            })
            .await;
        let owner = match started {
            Ok(Some(o)) => o,
            // Cancelled, started by hand or moved to another time meanwhile.
            Ok(None) => return true,
            Err(JobError::NotFound) => return true,
            Err(e) => {
                warn!(account_id = %account, job = job.get(), error = %e, "could not start a scheduled job");
                self.put_back(account, job, run_at);
                return false;
            }
        };
        info!(account_id = %account, job = job.get(), late, "scheduled job started");
        self.wake(&acc);
        let (Ok(owner), Some(obs)) = (TelegramId::new(owner), self.observer()) else {
            return true;
        };
        if let Ok(Some((_, p))) = self.db(&acc, move |c| read_progress(c, job)).await {
            obs.started_on_schedule(owner, account, job, &p, run_at, late).await;
        }
        true
    }

    fn put_back(&self, account: AccountId, job: JobId, run_at: i64) {
        let mut idx = self.inner.schedule.lock().unwrap_or_else(|e| e.into_inner());
        idx.insert((run_at, account, job.0));
    }
}

/// The fields a broadcast text may name for each recipient: `{nama}` (and `{name}` for
/// English texts), with an optional fallback for lines without a name: `{nama|Kak}`.
const FIELDS: [&str; 2] = ["nama", "name"];

/// A broadcast item: its target (digits or a group JID) and the recipient's name, stored as
/// `target<TAB>name` (a tab never occurs in either).
pub fn item_input(target: &str, name: Option<&str>) -> String {
    match name.map(str::trim).filter(|n| !n.is_empty()) {
        Some(n) => format!("{target}\t{}", n.replace(['\t', '\n', '\r'], " ")),
        None => target.to_string(),
    }
}

/// The target and name of a stored broadcast item ([`item_input`]).
pub fn item_parts(input: &str) -> (&str, Option<&str>) {
    match input.split_once('\t') {
        Some((t, n)) if !n.trim().is_empty() => (t, Some(n.trim())),
        Some((t, _)) => (t, None),
        None => (input, None),
    }
}

/// `text` with every `{nama}` / `{nama|fallback}` replaced by `name` (the fallback, or
/// nothing, without one). This runs BEFORE the variations are picked ([`spin`]), so a field
/// inside a variation (`{Halo {nama}|Hai}`) works and a field is never taken for a choice;
/// and `{`, `}` and `|` are taken out of the name, so no name can make a variation.
pub fn personalise(text: &str, name: Option<&str>) -> String {
    let name: Option<String> = name
        .map(|n| n.replace(['{', '}', '|'], "").trim().to_string())
        .filter(|n| !n.is_empty());
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let field = after
            .find(['{', '}'])
            .filter(|i| after.as_bytes()[*i] == b'}')
            .and_then(|close| {
                let inner = &after[..close];
                let (key, fallback) = match inner.split_once('|') {
                    Some((k, f)) if !f.contains('|') => (k, Some(f)),
                    Some(_) => return None,
                    None => (inner, None),
                };
                FIELDS
                    .contains(&key.trim().to_lowercase().as_str())
                    .then_some((close, fallback))
            });
        match field {
            Some((close, fallback)) => {
                out.push_str(name.as_deref().or(fallback).unwrap_or(""));
                rest = &after[close + 1..];
            }
            None => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// The message one recipient gets: their name put in ([`personalise`]), then one choice of
/// every variation ([`spin`]). `input` is the stored item ([`item_input`]).
pub fn render(text: &str, input: &str, rng: &mut impl Rng) -> String {
    spin(&personalise(text, item_parts(input).1), rng)
}

#[cfg(test)]
mod personal_tests {
    use super::*;

    #[test]
    fn names_are_put_in_before_variations_and_never_taken_for_a_choice() {
        let text = "{Halo|Hai|Selamat pagi} {nama|Kak}, promo!";
        assert_eq!(personalise(text, Some("Budi")), "{Halo|Hai|Selamat pagi} Budi, promo!");
        assert_eq!(personalise(text, None), "{Halo|Hai|Selamat pagi} Kak, promo!");
        assert_eq!(personalise("Halo {nama}!", None), "Halo !");
        assert_eq!(personalise("Hi {Name|friend}", Some("Ann")), "Hi Ann");
        // A field inside a variation: the name is in every choice that names it.
        assert_eq!(personalise("{Halo {nama}|Hai}", Some("Sri")), "{Halo Sri|Hai}");
        // A name cannot make a variation of its own.
        assert_eq!(personalise("Halo {nama}", Some("{A|B}")), "Halo AB");
        // Other braces are left for the variations.
        assert_eq!(
            personalise("{hari ini|besok} {kota}", Some("X")),
            "{hari ini|besok} {kota}"
        );
        let mut rng = rand::thread_rng();
        for _ in 0..50 {
            let out = render(text, &item_input("6281234567890", Some("Budi")), &mut rng);
            assert!(out.ends_with(" Budi, promo!"), "{out}");
            assert!(!out.contains('{'), "{out}");
            let out = render(text, "6281234567890", &mut rng);
            assert!(out.ends_with(" Kak, promo!"), "{out}");
        }
    }

    #[test]
    fn items_carry_their_name_after_a_tab() {
        assert_eq!(item_input("62812", Some(" Budi ")), "62812\tBudi");
        assert_eq!(item_input("62812", Some("  ")), "62812");
        assert_eq!(item_parts("62812\tBudi"), ("62812", Some("Budi")));
        assert_eq!(item_parts("62812"), ("62812", None));
        assert_eq!(item_parts("120363@g.us"), ("120363@g.us", None));
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn quota_counts_are_served_only_while_nothing_wrote_since_they_were_read() {
        let q = QuotaCache::default();
        let a = AccountId::new(7).unwrap();
        let snap = |generation, day_start, used| QuotaSnap {
            generation,
            day_start,
            linked: None,
            used,
            used_checks: 0,
        };
        let (g0, none) = q.get(a, 0);
        assert!(none.is_none());
        q.put(a, snap(g0, 0, 3));
        assert_eq!(q.get(a, 0).1.map(|s| s.used), Some(3), "served while untouched");
        assert!(q.get(a, 86_400).1.is_none(), "a new day reads again");
        // A read that began before a write and ends after it is not kept.
        let (g1, _) = q.get(a, 0);
        q.touched(a);
        assert!(q.get(a, 0).1.is_none(), "a write makes the counts stale");
        q.put(a, snap(g1, 0, 3));
        assert!(q.get(a, 0).1.is_none(), "counts read before the write are dropped");
        let (g2, _) = q.get(a, 0);
        q.put(a, snap(g2, 0, 4));
        assert_eq!(q.get(a, 0).1.map(|s| s.used), Some(4));
        q.forget(a);
        assert!(q.get(a, 0).1.is_none(), "an ended account's counts are gone");
    }
    use super::*;

    #[test]
    fn kinds_round_trip_through_json() {
        let kinds = vec![
            JobKind::CreateGroups {
                members: vec![PhoneNumber::from_digits("6281234567890").unwrap()],
            },
            JobKind::JoinGroups,
            JobKind::LeaveGroups,
            JobKind::Members {
                group: GroupId::parse("120363000000000001@g.us").unwrap(),
                action: MemberAction::Add,
            },
            JobKind::Broadcast {
                media: None,
                text: "halo\nsemua".into(),
            },
            JobKind::CheckNumbers,
        ];
        for k in kinds {
            let s = serde_json::to_string(&k).unwrap();
            assert_eq!(serde_json::from_str::<JobKind>(&s).unwrap(), k, "{s}");
        }
        // A broadcast stored before jobs carried files reads as one without a file.
        let old: JobKind = serde_json::from_str(r#"{"kind":"broadcast","text":"halo"}"#).unwrap();
        assert_eq!(
            old,
            JobKind::Broadcast {
                text: "halo".into(),
                media: None
            }
        );
        let with_file = JobKind::Broadcast {
            text: "foto".into(),
            media: Some(Box::new(JobMedia {
                kind: MediaKind::Voice,
                mime: "audio/ogg; codecs=opus".into(),
                file_name: "voice.ogg".into(),
                size: 3,
                sha256: crate::wa::sha256_hex(b"abc"),
                file: "x.bin".into(),
                uploaded: None,
                tg_file_id: None,
            })),
        };
        let s = serde_json::to_string(&with_file).unwrap();
        assert_eq!(serde_json::from_str::<JobKind>(&s).unwrap(), with_file);
    }

    #[test]
    fn states_parse_back() {
        for s in [
            JobState::Draft,
            JobState::Running,
            JobState::Paused,
            JobState::Cancelled,
            JobState::Done,
        ] {
            assert_eq!(JobState::parse(s.as_str()), s);
        }
    }

    #[test]
    fn only_side_effect_free_kinds_are_retried_after_a_crash() {
        assert!(JobKind::JoinGroups.idempotent());
        assert!(!JobKind::Broadcast {
            text: String::new(),
            media: None
        }
        .idempotent());
        assert!(!JobKind::CreateGroups { members: vec![] }.idempotent());
    }

    #[test]
    fn variations_pick_one_choice_each_and_leave_fields_alone() {
        let text = "{Halo|Hai|Selamat pagi} {nama|Kak}, promo {hari ini|minggu ini}!";
        assert_eq!(
            variations(text),
            vec![
                vec!["Halo".to_string(), "Hai".into(), "Selamat pagi".into()],
                vec!["hari ini".to_string(), "minggu ini".into()],
            ]
        );
        let mut rng = rand::thread_rng();
        let mut seen = std::collections::HashSet::new();
        for _ in 0..200 {
            let out = spin(text, &mut rng);
            // The field with its fallback is kept for the personalisation feature.
            assert!(out.contains("{nama|Kak}"), "{out}");
            assert!(!out.contains("{Halo"), "{out}");
            let greeting = out.split(' ').next().unwrap_or("").to_string();
            assert!(["Halo", "Hai", "Selamat"].contains(&greeting.as_str()), "{out}");
            seen.insert(greeting);
        }
        assert_eq!(seen.len(), 3, "every choice comes up: {seen:?}");
        // Nothing to vary: the text as written, odd braces included.
        for plain in ["halo semua", "{tanpa pilihan}", "kurung { tidak ditutup", "}{", "{a|b"] {
            assert!(variations(plain).is_empty(), "{plain}");
            assert_eq!(spin(plain, &mut rng), plain);
        }
        // Three choices are a variation even when the first looks like a field.
        assert_eq!(variations("{hai|halo|hei}").len(), 1);
    }

    #[test]
    fn retries_are_few_and_grow() {
        // A server error, a timeout or an error inside a usync result: two more tries, never
        // six at 500 ms.
        for e in [WaError::Other("usync result error 500".into()), WaError::Timeout] {
            let waits: Vec<Duration> = (0..10).map_while(|a| retry_wait(&e, a)).collect();
            assert_eq!(waits, vec![Duration::from_secs(2), Duration::from_secs(4)], "{e}");
        }
        // A rate limit waits as long as WhatsApp asked, a bounded number of times.
        let e = WaError::RateLimited {
            retry_after: Some(Duration::from_secs(30)),
        };
        let waits: Vec<Duration> = (0..10).map_while(|a| retry_wait(&e, a)).collect();
        assert_eq!(waits, vec![Duration::from_secs(30); 5]);
        // Advice other than "retry" is never tried again.
        for e in [
            WaError::ReachOutLimited { until: None },
            WaError::Forbidden("x".into()),
            WaError::Banned {
                reason: "406".into(),
                until: None,
            },
            WaError::LoggedOut("x".into()),
        ] {
            assert_eq!(retry_wait(&e, 0), None, "{e}");
        }
    }

    #[test]
    fn warm_up_caps_grow_then_the_daily_cap_holds() {
        let ramp = [20, 40, 80];
        assert_eq!(daily_cap_for(1000, &ramp, 0), 20);
        assert_eq!(daily_cap_for(1000, &ramp, 86_399), 20);
        assert_eq!(daily_cap_for(1000, &ramp, 86_400), 40);
        assert_eq!(daily_cap_for(1000, &ramp, 2 * 86_400 + 5), 80);
        assert_eq!(daily_cap_for(1000, &ramp, 3 * 86_400), 1000);
        assert_eq!(daily_cap_for(30, &ramp, 2 * 86_400), 30, "never above the daily cap");
        assert_eq!(daily_cap_for(1000, &[], 0), 1000, "no warm-up");
    }

    #[test]
    fn typing_time_follows_the_text_and_is_capped() {
        let t = Typing {
            per_char: Duration::from_millis(50),
            max: Duration::from_secs(8),
        };
        for _ in 0..50 {
            let d = t.time_for(&"x".repeat(100));
            assert!(
                d >= Duration::from_millis(2500) && d <= Duration::from_millis(7500),
                "{d:?}"
            );
            assert!(t.time_for(&"x".repeat(10_000)) <= Duration::from_secs(8));
        }
    }

    #[test]
    fn a_reach_out_limit_is_new_once_and_lets_known_contacts_through() {
        let mut c = Connection::open_in_memory().unwrap();
        crate::db::migrate(&mut c, Schema::Account).unwrap();
        let t = 1_000_000;
        assert_eq!(reach_out_limit(&c, t).unwrap(), None);
        assert!(set_reach_out_limit(&c, t, None).unwrap(), "the first 463 is news");
        assert!(
            !set_reach_out_limit(&c, t + 5, Some(t + 3600)).unwrap(),
            "a second is not"
        );
        assert_eq!(reach_out_limit(&c, t + 10).unwrap(), Some(Some(t + 3600)));
        assert_eq!(reach_out_limit(&c, t + 3600).unwrap(), None, "ended");
        // A limit whose end WhatsApp did not say lasts a day.
        assert!(set_reach_out_limit(&c, t + 4000, None).unwrap());
        assert!(reach_out_limit(&c, t + 4000 + 86_399).unwrap().is_some());
        assert!(reach_out_limit(&c, t + 4000 + 86_400).unwrap().is_none());
    }
}
