//! Startup restore: N simulated accounts logged back in through the real supervisor path
//! (concurrency 64, no jitter), timed to "all connected", with resident memory per account,
//! next to N bare tokio tasks as the baseline measured in the same run. Also the resident
//! memory of one real whatsapp-rust client over the offline transport (200 of them).
//!
//! `cargo bench --bench restore` prints one line ending in `ratio=` (restore time / baseline
//! time). `TGWA_BENCH_ACCOUNTS` changes N (default 1000).

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;

#[path = "support/mod.rs"]
mod support;

use tgwa::config::Config;
use tgwa::ids::{PhoneNumber, TelegramId};
use tgwa::manager::AccountManager;
use tgwa::wa::real::{self, RealBackend};
use tgwa::wa::{SessionSpec, WaBackend, WaSession};

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn config(dir: &std::path::Path, n: usize) -> Config {
    let mut c = Config::for_tests(dir);
    c.max_accounts = n + 10;
    c.login_concurrency = 64;
    c.login_jitter = Duration::ZERO;
    c.sim_pair_delay = Duration::from_millis(1);
    c.pool_cache_size = 64;
    c
}

async fn open(c: &Config) -> AccountManager {
    let backend = tgwa::wa::backend_for(c).await.expect("simulator");
    AccountManager::open(c.clone(), backend).await.expect("manager")
}

/// Pairs `n` accounts (one per Telegram user) so the next start has something to restore.
async fn prepare(c: &Config, n: usize) {
    let m = open(c).await;
    let accounts = (0..n)
        .map(|i| {
            let owner = TelegramId::new(8_000_000 + i as i64).expect("tid");
            (
                owner,
                PhoneNumber::from_digits(&format!("62813{:06}5", i)).expect("phone"),
            )
        })
        .collect();
    support::pair_all(&m, accounts).await;
    m.shutdown(Duration::from_secs(10)).await;
}

/// Resident memory per real client over the silent transport.
async fn real_client_kib(dir: &std::path::Path, n: usize) -> f64 {
    let backend = Arc::new(RealBackend::with_options(
        real::silent_options().with_socket_wait(Duration::from_secs(1)),
    ));
    let spec = |i: usize| {
        let phone = PhoneNumber::from_digits(&format!("62814{:06}5", i)).expect("phone");
        SessionSpec {
            telegram_id: TelegramId::new(1).expect("tid"),
            session_file: dir.join(format!("whatsmeow-1-{}.db", phone.digits())),
            phone,
        }
    };
    // One warm-up client so one-time allocations are not charged to the first N.
    let (warm, _warm_rx) = backend.start(spec(0)).await.expect("warm-up client");
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let before = rss_kib();
    let sessions: Vec<(Arc<dyn WaSession>, tgwa::wa::EventRx)> = futures::stream::iter(1..=n)
        .map(|i| {
            let backend = backend.clone();
            async move { backend.start(spec(i)).await.expect("client") }
        })
        .buffer_unordered(4)
        .collect()
        .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let kib = rss_kib().saturating_sub(before) as f64 / n as f64;
    futures::future::join_all(sessions.iter().map(|(s, _)| s.disconnect(Duration::from_millis(200)))).await;
    warm.disconnect(Duration::from_millis(200)).await;
    kib
}

fn main() {
    let n = support::size("TGWA_BENCH_ACCOUNTS", 1000, 5);
    let rt = support::runtime();
    rt.block_on(async move {
        let dir = tempfile::tempdir().unwrap();
        let c = config(dir.path(), n);
        prepare(&c, n).await;

        // Baseline: N bare tasks, each parked like a live session's supervisor.
        let before = rss_kib();
        let t = Instant::now();
        let (stop, _) = tokio::sync::broadcast::channel::<()>(1);
        let (ready_tx, mut ready_rx) = tokio::sync::mpsc::unbounded_channel::<()>();
        let tasks: Vec<_> = (0..n)
            .map(|_| {
                let mut stop = stop.subscribe();
                let ready = ready_tx.clone();
                tokio::spawn(async move {
                    let _ = ready.send(());
                    let _ = stop.recv().await;
                })
            })
            .collect();
        for _ in 0..n {
            ready_rx.recv().await;
        }
        let baseline = t.elapsed();
        let baseline_kib = rss_kib().saturating_sub(before) as f64 / n as f64;
        let _ = stop.send(());
        futures::future::join_all(tasks).await;

        // The restore itself, on a fresh process-like start (new simulator, new manager).
        let before = rss_kib();
        let t = Instant::now();
        let m = open(&c).await;
        let summary = m
            .restore_all(Duration::from_secs(60), Duration::ZERO)
            .await
            .expect("restore");
        let restore = t.elapsed();
        let per_account_kib = rss_kib().saturating_sub(before) as f64 / n as f64;
        assert_eq!(summary.connected, n, "{summary:?}");
        m.shutdown(Duration::from_secs(10)).await;

        let real_dir = dir.path().join("real");
        std::fs::create_dir_all(&real_dir).unwrap();
        let real_n = support::size("TGWA_BENCH_CLIENTS", 200, 3);
        let real_kib = real_client_kib(&real_dir, real_n).await;

        println!(
            "restore accounts={n} concurrency=64 restore_s={:.2} connected={} rss_per_account_kib={per_account_kib:.1} \
             baseline_s={:.4} baseline_rss_per_task_kib={baseline_kib:.2} real_clients={real_n} \
             rss_per_real_client_kib={real_kib:.1} ratio={:.1}",
            restore.as_secs_f64(),
            summary.connected,
            baseline.as_secs_f64(),
            restore.as_secs_f64() / baseline.as_secs_f64().max(1e-9)
        );
    });
    rt.shutdown_timeout(Duration::from_secs(2));
}
