//! The group APIs (FindCoordinator, JoinGroup, SyncGroup, Heartbeat, LeaveGroup, OffsetCommit,
//! OffsetFetch, ListGroups, DescribeGroups, DeleteGroups, OffsetDelete) as requests arrive on
//! any core: validate, make sure `__consumer_offsets` exists, forward to the core that owns the
//! group's partition as a [`GroupCall`], shape the [`GroupReply`] for the request's version.

use crate::errors::{group_code, group_result_code, ApiError};
use crate::group::coordinator::{offsets_partitions, Checked, GroupCall, GroupReply, Leaving};
use crate::group::records::Committed;
use crate::group::state::{JoinResponse, SyncResponse};
use crate::group::{partition_for, GroupError, OFFSETS_TOPIC};
use crate::kstr::sb;
use crate::runtime::core::Core;
use crate::runtime::messages::{
    ControllerCall, ControllerReply, NewTopic, ShardRequest, ShardResponse,
};
use crate::shard::{ShardId, CONTROLLER_SHARD};
use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::*;
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
    let p = partition_for(group, offsets_partitions(core));
    Ok(core.owner_of(OFFSETS_TOPIC, p))
}

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
            0 => ensure_offsets_topic(core).await.err().map(|e| {
                ApiError::new(
                    crate::errors::group_error(e),
                    "The coordinator is not available.",
                )
            }),
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

fn join_response(r: JoinResponse, version: i16) -> JoinGroupResponse {
    let members = r
        .members
        .into_iter()
        .map(|(id, instance, metadata)| {
            JoinGroupResponseMember::default()
                .with_member_id(sb(id))
                .with_group_instance_id(if version >= 5 { instance.map(sb) } else { None })
                .with_metadata(metadata)
        })
        .collect();
    let (protocol_type, protocol_name) = if version >= 7 {
        (r.protocol_type.map(sb), r.protocol_name.map(sb))
    } else {
        (None, Some(sb(r.protocol_name.unwrap_or_default())))
    };
    JoinGroupResponse::default()
        .with_error_code(r.error.map_or(0, group_code))
        .with_generation_id(r.generation)
        .with_protocol_type(protocol_type)
        .with_protocol_name(protocol_name)
        .with_leader(sb(r.leader))
        // Only v9+ has the field; older versions are answered without it (see `state.rs`).
        .with_skip_assignment(version >= 9 && r.skip_assignment)
        .with_member_id(sb(r.member_id))
        .with_members(members)
}

pub async fn join_group(
    core: &Rc<Core>,
    req: JoinGroupRequest,
    version: i16,
    client_id: String,
    client_host: String,
) -> JoinGroupResponse {
    let group = req.group_id.0.to_string();
    let member = req.member_id.to_string();
    if group.is_empty() {
        return join_response(
            JoinResponse::error(GroupError::InvalidGroupId, &member),
            version,
        );
    }
    let c = GroupCall::Join {
        req,
        version,
        client_id,
        client_host,
    };
    match call(core, &group, c).await {
        Ok(GroupReply::Join(r)) => join_response(r, version),
        Ok(_) => join_response(
            JoinResponse::error(GroupError::UnexpectedReply, &member),
            version,
        ),
        Err(e) => join_response(JoinResponse::error(e, &member), version),
    }
}

fn sync_response(r: SyncResponse, version: i16) -> SyncGroupResponse {
    let out = SyncGroupResponse::default()
        .with_error_code(r.error.map_or(0, group_code))
        .with_assignment(r.assignment);
    if version >= 5 {
        out.with_protocol_type(r.protocol_type.map(sb))
            .with_protocol_name(r.protocol_name.map(sb))
    } else {
        out
    }
}

pub async fn sync_group(core: &Rc<Core>, req: SyncGroupRequest, version: i16) -> SyncGroupResponse {
    let group = req.group_id.0.to_string();
    if group.is_empty() {
        return sync_response(SyncResponse::error(GroupError::InvalidGroupId), version);
    }
    match call(core, &group, GroupCall::Sync(req)).await {
        Ok(GroupReply::Sync(r)) => sync_response(r, version),
        Ok(_) => sync_response(SyncResponse::error(GroupError::UnexpectedReply), version),
        Err(e) => sync_response(SyncResponse::error(e), version),
    }
}

pub async fn heartbeat(core: &Rc<Core>, req: HeartbeatRequest) -> HeartbeatResponse {
    let group = req.group_id.0.to_string();
    let result = if group.is_empty() {
        Err(GroupError::InvalidGroupId)
    } else {
        match call(core, &group, GroupCall::Heartbeat(req)).await {
            Ok(GroupReply::Heartbeat(result)) => result,
            Ok(_) => Err(GroupError::UnexpectedReply),
            Err(e) => Err(e),
        }
    };
    HeartbeatResponse::default().with_error_code(group_result_code(result))
}

