//! OffsetCommit, OffsetFetch and OffsetDelete: partitions checked against this core's
//! metadata image, the rest on the group's core.

use super::call;
use crate::errors::{group_code, group_result_code};
use crate::group::coordinator::{
    CommitCall, CommitOffset, CommitPartition, GroupCall, GroupReply, MemberCall, TopicResults,
};
use crate::group::records::Committed;
use crate::group::GroupError;
use crate::kstr::sb;
use crate::runtime::core::Core;
use kafka_protocol::messages::offset_commit_request::OffsetCommitRequestPartition;
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
use kafka_protocol::messages::{
    OffsetCommitRequest, OffsetCommitResponse, OffsetDeleteRequest, OffsetDeleteResponse,
    OffsetFetchRequest, OffsetFetchResponse, TopicName,
};
use std::rc::Rc;

/// Commit partitions as this core checked them: `Err` carries their failure.
type Checked = TopicResults<Result<(), GroupError>>;

/// What a partition entry commits: the first entry of its topic name and partition in the
/// request (a repeated topic name is looked up as its first entry).
fn commit_offset(req: &OffsetCommitRequest, topic: &str, partition: i32) -> Option<CommitOffset> {
    let t = req.topics.iter().find(|t| t.name.0.as_str() == topic)?;
    let p: &OffsetCommitRequestPartition = t
        .partitions
        .iter()
        .find(|x| x.partition_index == partition)?;
    Some(CommitOffset {
        offset: p.committed_offset,
        leader_epoch: p.committed_leader_epoch,
        metadata: p
            .committed_metadata
            .as_ref()
            .map(|m| m.to_string())
            .unwrap_or_default(),
    })
}

pub async fn offset_commit(core: &Rc<Core>, req: OffsetCommitRequest) -> OffsetCommitResponse {
    let group = req.group_id.0.to_string();
    let checked: Checked = {
        let image = core.image();
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
    let c = GroupCall::Commit(CommitCall {
        member: MemberCall {
            group: group.clone(),
            member_id: req.member_id.to_string(),
            instance_id: req.group_instance_id.as_ref().map(|s| s.to_string()),
            generation: req.generation_id_or_member_epoch,
        },
        topics: checked
            .iter()
            .map(|(t, ps)| {
                let parts = ps
                    .iter()
                    .map(|(p, check)| CommitPartition {
                        partition: *p,
                        check: *check,
                        offset: commit_offset(&req, t, *p),
                    })
                    .collect();
                (t.clone(), parts)
            })
            .collect(),
    });
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

pub async fn offset_delete(core: &Rc<Core>, req: OffsetDeleteRequest) -> OffsetDeleteResponse {
    let group = req.group_id.0.to_string();
    if group.is_empty() {
        return OffsetDeleteResponse::default()
            .with_error_code(group_code(GroupError::InvalidGroupId));
    }
    let c = GroupCall::OffsetDelete {
        group: group.clone(),
        topics: req
            .topics
            .iter()
            .map(|t| {
                let parts = t.partitions.iter().map(|p| p.partition_index).collect();
                (t.name.0.to_string(), parts)
            })
            .collect(),
    };
    match call(core, &group, c).await {
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
