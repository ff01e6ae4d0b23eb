//! The server side of WhatsApp's Noise handshake (XX for a first connect, IK when the client
//! cached our static key), and the framed, counter-nonced AES-GCM stream after it.
//!
//! The client checks our certificate chain only structurally here: the signatures are zero
//! and are accepted because `wacore-noise`'s `danger-skip-cert-chain-verify` is on in every
//! build that contains this crate.

use anyhow::{anyhow, bail, Context, Result};
use buffa::Message;
use bytes::BytesMut;
use wacore_binary::consts::{NOISE_PATTERN_IK, NOISE_PATTERN_XX, NOISE_PATTERN_XXFALLBACK, WA_CONN_HEADER};
use wacore_libsignal::protocol::KeyPair;
use wacore_noise::{NoiseCipher, NoiseHandshake};
use waproto::whatsapp as wa;

/// The server's long-lived identity and the certificate chain that names it.
pub struct ServerIdentity {
    /// Static Noise key pair.
    pub key: KeyPair,
    /// Encoded `CertChain` whose leaf is `key`'s public half.
    pub cert_chain: Vec<u8>,
}

impl ServerIdentity {
    /// A fresh identity with a structurally valid chain (valid from 2023 to 2096).
    pub fn generate() -> Self {
        let key = KeyPair::generate(&mut rand::rng());
        let cert_chain = cert_chain_for(key.public_key.public_key_bytes());
        Self { key, cert_chain }
    }

    /// The identity with a key kept from before (a restarted server keeps its key, so a
    /// client's cached server key still works).
    pub fn from_key(key: KeyPair) -> Self {
        let cert_chain = cert_chain_for(key.public_key.public_key_bytes());
        Self { key, cert_chain }
    }

    fn static_pub(&self) -> &[u8] {
        self.key.public_key.public_key_bytes()
    }
}

fn cert_chain_for(leaf_key: &[u8]) -> Vec<u8> {
    use wa::cert_chain::noise_certificate::Details;
    let intermediate = Details {
        serial: Some(1),
        issuer_serial: Some(0),
        key: Some(vec![0x5a; 32]),
        not_before: Some(1_700_000_000),
        not_after: Some(4_000_000_000),
    }
    .encode_to_vec();
    let leaf = Details {
        serial: Some(2),
        issuer_serial: Some(1),
        key: Some(leaf_key.to_vec()),
        not_before: Some(1_700_000_000),
        not_after: Some(4_000_000_000),
    }
    .encode_to_vec();
    wa::CertChain {
        leaf: buffa::MessageField::some(wa::cert_chain::NoiseCertificate {
            details: Some(leaf),
            signature: Some(vec![0u8; 64]),
        }),
        intermediate: buffa::MessageField::some(wa::cert_chain::NoiseCertificate {
            details: Some(intermediate),
            signature: Some(vec![0u8; 64]),
        }),
    }
    .encode_to_vec()
}

/// What the handshake learned about the client.
pub struct Established {
    /// The client's static Noise public key: the device's identity on the wire.
    pub client_static: [u8; 32],
    /// The decoded login or registration payload.
    pub payload: wa::ClientPayload,
    /// Encrypts what we send.
    pub tx: CipherState,
    /// Decrypts what we receive.
    pub rx: CipherState,
}

/// One direction's cipher and its nonce counter.
pub struct CipherState {
    cipher: NoiseCipher,
    counter: u32,
}

impl CipherState {
    fn new(cipher: NoiseCipher) -> Self {
        Self { cipher, counter: 0 }
    }

    /// Encrypts one frame's plaintext.
    pub fn seal(&mut self, plaintext: &[u8]) -> Result<Vec<u8>> {
        let out = self
            .cipher
            .encrypt_with_counter(self.counter, plaintext)
            .map_err(|e| anyhow!("encrypt: {e}"))?;
        self.counter = self.counter.checked_add(1).context("send counter exhausted")?;
        Ok(out)
    }

    /// Decrypts one frame in place.
    pub fn open(&mut self, mut frame: BytesMut) -> Result<BytesMut> {
        self.cipher
            .decrypt_in_place_with_counter(self.counter, &mut frame)
            .map_err(|e| anyhow!("decrypt: {e}"))?;
        self.counter = self.counter.checked_add(1).context("receive counter exhausted")?;
        Ok(frame)
    }
}

/// The first message: a client hello, either XX (ephemeral only) or IK (with static and
/// payload). Returns the hello and what to answer.
pub enum Hello {
    /// XX: we answer with our hello and wait for the client's finish.
    Xx {
        noise: Box<NoiseHandshake>,
        server_eph: KeyPair,
        reply: Vec<u8>,
    },
    /// IK: done after our reply.
    Ik {
        established: Box<Established>,
        reply: Vec<u8>,
    },
}

fn key32(v: &[u8], what: &str) -> Result<[u8; 32]> {
    v.try_into().map_err(|_| anyhow!("{what} is {} bytes, not 32", v.len()))
}

