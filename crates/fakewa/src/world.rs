//! The shared world (accounts, devices, keys, groups, messages) and the server's answers to
//! what a client sends. Every answer is built in the shape wacore's own parsers read.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use serde::{Deserialize, Serialize};
use tracing::debug;
use wacore_binary::builder::NodeBuilder;
use wacore_binary::{Node, NodeContent};
use wacore_libsignal::protocol::KeyPair;
use waproto::whatsapp as wa;

use crate::conn::{After, ConnCtx};
use crate::FakeWhatsApp;

pub(crate) const SERVER: &str = "s.whatsapp.net";

/// A message the server accepted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SentMessage {
    /// Sender's phone number.
    pub from: String,
    /// Recipient JID as the client addressed it (`...@s.whatsapp.net` or `...@g.us`).
    pub to: String,
    /// Message ID.
    pub id: String,
    /// Devices the client encrypted it for (`user:device`), sorted.
    pub recipients: Vec<String>,
    /// The text, as the recipient's phone (or, in a group, a member's phone) decrypted it;
    /// `None` when no fake phone could read it or it carried no text. The fake backend
    /// fills a `None` from the sender's side after the send succeeded
    /// ([`crate::FakeWhatsApp::note_text`]): phones restored from a state file have no
    /// Signal sessions and cannot read what companions send them.
    #[serde(default)]
    pub text: Option<String>,
    /// Every kind of `<enc>` the stanza carried (`msg`, `pkmsg`, `skmsg`), sorted, once each.
    #[serde(default)]
    pub encryption: Vec<String>,
    /// The file of a media message, as a recipient's phone downloaded and decrypted it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media: Option<crate::media::ReceivedMedia>,
    // --- proxy2 ---
    /// Whether a recipient's phone decrypted it (its `text` or `media` came from that, not
    /// from [`crate::FakeWhatsApp::note_text`]'s sender-side record).
    #[serde(default)]
    pub read_by_phone: bool,
}

/// A group member as the server sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberView {
    pub phone: String,
    pub admin: bool,
    pub super_admin: bool,
}

/// A group as the server holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupView {
    pub id: String,
    pub subject: String,
    pub description: Option<String>,
    pub announce: bool,
    pub locked: bool,
    pub lid_addressed: bool,
    pub members: Vec<MemberView>,
    pub pending: Vec<String>,
    /// The current invite code.
    pub invite_code: String,
}

/// The Signal keys of a device, as uploaded (companions) or generated (the fake phones).
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct Keys {
    pub reg_id: u32,
    pub identity: [u8; 32],
    pub skey: Option<(u32, [u8; 32], Vec<u8>)>,
    pub prekeys: BTreeMap<u32, [u8; 32]>,
}

#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct Device {
    /// The static Noise key this device must log in with (none for the phone).
    pub noise: Option<[u8; 32]>,
    pub keys: Keys,
}

#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct Account {
    pub phone: String,
    pub lid: String,
    /// Device 0 is the phone; companions from 1 up.
    pub devices: BTreeMap<u16, Device>,
    /// The phone's private keys, so its bundle verifies and it can sign pairings.
    pub phone_identity: KeyPair,
    pub next_device: u16,
    pub login_failure: Option<u32>,
    /// A ban or lock in force ([`crate::FakeWhatsApp::ban`]).
    #[serde(default)]
    pub enforcement: Option<crate::rules::Enforcement>,
    /// Unix seconds until which the reach-out timelock holds.
    #[serde(default)]
    pub timelock_until: u64,
    /// Unix seconds until which usync queries are refused with 429.
    #[serde(default)]
    pub usync_limited_until: u64,
    /// Unix seconds until which group create / add / join are refused with 429.
    #[serde(default)]
    pub groups_limited_until: u64,
    /// The number is off the network ([`crate::FakeWhatsApp::set_number_offline`]).
    #[serde(default)]
    pub offline: bool,
    pub first_login_seen: bool,
    /// Companion devices the phone removed (or that logged out): the server never takes
    /// them back, not even under `trust_unknown_devices`.
    #[serde(default)]
    pub removed_devices: BTreeSet<u16>,
}

/// A registration in progress on an unpaired connection.
#[derive(Clone)]
pub(crate) struct Registration {
    pub noise: [u8; 32],
    pub keys: Keys,
    pub refs: Vec<String>,
    /// Set once the phone sent `pair-success`: (phone, device id).
    pub pairing: Option<(String, u16)>,
}

