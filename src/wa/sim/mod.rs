//! The in-process WhatsApp simulator (`TGWA_WA_BACKEND=sim`), for tests and local trials.
//!
//! One [`SimBackend`] per process stands in for the WhatsApp network: every account's session
//! goes through it, and they share one world (groups, members, invite codes, sent messages) in
//! `{data_dir}/.sim/world.db`, so a group one account creates can be joined by another, and a
//! restart keeps everything. Each account's session is written to the same
//! `whatsmeow-{tid}-{phone}.db` path as the real adapter's, holding a `device` table like
//! whatsapp-rust's store, so scan, validation and auto-login run the same code (the probe is
//! the real adapter's).
//!
//! Behaviour is chosen by the number's last four digits (DESIGN section 6): `0429` is
//! rate-limited, `0408` never confirms its code, `0401` is logged out from the phone and
//! `0402` temporarily banned a while after their first connection; `0409` is linked by another
//! phone (the same number ending in `9999`: a squatter scanning the QR or entering the code);
//! any other number pairs after the configured delay. Numbers ending in `00` are not on
//! WhatsApp.
//!
//! WhatsApp pushing back (issue 15), each once its account has sent three messages: `0406`
//! is banned for good (connect failure 406) and `0403` locked (403), at that moment and at
//! every later login; `0463` gets the reach-out timelock for an hour: its messages to numbers
//! that never wrote to it are refused with 463. `0440` is opened on another device (stream
//! replaced) a while after its first connection, once. People who are not tgwa accounts
//! write to an account through [`write_to`]; their messages arrive at its next connection.
//! What one simulated account sends to another's number, or to a group both are in, reaches
//! the other's session as an incoming [`WaEvent::Message`] (a mention is `@<digits>` in the
//! text); a session that is not connected gets it at its next login, marked `offline`.

mod access;
mod members;
mod world;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use async_trait::async_trait;
use rand::Rng;
use rusqlite::{Connection, OptionalExtension};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::{
    ChatTarget, EventRx, GroupId, GroupInfo, GroupSummary, JoinOutcome, Media, MediaKind, MediaRef, MemberAction,
    MemberResult, MessageKind, PairCode, Probe, Profile, SessionSpec, WaBackend, WaError, WaEvent, WaSession,
};
use crate::db::now;
use crate::ids::PhoneNumber;
use crate::layout::Layout;

pub use members::{read_join_requests, seed_join_request, seed_members};
pub use world::{read_media_sends, read_uploads, SimMediaSend, SimUpload};
pub use world::{read_sent_messages, read_typing, write_to, DeviceState, SentMessage};
use world::{Setting, World};

/// Crockford's base32 alphabet, which WhatsApp's pairing codes use.
const CODE_ALPHABET: &[u8] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// Simulator timing.
#[derive(Debug, Clone)]
pub struct SimOptions {
    /// From code issued (or QR shown) to the phone confirming.
    pub pair_delay: Duration,
    /// How long a pairing code lives.
    pub code_ttl: Duration,
    /// From the first connection to the logout (`0401`) or ban (`0402`).
    pub event_delay: Duration,
}

impl Default for SimOptions {
    fn default() -> Self {
        Self {
            pair_delay: Duration::from_secs(2),
            code_ttl: Duration::from_secs(180),
            event_delay: Duration::from_secs(3),
        }
    }
}

/// The live sessions by number, so a message one account sends reaches another's session
/// as an incoming message. Weak: a session ends with its owner.
type Registry = Arc<Mutex<HashMap<String, Weak<SimSession>>>>;

/// The simulated WhatsApp network shared by every account in the process.
pub struct SimBackend {
    world: Arc<World>,
    options: SimOptions,
    ops: Arc<AtomicU64>,
    /// The sessions that messages are delivered to.
    live: Registry,
}

/// How the simulated phone behind a number acts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Behaviour {
    Normal,
    RateLimited,
    NeverConfirms,
    LoggedOutLater,
    BannedLater,
    /// The phone that confirms the link is another number (someone squatting this one).
    OtherPhoneLinks,
    /// Banned for good (406) once it has sent [`PUSHBACK_AFTER`] messages.
    BannedForGood,
    /// Locked (403) once it has sent [`PUSHBACK_AFTER`] messages.
    Locked,
    /// Reach-out timelock (463) for an hour once it has sent [`PUSHBACK_AFTER`] messages.
    Timelocked,
    /// Opened on another device a while after its first connection.
    Replaced,
}

