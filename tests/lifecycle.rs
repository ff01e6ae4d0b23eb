//! The account lifecycle, driven from Telegram as users (and a hostile one) would: a number
//! that changes hands, removal during a job, a squatter linking someone else's number, and
//! pairing-code flooding. Each handle the bot keeps (a QR message, a worker, a job) must end
//! with its account and never reach the number's next owner.

#[path = "support/fake_telegram.rs"]
pub mod fake_telegram;
mod support {
    pub use super::fake_telegram;
    #[path = "app.rs"]
    pub mod app;
}

use std::collections::HashSet;
use std::time::Duration;

use support::app::{numbers, TestBot, WAIT};
use tgwa::bot::callback::Cb;
use tgwa::ids::AccountId;

const A: i64 = 7_000_001;
const B: i64 = 7_000_002;

fn account_id(bot: &TestBot, phone: &str) -> AccountId {
    AccountId::new(bot.account_row(phone).expect("account row").0).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_qr_of_the_next_owner_never_lands_in_the_previous_owners_chat() {
    // Slow phones: a QR stays on screen a while before it is scanned.
    let bot = TestBot::start(&[("TGWA_SIM_PAIR_DELAY_MS", "3000")]).await;
    let p = "6281234570011";
    bot.pair(A, p).await;
    let old = account_id(&bot, p);
    // A logs out, starts a QR re-pair, cancels it, and removes the number.
    bot.callback(A, &Cb::LogoutYes(old)).await;
    bot.tg.wait_for_text_to(A, "sudah logout", WAIT).await;
    let mark = bot.tg.mark();
    bot.tg.push_message(A, &format!("/qr {p}"));
    bot.tg.wait_for_method_after(mark, "sendphoto", WAIT).await;
    bot.tap(A, "Batal", "dibatalkan").await;
    bot.callback(A, &Cb::RemoveYes(old)).await;
    bot.tg.wait_for_text_to(A, "dihapus", WAIT).await;

    // B links the same number by QR: B gets its own QR, A's chat gets nothing.
    let mark = bot.tg.mark();
    bot.tg.push_message(B, &format!("/qr {p}"));
    let qr = bot.tg.wait_for_method_after(mark, "sendphoto", WAIT).await;
    assert_eq!(qr.chat_id, Some(B), "B's QR went to {:?}", qr.chat_id);
    bot.tg.wait_for_text_to_after(mark, B, "Terhubung sebagai", WAIT).await;
    let to_a: Vec<String> = bot
        .tg
        .calls_after(mark)
        .into_iter()
        .filter(|c| c.chat_id == Some(A))
        .map(|c| c.method)
        .collect();
    assert!(to_a.is_empty(), "A's chat was touched while B paired: {to_a:?}");
    let new = account_id(&bot, p);
    assert_ne!(new, old, "the number's next owner gets a new account ID");
    // A's old buttons for the old ID reach nothing of B's.
    let ans = bot.callback(A, &Cb::Account(new)).await;
    assert_eq!(ans["show_alert"], true, "{ans}");
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_an_account_mid_job_ends_the_job_before_the_number_changes_hands() {
    // Pacing longer than a pairing: an item waiting to go must not go out through the
    // number's next owner.
    let bot = TestBot::start(&[("TGWA_JOB_ITEM_DELAY_MS", "2500")]).await;
    let p = "6281234570021";
    bot.pair(A, p).await;
    let id = account_id(&bot, p);
    bot.broadcast_preview(A, "A-secret-broadcast", &numbers(5)).await;
    bot.tap(A, "Mulai", "berjalan").await;
    let secret = |bot: &TestBot| {
        bot.sent_by(p)
            .into_iter()
            .filter(|(_, t)| t == "A-secret-broadcast")
            .count()
    };
    let deadline = tokio::time::Instant::now() + WAIT;
    while secret(&bot) < 1 {
        assert!(tokio::time::Instant::now() < deadline, "the job did not start");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    bot.callback(A, &Cb::RemoveYes(id)).await;
    bot.tg.wait_for_text_to(A, "dihapus", WAIT).await;
    let at_removal = secret(&bot);
    assert!(at_removal < 5, "the removal came too late to test anything");

    // B pairs the number at once and runs a job of its own to the end.
    bot.pair(B, p).await;
    bot.broadcast_preview(B, "B-hello", &numbers(1)).await;
    let mark = bot.tg.mark();
    bot.press(B, "Mulai");
    bot.tg
        .wait_for_text_to_after(mark, B, "Laporan pekerjaan", Duration::from_secs(60))
        .await;
    assert_eq!(secret(&bot), at_removal, "A's job sent through B's session");

    // A's job was cancelled, with the reason, in A's bot data (now in trash).
    let trashed = std::fs::read_dir(bot.data_dir().join(".trash"))
        .unwrap()
        .flatten()
        .map(|d| d.path().join(A.to_string()).join(format!("bot_data-{A}-{p}.db")))
        .find(|f| f.exists())
        .expect("A's bot data in trash");
    let c = rusqlite::Connection::open_with_flags(trashed, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    let (state, reason): (String, String) = c
        .query_row("SELECT state, pause_reason FROM jobs", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert_eq!((state.as_str(), reason.as_str()), ("cancelled", "account removed"));
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn linking_someone_elses_number_registers_nothing() {
    let bot = TestBot::start(&[]).await;
    // `0409`: the phone that scans the QR (or enters the code) is another number.
    let p = "6281234570409";
    for cmd in ["/qr", "/pair"] {
        bot.say(A, &format!("{cmd} {p}"), "bukan nomor").await;
        assert!(bot.account_row(p).is_none(), "{cmd}: a row was registered");
        assert!(!bot.data_dir().join(A.to_string()).exists(), "{cmd}: files were kept");
        assert!(!bot.data_dir().join(".trash").exists(), "{cmd}: files went to trash");
    }
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pairing_codes_cannot_be_flooded() {
    let bot = TestBot::start(&[
        ("TGWA_PAIR_COOLDOWN_SECS", "30"),
        ("TGWA_PAIR_MAX_PER_HOUR", "5"),
        ("TGWA_SIM_CODE_TTL_MS", "60000"),
    ])
    .await;
    // A number whose phone never confirms: the codes would go to someone else's phone.
    let victim = "6281234570408";
    let start = bot.tg.mark();
    bot.say(A, &format!("/pair {victim}"), "Kode pairing").await;
    // Within the cooldown «Kode baru» answers with an alert, and the code on screen stays.
    let refused = |bot: &TestBot, user: i64| {
        let id = bot.press(user, "Kode baru");
        let tg = bot.tg.clone();
        async move {
            let ans = tg.wait_for_callback_answer(&id, WAIT).await;
            assert!(ans["text"].as_str().unwrap_or("").contains("Tunggu"), "{ans}");
        }
    };
    for _ in 0..5 {
        refused(&bot, A).await;
    }
    // Another user asking for the same number has an allowance of their own (the number may
    // be theirs): one code, then their own cooldown.
    bot.say(B, &format!("/pair {victim}"), "Kode pairing").await;
    refused(&bot, B).await;
    let codes: HashSet<String> = bot
        .tg
        .calls_after(start)
        .into_iter()
        .filter_map(|c| {
            let text = c.params["text"].as_str()?.to_string();
            let code = text.split("<code>").nth(1)?.split("</code>").next()?.to_string();
            Some(code)
        })
        .collect();
    assert_eq!(codes.len(), 2, "one code per requester: {codes:?}");
    let row = bot.account_row(victim);
    assert!(
        row.as_ref()
            .is_none_or(|(_, owner, status)| *owner == B && status == "pairing"),
        "a refused request left a row: {row:?}"
    );
    bot.stop().await;
}
