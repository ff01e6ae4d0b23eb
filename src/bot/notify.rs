//! Turns session notices into messages for the account's owner (in their language), and the
//! startup summary into one message for each admin. Users who blocked the bot are skipped.

use teloxide::prelude::*;
use teloxide::types::{ChatId, InlineKeyboardButton, InlineKeyboardMarkup, InputFile, InputMedia, InputMediaPhoto};
use tokio::sync::{mpsc, watch};
use tracing::{info, warn};

use super::kit::app::{App, Req};
use super::kit::callback::Cb;
use super::kit::i18n::{duration, esc, tr, tr_with, Key, Lang};
use super::kit::send::{paced, retrying, send_html, Repeat};
use crate::account;
use crate::ids::TelegramId;
use crate::supervisor::Notice;
use crate::telegram::limiter::Class;
use std::future::IntoFuture;

/// Consumes notices until the channel closes or `shutdown` fires.
pub async fn run<R: Req>(
    bot: R,
    app: App,
    mut rx: mpsc::UnboundedReceiver<Notice>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let n = tokio::select! {
            n = rx.recv() => match n { Some(n) => n, None => break },
            _ = shutdown.changed() => break,
        };
        deliver(&bot, &app, n).await;
    }
}

/// The recipient's language, or `None` if they blocked the bot.
// --- members ---
/// The account of a notice as the owner knows it ([`super::kit::i18n::account_label`]): its
/// nickname next to the number; the bare number when the row is gone.
async fn shown(app: &App, account: crate::ids::AccountId, phone: &crate::ids::PhoneNumber) -> String {
    match app.manager().get(account).await {
        Ok(Some(a)) => super::kit::i18n::account_label(&a),
        _ => esc(&phone.to_string()),
    }
}

async fn recipient(app: &App, tid: TelegramId) -> Option<Lang> {
    let user = app
        .manager()
        .with_master(move |c| account::user(c, tid))
        .await
        .ok()
        .flatten();
    match user {
        Some(u) if u.blocked => None,
        Some(u) => Some(Lang::from_code(&u.language)),
        None => Some(Lang::Id),
    }
}

