//! App state (`w:sync:app:state`): the server's copy of an account's synced settings,
//! served per collection as a snapshot (an encrypted blob on the media servers) and the
//! patches after it, as whatsmeow's `appstate.go` `fetchAppStatePatches` /
//! `appstate/decode.go` `ParsePatchList` and Baileys' `chats.ts` `resyncAppState` /
//! `Utils/chat-utils.ts` `extractSyncdPatches` read them:
//!
//! - `<iq type="set" xmlns="w:sync:app:state"><sync><collection name=… version=…
//!   return_snapshot=…/></sync></iq>` is answered with one `<collection name=… version=…>`
//!   per asked collection. A snapshot goes as `<snapshot>` whose bytes are an
//!   `ExternalBlobReference` (whatsmeow downloads it with `DownloadExternalAppStateBlob`,
//!   Baileys with `downloadExternalBlob`: media type `md-app-state`, HKDF info
//!   "WhatsApp App State Keys"); patches go inline as `<patches><patch>` holding a
//!   `SyncdPatch`.
//! - Every account's `critical_block` holds the phone user's `setting_pushName` (whatsmeow
//!   `appstate.IndexSettingPushName`, and whatsapp-rust dispatches `Connected` on a fresh
//!   device only once `critical_block` and `critical_unblock_low` synced: `node_io.rs`, "Fresh
//!   pairing path"). Without it every login of a device with no push name waits out
//!   whatsapp-rust's 10 s key-share grace again, which is what the fake used to cause.
//! - A patch a companion sends (`<collection version=base><patch>`) lands when its base is
//!   the server's version and moves the collection on by one; on a stale base the server
//!   answers `<collection type="error"><error code="409"/>` with the patches the sender lacks
//!   (whatsapp-rust `send_app_state_patch`, citing WA Web's `ServerSync.js`; whatsmeow
//!   `SendAppState` only sees the IQ's error).
//!
//! Not modelled, because no public source says what the server sends: the answer for a
//! collection that holds nothing (here `<collection name=… version=0/>`, neither snapshot nor
//! patches, which both clients read as "nothing to apply"); `has_more_patches` paging; patches
//! moved to an external blob when large; the server folding patches into a new snapshot.

use base64::Engine;
use buffa::Message as _;
use wacore::appstate::hash::HashState;
use wacore::appstate::keys::expand_app_state_keys;
use wacore::download::MediaType;
use wacore_binary::builder::NodeBuilder;
use wacore_binary::Node;
use waproto::whatsapp as wa;

use crate::world::{attr, result, World};
use crate::FakeWhatsApp;

/// The collections whatsapp-rust, whatsmeow and Baileys know (`WAPatchName`).
const COLLECTIONS: [&str; 5] = [
    "critical_block",
    "critical_unblock_low",
    "regular_low",
    "regular_high",
    "regular",
];

/// The name a fake phone's user goes by: the `notify` of its messages and its push name.
pub(crate) fn push_name(phone: &str) -> String {
    format!("Fake {}", &phone[phone.len().saturating_sub(4)..])
}

/// Patches companions sent, per collection (serialised `SyncdPatch`es, oldest first; the
/// first is version 2, the snapshot being version 1 for `critical_block`).
pub(crate) type Patches = std::collections::BTreeMap<String, Vec<Vec<u8>>>;

/// Answers a `w:sync:app:state` IQ from the device logged in as `phone`.
pub(crate) fn on_iq(fake: &FakeWhatsApp, phone: Option<&str>, iq: &Node) -> Node {
    let Some(phone) = phone else {
        return crate::world::error(iq, 401, "not-authorized");
    };
    let asked: Vec<&Node> = iq
        .get_optional_child("sync")
        .map(|s| s.get_children_by_tag("collection").collect())
        .unwrap_or_default();
    let inline = fake.options().inline_app_state;
    let mut w = fake.world();
    let cols: Vec<Node> = asked
        .into_iter()
        .map(|c| collection(&mut w, phone, c, inline))
        .collect();
    result(iq, vec![NodeBuilder::new("sync").children(cols).build()])
}

