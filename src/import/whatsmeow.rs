//! Reads a whatsmeow (Go bot) session store with rusqlite, read-only, and never with the
//! whatsapp-rust store (which would migrate it in place).
//!
//! Tables and columns are whatsmeow's `store/sqlstore/upgrades/00-latest-schema.sql`
//! (schema v15): `whatsmeow_device` (one row per paired device, keyed by its JID),
//! `whatsmeow_pre_keys`, `whatsmeow_identity_keys` and `whatsmeow_sessions` (keyed by
//! `our_jid` and a Signal address `user[_agent]:device`), `whatsmeow_lid_map` (user parts
//! only) and `whatsmeow_nct_salt`.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension};

/// One `whatsmeow_device` row (the columns the conversion uses).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WmDevice {
    /// `user:device@s.whatsapp.net`
    pub jid: String,
    /// `user:device@lid`, when whatsmeow learned it.
    pub lid: Option<String>,
    pub registration_id: i64,
    /// 32-byte private keys.
    pub noise_key: Vec<u8>,
    pub identity_key: Vec<u8>,
    pub signed_pre_key: Vec<u8>,
    pub signed_pre_key_id: i64,
    pub signed_pre_key_sig: Vec<u8>,
    pub adv_key: Vec<u8>,
    pub adv_details: Vec<u8>,
    pub adv_account_sig: Vec<u8>,
    pub adv_account_sig_key: Vec<u8>,
    pub adv_device_sig: Vec<u8>,
    pub push_name: String,
    /// Nonzero once the account's chats moved to LIDs.
    pub lid_migration_ts: i64,
}

/// One `whatsmeow_pre_keys` row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WmPreKey {
    pub key_id: i64,
    /// 32-byte private key.
    pub key: Vec<u8>,
    pub uploaded: bool,
}

/// Everything read from one whatsmeow store for one device.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WmStore {
    pub device: WmDevice,
    pub pre_keys: Vec<WmPreKey>,
    /// (whatsmeow address, 32-byte identity key)
    pub identities: Vec<(String, Vec<u8>)>,
    /// (whatsmeow address, session record)
    pub sessions: Vec<(String, Option<Vec<u8>>)>,
    /// (lid user, phone user)
    pub lid_map: Vec<(String, String)>,
    pub nct_salt: Option<Vec<u8>>,
}

/// Why a whatsmeow store cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The store has no device: the number was never paired (or was logged out).
    #[error("no device in the store (never paired, or logged out)")]
    NoDevice,
    /// None of the devices is the number in the file name.
    #[error("the device JID {found} does not match the number in the file name")]
    JidMismatch { found: String },
    #[error("unreadable: {0}")]
    Sqlite(#[from] rusqlite::Error),
}

fn has_table(conn: &Connection, name: &str) -> rusqlite::Result<bool> {
    conn.query_row(
        "SELECT EXISTS(SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1)",
        [name],
        |r| r.get(0),
    )
}

fn has_column(conn: &Connection, table: &str, column: &str) -> rusqlite::Result<bool> {
    conn.query_row(
        "SELECT EXISTS(SELECT 1 FROM pragma_table_info(?1) WHERE name = ?2)",
        [table, column],
        |r| r.get(0),
    )
}

/// Whether an open database is a whatsmeow store: decided by its schema, not its name.
pub fn is_whatsmeow(conn: &Connection) -> rusqlite::Result<bool> {
    has_table(conn, "whatsmeow_device")
}

/// The user part of a JID (`628123:5@s.whatsapp.net` -> `628123`).
pub fn jid_user(jid: &str) -> &str {
    let user = jid.split_once('@').map_or(jid, |(u, _)| u);
    user.split_once(':').map_or(user, |(u, _)| u)
}

/// Reads the device whose phone number is `phone` (digits) and its Signal state.
pub fn read(conn: &Connection, phone: &str) -> Result<WmStore, ReadError> {
    // `lid` (schema v7) and `lid_migration_ts` (v10) are missing from older stores.
    let lid = if has_column(conn, "whatsmeow_device", "lid")? {
        "lid"
    } else {
        "NULL"
    };
    let migrated = if has_column(conn, "whatsmeow_device", "lid_migration_ts")? {
        "lid_migration_ts"
    } else {
        "0"
    };
    let mut st = conn.prepare(&format!(
        "SELECT jid, {lid}, registration_id, noise_key, identity_key, signed_pre_key, signed_pre_key_id,
                signed_pre_key_sig, adv_key, adv_details, adv_account_sig, adv_account_sig_key,
                adv_device_sig, push_name, {migrated}
         FROM whatsmeow_device ORDER BY jid"
    ))?;
    let devices = st
        .query_map([], |r| {
            Ok(WmDevice {
                jid: r.get(0)?,
                lid: r.get(1)?,
                registration_id: r.get(2)?,
                noise_key: r.get(3)?,
                identity_key: r.get(4)?,
                signed_pre_key: r.get(5)?,
                signed_pre_key_id: r.get(6)?,
                signed_pre_key_sig: r.get(7)?,
                adv_key: r.get(8)?,
                adv_details: r.get(9)?,
                adv_account_sig: r.get(10)?,
                adv_account_sig_key: r.get(11)?,
                adv_device_sig: r.get(12)?,
                push_name: r.get(13)?,
                lid_migration_ts: r.get(14)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let Some(first) = devices.first() else {
        return Err(ReadError::NoDevice);
    };
    let Some(device) = devices.iter().find(|d| jid_user(&d.jid) == phone).cloned() else {
        return Err(ReadError::JidMismatch {
            found: first.jid.clone(),
        });
    };
    let our = device.jid.clone();
    let pre_keys = conn
        .prepare("SELECT key_id, key, uploaded FROM whatsmeow_pre_keys WHERE jid = ?1 ORDER BY key_id")?
        .query_map([&our], |r| {
            Ok(WmPreKey {
                key_id: r.get(0)?,
                key: r.get(1)?,
                uploaded: r.get(2)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let identities = conn
        .prepare("SELECT their_id, identity FROM whatsmeow_identity_keys WHERE our_jid = ?1 ORDER BY their_id")?
        .query_map([&our], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<Vec<_>, _>>()?;
    let sessions = conn
        .prepare("SELECT their_id, session FROM whatsmeow_sessions WHERE our_jid = ?1 ORDER BY their_id")?
        .query_map([&our], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<Vec<_>, _>>()?;
    // Older whatsmeow schemas lack these two tables; their absence is not an error.
    let lid_map = if has_table(conn, "whatsmeow_lid_map")? {
        conn.prepare("SELECT lid, pn FROM whatsmeow_lid_map ORDER BY lid")?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<Vec<_>, _>>()?
    } else {
        Vec::new()
    };
    let nct_salt = if has_table(conn, "whatsmeow_nct_salt")? {
        conn.query_row("SELECT salt FROM whatsmeow_nct_salt WHERE our_jid = ?1", [&our], |r| {
            r.get(0)
        })
        .optional()?
    } else {
        None
    };
    Ok(WmStore {
        device,
        pre_keys,
        identities,
        sessions,
        lid_map,
        nct_salt,
    })
}

/// Opens `path` read-only and reads it (blocking).
pub fn read_file(path: &Path, phone: &str) -> Result<WmStore, ReadError> {
    let conn = crate::db::open_read_only(path).map_err(|e| match e {
        crate::db::DbError::Sqlite(s) => ReadError::Sqlite(s),
        other => ReadError::Sqlite(rusqlite::Error::InvalidPath(other.to_string().into())),
    })?;
    read(&conn, phone)
}
