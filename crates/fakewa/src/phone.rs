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
use crate::world::{attr, bytes_of, error, pn_jid, result, text_of, Keys, SentMessage, World, SERVER};
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
                    // No `biz`: WhatsApp sends it for business accounts only (whatsmeow
                    // `handlePair` reads `biz` `name` as the business name, optional).
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
    fake.notify_devices_changed(&phone, &[device], "add");
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
            // Throttled (the `0429` row, or `throttle_pair_codes`): the server answers
            // `400 bad-request`, the same error as for bad content, and only rarely with a
            // `backoff` (whatsapp-rust `pair_code.rs`, `PairError::RequestFailed` and
            // `backoff()`: "the server rarely populates it on this request").
            let throttled = fake.world().pair_throttle.get(&phone).copied();
            let throttled = throttled.or_else(|| phone.ends_with("0429").then_some(None));
            if let Some(backoff) = throttled {
                let mut e = NodeBuilder::new("error")
                    .attr("code", "400")
                    .attr("text", "bad-request");
                if let Some(secs) = backoff {
                    e = e.attr("backoff", secs.to_string());
                }
                return NodeBuilder::new("iq")
                    .attr("type", "error")
                    .attr("id", attr(iq, "id"))
                    .attr("from", SERVER)
                    .children([e.build()])
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
                children.push(devices_node(acc));
            }
            let out_jid = match (acc, by_lid) {
                (Some(a), true) => format!("{}@lid", a.lid),
                (Some(a), false) => pn_jid(&a.phone),
                (None, _) if !jid.is_empty() => jid.clone(),
                (None, _) => pn_jid(&phone),
            };
            let mut ub = NodeBuilder::new("user").attr("jid", out_jid);
            // A number its owner hides is not revealed by asking for its LID.
            if let (Some(a), true) = (acc, by_lid) {
                if !w.hidden_phones.contains(&a.phone) {
                    ub = ub.attr("pn_jid", pn_jid(&a.phone));
                }
            }
            users.push(ub.children(children).build());
        }
    }
    let failed = ctx
        .device
        .as_ref()
        .and_then(|(p, _)| w.usync_result_errors.get(p).copied());
    let result_node = usync_states(&query, failed);
    result(
        iq,
        vec![NodeBuilder::new("usync")
            .children([result_node, NodeBuilder::new("list").children(users).build()])
            .build()],
    )
}

/// The result-level state of each protocol asked for: a node per protocol, carrying an
/// `<error code text backoff>` when the whole protocol failed for this query (`failed`;
/// wacore `parse_protocol_states` / `reject_result_errors`: a contact query fails as a whole).
fn usync_states(query: &[String], failed: Option<(u16, Option<u32>)>) -> Node {
    let states = query.iter().map(|q| {
        let mut b = NodeBuilder::new_dynamic(q.clone());
        if let Some((code, backoff)) = failed {
            let mut e = NodeBuilder::new("error")
                .attr("code", code.to_string())
                .attr("text", if code == 429 { "rate-overlimit" } else { "error" });
            if let Some(secs) = backoff {
                e = e.attr("backoff", secs.to_string());
            }
            b = b.children([e.build()]);
        }
        b.build()
    });
    NodeBuilder::new("result").children(states).build()
}

/// The `<devices>` of a usync answer: the phone and every companion the phone linked, each
/// with its `key-index`, and the `<key-index-list>` the client needs beside companions (the
/// shape of wacore `iq/usync.rs`, which skips a user with companions but no list, and of
/// Baileys `USyncDeviceProtocol`). Companions registered without keys (imported sessions)
/// are left out: nobody could encrypt for them.
fn devices_node(acc: Option<&crate::world::Account>) -> Node {
    let mut dl = NodeBuilder::new("device-list");
    let mut extra = Vec::new();
    if let Some(a) = acc {
        let usable: Vec<u16> = a
            .devices
            .iter()
            .filter(|(id, d)| **id != 0 && d.keys.skey.is_some() && d.keys.identity != [0; 32])
            .map(|(id, _)| *id)
            .collect();
        let mut devs = vec![NodeBuilder::new("device").attr("id", "0").build()];
        devs.extend(usable.iter().map(|id| {
            NodeBuilder::new("device")
                .attr("id", id.to_string())
                .attr("key-index", id.to_string())
                .build()
        }));
        let ids: Vec<String> = std::iter::once("0".to_string())
            .chain(usable.iter().map(|d| d.to_string()))
            .collect();
        dl = dl.attr("hash", device_hash(&a.lid, &ids)).children(devs);
        if !usable.is_empty() {
            extra.push(
                NodeBuilder::new("key-index-list")
                    .attr("ts", crate::world::now().to_string())
                    .bytes(signed_key_index_list(a, &usable))
                    .build(),
            );
        }
    }
    let mut children = vec![dl.build()];
    children.extend(extra);
    NodeBuilder::new("devices").children(children).build()
}

