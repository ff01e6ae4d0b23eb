//! The account's work from Telegram: groups (paginated, searchable), a group's page and its
//! actions, invite links and their export, members, messages, and the inputs that become bulk
//! jobs (see `jobs_ui`). Every entry point receives an account the guard has already checked
//! belongs to the caller.

use std::collections::BTreeSet;

use teloxide::prelude::*;
use teloxide::types::{InlineKeyboardMarkup, MessageId};

use super::callback::{Cb, InputKind};
use super::flows::{back_to_menu, btn, Req};
use super::i18n::{account_label, esc, t2, tr, tr_with, Key, Lang};
use super::send::{edit_or_send, send_document, send_html};
use super::{App, Caller, Pending};
use crate::account::{Account, AccountError};
use crate::ids::{AccountId, PhoneNumber};
use crate::wa::{invite_code, ChatTarget, GroupId, GroupSummary, MemberAction, WaError, WaSession};

/// Groups per page of the list.
const PAGE: usize = 8;

/// The session of the caller's account, or a message saying why there is none.
pub(crate) async fn session<R: Req>(
    bot: &R,
    app: &App,
    c: &Caller,
    acc: &Account,
) -> Option<std::sync::Arc<dyn WaSession>> {
    match app.manager().session_of(c.tid, acc.id).await {
        Ok(s) => Some(s),
        Err(AccountError::NotLive | AccountError::WrongState(_)) => {
            let live = app.manager().live_status_unchecked(acc.id);
            let state = super::flows::state_label(c.lang, acc, live.as_ref());
            let (key, kb) = match offline_ways(app, c, acc, live.as_ref()) {
                Some(kb) => (Key::NotConnectedOffline, kb),
                None => (Key::NotConnected, back_to_menu(app, c)),
            };
            let t = tr_with(c.lang, key, &[("phone", &account_label(acc)), ("state", state)]);
            send_html(bot, app.manager(), c.chat, &t, Some(kb)).await;
            None
        }
        Err(e) => {
            tracing::warn!(account_id = %acc.id, error = %e, "no session");
            send_html(
                bot,
                app.manager(),
                c.chat,
                tr(c.lang, Key::Sorry),
                Some(back_to_menu(app, c)),
            )
            .await;
            None
        }
    }
}

/// «Hubungkan lagi» and «Pakai akun lain» for an account that will not come back by itself
/// (logged out, banned, stopped); `None` while it is still connecting or retrying, where
/// waiting does help.
fn offline_ways(
    app: &App,
    c: &Caller,
    acc: &Account,
    live: Option<&crate::supervisor::LiveStatus>,
) -> Option<InlineKeyboardMarkup> {
    use crate::supervisor::LiveState;
    let again = match live.map(|s| s.state) {
        Some(LiveState::Connecting | LiveState::Disconnected | LiveState::Connected | LiveState::Pairing) => {
            return None
        }
        // A stopped session of an active account starts again in place.
        Some(LiveState::Stopped) | None if acc.status == crate::account::AccountStatus::Active => Cb::Reconnect(acc.id),
        _ => Cb::PairNew(acc.phone.clone()),
    };
    Some(InlineKeyboardMarkup::new(vec![
        vec![btn(app, c, tr(c.lang, Key::BtnPairAgain), again)],
        vec![
            btn(app, c, tr(c.lang, Key::BtnOtherAccount), Cb::Accounts),
            btn(app, c, tr(c.lang, Key::BtnMenu), Cb::Menu),
        ],
    ]))
}

/// Explains a WhatsApp failure to the user.
pub(crate) fn wa_error_text(lang: Lang, e: &WaError) -> String {
    let (id, en) = match e {
        WaError::NotConnected => ("akun sedang tidak terhubung", "the account is not connected"),
        WaError::RateLimited { .. } => (
            "WhatsApp membatasi permintaan, coba lagi nanti",
            "WhatsApp is rate-limiting, try later",
        ),
        WaError::Timeout => ("WhatsApp tidak menjawab tepat waktu", "WhatsApp did not answer in time"),
        WaError::NotPaired | WaError::LoggedOut(_) => (
            "akun sudah logout, hubungkan lagi",
            "the account is logged out, link it again",
        ),
        WaError::NotFound(_) => (
            "tidak ditemukan (mungkin sudah keluar dari grup)",
            "not found (perhaps no longer in the group)",
        ),
        WaError::Forbidden(_) => ("butuh hak admin grup", "needs group admin rights"),
        WaError::Invalid(_) => ("permintaan tidak valid", "invalid request"),
        WaError::Storage(_) | WaError::Other(_) => ("kesalahan WhatsApp", "WhatsApp error"),
        WaError::ReachOutLimited { .. } => (
            "WhatsApp membatasi pesan dari nomor ini ke kontak baru",
            "WhatsApp limits messages from this number to new contacts",
        ),
        WaError::Banned { .. } => ("nomor ini diblokir oleh WhatsApp", "WhatsApp banned this number"),
        // --- peer ---
        WaError::Proxy(_) => (
            "proxy akun ini gagal (bukan gangguan WhatsApp)",
            "this account's proxy failed (not a WhatsApp outage)",
        ),
    };
    // WhatsApp's own detail is English and technical: it goes to the log, not to the user.
    tracing::debug!(error = %e, "WhatsApp refused");
    let base = if lang == Lang::En { en } else { id };
    base.to_string()
}

/// `/groups` and the Groups button: page 0 of the list.
pub(crate) async fn groups_entry<R: Req>(
    bot: &R,
    app: &App,
    c: &Caller,
    account: AccountId,
    edit: Option<MessageId>,
) -> anyhow::Result<()> {
    let acc = app.manager().account_of(c.tid, account).await?;
    groups_page(bot, app, c, &acc, 0, None, edit).await
}

