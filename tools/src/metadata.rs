//! Topics, partitions and brokers as Metadata describes them, and the offsets ListOffsets gives:
//! what nearly every networked command starts from.

use crate::client::{topic_name, BrokerAddr, Client};
use crate::error::{check, AdminError, Result};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::{ApiKey, BrokerId, ListOffsetsRequest};
use std::collections::BTreeMap;

/// Kafka's special ListOffsets timestamps.
pub const LATEST: i64 = -1;
pub const EARLIEST: i64 = -2;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionMeta {
    pub partition: i32,
    /// -1 while the partition has no leader.
    pub leader: i32,
    pub leader_epoch: i32,
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
    pub error_code: i16,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicMeta {
    pub name: String,
    pub id: String,
    pub internal: bool,
    /// Sorted by partition number.
    pub partitions: Vec<PartitionMeta>,
}

impl TopicMeta {
    /// Replication factor as Kafka's tools print it: the replica count of the first partition.
    pub fn replication_factor(&self) -> usize {
        self.partitions.first().map_or(0, |p| p.replicas.len())
    }

    pub fn leader_of(&self, partition: i32) -> Option<i32> {
        self.partitions
            .iter()
            .find(|p| p.partition == partition)
            .map(|p| p.leader)
            .filter(|l| *l >= 0)
    }
}

#[derive(Debug, Clone)]
pub struct ClusterMeta {
    pub cluster_id: Option<String>,
    pub controller: i32,
    pub brokers: Vec<BrokerAddr>,
    pub topics: Vec<TopicMeta>,
}

/// Metadata for the named topics, or for every topic with `None`. A named topic that does not
/// exist is an error (UNKNOWN_TOPIC_OR_PARTITION), as in Kafka's tools.
pub fn fetch(client: &mut Client, topics: Option<&[String]>) -> Result<ClusterMeta> {
    let resp = client.metadata(topics)?;
    from_response(client, resp)
}

/// One topic's metadata for a producer: the broker may create it (`auto.create.topics.enable`),
/// as it does for Kafka's producers.
pub fn topic_auto_create(client: &mut Client, name: &str) -> Result<TopicMeta> {
    let resp = client.metadata_auto_create(&[name.to_string()])?;
    from_response(client, resp)?
        .topics
        .into_iter()
        .find(|t| t.name == name)
        .ok_or_else(|| AdminError::Protocol(format!("metadata response lacks topic {name}")))
}

fn from_response(
    client: &Client,
    resp: kafka_protocol::messages::MetadataResponse,
) -> Result<ClusterMeta> {
    let mut out = Vec::with_capacity(resp.topics.len());
    for t in resp.topics {
        let name = t.name.as_ref().map(|n| n.0.to_string()).unwrap_or_default();
        check(t.error_code, None, || format!("topic {name}"))?;
        let mut partitions: Vec<PartitionMeta> = t
            .partitions
            .iter()
            .map(|p| PartitionMeta {
                partition: p.partition_index,
                leader: p.leader_id.0,
                leader_epoch: p.leader_epoch,
                replicas: p.replica_nodes.iter().map(|b| b.0).collect(),
                isr: p.isr_nodes.iter().map(|b| b.0).collect(),
                error_code: p.error_code,
            })
            .collect();
        partitions.sort_by_key(|p| p.partition);
        out.push(TopicMeta {
            name,
            id: t.topic_id.to_string(),
            internal: t.is_internal,
            partitions,
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(ClusterMeta {
        cluster_id: resp.cluster_id.map(|c| c.to_string()),
        controller: resp.controller_id.0,
        brokers: client.brokers().values().cloned().collect(),
        topics: out,
    })
}

/// One topic's metadata.
pub fn topic(client: &mut Client, name: &str) -> Result<TopicMeta> {
    fetch(client, Some(&[name.to_string()]))?
        .topics
        .into_iter()
        .find(|t| t.name == name)
        .ok_or_else(|| AdminError::Protocol(format!("metadata response lacks topic {name}")))
}

/// A topic partition.
pub type Tp = (String, i32);

/// The offset at `timestamp` (EARLIEST, LATEST, or milliseconds) of each partition, asked of
/// each partition's leader. A timestamp past the last message gives -1, as in Kafka.
pub fn list_offsets(
    client: &mut Client,
    leaders: &BTreeMap<Tp, i32>,
    timestamp: i64,
) -> Result<BTreeMap<Tp, i64>> {
    let mut by_leader: BTreeMap<i32, BTreeMap<&str, Vec<i32>>> = BTreeMap::new();
    for ((t, p), leader) in leaders {
        if *leader < 0 {
            return Err(AdminError::Kafka {
                context: format!("offsets of {t}-{p}"),
                error: kafka_protocol::ResponseError::LeaderNotAvailable,
                message: None,
            });
        }
        by_leader
            .entry(*leader)
            .or_default()
            .entry(t)
            .or_default()
            .push(*p);
    }
    let mut out = BTreeMap::new();
    for (leader, topics) in by_leader {
        let conn = client.broker(leader)?;
        let v = conn.version(ApiKey::ListOffsets, 1, 8)?;
        let req = ListOffsetsRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_topics(
                topics
                    .iter()
                    .map(|(t, ps)| {
                        ListOffsetsTopic::default()
                            .with_name(topic_name(t))
                            .with_partitions(
                                ps.iter()
                                    .map(|p| {
                                        ListOffsetsPartition::default()
                                            .with_partition_index(*p)
                                            .with_current_leader_epoch(-1)
                                            .with_timestamp(timestamp)
                                    })
                                    .collect(),
                            )
                    })
                    .collect(),
            );
        let resp = conn.call(&req, v)?;
        for t in resp.topics {
            for p in t.partitions {
                let name = t.name.0.to_string();
                check(p.error_code, None, || {
                    format!("offsets of {name}-{}", p.partition_index)
                })?;
                out.insert((name, p.partition_index), p.offset);
            }
        }
    }
    if let Some((t, p)) = leaders.keys().find(|k| !out.contains_key(*k)) {
        return Err(AdminError::Protocol(format!(
            "ListOffsets answer lacks {t}-{p}"
        )));
    }
    Ok(out)
}

/// The leader of every partition of `topics`, from their metadata.
pub fn leaders(topics: &[TopicMeta]) -> BTreeMap<Tp, i32> {
    topics
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(|p| ((t.name.clone(), p.partition), p.leader))
        })
        .collect()
}
