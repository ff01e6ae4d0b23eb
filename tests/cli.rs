//! The operator CLI, driven through the built binary in a temporary working directory.

use std::path::Path;
use std::process::{Command, Output};

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

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn session(path: &Path) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let c = rusqlite::Connection::open(path).unwrap();
    c.execute_batch(
        "CREATE TABLE device (id INTEGER PRIMARY KEY, pn TEXT, jid TEXT);
         INSERT INTO device VALUES (1, '6281234567890', '6281234567890:1@s.whatsapp.net');",
    )
    .unwrap();
}

#[test]
fn fresh_directory_dry_run_prints_an_empty_report_and_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let o = tgwa(dir.path(), &["scan", "--dry-run"], &[]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(stdout(&o).contains("nothing found"), "{}", stdout(&o));
    assert!(!dir.path().join("DB USER TELEGRAM").exists());
    assert!(!dir.path().join("bot_data.db").exists());
    let o = tgwa(dir.path(), &["scan", "--dry-run", "--json"], &[]);
    assert_eq!(o.status.code(), Some(0));
    let lines: Vec<serde_json::Value> = stdout(&o).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["summary"]["files"], 0);
}

#[test]
fn scan_json_accounts_and_cleanup() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("DB USER TELEGRAM");
    session(&root.join("42/whatsmeow-42-6281234567890.db"));
    std::fs::create_dir_all(root.join("abc")).unwrap();
    std::fs::write(root.join("42/whatsmeow-42-6289999999999.db-wal"), b"w").unwrap();

    let o = tgwa(dir.path(), &["scan", "--json"], &[]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let lines: Vec<serde_json::Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect();
    let summary = &lines.last().unwrap()["summary"];
    assert_eq!(summary["registered_now"], 2, "{lines:?}");
    assert_eq!(summary["orphaned"], 2, "{lines:?}");
    let s = lines
        .iter()
        .find(|l| l["path"] == "42/whatsmeow-42-6281234567890.db")
        .unwrap();
    assert_eq!(s["outcome"], "registered_now");
    assert_eq!(s["phone"], "+62*******7890");

    let o = tgwa(dir.path(), &["scan"], &[]);
    assert_eq!(o.status.code(), Some(0));
    assert!(stdout(&o).contains("0 registered now"), "{}", stdout(&o));

    let o = tgwa(dir.path(), &["accounts", "--json"], &[]);
    assert_eq!(o.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 1);
    assert_eq!(v[0]["telegram_id"], 42);
    assert_eq!(v[0]["phone"], "+62*******7890");
    let o = tgwa(dir.path(), &["accounts"], &[]);
    assert!(stdout(&o).contains("+62*******7890"));

    let o = tgwa(dir.path(), &["cleanup", "--dry-run"], &[]);
    assert_eq!(o.status.code(), Some(0));
    assert!(stdout(&o).contains("would move 2 files"), "{}", stdout(&o));
    assert!(root.join("abc").exists());
    let o = tgwa(dir.path(), &["cleanup"], &[]);
    assert_eq!(o.status.code(), Some(0));
    assert!(stdout(&o).contains("moved 2 files"), "{}", stdout(&o));
    assert!(!root.join("abc").exists());
    assert!(root.join(".trash").is_dir());
    assert!(root.join("42/whatsmeow-42-6281234567890.db").exists());
}

#[test]
fn bad_config_and_bad_arguments_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let o = tgwa(dir.path(), &["scan", "--dry-run"], &[("TGWA_MAX_ACCOUNTS", "abc")]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("TGWA_MAX_ACCOUNTS"));
    let o = tgwa(dir.path(), &["frobnicate"], &[]);
    assert_eq!(o.status.code(), Some(2));
    let o = tgwa(dir.path(), &["scan", "--bogus"], &[]);
    assert_eq!(o.status.code(), Some(2));
    let o = tgwa(dir.path(), &["--help"], &[]);
    assert_eq!(o.status.code(), Some(0));
    let o = tgwa(dir.path(), &["--version"], &[]);
    assert_eq!(o.status.code(), Some(0));
    // A data directory that is a file is bad configuration too.
    std::fs::write(dir.path().join("DB USER TELEGRAM"), b"").unwrap();
    let o = tgwa(dir.path(), &["accounts"], &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("TGWA_DATA_DIR"));
}

#[test]
fn scan_needs_no_bot_token_but_run_does() {
    let dir = tempfile::tempdir().unwrap();
    let o = tgwa(dir.path(), &["scan"], &[]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let o = tgwa(dir.path(), &["run"], &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("TELEGRAM_BOT_TOKEN"));
}
