//! Where an answered prompt goes: free text (or a file) sent after a button asked for it.

use teloxide::prelude::*;

use crate::ids::PhoneNumber;
use crate::wa::{ChatTarget, MemberAction, WaError};

use crate::bot::group_list::{groups_page, rename_cached};
use crate::bot::group_page::group_page_noted;
use crate::bot::kit::app::{App, Caller, Pending, Req};
use crate::bot::kit::buttons::back_to_menu;
use crate::bot::kit::callback::InputKind;
use crate::bot::kit::i18n::{esc, t2, tr, tr_with, Key};
use crate::bot::kit::prompts::{input_text, parse_links, parse_numbers, reask};
use crate::bot::kit::send::send_html;
use crate::bot::kit::session::session;
use crate::bot::kit::text::wa_error_text;
use crate::bot::messages::{ask_broadcast_where, media_input};

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
        if let Some(file) = crate::bot::media::telegram_media(msg) {
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
        (ScheduleAt, _) => crate::bot::schedule::time_input(bot, app, c, &acc, p, &text).await?,
        (TemplateName, _) => crate::bot::templates::name_input(bot, app, c, &acc, p, &text).await?,
        // --- members ---
        (Nickname, _) => {
            if let Err(why) = crate::bot::members::nickname_input(bot, app, c, &acc, &text).await? {
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
            crate::bot::jobs::propose(
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
            crate::bot::jobs::propose(
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
            crate::bot::jobs::propose(bot, app, c, &acc, crate::jobs::JobKind::JoinGroups, links, bad, None).await?;
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
            crate::bot::jobs::propose(
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
            crate::bot::jobs::propose(bot, app, c, &acc, crate::jobs::JobKind::CheckNumbers, items, bad, None).await?;
        }
        _ => {
            send_html(bot, m, c.chat, tr(l, Key::StaleButton), Some(back_to_menu(app, c))).await;
        }
    }
    Ok(())
}
