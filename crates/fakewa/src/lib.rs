//! A protocol-level fake WhatsApp server, for tests only.
//!
//! It speaks the real protocol to an unmodified whatsapp-rust client through the client's
//! `Transport` seam: the Noise handshake (server side), framed AES-GCM, binary nodes. Behind
//! that sits a small shared world: accounts with their linked devices and uploaded keys,
//! groups, invite codes, sent messages. A "phone" of each account can scan a QR code or
//! confirm a pairing code, and the test (or the behaviour table, below) can make the server
//! do what WhatsApp does to a session: replace it, log it out, ban it, drop the socket.
//!
//! # Never in production
//! The client only accepts this server because `wacore-noise`'s
//! `danger-skip-cert-chain-verify` feature is on whenever this crate is in the build. tgwa
//! pulls it in only as a dev-dependency or behind its off-by-default
//! `insecure-fake-whatsapp` feature.
//!
//! # Behaviour by the last four digits (the simulator's table)
//! | digits | behaviour |
//! | --- | --- |
//! | `0429` | a pairing-code request is refused as throttled (400 bad-request, no backoff) |
//! | `0408` | the pairing code is issued but the phone never confirms it |
//! | `0401` | pairs, then the phone removes the device 3 s after its first login (401 `device_removed`) |
//! | `0402` | pairs, then gets a temporary ban (code 101, one hour) 3 s after its first login: the stream ends with 503, the next login fails 402 |
//! | other | the phone confirms a pairing code after the configured delay |
//!
//! # Layout
//! - [`noise`]: the server handshake and the frame ciphers;
//! - `transport`: the in-process `TransportFactory`;
//! - `conn`: one connection's loop;
//! - `world`: accounts, devices, groups, and the answers to the client's requests;
//! - `phone`: what the primary phone does when it links a device, the directory (usync,
//!   pre-key bundles), messages both ways;
//! - `rules`: what the server enforces (bans, the 463 timelock, nacks, rate limits);
//! - `queue`: the offline queue and its delivery at login;
//! - `signal`: the phones' private Signal state: they read what companions send and write to them.
//! - `media`: the media servers (`media_conn`, uploads and downloads over an in-process
//!   HTTP client) and the phones' download and decryption of media messages;
//! - `persist`: the world in a state file, so a restarted server keeps it;
//! - [`ctl`]: the control protocol `tgwa fake <verb>` speaks;
//! - `ws`: the same server on a loopback WebSocket (WhatsApp Web framing), for clients that dial.
//!
//! Every behaviour cites, next to it, the whatsmeow / Baileys / whatsapp-rust code it was
//! taken from; where no source says what the server sends, the comment says so.

pub mod ctl;
pub mod noise;

mod appstate;

mod conn;
mod groups;
mod media;
mod persist;
mod phone;
mod queue;
mod requests;
mod rules;
mod signal;
#[cfg(test)]
mod tests;
mod transport;
mod world;
// --- peer ---
mod ws;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use wacore_binary::Node;
use whatsapp_rust::transport::TransportFactory;

pub use media::{FakeMediaHttp, ReceivedMedia, Upload, MEDIA_HOST};
pub use persist::read_sent_messages;
pub use rules::{Ban, RateScope};
pub use transport::{FakeTransport, FakeTransportFactory};
pub use world::{GroupView, MemberView, SentMessage};
// --- peer ---
pub use ws::{HttpServer, Ingress, WsServer};

use crate::conn::ConnCtx;
use crate::persist::{Persister, Snapshot};
use crate::transport::Ctl;
use crate::world::World;

/// The app version the fake accepts; pass it to the client's builder (`with_version`) so the
/// client does not fetch one over HTTP.
pub const VERSION: (u32, u32, u32) = (2, 3000, 1_023_000_000);