#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct Group {
    pub id: String,
    pub subject: String,
    pub description: Option<(String, String)>,
    pub announce: bool,
    pub locked: bool,
    pub lid_addressed: bool,
    pub approval: bool,
    pub creator: String,
    pub created: u64,
    /// phone -> (admin, super admin)
    pub members: BTreeMap<String, (bool, bool)>,
    pub pending: BTreeSet<String>,
    pub invite: String,
    /// Invite codes reset before, which now answer 410 "gone".
    #[serde(default)]
    pub revoked: Vec<String>,
    // --- members ---
    /// When each pending requester asked (Unix seconds), for `request_time`.
    #[serde(default)]
    pub requested_at: BTreeMap<String, u64>,
}

pub(crate) struct World {
    pub accounts: BTreeMap<String, Account>,
    pub regs: HashMap<u64, Registration>,
    pub sent: Vec<SentMessage>,
    pub groups: BTreeMap<String, Group>,
    pub add_refusals: HashMap<String, u16>,
    pub usync_errors: HashMap<String, u16>,
    pub canonical: HashMap<String, String>,
    pub hidden_phones: HashSet<String>,
    /// Pairing-code flows in progress, newest last.
    pub code_flows: Vec<crate::phone::CodeFlow>,
    /// Each fake phone's private Signal state, by phone digits. Not kept in the state file.
    pub signal: HashMap<String, crate::signal::PhoneSignal>,
    pub next_lid: u64,
    pub next_group: u64,
    pub next_id: u64,
    /// Who wrote to whom, (writer, recipient) phone digits: the reach-out timelock lets a
    /// message through to a number that wrote first.
    pub wrote: BTreeSet<(String, String)>,
    /// One-off nacks for the next message of a number ([`crate::FakeWhatsApp::nack_next`]).
    pub nack_next: HashMap<String, u16>,
    /// Stanzas waiting for a companion device, oldest first (the offline queue).
    pub queue: Vec<crate::queue::Queued>,
    /// Connections that finished their offline delivery: new stanzas go to them at once.
    pub live: HashMap<u64, (String, u16)>,
    /// Offline deliveries in progress, by connection.
    pub drains: HashMap<u64, crate::queue::Drain>,
    /// Result-level usync errors for queries by a number's devices: (code, backoff secs).
    pub usync_result_errors: HashMap<String, (u16, Option<u32>)>,
    /// Acks of messages from a number held back: `Some(d)` sent after `d`, `None` never.
    pub ack_delays: HashMap<String, Option<std::time::Duration>>,
    /// Numbers whose pairing-code requests are throttled, with the `backoff` (seconds) the
    /// refusal carries, if any.
    pub pair_throttle: HashMap<String, Option<u32>>,
    /// What the phones sent, by message id, to send again on a retry receipt (in memory).
    pub phone_sent: HashMap<String, crate::phone::PhoneSent>,
    /// The media servers' files (in memory).
    pub media: crate::media::MediaStore,
    /// App-state patches companions sent, by phone digits (in memory).
    pub app_state: HashMap<String, crate::appstate::Patches>,
    /// App-state snapshots served so far (in memory).
    pub app_state_snapshots: usize,
}

pub(crate) fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn rand_bytes<const N: usize>() -> [u8; N] {
    use rand::RngExt;
    let mut b = [0u8; N];
    rand::rng().fill(&mut b[..]);
    b
}

pub(crate) fn random_token(len: usize) -> String {
    const ALPHA: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    rand_bytes::<64>()
        .iter()
        .take(len)
        .map(|b| ALPHA[*b as usize % ALPHA.len()] as char)
        .collect()
}

fn key32(b: &[u8]) -> [u8; 32] {
    let mut k = [0u8; 32];
    let n = b.len().min(32);
    k[..n].copy_from_slice(&b[..n]);
    k
}

impl World {
    pub fn new() -> Self {
        Self {
            accounts: BTreeMap::new(),
            regs: HashMap::new(),
            sent: Vec::new(),
            groups: BTreeMap::new(),
            add_refusals: HashMap::new(),
            usync_errors: HashMap::new(),
            canonical: HashMap::new(),
            hidden_phones: HashSet::new(),
            code_flows: Vec::new(),
            signal: HashMap::new(),
            next_lid: 100_000_000_000_001,
            next_group: 120_363_000_000_000_001,
            next_id: 1,
            wrote: BTreeSet::new(),
            nack_next: HashMap::new(),
            queue: Vec::new(),
            live: HashMap::new(),
            drains: HashMap::new(),
            phone_sent: HashMap::new(),
            media: Default::default(),
            app_state: HashMap::new(),
            app_state_snapshots: 0,
            pair_throttle: HashMap::new(),
            ack_delays: HashMap::new(),
            usync_result_errors: HashMap::new(),
        }
    }

    pub fn next_id(&mut self) -> String {
        self.next_id += 1;
        format!("fake-{}", self.next_id)
    }

