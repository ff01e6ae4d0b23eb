//! Handlers: commands, menus, pairing, accounts. Each endpoint logs its own failures and
//! tells the user something, so no update ends in silence.

use std::time::Duration;

use teloxide::net::Download;
use teloxide::prelude::*;
use teloxide::types::{InlineKeyboardButton, InlineKeyboardMarkup, MessageId};
use teloxide::{DownloadError, RequestError};
use tracing::{error, info, warn};

use super::callback::{Cb, CbError};
use super::i18n::{account_label, esc, tr, tr_with, Key, Lang};
use super::send::{answer, edit_or_send, send_html};
use super::{App, Caller};
use crate::account::{Account, AccountError, AccountStatus};
use crate::ids::{ParseIdError, PhoneNumber};
use crate::supervisor::{LiveState, LiveStatus, PairError};
use crate::wa::WaError;

type HandlerResult = anyhow::Result<()>;

/// Anything a bot handler needs of the requester.
pub trait Req:
    Requester<Err = RequestError> + for<'d> Download<Err<'d> = DownloadError> + Clone + Send + Sync + 'static
{
}
impl<T> Req for T where
    T: Requester<Err = RequestError> + for<'d> Download<Err<'d> = DownloadError> + Clone + Send + Sync + 'static
{
}

// ----- endpoints -----

pub(crate) async fn not_private<R: Req>(bot: R, msg: Message, app: App) -> HandlerResult {
    if msg.text().is_some_and(|t| t.starts_with('/')) {
        let lang = msg
            .from
            .as_ref()
            .and_then(|u| u.language_code.as_deref())
            .map(Lang::from_code)
            .unwrap_or(Lang::Id);
        send_html(&bot, app.manager(), msg.chat.id, tr(lang, Key::PrivateOnly), None).await;
    }
    Ok(())
}

pub(crate) async fn on_unresolved_message<R: Req>(bot: R, msg: Message, app: App) -> HandlerResult {
    if msg.from.is_some() {
        send_html(&bot, app.manager(), msg.chat.id, tr(Lang::Id, Key::Sorry), None).await;
    }
    Ok(())
}

pub(crate) async fn on_unresolved_callback<R: Req>(bot: R, q: CallbackQuery, app: App) -> HandlerResult {
    let chat = ChatId(q.from.id.0 as i64);
    answer(&bot, app.manager(), chat, &q.id, Some(tr(Lang::Id, Key::Sorry)), true).await;
    Ok(())
}

pub(crate) async fn on_message<R: Req>(bot: R, msg: Message, app: App, caller: Caller) -> HandlerResult {
    if let Err(e) = message(&bot, &msg, &app, &caller).await {
        error!(telegram_id = %caller.tid, error = %format!("{e:#}"), "message handler failed");
        let kb = back_to_menu(&app, &caller);
        send_html(&bot, app.manager(), caller.chat, tr(caller.lang, Key::Sorry), Some(kb)).await;
    }
    Ok(())
}

pub(crate) async fn on_callback<R: Req>(bot: R, q: CallbackQuery, app: App, caller: Caller) -> HandlerResult {
    let mid = q.message.as_ref().map(|m| m.id());
    match callback(&bot, &q, &app, &caller, mid).await {
        Ok(Some((text, alert))) => answer(&bot, app.manager(), caller.chat, &q.id, Some(&text), alert).await,
        Ok(None) => answer(&bot, app.manager(), caller.chat, &q.id, None, false).await,
        Err(e) => {
            error!(telegram_id = %caller.tid, error = %format!("{e:#}"), "callback handler failed");
            answer(
                &bot,
                app.manager(),
                caller.chat,
                &q.id,
                Some(tr(caller.lang, Key::Sorry)),
                true,
            )
            .await;
        }
    }
    Ok(())
}

// ----- messages -----

/// Commands a user without an account may use.
const OPEN_COMMANDS: &[&str] = &["start", "menu", "pair", "qr", "help", "lang", "cancel"];

