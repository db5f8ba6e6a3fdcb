//! One group's state machine, as Kafka's classic coordinator runs it: Empty →
//! PreparingRebalance → CompletingRebalance → Stable (→ Dead when deleted). Pure logic driven
//! with explicit time: requests that must wait (JoinGroup until the rebalance completes,
//! SyncGroup until the leader's assignment) are marked waiting, and their answers come back as
//! [`Delivery`]s from whichever call completes them.
//!
//! Its one effect outside itself is the log: a group's transitions are logged at INFO where
//! Kafka's classic coordinator (`GroupMetadataManager`, `ClassicGroup`) logs them, in its
//! words, so a group can be followed in Weir's log as an operator would follow it in Kafka's.
//!
//! The state machine's parts: `messages` (what goes in and out), `rebalance` (preparing and
//! completing a rebalance), `join` (JoinGroup), `static_members` (KIP-345 instance ids),
//! `sync` (SyncGroup), `heartbeat` (Heartbeat, LeaveGroup), `expiry` (timers),
//! `offsets` (commit checks, offset expiry), `persist` (the stored membership).

mod expiry;
mod heartbeat;
mod join;
mod messages;
mod offsets;
mod persist;
mod rebalance;
mod static_members;
mod sync;

#[cfg(test)]
mod expiry_tests;
#[cfg(test)]
mod join_tests;
#[cfg(test)]
mod static_tests;
#[cfg(test)]
mod test_support;

pub use messages::{
    Delivery, JoinOutcome, JoinRequest, JoinResponse, Outcome, StaticSwap, SyncResponse,
};

use super::records::Committed;
use super::GroupError;
use bytes::Bytes;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
    Dead,
}

