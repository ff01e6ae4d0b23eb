//! Issue 17, "every message has a way on" and "the user's words": walked from outside, the
//! real dispatcher over the simulator and the fake Bot API. Every message a user meets
//! carries at least one button, and no text of one language carries words of the other.

#[path = "support/fake_telegram.rs"]
pub mod fake_telegram;
mod support {
    pub use super::fake_telegram;
    #[path = "app.rs"]
    pub mod app;
}

use fake_telegram::Sent;
use support::app::{numbers, TestBot, WAIT};

const ADMIN: i64 = 9_180_000;
const A: i64 = 9_180_001;
const A_PHONE: &str = "6281234561801";
/// A user who never linked a number.
const NEW: i64 = 9_180_002;
/// A user whose number the simulator logs out from the phone a while after it connects.
const GONE: i64 = 9_180_003;
const GONE_PHONE: &str = "6281200000401";
/// A user whose number the simulator bans for a while after it connects.
const BANNED: i64 = 9_180_004;
const BANNED_PHONE: &str = "6281200000402";
/// An English-speaking user without an account.
const EN: i64 = 9_180_005;

/// Asserts `m` offers at least one inline button, naming what it is for the failure message.
#[track_caller]
fn has_way_on(what: &str, m: &Sent) {
    assert!(
        !m.buttons().is_empty(),
        "{what}: a message without a button: {:?}",
        m.text
    );
}

/// The latest state of message `mid` in `chat` (edits included).
fn now(bot: &TestBot, chat: i64, mid: i64) -> Sent {
    bot.tg
        .sent_to(chat)
        .into_iter()
        .find(|m| m.message_id == mid)
        .expect("the message")
}

/// Waits until `chat` got a document whose caption holds `caption`, sent after `mark`.
async fn document_after(bot: &TestBot, mark: fake_telegram::Mark, chat: i64, caption: &str) -> Sent {
    let d = bot.tg.wait_for_text_to_after(mark, chat, caption, WAIT).await;
    assert!(d.file_name.is_some(), "{caption}: not a document");
    d
}

/// A user without an account, and the ways out of what refuses them: «AKSES DITOLAK» offers
/// «🔗 Hubungkan nomor», which asks for the number (with «Batal»); «Dibatalkan.», an unknown
/// command, a refused number and `/cancel` with nothing to cancel all carry a button. The
/// same in English.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_user_always_has_a_way_on() {
    let bot = TestBot::start(&[]).await;
    let denied = bot.say(NEW, "halo", "AKSES DITOLAK").await;
    has_way_on("AKSES DITOLAK", &denied);
    assert!(
        denied.button_data("Hubungkan nomor").is_some(),
        "{:?}",
        denied.buttons()
    );
    let ask = bot.tap(NEW, "Hubungkan nomor", "Kirim nomor WhatsApp").await;
    has_way_on("the number prompt", &ask);
    let cancelled = bot.tap(NEW, "Batal", "Dibatalkan").await;
    has_way_on("Dibatalkan.", &cancelled);
    has_way_on("/cancel", &bot.say(NEW, "/cancel", "Tidak ada input").await);
    // A command only account holders may use is refused with the same way on.
    let refused = bot.say(NEW, "/frobnicate", "AKSES DITOLAK").await;
    assert!(
        refused.button_data("Hubungkan nomor").is_some(),
        "{:?}",
        refused.buttons()
    );
    let refused = bot.say(NEW, "/pair 12", "tidak valid").await;
    has_way_on("a refused number", &refused);
    // «Coba lagi» asks for the number again, and the number then pairs.
    bot.tap(NEW, "Coba lagi", "Kirim nomor WhatsApp").await;
    bot.say(NEW, "081234561802", "Terhubung sebagai").await;

    let mark = bot.tg.mark();
    bot.tg.push_message_lang(EN, "hello", "en");
    let denied = bot.tg.wait_for_text_to_after(mark, EN, "Access denied", WAIT).await;
    assert!(denied.button_data("Link a number").is_some(), "{:?}", denied.buttons());
    let mark = bot.tg.mark();
    bot.tg.push_message_lang(EN, "/frobnicate", "en");
    let unknown = bot.tg.wait_for_text_to_after(mark, EN, "Access denied", WAIT).await;
    has_way_on("a refused command (en)", &unknown);
    bot.tg.push_message_lang(EN, "/pair", "en");
    let ask = bot
        .tg
        .wait_for_text_to_after(mark, EN, "Send your WhatsApp number", WAIT)
        .await;
    has_way_on("the number prompt (en)", &ask);
    let mark = bot.tg.mark();
    bot.tg.push_message_lang(EN, "/help", "en");
    let help = bot.tg.wait_for_text_to_after(mark, EN, "was closed", WAIT).await;
    has_way_on("/help (en)", &help);
    bot.stop().await;
}