/// A device-list hash that changes whenever the list does (the real one's input is not in
/// any client's source; clients only compare it).
fn device_hash(lid: &str, ids: &[String]) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(format!("{lid}:{}", ids.join(",")).as_bytes());
    format!(
        "2:{}",
        base64::engine::general_purpose::STANDARD_NO_PAD.encode(&digest[..6])
    )
}

/// `ADVSignedKeyIndexList`: the account's valid key indexes (here each companion's device
/// id), signed by the account key. Clients decode `details` and defer the signature check
/// (wacore `adv.rs` `decode_key_index_list`); which prefix, if any, the phone signs with is
/// in no source, so the fake signs the bare details.
fn signed_key_index_list(acc: &crate::world::Account, companions: &[u16]) -> Vec<u8> {
    let valid: Vec<u32> = companions.iter().map(|d| u32::from(*d)).collect();
    let details = wa::ADVKeyIndexList {
        raw_id: Some(1),
        timestamp: Some(crate::world::now()),
        current_index: valid.iter().copied().max(),
        valid_indexes: valid,
        ..Default::default()
    }
    .encode_to_vec();
    let sig = acc
        .phone_identity
        .private_key
        .calculate_signature(&details, &mut rand::rng())
        .map(|s| s.to_vec())
        .unwrap_or_default();
    wa::ADVSignedKeyIndexList {
        details: Some(details),
        account_signature: Some(sig),
        ..Default::default()
    }
    .encode_to_vec()
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
    let mut low = Vec::new();
    let node = prekey_bundles_noting(fake, iq, &mut low);
    for (phone, device, left) in low {
        fake.tell_device(&phone, device, crate::world::prekeys_low(left));
    }
    node
}

/// The bundles asked for; devices whose pre-keys just ran low go into `low`.
fn prekey_bundles_noting(fake: &FakeWhatsApp, iq: &Node, low: &mut Vec<(String, u16, usize)>) -> Node {
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
                        if d.keys.prekeys.len() + 1 == crate::world::LOW_PREKEYS {
                            low.push((phone.clone(), device, d.keys.prekeys.len()));
                        }
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
    let (from, from_device) = ctx.device.clone().unwrap_or_default();
    let mut recipients: Vec<String> = msg
        .get_optional_child("participants")
        .map(|p| p.get_children_by_tag("to").map(|t| attr(t, "jid")).collect())
        .unwrap_or_default();
    recipients.sort();
    let (err, phash) = {
        let mut w = fake.world();
        let err = refusal(&mut w, &from, &to);
        // The server's own list of the devices a group message should reach, hashed as the
        // client hashes its list (whatsmeow `participantListHashV2`, wacore
        // `participant_list_hash`): the ack carries it when the stanza carried one, and a
        // client whose list differs refreshes it (whatsmeow `sendMessage`, whatsapp-rust
        // `check_phash_against_ack`).
        let phash = (err.is_none() && !attr(msg, "phash").is_empty())
            .then(|| server_phash(&w, &from, from_device, &to))
            .flatten();
        (err, phash)
    };
    let mut ack = NodeBuilder::new("ack")
        .attr("class", "message")
        .attr("id", id.clone())
        .attr("from", to.clone())
        .attr("t", crate::world::now().to_string());
    if let Some(p) = phash {
        ack = ack.attr("phash", p);
    }
    if let Some(code) = err {
        ack = ack.attr("error", code.to_string());
    } else {
        let mut w = fake.world();
        let (text, media) = read_sent(&mut w, &from, from_device, &to, msg);
        if !to.ends_with("@g.us") {
            let recipient = recipient_phone(&w, &to);
            w.wrote.insert((from.clone(), recipient));
        }
        let read_by_phone = text.is_some() || media.is_some();
        w.sent.push(SentMessage {
            from: from.clone(),
            to: to.clone(),
            id,
            recipients,
            text,
            encryption: enc_types(msg),
            media,
            read_by_phone,
        });
        drop(w);
        relay_to_companions(fake, &from, from_device, &to, msg);
    }
    // An ack held back (`delay_acks`): peers report acks that come late or never (the
    // issue's "acks that arrive late or not at all"); no source says how late.
    let delay = fake.world().ack_delays.get(&from).copied();
    match delay {
        None => ctx.send(ack.build()),
        Some(None) => {}
        Some(Some(d)) => {
            let (fake, conn, node) = (fake.clone(), ctx.id, ack.build());
            tokio::spawn(async move {
                tokio::time::sleep(d).await;
                fake.send_to_conn(conn, Ctl::Send(node));
            });
        }
    }
}

