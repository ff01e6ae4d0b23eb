//! The operator command line: `run`, `check`, `import`, `scan`, `accounts`, `cleanup`, `backup`,
//! `restore`.
//!
//! Exit codes: 0 success, 1 runtime failure, 2 bad configuration or arguments. Only `run`
//! needs `TELEGRAM_BOT_TOKEN`; the other commands work on the data directory and the master
//! database alone, on a small current-thread runtime.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::account::Account;
use crate::config::Config;
use crate::scan::{self, Outcome, ScanEntry, ScanOptions, ScanReport};

mod fake;
// --- peer ---
mod proxy;
pub use fake::FakeVerb;
pub use proxy::ProxyVerb;

/// tgwa: one Telegram bot in front of many WhatsApp accounts.
#[derive(Debug, Parser)]
#[command(name = "tgwa", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Operator commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the bot (the default).
    Run,
    /// Preflight: configuration, data directory, master database, secret, and the bot token
    /// (Telegram getMe). Exit 0 ready, 1 Telegram unreachable or a failed check, 2 bad token.
    Check,
    /// Import the Go bot's whatsmeow sessions and master database (originals kept under
    /// `DB USER TELEGRAM/.imported/<timestamp>/`).
    Import {
        /// Convert and check in a scratch folder only; change no file and no row.
        #[arg(long)]
        dry_run: bool,
        /// One JSON object per line, then a summary object.
        #[arg(long)]
        json: bool,
    },
    /// Register account folders the master database lacks; report invalid and orphaned files.
    Scan {
        /// Report only; change no file and no row.
        #[arg(long)]
        dry_run: bool,
        /// One JSON object per line, then a summary object.
        #[arg(long)]
        json: bool,
    },
    /// List accounts with owner and status.
    Accounts {
        /// Print a JSON array.
        #[arg(long)]
        json: bool,
    },
    /// Move orphaned files into `DB USER TELEGRAM/.trash/<timestamp>/`.
    Cleanup {
        /// List what would move; move nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Copy the master database and every account's files, consistently, while the bot runs.
    Backup {
        /// The backup folder (must not exist or be empty); default `backups/<UTC timestamp>`.
        #[arg(long)]
        to: Option<PathBuf>,
    },
    /// Rebuild an empty data directory and master database from a backup folder.
    Restore {
        /// The backup folder (with its manifest.json).
        #[arg(long)]
        from: PathBuf,
    },
    /// Talk to the fake WhatsApp of the `tgwa run` on this data directory (fake builds
    /// only). Exit 0 done, 1 the fake world refused (the reason is printed), 2 no fake is
    /// running there, bad arguments, or a build without the fake.
    Fake {
        #[command(subcommand)]
        verb: FakeVerb,
        /// Print the fake's answer as JSON.
        #[arg(long, global = true)]
        json: bool,
    },
    // --- peer ---
    /// A proxy per WhatsApp account (SOCKS5 or HTTP CONNECT), shown masked; used from the
    /// account's next connection.
    Proxy {
        #[command(subcommand)]
        verb: ProxyVerb,
    },
    /// Write an empty master database at the current schema version (for bot_data.db.example).
    #[command(hide = true)]
    InitMaster {
        /// Where to write it; must not exist.
        path: PathBuf,
    },
}

/// Parses arguments and runs; returns the process exit code (0 ok, 1 failure, 2 bad config).
pub fn main() -> i32 {
    // --- mem20 --- before any SQLite connection opens (SQLite takes no settings after).
    crate::db::configure_sqlite_process();
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return code;
        }
    };
    if let Some(Command::InitMaster { path }) = &cli.command {
        return report(init_master(path));
    }
    let config = match Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("tgwa: {e}");
            return 2;
        }
    };
    let command = cli.command.unwrap_or(Command::Run);
    if let Command::Run = command {
        let fake_socket = fake::socket_of(&config);
        let code = crate::app::run(config);
        // The fake's control socket ends with the runtime; its file goes with the process
        // even when something still held the backend at the end.
        fake::remove_socket(fake_socket.as_deref());
        return code;
    }
    if let Command::Fake { verb, json } = command {
        return fake::run(&config, verb, json);
    }
    crate::app::init_tracing(&config, "warn");
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("tgwa: cannot start the async runtime: {e}");
            return 1;
        }
    };
    let res: anyhow::Result<i32> = rt.block_on(async move {
        match command {
            Command::Import { dry_run, json } => run_import(&config, dry_run, json).await.map(|()| 0),
            Command::Scan { dry_run, json } => run_scan(&config, dry_run, json).await.map(|()| 0),
            Command::Accounts { json } => run_accounts(&config, json).await.map(|()| 0),
            Command::Cleanup { dry_run } => run_cleanup(&config, dry_run).await.map(|()| 0),
            Command::Backup { to } => run_backup(&config, to).await.map(|()| 0),
            Command::Restore { from } => run_restore(&config, from).await.map(|()| 0),
            Command::Check => Ok(crate::preflight::run(&config).await),
            // --- peer ---
            Command::Proxy { verb } => proxy::run(&config, verb).await,
            Command::Run | Command::InitMaster { .. } | Command::Fake { .. } => Ok(0),
        }
    });
    match res {
        Ok(code) => code,
        Err(e) => report(Err(e)),
    }
}

