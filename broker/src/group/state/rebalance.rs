//! The rebalance: preparing it, adding and removing members while it runs, and completing its
//! join phase (Kafka's `prepareRebalance`, `maybePrepareRebalance`, `maybeCompleteJoin`).

use super::{Delivery, Group, JoinRequest, JoinResponse, Member, State, SyncResponse};
use crate::group::{GroupError, GroupSettings};
use bytes::Bytes;

impl Group {
    pub(super) fn prepare_rebalance(
        &mut self,
        now: i64,
        settings: &GroupSettings,
        reason: &str,
        out: &mut Vec<Delivery>,
    ) {
        if self.state == State::CompletingRebalance {
            // The assignment in progress is void: members waiting for it rejoin.
            for m in self.members.values_mut().filter(|m| m.sync_waiting) {
                m.sync_waiting = false;
                out.push(Delivery::Sync {
                    member: m.id.clone(),
                    response: SyncResponse::error(GroupError::RebalanceInProgress),
                });
            }
        }
        if self.state == State::Empty {
            let delay = settings.initial_rebalance_delay_ms;
            let rebalance = self.max_rebalance_timeout();
            self.initial_delay = delay > 0;
            self.initial_delay_ms = delay;
            self.initial_delay_remaining_ms = (rebalance - delay).max(0);
            self.member_added_during_delay = false;
            self.deadline = now + delay.min(rebalance);
        } else {
            self.initial_delay = false;
            self.deadline = now + self.max_rebalance_timeout();
        }
        self.state = State::PreparingRebalance;
        // Kafka logs the state after the transition, so "in state PreparingRebalance" always.
        tracing::info!(
            "Preparing to rebalance group {} in state {} with old generation {} (reason: {reason}).",
            self.id,
            self.state.name(),
            self.generation
        );
    }

    /// Kafka's `maybePrepareRebalance` (a group already preparing keeps its rebalance), then
    /// an attempt to complete the join phase.
    pub(super) fn rebalance(
        &mut self,
        now: i64,
        s: &GroupSettings,
        reason: &str,
        out: &mut Vec<Delivery>,
    ) {
        if matches!(
            self.state,
            State::Empty | State::Stable | State::CompletingRebalance
        ) {
            self.prepare_rebalance(now, s, reason, out);
        }
        self.try_complete_join(now, out);
    }

    pub(super) fn add_member(&mut self, req: &JoinRequest, id: String, now: i64) {
        let member = Member {
            id: id.clone(),
            instance_id: req.instance_id.clone(),
            client_id: req.client_id.clone(),
            client_host: req.client_host.clone(),
            session_timeout_ms: req.session_timeout_ms,
            rebalance_timeout_ms: req.rebalance_timeout_ms,
            protocol_type: req.protocol_type.clone(),
            protocols: req.protocols.clone(),
            assignment: Bytes::new(),
            last_heartbeat: now,
            join_waiting: true,
            sync_waiting: false,
            synced: false,
        };
        if self.members.is_empty() {
            self.protocol_type = Some(req.protocol_type.clone());
        }
        if self.state == State::PreparingRebalance && self.initial_delay {
            self.member_added_during_delay = true;
        }
        if self.leader.is_none() {
            self.leader = Some(id.clone());
        }
        self.members.insert(id, member);
    }

    /// Removes a member, answering its waiting requests.
    pub(super) fn remove_member(&mut self, id: &str, out: &mut Vec<Delivery>) -> bool {
        let Some(m) = self.members.remove(id) else {
            return self.pending.remove(id).is_some();
        };
        if m.join_waiting {
            out.push(Delivery::Join {
                member: m.id.clone(),
                response: JoinResponse::error(GroupError::UnknownMemberId, &m.id),
            });
        }
        if m.sync_waiting {
            out.push(Delivery::Sync {
                member: m.id.clone(),
                response: SyncResponse::error(GroupError::UnknownMemberId),
            });
        }
        if self.leader.as_deref() == Some(id) {
            self.leader = self.members.keys().next().cloned();
        }
        true
    }

    /// Members left or expired: the others rebalance (an Empty group has nobody to tell).
    pub(super) fn after_removal(
        &mut self,
        now: i64,
        settings: &GroupSettings,
        reason: &str,
        out: &mut Vec<Delivery>,
    ) {
        if !matches!(self.state, State::Empty | State::Dead) {
            self.rebalance(now, settings, reason, out);
        }
    }

