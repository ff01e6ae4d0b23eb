//! `tgwa backup` and `tgwa restore`: a consistent copy of the master database and of every
//! account's session and bot data, taken while the bot runs, and its way back into an empty
//! data directory.
//!
//! Every database is copied with SQLite's `VACUUM INTO`, which reads one snapshot inside a
//! read transaction: a plain file copy of a live WAL database can miss pages still in `-wal`
//! or tear a page mid-write. Each copy is switched to a rollback journal (one self-contained
//! file), checked with `PRAGMA integrity_check`, and recorded in `manifest.json` with its size
//! and SHA-256. A file that cannot be copied is named in the report and the command fails, but
//! every other file is still copied.
//!
//! A backup folder looks like this:
//! ```text
//! manifest.json
//! master.db                                   the master database
//! data/{tid}/whatsmeow-{tid}-{phone}.db       each account's session
//! data/{tid}/bot_data-{tid}-{phone}.db        each account's bot data
//! data/.sim/world.db                          the simulator's world (sim backend only)
//! data/.secret                                the key that signs inline buttons
//! ```
//!
//! Everything here is blocking; callers run it through [`crate::db::blocking`].

use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::db::{DbError, Schema};
use crate::layout::{create_private_dir, parse_account_file, Layout};

/// The manifest's file name inside a backup folder.
pub const MANIFEST: &str = "manifest.json";
/// The master database's name inside a backup folder.
const MASTER_NAME: &str = "master.db";
/// The data directory's name inside a backup folder.
const DATA_NAME: &str = "data";
/// Manifest format version, bumped when its meaning changes.
const FORMAT: u32 = 1;

/// Why a backup or restore could not run at all (per-file failures are in the report).
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("{0} exists and is not empty; choose a new folder")]
    TargetNotEmpty(PathBuf),
    #[error("backup folder {0} {1}; use a folder of your own with mode 0700")]
    UnsafeTarget(PathBuf, String),
    #[error(
        "restore target {0} is not empty; restore only into an empty data directory and a missing master database"
    )]
    RestoreTargetNotEmpty(PathBuf),
    #[error("{path}: {reason}")]
    BadBackup { path: PathBuf, reason: String },
    #[error("i/o on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("manifest: {0}")]
    Manifest(#[from] serde_json::Error),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> BackupError + '_ {
    move |source| BackupError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// What a file in a backup is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    /// The master database.
    Master,
    /// An account's WhatsApp session (`whatsmeow-…`).
    Session,
    /// An account's bot data (`bot_data-…`).
    BotData,
    /// The simulator's shared world.
    SimWorld,
    /// The callback-signing key (a plain file, not a database).
    Secret,
}

/// One copied file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ManifestEntry {
    /// Path inside the backup folder, `/`-separated.
    pub path: String,
    /// What it is.
    pub kind: EntryKind,
    /// Size of the copy in bytes.
    pub bytes: u64,
    /// SHA-256 of the copy, lowercase hex.
    pub sha256: String,
}

/// A file that could not be copied, and why.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FailedEntry {
    /// The source file.
    pub source: String,
    /// Why.
    pub reason: String,
}

/// `manifest.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    /// Manifest format version.
    pub format: u32,
    /// The tgwa version that wrote it.
    pub tgwa_version: String,
    /// When the backup started, Unix seconds.
    pub created_at: i64,
    /// The master schema version of the copy.
    pub master_schema: u32,
    /// The data directory it was taken from (for the operator; restore uses its own).
    pub source_data_dir: String,
    /// Every file copied.
    pub files: Vec<ManifestEntry>,
    /// Files that could not be copied (the backup is incomplete when this is not empty).
    pub failed: Vec<FailedEntry>,
}

/// What `backup` did.
#[derive(Debug, Clone)]
pub struct BackupReport {
    /// The backup folder.
    pub dir: PathBuf,
    /// The manifest written into it.
    pub manifest: Manifest,
    /// Wall time.
    pub elapsed: Duration,
}

impl BackupReport {
    /// True when every file was copied and checked.
    pub fn complete(&self) -> bool {
        self.manifest.failed.is_empty()
    }
}

/// The default backup folder: `backups/<UTC timestamp>` in the working directory.
pub fn default_dir() -> PathBuf {
    PathBuf::from("backups").join(chrono::Utc::now().format("%Y%m%dT%H%M%SZ").to_string())
}

