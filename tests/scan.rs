//! The operator scan and cleanup on hand-made data directories, with the simulator backend
//! (and, where the test needs a paired device for sure, a small backend that reads the
//! simulator's `device` table itself).

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use tgwa::account::AccountStatus;
use tgwa::config::Config;
use tgwa::manager::AccountManager;
use tgwa::scan::{self, Outcome, ScanOptions, ScanReport};

/// Writes a session file the way the simulator does: table `device(id, pn, jid)`, paired iff
/// row 1 has a non-null `pn`.
fn session(path: &Path, paired: bool) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let c = rusqlite::Connection::open(path).unwrap();
    c.execute_batch("CREATE TABLE device (id INTEGER PRIMARY KEY, pn TEXT, jid TEXT)")
        .unwrap();
    let digits = path
        .file_stem()
        .unwrap()
        .to_str()
        .unwrap()
        .rsplit('-')
        .next()
        .unwrap()
        .to_string();
    if paired {
        c.execute(
            // whatsapp-rust keeps the device's phone-number JID in `pn`.
            "INSERT INTO device (id, pn, jid) VALUES (1, ?1, ?1)",
            [format!("{digits}:1@s.whatsapp.net")],
        )
        .unwrap();
    } else {
        c.execute("INSERT INTO device (id, pn, jid) VALUES (1, NULL, NULL)", [])
            .unwrap();
    }
}

fn bot_data(path: &Path) {
    let mut c = rusqlite::Connection::open(path).unwrap();
    tgwa::db::migrate(&mut c, tgwa::db::Schema::Account).unwrap();
}

struct Fixture {
    _dir: tempfile::TempDir,
    config: Config,
    root: PathBuf,
    outside: PathBuf,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let config = Config::for_tests(dir.path());
    let root = config.data_dir.clone();
    std::fs::create_dir_all(&root).unwrap();
    let outside = dir.path().join("outside-secret.db");
    session(&outside, true);
    Fixture {
        config,
        root,
        outside,
        _dir: dir,
    }
}

/// The acceptance tree: good folders and every kind of bad entry.
fn bad_tree(f: &Fixture) {
    let r = &f.root;
    session(&r.join("100/whatsmeow-100-6281111110001.db"), true);
    bot_data(&r.join("100/bot_data-100-6281111110001.db"));
    session(&r.join("100/whatsmeow-100-6281111110002.db"), false); // no bot_data yet
    std::fs::write(r.join("100/notes.txt"), b"hello").unwrap();
    std::fs::write(r.join("100/whatsmeow-100-..%2f..%2fetc.db"), b"x").unwrap();
    std::fs::create_dir_all(r.join("200")).unwrap();
    std::fs::write(r.join("200/whatsmeow-200-6282222220001.db"), vec![b'z'; 4096]).unwrap();
    std::fs::write(r.join("200/whatsmeow-200-6282222220002.db"), b"").unwrap();
    std::os::unix::fs::symlink(&f.outside, r.join("200/whatsmeow-200-6282222220003.db")).unwrap();
    std::fs::create_dir_all(r.join("300")).unwrap();
    std::fs::write(r.join("300/whatsmeow-300-6283333330001.db-wal"), b"w").unwrap();
    bot_data(&r.join("300/bot_data-300-6283333330002.db"));
    session(&r.join("400/whatsmeow-401-6284444440001.db"), true);
    session(&r.join("500/whatsmeow-500-6281111110001.db"), true); // same phone as 100's
    std::fs::create_dir_all(r.join("abc")).unwrap();
    std::fs::create_dir_all(r.join("%2e%2e")).unwrap();
    std::fs::create_dir_all(r.join("\u{0661}\u{0662}\u{0663}")).unwrap(); // Arabic-Indic digits
    std::fs::write(r.join("stray.txt"), b"?").unwrap();
    std::fs::create_dir_all(r.join(".trash")).unwrap();
    std::fs::create_dir_all(r.join(".locks")).unwrap();
    std::fs::write(r.join(".gitkeep"), b"").unwrap();
}

fn outcome(rep: &ScanReport, path: &str) -> (Outcome, String) {
    let e = rep
        .entries
        .iter()
        .find(|e| e.path == path)
        .unwrap_or_else(|| panic!("no entry {path:?} in {:#?}", rep.entries));
    (e.outcome, e.reason.clone().unwrap_or_default())
}

async fn manager(config: &Config) -> AccountManager {
    let backend = tgwa::wa::backend_for(config).await.unwrap();
    AccountManager::open(config.clone(), backend).await.unwrap()
}

