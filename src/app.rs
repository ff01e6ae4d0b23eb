//! `tgwa run`: configuration, databases, the startup scan and restore, the Telegram
//! dispatcher, and one shutdown signal (SIGINT or SIGTERM) fanned out to every task.

use std::time::Duration;

use anyhow::Context;
use teloxide::adaptors::throttle::Limits;
use teloxide::dispatching::Dispatcher;
use teloxide::error_handlers::LoggingErrorHandler;
use teloxide::prelude::*;
use tokio::sync::watch;
use tracing::{error, info, warn};

use crate::bot::{self, App};
use crate::config::Config;
use crate::manager::AccountManager;

/// Runs the bot until SIGINT or SIGTERM; returns the exit code.
pub fn run(config: Config) -> i32 {
    init_tracing();
    if config.bot_token.is_none() {
        eprintln!(
            "tgwa: TELEGRAM_BOT_TOKEN is not set.\n\
             Create a bot with @BotFather in Telegram (/newbot), copy the token it gives you, and put it in\n\
             .env as TELEGRAM_BOT_TOKEN=123456:ABC... (see .env.example) or export it in the environment."
        );
        return 2;
    }
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("tgwa: cannot start the async runtime: {e}");
            return 1;
        }
    };
    rt.block_on(async move {
        let (tx, rx) = watch::channel(false);
        tokio::spawn(async move {
            wait_for_signal().await;
            info!("shutdown requested");
            let _ = tx.send(true);
        });
        match serve(config, rx).await {
            Ok(()) => 0,
            Err(e) => {
                error!(error = %format!("{e:#}"), "tgwa stopped with an error");
                eprintln!("tgwa: {e:#}");
                1
            }
        }
    })
}

