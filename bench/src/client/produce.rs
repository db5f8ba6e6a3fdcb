//! Produce requests: one sealed batch per partition, several partitions per request.

use super::admin::topic_name;
use super::conn::Conn;
use anyhow::{anyhow, bail};
use bytes::Bytes;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{ApiKey, ProduceRequest};

/// Acknowledgement mode, as `acks` in Kafka producers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acks {
    None,
    Leader,
    All,
}

impl Acks {
    pub fn wire(self) -> i16 {
        match self {
            Acks::None => 0,
            Acks::Leader => 1,
            Acks::All => -1,
        }
    }
}

impl std::str::FromStr for Acks {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> anyhow::Result<Self> {
        match s {
            "0" => Ok(Acks::None),
            "1" => Ok(Acks::Leader),
            "all" | "-1" => Ok(Acks::All),
            _ => bail!("acks must be 0, 1 or all"),
        }
    }
}

/// Sends one batch for each of several partitions of `topic` in one request, as Kafka
/// producers drain every ready partition of a broker into one request. With acks 0 it returns
/// once the request is queued on the socket and reports no error codes; otherwise the error
/// code (0 = ok) of each partition, in the order given.
pub async fn produce(
    conn: &Conn,
    topic: &str,
    batches: Vec<(i32, Vec<u8>)>,
    acks: Acks,
    timeout_ms: i32,
) -> anyhow::Result<Vec<i16>> {
    let v = conn.version(ApiKey::Produce, 3, 9)?;
    let partitions: Vec<i32> = batches.iter().map(|(p, _)| *p).collect();
    let req = ProduceRequest::default()
        .with_acks(acks.wire())
        .with_timeout_ms(timeout_ms)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(topic_name(topic))
            .with_partition_data(
                batches
                    .into_iter()
                    .map(|(p, b)| {
                        PartitionProduceData::default()
                            .with_index(p)
                            .with_records(Some(Bytes::from(b)))
                    })
                    .collect(),
            )]);
    if acks == Acks::None {
        conn.send_only(req, v).await?;
        return Ok(vec![0; partitions.len()]);
    }
    let resp = conn.call_at(req, v).await?;
    partitions
        .iter()
        .map(|&partition| {
            resp.responses
                .iter()
                .flat_map(|t| t.partition_responses.iter())
                .find(|p| p.index == partition)
                .map(|p| p.error_code)
                .ok_or_else(|| anyhow!("produce response lacks {topic}-{partition}"))
        })
        .collect()
}
