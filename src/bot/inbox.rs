//! The inbox in Telegram (issue 16): the forwarder that sends each stored incoming message to
//! its owner (or a digest past the rate), the "Pesan masuk" screen with the inbox's switches,
//! and replies: a Telegram reply to a forwarded message goes back to that WhatsApp chat from
//! the same account. Storage and the rules are `crate::inbox`.

use std::future::IntoFuture;
use std::time::{Duration, Instant};

use teloxide::prelude::*;
use teloxide::types::{
    ChatId, InlineKeyboardButton, InlineKeyboardMarkup, InputFile, MessageId, ParseMode, ReactionType,
};
use tokio::sync::watch;
use tracing::{info, warn};

use super::kit::app::{App, Caller, Req};
use super::kit::buttons::btn;
use super::kit::callback::Cb;
use super::kit::i18n::{esc, t2, tr, Key, Lang};
use super::kit::send::{edit_or_send, retrying, send_html, Repeat};
use super::kit::text::plain_text;
use crate::account::{Account, AccountStatus};
use crate::ids::{AccountId, PhoneNumber, TelegramId};
use crate::inbox::{self as store, Pace, Stored};
use crate::wa::{ChatTarget, GroupId, Media, MessageKind};

/// Chats per page of "Pesan masuk".
const PAGE: u32 = 8;
/// Telegram's limit on a caption.
const MAX_CAPTION: usize = 1024;
/// How often stored messages older than the retention are deleted.
const SWEEP_EVERY: Duration = Duration::from_secs(3600);

// ----- the forwarder -----

