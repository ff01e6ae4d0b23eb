//! Pure conversion from whatsmeow's rows to whatsapp-rust's values: no file, no I/O.
//!
//! Each function maps one thing (a key pair, the ADV identity, a pre-key, a Signal address, a
//! LID mapping, the whole device) and is tested on its own below.

use std::sync::Arc;

use whatsapp_rust::store::traits::LidPnMappingEntry;
use whatsapp_rust::wacore::libsignal::protocol::{KeyPair, PrivateKey};
use whatsapp_rust::wacore::libsignal::store::record_helpers::new_pre_key_record;
use whatsapp_rust::wacore::store::Device;
use whatsapp_rust::wacore::types::jid::JidExt;
use whatsapp_rust::waproto::whatsapp as wa;
use whatsapp_rust::Jid;

use super::whatsmeow::{WmDevice, WmPreKey, WmStore};

/// Why a whatsmeow store cannot be converted.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConvertError {
    #[error("{field}: {reason}")]
    Field { field: &'static str, reason: String },
    #[error("the signed pre-key signature does not verify against the identity key")]
    BadSignature,
}

fn field(field: &'static str, reason: impl Into<String>) -> ConvertError {
    ConvertError::Field {
        field,
        reason: reason.into(),
    }
}

/// whatsmeow keeps a 32-byte X25519 private key; whatsapp-rust keeps private and public.
/// The public key is derived (X25519 base-point multiplication).
pub fn key_pair(name: &'static str, private: &[u8]) -> Result<KeyPair, ConvertError> {
    if private.len() != 32 {
        return Err(field(name, format!("{} bytes, expected 32", private.len())));
    }
    let private = PrivateKey::deserialize(private).map_err(|e| field(name, e.to_string()))?;
    let public = private.public_key().map_err(|e| field(name, e.to_string()))?;
    Ok(KeyPair::new(public, private))
}

/// whatsmeow splits the signed device identity into four columns; whatsapp-rust keeps one
/// `ADVSignedDeviceIdentity` protobuf.
pub fn adv_identity(
    details: &[u8],
    account_signature_key: &[u8],
    account_signature: &[u8],
    device_signature: &[u8],
) -> Result<wa::ADVSignedDeviceIdentity, ConvertError> {
    if details.is_empty() {
        return Err(field("adv_details", "empty"));
    }
    for (name, v, len) in [
        ("adv_account_sig_key", account_signature_key, 32),
        ("adv_account_sig", account_signature, 64),
        ("adv_device_sig", device_signature, 64),
    ] {
        if v.len() != len {
            return Err(field(name, format!("{} bytes, expected {len}", v.len())));
        }
    }
    Ok(wa::ADVSignedDeviceIdentity {
        details: Some(details.to_vec()),
        account_signature_key: Some(account_signature_key.to_vec()),
        account_signature: Some(account_signature.to_vec()),
        device_signature: Some(device_signature.to_vec()),
    })
}

/// One whatsmeow pre-key (id, 32-byte private key) as whatsapp-rust's encoded
/// `PreKeyRecordStructure`, the bytes its store keeps.
pub fn pre_key_record(pk: &WmPreKey) -> Result<Vec<u8>, ConvertError> {
    let id = u32::try_from(pk.key_id)
        .ok()
        .filter(|id| *id < 1 << 24)
        .ok_or_else(|| field("whatsmeow_pre_keys.key_id", format!("{} out of range", pk.key_id)))?;
    let kp = key_pair("whatsmeow_pre_keys.key", &pk.key)?;
    Ok(whatsapp_rust::waproto::codec::pre_key_record_to_vec(
        &new_pre_key_record(id, &kp),
    ))
}

