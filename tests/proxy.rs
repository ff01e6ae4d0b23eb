//! A proxy per account (issue 21), end to end: the real adapter reaches the fake WhatsApp's
//! WebSocket only through a SOCKS5 relay on loopback, pairs, logs in again on a new start
//! (through the account's own proxy, kept in its bot-data file) and sends; a dead or
//! refusing proxy is reported as a proxy problem, not as WhatsApp being down.

#[path = "support/fakewa.rs"]
mod fakewa;
#[path = "support/socks5.rs"]
mod socks5;

use std::sync::Arc;
use std::time::Duration;

use fakewa::wait_for;
use socks5::Relay;
use tgwa::proxy::ProxyUrl;
use tgwa::wa::real::{RealBackend, RealOptions};
use tgwa::wa::{ChatTarget, SessionSpec, WaBackend, WaError, WaEvent, WaSession};
use tgwa_fakewa::{FakeWhatsApp, WsServer};

/// Options with no in-process transport at all: a connection that does not go through the
/// proxy has nowhere to go but WhatsApp's real address, which the test machine cannot reach.
/// Media and app-state blobs come from the fake's in-process media hosts (the relay only
/// carries the chat socket).
fn proxied(fake: &FakeWhatsApp, ws: &WsServer, default: Option<&str>) -> RealOptions {
    RealOptions::default()
        .with_http_client(Arc::new(fake.http_client()))
        .with_version(tgwa_fakewa::VERSION)
        .with_socket_wait(Duration::from_secs(10))
        .with_shutdown_bound(Duration::from_secs(5))
        .with_outage_after(Duration::from_secs(60))
        .with_proxy_target(ws.url())
        .with_default_proxy(default.map(|u| ProxyUrl::parse(u).expect("proxy url")))
}

/// Stores `url` as the account's own proxy, in its bot-data file beside the session file.
fn store_account_proxy(spec: &SessionSpec, url: &str) {
    let name = spec.session_file.file_name().unwrap().to_str().unwrap();
    let bot = spec
        .session_file
        .with_file_name(name.replacen("whatsmeow-", "bot_data-", 1));
    let pool = tgwa::db::open_pool(&bot, tgwa::db::Schema::Account, 1, None).expect("bot data");
    let conn = pool.get().unwrap();
    tgwa::proxy::store(&conn, Some(&ProxyUrl::parse(url).unwrap())).expect("store");
}

async fn pair_via(be: &RealBackend, fake: &FakeWhatsApp, spec: SessionSpec, phone: &str) -> Arc<dyn WaSession> {
    let (session, mut rx) = be.start(spec).await.expect("start");
    session.start_qr().await.expect("qr mode");
    let qr = wait_for(&mut rx, "a QR code", |e| match e {
        WaEvent::Qr { code, .. } => Some(code.clone()),
        _ => None,
    })
    .await;
    fake.scan_qr(&qr, phone).expect("the phone scans");
    wait_for(&mut rx, "PairSuccess", |e| {
        matches!(e, WaEvent::PairSuccess { .. }).then_some(())
    })
    .await;
    fakewa::connected(&mut rx).await;
    session
}

#[tokio::test]
async fn an_account_behind_a_socks5_relay_pairs_logs_in_again_and_sends_with_every_byte_through_the_relay() {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeWhatsApp::default();
    let ws = fake.serve_ws("127.0.0.1:0").await.unwrap();
    let (me, friend) = ("6281200002101", "6281200002102");
    fake.add_user(friend);
    let creds = Some(("op", "p@ss:w0rd"));
    // The pairing goes through the default proxy (`TGWA_WA_PROXY`): the account has no
    // bot-data file, hence no proxy of its own, yet.
    let default_relay = Relay::start(creds).await;
    let default_url = format!(
        "socks5://op:p%40ss%3Aw0rd@{}",
        default_relay.url(None).trim_start_matches("socks5://")
    );
    let spec = fakewa::spec(dir.path(), me);
    let be = RealBackend::with_options(proxied(&fake, &ws, Some(&default_url)));
    let session = pair_via(&be, &fake, spec.clone(), me).await;
    session.disconnect(Duration::from_secs(5)).await;

    // Its own proxy, as `tgwa proxy set` stores it; a new start (a restart) logs in through
    // it, not the default.
    let own_relay = Relay::start(None).await;
    store_account_proxy(&spec, &own_relay.url(None));
    let be = RealBackend::with_options(proxied(&fake, &ws, Some(&default_url)));
    let via_default_before = default_relay.outbound().len();
    let (session, mut rx) = be.start(spec.clone()).await.expect("restart");
    fakewa::connected(&mut rx).await;
    let id = session
        .send_text(
            &ChatTarget::Phone(tgwa::ids::PhoneNumber::from_digits(friend).unwrap()),
            "via the proxy",
        )
        .await
        .expect("send");
    assert!(
        fake.sent_messages().iter().any(|m| m.id == id),
        "the server got the text"
    );
    session.disconnect(Duration::from_secs(5)).await;

    // Every socket the fake accepted came from one of the relays' outbound connections.
    let mut via_relays: Vec<_> = default_relay.outbound();
    via_relays.extend(own_relay.outbound());
    let peers = ws.peers();
    assert!(!peers.is_empty());
    for p in &peers {
        assert!(
            via_relays.contains(p),
            "{p} reached the fake without a relay: {peers:?} vs {via_relays:?}"
        );
    }
    assert!(
        !own_relay.outbound().is_empty(),
        "the restart used the account's own proxy"
    );
    assert_eq!(
        default_relay.outbound().len(),
        via_default_before,
        "not the default one"
    );
    assert!(default_relay.bytes() > 0 && own_relay.bytes() > 0);
    assert!(own_relay.bytes() >= ws.bytes_in().saturating_sub(default_relay.bytes()));
}

