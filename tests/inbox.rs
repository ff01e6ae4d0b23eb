//! The inbox (issue 16), tried from outside as its users would: the real dispatcher over the
//! fake Bot API and the simulator, where what one account sends another account's number
//! arrives at that account.

#[path = "support/fake_telegram.rs"]
pub mod fake_telegram;
mod support {
    pub use super::fake_telegram;
    #[path = "app.rs"]
    pub mod app;
}

use std::time::Duration;

use support::app::{TestBot, WAIT};
use support::fake_telegram::Sent;
use tgwa::bot::callback::Cb;
use tgwa::ids::AccountId;

const A: i64 = 7101;
const B: i64 = 7102;
const C: i64 = 7103;
const D: i64 = 7104;
const A_PHONE: &str = "6281271010011";
const B_PHONE: &str = "6281271020022";
const C_PHONE: &str = "6281271030033";

/// Opens the account page of `user`'s active account, then its inbox screen.
async fn open_inbox(bot: &TestBot, user: i64) -> Sent {
    bot.say(user, "/status", "Terakhir diperbarui").await;
    bot.tap(user, "Pesan masuk", "Pesan masuk</b>").await
}

/// Switches `user`'s inbox on (from the account page).
async fn inbox_on(bot: &TestBot, user: i64) {
    open_inbox(bot, user).await;
    bot.tap(user, "Teruskan pesan ke sini", "Diteruskan ke sini: ✅ aktif")
        .await;
}

/// Sends `text` from `user`'s active account to `to` (Pesan > Kirim ke nomor).
async fn send_from(bot: &TestBot, user: i64, to: &str, text: &str) {
    bot.say(user, "/menu", "Menu utama").await;
    bot.tap(user, "Pesan", "Pesan</b>").await;
    bot.tap(user, "Kirim ke nomor", "nomor tujuan").await;
    bot.say(user, &format!("{to}\n{text}"), "Terkirim").await;
}

/// Waits for the forwarded message containing `needle` in `user`'s chat.
async fn forwarded(bot: &TestBot, user: i64, needle: &str) -> Sent {
    bot.tg.wait_for_text_to(user, needle, WAIT).await
}

/// Bot messages to `user` that contain `needle`.
fn count_in(bot: &TestBot, user: i64, needle: &str) -> usize {
    bot.tg.sent_to(user).iter().filter(|m| m.text.contains(needle)).count()
}

