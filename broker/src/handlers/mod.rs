//! Kafka API handlers: one module per family of requests. Each turns a decoded request into a
//! response, routing partition work to the owning core.

mod admin;
mod configs;
mod fetch;
mod groups;
mod metadata;
mod offsets;
mod produce;

use crate::runtime::core::Core;
use kafka_protocol::messages::{ApiKey, ApiVersionsResponse, RequestKind, ResponseKind};
use kafka_protocol::protocol::VersionRange;
use std::rc::Rc;
use weir_net::{ConnectionInfo, Reply, Request, SupportedApis};

/// What this broker answers, and at which versions: only what is really implemented.
pub fn supported_apis() -> SupportedApis {
    let v = |min, max| VersionRange { min, max };
    SupportedApis::new([
        (ApiKey::Produce, v(3, 12)),
        (ApiKey::Fetch, v(4, 16)),
        (ApiKey::ListOffsets, v(1, 8)),
        (ApiKey::DeleteRecords, v(0, 2)),
        (ApiKey::OffsetForLeaderEpoch, v(2, 4)),
        (ApiKey::Metadata, v(0, 12)),
        (ApiKey::ApiVersions, v(0, 3)),
        (ApiKey::CreateTopics, v(2, 7)),
        (ApiKey::DeleteTopics, v(1, 6)),
        (ApiKey::InitProducerId, v(0, 5)),
        (ApiKey::DescribeConfigs, v(1, 4)),
        (ApiKey::AlterConfigs, v(0, 2)),
        (ApiKey::CreatePartitions, v(0, 3)),
        (ApiKey::IncrementalAlterConfigs, v(0, 1)),
        (ApiKey::DescribeCluster, v(0, 1)),
        (ApiKey::FindCoordinator, v(0, 4)),
        (ApiKey::JoinGroup, v(0, 9)),
        (ApiKey::SyncGroup, v(0, 5)),
        (ApiKey::Heartbeat, v(0, 4)),
        (ApiKey::LeaveGroup, v(0, 5)),
        (ApiKey::OffsetCommit, v(2, 9)),
        (ApiKey::OffsetFetch, v(1, 9)),
        (ApiKey::ListGroups, v(0, 5)),
        (ApiKey::DescribeGroups, v(0, 5)),
        (ApiKey::DeleteGroups, v(0, 2)),
        (ApiKey::OffsetDelete, v(0, 0)),
    ])
    .expect("every advertised range is decodable by kafka-protocol")
}