/// Reads the client hello and builds the server hello.
pub fn read_client_hello(server: &ServerIdentity, frame: &[u8]) -> Result<Hello> {
    let msg = wa::HandshakeMessage::decode_from_slice(frame).context("client hello")?;
    let ch = msg.client_hello.into_option().context("no client hello")?;
    let eph = key32(ch.ephemeral.as_deref().context("no ephemeral")?, "client ephemeral")?;
    let server_eph = KeyPair::generate(&mut rand::rng());
    let server_eph_pub = key32(server_eph.public_key.public_key_bytes(), "server ephemeral")?;

    let mut pattern = NOISE_PATTERN_XX;
    if let (Some(enc_static), Some(enc_payload)) = (ch.r#static.as_ref(), ch.payload.as_ref()) {
        match ik_accept(server, &eph, &server_eph, enc_static, enc_payload) {
            Ok(hello) => return Ok(hello),
            // The client cached another server's key (a fake from an earlier run): answer
            // as WhatsApp does after a key rotation, with an XX-fallback hello.
            Err(e) => {
                tracing::debug!(error = %e, "IK hello not for us; falling back to XX");
                pattern = NOISE_PATTERN_XXFALLBACK;
            }
        }
    }

    let mut noise = NoiseHandshake::new(pattern, &WA_CONN_HEADER)?;
    noise.authenticate(&eph);
    noise.authenticate(&server_eph_pub);
    noise.mix_shared_secret(server_eph.private_key.serialize(), &eph)?;
    let enc_static = noise.encrypt(server.static_pub())?;
    noise.mix_shared_secret(server.key.private_key.serialize(), &eph)?;
    let enc_cert = noise.encrypt(&server.cert_chain)?;
    let reply = wa::HandshakeMessage {
        server_hello: buffa::MessageField::some(wa::handshake_message::ServerHello {
            ephemeral: Some(server_eph_pub.to_vec()),
            r#static: Some(enc_static),
            payload: Some(enc_cert),
            ..Default::default()
        }),
        ..Default::default()
    }
    .encode_to_vec();
    Ok(Hello::Xx {
        noise: Box::new(noise),
        server_eph,
        reply,
    })
}

/// Accepts an IK hello made for our static key.
fn ik_accept(
    server: &ServerIdentity,
    eph: &[u8; 32],
    server_eph: &KeyPair,
    enc_static: &[u8],
    enc_payload: &[u8],
) -> Result<Hello> {
    let eph = *eph;
    let server_eph_pub = key32(server_eph.public_key.public_key_bytes(), "server ephemeral")?;
    // IK: the client already knows our static key.
    let mut noise = NoiseHandshake::new(NOISE_PATTERN_IK, &WA_CONN_HEADER)?;
    noise.authenticate(server.static_pub());
    noise.authenticate(&eph);
    noise.mix_shared_secret(server.key.private_key.serialize(), &eph)?;
    let client_static = key32(&noise.decrypt(enc_static)?, "client static")?;
    noise.mix_shared_secret(server.key.private_key.serialize(), &client_static)?;
    let payload = noise.decrypt(enc_payload)?;
    noise.authenticate(&server_eph_pub);
    noise.mix_shared_secret(server_eph.private_key.serialize(), &eph)?;
    noise.mix_shared_secret(server_eph.private_key.serialize(), &client_static)?;
    let enc_cert = noise.encrypt(&server.cert_chain)?;
    let reply = wa::HandshakeMessage {
        server_hello: buffa::MessageField::some(wa::handshake_message::ServerHello {
            ephemeral: Some(server_eph_pub.to_vec()),
            r#static: None,
            payload: Some(enc_cert),
            ..Default::default()
        }),
        ..Default::default()
    }
    .encode_to_vec();
    let (k1, k2) = noise.finish()?;
    let payload = wa::ClientPayload::decode_from_slice(&payload).context("client payload")?;
    Ok(Hello::Ik {
        established: Box::new(Established {
            client_static,
            payload,
            tx: CipherState::new(k2),
            rx: CipherState::new(k1),
        }),
        reply,
    })
}

/// Reads the XX client finish: the client's static key and its payload.
pub fn read_client_finish(mut noise: NoiseHandshake, server_eph: &KeyPair, frame: &[u8]) -> Result<Established> {
    let msg = wa::HandshakeMessage::decode_from_slice(frame).context("client finish")?;
    let Some(cf) = msg.client_finish.into_option() else {
        bail!("expected a client finish");
    };
    let client_static = key32(
        &noise.decrypt(cf.r#static.as_deref().context("no static")?)?,
        "client static",
    )?;
    noise.mix_shared_secret(server_eph.private_key.serialize(), &client_static)?;
    let payload = noise.decrypt(cf.payload.as_deref().context("no payload")?)?;
    let (k1, k2) = noise.finish()?;
    let payload = wa::ClientPayload::decode_from_slice(&payload).context("client payload")?;
    Ok(Established {
        client_static,
        payload,
        tx: CipherState::new(k2),
        rx: CipherState::new(k1),
    })
}
