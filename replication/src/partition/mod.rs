//! One partition's replication as its owning core drives it, following Kafka's
//! `Partition`/`Replica` and `AbstractFetcherThread` rules:
//!
//! - [`leader`]: the leader's view of its followers — their log end offsets and when each was
//!   last caught up, the high watermark (the smallest log end offset of the ISR, frozen while the
//!   ISR is smaller than `min.insync.replicas`), and the ISR changes to propose to the controller
//!   (AlterPartition), one at a time, guarded by the partition epoch (KIP-497).
//! - [`follower`]: a follower's fetch position and what it does with the leader's answers:
//!   append, truncate to a diverging epoch (KIP-320/KIP-595 style truncation on the fetch path),
//!   reset after OFFSET_OUT_OF_RANGE, or wait for new metadata after a fenced epoch.
//! - [`epochs`]: the leader epoch arithmetic both sides share (KIP-101/KIP-279): where a
//!   follower's log diverges from the leader's.
//! - [`discard`]: what a truncation gave up to an unclean election, for the record.
//! - [`acks`]: acks=all waiters, ordered by the offset they need the high watermark to pass,
//!   bounded.
//!
//! Nothing here does I/O or reads a clock: the owning core passes `now_ms`, applies the returned
//! high watermark to its log, sends the returned proposals, and completes the returned waiters.

pub mod acks;
pub mod discard;
pub mod epochs;
pub mod follower;
pub mod leader;

use crate::types::{LeaderEpoch, NodeId, PartitionEpoch};

/// A partition's committed state as the metadata log says it (leader, epochs, replicas, ISR).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionState {
    pub leader: NodeId,
    pub leader_epoch: LeaderEpoch,
    pub partition_epoch: PartitionEpoch,
    pub replicas: Vec<NodeId>,
    pub isr: Vec<NodeId>,
}
