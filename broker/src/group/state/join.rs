//! JoinGroup: checks against the group, new dynamic members (with KIP-394's member id round
//! trip), pending member ids, and rejoins of current members.

use super::{Delivery, Group, JoinOutcome, JoinRequest, JoinResponse, Outcome, State};
use crate::group::{GroupError, GroupSettings};

impl Group {
    /// JoinGroup. `new_member_id` is the id to hand out if the member has none.
    pub fn join(
        &mut self,
        req: JoinRequest,
        new_member_id: String,
        now: i64,
        s: &GroupSettings,
    ) -> (JoinOutcome, Vec<Delivery>) {
        let fail = |e: GroupError| {
            (
                Outcome::Reply(JoinResponse::error(e, &req.member_id)),
                vec![],
            )
        };
        if req.session_timeout_ms < s.min_session_timeout_ms
            || req.session_timeout_ms > s.max_session_timeout_ms
        {
            return fail(GroupError::InvalidSessionTimeout);
        }
        if req.protocol_type.is_empty() || req.protocols.is_empty() {
            return fail(GroupError::InconsistentGroupProtocol);
        }
        if self.state == State::Dead {
            return fail(GroupError::GroupDead);
        }
        let joined = !self.members.is_empty();
        if joined
            && (self.protocol_type.as_deref() != Some(req.protocol_type.as_str())
                || self.candidates(Some(&req.protocols)).is_empty())
        {
            // A member re-joining with new protocols is judged against the others only.
            let alone = self.members.len() == 1 && self.members.contains_key(&req.member_id);
            if !alone {
                return fail(GroupError::InconsistentGroupProtocol);
            }
        }
        if req.member_id.is_empty() {
            return match req.instance_id.clone() {
                Some(instance) => self.join_static(req, &instance, new_member_id, now, s),
                None => self.join_dynamic(req, new_member_id, now, s),
            };
        }
        let id = req.member_id.clone();
        if self.pending.contains_key(&id) {
            if let Some(instance) = &req.instance_id {
                // Ids are handed out pending only to dynamic members (Kafka answers this with
                // an internal error too: it cannot come from a well-behaved client).
                tracing::warn!(
                    "Received unexpected JoinGroup with groupInstanceId={instance} for pending \
                     member with memberId={id} of group {}",
                    self.id
                );
                return fail(GroupError::StaticJoinWithPendingMemberId);
            }
            self.pending.remove(&id);
            tracing::info!(
                "Pending dynamic member with id {id} joins group {} in {} state. Adding to the \
                 group now.",
                self.id,
                self.state.name()
            );
            let reason = format!(
                "Adding new member {id} with group instance id null; client reason: {}",
                req.reason()
            );
            let mut out = Vec::new();
            self.add_member(&req, id.clone(), now);
            self.rebalance(now, s, &reason, &mut out);
            return (Outcome::Wait { member: id }, out);
        }
        if let Err(e) = self.validate_member(&id, req.instance_id.as_deref(), "join-group") {
            return fail(e);
        }
        self.join_known(req, now, s)
    }

    /// A dynamic member without a member id: it gets one (and, from JoinGroup v4 on, must
    /// come back with it: Kafka's KIP-394, so a client that times out does not leave a member
    /// behind that nobody will ever heartbeat for).
    fn join_dynamic(
        &mut self,
        req: JoinRequest,
        id: String,
        now: i64,
        s: &GroupSettings,
    ) -> (JoinOutcome, Vec<Delivery>) {
        if req.require_known_member_id {
            tracing::info!(
                "Dynamic member with unknown member id joins group {} in {} state. Created a \
                 new member id {id} and requesting the member to rejoin with this id.",
                self.id,
                self.state.name()
            );
            self.pending
                .insert(id.clone(), now + req.session_timeout_ms as i64);
            return (
                Outcome::Reply(JoinResponse::error(GroupError::MemberIdRequired, &id)),
                vec![],
            );
        }
        tracing::info!(
            "Dynamic member with unknown member id joins group {} in state {}. Created a new \
             member id {id} and added the member to the group.",
            self.id,
            self.state.name()
        );
        let reason = format!(
            "Adding new member {id} with group instance id null; client reason: {}",
            req.reason()
        );
        let mut out = Vec::new();
        self.add_member(&req, id.clone(), now);
        self.rebalance(now, s, &reason, &mut out);
        (Outcome::Wait { member: id }, out)
    }

    /// A JoinGroup from a current member (its id and instance id checked).
    fn join_known(
        &mut self,
        req: JoinRequest,
        now: i64,
        s: &GroupSettings,
    ) -> (JoinOutcome, Vec<Delivery>) {
        let id = req.member_id.clone();
        let state = self.state;
        let is_leader = self.leader.as_deref() == Some(id.as_str());
        let Some(m) = self.members.get_mut(&id) else {
            return (
                Outcome::Reply(JoinResponse::error(GroupError::UnknownMemberId, &id)),
                vec![],
            );
        };
        let same_protocols = m.protocols == req.protocols;
        let reason = match state {
            State::PreparingRebalance => format!(
                "Member {id} joining group during PreparingRebalance; client reason: {}",
                req.reason()
            ),
            // The same member again (it may have missed the answer): this generation's data.
            State::CompletingRebalance if same_protocols => {
                m.last_heartbeat = now;
                return (Outcome::Reply(self.current_join_response(&id)), vec![]);
            }
            State::Stable if same_protocols && !is_leader => {
                m.last_heartbeat = now;
                return (Outcome::Reply(self.current_join_response(&id)), vec![]);
            }
            State::CompletingRebalance => format!(
                "Updating metadata for member {id} during CompletingRebalance; client reason: {}",
                req.reason()
            ),
            // A leader rejoining asks for a rebalance: it saw a change the members' metadata
            // does not show (e.g. new partitions of a subscribed topic).
            State::Stable if is_leader => format!(
                "Leader {id} re-joining group during Stable; client reason: {}",
                req.reason()
            ),
            State::Stable => format!(
                "Updating metadata for member {id} during Stable; client reason: {}",
                req.reason()
            ),
            State::Empty | State::Dead => {
                tracing::warn!(
                    "Attempt to add rejoining member {id} of group {} in unexpected group \
                     state {}",
                    self.id,
                    state.name()
                );
                return (
                    Outcome::Reply(JoinResponse::error(GroupError::UnknownMemberId, &id)),
                    vec![],
                );
            }
        };
        m.last_heartbeat = now;
        m.protocols = req.protocols.clone();
        m.session_timeout_ms = req.session_timeout_ms;
        m.rebalance_timeout_ms = req.rebalance_timeout_ms;
        m.client_id = req.client_id.clone();
        m.client_host = req.client_host.clone();
        // A JoinGroup of this member still waiting is superseded by this one (the
        // coordinator answers the older request when it registers the new one).
        m.join_waiting = true;
        let mut out = Vec::new();
        self.rebalance(now, s, &reason, &mut out);
        (Outcome::Wait { member: id }, out)
    }
}
