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

use crate::db::{create_private_file, DbError, Schema};
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
    create_private_file(&path).map_err(io(&path))?;
    std::fs::write(&path, serde_json::to_vec_pretty(&manifest)?).map_err(io(&path))?;
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
    create_private_file(dest).map_err(|e| format!("creating the copy: {e}"))?;
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
    create_private_file(dest).map_err(|e| format!("creating the copy: {e}"))?;
    std::fs::copy(source, dest).map_err(|e| format!("copying: {e}"))?;
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
/// database does not exist and the data directory is missing or empty. Every file's size and
/// checksum is verified before anything is written. Account paths in the restored master
/// database are rewritten to this data directory.
pub fn restore(from: &Path, master_db: &Path, data_dir: &Path) -> Result<RestoreReport, BackupError> {
    let manifest_path = from.join(MANIFEST);
    let text = std::fs::read(&manifest_path).map_err(io(&manifest_path))?;
    let manifest: Manifest = serde_json::from_slice(&text)?;
    let bad = |reason: String| BackupError::BadBackup {
        path: from.to_path_buf(),
        reason,
    };
    if manifest.format != FORMAT {
        return Err(bad(format!("manifest format {} is not {FORMAT}", manifest.format)));
    }
    if !manifest.failed.is_empty() {
        return Err(bad(format!(
            "the backup is incomplete ({} files could not be copied)",
            manifest.failed.len()
        )));
    }
    if !manifest.files.iter().any(|f| f.kind == EntryKind::Master) {
        return Err(bad("the manifest lists no master database".into()));
    }
    if master_db.exists() {
        return Err(BackupError::RestoreTargetNotEmpty(master_db.to_path_buf()));
    }
    if dir_has_entries(data_dir)? {
        return Err(BackupError::RestoreTargetNotEmpty(data_dir.to_path_buf()));
    }
    // Verify everything first, so a damaged backup writes nothing.
    let mut plan = Vec::with_capacity(manifest.files.len());
    for f in &manifest.files {
        let rel = safe_relative(&f.path).ok_or_else(|| bad(format!("unsafe path {:?} in the manifest", f.path)))?;
        let src = from.join(&rel);
        let (bytes, sha) = hash_file(&src).map_err(io(&src))?;
        if bytes != f.bytes || sha != f.sha256 {
            return Err(bad(format!("{} does not match its checksum", f.path)));
        }
        let dest = match (f.kind, rel.strip_prefix(DATA_NAME)) {
            (EntryKind::Master, _) => master_db.to_path_buf(),
            (_, Ok(inside)) => data_dir.join(inside),
            (_, Err(_)) => return Err(bad(format!("{} is outside {DATA_NAME}/", f.path))),
        };
        plan.push((src, dest));
    }
    create_private_dir(data_dir).map_err(io(data_dir))?;
    for (src, dest) in &plan {
        if let Some(parent) = dest.parent() {
            if parent != Path::new("") {
                create_private_dir(parent).map_err(io(parent))?;
            }
        }
        create_private_file(dest).map_err(io(dest))?;
        std::fs::copy(src, dest).map_err(io(dest))?;
    }
    let accounts = rewrite_paths(master_db, &Layout::new(data_dir))?;
    Ok(RestoreReport {
        files: plan.len(),
        accounts,
    })
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
}
