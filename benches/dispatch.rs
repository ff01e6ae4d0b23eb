//! Dispatcher throughput: 500 users with linked (simulated) accounts send 5,000 updates,
//! commands and button presses, through the real handler tree (account guard, signed callback
//! data, menus) against the fake Bot API on loopback, with the limiter off. The baseline is a
//! bare tree making the same Bot API calls with the same payloads (for a command the menu's
//! text and keyboard as the guarded tree sent them; for a button press an edit with them and
//! an answer), measured in the same run, so the ratio isolates what tgwa adds: resolving the
//! caller, ownership checks, signing, rendering.
//!
//! Then latency: `/menu` from 5,000 users offered at 300 updates/s for 10 s; p50 and p99 from
//! an update's arrival at the fake Bot API to its reply being recorded there.
//!
//! `cargo bench --bench dispatch` prints one line: `dispatch users=500 updates=5000
//! updates_per_s=<guarded> baseline_updates_per_s=<bare> latency_users=5000 offered_per_s=300
//! p50_ms=.. p99_ms=.. ratio=<guarded/bare>`. `TGWA_BENCH_SMOKE=1`: 5 users, 1 s.

#[path = "../tests/support/fake_telegram.rs"]
mod fake_telegram;
#[path = "support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use fake_telegram::FakeTelegram;
use teloxide::dispatching::{Dispatcher, UpdateFilterExt};
use teloxide::prelude::*;
use tgwa::bot::callback::Cb;
use tgwa::bot::App;
use tgwa::config::Config;
use tgwa::ids::{PhoneNumber, TelegramId};
use tgwa::manager::AccountManager;
use tokio::sync::watch;

/// Users (and linked accounts): 500, or 5 at the smoke size.
fn users() -> i64 {
    support::size("TGWA_BENCH_USERS", 500, 5) as i64
}
const PER_USER: i64 = 10;

/// Users of the latency run (5,000; 5 at the smoke size).
fn latency_users() -> i64 {
    support::size("TGWA_BENCH_LATENCY_USERS", 5000, 5) as i64
}

/// Updates a second offered in the latency run, and for how long.
const OFFERED_PER_S: u64 = 300;
fn offered_secs() -> u64 {
    support::size("TGWA_BENCH_LATENCY_SECS", 10, 1) as u64
}

/// What the guarded tree sent for each command of the load (`/menu`, `/status`, `/help`):
/// the baseline sends the same text and keyboard for the same command.
#[derive(Clone)]
struct Replies(std::sync::Arc<std::collections::HashMap<String, Reply>>);

/// One reply's payload as the guarded tree sent it.
#[derive(Clone)]
struct Reply {
    text: String,
    markup: teloxide::types::InlineKeyboardMarkup,
}

impl Replies {
    /// The guarded tree's reply to `command` (the menu for anything else).
    fn to(&self, command: &str) -> Reply {
        self.0
            .get(command)
            .or_else(|| self.0.get("/menu"))
            .cloned()
            .expect("the menu was recorded")
    }
}

/// The commands of the load.
const COMMANDS: [&str; 3] = ["/menu", "/status", "/help"];
const FIRST_USER: i64 = 9_100_000;

/// Pushes the measured load: per user six commands and four button presses on its menu.
fn push_load(tg: &FakeTelegram, menus: &[(i64, i64, String)]) {
    for round in 0..PER_USER {
        for (user, menu_mid, data) in menus {
            match round % 5 {
                0 | 3 => tg.push_message(*user, "/menu"),
                1 => tg.push_message(*user, "/status"),
                2 => tg.push_message(*user, "/help"),
                _ => {
                    tg.push_callback(*user, *menu_mid, data);
                    0
                }
            };
        }
    }
}

/// Pushes the load and waits until every update was answered; returns updates per second.
async fn measure(tg: &FakeTelegram, menus: &[(i64, i64, String)]) -> f64 {
    let (commands, callbacks) = expected();
    let mark = tg.mark();
    let t = Instant::now();
    push_load(tg, menus);
    tg.wait_for_count_after(mark, "answercallbackquery", callbacks, Duration::from_secs(300))
        .await;
    tg.wait_for_count_after(mark, "sendmessage", commands, Duration::from_secs(300))
        .await;
    (commands + callbacks) as f64 / t.elapsed().as_secs_f64()
}

/// Commands and callbacks in the load.
fn expected() -> (usize, usize) {
    let per_user_callbacks = (0..PER_USER).filter(|r| r % 5 == 4).count() as i64;
    let total = (users() * PER_USER) as usize;
    let callbacks = (users() * per_user_callbacks) as usize;
    (total - callbacks, callbacks)
}

