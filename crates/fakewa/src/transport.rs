//! The in-process wire: a [`TransportFactory`] whose transports hand the client's bytes to a
//! server task of ours instead of a WebSocket.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::mpsc;
use wacore_binary::Node;
use whatsapp_rust::transport::{DisconnectReason, Transport, TransportEvent, TransportFactory};

use crate::FakeWhatsApp;

/// What a server connection task is told.
pub(crate) enum Ctl {
    /// Bytes the client wrote.
    Data(Bytes),
    /// The client closed its side.
    ClientClosed,
    /// Send this node to the client.
    Send(Node),
    /// Send these nodes, then close the socket (the client sees a disconnect).
    Close(Vec<Node>),
    /// Drop the socket without a word, as a network failure would.
    Drop,
}

/// One client's end of an in-process connection.
pub struct FakeTransport {
    /// To the server task.
    ctl: mpsc::UnboundedSender<Ctl>,
    /// Set once the client disconnected, so a second disconnect is a no-op.
    closed: AtomicBool,
}

#[async_trait::async_trait]
impl Transport for FakeTransport {
    async fn send(&self, data: Bytes) -> Result<(), anyhow::Error> {
        if self.closed.load(Ordering::SeqCst) {
            anyhow::bail!("connection closed");
        }
        self.ctl
            .send(Ctl::Data(data))
            .map_err(|_| anyhow::anyhow!("connection closed by the server"))
    }

    async fn disconnect(&self) {
        if !self.closed.swap(true, Ordering::SeqCst) {
            let _ = self.ctl.send(Ctl::ClientClosed);
        }
    }
}

/// Hands out connections to one [`FakeWhatsApp`].
#[derive(Clone)]
pub struct FakeTransportFactory {
    pub(crate) fake: FakeWhatsApp,
}

#[async_trait::async_trait]
impl TransportFactory for FakeTransportFactory {
    async fn create_transport(
        &self,
    ) -> Result<(Arc<dyn Transport>, async_channel::Receiver<TransportEvent>), anyhow::Error> {
        if self.fake.is_offline() {
            anyhow::bail!("fake WhatsApp is offline (connection refused)");
        }
        self.fake.note_ingress(|i| i.in_process_conns += 1);
        let (ctl_tx, ctl_rx) = mpsc::unbounded_channel();
        let (ev_tx, ev_rx) = async_channel::unbounded();
        let _ = ev_tx.try_send(TransportEvent::Connected);
        let fake = self.fake.clone();
        let id = fake.next_conn_id();
        let self_tx = ctl_tx.clone();
        tokio::spawn(crate::conn::serve(fake, id, ctl_rx, self_tx, ev_tx));
        Ok((
            Arc::new(FakeTransport {
                ctl: ctl_tx,
                closed: AtomicBool::new(false),
            }),
            ev_rx,
        ))
    }
}

/// Why the server ended a connection, as the client's transport reports it.
pub(crate) fn server_closed() -> TransportEvent {
    TransportEvent::Disconnected(DisconnectReason::ServerClose {
        code: Some(1000),
        reason: String::new(),
    })
}

/// A socket that died without a close frame.
pub(crate) fn dropped() -> TransportEvent {
    TransportEvent::Disconnected(DisconnectReason::ReadError("connection reset by peer".into()))
}
