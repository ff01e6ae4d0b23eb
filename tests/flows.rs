//! The eight flows of issue 17 that used to break, walked from outside: the real dispatcher
//! over the simulator and the fake Bot API.

#[path = "support/fake_telegram.rs"]
pub mod fake_telegram;
mod support {
    pub use super::fake_telegram;
    #[path = "app.rs"]
    pub mod app;
}

use support::app::{TestBot, WAIT};

const ADMIN: i64 = 9_170_000;
const A: i64 = 9_170_001;
const A_PHONE: &str = "6281234561701";

/// Flow 3: `/pair` alone asks for the number; the number sent next starts the pairing
/// (it used to be refused as "AKSES DITOLAK" for a user without an account). Same for `/qr`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pair_alone_then_the_number_pairs() {
    let bot = TestBot::start(&[]).await;
    bot.say(A, "/pair", "Kirim nomor WhatsApp").await;
    let r = bot.say(A, "0812-3456-1701", "Terhubung sebagai").await;
    assert!(!r.text.contains("DITOLAK"), "{}", r.text);
    assert_eq!(bot.account_row(A_PHONE).expect("paired").2, "active");
    let b = 9_170_002;
    bot.say(b, "/qr", "Kirim nomor WhatsApp").await;
    let r = bot.say(b, "081234561702", "QR").await;
    assert!(!r.text.contains("DITOLAK"), "{}", r.text);
    bot.stop().await;
}

/// Flow 4: a direct message to a number not on WhatsApp says so, in the user's language,
/// with no English in parentheses.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_to_a_number_not_on_whatsapp_says_so() {
    let bot = TestBot::start(&[]).await;
    bot.pair(A, A_PHONE).await;
    bot.say(A, "/menu", "Menu utama").await;
    bot.tap(A, "Pesan", "Pesan</b>").await;
    bot.tap(A, "Kirim ke nomor", "nomor tujuan").await;
    let r = bot.say(A, "081234567800\nhalo", "tidak terdaftar di WhatsApp").await;
    assert!(!r.text.contains("keluar dari grup"), "{}", r.text);
    assert!(!r.text.contains('('), "no English in parentheses: {}", r.text);
    assert!(r.text.contains("+62"), "names the number: {}", r.text);
    bot.stop().await;
}

/// Flow 5: a suspended user is told they are suspended (not that they have no account and
/// should `/pair`), and told again when restored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_suspended_user_is_told_so_and_told_when_restored() {
    let admin = ADMIN.to_string();
    let bot = TestBot::start(&[("TGWA_ADMIN_IDS", &admin)]).await;
    bot.pair(A, A_PHONE).await;
    bot.say(ADMIN, &format!("/admin {A}"), "cocok dengan").await;
    bot.tap(ADMIN, "1701", "Riwayat").await;
    bot.tap(ADMIN, "Tangguhkan pemilik", "Tangguhkan pengguna").await;
    let mark = bot.tg.mark();
    bot.tap(ADMIN, "Ya", "Pemilik sedang ditangguhkan").await;
    bot.tg.wait_for_text_to_after(mark, A, "menangguhkan", WAIT).await;
    for cmd in ["/menu", "/pair 081234561799", "halo"] {
        let r = bot.say(A, cmd, "ditangguhkan").await;
        assert!(!r.text.contains("/pair"), "{cmd}: {}", r.text);
        assert!(!r.text.contains("belum memiliki"), "{cmd}: {}", r.text);
    }
    bot.say(ADMIN, &format!("/admin {A}"), "cocok dengan").await;
    bot.tap(ADMIN, "1701", "Riwayat").await;
    bot.tap(ADMIN, "Pulihkan pemilik", "Pulihkan pengguna").await;
    let mark = bot.tg.mark();
    bot.tap(ADMIN, "Ya", "Riwayat").await;
    bot.tg.wait_for_text_to_after(mark, A, "dipulihkan", WAIT).await;
    bot.stop().await;
}

