//! The leader's side of one partition (Kafka's `Partition` and `Replica` as the leader keeps
//! them): followers' positions, the ISR and the ISR changes to propose, the high watermark, and
//! whether acks=all requests may be appended and answered.
//!
//! Rules, as Kafka applies them:
//! - A follower is *caught up* when its log end equals the leader's, or it was within
//!   `replica.lag.time.max.ms` of that: its `last_caught_up_ms` is the last time one of its
//!   fetches asked for the leader's log end as of that fetch (or of the previous one).
//! - The ISR shrinks by the followers that are no longer caught up; it expands by a follower
//!   whose log end reached the high watermark and the start of the current leader epoch, and that
//!   is registered, unfenced and not shutting down with the broker epoch it fetches with.
//!   One proposal at a time; until the controller answers, the HW already counts an added
//!   follower (the *maximal* ISR, KIP-497) but never drops a removed one.
//! - The high watermark is the smallest log end offset of the maximal ISR and of followers that
//!   are caught up and eligible (so a catching-up follower is not left behind forever), and it
//!   never moves while the committed ISR is smaller than `min.insync.replicas`.
//! - acks=all: refused before the append with NOT_ENOUGH_REPLICAS when the ISR is below
//!   `min.insync.replicas`; answered once the HW passes the batch, with
//!   NOT_ENOUGH_REPLICAS_AFTER_APPEND if the maximal ISR fell below it meanwhile.

use super::PartitionState;
use crate::types::{BrokerEpoch, LeaderEpoch, NodeId, Offset, PartitionEpoch};
use std::collections::BTreeMap;

/// The settings that drive a leader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaderConfig {
    /// `replica.lag.time.max.ms`.
    pub replica_lag_time_max_ms: i64,
    /// `min.insync.replicas` (topic, else broker).
    pub min_insync_replicas: usize,
}

/// What the leader's metadata image says of another broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BrokerStatus {
    pub epoch: BrokerEpoch,
    pub fenced: bool,
    pub shutting_down: bool,
}

/// The leader's view of the cluster's brokers (its metadata image).
pub trait BrokerView {
    fn broker(&self, id: NodeId) -> Option<BrokerStatus>;
}

/// A follower as the leader sees it (Kafka's `ReplicaState`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Follower {
    /// Its log end offset, from its last fetch; -1 until it fetched in this leader epoch.
    pub log_end: Offset,
    pub log_start: Offset,
    /// The leader's log end when the last fetch arrived.
    pub last_fetch_leader_log_end: Offset,
    pub last_fetch_ms: i64,
    /// The last time it was fully caught up (see the module docs); 0 = never.
    pub last_caught_up_ms: i64,
    /// The broker epoch its fetches carry (KIP-903); `None` before the first.
    pub broker_epoch: Option<BrokerEpoch>,
}

impl Follower {
    fn reset(now_ms: i64, in_isr: bool) -> Self {
        Self {
            log_end: -1,
            log_start: -1,
            last_fetch_leader_log_end: -1,
            last_fetch_ms: 0,
            // An ISR member gets a full lag period to show up; anyone else must catch up first,
            // so a follower outside the ISR never holds the high watermark back.
            last_caught_up_ms: if in_isr { now_ms } else { 0 },
            broker_epoch: None,
        }
    }

    fn is_caught_up(&self, leader_log_end: Offset, now_ms: i64, max_lag_ms: i64) -> bool {
        self.log_end == leader_log_end || now_ms - self.last_caught_up_ms <= max_lag_ms
    }
}

/// An ISR change sent to the controller (AlterPartition), against the partition epoch it was
/// computed from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IsrProposal {
    pub leader_epoch: LeaderEpoch,
    pub partition_epoch: PartitionEpoch,
    /// The proposed ISR with each member's broker epoch (-1: not known, KIP-903).
    pub isr: Vec<(NodeId, BrokerEpoch)>,
}