/// The phone digits a direct message to `to` (PN or LID JID) is for.
fn recipient_phone(w: &World, to: &str) -> String {
    if to.ends_with("@lid") {
        w.phone_of_lid(&user_of(to)).unwrap_or_default()
    } else {
        user_of(to)
    }
}

/// Why the server refuses a message from `from` to `to`, as the `error` of its nack.
fn refusal(w: &mut World, from: &str, to: &str) -> Option<u16> {
    // A one-off nack set by the test (e.g. 479 "smax-invalid": whatsmeow `client.go`
    // names it, whatsapp-rust `take_ack_waiter` logs it as `SmaxInvalid`).
    if let Some(code) = w.nack_next.remove(from) {
        return Some(code);
    }
    if to.ends_with("@g.us") {
        return match w.groups.get(to) {
            None => Some(404),
            Some(g) if !g.members.contains_key(from) => Some(403),
            Some(g) if g.announce && !g.members.get(from).is_some_and(|m| m.0) => Some(403),
            Some(_) => None,
        };
    }
    let phone = recipient_phone(w, to);
    if !w.accounts.contains_key(&phone) {
        return Some(404);
    }
    // The reach-out timelock: a young or restricted account may not start chats with
    // strangers. The server nacks with 463 (whatsapp-rust `take_ack_waiter`: "MissingTcToken
    // ... may indicate a reachout timelock"; whatsmeow #1074, Baileys #2688); a number that
    // wrote to the account first is no stranger.
    let locked = w.accounts.get(from).is_some_and(|a| a.timelocked());
    if locked && phone != from && !w.wrote.contains(&(phone, from.to_string())) {
        return Some(463);
    }
    None
}

/// The participant-list hash of the devices the server knows for group `to`, in the group's
/// addressing, without the sending device. `None` for a direct message or unknown group.
fn server_phash(w: &World, from: &str, from_device: u16, to: &str) -> Option<String> {
    let g = w.groups.get(to)?;
    let mut jids = Vec::new();
    for phone in g.members.keys() {
        let Some(acc) = w.accounts.get(phone) else { continue };
        for d in acc.devices.keys() {
            if phone == from && *d == from_device {
                continue;
            }
            let user = if g.lid_addressed {
                format!("{}@lid", acc.lid)
            } else {
                pn_jid(phone)
            };
            let (u, server) = user.split_once('@').unwrap_or((user.as_str(), SERVER));
            let jid = if *d == 0 {
                format!("{u}@{server}")
            } else {
                format!("{u}:{d}@{server}")
            };
            if let Ok(j) = jid.parse::<wacore_binary::Jid>() {
                jids.push(j);
            }
        }
    }
    wacore::messages::MessageUtils::participant_list_hash(jids.iter()).ok()
}

