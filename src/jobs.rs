//! Resumable bulk jobs: create groups, join, leave, member changes, broadcast, number check.
//!
//! A job and every item are written to the account's `bot_data` database before anything is
//! sent, so a restart resumes exactly where it stopped. One worker task per account runs that
//! account's running jobs one item at a time, paced by a minimum delay plus jitter and a daily
//! cap, backing off when WhatsApp rate-limits. Each item's result and the "running" mark of
//! the next one are written in one transaction, so at most one item is ever in doubt after a
//! crash; a graceful shutdown waits for the item in flight, so none is.

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
use crate::supervisor::LiveState;
use crate::wa::{Advice, ChatTarget, GroupId, JoinOutcome, MemberAction, WaError, WaSession};

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
    /// Item: a group JID or a phone number (digits).
    Broadcast { text: String },
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
}

impl JobState {
    fn as_str(self) -> &'static str {
        match self {
            JobState::Draft => "draft",
            JobState::Running => "running",
            JobState::Paused => "paused",
            JobState::Cancelled => "cancelled",
            JobState::Done => "done",
        }
    }

    fn parse(s: &str) -> Self {
        match s {
            "running" => JobState::Running,
            "paused" => JobState::Paused,
            "cancelled" => JobState::Cancelled,
            "done" => JobState::Done,
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
    /// How often the observer hears about progress.
    pub progress_every: Duration,
}

impl JobOptions {
    /// The options the configuration asks for.
    pub fn from_config(c: &crate::config::Config) -> Self {
        Self {
            item_delay: c.job_item_delay,
            jitter: c.job_jitter,
            daily_cap: c.job_daily_cap,
            max_items: c.job_max_items,
            progress_every: Duration::from_secs(2),
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
    /// One worker per account with running jobs; its `Notify` wakes it (start, resume, cancel).
    workers: Mutex<HashMap<AccountId, Arc<Notify>>>,
    shutdown: watch::Sender<bool>,
    /// Written on items marked running by this process, so an item left running by an
    /// earlier process (a crash) can be told from one this process is about to run.
    boot: String,
    /// Worker tasks, so shutdown can wait for the items in flight.
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

/// One item to run.
struct Item {
    seq: i64,
    input: String,
    /// It was marked running by an earlier process that did not record its result.
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
                boot: format!("inflight:{:016x}", rand::random::<u64>()),
                tasks: Mutex::new(Vec::new()),
            }),
        }
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
        let id = self
            .db(&acc, move |c| {
                let tx = c.transaction()?;
                let t = now();
                tx.execute(
                    "INSERT INTO jobs (kind, state, params, telegram_id, chat_id, created_at, updated_at)
                     VALUES (?1, 'draft', ?2, ?3, ?4, ?5, ?5)",
                    params![name, params, owner.get(), chat_id, t],
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
                c.execute(
                    "UPDATE jobs SET state = ?2, pause_reason = ?3, updated_at = ?4 WHERE id = ?1",
                    params![job.0, to.as_str(), reason, now()],
                )?;
                if to == JobState::Cancelled {
                    c.execute(
                        "UPDATE job_items SET state = 'pending', result = NULL WHERE job_id = ?1 AND state = 'running'",
                        [job.0],
                    )?;
                }
                Ok(Ok(()))
            })
            .await?;
        res.map(|_| acc)
    }

    /// Confirms a draft: it starts running.
    pub async fn start(&self, owner: TelegramId, account: AccountId, job: JobId) -> Result<(), JobError> {
        let acc = self
            .set_state(owner, account, job, &[JobState::Draft], JobState::Running, None)
            .await?;
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
        let from = &[JobState::Draft, JobState::Running, JobState::Paused];
        let acc = self
            .set_state(owner, account, job, from, JobState::Cancelled, None)
            .await?;
        crate::metrics::job_outcome("cancelled");
        self.wake(&acc);
        Ok(())
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
        if let Some(n) = workers.get(&acc.id) {
            n.notify_one();
            return;
        }
        let notify = Arc::new(Notify::new());
        workers.insert(acc.id, notify.clone());
        let worker = Worker {
            jobs: self.clone(),
            account: acc.clone(),
            notify,
            shutdown: self.inner.shutdown.subscribe(),
            today: None,
            cursors: Arc::default(),
        };
        let task = tokio::spawn(worker.run());
        let mut tasks = self.inner.tasks.lock().unwrap_or_else(|e| e.into_inner());
        tasks.retain(|t| !t.is_finished());
        tasks.push(task);
    }
}

/// Reads a job's counts; `None` when there is no such job. Returns the owner too.
fn read_progress(c: &Connection, job: JobId) -> Result<Option<(i64, JobProgress)>, DbError> {
    type Row = (String, Option<String>, i64, i64, Option<i64>);
    let row: Option<Row> = c
        .query_row(
            "SELECT state, pause_reason, telegram_id, chat_id, message_id FROM jobs WHERE id = ?1",
            [job.0],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )
        .optional()?;
    let Some((state, pause_reason, tid, chat_id, message_id)) = row else {
        return Ok(None);
    };
    let (total, done, failed): (i64, i64, i64) = c.query_row(
        "SELECT COUNT(*), COALESCE(SUM(state = 'ok'), 0), COALESCE(SUM(state = 'failed'), 0)
         FROM job_items WHERE job_id = ?1",
        [job.0],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )?;
    Ok(Some((
        tid,
        JobProgress {
            state: JobState::parse(&state),
            done: done as usize,
            failed: failed as usize,
            total: total as usize,
            pause_reason,
            rate_per_min: 0.0,
            eta: None,
            message_id,
            chat_id,
        },
    )))
}

/// The result of the item a worker just ran.
struct Done {
    job: JobId,
    owner: TelegramId,
    seq: i64,
    state: &'static str,
    result: String,
}

/// The oldest running job's next item; marks a pending item running with `boot`.
fn pick_next(c: &Connection, boot: &str, cursors: &Mutex<HashMap<i64, i64>>) -> Result<Next, DbError> {
    let job: Option<(i64, i64, String)> = c
        .prepare_cached("SELECT id, telegram_id, params FROM jobs WHERE state = 'running' ORDER BY id LIMIT 1")?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?;
    let Some((job, owner, params)) = job else {
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
    let row: Option<(i64, String, String, Option<String>)> = c
        .prepare_cached(
            "SELECT seq, input, state, result FROM job_items
             WHERE job_id = ?1 AND seq >= ?2 AND state IN ('running', 'pending') ORDER BY seq LIMIT 1",
        )?
        .query_row(params![job, from], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .optional()?;
    let item = match row {
        Some((seq, input, state, marker)) => {
            cursors.lock().unwrap_or_else(|e| e.into_inner()).insert(job, seq);
            let interrupted = state == "running" && marker.as_deref() != Some(boot);
            if state == "pending" {
                c.prepare_cached("UPDATE job_items SET state = 'running', result = ?3 WHERE job_id = ?1 AND seq = ?2")?
                    .execute(params![job, seq, boot])?;
            }
            Some(Item {
                seq,
                input,
                interrupted,
            })
        }
        None => None,
    };
    Ok(match item {
        Some(item) => Next::Item {
            job: JobId(job),
            owner,
            kind,
            item,
        },
        None => Next::Finish { job: JobId(job), owner },
    })
}

/// What came of one item.
enum Outcome {
    Ok(String),
    Failed(String),
    /// The account cannot work now (logged out, banned): pause the job.
    Offline,
    /// Stop without recording (shutdown, pause or cancel while backing off).
    Interrupted,
}

/// The task that runs one account's jobs, one item at a time.
struct Worker {
    jobs: Jobs,
    account: Account,
    notify: Arc<Notify>,
    shutdown: watch::Receiver<bool>,
    /// Items finished today (UTC day start, count), read once and then counted here.
    today: Option<(i64, i64)>,
    /// Per job, the `seq` below which every item is finished.
    cursors: Arc<Mutex<HashMap<i64, i64>>>,
}

/// The next thing the worker should do.
enum Next {
    Item {
        job: JobId,
        owner: TelegramId,
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
        *self.shutdown.borrow()
    }

    async fn run(mut self) {
        let id = self.account.id;
        let mut rate = Rate::default();
        let mut last_progress: HashMap<JobId, Instant> = HashMap::new();
        let mut done: Option<Done> = None;
        loop {
            let recorded = done.as_ref().map(|d| (d.job, d.owner));
            let mut woke = false;
            let next = match self.advance(done.take()).await {
                Ok(n) => n,
                Err(e) => {
                    warn!(account_id = %id, error = %e, "job worker cannot record or read its jobs; stopping");
                    break;
                }
            };
            if let Some((job, owner)) = recorded {
                if let Some((_, n)) = &mut self.today {
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
                        .jobs
                        .db(&self.account, move |c| {
                            c.execute(
                                "UPDATE jobs SET state = 'done', updated_at = ?2 WHERE id = ?1 AND state = 'running'",
                                params![job.0, now()],
                            )?;
                            Ok(())
                        })
                        .await;
                    info!(account_id = %id, job = job.get(), "job finished");
                    crate::metrics::job_outcome("done");
                    if let (Some(obs), Some(p)) = (self.jobs.observer(), self.read(job).await) {
                        obs.finished(owner, id, job, &p).await;
                    }
                }
                Next::Item { job, owner, kind, item } => {
                    if let Some(reason) = self.must_pause().await {
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
                    let started = Instant::now();
                    let (state, result) = match self.run_item(&kind, &item).await {
                        Outcome::Ok(r) => ("ok", r),
                        Outcome::Failed(r) => ("failed", r),
                        Outcome::Offline => {
                            self.auto_pause(job, owner, "account_offline").await;
                            break;
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
                    });
                }
            }
        }
        // Items this process marked as next but did not start go back to pending, so only a
        // crash (not a stop, pause or shutdown) leaves an item in doubt.
        let boot = self.jobs.inner.boot.clone();
        let reset = self
            .jobs
            .db(&self.account, move |c| {
                Ok(c.execute(
                    "UPDATE job_items SET state = 'pending', result = NULL WHERE state = 'running' AND result = ?1",
                    [boot],
                )?)
            })
            .await;
        if let Err(e) = reset {
            warn!(account_id = %id, error = %e, "could not release the next item");
        }
        self.jobs
            .inner
            .workers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id);
        // A job started between our last look and the removal above gets its own worker.
        if !self.stopping() {
            if let Ok(Next::Item { .. } | Next::Finish { .. }) = self.next().await {
                self.jobs.wake(&self.account);
            }
        }
    }

    async fn read(&self, job: JobId) -> Option<JobProgress> {
        self.jobs
            .db(&self.account, move |c| read_progress(c, job))
            .await
            .ok()
            .flatten()
            .map(|(_, p)| p)
    }

    /// The oldest running job's next item (one left `running` by a crash first, then the
    /// lowest pending one, which is marked running before it is returned).
    async fn next(&self) -> Result<Next, JobError> {
        self.advance(None).await
    }

    /// Records the result of the item just run (if any) and picks the next one, in one
    /// transaction and one trip to the blocking pool.
    async fn advance(&self, done: Option<Done>) -> Result<Next, JobError> {
        let boot = self.jobs.inner.boot.clone();
        let cursors = self.cursors.clone();
        self.jobs
            .db(&self.account, move |c| {
                let tx = c.transaction()?;
                if let Some(d) = &done {
                    tx.prepare_cached(
                        "UPDATE job_items SET state = ?3, result = ?4, updated_at = ?5 WHERE job_id = ?1 AND seq = ?2",
                    )?
                    .execute(params![d.job.0, d.seq, d.state, d.result, now()])?;
                }
                let next = pick_next(&tx, &boot, &cursors)?;
                tx.commit()?;
                Ok(next)
            })
            .await
    }

    /// `Some(reason)` when the account must not run items now.
    async fn must_pause(&mut self) -> Option<&'static str> {
        let m = &self.jobs.inner.manager;
        if let Some(s) = m.live_status_unchecked(self.account.id) {
            if matches!(
                s.state,
                LiveState::LoggedOut | LiveState::Banned | LiveState::Unpaired | LiveState::Stopped
            ) {
                return Some("account_offline");
            }
        }
        let cap = self.jobs.inner.options.daily_cap;
        let t = now();
        let day_start = t - t.rem_euclid(86_400);
        let used = match self.today {
            Some((day, n)) if day == day_start => n,
            _ => {
                let n = self
                    .jobs
                    .db(&self.account, move |c| {
                        Ok(c.query_row(
                            "SELECT COUNT(*) FROM job_items WHERE state IN ('ok', 'failed') AND updated_at >= ?1",
                            [day_start],
                            |r| r.get::<_, i64>(0),
                        )?)
                    })
                    .await
                    .unwrap_or(0);
                self.today = Some((day_start, n));
                n
            }
        };
        (used >= cap as i64).then_some("daily_cap")
    }

    async fn auto_pause(&self, job: JobId, owner: TelegramId, reason: &'static str) {
        crate::metrics::job_outcome("auto_paused");
        let res = self
            .jobs
            .db(&self.account, move |c| {
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
        self.jobs
            .db(&self.account, move |c| {
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

    /// The account's live session, waiting a little while it reconnects.
    async fn session(&mut self) -> Option<Arc<dyn WaSession>> {
        let m = self.jobs.inner.manager.clone();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let state = m.live_status_unchecked(self.account.id).map(|s| s.state);
            match state {
                Some(LiveState::Connected) => return m.live_session(self.account.id),
                Some(LiveState::Connecting | LiveState::Disconnected | LiveState::Pairing)
                    if Instant::now() < deadline =>
                {
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_millis(250)) => {}
                        _ = self.shutdown.changed() => return None,
                    }
                }
                _ => return None,
            }
        }
    }

    async fn run_item(&mut self, kind: &JobKind, item: &Item) -> Outcome {
        if item.interrupted && !kind.idempotent() {
            return Outcome::Failed("interrupted by a crash while running; not retried to avoid doing it twice".into());
        }
        let mut backoff = Duration::from_secs(2);
        for _ in 0..6 {
            let Some(session) = self.session().await else {
                return if self.stopping() {
                    Outcome::Interrupted
                } else {
                    Outcome::Offline
                };
            };
            match execute(session.as_ref(), kind, &item.input).await {
                Ok(r) => return Outcome::Ok(r),
                Err(ItemError::Bad(r)) => return Outcome::Failed(r),
                Err(ItemError::Wa(e)) => match (e.advice(), &e) {
                    (Advice::RePair, _) => return Outcome::Offline,
                    (Advice::GiveUp, _) => return Outcome::Failed(e.to_string()),
                    (Advice::Retry, WaError::RateLimited { retry_after }) => {
                        let wait = retry_after.unwrap_or(backoff).min(Duration::from_secs(900));
                        warn!(account_id = %self.account.id, ?wait, "rate limited; backing off");
                        tokio::select! {
                            _ = tokio::time::sleep(wait) => {}
                            _ = self.shutdown.changed() => return Outcome::Interrupted,
                        }
                        backoff = (backoff * 2).min(Duration::from_secs(300));
                    }
                    (Advice::Retry, _) => {
                        tokio::select! {
                            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                            _ = self.shutdown.changed() => return Outcome::Interrupted,
                        }
                    }
                },
            }
        }
        Outcome::Failed("gave up after repeated errors".into())
    }
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
async fn execute(s: &dyn WaSession, kind: &JobKind, input: &str) -> Result<String, ItemError> {
    match kind {
        JobKind::CreateGroups { members } => {
            let g = s.create_group(input, members).await?;
            Ok(format!("created {} ({} members)", g.id, g.members.len()))
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
                Some(Err(why)) => Err(ItemError::Bad(why)),
            }
        }
        JobKind::Broadcast { text } => {
            let to = match GroupId::parse(input) {
                Some(g) => ChatTarget::Group(g),
                None => ChatTarget::Phone(phone(input)?),
            };
            let id = s.send_text(&to, text).await?;
            Ok(format!("sent {id}"))
        }
        JobKind::CheckNumbers => {
            let p = phone(input)?;
            let res = s.is_on_whatsapp(std::slice::from_ref(&p)).await?;
            let on = res.iter().any(|(n, on)| n == &p && *on);
            Ok(if on { "on WhatsApp" } else { "not on WhatsApp" }.into())
        }
    }
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
        let left = p.total.saturating_sub(p.done + p.failed) as f64;
        if p.rate_per_min > 0.0 {
            p.eta = Some(Duration::from_secs_f64(left * 60.0 / p.rate_per_min));
        }
    }
}

#[cfg(test)]
mod tests {
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
                text: "halo\nsemua".into(),
            },
            JobKind::CheckNumbers,
        ];
        for k in kinds {
            let s = serde_json::to_string(&k).unwrap();
            assert_eq!(serde_json::from_str::<JobKind>(&s).unwrap(), k, "{s}");
        }
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
        assert!(!JobKind::Broadcast { text: String::new() }.idempotent());
        assert!(!JobKind::CreateGroups { members: vec![] }.idempotent());
    }
}
