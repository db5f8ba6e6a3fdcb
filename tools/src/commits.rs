//! A group's committed offsets: OffsetFetch and OffsetCommit against its coordinator. Shared by
//! the console consumer (a group member committing its progress) and `group describe` and
//! `group reset-offsets` (an administrator reading and rewriting them).

use crate::client::{sb, topic_name, Conn};
use crate::error::{check, AdminError, Result};
use crate::metadata::Tp;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafka_protocol::messages::{ApiKey, GroupId, OffsetCommitRequest, OffsetFetchRequest};
use std::collections::BTreeMap;

/// The identity a commit is made under: a member's generation, or none for an administrator
/// committing for an inactive group (Kafka's "simple" commit: generation -1, empty member id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committer {
    pub generation: i32,
    pub member_id: String,
}

impl Committer {
    pub fn admin() -> Committer {
        Committer {
            generation: -1,
            member_id: String::new(),
        }
    }
}

/// Committed offsets of `group`: of the given partitions, or of everything it committed with
/// `None`. Partitions without a commit are left out.
pub fn fetch(
    coordinator: &mut Conn,
    group: &str,
    partitions: Option<&BTreeMap<String, Vec<i32>>>,
) -> Result<BTreeMap<Tp, i64>> {
    // v2 is the first that can ask for all topics (null); v8 batches groups, which this tool
    // does not need.
    let v = coordinator.version(ApiKey::OffsetFetch, 2, 7)?;
    let req = OffsetFetchRequest::default()
        .with_group_id(GroupId(sb(group)))
        .with_topics(partitions.map(|ps| {
            ps.iter()
                .map(|(t, p)| {
                    OffsetFetchRequestTopic::default()
                        .with_name(topic_name(t))
                        .with_partition_indexes(p.clone())
                })
                .collect()
        }));
    let resp = coordinator.call(&req, v)?;
    check(resp.error_code, None, || {
        format!("committed offsets of group {group}")
    })?;
    let mut out = BTreeMap::new();
    for t in resp.topics {
        for p in t.partitions {
            let name = t.name.0.to_string();
            check(p.error_code, None, || {
                format!(
                    "committed offset of group {group} on {name}-{}",
                    p.partition_index
                )
            })?;
            if p.committed_offset >= 0 {
                out.insert((name, p.partition_index), p.committed_offset);
            }
        }
    }
    Ok(out)
}

/// Commits `offsets` (the next offset to consume, per partition) for `group`.
pub fn commit(
    coordinator: &mut Conn,
    group: &str,
    who: &Committer,
    offsets: &BTreeMap<Tp, i64>,
) -> Result<()> {
    if offsets.is_empty() {
        return Ok(());
    }
    let v = coordinator.version(ApiKey::OffsetCommit, 2, 9)?;
    let mut topics: BTreeMap<&str, Vec<OffsetCommitRequestPartition>> = BTreeMap::new();
    for ((t, p), offset) in offsets {
        topics.entry(t).or_default().push(
            OffsetCommitRequestPartition::default()
                .with_partition_index(*p)
                .with_committed_offset(*offset)
                .with_committed_leader_epoch(-1)
                .with_committed_metadata(Some(sb(""))),
        );
    }
    let req = OffsetCommitRequest::default()
        .with_group_id(GroupId(sb(group)))
        .with_generation_id_or_member_epoch(who.generation)
        .with_member_id(sb(who.member_id.clone()))
        // -1: the broker's offsets.retention.minutes applies (v2-v4 carry the field).
        .with_retention_time_ms(-1)
        .with_topics(
            topics
                .into_iter()
                .map(|(t, ps)| {
                    OffsetCommitRequestTopic::default()
                        .with_name(topic_name(t))
                        .with_partitions(ps)
                })
                .collect(),
        );
    let resp = coordinator.call(&req, v)?;
    let mut answered = 0;
    for t in &resp.topics {
        for p in &t.partitions {
            answered += 1;
            check(p.error_code, None, || {
                format!(
                    "commit offsets of group {group} on {}-{}",
                    t.name.0, p.partition_index
                )
            })?;
        }
    }
    if answered != offsets.len() {
        return Err(AdminError::Protocol(format!(
            "OffsetCommit answered {answered} of {} partitions",
            offsets.len()
        )));
    }
    Ok(())
}