impl IsrProposal {
    pub fn members(&self) -> Vec<NodeId> {
        self.isr.iter().map(|(id, _)| *id).collect()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Pending {
    Expand { adding: NodeId, sent: IsrProposal },
    Shrink { sent: IsrProposal },
}

impl Pending {
    fn sent(&self) -> &IsrProposal {
        match self {
            Pending::Expand { sent, .. } | Pending::Shrink { sent } => sent,
        }
    }
}

/// How the controller answered a proposal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProposalResult {
    /// Applied (or already so): the partition's state after it.
    Committed(PartitionState),
    /// Refused; `retriable` says whether to send the same proposal again (Kafka retries only
    /// unexpected errors; a refusal such as INELIGIBLE_REPLICA or OPERATION_NOT_ATTEMPTED returns
    /// to the committed state, and stale-epoch answers wait for new metadata).
    Refused { kind: Refusal },
}

/// Why the controller refused a proposal, in Kafka's terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// OPERATION_NOT_ATTEMPTED or INELIGIBLE_REPLICA: not applied; back to the committed ISR.
    NotApplied,
    /// FENCED_LEADER_EPOCH, INVALID_UPDATE_VERSION, UNKNOWN_TOPIC_OR_PARTITION, ...: this leader's
    /// view is stale; wait for the metadata that supersedes it.
    Stale,
    /// Anything else (the controller moved, a timeout): send the same proposal again.
    Retry,
}

/// What the caller does after an input: publish a new high watermark to the log and complete
/// waiters below it, and/or send an ISR proposal.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LeaderActions {
    pub high_watermark: Option<Offset>,
    pub propose: Option<IsrProposal>,
}

/// A follower fetch the leader refuses (the follower retries or waits for metadata).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FollowerFetchError {
    /// The fetch carries a broker epoch older than the registered one: a previous incarnation.
    #[error("stale broker epoch {fetch} (registered {registered})")]
    StaleBrokerEpoch {
        fetch: BrokerEpoch,
        registered: BrokerEpoch,
    },
    /// Not one of this partition's replicas (yet): UNKNOWN_LEADER_EPOCH, so it retries.
    #[error("replica {0} is not assigned to this partition")]
    NotAReplica(NodeId),
}

/// Where acks=all stands for a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckStatus {
    Waiting,
    Done,
    /// Committed while the ISR was below `min.insync.replicas`.
    NotEnoughReplicasAfterAppend,
}

/// One partition led by this broker.
#[derive(Debug, Clone)]
pub struct LeaderState {
    local: NodeId,
    state: PartitionState,
    pending: Option<Pending>,
    /// Where this leader epoch's first batch goes: a follower must reach it to join the ISR.
    epoch_start_offset: Offset,
    followers: BTreeMap<NodeId, Follower>,
    log_end: Offset,
    high_watermark: Offset,
    config: LeaderConfig,
}

impl LeaderState {
    /// Becomes leader of `state` (whose leader is `local`) with the local log at `log_end` and
    /// its checkpointed high watermark.
    pub fn new(
        local: NodeId,
        state: PartitionState,
        log_end: Offset,
        high_watermark: Offset,
        config: LeaderConfig,
        now_ms: i64,
    ) -> Self {
        debug_assert_eq!(state.leader, local, "a leader state for another leader");
        let mut me = Self {
            local,
            pending: None,
            epoch_start_offset: log_end,
            followers: BTreeMap::new(),
            log_end,
            high_watermark: high_watermark.min(log_end).max(0),
            config,
            state,
        };
        me.reset_followers(now_ms);
        me
    }

    fn reset_followers(&mut self, now_ms: i64) {
        let state = &self.state;
        self.followers = state
            .replicas
            .iter()
            .filter(|r| **r != self.local)
            .map(|r| (*r, Follower::reset(now_ms, state.isr.contains(r))))
            .collect();
    }

    pub fn state(&self) -> &PartitionState {
        &self.state
    }

    pub fn leader_epoch(&self) -> LeaderEpoch {
        self.state.leader_epoch
    }

