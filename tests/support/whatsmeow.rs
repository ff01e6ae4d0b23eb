//! Builds Go-bot files for tests: whatsmeow session stores from whatsmeow's own schema
//! (`whatsmeow_schema.sql`, vendored), with real keys: X25519 key pairs from whatsapp-rust's
//! signal crate, the signed pre-key signed (XEdDSA) by the identity key, and the ADV identity
//! signed by a separate "primary phone" key, as WhatsApp does. The Go bot's master
//! `bot_data.db` and per-account `bot_data-*.db` follow the Go bot's description (seed 001).
//!
//! Uses only public crates (no tgwa paths), so the library's unit tests include it too.
#![allow(dead_code)]

use std::path::Path;

use rusqlite::{params, Connection};
use whatsapp_rust::wacore::libsignal::protocol::{KeyPair, PrivateKey};
use whatsapp_rust::waproto::buffa::{Message, MessageField};
use whatsapp_rust::waproto::whatsapp as wa;

/// whatsmeow's schema, verbatim.
pub const SCHEMA: &str = include_str!("whatsmeow_schema.sql");

fn rng() -> rand010::rngs::StdRng {
    rand010::make_rng()
}

/// A fresh X25519 key pair.
pub fn key_pair() -> KeyPair {
    KeyPair::generate(&mut rng())
}

/// The 32-byte private key whatsmeow stores.
pub fn private(kp: &KeyPair) -> [u8; 32] {
    *kp.private_key.serialize()
}

/// The 32-byte public key.
pub fn public(kp: &KeyPair) -> [u8; 32] {
    kp.public_key.public_key_bytes().try_into().expect("32-byte key")
}

/// XEdDSA signature of `msg` by `key`.
pub fn sign(key: &PrivateKey, msg: &[u8]) -> [u8; 64] {
    key.calculate_signature(msg, &mut rng()).expect("signing")
}

/// What a test wants in one whatsmeow store.
#[derive(Debug, Clone)]
pub struct Spec {
    /// Phone digits of the device's JID.
    pub phone: String,
    /// Device number in the JID.
    pub device: u16,
    /// `user:device@lid`, if whatsmeow had learned it.
    pub lid: Option<String>,
    pub push_name: String,
    /// Pre-keys 1..=n; the first `uploaded` were uploaded.
    pub pre_keys: u32,
    pub uploaded: u32,
    /// (whatsmeow address, identity public key)
    pub identities: Vec<(String, [u8; 32])>,
    /// whatsmeow addresses that get a session record.
    pub sessions: Vec<String>,
    /// (lid user, phone user)
    pub lid_map: Vec<(String, String)>,
    /// Leave the store in WAL mode with its last writes still in `-wal`.
    pub keep_wal: bool,
}

impl Spec {
    /// A plain paired device with no Signal state.
    pub fn paired(phone: &str) -> Self {
        Self {
            phone: phone.into(),
            device: 12,
            lid: None,
            push_name: "Go bot user".into(),
            pre_keys: 0,
            uploaded: 0,
            identities: Vec::new(),
            sessions: Vec::new(),
            lid_map: Vec::new(),
            keep_wal: false,
        }
    }

    /// A device with a LID map, pre-keys, identities and sessions.
    pub fn full(phone: &str) -> Self {
        let other = key_pair();
        Self {
            lid: Some("123456789012345:12@lid".into()),
            pre_keys: 30,
            uploaded: 20,
            identities: vec![
                ("6289900001111:0".into(), public(&other)),
                ("6289900001111:3".into(), public(&key_pair())),
                ("987654321098765_1:0".into(), public(&key_pair())),
            ],
            sessions: vec![
                "6289900001111:0".into(),
                "6289900001111:3".into(),
                "987654321098765_1:0".into(),
            ],
            lid_map: vec![
                ("123456789012345".into(), phone.into()),
                ("987654321098765".into(), "6289900001111".into()),
            ],
            ..Self::paired(phone)
        }
    }
}

/// The keys written, to check the conversion against.
#[derive(Debug, Clone)]
pub struct Written {
    pub jid: String,
    pub noise_public: [u8; 32],
    pub identity_public: [u8; 32],
    pub signed_pre_key_public: [u8; 32],
    pub adv_details: Vec<u8>,
    pub adv_account_sig_key: [u8; 32],
    pub adv_account_sig: [u8; 64],
    pub adv_device_sig: [u8; 64],
    /// (key_id, public key) of every pre-key.
    pub pre_key_publics: Vec<(u32, [u8; 32])>,
    /// (whatsmeow address, record bytes)
    pub session_records: Vec<(String, Vec<u8>)>,
}

