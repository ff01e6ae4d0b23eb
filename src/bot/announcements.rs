//! `/admin` announcements, for operators only (the caller checks): `/admin announce <text>`
//! (or `umumkan`) stores a draft and shows a preview with the recipient count; "Send" starts
//! it; one progress message is edited as it goes, with Pause / Resume / Cancel. The sending
//! itself is [`crate::announcement`]'s worker; this module is its Telegram side: the screens
//! and the [`Outlet`] that sends through the shared retry policy and edits the progress.

use std::future::IntoFuture;
use std::sync::Arc;

use async_trait::async_trait;
use teloxide::prelude::*;
use teloxide::types::{InlineKeyboardButton, InlineKeyboardMarkup, MessageId};
use teloxide::{ApiError, RequestError};
use tracing::info;

use super::kit::app::{App, Caller, Req};
use super::kit::callback::{AdminCb, Cb};
use super::kit::i18n::{esc, t2, tr, Key, Lang};
use super::kit::send::{edit_or_send, retrying, send_html, Repeat};
use crate::account;
use crate::announcement::{AnnouncementError, Delivery, Outlet, Progress, MAX_CHARS};
use crate::ids::TelegramId;
use crate::jobs::JobState;

/// Announcements listed on the announcements screen.
const RECENT: u32 = 5;

fn button(app: &App, tid: TelegramId, label: &str, cb: AdminCb) -> InlineKeyboardButton {
    InlineKeyboardButton::callback(label.to_string(), app.codec().encode(tid, &Cb::Admin(cb)))
}

fn state_label(l: Lang, s: JobState) -> String {
    match s {
        JobState::Draft => t2(l, "draf", "draft"),
        JobState::Running => t2(l, "berjalan", "running"),
        JobState::Paused => t2(l, "dijeda", "paused"),
        JobState::Cancelled => t2(l, "dibatalkan", "cancelled"),
        JobState::Done => t2(l, "selesai", "done"),
        // Announcements are never scheduled; the engine's jobs share the states.
        JobState::Scheduled => t2(l, "terjadwal", "scheduled"),
    }
}

fn snippet(text: &str, n: usize) -> String {
    let mut s: String = text.chars().take(n).collect();
    if text.chars().count() > n {
        s.push('…');
    }
    s
}

/// `/admin announce <text>`: stores a draft and shows its preview; without a text, how to.
pub(crate) async fn command<R: Req>(bot: &R, app: &App, c: &Caller, text: &str) -> anyhow::Result<()> {
    let m = app.manager();
    if text.trim().is_empty() {
        m.audit(Some(c.tid), None, "admin_view", "/admin announce".into())
            .await?;
        let (t, kb) = screen(app, c).await?;
        send_html(bot, m, c.chat, &t, Some(kb)).await;
        return Ok(());
    }
    let id = match app.announcements().create(c.tid, c.chat.0, text).await {
        Ok(id) => id,
        Err(AnnouncementError::TooLong(n)) => {
            let t = t2(
                c.lang,
                &format!("❌ Pengumuman terlalu panjang ({n} karakter; maksimal {MAX_CHARS})."),
                &format!("❌ The announcement is too long ({n} characters; at most {MAX_CHARS})."),
            );
            let kb = InlineKeyboardMarkup::new(vec![vec![button(
                app,
                c.tid,
                tr(c.lang, Key::BtnBack),
                AdminCb::Announcements,
            )]]);
            send_html(bot, m, c.chat, &t, Some(kb)).await;
            return Ok(());
        }
        Err(e) => return Err(e.into()),
    };
    m.audit(
        Some(c.tid),
        None,
        "admin_announce_draft",
        format!("#{id}: {}", snippet(text.trim(), 60)),
    )
    .await?;
    let (recipients, suspended) = app.announcements().audience().await?;
    let l = c.lang;
    // --- bot17 --- each language's text as its readers get it, header included.
    let shown = languages_preview(l, text);
    let t = t2(
        l,
        &format!(
            "📣 <b>Pratinjau pengumuman #{id}</b>\n\n{shown}\n\n———\nAkan dikirim ke <b>{recipients}</b> pengguna bot, satu per satu. Pengguna yang ditangguhkan tidak menerimanya ({suspended}).",
        ),
        &format!(
            "📣 <b>Announcement #{id} preview</b>\n\n{shown}\n\n———\nIt goes to <b>{recipients}</b> users of the bot, one at a time. Suspended users do not get it ({suspended}).",
        ),
    );
    let kb = InlineKeyboardMarkup::new(vec![
        vec![button(
            app,
            c.tid,
            &t2(
                l,
                &format!("📣 Kirim ke {recipients} pengguna"),
                &format!("📣 Send to {recipients} users"),
            ),
            AdminCb::AnnounceYes(id),
        )],
        vec![button(app, c.tid, tr(l, Key::BtnNo), AdminCb::AnnounceCancel(id))],
    ]);
    send_html(bot, m, c.chat, &t, Some(kb)).await;
    Ok(())
}