    /// Kafka's `maybeElectNewJoinedLeader`: the leader must be a member that rejoined; if it
    /// did not, any member that did leads. False when nobody rejoined.
    fn elect_joined_leader(&mut self) -> bool {
        let Some(leader) = self.leader.as_deref().and_then(|l| self.members.get(l)) else {
            return false;
        };
        if leader.join_waiting {
            return true;
        }
        let (old, instance) = (leader.id.clone(), leader.instance_id.clone());
        let instance = instance.as_deref().unwrap_or("None");
        let Some(new) = self.members.values().find(|m| m.join_waiting) else {
            tracing::info!(
                "Group leader [memberId: {old}, groupInstanceId: {instance}] failed to join \
                 before the rebalance timeout and the group couldn't proceed to the next \
                 generation because no member joined."
            );
            return false;
        };
        tracing::info!(
            "Group leader [memberId: {old}, groupInstanceId: {instance}] failed to join before \
             the rebalance timeout. Member {} was elected as the new leader.",
            new.id
        );
        self.leader = Some(new.id.clone());
        true
    }

    /// Completes the join phase when every member has rejoined and every member id handed out
    /// was used (and no initial delay runs), or when the rebalance timeout is over. Dynamic
    /// members that did not rejoin are removed then; static members stay (Kafka's rule: their
    /// instance may come back within its session and take its place again).
    pub fn try_complete_join(&mut self, now: i64, out: &mut Vec<Delivery>) {
        if self.state != State::PreparingRebalance {
            return;
        }
        if self.initial_delay
            && now >= self.deadline
            && self.member_added_during_delay
            && self.initial_delay_remaining_ms > 0
        {
            // Members are still arriving: wait another delay, within the rebalance timeout.
            let more = self.initial_delay_ms.min(self.initial_delay_remaining_ms);
            self.initial_delay_remaining_ms -= more;
            self.member_added_during_delay = false;
            self.deadline = now + more;
            return;
        }
        let all_joined = self.members.values().all(|m| m.join_waiting) && self.pending.is_empty();
        if !(now >= self.deadline || (all_joined && !self.initial_delay)) {
            return;
        }
        let gone: Vec<String> = self
            .members
            .values()
            .filter(|m| !m.join_waiting && m.instance_id.is_none())
            .map(|m| m.id.clone())
            .collect();
        if !gone.is_empty() {
            for id in &gone {
                self.remove_member(id, out);
            }
            tracing::info!(
                "Group {} removed dynamic members who haven't joined: {gone:?}",
                self.id
            );
        }
        if !self.elect_joined_leader() && !self.members.is_empty() {
            // Only static members that did not rejoin are left: wait for them another
            // rebalance timeout, or until their sessions expire.
            tracing::error!(
                "Group {} could not complete rebalance because no members rejoined.",
                self.id
            );
            self.initial_delay = false;
            self.deadline = now + self.max_rebalance_timeout();
            return;
        }
        self.initial_delay = false;
        self.generation += 1;
        if self.members.is_empty() {
            self.state = State::Empty;
            self.empty_since = Some(now);
            // Kafka keeps the protocol type of an Empty group (ListGroups shows "consumer").
            self.protocol = None;
            self.leader = None;
            tracing::info!(
                "Group {} with generation {} is now empty.",
                self.id,
                self.generation
            );
            return;
        }
        self.protocol = self.select_protocol();
        self.state = State::CompletingRebalance;
        self.deadline = now + self.max_rebalance_timeout();
        tracing::info!(
            "Stabilized group {} generation {} with {} members.",
            self.id,
            self.generation,
            self.members.len()
        );
        let leader = self.leader.clone().unwrap_or_default();
        let protocol = self.protocol.clone().unwrap_or_default();
        let all: Vec<(String, Option<String>, Bytes)> = self
            .members
            .values()
            .map(|m| {
                (
                    m.id.clone(),
                    m.instance_id.clone(),
                    m.metadata_for(&protocol),
                )
            })
            .collect();
        for m in self.members.values_mut() {
            m.synced = false;
            m.last_heartbeat = now;
            // A static member that did not rejoin has no JoinGroup to answer.
            if !std::mem::take(&mut m.join_waiting) {
                continue;
            }
            out.push(Delivery::Join {
                member: m.id.clone(),
                response: JoinResponse {
                    error: None,
                    generation: self.generation,
                    protocol_type: self.protocol_type.clone(),
                    protocol_name: self.protocol.clone(),
                    leader: leader.clone(),
                    member_id: m.id.clone(),
                    members: if m.id == leader { all.clone() } else { vec![] },
                    skip_assignment: false,
                },
            });
        }
    }

    pub(super) fn current_join_response(&self, member: &str) -> JoinResponse {
        let leader = self.leader.clone().unwrap_or_default();
        let protocol = self.protocol.clone().unwrap_or_default();
        JoinResponse {
            error: None,
            generation: self.generation,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol.clone(),
            leader: leader.clone(),
            member_id: member.to_string(),
            members: if member == leader {
                self.members
                    .values()
                    .map(|m| {
                        (
                            m.id.clone(),
                            m.instance_id.clone(),
                            m.metadata_for(&protocol),
                        )
                    })
                    .collect()
            } else {
                vec![]
            },
            skip_assignment: false,
        }
    }
}
