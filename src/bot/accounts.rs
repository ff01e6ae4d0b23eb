//! The accounts screen and an account's page: state, today's quotas, switch, reconnect,
//! logout and removal (each confirmed first).

use teloxide::types::InlineKeyboardMarkup;

use crate::account::{Account, AccountStatus};
use crate::supervisor::LiveState;

use super::kit::app::{App, Caller};
use super::kit::buttons::btn;
use super::kit::callback::Cb;
use super::kit::i18n::{account_label, esc, tr, tr_with, Key};
use super::kit::text::{local_time, state_label};

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
