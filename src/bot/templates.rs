//! Broadcast templates in Telegram: «💾 Simpan template» on a broadcast's confirmation asks
//! for a name; the «📄 Template» screen (from the messages menu, and «📄 Pakai template» where a
//! broadcast asks for its text) lists them to use or delete.

use teloxide::types::{InlineKeyboardMarkup, MessageId};

use super::jobs::job_error_text;
use super::kit::app::{App, Caller, Pending, Req};
use super::kit::buttons::{back_to_menu, btn};
use super::kit::callback::{BroadcastTarget, Cb, InputKind};
use super::kit::i18n::{esc, t2, tr, Key};
use super::kit::prompts::{ask_input, broadcast_where, reask};
use super::kit::send::{edit_or_send, send_html};
use super::kit::text::plain_text;
use crate::account::Account;
use crate::db::Schema;
use crate::jobs::{JobId, JobKind};
use crate::templates::{self, Template, TemplateError};

/// The template buttons: save, list, use, delete.
pub(crate) async fn button<R: Req>(
    bot: &R,
    app: &App,
    c: &Caller,
    acc: &Account,
    cb: Cb,
    mid: Option<MessageId>,
) -> anyhow::Result<Option<(String, bool)>> {
    let l = c.lang;
    match cb {
        Cb::TemplateSave(_, j) => {
            // The job as its owner knows it: its number, not its row id in this account.
            let number = app
                .jobs()
                .progress(c.tid, acc.id, JobId::new(j))
                .await
                .map(|p| p.number)
                .unwrap_or(j);
            let mut p = Pending::new(acc.id, InputKind::TemplateName, None, format!("#{number}"));
            p.data = Some(j.to_string());
            ask_input(bot, app, c, p, None).await;
        }
        Cb::Templates(_) => list(bot, app, c, acc, mid, None).await?,
        Cb::TemplateUse(_, id) => {
            let Some(t) = db(app, acc, move |conn| templates::get(conn, id)).await? else {
                return Ok(Some((plain_text(tr(l, Key::StaleButton)), true)));
            };
            use_template(bot, app, c, acc, t, mid).await;
        }
        Cb::TemplateDelete(_, id) => {
            let gone = db(app, acc, move |conn| templates::delete(conn, id)).await?;
            // --- media2 ---: the template's own copy of its file goes with it.
            if let Some(m) = gone.as_ref().and_then(|t| t.media.clone()) {
                crate::jobs::media_files::remove_later(crate::jobs::media_dir(acc), m.file).await;
            }
            let note = gone.map(|_| t2(l, "🗑 Template dihapus.", "🗑 Template deleted."));
            list(bot, app, c, acc, mid, note).await?;
        }
        _ => return Ok(Some((plain_text(tr(l, Key::StaleButton)), true))),
    }
    Ok(None)
}

async fn db<F, T>(app: &App, acc: &Account, f: F) -> anyhow::Result<T>
where
    F: FnOnce(&mut rusqlite::Connection) -> Result<T, crate::db::DbError> + Send + 'static,
    T: Send + 'static,
{
    Ok(app
        .manager()
        .pools()
        .with(acc.bot_data_db_path.clone(), Schema::Account, f)
        .await?)
}