/// Rewrites a whatsmeow Signal address (`user[_agent]:device`, e.g. `628123:0`,
/// `1234567_1:3`) into whatsapp-rust's (`user[:device]@server.0`, e.g. `628123@c.us.0`,
/// `1234567:3@lid.0`). `None` for a form whatsapp-rust has no counterpart for.
pub fn signal_address(wm: &str) -> Option<String> {
    let (name, device) = wm.rsplit_once(':')?;
    let device: u16 = device.parse().ok()?;
    let (user, agent) = match name.split_once('_') {
        Some((u, a)) => (u, a.parse::<u8>().ok()?),
        None => (name, 0),
    };
    if user.is_empty() || !user.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // whatsmeow's domain types (types/jid.go: WhatsAppDomain, LIDDomain, HostedDomain,
    // HostedLIDDomain).
    let server = match agent {
        0 => "s.whatsapp.net",
        1 => "lid",
        128 => "hosted",
        129 => "hosted.lid",
        _ => return None,
    };
    let jid: Jid = if device == 0 {
        format!("{user}@{server}")
    } else {
        format!("{user}:{device}@{server}")
    }
    .parse()
    .ok()?;
    Some(jid.to_protocol_address_string())
}

/// A whatsmeow LID map row (both user parts only) as whatsapp-rust's mapping entry.
pub fn lid_mapping(lid: &str, pn: &str, now: i64) -> Option<LidPnMappingEntry> {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(lid) || !digits(pn) {
        return None;
    }
    Some(LidPnMappingEntry {
        lid: lid.to_string(),
        phone_number: pn.to_string(),
        created_at: now,
        updated_at: now,
        // Not learned by whatsapp-rust itself: "other" is its own name for that.
        learning_source: "other".into(),
    })
}

/// The device: keys with derived public halves, the ADV identity, JIDs, and the pre-key
/// watermarks that let whatsapp-rust carry on numbering after whatsmeow's last key.
pub fn device(d: &WmDevice, pre_keys: &[WmPreKey], nct_salt: Option<&[u8]>) -> Result<Device, ConvertError> {
    let pn: Jid = d.jid.parse().map_err(|e| field("jid", format!("{e}")))?;
    if !pn.is_pn() {
        return Err(field("jid", format!("{} is not a phone-number JID", d.jid)));
    }
    let lid: Option<Jid> = match d.lid.as_deref().filter(|s| !s.is_empty()) {
        Some(l) => {
            let j: Jid = l.parse().map_err(|e| field("lid", format!("{e}")))?;
            if !j.is_lid() {
                return Err(field("lid", format!("{l} is not a LID")));
            }
            Some(j)
        }
        None => None,
    };
    let registration_id = u32::try_from(d.registration_id)
        .map_err(|_| field("registration_id", format!("{} out of range", d.registration_id)))?;
    let signed_pre_key_id = u32::try_from(d.signed_pre_key_id)
        .ok()
        .filter(|id| *id < 1 << 24)
        .ok_or_else(|| field("signed_pre_key_id", format!("{} out of range", d.signed_pre_key_id)))?;
    let noise_key = key_pair("noise_key", &d.noise_key)?;
    let identity_key = key_pair("identity_key", &d.identity_key)?;
    let signed_pre_key = key_pair("signed_pre_key", &d.signed_pre_key)?;
    let signed_pre_key_signature: [u8; 64] = d.signed_pre_key_sig.as_slice().try_into().map_err(|_| {
        field(
            "signed_pre_key_sig",
            format!("{} bytes, expected 64", d.signed_pre_key_sig.len()),
        )
    })?;
    // The signature binds the signed pre-key to the identity key: checking it proves both
    // derived public keys are the ones the server already has.
    if !identity_key
        .public_key
        .verify_signature(&signed_pre_key.public_key.serialize(), &signed_pre_key_signature)
    {
        return Err(ConvertError::BadSignature);
    }
    let adv_secret_key: [u8; 32] = d
        .adv_key
        .as_slice()
        .try_into()
        .map_err(|_| field("adv_key", format!("{} bytes, expected 32", d.adv_key.len())))?;
    let account = adv_identity(
        &d.adv_details,
        &d.adv_account_sig_key,
        &d.adv_account_sig,
        &d.adv_device_sig,
    )?;

    let mut out = Device::new();
    out.pn = Some(pn);
    out.lid = lid;
    out.registration_id = registration_id;
    out.noise_key = noise_key;
    out.identity_key = identity_key;
    out.signed_pre_key = signed_pre_key;
    out.signed_pre_key_id = signed_pre_key_id;
    out.signed_pre_key_signature = signed_pre_key_signature;
    out.adv_secret_key = adv_secret_key;
    out.account = Some(Arc::new(account));
    out.push_name = d.push_name.clone();
    out.lid_migrated = d.lid_migration_ts > 0;
    out.nct_salt = nct_salt.map(<[u8]>::to_vec);
    // Pre-key numbering goes on after whatsmeow's highest ID; keys whatsmeow never uploaded
    // are the first whatsapp-rust offers.
    let max_id = pre_keys.iter().map(|k| k.key_id).max().unwrap_or(0);
    let next = u32::try_from(max_id + 1).unwrap_or(1);
    let first_unuploaded = pre_keys
        .iter()
        .filter(|k| !k.uploaded)
        .map(|k| k.key_id)
        .min()
        .and_then(|id| u32::try_from(id).ok())
        .unwrap_or(next);
    if !pre_keys.is_empty() {
        out.next_pre_key_id = next;
        out.first_unupload_pre_key_id = first_unuploaded;
        out.server_has_prekeys = pre_keys.iter().any(|k| k.uploaded);
    }
    Ok(out)
}

