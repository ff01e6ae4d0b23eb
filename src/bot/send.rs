//! Sending to Telegram carefully: HTML parse mode, long texts split, 429 honoured, a user who
//! blocked the bot (403) marked so nothing more is sent to them, and every failure logged
//! with its context instead of stopping the handler.

use std::future::IntoFuture;
use std::time::Duration;

use teloxide::prelude::*;
use teloxide::types::{ChatId, InlineKeyboardMarkup, InputFile, MessageId, ParseMode};
use teloxide::{ApiError, RequestError};
use tracing::warn;

use crate::ids::TelegramId;
use crate::manager::AccountManager;

/// Telegram's limit on a message's text.
pub const MAX_TEXT: usize = 4096;

/// Splits `text` into pieces of at most `MAX_TEXT` characters, at line ends where possible.
pub fn split_text(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut cur_len = 0;
    for line in text.split_inclusive('\n') {
        let len = line.chars().count();
        if cur_len + len > MAX_TEXT && !cur.is_empty() {
            out.push(std::mem::take(&mut cur));
            cur_len = 0;
        }
        if len > MAX_TEXT {
            // A single line longer than the limit: cut it by characters.
            let chars: Vec<char> = line.chars().collect();
            for chunk in chars.chunks(MAX_TEXT) {
                out.push(chunk.iter().collect());
            }
            continue;
        }
        cur.push_str(line);
        cur_len += len;
    }
    if !cur.is_empty() || out.is_empty() {
        out.push(cur);
    }
    out
}

/// How many times one send is retried after a 429.
const RETRIES_429: u32 = 2;

/// Runs `op` and retries after Telegram's `retry_after` (bounded).
async fn with_retry<T, F, Fut>(mut op: F) -> Result<T, RequestError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, RequestError>>,
{
    let mut tries = 0;
    loop {
        match op().await {
            Err(RequestError::RetryAfter(secs)) if tries < RETRIES_429 => {
                tries += 1;
                let wait = secs.duration().min(Duration::from_secs(60));
                warn!(?wait, "telegram rate limit; waiting");
                tokio::time::sleep(wait).await;
            }
            other => return other,
        }
    }
}

/// What a send attempt means for the user.
fn note_failure(manager: &AccountManager, chat: ChatId, e: &RequestError, what: &str) {
    crate::metrics::telegram_error(e);
    match e {
        RequestError::Api(ApiError::BotBlocked | ApiError::UserDeactivated | ApiError::CantInitiateConversation) => {
            warn!(chat_id = chat.0, "user blocked the bot; marking inactive");
            if let Ok(tid) = TelegramId::new(chat.0) {
                let m = manager.clone();
                tokio::spawn(async move {
                    let _ = m.set_blocked(tid, true).await;
                });
            }
        }
        _ => warn!(chat_id = chat.0, error = %e, "{what} failed"),
    }
}

/// Sends HTML text (split if long; the keyboard goes on the last piece). Returns the last
/// message's ID, or `None` when sending failed (already logged and handled).
pub async fn send_html<R>(
    bot: &R,
    manager: &AccountManager,
    chat: ChatId,
    text: &str,
    markup: Option<InlineKeyboardMarkup>,
) -> Option<MessageId>
where
    R: Requester<Err = RequestError>,
{
    let parts = split_text(text);
    let n = parts.len();
    let mut last = None;
    for (i, part) in parts.into_iter().enumerate() {
        let kb = if i + 1 == n { markup.clone() } else { None };
        let res = with_retry(|| {
            let mut req = bot.send_message(chat, part.clone()).parse_mode(ParseMode::Html);
            if let Some(k) = kb.clone() {
                req = req.reply_markup(k);
            }
            req.into_future()
        })
        .await;
        match res {
            Ok(m) => last = Some(m.id),
            Err(e) => {
                note_failure(manager, chat, &e, "sendMessage");
                return None;
            }
        }
    }
    last
}

/// Edits a message in place; when that is impossible (too old, deleted), sends a new one.
pub async fn edit_or_send<R>(
    bot: &R,
    manager: &AccountManager,
    chat: ChatId,
    message: Option<MessageId>,
    text: &str,
    markup: Option<InlineKeyboardMarkup>,
) -> Option<MessageId>
where
    R: Requester<Err = RequestError>,
{
    if let Some(mid) = message {
        if text.chars().count() <= MAX_TEXT {
            let res = with_retry(|| {
                let mut req = bot
                    .edit_message_text(chat, mid, text.to_string())
                    .parse_mode(ParseMode::Html);
                if let Some(k) = markup.clone() {
                    req = req.reply_markup(k);
                }
                req.into_future()
            })
            .await;
            match res {
                Ok(_) | Err(RequestError::Api(ApiError::MessageNotModified)) => return Some(mid),
                Err(e @ RequestError::Api(ApiError::BotBlocked)) => {
                    note_failure(manager, chat, &e, "editMessageText");
                    return None;
                }
                Err(_) => {}
            }
        }
    }
    send_html(bot, manager, chat, text, markup).await
}

/// Sends a document built in memory.
pub async fn send_document<R>(
    bot: &R,
    manager: &AccountManager,
    chat: ChatId,
    file_name: &str,
    bytes: Vec<u8>,
    caption: &str,
) -> Option<MessageId>
where
    R: Requester<Err = RequestError>,
{
    let res = with_retry(|| {
        bot.send_document(chat, InputFile::memory(bytes.clone()).file_name(file_name.to_string()))
            .caption(caption.to_string())
            .parse_mode(ParseMode::Html)
            .into_future()
    })
    .await;
    match res {
        Ok(m) => Some(m.id),
        Err(e) => {
            note_failure(manager, chat, &e, "sendDocument");
            None
        }
    }
}

/// Sends text, or a document when it is too long to read as messages (more than 3 pieces).
pub async fn send_long<R>(
    bot: &R,
    manager: &AccountManager,
    chat: ChatId,
    text: &str,
    file_name: &str,
    caption: &str,
) -> Option<MessageId>
where
    R: Requester<Err = RequestError>,
{
    if split_text(text).len() > 3 {
        send_document(bot, manager, chat, file_name, text.as_bytes().to_vec(), caption).await
    } else {
        send_html(bot, manager, chat, text, None).await
    }
}

/// Answers a callback query (so the button stops spinning), optionally as an alert.
pub async fn answer<R>(bot: &R, id: &teloxide::types::CallbackQueryId, text: Option<&str>, alert: bool)
where
    R: Requester<Err = RequestError>,
{
    let fut = {
        let mut req = bot.answer_callback_query(id.clone());
        if let Some(t) = text {
            req = req.text(t.to_string()).show_alert(alert);
        }
        req.into_future()
    };
    if let Err(e) = fut.await {
        warn!(error = %e, "answerCallbackQuery failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitting() {
        assert_eq!(split_text("hi"), vec!["hi".to_string()]);
        let long = "a\n".repeat(5000);
        let parts = split_text(&long);
        assert!(parts.len() >= 3);
        assert!(parts.iter().all(|p| p.chars().count() <= MAX_TEXT));
        assert_eq!(parts.concat(), long);
        let one_line = "é".repeat(9000);
        let parts = split_text(&one_line);
        assert_eq!(parts.len(), 3);
        assert_eq!(parts.concat(), one_line);
    }
}