/// The name typed for a [`InputKind::TemplateName`] prompt: saves the job's text under it.
pub(crate) async fn name_input<R: Req>(
    bot: &R,
    app: &App,
    c: &Caller,
    acc: &Account,
    p: Pending,
    name: &str,
) -> anyhow::Result<()> {
    let l = c.lang;
    let m = app.manager();
    let Some(job) = p.job() else {
        send_html(bot, m, c.chat, tr(l, Key::StaleButton), None).await;
        return Ok(());
    };
    let (text, media) = match app.jobs().first_items(c.tid, acc.id, job, 0).await {
        Ok((JobKind::Broadcast { text, media }, _)) => (text, media),
        Ok(_) => {
            send_html(bot, m, c.chat, tr(l, Key::StaleButton), None).await;
            return Ok(());
        }
        Err(e) => {
            send_html(bot, m, c.chat, &job_error_text(l, &e), None).await;
            return Ok(());
        }
    };
    let name = name.trim().to_string();
    // --- media2 ---
    let Some(saved) = save_with_file(app, acc, &name, text, media.map(|m| *m)).await? else {
        send_html(bot, m, c.chat, &file_gone(l), Some(back_to_menu(app, c))).await;
        return Ok(());
    };
    match saved {
        Ok(_) => {
            let t = t2(
                l,
                "💾 Template «{name}» disimpan. Pakai lewat «📄 Pakai template» saat membuat siaran.",
                "💾 Template «{name}» saved. Use it with «📄 Use a template» when you start a broadcast.",
            )
            .replace("{name}", &esc(&name));
            let kb = InlineKeyboardMarkup::new(vec![vec![
                btn(app, c, &t2(l, "📄 Template", "📄 Templates"), Cb::Templates(acc.id)),
                btn(app, c, tr(l, Key::BtnMenu), Cb::Menu),
            ]]);
            send_html(bot, m, c.chat, &t, Some(kb)).await;
        }
        Err(e) => {
            let why = match e {
                TemplateError::EmptyName => t2(l, "Nama kosong.", "The name is empty."),
                TemplateError::NameTooLong => t2(
                    l,
                    "Nama terlalu panjang (maks. 40 karakter).",
                    "The name is too long (at most 40 characters).",
                ),
                TemplateError::Full => t2(
                    l,
                    "Sudah ada 50 template; hapus satu dulu di «📄 Template».",
                    "There are 50 templates already; delete one under «📄 Templates» first.",
                ),
            };
            reask(bot, app, c, p, &why).await;
        }
    }
    Ok(())
}

// --- media2 ---
/// Saves the template with its own copy of the broadcast's file (so it outlives the job's,
/// deleted when the job ends); the copy is deleted again when the template is not saved, and
/// the file of a template it replaces goes. `None` when the broadcast's file is gone.
async fn save_with_file(
    app: &App,
    acc: &Account,
    name: &str,
    text: String,
    media: Option<crate::jobs::JobMedia>,
) -> anyhow::Result<Option<Result<templates::Saved, TemplateError>>> {
    let dir = crate::jobs::media_dir(acc);
    let media = match media {
        Some(job_file) => match own_copy(&dir, job_file).await {
            Some(copy) => Some(copy),
            None => return Ok(None),
        },
        None => None,
    };
    let saved = {
        let (name, media) = (name.to_string(), media.clone());
        db(app, acc, move |conn| {
            templates::save(conn, &name, &text, media.as_ref())
        })
        .await
    };
    match &saved {
        Ok(Ok(s)) => {
            if let Some(old) = s.old_file.clone() {
                crate::jobs::media_files::remove_later(dir, old).await;
            }
        }
        _ => drop_copy(&dir, media.as_ref()).await,
    }
    saved.map(Some)
}

/// A copy of a stored file for a new owner (a template, or a prompt started from one), in
/// the same folder, without an upload; `None` when the file is no longer there.
async fn own_copy(dir: &std::path::Path, m: crate::jobs::JobMedia) -> Option<crate::jobs::JobMedia> {
    let (dir, from) = (dir.to_path_buf(), m.file.clone());
    let copied = crate::db::blocking(move || {
        crate::jobs::media_files::copy(&dir, &from).map_err(|e| crate::db::DbError::Task(e.to_string()))
    })
    .await;
    match copied {
        Ok(file) => Some(crate::jobs::JobMedia {
            file,
            uploaded: None,
            ..m
        }),
        Err(e) => {
            tracing::warn!(error = %e, "could not copy a broadcast file");
            None
        }
    }
}

/// Deletes a copy that ended up unused.
async fn drop_copy(dir: &std::path::Path, m: Option<&crate::jobs::JobMedia>) {
    if let Some(m) = m {
        crate::jobs::media_files::remove_later(dir.to_path_buf(), m.file.clone()).await;
    }
}

/// The file a template or broadcast names is no longer kept.
fn file_gone(l: super::kit::i18n::Lang) -> String {
    t2(
        l,
        "❌ File siaran ini sudah tidak disimpan; kirim file-nya lagi untuk siaran baru.",
        "❌ This broadcast's file is no longer kept; send the file again for a new broadcast.",
    )
}

