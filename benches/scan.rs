//! Scan benchmark: N account folders (a paired session and a bot_data file each, copied from
//! one template), scanned into an empty master database (registering all), then scanned again
//! (all known). Baseline, in the same run: walk the same tree and open each session file with
//! rusqlite, reading its schema. Prints one line:
//! `scan accounts=N scan_s=.. rescan_s=.. baseline_s=.. ratio=..` (ratio = scan_s / baseline_s).
//!
//! `TGWA_BENCH_ACCOUNTS` overrides N (default 10000).

use std::time::Instant;

use tgwa::config::Config;
use tgwa::manager::AccountManager;
use tgwa::scan::{self, ScanOptions};

fn main() {
    let n: usize = std::env::var("TGWA_BENCH_ACCOUNTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = Config::for_tests(dir.path());
    config.max_accounts = n + 1;
    let root = config.data_dir.clone();
    std::fs::create_dir_all(&root).unwrap();

    let template = dir.path().join("template.db");
    {
        let c = rusqlite::Connection::open(&template).unwrap();
        c.execute_batch(
            "PRAGMA journal_mode=WAL;
             CREATE TABLE device (id INTEGER PRIMARY KEY, pn TEXT, jid TEXT);
             INSERT INTO device VALUES (1, '62800', '62800:1@s.whatsapp.net');",
        )
        .unwrap();
    }
    let bd_template = dir.path().join("bd_template.db");
    {
        // Both templates in WAL mode, as whatsapp-rust and `db::open_pool` leave their files.
        let mut c = rusqlite::Connection::open(&bd_template).unwrap();
        c.pragma_update(None, "journal_mode", "WAL").unwrap();
        tgwa::db::migrate(&mut c, tgwa::db::Schema::Account).unwrap();
    }
    for i in 0..n {
        let tid = 1_000_000 + i as i64;
        let phone = format!("628{:010}", i);
        let d = root.join(tid.to_string());
        std::fs::create_dir(&d).unwrap();
        std::fs::copy(&template, d.join(format!("whatsmeow-{tid}-{phone}.db"))).unwrap();
        std::fs::copy(&bd_template, d.join(format!("bot_data-{tid}-{phone}.db"))).unwrap();
    }

    // Baseline: walk and open each session file with rusqlite (reading its schema).
    let t = Instant::now();
    let mut opened = 0usize;
    for d in std::fs::read_dir(&root).unwrap().flatten() {
        for f in std::fs::read_dir(d.path()).unwrap().flatten() {
            let _ = std::fs::symlink_metadata(f.path());
            if f.file_name().to_string_lossy().starts_with("whatsmeow-") {
                // A plain open (read-write: a read-only open of a WAL file would leave -wal/-shm behind).
                let c = rusqlite::Connection::open(f.path()).unwrap();
                let _: i64 = c
                    .query_row("SELECT COUNT(*) FROM sqlite_master", [], |r| r.get(0))
                    .unwrap();
                opened += 1;
            }
        }
    }
    let baseline = t.elapsed().as_secs_f64();
    assert_eq!(opened, n);

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let (scan_s, rescan_s) = rt.block_on(async {
        // The simulator's probe is the real adapter's: read-only, one query.
        let backend = tgwa::wa::backend_for(&config).await.unwrap();
        let m = AccountManager::open(config.clone(), backend).await.unwrap();
        let t = Instant::now();
        let rep = scan::scan(&m, ScanOptions::default()).await.unwrap();
        let scan_s = t.elapsed().as_secs_f64();
        assert_eq!(rep.summary.invalid, 0, "{:?}", rep.summary);
        assert_eq!(rep.summary.registered_now, 3 * n, "{:?}", rep.summary);
        let t = Instant::now();
        let rep = scan::scan(&m, ScanOptions::default()).await.unwrap();
        let rescan_s = t.elapsed().as_secs_f64();
        assert_eq!(rep.summary.already_known, 3 * n, "{:?}", rep.summary);
        (scan_s, rescan_s)
    });
    println!(
        "scan accounts={n} scan_s={scan_s:.2} rescan_s={rescan_s:.2} baseline_s={baseline:.2} ratio={:.2}",
        scan_s / baseline
    );
}
