//! The update listener: long polling like teloxide's own, plus a [`Heartbeat`] beaten after
//! every successful `getUpdates` (empty ones included), which is what `/health` reads.
//! teloxide's `Polling` yields only updates, so a quiet bot that polls fine would look dead
//! from outside; this listener makes "polled recently" observable. It also counts failed
//! polls in the metrics, and [`timed`] records how long each update takes to handle.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use futures::Stream;
use teloxide::dispatching::{DpHandlerDescription, UpdateHandler};
use teloxide::errors::AsResponseParameters;
use teloxide::payloads::GetUpdatesSetters;
use teloxide::prelude::*;
use teloxide::stop::{mk_stop_token, StopFlag, StopToken};
use teloxide::types::Update;
use teloxide::update_listeners::{StatefulListener, UpdateListener};
use teloxide::RequestError;

use crate::http::Heartbeat;

/// Seconds Telegram may hold one `getUpdates` open when there is nothing to deliver.
pub const POLL_TIMEOUT_SECS: u32 = 10;

/// The listener's state: handed to the dispatcher, which asks for the stream once.
pub struct Listener<R> {
    bot: R,
    heartbeat: Heartbeat,
    token: StopToken,
    flag: Option<StopFlag>,
}

struct Poll<R> {
    bot: R,
    heartbeat: Heartbeat,
    flag: Option<StopFlag>,
    offset: i32,
    buffer: VecDeque<Update>,
    /// Failed polls in a row, for the backoff.
    errors: u32,
    /// Wait this long before the next poll (after an error).
    delay: Option<Duration>,
    /// Stop was requested: the last poll acknowledged what we handed out.
    done: bool,
}

/// A long-polling listener over `bot` that beats `heartbeat`. Deletes any webhook first, as
/// teloxide's `polling_default` does.
pub async fn listener<R>(bot: R, heartbeat: Heartbeat) -> impl UpdateListener<Err = RequestError> + Send
where
    R: Requester<Err = RequestError> + Clone + Send + Sync + 'static,
    <R as Requester>::GetUpdates: Send,
{
    if let Err(e) = bot.delete_webhook().send().await {
        tracing::warn!(error = %e, "deleteWebhook failed; polling anyway");
    }
    let (token, flag) = mk_stop_token();
    let state = Listener {
        bot,
        heartbeat,
        token,
        flag: Some(flag),
    };
    StatefulListener::new(state, stream::<R>, |st: &mut Listener<R>| st.token.clone())
}

fn stream<R>(st: &mut Listener<R>) -> impl Stream<Item = Result<Update, RequestError>> + Send + '_
where
    R: Requester<Err = RequestError> + Clone + Send + Sync + 'static,
    <R as Requester>::GetUpdates: Send,
{
    let poll = Poll {
        bot: st.bot.clone(),
        heartbeat: st.heartbeat.clone(),
        // A second stream (never asked for by the dispatcher) ends at once.
        done: st.flag.is_none(),
        flag: st.flag.take(),
        offset: 0,
        buffer: VecDeque::new(),
        errors: 0,
        delay: None,
    };
    futures::stream::unfold(poll, next::<R>)
}

async fn next<R>(mut p: Poll<R>) -> Option<(Result<Update, RequestError>, Poll<R>)>
where
    R: Requester<Err = RequestError> + Clone + Send + Sync + 'static,
    <R as Requester>::GetUpdates: Send,
{
    loop {
        if let Some(u) = p.buffer.pop_front() {
            return Some((Ok(u), p));
        }
        if p.done {
            return None;
        }
        // Out of `p` while we wait on it, so `p` can be handed to `finish`.
        let mut flag = p.flag.take()?;
        if let Some(d) = p.delay.take() {
            tokio::select! {
                _ = tokio::time::sleep(d) => {}
                _ = &mut flag => return finish(p).await,
            }
        }
        let req = p.bot.get_updates().offset(p.offset).timeout(POLL_TIMEOUT_SECS).send();
        let res = tokio::select! {
            r = req => r,
            _ = &mut flag => return finish(p).await,
        };
        p.flag = Some(flag);
        match res {
            Ok(updates) => {
                p.heartbeat.beat();
                p.errors = 0;
                if let Some(last) = updates.last() {
                    p.offset = last.id.as_offset();
                }
                p.buffer.extend(updates);
            }
            Err(e) => {
                crate::metrics::telegram_error(&e);
                p.delay = Some(match e.retry_after() {
                    Some(s) => s.duration(),
                    None => backoff(p.errors),
                });
                p.errors = p.errors.saturating_add(1);
                return Some((Err(e), p));
            }
        }
    }
}

/// Confirms the updates already handed out (so a restart does not see them again) and ends.
async fn finish<R>(mut p: Poll<R>) -> Option<(Result<Update, RequestError>, Poll<R>)>
where
    R: Requester<Err = RequestError> + Clone + Send + Sync + 'static,
    <R as Requester>::GetUpdates: Send,
{
    p.done = true;
    if p.offset != 0 {
        let ack = p.bot.get_updates().offset(p.offset).limit(1).timeout(0).send();
        let _ = tokio::time::timeout(Duration::from_secs(5), ack).await;
    }
    None
}

/// 1 s, 2 s, 4 s ... up to 30 s: short enough that `/health` recovers soon after Telegram does.
fn backoff(errors: u32) -> Duration {
    Duration::from_secs(1u64 << errors.min(5)).min(Duration::from_secs(30))
}

/// Wraps the handler tree so each update's handling time lands in `tgwa_update_seconds`.
pub fn timed<E: Send + Sync + 'static>(tree: UpdateHandler<E>) -> UpdateHandler<E> {
    dptree::from_fn_with_description(
        <DpHandlerDescription as dptree::HandlerDescription>::entry(),
        |deps, cont| async move {
            let started = Instant::now();
            let out = cont(deps).await;
            crate::metrics::update_handled(started.elapsed());
            out
        },
        dptree::HandlerSignature::Entry,
    )
    .chain(tree)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_bounded() {
        assert_eq!(backoff(0), Duration::from_secs(1));
        assert_eq!(backoff(3), Duration::from_secs(8));
        assert_eq!(backoff(100), Duration::from_secs(30));
    }
}
