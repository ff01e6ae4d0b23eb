//! Hardening from the third outside review, tried as a hostile user would: strangers asking
//! for someone else's number must neither use up the owner's pairing allowance nor hold the
//! number while their own pairing is pending.

#[path = "support/fake_telegram.rs"]
pub mod fake_telegram;
mod support {
    pub use super::fake_telegram;
    #[path = "app.rs"]
    pub mod app;
}

use support::app::{TestBot, WAIT};

const OWNER: i64 = 7_900_001;
/// Strangers: other Telegram users who type the owner's number.
const STRANGERS: [i64; 5] = [7_900_011, 7_900_012, 7_900_013, 7_900_014, 7_900_015];
const PHONE: &str = "6281234569001";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strangers_requests_do_not_use_up_the_owners_pairing_allowance() {
    // Real cooldowns; a code is confirmed 2 s after it is issued.
    let bot = TestBot::start(&[
        ("TGWA_PAIR_COOLDOWN_SECS", "30"),
        ("TGWA_PAIR_MAX_PER_HOUR", "5"),
        ("TGWA_SIM_PAIR_DELAY_MS", "2000"),
    ])
    .await;
    for s in STRANGERS {
        bot.say(s, &format!("/pair {PHONE}"), "Kode pairing untuk").await;
        let mark = bot.tg.mark();
        bot.press(s, "Batal");
        bot.tg.wait_for_text_to_after(mark, s, "dibatalkan", WAIT).await;
    }
    assert!(bot.account_row(PHONE).is_none(), "a cancelled pairing left a row");
    // The owner is not told to wait: their code comes and the pairing completes.
    bot.pair(OWNER, PHONE).await;
    // A stranger's own allowance is spent: the cooldown holds them, whatever the number.
    bot.say(STRANGERS[0], "/pair 6281234569002", "Tunggu").await;
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_strangers_pending_pairing_does_not_block_the_owner() {
    // Codes are confirmed 5 s after they are issued: the stranger's is still pending when
    // the owner asks.
    let bot = TestBot::start(&[("TGWA_SIM_PAIR_DELAY_MS", "5000")]).await;
    let stranger = STRANGERS[0];
    bot.say(stranger, &format!("/pair {PHONE}"), "Kode pairing untuk").await;
    let mark = bot.tg.mark();
    bot.tg.push_message(OWNER, &format!("/pair {PHONE}"));
    let owners = bot
        .tg
        .wait_for_text_to_after(mark, OWNER, "Kode pairing untuk", WAIT)
        .await;
    assert!(!owners.text.contains("tidak dapat ditautkan"), "{}", owners.text);
    // The stranger hears that their pairing was cancelled, and why.
    bot.tg
        .wait_for_text_to_after(mark, stranger, "pengguna Telegram lain", WAIT)
        .await;
    bot.tg
        .wait_for_text_to_after(mark, OWNER, "Terhubung sebagai", WAIT)
        .await;
    let (_, owner, status) = bot.account_row(PHONE).expect("the owner's account");
    assert_eq!((owner, status.as_str()), (OWNER, "active"));
    bot.stop().await;
}
