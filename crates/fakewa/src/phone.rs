//! What the primary phone and the directory do: linking a device (QR scan or pairing code),
//! answering who is on WhatsApp and with which devices, handing out pre-key bundles, and
//! accepting messages.

use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use base64::Engine as _;
use buffa::Message;
use hmac::{KeyInit, Mac};
use wacore::pair_code::PairCodeUtils;
use wacore_binary::builder::NodeBuilder;
use wacore_binary::Node;
use wacore_libsignal::protocol::{KeyPair, PublicKey};
use waproto::whatsapp as wa;

use crate::conn::{After, ConnCtx};
use crate::transport::Ctl;
use crate::world::{attr, bytes_of, error, pn_jid, result, text_of, Keys, SentMessage, SERVER};
use crate::FakeWhatsApp;

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

const ADV_PREFIX_ACCOUNT_SIGNATURE: &[u8] = &[6, 0];

/// The phone of `phone` scans `qr` (`ref,noise,identity,adv_secret[,type]`).
pub(crate) fn scan_qr(fake: &FakeWhatsApp, qr: &str, phone: &str) -> Result<()> {
    let parts: Vec<&str> = qr.split(',').collect();
    if parts.len() < 4 {
        bail!("not a WhatsApp QR string");
    }
    let b64 = base64::engine::general_purpose::STANDARD;
    let noise = b64.decode(parts[1]).context("noise key")?;
    let identity = b64.decode(parts[2]).context("identity key")?;
    let adv_secret = b64.decode(parts[3]).context("adv secret")?;
    let conn = {
        let w = fake.world();
        w.regs
            .iter()
            .find(|(_, r)| r.refs.iter().any(|x| x == parts[0]) && r.noise.as_slice() == noise.as_slice())
            .map(|(id, _)| *id)
    }
    .ok_or_else(|| anyhow!("no connection is showing this QR code"))?;
    send_pair_success(fake, conn, phone, &identity, &adv_secret)
}

/// Builds and sends `pair-success` to the unpaired connection `conn`.
fn send_pair_success(
    fake: &FakeWhatsApp,
    conn: u64,
    phone: &str,
    companion_identity: &[u8],
    adv_secret: &[u8],
) -> Result<()> {
    let (node, ..) = {
        let mut w = fake.world();
        let (device, lid, account_key) = {
            let acc = w.ensure_account(phone);
            let device = acc.next_device.max(1);
            acc.next_device = device + 1;
            (device, acc.lid.clone(), acc.phone_identity.clone())
        };
        let identity_bytes = signed_identity(&account_key, companion_identity, adv_secret, device)?;
        let reg = w.regs.get_mut(&conn).context("the connection went away")?;
        reg.pairing = Some((phone.to_string(), device));
        let id = w.next_id();
        let node = NodeBuilder::new("iq")
            .attr("from", SERVER)
            .attr("type", "set")
            .attr("id", id)
            .attr("xmlns", "md")
            .children([NodeBuilder::new("pair-success")
                .children([
                    NodeBuilder::new("device-identity")
                        .attr("key-index", device.to_string())
                        .bytes(identity_bytes)
                        .build(),
                    NodeBuilder::new("platform").attr("name", "android").build(),
                    // WhatsApp sends `biz` for business accounts only; the fake always does so
                    // the client learns a push name and skips the app-state bootstrap.
                    NodeBuilder::new("biz")
                        .attr("name", format!("Fake {}", &phone[phone.len().saturating_sub(4)..]))
                        .build(),
                    NodeBuilder::new("device")
                        .attr("jid", format!("{phone}:{device}@{SERVER}"))
                        .attr("lid", format!("{lid}:{device}@lid"))
                        .build(),
                ])
                .build()])
            .build();
        (node, device)
    };
    if !fake.send_to_conn(conn, Ctl::Send(node)) {
        bail!("the connection went away");
    }
    Ok(())
}

