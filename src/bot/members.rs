//! Issue 19 screens: a group's members exported as `.csv` and `.vcf` (and every admin group's
//! at once), its pending join requests with approve/reject, its "approve new members" toggle,
//! and the account's nickname. Every entry point receives an account the guard has already
//! checked belongs to the caller; actions that need group admin rights check them again
//! against WhatsApp, since a page may be older than the account's role.

use std::collections::HashMap;

use teloxide::types::{InlineKeyboardButton, InlineKeyboardMarkup, MessageId};

use super::kit::app::{App, Caller, Req};
use super::kit::buttons::btn;
use super::kit::callback::{Cb, InputKind};
use super::kit::i18n::{account_label, esc, t2, tr, Key, Lang};
use super::kit::send::{edit_or_send, send_document, send_html};
use super::kit::session::session;
use super::kit::text::wa_error_text;
use crate::account::{Account, Nickname, NicknameError};
use crate::members::{file_stem, groups_csv, members_csv, members_vcf, ExportWords};
use crate::wa::{GroupId, JoinRequest, PersonId, RosterEntry, WaError, WaSession};

/// Join requests per page.
const PAGE: usize = 8;

fn words(l: Lang) -> &'static ExportWords {
    match l {
        Lang::En => &ExportWords::EN,
        Lang::Id => &ExportWords::ID,
    }
}

/// Whether the account is an admin of `g`, as WhatsApp says now.
async fn is_admin(s: &dyn WaSession, acc: &Account, g: &GroupId) -> Result<bool, WaError> {
    let info = s.group_info(g).await?;
    Ok(info
        .members
        .iter()
        .any(|m| m.phone == acc.phone && (m.is_admin || m.is_super_admin)))
}

/// The buttons of this module that act on one account (ownership already checked).
pub(crate) async fn button<R: Req>(
    bot: &R,
    app: &App,
    c: &Caller,
    mid: Option<MessageId>,
    cb: Cb,
    acc: Account,
) -> anyhow::Result<Option<(String, bool)>> {
    let l = c.lang;
    if let Cb::NicknameClear(_) = cb {
        return nickname_clear(bot, app, c, &acc, mid).await;
    }
    let Some(s) = session(bot, app, c, &acc).await else {
        return Ok(None);
    };
    let s = s.as_ref();
    if let Cb::MembersExportAll(_) = cb {
        export_all(bot, app, c, &acc, s, mid).await;
        return Ok(None);
    }
    if let Cb::MembersExport(_, g) = cb {
        export_group(bot, app, c, &acc, s, &g).await;
        return Ok(None);
    }
    // Everything else needs admin rights in the group: refused here before WhatsApp is
    // asked, so a page that is older than a demotion says why.
    let g = match &cb {
        Cb::JoinRequests(_, g, _)
        | Cb::JoinAnswer(_, g, _, _)
        | Cb::JoinAnswerAll(_, g, _)
        | Cb::JoinAnswerAllYes(_, g, _)
        | Cb::JoinApproval(_, g, _) => g.clone(),
        _ => return Ok(Some((super::kit::text::plain_text(tr(l, Key::StaleButton)), true))),
    };
    match is_admin(s, &acc, &g).await {
        Ok(true) => {}
        Ok(false) => return Ok(Some((super::kit::text::plain_text(tr(l, Key::GroupAdminOnly)), true))),
        Err(e) => return Ok(Some((super::kit::text::plain_text(&wa_error_text(l, &e)), true))),
    }
    match cb {
        Cb::JoinRequests(_, _, page) => requests_page(bot, app, c, &acc, s, &g, page, None, mid).await,
        Cb::JoinAnswer(_, _, who, yes) => {
            let note = answer(l, s, &g, yes, std::slice::from_ref(&who)).await;
            requests_page(bot, app, c, &acc, s, &g, 0, Some(note), mid).await;
        }
        Cb::JoinAnswerAll(_, _, yes) => confirm_all(bot, app, c, &acc, s, &g, yes, mid).await,
        Cb::JoinAnswerAllYes(_, _, yes) => {
            let note = match s.join_requests(&g).await {
                Ok(list) if list.is_empty() => t2(l, "Tidak ada permintaan.", "No requests."),
                Ok(list) => {
                    let who: Vec<PersonId> = list.into_iter().map(|r| r.id).collect();
                    answer(l, s, &g, yes, &who).await
                }
                Err(e) => wa_error_text(l, &e),
            };
            requests_page(bot, app, c, &acc, s, &g, 0, Some(note), mid).await;
        }
        Cb::JoinApproval(_, _, on) => {
            if let Err(e) = s.set_join_approval(&g, on).await {
                return Ok(Some((super::kit::text::plain_text(&wa_error_text(l, &e)), true)));
            }
            super::group_page::group_page(bot, app, c, &acc, &g, mid).await?;
        }
        _ => {}
    }
    Ok(None)
}