/// Waits until the forwarded message `fwd` in `user`'s chat is recorded as the reply link of
/// `phone`'s account (the forwarder writes it right after Telegram's answer, which a test
/// sees before the bot does).
async fn linked(bot: &TestBot, user: i64, phone: &str, fwd: &Sent) {
    let path = bot
        .data_dir()
        .join(user.to_string())
        .join(format!("bot_data-{user}-{phone}.db"));
    until("the reply link", || {
        rusqlite::Connection::open_with_flags(&path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .and_then(|c| {
                c.query_row(
                    "SELECT COUNT(*) FROM inbox_messages WHERE tg_chat = ?1 AND tg_message = ?2",
                    [user, fwd.message_id],
                    |r| r.get::<_, i64>(0),
                )
            })
            .is_ok_and(|n| n == 1)
    })
    .await;
}

/// Waits until `cond` holds, checking as the fake Telegram records calls.
async fn until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT * 3;
    while !cond() {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_reach_their_owner_only_and_replies_go_back_from_the_same_number() {
    let bot = TestBot::start(&[]).await;
    let a_id = bot.pair(A, A_PHONE).await;
    bot.pair(B, B_PHONE).await;
    bot.pair(C, C_PHONE).await;
    inbox_on(&bot, A).await;
    inbox_on(&bot, B).await;

    // B writes to A: A gets it, with B's name and number; B and C get nothing of it.
    send_from(&bot, B, A_PHONE, "halo dari B").await;
    let fwd = forwarded(&bot, A, "halo dari B").await;
    assert!(fwd.text.contains("📩") && fwd.text.contains("+62"), "{}", fwd.text);
    assert_eq!(count_in(&bot, B, "halo dari B"), 0);
    assert_eq!(count_in(&bot, C, "halo dari B"), 0);

    // A answers by replying: the simulator records it from A's number to B's; 👍 confirms.
    linked(&bot, A, A_PHONE, &fwd).await;
    let mark = bot.tg.mark();
    bot.tg.push_reply(A, fwd.message_id, "balasan dari A");
    bot.tg.wait_for_method_after(mark, "setmessagereaction", WAIT).await;
    assert!(bot
        .sent_by(A_PHONE)
        .contains(&(B_PHONE.to_string(), "balasan dari A".to_string())));

    // B gets A's answer and replies with a photo: it reaches A as a photo.
    let to_b = forwarded(&bot, B, "balasan dari A").await;
    linked(&bot, B, B_PHONE, &to_b).await;
    let photo = vec![0xFF, 0xD8, 0xFF, 0xE0, 1, 2, 3, 4];
    let mark = bot.tg.mark();
    bot.tg
        .push_photo_reply(B, to_b.message_id, photo.clone(), "ini fotonya");
    let call = bot.tg.wait_for_method_after(mark, "sendphoto", WAIT).await;
    assert_eq!(call.chat_id, Some(A));
    let got = bot.tg.wait_for_text_to(A, "ini fotonya", WAIT).await;
    assert_eq!(got.bytes.as_deref(), Some(photo.as_slice()));

    // C replays A's link in C's own chat, and presses A's inbox buttons: nothing is sent
    // from A's number, and A's switches stay as they are.
    let before = bot.sent_by(A_PHONE).len();
    bot.say(C, "/menu", "Menu utama").await;
    bot.tg.push_reply(C, fwd.message_id, "dari C lewat A");
    bot.tg.wait_for_text_to(C, "Perintah tidak dikenal", WAIT).await;
    for cb in [
        Cb::InboxToggle(AccountId::new(a_id).unwrap(), false),
        Cb::InboxMentions(AccountId::new(a_id).unwrap(), true),
        Cb::Inbox(AccountId::new(a_id).unwrap(), 0),
    ] {
        let ans = bot.callback(C, &cb).await;
        assert_eq!(ans["show_alert"], true, "{cb:?}: {ans}");
    }
    assert_eq!(bot.sent_by(A_PHONE).len(), before);
    assert!(bot.sent_by(C_PHONE).is_empty());

    // Off: nothing is forwarded. On again: the next one is (and proves the first was not).
    open_inbox(&bot, A).await;
    bot.tap(A, "Matikan penerusan", "Diteruskan ke sini: ⛔ mati").await;
    send_from(&bot, B, A_PHONE, "ketika mati").await;
    inbox_on(&bot, A).await;
    send_from(&bot, B, A_PHONE, "sesudah nyala").await;
    forwarded(&bot, A, "sesudah nyala").await;
    assert_eq!(count_in(&bot, A, "ketika mati"), 0);
    assert_eq!(count_in(&bot, A, "halo dari B"), 1, "each message once");

    // "Pesan masuk" lists B's chat with what it kept.
    let screen = open_inbox(&bot, A).await;
    assert!(
        screen.text.contains("(3)") && screen.text.contains("sesudah nyala"),
        "{}",
        screen.text
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_removal_nothing_of_the_old_inbox_reaches_the_new_owner_and_old_links_are_dead() {
    let bot = TestBot::start(&[]).await;
    bot.pair(A, A_PHONE).await;
    bot.pair(B, B_PHONE).await;
    inbox_on(&bot, A).await;
    send_from(&bot, B, A_PHONE, "rahasia untuk A").await;
    let fwd = forwarded(&bot, A, "rahasia untuk A").await;
    linked(&bot, A, A_PHONE, &fwd).await;

    // A removes the account; D pairs the same number.
    bot.say(A, "/status", "Terakhir diperbarui").await;
    bot.tap(A, "Hapus", "Hapus").await;
    bot.tap(A, "Ya", "dihapus").await;
    bot.pair(D, A_PHONE).await;

    // The new owner's inbox starts off: nothing reaches D or A.
    send_from(&bot, B, A_PHONE, "untuk nomor itu").await;
    // A's old link is dead: A has no account any more, and nothing leaves the number.
    let sent_before = bot.sent_by(A_PHONE).len();
    bot.tg.push_reply(A, fwd.message_id, "balasan lama");
    bot.tg.wait_for_text_to(A, "AKSES DITOLAK", WAIT).await;
    assert_eq!(bot.sent_by(A_PHONE).len(), sent_before);

    // D switches the inbox on: only what arrives from now on, and nothing of A's.
    inbox_on(&bot, D).await;
    send_from(&bot, B, A_PHONE, "untuk D").await;
    forwarded(&bot, D, "untuk D").await;
    for old in ["rahasia untuk A", "untuk nomor itu"] {
        assert_eq!(count_in(&bot, D, old), 0, "{old}");
    }
    assert_eq!(count_in(&bot, A, "untuk nomor itu"), 0);
    assert_eq!(count_in(&bot, A, "untuk D"), 0);
    let screen = open_inbox(&bot, D).await;
    assert!(
        screen.text.contains("1 pesan dari 1 chat") && !screen.text.contains("rahasia"),
        "{}",
        screen.text
    );
}

/// The sum of the counts in the digests sent to `user`.
fn digested(bot: &TestBot, user: i64) -> usize {
    bot.tg
        .sent_to(user)
        .iter()
        .filter_map(|m| {
            let rest = m.text.strip_prefix("📬 <b>")?;
            rest.split(' ').next()?.parse::<usize>().ok()
        })
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_messages_in_a_minute_arrive_as_digests_and_none_is_lost_from_the_list() {
    let bot = TestBot::start(&[("TGWA_INBOX_DIGEST_SECS", "1")]).await;
    bot.pair(A, A_PHONE).await;
    bot.pair(B, B_PHONE).await;
    bot.pair(C, C_PHONE).await;
    inbox_on(&bot, A).await;
    for i in 0..100 {
        let from = if i % 2 == 0 { B } else { C };
        send_from(&bot, from, A_PHONE, &format!("pesan nomor {i:03}")).await;
    }
    until("80 messages in digests", || digested(&bot, A) >= 80).await;
    let single = count_in(&bot, A, "pesan nomor");
    assert_eq!(single, 20, "the rate: 20 a minute one by one");
    assert_eq!(digested(&bot, A), 80);
    // Digests are one message each, not 80.
    let digests = count_in(&bot, A, "pesan baru dari");
    assert!(digests < 10, "{digests} digests");
    // The digest's button opens the list: all 100, from both chats.
    let mark = bot.tg.mark();
    bot.press(A, "Lihat pesan masuk");
    let screen = bot.tg.wait_for_text_to_after(mark, A, "Pesan masuk</b>", WAIT).await;
    assert!(screen.text.contains("100 pesan dari 2 chat"), "{}", screen.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_in_the_middle_of_forwarding_sends_nothing_twice_and_loses_nothing() {
    let bot = TestBot::start(&[("TGWA_INBOX_DIGEST_SECS", "1")]).await;
    bot.pair(A, A_PHONE).await;
    bot.pair(B, B_PHONE).await;
    inbox_on(&bot, A).await;
    // Telegram is slow for A: forwarding is still going when the bot stops.
    for _ in 0..6 {
        bot.tg.delay_next("sendmessage", Some(A), Duration::from_millis(400));
    }
    for i in 0..10 {
        send_from(&bot, B, A_PHONE, &format!("urut {i}")).await;
    }
    until("the first forward", || count_in(&bot, A, "urut ") >= 1).await;
    let bot = bot.restart().await;
    until("all ten accounted for", || {
        let each: usize = (0..10).map(|i| count_in(&bot, A, &format!("urut {i}"))).sum();
        each + digested(&bot, A) >= 10
    })
    .await;
    for i in 0..10 {
        assert!(count_in(&bot, A, &format!("urut {i}")) <= 1, "urut {i} forwarded twice");
    }
    let screen = open_inbox(&bot, A).await;
    assert!(screen.text.contains("10 pesan dari 1 chat"), "{}", screen.text);
}

/// Sends `text` as `user` and waits for a reply containing `want` (for the bot run as a
/// child process).
async fn say_to(tg: &fake_telegram::FakeTelegram, user: i64, text: &str, want: &str) {
    let mark = tg.mark();
    tg.push_message(user, text);
    tg.wait_for_text_to_after(mark, user, want, WAIT).await;
}

/// Presses the newest button labelled like `label` and waits for a reply containing `want`.
async fn tap_on(tg: &fake_telegram::FakeTelegram, user: i64, label: &str, want: &str) {
    let msg = tg
        .sent_to(user)
        .into_iter()
        .rev()
        .find(|m| m.button_data(label).is_some())
        .unwrap_or_else(|| panic!("no button {label:?} in {:#?}", tg.sent_to(user)));
    let mark = tg.mark();
    tg.push_callback(user, msg.message_id, &msg.button_data(label).unwrap_or_default());
    tg.wait_for_text_to_after(mark, user, want, WAIT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_while_a_message_is_being_forwarded_shows_it_once_and_counts_it() {
    let tg = fake_telegram::FakeTelegram::start().await;
    let dir = tempfile::tempdir().unwrap();
    let extra = vec![
        ("TGWA_INBOX_DIGEST_SECS".to_string(), "1".to_string()),
        ("RUST_LOG".to_string(), "error".to_string()),
    ];
    let mut child = support::app::spawn_binary(dir.path(), &tg.url(), &extra);
    say_to(&tg, A, &format!("/pair {A_PHONE}"), "Terhubung sebagai").await;
    say_to(&tg, B, &format!("/pair {B_PHONE}"), "Terhubung sebagai").await;
    say_to(&tg, A, "/status", "Terakhir diperbarui").await;
    tap_on(&tg, A, "Pesan masuk", "Pesan masuk</b>").await;
    tap_on(&tg, A, "Teruskan pesan ke sini", "✅ aktif").await;
    // Telegram shows the first forward at once but answers it only after 30 s: the process
    // is killed while it waits.
    tg.delay_next("sendmessage", Some(A), Duration::from_secs(30));
    for i in 0..6 {
        say_to(&tg, B, "/menu", "Menu utama").await;
        tap_on(&tg, B, "Pesan", "Pesan</b>").await;
        tap_on(&tg, B, "Kirim ke nomor", "nomor tujuan").await;
        say_to(&tg, B, &format!("{A_PHONE}\ncrash {i}"), "Terkirim").await;
    }
    tg.wait_for_text_to(A, "crash 0", WAIT).await;
    // All six are stored (the simulator hands a message over once; a kill before the
    // supervisor stores it would lose it, as a crash before WhatsApp's receipt would not).
    let data = dir
        .path()
        .join(format!("DB USER TELEGRAM/{A}/bot_data-{A}-{A_PHONE}.db"));
    until("six stored", || {
        rusqlite::Connection::open_with_flags(&data, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .and_then(|c| c.query_row("SELECT COUNT(*) FROM inbox_messages", [], |r| r.get::<_, i64>(0)))
            .is_ok_and(|n| n == 6)
    })
    .await;
    child.kill().expect("SIGKILL");
    child.wait().expect("reaped");
    let mut child = support::app::spawn_binary(dir.path(), &tg.url(), &extra);
    for i in 1..6 {
        tg.wait_for_text_to(A, &format!("crash {i}"), WAIT).await;
    }
    // The one in doubt is not sent again but counted in a digest.
    tg.wait_for_text_to(A, "1 pesan baru dari 1 chat", WAIT).await;
    for i in 0..6 {
        let n = tg
            .sent_to(A)
            .iter()
            .filter(|m| m.text.contains(&format!("crash {i}")))
            .count();
        assert_eq!(n, 1, "crash {i} shown {n} times");
    }
    say_to(&tg, A, "/status", "Terakhir diperbarui").await;
    tap_on(&tg, A, "Pesan masuk", "6 pesan dari 1 chat").await;
    child.kill().ok();
    child.wait().ok();
}

/// Posts `text` as `user` in the group named `name` (from `/groups`).
async fn post_in_group(bot: &TestBot, user: i64, name: &str, text: &str) {
    let mark = bot.tg.mark();
    bot.tg.push_message(user, "/groups");
    let list = bot.tg.wait_for_button_after(mark, user, name, WAIT).await;
    let mark = bot.tg.mark();
    bot.tg
        .push_callback(user, list.message_id, &list.button_data(name).unwrap_or_default());
    bot.tg.wait_for_text_to_after(mark, user, "Anggota", WAIT).await;
    bot.tap(user, "Kirim pesan", "Ketik teks").await;
    bot.say(user, text, "Pesan terkirim ke grup").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_messages_are_forwarded_only_when_they_mention_the_account_and_that_is_on() {
    let bot = TestBot::start(&[]).await;
    bot.pair(A, A_PHONE).await;
    bot.pair(B, B_PHONE).await;
    // A creates a group with B in it.
    bot.say(A, "/menu", "Menu utama").await;
    bot.tap(A, "👥 Grup", "Anda admin").await;
    bot.tap(A, "Buat grup", "pola nama").await;
    bot.say(A, &format!("Grup Kotak {{n}}\n1\n{B_PHONE}"), "Mulai pekerjaan ini")
        .await;
    let mark = bot.tg.mark();
    bot.press(A, "Mulai");
    bot.tg.wait_for_text_to_after(mark, A, "Laporan pekerjaan", WAIT).await;
    inbox_on(&bot, A).await;

    // Inbox on, mentions off: neither a plain group message nor a mention is forwarded.
    post_in_group(&bot, B, "Grup Kotak 1", "halo grup").await;
    post_in_group(&bot, B, "Grup Kotak 1", &format!("tolong @{A_PHONE} sebutan-pertama")).await;
    // Mentions on: only the message that mentions A.
    open_inbox(&bot, A).await;
    bot.tap(A, "Teruskan sebutan di grup", "menyebut akun ini: ✅ aktif")
        .await;
    post_in_group(&bot, B, "Grup Kotak 1", "halo lagi").await;
    post_in_group(&bot, B, "Grup Kotak 1", &format!("tolong @{A_PHONE} sebutan-kedua")).await;
    let fwd = forwarded(&bot, A, "sebutan-kedua").await;
    assert!(fwd.text.contains("👥 grup"), "{}", fwd.text);
    for not in ["halo grup", "sebutan-pertama", "halo lagi"] {
        assert_eq!(count_in(&bot, A, not), 0, "{not}");
    }
    // A private message still comes through.
    send_from(&bot, B, A_PHONE, "pribadi").await;
    forwarded(&bot, A, "pribadi").await;
}

/// The same, over the real adapter and the fake WhatsApp server (a fake build): a person's
/// phone writes through `tgwa fake send`, and `tgwa fake offline/online` makes the outage.
#[cfg(feature = "insecure-fake-whatsapp")]
mod over_the_fake {
    use super::*;
    use std::path::Path;
    use std::process::Output;

    const FRIEND: &str = "6281271097199";

    fn fake_env() -> Vec<(String, String)> {
        vec![
            ("TGWA_WA_BACKEND".into(), "fake".into()),
            ("RUST_LOG".into(), "error".into()),
        ]
    }

    /// `tgwa fake <args>` on the data directory under `dir`, until it succeeds.
    fn fake(dir: &Path, api: &str, args: &[&str]) -> Output {
        let deadline = std::time::Instant::now() + WAIT;
        loop {
            let out = support::app::tgwa_fake(dir, api, &fake_env(), args);
            if out.status.success() {
                return out;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "tgwa fake {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_backlog_after_an_outage_arrives_once_each_in_order_marked_delayed_and_replies_go_back() {
        let tg = fake_telegram::FakeTelegram::start().await;
        let dir = tempfile::tempdir().unwrap();
        let (d, api) = (dir.path(), tg.url());
        let mut child = support::app::spawn_binary(d, &api, &fake_env());
        say_to(&tg, A, &format!("/pair {A_PHONE}"), "Terhubung sebagai").await;
        say_to(&tg, A, "/status", "Terakhir diperbarui").await;
        tap_on(&tg, A, "Pesan masuk", "Pesan masuk</b>").await;
        tap_on(&tg, A, "Teruskan pesan ke sini", "✅ aktif").await;

        // Once the account is logged in (right after pairing the client reconnects, and what
        // arrives meanwhile is queued like any backlog), a person writes: the owner gets it
        // with the push name and number, not delayed.
        until_connected(&tg, A).await;
        fake(d, &api, &["send", "--from", FRIEND, "--to", A_PHONE, "langsung"]);
        let now = tg.wait_for_text_to(A, "langsung", WAIT).await;
        assert!(
            now.text.contains("Fake 7199") && now.text.contains("+62 812-7109-7199"),
            "{}",
            now.text
        );
        assert!(!now.text.contains("tertunda"), "{}", now.text);

        // The account is cut off; three messages wait at the server and arrive at the next
        // login, each once, in order, marked as delayed.
        fake(d, &api, &["offline", A_PHONE]);
        for i in 1..=3 {
            fake(
                d,
                &api,
                &["send", "--from", FRIEND, "--to", A_PHONE, &format!("antre {i}")],
            );
        }
        fake(d, &api, &["online", A_PHONE]);
        let mut at = Vec::new();
        for i in 1..=3 {
            let m = tg
                .wait_for_text_to(A, &format!("antre {i}"), Duration::from_secs(60))
                .await;
            assert!(m.text.contains("tertunda"), "{}", m.text);
            at.push(m.message_id);
        }
        assert!(at.windows(2).all(|w| w[0] < w[1]), "in order: {at:?}");
        for i in 1..=3 {
            assert_eq!(count_in_chat(&tg, A, &format!("antre {i}")), 1);
        }

        // A reply goes back to the person from the account's number.
        tg.push_reply(A, now.message_id, "sudah diterima");
        let deadline = std::time::Instant::now() + WAIT;
        loop {
            let out = fake(d, &api, &["sent", "--json"]);
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
            let back = v["data"]
                .as_array()
                .is_some_and(|l| l.iter().any(|m| m["from"] == A_PHONE && m["text"] == "sudah diterima"));
            if back {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the reply never reached the server: {v}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        child.kill().ok();
        child.wait().ok();
    }

    /// The fake backend, with digests a second apart.
    fn digest_env() -> Vec<(String, String)> {
        let mut env = fake_env();
        env.push(("TGWA_INBOX_DIGEST_SECS".into(), "1".into()));
        env
    }

    /// The bot over the fake, with digests a second apart; A pairs and turns the inbox on.
    async fn inbox_on_over_the_fake() -> (fake_telegram::FakeTelegram, tempfile::TempDir, std::process::Child) {
        let tg = fake_telegram::FakeTelegram::start().await;
        let dir = tempfile::tempdir().unwrap();
        let child = support::app::spawn_binary(dir.path(), &tg.url(), &digest_env());
        say_to(&tg, A, &format!("/pair {A_PHONE}"), "Terhubung sebagai").await;
        say_to(&tg, A, "/status", "Terakhir diperbarui").await;
        tap_on(&tg, A, "Pesan masuk", "Pesan masuk</b>").await;
        tap_on(&tg, A, "Teruskan pesan ke sini", "✅ aktif").await;
        (tg, dir, child)
    }

    /// How many messages the digests sent to `user` counted.
    fn digested_in(tg: &fake_telegram::FakeTelegram, user: i64) -> usize {
        tg.sent_to(user)
            .iter()
            .filter_map(|m| m.text.strip_prefix("📬 <b>")?.split(' ').next()?.parse::<usize>().ok())
            .sum()
    }

    /// Waits until `user`'s account page says it is logged in.
    async fn until_connected(tg: &fake_telegram::FakeTelegram, user: i64) {
        let deadline = std::time::Instant::now() + WAIT;
        loop {
            let mark = tg.mark();
            tg.push_message(user, "/status");
            let page = tg.wait_for_text_to_after(mark, user, "Terakhir diperbarui", WAIT).await;
            if page.text.contains("🟢 terhubung") {
                return;
            }
            assert!(std::time::Instant::now() < deadline, "never connected: {}", page.text);
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Issue 15: thirty messages sent while the account was cut off wait at the server and
    /// arrive after it reconnects, each counted once: stored once, shown once (one by one up
    /// to the owner's rate, the rest in a digest), and all thirty in the list.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn thirty_messages_sent_while_offline_arrive_after_the_reconnect_counted_once_each() {
        let (tg, dir, mut child) = inbox_on_over_the_fake().await;
        let (d, api) = (dir.path(), tg.url());
        until_connected(&tg, A).await;

        fake(d, &api, &["offline", A_PHONE]);
        for i in 1..=30 {
            fake(
                d,
                &api,
                &["send", "--from", FRIEND, "--to", A_PHONE, &format!("luring {i:02}")],
            );
        }
        // Nothing reached the owner while the account was cut off.
        assert_eq!(count_in_chat(&tg, A, "luring "), 0);
        fake(d, &api, &["online", A_PHONE]);

        let digested = |tg: &fake_telegram::FakeTelegram| digested_in(tg, A);
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while digested(&tg) + count_in_chat(&tg, A, "luring ") < 30 {
            assert!(
                std::time::Instant::now() < deadline,
                "only {} of 30 accounted for",
                digested(&tg) + count_in_chat(&tg, A, "luring ")
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        for i in 1..=30 {
            assert!(
                count_in_chat(&tg, A, &format!("luring {i:02}")) <= 1,
                "luring {i:02} shown twice"
            );
        }
        assert_eq!(
            digested(&tg) + count_in_chat(&tg, A, "luring "),
            30,
            "each counted once"
        );
        // Stored once each, all marked as having waited at the server.
        let stored: (i64, i64, i64) =
            rusqlite::Connection::open(d.join(format!("DB USER TELEGRAM/{A}/bot_data-{A}-{A_PHONE}.db")))
                .unwrap()
                .query_row(
                    "SELECT COUNT(*), COUNT(DISTINCT wa_id), COALESCE(SUM(offline), 0) FROM inbox_messages
             WHERE text LIKE 'luring %'",
                    [],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .unwrap();
        assert_eq!(stored, (30, 30, 30));
        say_to(&tg, A, "/status", "Terakhir diperbarui").await;
        tap_on(&tg, A, "Pesan masuk", "30 pesan dari 1 chat").await;
        child.kill().ok();
        child.wait().ok();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_hundred_messages_from_phones_arrive_as_digests_and_the_list_keeps_them_all() {
        let (tg, dir, mut child) = inbox_on_over_the_fake().await;
        let (d, api) = (dir.path(), tg.url());
        for i in 0..100 {
            let from = ["6281271097101", "6281271097102", "6281271097103"][i % 3];
            fake(
                d,
                &api,
                &["send", "--from", from, "--to", A_PHONE, &format!("banjir {i:03}")],
            );
        }
        let digested = |tg: &fake_telegram::FakeTelegram| digested_in(tg, A);
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while digested(&tg) + count_in_chat(&tg, A, "banjir ") < 100 {
            assert!(
                std::time::Instant::now() < deadline,
                "only {} accounted for",
                digested(&tg)
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(count_in_chat(&tg, A, "banjir "), 20, "20 one by one");
        assert_eq!(digested(&tg), 80);
        say_to(&tg, A, "/status", "Terakhir diperbarui").await;
        tap_on(&tg, A, "Pesan masuk", "100 pesan dari 3 chat").await;
        child.kill().ok();
        child.wait().ok();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sigkill_while_forwarding_a_backlog_shows_each_message_once_and_loses_none() {
        let (tg, dir, mut child) = inbox_on_over_the_fake().await;
        let (d, api) = (dir.path(), tg.url());
        fake(d, &api, &["offline", A_PHONE]);
        for i in 1..=5 {
            fake(
                d,
                &api,
                &["send", "--from", FRIEND, "--to", A_PHONE, &format!("backlog {i}")],
            );
        }
        // The first forward is shown but Telegram's answer is late: the process dies waiting.
        tg.delay_next("sendmessage", Some(A), Duration::from_secs(30));
        fake(d, &api, &["online", A_PHONE]);
        tg.wait_for_text_to(A, "backlog 1", Duration::from_secs(60)).await;
        let data = d.join(format!("DB USER TELEGRAM/{A}/bot_data-{A}-{A_PHONE}.db"));
        until("the backlog stored", || {
            rusqlite::Connection::open_with_flags(&data, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
                .and_then(|c| c.query_row("SELECT COUNT(*) FROM inbox_messages", [], |r| r.get::<_, i64>(0)))
                .is_ok_and(|n| n == 5)
        })
        .await;
        child.kill().expect("SIGKILL");
        child.wait().expect("reaped");
        let mut child = support::app::spawn_binary(d, &api, &digest_env());
        for i in 2..=5 {
            tg.wait_for_text_to(A, &format!("backlog {i}"), Duration::from_secs(60))
                .await;
        }
        tg.wait_for_text_to(A, "1 pesan baru dari 1 chat", WAIT).await;
        for i in 1..=5 {
            assert_eq!(count_in_chat(&tg, A, &format!("backlog {i}")), 1, "backlog {i}");
        }
        say_to(&tg, A, "/status", "Terakhir diperbarui").await;
        tap_on(&tg, A, "Pesan masuk", "5 pesan dari 1 chat").await;
        child.kill().ok();
        child.wait().ok();
    }

    fn count_in_chat(tg: &fake_telegram::FakeTelegram, user: i64, needle: &str) -> usize {
        tg.sent_to(user).iter().filter(|m| m.text.contains(needle)).count()
    }
}

/// The real adapter's mapping of what the inbox needs: kinds, captions and file names, push
/// names, the offline flag, mentions of the account, and no status updates.
#[test]
fn the_real_adapter_maps_kinds_push_names_offline_and_mentions() {
    use std::sync::Arc;
    use tgwa::wa::real::events::map_messages_for;
    use tgwa::wa::{MessageKind, WaEvent};
    use whatsapp_rust::prelude::{wa, MessageField, MessageInfo};
    use whatsapp_rust::types::events::{InboundMessage, MessageBatch};
    use whatsapp_rust::types::message::MessageSource;
    use whatsapp_rust::Jid;

    let jid = |s: &str| s.parse::<Jid>().expect("jid");
    let one = |id: &str, chat: &str, offline: bool, message: wa::Message| {
        let group = chat.ends_with("@g.us");
        InboundMessage::builder()
            .message(Arc::new(message))
            .info(Arc::new(MessageInfo {
                source: MessageSource {
                    chat: jid(chat),
                    sender: jid("6281234567890@s.whatsapp.net"),
                    is_group: group,
                    ..Default::default()
                },
                id: id.to_string(),
                push_name: "Budi".into(),
                is_offline: offline,
                ..Default::default()
            }))
            .build()
    };
    let me = "6281299990000".to_string();
    let mention = wa::Message {
        extended_text_message: MessageField::some(wa::message::ExtendedTextMessage {
            text: Some("tolong".into()),
            context_info: MessageField::some(wa::ContextInfo {
                mentioned_jid: vec![format!("{me}@s.whatsapp.net")],
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    let image = wa::Message {
        image_message: MessageField::some(wa::message::ImageMessage {
            caption: Some("fotonya".into()),
            ..Default::default()
        }),
        ..Default::default()
    };
    let document = wa::Message {
        document_message: MessageField::some(wa::message::DocumentMessage {
            file_name: Some("laporan.pdf".into()),
            ..Default::default()
        }),
        ..Default::default()
    };
    let voice = wa::Message {
        audio_message: MessageField::some(wa::message::AudioMessage::default()),
        ..Default::default()
    };
    let status = wa::Message {
        conversation: Some("status".into()),
        ..Default::default()
    };
    let pn = "6281234567890@s.whatsapp.net";
    let batch = MessageBatch::builder()
        .messages(Arc::from(vec![
            one("m", "120363000000000001@g.us", false, mention),
            one("i", pn, true, image),
            one("d", pn, false, document),
            one("v", pn, false, voice),
            one("s", "status@broadcast", false, status),
        ]))
        .origin(whatsapp_rust::types::events::BatchOrigin::OfflineDrain)
        .build();
    let got: Vec<(String, MessageKind, String, bool, bool, String)> = map_messages_for(&batch, &[me])
        .into_iter()
        .filter_map(|e| match e {
            WaEvent::Message { id, text, meta, .. } => {
                Some((id, meta.kind, text, meta.offline, meta.mentions_me, meta.push_name))
            }
            _ => None,
        })
        .collect();
    let row = |id: &str, k, t: &str, off, men| (id.to_string(), k, t.to_string(), off, men, "Budi".to_string());
    assert_eq!(
        got,
        vec![
            row("m", MessageKind::Text, "tolong", false, true),
            row("i", MessageKind::Image, "fotonya", true, false),
            row("d", MessageKind::Document, "laporan.pdf", false, false),
            row("v", MessageKind::Voice, "", false, false),
        ]
    );
}
