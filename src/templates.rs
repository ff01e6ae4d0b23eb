//! Broadcast templates: texts saved under a name in an account's bot data, to broadcast again.
//!
//! Text only for now; the `media_ref` column is left for media messages (a template that
//! carries a photo or document names the stored media there).

use rusqlite::{params, Connection, OptionalExtension};

use crate::db::{now, DbError};

/// Most templates one account keeps.
pub const MAX_TEMPLATES: usize = 50;
/// Longest template name, in characters.
pub const MAX_NAME: usize = 40;

/// A saved broadcast text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    pub id: i64,
    pub name: String,
    pub text: String,
}

/// Why a template was not saved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("the name is empty")]
    EmptyName,
    #[error("the name is longer than {MAX_NAME} characters")]
    NameTooLong,
    #[error("already {MAX_TEMPLATES} templates")]
    Full,
}

/// The account's templates, by name.
pub fn list(c: &Connection) -> Result<Vec<Template>, DbError> {
    Ok(
        c.prepare("SELECT id, name, text FROM templates ORDER BY name COLLATE NOCASE, id")?
            .query_map([], |r| {
                Ok(Template {
                    id: r.get(0)?,
                    name: r.get(1)?,
                    text: r.get(2)?,
                })
            })?
            .collect::<Result<_, _>>()?,
    )
}

/// One template.
pub fn get(c: &Connection, id: i64) -> Result<Option<Template>, DbError> {
    Ok(
        c.query_row("SELECT id, name, text FROM templates WHERE id = ?1", [id], |r| {
            Ok(Template {
                id: r.get(0)?,
                name: r.get(1)?,
                text: r.get(2)?,
            })
        })
        .optional()?,
    )
}

/// Saves `text` under `name`; a template of the same name is replaced. Returns its ID.
pub fn save(c: &Connection, name: &str, text: &str) -> Result<Result<i64, TemplateError>, DbError> {
    let name = name.trim();
    if name.is_empty() {
        return Ok(Err(TemplateError::EmptyName));
    }
    if name.chars().count() > MAX_NAME {
        return Ok(Err(TemplateError::NameTooLong));
    }
    let exists: bool = c
        .query_row("SELECT 1 FROM templates WHERE name = ?1", [name], |_| Ok(()))
        .optional()?
        .is_some();
    let count: i64 = c.query_row("SELECT COUNT(*) FROM templates", [], |r| r.get(0))?;
    if !exists && count as usize >= MAX_TEMPLATES {
        return Ok(Err(TemplateError::Full));
    }
    let t = now();
    c.execute(
        "INSERT INTO templates (name, text, created_at, updated_at) VALUES (?1, ?2, ?3, ?3)
         ON CONFLICT (name) DO UPDATE SET text = ?2, updated_at = ?3",
        params![name, text, t],
    )?;
    let id = c.query_row("SELECT id FROM templates WHERE name = ?1", [name], |r| r.get(0))?;
    Ok(Ok(id))
}

/// Deletes a template; `false` when there was none.
pub fn delete(c: &Connection, id: i64) -> Result<bool, DbError> {
    Ok(c.execute("DELETE FROM templates WHERE id = ?1", [id])? == 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_are_saved_replaced_listed_and_deleted() {
        let mut c = Connection::open_in_memory().unwrap();
        crate::db::migrate(&mut c, crate::db::Schema::Account).unwrap();
        let a = save(&c, " Promo ", "Halo {nama|Kak}").unwrap().unwrap();
        let b = save(&c, "arisan", "Kumpul besok").unwrap().unwrap();
        assert_eq!(save(&c, "Promo", "Halo lagi").unwrap(), Ok(a), "same name: replaced");
        let all = list(&c).unwrap();
        assert_eq!(
            all.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(),
            ["arisan", "Promo"]
        );
        assert_eq!(get(&c, a).unwrap().unwrap().text, "Halo lagi");
        assert_eq!(save(&c, "  ", "x").unwrap(), Err(TemplateError::EmptyName));
        assert_eq!(save(&c, &"x".repeat(41), "x").unwrap(), Err(TemplateError::NameTooLong));
        assert!(delete(&c, b).unwrap());
        assert!(!delete(&c, b).unwrap());
        assert_eq!(list(&c).unwrap().len(), 1);
    }

    #[test]
    fn the_schedule_migration_keeps_jobs_and_their_items() {
        let mut c = Connection::open_in_memory().unwrap();
        c.execute_batch("PRAGMA foreign_keys=ON").unwrap();
        // A database as it was before: migrations 001 to 005, with a job and its items.
        for sql in [
            include_str!("../migrations/account/001_init.sql"),
            include_str!("../migrations/account/002_item_order.sql"),
            include_str!("../migrations/account/003_exactly_once.sql"),
            include_str!("../migrations/account/004_contacts.sql"),
            include_str!("../migrations/account/005_inbox.sql"),
        ] {
            c.execute_batch(sql).unwrap();
        }
        c.pragma_update(None, "user_version", 5).unwrap();
        c.execute(
            "INSERT INTO jobs (kind, state, params, telegram_id, chat_id, created_at, updated_at, account_id, generation)
             VALUES ('broadcast', 'paused', '{}', 7, 8, 1, 2, 3, 4)",
            [],
        )
        .unwrap();
        c.execute(
            "INSERT INTO job_items (job_id, seq, input, state, updated_at) VALUES (1, 0, '62812', 'ok', 0)",
            [],
        )
        .unwrap();
        crate::db::migrate(&mut c, crate::db::Schema::Account).unwrap();
        let row: (String, i64, i64, Option<i64>) = c
            .query_row(
                "SELECT state, telegram_id, generation, run_at FROM jobs WHERE id = 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .unwrap();
        assert_eq!(row, ("paused".into(), 7, 4, None));
        let items: i64 = c
            .query_row(
                "SELECT COUNT(*) FROM job_items JOIN jobs ON jobs.id = job_items.job_id",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(items, 1, "the items kept their job");
        c.execute("UPDATE jobs SET state = 'scheduled', run_at = 100 WHERE id = 1", [])
            .unwrap();
        assert!(c.execute("UPDATE jobs SET state = 'bogus'", []).is_err());
        // Deleting the job still takes its items (the reference points at the new table).
        c.execute("DELETE FROM jobs", []).unwrap();
        let left: i64 = c.query_row("SELECT COUNT(*) FROM job_items", [], |r| r.get(0)).unwrap();
        assert_eq!(left, 0);
    }
}
