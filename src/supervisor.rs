//! Live sessions: one supervisor task per account owns its WhatsApp session, turns the
//! session's events into account status (in memory and in the master database), and reports
//! what needs a person as a [`Notice`]. Pairing, startup restore and shutdown all go through
//! the same path: [`AccountManager::launch`].

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::{mpsc, watch, Semaphore};
use tokio::task::JoinHandle;
use tracing::{info, info_span, warn, Instrument};

use crate::account::{self, Account, AccountError, AccountStatus};
use crate::db::now;
use crate::ids::{AccountId, PhoneNumber, TelegramId};
use crate::manager::AccountManager;
use crate::wa::{EventRx, PairCode, Probe, SessionSpec, WaError, WaEvent, WaSession};

/// What a live session is doing right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LiveState {
    /// Waiting for the owner to enter the pairing code or scan the QR.
    Pairing,
    /// Starting or reconnecting.
    Connecting,
    /// Logged in.
    Connected,
    /// Connection lost; the backend is retrying.
    Disconnected,
    /// Logged out from the phone.
    LoggedOut,
    /// Temporarily banned.
    Banned,
    /// The session file holds no paired device.
    Unpaired,
    /// Pairing failed or expired; the account was not registered.
    PairFailed,
    /// Stopped by us (removed, shut down, or taken over by another client).
    Stopped,
}

/// A live status with its last error and since when (Unix seconds).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LiveStatus {
    pub state: LiveState,
    pub last_error: Option<String>,
    pub since: i64,
    /// Set with `PairFailed` when WhatsApp rate-limited us.
    pub retry_after: Option<Duration>,
}

impl LiveStatus {
    fn new(state: LiveState, last_error: Option<String>) -> Self {
        Self {
            state,
            last_error,
            since: now(),
            retry_after: None,
        }
    }
}

/// Something a person should hear about. The Telegram front-end consumes these.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// A pairing finished: the account is registered, active and connected.
    Paired {
        owner: TelegramId,
        account: AccountId,
        phone: PhoneNumber,
    },
    /// A pairing failed or expired; nothing was registered.
    PairFailed {
        owner: TelegramId,
        phone: PhoneNumber,
        reason: String,
        retry_after: Option<Duration>,
    },
    /// A QR code to show for QR login.
    Qr {
        owner: TelegramId,
        account: AccountId,
        code: String,
    },
    /// Logged out from the phone; files are kept.
    LoggedOut {
        owner: TelegramId,
        account: AccountId,
        phone: PhoneNumber,
        reason: String,
    },
    /// Temporarily banned until `until` (Unix seconds).
    Banned {
        owner: TelegramId,
        account: AccountId,
        phone: PhoneNumber,
        reason: String,
        until: i64,
    },
    /// Another client took over the session.
    StreamReplaced {
        owner: TelegramId,
        account: AccountId,
        phone: PhoneNumber,
    },
    /// Back online after an outage of `after`.
    Reconnected {
        owner: TelegramId,
        account: AccountId,
        phone: PhoneNumber,
        after: Duration,
    },
    /// Several connection attempts in a row failed.
    ConnectFailures {
        owner: TelegramId,
        account: AccountId,
        phone: PhoneNumber,
        count: u32,
        reason: String,
    },
    /// Startup restore finished.
    Restored(RestoreSummary),
}

/// The outcome of the startup restore.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RestoreSummary {
    /// Accounts that were `active` (or whose ban ended) at startup.
    pub total: usize,
    pub connected: usize,
    pub failed: usize,
    pub logged_out: usize,
    pub banned: usize,
    pub unpaired: usize,
    /// Pairings interrupted by a crash, cleaned up.
    pub stale_pairings: usize,
}

