//! The simulator's shared world in `{data_dir}/.sim/world.db`: groups, members, invite codes,
//! sent messages and what the "server" remembers about each device (first connection, logout,
//! ban). One connection behind a mutex; every call runs on the blocking pool.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rand::distributions::Alphanumeric;
use rand::Rng;
use rusqlite::{params, Connection, OpenFlags, OptionalExtension};

use super::access::{require_admin, role, sql};
use crate::db::{now, DbError};
use crate::ids::PhoneNumber;
use crate::wa::{
    GroupId, GroupInfo, GroupSummary, JoinOutcome, Media, Member, MemberAction, MemberResult, MessageKind, MessageMeta,
    WaError, WaEvent,
};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS groups (
    jid         TEXT PRIMARY KEY,
    subject     TEXT    NOT NULL,
    description TEXT,
    announce    INTEGER NOT NULL DEFAULT 0,
    locked      INTEGER NOT NULL DEFAULT 0,
    approval    INTEGER NOT NULL DEFAULT 0,
    invite      TEXT    NOT NULL UNIQUE,
    creator     TEXT    NOT NULL,
    created_at  INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS members (
    jid        TEXT    NOT NULL REFERENCES groups (jid),
    phone      TEXT    NOT NULL,
    admin      INTEGER NOT NULL DEFAULT 0,
    superadmin INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (jid, phone)
);
CREATE INDEX IF NOT EXISTS members_phone ON members (phone);
CREATE TABLE IF NOT EXISTS messages (
    seq     INTEGER PRIMARY KEY AUTOINCREMENT,
    id      TEXT    NOT NULL,
    from_pn TEXT    NOT NULL,
    to_id   TEXT    NOT NULL,
    text    TEXT    NOT NULL,
    at      INTEGER NOT NULL
);
-- Per sender (the pushback rows' count, `wrote_to`): without it each send scanned every
-- message ever sent, so 10,000 accounts' broadcasts slowed down as the table grew.
CREATE INDEX IF NOT EXISTS messages_from ON messages (from_pn, to_id);
CREATE TABLE IF NOT EXISTS media (
    seq   INTEGER PRIMARY KEY REFERENCES messages (seq),
    kind  TEXT NOT NULL,
    name  TEXT NOT NULL,
    mime  TEXT NOT NULL,
    bytes BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS inbox_cursor (
    phone TEXT PRIMARY KEY,
    seq   INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS devices (
    phone           TEXT PRIMARY KEY,
    first_connected INTEGER,
    logged_out      INTEGER NOT NULL DEFAULT 0,
    banned_once     INTEGER NOT NULL DEFAULT 0,
    ban_until       INTEGER
);
-- Typing indicators accounts showed, for tests.
CREATE TABLE IF NOT EXISTS chatstates (
    seq     INTEGER PRIMARY KEY AUTOINCREMENT,
    from_pn TEXT    NOT NULL,
    to_id   TEXT    NOT NULL,
    ms      INTEGER NOT NULL,
    at      INTEGER NOT NULL
);
-- Files accounts uploaded to the media servers (`upload_media`), one row per upload.
CREATE TABLE IF NOT EXISTS uploads (
    id     INTEGER PRIMARY KEY AUTOINCREMENT,
    owner  TEXT    NOT NULL,
    kind   TEXT    NOT NULL,
    mime   TEXT    NOT NULL,
    name   TEXT    NOT NULL,
    size   INTEGER NOT NULL,
    bytes  BLOB    NOT NULL,
    at     INTEGER NOT NULL
);
-- Messages that carried an uploaded file (`send_uploaded`), for tests.
CREATE TABLE IF NOT EXISTS media_sends (
    seq       INTEGER PRIMARY KEY REFERENCES messages (seq),
    upload_id INTEGER NOT NULL REFERENCES uploads (id),
    kind      TEXT    NOT NULL
);
-- What the server did to a number once and for good: `banned`, `locked`, `replaced`, and
-- `timelock` (with `until`), keyed by the number.
CREATE TABLE IF NOT EXISTS fates (
    phone TEXT NOT NULL,
    what  TEXT NOT NULL,
    at    INTEGER NOT NULL,
    until INTEGER,
    PRIMARY KEY (phone, what)
);
";

/// A message the simulated network carried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentMessage {
    /// WhatsApp's message ID.
    pub id: String,
    /// The sender's number (digits).
    pub from: String,
    /// The recipient: a number (digits) or a group JID.
    pub to: String,
    pub text: String,
    /// Unix seconds.
    pub at: i64,
}

/// What the network remembers about one number's device.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeviceState {
    /// Unix seconds of its first connection after pairing.
    pub first_connected: Option<i64>,
    /// Logged out from the phone (0401).
    pub logged_out: bool,
    /// The ban (0402) has been issued.
    pub banned_once: bool,
    /// Unix seconds when the ban ends.
    pub ban_until: Option<i64>,
}

/// The shared world.
pub struct World {
    path: PathBuf,
    conn: Mutex<Connection>,
}

fn task(e: DbError) -> WaError {
    WaError::Storage(format!("simulator world: {e}"))
}

impl World {
    /// Opens (creating) the world file.
    pub fn open(path: &Path) -> Result<Self, WaError> {
        if let Some(dir) = path.parent() {
            crate::layout::create_private_dir(dir).map_err(|e| WaError::Storage(e.to_string()))?;
        }
        if !path.exists() {
            crate::db::create_private_file(path).map_err(|e| WaError::Storage(e.to_string()))?;
        }
        let conn = Connection::open(path).map_err(sql)?;
        conn.execute_batch("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;")
            .map_err(sql)?;
        conn.busy_timeout(std::time::Duration::from_secs(5)).map_err(sql)?;
        conn.execute_batch(SCHEMA).map_err(sql)?;
        conn.execute_batch(super::members::SCHEMA).map_err(sql)?;
        Ok(Self {
            path: path.to_path_buf(),
            conn: Mutex::new(conn),
        })
    }

    /// The world file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` on the world's connection, off the async runtime.
    pub async fn run<F, R>(self: &Arc<Self>, f: F) -> Result<R, WaError>
    where
        F: FnOnce(&mut Connection) -> Result<R, WaError> + Send + 'static,
        R: Send + 'static,
    {
        let me = self.clone();
        crate::db::blocking(move || {
            let mut c = me.conn.lock().unwrap_or_else(|e| e.into_inner());
            Ok(f(&mut c))
        })
        .await
        .map_err(task)?
    }
}

/// `https://chat.whatsapp.com/` codes: 22 letters and digits.
fn new_invite() -> String {
    rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(22)
        .map(char::from)
        .collect()
}

/// A WhatsApp-like message ID.
fn new_message_id() -> String {
    format!("3EB0{:016X}", rand::random::<u64>())
}

/// Numbers ending in `00` are not on WhatsApp.
pub fn on_whatsapp(p: &PhoneNumber) -> bool {
    !p.digits().ends_with("00")
}

fn link(code: &str) -> String {
    format!("https://chat.whatsapp.com/{code}")
}

pub(crate) fn info(c: &Connection, jid: &str) -> Result<Option<GroupInfo>, WaError> {
    let row: Option<(String, Option<String>, bool, bool)> = c
        .query_row(
            "SELECT subject, description, announce, locked FROM groups WHERE jid = ?1",
            [jid],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .optional()
        .map_err(sql)?;
    let Some((name, description, announce, locked)) = row else {
        return Ok(None);
    };
    let mut st = c
        .prepare(
            "SELECT phone, admin, superadmin FROM members WHERE jid = ?1 ORDER BY superadmin DESC, admin DESC, phone",
        )
        .map_err(sql)?;
    let members = st
        .query_map([jid], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, bool>(1)?, r.get::<_, bool>(2)?))
        })
        .map_err(sql)?
        .filter_map(|r| r.ok())
        .filter_map(|(p, admin, sup)| {
            PhoneNumber::from_digits(&p).ok().map(|phone| Member {
                phone,
                is_admin: admin || sup,
                is_super_admin: sup,
            })
        })
        .collect();
    let id = GroupId::parse(jid).ok_or_else(|| WaError::Storage(format!("bad group id in world: {jid}")))?;
    Ok(Some(GroupInfo {
        id,
        name,
        description,
        announce,
        locked,
        members,
    }))
}