/// Flow 2: «🔄 Kode baru» within the pairing cooldown says to wait and leaves the code on
/// screen valid (it used to cancel it first); the same from the QR screen.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_code_within_the_cooldown_keeps_the_code_on_screen() {
    let bot = TestBot::start(&[("TGWA_SIM_PAIR_DELAY_MS", "600000"), ("TGWA_PAIR_COOLDOWN_SECS", "300")]).await;
    for (user, cmd, phone, shown) in [
        (A, "/pair 081234561701", A_PHONE, "Kode pairing"),
        (9_170_003, "/qr 081234561703", "6281234561703", "Scan QR"),
    ] {
        let screen = bot.say(user, cmd, shown).await;
        assert_eq!(bot.account_row(phone).expect("pairing row").2, "pairing");
        let id = bot.press(user, "Kode baru");
        let ans = bot.tg.wait_for_callback_answer(&id, WAIT).await;
        assert!(ans["text"].as_str().unwrap_or("").contains("Tunggu"), "{ans}");
        // The pairing behind the code on screen still runs, and its message still shows it.
        assert_eq!(bot.account_row(phone).map(|r| r.2).as_deref(), Some("pairing"), "{cmd}");
        let now = bot
            .tg
            .sent_to(user)
            .into_iter()
            .find(|m| m.message_id == screen.message_id)
            .expect("the pairing message");
        assert!(now.text.contains(shown), "{}", now.text);
        assert!(!now.text.contains("dibatalkan"), "{}", now.text);
    }
    bot.stop().await;
}

/// Creates a group named `name` on `user`'s active account (Grup > Buat grup).
async fn create_group(bot: &TestBot, user: i64, name: &str) {
    bot.say(user, "/groups", "Anda admin").await;
    bot.tap(user, "Buat grup", "pola nama").await;
    bot.say(user, &format!("{name}\n1"), "Mulai pekerjaan ini").await;
    bot.tap(user, "Mulai", "Laporan pekerjaan").await;
}

/// Flow 6: a group opened from an old list after the account left it says the account is no
/// longer in that group, with a way back to the list (it used to show raw error text).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_left_since_the_list_says_so_with_a_way_back() {
    let bot = TestBot::start(&[]).await;
    bot.pair(A, A_PHONE).await;
    create_group(&bot, A, "Arisan RT 9").await;
    let mark = bot.tg.mark();
    bot.tg.push_message(A, "/groups");
    let old = bot.tg.wait_for_button_after(mark, A, "Arisan RT 9", WAIT).await;
    let data = old.button_data("Arisan RT 9").expect("group button");
    let mark = bot.tg.mark();
    bot.tg.push_message(A, "/groups");
    bot.tg.wait_for_button_after(mark, A, "Arisan RT 9", WAIT).await;
    bot.tap(A, "Arisan RT 9", "Anggota").await;
    bot.tap(A, "🚪 Keluar", "Keluar dari grup ini?").await;
    bot.tap(A, "Ya", "Sudah keluar").await;

    let mark = bot.tg.mark();
    bot.tg.push_callback(A, old.message_id, &data);
    let r = bot
        .tg
        .wait_for_text_to_after(mark, A, "tidak lagi menjadi anggota", WAIT)
        .await;
    assert!(
        !r.text.contains("@g.us") && !r.text.contains("not a member"),
        "{}",
        r.text
    );
    assert!(
        r.button_data("Daftar grup").is_some(),
        "a way back to the list: {:?}",
        r.buttons()
    );
    bot.stop().await;
}