/// Offers `/menu` from `users` users at `OFFERED_PER_S`; returns p50 and p99 in ms from an
/// update's arrival to its reply being recorded.
async fn latency(tg: &FakeTelegram, users: i64) -> (f64, f64) {
    let total = OFFERED_PER_S * offered_secs();
    let mark = tg.mark();
    let start = tokio::time::Instant::now();
    let mut pushed: Vec<(i64, std::time::Instant)> = Vec::with_capacity(total as usize);
    for k in 0..total {
        tokio::time::sleep_until(start + Duration::from_micros(k * 1_000_000 / OFFERED_PER_S)).await;
        let user = FIRST_USER + (k as i64 % users);
        let at = std::time::Instant::now();
        tg.push_message(user, "/menu");
        pushed.push((user, at));
    }
    tg.wait_for_count_after(mark, "sendmessage", total as usize, Duration::from_secs(300))
        .await;
    let calls = tg.calls_after(mark);
    let mut replies: std::collections::HashMap<i64, std::collections::VecDeque<std::time::Instant>> =
        std::collections::HashMap::new();
    for c in calls.iter().filter(|c| c.method == "sendmessage") {
        replies.entry(c.chat_id.unwrap_or(0)).or_default().push_back(c.at);
    }
    let mut ms: Vec<f64> = pushed
        .iter()
        .map(|(user, at)| {
            let reply = replies
                .get_mut(user)
                .and_then(|q| q.pop_front())
                .expect("a reply per update");
            reply.saturating_duration_since(*at).as_secs_f64() * 1000.0
        })
        .collect();
    ms.sort_by(|a, b| a.total_cmp(b));
    let pct = |p: f64| ms[((ms.len() as f64 * p).ceil() as usize).clamp(1, ms.len()) - 1];
    (pct(0.50), pct(0.99))
}

/// Waits until the startup's background work is over: every linked account connected
/// again and no SQLite pool opened for a second (after the logins, `Jobs::resume_all` opens
/// every account's bot data once). Throughput is measured on a bot that has started, not
/// against its start-up; `tgwa run` does the same work, which the `startup` bench measures.
async fn settle(manager: &AccountManager, linked: usize) -> Duration {
    let t = Instant::now();
    let mut last = (manager.pools().churn(), Instant::now());
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let churn = manager.pools().churn();
        if churn != last.0 {
            last = (churn, Instant::now());
        } else if manager.live_count() >= linked && last.1.elapsed() >= Duration::from_secs(1) {
            return t.elapsed();
        }
        assert!(t.elapsed() < Duration::from_secs(600), "the startup did not settle");
    }
}

/// The guarded tree's reply to each command, as `FIRST_USER` got it.
async fn record_replies(tg: &FakeTelegram) -> Replies {
    let mut map = std::collections::HashMap::new();
    for command in COMMANDS {
        let mark = tg.mark();
        tg.push_message(FIRST_USER, command);
        tg.wait_for_count_after(mark, "sendmessage", 1, Duration::from_secs(60))
            .await;
        let call = tg
            .calls_after(mark)
            .into_iter()
            .find(|c| c.method == "sendmessage")
            .expect("a reply");
        let reply = Reply {
            text: call.params["text"].as_str().expect("text").to_string(),
            markup: serde_json::from_value(call.params["reply_markup"].clone()).expect("keyboard"),
        };
        map.insert(command.to_string(), reply);
    }
    Replies(std::sync::Arc::new(map))
}

/// Every user opens the menu once; its message takes the button presses. Returns
/// `(user, menu message, Menu button data)` per user.
async fn warm_up(tg: &FakeTelegram, data: impl Fn(i64) -> String) -> Vec<(i64, i64, String)> {
    let mark = tg.mark();
    for i in 0..users() {
        tg.push_message(FIRST_USER + i, "/menu");
    }
    tg.wait_for_count_after(mark, "sendmessage", users() as usize, Duration::from_secs(120))
        .await;
    (0..users())
        .map(|i| {
            let user = FIRST_USER + i;
            let mid = tg.sent_to(user).last().expect("menu").message_id;
            (user, mid, data(user))
        })
        .collect()
}