pub(crate) fn create_group(
    c: &mut Connection,
    me: &str,
    subject: &str,
    members: &[PhoneNumber],
) -> Result<GroupInfo, WaError> {
    let subject = subject.trim();
    if subject.is_empty() || subject.chars().count() > 100 {
        return Err(WaError::Invalid("a group name must be 1 to 100 characters".into()));
    }
    let tx = c.transaction().map_err(sql)?;
    let n: i64 = tx
        .query_row("SELECT COUNT(*) FROM groups", [], |r| r.get(0))
        .map_err(sql)?;
    let jid = format!(
        "120363{:012}@g.us",
        100_000_000_000 + n + rand::thread_rng().gen_range(0..1000) * 1_000_000
    );
    let jid = if tx
        .query_row("SELECT 1 FROM groups WHERE jid = ?1", [&jid], |_| Ok(()))
        .optional()
        .map_err(sql)?
        .is_some()
    {
        format!("120363{:012}@g.us", rand::thread_rng().gen_range(0..999_999_999_999u64))
    } else {
        jid
    };
    tx.execute(
        "INSERT INTO groups (jid, subject, invite, creator, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![jid, subject, new_invite(), me, now()],
    )
    .map_err(sql)?;
    tx.execute(
        "INSERT INTO members (jid, phone, admin, superadmin) VALUES (?1, ?2, 1, 1)",
        params![jid, me],
    )
    .map_err(sql)?;
    for m in members.iter().filter(|m| on_whatsapp(m) && m.digits() != me) {
        tx.execute(
            "INSERT OR IGNORE INTO members (jid, phone) VALUES (?1, ?2)",
            params![jid, m.digits()],
        )
        .map_err(sql)?;
    }
    tx.commit().map_err(sql)?;
    info(c, &jid)?.ok_or_else(|| WaError::Other("group vanished".into()))
}

