//! Telegram delivery when the Bot API misbehaves: 500s, broken connections, garbled answers,
//! answers that arrive after the client gave up, and 429s for one chat. None is shown twice
//! (a send whose fate is unknown is not repeated), and one user's 429 must not hold back
//! another user's reply.
//!
//! The bot runs with a 50 ms backoff base and a 3 s client timeout so the faults cost little
//! time; a 500 still costs 10 s, because teloxide sleeps that long on every 5xx.

#[path = "support/fake_telegram.rs"]
pub mod fake_telegram;
mod support {
    pub use super::fake_telegram;
    #[path = "app.rs"]
    pub mod app;
}

use std::time::{Duration, Instant};

use support::app::{TestBot, WAIT};

/// Fast retries and a short client timeout, on top of the usual test settings.
const FAST: [(&str, &str); 2] = [
    ("TGWA_TELEGRAM_RETRY_BASE_MS", "50"),
    ("TGWA_TELEGRAM_TIMEOUT_MS", "3000"),
];

/// Longer than the client timeout in [`FAST`].
const LATE: Duration = Duration::from_millis(4500);

async fn start(extra: &[(&str, &str)]) -> TestBot {
    let mut vars: Vec<(&str, &str)> = FAST.to_vec();
    vars.extend_from_slice(extra);
    TestBot::start(&vars).await
}

/// How many of the bot's messages in `chat` contain `needle`.
fn count(bot: &TestBot, chat: i64, needle: &str) -> usize {
    bot.tg.sent_to(chat).iter().filter(|m| m.text.contains(needle)).count()
}

/// Sends `/start` and waits for its last reply (the login prompt, these users have no
/// account): handlers of one chat run in order, so then every earlier handler of `chat` (and
/// its retries) has finished.
async fn settle(bot: &TestBot, chat: i64) {
    let mark = bot.tg.mark();
    bot.tg.push_message(chat, "/start");
    bot.tg
        .wait_for_text_to_after(mark, chat, "belum punya akun WhatsApp", WAIT)
        .await;
}

/// `/menu` as `user`; returns the menu message (with its Help button).
async fn menu(bot: &TestBot, user: i64) -> fake_telegram::Sent {
    let mark = bot.tg.mark();
    bot.tg.push_message(user, "/menu");
    bot.tg.wait_for_button_after(mark, user, "Bantuan", WAIT).await
}