/// Why a pairing could not start.
#[derive(Debug, thiserror::Error)]
pub enum PairError {
    #[error(transparent)]
    Account(#[from] AccountError),
    #[error("WhatsApp: {0}")]
    Wa(#[from] WaError),
    #[error("the account is running in another process")]
    Locked,
}

/// A live account: its session, status and supervisor.
pub(crate) struct Live {
    pub(crate) session: Arc<dyn WaSession>,
    pub(crate) status: watch::Receiver<LiveStatus>,
    /// Tells the supervisor to disconnect and end.
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
    /// Held for the session's life: an advisory lock so two processes never run one account.
    _lock: File,
}

/// Account ID to live session, the notice channel, and who is pairing.
pub(crate) struct LiveMap {
    pub(crate) map: Mutex<HashMap<AccountId, Live>>,
    notices_tx: mpsc::UnboundedSender<Notice>,
    notices_rx: Mutex<Option<mpsc::UnboundedReceiver<Notice>>>,
    pairing: Mutex<HashSet<TelegramId>>,
}

impl Default for LiveMap {
    fn default() -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        Self {
            map: Mutex::new(HashMap::new()),
            notices_tx: tx,
            notices_rx: Mutex::new(Some(rx)),
            pairing: Mutex::new(HashSet::new()),
        }
    }
}

/// How a session is being started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Restoring a paired account.
    Restore,
    /// A new pairing; `repair` when the row existed before (logged out / unpaired).
    Pair {
        repair_from: Option<AccountStatus>,
        deadline: Duration,
    },
}

/// Connect failures in a row before the owner is told.
const FAILURES_BEFORE_NOTICE: u32 = 5;

impl AccountManager {
    /// Takes the notice receiver (once; the front-end owns it).
    pub fn take_notices(&self) -> Option<mpsc::UnboundedReceiver<Notice>> {
        self.inner
            .live
            .notices_rx
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
    }

    fn notify(&self, n: Notice) {
        let _ = self.inner.live.notices_tx.send(n);
    }

    /// The live status of the owner's account (`None` when no session runs).
    pub async fn live_status(&self, owner: TelegramId, id: AccountId) -> Result<Option<LiveStatus>, AccountError> {
        self.account_of(owner, id).await?;
        Ok(self.live_status_unchecked(id))
    }

    /// The live status by ID, for the operator views and the restore.
    pub fn live_status_unchecked(&self, id: AccountId) -> Option<LiveStatus> {
        let m = self.inner.live.map.lock().unwrap_or_else(|e| e.into_inner());
        m.get(&id).map(|l| l.status.borrow().clone())
    }

    /// The live session of account `id`, without an owner check (for the job engine, which
    /// checked ownership when the job was created).
    pub(crate) fn live_session(&self, id: AccountId) -> Option<Arc<dyn WaSession>> {
        let m = self.inner.live.map.lock().unwrap_or_else(|e| e.into_inner());
        m.get(&id).map(|l| l.session.clone())
    }

    /// A receiver of the owner's account status changes (for the pairing countdown).
    pub async fn watch_status(
        &self,
        owner: TelegramId,
        id: AccountId,
    ) -> Result<Option<watch::Receiver<LiveStatus>>, AccountError> {
        let acc = self.get(id).await?.ok_or(AccountError::NotFound)?;
        if acc.telegram_id != owner {
            return Err(AccountError::NotOwner);
        }
        let m = self.inner.live.map.lock().unwrap_or_else(|e| e.into_inner());
        Ok(m.get(&id).map(|l| l.status.clone()))
    }

    /// The owner's live session, for WhatsApp operations. `NotLive` when it is not connected.
    pub async fn session_of(&self, owner: TelegramId, id: AccountId) -> Result<Arc<dyn WaSession>, AccountError> {
        let acc = self.account_of(owner, id).await?;
        if acc.status != AccountStatus::Active {
            return Err(AccountError::WrongState(acc.status));
        }
        let m = self.inner.live.map.lock().unwrap_or_else(|e| e.into_inner());
        m.get(&id).map(|l| l.session.clone()).ok_or(AccountError::NotLive)
    }

