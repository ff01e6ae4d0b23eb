//! The simulator through the session trait, as the supervisor and the menus use it: QR login,
//! the shared world across accounts and restarts, admin rules and per-member results.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tgwa::ids::{PhoneNumber, TelegramId};
use tgwa::layout::Layout;
use tgwa::wa::sim::{SimBackend, SimOptions};
use tgwa::wa::{
    ChatTarget, EventRx, JoinOutcome, MemberAction, Probe, SessionSpec, WaBackend, WaError, WaEvent, WaSession,
};

fn options() -> SimOptions {
    SimOptions {
        pair_delay: Duration::from_millis(30),
        code_ttl: Duration::from_millis(300),
        event_delay: Duration::from_millis(200),
    }
}

async fn sim(dir: &Path) -> Arc<SimBackend> {
    SimBackend::open_with(&Layout::new(dir.join("DB USER TELEGRAM")), options())
        .await
        .unwrap()
}

fn spec(dir: &Path, phone: &str) -> SessionSpec {
    let folder = dir.join("DB USER TELEGRAM/42");
    std::fs::create_dir_all(&folder).unwrap();
    SessionSpec {
        telegram_id: TelegramId::new(42).unwrap(),
        phone: PhoneNumber::from_digits(phone).unwrap(),
        session_file: folder.join(format!("whatsmeow-42-{phone}.db")),
    }
}

async fn next(rx: &mut EventRx) -> WaEvent {
    tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .expect("an event in time")
        .expect("stream open")
}

/// Pairs `phone` with a code and waits until it is connected.
async fn paired(b: &SimBackend, dir: &Path, phone: &str) -> (Arc<dyn WaSession>, EventRx) {
    let (s, mut rx) = b.start(spec(dir, phone)).await.unwrap();
    let code = s
        .request_pair_code(&PhoneNumber::from_digits(phone).unwrap())
        .await
        .unwrap();
    assert_eq!(code.code.len(), 8);
    assert!(code
        .code
        .bytes()
        .all(|c| c.is_ascii_digit() || (c.is_ascii_uppercase() && !b"ILOU".contains(&c))));
    assert!(matches!(next(&mut rx).await, WaEvent::PairSuccess { .. }));
    assert_eq!(next(&mut rx).await, WaEvent::Connected);
    (s, rx)
}

fn pn(s: &str) -> PhoneNumber {
    PhoneNumber::from_digits(s).unwrap()
}

#[tokio::test]
async fn qr_login_shows_codes_then_pairs() {
    let dir = tempfile::tempdir().unwrap();
    let b = sim(dir.path()).await;
    let sp = spec(dir.path(), "6281234500011");
    let (s, mut rx) = b.start(sp.clone()).await.unwrap();
    s.start_qr().await.unwrap();
    match next(&mut rx).await {
        WaEvent::Qr { code, ttl } => {
            assert!(code.starts_with("2@"));
            assert_eq!(ttl, Duration::from_secs(60));
        }
        other => panic!("expected a QR, got {other:?}"),
    }
    assert!(matches!(next(&mut rx).await, WaEvent::PairSuccess { .. }));
    assert_eq!(next(&mut rx).await, WaEvent::Connected);
    assert!(matches!(b.probe(&sp.session_file).await.unwrap(), Probe::Paired { .. }));
}

#[tokio::test]
async fn a_cancelled_code_never_pairs() {
    let dir = tempfile::tempdir().unwrap();
    let b = sim(dir.path()).await;
    let sp = spec(dir.path(), "6281234500012");
    let (s, mut rx) = b.start(sp.clone()).await.unwrap();
    s.request_pair_code(&sp.phone).await.unwrap();
    s.cancel_pair_code().await.unwrap();
    assert!(
        tokio::time::timeout(Duration::from_millis(300), rx.recv())
            .await
            .is_err(),
        "no event after cancel"
    );
    assert_eq!(b.probe(&sp.session_file).await.unwrap(), Probe::Unpaired);
}

