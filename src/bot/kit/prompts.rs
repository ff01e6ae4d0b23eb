//! Prompts: asking for free text (naming what it acts on), asking again with the reason, and
//! reading the answer (numbers, invite links, text or a caption).

use std::collections::BTreeSet;

use teloxide::prelude::*;
use teloxide::types::{InlineKeyboardMarkup, MessageId};

use crate::ids::PhoneNumber;

use super::app::{App, Caller, Pending, Req};
use super::buttons::btn;
use super::callback::{Cb, InputKind};
use super::i18n::{esc, t2, tr, Key, Lang};
use super::send::edit_or_send;
use crate::schedule::show;
use crate::wa::invite_code;

/// True when the account may do `kind` in a group described by `info`: WhatsApp refuses the
/// member actions to anyone but an admin, the info edits when the group is locked, and sending
/// when it is announce-only.
pub(crate) fn input_allowed(kind: InputKind, info: &crate::wa::GroupInfo, admin: bool) -> bool {
    use InputKind::*;
    admin
        || match kind {
            AddMembers | RemoveMembers | PromoteMembers | DemoteMembers => false,
            Rename | Describe => !info.locked,
            SendGroup => !info.announce,
            _ => true,
        }
}

/// What a prompt asks for, naming its action and target (`target` is already the group's
/// name or the account's number).
pub(crate) fn input_prompt(lang: Lang, kind: InputKind, target: &str) -> String {
    use InputKind::*;
    let t = esc(target);
    let numbers_id = "kirim satu atau beberapa nomor (satu per baris, atau dipisah koma), atau unggah file .txt.";
    let numbers_en = "send one or more numbers (one per line, or comma-separated), or upload a .txt file.";
    let text = match kind {
        Rename => t2(lang, "✏️ Ketik nama baru untuk grup «{t}».", "✏️ Type the new name for group «{t}»."),
        Describe => t2(
            lang,
            "📝 Ketik deskripsi baru untuk grup «{t}» (atau <code>-</code> untuk menghapus).",
            "📝 Type the new description for group «{t}» (or <code>-</code> to clear it).",
        ),
        AddMembers => t2(lang, "👤 Tambah anggota ke grup «{t}»: ", "👤 Add members to group «{t}»: ") + &t2(lang, numbers_id, numbers_en),
        RemoveMembers => t2(lang, "👤 Keluarkan anggota dari grup «{t}»: ", "👤 Remove members from group «{t}»: ") + &t2(lang, numbers_id, numbers_en),
        PromoteMembers => t2(lang, "👤 Jadikan admin di grup «{t}»: ", "👤 Promote to admin in group «{t}»: ") + &t2(lang, numbers_id, numbers_en),
        DemoteMembers => t2(lang, "👤 Cabut admin di grup «{t}»: ", "👤 Demote admins in group «{t}»: ") + &t2(lang, numbers_id, numbers_en),
        SendGroup => t2(lang, "✉️ Ketik teks pesan untuk grup «{t}».", "✉️ Type the text to post in group «{t}»."),
        SendNumber => t2(lang, "✉️ Kirim pesan dari {t}: nomor tujuan di baris pertama dan teks pesan di baris berikutnya.", "✉️ Send a message from {t}: the number on the first line and the message on the next lines."),
        CreateGroups => t2(
            lang,
            "➕ Buat grup dengan {t}: kirim pola nama, jumlah, dan (opsional) anggota awal, satu per baris:\n<code>Grup Arisan {n}\n5\n0812-3456-7890, 0813-1111-2222</code>",
            "➕ Create groups with {t}: send a name pattern, a count and (optionally) initial members, one per line:\n<code>Book Club {n}\n5\n0812-3456-7890, 0813-1111-2222</code>",
        ),
        JoinGroups => t2(lang, "🔗 Gabung grup dengan {t}: Tempel tautan undangan (satu per baris) atau unggah file .txt.", "🔗 Join groups with {t}: paste invite links (one per line) or upload a .txt file."),
        LeaveGroups => t2(lang, "🚪 Keluar dari grup dengan {t}: kirim kata dari nama grup yang akan ditinggalkan (<code>*</code> untuk semua grup).", "🚪 Leave groups with {t}: send a word from the names of the groups to leave (<code>*</code> for all groups)."),
        Broadcast => t2(lang, "📢 Siaran dari {t}: kirim teks pesan siaran.", "📢 Broadcast from {t}: send the broadcast text."),
        CheckNumbers => t2(lang, "🔎 Cek nomor dengan {t}: Tempel nomor (satu per baris) atau unggah file .txt untuk dicek di WhatsApp.", "🔎 Check numbers with {t}: paste numbers (one per line) or upload a .txt file to check on WhatsApp."),
        SearchGroups => t2(lang, "🔎 Cari grup {t}: kirim kata yang dicari di nama grup.", "🔎 Search the groups of {t}: send a word to search group names for."),
        // --- sched ---
        ScheduleAt => ask_text(lang),
        TemplateName => t2(lang, "💾 Ketik nama untuk menyimpan teks pekerjaan {t} sebagai template (maks. 40 karakter).", "💾 Type a name to save the text of job {t} as a template (at most 40 characters)."),
        // --- members ---
        Nickname => return nickname_prompt(lang, target),
    };
    text.replace("{t}", &t)
}

