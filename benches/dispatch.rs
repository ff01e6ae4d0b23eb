//! Dispatcher throughput: 500 users with linked (simulated) accounts send 5,000 updates,
//! commands and button presses, through the real handler tree (account guard, signed callback
//! data, menus) against the fake Bot API on loopback, with Throttle off. The baseline is a bare
//! tree that answers every update with one call and no guard, measured in the same run.
//!
//! `cargo bench --bench dispatch` prints one line:
//! `dispatch users=500 updates=5000 updates_per_s=<guarded> baseline_updates_per_s=<bare> ratio=<guarded/bare>`.

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

async fn run_guarded() -> f64 {
    let tg = FakeTelegram::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::for_tests(dir.path());
    config.max_accounts = users() as usize + 10;
    config.sim_pair_delay = Duration::from_millis(1);
    config.login_concurrency = 64;
    let backend = tgwa::wa::backend_for(&config).await.unwrap();
    {
        // Link one account per user, then stop, so the bot starts as in production.
        let m = AccountManager::open(config.clone(), backend.clone()).await.unwrap();
        let accounts = (0..users())
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

    // Warm-up: every user opens the menu once; its message takes the button presses.
    let mark = tg.mark();
    for i in 0..users() {
        tg.push_message(FIRST_USER + i, "/menu");
    }
    tg.wait_for_count_after(mark, "sendmessage", users() as usize, Duration::from_secs(120))
        .await;
    let menus: Vec<(i64, i64, String)> = (0..users())
        .map(|i| {
            let user = FIRST_USER + i;
            let mid = tg.sent_to(user).last().expect("menu").message_id;
            (user, mid, codec.encode(TelegramId::new(user).unwrap(), &Cb::Menu))
        })
        .collect();

    let rate = measure(&tg, &menus).await;
    let _ = stop.send(true);
    let _ = server.await;
    tg.shutdown();
    rate
}

async fn run_bare() -> f64 {
    let tg = FakeTelegram::start().await;
    let handler = dptree::entry()
        .branch(Update::filter_message().endpoint(|bot: Bot, msg: Message| async move {
            bot.send_message(msg.chat.id, "ok").await?;
            Ok::<(), teloxide::RequestError>(())
        }))
        .branch(
            Update::filter_callback_query().endpoint(|bot: Bot, q: CallbackQuery| async move {
                bot.answer_callback_query(q.id).await?;
                Ok::<(), teloxide::RequestError>(())
            }),
        );
    let mut dispatcher = Dispatcher::builder(tg.bot(), handler).build();
    let token = dispatcher.shutdown_token();
    let task = tokio::spawn(async move { dispatcher.dispatch().await });
    let menus: Vec<(i64, i64, String)> = (0..users()).map(|i| (FIRST_USER + i, 1, "m".to_string())).collect();
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
        let bare = run_bare().await;
        let guarded = run_guarded().await;
        println!(
            "dispatch users={} updates={} updates_per_s={guarded:.0} baseline_updates_per_s={bare:.0} ratio={:.2}",
            users(),
            users() * PER_USER,
            guarded / bare
        );
    });
    rt.shutdown_timeout(Duration::from_secs(2));
}
