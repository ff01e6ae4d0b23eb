//! SQLite plumbing: pools with the pragmas we rely on, numbered migrations, a bounded cache of
//! per-file pools, and the one helper through which all rusqlite work leaves the async runtime.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::{Connection, OpenFlags};
use scheduled_thread_pool::ScheduledThreadPool;

/// A pool of connections to one SQLite file.
pub type Pool = r2d2::Pool<ConnManager>;

/// The connection manager of every pool: SQLite's, except that the pool's first connection is
/// the one [`open_pool`] opened to check and migrate the file. Opening a pool used to open the
/// file twice (once to check and migrate it, then again for the pool), and each open parses
/// the whole schema; with more active accounts than the pool cache holds, a `/status` opened a
/// pool and that double open was a third of the dispatch bench's CPU (issue 20).
pub struct ConnManager {
    /// Opens every connection after the first.
    sqlite: SqliteConnectionManager,
    /// The checked, migrated connection, until the pool asks for its first one.
    first: Mutex<Option<Connection>>,
}

impl std::fmt::Debug for ConnManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnManager").finish_non_exhaustive()
    }
}

impl r2d2::ManageConnection for ConnManager {
    type Connection = Connection;
    type Error = rusqlite::Error;

    fn connect(&self) -> Result<Connection, rusqlite::Error> {
        let first = self.first.lock().unwrap_or_else(|e| e.into_inner()).take();
        match first {
            Some(conn) => Ok(conn),
            None => self.sqlite.connect(),
        }
    }

    fn is_valid(&self, conn: &mut Connection) -> Result<(), rusqlite::Error> {
        self.sqlite.is_valid(conn)
    }

    fn has_broken(&self, conn: &mut Connection) -> bool {
        self.sqlite.has_broken(conn)
    }
}

/// Storage failures. `Corrupt` is the one a person can act on (the file is not a database).
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("connection pool: {0}")]
    Pool(#[from] r2d2::Error),
    #[error("{path}: not a usable SQLite database ({reason})")]
    Corrupt { path: PathBuf, reason: String },
    #[error("{path}: schema version {found} is newer than this program knows ({known})")]
    TooNew { path: PathBuf, found: u32, known: u32 },
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("database task failed: {0}")]
    Task(String),
}

/// Which migration set a file follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Schema {
    /// The master `bot_data.db`.
    Master,
    /// An account's `bot_data-{tid}-{phone}.db`.
    Account,
}

const MASTER_MIGRATIONS: &[&str] = &[
    include_str!("../migrations/master/001_init.sql"),
    include_str!("../migrations/master/002_status_index.sql"),
    include_str!("../migrations/master/003_account_history.sql"),
    include_str!("../migrations/master/004_suspended.sql"),
    include_str!("../migrations/master/005_announcements.sql"),
    // --- members ---
    include_str!("../migrations/master/008_nickname.sql"),
    // --- bot17 ---
    include_str!("../migrations/master/009_job_numbers_announce_lang.sql"),
];
const ACCOUNT_MIGRATIONS: &[&str] = &[
    include_str!("../migrations/account/001_init.sql"),
    include_str!("../migrations/account/002_item_order.sql"),
    include_str!("../migrations/account/003_exactly_once.sql"),
    include_str!("../migrations/account/004_contacts.sql"),
    include_str!("../migrations/account/005_inbox.sql"),
    // --- sched ---
    include_str!("../migrations/account/007_schedule_templates.sql"),
    // --- ways ---
    include_str!("../migrations/account/009_item_rerun.sql"),
    // --- peer ---
    include_str!("../migrations/account/010_proxy.sql"),
    // --- bot17 ---
    include_str!("../migrations/account/012_job_number.sql"),
];

impl Schema {
    fn migrations(self) -> &'static [&'static str] {
        match self {
            Schema::Master => MASTER_MIGRATIONS,
            Schema::Account => ACCOUNT_MIGRATIONS,
        }
    }

    /// The `user_version` a fully migrated file has.
    pub fn latest(self) -> u32 {
        self.migrations().len() as u32
    }
}