/// `ADVSignedDeviceIdentityHMAC` as the phone makes it: the device identity signed with the
/// account key, HMAC'd with the secret shared with the companion.
fn signed_identity(account: &KeyPair, companion_identity: &[u8], adv_secret: &[u8], key_index: u16) -> Result<Vec<u8>> {
    let details = wa::ADVDeviceIdentity {
        raw_id: Some(rand::random::<u32>()),
        timestamp: Some(crate::world::now()),
        key_index: Some(u32::from(key_index)),
        account_type: Some(wa::ADVEncryptionType::E2EE),
        device_type: Some(wa::ADVEncryptionType::E2EE),
    }
    .encode_to_vec();
    let mut msg = Vec::new();
    msg.extend_from_slice(ADV_PREFIX_ACCOUNT_SIGNATURE);
    msg.extend_from_slice(&details);
    msg.extend_from_slice(companion_identity);
    let sig = account
        .private_key
        .calculate_signature(&msg, &mut rand::rng())
        .map_err(|e| anyhow!("sign: {e}"))?;
    let signed = wa::ADVSignedDeviceIdentity {
        details: Some(details),
        account_signature_key: Some(account.public_key.public_key_bytes().to_vec()),
        account_signature: Some(sig.to_vec()),
        device_signature: None,
    }
    .encode_to_vec();
    let mut mac = <HmacSha256 as KeyInit>::new_from_slice(adv_secret).map_err(|e| anyhow!("hmac: {e}"))?;
    mac.update(&signed);
    let hmac = mac.finalize().into_bytes().to_vec();
    Ok(wa::ADVSignedDeviceIdentityHMAC {
        details: Some(signed),
        hmac: Some(hmac),
        account_type: Some(wa::ADVEncryptionType::E2EE),
    }
    .encode_to_vec())
}

/// The client answered one of our iqs: the only one that matters is its signature of the
/// pairing, after which the device exists and the stream restarts (515).
pub(crate) fn on_iq_answer(fake: &FakeWhatsApp, ctx: &mut ConnCtx, iq: &Node) {
    if attr(iq, "type") != "result" || iq.get_optional_child("pair-device-sign").is_none() {
        return;
    }
    let mut w = fake.world();
    let Some(reg) = w.regs.remove(&ctx.id) else { return };
    let Some((phone, device)) = reg.pairing.clone() else {
        return;
    };
    let acc = w.ensure_account(&phone);
    acc.devices.insert(
        device,
        crate::world::Device {
            noise: Some(reg.noise),
            keys: reg.keys.clone(),
        },
    );
    drop(w);
    ctx.send(crate::world::stream_error("515"));
    ctx.after = After::Close;
}

// ----- pairing code -----

/// One pairing-code flow: the companion's hello, and the phone's answer once the code is
/// typed in.
pub(crate) struct CodeFlow {
    conn: u64,
    phone: String,
    pairing_ref: Vec<u8>,
    wrapped_companion_eph: Vec<u8>,
    primary_eph: Option<KeyPair>,
    companion_eph_pub: Option<[u8; 32]>,
}

/// `link_code_companion_reg`: stage `companion_hello` registers the code request (or refuses
/// it, by the behaviour table), `companion_finish` completes the link.
pub(crate) fn link_code(fake: &FakeWhatsApp, ctx: &mut ConnCtx, iq: &Node) -> Node {
    let Some(reg) = iq.get_optional_child("link_code_companion_reg") else {
        return error(iq, 400, "bad-request");
    };
    let stage = attr(reg, "stage");
    let phone = attr(reg, "jid").split('@').next().unwrap_or_default().to_string();
    match stage.as_str() {
        "companion_hello" => {
            if phone.ends_with("0429") {
                return NodeBuilder::new("iq")
                    .attr("type", "error")
                    .attr("id", attr(iq, "id"))
                    .attr("from", SERVER)
                    .children([NodeBuilder::new("error")
                        .attr("code", "429")
                        .attr("text", "rate-overlimit")
                        .attr("backoff", "60")
                        .build()])
                    .build();
            }
            let wrapped = bytes_of(reg.get_optional_child("link_code_pairing_wrapped_companion_ephemeral_pub"));
            let mut w = fake.world();
            let pairing_ref = format!("2@{}", w.next_id()).into_bytes();
            w.ensure_account(&phone);
            w.code_flows.retain(|x| x.phone != phone);
            w.code_flows.push(CodeFlow {
                conn: ctx.id,
                phone,
                pairing_ref: pairing_ref.clone(),
                wrapped_companion_eph: wrapped,
                primary_eph: None,
                companion_eph_pub: None,
            });
            drop(w);
            result(
                iq,
                vec![NodeBuilder::new("link_code_companion_reg")
                    .children([NodeBuilder::new("link_code_pairing_ref").bytes(pairing_ref).build()])
                    .build()],
            )
        }
        "companion_finish" => match finish_code(fake, ctx, reg) {
            Ok(()) => result(iq, Vec::new()),
            Err(e) => {
                tracing::debug!(error = %e, "fake refused companion_finish");
                error(iq, 400, "bad-request")
            }
        },
        _ => error(iq, 400, "bad-request"),
    }
}

