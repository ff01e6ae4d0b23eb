//! `/admin`: the operator's view, for the Telegram IDs in `TGWA_ADMIN_IDS` only. Anyone else
//! gets the same "AKSES DITOLAK" as a user without an account (the command is not in the
//! command list, and its buttons are refused on every press), and the attempt is audited.
//!
//! Screens: an overview (accounts by status, connected now, users, jobs running and paused,
//! Telegram and WhatsApp errors in the last hour, uptime, memory); every
//! account, ten per page, or those matching `/admin <number or owner ID>`; one account's page
//! with its owner, masked number, live status, last error, last change and recent audit
//! history. Actions, each after a confirmation and each audited: disconnect the account's
//! session, force-logout it, or pause all its running jobs (its owner is told), and suspend or
//! restore its owner (refused like a user with no account; their sessions stay up).
//! Announcements to every user are [`super::announce`]'s.

use std::sync::OnceLock;
use std::time::Instant;

use teloxide::prelude::*;
use teloxide::types::{InlineKeyboardMarkup, MessageId};
use tracing::{info, warn};

use super::kit::app::{App, Caller, Req};
use super::kit::buttons::btn;
use super::kit::callback::{AdminCb, Cb};
use super::kit::i18n::{esc, t2, tr, Key, Lang};
use super::kit::send::{edit_or_send, send_html};
use super::kit::text::{plain_text, state_label};
use crate::account::{self, Account, AccountStatus};
use crate::ids::{AccountId, TelegramId};
use crate::supervisor::LiveState;

/// Accounts per page of the list.
const PAGE: usize = 10;
/// Audit rows on an account's page.
const HISTORY: u32 = 10;

static STARTED: OnceLock<Instant> = OnceLock::new();

/// Records the process start for the overview's uptime (first call wins).
pub fn mark_started() {
    STARTED.get_or_init(Instant::now);
}

/// True when `tid` is an operator.
pub fn is_admin(app: &App, tid: TelegramId) -> bool {
    app.manager().config().admin_ids.contains(&tid)
}

/// `/admin [search]`.
pub(crate) async fn command<R: Req>(bot: &R, app: &App, c: &Caller, arg: &str) -> anyhow::Result<()> {
    let m = app.manager();
    if !is_admin(app, c.tid) {
        warn!(telegram_id = %c.tid, "/admin from a non-operator");
        m.audit(Some(c.tid), None, "refused_admin", "/admin".into()).await?;
        let kb = super::kit::buttons::back_to_menu(app, c);
        send_html(bot, m, c.chat, tr(c.lang, Key::AccessDenied), Some(kb)).await;
        return Ok(());
    }
    // An announcement is audited by itself (`admin_announce_draft`), not as a view.
    let (word, rest) = arg.split_once(char::is_whitespace).unwrap_or((arg, ""));
    if ["announce", "umumkan"].contains(&word.to_ascii_lowercase().as_str()) {
        return super::announcements::command(bot, app, c, rest).await;
    }
    // --- peer ---
    if word.eq_ignore_ascii_case("proxy") {
        m.audit(Some(c.tid), None, "admin_view", "/admin proxy".into()).await?;
        return super::proxy_admin::command(bot, app, c, rest).await;
    }
    m.audit(
        Some(c.tid),
        None,
        "admin_view",
        format!("/admin {arg}").trim().to_string(),
    )
    .await?;
    let (text, kb) = if arg.is_empty() {
        overview(app, c).await?
    } else {
        accounts_page(app, c, 0, Some(arg)).await?
    };
    send_html(bot, m, c.chat, &text, Some(kb)).await;
    Ok(())
}