/// (phone digits, device) of a device JID in either addressing (`user[:device]@server`).
fn device_of(w: &World, jid: &str) -> Option<(String, u16)> {
    let (user_dev, server) = jid.split_once('@')?;
    let (user, dev) = user_dev.split_once(':').unwrap_or((user_dev, "0"));
    let device = dev.parse().ok()?;
    let phone = if server == "lid" {
        w.phone_of_lid(user)?
    } else {
        user.to_string()
    };
    Some((phone, device))
}

/// Every `<enc type>` in a message stanza, sorted, once each.
fn enc_types(msg: &Node) -> Vec<String> {
    let mut types: Vec<String> = msg.get_children_by_tag("enc").map(|e| attr(e, "type")).collect();
    if let Some(parts) = msg.get_optional_child("participants") {
        for t in parts.get_children_by_tag("to") {
            types.extend(t.get_children_by_tag("enc").map(|e| attr(e, "type")));
        }
    }
    types.sort();
    types.dedup();
    types
}

fn enc_version(enc: &Node) -> u8 {
    if attr(enc, "v") == "3" {
        3
    } else {
        2
    }
}

/// The fake phones read what device `from_device` of `from` sent to `to`: the recipient's
/// phone its pairwise copy, or in a group every member phone the sender key it was given
/// and then the group message. Returns the text the first reader found.
/// What the recipients' phones read of a message: its text, and the file of a media message
/// (downloaded and decrypted by the first phone that could read it).
fn read_sent(
    w: &mut World,
    from: &str,
    from_device: u16,
    to: &str,
    msg: &Node,
) -> (Option<String>, Option<crate::media::ReceivedMedia>) {
    let mut read: Vec<waproto::whatsapp::Message> = Vec::new();
    let text = read_sent_text(w, from, from_device, to, msg, &mut read);
    let media = read.iter().find_map(|m| crate::media::received(w, m));
    (text, media)
}

fn read_sent_text(
    w: &mut World,
    from: &str,
    from_device: u16,
    to: &str,
    msg: &Node,
    read: &mut Vec<waproto::whatsapp::Message>,
) -> Option<String> {
    let group = to.ends_with("@g.us");
    let addressed = if group { None } else { device_of(w, to) };
    let recipient = addressed.as_ref().map(|(p, _)| p.clone());
    // Pairwise copies addressed to a phone (device 0) other than the sender's own.
    let mut copies: Vec<(String, &Node)> = Vec::new();
    if let Some(parts) = msg.get_optional_child("participants") {
        for t in parts.get_children_by_tag("to") {
            let Some((phone, 0)) = device_of(w, &attr(t, "jid")) else {
                continue;
            };
            if phone == from || (!group && recipient.as_deref() != Some(phone.as_str())) {
                continue;
            }
            if let Some(enc) = t.get_optional_child("enc") {
                copies.push((phone, enc));
            }
        }
    }
    if let (Some((r, 0)), Some(enc)) = (&addressed, msg.get_optional_child("enc")) {
        // A message to one device only carries its `<enc>` directly.
        if attr(enc, "type") != "skmsg" && r != from {
            copies.push((r.clone(), enc));
        }
    }
    let mut text = None;
    for (phone, enc) in copies {
        let Some(sig) = w.signal.get_mut(&phone) else {
            continue;
        };
        let res = sig.decrypt(
            from,
            from_device,
            &attr(enc, "type"),
            enc_version(enc),
            &bytes_of(Some(enc)),
        );
        match res {
            Ok(plain) => {
                if let Some((_, skdm)) = crate::signal::skdm_of(&plain.message).filter(|_| group) {
                    if let Err(e) = sig.process_skdm(to, from, from_device, &skdm) {
                        tracing::debug!(error = %e, "a fake phone could not take a sender key");
                    }
                }
                text = text.or_else(|| crate::signal::text_of(&plain.message));
                read.push(plain.message);
            }
            Err(e) => tracing::debug!(error = %e, "a fake phone could not decrypt a message"),
        }
    }
    if group {
        let Some(enc) = msg.get_children_by_tag("enc").find(|e| attr(e, "type") == "skmsg") else {
            return text;
        };
        let members: Vec<String> = w
            .groups
            .get(to)
            .map(|g| g.members.keys().filter(|m| *m != from).cloned().collect())
            .unwrap_or_default();
        let bytes = bytes_of(Some(enc));
        for m in members {
            let Some(sig) = w.signal.get_mut(&m) else {
                continue;
            };
            match sig.group_decrypt(to, from, from_device, enc_version(enc), &bytes) {
                Ok(plain) => {
                    text = text.or_else(|| crate::signal::text_of(&plain.message));
                    read.push(plain.message);
                }
                Err(e) => tracing::debug!(error = %e, "a member phone could not decrypt a group message"),
            }
        }
    }
    text
}