/// A session record as go-libsignal serializes it (`RecordStructure`).
pub fn session_record(remote_identity: &[u8; 32], local_identity: &[u8; 32]) -> Vec<u8> {
    let djb = |k: &[u8; 32]| {
        let mut v = vec![5u8];
        v.extend_from_slice(k);
        v
    };
    let chain_key = wa::session_structure::chain::ChainKey {
        index: Some(4),
        key: Some(vec![7u8; 32].into()),
    };
    let sender = wa::session_structure::Chain {
        sender_ratchet_key: Some(djb(&public(&key_pair()))),
        sender_ratchet_key_private: Some(private(&key_pair()).to_vec()),
        chain_key: MessageField::some(chain_key),
        ..Default::default()
    };
    let s = wa::SessionStructure {
        session_version: Some(3),
        local_identity_public: Some(djb(local_identity)),
        remote_identity_public: Some(djb(remote_identity)),
        root_key: Some(vec![9u8; 32]),
        previous_counter: Some(0),
        sender_chain: MessageField::some(sender),
        remote_registration_id: Some(4242),
        local_registration_id: Some(1717),
        ..Default::default()
    };
    wa::RecordStructure {
        current_session: MessageField::some(s),
        previous_sessions: Vec::new(),
    }
    .encode_to_vec()
}

fn open(path: &Path) -> Connection {
    let c = Connection::open(path).expect("open fixture");
    // whatsmeow's SQLite setup: WAL and foreign keys on (store/sqlstore/container.go).
    c.execute_batch("PRAGMA journal_mode=WAL; PRAGMA foreign_keys=ON;")
        .expect("pragmas");
    c
}

/// An empty whatsmeow store (the schema and version table, no device): never paired.
pub fn write_unpaired(path: &Path) {
    let c = open(path);
    create_schema(&c);
    drop(c);
}

fn create_schema(c: &Connection) {
    c.execute_batch(SCHEMA).expect("whatsmeow schema");
    // go.mau.fi/util/dbutil's version table, named by whatsmeow's container.go.
    c.execute_batch(
        "CREATE TABLE whatsmeow_version (version INTEGER, compat INTEGER);
         INSERT INTO whatsmeow_version (version, compat) VALUES (15, 8);",
    )
    .expect("version table");
}

