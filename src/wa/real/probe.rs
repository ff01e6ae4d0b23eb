//! Reads a whatsapp-rust session file without whatsapp-rust: paired or not, and whether it is
//! a session store at all.
//!
//! The store (whatsapp-rust-sqlite-storage 0.7, diesel) keeps the device in table `device`
//! (`id INTEGER PRIMARY KEY`, `pn TEXT NOT NULL`, `lid TEXT NOT NULL`, ...). A new store gets a
//! row with `pn = ''` when the client is first built; pairing writes the phone-number JID
//! (`62812...:N@s.whatsapp.net`) into `pn`. So: a row with a non-empty `pn` means paired.
//!
//! The file is opened read-only, and never made: a read-only open of a WAL database would
//! leave `-wal` and `-shm` files behind, so when no `-wal` exists the file is opened
//! `immutable` (nothing to merge, nothing created); when one exists its content is merged as
//! usual.

use std::path::Path;

use rusqlite::OptionalExtension;

use crate::db::DbError;
use crate::wa::{Probe, WaError};

/// The table and columns read; kept together so a schema change is one edit.
const DEVICE_TABLE: &str = "device";

/// Why a whatsmeow file is not used as it is; names the command that converts it.
pub const WHATSMEOW_REASON: &str =
    "a whatsmeow (Go bot) session store, not converted yet: run `tgwa import` (it keeps the original)";

/// Whether an open database is a whatsmeow store (the Go bot's), told by its schema.
fn is_whatsmeow(conn: &rusqlite::Connection) -> rusqlite::Result<bool> {
    conn.query_row(
        "SELECT EXISTS(SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'whatsmeow_device')",
        [],
        |r| r.get(0),
    )
}

/// Refuses a whatsmeow store: whatsapp-rust's store would migrate it in place. Blocking;
/// reads the main file only, so it changes nothing.
pub fn refuse_whatsmeow(path: &Path) -> Result<(), WaError> {
    let storage = |why: String| WaError::Storage(format!("{}: {why}", path.display()));
    if std::fs::metadata(path).map(|m| m.len()).unwrap_or(0) == 0 {
        return Ok(());
    }
    let conn = open_immutable(path).map_err(|e| storage(e.to_string()))?;
    // A file that cannot be read here is left to the store's own checks.
    if is_whatsmeow(&conn).unwrap_or(false) {
        return Err(storage(WHATSMEOW_REASON.into()));
    }
    Ok(())
}