    pub fn ensure_account(&mut self, phone: &str) -> &mut Account {
        if !self.accounts.contains_key(phone) {
            self.next_lid += 1;
        }
        let lid = self.next_lid.to_string();
        let signal = &mut self.signal;
        self.accounts.entry(phone.to_string()).or_insert_with(|| {
            let identity = KeyPair::generate(&mut rand::rng());
            let (keys, private) = crate::signal::PhoneSignal::generate(&identity);
            signal.insert(phone.to_string(), private);
            let mut devices = BTreeMap::new();
            devices.insert(0, Device { noise: None, keys });
            Account {
                phone: phone.to_string(),
                lid,
                devices,
                phone_identity: identity,
                next_device: 1,
                login_failure: None,
                enforcement: None,
                timelock_until: 0,
                usync_limited_until: 0,
                groups_limited_until: 0,
                offline: false,
                first_login_seen: false,
                removed_devices: BTreeSet::new(),
            }
        })
    }

    pub fn remove_account(&mut self, phone: &str) {
        self.accounts.remove(phone);
        self.signal.remove(phone);
    }

    pub fn has_linked_device(&self, phone: &str) -> bool {
        self.accounts
            .get(phone)
            .is_some_and(|a| a.devices.keys().any(|d| *d != 0))
    }

    /// Forgets every companion device of `phone` (and what was queued for them); returns
    /// their ids.
    pub fn unlink_all(&mut self, phone: &str) -> Vec<u16> {
        let Some(a) = self.accounts.get_mut(phone) else {
            return Vec::new();
        };
        let removed: Vec<u16> = a.devices.keys().copied().filter(|d| *d != 0).collect();
        a.devices.retain(|id, _| *id == 0);
        a.removed_devices.extend(removed.iter().copied());
        self.queue.retain(|q| q.phone != phone);
        removed
    }

    pub fn set_login_failure(&mut self, phone: &str, reason: Option<u32>) {
        self.ensure_account(phone).login_failure = reason;
    }

    pub fn refuse_add(&mut self, member: &str, code: u16) {
        self.add_refusals.insert(member.to_string(), code);
    }

    pub fn usync_error_for(&mut self, number: &str, code: u16) {
        self.usync_errors.insert(number.to_string(), code);
    }

    pub fn set_canonical(&mut self, asked: &str, canonical: &str) {
        self.canonical.insert(asked.to_string(), canonical.to_string());
    }

    pub fn hide_phone(&mut self, phone: &str) {
        self.hidden_phones.insert(phone.to_string());
    }

    pub fn phone_of_lid(&self, lid: &str) -> Option<String> {
        self.accounts.values().find(|a| a.lid == lid).map(|a| a.phone.clone())
    }

    pub fn forget_conn(&mut self, id: u64) {
        self.regs.remove(&id);
        self.live.remove(&id);
        self.drains.remove(&id);
        // What was handed to it without a receipt goes out again at the next login, as the
        // server keeps a stanza until the device acknowledged it.
        for q in self.queue.iter_mut().filter(|q| q.on_conn == Some(id)) {
            q.on_conn = None;
        }
    }

    /// The people who know `phone`: who wrote to it, whom it wrote to, who shares a group
    /// with it.
    pub fn contacts_of(&self, phone: &str) -> BTreeSet<String> {
        let mut out: BTreeSet<String> = self
            .wrote
            .iter()
            .filter_map(|(a, b)| match (a == phone, b == phone) {
                (true, false) => Some(b.clone()),
                (false, true) => Some(a.clone()),
                _ => None,
            })
            .collect();
        for g in self.groups.values().filter(|g| g.members.contains_key(phone)) {
            out.extend(g.members.keys().filter(|m| *m != phone).cloned());
        }
        out
    }

    /// A group id for a new group.
    pub fn next_group_id(&mut self) -> String {
        self.next_group += 1;
        format!("{}@g.us", self.next_group)
    }
}

// ----- nodes -----

pub(crate) fn attr(node: &Node, key: &str) -> String {
    node.attrs.get(key).map(|v| v.as_str().into_owned()).unwrap_or_default()
}

pub(crate) fn bytes_of(node: Option<&Node>) -> Vec<u8> {
    match node.and_then(|n| n.content.as_ref()) {
        Some(NodeContent::Bytes(b)) => b.clone(),
        Some(NodeContent::String(s)) => s.as_bytes().to_vec(),
        _ => Vec::new(),
    }
}

pub(crate) fn text_of(node: Option<&Node>) -> String {
    String::from_utf8_lossy(&bytes_of(node)).into_owned()
}

pub(crate) fn stream_error(code: &str) -> Node {
    NodeBuilder::new("stream:error").attr("code", code).build()
}

/// `<stream:error code="401"><conflict type="device_removed"/>`: the phone removed this
/// device (whatsmeow `handleStreamError`).
pub(crate) fn device_removed() -> Node {
    NodeBuilder::new("stream:error")
        .attr("code", "401")
        .children([NodeBuilder::new("conflict").attr("type", "device_removed").build()])
        .build()
}