    pub fn high_watermark(&self) -> Offset {
        self.high_watermark
    }

    pub fn epoch_start_offset(&self) -> Offset {
        self.epoch_start_offset
    }

    pub fn follower(&self, id: NodeId) -> Option<&Follower> {
        self.followers.get(&id)
    }

    pub fn set_config(&mut self, config: LeaderConfig) -> LeaderActions {
        self.config = config;
        LeaderActions {
            high_watermark: self.maybe_advance_hw(None, i64::MIN),
            propose: None,
        }
    }

    /// The committed ISR.
    pub fn isr(&self) -> &[NodeId] {
        &self.state.isr
    }

    /// The ISR the high watermark and acks=all count: the committed one plus a follower whose
    /// addition is being proposed.
    pub fn maximal_isr(&self) -> Vec<NodeId> {
        let mut isr = self.state.isr.clone();
        if let Some(Pending::Expand { adding, .. }) = &self.pending {
            if !isr.contains(adding) {
                isr.push(*adding);
            }
        }
        isr
    }

    pub fn is_under_min_isr(&self) -> bool {
        self.state.isr.len() < self.config.min_insync_replicas
    }

    /// A new committed state from the metadata log while this broker stays leader. An older
    /// partition epoch is ignored (an AlterPartition answer may already have brought a newer
    /// one), and so is the state this leader already has (the same partition epoch: a replayed
    /// image, or the record of a change the AlterPartition answer brought first) — it decided
    /// nothing about a proposal made since, which must keep counting in the maximal ISR until
    /// its own answer or a newer partition epoch. A new leader epoch restarts the followers'
    /// bookkeeping, as becoming leader does.
    pub fn update_state(&mut self, state: PartitionState, now_ms: i64) -> LeaderActions {
        debug_assert_eq!(state.leader, self.local);
        if state.partition_epoch < self.state.partition_epoch
            || (state.partition_epoch == self.state.partition_epoch
                && state.leader_epoch == self.state.leader_epoch)
        {
            return LeaderActions::default();
        }
        let new_epoch = state.leader_epoch > self.state.leader_epoch;
        self.state = state;
        // Whatever was proposed was decided, one way or the other: the log says how.
        self.pending = None;
        if new_epoch {
            self.epoch_start_offset = self.log_end;
            self.reset_followers(now_ms);
        } else {
            // Replicas may have changed: keep what is known of those that stay.
            let mut followers = BTreeMap::new();
            for r in self.state.replicas.iter().filter(|r| **r != self.local) {
                let f = self
                    .followers
                    .get(r)
                    .copied()
                    .unwrap_or_else(|| Follower::reset(now_ms, self.state.isr.contains(r)));
                followers.insert(*r, f);
            }
            self.followers = followers;
        }
        LeaderActions {
            high_watermark: self.maybe_advance_hw(None, now_ms),
            propose: None,
        }
    }

    /// The local log grew to `log_end` (an append finished). With no follower in the ISR the
    /// high watermark follows at once.
    pub fn on_append(&mut self, log_end: Offset, now_ms: i64) -> Option<Offset> {
        debug_assert!(
            log_end >= self.log_end,
            "the log end never goes back on a leader"
        );
        self.log_end = log_end;
        self.maybe_advance_hw(None, now_ms)
    }

