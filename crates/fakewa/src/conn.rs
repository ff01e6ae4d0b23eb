//! One client connection on the server side: the handshake, then a loop that decrypts the
//! client's nodes, lets the world answer them, and encrypts what goes back.

use anyhow::{Context, Result};
use bytes::{Bytes, BytesMut};
use tokio::sync::mpsc;
use tracing::debug;
use wacore_binary::consts::WA_CONN_HEADER;
use wacore_binary::Node;
use wacore_noise::framing::{encode_frame, FrameDecoder};
use whatsapp_rust::transport::TransportEvent;

use crate::noise::{self, CipherState, Hello};
use crate::transport::{dropped, server_closed, Ctl};
use crate::FakeWhatsApp;

/// What a handler wants done with the connection after its replies are sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum After {
    /// Keep going.
    Stay,
    /// Close the socket cleanly.
    Close,
    /// Drop the socket without a word.
    Drop,
}

/// Per-connection state the handlers see.
pub(crate) struct ConnCtx {
    /// Unique per connection; keys the world's table of live connections.
    pub id: u64,
    /// Our own control channel, for timers that act on this connection later.
    pub ctl: mpsc::UnboundedSender<Ctl>,
    /// Nodes to send once the current handler returns.
    pub out: Vec<Node>,
    /// What to do after sending `out`.
    pub after: After,
    /// The logged-in device, once there is one: (phone digits, device id).
    pub device: Option<(String, u16)>,
    /// The client's static Noise key.
    pub client_static: [u8; 32],
}

impl ConnCtx {
    pub fn send(&mut self, node: Node) {
        self.out.push(node);
    }
}

struct Wire {
    events: async_channel::Sender<TransportEvent>,
    tx: Option<CipherState>,
}

impl Wire {
    fn raw(&self, bytes: Vec<u8>) -> bool {
        self.events
            .try_send(TransportEvent::DataReceived(Bytes::from(bytes)))
            .is_ok()
    }

    fn node(&mut self, node: &Node) -> Result<bool> {
        let plain = wacore_binary::marshal::marshal(node).context("marshal")?;
        let tx = self.tx.as_mut().context("no session yet")?;
        let sealed = tx.seal(&plain)?;
        let framed = encode_frame(&sealed, None)?;
        Ok(self.raw(framed))
    }
}

/// Serves one connection until either side closes it.
pub(crate) async fn serve(
    fake: FakeWhatsApp,
    id: u64,
    mut rx: mpsc::UnboundedReceiver<Ctl>,
    self_tx: mpsc::UnboundedSender<Ctl>,
    events: async_channel::Sender<TransportEvent>,
) {
    let mut wire = Wire { events, tx: None };
    let mut ctx = ConnCtx {
        id,
        ctl: self_tx,
        out: Vec::new(),
        after: After::Stay,
        device: None,
        client_static: [0; 32],
    };
    let end = run(&fake, &mut ctx, &mut rx, &mut wire).await;
    match end {
        Ok(Ending::Clean) => {
            let _ = wire.events.try_send(server_closed());
        }
        Ok(Ending::Dropped) => {
            let _ = wire.events.try_send(dropped());
        }
        Ok(Ending::ByClient) => {}
        Err(e) => {
            debug!(conn = id, error = %e, "fake connection failed");
            let _ = wire.events.try_send(dropped());
        }
    }
    wire.events.close();
    fake.forget_conn(&ctx);
}

enum Ending {
    Clean,
    Dropped,
    ByClient,
}

async fn next_frame(
    rx: &mut mpsc::UnboundedReceiver<Ctl>,
    decoder: &mut FrameDecoder,
    first: &mut bool,
) -> Result<Option<BytesMut>> {
    loop {
        if let Some(f) = decoder.decode_frame() {
            return Ok(Some(f));
        }
        match rx.recv().await {
            Some(Ctl::Data(mut data)) => {
                if *first {
                    *first = false;
                    if data.starts_with(&WA_CONN_HEADER) {
                        data = data.slice(WA_CONN_HEADER.len()..);
                    }
                }
                decoder.feed(&data);
            }
            Some(Ctl::ClientClosed) | None => return Ok(None),
            // Nothing is sent or dropped during the handshake.
            Some(_) => {}
        }
    }
}

async fn run(
    fake: &FakeWhatsApp,
    ctx: &mut ConnCtx,
    rx: &mut mpsc::UnboundedReceiver<Ctl>,
    wire: &mut Wire,
) -> Result<Ending> {
    let mut decoder = FrameDecoder::new();
    let mut first = true;
    let Some(hello) = next_frame(rx, &mut decoder, &mut first).await? else {
        return Ok(Ending::ByClient);
    };
    let established = match noise::read_client_hello(fake.server_identity(), &hello)? {
        Hello::Ik { established, reply } => {
            wire.raw(encode_frame(&reply, None)?);
            *established
        }
        Hello::Xx {
            noise,
            server_eph,
            reply,
        } => {
            wire.raw(encode_frame(&reply, None)?);
            let Some(finish) = next_frame(rx, &mut decoder, &mut first).await? else {
                return Ok(Ending::ByClient);
            };
            noise::read_client_finish(*noise, &server_eph, &finish)?
        }
    };
    ctx.client_static = established.client_static;
    wire.tx = Some(established.tx);
    let mut rx_cipher = established.rx;

    fake.on_established(ctx, &established.payload);
    if let Some(end) = flush(ctx, wire)? {
        return Ok(end);
    }

    loop {
        while let Some(frame) = decoder.decode_frame() {
            let plain = rx_cipher.open(frame)?;
            let node = decode(plain)?;
            fake.on_node(ctx, node);
            if let Some(end) = flush(ctx, wire)? {
                return Ok(end);
            }
        }
        match rx.recv().await {
            Some(Ctl::Data(data)) => decoder.feed(&data),
            Some(Ctl::ClientClosed) | None => return Ok(Ending::ByClient),
            Some(Ctl::Send(node)) => {
                if !wire.node(&node)? {
                    return Ok(Ending::ByClient);
                }
            }
            Some(Ctl::Close(nodes)) => {
                for n in &nodes {
                    wire.node(n)?;
                }
                return Ok(Ending::Clean);
            }
            Some(Ctl::Drop) => return Ok(Ending::Dropped),
        }
    }
}

/// Sends what the handler queued; how the connection ends when the handler asked to end it.
fn flush(ctx: &mut ConnCtx, wire: &mut Wire) -> Result<Option<Ending>> {
    for n in std::mem::take(&mut ctx.out) {
        wire.node(&n)?;
    }
    Ok(match std::mem::replace(&mut ctx.after, After::Stay) {
        After::Stay => None,
        After::Close => Some(Ending::Clean),
        After::Drop => Some(Ending::Dropped),
    })
}

fn decode(plain: BytesMut) -> Result<Node> {
    let data = wacore_binary::util::unpack_bytes(plain).context("unpack")?;
    let node = wacore_binary::marshal::unmarshal_ref(&data).context("unmarshal")?;
    Ok(node.to_owned())
}