/// Forwards stored messages until `shutdown`: each account's rows in arrival order, digests
/// when they are due, the retention sweep every hour. A send in flight is finished before it
/// stops, so a clean stop never leaves a message half-forwarded.
pub async fn run<R: Req>(bot: R, app: App, mut shutdown: watch::Receiver<bool>) {
    let inbox = app.inbox().clone();
    let mut pace = Pace::default();
    startup(&app, &mut pace).await;
    let mut last_sweep: Option<Instant> = None;
    loop {
        for id in inbox.take_dirty() {
            if *shutdown.borrow() {
                return;
            }
            if let Err(e) = forward_account(&bot, &app, id, &mut pace, &shutdown).await {
                warn!(account_id = %id, error = %format!("{e:#}"), "inbox: forwarding failed");
            }
        }
        for id in pace.due(Instant::now()) {
            if let Err(e) = digest(&bot, &app, id).await {
                warn!(account_id = %id, error = %format!("{e:#}"), "inbox: digest failed");
            }
        }
        if last_sweep.is_none_or(|t| t.elapsed() >= SWEEP_EVERY) {
            sweep(&app).await;
            last_sweep = Some(Instant::now());
        }
        let next = pace
            .next_due()
            .unwrap_or_else(|| Instant::now() + SWEEP_EVERY)
            .min(Instant::now() + SWEEP_EVERY);
        tokio::select! {
            _ = inbox.woken() => {}
            _ = tokio::time::sleep_until(next.into()) => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// The accounts whose inbox may hold work: not removed, file present.
async fn accounts(app: &App) -> Vec<Account> {
    match app.manager().load_all().await {
        Ok(all) => all
            .into_iter()
            .filter(|a| a.status != AccountStatus::Pairing && a.bot_data_db_path.exists())
            .collect(),
        Err(e) => {
            warn!(error = %e, "inbox: cannot list accounts");
            Vec::new()
        }
    }
}

/// Startup: sends a crash interrupted become `unknown` (never repeated), and every account
/// with rows waiting is looked at or given a digest.
async fn startup(app: &App, pace: &mut Pace) {
    let inbox = app.inbox();
    let every = inbox.options().digest_every;
    for acc in accounts(app).await {
        let res = inbox
            .db(&acc, |c| {
                let interrupted = store::recover(c)?;
                Ok((interrupted, !store::pending(c, 1)?.is_empty(), store::has_held(c)?))
            })
            .await;
        match res {
            Ok(Some((interrupted, pending, held))) => {
                if interrupted > 0 {
                    info!(account_id = %acc.id, interrupted, "inbox: sends interrupted by a stop are counted in the next digest");
                }
                if held {
                    pace.schedule(acc.id, every, Instant::now());
                }
                if pending {
                    inbox.mark_dirty(acc.id);
                }
            }
            Ok(None) => {}
            Err(e) => warn!(account_id = %acc.id, error = %e, "inbox: startup check failed"),
        }
    }
}

/// Deletes messages older than the retention from every account.
async fn sweep(app: &App) {
    let inbox = app.inbox();
    let cutoff = crate::db::now() - inbox.options().retention.as_secs() as i64;
    for acc in accounts(app).await {
        match inbox.db(&acc, move |c| store::sweep(c, cutoff)).await {
            Ok(Some(n)) if n > 0 => info!(account_id = %acc.id, n, "inbox: old messages deleted"),
            Ok(_) => {}
            Err(e) => warn!(account_id = %acc.id, error = %e, "inbox: sweep failed"),
        }
    }
}

/// The owner's language, or `None` when nothing may be sent to them (blocked, suspended).
async fn recipient(app: &App, owner: TelegramId) -> Option<Lang> {
    let user = app
        .manager()
        .with_master(move |c| crate::account::user(c, owner))
        .await
        .ok()
        .flatten();
    match user {
        Some(u) if u.blocked || u.suspended => None,
        Some(u) => Some(Lang::from_code(&u.language)),
        None => Some(Lang::Id),
    }
}

/// Forwards account `id`'s pending rows in arrival order (or holds them past the rate).
async fn forward_account<R: Req>(
    bot: &R,
    app: &App,
    id: AccountId,
    pace: &mut Pace,
    shutdown: &watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let inbox = app.inbox();
    let Some(acc) = app.manager().get(id).await? else {
        return Ok(());
    };
    if acc.status == AccountStatus::Removed {
        pace.forget(id);
        return Ok(());
    }
    let opts = inbox.options();
    let lang = recipient(app, acc.telegram_id).await;
    loop {
        let rows = inbox.db(&acc, |c| store::pending(c, 20)).await?.unwrap_or_default();
        if rows.is_empty() {
            return Ok(());
        }
        for row in rows {
            if *shutdown.borrow() {
                return Ok(());
            }
            let seq = row.seq;
            let to = |state: &'static str, from: &'static str| {
                move |c: &mut rusqlite::Connection| store::transition(c, seq, from, state)
            };
            // Only for the owner and pairing it arrived for.
            if row.owner != acc.telegram_id.get() || row.generation != acc.generation {
                inbox.db(&acc, to("ended", "pending")).await?;
                continue;
            }
            let Some(lang) = lang else {
                inbox.db(&acc, to("failed", "pending")).await?;
                continue;
            };
            let now = Instant::now();
            if pace.holding(acc.id) || !pace.try_forward(acc.telegram_id, opts.rate_per_min, now) {
                inbox.db(&acc, to("held", "pending")).await?;
                pace.hold(acc.id, opts.digest_every, now);
                continue;
            }
            // Written before the call: a crash from here on never sends it again.
            if inbox.db(&acc, to("sending", "pending")).await? != Some(true) {
                continue;
            }
            let chat = ChatId(acc.telegram_id.get());
            match send_row(bot, app, chat, lang, &acc, &row).await {
                Some(mid) => {
                    let m = i64::from(mid.0);
                    inbox.db(&acc, move |c| store::forwarded(c, seq, chat.0, m)).await?;
                }
                None => {
                    inbox.db(&acc, to("failed", "sending")).await?;
                }
            }
        }
    }
}

/// Sends one digest of account `id`: how many messages from how many chats wait, with a
/// button to the list.
async fn digest<R: Req>(bot: &R, app: &App, id: AccountId) -> anyhow::Result<()> {
    let Some(acc) = app.manager().get(id).await? else {
        return Ok(());
    };
    let Some(count) = app.inbox().db(&acc, store::take_held).await? else {
        return Ok(());
    };
    if count.messages == 0 {
        return Ok(());
    }
    let Some(lang) = recipient(app, acc.telegram_id).await else {
        return Ok(());
    };
    let text = t2(
        lang,
        "📬 <b>{n} pesan baru dari {k} chat</b> di {phone}",
        "📬 <b>{n} new messages from {k} chats</b> on {phone}",
    )
    .replace("{n}", &count.messages.to_string())
    .replace("{k}", &count.chats.to_string())
    .replace("{phone}", &super::kit::i18n::account_label(&acc));
    let label = t2(lang, "📥 Lihat pesan masuk", "📥 See incoming messages");
    let kb = InlineKeyboardMarkup::new(vec![vec![InlineKeyboardButton::callback(
        label,
        app.codec().encode(acc.telegram_id, &Cb::Inbox(acc.id, 0)),
    )]]);
    send_html(bot, app.manager(), ChatId(acc.telegram_id.get()), &text, Some(kb)).await;
    Ok(())
}

/// The sender as the owner reads it: push name and number, or push name alone for a sender
/// known only by LID.
fn sender_label(row: &Stored) -> String {
    let number = PhoneNumber::from_digits(&row.sender).ok().map(|p| p.to_string());
    match (row.push_name.trim(), number) {
        ("", Some(n)) => n,
        (name, Some(n)) => format!("{} · {n}", esc(name)),
        ("", None) => "?".into(),
        (name, None) => esc(name),
    }
}

/// The name of a kind that travels as a placeholder.
fn kind_label(lang: Lang, kind: MessageKind) -> String {
    match kind {
        MessageKind::Text => String::new(),
        MessageKind::Image => t2(lang, "📷 Foto", "📷 Photo"),
        MessageKind::Document => t2(lang, "📄 Dokumen", "📄 Document"),
        MessageKind::Voice => t2(lang, "🎤 Pesan suara", "🎤 Voice message"),
        MessageKind::Video => t2(lang, "🎬 Video", "🎬 Video"),
        MessageKind::Sticker => t2(lang, "🏷 Stiker", "🏷 Sticker"),
        MessageKind::Other => t2(lang, "📎 Pesan lain", "📎 Other message"),
    }
}

/// The forwarded message's text: who, where, when (if delayed), and what.
fn render_row(lang: Lang, app: &App, acc: &Account, row: &Stored, with_file: bool) -> String {
    let mut head = format!("📩 <b>{}</b>", sender_label(row));
    if row.chat.ends_with("@g.us") {
        head.push_str(&t2(lang, " · 👥 grup", " · 👥 group"));
    }
    head.push_str(&format!(" → {}", super::kit::i18n::account_label(acc)));
    if row.offline {
        let at = chrono::DateTime::from_timestamp(row.sent_at, 0)
            .map(|t| {
                t.with_timezone(&app.manager().config().utc_offset)
                    .format("%Y-%m-%d %H:%M")
                    .to_string()
            })
            .unwrap_or_default();
        head.push_str(&format!(
            "\n⏱ <i>{}</i>",
            t2(lang, "tertunda, dikirim {at}", "delayed, sent {at}").replace("{at}", &at)
        ));
    }
    let mut body = String::new();
    if row.kind != MessageKind::Text && !with_file {
        body.push_str(&format!("[{}] ", kind_label(lang, row.kind)));
    }
    body.push_str(&esc(&row.text));
    format!("{head}\n{body}")
}

/// Sends one stored message to its owner; the Telegram message it became, or `None`.
async fn send_row<R: Req>(
    bot: &R,
    app: &App,
    chat: ChatId,
    lang: Lang,
    acc: &Account,
    row: &Stored,
) -> Option<MessageId> {
    let file = match (row.kind, &row.media) {
        (MessageKind::Image | MessageKind::Document, Some(m)) if !m.bytes.is_empty() => Some(m),
        _ => None,
    };
    let Some(media) = file else {
        return send_html(bot, app.manager(), chat, &render_row(lang, app, acc, row, false), None).await;
    };
    let caption: String = render_row(lang, app, acc, row, true)
        .chars()
        .take(MAX_CAPTION)
        .collect();
    let base = app.manager().config().telegram_retry_base;
    let input = || InputFile::memory(media.bytes.clone()).file_name(file_name(row.kind, media));
    let res = if row.kind == MessageKind::Image {
        retrying(base, Repeat::Unsafe, "sendPhoto", || {
            bot.send_photo(chat, input())
                .caption(caption.clone())
                .parse_mode(ParseMode::Html)
                .into_future()
        })
        .await
    } else {
        retrying(base, Repeat::Unsafe, "sendDocument", || {
            bot.send_document(chat, input())
                .caption(caption.clone())
                .parse_mode(ParseMode::Html)
                .into_future()
        })
        .await
    };
    match res {
        Ok(m) => Some(m.id),
        Err(e) => {
            crate::metrics::telegram_error(&e);
            warn!(account_id = %acc.id, error = %e, "inbox: sending a file failed");
            None
        }
    }
}

fn file_name(kind: MessageKind, m: &Media) -> String {
    let name = m.file_name.trim();
    if !name.is_empty() {
        return name.chars().filter(|c| !matches!(c, '/' | '\\')).collect();
    }
    match kind {
        MessageKind::Image => "photo.jpg".into(),
        _ => "file".into(),
    }
}

// ----- the screen -----

/// The inbox's buttons (already checked: `acc` is the caller's).
pub(crate) async fn button<R: Req>(
    bot: &R,
    app: &App,
    c: &Caller,
    mid: Option<MessageId>,
    cb: Cb,
    acc: Account,
) -> anyhow::Result<Option<(String, bool)>> {
    let inbox = app.inbox();
    let page = match cb {
        Cb::Inbox(_, page) => page,
        Cb::InboxToggle(_, on) => {
            inbox.set(&acc, Some(on), None).await?;
            m_audit(app, c, &acc, if on { "inbox_on" } else { "inbox_off" }).await;
            0
        }
        Cb::InboxMentions(_, on) => {
            inbox.set(&acc, None, Some(on)).await?;
            0
        }
        _ => return Ok(Some((plain_text(tr(c.lang, Key::StaleButton)), true))),
    };
    let (text, kb) = screen(app, c, &acc, page).await?;
    edit_or_send(bot, app.manager(), c.chat, mid, &text, Some(kb)).await;
    Ok(None)
}

async fn m_audit(app: &App, c: &Caller, acc: &Account, what: &'static str) {
    if let Err(e) = app
        .manager()
        .audit(Some(c.tid), Some(acc.id), what, String::new())
        .await
    {
        warn!(error = %e, "audit failed");
    }
}

/// "Pesan masuk": the switches, totals, and one page of chats, latest first.
async fn screen(app: &App, c: &Caller, acc: &Account, page: u32) -> anyhow::Result<(String, InlineKeyboardMarkup)> {
    let l = c.lang;
    let inbox = app.inbox();
    let s = inbox.settings(acc).await?;
    let (chats, totals) = inbox
        .db(acc, move |c| store::chats(c, page, PAGE))
        .await?
        .unwrap_or_else(|| (Vec::new(), store::DigestCount { messages: 0, chats: 0 }));
    let onoff = |on: bool| {
        if on {
            t2(l, "✅ aktif", "✅ on")
        } else {
            t2(l, "⛔ mati", "⛔ off")
        }
    };
    let mut text = t2(
        l,
        "📥 <b>Pesan masuk</b> · {phone}\nDiteruskan ke sini: {on}\nPesan grup yang menyebut akun ini: {men}\n{n} pesan dari {k} chat (disimpan {days} hari)",
        "📥 <b>Incoming messages</b> · {phone}\nForwarded here: {on}\nGroup messages that mention this account: {men}\n{n} messages from {k} chats (kept {days} days)",
    )
    .replace("{phone}", &super::kit::i18n::account_label(acc))
    .replace("{on}", &onoff(s.enabled))
    .replace("{men}", &onoff(s.mentions))
    .replace("{n}", &totals.messages.to_string())
    .replace("{k}", &totals.chats.to_string())
    .replace("{days}", &(inbox.options().retention.as_secs() / 86_400).to_string());
    if s.enabled {
        text.push_str(&t2(
            l,
            "\n↩️ Balas (reply) pesan yang diteruskan untuk menjawab dari nomor ini.",
            "\n↩️ Reply to a forwarded message to answer from this number.",
        ));
    }
    text.push('\n');
    for (i, ch) in chats.iter().enumerate() {
        text.push_str(&chat_line(app, l, page * PAGE + i as u32 + 1, ch));
    }
    Ok((text, keyboard(app, c, acc, s, page, totals.chats)))
}

fn chat_line(app: &App, l: Lang, n: u32, ch: &store::ChatSummary) -> String {
    let who = if ch.chat.ends_with("@g.us") {
        t2(l, "👥 grup", "👥 group")
    } else {
        PhoneNumber::from_digits(&ch.chat)
            .map(|p| p.to_string())
            .unwrap_or_else(|_| "LID".into())
    };
    let name = if ch.name.trim().is_empty() {
        String::new()
    } else {
        format!("<b>{}</b> · ", esc(ch.name.trim()))
    };
    let at = chrono::DateTime::from_timestamp(ch.last_at, 0)
        .map(|t| {
            t.with_timezone(&app.manager().config().utc_offset)
                .format("%d/%m %H:%M")
                .to_string()
        })
        .unwrap_or_default();
    let mut last = if ch.last_kind == MessageKind::Text {
        String::new()
    } else {
        format!("[{}] ", kind_label(l, ch.last_kind))
    };
    last.push_str(&ch.last_text.chars().take(80).collect::<String>());
    format!(
        "\n{n}. {name}{who} ({})\n   {at} {}",
        ch.count,
        esc(&last.replace('\n', " "))
    )
}

fn keyboard(
    app: &App,
    c: &Caller,
    acc: &Account,
    s: store::InboxSettings,
    page: u32,
    chats: i64,
) -> InlineKeyboardMarkup {
    let l = c.lang;
    let toggle = if s.enabled {
        t2(l, "⛔ Matikan penerusan", "⛔ Stop forwarding")
    } else {
        t2(l, "✅ Teruskan pesan ke sini", "✅ Forward messages here")
    };
    let mentions = if s.mentions {
        t2(l, "⛔ Abaikan sebutan di grup", "⛔ Ignore group mentions")
    } else {
        t2(l, "👥 Teruskan sebutan di grup", "👥 Forward group mentions")
    };
    let mut rows = vec![
        vec![btn(app, c, &toggle, Cb::InboxToggle(acc.id, !s.enabled))],
        vec![btn(app, c, &mentions, Cb::InboxMentions(acc.id, !s.mentions))],
    ];
    let pages = (chats.max(0) as u32).div_ceil(PAGE).max(1);
    if pages > 1 {
        let mut nav = Vec::new();
        if page > 0 {
            nav.push(btn(app, c, "«", Cb::Inbox(acc.id, page - 1)));
        }
        nav.push(btn(app, c, &format!("{}/{pages}", page + 1), Cb::Noop));
        if page + 1 < pages {
            nav.push(btn(app, c, "»", Cb::Inbox(acc.id, page + 1)));
        }
        rows.push(nav);
    }
    rows.push(vec![btn(app, c, tr(l, Key::BtnBack), Cb::Account(acc.id))]);
    InlineKeyboardMarkup::new(rows)
}

// ----- replies -----

/// A reply to one of the bot's messages: when it is a forwarded message of one of the
/// caller's own accounts, sends the reply back to that WhatsApp chat. `false` when the
/// message is not such a reply (the caller handles it as usual).
pub(crate) async fn reply<R: Req>(bot: &R, app: &App, c: &Caller, msg: &Message) -> anyhow::Result<bool> {
    let Some(orig) = msg.reply_to_message() else {
        return Ok(false);
    };
    if !orig.from.as_ref().is_some_and(|u| u.is_bot) {
        return Ok(false);
    }
    let (chat, mid) = (c.chat.0, i64::from(orig.id.0));
    // Only the caller's own accounts are searched: a link lives in its account's bot data,
    // keyed by the chat it was sent to, so another user's reply can never find it.
    for acc in c.ctx.accounts.iter().filter(|a| a.status != AccountStatus::Pairing) {
        let found = app
            .inbox()
            .db(acc, move |conn| store::link(conn, chat, mid))
            .await?
            .flatten();
        if let Some(row) = found {
            send_reply(bot, app, c, msg, acc.id, row).await?;
            return Ok(true);
        }
    }
    Ok(false)
}

/// Sends the caller's reply to `row`'s chat from account `id`, after checking again that
/// the account is theirs and still the pairing the message arrived on.
async fn send_reply<R: Req>(
    bot: &R,
    app: &App,
    c: &Caller,
    msg: &Message,
    id: AccountId,
    row: Stored,
) -> anyhow::Result<()> {
    let l = c.lang;
    let m = app.manager();
    let acc = match m.account_of(c.tid, id).await {
        Ok(a) if a.generation == row.generation && row.owner == c.tid.get() => a,
        _ => {
            m.audit(Some(c.tid), Some(id), "refused_inbox_reply", String::new())
                .await?;
            send_html(bot, m, c.chat, tr(l, Key::StaleButton), None).await;
            return Ok(());
        }
    };
    let target = if row.chat.ends_with("@g.us") {
        GroupId::parse(&row.chat).map(ChatTarget::Group)
    } else {
        PhoneNumber::from_digits(&row.chat).ok().map(ChatTarget::Phone)
    };
    let Some(target) = target else {
        let t = t2(
            l,
            "Pengirim ini hanya dikenal lewat ID tersembunyi (LID); balas dari WhatsApp.",
            "This sender is known only by a hidden ID (LID); reply from WhatsApp.",
        );
        send_html(bot, m, c.chat, &t, None).await;
        return Ok(());
    };
    let content = match reply_content(bot, msg).await {
        Ok(Some(x)) => x,
        Ok(None) => {
            let t = t2(
                l,
                "Balas dengan teks, foto, atau dokumen.",
                "Reply with text, a photo or a document.",
            );
            send_html(bot, m, c.chat, &t, None).await;
            return Ok(());
        }
        Err(why) => {
            send_html(bot, m, c.chat, &t2(l, why.0, why.1), None).await;
            return Ok(());
        }
    };
    let Some(session) = super::kit::session::session(bot, app, c, &acc).await else {
        return Ok(());
    };
    let sent = match &content {
        Content::Text(t) => session.send_text(&target, t).await,
        Content::File(kind, media, caption) => session.send_media(&target, *kind, media, caption).await,
    };
    match sent {
        Ok(_) => {
            info!(account_id = %acc.id, "inbox: reply sent");
            react(bot, c.chat, msg.id).await;
        }
        Err(e) => {
            let t = format!("⚠️ {}", super::kit::text::wa_error_text(l, &e));
            send_html(bot, m, c.chat, &t, None).await;
        }
    }
    Ok(())
}

/// What a reply carries.
enum Content {
    Text(String),
    File(MessageKind, Media, String),
}

/// Why a reply's file could not be used: the Indonesian and English texts.
struct Refusal(&'static str, &'static str);

async fn reply_content<R: Req>(bot: &R, msg: &Message) -> Result<Option<Content>, Refusal> {
    let caption = msg.caption().unwrap_or("").to_string();
    if let Some(sizes) = msg.photo() {
        let Some(p) = sizes.iter().max_by_key(|p| p.width * p.height) else {
            return Ok(None);
        };
        let bytes = download(bot, &p.file.id).await?;
        let media = Media {
            file_name: "photo.jpg".into(),
            mime: "image/jpeg".into(),
            bytes,
        };
        return Ok(Some(Content::File(MessageKind::Image, media, caption)));
    }
    if let Some(d) = msg.document() {
        let bytes = download(bot, &d.file.id).await?;
        let media = Media {
            file_name: d.file_name.clone().unwrap_or_else(|| "file".into()),
            mime: d.mime_type.as_ref().map(|m| m.to_string()).unwrap_or_default(),
            bytes,
        };
        return Ok(Some(Content::File(MessageKind::Document, media, caption)));
    }
    Ok(msg
        .text()
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(|t| Content::Text(t.to_string())))
}

async fn download<R: Req>(bot: &R, id: &teloxide::types::FileId) -> Result<Vec<u8>, Refusal> {
    let failed = Refusal(
        "File tidak bisa diambil dari Telegram; kirim lagi.",
        "The file could not be fetched from Telegram; send it again.",
    );
    let file = bot.get_file(id.clone()).await.map_err(|e| {
        warn!(error = %e, "getFile failed");
        Refusal(failed.0, failed.1)
    })?;
    if file.size as usize > store::MAX_MEDIA_BYTES {
        return Err(Refusal(
            "File terlalu besar (maks 10 MB).",
            "The file is too large (max 10 MB).",
        ));
    }
    let mut buf = Vec::new();
    if let Err(e) = bot.download_file(&file.path, &mut buf).await {
        warn!(error = %e, "file download failed");
        return Err(failed);
    }
    if buf.is_empty() || buf.len() > store::MAX_MEDIA_BYTES {
        return Err(Refusal(
            "File kosong atau terlalu besar.",
            "The file is empty or too large.",
        ));
    }
    Ok(buf)
}

/// Confirms a reply with 👍 on the user's own message (a reaction, not one more message).
async fn react<R: Req>(bot: &R, chat: ChatId, mid: MessageId) {
    let res = bot
        .set_message_reaction(chat, mid)
        .reaction(vec![ReactionType::Emoji { emoji: "👍".into() }])
        .await;
    if let Err(e) = res {
        warn!(error = %e, "setMessageReaction failed");
    }
}