// ----- messages from the phones -----

/// How a phone's message is addressed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct SendOpts {
    /// A direct message comes from the sender's LID alone (`from="<lid>@lid"`, no
    /// `sender_pn`): a sender whose number is hidden from the recipient.
    pub from_lid: bool,
}

/// What a phone sent, kept (in memory) so it can encrypt it again when a device asks with
/// a retry receipt.
#[derive(Clone)]
pub(crate) struct PhoneSent {
    pub from: String,
    /// The envelope (`<message>` without content).
    pub envelope: Node,
    /// The padded plaintext each device gets pairwise.
    pub pairwise: Vec<u8>,
    /// The group message under the sender key, for a group.
    pub skmsg: Option<Vec<u8>>,
}

/// The phone of `from` writes `text` to `to` (phone digits, or a group JID it is a member
/// of). Returns the message id.
pub(crate) fn send_from(fake: &FakeWhatsApp, from: &str, to: &str, text: &str, opts: SendOpts) -> Result<String> {
    let message = wa::Message {
        conversation: Some(text.to_string()),
        ..Default::default()
    };
    send_message_from(fake, from, to, &message, opts)
}

/// The phone of `from` sends `message` to `to` (phone digits, or a group JID it is a member
/// of): encrypted for every companion device of the recipient (or of every other member),
/// and handed to each through the offline queue ([`FakeWhatsApp::deliver_or_queue`]): at
/// once to a connected device, at its next login to one that is not. Returns the id.
pub(crate) fn send_message_from(
    fake: &FakeWhatsApp,
    from: &str,
    to: &str,
    message: &wa::Message,
    opts: SendOpts,
) -> Result<String> {
    let id = format!("3EB0{:016X}", rand::random::<u64>());
    let group = to.ends_with("@g.us");
    let mut out = Vec::new();
    {
        let mut w = fake.world();
        let readers = readers_of(&w, from, to)?;
        // Every companion device of the readers, connected or not: the phone learns them
        // from usync, which lists linked devices whether they are online or not.
        let targets: Vec<(String, u16)> = readers
            .iter()
            .filter_map(|p| w.accounts.get(p))
            .flat_map(|a| a.devices.keys().filter(|d| **d != 0).map(|d| (a.phone.clone(), *d)))
            .collect();
        let envelope = envelope(&w, from, to, &id, opts);
        let padded = wacore::messages::MessageUtils::encode_and_pad(message);
        // In a group the message goes once under the phone's sender key, and the sender key
        // pairwise to each device.
        let (pairwise_plain, skmsg) = if group {
            let sig = w.signal.get_mut(from).context("the phone has no keys")?;
            let skdm = sig.own_skdm(to, from)?;
            let skmsg = sig.group_encrypt(to, from, &padded)?;
            let carrier = wa::Message {
                sender_key_distribution_message: buffa::MessageField::some(wa::message::SenderKeyDistributionMessage {
                    group_id: Some(to.to_string()),
                    axolotl_sender_key_distribution_message: Some(skdm),
                }),
                ..Default::default()
            };
            (wacore::messages::MessageUtils::encode_and_pad(&carrier), Some(skmsg))
        } else {
            (padded, None)
        };
        let kept = PhoneSent {
            from: from.to_string(),
            envelope,
            pairwise: pairwise_plain,
            skmsg,
        };
        for (phone, device) in targets {
            if let Some(node) = encrypt_for(&mut w, &kept, &phone, device) {
                out.push((phone, device, node));
            }
        }
        if !group {
            w.wrote.insert((from.to_string(), to.to_string()));
        }
        w.phone_sent.insert(id.clone(), kept);
    }
    for (phone, device, node) in out {
        fake.deliver_or_queue(&phone, device, node);
    }
    Ok(id)
}

