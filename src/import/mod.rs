//! Moving from the Go bot: its whatsmeow session files and its master database into tgwa's,
//! without re-pairing (`tgwa import`, and the same step at the start of `tgwa run`).
//!
//! For every `whatsmeow-{tid}-{phone}.db` in a user folder that is a whatsmeow store (told by
//! its schema, not its name):
//! 1. refuse it if it or its `-wal`/`-shm` changed in the last [`ImportOptions::min_age`]
//!    (the Go bot may still be running, and WhatsApp would keep only one of the two);
//! 2. copy it (with `-wal`) into a scratch folder and work on the copy only, so the original
//!    is never opened by SQLite and stays byte for byte;
//! 3. check it (`quick_check`), read its device (refused: none, or not the number in the
//!    name), convert it ([`convert`]) and write a new whatsapp-rust store through the crate's
//!    own store API ([`store`]), then read that back through the crate and tgwa's probe;
//! 4. unless `dry_run`: keep the originals in `DB USER TELEGRAM/.imported/<timestamp>/<tid>/`
//!    (hard link or copy of the database, the side files moved), put the new store at the
//!    session path with one `rename`, set aside a Go-bot `bot_data-*.db` beside them (a fresh
//!    tgwa one is created), and register the account under the folder's Telegram ID through
//!    [`AccountManager::add`]. If registration fails, the originals go back.
//!
//! A master database that is the Go bot's (its `whatsapp_accounts` has no `telegram_id`) is
//! moved to `.imported/<timestamp>/` before tgwa creates its own; tgwa's migrations never run
//! on it. Nothing is ever deleted. A second run finds no whatsmeow files and does nothing.

pub mod convert;
pub mod gobot;
pub mod store;
pub mod whatsmeow;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::Serialize;
use tracing::{info, warn};

use crate::account::{AccountError, AccountStatus};
use crate::config::Config;
use crate::db::DbError;
use crate::ids::{AccountId, PhoneNumber, TelegramId};
use crate::layout::{create_private_dir, parse_account_file, with_side_files, FileKind, Layout};
use crate::manager::AccountManager;
use crate::wa::WaBackend;

pub use gobot::DbKind;
pub use store::Counts;

/// The folder under the data directory that keeps every original.
pub const IMPORTED_DIR: &str = ".imported";

/// What an import may do.
#[derive(Debug, Clone, Copy)]
pub struct ImportOptions {
    /// Report only: change no byte and no row.
    pub dry_run: bool,
    /// Files changed more recently than this are refused (`TGWA_IMPORT_MIN_AGE_SECS`).
    pub min_age: Duration,
}

/// What an entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ImportKind {
    /// A whatsmeow session file.
    Session,
    /// A Go bot's per-account bot data file.
    BotData,
    /// The Go bot's master database.
    MasterDb,
}

/// What the import did (or would do) with an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ImportOutcome {
    /// Converted, swapped in and registered.
    Imported,
    /// Dry run: converted and checked in a scratch folder; would be imported.
    WouldImport,
    /// Kept in `.imported/` and replaced by a fresh tgwa file.
    SetAside,
    /// Dry run: would be set aside.
    WouldSetAside,
    /// Left exactly as it was; see the reason.
    Refused,
}

/// One file and what became of it.
#[derive(Debug, Clone, Serialize)]
pub struct ImportEntry {
    /// Relative to the data directory (the master database: its configured path).
    pub path: String,
    pub kind: ImportKind,
    pub outcome: ImportOutcome,
    /// The Telegram ID of its folder: the account's owner.
    pub telegram_id: Option<TelegramId>,
    /// The phone number, masked to its last four digits.
    pub phone: Option<String>,
    /// The account registered for it.
    pub account_id: Option<AccountId>,
    /// Why it was refused, or a note.
    pub reason: Option<String>,
    /// Where the original went, relative to the data directory.
    pub kept_at: Option<String>,
    /// What the new store holds (sessions only).
    pub counts: Option<Counts>,
    /// Rows of the old store left out (no whatsapp-rust counterpart, malformed).
    pub skipped_rows: usize,
}