/// Takes a backup of `master_db` and the data directory `data_dir` into `to`, which must not
/// exist or be empty. Per-file failures are collected in the manifest; `Err` only when
/// nothing sensible could be written at all.
pub fn backup(master_db: &Path, data_dir: &Path, to: &Path) -> Result<BackupReport, BackupError> {
    let started = Instant::now();
    let created_at = crate::db::now();
    if dir_has_entries(to)? {
        return Err(BackupError::TargetNotEmpty(to.to_path_buf()));
    }
    if std::fs::symlink_metadata(to).is_err() {
        create_private_dir(to).map_err(io(to))?;
    }
    check_private_dir(to)?;
    create_private_dir(&to.join(DATA_NAME)).map_err(io(to))?;
    let mut files = Vec::new();
    let mut failed = Vec::new();
    let mut record = |res: Result<ManifestEntry, String>, source: &Path| match res {
        Ok(e) => files.push(e),
        Err(reason) => failed.push(FailedEntry {
            source: source.display().to_string(),
            reason,
        }),
    };

    // The master first: it names the accounts whose files must be there.
    let master_copy = to.join(MASTER_NAME);
    let master_res = copy_database(master_db, &master_copy, MASTER_NAME, EntryKind::Master);
    let master_ok = master_res.is_ok();
    record(master_res, master_db);
    let master_schema = if master_ok {
        Connection::open_with_flags(&master_copy, OpenFlags::SQLITE_OPEN_READ_ONLY)
            .and_then(|c| c.pragma_query_value(None, "user_version", |r| r.get(0)))
            .unwrap_or(0)
    } else {
        0
    };

    let layout = Layout::new(data_dir);
    let work = account_files(&layout, master_ok.then_some(master_copy.as_path()))?;
    for (res, source) in copy_all(&work, to) {
        record(res, source);
    }
    let world = layout.sim_dir().join("world.db");
    if world.exists() {
        let name = format!("{DATA_NAME}/.sim/world.db");
        let res = copy_database(&world, &to.join(&name), &name, EntryKind::SimWorld);
        record(res, &world);
    }
    let secret = layout.root().join(".secret");
    if secret.exists() {
        // Written once at first start and never again: a plain copy is consistent.
        let name = format!("{DATA_NAME}/.secret");
        let res = copy_plain(&secret, &to.join(&name), &name, EntryKind::Secret);
        record(res, &secret);
    }

    let manifest = Manifest {
        format: FORMAT,
        tgwa_version: env!("CARGO_PKG_VERSION").to_string(),
        created_at,
        master_schema,
        source_data_dir: data_dir.display().to_string(),
        files,
        failed,
    };
    let path = to.join(MANIFEST);
    {
        use std::io::Write;
        let mut f = create_exclusive(&path).map_err(io(&path))?;
        f.write_all(&serde_json::to_vec_pretty(&manifest)?).map_err(io(&path))?;
    }
    Ok(BackupReport {
        dir: to.to_path_buf(),
        manifest,
        elapsed: started.elapsed(),
    })
}

/// Copies the account files on a few threads (each copy is mostly waiting on the disk and on
/// SQLite's page work, and files are independent); results keep `work`'s order.
fn copy_all<'a>(work: &'a [(PathBuf, String, EntryKind)], to: &Path) -> Vec<(Result<ManifestEntry, String>, &'a Path)> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get()).clamp(1, 4);
    let next = AtomicUsize::new(0);
    let mut out: Vec<Option<Result<ManifestEntry, String>>> = vec![None; work.len()];
    let results = std::sync::Mutex::new(&mut out);
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some((source, rel, kind)) = work.get(i) else {
                    break;
                };
                let dest = to.join(DATA_NAME).join(rel);
                let name = format!("{DATA_NAME}/{rel}");
                let res = if source.exists() {
                    copy_database(source, &dest, &name, *kind)
                } else {
                    Err("listed in the master database but missing on disk".to_string())
                };
                results.lock().unwrap_or_else(|e| e.into_inner())[i] = Some(res);
            });
        }
    });
    out.into_iter()
        .zip(work)
        .map(|(r, (source, _, _))| {
            (
                r.unwrap_or_else(|| Err("not copied (a worker stopped)".into())),
                source.as_path(),
            )
        })
        .collect()
}

/// Every account database to copy: each `whatsmeow-…`/`bot_data-…` file in a user folder,
/// plus each file a live row of the master copy names (so a missing one is reported).
/// Returns `(source, path relative to the data dir, kind)`, sorted.
fn account_files(
    layout: &Layout,
    master_copy: Option<&Path>,
) -> Result<Vec<(PathBuf, String, EntryKind)>, BackupError> {
    let mut set: BTreeSet<(String, EntryKind)> = BTreeSet::new();
    let root = layout.root();
    if root.exists() {
        for user in std::fs::read_dir(root).map_err(io(root))? {
            let user = user.map_err(io(root))?;
            let folder = user.file_name().to_string_lossy().into_owned();
            // User folders are numeric; `.trash`, `.sim`, `.locks`, `.imported` are not data.
            if !user.file_type().map_err(io(root))?.is_dir() || folder.parse::<i64>().is_err() {
                continue;
            }
            for f in std::fs::read_dir(user.path()).map_err(io(&user.path()))? {
                let f = f.map_err(io(&user.path()))?;
                let name = f.file_name().to_string_lossy().into_owned();
                if let Some(parsed) = parse_account_file(&name).filter(|p| p.suffix.is_empty()) {
                    set.insert((format!("{folder}/{name}"), kind_of(parsed.kind)));
                }
            }
        }
    }
    if let Some(master) = master_copy {
        let conn = Connection::open_with_flags(master, OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(DbError::from)?;
        let mut st = conn
            .prepare(
                "SELECT telegram_id, phone_number FROM whatsapp_accounts WHERE status NOT IN ('removed', 'pairing')",
            )
            .map_err(DbError::from)?;
        let rows = st
            .query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))
            .map_err(DbError::from)?;
        for row in rows {
            let (tid, phone) = row.map_err(DbError::from)?;
            for prefix in ["whatsmeow", "bot_data"] {
                let kind = if prefix == "whatsmeow" {
                    EntryKind::Session
                } else {
                    EntryKind::BotData
                };
                set.insert((format!("{tid}/{prefix}-{tid}-{phone}.db"), kind));
            }
        }
    }
    Ok(set
        .into_iter()
        .map(|(rel, kind)| (root.join(&rel), rel, kind))
        .collect())
}

