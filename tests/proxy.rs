//! A proxy per account (issue 21), end to end: the real adapter reaches the fake WhatsApp's
//! WebSocket only through a SOCKS5 relay on loopback, pairs, logs in again on a new start
//! (through the account's own proxy, kept in its bot-data file) and sends; a dead or
//! refusing proxy is reported as a proxy problem, not as WhatsApp being down.

#[path = "support/fakewa.rs"]
mod fakewa;
#[path = "support/socks5.rs"]
mod socks5;
// --- proxy2 ---
#[path = "support/http_relay.rs"]
mod http_relay;

use std::sync::Arc;
use std::time::Duration;

use fakewa::wait_for;
use socks5::Relay;
use tgwa::proxy::ProxyUrl;
use tgwa::wa::real::{RealBackend, RealOptions};
use tgwa::wa::{ChatTarget, SessionSpec, WaBackend, WaError, WaEvent, WaSession};
use tgwa_fakewa::{FakeWhatsApp, HttpServer, WsServer};

/// Options with no in-process transport at all: a connection that does not go through the
/// proxy has nowhere to go but WhatsApp's real address, which the test machine cannot reach.
fn proxied(ws: &WsServer, default: Option<&str>) -> RealOptions {
    RealOptions::default()
        .with_version(tgwa_fakewa::VERSION)
        .with_socket_wait(Duration::from_secs(10))
        .with_shutdown_bound(Duration::from_secs(5))
        .with_outage_after(Duration::from_secs(60))
        .with_proxy_target(ws.url())
        .with_default_proxy(default.map(|u| ProxyUrl::parse(u).expect("proxy url")))
}

/// [`proxied`], with the proxied accounts' media HTTP sent to the fake's media listener
/// (through the proxy, as the WebSocket).
fn proxied_with_media(ws: &WsServer, http: &HttpServer, default: Option<&str>) -> RealOptions {
    proxied(ws, default).with_proxy_http_target(http.url())
}

/// A document sent to `to`: its upload goes through the account's proxy too.
async fn send_document(session: &Arc<dyn WaSession>, to: &str) -> String {
    let doc = tgwa::wa::Media {
        file_name: "laporan.txt".into(),
        mime: "text/plain".into(),
        bytes: b"laporan lewat proxy".repeat(40),
    };
    session
        .send_media(
            &ChatTarget::Phone(tgwa::ids::PhoneNumber::from_digits(to).unwrap()),
            tgwa::wa::MessageKind::Document,
            &doc,
            "lewat proxy",
        )
        .await
        .expect("send a document")
}

