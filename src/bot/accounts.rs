//! The accounts screen and an account's page: state, today's quotas, switch, reconnect,
//! logout and removal (each confirmed first).

use teloxide::types::{InlineKeyboardMarkup, MessageId};
use tracing::warn;

use crate::account::{Account, AccountError, AccountStatus};
use crate::supervisor::{LiveState, PairError};

use super::kit::app::{refreshed, App, Caller, Req};
use super::kit::buttons::{back_to_menu, btn, confirm};
use super::kit::callback::Cb;
use super::kit::i18n::{account_label, esc, tr, tr_with, Key};
use super::kit::send::edit_or_send;
use super::kit::text::{local_time, plain_text, state_label};
use super::menu::main_menu;

pub(crate) fn accounts_menu(app: &App, c: &Caller) -> (String, InlineKeyboardMarkup) {
    let l = c.lang;
    let m = app.manager();
    let active = c.active().map(|a| a.id);
    let mut text = tr_with(
        l,
        Key::AccountsTitle,
        &[
            ("count", &c.ctx.accounts.len().to_string()),
            ("max", &m.config().max_accounts_per_user.to_string()),
        ],
    );
    let mut rows = Vec::new();
    for a in &c.ctx.accounts {
        let live = m.live_status_unchecked(a.id);
        let mark = if Some(a.id) == active { "✅" } else { "▫️" };
        text.push('\n');
        text.push_str(&tr_with(
            l,
            Key::AccountLine,
            &[
                ("mark", mark),
                ("phone", &account_label(a)),
                ("state", state_label(l, a, live.as_ref())),
            ],
        ));
        if a.status != AccountStatus::Pairing {
            rows.push(vec![btn(app, c, &format!("{mark} {}", a.label()), Cb::Account(a.id))]);
        }
    }
    rows.push(vec![btn(app, c, tr(l, Key::BtnMenu), Cb::Menu)]);
    (text, InlineKeyboardMarkup::new(rows))
}

pub(crate) fn account_page(app: &App, c: &Caller, a: &Account) -> (String, InlineKeyboardMarkup) {
    let l = c.lang;
    let live = app.manager().live_status_unchecked(a.id);
    let updated = local_time(app.manager().config(), a.updated_at);
    let error = live
        .as_ref()
        .and_then(|s| s.last_error.clone())
        .or_else(|| a.last_error.clone())
        .map(|e| format!("\n⚠️ {}", esc(&e)))
        .unwrap_or_default();
    let text = tr_with(
        l,
        Key::AccountDetail,
        &[
            ("phone", &account_label(a)),
            ("state", state_label(l, a, live.as_ref())),
            ("updated", &updated),
            ("error", &error),
        ],
    );
    let mut rows = Vec::new();
    if c.active().map(|x| x.id) != Some(a.id) {
        rows.push(vec![btn(
            app,
            c,
            &format!("✅ {}", tr(l, Key::BtnSwitch)),
            Cb::Switch(a.id),
        )]);
    }
    rows.push(vec![btn(app, c, tr(l, Key::BtnStatus), Cb::Account(a.id))]);
    let stopped = live.as_ref().is_none_or(|s| s.state == LiveState::Stopped);
    if a.status == AccountStatus::Active && stopped {
        rows.push(vec![btn(app, c, tr(l, Key::BtnReconnect), Cb::Reconnect(a.id))]);
    }
    rows.push(vec![btn(app, c, tr(l, Key::BtnInbox), Cb::Inbox(a.id, 0))]);
    rows.push(super::members::nickname_row(app, c, a));
    rows.push(vec![btn(app, c, tr(l, Key::BtnJobs), Cb::Jobs(a.id, 0))]);
    if matches!(a.status, AccountStatus::LoggedOut | AccountStatus::Unpaired) {
        rows.push(vec![btn(
            app,
            c,
            tr(l, Key::BtnPairAgain),
            Cb::PairNew(a.phone.clone()),
        )]);
    }
    let mut danger = Vec::new();
    if a.status == AccountStatus::Active {
        danger.push(btn(app, c, tr(l, Key::BtnLogout), Cb::Logout(a.id)));
    }
    danger.push(btn(app, c, tr(l, Key::BtnRemove), Cb::Remove(a.id)));
    rows.push(danger);
    rows.push(vec![btn(app, c, tr(l, Key::BtnBack), Cb::Accounts)]);
    (text, InlineKeyboardMarkup::new(rows))
}