pub(crate) fn groups_of(c: &Connection, me: &str) -> Result<Vec<GroupSummary>, WaError> {
    let mut st = c
        .prepare(
            "SELECT g.jid, g.subject, (SELECT COUNT(*) FROM members x WHERE x.jid = g.jid), m.admin OR m.superadmin
             FROM groups g JOIN members m ON m.jid = g.jid WHERE m.phone = ?1 ORDER BY g.subject",
        )
        .map_err(sql)?;
    let rows = st
        .query_map([me], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, bool>(3)?,
            ))
        })
        .map_err(sql)?;
    Ok(rows
        .filter_map(|r| r.ok())
        .filter_map(|(jid, name, n, admin)| {
            GroupId::parse(&jid).map(|id| GroupSummary {
                id,
                name,
                member_count: n as usize,
                is_admin: admin,
            })
        })
        .collect())
}

pub(crate) fn group_info(c: &Connection, me: &str, id: &GroupId) -> Result<GroupInfo, WaError> {
    role(c, id.as_str(), me)?;
    info(c, id.as_str())?.ok_or_else(|| WaError::NotFound(format!("no group {id}")))
}

pub(crate) fn invite_link(c: &Connection, me: &str, id: &GroupId, reset: bool) -> Result<String, WaError> {
    require_admin(c, id.as_str(), me)?;
    if reset {
        let code = new_invite();
        c.execute(
            "UPDATE groups SET invite = ?2 WHERE jid = ?1",
            params![id.as_str(), code],
        )
        .map_err(sql)?;
        return Ok(link(&code));
    }
    let code: String = c
        .query_row("SELECT invite FROM groups WHERE jid = ?1", [id.as_str()], |r| r.get(0))
        .map_err(sql)?;
    Ok(link(&code))
}