/// Approves or rejects `who`; says how many went through and why the others did not.
async fn answer(l: Lang, s: &dyn WaSession, g: &GroupId, yes: bool, who: &[PersonId]) -> String {
    match s.answer_join_requests(g, yes, who).await {
        Ok(results) => {
            let ok = results.iter().filter(|(_, r)| r.is_ok()).count();
            let mut t = if yes {
                t2(l, "✅ {n} permintaan disetujui.", "✅ {n} requests approved.")
            } else {
                t2(l, "❌ {n} permintaan ditolak.", "❌ {n} requests rejected.")
            }
            .replace("{n}", &ok.to_string());
            for (p, r) in results.iter().take(10) {
                if let Err(why) = r {
                    t.push_str(&format!("\n⚠️ {}: {}", person_text(p, None), esc(why)));
                }
            }
            t
        }
        Err(e) => wa_error_text(l, &e),
    }
}

/// A person as shown in a message: their name and number, or their LID marked as such.
fn person_text(p: &PersonId, name: Option<&str>) -> String {
    let id = match p {
        PersonId::Phone(n) => n.to_string(),
        PersonId::Lid(l) => format!("LID {l}"),
    };
    match name.map(str::trim).filter(|n| !n.is_empty()) {
        Some(n) => format!("{} ({id})", esc(n)),
        None => id,
    }
}

/// A button label for a person: plain text, kept short.
fn person_label(r: &JoinRequest) -> String {
    let id = match &r.id {
        PersonId::Phone(n) => n.to_string(),
        PersonId::Lid(l) => format!("LID {l}"),
    };
    match r.name.as_deref().map(str::trim).filter(|n| !n.is_empty()) {
        Some(n) => format!("{} · {id}", n.chars().take(20).collect::<String>()),
        None => id,
    }
}

/// One page of the group's pending join requests, each with approve and reject buttons.
#[allow(clippy::too_many_arguments)]
async fn requests_page<R: Req>(
    bot: &R,
    app: &App,
    c: &Caller,
    acc: &Account,
    s: &dyn WaSession,
    g: &GroupId,
    page: u32,
    note: Option<String>,
    mid: Option<MessageId>,
) {
    let l = c.lang;
    let a = acc.id;
    let back = btn(app, c, tr(l, Key::BtnBack), Cb::Group(a, g.clone()));
    let list = match s.join_requests(g).await {
        Ok(list) => list,
        Err(e) => {
            let kb = InlineKeyboardMarkup::new(vec![vec![back]]);
            edit_or_send(bot, app.manager(), c.chat, mid, &wa_error_text(l, &e), Some(kb)).await;
            return;
        }
    };
    let pages = list.len().div_ceil(PAGE).max(1) as u32;
    let page = page.min(pages - 1);
    let mut text = note.map(|n| format!("{n}\n\n")).unwrap_or_default();
    text.push_str(
        &t2(l, "🙋 <b>Permintaan bergabung</b>: {n}", "🙋 <b>Join requests</b>: {n}")
            .replace("{n}", &list.len().to_string()),
    );
    if list.is_empty() {
        text.push_str(&t2(
            l,
            "\nTidak ada yang menunggu persetujuan.",
            "\nNobody is waiting for approval.",
        ));
    }
    let mut rows = Vec::new();
    for r in list.iter().skip(page as usize * PAGE).take(PAGE) {
        text.push_str(&format!("\n• {}", person_text(&r.id, r.name.as_deref())));
        let yes = Cb::JoinAnswer(a, g.clone(), r.id.clone(), true);
        let no = Cb::JoinAnswer(a, g.clone(), r.id.clone(), false);
        if yes.fits() {
            rows.push(vec![
                btn(app, c, &format!("✅ {}", person_label(r)), yes),
                btn(app, c, "❌", no),
            ]);
        }
    }
    if pages > 1 {
        let mut nav = Vec::new();
        if page > 0 {
            nav.push(btn(app, c, "◀️", Cb::JoinRequests(a, g.clone(), page - 1)));
        }
        nav.push(btn(app, c, &format!("{}/{}", page + 1, pages), Cb::Noop));
        if page + 1 < pages {
            nav.push(btn(app, c, "▶️", Cb::JoinRequests(a, g.clone(), page + 1)));
        }
        rows.push(nav);
    }
    if !list.is_empty() {
        rows.push(vec![
            btn(
                app,
                c,
                &t2(l, "✅ Setujui semua", "✅ Approve all"),
                Cb::JoinAnswerAll(a, g.clone(), true),
            ),
            btn(
                app,
                c,
                &t2(l, "❌ Tolak semua", "❌ Reject all"),
                Cb::JoinAnswerAll(a, g.clone(), false),
            ),
        ]);
    }
    rows.push(vec![back]);
    edit_or_send(
        bot,
        app.manager(),
        c.chat,
        mid,
        &text,
        Some(InlineKeyboardMarkup::new(rows)),
    )
    .await;
}

