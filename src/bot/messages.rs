//! Messages from an account: the messages menu, sending to a number, and broadcasts (text or
//! a file, then where to: numbers, every group, or the groups the account administers).

use teloxide::prelude::*;
use teloxide::types::InlineKeyboardMarkup;

use crate::account::Account;
use crate::ids::PhoneNumber;
use crate::wa::{ChatTarget, WaError};

use super::kit::app::{App, Caller, Pending, Req};
use super::kit::buttons::{back_to_menu, btn};
use super::kit::callback::{Cb, InputKind};
use super::kit::i18n::{esc, t2, tr, tr_with, Key};
use super::kit::prompts::{broadcast_where, input_text, reask};
use super::kit::send::send_html;
use super::kit::session::session;
use super::kit::text::wa_error_text;

/// The broadcast's second step: its buttons (all groups, admin groups) or a list of numbers.
pub(crate) async fn ask_broadcast_where<R: Req>(bot: &R, app: &App, c: &Caller, acc: &Account) {
    let l = c.lang;
    let m = app.manager();
    let kb = InlineKeyboardMarkup::new(vec![
        vec![btn(
            app,
            c,
            &t2(l, "👥 Semua grup saya", "👥 All my groups"),
            Cb::BroadcastTo(acc.id, super::kit::callback::BroadcastTarget::AllGroups),
        )],
        vec![btn(
            app,
            c,
            &t2(l, "👑 Grup tempat saya admin", "👑 Groups where I am admin"),
            Cb::BroadcastTo(acc.id, super::kit::callback::BroadcastTarget::AdminGroups),
        )],
    ]);
    let kb = kb.append_row(vec![btn(app, c, tr(l, Key::BtnCancel), Cb::InputCancel)]);
    let prompt = format!("{}\n\n{}", broadcast_where(l), tr(l, Key::PromptCancelHint));
    if let Some(mid) = send_html(bot, m, c.chat, &prompt, Some(kb)).await {
        app.set_pending_prompt(c.tid, mid);
    }
}

/// A file sent where a message was asked for: checked against Telegram's and WhatsApp's
/// limits before anything is fetched; then sent at once (to a number, to a group), or
/// kept in the account's folder for the broadcast being prepared.
pub(crate) async fn media_input<R: Req>(
    bot: &R,
    app: &App,
    c: &Caller,
    p: Pending,
    acc: &Account,
    file: super::media::TgMedia,
    msg: &Message,
) -> anyhow::Result<()> {
    let l = c.lang;
    let m = app.manager();
    let caption = msg.caption().unwrap_or("").trim().to_string();
    if let Some(why) = super::media::size_refusal(l, &file) {
        reask(bot, app, c, p, &why).await;
        return Ok(());
    }
    // To a number, the caption's first line is the number, as in a text.
    let (target, caption) = match (p.kind, p.group.clone()) {
        (InputKind::SendNumber, _) => {
            let (first, rest) = caption.split_once('\n').unwrap_or((caption.as_str(), ""));
            match PhoneNumber::parse(first.trim(), &m.config().default_country_code) {
                Ok(phone) => (Some(ChatTarget::Phone(phone)), rest.trim().to_string()),
                Err(_) => {
                    let why = t2(
                        l,
                        "Tulis nomor tujuan di baris pertama keterangan (caption) file.",
                        "Put the recipient's number on the first line of the file's caption.",
                    );
                    reask(bot, app, c, p, &why).await;
                    return Ok(());
                }
            }
        }
        (InputKind::SendGroup, Some(g)) => (Some(ChatTarget::Group(g)), caption),
        _ => (None, caption),
    };
    let bytes = match super::media::fetch(bot, l, &file).await {
        Ok(b) => b,
        Err(why) => {
            reask(bot, app, c, p, &why).await;
            return Ok(());
        }
    };
    let Some(target) = target else {
        return keep_broadcast_file(bot, app, c, p, acc, file, bytes, caption).await;
    };
    let Some(s) = session(bot, app, c, acc).await else {
        return Ok(());
    };
    let sent = match s.upload_media(file.kind, &bytes, &file.mime, &file.file_name).await {
        Ok(r) => s.send_uploaded(&target, &r, &caption).await,
        Err(e) => Err(e),
    };
    let to = match &target {
        ChatTarget::Phone(phone) => phone.to_string(),
        ChatTarget::Group(_) => format!("«{}»", esc(&p.target)),
    };
    let t = match sent {
        Ok(_) => t2(l, "✅ {kind} terkirim ke {to}.", "✅ {kind} sent to {to}.")
            .replace(
                "{kind}",
                &super::media::describe(l, file.kind, &file.file_name, bytes.len() as u64),
            )
            .replace("{to}", &to),
        Err(WaError::NotFound(_)) if matches!(target, ChatTarget::Phone(_)) => {
            tr_with(l, Key::NotOnWhatsApp, &[("phone", &to)])
        }
        Err(e) => wa_error_text(l, &e),
    };
    send_html(bot, m, c.chat, &t, Some(back_to_menu(app, c))).await;
    Ok(())
}

