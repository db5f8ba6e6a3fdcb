//! Seed inputs for the checked-in corpus, built with the encoders Weir and its clients use, so
//! every target starts from well-formed input of every kind it reads (every api key and version
//! the broker serves, every codec, every private message). `examples/seed_corpus.rs` writes them
//! to `fuzz/corpus/<target>/seed-*`.

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{self as m, ApiKey, RequestHeader, RequestKind, TopicName};
use kafka_protocol::protocol::{Encodable, StrBytes};
use weir_storage::batch::{build_batch, ProducerFields, Record};

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

fn topic(v: &str) -> TopicName {
    TopicName(s(v))
}

/// Batches of a few records (keys, nulls, headers), one per codec, idempotent and not.
pub fn batches() -> Vec<Vec<u8>> {
    let records = vec![
        Record {
            key: Some(b"k1".to_vec()),
            value: Some(b"hello".to_vec()),
            headers: vec![("h".into(), Some(b"v".to_vec())), ("n".into(), None)],
            timestamp_delta: 0,
        },
        Record {
            key: None,
            value: Some(vec![7; 40]),
            headers: vec![],
            timestamp_delta: 5,
        },
        Record {
            key: Some(b"k3".to_vec()),
            value: None,
            headers: vec![],
            timestamp_delta: 9,
        },
    ];
    let producer = ProducerFields {
        producer_id: 1000,
        producer_epoch: 0,
        base_sequence: 0,
    };
    let mut out = Vec::new();
    for p in [ProducerFields::NONE, producer] {
        let plain = build_batch(&records, 1_700_000_000_000, p);
        for codec in 1..=4u8 {
            out.push(weir_storage::records::compress_batch(&plain, codec).expect("compresses"));
        }
        out.push(plain);
    }
    // A keyed-only batch, which a compacted topic accepts.
    out.push(build_batch(
        &records[..1],
        1_700_000_000_000,
        ProducerFields::NONE,
    ));
    out
}

/// `records` target inputs: a config byte, then batches.
pub fn records_inputs() -> Vec<Vec<u8>> {
    let batches = batches();
    let mut out = Vec::new();
    for (i, b) in batches.iter().enumerate() {
        // Config bytes spread over codecs, compaction, timestamp types and the fix-up bit.
        for cfg in [0x05u8, i as u8 % 5, 0x88, 0x93, 0xA4, 0x4D] {
            let mut v = vec![cfg];
            v.extend_from_slice(b);
            out.push(v);
        }
    }
    // Record offsets past i64::MAX (the base offset is outside the CRC).
    let mut at_max = batches[0].clone();
    weir_storage::batch::assign(&mut at_max, i64::MAX, 0);
    out.push([vec![0x05u8], at_max].concat());
    let mut two = vec![0x85u8];
    two.extend_from_slice(&batches[0]);
    two.extend_from_slice(&batches[4]);
    out.push(two);
    out
}

fn client_frame(key: ApiKey, version: i16, body: &RequestKind) -> Option<Vec<u8>> {
    let header = RequestHeader::default()
        .with_request_api_key(key as i16)
        .with_request_api_version(version)
        .with_correlation_id(7)
        .with_client_id(Some(s("fuzz-seed")));
    let mut buf = BytesMut::new();
    header
        .encode(&mut buf, key.request_header_version(version))
        .ok()?;
    body.encode(&mut buf, version).ok()?;
    Some(buf.to_vec())
}

