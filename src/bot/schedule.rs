//! Scheduled jobs in Telegram: «⏰ Jadwalkan» on a job's confirmation asks for a time, the
//! «⏰ Terjadwal» screen lists what waits (each can get a new time or be cancelled), and the
//! broadcast's first messages and test send («🧪 Kirim tes») before anything starts.

use teloxide::types::{InlineKeyboardMarkup, MessageId};

use super::jobs::{job_error_text, kind_label, progress_view};
use super::kit::app::{App, Caller, Pending, Req};
use super::kit::buttons::btn;
use super::kit::callback::{Cb, InputKind};
use super::kit::i18n::{esc, t2, tr, Key, Lang};
use super::kit::prompts::{ask_input, reask};
use super::kit::send::{edit_or_send, send_html};
use super::kit::session::session;
use super::kit::text::plain_text;
use crate::account::Account;
use crate::jobs::{JobId, JobKind, JobState};
use crate::schedule::{parse_when, show, WhenError};
use crate::wa::ChatTarget;

/// «⏰ Jadwalkan» / «✏️ Ubah waktu», the «⏰ Terjadwal» list, and «🧪 Kirim tes».
pub(crate) async fn button<R: Req>(
    bot: &R,
    app: &App,
    c: &Caller,
    acc: &Account,
    cb: Cb,
    mid: Option<MessageId>,
) -> anyhow::Result<Option<(String, bool)>> {
    match cb {
        Cb::JobSchedule(_, j) => ask_time(bot, app, c, acc, JobId::new(j)).await,
        Cb::Scheduled(_) => {
            list(bot, app, c, acc, mid).await?;
            Ok(None)
        }
        Cb::JobTest(_, j) => test_send(bot, app, c, acc, JobId::new(j)).await,
        _ => Ok(Some((plain_text(tr(c.lang, Key::StaleButton)), true))),
    }
}

/// Asks when the job starts (a new message, so the confirmation stays).
async fn ask_time<R: Req>(
    bot: &R,
    app: &App,
    c: &Caller,
    acc: &Account,
    job: JobId,
) -> anyhow::Result<Option<(String, bool)>> {
    let p = match app.jobs().progress(c.tid, acc.id, job).await {
        Ok(p) => p,
        Err(e) => return Ok(Some((plain_text(&job_error_text(c.lang, &e)), true))),
    };
    if !matches!(p.state, JobState::Draft | JobState::Scheduled) {
        return Ok(Some((plain_text(tr(c.lang, Key::StaleButton)), true)));
    }
    let mut pending = Pending::new(acc.id, InputKind::ScheduleAt, None, format!("#{}", p.number));
    pending.data = Some(job.get().to_string());
    ask_input(bot, app, c, pending, None).await;
    Ok(None)
}

/// The typed time of a [`InputKind::ScheduleAt`] prompt.
pub(crate) async fn time_input<R: Req>(
    bot: &R,
    app: &App,
    c: &Caller,
    acc: &Account,
    p: Pending,
    text: &str,
) -> anyhow::Result<()> {
    let l = c.lang;
    let m = app.manager();
    let Some(job) = p.job() else {
        send_html(bot, m, c.chat, tr(l, Key::StaleButton), None).await;
        return Ok(());
    };
    let (clock, tz) = (&m.config().clock, m.config().utc_offset);
    let now = clock.now();
    let at = match parse_when(text, now, tz) {
        Ok(at) => at,
        Err(e) => {
            let shown = esc(&text.trim().chars().take(40).collect::<String>());
            let why = match e {
                WhenError::Unrecognised => t2(
                    l,
                    "«{x}» tidak dikenali sebagai waktu.",
                    "«{x}» is not a time this bot understands.",
                ),
                WhenError::Invalid => t2(
                    l,
                    "Tanggal atau jam «{x}» tidak ada.",
                    "There is no such date or time as «{x}».",
                ),
                WhenError::Past => t2(
                    l,
                    "«{x}» sudah lewat (sekarang {now}); pilih waktu yang akan datang.",
                    "«{x}» has already passed (it is {now} now); pick a time ahead.",
                ),
                WhenError::TooFar => t2(
                    l,
                    "«{x}» terlalu jauh; paling lama setahun ke depan.",
                    "«{x}» is too far ahead; at most a year.",
                ),
            }
            .replace("{x}", &shown)
            .replace("{now}", &show(now, tz, l == Lang::En));
            reask(bot, app, c, p, &why).await;
            return Ok(());
        }
    };
    if let Err(e) = app.jobs().schedule(c.tid, acc.id, job, at).await {
        send_html(bot, m, c.chat, &job_error_text(l, &e), Some(back(app, c, acc))).await;
        return Ok(());
    }
    let Ok(progress) = app.jobs().progress(c.tid, acc.id, job).await else {
        return Ok(());
    };
    let (view, kb) = progress_view(app, c.tid, l, acc.id, job, &progress);
    let t = format!(
        "✅ {}\n\n{view}",
        t2(l, "Dijadwalkan: {at}", "Scheduled: {at}").replace("{at}", &show(at, tz, l == Lang::En))
    );
    if let Some(mid) = send_html(bot, m, c.chat, &t, kb).await {
        app.jobs().set_message(c.tid, acc.id, job, mid.0 as i64).await?;
    }
    Ok(())
}

