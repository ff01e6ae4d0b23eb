//! Our own limiter for outgoing Telegram calls (`TGWA_TELEGRAM_THROTTLE=1`), in place of
//! teloxide's `Throttle`, which stops its whole queue when any one chat gets a 429.
//!
//! It keeps Telegram's published limits (about 30 messages a second per bot, one a second
//! per private chat, 20 a minute per group) per chat, and decides who goes next when several
//! calls wait:
//! - a 429 for one chat holds back that chat only, until its `retry_after` has passed;
//! - answers to button presses go first (they are no message, so no chat's budget applies),
//!   then replies, then progress edits, then announcements;
//! - among calls of the same kind, the chat served longest ago goes first, so one user's
//!   1,000-item report cannot starve another user's menu;
//! - a progress edit still waiting when a newer one for the same message arrives is dropped
//!   (only the latest text of a message is sent).
//!
//! It only decides *when* a call is made; whether a failed call is tried again is
//! `send::retrying`'s business, and every call passes through both.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use teloxide::types::ChatId;
use teloxide::RequestError;
use tokio::sync::{oneshot, Notify};
use tokio::time::Instant;

/// What a call is, for the order in which waiting calls go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Class {
    /// `answerCallbackQuery`: the user's button spins until it is made.
    Answer,
    /// A reply to something the user did (send, edit, delete, QR photo).
    Reply,
    /// A progress edit of message `.0`; a newer one for the same message replaces it.
    Progress(i32),
    /// One of many equal messages to many chats (an announcement): after everything else.
    Bulk,
}

impl Class {
    /// Lower goes first.
    fn rank(self) -> u8 {
        match self {
            Class::Answer => 0,
            Class::Reply => 1,
            Class::Progress(_) => 2,
            Class::Bulk => 3,
        }
    }
}

/// Telegram's limits, as the Bot API FAQ gives them.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Calls a second over all chats.
    pub overall_per_sec: usize,
    /// Time between calls to one private chat, on average.
    pub private_every: Duration,
    /// Calls a private chat may get at once before `private_every` applies (Telegram allows
    /// short bursts; a command's reply and a menu edit must not wait a second each).
    pub private_burst: f64,
    /// Time between calls to one group (20 a minute).
    pub group_every: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            overall_per_sec: 30,
            private_every: Duration::from_secs(1),
            private_burst: 3.0,
            group_every: Duration::from_secs(3),
        }
    }
}

/// One chat's budget.
#[derive(Debug)]
struct Chat {
    /// Calls it may get now (a token bucket).
    tokens: f64,
    /// When `tokens` was last brought up to date.
    at: Instant,
    /// No call before this (a 429's `retry_after`).
    held_until: Option<Instant>,
    /// The grant counter when it was last served (fairness: lowest goes first).
    served: u64,
}

/// A call waiting for its turn.
struct Waiter {
    chat: i64,
    class: Class,
    seq: u64,
    /// `true`: go; `false`: a newer progress edit of the same message replaced it.
    go: oneshot::Sender<bool>,
}

#[derive(Default)]
struct State {
    chats: HashMap<i64, Chat>,
    waiting: Vec<Waiter>,
    /// When each of the last second's calls was let through.
    recent: std::collections::VecDeque<Instant>,
    seq: u64,
    grants: u64,
    /// Whether a scheduler task is running (it ends when nothing waits).
    running: bool,
}

/// The limiter; one per bot, shared by every task that calls Telegram.
pub struct Limiter {
    limits: Limits,
    state: Mutex<State>,
    wake: Notify,
}

