//! `tgwa run`: configuration, databases, the startup scan and restore, the Telegram
//! dispatcher, and one shutdown signal (SIGINT or SIGTERM) fanned out to every task.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use teloxide::dispatching::Dispatcher;
use teloxide::error_handlers::LoggingErrorHandler;
use teloxide::prelude::*;
use tokio::sync::watch;
use tracing::{error, info, warn};

use crate::bot::{self, App};
use crate::config::{Config, LogFormat};
use crate::manager::AccountManager;
use crate::telegram::TelegramError;

/// How often the master database's path is checked against the file opened at start-up.
const MASTER_CHECK_EVERY: Duration = Duration::from_secs(2);

/// Runs the bot until SIGINT or SIGTERM; returns the exit code: 0 after a requested
/// shutdown, 2 when Telegram rejects the token, 1 for any other failure (the dispatcher
/// ending on its own, the master database deleted or replaced, a start-up error).
pub fn run(config: Config) -> i32 {
    init_tracing(&config, "info");
    // A write past a file-size limit (`ulimit -f`, a quota) must fail as a full disk does, seen
    // by `/health` and logged, not kill the process in the middle of a send.
    // SAFETY: setting a signal's disposition to "ignore" has no preconditions.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
    }
    raise_open_files_limit();
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
                let shown = crate::ids::mask_digits_in(&format!("{e:#}"));
                error!(error = %shown, "tgwa stopped with an error");
                eprintln!("tgwa: {shown}");
                exit_code(&e)
            }
        }
    })
}

/// Raises the soft open-files limit to the hard one: each account keeps a few descriptors
/// open, and the usual soft default (1,024) is full after about 260 accounts.
fn raise_open_files_limit() {
    match crate::fds::raise_nofile_limit() {
        Ok((before, after)) if before != after => info!("open-files limit raised from {before} to {after}"),
        Ok((_, after)) => info!("open-files limit {after}"),
        Err(e) => warn!(error = %e, "cannot raise the open-files limit"),
    }
}

/// The exit code for an error that stopped `run`: a rejected token is bad configuration.
fn exit_code(e: &anyhow::Error) -> i32 {
    let rejected = e
        .chain()
        .any(|c| c.downcast_ref::<TelegramError>() == Some(&TelegramError::TokenRejected));
    let foreign = e.chain().any(|c| c.downcast_ref::<ForeignMaster>().is_some());
    if rejected || foreign {
        2
    } else {
        1
    }
}

/// `TGWA_MASTER_DB` names an SQLite file that is neither tgwa's nor the Go bot's: bad
/// configuration (exit 2), and the file is left as it is.
#[derive(Debug, thiserror::Error)]
#[error(
    "TGWA_MASTER_DB {0} is an SQLite database that is neither tgwa's nor the Go bot's; it is left untouched: point TGWA_MASTER_DB at another file"
)]
pub struct ForeignMaster(String);

/// Refuses a master database path that holds someone else's SQLite file, before anything
/// (the import, the migrations) could add tables to it.
async fn refuse_foreign_master(config: &Config) -> anyhow::Result<()> {
    let path = config.master_db.clone();
    let kind = crate::db::blocking(move || Ok(crate::import::gobot::master_kind(&path))).await?;
    match kind {
        Ok(crate::import::gobot::DbKind::Unknown) => Err(ForeignMaster(config.master_db.display().to_string()).into()),
        _ => Ok(()),
    }
}

/// Logs to stderr, filtered by `RUST_LOG` (`default_filter` when unset or unusable), as
/// `TGWA_LOG_FORMAT` says; colour codes only when stderr is a terminal, so files and
/// journald get plain text. Every line goes through [`MaskingWriter`]: the `log` records of
/// whatsapp-rust and every other crate land here too, so no phone number reaches the log in
/// full whoever wrote the line.
pub fn init_tracing(config: &Config, default_filter: &str) {
    use std::io::IsTerminal;
    let ansi = std::io::stderr().is_terminal();
    use tracing_subscriber::util::SubscriberInitExt;
    // `try_init` also routes the `log` crate's records (whatsapp-rust logs through it) here.
    let _ = subscriber(config, default_filter, MaskingWriter(std::io::stderr), ansi).try_init();
}