fn report(res: anyhow::Result<()>) -> i32 {
    match res {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("tgwa: {e:#}");
            1
        }
    }
}

async fn run_scan(config: &Config, dry_run: bool, json: bool) -> anyhow::Result<()> {
    use anyhow::Context;
    let report = if dry_run {
        scan::scan_dry_run(config).await?
    } else {
        let backend = crate::wa::backend_for(config)
            .await
            .context("starting the WhatsApp backend")?;
        let manager = crate::manager::AccountManager::open(config.clone(), backend)
            .await
            .context("opening the master database")?;
        scan::scan(&manager, ScanOptions { dry_run: false }).await?
    };
    print_report(&report, json)
}

async fn run_import(config: &Config, dry_run: bool, json: bool) -> anyhow::Result<()> {
    // The backend is started only if an account is to be registered.
    let opts = crate::import::ImportOptions {
        dry_run,
        min_age: config.import_min_age,
    };
    let report = crate::import::run(config, None, opts).await?;
    print_import(&report, json)
}

/// Prints an import report: a table, or JSON lines (entries, then `{"summary": {...}}`).
pub fn print_import(report: &crate::import::ImportReport, json: bool) -> anyhow::Result<()> {
    if json {
        for e in &report.entries {
            println!("{}", serde_json::to_string(e)?);
        }
        println!("{}", serde_json::json!({ "summary": report.summary }));
        return Ok(());
    }
    // The same snake_case words as the JSON output.
    fn word<T: serde::Serialize>(v: &T) -> String {
        serde_json::to_value(v)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default()
    }
    if report.entries.is_empty() {
        println!("nothing to import: no whatsmeow session files and no Go bot master database");
    } else {
        println!(
            "{:<16} {:<9} {:<16} {:<16} PATH / REASON",
            "OUTCOME", "KIND", "TELEGRAM ID", "PHONE"
        );
        for e in &report.entries {
            let tid = e.telegram_id.map(|t| t.to_string()).unwrap_or_else(|| "-".into());
            let mut row = format!(
                "{:<16} {:<9} {tid:<16} {:<16} {}",
                word(&e.outcome),
                word(&e.kind),
                e.phone.as_deref().unwrap_or("-"),
                e.path.escape_debug()
            );
            if let Some(r) = &e.reason {
                row.push_str(&format!(" ({})", r.escape_debug()));
            }
            if let Some(k) = &e.kept_at {
                row.push_str(&format!(" [original kept at {}]", k.escape_debug()));
            }
            println!("{row}");
        }
    }
    let s = &report.summary;
    println!(
        "{}{} whatsmeow sessions: {} imported, {} would import, {} refused; {} Go bot databases {}",
        if s.dry_run { "dry run: " } else { "" },
        s.sessions_found,
        s.imported,
        s.would_import,
        s.refused,
        s.set_aside,
        if s.dry_run { "would be set aside" } else { "set aside" },
    );
    if let Some(d) = &s.imported_dir {
        println!("originals kept in {}", d.escape_debug());
    }
    Ok(())
}

/// Prints a scan report: a table, or JSON lines (entries, then `{"summary": {...}}`).
pub fn print_report(report: &ScanReport, json: bool) -> anyhow::Result<()> {
    if json {
        for e in &report.entries {
            println!("{}", serde_json::to_string(e)?);
        }
        println!("{}", serde_json::json!({ "summary": report.summary }));
        return Ok(());
    }
    if report.entries.is_empty() {
        println!("nothing found in the data directory");
    } else {
        println!(
            "{:<15} {:<9} {:<16} {:<16} PATH / REASON",
            "OUTCOME", "KIND", "TELEGRAM ID", "PHONE"
        );
        for e in &report.entries {
            println!("{}", table_row(e));
        }
    }
    let s = &report.summary;
    println!(
        "{}{} folders, {} files: {} registered now, {} would register, {} already known, {} invalid, {} orphaned",
        if s.dry_run { "dry run: " } else { "" },
        s.folders,
        s.files,
        s.registered_now,
        s.would_register,
        s.already_known,
        s.invalid,
        s.orphaned
    );
    Ok(())
}

