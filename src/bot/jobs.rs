//! Bulk jobs in Telegram: a preview with a confirmation step, one progress message edited in
//! place (bar, done/failed/total, rate, ETA, Pause/Resume/Cancel for the owner only), and a
//! final report as a document.

use std::sync::Arc;

use async_trait::async_trait;
use teloxide::types::{ChatId, InlineKeyboardMarkup, MessageId};

use super::kit::app::{App, Caller, Req};
use super::kit::buttons::{back_to_menu, btn};
use super::kit::callback::Cb;
use super::kit::i18n::{esc, t2, tr, tr_with, Key, Lang};
use super::kit::send::{edit_or_send, send_document_with, send_html};
use super::kit::text::plain_text;
use crate::account::Account;
use crate::ids::{AccountId, TelegramId};
use crate::jobs::{JobError, JobId, JobKind, JobObserver, JobProgress, JobState};

pub(crate) fn kind_label(lang: Lang, kind: &JobKind) -> String {
    match kind {
        JobKind::CreateGroups { .. } => t2(lang, "Buat grup", "Create groups"),
        JobKind::JoinGroups => t2(lang, "Gabung grup", "Join groups"),
        JobKind::LeaveGroups => t2(lang, "Keluar dari grup", "Leave groups"),
        JobKind::Members { action, .. } => match action {
            crate::wa::MemberAction::Add => t2(lang, "Tambah anggota", "Add members"),
            crate::wa::MemberAction::Remove => t2(lang, "Keluarkan anggota", "Remove members"),
            crate::wa::MemberAction::Promote => t2(lang, "Jadikan admin", "Promote members"),
            crate::wa::MemberAction::Demote => t2(lang, "Cabut admin", "Demote members"),
        },
        JobKind::Broadcast { .. } => t2(lang, "Siaran pesan", "Broadcast"),
        JobKind::CheckNumbers => t2(lang, "Cek nomor", "Check numbers"),
    }
}

pub(crate) fn job_error_text(lang: Lang, e: &JobError) -> String {
    match e {
        JobError::Empty => t2(
            lang,
            "❌ Tidak ada item yang valid; tidak ada pekerjaan yang dibuat.",
            "❌ No valid items; no job was created.",
        ),
        JobError::TooMany { max, .. } => t2(
            lang,
            "❌ Terlalu banyak item (maksimal {max}); tidak ada pekerjaan yang dibuat.",
            "❌ Too many items (at most {max}); no job was created.",
        )
        .replace("{max}", &max.to_string()),
        other => format!("❌ {}", esc(&other.to_string())),
    }
}

/// The broadcast text's variations (`{Halo|Hai}`), shown before Start: each recipient gets
/// one choice of every group, at random.
fn variations_note(l: Lang, kind: &JobKind) -> String {
    let JobKind::Broadcast { text, media } = kind else {
        return String::new();
    };
    let mut out = String::new();
    // What every recipient gets: the file, and the text as its caption.
    if let Some(m) = media {
        out.push('\n');
        out.push_str(&super::media::describe(l, m.kind, &m.file_name, m.size));
        if !text.trim().is_empty() {
            out.push_str(&format!("\n💬 {}", esc(&text.chars().take(200).collect::<String>())));
        }
    }
    let groups = crate::jobs::variations(text);
    if groups.is_empty() {
        return out;
    }
    out.push_str(&t2(
        l,
        "\n🔀 Variasi teks (tiap penerima mendapat satu pilihan acak):",
        "\n🔀 Text variations (each recipient gets one at random):",
    ));
    for g in groups.iter().take(10) {
        let choices: Vec<String> = g.iter().map(|c| format!("<code>{}</code>", esc(c))).collect();
        out.push_str(&format!("\n• {}", choices.join(" / ")));
    }
    out
}

/// Shows a job's preview with Start / Cancel; nothing is sent to WhatsApp before Start.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn propose<R: Req>(
    bot: &R,
    app: &App,
    c: &Caller,
    acc: &Account,
    kind: JobKind,
    items: Vec<String>,
    bad: Vec<String>,
    edit: Option<MessageId>,
) -> anyhow::Result<()> {
    let l = c.lang;
    let m = app.manager();
    let mut notes = String::new();
    if !bad.is_empty() {
        notes.push_str(
            &t2(
                l,
                "\n\n⚠️ {n} baris tidak valid dilewati:",
                "\n\n⚠️ {n} invalid lines skipped:",
            )
            .replace("{n}", &bad.len().to_string()),
        );
        for b in bad.iter().take(10) {
            notes.push_str(&format!("\n• <code>{}</code>", esc(b)));
        }
        if bad.len() > 10 {
            notes.push_str("\n…");
        }
    }
    let label = kind_label(l, &kind);
    let spins = variations_note(l, &kind);
    // --- sched ---
    let broadcast = matches!(kind, JobKind::Broadcast { .. });
    let first_messages = first_messages_note(l, &kind, &items);
    let count_word = match &kind {
        JobKind::Broadcast { .. } => t2(l, "penerima", "recipients"),
        _ => t2(l, "item", "items"),
    };
    let message = match &kind {
        JobKind::Broadcast { text, .. } => format!(
            "💬 {}:\n<blockquote>{}</blockquote>\n",
            t2(l, "Teks", "Text"),
            esc(&text.chars().take(500).collect::<String>())
        ),
        _ => String::new(),
    };
    let names = if items.iter().any(|i| i.ends_with("@g.us")) {
        super::group_list::cached_group_names(app, acc).await
    } else {
        Default::default()
    };
    let jobs = app.jobs();
    let kind_for_note = kind.clone();
    // --- media2 ---
    let shown = kind.clone();
    let id = match jobs.create(c.tid, acc.id, c.chat.0, kind, items.clone()).await {
        Ok(id) => id,
        Err(e) => {
            let t = format!("{}{notes}", job_error_text(l, &e));
            edit_or_send(bot, m, c.chat, edit, &t, Some(back_to_menu(app, c))).await;
            return Ok(());
        }
    };
    // --- media2 ---: the file itself, then the confirmation as a new message right under it
    // (the prompt it would have replaced loses its buttons instead).
    let edit = if super::media::preview(bot, app, c, &shown, &items).await {
        if let Some(old) = edit {
            super::kit::send::clear_buttons(bot, m, c.chat, old).await;
        }
        None
    } else {
        edit
    };
    let mut text = format!("📋 <b>{}</b> — {}: {}\n{message}", esc(&label), count_word, items.len());
    for it in items.iter().take(10) {
        // A broadcast item may carry the recipient's name after its number (sched); a group
        // shows by its name, never by its `…@g.us` ID.
        let (target, name) = crate::jobs::item_parts(it);
        let name = name.map(|n| format!(" — {}", esc(n))).unwrap_or_default();
        let shown = match names.get(target) {
            Some(group) => format!("👥 {}", esc(group)),
            None => format!("<code>{}</code>", esc(&target.chars().take(80).collect::<String>())),
        };
        text.push_str(&format!("• {shown}{name}\n"));
    }
    if items.len() > 10 {
        text.push_str("…\n");
    }
    text.push_str(&spins);
    text.push_str(&first_messages);
    text.push_str(&notes);
    // --- bot17 ---
    text.push_str(&preview_note(app, c, acc, &kind_for_note, &items).await);
    text.push_str(&t2(l, "\n\nMulai pekerjaan ini?", "\n\nStart this job?"));
    let mut rows = vec![vec![
        btn(app, c, &t2(l, "▶️ Mulai", "▶️ Start"), Cb::JobStart(acc.id, id.get())),
        // --- sched ---
        btn(
            app,
            c,
            &t2(l, "⏰ Jadwalkan", "⏰ Schedule"),
            Cb::JobSchedule(acc.id, id.get()),
        ),
    ]];
    if broadcast {
        rows.push(vec![
            btn(
                app,
                c,
                &t2(l, "🧪 Kirim tes", "🧪 Send a test"),
                Cb::JobTest(acc.id, id.get()),
            ),
            btn(
                app,
                c,
                &t2(l, "💾 Simpan template", "💾 Save as template"),
                Cb::TemplateSave(acc.id, id.get()),
            ),
        ]);
    }
    rows.push(vec![btn(
        app,
        c,
        tr(l, Key::BtnCancel),
        Cb::JobCancel(acc.id, id.get()),
    )]);
    let kb = InlineKeyboardMarkup::new(rows);
    edit_or_send(bot, m, c.chat, edit, &text, Some(kb)).await;
    Ok(())
}