/// Opens the main file alone (`immutable`): reads no `-wal`, creates no `-shm`, so looking
/// at a file that is not ours changes nothing.
pub fn open_immutable(path: &Path) -> rusqlite::Result<rusqlite::Connection> {
    use rusqlite::OpenFlags;
    let abs = std::fs::canonicalize(path).map_err(|e| rusqlite::Error::InvalidPath(e.to_string().into()))?;
    let mut uri = String::from("file:");
    for b in abs.to_string_lossy().bytes() {
        // Percent-encode what a SQLite URI path cannot hold literally (spaces, '?', '#').
        if b.is_ascii_alphanumeric() || matches!(b, b'/' | b'-' | b'_' | b'.' | b'~') {
            uri.push(b as char);
        } else {
            uri.push_str(&format!("%{b:02X}"));
        }
    }
    uri.push_str("?mode=ro&immutable=1");
    rusqlite::Connection::open_with_flags(
        uri,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_URI | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
}

/// Probes `path` off the async runtime.
pub async fn probe(path: &Path) -> Result<Probe, WaError> {
    let path = path.to_path_buf();
    crate::db::blocking(move || Ok(probe_blocking(&path)))
        .await
        .map_err(|e: DbError| WaError::Storage(e.to_string()))?
}

/// Probes `path`; blocking.
pub fn probe_blocking(path: &Path) -> Result<Probe, WaError> {
    let storage = |why: String| WaError::Storage(format!("{}: {why}", path.display()));
    let meta = std::fs::metadata(path).map_err(|e| storage(e.to_string()))?;
    if !meta.is_file() {
        return Err(storage("not a file".into()));
    }
    if meta.len() == 0 {
        return Err(storage("empty file".into()));
    }
    let conn = crate::db::open_read_only(path).map_err(|e| storage(e.to_string()))?;
    let has_table: bool = conn
        .query_row(
            "SELECT EXISTS(SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1)",
            [DEVICE_TABLE],
            |r| r.get(0),
        )
        .map_err(|e| storage(e.to_string()))?;
    if !has_table {
        if is_whatsmeow(&conn).map_err(|e| storage(e.to_string()))? {
            return Err(storage(WHATSMEOW_REASON.into()));
        }
        return Err(storage("not a WhatsApp session store (no device table)".into()));
    }
    let pn: Option<String> = conn
        .query_row(
            "SELECT pn FROM device WHERE pn IS NOT NULL AND pn <> '' ORDER BY id LIMIT 1",
            [],
            |r| r.get(0),
        )
        .optional()
        .map_err(|e| storage(e.to_string()))?;
    Ok(match pn {
        Some(jid) => Probe::Paired { jid },
        None => Probe::Unpaired,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::Connection;

    fn files_in(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    fn device_db(path: &Path, pn: &str) {
        let c = Connection::open(path).unwrap();
        c.execute_batch(
            "PRAGMA journal_mode=WAL;
             CREATE TABLE device (id INTEGER PRIMARY KEY AUTOINCREMENT, lid TEXT NOT NULL, pn TEXT NOT NULL);",
        )
        .unwrap();
        c.execute("INSERT INTO device (lid, pn) VALUES ('', ?1)", [pn]).unwrap();
    }

    #[test]
    fn paired_and_unpaired_rows() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("DB USER TELEGRAM");
        std::fs::create_dir(&sub).unwrap();
        let p = sub.join("paired.db");
        device_db(&p, "6281234567890:3@s.whatsapp.net");
        assert_eq!(
            probe_blocking(&p).unwrap(),
            Probe::Paired {
                jid: "6281234567890:3@s.whatsapp.net".into()
            }
        );
        let u = sub.join("unpaired.db");
        device_db(&u, "");
        assert_eq!(probe_blocking(&u).unwrap(), Probe::Unpaired);
    }

    #[test]
    fn probing_creates_no_files() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.db");
        device_db(&p, "");
        let before = files_in(dir.path());
        assert!(!before.iter().any(|f| f.ends_with("-wal")), "{before:?}");
        probe_blocking(&p).unwrap();
        assert_eq!(files_in(dir.path()), before);
        let missing = dir.path().join("missing.db");
        assert!(matches!(probe_blocking(&missing), Err(WaError::Storage(_))));
        assert!(!missing.exists());
    }

    #[test]
    fn not_a_session_store() {
        let dir = tempfile::tempdir().unwrap();
        let zero = dir.path().join("zero.db");
        std::fs::write(&zero, b"").unwrap();
        assert!(matches!(probe_blocking(&zero), Err(WaError::Storage(_))));
        let garbage = dir.path().join("garbage.db");
        std::fs::write(&garbage, vec![0x5au8; 8192]).unwrap();
        assert!(matches!(probe_blocking(&garbage), Err(WaError::Storage(_))));
        let other = dir.path().join("other.db");
        Connection::open(&other)
            .unwrap()
            .execute_batch("CREATE TABLE t (x)")
            .unwrap();
        assert!(matches!(probe_blocking(&other), Err(WaError::Storage(_))));
        assert!(matches!(probe_blocking(dir.path()), Err(WaError::Storage(_))));
    }

    #[test]
    fn a_whatsmeow_store_is_named_and_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("whatsmeow.db");
        Connection::open(&p)
            .unwrap()
            .execute_batch("CREATE TABLE whatsmeow_device (jid TEXT PRIMARY KEY)")
            .unwrap();
        let before = std::fs::read(&p).unwrap();
        match probe_blocking(&p) {
            Err(WaError::Storage(why)) => assert!(why.contains("tgwa import"), "{why}"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(refuse_whatsmeow(&p), Err(WaError::Storage(_))));
        assert_eq!(std::fs::read(&p).unwrap(), before);
        let ours = dir.path().join("ours.db");
        device_db(&ours, "");
        assert!(refuse_whatsmeow(&ours).is_ok());
        assert!(refuse_whatsmeow(&dir.path().join("missing.db")).is_ok());
    }
}
