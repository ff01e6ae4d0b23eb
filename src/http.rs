//! The operator's HTTP listener (`TGWA_HTTP_ADDR`, default `127.0.0.1:9464`, empty = off):
//!
//! - `GET /health`: 200 `{"status":"ok",...}` only while the dispatcher's last successful
//!   `getUpdates` is younger than `TGWA_HEALTH_MAX_AGE_SECS` and the master database takes a
//!   real write (a heartbeat row, committed); otherwise 503 with `{"status":"unhealthy","reason":...}`. A supervisor
//!   (systemd, Docker, a load balancer) polls it.
//! - `GET /metrics`: Prometheus text (see [`crate::metrics`]); the account and session gauges
//!   are refreshed from the master database and the live sessions at each scrape.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::sync::watch;

use crate::manager::AccountManager;
use crate::supervisor::LiveState;

/// When the dispatcher last heard from Telegram. A cheap `Clone` handle; the polling listener
/// calls [`Heartbeat::beat`] after every successful `getUpdates`, empty ones included.
#[derive(Clone)]
pub struct Heartbeat {
    inner: Arc<HeartbeatInner>,
}

struct HeartbeatInner {
    /// The reference point for `last`.
    origin: Instant,
    /// Milliseconds after `origin` of the last beat, plus one (0 = never).
    last: AtomicU64,
}

impl Default for Heartbeat {
    fn default() -> Self {
        Self::new()
    }
}

impl Heartbeat {
    /// A heartbeat that has never beaten.
    pub fn new() -> Self {
        Self {
            inner: Arc::new(HeartbeatInner {
                origin: Instant::now(),
                last: AtomicU64::new(0),
            }),
        }
    }

    /// Records a successful poll now.
    pub fn beat(&self) {
        let ms = self.inner.origin.elapsed().as_millis() as u64 + 1;
        self.inner.last.store(ms, Ordering::Relaxed);
    }

    /// Time since the last beat; `None` before the first.
    pub fn age(&self) -> Option<Duration> {
        match self.inner.last.load(Ordering::Relaxed) {
            0 => None,
            ms => Some(
                self.inner
                    .origin
                    .elapsed()
                    .saturating_sub(Duration::from_millis(ms - 1)),
            ),
        }
    }
}

/// What the handlers read.
#[derive(Clone)]
struct HttpState {
    /// The registry: master database and live sessions.
    manager: AccountManager,
    /// The dispatcher's last successful poll.
    heartbeat: Heartbeat,
    /// Oldest acceptable poll.
    max_age: Duration,
    /// The Prometheus recorder's handle (`None`: another recorder owns the process).
    metrics: Option<PrometheusHandle>,
}

/// Binds `addr` and serves `/health` and `/metrics` until `shutdown` fires. Returns the bound
/// address (useful with port 0) and the server task.
pub async fn spawn(
    addr: SocketAddr,
    manager: AccountManager,
    heartbeat: Heartbeat,
    max_age: Duration,
    mut shutdown: watch::Receiver<bool>,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = Guarded::new(
        tokio::net::TcpListener::bind(addr).await?,
        MAX_CONNECTIONS,
        CONNECTION_LIFETIME,
    );
    let bound = listener.inner.local_addr()?;
    if let Some(warning) = exposure_warning(bound) {
        tracing::warn!("{warning}");
    }
    let state = HttpState {
        manager,
        heartbeat,
        max_age,
        metrics: crate::metrics::install(),
    };
    let app = Router::new()
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .with_state(state);
    let task = tokio::spawn(async move {
        let stop = async move {
            while !*shutdown.borrow_and_update() {
                if shutdown.changed().await.is_err() {
                    break;
                }
            }
        };
        if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(stop).await {
            tracing::warn!(error = %e, "the HTTP listener stopped");
        }
    });
    Ok((bound, task))
}

/// Connections served at once; more are closed as soon as they are accepted, so a flood of
/// idle connections cannot use up the process's file descriptors (which the WhatsApp sessions
/// and SQLite need).
pub const MAX_CONNECTIONS: usize = 64;

/// How long one connection may stay open: `/health` and `/metrics` answer in milliseconds,
/// so a connection still open after this (half a header sent, then silence) is cut.
pub const CONNECTION_LIFETIME: Duration = Duration::from_secs(10);

/// A warning for the operator when `addr` is reachable from other machines: the listener
/// has no authentication and `/metrics` tells anyone how many accounts this server runs.
pub fn exposure_warning(addr: SocketAddr) -> Option<String> {
    (!addr.ip().is_loopback()).then(|| {
        format!(
            "TGWA_HTTP_ADDR {addr} is reachable from other machines: /health and /metrics have no \
             authentication; bind 127.0.0.1 or put a firewall in front"
        )
    })
}

/// The listener with a connection cap and a lifetime per connection.
struct Guarded {
    inner: tokio::net::TcpListener,
    /// One permit per open connection.
    permits: Arc<tokio::sync::Semaphore>,
    lifetime: Duration,
}

impl Guarded {
    fn new(inner: tokio::net::TcpListener, max: usize, lifetime: Duration) -> Self {
        Self {
            inner,
            permits: Arc::new(tokio::sync::Semaphore::new(max)),
            lifetime,
        }
    }
}

