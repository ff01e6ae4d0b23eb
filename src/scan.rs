//! The operator scan of `DB USER TELEGRAM/` and the cleanup of orphaned files.
//!
//! The scan walks the data directory once, classifies every folder and file, checks each
//! session file (not a symlink, not empty, readable, `PRAGMA quick_check`), asks the backend
//! whether a new session holds a paired device, and registers what the master database lacks:
//! a paired session as `active` with its JID, an unpaired one as `unpaired` (so its owner can
//! pair it again from the bot; the entry's reason says so). It never deletes and never stops on
//! one bad entry. Side files (`-wal`, `-shm`, `-journal`) next to their database are part of
//! that database and get no entry of their own.
//!
//! Three entry points:
//! - [`scan`]: with an open [`AccountManager`] (startup, `tgwa scan`); registers unless
//!   `dry_run`.
//! - [`scan_dry_run`]: from the configuration alone, creating nothing: the master database is
//!   read only if it exists, and the backend is only started when a new session needs a probe
//!   (the simulator then keeps its own world under `.sim/`, which the scan never reports).
//! - [`cleanup`]: moves orphaned entries into `.trash/<timestamp>/`.
//!
//! Files are always opened read-only; a WAL database without a `-wal` file is opened
//! `immutable`, because a plain read-only open would leave `-wal`/`-shm` files behind.

use std::collections::{HashMap, HashSet};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures::StreamExt;

use serde::Serialize;

use crate::account::{self, Account, AccountError, AccountStatus};
use crate::config::Config;
use crate::db::{self, DbError, Schema};
use crate::ids::{AccountId, PhoneNumber, TelegramId};
use crate::layout::{parse_account_file, FileKind, Layout};
use crate::manager::AccountManager;
use crate::wa::{Probe, WaBackend, WaError};

/// How many session files are checked at once.
const CHECK_CONCURRENCY: usize = 4;

/// What the scan may do.
#[derive(Debug, Clone, Copy, Default)]
pub struct ScanOptions {
    /// Report only: change no file and no row.
    pub dry_run: bool,
}

/// What a scanned entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    /// A folder directly under the data directory (or an unexpected one inside a user folder).
    Folder,
    /// `whatsmeow-{tid}-{phone}.db`
    Session,
    /// `bot_data-{tid}-{phone}.db`
    BotData,
    /// A `-wal`, `-shm` or `-journal` file.
    SideFile,
    /// Anything else.
    Other,
}

/// What the scan concluded about an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Registered in the master database by this scan.
    RegisteredNow,
    /// Dry run: would have been registered.
    WouldRegister,
    /// The master database already has it.
    AlreadyKnown,
    /// Unusable; left in place (see the reason).
    Invalid,
    /// Belongs to no account; `tgwa cleanup` moves it to trash.
    Orphaned,
}

/// One folder or file and what the scan made of it.
#[derive(Debug, Clone, Serialize)]
pub struct ScanEntry {
    /// Path relative to the data directory (lossy UTF-8).
    pub path: String,
    /// What it is.
    pub kind: EntryKind,
    /// What the scan concluded.
    pub outcome: Outcome,
    /// The Telegram ID of its folder or name, when it has one.
    pub telegram_id: Option<TelegramId>,
    /// The phone number, masked to its last four digits.
    pub phone: Option<String>,
    /// The account it belongs to, when registered.
    pub account_id: Option<AccountId>,
    /// The account's status, when registered.
    pub status: Option<AccountStatus>,
    /// Why it is invalid or orphaned, or a note on a registration.
    pub reason: Option<String>,
    /// The absolute path, for cleanup.
    #[serde(skip)]
    pub full_path: PathBuf,
}

/// Counts by outcome.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ScanSummary {
    /// The scan changed nothing.
    pub dry_run: bool,
    pub folders: usize,
    pub files: usize,
    pub registered_now: usize,
    pub would_register: usize,
    pub already_known: usize,
    pub invalid: usize,
    pub orphaned: usize,
}