    /// How many sessions are live.
    pub fn live_count(&self) -> usize {
        self.inner.live.map.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Starts pairing `phone` for `owner`: writes the `pairing` row and files first (so a
    /// crash leaves something the next start cleans up), then asks WhatsApp for a code. On
    /// any failure the row and files are taken back. Success arrives later as
    /// [`Notice::Paired`] and on [`Self::watch_status`].
    pub async fn start_pairing(&self, owner: TelegramId, phone: PhoneNumber) -> Result<(Account, PairCode), PairError> {
        match self.begin_pairing(owner, phone, false).await? {
            (acc, Some(code)) => Ok((acc, code)),
            (acc, None) => {
                self.cancel_pairing(owner, acc.id).await?;
                Err(WaError::Other("WhatsApp issued no pairing code".into()).into())
            }
        }
    }

    /// Like [`Self::start_pairing`] but for QR login: codes arrive as [`Notice::Qr`].
    pub async fn start_qr_pairing(&self, owner: TelegramId, phone: PhoneNumber) -> Result<Account, PairError> {
        self.begin_pairing(owner, phone, true).await.map(|(a, _)| a)
    }

    async fn begin_pairing(
        &self,
        owner: TelegramId,
        phone: PhoneNumber,
        qr: bool,
    ) -> Result<(Account, Option<PairCode>), PairError> {
        {
            let mut p = self.inner.live.pairing.lock().unwrap_or_else(|e| e.into_inner());
            if !p.insert(owner) {
                return Err(AccountError::PairingInProgress.into());
            }
        }
        let res = self.begin_pairing_inner(owner, phone, qr).await;
        if res.is_err() {
            self.inner
                .live
                .pairing
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&owner);
        }
        res
    }

    async fn begin_pairing_inner(
        &self,
        owner: TelegramId,
        phone: PhoneNumber,
        qr: bool,
    ) -> Result<(Account, Option<PairCode>), PairError> {
        let previous = self.by_phone(&phone).await?;
        let repair_from = previous
            .filter(|a| {
                a.telegram_id == owner && matches!(a.status, AccountStatus::LoggedOut | AccountStatus::Unpaired)
            })
            .map(|a| a.status);
        if repair_from.is_some() {
            // A stale session file would log the old device back in: put it aside first.
            let layout = self.inner.layout.clone();
            let old = layout.session_file(owner, &phone);
            crate::db::blocking(move || Ok(layout.move_to_trash(&[old])?))
                .await
                .map_err(AccountError::from)?;
        }
        let acc = self.add(owner, phone.clone(), AccountStatus::Pairing, None).await?;
        let deadline = match self.inner.config.wa_backend {
            crate::config::WaBackendKind::Sim => self.inner.config.sim_code_ttl + Duration::from_secs(5),
            crate::config::WaBackendKind::WhatsApp | crate::config::WaBackendKind::Fake => Duration::from_secs(185),
        };
        let mode = Mode::Pair { repair_from, deadline };
        let started = self.launch(acc.clone(), mode).await;
        let session = match started {
            Ok(s) => s,
            Err(e) => {
                self.abandon_pairing(&acc, repair_from, &e.to_string()).await;
                return Err(e);
            }
        };
        let code = if qr {
            session.start_qr().await.map(|_| None)
        } else {
            session.request_pair_code(&phone).await.map(Some)
        };
        match code {
            Ok(c) => Ok((acc, c)),
            Err(e) => {
                self.stop_session(acc.id).await;
                self.abandon_pairing(&acc, repair_from, &e.to_string()).await;
                Err(e.into())
            }
        }
    }

    /// Cancels the owner's pairing of account `id` (the Cancel button).
    pub async fn cancel_pairing(&self, owner: TelegramId, id: AccountId) -> Result<(), AccountError> {
        let acc = self.account_of(owner, id).await?;
        if acc.status != AccountStatus::Pairing {
            return Err(AccountError::WrongState(acc.status));
        }
        let session = {
            let m = self.inner.live.map.lock().unwrap_or_else(|e| e.into_inner());
            m.get(&id).map(|l| l.session.clone())
        };
        if let Some(s) = session {
            let _ = s.cancel_pair_code().await;
        }
        self.stop_session(id).await;
        let repair_from = acc.jid.as_ref().map(|_| AccountStatus::LoggedOut);
        self.abandon_pairing(&acc, repair_from, "cancelled by owner").await;
        Ok(())
    }

    /// Takes back a pairing that did not finish: a new row is deleted and its files trashed;
    /// a re-pair goes back to its previous status.
    async fn abandon_pairing(&self, acc: &Account, repair_from: Option<AccountStatus>, reason: &str) {
        self.inner
            .live
            .pairing
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&acc.telegram_id);
        let res = match repair_from {
            Some(prev) => self
                .set_status(acc.id, prev, Some(reason.to_string()), None)
                .await
                .map(|_| Vec::new()),
            None => self.retire(acc, reason).await,
        };
        if let Err(e) = res {
            warn!(account_id = %acc.id, error = %e, "could not take back a failed pairing");
        }
    }