fn kind_of(k: crate::layout::FileKind) -> EntryKind {
    match k {
        crate::layout::FileKind::Session => EntryKind::Session,
        crate::layout::FileKind::BotData => EntryKind::BotData,
    }
}

/// Copies one live database with `VACUUM INTO`, makes the copy self-contained, checks it.
fn copy_database(source: &Path, dest: &Path, name: &str, kind: EntryKind) -> Result<ManifestEntry, String> {
    if let Some(parent) = dest.parent() {
        create_private_dir(parent).map_err(|e| format!("creating {}: {e}", parent.display()))?;
    }
    // Opened read-write without CREATE: a read-only handle on a WAL file cannot always build
    // the shared-memory index. No write is made through it.
    let src = Connection::open_with_flags(
        source,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| format!("opening: {e}"))?;
    src.busy_timeout(Duration::from_secs(10)).map_err(|e| e.to_string())?;
    // Created here, exclusively and without following a link, so `VACUUM INTO` (which opens
    // by name) writes into our own empty file and nowhere else.
    create_exclusive(dest).map_err(|e| format!("creating the copy: {e}"))?;
    src.execute("VACUUM INTO ?1", [dest.to_string_lossy()])
        .map_err(|e| format!("VACUUM INTO: {e}"))?;
    drop(src);
    let copy = Connection::open_with_flags(
        dest,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| format!("opening the copy: {e}"))?;
    copy.pragma_update_and_check(None, "journal_mode", "DELETE", |_| Ok(()))
        .map_err(|e| format!("setting the copy's journal mode: {e}"))?;
    let check: String = copy
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .map_err(|e| format!("integrity_check: {e}"))?;
    drop(copy);
    if check != "ok" {
        return Err(format!("integrity_check of the copy: {check}"));
    }
    entry(dest, name, kind)
}

/// Copies a small file that is never rewritten in place.
fn copy_plain(source: &Path, dest: &Path, name: &str, kind: EntryKind) -> Result<ManifestEntry, String> {
    if let Some(parent) = dest.parent() {
        create_private_dir(parent).map_err(|e| format!("creating {}: {e}", parent.display()))?;
    }
    // Its bytes only: `std::fs::copy` would carry a loose mode of the source into the backup.
    copy_private(source, dest).map_err(|e| format!("copying: {e}"))?;
    entry(dest, name, kind)
}

fn entry(path: &Path, name: &str, kind: EntryKind) -> Result<ManifestEntry, String> {
    let (bytes, sha256) = hash_file(path).map_err(|e| format!("reading the copy: {e}"))?;
    Ok(ManifestEntry {
        path: name.to_string(),
        kind,
        bytes,
        sha256,
    })
}

/// Size and SHA-256 (hex) of a file.
pub fn hash_file(path: &Path) -> std::io::Result<(u64, String)> {
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut n = 0u64;
    loop {
        let k = f.read(&mut buf)?;
        if k == 0 {
            break;
        }
        n += k as u64;
        h.update(&buf[..k]);
    }
    let hex = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
    Ok((n, hex))
}

/// A backup folder must be a real folder of ours that nobody else can enter: anyone who can
/// write into it could plant a link for the next file to be written through.
fn check_private_dir(p: &Path) -> Result<(), BackupError> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::symlink_metadata(p).map_err(io(p))?;
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    let reason = if !m.is_dir() {
        Some("is not a folder (a symbolic link is refused)".to_string())
    } else if m.uid() != me {
        Some(format!("belongs to user {}, not to us ({me})", m.uid()))
    } else if m.mode() & 0o077 != 0 {
        Some(format!("has mode {:o}; it must be 0700", m.mode() & 0o777))
    } else {
        None
    };
    match reason {
        Some(r) => Err(BackupError::UnsafeTarget(p.to_path_buf(), r)),
        None => Ok(()),
    }
}

fn dir_has_entries(p: &Path) -> Result<bool, BackupError> {
    match std::fs::read_dir(p) {
        Ok(mut it) => Ok(it.next().is_some()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) if e.kind() == std::io::ErrorKind::NotADirectory => Ok(true),
        Err(e) => Err(BackupError::Io {
            path: p.to_path_buf(),
            source: e,
        }),
    }
}

/// What `restore` did.
#[derive(Debug, Clone)]
pub struct RestoreReport {
    /// Files written.
    pub files: usize,
    /// Accounts in the restored master database (any status).
    pub accounts: usize,
}

