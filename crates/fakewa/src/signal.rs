//! The fake phones' private Signal state, so they can read what companions send them and
//! write to companions themselves.
//!
//! Every fake account's phone (device 0) keeps its identity key pair, signed pre-key, one-time
//! pre-keys, pairwise sessions and group sender keys here, in memory, behind
//! `wacore-libsignal`'s own store traits, and uses that crate's protocol code (X3DH, the double
//! ratchet, sender keys) unchanged: the same code the client runs, so a message one side
//! writes is exactly what the other side reads.
//!
//! Sessions are keyed by the peer's phone digits and device, whichever way (phone number or
//! LID) the client addressed the phone: the fake has one identity per device.
//!
//! The stores answer at once, so the protocol futures are driven by polling them once
//! ([`ready`]) inside the world's lock instead of on the runtime.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use anyhow::{anyhow, bail, Result};
use async_trait::async_trait;
use wacore_libsignal::protocol::{
    self as sig, CiphertextMessage, CiphertextMessageType, DeviceId, Direction, GenericSignedPreKey, IdentityChange,
    IdentityKey, IdentityKeyPair, KeyPair, PreKeyBundle, PreKeyId, PreKeyRecord, PreKeySignalMessage, ProtocolAddress,
    PublicKey, SenderKeyDistributionMessage, SenderKeyName, SenderKeyRecord, SessionRecord, SignalMessage,
    SignalProtocolError, SignedPreKeyId, SignedPreKeyRecord, Timestamp, UsePQRatchet,
};

use crate::world::Keys;

type SigResult<T> = std::result::Result<T, SignalProtocolError>;

/// The id of the phone's one signed pre-key.
const SIGNED_PREKEY_ID: u32 = 1;
/// How many one-time pre-keys a fake phone starts with.
const PREKEYS: u32 = 20;

/// One phone's private Signal state.
pub(crate) struct PhoneSignal {
    sessions: Sessions,
    identity: Identity,
    prekeys: PreKeys,
    signed: SignedPreKeys,
    sender_keys: SenderKeys,
    /// The account's app-state sync key (id, key), which the phone shares with each new
    /// companion.
    pub app_state_key: (Vec<u8>, [u8; 32]),
    /// Companion devices the phone has shared the app-state key with.
    pub app_state_shared: HashSet<u16>,
}

/// What a phone read from one `<enc>`.
pub(crate) struct Plain {
    /// The decoded message.
    pub message: waproto::whatsapp::Message,
}

impl PhoneSignal {
    /// Generates a phone's keys around its account identity: the public half goes to the
    /// directory (`Keys`, handed out in pre-key bundles), the private half stays here.
    pub(crate) fn generate(identity: &KeyPair) -> (Keys, Self) {
        let rng = &mut rand::rng();
        let spk = KeyPair::generate(rng);
        let sig = identity
            .private_key
            .calculate_signature(&spk.public_key.serialize(), rng)
            .map(|s| s.to_vec())
            .unwrap_or_default();
        let mut public = BTreeMap::new();
        let mut prekeys = HashMap::new();
        for id in 1..=PREKEYS {
            let k = KeyPair::generate(rng);
            public.insert(id, key32(k.public_key.public_key_bytes()));
            prekeys.insert(PreKeyId::from(id), PreKeyRecord::new(id.into(), &k));
        }
        let reg_id = rand::random::<u32>() & 0x3fff;
        let keys = Keys {
            reg_id,
            identity: key32(identity.public_key.public_key_bytes()),
            skey: Some((SIGNED_PREKEY_ID, key32(spk.public_key.public_key_bytes()), sig.clone())),
            prekeys: public,
        };
        let mut signed = HashMap::new();
        signed.insert(
            SignedPreKeyId::from(SIGNED_PREKEY_ID),
            SignedPreKeyRecord::new(
                SIGNED_PREKEY_ID.into(),
                Timestamp::from_epoch_millis(crate::world::now() * 1000),
                &spk,
                &sig,
            ),
        );
        let me = Self {
            sessions: Sessions(HashMap::new()),
            identity: Identity {
                pair: IdentityKeyPair::from(identity.clone()),
                reg_id,
                known: HashMap::new(),
            },
            prekeys: PreKeys(prekeys),
            signed: SignedPreKeys(signed),
            sender_keys: SenderKeys(HashMap::new()),
            app_state_key: (rand::random::<[u8; 6]>().to_vec(), rand::random::<[u8; 32]>()),
            app_state_shared: HashSet::new(),
        };
        (keys, me)
    }

