//! One supervisor task per live account: it owns the WhatsApp session, turns its events into
//! account status, and reports what needs a person on the notice channel.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::ids::AccountId;
use crate::manager::AccountManager;
use crate::wa::WaSession;

/// A live account: its session and supervisor.
pub(crate) struct Live {
    pub(crate) session: Arc<dyn WaSession>,
}

/// Account ID to live session.
#[derive(Default)]
pub(crate) struct LiveMap {
    pub(crate) map: Mutex<HashMap<AccountId, Live>>,
}

impl AccountManager {
    /// Disconnects and forgets the account's live session, if any.
    pub(crate) async fn stop_session(&self, id: AccountId) {
        let live = self
            .inner
            .live
            .map
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id);
        if let Some(live) = live {
            live.session.disconnect(self.inner.config.shutdown_timeout).await;
        }
    }
}
