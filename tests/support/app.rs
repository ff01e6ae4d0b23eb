//! Runs the whole bot (`tgwa::app::serve`, the real dispatcher, the real account manager
//! over the simulator) against the fake Bot API, in a temporary data directory that survives
//! restarts of the bot.
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tgwa::config::Config;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::fake_telegram::FakeTelegram;

/// How long a test waits for any one reply.
pub const WAIT: Duration = Duration::from_secs(20);

/// A running bot with its fake Telegram and data directory.
pub struct TestBot {
    pub tg: FakeTelegram,
    pub dir: Arc<tempfile::TempDir>,
    pub extra: Vec<(String, String)>,
    stop: watch::Sender<bool>,
    task: JoinHandle<anyhow::Result<()>>,
    /// The clock scheduled jobs follow, when the test moves it by hand (kept by `restart`).
    pub clock: Option<tgwa::schedule::Clock>,
}

/// The WhatsApp backend the suites run on: `TGWA_TEST_WA_BACKEND` when set; else `fake` for
/// the test binaries Cargo.toml declares a second time over the fake server (named `fake_*`,
/// built only with `--features insecure-fake-whatsapp`), and `sim` for the rest.
pub fn test_backend() -> &'static str {
    match std::env::var("TGWA_TEST_WA_BACKEND").as_deref() {
        Ok("fake") => return "fake",
        Ok("sim") => return "sim",
        _ => {}
    }
    let exe = std::env::current_exe().ok();
    let name = exe
        .as_deref()
        .and_then(|p| p.file_name())
        .and_then(|n| n.to_str())
        .unwrap_or("");
    if name.starts_with("fake_") {
        "fake"
    } else {
        "sim"
    }
}