/// Start / Pause / Resume / Cancel, for the job's owner (the account check ran already and
/// the job engine checks again that the job belongs to this account and owner).
pub(crate) async fn job_button<R: Req>(
    bot: &R,
    app: &App,
    c: &Caller,
    acc: &Account,
    cb: Cb,
    mid: Option<MessageId>,
) -> anyhow::Result<Option<(String, bool)>> {
    let l = c.lang;
    let jobs = app.jobs();
    match cb {
        Cb::Jobs(_, page) => {
            jobs_screen(bot, app, c, acc, page, mid).await?;
            return Ok(None);
        }
        Cb::JobView(_, j) => return job_view(bot, app, c, acc, JobId::new(j), mid).await,
        Cb::JobRerun(_, j) => return rerun(bot, app, c, acc, JobId::new(j)).await,
        // Resuming a job the daily cap paused would only pause it again: say when it can go.
        Cb::JobResume(_, j) => {
            let capped = jobs
                .progress(c.tid, acc.id, JobId::new(j))
                .await
                .ok()
                .and_then(|p| p.pause_reason)
                .map(|r| (r == "daily_cap" || r == "warmup_cap", r == "check_cap"));
            // --- bot17 --- a number check waits for the checks' own quota.
            let quota = match capped {
                Some((_, true)) => Some(jobs.check_quota_today(c.tid, acc.id).await),
                Some((true, _)) => Some(jobs.quota_today(c.tid, acc.id).await),
                _ => None,
            };
            if let Some(Ok((used, cap, day_end))) = quota {
                if used >= cap as i64 {
                    let t = t2(
                        l,
                        "⏳ Kuota harian habis ({used}/{cap}). Pekerjaan ini bisa dilanjutkan mulai {at}.",
                        "⏳ The daily quota is used up ({used}/{cap}). This job can continue from {at}.",
                    )
                    .replace("{used}", &used.to_string())
                    .replace("{cap}", &cap.to_string())
                    .replace("{at}", &super::kit::text::local_time(app.manager().config(), day_end));
                    return Ok(Some((t, true)));
                }
            }
        }
        Cb::JobReport(_, j) => {
            let job = JobId::new(j);
            return match jobs.progress(c.tid, acc.id, job).await {
                Ok(p) => {
                    send_report(bot, app, c.tid, l, acc.id, job, &p).await;
                    Ok(None)
                }
                Err(e) => Ok(Some((plain_text(&job_error_text(l, &e)), true))),
            };
        }
        // A job that already runs is cancelled only once the owner confirms: its unsent
        // items would never go out.
        Cb::JobCancel(_, j) => {
            if let Ok(p) = jobs.progress(c.tid, acc.id, JobId::new(j)).await {
                if matches!(p.state, JobState::Running | JobState::Paused) {
                    let left = p.total.saturating_sub(p.done + p.failed + p.unknown);
                    let t = t2(
                        l,
                        "⚠️ Batalkan pekerjaan #{n}? {left} item yang belum jalan tidak akan dikirim. Laporannya tetap dikirim.",
                        "⚠️ Cancel job #{n}? {left} items not yet run will not be sent. Its report is still sent.",
                    )
                    .replace("{n}", &p.number.to_string())
                    .replace("{left}", &left.to_string());
                    let kb = InlineKeyboardMarkup::new(vec![vec![
                        btn(app, c, tr(l, Key::BtnYes), Cb::JobCancelYes(acc.id, j)),
                        btn(app, c, tr(l, Key::BtnNo), Cb::JobView(acc.id, j)),
                    ]]);
                    // A new message: the progress message keeps being edited while it runs.
                    send_html(bot, app.manager(), c.chat, &t, Some(kb)).await;
                    return Ok(None);
                }
            }
        }
        _ => {}
    }
    let res = match cb {
        Cb::JobStart(_, j) => {
            let id = JobId::new(j);
            let r = jobs.start(c.tid, acc.id, id).await;
            if r.is_ok() {
                if let Some(mid) = mid {
                    jobs.set_message(c.tid, acc.id, id, mid.0 as i64).await?;
                }
            }
            r.map(|_| t2(l, "▶️ Dimulai", "▶️ Started"))
        }
        Cb::JobPause(_, j) => jobs
            .pause(c.tid, acc.id, JobId::new(j))
            .await
            .map(|_| t2(l, "⏸ Dijeda", "⏸ Paused")),
        Cb::JobResume(_, j) => jobs
            .resume(c.tid, acc.id, JobId::new(j))
            .await
            .map(|_| t2(l, "▶️ Dilanjutkan", "▶️ Resumed")),
        Cb::JobCancel(_, j) | Cb::JobCancelYes(_, j) => jobs
            .cancel(c.tid, acc.id, JobId::new(j))
            .await
            .map(|_| t2(l, "✖️ Dibatalkan", "✖️ Cancelled")),
        _ => return Ok(None),
    };
    let job = match cb {
        Cb::JobStart(_, j)
        | Cb::JobPause(_, j)
        | Cb::JobResume(_, j)
        | Cb::JobCancel(_, j)
        | Cb::JobCancelYes(_, j) => JobId::new(j),
        _ => return Ok(None),
    };
    // A started job cancelled by its owner gets its report too: who got it and who did not.
    let was_started = matches!(cb, Cb::JobCancel(..) | Cb::JobCancelYes(..))
        && jobs
            .progress(c.tid, acc.id, job)
            .await
            .is_ok_and(|p| p.state != JobState::Draft);
    let res = match res {
        Ok(ack) if was_started => {
            if let Ok(p) = jobs.progress(c.tid, acc.id, job).await {
                send_report(bot, app, c.tid, l, acc.id, job, &p).await;
            }
            Ok(ack)
        }
        other => other,
    };
    match res {
        Ok(ack) => {
            if let Ok(p) = jobs.progress(c.tid, acc.id, job).await {
                let (t, kb) = progress_view(app, c.tid, l, acc.id, job, &p);
                edit_or_send(bot, app.manager(), c.chat, mid, &t, kb).await;
            }
            Ok(Some((ack, false)))
        }
        // A button from before a change the owner did not make (the operator paused the
        // job, it finished): the message is brought up to date instead of an error.
        Err(JobError::WrongState(_)) => match jobs.progress(c.tid, acc.id, job).await {
            Ok(p) => {
                let (t, kb) = progress_view(app, c.tid, l, acc.id, job, &p);
                edit_or_send(bot, app.manager(), c.chat, mid, &t, kb).await;
                let now = tr_with(l, Key::JobNowState, &[("state", &state_word(l, p.state))]);
                Ok(Some((now, false)))
            }
            Err(e) => Ok(Some((plain_text(&job_error_text(l, &e)), true))),
        },
        Err(e) => Ok(Some((plain_text(&job_error_text(l, &e)), true))),
    }
}