async fn message<R: Req>(bot: &R, msg: &Message, app: &App, c: &Caller) -> anyhow::Result<()> {
    let text = msg.text().or(msg.caption()).unwrap_or("").trim();
    if let Some(rest) = text.strip_prefix('/') {
        let (cmd, arg) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
        let cmd = cmd.split('@').next().unwrap_or("").to_ascii_lowercase();
        let arg = arg.trim();
        // Any command ends a waiting prompt: text typed after it must not act on the old
        // question (`/status` between "rename" and a text once renamed the group).
        let had_prompt = app.clear_pending(c.tid);
        if cmd == "admin" {
            return super::admin::command(bot, app, c, arg).await;
        }
        if c.ctx.user.suspended {
            return deny(bot, app, c).await;
        }
        if !OPEN_COMMANDS.contains(&cmd.as_str()) && !c.has_account() {
            return deny(bot, app, c).await;
        }
        if cmd == "cancel" {
            let key = if had_prompt {
                Key::Cancelled
            } else {
                Key::NothingToCancel
            };
            send_html(bot, app.manager(), c.chat, tr(c.lang, key), Some(back_to_menu(app, c))).await;
            return Ok(());
        }
        if cmd == "help" && had_prompt {
            // The prompt closed without a word would leave the next text doing something else.
            let t = format!("{}\n\n{}", tr(c.lang, Key::PromptClosed), tr(c.lang, Key::Help));
            send_html(bot, app.manager(), c.chat, &t, Some(back_to_menu(app, c))).await;
            return Ok(());
        }
        return command(bot, app, c, &cmd, arg).await;
    }
    if c.ctx.user.suspended {
        return deny(bot, app, c).await;
    }
    // The number `/pair` or `/qr` asked for: open to users without an account, as the
    // commands are.
    if let Some(qr) = app.take_pair_prompt(c.tid) {
        return pair(bot, app, c, text, qr, None).await;
    }
    if !c.has_account() {
        return deny(bot, app, c).await;
    }
    // A reply to a forwarded WhatsApp message answers that chat.
    if super::inbox::reply(bot, app, c, msg).await? {
        return Ok(());
    }
    if let Some(p) = app.take_pending(c.tid) {
        if p.is_expired(app.prompt_timeout()) {
            let t = tr_with(
                c.lang,
                Key::PromptExpired,
                &[("action", &super::groups::prompt_action(c.lang, &p))],
            );
            send_html(bot, app.manager(), c.chat, &t, Some(back_to_menu(app, c))).await;
            return Ok(());
        }
        // Answered: the prompt's «Batal» no longer cancels anything (a wrong answer puts it
        // back with the reason).
        if let Some(mid) = p.prompt {
            super::send::clear_buttons(bot, app.manager(), c.chat, mid).await;
        }
        if p.kind == super::callback::InputKind::Broadcast && p.data.is_some() {
            return super::groups::broadcast_numbers(bot, app, c, p, msg).await;
        }
        return super::groups::pending_input(bot, app, c, p, msg).await;
    }
    send_html(
        bot,
        app.manager(),
        c.chat,
        tr(c.lang, Key::UnknownCommand),
        Some(menu_and_help(app, c)),
    )
    .await;
    Ok(())
}

async fn deny<R: Req>(bot: &R, app: &App, c: &Caller) -> anyhow::Result<()> {
    // A suspended user has an account (or had one): telling them to `/pair` would send them
    // into another refusal.
    if c.ctx.user.suspended {
        send_html(bot, app.manager(), c.chat, tr(c.lang, Key::Suspended), None).await;
        return Ok(());
    }
    send_html(
        bot,
        app.manager(),
        c.chat,
        tr(c.lang, Key::AccessDenied),
        Some(link_number(app, c)),
    )
    .await;
    Ok(())
}

/// «🔗 Hubungkan nomor» and Help: the way on for a user without an account.
pub(crate) fn link_number(app: &App, c: &Caller) -> InlineKeyboardMarkup {
    InlineKeyboardMarkup::new(vec![vec![
        btn(app, c, tr(c.lang, Key::BtnLinkNumber), Cb::PairStart(false)),
        btn(app, c, tr(c.lang, Key::BtnHelp), Cb::Help),
    ]])
}

/// Menu and Help: the way on from a text the bot did not understand.
fn menu_and_help(app: &App, c: &Caller) -> InlineKeyboardMarkup {
    InlineKeyboardMarkup::new(vec![vec![
        btn(app, c, tr(c.lang, Key::BtnMenu), Cb::Menu),
        btn(app, c, tr(c.lang, Key::BtnHelp), Cb::Help),
    ]])
}

async fn command<R: Req>(bot: &R, app: &App, c: &Caller, cmd: &str, arg: &str) -> anyhow::Result<()> {
    let m = app.manager();
    match cmd {
        "start" => {
            send_html(bot, m, c.chat, tr(c.lang, Key::Welcome), None).await;
            show_menu(bot, app, c, None).await;
        }
        "menu" => show_menu(bot, app, c, None).await,
        "help" => {
            send_html(bot, m, c.chat, tr(c.lang, Key::Help), Some(back_to_menu(app, c))).await;
        }
        "lang" => {
            let (t, kb) = language_menu(app, c);
            send_html(bot, m, c.chat, &t, Some(kb)).await;
        }
        "pair" => pair(bot, app, c, arg, false, None).await?,
        "qr" => pair(bot, app, c, arg, true, None).await?,
        "status" => match c.active() {
            Some(a) => {
                let (t, kb) = account_page(app, c, a);
                let t = format!("{t}{}", super::jobs_ui::quota_note(app, c, a, None).await);
                send_html(bot, m, c.chat, &t, Some(kb)).await;
            }
            None => show_menu(bot, app, c, None).await,
        },
        "accounts" => {
            let (t, kb) = accounts_menu(app, c);
            send_html(bot, m, c.chat, &t, Some(kb)).await;
        }
        "groups" => match c.active() {
            Some(a) => crate::bot::flows::groups_entry(bot, app, c, a.id, None).await?,
            None => show_menu(bot, app, c, None).await,
        },
        _ => {
            send_html(
                bot,
                m,
                c.chat,
                tr(c.lang, Key::UnknownCommand),
                Some(menu_and_help(app, c)),
            )
            .await;
        }
    }
    Ok(())
}

