//! Start-up as an operator meets it, through the built binary: `.env` parsing, Telegram
//! unreachable or rejecting the token, `tgwa check`, a corrupt callback secret, and the
//! master database deleted under a running process.

#[path = "support/fake_telegram.rs"]
pub mod fake_telegram;
mod support {
    pub use super::fake_telegram;
    #[path = "app.rs"]
    pub mod app;
}

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fake_telegram::FakeTelegram;
use support::app::{env_for, TestBot, WAIT};

const USER: i64 = 7_800_001;

fn env(dir: &Path, api_url: &str, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let extra: Vec<(String, String)> = extra.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    env_for(dir, api_url, &extra).into_iter().collect()
}

fn tgwa(dir: &Path, args: &[&str], vars: &[(String, String)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tgwa"))
        .args(args)
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(vars.iter().cloned())
        .stdin(Stdio::null())
        .output()
        .expect("run tgwa")
}

/// [`tgwa`] off the runtime, so the fake Bot API on this runtime can answer meanwhile.
async fn tgwa_async(dir: &Path, args: &[&str], vars: &[(String, String)]) -> Output {
    let (dir, vars) = (dir.to_path_buf(), vars.to_vec());
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        tgwa(&dir, &args, &vars)
    })
    .await
    .expect("tgwa thread")
}

/// A running `tgwa run` whose stderr is collected line by line.
struct Running {
    child: Child,
    log: Arc<Mutex<Vec<String>>>,
}