/// Counts for the whole run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ImportSummary {
    pub dry_run: bool,
    /// whatsmeow session files found.
    pub sessions_found: usize,
    pub imported: usize,
    pub would_import: usize,
    pub refused: usize,
    /// Go bot databases set aside (or that would be).
    pub set_aside: usize,
    /// Accounts listed in the Go bot's master database, when there was one.
    pub go_master_accounts: Option<usize>,
    /// `.imported/<timestamp>` of this run, when it kept anything.
    pub imported_dir: Option<String>,
}

/// The whole report.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ImportReport {
    pub entries: Vec<ImportEntry>,
    pub summary: ImportSummary,
}

/// Why an import could not run at all (one bad file never ends up here).
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("the master database {path}: {reason}")]
    Master { path: PathBuf, reason: String },
    #[error("reading the data directory: {0}")]
    DataDir(std::io::Error),
    #[error("keeping originals under .imported: {0}")]
    Keep(std::io::Error),
    #[error("{0}")]
    Db(#[from] DbError),
    #[error("opening tgwa's master database: {0}")]
    Account(#[from] AccountError),
    #[error("starting the WhatsApp backend: {0}")]
    Backend(#[from] crate::wa::WaError),
}

/// A whatsmeow session found in its owner's folder.
#[derive(Debug, Clone)]
struct Found {
    tid: TelegramId,
    phone: PhoneNumber,
    session: PathBuf,
    bot_data: PathBuf,
}

/// Size and modification time of each of a database's files (absent ones are `None`).
type Snapshot = Vec<(PathBuf, Option<(u64, SystemTime)>)>;

fn snapshot(db: &Path) -> std::io::Result<Snapshot> {
    with_side_files(db)
        .into_iter()
        .map(|p| match std::fs::symlink_metadata(&p) {
            Ok(m) => Ok((p, Some((m.len(), m.modified()?)))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok((p, None)),
            Err(e) => Err(e),
        })
        .collect()
}

/// Seconds since the newest change among the snapshot's files. A file dated in the future
/// was not written since (a write now would date it now), so it does not count as recent.
fn age(s: &Snapshot) -> Duration {
    let now = SystemTime::now();
    s.iter()
        .filter_map(|(_, m)| m.and_then(|(_, t)| now.duration_since(t).ok()))
        .min()
        .unwrap_or(Duration::MAX)
}

/// How far past this machine's clock the snapshot's latest file is dated, if it is.
fn dated_ahead(s: &Snapshot) -> Option<Duration> {
    let now = SystemTime::now();
    s.iter()
        .filter_map(|(_, m)| m.and_then(|(_, t)| t.duration_since(now).ok()))
        .filter(|d| *d > Duration::from_secs(2))
        .max()
}

/// The note for a file dated in the future.
fn future_note(ahead: Duration) -> String {
    format!(
        "dated {} s in the future (this machine's clock or the file's date is wrong); not written since, so imported as it is",
        ahead.as_secs()
    )
}

/// The first of the snapshot's files that is a symbolic link: never read through.
fn linked_file(s: &Snapshot) -> Option<&Path> {
    s.iter()
        .filter(|(_, m)| m.is_some())
        .map(|(p, _)| p.as_path())
        .find(|p| std::fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_symlink()))
}

fn rel(root: &Path, p: &Path) -> String {
    p.strip_prefix(root).unwrap_or(p).to_string_lossy().into_owned()
}

/// Whether a session file may be a whatsmeow store: its main file says so, or it is not a
/// readable database at all (then the scratch copy decides, and a corrupt one is refused
/// with its reason). A file whose main part holds whatsapp-rust's `device` table is tgwa's.
fn may_be_whatsmeow(path: &Path) -> bool {
    let Ok(conn) = crate::wa::real::probe::open_immutable(path) else {
        return true;
    };
    let names: rusqlite::Result<Vec<String>> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
        .and_then(|mut st| st.query_map([], |r| r.get(0))?.collect());
    match names {
        Err(_) => true,
        Ok(n) if n.iter().any(|t| t == "whatsmeow_device") => true,
        Ok(n) if n.iter().any(|t| t == "device") => false,
        // An empty main file: a brand-new store (tgwa makes those before pairing) unless a
        // `-wal` holds what whatsmeow wrote.
        Ok(n) if n.is_empty() => {
            let mut wal = path.as_os_str().to_owned();
            wal.push("-wal");
            std::fs::metadata(PathBuf::from(wal)).is_ok_and(|m| m.len() > 0)
        }
        Ok(_) => false,
    }
}

/// Finds whatsmeow session files in the user folders. Blocking.
fn find(layout: &Layout) -> std::io::Result<Vec<Found>> {
    let root = layout.root();
    let mut out = Vec::new();
    let mut dirs: Vec<(TelegramId, PathBuf)> = match std::fs::read_dir(root) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e),
        Ok(rd) => rd
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .filter_map(|e| Some((e.file_name().to_str()?.parse::<TelegramId>().ok()?, e.path())))
            .collect(),
    };
    dirs.sort();
    for (tid, dir) in dirs {
        let mut names: Vec<String> = std::fs::read_dir(&dir)?
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
            .filter_map(|e| e.file_name().to_str().map(str::to_string))
            .collect();
        names.sort();
        for name in names {
            let Some(p) = parse_account_file(&name) else { continue };
            if p.kind != FileKind::Session || !p.suffix.is_empty() || p.telegram_id != tid {
                continue;
            }
            let session = dir.join(&name);
            if !may_be_whatsmeow(&session) {
                continue;
            }
            out.push(Found {
                tid,
                bot_data: layout.bot_data_file(tid, &p.phone),
                phone: p.phone,
                session,
            });
        }
    }
    Ok(out)
}

