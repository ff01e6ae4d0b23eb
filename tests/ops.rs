//! Running it as a service, tried from outside as an operator would: backups taken while the
//! bot works and restored into an empty directory, the health check and the metrics.

#[path = "support/fake_telegram.rs"]
pub mod fake_telegram;
mod support {
    pub use super::fake_telegram;
    #[path = "app.rs"]
    pub mod app;
}

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use support::app::{TestBot, WAIT};

const A: i64 = 7_000_001;
const B: i64 = 7_000_002;
const C: i64 = 7_000_003;
const A_PHONE: &str = "6281234562001";
const A2_PHONE: &str = "6281234562011";
const B_PHONE: &str = "6281234562002";
const C_PHONE: &str = "6281234562003";

/// Runs the built binary with only the variables given (and PATH).
fn tgwa(cwd: &Path, args: &[&str], env: &[(&str, String)]) -> Output {
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

fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The environment that points the CLI at a data directory and master database.
fn dirs_env(data: &Path, master: &Path) -> Vec<(&'static str, String)> {
    vec![
        ("TGWA_DATA_DIR", data.display().to_string()),
        ("TGWA_MASTER_DB", master.display().to_string()),
    ]
}

/// Messages the simulator recorded as sent by `from`.
fn sent_count(world: &Path, from: &str) -> usize {
    tgwa::wa::sim::read_sent_messages(world)
        .expect("read the simulator's record")
        .into_iter()
        .filter(|m| m.from == from)
        .count()
}

/// `(state, items done, items total)` of every job in a bot data file.
fn jobs_in(bot_data: &Path) -> Vec<(String, i64, i64)> {
    let c = rusqlite::Connection::open_with_flags(bot_data, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    let mut st = c
        .prepare(
            "SELECT j.state,
                    (SELECT COUNT(*) FROM job_items i WHERE i.job_id = j.id AND i.state IN ('ok', 'failed')),
                    (SELECT COUNT(*) FROM job_items i WHERE i.job_id = j.id)
             FROM jobs j ORDER BY j.id",
        )
        .unwrap();
    st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

async fn say(bot: &TestBot, user: i64, text: &str, want: &str) -> fake_telegram::Sent {
    let mark = bot.tg.mark();
    bot.tg.push_message(user, text);
    bot.tg.wait_for_text_to_after(mark, user, want, WAIT).await
}

async fn tap(bot: &TestBot, user: i64, label: &str, want: &str) -> fake_telegram::Sent {
    let mark = bot.tg.mark();
    bot.press(user, label);
    bot.tg.wait_for_text_to_after(mark, user, want, WAIT).await
}

/// Starts a broadcast of one text to `n` numbers as `user` and returns once it runs.
async fn start_broadcast(bot: &TestBot, user: i64, n: usize) {
    let list = (0..n).map(|i| format!("62858{:07}7", i)).collect::<Vec<_>>().join("\n");
    say(bot, user, "/menu", "Menu utama").await;
    tap(bot, user, "Pesan", "Pesan</b>").await;
    tap(bot, user, "Siaran", "teks pesan siaran").await;
    say(bot, user, "Cadangan sedang berjalan", "Kirim ke mana").await;
    let mark = bot.tg.mark();
    bot.tg.push_document(user, "numbers.txt", list.into_bytes(), None);
    bot.tg
        .wait_for_text_to_after(mark, user, "Mulai pekerjaan ini", WAIT)
        .await;
    let mark = bot.tg.mark();
    bot.press(user, "Mulai");
    bot.tg.wait_for_method_after(mark, "answercallbackquery", WAIT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_while_a_200_item_job_runs_restores_every_account_and_the_job() {
    let bot = TestBot::start(&[("TGWA_JOB_ITEM_DELAY_MS", "40")]).await;
    bot.pair(A, A_PHONE).await;
    bot.pair(B, B_PHONE).await;
    bot.pair(C, C_PHONE).await;
    bot.pair(A, A2_PHONE).await;
    // The second pairing made A2 active; switch back is not needed: the job runs on A2.
    start_broadcast(&bot, A, 200).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while sent_count(&bot.world_db(), A2_PHONE) < 20 {
        assert!(tokio::time::Instant::now() < deadline, "the job did not start");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // The backup runs from another process while the bot keeps sending.
    let work = tempfile::tempdir().unwrap();
    let env = dirs_env(&bot.data_dir(), &bot.master_db());
    let before = sent_count(&bot.world_db(), A2_PHONE);
    let o = tokio::task::spawn_blocking({
        let cwd = work.path().to_path_buf();
        let env = env.clone();
        move || tgwa(&cwd, &["backup", "--to", "nightly"], &env)
    })
    .await
    .unwrap();
    let after = sent_count(&bot.world_db(), A2_PHONE);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        after < 200,
        "the job ended before the backup finished ({after}); nothing was tested"
    );
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(work.path().join("nightly/manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["failed"].as_array().unwrap().len(), 0, "{manifest}");
    // Master, 4 sessions, 4 bot data files, the simulator's world and the secret.
    assert_eq!(manifest["files"].as_array().unwrap().len(), 11, "{manifest}");
    for f in manifest["files"].as_array().unwrap() {
        assert_eq!(f["sha256"].as_str().unwrap().len(), 64);
    }
    let accounts_before = tgwa(work.path(), &["accounts", "--json"], &env);
    bot.stop().await;

    // Restore into an empty place, then scan it as the operator would.
    let target = tempfile::tempdir().unwrap();
    let (data2, master2) = (
        target.path().join("DB USER TELEGRAM"),
        target.path().join("bot_data.db"),
    );
    let env2 = dirs_env(&data2, &master2);
    let o = tgwa(
        target.path(),
        &["restore", "--from", &work.path().join("nightly").display().to_string()],
        &env2,
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let o = tgwa(target.path(), &["scan", "--json"], &env2);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let summary = &lines.last().unwrap()["summary"];
    // Three user folders and eight account files.
    assert_eq!(summary["already_known"], 11, "{lines:?}");
    assert_eq!(summary["files"], 8, "{lines:?}");
    assert_eq!(summary["invalid"], 0, "{lines:?}");
    assert_eq!(summary["orphaned"], 0, "{lines:?}");
    assert_eq!(summary["registered_now"], 0, "{lines:?}");
    for phone in [A_PHONE, A2_PHONE, B_PHONE, C_PHONE] {
        let masked = &phone[phone.len() - 4..];
        assert!(
            lines
                .iter()
                .filter(|l| l["outcome"] == "already_known" && l["kind"] == "session")
                .any(|l| l["phone"].as_str().unwrap_or("").ends_with(masked) && l["status"] == "active"),
            "{phone} not found active: {lines:?}"
        );
    }
    // The same accounts as before, with the same owners and statuses.
    let accounts_after = tgwa(target.path(), &["accounts", "--json"], &env2);
    let strip = |o: &Output| -> Vec<(i64, i64, String, String)> {
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        v.as_array()
            .unwrap()
            .iter()
            .map(|a| {
                (
                    a["id"].as_i64().unwrap(),
                    a["telegram_id"].as_i64().unwrap(),
                    a["phone"].as_str().unwrap().to_string(),
                    a["status"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    assert_eq!(strip(&accounts_before), strip(&accounts_after));
    // The job is there with the progress it had while the backup ran.
    let jobs = jobs_in(&data2.join(format!("{A}/bot_data-{A}-{A2_PHONE}.db")));
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    let (state, done, total) = jobs[0].clone();
    assert_eq!(state, "running");
    assert_eq!(total, 200);
    assert!(
        done as usize >= before.saturating_sub(1) && done as usize <= after,
        "progress {done} outside what was sent around the backup ({before}..{after})"
    );
    // Restoring over what now exists is refused, and names the target.
    let o = tgwa(
        target.path(),
        &["restore", "--from", &work.path().join("nightly").display().to_string()],
        &env2,
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("not empty"), "{}", text(&o));
}

#[test]
fn a_backup_names_a_file_it_could_not_copy_and_fails() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("DB USER TELEGRAM");
    let master = dir.path().join("bot_data.db");
    let env = dirs_env(&data, &master);
    // An account folder whose bot data is not a database.
    std::fs::create_dir_all(data.join("42")).unwrap();
    let c = rusqlite::Connection::open(data.join("42/whatsmeow-42-6281234567890.db")).unwrap();
    c.execute_batch("CREATE TABLE device (id INTEGER PRIMARY KEY, pn TEXT, jid TEXT);")
        .unwrap();
    drop(c);
    std::fs::write(data.join("42/bot_data-42-6281234567890.db"), vec![b'x'; 4096]).unwrap();
    let o = tgwa(dir.path(), &["scan", "--dry-run"], &env);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let o = tgwa(dir.path(), &["init-master", &master.display().to_string()], &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let o = tgwa(dir.path(), &["backup", "--to", "b"], &env);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("bot_data-42-6281234567890.db"), "{}", text(&o));
    assert!(
        !err.contains("whatsmeow-42"),
        "only the bad file is named: {}",
        text(&o)
    );
}

/// A port nothing listens on right now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `GET path` over plain HTTP/1.0: `(status, body)`, or `None` when nothing answers.
async fn get(port: u16, path: &str) -> Option<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let io = async {
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.ok()?;
        s.write_all(format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").as_bytes())
            .await
            .ok()?;
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await.ok()?;
        let text = String::from_utf8_lossy(&buf).into_owned();
        let status = text.split_whitespace().nth(1)?.parse().ok()?;
        let body = text
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default();
        Some((status, body))
    };
    tokio::time::timeout(Duration::from_secs(10), io).await.ok().flatten()
}

/// Polls `/health` until it answers `want`; returns the body and how long it took.
async fn health_becomes(port: u16, want: u16, within: Duration) -> (String, Duration) {
    let start = tokio::time::Instant::now();
    loop {
        if let Some((code, body)) = get(port, "/health").await {
            if code == want {
                return (body, start.elapsed());
            }
        }
        assert!(
            start.elapsed() < within,
            "/health did not become {want} within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_fails_within_seconds_when_telegram_stops_answering_and_recovers() {
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let bot = TestBot::start(&[("TGWA_HTTP_ADDR", &addr), ("TGWA_HEALTH_MAX_AGE_SECS", "3")]).await;
    let (body, _) = health_becomes(port, 200, WAIT).await;
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["status"], "ok", "{body}");

    bot.tg.pause();
    let (body, took) = health_becomes(port, 503, Duration::from_secs(15)).await;
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["status"], "unhealthy", "{body}");
    assert!(v["reason"].as_str().unwrap().contains("getUpdates"), "{body}");
    // The fake holds a poll at most 2 s, the limit is 3 s: well under 10 s in all.
    assert!(took < Duration::from_secs(10), "took {took:?}");

    bot.tg.resume();
    let (_, took) = health_becomes(port, 200, Duration::from_secs(15)).await;
    assert!(took < Duration::from_secs(10), "recovery took {took:?}");
    // The bot still answers after the outage.
    say(&bot, A, "/start", "").await;
    bot.stop().await;
}

/// Sets the soft limit on the size of any file process `pid` writes (`ulimit -f`, in bytes):
/// from then on every write past that size fails as on a full disk.
fn limit_file_size(pid: u32, bytes: u64) {
    let lim = libc::rlimit {
        rlim_cur: bytes,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: prlimit on our own child with a valid rlimit and no old-value pointer.
    let rc = unsafe { libc::prlimit(pid as i32, libc::RLIMIT_FSIZE, &lim, std::ptr::null_mut()) };
    assert_eq!(rc, 0, "prlimit: {}", std::io::Error::last_os_error());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_fails_when_the_master_database_cannot_be_written_and_recovers() {
    let tg = fake_telegram::FakeTelegram::start().await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let extra = vec![
        ("TGWA_HTTP_ADDR".to_string(), format!("127.0.0.1:{port}")),
        ("RUST_LOG".to_string(), "warn".to_string()),
    ];
    let mut child = support::app::spawn_binary(dir.path(), &tg.url(), &extra);
    let (body, _) = health_becomes(port, 200, WAIT).await;
    assert!(body.contains("\"ok\""), "{body}");
    // A dead disk: the write lock is still taken, every write fails.
    limit_file_size(child.id(), 1);
    let (body, _) = health_becomes(port, 503, Duration::from_secs(15)).await;
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(v["reason"].as_str().unwrap_or("").contains("master database"), "{body}");
    assert!(child.try_wait().unwrap().is_none(), "tgwa died on the failed write");
    limit_file_size(child.id(), libc::RLIM_INFINITY);
    health_becomes(port, 200, Duration::from_secs(15)).await;
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let _ = child.wait();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_open_http_connections_are_capped_and_cut_and_health_still_answers() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let bot = TestBot::start(&[("TGWA_HTTP_ADDR", &addr)]).await;
    health_becomes(port, 200, WAIT).await;
    // 200 clients each send half a header and go silent.
    let mut held = Vec::new();
    for _ in 0..200 {
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        s.write_all(b"GET /health HTTP/1.1\r\nHost: loc").await.unwrap();
        held.push(s);
    }
    // Each ends when the server closes it: at once above the cap, after the lifetime below it.
    let started = tokio::time::Instant::now();
    let closed = futures::future::join_all(held.into_iter().map(|mut s| async move {
        let mut buf = [0u8; 64];
        let r = tokio::time::timeout(Duration::from_secs(20), s.read(&mut buf)).await;
        (r.is_ok(), tokio::time::Instant::now())
    }))
    .await;
    assert!(
        closed.iter().all(|(ok, _)| *ok),
        "a half-open connection was never closed"
    );
    let quick = closed
        .iter()
        .filter(|(_, at)| at.duration_since(started) < Duration::from_secs(3))
        .count();
    assert!(
        quick >= 200 - 64,
        "only {quick} connections over the cap were refused at once"
    );
    let last = closed.iter().map(|(_, at)| at.duration_since(started)).max().unwrap();
    assert!(last <= Duration::from_secs(15), "the last one was cut after {last:?}");
    let (body, _) = health_becomes(port, 200, WAIT).await;
    assert!(body.contains("\"ok\""), "{body}");
    bot.stop().await;
}

#[test]
fn check_warns_when_the_http_listener_is_reachable_from_other_machines() {
    let dir = tempfile::tempdir().unwrap();
    let base = dirs_env(&dir.path().join("data"), &dir.path().join("bot_data.db"));
    let mut env = base.clone();
    env.push(("TGWA_HTTP_ADDR", "0.0.0.0:9464".to_string()));
    let out = tgwa(dir.path(), &["check"], &env);
    assert!(text(&out).contains("reachable from other machines"), "{}", text(&out));
    let mut env = base;
    env.push(("TGWA_HTTP_ADDR", "127.0.0.1:9464".to_string()));
    let out = tgwa(dir.path(), &["check"], &env);
    assert!(!text(&out).contains("reachable from other machines"), "{}", text(&out));
}

/// `name{labels} value` lines of Prometheus text; panics on a line that is neither that nor a
/// comment.
fn parse_prometheus(text: &str) -> Vec<(String, String, f64)> {
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        if line.starts_with('#') {
            assert!(
                line.starts_with("# HELP ") || line.starts_with("# TYPE "),
                "bad comment line {line:?}"
            );
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("bad line {line:?}"));
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("bad value in {line:?}"));
        let (name, labels) = match series.split_once('{') {
            Some((n, l)) => {
                assert!(l.ends_with('}'), "bad labels in {line:?}");
                (n.to_string(), l.trim_end_matches('}').to_string())
            }
            None => (series.to_string(), String::new()),
        };
        assert!(
            !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "bad metric name in {line:?}"
        );
        out.push((name, labels, value));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_parse_and_account_gauges_match_the_cli() {
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let bot = TestBot::start(&[("TGWA_HTTP_ADDR", &addr)]).await;
    let doomed = "6281234560401";
    bot.pair(A, "6281234563001").await;
    bot.pair(B, "6281234563002").await;
    bot.pair(C, doomed).await;
    // The 0401 number is logged out from the phone 3 s after it connects.
    let deadline = tokio::time::Instant::now() + WAIT;
    while bot.account_row(doomed).map(|r| r.2) != Some("logged_out".into()) {
        assert!(tokio::time::Instant::now() < deadline, "no logout");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let (code, body) = get(port, "/metrics").await.expect("metrics answer");
    assert_eq!(code, 200);
    let series = parse_prometheus(&body);
    let value = |name: &str, labels: &str| {
        series
            .iter()
            .find(|(n, l, _)| n == name && l == labels)
            .map(|(_, _, v)| *v)
            .unwrap_or_else(|| panic!("no {name}{{{labels}}} in\n{body}"))
    };

    let work = tempfile::tempdir().unwrap();
    let o = tgwa(
        work.path(),
        &["accounts", "--json"],
        &dirs_env(&bot.data_dir(), &bot.master_db()),
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let rows: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    for status in ["pairing", "active", "logged_out", "banned", "unpaired", "removed"] {
        let cli = rows
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["status"] == status)
            .count();
        assert_eq!(
            value("tgwa_accounts", &format!("status=\"{status}\"")),
            cli as f64,
            "status {status}"
        );
    }
    assert_eq!(value("tgwa_accounts", "status=\"active\""), 2.0);
    assert_eq!(value("tgwa_sessions_connected", ""), 2.0);
    // The pool cache: every open account's pool counted, and opened at least once.
    assert!(value("tgwa_sqlite_pools_open", "") >= 2.0);
    assert!(value("tgwa_sqlite_pools_opened_total", "") >= value("tgwa_sqlite_pools_open", ""));
    // Counters are per process (other tests here add to them): at least what this test did.
    assert!(value("tgwa_pair_code_requests_total", "") >= 3.0);
    assert!(value("tgwa_pair_outcomes_total", "outcome=\"paired\"") >= 3.0);
    assert!(value("tgwa_update_seconds_count", "") >= 3.0);
    assert!(series.iter().any(|(n, _, _)| n == "tgwa_update_seconds_bucket"));
    bot.stop().await;
}