pub(crate) fn join(c: &Connection, me: &str, link_or_code: &str) -> Result<JoinOutcome, WaError> {
    let code = crate::wa::invite_code(link_or_code).ok_or_else(|| {
        WaError::Invalid(format!(
            "not an invite link: {}",
            link_or_code.chars().take(80).collect::<String>()
        ))
    })?;
    let row: Option<(String, bool)> = c
        .query_row("SELECT jid, approval FROM groups WHERE invite = ?1", [code], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .optional()
        .map_err(sql)?;
    let Some((jid, approval)) = row else {
        return Err(WaError::NotFound("the invite link was revoked or never existed".into()));
    };
    let id = GroupId::parse(&jid).ok_or_else(|| WaError::Storage(format!("bad group id in world: {jid}")))?;
    if role(c, &jid, me).is_ok() {
        return Ok(JoinOutcome::Joined(id));
    }
    if approval {
        super::members::request(c, &jid, me)?;
        return Ok(JoinOutcome::PendingApproval);
    }
    c.execute("INSERT INTO members (jid, phone) VALUES (?1, ?2)", params![jid, me])
        .map_err(sql)?;
    Ok(JoinOutcome::Joined(id))
}

pub(crate) fn leave(c: &Connection, me: &str, id: &GroupId) -> Result<(), WaError> {
    role(c, id.as_str(), me)?;
    c.execute(
        "DELETE FROM members WHERE jid = ?1 AND phone = ?2",
        params![id.as_str(), me],
    )
    .map_err(sql)?;
    Ok(())
}

/// Which group setting to change.
pub(crate) enum Setting<'a> {
    Subject(&'a str),
    Description(Option<&'a str>),
    Announce(bool),
    Locked(bool),
}

pub(crate) fn set(c: &Connection, me: &str, id: &GroupId, s: Setting<'_>) -> Result<(), WaError> {
    let (admin, sup) = role(c, id.as_str(), me)?;
    let is_admin = admin || sup;
    let locked: bool = c
        .query_row("SELECT locked FROM groups WHERE jid = ?1", [id.as_str()], |r| r.get(0))
        .map_err(sql)?;
    let needs_admin = match s {
        Setting::Subject(_) | Setting::Description(_) => locked,
        Setting::Announce(_) | Setting::Locked(_) => true,
    };
    if needs_admin && !is_admin {
        return Err(WaError::Forbidden("only group admins may do that".into()));
    }
    let jid = id.as_str();
    let r = match s {
        Setting::Subject(t) => {
            let t = t.trim();
            if t.is_empty() || t.chars().count() > 100 {
                return Err(WaError::Invalid("a group name must be 1 to 100 characters".into()));
            }
            c.execute("UPDATE groups SET subject = ?2 WHERE jid = ?1", params![jid, t])
        }
        Setting::Description(d) => {
            if d.is_some_and(|d| d.chars().count() > 2048) {
                return Err(WaError::Invalid("a description is at most 2048 characters".into()));
            }
            c.execute("UPDATE groups SET description = ?2 WHERE jid = ?1", params![jid, d])
        }
        Setting::Announce(on) => c.execute("UPDATE groups SET announce = ?2 WHERE jid = ?1", params![jid, on]),
        Setting::Locked(on) => c.execute("UPDATE groups SET locked = ?2 WHERE jid = ?1", params![jid, on]),
    };
    r.map_err(sql)?;
    Ok(())
}

pub(crate) fn update_members(
    c: &Connection,
    me: &str,
    id: &GroupId,
    action: MemberAction,
    members: &[PhoneNumber],
) -> Result<Vec<MemberResult>, WaError> {
    require_admin(c, id.as_str(), me)?;
    let jid = id.as_str();
    let mut out = Vec::with_capacity(members.len());
    for p in members {
        let current = role(c, jid, p.digits()).ok();
        let res: Result<(), String> = match (action, current) {
            (MemberAction::Add, _) if !on_whatsapp(p) => Err("not on WhatsApp".into()),
            (MemberAction::Add, Some(_)) => Err("already a member".into()),
            (MemberAction::Add, None) => c
                .execute(
                    "INSERT INTO members (jid, phone) VALUES (?1, ?2)",
                    params![jid, p.digits()],
                )
                .map(|_| ())
                .map_err(|e| e.to_string()),
            (_, None) => Err("not a member".into()),
            (MemberAction::Remove, Some((_, true))) => Err("the group's creator cannot be removed".into()),
            (MemberAction::Remove, Some(_)) => c
                .execute(
                    "DELETE FROM members WHERE jid = ?1 AND phone = ?2",
                    params![jid, p.digits()],
                )
                .map(|_| ())
                .map_err(|e| e.to_string()),
            (MemberAction::Promote, Some((true, _))) => Err("already an admin".into()),
            (MemberAction::Demote, Some((false, false))) => Err("not an admin".into()),
            (MemberAction::Demote, Some((_, true))) => Err("the group's creator cannot be demoted".into()),
            (MemberAction::Promote | MemberAction::Demote, Some(_)) => c
                .execute(
                    "UPDATE members SET admin = ?3 WHERE jid = ?1 AND phone = ?2",
                    params![jid, p.digits(), action == MemberAction::Promote],
                )
                .map(|_| ())
                .map_err(|e| e.to_string()),
        };
        out.push((p.clone(), res));
    }
    Ok(out)
}

/// Records a message with an optional photo or document; returns its ID.
pub(crate) fn send_with(
    c: &Connection,
    me: &str,
    to: &crate::wa::ChatTarget,
    text: &str,
    media: Option<(MessageKind, &Media)>,
) -> Result<String, WaError> {
    if text.is_empty() && media.is_none() {
        return Err(WaError::Invalid("empty message".into()));
    }
    let to_id = match to {
        crate::wa::ChatTarget::Phone(p) => {
            if !on_whatsapp(p) {
                return Err(WaError::NotFound(format!("{} is not on WhatsApp", p.masked())));
            }
            p.digits().to_string()
        }
        crate::wa::ChatTarget::Group(g) => {
            let (admin, sup) = role(c, g.as_str(), me)?;
            let announce: bool = c
                .query_row("SELECT announce FROM groups WHERE jid = ?1", [g.as_str()], |r| r.get(0))
                .map_err(sql)?;
            if announce && !(admin || sup) {
                return Err(WaError::Forbidden("only admins may send to this group".into()));
            }
            g.as_str().to_string()
        }
    };
    let id = new_message_id();
    c.execute(
        "INSERT INTO messages (id, from_pn, to_id, text, at) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![id, me, to_id, text, now()],
    )
    .map_err(sql)?;
    if let Some((kind, m)) = media {
        c.execute(
            "INSERT INTO media (seq, kind, name, mime, bytes) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![c.last_insert_rowid(), kind.as_str(), m.file_name, m.mime, m.bytes],
        )
        .map_err(sql)?;
    }
    Ok(id)
}

/// The numbers that receive a message sent by `me` to `to`: the number itself, or the group's
/// other members.
pub(crate) fn recipients(c: &Connection, me: &str, to: &crate::wa::ChatTarget) -> Result<Vec<String>, WaError> {
    match to {
        crate::wa::ChatTarget::Phone(p) => Ok(vec![p.digits().to_string()]),
        crate::wa::ChatTarget::Group(g) => {
            let mut st = c
                .prepare("SELECT phone FROM members WHERE jid = ?1 AND phone <> ?2")
                .map_err(sql)?;
            let rows = st
                .query_map(params![g.as_str(), me], |r| r.get::<_, String>(0))
                .map_err(sql)?;
            Ok(rows.filter_map(|r| r.ok()).collect())
        }
    }
}

/// Starts `phone`'s delivery after everything the network carried so far: a new device does
/// not receive what was sent before it was linked.
pub(crate) fn reset_cursor(c: &Connection, phone: &str) -> Result<(), WaError> {
    c.execute(
        "INSERT INTO inbox_cursor (phone, seq) VALUES (?1, (SELECT COALESCE(MAX(seq), 0) FROM messages))
         ON CONFLICT (phone) DO UPDATE SET seq = excluded.seq",
        [phone],
    )
    .map_err(sql)?;
    Ok(())
}

/// Every message for `phone` (to its number, or to a group it is in, from someone else) that
/// it has not received yet, oldest first, as incoming-message events; the cursor moves past
/// them in the same call, so each is delivered once.
pub(crate) fn take_incoming(c: &Connection, phone: &str, offline: bool) -> Result<Vec<WaEvent>, WaError> {
    c.execute(
        "INSERT OR IGNORE INTO inbox_cursor (phone, seq) VALUES (?1, (SELECT COALESCE(MAX(seq), 0) FROM messages))",
        [phone],
    )
    .map_err(sql)?;
    let mut st = c
        .prepare(
            "SELECT m.seq, m.id, m.from_pn, m.to_id, m.text, m.at, d.kind, d.name, d.mime, d.bytes
             FROM messages m LEFT JOIN media d ON d.seq = m.seq
             WHERE m.seq > (SELECT seq FROM inbox_cursor WHERE phone = ?1) AND m.from_pn <> ?1
               AND (m.to_id = ?1 OR m.to_id IN (SELECT jid FROM members WHERE phone = ?1))
             ORDER BY m.seq",
        )
        .map_err(sql)?;
    let rows = st
        .query_map([phone], |r| {
            let kind: Option<String> = r.get(6)?;
            let media = match kind {
                Some(_) => Some(Media {
                    file_name: r.get(7)?,
                    mime: r.get(8)?,
                    bytes: r.get(9)?,
                }),
                None => None,
            };
            let kind = kind.map(|k| MessageKind::parse(&k)).unwrap_or_default();
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, i64>(5)?,
                kind,
                media,
            ))
        })
        .map_err(sql)?;
    let mut out = Vec::new();
    let mut last = None;
    for row in rows {
        let (seq, id, from, to, text, at, kind, media) = row.map_err(sql)?;
        last = Some(seq);
        let group = to.ends_with("@g.us");
        let push = PhoneNumber::from_digits(&from)
            .map(|p| format!("Sim {}", p.last4()))
            .unwrap_or_default();
        out.push(WaEvent::Message {
            id,
            chat: if group { to } else { from.clone() },
            sender: from,
            meta: MessageMeta {
                kind,
                push_name: push,
                media,
                offline,
                // Mentions travel as `@<digits>` in the simulator's text.
                mentions_me: group && text.contains(&format!("@{phone}")),
                sent_at: at,
            },
            text,
        });
    }
    if let Some(seq) = last {
        c.execute("UPDATE inbox_cursor SET seq = ?2 WHERE phone = ?1", params![phone, seq])
            .map_err(sql)?;
    }
    Ok(out)
}

