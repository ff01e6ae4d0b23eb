//! Accounts and Telegram users in the master database: the model and its SQL. Functions here
//! are synchronous and take a connection; callers run them through `db::blocking`.

use std::path::PathBuf;

use rusqlite::{params, Connection, OptionalExtension, Row, TransactionBehavior};
use serde::Serialize;

use crate::db::{now, DbError};
use crate::ids::{AccountId, PhoneNumber, TelegramId};

/// Where an account stands. Stored as the snake_case name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountStatus {
    /// A pairing code was requested and not yet confirmed.
    Pairing,
    /// Paired; logs in at startup.
    Active,
    /// Logged out from the phone; files kept until removed or purged.
    LoggedOut,
    /// Temporarily banned by WhatsApp.
    Banned,
    /// The session file holds no paired device.
    Unpaired,
    /// Removed by its owner or purged; files are in trash.
    Removed,
}

impl AccountStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pairing => "pairing",
            Self::Active => "active",
            Self::LoggedOut => "logged_out",
            Self::Banned => "banned",
            Self::Unpaired => "unpaired",
            Self::Removed => "removed",
        }
    }

    /// Parses the stored name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pairing" => Self::Pairing,
            "active" => Self::Active,
            "logged_out" => Self::LoggedOut,
            "banned" => Self::Banned,
            "unpaired" => Self::Unpaired,
            "removed" => Self::Removed,
            _ => return None,
        })
    }
}

/// One row of `whatsapp_accounts`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Account {
    pub id: AccountId,
    pub telegram_id: TelegramId,
    pub phone: PhoneNumber,
    /// The device JID once paired.
    pub jid: Option<String>,
    pub db_path: PathBuf,
    pub bot_data_db_path: PathBuf,
    pub status: AccountStatus,
    pub last_error: Option<String>,
    /// Unix seconds when a temporary ban ends.
    pub banned_until: Option<i64>,
    pub status_changed_at: i64,
    pub created_at: i64,
    pub updated_at: i64,
    /// Pairings of this row: a re-pair of an own logged-out number bumps it, so work queued
    /// for an earlier pairing can tell it is stale.
    pub generation: i64,
    /// The owner's name for it («Toko Batik»), shown next to the number; see [`Account::label`].
    pub nickname: Option<String>,
}

/// Why an account operation was refused. Each variant has its own message in the bot.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("the server has reached its limit of {max} accounts")]
    ServerFull { max: usize },
    #[error("this user has reached the limit of {max} accounts")]
    UserFull { max: usize },
    #[error("the number is linked to another Telegram user")]
    OwnedByOther,
    #[error("the number is already linked to this user as account {0}")]
    AlreadyLinked(AccountId),
    #[error("a pairing is already running for this user")]
    PairingInProgress,
    #[error("no such account")]
    NotFound,
    #[error("the account belongs to another user")]
    NotOwner,
    #[error("the account is not connected to WhatsApp right now")]
    NotLive,
    #[error("the account is in state {0:?} and cannot do that")]
    WrongState(AccountStatus),
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
}

impl From<rusqlite::Error> for AccountError {
    fn from(e: rusqlite::Error) -> Self {
        AccountError::Db(DbError::Sqlite(e))
    }
}

const COLS: &str = "id, telegram_id, phone_number, jid, db_path, bot_data_db_path, status, last_error, banned_until, status_changed_at, created_at, updated_at, generation, nickname";

fn from_row(r: &Row<'_>) -> rusqlite::Result<Account> {
    let bad = |i: usize, what: &str| {
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, format!("bad {what}").into())
    };
    let id: i64 = r.get(0)?;
    let tid: i64 = r.get(1)?;
    let phone: String = r.get(2)?;
    let status: String = r.get(6)?;
    Ok(Account {
        id: AccountId::new(id).map_err(|_| bad(0, "id"))?,
        telegram_id: TelegramId::new(tid).map_err(|_| bad(1, "telegram_id"))?,
        phone: PhoneNumber::from_digits(&phone).map_err(|_| bad(2, "phone_number"))?,
        jid: r.get(3)?,
        db_path: PathBuf::from(r.get::<_, String>(4)?),
        bot_data_db_path: PathBuf::from(r.get::<_, String>(5)?),
        status: AccountStatus::parse(&status).ok_or_else(|| bad(6, "status"))?,
        last_error: r.get(7)?,
        banned_until: r.get(8)?,
        status_changed_at: r.get(9)?,
        created_at: r.get(10)?,
        updated_at: r.get(11)?,
        generation: r.get(12)?,
        nickname: r.get(13)?,
    })
}