/// The second step of a broadcast: where the text goes.
pub(crate) fn broadcast_where(lang: Lang) -> String {
    t2(
        lang,
        "📢 Kirim ke mana? Pilih tombol, atau tempel/unggah daftar nomor tujuan.",
        "📢 Send it where? Pick a button, or paste/upload a list of numbers.",
    )
}

/// A prompt's action and target in a few words ("ganti nama grup «Arisan RT 1»"), for the
/// message that says it expired.
pub(crate) fn prompt_action(lang: Lang, p: &Pending) -> String {
    use InputKind::*;
    let (id, en) = match p.kind {
        Rename => ("mengganti nama grup «{t}»", "rename group «{t}»"),
        Describe => (
            "mengganti deskripsi grup «{t}»",
            "change the description of group «{t}»",
        ),
        AddMembers => ("menambah anggota ke grup «{t}»", "add members to group «{t}»"),
        RemoveMembers => (
            "mengeluarkan anggota dari grup «{t}»",
            "remove members from group «{t}»",
        ),
        PromoteMembers => ("menjadikan admin di grup «{t}»", "promote admins in group «{t}»"),
        DemoteMembers => ("mencabut admin di grup «{t}»", "demote admins in group «{t}»"),
        SendGroup => ("mengirim pesan ke grup «{t}»", "post a message in group «{t}»"),
        SendNumber => ("mengirim pesan dari {t}", "send a message from {t}"),
        CreateGroups => ("membuat grup dengan {t}", "create groups with {t}"),
        JoinGroups => ("bergabung ke grup dengan {t}", "join groups with {t}"),
        LeaveGroups => ("keluar dari grup dengan {t}", "leave groups with {t}"),
        Broadcast => ("siaran dari {t}", "broadcast from {t}"),
        CheckNumbers => ("mengecek nomor dengan {t}", "check numbers with {t}"),
        SearchGroups => ("mencari grup {t}", "search the groups of {t}"),
        // --- sched ---
        ScheduleAt => ("menjadwalkan pekerjaan {t}", "schedule job {t}"),
        TemplateName => ("menyimpan template dari pekerjaan {t}", "save a template from job {t}"),
        // --- members ---
        Nickname => ("memberi nama panggilan {t}", "set a nickname for {t}"),
    };
    t2(lang, id, en).replace("{t}", &esc(&p.target))
}

/// The prompt's text with how to stop, and its Cancel button.
pub(crate) fn prompt_message(app: &App, c: &Caller, p: &Pending) -> (String, InlineKeyboardMarkup) {
    let ask = if p.kind == InputKind::Broadcast && p.data.is_some() {
        broadcast_where(c.lang)
    } else {
        input_prompt(c.lang, p.kind, &p.target)
    };
    // --- sched ---: the time zone a time is asked in.
    let ask = ask.replace("{zone}", &zone(app));
    let t = format!("{ask}\n\n{}", tr(c.lang, Key::PromptCancelHint));
    let mut kb = InlineKeyboardMarkup::new(vec![vec![btn(app, c, tr(c.lang, Key::BtnCancel), Cb::InputCancel)]]);
    // --- sched ---
    if p.kind == InputKind::Broadcast && p.data.is_none() {
        let label = t2(c.lang, "📄 Pakai template", "📄 Use a template");
        kb = kb.append_row(vec![btn(app, c, &label, Cb::Templates(p.account))]);
    }
    (t, kb)
}