    /// Starts a session for `acc` and its supervisor; returns the session.
    async fn launch(&self, acc: Account, mode: Mode) -> Result<Arc<dyn WaSession>, PairError> {
        let lock = self.lock_account(&acc.phone).await?;
        let spec = SessionSpec {
            telegram_id: acc.telegram_id,
            phone: acc.phone.clone(),
            session_file: acc.db_path.clone(),
        };
        let (session, events) = self.inner.backend.start(spec).await?;
        let initial = match mode {
            Mode::Restore => LiveState::Connecting,
            Mode::Pair { .. } => LiveState::Pairing,
        };
        let (status_tx, status_rx) = watch::channel(LiveStatus::new(initial, None));
        let (stop_tx, stop_rx) = watch::channel(false);
        let sup = Supervisor {
            manager: self.clone(),
            account: acc.clone(),
            session: session.clone(),
            status: status_tx,
            mode,
            failures: 0,
            down_since: None,
        };
        let span =
            info_span!("account", account_id = %acc.id, telegram_id = %acc.telegram_id, phone = %acc.phone.masked());
        let task = tokio::spawn(sup.run(events, stop_rx).instrument(span));
        let previous = self.inner.live.map.lock().unwrap_or_else(|e| e.into_inner()).insert(
            acc.id,
            Live {
                session: session.clone(),
                status: status_rx,
                stop: stop_tx,
                task: Some(task),
                _lock: lock,
            },
        );
        if let Some(mut old) = previous {
            let _ = old.stop.send(true);
            if let Some(t) = old.task.take() {
                t.abort();
            }
        }
        Ok(session)
    }

    /// Takes the per-number advisory lock (`flock`) so two processes never run one account.
    async fn lock_account(&self, phone: &PhoneNumber) -> Result<File, PairError> {
        let dir = self.inner.layout.lock_dir();
        let path = dir.join(format!("{}.lock", phone.digits()));
        crate::db::blocking(move || {
            crate::layout::create_private_dir(&dir)?;
            crate::db::create_private_file(&path)?;
            let f = std::fs::OpenOptions::new().read(true).write(true).open(&path)?;
            use std::os::unix::io::AsRawFd;
            // SAFETY: flock on a file descriptor we own; no memory is shared.
            let rc = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
            Ok((rc == 0).then_some(f))
        })
        .await
        .map_err(AccountError::from)?
        .ok_or(PairError::Locked)
    }

