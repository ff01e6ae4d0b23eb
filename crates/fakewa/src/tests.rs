//! The server's behaviours against an unmodified whatsapp-rust client over the in-process
//! transport: bans, nacks, rate limits, a replaced or unlinked session, a number off the
//! network, the offline queue, devices as they are, refused and answered IQs.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use wacore::types::events::{ConnectFailureReason, Event, TempBanReason};
use wacore_binary::builder::NodeBuilder;
use wacore_binary::Jid;
use whatsapp_rust::bot::{Bot, BotHandle};
use whatsapp_rust::store::SqliteStore;
use whatsapp_rust::Client;

use crate::{Ban, FakeWhatsApp, RateScope};

const WAIT: Duration = Duration::from_secs(30);

/// An incoming message as a client saw it: (id, chat, sender, text).
type Incoming = (String, String, String, String);

/// One client on the fake.
struct Dev {
    handle: BotHandle,
    client: Arc<Client>,
    events: tokio::sync::mpsc::UnboundedReceiver<Arc<Event>>,
    messages: tokio::sync::mpsc::UnboundedReceiver<Incoming>,
    qr: tokio::sync::mpsc::UnboundedReceiver<String>,
}

impl Dev {
    /// A client on the store at `session` (paired or not), started.
    async fn start(fake: &FakeWhatsApp, session: &Path) -> Self {
        let store = SqliteStore::new(&session.display().to_string()).await.unwrap();
        let (qr_tx, qr) = tokio::sync::mpsc::unbounded_channel();
        let (ev_tx, events) = tokio::sync::mpsc::unbounded_channel();
        let (msg_tx, messages) = tokio::sync::mpsc::unbounded_channel();
        let bot = Bot::builder()
            .with_backend(store)
            .with_transport_factory(fake.transport_factory())
            .with_http_client(fake.http_client())
            .with_version(crate::VERSION)
            .skip_history_sync()
            .on_qr_code(move |code, _| {
                let _ = qr_tx.send(code);
                async {}
            })
            .on_event(move |e, _| {
                let _ = ev_tx.send(e);
                async {}
            })
            .on_message(move |ctx| {
                let text = crate::signal::text_of(&ctx.message).unwrap_or_default();
                let _ = msg_tx.send((
                    ctx.info.id.to_string(),
                    ctx.info.source.chat.to_string(),
                    ctx.info.source.sender.to_string(),
                    text,
                ));
                async {}
            })
            .build()
            .await
            .unwrap();
        let handle = bot.spawn();
        let client = handle.client();
        Self {
            handle,
            client,
            events,
            messages,
            qr,
        }
    }

    /// A client paired to `phone` by QR, connected.
    async fn paired(fake: &FakeWhatsApp, dir: &Path, phone: &str) -> Self {
        let mut dev = Self::start(fake, &dir.join(format!("{phone}.db"))).await;
        let code = within("a QR code", dev.qr.recv()).await;
        fake.scan_qr(&code, phone).unwrap();
        dev.event("Connected", |e| matches!(e, Event::Connected(_))).await;
        dev
    }