pub async fn leave_group(
    core: &Rc<Core>,
    req: LeaveGroupRequest,
    version: i16,
) -> LeaveGroupResponse {
    let group = req.group_id.0.to_string();
    let members: Vec<Leaving> = if version >= 3 {
        req.members
            .iter()
            .map(|m| Leaving {
                member_id: m.member_id.to_string(),
                instance_id: m.group_instance_id.as_ref().map(|s| s.to_string()),
                reason: m.reason.as_ref().map(|s| s.to_string()),
            })
            .collect()
    } else {
        vec![Leaving {
            member_id: req.member_id.to_string(),
            instance_id: None,
            reason: None,
        }]
    };
    let results = if group.is_empty() {
        Err(GroupError::InvalidGroupId)
    } else {
        let c = GroupCall::Leave {
            group: group.clone(),
            members: members.clone(),
        };
        match call(core, &group, c).await {
            Ok(GroupReply::Leave(results)) => results,
            Ok(_) => Err(GroupError::UnexpectedReply),
            Err(e) => Err(e),
        }
    };
    if version < 3 {
        // One member: its error is the request's.
        let result = results.and_then(|r| r.first().copied().unwrap_or(Ok(())));
        return LeaveGroupResponse::default().with_error_code(group_result_code(result));
    }
    let (code, responses) = match results {
        Err(e) => (group_code(e), vec![]),
        Ok(results) => (
            0,
            members
                .into_iter()
                .zip(results)
                .map(|(m, r)| {
                    MemberResponse::default()
                        .with_member_id(sb(m.member_id))
                        .with_group_instance_id(m.instance_id.map(sb))
                        .with_error_code(group_result_code(r))
                })
                .collect(),
        ),
    };
    LeaveGroupResponse::default()
        .with_error_code(code)
        .with_members(responses)
}

pub async fn offset_commit(core: &Rc<Core>, req: OffsetCommitRequest) -> OffsetCommitResponse {
    let group = req.group_id.0.to_string();
    let checked: Checked = {
        let image = core.image.borrow();
        req.topics
            .iter()
            .map(|t| {
                let name = t.name.0.to_string();
                let count = image.topic(&name).map_or(0, |m| m.partitions.len() as i32);
                let parts = t
                    .partitions
                    .iter()
                    .map(|p| {
                        let ok = p.partition_index >= 0 && p.partition_index < count;
                        (
                            p.partition_index,
                            if ok {
                                Ok(())
                            } else {
                                Err(GroupError::UnknownTopicOrPartition)
                            },
                        )
                    })
                    .collect();
                (name, parts)
            })
            .collect()
    };
    let shape = |results: Checked| {
        OffsetCommitResponse::default().with_topics(
            results
                .into_iter()
                .map(|(t, ps)| {
                    OffsetCommitResponseTopic::default()
                        .with_name(TopicName(sb(t)))
                        .with_partitions(
                            ps.into_iter()
                                .map(|(p, r)| {
                                    OffsetCommitResponsePartition::default()
                                        .with_partition_index(p)
                                        .with_error_code(group_result_code(r))
                                })
                                .collect(),
                        )
                })
                .collect(),
        )
    };
    let all = |e: GroupError| -> Checked {
        checked
            .iter()
            .map(|(t, ps)| (t.clone(), ps.iter().map(|(p, _)| (*p, Err(e))).collect()))
            .collect()
    };
    if group.is_empty() {
        return shape(all(GroupError::InvalidGroupId));
    }
    let c = GroupCall::Commit {
        req,
        checked: checked.clone(),
    };
    match call(core, &group, c).await {
        Ok(GroupReply::Commit(results)) => shape(results),
        Ok(_) => shape(all(GroupError::UnexpectedReply)),
        Err(e) => shape(all(e)),
    }
}

type Fetched = Result<Vec<(String, Vec<(i32, Option<Committed>)>)>, GroupError>;

async fn fetch_group(
    core: &Rc<Core>,
    group: String,
    topics: Option<Vec<(String, Vec<i32>)>>,
) -> Fetched {
    let c = GroupCall::Fetch {
        group: group.clone(),
        topics,
    };
    match call(core, &group, c).await {
        Ok(GroupReply::Fetch(r)) => r,
        Ok(_) => Err(GroupError::UnexpectedReply),
        Err(e) => Err(e),
    }
}