/// Edits the owner's progress message of `job` to its current state (after a change made by
/// someone else: the operator).
pub(crate) async fn show_progress<R: Req>(bot: &R, app: &App, owner: TelegramId, account: AccountId, job: JobId) {
    let Ok(p) = app.jobs().progress(owner, account, job).await else {
        return;
    };
    let Some(mid) = p.message_id else { return };
    let lang = match app.manager().with_master(move |c| crate::account::user(c, owner)).await {
        Ok(Some(u)) => Lang::from_code(&u.language),
        _ => Lang::Id,
    };
    let (t, kb) = progress_view(app, owner, lang, account, job, &p);
    edit_or_send(
        bot,
        app.manager(),
        ChatId(p.chat_id),
        Some(MessageId(mid as i32)),
        &t,
        kb,
    )
    .await;
}

fn state_word(l: Lang, s: JobState) -> String {
    match s {
        JobState::Draft => t2(l, "menunggu konfirmasi", "waiting for confirmation"),
        JobState::Running => t2(l, "berjalan", "running"),
        JobState::Paused => t2(l, "dijeda", "paused"),
        JobState::Cancelled => t2(l, "dibatalkan", "cancelled"),
        JobState::Done => t2(l, "selesai", "finished"),
        // --- sched ---
        JobState::Scheduled => t2(l, "terjadwal", "scheduled"),
    }
}

fn bar(done: usize, total: usize) -> String {
    let width = 20;
    let filled = (done * width).checked_div(total).unwrap_or(width).min(width);
    format!("{}{}", "▓".repeat(filled), "░".repeat(width - filled))
}

/// The progress message and its buttons.
pub(crate) fn progress_view(
    app: &App,
    owner: TelegramId,
    l: Lang,
    account: AccountId,
    job: JobId,
    p: &JobProgress,
) -> (String, Option<InlineKeyboardMarkup>) {
    let finished = p.done + p.failed + p.unknown;
    let state = state_word(l, p.state);
    let mut text = format!(
        "⚙️ <b>{} #{}</b> — {state}\n<code>{}</code> {}/{}\n✅ {}  ❌ {}",
        t2(l, "Pekerjaan", "Job"),
        p.number,
        bar(finished, p.total),
        finished,
        p.total,
        p.done,
        p.failed
    );
    if p.unknown > 0 {
        text.push_str(&format!(
            "\n❔ {} {}",
            p.unknown,
            t2(
                l,
                "terputus saat dikirim: mungkin sudah terkirim, tidak diulang",
                "interrupted while being sent: may have gone out, not repeated"
            )
        ));
    }
    if p.state == JobState::Running {
        text.push_str(&format!("\n⏱ {:.1}/{}", p.rate_per_min, t2(l, "menit", "min")));
        if let Some(eta) = p.eta {
            text.push_str(&format!("  ETA {}", super::kit::i18n::duration_in(l, eta)));
        }
    }
    if let Some(r) = &p.pause_reason {
        text.push_str(&format!("\n⏸ {}", esc(&pause_reason_text(l, r))));
    }
    // --- sched ---
    if let (JobState::Scheduled, Some(at)) = (p.state, p.run_at) {
        let tz = app.manager().config().utc_offset;
        text.push_str(&format!(
            "\n⏰ {}: {}",
            t2(l, "mulai", "starts"),
            crate::schedule::show(at, tz, l == Lang::En)
        ));
    }
    let c =
        |label: String, cb: Cb| teloxide::types::InlineKeyboardButton::callback(label, app.codec().encode(owner, &cb));
    let kb = match p.state {
        JobState::Running => Some(InlineKeyboardMarkup::new(vec![vec![
            c(t2(l, "⏸ Jeda", "⏸ Pause"), Cb::JobPause(account, job.get())),
            c(tr(l, Key::BtnCancel).to_string(), Cb::JobCancel(account, job.get())),
        ]])),
        JobState::Paused => Some(InlineKeyboardMarkup::new(vec![vec![
            c(t2(l, "▶️ Lanjutkan", "▶️ Resume"), Cb::JobResume(account, job.get())),
            c(tr(l, Key::BtnCancel).to_string(), Cb::JobCancel(account, job.get())),
        ]])),
        // --- sched ---
        JobState::Scheduled => Some(InlineKeyboardMarkup::new(vec![
            vec![
                c(
                    t2(l, "✏️ Ubah waktu", "✏️ Change time"),
                    Cb::JobSchedule(account, job.get()),
                ),
                c(
                    t2(l, "▶️ Mulai sekarang", "▶️ Start now"),
                    Cb::JobStart(account, job.get()),
                ),
            ],
            vec![
                c(
                    t2(l, "✖️ Batalkan jadwal", "✖️ Cancel schedule"),
                    Cb::JobCancel(account, job.get()),
                ),
                c(t2(l, "⏰ Terjadwal", "⏰ Scheduled"), Cb::Scheduled(account)),
            ],
        ])),
        // --- sched ---
        // A job that was scheduled also leads back to the list of scheduled jobs.
        _ if p.run_at.is_some() => Some(InlineKeyboardMarkup::new(vec![
            vec![
                c(tr(l, Key::BtnJobs).to_string(), Cb::Jobs(account, 0)),
                c(tr(l, Key::BtnMenu).to_string(), Cb::Menu),
            ],
            vec![c(t2(l, "⏰ Terjadwal", "⏰ Scheduled"), Cb::Scheduled(account))],
        ])),
        // Finished, cancelled or never started: the way on is the jobs screen or the menu.
        _ => Some(InlineKeyboardMarkup::new(vec![vec![
            c(tr(l, Key::BtnJobs).to_string(), Cb::Jobs(account, 0)),
            c(tr(l, Key::BtnMenu).to_string(), Cb::Menu),
        ]])),
    };
    (text, kb)
}

