//! Session supervisors: one task per account owns its WhatsApp session, turns the session's
//! events into account status (in memory and in the master database), and reports what needs
//! a person as a [`Notice`]. Pairing, startup restore and shutdown all go through the same
//! path: [`AccountManager::launch`]. The live registry itself is `live`; this module builds on
//! the account registry (`manager`), never the other way round.

use std::fs::File;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch, Semaphore};
use tracing::{info, info_span, warn, Instrument};

use crate::account::{self, Account, AccountError, AccountStatus};
use crate::db::now;
use crate::ids::{AccountId, PhoneNumber, TelegramId};
use crate::live::Live;
pub use crate::live::{LiveState, LiveStatus, Notice, PairLimits, RestoreSummary};
use crate::manager::{AccountManager, Ending};
use crate::wa::{EventRx, PairCode, Probe, SessionSpec, WaError, WaEvent, WaSession};

/// Why a pairing could not start.
#[derive(Debug, thiserror::Error)]
pub enum PairError {
    #[error(transparent)]
    Account(#[from] AccountError),
    #[error("WhatsApp: {0}")]
    Wa(#[from] WaError),
    #[error("the account is running in another process")]
    Locked,
    /// Too many code requests from this user or for this number lately.
    #[error("pairing codes were requested too often; wait {wait:?}")]
    Cooldown { wait: Duration },
}

/// Why a pairing failed after the phone linked: recorded as the reason, matched by the bot.
pub const REASON_WRONG_NUMBER: &str = "wrong_number";
/// The server reached its account ceiling while the pairing was waiting.
pub const REASON_SERVER_FULL: &str = "server_full";
// --- proxy2 ---
/// The start of a pairing failure's reason when the account's proxy failed; the rest is
/// the masked proxy and what went wrong.
pub const REASON_PROXY: &str = "proxy: ";
/// The live status's reason when another client took the session over.
pub const REASON_REPLACED: &str = "opened on another device";

/// The digits of a device JID's user part (`62812...:3@s.whatsapp.net` gives `62812...`).
pub fn jid_digits(jid: &str) -> &str {
    let user = jid.split('@').next().unwrap_or("");
    let user = user.split(':').next().unwrap_or("");
    user.split('.').next().unwrap_or("")
}

/// How a session is being started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Restoring a paired account.
    Restore,
    /// Restoring at the owner's request (after another client took the session or the
    /// operator disconnected it): the owner pressed a button and waits to hear it worked.
    Reconnect,
    /// A new pairing; `repair_from` when the row existed before (logged out / unpaired).
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
        self.inner.live.take_notices()
    }

    fn notify(&self, n: Notice) {
        self.inner.live.notify(n);
    }

    /// The live status of the owner's account (`None` when no session runs).
    pub async fn live_status(&self, owner: TelegramId, id: AccountId) -> Result<Option<LiveStatus>, AccountError> {
        self.account_of(owner, id).await?;
        Ok(self.live_status_unchecked(id))
    }

    /// The live status by ID, for the operator views and the restore.
    pub fn live_status_unchecked(&self, id: AccountId) -> Option<LiveStatus> {
        self.inner.live.status(id)
    }

    /// The live session of account `id` while it still runs for `owner` and pairing
    /// `generation` (for the job engine, which re-checks before every item).
    pub(crate) fn live_session_for(
        &self,
        id: AccountId,
        owner: TelegramId,
        generation: i64,
    ) -> Option<Arc<dyn WaSession>> {
        self.inner.live.session_for(id, owner, generation)
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
        Ok(self.inner.live.watch(id))
    }

    /// The owner's live session, for WhatsApp operations. `NotLive` when it is not connected.
    pub async fn session_of(&self, owner: TelegramId, id: AccountId) -> Result<Arc<dyn WaSession>, AccountError> {
        let acc = self.account_of(owner, id).await?;
        if acc.status != AccountStatus::Active {
            return Err(AccountError::WrongState(acc.status));
        }
        self.inner
            .live
            .session_for(id, owner, acc.generation)
            .ok_or(AccountError::NotLive)
    }

    /// How many sessions are live.
    pub fn live_count(&self) -> usize {
        self.inner.live.count()
    }

