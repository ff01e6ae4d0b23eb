//! A group's page and its actions: invite link and its reset, the member list, leave (named,
//! warning when the account is the last admin), the admin toggles, and the prompts that act
//! on the group. Admin-only actions are offered to admins only and checked again when pressed.

use teloxide::types::{InlineKeyboardButton, InlineKeyboardMarkup, MessageId};

use crate::account::Account;
use crate::wa::{GroupId, WaError, WaSession};

use super::group_list::list_page_of;
use super::kit::app::{App, Caller, Req};
use super::kit::buttons::{back_to_menu, btn};
use super::kit::callback::{Cb, InputKind};
use super::kit::i18n::{account_label, esc, t2, tr, tr_with, Key, Lang};
use super::kit::prompts::input_allowed;
use super::kit::send::edit_or_send;
use super::kit::session::session;
use super::kit::text::wa_error_text;

/// The buttons this module adds to a group's page: the export for anyone in the group;
/// join requests and the approval toggle (showing its state) for admins only, since WhatsApp
/// refuses both to anyone else.
pub(crate) async fn group_rows(
    app: &App,
    c: &Caller,
    acc: &Account,
    s: &dyn WaSession,
    g: &GroupId,
    admin: bool,
) -> Vec<Vec<InlineKeyboardButton>> {
    let l = c.lang;
    let a = acc.id;
    let mut rows = vec![vec![btn(
        app,
        c,
        &t2(l, "📤 Ekspor anggota", "📤 Export members"),
        Cb::MembersExport(a, g.clone()),
    )]];
    if admin {
        let mut row = vec![btn(
            app,
            c,
            &t2(l, "🙋 Permintaan bergabung", "🙋 Join requests"),
            Cb::JoinRequests(a, g.clone(), 0),
        )];
        // Without its state the toggle would be a guess: it is left out when WhatsApp does
        // not say.
        if let Ok(on) = s.join_approval(g).await {
            row.push(btn(app, c, &approval_label(l, on), Cb::JoinApproval(a, g.clone(), !on)));
        }
        rows.push(row);
    }
    rows
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
pub(crate) async fn group_page_noted<R: Req>(
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
    rows.extend(group_rows(app, c, acc, s.as_ref(), gid, admin).await);
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
pub(crate) async fn last_admin(app: &App, c: &Caller, acc: &Account, g: &GroupId) -> bool {
    let Ok(s) = app.manager().session_of(c.tid, acc.id).await else {
        return false;
    };
    let Ok(info) = s.group_info(g).await else {
        return false;
    };
    let admins: Vec<_> = info.members.iter().filter(|m| m.is_admin || m.is_super_admin).collect();
    admins.len() == 1 && admins[0].phone == acc.phone && info.members.len() > 1
}

/// A switch's label with its state: «📣 Hanya admin kirim: ON». Pressing it flips it.
pub(crate) fn toggle_label(l: Lang, icon: &str, (id, en): (&str, &str), on: bool) -> String {
    format!("{icon} {}: {}", t2(l, id, en), if on { "ON" } else { "OFF" })
}

/// The name the user knows a group by: from the cached list, else from WhatsApp, else its ID.
pub(crate) async fn group_name(app: &App, c: &Caller, acc: &Account, g: &GroupId) -> String {
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

/// «✅ Setujui anggota baru: ON».
fn approval_label(l: Lang, on: bool) -> String {
    let (mark, state) = if on { ("✅", "ON") } else { ("▫️", "OFF") };
    format!(
        "{mark} {}: {state}",
        t2(l, "Setujui anggota baru", "Approve new members")
    )
}