/// `/help` in the middle of a prompt says the prompt was closed, and the text after it is
/// not taken as the answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn help_in_the_middle_of_a_prompt_says_it_was_closed() {
    let bot = TestBot::start(&[]).await;
    bot.pair(A, A_PHONE).await;
    bot.say(A, "/menu", "Menu utama").await;
    bot.tap(A, "Pesan", "Pesan</b>").await;
    bot.tap(A, "Kirim ke nomor", "nomor tujuan").await;
    let help = bot.say(A, "/help", "Bantuan").await;
    assert!(help.text.contains("ditutup"), "{}", help.text);
    has_way_on("/help", &help);
    let r = bot.say(A, "081234567811\nhalo", "Perintah tidak dikenal").await;
    has_way_on("an unexpected text", &r);
    assert!(bot.sent_by(A_PHONE).is_empty(), "the closed prompt still sent");
    bot.stop().await;
}

/// A job's finished message and its report, the member list, and a job cancelled while it
/// runs (its report too: who got it and who did not) all carry a button.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_messages_reports_and_the_member_list_have_a_way_on() {
    let bot = TestBot::start(&[("TGWA_JOB_ITEM_DELAY_MS", "400")]).await;
    bot.pair(A, A_PHONE).await;
    bot.say(A, "/groups", "Anda admin").await;
    bot.tap(A, "Buat grup", "pola nama").await;
    let preview = bot.say(A, "Kelas Pagi\n1", "Mulai pekerjaan ini").await;
    let mark = bot.tg.mark();
    bot.press(A, "Mulai");
    let report = document_after(&bot, mark, A, "Laporan pekerjaan").await;
    has_way_on("a job report", &report);
    let body = String::from_utf8(report.bytes.clone().expect("report")).unwrap();
    assert!(body.starts_with("#\titem\tstatus\thasil"), "{body}");
    assert!(body.contains("\tberhasil\t"), "{body}");
    let finished = now(&bot, A, preview.message_id);
    assert!(finished.text.contains("selesai"), "{}", finished.text);
    has_way_on("a finished job", &finished);

    bot.say(A, "/groups", "Anda admin").await;
    bot.tap(A, "Kelas Pagi", "Anggota").await;
    let members = bot.tap(A, "👤 Anggota", "👑").await;
    has_way_on("the member list", &members);

    // A broadcast to 30 numbers, cancelled while it runs.
    bot.broadcast_preview(A, "Halo semua", &numbers(30)).await;
    let mark = bot.tg.mark();
    bot.press(A, "Mulai");
    bot.tg.wait_for_text_to_after(mark, A, "berjalan", WAIT).await;
    // «Batal» on a running job asks first.
    let ask = bot.tap(A, "Batal", "Batalkan pekerjaan").await;
    has_way_on("the cancel confirmation", &ask);
    let mark = bot.tg.mark();
    bot.press(A, "Ya");
    let report = document_after(&bot, mark, A, "Laporan pekerjaan").await;
    has_way_on("a cancelled job's report", &report);
    assert!(report.text.contains("tidak dikirim"), "{}", report.text);
    let body = String::from_utf8(report.bytes.clone().expect("report")).unwrap();
    assert!(body.contains("\ttidak dikirim"), "{body}");
    assert!(!body.contains("pending"), "{body}");
    let cancelled = bot.tg.wait_for_text_to_after(mark, A, "dibatalkan", WAIT).await;
    has_way_on("a cancelled job", &cancelled);

    // «Kirim sisanya» makes a job of exactly the items never sent; pressed twice, nothing
    // more; run, every number got the text exactly once.
    let unsent = body.lines().filter(|l| l.contains("\ttidak dikirim")).count();
    let mark = bot.tg.mark();
    bot.press(A, "Kirim sisanya");
    let again = bot
        .tg
        .wait_for_text_to_after(mark, A, "Mulai pekerjaan ini", WAIT)
        .await;
    assert!(
        again.text.contains(&format!("{unsent} item yang belum terkirim")),
        "{}",
        again.text
    );
    let data = report.button_data("Kirim sisanya").expect("the report's rerun button");
    let id = bot.tg.push_callback(A, report.message_id, &data);
    let ans = bot.tg.wait_for_callback_answer(&id, WAIT).await;
    assert!(ans["text"].as_str().unwrap_or("").contains("Tidak ada sisa"), "{ans}");
    let mark = bot.tg.mark();
    bot.press(A, "Mulai");
    document_after(&bot, mark, A, "Laporan pekerjaan #3").await;
    let mut got: Vec<String> = bot.sent_by(A_PHONE).into_iter().map(|(to, _)| to).collect();
    got.sort();
    let n = got.len();
    got.dedup();
    assert_eq!(got.len(), n, "a number got the broadcast twice");
    assert!(n >= 29, "only {n} of 30 numbers got it");

    // The jobs screen lists both, opens one with its report.
    bot.say(A, "/status", "Terakhir diperbarui").await;
    let screen = bot.tap(A, "📋 Pekerjaan", "Pekerjaan</b>").await;
    let labels: Vec<String> = screen.buttons().into_iter().map(|b| b.0).collect();
    assert!(
        labels.iter().any(|l| l.contains("#1 Buat grup · selesai 1/1")),
        "{labels:?}"
    );
    assert!(
        labels.iter().any(|l| l.contains("Siaran pesan · dibatalkan")),
        "{labels:?}"
    );
    let view = bot.tap(A, "#1 Buat grup", "Pekerjaan #1").await;
    has_way_on("a job opened from the jobs screen", &view);
    let mark = bot.tg.mark();
    bot.press(A, "📄 Laporan");
    document_after(&bot, mark, A, "Laporan pekerjaan #1").await;
    bot.stop().await;
}

