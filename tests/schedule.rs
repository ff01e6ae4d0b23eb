//! Scheduled and personalised broadcasts, and templates (issue 19), end to end through the
//! real dispatcher and the fake Bot API over the simulator.
//!
//! Time is the bot's own clock (`Config::clock`), started at a fixed Monday morning and moved
//! by hand, so nothing waits for real minutes; every wait is for a message or a record.

#[path = "support/fake_telegram.rs"]
pub mod fake_telegram;
mod support {
    pub use super::fake_telegram;
    #[path = "app.rs"]
    pub mod app;
}

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::TimeZone;
use support::app::{numbers, TestBot, WAIT};
use support::fake_telegram::FakeTelegram;
use tgwa::schedule::Clock;

/// The simulator records what was sent; these tests read its record.
const SIM: &[(&str, &str)] = &[("TGWA_WA_BACKEND", "sim")];

/// Monday 2026-12-07 10:00 WIB, the bot's "now" when each test starts.
fn monday_ten() -> i64 {
    chrono::FixedOffset::east_opt(7 * 3600)
        .unwrap()
        .with_ymd_and_hms(2026, 12, 7, 10, 0, 0)
        .unwrap()
        .timestamp()
}

async fn start(clock: &Clock) -> TestBot {
    let tg = FakeTelegram::start().await;
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let extra = SIM.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    TestBot::start_with_clock(tg, dir, extra, Some(clock.clone())).await
}

fn sent_by(bot: &TestBot, from: &str) -> Vec<(String, String)> {
    tgwa::wa::sim::read_sent_messages(&bot.world_db())
        .unwrap()
        .into_iter()
        .filter(|m| m.from == from)
        .map(|m| (m.to, m.text))
        .collect()
}

fn bot_data(bot: &TestBot, user: i64, phone: &str) -> PathBuf {
    bot.data_dir().join(format!("{user}/bot_data-{user}-{phone}.db"))
}