pub(crate) fn device(c: &Connection, phone: &str) -> Result<DeviceState, WaError> {
    Ok(c.query_row(
        "SELECT first_connected, logged_out, banned_once, ban_until FROM devices WHERE phone = ?1",
        [phone],
        |r| {
            Ok(DeviceState {
                first_connected: r.get(0)?,
                logged_out: r.get(1)?,
                banned_once: r.get(2)?,
                ban_until: r.get(3)?,
            })
        },
    )
    .optional()
    .map_err(sql)?
    .unwrap_or_default())
}

/// Records a connection; returns the device state with `first_connected` set.
pub(crate) fn connected(c: &Connection, phone: &str) -> Result<DeviceState, WaError> {
    c.execute(
        "INSERT INTO devices (phone, first_connected) VALUES (?1, ?2)
         ON CONFLICT (phone) DO UPDATE SET first_connected = COALESCE(first_connected, excluded.first_connected)",
        params![phone, now()],
    )
    .map_err(sql)?;
    device(c, phone)
}

/// A new pairing: the server forgets the old device's history, and what was sent to the
/// number before is not delivered to the new device.
pub(crate) fn paired(c: &Connection, phone: &str) -> Result<(), WaError> {
    c.execute("DELETE FROM devices WHERE phone = ?1", [phone])
        .map_err(sql)?;
    reset_cursor(c, phone)
}