fn table_row(e: &ScanEntry) -> String {
    let outcome = match e.outcome {
        Outcome::RegisteredNow => "registered now",
        Outcome::WouldRegister => "would register",
        Outcome::AlreadyKnown => "already known",
        Outcome::Invalid => "invalid",
        Outcome::Orphaned => "orphaned",
    };
    let kind = serde_json::to_value(e.kind)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    let tid = e.telegram_id.map(|t| t.to_string()).unwrap_or_else(|| "-".into());
    // File names come from disk: escape control characters so a name cannot forge lines.
    let path = e.path.escape_debug().to_string();
    let mut row = format!(
        "{outcome:<15} {kind:<9} {tid:<16} {:<16} {path}",
        e.phone.as_deref().unwrap_or("-")
    );
    if let Some(r) = &e.reason {
        row.push_str(&format!(" ({})", r.escape_debug()));
    }
    row
}

/// One row of `tgwa accounts --json`.
#[derive(serde::Serialize)]
struct AccountRow {
    id: i64,
    telegram_id: i64,
    phone: String,
    status: &'static str,
    last_error: Option<String>,
    updated_at: i64,
    updated: String,
}

impl From<&Account> for AccountRow {
    fn from(a: &Account) -> Self {
        Self {
            id: a.id.get(),
            telegram_id: a.telegram_id.get(),
            phone: a.phone.masked(),
            status: a.status.as_str(),
            last_error: a.last_error.clone(),
            updated_at: a.updated_at,
            updated: chrono::DateTime::from_timestamp(a.updated_at, 0)
                .map(|t| t.format("%Y-%m-%d %H:%M:%SZ").to_string())
                .unwrap_or_default(),
        }
    }
}

async fn run_accounts(config: &Config, json: bool) -> anyhow::Result<()> {
    let rows: Vec<AccountRow> = scan::read_master(&config.master_db)
        .await?
        .iter()
        .map(AccountRow::from)
        .collect();
    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    if rows.is_empty() {
        println!("no accounts");
        return Ok(());
    }
    println!(
        "{:>6} {:>16} {:<16} {:<11} {:<20} LAST ERROR",
        "ID", "OWNER", "PHONE", "STATUS", "UPDATED"
    );
    for r in &rows {
        println!(
            "{:>6} {:>16} {:<16} {:<11} {:<20} {}",
            r.id,
            r.telegram_id,
            r.phone,
            r.status,
            r.updated,
            r.last_error.as_deref().unwrap_or("-").escape_debug()
        );
    }
    Ok(())
}

async fn run_cleanup(config: &Config, dry_run: bool) -> anyhow::Result<()> {
    let layout = crate::layout::Layout::new(&config.data_dir);
    let moved = scan::cleanup(&layout, &config.master_db, dry_run).await?;
    let verb = if dry_run { "would move" } else { "moved" };
    for (from, to) in &moved {
        println!(
            "{verb} {} -> {}",
            from.display().to_string().escape_debug(),
            to.display().to_string().escape_debug()
        );
    }
    println!("{verb} {} files", moved.len());
    Ok(())
}

async fn run_backup(config: &Config, to: Option<PathBuf>) -> anyhow::Result<()> {
    let to = to.unwrap_or_else(crate::backup::default_dir);
    let (master, data) = (config.master_db.clone(), config.data_dir.clone());
    let target = to.clone();
    let report = crate::db::blocking(move || Ok(crate::backup::backup(&master, &data, &target))).await??;
    let m = &report.manifest;
    let bytes: u64 = m.files.iter().map(|f| f.bytes).sum();
    for f in &m.failed {
        eprintln!(
            "tgwa: could not copy {}: {}",
            f.source.escape_debug(),
            f.reason.escape_debug()
        );
    }
    println!(
        "backup in {}: {} files, {} bytes, {} failed, {:.2} s",
        report.dir.display().to_string().escape_debug(),
        m.files.len(),
        bytes,
        m.failed.len(),
        report.elapsed.as_secs_f64()
    );
    anyhow::ensure!(
        report.complete(),
        "{} files could not be copied; the backup in {} is incomplete",
        m.failed.len(),
        report.dir.display()
    );
    Ok(())
}

async fn run_restore(config: &Config, from: PathBuf) -> anyhow::Result<()> {
    let (master, data) = (config.master_db.clone(), config.data_dir.clone());
    let report = crate::db::blocking(move || Ok(crate::backup::restore(&from, &master, &data))).await??;
    println!(
        "restored {} files ({} accounts) into {} and {}",
        report.files,
        report.accounts,
        config.data_dir.display().to_string().escape_debug(),
        config.master_db.display().to_string().escape_debug()
    );
    Ok(())
}

/// Writes an empty master database at the current schema version, in rollback-journal mode so
/// it is one self-contained file.
fn init_master(path: &std::path::Path) -> anyhow::Result<()> {
    use anyhow::Context;
    anyhow::ensure!(!path.exists(), "{} already exists", path.display());
    let mut conn = rusqlite::Connection::open(path).with_context(|| format!("creating {}", path.display()))?;
    crate::db::migrate(&mut conn, crate::db::Schema::Master)?;
    conn.execute_batch("VACUUM")?;
    println!(
        "wrote {} (schema version {})",
        path.display(),
        crate::db::Schema::Master.latest()
    );
    Ok(())
}