/// The way back from these screens: the messages menu and the main menu.
fn back(app: &App, c: &Caller, acc: &Account) -> InlineKeyboardMarkup {
    InlineKeyboardMarkup::new(vec![vec![
        btn(app, c, &t2(c.lang, "⬅️ Pesan", "⬅️ Messages"), Cb::Messages(acc.id)),
        btn(app, c, tr(c.lang, Key::BtnMenu), Cb::Menu),
    ]])
}

/// The «⏰ Terjadwal» screen: every scheduled job of the account, soonest first, each with
/// «✏️ Ubah waktu» and «✖️ Batalkan».
async fn list<R: Req>(bot: &R, app: &App, c: &Caller, acc: &Account, mid: Option<MessageId>) -> anyhow::Result<()> {
    let l = c.lang;
    let tz = app.manager().config().utc_offset;
    let jobs = app.jobs().list_scheduled(c.tid, acc.id).await?;
    let mut text = t2(l, "⏰ <b>Terjadwal</b> — {phone}", "⏰ <b>Scheduled</b> — {phone}")
        .replace("{phone}", &esc(&acc.phone.to_string()));
    let mut rows = Vec::new();
    if jobs.is_empty() {
        text.push_str(&t2(
            l,
            "\n\nTidak ada pekerjaan terjadwal. Jadwalkan dari konfirmasi sebuah pekerjaan («⏰ Jadwalkan»).",
            "\n\nNo scheduled jobs. Schedule one from a job's confirmation («⏰ Schedule»).",
        ));
    }
    for j in &jobs {
        text.push_str(&format!(
            "\n\n<b>#{}</b> {} · {} {}\n⏰ {}",
            j.number,
            esc(&kind_label(l, &j.kind)),
            j.total,
            t2(l, "item", "items"),
            show(j.run_at, tz, l == Lang::En)
        ));
        if let JobKind::Broadcast { text: body, .. } = &j.kind {
            let snippet: String = body.chars().take(60).collect();
            text.push_str(&format!("\n<i>{}</i>", esc(&snippet)));
        }
        rows.push(vec![
            btn(
                app,
                c,
                &format!("✏️ #{} {}", j.number, t2(l, "Ubah waktu", "Change time")),
                Cb::JobSchedule(acc.id, j.id.get()),
            ),
            btn(
                app,
                c,
                &format!("✖️ #{} {}", j.number, t2(l, "Batalkan", "Cancel")),
                Cb::JobCancel(acc.id, j.id.get()),
            ),
        ]);
    }
    let mut kb = InlineKeyboardMarkup::new(rows);
    for row in back(app, c, acc).inline_keyboard {
        kb = kb.append_row(row);
    }
    edit_or_send(bot, app.manager(), c.chat, mid, &text, Some(kb)).await;
    Ok(())
}

/// «🧪 Kirim tes»: the broadcast's first message, as its first recipient would get it, sent
/// to the account's own number.
async fn test_send<R: Req>(
    bot: &R,
    app: &App,
    c: &Caller,
    acc: &Account,
    job: JobId,
) -> anyhow::Result<Option<(String, bool)>> {
    let l = c.lang;
    let (kind, items) = match app.jobs().first_items(c.tid, acc.id, job, 1).await {
        Ok(x) => x,
        Err(e) => return Ok(Some((plain_text(&job_error_text(l, &e)), true))),
    };
    let (JobKind::Broadcast { text, media }, Some(first)) = (kind, items.first()) else {
        return Ok(Some((plain_text(tr(l, Key::StaleButton)), true)));
    };
    let msg = crate::jobs::render(&text, first, &mut rand::thread_rng());
    let Some(s) = session(bot, app, c, acc).await else {
        return Ok(None);
    };
    let own = ChatTarget::Phone(acc.phone.clone());
    // --- media2 ---: a broadcast with a file is tested with its file, the text its caption.
    let (sent, msg) = match &media {
        Some(m) => {
            let caption = super::media::caption_as_sent(m, &text, Some(first.as_str()));
            let sent = match super::media::send_stored(s.as_ref(), acc, m, &own, &caption).await {
                Ok((id, uploaded)) => {
                    // The job sends what was uploaded for the test: the file goes up once.
                    if let Some(u) = uploaded {
                        if let Err(e) = app.jobs().keep_upload(c.tid, acc.id, job, u).await {
                            tracing::warn!(account_id = %acc.id, error = %e, "could not keep the test's upload");
                        }
                    }
                    Ok(id)
                }
                Err(e) => Err(e),
            };
            let named = super::media::describe(l, m.kind, &m.file_name, m.size);
            let shown = if caption.is_empty() {
                named
            } else {
                format!("{named}\n{}", esc(&caption))
            };
            (sent, shown)
        }
        None => (s.send_text(&own, &msg).await, esc(&msg)),
    };
    let t = match sent {
        Ok(_) => t2(
            l,
            "🧪 Pesan tes terkirim ke nomor akun sendiri ({phone}):\n<blockquote>{msg}</blockquote>",
            "🧪 Test message sent to the account's own number ({phone}):\n<blockquote>{msg}</blockquote>",
        ),
        Err(e) => {
            tracing::warn!(account_id = %acc.id, error = %e, "test send failed");
            t2(
                l,
                "❌ Pesan tes tidak terkirim: {err}",
                "❌ The test message was not sent: {err}",
            )
            .replace("{err}", &esc(&e.to_string()))
        }
    }
    .replace("{phone}", &esc(&acc.phone.to_string()))
    .replace("{msg}", &msg);
    send_html(bot, app.manager(), c.chat, &t, None).await;
    Ok(None)
}
