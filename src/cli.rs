//! The operator command line: `run`, `scan`, `accounts`, `cleanup`.

use clap::{Parser, Subcommand};

use crate::config::Config;

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
}

/// Parses arguments and runs; returns the process exit code (0 ok, 1 failure, 2 bad config).
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return code;
        }
    };
    let config = match Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("tgwa: {e}");
            return 2;
        }
    };
    let _ = (cli, config);
    0
}
