//! What the server enforces on an account: bans and locks at login, the reach-out timelock
//! (463) and one-off nacks on messages, rate limits on usync and group operations.
//!
//! Each rule cites where its shape comes from. What the server sends on the live stream at
//! the moment of a ban is not in any client's source: peers report the stream ending and the
//! next login failing (WAHA #1362, Baileys #1248); the fake ends it with the `503` stream
//! error that whatsmeow and whatsapp-rust both treat as "reconnect", so the refusal comes
//! where the clients read it, in `<failure>` at login.

use serde::{Deserialize, Serialize};
use wacore_binary::builder::NodeBuilder;
use wacore_binary::Node;

use crate::world::{now, Account};

/// How WhatsApp stops an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Ban {
    /// A temporary ban: logins fail with `<failure reason="402" code=.. expire=..>` for
    /// `secs` seconds (whatsmeow `handleConnectFailure`, `ConnectFailureTempBanned`, reads
    /// `code` and `expire`, a duration in seconds; wacore `ConnectFailureStanza` the same).
    Temporary {
        /// The ban's sub-reason (`TempBanReason`: 101 sent to too many, 102 blocked by
        /// too many, ...).
        code: u32,
        /// How long it lasts from now.
        secs: u64,
    },
    /// The account is locked: `<failure reason="403">` with the `logout_message_*`
    /// attributes whatsmeow logs for 403 and wacore `ConnectFailureStanza` reads (WA Web's
    /// `REASON_LOCKED`).
    Locked,
    /// The number is banned: `<failure reason="406">` (wacore `UnknownLogout`, one of the
    /// logged-out reasons of `ConnectFailureReason::is_logged_out`).
    Banned,
}

/// What a rate limit applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateScope {
    /// Contact and device queries (`usync`).
    Usync,
    /// Group create, add and join (`w:g2`).
    Groups,
}

/// A ban in force on an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Enforcement {
    pub ban: Ban,
    /// Unix seconds when a temporary ban ends (0 for the others).
    pub until: u64,
}

impl Enforcement {
    pub(crate) fn new(ban: Ban) -> Self {
        let until = match ban {
            Ban::Temporary { secs, .. } => now() + secs,
            _ => 0,
        };
        Self { ban, until }
    }

    /// The `<failure>` a login gets while this is in force; `None` once a temporary ban
    /// ended.
    pub(crate) fn failure(&self) -> Option<Node> {
        let b = match self.ban {
            Ban::Temporary { code, .. } => {
                let left = self.until.checked_sub(now()).filter(|l| *l > 0)?;
                NodeBuilder::new("failure")
                    .attr("reason", "402")
                    .attr("code", code.to_string())
                    .attr("expire", left.to_string())
            }
            // The attribute names are the ones WA Web's `failureParser` reads (wacore
            // `connect_failure.rs`); the text is the fake's own: no source gives the words.
            Ban::Locked => NodeBuilder::new("failure")
                .attr("reason", "403")
                .attr("logout_message_header", "Your account is locked")
                .attr("logout_message_subtext", "Open WhatsApp on your phone to continue")
                .attr("logout_message_locale", "en"),
            Ban::Banned => NodeBuilder::new("failure").attr("reason", "406"),
        };
        Some(b.attr("location", "fake").build())
    }
}

impl Account {
    /// The `<failure>` a login of this account gets now because of a ban, if any.
    pub(crate) fn ban_failure(&self) -> Option<Node> {
        self.enforcement.as_ref().and_then(Enforcement::failure)
    }

    /// Whether the account's `scope` is rate-limited now.
    pub(crate) fn rate_limited(&self, scope: RateScope) -> bool {
        let until = match scope {
            RateScope::Usync => self.usync_limited_until,
            RateScope::Groups => self.groups_limited_until,
        };
        until > now()
    }

    /// Whether the reach-out timelock is in force now.
    pub(crate) fn timelocked(&self) -> bool {
        self.timelock_until > now()
    }
}

/// `<iq type="error"><error code="429" text="rate-overlimit"/>` answering `req`: the
/// IQ-level rate limit (whatsmeow `errors.go`: `ErrIQRateOverLimit`, code 429, text
/// "rate-overlimit").
pub(crate) fn rate_overlimit(req: &Node) -> Node {
    crate::world::error(req, 429, "rate-overlimit")
}
