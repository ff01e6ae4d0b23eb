//! `AccountManager`: the registry of accounts and, per account, its live WhatsApp session.
//! A cheap `Clone` handle; every user-facing method takes the caller's Telegram ID and refuses
//! accounts that caller does not own.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::account::{self, Account, AccountError, AccountStatus, Limits, NewAccount, TelegramUser};
use crate::config::Config;
use crate::db::{self, Pool, PoolCache, Schema};
use crate::ids::{AccountId, PhoneNumber, TelegramId};
use crate::layout::Layout;
use crate::live::LiveMap;
use crate::wa::{Probe, WaBackend};

/// Why an account's handles must end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// Removed by its owner, or purged after the grace period.
    Removed,
    /// Logged out by its owner from the bot.
    LoggedOut,
    /// Its owner started pairing it again (a new generation).
    RePaired,
    /// A pairing that never completed: cancelled, failed, expired or interrupted.
    PairingAbandoned,
    /// WhatsApp banned or locked the number for good: its work stops, every item accounted
    /// for.
    Banned,
}

impl Ending {
    /// A short name for logs and the reasons recorded on cancelled work.
    pub fn as_str(self) -> &'static str {
        match self {
            Ending::Removed => "account removed",
            Ending::LoggedOut => "account logged out",
            Ending::RePaired => "account paired again",
            Ending::PairingAbandoned => "pairing abandoned",
            Ending::Banned => "account banned by WhatsApp",
        }
    }
}

/// Something that keeps handles bound to an account (a worker, a message to edit, a prompt)
/// and must drop them when the account ends. The manager calls every hook *before* it stops
/// the session and moves files, so nothing acts for an account that is going away.
#[async_trait::async_trait]
pub trait AccountHook: Send + Sync {
    /// Ends everything bound to `acc`; returns when that is done.
    async fn account_ending(&self, acc: &Account, why: Ending);
}

/// Receives the messages that arrive at accounts (the inbox). The supervisor awaits it for
/// each message in turn, so a message is stored before the next event is handled.
#[async_trait::async_trait]
pub trait MessageSink: Send + Sync {
    /// One incoming [`crate::wa::WaEvent::Message`] for `acc`.
    async fn incoming(&self, acc: &Account, ev: crate::wa::WaEvent);
}

/// What a request needs to know about its caller: resolved per update, never global.
#[derive(Debug, Clone)]
pub struct UserContext {
    pub user: TelegramUser,
    /// The user's accounts (not removed).
    pub accounts: Vec<Account>,
    /// The active account, if the user has one and it still exists.
    pub active: Option<Account>,
}

/// How many account pools running job workers may hold open (see
/// [`crate::fds::held_pool_budget`]), from the current descriptor limit; the real backend's
/// sessions are counted for every account the server may hold.
fn held_pool_budget(config: &Config) -> usize {
    let Ok((soft, _)) = crate::fds::nofile_limits() else {
        return 0;
    };
    let sessions = match config.wa_backend {
        crate::config::WaBackendKind::Sim => 0,
        _ => config.max_accounts as u64,
    };
    crate::fds::held_pool_budget(soft, sessions, config.pool_cache_size as u64)
}

/// The handle. Clone it freely.
#[derive(Clone)]
pub struct AccountManager {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    /// Loaded once at startup.
    pub(crate) config: Config,
    /// Paths under the data directory.
    pub(crate) layout: Layout,
    /// The master database.
    pub(crate) master: Pool,
    /// Pools of the accounts' bot_data files, bounded.
    pub(crate) pools: PoolCache,
    /// Real WhatsApp or the simulator.
    pub(crate) backend: Arc<dyn WaBackend>,
    /// Cached user contexts and when each was last used (the seed's session cache).
    pub(crate) contexts: Mutex<HashMap<TelegramId, (UserContext, Instant)>>,
    /// Live sessions (see `live` and `supervisor`).
    pub(crate) live: LiveMap,
    /// Told when an account ends (see [`AccountHook`]).
    hooks: std::sync::RwLock<Vec<Arc<dyn AccountHook>>>,
    /// Where incoming messages go (see [`MessageSink`]); none: they are only counted.
    sink: std::sync::RwLock<Option<Arc<dyn MessageSink>>>,
    /// Paces outgoing Telegram calls (`TGWA_TELEGRAM_THROTTLE`); `None` when off.
    telegram_limiter: Option<Arc<crate::telegram::limiter::Limiter>>,
    // --- bot17 ---
    /// The current keyboard of each message the bot sent or edited, so buttons of a screen
    /// that was edited away do nothing.
    screens: crate::telegram::screens::Screens,
}