/// The user types `code` into the phone of `phone`: the phone says hello to the companion.
pub(crate) fn enter_code(fake: &FakeWhatsApp, phone: &str, code: &str) -> Result<()> {
    let (conn, pairing_ref, wrapped) = {
        let w = fake.world();
        let flow = w
            .code_flows
            .iter()
            .rev()
            .find(|x| x.phone == phone)
            .context("no pairing code is outstanding for this number")?;
        (flow.conn, flow.pairing_ref.clone(), flow.wrapped_companion_eph.clone())
    };
    let code = code.replace('-', "").to_uppercase();
    // The companion's ephemeral key is wrapped with the code; unwrapping with a wrong code
    // gives garbage and the link fails later, as on a real phone.
    let companion_eph = PairCodeUtils::decrypt_primary_ephemeral_pub(&wrapped, &code).map_err(|e| anyhow!("{e}"))?;
    let primary_eph = KeyPair::generate(&mut rand::rng());
    let mut eph_pub = [0u8; 32];
    eph_pub.copy_from_slice(primary_eph.public_key.public_key_bytes());
    let wrapped_primary = PairCodeUtils::encrypt_ephemeral_pub(&eph_pub, &code);
    let primary_identity = fake.world().ensure_account(phone).phone_identity.public_key;
    {
        let mut w = fake.world();
        if let Some(flow) = w.code_flows.iter_mut().rev().find(|x| x.phone == phone) {
            flow.primary_eph = Some(primary_eph);
            flow.companion_eph_pub = Some(companion_eph);
        }
    }
    let id = fake.world().next_id();
    let node = NodeBuilder::new("notification")
        .attr("type", "link_code_companion_reg")
        .attr("from", SERVER)
        .attr("id", id)
        .children([NodeBuilder::new("link_code_companion_reg")
            .attr("stage", "primary_hello")
            .children([
                NodeBuilder::new("link_code_pairing_wrapped_primary_ephemeral_pub")
                    .bytes(wrapped_primary.to_vec())
                    .build(),
                NodeBuilder::new("primary_identity_pub")
                    .bytes(primary_identity.public_key_bytes().to_vec())
                    .build(),
                NodeBuilder::new("link_code_pairing_ref").bytes(pairing_ref).build(),
            ])
            .build()])
        .build();
    if !fake.send_to_conn(conn, Ctl::Send(node)) {
        bail!("the connection that asked for the code went away");
    }
    Ok(())
}

fn finish_code(fake: &FakeWhatsApp, ctx: &mut ConnCtx, reg: &Node) -> Result<()> {
    let wrapped_bundle = bytes_of(reg.get_optional_child("link_code_pairing_wrapped_key_bundle"));
    let companion_identity = bytes_of(reg.get_optional_child("companion_identity_public"));
    let pairing_ref = bytes_of(reg.get_optional_child("link_code_pairing_ref"));
    let (phone, primary_eph, companion_eph) = {
        let mut w = fake.world();
        let pos = w
            .code_flows
            .iter()
            .position(|x| x.pairing_ref == pairing_ref && x.conn == ctx.id)
            .context("unknown pairing ref")?;
        let flow = w.code_flows.remove(pos);
        (
            flow.phone,
            flow.primary_eph.context("the phone has not said hello")?,
            flow.companion_eph_pub.context("the phone has not said hello")?,
        )
    };
    if wrapped_bundle.len() < 32 + 12 + 16 {
        bail!("short key bundle");
    }
    let companion_eph = PublicKey::from_djb_public_key_bytes(&companion_eph)?;
    let eph_shared = primary_eph.private_key.calculate_agreement(&companion_eph)?;
    let mut enc_key = [0u8; 32];
    wacore::crypto::hkdf_sha256_into(
        &eph_shared,
        Some(&wrapped_bundle[..32]),
        b"link_code_pairing_key_bundle_encryption_key",
        &mut enc_key,
    )
    .map_err(|e| anyhow!("{e:?}"))?;
    let mut iv = [0u8; 12];
    iv.copy_from_slice(&wrapped_bundle[32..44]);
    let mut bundle = Vec::new();
    wacore_libsignal::crypto::aes_256_gcm_decrypt(&enc_key, &iv, b"", &wrapped_bundle[44..], &mut bundle)
        .map_err(|e| anyhow!("bundle: {e:?}"))?;
    if bundle.len() != 96 || bundle[..32] != companion_identity[..] {
        bail!("key bundle does not match the companion");
    }
    let primary_identity = fake.world().ensure_account(&phone).phone_identity.clone();
    let companion_id_pub = PublicKey::from_djb_public_key_bytes(&companion_identity)?;
    let identity_shared = primary_identity.private_key.calculate_agreement(&companion_id_pub)?;
    let mut combined = Vec::with_capacity(96);
    combined.extend_from_slice(&eph_shared);
    combined.extend_from_slice(&identity_shared);
    combined.extend_from_slice(&bundle[64..96]);
    let mut adv_secret = [0u8; 32];
    wacore::crypto::hkdf_sha256_into(&combined, None, b"adv_secret", &mut adv_secret).map_err(|e| anyhow!("{e:?}"))?;
    // pair-success follows the iq result, as on the real server.
    let fake2 = fake.clone();
    let conn = ctx.id;
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(20)).await;
        if let Err(e) = send_pair_success(&fake2, conn, &phone, &companion_identity, &adv_secret) {
            tracing::debug!(error = %e, "fake could not send pair-success");
        }
    });
    Ok(())
}