/// Messages an account of the pushback rows sends before WhatsApp pushes back.
const PUSHBACK_AFTER: i64 = 3;
/// How long the simulated reach-out timelock lasts.
const TIMELOCK_SECS: i64 = 3600;

impl Behaviour {
    fn of(p: &PhoneNumber) -> Self {
        match p.last4() {
            "0429" => Behaviour::RateLimited,
            "0408" => Behaviour::NeverConfirms,
            "0401" => Behaviour::LoggedOutLater,
            "0402" => Behaviour::BannedLater,
            "0409" => Behaviour::OtherPhoneLinks,
            "0406" => Behaviour::BannedForGood,
            "0403" => Behaviour::Locked,
            "0463" => Behaviour::Timelocked,
            "0440" => Behaviour::Replaced,
            _ => Behaviour::Normal,
        }
    }

    /// Whether the server pushes back once this row has sent [`PUSHBACK_AFTER`] messages.
    fn pushes_back(self) -> bool {
        matches!(
            self,
            Behaviour::BannedForGood | Behaviour::Locked | Behaviour::Timelocked
        )
    }
}

/// A fresh pairing code.
fn pair_code() -> String {
    let mut rng = rand::thread_rng();
    (0..8)
        .map(|_| CODE_ALPHABET[rng.gen_range(0..CODE_ALPHABET.len())] as char)
        .collect()
}

fn io(e: impl std::fmt::Display) -> WaError {
    WaError::Storage(e.to_string())
}

/// Opens (creating) a session store with the same `device` table whatsapp-rust keeps; returns
/// the paired phone JID, if any.
fn open_store(path: &Path) -> Result<Option<String>, WaError> {
    if !path.exists() {
        crate::db::create_private_file(path).map_err(io)?;
    }
    let c = Connection::open(path).map_err(io)?;
    c.busy_timeout(Duration::from_secs(5)).map_err(io)?;
    c.execute_batch(
        "CREATE TABLE IF NOT EXISTS device (
             id  INTEGER PRIMARY KEY,
             pn  TEXT NOT NULL DEFAULT '',
             lid TEXT NOT NULL DEFAULT '',
             push_name TEXT NOT NULL DEFAULT ''
         );
         INSERT OR IGNORE INTO device (id) VALUES (1);",
    )
    .map_err(|e| WaError::Storage(format!("{}: not a session store: {e}", path.display())))?;
    let pn: Option<String> = c
        .query_row("SELECT pn FROM device WHERE id = 1 AND pn <> ''", [], |r| r.get(0))
        .optional()
        .map_err(io)?;
    Ok(pn)
}

/// Writes (or with `None` clears) the paired device in the session store.
fn write_device(path: &Path, pn: Option<&str>) -> Result<(), WaError> {
    let c = Connection::open(path).map_err(io)?;
    c.busy_timeout(Duration::from_secs(5)).map_err(io)?;
    c.execute("UPDATE device SET pn = ?1 WHERE id = 1", [pn.unwrap_or("")])
        .map_err(io)?;
    Ok(())
}

impl SimBackend {
    /// Opens (or creates) the world in `{data_dir}/.sim/world.db`.
    pub async fn open(layout: &Layout, pair_delay: Duration, code_ttl: Duration) -> Result<Arc<Self>, WaError> {
        Self::open_with(
            layout,
            SimOptions {
                pair_delay,
                code_ttl,
                ..SimOptions::default()
            },
        )
        .await
    }

    /// Like [`Self::open`] with every timing chosen.
    pub async fn open_with(layout: &Layout, options: SimOptions) -> Result<Arc<Self>, WaError> {
        let path = layout.sim_dir().join("world.db");
        let world = crate::db::blocking(move || Ok(World::open(&path)))
            .await
            .map_err(io)??;
        Ok(Arc::new(Self {
            world: Arc::new(world),
            options,
            ops: Arc::new(AtomicU64::new(0)),
            live: Arc::default(),
        }))
    }

