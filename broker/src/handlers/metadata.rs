//! Metadata: brokers, the controller, and topics with their partitions, from this core's image.
//! Unknown topics are created on request when `auto.create.topics.enable` allows it.

use super::sb;
use crate::runtime::core::Core;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse, TopicName};
use kafka_protocol::ResponseError as K;
use std::rc::Rc;
use weir_replication::controller::{
    validate_topic_name, ControllerError, ControllerReply, ControllerRequest, NewTopic,
};
use weir_replication::metadata::{MetadataImage, TopicMeta};
use weir_replication::types::NodeId;

/// A broker as clients reach it: its endpoint on the listener clients use (the one named like
/// this broker's client listener).
#[derive(Debug, Clone)]
pub struct LiveBroker {
    pub id: NodeId,
    pub host: String,
    pub port: i32,
    pub rack: Option<String>,
}

/// The registered, unfenced brokers with an endpoint on the client listener, by id (Kafka lists
/// only brokers that are alive: fenced ones are left out).
pub fn live_brokers(core: &Core) -> Vec<LiveBroker> {
    let image = core.image();
    let listener = core.settings().client_listener_name.as_str();
    let mut out: Vec<LiveBroker> = image
        .brokers()
        .filter(|b| !b.fenced)
        .filter_map(|b| {
            let e = b
                .endpoints
                .iter()
                .find(|e| e.listener.eq_ignore_ascii_case(listener))?;
            Some(LiveBroker {
                id: b.id,
                host: e.host.clone(),
                port: i32::from(e.port),
                rack: b.rack.clone(),
            })
        })
        .collect();
    out.sort_by_key(|b| b.id);
    out
}

/// The live brokers among `ids`, as clients reach them: the endpoints KIP-951 sends with a
/// NOT_LEADER_OR_FOLLOWER so a client can go to the new leader without a metadata round trip.
pub fn live_brokers_among(core: &Core, ids: &std::collections::BTreeSet<i32>) -> Vec<LiveBroker> {
    // Every produce and fetch asks; almost all name no leader. Walking the image (and
    // allocating the list) only when one is named keeps that work off the data path.
    if ids.is_empty() {
        return Vec::new();
    }
    let mut live = live_brokers(core);
    live.retain(|b| ids.contains(&b.id));
    live
}

/// The controller id clients are told. In KRaft clients cannot reach the controllers, and
/// Kafka's brokers answer with a random live broker (every broker forwards administration to
/// the active controller). Weir answers with itself: the client can evidently reach it, while
/// any other broker — even the active controller's — may have just died, and a client that
/// caches a dead "controller" waits for its next metadata refresh (librdkafka: minutes).
pub fn controller_id(core: &Core) -> NodeId {
    let live = live_brokers(core);
    let me = core.settings().node_id;
    if live.iter().any(|b| b.id == me) {
        me
    } else {
        live.first().map_or(-1, |b| b.id)
    }
}