    /// Decrypts a pairwise `<enc>` (`pkmsg` or `msg`) from device `device` of `peer`.
    pub(crate) fn decrypt(&mut self, peer: &str, device: u16, kind: &str, version: u8, bytes: &[u8]) -> Result<Plain> {
        let addr = address(peer, device);
        let ct = match kind {
            "pkmsg" => CiphertextMessage::PreKeySignalMessage(PreKeySignalMessage::try_from(bytes)?),
            "msg" => CiphertextMessage::SignalMessage(SignalMessage::try_from(bytes)?),
            other => bail!("not a pairwise message: {other}"),
        };
        let res = ready(sig::message_decrypt(
            &ct,
            &addr,
            &mut self.sessions,
            &mut self.identity,
            &mut self.prekeys,
            &self.signed,
            &mut rand::rng(),
            UsePQRatchet::No,
        ))??;
        // One-time pre-keys are used once; the session made from it is already stored.
        if let Some(id) = res.consumed_prekey_id {
            self.prekeys.0.remove(&id);
        }
        Ok(Plain {
            message: wacore::messages::decode_plaintext(&res.plaintext, version)?,
        })
    }

    /// Takes in a sender key `peer`'s device sent for `group`.
    pub(crate) fn process_skdm(&mut self, group: &str, peer: &str, device: u16, skdm: &[u8]) -> Result<()> {
        let skdm = SenderKeyDistributionMessage::try_from(skdm)?;
        let name = sender_key_name(group, peer, device);
        ready(sig::process_sender_key_distribution_message(
            &name,
            &skdm,
            &mut self.sender_keys,
        ))??;
        Ok(())
    }

    /// Decrypts a group `skmsg` from device `device` of `peer`.
    pub(crate) fn group_decrypt(
        &mut self,
        group: &str,
        peer: &str,
        device: u16,
        version: u8,
        bytes: &[u8],
    ) -> Result<Plain> {
        let name = sender_key_name(group, peer, device);
        let plain = ready(sig::group_decrypt(bytes, &mut self.sender_keys, &name))??;
        Ok(Plain {
            message: wacore::messages::decode_plaintext(&plain, version)?,
        })
    }

    /// Whether this phone has a session with device `device` of `peer`.
    pub(crate) fn has_session(&self, peer: &str, device: u16) -> bool {
        self.sessions.0.contains_key(&address(peer, device).to_string())
    }

    /// Drops the session with device `device` of `peer` (it asked for a retry: it lost it).
    pub(crate) fn forget_session(&mut self, peer: &str, device: u16) {
        self.sessions.0.remove(&address(peer, device).to_string());
    }

    /// Starts a session with device `device` of `peer` from its uploaded keys, taking the
    /// one-time pre-key `prekey` if there is one.
    pub(crate) fn start_session(
        &mut self,
        peer: &str,
        device: u16,
        keys: &Keys,
        prekey: Option<(u32, [u8; 32])>,
    ) -> Result<()> {
        let (spk_id, spk, spk_sig) = keys
            .skey
            .clone()
            .ok_or_else(|| anyhow!("the device has no signed pre-key"))?;
        let prekey = match prekey {
            Some((id, k)) => Some((PreKeyId::from(id), PublicKey::from_djb_public_key_bytes(&k)?)),
            None => None,
        };
        let bundle = PreKeyBundle::new(
            keys.reg_id,
            DeviceId::from(u32::from(device)),
            prekey,
            SignedPreKeyId::from(spk_id),
            PublicKey::from_djb_public_key_bytes(&spk)?,
            spk_sig,
            IdentityKey::new(PublicKey::from_djb_public_key_bytes(&keys.identity)?),
        )?;
        ready(sig::process_prekey_bundle(
            &address(peer, device),
            &mut self.sessions,
            &mut self.identity,
            &bundle,
            &mut rand::rng(),
            UsePQRatchet::No,
        ))??;
        Ok(())
    }

    /// Encrypts `plain` (already padded) for device `device` of `peer`, over the session
    /// [`Self::start_session`] made; returns the `<enc type>` and the bytes.
    pub(crate) fn encrypt(&mut self, peer: &str, device: u16, plain: &[u8]) -> Result<(&'static str, Vec<u8>)> {
        let ct = ready(sig::message_encrypt(
            plain,
            &address(peer, device),
            &mut self.sessions,
            &mut self.identity,
        ))??;
        let kind = match ct.message_type() {
            CiphertextMessageType::PreKey => "pkmsg",
            CiphertextMessageType::Whisper => "msg",
            other => bail!("unexpected pairwise message type {other:?}"),
        };
        Ok((kind, ct.serialize().to_vec()))
    }