/// The environment the bot runs with: simulator, no throttling, no pacing, short delays.
pub fn env_for(dir: &Path, api_url: &str, extra: &[(String, String)]) -> HashMap<String, String> {
    let mut vars: HashMap<String, String> = [
        ("TELEGRAM_BOT_TOKEN", "123456:TEST-TOKEN"),
        // `TGWA_TEST_WA_BACKEND=fake` (with `--features insecure-fake-whatsapp`) runs the same
        // suites over the real adapter and the fake WhatsApp server.
        ("TGWA_WA_BACKEND", test_backend()),
        ("TGWA_SIM_PAIR_DELAY_MS", "300"),
        ("TGWA_SIM_CODE_TTL_MS", "4000"),
        ("TGWA_TELEGRAM_THROTTLE", "0"),
        ("TGWA_LOGIN_JITTER_MS", "0"),
        ("TGWA_LOGIN_TIMEOUT_SECS", "10"),
        ("TGWA_JOB_ITEM_DELAY_MS", "0"),
        ("TGWA_JOB_JITTER_MS", "0"),
        ("TGWA_SHUTDOWN_TIMEOUT_SECS", "5"),
        // The pairing cooldowns have their own tests; elsewhere they would only slow pairing.
        ("TGWA_PAIR_COOLDOWN_SECS", "0"),
        ("TGWA_PAIR_MAX_PER_HOUR", "0"),
        // Off: many bots run in one test process; tests/ops.rs turns it on with a free port.
        ("TGWA_HTTP_ADDR", ""),
        // Off: it would greet every operator at start-up; tests/admin.rs turns it on.
        ("TGWA_DIGEST_HOUR", ""),
        // Off: "typing…" before each bulk message and the warm-up cap of new accounts have
        // their own tests (tests/pushback.rs); elsewhere they would only slow or cap jobs.
        ("TGWA_TYPING", "0"),
        ("TGWA_WARMUP_CAPS", ""),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    vars.insert("TELEGRAM_API_URL".into(), api_url.to_string());
    vars.insert(
        "TGWA_DATA_DIR".into(),
        dir.join("DB USER TELEGRAM").display().to_string(),
    );
    vars.insert("TGWA_MASTER_DB".into(), dir.join("bot_data.db").display().to_string());
    for (k, v) in extra {
        vars.insert(k.clone(), v.clone());
    }
    vars
}

/// Starts the built `tgwa run` as a child process in `dir`, with the tests' environment
/// (`env_for`) plus `extra`, nothing inherited but `PATH`, and its stderr shown.
pub fn spawn_binary(dir: &Path, api_url: &str, extra: &[(String, String)]) -> std::process::Child {
    std::process::Command::new(env!("CARGO_BIN_EXE_tgwa"))
        .arg("run")
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(env_for(dir, api_url, extra))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .expect("start tgwa")
}

/// Runs `tgwa fake <args>` (a fake build's control verbs) on the data directory under `dir`,
/// with the tests' environment (`env_for`) plus `extra`, nothing inherited but `PATH`.
pub fn tgwa_fake(dir: &Path, api_url: &str, extra: &[(String, String)], args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_tgwa"))
        .arg("fake")
        .args(args)
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(env_for(dir, api_url, extra))
        .stdin(std::process::Stdio::null())
        .output()
        .expect("tgwa fake")
}

impl TestBot {
    /// A new bot in a new directory.
    pub async fn start(extra: &[(&str, &str)]) -> Self {
        let tg = FakeTelegram::start().await;
        let dir = Arc::new(tempfile::tempdir().expect("tempdir"));
        let extra = extra.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Self::start_in(tg, dir, extra).await
    }

    /// A bot over an existing directory (prepared by the test) and fake Telegram.
    pub async fn start_in(tg: FakeTelegram, dir: Arc<tempfile::TempDir>, extra: Vec<(String, String)>) -> Self {
        Self::start_with_clock(tg, dir, extra, None).await
    }

    /// [`TestBot::start_in`] with the clock scheduled jobs follow (`None`: the system's).
    pub async fn start_with_clock(
        tg: FakeTelegram,
        dir: Arc<tempfile::TempDir>,
        extra: Vec<(String, String)>,
        clock: Option<tgwa::schedule::Clock>,
    ) -> Self {
        let mut config = Config::from_map(&env_for(dir.path(), &tg.url(), &extra)).expect("config");
        if let Some(c) = &clock {
            config.clock = c.clone();
        }
        let (stop, rx) = watch::channel(false);
        let task = tokio::spawn(tgwa::app::serve(config, rx));
        Self {
            tg,
            dir,
            extra,
            stop,
            task,
            clock,
        }
    }

    /// Stops the bot the way SIGTERM does and waits for it.
    pub async fn stop(self) -> (FakeTelegram, Arc<tempfile::TempDir>, Vec<(String, String)>) {
        let _ = self.stop.send(true);
        match tokio::time::timeout(Duration::from_secs(30), self.task).await {
            Ok(Ok(Ok(()))) => {}
            other => panic!("the bot did not stop cleanly: {other:?}"),
        }
        (self.tg, self.dir, self.extra)
    }

    /// Stops and starts the bot again on the same data and the same fake Telegram.
    pub async fn restart(self) -> Self {
        let clock = self.clock.clone();
        let (tg, dir, extra) = self.stop().await;
        Self::start_with_clock(tg, dir, extra, clock).await
    }

    /// How many refusals `who` got for actions `LIKE action`: one audit row per user, action
    /// and minute holds them all, its detail ending in `[+N more this minute]`.
    pub fn refusals(&self, who: i64, action: &str) -> i64 {
        let c = self.master();
        let mut st = c
            .prepare("SELECT COALESCE(detail, '') FROM audit_log WHERE telegram_id = ?1 AND action LIKE ?2")
            .unwrap();
        let details: Vec<String> = st
            .query_map(rusqlite::params![who, action], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        details
            .iter()
            .map(|d| {
                1 + d
                    .rsplit_once(" [+")
                    .and_then(|(_, t)| t.strip_suffix(" more this minute]"))
                    .map_or(0, |n| n.parse::<i64>().unwrap())
            })
            .sum()
    }

    /// The data directory (`DB USER TELEGRAM`).
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("DB USER TELEGRAM")
    }

    /// The master database.
    pub fn master_db(&self) -> PathBuf {
        self.dir.path().join("bot_data.db")
    }

    /// The simulator's world.
    pub fn world_db(&self) -> PathBuf {
        self.data_dir().join(".sim").join("world.db")
    }

    /// A read-only connection to the master database.
    pub fn master(&self) -> rusqlite::Connection {
        rusqlite::Connection::open_with_flags(self.master_db(), rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .expect("open master")
    }

    /// `(id, telegram_id, status)` of the newest account row with this phone, if any.
    pub fn account_row(&self, phone: &str) -> Option<(i64, i64, String)> {
        use rusqlite::OptionalExtension;
        self.master()
            .query_row(
                "SELECT id, telegram_id, status FROM whatsapp_accounts WHERE phone_number = ?1 ORDER BY id DESC LIMIT 1",
                [phone],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()
            .expect("query")
    }

    /// How many account rows exist (any status but removed).
    pub fn account_count(&self) -> i64 {
        self.master()
            .query_row(
                "SELECT COUNT(*) FROM whatsapp_accounts WHERE status != 'removed'",
                [],
                |r| r.get(0),
            )
            .expect("count")
    }

    /// Pairs `phone` (digits with country code) for `user` through `/pair` and waits for the
    /// success message. Returns the account ID.
    pub async fn pair(&self, user: i64, phone: &str) -> i64 {
        let mark = self.tg.mark();
        self.tg.push_message(user, &format!("/pair {phone}"));
        self.tg
            .wait_for_text_to_after(mark, user, "Terhubung sebagai", WAIT)
            .await;
        let (id, owner, status) = self.account_row(phone).expect("account row after pairing");
        assert_eq!(owner, user);
        assert_eq!(status, "active");
        id
    }

    /// The callback data of the button whose label contains `label` in the latest message to
    /// `chat` that has such a button.
    pub fn button(&self, chat: i64, label: &str) -> String {
        self.tg
            .sent_to(chat)
            .iter()
            .rev()
            .find_map(|m| m.button_data(label))
            .unwrap_or_else(|| panic!("no button {label:?} in chat {chat}"))
    }

    /// The message that holds the button with data `data`.
    pub fn message_with_button(&self, chat: i64, data: &str) -> i64 {
        self.tg
            .sent_to(chat)
            .iter()
            .rev()
            .find(|m| m.buttons().iter().any(|(_, d)| d == data))
            .map(|m| m.message_id)
            .unwrap_or_else(|| panic!("no message with button {data:?} in chat {chat}"))
    }

    /// Presses the button labelled `label` as `user` and returns the callback's ID.
    pub fn press(&self, user: i64, label: &str) -> String {
        let data = self.button(user, label);
        let mid = self.message_with_button(user, &data);
        self.tg.push_callback(user, mid, &data)
    }

    /// Sends `text` as `user` and waits for a reply (new or edited) containing `want`.
    pub async fn say(&self, user: i64, text: &str, want: &str) -> super::fake_telegram::Sent {
        let mark = self.tg.mark();
        self.tg.push_message(user, text);
        self.tg.wait_for_text_to_after(mark, user, want, WAIT).await
    }

    /// Presses the button labelled `label` as `user` and waits for a reply containing `want`.
    pub async fn tap(&self, user: i64, label: &str, want: &str) -> super::fake_telegram::Sent {
        let mark = self.tg.mark();
        self.press(user, label);
        self.tg.wait_for_text_to_after(mark, user, want, WAIT).await
    }

    /// Sends a callback signed for `user` (a button the bot could have made) and waits for
    /// its answer.
    pub async fn callback(&self, user: i64, cb: &tgwa::bot::callback::Cb) -> serde_json::Value {
        let codec =
            tgwa::bot::callback::CallbackCodec::load_or_create(&self.data_dir().join(".secret")).expect("secret");
        let data = codec.encode(tgwa::ids::TelegramId::new(user).expect("id"), cb);
        // On a message the bot never sent: a made-up button is judged by its signature alone
        // (on a real message whose keyboard lacks it, it would be a stale button).
        let id = self.tg.push_callback(user, 1_000_000_000, &data);
        self.tg.wait_for_callback_answer(&id, WAIT).await
    }

    /// The fake WhatsApp server's world (`TGWA_WA_BACKEND=fake`).
    pub fn fake_world(&self) -> PathBuf {
        self.data_dir().join(".fake").join("world.json")
    }

    /// Messages the WhatsApp backend recorded as sent by `from` (digits): `(to, text)`, `to`
    /// being the number's digits or the group's JID. Over `sim` from its `world.db`; over
    /// `fake` from the fake server's state file (saved every 100 ms and at shutdown), with
    /// the text the backend noted after each successful send (empty if it never did).
    pub fn sent_by(&self, from: &str) -> Vec<(String, String)> {
        if test_backend() == "fake" {
            let path = self.fake_world();
            if !path.exists() {
                return Vec::new();
            }
            return tgwa_fakewa::read_sent_messages(&path)
                .expect("read the fake server's record")
                .into_iter()
                .filter(|m| m.from == from)
                .map(|m| {
                    let to = m.to.strip_suffix("@s.whatsapp.net").unwrap_or(&m.to).to_string();
                    (to, m.text.unwrap_or_default())
                })
                .collect();
        }
        tgwa::wa::sim::read_sent_messages(&self.world_db())
            .expect("read the simulator's record")
            .into_iter()
            .filter(|m| m.from == from)
            .map(|m| (m.to, m.text))
            .collect()
    }

    /// Starts a broadcast of `text` to the numbers in `list` (one a line) as `user`, up to its
    /// preview with the Start button.
    pub async fn broadcast_preview(&self, user: i64, text: &str, list: &str) {
        self.say(user, "/menu", "Menu utama").await;
        self.tap(user, "Pesan", "Pesan</b>").await;
        self.tap(user, "Siaran", "teks pesan siaran").await;
        self.say(user, text, "Kirim ke mana").await;
        let mark = self.tg.mark();
        self.tg
            .push_document(user, "numbers.txt", list.as_bytes().to_vec(), None);
        self.tg
            .wait_for_text_to_after(mark, user, "Mulai pekerjaan ini", WAIT)
            .await;
    }
}

/// `n` distinct phone numbers, one a line (none ends in `00`, so all are on WhatsApp).
pub fn numbers(n: usize) -> String {
    (0..n).map(|i| format!("62857{:07}7", i)).collect::<Vec<_>>().join("\n")
}