/// An announcement button (the caller is an operator); returns the callback answer.
pub(crate) async fn callback<R: Req>(
    bot: &R,
    app: &App,
    c: &Caller,
    cb: AdminCb,
    mid: Option<MessageId>,
) -> anyhow::Result<Option<(String, bool)>> {
    let m = app.manager();
    let a = app.announcements();
    let l = c.lang;
    let (id, action, res) = match cb {
        AdminCb::Announcements => {
            let (t, kb) = screen(app, c).await?;
            edit_or_send(bot, m, c.chat, mid, &t, Some(kb)).await;
            return Ok(None);
        }
        AdminCb::AnnounceView(id) => (id, None, Ok(())),
        AdminCb::AnnounceYes(id) => {
            // The worker edits this message from its first send on.
            if let Some(mid) = mid {
                a.set_message(id, c.chat.0, mid.0 as i64).await?;
            }
            let res = a.start(id).await.map(|n| {
                info!(announcement = id, admin = %c.tid, recipients = n, "announcement started");
            });
            (id, Some("admin_announce_start"), res)
        }
        AdminCb::AnnouncePause(id) => (id, Some("admin_announce_pause"), a.pause(id).await),
        AdminCb::AnnounceResume(id) => (id, Some("admin_announce_resume"), a.resume(id).await),
        AdminCb::AnnounceCancel(id) => (id, Some("admin_announce_cancel"), a.cancel(id).await),
        _ => return Ok(Some((tr(l, Key::StaleButton).to_string(), true))),
    };
    match res {
        Ok(()) => {}
        Err(AnnouncementError::NotFound | AnnouncementError::WrongState(_)) => {
            return Ok(Some((tr(l, Key::StaleButton).to_string(), true)))
        }
        Err(e) => return Err(e.into()),
    }
    let p = match a.progress(id).await {
        Ok(p) => p,
        // A button for an announcement that is not there (any more): stale, not an error.
        Err(AnnouncementError::NotFound) => return Ok(Some((tr(l, Key::StaleButton).to_string(), true))),
        Err(e) => return Err(e.into()),
    };
    if let Some(action) = action {
        m.audit(Some(c.tid), None, action, format!("#{id}: {} recipients", p.total))
            .await?;
    }
    let (t, kb) = progress_view(app, c.tid, l, &p);
    if let Some(shown) = edit_or_send(bot, m, c.chat, mid, &t, Some(kb)).await {
        // The worker edits the message the operator looks at now.
        if shown.0 as i64 != p.message_id.unwrap_or(0) || p.chat_id != c.chat.0 {
            a.set_message(id, c.chat.0, shown.0 as i64).await?;
        }
    }
    Ok(None)
}

