//! Unit tests of each conversion, and of reading and writing, on stores built from whatsmeow's
//! own schema by the shared fixture generator.

#[path = "../../tests/support/whatsmeow.rs"]
mod fixture;

use std::path::Path;

use whatsapp_rust::store::traits::{DeviceStore, ProtocolStore, SignalStore};
use whatsapp_rust::store::SqliteStore;
use whatsapp_rust::wacore::libsignal::protocol::{PublicKey, SessionRecord};

use super::convert::{self, ConvertError};
use super::whatsmeow::{self, ReadError, WmPreKey};
use super::*;

fn read(path: &Path, phone: &str) -> whatsmeow::WmStore {
    whatsmeow::read_file(path, phone).unwrap()
}

#[test]
fn key_pair_derives_the_x25519_public_key() {
    let kp = fixture::key_pair();
    let got = convert::key_pair("k", &fixture::private(&kp)).unwrap();
    assert_eq!(got.public_key.public_key_bytes(), fixture::public(&kp));
    assert_eq!(got.private_key.serialize(), &fixture::private(&kp));
    assert!(matches!(
        convert::key_pair("noise_key", &[1u8; 31]),
        Err(ConvertError::Field { field: "noise_key", .. })
    ));
}

#[test]
fn adv_identity_is_one_protobuf_with_the_four_columns() {
    let adv = convert::adv_identity(b"details", &[1u8; 32], &[2u8; 64], &[3u8; 64]).unwrap();
    let bytes = whatsapp_rust::wacore::store::device::account_serde::to_bytes(&adv);
    let back = whatsapp_rust::wacore::store::device::account_serde::from_bytes(&bytes).unwrap();
    assert_eq!(back.details.as_deref(), Some(&b"details"[..]));
    assert_eq!(back.account_signature_key.as_deref(), Some(&[1u8; 32][..]));
    assert_eq!(back.account_signature.as_deref(), Some(&[2u8; 64][..]));
    assert_eq!(back.device_signature.as_deref(), Some(&[3u8; 64][..]));
    assert!(convert::adv_identity(b"d", &[1u8; 31], &[2u8; 64], &[3u8; 64]).is_err());
    assert!(convert::adv_identity(b"", &[1u8; 32], &[2u8; 64], &[3u8; 64]).is_err());
}

#[test]
fn pre_key_becomes_a_record_with_its_public_key() {
    let kp = fixture::key_pair();
    let rec = convert::pre_key_record(&WmPreKey {
        key_id: 17,
        key: fixture::private(&kp).to_vec(),
        uploaded: true,
    })
    .unwrap();
    let back = whatsapp_rust::waproto::codec::pre_key_record_decode(&rec).unwrap();
    assert_eq!(back.id, Some(17));
    assert_eq!(back.public_key.as_deref(), Some(&fixture::public(&kp)[..]));
    assert_eq!(back.private_key.as_deref(), Some(&fixture::private(&kp)[..]));
    let too_big = WmPreKey {
        key_id: 1 << 24,
        key: fixture::private(&kp).to_vec(),
        uploaded: false,
    };
    assert!(convert::pre_key_record(&too_big).is_err());
}

#[test]
fn signal_addresses_are_rewritten() {
    for (wm, rust) in [
        ("6281234567890:0", Some("6281234567890@c.us.0")),
        ("6281234567890:12", Some("6281234567890:12@c.us.0")),
        ("123456789012345_1:0", Some("123456789012345@lid.0")),
        ("123456789012345_1:3", Some("123456789012345:3@lid.0")),
        ("555_128:2", Some("555:2@hosted.0")),
        ("555_7:2", None),
        ("6281234567890", None),
        ("abc:1", None),
        (":1", None),
    ] {
        assert_eq!(convert::signal_address(wm).as_deref(), rust, "{wm}");
    }
}

#[test]
fn lid_mapping_keeps_both_user_parts() {
    let m = convert::lid_mapping("123456789012345", "6281234567890", 1000).unwrap();
    assert_eq!(m.lid, "123456789012345");
    assert_eq!(m.phone_number, "6281234567890");
    assert_eq!(m.created_at, 1000);
    assert!(convert::lid_mapping("12@lid", "628", 0).is_none());
}