/// An operator button; returns the callback answer like `router::callback`.
pub(crate) async fn callback<R: Req>(
    bot: &R,
    app: &App,
    c: &Caller,
    cb: AdminCb,
    mid: Option<MessageId>,
) -> anyhow::Result<Option<(String, bool)>> {
    let m = app.manager();
    if !is_admin(app, c.tid) {
        warn!(telegram_id = %c.tid, ?cb, "operator button pressed by a non-operator");
        m.audit(Some(c.tid), None, "refused_admin", format!("{cb:?}")).await?;
        return Ok(Some((plain_text(tr(c.lang, Key::AccessDenied)), true)));
    }
    let l = c.lang;
    if matches!(
        cb,
        AdminCb::Announcements
            | AdminCb::AnnounceView(_)
            | AdminCb::AnnounceYes(_)
            | AdminCb::AnnouncePause(_)
            | AdminCb::AnnounceResume(_)
            | AdminCb::AnnounceCancel(_)
    ) {
        return super::announcements::callback(bot, app, c, cb, mid).await;
    }
    let target = match cb {
        AdminCb::Account(id)
        | AdminCb::Disconnect(id)
        | AdminCb::DisconnectYes(id, _)
        | AdminCb::Logout(id)
        | AdminCb::LogoutYes(id, _)
        | AdminCb::PauseJobs(id)
        | AdminCb::PauseJobsYes(id, _)
        | AdminCb::Suspend(_, id)
        | AdminCb::SuspendYes(_, id)
        | AdminCb::Unsuspend(_, id)
        | AdminCb::UnsuspendYes(_, id) => match m.get(id).await? {
            Some(a) => Some(a),
            None => return Ok(Some((tr(l, Key::StaleButton).to_string(), true))),
        },
        _ => None,
    };
    if target.as_ref().is_some_and(|a| stale_confirmation(cb, a)) {
        return Ok(Some((tr(l, Key::StaleButton).to_string(), true)));
    }
    let (text, kb) = match (cb, target) {
        (AdminCb::Overview, _) => overview(app, c).await?,
        (AdminCb::Accounts(page), _) => accounts_page(app, c, page as usize, None).await?,
        (AdminCb::Account(_), Some(a)) => account_page(app, c, &a).await?,
        (AdminCb::Disconnect(id), Some(a)) => (
            t2(
                l,
                &format!(
                    "🔌 Putuskan sesi WhatsApp {} (pemilik: pengguna Telegram {})? Pemilik akan diberi tahu dan dapat menyambungkannya lagi.",
                    a.phone,
                    a.telegram_id
                ),
                &format!(
                    "🔌 Disconnect the WhatsApp session of {} (owner: Telegram user {})? The owner will be told and can connect it again.",
                    a.phone,
                    a.telegram_id
                ),
            ),
            confirm(app, c, Cb::Admin(AdminCb::DisconnectYes(id, a.generation)), Cb::Admin(AdminCb::Account(id))),
        ),
        (AdminCb::Logout(id), Some(a)) => (
            t2(
                l,
                &format!(
                    "🚪 Paksa logout {} (pemilik: pengguna Telegram {})? Perangkat ditautkan dihapus dari WhatsApp; pemilik harus memasangkan ulang. Pemilik akan diberi tahu.",
                    a.phone,
                    a.telegram_id
                ),
                &format!(
                    "🚪 Force-logout {} (owner: Telegram user {})? The linked device is removed from WhatsApp; the owner must pair again. The owner will be told.",
                    a.phone,
                    a.telegram_id
                ),
            ),
            confirm(app, c, Cb::Admin(AdminCb::LogoutYes(id, a.generation)), Cb::Admin(AdminCb::Account(id))),
        ),
        // The user is named in the button, but only the owner of the account it came from can
        // be meant: anything else is a stale or made-up button.
        (
            AdminCb::Suspend(t, _) | AdminCb::SuspendYes(t, _) | AdminCb::Unsuspend(t, _) | AdminCb::UnsuspendYes(t, _),
            Some(a),
        ) if t != a.telegram_id => return Ok(Some((tr(l, Key::StaleButton).to_string(), true))),
        (AdminCb::Suspend(t, id), Some(a)) => (
            t2(
                l,
                &format!("⛔ Tangguhkan pengguna Telegram {t}, pemilik {}? Semua perintah dan tombolnya ditolak; sesi WhatsApp-nya tetap berjalan.", a.phone),
                &format!("⛔ Suspend Telegram user {t}, owner of {}? Every command and button of theirs is refused; their WhatsApp sessions keep running.", a.phone),
            ),
            confirm(app, c, Cb::Admin(AdminCb::SuspendYes(t, id)), Cb::Admin(AdminCb::Account(id))),
        ),
        (AdminCb::Unsuspend(t, id), Some(a)) => (
            t2(
                l,
                &format!("✅ Pulihkan pengguna Telegram {t}, pemilik {}?", a.phone),
                &format!("✅ Restore Telegram user {t}, owner of {}?", a.phone),
            ),
            confirm(app, c, Cb::Admin(AdminCb::UnsuspendYes(t, id)), Cb::Admin(AdminCb::Account(id))),
        ),
        (AdminCb::SuspendYes(t, id) | AdminCb::UnsuspendYes(t, id), Some(a)) => {
            let suspend = matches!(cb, AdminCb::SuspendYes(..));
            let changed = m.with_master(move |conn| account::set_suspended(conn, t, suspend)).await?;
            m.invalidate(t);
            if changed {
                let action = if suspend { "admin_suspend" } else { "admin_restore" };
                m.audit(Some(c.tid), Some(id), action, format!("user {t}")).await?;
                info!(telegram_id = %t, admin = %c.tid, suspend, "operator changed a user's suspension");
                let key = if suspend {
                    Key::NoticeSuspended
                } else {
                    Key::NoticeRestored
                };
                tell_owner(bot, app, &a, tr(Lang::Id, key), tr(Lang::En, key)).await;
            }
            account_page(app, c, &a).await?
        }
        (AdminCb::PauseJobs(id), Some(a)) => (
            t2(
                l,
                &format!(
                    "⏸ Jeda semua pekerjaan yang berjalan di {} (pemilik: pengguna Telegram {})? Pemilik dapat melanjutkannya. Pemilik akan diberi tahu.",
                    a.phone,
                    a.telegram_id
                ),
                &format!(
                    "⏸ Pause every running job of {} (owner: Telegram user {})? The owner can resume them. The owner will be told.",
                    a.phone,
                    a.telegram_id
                ),
            ),
            confirm(app, c, Cb::Admin(AdminCb::PauseJobsYes(id, a.generation)), Cb::Admin(AdminCb::Account(id))),
        ),
        (AdminCb::PauseJobsYes(id, _), Some(a)) => {
            let owner = a.telegram_id;
            let mut paused = 0usize;
            for (job, _, p) in app.jobs().list(owner, id).await? {
                if p.state == crate::jobs::JobState::Running && app.jobs().pause_by_operator(owner, id, job).await.is_ok()
                {
                    paused += 1;
                    // The owner's progress message shows it paused, with Resume and Cancel.
                    super::jobs::show_progress(bot, app, owner, id, job).await;
                }
            }
            if paused > 0 {
                // Only a change is audited and told: a second tap finds nothing running.
                m.audit(Some(c.tid), Some(id), "admin_pause_jobs", format!("owner {owner}, {paused} paused"))
                    .await?;
                info!(account_id = %id, admin = %c.tid, paused, "operator paused an account's jobs");
                let key = Key::NoticeOperatorPausedJobs;
                tell_owner(bot, app, &a, tr(Lang::Id, key), tr(Lang::En, key)).await;
            }
            let (text, kb) = account_page(app, c, &a).await?;
            edit_or_send(bot, m, c.chat, mid, &text, Some(kb)).await;
            return Ok(Some((
                t2(l, &format!("{paused} pekerjaan dijeda"), &format!("{paused} jobs paused")),
                false,
            )));
        }
        (AdminCb::DisconnectYes(id, _), Some(a)) => {
            if m.live_status_unchecked(id).is_none() {
                // Nothing runs: a repeated tap changes nothing, so nobody is told anything.
                return Ok(Some((t2(l, "Sesi sudah terputus", "Already disconnected"), false)));
            }
            m.stop_session(id).await;
            m.audit(Some(c.tid), Some(id), "admin_disconnect", format!("owner {}", a.telegram_id))
                .await?;
            info!(account_id = %id, admin = %c.tid, "operator disconnected an account");
            tell_owner_reconnect(bot, app, &a).await;
            let a = m.get(id).await?.unwrap_or(a);
            account_page(app, c, &a).await?
        }
        (AdminCb::LogoutYes(id, _), Some(a)) => {
            if a.status != AccountStatus::Active {
                return Ok(Some((tr(l, Key::StaleButton).to_string(), true)));
            }
            m.logout(a.telegram_id, id).await?;
            m.audit(Some(c.tid), Some(id), "admin_logout", format!("owner {}", a.telegram_id))
                .await?;
            info!(account_id = %id, admin = %c.tid, "operator logged an account out");
            tell_owner(
                bot,
                app,
                &a,
                "⚠️ Operator mengeluarkan (logout) akun WhatsApp {phone}. Hubungkan lagi dengan /pair bila perlu.",
                "⚠️ The operator logged out your WhatsApp account {phone}. Link it again with /pair if you need it.",
            )
            .await;
            let a = m.get(id).await?.unwrap_or(a);
            account_page(app, c, &a).await?
        }
        // (Announcement buttons were handed over above.)
        _ => return Ok(Some((tr(l, Key::StaleButton).to_string(), true))),
    };
    edit_or_send(bot, m, c.chat, mid, &text, Some(kb)).await;
    Ok(None)
}