/// A scratch folder for copies and the new store; removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(base: &Path, name: &str) -> std::io::Result<Self> {
        let p = base.join(name);
        create_private_dir(&p)?;
        Ok(Self(p))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        // Only copies and derived files live here; the originals are never in it.
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn stamp() -> String {
    chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ").to_string()
}

/// What reading and converting one session produced.
enum Prepared {
    /// Not a whatsmeow store after all (a tgwa store whose schema sat in its WAL).
    NotWhatsmeow,
    Refused(String),
    Ready {
        converted: Box<convert::Converted>,
        jid: String,
        snap: Snapshot,
    },
}

/// The `.imported/<ts>/` copy that is the very same file (same inode) as `session`: left
/// by an import interrupted between keeping the original and swapping in the new store (its
/// `-wal` may already sit there, so converting what is left would lose writes).
fn interrupted_import(root: &Path, tid: TelegramId, session: &Path) -> Option<PathBuf> {
    use std::os::unix::fs::MetadataExt;
    let me = std::fs::metadata(session).ok()?;
    let name = session.file_name()?;
    std::fs::read_dir(root.join(IMPORTED_DIR))
        .ok()?
        .filter_map(Result::ok)
        .map(|e| e.path().join(tid.to_string()).join(name))
        .find(|p| std::fs::metadata(p).is_ok_and(|m| m.dev() == me.dev() && m.ino() == me.ino()))
}