    /// A follower fetched at `fetch_offset` (its log end) with `log_start`, at `now_ms`, with the
    /// broker epoch it registered with (-1 if it sent none). `leader_log_end` is the leader's log
    /// end before the read. Call only for fetches that did not report a diverging epoch.
    pub fn on_follower_fetch(
        &mut self,
        replica: NodeId,
        broker_epoch: BrokerEpoch,
        fetch_offset: Offset,
        log_start: Offset,
        now_ms: i64,
        brokers: &impl BrokerView,
    ) -> Result<LeaderActions, FollowerFetchError> {
        if let Some(b) = brokers.broker(replica) {
            if broker_epoch != -1 && b.epoch > broker_epoch {
                return Err(FollowerFetchError::StaleBrokerEpoch {
                    fetch: broker_epoch,
                    registered: b.epoch,
                });
            }
        }
        let leader_log_end = self.log_end;
        let f = self
            .followers
            .get_mut(&replica)
            .ok_or(FollowerFetchError::NotAReplica(replica))?;
        let previous_log_end = f.log_end;
        // Kafka's lastCaughtUpTime: this fetch reached the leader's end as of now, or the end as
        // of the previous fetch (so a follower of a busy partition, always a little behind, can
        // still be in sync).
        if fetch_offset >= leader_log_end {
            f.last_caught_up_ms = f.last_caught_up_ms.max(now_ms);
        } else if fetch_offset >= f.last_fetch_leader_log_end && f.last_fetch_leader_log_end >= 0 {
            f.last_caught_up_ms = f.last_caught_up_ms.max(f.last_fetch_ms);
        }
        f.log_end = fetch_offset;
        f.log_start = log_start;
        f.last_fetch_leader_log_end = f.last_fetch_leader_log_end.max(leader_log_end);
        f.last_fetch_ms = now_ms;
        f.broker_epoch = Some(broker_epoch);
        let propose = self.maybe_expand(replica, brokers);
        let high_watermark = if previous_log_end != fetch_offset || propose.is_some() {
            self.maybe_advance_hw(Some(brokers), now_ms)
        } else {
            None
        };
        Ok(LeaderActions {
            high_watermark,
            propose,
        })
    }

    /// Periodic check (Kafka runs it every `replica.lag.time.max.ms / 2`): followers of the ISR
    /// that are no longer caught up are proposed out of it.
    pub fn tick(&mut self, now_ms: i64) -> LeaderActions {
        if self.pending.is_some() {
            return LeaderActions::default();
        }
        let out: Vec<NodeId> = self
            .state
            .isr
            .iter()
            .filter(|r| **r != self.local)
            .filter(|r| {
                self.followers.get(r).is_none_or(|f| {
                    !f.is_caught_up(self.log_end, now_ms, self.config.replica_lag_time_max_ms)
                })
            })
            .copied()
            .collect();
        if out.is_empty() {
            return LeaderActions::default();
        }
        let isr: Vec<NodeId> = self
            .state
            .isr
            .iter()
            .filter(|r| !out.contains(r))
            .copied()
            .collect();
        let sent = self.proposal(isr);
        self.pending = Some(Pending::Shrink { sent: sent.clone() });
        LeaderActions {
            high_watermark: None,
            propose: Some(sent),
        }
    }

    /// The controller's answer to the proposal in flight.
    pub fn on_proposal_result(&mut self, result: ProposalResult, now_ms: i64) -> LeaderActions {
        let Some(pending) = self.pending.clone() else {
            // Superseded by metadata already.
            return LeaderActions::default();
        };
        match result {
            ProposalResult::Committed(state) => {
                if state.leader != self.local
                    || state.leader_epoch != self.state.leader_epoch
                    || state.partition_epoch < self.state.partition_epoch
                {
                    return LeaderActions::default();
                }
                self.state = state;
                self.pending = None;
                LeaderActions {
                    high_watermark: self.maybe_advance_hw(None, now_ms),
                    propose: None,
                }
            }
            ProposalResult::Refused {
                kind: Refusal::NotApplied,
            } => {
                self.pending = None;
                LeaderActions::default()
            }
            // Stays pending: the metadata that explains the refusal will replace the state.
            ProposalResult::Refused {
                kind: Refusal::Stale,
            } => LeaderActions::default(),
            ProposalResult::Refused {
                kind: Refusal::Retry,
            } => LeaderActions {
                high_watermark: None,
                propose: Some(pending.sent().clone()),
            },
        }
    }