    /// The world file.
    pub fn world_path(&self) -> PathBuf {
        self.world.path().to_path_buf()
    }

    /// Every message the network carried, oldest first.
    pub async fn sent_messages(&self) -> Result<Vec<SentMessage>, WaError> {
        self.world.run(|c| world::messages(c)).await
    }

    /// A group's metadata, whoever asks.
    pub async fn group(&self, id: &GroupId) -> Result<Option<GroupInfo>, WaError> {
        let jid = id.as_str().to_string();
        self.world.run(move |c| world::info(c, &jid)).await
    }

    /// A group's members (empty if there is no such group).
    pub async fn group_members(&self, id: &GroupId) -> Result<Vec<super::Member>, WaError> {
        Ok(self.group(id).await?.map(|g| g.members).unwrap_or_default())
    }

    /// What the network remembers about a number's device.
    pub async fn device_state(&self, phone: &PhoneNumber) -> Result<DeviceState, WaError> {
        let p = phone.digits().to_string();
        self.world.run(move |c| world::device(c, &p)).await
    }

    /// Makes joining `id` by link wait for an admin's approval.
    pub async fn set_join_approval(&self, id: &GroupId, on: bool) -> Result<(), WaError> {
        let id = id.clone();
        self.world.run(move |c| world::set_approval(c, &id, on)).await
    }

    /// How many group, message and contact operations were served.
    pub fn op_count(&self) -> u64 {
        self.ops.load(Ordering::Relaxed)
    }
}

#[async_trait]
impl WaBackend for SimBackend {
    async fn start(&self, spec: SessionSpec) -> Result<(Arc<dyn WaSession>, EventRx), WaError> {
        let path = spec.session_file.clone();
        let pn = crate::db::blocking(move || Ok(open_store(&path))).await.map_err(io)??;
        let (tx, rx) = mpsc::unbounded_channel();
        let session = Arc::new_cyclic(|me| SimSession {
            me: me.clone(),
            world: self.world.clone(),
            options: self.options.clone(),
            ops: self.ops.clone(),
            phone: spec.phone.clone(),
            file: spec.session_file.clone(),
            live: self.live.clone(),
            state: Mutex::new(State {
                paired: pn.is_some(),
                ..State::default()
            }),
            events: Mutex::new(Some(tx)),
            tasks: Mutex::new(Vec::new()),
        });
        {
            let mut live = self.live.lock().unwrap_or_else(|e| e.into_inner());
            live.retain(|_, w| w.strong_count() > 0);
            live.insert(spec.phone.digits().to_string(), Arc::downgrade(&session));
        }
        if pn.is_some() {
            let s = session.clone();
            session.spawn(async move { s.come_online().await });
        }
        Ok((session, rx))
    }

    async fn probe(&self, session_file: &Path) -> Result<Probe, WaError> {
        super::real::probe::probe(session_file).await
    }
}

#[derive(Default)]
struct State {
    paired: bool,
    connected: bool,
    stopped: bool,
    /// Bumped by every code request, cancel and logout: a confirmation for an older
    /// generation is ignored.
    generation: u64,
}

/// One simulated account's session.
struct SimSession {
    /// Itself, for the tasks it spawns.
    me: Weak<SimSession>,
    world: Arc<World>,
    options: SimOptions,
    ops: Arc<AtomicU64>,
    phone: PhoneNumber,
    file: PathBuf,
    /// Every live session of the process, to deliver what this one sends.
    live: Registry,
    state: Mutex<State>,
    events: Mutex<Option<mpsc::UnboundedSender<WaEvent>>>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl SimSession {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn emit(&self, ev: WaEvent) {
        if let Some(tx) = self.events.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
            let _ = tx.send(ev);
        }
    }

    /// Ends the event stream (the run loop of a real client ends the same way).
    fn close(&self) {
        self.events.lock().unwrap_or_else(|e| e.into_inner()).take();
    }

    fn spawn(&self, fut: impl std::future::Future<Output = ()> + Send + 'static) {
        let mut tasks = self.tasks.lock().unwrap_or_else(|e| e.into_inner());
        tasks.retain(|t| !t.is_finished());
        tasks.push(tokio::spawn(fut));
    }

