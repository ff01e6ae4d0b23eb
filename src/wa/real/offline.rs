//! A WhatsApp "server" that never answers, for tests and the memory bench: the real adapter
//! builds, spawns, waits for its socket and shuts down without any network.

use std::sync::{Arc, Mutex};

use whatsapp_rust::async_channel;
use whatsapp_rust::bytes::Bytes;
use whatsapp_rust::transport::{DisconnectReason, Transport, TransportEvent, TransportFactory};

use super::{RealBackend, RealOptions};

/// The app version announced instead of fetching the current one over HTTP.
pub const OFFLINE_VERSION: (u32, u32, u32) = (2, 3000, 1_023_000_000);

/// Hands out transports that connect at once and then stay silent: every write is
/// swallowed and nothing is ever received, so the noise handshake never completes.
#[derive(Debug, Default, Clone, Copy)]
pub struct SilentTransportFactory;

impl SilentTransportFactory {
    /// A new factory.
    pub fn new() -> Self {
        Self
    }
}

/// One silent connection. Holding the event sender keeps the client's receive side open.
struct SilentTransport {
    events: Mutex<Option<async_channel::Sender<TransportEvent>>>,
}

#[whatsapp_rust::async_trait]
impl Transport for SilentTransport {
    async fn send(&self, _data: Bytes) -> Result<(), whatsapp_rust::anyhow::Error> {
        Ok(())
    }

    async fn disconnect(&self) {
        let tx = self.events.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(tx) = tx {
            let _ = tx.try_send(TransportEvent::Disconnected(DisconnectReason::Unknown));
        }
    }
}

#[whatsapp_rust::async_trait]
impl TransportFactory for SilentTransportFactory {
    async fn create_transport(
        &self,
    ) -> Result<(Arc<dyn Transport>, async_channel::Receiver<TransportEvent>), whatsapp_rust::anyhow::Error> {
        let (tx, rx) = async_channel::bounded(8);
        let _ = tx.try_send(TransportEvent::Connected);
        let transport = SilentTransport {
            events: Mutex::new(Some(tx)),
        };
        Ok((Arc::new(transport), rx))
    }
}

/// Options for an offline backend: the silent transport, a fixed version, short waits.
pub fn silent_options() -> RealOptions {
    RealOptions::default()
        .with_transport_factory(Arc::new(SilentTransportFactory))
        .with_version(OFFLINE_VERSION)
}

/// A [`RealBackend`] that never touches the network.
pub fn silent_backend() -> RealBackend {
    RealBackend::with_options(silent_options())
}