impl State {
    pub fn name(self) -> &'static str {
        match self {
            State::Empty => "Empty",
            State::PreparingRebalance => "PreparingRebalance",
            State::CompletingRebalance => "CompletingRebalance",
            State::Stable => "Stable",
            State::Dead => "Dead",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Member {
    pub id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    pub protocol_type: String,
    /// (name, metadata), in the member's order of preference.
    pub protocols: Vec<(String, Bytes)>,
    pub assignment: Bytes,
    pub last_heartbeat: i64,
    /// A JoinGroup of this member waits for the rebalance to complete.
    pub join_waiting: bool,
    /// A SyncGroup of this member waits for the leader's assignment.
    pub sync_waiting: bool,
    /// Whether the member sent SyncGroup in this generation (pending-sync expiry).
    pub synced: bool,
}

impl Member {
    fn metadata_for(&self, protocol: &str) -> Bytes {
        self.protocols
            .iter()
            .find(|(n, _)| n == protocol)
            .map(|(_, m)| m.clone())
            .unwrap_or_default()
    }
}

#[derive(Debug, Clone)]
pub struct Group {
    pub id: String,
    pub state: State,
    pub generation: i32,
    pub protocol_type: Option<String>,
    pub protocol: Option<String>,
    pub leader: Option<String>,
    pub members: BTreeMap<String, Member>,
    /// Member ids handed out with MEMBER_ID_REQUIRED, and until when they may join. Kept
    /// across generations, as Kafka keeps them, until they join, leave or their session
    /// times out: a member that got its id while another generation completed still joins
    /// with it.
    pub pending: BTreeMap<String, i64>,
    /// When the current rebalance (join phase) or pending-sync phase ends at the latest.
    pub deadline: i64,
    /// The first rebalance of an empty group waits `group.initial.rebalance.delay.ms`, and
    /// waits again (up to the rebalance timeout) while new members keep arriving: Kafka's
    /// `InitialDelayedJoin`.
    initial_delay: bool,
    initial_delay_ms: i64,
    initial_delay_remaining_ms: i64,
    member_added_during_delay: bool,
    /// Counts changes of member ids outside a rebalance (a static member taking over its old
    /// id), so the coordinator knows the persisted membership is stale.
    pub membership_changes: u64,
    /// Committed offsets: (topic, partition) → offset.
    pub offsets: BTreeMap<(String, i32), Committed>,
    /// When the group last became Empty (offsets expire from then on).
    pub empty_since: Option<i64>,
}

pub type Result<T> = std::result::Result<T, GroupError>;

impl Group {
    pub fn new(id: &str) -> Self {
        Self {
            id: id.to_string(),
            state: State::Empty,
            generation: 0,
            protocol_type: None,
            protocol: None,
            leader: None,
            members: BTreeMap::new(),
            pending: BTreeMap::new(),
            deadline: 0,
            initial_delay: false,
            initial_delay_ms: 0,
            initial_delay_remaining_ms: 0,
            member_added_during_delay: false,
            membership_changes: 0,
            offsets: BTreeMap::new(),
            empty_since: None,
        }
    }

    /// Protocols every member supports (all of `extra`'s too, if given).
    fn candidates(&self, extra: Option<&[(String, Bytes)]>) -> Vec<String> {
        let mut out: Vec<String> = match (self.members.values().next(), extra) {
            (Some(m), _) => m.protocols.iter().map(|(n, _)| n.clone()).collect(),
            (None, Some(e)) => e.iter().map(|(n, _)| n.clone()).collect(),
            (None, None) => return vec![],
        };
        out.retain(|p| {
            self.members
                .values()
                .all(|m| m.protocols.iter().any(|(n, _)| n == p))
                && extra.is_none_or(|e| e.iter().any(|(n, _)| n == p))
        });
        out
    }

    /// Kafka's vote: each member votes for its most preferred candidate; most votes wins.
    pub fn select_protocol(&self) -> Option<String> {
        let candidates = self.candidates(None);
        let mut votes: Vec<(String, usize)> = candidates.iter().map(|c| (c.clone(), 0)).collect();
        for m in self.members.values() {
            if let Some((name, _)) = m.protocols.iter().find(|(n, _)| candidates.contains(n)) {
                if let Some(v) = votes.iter_mut().find(|(c, _)| c == name) {
                    v.1 += 1;
                }
            }
        }
        let max = votes.iter().map(|(_, v)| *v).max()?;
        votes.into_iter().find(|(_, v)| *v == max).map(|(c, _)| c)
    }

    fn max_rebalance_timeout(&self) -> i64 {
        self.members
            .values()
            .map(|m| m.rebalance_timeout_ms as i64)
            .max()
            .unwrap_or(0)
    }

    /// The member id a static instance id maps to now (Kafka's `staticMembers`).
    pub fn static_member(&self, instance: &str) -> Option<&str> {
        self.members
            .values()
            .find(|m| m.instance_id.as_deref() == Some(instance))
            .map(|m| m.id.as_str())
    }

    /// Kafka's `validateMember`: a request naming an instance id must come from the member
    /// that instance maps to now (an older incarnation of a static member is fenced, so it
    /// stops instead of competing with its replacement), and the member must exist.
    fn validate_member(&self, member: &str, instance: Option<&str>, operation: &str) -> Result<()> {
        if let Some(instance) = instance {
            match self.static_member(instance) {
                None => return Err(GroupError::UnknownMemberId),
                Some(current) if current != member => {
                    tracing::info!(
                        "Request memberId={member} for static member with \
                         groupInstanceId={instance} is fenced by existing memberId={current} \
                         during operation {operation}"
                    );
                    return Err(GroupError::FencedInstanceId);
                }
                Some(_) => {}
            }
        }
        if self.members.contains_key(member) {
            Ok(())
        } else {
            Err(GroupError::UnknownMemberId)
        }
    }

    /// DeleteGroups: only an empty group can go.
    pub fn delete(&mut self) -> Result<()> {
        match self.state {
            State::Empty => {
                self.state = State::Dead;
                Ok(())
            }
            State::Dead => Err(GroupError::GroupIdNotFound),
            _ => Err(GroupError::NonEmptyGroup),
        }
    }

    /// Whether nothing is left worth keeping in memory.
    pub fn is_gone(&self) -> bool {
        self.state == State::Dead
            || (self.state == State::Empty
                && self.members.is_empty()
                && self.pending.is_empty()
                && self.offsets.is_empty()
                && self.generation == 0)
    }
}
