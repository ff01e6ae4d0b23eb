//! The real WhatsApp adapter on whatsapp-rust 0.7.
//!
//! # Layout
//! - this module: [`RealBackend`] (starts sessions) and the session itself;
//! - [`events`]: library events as [`WaEvent`]s, and the sink that forwards them;
//! - [`errors`]: library errors as [`WaError`]s with the right advice;
//! - [`probe`]: reads a session file without the library;
//! - [`offline`]: a transport that never answers, for tests and the memory bench;
//! - [`proxy`]: connections through an account's SOCKS5 or HTTP CONNECT proxy.
//!
//! One `Bot` is built per (re)start on the account's session file; a client is single-use,
//! so reconnecting after [`WaSession::disconnect`] means starting a new session.

pub mod errors;
pub mod events;
mod media;
mod members;
pub mod offline;
pub mod probe;
// --- peer ---
pub mod proxy;

use std::collections::HashMap;
use std::future::Future;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};
use whatsapp_rust::bot::Bot;
use whatsapp_rust::features::{
    GroupCreateOptions, GroupDescription, GroupMetadata, GroupParticipant, GroupParticipantOptions, GroupSubject,
    JoinGroupResult, PreviousDescription,
};
use whatsapp_rust::pair_code::PairCodeOptions;
use whatsapp_rust::send::SendOptions;
use whatsapp_rust::store::{SqliteStore, SqliteStoreConfig};
use whatsapp_rust::transport::{Transport, TransportEvent, TransportFactory};
use whatsapp_rust::{async_channel, Client, Jid, NodeFilter};

pub use offline::{silent_backend, silent_options, SilentTransportFactory};

use self::events::{BusHandler, EventSink};
use super::{
    ChatTarget, EventRx, GroupId, GroupInfo, GroupSummary, JoinOutcome, Member, MemberAction, MemberResult, PairCode,
    Probe, Profile, SessionSpec, WaBackend, WaError, WaSession,
};
use crate::ids::PhoneNumber;

/// How long WhatsApp keeps a pairing code, when the library did not say.
const PAIR_CODE_TTL: Duration = Duration::from_secs(180);

/// Tuning for [`RealBackend`]. The defaults suit production.
#[derive(Clone)]
pub struct RealOptions {
    /// Where connections come from; `None` is the library's WebSocket to WhatsApp.
    pub transport: Option<Arc<dyn TransportFactory>>,
    /// A fixed app version `(2, 3000, N)`; `None` fetches the current one over HTTP.
    pub version: Option<(u32, u32, u32)>,
    /// How long a pairing-code request waits for the socket before failing (retryably).
    pub socket_wait: Duration,
    /// Bound on a logout's round trip and teardown.
    pub shutdown_bound: Duration,
    /// Bound on one group, message or contact operation.
    pub op_timeout: Duration,
    /// SQLite page cache per session, in KiB: the main per-session memory knob. 64 by
    /// default: a logged-in idle client reads about 40 pages of its store; with 64 KiB
    /// (about 15 pages) a login reads 6.6 pages more from the file (the OS page cache)
    /// than with 256 KiB, for 195 KiB less per client (`real_clients` bench, 300 clients).
    pub cache_size_kib: u32,
    /// Skip downloading chat history after pairing: the bot never reads it.
    pub skip_history_sync: bool,
    /// How long the connection may stay down before a [`crate::wa::WaEvent::Outage`] is sent (once).
    /// Routine stream recycles reconnect well within it and are never reported.
    pub outage_after: Duration,
    /// How long an operation waits for a connection that is being re-established (the
    /// restart right after pairing, a routine recycle, a short drop) before it fails with
    /// [`WaError::NotConnected`].
    pub reconnect_grace: Duration,
    /// The HTTP client for media uploads and downloads instead of the library's own
    /// (tests hand in the fake server's in-process one).
    pub http: Option<Arc<dyn whatsapp_rust::http::HttpClient>>,
    // --- peer ---
    /// The proxy of accounts that have none of their own (`TGWA_WA_PROXY`).
    pub default_proxy: Option<crate::proxy::ProxyUrl>,
    /// Where a proxied connection goes: WhatsApp's socket when `None`; the fake's loopback
    /// WebSocket in fake builds.
    pub proxy_target: Option<String>,
    // --- proxy2 ---
    /// Where a proxied account's media HTTP goes instead of each request's own host
    /// (`http://host:port`): the fake's media listener in fake builds; `None` in production.
    pub proxy_http_target: Option<String>,
}

/// An HTTP client shared by every session (the builder takes one by value).
struct SharedHttp(Arc<dyn whatsapp_rust::http::HttpClient>);

#[async_trait]
impl whatsapp_rust::http::HttpClient for SharedHttp {
    async fn execute(
        &self,
        request: whatsapp_rust::http::HttpRequest,
    ) -> anyhow::Result<whatsapp_rust::http::HttpResponse> {
        self.0.execute(request).await
    }
}

impl Default for RealOptions {
    fn default() -> Self {
        Self {
            transport: None,
            version: None,
            socket_wait: Duration::from_secs(30),
            shutdown_bound: Duration::from_secs(10),
            op_timeout: Duration::from_secs(60),
            cache_size_kib: 64,
            skip_history_sync: true,
            outage_after: Duration::from_secs(120),
            reconnect_grace: Duration::from_secs(10),
            http: None,
            default_proxy: None,
            proxy_target: None,
            proxy_http_target: None,
        }
    }
}