async fn deliver<R: Req>(bot: &R, app: &App, n: Notice) {
    let m = app.manager();
    match n {
        Notice::Paired { .. } | Notice::PairFailed { .. } => {
            // The pairing message's own countdown reports these.
        }
        Notice::Qr { owner, account, code } => {
            let Some(lang) = recipient(app, owner).await else {
                return;
            };
            let png = match render_qr(&code) {
                Ok(p) => p,
                Err(e) => {
                    warn!(error = %e, "could not render a QR code");
                    return;
                }
            };
            let phone = m
                .get(account)
                .await
                .ok()
                .flatten()
                .map(|a| a.phone.to_string())
                .unwrap_or_default();
            let caption = tr_with(lang, Key::QrCaption, &[("phone", &phone)]);
            let chat = ChatId(owner.get());
            let base = m.config().telegram_retry_base;
            if let Some((c, mid)) = app.qr_msg(owner, account) {
                // A new QR replaces the shown one in place; a lost answer may be repeated.
                let res = retrying(base, Repeat::Safe, "editMessageMedia (QR)", || {
                    let media = InputMedia::Photo(
                        InputMediaPhoto::new(InputFile::memory(png.clone()).file_name("qr.png"))
                            .caption(caption.clone())
                            .parse_mode(teloxide::types::ParseMode::Html),
                    );
                    paced(m, c, Class::Reply, bot.edit_message_media(c, mid, media).into_future())
                })
                .await;
                if res.is_ok() {
                    return;
                }
            }
            let res = retrying(base, Repeat::Unsafe, "sendPhoto (QR)", || {
                let req = bot
                    .send_photo(chat, InputFile::memory(png.clone()).file_name("qr.png"))
                    .caption(caption.clone())
                    .parse_mode(teloxide::types::ParseMode::Html);
                paced(m, chat, Class::Reply, req.into_future())
            })
            .await;
            match res {
                Ok(msg) => app.set_qr_msg(owner, account, Some((chat, msg.id))),
                Err(e) => warn!(error = %e, "could not send the QR code"),
            }
        }
        Notice::LoggedOut {
            owner,
            phone,
            reason,
            account,
            ..
        } => {
            let Some(lang) = recipient(app, owner).await else {
                return;
            };
            let t = tr_with(
                lang,
                Key::NoticeLoggedOut,
                &[("phone", &shown(app, account, &phone).await), ("reason", &esc(&reason))],
            );
            let kb = InlineKeyboardMarkup::new(vec![
                vec![InlineKeyboardButton::callback(
                    tr(lang, Key::BtnPairAgain),
                    app.codec().encode(owner, &Cb::PairNew(phone)),
                )],
                vec![other_account(app, owner, lang)],
            ]);
            send_html(bot, m, ChatId(owner.get()), &t, Some(kb)).await;
        }
        Notice::Banned {
            owner,
            phone,
            reason,
            until,
            account,
            ..
        } => {
            let Some(lang) = recipient(app, owner).await else {
                return;
            };
            let until = super::kit::text::local_time(m.config(), until);
            let t = tr_with(
                lang,
                Key::NoticeBanned,
                &[
                    ("phone", &shown(app, account, &phone).await),
                    ("reason", &esc(&reason)),
                    ("until", &until),
                ],
            );
            send_html(bot, m, ChatId(owner.get()), &t, Some(offline_ways(app, owner, lang))).await;
        }
        Notice::AccountBanned {
            owner,
            phone,
            reason,
            locked,
            account,
            ..
        } => {
            // No "pair again" button: a banned or locked number cannot be linked again until
            // WhatsApp lifts it, and trying only adds to the record.
            let key = if locked {
                Key::NoticeAccountLocked
            } else {
                Key::NoticeAccountBanned
            };
            let Some(lang) = recipient(app, owner).await else {
                return;
            };
            let t = tr_with(
                lang,
                key,
                &[("phone", &shown(app, account, &phone).await), ("reason", &esc(&reason))],
            );
            send_html(bot, m, ChatId(owner.get()), &t, Some(offline_ways(app, owner, lang))).await;
        }
        Notice::StreamReplaced { owner, account, phone } => {
            let Some(lang) = recipient(app, owner).await else {
                return;
            };
            let t = tr_with(
                lang,
                Key::NoticeStreamReplaced,
                &[("phone", &shown(app, account, &phone).await)],
            );
            // The owner decides whether this bot takes the session back.
            let kb = InlineKeyboardMarkup::new(vec![
                vec![InlineKeyboardButton::callback(
                    tr(lang, Key::BtnReconnect),
                    app.codec().encode(owner, &Cb::Reconnect(account)),
                )],
                vec![other_account(app, owner, lang)],
            ]);
            send_html(bot, m, ChatId(owner.get()), &t, Some(kb)).await;
        }
        Notice::Resumed { owner, account, phone } => {
            let Some(lang) = recipient(app, owner).await else {
                return;
            };
            let t = tr_with(
                lang,
                Key::NoticeResumed,
                &[("phone", &shown(app, account, &phone).await)],
            );
            let kb = InlineKeyboardMarkup::new(vec![vec![InlineKeyboardButton::callback(
                tr(lang, Key::BtnMenu),
                app.codec().encode(owner, &Cb::Menu),
            )]]);
            send_html(bot, m, ChatId(owner.get()), &t, Some(kb)).await;
        }
        Notice::Reconnected {
            owner,
            phone,
            after,
            account,
            ..
        } => {
            let params = [("phone", shown(app, account, &phone).await), ("after", duration(after))];
            tell(bot, app, owner, Key::NoticeReconnected, &borrowed(&params)).await;
        }
        Notice::ConnectFailures {
            owner,
            phone,
            count,
            reason,
            account,
            ..
        } => {
            let params = [
                ("phone", shown(app, account, &phone).await),
                ("count", count.to_string()),
                ("reason", esc(&reason)),
            ];
            tell(bot, app, owner, Key::NoticeConnectFailures, &borrowed(&params)).await;
        }
        Notice::ConnectRefused {
            owner,
            phone,
            reason,
            account,
            ..
        } => {
            let params = [("phone", shown(app, account, &phone).await), ("reason", esc(&reason))];
            tell(bot, app, owner, Key::NoticeConnectRefused, &borrowed(&params)).await;
        }
        // --- peer ---
        Notice::ProxyFailed {
            owner,
            account,
            phone,
            proxy,
            reason,
        } => {
            let params = [
                ("phone", shown(app, account, &phone).await),
                ("proxy", esc(&proxy)),
                ("reason", esc(&reason)),
                ("owner", owner.to_string()),
            ];
            tell(bot, app, owner, Key::NoticeProxyFailed, &borrowed(&params)).await;
            for admin in m.config().admin_ids.clone() {
                if admin != owner {
                    tell(bot, app, admin, Key::AdminProxyFailed, &borrowed(&params)).await;
                }
            }
        }
        Notice::Restored(s) => {
            info!(?s, "sending the startup summary to admins");
            for admin in m.config().admin_ids.clone() {
                let Some(lang) = recipient(app, admin).await else {
                    continue;
                };
                let t = tr_with(
                    lang,
                    Key::AdminRestoreSummary,
                    &[
                        ("connected", &s.connected.to_string()),
                        ("total", &s.total.to_string()),
                        ("failed", &s.failed.to_string()),
                        ("logged_out", &s.logged_out.to_string()),
                        ("banned", &s.banned.to_string()),
                        ("unpaired", &s.unpaired.to_string()),
                        ("stale", &s.stale_pairings.to_string()),
                    ],
                );
                let kb = InlineKeyboardMarkup::new(vec![vec![InlineKeyboardButton::callback(
                    tr(lang, Key::BtnMenu),
                    app.codec()
                        .encode(admin, &Cb::Admin(super::kit::callback::AdminCb::Overview)),
                )]]);
                send_html(bot, m, ChatId(admin.get()), &t, Some(kb)).await;
            }
        }
    }
}