    /// Disconnects and forgets the account's live session, if any.
    pub(crate) async fn stop_session(&self, id: AccountId) {
        let live = self
            .inner
            .live
            .map
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id);
        if let Some(mut live) = live {
            let _ = live.stop.send(true);
            live.session.disconnect(self.inner.config.shutdown_timeout).await;
            if let Some(t) = live.task.take() {
                let _ = tokio::time::timeout(Duration::from_secs(2), t).await;
            }
        }
    }

    /// Unlinks the owner's account from the phone, moves its session file to trash and marks
    /// it `logged_out` (its bot data stays until it is removed).
    pub async fn logout(&self, owner: TelegramId, id: AccountId) -> Result<(), AccountError> {
        let acc = self.account_of(owner, id).await?;
        let session = {
            let m = self.inner.live.map.lock().unwrap_or_else(|e| e.into_inner());
            m.get(&id).map(|l| l.session.clone())
        };
        if let Some(s) = &session {
            if let Err(e) = s.logout().await {
                warn!(account_id = %id, error = %e, "logout from WhatsApp failed; unlinking locally");
            }
        }
        self.stop_session(id).await;
        let layout = self.inner.layout.clone();
        let file = acc.db_path.clone();
        crate::db::blocking(move || Ok(layout.move_to_trash(&[file])?)).await?;
        self.set_status(id, AccountStatus::LoggedOut, Some("logged out by owner".into()), None)
            .await?;
        self.audit(Some(owner), Some(id), "logout", String::new()).await?;
        Ok(())
    }

    /// Startup: cleans up pairings a crash interrupted, validates every account that should
    /// be online, and logs them in through the same path as a new pairing, at most
    /// `TGWA_LOGIN_CONCURRENCY` at once with jitter. Returns when each has connected or failed
    /// (or `login_timeout` passed for it).
    pub async fn restore_all(&self, login_timeout: Duration, jitter: Duration) -> Result<RestoreSummary, AccountError> {
        let mut summary = RestoreSummary::default();
        let rows = self.all_rows().await?;
        for acc in rows.iter().filter(|a| a.status == AccountStatus::Pairing) {
            summary.stale_pairings += 1;
            warn!(account_id = %acc.id, phone = %acc.phone.masked(), "cleaning up a pairing interrupted by a restart");
            let prev = acc.jid.as_ref().map(|_| AccountStatus::LoggedOut);
            self.abandon_pairing(acc, prev, "pairing interrupted by a restart")
                .await;
        }
        let t = now();
        let due: Vec<Account> = rows
            .into_iter()
            .filter(|a| {
                a.status == AccountStatus::Active
                    || (a.status == AccountStatus::Banned && a.banned_until.is_some_and(|u| u <= t))
            })
            .collect();
        summary.total = due.len();
        let permits = Arc::new(Semaphore::new(self.inner.config.login_concurrency.max(1)));
        let (done_tx, mut done_rx) = mpsc::unbounded_channel::<LiveState>();
        for acc in due {
            let this = self.clone();
            let permits = permits.clone();
            let done_tx = done_tx.clone();
            tokio::spawn(async move {
                let Ok(_permit) = permits.acquire_owned().await else {
                    return;
                };
                if !jitter.is_zero() {
                    let ms = rand::random::<u64>() % (jitter.as_millis() as u64 + 1);
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                }
                let state = this.restore_one(acc, login_timeout).await;
                let _ = done_tx.send(state);
            });
        }
        drop(done_tx);
        let mut n = 0;
        while let Some(state) = done_rx.recv().await {
            n += 1;
            match state {
                LiveState::Connected => summary.connected += 1,
                LiveState::LoggedOut => summary.logged_out += 1,
                LiveState::Banned => summary.banned += 1,
                LiveState::Unpaired => summary.unpaired += 1,
                _ => summary.failed += 1,
            }
            if n % 50 == 0 || n == summary.total {
                info!("restored {n}/{}", summary.total);
            }
        }
        info!(?summary, "startup restore finished");
        self.notify(Notice::Restored(summary.clone()));
        Ok(summary)
    }

    /// Validates one account and logs it in; returns the state it reached.
    async fn restore_one(&self, acc: Account, login_timeout: Duration) -> LiveState {
        let probe = self.inner.backend.probe(&acc.db_path).await;
        match probe {
            Ok(Probe::Paired { .. }) => {}
            Ok(Probe::Unpaired) => {
                let _ = self
                    .set_status(
                        acc.id,
                        AccountStatus::Unpaired,
                        Some("the session file holds no paired device".into()),
                        None,
                    )
                    .await;
                return LiveState::Unpaired;
            }
            Err(e) => {
                warn!(account_id = %acc.id, error = %e, "session file is not usable");
                let _ = self
                    .set_status(
                        acc.id,
                        AccountStatus::Unpaired,
                        Some(format!("session file unusable: {e}")),
                        None,
                    )
                    .await;
                return LiveState::Unpaired;
            }
        }
        if acc.status == AccountStatus::Banned {
            let _ = self.set_status(acc.id, AccountStatus::Active, None, None).await;
        }
        let id = acc.id;
        if let Err(e) = self.launch(acc, Mode::Restore).await {
            warn!(account_id = %id, error = %e, "could not start session");
            return LiveState::Stopped;
        }
        let rx = {
            let m = self.inner.live.map.lock().unwrap_or_else(|e| e.into_inner());
            m.get(&id).map(|l| l.status.clone())
        };
        let Some(mut rx) = rx else { return LiveState::Stopped };
        let settled = tokio::time::timeout(login_timeout, async {
            loop {
                let s = rx.borrow_and_update().state;
                if !matches!(s, LiveState::Connecting | LiveState::Disconnected) {
                    return s;
                }
                if rx.changed().await.is_err() {
                    return LiveState::Stopped;
                }
            }
        })
        .await;
        settled.unwrap_or(LiveState::Connecting)
    }

    /// Moves the files of accounts logged out or banned for longer than
    /// `TGWA_PURGE_AFTER_DAYS` to trash and marks them removed. Returns how many.
    pub async fn purge_expired(&self) -> Result<usize, AccountError> {
        let cutoff = now() - (self.inner.config.purge_after_days as i64) * 86_400;
        let rows = self.all_rows().await?;
        let mut n = 0;
        for acc in rows {
            if matches!(acc.status, AccountStatus::LoggedOut | AccountStatus::Banned) && acc.status_changed_at <= cutoff
            {
                self.retire(&acc, "purged after the grace period").await?;
                n += 1;
            }
        }
        Ok(n)
    }

    /// Disconnects every session, all within `bound` in total.
    pub async fn shutdown(&self, bound: Duration) {
        let ids: Vec<AccountId> = self
            .inner
            .live
            .map
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .copied()
            .collect();
        let per = bound.saturating_sub(Duration::from_millis(200));
        let all = futures::future::join_all(ids.into_iter().map(|id| {
            let this = self.clone();
            async move {
                let live = this
                    .inner
                    .live
                    .map
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&id);
                if let Some(mut live) = live {
                    let _ = live.stop.send(true);
                    live.session.disconnect(per).await;
                    if let Some(t) = live.task.take() {
                        t.abort();
                    }
                }
            }
        }));
        if tokio::time::timeout(bound, all).await.is_err() {
            warn!("some sessions did not disconnect within {bound:?}");
        }
    }
}