/// A paired whatsmeow store per `spec`; returns the keys it holds.
pub fn write_store(path: &Path, spec: &Spec) -> Written {
    let noise = key_pair();
    let identity = key_pair();
    let spk = key_pair();
    let spk_sig = sign(&identity.private_key, &spk.public_key.serialize());
    let primary = key_pair();
    let adv_details = wa::ADVDeviceIdentity {
        raw_id: Some(77),
        timestamp: Some(1_700_000_000),
        key_index: Some(spec.device as u32),
        ..Default::default()
    }
    .encode_to_vec();
    // WhatsApp's scheme: the primary signs [6, 0] + details + our identity key; we sign
    // [6, 1] + details + our identity key + the primary's key.
    let mut msg = vec![6u8, 0];
    msg.extend_from_slice(&adv_details);
    msg.extend_from_slice(&public(&identity));
    let account_sig = sign(&primary.private_key, &msg);
    let mut msg = vec![6u8, 1];
    msg.extend_from_slice(&adv_details);
    msg.extend_from_slice(&public(&identity));
    msg.extend_from_slice(&public(&primary));
    let device_sig = sign(&identity.private_key, &msg);
    let jid = format!("{}:{}@s.whatsapp.net", spec.phone, spec.device);
    let adv_key = [3u8; 32];

    let c = open(path);
    create_schema(&c);
    c.execute(
        "INSERT INTO whatsmeow_device (jid, lid, registration_id, noise_key, identity_key,
            signed_pre_key, signed_pre_key_id, signed_pre_key_sig, adv_key, adv_details,
            adv_account_sig, adv_account_sig_key, adv_device_sig, platform, business_name,
            push_name, lid_migration_ts)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, 'android', '', ?14, ?15)",
        params![
            jid,
            spec.lid,
            1717i64,
            private(&noise).to_vec(),
            private(&identity).to_vec(),
            private(&spk).to_vec(),
            1i64,
            spk_sig.to_vec(),
            adv_key.to_vec(),
            adv_details,
            account_sig.to_vec(),
            public(&primary).to_vec(),
            device_sig.to_vec(),
            spec.push_name,
            if spec.lid.is_some() { 1_700_000_100i64 } else { 0 },
        ],
    )
    .expect("device row");
    let mut pre_key_publics = Vec::new();
    for id in 1..=spec.pre_keys {
        let kp = key_pair();
        c.execute(
            "INSERT INTO whatsmeow_pre_keys (jid, key_id, key, uploaded) VALUES (?1, ?2, ?3, ?4)",
            params![jid, id, private(&kp).to_vec(), id <= spec.uploaded],
        )
        .expect("pre-key");
        pre_key_publics.push((id, public(&kp)));
    }
    for (addr, key) in &spec.identities {
        c.execute(
            "INSERT INTO whatsmeow_identity_keys (our_jid, their_id, identity) VALUES (?1, ?2, ?3)",
            params![jid, addr, key.to_vec()],
        )
        .expect("identity");
    }
    let mut session_records = Vec::new();
    for addr in &spec.sessions {
        let remote = spec
            .identities
            .iter()
            .find(|(a, _)| a == addr)
            .map(|(_, k)| *k)
            .unwrap_or_else(|| public(&key_pair()));
        let rec = session_record(&remote, &public(&identity));
        c.execute(
            "INSERT INTO whatsmeow_sessions (our_jid, their_id, session) VALUES (?1, ?2, ?3)",
            params![jid, addr, rec],
        )
        .expect("session");
        session_records.push((addr.clone(), rec));
    }
    for (lid, pn) in &spec.lid_map {
        c.execute(
            "INSERT INTO whatsmeow_lid_map (lid, pn) VALUES (?1, ?2)",
            params![lid, pn],
        )
        .expect("lid map");
    }
    if spec.keep_wal {
        // Leave the connection's last writes in -wal, as a killed Go process would.
        std::mem::forget(c);
    } else {
        c.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);").expect("checkpoint");
        drop(c);
    }
    Written {
        jid,
        noise_public: public(&noise),
        identity_public: public(&identity),
        signed_pre_key_public: public(&spk),
        adv_details: wa::ADVDeviceIdentity {
            raw_id: Some(77),
            timestamp: Some(1_700_000_000),
            key_index: Some(spec.device as u32),
            ..Default::default()
        }
        .encode_to_vec(),
        adv_account_sig_key: public(&primary),
        adv_account_sig: account_sig,
        adv_device_sig: device_sig,
        pre_key_publics,
        session_records,
    }
}

/// Damages a store past its first page, so it opens but fails `quick_check`.
pub fn corrupt(path: &Path) {
    use std::io::{Seek, SeekFrom, Write};
    let len = std::fs::metadata(path).expect("fixture").len();
    assert!(len > 8192, "store too small to corrupt: {len}");
    let mut f = std::fs::OpenOptions::new().write(true).open(path).expect("open");
    f.seek(SeekFrom::Start(4096)).expect("seek");
    f.write_all(&vec![0xA5u8; (len - 4096) as usize]).expect("write");
}

/// The Go bot's master `bot_data.db` (seed 001: `whatsapp_accounts` without `telegram_id`).
pub fn write_go_master(path: &Path, rows: &[(&str, &str, &str)]) {
    let c = Connection::open(path).expect("master");
    c.execute_batch(
        "CREATE TABLE IF NOT EXISTS whatsapp_accounts (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            phone_number TEXT UNIQUE NOT NULL,
            db_path TEXT NOT NULL,
            bot_data_db_path TEXT NOT NULL,
            status TEXT DEFAULT 'active',
            created_at DATETIME DEFAULT CURRENT_TIMESTAMP,
            updated_at DATETIME DEFAULT CURRENT_TIMESTAMP
        );",
    )
    .expect("go master schema");
    for (phone, db_path, bot_data) in rows {
        c.execute(
            "INSERT INTO whatsapp_accounts (phone_number, db_path, bot_data_db_path, status) VALUES (?1, ?2, ?3, 'active')",
            params![phone, db_path, bot_data],
        )
        .expect("go master row");
    }
}

/// A Go bot per-account `bot_data-*.db`: its own tables, no `user_version`.
pub fn write_go_bot_data(path: &Path) {
    let c = open(path);
    c.execute_batch(
        "CREATE TABLE IF NOT EXISTS group_links (id INTEGER PRIMARY KEY, group_jid TEXT, link TEXT);
         CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT);
         INSERT INTO settings (key, value) VALUES ('lang', 'id');",
    )
    .expect("go bot data");
}