/// Presses Help on the menu message and waits until the press is answered.
async fn press_help(bot: &TestBot, user: i64, menu: &fake_telegram::Sent) {
    let data = menu.button_data("Bantuan").expect("help button");
    let id = bot.tg.push_callback(user, menu.message_id, &data);
    bot.tg.wait_for_callback_answer(&id, WAIT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_500_on_send_message_is_retried_and_the_reply_arrives_once() {
    // teloxide sleeps 10 s before it reads a 5xx answer: a client timeout shorter than that
    // would turn every 500 into a lost answer.
    let bot = start(&[("TGWA_TELEGRAM_TIMEOUT_MS", "15000")]).await;
    let u = 7_100_001;
    bot.tg.fail_next_500("sendMessage", Some(u));
    let mark = bot.tg.mark();
    bot.tg.push_message(u, "/help");
    bot.tg.wait_for_text_to_after(mark, u, "Bantuan", WAIT).await;
    assert_eq!(bot.tg.faults_left(), 0, "the 500 was never hit");
    settle(&bot, u).await;
    assert_eq!(count(&bot, u, "Bantuan"), 1);
    bot.stop().await;
}

/// The `sendMessage` calls to `chat` after `mark` whose text contains `needle`.
fn send_calls(bot: &TestBot, mark: fake_telegram::Mark, chat: i64, needle: &str) -> usize {
    bot.tg
        .calls_after(mark)
        .iter()
        .filter(|c| {
            c.method == "sendmessage"
                && c.chat_id == Some(chat)
                && c.params["text"].as_str().unwrap_or("").contains(needle)
        })
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_broken_after_the_request_left_is_not_repeated() {
    let bot = start(&[]).await;
    let u = 7_100_002;
    // Broken before Telegram did it: the client cannot tell, so it is not sent again (the
    // reply is lost rather than risk showing it twice).
    bot.tg.drop_next("sendMessage", Some(u));
    let mark = bot.tg.mark();
    bot.tg.push_message(u, "/help");
    settle(&bot, u).await;
    assert_eq!(bot.tg.faults_left(), 0, "the broken connection was never hit");
    assert_eq!(send_calls(&bot, mark, u, "Bantuan"), 1, "the send was repeated");
    // Broken after Telegram did it: shown once.
    bot.tg.break_after_next("sendMessage", Some(u));
    let mark = bot.tg.mark();
    bot.tg.push_message(u, "/help");
    settle(&bot, u).await;
    assert_eq!(bot.tg.faults_left(), 0);
    assert_eq!(send_calls(&bot, mark, u, "Bantuan"), 1, "the send was repeated");
    assert_eq!(count(&bot, u, "Bantuan"), 1);
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_garbled_answer_to_a_send_is_not_sent_twice() {
    let bot = start(&[]).await;
    let u = 7_100_010;
    bot.tg.garble_next("sendMessage", Some(u));
    let mark = bot.tg.mark();
    bot.tg.push_message(u, "/help");
    bot.tg.wait_for_text_to_after(mark, u, "Bantuan", WAIT).await;
    settle(&bot, u).await;
    assert_eq!(bot.tg.faults_left(), 0);
    assert_eq!(send_calls(&bot, mark, u, "Bantuan"), 1, "the send was repeated");
    assert_eq!(count(&bot, u, "Bantuan"), 1);
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_whose_answer_comes_too_late_is_not_sent_twice() {
    let bot = start(&[]).await;
    let u = 7_100_003;
    bot.tg.delay_next("sendMessage", Some(u), LATE);
    let mark = bot.tg.mark();
    bot.tg.push_message(u, "/help");
    bot.tg.wait_for_text_to_after(mark, u, "Bantuan", WAIT).await;
    settle(&bot, u).await;
    assert_eq!(count(&bot, u, "Bantuan"), 1);
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edit_whose_answer_is_lost_is_repeated_as_an_edit_not_sent_again() {
    let bot = start(&[]).await;
    let u = 7_100_004;
    let m = menu(&bot, u).await;
    bot.tg.delay_next("editMessageText", Some(u), LATE);
    let mark = bot.tg.mark();
    press_help(&bot, u, &m).await;
    let calls = bot.tg.calls_after(mark);
    assert!(
        calls.iter().all(|c| c.method != "sendmessage"),
        "a lost edit answer produced a new message: {:?}",
        calls.iter().map(|c| &c.method).collect::<Vec<_>>()
    );
    // The menu message itself now shows the help.
    let now = bot
        .tg
        .sent_to(u)
        .into_iter()
        .find(|s| s.message_id == m.message_id)
        .unwrap();
    assert!(now.text.contains("Bantuan"), "{}", now.text);
    assert_eq!(count(&bot, u, "Bantuan"), 1);
    bot.stop().await;
}

/// Opens a menu, makes Telegram refuse the next edit with a 400 `description`, presses Help,
/// and counts the new messages the bot sent instead.
async fn sends_after_refused_edit(bot: &TestBot, user: i64, description: &str) -> usize {
    let m = menu(bot, user).await;
    bot.tg.fail_next("editMessageText", Some(user), 400, description, None);
    let mark = bot.tg.mark();
    press_help(bot, user, &m).await;
    bot.tg
        .calls_after(mark)
        .iter()
        .filter(|c| c.method == "sendmessage")
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edit_falls_back_to_a_new_message_only_when_the_message_is_gone() {
    let bot = start(&[]).await;
    let u = 7_100_005;

    // Gone: a new message.
    assert_eq!(
        sends_after_refused_edit(&bot, u, "Bad Request: message to edit not found").await,
        1
    );
    assert_eq!(count(&bot, u, "Bantuan"), 1);

    // Cannot be edited any more: a new message.
    assert_eq!(
        sends_after_refused_edit(&bot, u, "Bad Request: message can't be edited").await,
        1
    );

    // Any other refusal would fail the same way as a new message: nothing is sent.
    assert_eq!(
        sends_after_refused_edit(&bot, u, "Bad Request: can't parse entities: unsupported start tag").await,
        0
    );
    // "Not modified" is success: an edit Telegram answers so sends nothing. (Pressing Help
    // twice on one menu no longer shows it: the second press comes from the menu the first
    // one edited away, which does nothing since bot17's stale-button check.)
    let m = menu(&bot, u).await;
    bot.tg.fail_next(
        "editMessageText",
        Some(u),
        400,
        "Bad Request: message is not modified: specified new message content and reply markup are exactly the same",
        None,
    );
    let mark = bot.tg.mark();
    press_help(&bot, u, &m).await;
    let calls = bot.tg.calls_after(mark);
    assert!(calls.iter().any(|c| c.method == "editmessagetext"));
    assert_eq!(calls.iter().filter(|c| c.method == "sendmessage").count(), 0);
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_users_429_does_not_delay_another_users_reply() {
    let bot = start(&[]).await;
    let limited = 7_100_006;
    let other = 7_100_007;
    bot.tg.fail_next(
        "sendMessage",
        Some(limited),
        429,
        "Too Many Requests: retry after 3",
        Some(3),
    );
    let mark = bot.tg.mark();
    let t0 = Instant::now();
    bot.tg.push_message(limited, "/help");
    bot.tg.push_message(other, "/help");
    bot.tg.wait_for_text_to_after(mark, other, "Bantuan", WAIT).await;
    let other_took = t0.elapsed();
    bot.tg.wait_for_text_to_after(mark, limited, "Bantuan", WAIT).await;
    let limited_took = t0.elapsed();
    assert!(
        other_took < Duration::from_secs(2),
        "the other user waited {other_took:?}"
    );
    assert!(
        limited_took >= Duration::from_secs(3),
        "retry_after not honoured: {limited_took:?}"
    );
    settle(&bot, limited).await;
    assert_eq!(count(&bot, limited, "Bantuan"), 1);
    assert_eq!(count(&bot, other, "Bantuan"), 1);
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_throttle_on_a_429_is_waited_out_once_not_retried_forever() {
    let bot = start(&[("TGWA_TELEGRAM_THROTTLE", "1")]).await;
    let limited = 7_100_008;
    let other = 7_100_009;
    // A single 429: waited out once, the reply arrives.
    bot.tg.fail_next(
        "sendMessage",
        Some(limited),
        429,
        "Too Many Requests: retry after 1",
        Some(1),
    );
    let mark = bot.tg.mark();
    bot.tg.push_message(limited, "/help");
    bot.tg.wait_for_text_to_after(mark, limited, "Bantuan", WAIT).await;
    settle(&bot, limited).await;
    assert_eq!(count(&bot, limited, "Bantuan"), 1);

    // Telegram refuses twice: one wait, one more try, then the send is given up (teloxide's
    // Throttle would retry until Telegram gives in, holding back every chat meanwhile).
    for _ in 0..2 {
        bot.tg.fail_next(
            "sendMessage",
            Some(limited),
            429,
            "Too Many Requests: retry after 1",
            Some(1),
        );
    }
    let mark = bot.tg.mark();
    bot.tg.push_message(limited, "/lang");
    bot.tg.push_message(other, "/help");
    bot.tg.wait_for_text_to_after(mark, other, "Bantuan", WAIT).await;
    settle(&bot, limited).await;
    assert_eq!(bot.tg.faults_left(), 0);
    let tries = bot
        .tg
        .calls_after(mark)
        .iter()
        .filter(|c| {
            c.method == "sendmessage"
                && c.chat_id == Some(limited)
                && c.params["text"].as_str().unwrap_or("").contains("Pilih bahasa")
        })
        .count();
    assert_eq!(tries, 2, "the 429 was retried more than once");
    bot.stop().await;
}

/// Waits until announcement #1 has no recipient left to send to; returns each recipient's
/// state.
async fn announcement_settled(bot: &TestBot) -> std::collections::HashMap<i64, String> {
    let deadline = Instant::now() + WAIT;
    loop {
        let c = rusqlite::Connection::open(bot.master_db()).unwrap();
        c.busy_timeout(Duration::from_secs(5)).unwrap();
        let mut st = c
            .prepare("SELECT telegram_id, state FROM announcement_recipients")
            .unwrap();
        let rows: std::collections::HashMap<i64, String> = st
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        if !rows.is_empty() && rows.values().all(|s| s != "pending" && s != "running") {
            return rows;
        }
        assert!(Instant::now() < deadline, "the announcement did not finish: {rows:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_announcement_send_with_an_ambiguous_answer_is_unknown_and_sent_once() {
    const TEXT: &str = "Pemeliharaan malam ini pukul 23.00 WIB.";
    let admin: i64 = 7_100_020;
    let users = [7_100_021, 7_100_022, 7_100_023];
    let bot = start(&[("TGWA_ADMIN_IDS", &admin.to_string()), ("TGWA_ANNOUNCE_DELAY_MS", "50")]).await;
    for u in users {
        settle(&bot, u).await;
    }
    let (garbled, reset, fine) = (users[0], users[1], users[2]);
    bot.tg.garble_next("sendMessage", Some(garbled));
    bot.tg.break_after_next("sendMessage", Some(reset));
    bot.say(admin, &format!("/admin announce {TEXT}"), "Pratinjau pengumuman")
        .await;
    bot.press(admin, "Kirim ke 4");
    let states = announcement_settled(&bot).await;
    assert_eq!(bot.tg.faults_left(), 0);
    assert_eq!(states[&garbled], "unknown", "{states:?}");
    assert_eq!(states[&reset], "unknown", "{states:?}");
    assert_eq!(states[&fine], "sent", "{states:?}");
    for u in users {
        // Each under the operator's header.
        let copies = bot.tg.sent_to(u).iter().filter(|m| m.text.ends_with(TEXT)).count();
        assert_eq!(copies, 1, "user {u} got {copies} copies");
    }
    bot.stop().await;
}

/// With the production limiter on, a chat Telegram holds back for 20 s (a 429 with
/// `retry_after` 20) waits alone: another user's menu and the answer to their button press
/// arrive within a second each (teloxide's `Throttle` froze every chat for the 20 s).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_throttle_on_one_chats_429_holds_back_that_chat_only() {
    let bot = start(&[("TGWA_TELEGRAM_THROTTLE", "1")]).await;
    let limited = 7_100_010;
    let other = 7_100_011;
    bot.tg.fail_next(
        "sendMessage",
        Some(limited),
        429,
        "Too Many Requests: retry after 20",
        Some(20),
    );
    let mark = bot.tg.mark();
    bot.tg.push_message(limited, "/help");
    // The 429 has been answered: from here on Telegram holds `limited` back for 20 s.
    bot.tg.wait_for_method_after(mark, "sendMessage", WAIT).await;
    let t0 = Instant::now();
    let mark = bot.tg.mark();
    bot.tg.push_message(other, "/menu");
    let m = bot.tg.wait_for_button_after(mark, other, "Bantuan", WAIT).await;
    let menu_took = t0.elapsed();
    let t1 = Instant::now();
    press_help(&bot, other, &m).await;
    let answer_took = t1.elapsed();
    assert!(
        menu_took < Duration::from_secs(1),
        "the other user's menu took {menu_took:?}"
    );
    assert!(
        answer_took < Duration::from_secs(1),
        "the other user's button took {answer_took:?}"
    );
    // The held chat still gets its reply once, after the 20 s.
    let mark = bot.tg.mark();
    bot.tg
        .wait_for_text_to_after(mark, limited, "Bantuan", Duration::from_secs(40))
        .await;
    assert!(t0.elapsed() >= Duration::from_secs(18), "retry_after not honoured");
    assert_eq!(count(&bot, limited, "Bantuan"), 1);
    bot.stop().await;
}