pub async fn handle(core: &Rc<Core>, conn: Rc<ConnectionInfo>, request: Request) -> Reply {
    let request = match request {
        Request::Kafka(request) => request,
        // Private apis arrive only on a listener that accepts them, and none does yet.
        Request::Weir(request) => {
            tracing::warn!(api = %request.api, "no handler for a private api; closing");
            return Reply::Close;
        }
    };
    let version = request.api_version();
    let client_id = request
        .header
        .client_id
        .as_ref()
        .map(|c| c.to_string())
        .unwrap_or_default();
    let client_host = format!("/{}", conn.peer.ip());
    match request.body {
        RequestKind::FindCoordinator(r) => Reply::Message(ResponseKind::FindCoordinator(
            groups::find_coordinator(core, r, version).await,
        )),
        RequestKind::JoinGroup(r) => Reply::Message(ResponseKind::JoinGroup(
            groups::join_group(core, r, version, client_id, client_host).await,
        )),
        RequestKind::SyncGroup(r) => Reply::Message(ResponseKind::SyncGroup(
            groups::sync_group(core, r, version).await,
        )),
        RequestKind::Heartbeat(r) => {
            Reply::Message(ResponseKind::Heartbeat(groups::heartbeat(core, r).await))
        }
        RequestKind::LeaveGroup(r) => Reply::Message(ResponseKind::LeaveGroup(
            groups::leave_group(core, r, version).await,
        )),
        RequestKind::OffsetCommit(r) => Reply::Message(ResponseKind::OffsetCommit(
            groups::offset_commit(core, r).await,
        )),
        RequestKind::OffsetFetch(r) => Reply::Message(ResponseKind::OffsetFetch(
            groups::offset_fetch(core, r, version).await,
        )),
        RequestKind::ListGroups(r) => Reply::Message(ResponseKind::ListGroups(
            groups::list_groups(core, r, version).await,
        )),
        RequestKind::DescribeGroups(r) => Reply::Message(ResponseKind::DescribeGroups(
            groups::describe_groups(core, r, version).await,
        )),
        RequestKind::DeleteGroups(r) => Reply::Message(ResponseKind::DeleteGroups(
            groups::delete_groups(core, r).await,
        )),
        RequestKind::OffsetDelete(r) => Reply::Message(ResponseKind::OffsetDelete(
            groups::offset_delete(core, r).await,
        )),
        RequestKind::ApiVersions(_) => Reply::Message(ResponseKind::ApiVersions(api_versions())),
        RequestKind::Metadata(r) => Reply::Message(ResponseKind::Metadata(
            metadata::handle(core, r, version).await,
        )),
        RequestKind::Produce(r) => produce::handle(core, r, version).await,
        RequestKind::Fetch(r) => {
            fetch::handle(core, r, version, request.header.correlation_id).await
        }
        RequestKind::ListOffsets(r) => Reply::Message(ResponseKind::ListOffsets(
            offsets::list_offsets(core, r, version).await,
        )),
        RequestKind::OffsetForLeaderEpoch(r) => Reply::Message(ResponseKind::OffsetForLeaderEpoch(
            offsets::offset_for_leader_epoch(core, r).await,
        )),
        RequestKind::DeleteRecords(r) => Reply::Message(ResponseKind::DeleteRecords(
            offsets::delete_records(core, r).await,
        )),
        RequestKind::CreateTopics(r) => Reply::Message(ResponseKind::CreateTopics(
            admin::create_topics(core, r, version).await,
        )),
        RequestKind::DeleteTopics(r) => Reply::Message(ResponseKind::DeleteTopics(
            admin::delete_topics(core, r, version).await,
        )),
        RequestKind::CreatePartitions(r) => Reply::Message(ResponseKind::CreatePartitions(
            admin::create_partitions(core, r).await,
        )),
        RequestKind::InitProducerId(r) => Reply::Message(ResponseKind::InitProducerId(
            admin::init_producer_id(core, r).await,
        )),
        RequestKind::DescribeCluster(r) => Reply::Message(ResponseKind::DescribeCluster(
            admin::describe_cluster(core, r.include_cluster_authorized_operations),
        )),
        RequestKind::DescribeConfigs(r) => {
            Reply::Message(ResponseKind::DescribeConfigs(configs::describe(core, r)))
        }
        RequestKind::AlterConfigs(r) => {
            Reply::Message(ResponseKind::AlterConfigs(configs::alter(core, r).await))
        }
        RequestKind::IncrementalAlterConfigs(r) => Reply::Message(
            ResponseKind::IncrementalAlterConfigs(configs::incremental_alter(core, r).await),
        ),
        other => {
            // The net layer refuses what is not advertised; reaching here is a table mismatch.
            tracing::error!(api = ?request.api_key, "request for an API without a handler; closing");
            drop(other);
            Reply::Close
        }
    }
}

fn api_versions() -> ApiVersionsResponse {
    let mut keys = supported_apis().api_versions();
    // librdkafka decides whether a broker speaks Produce at all by seeing version 0
    // advertised; Kafka 4 keeps advertising it for that reason while serving only v3+.
    for k in keys
        .iter_mut()
        .filter(|k| k.api_key == ApiKey::Produce as i16)
    {
        k.min_version = 0;
    }
    ApiVersionsResponse::default().with_api_keys(keys)
}

/// Kafka's AclOperation codes, for the "authorized operations" bitfields clients may ask for.
/// Weir has no ACLs yet, so every operation valid on a resource is authorized.
mod acl {
    const READ: i32 = 3;
    const WRITE: i32 = 4;
    const CREATE: i32 = 5;
    const DELETE: i32 = 6;
    const ALTER: i32 = 7;
    const DESCRIBE: i32 = 8;
    const CLUSTER_ACTION: i32 = 9;
    const DESCRIBE_CONFIGS: i32 = 10;
    const ALTER_CONFIGS: i32 = 11;
    const IDEMPOTENT_WRITE: i32 = 12;

    const fn bits(ops: &[i32]) -> i32 {
        let mut b = 0;
        let mut i = 0;
        while i < ops.len() {
            b |= 1 << ops[i];
            i += 1;
        }
        b
    }

    pub const CLUSTER_OPERATIONS: i32 = bits(&[
        CREATE,
        ALTER,
        DESCRIBE,
        CLUSTER_ACTION,
        DESCRIBE_CONFIGS,
        ALTER_CONFIGS,
        IDEMPOTENT_WRITE,
    ]);
    pub const TOPIC_OPERATIONS: i32 = bits(&[
        READ,
        WRITE,
        CREATE,
        DELETE,
        ALTER,
        DESCRIBE,
        DESCRIBE_CONFIGS,
        ALTER_CONFIGS,
    ]);
}
pub(crate) use acl::{CLUSTER_OPERATIONS, TOPIC_OPERATIONS};

/// The handlers' one string helper, from the leaf module every layer may use.
pub(crate) use crate::kstr::sb;