/// A button that acts on an account is stale when the account was removed, or (for a
/// confirmation) when it was paired again since the confirmation was shown.
fn stale_confirmation(cb: AdminCb, a: &Account) -> bool {
    let acts = matches!(cb, AdminCb::Disconnect(_) | AdminCb::Logout(_) | AdminCb::PauseJobs(_));
    match cb {
        AdminCb::DisconnectYes(_, g) | AdminCb::LogoutYes(_, g) | AdminCb::PauseJobsYes(_, g) => {
            a.status == AccountStatus::Removed || a.generation != g
        }
        _ => acts && a.status == AccountStatus::Removed,
    }
}

fn confirm(app: &App, c: &Caller, yes: Cb, no: Cb) -> InlineKeyboardMarkup {
    InlineKeyboardMarkup::new(vec![vec![
        btn(app, c, tr(c.lang, Key::BtnYes), yes),
        btn(app, c, tr(c.lang, Key::BtnNo), no),
    ]])
}

/// Sends the owner of `a` a notice in their language (`{phone}` is their full number: it is
/// their own).
async fn tell_owner<R: Req>(bot: &R, app: &App, a: &Account, id_text: &str, en_text: &str) {
    let m = app.manager();
    let owner = a.telegram_id;
    let lang = match m.with_master(move |c| account::user(c, owner)).await {
        Ok(Some(u)) => Lang::from_code(&u.language),
        _ => Lang::Id,
    };
    let text = t2(lang, id_text, en_text).replace("{phone}", &super::kit::i18n::account_label(a));
    let kb = InlineKeyboardMarkup::new(vec![vec![teloxide::types::InlineKeyboardButton::callback(
        tr(lang, Key::BtnMenu),
        app.codec().encode(owner, &Cb::Menu),
    )]]);
    send_html(bot, m, ChatId(owner.get()), &text, Some(kb)).await;
    m.invalidate(owner);
}