impl std::fmt::Debug for RealOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RealOptions")
            .field("transport", &self.transport.as_ref().map(|_| "custom"))
            .field("version", &self.version)
            .field("socket_wait", &self.socket_wait)
            .field("shutdown_bound", &self.shutdown_bound)
            .field("op_timeout", &self.op_timeout)
            .field("cache_size_kib", &self.cache_size_kib)
            .field("skip_history_sync", &self.skip_history_sync)
            .field("outage_after", &self.outage_after)
            .field("reconnect_grace", &self.reconnect_grace)
            // Masked by its Display: no password in a log.
            .field("default_proxy", &self.default_proxy)
            .field("proxy_target", &self.proxy_target)
            .field("proxy_http_target", &self.proxy_http_target)
            .finish()
    }
}

impl RealOptions {
    /// Uses `factory` for connections instead of the WebSocket.
    pub fn with_transport_factory(mut self, factory: Arc<dyn TransportFactory>) -> Self {
        self.transport = Some(factory);
        self
    }

    /// Uses `client` for media uploads and downloads.
    pub fn with_http_client(mut self, client: Arc<dyn whatsapp_rust::http::HttpClient>) -> Self {
        self.http = Some(client);
        self
    }

    /// Announces this app version instead of fetching it.
    pub fn with_version(mut self, version: (u32, u32, u32)) -> Self {
        self.version = Some(version);
        self
    }

    /// Sets how long a pairing-code request waits for the socket.
    pub fn with_socket_wait(mut self, wait: Duration) -> Self {
        self.socket_wait = wait;
        self
    }

    /// Sets the bound on logout.
    pub fn with_shutdown_bound(mut self, bound: Duration) -> Self {
        self.shutdown_bound = bound;
        self
    }

    /// Sets how long the connection may be down before an outage is reported.
    pub fn with_outage_after(mut self, after: Duration) -> Self {
        self.outage_after = after;
        self
    }

    /// Sets how long an operation waits for a connection being re-established.
    pub fn with_reconnect_grace(mut self, grace: Duration) -> Self {
        self.reconnect_grace = grace;
        self
    }

    /// Sets the proxy for accounts that have none of their own.
    pub fn with_default_proxy(mut self, proxy: Option<crate::proxy::ProxyUrl>) -> Self {
        self.default_proxy = proxy;
        self
    }

    /// Sends proxied connections to `url` instead of WhatsApp (the fake's WebSocket).
    pub fn with_proxy_target(mut self, url: impl Into<String>) -> Self {
        self.proxy_target = Some(url.into());
        self
    }

    // --- proxy2 ---
    /// Sends proxied media HTTP to `url` (`http://host:port`) instead of each request's own
    /// host (the fake's media listener).
    pub fn with_proxy_http_target(mut self, url: impl Into<String>) -> Self {
        self.proxy_http_target = Some(url.into());
        self
    }

    /// Sets the SQLite page cache per session.
    pub fn with_cache_size_kib(mut self, kib: u32) -> Self {
        self.cache_size_kib = kib;
        self
    }
}

/// whatsapp-rust sessions, one `Bot` per start.
#[derive(Debug, Clone, Default)]
pub struct RealBackend {
    opts: RealOptions,
}

impl RealBackend {
    /// A backend for the real network with the default options.
    pub fn new() -> Self {
        Self::default()
    }

    /// A backend with explicit options (a custom transport, a fixed version, shorter waits).
    pub fn with_options(opts: RealOptions) -> Self {
        Self { opts }
    }

    /// The options in use.
    pub fn options(&self) -> &RealOptions {
        &self.opts
    }

    /// Starts a session; the concrete type, for callers that want more than the trait.
    pub async fn start_session(&self, spec: SessionSpec) -> Result<(Arc<RealSession>, EventRx), WaError> {
        let path = spec.session_file.clone();
        let url = path
            .to_str()
            .ok_or_else(|| WaError::Invalid(format!("session path is not UTF-8: {}", path.display())))?
            .to_string();
        if url.contains(['?', '#']) {
            // The store reads these as URI query and fragment markers.
            return Err(WaError::Invalid(format!("session path holds '?' or '#': {url}")));
        }
        {
            // Before anything opens it: the store would migrate a Go bot's file in place.
            let path = path.clone();
            crate::db::blocking(move || Ok(probe::refuse_whatsmeow(&path)))
                .await
                .map_err(|e| WaError::Storage(e.to_string()))??;
        }
        {
            let path = path.clone();
            crate::db::blocking(move || {
                crate::db::create_private_file(&path)?;
                check_readable(&path)
            })
            .await
            .map_err(|e| WaError::Storage(format!("{}: {e}", spec.session_file.display())))?;
        }
        let config = SqliteStoreConfig {
            cache_size_kib: self.opts.cache_size_kib,
            ..SqliteStoreConfig::default()
        };
        let store = SqliteStore::with_config(&url, config)
            .await
            .map_err(|e| WaError::Storage(format!("{url}: {}", errors::classify(&e, "opening the session store"))))?;
        make_private(&path).await;

        let (sink, rx) = EventSink::new();
        sink.set_outage_after(self.opts.outage_after);
        sink.add_own(spec.phone.digits());
        let account_proxy = self.proxy_for(&path).await;
        let proxied = account_proxy.is_some();
        let factory: Arc<dyn TransportFactory> = match account_proxy.clone() {
            Some(p) => {
                info!(phone = %spec.phone.masked(), proxy = %p, "connecting through a proxy");
                Arc::new(proxy::ProxyTransportFactory::new(p, self.opts.proxy_target.clone()))
            }
            None => match &self.opts.transport {
                Some(t) => t.clone(),
                None => Arc::new(whatsapp_rust::transport::TokioWebSocketTransportFactory::new()),
            },
        };
        let mut builder = Bot::builder()
            .with_backend(store)
            .with_event_handler(BusHandler(sink.clone()))
            .with_transport_factory(ObservedTransport {
                factory,
                sink: sink.clone(),
            });
        if let Some(v) = self.opts.version {
            builder = builder.with_version(v);
        }
        // --- proxy2 --- a proxied account's media goes through its proxy as well.
        match (account_proxy, &self.opts.http) {
            (Some(p), _) => {
                let target = self.opts.proxy_http_target.clone();
                builder = builder.with_http_client(proxy::ProxyHttpClient::new(p, target));
            }
            (None, Some(http)) => builder = builder.with_http_client(SharedHttp(http.clone())),
            (None, None) => {}
        }
        if self.opts.skip_history_sync {
            builder = builder.skip_history_sync();
        }
        let bot = builder
            .build()
            .await
            .map_err(|e| WaError::Storage(format!("{url}: starting the client: {e}")))?;
        make_private(&path).await;
        let client = bot.client();
        sink.fetch_media_with(Arc::downgrade(&client));
        // Groups address members by LID: a mention of this account may name its LID.
        if let Some(lid) = client.lid() {
            sink.add_own(&lid.user);
        }
        let run_sink = sink.clone();
        let task = tokio::spawn(async move {
            bot.run().await;
            // The run loop ends after logout, a ban, a takeover or a disconnect: nothing more
            // will come, so the supervisor's stream ends too.
            run_sink.close();
        });
        info!(
            telegram_id = %spec.telegram_id,
            phone = %spec.phone.masked(),
            paired = client.pn().is_some(),
            "whatsapp session started"
        );
        let session = RealSession {
            client,
            sink,
            task: Mutex::new(Some(task)),
            pair_lock: tokio::sync::Mutex::new(()),
            opts: self.opts.clone(),
            proxied,
        };
        Ok((Arc::new(session), rx))
    }
}

