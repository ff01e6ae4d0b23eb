//! The session of the caller's account, or a message saying why there is none and the way on.

use teloxide::types::InlineKeyboardMarkup;

use crate::account::{Account, AccountError};
use crate::wa::WaSession;

use super::app::{App, Caller, Req};
use super::buttons::{back_to_menu, btn};
use super::callback::Cb;
use super::i18n::{account_label, tr, tr_with, Key};
use super::send::send_html;

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
            let state = super::text::state_label(c.lang, acc, live.as_ref());
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
pub(crate) fn offline_ways(
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
