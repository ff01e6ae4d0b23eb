//! The built binary as an operator runs it: `tgwa run` against the fake Bot API, killed and
//! restarted, then inspected with `tgwa accounts`.

#[path = "support/fake_telegram.rs"]
pub mod fake_telegram;
mod support {
    pub use super::fake_telegram;
    #[path = "app.rs"]
    pub mod app;
}

use std::process::{Child, Command};
use std::time::Duration;

use fake_telegram::FakeTelegram;
use support::app::{env_for, spawn_binary, WAIT};

const ADMIN: i64 = 7_700_001;
const A: i64 = 7_700_002;
const B: i64 = 7_700_003;

fn spawn(dir: &std::path::Path, tg: &FakeTelegram, extra: &[(&str, &str)]) -> Child {
    let mut extra: Vec<(String, String)> = extra.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    extra.push(("TGWA_ADMIN_IDS".into(), ADMIN.to_string()));
    extra.push(("RUST_LOG".into(), "warn".into()));
    spawn_binary(dir, &tg.url(), &extra)
}

fn signal(child: &Child, sig: i32) {
    // SAFETY: sending a signal to our own child process.
    unsafe {
        libc::kill(child.id() as i32, sig);
    }
}

fn wait_exit(child: &mut Child, within: Duration) -> std::process::ExitStatus {
    let deadline = std::time::Instant::now() + within;
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        assert!(std::time::Instant::now() < deadline, "tgwa did not exit");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn accounts_json(dir: &std::path::Path, tg: &FakeTelegram) -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_tgwa"))
        .args(["accounts", "--json"])
        .current_dir(dir)
        .env_clear()
        .envs(env_for(dir, &tg.url(), &[]))
        .output()
        .expect("tgwa accounts");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("accounts --json is JSON")
}

fn status_of(accounts: &serde_json::Value, phone_last4: &str) -> Option<String> {
    accounts.as_array()?.iter().find_map(|a| {
        let text = a.to_string();
        text.contains(phone_last4)
            .then(|| a["status"].as_str().unwrap_or("").to_string())
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_pairing_is_cleaned_up_and_restart_reconnects_everyone_else() {
    let tg = FakeTelegram::start().await;
    let dir = tempfile::tempdir().unwrap();

    // First run: A links an account; B starts a pairing that will never be confirmed.
    let mut child = spawn(dir.path(), &tg, &[("TGWA_SIM_CODE_TTL_MS", "600000")]);
    let mark = tg.mark();
    tg.push_message(A, "/pair 6281234567001");
    tg.wait_for_text_to_after(mark, A, "Terhubung sebagai", WAIT).await;
    let mark = tg.mark();
    tg.push_message(B, "/pair 6281234560408");
    tg.wait_for_text_to_after(mark, B, "Kode pairing", WAIT).await;
    let b_session = dir
        .path()
        .join(format!("DB USER TELEGRAM/{B}/whatsmeow-{B}-6281234560408.db"));
    assert!(
        b_session.exists(),
        "the pairing's files are written before the code is asked for"
    );

    signal(&child, libc::SIGKILL);
    wait_exit(&mut child, Duration::from_secs(10));

    // Second run: the interrupted pairing is reported and cleaned; A is back without help.
    let mark = tg.mark();
    let mut child = spawn(dir.path(), &tg, &[]);
    let summary = tg
        .wait_for_text_to_after(mark, ADMIN, "Startup selesai", Duration::from_secs(30))
        .await;
    assert!(
        summary.text.contains("Pairing terputus dibersihkan: 1"),
        "{}",
        summary.text
    );
    assert!(summary.text.contains("1/1"), "{}", summary.text);
    assert!(!b_session.exists(), "the half-made pairing's files were moved away");

    let mark = tg.mark();
    tg.push_message(A, "/status");
    let s = tg.wait_for_text_to_after(mark, A, "7001", WAIT).await;
    assert!(s.text.contains("terhubung"), "{}", s.text);

    // SIGTERM stops it cleanly.
    signal(&child, libc::SIGTERM);
    let status = wait_exit(&mut child, Duration::from_secs(20));
    assert!(status.success(), "{status:?}");

    let accounts = accounts_json(dir.path(), &tg);
    assert_eq!(status_of(&accounts, "7001").as_deref(), Some("active"), "{accounts}");
    assert_eq!(
        status_of(&accounts, "0408"),
        None,
        "no row left for the killed pairing: {accounts}"
    );
}

#[test]
fn run_without_a_token_exits_2_and_says_where_to_get_one() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tgwa"))
        .arg("run")
        .current_dir(dir.path())
        .env_clear()
        .env("TGWA_WA_BACKEND", "sim")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("BotFather") && err.contains("TELEGRAM_BOT_TOKEN"), "{err}");
}