pub async fn handle(core: &Rc<Core>, req: MetadataRequest, version: i16) -> MetadataResponse {
    let s = &core.settings();
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
    let with_unclean = version >= 9
        && req
            .unknown_tagged_fields
            .contains_key(&UNCLEAN_ELECTION_TAG);
    let mut topics = Vec::new();
    match requested {
        None => {
            let image = core.image();
            topics.extend(image.topics().map(|t| topic_entry(t, &image)));
        }
        Some(list) => {
            for (name, id) in list {
                // A topic asked for by id (v10+) has a null or an empty name: the Java client
                // sends "", its schema's default, and Kafka goes by the id whenever one is set.
                let name = if id.is_nil() { name } else { None };
                let found = {
                    let image = core.image();
                    match &name {
                        Some(n) => image.topic(n).cloned(),
                        None => image.topic_by_id(id.as_bytes()).cloned(),
                    }
                };
                let entry = match (found, name) {
                    (Some(t), _) => topic_entry(&t, &core.image()),
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
    let brokers = live_brokers(core)
        .into_iter()
        .map(|b| {
            MetadataResponseBroker::default()
                .with_node_id(BrokerId(b.id))
                .with_host(sb(b.host))
                .with_port(b.port)
                .with_rack(b.rack.map(sb))
        })
        .collect();
    if with_unclean {
        let image = core.image();
        for t in &mut topics {
            add_unclean_elections(t, &image);
        }
    }
    MetadataResponse::default()
        .with_brokers(brokers)
        .with_cluster_id(Some(sb(s.cluster_id.clone())))
        .with_controller_id(BrokerId(controller_id(core)))
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

/// A topic as Metadata shows it: per partition the leader (LEADER_NOT_AVAILABLE while there is
/// none), its epoch, replicas, ISR, and the replicas on brokers that are not alive.
fn topic_entry(t: &TopicMeta, image: &MetadataImage) -> MetadataResponseTopic {
    let alive = |id: &NodeId| image.broker(*id).is_some_and(|b| !b.fenced);
    let partitions = t
        .partitions
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let error = if p.leader < 0 {
                K::LeaderNotAvailable.code()
            } else {
                0
            };
            MetadataResponsePartition::default()
                .with_error_code(error)
                .with_partition_index(i as i32)
                .with_leader_id(BrokerId(p.leader))
                .with_leader_epoch(p.leader_epoch)
                .with_replica_nodes(p.replicas.iter().map(|b| BrokerId(*b)).collect())
                .with_isr_nodes(p.isr.iter().map(|b| BrokerId(*b)).collect())
                .with_offline_replicas(
                    p.replicas
                        .iter()
                        .filter(|r| !alive(r))
                        .map(|b| BrokerId(*b))
                        .collect(),
                )
        })
        .collect();
    MetadataResponseTopic::default()
        .with_name(Some(TopicName(sb(t.name.clone()))))
        .with_topic_id(uuid::Uuid::from_bytes(t.id))
        .with_is_internal(t.name.starts_with("__"))
        .with_partitions(partitions)
}

/// Weir's tagged field (KIP-482 lets a flexible version carry tags a peer does not know; Kafka
/// numbers its own from 0 up, so this one stays clear of them). A Metadata request (v9+) that
/// carries it asks for each partition's last unclean election and what replicas reported it
/// discarded (`replicate::unclean`), as the same tag on each partition that had one; `weir-admin
/// topic unclean` asks. Kafka's clients never send it, so their answers are Kafka's.
pub const UNCLEAN_ELECTION_TAG: i32 = 0x5745;

/// A partition's unclean election as text lines, `key=value` fields:
/// `election leader= epoch= time_ms= replaced_isr= replaced_elr= leader_log_end=` (`-` until
/// the leader reported it), then one `discarded broker= from= to= high_watermark= time_ms=
/// epochs=<epoch>@<start>,...` per replica that truncated.
pub fn unclean_election_text(u: &weir_replication::metadata::UncleanElection) -> String {
    let ids = |v: &[NodeId]| {
        v.iter()
            .map(|b| b.to_string())
            .collect::<Vec<_>>()
            .join(",")
    };
    let mut out = format!(
        "election leader={} epoch={} time_ms={} replaced_isr={} replaced_elr={} leader_log_end={}\n",
        u.leader,
        u.leader_epoch,
        u.time_ms,
        ids(&u.replaced_isr),
        ids(&u.replaced_elr),
        u.leader_log_end.map_or("-".to_string(), |e| e.to_string()),
    );
    for (b, d) in &u.discarded {
        let epochs: Vec<String> = d.epochs.iter().map(|(e, s)| format!("{e}@{s}")).collect();
        out.push_str(&format!(
            "discarded broker={b} from={} to={} high_watermark={} time_ms={} epochs={}\n",
            d.from_offset,
            d.to_offset,
            d.high_watermark,
            d.time_ms,
            epochs.join(",")
        ));
    }
    out
}

fn add_unclean_elections(t: &mut MetadataResponseTopic, image: &MetadataImage) {
    let Some(meta) = t.name.as_ref().and_then(|n| image.topic(n.0.as_str())) else {
        return;
    };
    for p in &mut t.partitions {
        let u = usize::try_from(p.partition_index)
            .ok()
            .and_then(|i| meta.partitions.get(i))
            .and_then(|m| m.last_unclean_election.as_ref());
        if let Some(u) = u {
            p.unknown_tagged_fields.insert(
                UNCLEAN_ELECTION_TAG,
                bytes::Bytes::from(unclean_election_text(u)),
            );
        }
    }
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
    let request = ControllerRequest::CreateTopics {
        topics: vec![topic],
        validate_only: false,
    };
    let error = match core.controller_call(request).await {
        ControllerReply::CreateTopics(mut r) => match r.pop() {
            Some(Ok(_)) => None,
            // Another request created it meanwhile: fine.
            Some(Err(ControllerError::TopicAlreadyExists(_))) => None,
            // No controller: the client retries, as after Kafka's LEADER_NOT_AVAILABLE.
            Some(Err(ControllerError::NotController(_))) => Some(K::LeaderNotAvailable.code()),
            Some(Err(e)) => {
                tracing::warn!(topic = name, error = %e, "auto-create failed");
                Some(e.kafka_code())
            }
            None => Some(K::UnknownServerError.code()),
        },
        _ => Some(K::LeaderNotAvailable.code()),
    };
    let found = core.image().topic(name).cloned();
    match (error, found) {
        (None, Some(t)) => topic_entry(&t, &core.image()),
        (code, _) => MetadataResponseTopic::default()
            .with_error_code(code.unwrap_or(K::LeaderNotAvailable.code()))
            .with_name(Some(TopicName(sb(name.to_string())))),
    }
}
