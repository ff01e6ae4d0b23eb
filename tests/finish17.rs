//! Issue 17, the parts finished last: job numbers unique per user, separate quotas for number
//! checks and broadcasts, the preview's duration estimate, announcements per language with
//! an operator header, stale buttons of edited-away screens, and WhatsApp's reasons in the
//! user's words. Walked from outside: the real dispatcher over the simulator and the fake
//! Bot API.

#[path = "support/fake_telegram.rs"]
pub mod fake_telegram;
mod support {
    pub use super::fake_telegram;
    #[path = "app.rs"]
    pub mod app;
}

use support::app::{numbers, TestBot, WAIT};

const ADMIN: i64 = 9_170_000;
const A: i64 = 9_170_001;
const A_PHONE: &str = "6281234561701";
const A_PHONE2: &str = "6281234561702";
/// An English-speaking user.
const EN: i64 = 9_170_005;
const EN_PHONE: &str = "6281234561705";

/// Waits until `chat` got a document whose caption holds `caption`, sent after `mark`.
async fn document_after(bot: &TestBot, mark: fake_telegram::Mark, chat: i64, caption: &str) -> fake_telegram::Sent {
    let d = bot.tg.wait_for_text_to_after(mark, chat, caption, WAIT).await;
    assert!(d.file_name.is_some(), "{caption}: not a document");
    d
}

/// A user with two accounts sees each job under its own number: the second account's first
/// job is #2, not a second "#1" (jobs live in each account's file, with its own ids), on its
/// progress message, its report and the jobs screen.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_numbers_are_unique_per_user_across_accounts() {
    let bot = TestBot::start(&[]).await;
    bot.pair(A, A_PHONE).await;
    bot.broadcast_preview(A, "Halo satu", &numbers(1)).await;
    let mark = bot.tg.mark();
    bot.press(A, "Mulai");
    document_after(&bot, mark, A, "Laporan pekerjaan #1").await;

    bot.pair(A, A_PHONE2).await;
    bot.broadcast_preview(A, "Halo dua", &numbers(1)).await;
    let mark = bot.tg.mark();
    bot.press(A, "Mulai");
    let report = document_after(&bot, mark, A, "Laporan pekerjaan #").await;
    assert!(report.text.contains("Laporan pekerjaan #2"), "{}", report.text);
    let progress = bot.tg.wait_for_text_to_after(mark, A, "Pekerjaan #", WAIT).await;
    assert!(progress.text.contains("Pekerjaan #2"), "{}", progress.text);
    assert_eq!(
        bot.sent_by(A_PHONE2).len(),
        1,
        "the second job ran on the second account"
    );

    bot.say(A, "/status", "Terakhir diperbarui").await;
    let screen = bot.tap(A, "📋 Pekerjaan", "Pekerjaan</b>").await;
    let labels: Vec<String> = screen.buttons().into_iter().map(|b| b.0).collect();
    assert!(labels.iter().any(|l| l.starts_with("#2 Siaran pesan")), "{labels:?}");
    assert!(!labels.iter().any(|l| l.starts_with("#1 ")), "{labels:?}");
    bot.stop().await;
}

/// Opens «🔎 Cek nomor» and sends `list`, up to the preview with its Start button.
async fn check_preview(bot: &TestBot, user: i64, list: &str) -> fake_telegram::Sent {
    bot.say(user, "/menu", "Menu utama").await;
    bot.tap(user, "Pesan", "Pesan</b>").await;
    bot.tap(user, "Cek nomor", "Tempel nomor").await;
    bot.say(user, list, "Mulai pekerjaan ini").await
}

