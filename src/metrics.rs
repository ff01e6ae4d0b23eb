//! Metric names and the one-line helpers the rest of the code calls to record them, through
//! the `metrics` facade. The Prometheus recorder is installed once per process by
//! [`install`]; until then (the CLI, unit tests) every helper is a no-op.
//!
//! | metric | type | labels |
//! | --- | --- | --- |
//! | `tgwa_accounts` | gauge, set at each scrape from the master database | `status` |
//! | `tgwa_sessions_connected` | gauge, set at each scrape from the live sessions | |
//! | `tgwa_reconnects_total` | counter | |
//! | `tgwa_messages_received_total` | counter | |
//! | `tgwa_pair_code_requests_total` | counter | |
//! | `tgwa_pair_outcomes_total` | counter | `outcome`: paired, expired, rate_limited, failed |
//! | `tgwa_jobs_total` | counter | `outcome`: done, cancelled, auto_paused |
//! | `tgwa_job_items_total` | counter | `outcome`: ok, failed |
//! | `tgwa_telegram_errors_total` | counter | `kind`: blocked, retry_after, network, api, other |
//! | `tgwa_update_seconds` | histogram | |
//! | `tgwa_telegram_last_poll_age_seconds` | gauge, set at each scrape | |
//! | `tgwa_sqlite_pools_open` | gauge, set at each scrape | |
//! | `tgwa_sqlite_pools_opened_total` | counter, set at each scrape | |
//! | `tgwa_sqlite_pools_closed_total` | counter, set at each scrape | |
//!
//! Beside the counters, a small in-memory ring of the last hour's error timestamps per source
//! (Telegram, WhatsApp) feeds the `/admin` overview ([`errors_last_hour`]).
//!
//! With whatsapp-rust's `metrics` feature on, its own `wa_*` counters (messages received and
//! sent, reconnects, connect outcomes, IQ results) appear in the same output.

use std::collections::VecDeque;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use teloxide::{ApiError, RequestError};

/// The account statuses the `tgwa_accounts` gauge always reports (zero included), so a
/// status that empties shows 0 instead of vanishing.
pub const ACCOUNT_STATUSES: &[&str] = &["pairing", "active", "logged_out", "banned", "unpaired", "removed"];

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the Prometheus recorder (once per process; later calls return the same handle).
/// `None` when another recorder was installed first.
pub fn install() -> Option<PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let handle = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    metrics_exporter_prometheus::Matcher::Full("tgwa_update_seconds".into()),
                    &[0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0],
                )
                .and_then(|b| b.install_recorder())
                .map_err(|e| tracing::warn!(error = %e, "metrics recorder not installed"))
                .ok()?;
            describe();
            Some(handle)
        })
        .clone()
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_gauge!("tgwa_accounts", "Accounts in the master database by status");
    describe_gauge!("tgwa_sessions_connected", "WhatsApp sessions connected now");
    describe_gauge!("tgwa_sqlite_pools_open", "Per-account SQLite pools open now");
    describe_counter!("tgwa_sqlite_pools_opened_total", "Per-account SQLite pools opened");
    describe_counter!("tgwa_sqlite_pools_closed_total", "Per-account SQLite pools closed");
    describe_counter!("tgwa_reconnects_total", "WhatsApp sessions back online after an outage");
    describe_counter!(
        "tgwa_messages_received_total",
        "Incoming WhatsApp text messages (not acted on yet)"
    );
    describe_counter!("tgwa_pair_code_requests_total", "Pairings started (code or QR)");
    describe_counter!("tgwa_pair_outcomes_total", "Pairings finished, by outcome");
    describe_counter!(
        "tgwa_jobs_total",
        "Bulk jobs that ended or were paused by the engine, by outcome"
    );
    describe_counter!("tgwa_job_items_total", "Bulk job items run, by outcome");
    describe_counter!("tgwa_telegram_errors_total", "Failed Telegram Bot API calls, by kind");
    describe_histogram!(
        "tgwa_update_seconds",
        Unit::Seconds,
        "Time to handle one Telegram update"
    );
    describe_gauge!(
        "tgwa_telegram_last_poll_age_seconds",
        Unit::Seconds,
        "Seconds since getUpdates last succeeded"
    );
}

/// Sets `tgwa_accounts{status}` from `(status, count)` pairs; statuses not given are 0.
pub fn set_accounts(counts: &[(String, u64)]) {
    for s in ACCOUNT_STATUSES {
        let n = counts.iter().find(|(k, _)| k == s).map_or(0, |(_, n)| *n);
        metrics::gauge!("tgwa_accounts", "status" => *s).set(n as f64);
    }
}

/// Sets `tgwa_sessions_connected`.
pub fn set_connected(n: usize) {
    metrics::gauge!("tgwa_sessions_connected").set(n as f64);
}

/// Sets the SQLite pool cache's figures: pools open now, opened and closed since start (a
/// closed count that climbs with the opened one means `TGWA_POOL_CACHE_SIZE` is too small).
pub fn set_pools(open: usize, (opened, closed): (u64, u64)) {
    metrics::gauge!("tgwa_sqlite_pools_open").set(open as f64);
    metrics::counter!("tgwa_sqlite_pools_opened_total").absolute(opened);
    metrics::counter!("tgwa_sqlite_pools_closed_total").absolute(closed);
}

/// Sets `tgwa_telegram_last_poll_age_seconds`.
pub fn set_poll_age(age: Duration) {
    metrics::gauge!("tgwa_telegram_last_poll_age_seconds").set(age.as_secs_f64());
}

/// A session came back online after an outage.
pub fn reconnect() {
    metrics::counter!("tgwa_reconnects_total").increment(1);
}

