//! Sending to Telegram carefully: HTML parse mode, long texts split, one retry policy for
//! every send and edit ([`retrying`]: transient failures with backoff, a 429 once, a lost
//! answer repeated only when that cannot show a message twice), a user who blocked the bot
//! (403) marked so nothing more is sent to them, and every failure logged with its context
//! instead of stopping the handler.

use std::future::IntoFuture;
use std::time::Duration;

use teloxide::prelude::*;
use teloxide::types::{ChatId, InlineKeyboardMarkup, InputFile, MessageId, ParseMode};
use teloxide::{ApiError, RequestError};
use tracing::warn;

use super::limiter::Class;
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

/// The longest `retry_after` of a 429 that is waited out; a longer one gives up at once
/// (waiting longer would hold the user's handler for nothing they would still want).
const MAX_RETRY_AFTER: Duration = Duration::from_secs(30);

/// How many times a call is retried after a transient failure (so at most this + 1 tries).
const TRANSIENT_RETRIES: u32 = 3;

/// Whether a call may be repeated when its answer was lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Repeat {
    /// Doing it twice is harmless (an edit: the second says "not modified").
    Safe,
    /// Doing it twice shows the user two messages (a send).
    Unsafe,
}

/// What a failed call means for trying it again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Failure {
    /// Telegram (or the way to it) did not do it and may next time: 5xx, a refused or
    /// broken connection, a garbled answer.
    Transient,
    /// 429: Telegram asks us to wait this long.
    RateLimited(Duration),
    /// The request went out and no answer came in time: it may have been done.
    Lost,
    /// It will fail the same way again (400, 403, ...).
    Final,
}

/// Descriptions Telegram (and the proxies before it) give 5xx answers; teloxide keeps the
/// description but not the status code.
const SERVER_ERRORS: [&str; 4] = [
    "Internal Server Error",
    "Bad Gateway",
    "Service Unavailable",
    "Gateway Timeout",
];

fn classify(e: &RequestError) -> Failure {
    match e {
        RequestError::RetryAfter(secs) => Failure::RateLimited(secs.duration()),
        RequestError::Network(err) if err.is_timeout() => Failure::Lost,
        RequestError::Network(_) | RequestError::Io(_) | RequestError::InvalidJson { .. } => Failure::Transient,
        RequestError::Api(ApiError::Unknown(d)) if SERVER_ERRORS.iter().any(|s| d.contains(s)) => Failure::Transient,
        _ => Failure::Final,
    }
}

/// The one place that decides whether a Telegram call is tried again: transient failures
/// after a bounded exponential backoff (`TGWA_TELEGRAM_RETRY_BASE_MS`, doubling), a 429 once
/// after its `retry_after` (up to [`MAX_RETRY_AFTER`]), a lost answer only when repeating is
/// harmless. The limiter (`bot::limiter`, through [`paced`]) only decides when a call is
/// made and holds a chat back after its 429; it never repeats one.
pub async fn retrying<T, F, Fut>(base: Duration, repeat: Repeat, what: &str, mut op: F) -> Result<T, RequestError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, RequestError>>,
{
    let mut transient = 0;
    let mut waited_429 = false;
    loop {
        let e = match op().await {
            Ok(v) => return Ok(v),
            Err(e) => e,
        };
        let wait = match classify(&e) {
            Failure::RateLimited(after) if !waited_429 && after <= MAX_RETRY_AFTER => {
                waited_429 = true;
                after
            }
            Failure::Transient if transient < TRANSIENT_RETRIES => {
                transient += 1;
                base.saturating_mul(1 << (transient - 1))
            }
            Failure::Lost if repeat == Repeat::Safe && transient < TRANSIENT_RETRIES => {
                transient += 1;
                base.saturating_mul(1 << (transient - 1))
            }
            Failure::Lost => {
                // A send whose answer was lost has most likely been shown: sending it again
                // would show it twice, so it is given up and logged instead.
                warn!(error = %e, "{what}: no answer in time; not repeated, it may have been delivered");
                return Err(e);
            }
            _ => return Err(e),
        };
        warn!(error = %e, ?wait, "{what} failed; trying again");
        tokio::time::sleep(wait).await;
    }
}