/// Everything converted from one whatsmeow store, ready to be written.
pub struct Converted {
    /// The device row.
    pub device: Device,
    /// Pre-key records (id, encoded record) already uploaded by whatsmeow.
    pub pre_keys_uploaded: Vec<(u32, Vec<u8>)>,
    /// Pre-key records whatsmeow generated but never uploaded.
    pub pre_keys_pending: Vec<(u32, Vec<u8>)>,
    /// Identity keys by whatsapp-rust address.
    pub identities: Vec<(String, [u8; 32])>,
    /// Signal session records by whatsapp-rust address.
    pub sessions: Vec<(String, Vec<u8>)>,
    /// LID-to-phone mappings.
    pub lid_map: Vec<LidPnMappingEntry>,
    /// Rows left out, with why (an address with no counterpart, a malformed row).
    pub skipped: Vec<String>,
}

/// Converts a whole store. A bad device row fails the whole file; a bad secondary row
/// (pre-key, identity, session, mapping) is skipped and named, because WhatsApp rebuilds
/// those on its own (a new pre-key, a retry receipt, a fresh session).
pub fn store(s: &WmStore, now: i64) -> Result<Converted, ConvertError> {
    let device = device(&s.device, &s.pre_keys, s.nct_salt.as_deref())?;
    let mut out = Converted {
        device,
        pre_keys_uploaded: Vec::new(),
        pre_keys_pending: Vec::new(),
        identities: Vec::new(),
        sessions: Vec::new(),
        lid_map: Vec::new(),
        skipped: Vec::new(),
    };
    for pk in &s.pre_keys {
        match pre_key_record(pk) {
            Ok(rec) => {
                let id = pk.key_id as u32;
                if pk.uploaded {
                    out.pre_keys_uploaded.push((id, rec));
                } else {
                    out.pre_keys_pending.push((id, rec));
                }
            }
            Err(e) => out.skipped.push(format!("pre-key {}: {e}", pk.key_id)),
        }
    }
    for (addr, key) in &s.identities {
        match (signal_address(addr), <[u8; 32]>::try_from(key.as_slice())) {
            (Some(a), Ok(k)) => out.identities.push((a, k)),
            _ => out.skipped.push(format!("identity {addr:?}")),
        }
    }
    for (addr, record) in &s.sessions {
        match (signal_address(addr), record) {
            (Some(a), Some(r)) if !r.is_empty() => out.sessions.push((a, r.clone())),
            _ => out.skipped.push(format!("session {addr:?}")),
        }
    }
    for (lid, pn) in &s.lid_map {
        match lid_mapping(lid, pn, now) {
            Some(m) => out.lid_map.push(m),
            None => out.skipped.push(format!("LID mapping {lid:?}")),
        }
    }
    Ok(out)
}