/// The limits a new account must fit in.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_accounts: usize,
    pub max_per_user: usize,
}

/// A new account's row, before it exists.
#[derive(Debug, Clone)]
pub struct NewAccount {
    pub telegram_id: TelegramId,
    pub phone: PhoneNumber,
    pub jid: Option<String>,
    pub db_path: PathBuf,
    pub bot_data_db_path: PathBuf,
    pub status: AccountStatus,
}

/// The row of `phone` that is not removed, if any (at most one exists: a unique index).
fn live_by_phone(conn: &Connection, phone: &PhoneNumber) -> Result<Option<Account>, AccountError> {
    Ok(conn
        .query_row(
            &format!("SELECT {COLS} FROM whatsapp_accounts WHERE phone_number = ?1 AND status != 'removed'"),
            [phone.digits()],
            from_row,
        )
        .optional()?)
}

/// Accounts that count against the server's ceiling: paired ones. Pairing rows do not, so
/// throwaway pairings cannot lock real users out; the ceiling is checked again when a pairing
/// completes ([`complete_pairing`]).
fn count_paired(conn: &Connection) -> Result<i64, AccountError> {
    Ok(conn.query_row(
        "SELECT COUNT(*) FROM whatsapp_accounts WHERE status NOT IN ('removed', 'pairing')",
        [],
        |r| r.get(0),
    )?)
}

/// Inserts an account, enforcing ownership and limits in one immediate transaction so two
/// requests cannot both squeeze under a limit. A removed row is history: the number gets a new
/// row with a new ID, never the old one. Pairing an own logged-out or unpaired number again
/// keeps that row (its ID and history) and bumps its generation.
pub fn insert(conn: &mut Connection, new: &NewAccount, limits: Limits) -> Result<Account, AccountError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let existing = live_by_phone(&tx, &new.phone)?;
    if let Some(a) = &existing {
        if a.telegram_id != new.telegram_id {
            return Err(AccountError::OwnedByOther);
        }
        if a.status == AccountStatus::Pairing {
            return Err(AccountError::PairingInProgress);
        }
        let repair = new.status == AccountStatus::Pairing
            && matches!(a.status, AccountStatus::LoggedOut | AccountStatus::Unpaired);
        if !repair {
            return Err(AccountError::AlreadyLinked(a.id));
        }
    }
    if new.status == AccountStatus::Pairing {
        let pairing: i64 = tx.query_row(
            "SELECT COUNT(*) FROM whatsapp_accounts WHERE telegram_id = ?1 AND status = 'pairing'",
            [new.telegram_id.get()],
            |r| r.get(0),
        )?;
        if pairing > 0 {
            return Err(AccountError::PairingInProgress);
        }
    }
    let t = now();
    if let Some(a) = existing {
        // The row already counts against the limits.
        tx.execute(
            "UPDATE whatsapp_accounts SET status='pairing', last_error=NULL, status_changed_at=?2, updated_at=?2,
             generation = generation + 1 WHERE id=?1",
            params![a.id.get(), t],
        )?;
        let acc = get(&tx, a.id)?.ok_or(AccountError::NotFound)?;
        tx.commit()?;
        return Ok(acc);
    }
    if count_paired(&tx)? as usize >= limits.max_accounts {
        return Err(AccountError::ServerFull {
            max: limits.max_accounts,
        });
    }
    let mine: i64 = tx.query_row(
        "SELECT COUNT(*) FROM whatsapp_accounts WHERE telegram_id = ?1 AND status != 'removed'",
        [new.telegram_id.get()],
        |r| r.get(0),
    )?;
    if mine as usize >= limits.max_per_user {
        return Err(AccountError::UserFull {
            max: limits.max_per_user,
        });
    }
    tx.execute(
        "INSERT INTO whatsapp_accounts (telegram_id, phone_number, jid, db_path, bot_data_db_path, status,
         status_changed_at, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7, ?7)",
        params![
            new.telegram_id.get(),
            new.phone.digits(),
            new.jid,
            new.db_path.to_string_lossy(),
            new.bot_data_db_path.to_string_lossy(),
            new.status.as_str(),
            t
        ],
    )?;
    let acc = get(
        &tx,
        AccountId::new(tx.last_insert_rowid()).map_err(|_| AccountError::NotFound)?,
    )?
    .ok_or(AccountError::NotFound)?;
    tx.commit()?;
    Ok(acc)
}

