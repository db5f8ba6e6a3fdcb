//! ListOffsets: earliest, latest, max timestamp, or by timestamp, answered by the owning core.

use crate::runtime::core::Core;
use crate::runtime::messages::{ShardRequest, ShardResponse};
use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{
    DeleteRecordsRequest, DeleteRecordsResponse, ListOffsetsRequest, ListOffsetsResponse,
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
        let count = core
            .image
            .borrow()
            .topic(&name)
            .map_or(0, |m| m.partitions.len() as i32);
        let mut partitions = Vec::new();
        for p in t.partitions {
            let r = ListOffsetsPartitionResponse::default()
                .with_partition_index(p.partition_index)
                .with_timestamp(-1)
                .with_offset(-1)
                .with_leader_epoch(-1);
            if p.partition_index < 0 || p.partition_index >= count {
                partitions.push(r.with_error_code(K::UnknownTopicOrPartition.code()));
                continue;
            }
            let owner = core.owner_of(&name, p.partition_index);
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

/// DeleteRecords (`kafka-delete-records.sh`, AdminClient `deleteRecords`): each partition's
/// leader moves its log start offset and answers the new low watermark. Internal topics are
/// refused, as Kafka refuses them.
pub async fn delete_records(core: &Rc<Core>, req: DeleteRecordsRequest) -> DeleteRecordsResponse {
    let mut topics = Vec::new();
    for t in req.topics {
        let name = t.name.0.to_string();
        let count = core
            .image
            .borrow()
            .topic(&name)
            .map_or(0, |m| m.partitions.len() as i32);
        let mut partitions = Vec::new();
        for p in t.partitions {
            let r = DeleteRecordsPartitionResult::default()
                .with_partition_index(p.partition_index)
                .with_low_watermark(-1);
            if p.partition_index < 0 || p.partition_index >= count {
                partitions.push(r.with_error_code(K::UnknownTopicOrPartition.code()));
                continue;
            }
            if name == crate::group::OFFSETS_TOPIC {
                partitions.push(r.with_error_code(K::InvalidTopicException.code()));
                continue;
            }
            let owner = core.owner_of(&name, p.partition_index);
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