pub async fn offset_fetch(
    core: &Rc<Core>,
    req: OffsetFetchRequest,
    version: i16,
) -> OffsetFetchResponse {
    if version >= 8 {
        let mut groups = Vec::with_capacity(req.groups.len());
        for g in req.groups {
            let topics = g.topics.map(|ts| {
                ts.into_iter()
                    .map(|t| (t.name.0.to_string(), t.partition_indexes))
                    .collect()
            });
            let id = g.group_id.clone();
            let out = OffsetFetchResponseGroup::default().with_group_id(id);
            groups.push(
                match fetch_group(core, g.group_id.0.to_string(), topics).await {
                    Ok(found) => out.with_topics(
                        found
                            .into_iter()
                            .map(|(t, ps)| {
                                OffsetFetchResponseTopics::default()
                                    .with_name(TopicName(sb(t)))
                                    .with_partitions(
                                        ps.into_iter()
                                            .map(|(p, c)| {
                                                let r = OffsetFetchResponsePartitions::default()
                                                    .with_partition_index(p);
                                                match c {
                                                    Some(c) => r
                                                        .with_committed_offset(c.offset)
                                                        .with_committed_leader_epoch(c.leader_epoch)
                                                        .with_metadata(Some(sb(c.metadata))),
                                                    None => r
                                                        .with_committed_offset(-1)
                                                        .with_committed_leader_epoch(-1)
                                                        .with_metadata(Some(sb(""))),
                                                }
                                            })
                                            .collect(),
                                    )
                            })
                            .collect(),
                    ),
                    Err(e) => out.with_error_code(group_code(e)),
                },
            );
        }
        return OffsetFetchResponse::default().with_groups(groups);
    }
    let topics = req.topics.map(|ts| {
        ts.into_iter()
            .map(|t| (t.name.0.to_string(), t.partition_indexes))
            .collect()
    });
    let epochs = version >= 5;
    match fetch_group(core, req.group_id.0.to_string(), topics).await {
        Ok(found) => OffsetFetchResponse::default().with_topics(
            found
                .into_iter()
                .map(|(t, ps)| {
                    OffsetFetchResponseTopic::default()
                        .with_name(TopicName(sb(t)))
                        .with_partitions(
                            ps.into_iter()
                                .map(|(p, c)| {
                                    let r = OffsetFetchResponsePartition::default()
                                        .with_partition_index(p);
                                    match c {
                                        Some(c) => r
                                            .with_committed_offset(c.offset)
                                            .with_committed_leader_epoch(if epochs {
                                                c.leader_epoch
                                            } else {
                                                -1
                                            })
                                            .with_metadata(Some(sb(c.metadata))),
                                        None => r
                                            .with_committed_offset(-1)
                                            .with_committed_leader_epoch(-1)
                                            .with_metadata(Some(sb(""))),
                                    }
                                })
                                .collect(),
                        )
                })
                .collect(),
        ),
        Err(e) if version >= 2 => OffsetFetchResponse::default().with_error_code(group_code(e)),
        Err(_) => OffsetFetchResponse::default(),
    }
}

pub async fn list_groups(
    core: &Rc<Core>,
    req: ListGroupsRequest,
    version: i16,
) -> ListGroupsResponse {
    let mut groups = Vec::new();
    if core.image.borrow().topic(OFFSETS_TOPIC).is_some() {
        for shard in 0..core.cores() {
            if let Some(ShardResponse::Group(GroupReply::List(found))) = core
                .call(shard, ShardRequest::Group(Box::new(GroupCall::List)))
                .await
            {
                groups.extend(found);
            }
        }
    }
    let states: Vec<String> = req.states_filter.iter().map(|s| s.to_lowercase()).collect();
    let types: Vec<String> = req.types_filter.iter().map(|s| s.to_lowercase()).collect();
    let listed = groups
        .into_iter()
        .filter(|(_, _, state)| states.is_empty() || states.contains(&state.to_lowercase()))
        .filter(|_| types.is_empty() || types.iter().any(|t| t == "classic"))
        .map(|(id, protocol_type, state)| {
            let g = ListedGroup::default()
                .with_group_id(GroupId(sb(id)))
                .with_protocol_type(sb(protocol_type));
            let g = if version >= 4 {
                g.with_group_state(sb(state))
            } else {
                g
            };
            if version >= 5 {
                g.with_group_type(sb("classic"))
            } else {
                g
            }
        })
        .collect();
    ListGroupsResponse::default().with_groups(listed)
}