/// Applies the missing migrations of `schema` in one transaction and returns the version.
pub fn migrate(conn: &mut Connection, schema: Schema) -> Result<u32, DbError> {
    let found: u32 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let all = schema.migrations();
    if found as usize > all.len() {
        let path = conn.path().map(PathBuf::from).unwrap_or_default();
        return Err(DbError::TooNew {
            path,
            found,
            known: all.len() as u32,
        });
    }
    if found as usize == all.len() {
        return Ok(found);
    }
    // A migration that rebuilds a table (SQLite cannot drop a constraint) must not fire the
    // foreign-key actions of the table it drops, and the pragma is a no-op inside a
    // transaction: switch it off around the transaction and check the keys before committing.
    let fk: bool = conn.pragma_query_value(None, "foreign_keys", |r| r.get(0))?;
    if fk {
        conn.pragma_update(None, "foreign_keys", false)?;
    }
    let applied = (|| {
        let tx = conn.transaction()?;
        for sql in &all[found as usize..] {
            tx.execute_batch(sql)?;
        }
        let broken: i64 = tx.query_row("SELECT COUNT(*) FROM pragma_foreign_key_check", [], |r| r.get(0))?;
        if broken > 0 {
            return Err(DbError::Task(format!("migration left {broken} broken foreign keys")));
        }
        tx.pragma_update(None, "user_version", all.len() as u32)?;
        tx.commit()?;
        Ok(all.len() as u32)
    })();
    if fk {
        conn.pragma_update(None, "foreign_keys", true)?;
    }
    applied
}

/// The pragmas every connection gets when it opens.
fn init_connection(c: &mut Connection) -> rusqlite::Result<()> {
    // --- mem20 ---
    restore_lookaside(c);
    c.busy_timeout(Duration::from_secs(5))?;
    c.execute_batch(
        "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON; PRAGMA cache_size=-256;",
    )
}

// --- mem20 ---
/// Whether [`configure_sqlite_process`] turned SQLite's lookaside off for new connections.
static LOOKASIDE_OFF: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// SQLite's own lookaside per connection in this build (`SQLITE_DEFAULT_LOOKASIDE`, two-size
/// lookaside: 1,200-byte slots x 40, 48 KB), which tgwa's own connections keep.
const SQLITE_DEFAULT_LOOKASIDE: (i32, i32) = (1200, 40);

/// Process-wide SQLite memory settings. Call before the first connection opens: SQLite takes
/// no configuration once initialised, and then this returns `false` and changes nothing.
///
/// It turns the lookaside allocator off for new connections. Each connection otherwise
/// allocates and touches its 48 KB when it opens (46 KiB per session store measured by the
/// `real_clients` bench), and the process holds one whatsapp-rust session store per account
/// (10,000), each idle between short bursts; whatsapp-rust opens them itself, with no hook
/// early enough to set lookaside per connection (its init hook runs after diesel has
/// registered a function, which holds a lookaside slot, so SQLite refuses the change).
/// tgwa's own pools take SQLite's default back on every connection they open
/// (`init_connection`), so only the session stores go without.
pub fn configure_sqlite_process() -> bool {
    // SAFETY: `sqlite3_config` is called with the two int arguments SQLITE_CONFIG_LOOKASIDE
    // takes; before initialisation it only sets globals, after it fails with SQLITE_MISUSE.
    let rc = unsafe { rusqlite::ffi::sqlite3_config(rusqlite::ffi::SQLITE_CONFIG_LOOKASIDE, 0i32, 0i32) };
    let ok = rc == rusqlite::ffi::SQLITE_OK;
    LOOKASIDE_OFF.store(ok, Ordering::Relaxed);
    ok
}

/// Gives one of tgwa's own connections SQLite's default lookaside back when
/// [`configure_sqlite_process`] turned it off. Runs before the connection prepares anything,
/// so no lookaside memory is in use and SQLite accepts the change.
fn restore_lookaside(c: &Connection) {
    if !LOOKASIDE_OFF.load(Ordering::Relaxed) {
        return;
    }
    let (size, count) = SQLITE_DEFAULT_LOOKASIDE;
    // SAFETY: the handle is open for as long as `c`; a NULL buffer asks SQLite to allocate
    // the slots itself; the arguments are those SQLITE_DBCONFIG_LOOKASIDE takes.
    let rc = unsafe {
        rusqlite::ffi::sqlite3_db_config(
            c.handle(),
            rusqlite::ffi::SQLITE_DBCONFIG_LOOKASIDE,
            std::ptr::null_mut::<std::ffi::c_void>(),
            size,
            count,
        )
    };
    if rc != rusqlite::ffi::SQLITE_OK {
        tracing::debug!(rc, "could not restore SQLite's lookaside on a connection");
    }
}