/// An incoming text message reached a session's supervisor.
pub fn message_received() {
    metrics::counter!("tgwa_messages_received_total").increment(1);
}

/// An HTTP connection was closed at once because `MAX_CONNECTIONS` were already open.
pub fn http_refused() {
    metrics::counter!("tgwa_http_connections_refused_total").increment(1);
}

/// A pairing (code or QR) was started.
pub fn pair_request() {
    metrics::counter!("tgwa_pair_code_requests_total").increment(1);
}

/// A pairing finished: `paired`, `expired`, `rate_limited` or `failed`.
pub fn pair_outcome(outcome: &'static str) {
    metrics::counter!("tgwa_pair_outcomes_total", "outcome" => outcome).increment(1);
    if matches!(outcome, "rate_limited" | "failed") {
        note_error(ErrorSource::WhatsApp);
    }
}

/// A pairing request WhatsApp refused at once (before any code): counted as a pairing outcome
/// (`rate_limited` or `failed`). `None` (refused for another reason) counts nothing.
pub fn pair_refused(e: Option<&crate::wa::WaError>) {
    if let Some(e) = e {
        pair_outcome(if matches!(e, crate::wa::WaError::RateLimited { .. }) {
            "rate_limited"
        } else {
            "failed"
        });
    }
}

/// A bulk job ended or was paused by the engine: `done`, `cancelled` or `auto_paused`.
pub fn job_outcome(outcome: &'static str) {
    metrics::counter!("tgwa_jobs_total", "outcome" => outcome).increment(1);
}

/// A bulk job item ran: `ok` or `failed`.
pub fn job_item(outcome: &'static str) {
    metrics::counter!("tgwa_job_items_total", "outcome" => outcome).increment(1);
    if outcome != "ok" {
        note_error(ErrorSource::WhatsApp);
    }
}

/// A Telegram Bot API call failed.
pub fn telegram_error(e: &RequestError) {
    metrics::counter!("tgwa_telegram_errors_total", "kind" => telegram_error_kind(e)).increment(1);
    note_error(ErrorSource::Telegram);
}

/// Where an error counted for the `/admin` overview came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorSource {
    /// A failed Bot API call.
    Telegram,
    /// A WhatsApp call that failed: a job item, a pairing refused or rate-limited.
    WhatsApp,
}

/// How far back the overview counts errors.
const ERROR_WINDOW: Duration = Duration::from_secs(3600);
/// Timestamps kept per source: a storm of errors costs at most this much memory, and the
/// overview then shows "at least" this many.
const ERROR_RING: usize = 10_000;

/// The last hour's error timestamps, per source. Process-wide, like the metrics recorder: the
/// counters above are fed from everywhere and need no handle passed around.
static RECENT_ERRORS: Mutex<(VecDeque<Instant>, VecDeque<Instant>)> = Mutex::new((VecDeque::new(), VecDeque::new()));

/// Records an error now, for [`errors_last_hour`].
pub fn note_error(source: ErrorSource) {
    let mut rings = RECENT_ERRORS.lock().unwrap_or_else(|e| e.into_inner());
    let ring = match source {
        ErrorSource::Telegram => &mut rings.0,
        ErrorSource::WhatsApp => &mut rings.1,
    };
    if ring.len() >= ERROR_RING {
        ring.pop_front();
    }
    ring.push_back(Instant::now());
}

/// Errors from `source` in the last hour (at most the ring's size).
pub fn errors_last_hour(source: ErrorSource) -> usize {
    let mut rings = RECENT_ERRORS.lock().unwrap_or_else(|e| e.into_inner());
    let ring = match source {
        ErrorSource::Telegram => &mut rings.0,
        ErrorSource::WhatsApp => &mut rings.1,
    };
    while ring.front().is_some_and(|t| t.elapsed() > ERROR_WINDOW) {
        ring.pop_front();
    }
    ring.len()
}

/// The label a Telegram error is counted under.
pub fn telegram_error_kind(e: &RequestError) -> &'static str {
    match e {
        RequestError::Api(ApiError::BotBlocked | ApiError::UserDeactivated | ApiError::CantInitiateConversation) => {
            "blocked"
        }
        RequestError::Api(_) => "api",
        RequestError::RetryAfter(_) => "retry_after",
        RequestError::Network(_) | RequestError::Io(_) => "network",
        _ => "other",
    }
}

/// One update was handled in `took`.
pub fn update_handled(took: Duration) {
    metrics::histogram!("tgwa_update_seconds").record(took.as_secs_f64());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_kinds() {
        assert_eq!(telegram_error_kind(&RequestError::Api(ApiError::BotBlocked)), "blocked");
        assert_eq!(
            telegram_error_kind(&RequestError::Api(ApiError::MessageNotModified)),
            "api"
        );
        assert_eq!(
            telegram_error_kind(&RequestError::RetryAfter(teloxide::types::Seconds::from_seconds(3))),
            "retry_after"
        );
    }

    #[test]
    fn errors_are_counted_per_source_for_an_hour() {
        let (t, w) = (
            errors_last_hour(ErrorSource::Telegram),
            errors_last_hour(ErrorSource::WhatsApp),
        );
        telegram_error(&RequestError::Api(ApiError::BotBlocked));
        pair_outcome("rate_limited");
        pair_outcome("paired");
        job_item("failed");
        job_item("ok");
        // Other tests in this process may add more, never fewer.
        assert!(errors_last_hour(ErrorSource::Telegram) > t);
        assert!(errors_last_hour(ErrorSource::WhatsApp) >= w + 2);
    }

    #[test]
    fn helpers_without_a_recorder_do_nothing() {
        set_accounts(&[("active".into(), 2)]);
        job_item("ok");
        update_handled(Duration::from_millis(3));
    }
}