async fn groups_page<R: Req>(
    bot: &R,
    app: &App,
    c: &Caller,
    acc: &Account,
    page: u32,
    search: Option<&str>,
    edit: Option<MessageId>,
) -> anyhow::Result<()> {
    let l = c.lang;
    let Some(s) = session(bot, app, c, acc).await else {
        return Ok(());
    };
    let mut groups = match s.groups().await {
        Ok(g) => g,
        Err(e) => {
            send_html(
                bot,
                app.manager(),
                c.chat,
                &wa_error_text(l, &e),
                Some(back_to_menu(app, c)),
            )
            .await;
            return Ok(());
        }
    };
    cache_groups(app, acc, &groups).await;
    if let Some(q) = search {
        let q = q.to_lowercase();
        groups.retain(|g| g.name.to_lowercase().contains(&q));
    }
    groups.sort_by(|a, b| crate::text::natural_cmp(&a.name, &b.name));
    let pages = groups.len().div_ceil(PAGE).max(1) as u32;
    let page = page.min(pages - 1);
    let start = page as usize * PAGE;
    let mut text = match search {
        Some(q) => t2(
            l,
            "👥 <b>Grup</b> cocok dengan «{q}»: {n}",
            "👥 <b>Groups</b> matching «{q}»: {n}",
        )
        .replace("{q}", &esc(q)),
        None => t2(l, "👥 <b>Grup</b> {phone}: {n}", "👥 <b>Groups</b> of {phone}: {n}")
            .replace("{phone}", &account_label(acc)),
    }
    .replace("{n}", &groups.len().to_string());
    text.push_str(&t2(l, "\n👑 = Anda admin", "\n👑 = you are admin"));
    let mut rows = Vec::new();
    for g in groups.iter().skip(start).take(PAGE) {
        let label = format!("{}{} ({})", if g.is_admin { "👑 " } else { "" }, g.name, g.member_count);
        rows.push(vec![btn(app, c, &label, Cb::Group(acc.id, g.id.clone()))]);
    }
    if pages > 1 && search.is_none() {
        let mut nav = Vec::new();
        if page > 0 {
            nav.push(btn(app, c, "◀️", Cb::Groups(acc.id, page - 1)));
        }
        nav.push(btn(app, c, &format!("{}/{}", page + 1, pages), Cb::Noop));
        if page + 1 < pages {
            nav.push(btn(app, c, "▶️", Cb::Groups(acc.id, page + 1)));
        }
        rows.push(nav);
    }
    rows.push(vec![
        btn(
            app,
            c,
            &t2(l, "🔎 Cari", "🔎 Search"),
            Cb::Input(acc.id, InputKind::SearchGroups),
        ),
        btn(
            app,
            c,
            &t2(l, "📤 Ekspor tautan", "📤 Export links"),
            Cb::ExportLinks(acc.id),
        ),
    ]);
    rows.push(vec![
        btn(
            app,
            c,
            &t2(l, "➕ Buat grup", "➕ Create groups"),
            Cb::Input(acc.id, InputKind::CreateGroups),
        ),
        btn(
            app,
            c,
            &t2(l, "🔗 Gabung grup", "🔗 Join groups"),
            Cb::Input(acc.id, InputKind::JoinGroups),
        ),
    ]);
    rows.push(vec![
        btn(
            app,
            c,
            &t2(l, "🚪 Keluar dari grup", "🚪 Leave groups"),
            Cb::Input(acc.id, InputKind::LeaveGroups),
        ),
        btn(app, c, tr(l, Key::BtnMenu), Cb::Menu),
    ]);
    rows.insert(
        rows.len() - 1,
        vec![btn(
            app,
            c,
            &t2(l, "📤 Ekspor anggota grup admin", "📤 Export admin groups' members"),
            Cb::MembersExportAll(acc.id),
        )],
    );
    edit_or_send(
        bot,
        app.manager(),
        c.chat,
        edit,
        &text,
        Some(InlineKeyboardMarkup::new(rows)),
    )
    .await;
    Ok(())
}