/// Creates the file with mode 0600 if it does not exist yet, so SQLite never makes it 0644.
pub fn create_private_file(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// Creates an empty SQLite database file (0600, WAL) if `path` does not exist, so a session
/// store starts as a valid database that any SQLite reader accepts.
pub fn create_empty_database(path: &Path) -> Result<(), DbError> {
    if path.exists() {
        return Ok(());
    }
    create_private_file(path)?;
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.pragma_update_and_check(None, "journal_mode", "WAL", |_| Ok(()))?;
    Ok(())
}

/// Opens a pool on `path` and brings its schema up to date. Blocking: call through [`blocking`].
pub fn open_pool(
    path: &Path,
    schema: Schema,
    max_size: u32,
    threads: Option<Arc<ScheduledThreadPool>>,
) -> Result<Pool, DbError> {
    create_private_file(path)?;
    let manager = SqliteConnectionManager::file(path)
        .with_flags(OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI)
        .with_init(init_connection);
    let mut builder = r2d2::Pool::builder()
        .max_size(max_size)
        .min_idle(Some(0))
        .idle_timeout(Some(Duration::from_secs(120)))
        .connection_timeout(Duration::from_secs(10));
    if let Some(t) = threads {
        builder = builder.thread_pool(t);
    }
    // Open and migrate once directly: r2d2 would retry a broken file until its timeout.
    let mut conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| corrupt(path, e))?;
    init_connection(&mut conn).map_err(|e| corrupt(path, e))?;
    migrate(&mut conn, schema).map_err(|e| match e {
        DbError::Sqlite(s) => corrupt(path, s),
        other => other,
    })?;
    // The checked connection is the pool's first: opened with the same pragmas, it spares a
    // second open (and a schema parse, and the close that checkpoints the WAL).
    let manager = ConnManager {
        sqlite: manager,
        first: Mutex::new(Some(conn)),
    };
    Ok(builder.build_unchecked(manager))
}

fn corrupt(path: &Path, e: rusqlite::Error) -> DbError {
    match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::NotADatabase | rusqlite::ErrorCode::DatabaseCorrupt) => DbError::Corrupt {
            path: path.to_path_buf(),
            reason: e.to_string(),
        },
        _ => DbError::Sqlite(e),
    }
}

/// Runs blocking database work on tokio's blocking pool; a panic inside is re-raised here.
pub async fn blocking<F, R>(f: F) -> Result<R, DbError>
where
    F: FnOnce() -> Result<R, DbError> + Send + 'static,
    R: Send + 'static,
{
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => Err(DbError::Task(e.to_string())),
    }
}

/// Runs `f` with a connection from `pool`, off the async runtime.
pub async fn with_conn<F, R>(pool: &Pool, f: F) -> Result<R, DbError>
where
    F: FnOnce(&mut Connection) -> Result<R, DbError> + Send + 'static,
    R: Send + 'static,
{
    let pool = pool.clone();
    blocking(move || {
        let mut conn = pool.get()?;
        f(&mut conn)
    })
    .await
}

/// A bounded cache of per-file pools keyed by path: the least recently used pool is dropped
/// (its connections close) once more than `capacity` are open, so thousands of accounts never
/// mean thousands of open files.
///
/// Besides those, up to `hold_max` pools may be *held* ([`PoolCache::hold_blocking`]): a job
/// worker keeps its account's pool open for as long as it runs instead of finding it again
/// through the LRU for every item. With more accounts at work than the LRU holds, every item
/// would otherwise close a pool (a checkpoint: two fsyncs) and open it again. A held pool is
/// never evicted by the LRU; when its last holder lets go it becomes the LRU's newest entry.
#[derive(Clone)]
pub struct PoolCache {
    inner: Arc<PoolCacheInner>,
}

struct PoolCacheInner {
    /// Most pools kept open.
    capacity: usize,
    /// Most pools held open at once beyond `capacity` (bounded by the descriptors they use).
    hold_max: usize,
    /// Pools and the tick of their last use.
    map: Mutex<LruMap>,
    /// One timer thread shared by every pool (r2d2 would start three per pool otherwise).
    threads: Arc<ScheduledThreadPool>,
    /// Pools opened and closed since start: churn past the capacity shows here first.
    opened: AtomicU64,
    closed: AtomicU64,
}

