//! Topic administration (forwarded to the controller core) and cluster description.

use super::sb;
use crate::config::topic::{resolved_source, topic_config_def, DescribedBroker};
use crate::errors::controller_error;
use crate::runtime::core::Core;
use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::create_topics_response::{
    CreatableTopicConfigs, CreatableTopicResult,
};
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::elect_leaders_response::{PartitionResult, ReplicaElectionResult};
use kafka_protocol::messages::*;
use kafka_protocol::ResponseError as K;
use std::rc::Rc;
use weir_replication::controller::{
    ConfigEntry, ControllerError, ControllerReply, ControllerRequest,
    ElectLeadersRequest as ElectRequest, ElectionType, NewPartitions, NewTopic, ReplicaAssignment,
    TopicPartitions, TopicRef,
};

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
                .map(|a| ReplicaAssignment {
                    partition: a.partition_index,
                    brokers: a.broker_ids.into_iter().map(|b| b.0).collect(),
                })
                .collect(),
            configs: t
                .configs
                .into_iter()
                .map(|c| ConfigEntry {
                    key: c.name.to_string(),
                    value: c.value.map(|v| v.to_string()),
                })
                .collect(),
        })
        .collect();
    let request = ControllerRequest::CreateTopics {
        topics,
        validate_only: req.validate_only,
    };
    let results = match core.controller_call(request).await {
        ControllerReply::CreateTopics(r) => r,
        other => unexpected(other, names.len()),
    };
    // Sources as Kafka's controller resolves them: the broker's values are known here as its
    // own DescribeConfigs lists them.
    let broker = DescribedBroker::from_entries(&core.settings().broker_configs);
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
                        .map(|e| {
                            let source = match topic_config_def(&e.name) {
                                Some(d) => resolved_source(d, !e.is_default, &broker) as i8,
                                None if e.is_default => SOURCE_DEFAULT,
                                None => SOURCE_DYNAMIC_TOPIC,
                            };
                            CreatableTopicConfigs::default()
                                .with_name(sb(e.name))
                                .with_value(Some(sb(e.value)))
                                .with_config_source(source)
                        })
                        .collect(),
                )),
            Err(e) => {
                let (code, msg) = controller_error(&e);
                CreatableTopicResult::default()
                    .with_name(name)
                    .with_error_code(code)
                    .with_error_message(Some(sb(msg)))
                    .with_num_partitions(-1)
                    .with_replication_factor(-1)
            }
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
    let request = ControllerRequest::DeleteTopics {
        topics: refs.clone(),
    };
    let results = match core.controller_call(request).await {
        ControllerReply::DeleteTopics(r) => r,
        other => unexpected(other, refs.len()),
    };
    let responses =
        refs.into_iter()
            .zip(results)
            .map(|(r, result)| {
                let base =
                    match &r {
                        TopicRef::Name(n) => DeletableTopicResult::default()
                            .with_name(Some(TopicName(sb(n.clone())))),
                        TopicRef::Id(id) => DeletableTopicResult::default()
                            .with_topic_id(uuid::Uuid::from_bytes(*id)),
                    };
                match result {
                    Ok(d) => base
                        .with_name(Some(TopicName(sb(d.name))))
                        .with_topic_id(uuid::Uuid::from_bytes(d.id)),
                    Err(e) => {
                        let (code, msg) = controller_error(&e);
                        base.with_error_code(code).with_error_message(Some(sb(msg)))
                    }
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
        .map(|t| NewPartitions {
            topic: t.name.0.to_string(),
            count: t.count,
            // An empty list is what a client leaving the field at its default sends
            // (kafka-protocol's default is an empty list, not null): no manual assignment.
            assignments: t.assignments.as_ref().filter(|a| !a.is_empty()).map(|a| {
                a.iter()
                    .map(|a| a.broker_ids.iter().map(|b| b.0).collect())
                    .collect()
            }),
        })
        .collect();
    let request = ControllerRequest::CreatePartitions {
        topics,
        validate_only: req.validate_only,
    };
    let results = match core.controller_call(request).await {
        ControllerReply::CreatePartitions(r) => r,
        other => unexpected(other, names.len()),
    };
    let results = names
        .into_iter()
        .zip(results)
        .map(|(name, r)| match r {
            Ok(()) => CreatePartitionsTopicResult::default().with_name(name),
            Err(e) => {
                let (code, msg) = controller_error(&e);
                CreatePartitionsTopicResult::default()
                    .with_name(name)
                    .with_error_code(code)
                    .with_error_message(Some(sb(msg)))
            }
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
    match core.next_producer_id().await {
        Ok(id) => resp.with_producer_id(ProducerId(id)).with_producer_epoch(0),
        Err(code) => resp.with_error_code(code),
    }
}

/// KIP-919's endpoint types: DescribeCluster on a broker's listener describes brokers, on a
/// controller's CONTROLLER listener the controllers (what `--bootstrap-controller` asks).
const ENDPOINT_BROKERS: i8 = 1;
const ENDPOINT_CONTROLLERS: i8 = 2;

/// DescribeCluster (KIP-700, KIP-919, KIP-1073's fenced brokers in v2), as Kafka's
/// `computeDescribeClusterResponse` answers it.
pub fn describe_cluster(
    core: &Rc<Core>,
    req: &DescribeClusterRequest,
    conn: &weir_net::ConnectionInfo,
) -> DescribeClusterResponse {
    let s = core.settings();
    // The two listeners never share a port.
    let arrived_on = if s.listen.is_some_and(|l| l.port() == conn.local.port()) {
        ENDPOINT_BROKERS
    } else {
        ENDPOINT_CONTROLLERS
    };
    let refuse = |error: K, message: String| {
        DescribeClusterResponse::default()
            .with_error_code(error.code())
            .with_error_message(Some(sb(message)))
    };
    if req.endpoint_type != ENDPOINT_BROKERS && req.endpoint_type != ENDPOINT_CONTROLLERS {
        return refuse(
            K::UnsupportedEndpointType,
            format!("Unsupported endpoint type {}", req.endpoint_type),
        );
    }
    if req.endpoint_type != arrived_on {
        return refuse(
            K::MismatchedEndpointType,
            format!(
                "The request was sent to an endpoint of type {}, but we wanted an endpoint of type {}",
                endpoint_name(arrived_on),
                endpoint_name(req.endpoint_type)
            ),
        );
    }
    let ops = if req.include_cluster_authorized_operations {
        super::CLUSTER_OPERATIONS
    } else {
        i32::MIN
    };
    let (brokers, controller) = if arrived_on == ENDPOINT_CONTROLLERS {
        controllers(core)
    } else {
        (
            brokers(core, req.include_fenced_brokers),
            super::metadata::controller_id(core),
        )
    };
    // Kafka answers -1 rather than a controller id the node list does not hold.
    let controller = if brokers.iter().any(|b| b.broker_id.0 == controller) {
        controller
    } else {
        -1
    };
    DescribeClusterResponse::default()
        .with_endpoint_type(arrived_on)
        .with_cluster_authorized_operations(ops)
        .with_cluster_id(sb(s.cluster_id.clone()))
        .with_controller_id(BrokerId(controller))
        .with_brokers(brokers)
}

fn endpoint_name(t: i8) -> &'static str {
    match t {
        ENDPOINT_BROKERS => "BROKER",
        ENDPOINT_CONTROLLERS => "CONTROLLER",
        _ => "UNKNOWN",
    }
}

/// The registered brokers on this listener, by id: the unfenced ones, and with
/// `include_fenced` the fenced ones too, marked.
fn brokers(core: &Core, include_fenced: bool) -> Vec<DescribeClusterBroker> {
    let image = core.image();
    let listener = core.settings().client_listener_name.as_str();
    let mut out: Vec<DescribeClusterBroker> = image
        .brokers()
        .filter(|b| include_fenced || !b.fenced)
        .filter_map(|b| {
            let e = b
                .endpoints
                .iter()
                .find(|e| e.listener.eq_ignore_ascii_case(listener))?;
            Some(
                DescribeClusterBroker::default()
                    .with_broker_id(BrokerId(b.id))
                    .with_host(sb(e.host.clone()))
                    .with_port(i32::from(e.port))
                    .with_rack(b.rack.clone().map(sb))
                    .with_is_fenced(b.fenced),
            )
        })
        .collect();
    out.sort_by_key(|b| b.broker_id.0);
    out
}

/// The controllers (the quorum's voters at their CONTROLLER listeners) and the active one, as
/// this node knows it.
fn controllers(core: &Core) -> (Vec<DescribeClusterBroker>, i32) {
    let voters = core
        .settings()
        .quorum_contacts
        .voters
        .iter()
        .filter_map(|v| {
            let (host, port) = v.addr.rsplit_once(':')?;
            Some(
                DescribeClusterBroker::default()
                    .with_broker_id(BrokerId(v.id))
                    .with_host(sb(host.to_string()))
                    .with_port(port.parse().ok()?),
            )
        })
        .collect();
    (voters, core.active_controller().unwrap_or(-1))
}

/// Items for a reply of the wrong kind (a bug): every item refused.
fn unexpected<T>(
    reply: ControllerReply,
    n: usize,
) -> Vec<Result<T, weir_replication::controller::ControllerError>> {
    tracing::error!(?reply, "controller answered with the wrong reply");
    (0..n)
        .map(|_| {
            Err(
                weir_replication::controller::ControllerError::UnknownServerError(
                    "unexpected controller reply".into(),
                ),
            )
        })
        .collect()
}

/// ElectLeaders (KIP-460): preferred or unclean elections, decided by the active controller as
/// Kafka's `ReplicationControlManager.electLeaders` does. A null topic list means every
/// partition, and then partitions that needed no election are left out of the answer.
pub async fn elect_leaders(
    core: &Rc<Core>,
    req: ElectLeadersRequest,
    version: i16,
) -> ElectLeadersResponse {
    // Version 0 has no election type: it always asked for the preferred replica.
    let election_type = if version == 0 { 0 } else { req.election_type };
    let requested = req.topic_partitions.as_ref();
    let Some(election_type) = ElectionType::from_kafka(election_type) else {
        let e =
            ControllerError::InvalidRequest(format!("Unknown election type {}", req.election_type));
        return elect_leaders_refused(requested, &e);
    };
    let partitions = requested.map(|topics| {
        topics
            .iter()
            .map(|t| TopicPartitions {
                topic: t.topic.0.to_string(),
                partitions: t.partitions.clone(),
            })
            .collect()
    });
    let request = ControllerRequest::ElectLeaders(ElectRequest {
        election_type,
        partitions,
    });
    let results = match core.controller_call(request).await {
        ControllerReply::ElectLeaders(Ok(r)) => r,
        ControllerReply::ElectLeaders(Err(e)) => return elect_leaders_refused(requested, &e),
        other => {
            tracing::error!(?other, "controller answered with the wrong reply");
            let e = ControllerError::UnknownServerError("unexpected controller reply".into());
            return elect_leaders_refused(requested, &e);
        }
    };
    let results = results
        .into_iter()
        .map(|t| {
            let partitions = t
                .partitions
                .into_iter()
                .map(|p| {
                    let (code, msg) = match &p.result {
                        Ok(()) => (0, None),
                        Err(e) => {
                            let (code, msg) = controller_error(e);
                            (code, Some(sb(msg)))
                        }
                    };
                    PartitionResult::default()
                        .with_partition_id(p.partition)
                        .with_error_code(code)
                        .with_error_message(msg)
                })
                .collect();
            ReplicaElectionResult::default()
                .with_topic(TopicName(sb(t.topic)))
                .with_partition_result(partitions)
        })
        .collect();
    ElectLeadersResponse::default().with_replica_election_results(results)
}

/// The whole request refused (Kafka's `ElectLeadersRequest.getErrorResponse`): the top-level
/// error, and the same error for every partition asked for.
fn elect_leaders_refused(
    requested: Option<&Vec<elect_leaders_request::TopicPartitions>>,
    e: &ControllerError,
) -> ElectLeadersResponse {
    let (code, msg) = controller_error(e);
    let results = requested
        .into_iter()
        .flatten()
        .map(|t| {
            ReplicaElectionResult::default()
                .with_topic(t.topic.clone())
                .with_partition_result(
                    t.partitions
                        .iter()
                        .map(|&p| {
                            PartitionResult::default()
                                .with_partition_id(p)
                                .with_error_code(code)
                                .with_error_message(Some(sb(msg.clone())))
                        })
                        .collect(),
                )
        })
        .collect();
    ElectLeadersResponse::default()
        .with_error_code(code)
        .with_replica_election_results(results)
}