/// How to write one, and the recent ones.
async fn screen(app: &App, c: &Caller) -> anyhow::Result<(String, InlineKeyboardMarkup)> {
    let l = c.lang;
    let (recipients, suspended) = app.announcements().audience().await?;
    let mut t = t2(
        l,
        &format!(
            "📣 <b>Pengumuman</b>\n\nKirim <code>/admin umumkan teks Anda</code>: Anda melihat pratinjau dulu, lalu pengumuman dikirim ke setiap pengguna bot ({recipients} sekarang; {suspended} ditangguhkan tidak termasuk). Untuk pengguna berbahasa Inggris, tulis teksnya setelah baris <code>[en]</code>; tanpa itu semua pengguna mendapat teks yang sama.\n\n<b>Terakhir</b>"
        ),
        &format!(
            "📣 <b>Announcements</b>\n\nSend <code>/admin announce your text</code>: you see a preview first, then it goes to every user of the bot ({recipients} now; {suspended} suspended are left out). For users who read English, write their text after a line <code>[en]</code>; without it every user gets the same text.\n\n<b>Recent</b>"
        ),
    );
    let recent = app.announcements().recent(RECENT).await?;
    let mut rows = Vec::new();
    for p in &recent {
        t.push_str(&format!(
            "\n#{} · {} · {}/{} · {}",
            p.id,
            state_label(l, p.state),
            p.sent,
            p.total,
            esc(&snippet(&p.text, 40))
        ));
        rows.push(vec![button(
            app,
            c.tid,
            &format!("📣 #{} {}", p.id, state_label(l, p.state)),
            AdminCb::AnnounceView(p.id),
        )]);
    }
    if recent.is_empty() {
        t.push_str("\n-");
    }
    rows.push(vec![button(
        app,
        c.tid,
        &t2(l, "⬅️ Ringkasan", "⬅️ Overview"),
        AdminCb::Overview,
    )]);
    Ok((t, InlineKeyboardMarkup::new(rows)))
}

/// The progress message and its buttons, for operator `tid`.
fn progress_view(app: &App, tid: TelegramId, l: Lang, p: &Progress) -> (String, InlineKeyboardMarkup) {
    let done = p.finished();
    let bar = {
        let filled = (done * 10).checked_div(p.total).unwrap_or(0);
        format!("{}{}", "▓".repeat(filled), "░".repeat(10 - filled.min(10)))
    };
    let t = t2(
        l,
        &format!(
            "📣 <b>Pengumuman #{}</b>: {}\n{bar} {done}/{}\nTerkirim: {} · Memblokir bot: {} · Gagal: {} · Tidak pasti: {}\n\n<i>{}</i>",
            p.id,
            state_label(l, p.state),
            p.total,
            p.sent,
            p.blocked,
            p.failed,
            p.unknown,
            esc(&snippet(&p.text, 200)),
        ),
        &format!(
            "📣 <b>Announcement #{}</b>: {}\n{bar} {done}/{}\nSent: {} · Blocked the bot: {} · Failed: {} · Unknown: {}\n\n<i>{}</i>",
            p.id,
            state_label(l, p.state),
            p.total,
            p.sent,
            p.blocked,
            p.failed,
            p.unknown,
            esc(&snippet(&p.text, 200)),
        ),
    );
    let id = p.id;
    let cancel = ("✖️ Batalkan", "✖️ Cancel", AdminCb::AnnounceCancel(id));
    let actions: Vec<(&str, &str, AdminCb)> = match p.state {
        JobState::Running => vec![
            ("⏸ Jeda", "⏸ Pause", AdminCb::AnnouncePause(id)),
            cancel,
            ("🔄", "🔄", AdminCb::AnnounceView(id)),
        ],
        JobState::Paused => vec![("▶️ Lanjutkan", "▶️ Resume", AdminCb::AnnounceResume(id)), cancel],
        JobState::Draft => vec![("📣 Kirim", "📣 Send", AdminCb::AnnounceYes(id)), cancel],
        JobState::Cancelled | JobState::Done | JobState::Scheduled => vec![],
    };
    let row: Vec<_> = actions
        .into_iter()
        .map(|(id_label, en_label, cb)| button(app, tid, &t2(l, id_label, en_label), cb))
        .collect();
    let mut rows = vec![row];
    rows.push(vec![button(
        app,
        tid,
        &t2(l, "⬅️ Pengumuman", "⬅️ Announcements"),
        AdminCb::Announcements,
    )]);
    rows.retain(|r| !r.is_empty());
    (t, InlineKeyboardMarkup::new(rows))
}

/// What a failed send means for the recipient (after the shared retry policy gave up).
fn delivery_of(e: &RequestError) -> Delivery {
    match e {
        RequestError::RetryAfter(s) => Delivery::RateLimited(s.duration()),
        RequestError::Api(ApiError::BotBlocked | ApiError::UserDeactivated | ApiError::CantInitiateConversation) => {
            Delivery::Blocked
        }
        e if super::kit::send::ambiguous(e) => Delivery::Unknown(format!(
            "no usable answer (none in time, a reset after the request left, or a garbled one): \
             it may have been delivered; not sent again ({e})"
        )),
        other => Delivery::Failed(other.to_string()),
    }
}