#[derive(Default)]
struct LruMap {
    tick: u64,
    pools: HashMap<PathBuf, (Pool, u64)>,
    /// Held pools and how many holders each has; a path is in `pools` or here, never both.
    held: HashMap<PathBuf, (Pool, usize)>,
}

impl LruMap {
    /// Takes out the least recently used pools past `capacity`. The caller drops them after
    /// releasing the lock: closing a pool's last connection checkpoints its WAL (fsyncs), and
    /// every other account's request would wait on that behind the lock.
    fn over_capacity(&mut self, capacity: usize) -> Vec<Pool> {
        let mut out = Vec::new();
        while self.pools.len() > capacity {
            let oldest = self.pools.iter().min_by_key(|(_, (_, t))| *t).map(|(p, _)| p.clone());
            match oldest.and_then(|p| self.pools.remove(&p)) {
                Some((pool, _)) => out.push(pool),
                None => break,
            }
        }
        out
    }
}

/// A pool kept open while this handle lives (see [`PoolCache::hold_blocking`]); dropping it
/// hands the pool back to the cache's LRU.
pub struct HeldPool {
    pool: Pool,
    path: PathBuf,
    cache: Arc<PoolCacheInner>,
}

impl HeldPool {
    /// The held pool.
    pub fn pool(&self) -> &Pool {
        &self.pool
    }
}

impl Drop for HeldPool {
    fn drop(&mut self) {
        let evicted = {
            let mut m = self.cache.map.lock().unwrap_or_else(|e| e.into_inner());
            let last = match m.held.get_mut(&self.path) {
                Some((_, n)) => {
                    *n -= 1;
                    *n == 0
                }
                // Evicted meanwhile (its file is being moved away): nothing to hand back.
                None => false,
            };
            if last {
                if let Some((pool, _)) = m.held.remove(&self.path) {
                    m.tick += 1;
                    let tick = m.tick;
                    m.pools.insert(self.path.clone(), (pool, tick));
                }
            }
            m.over_capacity(self.cache.capacity)
        };
        self.cache.closed.fetch_add(evicted.len() as u64, Ordering::Relaxed);
        if evicted.is_empty() {
            return;
        }
        // A holder usually ends on the async runtime: closing (a checkpoint) happens off it.
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                rt.spawn_blocking(move || drop(evicted));
            }
            Err(_) => drop(evicted),
        }
    }
}

impl PoolCache {
    /// A cache that keeps at most `capacity` pools open and holds none.
    pub fn new(capacity: usize) -> Self {
        Self::with_holds(capacity, 0)
    }

    /// A cache that keeps at most `capacity` pools in its LRU and holds up to `hold_max`
    /// more for their holders.
    pub fn with_holds(capacity: usize, hold_max: usize) -> Self {
        Self {
            inner: Arc::new(PoolCacheInner {
                capacity: capacity.max(1),
                hold_max,
                map: Mutex::new(LruMap::default()),
                threads: Arc::new(
                    ScheduledThreadPool::builder()
                        .num_threads(1)
                        .thread_name_pattern("sqlite-pool-{}")
                        .build(),
                ),
                opened: AtomicU64::new(0),
                closed: AtomicU64::new(0),
            }),
        }
    }

    /// `(opened, closed)`: pools opened and closed (evicted or dropped for a move) so far.
    pub fn churn(&self) -> (u64, u64) {
        (
            self.inner.opened.load(Ordering::Relaxed),
            self.inner.closed.load(Ordering::Relaxed),
        )
    }

    /// The pool for `path`, opened (and migrated) on first use. Blocking.
    pub fn get_blocking(&self, path: &Path, schema: Schema) -> Result<Pool, DbError> {
        {
            let mut m = self.inner.map.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(pool) = Self::lookup(&mut m, path) {
                return Ok(pool);
            }
        }
        self.open_into_lru(path, schema)
    }