impl AccountManager {
    /// Opens the master database (migrating it) and the data directory.
    pub async fn open(config: Config, backend: Arc<dyn WaBackend>) -> Result<Self, AccountError> {
        let layout = Layout::new(&config.data_dir);
        layout.ensure_root()?;
        let master_path = config.master_db.clone();
        let master = db::blocking(move || db::open_pool(&master_path, Schema::Master, 4, None)).await?;
        let pools = PoolCache::with_holds(config.pool_cache_size, held_pool_budget(&config));
        let telegram_limiter = config
            .telegram_throttle
            .then(|| crate::telegram::limiter::Limiter::new(Default::default()));
        Ok(Self {
            inner: Arc::new(Inner {
                telegram_limiter,
                live: LiveMap::default(),
                hooks: std::sync::RwLock::new(Vec::new()),
                sink: std::sync::RwLock::new(None),
                config,
                layout,
                master,
                pools,
                backend,
                contexts: Mutex::new(HashMap::new()),
                screens: Default::default(),
            }),
        })
    }

    /// The configuration the manager was opened with.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The limiter every outgoing Telegram call waits on; `None` with the throttle off.
    pub fn telegram_limiter(&self) -> Option<&Arc<crate::telegram::limiter::Limiter>> {
        self.inner.telegram_limiter.as_ref()
    }

    // --- bot17 ---
    /// The current keyboards of the bot's messages (see [`crate::telegram::screens`]).
    pub fn screens(&self) -> &crate::telegram::screens::Screens {
        &self.inner.screens
    }

    /// The data directory layout.
    pub fn layout(&self) -> &Layout {
        &self.inner.layout
    }

    /// The master database pool (for the scan and the CLI).
    pub fn master(&self) -> &Pool {
        &self.inner.master
    }

    /// The bounded cache of per-account pools.
    pub fn pools(&self) -> &PoolCache {
        &self.inner.pools
    }

    /// The WhatsApp backend.
    pub fn backend(&self) -> &Arc<dyn WaBackend> {
        &self.inner.backend
    }

    pub(crate) fn limits(&self) -> Limits {
        Limits {
            max_accounts: self.inner.config.max_accounts,
            max_per_user: self.inner.config.max_accounts_per_user,
        }
    }

    /// Runs `f` on a master connection off the runtime.
    pub(crate) async fn with_master<F, R>(&self, f: F) -> Result<R, AccountError>
    where
        F: FnOnce(&mut rusqlite::Connection) -> Result<R, AccountError> + Send + 'static,
        R: Send + 'static,
    {
        let pool = self.inner.master.clone();
        db::blocking(move || {
            let mut conn = pool.get()?;
            Ok(f(&mut conn))
        })
        .await?
    }

    // ----- operator-level lookups (no owner: the CLI, the scan, startup) -----

    /// Every account that is not removed.
    pub async fn load_all(&self) -> Result<Vec<Account>, AccountError> {
        let all = self.with_master(|c| account::all(c)).await?;
        Ok(all.into_iter().filter(|a| a.status != AccountStatus::Removed).collect())
    }

    /// Every row, removed ones included (for `tgwa accounts`).
    pub async fn all_rows(&self) -> Result<Vec<Account>, AccountError> {
        self.with_master(|c| account::all(c)).await
    }

    /// One account by ID, whoever owns it. Operator use only; the bot uses [`Self::account_of`].
    pub async fn get(&self, id: AccountId) -> Result<Option<Account>, AccountError> {
        self.with_master(move |c| account::get(c, id)).await
    }

    /// One account by phone number, whoever owns it.
    pub async fn by_phone(&self, phone: &PhoneNumber) -> Result<Option<Account>, AccountError> {
        let phone = phone.clone();
        self.with_master(move |c| account::by_phone(c, &phone)).await
    }

