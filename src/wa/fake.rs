//! `TGWA_WA_BACKEND=fake`: the real adapter against the in-process fake WhatsApp server
//! (`tgwa-fakewa`), only in a build with the `insecure-fake-whatsapp` feature.
//!
//! Sessions are the real adapter's, on the same session files. What a person would do on
//! the phone is done by the fake phone, after the simulator's pairing delay and by the
//! same table (`DESIGN.md` section 6): a pairing code is typed in and a QR code scanned,
//! except for numbers ending `0408`, whose phone never confirms; `0429` is refused as
//! rate-limited, `0401` logged out and `0402` banned shortly after the first login. As in
//! the simulator, every number not ending `00` is on WhatsApp.
//!
//! The fake world (accounts, linked devices, groups, the messages the server accepted and
//! their text) is kept in `DATA_DIR/.fake/world.json` (folder 0700, file 0600), saved in the
//! background, after every send, when a session disconnects and when the backend is
//! dropped, so a restart keeps the groups and the record of sent messages as well as the
//! session files. Logins of devices the world does not know
//! are still accepted (sessions imported from whatsmeow, or paired before the world was
//! kept).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tgwa_fakewa::{FakeOptions, FakeWhatsApp};
use tokio::sync::mpsc;
use tracing::{debug, warn};

use super::real::{RealBackend, RealOptions, RealSession};

pub mod ctl;
use super::{
    ChatTarget, EventRx, GroupId, GroupInfo, GroupSummary, JoinOutcome, MemberAction, MemberResult, PairCode,
    PhoneNumber, Probe, Profile, SessionSpec, WaBackend, WaError, WaEvent, WaSession,
};

/// Whether the fake phone of `phone` ignores pairing requests (the `0408` row).
fn phone_never_confirms(phone: &PhoneNumber) -> bool {
    phone.digits().ends_with("0408")
}

/// The simulator's rule: numbers ending `00` are not on WhatsApp.
fn on_whatsapp(phone: &PhoneNumber) -> bool {
    !phone.digits().ends_with("00")
}

/// The real adapter over one process-wide fake server.
pub struct FakeBackend {
    real: RealBackend,
    fake: FakeWhatsApp,
    pair_delay: Duration,
    /// The control socket (`tgwa fake <verb>`), while it is served.
    ctl: Option<ctl::Served>,
    // --- peer ---
    /// The same server on a loopback WebSocket, where proxied accounts connect (issue 21).
    ws: Option<tgwa_fakewa::WsServer>,
    // --- proxy2 ---
    /// The media hosts on a loopback HTTP socket, where proxied accounts' media goes.
    http: Option<tgwa_fakewa::HttpServer>,
}

impl FakeBackend {
    /// The fake world kept under `data_dir` (`.fake/world.json`, created on first use);
    /// the phone confirms pairings after `pair_delay`; an outage is reported after `outage_after`.
    pub fn new(data_dir: &Path, pair_delay: Duration, outage_after: Duration) -> Result<Self, WaError> {
        let layout = crate::layout::Layout::new(data_dir);
        layout.ensure_root().map_err(storage)?;
        let dir = layout.fake_dir();
        crate::layout::create_private_dir(&dir).map_err(storage)?;
        let fake = FakeWhatsApp::new(FakeOptions {
            trust_unknown_devices: true,
            state_file: Some(dir.join("world.json")),
            ..FakeOptions::default()
        });
        // Accounts without a proxy use the in-process transport; a proxied account dials the
        // fake's WebSocket through its proxy, so a proxy is exercised end to end.
        let ws = match tokio::runtime::Handle::try_current() {
            Ok(rt) => match fake.serve_ws_on(&rt, "127.0.0.1:0") {
                Ok(ws) => Some(ws),
                Err(e) => {
                    warn!(error = %e, "no WebSocket listener for the fake WhatsApp");
                    None
                }
            },
            Err(_) => None,
        };
        // --- proxy2 --- and their media requests reach its media hosts on a socket too.
        let http = match tokio::runtime::Handle::try_current() {
            Ok(rt) => match fake.serve_http_on(&rt, "127.0.0.1:0") {
                Ok(h) => Some(h),
                Err(e) => {
                    warn!(error = %e, "no media HTTP listener for the fake WhatsApp");
                    None
                }
            },
            Err(_) => None,
        };
        let mut opts = RealOptions::default()
            .with_transport_factory(fake.transport())
            .with_version(tgwa_fakewa::VERSION)
            .with_http_client(Arc::new(fake.http_client()))
            .with_outage_after(outage_after);
        if let Some(ws) = &ws {
            opts = opts.with_proxy_target(ws.url());
        }
        if let Some(h) = &http {
            opts = opts.with_proxy_http_target(h.url());
        }
        let real = RealBackend::with_options(opts);
        // Served only inside a runtime (`tgwa run`, the in-process test bots).
        let ctl = match tokio::runtime::Handle::try_current() {
            Ok(rt) => match ctl::serve(&rt, fake.clone(), &dir.join(ctl::SOCKET)) {
                Ok(served) => Some(served),
                Err(e) => {
                    warn!(error = %e, "no control socket for the fake WhatsApp");
                    None
                }
            },
            Err(_) => None,
        };
        Ok(Self {
            real,
            fake,
            pair_delay,
            ctl,
            ws,
            http,
        })
    }