impl Running {
    fn start(dir: &Path, vars: &[(String, String)]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_tgwa"))
            .arg("run")
            .current_dir(dir)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(vars.iter().cloned())
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start tgwa");
        let log = Arc::new(Mutex::new(Vec::new()));
        let stderr = child.stderr.take().expect("stderr");
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("[tgwa] {line}");
                sink.lock().unwrap().push(line);
            }
        });
        Self { child, log }
    }

    fn log_text(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    fn count(&self, needle: &str) -> usize {
        self.log.lock().unwrap().iter().filter(|l| l.contains(needle)).count()
    }

    /// Waits (polling) until the log holds `n` lines containing `needle`.
    async fn wait_log(&self, needle: &str, n: usize, within: Duration) {
        let deadline = Instant::now() + within;
        while self.count(needle) < n {
            assert!(
                Instant::now() < deadline,
                "no {n} log lines with {needle:?} within {within:?}:\n{}",
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn signal(&self, sig: i32) {
        // SAFETY: sending a signal to our own child process.
        unsafe {
            libc::kill(self.child.id() as i32, sig);
        }
    }

    /// Waits (polling) for the process to exit; panics with its log if it does not.
    async fn wait_exit(&mut self, within: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                // Let the reader thread drain the last lines.
                tokio::time::sleep(Duration::from_millis(100)).await;
                return s;
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                panic!("tgwa did not exit within {within:?}:\n{}", self.log_text());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The bot answers a user: proof that the dispatcher is serving.
async fn serves(tg: &FakeTelegram) {
    let mark = tg.mark();
    tg.push_message(USER, "/start");
    tg.try_wait_for_after(mark, |c| c.method == "sendmessage" && c.chat_id == Some(USER), WAIT)
        .await
        .expect("the bot answers /start");
}

// ----- .env -----

#[test]
fn a_env_line_that_does_not_parse_exits_2_and_names_the_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join(".env"),
        "# tgwa\nTGWA_MAX_ACCOUNTS=5\nTGWA_DATA_DIR=DB USER TELEGRAM\nTGWA_WA_BACKEND=sim\n",
    )
    .unwrap();
    let o = tgwa(dir.path(), &["accounts"], &[]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains(".env") && err.contains("line 3"), "{err}");
}

#[tokio::test]
async fn the_shipped_env_example_copied_to_env_is_applied_and_the_environment_wins() {
    let tg = FakeTelegram::start().await;
    let dir = tempfile::tempdir().unwrap();
    let example = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/.env.example")).unwrap();
    // What an operator does: copy, fill in the token, pick the simulator and a ceiling.
    let dotenv = example
        .replace("TELEGRAM_BOT_TOKEN=\n", "TELEGRAM_BOT_TOKEN=123456:TEST-TOKEN\n")
        .replace(
            "#TELEGRAM_API_URL=https://api.telegram.org",
            &format!("TELEGRAM_API_URL={}", tg.url()),
        )
        .replace("TGWA_WA_BACKEND=whatsapp", "TGWA_WA_BACKEND=sim")
        .replace("TGWA_MAX_ACCOUNTS=50", "TGWA_MAX_ACCOUNTS=7");
    assert_ne!(dotenv, example);
    std::fs::write(dir.path().join(".env"), dotenv).unwrap();
    let o = tgwa_async(dir.path(), &["check"], &[]).await;
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{out}{}", String::from_utf8_lossy(&o.stderr));
    assert!(out.contains("backend Sim, up to 7 accounts"), "{out}");
    let o = tgwa_async(dir.path(), &["check"], &[("TGWA_MAX_ACCOUNTS".into(), "9".into())]).await;
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("up to 9 accounts"), "{out}");
}

// ----- tgwa check -----

#[tokio::test]
async fn check_prints_the_bot_username_when_the_token_works() {
    let tg = FakeTelegram::start().await;
    let dir = tempfile::tempdir().unwrap();
    let o = tgwa_async(dir.path(), &["check"], &env(dir.path(), &tg.url(), &[])).await;
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{out}{}", String::from_utf8_lossy(&o.stderr));
    assert!(out.contains("@tgwa_test_bot"), "{out}");
    assert!(out.contains("ready"), "{out}");
    assert!(!dir.path().join("bot_data.db").exists(), "check creates nothing");
}

#[tokio::test]
async fn check_exits_2_when_telegram_rejects_the_token() {
    let tg = FakeTelegram::start().await;
    tg.reject_token();
    let dir = tempfile::tempdir().unwrap();
    let o = tgwa_async(dir.path(), &["check"], &env(dir.path(), &tg.url(), &[])).await;
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(2), "{out}");
    assert!(out.contains("token rejected"), "{out}");
}

#[test]
fn check_exits_1_when_telegram_is_unreachable() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("http://127.0.0.1:{}/", FakeTelegram::closed_port());
    let o = tgwa(dir.path(), &["check"], &env(dir.path(), &url, &[]));
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(out.contains("Telegram unreachable"), "{out}");
}

#[tokio::test]
async fn check_reports_a_corrupt_secret_and_open_modes() {
    use std::os::unix::fs::PermissionsExt;
    let tg = FakeTelegram::start().await;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("DB USER TELEGRAM");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(data.join(".secret"), b"short").unwrap();
    let o = tgwa_async(dir.path(), &["check"], &env(dir.path(), &tg.url(), &[])).await;
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(out.contains("FAIL callback secret"), "{out}");
    assert!(out.contains("mode 0755"), "{out}");
}