/// The subscriber [`init_tracing`] installs, writing through `writer`.
pub fn subscriber<W>(
    config: &Config,
    default_filter: &str,
    writer: W,
    ansi: bool,
) -> Box<dyn tracing::Subscriber + Send + Sync>
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    let filter = config
        .log_filter
        .as_deref()
        .and_then(|f| tracing_subscriber::EnvFilter::try_new(f).ok())
        .unwrap_or_else(|| tracing_subscriber::EnvFilter::new(default_filter));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(writer);
    match config.log_format {
        LogFormat::Pretty => Box::new(builder.with_ansi(ansi).finish()),
        LogFormat::Json => Box::new(builder.json().with_ansi(false).finish()),
    }
}

/// A log writer that masks phone numbers ([`crate::ids::mask_phones_in`]) in each formatted
/// line before it reaches `W`'s output. The formatter hands over one whole event per write,
/// so a number is never split between two writes.
#[derive(Clone, Copy)]
pub struct MaskingWriter<F>(pub F);

impl<'w, F, W> tracing_subscriber::fmt::MakeWriter<'w> for MaskingWriter<F>
where
    F: Fn() -> W + 'static,
    W: std::io::Write,
{
    type Writer = MaskedLine<W>;
    fn make_writer(&'w self) -> Self::Writer {
        MaskedLine((self.0)())
    }
}

/// One event's output, masked on its way to `W`.
pub struct MaskedLine<W>(W);

impl<W: std::io::Write> std::io::Write for MaskedLine<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        let masked = crate::ids::mask_phones_in(&text, &crate::ids::LOG_ID_LABELS);
        self.0.write_all(masked.as_bytes())?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
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
    refuse_foreign_master(&config).await?;
    let backend = crate::wa::backend_for(&config)
        .await
        .context("starting the WhatsApp backend")?;
    // Before the master database is opened (it may still be the Go bot's) and before the scan.
    crate::import::at_startup(&config, backend.clone()).await;
    let manager = AccountManager::open(config.clone(), backend)
        .await
        .context("opening the master database")?;
    // The secret first: a corrupt one stops start-up before anything is changed.
    let app = App::new(manager.clone()).context("loading the callback secret")?;
    startup_checks(&manager).await;
    let mut bot = telegram_bot(token, config.telegram_timeout)?;
    if let Some(url) = &config.telegram_api_url {
        bot = bot.set_api_url(url.parse().context("TELEGRAM_API_URL is not a URL")?);
    }
    // `TGWA_TELEGRAM_THROTTLE` paces calls per chat inside `bot::send` (the manager's
    // limiter, `telegram::limiter`), not with teloxide's `Throttle`, which stops every chat when
    // one of them gets a 429.
    serve_with(bot, app, shutdown).await
}

/// The Bot API client, each request bounded by `timeout` (`TGWA_TELEGRAM_TIMEOUT_MS`).
fn telegram_bot(token: String, timeout: Duration) -> anyhow::Result<Bot> {
    // teloxide's own default (17 s) goes through `Bot::new`, which also honours
    // `TELOXIDE_PROXY`; another bound needs a client of our own.
    if timeout == Duration::from_secs(17) {
        return Ok(Bot::new(token));
    }
    let client = teloxide::net::default_reqwest_settings()
        .timeout(timeout)
        .build()
        .context("building the Telegram HTTP client")?;
    Ok(Bot::with_client(token, client))
}

/// The operator scan and the purge of long-logged-out accounts, before any login.
async fn startup_checks(manager: &AccountManager) {
    startup_scan(manager).await;
    match manager.purge_expired().await {
        Ok(0) => {}
        Ok(n) => info!("moved the files of {n} long logged-out accounts to trash"),
        Err(e) => warn!(error = %crate::ids::mask_digits_in(&e.to_string()), "purge of old accounts failed"),
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
                warn!(
                    path = %crate::layout::mask_path(Path::new(&e.path)),
                    outcome = ?e.outcome,
                    reason = %crate::ids::mask_digits_in(e.reason.as_deref().unwrap_or("")),
                    "scan"
                );
            }
            info!(summary = ?report.summary, "startup scan finished");
        }
        Err(e) => warn!(error = %crate::ids::mask_digits_in(&e.to_string()), "startup scan failed"),
    }
}