/// `<notification type="devices">` saying device `device` of `phone` was added or removed
/// (`op`), in the shape wacore's `DeviceNotification::try_parse` reads: `from` the user,
/// `lid` beside it, one `<device>` and the `<key-index-list ts>` (signed bytes for an add are
/// not modelled: the list is sent empty).
pub(crate) fn devices_notification(w: &World, phone: &str, device: u16, op: &str) -> Node {
    let lid = w.accounts.get(phone).map(|a| a.lid.clone()).unwrap_or_default();
    let t = now().to_string();
    let mut dev = NodeBuilder::new("device").attr("jid", format!("{phone}:{device}@{SERVER}"));
    if op == "add" {
        dev = dev.attr("key-index", device.to_string());
    }
    NodeBuilder::new("notification")
        .attr("from", pn_jid(phone))
        .attr("lid", format!("{lid}@lid"))
        .attr("id", format!("{:016X}", rand::random::<u64>()))
        .attr("t", t.as_str())
        .attr("type", "devices")
        .children([NodeBuilder::new_dynamic(op.to_string())
            .children([
                dev.build(),
                NodeBuilder::new("key-index-list").attr("ts", t.as_str()).build(),
            ])
            .build()])
        .build()
}

pub(crate) fn stream_conflict(kind: &str) -> Node {
    NodeBuilder::new("stream:error")
        .children([NodeBuilder::new("conflict").attr("type", kind).build()])
        .build()
}

pub(crate) fn failure(reason: u32, ban: Option<(u32, u64)>) -> Node {
    let mut b = NodeBuilder::new("failure").attr("reason", reason.to_string());
    if let Some((code, expire)) = ban {
        b = b.attr("code", code.to_string()).attr("expire", expire.to_string());
    }
    b.build()
}

/// `<iq type="result">` answering `req`, with `children`.
pub(crate) fn result(req: &Node, children: Vec<Node>) -> Node {
    let from = match attr(req, "to") {
        t if t.is_empty() => SERVER.to_string(),
        t => t,
    };
    let mut b = NodeBuilder::new("iq")
        .attr("type", "result")
        .attr("id", attr(req, "id"))
        .attr("from", from);
    if !children.is_empty() {
        b = b.children(children);
    }
    b.build()
}

/// `<iq type="error"><error code text/></iq>` answering `req`.
pub(crate) fn error(req: &Node, code: u16, text: &str) -> Node {
    let from = match attr(req, "to") {
        t if t.is_empty() => SERVER.to_string(),
        t => t,
    };
    NodeBuilder::new("iq")
        .attr("type", "error")
        .attr("id", attr(req, "id"))
        .attr("from", from)
        .children([NodeBuilder::new("error")
            .attr("code", code.to_string())
            .attr("text", text)
            .build()])
        .build()
}

pub(crate) fn pn_jid(phone: &str) -> String {
    format!("{phone}@{SERVER}")
}

// ----- connection start -----

fn be_u32(b: &[u8]) -> u32 {
    b.iter().fold(0u32, |acc, x| (acc << 8) | u32::from(*x))
}

