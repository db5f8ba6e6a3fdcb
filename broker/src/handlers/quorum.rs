//! DescribeQuorum (KIP-595, KIP-836, KIP-853): the controller quorum as
//! `kafka-metadata-quorum.sh describe --status` / `--replication` shows it — leader, epoch, high
//! watermark, each voter's log end and last fetch and caught-up times, the observers (broker-only
//! nodes fetching metadata), and in v2 the voters' CONTROLLER endpoints.
//!
//! Only the quorum's leader knows the followers' positions, so any other node (or any core but
//! the one running the cluster side) forwards the request to the leader's CONTROLLER listener:
//! the leader it knows of first, then every voter in turn. A forwarded request carries
//! [`FORWARDED_CLIENT_ID`] and is never forwarded again: a node that is not the leader answers
//! it with Kafka's NOT_LEADER_OR_FOLLOWER, as a KRaft controller that does not lead answers
//! every DescribeQuorum, and the forwarding node tries the next voter. Clients retry that code.

use super::sb;
use crate::cluster::describe::{DescribeError, QuorumDescription, ReplicaDescription};
use crate::cluster::Voter;
use crate::runtime::core::Core;
use crate::runtime::messages::{ShardRequest, ShardResponse};
use crate::shard::CONTROLLER_SHARD;
use kafka_protocol::messages::describe_quorum_response::{
    Listener, Node, PartitionData, ReplicaState, TopicData,
};
use kafka_protocol::messages::{
    ApiKey, BrokerId, DescribeQuorumRequest, DescribeQuorumResponse, TopicName,
};
use kafka_protocol::ResponseError as K;
use std::rc::Rc;
use weir_net::client::{ClientConfig, Connection};
use weir_replication::types::NodeId;

/// KRaft's metadata partition, the only one DescribeQuorum describes.
pub const METADATA_TOPIC: &str = "__cluster_metadata";
const METADATA_PARTITION: i32 = 0;

/// The client id of a request one node forwards to another: answered where it arrives.
pub const FORWARDED_CLIENT_ID: &str = "weir-describe-quorum-forward";

pub async fn describe_quorum(
    core: &Rc<Core>,
    req: DescribeQuorumRequest,
    version: i16,
    client_id: &str,
) -> DescribeQuorumResponse {
    if !asks_for_metadata_partition(&req) {
        // Kafka's getPartitionLevelErrorResponse: each partition asked for, refused.
        return partition_errors(&req, K::UnknownTopicOrPartition);
    }
    // This node's cluster side (core 0) answers first, asked across cores from any other:
    // a node that leads the quorum never sends the request over the network to itself (a
    // single node's only voter address is its client listener, whose connections land on any
    // core).
    let local = match core.cluster() {
        Some(cluster) => Some(cluster.describe_quorum(crate::clock::now_ms())),
        None => match core
            .call(CONTROLLER_SHARD, ShardRequest::DescribeQuorum)
            .await
        {
            Some(ShardResponse::Quorum(r)) => Some(r),
            _ => None,
        },
    };
    let mut leader = None;
    match local {
        Some(Ok(d)) => return response(&d, version),
        Some(Err(DescribeError::NotLeader { leader: known })) => leader = known,
        None => {}
    }
    if client_id == FORWARDED_CLIENT_ID {
        return not_leader("this node is not the leader of the controller quorum");
    }
    let contacts = &core.settings().quorum_contacts;
    // This node's cluster side just said it does not lead: asking its own listener would only
    // repeat that.
    let myself = local.is_some().then_some(core.settings().node_id);
    for voter in targets(&contacts.voters, leader, myself) {
        match forward(voter, &req, version, contacts.request_timeout).await {
            Ok(r) if answered(&r) => return r,
            Ok(_) => tracing::debug!(
                voter = voter.id,
                "DescribeQuorum forwarded to a voter that does not lead"
            ),
            Err(e) => tracing::debug!(voter = voter.id, error = %e, "DescribeQuorum not forwarded"),
        }
    }
    not_leader("no leader of the controller quorum could be reached")
}

/// The voters to ask, the known leader first; never this node.
fn targets(voters: &[Voter], leader: Option<NodeId>, myself: Option<NodeId>) -> Vec<&Voter> {
    let mut out: Vec<&Voter> = voters
        .iter()
        .filter(|v| Some(v.id) == leader)
        .chain(voters.iter().filter(|v| Some(v.id) != leader))
        .filter(|v| Some(v.id) != myself && !v.addr.is_empty())
        .collect();
    out.dedup_by_key(|v| v.id);
    out
}