/// The account page's buttons (the guard has checked the account is the caller's): status,
/// switch, reconnect, logout and removal, each destructive one confirmed first.
pub(crate) async fn button<R: Req>(
    bot: &R,
    app: &App,
    c: &Caller,
    mid: Option<MessageId>,
    cb: Cb,
    a: Account,
) -> anyhow::Result<Option<(String, bool)>> {
    let l = c.lang;
    let m = app.manager();
    match cb {
        Cb::Account(_) => {
            let (t, kb) = account_page(app, c, &a);
            let t = format!("{t}{}", crate::bot::jobs::quota_note(app, c, &a, None).await);
            edit_or_send(bot, m, c.chat, mid, &t, Some(kb)).await;
            // «ℹ️ Status» edits the page in place, often to the same text: say it was read.
            return Ok(Some((tr(l, Key::StatusRefreshed).to_string(), false)));
        }
        Cb::Switch(_) => match m.set_active(c.tid, a.id).await {
            Ok(()) => {
                let c2 = refreshed(app, c).await?;
                let (t, kb) = main_menu(app, &c2);
                let t = format!("{}\n\n{t}", tr_with(l, Key::Switched, &[("phone", &account_label(&a))]));
                edit_or_send(bot, m, c.chat, mid, &t, Some(kb)).await;
            }
            Err(AccountError::WrongState(_)) => return Ok(Some((plain_text(tr(l, Key::StaleButton)), true))),
            Err(e) => return Err(e.into()),
        },
        Cb::Reconnect(_) => {
            // A session opened elsewhere stays in the live map, stopped; one the operator
            // disconnected is gone from it, and no other device is knocked out.
            let elsewhere = m.live_status_unchecked(a.id).is_some();
            match m.reconnect(c.tid, a.id).await {
                Ok(()) => {}
                Err(PairError::Account(AccountError::WrongState(_))) => {
                    return Ok(Some((plain_text(tr(l, Key::StaleButton)), true)))
                }
                Err(e) => return Err(e.into()),
            }
            let key = if elsewhere {
                Key::Reconnecting
            } else {
                Key::ReconnectingAfterStop
            };
            let t = tr_with(l, key, &[("phone", &account_label(&a))]);
            edit_or_send(bot, m, c.chat, mid, &t, Some(back_to_menu(app, c))).await;
        }
        Cb::Logout(_) => {
            let t = tr_with(l, Key::LogoutConfirm, &[("phone", &account_label(&a))]);
            edit_or_send(
                bot,
                m,
                c.chat,
                mid,
                &t,
                Some(confirm(app, c, Cb::LogoutYes(a.id), Cb::Account(a.id))),
            )
            .await;
        }
        Cb::LogoutYes(_) => {
            m.logout(c.tid, a.id).await?;
            let t = tr_with(l, Key::LoggedOutDone, &[("phone", &account_label(&a))]);
            edit_or_send(bot, m, c.chat, mid, &t, Some(back_to_menu(app, c))).await;
        }
        Cb::Remove(_) => {
            let t = tr_with(l, Key::RemoveConfirm, &[("phone", &account_label(&a))]);
            edit_or_send(
                bot,
                m,
                c.chat,
                mid,
                &t,
                Some(confirm(app, c, Cb::RemoveYes(a.id), Cb::Account(a.id))),
            )
            .await;
        }
        Cb::RemoveYes(_) => {
            // Removing unlinks the device from the phone too, as the confirmation said:
            // otherwise it would stay listed under the phone's linked devices.
            if let Ok(s) = m.session_of(c.tid, a.id).await {
                if let Err(e) = s.logout().await {
                    warn!(account_id = %a.id, error = %e, "unlinking before removal failed; removing anyway");
                }
            }
            m.remove(c.tid, a.id).await?;
            let t = tr_with(l, Key::RemovedDone, &[("phone", &account_label(&a))]);
            let c2 = refreshed(app, c).await?;
            edit_or_send(bot, m, c.chat, mid, &t, Some(back_to_menu(app, &c2))).await;
        }
        _ => return Ok(Some((plain_text(tr(l, Key::StaleButton)), true))),
    }
    Ok(None)
}
