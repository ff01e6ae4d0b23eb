//! Linking a number: `/pair` and `/qr` (or their buttons), the countdown that follows the
//! code or QR on screen, and how it ends (linked, expired, refused, taken over).

use std::time::Duration;

use teloxide::types::{InlineKeyboardMarkup, MessageId};
use tracing::{info, warn};

use crate::account::{Account, AccountError, AccountStatus};
use crate::ids::{ParseIdError, PhoneNumber};
use crate::supervisor::{LiveState, PairError};
use crate::wa::WaError;

use super::kit::app::{refreshed, App, Caller, Req};
use super::kit::buttons::{back_to_menu, btn};
use super::kit::callback::Cb;
use super::kit::i18n::{account_label, esc, tr, tr_with, Key, Lang};
use super::kit::send::{edit_or_send, send_html};
use super::kit::text::plain_text;
use super::menu::show_menu;

pub(crate) fn parse_reason(lang: Lang, e: &ParseIdError) -> &'static str {
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
                    tr_with(
                        l,
                        Key::PairRateLimited,
                        &[("wait", &super::kit::i18n::duration_in(l, wait))],
                    )
                }
                PairError::Locked => tr(l, Key::PairLocked).to_string(),
                // --- proxy2 ---
                PairError::Wa(WaError::Proxy(reason)) => {
                    tr_with(l, Key::PairProxyFailed, &[("phone", &ph), ("reason", &esc(reason))])
                }
                PairError::Cooldown { wait } => tr_with(
                    l,
                    Key::PairCooldown,
                    &[("wait", &super::kit::i18n::duration_in(l, *wait))],
                ),
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
        tr_with(
            l,
            Key::PairCountdown,
            &[("left", &super::kit::i18n::duration_in(l, ttl))]
        )
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
pub(crate) fn pair_refused(app: &App, c: &Caller, qr: bool, full: bool) -> InlineKeyboardMarkup {
    let l = c.lang;
    let first = if full {
        btn(app, c, tr(l, Key::BtnAccounts), Cb::Accounts)
    } else {
        btn(app, c, tr(l, Key::BtnRetry), Cb::PairStart(qr))
    };
    InlineKeyboardMarkup::new(vec![vec![first, btn(app, c, tr(l, Key::BtnMenu), Cb::Menu)]])
}

/// Keeps the pairing message current: a countdown, then success, expiry or failure.
pub(crate) async fn follow_pairing<R: Req>(
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
                let text = format!("{body}\n\n{}", tr_with(l, Key::PairCountdown, &[("left", &super::kit::i18n::duration_in(l, left))]));
                if let Some((chat, mid)) = app.pairing_msg(c.tid, acc.id) {
                    // A countdown tick: behind replies, and only the latest when several wait.
                    super::kit::send::edit_progress(&bot, &m, chat, mid, &text, Some(cancel.clone())).await;
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
        super::kit::send::delete(&bot, &m, qchat, qmid).await;
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
        tr_with(
            l,
            Key::PairRateLimited,
            &[("wait", &super::kit::i18n::duration_in(l, wait))],
        )
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

/// The pairing message's buttons: cancel the pairing on screen, or a new code (refused within
/// the cooldown without touching the code still shown).
pub(crate) async fn button<R: Req>(
    bot: &R,
    app: &App,
    c: &Caller,
    mid: Option<MessageId>,
    cb: Cb,
    acc: Option<Account>,
) -> anyhow::Result<Option<(String, bool)>> {
    let l = c.lang;
    let m = app.manager();
    match (cb, acc) {
        (Cb::PairCancel(_), Some(a)) => {
            if a.status != AccountStatus::Pairing {
                return Ok(Some((plain_text(tr(l, Key::StaleButton)), true)));
            }
            let msg = app.set_pairing_msg(c.tid, a.id, None);
            m.cancel_pairing(c.tid, a.id).await?;
            // The countdown ends without a word once its message is gone: the QR goes here.
            if let Some((qchat, qmid)) = app.qr_msg(c.tid, a.id) {
                app.set_qr_msg(c.tid, a.id, None);
                crate::bot::kit::send::delete(bot, m, qchat, qmid).await;
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
                let t = tr_with(
                    l,
                    Key::PairCooldown,
                    &[("wait", &crate::bot::kit::i18n::duration_in(l, wait))],
                );
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
                    crate::bot::kit::send::delete(bot, m, qchat, qmid).await;
                }
            }
            let c2 = refreshed(app, c).await?;
            pair(bot, app, &c2, phone.digits(), false, mid).await?;
        }
        _ => return Ok(Some((plain_text(tr(l, Key::StaleButton)), true))),
    }
    Ok(None)
}
