//! tgwa: one Telegram bot in front of many WhatsApp accounts.
//!
//! # Layout
//! - [`config`]: the typed configuration from the environment.
//! - [`ids`]: `TelegramId`, `PhoneNumber`, `AccountId`: parsed, never merely validated.
//! - [`layout`]: where files live under `DB USER TELEGRAM/`.
//! - [`db`]: SQLite pools, migrations, the bounded pool cache, the blocking helper.
//! - [`account`]: the master database's accounts, users and audit log.
//! - [`manager`]: `AccountManager`, the owner-checked registry of accounts.
//! - [`supervisor`]: one task per live WhatsApp session.
//! - [`scan`]: the operator scan and cleanup of the data directory.
//! - [`wa`]: the WhatsApp seam, with the real adapter and the simulator.
//! - [`app`]: `tgwa run`, wiring everything together.
//! - [`cli`]: the operator command line.
//! - [`http`]: the `/health` and `/metrics` listener.
//! - [`metrics`]: metric names and recording helpers.
//! - [`backup`]: `tgwa backup` and `tgwa restore`: consistent copies of every database.

pub mod account;
pub mod app;
pub mod backup;
pub mod bot;
pub mod cli;
pub mod config;
pub mod db;
pub mod http;
pub mod ids;
pub mod jobs;
pub mod layout;
pub mod manager;
pub mod metrics;
pub mod scan;
pub mod supervisor;
pub mod wa;