/// Guarded throughput, the replies it sent, the button data, and the latency run's p50 and
/// p99.
async fn run_guarded() -> (f64, Replies, Vec<String>, (f64, f64)) {
    let tg = FakeTelegram::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::for_tests(dir.path());
    let linked = users().max(latency_users());
    config.max_accounts = linked as usize + 10;
    config.sim_pair_delay = Duration::from_millis(1);
    config.login_concurrency = 64;
    let backend = tgwa::wa::backend_for(&config).await.unwrap();
    {
        // Link one account per user, then stop, so the bot starts as in production.
        let m = AccountManager::open(config.clone(), backend.clone()).await.unwrap();
        let accounts = (0..linked)
            .map(|i| {
                let owner = TelegramId::new(FIRST_USER + i).unwrap();
                (owner, PhoneNumber::from_digits(&format!("62815{:06}3", i)).unwrap())
            })
            .collect();
        support::pair_all(&m, accounts).await;
        m.shutdown(Duration::from_secs(10)).await;
    }
    let manager = AccountManager::open(config.clone(), backend).await.unwrap();
    let app = App::new(manager.clone()).unwrap();
    let codec = app.codec().clone();
    let (stop, rx) = watch::channel(false);
    let server = tokio::spawn(tgwa::app::serve_with(tg.bot(), app, rx));
    let settled = settle(&manager, linked as usize).await;
    eprintln!("dispatch: startup settled after {:.1} s", settled.as_secs_f64());

    let menus = warm_up(&tg, |user| codec.encode(TelegramId::new(user).unwrap(), &Cb::Menu)).await;
    let replies = record_replies(&tg).await;
    let (opened, closed) = manager.pools().churn();
    eprintln!("dispatch: measuring the guarded tree");
    let rate = measure(&tg, &menus).await;
    let churn = manager.pools().churn();
    eprintln!(
        "dispatch: guarded {rate:.0} updates/s; pools opened {} closed {} meanwhile; latency run starts",
        churn.0 - opened,
        churn.1 - closed
    );
    let lat = latency(&tg, latency_users()).await;
    let _ = stop.send(true);
    let _ = server.await;
    tg.shutdown();
    let data = menus.into_iter().map(|(_, _, d)| d).collect();
    (rate, replies, data, lat)
}

/// The bare tree: for a command, the guarded tree's reply to that command; for a button
/// press, the guarded tree's edit (the same menu again, which Telegram answers "not
/// modified", as the guarded tree's edit is answered) and an answer. No guard, no lookups.
async fn run_bare(replies: Replies, data: Vec<String>) -> f64 {
    use teloxide::types::ParseMode;
    let tg = FakeTelegram::start().await;
    let handler = dptree::entry()
        .branch(
            Update::filter_message().endpoint(|bot: Bot, msg: Message, replies: Replies| async move {
                let reply = replies.to(msg.text().unwrap_or(""));
                bot.send_message(msg.chat.id, reply.text)
                    .parse_mode(ParseMode::Html)
                    .reply_markup(reply.markup)
                    .await?;
                Ok::<(), teloxide::RequestError>(())
            }),
        )
        .branch(
            Update::filter_callback_query().endpoint(|bot: Bot, q: CallbackQuery, replies: Replies| async move {
                if let Some(m) = &q.message {
                    let menu = replies.to("/menu");
                    let _ = bot
                        .edit_message_text(m.chat().id, m.id(), menu.text)
                        .parse_mode(ParseMode::Html)
                        .reply_markup(menu.markup)
                        .await;
                }
                bot.answer_callback_query(q.id).await?;
                Ok::<(), teloxide::RequestError>(())
            }),
        );
    let mut dispatcher = Dispatcher::builder(tg.bot(), handler)
        .dependencies(dptree::deps![replies])
        .build();
    let token = dispatcher.shutdown_token();
    let task = tokio::spawn(async move { dispatcher.dispatch().await });
    // The same warm-up as the guarded run, and the same button data on the presses.
    let menus = warm_up(&tg, |user| data[(user - FIRST_USER) as usize].clone()).await;
    let rate = measure(&tg, &menus).await;
    loop {
        match token.shutdown() {
            Ok(f) => {
                f.await;
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
    let _ = task.await;
    tg.shutdown();
    rate
}

fn main() {
    let rt = support::runtime();
    rt.block_on(async {
        let (guarded, replies, data, (p50, p99)) = run_guarded().await;
        let bare = run_bare(replies, data).await;
        println!(
            "dispatch users={} updates={} updates_per_s={guarded:.0} baseline_updates_per_s={bare:.0} \
             latency_users={} offered_per_s={OFFERED_PER_S} p50_ms={p50:.1} p99_ms={p99:.1} ratio={:.2}",
            users(),
            users() * PER_USER,
            latency_users(),
            guarded / bare
        );
    });
    rt.shutdown_timeout(Duration::from_secs(2));
}