/// Asks before approving or rejecting every pending request.
#[allow(clippy::too_many_arguments)]
async fn confirm_all<R: Req>(
    bot: &R,
    app: &App,
    c: &Caller,
    acc: &Account,
    s: &dyn WaSession,
    g: &GroupId,
    yes: bool,
    mid: Option<MessageId>,
) {
    let l = c.lang;
    let n = s.join_requests(g).await.map(|v| v.len()).unwrap_or(0);
    let t = if yes {
        t2(
            l,
            "✅ Setujui semua {n} permintaan bergabung? Mereka langsung menjadi anggota grup.",
            "✅ Approve all {n} join requests? They become members of the group at once.",
        )
    } else {
        t2(
            l,
            "❌ Tolak semua {n} permintaan bergabung?",
            "❌ Reject all {n} join requests?",
        )
    }
    .replace("{n}", &n.to_string());
    let kb = InlineKeyboardMarkup::new(vec![vec![
        btn(app, c, tr(l, Key::BtnYes), Cb::JoinAnswerAllYes(acc.id, g.clone(), yes)),
        btn(app, c, tr(l, Key::BtnNo), Cb::JoinRequests(acc.id, g.clone(), 0)),
    ]]);
    edit_or_send(bot, app.manager(), c.chat, mid, &t, Some(kb)).await;
}

/// WhatsApp names the account has seen in its inbox, by sender digits: a name for members
/// the backend knows no name of.
async fn inbox_names(app: &App, acc: &Account) -> HashMap<String, String> {
    let res = app
        .manager()
        .pools()
        .with(acc.bot_data_db_path.clone(), crate::db::Schema::Account, |conn| {
            let mut st =
                conn.prepare("SELECT sender, push_name FROM inbox_messages WHERE push_name != '' ORDER BY seq")?;
            let rows = st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
            // Later rows win: the newest name a person used.
            Ok(rows.filter_map(Result::ok).collect::<HashMap<_, _>>())
        })
        .await;
    res.unwrap_or_else(|e| {
        tracing::debug!(account_id = %acc.id, error = %e, "no inbox names for the export");
        HashMap::new()
    })
}

/// A group's roster with names filled from the inbox where WhatsApp gave none.
async fn roster(s: &dyn WaSession, g: &GroupId, names: &HashMap<String, String>) -> Result<Vec<RosterEntry>, WaError> {
    let mut list = s.group_roster(g).await?;
    for m in &mut list {
        if m.name.as_deref().is_none_or(|n| n.trim().is_empty()) {
            let key = match &m.id {
                PersonId::Phone(p) => p.digits().to_string(),
                PersonId::Lid(l) => format!("{l}@lid"),
            };
            m.name = names.get(&key).cloned();
        }
    }
    Ok(list)
}