/// Who reads what `from` sends to `to`: the recipient, or every other member of the group.
fn readers_of(w: &World, from: &str, to: &str) -> Result<Vec<String>> {
    if !w.accounts.contains_key(from) {
        bail!("{from} is not on the fake WhatsApp");
    }
    if to.ends_with("@g.us") {
        let g = w.groups.get(to).context("no such group")?;
        if !g.members.contains_key(from) {
            bail!("{from} is not a member of {to}");
        }
        return Ok(g.members.keys().filter(|m| *m != from).cloned().collect());
    }
    if !w.accounts.contains_key(to) {
        bail!("{to} is not on the fake WhatsApp");
    }
    Ok(vec![to.to_string()])
}

/// The `<message>` envelope of a phone's message, as the server delivers it: a direct
/// message from the sender's PN with its LID beside it (or from the LID alone), a group
/// message from the group with the sender as `participant` in the group's addressing.
fn envelope(w: &World, from: &str, to: &str, id: &str, opts: SendOpts) -> Node {
    let from_lid = w.accounts.get(from).map(|a| a.lid.clone()).unwrap_or_default();
    let lid_group = w.groups.get(to).is_some_and(|g| g.lid_addressed);
    let notify = crate::appstate::push_name(from);
    let stanza = NodeBuilder::new("message")
        .attr("id", id)
        .attr("type", "text")
        .attr("t", crate::world::now().to_string())
        .attr("notify", notify);
    let stanza = if !to.ends_with("@g.us") {
        if opts.from_lid {
            stanza.attr("from", format!("{from_lid}@lid"))
        } else {
            stanza
                .attr("from", pn_jid(from))
                .attr("sender_lid", format!("{from_lid}@lid"))
        }
    } else if lid_group {
        let s = stanza
            .attr("from", to)
            .attr("participant", format!("{from_lid}@lid"))
            .attr("addressing_mode", "lid");
        if w.hidden_phones.contains(from) {
            s
        } else {
            s.attr("participant_pn", pn_jid(from))
        }
    } else {
        stanza
            .attr("from", to)
            .attr("participant", pn_jid(from))
            .attr("participant_lid", format!("{from_lid}@lid"))
            .attr("addressing_mode", "pn")
    };
    stanza.build()
}

/// `sent` encrypted for device `device` of `phone`; `None` (logged) when the phone cannot
/// write to it (a device registered without its keys).
fn encrypt_for(w: &mut World, sent: &PhoneSent, phone: &str, device: u16) -> Option<Node> {
    let (kind, ct) = match pairwise(w, &sent.from, phone, device, &sent.pairwise) {
        Ok(x) => x,
        Err(e) => {
            tracing::debug!(error = %e, device, "the fake phone could not encrypt for a device");
            return None;
        }
    };
    let mut children = vec![enc(kind, ct)];
    if let Some(skmsg) = &sent.skmsg {
        children.push(enc("skmsg", skmsg.clone()));
    }
    let mut node = sent.envelope.clone();
    node.content = Some(wacore_binary::NodeContent::Nodes(children));
    Some(node)
}

