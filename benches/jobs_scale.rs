//! Many accounts' jobs at once: N simulated accounts of N/5 users, each running one broadcast
//! at the same time, paced at one item per account every `TGWA_BENCH_ITEM_DELAY_MS` (2,000 by
//! default: production pacing compressed), with the production pool cache
//! (`TGWA_POOL_CACHE_SIZE` 256). Every item is persisted before and after it runs, as always.
//!
//! The offered rate is what the pacing allows: each job has `K` items, so a perfect engine
//! finishes all of them `(K - 1) × delay` after the start. The figure is the rate achieved
//! against that: `ratio = offered duration / measured duration` (1.0: nothing fell behind).
//! Also the CPU seconds the process spent per 1,000 items, and the SQLite pools opened and
//! closed meanwhile (a pool cache smaller than the accounts at work reopens pools).
//!
//! Prints one line: `jobs_scale accounts=N users=U items=T window_s=.. items_per_s=..
//! offered_per_s=.. cpu_s_per_1000=.. pools_opened=.. pools_closed=.. ratio=..`.
//! `TGWA_BENCH_ACCOUNTS` (10,000; 10 at the smoke size), `TGWA_BENCH_WINDOW_S` (60; 2),
//! `TGWA_BENCH_ITEM_DELAY_MS` (2,000; 500).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures::StreamExt;

#[path = "support/mod.rs"]
mod support;

use tgwa::config::Config;
use tgwa::ids::{AccountId, PhoneNumber, TelegramId};
use tgwa::jobs::{JobId, JobKind, JobObserver, JobOptions, JobProgress, Jobs};
use tgwa::manager::AccountManager;
use tokio::sync::Notify;

/// Counts finished jobs and wakes the bench when the last one ends.
struct Finished {
    left: AtomicUsize,
    all: Notify,
}

#[async_trait]
impl JobObserver for Finished {
    async fn progress(&self, _: TelegramId, _: AccountId, _: JobId, _: &JobProgress) {}
    async fn paused(&self, _: TelegramId, _: AccountId, _: JobId, _: &JobProgress, reason: &str) {
        panic!("a benchmark job paused: {reason}");
    }
    async fn finished(&self, _: TelegramId, _: AccountId, _: JobId, p: &JobProgress) {
        assert_eq!(p.failed, 0, "a benchmark item failed");
        if self.left.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.all.notify_one();
        }
    }
}

/// CPU seconds (user + system) this process has used so far.
fn cpu_seconds() -> f64 {
    // SAFETY: getrusage writes into the struct we pass and reads nothing else.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: RUSAGE_SELF with a valid pointer is always allowed.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) } != 0 {
        return 0.0;
    }
    let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    t(u.ru_utime) + t(u.ru_stime)
}