/// Kafka's hasValidTopicPartition: exactly the metadata partition.
fn asks_for_metadata_partition(req: &DescribeQuorumRequest) -> bool {
    matches!(req.topics.as_slice(), [t] if t.topic_name.0.as_str() == METADATA_TOPIC
        && matches!(t.partitions.as_slice(), [p] if p.partition_index == METADATA_PARTITION))
}

/// A leader's answer, as opposed to a refusal.
fn answered(r: &DescribeQuorumResponse) -> bool {
    r.error_code == 0
        && r.topics
            .iter()
            .flat_map(|t| &t.partitions)
            .all(|p| p.error_code == 0)
        && !r.topics.is_empty()
}

async fn forward(
    voter: &Voter,
    req: &DescribeQuorumRequest,
    version: i16,
    timeout: std::time::Duration,
) -> Result<DescribeQuorumResponse, String> {
    let config = ClientConfig {
        connect_timeout: timeout,
        request_timeout: timeout,
        ..ClientConfig::new(FORWARDED_CLIENT_ID)
    };
    let conn = Connection::connect(&voter.addr, &config)
        .await
        .map_err(|e| e.to_string())?;
    // Another Weir speaks the same versions; one that does not is not asked.
    conn.version(ApiKey::DescribeQuorum, version, version)
        .map_err(|e| e.to_string())?;
    conn.call_at(req.clone(), version)
        .await
        .map_err(|e| e.to_string())
}

fn response(d: &QuorumDescription, version: i16) -> DescribeQuorumResponse {
    let replicas = |list: &[ReplicaDescription]| -> Vec<ReplicaState> {
        list.iter()
            .map(|r| {
                ReplicaState::default()
                    .with_replica_id(BrokerId(r.node_id))
                    .with_log_end_offset(r.log_end_offset)
                    .with_last_fetch_timestamp(r.last_fetch_ms)
                    .with_last_caught_up_timestamp(r.last_caught_up_ms)
            })
            .collect()
    };
    // Kafka leaves both error messages null on success (the codec's default is "").
    let partition = PartitionData::default()
        .with_partition_index(METADATA_PARTITION)
        .with_error_message(None)
        .with_leader_id(BrokerId(d.leader_id))
        .with_leader_epoch(d.leader_epoch)
        .with_high_watermark(d.high_watermark)
        .with_current_voters(replicas(&d.voters))
        .with_observers(replicas(&d.observers));
    let mut r = DescribeQuorumResponse::default()
        .with_error_message(None)
        .with_topics(vec![TopicData::default()
            .with_topic_name(TopicName(sb(METADATA_TOPIC)))
            .with_partitions(vec![partition])]);
    if version >= 2 {
        r = r.with_nodes(
            d.endpoints
                .iter()
                .map(|e| {
                    Node::default()
                        .with_node_id(BrokerId(e.node_id))
                        .with_listeners(vec![Listener::default()
                            .with_name(sb(e.listener.as_str()))
                            .with_host(sb(e.host.as_str()))
                            .with_port(e.port)])
                })
                .collect(),
        );
    }
    r
}

/// Kafka's singletonErrorResponse for the metadata partition.
fn not_leader(message: &str) -> DescribeQuorumResponse {
    DescribeQuorumResponse::default()
        .with_error_message(None)
        .with_topics(vec![TopicData::default()
            .with_topic_name(TopicName(sb(METADATA_TOPIC)))
            .with_partitions(vec![PartitionData::default()
                .with_partition_index(METADATA_PARTITION)
                .with_error_code(K::NotLeaderOrFollower.code())
                .with_error_message(Some(sb(message)))
                .with_leader_id(BrokerId(-1))
                .with_leader_epoch(-1)
                .with_high_watermark(-1)])])
}