/// A `<receipt>` from the device on `ctx`. A retry receipt (the device could not decrypt)
/// goes to the sender as the server routes it: a fake phone starts a new session with the
/// device and sends the message again (what whatsmeow `handleRetryReceipt` does on the
/// sending side); a companion device gets the receipt, `from` the device that asked.
pub(crate) fn route_receipt(fake: &FakeWhatsApp, ctx: &ConnCtx, receipt: &Node) {
    if attr(receipt, "type") != "retry" {
        return;
    }
    let Some((phone, device)) = ctx.device.clone() else {
        return;
    };
    let id = attr(receipt, "id");
    let resend = {
        let mut w = fake.world();
        match w.phone_sent.get(&id).cloned() {
            Some(sent) => {
                if let Some(sig) = w.signal.get_mut(&sent.from) {
                    sig.forget_session(&phone, device);
                }
                encrypt_for(&mut w, &sent, &phone, device).map(|n| (phone.clone(), device, n))
            }
            None => None,
        }
    };
    if let Some((p, d, node)) = resend {
        fake.deliver_or_queue(&p, d, node);
        return;
    }
    // From a companion: to the sending device, named in `to` (and `participant` in a group).
    let sender = match attr(receipt, "participant") {
        p if !p.is_empty() => p,
        _ => attr(receipt, "to"),
    };
    let target = device_of(&fake.world(), &sender).filter(|(_, d)| *d != 0);
    if let Some((to_phone, to_device)) = target {
        let mut node = receipt.clone();
        node.attrs = wacore_binary::Attrs::new();
        for (k, v) in receipt.attrs.0.iter() {
            if k != "to" {
                node.attrs.insert(k.clone(), v.clone());
            }
        }
        node.attrs.insert("from", format!("{phone}:{device}@{SERVER}"));
        fake.deliver_or_queue(&to_phone, to_device, node);
    }
}

/// A message a companion sent, fanned out to the other accounts' companion devices as the
/// server does it: a direct message to each device it carries a `<participants><to
/// jid="user:device@...">` copy for; a group message to every member's companion, with its
/// pairwise copy (the sender key) when the stanza carries one and the `skmsg` always, so a
/// device that already holds the sender key still gets the message. The account's own other
/// devices (device sync) are not relayed.
fn relay_to_companions(fake: &FakeWhatsApp, from: &str, from_device: u16, to: &str, msg: &Node) {
    let group = to.ends_with("@g.us");
    let mut out = Vec::new();
    {
        let w = fake.world();
        // Pairwise copies by device.
        let mut copies: std::collections::HashMap<(String, u16), Node> = std::collections::HashMap::new();
        if let Some(parts) = msg.get_optional_child("participants") {
            for t in parts.get_children_by_tag("to") {
                if let (Some(d), Some(enc)) = (device_of(&w, &attr(t, "jid")), t.get_optional_child("enc")) {
                    copies.insert(d, enc.clone());
                }
            }
        }
        let skmsg = msg
            .get_children_by_tag("enc")
            .find(|e| attr(e, "type") == "skmsg")
            .cloned();
        let targets: Vec<(String, u16)> = if group {
            let members: Vec<String> = w
                .groups
                .get(to)
                .map(|g| g.members.keys().cloned().collect())
                .unwrap_or_default();
            members
                .iter()
                .filter(|m| *m != from)
                .filter_map(|m| w.accounts.get(m))
                .flat_map(|a| a.devices.keys().filter(|d| **d != 0).map(|d| (a.phone.clone(), *d)))
                .collect()
        } else {
            copies.keys().filter(|(p, d)| *d != 0 && p != from).cloned().collect()
        };
        let envelope = relay_envelope(&w, from, from_device, to, msg);
        for (phone, device) in targets {
            if !w.accounts.get(&phone).is_some_and(|a| a.devices.contains_key(&device)) {
                continue;
            }
            let mut children: Vec<Node> = copies.get(&(phone.clone(), device)).cloned().into_iter().collect();
            if group {
                children.extend(skmsg.clone());
            }
            if children.is_empty() {
                continue;
            }
            let mut node = envelope.clone();
            node.content = Some(wacore_binary::NodeContent::Nodes(children));
            out.push((phone, device, node));
        }
    }
    for (phone, device, node) in out {
        fake.deliver_or_queue(&phone, device, node);
    }
}

/// The envelope of a relayed companion message: from the sending device (its LID beside
/// it), or from the group with the sender as `participant` in the group's addressing.
fn relay_envelope(w: &World, from: &str, from_device: u16, to: &str, msg: &Node) -> Node {
    let from_lid = w.accounts.get(from).map(|a| a.lid.clone()).unwrap_or_default();
    let pn = format!("{from}:{from_device}@{SERVER}");
    let lid = format!("{from_lid}:{from_device}@lid");
    let kind = match attr(msg, "type") {
        t if t.is_empty() => "text".to_string(),
        t => t,
    };
    let b = NodeBuilder::new("message")
        .attr("id", attr(msg, "id"))
        .attr("type", kind)
        .attr("t", crate::world::now().to_string());
    let b = match w.groups.get(to) {
        Some(g) if g.lid_addressed => b
            .attr("from", to)
            .attr("participant", lid)
            .attr("participant_pn", pn)
            .attr("addressing_mode", "lid"),
        Some(_) => b
            .attr("from", to)
            .attr("participant", pn)
            .attr("participant_lid", lid)
            .attr("addressing_mode", "pn"),
        None => b.attr("from", pn).attr("sender_lid", lid),
    };
    b.build()
}

