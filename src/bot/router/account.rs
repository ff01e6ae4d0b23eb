//! Where a button that acts on one of the caller's accounts goes (ownership already
//! checked by the guard in [`super`]).

use teloxide::types::{InlineKeyboardMarkup, MessageId};

use crate::account::Account;

use crate::bot::group_list::{export_links, groups_page};
use crate::bot::group_page::{group_name, group_page, last_admin};
use crate::bot::kit::app::{App, Caller, Pending, Req};
use crate::bot::kit::buttons::{back_to_menu, btn};
use crate::bot::kit::callback::{Cb, InputKind};
use crate::bot::kit::i18n::{account_label, esc, t2, tr, Key};
use crate::bot::kit::prompts::{ask_input, input_allowed};
use crate::bot::kit::send::{edit_or_send, send_html};
use crate::bot::kit::session::session;
use crate::bot::kit::text::wa_error_text;

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
                    crate::bot::kit::send::send_long_with(
                        bot,
                        m,
                        c.chat,
                        &text,
                        "members.txt",
                        &esc(&info.name),
                        Some(kb),
                    )
                    .await;
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
                return Ok(Some((crate::bot::kit::text::plain_text(&wa_error_text(l, &e)), true)));
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
                        return Ok(Some((
                            crate::bot::kit::text::plain_text(tr(l, Key::GroupAdminOnly)),
                            true,
                        )));
                    }
                }
                Err(e) => return Ok(Some((crate::bot::kit::text::plain_text(&wa_error_text(l, &e)), true))),
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
                return Ok(Some((crate::bot::kit::text::plain_text(tr(l, Key::StaleButton)), true)));
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
                .filter(|g| target == crate::bot::kit::callback::BroadcastTarget::AllGroups || g.is_admin)
                .map(|g| g.id.as_str().to_string())
                .collect();
            crate::bot::jobs::propose(
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
            return crate::bot::jobs::job_button(bot, app, c, &acc, cb, mid).await;
        }
        // --- sched ---
        cb @ (Cb::JobSchedule(..) | Cb::Scheduled(_) | Cb::JobTest(..)) => {
            return crate::bot::schedule::button(bot, app, c, &acc, cb, mid).await;
        }
        cb @ (Cb::TemplateSave(..) | Cb::Templates(_) | Cb::TemplateUse(..) | Cb::TemplateDelete(..)) => {
            return crate::bot::templates::button(bot, app, c, &acc, cb, mid).await;
        }
        // --- members ---
        cb @ (Cb::MembersExport(..)
        | Cb::MembersExportAll(_)
        | Cb::JoinRequests(..)
        | Cb::JoinAnswer(..)
        | Cb::JoinAnswerAll(..)
        | Cb::JoinAnswerAllYes(..)
        | Cb::JoinApproval(..)
        | Cb::NicknameClear(_)) => return crate::bot::members::button(bot, app, c, mid, cb, acc).await,
        _ => return Ok(Some((crate::bot::kit::text::plain_text(tr(l, Key::StaleButton)), true))),
    }
    Ok(None)
}
