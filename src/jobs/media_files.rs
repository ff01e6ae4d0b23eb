//! The files broadcasts carry, kept in each user's folder (`{tid}/media/`, see
//! [`crate::jobs::media_dir`]): a prompt's or a job's copy, and a template's own copy. Each
//! copy has one owner, so deleting it never takes a file from anything else; what an owner
//! still needs is read from the account's database ([`needed`]), and a sweep at start-up
//! removes what nothing needs once it is older than [`SWEEP_GRACE`].

use std::collections::HashSet;
use std::path::Path;
use std::time::{Duration, SystemTime};

use rusqlite::Connection;
use tracing::{info, warn};

use super::{media_dir, JobKind, JobMedia};
use crate::db::{DbError, Schema};
use crate::manager::AccountManager;

/// How long a file nothing refers to is left alone by the sweep (a prompt may be holding
/// it: prompts live in memory only), and how long a never-started draft or a cancelled job
/// whose unsent rest could be sent again keeps its file.
pub const SWEEP_GRACE: Duration = Duration::from_secs(24 * 3600);

/// The file names in the `media` folder that the account's jobs and templates still need at
/// `now` (Unix seconds): a job that is scheduled, running or paused; a draft younger than
/// `grace`; a cancelled job that had started and still has unsent items (its rest can be sent
/// again, «🔁 Kirim sisanya») for `grace` after it was cancelled; every template's file.
pub fn needed(c: &Connection, now: i64, grace: Duration) -> Result<HashSet<String>, DbError> {
    let since = now - grace.as_secs() as i64;
    let mut out = HashSet::new();
    let mut jobs = c.prepare(
        "SELECT params FROM jobs j WHERE kind = 'broadcast' AND (
             state IN ('scheduled', 'running', 'paused')
          OR (state = 'draft' AND updated_at >= ?1)
          OR (state = 'cancelled' AND updated_at >= ?1
              AND EXISTS (SELECT 1 FROM job_items i WHERE i.job_id = j.id AND i.state = 'pending')
              AND EXISTS (SELECT 1 FROM job_items i WHERE i.job_id = j.id AND i.state <> 'pending')))",
    )?;
    for params in jobs.query_map([since], |r| r.get::<_, String>(0))? {
        if let Ok(JobKind::Broadcast { media: Some(m), .. }) = serde_json::from_str::<JobKind>(&params?) {
            out.insert(m.file);
        }
    }
    let mut templates = c.prepare("SELECT media_ref FROM templates WHERE media_ref IS NOT NULL")?;
    for media in templates.query_map([], |r| r.get::<_, String>(0))? {
        if let Ok(m) = serde_json::from_str::<JobMedia>(&media?) {
            out.insert(m.file);
        }
    }
    Ok(out)
}

/// Copies `name` in `dir` under a fresh name (a template's own copy, or a prompt's copy of
/// a template's file); returns the new name.
pub fn copy(dir: &Path, name: &str) -> std::io::Result<String> {
    let bytes = std::fs::read(dir.join(name))?;
    super::store_media_file(dir, &bytes)
}

