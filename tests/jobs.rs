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