    fn self_arc(&self) -> Result<Arc<SimSession>, WaError> {
        self.me.upgrade().ok_or(WaError::NotConnected)
    }

    fn digits(&self) -> String {
        self.phone.digits().to_string()
    }

    fn jid(&self) -> String {
        format!("{}:7@s.whatsapp.net", self.phone.digits())
    }

    /// A paired session connects; the `0401`/`0402` numbers get their fate on schedule.
    async fn come_online(self: Arc<Self>) {
        tokio::task::yield_now().await;
        let me = self.digits();
        let dev = match self.world.run(move |c| world::connected(c, &me)).await {
            Ok(d) => d,
            Err(e) => {
                self.emit(WaEvent::Disconnected { reason: e.to_string() });
                return;
            }
        };
        if let Some(until) = dev.ban_until.filter(|u| *u > now()) {
            self.emit(WaEvent::TemporaryBan {
                reason: "101".into(),
                until,
            });
            self.close();
            return;
        }
        if self.banned_at_login().await {
            return;
        }
        if self.state().stopped {
            return;
        }
        self.state().connected = true;
        self.emit(WaEvent::Connected);
        // What was sent while this device was away arrives now, marked as queued offline.
        self.receive(true).await;
        let behaviour = Behaviour::of(&self.phone);
        let me = self.digits();
        let replaced = self
            .world
            .run(move |c| world::fate(c, &me, "replaced"))
            .await
            .ok()
            .flatten()
            .is_some();
        let pending = match behaviour {
            Behaviour::LoggedOutLater => !dev.logged_out,
            Behaviour::BannedLater => !dev.banned_once,
            Behaviour::Replaced => !replaced,
            _ => false,
        };
        if !pending {
            return;
        }
        let first = dev.first_connected.unwrap_or_else(now);
        let elapsed = Duration::from_secs(now().saturating_sub(first).max(0) as u64);
        tokio::time::sleep(self.options.event_delay.saturating_sub(elapsed)).await;
        if self.state().stopped {
            return;
        }
        let me = self.digits();
        if behaviour == Behaviour::Replaced {
            let _ = self.world.run(move |c| world::set_fate(c, &me, "replaced", None)).await;
            self.state().connected = false;
            self.emit(WaEvent::StreamReplaced);
        } else if behaviour == Behaviour::LoggedOutLater {
            let file = self.file.clone();
            let _ = self.world.run(move |c| world::mark_logged_out(c, &me)).await;
            let _ = crate::db::blocking(move || Ok(write_device(&file, None))).await;
            {
                let mut st = self.state();
                st.connected = false;
                st.paired = false;
            }
            self.emit(WaEvent::LoggedOut {
                reason: "the device was removed from the phone".into(),
            });
        } else {
            let until = now() + 3600;
            let _ = self.world.run(move |c| world::mark_banned(c, &me, until)).await;
            self.state().connected = false;
            self.emit(WaEvent::TemporaryBan {
                reason: "101".into(),
                until,
            });
        }
        self.close();
    }

    /// A number banned or locked for good is refused at every login (connect failure 406 or
    /// 403, which the real client reports as a logout). Returns whether it was.
    async fn banned_at_login(&self) -> bool {
        let me = self.digits();
        let fates = self
            .world
            .run(move |c| Ok((world::fate(c, &me, "banned")?, world::fate(c, &me, "locked")?)))
            .await;
        let locked = match fates {
            Ok((Some(_), _)) => false,
            Ok((None, Some(_))) => true,
            _ => return false,
        };
        self.ban_for_good(locked);
        true
    }

    /// Ends the session with a ban for good.
    fn ban_for_good(&self, locked: bool) {
        self.state().connected = false;
        let (code, what) = if locked { (403, "locked") } else { (406, "banned") };
        self.emit(WaEvent::AccountBanned {
            reason: format!("WhatsApp {what} the account ({code})"),
            locked,
        });
        self.close();
    }