/// Number checks have a daily quota of their own (`TGWA_CHECK_DAILY_CAP`): a broadcast that
/// used up the daily cap does not hold back a check, the account page shows both quotas, and
/// the preview of a check warns of the checks' quota (and never of the broadcasts' one).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn number_checks_and_broadcasts_have_separate_quotas() {
    let bot = TestBot::start(&[("TGWA_JOB_DAILY_CAP", "2"), ("TGWA_CHECK_DAILY_CAP", "3")]).await;
    bot.pair(A, A_PHONE).await;
    bot.broadcast_preview(A, "Halo", &numbers(2)).await;
    let mark = bot.tg.mark();
    bot.press(A, "Mulai");
    document_after(&bot, mark, A, "Laporan pekerjaan").await;

    let preview = check_preview(&bot, A, &numbers(3)).await;
    assert!(!preview.text.contains("Kuota"), "no quota is short: {}", preview.text);
    let mark = bot.tg.mark();
    bot.press(A, "Mulai");
    let report = document_after(&bot, mark, A, "Laporan pekerjaan").await;
    assert!(report.text.contains("3 nomor ada di WhatsApp"), "{}", report.text);

    let page = bot.say(A, "/status", "Terakhir diperbarui").await;
    assert!(page.text.contains("Kuota hari ini: 2/2 item"), "{}", page.text);
    assert!(
        page.text.contains("Kuota cek nomor hari ini: 3/3 nomor"),
        "{}",
        page.text
    );

    let preview = check_preview(&bot, A, &numbers(4)).await;
    assert!(
        preview
            .text
            .contains("Kuota cek nomor harian: 0 dari 4 hari ini, sisanya besok 07:00 WIB"),
        "{}",
        preview.text
    );
    let mark = bot.tg.mark();
    bot.press(A, "Mulai");
    let paused = bot
        .tg
        .wait_for_text_to_after(mark, A, "batas harian cek nomor", WAIT)
        .await;
    assert!(paused.text.contains("dijeda"), "{}", paused.text);
    bot.stop().await;
}

/// The preview estimates how long the job takes at the account's pacing: the item delay,
/// half the jitter and the typing time per message (12 × (40 s + 10 s + 10 × 1 s) = 12 min),
/// and, with the daily cap in the way, for the part that goes today.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_preview_estimates_the_duration() {
    let bot = TestBot::start(&[
        ("TGWA_JOB_ITEM_DELAY_MS", "40000"),
        ("TGWA_JOB_JITTER_MS", "20000"),
        ("TGWA_TYPING", "1"),
        ("TGWA_TYPING_MS_PER_CHAR", "1000"),
        ("TGWA_TYPING_MAX_MS", "15000"),
        ("TGWA_JOB_DAILY_CAP", "12"),
    ])
    .await;
    bot.pair(A, A_PHONE).await;
    let latest_preview = || {
        bot.tg
            .sent_to(A)
            .into_iter()
            .rev()
            .find(|m| m.text.contains("Mulai pekerjaan ini"))
            .expect("the preview")
    };
    bot.broadcast_preview(A, "Halo semua", &numbers(12)).await;
    let preview = latest_preview();
    assert!(
        preview.text.contains("Perkiraan selesai ± 12 menit"),
        "{}",
        preview.text
    );
    assert!(!preview.text.contains("hari ini)"), "{}", preview.text);
    bot.broadcast_preview(A, "Halo semua", &numbers(20)).await;
    let preview = latest_preview();
    assert!(
        preview
            .text
            .contains("Perkiraan selesai ± 12 menit (untuk 12 item hari ini)"),
        "{}",
        preview.text
    );
    bot.stop().await;
}

/// An announcement written in both languages (the English text after an `[en]` line) reaches
/// each user in their language, under the operator's header; the preview shows both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn announcements_per_language_with_the_operators_header() {
    let admin = ADMIN.to_string();
    let bot = TestBot::start(&[("TGWA_ADMIN_IDS", &admin)]).await;
    bot.pair(A, A_PHONE).await;
    let mark = bot.tg.mark();
    bot.tg.push_message_lang(EN, &format!("/pair {EN_PHONE}"), "en");
    bot.tg.wait_for_text_to_after(mark, EN, "Connected as", WAIT).await;
    bot.say(ADMIN, "/start", "").await;
    let preview = bot
        .say(
            ADMIN,
            "/admin announce Server dipelihara malam ini\n[en]\nMaintenance tonight",
            "Pratinjau pengumuman",
        )
        .await;
    assert!(preview.text.contains("Pengumuman dari operator"), "{}", preview.text);
    assert!(preview.text.contains("Maintenance tonight"), "{}", preview.text);
    assert!(!preview.text.contains("[en]"), "{}", preview.text);
    let mark = bot.tg.mark();
    bot.press(ADMIN, "Kirim ke");
    let got = bot.tg.wait_for_text_to_after(mark, A, "Server dipelihara", WAIT).await;
    assert!(got.text.starts_with("📢 Pengumuman dari operator"), "{}", got.text);
    assert!(!got.text.contains("Maintenance"), "{}", got.text);
    let got = bot
        .tg
        .wait_for_text_to_after(mark, EN, "Maintenance tonight", WAIT)
        .await;
    assert!(
        got.text.starts_with("📢 Announcement from the operator"),
        "{}",
        got.text
    );
    assert!(!got.text.contains("dipelihara"), "{}", got.text);

    // Written in one language only: everyone gets it, each under their own header.
    let mark = bot.tg.mark();
    bot.say(ADMIN, "/admin announce Libur besok", "Pratinjau pengumuman")
        .await;
    bot.press(ADMIN, "Kirim ke");
    let got = bot.tg.wait_for_text_to_after(mark, EN, "Libur besok", WAIT).await;
    assert!(
        got.text.starts_with("📢 Announcement from the operator"),
        "{}",
        got.text
    );
    bot.stop().await;
}