/// A number logged out from the phone, and one banned by WhatsApp: the notice offers
/// «Hubungkan lagi» / «Pakai akun lain» (never "Coba lagi nanti"), and so does a screen that
/// needs the session; the ban's end is in WIB, not UTC.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_logged_out_or_banned_account_offers_a_way_on() {
    let bot = TestBot::start(&[]).await;
    bot.pair(GONE, GONE_PHONE).await;
    let notice = bot.tg.wait_for_text_to(GONE, "logout dari ponsel", WAIT).await;
    assert!(notice.button_data("Hubungkan lagi").is_some(), "{:?}", notice.buttons());
    assert!(
        notice.button_data("Pakai akun lain").is_some(),
        "{:?}",
        notice.buttons()
    );
    let r = bot.say(GONE, "/groups", "tidak terhubung").await;
    assert!(!r.text.contains("Coba lagi nanti"), "{}", r.text);
    assert!(r.button_data("Hubungkan lagi").is_some(), "{:?}", r.buttons());
    assert!(r.button_data("Pakai akun lain").is_some(), "{:?}", r.buttons());

    bot.pair(BANNED, BANNED_PHONE).await;
    let notice = bot.tg.wait_for_text_to(BANNED, "diblokir sementara", WAIT).await;
    assert!(
        notice.button_data("Pakai akun lain").is_some(),
        "{:?}",
        notice.buttons()
    );
    assert!(
        notice.text.contains("WIB") && !notice.text.contains("UTC"),
        "{}",
        notice.text
    );
    bot.stop().await;
}

/// A received announcement carries a button, and the refusal of `/admin` to a user does too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_announcement_and_the_admin_refusal_have_a_way_on() {
    let admin = ADMIN.to_string();
    let bot = TestBot::start(&[("TGWA_ADMIN_IDS", &admin)]).await;
    bot.pair(A, A_PHONE).await;
    has_way_on("/admin refused", &bot.say(A, "/admin", "AKSES DITOLAK").await);
    bot.say(ADMIN, "/start", "").await;
    bot.say(
        ADMIN,
        "/admin announce Server dipelihara malam ini",
        "Pratinjau pengumuman",
    )
    .await;
    let mark = bot.tg.mark();
    bot.press(ADMIN, "Kirim ke");
    let got = bot
        .tg
        .wait_for_text_to_after(mark, A, "Server dipelihara malam ini", WAIT)
        .await;
    has_way_on("a received announcement", &got);

    // The operator's confirmation names the owner and the full account.
    bot.say(ADMIN, &format!("/admin {A}"), "cocok dengan").await;
    bot.tap(ADMIN, "1801", "Riwayat").await;
    let ask = bot.tap(ADMIN, "Putuskan sesi", "Putuskan sesi WhatsApp").await;
    assert!(ask.text.contains("+62 812-3456-1801"), "{}", ask.text);
    assert!(ask.text.contains(&A.to_string()), "{}", ask.text);
    bot.stop().await;
}

