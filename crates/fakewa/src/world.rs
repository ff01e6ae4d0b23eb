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
    /// (code, expires at unix seconds)
    pub ban: Option<(u32, u64)>,
    pub first_login_seen: bool,
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

fn random_token(len: usize) -> String {
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
                ban: None,
                first_login_seen: false,
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

    pub fn unlink_all(&mut self, phone: &str) {
        if let Some(a) = self.accounts.get_mut(phone) {
            a.devices.retain(|id, _| *id == 0);
        }
    }

    pub fn ban(&mut self, phone: &str, code: u32, expire_secs: u64) {
        self.ensure_account(phone).ban = Some((code, now() + expire_secs));
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
            if !known {
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
        match w.accounts.get_mut(&phone) {
            None => Err(failure(401, None)),
            Some(acc) => {
                let known = acc.devices.get(&device).and_then(|d| d.noise) == Some(ctx.client_static);
                let now = now();
                if let Some((code, until)) = acc.ban.filter(|(_, until)| *until > now) {
                    Err(failure(402, Some((code, until - now))))
                } else if !known {
                    Err(failure(401, None))
                } else if let Some(reason) = acc.login_failure {
                    Err(failure(reason, None))
                } else {
                    let first = !acc.first_login_seen;
                    acc.first_login_seen = true;
                    Ok((acc.lid.clone(), first))
                }
            }
        }
    };
    match verdict {
        Err(node) => {
            debug!(phone = %phone, "fake refused a login");
            ctx.send(node);
            ctx.after = After::Close;
        }
        Ok((lid, first)) => {
            ctx.device = Some((phone.clone(), device));
            fake.register_conn(ctx);
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
            if let Some(share) = crate::phone::app_state_key_share(fake, &phone, device) {
                ctx.send(share);
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
            f.ban(p, 101, 3600);
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
        "receipt" | "notification" | "call" => {
            if node.tag == "receipt" {
                fake.note_receipt(ctx, &node);
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
        _ => {}
    }
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
            // After the client leaves passive mode the server reports the offline queue.
            ctx.send(result(iq, Vec::new()));
            NodeBuilder::new("ib")
                .attr("from", SERVER)
                .children([NodeBuilder::new("offline").attr("count", "0").build()])
                .build()
        }
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
        ("encrypt", "get", "digest") => error(iq, 404, "item-not-found"),
        ("usync", _, _) => crate::phone::usync(fake, ctx, iq),
        ("w:sync:app:state", _, _) => app_state(iq),
        ("w:g2", _, _) => crate::groups::on_iq(fake, ctx, iq),
        ("md", _, "remove-companion-device") => {
            if let Some((phone, device)) = ctx.device.clone() {
                if let Some(a) = fake.world().accounts.get_mut(&phone) {
                    a.devices.remove(&device);
                }
            }
            ctx.send(result(iq, Vec::new()));
            ctx.after = After::Close;
            return;
        }
        ("md", _, "link_code_companion_reg") => crate::phone::link_code(fake, ctx, iq),
        _ => result(iq, Vec::new()),
    };
    ctx.send(reply);
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

/// App state: every collection answered as an up-to-date conflict (409 without more
/// patches), which the client takes as "in sync" without needing any keys.
fn app_state(iq: &Node) -> Node {
    let names: Vec<String> = iq
        .get_optional_child("sync")
        .map(|s| s.get_children_by_tag("collection").map(|c| attr(c, "name")).collect())
        .unwrap_or_default();
    let cols = names.into_iter().map(|name| {
        NodeBuilder::new("collection")
            .attr("name", name)
            .attr("type", "error")
            .children([NodeBuilder::new("error")
                .attr("code", "409")
                .attr("text", "conflict")
                .build()])
            .build()
    });
    result(iq, vec![NodeBuilder::new("sync").children(cols).build()])
}