/// The task that owns one session.
struct Supervisor {
    manager: AccountManager,
    account: Account,
    session: Arc<dyn WaSession>,
    status: watch::Sender<LiveStatus>,
    mode: Mode,
    /// Connection failures in a row.
    failures: u32,
    /// When the connection was lost, for the "reconnected" notice.
    down_since: Option<tokio::time::Instant>,
}

impl Supervisor {
    async fn run(mut self, mut events: EventRx, mut stop: watch::Receiver<bool>) {
        let deadline = match self.mode {
            Mode::Pair { deadline, .. } => Some(tokio::time::Instant::now() + deadline),
            Mode::Restore => None,
        };
        loop {
            let pairing = matches!(self.mode, Mode::Pair { .. });
            let expiry = async move {
                match deadline {
                    Some(d) if pairing => tokio::time::sleep_until(d).await,
                    _ => std::future::pending().await,
                }
            };
            tokio::select! {
                ev = events.recv() => match ev {
                    Some(ev) => {
                        if !self.handle(ev).await {
                            break;
                        }
                    }
                    None => {
                        if let Mode::Pair { repair_from, .. } = self.mode {
                            self.fail_pairing(repair_from, "the session ended before pairing finished".into(), None).await;
                        } else {
                            self.set(LiveState::Stopped, Some("session ended".into()));
                        }
                        break;
                    }
                },
                _ = expiry => {
                    if let Mode::Pair { repair_from, .. } = self.mode {
                        self.fail_pairing(repair_from, "code expired".into(), None).await;
                    }
                    break;
                }
                _ = stop.changed() => break,
            }
        }
    }