    // --- peer ---
    /// Sends accounts without a proxy of their own through `proxy` (`TGWA_WA_PROXY`).
    pub fn with_default_proxy(mut self, proxy: Option<crate::proxy::ProxyUrl>) -> Self {
        let opts = self.real.options().clone().with_default_proxy(proxy);
        self.real = RealBackend::with_options(opts);
        self
    }

    /// The fake's WebSocket listener, when it has one (inside a runtime).
    pub fn ws(&self) -> Option<&tgwa_fakewa::WsServer> {
        self.ws.as_ref()
    }

    // --- proxy2 ---
    /// The fake's media HTTP listener, when it has one (inside a runtime).
    pub fn http(&self) -> Option<&tgwa_fakewa::HttpServer> {
        self.http.as_ref()
    }

    /// The fake server, for tests that want to look inside.
    pub fn server(&self) -> &FakeWhatsApp {
        &self.fake
    }
}

fn storage(e: std::io::Error) -> WaError {
    WaError::Storage(format!("the fake WhatsApp world: {e}"))
}

impl Drop for FakeBackend {
    /// The last state is on disk before a restarted process loads it, even when a session's
    /// tasks still hold the server a while longer.
    fn drop(&mut self) {
        if let Some(served) = self.ctl.take() {
            served.stop();
        }
        if let Err(e) = self.fake.flush() {
            warn!(error = %e, "could not save the fake WhatsApp world");
        }
    }
}

#[async_trait]
impl WaBackend for FakeBackend {
    async fn start(&self, spec: SessionSpec) -> Result<(Arc<dyn WaSession>, EventRx), WaError> {
        let phone = spec.phone.clone();
        let (inner, mut rx) = self.real.start_session(spec).await?;
        // The fake phone scans the first QR code it is shown, after the pairing delay.
        let (tx, out) = mpsc::unbounded_channel();
        let (fake, delay) = (self.fake.clone(), self.pair_delay);
        tokio::spawn(async move {
            let mut scanned = false;
            while let Some(ev) = rx.recv().await {
                if let (WaEvent::Qr { code, .. }, false) = (&ev, scanned) {
                    if !phone_never_confirms(&phone) {
                        scanned = true;
                        let (fake, code, phone) = (fake.clone(), code.clone(), phone.digits().to_string());
                        tokio::spawn(async move {
                            tokio::time::sleep(delay).await;
                            if let Err(e) = fake.scan_qr(&code, &phone) {
                                debug!(error = %e, "the fake phone could not scan");
                            }
                        });
                    }
                }
                if tx.send(ev).is_err() {
                    break;
                }
            }
        });
        let session = FakePhoneSession {
            inner,
            fake: self.fake.clone(),
            pair_delay: self.pair_delay,
        };
        Ok((Arc::new(session), out))
    }