pub(crate) async fn ask_input<R: Req>(bot: &R, app: &App, c: &Caller, p: Pending, edit: Option<MessageId>) {
    let (t, kb) = prompt_message(app, c, &p);
    app.set_pending(c.tid, p);
    if let Some(mid) = edit_or_send(bot, app.manager(), c.chat, edit, &t, Some(kb)).await {
        app.set_pending_prompt(c.tid, mid);
    }
}

/// The input could not be used: says why, asks again and keeps waiting (with a fresh timeout,
/// since the user is plainly still at it).
pub(crate) async fn reask<R: Req>(bot: &R, app: &App, c: &Caller, mut p: Pending, why: &str) {
    p.created_at = std::time::Instant::now();
    let (t, kb) = prompt_message(app, c, &p);
    // The prompt itself says what was wrong (its «Batal» back), rather than a second copy.
    let at = p.prompt;
    app.set_pending(c.tid, p);
    if let Some(mid) = edit_or_send(bot, app.manager(), c.chat, at, &format!("❌ {why}\n\n{t}"), Some(kb)).await {
        app.set_pending_prompt(c.tid, mid);
    }
}

/// Reads the text of a message, or of an uploaded .txt file (size-capped; UTF-8 with or
/// without a BOM, or UTF-16 with one).
pub(crate) async fn input_text<R: Req>(
    bot: &R,
    app: &App,
    c: &Caller,
    msg: &Message,
) -> anyhow::Result<Result<String, String>> {
    let l = c.lang;
    if let Some(doc) = msg.document() {
        let cap = app.manager().config().upload_max_bytes;
        if u64::from(doc.file.size) > cap {
            return Ok(Err(t2(
                l,
                "File terlalu besar (maks {cap} byte).",
                "The file is too large (max {cap} bytes).",
            )
            .replace("{cap}", &cap.to_string())));
        }
        // A failed download is the user's to retry, not a reason to drop what they were doing.
        let failed = || {
            t2(
                l,
                "File tidak bisa diambil dari Telegram; kirim lagi.",
                "The file could not be fetched from Telegram; send it again.",
            )
        };
        let file = match bot.get_file(doc.file.id.clone()).await {
            Ok(f) => f,
            Err(e) => {
                tracing::warn!(telegram_id = %c.tid, error = %e, "getFile failed");
                return Ok(Err(failed()));
            }
        };
        let mut buf: Vec<u8> = Vec::new();
        if let Err(e) = bot.download_file(&file.path, &mut buf).await {
            tracing::warn!(telegram_id = %c.tid, error = %e, "file download failed");
            return Ok(Err(failed()));
        }
        if buf.len() as u64 > cap {
            return Ok(Err(t2(l, "File terlalu besar.", "The file is too large.")));
        }
        if buf.is_empty() {
            return Ok(Err(t2(l, "File kosong.", "The file is empty.")));
        }
        return match crate::text::decode_upload(&buf) {
            Ok(s) => Ok(Ok(s)),
            Err(_) => Ok(Err(t2(
                l,
                "File bukan teks (.txt UTF-8).",
                "The file is not text (UTF-8 .txt).",
            ))),
        };
    }
    match msg.text() {
        Some(t) if !t.trim().is_empty() => Ok(Ok(t.to_string())),
        _ => Ok(Err(t2(l, "Kirim teks atau file .txt.", "Send text or a .txt file."))),
    }
}

/// Splits a list into numbers: one per line or comma/semicolon-separated. Returns the
/// numbers (deduplicated, in order) and the pieces that are not numbers.
pub(crate) fn parse_numbers(text: &str, default_cc: &str) -> (Vec<PhoneNumber>, Vec<String>) {
    let mut seen = BTreeSet::new();
    let mut ok = Vec::new();
    let mut bad = Vec::new();
    for piece in text.split(['\n', ',', ';']).map(str::trim).filter(|p| !p.is_empty()) {
        match PhoneNumber::parse(piece, default_cc) {
            Ok(p) => {
                if seen.insert(p.clone()) {
                    ok.push(p);
                }
            }
            Err(_) => bad.push(piece.chars().take(40).collect()),
        }
    }
    (ok, bad)
}