/// The «📄 Template» screen: each template with «📄 Pakai» and «🗑».
async fn list<R: Req>(
    bot: &R,
    app: &App,
    c: &Caller,
    acc: &Account,
    mid: Option<MessageId>,
    note: Option<String>,
) -> anyhow::Result<()> {
    let l = c.lang;
    let all: Vec<Template> = db(app, acc, |conn| templates::list(conn)).await?;
    let mut text = t2(l, "📄 <b>Template</b> — {phone}", "📄 <b>Templates</b> — {phone}")
        .replace("{phone}", &esc(&acc.phone.to_string()));
    if let Some(n) = note {
        text.push_str(&format!("\n{n}"));
    }
    if all.is_empty() {
        text.push_str(&t2(
            l,
            "\n\nBelum ada template. Simpan teks siaran dengan «💾 Simpan template» di konfirmasinya.",
            "\n\nNo templates yet. Save a broadcast's text with «💾 Save as template» on its confirmation.",
        ));
    }
    let mut rows = Vec::new();
    for t in &all {
        let snippet: String = t.text.chars().take(80).collect();
        text.push_str(&format!("\n\n<b>{}</b>\n<i>{}</i>", esc(&t.name), esc(&snippet)));
        // --- media2 ---
        if let Some(m) = &t.media {
            text.push_str(&format!(
                "\n{}",
                super::media::describe(l, m.kind, &m.file_name, m.size)
            ));
        }
        let name: String = t.name.chars().take(24).collect();
        rows.push(vec![
            btn(app, c, &format!("📄 {name}"), Cb::TemplateUse(acc.id, t.id)),
            btn(app, c, &format!("🗑 {name}"), Cb::TemplateDelete(acc.id, t.id)),
        ]);
    }
    rows.push(vec![
        btn(app, c, &t2(l, "⬅️ Pesan", "⬅️ Messages"), Cb::Messages(acc.id)),
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

/// Starts a broadcast with the template's text: the same second step as a typed text
/// (where it goes).
async fn use_template<R: Req>(bot: &R, app: &App, c: &Caller, acc: &Account, t: Template, mid: Option<MessageId>) {
    let l = c.lang;
    let mut p = Pending::new(acc.id, InputKind::Broadcast, None, acc.phone.to_string());
    p.data = Some(t.text.clone());
    // --- media2 ---: the broadcast gets its own copy of the template's file (the job deletes
    // its copy when it ends; the template keeps its own).
    let mut file_line = String::new();
    if let Some(m) = t.media.clone() {
        let Some(copy) = own_copy(&crate::jobs::media_dir(acc), m).await else {
            send_html(bot, app.manager(), c.chat, &file_gone(l), Some(back_to_menu(app, c))).await;
            return;
        };
        file_line = format!("\n{}", super::media::describe(l, copy.kind, &copy.file_name, copy.size));
        p.media = Some(copy);
    }
    app.set_pending(c.tid, p);
    let kb = InlineKeyboardMarkup::new(vec![
        vec![btn(
            app,
            c,
            &t2(l, "👥 Semua grup saya", "👥 All my groups"),
            Cb::BroadcastTo(acc.id, BroadcastTarget::AllGroups),
        )],
        vec![btn(
            app,
            c,
            &t2(l, "👑 Grup tempat saya admin", "👑 Groups where I am admin"),
            Cb::BroadcastTo(acc.id, BroadcastTarget::AdminGroups),
        )],
        vec![btn(app, c, tr(l, Key::BtnCancel), Cb::InputCancel)],
    ]);
    let snippet: String = t.text.chars().take(300).collect();
    let prompt = format!(
        "📄 {} «{}»{file_line}\n<blockquote>{}</blockquote>\n\n{}\n\n{}",
        t2(l, "Template", "Template"),
        esc(&t.name),
        esc(&snippet),
        broadcast_where(l),
        tr(l, Key::PromptCancelHint)
    );
    edit_or_send(bot, app.manager(), c.chat, mid, &prompt, Some(kb)).await;
}