/// Every file under `dir` (not following symlinks) with a hash of its bytes, skipping the
/// simulator's own world.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, u64> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            let p = e.path();
            if p.file_name().is_some_and(|n| n == ".sim") {
                continue;
            }
            let m = std::fs::symlink_metadata(&p).unwrap();
            let mut h = std::collections::hash_map::DefaultHasher::new();
            if m.file_type().is_symlink() {
                std::fs::read_link(&p).unwrap().hash(&mut h);
            } else if m.is_dir() {
                stack.push(p.clone());
                "dir".hash(&mut h);
            } else {
                std::fs::read(&p).unwrap().hash(&mut h);
            }
            out.insert(p, h.finish());
        }
    }
    out
}

#[tokio::test]
async fn bad_tree_registers_exactly_the_good_ones() {
    let f = fixture();
    bad_tree(&f);
    let outside_before = std::fs::read(&f.outside).unwrap();
    let m = manager(&f.config).await;
    let rep = scan::scan(&m, ScanOptions::default()).await.unwrap();

    let reg = Outcome::RegisteredNow;
    assert_eq!(outcome(&rep, "100").0, reg);
    assert_eq!(outcome(&rep, "100/whatsmeow-100-6281111110001.db").0, reg);
    assert_eq!(outcome(&rep, "100/bot_data-100-6281111110001.db").0, reg);
    assert_eq!(outcome(&rep, "100/whatsmeow-100-6281111110002.db").0, reg);
    assert_eq!(outcome(&rep, "100/notes.txt").0, Outcome::Orphaned);
    assert_eq!(outcome(&rep, "100/whatsmeow-100-..%2f..%2fetc.db").0, Outcome::Orphaned);
    let (o, why) = outcome(&rep, "200/whatsmeow-200-6282222220001.db");
    assert!(o == Outcome::Invalid && why.contains("corrupt"), "{why}");
    let (o, why) = outcome(&rep, "200/whatsmeow-200-6282222220002.db");
    assert!(o == Outcome::Invalid && why.contains("empty"), "{why}");
    let (o, why) = outcome(&rep, "200/whatsmeow-200-6282222220003.db");
    assert!(o == Outcome::Invalid && why.contains("outside"), "{why}");
    assert_eq!(outcome(&rep, "200").0, Outcome::Invalid);
    assert_eq!(outcome(&rep, "300").0, Outcome::Invalid);
    let (o, why) = outcome(&rep, "300/whatsmeow-300-6283333330001.db-wal");
    assert!(o == Outcome::Orphaned && why.contains("-wal"), "{why}");
    let (o, why) = outcome(&rep, "300/bot_data-300-6283333330002.db");
    assert!(o == Outcome::Orphaned && why.contains("without its session"), "{why}");
    let (o, why) = outcome(&rep, "400/whatsmeow-401-6284444440001.db");
    assert!(o == Outcome::Orphaned && why.contains("does not match"), "{why}");
    let (o, why) = outcome(&rep, "500/whatsmeow-500-6281111110001.db");
    assert!(o == Outcome::Invalid && why.contains("100"), "{why}");
    for bad in ["abc", "%2e%2e", "\u{0661}\u{0662}\u{0663}", "stray.txt"] {
        assert_eq!(outcome(&rep, bad).0, Outcome::Orphaned, "{bad}");
    }
    assert!(
        rep.entries.iter().all(|e| !e.path.starts_with('.')),
        "dot entries are skipped"
    );
    assert_eq!(rep.summary.registered_now, 4, "2 sessions, 1 bot_data, 1 folder");

    let rows = m.all_rows().await.unwrap();
    assert_eq!(rows.len(), 2);
    assert!(rows.iter().all(|a| a.telegram_id.get() == 100));
    // Missing bot data is created on registration.
    assert!(f.root.join("100/bot_data-100-6281111110002.db").exists());
    // Nothing outside the data directory was touched.
    assert_eq!(std::fs::read(&f.outside).unwrap(), outside_before);

    // Second scan: nothing new.
    let again = scan::scan(&m, ScanOptions::default()).await.unwrap();
    assert_eq!(again.summary.registered_now, 0);
    assert_eq!(
        outcome(&again, "100/whatsmeow-100-6281111110001.db").0,
        Outcome::AlreadyKnown
    );
    assert_eq!(
        outcome(&again, "100/whatsmeow-100-6281111110002.db").0,
        Outcome::AlreadyKnown
    );
    assert_eq!(
        outcome(&again, "100/bot_data-100-6281111110002.db").0,
        Outcome::AlreadyKnown
    );
    let (o, why) = outcome(&again, "500/whatsmeow-500-6281111110001.db");
    assert!(o == Outcome::Invalid && why.contains("another Telegram user"), "{why}");
    assert_eq!(m.all_rows().await.unwrap().len(), 2);
}

