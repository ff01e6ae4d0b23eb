//! The real WhatsApp adapter, offline: a transport that never answers stands in for the
//! server, so building, starting, the pair-code failure path, bounded shutdown, probing and
//! the event mapping are exercised without a network.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use tgwa::ids::{PhoneNumber, TelegramId};
use tgwa::layout::Layout;
use tgwa::wa::real::{self, events::map_event, is_terminal, RealBackend};
use tgwa::wa::{Advice, Probe, SessionSpec, WaBackend, WaError, WaEvent};
use whatsapp_rust::chrono;
use whatsapp_rust::pair_code::PairCodeRejection;
use whatsapp_rust::transport::DisconnectReason;
use whatsapp_rust::types::events::{
    ClientOutdated, ConnectFailure, ConnectFailureReason, Connected, Disconnected, Event, LoggedOut, LogoutMessage,
    PairError, PairSuccess, PairingCode, PairingCodeError, PairingCodeRefresh, PairingQrCode, PairingQrCodesExhausted,
    QrScannedWithoutMultidevice, StreamReplaced, TempBanReason, TemporaryBan,
};
use whatsapp_rust::Jid;

const NOW: i64 = 1_800_000_000;

fn backend() -> RealBackend {
    RealBackend::with_options(
        real::silent_options()
            .with_socket_wait(Duration::from_secs(2))
            .with_shutdown_bound(Duration::from_secs(3)),
    )
}

fn spec(root: &Path, phone: &str) -> SessionSpec {
    let tid = TelegramId::new(4242).unwrap();
    let phone = PhoneNumber::from_digits(phone).unwrap();
    let layout = Layout::new(root.join("DB USER TELEGRAM"));
    std::fs::create_dir_all(layout.user_dir(tid)).unwrap();
    SessionSpec {
        telegram_id: tid,
        session_file: layout.session_file(tid, &phone),
        phone,
    }
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[tokio::test]
async fn a_fresh_session_is_private_unpaired_and_stops_in_time() {
    let dir = tempfile::tempdir().unwrap();
    let spec = spec(dir.path(), "6281234560001");
    let file = spec.session_file.clone();
    assert!(!file.exists());
    let be = backend();
    let (session, mut events) = be.start(spec).await.expect("start");
    assert!(file.exists());
    assert_eq!(mode(&file), 0o600);
    assert_eq!(be.probe(&file).await.unwrap(), Probe::Unpaired);
    assert!(matches!(session.profile().await, Err(WaError::NotPaired)));
    assert!(matches!(session.groups().await, Err(WaError::NotPaired)));

    let bound = Duration::from_secs(3);
    let t = Instant::now();
    session.disconnect(bound).await;
    assert!(
        t.elapsed() < bound + Duration::from_millis(500),
        "took {:?}",
        t.elapsed()
    );
    // The stream ends with the session.
    let end = tokio::time::timeout(Duration::from_secs(2), async { while events.recv().await.is_some() {} }).await;
    assert!(end.is_ok(), "event stream did not end");
    // A second disconnect is a no-op.
    session.disconnect(bound).await;

    for suffix in ["", "-wal", "-shm"] {
        let mut p = file.clone().into_os_string();
        p.push(suffix);
        let p = std::path::PathBuf::from(p);
        if p.exists() {
            assert_eq!(mode(&p), 0o600, "{}", p.display());
        }
    }
    assert_eq!(be.probe(&file).await.unwrap(), Probe::Unpaired);

    // What pairing writes (the device's phone-number JID) is what the probe reads.
    let c = rusqlite::Connection::open(&file).unwrap();
    let n = c
        .execute("UPDATE device SET pn = '6281234560001:7@s.whatsapp.net'", [])
        .unwrap();
    assert_eq!(n, 1, "whatsapp-rust keeps one device row");
    drop(c);
    assert_eq!(
        be.probe(&file).await.unwrap(),
        Probe::Paired {
            jid: "6281234560001:7@s.whatsapp.net".into()
        }
    );
}

#[tokio::test]
async fn pair_code_against_a_silent_server_fails_retryably_in_bounded_time() {
    let dir = tempfile::tempdir().unwrap();
    let spec = spec(dir.path(), "6281234560002");
    let phone = spec.phone.clone();
    let be = backend();
    let (session, _events) = be.start(spec).await.unwrap();
    let t = Instant::now();
    let res = session.request_pair_code(&phone).await;
    let took = t.elapsed();
    let err = res.expect_err("a silent server issues no code");
    assert_eq!(err.advice(), Advice::Retry, "{err:?}");
    assert!(took < Duration::from_secs(6), "took {took:?}");
    // A second request cancels the first and fails the same way.
    let err = session.request_pair_code(&phone).await.unwrap_err();
    assert_eq!(err.advice(), Advice::Retry);
    session.cancel_pair_code().await.unwrap();
    session.start_qr().await.unwrap();
    session.disconnect(Duration::from_secs(3)).await;
    assert!(matches!(session.start_qr().await, Err(WaError::NotConnected)));
}

#[tokio::test]
async fn a_store_made_by_whatsapp_rust_probes_unpaired() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("store.db");
    let store = whatsapp_rust::store::SqliteStore::new(p.to_str().unwrap())
        .await
        .unwrap();
    drop(store);
    assert_eq!(backend().probe(&p).await.unwrap(), Probe::Unpaired);
}