/// A pairing finished: records the device, makes the account active and the owner's active
/// account, in one immediate transaction that checks the server's ceiling again (pairing rows
/// do not count against it while they wait). `ServerFull` leaves the row as it was.
pub fn complete_pairing(
    conn: &mut Connection,
    id: AccountId,
    owner: TelegramId,
    jid: &str,
    limits: Limits,
) -> Result<(), AccountError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let acc = get(&tx, id)?.ok_or(AccountError::NotFound)?;
    if acc.telegram_id != owner {
        return Err(AccountError::NotOwner);
    }
    if acc.status != AccountStatus::Pairing {
        return Err(AccountError::WrongState(acc.status));
    }
    // A re-pair already counts (its row was paired before); a new row must fit.
    if acc.jid.is_none() && count_paired(&tx)? as usize >= limits.max_accounts {
        return Err(AccountError::ServerFull {
            max: limits.max_accounts,
        });
    }
    set_jid(&tx, id, jid)?;
    set_status(&tx, id, AccountStatus::Active, None, None)?;
    tx.execute(
        "INSERT INTO telegram_users (telegram_id, active_account_id, first_seen, last_seen) VALUES (?1, ?2, ?3, ?3)
         ON CONFLICT(telegram_id) DO UPDATE SET active_account_id = ?2",
        params![owner.get(), id.get(), now()],
    )?;
    audit(&tx, Some(owner), Some(id), "paired", "")?;
    tx.commit()?;
    Ok(())
}

/// One account by ID, whoever owns it.
pub fn get(conn: &Connection, id: AccountId) -> Result<Option<Account>, AccountError> {
    Ok(conn
        .query_row(
            &format!("SELECT {COLS} FROM whatsapp_accounts WHERE id = ?1"),
            [id.get()],
            from_row,
        )
        .optional()?)
}

/// The account of a phone number that is not removed, if any.
pub fn by_phone(conn: &Connection, phone: &PhoneNumber) -> Result<Option<Account>, AccountError> {
    live_by_phone(conn, phone)
}

