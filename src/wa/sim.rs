//! The in-process WhatsApp simulator (`TGWA_WA_BACKEND=sim`). (Placeholder until it lands.)

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::{EventRx, Probe, SessionSpec, WaBackend, WaError, WaSession};
use crate::layout::Layout;

/// The simulated WhatsApp network shared by every account in the process.
pub struct SimBackend;

impl SimBackend {
    /// Opens (or creates) the world in `{data_dir}/.sim/world.db`.
    pub async fn open(_layout: &Layout, _pair_delay: Duration, _code_ttl: Duration) -> Result<Arc<Self>, WaError> {
        Ok(Arc::new(Self))
    }
}

#[async_trait]
impl WaBackend for SimBackend {
    async fn start(&self, _spec: SessionSpec) -> Result<(Arc<dyn WaSession>, EventRx), WaError> {
        Err(WaError::Other("simulator not built yet".into()))
    }
    async fn probe(&self, _session_file: &Path) -> Result<Probe, WaError> {
        Ok(Probe::Unpaired)
    }
}