// ----- menus -----

pub(crate) fn btn(app: &App, c: &Caller, label: &str, cb: Cb) -> InlineKeyboardButton {
    InlineKeyboardButton::callback(label.to_string(), app.codec().encode(c.tid, &cb))
}

pub(crate) fn back_to_menu(app: &App, c: &Caller) -> InlineKeyboardMarkup {
    InlineKeyboardMarkup::new(vec![vec![btn(app, c, tr(c.lang, Key::BtnMenu), Cb::Menu)]])
}

/// The label of an account's state: the live one when a session runs, else the stored one.
pub(crate) fn state_label(lang: Lang, acc: &Account, live: Option<&LiveStatus>) -> &'static str {
    let key = match live.map(|l| l.state) {
        Some(LiveState::Connected) => Key::StateConnected,
        Some(LiveState::Connecting) => Key::StateConnecting,
        Some(LiveState::Disconnected) => Key::StateDisconnected,
        Some(LiveState::Pairing) => Key::StatePairing,
        Some(LiveState::LoggedOut) => Key::StateLoggedOut,
        Some(LiveState::Banned) if acc.banned_until.is_none() => Key::StateBannedForGood,
        Some(LiveState::Banned) => Key::StateBanned,
        Some(LiveState::Stopped)
            if live.and_then(|l| l.last_error.as_deref()) == Some(crate::supervisor::REASON_REPLACED) =>
        {
            Key::StateReplaced
        }
        Some(LiveState::Unpaired) => Key::StateUnpaired,
        Some(LiveState::PairFailed | LiveState::Stopped) | None => match acc.status {
            AccountStatus::Active if acc.last_error.as_deref() == Some(crate::supervisor::REASON_REPLACED) => {
                Key::StateReplaced
            }
            AccountStatus::Active => Key::StateStopped,
            AccountStatus::Pairing => Key::StatePairing,
            AccountStatus::LoggedOut => Key::StateLoggedOut,
            AccountStatus::Banned if acc.banned_until.is_none() => Key::StateBannedForGood,
            AccountStatus::Banned => Key::StateBanned,
            AccountStatus::Unpaired => Key::StateUnpaired,
            AccountStatus::Removed => Key::StateStopped,
        },
    };
    tr(lang, key)
}

fn main_menu(app: &App, c: &Caller) -> (String, InlineKeyboardMarkup) {
    let l = c.lang;
    let mut rows = vec![vec![btn(app, c, tr(l, Key::BtnAccounts), Cb::Accounts)]];
    let text = match c.active() {
        Some(a) => {
            let live = app.manager().live_status_unchecked(a.id);
            rows.push(vec![
                btn(app, c, tr(l, Key::BtnGroups), Cb::Groups(a.id, 0)),
                btn(app, c, tr(l, Key::BtnMessages), Cb::Messages(a.id)),
            ]);
            rows.push(vec![
                btn(app, c, tr(l, Key::BtnSettings), Cb::Account(a.id)),
                btn(app, c, tr(l, Key::BtnLanguage), Cb::LangMenu),
            ]);
            tr_with(
                l,
                Key::MenuTitle,
                &[
                    ("phone", &account_label(a)),
                    ("state", state_label(l, a, live.as_ref())),
                ],
            )
        }
        None => {
            rows.push(vec![btn(app, c, tr(l, Key::BtnLanguage), Cb::LangMenu)]);
            tr(l, Key::MenuNoActive).to_string()
        }
    };
    rows.push(vec![btn(app, c, tr(l, Key::BtnHelp), Cb::Help)]);
    (text, InlineKeyboardMarkup::new(rows))
}

/// Shows the main menu (or the login prompt), editing `edit` in place when given.
pub(crate) async fn show_menu<R: Req>(bot: &R, app: &App, c: &Caller, edit: Option<MessageId>) {
    if !c.has_account() {
        let kb = InlineKeyboardMarkup::new(vec![vec![
            btn(app, c, tr(c.lang, Key::BtnLanguage), Cb::LangMenu),
            btn(app, c, tr(c.lang, Key::BtnHelp), Cb::Help),
        ]]);
        edit_or_send(bot, app.manager(), c.chat, edit, tr(c.lang, Key::LoginPrompt), Some(kb)).await;
        return;
    }
    let (t, kb) = main_menu(app, c);
    edit_or_send(bot, app.manager(), c.chat, edit, &t, Some(kb)).await;
}