impl RealBackend {
    /// The account's own proxy (kept in its bot-data file), else the default one. An
    /// unreadable bot-data file is logged and the default used: the session still starts.
    async fn proxy_for(&self, session_file: &Path) -> Option<crate::proxy::ProxyUrl> {
        let p = session_file.to_path_buf();
        match crate::db::blocking(move || crate::proxy::for_session_file(&p)).await {
            Ok(Some(own)) => Some(own),
            Ok(None) => self.opts.default_proxy.clone(),
            Err(e) => {
                warn!(error = %e, "could not read the account's proxy; using the default");
                self.opts.default_proxy.clone()
            }
        }
    }
}

#[async_trait]
impl WaBackend for RealBackend {
    async fn start(&self, spec: SessionSpec) -> Result<(Arc<dyn WaSession>, EventRx), WaError> {
        let (session, rx) = self.start_session(spec).await?;
        Ok((session, rx))
    }

    async fn probe(&self, session_file: &Path) -> Result<Probe, WaError> {
        probe::probe(session_file).await
    }
}

/// Fails fast on a file that is not SQLite: the store's pool would retry it for 30 s.
fn check_readable(path: &Path) -> Result<(), crate::db::DbError> {
    let conn = rusqlite::Connection::open_with_flags(
        path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get::<_, i64>(0))?;
    Ok(())
}

