//! The Telegram front-end, driven from outside: the real dispatcher and account manager over
//! the simulator, talking to a fake Bot API server on loopback.

#[path = "support/fake_telegram.rs"]
pub mod fake_telegram;
mod support {
    pub use super::fake_telegram;
    #[path = "app.rs"]
    pub mod app;
}

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use support::app::{TestBot, WAIT};
use tgwa::bot::callback::{CallbackCodec, Cb};
use tgwa::ids::{AccountId, PhoneNumber, TelegramId};
use tgwa::wa::GroupId;

const A: i64 = 5_000_001;
const B: i64 = 5_000_002;

fn mode(p: &std::path::Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

/// Every reply the bot sent to `chat`, current text of each message.
fn texts(bot: &TestBot, chat: i64) -> Vec<String> {
    bot.tg.sent_to(chat).into_iter().map(|m| m.text).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_without_an_account_gets_the_login_prompt_and_nothing_else() {
    let bot = TestBot::start(&[]).await;
    let u = 5_100_001;
    for cmd in ["/start", "/menu"] {
        let mark = bot.tg.mark();
        bot.tg.push_message(u, cmd);
        bot.tg
            .wait_for_text_to_after(mark, u, "belum punya akun WhatsApp", WAIT)
            .await;
    }
    for cmd in ["/status", "/groups", "/accounts", "/whatever"] {
        let mark = bot.tg.mark();
        bot.tg.push_message(u, cmd);
        bot.tg.wait_for_text_to_after(mark, u, "AKSES DITOLAK", WAIT).await;
    }
    // Any callback: one of ours for another user, a malformed one, and a well-formed one for
    // an account that does not exist.
    let codec = CallbackCodec::load_or_create(&bot.data_dir().join(".secret")).unwrap();
    let me = TelegramId::new(u).unwrap();
    let acc = AccountId::new(1).unwrap();
    for data in [
        codec.encode(TelegramId::new(42).unwrap(), &Cb::Menu),
        "junk".to_string(),
        codec.encode(me, &Cb::Groups(acc, 0)),
        codec.encode(me, &Cb::Accounts),
    ] {
        let id = bot.tg.push_callback(u, 1, &data);
        let ans = bot.tg.wait_for_callback_answer(&id, WAIT).await;
        assert_eq!(ans["show_alert"], true, "{data}: {ans}");
        assert!(
            ans["text"].as_str().unwrap_or("").contains("AKSES DITOLAK"),
            "{data}: {ans}"
        );
    }
    // English speakers are refused in English.
    let en = 5_100_002;
    let mark = bot.tg.mark();
    bot.tg.push_message_lang(en, "/status", "en");
    bot.tg.wait_for_text_to_after(mark, en, "Access denied", WAIT).await;
    // Group chats get a short redirect.
    let mark = bot.tg.mark();
    bot.tg.push_group_message(-100_123, u, "/menu");
    bot.tg
        .wait_for_text_to_after(mark, -100_123, "chat pribadi", WAIT)
        .await;
    assert_eq!(bot.account_count(), 0);
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pairing_registers_the_account_with_its_files_and_shows_it_in_the_menu() {
    let bot = TestBot::start(&[]).await;
    let mark = bot.tg.mark();
    bot.tg.push_message(A, "/pair 0812-3456-0001");
    let code = bot.tg.wait_for_text_to_after(mark, A, "Kode pairing", WAIT).await;
    // The code is shown as XXXX-XXXX in monospace with instructions.
    let shown = code
        .text
        .split("<code>")
        .nth(1)
        .and_then(|t| t.split("</code>").next())
        .unwrap_or("");
    assert!(
        shown.len() == 9 && shown.as_bytes()[4] == b'-' && shown.chars().all(|c| c == '-' || c.is_ascii_alphanumeric()),
        "no XXXX-XXXX code in {:?}",
        code.text
    );
    assert!(code.text.contains("Perangkat tertaut"));
    assert!(code.buttons().iter().any(|(l, _)| l.contains("Batal")));
    bot.tg.wait_for_text_to_after(mark, A, "Terhubung sebagai", WAIT).await;

    let (_, owner, status) = bot.account_row("6281234560001").expect("row");
    assert_eq!((owner, status.as_str()), (A, "active"));
    let folder = bot.data_dir().join(A.to_string());
    let session = folder.join(format!("whatsmeow-{A}-6281234560001.db"));
    let data = folder.join(format!("bot_data-{A}-6281234560001.db"));
    assert!(session.is_file() && data.is_file());
    assert_eq!(mode(&folder), 0o700);
    assert_eq!(mode(&session), 0o600);
    assert_eq!(mode(&data), 0o600);

    let mark = bot.tg.mark();
    bot.tg.push_message(A, "/menu");
    let menu = bot.tg.wait_for_text_to_after(mark, A, "Menu utama", WAIT).await;
    assert!(menu.text.contains("0001"), "{}", menu.text);
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_pair_requests_each_get_their_own_reply_and_register_nothing() {
    let bot = TestBot::start(&[]).await;
    let u = 5_200_001;
    let cases = [
        ("/pair abc", "tidak valid"),
        ("/pair", "Kirim nomor WhatsApp Anda"),
        ("/pair 123", "tidak valid"),
        ("/pair 0812-3456-0429", "membatasi"),
    ];
    for (cmd, want) in cases {
        let mark = bot.tg.mark();
        bot.tg.push_message(u, cmd);
        bot.tg.wait_for_text_to_after(mark, u, want, WAIT).await;
    }
    assert_eq!(bot.account_count(), 0, "nothing registered by bad requests");
    assert!(bot.account_row("6281234560429").is_none());

    // A number linked to another user.
    bot.pair(A, "6281234560011").await;
    let mark = bot.tg.mark();
    bot.tg.push_message(u, "/pair 6281234560011");
    bot.tg
        .wait_for_text_to_after(mark, u, "tidak dapat ditautkan di sini", WAIT)
        .await;
    assert_eq!(bot.account_row("6281234560011").unwrap().1, A);

    // Five accounts is the per-user limit; the sixth is refused.
    for n in 21..26 {
        bot.pair(u, &format!("62812345600{n}")).await;
    }
    let mark = bot.tg.mark();
    bot.tg.push_message(u, "/pair 6281234560026");
    bot.tg.wait_for_text_to_after(mark, u, "batas 5 akun", WAIT).await;
    assert!(bot.account_row("6281234560026").is_none());
    assert_eq!(bot.account_count(), 6);
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_b_cannot_reach_user_a_by_any_callback() {
    let bot = TestBot::start(&[]).await;
    let a_id = bot.pair(A, "6281234560101").await;
    bot.pair(B, "6281234560102").await;

    // A walks through the menus so their chat holds real buttons of many kinds, and creates a
    // group so group buttons name something real.
    let mark = bot.tg.mark();
    bot.tg.push_message(A, "/menu");
    bot.tg.wait_for_text_to_after(mark, A, "Menu utama", WAIT).await;
    let mark = bot.tg.mark();
    bot.press(A, "Grup");
    bot.tg.wait_for_method_after(mark, "answercallbackquery", WAIT).await;
    let mark = bot.tg.mark();
    bot.press(A, "Buat grup");
    bot.tg.wait_for_method_after(mark, "answercallbackquery", WAIT).await;
    let mark = bot.tg.mark();
    bot.tg.push_message(A, "Rahasia A");
    bot.tg
        .wait_for_text_to_after(mark, A, "Mulai pekerjaan ini", WAIT)
        .await;
    let mark = bot.tg.mark();
    bot.press(A, "Mulai");
    bot.tg.wait_for_text_to_after(mark, A, "Laporan pekerjaan", WAIT).await;
    let mark = bot.tg.mark();
    bot.tg.push_message(A, "/groups");
    let list = bot.tg.wait_for_button_after(mark, A, "Rahasia A", WAIT).await;
    let group_button = list
        .buttons()
        .into_iter()
        .find(|(l, _)| l.contains("Rahasia A"))
        .expect("group button")
        .1;
    let mark = bot.tg.mark();
    bot.tg.push_callback(A, list.message_id, &group_button);
    bot.tg.wait_for_method_after(mark, "answercallbackquery", WAIT).await;

    // 1. Every button A ever received, replayed by B.
    let mut a_data: Vec<String> = bot
        .tg
        .sent_to(A)
        .iter()
        .flat_map(|m| m.buttons().into_iter().map(|(_, d)| d))
        .collect();
    a_data.sort();
    a_data.dedup();
    assert!(
        a_data.len() >= 10,
        "A's chat should hold many buttons, got {}",
        a_data.len()
    );

    // 2. Every callback kind the bot emits, signed for B but naming A's account, group and job.
    let codec = CallbackCodec::load_or_create(&bot.data_dir().join(".secret")).unwrap();
    let b_tid = TelegramId::new(B).unwrap();
    let group_id = bot_group_of(&bot, &group_button, A);
    let a_phone = PhoneNumber::from_digits("6281234560101").unwrap();
    let kinds = Cb::every_kind(AccountId::new(a_id).unwrap(), &group_id, 1, &a_phone);
    let b_data: Vec<String> = kinds.iter().map(|cb| codec.encode(b_tid, cb)).collect();

    let a_before = bot.tg.sent_to(A).len();
    let a_texts_before = texts(&bot, A);
    for data in a_data.iter().chain(b_data.iter()) {
        let id = bot.tg.push_callback(B, 1, data);
        let ans = bot.tg.wait_for_callback_answer(&id, WAIT).await;
        let account_kind = a_data.contains(data)
            || kinds
                .iter()
                .zip(&b_data)
                .any(|(cb, d)| d == data && cb.account().is_some());
        if account_kind {
            assert_eq!(ans["show_alert"], true, "B's press of {data} was not refused: {ans}");
        }
    }
    // A's chat got nothing new and nothing of A's changed; B never saw A's number.
    assert_eq!(bot.tg.sent_to(A).len(), a_before, "a message reached A's chat");
    assert_eq!(texts(&bot, A), a_texts_before, "A's messages were edited");
    for t in texts(&bot, B) {
        assert!(!t.contains("0101"), "B saw A's number: {t}");
        assert!(!t.contains("Rahasia A"), "B saw A's group: {t}");
    }
    let (_, owner, status) = bot.account_row("6281234560101").unwrap();
    assert_eq!((owner, status.as_str()), (A, "active"));
    let refused = bot.refusals(B, "refused%");
    assert!(refused >= a_data.len() as i64, "refusals are audited ({refused})");

    // A still works normally.
    let mark = bot.tg.mark();
    bot.tg.push_message(A, "/groups");
    bot.tg.wait_for_button_after(mark, A, "Rahasia A", WAIT).await;
    bot.stop().await;
}

/// The group JID behind a group button, read back through the codec.
fn bot_group_of(bot: &TestBot, data: &str, owner: i64) -> GroupId {
    let codec = CallbackCodec::load_or_create(&bot.data_dir().join(".secret")).unwrap();
    match codec.decode(TelegramId::new(owner).unwrap(), data) {
        Ok(Cb::Group(_, g)) => g,
        other => panic!("not a group button: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_keeps_accounts_and_old_menus_keep_working() {
    let bot = TestBot::start(&[]).await;
    bot.pair(A, "6281234560201").await;
    let mark = bot.tg.mark();
    bot.tg.push_message(A, "/menu");
    bot.tg.wait_for_text_to_after(mark, A, "Menu utama", WAIT).await;
    let old_accounts_button = bot.button(A, "Akun");
    let old_mid = bot.message_with_button(A, &old_accounts_button);

    let bot = bot.restart().await;
    // The account logs back in by itself.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let mark = bot.tg.mark();
        bot.tg.push_message(A, "/status");
        let s = bot.tg.wait_for_text_to_after(mark, A, "0201", WAIT).await;
        if s.text.contains("terhubung") && !s.text.contains("terputus") {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "not reconnected: {}", s.text);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // A button from before the restart still works.
    let mark = bot.tg.mark();
    let id = bot.tg.push_callback(A, old_mid, &old_accounts_button);
    let ans = bot.tg.wait_for_callback_answer(&id, WAIT).await;
    assert_ne!(ans["show_alert"], true, "{ans}");
    bot.tg.wait_for_text_to_after(mark, A, "Akun Anda", WAIT).await;
    assert_eq!(bot.account_row("6281234560201").unwrap().2, "active");
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_logged_out_account_is_told_to_its_owner_only() {
    let bot = TestBot::start(&[]).await;
    bot.pair(B, "6281234560302").await;
    bot.pair(A, "6281234560401").await;
    bot.tg
        .wait_for_text_to(A, "logout dari ponsel", Duration::from_secs(30))
        .await;
    let a_notice = texts(&bot, A)
        .into_iter()
        .filter(|t| t.contains("logout dari ponsel"))
        .count();
    assert_eq!(a_notice, 1);
    for t in texts(&bot, B) {
        assert!(
            !t.contains("logout dari ponsel") && !t.contains("0401"),
            "B got A's notice: {t}"
        );
    }
    // Marked, never deleted.
    assert_eq!(bot.account_row("6281234560401").unwrap().2, "logged_out");
    assert!(bot
        .data_dir()
        .join(format!("{A}/bot_data-{A}-6281234560401.db"))
        .is_file());
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blocked_user_and_a_429_do_not_stop_replies_to_others() {
    let bot = TestBot::start(&[]).await;
    let blocked = 5_300_001;
    let limited = 5_300_002;
    let other = 5_300_003;
    bot.tg.block_bot_for(blocked);
    bot.tg.fail_next(
        "sendMessage",
        Some(limited),
        429,
        "Too Many Requests: retry after 1",
        Some(1),
    );
    let mark = bot.tg.mark();
    bot.tg.push_message(blocked, "/start");
    bot.tg.push_message(limited, "/start");
    bot.tg.push_message(other, "/start");
    bot.tg.wait_for_text_to_after(mark, other, "Selamat datang", WAIT).await;
    // The 429 was honoured and the reply still arrived.
    bot.tg
        .wait_for_text_to_after(mark, limited, "Selamat datang", WAIT)
        .await;
    // The blocked user is marked and not written to again.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let blocked_flag: i64 = bot
            .master()
            .query_row(
                "SELECT COUNT(*) FROM telegram_users WHERE telegram_id = ?1 AND blocked = 1",
                [blocked],
                |r| r.get(0),
            )
            .unwrap_or(0);
        if blocked_flag == 1 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "blocked user not marked");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mark = bot.tg.mark();
    bot.tg.push_message(other, "/help");
    bot.tg.wait_for_text_to_after(mark, other, "Bantuan", WAIT).await;
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qr_login_sends_a_png_and_links_the_account() {
    let bot = TestBot::start(&[]).await;
    let mark = bot.tg.mark();
    bot.tg.push_message(A, "/qr 0812-3456-0031");
    bot.tg.wait_for_method_after(mark, "sendphoto", WAIT).await;
    let photo = bot
        .tg
        .sent_to(A)
        .into_iter()
        .find(|m| m.file_name.is_some())
        .expect("a photo");
    let png = photo.bytes.expect("photo bytes");
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    assert!(photo.text.contains("+62 812-3456-0031"), "{}", photo.text);
    bot.tg.wait_for_text_to_after(mark, A, "Terhubung sebagai", WAIT).await;
    assert_eq!(bot.account_row("6281234560031").unwrap().2, "active");
    bot.stop().await;
}
