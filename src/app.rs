//! `tgwa run`: wires configuration, databases, sessions and the Telegram dispatcher.

use crate::config::Config;

/// Runs the bot until SIGINT or SIGTERM; returns the exit code.
pub fn run(config: Config) -> i32 {
    let _ = config;
    eprintln!("tgwa run: not wired yet");
    1
}