    /// The phone confirms the link (code entered or QR scanned) for generation `gen`.
    async fn confirm(self: Arc<Self>, gen: u64) {
        {
            let st = self.state();
            if st.stopped || st.generation != gen {
                return;
            }
        }
        let file = self.file.clone();
        let pn = if Behaviour::of(&self.phone) == Behaviour::OtherPhoneLinks {
            // The same number with its last four digits as 9999.
            let d = self.digits();
            format!("{}9999:7@s.whatsapp.net", &d[..d.len() - 4])
        } else {
            self.jid()
        };
        let linked = pn.clone();
        if let Err(e) = crate::db::blocking(move || Ok(write_device(&file, Some(&pn))))
            .await
            .map_err(io)
            .and_then(|r| r)
        {
            self.emit(WaEvent::PairFailed {
                reason: e.to_string(),
                retry_after: None,
            });
            return;
        }
        let me = self.digits();
        let _ = self.world.run(move |c| world::paired(c, &me)).await;
        self.state().paired = true;
        self.emit(WaEvent::PairSuccess { jid: linked });
        self.come_online().await;
    }

    /// Delivers every message waiting for this number as incoming-message events (in the
    /// order the network carried them), while connected. The events are sent inside the
    /// world's lock, so two deliveries never interleave or repeat a message.
    async fn receive(self: &Arc<Self>, offline: bool) {
        if !self.state().connected {
            return;
        }
        let Some(tx) = self.events.lock().unwrap_or_else(|e| e.into_inner()).clone() else {
            return;
        };
        let me = self.digits();
        let session = self.clone();
        let res = self
            .world
            .run(move |c| {
                // Checked again under the world's lock: a delivery queued before a disconnect
                // but run after it (the blocking pool can be slow) must not move the cursor
                // past messages the next session of this number should get.
                if !session.state().connected {
                    return Ok(());
                }
                for ev in world::take_incoming(c, &me, offline)? {
                    let _ = tx.send(ev);
                }
                Ok(())
            })
            .await;
        if let Err(e) = res {
            tracing::warn!(error = %e, "simulator: could not deliver incoming messages");
        }
    }

    /// Records a message from this account and hands it to the recipients that are online.
    async fn send_message(
        &self,
        to: &ChatTarget,
        text: &str,
        media: Option<(MessageKind, Media)>,
    ) -> Result<String, WaError> {
        let me = self.ready()?;
        let behaviour = Behaviour::of(&self.phone);
        let (to, text) = (to.clone(), text.to_string());
        let (id, recipients, sent) = self
            .world
            .run(move |c| {
                if let (Behaviour::Timelocked, ChatTarget::Phone(p)) = (behaviour, &to) {
                    // The timelock refuses a first message to a stranger (the ack's error 463).
                    if let Some(until) = world::fate(c, &me, "timelock")?.flatten().filter(|u| *u > now()) {
                        if !world::wrote_to(c, p.digits(), &me)? {
                            return Err(WaError::ReachOutLimited { until: Some(until) });
                        }
                    }
                }
                let id = world::send_with(c, &me, &to, &text, media.as_ref().map(|(k, m)| (*k, m)))?;
                // Only the pushback rows act on their count: the others need no count.
                let sent = if behaviour.pushes_back() {
                    world::sent_count(c, &me)?
                } else {
                    0
                };
                Ok((id, world::recipients(c, &me, &to)?, sent))
            })
            .await?;
        if sent >= PUSHBACK_AFTER {
            self.push_back(behaviour).await;
        }
        let sessions: Vec<Arc<SimSession>> = {
            let live = self.live.lock().unwrap_or_else(|e| e.into_inner());
            recipients
                .iter()
                .filter_map(|p| live.get(p).and_then(Weak::upgrade))
                .collect()
        };
        for s in sessions {
            s.receive(false).await;
        }
        Ok(id)
    }

    fn new_generation(&self) -> Result<u64, WaError> {
        let mut st = self.state();
        if st.stopped {
            return Err(WaError::NotConnected);
        }
        if st.paired {
            return Err(WaError::Invalid("this session is already paired".into()));
        }
        st.generation += 1;
        Ok(st.generation)
    }

    /// Counts an operation and checks the session can serve it.
    fn ready(&self) -> Result<String, WaError> {
        self.ops.fetch_add(1, Ordering::Relaxed);
        let st = self.state();
        if st.stopped || !st.connected {
            return Err(WaError::NotConnected);
        }
        if !st.paired {
            return Err(WaError::NotPaired);
        }
        Ok(self.digits())
    }
}