/// Tells the owner the operator disconnected their account, with the button that connects
/// it again (the owner's choice; nothing else would before a restart).
async fn tell_owner_reconnect<R: Req>(bot: &R, app: &App, a: &Account) {
    let m = app.manager();
    let owner = a.telegram_id;
    let lang = match m.with_master(move |c| account::user(c, owner)).await {
        Ok(Some(u)) => Lang::from_code(&u.language),
        _ => Lang::Id,
    };
    let text = super::kit::i18n::tr_with(
        lang,
        Key::NoticeOperatorDisconnected,
        &[("phone", &super::kit::i18n::account_label(a))],
    );
    let kb = InlineKeyboardMarkup::new(vec![vec![teloxide::types::InlineKeyboardButton::callback(
        tr(lang, Key::BtnReconnectAfterStop),
        app.codec().encode(owner, &Cb::Reconnect(a.id)),
    )]]);
    send_html(bot, m, ChatId(owner.get()), &text, Some(kb)).await;
    m.invalidate(owner);
}

fn back(app: &App, c: &Caller, label: &str, to: AdminCb) -> Vec<teloxide::types::InlineKeyboardButton> {
    vec![btn(app, c, label, Cb::Admin(to))]
}

async fn overview(app: &App, c: &Caller) -> anyhow::Result<(String, InlineKeyboardMarkup)> {
    let l = c.lang;
    let m = app.manager();
    let (rows, users) = m
        .with_master(|conn| Ok((account::all(conn)?, account::count_users(conn)?)))
        .await?;
    let mut by_status: Vec<(AccountStatus, usize)> = Vec::new();
    for a in &rows {
        match by_status.iter_mut().find(|(s, _)| *s == a.status) {
            Some((_, n)) => *n += 1,
            None => by_status.push((a.status, 1)),
        }
    }
    let connected = rows
        .iter()
        .filter(|a| {
            m.live_status_unchecked(a.id)
                .is_some_and(|s| s.state == LiveState::Connected)
        })
        .count();
    let statuses = if by_status.is_empty() {
        "-".to_string()
    } else {
        by_status
            .iter()
            .map(|(s, n)| format!("{} {n}", s.as_str()))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let uptime = STARTED.get().map(|t| t.elapsed().as_secs()).unwrap_or(0);
    let uptime = format!("{}h {}m", uptime / 3600, uptime / 60 % 60);
    let memory = rss_mib().map_or("-".to_string(), |m| format!("{m:.1} MiB"));
    let (running, paused) = app.jobs().count_running_and_paused().await?;
    let tg_errors = crate::metrics::errors_last_hour(crate::metrics::ErrorSource::Telegram);
    let wa_errors = crate::metrics::errors_last_hour(crate::metrics::ErrorSource::WhatsApp);
    let text = t2(
        l,
        &format!(
            "🛠 <b>Admin</b>\n\nAkun: {total} ({statuses})\nTerhubung sekarang: {connected}\nPengguna: {users}\nPekerjaan: {running} berjalan, {paused} dijeda\nGalat 1 jam terakhir: Telegram {tg_errors}, WhatsApp {wa_errors}\nBerjalan: {uptime}\nMemori: {memory}\n\nCari: <code>/admin 0812…</code> atau <code>/admin ID-Telegram</code>\nPengumuman: <code>/admin umumkan teks</code>",
            total = rows.len()
        ),
        &format!(
            "🛠 <b>Admin</b>\n\nAccounts: {total} ({statuses})\nConnected now: {connected}\nUsers: {users}\nJobs: {running} running, {paused} paused\nErrors in the last hour: Telegram {tg_errors}, WhatsApp {wa_errors}\nUp: {uptime}\nMemory: {memory}\n\nSearch: <code>/admin 0812…</code> or <code>/admin Telegram-ID</code>\nAnnouncement: <code>/admin announce text</code>",
            total = rows.len()
        ),
    );
    let kb = InlineKeyboardMarkup::new(vec![
        back(app, c, &t2(l, "📋 Semua akun", "📋 All accounts"), AdminCb::Accounts(0)),
        back(
            app,
            c,
            &t2(l, "📣 Pengumuman", "📣 Announcements"),
            AdminCb::Announcements,
        ),
        back(app, c, &t2(l, "🔄 Muat ulang", "🔄 Refresh"), AdminCb::Overview),
    ]);
    Ok((text, kb))
}

/// Resident memory of this process, from `/proc/self/status` (Linux).
fn rss_mib() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let kib: f64 = s
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some(kib / 1024.0)
}