/// A populated body for the apis with nested content, the default body for the rest.
fn bodies(key: ApiKey) -> Vec<RequestKind> {
    let records = Bytes::from(batches().concat());
    let mut v = vec![default_body(key)];
    let populated = match key {
        ApiKey::Produce => Some(RequestKind::Produce(
            m::ProduceRequest::default()
                .with_acks(-1)
                .with_timeout_ms(30_000)
                .with_topic_data(vec![m::produce_request::TopicProduceData::default()
                    .with_name(topic("t"))
                    .with_partition_data(vec![
                        m::produce_request::PartitionProduceData::default()
                            .with_index(0)
                            .with_records(Some(records.clone())),
                    ])]),
        )),
        ApiKey::Fetch => Some(RequestKind::Fetch(
            m::FetchRequest::default()
                .with_max_wait_ms(500)
                .with_max_bytes(1 << 20)
                .with_topics(vec![m::fetch_request::FetchTopic::default()
                    .with_topic(topic("t"))
                    .with_partitions(vec![m::fetch_request::FetchPartition::default()
                        .with_partition(0)
                        .with_fetch_offset(10)
                        .with_partition_max_bytes(1 << 20)])]),
        )),
        ApiKey::Metadata => Some(RequestKind::Metadata(
            m::MetadataRequest::default().with_topics(Some(vec![
                m::metadata_request::MetadataRequestTopic::default().with_name(Some(topic("t"))),
            ])),
        )),
        ApiKey::CreateTopics => Some(RequestKind::CreateTopics(
            m::CreateTopicsRequest::default().with_topics(vec![
                m::create_topics_request::CreatableTopic::default()
                    .with_name(topic("t"))
                    .with_num_partitions(-1)
                    .with_replication_factor(-1)
                    .with_assignments(vec![
                        m::create_topics_request::CreatableReplicaAssignment::default()
                            .with_partition_index(0)
                            .with_broker_ids(vec![m::BrokerId(1), m::BrokerId(2)]),
                    ])
                    .with_configs(vec![
                        m::create_topics_request::CreatableTopicConfig::default()
                            .with_name(s("cleanup.policy"))
                            .with_value(Some(s("compact"))),
                    ]),
            ]),
        )),
        ApiKey::OffsetCommit => Some(RequestKind::OffsetCommit(
            m::OffsetCommitRequest::default()
                .with_group_id(m::GroupId(s("g")))
                .with_topics(vec![
                    m::offset_commit_request::OffsetCommitRequestTopic::default()
                        .with_name(topic("t"))
                        .with_partitions(vec![
                            m::offset_commit_request::OffsetCommitRequestPartition::default()
                                .with_committed_offset(5)
                                .with_committed_metadata(Some(s("meta"))),
                        ]),
                ]),
        )),
        ApiKey::JoinGroup => Some(RequestKind::JoinGroup(
            m::JoinGroupRequest::default()
                .with_group_id(m::GroupId(s("g")))
                .with_session_timeout_ms(10_000)
                .with_protocol_type(s("consumer"))
                .with_protocols(vec![
                    m::join_group_request::JoinGroupRequestProtocol::default()
                        .with_name(s("range"))
                        .with_metadata(Bytes::from_static(b"\x00\x01\x00\x00\x00\x01\x00\x01t")),
                ]),
        )),
        ApiKey::SyncGroup => Some(RequestKind::SyncGroup(
            m::SyncGroupRequest::default()
                .with_group_id(m::GroupId(s("g")))
                .with_member_id(s("m"))
                .with_assignments(vec![
                    m::sync_group_request::SyncGroupRequestAssignment::default()
                        .with_member_id(s("m"))
                        .with_assignment(Bytes::from_static(b"\x00\x01")),
                ]),
        )),
        ApiKey::IncrementalAlterConfigs => Some(RequestKind::IncrementalAlterConfigs(
            m::IncrementalAlterConfigsRequest::default().with_resources(vec![
                m::incremental_alter_configs_request::AlterConfigsResource::default()
                    .with_resource_type(2)
                    .with_resource_name(s("t"))
                    .with_configs(vec![
                        m::incremental_alter_configs_request::AlterableConfig::default()
                            .with_name(s("retention.ms"))
                            .with_value(Some(s("1000"))),
                    ]),
            ]),
        )),
        ApiKey::ListOffsets => Some(RequestKind::ListOffsets(
            m::ListOffsetsRequest::default().with_topics(vec![
                m::list_offsets_request::ListOffsetsTopic::default()
                    .with_name(topic("t"))
                    .with_partitions(vec![
                        m::list_offsets_request::ListOffsetsPartition::default().with_timestamp(-1),
                    ]),
            ]),
        )),
        ApiKey::DeleteRecords => Some(RequestKind::DeleteRecords(
            m::DeleteRecordsRequest::default().with_topics(vec![
                m::delete_records_request::DeleteRecordsTopic::default()
                    .with_name(topic("t"))
                    .with_partitions(vec![
                        m::delete_records_request::DeleteRecordsPartition::default().with_offset(3),
                    ]),
            ]),
        )),
        ApiKey::OffsetForLeaderEpoch => Some(RequestKind::OffsetForLeaderEpoch(
            m::OffsetForLeaderEpochRequest::default()
                .with_replica_id(m::BrokerId(2))
                .with_topics(vec![
                    m::offset_for_leader_epoch_request::OffsetForLeaderTopic::default()
                        .with_topic(topic("t"))
                        .with_partitions(vec![
                            m::offset_for_leader_epoch_request::OffsetForLeaderPartition::default()
                                .with_current_leader_epoch(3)
                                .with_leader_epoch(2),
                        ]),
                ]),
        )),
        ApiKey::ElectLeaders => Some(RequestKind::ElectLeaders(
            m::ElectLeadersRequest::default()
                .with_election_type(1)
                .with_topic_partitions(Some(vec![
                    m::elect_leaders_request::TopicPartitions::default()
                        .with_topic(topic("t"))
                        .with_partitions(vec![0, 1]),
                ])),
        )),
        _ => None,
    };
    v.extend(populated);
    v
}

