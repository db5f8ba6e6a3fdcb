//! Static members (KIP-345): an instance id that keeps its member across restarts, the new
//! incarnation taking over the old member id (fencing the old one's requests), without a
//! rebalance where the group's protocol stays (KIP-814), and the takeover taken back when it
//! could not be stored.

use super::{Delivery, Group, JoinOutcome, JoinRequest, JoinResponse, Outcome, State};
use super::{StaticSwap, SyncResponse};
use crate::group::{GroupError, GroupSettings};

impl Group {
    /// A static member without a member id (KIP-345): a new instance id joins as a new
    /// member; a known one takes over its old member, whose waiting requests are fenced. In a
    /// Stable group whose selected protocol stays, the takeover keeps the group's generation
    /// and assignment, the leader's too (KIP-814): nobody rebalances.
    pub(super) fn join_static(
        &mut self,
        req: JoinRequest,
        instance: &str,
        new_id: String,
        now: i64,
        s: &GroupSettings,
    ) -> (JoinOutcome, Vec<Delivery>) {
        let mut out = Vec::new();
        let Some(old) = self.static_member(instance).map(str::to_string) else {
            tracing::info!(
                "Static member with groupInstanceId={instance} and unknown member id joins \
                 group {} in {} state. Created a new member id {new_id} for this member and \
                 added to the group.",
                self.id,
                self.state.name()
            );
            let reason = format!(
                "Adding new member {new_id} with group instance id {instance}; client reason: {}",
                req.reason()
            );
            self.add_member(&req, new_id.clone(), now);
            self.rebalance(now, s, &reason, &mut out);
            return (Outcome::Wait { member: new_id }, out);
        };
        tracing::info!(
            "Static member with groupInstanceId={instance} and unknown member id joins group {} \
             in {} state. Replacing previously mapped member {old} with this groupInstanceId.",
            self.id,
            self.state.name()
        );
        let previous_leader = self.leader.clone().unwrap_or_default();
        let swap = self.swap_static(instance, &old, &new_id, &req, now, &mut out);
        match self.state {
            State::Stable if self.select_protocol() == self.protocol => {
                tracing::info!(
                    "Static member which joins during Stable stage and doesn't affect the \
                     selected protocol will not trigger a rebalance."
                );
                let current = self.current_join_response(&new_id);
                let response = if req.supports_skip_assignment {
                    // The leader learns it leads (so it goes on watching metadata for
                    // changes) but keeps the group's assignment instead of making a new one.
                    JoinResponse {
                        skip_assignment: current.leader == new_id,
                        ..current
                    }
                } else {
                    // Before JoinGroup v9 a leader cannot be told not to assign, and a Stable
                    // group would ignore its new assignment: it is answered with the previous
                    // leader id, so every member, the leader too, takes the follower's path
                    // and syncs for the assignment it has.
                    JoinResponse {
                        leader: previous_leader,
                        members: vec![],
                        ..current
                    }
                };
                (Outcome::ReplyWhenStored(response, swap), out)
            }
            State::Stable => {
                let reason = format!(
                    "Group's selectedProtocol will change because static member {new_id} with \
                     instance id {instance} joined with change of protocol; client reason: {}",
                    req.reason()
                );
                self.mark_joining(&new_id);
                self.rebalance(now, s, &reason, &mut out);
                (Outcome::Wait { member: new_id }, out)
            }
            State::CompletingRebalance => {
                // The leader may already be assigning to the old member id, which the new one
                // would never get: rebalance.
                let reason = format!(
                    "Updating metadata for static member {new_id} with instance id {instance}; \
                     client reason: {}",
                    req.reason()
                );
                self.mark_joining(&new_id);
                self.rebalance(now, s, &reason, &mut out);
                (Outcome::Wait { member: new_id }, out)
            }
            State::PreparingRebalance | State::Empty | State::Dead => {
                self.mark_joining(&new_id);
                self.try_complete_join(now, &mut out);
                (Outcome::Wait { member: new_id }, out)
            }
        }
    }

    fn mark_joining(&mut self, id: &str) {
        if let Some(m) = self.members.get_mut(id) {
            m.join_waiting = true;
        }
    }

    /// Kafka's `replaceStaticMember` and `updateMember`: the old member's waiting requests
    /// are fenced, and the member (assignment, leadership included) carries on under the new
    /// id with the new incarnation's protocols and timeouts, its session starting now.
    fn swap_static(
        &mut self,
        instance: &str,
        old: &str,
        new: &str,
        req: &JoinRequest,
        now: i64,
        out: &mut Vec<Delivery>,
    ) -> StaticSwap {
        self.fence(old, out);
        let mut swap = StaticSwap {
            instance_id: instance.to_string(),
            old_member_id: old.to_string(),
            new_member_id: new.to_string(),
            protocols: req.protocols.clone(),
            session_timeout_ms: req.session_timeout_ms,
            rebalance_timeout_ms: req.rebalance_timeout_ms,
        };
        if let Some(mut m) = self.members.remove(old) {
            std::mem::swap(&mut m.protocols, &mut swap.protocols);
            std::mem::swap(&mut m.session_timeout_ms, &mut swap.session_timeout_ms);
            std::mem::swap(&mut m.rebalance_timeout_ms, &mut swap.rebalance_timeout_ms);
            m.id = new.to_string();
            m.last_heartbeat = now;
            self.members.insert(new.to_string(), m);
        }
        if self.leader.as_deref() == Some(old) {
            self.leader = Some(new.to_string());
        }
        self.membership_changes += 1;
        swap
    }

    /// Takes back a static member's takeover whose membership could not be written (Kafka
    /// reverts it the same way): the old member id returns with its protocols and timeouts,
    /// its session starting now. Nothing happens if the group moved on meanwhile.
    pub fn undo_static_swap(&mut self, swap: StaticSwap, now: i64) {
        if self.static_member(&swap.instance_id) != Some(swap.new_member_id.as_str()) {
            return;
        }
        let Some(mut m) = self.members.remove(&swap.new_member_id) else {
            return;
        };
        m.id = swap.old_member_id.clone();
        m.protocols = swap.protocols;
        m.session_timeout_ms = swap.session_timeout_ms;
        m.rebalance_timeout_ms = swap.rebalance_timeout_ms;
        m.last_heartbeat = now;
        self.members.insert(swap.old_member_id.clone(), m);
        if self.leader.as_deref() == Some(swap.new_member_id.as_str()) {
            self.leader = Some(swap.old_member_id);
        }
        self.membership_changes += 1;
    }

    /// Answers the waiting requests of a static member's old id: a new instance took over.
    fn fence(&mut self, old: &str, out: &mut Vec<Delivery>) {
        if let Some(m) = self.members.get_mut(old) {
            if std::mem::take(&mut m.join_waiting) {
                out.push(Delivery::Join {
                    member: old.to_string(),
                    response: JoinResponse::error(GroupError::FencedInstanceId, old),
                });
            }
            if std::mem::take(&mut m.sync_waiting) {
                out.push(Delivery::Sync {
                    member: old.to_string(),
                    response: SyncResponse::error(GroupError::FencedInstanceId),
                });
            }
        }
    }
}