/// «📊 Kuota hari ini: 5/8 item» and, when `wanted` items would pass it, when the rest goes
/// ("5 dari 8 hari ini, sisanya besok 07:00 WIB"); empty when the quota cannot be read.
pub(crate) async fn quota_note(app: &App, c: &Caller, acc: &Account, wanted: Option<usize>) -> String {
    let l = c.lang;
    let Ok((used, cap, day_end)) = app.jobs().quota_today(c.tid, acc.id).await else {
        return String::new();
    };
    let left = (cap as i64 - used).max(0) as usize;
    let at = super::kit::text::local_time(app.manager().config(), day_end);
    let at = at.split_once(' ').map_or(at.as_str(), |(_, time)| time).to_string();
    match wanted {
        None => {
            let mut t = t2(
                l,
                "\n📊 Kuota hari ini: {used}/{cap} item",
                "\n📊 Today's quota: {used}/{cap} items",
            )
            .replace("{used}", &used.to_string())
            .replace("{cap}", &cap.to_string());
            // --- bot17 --- number checks have a quota of their own.
            if let Ok((used, cap, _)) = app.jobs().check_quota_today(c.tid, acc.id).await {
                t.push_str(
                    &t2(
                        l,
                        "\n🔎 Kuota cek nomor hari ini: {used}/{cap} nomor",
                        "\n🔎 Today's number-check quota: {used}/{cap} numbers",
                    )
                    .replace("{used}", &used.to_string())
                    .replace("{cap}", &cap.to_string()),
                );
            }
            t
        }
        Some(n) if n > left => t2(
            l,
            "\n\n⚠️ Kuota harian: {left} dari {n} hari ini, sisanya besok {at}.",
            "\n\n⚠️ Daily quota: {left} of {n} today, the rest tomorrow {at}.",
        )
        .replace("{left}", &left.to_string())
        .replace("{n}", &n.to_string())
        .replace("{at}", &at),
        Some(_) => String::new(),
    }
}

// --- bot17 ---
/// The preview's warnings and estimate for a job of `kind` over `items`: the quota the job
/// counts against (number checks have their own) when the items would pass it today, and
/// about how long today's part takes at the account's pacing.
async fn preview_note(app: &App, c: &Caller, acc: &Account, kind: &JobKind, items: &[String]) -> String {
    let l = c.lang;
    let checks = matches!(kind, JobKind::CheckNumbers);
    let jobs = app.jobs();
    let quota = if checks {
        jobs.check_quota_today(c.tid, acc.id).await
    } else {
        jobs.quota_today(c.tid, acc.id).await
    };
    let Ok((used, cap, day_end)) = quota else {
        return String::new();
    };
    let n = items.len();
    let left = (cap as i64 - used).max(0) as usize;
    let mut out = String::new();
    if n > left {
        let at = super::kit::text::local_time(app.manager().config(), day_end);
        let at = at.split_once(' ').map_or(at.as_str(), |(_, time)| time).to_string();
        let t = if checks {
            t2(
                l,
                "\n\n⚠️ Kuota cek nomor harian: {left} dari {n} hari ini, sisanya besok {at}.",
                "\n\n⚠️ Daily number-check quota: {left} of {n} today, the rest tomorrow {at}.",
            )
        } else {
            t2(
                l,
                "\n\n⚠️ Kuota harian: {left} dari {n} hari ini, sisanya besok {at}.",
                "\n\n⚠️ Daily quota: {left} of {n} today, the rest tomorrow {at}.",
            )
        };
        out.push_str(
            &t.replace("{left}", &left.to_string())
                .replace("{n}", &n.to_string())
                .replace("{at}", &at),
        );
    }
    let today = &items[..n.min(left)];
    if !today.is_empty() {
        let d = estimate(jobs.options(), kind, today);
        let t = if today.len() < n {
            t2(
                l,
                "\n⏱ Perkiraan selesai ± {d} (untuk {k} item hari ini)",
                "\n⏱ About {d} to finish ({k} items today)",
            )
        } else {
            t2(l, "\n⏱ Perkiraan selesai ± {d}", "\n⏱ About {d} to finish")
        };
        out.push_str(&t.replace("{d}", &about(l, d)).replace("{k}", &today.len().to_string()));
    }
    out
}

/// How long `items` take at the account's pacing: the delay between items and half the
/// jitter on average, plus "typing…" before a broadcast message to a person (its mean is
/// the text's length times the per-character time, never above the maximum). WhatsApp's
/// own answer time is not known ahead and not counted.
fn estimate(o: &crate::jobs::JobOptions, kind: &JobKind, items: &[String]) -> std::time::Duration {
    let per_item = o.item_delay + o.jitter / 2;
    let typing = match (kind, o.typing) {
        (JobKind::Broadcast { text, .. }, Some(t)) => {
            let mean = t.per_char.saturating_mul(text.chars().count().min(10_000) as u32);
            mean.min(t.max)
        }
        _ => std::time::Duration::ZERO,
    };
    let people = match kind {
        JobKind::Broadcast { .. } => items
            .iter()
            .filter(|i| !crate::jobs::item_parts(i).0.ends_with("@g.us"))
            .count(),
        _ => 0,
    };
    per_item.saturating_mul(items.len() as u32) + typing.saturating_mul(people as u32)
}

/// A rough duration in the user's words, rounded up to whole minutes: «12 menit»,
/// «1 jam 05 menit»; "12 min", "1 h 05 min".
fn about(l: Lang, d: std::time::Duration) -> String {
    let mins = d.as_secs().div_ceil(60).max(1);
    match (mins >= 60, l) {
        (false, Lang::Id) => format!("{mins} menit"),
        (false, Lang::En) => format!("{mins} min"),
        (true, Lang::Id) => format!("{} jam {:02} menit", mins / 60, mins % 60),
        (true, Lang::En) => format!("{} h {:02} min", mins / 60, mins % 60),
    }
}