/// Splits a paste into invite codes (deduplicated) and the lines that are not links.
pub(crate) fn parse_links(text: &str) -> (Vec<String>, Vec<String>) {
    let mut seen = BTreeSet::new();
    let mut ok = Vec::new();
    let mut bad = Vec::new();
    for piece in text.split_whitespace() {
        match invite_code(piece) {
            Some(code) => {
                if seen.insert(code.to_string()) {
                    ok.push(format!("https://chat.whatsapp.com/{code}"));
                }
            }
            None => bad.push(piece.chars().take(60).collect()),
        }
    }
    (ok, bad)
}

/// The question for a job's start time, with examples; `{t}` is the job (`#12`).
pub(crate) fn ask_text(lang: Lang) -> String {
    t2(
        lang,
        "⏰ Kapan pekerjaan {t} dimulai? Waktu {zone}, contoh:\n<code>besok 08:00</code>\n<code>Senin 09:30</code>\n<code>nanti 14:00</code> (hari ini)\n<code>24/12 08:00</code>\n<code>2026-12-24 08:00</code>",
        "⏰ When should job {t} start? Your time ({zone}), for example:\n<code>tomorrow 08:00</code>\n<code>Monday 09:30</code>\n<code>today 14:00</code>\n<code>24/12 08:00</code>\n<code>2026-12-24 08:00</code>",
    )
}

/// The zone's name for the prompt's `{zone}` (`WIB`, `UTC+8`).
pub(crate) fn zone(app: &App) -> String {
    let tz = app.manager().config().utc_offset;
    // The last word of a shown moment is its zone.
    show(0, tz, false).rsplit(' ').next().unwrap_or("").to_string()
}

/// The nickname prompt's text (`target` is the account as shown).
pub(crate) fn nickname_prompt(l: Lang, target: &str) -> String {
    t2(
        l,
        "🏷️ Ketik nama panggilan untuk {t} (1–32 karakter), misalnya «Toko Batik» atau «CS 2».",
        "🏷️ Type a nickname for {t} (1 to 32 characters), e.g. «Toko Batik» or «CS 2».",
    )
    .replace("{t}", &esc(target))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_deduplicated_and_bad_ones_reported() {
        let (ok, bad) = parse_numbers("0812-3456-7890\n+62 812 3456 7890, abc; 123\n\n6281111111111", "62");
        assert_eq!(ok.len(), 2);
        assert_eq!(bad, vec!["abc".to_string(), "123".to_string()]);
    }

    #[test]
    fn links_are_deduplicated_and_bad_ones_reported() {
        let text = "https://chat.whatsapp.com/AAAAAAAAAAAAAAAAAAAAAA\nhttps://chat.whatsapp.com/AAAAAAAAAAAAAAAAAAAAAA junk https://x.com/y";
        let (ok, bad) = parse_links(text);
        assert_eq!(ok.len(), 1);
        assert_eq!(bad.len(), 2);
    }

    #[test]
    fn prompts_name_their_action_and_target() {
        use InputKind::*;
        assert_eq!(
            input_prompt(Lang::En, Rename, "Arisan RT 1"),
            "✏️ Type the new name for group «Arisan RT 1»."
        );
        assert_eq!(
            input_prompt(Lang::Id, Rename, "Arisan RT 1"),
            "✏️ Ketik nama baru untuk grup «Arisan RT 1»."
        );
        // Group names come from WhatsApp: escaped for Telegram's HTML.
        assert!(input_prompt(Lang::En, SendGroup, "<b>x</b>").contains("«&lt;b&gt;x&lt;/b&gt;»"));
        for kind in InputKind::every() {
            let p = Pending::new(crate::ids::AccountId::new(1).unwrap(), kind, None, "T4RGET".into());
            for lang in [Lang::Id, Lang::En] {
                assert!(
                    input_prompt(lang, kind, "T4RGET").contains("T4RGET"),
                    "{kind:?} {lang:?}"
                );
                assert!(prompt_action(lang, &p).contains("T4RGET"), "{kind:?} {lang:?}");
            }
        }
    }
}
