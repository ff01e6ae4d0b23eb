//! Reaching the Telegram Bot API before anything is served.
//!
//! teloxide's `Dispatcher::dispatch()` calls `getMe` itself and panics inside its task when
//! that fails, which left a process running its WhatsApp sessions and jobs without a bot. So
//! `tgwa run` asks `getMe` first, retrying with backoff while Telegram cannot be reached, and
//! stops at once when Telegram rejects the token; `tgwa check` asks once, with a timeout.
//!
//! Below the front-end (`crate::bot`) and beside the account manager, which holds one of
//! each for the whole process: the outgoing-call [`limiter`] and the record of each
//! message's current keyboard ([`screens`]).

use std::time::Duration;

use teloxide::prelude::*;
use teloxide::types::Me;
use teloxide::{ApiError, RequestError};
use tokio::sync::watch;
use tracing::{info, warn};

pub mod limiter;
pub mod screens;

/// Why `getMe` did not give the bot's identity.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TelegramError {
    /// 401: the token is wrong or was revoked. Retrying cannot help: bad configuration.
    #[error("token rejected by Telegram: check TELEGRAM_BOT_TOKEN (from @BotFather)")]
    TokenRejected,
    /// No answer, a network error, or a server error: may go away.
    #[error("Telegram unreachable: {0}")]
    Unreachable(String),
}

/// How long one `getMe` may take before it counts as unreachable.
pub const GET_ME_TIMEOUT: Duration = Duration::from_secs(15);

/// The first wait between two tries; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(1);

/// The longest wait between two tries.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// One `getMe`, bounded by `timeout`.
pub async fn get_me<R>(bot: &R, timeout: Duration) -> Result<Me, TelegramError>
where
    R: Requester<Err = RequestError>,
{
    match tokio::time::timeout(timeout, bot.get_me().send()).await {
        Err(_) => Err(TelegramError::Unreachable(format!("no answer within {timeout:?}"))),
        Ok(Ok(me)) => Ok(me),
        Ok(Err(e)) => Err(classify(&e)),
    }
}

fn classify(e: &RequestError) -> TelegramError {
    match e {
        RequestError::Api(ApiError::InvalidToken) => TelegramError::TokenRejected,
        other => TelegramError::Unreachable(other.to_string()),
    }
}

/// Asks `getMe` until Telegram answers, logging each failed try and waiting 1 s, 2 s, 4 s…
/// up to 30 s between tries. `Ok(None)` when `shutdown` fires first; an error only when the
/// token is rejected.
pub async fn wait_until_reachable<R>(bot: &R, shutdown: &mut watch::Receiver<bool>) -> Result<Option<Me>, TelegramError>
where
    R: Requester<Err = RequestError>,
{
    let mut delay = FIRST_BACKOFF;
    let mut attempt: u32 = 1;
    loop {
        if *shutdown.borrow() {
            return Ok(None);
        }
        let tried = tokio::select! {
            r = get_me(bot, GET_ME_TIMEOUT) => r,
            _ = stopped(shutdown) => return Ok(None),
        };
        match tried {
            Ok(me) => {
                info!(
                    attempt,
                    bot = me.user.username.as_deref().unwrap_or("?"),
                    "Telegram answers getMe"
                );
                return Ok(Some(me));
            }
            Err(TelegramError::TokenRejected) => return Err(TelegramError::TokenRejected),
            Err(TelegramError::Unreachable(why)) => {
                warn!(attempt, retry_in = ?delay, error = %why, "Telegram unreachable; retrying getMe");
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = stopped(shutdown) => return Ok(None),
        }
        delay = (delay * 2).min(MAX_BACKOFF);
        attempt = attempt.saturating_add(1);
    }
}

/// Resolves once `shutdown` is (or becomes) true, or its sender is gone.
async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    while !*shutdown.borrow_and_update() {
        if shutdown.changed().await.is_err() {
            // Nobody can ask for a shutdown any more: wait forever rather than stop.
            std::future::pending::<()>().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_invalid_token_is_final() {
        assert_eq!(
            classify(&RequestError::Api(ApiError::InvalidToken)),
            TelegramError::TokenRejected
        );
        assert!(matches!(
            classify(&RequestError::Api(ApiError::Unknown("Internal Server Error".into()))),
            TelegramError::Unreachable(_)
        ));
        assert!(matches!(
            classify(&RequestError::RetryAfter(teloxide::types::Seconds::from_seconds(3))),
            TelegramError::Unreachable(_)
        ));
    }

    #[tokio::test]
    async fn a_closed_port_is_retried_until_shutdown() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap();
        let bot = Bot::new("1:x").set_api_url(format!("http://127.0.0.1:{port}/").parse().unwrap());
        let (tx, mut rx) = watch::channel(false);
        let waiter = tokio::spawn(async move { wait_until_reachable(&bot, &mut rx).await });
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert!(!waiter.is_finished(), "still retrying");
        tx.send(true).unwrap();
        let r = tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(r, Ok(None));
    }
}
