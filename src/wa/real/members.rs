//! Issue 19 over whatsapp-rust 0.7: a group's roster with LID-only members kept, pending join
//! requests (`w:g2` `membership_approval_requests`), approving and rejecting them
//! (`membership_requests_action`), and "approve new members" (`membership_approval_mode`).
//! The library has typed IQs for all four (`Groups::get_membership_requests`,
//! `approve_membership_requests`, `reject_membership_requests`, `set_membership_approval`), the
//! same stanzas as whatsmeow `GetGroupRequestParticipants`, `UpdateGroupRequestParticipants`
//! and `SetGroupJoinApprovalMode`.

use std::collections::HashMap;

use tracing::debug;
use whatsapp_rust::features::MembershipApprovalMode;
use whatsapp_rust::Jid;

use super::{errors, group_jid, RealSession};
use crate::wa::{GroupId, JoinRequest, PersonId, RequestResult, RosterEntry, WaError};

/// The person a JID names, given the phone number found for it (if any).
fn person(jid: &Jid, phone: Option<crate::ids::PhoneNumber>) -> Option<PersonId> {
    match phone {
        Some(p) => Some(PersonId::Phone(p)),
        None if jid.is_lid() => PersonId::lid(jid.user_base()),
        None => None,
    }
}

impl RealSession {
    /// Phone numbers for `jids` (with the server's hints), LIDs nobody could map left `None`.
    async fn people(&self, jids: &[(Jid, Option<Jid>)]) -> Vec<Option<PersonId>> {
        let mut found = Vec::with_capacity(jids.len());
        for (jid, hint) in jids {
            found.push(self.phone_of(jid, hint.as_ref()).await);
        }
        let missing: Vec<Jid> = jids
            .iter()
            .zip(&found)
            .filter(|((j, _), f)| f.is_none() && j.is_lid())
            .map(|((j, _), _)| j.clone())
            .collect();
        let resolved = self.phones_of_lids(&missing).await;
        jids.iter()
            .zip(found)
            .map(|((j, _), f)| person(j, f.or_else(|| resolved.get(j.user_base()).cloned())))
            .collect()
    }

    pub(super) async fn roster_of(&self, id: &GroupId) -> Result<Vec<RosterEntry>, WaError> {
        let g = self.client.groups();
        let meta = self.call("reading the group", g.get_metadata(&group_jid(id))).await?;
        let jids: Vec<(Jid, Option<Jid>)> = meta
            .participants
            .iter()
            .map(|p| (p.jid.clone(), p.phone_number.clone()))
            .collect();
        let people = self.people(&jids).await;
        Ok(meta
            .participants
            .iter()
            .zip(people)
            .filter_map(|(p, who)| {
                Some(RosterEntry {
                    id: who?,
                    // The group reply carries no push names; the bot fills in names it saw.
                    name: None,
                    is_admin: p.is_admin(),
                    is_super_admin: p.is_super_admin(),
                })
            })
            .collect())
    }

    /// The pending requests with the JID the server listed each under (approvals must name
    /// that JID: a LID-listed requester is answered by LID).
    async fn requests_with_jids(&self, id: &GroupId) -> Result<Vec<(Jid, JoinRequest)>, WaError> {
        let g = self.client.groups();
        let list = self
            .call("reading join requests", g.get_membership_requests(group_jid(id)))
            .await?;
        let jids: Vec<(Jid, Option<Jid>)> = list.iter().map(|r| (r.jid.clone(), None)).collect();
        let people = self.people(&jids).await;
        Ok(list
            .into_iter()
            .zip(people)
            .filter_map(|(r, who)| {
                let who = who?;
                Some((
                    r.jid,
                    JoinRequest {
                        id: who,
                        name: None,
                        requested_at: r.request_time.map(|t| t as i64),
                    },
                ))
            })
            .collect())
    }

    pub(super) async fn join_requests_of(&self, id: &GroupId) -> Result<Vec<JoinRequest>, WaError> {
        Ok(self.requests_with_jids(id).await?.into_iter().map(|(_, r)| r).collect())
    }

    pub(super) async fn answer_requests(
        &self,
        id: &GroupId,
        approve: bool,
        who: &[PersonId],
    ) -> Result<Vec<RequestResult>, WaError> {
        if who.is_empty() {
            return Ok(Vec::new());
        }
        let listed: HashMap<PersonId, Jid> = self
            .requests_with_jids(id)
            .await?
            .into_iter()
            .map(|(j, r)| (r.id, j))
            .collect();
        let asked: Vec<(PersonId, Jid)> = who
            .iter()
            .filter_map(|p| listed.get(p).map(|j| (p.clone(), j.clone())))
            .collect();
        let mut outcomes: HashMap<PersonId, Result<(), String>> = HashMap::new();
        if !asked.is_empty() {
            let jids: Vec<Jid> = asked.iter().map(|(_, j)| j.clone()).collect();
            let g = self.client.groups();
            let gj = group_jid(id);
            let responses = if approve {
                self.call("approving join requests", g.approve_membership_requests(gj, &jids))
                    .await?
            } else {
                self.call("rejecting join requests", g.reject_membership_requests(gj, &jids))
                    .await?
            };
            // Matched by address kind and user: the reply may add a device part.
            let by_jid: HashMap<(bool, String), Option<String>> = responses
                .iter()
                .map(|r| ((r.jid.is_lid(), r.jid.user_base().to_string()), r.error.clone()))
                .collect();
            for (p, j) in asked {
                let outcome = match by_jid.get(&(j.is_lid(), j.user_base().to_string())) {
                    Some(None) => Ok(()),
                    Some(Some(code)) => Err(errors::describe_participant_error(code)),
                    None => {
                        debug!(jid = %j, "no result for a join request");
                        Err("WhatsApp did not report on this request".to_string())
                    }
                };
                outcomes.insert(p, outcome);
            }
        }
        // One result per person asked, in the order asked.
        Ok(who
            .iter()
            .map(|p| {
                let outcome = outcomes
                    .remove(p)
                    .unwrap_or_else(|| Err("no pending request".to_string()));
                (p.clone(), outcome)
            })
            .collect())
    }

    pub(super) async fn approval_of(&self, id: &GroupId) -> Result<bool, WaError> {
        let g = self.client.groups();
        let meta = self.call("reading the group", g.get_metadata(&group_jid(id))).await?;
        Ok(meta.membership_approval)
    }

    pub(super) async fn set_approval(&self, id: &GroupId, on: bool) -> Result<(), WaError> {
        let mode = if on {
            MembershipApprovalMode::On
        } else {
            MembershipApprovalMode::Off
        };
        let g = self.client.groups();
        self.call("changing join approval", g.set_membership_approval(group_jid(id), mode))
            .await
    }
}