    /// Changes an account's status with a reason (the supervisor and the scan use this).
    pub async fn set_status(
        &self,
        id: AccountId,
        status: AccountStatus,
        reason: Option<String>,
        banned_until: Option<i64>,
    ) -> Result<(), AccountError> {
        let owner = self
            .with_master(move |c| {
                account::set_status(c, id, status, reason.as_deref(), banned_until)?;
                if status == AccountStatus::Removed {
                    account::clear_active(c, id)?;
                }
                Ok(account::get(c, id)?.map(|a| a.telegram_id))
            })
            .await?;
        if let Some(tid) = owner {
            self.invalidate(tid);
        }
        Ok(())
    }

    // ----- owner-checked API (the bot) -----

    /// All of a user's accounts that are not removed.
    pub async fn accounts_of(&self, owner: TelegramId) -> Result<Vec<Account>, AccountError> {
        self.with_master(move |c| account::of_user(c, owner)).await
    }

    /// The account `id` if `owner` owns it and it is not removed; `NotOwner` otherwise (the
    /// caller logs that and shows a generic refusal).
    pub async fn account_of(&self, owner: TelegramId, id: AccountId) -> Result<Account, AccountError> {
        let acc = self.get(id).await?.ok_or(AccountError::NotFound)?;
        if acc.telegram_id != owner {
            return Err(AccountError::NotOwner);
        }
        if acc.status == AccountStatus::Removed {
            return Err(AccountError::NotFound);
        }
        Ok(acc)
    }

    /// Registers an account: creates `{tid}/` (0700), the bot_data file (0600, migrated) and
    /// an empty session file (0600), and the row. Enforces the limits and ownership. On any
    /// failure after the row exists, the row is taken back, so nothing is half-registered.
    pub async fn add(
        &self,
        owner: TelegramId,
        phone: PhoneNumber,
        status: AccountStatus,
        jid: Option<String>,
    ) -> Result<Account, AccountError> {
        let layout = self.inner.layout.clone();
        let new = NewAccount {
            telegram_id: owner,
            db_path: layout.session_file(owner, &phone),
            bot_data_db_path: layout.bot_data_file(owner, &phone),
            phone,
            jid,
            status,
        };
        let limits = self.limits();
        let pools = self.inner.pools.clone();
        let acc = self
            .with_master(move |c| {
                let acc = account::insert(c, &new, limits)?;
                let files = (|| -> Result<(), AccountError> {
                    layout.ensure_user_dir(owner)?;
                    // An account file replaced by a link is never written through.
                    crate::layout::refuse_symlink(&acc.db_path)?;
                    crate::layout::refuse_symlink(&acc.bot_data_db_path)?;
                    db::create_empty_database(&acc.db_path)?;
                    // A bot data file the scan found is left as it is: the pool cache migrates
                    // it on first use. A new one is created and migrated now.
                    if !acc.bot_data_db_path.exists() {
                        pools.get_blocking(&acc.bot_data_db_path, Schema::Account)?;
                    }
                    Ok(())
                })();
                if let Err(e) = files {
                    // Take the row back rather than leave an account without its files.
                    let _ = c.execute("DELETE FROM whatsapp_accounts WHERE id = ?1", [acc.id.get()]);
                    return Err(e);
                }
                account::audit(c, Some(owner), Some(acc.id), "add", status.as_str())?;
                Ok(acc)
            })
            .await?;
        self.invalidate(owner);
        Ok(acc)
    }

    /// Makes `id` the owner's active account.
    pub async fn set_active(&self, owner: TelegramId, id: AccountId) -> Result<(), AccountError> {
        self.with_master(move |c| {
            account::set_active(c, owner, id)?;
            account::audit(c, Some(owner), Some(id), "switch", "")
        })
        .await?;
        self.invalidate(owner);
        Ok(())
    }

    // --- members ---
    /// Sets (or clears, with `None`) the nickname of the owner's account.
    pub async fn set_nickname(
        &self,
        owner: TelegramId,
        id: AccountId,
        nickname: Option<account::Nickname>,
    ) -> Result<(), AccountError> {
        self.with_master(move |c| {
            account::set_nickname(c, owner, id, nickname.as_ref())?;
            let what = if nickname.is_some() {
                "nickname_set"
            } else {
                "nickname_cleared"
            };
            account::audit(c, Some(owner), Some(id), what, "")
        })
        .await?;
        self.invalidate(owner);
        Ok(())
    }