/// Logs to stderr, filtered by `RUST_LOG` (default `info`).
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Resolves on SIGINT or SIGTERM.
async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let term = signal(SignalKind::terminate());
    let int = signal(SignalKind::interrupt());
    match (term, int) {
        (Ok(mut t), Ok(mut i)) => {
            tokio::select! {
                _ = t.recv() => {}
                _ = i.recv() => {}
            }
        }
        _ => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// Everything `run` does, with the shutdown signal as a parameter so tests can start and
/// stop it. Returns when `shutdown` fires and every task has drained.
pub async fn serve(config: Config, shutdown: watch::Receiver<bool>) -> anyhow::Result<()> {
    let token = config.bot_token.clone().context("TELEGRAM_BOT_TOKEN is not set")?;
    let backend = crate::wa::backend_for(&config)
        .await
        .context("starting the WhatsApp backend")?;
    let manager = AccountManager::open(config.clone(), backend)
        .await
        .context("opening the master database")?;
    startup_checks(&manager).await;
    let app = App::new(manager.clone()).context("loading the callback secret")?;
    let mut bot = Bot::new(token);
    if let Some(url) = &config.telegram_api_url {
        bot = bot.set_api_url(url.parse().context("TELEGRAM_API_URL is not a URL")?);
    }
    if config.telegram_throttle {
        serve_with(bot.throttle(Limits::default()), app, shutdown).await
    } else {
        serve_with(bot, app, shutdown).await
    }
}

/// The operator scan and the purge of long-logged-out accounts, before any login.
async fn startup_checks(manager: &AccountManager) {
    startup_scan(manager).await;
    match manager.purge_expired().await {
        Ok(0) => {}
        Ok(n) => info!("moved the files of {n} long logged-out accounts to trash"),
        Err(e) => warn!(error = %e, "purge of old accounts failed"),
    }
}

/// Registers account folders the master database lacks and logs what the scan found.
async fn startup_scan(manager: &AccountManager) {
    use crate::scan::{scan, Outcome, ScanOptions};
    match scan(manager, ScanOptions { dry_run: false }).await {
        Ok(report) => {
            for e in report
                .entries
                .iter()
                .filter(|e| matches!(e.outcome, Outcome::Invalid | Outcome::Orphaned))
            {
                warn!(path = %e.path, outcome = ?e.outcome, reason = e.reason.as_deref().unwrap_or(""), "scan");
            }
            info!(summary = ?report.summary, "startup scan finished");
        }
        Err(e) => warn!(error = %e, "startup scan failed"),
    }
}

/// Runs the dispatcher and the background tasks over any requester (`Throttle<Bot>` in
/// production, a plain `Bot` in tests and benchmarks).
pub async fn serve_with<R>(bot: R, app: App, mut shutdown: watch::Receiver<bool>) -> anyhow::Result<()>
where
    R: bot::flows::Req,
    <R as Requester>::GetUpdates: Send,
{
    let manager = app.manager().clone();
    let config = manager.config().clone();
    let notices = manager.take_notices().context("notices already taken")?;
    bot::set_commands(&bot).await;
    let notifier = tokio::spawn(bot::notify::run(bot.clone(), app.clone(), notices, shutdown.clone()));
    let sweeper = manager.spawn_context_sweeper(shutdown.clone());
    let jobs = app.jobs().clone();
    jobs.set_observer(bot::jobs_ui::observer(bot.clone(), app.clone()));
    let restore = tokio::spawn({
        let m = manager.clone();
        let jobs = jobs.clone();
        async move {
            if let Err(e) = m.restore_all(config.login_timeout, config.login_jitter).await {
                error!(error = %e, "startup restore failed");
            }
            // Jobs a restart interrupted carry on once their accounts are back.
            match jobs.resume_all().await {
                Ok(0) => {}
                Ok(n) => info!("resumed the jobs of {n} accounts"),
                Err(e) => warn!(error = %e, "could not resume jobs"),
            }
        }
    });

    bot::admin::mark_started();
    let heartbeat = crate::http::Heartbeat::new();
    let http = spawn_http(&manager, &heartbeat, shutdown.clone()).await;
    let listener = bot::polling::listener(bot.clone(), heartbeat).await;
    let mut dispatcher = Dispatcher::builder(bot, bot::polling::timed(bot::schema::<R>()))
        .dependencies(dptree::deps![app.clone()])
        .default_handler(|_| async {})
        .error_handler(LoggingErrorHandler::with_custom_text("update handler failed"))
        .build();
    let token = dispatcher.shutdown_token();
    let dispatch = tokio::spawn(async move {
        dispatcher
            .dispatch_with_listener(listener, LoggingErrorHandler::with_custom_text("getUpdates failed"))
            .await
    });
    let dispatch_abort = dispatch.abort_handle();
    let bound = config.shutdown_timeout;
    let stopper = tokio::spawn(async move {
        while !*shutdown.borrow_and_update() {
            if shutdown.changed().await.is_err() {
                break;
            }
        }
        // Handlers in flight get until the bound to finish; then the dispatcher is aborted, so
        // a stuck request can never keep the process (and every session) from stopping.
        let deadline = tokio::time::Instant::now() + bound;
        let stopped = loop {
            match token.shutdown() {
                Ok(done) => break tokio::time::timeout_at(deadline, done).await.is_ok(),
                // The dispatcher refuses to stop before it has started; keep asking a while.
                Err(_) if tokio::time::Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(50)).await,
                Err(_) => break false,
            }
        };
        if !stopped {
            warn!("the dispatcher did not stop within {bound:?}; aborting it");
            dispatch_abort.abort();
        }
    });
    info!("bot is running");
    let _ = dispatch.await;
    let _ = stopper.await;
    info!("dispatcher stopped; disconnecting sessions");
    restore.abort();
    jobs.shutdown(config.shutdown_timeout).await;
    manager.shutdown(config.shutdown_timeout).await;
    let _ = tokio::time::timeout(Duration::from_secs(2), notifier).await;
    sweeper.abort();
    if let Some(h) = http {
        let _ = tokio::time::timeout(Duration::from_secs(2), h).await;
    }
    info!("tgwa stopped");
    Ok(())
}

/// Starts `/health` and `/metrics` on `TGWA_HTTP_ADDR` (unless it is set empty). A port that
/// cannot be bound is logged and the bot runs without it: the bot matters more than its probe.
async fn spawn_http(
    manager: &AccountManager,
    heartbeat: &crate::http::Heartbeat,
    shutdown: watch::Receiver<bool>,
) -> Option<tokio::task::JoinHandle<()>> {
    let config = manager.config();
    let addr = config.http_addr?;
    crate::metrics::install();
    match crate::http::spawn(
        addr,
        manager.clone(),
        heartbeat.clone(),
        config.health_max_age,
        shutdown,
    )
    .await
    {
        Ok((bound, task)) => {
            info!(%bound, "health and metrics listening");
            Some(task)
        }
        Err(e) => {
            warn!(%addr, error = %e, "cannot listen for /health and /metrics");
            None
        }
    }
}