/// Rebuilds `master_db` and `data_dir` from the backup in `from`. Refuses unless the master
/// database does not exist (not even as a dangling link) and the data directory is missing or
/// empty. Every file is checked first: a regular file reached without following a link, its
/// size and checksum, its kind matching its path and its schema. Everything is written into
/// temporary siblings (files 0600, folders 0700, whatever the backup's modes were) and renamed
/// into place at the end, so a restore that fails half-way leaves nothing the next one
/// refuses. Account paths in the restored master database are rewritten to this data
/// directory.
pub fn restore(from: &Path, master_db: &Path, data_dir: &Path) -> Result<RestoreReport, BackupError> {
    let manifest = read_manifest(from)?;
    let bad = |reason: String| BackupError::BadBackup {
        path: from.to_path_buf(),
        reason,
    };
    // `symlink_metadata`: a dangling link at the master's path would be written through.
    if std::fs::symlink_metadata(master_db).is_ok() {
        return Err(BackupError::RestoreTargetNotEmpty(master_db.to_path_buf()));
    }
    if std::fs::symlink_metadata(data_dir).is_ok_and(|m| !m.is_dir()) || dir_has_entries(data_dir)? {
        return Err(BackupError::RestoreTargetNotEmpty(data_dir.to_path_buf()));
    }
    // Verify everything first, so a damaged backup writes nothing.
    let mut plan = Vec::with_capacity(manifest.files.len());
    for f in &manifest.files {
        let rel = safe_relative(&f.path).ok_or_else(|| bad(format!("unsafe path {:?} in the manifest", f.path)))?;
        check_kind(&rel, f.kind).map_err(|r| bad(format!("{}: {r}", f.path)))?;
        let src = regular_file_inside(from, &rel).map_err(|r| bad(format!("{}: {r}", f.path)))?;
        let (bytes, sha) = hash_file(&src).map_err(io(&src))?;
        if bytes != f.bytes || sha != f.sha256 {
            return Err(bad(format!("{} does not match its checksum", f.path)));
        }
        check_schema(&src, f.kind).map_err(|r| bad(format!("{}: {r}", f.path)))?;
        let inside = match rel.strip_prefix(DATA_NAME) {
            Ok(inside) => Some(inside.to_path_buf()),
            Err(_) => None,
        };
        plan.push((src, f.kind, inside));
    }
    let staging = Staging::new(master_db, data_dir);
    let res = staging.fill(&plan, data_dir);
    let accounts = match res {
        Ok(n) => n,
        Err(e) => {
            staging.clean();
            return Err(e);
        }
    };
    staging.commit(master_db, data_dir)?;
    Ok(RestoreReport {
        files: plan.len(),
        accounts,
    })
}

/// Reads and checks `manifest.json` (a regular file, a known format, a complete backup with a
/// master database).
fn read_manifest(from: &Path) -> Result<Manifest, BackupError> {
    let bad = |reason: String| BackupError::BadBackup {
        path: from.to_path_buf(),
        reason,
    };
    let manifest_path = regular_file_inside(from, Path::new(MANIFEST)).map_err(|r| bad(format!("{MANIFEST}: {r}")))?;
    let text = std::fs::read(&manifest_path).map_err(io(&manifest_path))?;
    let manifest: Manifest = serde_json::from_slice(&text)?;
    if manifest.format != FORMAT {
        return Err(bad(format!("manifest format {} is not {FORMAT}", manifest.format)));
    }
    if !manifest.failed.is_empty() {
        return Err(bad(format!(
            "the backup is incomplete ({} files could not be copied)",
            manifest.failed.len()
        )));
    }
    let masters = manifest.files.iter().filter(|f| f.kind == EntryKind::Master).count();
    if masters != 1 {
        return Err(bad(format!("the manifest lists {masters} master databases, not one")));
    }
    Ok(manifest)
}

/// `from/rel` when every component below `from` is a real folder and the last a regular file:
/// a link inside a backup could make restore read (and install) any file on the machine.
fn regular_file_inside(from: &Path, rel: &Path) -> Result<PathBuf, String> {
    let mut at = from.to_path_buf();
    let parts: Vec<_> = rel.components().collect();
    for (i, c) in parts.iter().enumerate() {
        at.push(c);
        let m = std::fs::symlink_metadata(&at).map_err(|e| e.to_string())?;
        let last = i + 1 == parts.len();
        if m.file_type().is_symlink() {
            return Err("is a symbolic link (or lies under one); refusing it".into());
        }
        if last && !m.is_file() {
            return Err("is not a regular file".into());
        }
        if !last && !m.is_dir() {
            return Err("lies under something that is not a folder".into());
        }
    }
    Ok(at)
}

/// The kind a manifest gives a file must be the kind its path says: the manifest is not
/// trusted to turn a session into the master database.
fn check_kind(rel: &Path, kind: EntryKind) -> Result<(), String> {
    let s = rel.to_string_lossy();
    let data = |inside: &str| format!("{DATA_NAME}/{inside}");
    let fits = match kind {
        EntryKind::Master => s == MASTER_NAME,
        EntryKind::Secret => s == data(".secret"),
        EntryKind::SimWorld => s == data(".sim/world.db"),
        EntryKind::Session | EntryKind::BotData => {
            let parts: Vec<&str> = s.split('/').collect();
            match parts.as_slice() {
                [d, folder, name] if *d == DATA_NAME => parse_account_file(name)
                    .filter(|p| p.suffix.is_empty() && kind_of(p.kind) == kind)
                    .is_some_and(|p| p.telegram_id.to_string() == *folder),
                _ => false,
            }
        }
    };
    if fits {
        Ok(())
    } else {
        Err(format!("listed as {kind:?}, which its path is not"))
    }
}

