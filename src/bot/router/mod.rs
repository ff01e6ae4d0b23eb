//! Routing in one place: the handler tree, the account guard, and where each command,
//! button and answered prompt goes. Every update is resolved to its caller; every account a
//! button names is checked again to be the caller's own before any screen sees it. Each
//! endpoint logs its own failures and tells the user something, so no update ends in
//! silence.

pub mod account;
pub mod input;

use teloxide::dispatching::UpdateHandler;
use teloxide::prelude::*;
use teloxide::types::{BotCommand, MessageId};
use teloxide::RequestError;
use tracing::{error, warn};

use crate::account::AccountError;

use super::accounts::{account_page, accounts_menu};
use super::menu::{language_menu, show_menu};
use super::pairing::pair;
use crate::bot::kit::app::{refreshed, App, Caller, Req};
use crate::bot::kit::app::{resolve_callback, resolve_message};
use crate::bot::kit::buttons::{back_to_menu, link_number, menu_and_help};
use crate::bot::kit::callback::{Cb, CbError};
use crate::bot::kit::i18n::{tr, tr_with, Key, Lang};
use crate::bot::kit::send::{answer, edit_or_send, send_html};
use crate::bot::kit::text::plain_text;

type HandlerResult = anyhow::Result<()>;

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
            return crate::bot::admin::command(bot, app, c, arg).await;
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
    if crate::bot::inbox::reply(bot, app, c, msg).await? {
        return Ok(());
    }
    if let Some(p) = app.take_pending(c.tid) {
        if p.is_expired(app.prompt_timeout()) {
            let t = tr_with(
                c.lang,
                Key::PromptExpired,
                &[("action", &crate::bot::kit::prompts::prompt_action(c.lang, &p))],
            );
            send_html(bot, app.manager(), c.chat, &t, Some(back_to_menu(app, c))).await;
            return Ok(());
        }
        // Answered: the prompt's «Batal» no longer cancels anything (a wrong answer puts it
        // back with the reason).
        if let Some(mid) = p.prompt {
            crate::bot::kit::send::clear_buttons(bot, app.manager(), c.chat, mid).await;
        }
        if p.kind == crate::bot::kit::callback::InputKind::Broadcast && p.data.is_some() {
            return crate::bot::messages::broadcast_numbers(bot, app, c, p, msg).await;
        }
        return crate::bot::router::input::pending_input(bot, app, c, p, msg).await;
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
                let t = format!("{t}{}", crate::bot::jobs::quota_note(app, c, a, None).await);
                send_html(bot, m, c.chat, &t, Some(kb)).await;
            }
            None => show_menu(bot, app, c, None).await,
        },
        "accounts" => {
            let (t, kb) = accounts_menu(app, c);
            send_html(bot, m, c.chat, &t, Some(kb)).await;
        }
        "groups" => match c.active() {
            Some(a) => crate::bot::group_list::groups_entry(bot, app, c, a.id, None).await?,
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
        crate::telegram::screens::Press::Stale => Some(crate::bot::kit::i18n::t2(
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
        return crate::bot::admin::callback(bot, app, c, a, mid).await;
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
        (
            cb @ (Cb::Account(_)
            | Cb::Switch(_)
            | Cb::Reconnect(_)
            | Cb::Logout(_)
            | Cb::LogoutYes(_)
            | Cb::Remove(_)
            | Cb::RemoveYes(_)),
            Some(a),
        ) => return super::accounts::button(bot, app, c, mid, cb, a).await,
        (cb @ (Cb::PairCancel(_) | Cb::PairNew(_)), a) => return super::pairing::button(bot, app, c, mid, cb, a).await,
        (cb @ (Cb::Inbox(..) | Cb::InboxToggle(..) | Cb::InboxMentions(..)), Some(a)) => {
            return crate::bot::inbox::button(bot, app, c, mid, cb, a).await
        }
        (cb, Some(a)) => return crate::bot::router::account::account_callback(bot, app, c, mid, cb, a).await,
        (_, None) => return Ok(Some((plain_text(tr(l, Key::StaleButton)), true))),
    }
    Ok(None)
}

/// The handler tree. Generic over the requester (always a plain `Bot`: production, tests and
/// benchmarks alike).
pub fn schema<R>() -> UpdateHandler<anyhow::Error>
where
    R: Req,
{
    let messages = Update::filter_message()
        .branch(dptree::filter(|m: Message| !m.chat.is_private()).endpoint(not_private::<R>))
        .branch(dptree::filter_map_async(resolve_message).endpoint(on_message::<R>))
        .endpoint(on_unresolved_message::<R>);
    let callbacks = Update::filter_callback_query()
        .branch(dptree::filter_map_async(resolve_callback).endpoint(on_callback::<R>))
        .endpoint(on_unresolved_callback::<R>);
    dptree::entry().branch(messages).branch(callbacks)
}

/// The command list shown by Telegram, per language.
pub fn commands(lang: Lang) -> Vec<BotCommand> {
    let list: &[(&str, &str, &str)] = &[
        ("start", "Mulai dan menu utama", "Start and main menu"),
        ("menu", "Menu utama", "Main menu"),
        (
            "pair",
            "Hubungkan nomor WhatsApp (kode pairing)",
            "Link a WhatsApp number (pairing code)",
        ),
        ("qr", "Hubungkan nomor WhatsApp (QR)", "Link a WhatsApp number (QR)"),
        ("status", "Status akun aktif", "Active account status"),
        ("accounts", "Akun Anda", "Your accounts"),
        ("groups", "Grup akun aktif", "Groups of the active account"),
        ("lang", "Ganti bahasa", "Change language"),
        ("cancel", "Batalkan input", "Cancel input"),
        ("help", "Bantuan", "Help"),
    ];
    list.iter()
        .map(|(c, id, en)| BotCommand::new(*c, if lang == Lang::En { *en } else { *id }))
        .collect()
}

/// Registers the command lists with Telegram (Indonesian as default, English for `en`).
pub async fn set_commands<R>(bot: &R)
where
    R: Requester<Err = RequestError>,
{
    if let Err(e) = bot.set_my_commands(commands(Lang::Id)).await {
        warn!(error = %e, "setMyCommands failed");
    }
    if let Err(e) = bot.set_my_commands(commands(Lang::En)).language_code("en").await {
        warn!(error = %e, "setMyCommands (en) failed");
    }
}

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
