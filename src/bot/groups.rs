//! The account's work from Telegram: groups, invite links, members, messages and bulk jobs.

use teloxide::prelude::*;
use teloxide::types::MessageId;

use super::callback::Cb;
use super::flows::{back_to_menu, Req};
use super::i18n::{tr, Key};
use super::send::edit_or_send;
use super::{App, Caller, Pending};
use crate::account::Account;
use crate::ids::AccountId;

/// `/groups` and the Groups button.
pub(crate) async fn groups_entry<R: Req>(
    bot: &R,
    app: &App,
    c: &Caller,
    _account: AccountId,
    edit: Option<MessageId>,
) -> anyhow::Result<()> {
    edit_or_send(
        bot,
        app.manager(),
        c.chat,
        edit,
        tr(c.lang, Key::ComingSoon),
        Some(back_to_menu(app, c)),
    )
    .await;
    Ok(())
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
    let _ = cb;
    groups_entry(bot, app, c, acc.id, mid).await?;
    Ok(None)
}

/// Free text sent after a button asked for it.
pub(crate) async fn pending_input<R: Req>(
    bot: &R,
    app: &App,
    c: &Caller,
    p: Pending,
    msg: &Message,
) -> anyhow::Result<()> {
    let _ = (p, msg);
    groups_entry(
        bot,
        app,
        c,
        c.active().map(|a| a.id).unwrap_or_else(|| unreachable_account()),
        None,
    )
    .await
}

fn unreachable_account() -> AccountId {
    AccountId::new(1).unwrap_or_else(|_| unreachable!())
}