    /// Waits for the first event `pick` accepts; panics with what was seen otherwise.
    async fn event(&mut self, what: &str, pick: impl Fn(&Event) -> bool) -> Arc<Event> {
        let mut seen = Vec::new();
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            match tokio::time::timeout_at(deadline, self.events.recv()).await {
                Ok(Some(e)) if pick(&e) => return e,
                Ok(Some(e)) => seen.push(format!("{:.120}", format!("{e:?}"))),
                Ok(None) => panic!("the events ended before {what}; saw {seen:#?}"),
                Err(_) => panic!("no {what} within {WAIT:?}; saw {seen:#?}"),
            }
        }
    }

    /// Waits for the message with `id`.
    async fn message(&mut self, id: &str) -> Incoming {
        loop {
            let m = within(&format!("message {id}"), self.messages.recv()).await;
            if m.0 == id {
                return m;
            }
        }
    }

    /// Sends `text` to `to` and waits for the server's ack: its `error`, if any.
    async fn send(&mut self, to: &str, text: &str) -> (String, Option<String>) {
        let jid: Jid = format!("{to}@s.whatsapp.net").parse().unwrap();
        let msg = waproto::whatsapp::Message {
            conversation: Some(text.to_string()),
            ..Default::default()
        };
        let sent = self.client.send_message(jid, msg).await.expect("send");
        let id = sent.message_id.clone();
        let ack = self
            .event(
                "the message's ack",
                |e| matches!(e, Event::ServerAck(a) if a.id == id && a.class.as_deref() == Some("message")),
            )
            .await;
        let Event::ServerAck(a) = &*ack else { unreachable!() };
        (id, a.error.clone())
    }

    async fn stop(self) {
        let _ = tokio::time::timeout(Duration::from_secs(5), self.client.disconnect()).await;
        self.handle.abort();
    }
}

async fn within<T>(what: &str, f: impl std::future::Future<Output = Option<T>>) -> T {
    tokio::time::timeout(WAIT, f)
        .await
        .unwrap_or_else(|_| panic!("no {what} within {WAIT:?}"))
        .unwrap_or_else(|| panic!("{what}: the stream ended"))
}

fn fast() -> FakeWhatsApp {
    FakeWhatsApp::default()
}