/// A database's tables must fit its kind: the master has `whatsapp_accounts`, and no other
/// file is a master database (bot data from any tgwa version, or the Go bot's, has no fixed
/// table to insist on).
fn check_schema(path: &Path, kind: EntryKind) -> Result<(), String> {
    if kind == EntryKind::Secret {
        return Ok(());
    }
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)
        .map_err(|e| format!("opening: {e}"))?;
    let has = |table: &str| -> Result<bool, String> {
        conn.query_row(
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = ?1",
            [table],
            |r| r.get::<_, i64>(0),
        )
        .map(|n| n > 0)
        .map_err(|e| format!("not a readable SQLite database: {e}"))
    };
    let master = has("whatsapp_accounts")?;
    let fits = match kind {
        EntryKind::Master => master,
        EntryKind::BotData | EntryKind::Session | EntryKind::SimWorld => !master,
        EntryKind::Secret => true,
    };
    if fits {
        Ok(())
    } else {
        Err(format!("its tables are not those of a {kind:?} database"))
    }
}

/// The temporary siblings a restore writes into before renaming them into place.
struct Staging {
    /// Becomes the data directory.
    data: PathBuf,
    /// Becomes the master database.
    master: PathBuf,
}

impl Staging {
    fn new(master_db: &Path, data_dir: &Path) -> Self {
        let sibling = |p: &Path| {
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            p.with_file_name(format!(".{name}.restoring-{}", std::process::id()))
        };
        Self {
            data: sibling(data_dir),
            master: sibling(master_db),
        }
    }

    /// Writes every planned file into the staging paths; returns the restored account count.
    fn fill(&self, plan: &[(PathBuf, EntryKind, Option<PathBuf>)], data_dir: &Path) -> Result<usize, BackupError> {
        create_private_dir(&self.data).map_err(io(&self.data))?;
        for (src, kind, inside) in plan {
            let dest = match (kind, inside) {
                (EntryKind::Master, _) => self.master.clone(),
                (_, Some(inside)) => self.data.join(inside),
                (_, None) => continue,
            };
            if let Some(parent) = dest.parent() {
                if parent != Path::new("") {
                    create_private_dir(parent).map_err(io(parent))?;
                }
            }
            copy_private(src, &dest).map_err(io(&dest))?;
        }
        rewrite_paths(&self.master, &Layout::new(data_dir))
    }

    /// Renames the staged data directory and master database into place (the master last:
    /// its presence is what says a restore happened).
    fn commit(&self, master_db: &Path, data_dir: &Path) -> Result<(), BackupError> {
        if let Err(e) = std::fs::rename(&self.data, data_dir) {
            self.clean();
            return Err(BackupError::Io {
                path: data_dir.to_path_buf(),
                source: e,
            });
        }
        std::fs::rename(&self.master, master_db).map_err(io(master_db))?;
        set_mode(data_dir, 0o700).map_err(io(data_dir))
    }

    /// Removes whatever was staged.
    fn clean(&self) {
        let _ = std::fs::remove_dir_all(&self.data);
        for suffix in ["", "-journal", "-wal", "-shm"] {
            let mut p = self.master.clone().into_os_string();
            p.push(suffix);
            let _ = std::fs::remove_file(PathBuf::from(p));
        }
    }
}

/// Copies `src`'s bytes into a new file `dest` created 0600 without following a link; the
/// source's permission bits are never copied (a backup that lost its modes must not make a
/// session key readable by everyone).
fn copy_private(src: &Path, dest: &Path) -> std::io::Result<()> {
    let mut from = open_no_follow(src)?;
    let mut to = create_exclusive(dest)?;
    std::io::copy(&mut from, &mut to)?;
    to.sync_all()?;
    set_mode(dest, 0o600)
}

/// Opens a file for reading, refusing a symbolic link.
fn open_no_follow(p: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(p)
}

/// Creates a new file 0600; fails if anything (a link included) is already at `p`.
fn create_exclusive(p: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(p)
}

fn set_mode(p: &Path, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode))
}

/// Points every account row at its files under the restored data directory (the backup may
/// come from a server with another data directory).
fn rewrite_paths(master_db: &Path, layout: &Layout) -> Result<usize, BackupError> {
    let mut conn = Connection::open_with_flags(master_db, OpenFlags::SQLITE_OPEN_READ_WRITE).map_err(DbError::from)?;
    crate::db::migrate(&mut conn, Schema::Master)?;
    let tx = conn.transaction().map_err(DbError::from)?;
    let rows: Vec<(i64, i64, String)> = {
        let mut st = tx
            .prepare("SELECT id, telegram_id, phone_number FROM whatsapp_accounts")
            .map_err(DbError::from)?;
        let it = st
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .map_err(DbError::from)?;
        it.collect::<Result<_, _>>().map_err(DbError::from)?
    };
    for (id, tid, phone) in &rows {
        let (Ok(t), Ok(p)) = (
            crate::ids::TelegramId::new(*tid),
            crate::ids::PhoneNumber::from_digits(phone),
        ) else {
            continue;
        };
        tx.execute(
            "UPDATE whatsapp_accounts SET db_path = ?2, bot_data_db_path = ?3 WHERE id = ?1",
            rusqlite::params![
                id,
                layout.session_file(t, &p).to_string_lossy(),
                layout.bot_data_file(t, &p).to_string_lossy()
            ],
        )
        .map_err(DbError::from)?;
    }
    tx.commit().map_err(DbError::from)?;
    Ok(rows.len())
}