// --- bot17 ---
/// The header every received announcement opens with, in the reader's language.
fn header(l: Lang) -> String {
    t2(l, "📢 Pengumuman dari operator", "📢 Announcement from the operator")
}

/// The draft's text(s) as they will arrive (header included), HTML-escaped: one block per
/// language when an English text follows an `[en]` line.
fn languages_preview(l: Lang, text: &str) -> String {
    let (id_text, en_text) = crate::announcement::split_languages(text);
    let block = |h: Lang, body: &str| format!("<b>{}</b>\n\n{}", header(h), esc(body));
    match (id_text.is_empty(), en_text) {
        (false, Some(en)) if !en.is_empty() => format!(
            "🇮🇩 {}\n{}\n\n🇬🇧 {}\n{}",
            t2(l, "Bahasa Indonesia:", "Indonesian:"),
            block(Lang::Id, id_text),
            t2(l, "Bahasa Inggris:", "English:"),
            block(Lang::En, en)
        ),
        (true, Some(en)) => block(l, en),
        _ => block(l, id_text),
    }
}

/// The Telegram side of the announcement worker.
pub fn outlet<R: Req>(bot: R, app: App) -> Arc<dyn Outlet> {
    Arc::new(TelegramOutlet { bot, app })
}

struct TelegramOutlet<R> {
    bot: R,
    app: App,
}

#[async_trait]
impl<R: Req> Outlet for TelegramOutlet<R> {
    async fn deliver(&self, to: TelegramId, text: &str, en: bool) -> Delivery {
        let chat = ChatId(to.get());
        // --- bot17 --- who speaks: every announcement opens with the operator's header.
        let text = format!("{}\n\n{text}", header(if en { Lang::En } else { Lang::Id }));
        let base = self.app.manager().config().telegram_retry_base;
        // A send whose answer is lost is not repeated (it may have been shown): `Repeat::Unsafe`.
        let res = retrying(base, Repeat::Unsafe, "sendMessage (announcement)", || {
            // A way on from the announcement: the menu (its label is the same in both languages).
            let menu = InlineKeyboardMarkup::new(vec![vec![InlineKeyboardButton::callback(
                "🏠 Menu",
                self.app.codec().encode(to, &Cb::Menu),
            )]]);
            let req = self
                .bot
                .send_message(chat, text.to_string())
                .reply_markup(menu)
                .into_future();
            super::kit::send::paced(self.app.manager(), chat, crate::telegram::limiter::Class::Bulk, req)
        })
        .await;
        match res {
            Ok(_) => Delivery::Sent,
            Err(e) => {
                crate::metrics::telegram_error(&e);
                delivery_of(&e)
            }
        }
    }

    async fn progress(&self, p: &Progress) {
        let m = self.app.manager();
        let Ok(tid) = TelegramId::new(p.created_by) else {
            return;
        };
        let lang = match m.with_master(move |c| account::user(c, tid)).await {
            Ok(Some(u)) => Lang::from_code(&u.language),
            _ => Lang::Id,
        };
        let (t, kb) = progress_view(&self.app, tid, lang, p);
        let mid = p.message_id.and_then(|v| i32::try_from(v).ok()).map(MessageId);
        let shown = edit_or_send(&self.bot, m, ChatId(p.chat_id), mid, &t, Some(kb)).await;
        if let Some(shown) = shown.filter(|s| Some(s.0 as i64) != p.message_id) {
            let _ = self
                .app
                .announcements()
                .set_message(p.id, p.chat_id, shown.0 as i64)
                .await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn telegram_faults_map_to_what_the_worker_does() {
        assert_eq!(delivery_of(&RequestError::Api(ApiError::BotBlocked)), Delivery::Blocked);
        assert_eq!(
            delivery_of(&RequestError::RetryAfter(teloxide::types::Seconds::from_seconds(3))),
            Delivery::RateLimited(std::time::Duration::from_secs(3))
        );
        assert!(matches!(
            delivery_of(&RequestError::Api(ApiError::Unknown("Bad Request: x".into()))),
            Delivery::Failed(_)
        ));
    }
}