pub(crate) fn on_established(fake: &FakeWhatsApp, ctx: &mut ConnCtx, payload: &wa::ClientPayload) {
    if fake.refuses_version() {
        ctx.send(failure(405, None));
        ctx.after = After::Close;
        return;
    }
    if let Some(reg) = payload.device_pairing_data.as_option() {
        let keys = Keys {
            reg_id: be_u32(reg.e_regid.as_deref().unwrap_or_default()),
            identity: key32(reg.e_ident.as_deref().unwrap_or_default()),
            skey: Some((
                be_u32(reg.e_skey_id.as_deref().unwrap_or_default()),
                key32(reg.e_skey_val.as_deref().unwrap_or_default()),
                reg.e_skey_sig.clone().unwrap_or_default(),
            )),
            prekeys: BTreeMap::new(),
        };
        let refs: Vec<String> = (0..6).map(|_| format!("2@{}", random_token(40))).collect();
        let id = {
            let mut w = fake.world();
            w.regs.insert(
                ctx.id,
                Registration {
                    noise: ctx.client_static,
                    keys,
                    refs: refs.clone(),
                    pairing: None,
                },
            );
            w.next_id()
        };
        fake.register_conn(ctx);
        ctx.send(
            NodeBuilder::new("iq")
                .attr("from", SERVER)
                .attr("type", "set")
                .attr("id", id)
                .attr("xmlns", "md")
                .children([NodeBuilder::new("pair-device")
                    .children(
                        refs.into_iter()
                            .map(|r| NodeBuilder::new("ref").bytes(r.into_bytes()).build()),
                    )
                    .build()])
                .build(),
        );
        return;
    }

    let phone = payload.username.map(|u| u.to_string()).unwrap_or_default();
    let device = payload.device.unwrap_or(0) as u16;
    let verdict = {
        let mut w = fake.world();
        if fake.options().trust_unknown_devices && !phone.is_empty() && device != 0 {
            let known = w.accounts.get(&phone).is_some_and(|a| a.devices.contains_key(&device));
            // A removed device stays removed: its next login fails 401 like any other
            // (whatsmeow `handleConnectFailure`). Trusting it again is what let a device
            // unlinked in the seconds after pairing log in again as if nothing happened.
            let removed = w
                .accounts
                .get(&phone)
                .is_some_and(|a| a.removed_devices.contains(&device));
            if !known && !removed {
                let noise = ctx.client_static;
                let acc = w.ensure_account(&phone);
                acc.next_device = acc.next_device.max(device + 1);
                acc.devices.insert(
                    device,
                    Device {
                        noise: Some(noise),
                        keys: Keys {
                            reg_id: 0,
                            identity: [0; 32],
                            skey: None,
                            prekeys: BTreeMap::new(),
                        },
                    },
                );
            }
        }
        let verdict = match w.accounts.get_mut(&phone) {
            None => Err(Some(failure(401, None))),
            // A number off the network never gets this far on the real server: the socket
            // just dies (no source says more; this is what a phone without network sees).
            Some(acc) if acc.offline => Err(None),
            Some(acc) => {
                let known = acc.devices.get(&device).and_then(|d| d.noise) == Some(ctx.client_static);
                if let Some(node) = acc.ban_failure() {
                    Err(Some(node))
                } else if !known {
                    Err(Some(failure(401, None)))
                } else if let Some(reason) = acc.login_failure {
                    Err(Some(failure(reason, None)))
                } else {
                    let first = !acc.first_login_seen;
                    acc.first_login_seen = true;
                    Ok((acc.lid.clone(), first))
                }
            }
        };
        if verdict.is_ok() {
            // Registered while the world is still locked: an unlink, ban or replace between
            // this verdict and the registration would otherwise miss the new stream (it
            // changes the world, then looks for the account's streams) and leave a removed
            // device logged in.
            ctx.device = Some((phone.clone(), device));
            fake.register_conn(ctx);
        }
        verdict
    };
    match verdict {
        Err(Some(node)) => {
            debug!(phone = %phone, "fake refused a login");
            ctx.send(node);
            ctx.after = After::Close;
        }
        Err(None) => {
            debug!(phone = %phone, "fake dropped a login of a number off the network");
            ctx.after = After::Drop;
        }
        Ok((lid, first)) => {
            let t = now().to_string();
            ctx.send(
                NodeBuilder::new("success")
                    .attr("t", t.clone())
                    .attr("props", "1")
                    .attr("abprops", "1")
                    .attr("location", "fake")
                    .attr("creation", t)
                    .attr("lid", format!("{lid}:{device}@lid"))
                    .build(),
            );
            // The share is a message like any other: it waits in the device's queue until the
            // device acknowledges it, so a client that reconnects right after pairing (before
            // it read the share) still gets it at its next login.
            if let Some(share) = crate::phone::app_state_key_share(fake, &phone, device) {
                fake.deliver_or_queue(&phone, device, share);
            }
            if first {
                schedule_behaviour(fake, &phone);
            }
        }
    }
}

/// The simulator's table: `0401` is logged out and `0402` banned a while after the first
/// login.
fn schedule_behaviour(fake: &FakeWhatsApp, phone: &str) {
    let action: Option<fn(&FakeWhatsApp, &str)> = if phone.ends_with("0401") {
        Some(|f, p| {
            f.log_out(p);
        })
    } else if phone.ends_with("0402") {
        Some(|f, p| {
            f.ban(p, crate::Ban::Temporary { code: 101, secs: 3600 });
        })
    } else {
        None
    };
    if let Some(action) = action {
        let fake = fake.clone();
        let phone = phone.to_string();
        let delay = fake.options().behaviour_delay;
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            action(&fake, &phone);
        });
    }
}

// ----- the node loop -----