impl axum::serve::Listener for Guarded {
    type Io = Bounded;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let (stream, peer) = match self.inner.accept().await {
                Ok(c) => c,
                Err(e) => {
                    // Out of descriptors or a peer gone before accept: wait, never spin.
                    tracing::debug!(error = %e, "HTTP accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            match self.permits.clone().try_acquire_owned() {
                Ok(permit) => {
                    let deadline = Box::pin(tokio::time::sleep(self.lifetime));
                    return (
                        Bounded {
                            stream,
                            deadline,
                            _permit: permit,
                        },
                        peer,
                    );
                }
                Err(_) => {
                    crate::metrics::http_refused();
                    drop(stream);
                }
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

/// A connection that fails every read and write once its deadline passed, and gives its
/// permit back when dropped.
struct Bounded {
    stream: tokio::net::TcpStream,
    deadline: std::pin::Pin<Box<tokio::time::Sleep>>,
    _permit: tokio::sync::OwnedSemaphorePermit,
}

impl Bounded {
    /// `Err` once the deadline passed; otherwise registers the waker for it, so an idle
    /// connection is woken (and cut) then.
    fn expired(&mut self, cx: &mut std::task::Context<'_>) -> std::io::Result<()> {
        match self.deadline.as_mut().poll(cx) {
            std::task::Poll::Ready(()) => Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "connection open too long",
            )),
            std::task::Poll::Pending => Ok(()),
        }
    }
}

impl tokio::io::AsyncRead for Bounded {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        if let Err(e) = self.expired(cx) {
            return std::task::Poll::Ready(Err(e));
        }
        std::pin::Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for Bounded {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        if let Err(e) = self.expired(cx) {
            return std::task::Poll::Ready(Err(e));
        }
        std::pin::Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

fn json(status: StatusCode, body: serde_json::Value) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

async fn health(State(st): State<HttpState>) -> Response {
    let age = st.heartbeat.age();
    let poll_ok = age.is_some_and(|a| a <= st.max_age);
    let db = master_writable(&st.manager).await;
    let age_s = age.map(|a| (a.as_secs_f64() * 10.0).round() / 10.0);
    match (poll_ok, db) {
        (true, Ok(())) => json(
            StatusCode::OK,
            serde_json::json!({"status": "ok", "last_poll_age_s": age_s}),
        ),
        (false, _) => json(
            StatusCode::SERVICE_UNAVAILABLE,
            serde_json::json!({
                "status": "unhealthy",
                "reason": match age {
                    None => "telegram: no successful getUpdates yet".to_string(),
                    Some(a) => format!("telegram: last successful getUpdates {:.0} s ago", a.as_secs_f64()),
                },
                "last_poll_age_s": age_s,
            }),
        ),
        (true, Err(e)) => json(
            StatusCode::SERVICE_UNAVAILABLE,
            serde_json::json!({"status": "unhealthy", "reason": format!("master database: {e}"), "last_poll_age_s": age_s}),
        ),
    }
}

/// Writes a heartbeat row into the master database and commits it, within 3 s: taking the
/// write lock alone succeeds on a full or failing disk, where every real write then fails.
async fn master_writable(manager: &AccountManager) -> Result<(), String> {
    let pool = manager.master().clone();
    let check = crate::db::with_conn(&pool, |c| {
        write_heartbeat(c, crate::db::now())?;
        Ok(())
    });
    match tokio::time::timeout(Duration::from_secs(3), check).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("no write lock within 3 s".into()),
    }
}

/// The heartbeat row `/health` writes (`admin_state`, key `health_heartbeat`): the last time
/// the master database took a real write.
fn write_heartbeat(c: &rusqlite::Connection, now: i64) -> rusqlite::Result<()> {
    c.execute(
        "INSERT INTO admin_state (key, value) VALUES ('health_heartbeat', ?1)
         ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        [now.to_string()],
    )?;
    Ok(())
}

async fn metrics(State(st): State<HttpState>) -> Response {
    let Some(handle) = &st.metrics else {
        return (StatusCode::SERVICE_UNAVAILABLE, "metrics recorder not installed\n").into_response();
    };
    let pool = st.manager.master().clone();
    let counts = crate::db::with_conn(&pool, |c| {
        let mut s = c.prepare("SELECT status, COUNT(*) FROM whatsapp_accounts GROUP BY status")?;
        let rows = s
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64)))?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    })
    .await;
    match counts {
        Ok(c) => crate::metrics::set_accounts(&c),
        Err(e) => tracing::warn!(error = %e, "metrics: cannot count accounts"),
    }
    if let Ok(accounts) = st.manager.load_all().await {
        let connected = accounts
            .iter()
            .filter(|a| {
                st.manager
                    .live_status_unchecked(a.id)
                    .is_some_and(|s| s.state == LiveState::Connected)
            })
            .count();
        crate::metrics::set_connected(connected);
    }
    if let Some(age) = st.heartbeat.age() {
        crate::metrics::set_poll_age(age);
    }
    crate::metrics::set_pools(st.manager.pools().len(), st.manager.pools().churn());
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], handle.render()).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heartbeat_ages() {
        let h = Heartbeat::new();
        assert!(h.age().is_none());
        h.beat();
        assert!(h.age().unwrap() < Duration::from_secs(1));
    }
}