    fn set(&self, state: LiveState, err: Option<String>) {
        self.status.send_replace(LiveStatus::new(state, err));
    }

    /// Handles one event; `false` ends the supervisor.
    async fn handle(&mut self, ev: WaEvent) -> bool {
        let m = self.manager.clone();
        let (owner, id, phone) = (self.account.telegram_id, self.account.id, self.account.phone.clone());
        match ev {
            WaEvent::Qr { code, .. } => {
                m.notify(Notice::Qr {
                    owner,
                    account: id,
                    code,
                });
            }
            WaEvent::PairSuccess { jid } => {
                let res = async {
                    m.with_master({
                        let jid = jid.clone();
                        move |c| {
                            account::set_jid(c, id, &jid)?;
                            account::set_status(c, id, AccountStatus::Active, None, None)?;
                            account::set_active(c, owner, id)?;
                            account::audit(c, Some(owner), Some(id), "paired", "")
                        }
                    })
                    .await
                }
                .await;
                m.inner
                    .live
                    .pairing
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&owner);
                m.invalidate(owner);
                match res {
                    Ok(()) => {
                        info!("paired");
                        self.mode = Mode::Restore;
                        self.account.status = AccountStatus::Active;
                        self.set(LiveState::Connecting, None);
                        m.notify(Notice::Paired {
                            owner,
                            account: id,
                            phone,
                        });
                    }
                    Err(e) => {
                        warn!(error = %e, "could not register a paired account");
                        self.set(LiveState::PairFailed, Some(e.to_string()));
                        return false;
                    }
                }
            }
            WaEvent::PairFailed { reason, retry_after } => {
                if let Mode::Pair { repair_from, .. } = self.mode {
                    self.fail_pairing(repair_from, reason, retry_after).await;
                    return false;
                }
            }
            WaEvent::Connected => {
                if matches!(self.mode, Mode::Pair { .. }) {
                    // Connected to the server but not yet paired: keep waiting for the code.
                    return true;
                }
                // Only an outage the owner was told about earns a "connected again"; a
                // routine stream recycle comes and goes unannounced.
                let told = self.failures >= FAILURES_BEFORE_NOTICE;
                if let Some(since) = self.down_since.take().filter(|_| told) {
                    m.notify(Notice::Reconnected {
                        owner,
                        account: id,
                        phone,
                        after: since.elapsed(),
                    });
                }
                self.failures = 0;
                self.set(LiveState::Connected, None);
            }
            WaEvent::Disconnected { reason } => {
                if matches!(self.mode, Mode::Pair { .. }) {
                    return true;
                }
                // The backend reconnects by itself; whether this becomes news is decided by
                // failed attempts and the backend's outage bound, not by the drop itself.
                if self.down_since.is_none() {
                    self.down_since = Some(tokio::time::Instant::now());
                }
                self.set(LiveState::Disconnected, Some(reason));
            }
            WaEvent::ConnectAttemptFailed { reason } => {
                if matches!(self.mode, Mode::Pair { .. }) {
                    return true;
                }
                self.failures += 1;
                if self.down_since.is_none() {
                    self.down_since = Some(tokio::time::Instant::now());
                }
                if self.failures == FAILURES_BEFORE_NOTICE {
                    m.notify(Notice::ConnectFailures {
                        owner,
                        account: id,
                        phone,
                        count: self.failures,
                        reason: reason.clone(),
                    });
                }
                self.set(LiveState::Disconnected, Some(reason));
            }
            WaEvent::Outage { reason, down_for } => {
                if matches!(self.mode, Mode::Pair { .. }) {
                    return true;
                }
                if self.down_since.is_none() {
                    self.down_since = tokio::time::Instant::now().checked_sub(down_for);
                }
                // Told once per outage: the attempt counter doubles as "already told".
                if self.failures < FAILURES_BEFORE_NOTICE {
                    m.notify(Notice::ConnectFailures {
                        owner,
                        account: id,
                        phone,
                        count: self.failures.max(1),
                        reason: reason.clone(),
                    });
                    self.failures = FAILURES_BEFORE_NOTICE;
                }
                self.set(LiveState::Disconnected, Some(reason));
            }
            WaEvent::ConnectFailed { code, reason } => {
                warn!(code, %reason, "WhatsApp refused the connection for good");
                let reason = format!("WhatsApp refused the connection ({code}): {reason}");
                let _ = m.audit(None, Some(id), "connect_failed", reason.clone()).await;
                self.set(LiveState::Stopped, Some(reason.clone()));
                // No notice of its own exists yet; this one carries the reason to the owner.
                m.notify(Notice::ConnectFailures {
                    owner,
                    account: id,
                    phone,
                    count: self.failures.saturating_add(1),
                    reason,
                });
                self.detach().await;
                return false;
            }
            WaEvent::LoggedOut { reason } => {
                warn!(%reason, "logged out from the phone");
                let _ = m
                    .set_status(id, AccountStatus::LoggedOut, Some(reason.clone()), None)
                    .await;
                let _ = m.audit(None, Some(id), "logged_out", reason.clone()).await;
                self.set(LiveState::LoggedOut, Some(reason.clone()));
                m.notify(Notice::LoggedOut {
                    owner,
                    account: id,
                    phone,
                    reason,
                });
                self.detach().await;
                return false;
            }
            WaEvent::TemporaryBan { reason, until } => {
                warn!(%reason, until, "temporary ban");
                let _ = m
                    .set_status(
                        id,
                        AccountStatus::Banned,
                        Some(format!("temporary ban: {reason}")),
                        Some(until),
                    )
                    .await;
                self.set(LiveState::Banned, Some(reason.clone()));
                m.notify(Notice::Banned {
                    owner,
                    account: id,
                    phone,
                    reason,
                    until,
                });
                self.detach().await;
                return false;
            }
            WaEvent::StreamReplaced => {
                warn!("stream replaced by another client");
                self.set(LiveState::Stopped, Some("another client took over this session".into()));
                m.notify(Notice::StreamReplaced {
                    owner,
                    account: id,
                    phone,
                });
                self.detach().await;
                return false;
            }
            WaEvent::ClientOutdated => {
                warn!("WhatsApp says this client is outdated");
                self.set(LiveState::Stopped, Some("client outdated: update tgwa".into()));
                self.detach().await;
                return false;
            }
        }
        true
    }

    async fn fail_pairing(
        &mut self,
        repair_from: Option<AccountStatus>,
        reason: String,
        retry_after: Option<Duration>,
    ) {
        let m = self.manager.clone();
        info!(%reason, "pairing failed");
        self.status.send_replace(LiveStatus {
            state: LiveState::PairFailed,
            last_error: Some(reason.clone()),
            since: now(),
            retry_after,
        });
        let _ = self.session.cancel_pair_code().await;
        self.detach().await;
        m.abandon_pairing(&self.account, repair_from, &reason).await;
        m.notify(Notice::PairFailed {
            owner: self.account.telegram_id,
            phone: self.account.phone.clone(),
            reason,
            retry_after,
        });
    }

    /// Disconnects the session and removes it from the live map (keeping the files).
    async fn detach(&self) {
        let m = &self.manager;
        let live = m
            .inner
            .live
            .map
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.account.id);
        self.session.disconnect(m.inner.config.shutdown_timeout).await;
        // Dropping `live` releases the lock file; our own task handle is dropped, not aborted.
        if let Some(mut l) = live {
            l.task.take();
        }
    }
}