// ----- directory: usync and pre-key bundles -----

fn user_of(jid: &str) -> String {
    let user = jid.split('@').next().unwrap_or_default();
    user.split(':').next().unwrap_or_default().to_string()
}

pub(crate) fn usync(fake: &FakeWhatsApp, ctx: &ConnCtx, iq: &Node) -> Node {
    let Some(us) = iq.get_optional_child("usync") else {
        return error(iq, 400, "bad-request");
    };
    let query: Vec<String> = us
        .get_optional_child("query")
        .and_then(|q| q.children())
        .map(|c| c.iter().map(|n| n.tag.to_string()).collect())
        .unwrap_or_default();
    let wants = |t: &str| query.iter().any(|q| q == t);
    let mut users = Vec::new();
    let w = fake.world();
    let _ = ctx;
    if let Some(list) = us.get_optional_child("list") {
        for u in list.get_children_by_tag("user") {
            let jid = attr(u, "jid");
            let contact = u.get_optional_child("contact").map(|c| text_of(Some(c)));
            // Who is asked about: by phone number (contact), by PN JID or by LID JID.
            let (asked_phone, by_lid) = if let Some(c) = &contact {
                (c.trim_start_matches('+').to_string(), false)
            } else if jid.ends_with("@lid") {
                (w.phone_of_lid(&user_of(&jid)).unwrap_or_default(), true)
            } else {
                (user_of(&jid), false)
            };
            let phone = w.canonical.get(&asked_phone).cloned().unwrap_or(asked_phone.clone());
            let acc = w.accounts.get(&phone);
            let mut children = Vec::new();
            if wants("contact") {
                let mut c = NodeBuilder::new("contact");
                if let Some(code) = w.usync_errors.get(&asked_phone) {
                    c = c.children([NodeBuilder::new("error")
                        .attr("code", code.to_string())
                        .attr("text", if *code == 429 { "rate-overlimit" } else { "error" })
                        .build()]);
                } else {
                    c = c.attr("type", if acc.is_some() { "in" } else { "out" });
                    if let Some(asked) = &contact {
                        c = c.string_content(asked.as_str());
                    }
                }
                children.push(c.build());
            }
            if wants("lid") {
                let mut l = NodeBuilder::new("lid");
                if let Some(a) = acc {
                    l = l.attr("val", format!("{}@lid", a.lid));
                }
                children.push(l.build());
            }
            if wants("devices") {
                let mut dl = NodeBuilder::new("device-list");
                if let Some(a) = acc {
                    dl = dl
                        .attr("hash", format!("2:{}", a.lid))
                        .children([NodeBuilder::new("device").attr("id", "0").build()]);
                }
                children.push(NodeBuilder::new("devices").children([dl.build()]).build());
            }
            let out_jid = match (acc, by_lid) {
                (Some(a), true) => format!("{}@lid", a.lid),
                (Some(a), false) => pn_jid(&a.phone),
                (None, _) if !jid.is_empty() => jid.clone(),
                (None, _) => pn_jid(&phone),
            };
            let mut ub = NodeBuilder::new("user").attr("jid", out_jid);
            if let (Some(a), true) = (acc, by_lid) {
                ub = ub.attr("pn_jid", pn_jid(&a.phone));
            }
            users.push(ub.children(children).build());
        }
    }
    result(
        iq,
        vec![NodeBuilder::new("usync")
            .children([NodeBuilder::new("list").children(users).build()])
            .build()],
    )
}

