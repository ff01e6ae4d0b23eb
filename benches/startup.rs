//! Start-up of the whole program: N linked (simulated) accounts in their folders and a master
//! database, then `tgwa run` (the built binary, a fresh process) from its start until the log
//! says the startup restore finished with every account connected, once with the production
//! login defaults (`TGWA_LOGIN_CONCURRENCY` 8, `TGWA_LOGIN_JITTER_MS` 500) and once with
//! concurrency 64; the resident memory and open descriptors of the process once all are up,
//! per account. The baseline is the scan alone: `tgwa scan --dry-run` over the same tree, a
//! fresh process from start to exit. Telegram is the fake Bot API on loopback.
//!
//! Prints one line: `startup accounts=N default_s=.. c64_s=.. rss_per_account_kib=..
//! fds_per_account=.. baseline_s=.. ratio=<c64_s / baseline_s>`. `TGWA_BENCH_ACCOUNTS` sets N
//! (default 10000; 5 with `TGWA_BENCH_SMOKE=1`); `TGWA_BENCH_DEFAULT_ACCOUNTS` caps the
//! accounts of the run with the production defaults (their jitter alone costs about
//! N / 8 × 0.25 s).

#[path = "../tests/support/fake_telegram.rs"]
mod fake_telegram;
#[path = "support/mod.rs"]
mod support;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use fake_telegram::FakeTelegram;
use tgwa::config::Config;
use tgwa::ids::{PhoneNumber, TelegramId};
use tgwa::manager::AccountManager;

/// The environment of the measured process (nothing inherited but `PATH`).
fn env(dir: &Path, api: &str, n: usize, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = [
        ("TELEGRAM_BOT_TOKEN", "123456:BENCH"),
        ("TGWA_WA_BACKEND", "sim"),
        ("TGWA_HTTP_ADDR", ""),
        ("TGWA_DIGEST_HOUR", ""),
        ("RUST_LOG", "info"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    v.push(("TELEGRAM_API_URL".into(), api.to_string()));
    v.push((
        "TGWA_DATA_DIR".into(),
        dir.join("DB USER TELEGRAM").display().to_string(),
    ));
    v.push(("TGWA_MASTER_DB".into(), dir.join("bot_data.db").display().to_string()));
    v.push(("TGWA_MAX_ACCOUNTS".into(), (n + 10).to_string()));
    v.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    v
}

/// Links `n` accounts (one per user) through the real pairing path, then stops.
async fn prepare(dir: &Path, n: usize) {
    let mut c = Config::for_tests(dir);
    c.max_accounts = n + 10;
    c.sim_pair_delay = Duration::from_millis(1);
    let backend = tgwa::wa::backend_for(&c).await.expect("simulator");
    let m = AccountManager::open(c, backend).await.expect("manager");
    let accounts = (0..n)
        .map(|i| {
            let owner = TelegramId::new(8_500_000 + i as i64).expect("tid");
            (
                owner,
                PhoneNumber::from_digits(&format!("62817{:06}5", i)).expect("phone"),
            )
        })
        .collect();
    support::pair_all(&m, accounts).await;
    m.shutdown(Duration::from_secs(10)).await;
}

fn status_kib(pid: u32, key: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Starts `tgwa run`; returns the seconds until every account is connected, the process's
/// RSS (KiB) and open descriptors then.
fn run_until_up(dir: &Path, vars: &[(String, String)], n: usize) -> (f64, u64, usize) {
    let t = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_tgwa"))
        .arg("run")
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(vars.iter().cloned())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start tgwa run");
    let pid = child.id();
    let stderr = child.stderr.take().expect("stderr");
    let mut up = None;
    for line in BufReader::new(stderr).lines().map_while(Result::ok) {
        // Shown, so a start that never finishes says why.
        eprintln!("tgwa: {line}");
        if line.contains("startup restore finished") {
            let want = format!("connected: {n},");
            assert!(line.contains(&want), "not every account connected: {line}");
            up = Some(t.elapsed().as_secs_f64());
            break;
        }
    }
    let took = up.expect("tgwa run ended before its restore finished");
    let rss = status_kib(pid, "VmRSS:");
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0);
    // Measured: its graceful shutdown (which waits out a long poll) is not, so no SIGTERM.
    let _ = child.kill();
    let _ = child.wait();
    (took, rss, fds)
}

/// The baseline: `tgwa scan --dry-run` over the same tree, start to exit.
fn scan_alone(dir: &Path, vars: &[(String, String)]) -> f64 {
    let t = Instant::now();
    let st = Command::new(env!("CARGO_BIN_EXE_tgwa"))
        .args(["scan", "--dry-run"])
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(vars.iter().cloned())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("tgwa scan");
    assert!(st.success(), "tgwa scan failed");
    t.elapsed().as_secs_f64()
}

fn main() {
    let n = support::size("TGWA_BENCH_ACCOUNTS", 10_000, 5);
    let n_default = support::size("TGWA_BENCH_DEFAULT_ACCOUNTS", n, n).min(n);
    let rt = support::runtime();
    let dir = tempfile::tempdir().expect("tempdir");
    let small = tempfile::tempdir().expect("tempdir");
    let tg = rt.block_on(async {
        prepare(dir.path(), n).await;
        if n_default < n {
            prepare(small.path(), n_default).await;
        }
        FakeTelegram::start().await
    });
    let url = tg.url();
    let fast = env(dir.path(), &url, n, &[("TGWA_LOGIN_CONCURRENCY", "64")]);
    let baseline = scan_alone(dir.path(), &fast);
    let (c64, rss, fds) = run_until_up(dir.path(), &fast, n);
    let default_dir = if n_default < n { small.path() } else { dir.path() };
    let (default_s, _, _) = run_until_up(default_dir, &env(default_dir, &url, n_default, &[]), n_default);
    println!(
        "startup accounts={n} default_accounts={n_default} default_s={default_s:.2} c64_s={c64:.2} \
         rss_kib={rss} rss_per_account_kib={:.1} fds={fds} fds_per_account={:.3} baseline_s={baseline:.2} ratio={:.2}",
        rss as f64 / n as f64,
        fds as f64 / n as f64,
        c64 / baseline.max(1e-9)
    );
    tg.shutdown();
    rt.shutdown_timeout(Duration::from_secs(2));
}
