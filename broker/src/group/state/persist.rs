//! The membership as the group stores it in `__consumer_offsets` (Kafka's group metadata
//! record) and restores it at start-up.

use super::{Group, Member, State};
use crate::group::records::{GroupMeta, MemberMeta};
use bytes::Bytes;

impl Group {
    /// The membership to persist, in the states Kafka persists (Stable after the leader's
    /// assignment, Empty after the last member left); `None` in between.
    pub fn snapshot(&self, now: i64) -> Option<GroupMeta> {
        if !matches!(self.state, State::Stable | State::Empty) {
            return None;
        }
        let protocol = self.protocol.clone().unwrap_or_default();
        Some(GroupMeta {
            protocol_type: self.protocol_type.clone().unwrap_or_default(),
            generation: self.generation,
            protocol: self.protocol.clone(),
            leader: self.leader.clone(),
            state_timestamp: now,
            members: self
                .members
                .values()
                .map(|m| MemberMeta {
                    member_id: m.id.clone(),
                    instance_id: m.instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    rebalance_timeout_ms: m.rebalance_timeout_ms,
                    session_timeout_ms: m.session_timeout_ms,
                    subscription: m.metadata_for(&protocol).to_vec(),
                    assignment: m.assignment.to_vec(),
                })
                .collect(),
        })
    }

    /// Restores a persisted membership (at start-up): Stable with its members, each given a
    /// fresh session to come back in, or Empty.
    pub fn restore(&mut self, meta: GroupMeta, now: i64) {
        let protocol = meta.protocol.clone().unwrap_or_default();
        self.generation = meta.generation;
        self.members = meta
            .members
            .into_iter()
            .map(|m| {
                let member = Member {
                    id: m.member_id.clone(),
                    instance_id: m.instance_id,
                    client_id: m.client_id,
                    client_host: m.client_host,
                    session_timeout_ms: m.session_timeout_ms,
                    rebalance_timeout_ms: m.rebalance_timeout_ms,
                    protocol_type: meta.protocol_type.clone(),
                    protocols: vec![(protocol.clone(), Bytes::from(m.subscription))],
                    assignment: Bytes::from(m.assignment),
                    last_heartbeat: now,
                    join_waiting: false,
                    sync_waiting: false,
                    synced: true,
                };
                (m.member_id, member)
            })
            .collect();
        self.pending.clear();
        if self.members.is_empty() {
            self.state = State::Empty;
            self.empty_since = Some(meta.state_timestamp);
            self.protocol_type = Some(meta.protocol_type).filter(|t| !t.is_empty());
            self.protocol = None;
            self.leader = None;
        } else {
            self.state = State::Stable;
            self.protocol_type = Some(meta.protocol_type);
            self.protocol = meta.protocol;
            self.leader = meta
                .leader
                .filter(|l| self.members.contains_key(l))
                .or_else(|| self.members.keys().next().cloned());
        }
    }
}
