//! Topic administration (forwarded to the controller core) and cluster description.

use super::sb;
use crate::config::topic::{resolved_source, topic_config_def, DescribedBroker};
use crate::runtime::core::Core;
use crate::runtime::messages::{
    ControllerCall, ControllerReply, NewTopic, ShardRequest, ShardResponse, TopicRef,
};
use crate::shard::CONTROLLER_SHARD;
use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::create_topics_response::{
    CreatableTopicConfigs, CreatableTopicResult,
};
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::*;
use kafka_protocol::ResponseError as K;
use std::rc::Rc;

/// The answer for an item when the controller core could not be reached.
fn controller_unavailable<T>() -> Result<T, (i16, String)> {
    Err((
        K::NotController.code(),
        "controller unavailable".to_string(),
    ))
}

async fn controller(core: &Rc<Core>, call: ControllerCall) -> Option<ControllerReply> {
    match core
        .call(CONTROLLER_SHARD, ShardRequest::Controller(call))
        .await
    {
        Some(ShardResponse::Controller(r)) => Some(r),
        _ => None,
    }
}

/// Kafka's DescribeConfigs / CreateTopics config sources.
pub const SOURCE_DYNAMIC_TOPIC: i8 = 1;
pub const SOURCE_DEFAULT: i8 = 5;

pub async fn create_topics(
    core: &Rc<Core>,
    req: CreateTopicsRequest,
    _version: i16,
) -> CreateTopicsResponse {
    let names: Vec<TopicName> = req.topics.iter().map(|t| t.name.clone()).collect();
    let topics = req
        .topics
        .into_iter()
        .map(|t| NewTopic {
            name: t.name.0.to_string(),
            num_partitions: t.num_partitions,
            replication_factor: t.replication_factor,
            assignments: t
                .assignments
                .into_iter()
                .map(|a| {
                    (
                        a.partition_index,
                        a.broker_ids.into_iter().map(|b| b.0).collect(),
                    )
                })
                .collect(),
            configs: t
                .configs
                .into_iter()
                .map(|c| (c.name.to_string(), c.value.map(|v| v.to_string())))
                .collect(),
        })
        .collect();
    let results = match controller(
        core,
        ControllerCall::CreateTopics {
            topics,
            validate_only: req.validate_only,
        },
    )
    .await
    {
        Some(ControllerReply::CreateTopics(r)) => r,
        _ => names.iter().map(|_| controller_unavailable()).collect(),
    };
    // Sources as Kafka's controller resolves them: the broker's values are known here as its
    // own DescribeConfigs lists them.
    let broker = DescribedBroker::from_entries(&core.settings.broker_configs);
    let topics = names
        .into_iter()
        .zip(results)
        .map(|(name, r)| match r {
            Ok(c) => CreatableTopicResult::default()
                .with_name(name)
                .with_topic_id(uuid::Uuid::from_bytes(c.id))
                .with_num_partitions(c.num_partitions)
                .with_replication_factor(c.replication_factor)
                .with_configs(Some(
                    c.configs
                        .into_iter()
                        .map(|(k, v, default)| {
                            let source = match topic_config_def(&k) {
                                Some(d) => resolved_source(d, !default, &broker) as i8,
                                None if default => SOURCE_DEFAULT,
                                None => SOURCE_DYNAMIC_TOPIC,
                            };
                            CreatableTopicConfigs::default()
                                .with_name(sb(k))
                                .with_value(Some(sb(v)))
                                .with_config_source(source)
                        })
                        .collect(),
                )),
            Err((code, msg)) => CreatableTopicResult::default()
                .with_name(name)
                .with_error_code(code)
                .with_error_message(Some(sb(msg)))
                .with_num_partitions(-1)
                .with_replication_factor(-1),
        })
        .collect();
    CreateTopicsResponse::default().with_topics(topics)
}