fn bundle_node(jid: &str, keys: &Keys) -> Node {
    let mut children = vec![
        NodeBuilder::new("registration")
            .bytes(keys.reg_id.to_be_bytes().to_vec())
            .build(),
        NodeBuilder::new("type").bytes(vec![5u8]).build(),
        NodeBuilder::new("identity").bytes(keys.identity.to_vec()).build(),
    ];
    if let Some((id, v)) = keys.prekeys.iter().next() {
        children.push(
            NodeBuilder::new("key")
                .children([
                    NodeBuilder::new("id").bytes(id.to_be_bytes()[1..].to_vec()).build(),
                    NodeBuilder::new("value").bytes(v.to_vec()).build(),
                ])
                .build(),
        );
    }
    if let Some((id, v, sig)) = &keys.skey {
        children.push(
            NodeBuilder::new("skey")
                .children([
                    NodeBuilder::new("id").bytes(id.to_be_bytes()[1..].to_vec()).build(),
                    NodeBuilder::new("value").bytes(v.to_vec()).build(),
                    NodeBuilder::new("signature").bytes(sig.clone()).build(),
                ])
                .build(),
        );
    }
    NodeBuilder::new("user").attr("jid", jid).children(children).build()
}

pub(crate) fn prekey_bundles(fake: &FakeWhatsApp, iq: &Node) -> Node {
    let mut users = Vec::new();
    let mut w = fake.world();
    if let Some(key) = iq.get_optional_child("key") {
        for u in key.get_children_by_tag("user") {
            let jid = attr(u, "jid");
            let (user_dev, server) = jid.split_once('@').unwrap_or((jid.as_str(), ""));
            let (user, dev) = user_dev.split_once(':').unwrap_or((user_dev, "0"));
            let device: u16 = dev.parse().unwrap_or(0);
            let phone = if server == "lid" {
                w.phone_of_lid(user).unwrap_or_default()
            } else {
                user.to_string()
            };
            let keys = w
                .accounts
                .get_mut(&phone)
                .and_then(|a| a.devices.get_mut(&device))
                .map(|d| {
                    let k = d.keys.clone();
                    // One-time pre-keys are handed out once.
                    if let Some(first) = d.keys.prekeys.keys().next().copied() {
                        d.keys.prekeys.remove(&first);
                    }
                    k
                });
            match keys {
                Some(k) => users.push(bundle_node(&jid, &k)),
                None => users.push(
                    NodeBuilder::new("user")
                        .attr("jid", jid)
                        .children([NodeBuilder::new("error")
                            .attr("code", "404")
                            .attr("text", "item-not-found")
                            .build()])
                        .build(),
                ),
            }
        }
    }
    result(iq, vec![NodeBuilder::new("list").children(users).build()])
}

// ----- messages -----

pub(crate) fn on_message(fake: &FakeWhatsApp, ctx: &mut ConnCtx, msg: &Node) {
    let to = attr(msg, "to");
    let id = attr(msg, "id");
    let from = ctx.device.as_ref().map(|(p, _)| p.clone()).unwrap_or_default();
    let mut recipients: Vec<String> = msg
        .get_optional_child("participants")
        .map(|p| p.get_children_by_tag("to").map(|t| attr(t, "jid")).collect())
        .unwrap_or_default();
    recipients.sort();
    let err = {
        let w = fake.world();
        if to.ends_with("@g.us") {
            match w.groups.get(&to) {
                None => Some("404"),
                Some(g) if !g.members.contains_key(&from) => Some("403"),
                Some(g) if g.announce && !g.members.get(&from).is_some_and(|m| m.0) => Some("403"),
                Some(_) => None,
            }
        } else {
            let phone = if to.ends_with("@lid") {
                w.phone_of_lid(&user_of(&to)).unwrap_or_default()
            } else {
                user_of(&to)
            };
            (!w.accounts.contains_key(&phone)).then_some("404")
        }
    };
    let mut ack = NodeBuilder::new("ack")
        .attr("class", "message")
        .attr("id", id.clone())
        .attr("from", to.clone())
        .attr("t", crate::world::now().to_string());
    if let Some(code) = err {
        ack = ack.attr("error", code);
    } else {
        fake.world().sent.push(SentMessage {
            from,
            to,
            id,
            recipients,
            text: None,
        });
    }
    ctx.send(ack.build());
}