/// «🔁 Kirim sisanya»: a new job of what a cancelled job never sent, shown with Start.
async fn rerun<R: Req>(
    bot: &R,
    app: &App,
    c: &Caller,
    acc: &Account,
    from: JobId,
) -> anyhow::Result<Option<(String, bool)>> {
    let l = c.lang;
    let new = match app.jobs().rerun_unsent(c.tid, acc.id, from).await {
        Ok(id) => id,
        Err(JobError::Empty) => {
            let t = t2(
                l,
                "Tidak ada sisa yang belum dikirim (mungkin sudah dikirim ulang).",
                "Nothing is left unsent (it may have been re-run already).",
            );
            return Ok(Some((t, true)));
        }
        Err(e) => return Ok(Some((plain_text(&job_error_text(l, &e)), true))),
    };
    let (n, new_no) = app
        .jobs()
        .progress(c.tid, acc.id, new)
        .await
        .map(|p| (p.total, p.number))
        .unwrap_or((0, new.get()));
    let old_no = app
        .jobs()
        .progress(c.tid, acc.id, from)
        .await
        .map_or(from.get(), |p| p.number);
    let mut text = t2(
        l,
        "🔁 <b>Pekerjaan #{new}</b>: {n} item yang belum terkirim dari pekerjaan #{old}.",
        "🔁 <b>Job #{new}</b>: {n} items job #{old} did not send.",
    )
    .replace("{new}", &new_no.to_string())
    .replace("{old}", &old_no.to_string())
    .replace("{n}", &n.to_string());
    // --- bot17 ---
    if let Ok((kind, items)) = app.jobs().first_items(c.tid, acc.id, new, n).await {
        text.push_str(&preview_note(app, c, acc, &kind, &items).await);
    }
    text.push_str(&t2(l, "\n\nMulai pekerjaan ini?", "\n\nStart this job?"));
    let kb = InlineKeyboardMarkup::new(vec![vec![
        btn(app, c, &t2(l, "▶️ Mulai", "▶️ Start"), Cb::JobStart(acc.id, new.get())),
        btn(app, c, tr(l, Key::BtnCancel), Cb::JobCancel(acc.id, new.get())),
    ]]);
    send_html(bot, app.manager(), c.chat, &text, Some(kb)).await;
    Ok(None)
}

/// Jobs per page of the jobs screen.
const JOBS_PAGE: usize = 6;

/// A stored job kind (`JobKind::name`) in the owner's words; a kind this build does not
/// know is still listed.
fn kind_name_label(l: Lang, kind: &str) -> String {
    match kind {
        "create_groups" => t2(l, "Buat grup", "Create groups"),
        "join_groups" => t2(l, "Gabung grup", "Join groups"),
        "leave_groups" => t2(l, "Keluar dari grup", "Leave groups"),
        "members" => t2(l, "Anggota grup", "Group members"),
        "broadcast" => t2(l, "Siaran pesan", "Broadcast"),
        "check_numbers" => t2(l, "Cek nomor", "Check numbers"),
        _ => t2(l, "Pekerjaan", "Job"),
    }
}

/// «📋 Pekerjaan»: the account's jobs, newest first (running, paused and recent ones), each
/// with its progress; a button opens one.
async fn jobs_screen<R: Req>(
    bot: &R,
    app: &App,
    c: &Caller,
    acc: &Account,
    page: u32,
    mid: Option<MessageId>,
) -> anyhow::Result<()> {
    let l = c.lang;
    let list = app.jobs().list(c.tid, acc.id).await?;
    let pages = list.len().div_ceil(JOBS_PAGE).max(1) as u32;
    let page = page.min(pages - 1);
    let mut text = t2(l, "📋 <b>Pekerjaan</b> {phone}: {n}", "📋 <b>Jobs</b> of {phone}: {n}")
        .replace("{phone}", &acc.phone.to_string())
        .replace("{n}", &list.len().to_string());
    if list.is_empty() {
        text.push_str(&t2(
            l,
            "\n\nBelum ada pekerjaan. Pekerjaan massal dimulai dari menu Grup dan Pesan.",
            "\n\nNo jobs yet. Bulk jobs start from the Groups and Messages menus.",
        ));
    }
    let mut rows = Vec::new();
    for (id, kind, p) in list.iter().skip(page as usize * JOBS_PAGE).take(JOBS_PAGE) {
        let finished = p.done + p.failed + p.unknown;
        let label = format!(
            "#{} {} · {} {}/{}",
            p.number,
            kind_name_label(l, kind),
            state_word(l, p.state),
            finished,
            p.total
        );
        rows.push(vec![btn(app, c, &label, Cb::JobView(acc.id, id.get()))]);
    }
    if pages > 1 {
        let mut nav = Vec::new();
        if page > 0 {
            nav.push(btn(app, c, "◀️", Cb::Jobs(acc.id, page - 1)));
        }
        nav.push(btn(app, c, &format!("{}/{}", page + 1, pages), Cb::Noop));
        if page + 1 < pages {
            nav.push(btn(app, c, "▶️", Cb::Jobs(acc.id, page + 1)));
        }
        rows.push(nav);
    }
    rows.push(vec![
        btn(app, c, tr(l, Key::BtnBack), Cb::Account(acc.id)),
        btn(app, c, tr(l, Key::BtnMenu), Cb::Menu),
    ]);
    edit_or_send(
        bot,
        app.manager(),
        c.chat,
        mid,
        &text,
        Some(InlineKeyboardMarkup::new(rows)),
    )
    .await;
    Ok(())
}

/// One job opened from the jobs screen: its progress and buttons, its report, and Back.
async fn job_view<R: Req>(
    bot: &R,
    app: &App,
    c: &Caller,
    acc: &Account,
    job: JobId,
    mid: Option<MessageId>,
) -> anyhow::Result<Option<(String, bool)>> {
    let l = c.lang;
    let p = match app.jobs().progress(c.tid, acc.id, job).await {
        Ok(p) => p,
        Err(e) => return Ok(Some((plain_text(&job_error_text(l, &e)), true))),
    };
    let (t, kb) = progress_view(app, c.tid, l, acc.id, job, &p);
    let mut rows = match p.state {
        JobState::Running | JobState::Paused => kb.map(|k| k.inline_keyboard).unwrap_or_default(),
        _ => Vec::new(),
    };
    let mut last = Vec::new();
    if p.state != JobState::Draft {
        last.push(btn(app, c, tr(l, Key::BtnReport), Cb::JobReport(acc.id, job.get())));
    }
    last.push(btn(app, c, tr(l, Key::BtnBack), Cb::Jobs(acc.id, 0)));
    rows.push(last);
    edit_or_send(
        bot,
        app.manager(),
        c.chat,
        mid,
        &t,
        Some(InlineKeyboardMarkup::new(rows)),
    )
    .await;
    Ok(None)
}

