//! What every screen shares, below all of them: the handlers' state and the caller
//! ([`app`]), signed buttons ([`callback`], [`buttons`]), prompts and their parsing
//! ([`prompts`]), the account's session or the reason there is none ([`session`]), sending
//! through the limiter ([`send`]), and the user's words ([`i18n`], [`text`]). Nothing here
//! imports a screen or the router.

pub mod app;
pub mod buttons;
pub mod callback;
pub mod i18n;
pub mod prompts;
pub mod send;
pub mod session;
pub mod text;