#[tokio::test]
async fn garbage_and_empty_files_are_storage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let be = backend();
    let zero = dir.path().join("zero.db");
    std::fs::write(&zero, b"").unwrap();
    let garbage = dir.path().join("garbage.db");
    std::fs::write(&garbage, b"definitely not SQLite ".repeat(500)).unwrap();
    let missing = dir.path().join("missing.db");
    for p in [&zero, &garbage, &missing] {
        let e = be.probe(p).await.unwrap_err();
        assert!(matches!(e, WaError::Storage(_)), "{}: {e:?}", p.display());
        assert_eq!(e.advice(), Advice::GiveUp);
    }
    assert!(!missing.exists(), "probe must not create files");

    // Starting on a file that is not a database fails cleanly, too.
    let spec = spec(dir.path(), "6281234560003");
    std::fs::write(&spec.session_file, b"definitely not SQLite ".repeat(500)).unwrap();
    let t = Instant::now();
    let started = be.start(spec).await;
    assert!(t.elapsed() < Duration::from_secs(5), "took {:?}", t.elapsed());
    match started {
        Err(WaError::Storage(_)) => {}
        Err(other) => panic!("expected Storage, got {other:?}"),
        Ok(_) => panic!("expected Storage, got a session"),
    }
}

fn jid(s: &str) -> Jid {
    s.parse().unwrap()
}