/// Sends one group's members as `.csv` and `.vcf`.
async fn export_group<R: Req>(bot: &R, app: &App, c: &Caller, acc: &Account, s: &dyn WaSession, g: &GroupId) {
    let l = c.lang;
    let m = app.manager();
    let back = InlineKeyboardMarkup::new(vec![vec![btn(
        app,
        c,
        tr(l, Key::BtnBack),
        Cb::Group(acc.id, g.clone()),
    )]]);
    let names = inbox_names(app, acc).await;
    let (info, list) = match s.group_info(g).await {
        Ok(info) => match roster(s, g, &names).await {
            Ok(list) => (info, list),
            Err(e) => {
                send_html(bot, m, c.chat, &wa_error_text(l, &e), Some(back)).await;
                return;
            }
        },
        Err(e) => {
            send_html(bot, m, c.chat, &wa_error_text(l, &e), Some(back)).await;
            return;
        }
    };
    let stem = format!("{}-members", file_stem(&info.name));
    let csv = members_csv(&list, words(l));
    let vcf = members_vcf(&list, &info.name);
    let hidden = list.iter().filter(|r| matches!(r.id, PersonId::Lid(_))).count();
    let caption = esc(&info.name);
    send_document(bot, m, c.chat, &format!("{stem}.csv"), csv.into_bytes(), &caption).await;
    send_document(bot, m, c.chat, &format!("{stem}.vcf"), vcf.into_bytes(), &caption).await;
    let mut t = t2(
        l,
        "📤 {n} anggota grup «{g}» diekspor (.csv untuk spreadsheet, .vcf untuk kontak ponsel).",
        "📤 Exported {n} members of «{g}» (.csv for spreadsheets, .vcf for phone contacts).",
    )
    .replace("{n}", &list.len().to_string())
    .replace("{g}", &esc(&info.name));
    if hidden > 0 {
        t.push_str(
            &t2(
                l,
                "\n🔒 {k} anggota menyembunyikan nomornya: ditandai sebagai LID, tanpa nomor.",
                "\n🔒 {k} members hide their number: marked as LID, with no number.",
            )
            .replace("{k}", &hidden.to_string()),
        );
    }
    send_html(bot, m, c.chat, &t, Some(back)).await;
}

/// Sends the members of every group where the account is admin as one `.csv`.
async fn export_all<R: Req>(bot: &R, app: &App, c: &Caller, acc: &Account, s: &dyn WaSession, mid: Option<MessageId>) {
    let l = c.lang;
    let m = app.manager();
    let back = InlineKeyboardMarkup::new(vec![vec![btn(app, c, tr(l, Key::BtnBack), Cb::Groups(acc.id, 0))]]);
    let groups = match s.groups().await {
        Ok(g) => g.into_iter().filter(|g| g.is_admin).collect::<Vec<_>>(),
        Err(e) => {
            edit_or_send(bot, m, c.chat, mid, &wa_error_text(l, &e), Some(back)).await;
            return;
        }
    };
    if groups.is_empty() {
        let t = t2(
            l,
            "Tidak ada grup tempat akun ini admin.",
            "There are no groups where this account is admin.",
        );
        edit_or_send(bot, m, c.chat, mid, &t, Some(back)).await;
        return;
    }
    let total = groups.len();
    let progress = edit_or_send(bot, m, c.chat, mid, &format!("📤 0/{total}"), None).await;
    let names = inbox_names(app, acc).await;
    let mut all = Vec::with_capacity(total);
    let mut failed = Vec::new();
    let mut last_edit = std::time::Instant::now();
    for (i, g) in groups.iter().enumerate() {
        match roster(s, &g.id, &names).await {
            Ok(list) => all.push((g.name.clone(), g.id.as_str().to_string(), list)),
            Err(e) => failed.push(format!("{}: {}", g.name, wa_error_text(l, &e))),
        }
        if last_edit.elapsed() > std::time::Duration::from_secs(2) {
            last_edit = std::time::Instant::now();
            edit_or_send(bot, m, c.chat, progress, &format!("📤 {}/{total}", i + 1), None).await;
        }
    }
    let rows: usize = all.iter().map(|(_, _, v)| v.len()).sum();
    let csv = groups_csv(&all, words(l));
    send_document(
        bot,
        m,
        c.chat,
        "admin-groups-members.csv",
        csv.into_bytes(),
        "admin-groups-members.csv",
    )
    .await;
    let mut t = t2(
        l,
        "📤 {r} anggota dari {ok} grup admin diekspor dalam satu .csv (kolom Grup).",
        "📤 Exported {r} members of {ok} admin groups in one .csv (Group column).",
    )
    .replace("{r}", &rows.to_string())
    .replace("{ok}", &all.len().to_string());
    for f in failed.iter().take(20) {
        t.push_str(&format!("\n❌ {}", esc(f)));
    }
    edit_or_send(bot, m, c.chat, progress, &t, Some(back)).await;
}