/// Timing knobs, and where the world is kept.
#[derive(Debug, Clone)]
pub struct FakeOptions {
    /// How long the fake phone takes to confirm a pairing code.
    pub pair_delay: Duration,
    /// How long after the first login the `0401` / `0402` numbers are logged out / banned.
    pub behaviour_delay: Duration,
    /// Accept a login from a device the world does not know, registering it on the spot.
    /// Without a [`state_file`](Self::state_file) the world lives in memory, so a process
    /// that restarts on paired session files needs this to log them back in; it also lets
    /// sessions paired elsewhere (imported from whatsmeow) in.
    pub trust_unknown_devices: bool,
    /// Keeps the world (accounts, linked devices and their keys, groups, accepted messages,
    /// the server's Noise key) in this JSON file: loaded at start, saved in the background
    /// after changes and when the last handle is dropped. `None`: memory only.
    pub state_file: Option<PathBuf>,
    /// How often the background saver looks for changes to write.
    pub save_every: Duration,
    /// Send `critical_block` to a new device as an inline patch instead of a snapshot blob
    /// on the media servers. Not what the server does: for clients in another process that
    /// reach only the WebSocket listener and so cannot download from the fake's in-process
    /// media hosts (the `peer` bench), which would otherwise wait out whatsapp-rust's 180 s
    /// critical-sync watchdog. Off by default.
    pub inline_app_state: bool,
}

impl Default for FakeOptions {
    fn default() -> Self {
        Self {
            pair_delay: Duration::from_millis(300),
            behaviour_delay: Duration::from_secs(3),
            trust_unknown_devices: false,
            state_file: None,
            save_every: Duration::from_millis(100),
            inline_app_state: false,
        }
    }
}

/// A handle on one fake WhatsApp: cheap to clone, shared by every connection and account.
#[derive(Clone)]
pub struct FakeWhatsApp {
    inner: Arc<Inner>,
}

struct Inner {
    server: noise::ServerIdentity,
    opts: FakeOptions,
    world: Mutex<World>,
    next_conn: AtomicU64,
    /// While set, new connections are refused at the transport.
    offline: AtomicBool,
    /// While set, logins are refused as from an outdated client (405).
    refuse_version: AtomicBool,
    /// Live connections: id to control channel, and the device logged in on it.
    conns: Mutex<HashMap<u64, LiveConn>>,
    /// Receipts clients sent, oldest first.
    receipts: Mutex<Vec<Receipt>>,
    /// The state file, when the world is kept on disk.
    persist: Option<Persister>,
    // --- peer ---
    /// Stanzas clients sent that the fake does not model, `tag xmlns=… child`, with counts.
    unmodelled: Mutex<std::collections::BTreeMap<String, u64>>,
    // --- proxy2 ---
    /// How clients reached this server (sockets accepted, in-process connections).
    ingress: Mutex<Ingress>,
}

/// A `<receipt>` a client sent for a message it got, one per message id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// The phone number of the account whose device sent it.
    pub from: String,
    /// The message id.
    pub id: String,
    /// The receipt's `type`: empty for "delivered", else e.g. `read`, `peer_msg`, `sender`.
    pub kind: String,
}

impl Inner {
    /// Writes the world to the state file if it may have changed since the last write.
    fn save(&self) -> std::io::Result<()> {
        let Some(p) = &self.persist else { return Ok(()) };
        p.save(|| {
            // Straight at the mutex: a look for saving is not a change.
            let w = self.world.lock().unwrap_or_else(|e| e.into_inner());
            Snapshot::new(&self.server.key, &w)
        })
    }