    /// The sender key distribution message of this phone (device 0 of `me`) for `group`,
    /// creating the sender key on first use.
    pub(crate) fn own_skdm(&mut self, group: &str, me: &str) -> Result<Vec<u8>> {
        let name = sender_key_name(group, me, 0);
        let skdm = ready(sig::create_sender_key_distribution_message(
            &name,
            &mut self.sender_keys,
            &mut rand::rng(),
        ))??;
        Ok(skdm.serialized().to_vec())
    }

    /// Encrypts `plain` (already padded) with this phone's sender key for `group`.
    pub(crate) fn group_encrypt(&mut self, group: &str, me: &str, plain: &[u8]) -> Result<Vec<u8>> {
        let name = sender_key_name(group, me, 0);
        let skm = ready(sig::group_encrypt(
            &mut self.sender_keys,
            &name,
            plain,
            &mut rand::rng(),
        ))??;
        Ok(skm.serialized().to_vec())
    }
}

/// The text a person would see in `m`, if it is a text message.
pub(crate) fn text_of(m: &waproto::whatsapp::Message) -> Option<String> {
    m.conversation
        .clone()
        .or_else(|| m.extended_text_message.as_option().and_then(|e| e.text.clone()))
}

/// The sender key carried by `m`, if any: (group id, distribution message bytes).
pub(crate) fn skdm_of(m: &waproto::whatsapp::Message) -> Option<(String, Vec<u8>)> {
    let d = m.sender_key_distribution_message.as_option()?;
    Some((
        d.group_id.clone().unwrap_or_default(),
        d.axolotl_sender_key_distribution_message.clone()?,
    ))
}

fn address(peer: &str, device: u16) -> ProtocolAddress {
    ProtocolAddress::new(peer, DeviceId::from(u32::from(device)))
}

fn sender_key_name(group: &str, peer: &str, device: u16) -> SenderKeyName {
    SenderKeyName::from_parts(group, &address(peer, device).to_string())
}

fn key32(b: &[u8]) -> [u8; 32] {
    let mut k = [0u8; 32];
    let n = b.len().min(32);
    k[..n].copy_from_slice(&b[..n]);
    k
}

/// Drives a protocol future over the in-memory stores, which never wait: one poll finishes
/// it. A future that does wait is a bug in this module, reported as an error.
fn ready<F: Future>(f: F) -> Result<F::Output> {
    let mut f = pin!(f);
    let mut cx = Context::from_waker(Waker::noop());
    match f.as_mut().poll(&mut cx) {
        Poll::Ready(v) => Ok(v),
        Poll::Pending => bail!("an in-memory Signal store did not answer at once"),
    }
}

// ----- the in-memory stores -----

struct Sessions(HashMap<String, SessionRecord>);

#[async_trait]
impl sig::SessionStore for Sessions {
    async fn load_session(&self, address: &ProtocolAddress) -> SigResult<Option<SessionRecord>> {
        Ok(self.0.get(&address.to_string()).cloned())
    }

    async fn has_session(&self, address: &ProtocolAddress) -> SigResult<bool> {
        Ok(self.0.contains_key(&address.to_string()))
    }

    async fn store_session(&mut self, address: &ProtocolAddress, record: SessionRecord) -> SigResult<()> {
        self.0.insert(address.to_string(), record);
        Ok(())
    }
}

struct Identity {
    pair: IdentityKeyPair,
    reg_id: u32,
    known: HashMap<String, IdentityKey>,
}

#[async_trait]
impl sig::IdentityKeyStore for Identity {
    async fn get_identity_key_pair(&self) -> SigResult<IdentityKeyPair> {
        Ok(self.pair.clone())
    }

    async fn get_local_registration_id(&self) -> SigResult<u32> {
        Ok(self.reg_id)
    }

    async fn save_identity(&mut self, address: &ProtocolAddress, identity: &IdentityKey) -> SigResult<IdentityChange> {
        let changed = self
            .known
            .insert(address.to_string(), *identity)
            .is_some_and(|old| old != *identity);
        Ok(IdentityChange::from_changed(changed))
    }