macro_rules! default_bodies {
    ($key:expr, $($variant:ident => $ty:ident),* $(,)?) => {
        match $key {
            $(ApiKey::$variant => RequestKind::$variant(m::$ty::default()),)*
            other => panic!("no seed body for {other:?}"),
        }
    };
}

fn default_body(key: ApiKey) -> RequestKind {
    default_bodies!(key,
        Produce => ProduceRequest,
        Fetch => FetchRequest,
        ListOffsets => ListOffsetsRequest,
        DeleteRecords => DeleteRecordsRequest,
        Metadata => MetadataRequest,
        ApiVersions => ApiVersionsRequest,
        CreateTopics => CreateTopicsRequest,
        DeleteTopics => DeleteTopicsRequest,
        InitProducerId => InitProducerIdRequest,
        DescribeConfigs => DescribeConfigsRequest,
        AlterConfigs => AlterConfigsRequest,
        CreatePartitions => CreatePartitionsRequest,
        IncrementalAlterConfigs => IncrementalAlterConfigsRequest,
        DescribeCluster => DescribeClusterRequest,
        FindCoordinator => FindCoordinatorRequest,
        JoinGroup => JoinGroupRequest,
        SyncGroup => SyncGroupRequest,
        Heartbeat => HeartbeatRequest,
        LeaveGroup => LeaveGroupRequest,
        OffsetCommit => OffsetCommitRequest,
        OffsetFetch => OffsetFetchRequest,
        ListGroups => ListGroupsRequest,
        DescribeGroups => DescribeGroupsRequest,
        DeleteGroups => DeleteGroupsRequest,
        OffsetDelete => OffsetDeleteRequest,
        OffsetForLeaderEpoch => OffsetForLeaderEpochRequest,
        DescribeQuorum => DescribeQuorumRequest,
        ElectLeaders => ElectLeadersRequest,
    )
}

/// `kafka_request` inputs: a frame for every api and version the broker answers, plus private
/// requests.
pub fn kafka_request_inputs() -> Vec<Vec<u8>> {
    let supported = weir::handlers::supported_apis();
    let mut out = Vec::new();
    for key in ApiKey::iter() {
        let Some(range) = supported.range(key) else {
            continue;
        };
        for version in range.min..=range.max {
            for body in bodies(key) {
                if let Some(f) = client_frame(key, version, &body) {
                    out.push(f);
                }
            }
        }
    }
    for (api, body) in private_requests() {
        let header = RequestHeader::default()
            .with_request_api_key(api.key())
            .with_request_api_version(0)
            .with_correlation_id(9)
            .with_client_id(Some(s("weir")));
        let mut buf = BytesMut::new();
        header
            .encode(&mut buf, weir_net::weir_api::WEIR_REQUEST_HEADER_VERSION)
            .expect("header");
        buf.extend_from_slice(&body);
        out.push(buf.to_vec());
    }
    out
}

/// Private request bodies (no header), one or more per api.
pub fn private_requests() -> Vec<(weir_net::WeirApi, Vec<u8>)> {
    use weir_net::WeirApi;
    let mut out = Vec::new();
    for r in crate::seeds::controller_requests() {
        out.push((WeirApi::Controller, r));
    }
    out.push((
        WeirApi::MetadataFetch,
        weir::cluster::observer::FetchRequest {
            replica_id: 4,
            from_index: 12,
            max_bytes: 1 << 20,
            max_wait_ms: 500,
        }
        .encode()
        .to_vec(),
    ));
    for m in raft_messages() {
        out.push((WeirApi::Raft, m));
    }
    out
}

/// Encoded controller requests (`replication::controller::wire`).
pub fn controller_requests() -> Vec<Vec<u8>> {
    crate::seeds_cluster::controller_requests()
}