    /// Removes the owner's account: ends its work, stops its session, marks the row `removed`
    /// (history: the ID is never reused) and moves its files into `.trash/<timestamp>/`.
    /// Never unlinks.
    pub async fn remove(&self, owner: TelegramId, id: AccountId) -> Result<Vec<PathBuf>, AccountError> {
        let acc = self.account_of(owner, id).await?;
        self.retire(&acc, "removed by owner").await
    }

    /// Registers a hook told when an account ends.
    pub fn add_hook(&self, hook: Arc<dyn AccountHook>) {
        self.inner.hooks.write().unwrap_or_else(|e| e.into_inner()).push(hook);
    }

    /// Sets where incoming messages go.
    pub fn set_message_sink(&self, sink: Arc<dyn MessageSink>) {
        *self.inner.sink.write().unwrap_or_else(|e| e.into_inner()) = Some(sink);
    }

    /// Hands an incoming message of `acc` to the sink, if one is set, and waits for it.
    pub(crate) async fn incoming(&self, acc: &Account, ev: crate::wa::WaEvent) {
        let sink = self.inner.sink.read().unwrap_or_else(|e| e.into_inner()).clone();
        if let Some(sink) = sink {
            sink.incoming(acc, ev).await;
        }
    }

    /// Tells every hook that `acc` is ending and waits for them.
    pub(crate) async fn end_account(&self, acc: &Account, why: Ending) {
        let hooks: Vec<Arc<dyn AccountHook>> = self.inner.hooks.read().unwrap_or_else(|e| e.into_inner()).clone();
        for h in hooks {
            h.account_ending(acc, why).await;
        }
    }

    /// Ends the account's work, stops its session, marks the row removed (or, for a pairing
    /// that never completed, deletes it and its empty files) and trashes files.
    pub(crate) async fn retire(&self, acc: &Account, reason: &str) -> Result<Vec<PathBuf>, AccountError> {
        if acc.status == AccountStatus::Pairing && acc.jid.is_none() {
            self.discard_pairing(acc, reason).await?;
            return Ok(Vec::new());
        }
        self.end_account(acc, Ending::Removed).await;
        self.inner.live.stop(acc.id, self.inner.config.shutdown_timeout).await;
        let files = vec![acc.db_path.clone(), acc.bot_data_db_path.clone()];
        self.inner.pools.evict(&acc.bot_data_db_path);
        let layout = self.inner.layout.clone();
        let (id, owner, reason) = (acc.id, acc.telegram_id, reason.to_string());
        let moved = self
            .with_master(move |c| {
                // Row first: a crash between the two leaves a removed row with files still in
                // place (cleanup finds them), never a live row without files.
                account::set_status(c, id, AccountStatus::Removed, Some(&reason), None)?;
                account::clear_active(c, id)?;
                let moved = layout.move_to_trash(&files)?;
                account::audit(c, Some(owner), Some(id), "remove", &reason)?;
                Ok(moved.into_iter().map(|(_, to)| to).collect())
            })
            .await?;
        self.invalidate(owner);
        Ok(moved)
    }

    /// Takes back a pairing that never completed: its handles end, its session stops, its row
    /// is deleted, and the files it made are deleted when they hold nothing (a never-paired
    /// session store, a bot data file with no rows): a failed pairing leaves nothing behind,
    /// not even in trash. Files that hold something are left where they are.
    pub(crate) async fn discard_pairing(&self, acc: &Account, reason: &str) -> Result<(), AccountError> {
        self.end_account(acc, Ending::PairingAbandoned).await;
        self.inner.live.stop(acc.id, self.inner.config.shutdown_timeout).await;
        self.inner.pools.evict(&acc.bot_data_db_path);
        let (id, owner, reason) = (acc.id, acc.telegram_id, reason.to_string());
        self.with_master(move |c| {
            account::delete_pairing(c, id)?;
            account::clear_active(c, id)?;
            account::audit(c, Some(owner), Some(id), "pairing_discarded", &reason)
        })
        .await?;
        let session_empty = match self.inner.backend.probe(&acc.db_path).await {
            Ok(Probe::Unpaired) => true,
            Ok(Probe::Paired { .. }) => false,
            // A zero-byte or empty file this pairing created before any store was written.
            Err(_) => std::fs::metadata(&acc.db_path).is_ok_and(|m| m.len() == 0) || db::holds_no_rows(&acc.db_path),
        };
        let (session, data, dir) = (
            acc.db_path.clone(),
            acc.bot_data_db_path.clone(),
            self.inner.layout.user_dir(owner),
        );
        db::blocking(move || {
            if session_empty {
                crate::layout::remove_with_side_files(&session)?;
            }
            if db::holds_no_rows(&data) {
                crate::layout::remove_with_side_files(&data)?;
            }
            // The user's folder goes too if this pairing was all it held.
            let _ = std::fs::remove_dir(&dir);
            Ok(())
        })
        .await?;
        self.invalidate(owner);
        Ok(())
    }