/// Makes `call` when the limiter lets it (at once with `TGWA_TELEGRAM_THROTTLE=0`). A
/// progress edit replaced by a newer one of the same message before its turn is not made and
/// answers "message is not modified": the newer edit carries the text, and every caller
/// already takes that answer as done, never as a reason to retry or send anew.
pub async fn paced<T, Fut>(manager: &AccountManager, chat: ChatId, class: Class, call: Fut) -> Result<T, RequestError>
where
    Fut: std::future::Future<Output = Result<T, RequestError>>,
{
    match manager.telegram_limiter() {
        Some(l) => l
            .run(chat, class, call)
            .await
            .unwrap_or(Err(RequestError::Api(ApiError::MessageNotModified))),
        None => call.await,
    }
}

/// The backoff base from the configuration.
fn base(manager: &AccountManager) -> Duration {
    manager.config().telegram_retry_base
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
        let res = retrying(base(manager), Repeat::Unsafe, "sendMessage", || {
            let mut req = bot.send_message(chat, part.clone()).parse_mode(ParseMode::Html);
            if let Some(k) = kb.clone() {
                req = req.reply_markup(k);
            }
            paced(manager, chat, Class::Reply, req.into_future())
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

/// Edits a message in place; sends a new one only when Telegram says the message cannot be
/// edited or is gone (or the text is too long for one message). "Not modified" is success;
/// an edit whose answer was lost is repeated as an edit, never turned into a second message.
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
    edit_or_send_as(bot, manager, chat, message, text, markup, false).await
}

/// [`edit_or_send`] for a job's progress message: it waits behind replies, and when several
/// edits of the message wait, only the latest is made.
pub async fn edit_progress<R>(
    bot: &R,
    manager: &AccountManager,
    chat: ChatId,
    message: MessageId,
    text: &str,
    markup: Option<InlineKeyboardMarkup>,
) -> Option<MessageId>
where
    R: Requester<Err = RequestError>,
{
    edit_or_send_as(bot, manager, chat, Some(message), text, markup, true).await
}

async fn edit_or_send_as<R>(
    bot: &R,
    manager: &AccountManager,
    chat: ChatId,
    message: Option<MessageId>,
    text: &str,
    markup: Option<InlineKeyboardMarkup>,
    progress: bool,
) -> Option<MessageId>
where
    R: Requester<Err = RequestError>,
{
    if let Some(mid) = message {
        let class = if progress { Class::Progress(mid.0) } else { Class::Reply };
        if text.chars().count() <= MAX_TEXT {
            let res = retrying(base(manager), Repeat::Safe, "editMessageText", || {
                let mut req = bot
                    .edit_message_text(chat, mid, text.to_string())
                    .parse_mode(ParseMode::Html);
                if let Some(k) = markup.clone() {
                    req = req.reply_markup(k);
                }
                paced(manager, chat, class, req.into_future())
            })
            .await;
            match res {
                Ok(_) | Err(RequestError::Api(ApiError::MessageNotModified)) => return Some(mid),
                Err(RequestError::Api(
                    ApiError::MessageToEditNotFound | ApiError::MessageCantBeEdited | ApiError::MessageIdInvalid,
                )) => {}
                Err(e) => {
                    note_failure(manager, chat, &e, "editMessageText");
                    return None;
                }
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
    let res = retrying(base(manager), Repeat::Unsafe, "sendDocument", || {
        let req = bot
            .send_document(chat, InputFile::memory(bytes.clone()).file_name(file_name.to_string()))
            .caption(caption.to_string())
            .parse_mode(ParseMode::Html);
        paced(manager, chat, Class::Reply, req.into_future())
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

/// Answers a callback query (so the button stops spinning), optionally as an alert, ahead of
/// every other waiting call and with the same retries as a send (answering twice is harmless:
/// Telegram refuses the second).
pub async fn answer<R>(
    bot: &R,
    manager: &AccountManager,
    chat: ChatId,
    id: &teloxide::types::CallbackQueryId,
    text: Option<&str>,
    alert: bool,
) where
    R: Requester<Err = RequestError>,
{
    let res = retrying(base(manager), Repeat::Safe, "answerCallbackQuery", || {
        let mut req = bot.answer_callback_query(id.clone());
        if let Some(t) = text {
            req = req.text(t.to_string()).show_alert(alert);
        }
        paced(manager, chat, Class::Answer, req.into_future())
    })
    .await;
    if let Err(e) = res {
        crate::metrics::telegram_error(&e);
        warn!(error = %e, "answerCallbackQuery failed");
    }
}

/// Deletes a message, with the same retries and pacing as an edit; a message already gone is
/// not an error worth more than a log line.
pub async fn delete<R>(bot: &R, manager: &AccountManager, chat: ChatId, message: MessageId)
where
    R: Requester<Err = RequestError>,
{
    let res = retrying(base(manager), Repeat::Safe, "deleteMessage", || {
        paced(
            manager,
            chat,
            Class::Reply,
            bot.delete_message(chat, message).into_future(),
        )
    })
    .await;
    if let Err(e) = res {
        warn!(chat_id = chat.0, error = %e, "deleteMessage failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};
    use teloxide::types::Seconds;

    fn server_error() -> RequestError {
        RequestError::Api(ApiError::Unknown("Internal Server Error".into()))
    }

    #[test]
    fn failures_are_classified() {
        assert_eq!(classify(&server_error()), Failure::Transient);
        assert_eq!(
            classify(&RequestError::RetryAfter(Seconds::from_seconds(3))),
            Failure::RateLimited(Duration::from_secs(3))
        );
        assert_eq!(classify(&RequestError::Api(ApiError::BotBlocked)), Failure::Final);
        assert_eq!(
            classify(&RequestError::Api(ApiError::MessageNotModified)),
            Failure::Final
        );
    }

    /// Runs `retrying` over answers given in order; returns the result and the tries made.
    async fn run(answers: Vec<Result<u32, RequestError>>, repeat: Repeat) -> (Result<u32, RequestError>, u32) {
        let tries = AtomicU32::new(0);
        let answers = std::sync::Mutex::new(answers.into_iter());
        let res = retrying(Duration::from_millis(10), repeat, "test", || {
            tries.fetch_add(1, Ordering::SeqCst);
            let next = answers.lock().unwrap().next().unwrap_or(Ok(0));
            async move { next }
        })
        .await;
        (res, tries.load(Ordering::SeqCst))
    }

    #[tokio::test]
    async fn transient_failures_are_retried_with_a_bound() {
        let (res, tries) = run(vec![Err(server_error()), Ok(7)], Repeat::Unsafe).await;
        assert_eq!(res.ok(), Some(7));
        assert_eq!(tries, 2);
        let always: Vec<_> = (0..10).map(|_| Err(server_error())).collect();
        let started = tokio::time::Instant::now();
        let (res, tries) = run(always, Repeat::Unsafe).await;
        assert!(res.is_err());
        assert_eq!(tries, TRANSIENT_RETRIES + 1);
        // 10 + 20 + 40 ms of backoff.
        assert!(started.elapsed() >= Duration::from_millis(70));
    }

    #[tokio::test]
    async fn a_429_is_waited_out_once() {
        let r429 = || Err(RequestError::RetryAfter(Seconds::from_seconds(1)));
        let started = tokio::time::Instant::now();
        let (res, tries) = run(vec![r429(), Ok(1)], Repeat::Unsafe).await;
        assert_eq!(res.ok(), Some(1));
        assert_eq!(tries, 2);
        assert!(started.elapsed() >= Duration::from_secs(1));
        let (res, tries) = run(vec![r429(), r429(), Ok(1)], Repeat::Unsafe).await;
        assert!(matches!(res, Err(RequestError::RetryAfter(_))));
        assert_eq!(tries, 2);
        // Longer than the bound: given up at once.
        let long = Err(RequestError::RetryAfter(Seconds::from_seconds(3600)));
        let (res, tries) = run(vec![long, Ok(1)], Repeat::Unsafe).await;
        assert!(res.is_err());
        assert_eq!(tries, 1);
    }

    #[tokio::test]
    async fn final_errors_are_not_retried() {
        let (res, tries) = run(vec![Err(RequestError::Api(ApiError::BotBlocked)), Ok(1)], Repeat::Safe).await;
        assert!(res.is_err());
        assert_eq!(tries, 1);
    }

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