fn language_menu(app: &App, c: &Caller) -> (String, InlineKeyboardMarkup) {
    let kb = InlineKeyboardMarkup::new(vec![
        vec![
            btn(app, c, "🇮🇩 Bahasa Indonesia", Cb::SetLang(Lang::Id)),
            btn(app, c, "🇬🇧 English", Cb::SetLang(Lang::En)),
        ],
        vec![btn(app, c, tr(c.lang, Key::BtnBack), Cb::Menu)],
    ]);
    (tr(c.lang, Key::LanguageTitle).to_string(), kb)
}

fn accounts_menu(app: &App, c: &Caller) -> (String, InlineKeyboardMarkup) {
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

fn account_page(app: &App, c: &Caller, a: &Account) -> (String, InlineKeyboardMarkup) {
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

fn confirm(app: &App, c: &Caller, yes: Cb, no: Cb) -> InlineKeyboardMarkup {
    InlineKeyboardMarkup::new(vec![vec![
        btn(app, c, tr(c.lang, Key::BtnYes), yes),
        btn(app, c, tr(c.lang, Key::BtnNo), no),
    ]])
}

/// Re-reads the caller's context after a change, so the next screen shows it.
async fn refreshed(app: &App, c: &Caller) -> anyhow::Result<Caller> {
    app.manager().invalidate(c.tid);
    let ctx = app.manager().context(c.tid, None).await?;
    Ok(Caller {
        lang: Lang::from_code(&ctx.user.language),
        ctx,
        ..c.clone()
    })
}

// ----- callbacks -----

/// Callbacks a user without an account may press.
fn open_callback(cb: &Cb) -> bool {
    matches!(
        cb,
        Cb::Menu
            | Cb::Help
            | Cb::LangMenu
            | Cb::SetLang(_)
            | Cb::PairCancel(_)
            | Cb::PairNew(_)
            | Cb::Noop
            | Cb::PairStart(_)
            | Cb::InputCancel
    )
}

// --- bot17 ---
/// The toast for a press of a button its message no longer shows (see
/// [`crate::telegram::screens`]); `None` when the button is current.
fn stale_press(app: &App, q: &CallbackQuery, c: &Caller, mid: Option<MessageId>, data: &str) -> Option<String> {
    let mid = mid?;
    let message = q.regular_message();
    let forwarded = message.is_some_and(|m| m.forward_origin().is_some());
    // The keyboard Telegram says the message shows now.
    let on_message = message.and_then(|m| m.reply_markup()).map(|k| {
        k.inline_keyboard
            .iter()
            .flatten()
            .any(|b| matches!(&b.kind, teloxide::types::InlineKeyboardButtonKind::CallbackData(d) if d == data))
    });
    match app
        .manager()
        .screens()
        .judge(c.chat.0, mid.0, data, forwarded, on_message)
    {
        crate::telegram::screens::Press::Current => None,
        crate::telegram::screens::Press::Stale => Some(super::i18n::t2(
            c.lang,
            "⌛ Menu ini sudah lama, jadi tidak dijalankan. Pakai menu yang terbaru.",
            "⌛ This menu is old, so nothing was done. Use the current one.",
        )),
    }
}

/// Handles a button; returns the text to answer the query with (and whether as an alert).
async fn callback<R: Req>(
    bot: &R,
    q: &CallbackQuery,
    app: &App,
    c: &Caller,
    mid: Option<MessageId>,
) -> anyhow::Result<Option<(String, bool)>> {
    let l = c.lang;
    let m = app.manager();
    let data = q.data.as_deref().unwrap_or("");
    let cb = match app.codec().decode(c.tid, data) {
        Ok(cb) => cb,
        Err(e) => {
            let detail = crate::ids::mask_digits_in(&format!("{e}: {}", data.chars().take(64).collect::<String>()));
            warn!(telegram_id = %c.tid, %detail, "refused callback data");
            m.audit(Some(c.tid), None, "refused_callback", detail).await?;
            let key = if !c.has_account() {
                Key::AccessDenied
            } else if e == CbError::Forged {
                Key::NotYourAccount
            } else {
                Key::StaleButton
            };
            return Ok(Some((plain_text(tr(l, key)), true)));
        }
    };
    // --- bot17 --- a button of a screen that was edited away (or of a forwarded copy) does
    // nothing, not even close a prompt.
    if let Some(t) = stale_press(app, q, c, mid, data) {
        return Ok(Some((t, false)));
    }
    // Any other button ends a waiting prompt; only the prompt's own buttons (its Cancel, and
    // the targets offered for a broadcast text) act on it.
    if !matches!(cb, Cb::InputCancel | Cb::BroadcastTo(..)) {
        app.clear_pending(c.tid);
    }
    if let Cb::Admin(a) = cb {
        return super::admin::callback(bot, app, c, a, mid).await;
    }
    if c.ctx.user.suspended {
        m.audit(Some(c.tid), None, "refused_suspended", format!("{cb:?}"))
            .await?;
        return Ok(Some((plain_text(tr(l, Key::Suspended)), true)));
    }
    if !c.has_account() && !open_callback(&cb) {
        return Ok(Some((plain_text(tr(l, Key::AccessDenied)), true)));
    }
    if let Cb::PairStart(qr) = cb {
        app.clear_pending(c.tid);
        pair(bot, app, c, "", qr, mid).await?;
        return Ok(None);
    }
    // Every account named in a button must be the caller's own, checked again now.
    let acc = match cb.account() {
        Some(id) => match m.account_of(c.tid, id).await {
            Ok(a) => Some(a),
            Err(AccountError::NotOwner) => {
                warn!(telegram_id = %c.tid, account_id = %id, "callback for an account the caller does not own");
                m.audit(
                    Some(c.tid),
                    Some(id),
                    "refused_not_owner",
                    crate::ids::mask_digits_in(&format!("{cb:?}")),
                )
                .await?;
                return Ok(Some((tr(l, Key::NotYourAccount).to_string(), true)));
            }
            Err(AccountError::NotFound) => return Ok(Some((tr(l, Key::StaleButton).to_string(), true))),
            Err(e) => return Err(e.into()),
        },
        None => None,
    };
    match (cb, acc) {
        (Cb::Noop | Cb::Admin(_), _) => {}
        (Cb::InputCancel, _) => {
            let key = if app.clear_pending(c.tid) {
                Key::Cancelled
            } else {
                Key::NothingToCancel
            };
            edit_or_send(bot, m, c.chat, mid, tr(l, key), Some(back_to_menu(app, c))).await;
        }
        (Cb::Menu, _) => show_menu(bot, app, c, mid).await,
        (Cb::Help, _) => {
            edit_or_send(bot, m, c.chat, mid, tr(l, Key::Help), Some(back_to_menu(app, c))).await;
        }
        (Cb::LangMenu, _) => {
            let (t, kb) = language_menu(app, c);
            edit_or_send(bot, m, c.chat, mid, &t, Some(kb)).await;
        }
        (Cb::SetLang(lang), _) => {
            m.set_language(c.tid, lang.code()).await?;
            let c2 = refreshed(app, c).await?;
            edit_or_send(bot, m, c.chat, mid, tr(c2.lang, Key::LanguageSet), None).await;
            show_menu(bot, app, &c2, None).await;
        }
        (Cb::Accounts, _) => {
            let (t, kb) = accounts_menu(app, c);
            edit_or_send(bot, m, c.chat, mid, &t, Some(kb)).await;
        }
        (Cb::Account(_), Some(a)) => {
            let (t, kb) = account_page(app, c, &a);
            let t = format!("{t}{}", super::jobs_ui::quota_note(app, c, &a, None).await);
            edit_or_send(bot, m, c.chat, mid, &t, Some(kb)).await;
            // «ℹ️ Status» edits the page in place, often to the same text: say it was read.
            return Ok(Some((tr(l, Key::StatusRefreshed).to_string(), false)));
        }
        (Cb::Switch(_), Some(a)) => match m.set_active(c.tid, a.id).await {
            Ok(()) => {
                let c2 = refreshed(app, c).await?;
                let (t, kb) = main_menu(app, &c2);
                let t = format!("{}\n\n{t}", tr_with(l, Key::Switched, &[("phone", &account_label(&a))]));
                edit_or_send(bot, m, c.chat, mid, &t, Some(kb)).await;
            }
            Err(AccountError::WrongState(_)) => return Ok(Some((plain_text(tr(l, Key::StaleButton)), true))),
            Err(e) => return Err(e.into()),
        },
        (Cb::Reconnect(_), Some(a)) => {
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
        (Cb::Logout(_), Some(a)) => {
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
        (Cb::LogoutYes(_), Some(a)) => {
            m.logout(c.tid, a.id).await?;
            let t = tr_with(l, Key::LoggedOutDone, &[("phone", &account_label(&a))]);
            edit_or_send(bot, m, c.chat, mid, &t, Some(back_to_menu(app, c))).await;
        }
        (Cb::Remove(_), Some(a)) => {
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
        (Cb::RemoveYes(_), Some(a)) => {
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
        (Cb::PairCancel(_), Some(a)) => {
            if a.status != AccountStatus::Pairing {
                return Ok(Some((plain_text(tr(l, Key::StaleButton)), true)));
            }
            let msg = app.set_pairing_msg(c.tid, a.id, None);
            m.cancel_pairing(c.tid, a.id).await?;
            // The countdown ends without a word once its message is gone: the QR goes here.
            if let Some((qchat, qmid)) = app.qr_msg(c.tid, a.id) {
                app.set_qr_msg(c.tid, a.id, None);
                super::send::delete(bot, m, qchat, qmid).await;
            }
            let t = tr_with(l, Key::PairCancelled, &[("phone", &account_label(&a))]);
            let kb = InlineKeyboardMarkup::new(vec![vec![btn(
                app,
                c,
                tr(l, Key::BtnNewCode),
                Cb::PairNew(a.phone.clone()),
            )]]);
            edit_or_send(bot, m, c.chat, msg.map(|x| x.1).or(mid), &t, Some(kb)).await;
        }
        (Cb::PairNew(phone), _) => {
            // The cooldown first: a refused request must not end the code still on screen.
            let wait = m.pair_cooldown_left(c.tid, &phone);
            if !wait.is_zero() {
                let t = tr_with(l, Key::PairCooldown, &[("wait", &super::i18n::duration_in(l, wait))]);
                return Ok(Some((plain_text(&t), true)));
            }
            // A running pairing of the same number is replaced by a fresh one.
            if let Some(old) = c
                .ctx
                .accounts
                .iter()
                .find(|a| a.phone == phone && a.status == AccountStatus::Pairing)
            {
                app.set_pairing_msg(c.tid, old.id, None);
                m.cancel_pairing(c.tid, old.id).await?;
                if let Some((qchat, qmid)) = app.qr_msg(c.tid, old.id) {
                    app.set_qr_msg(c.tid, old.id, None);
                    super::send::delete(bot, m, qchat, qmid).await;
                }
            }
            let c2 = refreshed(app, c).await?;
            pair(bot, app, &c2, phone.digits(), false, mid).await?;
        }
        (cb @ (Cb::Inbox(..) | Cb::InboxToggle(..) | Cb::InboxMentions(..)), Some(a)) => {
            return super::inbox::button(bot, app, c, mid, cb, a).await
        }
        (cb, Some(a)) => return crate::bot::flows::account_callback(bot, app, c, mid, cb, a).await,
        (_, None) => return Ok(Some((plain_text(tr(l, Key::StaleButton)), true))),
    }
    Ok(None)
}

/// Alerts are plain text: strip the little HTML our strings carry.
pub(crate) fn plain_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut in_tag = false;
    for ch in s.chars() {
        match ch {
            '<' => in_tag = true,
            '>' if in_tag => in_tag = false,
            _ if !in_tag => out.push(ch),
            _ => {}
        }
    }
    out.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
}

// ----- pairing -----

fn parse_reason(lang: Lang, e: &ParseIdError) -> &'static str {
    use ParseIdError::*;
    match (lang, e) {
        (Lang::Id, Empty) => "kosong",
        (Lang::Id, InvalidCharacter) => "hanya angka, spasi, tanda hubung, dan + di depan yang boleh",
        (Lang::Id, TooShort) => "terlalu pendek (minimal 8 digit)",
        (Lang::Id, TooLong) => "terlalu panjang (maksimal 15 digit)",
        (Lang::Id, BadInternationalPrefix) => "awalan 00 harus diikuti kode negara",
        (Lang::Id, BadCountryCode) => "kode negara tidak boleh diawali 0",
        (Lang::Id, ZeroAfterCountryCode) => "setelah kode negara tidak boleh ada dua angka 0",
        (Lang::Id, _) => "bukan nomor telepon",
        (Lang::En, Empty) => "empty",
        (Lang::En, InvalidCharacter) => "only digits, spaces, dashes and a leading + are allowed",
        (Lang::En, TooShort) => "too short (at least 8 digits)",
        (Lang::En, TooLong) => "too long (at most 15 digits)",
        (Lang::En, BadInternationalPrefix) => "a leading 00 must be followed by a country code",
        (Lang::En, BadCountryCode) => "a country code cannot start with 0",
        (Lang::En, ZeroAfterCountryCode) => "two zeros cannot follow the country code",
        (Lang::En, _) => "not a phone number",
    }
}

/// `/pair <number>` and `/qr <number>` (and the New code / Retry buttons, editing `edit`).
pub(crate) async fn pair<R: Req>(
    bot: &R,
    app: &App,
    c: &Caller,
    arg: &str,
    qr: bool,
    edit: Option<MessageId>,
) -> anyhow::Result<()> {
    let l = c.lang;
    let m = app.manager();
    if arg.is_empty() {
        let key = if qr { Key::QrUsage } else { Key::PairUsage };
        app.set_pair_prompt(c.tid, qr);
        let kb = InlineKeyboardMarkup::new(vec![vec![btn(app, c, tr(l, Key::BtnCancel), Cb::InputCancel)]]);
        edit_or_send(bot, m, c.chat, edit, tr(l, key), Some(kb)).await;
        return Ok(());
    }
    let phone = match PhoneNumber::parse(arg, &m.config().default_country_code) {
        Ok(p) => p,
        Err(e) => {
            let shown: String = arg.chars().take(32).collect();
            let t = tr_with(
                l,
                Key::PairInvalid,
                &[("input", &esc(&shown)), ("reason", parse_reason(l, &e))],
            );
            send_html(bot, m, c.chat, &t, Some(pair_refused(app, c, qr, false))).await;
            return Ok(());
        }
    };
    let started = if qr {
        m.start_qr_pairing(c.tid, phone.clone()).await.map(|a| (a, None))
    } else {
        m.start_pairing(c.tid, phone.clone())
            .await
            .map(|(a, code)| (a, Some(code)))
    };
    let (acc, code) = match started {
        Ok(v) => v,
        Err(e) => {
            let ph = phone.to_string();
            let t = match &e {
                PairError::Account(AccountError::UserFull { max }) => {
                    tr_with(l, Key::PairUserFull, &[("max", &max.to_string())])
                }
                PairError::Account(AccountError::ServerFull { max }) => {
                    tr_with(l, Key::PairServerFull, &[("max", &max.to_string())])
                }
                PairError::Account(AccountError::OwnedByOther) => tr(l, Key::PairOwnedByOther).to_string(),
                PairError::Account(AccountError::AlreadyLinked(_)) => tr(l, Key::PairAlreadyLinked).to_string(),
                PairError::Account(AccountError::PairingInProgress) => tr(l, Key::PairInProgress).to_string(),
                PairError::Wa(WaError::RateLimited { retry_after }) => {
                    let wait = retry_after.unwrap_or(Duration::from_secs(60));
                    tr_with(l, Key::PairRateLimited, &[("wait", &super::i18n::duration_in(l, wait))])
                }
                PairError::Locked => tr(l, Key::PairLocked).to_string(),
                // --- proxy2 ---
                PairError::Wa(WaError::Proxy(reason)) => {
                    tr_with(l, Key::PairProxyFailed, &[("phone", &ph), ("reason", &esc(reason))])
                }
                PairError::Cooldown { wait } => {
                    tr_with(l, Key::PairCooldown, &[("wait", &super::i18n::duration_in(l, *wait))])
                }
                other => {
                    warn!(telegram_id = %c.tid, phone = %phone.masked(), error = %other, "pairing could not start");
                    tr_with(l, Key::PairFailedGeneric, &[("reason", &esc(&other.to_string()))])
                }
            };
            info!(telegram_id = %c.tid, phone = %phone.masked(), error = %e, "pairing refused");
            let _ = ph;
            let full = matches!(e, PairError::Account(AccountError::UserFull { .. }));
            send_html(bot, m, c.chat, &t, Some(pair_refused(app, c, qr, full))).await;
            return Ok(());
        }
    };
    let cancel = InlineKeyboardMarkup::new(vec![vec![
        btn(app, c, tr(l, Key::BtnCancel), Cb::PairCancel(acc.id)),
        btn(app, c, tr(l, Key::BtnNewCode), Cb::PairNew(phone.clone())),
    ]]);
    let ttl = code.as_ref().map(|c| c.ttl).unwrap_or(Duration::from_secs(180));
    let body = match &code {
        Some(code) => tr_with(
            l,
            Key::PairCode,
            &[("phone", &phone.to_string()), ("code", &code.display())],
        ),
        None => tr_with(l, Key::QrCaption, &[("phone", &phone.to_string())]),
    };
    let text = format!(
        "{body}\n\n{}",
        tr_with(l, Key::PairCountdown, &[("left", &super::i18n::duration_in(l, ttl))])
    );
    let Some(mid) = edit_or_send(bot, m, c.chat, edit, &text, Some(cancel.clone())).await else {
        return Ok(());
    };
    app.set_pairing_msg(c.tid, acc.id, Some((c.chat, mid)));
    tokio::spawn(follow_pairing(
        bot.clone(),
        app.clone(),
        c.clone(),
        acc,
        body,
        ttl,
        cancel,
    ));
    Ok(())
}

/// The way on from a refused pairing: try again (asks for the number), or the accounts when
/// the user is at their limit, and the menu.
fn pair_refused(app: &App, c: &Caller, qr: bool, full: bool) -> InlineKeyboardMarkup {
    let l = c.lang;
    let first = if full {
        btn(app, c, tr(l, Key::BtnAccounts), Cb::Accounts)
    } else {
        btn(app, c, tr(l, Key::BtnRetry), Cb::PairStart(qr))
    };
    InlineKeyboardMarkup::new(vec![vec![first, btn(app, c, tr(l, Key::BtnMenu), Cb::Menu)]])
}

/// Keeps the pairing message current: a countdown, then success, expiry or failure.
async fn follow_pairing<R: Req>(
    bot: R,
    app: App,
    c: Caller,
    acc: Account,
    body: String,
    ttl: Duration,
    cancel: InlineKeyboardMarkup,
) {
    let l = c.lang;
    let m = app.manager().clone();
    let started = tokio::time::Instant::now();
    let mut rx = match m.watch_status(c.tid, acc.id).await {
        Ok(Some(rx)) => Some(rx),
        _ => None,
    };
    let mut tick = tokio::time::interval(Duration::from_secs(15));
    tick.tick().await;
    let outcome = loop {
        let state = rx.as_ref().map(|r| r.borrow().clone());
        match state.as_ref().map(|s| s.state) {
            Some(LiveState::Pairing) => {}
            Some(LiveState::PairFailed) => break state,
            Some(_) => break state,
            None => break None,
        }
        tokio::select! {
            ch = async { match rx.as_mut() { Some(r) => r.changed().await.is_ok(), None => false } } => {
                if !ch { break None; }
            }
            _ = tick.tick() => {
                if app.pairing_msg(c.tid, acc.id).is_none() { return; }
                let left = ttl.saturating_sub(started.elapsed());
                let text = format!("{body}\n\n{}", tr_with(l, Key::PairCountdown, &[("left", &super::i18n::duration_in(l, left))]));
                if let Some((chat, mid)) = app.pairing_msg(c.tid, acc.id) {
                    // A countdown tick: behind replies, and only the latest when several wait.
                    super::send::edit_progress(&bot, &m, chat, mid, &text, Some(cancel.clone())).await;
                }
            }
        }
    };
    // Cancelled by the owner: the Cancel handler already said so.
    let Some((chat, mid)) = app.set_pairing_msg(c.tid, acc.id, None) else {
        return;
    };
    if let Some((qchat, qmid)) = app.qr_msg(c.tid, acc.id) {
        app.set_qr_msg(c.tid, acc.id, None);
        super::send::delete(&bot, &m, qchat, qmid).await;
    }
    let now_row = m.get(acc.id).await.ok().flatten();
    let phone = acc.phone.to_string();
    let paired = now_row
        .as_ref()
        .is_some_and(|a| a.status == AccountStatus::Active && a.telegram_id == c.tid);
    if paired {
        edit_or_send(
            &bot,
            &m,
            chat,
            Some(mid),
            &tr_with(l, Key::PairSuccess, &[("phone", &phone)]),
            Some(back_to_menu(&app, &c)),
        )
        .await;
        if let Ok(c2) = refreshed(&app, &c).await {
            show_menu(&bot, &app, &c2, None).await;
        }
        return;
    }
    let reason = outcome.as_ref().and_then(|s| s.last_error.clone()).unwrap_or_default();
    let retry_after = outcome.as_ref().and_then(|s| s.retry_after);
    let again = InlineKeyboardMarkup::new(vec![vec![btn(
        &app,
        &c,
        tr(l, Key::BtnRetry),
        Cb::PairNew(acc.phone.clone()),
    )]]);
    let text = if m.pairing_taken_over(acc.id) {
        tr_with(l, Key::PairTakenOver, &[("phone", &phone)])
    } else if let Some(wait) = retry_after {
        tr_with(l, Key::PairRateLimited, &[("wait", &super::i18n::duration_in(l, wait))])
    } else if reason == crate::supervisor::REASON_WRONG_NUMBER {
        tr_with(l, Key::PairWrongNumber, &[("phone", &phone)])
    } else if let Some(why) = reason.strip_prefix(crate::supervisor::REASON_PROXY) {
        // --- proxy2 ---
        tr_with(l, Key::PairProxyFailed, &[("phone", &phone), ("reason", &esc(why))])
    } else if reason == crate::supervisor::REASON_SERVER_FULL {
        tr_with(l, Key::PairServerFull, &[("max", &m.config().max_accounts.to_string())])
    } else if reason.contains("expired") || reason.is_empty() {
        tr_with(l, Key::PairExpired, &[("phone", &phone)])
    } else {
        tr_with(l, Key::PairFailed, &[("phone", &phone), ("reason", &esc(&reason))])
    };
    edit_or_send(&bot, &m, chat, Some(mid), &text, Some(again)).await;
}

/// `2026-12-07 19:05 WIB`: a Unix time in `TGWA_TIMEZONE`, named by its zone (never UTC
/// unless the operator chose it).
pub(crate) fn local_time(config: &crate::config::Config, unix: i64) -> String {
    let off = config.utc_offset;
    let zone = match off.local_minus_utc() {
        25200 => "WIB".to_string(),
        28800 => "WITA".to_string(),
        32400 => "WIT".to_string(),
        0 => "UTC".to_string(),
        s => format!(
            "UTC{}{:02}:{:02}",
            if s < 0 { '-' } else { '+' },
            s.abs() / 3600,
            s.abs() % 3600 / 60
        ),
    };
    chrono::DateTime::from_timestamp(unix, 0)
        .map(|t| format!("{} {zone}", t.with_timezone(&off).format("%Y-%m-%d %H:%M")))
        .unwrap_or_default()
}

// ----- the account's work (groups, messages, jobs): see `groups` -----

pub(crate) use super::groups::{account_callback, groups_entry};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_strips_tags() {
        assert_eq!(plain_text("⛔ <b>AKSES DITOLAK</b> &lt;x&gt;"), "⛔ AKSES DITOLAK <x>");
    }

    #[test]
    fn every_key_needs_an_account_except_the_open_ones() {
        assert!(open_callback(&Cb::Menu));
        assert!(!open_callback(&Cb::Accounts));
        assert!(!open_callback(&Cb::Switch(crate::ids::AccountId::new(1).unwrap())));
    }
}