    /// Whether an acks=all produce may be appended now (Kafka checks before the append).
    pub fn check_acks_all_append(&self) -> Result<(), NotEnoughReplicas> {
        if self.is_under_min_isr() {
            return Err(NotEnoughReplicas {
                isr: self.state.isr.len(),
                min_isr: self.config.min_insync_replicas,
            });
        }
        Ok(())
    }

    /// Where an acks=all batch ending at `last_offset` stands.
    pub fn ack_status(&self, last_offset: Offset) -> AckStatus {
        if self.high_watermark <= last_offset {
            return AckStatus::Waiting;
        }
        if self.maximal_isr().len() >= self.config.min_insync_replicas {
            AckStatus::Done
        } else {
            AckStatus::NotEnoughReplicasAfterAppend
        }
    }

    fn proposal(&self, isr: Vec<NodeId>) -> IsrProposal {
        IsrProposal {
            leader_epoch: self.state.leader_epoch,
            partition_epoch: self.state.partition_epoch,
            isr: isr
                .into_iter()
                .map(|id| {
                    let epoch = if id == self.local {
                        -1
                    } else {
                        self.followers
                            .get(&id)
                            .and_then(|f| f.broker_epoch)
                            .unwrap_or(-1)
                    };
                    (id, epoch)
                })
                .collect(),
        }
    }

    fn eligible(&self, id: NodeId, brokers: &impl BrokerView) -> bool {
        let Some(f) = self.followers.get(&id) else {
            return false;
        };
        match brokers.broker(id) {
            Some(b) => {
                !b.fenced
                    && !b.shutting_down
                    && f.broker_epoch.is_some_and(|e| e == -1 || e == b.epoch)
            }
            None => false,
        }
    }

    fn maybe_expand(&mut self, replica: NodeId, brokers: &impl BrokerView) -> Option<IsrProposal> {
        if self.pending.is_some() || self.state.isr.contains(&replica) {
            return None;
        }
        let f = self.followers.get(&replica)?;
        // In sync: it has everything committed, and everything of this leader epoch's start,
        // so it cannot be elected while missing committed data of the current epoch.
        let in_sync = f.log_end >= self.high_watermark && f.log_end >= self.epoch_start_offset;
        if !in_sync || !self.eligible(replica, brokers) {
            return None;
        }
        let mut isr = self.state.isr.clone();
        isr.push(replica);
        let sent = self.proposal(isr);
        self.pending = Some(Pending::Expand {
            adding: replica,
            sent: sent.clone(),
        });
        Some(sent)
    }

    /// Kafka's `maybeIncrementLeaderHW`. `brokers` is needed to count caught-up followers that
    /// are about to join; without it (state changes, appends) only the maximal ISR counts, which
    /// is never less strict.
    fn maybe_advance_hw(
        &mut self,
        brokers: Option<&dyn BrokerView>,
        now_ms: i64,
    ) -> Option<Offset> {
        if self.is_under_min_isr() {
            return None;
        }
        let maximal = self.maximal_isr();
        let mut hw = self.log_end;
        for (id, f) in &self.followers {
            let counted = maximal.contains(id)
                || brokers.is_some_and(|b| {
                    f.is_caught_up(self.log_end, now_ms, self.config.replica_lag_time_max_ms)
                        && self.eligible(*id, &DynView(b))
                });
            if counted && f.log_end < hw {
                hw = f.log_end;
            }
        }
        if hw > self.high_watermark {
            self.high_watermark = hw;
            Some(hw)
        } else {
            None
        }
    }
}

struct DynView<'a>(&'a dyn BrokerView);

impl BrokerView for DynView<'_> {
    fn broker(&self, id: NodeId) -> Option<BrokerStatus> {
        self.0.broker(id)
    }
}

/// acks=all refused before the append (NOT_ENOUGH_REPLICAS).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("The size of the current ISR {isr} is insufficient to satisfy the min.isr requirement of {min_isr}")]
pub struct NotEnoughReplicas {
    pub isr: usize,
    pub min_isr: usize,
}

#[cfg(test)]
mod tests;
