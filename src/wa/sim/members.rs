//! The simulator's member names, LID-only members and join requests (issue 19).
//!
//! A member's `phone` column in `members` holds digits, or `<digits>@lid` for a member whose
//! number WhatsApp hides: `group_info` leaves those out (it lists numbers), the roster keeps
//! them. Someone who uses an invite link while "approve new members" is on waits in
//! `join_requests` until an admin answers, as on WhatsApp.

use std::path::Path;

use rusqlite::{params, Connection, OptionalExtension};

use super::access::{require_admin, role, sql};
use crate::db::now;
use crate::wa::{GroupId, JoinRequest, PersonId, RequestResult, RosterEntry, WaError};

/// Tables this module adds to the world (created with the rest at open).
pub(super) const SCHEMA: &str = "
-- WhatsApp (push) names of people, by `members.phone` form (digits or `<digits>@lid`).
CREATE TABLE IF NOT EXISTS names (
    who  TEXT PRIMARY KEY,
    name TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS join_requests (
    jid TEXT    NOT NULL REFERENCES groups (jid),
    who TEXT    NOT NULL,
    at  INTEGER NOT NULL,
    PRIMARY KEY (jid, who)
);
";

/// The stored form of a person.
fn stored(p: &PersonId) -> String {
    match p {
        PersonId::Phone(n) => n.digits().to_string(),
        PersonId::Lid(l) => format!("{l}@lid"),
    }
}

/// A stored person back, `None` for junk.
fn person(s: &str) -> Option<PersonId> {
    match s.strip_suffix("@lid") {
        Some(l) => PersonId::lid(l),
        None => crate::ids::PhoneNumber::from_digits(s).ok().map(PersonId::Phone),
    }
}

/// Records that `who` asked to join `jid` (a link used while approval is on).
pub(super) fn request(c: &Connection, jid: &str, who: &str) -> Result<(), WaError> {
    c.execute(
        "INSERT OR IGNORE INTO join_requests (jid, who, at) VALUES (?1, ?2, ?3)",
        params![jid, who, now()],
    )
    .map_err(sql)?;
    Ok(())
}

/// The members of a group `me` is in, with names, LID-only members included.
pub(super) fn roster(c: &Connection, me: &str, id: &GroupId) -> Result<Vec<RosterEntry>, WaError> {
    role(c, id.as_str(), me)?;
    let mut st = c
        .prepare(
            "SELECT m.phone, n.name, m.admin, m.superadmin FROM members m LEFT JOIN names n ON n.who = m.phone
             WHERE m.jid = ?1 ORDER BY m.superadmin DESC, m.admin DESC, m.phone",
        )
        .map_err(sql)?;
    let rows = st
        .query_map([id.as_str()], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, Option<String>>(1)?,
                r.get::<_, bool>(2)?,
                r.get::<_, bool>(3)?,
            ))
        })
        .map_err(sql)?;
    Ok(rows
        .filter_map(|r| r.ok())
        .filter_map(|(who, name, admin, sup)| {
            person(&who).map(|id| RosterEntry {
                id,
                name,
                is_admin: admin || sup,
                is_super_admin: sup,
            })
        })
        .collect())
}

/// Pending requests of a group where `me` is admin, oldest first.
pub(super) fn requests(c: &Connection, me: &str, id: &GroupId) -> Result<Vec<JoinRequest>, WaError> {
    require_admin(c, id.as_str(), me)?;
    let mut st = c
        .prepare(
            "SELECT r.who, n.name, r.at FROM join_requests r LEFT JOIN names n ON n.who = r.who
             WHERE r.jid = ?1 ORDER BY r.at, r.who",
        )
        .map_err(sql)?;
    let rows = st
        .query_map([id.as_str()], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, Option<String>>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })
        .map_err(sql)?;
    Ok(rows
        .filter_map(|r| r.ok())
        .filter_map(|(who, name, at)| {
            person(&who).map(|id| JoinRequest {
                id,
                name,
                requested_at: Some(at),
            })
        })
        .collect())
}

