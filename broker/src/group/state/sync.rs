//! SyncGroup: the leader's assignment completes the rebalance, followers wait for it; an
//! assignment that could not be stored is dropped and the group rebalances.

use super::{Delivery, Group, Outcome, State, SyncResponse};
use crate::group::{GroupError, GroupSettings};
use bytes::Bytes;
use std::collections::BTreeMap;

impl Group {
    /// SyncGroup. The leader's assignments complete the rebalance.
    #[allow(clippy::too_many_arguments)]
    pub fn sync(
        &mut self,
        member: &str,
        instance: Option<&str>,
        generation: i32,
        protocol_type: Option<&str>,
        protocol_name: Option<&str>,
        assignments: Vec<(String, Bytes)>,
        now: i64,
    ) -> (Outcome<SyncResponse>, Vec<Delivery>) {
        let fail = |e: GroupError| (Outcome::Reply(SyncResponse::error(e)), vec![]);
        if self.state == State::Dead {
            return fail(GroupError::GroupDead);
        }
        if let Err(e) = self.validate_member(member, instance, "sync-group") {
            return fail(e);
        }
        if generation != self.generation {
            return fail(GroupError::IllegalGeneration);
        }
        if protocol_type.is_some_and(|p| Some(p) != self.protocol_type.as_deref())
            || protocol_name.is_some_and(|p| Some(p) != self.protocol.as_deref())
        {
            return fail(GroupError::InconsistentGroupProtocol);
        }
        let statics = self
            .members
            .values()
            .filter(|m| m.instance_id.is_some())
            .count();
        let size = self.members.len();
        let Some(m) = self.members.get_mut(member) else {
            return fail(GroupError::UnknownMemberId);
        };
        m.last_heartbeat = now;
        m.synced = true;
        match self.state {
            State::PreparingRebalance => fail(GroupError::RebalanceInProgress),
            State::Stable => (
                Outcome::Reply(SyncResponse {
                    error: None,
                    protocol_type: self.protocol_type.clone(),
                    protocol_name: self.protocol.clone(),
                    assignment: m.assignment.clone(),
                }),
                vec![],
            ),
            State::CompletingRebalance => {
                let mut out = Vec::new();
                m.sync_waiting = true;
                if self.leader.as_deref() == Some(member) {
                    tracing::info!(
                        "Assignment received from leader {member} for group {} for generation \
                         {}. The group has {size} members, {statics} of which are static.",
                        self.id,
                        self.generation
                    );
                    let mut given: BTreeMap<String, Bytes> = assignments.into_iter().collect();
                    let missing: Vec<&str> = self
                        .members
                        .keys()
                        .filter(|id| !given.contains_key(*id))
                        .map(String::as_str)
                        .collect();
                    if !missing.is_empty() {
                        tracing::warn!(
                            "Setting empty assignments for members {missing:?} of {} for \
                             generation {}.",
                            self.id,
                            self.generation
                        );
                    }
                    for m in self.members.values_mut() {
                        m.assignment = given.remove(&m.id).unwrap_or_default();
                    }
                    self.state = State::Stable;
                    for m in self.members.values_mut().filter(|m| m.sync_waiting) {
                        m.sync_waiting = false;
                        out.push(Delivery::Sync {
                            member: m.id.clone(),
                            response: SyncResponse {
                                error: None,
                                protocol_type: self.protocol_type.clone(),
                                protocol_name: self.protocol.clone(),
                                assignment: m.assignment.clone(),
                            },
                        });
                    }
                }
                (
                    Outcome::Wait {
                        member: member.to_string(),
                    },
                    out,
                )
            }
            State::Empty | State::Dead => fail(GroupError::UnknownMemberId),
        }
    }

    /// The leader's assignment could not be written to the log (`error`): Kafka drops it
    /// and rebalances.
    pub fn assignment_not_stored(
        &mut self,
        error: GroupError,
        leader: &str,
        now: i64,
        s: &GroupSettings,
    ) -> Vec<Delivery> {
        let mut out = Vec::new();
        if self.state != State::Stable {
            return out;
        }
        for m in self.members.values_mut() {
            m.assignment = Bytes::new();
        }
        let reason = format!(
            "Error {error:?} when storing group assignment during SyncGroup (member: {leader})"
        );
        self.prepare_rebalance(now, s, &reason, &mut out);
        out
    }
}