pub(crate) fn on_node(fake: &FakeWhatsApp, ctx: &mut ConnCtx, node: Node) {
    match node.tag.as_ref() {
        "iq" => on_iq(fake, ctx, &node),
        "message" => crate::phone::on_message(fake, ctx, &node),
        "ib" => crate::queue::on_ib(fake, ctx, &node),
        // The client's transport ack for a stanza the server sent: it leaves the queue.
        "ack" => crate::queue::acknowledged(fake, ctx, &[attr(&node, "id")]),
        "receipt" | "notification" | "call" => {
            if node.tag == "receipt" {
                let ids = fake.note_receipt(ctx, &node);
                crate::queue::acknowledged(fake, ctx, &ids);
                crate::phone::route_receipt(fake, ctx, &node);
            }
            let mut b = NodeBuilder::new("ack")
                .attr("id", attr(&node, "id"))
                .attr("class", node.tag.to_string());
            let to = attr(&node, "to");
            if !to.is_empty() {
                b = b.attr("from", to);
            }
            ctx.send(b.build());
        }
        // `<presence type="available|unavailable" name=…/>`: the server answers nothing (whatsmeow
        // `SendPresence` and Baileys `sendPresenceUpdate` send it and wait for no reply; a
        // client sends it once it knows its push name, `WAWebPushNameSync`). Relaying it to
        // subscribers is not modelled. First met when app state gave both clients a push name.
        "presence" => {}
        // --- peer --- a stanza no whatsapp-rust client sent before: logged for conformance.
        other => {
            let child = node
                .children()
                .and_then(|c| c.first())
                .map(|c| c.tag.to_string())
                .unwrap_or_default();
            fake.note_unmodelled(other, &attr(&node, "xmlns"), &child);
        }
    }
}

/// The GraphQL document of WhatsApp Web's `WAWebMexFetchReachoutTimelockJobQuery` (wacore
/// `iq/mex_operations.rs`, `fetch_reachout_timelock::DOC_ID`).
const REACHOUT_TIMELOCK_QUERY: &str = "23983697327930364";

/// The account's reach-out timelock, as the `w:mex` query answers it: `<result>` holding the
/// GraphQL JSON `{"data":{"xwa2_fetch_account_reachout_timelock":{..}}}` (wacore `iq/mex.rs`
/// module doc; the fields and their string-typed end time from whatsapp-rust
/// `features/mex.rs` `decode_reachout_timelock` and its test). `enforcement_type`
/// `DEFAULT` is the one value that test shows; no public source lists the others.
fn reachout_timelock(fake: &FakeWhatsApp, ctx: &ConnCtx, iq: &Node) -> Node {
    let until = ctx
        .device
        .as_ref()
        .and_then(|(p, _)| fake.world().accounts.get(p).map(|a| a.timelock_until))
        .unwrap_or(0);
    let state = if until > now() {
        serde_json::json!({
            "is_active": true,
            "time_enforcement_ends": until.to_string(),
            "enforcement_type": "DEFAULT",
        })
    } else {
        serde_json::json!({ "is_active": false })
    };
    let body = serde_json::json!({ "data": { "xwa2_fetch_account_reachout_timelock": state } });
    result(
        iq,
        vec![NodeBuilder::new("result").string_content(body.to_string()).build()],
    )
}