    /// The pool of `path` if it is open (a use: the LRU entry becomes the newest).
    fn lookup(m: &mut LruMap, path: &Path) -> Option<Pool> {
        if let Some((pool, _)) = m.held.get(path) {
            return Some(pool.clone());
        }
        m.tick += 1;
        let tick = m.tick;
        m.pools.get_mut(path).map(|(pool, used)| {
            *used = tick;
            pool.clone()
        })
    }

    /// Opens `path` (outside the lock: another account's request must not wait on this file)
    /// and puts it in the LRU, unless another request opened it meanwhile.
    fn open_into_lru(&self, path: &Path, schema: Schema) -> Result<Pool, DbError> {
        let pool = open_pool(path, schema, 2, Some(self.inner.threads.clone()))?;
        self.inner.opened.fetch_add(1, Ordering::Relaxed);
        let (pool, evicted) = {
            let mut m = self.inner.map.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(theirs) = Self::lookup(&mut m, path) {
                // Another request opened it meanwhile; this copy is dropped.
                self.inner.closed.fetch_add(1, Ordering::Relaxed);
                (theirs, Vec::new())
            } else {
                m.tick += 1;
                let tick = m.tick;
                m.pools.insert(path.to_path_buf(), (pool.clone(), tick));
                (pool, m.over_capacity(self.inner.capacity))
            }
        };
        self.inner.closed.fetch_add(evicted.len() as u64, Ordering::Relaxed);
        drop(evicted);
        Ok(pool)
    }

    /// Holds the pool of `path` open until the returned handle is dropped, opening it if
    /// needed; `Ok(None)` when `hold_max` pools are already held (the caller then goes through
    /// [`Self::get_blocking`] for each use, as before). Blocking.
    pub fn hold_blocking(&self, path: &Path, schema: Schema) -> Result<Option<HeldPool>, DbError> {
        if let Some(held) = self.hold_open(path) {
            return Ok(held);
        }
        // Opened outside the lock, then held at once: put in the LRU first, a pool opened
        // while thousands of others churn through it would be evicted before it is taken.
        let pool = open_pool(path, schema, 2, Some(self.inner.threads.clone()))?;
        self.inner.opened.fetch_add(1, Ordering::Relaxed);
        let mut m = self.inner.map.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((theirs, n)) = m.held.get_mut(path) {
            *n += 1;
            let theirs = theirs.clone();
            drop(m);
            // Another holder opened it meanwhile; this copy is dropped.
            self.inner.closed.fetch_add(1, Ordering::Relaxed);
            return Ok(Some(self.held(theirs, path)));
        }
        if let Some((theirs, _)) = m.pools.remove(path) {
            m.held.insert(path.to_path_buf(), (theirs.clone(), 1));
            drop(m);
            self.inner.closed.fetch_add(1, Ordering::Relaxed);
            return Ok(Some(self.held(theirs, path)));
        }
        if m.held.len() < self.inner.hold_max {
            m.held.insert(path.to_path_buf(), (pool.clone(), 1));
            return Ok(Some(self.held(pool, path)));
        }
        // The budget filled up meanwhile: the pool goes to the LRU like any other.
        m.tick += 1;
        let tick = m.tick;
        m.pools.insert(path.to_path_buf(), (pool, tick));
        let evicted = m.over_capacity(self.inner.capacity);
        drop(m);
        self.inner.closed.fetch_add(evicted.len() as u64, Ordering::Relaxed);
        Ok(None)
    }

    /// The hold of a pool already open: `Some(Some(_))` held, `Some(None)` the budget is
    /// spent, `None` not open yet.
    fn hold_open(&self, path: &Path) -> Option<Option<HeldPool>> {
        let mut m = self.inner.map.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((pool, n)) = m.held.get_mut(path) {
            *n += 1;
            let pool = pool.clone();
            return Some(Some(self.held(pool, path)));
        }
        if m.held.len() >= self.inner.hold_max {
            return Some(None);
        }
        if let Some((pool, _)) = m.pools.remove(path) {
            m.held.insert(path.to_path_buf(), (pool.clone(), 1));
            return Some(Some(self.held(pool, path)));
        }
        None
    }

    fn held(&self, pool: Pool, path: &Path) -> HeldPool {
        HeldPool {
            pool,
            path: path.to_path_buf(),
            cache: self.inner.clone(),
        }
    }