impl Limiter {
    /// A limiter keeping `limits`.
    pub fn new(limits: Limits) -> Arc<Self> {
        Arc::new(Self {
            limits,
            state: Mutex::new(State::default()),
            wake: Notify::new(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock leaves only counters behind: carry on with them.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits for the turn of a call of `class` to `chat`. `false`: do not make it (a newer
    /// progress edit of the same message was queued meanwhile).
    pub async fn acquire(self: &Arc<Self>, chat: ChatId, class: Class) -> bool {
        let (tx, rx) = oneshot::channel();
        let spawn = {
            let mut st = self.lock();
            if let Class::Progress(_) = class {
                // Only the latest text of a message is worth sending.
                if let Some(i) = st.waiting.iter().position(|w| w.chat == chat.0 && w.class == class) {
                    let old = st.waiting.swap_remove(i);
                    let _ = old.go.send(false);
                }
            }
            st.seq += 1;
            let seq = st.seq;
            st.waiting.push(Waiter {
                chat: chat.0,
                class,
                seq,
                go: tx,
            });
            !std::mem::replace(&mut st.running, true)
        };
        if spawn {
            tokio::spawn(Arc::clone(self).schedule());
        } else {
            self.wake.notify_one();
        }
        // The scheduler only ends with nothing waiting, so a dropped sender is not expected;
        // if it happens the call goes rather than being lost.
        rx.await.unwrap_or(true)
    }

    /// Telegram answered a call to `chat` with a 429: nothing more goes to it for `after`.
    pub fn hold(&self, chat: ChatId, after: Duration) {
        let until = Instant::now() + after;
        let mut st = self.lock();
        let c = st.chats.entry(chat.0).or_insert_with(|| self.fresh(Instant::now()));
        c.held_until = Some(c.held_until.map_or(until, |u| u.max(until)));
        drop(st);
        self.wake.notify_one();
    }

    /// Makes `call` when its turn comes (`None` when a newer progress edit replaced it), and
    /// holds the chat back when Telegram answers 429.
    pub async fn run<T, Fut>(self: &Arc<Self>, chat: ChatId, class: Class, call: Fut) -> Option<Result<T, RequestError>>
    where
        Fut: Future<Output = Result<T, RequestError>>,
    {
        if !self.acquire(chat, class).await {
            return None;
        }
        let res = call.await;
        if let Err(RequestError::RetryAfter(s)) = &res {
            self.hold(chat, s.duration());
        }
        Some(res)
    }

    fn fresh(&self, now: Instant) -> Chat {
        Chat {
            tokens: self.limits.private_burst,
            at: now,
            held_until: None,
            served: 0,
        }
    }

    /// (time between calls, burst) for a chat: negative IDs are groups and channels.
    fn budget(&self, chat: i64) -> (Duration, f64) {
        if chat < 0 {
            (self.limits.group_every, 1.0)
        } else {
            (self.limits.private_every, self.limits.private_burst)
        }
    }

    /// Lets waiting calls through in order until none waits.
    async fn schedule(self: Arc<Self>) {
        loop {
            let next = {
                let mut st = self.lock();
                match self.grant_ready(&mut st) {
                    Some(at) => at,
                    None => {
                        st.running = false;
                        return;
                    }
                }
            };
            tokio::select! {
                _ = tokio::time::sleep_until(next) => {}
                _ = self.wake.notified() => {}
            }
        }
    }

    /// Grants every call that may go now; returns when to look again (`None`: nothing waits).
    fn grant_ready(&self, st: &mut State) -> Option<Instant> {
        loop {
            let now = Instant::now();
            while st
                .recent
                .front()
                .is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(1))
            {
                st.recent.pop_front();
            }
            st.waiting.retain(|w| !w.go.is_closed());
            if st.waiting.is_empty() {
                self.forget_idle(st, now);
                return None;
            }
            if st.chats.len() > 4096 + st.waiting.len() {
                self.forget_idle(st, now);
            }
            let mut best: Option<(usize, (u8, u64, u64))> = None;
            let mut wake_at = now + Duration::from_secs(1);
            for (i, w) in st.waiting.iter().enumerate() {
                match self.ready_at(st, w, now) {
                    Some(at) if at > now => wake_at = wake_at.min(at),
                    _ => {
                        let served = st.chats.get(&w.chat).map_or(0, |c| c.served);
                        let key = (w.class.rank(), served, w.seq);
                        if best.as_ref().is_none_or(|(_, k)| key < *k) {
                            best = Some((i, key));
                        }
                    }
                }
            }
            let Some((i, _)) = best else {
                return Some(wake_at);
            };
            if st.recent.len() >= self.limits.overall_per_sec {
                let first = st.recent.front().copied().unwrap_or(now);
                return Some(first + Duration::from_secs(1));
            }
            let w = st.waiting.swap_remove(i);
            st.grants += 1;
            let grants = st.grants;
            st.recent.push_back(now);
            let fresh = self.fresh(now);
            let c = st.chats.entry(w.chat).or_insert(fresh);
            c.served = grants;
            if w.class != Class::Answer {
                c.tokens = self.refill(w.chat, c, now) - 1.0;
                c.at = now;
            }
            let _ = w.go.send(true);
        }
    }

    /// When `w` may go (`None`: now).
    fn ready_at(&self, st: &State, w: &Waiter, now: Instant) -> Option<Instant> {
        let c = st.chats.get(&w.chat)?;
        if w.class == Class::Answer {
            // An answer is no message in the chat: only the overall limit applies.
            return None;
        }
        if let Some(h) = c.held_until.filter(|h| *h > now) {
            return Some(h);
        }
        let every = self.budget(w.chat).0;
        let tokens = self.refill(w.chat, c, now);
        if tokens >= 1.0 {
            None
        } else {
            Some(now + every.mul_f64(1.0 - tokens))
        }
    }

    /// What `chat`'s bucket holds at `now`.
    fn refill(&self, chat: i64, c: &Chat, now: Instant) -> f64 {
        let (every, burst) = self.budget(chat);
        (c.tokens + now.duration_since(c.at).as_secs_f64() / every.as_secs_f64()).min(burst)
    }

    /// Brings every chat's bucket to `now` and forgets chats back at their full budget, so
    /// the map holds only chats served in the last seconds.
    fn forget_idle(&self, st: &mut State, now: Instant) {
        st.chats.retain(|id, c| {
            let burst = self.budget(*id).1;
            c.tokens = self.refill(*id, c, now);
            c.at = now;
            c.tokens < burst || c.held_until.is_some_and(|h| h > now)
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fast limits so the tests take milliseconds: 100 ms per private chat, no burst.
    fn quick() -> Arc<Limiter> {
        Limiter::new(Limits {
            overall_per_sec: 1000,
            private_every: Duration::from_millis(100),
            private_burst: 1.0,
            group_every: Duration::from_millis(300),
        })
    }

    #[tokio::test]
    async fn a_long_queue_of_one_chat_does_not_starve_another() {
        let l = quick();
        let a = ChatId(1);
        let mut flood = Vec::new();
        for _ in 0..50 {
            let l = l.clone();
            flood.push(tokio::spawn(async move { l.acquire(a, Class::Reply).await }));
        }
        tokio::task::yield_now().await;
        let t = Instant::now();
        assert!(l.acquire(ChatId(2), Class::Reply).await);
        assert!(t.elapsed() < Duration::from_millis(50), "waited {:?}", t.elapsed());
        for f in flood {
            f.abort();
        }
    }

    #[tokio::test]
    async fn a_held_chat_waits_alone() {
        let l = quick();
        l.hold(ChatId(1), Duration::from_millis(400));
        let t = Instant::now();
        assert!(l.acquire(ChatId(2), Class::Reply).await);
        assert!(t.elapsed() < Duration::from_millis(50));
        assert!(l.acquire(ChatId(1), Class::Reply).await);
        assert!(
            t.elapsed() >= Duration::from_millis(390),
            "held chat went after {:?}",
            t.elapsed()
        );
    }

    #[tokio::test]
    async fn answers_go_at_once_and_replies_before_progress() {
        let l = quick();
        let a = ChatId(1);
        // Uses the chat's budget: what follows waits for the next slot.
        assert!(l.acquire(a, Class::Reply).await);
        let t = Instant::now();
        assert!(l.acquire(a, Class::Answer).await);
        assert!(t.elapsed() < Duration::from_millis(50));
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for (name, class) in [("p", Class::Progress(9)), ("r", Class::Reply)] {
            let (l, order) = (l.clone(), order.clone());
            tasks.push(tokio::spawn(async move {
                if l.acquire(a, class).await {
                    order.lock().unwrap_or_else(|p| p.into_inner()).push(name);
                }
            }));
            tokio::task::yield_now().await;
        }
        for t in tasks {
            t.await.expect("task");
        }
        assert_eq!(*order.lock().unwrap_or_else(|p| p.into_inner()), vec!["r", "p"]);
    }

    #[tokio::test]
    async fn only_the_latest_progress_of_a_message_is_sent() {
        let l = quick();
        let a = ChatId(1);
        assert!(l.acquire(a, Class::Reply).await);
        let mut tasks = Vec::new();
        for _ in 0..3 {
            let l = l.clone();
            tasks.push(tokio::spawn(async move { l.acquire(a, Class::Progress(7)).await }));
            tokio::task::yield_now().await;
        }
        let mut went = Vec::new();
        for t in tasks {
            went.push(t.await.expect("task"));
        }
        assert_eq!(went, vec![false, false, true]);
    }

    #[tokio::test]
    async fn the_overall_limit_holds() {
        let l = Limiter::new(Limits {
            overall_per_sec: 5,
            ..Limits::default()
        });
        let t = Instant::now();
        for chat in 0..6 {
            assert!(l.acquire(ChatId(chat + 1), Class::Reply).await);
        }
        assert!(
            t.elapsed() >= Duration::from_millis(990),
            "6 calls in {:?}",
            t.elapsed()
        );
    }
}