/// Encoded controller responses.
pub fn controller_responses() -> Vec<Vec<u8>> {
    crate::seeds_cluster::controller_responses()
}

/// Encoded raft messages (`replication::quorum::wire`).
pub fn raft_messages() -> Vec<Vec<u8>> {
    crate::seeds_cluster::raft_messages()
}

/// The follower state prefix of a `follower_fetch` input (see the target's `local_log`): the
/// Fetch version's index in the fetcher's range, the local log end, the follower's leader epoch,
/// and local epochs as (epoch step - 1, start step) from epoch -1 at offset 0.
fn follower_state(version_index: u8, end: u16, leader_epoch: u8, epochs: &[(u8, u8)]) -> Vec<u8> {
    let mut packed = epochs.len() as u64;
    for (i, (de, ds)) in epochs.iter().enumerate() {
        packed |= (u64::from(de & 0x7) | (u64::from(ds & 0x1f) << 3)) << (3 + 8 * i);
    }
    let mut v = vec![version_index];
    v.extend_from_slice(&end.to_be_bytes());
    v.push(leader_epoch);
    v.extend_from_slice(&packed.to_be_bytes()[3..]);
    v
}

/// `follower_fetch` inputs: follower state, then a response frame body (header + body) as the
/// replica fetcher reads it, at every version the fetcher asks for.
pub fn follower_fetch_inputs() -> Vec<Vec<u8>> {
    let batches = batches();
    let chained_from = |mut next: i64, epoch: i32| {
        let mut chained = Vec::new();
        for b in &batches {
            let mut b = b.clone();
            weir_storage::batch::assign(&mut b, next, epoch);
            next += 3;
            chained.extend_from_slice(&b);
        }
        (Bytes::from(chained), next)
    };
    // An empty follower at epoch 2, and one with epochs 0 (from 0) and 2 (from 9) ending at 18.
    type State = (u16, u8, &'static [(u8, u8)]);
    let states: [State; 2] = [(0, 2, &[]), (18, 3, &[(0, 0), (1, 9)])];
    let (lo, hi) = weir::replicate::fetcher::FETCH_VERSIONS;
    let mut out = Vec::new();
    for version in lo..=hi {
        for (end, leader_epoch, epochs) in states {
            let (chained, next) = chained_from(i64::from(end), i32::from(leader_epoch));
            // A batch at the largest offsets: its last offset passes i64::MAX.
            let mut at_max = batches[4].clone();
            weir_storage::batch::assign(&mut at_max, i64::MAX - 1, i32::from(leader_epoch));
            let record_sets = [
                chained,
                Bytes::from(batches[4].clone()),
                Bytes::new(),
                Bytes::from(at_max),
            ];
            for records in &record_sets {
                let partition = m::fetch_response::PartitionData::default()
                    .with_partition_index(0)
                    .with_high_watermark(next)
                    .with_last_stable_offset(next)
                    .with_log_start_offset(0)
                    .with_records(Some(records.clone()));
                let diverging = partition
                    .clone()
                    .with_partition_index(1)
                    .with_records(None)
                    .with_diverging_epoch(
                        m::fetch_response::EpochEndOffset::default()
                            .with_epoch(2)
                            .with_end_offset(4),
                    );
                // OFFSET_OUT_OF_RANGE, FENCED_LEADER_EPOCH, UNKNOWN_LEADER_EPOCH,
                // NOT_LEADER_OR_FOLLOWER.
                let errors = [1i16, 74, 75, 6].map(|code| {
                    partition
                        .clone()
                        .with_partition_index(2 + i32::from(code))
                        .with_error_code(code)
                        .with_records(None)
                        .with_log_start_offset(30)
                });
                let mut partitions = vec![partition, diverging];
                partitions.extend(errors);
                let topic = m::fetch_response::FetchableTopicResponse::default()
                    .with_topic(topic("t"))
                    .with_topic_id(uuid::Uuid::from_u128(42))
                    .with_partitions(partitions);
                let body = m::FetchResponse::default().with_responses(vec![topic]);
                let mut buf = BytesMut::new();
                m::ResponseHeader::default()
                    .with_correlation_id(1)
                    .encode(&mut buf, ApiKey::Fetch.response_header_version(version))
                    .expect("header");
                body.encode(&mut buf, version)
                    .expect("a fetch response encodes");
                let mut input = follower_state((version - lo) as u8, end, leader_epoch, epochs);
                input.extend_from_slice(&buf);
                out.push(input);
            }
        }
    }
    out
}