fn partition_errors(req: &DescribeQuorumRequest, error: K) -> DescribeQuorumResponse {
    DescribeQuorumResponse::default()
        .with_error_message(None)
        .with_topics(
            req.topics
                .iter()
                .map(|t| {
                    TopicData::default()
                        .with_topic_name(t.topic_name.clone())
                        .with_partitions(
                            t.partitions
                                .iter()
                                .map(|p| {
                                    PartitionData::default()
                                        .with_partition_index(p.partition_index)
                                        .with_error_code(error.code())
                                        .with_error_message(Some(sb(
                                            "DescribeQuorum describes only __cluster_metadata-0",
                                        )))
                                })
                                .collect(),
                        )
                })
                .collect(),
        )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::describe::VoterEndpoint;
    use kafka_protocol::messages::describe_quorum_request;
    use kafka_protocol::protocol::{Decodable, Encodable};

    fn voters() -> Vec<Voter> {
        (1..=3)
            .map(|id| Voter {
                id,
                addr: format!("127.0.0.1:{}", 9091 + 2 * id),
            })
            .collect()
    }

    fn request(topic: &str, partitions: &[i32]) -> DescribeQuorumRequest {
        DescribeQuorumRequest::default().with_topics(vec![
            describe_quorum_request::TopicData::default()
                .with_topic_name(TopicName(sb(topic)))
                .with_partitions(
                    partitions
                        .iter()
                        .map(|p| {
                            describe_quorum_request::PartitionData::default()
                                .with_partition_index(*p)
                        })
                        .collect(),
                ),
        ])
    }

    #[test]
    fn the_known_leader_is_asked_first_and_this_node_never() {
        let v = voters();
        let ids = |t: Vec<&Voter>| t.iter().map(|v| v.id).collect::<Vec<_>>();
        assert_eq!(ids(targets(&v, Some(3), Some(1))), vec![3, 2]);
        assert_eq!(ids(targets(&v, None, Some(2))), vec![1, 3]);
        assert_eq!(ids(targets(&v, None, None)), vec![1, 2, 3]);
        assert_eq!(ids(targets(&v, Some(7), None)), vec![1, 2, 3]);
    }

    #[test]
    fn only_the_metadata_partition_is_described() {
        assert!(asks_for_metadata_partition(&request(METADATA_TOPIC, &[0])));
        for bad in [
            request(METADATA_TOPIC, &[1]),
            request(METADATA_TOPIC, &[0, 0]),
            request(METADATA_TOPIC, &[]),
            request("other", &[0]),
            DescribeQuorumRequest::default(),
        ] {
            assert!(!asks_for_metadata_partition(&bad), "{bad:?}");
            let r = partition_errors(&bad, K::UnknownTopicOrPartition);
            assert_eq!(r.topics.len(), bad.topics.len());
            assert!(r
                .topics
                .iter()
                .flat_map(|t| &t.partitions)
                .all(|p| p.error_code == K::UnknownTopicOrPartition.code()));
        }
    }

    fn description() -> QuorumDescription {
        let replica = |id, leo| ReplicaDescription {
            node_id: id,
            log_end_offset: leo,
            last_fetch_ms: 1_000,
            last_caught_up_ms: 900,
        };
        QuorumDescription {
            leader_id: 2,
            leader_epoch: 5,
            high_watermark: 40,
            voters: vec![replica(1, 40), replica(2, 41), replica(3, -1)],
            observers: vec![replica(4, 39)],
            endpoints: vec![VoterEndpoint {
                node_id: 1,
                listener: "CONTROLLER".into(),
                host: "127.0.0.1".into(),
                port: 9093,
            }],
        }
    }

    #[test]
    fn every_version_encodes_and_says_what_it_can() {
        for version in 0..=2 {
            let r = response(&description(), version);
            assert!(answered(&r));
            let mut buf = bytes::BytesMut::new();
            r.encode(&mut buf, version).unwrap();
            let back = DescribeQuorumResponse::decode(&mut buf.freeze(), version).unwrap();
            let p = &back.topics[0].partitions[0];
            assert_eq!(back.topics[0].topic_name.0.as_str(), METADATA_TOPIC);
            assert_eq!(
                (p.leader_id.0, p.leader_epoch, p.high_watermark),
                (2, 5, 40)
            );
            assert_eq!(p.current_voters.len(), 3);
            assert_eq!(p.observers[0].replica_id.0, 4);
            let fetch = p.current_voters[0].last_fetch_timestamp;
            assert_eq!(fetch, if version >= 1 { 1_000 } else { -1 });
            assert_eq!(back.nodes.len(), usize::from(version >= 2));
        }
        let refused = not_leader("no");
        assert!(!answered(&refused));
        assert_eq!(
            refused.topics[0].partitions[0].error_code,
            K::NotLeaderOrFollower.code()
        );
    }
}