/// A user's accounts that are not removed, oldest first.
pub fn of_user(conn: &Connection, tid: TelegramId) -> Result<Vec<Account>, AccountError> {
    let mut st = conn.prepare_cached(&format!(
        "SELECT {COLS} FROM whatsapp_accounts WHERE telegram_id = ?1 AND status != 'removed' ORDER BY id"
    ))?;
    let rows = st.query_map([tid.get()], from_row)?.collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// Every account row, removed ones included, by ID.
pub fn all(conn: &Connection) -> Result<Vec<Account>, AccountError> {
    let mut st = conn.prepare_cached(&format!("SELECT {COLS} FROM whatsapp_accounts ORDER BY id"))?;
    let rows = st.query_map([], from_row)?.collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// Changes an account's status, recording why.
pub fn set_status(
    conn: &Connection,
    id: AccountId,
    status: AccountStatus,
    last_error: Option<&str>,
    banned_until: Option<i64>,
) -> Result<(), AccountError> {
    let t = now();
    let n = conn.execute(
        "UPDATE whatsapp_accounts SET status=?2, last_error=?3, banned_until=?4,
         status_changed_at = CASE WHEN status = ?2 THEN status_changed_at ELSE ?5 END, updated_at=?5 WHERE id=?1",
        params![id.get(), status.as_str(), last_error, banned_until, t],
    )?;
    if n == 0 {
        return Err(AccountError::NotFound);
    }
    Ok(())
}

/// Records the paired device's JID.
pub fn set_jid(conn: &Connection, id: AccountId, jid: &str) -> Result<(), AccountError> {
    conn.execute(
        "UPDATE whatsapp_accounts SET jid=?2, updated_at=?3 WHERE id=?1",
        params![id.get(), jid, now()],
    )?;
    Ok(())
}

/// Deletes a row that never became an account (a pairing that failed or expired).
pub fn delete_pairing(conn: &Connection, id: AccountId) -> Result<bool, AccountError> {
    let n = conn.execute(
        "DELETE FROM whatsapp_accounts WHERE id=?1 AND status='pairing'",
        [id.get()],
    )?;
    Ok(n > 0)
}

/// A Telegram user as the bot knows them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TelegramUser {
    pub telegram_id: TelegramId,
    /// `id` or `en`.
    pub language: String,
    pub active_account_id: Option<AccountId>,
    pub role: String,
    /// The user blocked the bot (403): no more sends until they write again.
    pub blocked: bool,
    /// An operator suspended the user: refused like a user with no account.
    pub suspended: bool,
}

/// Records that a user was seen (creating them with `language` the first time, and clearing
/// `blocked`, since they wrote to us) and returns them.
pub fn touch_user(conn: &Connection, tid: TelegramId, language: &str) -> Result<TelegramUser, AccountError> {
    let t = now();
    conn.execute(
        "INSERT INTO telegram_users (telegram_id, language, first_seen, last_seen) VALUES (?1, ?2, ?3, ?3)
         ON CONFLICT(telegram_id) DO UPDATE SET last_seen = ?3, blocked = 0",
        params![tid.get(), language, t],
    )?;
    user(conn, tid)?.ok_or(AccountError::NotFound)
}

/// A user's row, if they were ever seen.
pub fn user(conn: &Connection, tid: TelegramId) -> Result<Option<TelegramUser>, AccountError> {
    Ok(conn
        .query_row(
            "SELECT telegram_id, language, active_account_id, role, blocked, suspended FROM telegram_users WHERE telegram_id = ?1",
            [tid.get()],
            |r| {
                Ok(TelegramUser {
                    telegram_id: tid,
                    language: r.get(1)?,
                    active_account_id: r.get::<_, Option<i64>>(2)?.and_then(|v| AccountId::new(v).ok()),
                    role: r.get(3)?,
                    blocked: r.get::<_, i64>(4)? != 0,
                    suspended: r.get::<_, i64>(5)? != 0,
                })
            },
        )
        .optional()?)
}

/// Makes `id` the user's active account; refused unless the user owns it and it is not removed.
pub fn set_active(conn: &mut Connection, tid: TelegramId, id: AccountId) -> Result<(), AccountError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let acc = tx
        .query_row(
            &format!("SELECT {COLS} FROM whatsapp_accounts WHERE id = ?1"),
            [id.get()],
            from_row,
        )
        .optional()?
        .ok_or(AccountError::NotFound)?;
    if acc.telegram_id != tid {
        return Err(AccountError::NotOwner);
    }
    if matches!(acc.status, AccountStatus::Removed | AccountStatus::Pairing) {
        return Err(AccountError::WrongState(acc.status));
    }
    let t = now();
    tx.execute(
        "INSERT INTO telegram_users (telegram_id, active_account_id, first_seen, last_seen) VALUES (?1, ?2, ?3, ?3)
         ON CONFLICT(telegram_id) DO UPDATE SET active_account_id = ?2",
        params![tid.get(), id.get(), t],
    )?;
    tx.commit()?;
    Ok(())
}

/// Clears the active account of whoever has `id` active.
pub fn clear_active(conn: &Connection, id: AccountId) -> Result<(), AccountError> {
    conn.execute(
        "UPDATE telegram_users SET active_account_id = NULL WHERE active_account_id = ?1",
        [id.get()],
    )?;
    Ok(())
}

/// Sets the user's language (`id` or `en`).
pub fn set_language(conn: &Connection, tid: TelegramId, lang: &str) -> Result<(), AccountError> {
    let t = now();
    conn.execute(
        "INSERT INTO telegram_users (telegram_id, language, first_seen, last_seen) VALUES (?1, ?2, ?3, ?3)
         ON CONFLICT(telegram_id) DO UPDATE SET language = ?2",
        params![tid.get(), lang, t],
    )?;
    Ok(())
}

/// Marks the user as having blocked the bot (or not).
pub fn set_blocked(conn: &Connection, tid: TelegramId, blocked: bool) -> Result<(), AccountError> {
    conn.execute(
        "UPDATE telegram_users SET blocked = ?2 WHERE telegram_id = ?1",
        params![tid.get(), blocked as i64],
    )?;
    Ok(())
}