/// True when `a` matches a search: digits in its number, or its owner's ID.
fn matches(a: &Account, query: &str) -> bool {
    let digits: String = query.chars().filter(char::is_ascii_digit).collect();
    if digits.is_empty() {
        return false;
    }
    // A leading 0 is the local form of the default country code (0812… is 62812…).
    let local = digits.strip_prefix('0').unwrap_or(&digits);
    a.telegram_id.get().to_string() == digits || a.phone.digits().contains(local)
}

async fn accounts_page(
    app: &App,
    c: &Caller,
    page: usize,
    query: Option<&str>,
) -> anyhow::Result<(String, InlineKeyboardMarkup)> {
    let l = c.lang;
    let m = app.manager();
    let mut all = m.all_rows().await?;
    all.retain(|a| a.status != AccountStatus::Removed);
    if let Some(q) = query {
        all.retain(|a| matches(a, q));
    }
    let pages = all.len().div_ceil(PAGE).max(1);
    let page = page.min(pages - 1);
    let mut text = match query {
        Some(q) => t2(
            l,
            &format!("🔎 <b>Akun cocok dengan</b> <code>{}</code>: {}", esc(q), all.len()),
            &format!("🔎 <b>Accounts matching</b> <code>{}</code>: {}", esc(q), all.len()),
        ),
        None => t2(
            l,
            &format!("📋 <b>Semua akun</b>: {} (halaman {}/{pages})", all.len(), page + 1),
            &format!("📋 <b>All accounts</b>: {} (page {}/{pages})", all.len(), page + 1),
        ),
    };
    let mut rows = Vec::new();
    for a in all.iter().skip(page * PAGE).take(PAGE) {
        let live = m.live_status_unchecked(a.id);
        let error = live
            .as_ref()
            .and_then(|s| s.last_error.clone())
            .or_else(|| a.last_error.clone())
            .map(|e| format!(" ⚠️ {}", esc(&e.chars().take(60).collect::<String>())))
            .unwrap_or_default();
        text.push_str(&format!(
            "\n#{} · {} · {} · {} · {}{error}",
            a.id,
            a.telegram_id,
            esc(&a.label_around(&a.phone.masked())),
            state_label(l, a, live.as_ref()),
            date(app, a.status_changed_at.max(a.updated_at)),
        ));
        rows.push(back(
            app,
            c,
            &format!("#{} {}", a.id, a.phone.masked()),
            AdminCb::Account(a.id),
        ));
    }
    if all.is_empty() {
        text.push_str(&t2(l, "\n(tidak ada)", "\n(none)"));
    }
    if query.is_none() {
        let mut nav = Vec::new();
        if page > 0 {
            nav.push(btn(app, c, "◀️", Cb::Admin(AdminCb::Accounts(page as u32 - 1))));
        }
        if page + 1 < pages {
            nav.push(btn(app, c, "▶️", Cb::Admin(AdminCb::Accounts(page as u32 + 1))));
        }
        if !nav.is_empty() {
            rows.push(nav);
        }
    } else if all.len() > PAGE {
        text.push_str(&t2(
            l,
            &format!("\n… {} lagi; persempit pencarian.", all.len() - PAGE),
            &format!("\n… {} more; narrow the search.", all.len() - PAGE),
        ));
    }
    rows.push(back(app, c, &t2(l, "⬅️ Ringkasan", "⬅️ Overview"), AdminCb::Overview));
    Ok((text, InlineKeyboardMarkup::new(rows)))
}

