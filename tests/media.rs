//! Photos, documents, videos, voice notes and audio where the bot asks for a message, end to
//! end through the real dispatcher and the fake Bot API: a broadcast uploads its file once
//! and every recipient gets it once; files over Telegram's download limit or WhatsApp's
//! limits are refused before anything is queued; a single send to a number.
//!
//! The simulator's record (uploads, and messages that carried one) is the judge over `sim`;
//! over the fake WhatsApp server (`over_the_fake`, built with `insecure-fake-whatsapp`) it is
//! what the recipients' fake phones downloaded and decrypted.

#[path = "support/fake_telegram.rs"]
pub mod fake_telegram;
mod support {
    pub use super::fake_telegram;
    #[path = "app.rs"]
    pub mod app;
}

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use support::app::{numbers, TestBot, WAIT};

/// These tests read the simulator's record, whichever backend other suites run on.
const SIM: &[(&str, &str)] = &[("TGWA_WA_BACKEND", "sim")];

const A: i64 = 8_100_001;

fn bot_data(bot: &TestBot, user: i64, phone: &str) -> PathBuf {
    bot.data_dir().join(format!("{user}/bot_data-{user}-{phone}.db"))
}

/// Jobs in the account's database.
fn job_count(data_file: &Path) -> i64 {
    let c = rusqlite::Connection::open_with_flags(data_file, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    c.query_row("SELECT COUNT(*) FROM jobs", [], |r| r.get(0)).unwrap()
}

/// A small "photo": any bytes do, the bot does not decode them.
fn photo_bytes() -> Vec<u8> {
    (0..40_000u32).map(|i| (i * 7 % 251) as u8).collect()
}

/// Opens the broadcast prompt of `user`'s account.
async fn open_broadcast(bot: &TestBot, user: i64) {
    bot.say(user, "/menu", "Menu utama").await;
    bot.tap(user, "Pesan", "Pesan</b>").await;
    bot.tap(user, "Siaran", "teks pesan siaran").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_photo_broadcast_to_20_numbers_is_uploaded_once_and_reaches_each_once() {
    let bot = TestBot::start(SIM).await;
    let p = "6281234581001";
    bot.pair(A, p).await;
    open_broadcast(&bot, A).await;
    let bytes = photo_bytes();
    let mark = bot.tg.mark();
    bot.tg
        .push_file(A, "photo", "", "image/jpeg", bytes.clone(), None, "Promo hari ini 🎉");
    bot.tg.wait_for_text_to_after(mark, A, "Kirim ke mana", WAIT).await;
    let mark = bot.tg.mark();
    bot.tg.push_document(A, "numbers.txt", numbers(20).into_bytes(), None);
    let preview = bot
        .tg
        .wait_for_text_to_after(mark, A, "Mulai pekerjaan ini", WAIT)
        .await;
    assert!(preview.text.contains("Foto «photo.jpg»"), "{}", preview.text);
    assert!(preview.text.contains("Promo hari ini"), "{}", preview.text);
    assert!(preview.text.contains("20"), "{}", preview.text);
    bot.tap(A, "Mulai", "berjalan").await;
    let report = bot
        .tg
        .wait_for_text_to(A, "Laporan pekerjaan", std::time::Duration::from_secs(60))
        .await;

    let world = bot.world_db();
    let uploads: Vec<_> = tgwa::wa::sim::read_uploads(&world)
        .unwrap()
        .into_iter()
        .filter(|u| u.owner == p)
        .collect();
    assert_eq!(uploads.len(), 1, "uploaded once per job: {uploads:?}");
    assert_eq!(uploads[0].kind, "photo");
    assert_eq!(
        uploads[0].sha256,
        tgwa::wa::sha256_hex(&bytes),
        "the bytes Telegram had"
    );
    let sends: Vec<_> = tgwa::wa::sim::read_media_sends(&world)
        .unwrap()
        .into_iter()
        .filter(|m| m.from == p)
        .collect();
    let mut per: HashMap<&str, usize> = HashMap::new();
    for s in &sends {
        assert_eq!(s.upload_id, uploads[0].id, "every message carries the one upload");
        assert_eq!(s.kind, "photo");
        assert_eq!(s.text, "Promo hari ini 🎉", "the caption");
        *per.entry(s.to.as_str()).or_default() += 1;
    }
    let expected: Vec<String> = numbers(20).lines().map(str::to_string).collect();
    assert_eq!(per.len(), 20, "{per:?}");
    for n in &expected {
        assert_eq!(per.get(n.as_str()), Some(&1), "{n} got the photo exactly once");
    }
    // The report names every recipient as done, with what it got.
    let doc = String::from_utf8(report.bytes.clone().expect("the report file")).unwrap();
    for n in &expected {
        let line = doc
            .lines()
            .find(|l| l.contains(n.as_str()))
            .expect("recipient in the report");
        assert!(
            line.contains("\tberhasil\t") && line.contains("terkirim (foto)"),
            "{line}"
        );
    }
    assert!(report.text.contains("✅ 20"), "{}", report.text);
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_document_broadcast_restarted_midway_is_not_uploaded_again_nor_sent_twice() {
    let extra = [("TGWA_WA_BACKEND", "sim"), ("TGWA_JOB_ITEM_DELAY_MS", "250")];
    let bot = TestBot::start(&extra).await;
    let p = "6281234581004";
    bot.pair(A, p).await;
    open_broadcast(&bot, A).await;
    let pdf: Vec<u8> = b"%PDF-1.4 katalog".iter().copied().cycle().take(70_000).collect();
    let mark = bot.tg.mark();
    bot.tg.push_file(
        A,
        "document",
        "katalog.pdf",
        "application/pdf",
        pdf.clone(),
        None,
        "Katalog baru",
    );
    bot.tg.wait_for_text_to_after(mark, A, "Kirim ke mana", WAIT).await;
    let mark = bot.tg.mark();
    bot.tg.push_document(A, "numbers.txt", numbers(12).into_bytes(), None);
    let preview = bot
        .tg
        .wait_for_text_to_after(mark, A, "Mulai pekerjaan ini", WAIT)
        .await;
    assert!(preview.text.contains("Dokumen «katalog.pdf»"), "{}", preview.text);
    bot.tap(A, "Mulai", "berjalan").await;
    let world = bot.world_db();
    let deadline = tokio::time::Instant::now() + WAIT;
    while tgwa::wa::sim::read_media_sends(&world).unwrap().len() < 3 {
        assert!(tokio::time::Instant::now() < deadline, "the job did not start");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    // Stopped in the middle and started again: the job resumes with the upload it kept.
    let bot = bot.restart().await;
    bot.tg
        .wait_for_text_to(A, "Laporan pekerjaan", std::time::Duration::from_secs(60))
        .await;
    let uploads = tgwa::wa::sim::read_uploads(&world).unwrap();
    assert_eq!(uploads.len(), 1, "one upload across the restart: {uploads:?}");
    assert_eq!(uploads[0].name, "katalog.pdf");
    let sends = tgwa::wa::sim::read_media_sends(&world).unwrap();
    let mut per: HashMap<&str, usize> = HashMap::new();
    for s in &sends {
        assert_eq!((s.kind.as_str(), s.text.as_str()), ("document", "Katalog baru"));
        *per.entry(s.to.as_str()).or_default() += 1;
    }
    assert_eq!(per.len(), 12, "{per:?}");
    assert!(per.values().all(|n| *n == 1), "nobody got it twice: {per:?}");
    // The job is over: its copy of the file is gone from the account's folder.
    let kept = bot.data_dir().join(format!("{A}/media"));
    let left = std::fs::read_dir(&kept).map(|d| d.count()).unwrap_or(0);
    assert_eq!(left, 0, "files left in {kept:?}");
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_over_telegrams_or_whatsapps_limit_are_refused_before_anything_is_queued() {
    let bot = TestBot::start(SIM).await;
    let p = "6281234581002";
    bot.pair(A, p).await;
    open_broadcast(&bot, A).await;
    // 25 MB: the Bot API lets a bot download 20 MB at most; the file is never fetched.
    let mark = bot.tg.mark();
    bot.tg.push_file(
        A,
        "document",
        "katalog.pdf",
        "application/pdf",
        Vec::new(),
        Some(25 * 1024 * 1024),
        "Katalog",
    );
    let refused = bot.tg.wait_for_text_to_after(mark, A, "20 MB", WAIT).await;
    assert!(refused.text.contains("Telegram"), "{}", refused.text);
    assert!(refused.buttons().iter().any(|(l, _)| l.contains("Batal")), "a way out");
    // 17 MB video: Telegram would hand it over, WhatsApp takes 16 MB of video.
    let mark = bot.tg.mark();
    bot.tg.push_file(
        A,
        "video",
        "promo.mp4",
        "video/mp4",
        Vec::new(),
        Some(17 * 1024 * 1024),
        "Video",
    );
    let refused = bot.tg.wait_for_text_to_after(mark, A, "16 MB", WAIT).await;
    assert!(refused.text.contains("WhatsApp"), "{}", refused.text);
    assert!(
        !bot.tg.calls_after(mark).iter().any(|c| c.method == "getfile"),
        "nothing was fetched"
    );
    // The prompt still waits; the menu is one button away.
    bot.press(A, "Batal");
    bot.say(A, "/menu", "Menu utama").await;
    assert_eq!(job_count(&bot_data(&bot, A, p)), 0, "no job was queued");
    assert!(tgwa::wa::sim::read_uploads(&bot.world_db()).unwrap().is_empty());
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_voice_note_to_a_number_in_english_names_what_was_sent() {
    let bot = TestBot::start(SIM).await;
    let p = "6281234581003";
    bot.pair(A, p).await;
    bot.say(A, "/lang", "Pilih bahasa").await;
    bot.tap(A, "English", "Main menu").await;
    bot.tap(A, "Messages", "Messages</b>").await;
    bot.tap(A, "Send to a number", "the number on the first line").await;
    let voice: Vec<u8> = b"OggS\0fake-opus".iter().copied().cycle().take(9_000).collect();
    let mark = bot.tg.mark();
    bot.tg
        .push_file(A, "voice", "", "audio/ogg", voice.clone(), None, "085712345678");
    let done = bot.tg.wait_for_text_to_after(mark, A, "sent to", WAIT).await;
    assert!(done.text.contains("Voice note"), "{}", done.text);
    assert!(done.buttons().iter().any(|(l, _)| l.contains("Menu")), "a way back");
    let sends = tgwa::wa::sim::read_media_sends(&bot.world_db()).unwrap();
    assert_eq!(sends.len(), 1, "{sends:?}");
    assert_eq!(sends[0].kind, "voice");
    assert!(sends[0].to.ends_with("85712345678"));
    let uploads = tgwa::wa::sim::read_uploads(&bot.world_db()).unwrap();
    assert_eq!(uploads[0].sha256, tgwa::wa::sha256_hex(&voice));
    assert_eq!(uploads[0].mime, "audio/ogg; codecs=opus");
    bot.stop().await;
}

// --- media2 ---

/// The files kept in `user`'s media folder.
fn media_files(bot: &TestBot, user: i64) -> Vec<String> {
    let dir = bot.data_dir().join(format!("{user}/media"));
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| e.path().is_file())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Waits until `user`'s media folder holds exactly `n` files; returns them.
async fn wait_for_files(bot: &TestBot, user: i64, n: usize) -> Vec<String> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let files = media_files(bot, user);
        if files.len() == n {
            return files;
        }
        assert!(tokio::time::Instant::now() < deadline, "want {n} files, have {files:?}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// The state of job `id` in the account's database.
fn job_state(data_file: &Path, id: i64) -> String {
    let c = rusqlite::Connection::open_with_flags(data_file, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    c.query_row("SELECT state FROM jobs WHERE id = ?1", [id], |r| r.get(0))
        .unwrap()
}

/// Waits until job `id` is in `state`.
async fn wait_for_state(data_file: &Path, id: i64, state: &str) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while job_state(data_file, id) != state {
        assert!(tokio::time::Instant::now() < deadline, "job {id} never became {state}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// Makes a file look written `secs` ago.
fn age(path: &Path, secs: u64) {
    let f = std::fs::File::options().write(true).open(path).unwrap();
    f.set_modified(std::time::SystemTime::now() - std::time::Duration::from_secs(secs))
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_preview_shows_the_photo_a_test_send_carries_it_and_cancelling_leaves_no_file() {
    let bot = TestBot::start(SIM).await;
    let p = "6281234581005";
    bot.pair(A, p).await;
    open_broadcast(&bot, A).await;
    let mark = bot.tg.mark();
    bot.tg.push_file(
        A,
        "photo",
        "",
        "image/jpeg",
        photo_bytes(),
        None,
        "Halo {nama|Kak}, promo 🎉",
    );
    bot.tg.wait_for_text_to_after(mark, A, "Kirim ke mana", WAIT).await;
    assert_eq!(media_files(&bot, A).len(), 1, "the broadcast's file is kept for it");
    let mark = bot.tg.mark();
    bot.tg
        .push_document(A, "daftar.txt", b"085712340001,Budi\n085712340002\n".to_vec(), None);
    let confirm = bot
        .tg
        .wait_for_text_to_after(mark, A, "Mulai pekerjaan ini", WAIT)
        .await;
    // The photo itself comes back first, by Telegram's own ID, with the caption the first
    // recipient gets; the confirmation with its buttons directly under it.
    let calls = bot.tg.calls_after(mark);
    let photo_at = calls
        .iter()
        .position(|c| c.method == "sendphoto")
        .expect("the photo is shown");
    let confirm_at = calls
        .iter()
        .position(|c| c.params["__message_id"].as_i64() == Some(confirm.message_id))
        .unwrap();
    assert_eq!(confirm_at, photo_at + 1, "the confirmation right under the photo");
    let shown = bot.tg.sent_to(A).into_iter().find(|m| m.file_id.is_some()).unwrap();
    assert_eq!(shown.file_id.as_ref().unwrap().0, "photo");
    assert!(shown.bytes.is_none(), "sent by its file_id, not uploaded again");
    assert_eq!(shown.text, "Halo Budi, promo 🎉");
    assert!(confirm.button_data("Mulai").is_some(), "{:?}", confirm.buttons());

    // «🧪 Kirim tes»: the photo, with the first recipient's caption, to the account itself.
    let done = bot.tap(A, "Kirim tes", "Pesan tes terkirim").await;
    assert!(done.text.contains("Foto «photo.jpg»"), "{}", done.text);
    let sends = tgwa::wa::sim::read_media_sends(&bot.world_db()).unwrap();
    assert_eq!(sends.len(), 1, "{sends:?}");
    assert_eq!(
        (sends[0].to.as_str(), sends[0].kind.as_str(), sends[0].text.as_str()),
        (p, "photo", "Halo Budi, promo 🎉")
    );

    // The draft cancelled: its file goes.
    bot.press(A, "Batal");
    wait_for_state(&bot_data(&bot, A, p), 1, "cancelled").await;
    wait_for_files(&bot, A, 0).await;

    // A prompt holding a file, cancelled before it went anywhere: its file goes too.
    open_broadcast(&bot, A).await;
    let mark = bot.tg.mark();
    bot.tg
        .push_file(A, "photo", "", "image/jpeg", photo_bytes(), None, "Lagi");
    bot.tg.wait_for_text_to_after(mark, A, "Kirim ke mana", WAIT).await;
    wait_for_files(&bot, A, 1).await;
    bot.press(A, "Batal");
    wait_for_files(&bot, A, 0).await;
    assert_eq!(job_count(&bot_data(&bot, A, p)), 1, "no second job");
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prompt_left_to_expire_loses_its_file_and_cannot_start_a_bare_broadcast() {
    let extra = [("TGWA_WA_BACKEND", "sim"), ("TGWA_PROMPT_TIMEOUT_SECS", "3")];
    let bot = TestBot::start(&extra).await;
    let p = "6281234581006";
    bot.pair(A, p).await;
    open_broadcast(&bot, A).await;
    let mark = bot.tg.mark();
    bot.tg
        .push_file(A, "video", "promo.mp4", "video/mp4", photo_bytes(), None, "Video promo");
    bot.tg.wait_for_text_to_after(mark, A, "Kirim ke mana", WAIT).await;
    wait_for_files(&bot, A, 1).await;
    // Nobody answers: once the prompt expires its file is deleted.
    wait_for_files(&bot, A, 0).await;
    // A late press finds the question gone, and no job is made without the file.
    let mark = bot.tg.mark();
    bot.press(A, "Semua grup saya");
    bot.tg.wait_for_method_after(mark, "answercallbackquery", WAIT).await;
    // Updates of one chat are handled in order: once /menu is answered, the press is done.
    bot.say(A, "/menu", "Menu utama").await;
    assert_eq!(job_count(&bot_data(&bot, A, p)), 0, "no job was queued");
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_jobs_file_survives_the_sweep_that_removes_an_orphan_and_its_rest_goes_out_with_it() {
    let extra = [("TGWA_WA_BACKEND", "sim"), ("TGWA_JOB_ITEM_DELAY_MS", "300")];
    let bot = TestBot::start(&extra).await;
    let p = "6281234581007";
    bot.pair(A, p).await;
    let data = bot_data(&bot, A, p);
    open_broadcast(&bot, A).await;
    let pdf: Vec<u8> = b"%PDF-1.4 brosur".iter().copied().cycle().take(50_000).collect();
    let mark = bot.tg.mark();
    bot.tg
        .push_file(A, "document", "brosur.pdf", "application/pdf", pdf, None, "Brosur");
    bot.tg.wait_for_text_to_after(mark, A, "Kirim ke mana", WAIT).await;
    let mark = bot.tg.mark();
    bot.tg.push_document(A, "numbers.txt", numbers(12).into_bytes(), None);
    bot.tg
        .wait_for_text_to_after(mark, A, "Mulai pekerjaan ini", WAIT)
        .await;
    bot.tap(A, "Mulai", "berjalan").await;
    let world = bot.world_db();
    let deadline = tokio::time::Instant::now() + WAIT;
    while tgwa::wa::sim::read_media_sends(&world).unwrap().len() < 2 {
        assert!(tokio::time::Instant::now() < deadline, "the job did not start");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    bot.press(A, "Jeda");
    wait_for_state(&data, 1, "paused").await;
    let job_file = wait_for_files(&bot, A, 1).await.remove(0);
    // An orphan (a prompt's file from before a crash) and the job's file, both two days old.
    let dir = bot.data_dir().join(format!("{A}/media"));
    std::fs::write(dir.join("0123456789abcdef-0000000000000001.bin"), b"orphan").unwrap();
    age(&dir.join("0123456789abcdef-0000000000000001.bin"), 2 * 24 * 3600);
    age(&dir.join(&job_file), 2 * 24 * 3600);

    let bot = bot.restart().await;
    let left = wait_for_files(&bot, A, 1).await;
    assert_eq!(left, vec![job_file.clone()], "the sweep kept the paused job's file");

    // Cancelled with items unsent: the file stays while the rest can still be sent.
    let mark = bot.tg.mark();
    bot.press(A, "Batal");
    bot.tg.wait_for_button_after(mark, A, "Ya", WAIT).await;
    let mark = bot.tg.mark();
    bot.press(A, "Ya");
    wait_for_state(&data, 1, "cancelled").await;
    assert_eq!(media_files(&bot, A), vec![job_file.clone()]);
    // The report (with «Kirim sisanya») is sent after the state changes: wait for it.
    bot.tg.wait_for_button_after(mark, A, "Kirim sisanya", WAIT).await;
    bot.tap(A, "Kirim sisanya", "Mulai pekerjaan ini").await;
    let mark = bot.tg.mark();
    bot.press(A, "Mulai");
    bot.tg
        .wait_for_text_to_after(mark, A, "Laporan pekerjaan", std::time::Duration::from_secs(60))
        .await;
    let mut per: HashMap<String, usize> = HashMap::new();
    for s in tgwa::wa::sim::read_media_sends(&world).unwrap() {
        assert_eq!((s.kind.as_str(), s.text.as_str()), ("document", "Brosur"));
        *per.entry(s.to).or_default() += 1;
    }
    assert_eq!(per.len(), 12, "the rest went out with the file: {per:?}");
    assert!(per.values().all(|n| *n == 1), "{per:?}");
    // Nothing needs the file any more.
    wait_for_files(&bot, A, 0).await;
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_template_keeps_its_file_across_a_restart_sends_it_and_takes_it_when_deleted() {
    let bot = TestBot::start(SIM).await;
    let p = "6281234581008";
    bot.pair(A, p).await;
    open_broadcast(&bot, A).await;
    let pdf: Vec<u8> = b"%PDF-1.4 menu".iter().copied().cycle().take(30_000).collect();
    let mark = bot.tg.mark();
    bot.tg.push_file(
        A,
        "document",
        "menu.pdf",
        "application/pdf",
        pdf.clone(),
        None,
        "Menu baru {nama|Kak}",
    );
    bot.tg.wait_for_text_to_after(mark, A, "Kirim ke mana", WAIT).await;
    let mark = bot.tg.mark();
    bot.tg.push_document(A, "numbers.txt", numbers(2).into_bytes(), None);
    bot.tg
        .wait_for_text_to_after(mark, A, "Mulai pekerjaan ini", WAIT)
        .await;
    bot.tap(A, "Simpan template", "Ketik nama").await;
    bot.say(A, "Menu", "disimpan").await;
    // The draft is dropped: its file goes, the template's own copy stays.
    bot.press(A, "Batal");
    wait_for_state(&bot_data(&bot, A, p), 1, "cancelled").await;
    let kept = wait_for_files(&bot, A, 1).await;

    let bot = bot.restart().await;
    bot.say(A, "/menu", "Menu utama").await;
    bot.tap(A, "Pesan", "Pesan</b>").await;
    let list = bot.tap(A, "📄 Template", "Template</b>").await;
    assert!(list.text.contains("Dokumen «menu.pdf»"), "{}", list.text);
    let ask = bot.tap(A, "📄 Menu", "Kirim ke mana").await;
    assert!(ask.text.contains("Dokumen «menu.pdf»"), "{}", ask.text);
    let mark = bot.tg.mark();
    bot.tg.push_document(A, "numbers.txt", numbers(3).into_bytes(), None);
    let confirm = bot
        .tg
        .wait_for_text_to_after(mark, A, "Mulai pekerjaan ini", WAIT)
        .await;
    assert!(confirm.text.contains("Dokumen «menu.pdf»"), "{}", confirm.text);
    assert!(
        bot.tg.calls_after(mark).iter().any(|c| c.method == "senddocument"),
        "the preview shows the template's file"
    );
    // A test first: its upload is the one the job sends.
    bot.tap(A, "Kirim tes", "Pesan tes terkirim").await;
    let mark = bot.tg.mark();
    bot.tap(A, "Mulai", "berjalan").await;
    bot.tg
        .wait_for_text_to_after(mark, A, "Laporan pekerjaan", std::time::Duration::from_secs(60))
        .await;
    let uploads = tgwa::wa::sim::read_uploads(&bot.world_db()).unwrap();
    assert_eq!(uploads.len(), 1, "{uploads:?}");
    assert_eq!(
        (uploads[0].name.as_str(), uploads[0].sha256.clone()),
        ("menu.pdf", tgwa::wa::sha256_hex(&pdf))
    );
    assert_eq!(uploads[0].kind, "document");
    let sends = tgwa::wa::sim::read_media_sends(&bot.world_db()).unwrap();
    assert_eq!(sends.len(), 4, "three recipients and the test: {sends:?}");
    assert_eq!(
        sends.iter().filter(|s| s.to == p).count(),
        1,
        "one test to the account itself"
    );
    for s in &sends {
        assert_eq!(s.upload_id, uploads[0].id, "one upload for the test and the job");
        assert_eq!((s.kind.as_str(), s.text.as_str()), ("document", "Menu baru Kak"));
    }
    // The job's copy went with the job; the template's is the one left.
    assert_eq!(wait_for_files(&bot, A, 1).await, kept);
    bot.say(A, "/menu", "Menu utama").await;
    bot.tap(A, "Pesan", "Pesan</b>").await;
    bot.tap(A, "📄 Template", "Template</b>").await;
    bot.tap(A, "🗑 Menu", "Template dihapus").await;
    wait_for_files(&bot, A, 0).await;
    bot.stop().await;
}

#[cfg(feature = "insecure-fake-whatsapp")]
mod over_the_fake {
    use std::collections::HashMap;
    use std::time::Duration;

    use super::support::app::{numbers, TestBot, WAIT};
    use super::{open_broadcast, A};

    /// The real adapter against the fake WhatsApp server.
    const FAKE: &[(&str, &str)] = &[("TGWA_WA_BACKEND", "fake")];

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_voice_note_broadcast_is_uploaded_once_and_each_phone_decrypts_it_once() {
        let bot = TestBot::start(FAKE).await;
        let p = "6281234581011";
        bot.pair(A, p).await;
        open_broadcast(&bot, A).await;
        let voice: Vec<u8> = (0..30_000u32).map(|i| (i * 13 % 256) as u8).collect();
        let mark = bot.tg.mark();
        bot.tg.push_file(A, "voice", "", "audio/ogg", voice.clone(), None, "");
        let asked = bot.tg.wait_for_text_to_after(mark, A, "Kirim ke mana", WAIT).await;
        assert!(asked.text.contains("Kirim ke mana"));
        let mark = bot.tg.mark();
        bot.tg.push_document(A, "numbers.txt", numbers(20).into_bytes(), None);
        let preview = bot
            .tg
            .wait_for_text_to_after(mark, A, "Mulai pekerjaan ini", WAIT)
            .await;
        assert!(preview.text.contains("Pesan suara"), "{}", preview.text);
        bot.tap(A, "Mulai", "berjalan").await;
        let report = bot
            .tg
            .wait_for_text_to(A, "Laporan pekerjaan", Duration::from_secs(120))
            .await;
        assert!(report.text.contains("✅ 20"), "{}", report.text);

        let sent: Vec<_> = tgwa_fakewa::read_sent_messages(&bot.fake_world())
            .expect("the fake server's record")
            .into_iter()
            .filter(|m| m.from == p)
            .collect();
        let want = tgwa::wa::sha256_hex(&voice);
        let mut per: HashMap<String, usize> = HashMap::new();
        let mut paths = std::collections::HashSet::new();
        for m in &sent {
            let media = m.media.as_ref().unwrap_or_else(|| panic!("not a media message: {m:?}"));
            assert_eq!(media.kind, "audio");
            assert!(media.ptt, "a voice note is push-to-talk audio");
            assert_eq!(media.mime, "audio/ogg; codecs=opus");
            assert_eq!(
                media.sha256.as_deref(),
                Some(want.as_str()),
                "the phone decrypted the same bytes"
            );
            assert_eq!(media.size, voice.len());
            paths.insert(media.direct_path.clone());
            let to = m.to.strip_suffix("@s.whatsapp.net").unwrap_or(&m.to).to_string();
            *per.entry(to).or_default() += 1;
        }
        assert_eq!(paths.len(), 1, "one upload carried by every message: {paths:?}");
        assert_eq!(per.len(), 20, "{per:?}");
        assert!(per.values().all(|n| *n == 1), "each phone got it once: {per:?}");
        bot.stop().await;
    }

    /// Issue 16's reply path over the real adapter: a Telegram photo sent as a reply to a
    /// forwarded message goes back to that chat as a WhatsApp image, which the person's
    /// phone downloads and decrypts.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_photo_reply_to_a_forwarded_message_reaches_the_persons_phone_as_an_image() {
        let bot = TestBot::start(FAKE).await;
        let p = "6281234581012";
        let friend = "6281271097155";
        bot.pair(A, p).await;
        bot.say(A, "/status", "Terakhir diperbarui").await;
        bot.tap(A, "Pesan masuk", "Pesan masuk</b>").await;
        bot.tap(A, "Teruskan pesan ke sini", "✅ aktif").await;
        let extra: Vec<(String, String)> = FAKE.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let out = super::support::app::tgwa_fake(
            bot.dir.path(),
            &bot.tg.url(),
            &extra,
            &["send", "--from", friend, "--to", p, "minta fotonya dong"],
        );
        assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
        let fwd = bot
            .tg
            .wait_for_text_to(A, "minta fotonya dong", Duration::from_secs(60))
            .await;
        let photo: Vec<u8> = (0..20_000u32).map(|i| (i * 31 % 256) as u8).collect();
        bot.tg.push_photo_reply(A, fwd.message_id, photo.clone(), "ini fotonya");
        let want = tgwa::wa::sha256_hex(&photo);
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let sent = tgwa_fakewa::read_sent_messages(&bot.fake_world()).unwrap_or_default();
            let back = sent
                .iter()
                .find(|m| m.from == p && m.to.starts_with(friend) && m.media.is_some());
            if let Some(m) = back {
                let media = m.media.as_ref().unwrap();
                assert_eq!(media.kind, "image");
                assert_eq!(media.caption.as_deref(), Some("ini fotonya"));
                assert_eq!(
                    media.sha256.as_deref(),
                    Some(want.as_str()),
                    "the phone decrypted the photo"
                );
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the photo never reached the phone: {sent:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bot.stop().await;
    }
}