// ----- words of the other language -----

/// English words that have no place in an Indonesian text (and would show a half-translated
/// screen), and the reverse.
const ENGLISH: &[&str] = &[
    "the",
    "failed",
    "error",
    "pending",
    "seconds",
    "please",
    "cancelled",
    "and",
    "is",
    "not",
    "found",
];
const INDONESIAN: &[&str] = &[
    "dan",
    "yang",
    "tidak",
    "gagal",
    "akun",
    "grup",
    "nomor",
    "pesan",
    "sudah",
    "belum",
    "untuk",
    "dengan",
    "dari",
    "batal",
    "selesai",
    "detik",
    "menit",
    "dibatalkan",
];

/// The words of a user-visible text: tags, placeholders, `<code>` examples and commands left
/// out, lower-cased.
fn words(s: &str) -> Vec<String> {
    let mut clean = String::new();
    let (mut tag, mut hole) = (false, false);
    for ch in s.replace("\\n", " ").chars() {
        match ch {
            '<' => tag = true,
            '>' if tag => tag = false,
            '{' => hole = true,
            '}' if hole => hole = false,
            _ if tag || hole => {}
            _ => clean.push(ch),
        }
    }
    clean
        .split_whitespace()
        .filter(|w| !w.starts_with('/'))
        .flat_map(|w| w.split(|c: char| !c.is_alphanumeric()))
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// The string literals in `src` from `at`: `(text, end)`, escapes kept as written.
fn literal_at(src: &str, at: usize) -> Option<(String, usize)> {
    let rest = &src[at..];
    let open = rest.find('"')?;
    let mut out = String::new();
    let mut escaped = false;
    for (i, ch) in rest[open + 1..].char_indices() {
        if escaped {
            out.push('\\');
            out.push(ch);
            escaped = false;
        } else if ch == '\\' {
            escaped = true;
        } else if ch == '"' {
            return Some((out, at + open + 1 + i + 1));
        } else {
            out.push(ch);
        }
    }
    None
}

/// Every `(Indonesian, English)` pair of the bot's texts: the [`Key`] table of `i18n.rs`
/// (matched by key name) and every `t2(lang, "…", "…")` in `src/`.
fn pairs() -> Vec<(String, String, String)> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let i18n = std::fs::read_to_string(root.join("bot/kit/i18n.rs")).unwrap();
    let table = |from: &str, to: &str| -> std::collections::HashMap<String, String> {
        let start = i18n.find(from).unwrap();
        let end = i18n[start..].find(to).map_or(i18n.len(), |e| start + e);
        i18n[start..end]
            .lines()
            .filter_map(|l| {
                let (k, v) = l.trim().split_once(" => \"")?;
                Some((k.to_string(), literal_at(&format!("\"{v}"), 0)?.0))
            })
            .collect()
    };
    let id = table("fn id(key: Key)", "fn en(key: Key)");
    let en = table("fn en(key: Key)", "/// Escapes text");
    let mut out: Vec<(String, String, String)> = id
        .iter()
        .map(|(k, v)| (format!("Key::{k}"), v.clone(), en.get(k).cloned().unwrap_or_default()))
        .collect();
    let mut files = vec![root.clone()];
    while let Some(p) = files.pop() {
        if p.is_dir() {
            files.extend(std::fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
            continue;
        }
        if p.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let src = std::fs::read_to_string(&p).unwrap();
        let mut at = 0;
        while let Some(i) = src[at..].find("t2(") {
            let call = at + i;
            at = call + 3;
            // Not a call of `t2` itself (`fn t2(` or `xt2(`).
            if src[..call].ends_with(|c: char| c.is_alphanumeric() || c == '_') || src[..call].ends_with("fn ") {
                continue;
            }
            // A call whose arguments are not literals (`t2(l, id, en)`) closes before any.
            if src[call + 3..]
                .find('"')
                .is_none_or(|q| src[call + 3..call + 3 + q].contains(')'))
            {
                continue;
            }
            let Some((first, end)) = literal_at(&src, call) else {
                break;
            };
            let Some((second, _)) = literal_at(&src, end) else {
                break;
            };
            // Both literals belong to this call only when no other call starts in between.
            if src[call + 3..end].contains("t2(") {
                continue;
            }
            out.push((
                format!("{}:{}", p.display(), src[..call].lines().count()),
                first,
                second,
            ));
        }
    }
    // --- bot17 --- WhatsApp's errors in the user's words (`wa_error_text`): one
    // `Variant => ("…", "…")` pair per error, which report reasons read back too.
    out.extend(wa_error_pairs(&root));
    out
}

/// The `("Indonesian", "English")` pairs of `wa_error_text` in `src/bot/kit/text.rs`.
fn wa_error_pairs(root: &std::path::Path) -> Vec<(String, String, String)> {
    let src = std::fs::read_to_string(root.join("bot/kit/text.rs")).unwrap();
    let start = src.find("fn wa_error_text").expect("wa_error_text");
    let end = start + src[start..].find("\n}\n").expect("its end");
    let body = &src[start..end];
    let mut out = Vec::new();
    let mut at = 0;
    while let Some(i) = body[at..].find("=> (") {
        let open = at + i + 4;
        let Some((first, next)) = literal_at(body, open) else {
            break;
        };
        let Some((second, after)) = literal_at(body, next) else {
            break;
        };
        out.push((format!("wa_error_text:{}", body[..open].lines().count()), first, second));
        at = after;
    }
    assert!(out.len() >= 10, "too few WhatsApp errors found: {}", out.len());
    out
}

/// No Indonesian text carries an English word from the stop-list, and no English text an
/// Indonesian one.
#[test]
fn no_text_carries_words_of_the_other_language() {
    let all = pairs();
    assert!(all.len() > 250, "too few texts found: {}", all.len());
    let mut wrong = Vec::new();
    for (at, id, en) in &all {
        for w in words(id) {
            if ENGLISH.contains(&w.as_str()) {
                wrong.push(format!("{at}: English {w:?} in {id:?}"));
            }
        }
        for w in words(en) {
            if INDONESIAN.contains(&w.as_str()) {
                wrong.push(format!("{at}: Indonesian {w:?} in {en:?}"));
            }
        }
    }
    assert!(wrong.is_empty(), "{} texts:\n{}", wrong.len(), wrong.join("\n"));
}

// ----- names, not IDs; controls that explain themselves -----

/// Ten groups list in natural order (Kelas 2 before Kelas 10), and Back from a group returns
/// to the page it was on. The group's switches say what they are and their state; an edit
/// returns to the group's page saying what changed and from which number; the leave
/// confirmation names the group and warns the last admin; a leave-all preview and the job
/// report show names, not `…@g.us`; the create report carries each group's invite link.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_by_name_in_natural_order_with_labelled_controls() {
    let bot = TestBot::start(&[]).await;
    bot.pair(A, A_PHONE).await;
    bot.say(A, "/groups", "Anda admin").await;
    bot.tap(A, "Buat grup", "pola nama").await;
    bot.say(A, "Kelas {n}\n10\n081234567001", "Mulai pekerjaan ini").await;
    let mark = bot.tg.mark();
    bot.press(A, "Mulai");
    let report = document_after(&bot, mark, A, "Laporan pekerjaan").await;
    let body = String::from_utf8(report.bytes.clone().expect("report")).unwrap();
    assert_eq!(body.matches("https://chat.whatsapp.com/").count(), 10, "{body}");
    assert!(!body.contains("@g.us"), "{body}");

    let list = bot.say(A, "/groups", "Anda admin").await;
    let labels: Vec<String> = list.buttons().into_iter().map(|b| b.0).collect();
    assert!(labels.iter().any(|l| l.contains("Kelas 2 (")), "{labels:?}");
    assert!(!labels.iter().any(|l| l.contains("Kelas 10 (")), "{labels:?}");
    let mark = bot.tg.mark();
    bot.press(A, "▶️");
    bot.tg.wait_for_button_after(mark, A, "2/2", WAIT).await;
    bot.tap(A, "Kelas 10 (", "Anggota").await;
    let back = bot.tap(A, "Kembali", "Anda admin").await;
    assert!(
        back.button_data("2/2").is_some(),
        "Back went elsewhere: {:?}",
        back.buttons()
    );

    let page = bot.tap(A, "Kelas 10 (", "Anggota").await;
    assert!(
        page.button_data("Hanya admin kirim: OFF").is_some(),
        "{:?}",
        page.buttons()
    );
    let page = bot.tap(A, "Hanya admin kirim: OFF", "Anggota").await;
    assert!(
        page.button_data("Hanya admin kirim: ON").is_some(),
        "{:?}",
        page.buttons()
    );
    bot.tap(A, "Ganti nama", "nama").await;
    let page = bot.say(A, "Kelas Sepuluh", "Nama grup diganti").await;
    assert!(page.text.contains("1801"), "names the number: {}", page.text);
    has_way_on("the group page after a rename", &page);
    let confirm = bot.tap(A, "🚪 Keluar", "Keluar dari grup ini").await;
    assert!(confirm.text.contains("Kelas Sepuluh"), "{}", confirm.text);
    assert!(confirm.text.contains("satu-satunya admin"), "{}", confirm.text);

    bot.say(A, "/groups", "Anda admin").await;
    bot.tap(A, "Keluar dari grup", "kata dari nama grup").await;
    let preview = bot.say(A, "Kelas", "Mulai pekerjaan ini").await;
    assert!(preview.text.contains("Kelas 2"), "{}", preview.text);
    assert!(!preview.text.contains("@g.us"), "{}", preview.text);

    // The exported links' CSV speaks the user's language too.
    bot.say(A, "/groups", "Anda admin").await;
    let mark = bot.tg.mark();
    bot.press(A, "Ekspor tautan");
    let csv = loop {
        bot.tg.wait_for_method_after(mark, "senddocument", WAIT).await;
        let found = bot
            .tg
            .sent_to(A)
            .into_iter()
            .find(|m| m.file_name.as_deref().is_some_and(|n| n.ends_with(".csv")));
        if let Some(c) = found {
            break c;
        }
    };
    let body = String::from_utf8_lossy(csv.bytes.as_deref().expect("csv")).to_string();
    assert!(
        body.trim_start_matches('\u{feff}').starts_with("nama,tautan,anggota"),
        "{body}"
    );
    bot.stop().await;
}