/// Every socket the fake accepted (WebSocket and media HTTP) is one of `via`, at least one
/// of each was, and nothing came in-process.
fn only_through(fake: &FakeWhatsApp, via: &[std::net::SocketAddr]) {
    let i = fake.ingress();
    let via: Vec<String> = via.iter().map(|a| a.to_string()).collect();
    assert!(!i.ws_peers.is_empty() && !i.http_peers.is_empty(), "{i:?}");
    for p in i.ws_peers.iter().chain(&i.http_peers) {
        assert!(
            via.contains(p),
            "{p} reached the fake without the proxy: {i:?} vs {via:?}"
        );
    }
    assert_eq!((i.in_process_conns, i.in_process_http), (0, 0), "{i:?}");
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
    let http = fake
        .serve_http_on(&tokio::runtime::Handle::current(), "127.0.0.1:0")
        .unwrap();
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
    let be = RealBackend::with_options(proxied_with_media(&ws, &http, Some(&default_url)));
    let session = pair_via(&be, &fake, spec.clone(), me).await;
    session.disconnect(Duration::from_secs(5)).await;

    // Its own proxy, as `tgwa proxy set` stores it; a new start (a restart) logs in through
    // it, not the default.
    let own_relay = Relay::start(None).await;
    store_account_proxy(&spec, &own_relay.url(None));
    let be = RealBackend::with_options(proxied_with_media(&ws, &http, Some(&default_url)));
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
        fake.sent_messages().iter().any(|m| m.id == id && m.read_by_phone),
        "the server got the text, and the friend's phone read it"
    );
    // A document: its upload goes through the account's own proxy too.
    let doc = send_document(&session, friend).await;
    let sent = fake.sent_messages();
    let got = sent.iter().find(|m| m.id == doc).and_then(|m| m.media.clone());
    assert!(got.is_some_and(|m| m.sha256.is_some()), "the phone decrypted the file");
    session.disconnect(Duration::from_secs(5)).await;

    // Every socket the fake accepted (WebSocket and media) came from one of the relays'
    // outbound connections, and nothing came in-process.
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
    only_through(&fake, &via_relays);
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
    let be = RealBackend::with_options(proxied(&ws, Some(&format!("socks5://u:hunter2@{dead}"))));
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
    let be = RealBackend::with_options(proxied(&ws, Some(&relay.url(Some(("op", "wrong"))))));
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
    // The login after pairing downloads app state, so the media hosts must be reachable too.
    let http = fake
        .serve_http_on(&tokio::runtime::Handle::current(), "127.0.0.1:0")
        .unwrap();
    let relay = Relay::start(None).await;
    let phone = "6281200002121";
    let spec = fakewa::spec(dir.path(), phone);
    let be = RealBackend::with_options(
        proxied_with_media(&ws, &http, Some(&relay.url(None))).with_reconnect_grace(Duration::from_millis(500)),
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

// --- proxy2 ---

#[tokio::test]
async fn an_account_behind_an_http_connect_proxy_pairs_logs_in_again_sends_and_uploads_only_through_it() {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeWhatsApp::default();
    let ws = fake.serve_ws("127.0.0.1:0").await.unwrap();
    let http = fake
        .serve_http_on(&tokio::runtime::Handle::current(), "127.0.0.1:0")
        .unwrap();
    let (me, friend) = ("6281200002141", "6281200002142");
    fake.add_user(friend);
    let relay = http_relay::HttpRelay::start(Some(("op", "s3cret"))).await;
    let url = relay.url(Some(("op", "s3cret")));
    let spec = fakewa::spec(dir.path(), me);
    let be = RealBackend::with_options(proxied_with_media(&ws, &http, Some(&url)));
    let session = pair_via(&be, &fake, spec.clone(), me).await;
    session.disconnect(Duration::from_secs(5)).await;

    // A new start logs in again through the proxy, then sends a text and a document.
    let tunnels_before = relay.outbound().len();
    let (session, mut rx) = be.start(spec).await.expect("restart");
    fakewa::connected(&mut rx).await;
    assert!(
        relay.outbound().len() > tunnels_before,
        "the login went through the proxy"
    );
    let text_id = session
        .send_text(
            &ChatTarget::Phone(tgwa::ids::PhoneNumber::from_digits(friend).unwrap()),
            "lewat proxy http",
        )
        .await
        .expect("send");
    let doc_id = send_document(&session, friend).await;
    session.disconnect(Duration::from_secs(5)).await;

    let sent = fake.sent_messages();
    let text = sent.iter().find(|m| m.id == text_id).expect("the text");
    assert!(
        text.read_by_phone && text.text.as_deref() == Some("lewat proxy http"),
        "{text:?}"
    );
    let doc = sent.iter().find(|m| m.id == doc_id).expect("the document");
    let media = doc.media.as_ref().expect("the phone got the file");
    assert!(
        media.sha256.is_some(),
        "the phone downloaded and decrypted it: {media:?}"
    );
    assert_eq!(fake.uploads().len(), 1);
    only_through(&fake, &relay.outbound());
    assert!(relay.refused() == 0 && relay.bytes() > 0);
    assert!(
        relay.targets().iter().any(|t| t == &ws.addr().to_string()),
        "{:?}",
        relay.targets()
    );

    // The same proxy with a wrong password: a proxy problem (407), nothing reaches the fake.
    let peers_before = fake.ingress().ws_peers.len();
    let be = RealBackend::with_options(proxied(&ws, Some(&relay.url(Some(("op", "wrong"))))));
    let (session, mut rx) = be
        .start(fakewa::spec(dir.path(), "6281200002143"))
        .await
        .expect("start");
    let reason = wait_for(&mut rx, "ProxyFailed", |e| match e {
        WaEvent::ProxyFailed { reason, .. } => Some(reason.clone()),
        _ => None,
    })
    .await;
    assert!(reason.contains("user name or password (407)"), "{reason}");
    assert!(relay.refused() >= 1);
    assert_eq!(fake.ingress().ws_peers.len(), peers_before);
    session.disconnect(Duration::from_secs(3)).await;
}

/// Through the bot (`--features insecure-fake-whatsapp`): a pairing through a dead proxy is
/// told at once as a proxy problem, and a proxy the operator changes takes effect at once.
#[cfg(feature = "insecure-fake-whatsapp")]
mod bot_proxy2 {
    use std::time::{Duration, Instant};

    use crate::socks5::Relay;
    use crate::support::app::{tgwa_fake, TestBot, WAIT};

    /// Well inside the socket wait (30 s) and the pairing deadline (185 s): "at once".
    const PROMPT: Duration = Duration::from_secs(10);

    fn dead_proxy() -> String {
        let dead = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        format!("socks5://op:hunter2@{dead}")
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn pair_and_qr_through_a_dead_proxy_say_so_at_once_in_the_users_language() {
        let (id_user, en_user) = (7111_i64, 7112_i64);
        let proxy = dead_proxy();
        let bot = TestBot::start(&[("TGWA_WA_BACKEND", "fake"), ("TGWA_WA_PROXY", &proxy)]).await;

        let started = Instant::now();
        let mark = bot.tg.mark();
        bot.tg.push_message(id_user, "/pair 6281200002161");
        let told = bot
            .tg
            .wait_for_text_to_after(mark, id_user, "masalah proxy", PROMPT)
            .await;
        assert!(started.elapsed() < PROMPT);
        assert!(told.text.contains("operator"), "what to do: {}", told.text);
        assert!(
            told.text.contains("op:***@") && !told.text.contains("hunter2"),
            "{}",
            told.text
        );
        assert!(bot.account_row("6281200002161").is_none(), "nothing registered");

        let started = Instant::now();
        let mark = bot.tg.mark();
        bot.tg.push_message_lang(en_user, "/qr 6281200002162", "en");
        let told = bot
            .tg
            .wait_for_text_to_after(mark, en_user, "proxy problem", PROMPT)
            .await;
        assert!(started.elapsed() < PROMPT);
        assert!(told.text.contains("Ask the operator"), "{}", told.text);
        assert!(!told.text.contains("hunter2"), "{}", told.text);
        assert!(bot.account_row("6281200002162").is_none(), "nothing registered");
        bot.stop().await;
    }

    /// Asks `/status` until `user`'s active account shows as connected.
    async fn until_connected(bot: &TestBot, user: i64) {
        let deadline = Instant::now() + WAIT;
        loop {
            let mark = bot.tg.mark();
            bot.tg.push_message(user, "/status");
            let reply = bot.tg.wait_for_text_to_after(mark, user, "", WAIT).await;
            if reply.text.contains("🟢 terhubung") {
                return;
            }
            assert!(Instant::now() < deadline, "never connected: {}", reply.text);
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// `tgwa fake ingress --json`'s data: how clients reached the bot's fake.
    fn ingress(bot: &TestBot) -> serde_json::Value {
        let extra = vec![("TGWA_WA_BACKEND".to_string(), "fake".to_string())];
        let out = tgwa_fake(bot.dir.path(), &bot.tg.url(), &extra, &["ingress", "--json"]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
        v["data"].clone()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_proxy_set_or_cleared_by_the_operator_reconnects_the_account_at_once() {
        let (owner, admin) = (7121_i64, 7122_i64);
        let phone = "6281200002171";
        let admin_ids = admin.to_string();
        let bot = TestBot::start(&[("TGWA_WA_BACKEND", "fake"), ("TGWA_ADMIN_IDS", &admin_ids)]).await;
        bot.pair(owner, phone).await;
        until_connected(&bot, owner).await;
        let direct = ingress(&bot)["in_process_conns"].as_u64().unwrap_or(0);
        assert!(direct >= 1, "paired without a proxy");

        // Set: the account leaves its direct connection and logs in through the relay.
        let relay = Relay::start(None).await;
        let reply = bot
            .say(
                admin,
                &format!("/admin proxy {phone} {}", relay.url(None)),
                "Proxy akun",
            )
            .await;
        assert!(reply.text.contains("disambungkan ulang sekarang"), "{}", reply.text);
        let deadline = Instant::now() + WAIT;
        while relay.outbound().is_empty() {
            assert!(Instant::now() < deadline, "the account never went through the relay");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        until_connected(&bot, owner).await;
        let i = ingress(&bot);
        let via: Vec<String> = relay.outbound().iter().map(|a| a.to_string()).collect();
        let ws: Vec<String> = serde_json::from_value(i["ws_peers"].clone()).unwrap();
        assert!(!ws.is_empty() && ws.iter().all(|p| via.contains(p)), "{i} vs {via:?}");
        assert_eq!(i["in_process_conns"].as_u64(), Some(direct), "no direct login since");

        // Cleared: back to a direct connection, at once.
        let reply = bot.say(admin, &format!("/admin proxy {phone} off"), "Proxy akun").await;
        assert!(reply.text.contains("disambungkan ulang sekarang"), "{}", reply.text);
        let deadline = Instant::now() + WAIT;
        while ingress(&bot)["in_process_conns"].as_u64().unwrap_or(0) <= direct {
            assert!(Instant::now() < deadline, "the account never connected directly again");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        until_connected(&bot, owner).await;
        bot.stop().await;
    }
}

/// The acceptance of issue 21 with a real process restart: the built `tgwa run` over the
/// fake WhatsApp (which lives in that process and listens on loopback), an account whose
/// proxy is a SOCKS5 relay in this test process; paired, the process killed (SIGKILL) and
/// started again, it logs in again through the relay and sends, the recipient's phone
/// decrypting it; every socket the fake accepted, in both processes' lives, came from the
/// relay, and nothing came in-process.
#[cfg(feature = "insecure-fake-whatsapp")]
mod process {
    use std::path::Path;
    use std::process::Child;
    use std::time::{Duration, Instant};

    use serde_json::Value;

    use crate::fake_telegram::FakeTelegram;
    use crate::socks5::Relay;
    use crate::support::app::{spawn_binary, tgwa_fake, WAIT};

    const OWNER: i64 = 7_130_001;
    const PHONE: &str = "6281200002181";

    fn fake(dir: &Path, api: &str, env: &[(String, String)], args: &[&str]) -> Value {
        let out = tgwa_fake(dir, api, env, args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("--json is JSON")
    }

    /// Every socket of this fake's life came through `relay`, and nothing in-process.
    fn only_through_relay(dir: &Path, api: &str, env: &[(String, String)], relay: &Relay) {
        let i = fake(dir, api, env, &["ingress", "--json"])["data"].clone();
        let via: Vec<String> = relay.outbound().iter().map(|a| a.to_string()).collect();
        let ws: Vec<String> = serde_json::from_value(i["ws_peers"].clone()).unwrap();
        let http: Vec<String> = serde_json::from_value(i["http_peers"].clone()).unwrap();
        assert!(!ws.is_empty(), "{i}");
        for p in ws.iter().chain(&http) {
            assert!(
                via.contains(p),
                "{p} reached the fake without the relay: {i} vs {via:?}"
            );
        }
        assert_eq!(i["in_process_conns"].as_u64(), Some(0), "{i}");
        assert_eq!(i["in_process_http"].as_u64(), Some(0), "{i}");
    }

    async fn say(tg: &FakeTelegram, text: &str, want: &str) {
        let mark = tg.mark();
        tg.push_message(OWNER, text);
        tg.wait_for_text_to_after(mark, OWNER, want, WAIT).await;
    }

    async fn tap(tg: &FakeTelegram, label: &str, want: &str) {
        let (mid, data) = tg
            .sent_to(OWNER)
            .iter()
            .rev()
            .find_map(|m| m.button_data(label).map(|d| (m.message_id, d)))
            .unwrap_or_else(|| panic!("no button {label:?}"));
        let mark = tg.mark();
        tg.push_callback(OWNER, mid, &data);
        tg.wait_for_text_to_after(mark, OWNER, want, WAIT).await;
    }

    async fn until_connected(tg: &FakeTelegram) {
        let deadline = Instant::now() + WAIT;
        loop {
            let mark = tg.mark();
            tg.push_message(OWNER, "/status");
            let reply = tg.wait_for_text_to_after(mark, OWNER, "", WAIT).await;
            if reply.text.contains("🟢 terhubung") {
                return;
            }
            assert!(Instant::now() < deadline, "never connected: {}", reply.text);
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// A broadcast of what `message` sends (a text or a file) to `to`, started.
    async fn broadcast(tg: &FakeTelegram, to: &str, message: impl FnOnce(&FakeTelegram)) {
        say(tg, "/menu", "Menu utama").await;
        tap(tg, "Pesan", "Pesan</b>").await;
        tap(tg, "Siaran", "teks pesan siaran").await;
        let mark = tg.mark();
        message(tg);
        tg.wait_for_text_to_after(mark, OWNER, "Kirim ke mana", WAIT).await;
        let mark = tg.mark();
        tg.push_document(OWNER, "numbers.txt", to.as_bytes().to_vec(), None);
        tg.wait_for_text_to_after(mark, OWNER, "Mulai pekerjaan ini", WAIT)
            .await;
        tap(tg, "Mulai", "berjalan").await;
    }

    /// Waits until the fake recorded a message from the account to `to` that the
    /// recipient's phone decrypted and that `pick` accepts.
    async fn until_read(dir: &Path, api: &str, env: &[(String, String)], to: &str, pick: impl Fn(&Value) -> bool) {
        let deadline = Instant::now() + WAIT;
        loop {
            let v = fake(dir, api, env, &["sent", "--json"]);
            let read = v["data"].as_array().is_some_and(|l| {
                l.iter().any(|m| {
                    m["from"] == PHONE
                        && m["to"].as_str().is_some_and(|t| t.starts_with(to))
                        && m["read_by_phone"] == true
                        && pick(m)
                })
            });
            if read {
                return;
            }
            assert!(Instant::now() < deadline, "the recipient's phone never read it: {v}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn kill(mut child: Child, sig: i32) {
        // SAFETY: a signal to our own child.
        unsafe {
            libc::kill(child.id() as i32, sig);
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        while child.try_wait().expect("wait").is_none() {
            assert!(Instant::now() < deadline, "tgwa did not stop");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn pairs_is_killed_logs_in_again_through_the_relay_and_sends() {
        let tg = FakeTelegram::start().await;
        let dir = tempfile::tempdir().unwrap();
        let (d, api) = (dir.path(), tg.url());
        let relay = Relay::start(Some(("op", "p@ss"))).await;
        let proxy = format!("socks5://op:p%40ss@{}", relay.url(None).trim_start_matches("socks5://"));
        let env: Vec<(String, String)> = [
            ("TGWA_WA_BACKEND", "fake"),
            ("TGWA_WA_PROXY", proxy.as_str()),
            ("RUST_LOG", "warn"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();

        let child = spawn_binary(d, &api, &env);
        say(&tg, &format!("/pair {PHONE}"), "Terhubung sebagai").await;
        until_connected(&tg).await;
        only_through_relay(d, &api, &env, &relay);
        kill(child, libc::SIGKILL);

        // A new process: a new fake listener on a new port, the world and session from disk.
        let tunnels = relay.outbound().len();
        let child = spawn_binary(d, &api, &env);
        until_connected(&tg).await;
        assert!(relay.outbound().len() > tunnels, "the login went through the relay");

        // A text, then a photo (its upload goes through the relay too), each broadcast to a
        // number first seen now (its phone has fresh keys in this process).
        broadcast(&tg, "6285700002189", |tg| {
            tg.push_message(OWNER, "Halo lewat proxy");
        })
        .await;
        until_read(d, &api, &env, "6285700002189", |m| m["text"] == "Halo lewat proxy").await;
        broadcast(&tg, "6285700002188", |tg| {
            let photo: Vec<u8> = (0..20_000u32).map(|i| (i * 7 % 251) as u8).collect();
            tg.push_file(OWNER, "photo", "", "image/jpeg", photo, None, "Foto lewat proxy");
        })
        .await;
        until_read(d, &api, &env, "6285700002188", |m| !m["media"]["sha256"].is_null()).await;
        let i = fake(d, &api, &env, &["ingress", "--json"]);
        assert!(
            i["data"]["http_peers"].as_array().is_some_and(|p| !p.is_empty()),
            "the upload reached the fake's media hosts on a socket: {i}"
        );
        only_through_relay(d, &api, &env, &relay);
        kill(child, libc::SIGTERM);
    }
}