pub async fn delete_topics(
    core: &Rc<Core>,
    req: DeleteTopicsRequest,
    version: i16,
) -> DeleteTopicsResponse {
    let refs: Vec<TopicRef> = if version >= 6 {
        req.topics
            .iter()
            .map(|t| match &t.name {
                Some(n) => TopicRef::Name(n.0.to_string()),
                None => TopicRef::Id(*t.topic_id.as_bytes()),
            })
            .collect()
    } else {
        req.topic_names
            .iter()
            .map(|n| TopicRef::Name(n.0.to_string()))
            .collect()
    };
    let results = match controller(
        core,
        ControllerCall::DeleteTopics {
            topics: refs.clone(),
        },
    )
    .await
    {
        Some(ControllerReply::DeleteTopics(r)) => r,
        _ => refs.iter().map(|_| controller_unavailable()).collect(),
    };
    let responses = refs
        .into_iter()
        .zip(results)
        .map(|(r, result)| {
            let base = match &r {
                TopicRef::Name(n) => {
                    DeletableTopicResult::default().with_name(Some(TopicName(sb(n.clone()))))
                }
                TopicRef::Id(id) => {
                    DeletableTopicResult::default().with_topic_id(uuid::Uuid::from_bytes(*id))
                }
            };
            match result {
                Ok((name, id)) => base
                    .with_name(Some(TopicName(sb(name))))
                    .with_topic_id(uuid::Uuid::from_bytes(id)),
                Err((code, msg)) => base.with_error_code(code).with_error_message(Some(sb(msg))),
            }
        })
        .collect();
    DeleteTopicsResponse::default().with_responses(responses)
}

pub async fn create_partitions(
    core: &Rc<Core>,
    req: CreatePartitionsRequest,
) -> CreatePartitionsResponse {
    let names: Vec<TopicName> = req.topics.iter().map(|t| t.name.clone()).collect();
    let topics = req
        .topics
        .iter()
        .map(|t| (t.name.0.to_string(), t.count))
        .collect();
    let results = match controller(
        core,
        ControllerCall::CreatePartitions {
            topics,
            validate_only: req.validate_only,
        },
    )
    .await
    {
        Some(ControllerReply::CreatePartitions(r)) => r,
        _ => names.iter().map(|_| controller_unavailable()).collect(),
    };
    let results = names
        .into_iter()
        .zip(results)
        .map(|(name, r)| match r {
            Ok(()) => CreatePartitionsTopicResult::default().with_name(name),
            Err((code, msg)) => CreatePartitionsTopicResult::default()
                .with_name(name)
                .with_error_code(code)
                .with_error_message(Some(sb(msg))),
        })
        .collect();
    CreatePartitionsResponse::default().with_results(results)
}

pub async fn init_producer_id(
    core: &Rc<Core>,
    req: InitProducerIdRequest,
) -> InitProducerIdResponse {
    let resp = InitProducerIdResponse::default()
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1);
    if req.transactional_id.is_some() {
        // Transactions need a transaction coordinator, which Weir does not have yet (see
        // FindCoordinator for why this code).
        return resp.with_error_code(K::TransactionalIdAuthorizationFailed.code());
    }
    // KIP-360: a producer that already has an id asks for its epoch to be bumped.
    if req.producer_id.0 >= 0 && req.producer_epoch >= 0 && req.producer_epoch < i16::MAX - 1 {
        return resp
            .with_producer_id(req.producer_id)
            .with_producer_epoch(req.producer_epoch + 1);
    }
    match controller(core, ControllerCall::AllocateProducerId).await {
        Some(ControllerReply::ProducerId(Ok(id))) => {
            resp.with_producer_id(ProducerId(id)).with_producer_epoch(0)
        }
        Some(ControllerReply::ProducerId(Err((code, _)))) => resp.with_error_code(code),
        _ => resp.with_error_code(K::CoordinatorNotAvailable.code()),
    }
}

pub fn describe_cluster(core: &Rc<Core>, include_operations: bool) -> DescribeClusterResponse {
    let s = &core.settings;
    let ops = if include_operations {
        super::CLUSTER_OPERATIONS
    } else {
        i32::MIN
    };
    DescribeClusterResponse::default()
        .with_cluster_authorized_operations(ops)
        .with_cluster_id(sb(s.cluster_id.clone()))
        .with_controller_id(BrokerId(s.node_id))
        .with_brokers(vec![DescribeClusterBroker::default()
            .with_broker_id(BrokerId(s.node_id))
            .with_host(sb(s.advertised_host.clone()))
            .with_port(s.advertised_port)])
}