/// Sends the owner one notice in their language (nothing if they blocked the bot).
async fn tell<R: Req>(bot: &R, app: &App, owner: TelegramId, key: Key, params: &[(&str, &str)]) {
    let Some(lang) = recipient(app, owner).await else {
        return;
    };
    let t = tr_with(lang, key, params);
    let kb = InlineKeyboardMarkup::new(vec![vec![InlineKeyboardButton::callback(
        tr(lang, Key::BtnMenu),
        app.codec().encode(owner, &Cb::Menu),
    )]]);
    send_html(bot, app.manager(), ChatId(owner.get()), &t, Some(kb)).await;
}

/// «🔄 Pakai akun lain»: the account list, where another account is made active.
fn other_account(app: &App, owner: TelegramId, lang: Lang) -> InlineKeyboardButton {
    InlineKeyboardButton::callback(tr(lang, Key::BtnOtherAccount), app.codec().encode(owner, &Cb::Accounts))
}

/// The way on from a number WhatsApp banned or locked: another account, or the menu (pairing
/// it again would not help, and only adds to the record).
fn offline_ways(app: &App, owner: TelegramId, lang: Lang) -> InlineKeyboardMarkup {
    InlineKeyboardMarkup::new(vec![vec![
        other_account(app, owner, lang),
        InlineKeyboardButton::callback(tr(lang, Key::BtnMenu), app.codec().encode(owner, &Cb::Menu)),
    ]])
}

/// `(name, value)` pairs as [`tr_with`] takes them.
fn borrowed<'a, const N: usize>(params: &'a [(&'a str, String); N]) -> [(&'a str, &'a str); N] {
    params.each_ref().map(|(k, v)| (*k, v.as_str()))
}

/// Renders a QR string as a PNG.
pub fn render_qr(code: &str) -> Result<Vec<u8>, String> {
    let qr = qrcode::QrCode::new(code.as_bytes()).map_err(|e| e.to_string())?;
    let img = qr.render::<image::Luma<u8>>().min_dimensions(300, 300).build();
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png)
        .map_err(|e| e.to_string())?;
    Ok(out.into_inner())
}

#[cfg(test)]
mod tests {
    #[test]
    fn qr_renders_png() {
        let png = super::render_qr("2@abc,def,ghi").unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    }
}