/// The broadcast's file is kept in the account's folder (the job reads it from there to
/// upload it once); the prompt moves on to where the broadcast goes.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn keep_broadcast_file<R: Req>(
    bot: &R,
    app: &App,
    c: &Caller,
    p: Pending,
    acc: &Account,
    file: super::media::TgMedia,
    bytes: Vec<u8>,
    caption: String,
) -> anyhow::Result<()> {
    let dir = crate::jobs::media_dir(acc);
    let (size, sha256) = (bytes.len() as u64, crate::wa::sha256_hex(&bytes));
    let stored = crate::db::blocking(move || {
        crate::jobs::store_media_file(&dir, &bytes).map_err(|e| crate::db::DbError::Task(e.to_string()))
    })
    .await;
    let name = match stored {
        Ok(n) => n,
        Err(e) => {
            tracing::warn!(account_id = %acc.id, error = %e, "could not keep a broadcast file");
            send_html(
                bot,
                app.manager(),
                c.chat,
                tr(c.lang, Key::Sorry),
                Some(back_to_menu(app, c)),
            )
            .await;
            return Ok(());
        }
    };
    let media = crate::jobs::JobMedia {
        kind: file.kind,
        mime: file.mime,
        file_name: file.file_name,
        size,
        sha256,
        file: name,
        uploaded: None,
        // --- media2 ---: the preview shows the file again by this ID.
        tg_file_id: Some(file.file_id.0.clone()),
    };
    let note = super::media::describe(c.lang, media.kind, &media.file_name, size);
    send_html(bot, app.manager(), c.chat, &note, None).await;
    app.set_pending(
        c.tid,
        Pending {
            data: Some(caption),
            media: Some(media),
            created_at: std::time::Instant::now(),
            ..p
        },
    );
    ask_broadcast_where(bot, app, c, acc).await;
    Ok(())
}

/// A broadcast text is waiting and the user pasted numbers instead of pressing a button.
pub(crate) async fn broadcast_numbers<R: Req>(
    bot: &R,
    app: &App,
    c: &Caller,
    p: Pending,
    msg: &Message,
) -> anyhow::Result<()> {
    let acc = app.manager().account_of(c.tid, p.account).await?;
    let text = match input_text(bot, app, c, msg).await? {
        Ok(t) => t,
        Err(why) => {
            reask(bot, app, c, p, &why).await;
            return Ok(());
        }
    };
    // Each line may carry the recipient's name for `{nama}` (sched).
    let (nums, bad) = crate::recipients::parse(&text, &app.manager().config().default_country_code);
    if nums.is_empty() {
        let why = t2(c.lang, "Tidak ada nomor yang valid.", "No valid numbers.");
        reask(bot, app, c, p, &why).await;
        return Ok(());
    }
    let items = nums
        .iter()
        .map(|(n, name)| crate::jobs::item_input(n.digits(), name.as_deref()))
        .collect();
    let kind = crate::jobs::JobKind::Broadcast {
        media: p.media.map(Box::new),
        text: p.data.unwrap_or_default(),
    };
    super::jobs::propose(bot, app, c, &acc, kind, items, bad, None).await
}