impl SimSession {
    /// What a pushback row does once it has sent enough: a ban or lock ends the session now
    /// (the real server drops the stream and refuses the next login); a timelock starts.
    async fn push_back(&self, behaviour: Behaviour) {
        let me = self.digits();
        match behaviour {
            Behaviour::BannedForGood | Behaviour::Locked => {
                let locked = behaviour == Behaviour::Locked;
                let what = if locked { "locked" } else { "banned" };
                let _ = self.world.run(move |c| world::set_fate(c, &me, what, None)).await;
                self.ban_for_good(locked);
            }
            Behaviour::Timelocked => {
                let until = now() + TIMELOCK_SECS;
                let _ = self
                    .world
                    .run(move |c| world::set_fate(c, &me, "timelock", Some(until)))
                    .await;
            }
            _ => {}
        }
    }
}

impl Drop for SimSession {
    fn drop(&mut self) {
        for t in self.tasks.get_mut().unwrap_or_else(|e| e.into_inner()).drain(..) {
            t.abort();
        }
    }
}

#[async_trait]
impl WaSession for SimSession {
    async fn request_pair_code(&self, phone: &PhoneNumber) -> Result<PairCode, WaError> {
        if Behaviour::of(phone) == Behaviour::RateLimited {
            return Err(WaError::RateLimited {
                retry_after: Some(Duration::from_secs(60)),
            });
        }
        let gen = self.new_generation()?;
        let code = PairCode {
            code: pair_code(),
            ttl: self.options.code_ttl,
        };
        let me = self.self_arc()?;
        let opts = self.options.clone();
        let never = Behaviour::of(phone) == Behaviour::NeverConfirms;
        self.spawn(async move {
            if never {
                tokio::time::sleep(opts.code_ttl).await;
                let current = {
                    let st = me.state();
                    !st.stopped && st.generation == gen
                };
                if current {
                    me.emit(WaEvent::PairFailed {
                        reason: "pairing code expired".into(),
                        retry_after: None,
                    });
                }
            } else {
                tokio::time::sleep(opts.pair_delay).await;
                me.confirm(gen).await;
            }
        });
        Ok(code)
    }

    async fn start_qr(&self) -> Result<(), WaError> {
        let gen = self.new_generation()?;
        let me = self.self_arc()?;
        let opts = self.options.clone();
        let never = Behaviour::of(&self.phone) == Behaviour::NeverConfirms;
        self.spawn(async move {
            let current = |m: &SimSession| {
                let st = m.state();
                !st.stopped && st.generation == gen
            };
            let scan_at = tokio::time::Instant::now() + opts.pair_delay;
            for round in 0..6 {
                if !current(&me) {
                    return;
                }
                let ttl = Duration::from_secs(if round == 0 { 60 } else { 20 });
                me.emit(WaEvent::Qr {
                    code: format!("2@{}", pair_code()),
                    ttl,
                });
                let round_end = tokio::time::Instant::now() + ttl;
                if !never && scan_at <= round_end {
                    tokio::time::sleep_until(scan_at).await;
                    me.confirm(gen).await;
                    return;
                }
                tokio::time::sleep_until(round_end).await;
            }
            if current(&me) {
                me.emit(WaEvent::PairFailed {
                    reason: "QR code timed out".into(),
                    retry_after: None,
                });
            }
        });
        Ok(())
    }

    async fn cancel_pair_code(&self) -> Result<(), WaError> {
        self.state().generation += 1;
        Ok(())
    }

    async fn logout(&self) -> Result<(), WaError> {
        {
            let mut st = self.state();
            if !st.paired {
                return Err(WaError::NotPaired);
            }
            st.generation += 1;
            st.paired = false;
            st.connected = false;
        }
        let file = self.file.clone();
        crate::db::blocking(move || Ok(write_device(&file, None)))
            .await
            .map_err(io)??;
        let me = self.digits();
        let _ = self.world.run(move |c| world::paired(c, &me)).await;
        self.close();
        Ok(())
    }

