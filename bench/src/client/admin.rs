//! Cluster metadata, topic creation and offset lookups.

use super::conn::Conn;
use anyhow::{anyhow, bail, Context};
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{
    ApiKey, BrokerId, CreateTopicsRequest, ListOffsetsRequest, MetadataRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use std::collections::BTreeMap;
use std::time::Duration;

pub fn topic_name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_string()))
}

/// Where a topic's partitions live.
#[derive(Debug, Clone)]
pub struct TopicLayout {
    pub topic: String,
    /// Leader address ("host:port") of each partition, indexed by partition.
    pub leaders: Vec<String>,
}

impl TopicLayout {
    pub fn partitions(&self) -> usize {
        self.leaders.len()
    }
}

/// Metadata for `topic`: `Ok(None)` if it does not exist.
pub async fn describe_topic(conn: &Conn, topic: &str) -> anyhow::Result<Option<TopicLayout>> {
    let v = conn.version(ApiKey::Metadata, 1, 12)?;
    let req = MetadataRequest::default()
        .with_topics(Some(vec![
            MetadataRequestTopic::default().with_name(Some(topic_name(topic)))
        ]))
        .with_allow_auto_topic_creation(false);
    let resp = conn.call_at(req, v).await?;
    let brokers: BTreeMap<BrokerId, String> = resp
        .brokers
        .iter()
        .map(|b| (b.node_id, format!("{}:{}", b.host, b.port)))
        .collect();
    let t = resp
        .topics
        .iter()
        .find(|t| t.name.as_ref().map(|n| n.0.as_str()) == Some(topic))
        .ok_or_else(|| anyhow!("metadata response lacks topic {topic}"))?;
    match ResponseError::try_from_code(t.error_code) {
        None => {}
        Some(ResponseError::UnknownTopicOrPartition) => return Ok(None),
        Some(e) => bail!("metadata for {topic}: {e}"),
    }
    let mut leaders = vec![String::new(); t.partitions.len()];
    for p in &t.partitions {
        if let Some(e) = ResponseError::try_from_code(p.error_code) {
            bail!("metadata for {topic}-{}: {e}", p.partition_index);
        }
        let i = p.partition_index as usize;
        if i >= leaders.len() {
            bail!("metadata for {topic}: partition {i} out of range");
        }
        leaders[i] = brokers.get(&p.leader_id).cloned().ok_or_else(|| {
            anyhow!(
                "{topic}-{i}: leader {} is not a known broker",
                p.leader_id.0
            )
        })?;
    }
    Ok(Some(TopicLayout {
        topic: topic.to_string(),
        leaders,
    }))
}

/// Creates `topic` with `partitions` if it is missing, then waits until every partition has a
/// leader. An existing topic with a different partition count is an error.
pub async fn ensure_topic(
    conn: &Conn,
    topic: &str,
    partitions: usize,
    replication_factor: i16,
) -> anyhow::Result<TopicLayout> {
    if let Some(layout) = describe_topic(conn, topic).await? {
        if layout.partitions() != partitions {
            bail!(
                "topic {topic} exists with {} partitions, not {partitions}",
                layout.partitions()
            );
        }
        return Ok(layout);
    }
    let v = conn.version(ApiKey::CreateTopics, 2, 7)?;
    let req = CreateTopicsRequest::default()
        .with_timeout_ms(30_000)
        .with_topics(vec![CreatableTopic::default()
            .with_name(topic_name(topic))
            .with_num_partitions(partitions as i32)
            .with_replication_factor(replication_factor)]);
    let resp = conn.call_at(req, v).await?;
    for t in &resp.topics {
        match ResponseError::try_from_code(t.error_code) {
            None | Some(ResponseError::TopicAlreadyExists) => {}
            Some(e) => bail!(
                "creating {topic}: {e}{}",
                t.error_message
                    .as_ref()
                    .map(|m| format!(" ({m})"))
                    .unwrap_or_default()
            ),
        }
    }
    for _ in 0..300 {
        if let Ok(Some(layout)) = describe_topic(conn, topic).await {
            if layout.partitions() == partitions {
                wait_leaders_serve(&layout).await?;
                return Ok(layout);
            }
        }
        glommio::timer::sleep(Duration::from_millis(100)).await;
    }
    bail!("topic {topic} has no leaders 30 s after creation")
}

/// Waits (at most 30 s) until every partition's leader answers ListOffsets. Apache Kafka lists a
/// new topic's leaders in Metadata a moment before those brokers serve the partitions: a bench
/// started at once met NOT_LEADER_OR_FOLLOWER, which it counts and never retries.
async fn wait_leaders_serve(layout: &TopicLayout) -> anyhow::Result<()> {
    let mut by_leader: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for (p, l) in layout.leaders.iter().enumerate() {
        by_leader.entry(l.as_str()).or_default().push(p as i32);
    }
    for (leader, parts) in by_leader {
        let conn = Conn::connect(leader).await?;
        let mut last = None;
        for _ in 0..300 {
            match list_offsets(&conn, &layout.topic, &parts, LATEST).await {
                Ok(_) => {
                    last = None;
                    break;
                }
                Err(e) => last = Some(e),
            }
            glommio::timer::sleep(Duration::from_millis(100)).await;
        }
        if let Some(e) = last {
            return Err(e.context(format!(
                "{} not served by {leader} 30 s after creation",
                layout.topic
            )));
        }
    }
    Ok(())
}

/// Kafka's special ListOffsets timestamps.
pub const LATEST: i64 = -1;
pub const EARLIEST: i64 = -2;

/// Offsets at `timestamp` (EARLIEST or LATEST) of the given partitions, all led by `conn`.
pub async fn list_offsets(
    conn: &Conn,
    topic: &str,
    partitions: &[i32],
    timestamp: i64,
) -> anyhow::Result<BTreeMap<i32, i64>> {
    let v = conn.version(ApiKey::ListOffsets, 1, 7)?;
    let req = ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_topics(vec![ListOffsetsTopic::default()
            .with_name(topic_name(topic))
            .with_partitions(
                partitions
                    .iter()
                    .map(|&p| {
                        ListOffsetsPartition::default()
                            .with_partition_index(p)
                            .with_timestamp(timestamp)
                    })
                    .collect(),
            )]);
    let resp = conn.call_at(req, v).await.context("ListOffsets")?;
    let mut out = BTreeMap::new();
    for t in &resp.topics {
        for p in &t.partitions {
            if let Some(e) = ResponseError::try_from_code(p.error_code) {
                bail!("ListOffsets {topic}-{}: {e}", p.partition_index);
            }
            out.insert(p.partition_index, p.offset);
        }
    }
    for p in partitions {
        if !out.contains_key(p) {
            bail!("ListOffsets response lacks {topic}-{p}");
        }
    }
    Ok(out)
}