pub(crate) fn mark_logged_out(c: &Connection, phone: &str) -> Result<(), WaError> {
    c.execute("UPDATE devices SET logged_out = 1 WHERE phone = ?1", [phone])
        .map_err(sql)?;
    Ok(())
}

pub(crate) fn mark_banned(c: &Connection, phone: &str, until: i64) -> Result<(), WaError> {
    c.execute(
        "UPDATE devices SET banned_once = 1, ban_until = ?2 WHERE phone = ?1",
        params![phone, until],
    )
    .map_err(sql)?;
    Ok(())
}

pub(crate) fn set_approval(c: &Connection, id: &GroupId, on: bool) -> Result<(), WaError> {
    c.execute(
        "UPDATE groups SET approval = ?2 WHERE jid = ?1",
        params![id.as_str(), on],
    )
    .map_err(sql)?;
    Ok(())
}

pub(crate) fn messages(c: &Connection) -> Result<Vec<SentMessage>, WaError> {
    let mut st = c
        .prepare("SELECT id, from_pn, to_id, text, at FROM messages ORDER BY seq")
        .map_err(sql)?;
    let rows = st
        .query_map([], |r| {
            Ok(SentMessage {
                id: r.get(0)?,
                from: r.get(1)?,
                to: r.get(2)?,
                text: r.get(3)?,
                at: r.get(4)?,
            })
        })
        .map_err(sql)?;
    Ok(rows.filter_map(|r| r.ok()).collect())
}

