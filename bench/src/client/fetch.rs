//! Fetch requests for a set of partitions led by one broker.

use super::admin::topic_name;
use super::conn::Conn;
use bytes::Bytes;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{ApiKey, BrokerId, FetchRequest};

/// What one partition returned.
#[derive(Debug, Clone)]
pub struct PartitionFetch {
    pub partition: i32,
    pub error_code: i16,
    pub high_watermark: i64,
    pub records: Option<Bytes>,
}

/// Fetches `topic` at the given (partition, offset) positions. The broker answers once
/// `min_bytes` are there or after `max_wait_ms`.
pub async fn fetch(
    conn: &Conn,
    topic: &str,
    positions: &[(i32, i64)],
    max_wait_ms: i32,
    partition_max_bytes: i32,
) -> anyhow::Result<Vec<PartitionFetch>> {
    // v13+ names topics by id only; v12 is the newest that names them.
    let v = conn.version(ApiKey::Fetch, 4, 12)?;
    let req = FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(max_wait_ms)
        .with_min_bytes(1)
        .with_max_bytes(64 << 20)
        .with_isolation_level(0)
        .with_session_id(0)
        .with_session_epoch(-1)
        .with_topics(vec![FetchTopic::default()
            .with_topic(topic_name(topic))
            .with_partitions(
                positions
                    .iter()
                    .map(|&(p, offset)| {
                        FetchPartition::default()
                            .with_partition(p)
                            .with_fetch_offset(offset)
                            .with_partition_max_bytes(partition_max_bytes)
                    })
                    .collect(),
            )]);
    let resp = conn.call_at(req, v).await?;
    if let Some(e) = kafka_protocol::ResponseError::try_from_code(resp.error_code) {
        anyhow::bail!("fetch: {e}");
    }
    Ok(resp
        .responses
        .into_iter()
        .flat_map(|t| t.partitions)
        .map(|p| PartitionFetch {
            partition: p.partition_index,
            error_code: p.error_code,
            high_watermark: p.high_watermark,
            records: p.records,
        })
        .collect())
}