/// The job's report as a document, in the owner's language, with a way on.
async fn send_report<R: Req>(
    bot: &R,
    app: &App,
    owner: TelegramId,
    l: Lang,
    account: AccountId,
    job: JobId,
    p: &JobProgress,
) {
    let names = match app.manager().get(account).await {
        Ok(Some(acc)) => super::group_list::cached_group_names(app, &acc).await,
        _ => Default::default(),
    };
    let report = match app.jobs().report(owner, account, job).await {
        Ok(r) => localized_report(l, &r, p.state == JobState::Cancelled, &names),
        Err(e) => {
            tracing::warn!(job = job.get(), error = %e, "could not build the job report");
            return;
        }
    };
    let mut caption = format!(
        "📄 {} #{}: ✅ {} ❌ {}",
        t2(l, "Laporan pekerjaan", "Job report"),
        p.number,
        p.done,
        p.failed
    );
    if p.unknown > 0 {
        caption.push_str(&format!(" ❔ {}", p.unknown));
    }
    // --- members ---
    if let Ok(Some(a)) = app.manager().get(account).await {
        caption.push_str(&format!(" · {}", super::kit::i18n::account_label(&a)));
    }
    let result_is = |want: &str| report.lines().filter(|line| line.ends_with(want)).count();
    let (on, off) = (
        result_is(&t2(l, "\tada di WhatsApp", "\ton WhatsApp")),
        result_is(&t2(l, "tidak ada di WhatsApp", "not on WhatsApp")),
    );
    if on + off > 0 {
        caption.push_str(
            &t2(
                l,
                "\n📱 {on} nomor ada di WhatsApp, {off} tidak.",
                "\n📱 {on} numbers are on WhatsApp, {off} are not.",
            )
            .replace("{on}", &on.to_string())
            .replace("{off}", &off.to_string()),
        );
    }
    let unsent = p.total.saturating_sub(p.done + p.failed + p.unknown);
    if p.state == JobState::Cancelled && unsent > 0 {
        caption.push_str(&format!(" ✖️ {unsent} {}", t2(l, "tidak dikirim", "not sent")));
    }
    let b =
        |label: String, cb: Cb| teloxide::types::InlineKeyboardButton::callback(label, app.codec().encode(owner, &cb));
    let mut row = Vec::new();
    if p.state == JobState::Cancelled && unsent > 0 {
        row.push(b(
            t2(l, "🔁 Kirim sisanya", "🔁 Send the rest"),
            Cb::JobRerun(account, job.get()),
        ));
    }
    row.push(b(tr(l, Key::BtnMenu).to_string(), Cb::Menu));
    let menu = InlineKeyboardMarkup::new(vec![row]);
    send_document_with(
        bot,
        app.manager(),
        ChatId(p.chat_id),
        &format!("job-{}-report.txt", p.number),
        report.into_bytes(),
        &caption,
        Some(menu),
    )
    .await;
}

/// A file kind in the owner's words.
fn media_word(l: Lang, k: crate::wa::MediaKind) -> String {
    use crate::wa::MediaKind::*;
    match k {
        Photo => t2(l, "foto", "photo"),
        Document => t2(l, "dokumen", "document"),
        Video => t2(l, "video", "video"),
        Voice => t2(l, "pesan suara", "voice note"),
        Audio => t2(l, "audio", "audio"),
    }
}

/// An item's result line in the owner's words: no WhatsApp message IDs, groups by name, and
/// a new group's invite link kept.
fn localized_result(l: Lang, r: &str, names: &std::collections::HashMap<String, String>) -> String {
    if let Some(rest) = r.strip_prefix("created ") {
        // `created <jid> (<n> members) [<link>]`
        let n = rest
            .split_once(" (")
            .and_then(|(_, t)| t.split_once(' '))
            .map_or("", |(n, _)| n);
        let link = rest
            .rsplit_once(' ')
            .map(|(_, l)| l)
            .filter(|l| l.starts_with("https://"));
        let mut out = t2(l, "dibuat, {n} anggota", "created, {n} members").replace("{n}", n);
        if let Some(link) = link {
            out.push_str(&format!(", {link}"));
        }
        return out;
    }
    if let Some(jid) = r.strip_prefix("joined ") {
        let base = t2(l, "bergabung", "joined");
        return match names.get(jid) {
            Some(name) => format!("{base}: {name}"),
            None => base,
        };
    }
    if let Some(rest) = r.strip_prefix("sent ") {
        // `sent <kind> <id>` for a file (media), `sent <id>` for text: the kind is kept, the
        // WhatsApp message ID is not shown.
        let kind = rest.split(' ').next().and_then(crate::wa::MediaKind::parse);
        return match kind {
            Some(k) => format!("{} ({})", t2(l, "terkirim", "sent"), media_word(l, k)),
            None => t2(l, "terkirim", "sent"),
        };
    }
    match r {
        "ok" => t2(l, "berhasil", "done"),
        "already" => t2(
            l,
            "sudah begitu (sudah anggota atau sudah perannya)",
            "already so (a member, or in that role)",
        ),
        "not a member" => t2(l, "bukan anggota grup", "not a member of the group"),
        "not an admin" => t2(l, "bukan admin", "not an admin"),
        "left" => t2(l, "keluar dari grup", "left the group"),
        "on WhatsApp" => t2(l, "ada di WhatsApp", "on WhatsApp"),
        "not on WhatsApp" => t2(l, "tidak ada di WhatsApp", "not on WhatsApp"),
        "pending approval by the group's admins" => t2(
            l,
            "menunggu persetujuan admin grup",
            "waiting for the group's admins to approve",
        ),
        // --- bot17 --- a failure: WhatsApp's reason in the owner's words.
        other => failure_text(l, other),
    }
}

// --- bot17 ---
/// A failed (or uncertain) item's stored reason in the owner's words. The engine stores
/// [`WaError`]'s `Display` (English, sometimes with WhatsApp's own detail) and a few notes
/// of its own around it; each is read back here into an i18n text, and WhatsApp's
/// technical detail is left out (it is in the log). An empty reason stays empty.
pub(crate) fn failure_text(l: Lang, r: &str) -> String {
    use crate::wa::WaError;
    if r.is_empty() {
        return String::new();
    }
    // The engine's notes after the reason.
    if let Some(core) = r.strip_suffix(": it may have been done; not run again") {
        let note = t2(
            l,
            "; mungkin sudah terjadi, tidak diulang",
            "; it may have been done, not run again",
        );
        return format!("{}{note}", failure_text(l, core));
    }
    if let Some(core) = r.strip_suffix(": stopped before a retry; it may have been done") {
        let note = t2(
            l,
            "; berhenti sebelum dicoba lagi, mungkin sudah terjadi",
            "; stopped before a retry, it may have been done",
        );
        return format!("{}{note}", failure_text(l, core));
    }
    if let Some((core, tries)) = r.rsplit_once(": gave up after ") {
        let n = tries.trim_end_matches(" tries");
        let note = t2(l, "; menyerah setelah {n} kali coba", "; gave up after {n} tries").replace("{n}", n);
        return format!("{}{note}", failure_text(l, core));
    }
    if let Some(core) = r.strip_prefix("the file could not be uploaded: ") {
        let head = t2(l, "file gagal diunggah", "the file could not be uploaded");
        return format!("{head}: {}", failure_text(l, core));
    }
    if r == crate::jobs::REFUSED_REACH_OUT {
        return super::kit::text::wa_error_text(l, &WaError::ReachOutLimited { until: None });
    }
    if r.starts_with("interrupted during its WhatsApp call") {
        return t2(
            l,
            "terputus saat dikirim: mungkin sudah terjadi, tidak diulang",
            "interrupted while being sent: it may have been done, not repeated",
        );
    }
    if r.starts_with("not a group: ") {
        return t2(l, "bukan grup", "not a group");
    }
    if r == "the file was not uploaded" {
        return t2(l, "file belum diunggah", "the file was not uploaded");
    }
    let detail = |p: &str| r.strip_prefix(p).map(str::to_string);
    let e = if r == "not connected to WhatsApp" {
        WaError::NotConnected
    } else if r == "rate limited by WhatsApp" {
        WaError::RateLimited { retry_after: None }
    } else if r == "timed out waiting for WhatsApp" {
        WaError::Timeout
    } else if r == "the device is not paired" {
        WaError::NotPaired
    } else if let Some(d) = detail("logged out: ") {
        WaError::LoggedOut(d)
    } else if let Some(d) = detail("not found: ") {
        // A person not on WhatsApp is not a group one left.
        if d.ends_with("is not on WhatsApp") {
            return t2(l, "nomor tidak terdaftar di WhatsApp", "the number is not on WhatsApp");
        }
        WaError::NotFound(d)
    } else if let Some(d) = detail("not allowed: ") {
        WaError::Forbidden(d)
    } else if let Some(d) = detail("invalid request: ") {
        WaError::Invalid(d)
    } else if let Some(d) = detail("session storage: ") {
        WaError::Storage(d)
    } else if r.starts_with("WhatsApp limits messages from this number to new contacts") {
        WaError::ReachOutLimited { until: None }
    } else if let Some(d) = detail("WhatsApp banned this number") {
        WaError::Banned { reason: d, until: None }
    } else if let Some(t) = phone_error_text(l, r) {
        return t;
    } else {
        // Anything else (WhatsApp's own words, a proxy's): the generic reason.
        WaError::Other(r.to_string())
    };
    super::kit::text::wa_error_text(l, &e)
}