#[tokio::test]
async fn a_dead_or_refusing_proxy_is_reported_as_a_proxy_problem() {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeWhatsApp::default();
    let ws = fake.serve_ws("127.0.0.1:0").await.unwrap();

    // Nothing listens where the proxy should be.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let be = RealBackend::with_options(proxied(&fake, &ws, Some(&format!("socks5://u:hunter2@{dead}"))));
    let (session, mut rx) = be
        .start(fakewa::spec(dir.path(), "6281200002111"))
        .await
        .expect("start");
    let (proxy, reason) = wait_for(&mut rx, "ProxyFailed", |e| match e {
        WaEvent::ProxyFailed { proxy, reason } => Some((proxy.clone(), reason.clone())),
        _ => None,
    })
    .await;
    assert!(
        proxy.contains("u:***@") && !proxy.contains("hunter2"),
        "masked: {proxy}"
    );
    assert!(reason.contains("cannot reach the proxy"), "{reason}");
    session.disconnect(Duration::from_secs(3)).await;

    // A proxy that refuses the credentials.
    let relay = Relay::start(Some(("op", "right"))).await;
    let be = RealBackend::with_options(proxied(&fake, &ws, Some(&relay.url(Some(("op", "wrong"))))));
    let (session, mut rx) = be
        .start(fakewa::spec(dir.path(), "6281200002112"))
        .await
        .expect("start");
    let reason = wait_for(&mut rx, "ProxyFailed", |e| match e {
        WaEvent::ProxyFailed { reason, .. } => Some(reason.clone()),
        _ => None,
    })
    .await;
    assert!(reason.contains("user name or password"), "{reason}");
    assert!(relay.refused() >= 1);
    assert!(ws.peers().is_empty(), "nothing reached the fake");
    session.disconnect(Duration::from_secs(3)).await;
}

#[tokio::test]
async fn an_operation_while_the_proxy_is_down_fails_as_a_proxy_error() {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeWhatsApp::default();
    let ws = fake.serve_ws("127.0.0.1:0").await.unwrap();
    let relay = Relay::start(None).await;
    let phone = "6281200002121";
    let spec = fakewa::spec(dir.path(), phone);
    let be = RealBackend::with_options(
        proxied(&fake, &ws, Some(&relay.url(None))).with_reconnect_grace(Duration::from_millis(500)),
    );
    let session = pair_via(&be, &fake, spec.clone(), phone).await;
    session.disconnect(Duration::from_secs(5)).await;
    drop(relay);

    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    store_account_proxy(&spec, &format!("http://{dead}"));
    let (session, mut rx) = be.start(spec).await.expect("start");
    wait_for(&mut rx, "ProxyFailed", |e| {
        matches!(e, WaEvent::ProxyFailed { .. }).then_some(())
    })
    .await;
    let err = session
        .send_text(
            &ChatTarget::Phone(tgwa::ids::PhoneNumber::from_digits("6281200002122").unwrap()),
            "x",
        )
        .await
        .expect_err("no connection");
    assert!(matches!(err, WaError::Proxy(_)), "{err:?}");
    session.disconnect(Duration::from_secs(3)).await;
}

/// The whole bot over the fake backend (`--features insecure-fake-whatsapp`): an account
/// whose proxy dies is told so, as a proxy problem, and so is the operator.
#[cfg(feature = "insecure-fake-whatsapp")]
#[path = "support/fake_telegram.rs"]
pub mod fake_telegram;
#[cfg(feature = "insecure-fake-whatsapp")]
mod support {
    pub use super::fake_telegram;
    #[path = "app.rs"]
    pub mod app;
}

#[cfg(feature = "insecure-fake-whatsapp")]
mod bot {
    use crate::support::app::{TestBot, WAIT};

    #[tokio::test]
    async fn a_dead_proxy_is_told_to_the_owner_and_the_operator_as_a_proxy_problem() {
        let (owner, admin) = (7101_i64, 7102_i64);
        let admin_ids = admin.to_string();
        let bot = TestBot::start(&[("TGWA_WA_BACKEND", "fake"), ("TGWA_ADMIN_IDS", &admin_ids)]).await;
        bot.pair(owner, "6281200002131").await;
        // The operator gives the account a default proxy that is not there, and restarts.
        let (tg, dir, mut extra) = bot.stop().await;
        let dead = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        extra.push(("TGWA_WA_PROXY".into(), format!("socks5://op:hunter2@{dead}")));
        let mark = tg.mark();
        let bot = TestBot::start_in(tg, dir, extra).await;
        let told = bot.tg.wait_for_text_to_after(mark, owner, "proxy", WAIT).await;
        assert!(told.text.contains("bukan gangguan WhatsApp"), "{}", told.text);
        assert!(
            !told.text.contains("hunter2") && told.text.contains("op:***@"),
            "{}",
            told.text
        );
        let op = bot.tg.wait_for_text_to_after(mark, admin, "Proxy akun", WAIT).await;
        assert!(!op.text.contains("hunter2"), "{}", op.text);
        bot.stop().await;
    }
}
