//! ListOffsets (earliest, latest, max timestamp, or by timestamp), OffsetForLeaderEpoch and
//! DeleteRecords, answered by the core owning the partition.

use crate::runtime::core::Core;
use crate::runtime::messages::{ShardRequest, ShardResponse};
use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderTopicResult,
};
use kafka_protocol::messages::{
    DeleteRecordsRequest, DeleteRecordsResponse, ListOffsetsRequest, ListOffsetsResponse,
    OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse,
};
use kafka_protocol::ResponseError as K;
use std::rc::Rc;

pub async fn list_offsets(
    core: &Rc<Core>,
    req: ListOffsetsRequest,
    version: i16,
) -> ListOffsetsResponse {
    let committed = req.isolation_level == 1;
    let mut topics = Vec::new();
    for t in req.topics {
        let name = t.name.0.to_string();
        let mut partitions = Vec::new();
        for p in t.partitions {
            let r = ListOffsetsPartitionResponse::default()
                .with_partition_index(p.partition_index)
                .with_timestamp(-1)
                .with_offset(-1)
                .with_leader_epoch(-1);
            let Some(owner) = core.owner_of_existing(&name, p.partition_index) else {
                partitions.push(r.with_error_code(K::UnknownTopicOrPartition.code()));
                continue;
            };
            let request = ShardRequest::ListOffset {
                topic: name.clone(),
                partition: p.partition_index,
                timestamp: p.timestamp,
                committed,
                current_leader_epoch: if version >= 4 {
                    p.current_leader_epoch
                } else {
                    -1
                },
            };
            partitions.push(match core.call(owner, request).await {
                // The leader epoch exists on the wire from v4.
                Some(ShardResponse::ListOffset(Ok(o))) => r
                    .with_offset(o.offset)
                    .with_timestamp(o.timestamp)
                    .with_leader_epoch(if version >= 4 { o.leader_epoch } else { -1 }),
                Some(ShardResponse::ListOffset(Err(code))) => r.with_error_code(code),
                _ => r.with_error_code(K::NotLeaderOrFollower.code()),
            });
        }
        topics.push(
            ListOffsetsTopicResponse::default()
                .with_name(t.name)
                .with_partitions(partitions),
        );
    }
    ListOffsetsResponse::default().with_topics(topics)
}

/// OffsetForLeaderEpoch: consumers validate their position after a leader change with it
/// (KIP-320: "did the log I read from end before my position?"); each partition's leader
/// answers where the asked epoch ends in its log. Any replica id is served by the leader only,
/// as Kafka serves it (only the debugging id -2 may read a follower, and Weir has no such tool).
pub async fn offset_for_leader_epoch(
    core: &Rc<Core>,
    req: OffsetForLeaderEpochRequest,
) -> OffsetForLeaderEpochResponse {
    let mut topics = Vec::new();
    for t in req.topics {
        let name = t.topic.0.to_string();
        let mut partitions = Vec::new();
        for p in t.partitions {
            let r = EpochEndOffset::default()
                .with_partition(p.partition)
                .with_leader_epoch(-1)
                .with_end_offset(-1);
            let Some(owner) = core.owner_of_existing(&name, p.partition) else {
                partitions.push(r.with_error_code(K::UnknownTopicOrPartition.code()));
                continue;
            };
            let request = ShardRequest::OffsetForEpoch {
                topic: name.clone(),
                partition: p.partition,
                current_leader_epoch: p.current_leader_epoch,
                leader_epoch: p.leader_epoch,
            };
            partitions.push(match core.call(owner, request).await {
                Some(ShardResponse::OffsetForEpoch(Ok((epoch, end)))) => {
                    r.with_leader_epoch(epoch).with_end_offset(end)
                }
                Some(ShardResponse::OffsetForEpoch(Err(code))) => r.with_error_code(code),
                _ => r.with_error_code(K::NotLeaderOrFollower.code()),
            });
        }
        topics.push(
            OffsetForLeaderTopicResult::default()
                .with_topic(t.topic)
                .with_partitions(partitions),
        );
    }
    OffsetForLeaderEpochResponse::default().with_topics(topics)
}

/// DeleteRecords (`kafka-delete-records.sh`, AdminClient `deleteRecords`): each partition's
/// leader moves its log start offset and answers the new low watermark. Internal topics are
/// refused, as Kafka refuses them.
pub async fn delete_records(core: &Rc<Core>, req: DeleteRecordsRequest) -> DeleteRecordsResponse {
    let mut topics = Vec::new();
    for t in req.topics {
        let name = t.name.0.to_string();
        let mut partitions = Vec::new();
        for p in t.partitions {
            let r = DeleteRecordsPartitionResult::default()
                .with_partition_index(p.partition_index)
                .with_low_watermark(-1);
            let Some(owner) = core.owner_of_existing(&name, p.partition_index) else {
                partitions.push(r.with_error_code(K::UnknownTopicOrPartition.code()));
                continue;
            };
            if name == crate::group::OFFSETS_TOPIC {
                partitions.push(r.with_error_code(K::InvalidTopicException.code()));
                continue;
            }
            let request = ShardRequest::DeleteRecords {
                topic: name.clone(),
                partition: p.partition_index,
                offset: p.offset,
            };
            partitions.push(match core.call(owner, request).await {
                Some(ShardResponse::DeleteRecords(Ok(low))) => r.with_low_watermark(low),
                Some(ShardResponse::DeleteRecords(Err(e))) => r.with_error_code(e.code),
                _ => r.with_error_code(K::NotLeaderOrFollower.code()),
            });
        }
        topics.push(
            DeleteRecordsTopicResult::default()
                .with_name(t.name)
                .with_partitions(partitions),
        );
    }
    DeleteRecordsResponse::default().with_topics(topics)
}
