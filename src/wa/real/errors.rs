//! Turns whatsapp-rust failures into [`WaError`], so the caller gets the right [`Advice`]
//! (retry, re-pair or give up) without knowing the library's error types.
//!
//! The library's [`ErrorChainExt`] walks an error's source chain and answers the questions
//! that matter here (did the server refuse, with which code; did we time out; was the
//! connection gone), so one classifier serves groups, messages and contacts alike.
//!
//! [`Advice`]: crate::wa::Advice

use std::error::Error as StdError;
use std::time::Duration;

use whatsapp_rust::pair_code::{PairCodeError, PairCodeRejection, PairError};
use whatsapp_rust::ErrorChainExt;

use crate::wa::WaError;

/// Classifies any whatsapp-rust error. `what` names the operation for the message.
pub fn classify<E>(err: &E, what: &str) -> WaError
where
    E: StdError + 'static,
{
    classify_dyn(err, what)
}

/// [`classify`] for an error already behind `dyn Error`.
pub fn classify_dyn(err: &(dyn StdError + 'static), what: &str) -> WaError {
    if let Some(r) = err.server_rejection() {
        return from_server_code(r.code, r.text, r.backoff, what);
    }
    if err.is_timeout() {
        return WaError::Timeout;
    }
    if err.is_transport_unavailable() {
        return WaError::NotConnected;
    }
    if let Some(store) = err.store_failure() {
        return WaError::Storage(format!("{what}: {store}"));
    }
    let text = innermost(err);
    // A result-level usync error (`<usync><result>` carrying an error; wacore's
    // `reject_result_errors`) reaches us only as "usync <protocol> error <code>[: text]"; its
    // backoff is not kept. The code still says what to do: 429 is a rate limit, not "other".
    if let Some((code, detail)) = usync_result_code(&text) {
        return from_server_code(code, detail, None, what);
    }
    // The client refuses requests before login with a typed "not logged in"; it has no
    // chain-level query, so the message is all there is.
    if text.contains("not logged in") || text.contains("not connected") {
        return WaError::NotConnected;
    }
    WaError::Other(format!("{what}: {text}"))
}

/// A server `<error code=.. text=..>` as a [`WaError`]. The codes are XMPP-style and the
/// same across WhatsApp's IQ namespaces.
pub fn from_server_code(code: u16, text: &str, backoff: Option<u32>, what: &str) -> WaError {
    let detail = if text.is_empty() {
        format!("{what}: WhatsApp answered {code}")
    } else {
        format!("{what}: WhatsApp answered {code} {text}")
    };
    match code {
        // A message nack: the account may not start chats with strangers (reach-out
        // timelock / missing privacy token; whatsmeow #1074, Baileys #2688), 479 the same
        // family. Retrying sends the same refused message again, which is what gets numbers
        // banned.
        463 | 479 => WaError::ReachOutLimited { until: None },
        429 => WaError::RateLimited {
            retry_after: backoff.map(|s| Duration::from_secs(u64::from(s))),
        },
        // 401 on an IQ is "not-authorized": not an admin, not a member, privacy.
        401 | 403 | 405 | 419 => WaError::Forbidden(detail),
        404 | 410 => WaError::NotFound(detail),
        400 | 406 | 409 | 413 => WaError::Invalid(detail),
        // 5xx and anything new: the server's problem, worth another try.
        _ => WaError::Other(detail),
    }
}

/// A failed pairing-code request. Throttling (the server says 429, or 400 which it also
/// uses for per-number rate limiting) becomes `RateLimited` with the server's backoff.
pub fn from_pair_error(err: &PairError) -> WaError {
    if let Some(rejection) = err.rejection() {
        if rejection.is_throttled() {
            return WaError::RateLimited {
                retry_after: err.backoff(),
            };
        }
        return match rejection {
            PairCodeRejection::Forbidden | PairCodeRejection::FeatureNotAvailable => {
                WaError::Forbidden(format!("pairing code refused: {err}"))
            }
            _ => WaError::Other(format!("pairing code refused: {err}")),
        };
    }
    match err {
        PairError::PairCode(
            PairCodeError::PhoneNumberRequired
            | PairCodeError::PhoneNumberTooShort
            | PairCodeError::PhoneNumberNotInternational
            | PairCodeError::InvalidCustomCode,
        ) => WaError::Invalid(err.to_string()),
        // Another code is still live: the caller may ask again once it expires.
        PairError::PairCode(PairCodeError::CodeAlreadyOutstanding { remaining }) => WaError::RateLimited {
            retry_after: Some(*remaining),
        },
        _ => classify(err, "pairing code"),
    }
}

/// The code and text of wacore's message for a result-level usync error,
/// `usync contact error 429: rate-overlimit`.
fn usync_result_code(text: &str) -> Option<(u16, &str)> {
    let rest = text.strip_prefix("usync ")?;
    let (_, after) = rest.split_once(" error ")?;
    let (code, detail) = after.split_once(": ").unwrap_or((after, ""));
    Some((code.trim().parse().ok()?, detail))
}

/// The deepest message in the chain: wrapping variants repeat their inner text, so the
/// innermost is the most specific and avoids "x: x: x".
fn innermost(err: &(dyn StdError + 'static)) -> String {
    let mut last = err;
    while let Some(next) = last.source() {
        last = next;
    }
    last.to_string()
}

/// A participant's `error` code from a group change, in words for the owner.
pub fn describe_participant_error(code: &str) -> String {
    let words = match code {
        "401" => "not allowed (this account is not an admin)",
        "403" => "their privacy settings do not allow being added; an invite is needed",
        "404" => "not on WhatsApp",
        "406" => "not allowed (the number was blocked or is invalid)",
        "408" => "they left the group recently and cannot be re-added yet",
        "409" => "already in the group (or already in that role)",
        "419" => "the group is full",
        "500" => "WhatsApp server error",
        _ => return format!("WhatsApp refused ({code})"),
    };
    format!("{words} ({code})")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wa::Advice;

    #[test]
    fn server_codes_have_the_right_advice() {
        assert!(matches!(
            from_server_code(429, "rate-overlimit", Some(30), "x"),
            WaError::RateLimited { retry_after: Some(d) } if d == Duration::from_secs(30)
        ));
        assert_eq!(from_server_code(403, "forbidden", None, "x").advice(), Advice::GiveUp);
        assert_eq!(from_server_code(401, "", None, "x").advice(), Advice::GiveUp);
        assert!(matches!(
            from_server_code(404, "item-not-found", None, "x"),
            WaError::NotFound(_)
        ));
        assert!(matches!(
            from_server_code(400, "bad-request", None, "x"),
            WaError::Invalid(_)
        ));
        assert_eq!(from_server_code(500, "internal", None, "x").advice(), Advice::Retry);
        assert_eq!(from_server_code(503, "", None, "x").advice(), Advice::Retry);
        for code in [463, 479] {
            let e = from_server_code(code, "", None, "sending a message");
            assert!(matches!(e, WaError::ReachOutLimited { until: None }), "{code}");
            assert_eq!(e.advice(), Advice::GiveUp, "{code}");
        }
    }

    /// Every code the server is known to send maps to exactly one advice, none of them
    /// "retry" unless the same call can work later.
    #[test]
    fn every_code_has_one_advice() {
        let table: &[(u16, Advice)] = &[
            (400, Advice::GiveUp),
            (401, Advice::GiveUp),
            (403, Advice::GiveUp),
            (404, Advice::GiveUp),
            (405, Advice::GiveUp),
            (406, Advice::GiveUp),
            (409, Advice::GiveUp),
            (410, Advice::GiveUp),
            (413, Advice::GiveUp),
            (419, Advice::GiveUp),
            (429, Advice::Retry),
            (463, Advice::GiveUp),
            (479, Advice::GiveUp),
            (500, Advice::Retry),
            (503, Advice::Retry),
        ];
        for (code, want) in table {
            assert_eq!(from_server_code(*code, "", None, "x").advice(), *want, "{code}");
        }
    }

    #[test]
    fn pair_validation_is_invalid_and_outstanding_is_retryable() {
        let e = PairError::PairCode(PairCodeError::PhoneNumberTooShort);
        assert_eq!(from_pair_error(&e).advice(), Advice::GiveUp);
        let e = PairError::PairCode(PairCodeError::CodeAlreadyOutstanding {
            remaining: Duration::from_secs(42),
        });
        assert!(matches!(
            from_pair_error(&e),
            WaError::RateLimited { retry_after: Some(d) } if d == Duration::from_secs(42)
        ));
    }

    #[test]
    fn pair_throttling_is_rate_limited() {
        use whatsapp_rust::IqError;
        for code in [429u16, 400] {
            let text = if code == 429 { "rate-overlimit" } else { "bad-request" };
            let e = PairError::RequestFailed(IqError::ServerError {
                code,
                text: text.into(),
                error_type: None,
                backoff: Some(60),
            });
            assert!(
                matches!(from_pair_error(&e), WaError::RateLimited { retry_after: Some(d) } if d == Duration::from_secs(60)),
                "{code}"
            );
        }
        let e = PairError::RequestFailed(IqError::Timeout);
        assert!(matches!(from_pair_error(&e), WaError::Timeout));
        let e = PairError::RequestFailed(IqError::NotConnected);
        assert!(matches!(from_pair_error(&e), WaError::NotConnected));
    }

    #[test]
    fn result_level_usync_errors_keep_their_code() {
        assert_eq!(
            usync_result_code("usync contact error 429: rate-overlimit"),
            Some((429, "rate-overlimit"))
        );
        assert_eq!(usync_result_code("usync devices error 500"), Some((500, "")));
        assert_eq!(usync_result_code("usync status error abc"), None);
        assert_eq!(usync_result_code("something else"), None);
    }

    #[test]
    fn participant_errors_are_words() {
        assert!(describe_participant_error("403").contains("privacy"));
        assert!(describe_participant_error("999").contains("999"));
    }
}
