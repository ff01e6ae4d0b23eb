//! Bulk jobs run every item exactly once, and say so honestly, when the world misbehaves: the
//! account's database held by another process during a broadcast, and the process killed
//! (SIGKILL) at random points of a 200-item job. The simulator's record of what was sent is
//! the judge: every recipient at most once, and an item reported failed was never sent.

#[path = "support/fake_telegram.rs"]
pub mod fake_telegram;
mod support {
    pub use super::fake_telegram;
    #[path = "app.rs"]
    pub mod app;
}

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::process::Child;
use std::time::Duration;

use fake_telegram::FakeTelegram;
use support::app::{numbers, spawn_binary, TestBot, WAIT};

const A: i64 = 8_000_001;

/// `(input, state)` of every item of the account's jobs.
fn items(data_file: &Path) -> Vec<(String, String)> {
    let c = rusqlite::Connection::open_with_flags(data_file, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    let mut st = c
        .prepare("SELECT input, state FROM job_items ORDER BY job_id, seq")
        .unwrap();
    st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// Checks the simulator's record against the job's report: nobody got the text twice, every
/// `ok` item was sent, and no `failed` item was.
fn assert_exactly_once(sent: &[(String, String)], text: &str, items: &[(String, String)]) {
    let mut per_recipient: HashMap<&str, usize> = HashMap::new();
    for (to, t) in sent {
        if t == text {
            *per_recipient.entry(to.as_str()).or_default() += 1;
        }
    }
    let twice: Vec<_> = per_recipient.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "recipients that got the broadcast twice: {twice:?}");
    let got: HashSet<&str> = per_recipient.keys().copied().collect();
    for (input, state) in items {
        match state.as_str() {
            "ok" => assert!(got.contains(input.as_str()), "{input} reported ok but never sent"),
            "failed" => assert!(!got.contains(input.as_str()), "{input} reported failed but was sent"),
            "unknown" => {}
            other => panic!("{input} left {other}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broadcast_through_a_held_database_lock_sends_each_message_once() {
    let bot = TestBot::start(&[("TGWA_JOB_ITEM_DELAY_MS", "100")]).await;
    let p = "6281234580001";
    bot.pair(A, p).await;
    bot.broadcast_preview(A, "Sekali saja", &numbers(20)).await;
    bot.tap(A, "Mulai", "berjalan").await;
    let deadline = tokio::time::Instant::now() + WAIT;
    while bot.sent_by(p).len() < 3 {
        assert!(tokio::time::Instant::now() < deadline, "the job did not start");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Another process takes the account database's write lock for 8 s: longer than the
    // 5 s busy timeout of the worker's writes.
    let data = bot.data_dir().join(format!("{A}/bot_data-{A}-{p}.db"));
    let holder = std::thread::spawn(move || {
        let c = rusqlite::Connection::open(&data).unwrap();
        c.execute_batch("BEGIN IMMEDIATE").unwrap();
        std::thread::sleep(Duration::from_secs(8));
        c.execute_batch("COMMIT").unwrap();
    });
    bot.tg
        .wait_for_text_to(A, "Laporan pekerjaan", Duration::from_secs(90))
        .await;
    holder.join().unwrap();
    let items = items(&bot.data_dir().join(format!("{A}/bot_data-{A}-{p}.db")));
    assert_eq!(items.len(), 20);
    assert_exactly_once(&bot.sent_by(p), "Sekali saja", &items);
    assert!(
        items.iter().all(|(_, s)| s == "ok"),
        "every item went out and was recorded: {items:?}"
    );
    bot.stop().await;
}

fn spawn(dir: &Path, tg: &FakeTelegram) -> Child {
    let extra: Vec<(String, String)> = [
        ("TGWA_JOB_ITEM_DELAY_MS", "20"),
        ("TGWA_JOB_JITTER_MS", "30"),
        ("RUST_LOG", "error"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    spawn_binary(dir, &tg.url(), &extra)
}

/// Sends `text` as `user` and waits for a reply containing `want`.
async fn say(tg: &FakeTelegram, user: i64, text: &str, want: &str) {
    let mark = tg.mark();
    tg.push_message(user, text);
    tg.wait_for_text_to_after(mark, user, want, WAIT).await;
}

/// Presses the newest button labelled like `label` and waits for a reply containing `want`.
async fn tap(tg: &FakeTelegram, user: i64, label: &str, want: &str) {
    let msg = tg
        .sent_to(user)
        .into_iter()
        .rev()
        .find(|m| m.button_data(label).is_some())
        .unwrap_or_else(|| panic!("no button {label:?}"));
    let mark = tg.mark();
    tg.push_callback(user, msg.message_id, &msg.button_data(label).unwrap());
    tg.wait_for_text_to_after(mark, user, want, WAIT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_random_points_of_a_200_item_job_never_sends_twice() {
    let tg = FakeTelegram::start().await;
    let dir = tempfile::tempdir().unwrap();
    let p = "6281234580002";
    let mut child = spawn(dir.path(), &tg);
    say(&tg, A, &format!("/pair {p}"), "Terhubung sebagai").await;
    say(&tg, A, "/menu", "Menu utama").await;
    tap(&tg, A, "Pesan", "Pesan</b>").await;
    tap(&tg, A, "Siaran", "teks pesan siaran").await;
    say(&tg, A, "Hanya sekali", "Kirim ke mana").await;
    let mark = tg.mark();
    tg.push_document(A, "numbers.txt", numbers(200).into_bytes(), None);
    tg.wait_for_text_to_after(mark, A, "Mulai pekerjaan ini", WAIT).await;
    tap(&tg, A, "Mulai", "berjalan").await;

    let world = dir.path().join("DB USER TELEGRAM/.sim/world.db");
    let sent = || -> Vec<(String, String)> {
        tgwa::wa::sim::read_sent_messages(&world)
            .unwrap_or_default()
            .into_iter()
            .filter(|m| m.from == p)
            .map(|m| (m.to, m.text))
            .collect()
    };
    // Kill it at random moments while the job runs: during pacing, during a send, between
    // a send and its record. Each restart resumes the job by itself.
    for round in 0..5 {
        let before = sent().len();
        let deadline = tokio::time::Instant::now() + WAIT;
        while sent().len() < before + 5 && sent().len() < 180 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "round {round}: the job did not progress"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        tokio::time::sleep(Duration::from_millis(rand_ms(round))).await;
        child.kill().expect("SIGKILL");
        child.wait().unwrap();
        child = spawn(dir.path(), &tg);
    }
    tg.wait_for_text_to(A, "Laporan pekerjaan", Duration::from_secs(120))
        .await;
    let data = dir.path().join(format!("DB USER TELEGRAM/{A}/bot_data-{A}-{p}.db"));
    let items = items(&data);
    assert_eq!(items.len(), 200);
    assert_exactly_once(&sent(), "Hanya sekali", &items);
    let ok = items.iter().filter(|(_, s)| s == "ok").count();
    let unknown = items.iter().filter(|(_, s)| s == "unknown").count();
    assert!(unknown <= 5, "at most one item in doubt per kill: {unknown}");
    assert_eq!(ok + unknown, 200, "nothing failed here: {items:?}");
    child.kill().ok();
    child.wait().ok();
}

/// A pseudo-random delay of 0 to 60 ms, different each round.
fn rand_ms(round: u64) -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() as u64)
        .unwrap_or(0);
    (nanos ^ (round * 7919)) % 61
}

// --- scale20 ---
mod held {
    use std::sync::Arc;
    use std::time::Duration;

    use async_trait::async_trait;
    use tgwa::config::Config;
    use tgwa::ids::{AccountId, PhoneNumber, TelegramId};
    use tgwa::jobs::{JobId, JobKind, JobObserver, JobOptions, JobProgress, Jobs};
    use tgwa::manager::AccountManager;
    use tgwa::supervisor::Notice;
    use tokio::sync::mpsc;

    /// Tells the test each job that finished, with its progress.
    struct Finished(mpsc::UnboundedSender<(JobId, JobProgress)>);

    #[async_trait]
    impl JobObserver for Finished {
        async fn progress(&self, _: TelegramId, _: AccountId, _: JobId, _: &JobProgress) {}
        async fn paused(&self, _: TelegramId, _: AccountId, _: JobId, _: &JobProgress, reason: &str) {
            panic!("a job paused: {reason}");
        }
        async fn finished(&self, _: TelegramId, _: AccountId, job: JobId, p: &JobProgress) {
            let _ = self.0.send((job, p.clone()));
        }
    }

    /// Links `phone` for `owner` through the simulator and waits for it.
    async fn pair(
        m: &AccountManager,
        notices: &mut mpsc::UnboundedReceiver<Notice>,
        owner: TelegramId,
        phone: &str,
    ) -> AccountId {
        m.start_pairing(owner, PhoneNumber::from_digits(phone).unwrap())
            .await
            .expect("pairing starts");
        loop {
            match tokio::time::timeout(super::WAIT, notices.recv()).await {
                Ok(Some(Notice::Paired { account, .. })) => return account,
                Ok(Some(_)) => {}
                other => panic!("pairing stalled: {other:?}"),
            }
        }
    }

    /// Polls `cond` (cheap, in memory) until it holds or the wait runs out.
    async fn until(what: &str, cond: impl Fn() -> bool) {
        let deadline = tokio::time::Instant::now() + super::WAIT;
        while !cond() {
            assert!(tokio::time::Instant::now() < deadline, "timed out waiting until {what}");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// A running job's worker holds its account's database open, so a pool cache smaller than
    /// the accounts at work does not close and reopen it for every item (two fsyncs each);
    /// the pool is let go when the job ends, and when its account is removed mid-job (before
    /// the files move to the trash, so no pool outlives its file).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_running_job_holds_its_database_open_and_lets_go_when_it_ends() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::for_tests(dir.path());
        config.sim_pair_delay = Duration::from_millis(1);
        // Smaller than the two accounts at work: without holding, every item reopens.
        config.pool_cache_size = 1;
        config.job_item_delay = Duration::from_millis(40);
        config.job_jitter = Duration::ZERO;
        config.warmup_caps = Vec::new();
        let backend = tgwa::wa::backend_for(&config).await.unwrap();
        let m = AccountManager::open(config.clone(), backend).await.unwrap();
        let mut notices = m.take_notices().unwrap();
        let jobs = Jobs::new(m.clone(), JobOptions::from_config(&config));
        jobs.attach();
        let (tx, mut finished) = mpsc::unbounded_channel();
        jobs.set_observer(Arc::new(Finished(tx)));
        let (a, b) = (TelegramId::new(8_100_001).unwrap(), TelegramId::new(8_100_002).unwrap());
        let acc_a = pair(&m, &mut notices, a, "6281234590001").await;
        let acc_b = pair(&m, &mut notices, b, "6281234590002").await;
        let broadcast = || JobKind::Broadcast {
            text: "held".into(),
            media: None,
        };
        // Ending in 7: the simulator has numbers ending in 00 not on WhatsApp.
        let items = |k: u32| (0..30).map(|i| format!("628590{k}{i:05}7")).collect::<Vec<_>>();
        let job_a = jobs.create(a, acc_a, a.get(), broadcast(), items(1)).await.unwrap();
        let job_b = jobs.create(b, acc_b, b.get(), broadcast(), items(2)).await.unwrap();
        jobs.start(a, acc_a, job_a).await.unwrap();
        jobs.start(b, acc_b, job_b).await.unwrap();
        let pools = m.pools().clone();
        until("both workers hold their database", || pools.held_len() == 2).await;
        let opened = pools.churn().0;

        // Account B is removed mid-job: its worker stops and lets go before the files move.
        m.remove(b, acc_b).await.unwrap();
        assert_eq!(pools.held_len(), 1, "the removed account's pool is not held any more");
        let (job, p) = tokio::time::timeout(super::WAIT, finished.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(job, job_b, "the removed account's job ends (cancelled)");
        assert!(p.done < 30, "B's job was cut short: {p:?}");

        // Account A's job runs to its end on the held pool: not one pool opened meanwhile.
        let (job, p) = tokio::time::timeout(super::WAIT, finished.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(job, job_a);
        assert_eq!((p.done, p.failed), (30, 0), "every item of A's job done once: {p:?}");
        assert_eq!(pools.churn().0, opened, "items ran without reopening a database");
        until("the finished job's worker lets go", || pools.held_len() == 0).await;
        assert!(pools.len() <= 1, "back within the cache's bound: {}", pools.len());
        jobs.shutdown(Duration::from_secs(5)).await;
        m.shutdown(Duration::from_secs(5)).await;
    }
}