/// The whole report: one entry per folder and file, in walk order, and the counts.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ScanReport {
    pub entries: Vec<ScanEntry>,
    pub summary: ScanSummary,
}

impl ScanReport {
    fn finish(entries: Vec<ScanEntry>, dry_run: bool) -> Self {
        let mut s = ScanSummary {
            dry_run,
            ..Default::default()
        };
        for e in &entries {
            if e.kind == EntryKind::Folder {
                s.folders += 1;
            } else {
                s.files += 1;
            }
            match e.outcome {
                Outcome::RegisteredNow => s.registered_now += 1,
                Outcome::WouldRegister => s.would_register += 1,
                Outcome::AlreadyKnown => s.already_known += 1,
                Outcome::Invalid => s.invalid += 1,
                Outcome::Orphaned => s.orphaned += 1,
            }
        }
        Self { entries, summary: s }
    }

    /// The entries with outcome `o`.
    pub fn with_outcome(&self, o: Outcome) -> impl Iterator<Item = &ScanEntry> {
        self.entries.iter().filter(move |e| e.outcome == o)
    }
}

/// Why a scan could not run at all (single bad entries never end up here).
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error("reading the data directory {path}: {source}")]
    DataDir { path: PathBuf, source: std::io::Error },
    #[error("master database: {0}")]
    Master(#[from] AccountError),
    #[error("master database: {0}")]
    Db(#[from] DbError),
    #[error("starting the WhatsApp backend: {0}")]
    Backend(#[from] WaError),
    #[error("cleanup (reading the data directory or moving to trash): {0}")]
    Trash(std::io::Error),
}

// ----- entry points -----

/// Scans with an open manager: its master rows, its backend, and (unless `dry_run`) its
/// registration path, limits and ownership checks included.
pub async fn scan(manager: &AccountManager, opts: ScanOptions) -> Result<ScanReport, ScanError> {
    let known = manager.all_rows().await?;
    let prober = Prober::Ready(manager.backend().clone());
    let limits = (manager.config().max_accounts, manager.config().max_accounts_per_user);
    let registrar = if opts.dry_run {
        Registrar::DryRun
    } else {
        Registrar::Manager(manager)
    };
    run(
        manager.layout().clone(),
        manager.config().master_db.clone(),
        known,
        prober,
        registrar,
        limits,
    )
    .await
}

/// A dry-run scan that opens nothing for writing and creates no file, not even the master
/// database or the data directory.
pub async fn scan_dry_run(config: &Config) -> Result<ScanReport, ScanError> {
    let known = read_master(&config.master_db).await?;
    let prober = Prober::Lazy {
        config: Box::new(config.clone()),
        cell: tokio::sync::OnceCell::new(),
    };
    run(
        Layout::new(&config.data_dir),
        config.master_db.clone(),
        known,
        prober,
        Registrar::DryRun,
        (config.max_accounts, config.max_accounts_per_user),
    )
    .await
}

/// Moves every orphaned entry (with its side files) into one `.trash/<timestamp>/` folder and
/// returns what moved where; with `dry_run`, returns what would move and moves nothing.
/// Needs no backend: being orphaned never depends on a session's content.
pub async fn cleanup(layout: &Layout, master_db: &Path, dry_run: bool) -> Result<Vec<(PathBuf, PathBuf)>, ScanError> {
    let known = read_master(master_db).await?;
    let layout = layout.clone();
    let master_db = master_db.to_path_buf();
    db::blocking(move || {
        let walked = walk(&layout, &master_db, &known).map_err(|e| DbError::Io(e.into_io()))?;
        let orphans: Vec<PathBuf> = walked
            .entries
            .iter()
            .filter(|e| e.outcome == Outcome::Orphaned)
            .map(|e| e.full_path.clone())
            .collect();
        if dry_run {
            let trash = layout.new_trash_dir();
            let mut out = Vec::new();
            for f in &orphans {
                for c in crate::layout::with_side_files(f) {
                    if std::fs::symlink_metadata(&c).is_ok() {
                        let parent = c.parent().and_then(|p| p.file_name()).map(PathBuf::from);
                        let to = trash
                            .join(parent.unwrap_or_default())
                            .join(c.file_name().unwrap_or_default());
                        out.push((c, to));
                    }
                }
            }
            return Ok(out);
        }
        Ok(layout.move_to_trash(&orphans)?)
    })
    .await
    .map_err(|e| match e {
        DbError::Io(io) => ScanError::Trash(io),
        other => ScanError::Db(other),
    })
}

/// Reads the master database's rows without creating or migrating it; no file means no rows.
pub async fn read_master(path: &Path) -> Result<Vec<Account>, ScanError> {
    let path = path.to_path_buf();
    let rows = db::blocking(move || {
        if !path.exists() {
            return Ok(Vec::new());
        }
        let conn = open_read_only(&path)?;
        let has: bool = conn.query_row(
            "SELECT EXISTS(SELECT 1 FROM sqlite_master WHERE type='table' AND name='whatsapp_accounts')",
            [],
            |r| r.get(0),
        )?;
        if !has {
            return Ok(Vec::new());
        }
        account::all(&conn).map_err(|e| match e {
            AccountError::Db(d) => d,
            other => DbError::Task(other.to_string()),
        })
    })
    .await?;
    Ok(rows)
}

// ----- the walk -----

/// A session file found in its owner's folder, with what is known about its number.
struct Candidate {
    tid: TelegramId,
    phone: PhoneNumber,
    session: usize,
    bot_data: Option<usize>,
    known: Known,
}

/// What the master database says about a candidate's number.
enum Known {
    /// Not there (or removed from another owner): a registration candidate.
    New,
    /// Registered to this folder's owner.
    Mine(Account),
    /// Registered to someone else.
    Other(Account),
    /// This owner removed it; the files were left behind.
    Removed(Account),
}

struct Walked {
    entries: Vec<ScanEntry>,
    cands: Vec<Candidate>,
    /// Indices of the user folders' entries; each is followed by its own entries.
    folders: Vec<usize>,
}

/// An error of the walk itself (the data directory cannot be read).
struct WalkError(std::io::Error);

impl WalkError {
    fn into_io(self) -> std::io::Error {
        self.0
    }
}

fn entry(root: &Path, full: PathBuf, kind: EntryKind, outcome: Outcome, reason: Option<String>) -> ScanEntry {
    let rel = full.strip_prefix(root).unwrap_or(&full).to_string_lossy().into_owned();
    ScanEntry {
        path: rel,
        kind,
        outcome,
        telegram_id: None,
        phone: None,
        account_id: None,
        status: None,
        reason,
        full_path: full,
    }
}

fn is_under(path: &Path, root: &Path) -> bool {
    match (std::fs::canonicalize(path), std::fs::canonicalize(root)) {
        (Ok(p), Ok(r)) => p.starts_with(r),
        _ => false,
    }
}

fn symlink_reason(path: &Path, root: &Path) -> String {
    if is_under(path, root) {
        "symbolic link (not followed)".into()
    } else {
        "symbolic link pointing outside the data directory (not followed)".into()
    }
}

/// Lists a directory's entries sorted by name, with their own (not followed) metadata.
fn list(dir: &Path) -> std::io::Result<Vec<(OsString, std::io::Result<std::fs::Metadata>)>> {
    let mut out: Vec<_> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .map(|e| (e.file_name(), std::fs::symlink_metadata(e.path())))
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// Walks the tree and classifies everything that needs no file content. Blocking.
fn walk(layout: &Layout, master_db: &Path, known: &[Account]) -> Result<Walked, WalkError> {
    let root = layout.root();
    let mut w = Walked {
        entries: Vec::new(),
        cands: Vec::new(),
        folders: Vec::new(),
    };
    match std::fs::metadata(root) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(w),
        Err(e) => return Err(WalkError(e)),
        Ok(m) if !m.is_dir() => {
            return Err(WalkError(std::io::Error::other(
                "the data directory is not a directory",
            )));
        }
        Ok(_) => {}
    }
    // The master database may live inside the data directory: never report it.
    let master_names: HashSet<OsString> = match (
        master_db
            .parent()
            .map(|p| if p.as_os_str().is_empty() { Path::new(".") } else { p }),
        master_db.file_name(),
    ) {
        (Some(parent), Some(name)) if is_same_dir(parent, root) => crate::layout::with_side_files(Path::new(name))
            .into_iter()
            .map(PathBuf::into_os_string)
            .collect(),
        _ => HashSet::new(),
    };
    let by_phone: HashMap<&str, &Account> = known.iter().map(|a| (a.phone.digits(), a)).collect();

    let top = list(root).map_err(WalkError)?;
    let mut folders: Vec<(TelegramId, OsString)> = Vec::new();
    for (name, meta) in top {
        let full = root.join(&name);
        let s = name.to_str();
        if s.is_some_and(|s| s.starts_with('.')) || master_names.contains(&name) {
            continue;
        }
        let meta = match meta {
            Ok(m) => m,
            Err(e) => {
                w.entries.push(entry(
                    root,
                    full,
                    EntryKind::Other,
                    Outcome::Invalid,
                    Some(format!("unreadable: {e}")),
                ));
                continue;
            }
        };
        if meta.file_type().is_symlink() {
            let r = symlink_reason(&full, root);
            w.entries
                .push(entry(root, full, EntryKind::Other, Outcome::Invalid, Some(r)));
            continue;
        }
        if meta.is_dir() {
            match s.and_then(|s| s.parse::<TelegramId>().ok()) {
                Some(tid) => folders.push((tid, name)),
                None => w.entries.push(entry(
                    root,
                    full,
                    EntryKind::Folder,
                    Outcome::Orphaned,
                    Some("folder name is not a Telegram ID".into()),
                )),
            }
            continue;
        }
        let reason = if s.and_then(parse_account_file).is_some() {
            "account file outside a user folder"
        } else {
            "unknown file"
        };
        w.entries.push(entry(
            root,
            full,
            EntryKind::Other,
            Outcome::Orphaned,
            Some(reason.into()),
        ));
    }
    folders.sort();
    for (tid, name) in folders {
        walk_folder(root, &root.join(name), tid, &by_phone, &mut w);
    }
    Ok(w)
}

fn is_same_dir(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

fn walk_folder(root: &Path, dir: &Path, tid: TelegramId, by_phone: &HashMap<&str, &Account>, w: &mut Walked) {
    let folder = w.entries.len();
    w.folders.push(folder);
    let mut fe = entry(root, dir.to_path_buf(), EntryKind::Folder, Outcome::AlreadyKnown, None);
    fe.telegram_id = Some(tid);
    w.entries.push(fe);
    let items = match list(dir) {
        Ok(i) => i,
        Err(e) => {
            w.entries[folder].outcome = Outcome::Invalid;
            w.entries[folder].reason = Some(format!("unreadable: {e}"));
            return;
        }
    };
    if items.is_empty() {
        w.entries[folder].outcome = Outcome::Orphaned;
        w.entries[folder].reason = Some("empty folder".into());
        return;
    }
    // Names of regular files, to pair side files and bot data with their databases.
    let files: HashSet<&str> = items
        .iter()
        .filter(|(_, m)| m.as_ref().is_ok_and(|m| m.is_file()))
        .filter_map(|(n, _)| n.to_str())
        .collect();
    let mut sessions: HashMap<String, usize> = HashMap::new();
    let mut bot_datas: Vec<(usize, PhoneNumber)> = Vec::new();
    for (name, meta) in &items {
        let full = dir.join(name);
        let mut push = |kind, outcome, reason: &str| {
            let mut e = entry(root, full.clone(), kind, outcome, Some(reason.to_string()));
            e.telegram_id = Some(tid);
            w.entries.push(e);
        };
        let Some(s) = name.to_str() else {
            push(EntryKind::Other, Outcome::Orphaned, "unknown file (name is not UTF-8)");
            continue;
        };
        let meta = match meta {
            Ok(m) => m,
            Err(e) => {
                push(EntryKind::Other, Outcome::Invalid, &format!("unreadable: {e}"));
                continue;
            }
        };
        let parsed = parse_account_file(s);
        let kind = match &parsed {
            Some(p) if !p.suffix.is_empty() => EntryKind::SideFile,
            Some(p) if p.kind == FileKind::Session => EntryKind::Session,
            Some(_) => EntryKind::BotData,
            None if meta.is_dir() => EntryKind::Folder,
            None => EntryKind::Other,
        };
        if meta.file_type().is_symlink() {
            push(kind, Outcome::Invalid, &symlink_reason(&full, root));
            continue;
        }
        if meta.is_dir() {
            push(
                EntryKind::Folder,
                Outcome::Orphaned,
                "unexpected folder inside a user folder",
            );
            continue;
        }
        if !meta.is_file() {
            push(kind, Outcome::Invalid, "not a regular file");
            continue;
        }
        let Some(p) = parsed else {
            push(EntryKind::Other, Outcome::Orphaned, "unknown file");
            continue;
        };
        if p.telegram_id != tid {
            push(
                kind,
                Outcome::Orphaned,
                &format!("Telegram ID in the name ({}) does not match its folder", p.telegram_id),
            );
            continue;
        }
        if !p.suffix.is_empty() {
            let base = &s[..s.len() - p.suffix.len()];
            if !files.contains(base) {
                push(
                    kind,
                    Outcome::Orphaned,
                    &format!("{} file without its database", p.suffix),
                );
            }
            continue;
        }
        let idx = w.entries.len();
        let mut e = entry(root, full.clone(), kind, Outcome::AlreadyKnown, None);
        e.telegram_id = Some(tid);
        e.phone = Some(p.phone.masked());
        w.entries.push(e);
        match p.kind {
            FileKind::Session => {
                sessions.insert(p.phone.digits().to_string(), idx);
            }
            FileKind::BotData => bot_datas.push((idx, p.phone)),
        }
    }
    let mut linked: HashMap<String, usize> = HashMap::new();
    for (idx, phone) in bot_datas {
        if sessions.contains_key(phone.digits()) {
            linked.insert(phone.digits().to_string(), idx);
            continue;
        }
        let e = &mut w.entries[idx];
        match by_phone.get(phone.digits()) {
            Some(a) if a.telegram_id == tid && a.status != AccountStatus::Removed => {
                e.account_id = Some(a.id);
                e.status = Some(a.status);
                e.reason = Some(format!("session file missing (account is {})", a.status.as_str()));
            }
            _ => {
                e.outcome = Outcome::Orphaned;
                e.reason = Some("bot data without its session file".into());
            }
        }
    }
    let mut sess: Vec<(String, usize)> = sessions.into_iter().collect();
    sess.sort();
    for (digits, idx) in sess {
        let Ok(phone) = PhoneNumber::from_digits(&digits) else {
            continue;
        };
        let known = match by_phone.get(digits.as_str()) {
            None => Known::New,
            Some(a) if a.status == AccountStatus::Removed && a.telegram_id == tid => Known::Removed((*a).clone()),
            Some(a) if a.status == AccountStatus::Removed => Known::New,
            Some(a) if a.telegram_id == tid => Known::Mine((*a).clone()),
            Some(a) => Known::Other((*a).clone()),
        };
        w.cands.push(Candidate {
            tid,
            phone,
            session: idx,
            bot_data: linked.get(&digits).copied(),
            known,
        });
    }
}

// ----- file checks -----

pub use crate::db::open_read_only;

/// Checks one SQLite file: a regular file, not empty (unless `empty_ok`), readable, with a
/// SQLite header, passing `quick_check`. Returns the reason it is unusable.
fn check_sqlite_file(path: &Path, empty_ok: bool) -> Result<Option<u32>, String> {
    use std::io::Read;
    let meta = std::fs::symlink_metadata(path).map_err(|e| format!("unreadable: {e}"))?;
    if meta.file_type().is_symlink() {
        return Err("symbolic link (not followed)".into());
    }
    if !meta.is_file() {
        return Err("not a regular file".into());
    }
    if meta.len() == 0 {
        return if empty_ok {
            Ok(None)
        } else {
            Err("empty file (0 bytes)".into())
        };
    }
    let mut f = std::fs::File::open(path).map_err(|e| format!("unreadable: {e}"))?;
    let mut head = [0u8; 16];
    if f.read_exact(&mut head).is_err() || &head != b"SQLite format 3\0" {
        return Err("corrupt: not a SQLite database".into());
    }
    let conn = open_read_only(path).map_err(|e| format!("corrupt: {e}"))?;
    let res: String = conn
        .query_row("PRAGMA quick_check", [], |r| r.get(0))
        .map_err(|e| format!("corrupt: {e}"))?;
    if res != "ok" {
        return Err(format!("corrupt: {res}"));
    }
    let v: u32 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(|e| format!("corrupt: {e}"))?;
    Ok(Some(v))
}

/// The session file and, when present, the bot data file of one candidate. Blocking.
fn check_candidate(session: &Path, bot_data: Option<&Path>) -> (Result<(), String>, Result<(), String>) {
    let s = check_sqlite_file(session, false).map(|_| ());
    let b = match bot_data {
        None => Ok(()),
        Some(p) => match check_sqlite_file(p, true) {
            Ok(Some(v)) if v > Schema::Account.latest() => {
                Err(format!("schema version {v} is newer than this program knows"))
            }
            Ok(_) => Ok(()),
            Err(e) => Err(e),
        },
    };
    (s, b)
}

// ----- checks, probes, registration -----

/// Where the backend comes from: the manager's, or one started on first need.
enum Prober {
    Ready(Arc<dyn WaBackend>),
    Lazy {
        config: Box<Config>,
        cell: tokio::sync::OnceCell<Arc<dyn WaBackend>>,
    },
}

impl Prober {
    async fn probe(&self, path: &Path) -> Result<Result<Probe, WaError>, ScanError> {
        let backend = match self {
            Prober::Ready(b) => b,
            Prober::Lazy { config, cell } => cell.get_or_try_init(|| crate::wa::backend_for(config)).await?,
        };
        Ok(backend.probe(path).await)
    }
}

enum Registrar<'a> {
    Manager(&'a AccountManager),
    DryRun,
}

/// The result of checking one candidate's files (and probing a new one).
struct Checked {
    session: Result<(), String>,
    bot_data: Result<(), String>,
    probe: Option<Result<Probe, WaError>>,
}

async fn run(
    layout: Layout,
    master_db: PathBuf,
    known: Vec<Account>,
    prober: Prober,
    registrar: Registrar<'_>,
    (max_accounts, max_per_user): (usize, usize),
) -> Result<ScanReport, ScanError> {
    let dry_run = matches!(registrar, Registrar::DryRun);
    let known_c = known.clone();
    let walk_layout = layout.clone();
    let Walked {
        mut entries,
        cands,
        folders,
    } = db::blocking(move || walk(&walk_layout, &master_db, &known_c).map_err(|e| DbError::Io(e.into_io())))
        .await
        .map_err(|e| match e {
            DbError::Io(source) => ScanError::DataDir {
                path: layout.root().to_path_buf(),
                source,
            },
            other => ScanError::Db(other),
        })?;

    // Check files (and probe new sessions) a few at a time; results keep the walk order.
    // Collected first: a lazy iterator of borrowing closures would make this future `!Send`.
    let jobs: Vec<_> = cands
        .iter()
        .map(|c| {
            let session = entries[c.session].full_path.clone();
            let bot_data = c.bot_data.map(|i| entries[i].full_path.clone());
            let wanted = !matches!(c.known, Known::Other(_) | Known::Removed(_));
            let is_new = matches!(c.known, Known::New);
            let prober = &prober;
            async move {
                if !wanted {
                    return Ok(Checked {
                        session: Ok(()),
                        bot_data: Ok(()),
                        probe: None,
                    });
                }
                let s = session.clone();
                let (session_ok, bot_ok) = db::blocking(move || Ok(check_candidate(&s, bot_data.as_deref())))
                    .await
                    .unwrap_or_else(|e| (Err(e.to_string()), Ok(())));
                let probe = if is_new && session_ok.is_ok() && bot_ok.is_ok() {
                    Some(prober.probe(&session).await?)
                } else {
                    None
                };
                Ok::<_, ScanError>(Checked {
                    session: session_ok,
                    bot_data: bot_ok,
                    probe,
                })
            }
        })
        .collect();
    let checked: Vec<Result<Checked, ScanError>> =
        futures::stream::iter(jobs).buffered(CHECK_CONCURRENCY).collect().await;

    // Decide in walk order, so "the later one" of two claims is well defined.
    let mut total = known.iter().filter(|a| a.status != AccountStatus::Removed).count();
    let mut per_user: HashMap<TelegramId, usize> = HashMap::new();
    for a in known.iter().filter(|a| a.status != AccountStatus::Removed) {
        *per_user.entry(a.telegram_id).or_default() += 1;
    }
    let mut claimed: HashMap<String, TelegramId> = HashMap::new();
    for (c, chk) in cands.iter().zip(checked) {
        let chk = chk?;
        let (outcome, reason, acc): (Outcome, Option<String>, Option<(AccountId, AccountStatus)>) = match &c.known {
            Known::Removed(a) => (
                Outcome::Orphaned,
                Some(format!("left behind by removed account {}", a.id)),
                None,
            ),
            Known::Other(a) => (
                Outcome::Invalid,
                Some(format!(
                    "phone is already registered to another Telegram user ({})",
                    a.telegram_id
                )),
                None,
            ),
            Known::Mine(a) => match (&chk.session, &chk.bot_data) {
                (Err(e), _) => (
                    Outcome::Invalid,
                    Some(format!("{e} (registered as account {})", a.id)),
                    Some((a.id, a.status)),
                ),
                (_, Err(e)) => (
                    Outcome::Invalid,
                    Some(format!("bot data file: {e} (registered as account {})", a.id)),
                    Some((a.id, a.status)),
                ),
                _ => (Outcome::AlreadyKnown, None, Some((a.id, a.status))),
            },
            Known::New => {
                let decided = decide_new(c, &chk, &claimed, total, &per_user, max_accounts, max_per_user);
                match decided {
                    Err(reason) => (Outcome::Invalid, Some(reason), None),
                    Ok((status, jid, note)) => match &registrar {
                        Registrar::DryRun => {
                            claimed.insert(c.phone.digits().to_string(), c.tid);
                            total += 1;
                            *per_user.entry(c.tid).or_default() += 1;
                            (Outcome::WouldRegister, note, None)
                        }
                        Registrar::Manager(m) => match m.add(c.tid, c.phone.clone(), status, jid).await {
                            Ok(a) => {
                                claimed.insert(c.phone.digits().to_string(), c.tid);
                                total += 1;
                                *per_user.entry(c.tid).or_default() += 1;
                                (Outcome::RegisteredNow, note, Some((a.id, a.status)))
                            }
                            Err(AccountError::AlreadyLinked(id)) => (Outcome::AlreadyKnown, None, Some((id, status))),
                            Err(e) => (Outcome::Invalid, Some(add_error(e)), None),
                        },
                    },
                }
            }
        };
        // A bot data file follows its account; it is only itself invalid when its own check failed.
        let entry_ids = std::iter::once(c.session).chain(c.bot_data);
        for idx in entry_ids {
            let e = &mut entries[idx];
            e.outcome = outcome;
            e.reason = reason.clone();
            if let Some((id, st)) = acc {
                e.account_id = Some(id);
                e.status = Some(st);
            }
        }
        if let (Some(b), Err(e)) = (c.bot_data, &chk.bot_data) {
            entries[b].outcome = Outcome::Invalid;
            entries[b].reason = Some(e.clone());
        }
    }
    // A user folder reports the best of what it holds.
    let rank = |o: Outcome| match o {
        Outcome::RegisteredNow | Outcome::WouldRegister => 3,
        Outcome::AlreadyKnown => 2,
        _ => 0,
    };
    for (n, &f) in folders.iter().enumerate() {
        if entries[f].outcome != Outcome::AlreadyKnown {
            continue; // empty or unreadable: already decided
        }
        let end = folders.get(n + 1).copied().unwrap_or(entries.len());
        let best = entries[f + 1..end].iter().map(|e| e.outcome).max_by_key(|o| rank(*o));
        match best {
            Some(o) if rank(o) > 0 => entries[f].outcome = o,
            _ => {
                entries[f].outcome = Outcome::Invalid;
                entries[f].reason = Some("no usable account in this folder".into());
            }
        }
    }
    Ok(ScanReport::finish(entries, dry_run))
}

/// Whether a new session may be registered, and how: `(status, jid, note)`, or why not.
fn decide_new(
    c: &Candidate,
    chk: &Checked,
    claimed: &HashMap<String, TelegramId>,
    total: usize,
    per_user: &HashMap<TelegramId, usize>,
    max_accounts: usize,
    max_per_user: usize,
) -> Result<(AccountStatus, Option<String>, Option<String>), String> {
    chk.session.clone()?;
    chk.bot_data.clone().map_err(|e| format!("bot data file: {e}"))?;
    if let Some(other) = claimed.get(c.phone.digits()) {
        return Err(format!(
            "the same phone is also under Telegram ID {other}, registered first"
        ));
    }
    let (status, jid, note) = match &chk.probe {
        Some(Ok(Probe::Paired { jid })) => (AccountStatus::Active, Some(jid.clone()), None),
        Some(Ok(Probe::Unpaired)) => (
            AccountStatus::Unpaired,
            None,
            Some("no paired device: registered as unpaired, to be paired again from the bot".into()),
        ),
        Some(Err(WaError::Storage(e))) => return Err(format!("not a WhatsApp session store: {e}")),
        Some(Err(e)) => return Err(format!("could not read the session: {e}")),
        None => return Err("session not checked".into()),
    };
    if total >= max_accounts {
        return Err(format!("account limit reached (TGWA_MAX_ACCOUNTS={max_accounts})"));
    }
    if per_user.get(&c.tid).copied().unwrap_or(0) >= max_per_user {
        return Err(format!(
            "account limit reached for this user (TGWA_MAX_ACCOUNTS_PER_USER={max_per_user})"
        ));
    }
    Ok((status, jid, note))
}

fn add_error(e: AccountError) -> String {
    match e {
        AccountError::ServerFull { max } => format!("account limit reached (TGWA_MAX_ACCOUNTS={max})"),
        AccountError::UserFull { max } => {
            format!("account limit reached for this user (TGWA_MAX_ACCOUNTS_PER_USER={max})")
        }
        AccountError::OwnedByOther => "phone is already registered to another Telegram user".into(),
        other => format!("could not register: {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_data_dir_is_an_empty_walk() {
        let dir = tempfile::tempdir().unwrap();
        let l = Layout::new(dir.path().join("nope"));
        let w = walk(&l, &dir.path().join("m.db"), &[]).ok().unwrap();
        assert!(w.entries.is_empty() && w.cands.is_empty());
        assert!(!dir.path().join("nope").exists());
    }
}