/// Reads the messages a world file recorded, without a running simulator (tests that run the
/// binary, or read while it runs).
pub fn read_sent_messages(world_db: &Path) -> Result<Vec<SentMessage>, WaError> {
    let c = Connection::open_with_flags(
        world_db,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(sql)?;
    c.busy_timeout(std::time::Duration::from_secs(5)).map_err(sql)?;
    messages(&c)
}

/// Records that `what` happened to `phone` (once: a second time changes nothing).
pub(crate) fn set_fate(c: &Connection, phone: &str, what: &str, until: Option<i64>) -> Result<(), WaError> {
    c.execute(
        "INSERT OR IGNORE INTO fates (phone, what, at, until) VALUES (?1, ?2, ?3, ?4)",
        params![phone, what, now(), until],
    )
    .map_err(sql)?;
    Ok(())
}

/// Whether `what` happened to `phone`, and its `until`.
pub(crate) fn fate(c: &Connection, phone: &str, what: &str) -> Result<Option<Option<i64>>, WaError> {
    c.query_row(
        "SELECT until FROM fates WHERE phone = ?1 AND what = ?2",
        params![phone, what],
        |r| r.get(0),
    )
    .optional()
    .map_err(sql)
}

/// How many messages `phone` has sent.
pub(crate) fn sent_count(c: &Connection, phone: &str) -> Result<i64, WaError> {
    c.query_row("SELECT COUNT(*) FROM messages WHERE from_pn = ?1", [phone], |r| {
        r.get(0)
    })
    .map_err(sql)
}

/// Whether `from` ever wrote to `to`.
pub(crate) fn wrote_to(c: &Connection, from: &str, to: &str) -> Result<bool, WaError> {
    c.query_row(
        "SELECT 1 FROM messages WHERE from_pn = ?1 AND to_id = ?2",
        params![from, to],
        |_| Ok(()),
    )
    .optional()
    .map(|r| r.is_some())
    .map_err(sql)
}

/// A WhatsApp user `from` (not linked to tgwa) writes `text` to the account `to`, in a world
/// file: the simulator delivers it at `to`'s next connection. For tests.
pub fn write_to(world_db: &Path, from: &str, to: &str, text: &str) -> Result<(), WaError> {
    let c = Connection::open(world_db).map_err(sql)?;
    c.busy_timeout(std::time::Duration::from_secs(5)).map_err(sql)?;
    c.execute_batch(SCHEMA).map_err(sql)?;
    // On the network's record like any message, so the account's session takes it with
    // the rest of what was sent to it (marked offline) at its next connection.
    c.execute(
        "INSERT INTO messages (id, from_pn, to_id, text, at) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![new_message_id(), from, to, text, now()],
    )
    .map_err(sql)?;
    Ok(())
}

/// Records that `from` showed "typing…" to `to` for `ms` milliseconds.
pub(crate) fn typing(c: &Connection, from: &str, to: &str, ms: u64) -> Result<(), WaError> {
    c.execute(
        "INSERT INTO chatstates (from_pn, to_id, ms, at) VALUES (?1, ?2, ?3, ?4)",
        params![from, to, ms as i64, now()],
    )
    .map_err(sql)?;
    Ok(())
}

/// The "typing…" indicators a world file recorded: `(from, to, milliseconds)`, oldest first.
pub fn read_typing(world_db: &Path) -> Result<Vec<(String, String, u64)>, WaError> {
    let c = Connection::open_with_flags(world_db, OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(sql)?;
    c.busy_timeout(std::time::Duration::from_secs(5)).map_err(sql)?;
    let mut st = c
        .prepare("SELECT from_pn, to_id, ms FROM chatstates ORDER BY seq")
        .map_err(sql)?;
    let rows = st
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get::<_, i64>(2)? as u64)))
        .map_err(sql)?;
    Ok(rows.filter_map(|r| r.ok()).collect())
}

