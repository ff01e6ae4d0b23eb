//! Moving from the Go bot, tried from outside as an operator would: a Go-bot directory built
//! from whatsmeow's own schema, then `tgwa import --dry-run`, `tgwa import` (twice), `tgwa
//! scan`, `tgwa accounts` through the built binary, and the same step at the start of `run`.

#[path = "support/fake_telegram.rs"]
pub mod fake_telegram;
mod support {
    pub use super::fake_telegram;
    #[path = "app.rs"]
    pub mod app;
    #[path = "whatsmeow.rs"]
    pub mod whatsmeow;
}

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant, SystemTime};

use sha2::{Digest, Sha256};
use support::whatsmeow::{self as wm, Spec};

const A: &str = "111";
const B: &str = "222";
/// Paired, with LID map, pre-keys, identities and sessions.
const FULL: &str = "6281100000001";
/// Paired, its last writes still in `-wal`.
const WAL: &str = "6281100000002";
/// Paired, the second user's.
const PLAIN: &str = "6282200000003";
const NEVER: &str = "6282200000004";
const CORRUPT: &str = "6282200000005";
/// Named for this number, holds another.
const MISMATCH: &str = "6281100000006";
/// Changed a moment ago: the Go bot may still be running.
const BUSY: &str = "6282200000007";

fn tgwa(cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tgwa"));
    c.current_dir(cwd).args(args).env_clear();
    if let Ok(p) = std::env::var("PATH") {
        c.env("PATH", p);
    }
    c.env("TGWA_WA_BACKEND", "sim");
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("run tgwa")
}

