//! The real WhatsApp adapter on whatsapp-rust 0.7. (Placeholder until the adapter lands.)

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;

use super::{EventRx, Probe, SessionSpec, WaBackend, WaError, WaSession};

/// whatsapp-rust sessions.
#[derive(Default)]
pub struct RealBackend;

impl RealBackend {
    /// A backend for the real network.
    pub fn new() -> Self {
        Self
    }
}

#[async_trait]
impl WaBackend for RealBackend {
    async fn start(&self, _spec: SessionSpec) -> Result<(Arc<dyn WaSession>, EventRx), WaError> {
        Err(WaError::Other("real adapter not built yet".into()))
    }
    async fn probe(&self, _session_file: &Path) -> Result<Probe, WaError> {
        Ok(Probe::Unpaired)
    }
}
