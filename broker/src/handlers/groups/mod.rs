//! The group APIs (FindCoordinator, JoinGroup, SyncGroup, Heartbeat, LeaveGroup, OffsetCommit,
//! OffsetFetch, ListGroups, DescribeGroups, DeleteGroups, OffsetDelete) as requests arrive on
//! any core: validate, make sure `__consumer_offsets` exists, take the group work out of the
//! Kafka request as a [`GroupCall`], forward it to the core that owns the group's partition,
//! and shape the [`GroupReply`] for the request's version. Group failures become Kafka codes
//! through `errors::group_error`.
//!
//! `membership` (JoinGroup, SyncGroup, Heartbeat, LeaveGroup), `offsets` (OffsetCommit,
//! OffsetFetch, OffsetDelete), `admin` (ListGroups, DescribeGroups, DeleteGroups); routing and
//! FindCoordinator here.

mod admin;
mod membership;
mod offsets;

pub use admin::{delete_groups, describe_groups, list_groups};
pub use membership::{heartbeat, join_group, leave_group, sync_group};
pub use offsets::{offset_commit, offset_delete, offset_fetch};

use crate::errors::{group_error, ApiError};
use crate::group::coordinator::{GroupCall, GroupReply};
use crate::group::{partition_for, GroupError, OFFSETS_TOPIC};
use crate::kstr::sb;
use crate::runtime::core::Core;
use crate::runtime::messages::{ShardRequest, ShardResponse};
use crate::shard::ShardId;
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};
use kafka_protocol::ResponseError as K;
use std::rc::Rc;
use weir_replication::controller::{
    ConfigEntry, ControllerError, ControllerReply, ControllerRequest, NewTopic,
};

/// Creates `__consumer_offsets` through the controller if it does not exist yet.
pub async fn ensure_offsets_topic(core: &Rc<Core>) -> Result<(), GroupError> {
    if core.image().topic(OFFSETS_TOPIC).is_some() {
        return Ok(());
    }
    let request = ControllerRequest::CreateTopics {
        topics: vec![offsets_topic(core)],
        validate_only: false,
    };
    match core.controller_call(request).await {
        ControllerReply::CreateTopics(mut r) => match r.pop() {
            Some(Ok(_)) | Some(Err(ControllerError::TopicAlreadyExists(_))) => Ok(()),
            Some(Err(e)) => {
                tracing::warn!(error = %e, "creating __consumer_offsets failed");
                Err(GroupError::OffsetsTopicNotCreated)
            }
            None => Err(GroupError::OffsetsTopicNotCreated),
        },
        _ => Err(GroupError::OffsetsTopicNotCreated),
    }
}

/// `__consumer_offsets` as Kafka creates it: `offsets.topic.num.partitions` partitions,
/// `offsets.topic.replication.factor` replicas (creation fails, and groups wait, until that many
/// brokers are registered), compacted, `offsets.topic.segment.bytes` segments.
pub fn offsets_topic(core: &Core) -> NewTopic {
    let s = &core.groups().settings;
    NewTopic {
        name: OFFSETS_TOPIC.to_string(),
        num_partitions: s.offsets_partitions,
        replication_factor: s.offsets_replication_factor,
        assignments: vec![],
        configs: vec![
            ConfigEntry {
                key: "cleanup.policy".into(),
                value: Some("compact".into()),
            },
            ConfigEntry {
                key: "segment.bytes".into(),
                value: Some(s.offsets_segment_bytes.to_string()),
            },
        ],
    }
}

/// The core owning `group`, once `__consumer_offsets` exists.
async fn route(core: &Rc<Core>, group: &str) -> Result<ShardId, GroupError> {
    ensure_offsets_topic(core).await?;
    let p = partition_for(group, core.groups().offsets_partitions());
    // Only the leader of the group's partition coordinates it (the client asked
    // FindCoordinator, and the leadership may have moved since).
    if !core.leads(OFFSETS_TOPIC, p) {
        return Err(GroupError::NotCoordinator);
    }
    Ok(core.owner_of(OFFSETS_TOPIC, p))
}

/// Forwards a group call to the core that owns the group.
async fn call(core: &Rc<Core>, group: &str, call: GroupCall) -> Result<GroupReply, GroupError> {
    let shard = route(core, group).await?;
    match core.call(shard, ShardRequest::Group(Box::new(call))).await {
        Some(ShardResponse::Group(r)) => Ok(r),
        _ => Err(GroupError::CoordinatorUnreachable),
    }
}

pub async fn find_coordinator(
    core: &Rc<Core>,
    req: FindCoordinatorRequest,
    version: i16,
) -> FindCoordinatorResponse {
    let keys: Vec<_> = if version >= 4 {
        req.coordinator_keys.clone()
    } else {
        vec![req.key.clone()]
    };
    let mut coordinators = Vec::with_capacity(keys.len());
    for key in keys {
        let found = match req.key_type {
            0 => match ensure_offsets_topic(core).await {
                // The coordinator is the leader of the group's `__consumer_offsets` partition.
                Ok(()) => coordinator_of(core, key.as_str())
                    .map_err(|k| ApiError::new(k, "The coordinator is not available.")),
                Err(e) => Err(ApiError::new(
                    group_error(e),
                    "The coordinator is not available.",
                )),
            },
            // No transaction coordinator exists. Of the answers Kafka's protocol has, this is
            // the one clients treat as final at once (librdkafka and the Java producer fail
            // init_transactions/initTransactions with it instead of retrying until their
            // timeout), and the message says why.
            1 => Err(ApiError::new(
                K::TransactionalIdAuthorizationFailed,
                TRANSACTIONS_UNSUPPORTED,
            )),
            _ => Err(ApiError::new(
                K::InvalidRequest,
                "Unknown coordinator key type.",
            )),
        };
        let c = Coordinator::default().with_key(key);
        coordinators.push(match found {
            Ok(b) => c
                .with_node_id(BrokerId(b.id))
                .with_host(sb(b.host))
                .with_port(b.port),
            Err(e) => c
                .with_error_code(e.code)
                .with_error_message(e.message.map(sb))
                .with_node_id(BrokerId(-1))
                .with_host(sb(""))
                .with_port(-1),
        });
    }
    if version >= 4 {
        return FindCoordinatorResponse::default().with_coordinators(coordinators);
    }
    let c = coordinators.pop().unwrap_or_default();
    let r = FindCoordinatorResponse::default()
        .with_error_code(c.error_code)
        .with_node_id(c.node_id)
        .with_host(c.host)
        .with_port(c.port);
    if version >= 1 && c.error_code != 0 {
        r.with_error_message(c.error_message)
    } else {
        r
    }
}

/// The broker leading `group`'s `__consumer_offsets` partition, as clients reach it; Kafka's
/// COORDINATOR_NOT_AVAILABLE while that partition has no live leader.
fn coordinator_of(core: &Core, group: &str) -> Result<super::metadata::LiveBroker, K> {
    let p = partition_for(group, core.groups().offsets_partitions());
    let leader = core
        .image()
        .topic(OFFSETS_TOPIC)
        .and_then(|t| t.partitions.get(p as usize).map(|p| p.leader))
        .unwrap_or(-1);
    super::metadata::live_brokers(core)
        .into_iter()
        .find(|b| b.id == leader)
        .ok_or(K::CoordinatorNotAvailable)
}

/// What a transactional client is told: Weir has no transaction coordinator.
pub const TRANSACTIONS_UNSUPPORTED: &str =
    "Transactions are not supported by this broker (Weir has no transaction coordinator); use an idempotent producer without transactional.id";
