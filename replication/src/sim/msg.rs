//! What simulated nodes say to each other over the data network: follower fetches and their
//! answers (Kafka's Fetch with `ReplicaState`, `CurrentLeaderEpoch`, `LastFetchedEpoch`,
//! `DivergingEpoch`), produce requests, calls to the active controller (the `WeirController`
//! API's request and reply types as they are) and metadata fetches of broker-only nodes.
//! Every request carries an id unique in the run, so answers to a previous incarnation, or
//! a duplicate, find nothing waiting for them.

use super::log::{Batch, Value};
use crate::controller::{ControllerReply, ControllerRequest};
use crate::partition::epochs::DivergingEpoch;
use crate::partition::follower::{FetchError, FetchPosition};
use crate::types::{BrokerEpoch, LeaderEpoch, NodeId, Offset};
use bytes::Bytes;

/// A partition: topic `t<topic>`, partition `partition`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Tp {
    pub topic: u8,
    pub partition: i32,
}

impl Tp {
    pub fn topic_name(&self) -> String {
        format!("t{}", self.topic)
    }
}

impl std::fmt::Display for Tp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "t{}-{}", self.topic, self.partition)
    }
}

#[derive(Debug, Clone)]
pub struct FetchRequest {
    pub id: u64,
    pub tp: Tp,
    pub replica: NodeId,
    pub broker_epoch: BrokerEpoch,
    pub position: FetchPosition,
    pub log_start: Offset,
}

#[derive(Debug, Clone)]
pub struct FetchResponse {
    pub id: u64,
    pub tp: Tp,
    pub error: FetchError,
    pub high_watermark: Offset,
    pub log_start: Offset,
    pub diverging: Option<DivergingEpoch>,
    pub batches: Vec<Batch>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acks {
    Leader,
    All,
}

#[derive(Debug, Clone)]
pub struct ProduceRequest {
    pub id: u64,
    pub tp: Tp,
    pub acks: Acks,
    pub values: Vec<Value>,
    pub timeout_ms: i64,
}

/// Kafka's produce answers as the simulator tells them apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProduceError {
    NotLeaderOrFollower,
    NotEnoughReplicas,
    NotEnoughReplicasAfterAppend,
    RequestTimedOut,
    /// Too many acks=all requests waiting on the partition.
    QueueFull,
}

#[derive(Debug, Clone)]
pub struct ProduceResponse {
    pub id: u64,
    pub result: Result<(Offset, LeaderEpoch), ProduceError>,
}

/// The active controller's answer, or NOT_CONTROLLER with the leader it knows of.
#[derive(Debug, Clone)]
pub enum CallAnswer {
    Done(ControllerReply),
    NotController { leader: Option<NodeId> },
}

#[derive(Debug, Clone)]
pub enum MetadataAnswer {
    /// Committed entries after the asked index (raft index, payload), and the index they bring
    /// the asker to (empty entries count).
    Entries {
        entries: Vec<(u64, Bytes)>,
        applied: u64,
    },
    NotController {
        leader: Option<NodeId>,
    },
}

#[derive(Debug, Clone)]
pub enum Msg {
    Fetch(FetchRequest),
    FetchAnswer(FetchResponse),
    Produce(ProduceRequest),
    ProduceAnswer(ProduceResponse),
    Call { id: u64, request: ControllerRequest },
    CallAnswer { id: u64, answer: CallAnswer },
    MetadataFetch { id: u64, after: u64 },
    MetadataAnswer { id: u64, answer: MetadataAnswer },
}