/// The broadcast preview shows the text and how many recipients; a number check says how many
/// are on WhatsApp and how many are not; «ℹ️ Status» answers with a toast; «Hapus» says the
/// device is unlinked from the phone too. In English as well.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn previews_checks_status_and_remove_explain_themselves() {
    let bot = TestBot::start(&[]).await;
    bot.pair(A, A_PHONE).await;
    bot.broadcast_preview(A, "Halo semua, rapat jam 7", &numbers(3)).await;
    let preview = bot
        .tg
        .sent_to(A)
        .into_iter()
        .rev()
        .find(|m| m.text.contains("Mulai pekerjaan"))
        .unwrap();
    assert!(preview.text.contains("Halo semua, rapat jam 7"), "{}", preview.text);
    assert!(preview.text.contains("penerima: 3"), "{}", preview.text);
    bot.tap(A, "Batal", "").await;

    bot.say(A, "/menu", "Menu utama").await;
    bot.tap(A, "Pesan", "Pesan</b>").await;
    bot.tap(A, "Cek nomor", "Cek nomor dengan").await;
    bot.say(A, "081234567801\n081234567800", "Mulai pekerjaan ini").await;
    let mark = bot.tg.mark();
    bot.press(A, "Mulai");
    let report = document_after(&bot, mark, A, "Laporan pekerjaan").await;
    assert!(
        report.text.contains("1 nomor ada di WhatsApp, 1 tidak"),
        "{}",
        report.text
    );

    bot.say(A, "/status", "Terakhir diperbarui").await;
    let id = bot.press(A, "ℹ️ Status");
    let ans = bot.tg.wait_for_callback_answer(&id, WAIT).await;
    assert!(
        ans["text"].as_str().unwrap_or("").contains("Status diperbarui"),
        "{ans}"
    );
    let confirm = bot.tap(A, "Hapus", "Hapus <b>").await;
    assert!(confirm.text.contains("dilepas dari WhatsApp"), "{}", confirm.text);

    let b = 9_180_006;
    let mark = bot.tg.mark();
    bot.tg.push_message_lang(b, "/pair 081234561806", "en");
    bot.tg.wait_for_text_to_after(mark, b, "Connected as", WAIT).await;
    let mark = bot.tg.mark();
    bot.tg.push_message_lang(b, "/status", "en");
    bot.tg.wait_for_text_to_after(mark, b, "Last updated", WAIT).await;
    let id = bot.press(b, "ℹ️ Status");
    let ans = bot.tg.wait_for_callback_answer(&id, WAIT).await;
    assert!(ans["text"].as_str().unwrap_or("").contains("Status refreshed"), "{ans}");
    let confirm = bot.tap(b, "Remove", "Remove <b>").await;
    assert!(confirm.text.contains("unlinked from WhatsApp"), "{}", confirm.text);
    bot.stop().await;
}