fn ok(o: &Output) -> String {
    assert_eq!(
        o.status.code(),
        Some(0),
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn json_lines(s: &str) -> Vec<serde_json::Value> {
    s.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect()
}

fn session(root: &Path, tid: &str, phone: &str) -> PathBuf {
    root.join(tid).join(format!("whatsmeow-{tid}-{phone}.db"))
}

fn bot_data(root: &Path, tid: &str, phone: &str) -> PathBuf {
    root.join(tid).join(format!("bot_data-{tid}-{phone}.db"))
}

/// Every file under `dir` (relative path) with the SHA-256 of its bytes.
fn hashes(dir: &Path) -> BTreeMap<String, String> {
    fn walk(base: &Path, d: &Path, out: &mut BTreeMap<String, String>) {
        let Ok(rd) = std::fs::read_dir(d) else { return };
        for e in rd.map(Result::unwrap) {
            let p = e.path();
            if p.is_dir() {
                walk(base, &p, out);
            } else {
                let h = Sha256::digest(std::fs::read(&p).unwrap());
                let hex: String = h.iter().map(|b| format!("{b:02x}")).collect();
                out.insert(p.strip_prefix(base).unwrap().display().to_string(), hex);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

fn set_old(p: &Path) {
    let old = SystemTime::now() - Duration::from_secs(3600);
    let f = std::fs::OpenOptions::new().write(true).open(p).unwrap();
    f.set_modified(old).unwrap();
}

/// Ages every file under `dir` by an hour, as if the Go bot stopped long ago.
fn age_all(dir: &Path) {
    for (rel, _) in hashes(dir) {
        set_old(&dir.join(rel));
    }
}

/// The acceptance tree: the Go master, two users, three paired sessions (one with LID map,
/// pre-keys, identities and sessions; one with its writes still in -wal), one never paired,
/// one corrupt, one whose JID disagrees with its name, one still being written, and Go-bot
/// bot_data files. Returns the working directory (master DB inside) and the data directory.
struct Tree {
    _tmp: tempfile::TempDir,
    cwd: PathBuf,
    root: PathBuf,
    full: wm::Written,
}

fn go_tree() -> Tree {
    let tmp = tempfile::tempdir().unwrap();
    let cwd = tmp.path().to_path_buf();
    let root = cwd.join("DB USER TELEGRAM");
    std::fs::create_dir_all(root.join(A)).unwrap();
    std::fs::create_dir_all(root.join(B)).unwrap();
    let full = wm::write_store(&session(&root, A, FULL), &Spec::full(FULL));
    wm::write_store(
        &session(&root, A, WAL),
        &Spec {
            keep_wal: true,
            ..Spec::paired(WAL)
        },
    );
    wm::write_store(&session(&root, B, PLAIN), &Spec::paired(PLAIN));
    wm::write_unpaired(&session(&root, B, NEVER));
    let c = session(&root, B, CORRUPT);
    wm::write_store(&c, &Spec::full(CORRUPT));
    wm::corrupt(&c);
    wm::write_store(&session(&root, A, MISMATCH), &Spec::paired("6289999999999"));
    for (tid, phone) in [(A, FULL), (A, WAL), (B, PLAIN), (B, NEVER), (A, MISMATCH)] {
        wm::write_go_bot_data(&bot_data(&root, tid, phone));
    }
    let rows: Vec<(String, String, String)> =
        [(A, FULL), (A, WAL), (B, PLAIN), (B, NEVER), (B, CORRUPT), (A, MISMATCH)]
            .iter()
            .map(|(t, p)| {
                (
                    p.to_string(),
                    session(&root, t, p).display().to_string(),
                    bot_data(&root, t, p).display().to_string(),
                )
            })
            .collect();
    let mut rows: Vec<(&str, &str, &str)> = rows
        .iter()
        .map(|(a, b, c)| (a.as_str(), b.as_str(), c.as_str()))
        .collect();
    // Listed by the Go bot, but its files are gone.
    rows.push(("6282200000099", "gone.db", "gone-bot.db"));
    wm::write_go_master(&cwd.join("bot_data.db"), &rows);
    age_all(&cwd);
    // Written last, so it alone is "changed a moment ago".
    wm::write_store(&session(&root, B, BUSY), &Spec::paired(BUSY));
    Tree {
        _tmp: tmp,
        cwd,
        root,
        full,
    }
}

fn entry<'a>(lines: &'a [serde_json::Value], path: &str) -> &'a serde_json::Value {
    lines
        .iter()
        .find(|l| l["path"] == path)
        .unwrap_or_else(|| panic!("no entry for {path}: {lines:#?}"))
}

#[test]
fn dry_run_changes_nothing_and_reports_every_file() {
    let t = go_tree();
    let before = hashes(&t.cwd);
    let out = ok(&tgwa(&t.cwd, &["import", "--dry-run", "--json"], &[]));
    assert_eq!(hashes(&t.cwd), before, "a dry run changed the tree");
    let lines = json_lines(&out);
    let summary = &lines.last().unwrap()["summary"];
    assert_eq!(summary["dry_run"], true);
    assert_eq!(summary["sessions_found"], 7, "{lines:#?}");
    assert_eq!(summary["would_import"], 3, "{lines:#?}");
    assert_eq!(summary["imported"], 0);
    assert_eq!(summary["refused"], 4);
    let full = entry(&lines, &format!("{A}/whatsmeow-{A}-{FULL}.db"));
    assert_eq!(full["outcome"], "would_import");
    assert_eq!(full["counts"]["pre_keys"], 30);
    assert_eq!(full["counts"]["sessions"], 3);
    assert_eq!(entry(&lines, "bot_data.db")["outcome"], "would_set_aside");
    // The table form, too.
    let out = ok(&tgwa(&t.cwd, &["import", "--dry-run"], &[]));
    assert!(
        out.contains("dry run: 7 whatsmeow sessions: 0 imported, 3 would import, 4 refused"),
        "{out}"
    );
    assert_eq!(hashes(&t.cwd), before);
    assert!(!t.cwd.join("DB USER TELEGRAM/.imported").exists());
}

#[test]
fn import_registers_the_three_good_accounts_keeps_originals_and_is_idempotent() {
    let t = go_tree();
    let before = hashes(&t.cwd);
    let out = ok(&tgwa(&t.cwd, &["import", "--json"], &[]));
    let lines = json_lines(&out);
    let summary = &lines.last().unwrap()["summary"];
    assert_eq!(summary["imported"], 3, "{lines:#?}");
    assert_eq!(summary["refused"], 4, "{lines:#?}");
    assert_eq!(summary["go_master_accounts"], 7);
    let master = entry(&lines, "bot_data.db");
    assert_eq!(master["outcome"], "set_aside");
    assert!(
        master["reason"]
            .as_str()
            .unwrap()
            .contains("no session file in a user folder for 1 of them: +62*******0099"),
        "{master}"
    );
    let kept = t.root.join(summary["imported_dir"].as_str().unwrap());
    assert!(kept.starts_with(t.root.join(".imported")));

    // Refused, each with its reason, and left byte for byte.
    for (tid, phone, why) in [
        (B, NEVER, "never paired"),
        (B, CORRUPT, "corrupt"),
        (A, MISMATCH, "does not match the number in the file name"),
        (B, BUSY, "is the Go bot still running"),
    ] {
        let rel = format!("{tid}/whatsmeow-{tid}-{phone}.db");
        let e = entry(&lines, &rel);
        assert_eq!(e["outcome"], "refused", "{e}");
        assert!(e["reason"].as_str().unwrap().contains(why), "{rel}: {e}");
        assert_eq!(
            hashes(&t.cwd).get(&format!("DB USER TELEGRAM/{rel}")),
            before.get(&format!("DB USER TELEGRAM/{rel}")),
            "{rel} changed"
        );
    }
    // The never-paired account's Go bot data stays where it was.
    let never_bd = format!("DB USER TELEGRAM/{B}/bot_data-{B}-{NEVER}.db");
    assert_eq!(hashes(&t.cwd).get(&never_bd), before.get(&never_bd));

    // Every original, byte for byte, with its -wal/-shm, under .imported/<ts>/ at the same
    // relative path; the Go master beside them.
    let now = hashes(&t.cwd);
    let kept_rel = kept.strip_prefix(&t.cwd).unwrap().display().to_string();
    let mut originals = 0;
    for (tid, phone) in [(A, FULL), (A, WAL), (B, PLAIN)] {
        for name in [
            format!("whatsmeow-{tid}-{phone}.db"),
            format!("bot_data-{tid}-{phone}.db"),
        ] {
            for side in ["", "-wal", "-shm"] {
                let orig = format!("DB USER TELEGRAM/{tid}/{name}{side}");
                if let Some(h) = before.get(&orig) {
                    assert_eq!(now.get(&format!("{kept_rel}/{tid}/{name}{side}")), Some(h), "{orig}");
                    originals += 1;
                }
            }
        }
    }
    assert!(originals >= 8, "{originals}");
    assert!(before.contains_key(&format!("DB USER TELEGRAM/{A}/whatsmeow-{A}-{WAL}.db-wal")));
    assert_eq!(now.get(&format!("{kept_rel}/bot_data.db")), before.get("bot_data.db"));

    // Exactly the three, under the right owners, active, with the devices' JIDs.
    let accounts: serde_json::Value = serde_json::from_str(&ok(&tgwa(&t.cwd, &["accounts", "--json"], &[]))).unwrap();
    let mut got: Vec<(i64, String, String)> = accounts
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["telegram_id"].as_i64().unwrap(),
                a["phone"].as_str().unwrap().to_string(),
                a["status"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    got.sort();
    let masked = |p: &str| format!("+62*******{}", &p[p.len() - 4..]);
    assert_eq!(
        got,
        vec![
            (111, masked(FULL), "active".into()),
            (111, masked(WAL), "active".into()),
            (222, masked(PLAIN), "active".into()),
        ]
    );

    // The new session files are whatsapp-rust stores holding the same device.
    let s =
        rusqlite::Connection::open_with_flags(session(&t.root, A, FULL), rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    let (pn, lid, noise): (String, String, Vec<u8>) = s
        .query_row("SELECT pn, lid, noise_key FROM device", [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .unwrap();
    assert_eq!(pn, t.full.jid);
    assert_eq!(lid, "123456789012345:12@lid");
    assert_eq!(&noise[32..], &t.full.noise_public[..], "the same Noise key");
    let n = |table: &str| -> i64 {
        s.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
            .unwrap()
    };
    assert_eq!(
        (n("prekeys"), n("identities"), n("sessions"), n("lid_pn_mapping")),
        (30, 3, 3, 2)
    );
    // Fresh tgwa bot data replaced the Go bot's.
    let bd =
        rusqlite::Connection::open_with_flags(bot_data(&t.root, A, FULL), rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    let v: i64 = bd.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
    assert!(v >= 1);

    // The scan recognises the whatsmeow files left behind and never registers them.
    let scan = json_lines(&ok(&tgwa(&t.cwd, &["scan", "--json"], &[])));
    let never = entry(&scan, &format!("{B}/whatsmeow-{B}-{NEVER}.db"));
    assert_eq!(never["outcome"], "invalid", "{never}");
    assert!(never["reason"].as_str().unwrap().contains("tgwa import"), "{never}");
    assert_eq!(
        entry(&scan, &format!("{A}/whatsmeow-{A}-{FULL}.db"))["outcome"],
        "already_known"
    );
    assert_eq!(scan.last().unwrap()["summary"]["registered_now"], 0);

    // A second run imports nothing new and changes no file in the data directory.
    let data_before = hashes(&t.root);
    let lines = json_lines(&ok(&tgwa(&t.cwd, &["import", "--json"], &[])));
    let summary = &lines.last().unwrap()["summary"];
    assert_eq!(summary["imported"], 0, "{lines:#?}");
    assert_eq!(summary["set_aside"], 0, "{lines:#?}");
    assert_eq!(summary["imported_dir"], serde_json::Value::Null);
    assert_eq!(hashes(&t.root), data_before);
    let accounts: serde_json::Value = serde_json::from_str(&ok(&tgwa(&t.cwd, &["accounts", "--json"], &[]))).unwrap();
    assert_eq!(accounts.as_array().unwrap().len(), 3);
}

#[test]
fn the_age_window_is_configurable() {
    let t = go_tree();
    let lines = json_lines(&ok(&tgwa(
        &t.cwd,
        &["import", "--dry-run", "--json"],
        &[("TGWA_IMPORT_MIN_AGE_SECS", "0")],
    )));
    let busy = entry(&lines, &format!("{B}/whatsmeow-{B}-{BUSY}.db"));
    assert_eq!(busy["outcome"], "would_import", "{busy}");
    let o = tgwa(
        &t.cwd,
        &["import", "--dry-run"],
        &[("TGWA_IMPORT_MIN_AGE_SECS", "soon")],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("TGWA_IMPORT_MIN_AGE_SECS"));
}

/// Starting a whatsapp-rust session on a whatsmeow file used to migrate it in place.
#[tokio::test]
async fn a_session_never_opens_a_whatsmeow_file() {
    use tgwa::ids::{PhoneNumber, TelegramId};
    use tgwa::wa::real::{self, RealBackend};
    use tgwa::wa::{SessionSpec, WaBackend};
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("DB USER TELEGRAM");
    std::fs::create_dir_all(root.join(A)).unwrap();
    let file = session(&root, A, PLAIN);
    wm::write_store(&file, &Spec::paired(PLAIN));
    let before = hashes(&root);
    let be = RealBackend::with_options(real::silent_options().with_socket_wait(Duration::from_secs(2)));
    let res = be
        .start(SessionSpec {
            telegram_id: TelegramId::new(111).unwrap(),
            phone: PhoneNumber::from_digits(PLAIN).unwrap(),
            session_file: file.clone(),
        })
        .await;
    let err = match res {
        Ok((s, _)) => {
            s.disconnect(Duration::from_secs(3)).await;
            panic!("a whatsapp-rust session started on a whatsmeow file")
        }
        Err(e) => e.to_string(),
    };
    assert!(err.contains("tgwa import"), "{err}");
    assert_eq!(hashes(&root), before);
}

/// `tgwa run` imports before its scan: the Go master is set aside, the accounts registered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_imports_at_startup() {
    let t = go_tree();
    let tg = fake_telegram::FakeTelegram::start().await;
    let env = support::app::env_for(&t.cwd, &tg.url(), &[]);
    let config = tgwa::config::Config::from_map(&env).unwrap();
    let (stop, rx) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(tgwa::app::serve(config, rx));
    let deadline = Instant::now() + Duration::from_secs(30);
    let registered = |cwd: &Path| -> usize {
        let Ok(c) =
            rusqlite::Connection::open_with_flags(cwd.join("bot_data.db"), rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        else {
            return 0;
        };
        c.query_row(
            "SELECT count(*) FROM whatsapp_accounts WHERE telegram_id IS NOT NULL",
            [],
            |r| r.get::<_, i64>(0),
        )
        .map(|n| n as usize)
        .unwrap_or(0)
    };
    while registered(&t.cwd) < 3 {
        assert!(
            Instant::now() < deadline,
            "the startup import did not register the accounts"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = stop.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(30), task).await;
    let c =
        rusqlite::Connection::open_with_flags(t.cwd.join("bot_data.db"), rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    let owners: Vec<(i64, String)> = c
        .prepare("SELECT telegram_id, phone_number FROM whatsapp_accounts ORDER BY phone_number")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        owners,
        vec![
            (111, FULL.to_string()),
            (111, WAL.to_string()),
            (222, PLAIN.to_string())
        ]
    );
    let imported = std::fs::read_dir(t.root.join(".imported")).unwrap().count();
    assert_eq!(imported, 1);
}

#[test]
fn nothing_to_import_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = ok(&tgwa(dir.path(), &["import"], &[]));
    assert!(out.contains("nothing to import"), "{out}");
    assert!(!dir.path().join("DB USER TELEGRAM").exists());
    assert!(!dir.path().join("bot_data.db").exists());
    let lines = json_lines(&ok(&tgwa(dir.path(), &["import", "--dry-run", "--json"], &[])));
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["summary"]["sessions_found"], 0);
}

/// Over the real adapter and the fake WhatsApp server (a build with the
/// `insecure-fake-whatsapp` feature: `TGWA_TEST_WA_BACKEND=fake cargo test --features
/// insecure-fake-whatsapp --test import`): the Go bot's account, imported at start-up, logs in
/// without pairing and its owner's `/menu` shows it connected.
#[cfg(feature = "insecure-fake-whatsapp")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_imported_account_shows_connected_in_its_owners_menu() {
    use std::sync::Arc;
    let owner: i64 = 333;
    let phone = "6283300000012";
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let folder = dir.path().join("DB USER TELEGRAM").join(owner.to_string());
    std::fs::create_dir_all(&folder).unwrap();
    wm::write_store(
        &folder.join(format!("whatsmeow-{owner}-{phone}.db")),
        &Spec::paired(phone),
    );
    let tg = fake_telegram::FakeTelegram::start().await;
    let bot = support::app::TestBot::start_in(
        tg,
        dir,
        vec![
            ("TGWA_WA_BACKEND".into(), "fake".into()),
            ("TGWA_IMPORT_MIN_AGE_SECS".into(), "0".into()),
        ],
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let menu = bot.say(owner, "/menu", "Menu utama").await;
        if menu.text.contains("0012") && menu.text.contains("🟢 terhubung") {
            break;
        }
        assert!(Instant::now() < deadline, "not shown connected: {}", menu.text);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    bot.stop().await;
}

/// A lone Go session of user A with its writes kept in `-wal`, aged an hour; returns the
/// working directory (kept alive by the temp dir) and the session path.
fn lone_wal_session(phone: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("DB USER TELEGRAM");
    std::fs::create_dir_all(root.join(A)).unwrap();
    let s = session(&root, A, phone);
    wm::write_store(
        &s,
        &Spec {
            keep_wal: true,
            ..Spec::paired(phone)
        },
    );
    age_all(tmp.path());
    (tmp, s)
}

#[test]
fn import_refuses_a_symlinked_wal_and_never_reads_through_it() {
    let (tmp, s) = lone_wal_session(WAL);
    let wal = PathBuf::from(format!("{}-wal", s.display()));
    let elsewhere = tmp.path().join("elsewhere-wal");
    std::fs::rename(&wal, &elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, &wal).unwrap();
    let out = ok(&tgwa(tmp.path(), &["import", "--dry-run", "--json"], &[]));
    let lines = json_lines(&out);
    let e = entry(&lines, &format!("{A}/whatsmeow-{A}-{WAL}.db"));
    assert_eq!(e["outcome"], "refused", "{lines:#?}");
    assert!(
        e["reason"].as_str().unwrap_or("").contains("symbolic link"),
        "{lines:#?}"
    );
}

#[test]
fn a_go_session_dated_in_the_future_is_reported_so_and_imported() {
    let (tmp, s) = lone_wal_session(PLAIN);
    let ahead = SystemTime::now() + Duration::from_secs(7200);
    for p in [s.clone(), PathBuf::from(format!("{}-wal", s.display()))] {
        if p.exists() {
            std::fs::OpenOptions::new()
                .write(true)
                .open(&p)
                .unwrap()
                .set_modified(ahead)
                .unwrap();
        }
    }
    let out = ok(&tgwa(tmp.path(), &["import", "--dry-run", "--json"], &[]));
    let lines = json_lines(&out);
    let e = entry(&lines, &format!("{A}/whatsmeow-{A}-{PLAIN}.db"));
    assert_eq!(e["outcome"], "would_import", "{lines:#?}");
    assert!(
        e["reason"].as_str().unwrap_or("").contains("in the future"),
        "{lines:#?}"
    );
}
