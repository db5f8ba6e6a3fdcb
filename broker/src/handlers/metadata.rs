//! Metadata: brokers, the controller, and topics with their partitions, from this core's image.
//! Unknown topics are created on request when `auto.create.topics.enable` allows it.

use super::sb;
use crate::metadata::controller::validate_topic_name;
use crate::metadata::TopicMeta;
use crate::runtime::core::Core;
use crate::runtime::messages::{
    ControllerCall, ControllerReply, NewTopic, ShardRequest, ShardResponse,
};
use crate::shard::CONTROLLER_SHARD;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse, TopicName};
use kafka_protocol::ResponseError as K;
use std::rc::Rc;

pub async fn handle(core: &Rc<Core>, req: MetadataRequest, version: i16) -> MetadataResponse {
    let s = &core.settings;
    // v0 has no null: an empty list means every topic.
    let requested: Option<Vec<(Option<String>, uuid::Uuid)>> = match req.topics {
        None => None,
        Some(t) if t.is_empty() && version == 0 => None,
        Some(t) => Some(
            t.into_iter()
                .map(|t| (t.name.map(|n| n.0.to_string()), t.topic_id))
                .collect(),
        ),
    };
    let topic_ops = if req.include_topic_authorized_operations {
        super::TOPIC_OPERATIONS
    } else {
        i32::MIN
    };
    let cluster_ops = if req.include_cluster_authorized_operations && (8..=10).contains(&version) {
        super::CLUSTER_OPERATIONS
    } else {
        i32::MIN
    };
    let auto_create = s.auto_create_topics_enable && (version < 4 || req.allow_auto_topic_creation);
    let mut topics = Vec::new();
    match requested {
        None => {
            let image = core.image.borrow();
            topics.extend(image.topics().map(|t| topic_entry(t, s.node_id)));
        }
        Some(list) => {
            for (name, id) in list {
                // A topic asked for by id (v10+) has a null or an empty name: the Java client
                // sends "", its schema's default, and Kafka goes by the id whenever one is set.
                let name = if id.is_nil() { name } else { None };
                let found = {
                    let image = core.image.borrow();
                    match &name {
                        Some(n) => image.topic(n).cloned(),
                        None => image.topic_by_id(id.as_bytes()).cloned(),
                    }
                };
                let entry = match (found, name) {
                    (Some(t), _) => topic_entry(&t, s.node_id),
                    (None, Some(n)) if auto_create && validate_topic_name(&n).is_ok() => {
                        auto_create_topic(core, &n).await
                    }
                    (None, Some(n)) => {
                        let code = if validate_topic_name(&n).is_err() {
                            K::InvalidTopicException
                        } else {
                            K::UnknownTopicOrPartition
                        };
                        MetadataResponseTopic::default()
                            .with_error_code(code.code())
                            .with_name(Some(TopicName(sb(n))))
                    }
                    (None, None) => MetadataResponseTopic::default()
                        .with_error_code(K::UnknownTopicId.code())
                        .with_topic_id(id),
                };
                topics.push(entry);
            }
        }
    }
    MetadataResponse::default()
        .with_brokers(vec![MetadataResponseBroker::default()
            .with_node_id(BrokerId(s.node_id))
            .with_host(sb(s.advertised_host.clone()))
            .with_port(s.advertised_port)])
        .with_cluster_id(Some(sb(s.cluster_id.clone())))
        .with_controller_id(BrokerId(s.node_id))
        .with_topics(
            topics
                .into_iter()
                .map(|t| {
                    if t.error_code == 0 && version >= 8 {
                        t.with_topic_authorized_operations(topic_ops)
                    } else {
                        t
                    }
                })
                .collect(),
        )
        .with_cluster_authorized_operations(cluster_ops)
}

fn topic_entry(t: &TopicMeta, _node_id: i32) -> MetadataResponseTopic {
    let partitions = t
        .partitions
        .iter()
        .enumerate()
        .map(|(i, p)| {
            MetadataResponsePartition::default()
                .with_partition_index(i as i32)
                .with_leader_id(BrokerId(p.leader))
                .with_leader_epoch(p.leader_epoch)
                .with_replica_nodes(p.replicas.iter().map(|b| BrokerId(*b)).collect())
                .with_isr_nodes(p.isr.iter().map(|b| BrokerId(*b)).collect())
        })
        .collect();
    MetadataResponseTopic::default()
        .with_name(Some(TopicName(sb(t.name.clone()))))
        .with_topic_id(uuid::Uuid::from_bytes(t.id))
        .with_is_internal(t.name.starts_with("__"))
        .with_partitions(partitions)
}

/// Creates a topic with the broker's defaults, as Kafka does for a Metadata request naming an
/// unknown topic. Waits for the creation, so the answer already lists its partitions.
async fn auto_create_topic(core: &Rc<Core>, name: &str) -> MetadataResponseTopic {
    let topic = if name == crate::group::OFFSETS_TOPIC {
        // The internal topic gets its own partition count and settings, as in Kafka.
        super::groups::offsets_topic(core)
    } else {
        NewTopic {
            name: name.to_string(),
            num_partitions: -1,
            replication_factor: -1,
            assignments: vec![],
            configs: vec![],
        }
    };
    let call = ControllerCall::CreateTopics {
        topics: vec![topic],
        validate_only: false,
    };
    let reply = core
        .call(CONTROLLER_SHARD, ShardRequest::Controller(call))
        .await;
    let error = match reply {
        Some(ShardResponse::Controller(ControllerReply::CreateTopics(mut r))) => match r.pop() {
            Some(Ok(_)) => None,
            // Another request created it meanwhile: fine.
            Some(Err((code, _))) if code == K::TopicAlreadyExists.code() => None,
            Some(Err((code, msg))) => {
                tracing::warn!(topic = name, code, msg, "auto-create failed");
                Some(code)
            }
            None => Some(K::UnknownServerError.code()),
        },
        _ => Some(K::LeaderNotAvailable.code()),
    };
    let found = core.image.borrow().topic(name).cloned();
    match (error, found) {
        (None, Some(t)) => topic_entry(&t, core.settings.node_id),
        (code, _) => MetadataResponseTopic::default()
            .with_error_code(code.unwrap_or(K::LeaderNotAvailable.code()))
            .with_name(Some(TopicName(sb(name.to_string())))),
    }
}
