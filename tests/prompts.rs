//! Prompts that wait for the user's text: they name their action and target, end at any
//! other command or button, expire, and survive input that cannot be used.

#[path = "support/fake_telegram.rs"]
pub mod fake_telegram;
mod support {
    pub use super::fake_telegram;
    #[path = "app.rs"]
    pub mod app;
}

use std::time::Duration;

use support::app::{TestBot, WAIT};

const A: i64 = 8_000_001;
const A_PHONE: &str = "6281234568001";
const GROUP: &str = "Arisan RT 1";

/// Messages the simulator recorded as sent by `from` (digits).
fn sent_by(bot: &TestBot, from: &str) -> Vec<(String, String)> {
    tgwa::wa::sim::read_sent_messages(&bot.world_db())
        .expect("read the simulator's record")
        .into_iter()
        .filter(|m| m.from == from)
        .map(|m| (m.to, m.text))
        .collect()
}

/// Sends `text` as `user` and waits for a reply containing `want`.
async fn say(bot: &TestBot, user: i64, text: &str, want: &str) -> fake_telegram::Sent {
    let mark = bot.tg.mark();
    bot.tg.push_message(user, text);
    bot.tg.wait_for_text_to_after(mark, user, want, WAIT).await
}

/// Presses `label` as `user` and waits for a reply (new or edited) containing `want`.
async fn tap(bot: &TestBot, user: i64, label: &str, want: &str) -> fake_telegram::Sent {
    let mark = bot.tg.mark();
    bot.press(user, label);
    bot.tg.wait_for_text_to_after(mark, user, want, WAIT).await
}

/// Presses `label` as `user` and waits until the press is answered.
async fn press(bot: &TestBot, user: i64, label: &str) {
    let id = bot.press(user, label);
    bot.tg.wait_for_callback_answer(&id, WAIT).await;
}

/// The names in the group list of `/groups`.
async fn group_names(bot: &TestBot, user: i64) -> Vec<String> {
    let mark = bot.tg.mark();
    bot.tg.push_message(user, "/groups");
    let list = bot.tg.wait_for_button_after(mark, user, "Cari", WAIT).await;
    list.buttons().into_iter().map(|(label, _)| label).collect()
}

/// A bot with A paired and one group named [`GROUP`], whose page is open.
async fn with_group(extra: &[(&str, &str)]) -> TestBot {
    let bot = TestBot::start(extra).await;
    bot.pair(A, A_PHONE).await;
    say(&bot, A, "/groups", "Anda admin").await;
    tap(&bot, A, "Buat grup", "pola nama").await;
    say(&bot, A, &format!("{GROUP}\n1"), "Mulai pekerjaan ini").await;
    tap(&bot, A, "Mulai", "Laporan pekerjaan").await;
    open_group(&bot).await;
    bot
}

