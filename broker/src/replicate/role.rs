//! What this broker is for one partition, on the partition's owning core, and how committed
//! metadata moves it (Kafka's `Partition.makeLeader` / `makeFollower`):
//!
//! - **Leader**: the leader epoch's start offset is recorded in the log's epoch cache, the
//!   followers' positions restart, the high watermark follows `LeaderState`, and acks=all
//!   produces wait in offset order for it.
//! - **Follower**: a `FollowerState` (fetch position, back-off) that this core's fetcher for the
//!   leader drives; pending acks=all produces of a former leadership are answered
//!   NOT_LEADER_OR_FOLLOWER. The log is not truncated on becoming follower: the first fetch says
//!   whether it diverged (KIP-320).
//! - **Idle**: the partition has no leader this broker could follow (offline).

use weir_replication::metadata::PartitionMeta;
use weir_replication::partition::acks::AckQueue;
use weir_replication::partition::follower::FollowerState;
use weir_replication::partition::leader::{LeaderActions, LeaderConfig, LeaderState};
use weir_replication::partition::PartitionState;
use weir_replication::types::{NodeId, Offset};
use weir_storage::PartitionLog;

use glommio::channels::local_channel::LocalSender;

/// How an acks=all produce ends once its batch is no longer waiting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckOutcome {
    Committed,
    /// Committed while the ISR was below `min.insync.replicas`.
    NotEnoughReplicasAfterAppend,
    /// This broker stopped leading first: the write may or may not survive (the client
    /// retries; idempotence makes that safe).
    NotLeader,
}

/// The leader's side of a partition.
pub struct LeaderRole {
    pub state: LeaderState,
    pub acks: AckQueue<LocalSender<AckOutcome>>,
    /// An ISR change sent to the controller and not answered yet.
    pub proposing: bool,
}

pub enum Role {
    Idle,
    Leader(Box<LeaderRole>),
    Follower(FollowerState),
}

/// What a role change asks of the core beyond the partition itself.
#[derive(Debug, Default)]
pub struct RoleChange {
    /// A new high watermark to publish, and/or an ISR proposal to send.
    pub actions: LeaderActions,
    pub became_leader: bool,
    pub stopped_leading: bool,
    /// Fetch from this leader now (a new follower, or a new leader to follow).
    pub follow: Option<NodeId>,
    /// No longer fetch from this leader.
    pub unfollow: Option<NodeId>,
}

/// What a role change needs besides the partition's committed state.
pub struct RoleContext<'a> {
    pub node_id: NodeId,
    pub log: &'a PartitionLog,
    pub leader: LeaderConfig,
    pub fetch_backoff_ms: i64,
    /// Bound on acks=all waiters per partition.
    pub acks_max: usize,
    pub now_ms: i64,
}

impl Role {
    pub fn leader_epoch(&self) -> Option<i32> {
        match self {
            Role::Leader(l) => Some(l.state.leader_epoch()),
            Role::Follower(f) => Some(f.leader_epoch()),
            Role::Idle => None,
        }
    }

    /// The replicas, when this broker leads.
    pub fn leader_replicas(&self) -> Option<Vec<NodeId>> {
        match self {
            Role::Leader(l) => Some(l.state.state().replicas.clone()),
            _ => None,
        }
    }

    /// The leader this broker fetches from, if it follows one.
    pub fn followed_leader(&self) -> Option<NodeId> {
        match self {
            Role::Follower(f) if f.leader() >= 0 => Some(f.leader()),
            _ => None,
        }
    }