/// One `<collection>` of the answer.
fn collection(w: &mut World, phone: &str, asked: &Node, inline: bool) -> Node {
    let name = attr(asked, "name");
    if !COLLECTIONS.contains(&name.as_str()) {
        // WA Web's `WAWebSyncdResponseParser` reads 400/404 as fatal; an unknown collection is
        // the client's mistake, so 400. No source gives the server's text.
        return error_collection(&name, 400, "bad-request", Vec::new());
    }
    let base: u64 = attr(asked, "version").parse().unwrap_or(0);
    let has_snapshot = name == "critical_block";
    let stored = w
        .app_state
        .entry(phone.to_string())
        .or_default()
        .entry(name.clone())
        .or_default()
        .clone();
    let floor = u64::from(has_snapshot);
    let latest = floor + stored.len() as u64;
    if let Some(patch) = asked.get_optional_child("patch") {
        return apply_patch(w, phone, &name, base, latest, floor, patch);
    }
    let mut b = NodeBuilder::new("collection")
        .attr("name", name.clone())
        .attr("version", latest.to_string());
    let mut children = Vec::new();
    let mut from = base;
    let mut newer = Vec::new();
    if base == 0 && has_snapshot {
        if inline {
            if let Some(p) = genesis_patch(w, phone) {
                newer.push(NodeBuilder::new("patch").bytes(p).build());
                from = floor;
            }
        } else if let Some(snap) = snapshot(w, phone) {
            children.push(NodeBuilder::new("snapshot").bytes(snap).build());
            from = floor;
        }
    }
    newer.extend(patches_after(&stored, floor, from));
    if !newer.is_empty() {
        children.push(NodeBuilder::new("patches").children(newer).build());
    }
    if !children.is_empty() {
        b = b.children(children);
    }
    b.build()
}

/// `<patch>` nodes for the stored patches after version `from`.
fn patches_after(stored: &[Vec<u8>], floor: u64, from: u64) -> Vec<Node> {
    stored
        .iter()
        .enumerate()
        .filter(|(i, _)| floor + 1 + *i as u64 > from)
        .map(|(_, p)| NodeBuilder::new("patch").bytes(p.clone()).build())
        .collect()
}

/// A companion's patch: lands on the current base, else 409 with what the sender lacks.
fn apply_patch(w: &mut World, phone: &str, name: &str, base: u64, latest: u64, floor: u64, patch: &Node) -> Node {
    let stored = w
        .app_state
        .entry(phone.to_string())
        .or_default()
        .entry(name.to_string())
        .or_default();
    if base != latest {
        let lacking = patches_after(stored, floor, base);
        return error_collection(name, 409, "conflict", lacking);
    }
    let Some(wacore_binary::node::NodeContent::Bytes(raw)) = &patch.content else {
        return error_collection(name, 400, "bad-request", Vec::new());
    };
    stored.push(raw.clone());
    NodeBuilder::new("collection")
        .attr("name", name)
        .attr("version", (latest + 1).to_string())
        .build()
}

/// `<collection name type="error"><error code text/>[<patches>]</collection>`.
fn error_collection(name: &str, code: u16, text: &str, patches: Vec<Node>) -> Node {
    let mut children = vec![NodeBuilder::new("error")
        .attr("code", code.to_string())
        .attr("text", text)
        .build()];
    if !patches.is_empty() {
        children.push(NodeBuilder::new("patches").children(patches).build());
    }
    NodeBuilder::new("collection")
        .attr("name", name)
        .attr("type", "error")
        .children(children)
        .build()
}

/// `critical_block` at version 1: the push name's record, encrypted with the account's
/// app-state key the phone shared, and the collection's MAC over it. `None` when the number
/// has no keys in the fake.
struct Genesis {
    record: wa::SyncdRecord,
    snapshot_mac: Vec<u8>,
    key_id: Vec<u8>,
    patch_mac_key: [u8; 32],
}

