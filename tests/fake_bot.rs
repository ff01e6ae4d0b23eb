//! The Telegram front-end suite of `tests/bot.rs`, run again with the real whatsapp-rust
//! adapter over the fake WhatsApp server (the binary's `fake_` name picks the backend; see
//! `support::app::test_backend`). A file of its own so that Cargo never sees one source in two
//! targets.

#[path = "bot.rs"]
mod suite;