    /// The saver thread's tick.
    fn save_logged(&self) {
        if let Err(e) = self.save() {
            tracing::warn!(error = %e, "could not save the fake WhatsApp world");
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.save_logged();
    }
}

#[derive(Clone)]
struct LiveConn {
    ctl: tokio::sync::mpsc::UnboundedSender<Ctl>,
    device: Option<(String, u16)>,
}

impl Default for FakeWhatsApp {
    fn default() -> Self {
        Self::new(FakeOptions::default())
    }
}

impl FakeWhatsApp {
    /// A fresh, empty world, or the one kept in `opts.state_file` (an unreadable file is
    /// moved aside with a warning and the world starts empty).
    pub fn new(opts: FakeOptions) -> Self {
        let (key, world) = match opts.state_file.as_deref().and_then(persist::load) {
            Some(snapshot) => snapshot.into_parts(),
            None => (None, World::new()),
        };
        let server = key.map_or_else(noise::ServerIdentity::generate, noise::ServerIdentity::from_key);
        let persist = opts.state_file.clone().map(Persister::new);
        let every = opts.save_every;
        let inner = Arc::new(Inner {
            server,
            world: Mutex::new(world),
            opts,
            next_conn: AtomicU64::new(1),
            offline: AtomicBool::new(false),
            refuse_version: AtomicBool::new(false),
            conns: Mutex::new(HashMap::new()),
            receipts: Mutex::new(Vec::new()),
            persist,
            unmodelled: Mutex::new(std::collections::BTreeMap::new()),
            ingress: Mutex::new(Ingress::default()),
        });
        if inner.persist.is_some() {
            // Written at once: the file is this server's from now on (an older server on the
            // same file sees that and stops saving).
            inner.save_logged();
            if let Err(e) = persist::spawn_saver(Arc::downgrade(&inner), every, Inner::save_logged) {
                tracing::warn!(error = %e, "no background saver for the fake WhatsApp world; it is saved on flush and drop only");
            }
        }
        Self { inner }
    }

    /// Writes the world to the state file now, if it changed since the last write (a no-op
    /// without a state file). Blocks on disk: call it off the async runtime's hot path.
    pub fn flush(&self) -> std::io::Result<()> {
        self.inner.save()
    }

    /// The factory to give a client (`Bot::builder().with_transport_factory(..)`).
    pub fn transport_factory(&self) -> FakeTransportFactory {
        FakeTransportFactory { fake: self.clone() }
    }

    /// The same, type-erased.
    pub fn transport(&self) -> Arc<dyn TransportFactory> {
        Arc::new(self.transport_factory())
    }

    pub(crate) fn server_identity(&self) -> &noise::ServerIdentity {
        &self.inner.server
    }

    pub(crate) fn options(&self) -> &FakeOptions {
        &self.inner.opts
    }

    pub(crate) fn world(&self) -> MutexGuard<'_, World> {
        if let Some(p) = &self.inner.persist {
            p.touch();
        }
        self.inner.world.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn next_conn_id(&self) -> u64 {
        self.inner.next_conn.fetch_add(1, Ordering::SeqCst)
    }

    fn conns(&self) -> MutexGuard<'_, HashMap<u64, LiveConn>> {
        self.inner.conns.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn is_offline(&self) -> bool {
        self.inner.offline.load(Ordering::SeqCst)
    }

    pub(crate) fn refuses_version(&self) -> bool {
        self.inner.refuse_version.load(Ordering::SeqCst)
    }

    /// Refuses (or accepts again) new connections at the socket, as an outage would.
    pub fn set_offline(&self, offline: bool) {
        self.inner.offline.store(offline, Ordering::SeqCst);
    }

    /// Refuses logins as from an outdated client version (connect failure 405).
    pub fn set_refuse_client_version(&self, refuse: bool) {
        self.inner.refuse_version.store(refuse, Ordering::SeqCst);
    }

    pub(crate) fn register_conn(&self, ctx: &ConnCtx) {
        self.conns().insert(
            ctx.id,
            LiveConn {
                ctl: ctx.ctl.clone(),
                device: ctx.device.clone(),
            },
        );
    }