/// Waits until `/status` of `user` shows `want` (the account's state), asking again while not.
async fn status_until(bot: &TestBot, user: i64, want: &str) -> String {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let page = bot.say(user, "/status", "Status").await;
        if page.text.contains(want) {
            return page.text;
        }
        assert!(tokio::time::Instant::now() < deadline, "never {want:?}: {}", page.text);
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

/// Flow 8: after the operator's «Putuskan sesi» the owner can connect again from the notice
/// and from the account page (it used to wait for a restart of the server).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_owner_reconnects_after_the_operator_disconnected() {
    let admin = ADMIN.to_string();
    let bot = TestBot::start(&[("TGWA_ADMIN_IDS", &admin)]).await;
    bot.pair(A, A_PHONE).await;
    bot.say(ADMIN, &format!("/admin {A}"), "cocok dengan").await;
    bot.tap(ADMIN, "1701", "Riwayat").await;
    bot.tap(ADMIN, "Putuskan sesi", "Putuskan sesi WhatsApp").await;
    let mark = bot.tg.mark();
    bot.press(ADMIN, "Ya");
    let notice = bot.tg.wait_for_text_to_after(mark, A, "memutus sesi", WAIT).await;
    assert!(!notice.text.contains("dimulai ulang"), "{}", notice.text);
    assert!(
        notice.button_data("Sambungkan lagi").is_some(),
        "{:?}",
        notice.buttons()
    );
    let page = bot.say(A, "/status", "Status").await;
    assert!(page.button_data("Sambungkan lagi").is_some(), "{:?}", page.buttons());
    let r = bot.tap(A, "Sambungkan lagi", "Menyambungkan").await;
    assert!(!r.text.contains("perangkat lain"), "{}", r.text);
    status_until(&bot, A, "🟢 terhubung").await;
    bot.stop().await;
}