    async fn disconnect(&self, _bound: Duration) {
        {
            let mut st = self.state();
            st.stopped = true;
            st.connected = false;
        }
        for t in self.tasks.lock().unwrap_or_else(|e| e.into_inner()).drain(..) {
            t.abort();
        }
        self.close();
    }

    async fn profile(&self) -> Result<Profile, WaError> {
        self.ready()?;
        Ok(Profile {
            jid: self.jid(),
            phone: Some(self.phone.clone()),
            push_name: format!("Sim {}", self.phone.last4()),
        })
    }

    async fn send_text(&self, to: &ChatTarget, text: &str) -> Result<String, WaError> {
        self.send_message(to, text, None).await
    }

    async fn send_media(
        &self,
        to: &ChatTarget,
        kind: MessageKind,
        media: &Media,
        caption: &str,
    ) -> Result<String, WaError> {
        if !matches!(kind, MessageKind::Image | MessageKind::Document) || media.bytes.is_empty() {
            return Err(WaError::Invalid("only photos and documents can be sent".into()));
        }
        self.send_message(to, caption, Some((kind, media.clone()))).await
    }

    async fn upload_media(
        &self,
        kind: MediaKind,
        bytes: &[u8],
        mime: &str,
        file_name: &str,
    ) -> Result<MediaRef, WaError> {
        let me = self.ready()?;
        if bytes.is_empty() {
            return Err(WaError::Invalid("an empty file cannot be sent".into()));
        }
        if bytes.len() as u64 > kind.limit() {
            return Err(WaError::Invalid(format!(
                "the file is over WhatsApp's {} MB limit",
                kind.limit() >> 20
            )));
        }
        let (data, m, n) = (bytes.to_vec(), mime.to_string(), file_name.to_string());
        let id = self
            .world
            .run(move |c| world::upload(c, &me, kind.as_str(), &m, &n, &data))
            .await?;
        Ok(MediaRef {
            kind,
            mime: mime.to_string(),
            file_name: file_name.to_string(),
            size: bytes.len() as u64,
            url: format!("sim://upload/{id}"),
            direct_path: format!("/sim/{id}"),
            media_key: Vec::new(),
            file_sha256: crate::wa::sha256(bytes).to_vec(),
            file_enc_sha256: Vec::new(),
            media_key_timestamp: now(),
            streaming_sidecar: None,
        })
    }