/// A number the engine could not read ([`crate::ids::PhoneError`]'s words), in the owner's.
fn phone_error_text(l: Lang, r: &str) -> Option<String> {
    let known = [
        "empty input",
        "only digits, spaces",
        "too short: a phone number",
        "too long: a phone number",
        "a leading 00",
        "a country code cannot",
        "more than one 0",
    ];
    known
        .iter()
        .any(|k| r.starts_with(k))
        .then(|| t2(l, "nomor telepon tidak valid", "not a valid phone number"))
}

/// The engine's report (`#, item, status, result`, tab-separated) with its header and item
/// states in the owner's words; items a cancelled job never ran are "not sent".
fn localized_report(
    l: Lang,
    report: &str,
    cancelled: bool,
    names: &std::collections::HashMap<String, String>,
) -> String {
    let mut out = String::with_capacity(report.len());
    for (i, line) in report.lines().enumerate() {
        if i == 0 {
            out.push_str(&t2(l, "#\titem\tstatus\thasil\n", "#\titem\tstatus\tresult\n"));
            continue;
        }
        let mut cols: Vec<&str> = line.splitn(4, '\t').collect();
        let state = cols.get(2).copied().unwrap_or("");
        let word = match state {
            "ok" => t2(l, "berhasil", "done"),
            "failed" => t2(l, "gagal", "failed"),
            "unknown" => t2(l, "tidak pasti", "uncertain"),
            "pending" | "running" if cancelled => t2(l, "tidak dikirim", "not sent"),
            "rerun" => t2(l, "dikirim ulang lewat pekerjaan baru", "re-run in a new job"),
            "pending" | "running" => t2(l, "menunggu", "waiting"),
            other => other.to_string(),
        };
        if cols.len() > 2 {
            cols[2] = &word;
        }
        // A group by its name, never by its `…@g.us` ID.
        if let Some(name) = cols.get(1).and_then(|jid| names.get(*jid)) {
            cols[1] = name;
        }
        let result;
        if let Some(r) = cols.get(3) {
            result = localized_result(l, r, names);
            cols[3] = &result;
        }
        out.push_str(&cols.join("\t"));
        out.push('\n');
    }
    out
}

fn pause_reason_text(l: Lang, r: &str) -> String {
    match r {
        "daily_cap" => t2(
            l,
            "batas harian tercapai; lanjutkan besok",
            "daily cap reached; resume tomorrow",
        ),
        // --- bot17 ---
        "check_cap" => t2(
            l,
            "batas harian cek nomor tercapai; lanjutkan besok",
            "the daily cap of number checks reached; resume tomorrow",
        ),
        "warmup_cap" => t2(
            l,
            "batas pemanasan nomor baru tercapai (naik tiap hari); lanjutkan besok",
            "a new number's warm-up cap reached (it grows each day); resume tomorrow",
        ),
        "account banned by WhatsApp" => t2(l, "nomor diblokir WhatsApp", "WhatsApp banned the number"),
        "account_offline" => t2(
            l,
            "akun logout atau diblokir; hubungkan lagi lalu lanjutkan",
            "the account is logged out or banned; link it again, then resume",
        ),
        "paused by owner" | "owner" => t2(l, "dijeda oleh pemilik", "paused by the owner"),
        "operator" => t2(
            l,
            "dijeda oleh operator bot; lanjutkan bila perlu",
            "paused by the bot's operator; resume it if you need to",
        ),
        "account removed" => t2(l, "akun dihapus", "the account was removed"),
        "account logged out" => t2(l, "akun logout", "the account was logged out"),
        "account paired again" => t2(l, "akun dipasangkan ulang", "the account was paired again"),
        "account changed" => t2(
            l,
            "akun berganti pemilik atau dipasangkan ulang",
            "the account changed owner or was paired again",
        ),
        other => other.to_string(),
    }
}

/// Edits the progress message as the engine reports, and sends the final report.
pub struct TelegramObserver<R> {
    bot: R,
    app: App,
}

impl<R> TelegramObserver<R> {
    /// An observer sending through `bot`.
    pub fn new(bot: R, app: App) -> Self {
        Self { bot, app }
    }
}

impl<R: Req> TelegramObserver<R> {
    async fn lang(&self, owner: TelegramId) -> Lang {
        let user = self
            .app
            .manager()
            .with_master(move |c| crate::account::user(c, owner))
            .await
            .ok()
            .flatten();
        user.map(|u| Lang::from_code(&u.language)).unwrap_or(Lang::Id)
    }

    async fn refresh(&self, owner: TelegramId, account: AccountId, job: JobId, p: &JobProgress) {
        let Some(mid) = p.message_id else { return };
        let l = self.lang(owner).await;
        let (t, kb) = progress_view(&self.app, owner, l, account, job, p);
        super::kit::send::edit_progress(
            &self.bot,
            self.app.manager(),
            ChatId(p.chat_id),
            MessageId(mid as i32),
            &t,
            kb,
        )
        .await;
    }
}

#[async_trait]
impl<R: Req> JobObserver for TelegramObserver<R> {
    async fn progress(&self, owner: TelegramId, account: AccountId, job: JobId, p: &JobProgress) {
        self.refresh(owner, account, job, p).await;
    }

