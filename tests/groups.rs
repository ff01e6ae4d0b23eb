//! Groups, links, members, messages and bulk jobs, driven from Telegram as users would, with
//! two simulated accounts that meet in each other's groups.

#[path = "support/fake_telegram.rs"]
pub mod fake_telegram;
mod support {
    pub use super::fake_telegram;
    #[path = "app.rs"]
    pub mod app;
}

use std::time::Duration;

use support::app::{numbers, TestBot, WAIT};

const A: i64 = 6_000_001;
const B: i64 = 6_000_002;
const A_PHONE: &str = "6281234561001";
const B_PHONE: &str = "6281234561002";

/// Jobs stored in the account's bot data.
fn job_count(bot: &TestBot, owner: i64, phone: &str) -> i64 {
    let p = bot.data_dir().join(format!("{owner}/bot_data-{owner}-{phone}.db"));
    let c = rusqlite::Connection::open_with_flags(p, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    c.query_row("SELECT COUNT(*) FROM jobs", [], |r| r.get(0)).unwrap()
}

/// Sends `text` as `user` and waits for a reply with a button labelled like `label`.
async fn say_for_button(bot: &TestBot, user: i64, text: &str, label: &str) -> fake_telegram::Sent {
    let mark = bot.tg.mark();
    bot.tg.push_message(user, text);
    bot.tg.wait_for_button_after(mark, user, label, WAIT).await
}

/// Opens the page of the group named `name` from `/groups`.
async fn open_group(bot: &TestBot, user: i64, name: &str) {
    let list = say_for_button(bot, user, "/groups", name).await;
    let data = list.button_data(name).expect("group button");
    let mark = bot.tg.mark();
    bot.tg.push_callback(user, list.message_id, &data);
    bot.tg.wait_for_text_to_after(mark, user, "Anggota", WAIT).await;
}

/// Confirms the job preview on screen and waits for its report document.
async fn start_job_and_wait(bot: &TestBot, user: i64) -> fake_telegram::Sent {
    let mark = bot.tg.mark();
    bot.press(user, "Mulai");
    bot.tg
        .wait_for_text_to_after(mark, user, "Laporan pekerjaan", Duration::from_secs(60))
        .await
}

/// Opens the groups menu through /menu.
async fn open_groups(bot: &TestBot, user: i64) {
    bot.say(user, "/menu", "Menu utama").await;
    bot.tap(user, "👥 Grup", "Anda admin").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_export_join_list_members_and_broadcast_across_two_accounts() {
    let bot = TestBot::start(&[]).await;
    bot.pair(A, A_PHONE).await;
    bot.pair(B, B_PHONE).await;

    // A creates five groups from a pattern, after a preview.
    open_groups(&bot, A).await;
    bot.tap(A, "Buat grup", "pola nama").await;
    let preview = bot.say(A, "Grup Arisan {n}\n5", "Mulai pekerjaan ini").await;
    assert!(preview.text.contains("Grup Arisan 1") && preview.text.contains("Grup Arisan 5"));
    assert_eq!(job_count(&bot, A, A_PHONE), 1);
    let report = start_job_and_wait(&bot, A).await;
    let body = String::from_utf8(report.bytes.clone().expect("report file")).unwrap();
    assert_eq!(body.lines().filter(|l| l.contains("\tberhasil\t")).count(), 5, "{body}");

    // A exports the links as .txt and .csv.
    open_groups(&bot, A).await;
    let mark = bot.tg.mark();
    bot.press(A, "Ekspor tautan");
    bot.tg.wait_for_method_after(mark, "senddocument", WAIT).await;
    let csv = loop {
        let docs: Vec<_> = bot
            .tg
            .sent_to(A)
            .into_iter()
            .filter(|m| m.file_name.is_some())
            .collect();
        if let Some(c) = docs.iter().find(|m| m.file_name.as_deref().unwrap().ends_with(".csv")) {
            break c.clone();
        }
        bot.tg.wait_for_method_after(mark, "senddocument", WAIT).await;
    };
    let txt = bot
        .tg
        .sent_to(A)
        .into_iter()
        .find(|m| {
            m.file_name
                .as_deref()
                .is_some_and(|n| n.ends_with(".txt") && n.contains("link"))
        })
        .expect("links .txt");
    let links = String::from_utf8(txt.bytes.clone().unwrap()).unwrap();
    assert_eq!(
        links
            .lines()
            .filter(|l| l.starts_with("https://chat.whatsapp.com/"))
            .count(),
        5,
        "{links}"
    );
    let csv_body = String::from_utf8(csv.bytes.clone().unwrap()).unwrap();
    assert!(csv_body.contains("Grup Arisan 3"), "{csv_body}");

    // B joins all five from the uploaded .txt.
    open_groups(&bot, B).await;
    bot.tap(B, "Gabung grup", "Tempel tautan").await;
    let mark = bot.tg.mark();
    bot.tg.push_document(B, "links.txt", links.as_bytes().to_vec(), None);
    bot.tg
        .wait_for_text_to_after(mark, B, "Mulai pekerjaan ini", WAIT)
        .await;
    let report = start_job_and_wait(&bot, B).await;
    let body = String::from_utf8(report.bytes.clone().unwrap()).unwrap();
    assert_eq!(body.lines().filter(|l| l.contains("bergabung")).count(), 5, "{body}");

    // A's member list of one group shows B's number.
    open_group(&bot, A, "Grup Arisan 2").await;
    let members = bot.tap(A, "👤 Anggota", "1002").await;
    assert!(
        members.text.contains("1001") && members.text.contains("1002"),
        "{}",
        members.text
    );

    // B broadcasts one text to all its groups: exactly five messages are recorded.
    let before = bot.sent_by(B_PHONE).len();
    bot.say(B, "/menu", "Menu utama").await;
    bot.tap(B, "Pesan", "Pesan</b>").await;
    bot.tap(B, "Siaran", "teks pesan siaran").await;
    bot.say(B, "Halo semua dari B", "Kirim ke mana").await;
    bot.tap(B, "Semua grup saya", "Mulai pekerjaan ini").await;
    start_job_and_wait(&bot, B).await;
    let sent = bot.sent_by(B_PHONE);
    assert_eq!(sent.len() - before, 5, "{sent:?}");
    assert!(sent
        .iter()
        .all(|(to, text)| to.ends_with("@g.us") && text == "Halo semua dari B"));
    bot.stop().await;
}

/// 200 numbers, a little pacing so a restart lands in the middle.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_interrupted_by_a_restart_finishes_with_every_item_done_exactly_once() {
    let bot = TestBot::start(&[("TGWA_JOB_ITEM_DELAY_MS", "25")]).await;
    bot.pair(A, A_PHONE).await;
    bot.broadcast_preview(A, "Promo sekali saja", &numbers(200)).await;
    let mark = bot.tg.mark();
    bot.press(A, "Mulai");
    bot.tg.wait_for_method_after(mark, "answercallbackquery", WAIT).await;
    // Wait until about half the items went out, then restart the bot.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while bot.sent_by(A_PHONE).len() < 100 {
        assert!(tokio::time::Instant::now() < deadline, "the job did not progress");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let bot = bot.restart().await;
    let at_restart = bot.sent_by(A_PHONE).len();
    assert!(
        at_restart < 200,
        "the restart came too late to test anything ({at_restart})"
    );
    bot.tg
        .wait_for_text_to(A, "Laporan pekerjaan", Duration::from_secs(90))
        .await;
    let sent = bot.sent_by(A_PHONE);
    assert_eq!(sent.len(), 200, "every item exactly once");
    let mut to: Vec<&str> = sent.iter().map(|(t, _)| t.as_str()).collect();
    to.sort();
    to.dedup();
    assert_eq!(to.len(), 200, "no number got two messages");
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_resume_and_cancel_work_for_the_owner_only() {
    let bot = TestBot::start(&[("TGWA_JOB_ITEM_DELAY_MS", "150")]).await;
    bot.pair(A, A_PHONE).await;
    bot.pair(B, B_PHONE).await;
    bot.broadcast_preview(A, "Pelan-pelan", &numbers(60)).await;
    bot.tap(A, "Mulai", "berjalan").await;

    // B presses A's Pause button: refused, the job keeps running.
    let pause = bot.button(A, "Jeda");
    let id = bot.tg.push_callback(B, 1, &pause);
    let ans = bot.tg.wait_for_callback_answer(&id, WAIT).await;
    assert_eq!(ans["show_alert"], true, "{ans}");

    // The owner pauses: nothing more is sent.
    bot.tap(A, "Jeda", "dijeda").await;
    let paused_at = bot.sent_by(A_PHONE).len();
    let resume = bot.button(A, "Lanjutkan");
    let id = bot.tg.push_callback(B, 1, &resume);
    assert_eq!(bot.tg.wait_for_callback_answer(&id, WAIT).await["show_alert"], true);
    // A wait of several item delays: a paused job must not move.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(bot.sent_by(A_PHONE).len() <= paused_at + 1, "a paused job kept sending");

    bot.tap(A, "Lanjutkan", "berjalan").await;
    let deadline = tokio::time::Instant::now() + WAIT;
    while bot.sent_by(A_PHONE).len() < paused_at + 3 {
        assert!(tokio::time::Instant::now() < deadline, "resume did not resume");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let cancel = bot.button(A, "Batal");
    let id = bot.tg.push_callback(B, 1, &cancel);
    assert_eq!(bot.tg.wait_for_callback_answer(&id, WAIT).await["show_alert"], true);
    // A running job is cancelled once the owner confirms (issue 17).
    bot.tap(A, "Batal", "Batalkan pekerjaan").await;
    bot.tap(A, "Ya", "dibatalkan").await;
    let cancelled_at = bot.sent_by(A_PHONE).len();
    tokio::time::sleep(Duration::from_millis(600)).await;
    let after = bot.sent_by(A_PHONE).len();
    assert!(
        after <= cancelled_at + 1 && after < 60,
        "a cancelled job kept sending ({after})"
    );
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_logged_out_accounts_job_pauses_and_another_accounts_job_finishes() {
    let bot = TestBot::start(&[("TGWA_JOB_ITEM_DELAY_MS", "100")]).await;
    let doomed = "6281234560401";
    // B's job waits in its preview while A links a number that the phone will log out 3 s
    // after it connects; A starts a long job at once.
    bot.pair(B, B_PHONE).await;
    bot.broadcast_preview(B, "Dari akun yang sehat", &numbers(20)).await;
    bot.pair(A, doomed).await;
    bot.broadcast_preview(A, "Dari akun yang akan logout", &numbers(200))
        .await;
    let mark = bot.tg.mark();
    bot.press(A, "Mulai");
    bot.tg.wait_for_method_after(mark, "answercallbackquery", WAIT).await;
    start_job_and_wait(&bot, B).await;
    assert_eq!(bot.sent_by(B_PHONE).len(), 20);

    let notice = bot
        .tg
        .wait_for_text_to(A, "akun logout atau diblokir", Duration::from_secs(30))
        .await;
    assert!(notice.text.contains("Pekerjaan"), "{}", notice.text);
    assert!(
        bot.sent_by(doomed).len() < 200,
        "the job should have stopped at the logout"
    );
    for t in bot.tg.sent_to(B).into_iter().map(|m| m.text) {
        assert!(!t.contains("logout atau diblokir"), "B was told about A's job: {t}");
    }
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_a_reply_and_creates_no_job() {
    let bot = TestBot::start(&[("TGWA_UPLOAD_MAX_BYTES", "4000"), ("TGWA_JOB_MAX_ITEMS", "50")]).await;
    bot.pair(A, A_PHONE).await;
    bot.pair(B, B_PHONE).await;

    // Malformed links only.
    open_groups(&bot, A).await;
    bot.tap(A, "Gabung grup", "Tempel tautan").await;
    bot.say(A, "https://example.com/x\nbukan tautan", "Tidak ada item yang valid")
        .await;
    // Bad numbers only.
    bot.say(A, "/menu", "Menu utama").await;
    bot.tap(A, "Pesan", "Pesan</b>").await;
    bot.tap(A, "Cek nomor", "Tempel nomor").await;
    bot.say(A, "abc\n123", "Tidak ada item yang valid").await;
    // Empty, binary and oversized uploads.
    for (name, bytes, want) in [
        ("empty.txt", Vec::new(), "File kosong"),
        ("blob.txt", vec![0u8, 159, 146, 150, 0, 1, 2], "bukan teks"),
        ("big.txt", vec![b'1'; 5000], "terlalu besar"),
    ] {
        bot.say(A, "/menu", "Menu utama").await;
        bot.tap(A, "Pesan", "Pesan</b>").await;
        bot.tap(A, "Cek nomor", "Tempel nomor").await;
        let mark = bot.tg.mark();
        bot.tg.push_document(A, name, bytes, None);
        bot.tg.wait_for_text_to_after(mark, A, want, WAIT).await;
    }
    // A list over the item cap.
    bot.say(A, "/menu", "Menu utama").await;
    bot.tap(A, "Pesan", "Pesan</b>").await;
    bot.tap(A, "Cek nomor", "Tempel nomor").await;
    bot.say(A, &numbers(60), "Terlalu banyak item").await;
    assert_eq!(job_count(&bot, A, A_PHONE), 0, "no job from bad input");

    // A group B is not admin of: B's admin action is refused; a group B left is reported.
    open_groups(&bot, A).await;
    bot.tap(A, "Buat grup", "pola nama").await;
    bot.say(A, "Grup Uji", "Mulai pekerjaan ini").await;
    start_job_and_wait(&bot, A).await;
    open_group(&bot, A, "Grup Uji").await;
    let link = bot.tap(A, "Tautan undangan", "chat.whatsapp.com").await;
    let link = link
        .text
        .split_whitespace()
        .find(|w| w.contains("chat.whatsapp.com"))
        .unwrap()
        .trim_start_matches("<code>")
        .trim_end_matches("</code>")
        .to_string();
    open_groups(&bot, B).await;
    bot.tap(B, "Gabung grup", "Tempel tautan").await;
    bot.say(B, &link, "Mulai pekerjaan ini").await;
    start_job_and_wait(&bot, B).await;
    let b_jobs = job_count(&bot, B, B_PHONE);
    open_group(&bot, B, "Grup Uji").await;
    let mark = bot.tg.mark();
    // B's admin actions are not offered, and the page says why (issue 17, flow 7).
    let page = bot.button(B, "👤 Anggota");
    let page = bot.message_with_button(B, &page);
    let page = bot.tg.sent_to(B).into_iter().find(|m| m.message_id == page).unwrap();
    assert!(page.button_data("📣").is_none(), "{:?}", page.buttons());
    assert!(page.text.contains("bukan admin"), "{}", page.text);
    // B leaves, then uses the old group page: told the group is gone, nothing breaks.
    let group_page_link = bot.button(B, "👤 Anggota");
    let group_page = bot.message_with_button(B, &group_page_link);
    bot.tap(B, "🚪 Keluar", "Keluar dari grup ini").await;
    bot.tap(B, "Ya", "Sudah keluar").await;
    let _ = mark;
    let mark = bot.tg.mark();
    let id = bot.tg.push_callback(B, group_page, &group_page_link);
    let stale = bot.tg.wait_for_callback_answer(&id, WAIT).await;
    // The page was edited into the leave confirmation: its old button does nothing and the
    // toast says the menu is old (bot17); otherwise the reply says the group is gone.
    let said_old = stale["text"].as_str().unwrap_or("").contains("sudah lama");
    let reply = if said_old {
        None
    } else {
        bot.tg
            .try_wait_for_after(
                mark,
                |c| c.method == "editmessagetext" || c.method == "sendmessage",
                WAIT,
            )
            .await
    };
    assert!(said_old || reply.is_some(), "no reply about the left group: {stale}");
    assert_eq!(job_count(&bot, B, B_PHONE), b_jobs, "no job from bad input");
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exports_are_safe_for_spreadsheets_and_uploads_decode_any_bom() {
    let bot = TestBot::start(&[]).await;
    bot.pair(A, A_PHONE).await;

    // A group whose name a spreadsheet would run as a formula.
    open_groups(&bot, A).await;
    bot.tap(A, "Buat grup", "pola nama").await;
    bot.say(A, "=1+2 {n}\n1", "Mulai pekerjaan ini").await;
    start_job_and_wait(&bot, A).await;
    open_groups(&bot, A).await;
    let mark = bot.tg.mark();
    bot.press(A, "Ekspor tautan");
    let csv = loop {
        let found = bot
            .tg
            .sent_to(A)
            .into_iter()
            .find(|m| m.file_name.as_deref().is_some_and(|n| n.ends_with(".csv")));
        if let Some(c) = found {
            break c;
        }
        bot.tg.wait_for_method_after(mark, "senddocument", WAIT).await;
    };
    let bytes = csv.bytes.clone().expect("csv bytes");
    assert!(bytes.starts_with(b"\xEF\xBB\xBF"), "a UTF-8 BOM first");
    let body = String::from_utf8(bytes[3..].to_vec()).unwrap();
    assert!(body.lines().any(|l| l.starts_with("'=1+2 1,")), "{body}");
    assert!(!body.lines().any(|l| l.starts_with('=')), "{body}");

    // The same three numbers uploaded as UTF-8 with a BOM, UTF-16 LE and UTF-16 BE: every line
    // is a number, none is reported invalid.
    let list = "081234567001\n081234567002\n081234567003\n";
    let mut utf8 = b"\xEF\xBB\xBF".to_vec();
    utf8.extend_from_slice(list.as_bytes());
    let (mut le, mut be) = (vec![0xFF, 0xFE], vec![0xFE, 0xFF]);
    for u in list.encode_utf16() {
        le.extend_from_slice(&u.to_le_bytes());
        be.extend_from_slice(&u.to_be_bytes());
    }
    for (name, bytes) in [("bom.txt", utf8), ("utf16le.txt", le), ("utf16be.txt", be)] {
        bot.say(A, "/menu", "Menu utama").await;
        bot.tap(A, "Pesan", "Pesan</b>").await;
        bot.tap(A, "Cek nomor", "Tempel nomor").await;
        let mark = bot.tg.mark();
        bot.tg.push_document(A, name, bytes, None);
        let preview = bot
            .tg
            .wait_for_text_to_after(mark, A, "Mulai pekerjaan ini", WAIT)
            .await;
        assert!(preview.text.contains(": 3"), "{name}: {}", preview.text);
        assert!(!preview.text.contains("tidak valid"), "{name}: {}", preview.text);
        assert!(preview.text.contains("6281234567001"), "{name}: {}", preview.text);
        let id = bot.press(A, "Batal");
        bot.tg.wait_for_callback_answer(&id, WAIT).await;
    }
    bot.stop().await;
}