#[tokio::test]
async fn paired_sessions_register_active_with_jid_and_unpaired_as_unpaired() {
    let f = fixture();
    session(&f.root.join("7/whatsmeow-7-6287777770001.db"), true);
    session(&f.root.join("7/whatsmeow-7-6287777770002.db"), false);
    let m = manager(&f.config).await;
    let rep = scan::scan(&m, ScanOptions::default()).await.unwrap();
    assert_eq!(rep.summary.registered_now, 3);
    let rows = m.all_rows().await.unwrap();
    let a = rows.iter().find(|a| a.phone.digits() == "6287777770001").unwrap();
    assert_eq!(a.status, AccountStatus::Active);
    assert_eq!(a.jid.as_deref(), Some("6287777770001:1@s.whatsapp.net"));
    let b = rows.iter().find(|a| a.phone.digits() == "6287777770002").unwrap();
    assert_eq!(b.status, AccountStatus::Unpaired);
    let (_, why) = outcome(&rep, "7/whatsmeow-7-6287777770002.db");
    assert!(why.contains("unpaired"), "{why}");
}

#[tokio::test]
async fn account_limit_is_respected() {
    let mut f = fixture();
    f.config.max_accounts = 1;
    session(&f.root.join("1/whatsmeow-1-6281000000001.db"), true);
    session(&f.root.join("2/whatsmeow-2-6281000000002.db"), true);
    let m = manager(&f.config).await;
    let rep = scan::scan(&m, ScanOptions::default()).await.unwrap();
    assert_eq!(
        outcome(&rep, "1/whatsmeow-1-6281000000001.db").0,
        Outcome::RegisteredNow
    );
    let (o, why) = outcome(&rep, "2/whatsmeow-2-6281000000002.db");
    assert!(o == Outcome::Invalid && why.contains("account limit reached"), "{why}");
    // The dry run predicts the same.
    let f2 = fixture();
    let mut c2 = f2.config.clone();
    c2.max_accounts = 1;
    session(&f2.root.join("1/whatsmeow-1-6281000000001.db"), true);
    session(&f2.root.join("2/whatsmeow-2-6281000000002.db"), true);
    let rep = scan::scan_dry_run(&c2).await.unwrap();
    assert_eq!(rep.summary.would_register, 2, "session and folder of the first");
    let (o, why) = outcome(&rep, "2/whatsmeow-2-6281000000002.db");
    assert!(o == Outcome::Invalid && why.contains("account limit reached"), "{why}");
}

#[tokio::test]
async fn dry_run_changes_no_file_and_no_row() {
    let f = fixture();
    bad_tree(&f);
    let parent = f.root.parent().unwrap().to_path_buf();
    let before = snapshot(&parent);
    let rep = scan::scan_dry_run(&f.config).await.unwrap();
    assert!(rep.summary.dry_run);
    assert_eq!(rep.summary.registered_now, 0);
    assert_eq!(rep.summary.would_register, 4);
    assert!(
        !f.config.master_db.exists(),
        "dry run must not create the master database"
    );
    assert_eq!(snapshot(&parent), before);

    // With a master database holding rows, a dry run through the manager changes nothing either.
    let m = manager(&f.config).await;
    scan::scan(&m, ScanOptions::default()).await.unwrap();
    drop(m);
    session(&f.root.join("600/whatsmeow-600-6286666660001.db"), true);
    let before = snapshot(&parent);
    let rep = scan::scan_dry_run(&f.config).await.unwrap();
    assert_eq!(
        outcome(&rep, "600/whatsmeow-600-6286666660001.db").0,
        Outcome::WouldRegister
    );
    assert_eq!(
        outcome(&rep, "100/whatsmeow-100-6281111110001.db").0,
        Outcome::AlreadyKnown
    );
    assert_eq!(snapshot(&parent), before);
    let m = manager(&f.config).await;
    let before_rows = m.all_rows().await.unwrap();
    let rep = scan::scan(&m, ScanOptions { dry_run: true }).await.unwrap();
    assert_eq!(rep.summary.would_register, 2);
    assert_eq!(m.all_rows().await.unwrap(), before_rows);
}

