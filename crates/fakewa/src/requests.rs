//! Join requests of groups that need an admin's approval (`w:g2`), as the public clients
//! show the server answering them:
//!
//! - `<iq type="get"><membership_approval_requests/></iq>` lists who waits as
//!   `<membership_approval_requests><membership_approval_request jid=… request_time=…/>`
//!   (Baileys `groupRequestParticipantsList` returns each child's attrs; whatsmeow
//!   `GetGroupRequestParticipants` reads `jid` and `request_time`).
//! - `<iq type="set"><membership_requests_action><approve|reject><participant jid=…/>` answers
//!   with the same tree, each `participant` carrying `error` when it failed (Baileys
//!   `groupRequestParticipantsUpdate` maps a missing `error` to status 200; whatsmeow
//!   `UpdateGroupRequestParticipants` parses the same `participant` list).
//! - `<iq type="set"><membership_approval_mode><group_join state="on|off"/>` switches it
//!   (Baileys `groupJoinApprovalMode`, whatsmeow `SetGroupJoinApprovalMode`); the group's
//!   metadata then carries `membership_approval_mode` (already in `group_node`).
//!
//! Not modelled, for want of a source saying what the server does: the error code for
//! answering someone who has no pending request (404 here), whether a LID group's listing
//! adds `phone_number` (it does here, as for participants, unless the number is hidden),
//! `request_method`, and turning approval off letting the waiting people in (they keep
//! waiting here).

use wacore_binary::builder::NodeBuilder;
use wacore_binary::Node;

use crate::world::{attr, error, pn_jid, result, World};

/// The phone number a request names by phone JID or LID.
fn phone_of(w: &World, jid: &str) -> String {
    let (user, server) = jid.split_once('@').unwrap_or((jid, ""));
    let user = user.split(':').next().unwrap_or_default();
    if server == "lid" {
        w.phone_of_lid(user).unwrap_or_else(|| user.to_string())
    } else {
        user.to_string()
    }
}

/// The JID a requester is named by in this group: their LID in a LID-addressed group.
fn requester_jid(w: &World, lid_group: bool, phone: &str) -> String {
    match w.accounts.get(phone) {
        Some(a) if lid_group => format!("{}@lid", a.lid),
        _ => pn_jid(phone),
    }
}

/// One of the three operations on group `to`; `me` is the asking account.
pub(crate) fn on_op(w: &mut World, me: &str, to: &str, iq: &Node, op: &Node, is_admin: bool) -> Node {
    // Only admins see or answer requests and change the mode; the other admin-only
    // operations of this fake answer a member the same way.
    if !is_admin {
        return error(iq, 401, "not-authorized");
    }
    let _ = me;
    match op.tag.as_ref() {
        "membership_approval_requests" => list(w, to, iq),
        "membership_requests_action" => act(w, to, iq, op),
        _ => {
            let state = op
                .get_optional_child("group_join")
                .map(|n| attr(n, "state"))
                .unwrap_or_default();
            let on = match state.as_str() {
                "on" => true,
                "off" => false,
                _ => return error(iq, 400, "bad-request"),
            };
            if let Some(g) = w.groups.get_mut(to) {
                g.approval = on;
            }
            result(iq, Vec::new())
        }
    }
}

fn list(w: &World, to: &str, iq: &Node) -> Node {
    let Some(g) = w.groups.get(to) else {
        return error(iq, 404, "item-not-found");
    };
    let children: Vec<Node> = g
        .pending
        .iter()
        .map(|p| {
            let mut b =
                NodeBuilder::new("membership_approval_request").attr("jid", requester_jid(w, g.lid_addressed, p));
            if g.lid_addressed && !w.hidden_phones.contains(p) {
                b = b.attr("phone_number", pn_jid(p));
            }
            let at = g.requested_at.get(p).copied().unwrap_or(g.created);
            b.attr("request_time", at.to_string()).build()
        })
        .collect();
    result(
        iq,
        vec![NodeBuilder::new("membership_approval_requests")
            .children(children)
            .build()],
    )
}

fn act(w: &mut World, to: &str, iq: &Node, op: &Node) -> Node {
    let Some(action) = op.children().and_then(|c| c.first()).cloned() else {
        return error(iq, 400, "bad-request");
    };
    let approve = match action.tag.as_ref() {
        "approve" => true,
        "reject" => false,
        _ => return error(iq, 400, "bad-request"),
    };
    let asked: Vec<(String, String)> = action
        .get_children_by_tag("participant")
        .map(|p| {
            let jid = attr(p, "jid");
            (phone_of(w, &jid), jid)
        })
        .collect();
    let mut out = Vec::with_capacity(asked.len());
    for (phone, jid) in asked {
        let Some(g) = w.groups.get_mut(to) else {
            return error(iq, 404, "item-not-found");
        };
        let mut b = NodeBuilder::new("participant").attr("jid", jid);
        if g.pending.remove(&phone) {
            g.requested_at.remove(&phone);
            if approve {
                g.members.entry(phone).or_insert((false, false));
            }
        } else {
            b = b.attr("error", "404");
        }
        out.push(b.build());
    }
    result(
        iq,
        vec![NodeBuilder::new("membership_requests_action")
            .children([NodeBuilder::new(if approve { "approve" } else { "reject" })
                .children(out)
                .build()])
            .build()],
    )
}

impl World {
    /// `phone` asks to join `group` (as a link would while approval is on).
    pub(crate) fn request_to_join(&mut self, group: &str, phone: &str) {
        self.ensure_account(phone);
        if let Some(g) = self.groups.get_mut(group) {
            g.requested_at.insert(phone.to_string(), crate::world::now());
            g.pending.insert(phone.to_string());
        }
    }
}