/// An audit row's action in the operator's words; an action this build does not name shows
/// as stored.
fn audit_word(l: Lang, action: &str) -> String {
    let (id, en) = match action {
        "paired" => ("dipasangkan", "paired"),
        "switch" => ("ganti akun aktif", "switched active account"),
        "logout" => ("logout oleh pemilik", "logged out by the owner"),
        "logged_out" => ("logout dari ponsel", "logged out from the phone"),
        "remove" => ("dihapus", "removed"),
        "reconnect" => ("disambungkan lagi", "reconnected"),
        "banned" => ("diblokir WhatsApp", "banned by WhatsApp"),
        "stream_replaced" => ("dibuka di perangkat lain", "opened on another device"),
        "connect_failed" => ("gagal tersambung", "could not connect"),
        "pairing_discarded" => ("pairing dibuang", "pairing discarded"),
        "inbox_on" => ("pesan masuk diaktifkan", "inbox switched on"),
        "admin_view" => ("dilihat operator", "viewed by an operator"),
        "admin_disconnect" => ("sesi diputus operator", "disconnected by an operator"),
        "admin_logout" => ("logout paksa oleh operator", "force-logged out by an operator"),
        "admin_pause_jobs" => ("pekerjaan dijeda operator", "jobs paused by an operator"),
        "admin_suspend" => ("penangguhan pemilik", "owner suspended"),
        "admin_restore" => ("pemulihan pemilik", "owner restored"),
        "refused_not_owner" => ("ditolak: bukan pemilik", "refused: not the owner"),
        "refused_callback" => ("ditolak: tombol tidak sah", "refused: invalid button"),
        "refused_suspended" => ("ditolak selama penangguhan", "refused: suspended"),
        "refused_admin" => ("ditolak: bukan operator", "refused: not an operator"),
        other => return other.to_string(),
    };
    t2(l, id, en)
}

fn date(app: &App, t: i64) -> String {
    super::kit::text::local_time(app.manager().config(), t)
}