/// Approves or rejects requests; someone with no pending request gets an error of their own
/// (the server answers per participant, whatsmeow `UpdateGroupRequestParticipants`).
pub(super) fn answer(
    c: &mut Connection,
    me: &str,
    id: &GroupId,
    approve: bool,
    who: &[PersonId],
) -> Result<Vec<RequestResult>, WaError> {
    require_admin(c, id.as_str(), me)?;
    let jid = id.as_str();
    let tx = c.transaction().map_err(sql)?;
    let mut out = Vec::with_capacity(who.len());
    for p in who {
        let s = stored(p);
        let gone = tx
            .execute("DELETE FROM join_requests WHERE jid = ?1 AND who = ?2", params![jid, s])
            .map_err(sql)?;
        if gone == 0 {
            out.push((p.clone(), Err("no pending request".to_string())));
            continue;
        }
        if approve {
            tx.execute(
                "INSERT OR IGNORE INTO members (jid, phone) VALUES (?1, ?2)",
                params![jid, s],
            )
            .map_err(sql)?;
        }
        out.push((p.clone(), Ok(())));
    }
    tx.commit().map_err(sql)?;
    Ok(out)
}

/// Whether the group needs approval to join (any member may see it).
pub(super) fn approval(c: &Connection, me: &str, id: &GroupId) -> Result<bool, WaError> {
    role(c, id.as_str(), me)?;
    c.query_row("SELECT approval FROM groups WHERE jid = ?1", [id.as_str()], |r| {
        r.get(0)
    })
    .map_err(sql)
}

/// Turns approval on or off, as an admin.
pub(super) fn set_approval(c: &Connection, me: &str, id: &GroupId, on: bool) -> Result<(), WaError> {
    require_admin(c, id.as_str(), me)?;
    c.execute(
        "UPDATE groups SET approval = ?2 WHERE jid = ?1",
        params![id.as_str(), on],
    )
    .map_err(sql)?;
    Ok(())
}

fn open(world_db: &Path) -> Result<Connection, WaError> {
    let c = Connection::open(world_db).map_err(sql)?;
    c.busy_timeout(std::time::Duration::from_secs(5)).map_err(sql)?;
    c.execute_batch(SCHEMA).map_err(sql)?;
    Ok(c)
}

/// For tests: puts people into a group of a world file (`who` as digits or `<digits>@lid`,
/// with a WhatsApp name or none), as if they had joined.
pub fn seed_members(world_db: &Path, group: &GroupId, people: &[(String, Option<String>)]) -> Result<(), WaError> {
    let mut c = open(world_db)?;
    let tx = c.transaction().map_err(sql)?;
    let known = tx
        .query_row("SELECT 1 FROM groups WHERE jid = ?1", [group.as_str()], |_| Ok(()))
        .optional()
        .map_err(sql)?;
    if known.is_none() {
        return Err(WaError::NotFound(group.to_string()));
    }
    for (who, name) in people {
        tx.execute(
            "INSERT OR IGNORE INTO members (jid, phone) VALUES (?1, ?2)",
            params![group.as_str(), who],
        )
        .map_err(sql)?;
        if let Some(n) = name {
            tx.execute(
                "INSERT OR REPLACE INTO names (who, name) VALUES (?1, ?2)",
                params![who, n],
            )
            .map_err(sql)?;
        }
    }
    tx.commit().map_err(sql)
}

/// For tests: `who` (digits or `<digits>@lid`, with a name or none) asks to join `group`,
/// as someone using its link while approval is on would.
pub fn seed_join_request(world_db: &Path, group: &GroupId, who: &str, name: Option<&str>) -> Result<(), WaError> {
    let c = open(world_db)?;
    request(&c, group.as_str(), who)?;
    if let Some(n) = name {
        c.execute(
            "INSERT OR REPLACE INTO names (who, name) VALUES (?1, ?2)",
            params![who, n],
        )
        .map_err(sql)?;
    }
    Ok(())
}

/// For tests: who is waiting to join `group` (stored form), oldest first.
pub fn read_join_requests(world_db: &Path, group: &GroupId) -> Result<Vec<String>, WaError> {
    let c = open(world_db)?;
    let mut st = c
        .prepare("SELECT who FROM join_requests WHERE jid = ?1 ORDER BY at, who")
        .map_err(sql)?;
    let rows = st.query_map([group.as_str()], |r| r.get(0)).map_err(sql)?;
    Ok(rows.filter_map(|r| r.ok()).collect())
}