// ----- tgwa run and Telegram -----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_exits_2_when_telegram_rejects_the_token() {
    let tg = FakeTelegram::start().await;
    tg.reject_token();
    let dir = tempfile::tempdir().unwrap();
    let mut p = Running::start(dir.path(), &env(dir.path(), &tg.url(), &[]));
    let status = p.wait_exit(Duration::from_secs(30)).await;
    assert_eq!(status.code(), Some(2), "{}", p.log_text());
    assert!(p.log_text().contains("token rejected by Telegram"), "{}", p.log_text());
    assert!(!tg.was_called("getUpdates"), "no dispatcher without a valid token");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_retries_an_unreachable_telegram_and_serves_once_it_answers() {
    let port = FakeTelegram::closed_port();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("http://127.0.0.1:{port}/");
    let mut p = Running::start(dir.path(), &env(dir.path(), &url, &[]));
    // Each try is logged; the process neither exits nor pretends to serve.
    p.wait_log("Telegram unreachable; retrying getMe", 2, Duration::from_secs(30))
        .await;
    assert!(p.child.try_wait().unwrap().is_none(), "{}", p.log_text());
    let tg = FakeTelegram::start_on(port).await;
    serves(&tg).await;
    p.signal(libc::SIGTERM);
    let status = p.wait_exit(Duration::from_secs(30)).await;
    assert!(status.success(), "{status:?}\n{}", p.log_text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_rides_out_server_errors_on_get_me() {
    let tg = FakeTelegram::start().await;
    // One 500 (teloxide waits 10 s before reading a 5xx answer) and one broken connection.
    tg.fail_next_n("getMe", 1, 500, "Internal Server Error");
    tg.drop_next("getMe", None);
    let dir = tempfile::tempdir().unwrap();
    let mut p = Running::start(dir.path(), &env(dir.path(), &tg.url(), &[]));
    serves(&tg).await;
    assert_eq!(p.count("Telegram unreachable; retrying getMe"), 2, "{}", p.log_text());
    p.signal(libc::SIGTERM);
    assert!(p.wait_exit(Duration::from_secs(30)).await.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_while_telegram_is_unreachable_stops_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("http://127.0.0.1:{}/", FakeTelegram::closed_port());
    let mut p = Running::start(dir.path(), &env(dir.path(), &url, &[]));
    p.wait_log("Telegram unreachable; retrying getMe", 1, Duration::from_secs(30))
        .await;
    p.signal(libc::SIGTERM);
    let status = p.wait_exit(Duration::from_secs(20)).await;
    assert!(status.success(), "{status:?}\n{}", p.log_text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dispatcher_that_ends_on_its_own_stops_the_process() {
    let tg = FakeTelegram::start().await;
    // Our getMe passes; the dispatcher's own getMe is refused, which ended its task (with a
    // panic) and left the process running without a bot.
    tg.reject_token_after(1);
    let dir = tempfile::tempdir().unwrap();
    let mut p = Running::start(dir.path(), &env(dir.path(), &tg.url(), &[]));
    let status = p.wait_exit(Duration::from_secs(40)).await;
    assert_eq!(status.code(), Some(1), "{}", p.log_text());
    assert!(p.log_text().contains("dispatcher ended on its own"), "{}", p.log_text());
}

// ----- data directory and secrets -----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_secret_stops_start_up_and_is_left_alone() {
    let tg = FakeTelegram::start().await;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("DB USER TELEGRAM");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join(".secret"), b"not 32 bytes").unwrap();
    let mut p = Running::start(dir.path(), &env(dir.path(), &tg.url(), &[]));
    let status = p.wait_exit(Duration::from_secs(30)).await;
    assert_eq!(status.code(), Some(1), "{}", p.log_text());
    assert!(p.log_text().contains("callback secret"), "{}", p.log_text());
    assert_eq!(std::fs::read(data.join(".secret")).unwrap(), b"not 32 bytes");
    assert!(!tg.was_called("getUpdates"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pairing_never_writes_through_a_symlinked_user_folder() {
    let bot = TestBot::start(&[]).await;
    let elsewhere = bot.dir.path().join("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    std::fs::create_dir_all(bot.data_dir()).unwrap();
    std::os::unix::fs::symlink(&elsewhere, bot.data_dir().join(USER.to_string())).unwrap();
    let reply = {
        let mark = bot.tg.mark();
        bot.tg.push_message(USER, "/pair 6281234567001");
        bot.tg.wait_for_text_to_after(mark, USER, "❌", WAIT).await
    };
    assert!(reply.text.contains("symbolic link"), "{}", reply.text);
    assert_eq!(
        std::fs::read_dir(&elsewhere).unwrap().count(),
        0,
        "nothing written through the link"
    );
    assert!(bot.account_row("6281234567001").is_none(), "no account registered");
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pairing_never_writes_through_a_symlinked_account_file() {
    let bot = TestBot::start(&[]).await;
    let outside = bot.dir.path().join("outside.db");
    std::fs::write(&outside, b"").unwrap();
    let folder = bot.data_dir().join(USER.to_string());
    std::fs::create_dir_all(&folder).unwrap();
    std::os::unix::fs::symlink(&outside, folder.join(format!("whatsmeow-{USER}-6281234567002.db"))).unwrap();
    let mark = bot.tg.mark();
    bot.tg.push_message(USER, "/pair 6281234567002");
    let reply = bot.tg.wait_for_text_to_after(mark, USER, "❌", WAIT).await;
    assert!(reply.text.contains("symbolic link"), "{}", reply.text);
    assert_eq!(
        std::fs::metadata(&outside).unwrap().len(),
        0,
        "nothing written through the link"
    );
    assert!(bot.account_row("6281234567002").is_none(), "no account registered");
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_master_database_stops_the_process() {
    let tg = FakeTelegram::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut p = Running::start(dir.path(), &env(dir.path(), &tg.url(), &[]));
    serves(&tg).await;
    let master = dir.path().join("bot_data.db");
    std::fs::remove_file(&master).unwrap();
    let status = p.wait_exit(Duration::from_secs(30)).await;
    assert_eq!(status.code(), Some(1), "{}", p.log_text());
    assert!(p.log_text().contains("was deleted"), "{}", p.log_text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replaced_master_database_stops_the_process() {
    let tg = FakeTelegram::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut p = Running::start(dir.path(), &env(dir.path(), &tg.url(), &[]));
    serves(&tg).await;
    let master = dir.path().join("bot_data.db");
    let copy = dir.path().join("copy.db");
    std::fs::copy(&master, &copy).unwrap();
    std::fs::rename(&copy, &master).unwrap();
    let status = p.wait_exit(Duration::from_secs(30)).await;
    assert_eq!(status.code(), Some(1), "{}", p.log_text());
    assert!(p.log_text().contains("was replaced"), "{}", p.log_text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_are_json_and_plain_logs_have_no_colour_codes() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("http://127.0.0.1:{}/", FakeTelegram::closed_port());
    for (format, json) in [("json", true), ("pretty", false)] {
        let mut p = Running::start(dir.path(), &env(dir.path(), &url, &[("TGWA_LOG_FORMAT", format)]));
        p.wait_log("retrying getMe", 1, Duration::from_secs(30)).await;
        p.signal(libc::SIGTERM);
        p.wait_exit(Duration::from_secs(20)).await;
        let lines = p.log.lock().unwrap().clone();
        assert!(!lines.is_empty());
        for l in &lines {
            assert!(!l.contains('\u{1b}'), "colour codes on a pipe: {l:?}");
            if json {
                let v: serde_json::Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}"));
                assert!(v["level"].is_string(), "{l}");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_on_a_foreign_sqlite_file_at_the_master_path_exits_2_and_leaves_it_alone() {
    let tg = FakeTelegram::start().await;
    let dir = tempfile::tempdir().unwrap();
    let master = dir.path().join("bot_data.db");
    {
        let c = rusqlite::Connection::open(&master).unwrap();
        c.execute_batch(
            "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT); INSERT INTO notes (body) VALUES ('mine');",
        )
        .unwrap();
    }
    let mut p = Running::start(dir.path(), &env(dir.path(), &tg.url(), &[]));
    let status = p.wait_exit(Duration::from_secs(30)).await;
    assert_eq!(status.code(), Some(2), "{}", p.log_text());
    assert!(p.log_text().contains("TGWA_MASTER_DB"), "{}", p.log_text());
    let c = rusqlite::Connection::open(&master).unwrap();
    let tables: Vec<String> = c
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(tables, ["notes"], "tgwa added its tables");
    assert!(!tg.was_called("getUpdates"));
}
