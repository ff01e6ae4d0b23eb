//! Signed buttons and the keyboards every screen ends with (the way back to the menu, the
//! way on for a user without an account, yes/no).

use teloxide::types::{InlineKeyboardButton, InlineKeyboardMarkup};

use super::app::{App, Caller};
use super::callback::Cb;
use super::i18n::{tr, Key};

pub(crate) fn btn(app: &App, c: &Caller, label: &str, cb: Cb) -> InlineKeyboardButton {
    InlineKeyboardButton::callback(label.to_string(), app.codec().encode(c.tid, &cb))
}

pub(crate) fn back_to_menu(app: &App, c: &Caller) -> InlineKeyboardMarkup {
    InlineKeyboardMarkup::new(vec![vec![btn(app, c, tr(c.lang, Key::BtnMenu), Cb::Menu)]])
}

/// «🔗 Hubungkan nomor» and Help: the way on for a user without an account.
pub(crate) fn link_number(app: &App, c: &Caller) -> InlineKeyboardMarkup {
    InlineKeyboardMarkup::new(vec![vec![
        btn(app, c, tr(c.lang, Key::BtnLinkNumber), Cb::PairStart(false)),
        btn(app, c, tr(c.lang, Key::BtnHelp), Cb::Help),
    ]])
}

/// Menu and Help: the way on from a text the bot did not understand.
pub(crate) fn menu_and_help(app: &App, c: &Caller) -> InlineKeyboardMarkup {
    InlineKeyboardMarkup::new(vec![vec![
        btn(app, c, tr(c.lang, Key::BtnMenu), Cb::Menu),
        btn(app, c, tr(c.lang, Key::BtnHelp), Cb::Help),
    ]])
}

pub(crate) fn confirm(app: &App, c: &Caller, yes: Cb, no: Cb) -> InlineKeyboardMarkup {
    InlineKeyboardMarkup::new(vec![vec![
        btn(app, c, tr(c.lang, Key::BtnYes), yes),
        btn(app, c, tr(c.lang, Key::BtnNo), no),
    ]])
}