#[test]
fn device_maps_every_column() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("w.db");
    let spec = fixture::Spec::full("6281234567890");
    let w = fixture::write_store(&p, &spec);
    let s = read(&p, "6281234567890");
    let d = convert::device(&s.device, &s.pre_keys, None).unwrap();
    assert_eq!(d.pn.as_ref().unwrap().to_string(), w.jid);
    assert_eq!(d.lid.as_ref().unwrap().to_string(), "123456789012345:12@lid");
    assert_eq!(d.noise_key.public_key.public_key_bytes(), w.noise_public);
    assert_eq!(d.identity_key.public_key.public_key_bytes(), w.identity_public);
    assert_eq!(d.signed_pre_key.public_key.public_key_bytes(), w.signed_pre_key_public);
    assert_eq!(d.registration_id, 1717);
    assert_eq!(d.signed_pre_key_id, 1);
    assert_eq!(d.adv_secret_key, [3u8; 32]);
    assert_eq!(d.push_name, "Go bot user");
    assert!(d.lid_migrated);
    let acc = d.account.as_deref().unwrap();
    assert_eq!(acc.details.as_deref(), Some(&w.adv_details[..]));
    assert_eq!(acc.account_signature_key.as_deref(), Some(&w.adv_account_sig_key[..]));
    assert_eq!(acc.account_signature.as_deref(), Some(&w.adv_account_sig[..]));
    assert_eq!(acc.device_signature.as_deref(), Some(&w.adv_device_sig[..]));
    // The ADV device signature verifies with the converted identity key, as WhatsApp checks it.
    let mut msg = vec![6u8, 1];
    msg.extend_from_slice(&w.adv_details);
    msg.extend_from_slice(&w.identity_public);
    msg.extend_from_slice(&w.adv_account_sig_key);
    assert!(d.identity_key.public_key.verify_signature(&msg, &w.adv_device_sig));
    // 30 keys, 20 uploaded: numbering goes on at 31 and the first unuploaded is 21.
    assert_eq!(d.next_pre_key_id, 31);
    assert_eq!(d.first_unupload_pre_key_id, 21);
    assert!(d.server_has_prekeys);
}

#[test]
fn mismatched_keys_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("w.db");
    fixture::write_store(&p, &fixture::Spec::paired("6281234567890"));
    let mut s = read(&p, "6281234567890");
    s.device.identity_key = fixture::private(&fixture::key_pair()).to_vec();
    assert_eq!(
        convert::device(&s.device, &[], None).err(),
        Some(ConvertError::BadSignature)
    );
}

#[test]
fn reading_refuses_unpaired_and_other_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let u = dir.path().join("u.db");
    fixture::write_unpaired(&u);
    assert!(matches!(
        whatsmeow::read_file(&u, "6281234567890"),
        Err(ReadError::NoDevice)
    ));
    let p = dir.path().join("p.db");
    fixture::write_store(&p, &fixture::Spec::paired("6281234567890"));
    assert!(matches!(
        whatsmeow::read_file(&p, "6281111111111"),
        Err(ReadError::JidMismatch { .. })
    ));
}

#[test]
fn session_records_are_read_by_whatsapp_rust() {
    let rec = fixture::session_record(&[1u8; 32], &[2u8; 32]);
    let r = SessionRecord::deserialize(&rec).unwrap();
    assert!(r.session_state().is_some());
}

#[test]
fn go_databases_are_told_apart_from_tgwa_ones() {
    let dir = tempfile::tempdir().unwrap();
    let go = dir.path().join("go.db");
    fixture::write_go_master(&go, &[("6281234567890", "x", "y")]);
    assert_eq!(gobot::master_kind(&go), Ok(DbKind::GoBot));
    assert_eq!(gobot::go_accounts(&go).unwrap().len(), 1);
    let ours = dir.path().join("ours.db");
    let mut c = rusqlite::Connection::open(&ours).unwrap();
    crate::db::migrate(&mut c, crate::db::Schema::Master).unwrap();
    drop(c);
    assert_eq!(gobot::master_kind(&ours), Ok(DbKind::Tgwa));
    assert_eq!(gobot::master_kind(&dir.path().join("none.db")), Ok(DbKind::Fresh));
    let bd = dir.path().join("bd.db");
    fixture::write_go_bot_data(&bd);
    assert_eq!(gobot::bot_data_kind(&bd), Ok(DbKind::GoBot));
    let mut c = rusqlite::Connection::open(dir.path().join("tbd.db")).unwrap();
    crate::db::migrate(&mut c, crate::db::Schema::Account).unwrap();
    drop(c);
    assert_eq!(gobot::bot_data_kind(&dir.path().join("tbd.db")), Ok(DbKind::Tgwa));
}