/// Runs the dispatcher and the background tasks over any requester (a plain `Bot` in
/// production, tests and benchmarks; pacing is the manager's limiter).
///
/// Nothing starts until Telegram answers `getMe` (retried with backoff; a rejected token is
/// an error). Returns `Ok` after `shutdown`; an error, after the same bounded shutdown of
/// every session, when the dispatcher ends on its own or the master database is deleted or
/// replaced under the process: never a process without its bot or its database.
pub async fn serve_with<R>(bot: R, app: App, mut shutdown: watch::Receiver<bool>) -> anyhow::Result<()>
where
    R: bot::Req,
    <R as Requester>::GetUpdates: Send,
{
    let manager = app.manager().clone();
    let config = manager.config().clone();
    match crate::telegram::wait_until_reachable(&bot, &mut shutdown).await {
        Ok(Some(_)) => {}
        Ok(None) => {
            info!("shutdown requested before Telegram answered");
            manager.shutdown(config.shutdown_timeout).await;
            return Ok(());
        }
        Err(e) => {
            manager.shutdown(config.shutdown_timeout).await;
            return Err(e.into());
        }
    }
    let notices = manager.take_notices().context("notices already taken")?;
    // Why the process must stop on its own (the master database went away); `None` while fine.
    let (fatal_tx, fatal_rx) = watch::channel::<Option<String>>(None);
    let watcher = match FileIdentity::of(&config.master_db) {
        Ok(id) => Some(tokio::spawn(watch_master(config.master_db.clone(), id, fatal_tx))),
        Err(e) => {
            warn!(error = %e, "cannot watch the master database file");
            None
        }
    };
    bot::set_commands(&bot).await;
    let notifier = tokio::spawn(bot::notify::run(bot.clone(), app.clone(), notices, shutdown.clone()));
    let sweeper = manager.spawn_context_sweeper(shutdown.clone());
    // --- media2 ---: files of prompts that expired unanswered.
    let prompt_files = tokio::spawn(bot::media::expire_prompt_files(app.clone(), shutdown.clone()));
    // The digest waits for the startup logins, so accounts still logging in are not reported
    // offline.
    let (restored_tx, restored_rx) = watch::channel(false);
    // --- sched ---
    let schedule_ready = restored_rx.clone();
    let digest = tokio::spawn(bot::digest::run(
        bot.clone(),
        app.clone(),
        restored_rx,
        shutdown.clone(),
    ));
    let jobs = app.jobs().clone();
    jobs.set_observer(bot::jobs::observer(bot.clone(), app.clone()));
    // --- sched ---: one scheduler per process; it loads the schedule once the accounts are
    // back, and starts each job at its time.
    let scheduler = tokio::spawn(crate::schedule::run(
        jobs.clone(),
        config.clock.clone(),
        schedule_ready,
        shutdown.clone(),
    ));
    // Its own stop signal: it must also stop when the dispatcher ends on its own.
    let (announcer_stop, announcer_rx) = watch::channel(false);
    let announcer = tokio::spawn(
        app.announcements()
            .clone()
            .run(bot::announcements::outlet(bot.clone(), app.clone()), announcer_rx),
    );
    let (inbox_stop, inbox_rx) = watch::channel(false);
    let inbox = tokio::spawn(bot::inbox::run(bot.clone(), app.clone(), inbox_rx));
    let restore = tokio::spawn({
        let m = manager.clone();
        let jobs = jobs.clone();
        async move {
            if let Err(e) = m.restore_all(config.login_timeout, config.login_jitter).await {
                error!(error = %crate::ids::mask_digits_in(&e.to_string()), "startup restore failed");
            }
            let _ = restored_tx.send(true);
            // Jobs a restart interrupted carry on once their accounts are back.
            match jobs.resume_all().await {
                Ok(0) => {}
                Ok(n) => info!("resumed the jobs of {n} accounts"),
                Err(e) => warn!(error = %e, "could not resume jobs"),
            }
            // --- media2 ---: files no job, draft or template needs any more.
            if let Err(e) = crate::jobs::media_files::sweep(&m, crate::jobs::media_files::SWEEP_GRACE).await {
                warn!(error = %e, "media sweep failed");
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
    // `try_dispatch_with_listener` returns the error of its own `getMe` instead of panicking.
    let dispatch = tokio::spawn(async move {
        dispatcher
            .try_dispatch_with_listener(
                listener,
                LoggingErrorHandler::with_custom_text("the Telegram update listener failed"),
            )
            .await
    });
    let dispatch_abort = dispatch.abort_handle();
    let bound = config.shutdown_timeout;
    // Set before the dispatcher is asked to stop: a dispatcher that ends without it ended on
    // its own.
    let stopping = Arc::new(AtomicBool::new(false));
    let stopper = tokio::spawn({
        let stopping = stopping.clone();
        let mut fatal_rx = fatal_rx.clone();
        async move {
            tokio::select! {
                _ = requested(&mut shutdown) => {}
                _ = fatal(&mut fatal_rx) => {}
            }
            stopping.store(true, Ordering::SeqCst);
            // Handlers in flight get until the bound to finish; then the dispatcher is
            // aborted, so a stuck request can never keep the process (and every session) from
            // stopping.
            let deadline = tokio::time::Instant::now() + bound;
            let stopped = loop {
                match token.shutdown() {
                    Ok(done) => break tokio::time::timeout_at(deadline, done).await.is_ok(),
                    // The dispatcher refuses to stop before it has started; keep asking a while.
                    Err(_) if tokio::time::Instant::now() < deadline => {
                        tokio::time::sleep(Duration::from_millis(50)).await
                    }
                    Err(_) => break false,
                }
            };
            if !stopped {
                warn!("the dispatcher did not stop within {bound:?}; aborting it");
                dispatch_abort.abort();
            }
        }
    });
    info!("bot is running");
    let ended = dispatch.await;
    let own_end = if stopping.load(Ordering::SeqCst) {
        let _ = stopper.await;
        None
    } else {
        stopper.abort();
        let why = match ended {
            Ok(Ok(())) => "it returned".to_string(),
            Ok(Err(e)) => format!("getMe failed: {e}"),
            Err(e) if e.is_panic() => "it panicked".to_string(),
            Err(e) => e.to_string(),
        };
        error!(reason = %why, "the Telegram dispatcher ended on its own; stopping every session");
        Some(why)
    };
    info!("dispatcher stopped; disconnecting sessions");
    restore.abort();
    // --- sched ---: nothing more starts; a job it started is the engine's to stop.
    scheduler.abort();
    prompt_files.abort();
    if let Some(w) = watcher {
        w.abort();
    }
    // The send in flight finishes and is recorded; one that hangs is cut off (its recipient
    // is then `unknown` at the next start, never sent twice).
    let _ = announcer_stop.send(true);
    if tokio::time::timeout(config.shutdown_timeout + config.telegram_timeout, announcer)
        .await
        .is_err()
    {
        warn!("the announcement worker did not stop in time");
    }
    // Likewise the inbox's forward in flight: finished and recorded, or cut off (`unknown`).
    let _ = inbox_stop.send(true);
    if tokio::time::timeout(config.shutdown_timeout + config.telegram_timeout, inbox)
        .await
        .is_err()
    {
        warn!("the inbox forwarder did not stop in time");
    }
    jobs.shutdown(config.shutdown_timeout).await;
    manager.shutdown(config.shutdown_timeout).await;
    let _ = tokio::time::timeout(Duration::from_secs(2), notifier).await;
    sweeper.abort();
    digest.abort();
    if let Some(h) = http {
        let _ = tokio::time::timeout(Duration::from_secs(2), h).await;
    }
    let fatal_reason = fatal_rx.borrow().clone();
    if let Some(why) = own_end {
        anyhow::bail!("the Telegram dispatcher ended on its own ({why}); every session was disconnected");
    }
    if let Some(why) = fatal_reason {
        anyhow::bail!("{why}; every session was disconnected");
    }
    info!("tgwa stopped");
    Ok(())
}

/// Resolves once `shutdown` is (or becomes) true; never if its sender is gone.
async fn requested(shutdown: &mut watch::Receiver<bool>) {
    while !*shutdown.borrow_and_update() {
        if shutdown.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// Resolves once a fatal reason is set; never if its sender is gone without one.
async fn fatal(rx: &mut watch::Receiver<Option<String>>) {
    while rx.borrow_and_update().is_none() {
        if rx.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// Which file a path names: its device and inode. SQLite keeps writing into the file it
/// opened, so a master database deleted or replaced under a running process would swallow
/// every write (and a restart would find none of it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileIdentity {
    dev: u64,
    ino: u64,
}

impl FileIdentity {
    fn of(path: &Path) -> std::io::Result<Self> {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(path)?;
        Ok(Self {
            dev: m.dev(),
            ino: m.ino(),
        })
    }
}

/// Checks every few seconds that `path` still names the master database opened at start-up;
/// when it is gone or another file took its place, sets the reason the process must stop.
async fn watch_master(path: PathBuf, opened: FileIdentity, fatal: watch::Sender<Option<String>>) {
    let shown = path.display().to_string();
    loop {
        tokio::time::sleep(MASTER_CHECK_EVERY).await;
        let p = path.clone();
        let now = tokio::task::spawn_blocking(move || FileIdentity::of(&p)).await;
        let reason = match now {
            Ok(Ok(id)) if id == opened => continue,
            Ok(Ok(_)) => format!("the master database {shown} was replaced by another file while tgwa was running"),
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::NotFound => {
                format!("the master database {shown} was deleted while tgwa was running")
            }
            // Anything else (a permission change, a busy disk) may pass: look again later.
            Ok(Err(e)) => {
                warn!(error = %e, "cannot check the master database file");
                continue;
            }
            Err(_) => continue,
        };
        error!(%reason, "stopping: restore the master database from a backup, then start tgwa again");
        let _ = fatal.send(Some(reason));
        return;
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::sync::Mutex;

    /// A log sink the test reads back.
    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn logged(format: &str, emit: impl FnOnce()) -> String {
        let vars: HashMap<String, String> = [("TGWA_LOG_FORMAT".to_string(), format.to_string())].into();
        let config = Config::from_map(&vars).unwrap();
        let sink = Sink::default();
        let out = sink.clone();
        let sub = subscriber(&config, "info", MaskingWriter(move || out.clone()), false);
        tracing::subscriber::with_default(sub, emit);
        let bytes = sink.0.lock().unwrap().clone();
        String::from_utf8(bytes).unwrap()
    }

    #[test]
    fn every_crates_log_lines_have_phone_numbers_masked() {
        for format in ["pretty", "json"] {
            let text = logged(format, || {
                // What whatsapp-rust 0.7 logs at INFO (`pair_code.rs`, `lid_pn.rs`).
                info!(target: "whatsapp_rust::pair_code", "Starting pair code authentication for phone: 6281312345678");
                info!(target: "whatsapp_rust::client::lid_pn", "Migrated identity 6281312345678.0 -> 98765432109876@lid");
                warn!(target: "some_crate", phone = "+62 813-1234-5678", telegram_id = 5123456789_i64, "typed by a user");
            });
            assert!(!text.contains("6281312345678"), "{format}: {text}");
            assert!(!text.contains("813-1234-5678"), "{format}: {text}");
            assert!(!text.contains("98765432109876"), "{format}: {text}");
            assert!(text.contains("62*******5678"), "{format}: {text}");
            assert!(
                text.contains("5123456789"),
                "{format}: the Telegram ID stays readable: {text}"
            );
        }
    }
}