fn is_disconnect(e: &Event) -> bool {
    matches!(e, Event::Disconnected(_))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_temporary_ban_ends_the_stream_with_503_then_each_login_fails_402() {
    let fake = fast();
    let dir = tempfile::tempdir().unwrap();
    let phone = "6281200000101";
    let mut dev = Dev::paired(&fake, dir.path(), phone).await;
    assert_eq!(fake.ban(phone, Ban::Temporary { code: 102, secs: 600 }), 1);
    // The stream ends without a `<failure>` (the client would call that a connect failure):
    // it reconnects, and the login is refused with the ban and its remaining time.
    dev.event("the stream's end", is_disconnect).await;
    let e = dev.event("TemporaryBan", |e| matches!(e, Event::TemporaryBan(_))).await;
    let Event::TemporaryBan(ban) = &*e else { unreachable!() };
    assert_eq!(ban.code, TempBanReason::BlockedByUsers);
    let secs = ban.expire.num_seconds();
    assert!((590..=600).contains(&secs), "{secs}");
    dev.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_and_a_ban_are_refused_at_login_as_locked_and_banned() {
    let fake = fast();
    let dir = tempfile::tempdir().unwrap();
    for (phone, ban, reason) in [
        ("6281200000102", Ban::Locked, ConnectFailureReason::AccountLocked),
        ("6281200000103", Ban::Banned, ConnectFailureReason::UnknownLogout),
    ] {
        let mut dev = Dev::paired(&fake, dir.path(), phone).await;
        fake.ban(phone, ban);
        dev.event("the stream's end", is_disconnect).await;
        let e = dev.event("LoggedOut", |e| matches!(e, Event::LoggedOut(_))).await;
        let Event::LoggedOut(out) = &*e else { unreachable!() };
        assert!(out.on_connect, "refused at login, not inside the stream");
        assert_eq!(out.reason, reason);
        if ban == Ban::Locked {
            let msg = out.logout_message.as_ref().expect("a lock carries its message");
            assert!(msg.header.is_some());
        }
        dev.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timelocked_number_is_nacked_463_for_strangers_only() {
    let fake = fast();
    let dir = tempfile::tempdir().unwrap();
    let (me, friend, stranger) = ("6281200000111", "6281200000112", "6281200000113");
    fake.add_user(friend);
    fake.add_user(stranger);
    let mut dev = Dev::paired(&fake, dir.path(), me).await;
    let id = fake.send_from(friend, me, "halo").unwrap();
    dev.message(&id).await;
    fake.timelock(me, Duration::from_secs(600));

    let (to_stranger, err) = dev.send(stranger, "kenalan").await;
    assert_eq!(err.as_deref(), Some("463"));
    let (to_friend, err) = dev.send(friend, "balas").await;
    assert_eq!(err, None, "a contact who wrote first is no stranger");
    let sent: Vec<String> = fake.sent_messages().into_iter().map(|m| m.id).collect();
    assert!(sent.contains(&to_friend) && !sent.contains(&to_stranger), "{sent:?}");

    // A one-off nack, then messages go through again.
    fake.nack_next(me, 479);
    assert_eq!(dev.send(friend, "lagi").await.1.as_deref(), Some("479"));
    assert_eq!(dev.send(friend, "lagi").await.1, None);
    dev.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_refuse_usync_and_group_operations_with_429() {
    let fake = fast();
    let dir = tempfile::tempdir().unwrap();
    let me = "6281200000121";
    fake.add_user("6281200000122");
    let dev = Dev::paired(&fake, dir.path(), me).await;
    let jid: Jid = "6281200000122@s.whatsapp.net".parse().unwrap();
    assert!(dev
        .client
        .contacts()
        .is_on_whatsapp(std::slice::from_ref(&jid))
        .await
        .is_ok());
    fake.rate_limit(me, RateScope::Usync, Duration::from_secs(600));
    let err = dev.client.contacts().is_on_whatsapp(&[jid]).await.unwrap_err();
    assert!(format!("{err:?}").contains("429"), "{err:?}");

    // Result-level: the query comes back, but its contact protocol failed as a whole.
    fake.world().accounts.get_mut(me).unwrap().usync_limited_until = 0;
    fake.usync_result_error(me, Some((429, Some(30))));
    let jid: Jid = "6281200000122@s.whatsapp.net".parse().unwrap();
    let err = dev.client.contacts().is_on_whatsapp(&[jid]).await.unwrap_err();
    assert!(format!("{err:?}").contains("429"), "{err:?}");
    fake.usync_result_error(me, None);

    fake.rate_limit(me, RateScope::Groups, Duration::from_secs(600));
    let opts = wacore::iq::groups::GroupCreateOptions::builder().subject("G").build();
    let err = dev.client.groups().create_group(opts).await.unwrap_err();
    assert!(format!("{err:?}").contains("429"), "{err:?}");
    assert!(fake.groups().is_empty());
    dev.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replaced_session_and_an_unlinked_device_end_as_whatsapp_ends_them() {
    let fake = fast();
    let dir = tempfile::tempdir().unwrap();
    let phone = "6281200000131";
    let mut dev = Dev::paired(&fake, dir.path(), phone).await;
    assert_eq!(fake.replace_session(phone), 1);
    dev.event("StreamReplaced", |e| matches!(e, Event::StreamReplaced(_)))
        .await;
    dev.stop().await;

    // The store is still good: it logs in again, then the phone removes the device.
    let mut dev = Dev::start(&fake, &dir.path().join(format!("{phone}.db"))).await;
    dev.event("Connected", |e| matches!(e, Event::Connected(_))).await;
    assert_eq!(fake.unlink(phone), 1);
    let e = dev.event("LoggedOut", |e| matches!(e, Event::LoggedOut(_))).await;
    let Event::LoggedOut(out) = &*e else { unreachable!() };
    assert!(!out.on_connect, "inside the stream: stream error 401 device_removed");
    assert!(!fake.has_linked_device(phone));
    dev.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_to_a_number_off_the_network_wait_and_arrive_in_order_at_its_next_login() {
    let fake = fast();
    let dir = tempfile::tempdir().unwrap();
    let (me, friend) = ("6281200000141", "6281200000142");
    fake.add_user(friend);
    let mut dev = Dev::paired(&fake, dir.path(), me).await;
    fake.set_number_offline(me, true);
    dev.event("the dropped connection", is_disconnect).await;
    let ids: Vec<String> = (0..30)
        .map(|i| fake.send_from(friend, me, &format!("pesan {i}")).unwrap())
        .collect();
    assert_eq!(fake.queued_for(me), 30);
    assert!(!fake.is_online(me), "refused while off the network");

    fake.set_number_offline(me, false);
    let done = dev
        .event("the end of the offline delivery", |e| {
            matches!(e, Event::OfflineSyncCompleted(_))
        })
        .await;
    let Event::OfflineSyncCompleted(done) = &*done else {
        unreachable!()
    };
    assert_eq!(done.count, 30);
    let mut got = Vec::new();
    while got.len() < ids.len() {
        let m = within("a queued message", dev.messages.recv()).await;
        if ids.contains(&m.0) {
            got.push((m.0, m.3));
        }
    }
    let want: Vec<(String, String)> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| (id.clone(), format!("pesan {i}")))
        .collect();
    // The server sends them in order; the client's events need not be: whatsapp-rust 0.7
    // processes the backlog under one permit and swaps in a wider semaphore when the offline
    // sync ends (`message_processing_semaphore`, client.rs), so the last few can overtake one
    // another (seen here about one run in three). Each arrives, once, with its own text.
    got.sort_by_key(|(id, _)| ids.iter().position(|i| i == id));
    assert_eq!(got, want, "every queued message, once");
    // Each was acknowledged, so none is delivered twice.
    let deadline = tokio::time::Instant::now() + WAIT;
    while fake.queued_for(me) > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(fake.queued_for(me), 0);
    dev.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_linked_accounts_write_to_each_other_through_the_server() {
    let fake = fast();
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = ("6281200000151", "6281200000152");
    let mut da = Dev::paired(&fake, dir.path(), a).await;
    let mut db = Dev::paired(&fake, dir.path(), b).await;
    // The directory lists b's companion device, so a encrypts for it and the server relays.
    let (id, err) = da.send(b, "dari a").await;
    assert_eq!(err, None);
    let got = db.message(&id).await;
    assert_eq!(got.3, "dari a");
    assert!(got.2.starts_with(a), "{got:?}");
    // And the phone of b read it too.
    let m = fake.sent_messages().into_iter().find(|m| m.id == id).unwrap();
    assert_eq!(m.text.as_deref(), Some("dari a"));
    assert!(m.recipients.iter().any(|r| r.starts_with(&format!("{b}:"))), "{m:?}");

    // In a group, the second message carries no sender key for b's device (it has it):
    // the server still hands it the group message.
    for lid in [false, true] {
        let g = fake.create_group(a, "Berdua", &[b], lid);
        let gjid: Jid = g.parse().unwrap();
        for text in ["satu", "dua"] {
            let msg = waproto::whatsapp::Message {
                conversation: Some(text.to_string()),
                ..Default::default()
            };
            let sent = da.client.send_message(gjid.clone(), msg).await.expect("group send");
            let got = db.message(&sent.message_id).await;
            assert_eq!((got.1.as_str(), got.3.as_str()), (g.as_str(), text), "lid={lid}");
        }
    }
    da.stop().await;
    db.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sender_with_a_hidden_number_writes_from_its_lid() {
    let fake = fast();
    let dir = tempfile::tempdir().unwrap();
    let (me, hidden) = ("6281200000161", "6281200000162");
    fake.add_user(hidden);
    fake.hide_phone_in_lid_groups(hidden);
    let mut dev = Dev::paired(&fake, dir.path(), me).await;
    let id = fake.send_from_lid(hidden, me, "siapa?").unwrap();
    let got = dev.message(&id).await;
    let lid = fake.lid_of(hidden);
    assert!(got.2.starts_with(&lid) && got.2.ends_with("@lid"), "{got:?}");
    assert_eq!(got.3, "siapa?");
    // Asking the directory about the LID does not reveal the number.
    let jid: Jid = format!("{lid}@lid").parse().unwrap();
    let res = dev.client.contacts().is_on_whatsapp(&[jid]).await.unwrap();
    assert!(!format!("{res:?}").contains(hidden), "{res:?}");
    dev.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_and_unknown_invite_codes_answer_410_and_406() {
    let fake = fast();
    let dir = tempfile::tempdir().unwrap();
    let (me, owner) = ("6281200000171", "6281200000172");
    let g = fake.create_group(owner, "Undangan", &[], false);
    let old = fake.group(&g).unwrap().invite_code;
    fake.world().groups.get_mut(&g).unwrap().revoked.push(old.clone());
    fake.world().groups.get_mut(&g).unwrap().invite = "NewCodeNewCodeNewCode1".into();
    let dev = Dev::paired(&fake, dir.path(), me).await;
    let err = dev.client.groups().join_with_invite_code(&old).await.unwrap_err();
    assert!(format!("{err:?}").contains("410"), "{err:?}");
    let err = dev
        .client
        .groups()
        .join_with_invite_code("NeverExistedNeverExist")
        .await
        .unwrap_err();
    assert!(format!("{err:?}").contains("406"), "{err:?}");
    dev.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contacts_hear_when_a_device_is_removed_and_acks_can_come_late() {
    let fake = fast();
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = ("6281200000201", "6281200000202");
    let mut da = Dev::paired(&fake, dir.path(), a).await;
    let db = Dev::paired(&fake, dir.path(), b).await;
    // They are contacts once a wrote to b.
    assert_eq!(da.send(b, "halo").await.1, None);
    fake.unlink(b);
    let e = da
        .event("b's device list update", |e| matches!(e, Event::DeviceListUpdate(_)))
        .await;
    let Event::DeviceListUpdate(u) = &*e else {
        unreachable!()
    };
    assert_eq!(u.user.user.as_str(), b);
    assert_eq!(u.update_type, wacore::types::events::DeviceListUpdateType::Remove);
    db.stop().await;

    // A late ack: the message is accepted at once, its ack comes a second later.
    fake.delay_acks(a, Some(Some(Duration::from_secs(1))));
    let started = tokio::time::Instant::now();
    let (_, err) = da.send("6281200000202", "pelan").await;
    assert_eq!(err, None);
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );
    da.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_offline_queue_survives_a_restart_of_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("world.json");
    let kept = || {
        FakeWhatsApp::new(crate::FakeOptions {
            state_file: Some(path.clone()),
            ..crate::FakeOptions::default()
        })
    };
    let (me, friend) = ("6281200000211", "6281200000212");
    let first = kept();
    first.add_user(friend);
    let dev = Dev::paired(&first, dir.path(), me).await;
    dev.stop().await;
    let ids: Vec<String> = (0..3)
        .map(|i| first.send_from(friend, me, &format!("simpan {i}")).unwrap())
        .collect();
    assert_eq!(first.queued_for(me), 3);
    first.flush().unwrap();
    drop(first);

    let second = kept();
    assert_eq!(second.queued_for(me), 3);
    let mut dev = Dev::start(&second, &dir.path().join(format!("{me}.db"))).await;
    let mut got = Vec::new();
    while got.len() < ids.len() {
        let m = within("a kept message", dev.messages.recv()).await;
        if ids.contains(&m.0) {
            got.push(m.3);
        }
    }
    // Each kept message once; not their order: whatsapp-rust may reorder the tail of an
    // offline backlog (its message_processing_semaphore is swapped when the backlog ends),
    // which is the client's doing, not the server's.
    got.sort();
    assert_eq!(got, vec!["simpan 0", "simpan 1", "simpan 2"]);
    dev.stop().await;
}

#[test]
fn a_stanza_handed_to_a_connection_that_died_unacknowledged_waits_again() {
    let mut w = crate::world::World::new();
    w.queue.push(crate::queue::Queued {
        phone: "6281200000221".into(),
        device: 1,
        id: "m1".into(),
        stanza: String::new(),
        on_conn: Some(7),
    });
    w.live.insert(7, ("6281200000221".into(), 1));
    w.forget_conn(7);
    assert_eq!(w.queue[0].on_conn, None);
    assert!(w.live.is_empty());
}

// ----- answers at the node level -----

/// A connection context for `phone`'s device 1, as after its login.
fn ctx_for(phone: &str) -> crate::conn::ConnCtx {
    let (ctl, _rx) = tokio::sync::mpsc::unbounded_channel();
    crate::conn::ConnCtx {
        id: 9_999,
        ctl,
        out: Vec::new(),
        after: crate::conn::After::Stay,
        device: Some((phone.to_string(), 1)),
        client_static: [0; 32],
    }
}

fn iq(xmlns: &str, ty: &str, child: wacore_binary::Node) -> wacore_binary::Node {
    NodeBuilder::new("iq")
        .attr("id", "q1")
        .attr("xmlns", xmlns)
        .attr("type", ty)
        .attr("to", "s.whatsapp.net")
        .children([child])
        .build()
}

#[test]
fn an_unknown_iq_is_refused_not_answered_with_an_empty_success() {
    let fake = fast();
    fake.add_user("6281200000181");
    let mut ctx = ctx_for("6281200000181");
    crate::world::on_node(
        &fake,
        &mut ctx,
        iq("w:nonsense", "get", NodeBuilder::new("thing").build()),
    );
    let reply = ctx.out.pop().expect("a reply");
    assert_eq!(crate::world::attr(&reply, "type"), "error");
    let err = reply.get_optional_child("error").expect("an <error>");
    assert_eq!(crate::world::attr(err, "code"), "501");
}

#[test]
fn the_low_prekey_notice_and_the_digest_match_what_was_uploaded() {
    let fake = fast();
    let phone = "6281200000191";
    fake.link_device(phone, 1, [3; 32]);
    let mut ctx = ctx_for(phone);
    // Nothing uploaded: 404, so the client uploads.
    crate::world::on_node(
        &fake,
        &mut ctx,
        iq("encrypt", "get", NodeBuilder::new("digest").build()),
    );
    let reply = ctx.out.pop().unwrap();
    assert_eq!(
        crate::world::attr(reply.get_optional_child("error").unwrap(), "code"),
        "404"
    );
    {
        let mut w = fake.world();
        let keys = &mut w.accounts.get_mut(phone).unwrap().devices.get_mut(&1).unwrap().keys;
        keys.identity = [1; 32];
        keys.skey = Some((1, [2; 32], vec![9; 64]));
        keys.prekeys = (1..=3).map(|i| (i, [i as u8; 32])).collect();
    }
    crate::world::on_node(
        &fake,
        &mut ctx,
        iq("encrypt", "get", NodeBuilder::new("digest").build()),
    );
    let reply = ctx.out.pop().unwrap();
    let digest = reply.get_optional_child("digest").expect("a digest");
    let pks: Vec<[u8; 32]> = (1..=3u8).map(|i| [i; 32]).collect();
    let pks: Vec<&[u8]> = pks.iter().map(|k| &k[..]).collect();
    let want = wacore::prekeys::compute_key_bundle_digest(&[1; 32], &[2; 32], &[9; 64], &pks);
    assert_eq!(crate::world::bytes_of(digest.get_optional_child("hash")), want);
    assert_eq!(digest.get_optional_child("list").unwrap().children().unwrap().len(), 3);
}

#[test]
fn a_device_whose_one_time_prekeys_run_low_is_told_once() {
    let fake = fast();
    let phone = "6281200000231";
    fake.link_device(phone, 1, [3; 32]);
    {
        let mut w = fake.world();
        let keys = &mut w.accounts.get_mut(phone).unwrap().devices.get_mut(&1).unwrap().keys;
        keys.identity = [1; 32];
        keys.skey = Some((1, [2; 32], vec![9; 64]));
        keys.prekeys = (1..=6).map(|i| (i, [i as u8; 32])).collect();
    }
    // The device is online: its connection is registered.
    let (ctl, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let mut ctx = ctx_for(phone);
    ctx.ctl = ctl;
    fake.register_conn(&ctx);
    let ask = || {
        let key = NodeBuilder::new("key")
            .children([NodeBuilder::new("user")
                .attr("jid", format!("{phone}:1@s.whatsapp.net"))
                .build()])
            .build();
        iq("encrypt", "get", key)
    };
    let mut notices = Vec::new();
    for _ in 0..4 {
        let mut asker = ctx_for("6281200000232");
        crate::world::on_node(&fake, &mut asker, ask());
        while let Ok(crate::transport::Ctl::Send(n)) = rx.try_recv() {
            notices.push(n);
        }
    }
    // 6 → 2 pre-keys: one notice, when fewer than five were left.
    assert_eq!(notices.len(), 1, "{notices:?}");
    let n = &notices[0];
    assert_eq!(crate::world::attr(n, "type"), "encrypt");
    assert_eq!(crate::world::attr(n.get_optional_child("count").unwrap(), "value"), "4");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_the_device_cannot_read_is_sent_again_after_its_retry_receipt() {
    let fake = fast();
    let dir = tempfile::tempdir().unwrap();
    let (me, friend) = ("6281200000241", "6281200000242");
    fake.add_user(friend);
    let mut dev = Dev::paired(&fake, dir.path(), me).await;
    fake.set_number_offline(me, true);
    dev.event("the dropped connection", is_disconnect).await;
    let id = fake.send_from(friend, me, "coba lagi").unwrap();
    // The copy waiting in the queue is damaged, as a lost session would leave it.
    {
        let mut w = fake.world();
        let q = w.queue.iter_mut().find(|q| q.id == id).unwrap();
        let mut node = crate::queue::decode(&q.stanza).unwrap();
        if let Some(wacore_binary::NodeContent::Nodes(children)) = node.content.as_mut() {
            // Only the inner message, as if the session were old: a device that lost it
            // cannot read it (no session) and asks again with a retry receipt.
            let bytes = crate::world::bytes_of(Some(&children[0]));
            let pkmsg = wacore_libsignal::protocol::PreKeySignalMessage::try_from(bytes.as_slice()).unwrap();
            children[0].attrs.insert("type", "msg");
            children[0].content = Some(wacore_binary::NodeContent::Bytes(pkmsg.message().serialized().to_vec()));
        }
        q.stanza = crate::queue::encode(&node).unwrap();
    }
    fake.set_number_offline(me, false);
    // The device asks again; the phone starts a new session and sends it once more.
    let got = dev.message(&id).await;
    assert_eq!(got.3, "coba lagi");
    assert!(
        fake.receipts().iter().any(|r| r.id == id && r.kind == "retry"),
        "{:?}",
        fake.receipts()
    );
    dev.stop().await;
}

/// The account's push name comes to a new device in `critical_block`'s snapshot, encrypted
/// with the app-state key the phone shared; a later login starts from the version it has
/// (no second snapshot) and needs no key share, so it is connected without the 10 s grace
/// whatsapp-rust gives a device with no push name (`node_io.rs`, `KEY_SHARE_GRACE_SECS`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_device_gets_the_push_name_from_app_state_and_logs_in_again_from_its_version() {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeWhatsApp::default();
    let dev = Dev::paired(&fake, dir.path(), "6281200007777").await;
    assert_eq!(
        dev.client.push_name(),
        "Fake 7777",
        "the push name came from critical_block"
    );
    assert_eq!(fake.app_state_snapshots(), 1);
    dev.stop().await;

    let mut dev = Dev::start(&fake, &dir.path().join("6281200007777.db")).await;
    dev.event("Connected", |e| matches!(e, Event::Connected(_))).await;
    assert_eq!(dev.client.push_name(), "Fake 7777");
    assert_eq!(
        fake.app_state_snapshots(),
        1,
        "the second login asked from version 1, not for a snapshot"
    );
    dev.stop().await;
}

/// The phone removes the device in the seconds right after pairing, before the login that
/// follows the 515 restart: even a server that trusts unknown devices (the fake behind
/// `tgwa run`) refuses that login with 401, so the client hears it is logged out instead of
/// logging in again as if nothing happened.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_removed_right_after_pairing_is_logged_out_not_trusted_again() {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeWhatsApp::new(crate::FakeOptions {
        trust_unknown_devices: true,
        ..crate::FakeOptions::default()
    });
    let phone = "6281200009999";
    let mut dev = Dev::start(&fake, &dir.path().join("d.db")).await;
    let code = within("a QR code", dev.qr.recv()).await;
    fake.scan_qr(&code, phone).unwrap();
    dev.event("PairSuccess", |e| matches!(e, Event::PairSuccess(_))).await;
    fake.unlink(phone);
    dev.event("LoggedOut", |e| matches!(e, Event::LoggedOut(_))).await;
    assert!(
        !fake.has_linked_device(phone),
        "the removed device was registered again"
    );
    dev.stop().await;
}

/// With [`crate::FakeOptions::inline_app_state`] the same push name arrives as an inline
/// version-1 patch whose MACs the client checks, and no snapshot blob is made.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_inline_genesis_patch_carries_the_push_name_with_valid_macs() {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeWhatsApp::new(crate::FakeOptions {
        inline_app_state: true,
        ..crate::FakeOptions::default()
    });
    let dev = Dev::paired(&fake, dir.path(), "6281200008888").await;
    assert_eq!(dev.client.push_name(), "Fake 8888");
    assert_eq!(fake.app_state_snapshots(), 0);
    dev.stop().await;
}

// --- peer ---

/// A client on `session` that dials the fake's WebSocket listener: the library's own
/// transport, unmodified. Media and app-state blobs still come through the in-process HTTP
/// client: the listener only carries the chat socket.
async fn ws_client(
    fake: &FakeWhatsApp,
    url: &str,
    session: &Path,
) -> (
    BotHandle,
    tokio::sync::mpsc::UnboundedReceiver<Arc<Event>>,
    tokio::sync::mpsc::UnboundedReceiver<String>,
) {
    let store = SqliteStore::new(&session.display().to_string()).await.unwrap();
    let (qr_tx, qr) = tokio::sync::mpsc::unbounded_channel();
    let (ev_tx, events) = tokio::sync::mpsc::unbounded_channel();
    let bot = Bot::builder()
        .with_backend(store)
        .with_transport_factory(whatsapp_rust::transport::TokioWebSocketTransportFactory::new().with_url(url))
        .with_http_client(fake.http_client())
        .with_version(crate::VERSION)
        .skip_history_sync()
        .on_qr_code(move |code, _| {
            let _ = qr_tx.send(code);
            async {}
        })
        .on_event(move |e, _| {
            let _ = ev_tx.send(e);
            async {}
        })
        .build()
        .await
        .unwrap();
    (bot.spawn(), events, qr)
}

async fn until_connected(events: &mut tokio::sync::mpsc::UnboundedReceiver<Arc<Event>>) {
    loop {
        let e = within("Connected", events.recv()).await;
        if matches!(*e, Event::Connected(_)) {
            return;
        }
    }
}

#[tokio::test]
async fn a_client_pairs_and_logs_in_again_over_the_websocket_listener() {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeWhatsApp::default();
    let ws = fake.serve_ws("127.0.0.1:0").await.unwrap();
    let session = dir.path().join("ws.db");
    let (handle, mut events, mut qr) = ws_client(&fake, &ws.url(), &session).await;
    let code = within("a QR code", qr.recv()).await;
    fake.scan_qr(&code, "6281200001111").unwrap();
    until_connected(&mut events).await;
    let first = ws.peers().len();
    assert!(first >= 1, "the client reached the listener");
    assert!(ws.bytes_in() > 0);
    handle.client().disconnect().await;
    handle.abort();

    let (handle, mut events, _qr) = ws_client(&fake, &ws.url(), &session).await;
    until_connected(&mut events).await;
    assert!(ws.peers().len() > first, "the second login came over a new socket");
    assert!(handle.client().pn().is_some());
    handle.abort();
}