async fn open_group(bot: &TestBot) {
    let mark = bot.tg.mark();
    bot.tg.push_message(A, "/groups");
    let list = bot.tg.wait_for_button_after(mark, A, GROUP, WAIT).await;
    let data = list.button_data(GROUP).expect("group button");
    let mark = bot.tg.mark();
    bot.tg.push_callback(A, list.message_id, &data);
    bot.tg.wait_for_text_to_after(mark, A, "Anggota", WAIT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_typed_after_other_buttons_is_not_posted_into_the_group() {
    let bot = with_group(&[]).await;
    // The prompt names what it will do and where.
    let prompt = tap(&bot, A, "Kirim pesan", "teks pesan untuk grup").await;
    // Four other buttons (on the menu shown after pairing), no command.
    press(&bot, A, "Akun").await;
    press(&bot, A, "Menu").await;
    press(&bot, A, "Bantuan").await;
    press(&bot, A, "Menu").await;
    say(&bot, A, "ok thanks, bye", "Perintah tidak dikenal").await;
    assert!(
        sent_by(&bot, A_PHONE).iter().all(|(_, t)| t != "ok thanks, bye"),
        "a stray text was posted into the group"
    );

    // Only buttons: a prompt, then one other button, then the text.
    open_group(&bot).await;
    tap(&bot, A, "Kirim pesan", "teks pesan untuk grup").await;
    press(&bot, A, "Akun").await;
    say(&bot, A, "still nothing", "Perintah tidak dikenal").await;
    assert!(sent_by(&bot, A_PHONE).iter().all(|(_, t)| t != "still nothing"));

    // The prompt's own Cancel button ends it too.
    open_group(&bot).await;
    tap(&bot, A, "Kirim pesan", "teks pesan untuk grup").await;
    tap(&bot, A, "Batal", "Dibatalkan").await;
    say(&bot, A, "after cancel", "Perintah tidak dikenal").await;

    // And a text right after the prompt is posted.
    open_group(&bot).await;
    tap(&bot, A, "Kirim pesan", "teks pesan untuk grup").await;
    say(&bot, A, "Halo warga RT 1", "Pesan terkirim ke grup").await;
    let sent = sent_by(&bot, A_PHONE);
    assert_eq!(
        sent.iter().filter(|(_, t)| t == "Halo warga RT 1").count(),
        1,
        "{sent:?}"
    );
    assert_eq!(sent.len(), 1, "{sent:?}");
    // The prompt named what it would do and where.
    assert!(
        prompt.text.contains(&format!("Ketik teks pesan untuk grup «{GROUP}»")),
        "{}",
        prompt.text
    );
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_between_rename_and_the_text_cancels_the_rename() {
    let bot = with_group(&[]).await;
    let prompt = tap(&bot, A, "Ganti nama", "✏️").await;
    say(&bot, A, "/status", "Status").await;
    let mark = bot.tg.mark();
    bot.tg.push_message(A, "Nama Dibajak");
    let reply = bot.tg.wait_for_method_after(mark, "sendmessage", WAIT).await;
    let names = group_names(&bot, A).await;
    assert!(!names.iter().any(|n| n.contains("Nama Dibajak")), "renamed: {names:?}");
    assert!(names.iter().any(|n| n.contains(GROUP)), "{names:?}");
    let reply = reply.params["text"].as_str().unwrap_or("").to_string();
    assert!(reply.contains("Perintah tidak dikenal"), "{reply}");
    assert!(
        prompt.text.contains(&format!("Ketik nama baru untuk grup «{GROUP}»")),
        "{}",
        prompt.text
    );
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_after_the_prompt_expired_does_nothing_and_says_so() {
    let bot = with_group(&[("TGWA_PROMPT_TIMEOUT_SECS", "1")]).await;
    tap(&bot, A, "Kirim pesan", "teks pesan untuk grup").await;
    // Let the prompt's second pass (the expiry is what is tested, not this wait).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let reply = say(&bot, A, "hello, late", "sudah habis").await;
    assert!(reply.text.contains(&format!("«{GROUP}»")), "{}", reply.text);
    assert!(sent_by(&bot, A_PHONE).is_empty());
    // The expired prompt is gone: the next text is not taken either.
    say(&bot, A, "hello again", "Perintah tidak dikenal").await;
    assert!(sent_by(&bot, A_PHONE).is_empty());
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_validation_error_asks_again_and_keeps_the_prompt() {
    let bot = with_group(&[]).await;
    tap(&bot, A, "Ganti nama", "✏️").await;
    let again = say(&bot, A, &"x".repeat(101), "maksimal 100 karakter").await;
    assert!(again.text.contains("Ketik nama baru untuk grup"), "{}", again.text);
    say(&bot, A, "Arisan RT 1 Baru", "Nama grup diganti").await;
    let names = group_names(&bot, A).await;
    assert!(names.iter().any(|n| n.contains("Arisan RT 1 Baru")), "{names:?}");

    // A list with nothing usable in it is asked for again, too.
    say(&bot, A, "/menu", "Menu utama").await;
    tap(&bot, A, "Pesan", "Pesan</b>").await;
    tap(&bot, A, "Cek nomor", "Tempel nomor").await;
    say(&bot, A, "abc", "Tidak ada item yang valid").await;
    say(&bot, A, "0812-3456-7890", "Mulai pekerjaan ini").await;
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_upload_download_asks_again_and_keeps_the_prompt() {
    let bot = TestBot::start(&[]).await;
    bot.pair(A, A_PHONE).await;
    say(&bot, A, "/menu", "Menu utama").await;
    tap(&bot, A, "Pesan", "Pesan</b>").await;
    tap(&bot, A, "Cek nomor", "Tempel nomor").await;
    bot.tg.fail_next(
        "getFile",
        None,
        400,
        "Bad Request: file is temporarily unavailable",
        None,
    );
    let list = b"0812-3456-7890\n0813-1111-2222\n".to_vec();
    let mark = bot.tg.mark();
    bot.tg.push_document(A, "numbers.txt", list.clone(), None);
    bot.tg.wait_for_text_to_after(mark, A, "tidak bisa diambil", WAIT).await;
    let mark = bot.tg.mark();
    bot.tg.push_document(A, "numbers.txt", list, None);
    let preview = bot
        .tg
        .wait_for_text_to_after(mark, A, "Mulai pekerjaan ini", WAIT)
        .await;
    assert!(preview.text.contains("6281234567890"), "{}", preview.text);
    bot.stop().await;
}
