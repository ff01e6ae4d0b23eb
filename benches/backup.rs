//! Backup benchmark: N accounts (a session file of about 100 KiB and a migrated bot_data file
//! with a 200-item job each, both in WAL mode with rows still in `-wal`, the way live files
//! look) and a master database naming them, backed up with `tgwa::backup::backup`
//! (`VACUUM INTO`, `integrity_check`, SHA-256 per copy). Baseline, in the same run: a plain
//! `std::fs::copy` of the same files and their `-wal` (what the backup must not do on a live
//! database, and the floor of any copy). Prints one line:
//! `backup accounts=N files=.. bytes=.. backup_s=.. baseline_s=.. ratio=..`
//! (ratio = backup_s / baseline_s).
//!
//! `TGWA_BENCH_ACCOUNTS` overrides N (default 1000).

#[path = "support/mod.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::time::Instant;

fn wal_db(path: &Path, fill: impl FnOnce(&mut rusqlite::Connection)) {
    let mut c = rusqlite::Connection::open(path).unwrap();
    c.execute_batch("PRAGMA journal_mode=WAL; PRAGMA wal_autocheckpoint=0;")
        .unwrap();
    fill(&mut c);
    // Closing the last connection checkpoints; forget it so the rows stay in -wal, as in a
    // running process.
    std::mem::forget(c);
}

fn main() {
    let n = support::size("TGWA_BENCH_ACCOUNTS", 1000, 5);
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("DB USER TELEGRAM");
    let master = dir.path().join("bot_data.db");
    {
        let mut c = rusqlite::Connection::open(&master).unwrap();
        tgwa::db::migrate(&mut c, tgwa::db::Schema::Master).unwrap();
    }
    let mut sources: Vec<PathBuf> = vec![master.clone()];
    let m = rusqlite::Connection::open(&master).unwrap();
    let blob = vec![7u8; 1024];
    for i in 0..n {
        let tid = 1_000_000 + i as i64;
        let phone = format!("628{:010}", i);
        let d = data.join(tid.to_string());
        std::fs::create_dir_all(&d).unwrap();
        let session = d.join(format!("whatsmeow-{tid}-{phone}.db"));
        let bot_data = d.join(format!("bot_data-{tid}-{phone}.db"));
        wal_db(&session, |c| {
            c.execute_batch("CREATE TABLE keys (id INTEGER PRIMARY KEY, k BLOB)")
                .unwrap();
            let tx = c.transaction().unwrap();
            for _ in 0..100 {
                tx.execute("INSERT INTO keys (k) VALUES (?1)", [&blob]).unwrap();
            }
            tx.commit().unwrap();
        });
        wal_db(&bot_data, |c| {
            tgwa::db::migrate(c, tgwa::db::Schema::Account).unwrap();
            let tx = c.transaction().unwrap();
            tx.execute(
                "INSERT INTO jobs (kind, state, telegram_id, chat_id, created_at, updated_at)
                 VALUES ('broadcast', 'running', ?1, ?1, 1, 1)",
                [tid],
            )
            .unwrap();
            for s in 0..200 {
                tx.execute(
                    "INSERT INTO job_items (job_id, seq, input, state, updated_at) VALUES (1, ?1, ?2, 'pending', 1)",
                    rusqlite::params![s, format!("62858{s:07}7")],
                )
                .unwrap();
            }
            tx.commit().unwrap();
        });
        m.execute(
            "INSERT INTO whatsapp_accounts (telegram_id, phone_number, db_path, bot_data_db_path, status,
             status_changed_at, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, 'active', 1, 1, 1)",
            rusqlite::params![
                tid,
                phone,
                session.display().to_string(),
                bot_data.display().to_string()
            ],
        )
        .unwrap();
        sources.push(session);
        sources.push(bot_data);
    }
    drop(m);

    // Baseline: copy every file and its -wal.
    let copy_to = dir.path().join("plain");
    let t = Instant::now();
    for (i, s) in sources.iter().enumerate() {
        let d = copy_to.join(i.to_string());
        std::fs::create_dir_all(&d).unwrap();
        for f in tgwa::layout::with_side_files(s).into_iter().take(2) {
            if f.exists() {
                std::fs::copy(&f, d.join(f.file_name().unwrap())).unwrap();
            }
        }
    }
    let baseline_s = t.elapsed().as_secs_f64();

    let out = dir.path().join("backup");
    let report = tgwa::backup::backup(&master, &data, &out).expect("backup runs");
    assert!(report.complete(), "{:?}", report.manifest.failed);
    let backup_s = report.elapsed.as_secs_f64();
    let bytes: u64 = report.manifest.files.iter().map(|f| f.bytes).sum();
    println!(
        "backup accounts={n} files={} bytes={bytes} backup_s={backup_s:.2} baseline_s={baseline_s:.2} ratio={:.2}",
        report.manifest.files.len(),
        backup_s / baseline_s
    );
}