// --- media ---

/// A file an account uploaded, as the simulated media servers hold it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimUpload {
    pub id: i64,
    /// The uploader's number (digits).
    pub owner: String,
    pub kind: String,
    pub mime: String,
    pub name: String,
    pub size: i64,
    /// SHA-256 of the bytes, hex.
    pub sha256: String,
}

/// A message that carried an uploaded file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimMediaSend {
    /// WhatsApp's message ID.
    pub id: String,
    pub from: String,
    /// A number (digits) or a group JID.
    pub to: String,
    /// The caption.
    pub text: String,
    pub upload_id: i64,
    /// `photo`, `voice`, ...
    pub kind: String,
}

/// Stores an upload; returns its ID.
pub(crate) fn upload(
    c: &Connection,
    owner: &str,
    kind: &str,
    mime: &str,
    name: &str,
    bytes: &[u8],
) -> Result<i64, WaError> {
    c.execute(
        "INSERT INTO uploads (owner, kind, mime, name, size, bytes, at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![owner, kind, mime, name, bytes.len() as i64, bytes, now()],
    )
    .map_err(sql)?;
    Ok(c.last_insert_rowid())
}

/// The bytes of upload `id` and its name and MIME type; `NotFound` for an unknown one.
pub(crate) fn uploaded(c: &Connection, id: i64) -> Result<Media, WaError> {
    c.query_row("SELECT name, mime, bytes FROM uploads WHERE id = ?1", [id], |r| {
        Ok(Media {
            file_name: r.get(0)?,
            mime: r.get(1)?,
            bytes: r.get(2)?,
        })
    })
    .optional()
    .map_err(sql)?
    .ok_or_else(|| WaError::NotFound(format!("no upload {id} on the media servers")))
}

/// Notes that message `id` carried upload `upload_id`.
pub(crate) fn note_media_send(c: &Connection, id: &str, upload_id: i64, kind: &str) -> Result<(), WaError> {
    c.execute(
        "INSERT INTO media_sends (seq, upload_id, kind) SELECT seq, ?2, ?3 FROM messages WHERE id = ?1",
        params![id, upload_id, kind],
    )
    .map_err(sql)?;
    Ok(())
}

fn open_read_only(world_db: &Path) -> Result<Connection, WaError> {
    let c = Connection::open_with_flags(
        world_db,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(sql)?;
    c.busy_timeout(std::time::Duration::from_secs(5)).map_err(sql)?;
    Ok(c)
}

/// Every upload a world file recorded, oldest first (for tests: "uploaded once").
pub fn read_uploads(world_db: &Path) -> Result<Vec<SimUpload>, WaError> {
    let c = open_read_only(world_db)?;
    let mut st = c
        .prepare("SELECT id, owner, kind, mime, name, size, bytes FROM uploads ORDER BY id")
        .map_err(sql)?;
    let rows = st
        .query_map([], |r| {
            let bytes: Vec<u8> = r.get(6)?;
            Ok(SimUpload {
                id: r.get(0)?,
                owner: r.get(1)?,
                kind: r.get(2)?,
                mime: r.get(3)?,
                name: r.get(4)?,
                size: r.get(5)?,
                sha256: crate::wa::sha256_hex(&bytes),
            })
        })
        .map_err(sql)?;
    rows.collect::<Result<_, _>>().map_err(sql)
}

/// Every message that carried an uploaded file, oldest first.
pub fn read_media_sends(world_db: &Path) -> Result<Vec<SimMediaSend>, WaError> {
    let c = open_read_only(world_db)?;
    let mut st = c
        .prepare(
            "SELECT m.id, m.from_pn, m.to_id, m.text, s.upload_id, s.kind
             FROM media_sends s JOIN messages m ON m.seq = s.seq ORDER BY s.seq",
        )
        .map_err(sql)?;
    let rows = st
        .query_map([], |r| {
            Ok(SimMediaSend {
                id: r.get(0)?,
                from: r.get(1)?,
                to: r.get(2)?,
                text: r.get(3)?,
                upload_id: r.get(4)?,
                kind: r.get(5)?,
            })
        })
        .map_err(sql)?;
    rows.collect::<Result<_, _>>().map_err(sql)
}