fn on_iq(fake: &FakeWhatsApp, ctx: &mut ConnCtx, iq: &Node) {
    let ty = attr(iq, "type");
    if ty == "result" || ty == "error" {
        crate::phone::on_iq_answer(fake, ctx, iq);
        return;
    }
    let xmlns = attr(iq, "xmlns");
    let first = iq.children().and_then(|c| c.first());
    let first_tag = first.map(|c| c.tag.to_string()).unwrap_or_default();
    let reply = match (xmlns.as_str(), ty.as_str(), first_tag.as_str()) {
        ("passive", _, "active") => {
            // After the client leaves passive mode the server delivers the offline queue.
            ctx.send(result(iq, Vec::new()));
            crate::queue::start(fake, ctx);
            return;
        }
        // --- peer --- the keepalive: whatsmeow `keepalive.go` `sendKeepAlive` and Baileys
        // `socket.ts` `startKeepAliveRequest` send `<iq xmlns="w:p" type="get"><ping/></iq>`,
        // whatsapp-rust (wacore `iq/keepalive.rs`) the same without `<ping/>`; each only
        // waits for an answer, which wacore documents as an empty result. First met in a
        // long idle over the WebSocket (`benches/peer`): refused, whatsapp-rust reconnects.
        ("w:p", "get", "ping" | "") => result(iq, Vec::new()),
        ("encrypt", "get", "count") => {
            let n = ctx
                .device
                .as_ref()
                .and_then(|(p, d)| {
                    let w = fake.world();
                    w.accounts
                        .get(p)
                        .and_then(|a| a.devices.get(d))
                        .map(|d| d.keys.prekeys.len())
                })
                .unwrap_or(0);
            result(iq, vec![NodeBuilder::new("count").attr("value", n.to_string()).build()])
        }
        ("encrypt", "set", _) => {
            upload_keys(fake, ctx, iq);
            result(iq, Vec::new())
        }
        ("encrypt", "get", "key") => crate::phone::prekey_bundles(fake, iq),
        ("encrypt", "get", "digest") => digest(fake, ctx, iq),
        ("usync", _, _) if limited(fake, ctx, crate::RateScope::Usync) => crate::rules::rate_overlimit(iq),
        ("usync", _, _) => crate::phone::usync(fake, ctx, iq),
        ("w:sync:app:state", _, _) => crate::appstate::on_iq(fake, ctx.device.as_ref().map(|(p, _)| p.as_str()), iq),
        ("w:g2", _, _) => crate::groups::on_iq(fake, ctx, iq),
        ("md", _, "remove-companion-device") => {
            if let Some((phone, device)) = ctx.device.clone() {
                if let Some(a) = fake.world().accounts.get_mut(&phone) {
                    a.devices.remove(&device);
                    a.removed_devices.insert(device);
                }
            }
            ctx.send(result(iq, Vec::new()));
            ctx.after = After::Close;
            return;
        }
        ("md", _, "link_code_companion_reg") => crate::phone::link_code(fake, ctx, iq),
        ("abt", "get", "props") => ab_props(iq),
        ("blocklist", "get", _) => {
            // Nobody is blocked in the fake world (blocking is not modelled): an empty list
            // with its hash (whatsmeow `GetBlocklist`, wacore `iq/blocklist.rs`).
            result(iq, vec![NodeBuilder::new("list").attr("dhash", "0").build()])
        }
        ("w:mex", "get", "query") if attr(first.unwrap_or(iq), "query_id") == REACHOUT_TIMELOCK_QUERY => {
            reachout_timelock(fake, ctx, iq)
        }
        ("privacy", "get", "privacy") => privacy_settings(iq),
        ("w:m", "set", "media_conn") => crate::media::media_conn(fake, iq),
        ("privacy", "set", "tokens") => privacy_tokens(iq),
        ("privacy", "set", "privacy") => {
            // The new setting, echoed as the server confirms it (wacore `iq/privacy.rs`).
            let echoed = first.cloned().into_iter().collect();
            result(iq, echoed)
        }
        _ => {
            // No source says what the server answers to a query it does not know; the fake
            // refuses it as XMPP does (`501 feature-not-implemented`) instead of pretending it
            // worked, so a client feature the fake lacks shows up as a refusal.
            debug!(%xmlns, %ty, child = %first_tag, "fake refused an unknown iq");
            fake.note_unmodelled("iq", &xmlns, &format!("{ty}/{first_tag}"));
            error(iq, 501, "feature-not-implemented")
        }
    };
    ctx.send(reply);
}

/// The digest of the key bundle the device uploaded (`<iq xmlns="encrypt"><digest/>`), in the
/// shape of wacore `DigestKeyBundleSpec` (after WA Web's `digestResponseParser`): the bundle
/// and a SHA-1 over identity, signed pre-key, its signature and each listed pre-key, computed
/// as the client computes it (`wacore::prekeys::compute_key_bundle_digest`). A device with
/// nothing uploaded gets 404, which makes whatsapp-rust upload again (`validate_digest_key`).
fn digest(fake: &FakeWhatsApp, ctx: &ConnCtx, iq: &Node) -> Node {
    let keys = ctx.device.as_ref().and_then(|(p, d)| {
        let w = fake.world();
        w.accounts.get(p).and_then(|a| a.devices.get(d)).map(|d| d.keys.clone())
    });
    let Some(keys) = keys.filter(|k| k.identity != [0; 32]) else {
        return error(iq, 404, "item-not-found");
    };
    let Some((skey_id, skey, sig)) = keys.skey.clone() else {
        return error(iq, 404, "item-not-found");
    };
    let prekeys: Vec<&[u8]> = keys.prekeys.values().map(|k| &k[..]).collect();
    let hash = wacore::prekeys::compute_key_bundle_digest(&keys.identity, &skey, &sig, &prekeys);
    let id3 = |id: u32| id.to_be_bytes()[1..].to_vec();
    let node = NodeBuilder::new("digest")
        .children([
            NodeBuilder::new("registration")
                .bytes(keys.reg_id.to_be_bytes().to_vec())
                .build(),
            NodeBuilder::new("type").bytes(vec![5u8]).build(),
            NodeBuilder::new("identity").bytes(keys.identity.to_vec()).build(),
            NodeBuilder::new("skey")
                .children([
                    NodeBuilder::new("id").bytes(id3(skey_id)).build(),
                    NodeBuilder::new("value").bytes(skey.to_vec()).build(),
                    NodeBuilder::new("signature").bytes(sig).build(),
                ])
                .build(),
            NodeBuilder::new("list")
                .children(
                    keys.prekeys
                        .keys()
                        .map(|id| NodeBuilder::new("id").bytes(id3(*id)).build()),
                )
                .build(),
            NodeBuilder::new("hash").bytes(hash).build(),
        ])
        .build();
    result(iq, vec![node])
}