fn genesis(w: &World, phone: &str) -> Option<Genesis> {
    let (key_id, key) = w.signal.get(phone)?.app_state_key.clone();
    let keys = expand_app_state_keys(&key);
    let value = wa::SyncActionValue {
        timestamp: Some(crate::world::now() as i64 * 1000),
        push_name_setting: buffa::MessageField::some(wa::sync_action_value::PushNameSetting {
            name: Some(push_name(phone)),
        }),
        ..Default::default()
    };
    // The index is the JSON array of the action's name and arguments (whatsmeow
    // `appstate/encode.go` `EncodeMutation`); the push name has no arguments.
    let index = serde_json::to_vec(&["setting_pushName"]).ok()?;
    let iv: [u8; 16] = rand::random();
    let (mutation, _) = wacore::appstate::encode_record(
        wa::syncd_mutation::SyncdOperation::SET,
        &index,
        &value,
        &keys,
        &key_id,
        &iv,
        1,
    );
    let record = mutation.record.as_option()?.clone();
    let mut state = HashState {
        version: 1,
        ..Default::default()
    };
    state.update_hash_from_records(std::slice::from_ref(&record));
    Some(Genesis {
        snapshot_mac: state.generate_snapshot_mac("critical_block", &keys.snapshot_mac),
        record,
        key_id,
        patch_mac_key: keys.patch_mac,
    })
}

/// `critical_block`'s snapshot put on the media servers; returns the serialised
/// `ExternalBlobReference`.
fn snapshot(w: &mut World, phone: &str) -> Option<Vec<u8>> {
    let g = genesis(w, phone)?;
    let snap = wa::SyncdSnapshot {
        version: buffa::MessageField::some(wa::SyncdVersion { version: Some(1) }),
        records: vec![g.record],
        mac: Some(g.snapshot_mac),
        key_id: buffa::MessageField::some(wa::KeyId { id: Some(g.key_id) }),
    };
    let enc = wacore::upload::encrypt_media(&snap.encode_to_vec(), MediaType::AppState).ok()?;
    let direct_path = format!("/v/t62.1234-24/{}_app_state.enc", w.app_state_snapshots + 1);
    w.app_state_snapshots += 1;
    // Not in `uploads`, which lists what clients uploaded.
    w.media.files.insert(direct_path.clone(), enc.data_to_upload.clone());
    let handle = base64::engine::general_purpose::STANDARD.encode(rand::random::<[u8; 8]>());
    Some(
        wa::ExternalBlobReference {
            media_key: Some(enc.media_key.to_vec()),
            direct_path: Some(direct_path),
            handle: Some(handle),
            file_size_bytes: Some(enc.data_to_upload.len() as u64),
            file_sha256: Some(enc.file_sha256.to_vec()),
            file_enc_sha256: Some(enc.file_enc_sha256.to_vec()),
        }
        .encode_to_vec(),
    )
}

/// The same version 1 as an inline patch, for [`crate::FakeOptions::inline_app_state`]: its
/// `snapshotMac` is the collection's MAC after it, its `patchMac` over that, the value MAC,
/// version and name (whatsmeow `appstate/hash.go` `generatePatchMAC`).
fn genesis_patch(w: &World, phone: &str) -> Option<Vec<u8>> {
    let g = genesis(w, phone)?;
    let mut patch = wa::SyncdPatch {
        version: buffa::MessageField::some(wa::SyncdVersion { version: Some(1) }),
        mutations: vec![wa::SyncdMutation {
            operation: Some(wa::syncd_mutation::SyncdOperation::SET.into()),
            record: buffa::MessageField::some(g.record),
        }],
        snapshot_mac: Some(g.snapshot_mac),
        key_id: buffa::MessageField::some(wa::KeyId { id: Some(g.key_id) }),
        ..Default::default()
    };
    patch.patch_mac = Some(wacore::appstate::hash::generate_patch_mac(
        &patch,
        "critical_block",
        &g.patch_mac_key,
        1,
    ));
    Some(patch.encode_to_vec())
}