/// Steps 1 to 3 for one file, on a copy in `work`. Blocking.
fn prepare(f: &Found, root: &Path, work: &Path, min_age: Duration, now: i64) -> Result<Prepared, std::io::Error> {
    if let Some(kept) = interrupted_import(root, f.tid, &f.session) {
        return Ok(Prepared::Refused(format!(
            "an earlier import stopped half-way: its original is {} (put its -wal/-shm back beside the session file, then import again)",
            rel(root, &kept)
        )));
    }
    let snap = snapshot(&f.session)?;
    if let Some(link) = linked_file(&snap) {
        return Ok(Prepared::Refused(format!(
            "{} is a symbolic link; refusing to read through it",
            rel(root, link)
        )));
    }
    let a = age(&snap);
    if a < min_age {
        return Ok(Prepared::Refused(format!(
            "changed {} s ago (less than {} s): is the Go bot still running? Stop it for good first",
            a.as_secs(),
            min_age.as_secs()
        )));
    }
    let copy = work.join("orig.db");
    for (i, (src, meta)) in snap.iter().enumerate() {
        // The main file and its -wal/-journal; -shm is only an index SQLite rebuilds.
        if meta.is_none() || i == 2 {
            continue;
        }
        let suffix = ["", "-wal", "-shm", "-journal"][i];
        let mut dst = copy.as_os_str().to_owned();
        dst.push(suffix);
        std::fs::copy(src, PathBuf::from(dst))?;
    }
    let conn = match rusqlite::Connection::open(&copy) {
        Ok(c) => c,
        Err(e) => return Ok(Prepared::Refused(format!("corrupt: {e}"))),
    };
    match conn.query_row("PRAGMA quick_check", [], |r| r.get::<_, String>(0)) {
        Ok(s) if s == "ok" => {}
        Ok(s) => return Ok(Prepared::Refused(format!("corrupt: {s}"))),
        Err(e) => return Ok(Prepared::Refused(format!("corrupt: {e}"))),
    }
    match whatsmeow::is_whatsmeow(&conn) {
        Ok(true) => {}
        Ok(false) => return Ok(Prepared::NotWhatsmeow),
        Err(e) => return Ok(Prepared::Refused(format!("corrupt: {e}"))),
    }
    let wm = match whatsmeow::read(&conn, f.phone.digits()) {
        Ok(s) => s,
        Err(whatsmeow::ReadError::NoDevice) => {
            return Ok(Prepared::Refused(
                "never paired: the store has no device (pair this number again from the bot)".into(),
            ))
        }
        Err(whatsmeow::ReadError::JidMismatch { found }) => {
            let user = whatsmeow::jid_user(&found);
            let shown = PhoneNumber::from_digits(user)
                .map(|p| p.masked())
                .unwrap_or_else(|_| "?".into());
            return Ok(Prepared::Refused(format!(
                "the device's number ({shown}) does not match the number in the file name"
            )));
        }
        Err(e) => return Ok(Prepared::Refused(format!("corrupt: {e}"))),
    };
    drop(conn);
    match convert::store(&wm, now) {
        Ok(c) => Ok(Prepared::Ready {
            converted: Box::new(c),
            jid: wm.device.jid,
            snap,
        }),
        Err(e) => Ok(Prepared::Refused(format!("cannot convert: {e}"))),
    }
}

/// Hard-links `src` to `dst`, or copies it (another filesystem), keeping its mode.
fn link_or_copy(src: &Path, dst: &Path) -> std::io::Result<()> {
    match std::fs::hard_link(src, dst) {
        Ok(()) => Ok(()),
        Err(_) => {
            std::fs::copy(src, dst)?;
            std::fs::File::open(dst)?.sync_all()
        }
    }
}

/// Step 4's file moves: originals kept under `keep`, the new store renamed over the session
/// path. Returns what moved where, for a rollback. Blocking.
fn swap(f: &Found, new_store: &Path, snap: &Snapshot, keep: &Path) -> Result<Vec<(PathBuf, PathBuf)>, String> {
    let now = snapshot(&f.session).map_err(|e| e.to_string())?;
    if &now != snap {
        return Err("changed while being converted: is the Go bot still running?".into());
    }
    create_private_dir(keep).map_err(|e| e.to_string())?;
    let mut moved = Vec::new();
    let name = |p: &Path| p.file_name().map(PathBuf::from).unwrap_or_default();
    // The database stays at the session path until the new one replaces it in one rename.
    let db_keep = keep.join(name(&f.session));
    link_or_copy(&f.session, &db_keep).map_err(|e| format!("keeping the original: {e}"))?;
    for (p, m) in snap.iter().skip(1) {
        if m.is_some() {
            let to = keep.join(name(p));
            std::fs::rename(p, &to).map_err(|e| format!("keeping {}: {e}", p.display()))?;
            moved.push((p.clone(), to));
        }
    }
    std::fs::rename(new_store, &f.session).map_err(|e| format!("putting the new store in place: {e}"))?;
    moved.insert(0, (f.session.clone(), db_keep));
    if let Some(dir) = f.session.parent() {
        let _ = std::fs::File::open(dir).and_then(|d| d.sync_all());
    }
    Ok(moved)
}

/// Puts originals back where they were (after a failed registration). Blocking.
fn rollback(moved: &[(PathBuf, PathBuf)]) {
    for (from, to) in moved.iter().rev() {
        if let Err(e) = std::fs::rename(to, from) {
            warn!(path = %from.display(), error = %e, "import rollback: could not put the original back");
        }
    }
}

