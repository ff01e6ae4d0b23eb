//! The main menu and the language menu.

use teloxide::types::{InlineKeyboardMarkup, MessageId};

use super::kit::app::{App, Caller, Req};
use super::kit::buttons::btn;
use super::kit::callback::Cb;
use super::kit::i18n::{account_label, tr, tr_with, Key, Lang};
use super::kit::send::edit_or_send;
use super::kit::text::state_label;

pub(crate) fn main_menu(app: &App, c: &Caller) -> (String, InlineKeyboardMarkup) {
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

pub(crate) fn language_menu(app: &App, c: &Caller) -> (String, InlineKeyboardMarkup) {
    let kb = InlineKeyboardMarkup::new(vec![
        vec![
            btn(app, c, "🇮🇩 Bahasa Indonesia", Cb::SetLang(Lang::Id)),
            btn(app, c, "🇬🇧 English", Cb::SetLang(Lang::En)),
        ],
        vec![btn(app, c, tr(c.lang, Key::BtnBack), Cb::Menu)],
    ]);
    (tr(c.lang, Key::LanguageTitle).to_string(), kb)
}