    // --- peer ---
    /// Every stanza a client sent that the fake does not model (answered with a refusal or
    /// ignored), as `tag xmlns=… child` with how many times: the conformance log a second
    /// client (Baileys, `benches/peer`) is read against.
    pub fn unmodelled(&self) -> Vec<(String, u64)> {
        let m = self.inner.unmodelled.lock().unwrap_or_else(|e| e.into_inner());
        m.iter().map(|(k, v)| (k.clone(), *v)).collect()
    }

    /// Notes and logs (once per kind, at info) a stanza the fake does not model.
    pub(crate) fn note_unmodelled(&self, tag: &str, xmlns: &str, child: &str) {
        let key = format!("{tag} xmlns={xmlns} {child}");
        let mut m = self.inner.unmodelled.lock().unwrap_or_else(|e| e.into_inner());
        let n = m.entry(key.clone()).or_insert(0);
        *n += 1;
        if *n == 1 {
            tracing::info!(stanza = %key, "fake WhatsApp: a stanza it does not model");
        }
    }

    pub(crate) fn forget_conn(&self, ctx: &ConnCtx) {
        self.conns().remove(&ctx.id);
        self.world().forget_conn(ctx.id);
    }

    /// Live connections of one account (every device), newest last.
    fn conns_of(&self, phone: &str) -> Vec<(u64, LiveConn)> {
        let mut v: Vec<(u64, LiveConn)> = self
            .conns()
            .iter()
            .filter(|(_, c)| c.device.as_ref().is_some_and(|(p, _)| p == phone))
            .map(|(id, c)| (*id, c.clone()))
            .collect();
        v.sort_by_key(|(id, _)| *id);
        v
    }

    pub(crate) fn send_to_conn(&self, id: u64, ctl: Ctl) -> bool {
        let tx = self.conns().get(&id).map(|c| c.ctl.clone());
        tx.is_some_and(|tx| tx.send(ctl).is_ok())
    }

    /// Sends `node` to the live connections of device `device` of `phone`, if any.
    pub(crate) fn tell_device(&self, phone: &str, device: u16, node: Node) {
        for (conn, c) in self.conns_of(phone) {
            if c.device.as_ref().is_some_and(|(_, d)| *d == device) {
                self.send_to_conn(conn, Ctl::Send(node.clone()));
            }
        }
    }

    fn to_each_conn_of(&self, phone: &str, make: impl Fn() -> Ctl) -> usize {
        let conns = self.conns_of(phone);
        let mut n = 0;
        for (_, c) in conns {
            if c.ctl.send(make()).is_ok() {
                n += 1;
            }
        }
        n
    }

    /// Whether the account has a logged-in connection right now.
    pub fn is_online(&self, phone: &str) -> bool {
        !self.conns_of(phone).is_empty()
    }