/// Moves a database and its side files into `keep`. Blocking.
fn set_aside(db: &Path, keep: &Path) -> std::io::Result<Vec<(PathBuf, PathBuf)>> {
    create_private_dir(keep)?;
    let mut moved = Vec::new();
    for p in with_side_files(db) {
        if std::fs::symlink_metadata(&p).is_ok() {
            let to = keep.join(p.file_name().unwrap_or_default());
            std::fs::rename(&p, &to)?;
            moved.push((p, to));
        }
    }
    Ok(moved)
}

fn entry(path: String, kind: ImportKind, outcome: ImportOutcome) -> ImportEntry {
    ImportEntry {
        path,
        kind,
        outcome,
        telegram_id: None,
        phone: None,
        account_id: None,
        reason: None,
        kept_at: None,
        counts: None,
        skipped_rows: 0,
    }
}

/// Runs the import. Registration goes through the account manager, which holds a backend:
/// `backend`, or one started from `config` only when there is something to register. A dry
/// run, or a run with nothing to import, creates no file, not even the master database.
pub async fn run(
    config: &Config,
    backend: Option<Arc<dyn WaBackend>>,
    opts: ImportOptions,
) -> Result<ImportReport, ImportError> {
    let layout = Layout::new(&config.data_dir);
    let root = layout.root().to_path_buf();
    let mut entries = Vec::new();
    let mut summary = ImportSummary {
        dry_run: opts.dry_run,
        ..Default::default()
    };
    let master_path = config.master_db.clone();
    let (master_kind, master_snap) = {
        let p = master_path.clone();
        crate::db::blocking(move || Ok((gobot::master_kind(&p), snapshot(&p)?))).await?
    };
    let master_kind = master_kind.map_err(|reason| ImportError::Master {
        path: master_path.clone(),
        reason,
    })?;
    if master_kind == DbKind::Unknown {
        return Err(ImportError::Master {
            path: master_path,
            reason: "neither tgwa's nor the Go bot's (left untouched; set TGWA_MASTER_DB to another file)".into(),
        });
    }
    let found = {
        let l = layout.clone();
        crate::db::blocking(move || find(&l).map_err(DbError::Io))
            .await
            .map_err(|e| match e {
                DbError::Io(io) => ImportError::DataDir(io),
                other => ImportError::Db(other),
            })?
    };
    let go_master = master_kind == DbKind::GoBot;
    if !go_master && found.is_empty() {
        return Ok(ImportReport { entries, summary });
    }
    let ts = stamp();
    let keep_root = root.join(IMPORTED_DIR).join(&ts);
    let mut kept_any = false;

    // The Go bot's master: read its accounts, then set it aside so tgwa makes its own.
    let mut master_refused = None;
    if go_master {
        let p = master_path.clone();
        let rows = crate::db::blocking(move || Ok(gobot::go_accounts(&p))).await?;
        let rows = rows.map_err(|reason| ImportError::Master {
            path: master_path.clone(),
            reason,
        })?;
        summary.go_master_accounts = Some(rows.len());
        let mut e = entry(
            master_path.display().to_string(),
            ImportKind::MasterDb,
            if opts.dry_run {
                ImportOutcome::WouldSetAside
            } else {
                ImportOutcome::SetAside
            },
        );
        // Accounts are imported from their session files (the owner is the folder); name the
        // ones the Go bot listed whose session file is in no user folder.
        let missing: Vec<String> = rows
            .iter()
            .filter(|r| !found.iter().any(|f| f.phone.digits() == r.phone_number))
            .map(|r| {
                PhoneNumber::from_digits(&r.phone_number)
                    .map(|p| p.masked())
                    .unwrap_or_else(|_| "?".into())
            })
            .collect();
        let mut why = format!(
            "the Go bot's master database ({} accounts); tgwa makes its own and registers the imported sessions",
            rows.len()
        );
        if !missing.is_empty() {
            why.push_str(&format!(
                "; no session file in a user folder for {} of them: {}",
                missing.len(),
                missing.join(", ")
            ));
        }
        e.reason = Some(why);
        let a = age(&master_snap);
        if a < opts.min_age {
            let why = format!(
                "changed {} s ago (less than {} s): is the Go bot still running? Stop it for good first",
                a.as_secs(),
                opts.min_age.as_secs()
            );
            e.outcome = ImportOutcome::Refused;
            e.reason = Some(why.clone());
            master_refused = Some(format!("the Go bot's master database {why}"));
        } else if !opts.dry_run {
            let (p, k) = (master_path.clone(), keep_root.clone());
            let moved = crate::db::blocking(move || set_aside(&p, &k).map_err(DbError::Io))
                .await
                .map_err(|e| match e {
                    DbError::Io(io) => ImportError::Keep(io),
                    other => ImportError::Db(other),
                })?;
            kept_any = true;
            e.kept_at = moved.first().map(|(_, to)| rel(&root, to));
            info!(path = %master_path.display(), "the Go bot's master database is set aside");
        }
        entries.push(e);
    }

    // Registration goes through the manager; a dry run reads tgwa's rows without one.
    let manager = if opts.dry_run || master_refused.is_some() || found.is_empty() {
        None
    } else {
        let backend = match backend {
            Some(b) => b,
            None => crate::wa::backend_for(config).await?,
        };
        Some(AccountManager::open(config.clone(), backend).await?)
    };
    let known = match &manager {
        Some(m) => m.all_rows().await?,
        None if master_kind == DbKind::Tgwa => {
            crate::scan::read_master(&master_path)
                .await
                .map_err(|e| ImportError::Master {
                    path: master_path.clone(),
                    reason: e.to_string(),
                })?
        }
        None => Vec::new(),
    };

    let scratch_base = if opts.dry_run {
        std::env::temp_dir()
    } else {
        root.join(IMPORTED_DIR)
    };
    for f in found {
        let session_rel = rel(&root, &f.session);
        let mut e = entry(session_rel.clone(), ImportKind::Session, ImportOutcome::Refused);
        e.telegram_id = Some(f.tid);
        e.phone = Some(f.phone.masked());
        summary.sessions_found += 1;
        if let Some(why) = &master_refused {
            e.reason = Some(why.clone());
            summary.refused += 1;
            entries.push(e);
            continue;
        }
        if let Some(other) = known
            .iter()
            .find(|a| a.phone == f.phone && a.status != AccountStatus::Removed && a.telegram_id != f.tid)
        {
            e.reason = Some(format!(
                "the number is registered to another Telegram user ({})",
                other.telegram_id
            ));
            summary.refused += 1;
            entries.push(e);
            continue;
        }
        let work = {
            let name = format!(".work-{}-{}", std::process::id(), stamp());
            let base = scratch_base.clone();
            crate::db::blocking(move || Scratch::new(&base, &name).map_err(DbError::Io)).await?
        };
        let prepared = {
            let (f2, r, w, min_age) = (f.clone(), root.clone(), work.0.clone(), opts.min_age);
            let now = chrono::Utc::now().timestamp();
            crate::db::blocking(move || prepare(&f2, &r, &w, min_age, now).map_err(DbError::Io)).await
        };
        let (converted, jid, snap) = match prepared {
            Ok(Prepared::NotWhatsmeow) => {
                summary.sessions_found -= 1;
                continue;
            }
            Ok(Prepared::Refused(why)) => {
                e.reason = Some(why);
                summary.refused += 1;
                entries.push(e);
                continue;
            }
            Err(err) => {
                e.reason = Some(format!("could not read: {err}"));
                summary.refused += 1;
                entries.push(e);
                continue;
            }
            Ok(Prepared::Ready { converted, jid, snap }) => (converted, jid, snap),
        };
        e.reason = dated_ahead(&snap).map(future_note);
        e.skipped_rows = converted.skipped.len();
        let new_store = work.0.join("new.db");
        let counts = match store::write(&new_store, &converted).await {
            Ok(c) => c,
            Err(err) => {
                e.reason = Some(format!("cannot convert: {err}"));
                summary.refused += 1;
                entries.push(e);
                continue;
            }
        };
        e.counts = Some(counts);
        let bot_kind = {
            let p = f.bot_data.clone();
            crate::db::blocking(move || Ok(gobot::bot_data_kind(&p))).await?
        };
        let go_bot_data = !matches!(bot_kind, Ok(DbKind::Fresh | DbKind::Tgwa));
        if opts.dry_run {
            e.outcome = ImportOutcome::WouldImport;
            summary.would_import += 1;
            entries.push(e);
            if go_bot_data {
                let mut b = entry(
                    rel(&root, &f.bot_data),
                    ImportKind::BotData,
                    ImportOutcome::WouldSetAside,
                );
                b.telegram_id = Some(f.tid);
                b.phone = Some(f.phone.masked());
                b.reason = Some("the Go bot's bot data: kept, and a fresh tgwa one created".into());
                summary.set_aside += 1;
                entries.push(b);
            }
            continue;
        }
        let Some(manager) = &manager else { continue };
        let keep = keep_root.join(f.tid.to_string());
        let moved = {
            let (f2, n, s, k) = (f.clone(), new_store.clone(), snap.clone(), keep.clone());
            crate::db::blocking(move || {
                let mut moved = match swap(&f2, &n, &s, &k) {
                    Ok(m) => m,
                    Err(why) => return Ok(Err(why)),
                };
                if go_bot_data {
                    match set_aside(&f2.bot_data, &k) {
                        Ok(m) => moved.extend(m),
                        Err(err) => {
                            rollback(&moved);
                            return Ok(Err(format!("setting the Go bot's bot data aside: {err}")));
                        }
                    }
                }
                Ok(Ok(moved))
            })
            .await?
        };
        let moved = match moved {
            Ok(m) => m,
            Err(why) => {
                e.reason = Some(why);
                summary.refused += 1;
                entries.push(e);
                continue;
            }
        };
        kept_any = true;
        e.kept_at = moved.first().map(|(_, to)| rel(&root, to));
        match manager
            .add(f.tid, f.phone.clone(), AccountStatus::Active, Some(jid))
            .await
        {
            Ok(acc) => e.account_id = Some(acc.id),
            Err(AccountError::AlreadyLinked(id)) => e.account_id = Some(id),
            Err(err) => {
                let m = moved.clone();
                let _ = crate::db::blocking(move || {
                    rollback(&m);
                    Ok(())
                })
                .await;
                e.kept_at = None;
                e.reason = Some(format!("could not register, originals put back: {err}"));
                summary.refused += 1;
                entries.push(e);
                continue;
            }
        }
        info!(
            telegram_id = %f.tid,
            phone = %f.phone.masked(),
            account_id = ?e.account_id,
            "imported a whatsmeow session"
        );
        e.outcome = ImportOutcome::Imported;
        summary.imported += 1;
        entries.push(e);
        if go_bot_data {
            if let Some((_, to)) = moved.iter().find(|(from, _)| from == &f.bot_data) {
                let mut b = entry(rel(&root, &f.bot_data), ImportKind::BotData, ImportOutcome::SetAside);
                b.telegram_id = Some(f.tid);
                b.phone = Some(f.phone.masked());
                b.kept_at = Some(rel(&root, to));
                b.reason = Some("the Go bot's bot data: kept, and a fresh tgwa one created".into());
                summary.set_aside += 1;
                entries.push(b);
            }
        }
    }
    if go_master && master_refused.is_none() {
        summary.set_aside += 1;
    }
    if kept_any {
        summary.imported_dir = Some(rel(&root, &keep_root));
    }
    Ok(ImportReport { entries, summary })
}

/// The step at the start of `tgwa run`: imports what it can and logs every entry; never
/// stops the bot (a refused file stays as it was, and the scan reports it).
pub async fn at_startup(config: &Config, backend: Arc<dyn WaBackend>) {
    let opts = ImportOptions {
        dry_run: false,
        min_age: config.import_min_age,
    };
    match run(config, Some(backend), opts).await {
        Ok(r) if r.entries.is_empty() => {}
        Ok(r) => {
            for e in &r.entries {
                // Named by owner and masked number: file names hold the full number.
                if e.outcome == ImportOutcome::Refused {
                    warn!(
                        telegram_id = ?e.telegram_id,
                        phone = e.phone.as_deref().unwrap_or("-"),
                        kind = ?e.kind,
                        reason = e.reason.as_deref().unwrap_or(""),
                        "import refused"
                    );
                }
            }
            info!(summary = ?r.summary, "import of the Go bot's files finished");
        }
        Err(e) => warn!(error = %e, "import of the Go bot's files failed"),
    }
}

#[cfg(test)]
mod tests;