/// The whole store through whatsapp-rust's own store: the device loads back with the same
/// keys, and pre-keys, identities, sessions and the LID map sit at whatsapp-rust's addresses.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn written_store_loads_back_through_the_crate() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("w.db");
    let w = fixture::write_store(&src, &fixture::Spec::full("6281234567890"));
    let s = read(&src, "6281234567890");
    let c = convert::store(&s, 1_700_000_000).unwrap();
    assert!(c.skipped.is_empty(), "{:?}", c.skipped);
    let dst = dir.path().join("new.db");
    let counts = store::write(&dst, &c).await.unwrap();
    assert_eq!(
        counts,
        Counts {
            pre_keys: 30,
            identities: 3,
            sessions: 3,
            lid_mappings: 2
        }
    );
    for side in ["-wal", "-shm"] {
        assert!(!dir.path().join(format!("new.db{side}")).exists());
    }
    let st = SqliteStore::new(dst.to_str().unwrap()).await.unwrap();
    let d = st.load().await.unwrap().unwrap();
    assert_eq!(d.pn.as_ref().unwrap().to_string(), w.jid);
    assert_eq!(d.noise_key.public_key.public_key_bytes(), w.noise_public);
    assert_eq!(d.identity_key.public_key.public_key_bytes(), w.identity_public);
    let pk = st.load_prekey(21).await.unwrap().unwrap();
    let pk = whatsapp_rust::waproto::codec::pre_key_record_decode(&pk).unwrap();
    let want = w.pre_key_publics.iter().find(|(id, _)| *id == 21).unwrap().1;
    assert_eq!(pk.public_key.as_deref(), Some(&want[..]));
    assert!(st.load_identity("6289900001111:3@c.us.0").await.unwrap().is_some());
    assert!(st.load_identity("987654321098765@lid.0").await.unwrap().is_some());
    let sess = st.get_session("6289900001111@c.us.0").await.unwrap().unwrap();
    let want = &w
        .session_records
        .iter()
        .find(|(a, _)| a == "6289900001111:0")
        .unwrap()
        .1;
    assert_eq!(&sess[..], &want[..]);
    assert!(SessionRecord::deserialize(&sess).is_ok());
    let m = st.get_pn_mapping("6289900001111").await.unwrap().unwrap();
    assert_eq!(m.lid, "987654321098765");
    // The same identity key the fixture stored is what whatsapp-rust would compare against.
    let id = st.load_identity("6289900001111@c.us.0").await.unwrap().unwrap();
    assert!(PublicKey::from_djb_public_key_bytes(&id).is_ok());
}

#[test]
fn whatsmeow_files_are_found_by_schema() {
    let dir = tempfile::tempdir().unwrap();
    let layout = Layout::new(dir.path());
    let tid = TelegramId::new(111).unwrap();
    let d = layout.ensure_user_dir(tid).unwrap();
    fixture::write_store(
        &d.join("whatsmeow-111-6281234567890.db"),
        &fixture::Spec::paired("6281234567890"),
    );
    // A tgwa store under the same kind of name is not picked up.
    let c = rusqlite::Connection::open(d.join("whatsmeow-111-6281234567891.db")).unwrap();
    c.execute_batch("CREATE TABLE device (id INTEGER PRIMARY KEY, lid TEXT NOT NULL, pn TEXT NOT NULL)")
        .unwrap();
    drop(c);
    let found = find(&layout).unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].phone.digits(), "6281234567890");
    assert_eq!(found[0].tid, tid);
}

/// A crash between keeping the original (a hard link) and the swap leaves the session path
/// and a kept copy as one file; a later run must not convert what is left.
#[test]
fn an_interrupted_import_is_not_converted_again() {
    let dir = tempfile::tempdir().unwrap();
    let layout = Layout::new(dir.path());
    let tid = TelegramId::new(111).unwrap();
    let d = layout.ensure_user_dir(tid).unwrap();
    let s = d.join("whatsmeow-111-6281234567890.db");
    fixture::write_store(&s, &fixture::Spec::paired("6281234567890"));
    let found = find(&layout).unwrap().remove(0);
    let work = dir.path().join("work");
    std::fs::create_dir(&work).unwrap();
    assert!(matches!(
        prepare(&found, dir.path(), &work, Duration::ZERO, 0).unwrap(),
        Prepared::Ready { .. }
    ));
    let kept = dir.path().join(IMPORTED_DIR).join("20260101T000000.000Z").join("111");
    std::fs::create_dir_all(&kept).unwrap();
    std::fs::hard_link(&s, kept.join("whatsmeow-111-6281234567890.db")).unwrap();
    let work2 = dir.path().join("work2");
    std::fs::create_dir(&work2).unwrap();
    match prepare(&found, dir.path(), &work2, Duration::ZERO, 0).unwrap() {
        Prepared::Refused(why) => assert!(why.contains("stopped half-way"), "{why}"),
        _ => panic!("converted again"),
    }
}
