//! Produce: validate, route each partition's batch to its owning core, gather the answers.
//! Partitions on other cores are appended there concurrently (fan out, gather in order). With
//! acks=all each partition's answer waits for its commit, at most the request's `timeout_ms`
//! (`REQUEST_TIMED_OUT` past it). With acks=0 nothing is answered, and a failure closes the
//! connection instead, as Kafka does: the producer sees the close and refreshes its metadata.

use crate::clock::now_ms;
use crate::runtime::core::Core;
use crate::runtime::messages::{ProduceFailure, ShardRequest, ShardResponse};
use kafka_protocol::messages::produce_response::{
    BatchIndexAndErrorMessage, LeaderIdAndEpoch, NodeEndpoint, PartitionProduceResponse,
    TopicProduceResponse,
};
use kafka_protocol::messages::{BrokerId, ProduceRequest, ProduceResponse, ResponseKind};
use kafka_protocol::ResponseError as K;
use std::collections::BTreeSet;
use std::rc::Rc;
use weir_net::Reply;
use weir_storage::AppendInfo;

pub async fn handle(core: &Rc<Core>, req: ProduceRequest, version: i16) -> Reply {
    let acks = req.acks;
    let timeout_ms = req.timeout_ms;
    let now = now_ms();
    let mut tasks = Vec::new();
    for topic in req.topic_data {
        let name = topic.name.0.to_string();
        let mut parts = Vec::new();
        for p in topic.partition_data {
            let core = core.clone();
            let name = name.clone();
            let index = p.index;
            let task = glommio::spawn_local(async move {
                let result =
                    produce_one(&core, &name, index, p.records, acks, timeout_ms, now).await;
                (index, result)
            });
            parts.push(task);
        }
        tasks.push((topic.name, parts));
    }
    let mut responses = Vec::with_capacity(tasks.len());
    let mut failed = false;
    // KIP-951 (v10+): a NOT_LEADER_OR_FOLLOWER names the leader this broker knows, and the
    // response carries that leader's endpoint, so the producer retries there at once instead
    // of waiting for a metadata refresh.
    let mut leaders = BTreeSet::new();
    for (name, parts) in tasks {
        let mut partition_responses = Vec::with_capacity(parts.len());
        for t in parts {
            let (index, result) = t.await;
            failed |= result.is_err();
            let mut r = PartitionProduceResponse::default().with_index(index);
            if version >= 10 && matches!(&result, Err(f) if f.code == K::NotLeaderOrFollower.code())
            {
                if let Some((leader, epoch)) = core.leader_of(&name.0, index) {
                    r.current_leader = LeaderIdAndEpoch::default()
                        .with_leader_id(BrokerId(leader))
                        .with_leader_epoch(epoch);
                    if leader >= 0 {
                        leaders.insert(leader);
                    }
                }
            }
            partition_responses.push(match result {
                Ok(info) => r
                    .with_base_offset(info.first_offset)
                    .with_log_append_time_ms(info.log_append_time_ms)
                    .with_log_start_offset(info.log_start_offset),
                Err(f) => r
                    .with_error_code(f.code)
                    .with_base_offset(-1)
                    .with_log_append_time_ms(-1)
                    .with_log_start_offset(f.log_start_offset)
                    .with_record_errors(
                        f.record_errors
                            .into_iter()
                            .map(|e| {
                                BatchIndexAndErrorMessage::default()
                                    .with_batch_index(e.batch_index)
                                    .with_batch_index_error_message(Some(super::sb(e.message)))
                            })
                            .collect(),
                    )
                    .with_error_message(f.message.map(super::sb)),
            });
        }
        responses.push(
            TopicProduceResponse::default()
                .with_name(name)
                .with_partition_responses(partition_responses),
        );
    }
    if acks == 0 {
        // No answer is expected; a failure must still be noticed, so Kafka closes the
        // connection (after the answers of earlier requests).
        return if failed {
            Reply::Close
        } else {
            Reply::NoResponse
        };
    }
    let node_endpoints = super::metadata::live_brokers_among(core, &leaders)
        .into_iter()
        .map(|b| {
            NodeEndpoint::default()
                .with_node_id(BrokerId(b.id))
                .with_host(super::sb(b.host))
                .with_port(b.port)
                .with_rack(b.rack.map(super::sb))
        })
        .collect();
    Reply::Message(ResponseKind::Produce(
        ProduceResponse::default()
            .with_responses(responses)
            .with_node_endpoints(node_endpoints),
    ))
}

async fn produce_one(
    core: &Rc<Core>,
    topic: &str,
    partition: i32,
    records: Option<bytes::Bytes>,
    acks: i16,
    timeout_ms: i32,
    now: i64,
) -> Result<AppendInfo, ProduceFailure> {
    let fail = |kind: K| ProduceFailure::code(kind.code());
    if !matches!(acks, -1..=1) {
        return Err(fail(K::InvalidRequiredAcks));
    }
    if topic == crate::group::OFFSETS_TOPIC {
        // Only the group coordinator writes there, as in Kafka.
        return Err(ProduceFailure::with_message(
            K::InvalidTopicException.code(),
            format!("Cannot append to internal topic {topic}"),
        ));
    }
    let exists = core
        .image()
        .topic(topic)
        .is_some_and(|t| (partition as usize) < t.partitions.len() && partition >= 0);
    if !exists {
        return Err(fail(K::UnknownTopicOrPartition));
    }
    let Some(records) = records else {
        return Err(fail(K::InvalidRecord));
    };
    let owner = core.owner_of(topic, partition);
    let request = ShardRequest::Produce {
        topic: topic.to_string(),
        partition,
        records,
        acks,
        timeout_ms,
        now_ms: now,
    };
    match core.call(owner, request).await {
        Some(ShardResponse::Produce(r)) => r,
        _ => Err(fail(K::NotLeaderOrFollower)),
    }
}