    /// Runs `f` on a connection to `path`, off the async runtime.
    pub async fn with<F, R>(&self, path: PathBuf, schema: Schema, f: F) -> Result<R, DbError>
    where
        F: FnOnce(&mut Connection) -> Result<R, DbError> + Send + 'static,
        R: Send + 'static,
    {
        let this = self.clone();
        blocking(move || {
            let pool = this.get_blocking(&path, schema)?;
            let mut conn = pool.get()?;
            f(&mut conn)
        })
        .await
    }

    /// Closes the pool of `path` (before its file is moved away), held or not: a holder
    /// still running keeps its own handle, but the cache no longer hands it out.
    pub fn evict(&self, path: &Path) {
        let gone = {
            let mut m = self.inner.map.lock().unwrap_or_else(|e| e.into_inner());
            let lru = m.pools.remove(path).map(|(p, _)| p);
            let held = m.held.remove(path).map(|(p, _)| p);
            (lru, held)
        };
        if gone.0.is_some() || gone.1.is_some() {
            self.inner.closed.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// How many pools are open now (held ones included).
    pub fn len(&self) -> usize {
        let m = self.inner.map.lock().unwrap_or_else(|e| e.into_inner());
        m.pools.len() + m.held.len()
    }

    /// How many pools are held now (see [`Self::hold_blocking`]).
    pub fn held_len(&self) -> usize {
        self.inner.map.lock().unwrap_or_else(|e| e.into_inner()).held.len()
    }

    /// True when no pool is open.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Current time as Unix seconds, the format of every timestamp column.
pub fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Opens a SQLite file read-only without leaving side files behind: a read-only open of a WAL
/// database would create `-wal` and `-shm`, so when no `-wal` exists the file is opened
/// `immutable` (nothing to merge); when one exists its content is read as usual.
pub fn open_read_only(path: &Path) -> Result<Connection, DbError> {
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    let immutable = !Path::new(&wal).exists();
    let abs = std::fs::canonicalize(path)?;
    let mut uri = format!("file:{}?mode=ro", uri_escape(&abs.to_string_lossy()));
    if immutable {
        uri.push_str("&immutable=1");
    }
    let conn = Connection::open_with_flags(
        uri,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_URI | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(Duration::from_secs(2))?;
    Ok(conn)
}

/// True when `path` is a readable SQLite file none of whose tables holds a row (a bot data
/// file a pairing created and never used). Anything else, an unreadable file included, is
/// `false`: such a file is kept.
pub fn holds_no_rows(path: &Path) -> bool {
    let check = || -> Result<bool, DbError> {
        let conn = open_read_only(path)?;
        let tables: Vec<String> = conn
            .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")?
            .query_map([], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        for t in tables {
            let any: bool = conn.query_row(
                &format!("SELECT EXISTS (SELECT 1 FROM \"{}\")", t.replace('"', "\"\"")),
                [],
                |r| r.get(0),
            )?;
            if any {
                return Ok(false);
            }
        }
        Ok(true)
    };
    path.is_file() && check().unwrap_or(false)
}

/// Percent-encodes what a SQLite URI path cannot hold literally (spaces in
/// `DB USER TELEGRAM`, `?`, `#`, `%`).
fn uri_escape(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'/' | b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Runs `PRAGMA quick_check` on a file opened read-only; `Err` names why it is unusable.
pub fn quick_check(path: &Path) -> Result<(), String> {
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)
        .map_err(|e| e.to_string())?;
    let res: String = conn
        .query_row("PRAGMA quick_check", [], |r| r.get(0))
        .map_err(|e| e.to_string())?;
    if res == "ok" {
        Ok(())
    } else {
        Err(res)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pool_starts_with_its_checked_connection_and_opens_more_as_before() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.db");
        let pool = open_pool(&p, Schema::Account, 2, None).unwrap();
        // Two at once: the checked connection and one the pool opens itself; both carry the
        // pragmas and see the migrated schema.
        let a = pool.get().unwrap();
        let b = pool.get().unwrap();
        for c in [&a, &b] {
            let v: u32 = c.pragma_query_value(None, "user_version", |r| r.get(0)).unwrap();
            assert_eq!(v, Schema::Account.latest());
            let fk: bool = c.pragma_query_value(None, "foreign_keys", |r| r.get(0)).unwrap();
            assert!(fk);
            let busy: i64 = c.pragma_query_value(None, "busy_timeout", |r| r.get(0)).unwrap();
            assert_eq!(busy, 5000);
            let mode: String = c.pragma_query_value(None, "journal_mode", |r| r.get(0)).unwrap();
            assert_eq!(mode, "wal");
        }
        assert_eq!(pool.state().connections, 2);
        // A file that is not a database is still refused at once.
        let bad = dir.path().join("bad.db");
        std::fs::write(&bad, vec![7u8; 4096]).unwrap();
        assert!(matches!(
            open_pool(&bad, Schema::Account, 2, None),
            Err(DbError::Corrupt { .. })
        ));
    }

    #[test]
    fn uri_escape_keeps_paths_literal() {
        assert_eq!(uri_escape("/a b/c%3f?#.db"), "/a%20b/c%253f%3F%23.db");
        assert_eq!(uri_escape("/a b/c?d#e%f"), "/a%20b/c%3Fd%23e%25f");
    }

    #[test]
    fn read_only_open_leaves_no_side_files() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x y.db");
        create_empty_database(&p).unwrap();
        let c = open_read_only(&p).unwrap();
        let _: i64 = c
            .query_row("SELECT COUNT(*) FROM sqlite_master", [], |r| r.get(0))
            .unwrap();
        drop(c);
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
    }

    #[test]
    fn the_account_history_migration_keeps_rows_links_and_the_id_high_water_mark() {
        let mut c = Connection::open_in_memory().unwrap();
        c.execute_batch("PRAGMA foreign_keys=ON").unwrap();
        for sql in &MASTER_MIGRATIONS[..2] {
            c.execute_batch(sql).unwrap();
        }
        c.pragma_update(None, "user_version", 2).unwrap();
        c.execute_batch(
            "INSERT INTO whatsapp_accounts (id, telegram_id, phone_number, db_path, bot_data_db_path, status,
                 status_changed_at, created_at, updated_at) VALUES (5, 1, '6281', 'a', 'b', 'active', 0, 0, 0);
             INSERT INTO whatsapp_accounts (id, telegram_id, phone_number, db_path, bot_data_db_path, status,
                 status_changed_at, created_at, updated_at) VALUES (9, 1, '6282', 'a', 'b', 'pairing', 0, 0, 0);
             DELETE FROM whatsapp_accounts WHERE id = 9;
             INSERT INTO telegram_users (telegram_id, active_account_id, first_seen, last_seen) VALUES (1, 5, 0, 0);",
        )
        .unwrap();
        assert_eq!(migrate(&mut c, Schema::Master).unwrap(), Schema::Master.latest());
        // The user's active account survived the rebuild (no ON DELETE SET NULL fired).
        let active: Option<i64> = c
            .query_row(
                "SELECT active_account_id FROM telegram_users WHERE telegram_id = 1",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(active, Some(5));
        let generation: i64 = c
            .query_row("SELECT generation FROM whatsapp_accounts WHERE id = 5", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(generation, 1);
        // ID 9 was issued once (then deleted): the next account gets 10, never 9.
        c.execute(
            "INSERT INTO whatsapp_accounts (telegram_id, phone_number, db_path, bot_data_db_path, status,
                 status_changed_at, created_at, updated_at) VALUES (2, '6283', 'a', 'b', 'active', 0, 0, 0)",
            [],
        )
        .unwrap();
        assert_eq!(c.last_insert_rowid(), 10);
        // Foreign keys are on again.
        let fk: bool = c.pragma_query_value(None, "foreign_keys", |r| r.get(0)).unwrap();
        assert!(fk);
    }

    #[test]
    fn migrations_apply_on_memory_and_are_idempotent() {
        for schema in [Schema::Master, Schema::Account] {
            let mut c = Connection::open_in_memory().unwrap();
            c.execute_batch("PRAGMA foreign_keys=ON").unwrap();
            assert_eq!(migrate(&mut c, schema).unwrap(), schema.latest());
            assert_eq!(migrate(&mut c, schema).unwrap(), schema.latest());
            let v: u32 = c.pragma_query_value(None, "user_version", |r| r.get(0)).unwrap();
            assert_eq!(v, schema.latest());
        }
    }

    #[test]
    fn master_schema_has_the_contract_columns() {
        let mut c = Connection::open_in_memory().unwrap();
        migrate(&mut c, Schema::Master).unwrap();
        let mut st = c
            .prepare("SELECT name FROM pragma_table_info('whatsapp_accounts')")
            .unwrap();
        let cols: Vec<String> = st.query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect();
        for want in [
            "id",
            "telegram_id",
            "phone_number",
            "jid",
            "db_path",
            "bot_data_db_path",
            "status",
            "last_error",
            "created_at",
            "updated_at",
        ] {
            assert!(cols.iter().any(|c| c == want), "missing column {want}");
        }
        let bad = c.execute(
            "INSERT INTO whatsapp_accounts (telegram_id, phone_number, db_path, bot_data_db_path, status, created_at, updated_at) VALUES (1,'628123456789','a','b','weird',0,0)",
            [],
        );
        assert!(bad.is_err(), "status outside the set must be refused");
    }

    #[test]
    fn newer_schema_is_refused() {
        let mut c = Connection::open_in_memory().unwrap();
        c.pragma_update(None, "user_version", 999).unwrap();
        assert!(matches!(migrate(&mut c, Schema::Master), Err(DbError::TooNew { .. })));
    }

    #[test]
    fn pool_cache_is_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let cache = PoolCache::new(3);
        for i in 0..10 {
            let p = dir.path().join(format!("{i}.db"));
            cache.get_blocking(&p, Schema::Account).unwrap();
            assert!(cache.len() <= 3);
        }
        assert_eq!(cache.len(), 3);
        // Ten opened, seven evicted; a hit opens nothing.
        assert_eq!(cache.churn(), (10, 7));
        cache.get_blocking(&dir.path().join("9.db"), Schema::Account).unwrap();
        assert_eq!(cache.churn(), (10, 7));
        cache.evict(&dir.path().join("9.db"));
        assert_eq!(cache.churn(), (10, 8));
    }

    #[test]
    fn held_pools_stay_open_past_the_lru_and_go_back_to_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = |i: usize| dir.path().join(format!("{i}.db"));
        let cache = PoolCache::with_holds(2, 2);
        let a = cache
            .hold_blocking(&path(0), Schema::Account)
            .unwrap()
            .expect("room to hold");
        let a2 = cache
            .hold_blocking(&path(0), Schema::Account)
            .unwrap()
            .expect("held twice");
        let b = cache
            .hold_blocking(&path(1), Schema::Account)
            .unwrap()
            .expect("room to hold");
        // The budget is spent: a third file is not held (its user goes through the LRU).
        assert!(cache.hold_blocking(&path(2), Schema::Account).unwrap().is_none());
        assert_eq!(cache.held_len(), 2);
        // Ten other files churn through the LRU; the held ones are never closed.
        for i in 3..13 {
            cache.get_blocking(&path(i), Schema::Account).unwrap();
        }
        assert_eq!(cache.held_len(), 2);
        assert_eq!(cache.len(), 4);
        let opened = cache.churn().0;
        cache.get_blocking(&path(0), Schema::Account).unwrap();
        assert_eq!(cache.churn().0, opened, "a held pool is found, not opened again");
        // Let go by every holder: back in the LRU as its newest entry, within its bound.
        drop(a);
        assert_eq!(cache.held_len(), 2, "0.db still has a holder");
        drop(a2);
        assert_eq!(cache.held_len(), 1);
        assert_eq!(cache.len(), 3);
        cache.get_blocking(&path(0), Schema::Account).unwrap();
        assert_eq!(cache.churn().0, opened, "the newest entry was not evicted");
        // Evicting a held file (its account is removed) forgets it; its holder's drop later
        // puts nothing back.
        cache.evict(&path(1));
        assert_eq!(cache.held_len(), 0);
        drop(b);
        assert_eq!(cache.len(), 2);
        let (opened, closed) = cache.churn();
        assert_eq!(opened - closed, 2, "every pool the cache forgot was counted closed");
    }

    #[test]
    fn corrupt_file_is_reported_as_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("bad.db");
        std::fs::write(&p, b"this is not a database at all, not even close....................................................................").unwrap();
        match open_pool(&p, Schema::Account, 1, None) {
            Err(DbError::Corrupt { .. }) => {}
            other => panic!("expected Corrupt, got {:?}", other.err()),
        }
        assert!(quick_check(&p).is_err());
    }
}
