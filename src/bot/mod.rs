//! The Telegram front-end. Every update is resolved to its caller (`from.id`, never the chat)
//! and that caller's own accounts; nothing here holds a "current account".
//!
//! Arranged by screen, with imports running one way:
//!
//! - [`router`]: the handler tree, the account guard, and where each command, button and
//!   answered prompt goes: routing in one place. It imports the screens; no screen imports it.
//! - the screens and flows, one file each: [`menu`], [`accounts`], [`pairing`],
//!   [`group_list`], [`group_page`], [`members`], [`messages`] (sending and broadcasts),
//!   [`jobs`], [`schedule`], [`templates`], [`inbox`], [`admin`], [`announcements`],
//!   [`proxy_admin`]; and what runs beside the updates: [`notify`], [`digest`], [`media`],
//!   [`polling`]. A screen may open a screen below it (a group's page offers its members
//!   and proposes jobs), never one that opens it back.
//! - [`kit`]: what every screen shares (the handlers' state, buttons, prompts, sending,
//!   texts and i18n). It imports no screen.

pub mod accounts;
pub mod admin;
pub mod announcements;
pub mod digest;
pub mod group_list;
pub mod group_page;
pub mod inbox;
pub mod jobs;
pub mod kit;
pub mod media;
pub mod members;
pub mod menu;
pub mod messages;
pub mod notify;
pub mod pairing;
pub mod polling;
pub mod proxy_admin;
pub mod router;
pub mod schedule;
pub mod templates;

pub use kit::app::{App, Caller, Pending, Req};
pub use kit::{callback, i18n, send};
pub use router::{commands, schema, set_commands};
