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
use crate::runtime::messages::{
    ControllerCall, ControllerReply, NewTopic, ShardRequest, ShardResponse,
};
use crate::shard::{ShardId, CONTROLLER_SHARD};
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};
use kafka_protocol::ResponseError as K;
use std::rc::Rc;

/// Creates `__consumer_offsets` through the controller if it does not exist yet.
pub async fn ensure_offsets_topic(core: &Rc<Core>) -> Result<(), GroupError> {
    if core.image.borrow().topic(OFFSETS_TOPIC).is_some() {
        return Ok(());
    }
    let call = ControllerCall::CreateTopics {
        topics: vec![offsets_topic(core)],
        validate_only: false,
    };
    let reply = core
        .call(CONTROLLER_SHARD, ShardRequest::Controller(call))
        .await;
    match reply {
        Some(ShardResponse::Controller(ControllerReply::CreateTopics(mut r))) => match r.pop() {
            Some(Ok(_)) => Ok(()),
            Some(Err((code, _))) if code == K::TopicAlreadyExists.code() => Ok(()),
            Some(Err((code, msg))) => {
                tracing::error!(code, msg, "creating __consumer_offsets failed");
                Err(GroupError::OffsetsTopicNotCreated)
            }
            None => Err(GroupError::OffsetsTopicNotCreated),
        },
        _ => Err(GroupError::OffsetsTopicNotCreated),
    }
}

/// `__consumer_offsets` as Kafka creates it: `offsets.topic.num.partitions` partitions, one
/// replica (a single broker), compacted, `offsets.topic.segment.bytes` segments.
pub fn offsets_topic(core: &Core) -> NewTopic {
    NewTopic {
        name: OFFSETS_TOPIC.to_string(),
        num_partitions: core.groups.settings.offsets_partitions,
        replication_factor: 1,
        assignments: vec![],
        configs: vec![
            ("cleanup.policy".into(), Some("compact".into())),
            (
                "segment.bytes".into(),
                Some(core.groups.settings.offsets_segment_bytes.to_string()),
            ),
        ],
    }
}

/// The core owning `group`, once `__consumer_offsets` exists.
async fn route(core: &Rc<Core>, group: &str) -> Result<ShardId, GroupError> {
    ensure_offsets_topic(core).await?;
    let p = partition_for(group, core.groups.offsets_partitions());
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
    let s = &core.settings;
    let keys: Vec<_> = if version >= 4 {
        req.coordinator_keys.clone()
    } else {
        vec![req.key.clone()]
    };
    let mut coordinators = Vec::with_capacity(keys.len());
    for key in keys {
        let error = match req.key_type {
            0 => ensure_offsets_topic(core)
                .await
                .err()
                .map(|e| ApiError::new(group_error(e), "The coordinator is not available.")),
            // No transaction coordinator exists. Of the answers Kafka's protocol has, this is
            // the one clients treat as final at once (librdkafka and the Java producer fail
            // init_transactions/initTransactions with it instead of retrying until their
            // timeout), and the message says why.
            1 => Some(ApiError::new(
                K::TransactionalIdAuthorizationFailed,
                TRANSACTIONS_UNSUPPORTED,
            )),
            _ => Some(ApiError::new(
                K::InvalidRequest,
                "Unknown coordinator key type.",
            )),
        };
        let c = Coordinator::default().with_key(key);
        coordinators.push(match error {
            None => c
                .with_node_id(BrokerId(s.node_id))
                .with_host(sb(s.advertised_host.clone()))
                .with_port(s.advertised_port),
            Some(e) => c
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

/// What a transactional client is told: Weir has no transaction coordinator.
pub const TRANSACTIONS_UNSUPPORTED: &str =
    "Transactions are not supported by this broker (Weir has no transaction coordinator); use an idempotent producer without transactional.id";