    /// Waits until `phone` has a logged-in connection, up to `within`.
    pub async fn wait_online(&self, phone: &str, within: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + within;
        while tokio::time::Instant::now() < deadline {
            if self.is_online(phone) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        false
    }

    // ----- what the server can do to a session -----

    /// Another client took over the session: `<stream:error><conflict type="replaced"/>`
    /// (whatsmeow `handleStreamError`, case `conflictType == "replaced"`, which reads no
    /// code; whatsapp-rust `handle_stream_error` dispatches `StreamReplaced` for it).
    pub fn replace_session(&self, phone: &str) -> usize {
        self.to_each_conn_of(phone, || Ctl::Close(vec![world::stream_conflict("replaced")]))
    }

    /// The phone removed its linked devices (Settings, Linked devices, Log out): each live
    /// stream gets `<stream:error code="401"><conflict type="device_removed"/>` (whatsmeow
    /// `handleStreamError`, case `code == "401" && conflictType == "device_removed"`), the
    /// devices are forgotten, so later logins fail with `<failure reason="401">`
    /// (whatsmeow `handleConnectFailure`, `reason.IsLoggedOut()`), and the phone's other
    /// devices are told the device list changed. Returns the streams ended.
    pub fn unlink(&self, phone: &str) -> usize {
        let removed = self.world().unlink_all(phone);
        let n = self.to_each_conn_of(phone, || Ctl::Close(vec![world::device_removed()]));
        self.notify_devices_changed(phone, &removed, "remove");
        n
    }

    /// The phone unlinked the device: the same as [`unlink`](Self::unlink).
    pub fn log_out(&self, phone: &str) -> usize {
        self.unlink(phone)
    }

    /// WhatsApp bans or locks the account, as the server does it: a live stream is ended
    /// with `<stream:error code="503"/>` (never a `<failure>` inside a logged-in stream;
    /// whatsmeow `handleStreamError` case `"503"` and whatsapp-rust let the client
    /// reconnect), and every later login is refused with `<failure>`: `402` with `code`
    /// and `expire` until a temporary ban ends, `403` (locked) or `406` (banned) for good.
    /// Returns the streams ended.
    pub fn ban(&self, phone: &str, ban: Ban) -> usize {
        self.world().ensure_account(phone).enforcement = Some(rules::Enforcement::new(ban));
        self.to_each_conn_of(phone, || Ctl::Close(vec![world::stream_error("503")]))
    }

    /// A "reach-out timelock" on `phone` for `for_`: until it ends, a message from `phone`
    /// to a number that never wrote to it is refused with `<ack class="message"
    /// error="463">`; messages to numbers that wrote to it first go through.
    pub fn timelock(&self, phone: &str, for_: Duration) {
        self.world().ensure_account(phone).timelock_until = world::now() + for_.as_secs().max(1);
    }

    /// Refuses the next message `phone` sends with `<ack class="message" error=code>`
    /// (e.g. 479, "smax-invalid"), once.
    pub fn nack_next(&self, phone: &str, code: u16) {
        self.world().nack_next.insert(phone.to_string(), code);
    }

    /// Holds back the server's acks of messages `phone` sends: `Some(Some(d))` sends each
    /// `d` late, `Some(None)` never, `None` at once again. The messages are accepted either
    /// way.
    pub fn delay_acks(&self, phone: &str, delay: Option<Option<Duration>>) {
        let mut w = self.world();
        match delay {
            Some(d) => {
                w.ack_delays.insert(phone.to_string(), d);
            }
            None => {
                w.ack_delays.remove(phone);
            }
        }
    }

    /// Rate-limits `phone`'s devices for `for_`: their contact queries (usync) or group
    /// create / add / join are answered `<iq type="error"><error code="429"
    /// text="rate-overlimit"/>`.
    pub fn rate_limit(&self, phone: &str, scope: RateScope, for_: Duration) {
        let until = world::now() + for_.as_secs().max(1);
        let mut w = self.world();
        let acc = w.ensure_account(phone);
        match scope {
            RateScope::Usync => acc.usync_limited_until = until,
            RateScope::Groups => acc.groups_limited_until = until,
        }
    }

    /// Throttles pairing-code requests for `phone` (`Some`) or lifts it (`None`): they are
    /// refused with `400 bad-request`, carrying `backoff` seconds when given (rare on the
    /// real server). Numbers ending `0429` are always throttled, without a backoff.
    pub fn throttle_pair_codes(&self, phone: &str, throttle: Option<Option<Duration>>) {
        let mut w = self.world();
        match throttle {
            Some(backoff) => {
                let secs = backoff.map(|d| u32::try_from(d.as_secs()).unwrap_or(u32::MAX));
                w.pair_throttle.insert(phone.to_string(), secs);
            }
            None => {
                w.pair_throttle.remove(phone);
            }
        }
    }

    /// Takes `phone` off the network (`true`): its connections are dropped and its new
    /// ones refused right after the handshake, as a phone with no network would see; `false`
    /// lets it back. Other numbers are not affected (see [`set_offline`](Self::set_offline)).
    pub fn set_number_offline(&self, phone: &str, offline: bool) {
        self.world().ensure_account(phone).offline = offline;
        if offline {
            self.to_each_conn_of(phone, || Ctl::Drop);
        }
    }

    /// A connect failure with `reason` (as `<failure reason=..>`), sent now.
    pub fn connect_failure(&self, phone: &str, reason: u32) -> usize {
        self.to_each_conn_of(phone, || Ctl::Close(vec![world::failure(reason, None)]))
    }

    /// Makes every login of `phone` fail with `reason` until cleared with `None`.
    pub fn fail_logins(&self, phone: &str, reason: Option<u32>) {
        self.world().set_login_failure(phone, reason);
    }

    /// The server closes the stream cleanly (the routine recycle a real server does).
    pub fn recycle_stream(&self, phone: &str) -> usize {
        self.to_each_conn_of(phone, || Ctl::Close(Vec::new()))
    }

    /// The socket dies without a word.
    pub fn drop_socket(&self, phone: &str) -> usize {
        self.to_each_conn_of(phone, || Ctl::Drop)
    }

    /// Sends a raw node to every connection of `phone`.
    pub fn push_node(&self, phone: &str, node: Node) -> usize {
        self.to_each_conn_of(phone, || Ctl::Send(node.clone()))
    }

    // ----- the phone -----

    /// The phone of `phone` scans a QR string the client showed. Errors when no connection
    /// is showing that QR.
    pub fn scan_qr(&self, qr: &str, phone: &str) -> anyhow::Result<()> {
        phone::scan_qr(self, qr, phone)
    }

    /// The user types the pairing code the client showed into the phone of `phone`.
    pub fn enter_code(&self, phone: &str, code: &str) -> anyhow::Result<()> {
        phone::enter_code(self, phone, code)
    }

    /// The phone of `from` sends `text` to `to` (phone digits, or the JID of a group `from`
    /// is in), Signal-encrypted to each companion device of the recipient (or members):
    /// delivered at once to a connected one, queued for one that is not and delivered at
    /// its next login (see the `queue` module). Returns the message id. Errors when `from`
    /// or `to` is unknown, or `from` not in the group.
    pub fn send_from(&self, from: &str, to: &str, text: &str) -> anyhow::Result<String> {
        phone::send_from(self, from, to, text, phone::SendOpts::default())
    }

    /// As [`send_from`](Self::send_from) to a person, but from `from`'s LID alone, without
    /// its phone number (`from="<lid>@lid"`, no `sender_pn`): a sender whose number the
    /// recipient does not get to see.
    pub fn send_from_lid(&self, from: &str, to: &str, text: &str) -> anyhow::Result<String> {
        phone::send_from(self, from, to, text, phone::SendOpts { from_lid: true })
    }

    /// The phone of `from` sends a photo (`kind` `image`) or a document (`document`) to
    /// `to`: the file goes to the media servers encrypted, the message carries its
    /// reference. Returns the message id.
    pub fn send_file_from(
        &self,
        from: &str,
        to: &str,
        kind: &str,
        bytes: &[u8],
        file_name: &str,
        caption: &str,
    ) -> anyhow::Result<String> {
        media::send_file_from(self, from, to, kind, bytes, file_name, caption)
    }

    /// Whether `phone` is a WhatsApp user in this world.
    pub fn is_user(&self, phone: &str) -> bool {
        self.world().accounts.contains_key(phone)
    }

    /// Every receipt clients sent, oldest first.
    pub fn receipts(&self) -> Vec<Receipt> {
        self.inner.receipts.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Notes a `<receipt>` (its `id`, and the ids of a batched `<list>`); returns the ids.
    pub(crate) fn note_receipt(&self, ctx: &ConnCtx, node: &Node) -> Vec<String> {
        let from = ctx.device.as_ref().map(|(p, _)| p.clone()).unwrap_or_default();
        let kind = world::attr(node, "type");
        let mut ids = vec![world::attr(node, "id")];
        if let Some(list) = node.get_optional_child("list") {
            ids.extend(list.get_children_by_tag("item").map(|i| world::attr(i, "id")));
        }
        let mut r = self.inner.receipts.lock().unwrap_or_else(|e| e.into_inner());
        r.extend(ids.iter().map(|id| Receipt {
            from: from.clone(),
            id: id.clone(),
            kind: kind.clone(),
        }));
        ids
    }

    // ----- the world, for assertions and set-up -----

    /// Makes `phone` a WhatsApp user without a linked client (so it is "on WhatsApp" and
    /// can be messaged and added to groups).
    pub fn add_user(&self, phone: &str) {
        self.world().ensure_account(phone);
    }

    /// Registers a companion `device` of `phone` that was paired elsewhere (a store imported
    /// from whatsmeow): it may log in with exactly this static Noise public key, no other.
    pub fn link_device(&self, phone: &str, device: u16, noise_public: [u8; 32]) {
        let mut w = self.world();
        let acc = w.ensure_account(phone);
        acc.next_device = acc.next_device.max(device + 1);
        acc.devices.insert(
            device,
            world::Device {
                noise: Some(noise_public),
                keys: world::Keys {
                    reg_id: 0,
                    identity: [0; 32],
                    skey: None,
                    prekeys: std::collections::BTreeMap::new(),
                },
            },
        );
    }

    /// Marks a number as not on WhatsApp (the default for numbers never seen).
    pub fn remove_user(&self, phone: &str) {
        self.world().remove_account(phone);
    }

    /// Whether `phone` has a linked companion device.
    pub fn has_linked_device(&self, phone: &str) -> bool {
        self.world().has_linked_device(phone)
    }

    // --- proxy2 ---
    /// How clients reached this server so far: the sockets its listeners accepted and the
    /// connections and HTTP requests that came in-process (tests that must prove every byte
    /// came through a proxy read it, also from another process: `tgwa fake ingress`).
    pub fn ingress(&self) -> Ingress {
        self.inner.ingress.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub(crate) fn note_ingress(&self, f: impl FnOnce(&mut Ingress)) {
        f(&mut self.inner.ingress.lock().unwrap_or_else(|e| e.into_inner()));
    }

    /// whatsapp-rust's HTTP client for media, answered by this server's media hosts
    /// in-process (pass it to the client's builder: `with_http_client`).
    pub fn http_client(&self) -> FakeMediaHttp {
        FakeMediaHttp { fake: self.clone() }
    }

    /// How many app-state snapshots the server handed out (a device fetching a collection
    /// from version 0).
    pub fn app_state_snapshots(&self) -> usize {
        self.world().app_state_snapshots
    }

    /// Every file uploaded to the media servers, oldest first.
    pub fn uploads(&self) -> Vec<Upload> {
        self.world().media.uploads.clone()
    }

    /// Every message the server accepted, oldest first.
    pub fn sent_messages(&self) -> Vec<SentMessage> {
        self.world().sent.clone()
    }

    /// Notes the text of the accepted message `id` when no fake phone could read it (a phone
    /// restored from the state file has no Signal sessions; the fake backend tells the text
    /// after a send succeeded). A text a phone decrypted is kept. Does nothing when the server
    /// accepted no message with that id, so a message that was never sent is never recorded.
    /// Returns whether it found the message.
    pub fn note_text(&self, id: &str, text: &str) -> bool {
        let mut w = self.world();
        match w.sent.iter_mut().rev().find(|m| m.id == id) {
            Some(m) => {
                if m.text.is_none() {
                    m.text = Some(text.to_string());
                }
                true
            }
            None => false,
        }
    }

    /// A group as the server holds it.
    pub fn group(&self, id: &str) -> Option<GroupView> {
        self.world().group_view(id)
    }

    /// All groups.
    pub fn groups(&self) -> Vec<GroupView> {
        self.world().group_views()
    }

    /// Creates a group directly (owner first), e.g. to test joins; returns its JID.
    pub fn create_group(&self, owner: &str, subject: &str, members: &[&str], lid_addressed: bool) -> String {
        self.world().create_group_direct(owner, subject, members, lid_addressed)
    }

    /// Makes joining `group` by invite need the admins' approval.
    pub fn set_join_approval(&self, group: &str, on: bool) {
        self.world().set_join_approval(group, on);
    }

    // --- members ---
    /// `phone` asks to join `group` as a link would while approval is on (a user of the
    /// fake world is made for it if needed).
    pub fn request_to_join(&self, group: &str, phone: &str) {
        self.world().request_to_join(group, phone);
    }

    /// Lets the next `add` of `member` to any group fail with `code` (e.g. 403 privacy).
    pub fn refuse_add(&self, member: &str, code: u16) {
        self.world().refuse_add(member, code);
    }

    /// Answers every usync query by `phone`'s devices with a result-level error (`Some((code,
    /// backoff secs))`, inside `<usync><result>`; e.g. 429) until cleared with `None`: the
    /// query fails as a whole, unlike a per-number error ([`usync_error_for`]).
    ///
    /// [`usync_error_for`]: Self::usync_error_for
    pub fn usync_result_error(&self, phone: &str, error: Option<(u16, Option<u32>)>) {
        let mut w = self.world();
        match error {
            Some(e) => {
                w.usync_result_errors.insert(phone.to_string(), e);
            }
            None => {
                w.usync_result_errors.remove(phone);
            }
        }
    }

    /// Answers usync queries for `number` with a per-number error (e.g. 429 rate limit).
    pub fn usync_error_for(&self, number: &str, code: u16) {
        self.world().usync_error_for(number, code);
    }

    /// Maps an asked number to the canonical one WhatsApp returns (Brazil's added 9,
    /// Mexico's 521).
    pub fn set_canonical(&self, asked: &str, canonical: &str) {
        self.world().set_canonical(asked, canonical);
    }

    /// The LID user of `phone` (created on first use).
    pub fn lid_of(&self, phone: &str) -> String {
        self.world().ensure_account(phone).lid.clone()
    }

    /// Forgets that `phone` ever shared its number with `viewer` in LID groups: the group
    /// metadata then carries no `phone_number` attribute for it.
    pub fn hide_phone_in_lid_groups(&self, phone: &str) {
        self.world().hide_phone(phone);
    }

    /// Tells the devices of the people who know `phone` (who wrote to it or it wrote to, or
    /// share a group with it) that its device list changed: one `<notification
    /// type="devices">` per device (wacore `stanza/devices.rs`, after WA Web's
    /// `WAWebHandleDeviceNotification`: one operation per notification, with a
    /// `<key-index-list ts>`; whatsmeow `handleDeviceNotification`).
    pub(crate) fn notify_devices_changed(&self, phone: &str, devices: &[u16], op: &str) {
        let (nodes, watchers) = {
            let w = self.world();
            let nodes: Vec<Node> = devices
                .iter()
                .map(|d| world::devices_notification(&w, phone, *d, op))
                .collect();
            (nodes, w.contacts_of(phone))
        };
        if nodes.is_empty() {
            return;
        }
        for who in watchers {
            for (conn, _) in self.conns_of(&who) {
                for n in &nodes {
                    self.send_to_conn(conn, Ctl::Send(n.clone()));
                }
            }
        }
    }

    pub(crate) fn on_established(&self, ctx: &mut ConnCtx, payload: &waproto::whatsapp::ClientPayload) {
        world::on_established(self, ctx, payload);
    }

    pub(crate) fn on_node(&self, ctx: &mut ConnCtx, node: Node) {
        world::on_node(self, ctx, node);
    }
}
