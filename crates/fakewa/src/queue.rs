//! The offline queue: what the server holds for a companion device until it acknowledges it.
//!
//! Every stanza for a device goes through [`FakeWhatsApp::deliver_or_queue`]: kept in the
//! world's queue (and its state file) and sent at once when the device is connected and done
//! with its offline delivery; otherwise it waits. A stanza leaves the queue when the device
//! sends a `<receipt>` or `<ack>` for its id; one handed to a connection that died before
//! that is delivered again at the next login, as the server keeps what was not acknowledged.
//!
//! At login, once the client leaves passive mode, the backlog is delivered as WA Web's
//! offline handler expects it (whatsapp-rust `client/offline_resume.rs`, mirroring
//! `WAWebOfflineHandler`; whatsmeow `handleIB` reads the same nodes):
//! `<ib><offline_preview count=N message=N .../>`, a primer of up to five stanzas, then as
//! many as each `<ib><offline_batch count=K/>` the client sends asks for, every one marked
//! with the `offline` attribute (whatsapp-rust counts stanzas carrying it, `node_io.rs`),
//! in the order they were queued; then `<ib><offline count=N/>`, the end marker the client
//! waits for before it reports being connected. With nothing queued only the end marker
//! is sent, `count="0"`.

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use wacore_binary::builder::NodeBuilder;
use wacore_binary::Node;

use crate::conn::ConnCtx;
use crate::transport::Ctl;
use crate::world::{attr, SERVER};
use crate::FakeWhatsApp;

/// How many stanzas the server sends before the client asks for a batch (the "~5-stanza
/// primer" of whatsapp-rust's `offline_resume.rs`).
const PRIMER: usize = 5;

/// One stanza waiting for a device.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct Queued {
    /// The account's phone digits.
    pub phone: String,
    /// The companion device it is for.
    pub device: u16,
    /// The stanza's id (what the device's receipt names).
    pub id: String,
    /// The stanza, marshalled and base64-encoded, so the state file keeps it.
    pub stanza: String,
    /// The connection it was handed to and not yet acknowledged on.
    #[serde(skip)]
    pub on_conn: Option<u64>,
}

/// An offline delivery in progress on one connection.
pub(crate) struct Drain {
    /// Stanzas sent so far (the end marker's count).
    pub sent: usize,
}

pub(crate) fn encode(node: &Node) -> Option<String> {
    let bytes = wacore_binary::marshal::marshal(node).ok()?;
    Some(base64::engine::general_purpose::STANDARD.encode(bytes))
}

pub(crate) fn decode(stanza: &str) -> Option<Node> {
    let bytes = base64::engine::general_purpose::STANDARD.decode(stanza).ok()?;
    let data = wacore_binary::util::unpack_bytes(bytes::BytesMut::from(&bytes[..])).ok()?;
    wacore_binary::marshal::unmarshal_ref(&data).ok().map(|n| n.to_owned())
}

impl FakeWhatsApp {
    /// Hands `node` (a stanza with an `id`) to device `device` of `phone`: sent now when
    /// that device is connected and past its offline delivery, else kept for its next
    /// login. Either way it stays queued until the device acknowledges it.
    pub(crate) fn deliver_or_queue(&self, phone: &str, device: u16, node: Node) {
        let Some(stanza) = encode(&node) else {
            tracing::warn!("the fake could not marshal a stanza to queue");
            return;
        };
        let live = {
            let mut w = self.world();
            let live = w
                .live
                .iter()
                .filter(|(_, d)| d.0 == phone && d.1 == device)
                .map(|(c, _)| *c)
                .max();
            w.queue.push(Queued {
                phone: phone.to_string(),
                device,
                id: attr(&node, "id"),
                stanza,
                on_conn: live,
            });
            live
        };
        if let Some(conn) = live {
            // A connection that just died puts the stanza back (`World::forget_conn`).
            self.send_to_conn(conn, Ctl::Send(node));
        }
    }

    /// How many stanzas wait for `phone`'s devices (not yet acknowledged).
    pub fn queued_for(&self, phone: &str) -> usize {
        self.world().queue.iter().filter(|q| q.phone == phone).count()
    }
}

/// The device on `ctx` acknowledged `ids` (a receipt of any type, or an ack): they leave
/// the queue.
pub(crate) fn acknowledged(fake: &FakeWhatsApp, ctx: &ConnCtx, ids: &[String]) {
    let Some((phone, device)) = ctx.device.as_ref() else {
        return;
    };
    let mut w = fake.world();
    w.queue
        .retain(|q| !(q.phone == *phone && q.device == *device && ids.contains(&q.id)));
}

fn ib(child: Node) -> Node {
    NodeBuilder::new("ib").attr("from", SERVER).children([child]).build()
}

/// The client left passive mode on `ctx`: starts its offline delivery.
pub(crate) fn start(fake: &FakeWhatsApp, ctx: &mut ConnCtx) {
    let Some((phone, device)) = ctx.device.clone() else {
        return;
    };
    let total = {
        let mut w = fake.world();
        let total = w
            .queue
            .iter()
            .filter(|q| q.phone == phone && q.device == device && q.on_conn.is_none())
            .count();
        if total > 0 {
            w.drains.insert(ctx.id, Drain { sent: 0 });
        }
        total
    };
    if total == 0 {
        fake.world().live.insert(ctx.id, (phone, device));
        ctx.send(ib(NodeBuilder::new("offline").attr("count", "0").build()));
        return;
    }
    let n = total.to_string();
    ctx.send(ib(NodeBuilder::new("offline_preview")
        .attr("count", n.as_str())
        .attr("message", n.as_str())
        .attr("notification", "0")
        .attr("receipt", "0")
        .attr("appdata", "0")
        .attr("call", "0")
        .build()));
    next_batch(fake, ctx, PRIMER);
}

/// The client asked for `count` more (`<ib><offline_batch count=K/>`).
pub(crate) fn on_ib(fake: &FakeWhatsApp, ctx: &mut ConnCtx, node: &Node) {
    let Some(batch) = node.get_optional_child("offline_batch") else {
        return;
    };
    let count = attr(batch, "count").parse::<usize>().unwrap_or(0);
    if fake.world().drains.contains_key(&ctx.id) {
        next_batch(fake, ctx, count);
    }
}

/// Sends up to `count` waiting stanzas on `ctx`, then the end marker once none is left.
fn next_batch(fake: &FakeWhatsApp, ctx: &mut ConnCtx, count: usize) {
    let Some((phone, device)) = ctx.device.clone() else {
        return;
    };
    let mut w = fake.world();
    let mut out = Vec::new();
    let mut left = 0;
    for q in w
        .queue
        .iter_mut()
        .filter(|q| q.phone == phone && q.device == device && q.on_conn.is_none())
    {
        if out.len() == count {
            left += 1;
            continue;
        }
        q.on_conn = Some(ctx.id);
        if let Some(mut node) = decode(&q.stanza) {
            node.attrs.insert("offline", "1");
            out.push(node);
        }
    }
    let Some(drain) = w.drains.get_mut(&ctx.id) else {
        return;
    };
    drain.sent += out.len();
    let sent = drain.sent;
    if left == 0 {
        w.drains.remove(&ctx.id);
        w.live.insert(ctx.id, (phone, device));
    }
    drop(w);
    for n in out {
        ctx.send(n);
    }
    if left == 0 {
        ctx.send(ib(NodeBuilder::new("offline").attr("count", sent.to_string()).build()));
    }
}