#[tokio::test]
async fn fresh_directory_dry_run_is_empty_and_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config::for_tests(dir.path());
    let rep = scan::scan_dry_run(&config).await.unwrap();
    assert!(rep.entries.is_empty());
    assert!(!config.data_dir.exists());
    assert!(!config.master_db.exists());
}

#[tokio::test]
async fn cleanup_moves_orphans_to_trash_and_deletes_nothing() {
    let f = fixture();
    bad_tree(&f);
    let outside_before = std::fs::read(&f.outside).unwrap();
    let m = manager(&f.config).await;
    scan::scan(&m, ScanOptions::default()).await.unwrap();
    drop(m);
    let layout = tgwa::layout::Layout::new(&f.root);
    let count = |d: &Path| snapshot(d).len();
    let parent = f.root.parent().unwrap().to_path_buf();
    let before = snapshot(&parent);
    let planned = scan::cleanup(&layout, &f.config.master_db, true).await.unwrap();
    assert!(!planned.is_empty());
    assert_eq!(snapshot(&parent), before, "cleanup --dry-run moves nothing");

    let n_before = count(&parent);
    let moved = scan::cleanup(&layout, &f.config.master_db, false).await.unwrap();
    let froms: Vec<String> = moved
        .iter()
        .map(|(from, _)| from.strip_prefix(&f.root).unwrap().to_string_lossy().into_owned())
        .collect();
    for orphan in [
        "100/notes.txt",
        "300/whatsmeow-300-6283333330001.db-wal",
        "300/bot_data-300-6283333330002.db",
        "400/whatsmeow-401-6284444440001.db",
        "abc",
        "stray.txt",
    ] {
        assert!(froms.iter().any(|p| p == orphan), "{orphan} not moved: {froms:?}");
        assert!(!f.root.join(orphan).exists());
    }
    for (_, to) in &moved {
        assert!(to.starts_with(layout.trash_root()) && std::fs::symlink_metadata(to).is_ok());
    }
    // Invalid and registered files stay where they are.
    for kept in [
        "200/whatsmeow-200-6282222220001.db",
        "200/whatsmeow-200-6282222220002.db",
        "500/whatsmeow-500-6281111110001.db",
        "100/whatsmeow-100-6281111110001.db",
    ] {
        assert!(std::fs::symlink_metadata(f.root.join(kept)).is_ok(), "{kept}");
    }
    assert!(std::fs::symlink_metadata(f.root.join("200/whatsmeow-200-6282222220003.db")).is_ok());
    // Nothing deleted: every file still exists somewhere (new trash folders aside).
    let after = snapshot(&parent);
    let files = |s: &BTreeMap<PathBuf, u64>| {
        let mut v: Vec<u64> = s.values().copied().collect();
        v.sort();
        v
    };
    let dir_hash = {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        "dir".hash(&mut h);
        h.finish()
    };
    let mut a: Vec<u64> = files(&before).into_iter().filter(|h| *h != dir_hash).collect();
    let mut b: Vec<u64> = files(&after).into_iter().filter(|h| *h != dir_hash).collect();
    a.sort();
    b.sort();
    assert_eq!(a, b, "the same file contents exist before and after");
    assert!(count(&parent) >= n_before);
    assert_eq!(std::fs::read(&f.outside).unwrap(), outside_before);
}

#[test]
fn example_master_db_is_at_the_current_schema() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("bot_data.db.example");
    let conn = scan::open_read_only(&path).expect("bot_data.db.example exists (scripts/make_example_db.sh)");
    let v: u32 = conn.pragma_query_value(None, "user_version", |r| r.get(0)).unwrap();
    assert_eq!(
        v,
        tgwa::db::Schema::Master.latest(),
        "bot_data.db.example is behind the migrations: run scripts/make_example_db.sh"
    );
    let schema = |c: &rusqlite::Connection| -> Vec<(String, String)> {
        let mut st = c
            .prepare("SELECT name, sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY name")
            .unwrap();
        st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    let mut fresh = rusqlite::Connection::open_in_memory().unwrap();
    tgwa::db::migrate(&mut fresh, tgwa::db::Schema::Master).unwrap();
    assert_eq!(
        schema(&conn),
        schema(&fresh),
        "bot_data.db.example's tables differ from the migrations: run scripts/make_example_db.sh"
    );
    let rows: i64 = conn
        .query_row("SELECT COUNT(*) FROM whatsapp_accounts", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 0);
}