/// A button of a screen that was edited away does nothing and says so (a double tap that
/// raced the edit, an old copy): the menu's «Pesan» pressed again after the message became
/// the Messages screen is refused with a toast and leaves the screen as it is; the current
/// buttons act. A job preview edited into the job's progress no longer starts anything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buttons_of_an_edited_away_screen_do_nothing() {
    let bot = TestBot::start(&[]).await;
    bot.pair(A, A_PHONE).await;
    let menu = bot.say(A, "/menu", "Menu utama").await;
    let old = menu.button_data("Pesan").expect("the menu's Pesan");
    // Pressed on the menu itself (a notice after the pairing may carry a menu too).
    let mark = bot.tg.mark();
    bot.tg.push_callback(A, menu.message_id, &old);
    let messages = bot.tg.wait_for_text_to_after(mark, A, "Pesan</b>", WAIT).await;
    assert_eq!(messages.message_id, menu.message_id, "the menu was edited in place");
    let mark = bot.tg.mark();
    let id = bot.tg.push_callback(A, menu.message_id, &old);
    let ans = bot.tg.wait_for_callback_answer(&id, WAIT).await;
    assert!(ans["text"].as_str().unwrap_or("").contains("sudah lama"), "{ans}");
    assert!(
        !bot.tg
            .calls_after(mark)
            .iter()
            .any(|c| c.method == "editmessagetext" || c.method == "sendmessage"),
        "the old button changed something"
    );
    // The current screen's buttons still act.
    let siaran = messages.button_data("Siaran").expect("the Messages screen's Siaran");
    let mark = bot.tg.mark();
    bot.tg.push_callback(A, menu.message_id, &siaran);
    bot.tg.wait_for_text_to_after(mark, A, "teks pesan siaran", WAIT).await;
    bot.tap(A, "Batal", "Dibatalkan").await;

    // A preview's «Mulai» pressed twice: the second press, from the keyboard the progress
    // replaced, starts nothing and says so.
    bot.broadcast_preview(A, "Halo", &numbers(1)).await;
    let start = bot.button(A, "Mulai");
    let preview = bot.message_with_button(A, &start);
    let mark = bot.tg.mark();
    bot.tg.push_callback(A, preview, &start);
    bot.tg.wait_for_text_to_after(mark, A, "Laporan pekerjaan", WAIT).await;
    let id = bot.tg.push_callback(A, preview, &start);
    let ans = bot.tg.wait_for_callback_answer(&id, WAIT).await;
    assert!(ans["text"].as_str().unwrap_or("").contains("sudah lama"), "{ans}");
    bot.stop().await;
}

/// WhatsApp's reasons in a job report are in the user's words: a broadcast to a number not on
/// WhatsApp reads «nomor tidak terdaftar di WhatsApp», with no English from WhatsApp.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whatsapps_reasons_in_a_report_are_in_the_users_words() {
    let bot = TestBot::start(&[]).await;
    bot.pair(A, A_PHONE).await;
    bot.broadcast_preview(A, "Halo", "6285712345600\n6285712345677").await;
    let mark = bot.tg.mark();
    bot.press(A, "Mulai");
    let report = document_after(&bot, mark, A, "Laporan pekerjaan").await;
    let body = String::from_utf8(report.bytes.clone().expect("report")).unwrap();
    assert!(body.contains("\tgagal\tnomor tidak terdaftar di WhatsApp"), "{body}");
    for english in ["not found", "is not on WhatsApp", "("] {
        assert!(!body.contains(english), "{english:?} in {body}");
    }
    bot.stop().await;
}