    /// Applies the partition's committed state. `meta` must list this node among the replicas.
    pub fn apply(&mut self, meta: &PartitionMeta, cx: &RoleContext<'_>) -> RoleChange {
        let state = PartitionState {
            leader: meta.leader,
            leader_epoch: meta.leader_epoch,
            partition_epoch: meta.partition_epoch,
            replicas: meta.replicas.clone(),
            isr: meta.isr.clone(),
        };
        let mut change = RoleChange::default();
        if meta.leader == cx.node_id {
            if let Role::Leader(l) = self {
                if meta.leader_epoch >= l.state.leader_epoch() {
                    if meta.leader_epoch > l.state.leader_epoch() {
                        cx.log.assign_epoch_start(meta.leader_epoch);
                    }
                    change.actions = l.state.update_state(state, cx.now_ms);
                    if change.actions.high_watermark.is_none() {
                        // The new state may commit what the log already holds (the ISR shrank
                        // to members that have it).
                        change.actions.high_watermark =
                            l.state.on_append(cx.log.log_end_offset(), cx.now_ms);
                    }
                    l.proposing = false;
                }
                return change;
            }
            change.unfollow = self.followed_leader();
            cx.log.assign_epoch_start(meta.leader_epoch);
            let mut leader = LeaderState::new(
                cx.node_id,
                state,
                cx.log.log_end_offset(),
                cx.log.high_watermark(),
                cx.leader,
                cx.now_ms,
            );
            // A leader alone in its ISR commits what it has at once.
            change.actions.high_watermark = leader.on_append(cx.log.log_end_offset(), cx.now_ms);
            tracing::info!(
                partition = %cx.log.topic_partition(),
                leader_epoch = meta.leader_epoch,
                partition_epoch = meta.partition_epoch,
                start_offset = leader.epoch_start_offset(),
                high_watermark = cx.log.high_watermark(),
                isr = ?meta.isr,
                "became leader"
            );
            *self = Role::Leader(Box::new(LeaderRole {
                state: leader,
                acks: AckQueue::new(cx.acks_max),
                proposing: false,
            }));
            change.became_leader = true;
            return change;
        }
        // Following `meta.leader` (or nobody, while the partition is offline).
        if let Role::Follower(f) = self {
            if f.leader() == meta.leader && meta.leader_epoch <= f.leader_epoch() {
                return change;
            }
        }
        if let Role::Leader(l) = self {
            for waiter in l.acks.drain_all() {
                let _ = waiter.try_send(AckOutcome::NotLeader);
            }
            change.stopped_leading = true;
        }
        let previous = self.followed_leader();
        let follower = FollowerState::new(
            meta.leader,
            meta.leader_epoch,
            cx.log.log_end_offset(),
            cx.log.latest_epoch(),
            cx.fetch_backoff_ms,
        );
        tracing::info!(
            partition = %cx.log.topic_partition(),
            leader = meta.leader,
            leader_epoch = meta.leader_epoch,
            log_end = cx.log.log_end_offset(),
            "became follower"
        );
        *self = Role::Follower(follower);
        if previous != Some(meta.leader) {
            change.unfollow = previous;
            change.follow = (meta.leader >= 0).then_some(meta.leader);
        }
        change
    }

    /// Publishes a new high watermark to the log and answers the acks=all waiters it covers.
    pub fn publish_high_watermark(&mut self, log: &PartitionLog, hw: Offset) {
        log.set_high_watermark(hw);
        if let Role::Leader(l) = self {
            let committed = l.acks.complete_below(hw);
            if committed.is_empty() {
                return;
            }
            let outcome = match l.state.ack_status(hw - 1) {
                weir_replication::partition::leader::AckStatus::NotEnoughReplicasAfterAppend => {
                    AckOutcome::NotEnoughReplicasAfterAppend
                }
                _ => AckOutcome::Committed,
            };
            for waiter in committed {
                let _ = waiter.try_send(outcome);
            }
        }
    }

    /// The partition is going away here (deleted, or this broker stopping): waiters learn it.
    pub fn close(&mut self) {
        if let Role::Leader(l) = self {
            for waiter in l.acks.drain_all() {
                let _ = waiter.try_send(AckOutcome::NotLeader);
            }
        }
        *self = Role::Idle;
    }
}
