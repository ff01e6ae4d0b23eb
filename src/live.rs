//! The live sessions: account ID to its running WhatsApp session, status and supervisor task,
//! the notice channel to the front-end, and the pairing guards. A plain registry: it knows
//! nothing of the master database, so the account registry (`manager`) and the session
//! supervisors (`supervisor`) both build on it and neither needs the other to read it.

use std::collections::{HashMap, HashSet, VecDeque};
use std::fs::File;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::account::Account;
use crate::db::now;
use crate::ids::{AccountId, PhoneNumber, TelegramId};
use crate::wa::WaSession;

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
    pub(crate) fn new(state: LiveState, last_error: Option<String>) -> Self {
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
    /// WhatsApp banned (`locked: false`) or locked the number for good; only an appeal
    /// inside WhatsApp can lift it.
    AccountBanned {
        owner: TelegramId,
        account: AccountId,
        phone: PhoneNumber,
        reason: String,
        locked: bool,
    },
    /// Another client took over the session.
    StreamReplaced {
        owner: TelegramId,
        account: AccountId,
        phone: PhoneNumber,
    },
    /// Logged in again at the owner's request («Sambungkan lagi»).
    Resumed {
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
    /// WhatsApp refused the connection for good (a terminal connect failure): the session
    /// stopped and is not retried.
    ConnectRefused {
        owner: TelegramId,
        account: AccountId,
        phone: PhoneNumber,
        reason: String,
    },
    /// Startup restore finished.
    Restored(RestoreSummary),
    // --- peer ---
    /// The account's proxy refused or is unreachable (told once per outage, to the owner and
    /// the operators). `proxy` is masked.
    ProxyFailed {
        owner: TelegramId,
        account: AccountId,
        phone: PhoneNumber,
        proxy: String,
        reason: String,
    },
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

/// A live account: its session, status and supervisor.
pub(crate) struct Live {
    /// The account row the session was started for (owner and pairing generation included):
    /// work bound to an account checks it still matches before acting.
    pub(crate) account: Account,
    pub(crate) session: Arc<dyn WaSession>,
    pub(crate) status: watch::Receiver<LiveStatus>,
    /// Tells the supervisor to disconnect and end.
    pub(crate) stop: watch::Sender<bool>,
    pub(crate) task: Option<JoinHandle<()>>,
    /// Held for the session's life: an advisory lock so two processes never run one account.
    pub(crate) _lock: File,
}

/// Code requests remembered per user and per (user, number), for the pairing cooldowns.
#[derive(Default)]
struct PairRequests {
    by_user: HashMap<TelegramId, VecDeque<Instant>>,
    /// Keyed by requester too: a stranger's requests for a number must not use up the
    /// allowance of the person whose phone it is.
    by_phone: HashMap<(TelegramId, String), VecDeque<Instant>>,
}

/// The pairing cooldowns: a minimum interval between two code requests and a cap per hour,
/// each per Telegram user and per (user, number).
#[derive(Debug, Clone, Copy)]
pub struct PairLimits {
    /// Minimum time between two requests of one user, or for one number.
    pub cooldown: Duration,
    /// Requests per user, and per number, in any hour.
    pub per_hour: usize,
}

/// Account ID to live session, the notice channel, and who is pairing.
pub(crate) struct LiveMap {
    pub(crate) map: Mutex<HashMap<AccountId, Live>>,
    notices_tx: mpsc::UnboundedSender<Notice>,
    notices_rx: Mutex<Option<mpsc::UnboundedReceiver<Notice>>>,
    /// Users with a pairing starting or running (one at a time each).
    pub(crate) pairing: Mutex<HashSet<TelegramId>>,
    /// Recent pairing-code requests, for the cooldowns.
    requests: Mutex<PairRequests>,
    /// Pairings cancelled because another user asked for their number, until their screen
    /// has told its user so.
    taken_over: Mutex<HashSet<AccountId>>,
}

impl Default for LiveMap {
    fn default() -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        Self {
            map: Mutex::new(HashMap::new()),
            notices_tx: tx,
            notices_rx: Mutex::new(Some(rx)),
            pairing: Mutex::new(HashSet::new()),
            requests: Mutex::new(PairRequests::default()),
            taken_over: Mutex::new(HashSet::new()),
        }
    }
}

impl LiveMap {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<AccountId, Live>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes the notice receiver (once; the front-end owns it).
    pub(crate) fn take_notices(&self) -> Option<mpsc::UnboundedReceiver<Notice>> {
        self.notices_rx.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    /// Queues a notice for the front-end.
    pub(crate) fn notify(&self, n: Notice) {
        let _ = self.notices_tx.send(n);
    }

    /// The live status of account `id`, if a session runs.
    pub(crate) fn status(&self, id: AccountId) -> Option<LiveStatus> {
        self.lock().get(&id).map(|l| l.status.borrow().clone())
    }

    /// A receiver of account `id`'s status changes.
    pub(crate) fn watch(&self, id: AccountId) -> Option<watch::Receiver<LiveStatus>> {
        self.lock().get(&id).map(|l| l.status.clone())
    }

    /// The session of account `id`, if one runs.
    pub(crate) fn session(&self, id: AccountId) -> Option<Arc<dyn WaSession>> {
        self.lock().get(&id).map(|l| l.session.clone())
    }

    /// The session of account `id` only while it still runs for that owner and pairing
    /// generation: a session started for anyone else is never handed out.
    pub(crate) fn session_for(&self, id: AccountId, owner: TelegramId, generation: i64) -> Option<Arc<dyn WaSession>> {
        self.lock()
            .get(&id)
            .filter(|l| l.account.telegram_id == owner && l.account.generation == generation)
            .map(|l| l.session.clone())
    }

    /// How many sessions are live.
    pub(crate) fn count(&self) -> usize {
        self.lock().len()
    }

    /// IDs of every live session.
    pub(crate) fn ids(&self) -> Vec<AccountId> {
        self.lock().keys().copied().collect()
    }

    /// Registers a started session; a previous one of the same account is stopped.
    pub(crate) fn insert(&self, id: AccountId, live: Live) {
        if let Some(mut old) = self.lock().insert(id, live) {
            let _ = old.stop.send(true);
            if let Some(t) = old.task.take() {
                t.abort();
            }
        }
    }

    /// Forgets account `id`'s session (its lock is released when the entry drops).
    pub(crate) fn remove(&self, id: AccountId) -> Option<Live> {
        self.lock().remove(&id)
    }

    /// Forgets account `id`'s session only if it is `session` (a supervisor ending must not
    /// take a newer session of the same account with it).
    pub(crate) fn remove_if_same(&self, id: AccountId, session: &Arc<dyn WaSession>) -> Option<Live> {
        let mut m = self.lock();
        let same = m
            .get(&id)
            .is_some_and(|l| std::ptr::addr_eq(Arc::as_ptr(&l.session), Arc::as_ptr(session)));
        if same {
            m.remove(&id)
        } else {
            None
        }
    }

    /// Disconnects and forgets account `id`'s session, if any, within `bound`; the supervisor
    /// gets two more seconds to end, then it is left to its stop signal.
    pub(crate) async fn stop(&self, id: AccountId, bound: Duration) {
        if let Some(mut live) = self.remove(id) {
            let _ = live.stop.send(true);
            live.session.disconnect(bound).await;
            if let Some(t) = live.task.take() {
                let _ = tokio::time::timeout(Duration::from_secs(2), t).await;
            }
        }
    }

    /// Disconnects every session, all within `bound` in total; `false` if some did not stop.
    pub(crate) async fn stop_all(&self, bound: Duration) -> bool {
        let per = bound.saturating_sub(Duration::from_millis(200));
        let all = futures::future::join_all(self.ids().into_iter().map(|id| async move {
            if let Some(mut live) = self.remove(id) {
                let _ = live.stop.send(true);
                live.session.disconnect(per).await;
                if let Some(t) = live.task.take() {
                    t.abort();
                }
            }
        }));
        tokio::time::timeout(bound, all).await.is_ok()
    }

    /// How long `owner` must wait before asking for a code for `phone`, without counting
    /// a request (zero: now). The «🔄 Kode baru» button asks this before it ends the code on
    /// screen, so a refused request leaves that code valid.
    pub(crate) fn pair_wait(&self, owner: TelegramId, phone: &PhoneNumber, limits: PairLimits) -> Duration {
        let now = Instant::now();
        let hour = Duration::from_secs(3600);
        let r = self.requests.lock().unwrap_or_else(|e| e.into_inner());
        let wait_of = |q: Option<&VecDeque<Instant>>| -> Duration {
            let recent: Vec<Instant> = q
                .map(|q| q.iter().copied().filter(|t| now.duration_since(*t) < hour).collect())
                .unwrap_or_default();
            let mut wait = Duration::ZERO;
            if let Some(last) = recent.last() {
                wait = wait.max(limits.cooldown.saturating_sub(now.duration_since(*last)));
            }
            if limits.per_hour > 0 && recent.len() >= limits.per_hour {
                if let Some(first) = recent.get(recent.len() - limits.per_hour) {
                    wait = wait.max(hour.saturating_sub(now.duration_since(*first)));
                }
            }
            wait
        };
        let key = (owner, phone.digits().to_string());
        wait_of(r.by_user.get(&owner)).max(wait_of(r.by_phone.get(&key)))
    }

    /// Records a pairing-code request by `owner` for `phone`, or says how long to wait when
    /// either is over its cooldown or hourly cap. Nothing is recorded when refused.
    pub(crate) fn pair_request(
        &self,
        owner: TelegramId,
        phone: &PhoneNumber,
        limits: PairLimits,
    ) -> Result<(), Duration> {
        let now = Instant::now();
        let hour = Duration::from_secs(3600);
        let mut r = self.requests.lock().unwrap_or_else(|e| e.into_inner());
        let wait_of = |q: &mut VecDeque<Instant>| -> Duration {
            while q.front().is_some_and(|t| now.duration_since(*t) >= hour) {
                q.pop_front();
            }
            let mut wait = Duration::ZERO;
            if let Some(last) = q.back() {
                wait = wait.max(limits.cooldown.saturating_sub(now.duration_since(*last)));
            }
            if limits.per_hour > 0 && q.len() >= limits.per_hour {
                if let Some(first) = q.get(q.len() - limits.per_hour) {
                    wait = wait.max(hour.saturating_sub(now.duration_since(*first)));
                }
            }
            wait
        };
        let u = wait_of(r.by_user.entry(owner).or_default());
        let key = (owner, phone.digits().to_string());
        let p = wait_of(r.by_phone.entry(key.clone()).or_default());
        let wait = u.max(p);
        if !wait.is_zero() {
            return Err(wait);
        }
        r.by_user.entry(owner).or_default().push_back(now);
        r.by_phone.entry(key).or_default().push_back(now);
        Ok(())
    }

    /// Remembers that pairing `id` is being cancelled for another user's request.
    pub(crate) fn mark_taken_over(&self, id: AccountId) {
        self.taken_over.lock().unwrap_or_else(|e| e.into_inner()).insert(id);
    }

    /// True (once) if pairing `id` was cancelled for another user's request.
    pub(crate) fn take_taken_over(&self, id: AccountId) -> bool {
        self.taken_over.lock().unwrap_or_else(|e| e.into_inner()).remove(&id)
    }

    /// A pairing completed: the user and the number start afresh (the cooldowns are there to
    /// stop codes that are never used, not people linking their numbers).
    pub(crate) fn pair_completed(&self, owner: TelegramId, phone: &PhoneNumber) {
        let mut r = self.requests.lock().unwrap_or_else(|e| e.into_inner());
        r.by_user.remove(&owner);
        r.by_phone.retain(|(_, p), _| p != phone.digits());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pair_cooldowns_per_user_and_per_number() {
        let live = LiveMap::default();
        let limits = PairLimits {
            cooldown: Duration::from_secs(30),
            per_hour: 3,
        };
        let u1 = TelegramId::new(1).unwrap();
        let u2 = TelegramId::new(2).unwrap();
        let p = PhoneNumber::from_digits("6281234560001").unwrap();
        let q = PhoneNumber::from_digits("6281234560002").unwrap();
        assert!(live.pair_request(u1, &p, limits).is_ok());
        // Same user, another number: the user's cooldown.
        let wait = live.pair_request(u1, &q, limits).unwrap_err();
        assert!(
            wait > Duration::from_secs(25) && wait <= Duration::from_secs(30),
            "{wait:?}"
        );
        // Another user, the same number: their own allowance, untouched by u1's request.
        assert!(live.pair_request(u2, &p, limits).is_ok());
        // A completed pairing clears both.
        live.pair_completed(u1, &p);
        assert!(live.pair_request(u1, &p, limits).is_ok());
    }

    #[test]
    fn pair_requests_are_capped_per_hour() {
        let live = LiveMap::default();
        let limits = PairLimits {
            cooldown: Duration::ZERO,
            per_hour: 2,
        };
        let u = TelegramId::new(1).unwrap();
        let p = PhoneNumber::from_digits("6281234560001").unwrap();
        assert!(live.pair_request(u, &p, limits).is_ok());
        assert!(live.pair_request(u, &p, limits).is_ok());
        let wait = live.pair_request(u, &p, limits).unwrap_err();
        assert!(wait > Duration::from_secs(3500), "{wait:?}");
    }

    #[test]
    fn asking_the_wait_counts_no_request() {
        let live = LiveMap::default();
        let limits = PairLimits {
            cooldown: Duration::from_secs(30),
            per_hour: 5,
        };
        let u = TelegramId::new(1).unwrap();
        let p = PhoneNumber::from_digits("6281234560001").unwrap();
        assert!(live.pair_wait(u, &p, limits).is_zero());
        assert!(live.pair_wait(u, &p, limits).is_zero(), "a question is not a request");
        assert!(live.pair_request(u, &p, limits).is_ok());
        let wait = live.pair_wait(u, &p, limits);
        assert!(wait > Duration::from_secs(25), "{wait:?}");
        assert!(live.pair_request(u, &p, limits).unwrap_err() >= wait - Duration::from_secs(1));
    }

    #[test]
    fn a_strangers_requests_do_not_use_up_the_owners_allowance() {
        let live = LiveMap::default();
        let limits = PairLimits {
            cooldown: Duration::from_secs(30),
            per_hour: 5,
        };
        let p = PhoneNumber::from_digits("6281234560001").unwrap();
        // Five strangers, or one stranger five times over an hour: only their own allowance.
        for t in 10..15 {
            assert!(live.pair_request(TelegramId::new(t).unwrap(), &p, limits).is_ok());
        }
        let owner = TelegramId::new(1).unwrap();
        assert!(
            live.pair_request(owner, &p, limits).is_ok(),
            "the owner was made to wait"
        );
        // Each requester keeps a cap of their own, whatever number they try.
        let stranger = TelegramId::new(10).unwrap();
        let q = PhoneNumber::from_digits("6281234560002").unwrap();
        assert!(live.pair_request(stranger, &q, limits).is_err());
    }
}
