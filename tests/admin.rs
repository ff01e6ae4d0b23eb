//! `/admin`, tried from Telegram as an operator and as everyone else would.

#[path = "support/fake_telegram.rs"]
pub mod fake_telegram;
mod support {
    pub use super::fake_telegram;
    #[path = "app.rs"]
    pub mod app;
}

use std::time::Duration;

use support::app::{TestBot, WAIT};
use tgwa::bot::callback::{CallbackCodec, Cb};
use tgwa::ids::{AccountId, PhoneNumber, TelegramId};
use tgwa::wa::GroupId;

const ADMIN: i64 = 8_000_009;
const A: i64 = 8_000_001;
const B: i64 = 8_000_002;
const C: i64 = 8_000_003;
const A_PHONE: &str = "6281234564001";
const B_PHONE: &str = "6281234564002";
/// Logged out from the phone 3 s after it connects (simulator).
const C_PHONE: &str = "6281234560401";

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

async fn wait_status(bot: &TestBot, phone: &str, want: &str) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while bot.account_row(phone).map(|r| r.2).as_deref() != Some(want) {
        assert!(tokio::time::Instant::now() < deadline, "{phone} never became {want}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn audit_count(bot: &TestBot, who: i64, action: &str) -> i64 {
    bot.master()
        .query_row(
            "SELECT COUNT(*) FROM audit_log WHERE telegram_id = ?1 AND action = ?2",
            rusqlite::params![who, action],
            |r| r.get(0),
        )
        .unwrap()
}

async fn three_users() -> TestBot {
    let admin = ADMIN.to_string();
    let bot = TestBot::start(&[("TGWA_ADMIN_IDS", &admin)]).await;
    bot.pair(A, A_PHONE).await;
    bot.pair(B, B_PHONE).await;
    bot.pair(C, C_PHONE).await;
    wait_status(&bot, C_PHONE, "logged_out").await;
    bot
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_sees_every_account_disconnects_one_and_logs_one_out_and_owners_are_told() {
    let bot = three_users().await;

    // The overview counts every account by status, without the operator owning any.
    let o = say(&bot, ADMIN, "/admin", "Admin").await;
    assert!(o.text.contains("Akun: 3"), "{}", o.text);
    assert!(
        o.text.contains("active 2") && o.text.contains("logged_out 1"),
        "{}",
        o.text
    );
    assert!(o.text.contains("Terhubung sekarang: 2"), "{}", o.text);
    assert!(o.text.contains("Pengguna: 4"), "{}", o.text);

    // Every account, with owner, masked number and its state.
    let list = tap(&bot, ADMIN, "Semua akun", "Semua akun</b>: 3").await;
    for (owner, tail) in [(A, "4001"), (B, "4002"), (C, "0401")] {
        let line = list
            .text
            .lines()
            .find(|l| l.contains(&owner.to_string()))
            .unwrap_or_else(|| panic!("no line for {owner}: {}", list.text));
        assert!(line.contains(&format!("*******{tail}")), "{line}");
        assert!(!line.contains(&format!("812345{tail}")), "unmasked number: {line}");
        if owner == C {
            assert!(line.to_lowercase().contains("logout"), "{line}");
        } else {
            assert!(line.contains("terhubung"), "{line}");
        }
    }

    // Search by owner, then B's page with its history; disconnect after a confirmation.
    let found = say(&bot, ADMIN, &format!("/admin {B}"), "cocok dengan").await;
    assert!(
        found.text.contains("4002") && !found.text.contains("4001"),
        "{}",
        found.text
    );
    let page = tap(&bot, ADMIN, "4002", "Riwayat").await;
    assert!(
        page.text.contains("dipasangkan"),
        "history shows the pairing: {}",
        page.text
    );
    tap(&bot, ADMIN, "Putuskan sesi", "Putuskan sesi WhatsApp").await;
    let b_before = bot.tg.sent_to(B).len();
    let mark = bot.tg.mark();
    bot.press(ADMIN, "Ya");
    let told = bot.tg.wait_for_text_to_after(mark, B, "Operator memutus", WAIT).await;
    assert!(
        told.text.contains("6281234564002") || told.text.contains("4002"),
        "{}",
        told.text
    );
    bot.tg.wait_for_text_to_after(mark, ADMIN, "Riwayat", WAIT).await;
    assert_eq!(bot.tg.sent_to(B).len(), b_before + 1, "B got exactly one notice");
    assert_eq!(
        bot.account_row(B_PHONE).unwrap().2,
        "active",
        "a disconnect keeps the account"
    );
    assert_eq!(audit_count(&bot, ADMIN, "admin_disconnect"), 1);
    // B's own view shows it is not connected now.
    let status = say(&bot, B, "/status", "").await;
    assert!(!status.text.contains("🟢"), "{}", status.text);

    // Force-logout A: A is told, the account is logged out.
    say(&bot, ADMIN, &format!("/admin {A}"), "cocok dengan").await;
    tap(&bot, ADMIN, "4001", "Riwayat").await;
    tap(&bot, ADMIN, "Paksa logout", "Paksa logout").await;
    let mark = bot.tg.mark();
    bot.press(ADMIN, "Ya");
    bot.tg
        .wait_for_text_to_after(mark, A, "Operator mengeluarkan", WAIT)
        .await;
    wait_status(&bot, A_PHONE, "logged_out").await;
    assert_eq!(audit_count(&bot, ADMIN, "admin_logout"), 1);
    assert!(audit_count(&bot, ADMIN, "admin_view") >= 3);
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_operator_is_refused_admin_and_every_admin_button_and_sees_nothing() {
    let bot = three_users().await;
    // The operator opens a page so real admin buttons exist to replay.
    say(&bot, ADMIN, "/admin", "Admin").await;
    tap(&bot, ADMIN, "Semua akun", "Semua akun</b>").await;
    tap(&bot, ADMIN, "4002", "Riwayat").await;
    let admin_data: Vec<String> = bot
        .tg
        .sent_to(ADMIN)
        .iter()
        .flat_map(|m| m.buttons().into_iter().map(|(_, d)| d))
        .collect();
    assert!(admin_data.len() >= 3, "{admin_data:?}");

    // /admin from a user with an account and from one without.
    for user in [A, 8_000_777] {
        let r = say(&bot, user, "/admin", "AKSES DITOLAK").await;
        assert!(!r.text.contains("Admin</b>"), "{}", r.text);
    }

    // Every admin button kind, signed for A (so only the operator check can refuse it), and
    // the operator's own buttons replayed by A.
    let codec = CallbackCodec::load_or_create(&bot.data_dir().join(".secret")).unwrap();
    let b_id = AccountId::new(bot.account_row(B_PHONE).unwrap().0).unwrap();
    let g = GroupId::parse("120363012345678901@g.us").unwrap();
    let phone = PhoneNumber::from_digits(B_PHONE).unwrap();
    let kinds: Vec<Cb> = Cb::every_kind(b_id, &g, 1, &phone)
        .into_iter()
        .filter(|cb| matches!(cb, Cb::Admin(_)))
        .collect();
    assert!(kinds.len() >= 7);
    let a_tid = TelegramId::new(A).unwrap();
    let mine: Vec<String> = kinds.iter().map(|cb| codec.encode(a_tid, cb)).collect();
    let a_before = bot.tg.sent_to(A).len();
    let b_before = bot.tg.sent_to(B).len();
    for data in mine.iter().chain(admin_data.iter()) {
        let id = bot.tg.push_callback(A, 1, data);
        let ans = bot.tg.wait_for_callback_answer(&id, WAIT).await;
        assert_eq!(ans["show_alert"], true, "{data} was not refused: {ans}");
        let text = ans["text"].as_str().unwrap_or("");
        assert!(
            text.contains("AKSES DITOLAK") || text.contains("bukan milik") || text.contains("tidak berlaku"),
            "{data}: {text}"
        );
    }
    assert_eq!(bot.tg.sent_to(A).len(), a_before, "A saw an admin screen");
    assert_eq!(
        bot.tg.sent_to(B).len(),
        b_before,
        "B was told about an action that never happened"
    );
    assert_eq!(bot.account_row(B_PHONE).unwrap().2, "active");
    assert!(
        bot.refusals(A, "refused_admin") > kinds.len() as i64,
        "refusals are audited"
    );
    bot.stop().await;
}

/// Messages the simulator recorded as sent by `from`.
fn sent_by(bot: &TestBot, from: &str) -> usize {
    tgwa::wa::sim::read_sent_messages(&bot.world_db())
        .expect("read the simulator's record")
        .into_iter()
        .filter(|m| m.from == from)
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_pauses_every_running_job_of_an_account_and_the_owner_is_told() {
    let admin = ADMIN.to_string();
    let bot = TestBot::start(&[("TGWA_ADMIN_IDS", &admin), ("TGWA_JOB_ITEM_DELAY_MS", "100")]).await;
    bot.pair(A, A_PHONE).await;
    let list = (0..100)
        .map(|i| format!("62859{:07}7", i))
        .collect::<Vec<_>>()
        .join("\n");
    say(&bot, A, "/menu", "Menu utama").await;
    tap(&bot, A, "Pesan", "Pesan</b>").await;
    tap(&bot, A, "Siaran", "teks pesan siaran").await;
    say(&bot, A, "Promo", "Kirim ke mana").await;
    let mark = bot.tg.mark();
    bot.tg.push_document(A, "numbers.txt", list.into_bytes(), None);
    bot.tg
        .wait_for_text_to_after(mark, A, "Mulai pekerjaan ini", WAIT)
        .await;
    tap(&bot, A, "Mulai", "berjalan").await;
    let deadline = tokio::time::Instant::now() + WAIT;
    while sent_by(&bot, A_PHONE) < 3 {
        assert!(tokio::time::Instant::now() < deadline, "the job did not start");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let o = say(&bot, ADMIN, "/admin", "Admin").await;
    assert!(o.text.contains("Pekerjaan: 1 berjalan, 0 dijeda"), "{}", o.text);

    say(&bot, ADMIN, &format!("/admin {A}"), "cocok dengan").await;
    tap(&bot, ADMIN, "4001", "Riwayat").await;
    tap(
        &bot,
        ADMIN,
        "Jeda semua pekerjaan",
        "Jeda semua pekerjaan yang berjalan",
    )
    .await;
    let mark = bot.tg.mark();
    let id = bot.press(ADMIN, "Ya");
    let ans = bot.tg.wait_for_callback_answer(&id, WAIT).await;
    assert!(
        ans["text"].as_str().unwrap_or("").contains("1 pekerjaan dijeda"),
        "{ans}"
    );
    bot.tg.wait_for_text_to_after(mark, A, "Operator menjeda", WAIT).await;
    // A paused job sends at most the item already under way.
    let paused_at = sent_by(&bot, A_PHONE);
    tokio::time::sleep(Duration::from_millis(800)).await;
    let after = sent_by(&bot, A_PHONE);
    assert!(
        after <= paused_at + 1 && after < 100,
        "the job kept sending ({paused_at} -> {after})"
    );
    assert_eq!(audit_count(&bot, ADMIN, "admin_pause_jobs"), 1);
    let o = say(&bot, ADMIN, "/admin", "Admin").await;
    assert!(o.text.contains("Pekerjaan: 0 berjalan, 1 dijeda"), "{}", o.text);
    bot.stop().await;
}

/// The overview's count of `source` ("Telegram" or "WhatsApp") errors in the last hour.
async fn errors_shown(bot: &TestBot, source: &str) -> usize {
    let o = say(bot, ADMIN, "/admin", "Admin").await;
    let line = o
        .text
        .lines()
        .find(|l| l.starts_with("Galat 1 jam terakhir"))
        .unwrap_or_else(|| panic!("no error line: {}", o.text));
    line.split(',')
        .find_map(|part| {
            part.trim()
                .strip_prefix("Galat 1 jam terakhir:")
                .unwrap_or(part)
                .trim()
                .strip_prefix(source)
        })
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {source} count: {line}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_overview_counts_the_last_hours_telegram_and_whatsapp_errors() {
    let admin = ADMIN.to_string();
    let bot = TestBot::start(&[("TGWA_ADMIN_IDS", &admin)]).await;
    say(&bot, B, "/start", "").await;
    // (Other tests in this process add errors too: the counts only grow.)
    let (tg0, wa0) = (
        errors_shown(&bot, "Telegram").await,
        errors_shown(&bot, "WhatsApp").await,
    );
    // B blocks the bot: the answer to their next message fails with 403.
    bot.tg.block_bot_for(B);
    let mark = bot.tg.mark();
    bot.tg.push_message(B, "/menu");
    bot.tg.wait_for_method_after(mark, "sendMessage", WAIT).await;
    // WhatsApp rate-limits a pairing (simulator: numbers ending in 0429).
    bot.tg.push_message(C, "/pair 6281234560429");
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (tg, wa) = (
            errors_shown(&bot, "Telegram").await,
            errors_shown(&bot, "WhatsApp").await,
        );
        if tg > tg0 && wa > wa0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "errors not counted: Telegram {tg0} -> {tg}, WhatsApp {wa0} -> {wa}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_suspended_user_is_refused_everywhere_while_their_account_stays_up_until_restored() {
    let admin = ADMIN.to_string();
    let bot = TestBot::start(&[("TGWA_ADMIN_IDS", &admin)]).await;
    bot.pair(B, B_PHONE).await;
    // A menu of B's from before the suspension, to replay afterwards.
    say(&bot, B, "/menu", "Menu utama").await;
    let old_button = bot.button(B, "Akun");
    let old_message = bot.message_with_button(B, &old_button);

    say(&bot, ADMIN, &format!("/admin {B}"), "cocok dengan").await;
    tap(&bot, ADMIN, "4002", "Riwayat").await;
    tap(&bot, ADMIN, "Tangguhkan pemilik", "Tangguhkan pengguna").await;
    tap(&bot, ADMIN, "Ya", "Pemilik sedang ditangguhkan").await;
    assert_eq!(audit_count(&bot, ADMIN, "admin_suspend"), 1);

    for cmd in [
        "/menu",
        "/status",
        "/groups",
        "/accounts",
        "/pair 081234560999",
        "/start",
        "halo",
    ] {
        let r = say(&bot, B, cmd, "AKSES DITOLAK").await;
        assert!(!r.text.contains("4002"), "{cmd}: {}", r.text);
    }
    let id = bot.tg.push_callback(B, old_message, &old_button);
    let ans = bot.tg.wait_for_callback_answer(&id, WAIT).await;
    assert_eq!(ans["show_alert"], true, "{ans}");
    assert!(ans["text"].as_str().unwrap_or("").contains("AKSES DITOLAK"), "{ans}");
    // The account itself is untouched: still active and connected.
    assert_eq!(bot.account_row(B_PHONE).unwrap().2, "active");
    let o = say(&bot, ADMIN, "/admin", "Admin").await;
    assert!(o.text.contains("Terhubung sekarang: 1"), "{}", o.text);

    say(&bot, ADMIN, &format!("/admin {B}"), "cocok dengan").await;
    tap(&bot, ADMIN, "4002", "Riwayat").await;
    tap(&bot, ADMIN, "Pulihkan pemilik", "Pulihkan pengguna").await;
    let page = tap(&bot, ADMIN, "Ya", "Riwayat").await;
    assert!(!page.text.contains("ditangguhkan"), "{}", page.text);
    say(&bot, B, "/menu", "Menu utama").await;
    assert_eq!(audit_count(&bot, ADMIN, "admin_restore"), 1);
    bot.stop().await;
}

/// Users of the announcement tests: each has a row in the master database (they sent /start).
fn crowd() -> Vec<i64> {
    (1..=20).map(|i| 8_100_000 + i).collect()
}

/// How many of the bot's messages in `chat` are exactly `text`.
/// Copies of announcement `text` in `chat` (each under the operator's header).
fn copies(bot: &TestBot, chat: i64, text: &str) -> usize {
    bot.tg
        .sent_to(chat)
        .iter()
        .filter(|m| m.text.strip_prefix("📢 Pengumuman dari operator\n\n") == Some(text))
        .count()
}

fn master_rw(bot: &TestBot) -> rusqlite::Connection {
    let c = rusqlite::Connection::open(bot.master_db()).unwrap();
    c.busy_timeout(Duration::from_secs(5)).unwrap();
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_announcement_reaches_every_user_exactly_once_across_a_restart_and_a_crash() {
    const TEXT: &str = "Halo semua: layanan dipelihara malam ini pukul 23.00 WIB.";
    let admin = ADMIN.to_string();
    let bot = TestBot::start(&[("TGWA_ADMIN_IDS", &admin), ("TGWA_ANNOUNCE_DELAY_MS", "300")]).await;
    let users = crowd();
    let suspended = 8_100_099;
    for &u in users.iter().chain([suspended].iter()) {
        say(&bot, u, "/start", "").await;
    }
    master_rw(&bot)
        .execute(
            "UPDATE telegram_users SET suspended = 1 WHERE telegram_id = ?1",
            [suspended],
        )
        .unwrap();
    // Telegram faults on the way: one user blocked the bot (403), one send is rate-limited
    // (429, retry after 1 s), one gets a 500, and one answer is held back while the bot stops.
    let blocked = users[3];
    let limited = users[5];
    let at_restart = users[8];
    let crashed = users[13];
    let errored = users[16];
    bot.tg.block_bot_for(blocked);
    bot.tg.fail_next(
        "sendMessage",
        Some(limited),
        429,
        "Too Many Requests: retry after 1",
        Some(1),
    );
    bot.tg.fail_next_500("sendMessage", Some(errored));
    bot.tg
        .delay_next("sendMessage", Some(at_restart), Duration::from_millis(1500));

    let preview = say(&bot, ADMIN, &format!("/admin announce {TEXT}"), "Pratinjau pengumuman").await;
    // Every user but the suspended one: the crowd and the operator.
    assert!(preview.text.contains("<b>21</b> pengguna"), "{}", preview.text);
    assert!(preview.text.contains("ditangguhkan"), "{}", preview.text);
    assert!(preview.text.contains(TEXT), "{}", preview.text);
    assert_eq!(
        copies(&bot, users[0], TEXT),
        0,
        "nothing goes out before the operator confirms"
    );
    let mark = bot.tg.mark();
    bot.press(ADMIN, "Kirim ke 21");
    bot.tg.wait_for_text_to_after(mark, ADMIN, "berjalan", WAIT).await;
    // Stop the bot while the send to `at_restart` waits for its answer.
    bot.tg.wait_for_text_to_after(mark, at_restart, TEXT, WAIT).await;
    let (tg, dir, extra) = bot.stop().await;

    let db = rusqlite::Connection::open(dir.path().join("bot_data.db")).unwrap();
    let (state, pending): (String, i64) = db
        .query_row(
            "SELECT state, (SELECT COUNT(*) FROM announcement_recipients WHERE state = 'pending') FROM announcements",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(state, "running", "the bot stopped midway");
    assert!(pending >= 5, "the bot stopped midway ({pending} left)");
    let at_restart_state: String = db
        .query_row(
            "SELECT state FROM announcement_recipients WHERE telegram_id = ?1",
            [at_restart],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(
        at_restart_state, "sent",
        "the send in flight at shutdown is finished and recorded"
    );
    // A crash during the send to `crashed` leaves it marked in flight, as here.
    let marked = db
        .execute(
            "UPDATE announcement_recipients SET state = 'running' WHERE telegram_id = ?1 AND state = 'pending'",
            [crashed],
        )
        .unwrap();
    assert_eq!(marked, 1, "the crash case needs a recipient not reached yet");
    drop(db);

    let bot = TestBot::start_in(tg, dir, extra).await;
    let done = bot
        .tg
        .wait_for_text_to(ADMIN, "</b>: selesai", Duration::from_secs(60))
        .await;
    assert!(done.text.contains("21/21"), "{}", done.text);
    assert!(done.text.contains("Memblokir bot: 1"), "{}", done.text);
    assert!(done.text.contains("Tidak pasti: 1"), "{}", done.text);
    assert!(done.text.contains("Gagal: 0"), "{}", done.text);

    for &u in users.iter().chain([ADMIN].iter()) {
        let want = usize::from(u != blocked && u != crashed);
        assert_eq!(copies(&bot, u, TEXT), want, "user {u}");
    }
    assert_eq!(copies(&bot, suspended, TEXT), 0, "a suspended user gets nothing");
    let is_blocked: bool = bot
        .master()
        .query_row(
            "SELECT blocked FROM telegram_users WHERE telegram_id = ?1",
            [blocked],
            |r| r.get(0),
        )
        .unwrap();
    assert!(is_blocked, "a 403 marks the user as having blocked the bot");
    assert_eq!(audit_count(&bot, ADMIN, "admin_announce_draft"), 1);
    assert_eq!(audit_count(&bot, ADMIN, "admin_announce_start"), 1);
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_pauses_and_cancels_an_announcement() {
    const TEXT: &str = "Pengumuman yang dibatalkan";
    let admin = ADMIN.to_string();
    let bot = TestBot::start(&[("TGWA_ADMIN_IDS", &admin), ("TGWA_ANNOUNCE_DELAY_MS", "400")]).await;
    let users = crowd();
    for &u in &users {
        say(&bot, u, "/start", "").await;
    }
    say(&bot, ADMIN, &format!("/admin umumkan {TEXT}"), "Pratinjau pengumuman").await;
    let mark = bot.tg.mark();
    bot.press(ADMIN, "Kirim ke");
    bot.tg.wait_for_text_to_after(mark, users[1], TEXT, WAIT).await;
    tap(&bot, ADMIN, "Jeda", "dijeda").await;
    let total = || users.iter().map(|&u| copies(&bot, u, TEXT)).sum::<usize>();
    let paused_at = total();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert!(total() <= paused_at + 1, "a paused announcement kept sending");
    let stopped = total();
    tap(&bot, ADMIN, "Lanjutkan", "berjalan").await;
    let deadline = tokio::time::Instant::now() + WAIT;
    while total() < stopped + 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the announcement did not resume"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tap(&bot, ADMIN, "Batalkan", "dibatalkan").await;
    let cancelled_at = total();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert!(total() <= cancelled_at + 1, "a cancelled announcement kept sending");
    assert!(total() < users.len());
    for action in ["admin_announce_pause", "admin_announce_resume", "admin_announce_cancel"] {
        assert_eq!(audit_count(&bot, ADMIN, action), 1, "{action}");
    }
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_operator_replaying_announcement_buttons_is_refused_and_nothing_is_sent() {
    const TEXT: &str = "Hanya operator yang boleh mengirim ini";
    let admin = ADMIN.to_string();
    let bot = TestBot::start(&[("TGWA_ADMIN_IDS", &admin)]).await;
    bot.pair(A, A_PHONE).await;
    say(&bot, B, "/start", "").await;
    say(&bot, ADMIN, &format!("/admin announce {TEXT}"), "Pratinjau pengumuman").await;
    let admin_data: Vec<String> = bot
        .tg
        .sent_to(ADMIN)
        .iter()
        .flat_map(|m| m.buttons().into_iter().map(|(_, d)| d))
        .collect();
    assert!(!admin_data.is_empty());

    // The operator's own preview buttons, and every announcement button signed for A.
    let codec = CallbackCodec::load_or_create(&bot.data_dir().join(".secret")).unwrap();
    let a_id = AccountId::new(bot.account_row(A_PHONE).unwrap().0).unwrap();
    let g = GroupId::parse("120363012345678901@g.us").unwrap();
    let phone = PhoneNumber::from_digits(A_PHONE).unwrap();
    let a_tid = TelegramId::new(A).unwrap();
    let announcement: i64 = bot
        .master()
        .query_row("SELECT id FROM announcements", [], |r| r.get(0))
        .unwrap();
    let mine: Vec<String> = Cb::every_kind(a_id, &g, announcement, &phone)
        .into_iter()
        .filter(|cb| matches!(cb, Cb::Admin(a) if format!("{a:?}").starts_with("Announce")))
        .map(|cb| codec.encode(a_tid, &cb))
        .collect();
    assert!(mine.len() >= 6, "{mine:?}");
    let a_before = bot.tg.sent_to(A).len();
    for data in mine.iter().chain(admin_data.iter()) {
        let id = bot.tg.push_callback(A, 1, data);
        let ans = bot.tg.wait_for_callback_answer(&id, WAIT).await;
        assert_eq!(ans["show_alert"], true, "{data} was not refused: {ans}");
        let text = ans["text"].as_str().unwrap_or("");
        assert!(
            text.contains("AKSES DITOLAK") || text.contains("bukan milik"),
            "{data}: {text}"
        );
    }
    assert_eq!(bot.tg.sent_to(A).len(), a_before, "A saw an operator screen");
    // Nothing went out, and the draft is still a draft with no recipients.
    tokio::time::sleep(Duration::from_millis(500)).await;
    for u in [A, B, ADMIN] {
        assert_eq!(copies(&bot, u, TEXT), 0, "user {u}");
    }
    let (state, recipients): (String, i64) = bot
        .master()
        .query_row(
            "SELECT state, (SELECT COUNT(*) FROM announcement_recipients) FROM announcements",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((state.as_str(), recipients), ("draft", 0));
    assert!(bot.refusals(A, "refused_admin") >= mine.len() as i64);
    bot.stop().await;
}

/// Banned 3 s after it connects (simulator).
const BANNED_PHONE: &str = "6281234560402";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daily_digest_reports_the_last_day_to_the_operators_once_a_day_across_restarts() {
    let admin = ADMIN.to_string();
    let bot = TestBot::start(&[("TGWA_ADMIN_IDS", &admin)]).await;
    // Seeded state: A active and connected, B banned, C logged out from the phone.
    let a_id = bot.pair(A, A_PHONE).await;
    bot.pair(B, BANNED_PHONE).await;
    bot.pair(C, C_PHONE).await;
    wait_status(&bot, BANNED_PHONE, "banned").await;
    wait_status(&bot, C_PHONE, "logged_out").await;
    let (tg, dir, mut extra) = bot.stop().await;
    assert!(
        !tg.sent_to(ADMIN).iter().any(|m| m.text.contains("Ringkasan harian")),
        "TGWA_DIGEST_HOUR= (empty) turns it off"
    );
    // Two failed items of one job of A's today, and one of another job two days ago.
    let path: String = rusqlite::Connection::open(dir.path().join("bot_data.db"))
        .unwrap()
        .query_row(
            "SELECT bot_data_db_path FROM whatsapp_accounts WHERE id = ?1",
            [a_id],
            |r| r.get(0),
        )
        .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let jobs = rusqlite::Connection::open(path).unwrap();
    for (job, at, states) in [
        (1, now - 600, &["failed", "failed", "ok"][..]),
        (2, now - 2 * 86_400, &["failed"][..]),
    ] {
        jobs.execute(
            "INSERT INTO jobs (id, kind, state, params, telegram_id, chat_id, created_at, updated_at)
             VALUES (?1, 'check_numbers', 'done', '{\"kind\":\"check_numbers\"}', ?2, ?2, ?3, ?3)",
            rusqlite::params![job, A, at],
        )
        .unwrap();
        for (seq, state) in states.iter().enumerate() {
            jobs.execute(
                "INSERT INTO job_items (job_id, seq, input, state, updated_at) VALUES (?1, ?2, '6285700000017', ?3, ?4)",
                rusqlite::params![job, seq as i64, state, at],
            )
            .unwrap();
        }
    }
    drop(jobs);

    // Hour 0: today's digest is due at once.
    extra.push(("TGWA_DIGEST_HOUR".into(), "0".into()));
    let bot = TestBot::start_in(tg, dir, extra).await;
    let d = bot.tg.wait_for_text_to(ADMIN, "Ringkasan harian", WAIT).await;
    assert!(d.text.contains("Logout: 1\n  #"), "{}", d.text);
    assert!(d.text.contains("*******0401"), "{}", d.text);
    assert!(d.text.contains("Diblokir (ban): 1"), "{}", d.text);
    assert!(d.text.contains("*******0402"), "{}", d.text);
    assert!(d.text.contains("Offline lebih dari 1 jam: 0"), "{}", d.text);
    assert!(d.text.contains("Item pekerjaan gagal: 2 (1 pekerjaan)"), "{}", d.text);
    assert!(!d.text.contains("81234560401"), "numbers are masked: {}", d.text);
    let today: String = bot
        .master()
        .query_row(
            "SELECT value FROM admin_state WHERE key = 'digest_last_date'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let wib = chrono::Utc::now().with_timezone(&chrono::FixedOffset::east_opt(7 * 3600).unwrap());
    assert_eq!(today, wib.date_naive().to_string(), "the date is WIB's");

    // A restart the same day sends no second digest.
    let mark = bot.tg.mark();
    let bot = bot.restart().await;
    // The start-up summary comes once the logins were tried: the digest would follow it.
    bot.tg
        .wait_for_text_to_after(mark, ADMIN, "Startup selesai", WAIT)
        .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let digests = bot
        .tg
        .sent_to(ADMIN)
        .iter()
        .filter(|m| m.text.contains("Ringkasan harian"))
        .count();
    assert_eq!(digests, 1, "one digest a day, across restarts");
    assert_eq!(audit_count_system(&bot, "admin_digest"), 1);
    bot.stop().await;
}

fn audit_count_system(bot: &TestBot, action: &str) -> i64 {
    bot.master()
        .query_row(
            "SELECT COUNT(*) FROM audit_log WHERE telegram_id IS NULL AND action = ?1",
            [action],
            |r| r.get(0),
        )
        .unwrap()
}

/// Presses the button with `data` on message `mid` as `user` and returns the callback answer.
async fn replay(bot: &TestBot, user: i64, mid: i64, data: &str) -> serde_json::Value {
    let id = bot.tg.push_callback(user, mid, data);
    bot.tg.wait_for_callback_answer(&id, WAIT).await
}

/// Opens A's page in `/admin` and asks for `action`; returns the "Ya" button and its message.
async fn confirmation(bot: &TestBot, action: &str) -> (String, i64) {
    say(bot, ADMIN, &format!("/admin {A}"), "cocok dengan").await;
    tap(bot, ADMIN, "4001", "Riwayat").await;
    tap(bot, ADMIN, action, action).await;
    let data = bot.button(ADMIN, "Ya");
    let mid = bot.message_with_button(ADMIN, &data);
    (data, mid)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_confirmations_act_once_and_never_on_a_later_pairing() {
    let admin = ADMIN.to_string();
    let bot = TestBot::start(&[("TGWA_ADMIN_IDS", &admin)]).await;
    bot.pair(A, A_PHONE).await;

    // Two force-logout confirmations; the first is used, then A pairs the number again.
    let (first, first_mid) = confirmation(&bot, "Paksa logout").await;
    let (stale, stale_mid) = confirmation(&bot, "Paksa logout").await;
    let mark = bot.tg.mark();
    replay(&bot, ADMIN, first_mid, &first).await;
    bot.tg
        .wait_for_text_to_after(mark, A, "Operator mengeluarkan", WAIT)
        .await;
    wait_status(&bot, A_PHONE, "logged_out").await;
    bot.pair(A, A_PHONE).await;
    // The confirmation made before the re-pair does not log out the new pairing.
    let ans = replay(&bot, ADMIN, stale_mid, &stale).await;
    assert!(ans["text"].as_str().unwrap_or("").contains("tidak berlaku"), "{ans}");
    assert_eq!(bot.account_row(A_PHONE).unwrap().2, "active");
    assert_eq!(audit_count(&bot, ADMIN, "admin_logout"), 1);
    let told = bot
        .tg
        .sent_to(A)
        .iter()
        .filter(|m| m.text.contains("Operator mengeluarkan"))
        .count();
    assert_eq!(told, 1);

    // Disconnect tapped three times: one disconnect, one notice, one audit row.
    let (yes, mid) = confirmation(&bot, "Putuskan sesi").await;
    let mark = bot.tg.mark();
    replay(&bot, ADMIN, mid, &yes).await;
    bot.tg.wait_for_text_to_after(mark, A, "Operator memutus", WAIT).await;
    replay(&bot, ADMIN, mid, &yes).await;
    replay(&bot, ADMIN, mid, &yes).await;
    let told = bot
        .tg
        .sent_to(A)
        .iter()
        .filter(|m| m.text.contains("Operator memutus"))
        .count();
    assert_eq!(told, 1, "the owner was told {told} times");
    assert_eq!(audit_count(&bot, ADMIN, "admin_disconnect"), 1);

    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_button_for_an_announcement_that_is_gone_is_a_stale_button() {
    let admin = ADMIN.to_string();
    let bot = TestBot::start(&[("TGWA_ADMIN_IDS", &admin)]).await;
    say(&bot, ADMIN, "/admin announce Halo semua", "Pratinjau pengumuman").await;
    say(&bot, ADMIN, "/admin", "Admin").await;
    tap(&bot, ADMIN, "📣 Pengumuman", "Terakhir").await;
    let data = bot.button(ADMIN, "📣 #1");
    let mid = bot.message_with_button(ADMIN, &data);
    let db = master_rw(&bot);
    db.execute_batch("DELETE FROM announcement_recipients; DELETE FROM announcements;")
        .unwrap();
    let ans = replay(&bot, ADMIN, mid, &data).await;
    assert!(ans["text"].as_str().unwrap_or("").contains("tidak berlaku"), "{ans}");
    assert!(
        !bot.tg
            .sent_to(ADMIN)
            .iter()
            .any(|m| m.text.contains("terjadi kesalahan")),
        "shown as an error"
    );
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_announcement_preview_is_cut_between_entities_and_counted_as_telegram_does() {
    let admin = ADMIN.to_string();
    let bot = TestBot::start(&[("TGWA_ADMIN_IDS", &admin)]).await;
    // 4000 characters full of what HTML must escape: the echoed preview needs two messages.
    let text = "a&b<c>d".repeat(571);
    let mark = bot.tg.mark();
    bot.tg.push_message(ADMIN, &format!("/admin announce {text}"));
    bot.tg.wait_for_button_after(mark, ADMIN, "Kirim ke", WAIT).await;
    let refused: Vec<_> = bot
        .tg
        .calls_after(mark)
        .into_iter()
        .filter(|c| c.method == "sendmessage" && c.params.get("__message_id").is_none())
        .collect();
    assert!(refused.is_empty(), "Telegram refused a piece of the preview");
    // 2100 emoji are 4200 units to Telegram: over the cap, said so before anything is stored.
    let r = say(
        &bot,
        ADMIN,
        &format!("/admin announce {}", "😀".repeat(2100)),
        "terlalu panjang",
    )
    .await;
    assert!(r.text.contains("4200"), "{}", r.text);
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_hammering_a_forbidden_button_adds_one_audit_row_a_minute() {
    let admin = ADMIN.to_string();
    let bot = TestBot::start(&[("TGWA_ADMIN_IDS", &admin)]).await;
    bot.pair(A, A_PHONE).await;
    say(&bot, ADMIN, "/admin", "Admin").await;
    let data = bot.button(ADMIN, "Semua akun");
    let mid = bot.message_with_button(ADMIN, &data);
    // A replays the operator's button 60 times: every press refused, one row for them all.
    for _ in 0..60 {
        let id = bot.tg.push_callback(A, mid, &data);
        bot.tg.wait_for_callback_answer(&id, WAIT).await;
    }
    let rows: i64 = bot
        .master()
        .query_row(
            "SELECT COUNT(*) FROM audit_log WHERE telegram_id = ?1 AND action LIKE 'refused%'",
            [A],
            |r| r.get(0),
        )
        .unwrap();
    assert!(rows <= 2, "{rows} audit rows for one user's refusals");
    assert_eq!(
        bot.refusals(A, "refused_callback") + bot.refusals(A, "refused_admin"),
        60
    );
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_confirmation_for_a_removed_account_does_nothing() {
    let admin = ADMIN.to_string();
    let bot = TestBot::start(&[("TGWA_ADMIN_IDS", &admin)]).await;
    bot.pair(A, A_PHONE).await;
    let (yes, mid) = confirmation(&bot, "Putuskan sesi").await;
    // The account is removed (by its owner, or purged) before the operator confirms.
    master_rw(&bot)
        .execute(
            "UPDATE whatsapp_accounts SET status = 'removed' WHERE phone_number = ?1",
            [A_PHONE],
        )
        .unwrap();
    let before = bot.tg.sent_to(A).len();
    let ans = replay(&bot, ADMIN, mid, &yes).await;
    assert!(ans["text"].as_str().unwrap_or("").contains("tidak berlaku"), "{ans}");
    assert_eq!(bot.tg.sent_to(A).len(), before, "the former owner was told something");
    assert_eq!(audit_count(&bot, ADMIN, "admin_disconnect"), 0);
    bot.stop().await;
}