/// Keeps the account's `groups_cache` current (for exports and offline views).
async fn cache_groups(app: &App, acc: &Account, groups: &[GroupSummary]) {
    let rows: Vec<(String, String, i64, bool)> = groups
        .iter()
        .map(|g| {
            (
                g.id.as_str().to_string(),
                g.name.clone(),
                g.member_count as i64,
                g.is_admin,
            )
        })
        .collect();
    let res = app
        .manager()
        .pools()
        .with(acc.bot_data_db_path.clone(), crate::db::Schema::Account, move |conn| {
            let tx = conn.transaction()?;
            tx.execute("DELETE FROM groups_cache", [])?;
            {
                let mut st = tx.prepare(
                    "INSERT INTO groups_cache (jid, name, member_count, is_admin, updated_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                )?;
                let t = crate::db::now();
                for (jid, name, n, admin) in &rows {
                    st.execute(rusqlite::params![jid, name, n, *admin as i64, t])?;
                }
            }
            tx.commit()?;
            Ok(())
        })
        .await;
    if let Err(e) = res {
        tracing::warn!(account_id = %acc.id, error = %e, "could not cache groups");
    }
}

pub(crate) async fn group_page<R: Req>(
    bot: &R,
    app: &App,
    c: &Caller,
    acc: &Account,
    gid: &GroupId,
    edit: Option<MessageId>,
) -> anyhow::Result<()> {
    group_page_noted(bot, app, c, acc, gid, edit, "").await
}

/// The group's page with `note` (what was just done there) above it.
async fn group_page_noted<R: Req>(
    bot: &R,
    app: &App,
    c: &Caller,
    acc: &Account,
    gid: &GroupId,
    edit: Option<MessageId>,
    note: &str,
) -> anyhow::Result<()> {
    let l = c.lang;
    let Some(s) = session(bot, app, c, acc).await else {
        return Ok(());
    };
    let info = match s.group_info(gid).await {
        Ok(i) => i,
        // A list shown before the account left (or was removed) still offers the group.
        Err(WaError::NotFound(_)) => {
            let t = tr_with(l, Key::NotInGroup, &[("phone", &account_label(acc))]);
            let kb = InlineKeyboardMarkup::new(vec![vec![
                btn(app, c, tr(l, Key::BtnGroupList), Cb::Groups(acc.id, 0)),
                btn(app, c, tr(l, Key::BtnMenu), Cb::Menu),
            ]]);
            edit_or_send(bot, app.manager(), c.chat, edit, &t, Some(kb)).await;
            return Ok(());
        }
        Err(e) => {
            edit_or_send(
                bot,
                app.manager(),
                c.chat,
                edit,
                &wa_error_text(l, &e),
                Some(back_to_menu(app, c)),
            )
            .await;
            return Ok(());
        }
    };
    let own = acc.phone.clone();
    let admin = info
        .members
        .iter()
        .any(|m| m.phone == own && (m.is_admin || m.is_super_admin));
    let yes_no = |b: bool| if b { "✅" } else { "▫️" };
    let text = format!(
        "👥 <b>{}</b>\n{}: {}\n{}: {}\n📣 {} {}\n🔒 {} {}\n{}",
        esc(&info.name),
        t2(l, "Anggota", "Members"),
        info.members.len(),
        t2(l, "Admin", "Admin"),
        if admin {
            t2(l, "ya", "yes")
        } else {
            t2(l, "tidak", "no")
        },
        yes_no(info.announce),
        t2(l, "hanya admin yang bisa mengirim", "only admins can send"),
        yes_no(info.locked),
        t2(l, "hanya admin yang bisa mengubah info", "only admins can edit info"),
        info.description.as_deref().map(esc).unwrap_or_default(),
    );
    let text = if admin {
        text
    } else {
        format!("{text}\n\n{}", tr(l, Key::GroupNotAdminNote))
    };
    let text = if note.is_empty() {
        text
    } else {
        format!("{note}\n\n{text}")
    };
    let a = acc.id;
    let g = gid.clone();
    let mut rows = Vec::new();
    // WhatsApp lets only admins share the link, manage members and change the settings
    // (and edit the info when locked, send when announce-only): a member is not offered
    // what would only fail, and the page says why.
    if admin {
        rows.push(vec![
            btn(
                app,
                c,
                &t2(l, "🔗 Tautan undangan", "🔗 Invite link"),
                Cb::GroupLink(a, g.clone()),
            ),
            btn(
                app,
                c,
                &t2(l, "♻️ Cabut tautan", "♻️ Revoke link"),
                Cb::GroupRevoke(a, g.clone()),
            ),
        ]);
    }
    let mut second = vec![btn(
        app,
        c,
        &t2(l, "👤 Anggota", "👤 Members"),
        Cb::GroupMembers(a, g.clone()),
    )];
    if input_allowed(InputKind::SendGroup, &info, admin) {
        second.push(btn(
            app,
            c,
            &t2(l, "✉️ Kirim pesan", "✉️ Send message"),
            Cb::GroupInput(a, g.clone(), InputKind::SendGroup),
        ));
    }
    rows.push(second);
    // Buttons that ask for text about this group, two to a row.
    let inputs = [
        ("➕ Tambah", "➕ Add", InputKind::AddMembers),
        ("➖ Keluarkan", "➖ Remove", InputKind::RemoveMembers),
        ("⬆️ Jadikan admin", "⬆️ Promote", InputKind::PromoteMembers),
        ("⬇️ Cabut admin", "⬇️ Demote", InputKind::DemoteMembers),
        ("✏️ Ganti nama", "✏️ Rename", InputKind::Rename),
        ("📝 Deskripsi", "📝 Description", InputKind::Describe),
    ];
    let offered: Vec<_> = inputs
        .iter()
        .filter(|(_, _, kind)| input_allowed(*kind, &info, admin))
        .collect();
    for pair in offered.chunks(2) {
        rows.push(
            pair.iter()
                .map(|(id, en, kind)| btn(app, c, &t2(l, id, en), Cb::GroupInput(a, g.clone(), *kind)))
                .collect(),
        );
    }
    if admin {
        rows.push(vec![
            btn(
                app,
                c,
                &toggle_label(l, "📣", ("Hanya admin kirim", "Admins-only sending"), info.announce),
                Cb::GroupAnnounce(a, g.clone(), !info.announce),
            ),
            btn(
                app,
                c,
                &toggle_label(l, "🔒", ("Info dikunci", "Info locked"), info.locked),
                Cb::GroupLock(a, g.clone(), !info.locked),
            ),
        ]);
    }
    rows.extend(super::members::group_rows(app, c, acc, s.as_ref(), gid, admin).await);
    rows.push(vec![
        btn(app, c, &t2(l, "🚪 Keluar", "🚪 Leave"), Cb::GroupLeave(a, g.clone())),
        btn(
            app,
            c,
            tr(l, Key::BtnBack),
            Cb::Groups(a, list_page_of(app, acc, gid).await),
        ),
    ]);
    edit_or_send(
        bot,
        app.manager(),
        c.chat,
        edit,
        &text,
        Some(InlineKeyboardMarkup::new(rows)),
    )
    .await;
    Ok(())
}

/// True when the account is the group's only admin (leaving would leave it unmanaged).
async fn last_admin(app: &App, c: &Caller, acc: &Account, g: &GroupId) -> bool {
    let Ok(s) = app.manager().session_of(c.tid, acc.id).await else {
        return false;
    };
    let Ok(info) = s.group_info(g).await else {
        return false;
    };
    let admins: Vec<_> = info.members.iter().filter(|m| m.is_admin || m.is_super_admin).collect();
    admins.len() == 1 && admins[0].phone == acc.phone && info.members.len() > 1
}

/// Group names by JID from the account's cached list, for texts that would otherwise show a
/// `…@g.us` ID.
pub(crate) async fn cached_group_names(app: &App, acc: &Account) -> std::collections::HashMap<String, String> {
    app.manager()
        .pools()
        .with(acc.bot_data_db_path.clone(), crate::db::Schema::Account, |conn| {
            let mut st = conn.prepare("SELECT jid, name FROM groups_cache")?;
            let rows = st
                .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?
                .collect::<Result<std::collections::HashMap<_, _>, _>>()?;
            Ok(rows)
        })
        .await
        .unwrap_or_default()
}

/// Keeps the cached list's name of a group the account just renamed, so the next screen
/// (a leave confirmation, a preview) names it as the user now knows it.
async fn rename_cached(app: &App, acc: &Account, g: &GroupId, name: &str) {
    let (jid, name) = (g.as_str().to_string(), name.to_string());
    let res = app
        .manager()
        .pools()
        .with(acc.bot_data_db_path.clone(), crate::db::Schema::Account, move |conn| {
            conn.execute("UPDATE groups_cache SET name = ?2 WHERE jid = ?1", [jid, name])?;
            Ok(())
        })
        .await;
    if let Err(e) = res {
        tracing::warn!(account_id = %acc.id, error = %e, "could not update the cached group name");
    }
}

/// A switch's label with its state: «📣 Hanya admin kirim: ON». Pressing it flips it.
fn toggle_label(l: Lang, icon: &str, (id, en): (&str, &str), on: bool) -> String {
    format!("{icon} {}: {}", t2(l, id, en), if on { "ON" } else { "OFF" })
}

/// The page of the (unfiltered) group list that shows `gid`, from the cached list in its
/// order: Back from a group returns to where the user found it.
async fn list_page_of(app: &App, acc: &Account, gid: &GroupId) -> u32 {
    let names = app
        .manager()
        .pools()
        .with(acc.bot_data_db_path.clone(), crate::db::Schema::Account, |conn| {
            let mut st = conn.prepare("SELECT jid, name FROM groups_cache")?;
            let rows = st
                .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
        .await;
    let Ok(mut names) = names else { return 0 };
    names.sort_by(|a, b| crate::text::natural_cmp(&a.1, &b.1));
    names
        .iter()
        .position(|(jid, _)| jid == gid.as_str())
        .map_or(0, |i| (i / PAGE) as u32)
}

/// True when the account may do `kind` in a group described by `info`: WhatsApp refuses the
/// member actions to anyone but an admin, the info edits when the group is locked, and sending
/// when it is announce-only.
fn input_allowed(kind: InputKind, info: &crate::wa::GroupInfo, admin: bool) -> bool {
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
fn input_prompt(lang: Lang, kind: InputKind, target: &str) -> String {
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
        ScheduleAt => super::schedule_ui::ask_text(lang),
        TemplateName => t2(lang, "💾 Ketik nama untuk menyimpan teks pekerjaan {t} sebagai template (maks. 40 karakter).", "💾 Type a name to save the text of job {t} as a template (at most 40 characters)."),
        // --- members ---
        Nickname => return super::members::nickname_prompt(lang, target),
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
fn prompt_message(app: &App, c: &Caller, p: &Pending) -> (String, InlineKeyboardMarkup) {
    let ask = if p.kind == InputKind::Broadcast && p.data.is_some() {
        broadcast_where(c.lang)
    } else {
        input_prompt(c.lang, p.kind, &p.target)
    };
    // --- sched ---: the time zone a time is asked in.
    let ask = ask.replace("{zone}", &super::schedule_ui::zone(app));
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

/// The name the user knows a group by: from the cached list, else from WhatsApp, else its ID.
async fn group_name(app: &App, c: &Caller, acc: &Account, g: &GroupId) -> String {
    let jid = g.as_str().to_string();
    let cached = app
        .manager()
        .pools()
        .with(acc.bot_data_db_path.clone(), crate::db::Schema::Account, move |conn| {
            use rusqlite::OptionalExtension;
            Ok(conn
                .query_row("SELECT name FROM groups_cache WHERE jid = ?1", [jid], |r| {
                    r.get::<_, String>(0)
                })
                .optional()?)
        })
        .await;
    if let Ok(Some(name)) = cached {
        return name;
    }
    if let Ok(s) = app.manager().session_of(c.tid, acc.id).await {
        if let Ok(info) = s.group_info(g).await {
            return info.name;
        }
    }
    g.user().to_string()
}

/// Buttons that act on one of the caller's accounts (ownership already checked).
pub(crate) async fn account_callback<R: Req>(
    bot: &R,
    app: &App,
    c: &Caller,
    mid: Option<MessageId>,
    cb: Cb,
    acc: Account,
) -> anyhow::Result<Option<(String, bool)>> {
    let l = c.lang;
    let m = app.manager();
    match cb {
        Cb::Groups(_, page) => groups_page(bot, app, c, &acc, page, None, mid).await?,
        Cb::Group(_, g) => group_page(bot, app, c, &acc, &g, mid).await?,
        Cb::GroupLink(_, ref g) | Cb::GroupRevokeYes(_, ref g) => {
            let reset = matches!(cb, Cb::GroupRevokeYes(..));
            let Some(s) = session(bot, app, c, &acc).await else {
                return Ok(None);
            };
            let text = match s.invite_link(g, reset).await {
                Ok(link) => {
                    let head = if reset {
                        t2(
                            l,
                            "♻️ Tautan lama dicabut. Tautan baru:",
                            "♻️ Old link revoked. New link:",
                        )
                    } else {
                        t2(l, "🔗 Tautan undangan:", "🔗 Invite link:")
                    };
                    format!("{head}\n<code>{}</code>", esc(&link))
                }
                Err(e) => wa_error_text(l, &e),
            };
            let kb = InlineKeyboardMarkup::new(vec![vec![btn(
                app,
                c,
                tr(l, Key::BtnBack),
                Cb::Group(acc.id, g.clone()),
            )]]);
            edit_or_send(bot, m, c.chat, mid, &text, Some(kb)).await;
        }
        Cb::GroupRevoke(_, g) => {
            let t = t2(
                l,
                "♻️ Cabut tautan undangan grup ini? Tautan lama tidak akan berlaku lagi.",
                "♻️ Revoke this group's invite link? The old link stops working.",
            );
            let kb = InlineKeyboardMarkup::new(vec![vec![
                btn(app, c, tr(l, Key::BtnYes), Cb::GroupRevokeYes(acc.id, g.clone())),
                btn(app, c, tr(l, Key::BtnNo), Cb::Group(acc.id, g)),
            ]]);
            edit_or_send(bot, m, c.chat, mid, &t, Some(kb)).await;
        }
        Cb::GroupMembers(_, g) => {
            let Some(s) = session(bot, app, c, &acc).await else {
                return Ok(None);
            };
            match s.group_info(&g).await {
                Ok(info) => {
                    let mut text = format!("👤 <b>{}</b> — {}\n", esc(&info.name), info.members.len());
                    for mem in &info.members {
                        let role = if mem.is_super_admin {
                            " 👑👑"
                        } else if mem.is_admin {
                            " 👑"
                        } else {
                            ""
                        };
                        text.push_str(&format!("{}{role}\n", mem.phone));
                    }
                    text.push_str(&t2(
                        l,
                        "\n👑 admin · 👑👑 pembuat grup",
                        "\n👑 admin · 👑👑 the group's creator",
                    ));
                    let kb = InlineKeyboardMarkup::new(vec![vec![
                        btn(app, c, tr(l, Key::BtnBack), Cb::Group(acc.id, g.clone())),
                        btn(app, c, tr(l, Key::BtnMenu), Cb::Menu),
                    ]]);
                    super::send::send_long_with(bot, m, c.chat, &text, "members.txt", &esc(&info.name), Some(kb)).await;
                }
                Err(e) => {
                    let kb = InlineKeyboardMarkup::new(vec![vec![
                        btn(app, c, tr(l, Key::BtnBack), Cb::Group(acc.id, g.clone())),
                        btn(app, c, tr(l, Key::BtnMenu), Cb::Menu),
                    ]]);
                    send_html(bot, m, c.chat, &wa_error_text(l, &e), Some(kb)).await;
                }
            }
        }
        Cb::GroupLeave(_, g) => {
            let name = group_name(app, c, &acc, &g).await;
            let mut t = t2(
                l,
                "🚪 Keluar dari grup ini? «{g}» — {phone} tidak lagi menerima pesannya.",
                "🚪 Leave this group? «{g}» — {phone} stops getting its messages.",
            )
            .replace("{g}", &esc(&name))
            .replace("{phone}", &acc.phone.to_string());
            if last_admin(app, c, &acc, &g).await {
                t.push_str(&t2(
                    l,
                    "\n\n⚠️ Akun ini satu-satunya admin grup: setelah keluar, tidak ada yang bisa mengelolanya (WhatsApp memilih admin baru secara acak bila masih ada anggota).",
                    "\n\n⚠️ This account is the group's only admin: after it leaves, nobody can manage it (WhatsApp picks a new admin at random if members remain).",
                ));
            }
            let kb = InlineKeyboardMarkup::new(vec![vec![
                btn(app, c, tr(l, Key::BtnYes), Cb::GroupLeaveYes(acc.id, g.clone())),
                btn(app, c, tr(l, Key::BtnNo), Cb::Group(acc.id, g)),
            ]]);
            edit_or_send(bot, m, c.chat, mid, &t, Some(kb)).await;
        }
        Cb::GroupLeaveYes(_, g) => {
            let Some(s) = session(bot, app, c, &acc).await else {
                return Ok(None);
            };
            let t = match s.leave_group(&g).await {
                Ok(()) => t2(l, "🚪 Sudah keluar dari grup.", "🚪 Left the group."),
                Err(e) => wa_error_text(l, &e),
            };
            let kb = InlineKeyboardMarkup::new(vec![vec![btn(app, c, tr(l, Key::BtnBack), Cb::Groups(acc.id, 0))]]);
            edit_or_send(bot, m, c.chat, mid, &t, Some(kb)).await;
        }
        Cb::GroupAnnounce(_, ref g, on) | Cb::GroupLock(_, ref g, on) => {
            let Some(s) = session(bot, app, c, &acc).await else {
                return Ok(None);
            };
            let res = if matches!(cb, Cb::GroupAnnounce(..)) {
                s.set_announce(g, on).await
            } else {
                s.set_locked(g, on).await
            };
            if let Err(e) = res {
                return Ok(Some((super::flows::plain_text(&wa_error_text(l, &e)), true)));
            }
            group_page(bot, app, c, &acc, g, mid).await?;
        }
        Cb::GroupInput(_, g, kind) => {
            // An old page may offer what the account may no longer do: refuse before asking.
            let Some(s) = session(bot, app, c, &acc).await else {
                return Ok(None);
            };
            match s.group_info(&g).await {
                Ok(info) => {
                    let admin = info
                        .members
                        .iter()
                        .any(|x| x.phone == acc.phone && (x.is_admin || x.is_super_admin));
                    if !input_allowed(kind, &info, admin) {
                        return Ok(Some((super::flows::plain_text(tr(l, Key::GroupAdminOnly)), true)));
                    }
                }
                Err(e) => return Ok(Some((super::flows::plain_text(&wa_error_text(l, &e)), true))),
            }
            let name = group_name(app, c, &acc, &g).await;
            ask_input(bot, app, c, Pending::new(acc.id, kind, Some(g), name), mid).await;
        }
        Cb::Input(_, kind) => {
            let p = Pending::new(acc.id, kind, None, acc.label());
            ask_input(bot, app, c, p, mid).await;
        }
        Cb::ExportLinks(_) => export_links(bot, app, c, &acc, mid).await?,
        Cb::Messages(_) => {
            let t = t2(l, "✉️ <b>Pesan</b> dari {phone}", "✉️ <b>Messages</b> from {phone}")
                .replace("{phone}", &account_label(&acc));
            let kb = InlineKeyboardMarkup::new(vec![
                vec![btn(
                    app,
                    c,
                    &t2(l, "✉️ Kirim ke nomor", "✉️ Send to a number"),
                    Cb::Input(acc.id, InputKind::SendNumber),
                )],
                vec![btn(
                    app,
                    c,
                    &t2(l, "📢 Siaran", "📢 Broadcast"),
                    Cb::Input(acc.id, InputKind::Broadcast),
                )],
                vec![btn(
                    app,
                    c,
                    &t2(l, "🔎 Cek nomor WhatsApp", "🔎 Check numbers on WhatsApp"),
                    Cb::Input(acc.id, InputKind::CheckNumbers),
                )],
                // --- sched ---
                vec![
                    btn(app, c, &t2(l, "⏰ Terjadwal", "⏰ Scheduled"), Cb::Scheduled(acc.id)),
                    btn(app, c, &t2(l, "📄 Template", "📄 Templates"), Cb::Templates(acc.id)),
                ],
                vec![
                    btn(app, c, tr(l, Key::BtnJobs), Cb::Jobs(acc.id, 0)),
                    btn(app, c, tr(l, Key::BtnMenu), Cb::Menu),
                ],
            ]);
            edit_or_send(bot, m, c.chat, mid, &t, Some(kb)).await;
        }
        Cb::BroadcastTo(_, target) => {
            let Some(p) = app
                .take_pending(c.tid)
                .filter(|p| p.kind == InputKind::Broadcast && p.account == acc.id)
                // --- media2 ---: an expired prompt has lost its file; it must not go out bare.
                .filter(|p| !p.is_expired(app.prompt_timeout()))
            else {
                return Ok(Some((super::flows::plain_text(tr(l, Key::StaleButton)), true)));
            };
            let text = p.data.unwrap_or_default();
            let Some(s) = session(bot, app, c, &acc).await else {
                return Ok(None);
            };
            let groups = match s.groups().await {
                Ok(g) => g,
                Err(e) => {
                    send_html(bot, m, c.chat, &wa_error_text(l, &e), Some(back_to_menu(app, c))).await;
                    return Ok(None);
                }
            };
            let items: Vec<String> = groups
                .into_iter()
                .filter(|g| target == super::callback::BroadcastTarget::AllGroups || g.is_admin)
                .map(|g| g.id.as_str().to_string())
                .collect();
            super::jobs_ui::propose(
                bot,
                app,
                c,
                &acc,
                crate::jobs::JobKind::Broadcast {
                    text,
                    media: p.media.map(Box::new),
                },
                items,
                Vec::new(),
                mid,
            )
            .await?;
        }
        cb @ (Cb::JobStart(..)
        | Cb::JobPause(..)
        | Cb::JobResume(..)
        | Cb::JobCancel(..)
        | Cb::JobCancelYes(..)
        | Cb::Jobs(..)
        | Cb::JobView(..)
        | Cb::JobReport(..)
        | Cb::JobRerun(..)) => {
            return super::jobs_ui::job_button(bot, app, c, &acc, cb, mid).await;
        }
        // --- sched ---
        cb @ (Cb::JobSchedule(..) | Cb::Scheduled(_) | Cb::JobTest(..)) => {
            return super::schedule_ui::button(bot, app, c, &acc, cb, mid).await;
        }
        cb @ (Cb::TemplateSave(..) | Cb::Templates(_) | Cb::TemplateUse(..) | Cb::TemplateDelete(..)) => {
            return super::templates_ui::button(bot, app, c, &acc, cb, mid).await;
        }
        // --- members ---
        cb @ (Cb::MembersExport(..)
        | Cb::MembersExportAll(_)
        | Cb::JoinRequests(..)
        | Cb::JoinAnswer(..)
        | Cb::JoinAnswerAll(..)
        | Cb::JoinAnswerAllYes(..)
        | Cb::JoinApproval(..)
        | Cb::NicknameClear(_)) => return super::members::button(bot, app, c, mid, cb, acc).await,
        _ => return Ok(Some((super::flows::plain_text(tr(l, Key::StaleButton)), true))),
    }
    Ok(None)
}

/// Exports the invite links of every group where the account is admin, as .txt and .csv.
async fn export_links<R: Req>(
    bot: &R,
    app: &App,
    c: &Caller,
    acc: &Account,
    mid: Option<MessageId>,
) -> anyhow::Result<()> {
    let l = c.lang;
    let m = app.manager();
    let Some(s) = session(bot, app, c, acc).await else {
        return Ok(());
    };
    let groups = match s.groups().await {
        Ok(g) => g.into_iter().filter(|g| g.is_admin).collect::<Vec<_>>(),
        Err(e) => {
            send_html(bot, m, c.chat, &wa_error_text(l, &e), Some(back_to_menu(app, c))).await;
            return Ok(());
        }
    };
    if groups.is_empty() {
        edit_or_send(
            bot,
            m,
            c.chat,
            mid,
            &t2(
                l,
                "Tidak ada grup tempat akun ini admin.",
                "There are no groups where this account is admin.",
            ),
            Some(back_to_menu(app, c)),
        )
        .await;
        return Ok(());
    }
    let total = groups.len();
    let progress = edit_or_send(bot, m, c.chat, mid, &format!("📤 0/{total}"), None).await;
    let mut txt = String::new();
    let mut rows = vec![[
        t2(l, "nama", "name"),
        t2(l, "tautan", "link"),
        t2(l, "anggota", "members"),
    ]];
    let mut failed = Vec::new();
    let mut last_edit = std::time::Instant::now();
    for (i, g) in groups.iter().enumerate() {
        match s.invite_link(&g.id, false).await {
            Ok(link) => {
                txt.push_str(&link);
                txt.push('\n');
                rows.push([g.name.clone(), link, g.member_count.to_string()]);
            }
            Err(e) => failed.push(format!("{}: {}", g.name, wa_error_text(l, &e))),
        }
        if last_edit.elapsed() > std::time::Duration::from_secs(2) {
            last_edit = std::time::Instant::now();
            edit_or_send(bot, m, c.chat, progress, &format!("📤 {}/{total}", i + 1), None).await;
        }
    }
    let mut summary = t2(
        l,
        "📤 {ok} tautan diekspor dari {total} grup admin.",
        "📤 Exported {ok} links from {total} admin groups.",
    )
    .replace("{ok}", &(total - failed.len()).to_string())
    .replace("{total}", &total.to_string());
    for f in failed.iter().take(20) {
        summary.push_str(&format!("\n❌ {}", esc(f)));
    }
    edit_or_send(bot, m, c.chat, progress, &summary, Some(back_to_menu(app, c))).await;
    send_document(bot, m, c.chat, "invite_links.txt", txt.into_bytes(), "invite_links.txt").await;
    let csv = crate::text::csv_document(rows);
    send_document(bot, m, c.chat, "invite_links.csv", csv.into_bytes(), "invite_links.csv").await;
    Ok(())
}

/// Reads the text of a message, or of an uploaded .txt file (size-capped; UTF-8 with or
/// without a BOM, or UTF-16 with one).
async fn input_text<R: Req>(bot: &R, app: &App, c: &Caller, msg: &Message) -> anyhow::Result<Result<String, String>> {
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

/// Free text (or a file) sent after a button asked for it.
pub(crate) async fn pending_input<R: Req>(
    bot: &R,
    app: &App,
    c: &Caller,
    p: Pending,
    msg: &Message,
) -> anyhow::Result<()> {
    let l = c.lang;
    let m = app.manager();
    let acc = match m.account_of(c.tid, p.account).await {
        Ok(a) => a,
        Err(_) => {
            send_html(bot, m, c.chat, tr(l, Key::StaleButton), Some(back_to_menu(app, c))).await;
            return Ok(());
        }
    };
    use InputKind::*;
    // A photo, document, video, voice note or audio where a message is asked for is the
    // message (its caption the text); elsewhere a document is a list.
    if matches!(p.kind, SendNumber | SendGroup | Broadcast) {
        if let Some(file) = super::media::telegram_media(msg) {
            return media_input(bot, app, c, p, &acc, file, msg).await;
        }
    }
    let text = match input_text(bot, app, c, msg).await? {
        Ok(t) => t,
        Err(why) => {
            reask(bot, app, c, p, &why).await;
            return Ok(());
        }
    };
    let max_items = m.config().job_max_items;
    // A list with nothing usable in it, or too much, is asked for again.
    let list_problem = |n: usize, bad: &[String]| -> Option<String> {
        if n == 0 {
            let mut why = t2(l, "Tidak ada item yang valid.", "No valid items.");
            for b in bad.iter().take(5) {
                why.push_str(&format!(" <code>{}</code>", esc(b)));
            }
            Some(why)
        } else if n > max_items {
            Some(
                t2(
                    l,
                    "Terlalu banyak item (maksimal {max}).",
                    "Too many items (at most {max}).",
                )
                .replace("{max}", &max_items.to_string()),
            )
        } else {
            None
        }
    };
    let cc = m.config().default_country_code.clone();
    let reply = |t: String| async move { send_html(bot, m, c.chat, &t, Some(back_to_menu(app, c))).await };
    match (p.kind, p.group.clone()) {
        // --- sched ---
        (ScheduleAt, _) => super::schedule_ui::time_input(bot, app, c, &acc, p, &text).await?,
        (TemplateName, _) => super::templates_ui::name_input(bot, app, c, &acc, p, &text).await?,
        // --- members ---
        (Nickname, _) => {
            if let Err(why) = super::members::nickname_input(bot, app, c, &acc, &text).await? {
                reask(bot, app, c, p, &why).await;
            }
        }
        (SearchGroups, _) => groups_page(bot, app, c, &acc, 0, Some(text.trim()), None).await?,
        (Rename, Some(g)) | (Describe, Some(g)) | (SendGroup, Some(g)) => {
            let Some(s) = session(bot, app, c, &acc).await else {
                return Ok(());
            };
            let t = text.trim();
            if p.kind == Rename && t.chars().count() > 100 {
                let why = t2(
                    l,
                    "Nama grup maksimal 100 karakter.",
                    "A group name has at most 100 characters.",
                );
                reask(bot, app, c, p, &why).await;
                return Ok(());
            }
            let res = match p.kind {
                Rename => s.set_subject(&g, t).await,
                Describe => s.set_description(&g, if t == "-" { None } else { Some(t) }).await,
                _ => s.send_text(&ChatTarget::Group(g.clone()), &text).await.map(|_| ()),
            };
            match res {
                Ok(()) => {
                    if p.kind == Rename {
                        rename_cached(app, &acc, &g, t).await;
                    }
                    let what = match p.kind {
                        Rename => t2(l, "✅ Nama grup diganti", "✅ Group renamed"),
                        Describe => t2(l, "✅ Deskripsi grup diganti", "✅ Group description changed"),
                        _ => t2(l, "✅ Pesan terkirim ke grup", "✅ Message sent to the group"),
                    };
                    let note = format!("{what} {} {}.", t2(l, "dari", "from"), acc.phone);
                    group_page_noted(bot, app, c, &acc, &g, None, &note).await?;
                }
                Err(e) => {
                    reply(wa_error_text(l, &e)).await;
                }
            };
        }
        (AddMembers | RemoveMembers | PromoteMembers | DemoteMembers, Some(g)) => {
            let (nums, bad) = parse_numbers(&text, &cc);
            if let Some(why) = list_problem(nums.len(), &bad) {
                reask(bot, app, c, p, &why).await;
                return Ok(());
            }
            let action = match p.kind {
                AddMembers => MemberAction::Add,
                RemoveMembers => MemberAction::Remove,
                PromoteMembers => MemberAction::Promote,
                _ => MemberAction::Demote,
            };
            let items = nums.iter().map(|n| n.digits().to_string()).collect();
            super::jobs_ui::propose(
                bot,
                app,
                c,
                &acc,
                crate::jobs::JobKind::Members { group: g, action },
                items,
                bad,
                None,
            )
            .await?;
        }
        (SendNumber, _) => {
            let (first, rest) = text.trim().split_once('\n').unwrap_or((text.trim(), ""));
            let phone = match PhoneNumber::parse(first, &cc) {
                Ok(p) => p,
                Err(_) => {
                    let why = t2(
                        l,
                        "Baris pertama harus nomor tujuan.",
                        "The first line must be the recipient's number.",
                    );
                    reask(bot, app, c, p, &why).await;
                    return Ok(());
                }
            };
            if rest.trim().is_empty() {
                reask(
                    bot,
                    app,
                    c,
                    p,
                    &t2(l, "Teks pesan kosong.", "The message text is empty."),
                )
                .await;
                return Ok(());
            }
            let Some(s) = session(bot, app, c, &acc).await else {
                return Ok(());
            };
            match s.send_text(&ChatTarget::Phone(phone.clone()), rest.trim()).await {
                Ok(_) => {
                    reply(t2(l, "✅ Terkirim ke {p}.", "✅ Sent to {p}.").replace("{p}", &phone.to_string())).await
                }
                // A number is "not found" when it has no WhatsApp, not because of any group.
                Err(WaError::NotFound(_)) => {
                    reply(tr_with(l, Key::NotOnWhatsApp, &[("phone", &phone.to_string())])).await
                }
                Err(e) => reply(wa_error_text(l, &e)).await,
            };
        }
        (CreateGroups, _) => {
            let mut lines = text.lines().map(str::trim).filter(|x| !x.is_empty());
            let pattern = lines.next().unwrap_or("").to_string();
            let count: usize = match lines.next().map(|n| n.parse::<usize>()) {
                None => 1,
                Some(Ok(n)) if n >= 1 => n,
                Some(_) => {
                    let why = t2(
                        l,
                        "Baris kedua harus jumlah grup (angka).",
                        "The second line must be the number of groups.",
                    );
                    reask(bot, app, c, p, &why).await;
                    return Ok(());
                }
            };
            let cap = m.config().max_create_groups;
            if count > cap {
                let why = t2(l, "Maksimal {cap} grup sekaligus.", "At most {cap} groups at once.")
                    .replace("{cap}", &cap.to_string());
                reask(bot, app, c, p, &why).await;
                return Ok(());
            }
            if pattern.is_empty() || pattern.chars().count() > 90 {
                let why = t2(
                    l,
                    "Nama grup harus 1–90 karakter.",
                    "A group name has 1 to 90 characters.",
                );
                reask(bot, app, c, p, &why).await;
                return Ok(());
            }
            let rest: Vec<&str> = lines.collect();
            let (members, bad) = parse_numbers(&rest.join("\n"), &cc);
            let names: Vec<String> = (1..=count)
                .map(|n| {
                    if pattern.contains("{n}") {
                        pattern.replace("{n}", &n.to_string())
                    } else if count == 1 {
                        pattern.clone()
                    } else {
                        format!("{pattern} {n}")
                    }
                })
                .collect();
            super::jobs_ui::propose(
                bot,
                app,
                c,
                &acc,
                crate::jobs::JobKind::CreateGroups { members },
                names,
                bad,
                None,
            )
            .await?;
        }
        (JoinGroups, _) => {
            let (links, bad) = parse_links(&text);
            if let Some(why) = list_problem(links.len(), &bad) {
                reask(bot, app, c, p, &why).await;
                return Ok(());
            }
            super::jobs_ui::propose(bot, app, c, &acc, crate::jobs::JobKind::JoinGroups, links, bad, None).await?;
        }
        (LeaveGroups, _) => {
            let Some(s) = session(bot, app, c, &acc).await else {
                return Ok(());
            };
            let q = text.trim().to_lowercase();
            let groups = match s.groups().await {
                Ok(g) => g,
                Err(e) => {
                    reply(wa_error_text(l, &e)).await;
                    return Ok(());
                }
            };
            let items: Vec<String> = groups
                .into_iter()
                .filter(|g| q == "*" || g.name.to_lowercase().contains(&q))
                .map(|g| g.id.as_str().to_string())
                .collect();
            if items.is_empty() {
                let why = t2(
                    l,
                    "Tidak ada grup yang namanya memuat «{q}».",
                    "No group's name contains «{q}».",
                )
                .replace("{q}", &esc(text.trim()));
                reask(bot, app, c, p, &why).await;
                return Ok(());
            }
            super::jobs_ui::propose(
                bot,
                app,
                c,
                &acc,
                crate::jobs::JobKind::LeaveGroups,
                items,
                Vec::new(),
                None,
            )
            .await?;
        }
        (Broadcast, _) => {
            let t = text.trim().to_string();
            if t.is_empty() {
                reask(
                    bot,
                    app,
                    c,
                    p,
                    &t2(l, "Teks pesan kosong.", "The message text is empty."),
                )
                .await;
                return Ok(());
            }
            // The second step of the same prompt: where the text goes.
            app.set_pending(
                c.tid,
                Pending {
                    data: Some(t),
                    created_at: std::time::Instant::now(),
                    ..p
                },
            );
            ask_broadcast_where(bot, app, c, &acc).await;
        }
        (CheckNumbers, _) => {
            let (nums, bad) = parse_numbers(&text, &cc);
            if let Some(why) = list_problem(nums.len(), &bad) {
                reask(bot, app, c, p, &why).await;
                return Ok(());
            }
            let items = nums.iter().map(|n| n.digits().to_string()).collect();
            super::jobs_ui::propose(bot, app, c, &acc, crate::jobs::JobKind::CheckNumbers, items, bad, None).await?;
        }
        _ => {
            send_html(bot, m, c.chat, tr(l, Key::StaleButton), Some(back_to_menu(app, c))).await;
        }
    }
    Ok(())
}

/// The broadcast's second step: its buttons (all groups, admin groups) or a list of numbers.
async fn ask_broadcast_where<R: Req>(bot: &R, app: &App, c: &Caller, acc: &Account) {
    let l = c.lang;
    let m = app.manager();
    let kb = InlineKeyboardMarkup::new(vec![
        vec![btn(
            app,
            c,
            &t2(l, "👥 Semua grup saya", "👥 All my groups"),
            Cb::BroadcastTo(acc.id, super::callback::BroadcastTarget::AllGroups),
        )],
        vec![btn(
            app,
            c,
            &t2(l, "👑 Grup tempat saya admin", "👑 Groups where I am admin"),
            Cb::BroadcastTo(acc.id, super::callback::BroadcastTarget::AdminGroups),
        )],
    ]);
    let kb = kb.append_row(vec![btn(app, c, tr(l, Key::BtnCancel), Cb::InputCancel)]);
    let prompt = format!("{}\n\n{}", broadcast_where(l), tr(l, Key::PromptCancelHint));
    if let Some(mid) = send_html(bot, m, c.chat, &prompt, Some(kb)).await {
        app.set_pending_prompt(c.tid, mid);
    }
}

/// A file sent where a message was asked for: checked against Telegram's and WhatsApp's
/// limits before anything is fetched; then sent at once (to a number, to a group), or
/// kept in the account's folder for the broadcast being prepared.
async fn media_input<R: Req>(
    bot: &R,
    app: &App,
    c: &Caller,
    p: Pending,
    acc: &Account,
    file: super::media::TgMedia,
    msg: &Message,
) -> anyhow::Result<()> {
    let l = c.lang;
    let m = app.manager();
    let caption = msg.caption().unwrap_or("").trim().to_string();
    if let Some(why) = super::media::size_refusal(l, &file) {
        reask(bot, app, c, p, &why).await;
        return Ok(());
    }
    // To a number, the caption's first line is the number, as in a text.
    let (target, caption) = match (p.kind, p.group.clone()) {
        (InputKind::SendNumber, _) => {
            let (first, rest) = caption.split_once('\n').unwrap_or((caption.as_str(), ""));
            match PhoneNumber::parse(first.trim(), &m.config().default_country_code) {
                Ok(phone) => (Some(ChatTarget::Phone(phone)), rest.trim().to_string()),
                Err(_) => {
                    let why = t2(
                        l,
                        "Tulis nomor tujuan di baris pertama keterangan (caption) file.",
                        "Put the recipient's number on the first line of the file's caption.",
                    );
                    reask(bot, app, c, p, &why).await;
                    return Ok(());
                }
            }
        }
        (InputKind::SendGroup, Some(g)) => (Some(ChatTarget::Group(g)), caption),
        _ => (None, caption),
    };
    let bytes = match super::media::fetch(bot, l, &file).await {
        Ok(b) => b,
        Err(why) => {
            reask(bot, app, c, p, &why).await;
            return Ok(());
        }
    };
    let Some(target) = target else {
        return keep_broadcast_file(bot, app, c, p, acc, file, bytes, caption).await;
    };
    let Some(s) = session(bot, app, c, acc).await else {
        return Ok(());
    };
    let sent = match s.upload_media(file.kind, &bytes, &file.mime, &file.file_name).await {
        Ok(r) => s.send_uploaded(&target, &r, &caption).await,
        Err(e) => Err(e),
    };
    let to = match &target {
        ChatTarget::Phone(phone) => phone.to_string(),
        ChatTarget::Group(_) => format!("«{}»", esc(&p.target)),
    };
    let t = match sent {
        Ok(_) => t2(l, "✅ {kind} terkirim ke {to}.", "✅ {kind} sent to {to}.")
            .replace(
                "{kind}",
                &super::media::describe(l, file.kind, &file.file_name, bytes.len() as u64),
            )
            .replace("{to}", &to),
        Err(WaError::NotFound(_)) if matches!(target, ChatTarget::Phone(_)) => {
            tr_with(l, Key::NotOnWhatsApp, &[("phone", &to)])
        }
        Err(e) => wa_error_text(l, &e),
    };
    send_html(bot, m, c.chat, &t, Some(back_to_menu(app, c))).await;
    Ok(())
}

/// The broadcast's file is kept in the account's folder (the job reads it from there to
/// upload it once); the prompt moves on to where the broadcast goes.
#[allow(clippy::too_many_arguments)]
async fn keep_broadcast_file<R: Req>(
    bot: &R,
    app: &App,
    c: &Caller,
    p: Pending,
    acc: &Account,
    file: super::media::TgMedia,
    bytes: Vec<u8>,
    caption: String,
) -> anyhow::Result<()> {
    let dir = crate::jobs::media_dir(acc);
    let (size, sha256) = (bytes.len() as u64, crate::wa::sha256_hex(&bytes));
    let stored = crate::db::blocking(move || {
        crate::jobs::store_media_file(&dir, &bytes).map_err(|e| crate::db::DbError::Task(e.to_string()))
    })
    .await;
    let name = match stored {
        Ok(n) => n,
        Err(e) => {
            tracing::warn!(account_id = %acc.id, error = %e, "could not keep a broadcast file");
            send_html(
                bot,
                app.manager(),
                c.chat,
                tr(c.lang, Key::Sorry),
                Some(back_to_menu(app, c)),
            )
            .await;
            return Ok(());
        }
    };
    let media = crate::jobs::JobMedia {
        kind: file.kind,
        mime: file.mime,
        file_name: file.file_name,
        size,
        sha256,
        file: name,
        uploaded: None,
        // --- media2 ---: the preview shows the file again by this ID.
        tg_file_id: Some(file.file_id.0.clone()),
    };
    let note = super::media::describe(c.lang, media.kind, &media.file_name, size);
    send_html(bot, app.manager(), c.chat, &note, None).await;
    app.set_pending(
        c.tid,
        Pending {
            data: Some(caption),
            media: Some(media),
            created_at: std::time::Instant::now(),
            ..p
        },
    );
    ask_broadcast_where(bot, app, c, acc).await;
    Ok(())
}

/// A broadcast text is waiting and the user pasted numbers instead of pressing a button.
pub(crate) async fn broadcast_numbers<R: Req>(
    bot: &R,
    app: &App,
    c: &Caller,
    p: Pending,
    msg: &Message,
) -> anyhow::Result<()> {
    let acc = app.manager().account_of(c.tid, p.account).await?;
    let text = match input_text(bot, app, c, msg).await? {
        Ok(t) => t,
        Err(why) => {
            reask(bot, app, c, p, &why).await;
            return Ok(());
        }
    };
    // Each line may carry the recipient's name for `{nama}` (sched).
    let (nums, bad) = crate::recipients::parse(&text, &app.manager().config().default_country_code);
    if nums.is_empty() {
        let why = t2(c.lang, "Tidak ada nomor yang valid.", "No valid numbers.");
        reask(bot, app, c, p, &why).await;
        return Ok(());
    }
    let items = nums
        .iter()
        .map(|(n, name)| crate::jobs::item_input(n.digits(), name.as_deref()))
        .collect();
    let kind = crate::jobs::JobKind::Broadcast {
        media: p.media.map(Box::new),
        text: p.data.unwrap_or_default(),
    };
    super::jobs_ui::propose(bot, app, c, &acc, kind, items, bad, None).await
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
