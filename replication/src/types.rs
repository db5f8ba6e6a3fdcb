//! Identifiers shared by the replication logic and the broker.

pub use weir_storage::{LeaderEpoch, Offset};

/// A node's id (`node.id`): the same number names a broker and, on a controller, its voter.
pub type NodeId = i32;

/// Kafka's "no node" (`-1`): no leader elected, no controller known.
pub const NO_NODE: NodeId = -1;

/// A broker's registration epoch: a new one per registration, so requests from an older
/// incarnation of the same node id are told apart (Kafka's broker epoch).
pub type BrokerEpoch = i64;

/// A partition's epoch: bumped by every change of its leader, replicas, ISR or ELR, so an
/// ISR proposal made against an older state is refused (KIP-497).
pub type PartitionEpoch = i32;

/// Kafka's topic id: a 16-byte UUID.
pub type TopicId = [u8; 16];