#[test]
fn every_event_maps() {
    let pn = jid("6281234567890:3@s.whatsapp.net");
    let lid = jid("100000012345678:3@lid");

    assert_eq!(
        map_event(&Event::Connected(Connected::builder().build()), NOW),
        Some(WaEvent::Connected)
    );

    let ev = Event::Disconnected(Disconnected::builder().reason(DisconnectReason::StreamEnded).build());
    assert!(matches!(map_event(&ev, NOW), Some(WaEvent::Disconnected { .. })));

    let ev = Event::PairSuccess(
        PairSuccess::builder()
            .id(pn.clone())
            .lid(lid.clone())
            .business_name(String::new())
            .platform("android".into())
            .build(),
    );
    assert_eq!(
        map_event(&ev, NOW),
        Some(WaEvent::PairSuccess {
            jid: "6281234567890:3@s.whatsapp.net".into()
        })
    );

    let ev = Event::PairError(
        PairError::builder()
            .id(pn.clone())
            .lid(lid.clone())
            .business_name(String::new())
            .platform("android".into())
            .error("bad signature".into())
            .build(),
    );
    assert!(matches!(
        map_event(&ev, NOW),
        Some(WaEvent::PairFailed { retry_after: None, reason }) if reason.contains("bad signature")
    ));

    let ev = Event::PairingCodeError(
        PairingCodeError::builder()
            .rejection(PairCodeRejection::RateOverlimit)
            .backoff(Duration::from_secs(60))
            .error("rate-overlimit".into())
            .build(),
    );
    assert!(matches!(
        map_event(&ev, NOW),
        Some(WaEvent::PairFailed { retry_after: Some(d), .. }) if d == Duration::from_secs(60)
    ));

    let ev = Event::PairingCodeRefresh(PairingCodeRefresh::builder().force_manual(true).build());
    assert!(matches!(map_event(&ev, NOW), Some(WaEvent::PairFailed { .. })));
    let ev = Event::PairingQrCodesExhausted(PairingQrCodesExhausted::builder().disconnected(true).build());
    assert!(matches!(map_event(&ev, NOW), Some(WaEvent::PairFailed { .. })));
    let ev = Event::QrScannedWithoutMultidevice(QrScannedWithoutMultidevice::builder().build());
    assert!(matches!(map_event(&ev, NOW), Some(WaEvent::PairFailed { .. })));

    let ev = Event::PairingQrCode(
        PairingQrCode::builder()
            .code("2@abc,def".into())
            .timeout(Duration::from_secs(60))
            .build(),
    );
    assert_eq!(
        map_event(&ev, NOW),
        Some(WaEvent::Qr {
            code: "2@abc,def".into(),
            ttl: Duration::from_secs(60)
        })
    );
    // The code itself is returned by request_pair_code, not sent as an event.
    let ev = Event::PairingCode(
        PairingCode::builder()
            .code("ABCD1234".into())
            .timeout(Duration::from_secs(180))
            .build(),
    );
    assert_eq!(map_event(&ev, NOW), None);

    let ev = Event::LoggedOut(
        LoggedOut::builder()
            .on_connect(true)
            .reason(ConnectFailureReason::LoggedOut)
            .build(),
    );
    let mapped = map_event(&ev, NOW).unwrap();
    assert!(matches!(&mapped, WaEvent::LoggedOut { reason } if reason.contains("401")));
    assert!(is_terminal(&mapped));
    let ev = Event::LoggedOut(
        LoggedOut::builder()
            .on_connect(true)
            .reason(ConnectFailureReason::AccountLocked)
            .logout_message(LogoutMessage::builder().header("Account locked".into()).build())
            .build(),
    );
    assert!(matches!(
        map_event(&ev, NOW),
        Some(WaEvent::LoggedOut { reason }) if reason.contains("403") && reason.contains("Account locked")
    ));

    let mapped = map_event(&Event::StreamReplaced(StreamReplaced::builder().build()), NOW).unwrap();
    assert_eq!(mapped, WaEvent::StreamReplaced);
    assert!(is_terminal(&mapped));

    let ev = Event::TemporaryBan(
        TemporaryBan::builder()
            .code(TempBanReason::SentToTooManyPeople)
            .expire(chrono::Duration::seconds(3600))
            .build(),
    );
    let mapped = map_event(&ev, NOW).unwrap();
    assert!(
        matches!(&mapped, WaEvent::TemporaryBan { reason, until } if reason.starts_with("101") && *until == NOW + 3600)
    );
    assert!(is_terminal(&mapped));

    let mapped = map_event(&Event::ClientOutdated(ClientOutdated::builder().build()), NOW).unwrap();
    assert_eq!(mapped, WaEvent::ClientOutdated);
    assert!(is_terminal(&mapped));

    let ev = Event::ConnectFailure(
        ConnectFailure::builder()
            .reason(ConnectFailureReason::ServiceUnavailable)
            .build(),
    );
    let mapped = map_event(&ev, NOW).unwrap();
    assert!(matches!(&mapped, WaEvent::Disconnected { reason } if reason.contains("503")));
    assert!(!is_terminal(&mapped));
    assert!(!is_terminal(&WaEvent::Connected));
}