#[tokio::test]
async fn groups_are_shared_between_accounts_and_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (a_phone, b_phone) = ("6281234500021", "6281234500022");
    let gid = {
        let b = sim(dir.path()).await;
        let (a, _ra) = paired(&b, dir.path(), a_phone).await;
        let (bs, _rb) = paired(&b, dir.path(), b_phone).await;
        let g = a.create_group("Arisan RT 5", &[pn("6281234500100")]).await.unwrap();
        assert_eq!(g.members.len(), 1, "a number not on WhatsApp is not added");
        let link = a.invite_link(&g.id, false).await.unwrap();
        assert!(link.starts_with("https://chat.whatsapp.com/"));
        assert_eq!(bs.join_group(&link).await.unwrap(), JoinOutcome::Joined(g.id.clone()));
        bs.send_text(&ChatTarget::Group(g.id.clone()), "halo").await.unwrap();
        // Announce-only: B (not admin) may no longer post; A still may.
        a.set_announce(&g.id, true).await.unwrap();
        assert!(matches!(
            bs.send_text(&ChatTarget::Group(g.id.clone()), "x").await,
            Err(WaError::Forbidden(_))
        ));
        assert!(matches!(bs.set_locked(&g.id, true).await, Err(WaError::Forbidden(_))));
        // Revoking the link kills the old one.
        let new = a.invite_link(&g.id, true).await.unwrap();
        assert_ne!(new, link);
        let c = paired(&b, dir.path(), "6281234500023").await.0;
        assert!(matches!(c.join_group(&link).await, Err(WaError::NotFound(_))));
        assert!(matches!(c.join_group("not a link").await, Err(WaError::Invalid(_))));
        b.set_join_approval(&g.id, true).await.unwrap();
        assert_eq!(c.join_group(&new).await.unwrap(), JoinOutcome::PendingApproval);
        g.id
    };
    // A new simulator on the same folder: the world and the paired sessions are still there.
    let b = sim(dir.path()).await;
    let (a, mut ra) = b.start(spec(dir.path(), a_phone)).await.unwrap();
    assert_eq!(next(&mut ra).await, WaEvent::Connected);
    let info = a.group_info(&gid).await.unwrap();
    assert!(info.announce);
    let members: Vec<&str> = info.members.iter().map(|m| m.phone.digits()).collect();
    assert_eq!(members, vec![a_phone, b_phone]);
    let sent = b.sent_messages().await.unwrap();
    assert_eq!(sent.len(), 1);
    assert_eq!(
        (sent[0].from.as_str(), sent[0].to.as_str(), sent[0].text.as_str()),
        (b_phone, gid.as_str(), "halo")
    );
}

