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
    // Locked (403) and banned (406) are WhatsApp stopping the account, not the phone
    // unlinking this device: the owner must hear "banned", not "pair again".
    let mapped = map_event(&ev, NOW).unwrap();
    assert!(
        matches!(&mapped, WaEvent::AccountBanned { reason, locked: true } if reason.contains("403") && reason.contains("Account locked")),
        "{mapped:?}"
    );
    assert!(is_terminal(&mapped));
    let ev = Event::LoggedOut(
        LoggedOut::builder()
            .on_connect(true)
            .reason(ConnectFailureReason::UnknownLogout)
            .build(),
    );
    let mapped = map_event(&ev, NOW).unwrap();
    assert!(
        matches!(&mapped, WaEvent::AccountBanned { reason, locked: false } if reason.contains("406")),
        "{mapped:?}"
    );
    assert!(is_terminal(&mapped));

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
    // 500 and 503 are retried by the library: a failed attempt, not the end.
    assert!(matches!(&mapped, WaEvent::ConnectAttemptFailed { reason } if reason.contains("503")));
    assert!(!is_terminal(&mapped));
    assert!(!is_terminal(&WaEvent::Connected));
    // Every other reason ends the library's run loop: terminal, with its code.
    let ev = Event::ConnectFailure(
        ConnectFailure::builder()
            .reason(ConnectFailureReason::BadUserAgent)
            .build(),
    );
    let mapped = map_event(&ev, NOW).unwrap();
    assert!(
        matches!(&mapped, WaEvent::ConnectFailed { code: 409, .. }),
        "{mapped:?}"
    );
    assert!(is_terminal(&mapped));
}

