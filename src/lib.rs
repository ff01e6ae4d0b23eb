//! tgwa: one Telegram bot in front of many WhatsApp accounts.
//!
//! # Layout
//! - [`config`]: the typed configuration from the environment.
//! - [`ids`]: `TelegramId`, `PhoneNumber`, `AccountId`: parsed, never merely validated.
//! - [`layout`]: where files live under `DB USER TELEGRAM/`.
//! - [`db`]: SQLite pools, migrations, the bounded pool cache, the blocking helper.
//! - [`account`]: the master database's accounts, users and audit log.
//! - [`manager`]: `AccountManager`, the owner-checked registry of accounts, and the hooks told when one ends.
//! - [`live`]: the live sessions registry, the notice channel and the pairing cooldowns.
//! - [`supervisor`]: one task per live WhatsApp session.
//! - [`scan`]: the operator scan and cleanup of the data directory.
//! - [`import`]: moving from the Go bot: its whatsmeow sessions and master database.
//! - [`wa`]: the WhatsApp seam, with the real adapter and the simulator.
//! - [`text`]: CSV cells safe for spreadsheets; uploaded text files in any common encoding.
//! - [`telegram`]: reaching the Bot API before serving (`getMe` with backoff or a timeout).
//! - [`preflight`]: `tgwa check`, the configuration, data directory and token checked at once.
//! - [`app`]: `tgwa run`, wiring everything together.
//! - [`cli`]: the operator command line.
//! - [`http`]: the `/health` and `/metrics` listener.
//! - [`metrics`]: metric names and recording helpers.
//! - [`announcement`]: the operators' announcements to every user, paced, resumable, sent once.
//! - [`backup`]: `tgwa backup` and `tgwa restore`: consistent copies of every database.
//! - [`inbox`]: incoming WhatsApp messages kept per account and forwarded to their owner.
//! - [`schedule`]: the clock, the times users type, and the task that starts scheduled jobs.
//! - [`recipients`]: broadcast recipient lists with a name per number.
//! - [`templates`]: broadcast texts saved per account.
//! - [`members`]: group member exports as spreadsheet rows and contact cards.
//! - [`media_files`]: the files broadcasts and templates carry, who needs each, and the start-up sweep (media2).
//! - [`proxy`]: an account's SOCKS5 / HTTP CONNECT proxy: parsing, storage, always printed masked (issue 21).

pub mod account;
pub mod announcement;
pub mod app;
pub mod backup;
pub mod bot;
pub mod cli;
pub mod clock;
pub mod config;
pub mod contacts;
pub mod db;
pub mod fds;
pub mod http;
pub mod ids;
pub mod import;
pub mod inbox;
pub mod jobs;
pub mod layout;
pub mod live;
pub mod manager;
pub mod members;
pub mod metrics;
pub mod preflight;
pub mod recipients;
// --- peer ---
pub mod proxy;
pub mod scan;
pub mod schedule;
pub mod supervisor;
pub mod telegram;
pub mod templates;
pub mod text;
pub mod wa;
