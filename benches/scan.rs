//! Scan benchmark: N account folders (a paired session and a bot_data file each, copied from
//! one template), scanned into an empty master database (registering all), then scanned again
//! (all known). Baseline, in the same run: walk the same tree and open each session file with
//! rusqlite, reading its schema. Prints one line:
//! `scan accounts=N scan_s=.. rescan_s=.. baseline_s=.. scan_runs_s=.. baseline_runs_s=.. ratio=..`
//! (three interleaved runs of each; the figures and the ratio are their minima).
//!
//! `TGWA_BENCH_ACCOUNTS` overrides N (default 10000; 5 with `TGWA_BENCH_SMOKE=1`).

use std::time::Instant;

use tgwa::config::Config;
use tgwa::manager::AccountManager;
use tgwa::scan::{self, ScanOptions};

#[path = "support/mod.rs"]
mod support;

fn main() {
    let n = support::size("TGWA_BENCH_ACCOUNTS", 10_000, 5);
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

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    // Three rounds, baseline and scan interleaved, each scan into a fresh master database:
    // the page cache and the disk change between runs, and the minimum of each is what the
    // work costs when nothing else gets in the way (one run swung the ratio 2.1-5.8).
    let mut baselines = Vec::new();
    let mut scans = Vec::new();
    let mut rescans = Vec::new();
    for round in 0..3 {
        baselines.push(baseline_walk(&root, n));
        let mut c = config.clone();
        c.master_db = dir.path().join(format!("master-{round}.db"));
        let (scan_s, rescan_s) = rt.block_on(scan_twice(c, n));
        scans.push(scan_s);
        rescans.push(rescan_s);
    }
    let min = |v: &[f64]| v.iter().copied().fold(f64::INFINITY, f64::min);
    let runs = |v: &[f64]| v.iter().map(|x| format!("{x:.2}")).collect::<Vec<_>>().join(",");
    let (scan_s, rescan_s, baseline) = (min(&scans), min(&rescans), min(&baselines));
    println!(
        "scan accounts={n} scan_s={scan_s:.2} rescan_s={rescan_s:.2} baseline_s={baseline:.2} \
         scan_runs_s={} baseline_runs_s={} ratio={:.2}",
        runs(&scans),
        runs(&baselines),
        scan_s / baseline
    );
}

/// The baseline: walk the tree and open each session file with rusqlite (reading its schema).
fn baseline_walk(root: &std::path::Path, n: usize) -> f64 {
    let t = Instant::now();
    let mut opened = 0usize;
    for d in std::fs::read_dir(root).unwrap().flatten() {
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
    assert_eq!(opened, n);
    t.elapsed().as_secs_f64()
}

/// A scan into the empty master database of `config` (registering all), then a rescan.
async fn scan_twice(config: Config, n: usize) -> (f64, f64) {
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
}