#[test]
fn incoming_text_messages_map_with_the_sender_phone() {
    use std::sync::Arc;
    use tgwa::wa::real::events::map_messages;
    use whatsapp_rust::prelude::{wa, MessageInfo};
    use whatsapp_rust::types::events::{BatchOrigin, InboundMessage, MessageBatch};
    use whatsapp_rust::types::message::MessageSource;

    let one = |id: &str, source: MessageSource, message: wa::Message| {
        InboundMessage::builder()
            .message(Arc::new(message))
            .info(Arc::new(MessageInfo {
                source,
                id: id.to_string(),
                ..Default::default()
            }))
            .build()
    };
    let text = |t: &str| wa::Message {
        conversation: Some(t.to_string()),
        ..Default::default()
    };
    let pn = jid("6281234567890@s.whatsapp.net");
    let lid = jid("100000012345678@lid");
    let group = jid("120363000000000001@g.us");
    let batch = MessageBatch::builder()
        .messages(Arc::from(vec![
            // A person, by phone number.
            one(
                "a",
                MessageSource {
                    chat: pn.clone(),
                    sender: jid("6281234567890:0@s.whatsapp.net"),
                    ..Default::default()
                },
                text("halo"),
            ),
            // A LID group: the phone number comes as the alternate address.
            one(
                "b",
                MessageSource {
                    chat: group.clone(),
                    sender: lid.clone(),
                    sender_alt: Some(pn.clone()),
                    is_group: true,
                    ..Default::default()
                },
                wa::Message {
                    extended_text_message: whatsapp_rust::prelude::MessageField::some(
                        wa::message::ExtendedTextMessage {
                            text: Some("link".into()),
                            ..Default::default()
                        },
                    ),
                    ..Default::default()
                },
            ),
            // Ours, from another device: not news.
            one(
                "c",
                MessageSource {
                    chat: pn.clone(),
                    sender: pn.clone(),
                    is_from_me: true,
                    ..Default::default()
                },
                text("mine"),
            ),
            // No text (e.g. a sender key alone).
            one(
                "d",
                MessageSource {
                    chat: pn.clone(),
                    sender: pn.clone(),
                    ..Default::default()
                },
                wa::Message::default(),
            ),
            // A LID nobody could map stays a LID.
            one(
                "e",
                MessageSource {
                    chat: group.clone(),
                    sender: jid("100000012345678:2@lid"),
                    is_group: true,
                    ..Default::default()
                },
                text("siapa"),
            ),
        ]))
        .origin(BatchOrigin::OfflineDrain)
        .build();
    let msg = |id: &str, chat: &str, sender: &str, text: &str| WaEvent::Message {
        id: id.into(),
        chat: chat.into(),
        sender: sender.into(),
        text: text.into(),
        meta: tgwa::wa::MessageMeta::default(),
    };
    assert_eq!(
        map_messages(&batch),
        vec![
            msg("a", "6281234567890", "6281234567890", "halo"),
            msg("b", "120363000000000001@g.us", "6281234567890", "link"),
            msg("e", "120363000000000001@g.us", "100000012345678@lid", "siapa"),
        ]
    );
    let ev = Event::Messages(batch);
    assert_eq!(map_event(&ev, NOW), None, "messages go through map_messages");
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

/// Starts `spec` on `be`, switches it to QR login and has `phone` scan the first QR; returns
/// without waiting for the pairing to finish.
async fn start_and_scan(
    fake: &FakeWhatsApp,
    be: &RealBackend,
    spec: SessionSpec,
    phone: &str,
) -> (std::sync::Arc<dyn WaSession>, tgwa::wa::EventRx) {
    let (session, mut rx) = be.start(spec).await.expect("start");
    session.start_qr().await.expect("qr mode");
    let qr = fakewa::wait_for(&mut rx, "a QR code", |e| match e {
        WaEvent::Qr { code, .. } => Some(code.clone()),
        _ => None,
    })
    .await;
    fake.scan_qr(&qr, phone).expect("the phone scans");
    (session, rx)
}

/// Pairs `phone` by QR on a fresh store and returns the connected session, its events and
/// the spec.
async fn pair_by_qr(
    fake: &FakeWhatsApp,
    root: &Path,
    phone: &str,
) -> (std::sync::Arc<dyn WaSession>, tgwa::wa::EventRx, SessionSpec) {
    let spec = fakewa::spec(root, phone);
    let (session, mut rx) = start_and_scan(fake, &fakewa::backend(fake), spec.clone(), phone).await;
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
async fn a_fresh_pairing_connects_without_waiting_for_app_state_keys() {
    let fake = FakeWhatsApp::default();
    let dir = tempfile::tempdir().unwrap();
    let phone = "6281200000060";
    let spec = fakewa::spec(dir.path(), phone);
    let (session, mut rx) = start_and_scan(&fake, &fakewa::backend(&fake), spec, phone).await;
    let scanned = Instant::now();
    fakewa::connected(&mut rx).await;
    let took = scanned.elapsed();
    eprintln!("first_login_ms={}", took.as_millis());
    // The phone shares the app-state keys as soon as the device logs in; without them the
    // client waits 10 s for them before it says it is connected.
    assert!(took < Duration::from_secs(5), "the first login took {took:?}");
    session.disconnect(Duration::from_secs(5)).await;
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

/// Pairs `phone` on its own store and returns a connected session.
fn pn(d: &str) -> PhoneNumber {
    PhoneNumber::from_digits(d).unwrap()
}

#[tokio::test]
async fn code_pairing_reaches_pair_success_and_a_rate_limited_number_is_refused() {
    let fake = FakeWhatsApp::default();
    let dir = tempfile::tempdir().unwrap();
    let phone = "6281200000002";
    let be = fakewa::backend(&fake);
    let spec = fakewa::spec(dir.path(), phone);
    let (session, mut rx) = be.start(spec.clone()).await.expect("start");
    let code = session.request_pair_code(&pn(phone)).await.expect("a code");
    assert_eq!(code.code.len(), 8);
    fake.enter_code(phone, &code.code).expect("the phone takes the code");
    fakewa::wait_for(&mut rx, "PairSuccess", |e| {
        matches!(e, WaEvent::PairSuccess { .. }).then_some(())
    })
    .await;
    fakewa::connected(&mut rx).await;
    assert!(fake.has_linked_device(phone));
    session.disconnect(Duration::from_secs(5)).await;
    let (again, mut rx) = be.start(spec).await.expect("restart");
    fakewa::connected(&mut rx).await;
    again.disconnect(Duration::from_secs(5)).await;

    // The behaviour table: numbers ending 0429 are throttled, as the server does it: 400
    // bad-request, usually without a backoff.
    let limited = "6281200000429";
    let (s, _rx) = be.start(fakewa::spec(dir.path(), limited)).await.expect("start");
    match s.request_pair_code(&pn(limited)).await {
        Err(WaError::RateLimited { retry_after }) => assert_eq!(retry_after, None),
        other => panic!("expected RateLimited, got {other:?}"),
    }
    s.disconnect(Duration::from_secs(5)).await;
    // Rarely the refusal names its backoff, and it is kept.
    let limited = "6281200000431";
    fake.throttle_pair_codes(limited, Some(Some(Duration::from_secs(60))));
    let (s, _rx) = be.start(fakewa::spec(dir.path(), limited)).await.expect("start");
    match s.request_pair_code(&pn(limited)).await {
        Err(WaError::RateLimited { retry_after }) => assert_eq!(retry_after, Some(Duration::from_secs(60))),
        other => panic!("expected RateLimited, got {other:?}"),
    }
    s.disconnect(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn group_operations_reach_the_server_with_per_participant_results() {
    use tgwa::wa::{JoinOutcome, MemberAction};
    let fake = FakeWhatsApp::default();
    let dir = tempfile::tempdir().unwrap();
    let me = "6281200000010";
    let (b, c, refused) = ("6281200000011", "6281200000012", "6281200000013");
    for u in [b, c, refused] {
        fake.add_user(u);
    }
    fake.refuse_add(refused, 403);
    let (s, _rx, _) = pair_by_qr(&fake, dir.path(), me).await;

    // Create: the person who could not be added is not reported as a member.
    let info = s.create_group("Team", &[pn(b), pn(refused)]).await.expect("create");
    let phones: Vec<String> = info.members.iter().map(|m| m.phone.digits().to_string()).collect();
    assert!(
        phones.contains(&me.to_string()) && phones.contains(&b.to_string()),
        "{phones:?}"
    );
    assert!(
        !phones.contains(&refused.to_string()),
        "a refused participant counted as a member: {phones:?}"
    );
    let server = fake.group(info.id.as_str()).expect("the server has it");
    assert_eq!(server.members.len(), 2);
    // The server makes every new group LID-addressed; members still come back by number.
    assert!(server.lid_addressed, "a group created today is LID-addressed");

    let groups = s.groups().await.expect("participating");
    assert_eq!(groups.len(), 1);
    assert!(groups[0].is_admin);
    assert_eq!(groups[0].member_count, 2);

    // Settings.
    s.set_subject(&info.id, "Team 2").await.expect("subject");
    s.set_description(&info.id, Some("about")).await.expect("description");
    s.set_announce(&info.id, true).await.expect("announce");
    s.set_locked(&info.id, true).await.expect("locked");
    let g = fake.group(info.id.as_str()).unwrap();
    assert_eq!(
        (g.subject.as_str(), g.description.as_deref(), g.announce, g.locked),
        ("Team 2", Some("about"), true, true)
    );
    let read = s.group_info(&info.id).await.expect("metadata");
    assert_eq!((read.name.as_str(), read.announce, read.locked), ("Team 2", true, true));
    assert_eq!(read.description.as_deref(), Some("about"));

    // Invite link: get, then reset gives a new one.
    let link = s.invite_link(&info.id, false).await.expect("invite");
    assert!(link.starts_with("https://chat.whatsapp.com/"), "{link}");
    let reset = s.invite_link(&info.id, true).await.expect("reset");
    assert_ne!(link, reset);

    // Members: add (one ok, one refused, one unknown), promote, demote, remove.
    let unknown = "6281299999999";
    let res = s
        .update_members(&info.id, MemberAction::Add, &[pn(c), pn(refused), pn(unknown)])
        .await
        .expect("add");
    assert!(res[0].1.is_ok(), "{res:?}");
    assert!(res[1].1.as_ref().is_err_and(|e| e.contains("403")), "{res:?}");
    assert!(res[2].1.as_ref().is_err_and(|e| e.contains("404")), "{res:?}");
    let res = s
        .update_members(&info.id, MemberAction::Promote, &[pn(c)])
        .await
        .expect("promote");
    assert!(res[0].1.is_ok(), "{res:?}");
    assert!(fake
        .group(info.id.as_str())
        .unwrap()
        .members
        .iter()
        .any(|m| m.phone == c && m.admin));
    let res = s
        .update_members(&info.id, MemberAction::Demote, &[pn(c)])
        .await
        .expect("demote");
    assert!(res[0].1.is_ok(), "{res:?}");
    let res = s
        .update_members(&info.id, MemberAction::Remove, &[pn(c)])
        .await
        .expect("remove");
    assert!(res[0].1.is_ok(), "{res:?}");
    assert!(!fake
        .group(info.id.as_str())
        .unwrap()
        .members
        .iter()
        .any(|m| m.phone == c));

    // Join by code: one group joins at once, one needs approval.
    let open = fake.create_group(b, "Open", &[], false);
    let closed = fake.create_group(b, "Closed", &[], false);
    fake.set_join_approval(&closed, true);
    let code_of = |id: &str| fake.group(id).unwrap().invite_code;
    match s
        .join_group(&format!("https://chat.whatsapp.com/{}", code_of(&open)))
        .await
        .expect("join")
    {
        JoinOutcome::Joined(id) => assert_eq!(id.as_str(), open),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        s.join_group(&code_of(&closed)).await.expect("join"),
        JoinOutcome::PendingApproval
    );
    assert_eq!(fake.group(&closed).unwrap().pending, vec![me.to_string()]);

    // Leave.
    s.leave_group(&tgwa::wa::GroupId::parse(&open).unwrap())
        .await
        .expect("leave");
    assert!(!fake.group(&open).unwrap().members.iter().any(|m| m.phone == me));
    s.disconnect(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn members_of_a_lid_group_come_back_by_phone_number() {
    use tgwa::wa::MemberAction;
    let fake = FakeWhatsApp::default();
    let dir = tempfile::tempdir().unwrap();
    let me = "6281200000020";
    let (b, hidden) = ("6281200000021", "6281200000022");
    fake.add_user(b);
    fake.add_user(hidden);
    let (s, _rx, _) = pair_by_qr(&fake, dir.path(), me).await;
    let gid = fake.create_group(me, "LID group", &[b, hidden], true);
    // WhatsApp leaves out `phone_number` for some members of LID groups.
    fake.hide_phone_in_lid_groups(hidden);
    let id = tgwa::wa::GroupId::parse(&gid).unwrap();
    let info = s.group_info(&id).await.expect("metadata");
    let mut phones: Vec<String> = info.members.iter().map(|m| m.phone.digits().to_string()).collect();
    phones.sort();
    // A hidden number stays hidden: asking the directory for that LID does not reveal it
    // (the fake used to answer with `pn_jid`), so that member has no phone number to show.
    assert_eq!(phones, vec![me.to_string(), b.to_string()]);

    // Results of member changes come back as LIDs: a success is a success.
    let res = s
        .update_members(&id, MemberAction::Promote, &[pn(hidden), pn(b)])
        .await
        .expect("promote");
    assert!(res.iter().all(|(_, r)| r.is_ok()), "{res:?}");
    s.disconnect(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn sends_to_a_person_and_a_group_go_through_and_a_number_without_whatsapp_is_an_error() {
    use tgwa::wa::ChatTarget;
    let fake = FakeWhatsApp::default();
    let dir = tempfile::tempdir().unwrap();
    let me = "6281200000030";
    let friend = "6281200000031";
    fake.add_user(friend);
    let (s, _rx, _) = pair_by_qr(&fake, dir.path(), me).await;

    let id = s
        .send_text(&ChatTarget::Phone(pn(friend)), "hello")
        .await
        .expect("send to a person");
    let sent = fake.sent_messages();
    let m = sent.iter().find(|m| m.id == id).expect("the server got it");
    assert_eq!(m.to, format!("{friend}@s.whatsapp.net"));
    assert!(m.recipients.iter().any(|r| r.starts_with(friend)), "{m:?}");

    let gid = fake.create_group(me, "G", &[friend], false);
    let gid = tgwa::wa::GroupId::parse(&gid).unwrap();
    let id = s
        .send_text(&ChatTarget::Group(gid.clone()), "hi all")
        .await
        .expect("send to a group");
    assert!(fake.sent_messages().iter().any(|m| m.id == id && m.to == gid.as_str()));

    let nobody = "6281200000039";
    let res = s.send_text(&ChatTarget::Phone(pn(nobody)), "anyone?").await;
    assert!(res.is_err(), "a send to a number without WhatsApp returned {res:?}");
    s.disconnect(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn the_fake_phones_read_the_text_of_what_a_client_sends_to_a_person_and_a_group() {
    use tgwa::wa::ChatTarget;
    let fake = FakeWhatsApp::default();
    let dir = tempfile::tempdir().unwrap();
    let me = "6281200000040";
    let (friend, other) = ("6281200000041", "6281200000042");
    fake.add_user(friend);
    fake.add_user(other);
    let (s, _rx, _) = pair_by_qr(&fake, dir.path(), me).await;
    let text_of = |id: &str| {
        fake.sent_messages()
            .into_iter()
            .find(|m| m.id == id)
            .and_then(|m| m.text)
    };

    // The first message starts the session (pkmsg), the second rides on it.
    let first = s
        .send_text(&ChatTarget::Phone(pn(friend)), "hello")
        .await
        .expect("send");
    let second = s
        .send_text(&ChatTarget::Phone(pn(friend)), "hello again")
        .await
        .expect("send");
    assert_eq!(text_of(&first).as_deref(), Some("hello"));
    assert_eq!(text_of(&second).as_deref(), Some("hello again"));
    // Until the phone answers, the client keeps offering its pre-key (as Signal does).
    let kinds = |id: &str| {
        fake.sent_messages()
            .into_iter()
            .find(|m| m.id == id)
            .map(|m| m.encryption)
    };
    assert!(kinds(&second).is_some_and(|k| k.contains(&"pkmsg".to_string())));

    for lid in [false, true] {
        let gid = fake.create_group(me, "G", &[friend, other], lid);
        let gid = tgwa::wa::GroupId::parse(&gid).unwrap();
        let a = s
            .send_text(&ChatTarget::Group(gid.clone()), "halo grup")
            .await
            .expect("send to a group");
        let b = s
            .send_text(&ChatTarget::Group(gid.clone()), "halo lagi")
            .await
            .expect("send to a group");
        assert_eq!(text_of(&a).as_deref(), Some("halo grup"), "lid={lid}");
        assert_eq!(text_of(&b).as_deref(), Some("halo lagi"), "lid={lid}");
        // The text travels under the sender key, which the members' phones got pairwise.
        assert!(kinds(&a).is_some_and(|k| k.contains(&"skmsg".to_string()) && k.contains(&"pkmsg".to_string())));
        assert!(kinds(&b).is_some_and(|k| k.contains(&"skmsg".to_string())));
    }
    s.disconnect(Duration::from_secs(5)).await;
}

/// Waits for the incoming message `id`: (chat, sender, text).
async fn incoming(rx: &mut tgwa::wa::EventRx, id: &str) -> (String, String, String) {
    fakewa::wait_for(rx, "an incoming message", |e| match e {
        WaEvent::Message {
            id: got,
            chat,
            sender,
            text,
            ..
        } if got == id => Some((chat.clone(), sender.clone(), text.clone())),
        _ => None,
    })
    .await
}

#[tokio::test]
async fn messages_from_a_person_and_in_groups_arrive_with_the_sender_phone_and_text() {
    use tgwa::wa::ChatTarget;
    let fake = FakeWhatsApp::default();
    let dir = tempfile::tempdir().unwrap();
    let me = "6281200000050";
    let (friend, other) = ("6281200000051", "6281200000052");
    fake.add_user(friend);
    fake.add_user(other);
    let (s, mut rx, _) = pair_by_qr(&fake, dir.path(), me).await;
    let sent = |id: &str| fake.sent_messages().into_iter().find(|m| m.id == id);

    // The friend's phone has never heard from this device: it starts a session from the
    // keys the device uploaded.
    let id = fake.send_from(friend, me, "halo dari teman").expect("the phone sends");
    let (chat, sender, text) = incoming(&mut rx, &id).await;
    assert_eq!(
        (chat.as_str(), sender.as_str(), text.as_str()),
        (friend, friend, "halo dari teman")
    );

    // The client writes back over that session, as a plain `msg`; the phone reads it.
    let back = s
        .send_text(&ChatTarget::Phone(pn(friend)), "balas")
        .await
        .expect("send");
    let back = sent(&back).expect("the server got it");
    assert_eq!(back.text.as_deref(), Some("balas"));
    // (The `pkmsg` beside it is the copy for this account's own phone, which never wrote.)
    assert!(back.encryption.contains(&"msg".to_string()), "{back:?}");
    let id = fake.send_from(friend, me, "sekali lagi").expect("the phone sends");
    assert_eq!(incoming(&mut rx, &id).await.2, "sekali lagi");

    let mut in_group = String::new();
    for lid in [false, true] {
        let gid = fake.create_group(other, "G", &[me, friend], lid);
        for text in ["halo grup", "halo lagi"] {
            let id = fake.send_from(other, &gid, text).expect("the phone sends to the group");
            in_group = id.clone();
            let got = incoming(&mut rx, &id).await;
            assert_eq!(got, (gid.clone(), other.to_string(), text.to_string()), "lid={lid}");
        }
    }
    // The client confirmed delivery of each, and its receipts did not upset the server.
    let delivered = |id: &str| fake.receipts().iter().any(|r| r.id == id && r.from == me);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !(delivered(&id) && delivered(&in_group)) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(delivered(&id), "no receipt for {id}: {:?}", fake.receipts());
    assert!(delivered(&in_group), "no receipt for {in_group}: {:?}", fake.receipts());
    assert!(fake.is_online(me));
    assert!(fake.send_from(me, "6281200000059", "nobody").is_err());
    s.disconnect(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn a_photo_and_a_document_from_a_phone_arrive_with_their_files() {
    let fake = FakeWhatsApp::default();
    let dir = tempfile::tempdir().unwrap();
    let me = "6281200000060";
    let friend = "6281200000061";
    fake.add_user(friend);
    let (_s, mut rx, _) = pair_by_qr(&fake, dir.path(), me).await;
    let photo: Vec<u8> = (0..50_000u32).map(|i| (i * 17 % 256) as u8).collect();
    let pdf: Vec<u8> = b"%PDF-1.4 daftar harga".iter().copied().cycle().take(9_000).collect();
    let first = fake
        .send_file_from(friend, me, "image", &photo, "", "lihat ini")
        .expect("the phone sends a photo");
    let second = fake
        .send_file_from(friend, me, "document", &pdf, "harga.pdf", "")
        .expect("the phone sends a document");
    let mut got = Vec::new();
    while got.len() < 2 {
        let ev = fakewa::wait_for(&mut rx, "an incoming file", |e| match e {
            WaEvent::Message { id, text, meta, .. } if *id == first || *id == second => {
                Some((id.clone(), text.clone(), meta.clone()))
            }
            _ => None,
        })
        .await;
        got.push(ev);
    }
    assert_eq!(got[0].0, first, "in the order they were sent");
    let (_, text, meta) = &got[0];
    assert_eq!((meta.kind, text.as_str()), (tgwa::wa::MessageKind::Image, "lihat ini"));
    assert_eq!(
        meta.media.as_ref().map(|m| &m.bytes),
        Some(&photo),
        "the decrypted photo"
    );
    let (_, _, meta) = &got[1];
    assert_eq!(meta.kind, tgwa::wa::MessageKind::Document);
    let doc = meta.media.as_ref().expect("the document's file");
    assert_eq!((doc.file_name.as_str(), &doc.bytes), ("harga.pdf", &pdf));
}

#[tokio::test]
async fn number_check_understands_canonical_jids_and_per_number_errors() {
    let fake = FakeWhatsApp::default();
    let dir = tempfile::tempdir().unwrap();
    let me = "6281200000040";
    let (s, _rx, _) = pair_by_qr(&fake, dir.path(), me).await;
    // Brazil: asked without the mobile 9, WhatsApp answers with it.
    fake.add_user("5511987654321");
    fake.set_canonical("551187654321", "5511987654321");
    // Mexico: asked as 52..., answered as 521...
    fake.add_user("5215512345678");
    fake.set_canonical("525512345678", "5215512345678");
    let plain = "6281200000041";
    fake.add_user(plain);
    let res = s
        .is_on_whatsapp(&[pn("551187654321"), pn("525512345678"), pn(plain), pn("6281200000049")])
        .await
        .expect("check");
    let got: Vec<bool> = res.iter().map(|(_, b)| *b).collect();
    assert_eq!(got, vec![true, true, true, false], "{res:?}");

    // A per-number error is not "not registered".
    fake.usync_error_for("6281200000048", 429);
    let res = s.is_on_whatsapp(&[pn(plain), pn("6281200000048")]).await;
    assert!(
        matches!(res, Err(WaError::RateLimited { .. })),
        "a rate-limited number came back as {res:?}"
    );
    s.disconnect(Duration::from_secs(5)).await;
}

/// Waits for the event stream to end (the session is over).
async fn stream_ends(rx: &mut tgwa::wa::EventRx) -> Vec<WaEvent> {
    let mut seen = Vec::new();
    let end = tokio::time::timeout(fakewa::WAIT, async {
        while let Some(e) = rx.recv().await {
            seen.push(e);
        }
    })
    .await;
    assert!(end.is_ok(), "the event stream did not end; saw {seen:?}");
    seen
}

#[tokio::test]
async fn stream_conflict_is_stream_replaced_and_ends_the_session() {
    let fake = FakeWhatsApp::default();
    let dir = tempfile::tempdir().unwrap();
    let phone = "6281200000050";
    let (_s, mut rx, _) = pair_by_qr(&fake, dir.path(), phone).await;
    assert_eq!(fake.replace_session(phone), 1);
    let seen = stream_ends(&mut rx).await;
    assert!(seen.contains(&WaEvent::StreamReplaced), "{seen:?}");
}

#[tokio::test]
async fn logout_from_the_phone_is_logged_out_and_ends_the_session() {
    let fake = FakeWhatsApp::default();
    let dir = tempfile::tempdir().unwrap();
    let phone = "6281200000051";
    let (_s, mut rx, spec) = pair_by_qr(&fake, dir.path(), phone).await;
    fake.log_out(phone);
    let seen = stream_ends(&mut rx).await;
    assert!(seen.iter().any(|e| matches!(e, WaEvent::LoggedOut { .. })), "{seen:?}");
    // A restart on the same store is refused with 401: logged out on connect.
    let (_again, mut rx) = fakewa::backend(&fake).start(spec).await.expect("restart");
    let seen = stream_ends(&mut rx).await;
    assert!(seen.iter().any(|e| matches!(e, WaEvent::LoggedOut { .. })), "{seen:?}");
}

#[tokio::test]
async fn a_temporary_ban_ends_the_session_with_its_deadline() {
    let fake = FakeWhatsApp::default();
    let dir = tempfile::tempdir().unwrap();
    let phone = "6281200000052";
    let (_s, mut rx, _) = pair_by_qr(&fake, dir.path(), phone).await;
    fake.ban(phone, tgwa_fakewa::Ban::Temporary { code: 101, secs: 3600 });
    let seen = stream_ends(&mut rx).await;
    let now = tgwa::db::now();
    assert!(
        seen.iter()
            .any(|e| matches!(e, WaEvent::TemporaryBan { until, .. } if (*until - now - 3600).abs() < 60)),
        "{seen:?}"
    );
}

#[tokio::test]
async fn a_terminal_connect_failure_ends_the_session_and_says_so() {
    let fake = FakeWhatsApp::default();
    let dir = tempfile::tempdir().unwrap();
    let phone = "6281200000053";
    let (_s, mut rx, _) = pair_by_qr(&fake, dir.path(), phone).await;
    // 409: "bad user agent" — not one the library reconnects after.
    fake.connect_failure(phone, 409);
    let seen = stream_ends(&mut rx).await;
    assert!(
        seen.iter()
            .any(|e| matches!(e, WaEvent::ConnectFailed { code: 409, .. })),
        "{seen:?}"
    );
}

#[tokio::test]
async fn a_refused_client_version_is_client_outdated() {
    let fake = FakeWhatsApp::default();
    let dir = tempfile::tempdir().unwrap();
    let phone = "6281200000054";
    let (_s, mut rx, _) = pair_by_qr(&fake, dir.path(), phone).await;
    fake.set_refuse_client_version(true);
    fake.drop_socket(phone);
    let seen = stream_ends(&mut rx).await;
    assert!(seen.contains(&WaEvent::ClientOutdated), "{seen:?}");
}

#[tokio::test]
async fn the_behaviour_table_logs_out_0401_and_bans_0402() {
    let fake = tgwa_fakewa::FakeWhatsApp::new(tgwa_fakewa::FakeOptions {
        behaviour_delay: Duration::from_millis(500),
        ..Default::default()
    });
    let dir = tempfile::tempdir().unwrap();
    // Pair both, without waiting for the first login: their fate may come first.
    let mut streams = Vec::new();
    for phone in ["6281200000401", "6281200000402"] {
        let spec = fakewa::spec(dir.path(), phone);
        streams.push(start_and_scan(&fake, &fakewa::backend(&fake), spec, phone).await);
    }
    let (_b, mut rx_b) = streams.pop().unwrap();
    let (_a, mut rx_a) = streams.pop().unwrap();
    let seen = stream_ends(&mut rx_a).await;
    assert!(seen.iter().any(|e| matches!(e, WaEvent::LoggedOut { .. })), "{seen:?}");
    let seen = stream_ends(&mut rx_b).await;
    assert!(
        seen.iter()
            .any(|e| matches!(e, WaEvent::TemporaryBan { reason, .. } if reason.contains("101"))),
        "{seen:?}"
    );
}

#[tokio::test]
async fn a_dropped_socket_and_a_stream_recycle_reconnect_by_themselves() {
    let fake = FakeWhatsApp::default();
    let dir = tempfile::tempdir().unwrap();
    let phone = "6281200000055";
    let (s, mut rx, _) = pair_by_qr(&fake, dir.path(), phone).await;
    fake.drop_socket(phone);
    fakewa::wait_for(&mut rx, "Disconnected", |e| {
        matches!(e, WaEvent::Disconnected { .. }).then_some(())
    })
    .await;
    fakewa::connected(&mut rx).await;
    fake.recycle_stream(phone);
    fakewa::wait_for(&mut rx, "Disconnected", |e| {
        matches!(e, WaEvent::Disconnected { .. }).then_some(())
    })
    .await;
    fakewa::connected(&mut rx).await;
    s.disconnect(Duration::from_secs(5)).await;
}

/// A tap that lands while the connection is being re-established (right after pairing, or
/// during a routine recycle) waits for the login instead of failing with "not connected".
#[tokio::test]
async fn an_operation_during_a_reconnect_waits_for_the_login() {
    let fake = FakeWhatsApp::default();
    let dir = tempfile::tempdir().unwrap();
    let phone = "6281200000057";
    let (s, mut rx, _) = pair_by_qr(&fake, dir.path(), phone).await;
    fake.set_offline(true);
    fake.drop_socket(phone);
    fakewa::wait_for(&mut rx, "Disconnected", |e| {
        matches!(e, WaEvent::Disconnected { .. }).then_some(())
    })
    .await;
    // The call is made while no connection can be made; the server comes back shortly after.
    let call = tokio::spawn({
        let s = s.clone();
        async move { s.groups().await }
    });
    fakewa::wait_for(&mut rx, "ConnectAttemptFailed", |e| {
        matches!(e, WaEvent::ConnectAttemptFailed { .. }).then_some(())
    })
    .await;
    assert!(
        !call.is_finished(),
        "the call gave up before the reconnect: {:?}",
        call.await
    );
    fake.set_offline(false);
    let groups = call.await.expect("task");
    assert!(groups.is_ok(), "{groups:?}");
    s.disconnect(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn failed_reconnect_attempts_are_reported_and_a_long_outage_once() {
    let fake = FakeWhatsApp::default();
    let dir = tempfile::tempdir().unwrap();
    let phone = "6281200000056";
    let spec = fakewa::spec(dir.path(), phone);
    let opts = fakewa::options(&fake).with_outage_after(Duration::from_secs(2));
    let be = RealBackend::with_options(opts);
    // Pair through this backend so the outage bound applies.
    let (s, mut rx) = start_and_scan(&fake, &be, spec, phone).await;
    fakewa::connected(&mut rx).await;

    fake.set_offline(true);
    fake.drop_socket(phone);
    fakewa::wait_for(&mut rx, "ConnectAttemptFailed", |e| {
        matches!(e, WaEvent::ConnectAttemptFailed { .. }).then_some(())
    })
    .await;
    fakewa::wait_for(&mut rx, "Outage", |e| matches!(e, WaEvent::Outage { .. }).then_some(())).await;
    fake.set_offline(false);
    let mut outages = 0;
    fakewa::wait_for(&mut rx, "Connected", |e| match e {
        WaEvent::Outage { .. } => {
            outages += 1;
            None
        }
        WaEvent::Connected => Some(()),
        _ => None,
    })
    .await;
    assert_eq!(outages, 0, "an outage is reported once");
    s.disconnect(Duration::from_secs(5)).await;
}

/// The certificate-skipping feature of the fake server never reaches a normal build.
#[test]
fn a_normal_build_does_not_carry_the_certificate_skip() {
    let tree = |extra: &[&str]| {
        let out = std::process::Command::new(env!("CARGO"))
            .args(["tree", "-e", "features,normal", "-p", "tgwa", "--offline"])
            .args(extra)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .expect("cargo tree runs");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let normal = tree(&[]);
    assert!(normal.contains("whatsapp-rust"), "unexpected tree:\n{normal}");
    assert!(
        !normal.contains("danger-skip"),
        "a normal build skips WhatsApp's certificate check"
    );
    // The check itself works: the test feature does carry it.
    assert!(tree(&["--features", "insecure-fake-whatsapp"]).contains("danger-skip"));
}

/// Without the test feature, asking for the fake backend is bad configuration (exit 2)
/// that names the missing feature.
#[cfg(not(feature = "insecure-fake-whatsapp"))]
#[test]
fn the_fake_backend_is_refused_by_a_normal_build() {
    let dir = tempfile::tempdir().unwrap();
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_tgwa"))
        .current_dir(dir.path())
        .arg("accounts")
        .env_clear()
        .env("TGWA_WA_BACKEND", "fake")
        .output()
        .expect("run tgwa");
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("TGWA_WA_BACKEND") && err.contains("insecure-fake-whatsapp"),
        "{err}"
    );
}

/// A store that cached another server's key (a fake from an earlier process) still logs in:
/// the server answers the IK hello it cannot read with an XX fallback, as WhatsApp does
/// after a key rotation.
#[tokio::test]
async fn a_store_paired_with_an_earlier_server_logs_in_through_the_xx_fallback() {
    let first = FakeWhatsApp::default();
    let dir = tempfile::tempdir().unwrap();
    let phone = "6281200000060";
    let (s, _rx, spec) = pair_by_qr(&first, dir.path(), phone).await;
    s.disconnect(Duration::from_secs(5)).await;
    // The restart's IK hello carries the first server's key.
    let (s, mut rx) = fakewa::backend(&first).start(spec.clone()).await.expect("restart");
    fakewa::connected(&mut rx).await;
    s.disconnect(Duration::from_secs(5)).await;

    let second = FakeWhatsApp::new(tgwa_fakewa::FakeOptions {
        trust_unknown_devices: true,
        ..Default::default()
    });
    let (s, mut rx) = fakewa::backend(&second)
        .start(spec)
        .await
        .expect("start on another server");
    fakewa::connected(&mut rx).await;
    s.disconnect(Duration::from_secs(5)).await;
}

#[path = "support/whatsmeow.rs"]
mod whatsmeow;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_imported_whatsmeow_device_logs_in_with_its_own_noise_key_and_jid_without_pairing() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = tgwa::config::Config::for_tests(dir.path());
    config.import_min_age = Duration::ZERO;
    let phone = "6281234590012";
    let spec = fakewa::spec(dir.path(), phone);
    // The Go bot's session, written with whatsmeow's own schema, at tgwa's session path.
    let written = whatsmeow::write_store(&spec.session_file, &whatsmeow::Spec::paired(phone));
    let report = tgwa::import::run(
        &config,
        None,
        tgwa::import::ImportOptions {
            dry_run: false,
            min_age: Duration::ZERO,
        },
    )
    .await
    .unwrap();
    assert_eq!(report.summary.imported, 1, "{:?}", report.entries);

    // WhatsApp knows the device by the static Noise key it had under whatsmeow, and refuses
    // any other: logging in proves the key (and the JID's user and device) came across.
    let fake = FakeWhatsApp::new(tgwa_fakewa::FakeOptions::default());
    fake.link_device(phone, 12, written.noise_public);
    let be = fakewa::backend(&fake);
    let (session, mut rx) = be.start(spec.clone()).await.unwrap();
    fakewa::connected(&mut rx).await;
    assert!(fake.is_online(phone));
    let profile = session.profile().await.unwrap();
    assert_eq!(
        tgwa::supervisor::jid_digits(&profile.jid),
        phone,
        "{} vs {}",
        profile.jid,
        written.jid
    );
    session.disconnect(Duration::from_secs(5)).await;

    // The same store against a WhatsApp that knows another key for that device: refused.
    let other = FakeWhatsApp::new(tgwa_fakewa::FakeOptions::default());
    other.link_device(phone, 12, [7; 32]);
    let (session, mut rx) = fakewa::backend(&other).start(spec).await.unwrap();
    let refused = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(ev) = rx.recv().await {
            if ev == WaEvent::Connected {
                return false;
            }
            if matches!(ev, WaEvent::LoggedOut { .. } | WaEvent::ConnectFailed { .. }) {
                return true;
            }
        }
        true
    })
    .await
    .unwrap_or(true);
    assert!(refused && !other.is_online(phone), "a wrong Noise key logged in");
    session.disconnect(Duration::from_secs(5)).await;
}

/// whatsmeow's `connectionevents.go`: a `<failure reason="403">` (locked) or `406` (banned) at
/// login. whatsapp-rust reports both as a logout; the adapter says what they are, a ban.
#[tokio::test]
async fn a_lock_or_a_ban_at_login_is_account_banned_not_a_logout() {
    let fake = FakeWhatsApp::default();
    let dir = tempfile::tempdir().unwrap();
    for (phone, code, locked) in [("6281200000063", 403, true), ("6281200000066", 406, false)] {
        let (_s, mut rx, _) = pair_by_qr(&fake, dir.path(), phone).await;
        // The next login is refused (the real server first ends the stream with 503).
        fake.fail_logins(phone, Some(code));
        fake.drop_socket(phone);
        let seen = stream_ends(&mut rx).await;
        assert!(
            seen.iter()
                .any(|e| matches!(e, WaEvent::AccountBanned { locked: l, reason } if *l == locked && reason.contains(&code.to_string()))),
            "{code}: {seen:?}"
        );
        assert!(
            !seen.iter().any(|e| matches!(e, WaEvent::LoggedOut { .. })),
            "{code}: {seen:?}"
        );
    }
}

/// A message to an Argentine number typed without the 9 goes to the JID WhatsApp's lookup
/// returns (54 → 549), not into a chat with a number nobody uses.
#[tokio::test]
async fn a_send_goes_to_the_number_whatsapp_knows() {
    use tgwa::wa::ChatTarget;
    let fake = FakeWhatsApp::default();
    let dir = tempfile::tempdir().unwrap();
    let me = "6281200000067";
    let (s, _rx, _) = pair_by_qr(&fake, dir.path(), me).await;
    for (asked, known) in [("541123456789", "5491123456789"), ("551187654321", "5511987654321")] {
        fake.add_user(known);
        fake.set_canonical(asked, known);
        let id = s
            .send_text(&ChatTarget::Phone(pn(asked)), "hola")
            .await
            .unwrap_or_else(|e| panic!("send to {asked}: {e}"));
        let sent = fake.sent_messages();
        let m = sent.iter().find(|m| m.id == id).expect("the server got it");
        assert_eq!(m.to, format!("{known}@s.whatsapp.net"));
    }
    s.disconnect(Duration::from_secs(5)).await;
}

/// whatsmeow `connectionevents.go` and Baileys PR #1837: a ban ends the stream with 503 and
/// refuses the next login with `<failure reason="406">` (banned) or `403` (locked); the
/// adapter reports both as the ban they are.
#[tokio::test]
async fn a_ban_or_a_lock_from_the_server_is_account_banned() {
    use tgwa_fakewa::Ban;
    let fake = FakeWhatsApp::default();
    let dir = tempfile::tempdir().unwrap();
    for (phone, ban, locked) in [
        ("6281200000076", Ban::Banned, false),
        ("6281200000073", Ban::Locked, true),
    ] {
        let (_s, mut rx, _) = pair_by_qr(&fake, dir.path(), phone).await;
        fake.ban(phone, ban);
        let seen = stream_ends(&mut rx).await;
        assert!(
            seen.iter()
                .any(|e| matches!(e, WaEvent::AccountBanned { locked: l, .. } if *l == locked)),
            "{phone}: {seen:?}"
        );
    }
}

/// The reach-out timelock (whatsmeow #1074, Baileys #2688): a message to a stranger is
/// nacked 463 and comes back as `ReachOutLimited` ("give up", never "retry"); one to a
/// number that wrote first goes through; 479 is the same refusal.
#[tokio::test]
async fn a_463_nack_is_reach_out_limited_and_people_who_wrote_still_get_messages() {
    use tgwa::wa::ChatTarget;
    let fake = FakeWhatsApp::default();
    let dir = tempfile::tempdir().unwrap();
    let me = "6281200000074";
    let (stranger, friend) = ("6281200000075", "6281200000077");
    fake.add_user(stranger);
    fake.add_user(friend);
    let (s, mut rx, _) = pair_by_qr(&fake, dir.path(), me).await;
    let id = fake.send_from(friend, me, "halo").expect("the friend writes first");
    incoming(&mut rx, &id).await;
    fake.timelock(me, Duration::from_secs(3600));
    let res = s.send_text(&ChatTarget::Phone(pn(stranger)), "promo").await;
    match res {
        Err(e @ WaError::ReachOutLimited { .. }) => assert_eq!(e.advice(), Advice::GiveUp),
        other => panic!("a send under the timelock came back as {other:?}"),
    }
    assert!(!fake.sent_messages().iter().any(|m| m.to.starts_with(stranger)));
    s.send_text(&ChatTarget::Phone(pn(friend)), "promo")
        .await
        .expect("a number that wrote first still gets messages");
    fake.nack_next(me, 479);
    let res = s.send_text(&ChatTarget::Phone(pn(friend)), "lagi").await;
    assert!(matches!(res, Err(WaError::ReachOutLimited { .. })), "{res:?}");
    s.disconnect(Duration::from_secs(5)).await;
}

/// A result-level usync error (`<usync><result>` carrying `error code=429`; the query fails
/// as a whole) is a rate limit, so the job engine backs off (2 s doubling, five times) instead
/// of retrying it at once. wacore 0.7 keeps no backoff for it (`reject_result_errors` turns it
/// into a message), so none is reported.
#[tokio::test]
async fn a_result_level_usync_error_is_a_rate_limit() {
    let fake = FakeWhatsApp::default();
    let dir = tempfile::tempdir().unwrap();
    let me = "6281200000078";
    let (s, _rx, _) = pair_by_qr(&fake, dir.path(), me).await;
    let other = "6281200000079";
    fake.add_user(other);
    fake.usync_result_error(me, Some((429, Some(30))));
    let res = s.is_on_whatsapp(&[pn(other)]).await;
    assert!(
        matches!(res, Err(WaError::RateLimited { retry_after: None })),
        "{res:?}"
    );
    fake.usync_result_error(me, None);
    let res = s.is_on_whatsapp(&[pn(other)]).await.expect("cleared");
    assert_eq!(res, vec![(pn(other), true)]);
    s.disconnect(Duration::from_secs(5)).await;
}

// --- members ---

/// Issue 19 over the real adapter and the fake server: the typed `w:g2` join-request IQs of
/// whatsapp-rust 0.7 list, approve and reject requests (in a PN and a LID group), and the
/// approval mode is read from the metadata and set.
#[tokio::test]
async fn join_requests_are_listed_approved_and_rejected_over_the_fake_server() {
    use tgwa::wa::PersonId;
    let fake = FakeWhatsApp::default();
    let dir = tempfile::tempdir().unwrap();
    let me = "6281200000030";
    let (member, outsider) = ("6281200000031", "6281200000032");
    fake.add_user(member);
    let (s, _rx, _) = pair_by_qr(&fake, dir.path(), me).await;
    let gid = fake.create_group(me, "Requests", &[member], false);
    let id = tgwa::wa::GroupId::parse(&gid).unwrap();

    assert!(!s.join_approval(&id).await.expect("mode"));
    s.set_join_approval(&id, true).await.expect("set mode");
    assert!(s.join_approval(&id).await.expect("mode"));
    let people: Vec<String> = (1..=5).map(|i| format!("628120000004{i}")).collect();
    for p in &people {
        fake.request_to_join(&gid, p);
    }
    let list = s.join_requests(&id).await.expect("list");
    let phone = |d: &str| PersonId::Phone(pn(d));
    assert_eq!(list.len(), 5);
    assert!(list.iter().all(|r| r.requested_at.is_some()));
    let pick: Vec<PersonId> = [0usize, 2, 4].iter().map(|&i| phone(&people[i])).collect();
    let mut asked = pick.clone();
    asked.push(phone(outsider));
    let res = s.answer_join_requests(&id, true, &asked).await.expect("approve");
    assert!(res[..3].iter().all(|(_, r)| r.is_ok()), "{res:?}");
    assert!(res[3].1.is_err(), "no request, no approval: {res:?}");
    let g = fake.group(&gid).unwrap();
    for i in [0usize, 2, 4] {
        assert!(g.members.iter().any(|m| m.phone == people[i]));
    }
    let mut waiting = g.pending.clone();
    waiting.sort();
    assert_eq!(waiting, vec![people[1].clone(), people[3].clone()]);
    let rest: Vec<PersonId> = s.join_requests(&id).await.unwrap().into_iter().map(|r| r.id).collect();
    let res = s.answer_join_requests(&id, false, &rest).await.expect("reject");
    assert!(res.iter().all(|(_, r)| r.is_ok()), "{res:?}");
    let g = fake.group(&gid).unwrap();
    assert!(g.pending.is_empty());
    assert_eq!(g.members.len(), 5, "me, the member and the three approved");

    // A member who is not an admin is refused by the server.
    let (s2, _rx2, _) = pair_by_qr(&fake, &dir.path().join("m"), member).await;
    assert!(s2.join_requests(&id).await.is_err());
    assert!(s2.set_join_approval(&id, false).await.is_err());

    // In a LID group the requester is listed by LID and answered by that LID.
    let lid_gid = fake.create_group(me, "LID requests", &[], true);
    let lid_id = tgwa::wa::GroupId::parse(&lid_gid).unwrap();
    fake.request_to_join(&lid_gid, &people[0]);
    let list = s.join_requests(&lid_id).await.expect("list");
    assert_eq!(list.len(), 1);
    let res = s
        .answer_join_requests(&lid_id, true, &[list[0].id.clone()])
        .await
        .expect("approve");
    assert!(res[0].1.is_ok(), "{res:?}");
    assert!(fake
        .group(&lid_gid)
        .unwrap()
        .members
        .iter()
        .any(|m| m.phone == people[0]));
    let roster = s.group_roster(&lid_id).await.expect("roster");
    assert_eq!(roster.len(), 2);
    s2.disconnect(Duration::from_secs(5)).await;
    s.disconnect(Duration::from_secs(5)).await;
}