/// Suspends or restores a user (creating their row if they were never seen); false when
/// nothing changed.
pub fn set_suspended(conn: &Connection, tid: TelegramId, suspended: bool) -> Result<bool, AccountError> {
    let t = now();
    let n = conn.execute(
        "INSERT INTO telegram_users (telegram_id, suspended, first_seen, last_seen) VALUES (?1, ?2, ?3, ?3)
         ON CONFLICT(telegram_id) DO UPDATE SET suspended = ?2 WHERE suspended != ?2",
        params![tid.get(), suspended as i64, t],
    )?;
    Ok(n > 0)
}

/// Labels after which an audit detail names a Telegram user (`owner 123…`, `user 123…`): kept
/// whole so an operator can find that user; every other phone-like number is masked.
const AUDIT_ID_LABELS: [&str; 3] = ["owner ", "user ", "telegram_id="];

/// Appends to the audit log. Every phone number in `detail` is masked here, the one place
/// audit rows are written, whatever the caller put in it (an operator's search, a draft, a
/// refused button's data).
pub fn audit(
    conn: &Connection,
    tid: Option<TelegramId>,
    account: Option<AccountId>,
    action: &str,
    detail: &str,
) -> Result<(), AccountError> {
    let detail = crate::ids::mask_phones_in(detail, &AUDIT_ID_LABELS);
    if let Some(tid) = tid.filter(|_| action.starts_with("refused")) {
        if fold_refusal(conn, tid, action)? {
            return Ok(());
        }
    }
    conn.execute(
        "INSERT INTO audit_log (at, telegram_id, account_id, action, detail) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            now(),
            tid.map(TelegramId::get),
            account.map(AccountId::get),
            action,
            detail
        ],
    )?;
    Ok(())
}

/// Refusals (a forged, stale or forbidden button or command) are audited once per user,
/// action and minute: a repeat in the same minute is counted on that minute's row instead of
/// adding one, so a user hammering a button cannot grow the log without limit. True when
/// the refusal was folded into an existing row.
fn fold_refusal(conn: &Connection, tid: TelegramId, action: &str) -> Result<bool, AccountError> {
    let t = now();
    let row: Option<(i64, String)> = conn
        .query_row(
            "SELECT id, COALESCE(detail, '') FROM audit_log WHERE telegram_id = ?1 AND action = ?2 AND at >= ?3
             ORDER BY id DESC LIMIT 1",
            params![tid.get(), action, t - t.rem_euclid(60)],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let Some((id, detail)) = row else {
        return Ok(false);
    };
    let (first, more) = match detail.rsplit_once(" [+") {
        Some((first, tail)) => match tail
            .strip_suffix(" more this minute]")
            .and_then(|n| n.parse::<u64>().ok())
        {
            Some(n) => (first.to_string(), n),
            None => (detail.clone(), 0),
        },
        None => (detail.clone(), 0),
    };
    conn.execute(
        "UPDATE audit_log SET detail = ?2 WHERE id = ?1",
        params![id, format!("{first} [+{} more this minute]", more + 1)],
    )?;
    Ok(true)
}

/// One audit log row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditEntry {
    /// Unix seconds.
    pub at: i64,
    /// Who acted (none for the system).
    pub telegram_id: Option<i64>,
    /// What happened.
    pub action: String,
    /// Free text.
    pub detail: String,
}