#[tokio::test]
async fn member_changes_report_a_result_per_number() {
    let dir = tempfile::tempdir().unwrap();
    let b = sim(dir.path()).await;
    let (a, _ra) = paired(&b, dir.path(), "6281234500031").await;
    let g = a.create_group("Kelas", &[]).await.unwrap();
    let nums = [pn("6281234500032"), pn("6281234500100"), pn("6281234500033")];
    let res = a.update_members(&g.id, MemberAction::Add, &nums).await.unwrap();
    assert!(res[0].1.is_ok() && res[2].1.is_ok());
    assert_eq!(res[1].1, Err("not on WhatsApp".to_string()));
    let again = a.update_members(&g.id, MemberAction::Add, &nums[..1]).await.unwrap();
    assert_eq!(again[0].1, Err("already a member".to_string()));
    let promote = a
        .update_members(&g.id, MemberAction::Promote, &[nums[0].clone(), pn("6281234500099")])
        .await
        .unwrap();
    assert!(promote[0].1.is_ok());
    assert_eq!(promote[1].1, Err("not a member".to_string()));
    let on = a.is_on_whatsapp(&nums).await.unwrap();
    assert_eq!(on.iter().map(|(_, b)| *b).collect::<Vec<_>>(), vec![true, false, true]);
    // After leaving, the group is out of reach.
    a.leave_group(&g.id).await.unwrap();
    assert!(matches!(a.group_info(&g.id).await, Err(WaError::NotFound(_))));
    assert!(a.groups().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_disconnected_session_refuses_work() {
    let dir = tempfile::tempdir().unwrap();
    let b = sim(dir.path()).await;
    let (a, mut ra) = paired(&b, dir.path(), "6281234500041").await;
    a.disconnect(Duration::from_millis(100)).await;
    assert!(matches!(a.groups().await, Err(WaError::NotConnected)));
    assert!(
        tokio::time::timeout(Duration::from_secs(1), ra.recv())
            .await
            .unwrap()
            .is_none(),
        "stream ends"
    );
}

/// The next incoming message on `rx`, skipping other events.
async fn next_message(rx: &mut EventRx) -> (String, String, String, tgwa::wa::MessageMeta) {
    loop {
        if let WaEvent::Message {
            chat,
            sender,
            text,
            meta,
            ..
        } = next(rx).await
        {
            return (chat, sender, text, meta);
        }
    }
}

#[tokio::test]
async fn what_one_account_sends_another_receives_in_order_and_a_late_login_gets_the_backlog() {
    let dir = tempfile::tempdir().unwrap();
    let (a_phone, b_phone, c_phone) = ("6281234500031", "6281234500032", "6281234500033");
    let b = sim(dir.path()).await;
    let (a, mut ra) = paired(&b, dir.path(), a_phone).await;
    let (bs, mut rb) = paired(&b, dir.path(), b_phone).await;
    // Private: B to A, a text then a photo.
    bs.send_text(&ChatTarget::Phone(pn(a_phone)), "halo A").await.unwrap();
    let photo = tgwa::wa::Media {
        file_name: "p.jpg".into(),
        mime: "image/jpeg".into(),
        bytes: vec![1, 2, 3],
    };
    bs.send_media(
        &ChatTarget::Phone(pn(a_phone)),
        tgwa::wa::MessageKind::Image,
        &photo,
        "foto",
    )
    .await
    .unwrap();
    let (chat, sender, text, meta) = next_message(&mut ra).await;
    assert_eq!(
        (chat.as_str(), sender.as_str(), text.as_str()),
        (b_phone, b_phone, "halo A")
    );
    assert!(!meta.offline);
    assert_eq!(meta.push_name, "Sim 0032");
    let (_, _, text, meta) = next_message(&mut ra).await;
    assert_eq!(text, "foto");
    assert_eq!(meta.kind, tgwa::wa::MessageKind::Image);
    assert_eq!(meta.media, Some(photo));
    // A group: everyone but the sender gets it; a mention is marked for the one mentioned.
    let g = a.create_group("Keluarga", &[pn(b_phone)]).await.unwrap();
    a.send_text(&ChatTarget::Group(g.id.clone()), &format!("tolong @{b_phone}"))
        .await
        .unwrap();
    let (chat, sender, _, meta) = next_message(&mut rb).await;
    assert_eq!((chat.as_str(), sender.as_str()), (g.id.as_str(), a_phone));
    assert!(meta.mentions_me);
    // C is not paired yet: what B sends it waits, and arrives at C's login, marked offline,
    // in order; what was sent before C's device was linked never arrives.
    bs.send_text(&ChatTarget::Phone(pn(c_phone)), "sebelum").await.unwrap();
    let (cs, mut rc) = paired(&b, dir.path(), c_phone).await;
    cs.disconnect(Duration::from_secs(1)).await;
    drop(cs);
    for t in ["satu", "dua"] {
        bs.send_text(&ChatTarget::Phone(pn(c_phone)), t).await.unwrap();
    }
    drop(rc);
    let (_cs, mut rc2) = b.start(spec(dir.path(), c_phone)).await.unwrap();
    assert_eq!(next(&mut rc2).await, WaEvent::Connected);
    let one = next_message(&mut rc2).await;
    let two = next_message(&mut rc2).await;
    assert_eq!((one.2.as_str(), two.2.as_str()), ("satu", "dua"));
    assert!(one.3.offline && two.3.offline);
    rc = rc2;
    assert!(rc.try_recv().is_err(), "nothing else, and nothing twice");
}
