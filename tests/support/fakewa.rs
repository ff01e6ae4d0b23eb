//! The real adapter over the in-process fake WhatsApp server: a backend wired to a fresh
//! fake, session specs in a temporary data folder, and waiting for events with a deadline.
#![allow(dead_code)]

use std::path::Path;
use std::time::Duration;

use tgwa::ids::{PhoneNumber, TelegramId};
use tgwa::layout::Layout;
use tgwa::wa::real::{RealBackend, RealOptions};
use tgwa::wa::{EventRx, SessionSpec, WaEvent};
use tgwa_fakewa::FakeWhatsApp;

/// How long a test waits for one event.
pub const WAIT: Duration = Duration::from_secs(30);

/// A backend whose connections go to `fake`.
pub fn backend(fake: &FakeWhatsApp) -> RealBackend {
    RealBackend::with_options(options(fake))
}

/// The options behind [`backend`]: the fake's transport, its version, short bounds.
pub fn options(fake: &FakeWhatsApp) -> RealOptions {
    RealOptions::default()
        .with_transport_factory(fake.transport())
        .with_version(tgwa_fakewa::VERSION)
        .with_http_client(std::sync::Arc::new(fake.http_client()))
        .with_socket_wait(Duration::from_secs(10))
        .with_shutdown_bound(Duration::from_secs(5))
}

/// A session spec for `phone` under `root`.
pub fn spec(root: &Path, phone: &str) -> SessionSpec {
    let tid = TelegramId::new(4242).expect("telegram id");
    let phone = PhoneNumber::from_digits(phone).expect("phone");
    let layout = Layout::new(root.join("DB USER TELEGRAM"));
    std::fs::create_dir_all(layout.user_dir(tid)).expect("user dir");
    SessionSpec {
        telegram_id: tid,
        session_file: layout.session_file(tid, &phone),
        phone,
    }
}

/// Waits for the first event `pick` accepts, returning what it made of it; panics with the
/// events seen when the deadline passes or the stream ends.
pub async fn wait_for<T>(rx: &mut EventRx, what: &str, mut pick: impl FnMut(&WaEvent) -> Option<T>) -> T {
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(ev)) => {
                if let Some(t) = pick(&ev) {
                    return t;
                }
                seen.push(ev);
            }
            Ok(None) => panic!("event stream ended while waiting for {what}; saw {seen:?}"),
            Err(_) => panic!("no {what} within {WAIT:?}; saw {seen:?}"),
        }
    }
}

/// Waits for `Connected`.
pub async fn connected(rx: &mut EventRx) {
    wait_for(rx, "Connected", |e| matches!(e, WaEvent::Connected).then_some(())).await
}