/// A wrong answer edits the prompt with the reason (no second copy of it); an answer takes
/// the prompt's «Batal» away.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prompt_is_edited_with_the_reason_and_loses_its_cancel_once_answered() {
    let bot = TestBot::start(&[]).await;
    bot.pair(A, A_PHONE).await;
    bot.say(A, "/menu", "Menu utama").await;
    bot.tap(A, "Pesan", "Pesan</b>").await;
    let prompt = bot.tap(A, "Cek nomor", "Cek nomor dengan").await;
    let before = bot.tg.sent_to(A).len();
    let again = bot.say(A, "abc", "Tidak ada item yang valid").await;
    assert_eq!(again.message_id, prompt.message_id, "the prompt was sent again");
    assert!(again.button_data("Batal").is_some(), "{:?}", again.buttons());
    assert_eq!(bot.tg.sent_to(A).len(), before, "a second copy of the prompt");
    bot.say(A, "081234567801", "Mulai pekerjaan ini").await;
    let answered = now(&bot, A, prompt.message_id);
    assert!(
        answered.buttons().is_empty(),
        "an answered prompt keeps {:?}",
        answered.buttons()
    );
    bot.stop().await;
}

/// The daily cap in sight: the preview warns what goes today and when the rest goes, the
/// account page shows today's quota, and «Lanjutkan» on a capped job says when it can go
/// on instead of pausing it again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daily_cap_is_visible_and_explained() {
    let bot = TestBot::start(&[("TGWA_JOB_DAILY_CAP", "2")]).await;
    bot.pair(A, A_PHONE).await;
    bot.broadcast_preview(A, "Halo", &numbers(3)).await;
    let preview = bot
        .tg
        .sent_to(A)
        .into_iter()
        .rev()
        .find(|m| m.text.contains("Mulai pekerjaan"))
        .unwrap();
    assert!(
        preview.text.contains("2 dari 3 hari ini, sisanya besok 07:00 WIB"),
        "{}",
        preview.text
    );
    bot.tap(A, "Mulai", "batas harian").await;
    let id = bot.press(A, "Lanjutkan");
    let ans = bot.tg.wait_for_callback_answer(&id, WAIT).await;
    let said = ans["text"].as_str().unwrap_or("");
    assert!(
        said.contains("Kuota harian habis") && said.contains("07:00 WIB"),
        "{ans}"
    );
    let page = bot.say(A, "/status", "Terakhir diperbarui").await;
    assert!(page.text.contains("Kuota hari ini: 2/2"), "{}", page.text);
    bot.stop().await;
}