/// Sets mode 0600 on the session file and its SQLite side files (SQLite gives `-wal` and
/// `-shm` the main file's mode, but a file made by an older run may be wider).
async fn make_private(path: &Path) {
    let path = path.to_path_buf();
    let res = crate::db::blocking(move || {
        use std::os::unix::fs::PermissionsExt;
        for suffix in ["", "-wal", "-shm"] {
            let mut p = path.clone().into_os_string();
            p.push(suffix);
            match std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    })
    .await;
    if let Err(e) = res {
        warn!(error = %e, "could not make the session file private");
    }
}

/// Lets one shared factory serve many builders (the builder takes its factory by value),
/// and tells the session's sink about every connection attempt: the library reports no
/// failed attempt, so the sink infers them from attempts that never reached the server.
struct ObservedTransport {
    factory: Arc<dyn TransportFactory>,
    sink: EventSink,
}

#[whatsapp_rust::async_trait]
impl TransportFactory for ObservedTransport {
    async fn create_transport(
        &self,
    ) -> Result<(Arc<dyn Transport>, async_channel::Receiver<TransportEvent>), whatsapp_rust::anyhow::Error> {
        self.sink.attempt_started();
        let res = self.factory.create_transport().await;
        if let Err(e) = &res {
            match e.downcast_ref::<proxy::ProxyError>() {
                // --- peer --- the proxy, not WhatsApp, failed: its own event.
                Some(pe) => self.sink.proxy_failed(pe.proxy.clone(), pe.reason.clone()),
                None => self.sink.attempt_failed(format!("could not connect: {e}")),
            }
        }
        res
    }
}

/// One live whatsapp-rust client. Dropping it aborts the client if it still runs; call
/// [`WaSession::disconnect`] for a clean stop.
pub struct RealSession {
    /// The client; its background tasks end with it.
    client: Arc<Client>,
    /// Where events go; closed on disconnect, logout and terminal events.
    sink: EventSink,
    /// The run loop; taken by the first disconnect.
    task: Mutex<Option<JoinHandle<()>>>,
    /// One pairing-code request at a time: a second one cancels the first, in order.
    pair_lock: tokio::sync::Mutex<()>,
    /// Bounds and waits.
    opts: RealOptions,
    // --- proxy2 ---
    /// Whether this session connects through a proxy.
    proxied: bool,
}

impl Drop for RealSession {
    fn drop(&mut self) {
        let task = self.task.get_mut().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(t) = task {
            if !t.is_finished() {
                debug!("session dropped without disconnect; aborting its client");
                t.abort();
            }
        }
    }
}

impl RealSession {
    /// The underlying client, for operations the trait does not cover.
    pub fn client(&self) -> &Arc<Client> {
        &self.client
    }

    /// Whether the client is logged in right now.
    pub fn is_logged_in(&self) -> bool {
        self.client.is_logged_in()
    }

    /// Operations need a paired, logged-in client. A connection being re-established is
    /// waited for, up to [`RealOptions::reconnect_grace`]; a session that has ended, or a
    /// connection still down after that, fails at once rather than after the 60 s op timeout.
    async fn ready(&self) -> Result<(), WaError> {
        if self.client.pn().is_none() {
            return Err(WaError::NotPaired);
        }
        let client = &self.client;
        if !self
            .sink
            .wait_until(self.opts.reconnect_grace, || client.is_logged_in())
            .await
        {
            // --- peer --- down because of the proxy: say so, not "WhatsApp".
            if let Some(reason) = self.sink.proxy_down() {
                return Err(WaError::Proxy(reason));
            }
            return Err(WaError::NotConnected);
        }
        Ok(())
    }

    // --- proxy2 ---
    /// Resolves with the reason once the account's proxy has failed (within `bound`); never
    /// otherwise, so it can race the socket wait.
    async fn proxy_failure(&self, bound: Duration) -> String {
        let sink = &self.sink;
        if sink.wait_until(bound, || sink.proxy_down().is_some()).await {
            if let Some(reason) = sink.proxy_down() {
                return reason;
            }
        }
        std::future::pending().await
    }

    /// Runs one library call with the readiness check, the time bound and error mapping.
    /// Sends `message` to `to` and waits a bounded time for the server's verdict (its ack):
    /// a refusal there is the send's error. Text and media go out the same way.
    async fn send_built(
        &self,
        to: &ChatTarget,
        message: whatsapp_rust::waproto::whatsapp::Message,
    ) -> Result<String, WaError> {
        let jid = match to {
            ChatTarget::Phone(p) => self.send_jid(p).await?,
            ChatTarget::Group(g) => group_jid(g),
        };
        if let ChatTarget::Phone(p) = to {
            // whatsapp-rust 0.7 sends to nobody and returns Ok when the number has no
            // devices; the device list (cached by the library, reused by the send) says so.
            let devices = self
                .call(
                    "looking up the recipient",
                    self.client.signal().get_user_devices(std::slice::from_ref(&jid)),
                )
                .await?;
            if devices.is_empty() {
                return Err(WaError::NotFound(format!("{} is not on WhatsApp", p.masked())));
            }
        }
        // The server's verdict comes as an <ack> carrying the message id, after the send
        // returned: listen for it before sending.
        let id = self.client.generate_message_id();
        let ack = self
            .client
            .wait_for_node(NodeFilter::tag("ack").attr("class", "message").attr("id", id.clone()));
        let options = SendOptions::default().with_message_id(id.clone());
        let sent = self
            .call(
                "sending a message",
                self.client.send_message_with_options(jid, message, options),
            )
            .await?;
        match tokio::time::timeout(ACK_WAIT, ack).await {
            Ok(Ok(node)) => {
                if let Some(code) = node.get_attr("error").map(|v| v.as_str().into_owned()) {
                    let code = code.parse::<u16>().unwrap_or(0);
                    return Err(match errors::from_server_code(code, "", None, "sending a message") {
                        WaError::ReachOutLimited { .. } => WaError::ReachOutLimited {
                            until: self.reach_out_until().await,
                        },
                        other => other,
                    });
                }
            }
            // No ack in time: the message left; WhatsApp may still deliver it.
            _ => debug!(id = %sent.message_id, "no server ack for a sent message in time"),
        }
        Ok(sent.message_id)
    }

    async fn call<T, E, F>(&self, what: &str, fut: F) -> Result<T, WaError>
    where
        F: Future<Output = Result<T, E>> + Send,
        E: std::error::Error + 'static,
    {
        self.ready().await?;
        match tokio::time::timeout(self.opts.op_timeout, fut).await {
            Err(_) => Err(WaError::Timeout),
            Ok(Err(e)) => {
                let mapped = errors::classify(&e, what);
                debug!(error = %e, ?mapped, "{what} failed");
                Err(mapped)
            }
            Ok(Ok(v)) => Ok(v),
        }
    }

    /// A participant's phone number: the JID itself, the number the server attached, or
    /// the stored LID mapping. `None` when none is known (logged by the caller).
    async fn phone_of(&self, jid: &Jid, pn_hint: Option<&Jid>) -> Option<PhoneNumber> {
        if let Some(pn) = pn_hint.filter(|j| j.is_pn()) {
            return PhoneNumber::from_digits(pn.user_base()).ok();
        }
        if jid.is_pn() {
            return PhoneNumber::from_digits(jid.user_base()).ok();
        }
        if jid.is_lid() {
            match self.client.get_lid_pn_entry(jid).await {
                Ok(Some(entry)) => return PhoneNumber::from_digits(&entry.phone_number).ok(),
                Ok(None) => {}
                Err(e) => debug!(error = %e, "LID lookup failed"),
            }
        }
        None
    }

    /// Whether a participant is this account (by phone number or LID).
    fn is_me(&self, p: &GroupParticipant) -> bool {
        let pn = self.client.pn();
        let lid = self.client.lid();
        let same = |a: &Jid, b: &Option<Jid>| {
            b.as_ref()
                .is_some_and(|b| a.server == b.server && a.user_base() == b.user_base())
        };
        same(&p.jid, &pn)
            || same(&p.jid, &lid)
            || p.phone_number.as_ref().is_some_and(|j| same(j, &pn))
            || p.lid.as_ref().is_some_and(|j| same(j, &lid))
    }

    async fn to_info(&self, meta: GroupMetadata) -> Result<GroupInfo, WaError> {
        let id = group_id(&meta.id)?;
        let mut found = Vec::with_capacity(meta.participants.len());
        for p in &meta.participants {
            found.push(self.phone_of(&p.jid, p.phone_number.as_ref()).await);
        }
        let missing: Vec<Jid> = meta
            .participants
            .iter()
            .zip(&found)
            .filter(|(p, f)| f.is_none() && p.jid.is_lid())
            .map(|(p, _)| p.jid.clone())
            .collect();
        let resolved = self.phones_of_lids(&missing).await;
        let mut members = Vec::with_capacity(meta.participants.len());
        let mut unresolved = 0usize;
        for (p, phone) in meta.participants.iter().zip(found) {
            match phone.or_else(|| resolved.get(p.jid.user_base()).cloned()) {
                Some(phone) => members.push(Member {
                    phone,
                    is_admin: p.is_admin(),
                    is_super_admin: p.is_super_admin(),
                }),
                None => unresolved += 1,
            }
        }
        if unresolved > 0 {
            warn!(group = %id, unresolved, "members whose phone number WhatsApp would not tell left out");
        }
        Ok(GroupInfo {
            id,
            name: meta.subject,
            description: meta.description.filter(|d| !d.is_empty()),
            announce: meta.is_announcement,
            locked: meta.is_locked,
            members,
        })
    }

    /// Phone numbers of LIDs the group reply and the local cache could not map, asked of
    /// the server in one query (which also teaches the library's LID cache). Keyed by LID
    /// user.
    async fn phones_of_lids(&self, lids: &[Jid]) -> HashMap<String, PhoneNumber> {
        let mut out = HashMap::new();
        if lids.is_empty() {
            return out;
        }
        let contacts = self.client.contacts();
        match tokio::time::timeout(self.opts.op_timeout, contacts.is_on_whatsapp(lids)).await {
            Ok(Ok(results)) => {
                for r in results {
                    let lid = r.lid.as_ref().filter(|j| j.is_lid()).unwrap_or(&r.jid);
                    let pn = r
                        .pn_jid
                        .as_ref()
                        .filter(|j| j.is_pn())
                        .or(Some(&r.jid).filter(|j| j.is_pn()));
                    if let (true, Some(pn)) = (lid.is_lid(), pn) {
                        if let Ok(phone) = PhoneNumber::from_digits(pn.user_base()) {
                            out.insert(lid.user_base().to_string(), phone);
                        }
                    }
                }
            }
            Ok(Err(e)) => debug!(error = %e, "LID lookup failed"),
            Err(_) => debug!("LID lookup timed out"),
        }
        out
    }
}

fn group_jid(id: &GroupId) -> Jid {
    Jid::group(id.user())
}

fn group_id(jid: &Jid) -> Result<GroupId, WaError> {
    let s = jid.to_string();
    GroupId::parse(&s).ok_or_else(|| WaError::Other(format!("WhatsApp returned an unexpected group id: {s}")))
}

fn phone_jid(p: &PhoneNumber) -> Jid {
    Jid::pn(p.digits())
}

/// A timelock end as WhatsApp's MEX answer gives it: Unix seconds (or milliseconds) in a
/// string. Anything else is "not said".
fn parse_unix(s: &str) -> Option<i64> {
    let n: i64 = s.trim().parse().ok()?;
    // Milliseconds are 13 digits today; seconds 10.
    Some(if n > 100_000_000_000 { n / 1000 } else { n })
}

impl RealSession {
    /// The JID a message to `p` goes to: the number as typed, unless WhatsApp may know it
    /// under another form (Brazil, Mexico, Argentina; [`PhoneNumber::has_other_form`]).
    /// Then the usync lookup's answer is used, so a message never goes into a chat with a
    /// number nobody uses (whatsmeow users send to the JID `IsOnWhatsApp` returns).
    async fn send_jid(&self, p: &PhoneNumber) -> Result<Jid, WaError> {
        let asked = phone_jid(p);
        if !p.has_other_form() {
            return Ok(asked);
        }
        let contacts = self.client.contacts();
        let results = self
            .call(
                "looking up the number",
                contacts.is_on_whatsapp(std::slice::from_ref(&asked)),
            )
            .await?;
        for r in results {
            if let Some(err) = &r.contact_error {
                return Err(errors::from_server_code(
                    err.code.unwrap_or(0),
                    err.text.as_deref().unwrap_or(""),
                    err.backoff,
                    "looking up the number",
                ));
            }
            let pn = if r.jid.is_pn() {
                Some(r.jid.clone())
            } else {
                r.pn_jid.clone()
            };
            if let (true, Some(pn)) = (r.is_registered, pn) {
                return Ok(pn.to_non_ad());
            }
        }
        Err(WaError::NotFound(format!("{} is not on WhatsApp", p.masked())))
    }
}

#[async_trait]
impl WaSession for RealSession {
    async fn request_pair_code(&self, phone: &PhoneNumber) -> Result<PairCode, WaError> {
        if self.client.pn().is_some() {
            return Err(WaError::Invalid("this session is already paired".into()));
        }
        // --- proxy2 --- the first attempt may have failed at the proxy already (and the
        // pairing been ended for it): that, not "not connected", is the answer.
        if let Some(reason) = self.sink.proxy_down() {
            return Err(WaError::Proxy(reason));
        }
        if self.sink.is_closed() {
            return Err(WaError::NotConnected);
        }
        let _one = self.pair_lock.lock().await;
        // A code still on the phone's screen would win the race against the new one.
        self.client.cancel_pair_code().await;
        self.sink.set_qr_mode(false);
        let started = Instant::now();
        // --- proxy2 --- a proxy that refuses or is dead fails the request now, as a proxy
        // problem, instead of after the whole socket wait.
        tokio::select! {
            res = self.client.wait_for_socket(self.opts.socket_wait) => {
                res.map_err(|e| errors::classify(&e, "connecting to WhatsApp"))?;
            }
            reason = self.proxy_failure(self.opts.socket_wait) => return Err(WaError::Proxy(reason)),
        }
        let guard = self.sink.requesting();
        let res = self
            .client
            .pair_with_code(PairCodeOptions {
                phone_number: phone.digits().to_string(),
                ..PairCodeOptions::default()
            })
            .await;
        drop(guard);
        match res {
            Ok(code) => {
                let ttl = self
                    .sink
                    .take_code_ttl()
                    .unwrap_or_else(|| PAIR_CODE_TTL.saturating_sub(started.elapsed()));
                info!(phone = %phone.masked(), "pairing code issued");
                Ok(PairCode {
                    code: code.to_uppercase(),
                    ttl,
                })
            }
            Err(e) => {
                let mapped = errors::from_pair_error(&e);
                info!(phone = %phone.masked(), error = %e, ?mapped, "pairing code refused");
                Err(mapped)
            }
        }
    }

    async fn start_qr(&self) -> Result<(), WaError> {
        if self.client.pn().is_some() {
            return Err(WaError::Invalid("this session is already paired".into()));
        }
        // --- proxy2 --- the first attempt may have failed at the proxy already (and the
        // pairing been ended for it): that, not "not connected", is the answer.
        if let Some(reason) = self.sink.proxy_down() {
            return Err(WaError::Proxy(reason));
        }
        if self.sink.is_closed() {
            return Err(WaError::NotConnected);
        }
        self.sink.set_qr_mode(true);
        // --- proxy2 --- through a proxy, the first attempt tells whether the proxy works:
        // a refusing or dead one fails the QR login now, as a proxy problem (a socket that
        // is merely slow leaves the QR flow to go on as before).
        if self.proxied {
            tokio::select! {
                _ = self.client.wait_for_socket(self.opts.socket_wait) => {}
                reason = self.proxy_failure(self.opts.socket_wait) => {
                    self.sink.set_qr_mode(false);
                    return Err(WaError::Proxy(reason));
                }
            }
        }
        Ok(())
    }

    async fn cancel_pair_code(&self) -> Result<(), WaError> {
        self.sink.set_qr_mode(false);
        self.client.cancel_pair_code().await;
        Ok(())
    }

    async fn logout(&self) -> Result<(), WaError> {
        if self.client.pn().is_none() {
            return Err(WaError::NotPaired);
        }
        let online = self.client.is_logged_in();
        // The owner asked for this: the library's own LoggedOut event is not news.
        self.sink.close();
        let client = self.client.clone();
        let done = tokio::time::timeout(self.opts.shutdown_bound, client.logout()).await;
        let task = self.task.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(mut t) = task {
            if done.is_err() || tokio::time::timeout(Duration::from_secs(2), &mut t).await.is_err() {
                t.abort();
            }
        }
        if done.is_err() {
            warn!("logout did not finish in time; the client was stopped");
            return Err(WaError::Timeout);
        }
        if !online {
            // The unlink request needs a connection; the phone may still list this device.
            return Err(WaError::NotConnected);
        }
        Ok(())
    }

    async fn disconnect(&self, bound: Duration) {
        self.sink.close();
        let task = self.task.lock().unwrap_or_else(|e| e.into_inner()).take();
        let Some(mut task) = task else { return };
        let client = self.client.clone();
        let graceful = tokio::time::timeout(bound, async {
            client.disconnect().await;
            let _ = (&mut task).await;
        })
        .await;
        if graceful.is_err() {
            warn!(?bound, "client did not stop in time; aborting it");
            task.abort();
        }
    }

    async fn profile(&self) -> Result<Profile, WaError> {
        let pn = self.client.pn().ok_or(WaError::NotPaired)?;
        Ok(Profile {
            jid: pn.to_string(),
            phone: PhoneNumber::from_digits(pn.user_base()).ok(),
            push_name: self.client.push_name(),
        })
    }

    async fn send_text(&self, to: &ChatTarget, text: &str) -> Result<String, WaError> {
        if text.trim().is_empty() {
            return Err(WaError::Invalid("empty message".into()));
        }
        let message = whatsapp_rust::waproto::whatsapp::Message {
            conversation: Some(text.to_string()),
            ..Default::default()
        };
        self.send_built(to, message).await
    }

    async fn upload_media(
        &self,
        kind: super::MediaKind,
        bytes: &[u8],
        mime: &str,
        file_name: &str,
    ) -> Result<super::MediaRef, WaError> {
        media::upload(self, kind, bytes, mime, file_name).await
    }

    async fn send_uploaded(&self, to: &ChatTarget, media: &super::MediaRef, caption: &str) -> Result<String, WaError> {
        self.send_built(to, media::message(media, caption)).await
    }

    async fn send_media(
        &self,
        to: &ChatTarget,
        kind: super::MessageKind,
        file: &super::Media,
        caption: &str,
    ) -> Result<String, WaError> {
        let kind = match kind {
            super::MessageKind::Image => super::MediaKind::Photo,
            super::MessageKind::Document => super::MediaKind::Document,
            super::MessageKind::Video => super::MediaKind::Video,
            _ => return Err(WaError::Invalid("only photos, videos and documents can be sent".into())),
        };
        let uploaded = self
            .upload_media(kind, &file.bytes, &file.mime, &file.file_name)
            .await?;
        self.send_uploaded(to, &uploaded, caption).await
    }

    async fn show_typing(&self, to: &ChatTarget, how_long: Duration) -> Result<(), WaError> {
        let jid = match to {
            ChatTarget::Phone(p) => self.send_jid(p).await?,
            ChatTarget::Group(g) => group_jid(g),
        };
        let chat = self.client.chatstate();
        self.call("showing typing", chat.send_composing(&jid)).await?;
        tokio::time::sleep(how_long).await;
        // "paused" ends the indicator at once rather than letting the phone time it out.
        self.call("ending typing", chat.send_paused(&jid)).await
    }

    async fn reach_out_until(&self) -> Option<i64> {
        let mex = self.client.mex();
        match self
            .call("asking for the reach-out timelock", mex.fetch_reachout_timelock())
            .await
        {
            Ok(t) if t.is_active != Some(false) => t.time_enforcement_ends.as_deref().and_then(parse_unix),
            Ok(_) => None,
            Err(e) => {
                debug!(error = %e, "no reach-out timelock end from WhatsApp");
                None
            }
        }
    }

    async fn groups(&self) -> Result<Vec<GroupSummary>, WaError> {
        let g = self.client.groups();
        let all = self.call("listing groups", g.get_participating()).await?;
        let mut out = Vec::with_capacity(all.len());
        for (jid, meta) in all {
            let Ok(id) = group_id(&jid) else {
                debug!(%jid, "skipping a chat that is not a plain group");
                continue;
            };
            out.push(GroupSummary {
                id,
                member_count: meta
                    .size
                    .map(|s| s as usize)
                    .unwrap_or(meta.participants.len())
                    .max(meta.participants.len()),
                is_admin: meta.participants.iter().any(|p| p.is_admin() && self.is_me(p)),
                name: meta.subject,
            });
        }
        out.sort_by(|a, b| a.name.to_lowercase().cmp(&b.name.to_lowercase()).then(a.id.cmp(&b.id)));
        Ok(out)
    }

    async fn group_info(&self, id: &GroupId) -> Result<GroupInfo, WaError> {
        let g = self.client.groups();
        let jid = group_jid(id);
        let meta = self.call("reading the group", g.get_metadata(&jid)).await?;
        self.to_info(meta).await
    }

    async fn create_group(&self, subject: &str, members: &[PhoneNumber]) -> Result<GroupInfo, WaError> {
        let subject = subject.trim();
        if subject.is_empty() {
            return Err(WaError::Invalid("a group needs a name".into()));
        }
        GroupSubject::new(subject).map_err(|e| WaError::Invalid(e.to_string()))?;
        let participants = members
            .iter()
            .map(|p| GroupParticipantOptions::from_phone(phone_jid(p)))
            .collect();
        let options = GroupCreateOptions::new(subject).with_participants(participants);
        let g = self.client.groups();
        let created = self.call("creating the group", g.create_group(options)).await?;
        // The create reply lists people who could not be added (403 privacy, 408 left
        // recently) as participants with an error code, which 0.7 drops: read the group
        // back so only real members are reported.
        let jid = created.metadata.id.clone();
        match self.call("reading the new group", g.get_metadata(&jid)).await {
            Ok(meta) => self.to_info(meta).await,
            Err(e) => {
                warn!(error = %e, "could not read a new group back; reporting the create reply");
                self.to_info(created.metadata).await
            }
        }
    }

    async fn invite_link(&self, id: &GroupId, reset: bool) -> Result<String, WaError> {
        let g = self.client.groups();
        self.call("reading the invite link", g.get_invite_link(group_jid(id), reset))
            .await
    }

    async fn join_group(&self, link_or_code: &str) -> Result<JoinOutcome, WaError> {
        let code = super::invite_code(link_or_code)
            .ok_or_else(|| WaError::Invalid("not a WhatsApp invite link or code".into()))?;
        let g = self.client.groups();
        match self.call("joining the group", g.join_with_invite_code(code)).await? {
            JoinGroupResult::Joined(jid) => Ok(JoinOutcome::Joined(group_id(&jid)?)),
            JoinGroupResult::PendingApproval(_) => Ok(JoinOutcome::PendingApproval),
        }
    }

    async fn leave_group(&self, id: &GroupId) -> Result<(), WaError> {
        let g = self.client.groups();
        self.call("leaving the group", g.leave(group_jid(id))).await
    }

    async fn set_subject(&self, id: &GroupId, subject: &str) -> Result<(), WaError> {
        let subject = subject.trim();
        if subject.is_empty() {
            return Err(WaError::Invalid("a group needs a name".into()));
        }
        let subject = GroupSubject::new(subject).map_err(|e| WaError::Invalid(e.to_string()))?;
        let g = self.client.groups();
        self.call("renaming the group", g.set_subject(group_jid(id), subject))
            .await
    }

    async fn set_description(&self, id: &GroupId, description: Option<&str>) -> Result<(), WaError> {
        let description = match description.map(str::trim).filter(|d| !d.is_empty()) {
            Some(d) => Some(GroupDescription::new(d).map_err(|e| WaError::Invalid(e.to_string()))?),
            None => None,
        };
        let g = self.client.groups();
        self.call(
            "setting the description",
            g.set_description(group_jid(id), description, PreviousDescription::Resolve),
        )
        .await
    }

    async fn set_announce(&self, id: &GroupId, on: bool) -> Result<(), WaError> {
        let g = self.client.groups();
        self.call("changing who may send", g.set_announce(group_jid(id), on))
            .await
    }

    async fn set_locked(&self, id: &GroupId, on: bool) -> Result<(), WaError> {
        let g = self.client.groups();
        self.call("changing who may edit the group", g.set_locked(group_jid(id), on))
            .await
    }

    async fn update_members(
        &self,
        id: &GroupId,
        action: MemberAction,
        members: &[PhoneNumber],
    ) -> Result<Vec<MemberResult>, WaError> {
        if members.is_empty() {
            return Ok(Vec::new());
        }
        let jids: Vec<Jid> = members.iter().map(phone_jid).collect();
        let g = self.client.groups();
        let gj = group_jid(id);
        let responses = match action {
            MemberAction::Add => self.call("adding members", g.add_participants(gj, &jids)).await?,
            MemberAction::Remove => self.call("removing members", g.remove_participants(gj, &jids)).await?,
            MemberAction::Promote => {
                self.call("promoting members", g.promote_participants(gj, &jids))
                    .await?
            }
            MemberAction::Demote => self.call("demoting members", g.demote_participants(gj, &jids)).await?,
        };
        let mut by_phone: HashMap<String, Result<(), String>> = HashMap::new();
        let mut by_lid: Vec<(Jid, Result<(), String>)> = Vec::new();
        for r in &responses {
            let outcome = match &r.error {
                None => Ok(()),
                Some(code) => Err(errors::describe_participant_error(code)),
            };
            match self.phone_of(&r.jid, r.phone_number.as_ref()).await {
                Some(p) => {
                    by_phone.insert(p.digits().to_string(), outcome);
                }
                // In LID-addressed groups the results name LIDs, often without a number.
                None if r.jid.is_lid() => by_lid.push((r.jid.clone(), outcome)),
                None => debug!(jid = %r.jid, "participant result for an unknown number"),
            }
        }
        if !by_lid.is_empty() {
            let lids: Vec<Jid> = by_lid.iter().map(|(j, _)| j.clone()).collect();
            let resolved = self.phones_of_lids(&lids).await;
            for (jid, outcome) in by_lid {
                match resolved.get(jid.user_base()) {
                    Some(p) => {
                        by_phone.insert(p.digits().to_string(), outcome);
                    }
                    None => debug!(%jid, "participant result for a LID with no known number"),
                }
            }
        }
        Ok(members
            .iter()
            .map(|m| {
                let outcome = by_phone
                    .remove(m.digits())
                    .unwrap_or_else(|| Err("WhatsApp did not report on this number".to_string()));
                (m.clone(), outcome)
            })
            .collect())
    }

    async fn is_on_whatsapp(&self, numbers: &[PhoneNumber]) -> Result<Vec<(PhoneNumber, bool)>, WaError> {
        if numbers.is_empty() {
            return Ok(Vec::new());
        }
        let jids: Vec<Jid> = numbers.iter().map(phone_jid).collect();
        let contacts = self.client.contacts();
        let results = self.call("checking numbers", contacts.is_on_whatsapp(&jids)).await?;
        let mut registered: HashMap<String, bool> = HashMap::new();
        for r in &results {
            if let Some(err) = &r.contact_error {
                // A per-number error (rate limit, server trouble) is "unknown", not "no".
                return Err(errors::from_server_code(
                    err.code.unwrap_or(0),
                    err.text.as_deref().unwrap_or(""),
                    err.backoff,
                    "checking numbers",
                ));
            }
            let pn = if r.jid.is_pn() { Some(&r.jid) } else { r.pn_jid.as_ref() };
            if let Some(pn) = pn {
                let e = registered.entry(canonical_number(pn.user_base())).or_insert(false);
                *e |= r.is_registered;
            }
        }
        Ok(numbers
            .iter()
            .map(|n| {
                let known = registered.get(&canonical_number(n.digits())).copied();
                (n.clone(), known.unwrap_or(false))
            })
            .collect())
    }

    // --- members ---
    async fn group_roster(&self, id: &GroupId) -> Result<Vec<super::RosterEntry>, WaError> {
        self.roster_of(id).await
    }

    async fn join_requests(&self, id: &GroupId) -> Result<Vec<super::JoinRequest>, WaError> {
        self.join_requests_of(id).await
    }

    async fn answer_join_requests(
        &self,
        id: &GroupId,
        approve: bool,
        who: &[super::PersonId],
    ) -> Result<Vec<super::RequestResult>, WaError> {
        self.answer_requests(id, approve, who).await
    }

    async fn join_approval(&self, id: &GroupId) -> Result<bool, WaError> {
        self.approval_of(id).await
    }

    async fn set_join_approval(&self, id: &GroupId, on: bool) -> Result<(), WaError> {
        self.set_approval(id, on).await
    }
}

/// How long a send waits for the server's ack before trusting it went through.
const ACK_WAIT: Duration = Duration::from_secs(10);

/// The form WhatsApp answers a number in ([`crate::ids::whatsapp_digits`]): Brazil's ninth
/// digit, Mexico's 521, Argentina's 549. Matching on this form lets an answer find the number
/// that was asked.
pub fn canonical_number(digits: &str) -> String {
    crate::ids::whatsapp_digits(digits)
}

/// Re-exported for tests of the event mapping.
pub use self::events::{is_terminal, map_event};
