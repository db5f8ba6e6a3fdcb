//! What brokers ask the active controller, and its answers: topic administration forwarded from
//! clients, broker registration and heartbeats, ISR changes, elections and producer id blocks.
//! The same types travel over the private `WeirController` API (see `wire`).
//!
//! Per-item results come in request order. A whole request refused (not the active controller,
//! a stale broker epoch) is the outer `Err` where the reply has one, or every item's `Err`.

use super::error::ControllerError;
use crate::metadata::records::{Endpoint, IncarnationId, UncleanReport};
use crate::types::{BrokerEpoch, LeaderEpoch, NodeId, PartitionEpoch, TopicId};

macro_rules! wire_type {
    ($($item:item)*) => {$(
        #[derive(Debug, Clone, PartialEq, Eq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
        $item
    )*};
}

wire_type! {
    pub enum ControllerRequest {
        CreateTopics {
            topics: Vec<NewTopic>,
            validate_only: bool,
        },
        DeleteTopics {
            topics: Vec<TopicRef>,
        },
        CreatePartitions {
            topics: Vec<NewPartitions>,
            validate_only: bool,
        },
        /// IncrementalAlterConfigs, or AlterConfigs (`replace_all`: every override of a resource
        /// is replaced by what the request lists).
        AlterConfigs {
            resources: Vec<AlterConfigsResource>,
            replace_all: bool,
            validate_only: bool,
        },
        /// A block of producer ids for one broker's InitProducerId (Kafka's AllocateProducerIds).
        AllocateProducerIds {
            broker_id: NodeId,
            broker_epoch: BrokerEpoch,
        },
        RegisterBroker(BrokerRegistration),
        BrokerHeartbeat(BrokerHeartbeat),
        AlterPartition(AlterPartitionRequest),
        ElectLeaders(ElectLeadersRequest),
        UnregisterBroker {
            broker_id: NodeId,
        },
        /// A replica's report on an unclean election (Weir's own; see `UncleanReportRecord`).
        ReportUnclean(UncleanReportRequest),
    }

    pub struct UncleanReportRequest {
        pub broker_id: NodeId,
        pub broker_epoch: BrokerEpoch,
        pub topic_id: TopicId,
        pub partition: i32,
        /// The leader epoch the reported unclean election started.
        pub election_epoch: LeaderEpoch,
        pub report: UncleanReport,
    }

    /// A topic to create, as CreateTopics asks.
    pub struct NewTopic {
        pub name: String,
        /// -1: `num.partitions`.
        pub num_partitions: i32,
        /// -1: `default.replication.factor`.
        pub replication_factor: i16,
        /// Manual assignment (then both counts must be -1).
        pub assignments: Vec<ReplicaAssignment>,
        pub configs: Vec<ConfigEntry>,
    }

    pub struct ReplicaAssignment {
        pub partition: i32,
        pub brokers: Vec<NodeId>,
    }

    /// A config as CreateTopics carries it: the value may be null (which Kafka refuses).
    pub struct ConfigEntry {
        pub key: String,
        pub value: Option<String>,
    }

    pub enum TopicRef {
        Name(String),
        Id(TopicId),
    }

    /// CreatePartitions for one topic: the new total, and optionally where the new ones go.
    pub struct NewPartitions {
        pub topic: String,
        pub count: i32,
        pub assignments: Option<Vec<Vec<NodeId>>>,
    }

    /// A config resource as AlterConfigs names it. A broker resource's name is "" (the
    /// cluster-wide default) or a broker id in decimal, as Kafka's.
    pub enum ConfigResource {
        Topic(String),
        Broker(String),
    }

    /// IncrementalAlterConfigs' operations.
    pub enum ConfigOp {
        Set,
        Delete,
        Append,
        Subtract,
    }

    pub struct ConfigChange {
        pub key: String,
        pub op: ConfigOp,
        pub value: Option<String>,
    }

    pub struct AlterConfigsResource {
        pub resource: ConfigResource,
        pub changes: Vec<ConfigChange>,
    }

    /// BrokerRegistration (Kafka's API 62).
    pub struct BrokerRegistration {
        pub broker_id: NodeId,
        pub cluster_id: String,
        /// Fresh per process start.
        pub incarnation_id: IncarnationId,
        pub listeners: Vec<Endpoint>,
        pub rack: Option<String>,
        /// The epoch this node had when it last shut down cleanly, -1 if it did not (KIP-966):
        /// a broker that lost its unflushed tail must not count as in-sync.
        pub previous_broker_epoch: BrokerEpoch,
    }

    /// BrokerHeartbeat (Kafka's API 63).
    pub struct BrokerHeartbeat {
        pub broker_id: NodeId,
        pub broker_epoch: BrokerEpoch,
        /// The metadata log offset (raft index) this broker has applied.
        pub current_metadata_offset: i64,
        pub want_fence: bool,
        pub want_shutdown: bool,
    }

    /// AlterPartition (Kafka's API 56): a leader proposes new ISRs.
    pub struct AlterPartitionRequest {
        pub broker_id: NodeId,
        pub broker_epoch: BrokerEpoch,
        pub topics: Vec<AlterPartitionTopic>,
    }

    pub struct AlterPartitionTopic {
        pub topic_id: TopicId,
        pub partitions: Vec<AlterPartitionItem>,
    }

    pub struct AlterPartitionItem {
        pub partition: i32,
        pub leader_epoch: LeaderEpoch,
        pub partition_epoch: PartitionEpoch,
        pub new_isr: Vec<IsrMember>,
    }

    /// A proposed ISR member and the broker epoch the leader saw it fetch with (-1: not
    /// checked), so a replica that restarted since cannot be added on its old fetches.
    pub struct IsrMember {
        pub broker_id: NodeId,
        pub broker_epoch: BrokerEpoch,
    }

    pub enum ElectionType {
        Preferred,
        Unclean,
    }

    /// ElectLeaders (Kafka's API 43); `partitions` None: every partition.
    pub struct ElectLeadersRequest {
        pub election_type: ElectionType,
        pub partitions: Option<Vec<TopicPartitions>>,
    }

    pub struct TopicPartitions {
        pub topic: String,
        pub partitions: Vec<i32>,
    }

    pub enum ControllerReply {
        CreateTopics(Vec<Result<CreatedTopic, ControllerError>>),
        DeleteTopics(Vec<Result<DeletedTopic, ControllerError>>),
        CreatePartitions(Vec<Result<(), ControllerError>>),
        AlterConfigs(Vec<Result<(), ControllerError>>),
        AllocateProducerIds(Result<ProducerIdBlock, ControllerError>),
        /// The new broker epoch.
        RegisterBroker(Result<BrokerEpoch, ControllerError>),
        BrokerHeartbeat(Result<HeartbeatReply, ControllerError>),
        AlterPartition(Result<Vec<AlterPartitionTopicResult>, ControllerError>),
        ElectLeaders(Result<Vec<ElectionTopicResult>, ControllerError>),
        UnregisterBroker(Result<(), ControllerError>),
        ReportUnclean(Result<(), ControllerError>),
    }

    pub struct CreatedTopic {
        pub id: TopicId,
        pub num_partitions: i32,
        pub replication_factor: i16,
        /// The topic's effective configs, as the validator describes them.
        pub configs: Vec<EffectiveConfig>,
    }

    pub struct EffectiveConfig {
        pub name: String,
        pub value: String,
        pub is_default: bool,
    }

    pub struct DeletedTopic {
        pub name: String,
        pub id: TopicId,
    }

    /// Producer ids `[start, start + len)` belong to the asking broker.
    pub struct ProducerIdBlock {
        pub start: i64,
        pub len: i32,
    }

    pub struct HeartbeatReply {
        /// Applied past its own registration.
        pub is_caught_up: bool,
        pub is_fenced: bool,
        pub in_controlled_shutdown: bool,
        /// Controlled shutdown is done (or was not needed): the broker may stop.
        pub should_shutdown: bool,
    }

    pub struct AlterPartitionTopicResult {
        pub topic_id: TopicId,
        pub partitions: Vec<AlterPartitionResult>,
    }

    pub struct AlterPartitionResult {
        pub partition: i32,
        pub result: Result<PartitionState, ControllerError>,
    }

    /// A partition's state after an accepted AlterPartition.
    pub struct PartitionState {
        pub leader: NodeId,
        pub leader_epoch: LeaderEpoch,
        pub partition_epoch: PartitionEpoch,
        pub isr: Vec<NodeId>,
    }

    pub struct ElectionTopicResult {
        pub topic: String,
        pub partitions: Vec<ElectionResultItem>,
    }

    pub struct ElectionResultItem {
        pub partition: i32,
        pub result: Result<(), ControllerError>,
    }
}