fn enc(kind: &str, bytes: Vec<u8>) -> Node {
    NodeBuilder::new("enc")
        .attr("v", "2")
        .attr("type", kind)
        .bytes(bytes)
        .build()
}

/// Encrypts `plain` from the phone of `from` to device `device` of `to`: over the session
/// they have, or a new one from the device's uploaded keys (taking one of its one-time
/// pre-keys, as the server hands each out once).
fn pairwise(w: &mut World, from: &str, to: &str, device: u16, plain: &[u8]) -> Result<(&'static str, Vec<u8>)> {
    let has = w.signal.get(from).is_some_and(|s| s.has_session(to, device));
    if !has {
        let dev = w
            .accounts
            .get_mut(to)
            .and_then(|a| a.devices.get_mut(&device))
            .context("no such device")?;
        let prekey = dev.keys.prekeys.pop_first();
        let keys = dev.keys.clone();
        w.signal
            .get_mut(from)
            .context("the phone has no keys")?
            .start_session(to, device, &keys, prekey)?;
    }
    w.signal
        .get_mut(from)
        .context("the phone has no keys")?
        .encrypt(to, device, plain)
}

/// At a companion's first login the phone shares the account's app-state sync key with it,
/// as a real phone does right after linking: an `AppStateSyncKeyShare` protocol message from
/// the phone's own number. Without it the client waits 10 s for the key before it reports
/// being connected. `None` when this device already has it or cannot be written to (a
/// device registered without its keys).
pub(crate) fn app_state_key_share(fake: &FakeWhatsApp, phone: &str, device: u16) -> Option<Node> {
    if device == 0 {
        return None;
    }
    let mut w = fake.world();
    let sig = w.signal.get(phone)?;
    if sig.app_state_shared.contains(&device) {
        return None;
    }
    let (key_id, key) = sig.app_state_key.clone();
    let share = wa::Message {
        protocol_message: buffa::MessageField::some(wa::message::ProtocolMessage {
            r#type: Some(wa::message::protocol_message::Type::APP_STATE_SYNC_KEY_SHARE),
            app_state_sync_key_share: buffa::MessageField::some(wa::message::AppStateSyncKeyShare {
                keys: vec![wa::message::AppStateSyncKey {
                    key_id: buffa::MessageField::some(wa::message::AppStateSyncKeyId { key_id: Some(key_id) }),
                    key_data: buffa::MessageField::some(wa::message::AppStateSyncKeyData {
                        key_data: Some(key.to_vec()),
                        fingerprint: buffa::MessageField::some(wa::message::AppStateSyncKeyFingerprint {
                            raw_id: Some(rand::random::<u32>()),
                            current_index: Some(0),
                            device_indexes: vec![0],
                        }),
                        timestamp: Some(crate::world::now() as i64 * 1000),
                    }),
                }],
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    let plain = wacore::messages::MessageUtils::encode_and_pad(&share);
    let (kind, ct) = match pairwise(&mut w, phone, phone, device, &plain) {
        Ok(x) => x,
        Err(e) => {
            tracing::debug!(error = %e, device, "the fake phone could not share the app-state key");
            return None;
        }
    };
    if let Some(sig) = w.signal.get_mut(phone) {
        sig.app_state_shared.insert(device);
    }
    let id = format!("3EB0{:016X}", rand::random::<u64>());
    Some(
        NodeBuilder::new("message")
            .attr("from", pn_jid(phone))
            .attr("id", id)
            .attr("type", "text")
            .attr("category", "peer")
            .attr("t", crate::world::now().to_string())
            .children([enc(kind, ct)])
            .build(),
    )
}
