//! The Go bot's own databases: its master `bot_data.db` (table `whatsapp_accounts` without
//! `telegram_id`) and its per-account `bot_data-{tid}-{phone}.db`. Told apart from tgwa's by
//! schema: tgwa numbers its migrations in `PRAGMA user_version` (1 and up), the Go bot creates
//! its tables without one. Read only; tgwa's migrations never run on them.

use std::path::Path;

use rusqlite::Connection;

/// What a database file is, as far as tgwa is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DbKind {
    /// Absent, empty, or with no tables yet: tgwa may create or migrate it.
    Fresh,
    /// Already tgwa's (migrated).
    Tgwa,
    /// The Go bot's.
    GoBot,
    /// Neither: refuse to touch it.
    Unknown,
}

fn tables(conn: &Connection) -> rusqlite::Result<Vec<String>> {
    conn.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")?
        .query_map([], |r| r.get(0))?
        .collect()
}

fn version(conn: &Connection) -> rusqlite::Result<u32> {
    conn.pragma_query_value(None, "user_version", |r| r.get(0))
}

fn open(path: &Path) -> Result<Option<Connection>, String> {
    match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.to_string()),
        Ok(m) if m.len() == 0 => return Ok(None),
        Ok(_) => {}
    }
    crate::db::open_read_only(path).map(Some).map_err(|e| e.to_string())
}

/// Classifies the master database at `path` (read-only; creates nothing).
pub fn master_kind(path: &Path) -> Result<DbKind, String> {
    let Some(conn) = open(path)? else {
        return Ok(DbKind::Fresh);
    };
    let t = tables(&conn).map_err(|e| e.to_string())?;
    if t.is_empty() {
        return Ok(DbKind::Fresh);
    }
    if !t.iter().any(|n| n == "whatsapp_accounts") {
        return Ok(DbKind::Unknown);
    }
    let has_owner: bool = conn
        .query_row(
            "SELECT EXISTS(SELECT 1 FROM pragma_table_info('whatsapp_accounts') WHERE name = 'telegram_id')",
            [],
            |r| r.get(0),
        )
        .map_err(|e| e.to_string())?;
    let v = version(&conn).map_err(|e| e.to_string())?;
    Ok(match (has_owner, v) {
        (true, v) if v > 0 => DbKind::Tgwa,
        (false, 0) => DbKind::GoBot,
        _ => DbKind::Unknown,
    })
}

/// Classifies an account's bot data file (read-only).
pub fn bot_data_kind(path: &Path) -> Result<DbKind, String> {
    let Some(conn) = open(path)? else {
        return Ok(DbKind::Fresh);
    };
    let t = tables(&conn).map_err(|e| e.to_string())?;
    let v = version(&conn).map_err(|e| e.to_string())?;
    Ok(match (t.is_empty(), v) {
        (true, 0) => DbKind::Fresh,
        (_, v) if v > 0 => DbKind::Tgwa,
        _ => DbKind::GoBot,
    })
}

/// One row of the Go bot's `whatsapp_accounts`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoAccount {
    pub phone_number: String,
    pub db_path: String,
    pub status: String,
}

/// Reads the Go bot's accounts (read-only).
pub fn go_accounts(path: &Path) -> Result<Vec<GoAccount>, String> {
    let Some(conn) = open(path)? else {
        return Ok(Vec::new());
    };
    let mut st = conn
        .prepare(
            "SELECT CAST(phone_number AS TEXT), COALESCE(db_path, ''), COALESCE(status, '')
             FROM whatsapp_accounts ORDER BY id",
        )
        .map_err(|e| e.to_string())?;
    let rows = st
        .query_map([], |r| {
            Ok(GoAccount {
                phone_number: r.get(0)?,
                db_path: r.get(1)?,
                status: r.get(2)?,
            })
        })
        .map_err(|e| e.to_string())?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    Ok(rows)
}