pub async fn describe_groups(
    core: &Rc<Core>,
    req: DescribeGroupsRequest,
    version: i16,
) -> DescribeGroupsResponse {
    let mut out = Vec::with_capacity(req.groups.len());
    for g in req.groups {
        let id = g.0.to_string();
        let d = DescribedGroup::default().with_group_id(g);
        let d = if version >= 3 {
            d.with_authorized_operations(if req.include_authorized_operations {
                // READ, DELETE, DESCRIBE: everything on a group is allowed (no ACLs).
                (1 << 3) | (1 << 6) | (1 << 8)
            } else {
                i32::MIN
            })
        } else {
            d
        };
        let r = if id.is_empty() {
            Err(GroupError::InvalidGroupId)
        } else {
            call(core, &id, GroupCall::Describe(id.clone())).await
        };
        out.push(match r {
            Ok(GroupReply::Describe(desc)) => d
                .with_group_state(sb(desc.state))
                .with_protocol_type(sb(desc.protocol_type))
                .with_protocol_data(sb(desc.protocol))
                .with_members(
                    desc.members
                        .into_iter()
                        .map(|(m, inst, client, host, metadata, assignment)| {
                            DescribedGroupMember::default()
                                .with_member_id(sb(m))
                                .with_group_instance_id(if version >= 4 {
                                    inst.map(sb)
                                } else {
                                    None
                                })
                                .with_client_id(sb(client))
                                .with_client_host(sb(host))
                                .with_member_metadata(metadata)
                                .with_member_assignment(assignment)
                        })
                        .collect(),
                ),
            Ok(_) => d.with_error_code(group_code(GroupError::UnexpectedReply)),
            Err(e) => d.with_error_code(group_code(e)),
        });
    }
    DescribeGroupsResponse::default().with_groups(out)
}

pub async fn delete_groups(core: &Rc<Core>, req: DeleteGroupsRequest) -> DeleteGroupsResponse {
    let mut results = Vec::with_capacity(req.groups_names.len());
    for g in req.groups_names {
        let id = g.0.to_string();
        let result = if id.is_empty() {
            Err(GroupError::InvalidGroupId)
        } else {
            match call(core, &id, GroupCall::Delete(id.clone())).await {
                Ok(GroupReply::Delete(result)) => result,
                Ok(_) => Err(GroupError::UnexpectedReply),
                Err(e) => Err(e),
            }
        };
        results.push(
            DeletableGroupResult::default()
                .with_group_id(g)
                .with_error_code(group_result_code(result)),
        );
    }
    DeleteGroupsResponse::default().with_results(results)
}

pub async fn offset_delete(core: &Rc<Core>, req: OffsetDeleteRequest) -> OffsetDeleteResponse {
    let group = req.group_id.0.to_string();
    if group.is_empty() {
        return OffsetDeleteResponse::default()
            .with_error_code(group_code(GroupError::InvalidGroupId));
    }
    match call(core, &group, GroupCall::OffsetDelete(req)).await {
        Ok(GroupReply::OffsetDelete(Ok(topics))) => OffsetDeleteResponse::default().with_topics(
            topics
                .into_iter()
                .map(|(t, ps)| {
                    OffsetDeleteResponseTopic::default()
                        .with_name(TopicName(sb(t)))
                        .with_partitions(
                            ps.into_iter()
                                .map(|(p, r)| {
                                    OffsetDeleteResponsePartition::default()
                                        .with_partition_index(p)
                                        .with_error_code(group_result_code(r))
                                })
                                .collect(),
                        )
                })
                .collect(),
        ),
        Ok(GroupReply::OffsetDelete(Err(e))) | Err(e) => {
            OffsetDeleteResponse::default().with_error_code(group_code(e))
        }
        Ok(_) => {
            OffsetDeleteResponse::default().with_error_code(group_code(GroupError::UnexpectedReply))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::protocol::{Decodable, Encodable};

    fn round_trip(r: &JoinResponse, version: i16) -> JoinGroupResponse {
        let mut buf = bytes::BytesMut::new();
        join_response(r.clone(), version)
            .encode(&mut buf, version)
            .expect("every version encodes");
        JoinGroupResponse::decode(&mut buf.freeze(), version).expect("decodes")
    }

    #[test]
    fn skip_assignment_goes_only_to_join_group_v9() {
        let r = JoinResponse {
            generation: 4,
            leader: "m".into(),
            member_id: "m".into(),
            members: vec![(
                "m".into(),
                Some("i".into()),
                bytes::Bytes::from_static(b"x"),
            )],
            skip_assignment: true,
            ..JoinResponse::default()
        };
        let v9 = round_trip(&r, 9);
        assert!(v9.skip_assignment);
        assert_eq!(v9.members.len(), 1);
        for version in [5, 8] {
            let old = round_trip(&r, version);
            assert!(!old.skip_assignment);
            assert_eq!((old.generation_id, old.leader.as_str()), (4, "m"));
        }
    }
}
