//! Bulk job throughput: one job of N items on the simulator with pacing off, against a
//! baseline loop making the same N simulator calls directly, in the same run.
//!
//! `cargo bench --bench jobs` prints one line:
//! `jobs items=10000 items_per_s=<job> baseline_items_per_s=<raw> ratio=<job/raw>`.
//! `TGWA_BENCH_ITEMS` changes N.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;

#[path = "support/mod.rs"]
mod support;

use tgwa::config::Config;
use tgwa::ids::{AccountId, PhoneNumber, TelegramId};
use tgwa::jobs::{JobId, JobKind, JobObserver, JobOptions, JobProgress, Jobs};
use tgwa::manager::AccountManager;
use tgwa::wa::ChatTarget;
use tokio::sync::Notify;

struct Done(Arc<Notify>);

#[async_trait]
impl JobObserver for Done {
    async fn progress(&self, _: TelegramId, _: AccountId, _: JobId, _: &JobProgress) {}
    async fn paused(&self, _: TelegramId, _: AccountId, _: JobId, _: &JobProgress, reason: &str) {
        panic!("the benchmark job paused: {reason}");
    }
    async fn finished(&self, _: TelegramId, _: AccountId, _: JobId, _: &JobProgress) {
        self.0.notify_one();
    }
}

fn numbers(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{:07}7", i)).collect()
}

fn main() {
    let n = support::size("TGWA_BENCH_ITEMS", 10_000, 20);
    let rt = support::runtime();
    rt.block_on(async move {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::for_tests(dir.path());
        config.job_max_items = n;
        config.job_daily_cap = (n * 2) as u32;
        let backend = tgwa::wa::backend_for(&config).await.unwrap();
        let manager = AccountManager::open(config.clone(), backend).await.unwrap();
        let owner = TelegramId::new(7_000_001).unwrap();
        let phone = PhoneNumber::from_digits("6281234569001").unwrap();
        let account = support::pair_all(&manager, vec![(owner, phone)]).await[0];
        let session = manager.session_of(owner, account).await.unwrap();

        // Baseline: the same kind of call, straight to the simulator.
        let raw_items = numbers("62858", n);
        let t = Instant::now();
        for it in &raw_items {
            let to = ChatTarget::Phone(PhoneNumber::from_digits(it).unwrap());
            session.send_text(&to, "bench").await.unwrap();
        }
        let raw = t.elapsed();

        // The job engine: every item persisted before and after it runs.
        let jobs = Jobs::new(manager.clone(), JobOptions::from_config(&config));
        let done = Arc::new(Notify::new());
        jobs.set_observer(Arc::new(Done(done.clone())));
        let items = numbers("62859", n);
        let t = Instant::now();
        let id = jobs
            .create(
                owner,
                account,
                owner.get(),
                JobKind::Broadcast {
                    text: "bench".into(),
                    media: None,
                },
                items,
            )
            .await
            .unwrap();
        jobs.start(owner, account, id).await.unwrap();
        done.notified().await;
        let job = t.elapsed();
        let p = jobs.progress(owner, account, id).await.unwrap();
        assert_eq!(p.done, n, "every item done");

        let job_rate = n as f64 / job.as_secs_f64();
        let raw_rate = n as f64 / raw.as_secs_f64();
        println!(
            "jobs items={n} items_per_s={job_rate:.0} baseline_items_per_s={raw_rate:.0} ratio={:.2}",
            job_rate / raw_rate
        );
        jobs.shutdown(Duration::from_secs(5)).await;
        manager.shutdown(Duration::from_secs(5)).await;
    });
}