/// Deletes `name` from `dir`; one already gone is not an error. A name that is not a plain
/// file name is refused (names come from stored JSON and must never reach outside `dir`).
pub fn remove(dir: &Path, name: &str) -> std::io::Result<()> {
    if name.is_empty() || name.contains(['/', '\\']) || name.starts_with('.') {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a media file name",
        ));
    }
    match std::fs::remove_file(dir.join(name)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// [`remove`] off the async runtime; a failure only leaves a file for the sweep, logged.
pub async fn remove_later(dir: std::path::PathBuf, name: String) {
    let shown = name.clone();
    let res = crate::db::blocking(move || remove(&dir, &name).map_err(|e| DbError::Task(e.to_string()))).await;
    if let Err(e) = res {
        warn!(file = %shown, error = %e, "could not delete a media file");
    }
}

/// Deletes the regular files of `dir` that are not `needed` and were last written more
/// than `grace` ago; returns how many.
pub fn sweep_dir(dir: &Path, needed: &HashSet<String>, grace: Duration) -> std::io::Result<usize> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let cutoff = SystemTime::now().checked_sub(grace).unwrap_or(SystemTime::UNIX_EPOCH);
    let mut removed = 0;
    for entry in entries {
        let entry = entry?;
        let meta = entry.metadata()?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let old = meta.modified().is_ok_and(|t| t < cutoff);
        if meta.is_file() && old && !needed.contains(&name) {
            remove(dir, &name)?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// The start-up sweep: in every user's `media` folder, deletes the files no job or template
/// of any of that user's accounts needs, once older than `grace`. A folder one of whose
/// databases cannot be read is left as it is (its files may be needed). Returns how many
/// files went.
pub async fn sweep(manager: &AccountManager, grace: Duration) -> Result<usize, DbError> {
    let accounts = manager.all_rows().await.map_err(|e| DbError::Task(e.to_string()))?;
    let mut dirs: std::collections::BTreeMap<std::path::PathBuf, Vec<_>> = Default::default();
    for acc in accounts {
        dirs.entry(media_dir(&acc)).or_default().push(acc);
    }
    let now = crate::db::now();
    let mut removed = 0;
    'dirs: for (dir, accs) in dirs {
        if !dir.is_dir() {
            continue;
        }
        let mut keep = HashSet::new();
        for acc in accs.iter().filter(|a| a.bot_data_db_path.exists()) {
            let read = manager
                .pools()
                .with(acc.bot_data_db_path.clone(), Schema::Account, move |c| {
                    needed(c, now, grace)
                })
                .await;
            match read {
                Ok(files) => keep.extend(files),
                Err(e) => {
                    warn!(account_id = %acc.id, error = %e, "media sweep: cannot read the account's jobs; folder left alone");
                    continue 'dirs;
                }
            }
        }
        let shown = dir.clone();
        match crate::db::blocking(move || sweep_dir(&dir, &keep, grace).map_err(|e| DbError::Task(e.to_string()))).await
        {
            Ok(n) => removed += n,
            Err(e) => warn!(dir = %shown.display(), error = %e, "media sweep failed"),
        }
    }
    if removed > 0 {
        info!(removed, "media sweep: deleted files no job, draft or template needs");
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_files_nothing_needs_and_older_than_the_grace_go() {
        let dir = std::env::temp_dir().join(format!("tgwa-media-sweep-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let kept = crate::jobs::store_media_file(&dir, b"kept").unwrap();
        let orphan = crate::jobs::store_media_file(&dir, b"orphan").unwrap();
        let young = crate::jobs::store_media_file(&dir, b"young").unwrap();
        let old = SystemTime::now() - Duration::from_secs(3 * 24 * 3600);
        for n in [&kept, &orphan] {
            let f = std::fs::File::options().write(true).open(dir.join(n)).unwrap();
            f.set_modified(old).unwrap();
        }
        let needed: HashSet<String> = [kept.clone()].into();
        assert_eq!(sweep_dir(&dir, &needed, SWEEP_GRACE).unwrap(), 1);
        assert!(dir.join(&kept).exists() && dir.join(&young).exists());
        assert!(!dir.join(&orphan).exists());
        assert!(remove(&dir, "../x").is_err(), "names never leave the folder");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn what_jobs_and_templates_need() {
        let mut c = Connection::open_in_memory().unwrap();
        crate::db::migrate(&mut c, Schema::Account).unwrap();
        let params = |file: &str| {
            format!(
                r#"{{"kind":"broadcast","text":"x","media":{{"kind":"photo","mime":"image/jpeg","file_name":"p.jpg","size":1,"sha256":"00","file":"{file}"}}}}"#
            )
        };
        let job = |state: &str, file: &str, at: i64, items: &[&str]| {
            c.execute(
                "INSERT INTO jobs (kind, state, params, telegram_id, chat_id, created_at, updated_at, account_id, generation)
                 VALUES ('broadcast', ?1, ?2, 1, 1, ?3, ?3, 1, 1)",
                rusqlite::params![state, params(file), at],
            )
            .unwrap();
            let id = c.last_insert_rowid();
            for (i, s) in items.iter().enumerate() {
                c.execute(
                    "INSERT INTO job_items (job_id, seq, input, state, updated_at) VALUES (?1, ?2, 'x', ?3, 0)",
                    rusqlite::params![id, i as i64, s],
                )
                .unwrap();
            }
        };
        let now = 10_000_000;
        job("paused", "paused.bin", 0, &["ok", "pending"]);
        job("done", "done.bin", now, &["ok"]);
        job("draft", "draft-new.bin", now - 10, &["pending"]);
        job("draft", "draft-old.bin", 0, &["pending"]);
        job("cancelled", "cancelled-draft.bin", now, &["pending"]);
        job("cancelled", "cancelled-rest.bin", now, &["ok", "pending"]);
        job("cancelled", "cancelled-old.bin", 0, &["ok", "pending"]);
        c.execute(
            "INSERT INTO templates (name, text, media_ref, created_at, updated_at) VALUES ('t', 'x', ?1, 0, 0)",
            [r#"{"kind":"voice","mime":"audio/ogg","file_name":"v.ogg","size":1,"sha256":"00","file":"tpl.bin"}"#],
        )
        .unwrap();
        let got = needed(&c, now, SWEEP_GRACE).unwrap();
        let mut got: Vec<_> = got.into_iter().collect();
        got.sort();
        assert_eq!(got, ["cancelled-rest.bin", "draft-new.bin", "paused.bin", "tpl.bin"]);
    }
}