    async fn send_uploaded(&self, to: &ChatTarget, media: &MediaRef, caption: &str) -> Result<String, WaError> {
        self.ready()?;
        let id: i64 = media
            .direct_path
            .strip_prefix("/sim/")
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| WaError::Invalid("not a simulator upload".into()))?;
        let file = self.world.run(move |c| world::uploaded(c, id)).await?;
        // Voice notes and audio carry no caption in WhatsApp.
        let caption = match media.kind {
            MediaKind::Voice | MediaKind::Audio => "",
            _ => caption,
        };
        let msg = self
            .send_message(to, caption, Some((media.kind.message_kind(), file)))
            .await?;
        let (mid, kind) = (msg.clone(), media.kind.as_str());
        self.world
            .run(move |c| world::note_media_send(c, &mid, id, kind))
            .await?;
        Ok(msg)
    }

    async fn show_typing(&self, to: &ChatTarget, how_long: Duration) -> Result<(), WaError> {
        let me = self.ready()?;
        let to = match to {
            ChatTarget::Phone(p) => p.digits().to_string(),
            ChatTarget::Group(g) => g.as_str().to_string(),
        };
        let ms = how_long.as_millis() as u64;
        self.world.run(move |c| world::typing(c, &me, &to, ms)).await?;
        tokio::time::sleep(how_long).await;
        Ok(())
    }

    async fn reach_out_until(&self) -> Option<i64> {
        let me = self.digits();
        self.world
            .run(move |c| world::fate(c, &me, "timelock"))
            .await
            .ok()
            .flatten()
            .flatten()
    }

    async fn groups(&self) -> Result<Vec<GroupSummary>, WaError> {
        let me = self.ready()?;
        self.world.run(move |c| world::groups_of(c, &me)).await
    }

    async fn group_info(&self, id: &GroupId) -> Result<GroupInfo, WaError> {
        let me = self.ready()?;
        let id = id.clone();
        self.world.run(move |c| world::group_info(c, &me, &id)).await
    }

    async fn create_group(&self, subject: &str, members: &[PhoneNumber]) -> Result<GroupInfo, WaError> {
        let me = self.ready()?;
        let (subject, members) = (subject.to_string(), members.to_vec());
        self.world
            .run(move |c| world::create_group(c, &me, &subject, &members))
            .await
    }

    async fn invite_link(&self, id: &GroupId, reset: bool) -> Result<String, WaError> {
        let me = self.ready()?;
        let id = id.clone();
        self.world.run(move |c| world::invite_link(c, &me, &id, reset)).await
    }

    async fn join_group(&self, link_or_code: &str) -> Result<JoinOutcome, WaError> {
        let me = self.ready()?;
        let link = link_or_code.to_string();
        self.world.run(move |c| world::join(c, &me, &link)).await
    }

    async fn leave_group(&self, id: &GroupId) -> Result<(), WaError> {
        let me = self.ready()?;
        let id = id.clone();
        self.world.run(move |c| world::leave(c, &me, &id)).await
    }

    async fn set_subject(&self, id: &GroupId, subject: &str) -> Result<(), WaError> {
        let me = self.ready()?;
        let (id, s) = (id.clone(), subject.to_string());
        self.world
            .run(move |c| world::set(c, &me, &id, Setting::Subject(&s)))
            .await
    }

    async fn set_description(&self, id: &GroupId, description: Option<&str>) -> Result<(), WaError> {
        let me = self.ready()?;
        let (id, d) = (id.clone(), description.map(str::to_string));
        self.world
            .run(move |c| world::set(c, &me, &id, Setting::Description(d.as_deref())))
            .await
    }

    async fn set_announce(&self, id: &GroupId, on: bool) -> Result<(), WaError> {
        let me = self.ready()?;
        let id = id.clone();
        self.world
            .run(move |c| world::set(c, &me, &id, Setting::Announce(on)))
            .await
    }

    async fn set_locked(&self, id: &GroupId, on: bool) -> Result<(), WaError> {
        let me = self.ready()?;
        let id = id.clone();
        self.world
            .run(move |c| world::set(c, &me, &id, Setting::Locked(on)))
            .await
    }

    async fn update_members(
        &self,
        id: &GroupId,
        action: MemberAction,
        members: &[PhoneNumber],
    ) -> Result<Vec<MemberResult>, WaError> {
        let me = self.ready()?;
        let (id, members) = (id.clone(), members.to_vec());
        self.world
            .run(move |c| world::update_members(c, &me, &id, action, &members))
            .await
    }

    async fn is_on_whatsapp(&self, numbers: &[PhoneNumber]) -> Result<Vec<(PhoneNumber, bool)>, WaError> {
        self.ready()?;
        Ok(numbers.iter().map(|n| (n.clone(), world::on_whatsapp(n))).collect())
    }

    // --- members ---
    async fn group_roster(&self, id: &GroupId) -> Result<Vec<super::RosterEntry>, WaError> {
        let me = self.ready()?;
        let id = id.clone();
        self.world.run(move |c| members::roster(c, &me, &id)).await
    }

    async fn join_requests(&self, id: &GroupId) -> Result<Vec<super::JoinRequest>, WaError> {
        let me = self.ready()?;
        let id = id.clone();
        self.world.run(move |c| members::requests(c, &me, &id)).await
    }

    async fn answer_join_requests(
        &self,
        id: &GroupId,
        approve: bool,
        who: &[super::PersonId],
    ) -> Result<Vec<super::RequestResult>, WaError> {
        let me = self.ready()?;
        let (id, who) = (id.clone(), who.to_vec());
        self.world
            .run(move |c| members::answer(c, &me, &id, approve, &who))
            .await
    }

    async fn join_approval(&self, id: &GroupId) -> Result<bool, WaError> {
        let me = self.ready()?;
        let id = id.clone();
        self.world.run(move |c| members::approval(c, &me, &id)).await
    }

    async fn set_join_approval(&self, id: &GroupId, on: bool) -> Result<(), WaError> {
        let me = self.ready()?;
        let id = id.clone();
        self.world.run(move |c| members::set_approval(c, &me, &id, on)).await
    }
}