async fn account_page(app: &App, c: &Caller, a: &Account) -> anyhow::Result<(String, InlineKeyboardMarkup)> {
    let l = c.lang;
    let m = app.manager();
    let id: AccountId = a.id;
    let owner = a.telegram_id;
    let (history, suspended) = m
        .with_master(move |conn| {
            let suspended = account::user(conn, owner)?.is_some_and(|u| u.suspended);
            Ok((account::audit_of(conn, id, HISTORY)?, suspended))
        })
        .await?;
    let live = m.live_status_unchecked(a.id);
    let error = live
        .as_ref()
        .and_then(|s| s.last_error.clone())
        .or_else(|| a.last_error.clone())
        .map(|e| esc(&e))
        .unwrap_or_else(|| "-".into());
    let mut text = t2(
        l,
        &format!(
            "📱 <b>Akun #{}</b>\nPemilik: <code>{}</code>\nNomor: {}\nStatus: {}\nGalat terakhir: {error}\nBerubah: {}\n\n<b>Riwayat</b>",
            a.id,
            a.telegram_id,
            esc(&a.label_around(&a.phone.masked())),
            state_label(l, a, live.as_ref()),
            date(app, a.status_changed_at.max(a.updated_at)),
        ),
        &format!(
            "📱 <b>Account #{}</b>\nOwner: <code>{}</code>\nNumber: {}\nStatus: {}\nLast error: {error}\nChanged: {}\n\n<b>History</b>",
            a.id,
            a.telegram_id,
            esc(&a.label_around(&a.phone.masked())),
            state_label(l, a, live.as_ref()),
            date(app, a.status_changed_at.max(a.updated_at)),
        ),
    );
    // --- peer --- the proxy, masked, before the history.
    let history_at = text.rfind("\n\n<b>").unwrap_or(text.len());
    text.insert_str(history_at, &super::proxy_admin::page_line(app, l, &a.db_path).await);
    for h in &history {
        let who = h.telegram_id.map_or("-".to_string(), |t| t.to_string());
        let detail = if h.detail.is_empty() {
            String::new()
        } else {
            format!(" · {}", esc(&h.detail.chars().take(60).collect::<String>()))
        };
        let action = audit_word(l, &h.action);
        text.push_str(&format!("\n{} · {} · {}{detail}", date(app, h.at), esc(&action), who));
    }
    if history.is_empty() {
        text.push_str("\n-");
    }
    let mut rows = Vec::new();
    if live.is_some() {
        rows.push(back(
            app,
            c,
            &t2(l, "🔌 Putuskan sesi", "🔌 Disconnect"),
            AdminCb::Disconnect(a.id),
        ));
    }
    if a.status == AccountStatus::Active {
        rows.push(back(
            app,
            c,
            &t2(l, "⏸ Jeda semua pekerjaan", "⏸ Pause all jobs"),
            AdminCb::PauseJobs(a.id),
        ));
        rows.push(back(
            app,
            c,
            &t2(l, "🚪 Paksa logout", "🚪 Force logout"),
            AdminCb::Logout(a.id),
        ));
    }
    if suspended {
        text.push_str(&t2(
            l,
            "\n\n⛔ Pemilik sedang ditangguhkan.",
            "\n\n⛔ The owner is suspended.",
        ));
        rows.push(back(
            app,
            c,
            &t2(l, "✅ Pulihkan pemilik", "✅ Restore owner"),
            AdminCb::Unsuspend(owner, a.id),
        ));
    } else {
        rows.push(back(
            app,
            c,
            &t2(l, "⛔ Tangguhkan pemilik", "⛔ Suspend owner"),
            AdminCb::Suspend(owner, a.id),
        ));
    }
    rows.push(back(
        app,
        c,
        &t2(l, "⬅️ Semua akun", "⬅️ All accounts"),
        AdminCb::Accounts(0),
    ));
    Ok((text, InlineKeyboardMarkup::new(rows)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::PhoneNumber;

    fn acc(tid: i64, phone: &str) -> Account {
        Account {
            id: AccountId::new(1).unwrap(),
            telegram_id: TelegramId::new(tid).unwrap(),
            phone: PhoneNumber::from_digits(phone).unwrap(),
            jid: None,
            db_path: "x".into(),
            bot_data_db_path: "y".into(),
            status: AccountStatus::Active,
            last_error: None,
            banned_until: None,
            status_changed_at: 0,
            created_at: 0,
            updated_at: 0,
            generation: 1,
            nickname: None,
        }
    }

    #[test]
    fn search_by_number_local_form_or_owner() {
        let a = acc(4242, "6281234567890");
        assert!(matches(&a, "0812-3456"));
        assert!(matches(&a, "7890"));
        assert!(matches(&a, "4242"));
        assert!(!matches(&a, "999"));
        assert!(!matches(&a, "abc"));
    }
}