    /// A fake phone trusts every identity: re-paired companions get new keys.
    async fn is_trusted_identity(&self, _: &ProtocolAddress, _: &IdentityKey, _: Direction) -> SigResult<bool> {
        Ok(true)
    }

    async fn get_identity(&self, address: &ProtocolAddress) -> SigResult<Option<IdentityKey>> {
        Ok(self.known.get(&address.to_string()).copied())
    }
}

struct PreKeys(HashMap<PreKeyId, PreKeyRecord>);

#[async_trait]
impl sig::PreKeyStore for PreKeys {
    async fn get_pre_key(&self, id: PreKeyId) -> SigResult<PreKeyRecord> {
        self.0.get(&id).cloned().ok_or(SignalProtocolError::InvalidPreKeyId)
    }

    async fn save_pre_key(&mut self, id: PreKeyId, record: &PreKeyRecord) -> SigResult<()> {
        self.0.insert(id, record.clone());
        Ok(())
    }

    async fn remove_pre_key(&mut self, id: PreKeyId) -> SigResult<()> {
        self.0.remove(&id);
        Ok(())
    }
}

struct SignedPreKeys(HashMap<SignedPreKeyId, SignedPreKeyRecord>);

#[async_trait]
impl sig::SignedPreKeyStore for SignedPreKeys {
    async fn get_signed_pre_key(&self, id: SignedPreKeyId) -> SigResult<SignedPreKeyRecord> {
        self.0
            .get(&id)
            .cloned()
            .ok_or(SignalProtocolError::InvalidSignedPreKeyId)
    }

    async fn save_signed_pre_key(&mut self, id: SignedPreKeyId, record: &SignedPreKeyRecord) -> SigResult<()> {
        self.0.insert(id, record.clone());
        Ok(())
    }
}

struct SenderKeys(HashMap<String, SenderKeyRecord>);

#[async_trait]
impl sig::SenderKeyStore for SenderKeys {
    async fn store_sender_key(&mut self, name: &SenderKeyName, record: SenderKeyRecord) -> SigResult<()> {
        self.0.insert(name.cache_key().to_string(), record);
        Ok(())
    }

    async fn load_sender_key(&self, name: &SenderKeyName) -> SigResult<Option<SenderKeyRecord>> {
        Ok(self.0.get(name.cache_key()).cloned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn phone() -> (Keys, PhoneSignal) {
        PhoneSignal::generate(&KeyPair::generate(&mut rand::rng()))
    }

    fn text(s: &str) -> Vec<u8> {
        let m = waproto::whatsapp::Message {
            conversation: Some(s.to_string()),
            ..Default::default()
        };
        wacore::messages::MessageUtils::encode_and_pad(&m)
    }

    #[test]
    fn two_phones_talk_both_ways_and_in_a_group() {
        let (a_keys, mut a) = phone();
        let (b_keys, mut b) = phone();
        let pk = b_keys.prekeys.iter().next().map(|(k, v)| (*k, *v));
        a.start_session("b", 0, &b_keys, pk).unwrap();
        let (kind, ct) = a.encrypt("b", 0, &text("one")).unwrap();
        assert_eq!(kind, "pkmsg");
        let got = b.decrypt("a", 0, kind, 2, &ct).unwrap();
        assert_eq!(text_of(&got.message).as_deref(), Some("one"));
        // B answers over the session the pkmsg made, A then writes plain `msg`s.
        let (kind, ct) = b.encrypt("a", 0, &text("two")).unwrap();
        assert_eq!(kind, "msg");
        assert_eq!(
            text_of(&a.decrypt("b", 0, kind, 2, &ct).unwrap().message).as_deref(),
            Some("two")
        );
        let (kind, ct) = a.encrypt("b", 0, &text("three")).unwrap();
        assert_eq!(kind, "msg");
        assert_eq!(
            text_of(&b.decrypt("a", 0, kind, 2, &ct).unwrap().message).as_deref(),
            Some("three")
        );
        // The one-time pre-key is gone once used.
        assert!(!b.prekeys.0.contains_key(&PreKeyId::from(pk.unwrap().0)));

        let skdm = a.own_skdm("g@g.us", "a").unwrap();
        b.process_skdm("g@g.us", "a", 0, &skdm).unwrap();
        let ct = a.group_encrypt("g@g.us", "a", &text("halo")).unwrap();
        let got = b.group_decrypt("g@g.us", "a", 0, 2, &ct).unwrap();
        assert_eq!(text_of(&got.message).as_deref(), Some("halo"));
        let _ = a_keys;
    }
}
