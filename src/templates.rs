//! Broadcast templates: texts saved under a name in an account's bot data, to broadcast again.
//!
//! A template saved from a broadcast that carries a file keeps its own copy of the file in
//! the user's `media` folder, named in `media_ref` (a [`JobMedia`] as JSON, without an
//! upload: WhatsApp's upload references do not last, the bytes do). Replacing or deleting
//! the template hands its old file name back for the caller to delete.

use rusqlite::{params, Connection, OptionalExtension};

use crate::db::{now, DbError};
use crate::jobs::JobMedia;

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
    /// The file every message of a broadcast from it carries (its `file` is the
    /// template's own copy), if any.
    pub media: Option<JobMedia>,
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

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Template> {
    let media: Option<String> = r.get(3)?;
    Ok(Template {
        id: r.get(0)?,
        name: r.get(1)?,
        text: r.get(2)?,
        // A reference that no longer parses is a text template: the text is still good.
        media: media.and_then(|m| serde_json::from_str(&m).ok()),
    })
}

/// The account's templates, by name.
pub fn list(c: &Connection) -> Result<Vec<Template>, DbError> {
    Ok(
        c.prepare("SELECT id, name, text, media_ref FROM templates ORDER BY name COLLATE NOCASE, id")?
            .query_map([], row)?
            .collect::<Result<_, _>>()?,
    )
}

/// One template.
pub fn get(c: &Connection, id: i64) -> Result<Option<Template>, DbError> {
    Ok(c.query_row(
        "SELECT id, name, text, media_ref FROM templates WHERE id = ?1",
        [id],
        row,
    )
    .optional()?)
}

/// A saved template: its ID, and the file of the template it replaced (to delete), if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Saved {
    /// The template's ID.
    pub id: i64,
    /// The replaced template's own file, which nothing needs any more.
    pub old_file: Option<String>,
}

/// Saves `text` (with `media`, whose upload is dropped) under `name`; a template of the same
/// name is replaced.
pub fn save(
    c: &Connection,
    name: &str,
    text: &str,
    media: Option<&JobMedia>,
) -> Result<Result<Saved, TemplateError>, DbError> {
    let name = name.trim();
    if name.is_empty() {
        return Ok(Err(TemplateError::EmptyName));
    }
    if name.chars().count() > MAX_NAME {
        return Ok(Err(TemplateError::NameTooLong));
    }
    let old: Option<Option<String>> = c
        .query_row("SELECT media_ref FROM templates WHERE name = ?1", [name], |r| r.get(0))
        .optional()?;
    let count: i64 = c.query_row("SELECT COUNT(*) FROM templates", [], |r| r.get(0))?;
    if old.is_none() && count as usize >= MAX_TEMPLATES {
        return Ok(Err(TemplateError::Full));
    }
    let media_ref = media
        .map(|m| {
            serde_json::to_string(&JobMedia {
                uploaded: None,
                ..m.clone()
            })
        })
        .transpose()
        .map_err(|e| DbError::Task(e.to_string()))?;
    let t = now();
    c.execute(
        "INSERT INTO templates (name, text, media_ref, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?4)
         ON CONFLICT (name) DO UPDATE SET text = ?2, media_ref = ?3, updated_at = ?4",
        params![name, text, media_ref, t],
    )?;
    let id = c.query_row("SELECT id FROM templates WHERE name = ?1", [name], |r| r.get(0))?;
    let old_file = old
        .flatten()
        .and_then(|m| serde_json::from_str::<JobMedia>(&m).ok())
        .map(|m| m.file)
        .filter(|f| Some(f) != media.map(|m| &m.file));
    Ok(Ok(Saved { id, old_file }))
}

/// Deletes a template; returns it (its file is the caller's to delete), `None` when there
/// was none.
pub fn delete(c: &Connection, id: i64) -> Result<Option<Template>, DbError> {
    let t = get(c, id)?;
    if t.is_some() {
        c.execute("DELETE FROM templates WHERE id = ?1", [id])?;
    }
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_are_saved_replaced_listed_and_deleted() {
        let mut c = Connection::open_in_memory().unwrap();
        crate::db::migrate(&mut c, crate::db::Schema::Account).unwrap();
        let a = save(&c, " Promo ", "Halo {nama|Kak}", None).unwrap().unwrap().id;
        let b = save(&c, "arisan", "Kumpul besok", None).unwrap().unwrap().id;
        let again = save(&c, "Promo", "Halo lagi", None).unwrap().unwrap();
        assert_eq!((again.id, again.old_file), (a, None), "same name: replaced");
        let all = list(&c).unwrap();
        assert_eq!(
            all.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(),
            ["arisan", "Promo"]
        );
        assert_eq!(get(&c, a).unwrap().unwrap().text, "Halo lagi");
        assert_eq!(save(&c, "  ", "x", None).unwrap(), Err(TemplateError::EmptyName));
        assert_eq!(
            save(&c, &"x".repeat(41), "x", None).unwrap(),
            Err(TemplateError::NameTooLong)
        );
        assert!(delete(&c, b).unwrap().is_some());
        assert!(delete(&c, b).unwrap().is_none());
        assert_eq!(list(&c).unwrap().len(), 1);
    }

    #[test]
    fn a_template_keeps_its_file_without_the_upload_and_hands_back_a_replaced_one() {
        let mut c = Connection::open_in_memory().unwrap();
        crate::db::migrate(&mut c, crate::db::Schema::Account).unwrap();
        let media = |file: &str| JobMedia {
            kind: crate::wa::MediaKind::Photo,
            mime: "image/jpeg".into(),
            file_name: "photo.jpg".into(),
            size: 3,
            sha256: "00".into(),
            file: file.into(),
            uploaded: None,
            tg_file_id: Some("photo1".into()),
        };
        let first = save(&c, "Promo", "Diskon", Some(&media("a.bin"))).unwrap().unwrap();
        let t = get(&c, first.id).unwrap().unwrap();
        assert_eq!(t.media, Some(media("a.bin")));
        let second = save(&c, "Promo", "Diskon 2", Some(&media("b.bin"))).unwrap().unwrap();
        assert_eq!(
            second.old_file.as_deref(),
            Some("a.bin"),
            "the replaced file is handed back"
        );
        let third = save(&c, "Promo", "teks saja", None).unwrap().unwrap();
        assert_eq!(third.old_file.as_deref(), Some("b.bin"));
        assert_eq!(get(&c, third.id).unwrap().unwrap().media, None);
        let gone = delete(&c, third.id).unwrap().unwrap();
        assert_eq!(gone.text, "teks saja");
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
