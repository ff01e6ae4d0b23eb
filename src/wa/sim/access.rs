//! Reading the world's tables for the rules every group operation checks: who is a member
//! and who an admin, and SQLite's errors as `WaError`. Below `world` and `members`, which
//! both use them.

use rusqlite::{params, Connection, OptionalExtension};

use crate::wa::WaError;

/// SQLite's error, as the simulator's storage error.
pub(super) fn sql(e: rusqlite::Error) -> WaError {
    WaError::Storage(format!("simulator world: {e}"))
}

/// `(admin, superadmin)` of `me` in `jid`, or `NotFound` when not a member.
pub(super) fn role(c: &Connection, jid: &str, me: &str) -> Result<(bool, bool), WaError> {
    c.query_row(
        "SELECT admin, superadmin FROM members WHERE jid = ?1 AND phone = ?2",
        params![jid, me],
        |r| Ok((r.get::<_, bool>(0)?, r.get::<_, bool>(1)?)),
    )
    .optional()
    .map_err(sql)?
    .ok_or_else(|| WaError::NotFound(format!("not a member of {jid}")))
}

pub(super) fn require_admin(c: &Connection, jid: &str, me: &str) -> Result<(), WaError> {
    match role(c, jid, me)? {
        (true, _) | (_, true) => Ok(()),
        _ => Err(WaError::Forbidden("only group admins may do that".into())),
    }
}