    async fn paused(&self, owner: TelegramId, account: AccountId, job: JobId, p: &JobProgress, reason: &str) {
        self.refresh(owner, account, job, p).await;
        let l = self.lang(owner).await;
        let t = format!(
            "⏸ {} #{}: {}",
            t2(l, "Pekerjaan", "Job"),
            p.number,
            esc(&pause_reason_text(l, reason))
        );
        let (_, kb) = progress_view(&self.app, owner, l, account, job, p);
        send_html(&self.bot, self.app.manager(), ChatId(p.chat_id), &t, kb).await;
    }

    async fn finished(&self, owner: TelegramId, account: AccountId, job: JobId, p: &JobProgress) {
        self.refresh(owner, account, job, p).await;
        let l = self.lang(owner).await;
        send_report(&self.bot, &self.app, owner, l, account, job, p).await;
    }

    async fn reach_out_limited(&self, owner: TelegramId, account: AccountId, job: JobId, until: Option<i64>) {
        let l = self.lang(owner).await;
        let phone = match self.app.manager().get(account).await {
            Ok(Some(a)) => super::kit::i18n::account_label(&a),
            _ => String::new(),
        };
        let job_no = match self.app.jobs().progress(owner, account, job).await {
            Ok(p) => p.number,
            Err(_) => job.get(),
        }
        .to_string();
        let until = until.and_then(|u| chrono::DateTime::from_timestamp(u, 0)).map(|t| {
            t.with_timezone(&self.app.manager().config().utc_offset)
                .format("%Y-%m-%d %H:%M")
                .to_string()
        });
        let t = match &until {
            Some(u) => tr_with(
                l,
                Key::NoticeReachOutLimitedUntil,
                &[("phone", &phone), ("job", &job_no), ("until", u)],
            ),
            None => tr_with(l, Key::NoticeReachOutLimited, &[("phone", &phone), ("job", &job_no)]),
        };
        let menu = InlineKeyboardMarkup::new(vec![vec![teloxide::types::InlineKeyboardButton::callback(
            tr(l, Key::BtnMenu).to_string(),
            self.app.codec().encode(owner, &Cb::Menu),
        )]]);
        send_html(&self.bot, self.app.manager(), ChatId(owner.get()), &t, Some(menu)).await;
    }

    // --- sched ---
    async fn started_on_schedule(
        &self,
        owner: TelegramId,
        account: AccountId,
        job: JobId,
        p: &JobProgress,
        run_at: i64,
        late: bool,
    ) {
        let l = self.lang(owner).await;
        let m = self.app.manager();
        let at = crate::schedule::show(run_at, m.config().utc_offset, l == Lang::En);
        let notice = if late {
            t2(
                l,
                "⏰ Pekerjaan #{job} dijadwalkan {at}, saat bot sedang tidak berjalan. Pekerjaan ini terlewat dan dimulai sekarang.",
                "⏰ Job #{job} was scheduled for {at}, while the bot was not running. It was missed and starts now.",
            )
        } else {
            t2(
                l,
                "⏰ Pekerjaan terjadwal #{job} dimulai ({at}).",
                "⏰ Scheduled job #{job} has started ({at}).",
            )
        }
        .replace("{job}", &p.number.to_string())
        .replace("{at}", &at);
        send_html(&self.bot, m, ChatId(p.chat_id), &notice, None).await;
        let (t, kb) = progress_view(&self.app, owner, l, account, job, p);
        if let Some(mid) = send_html(&self.bot, m, ChatId(p.chat_id), &t, kb).await {
            if let Err(e) = self.app.jobs().set_message(owner, account, job, mid.0 as i64).await {
                tracing::warn!(job = job.get(), error = %e, "could not remember the progress message");
            }
        }
    }
}

/// Builds the observer as a trait object for the engine.
pub fn observer<R: Req>(bot: R, app: App) -> Arc<dyn JobObserver> {
    Arc::new(TelegramObserver::new(bot, app))
}

/// The first two messages of a broadcast as they will arrive (names put in, one choice of
/// every variation), for the confirmation.
pub(crate) fn first_messages_note(l: Lang, kind: &JobKind, items: &[String]) -> String {
    let JobKind::Broadcast { text, .. } = kind else {
        return String::new();
    };
    let mut rng = rand::thread_rng();
    let mut out = t2(
        l,
        "\n\n👀 Dua pesan pertama seperti yang akan diterima:",
        "\n\n👀 The first two messages as they will arrive:",
    );
    for it in items.iter().take(2) {
        let msg = crate::jobs::render(text, it, &mut rng);
        let shown: String = msg.chars().take(300).collect();
        out.push_str(&format!("\n<blockquote>{}</blockquote>", esc(&shown)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sent_result_names_the_file_kind_and_hides_the_message_id() {
        let none = std::collections::HashMap::new();
        assert_eq!(
            localized_result(Lang::Id, "sent photo 3EB0AB", &none),
            "terkirim (foto)"
        );
        assert_eq!(
            localized_result(Lang::En, "sent voice 3EB0AB", &none),
            "sent (voice note)"
        );
        assert_eq!(localized_result(Lang::Id, "sent 3EB0AB", &none), "terkirim");
    }

    // --- bot17 ---
    #[test]
    fn whatsapps_reasons_read_in_the_owners_words() {
        let none = std::collections::HashMap::new();
        let cases = [
            "not found: +62 857-0000-0100 is not on WhatsApp",
            "not found: no group 123@g.us",
            "not allowed: 403 not-authorized",
            "rate limited by WhatsApp: gave up after 5 tries",
            "timed out waiting for WhatsApp: it may have been done; not run again",
            "invalid request: bad-request",
            "the file could not be uploaded: session storage: disk full",
            "some words WhatsApp said",
            crate::jobs::REFUSED_REACH_OUT,
            "too short: a phone number has at least 8 digits",
        ];
        for r in cases {
            let id = localized_result(Lang::Id, r, &none);
            let en = localized_result(Lang::En, r, &none);
            for w in ["the", "not", "found", "failed", "error", "tries", "after"] {
                let words: Vec<String> = id
                    .split(|c: char| !c.is_alphanumeric())
                    .map(str::to_lowercase)
                    .collect();
                assert!(!words.iter().any(|x| x == w), "English {w:?} in {id:?} (from {r:?})");
            }
            assert_ne!(id, en, "{r}");
        }
        assert_eq!(
            localized_result(Lang::Id, "not found: +62 857 is not on WhatsApp", &none),
            "nomor tidak terdaftar di WhatsApp"
        );
        assert_eq!(
            localized_result(Lang::En, "rate limited by WhatsApp: gave up after 5 tries", &none),
            "WhatsApp is rate-limiting, try later; gave up after 5 tries"
        );
    }

    #[test]
    fn estimates_round_up_to_minutes_in_the_users_words() {
        use std::time::Duration;
        assert_eq!(about(Lang::Id, Duration::from_secs(720)), "12 menit");
        assert_eq!(about(Lang::En, Duration::from_secs(700)), "12 min");
        assert_eq!(about(Lang::Id, Duration::from_secs(5)), "1 menit");
        assert_eq!(about(Lang::En, Duration::from_secs(3900)), "1 h 05 min");
    }
}