impl ConfigOp {
    /// Kafka's IncrementalAlterConfigs operation byte: 0 SET, 1 DELETE, 2 APPEND, 3 SUBTRACT.
    pub fn from_kafka(op: i8) -> Option<Self> {
        match op {
            0 => Some(Self::Set),
            1 => Some(Self::Delete),
            2 => Some(Self::Append),
            3 => Some(Self::Subtract),
            _ => None,
        }
    }
}

impl ElectionType {
    /// Kafka's ElectLeaders election type byte: 0 PREFERRED, 1 UNCLEAN.
    pub fn from_kafka(t: i8) -> Option<Self> {
        match t {
            0 => Some(Self::Preferred),
            1 => Some(Self::Unclean),
            _ => None,
        }
    }
}

impl ControllerReply {
    /// The answer to `request` when all of it is refused with `error` (e.g. NOT_CONTROLLER when
    /// this node is not, or no longer, the active controller): every item gets the error.
    pub fn refuse(request: &ControllerRequest, error: ControllerError) -> Self {
        fn each<T>(n: usize, e: &ControllerError) -> Vec<Result<T, ControllerError>> {
            (0..n).map(|_| Err(e.clone())).collect()
        }
        match request {
            ControllerRequest::CreateTopics { topics, .. } => {
                Self::CreateTopics(each(topics.len(), &error))
            }
            ControllerRequest::DeleteTopics { topics } => {
                Self::DeleteTopics(each(topics.len(), &error))
            }
            ControllerRequest::CreatePartitions { topics, .. } => {
                Self::CreatePartitions(each(topics.len(), &error))
            }
            ControllerRequest::AlterConfigs { resources, .. } => {
                Self::AlterConfigs(each(resources.len(), &error))
            }
            ControllerRequest::AllocateProducerIds { .. } => Self::AllocateProducerIds(Err(error)),
            ControllerRequest::RegisterBroker(_) => Self::RegisterBroker(Err(error)),
            ControllerRequest::BrokerHeartbeat(_) => Self::BrokerHeartbeat(Err(error)),
            ControllerRequest::AlterPartition(_) => Self::AlterPartition(Err(error)),
            ControllerRequest::ElectLeaders(_) => Self::ElectLeaders(Err(error)),
            ControllerRequest::UnregisterBroker { .. } => Self::UnregisterBroker(Err(error)),
            ControllerRequest::ReportUnclean(_) => Self::ReportUnclean(Err(error)),
        }
    }
}