fn main() {
    let n = support::size("TGWA_BENCH_ACCOUNTS", 10_000, 10);
    let window = support::size("TGWA_BENCH_WINDOW_S", 60, 2) as u64;
    let delay_ms = support::size("TGWA_BENCH_ITEM_DELAY_MS", 2_000, 500) as u64;
    let users = (n / 5).max(1);
    // One item at once, then one per delay until the window is full.
    let k = (window * 1000 / delay_ms) as usize + 1;
    let rt = support::runtime();
    rt.block_on(async move {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut config = Config::for_tests(dir.path());
        config.max_accounts = n + 10;
        config.max_accounts_per_user = 5;
        config.sim_pair_delay = Duration::from_millis(1);
        config.pool_cache_size = 256;
        config.job_item_delay = Duration::from_millis(delay_ms);
        config.job_jitter = Duration::ZERO;
        config.job_daily_cap = (k * 2) as u32;
        // Every account here is newly linked: the warm-up caps (20 on the first day) would
        // pause each job after 20 of its 31 items and the bench would wait for ever.
        config.warmup_caps = Vec::new();
        config.job_max_items = k;
        let backend = tgwa::wa::backend_for(&config).await.expect("simulator");
        let manager = AccountManager::open(config.clone(), backend).await.expect("manager");
        let accounts: Vec<(TelegramId, PhoneNumber)> = (0..n)
            .map(|i| {
                let owner = TelegramId::new(8_700_000 + (i % users) as i64).expect("tid");
                let phone = PhoneNumber::from_digits(&format!("62818{:06}77", i)).expect("phone");
                (owner, phone)
            })
            .collect();
        let setup = Instant::now();
        let ids = support::pair_all(&manager, accounts).await;
        let pair_s = setup.elapsed().as_secs_f64();
        // pair_all returns IDs in the order pairing finished: find each one's owner again.
        let mut owned = Vec::with_capacity(n);
        for id in ids {
            let acc = manager.get(id).await.expect("read").expect("account");
            owned.push((acc.telegram_id, id));
        }
        assert_eq!(owned.len(), n);

        let jobs = Jobs::new(manager.clone(), JobOptions::from_config(&config));
        let finished = Arc::new(Finished {
            left: AtomicUsize::new(n),
            all: Notify::new(),
        });
        jobs.set_observer(finished.clone());
        // Drafts first (not measured): each job's items written once.
        let drafts: Vec<(TelegramId, AccountId, JobId)> = futures::stream::iter(owned.iter().enumerate())
            .map(|(i, &(owner, account))| {
                let jobs = jobs.clone();
                async move {
                    let items = (0..k).map(|j| format!("62859{:05}{:03}7", i, j)).collect();
                    let kind = JobKind::Broadcast {
                        text: "bench".into(),
                        media: None,
                    };
                    let id = jobs
                        .create(owner, account, owner.get(), kind, items)
                        .await
                        .expect("job");
                    (owner, account, id)
                }
            })
            .buffer_unordered(64)
            .collect()
            .await;

        let drafts_s = setup.elapsed().as_secs_f64() - pair_s;
        eprintln!("jobs_scale: {n} accounts paired in {pair_s:.1} s, {n} drafts written in {drafts_s:.1} s");
        let (opened0, closed0) = manager.pools().churn();
        let cpu0 = cpu_seconds();
        let t = Instant::now();
        for &(owner, account, id) in &drafts {
            jobs.start(owner, account, id).await.expect("start");
        }
        // The most account pools the workers held open at once, sampled while they run.
        let mut held = 0;
        let mut tick = tokio::time::interval(Duration::from_millis(200));
        let all = finished.all.notified();
        tokio::pin!(all);
        loop {
            tokio::select! {
                _ = &mut all => break,
                _ = tick.tick() => held = held.max(manager.pools().held_len()),
            }
        }
        let took = t.elapsed().as_secs_f64();
        let cpu = cpu_seconds() - cpu0;
        let (opened1, closed1) = manager.pools().churn();

        // Every item done exactly once, as the engine recorded it.
        let mut done = 0;
        for &(owner, account, id) in drafts.iter().take(50) {
            let p = jobs.progress(owner, account, id).await.expect("progress");
            assert_eq!(p.done, k, "every item of a job done");
            done += p.done;
        }
        assert!(done > 0);

        let total = n * k;
        let offered_s = ((k - 1) as u64 * delay_ms) as f64 / 1000.0;
        println!(
            "jobs_scale accounts={n} users={users} items={total} window_s={offered_s:.0} took_s={took:.1} \
             items_per_s={:.0} offered_per_s={:.0} cpu_s_per_1000={:.3} pools_opened={} pools_closed={} pools_held={held} \
             pair_s={pair_s:.1} ratio={:.3}",
            total as f64 / took,
            total as f64 / offered_s.max(1e-9),
            cpu * 1000.0 / total as f64,
            opened1 - opened0,
            closed1 - closed0,
            offered_s / took
        );
        jobs.shutdown(Duration::from_secs(10)).await;
        manager.shutdown(Duration::from_secs(10)).await;
    });
}