/// `(id, state)` of every job of the account.
fn job_states(bot: &TestBot, user: i64, phone: &str) -> Vec<(i64, String)> {
    let c =
        rusqlite::Connection::open_with_flags(bot_data(bot, user, phone), rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    let mut st = c.prepare("SELECT id, state FROM jobs ORDER BY id").unwrap();
    st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// `n` numbers unlike [`numbers`]'s.
fn other_numbers(n: usize) -> String {
    (0..n).map(|i| format!("62858{:07}3", i)).collect::<Vec<_>>().join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduled_broadcast_starts_on_time_once_across_a_restart_and_a_cancelled_one_never_runs() {
    const U: i64 = 9_300_001;
    let phone = "6281234590011";
    let clock = Clock::starting_at(monday_ten());
    let bot = start(&clock).await;
    bot.pair(U, phone).await;

    // Job 1: five numbers, scheduled two minutes ahead after two refused answers.
    bot.broadcast_preview(U, "Jadwal A", &numbers(5)).await;
    let ask = bot.tap(U, "Jadwalkan", "Kapan pekerjaan #1").await;
    assert!(
        ask.text.contains("besok 08:00") && ask.text.contains("WIB"),
        "{}",
        ask.text
    );
    let again = bot.say(U, "kapan-kapan", "tidak dikenali").await;
    assert!(again.text.contains("Senin 09:30"), "the examples again: {}", again.text);
    bot.say(U, "hari ini 09:00", "sudah lewat").await;
    let done = bot.say(U, "hari ini 10:02", "Dijadwalkan").await;
    assert!(done.text.contains("Sen 07 Des 2026 10:02 WIB"), "{}", done.text);

    // Job 2: due a minute earlier, cancelled from the list before its time.
    bot.broadcast_preview(U, "Jadwal B", &other_numbers(3)).await;
    bot.tap(U, "Jadwalkan", "Kapan pekerjaan #2").await;
    bot.say(U, "10:01", "Dijadwalkan").await;
    bot.say(U, "/menu", "Menu utama").await;
    bot.tap(U, "Pesan", "Pesan</b>").await;
    let list = bot.tap(U, "Terjadwal", "Terjadwal</b>").await;
    let (one, two) = (list.text.find("#1").unwrap(), list.text.find("#2").unwrap());
    assert!(two < one, "soonest first: {}", list.text);
    bot.tap(U, "✖️ #2", "dibatalkan").await;
    assert_eq!(
        job_states(&bot, U, phone),
        vec![(1, "scheduled".to_string()), (2, "cancelled".to_string())]
    );

    // A restart in between; then the clock reaches both times.
    let bot = bot.restart().await;
    bot.say(U, "/menu", "Menu utama").await;
    let mark = bot.tg.mark();
    clock.advance(Duration::from_secs(180));
    let started = bot
        .tg
        .wait_for_text_to_after(mark, U, "Pekerjaan terjadwal #1 dimulai", WAIT)
        .await;
    assert!(!started.text.contains("terlewat"), "on time: {}", started.text);
    bot.tg
        .wait_for_text_to_after(mark, U, "Laporan pekerjaan #1", WAIT)
        .await;
    let sent = sent_by(&bot, phone);
    let mut per: HashMap<&str, usize> = HashMap::new();
    for (to, text) in &sent {
        assert_eq!(text, "Jadwal A", "the cancelled job sent nothing");
        *per.entry(to.as_str()).or_default() += 1;
    }
    assert_eq!(per.len(), 5, "{sent:?}");
    assert!(per.values().all(|n| *n == 1), "each once: {per:?}");
    assert_eq!(
        job_states(&bot, U, phone),
        vec![(1, "done".to_string()), (2, "cancelled".to_string())]
    );

    // Another restart later: nothing starts again.
    let bot = bot.restart().await;
    bot.say(U, "/menu", "Menu utama").await;
    clock.advance(Duration::from_secs(3600));
    bot.say(U, "/menu", "Menu utama").await;
    assert_eq!(sent_by(&bot, phone).len(), 5);
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_missed_while_the_bot_was_down_starts_at_start_up_and_says_so() {
    const U: i64 = 9_300_002;
    let phone = "6281234590022";
    let clock = Clock::starting_at(monday_ten());
    let bot = start(&clock).await;
    bot.pair(U, phone).await;
    bot.broadcast_preview(U, "Terlewat", &numbers(3)).await;
    bot.tap(U, "Jadwalkan", "Kapan pekerjaan").await;
    bot.say(U, "10:01", "Dijadwalkan").await;
    let (tg, dir, extra) = bot.stop().await;
    // Down past its time.
    clock.advance(Duration::from_secs(600));
    let mark = tg.mark();
    let bot = TestBot::start_with_clock(tg, dir, extra, Some(clock.clone())).await;
    let notice = bot.tg.wait_for_text_to_after(mark, U, "terlewat", WAIT).await;
    assert!(notice.text.contains("Sen 07 Des 2026 10:01 WIB"), "{}", notice.text);
    bot.tg
        .wait_for_text_to_after(mark, U, "Laporan pekerjaan #1", WAIT)
        .await;
    let sent = sent_by(&bot, phone);
    assert_eq!(sent.len(), 3, "{sent:?}");
    assert!(sent.iter().all(|(_, t)| t == "Terlewat"));
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_recipient_of_a_named_list_gets_their_own_name_and_the_rest_the_fallback() {
    const U: i64 = 9_300_003;
    let phone = "6281234590033";
    let clock = Clock::starting_at(monday_ten());
    let bot = start(&clock).await;
    bot.pair(U, phone).await;
    // 50 lines: `number,Name`, `number;Name N`, and every fifth without a name.
    let mut want: HashMap<String, String> = HashMap::new();
    let mut lines = Vec::new();
    for i in 0..50 {
        let n = format!("62857{:07}7", i);
        let (line, name) = match i {
            _ if i % 5 == 4 => (n.clone(), "Kak".to_string()),
            _ if i % 2 == 0 => (format!("{n},Nama{i}"), format!("Nama{i}")),
            _ => (format!("{n};Bu Nama {i}"), format!("Bu Nama {i}")),
        };
        lines.push(line);
        want.insert(n, name);
    }
    let text = "{Halo|Hai} {nama|Kak}, promo {hari ini|minggu ini}!";
    bot.broadcast_preview(U, text, &lines.join("\n")).await;
    // The confirmation shows the first two messages as they will arrive.
    let preview = bot.tg.last_text_to(U).unwrap();
    assert!(preview.contains(" Nama0, promo "), "{preview}");
    assert!(preview.contains(" Bu Nama 1, promo "), "{preview}");
    // A test message goes to the account's own number, as the first recipient gets it.
    bot.tap(U, "Kirim tes", "Pesan tes terkirim").await;
    let own: Vec<_> = sent_by(&bot, phone).into_iter().filter(|(to, _)| to == phone).collect();
    assert_eq!(own.len(), 1, "{own:?}");
    assert!(own[0].1.contains(" Nama0, promo "), "{own:?}");

    bot.tap(U, "Mulai", "berjalan").await;
    bot.tg
        .wait_for_text_to(U, "Laporan pekerjaan", Duration::from_secs(60))
        .await;
    let sent: Vec<_> = sent_by(&bot, phone).into_iter().filter(|(to, _)| to != phone).collect();
    assert_eq!(sent.len(), 50, "{sent:?}");
    let mut seen = std::collections::HashSet::new();
    for (to, got) in &sent {
        let name = want.get(to).unwrap_or_else(|| panic!("sent to {to}, not on the list"));
        let ok = ["Halo", "Hai"].iter().any(|g| {
            ["hari ini", "minggu ini"]
                .iter()
                .any(|w| got == &format!("{g} {name}, promo {w}!"))
        });
        assert!(ok, "{to}: {got:?} (want the name {name:?})");
        assert!(seen.insert(to.clone()), "{to} twice");
    }
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn templates_and_scheduling_in_english_with_a_way_back_from_every_screen() {
    const U: i64 = 9_300_004;
    let phone = "6281234590044";
    let clock = Clock::starting_at(monday_ten());
    let bot = start(&clock).await;
    bot.pair(U, phone).await;
    bot.callback(U, &tgwa::bot::callback::Cb::SetLang(tgwa::bot::i18n::Lang::En))
        .await;
    bot.say(U, "/menu", "Main menu").await;
    bot.tap(U, "Messages", "Messages</b>").await;
    let empty = bot.tap(U, "Scheduled", "Scheduled</b>").await;
    assert!(empty.text.contains("No scheduled jobs"), "{}", empty.text);
    bot.tap(U, "⬅️ Messages", "Messages</b>").await;
    let none = bot.tap(U, "Templates", "Templates</b>").await;
    assert!(none.text.contains("No templates yet"), "{}", none.text);
    bot.tap(U, "⬅️ Messages", "Messages</b>").await;

    // Save a broadcast's text as a template from its confirmation.
    let ask = bot.tap(U, "Broadcast", "send the broadcast text").await;
    assert!(ask.button_data("Use a template").is_some(), "{:?}", ask.buttons());
    bot.say(U, "Hello {name|friend}!", "Send it where").await;
    let mark = bot.tg.mark();
    bot.tg.push_document(
        U,
        "list.csv",
        b"phone,name\n081234500011,Ann\n081234500022,\n".to_vec(),
        None,
    );
    let preview = bot.tg.wait_for_text_to_after(mark, U, "Start this job?", WAIT).await;
    assert!(
        preview.text.contains("Hello Ann!") && preview.text.contains("Hello friend!"),
        "{}",
        preview.text
    );
    bot.tap(U, "Save as template", "Type a name").await;
    bot.say(U, "Promo", "Template «Promo» saved").await;

    // Use it for a new broadcast, scheduled, then moved to another day.
    let list = bot.tap(U, "Templates", "Templates</b>").await;
    assert!(list.text.contains("Hello {name|friend}!"), "{}", list.text);
    bot.tap(U, "📄 Promo", "Send it where").await;
    let mark = bot.tg.mark();
    bot.tg
        .push_document(U, "list.txt", b"081234500033;Bob\n".to_vec(), None);
    let preview = bot.tg.wait_for_text_to_after(mark, U, "Start this job?", WAIT).await;
    assert!(preview.text.contains("Hello Bob!"), "{}", preview.text);
    bot.tap(U, "Schedule", "When should job #2 start").await;
    bot.say(U, "tomorrow 08:00", "Scheduled: Tue 08 Dec 2026 08:00 WIB")
        .await;
    let listed = bot.tap(U, "⏰ Scheduled", "Scheduled</b>").await;
    assert!(
        listed.text.contains("#2") && listed.text.contains("Tue 08 Dec 2026 08:00 WIB"),
        "{}",
        listed.text
    );
    bot.tap(U, "#2 Change time", "When should job #2 start").await;
    bot.say(U, "Wednesday 09:30", "Scheduled: Wed 09 Dec 2026 09:30 WIB")
        .await;
    assert_eq!(
        job_states(&bot, U, phone),
        vec![(1, "draft".to_string()), (2, "scheduled".to_string())]
    );
    // Delete the template; the list leads back to the messages menu.
    bot.say(U, "/menu", "Main menu").await;
    bot.tap(U, "Messages", "Messages</b>").await;
    bot.tap(U, "Templates", "Templates</b>").await;
    let after = bot.tap(U, "🗑 Promo", "Template deleted").await;
    assert!(after.text.contains("No templates yet"), "{}", after.text);
    bot.tap(U, "⬅️ Messages", "Messages</b>").await;
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_started_just_before_a_crash_runs_once_and_is_not_started_again() {
    const U: i64 = 9_300_005;
    let phone = "6281234590055";
    let clock = Clock::starting_at(monday_ten());
    let bot = start(&clock).await;
    bot.pair(U, phone).await;
    bot.broadcast_preview(U, "Sekali saja", &numbers(4)).await;
    bot.tap(U, "Jadwalkan", "Kapan pekerjaan").await;
    bot.say(U, "10:01", "Dijadwalkan").await;
    let data = bot_data(&bot, U, phone);
    let (tg, dir, extra) = bot.stop().await;
    // What the scheduler's one guarded update leaves when the process dies right after it:
    // the job running, its time passed, nothing sent yet.
    rusqlite::Connection::open(&data)
        .unwrap()
        .execute(
            "UPDATE jobs SET state = 'running' WHERE id = 1 AND state = 'scheduled'",
            [],
        )
        .unwrap();
    clock.advance(Duration::from_secs(600));
    let mark = tg.mark();
    let bot = TestBot::start_with_clock(tg, dir, extra, Some(clock.clone())).await;
    bot.tg
        .wait_for_text_to_after(mark, U, "Laporan pekerjaan #1", WAIT)
        .await;
    let sent = sent_by(&bot, phone);
    assert_eq!(sent.len(), 4, "once each: {sent:?}");
    // The engine resumed it; the scheduler did not start it a second time.
    let texts: Vec<String> = bot.tg.sent_to(U).into_iter().map(|m| m.text).collect();
    assert!(!texts.iter().any(|t| t.contains("terlewat")), "{texts:?}");
    assert_eq!(job_states(&bot, U, phone), vec![(1, "done".to_string())]);
    bot.stop().await;
}