/// `<props>` for an `abt` query, in the shape of wacore `iq/props.rs` (after WA Web's
/// `WASmaxInAbPropsConfigs`): the attributes, and no experiment set, so every AB prop
/// takes the client's default.
fn ab_props(iq: &Node) -> Node {
    result(
        iq,
        vec![NodeBuilder::new("props")
            .attr("protocol", "1")
            .attr("ab_key", "fake")
            .attr("hash", "fake-0")
            .attr("refresh", "86400")
            .attr("refresh_id", "1")
            .build()],
    )
}

/// A fresh account's privacy settings, in the shape and with the category names of wacore
/// `iq/privacy.rs` (WA Web `WAWebQueryPrivacySettingsJob`); the values are WhatsApp's
/// defaults as its settings screen shows them.
fn privacy_settings(iq: &Node) -> Node {
    let cats = [
        ("last", "all"),
        ("online", "all"),
        ("profile", "all"),
        ("status", "contacts"),
        ("groupadd", "all"),
        ("readreceipts", "all"),
        ("calladd", "all"),
        ("messages", "all"),
        ("defense", "off"),
    ];
    let children = cats.iter().map(|(name, value)| {
        NodeBuilder::new("category")
            .attr("name", *name)
            .attr("value", *value)
            .build()
    });
    result(iq, vec![NodeBuilder::new("privacy").children(children).build()])
}

/// Issued privacy (trusted-contact) tokens: each asked-for token back with its bytes
/// (wacore `iq/tctoken.rs`, WA Web `WAWebPrivacyTokenJob`). The bytes are random: only the
/// server reads them.
fn privacy_tokens(iq: &Node) -> Node {
    let tokens: Vec<Node> = iq
        .get_optional_child("tokens")
        .map(|t| {
            t.get_children_by_tag("token")
                .map(|tok| {
                    NodeBuilder::new("token")
                        .attr("jid", attr(tok, "jid"))
                        .attr("t", attr(tok, "t"))
                        .attr("type", attr(tok, "type"))
                        .bytes(rand_bytes::<16>().to_vec())
                        .build()
                })
                .collect()
        })
        .unwrap_or_default();
    result(iq, vec![NodeBuilder::new("tokens").children(tokens).build()])
}

/// Fewer one-time pre-keys than this left on the server for a device, and it is told to
/// upload more. whatsmeow's own threshold (`MinPreKeyCount`) is 5; the server's is in no
/// source.
pub(crate) const LOW_PREKEYS: usize = 5;

/// `<notification type="encrypt" from="s.whatsapp.net"><count value=N/>`: the server's
/// "pre-keys low" notice (whatsapp-rust `handle_encrypt_notification` → `handle_prekey_low`,
/// WA Web `WAWebHandlePreKeyLow`).
pub(crate) fn prekeys_low(count: usize) -> Node {
    NodeBuilder::new("notification")
        .attr("from", SERVER)
        .attr("type", "encrypt")
        .attr("id", format!("{:016X}", rand::random::<u64>()))
        .attr("t", now().to_string())
        .children([NodeBuilder::new("count").attr("value", count.to_string()).build()])
        .build()
}

/// Whether the account logged in on `ctx` is rate-limited for `scope` now.
pub(crate) fn limited(fake: &FakeWhatsApp, ctx: &ConnCtx, scope: crate::RateScope) -> bool {
    let Some((phone, _)) = ctx.device.as_ref() else {
        return false;
    };
    fake.world().accounts.get(phone).is_some_and(|a| a.rate_limited(scope))
}

fn upload_keys(fake: &FakeWhatsApp, ctx: &ConnCtx, iq: &Node) {
    let Some((phone, device)) = ctx.device.clone() else {
        return;
    };
    let mut w = fake.world();
    let Some(dev) = w.accounts.get_mut(&phone).and_then(|a| a.devices.get_mut(&device)) else {
        return;
    };
    let reg = bytes_of(iq.get_optional_child("registration"));
    if !reg.is_empty() {
        dev.keys.reg_id = be_u32(&reg);
    }
    let ident = bytes_of(iq.get_optional_child("identity"));
    if ident.len() == 32 {
        dev.keys.identity = key32(&ident);
    }
    if let Some(list) = iq.get_optional_child("list") {
        for k in list.get_children_by_tag("key") {
            let id = be_u32(&bytes_of(k.get_optional_child("id")));
            let v = bytes_of(k.get_optional_child("value"));
            if v.len() == 32 {
                dev.keys.prekeys.insert(id, key32(&v));
            }
        }
    }
    if let Some(s) = iq.get_optional_child("skey") {
        let v = bytes_of(s.get_optional_child("value"));
        if v.len() == 32 {
            dev.keys.skey = Some((
                be_u32(&bytes_of(s.get_optional_child("id"))),
                key32(&v),
                bytes_of(s.get_optional_child("signature")),
            ));
        }
    }
}

/// SHA-256 of `b`.
pub(crate) fn sha256(b: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(b).into()
}