/// The current text and buttons of message `mid` in `chat`, once `want` shows in it.
async fn message_until(bot: &TestBot, chat: i64, mid: i64, want: &str) -> fake_telegram::Sent {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let m = bot.tg.sent_to(chat).into_iter().find(|m| m.message_id == mid);
        if let Some(m) = m.filter(|m| m.text.contains(want)) {
            return m;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "message {mid} never showed {want:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Flow 1: a job the operator paused shows as paused on its owner's progress message, with
/// «Lanjutkan» and «Batal», and the owner resumes it there (the message used to say
/// "running" with Pause, which then failed in English, and the notice pointed to a page that
/// does not exist).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_owner_resumes_a_job_the_operator_paused() {
    let admin = ADMIN.to_string();
    let bot = TestBot::start(&[("TGWA_ADMIN_IDS", &admin), ("TGWA_JOB_ITEM_DELAY_MS", "100")]).await;
    bot.pair(A, A_PHONE).await;
    let list = (0..100)
        .map(|i| format!("62859{:07}7", i))
        .collect::<Vec<_>>()
        .join("\n");
    bot.broadcast_preview(A, "Promo", &list).await;
    let progress = bot.tap(A, "Mulai", "berjalan").await;
    let deadline = tokio::time::Instant::now() + WAIT;
    while bot.sent_by(A_PHONE).len() < 3 {
        assert!(tokio::time::Instant::now() < deadline, "the job did not start");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    bot.say(ADMIN, &format!("/admin {A}"), "cocok dengan").await;
    bot.tap(ADMIN, "1701", "Riwayat").await;
    bot.tap(ADMIN, "Jeda semua pekerjaan", "Jeda semua pekerjaan yang berjalan")
        .await;
    let mark = bot.tg.mark();
    bot.press(ADMIN, "Ya");
    let notice = bot.tg.wait_for_text_to_after(mark, A, "Operator menjeda", WAIT).await;
    assert!(!notice.text.contains("halaman pekerjaan"), "{}", notice.text);

    let paused = message_until(&bot, A, progress.message_id, "dijeda").await;
    assert!(paused.text.contains("operator"), "{}", paused.text);
    assert!(paused.button_data("Lanjutkan").is_some(), "{:?}", paused.buttons());
    assert!(paused.button_data("Batal").is_some(), "{:?}", paused.buttons());
    assert!(paused.button_data("Jeda").is_none(), "{:?}", paused.buttons());

    let at_pause = bot.sent_by(A_PHONE).len();
    let id = bot.press(A, "Lanjutkan");
    let ans = bot.tg.wait_for_callback_answer(&id, WAIT).await;
    assert!(ans["text"].as_str().unwrap_or("").contains("Dilanjutkan"), "{ans}");
    message_until(&bot, A, progress.message_id, "berjalan").await;
    let deadline = tokio::time::Instant::now() + WAIT;
    while bot.sent_by(A_PHONE).len() < at_pause + 3 {
        assert!(tokio::time::Instant::now() < deadline, "the job did not go on");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    bot.stop().await;
}

/// Opens the page of group `name` from a new `/groups` list of `user`.
async fn open_group(bot: &TestBot, user: i64, name: &str) -> fake_telegram::Sent {
    let mark = bot.tg.mark();
    bot.tg.push_message(user, "/groups");
    bot.tg.wait_for_button_after(mark, user, name, WAIT).await;
    bot.tap(user, name, "Anggota").await
}

/// Flow 7: a member who is not an admin is not offered the admin-only actions of a group
/// (invite link, members, settings), the page says why, and an old such button is refused
/// before any input is asked (they used to take input, run, and fail in an English report).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_only_group_actions_are_not_offered_to_a_member() {
    let bot = TestBot::start(&[]).await;
    let b: i64 = 9_170_004;
    let b_phone = "6281234561704";
    bot.pair(A, A_PHONE).await;
    let b_id = bot.pair(b, b_phone).await;
    create_group(&bot, A, "Arisan RT 7").await;
    let admin_page = open_group(&bot, A, "Arisan RT 7").await;
    assert!(admin_page.button_data("Tambah").is_some(), "{:?}", admin_page.buttons());
    let link_msg = bot.tap(A, "Tautan undangan", "chat.whatsapp.com").await;
    let link = link_msg
        .text
        .split_whitespace()
        .find(|w| w.contains("chat.whatsapp.com"))
        .expect("the link")
        .trim_start_matches("<code>")
        .trim_end_matches("</code>")
        .to_string();

    let mark = bot.tg.mark();
    bot.tg.push_message(b, "/groups");
    bot.tg.wait_for_button_after(mark, b, "Gabung grup", WAIT).await;
    bot.tap(b, "Gabung grup", "Tempel tautan").await;
    bot.say(b, &link, "Mulai pekerjaan ini").await;
    bot.tap(b, "Mulai", "Laporan pekerjaan").await;
    let page = open_group(&bot, b, "Arisan RT 7").await;
    for admin_only in [
        "Tambah",
        "Keluarkan",
        "Jadikan admin",
        "Cabut admin",
        "Tautan undangan",
        "Cabut tautan",
    ] {
        assert!(
            page.button_data(admin_only).is_none(),
            "{admin_only}: {:?}",
            page.buttons()
        );
    }
    assert!(page.text.contains("bukan admin"), "{}", page.text);
    assert!(page.button_data("👤 Anggota").is_some(), "{:?}", page.buttons());
    assert!(page.button_data("🚪 Keluar").is_some(), "{:?}", page.buttons());

    // A button made before B lost (or never had) admin rights: refused before the prompt.
    let codec = tgwa::bot::callback::CallbackCodec::load_or_create(&bot.data_dir().join(".secret")).expect("secret");
    let data = page.button_data("👤 Anggota").expect("members button");
    let tid = tgwa::ids::TelegramId::new(b).expect("id");
    let tgwa::bot::callback::Cb::GroupMembers(acc, g) = codec.decode(tid, &data).expect("decode") else {
        panic!("not the members button");
    };
    assert_eq!(acc.get(), b_id);
    let mark = bot.tg.mark();
    let ans = bot
        .callback(
            b,
            &tgwa::bot::callback::Cb::GroupInput(acc, g, tgwa::bot::callback::InputKind::AddMembers),
        )
        .await;
    assert_eq!(ans["show_alert"], true, "{ans}");
    assert!(ans["text"].as_str().unwrap_or("").contains("admin"), "{ans}");
    assert!(
        !bot.tg.sent_to(b).iter().any(|m| m.text.contains("Tambah anggota")),
        "no prompt was asked"
    );
    let _ = mark;
    bot.stop().await;
}