/// Adding a number that is already a member is not a failure; the report says so in the
/// user's words.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn already_a_member_is_not_a_failure() {
    let bot = TestBot::start(&[]).await;
    bot.pair(A, A_PHONE).await;
    bot.say(A, "/groups", "Anda admin").await;
    bot.tap(A, "Buat grup", "pola nama").await;
    bot.say(A, "Kelas Sore\n1\n081234567001", "Mulai pekerjaan ini").await;
    let mark = bot.tg.mark();
    bot.press(A, "Mulai");
    document_after(&bot, mark, A, "Laporan pekerjaan").await;
    bot.say(A, "/groups", "Anda admin").await;
    bot.tap(A, "Kelas Sore", "Anggota").await;
    bot.tap(A, "➕ Tambah", "Kelas Sore").await;
    bot.say(A, "081234567001\n081234567002", "Mulai pekerjaan ini").await;
    let mark = bot.tg.mark();
    bot.press(A, "Mulai");
    let report = document_after(&bot, mark, A, "Laporan pekerjaan").await;
    assert!(report.text.contains("✅ 2 ❌ 0"), "{}", report.text);
    let body = String::from_utf8(report.bytes.clone().expect("report")).unwrap();
    assert!(body.contains("sudah anggota"), "{body}");
    bot.stop().await;
}