    // ----- user contexts (the seed's session cache, without its global current account) -----

    /// The caller's context: their user row, accounts and active account. Cached for
    /// `TGWA_SESSION_TIMEOUT_SECS`; any change to the user's accounts drops the cache entry.
    pub async fn context(&self, tid: TelegramId, language_hint: Option<&str>) -> Result<UserContext, AccountError> {
        if let Some(ctx) = self.cached(tid) {
            return Ok(ctx);
        }
        let lang = match language_hint {
            Some(l) if l.starts_with("en") => "en",
            _ => "id",
        };
        let ctx = self
            .with_master(move |c| {
                let user = account::touch_user(c, tid, lang)?;
                let accounts = account::of_user(c, tid)?;
                let active = user
                    .active_account_id
                    .and_then(|id| accounts.iter().find(|a| a.id == id).cloned())
                    .or_else(|| accounts.iter().find(|a| a.status == AccountStatus::Active).cloned());
                Ok(UserContext { user, accounts, active })
            })
            .await?;
        let mut m = self.inner.contexts.lock().unwrap_or_else(|e| e.into_inner());
        m.insert(tid, (ctx.clone(), Instant::now()));
        Ok(ctx)
    }

    fn cached(&self, tid: TelegramId) -> Option<UserContext> {
        let mut m = self.inner.contexts.lock().unwrap_or_else(|e| e.into_inner());
        let (ctx, at) = m.get_mut(&tid)?;
        *at = Instant::now();
        Some(ctx.clone())
    }

    /// Drops a user's cached context (after any change to their accounts or settings).
    pub fn invalidate(&self, tid: TelegramId) {
        self.inner
            .contexts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&tid);
    }

    /// Drops contexts idle longer than the timeout; returns how many. The WhatsApp
    /// connections are not touched.
    pub fn sweep_contexts(&self, now: Instant) -> usize {
        let timeout = self.inner.config.session_timeout;
        let mut m = self.inner.contexts.lock().unwrap_or_else(|e| e.into_inner());
        let before = m.len();
        m.retain(|_, (_, at)| now.saturating_duration_since(*at) < timeout);
        before - m.len()
    }

    /// How many user contexts are cached.
    pub fn cached_contexts(&self) -> usize {
        self.inner.contexts.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Sets the user's language (`id` or `en`).
    pub async fn set_language(&self, tid: TelegramId, lang: &'static str) -> Result<(), AccountError> {
        self.with_master(move |c| account::set_language(c, tid, lang)).await?;
        self.invalidate(tid);
        Ok(())
    }

    /// Marks a user blocked (403 from Telegram) so no more messages are sent to them.
    pub async fn set_blocked(&self, tid: TelegramId, blocked: bool) -> Result<(), AccountError> {
        self.with_master(move |c| account::set_blocked(c, tid, blocked)).await?;
        self.invalidate(tid);
        Ok(())
    }

    /// Writes an audit entry.
    pub async fn audit(
        &self,
        tid: Option<TelegramId>,
        account: Option<AccountId>,
        action: &'static str,
        detail: String,
    ) -> Result<(), AccountError> {
        self.with_master(move |c| account::audit(c, tid, account, action, &detail))
            .await
    }

    /// Starts the minute-by-minute sweep of idle contexts; it ends with `shutdown`.
    pub fn spawn_context_sweeper(
        &self,
        mut shutdown: tokio::sync::watch::Receiver<bool>,
    ) -> tokio::task::JoinHandle<()> {
        let this = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(60));
            loop {
                tokio::select! {
                    _ = tick.tick() => { this.sweep_contexts(Instant::now()); }
                    _ = shutdown.changed() => break,
                }
            }
        })
    }
}