/// The newest `limit` audit rows about account `id`, newest first.
pub fn audit_of(conn: &Connection, id: AccountId, limit: u32) -> Result<Vec<AuditEntry>, AccountError> {
    let mut st = conn.prepare_cached(
        "SELECT at, telegram_id, action, COALESCE(detail, '') FROM audit_log WHERE account_id = ?1
         ORDER BY at DESC, id DESC LIMIT ?2",
    )?;
    let rows = st
        .query_map(params![id.get(), limit], |r| {
            Ok(AuditEntry {
                at: r.get(0)?,
                telegram_id: r.get(1)?,
                action: r.get(2)?,
                detail: r.get(3)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// How many Telegram users the bot has seen.
pub fn count_users(conn: &Connection) -> Result<i64, AccountError> {
    Ok(conn.query_row("SELECT COUNT(*) FROM telegram_users", [], |r| r.get(0))?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::{migrate, Schema};

    fn db() -> Connection {
        let mut c = Connection::open_in_memory().unwrap();
        c.execute_batch("PRAGMA foreign_keys=ON").unwrap();
        migrate(&mut c, Schema::Master).unwrap();
        c
    }

    fn new(tid: i64, phone: &str, status: AccountStatus) -> NewAccount {
        NewAccount {
            telegram_id: TelegramId::new(tid).unwrap(),
            phone: PhoneNumber::from_digits(phone).unwrap(),
            jid: None,
            db_path: format!("/d/{tid}/whatsmeow-{tid}-{phone}.db").into(),
            bot_data_db_path: format!("/d/{tid}/bot_data-{tid}-{phone}.db").into(),
            status,
        }
    }

    const L: Limits = Limits {
        max_accounts: 3,
        max_per_user: 2,
    };

    #[test]
    fn limits_and_ownership() {
        let mut c = db();
        let a = insert(&mut c, &new(1, "6281000000001", AccountStatus::Active), L).unwrap();
        assert!(matches!(
            insert(&mut c, &new(2, "6281000000001", AccountStatus::Active), L),
            Err(AccountError::OwnedByOther)
        ));
        assert!(
            matches!(insert(&mut c, &new(1, "6281000000001", AccountStatus::Active), L), Err(AccountError::AlreadyLinked(id)) if id == a.id)
        );
        insert(&mut c, &new(1, "6281000000002", AccountStatus::Active), L).unwrap();
        assert!(matches!(
            insert(&mut c, &new(1, "6281000000003", AccountStatus::Active), L),
            Err(AccountError::UserFull { max: 2 })
        ));
        insert(&mut c, &new(2, "6281000000004", AccountStatus::Active), L).unwrap();
        assert!(matches!(
            insert(&mut c, &new(3, "6281000000005", AccountStatus::Active), L),
            Err(AccountError::ServerFull { max: 3 })
        ));
        // A removed row frees its number and its slot; the number goes to another user under
        // a new ID, and the old row stays as history.
        set_status(&c, a.id, AccountStatus::Removed, Some("removed by owner"), None).unwrap();
        let again = insert(&mut c, &new(3, "6281000000001", AccountStatus::Active), L).unwrap();
        assert_ne!(again.id, a.id);
        assert_eq!(again.telegram_id.get(), 3);
        let old = get(&c, a.id).unwrap().unwrap();
        assert_eq!((old.telegram_id.get(), old.status), (1, AccountStatus::Removed));
        assert_eq!(by_phone(&c, &again.phone).unwrap().unwrap().id, again.id);
    }

    #[test]
    fn ids_are_never_reused_even_after_a_deleted_pairing() {
        let mut c = db();
        let big = Limits {
            max_accounts: 10,
            max_per_user: 10,
        };
        let p = insert(&mut c, &new(1, "6281000000001", AccountStatus::Pairing), big).unwrap();
        assert!(delete_pairing(&c, p.id).unwrap());
        let q = insert(&mut c, &new(2, "6281000000001", AccountStatus::Pairing), big).unwrap();
        assert!(q.id.get() > p.id.get());
    }

    #[test]
    fn pairing_rows_do_not_hold_the_server_ceiling_hostage() {
        let mut c = db();
        let two = Limits {
            max_accounts: 2,
            max_per_user: 5,
        };
        // Three throwaway pairings by three users, then a real one: all may start.
        let mut rows = Vec::new();
        for (u, p) in [
            (1, "6281000000001"),
            (2, "6281000000002"),
            (3, "6281000000003"),
            (4, "6281000000004"),
        ] {
            rows.push(insert(&mut c, &new(u, p, AccountStatus::Pairing), two).unwrap());
        }
        // The ceiling is enforced when pairings complete.
        for r in &rows[..2] {
            complete_pairing(&mut c, r.id, r.telegram_id, "x@s.whatsapp.net", two).unwrap();
        }
        assert!(matches!(
            complete_pairing(&mut c, rows[2].id, rows[2].telegram_id, "x@s.whatsapp.net", two),
            Err(AccountError::ServerFull { max: 2 })
        ));
        assert_eq!(get(&c, rows[2].id).unwrap().unwrap().status, AccountStatus::Pairing);
        // And only by the owner, only for a pairing row.
        assert!(matches!(
            complete_pairing(&mut c, rows[3].id, TelegramId::new(9).unwrap(), "x", two),
            Err(AccountError::NotOwner)
        ));
        assert!(matches!(
            complete_pairing(&mut c, rows[0].id, rows[0].telegram_id, "x", two),
            Err(AccountError::WrongState(AccountStatus::Active))
        ));
    }

    #[test]
    fn a_repair_keeps_the_row_and_bumps_its_generation() {
        let mut c = db();
        let a = insert(&mut c, &new(1, "6281000000001", AccountStatus::Active), L).unwrap();
        set_status(&c, a.id, AccountStatus::LoggedOut, None, None).unwrap();
        let r = insert(&mut c, &new(1, "6281000000001", AccountStatus::Pairing), L).unwrap();
        assert_eq!(r.id, a.id);
        assert_eq!(r.generation, a.generation + 1);
        // Another user cannot take it over while it is logged out.
        set_status(&c, a.id, AccountStatus::LoggedOut, None, None).unwrap();
        assert!(matches!(
            insert(&mut c, &new(2, "6281000000001", AccountStatus::Pairing), L),
            Err(AccountError::OwnedByOther)
        ));
    }

    #[test]
    fn one_pairing_per_user() {
        let mut c = db();
        let big = Limits {
            max_accounts: 10,
            max_per_user: 10,
        };
        insert(&mut c, &new(1, "6281000000001", AccountStatus::Pairing), big).unwrap();
        assert!(matches!(
            insert(&mut c, &new(1, "6281000000002", AccountStatus::Pairing), big),
            Err(AccountError::PairingInProgress)
        ));
        insert(&mut c, &new(2, "6281000000003", AccountStatus::Pairing), big).unwrap();
    }

    #[test]
    fn active_account_only_if_owned() {
        let mut c = db();
        let a = insert(&mut c, &new(1, "6281000000001", AccountStatus::Active), L).unwrap();
        let b = insert(&mut c, &new(2, "6281000000002", AccountStatus::Active), L).unwrap();
        let u1 = TelegramId::new(1).unwrap();
        touch_user(&c, u1, "id").unwrap();
        set_active(&mut c, u1, a.id).unwrap();
        assert!(matches!(set_active(&mut c, u1, b.id), Err(AccountError::NotOwner)));
        assert_eq!(user(&c, u1).unwrap().unwrap().active_account_id, Some(a.id));
        assert_eq!(of_user(&c, u1).unwrap().len(), 1);
    }

    #[test]
    fn audit_details_never_hold_a_whole_phone_number() {
        let c = db();
        let tid = TelegramId::new(5_123_456_789).unwrap();
        for detail in [
            "/admin 6281234567890",
            "#3: call +62 812-3456-7890 today",
            "owner 5123456789, 2 paused",
            "Pair(PhoneNumber(\"6281234567890\"))",
        ] {
            audit(&c, Some(tid), None, "test", detail).unwrap();
        }
        let mut st = c.prepare("SELECT detail FROM audit_log ORDER BY id").unwrap();
        let rows: Vec<String> = st.query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect();
        assert_eq!(
            rows,
            [
                "/admin 62*******7890",
                "#3: call +62 ***-****-7890 today",
                "owner 5123456789, 2 paused",
                "Pair(PhoneNumber(\"62*******7890\"))",
            ]
        );
    }

    #[test]
    fn refusals_are_audited_once_per_user_action_and_minute() {
        let c = db();
        let (a, b) = (TelegramId::new(11).unwrap(), TelegramId::new(12).unwrap());
        for _ in 0..500 {
            audit(&c, Some(a), None, "refused_callback", "forged: xx").unwrap();
        }
        audit(&c, Some(b), None, "refused_callback", "forged: yy").unwrap();
        audit(&c, Some(a), None, "refused_admin", "/admin").unwrap();
        audit(&c, Some(a), None, "switch", "").unwrap();
        audit(&c, Some(a), None, "switch", "").unwrap();
        let rows: Vec<(i64, String, String)> = c
            .prepare("SELECT telegram_id, action, detail FROM audit_log ORDER BY id")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        // The minute may turn during the loop: then a second row starts, never more.
        let a_rows: Vec<_> = rows.iter().filter(|r| r.0 == 11 && r.1 == "refused_callback").collect();
        assert!(a_rows.len() <= 2, "{a_rows:?}");
        let counted: u64 = a_rows
            .iter()
            .map(|r| {
                r.2.rsplit_once(" [+")
                    .and_then(|(_, t)| t.strip_suffix(" more this minute]"))
                    .map_or(0, |n| n.parse::<u64>().unwrap())
                    + 1
            })
            .sum();
        assert_eq!(counted, 500);
        assert!(a_rows[0].2.starts_with("forged: xx"));
        assert_eq!(rows.iter().filter(|r| r.0 == 12).count(), 1);
        assert_eq!(rows.iter().filter(|r| r.1 == "refused_admin").count(), 1);
        assert_eq!(
            rows.iter().filter(|r| r.1 == "switch").count(),
            2,
            "other actions are each kept"
        );
    }
}

// --- members ---

/// An account's nickname: trimmed, 1 to 32 characters, no control characters (it is shown
/// inline next to the number, so no line breaks).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nickname(String);

/// Why a nickname was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NicknameError {
    #[error("the nickname is empty")]
    Empty,
    #[error("the nickname is longer than {max} characters")]
    TooLong { max: usize },
    #[error("the nickname holds line breaks or control characters")]
    Control,
}

impl Nickname {
    /// The longest nickname, in characters.
    pub const MAX: usize = 32;

    /// Trims and checks a nickname the owner typed.
    pub fn parse(s: &str) -> Result<Self, NicknameError> {
        let t = s.trim();
        if t.is_empty() {
            return Err(NicknameError::Empty);
        }
        if t.chars().count() > Self::MAX {
            return Err(NicknameError::TooLong { max: Self::MAX });
        }
        if t.chars().any(char::is_control) {
            return Err(NicknameError::Control);
        }
        Ok(Self(t.to_string()))
    }

    /// The nickname.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Account {
    /// How the account is shown to people, as plain text: `Toko Batik (+62…)` with a
    /// nickname, else the number. The one place that puts the two together, so a change of
    /// the number's display happens in `PhoneNumber`'s `Display` alone.
    pub fn label(&self) -> String {
        self.label_around(&self.phone.to_string())
    }

    /// [`Account::label`] with the number shown as `shown` (an operator screen's masked
    /// number).
    pub fn label_around(&self, shown: &str) -> String {
        match self.nickname.as_deref().filter(|n| !n.is_empty()) {
            Some(n) => format!("{n} ({shown})"),
            None => shown.to_string(),
        }
    }
}

/// Sets (or clears, with `None`) the nickname of the owner's account.
pub fn set_nickname(
    conn: &mut Connection,
    tid: TelegramId,
    id: AccountId,
    nickname: Option<&Nickname>,
) -> Result<(), AccountError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let owner: Option<i64> = tx
        .query_row(
            "SELECT telegram_id FROM whatsapp_accounts WHERE id = ?1 AND status != 'removed'",
            [id.get()],
            |r| r.get(0),
        )
        .optional()?;
    match owner {
        None => return Err(AccountError::NotFound),
        Some(o) if o != tid.get() => return Err(AccountError::NotOwner),
        Some(_) => {}
    }
    tx.execute(
        "UPDATE whatsapp_accounts SET nickname = ?2, updated_at = ?3 WHERE id = ?1",
        params![id.get(), nickname.map(Nickname::as_str), now()],
    )?;
    tx.commit()?;
    Ok(())
}

#[cfg(test)]
mod nickname_tests {
    use super::*;

    #[test]
    fn nicknames_are_trimmed_and_bounded() {
        assert_eq!(Nickname::parse("  Toko Batik ").unwrap().as_str(), "Toko Batik");
        assert_eq!(Nickname::parse(&"é".repeat(32)).unwrap().as_str().chars().count(), 32);
        assert_eq!(Nickname::parse("   "), Err(NicknameError::Empty));
        assert_eq!(
            Nickname::parse(&"x".repeat(33)),
            Err(NicknameError::TooLong { max: 32 })
        );
        assert_eq!(Nickname::parse("a\nb"), Err(NicknameError::Control));
    }
}