/// The account page's nickname buttons: set (or change), and clear when one is set.
pub(crate) fn nickname_row(app: &App, c: &Caller, a: &Account) -> Vec<InlineKeyboardButton> {
    let l = c.lang;
    let mut row = vec![btn(
        app,
        c,
        &t2(l, "🏷️ Nama panggilan", "🏷️ Nickname"),
        Cb::Input(a.id, InputKind::Nickname),
    )];
    if a.nickname.is_some() {
        row.push(btn(
            app,
            c,
            &t2(l, "🧹 Hapus nama panggilan", "🧹 Clear nickname"),
            Cb::NicknameClear(a.id),
        ));
    }
    row
}

/// Why a nickname was refused, for the re-asked prompt.
pub(crate) fn nickname_refusal(l: Lang, e: NicknameError) -> String {
    match e {
        NicknameError::Empty => t2(l, "Nama panggilan kosong.", "The nickname is empty."),
        NicknameError::TooLong { max } => t2(
            l,
            "Nama panggilan terlalu panjang (maksimal {max} karakter).",
            "The nickname is too long (at most {max} characters).",
        )
        .replace("{max}", &max.to_string()),
        NicknameError::Control => t2(
            l,
            "Nama panggilan harus satu baris.",
            "The nickname must be a single line.",
        ),
    }
}

/// The nickname typed after the prompt: saved, or `Err(why)` to ask again.
pub(crate) async fn nickname_input<R: Req>(
    bot: &R,
    app: &App,
    c: &Caller,
    acc: &Account,
    text: &str,
) -> anyhow::Result<Result<(), String>> {
    let nick = match Nickname::parse(text) {
        Ok(n) => n,
        Err(e) => return Ok(Err(nickname_refusal(c.lang, e))),
    };
    app.manager().set_nickname(c.tid, acc.id, Some(nick)).await?;
    let fresh = app.manager().account_of(c.tid, acc.id).await?;
    let t =
        t2(c.lang, "🏷️ Nama panggilan disimpan: {a}", "🏷️ Nickname saved: {a}").replace("{a}", &account_label(&fresh));
    let kb = InlineKeyboardMarkup::new(vec![vec![btn(app, c, tr(c.lang, Key::BtnBack), Cb::Account(acc.id))]]);
    send_html(bot, app.manager(), c.chat, &t, Some(kb)).await;
    Ok(Ok(()))
}

async fn nickname_clear<R: Req>(
    bot: &R,
    app: &App,
    c: &Caller,
    acc: &Account,
    mid: Option<MessageId>,
) -> anyhow::Result<Option<(String, bool)>> {
    app.manager().set_nickname(c.tid, acc.id, None).await?;
    let cleared = Account {
        nickname: None,
        ..acc.clone()
    };
    let t = t2(c.lang, "🧹 Nama panggilan {p} dihapus.", "🧹 Nickname of {p} cleared.")
        .replace("{p}", &account_label(&cleared));
    let kb = InlineKeyboardMarkup::new(vec![vec![btn(app, c, tr(c.lang, Key::BtnBack), Cb::Account(acc.id))]]);
    edit_or_send(bot, app.manager(), c.chat, mid, &t, Some(kb)).await;
    Ok(None)
}