    async fn probe(&self, session_file: &Path) -> Result<Probe, WaError> {
        self.real.probe(session_file).await
    }
}

/// A real session whose phone is the fake's.
struct FakePhoneSession {
    inner: Arc<RealSession>,
    fake: FakeWhatsApp,
    pair_delay: Duration,
}

impl FakePhoneSession {
    /// Writes the fake world to its file now (off the async runtime).
    async fn save(&self) {
        let fake = self.fake.clone();
        match tokio::task::spawn_blocking(move || fake.flush()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => warn!(error = %e, "could not save the fake WhatsApp world"),
            Err(e) => warn!(error = %e, "saving the fake WhatsApp world failed"),
        }
    }
}

#[async_trait]
impl WaSession for FakePhoneSession {
    async fn request_pair_code(&self, phone: &PhoneNumber) -> Result<PairCode, WaError> {
        let code = self.inner.request_pair_code(phone).await?;
        if !phone_never_confirms(phone) {
            let (fake, digits, typed, delay) = (
                self.fake.clone(),
                phone.digits().to_string(),
                code.code.clone(),
                self.pair_delay,
            );
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                if let Err(e) = fake.enter_code(&digits, &typed) {
                    warn!(error = %e, "the fake phone could not take the pairing code");
                }
            });
        }
        Ok(code)
    }
    async fn start_qr(&self) -> Result<(), WaError> {
        self.inner.start_qr().await
    }
    async fn cancel_pair_code(&self) -> Result<(), WaError> {
        self.inner.cancel_pair_code().await
    }
    async fn logout(&self) -> Result<(), WaError> {
        self.inner.logout().await
    }
    async fn disconnect(&self, bound: Duration) {
        self.inner.disconnect(bound).await;
        // A stopping process disconnects every session first: its world is then on disk
        // before a restart loads it, whenever the last handle on the server goes.
        self.save().await;
    }
    async fn profile(&self) -> Result<Profile, WaError> {
        self.inner.profile().await
    }
    async fn send_text(&self, to: &ChatTarget, text: &str) -> Result<String, WaError> {
        if let ChatTarget::Phone(p) = to {
            if on_whatsapp(p) {
                self.fake.add_user(p.digits());
            }
        }
        let id = self.inner.send_text(to, text).await?;
        // The server cannot read the message; it records the text of the one it accepted
        // (until the fake phones decrypt what they receive).
        self.fake.note_text(&id, text);
        // As the simulator commits each message before its send returns: the record on disk
        // holds every send that returned Ok, whatever stops the process next.
        self.save().await;
        Ok(id)
    }
    async fn upload_media(
        &self,
        kind: super::MediaKind,
        bytes: &[u8],
        mime: &str,
        file_name: &str,
    ) -> Result<super::MediaRef, WaError> {
        self.inner.upload_media(kind, bytes, mime, file_name).await
    }
    async fn send_uploaded(&self, to: &ChatTarget, media: &super::MediaRef, caption: &str) -> Result<String, WaError> {
        if let ChatTarget::Phone(p) = to {
            if on_whatsapp(p) {
                self.fake.add_user(p.digits());
            }
        }
        // What the recipients' phones downloaded and decrypted is recorded by the server.
        let id = self.inner.send_uploaded(to, media, caption).await?;
        self.save().await;
        Ok(id)
    }
    async fn send_media(
        &self,
        to: &ChatTarget,
        kind: super::MessageKind,
        media: &super::Media,
        caption: &str,
    ) -> Result<String, WaError> {
        if let ChatTarget::Phone(p) = to {
            if on_whatsapp(p) {
                self.fake.add_user(p.digits());
            }
        }
        let id = self.inner.send_media(to, kind, media, caption).await?;
        self.save().await;
        Ok(id)
    }
    async fn groups(&self) -> Result<Vec<GroupSummary>, WaError> {
        self.inner.groups().await
    }
    async fn group_info(&self, id: &GroupId) -> Result<GroupInfo, WaError> {
        self.inner.group_info(id).await
    }
    async fn create_group(&self, subject: &str, members: &[PhoneNumber]) -> Result<GroupInfo, WaError> {
        for m in members {
            // Everyone the bot names exists in the fake world, as in the simulator.
            self.fake.add_user(m.digits());
        }
        self.inner.create_group(subject, members).await
    }
    async fn invite_link(&self, id: &GroupId, reset: bool) -> Result<String, WaError> {
        self.inner.invite_link(id, reset).await
    }
    async fn join_group(&self, link_or_code: &str) -> Result<JoinOutcome, WaError> {
        self.inner.join_group(link_or_code).await
    }
    async fn leave_group(&self, id: &GroupId) -> Result<(), WaError> {
        self.inner.leave_group(id).await
    }
    async fn set_subject(&self, id: &GroupId, subject: &str) -> Result<(), WaError> {
        self.inner.set_subject(id, subject).await
    }
    async fn set_description(&self, id: &GroupId, description: Option<&str>) -> Result<(), WaError> {
        self.inner.set_description(id, description).await
    }
    async fn set_announce(&self, id: &GroupId, on: bool) -> Result<(), WaError> {
        self.inner.set_announce(id, on).await
    }
    async fn set_locked(&self, id: &GroupId, on: bool) -> Result<(), WaError> {
        self.inner.set_locked(id, on).await
    }
    async fn update_members(
        &self,
        id: &GroupId,
        action: MemberAction,
        members: &[PhoneNumber],
    ) -> Result<Vec<MemberResult>, WaError> {
        if action == MemberAction::Add {
            for m in members {
                self.fake.add_user(m.digits());
            }
        }
        self.inner.update_members(id, action, members).await
    }
    async fn is_on_whatsapp(&self, numbers: &[PhoneNumber]) -> Result<Vec<(PhoneNumber, bool)>, WaError> {
        for n in numbers.iter().filter(|n| on_whatsapp(n)) {
            self.fake.add_user(n.digits());
        }
        self.inner.is_on_whatsapp(numbers).await
    }
    async fn show_typing(&self, to: &ChatTarget, how_long: Duration) -> Result<(), WaError> {
        self.inner.show_typing(to, how_long).await
    }
    async fn reach_out_until(&self) -> Option<i64> {
        self.inner.reach_out_until().await
    }
    // --- members ---
    async fn group_roster(&self, id: &GroupId) -> Result<Vec<super::RosterEntry>, WaError> {
        self.inner.group_roster(id).await
    }
    async fn join_requests(&self, id: &GroupId) -> Result<Vec<super::JoinRequest>, WaError> {
        self.inner.join_requests(id).await
    }
    async fn answer_join_requests(
        &self,
        id: &GroupId,
        approve: bool,
        who: &[super::PersonId],
    ) -> Result<Vec<super::RequestResult>, WaError> {
        self.inner.answer_join_requests(id, approve, who).await
    }
    async fn join_approval(&self, id: &GroupId) -> Result<bool, WaError> {
        self.inner.join_approval(id).await
    }
    async fn set_join_approval(&self, id: &GroupId, on: bool) -> Result<(), WaError> {
        self.inner.set_join_approval(id, on).await
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[tokio::test]
    async fn the_world_is_kept_in_a_private_folder_and_survives_a_new_backend() {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join("DB USER TELEGRAM");
        let first = FakeBackend::new(&data, Duration::from_millis(10), Duration::from_secs(120)).expect("backend");
        let g = first
            .server()
            .create_group("6281200000001", "Tetap", &["6281200000002"], false);
        drop(first);

        let mode = |p: &Path| std::fs::metadata(p).expect("metadata").permissions().mode() & 0o777;
        assert_eq!(mode(&data.join(".fake")), 0o700);
        assert_eq!(mode(&data.join(".fake/world.json")), 0o600);
        let second = FakeBackend::new(&data, Duration::from_millis(10), Duration::from_secs(120)).expect("backend");
        let kept = second.server().group(&g).expect("the group after a restart");
        assert_eq!(kept.subject, "Tetap");
        assert_eq!(kept.members.len(), 2);
    }
}