    /// The pairing cooldowns in force.
    fn pair_limits(&self) -> PairLimits {
        PairLimits {
            cooldown: self.inner.config.pair_cooldown,
            per_hour: self.inner.config.pair_max_per_hour,
        }
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
        crate::metrics::pair_request();
        {
            let mut p = self.inner.live.pairing.lock().unwrap_or_else(|e| e.into_inner());
            if !p.insert(owner) {
                return Err(AccountError::PairingInProgress.into());
            }
        }
        let res = self.begin_pairing_inner(owner, phone, qr).await;
        crate::metrics::pair_refused(if let Err(PairError::Wa(e)) = &res {
            Some(e)
        } else {
            None
        });
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
        // Someone else's fresh pairing of this number holds nothing yet: it must not block the
        // person whose phone it is. The newer request takes its place (after its own
        // cooldowns), and the other requester is told.
        let pending_other = previous
            .as_ref()
            .filter(|a| a.telegram_id != owner && a.status == AccountStatus::Pairing && a.jid.is_none())
            .cloned();
        let repair_of = previous.filter(|a| {
            a.telegram_id == owner && matches!(a.status, AccountStatus::LoggedOut | AccountStatus::Unpaired)
        });
        if let Some(other) = &pending_other {
            if let Err(wait) = self.inner.live.pair_request(owner, &phone, self.pair_limits()) {
                return Err(PairError::Cooldown { wait });
            }
            self.inner.live.mark_taken_over(other.id);
            if let Err(e) = self.cancel_pairing(other.telegram_id, other.id).await {
                warn!(account_id = %other.id, error = %e, "could not cancel a pairing taken over");
            }
        }
        let acc = self.add(owner, phone.clone(), AccountStatus::Pairing, None).await?;
        let repair_from = repair_of.as_ref().map(|a| a.status);
        // Only requests that passed every other check count against the cooldowns (a take-over
        // was counted above).
        if pending_other.is_none() {
            if let Err(wait) = self.inner.live.pair_request(owner, &phone, self.pair_limits()) {
                self.abandon_pairing(&acc, repair_from, "pairing cooldown").await;
                return Err(PairError::Cooldown { wait });
            }
        }
        if let Some(old) = &repair_of {
            // A new generation: whatever was bound to the old one ends, and its stale session
            // file (which would log the old device back in) is put aside.
            self.end_account(old, Ending::RePaired).await;
            let layout = self.inner.layout.clone();
            let file = old.db_path.clone();
            crate::db::blocking(move || Ok(layout.move_to_trash(&[file])?))
                .await
                .map_err(AccountError::from)?;
        }
        let deadline = match self.inner.config.wa_backend {
            crate::config::WaBackendKind::Sim => self.inner.config.sim_code_ttl + Duration::from_secs(5),
            _ => Duration::from_secs(185),
        };
        let mode = Mode::Pair { repair_from, deadline };
        let session = match self.launch(acc.clone(), mode).await {
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
                self.abandon_pairing(&acc, repair_from, &e.to_string()).await;
                Err(e.into())
            }
        }
    }

    /// How long `owner` must wait before a new code for `phone` may be asked (zero: now).
    pub fn pair_cooldown_left(&self, owner: TelegramId, phone: &PhoneNumber) -> Duration {
        self.inner.live.pair_wait(owner, phone, self.pair_limits())
    }

    /// True once for a pairing that was cancelled because another user asked for its number.
    pub fn pairing_taken_over(&self, id: AccountId) -> bool {
        self.inner.live.take_taken_over(id)
    }

    /// Cancels the owner's pairing of account `id` (the Cancel button).
    pub async fn cancel_pairing(&self, owner: TelegramId, id: AccountId) -> Result<(), AccountError> {
        let acc = self.account_of(owner, id).await?;
        if acc.status != AccountStatus::Pairing {
            return Err(AccountError::WrongState(acc.status));
        }
        if let Some(s) = self.inner.live.session(id) {
            let _ = s.cancel_pair_code().await;
        }
        let repair_from = acc.jid.as_ref().map(|_| AccountStatus::LoggedOut);
        self.abandon_pairing(&acc, repair_from, "cancelled by owner").await;
        Ok(())
    }

    /// Takes back a pairing that did not finish: a new row is deleted with the files it made
    /// (see [`AccountManager::discard_pairing`]); a re-pair goes back to its previous status.
    async fn abandon_pairing(&self, acc: &Account, repair_from: Option<AccountStatus>, reason: &str) {
        self.inner
            .live
            .pairing
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&acc.telegram_id);
        let res = match repair_from {
            Some(prev) => {
                self.end_account(acc, Ending::PairingAbandoned).await;
                self.stop_session(acc.id).await;
                self.set_status(acc.id, prev, Some(reason.to_string()), None).await
            }
            None => self.discard_pairing(acc, reason).await,
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
            Mode::Restore | Mode::Reconnect => LiveState::Connecting,
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
        self.inner.live.insert(
            acc.id,
            Live {
                account: acc,
                session: session.clone(),
                status: status_rx,
                stop: stop_tx,
                task: Some(task),
                _lock: lock,
            },
        );
        Ok(session)
    }

    /// Takes the per-number advisory lock (`flock`) so two processes never run one account.
    async fn lock_account(&self, phone: &PhoneNumber) -> Result<File, PairError> {
        let dir = self.inner.layout.lock_dir();
        let path = dir.join(format!("{}.lock", phone.digits()));
        crate::db::blocking(move || {
            crate::layout::create_private_dir(&dir)?;
            crate::layout::refuse_symlink(&path)?;
            crate::db::create_private_file(&path)?;
            let f = std::fs::OpenOptions::new().read(true).write(true).open(&path)?;
            // `try_lock` is `flock(LOCK_EX | LOCK_NB)` on Unix: the same lock as before.
            match f.try_lock() {
                Ok(()) => Ok(Some(f)),
                Err(std::fs::TryLockError::WouldBlock) => Ok(None),
                Err(std::fs::TryLockError::Error(e)) => Err(e.into()),
            }
        })
        .await
        .map_err(AccountError::from)?
        .ok_or(PairError::Locked)
    }

    /// Logs the owner's active account in again when its session has stopped (opened on
    /// another device): the owner's choice, never tgwa's, since the other client is knocked
    /// out in turn. Nothing happens when a session already runs.
    pub async fn reconnect(&self, owner: TelegramId, id: AccountId) -> Result<(), PairError> {
        let acc = self.account_of(owner, id).await?;
        if acc.status != AccountStatus::Active {
            return Err(AccountError::WrongState(acc.status).into());
        }
        let running = self
            .inner
            .live
            .status(id)
            .is_some_and(|s| s.state != LiveState::Stopped);
        if running {
            return Ok(());
        }
        self.stop_session(id).await;
        self.set_status(id, AccountStatus::Active, None, None).await?;
        self.audit(Some(owner), Some(id), "reconnect", String::new()).await?;
        self.launch(acc, Mode::Reconnect).await?;
        Ok(())
    }

    // --- proxy2 ---
    /// Connects account `id` again at once because its proxy changed: a running session of
    /// an active account stops and a new one starts on the same files, through the proxy
    /// configured now (a client's transport is fixed when it starts). A session that is not
    /// running (a pairing, a stopped or logged-out account) is left alone. Whether it was
    /// restarted is returned.
    pub async fn restart_for_proxy(&self, id: AccountId) -> Result<bool, PairError> {
        let Some(acc) = self.get(id).await? else {
            return Ok(false);
        };
        let running = self.inner.live.status(id).is_some_and(|s| {
            matches!(
                s.state,
                LiveState::Connecting | LiveState::Connected | LiveState::Disconnected
            )
        });
        if acc.status != AccountStatus::Active || !running {
            return Ok(false);
        }
        self.stop_session(id).await;
        self.launch(acc, Mode::Restore).await?;
        Ok(true)
    }

    /// Disconnects and forgets the account's live session, if any.
    pub(crate) async fn stop_session(&self, id: AccountId) {
        self.inner.live.stop(id, self.inner.config.shutdown_timeout).await;
    }

    /// Unlinks the owner's account from the phone: its work ends first, then the device is
    /// logged out, the session file moves to trash and the row is marked `logged_out` (its bot
    /// data stays until it is removed).
    pub async fn logout(&self, owner: TelegramId, id: AccountId) -> Result<(), AccountError> {
        let acc = self.account_of(owner, id).await?;
        self.end_account(&acc, Ending::LoggedOut).await;
        if let Some(s) = self.inner.live.session(id) {
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
                warn!(account_id = %acc.id, error = %crate::ids::mask_digits_in(&e.to_string()), "session file is not usable");
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
            warn!(account_id = %id, error = %crate::ids::mask_digits_in(&e.to_string()), "could not start session");
            return LiveState::Stopped;
        }
        let rx = self.inner.live.watch(id);
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
        if !self.inner.live.stop_all(bound).await {
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
            Mode::Restore | Mode::Reconnect => None,
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
                let Mode::Pair { repair_from, .. } = self.mode else {
                    return true;
                };
                // The phone that linked must be the number the user asked for: otherwise anyone
                // could register a victim's number here by scanning with their own phone.
                if jid_digits(&jid) != phone.digits() {
                    let linked = PhoneNumber::from_digits(jid_digits(&jid))
                        .map(|p| p.masked())
                        .unwrap_or_default();
                    warn!(%linked, "a different phone linked; unlinking it");
                    if let Err(e) = self.session.logout().await {
                        warn!(error = %e, "could not unlink the wrong device");
                    }
                    self.fail_pairing(repair_from, REASON_WRONG_NUMBER.into(), None).await;
                    return false;
                }
                let limits = m.limits();
                let res = m
                    .with_master({
                        let jid = jid.clone();
                        move |c| account::complete_pairing(c, id, owner, &jid, limits)
                    })
                    .await;
                match res {
                    Ok(()) => {
                        info!("paired");
                        m.inner
                            .live
                            .pairing
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .remove(&owner);
                        m.inner.live.pair_completed(owner, &phone);
                        m.invalidate(owner);
                        crate::metrics::pair_outcome("paired");
                        if repair_from.is_none() {
                            self.note_linked().await;
                        }
                        self.mode = Mode::Restore;
                        self.account.status = AccountStatus::Active;
                        self.account.jid = Some(jid);
                        self.set(LiveState::Connecting, None);
                        m.notify(Notice::Paired {
                            owner,
                            account: id,
                            phone,
                        });
                    }
                    Err(e) => {
                        warn!(error = %e, "could not register a paired account; unlinking it");
                        if let Err(e) = self.session.logout().await {
                            warn!(error = %e, "could not unlink the device");
                        }
                        let reason = match e {
                            AccountError::ServerFull { .. } => REASON_SERVER_FULL.to_string(),
                            other => other.to_string(),
                        };
                        self.fail_pairing(repair_from, reason, None).await;
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
                if matches!(self.mode, Mode::Reconnect) {
                    // The owner asked for this login; it is news once, then a plain session.
                    self.mode = Mode::Restore;
                    m.notify(Notice::Resumed {
                        owner,
                        account: id,
                        phone: phone.clone(),
                    });
                }
                // Only an outage the owner was told about earns a "connected again"; a
                // routine stream recycle comes and goes unannounced.
                let told = self.failures >= FAILURES_BEFORE_NOTICE;
                if self.down_since.is_some() {
                    crate::metrics::reconnect();
                }
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
            // --- peer ---
            WaEvent::ProxyFailed { proxy, reason } => {
                // --- proxy2 --- a pairing cannot finish without a connection: it fails now,
                // as a proxy problem, rather than at its deadline.
                if let Mode::Pair { repair_from, .. } = self.mode {
                    let why = format!("{REASON_PROXY}proxy {proxy}: {reason}");
                    self.fail_pairing(repair_from, why, None).await;
                    return false;
                }
                if self.down_since.is_none() {
                    self.down_since = Some(tokio::time::Instant::now());
                }
                // Told once per outage, as its own notice: the generic "failed to connect"
                // notice (and the outage one) would read as WhatsApp being down.
                if self.failures < FAILURES_BEFORE_NOTICE {
                    warn!(%proxy, %reason, "the account's proxy failed");
                    let _ = m
                        .audit(None, Some(id), "proxy_failed", format!("{proxy}: {reason}"))
                        .await;
                    m.notify(Notice::ProxyFailed {
                        owner,
                        account: id,
                        phone,
                        proxy: proxy.clone(),
                        reason: reason.clone(),
                    });
                    self.failures = FAILURES_BEFORE_NOTICE;
                }
                self.set(LiveState::Disconnected, Some(format!("proxy {proxy}: {reason}")));
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
                m.notify(Notice::ConnectRefused {
                    owner,
                    account: id,
                    phone,
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
            WaEvent::AccountBanned { reason, locked } => {
                self.banned_for_good(reason, locked).await;
                return false;
            }
            WaEvent::StreamReplaced => {
                warn!("stream replaced by another client");
                // Not fought for: logging in again would knock the other client out, which
                // knocks us out, and WhatsApp flags a number that flips between devices.
                let why = REASON_REPLACED.to_string();
                // Kept on the row, so the account's page still says so once this session is gone.
                let _ = m.set_status(id, AccountStatus::Active, Some(why.clone()), None).await;
                let _ = m.audit(None, Some(id), "stream_replaced", why.clone()).await;
                self.set(LiveState::Stopped, Some(why));
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
            ev @ WaEvent::Message { .. } => {
                crate::metrics::message_received();
                // Who wrote to the account directly: the people a reach-out timelock still
                // lets it write to (a group message is not a chat with the account).
                if let WaEvent::Message { chat, sender, .. } = &ev {
                    if chat == sender {
                        self.remember_contact(sender.clone()).await;
                    }
                }
                // Stored (when the owner wants it) before the next event is read.
                m.incoming(&self.account, ev).await;
            }
        }
        true
    }

    /// WhatsApp banned or locked the number for good: the row becomes `banned` (no end
    /// time), its work stops with every item accounted for, and the owner hears it once.
    async fn banned_for_good(&mut self, reason: String, locked: bool) {
        let m = self.manager.clone();
        let (owner, id, phone) = (self.account.telegram_id, self.account.id, self.account.phone.clone());
        warn!(%reason, locked, "banned by WhatsApp");
        let _ = m
            .set_status(id, AccountStatus::Banned, Some(reason.clone()), None)
            .await;
        let _ = m.audit(None, Some(id), "banned", reason.clone()).await;
        // Jobs end before the live state says "banned": a worker that saw the state first
        // would pause its job and tell the owner a second time.
        m.end_account(&self.account, Ending::Banned).await;
        self.account.status = AccountStatus::Banned;
        self.set(LiveState::Banned, Some(reason.clone()));
        m.notify(Notice::AccountBanned {
            owner,
            account: id,
            phone,
            reason,
            locked,
        });
        self.detach().await;
    }

    /// Notes in the bot data that tgwa linked this number now: the warm-up's day one.
    async fn note_linked(&self) {
        let path = self.account.bot_data_db_path.clone();
        let res = self
            .manager
            .pools()
            .with(path, crate::db::Schema::Account, |c| {
                crate::contacts::note_linked(c, now())
            })
            .await;
        if let Err(e) = res {
            warn!(error = %e, "could not note when the number was linked");
        }
    }

    /// Notes that `sender` wrote to this account, in its bot data.
    async fn remember_contact(&self, sender: String) {
        let Ok(p) = PhoneNumber::from_digits(&sender) else {
            return;
        };
        let path = self.account.bot_data_db_path.clone();
        let res = self
            .manager
            .pools()
            .with(path, crate::db::Schema::Account, move |c| {
                crate::contacts::note_contact(c, &p)?;
                Ok(())
            })
            .await;
        if let Err(e) = res {
            warn!(error = %e, "could not note who wrote to the account");
        }
    }

    async fn fail_pairing(
        &mut self,
        repair_from: Option<AccountStatus>,
        reason: String,
        retry_after: Option<Duration>,
    ) {
        let m = self.manager.clone();
        info!(%reason, "pairing failed");
        crate::metrics::pair_outcome(match (retry_after, reason.as_str()) {
            (Some(_), _) => "rate_limited",
            (None, "code expired") => "expired",
            _ => "failed",
        });
        let _ = self.session.cancel_pair_code().await;
        self.detach().await;
        m.abandon_pairing(&self.account, repair_from, &reason).await;
        // Published only now: whoever hears "nothing was registered" finds nothing registered.
        self.status.send_replace(LiveStatus {
            state: LiveState::PairFailed,
            last_error: Some(reason.clone()),
            since: now(),
            retry_after,
        });
        m.notify(Notice::PairFailed {
            owner: self.account.telegram_id,
            phone: self.account.phone.clone(),
            reason,
            retry_after,
        });
    }

    /// Disconnects the session and removes it from the live map (keeping the files). Only
    /// this supervisor's own entry is removed, never a newer session of the same account.
    async fn detach(&self) {
        let m = &self.manager;
        let live = m.inner.live.remove_if_same(self.account.id, &self.session);
        self.session.disconnect(m.inner.config.shutdown_timeout).await;
        // Dropping `live` releases the lock file; our own task handle is dropped, not aborted.
        if let Some(mut l) = live {
            l.task.take();
        }
    }
}