/// A manifest path as a relative path with no `..`, root or prefix component.
fn safe_relative(p: &str) -> Option<PathBuf> {
    use std::path::Component;
    let path = Path::new(p);
    path.components()
        .all(|c| matches!(c, Component::Normal(_)))
        .then(|| path.to_path_buf())
        .filter(|p| !p.as_os_str().is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn live_db(path: &Path, rows: usize) -> Connection {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let c = Connection::open(path).unwrap();
        c.execute_batch("PRAGMA journal_mode=WAL; CREATE TABLE t (x TEXT);")
            .unwrap();
        for i in 0..rows {
            c.execute("INSERT INTO t VALUES (?1)", [format!("row {i}")]).unwrap();
        }
        c
    }

    #[test]
    fn unsafe_manifest_paths_are_refused() {
        assert!(safe_relative("data/1/x.db").is_some());
        for p in ["../x", "/etc/passwd", "data/../../x", ""] {
            assert!(safe_relative(p).is_none(), "{p}");
        }
    }

    #[test]
    fn a_live_wal_database_is_copied_with_its_uncheckpointed_rows() {
        let dir = tempfile::tempdir().unwrap();
        let master = dir.path().join("bot_data.db");
        {
            let mut c = Connection::open(&master).unwrap();
            crate::db::migrate(&mut c, Schema::Master).unwrap();
        }
        let data = dir.path().join("DB USER TELEGRAM");
        let session = data.join("42/whatsmeow-42-6281234567890.db");
        // Kept open with its rows only in -wal: a file copy of the main file would miss them.
        let keep = live_db(&session, 50);
        keep.execute_batch("PRAGMA wal_autocheckpoint=0").unwrap();
        for i in 0..50 {
            keep.execute("INSERT INTO t VALUES (?1)", [format!("late {i}")])
                .unwrap();
        }
        let out = dir.path().join("b");
        let report = backup(&master, &data, &out).unwrap();
        assert!(report.complete(), "{:?}", report.manifest.failed);
        let copy = Connection::open(out.join("data/42/whatsmeow-42-6281234567890.db")).unwrap();
        let n: i64 = copy.query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0)).unwrap();
        assert_eq!(n, 100);
        drop(keep);
    }

    #[test]
    fn a_missing_account_file_is_named_and_the_rest_is_copied() {
        let dir = tempfile::tempdir().unwrap();
        let master = dir.path().join("bot_data.db");
        {
            let mut c = Connection::open(&master).unwrap();
            crate::db::migrate(&mut c, Schema::Master).unwrap();
            c.execute(
                "INSERT INTO whatsapp_accounts (telegram_id, phone_number, db_path, bot_data_db_path, status,
                 status_changed_at, created_at, updated_at) VALUES (7, '6281234567890', 'x', 'y', 'active', 1, 1, 1)",
                [],
            )
            .unwrap();
        }
        let data = dir.path().join("data");
        drop(live_db(&data.join("7/whatsmeow-7-6281234567890.db"), 3));
        let report = backup(&master, &data, &dir.path().join("b")).unwrap();
        assert!(!report.complete());
        assert_eq!(report.manifest.failed.len(), 1);
        assert!(report.manifest.failed[0]
            .source
            .ends_with("bot_data-7-6281234567890.db"));
        assert_eq!(report.manifest.files.len(), 2, "master and session still copied");
        // An incomplete backup is not restored.
        let err = restore(&dir.path().join("b"), &dir.path().join("m2.db"), &dir.path().join("d2")).unwrap_err();
        assert!(matches!(err, BackupError::BadBackup { .. }), "{err}");
    }

    #[test]
    fn restore_refuses_a_used_target_and_a_tampered_copy() {
        let dir = tempfile::tempdir().unwrap();
        let master = dir.path().join("bot_data.db");
        {
            let mut c = Connection::open(&master).unwrap();
            crate::db::migrate(&mut c, Schema::Master).unwrap();
        }
        let data = dir.path().join("data");
        drop(live_db(&data.join("7/bot_data-7-6281234567890.db"), 3));
        let b = dir.path().join("b");
        assert!(backup(&master, &data, &b).unwrap().complete());
        assert!(matches!(
            backup(&master, &data, &b),
            Err(BackupError::TargetNotEmpty(_))
        ));
        assert!(matches!(
            restore(&b, &master, &dir.path().join("new")),
            Err(BackupError::RestoreTargetNotEmpty(_))
        ));
        assert!(matches!(
            restore(&b, &dir.path().join("m2.db"), &data),
            Err(BackupError::RestoreTargetNotEmpty(_))
        ));
        let r = restore(&b, &dir.path().join("m2.db"), &dir.path().join("d2")).unwrap();
        assert_eq!(r.files, 2);
        std::fs::write(b.join("data/7/bot_data-7-6281234567890.db"), b"tampered").unwrap();
        assert!(matches!(
            restore(&b, &dir.path().join("m3.db"), &dir.path().join("d3")),
            Err(BackupError::BadBackup { .. })
        ));
        assert!(!dir.path().join("m3.db").exists(), "nothing written from a bad backup");
    }

    /// A master database, one account's two files and the secret, backed up into `b`.
    fn backed_up(dir: &Path) -> PathBuf {
        let master = dir.join("bot_data.db");
        {
            let mut c = Connection::open(&master).unwrap();
            crate::db::migrate(&mut c, Schema::Master).unwrap();
        }
        let data = dir.join("data");
        drop(live_db(&data.join("7/whatsmeow-7-6281234567890.db"), 3));
        let bd = data.join("7/bot_data-7-6281234567890.db");
        std::fs::create_dir_all(bd.parent().unwrap()).unwrap();
        let mut c = Connection::open(&bd).unwrap();
        crate::db::migrate(&mut c, Schema::Account).unwrap();
        drop(c);
        std::fs::write(data.join(".secret"), b"0123456789abcdef0123456789abcdef").unwrap();
        mode_to(&data.join(".secret"), 0o644);
        let b = dir.join("b");
        let r = backup(&master, &data, &b).unwrap();
        assert!(r.complete(), "{:?}", r.manifest.failed);
        b
    }

    fn mode_of(p: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o777
    }

    fn mode_to(p: &Path, m: u32) {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap();
    }

    /// Every path under `root` (folders first), deepest last.
    fn walk(root: &Path) -> Vec<PathBuf> {
        let mut out = vec![root.to_path_buf()];
        let mut i = 0;
        while i < out.len() {
            if out[i].is_dir() {
                let mut kids: Vec<PathBuf> = std::fs::read_dir(&out[i]).unwrap().map(|e| e.unwrap().path()).collect();
                kids.sort();
                out.extend(kids);
            }
            i += 1;
        }
        out
    }

    fn rewrite_manifest(b: &Path, edit: impl FnOnce(&mut Manifest)) {
        let mut m: Manifest = serde_json::from_slice(&std::fs::read(b.join(MANIFEST)).unwrap()).unwrap();
        edit(&mut m);
        std::fs::write(b.join(MANIFEST), serde_json::to_vec(&m).unwrap()).unwrap();
    }

    #[test]
    fn the_backup_keeps_the_secret_private_whatever_its_source_mode() {
        let dir = tempfile::tempdir().unwrap();
        let b = backed_up(dir.path());
        assert_eq!(mode_of(&b.join("data/.secret")), 0o600);
        for p in walk(&b) {
            let want = if p.is_dir() { 0o700 } else { 0o600 };
            assert_eq!(mode_of(&p), want, "{}", p.display());
        }
    }

    #[test]
    fn restore_makes_files_0600_and_folders_0700_whatever_the_backup_says() {
        let dir = tempfile::tempdir().unwrap();
        let b = backed_up(dir.path());
        // A backup that lost its modes (`cp -r`, `tar` without `-p`, object storage).
        for p in walk(&b) {
            mode_to(&p, if p.is_dir() { 0o755 } else { 0o644 });
        }
        let (m2, d2) = (dir.path().join("m2.db"), dir.path().join("d2"));
        restore(&b, &m2, &d2).unwrap();
        assert_eq!(mode_of(&m2), 0o600);
        for p in walk(&d2) {
            let want = if p.is_dir() { 0o700 } else { 0o600 };
            assert_eq!(mode_of(&p), want, "{}", p.display());
        }
        assert!(d2.join(".secret").is_file() && d2.join("7/whatsmeow-7-6281234567890.db").is_file());
    }

    #[test]
    fn restore_refuses_links_inside_the_backup() {
        let dir = tempfile::tempdir().unwrap();
        let b = backed_up(dir.path());
        // The session replaced by a link to a file of the same bytes elsewhere.
        let s = b.join("data/7/whatsmeow-7-6281234567890.db");
        let elsewhere = dir.path().join("elsewhere.db");
        std::fs::rename(&s, &elsewhere).unwrap();
        std::os::unix::fs::symlink(&elsewhere, &s).unwrap();
        let err = restore(&b, &dir.path().join("m2.db"), &dir.path().join("d2")).unwrap_err();
        assert!(err.to_string().contains("symbolic link"), "{err}");
        assert!(!dir.path().join("m2.db").exists() && !dir.path().join("d2").exists());
        // A linked folder.
        std::fs::remove_file(&s).unwrap();
        std::fs::rename(&elsewhere, &s).unwrap();
        let real = dir.path().join("real7");
        std::fs::rename(b.join("data/7"), &real).unwrap();
        std::os::unix::fs::symlink(&real, b.join("data/7")).unwrap();
        let err = restore(&b, &dir.path().join("m2.db"), &dir.path().join("d2")).unwrap_err();
        assert!(err.to_string().contains("symbolic link"), "{err}");
    }

    #[test]
    fn restore_checks_kinds_against_paths_and_schemas() {
        let dir = tempfile::tempdir().unwrap();
        let b = backed_up(dir.path());
        let (m2, d2) = (dir.path().join("m2.db"), dir.path().join("d2"));
        // A session listed as the master (and the master entry dropped).
        rewrite_manifest(&b, |m| {
            m.files.retain(|f| f.kind != EntryKind::Master);
            for f in &mut m.files {
                if f.kind == EntryKind::Session {
                    f.kind = EntryKind::Master;
                }
            }
        });
        let err = restore(&b, &m2, &d2).unwrap_err();
        assert!(err.to_string().contains("Master"), "{err}");
        assert!(!m2.exists());
        // The session's bytes put where the master goes, with a checksum to match.
        let b = {
            let d = dir.path().join("second");
            std::fs::create_dir(&d).unwrap();
            backed_up(&d)
        };
        std::fs::copy(b.join("data/7/whatsmeow-7-6281234567890.db"), b.join(MASTER_NAME)).unwrap();
        let (bytes, sha) = hash_file(&b.join(MASTER_NAME)).unwrap();
        rewrite_manifest(&b, |m| {
            for f in &mut m.files {
                if f.kind == EntryKind::Master {
                    (f.bytes, f.sha256) = (bytes, sha.clone());
                }
            }
        });
        let err = restore(&b, &m2, &d2).unwrap_err();
        assert!(err.to_string().contains("tables"), "{err}");
        assert!(!m2.exists());
    }

    #[test]
    fn restore_refuses_a_dangling_link_at_the_master_path() {
        let dir = tempfile::tempdir().unwrap();
        let b = backed_up(dir.path());
        let target = dir.path().join("somewhere-else.db");
        let m2 = dir.path().join("m2.db");
        std::os::unix::fs::symlink(&target, &m2).unwrap();
        let err = restore(&b, &m2, &dir.path().join("d2")).unwrap_err();
        assert!(matches!(err, BackupError::RestoreTargetNotEmpty(_)), "{err}");
        assert!(!target.exists(), "written through the link");
    }

    #[test]
    fn a_restore_that_fails_half_way_leaves_the_target_as_it_was() {
        let dir = tempfile::tempdir().unwrap();
        let b = backed_up(dir.path());
        // A master from a newer tgwa: every file is copied before the path rewrite refuses it.
        {
            let c = Connection::open(b.join(MASTER_NAME)).unwrap();
            c.pragma_update(None, "user_version", 999).unwrap();
        }
        let (bytes, sha) = hash_file(&b.join(MASTER_NAME)).unwrap();
        rewrite_manifest(&b, |m| {
            for f in &mut m.files {
                if f.kind == EntryKind::Master {
                    (f.bytes, f.sha256) = (bytes, sha.clone());
                }
            }
        });
        let (m2, d2) = (dir.path().join("m2.db"), dir.path().join("d2"));
        assert!(restore(&b, &m2, &d2).is_err());
        assert!(std::fs::symlink_metadata(&m2).is_err(), "a master was left behind");
        assert!(!dir_has_entries(&d2).unwrap(), "files were left behind");
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains("restoring"))
            .collect();
        assert!(left.is_empty(), "{left:?}");
        // The next restore from a good backup is not refused.
        let good = {
            let d = dir.path().join("second");
            std::fs::create_dir(&d).unwrap();
            backed_up(&d)
        };
        restore(&good, &m2, &d2).unwrap();
    }

    #[test]
    fn backup_refuses_a_folder_open_to_others_and_never_writes_through_a_link() {
        let dir = tempfile::tempdir().unwrap();
        let master = dir.path().join("bot_data.db");
        {
            let mut c = Connection::open(&master).unwrap();
            crate::db::migrate(&mut c, Schema::Master).unwrap();
        }
        let data = dir.path().join("data");
        std::fs::create_dir(&data).unwrap();
        let open = dir.path().join("open");
        std::fs::create_dir(&open).unwrap();
        mode_to(&open, 0o777);
        let err = backup(&master, &data, &open).unwrap_err();
        assert!(matches!(err, BackupError::UnsafeTarget(..)), "{err}");
        // A link planted where the master's copy goes is not written through.
        let victim = dir.path().join("victim.db");
        std::fs::write(&victim, b"").unwrap();
        let mine = dir.path().join("mine");
        std::fs::create_dir(&mine).unwrap();
        mode_to(&mine, 0o700);
        std::fs::create_dir(mine.join("x")).unwrap();
        std::fs::remove_dir(mine.join("x")).unwrap();
        assert!(!dir_has_entries(&mine).unwrap());
        let linked = dir.path().join("linked");
        std::os::unix::fs::symlink(&mine, &linked).unwrap();
        let err = backup(&master, &data, &linked).unwrap_err();
        assert!(matches!(err, BackupError::UnsafeTarget(..)), "{err}");
        assert!(!dir_has_entries(&mine).unwrap());
        assert_eq!(std::fs::metadata(&victim).unwrap().len(), 0);
        let to = dir.path().join("fresh");
        let r = backup(&master, &data, &to).unwrap();
        assert!(r.complete());
        assert_eq!(mode_of(&to), 0o700);
        assert!(
            create_exclusive(&to.join(MASTER_NAME)).is_err(),
            "an existing copy is never reused"
        );
    }
}