#[test]
fn the_sink_filters_and_closes() {
    use tgwa::wa::real::events::EventSink;
    let (sink, mut rx) = EventSink::new();
    let qr = Event::PairingQrCode(
        PairingQrCode::builder()
            .code("2@qr".into())
            .timeout(Duration::from_secs(60))
            .build(),
    );
    // QR codes are held back until QR login is asked for, then the current one is sent.
    sink.handle(&qr);
    assert!(rx.try_recv().is_err());
    sink.set_qr_mode(true);
    assert!(matches!(rx.try_recv(), Ok(WaEvent::Qr { code, .. }) if code == "2@qr"));
    // A pair-code failure is returned to the caller while the request is in flight.
    let failure = Event::PairingCodeError(PairingCodeError::builder().error("x".into()).build());
    {
        let _g = sink.requesting();
        sink.handle(&failure);
        assert!(rx.try_recv().is_err());
    }
    sink.handle(&failure);
    assert!(matches!(rx.try_recv(), Ok(WaEvent::PairFailed { .. })));
    // A terminal event is the last one.
    sink.handle(&Event::StreamReplaced(StreamReplaced::builder().build()));
    assert_eq!(rx.try_recv().ok(), Some(WaEvent::StreamReplaced));
    sink.handle(&Event::Connected(Connected::builder().build()));
    assert!(matches!(
        rx.try_recv(),
        Err(tokio::sync::mpsc::error::TryRecvError::Disconnected)
    ));
}

// ----- against the protocol-level fake WhatsApp server -----

#[path = "support/fakewa.rs"]
mod fakewa;

use tgwa::wa::WaSession;
use tgwa_fakewa::FakeWhatsApp;

/// Pairs `phone` by QR on a fresh store and returns the session, its events and the spec.
async fn pair_by_qr(
    fake: &FakeWhatsApp,
    root: &Path,
    phone: &str,
) -> (std::sync::Arc<dyn WaSession>, tgwa::wa::EventRx, SessionSpec) {
    let spec = fakewa::spec(root, phone);
    let be = fakewa::backend(fake);
    let (session, mut rx) = be.start(spec.clone()).await.expect("start");
    session.start_qr().await.expect("qr mode");
    let qr = fakewa::wait_for(&mut rx, "a QR code", |e| match e {
        WaEvent::Qr { code, .. } => Some(code.clone()),
        _ => None,
    })
    .await;
    fake.scan_qr(&qr, phone).expect("the phone scans");
    let jid = fakewa::wait_for(&mut rx, "PairSuccess", |e| match e {
        WaEvent::PairSuccess { jid } => Some(jid.clone()),
        _ => None,
    })
    .await;
    assert!(jid.starts_with(phone), "{jid}");
    fakewa::connected(&mut rx).await;
    (session, rx, spec)
}

#[tokio::test]
async fn qr_pairing_then_a_restart_logs_in_without_pairing() {
    let fake = FakeWhatsApp::default();
    let dir = tempfile::tempdir().unwrap();
    let phone = "6281200000001";
    let (session, _rx, spec) = pair_by_qr(&fake, dir.path(), phone).await;
    assert!(fake.has_linked_device(phone));
    assert_eq!(
        session.profile().await.unwrap().phone.map(|p| p.digits().to_string()),
        Some(phone.to_string())
    );
    session.disconnect(Duration::from_secs(5)).await;

    let be = fakewa::backend(&fake);
    assert!(matches!(
        be.probe(&spec.session_file).await.unwrap(),
        Probe::Paired { .. }
    ));
    let (again, mut rx) = be.start(spec).await.expect("restart");
    fakewa::connected(&mut rx).await;
    assert!(fake.is_online(phone));
    again.disconnect(Duration::from_secs(5)).await;
}
