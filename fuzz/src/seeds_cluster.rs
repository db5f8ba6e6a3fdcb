//! Seeds for the cluster-side decoders: the project's own sample values (the same ones its
//! round-trip tests use), encoded with the project's encoders.

use weir_replication::controller::error::ControllerError;
use weir_replication::controller::wire::{encode_request, encode_response, ControllerResponse};
use weir_replication::controller::*;
use weir_replication::metadata::records::*;
use weir_replication::metadata::MetadataRecord;

pub fn controller_requests() -> Vec<Vec<u8>> {
    requests().iter().map(encode_request).collect()
}

pub fn controller_responses() -> Vec<Vec<u8>> {
    responses().iter().map(encode_response).collect()
}

fn requests() -> Vec<ControllerRequest> {
    vec![
        ControllerRequest::CreateTopics {
            topics: vec![NewTopic {
                name: "orders".into(),
                num_partitions: -1,
                replication_factor: -1,
                assignments: vec![ReplicaAssignment {
                    partition: 0,
                    brokers: vec![1, 2],
                }],
                configs: vec![ConfigEntry {
                    key: "retention.ms".into(),
                    value: None,
                }],
            }],
            validate_only: true,
        },
        ControllerRequest::DeleteTopics {
            topics: vec![TopicRef::Name("a".into()), TopicRef::Id([3; 16])],
        },
        ControllerRequest::CreatePartitions {
            topics: vec![NewPartitions {
                topic: "a".into(),
                count: 4,
                assignments: Some(vec![vec![1], vec![2]]),
            }],
            validate_only: false,
        },
        ControllerRequest::AlterConfigs {
            resources: vec![AlterConfigsResource {
                resource: ConfigResource::Broker("".into()),
                changes: vec![ConfigChange {
                    key: "min.insync.replicas".into(),
                    op: ConfigOp::Subtract,
                    value: Some("2".into()),
                }],
            }],
            replace_all: false,
            validate_only: false,
        },
        ControllerRequest::AllocateProducerIds {
            broker_id: 1,
            broker_epoch: 7,
        },
        ControllerRequest::RegisterBroker(BrokerRegistration {
            broker_id: 2,
            cluster_id: "c".into(),
            incarnation_id: [8; 16],
            listeners: vec![Endpoint {
                listener: "PLAINTEXT".into(),
                host: "h".into(),
                port: 9092,
                security_protocol: 0,
            }],
            rack: Some("r".into()),
            previous_broker_epoch: -1,
        }),
        ControllerRequest::BrokerHeartbeat(BrokerHeartbeat {
            broker_id: 2,
            broker_epoch: 3,
            current_metadata_offset: 99,
            want_fence: false,
            want_shutdown: true,
        }),
        ControllerRequest::AlterPartition(AlterPartitionRequest {
            broker_id: 1,
            broker_epoch: 2,
            topics: vec![AlterPartitionTopic {
                topic_id: [1; 16],
                partitions: vec![AlterPartitionItem {
                    partition: 0,
                    leader_epoch: 3,
                    partition_epoch: 4,
                    new_isr: vec![IsrMember {
                        broker_id: 1,
                        broker_epoch: -1,
                    }],
                }],
            }],
        }),
        ControllerRequest::ElectLeaders(ElectLeadersRequest {
            election_type: ElectionType::Unclean,
            partitions: Some(vec![TopicPartitions {
                topic: "a".into(),
                partitions: vec![0, 1],
            }]),
        }),
        ControllerRequest::ElectLeaders(ElectLeadersRequest {
            election_type: ElectionType::Preferred,
            partitions: None,
        }),
        ControllerRequest::UnregisterBroker { broker_id: 4 },
    ]
}

fn responses() -> Vec<ControllerResponse> {
    let replies = vec![
        ControllerReply::CreateTopics(vec![
            Ok(CreatedTopic {
                id: [1; 16],
                num_partitions: 3,
                replication_factor: 2,
                configs: vec![EffectiveConfig {
                    name: "retention.ms".into(),
                    value: "1".into(),
                    is_default: false,
                }],
            }),
            Err(ControllerError::TopicAlreadyExists("x".into())),
        ]),
        ControllerReply::DeleteTopics(vec![Ok(DeletedTopic {
            name: "a".into(),
            id: [2; 16],
        })]),
        ControllerReply::CreatePartitions(vec![
            Ok(()),
            Err(ControllerError::InvalidPartitions("n".into())),
        ]),
        ControllerReply::AlterConfigs(vec![Ok(())]),
        ControllerReply::AllocateProducerIds(Ok(ProducerIdBlock {
            start: 1000,
            len: 1000,
        })),
        ControllerReply::RegisterBroker(Ok(5)),
        ControllerReply::BrokerHeartbeat(Ok(HeartbeatReply {
            is_caught_up: true,
            is_fenced: false,
            in_controlled_shutdown: false,
            should_shutdown: false,
        })),
        ControllerReply::AlterPartition(Ok(vec![AlterPartitionTopicResult {
            topic_id: [1; 16],
            partitions: vec![AlterPartitionResult {
                partition: 0,
                result: Ok(PartitionState {
                    leader: 1,
                    leader_epoch: 2,
                    partition_epoch: 3,
                    isr: vec![1, 2],
                }),
            }],
        }])),
        ControllerReply::ElectLeaders(Ok(vec![ElectionTopicResult {
            topic: "a".into(),
            partitions: vec![ElectionResultItem {
                partition: 0,
                result: Err(ControllerError::ElectionNotNeeded("n".into())),
            }],
        }])),
        ControllerReply::UnregisterBroker(Err(ControllerError::BrokerIdNotRegistered("b".into()))),
    ];
    let mut out: Vec<_> = replies
        .into_iter()
        .enumerate()
        .map(|(i, reply)| ControllerResponse::Done {
            metadata_offset: i as i64,
            reply,
        })
        .collect();
    out.push(ControllerResponse::NotController { leader: 2 });
    out.push(ControllerResponse::NotController { leader: -1 });
    out
}

fn samples() -> Vec<MetadataRecord> {
    let id = [7u8; 16];
    vec![
        MetadataRecord::Topic(TopicRecord {
            name: "orders".into(),
            id,
        }),
        MetadataRecord::Partition(PartitionRecord {
            topic_id: id,
            partition: 3,
            replicas: vec![1, 2, 3],
            isr: vec![1, 2],
            elr: vec![3],
            last_known_elr: vec![],
            leader: 1,
            leader_epoch: 4,
            partition_epoch: 9,
        }),
        MetadataRecord::PartitionChange(PartitionChangeRecord {
            topic_id: id,
            partition: 0,
            leader: Some(-1),
            isr: Some(vec![2]),
            elr: None,
            last_known_elr: Some(vec![]),
            replicas: None,
        }),
        MetadataRecord::PartitionChange(PartitionChangeRecord {
            topic_id: id,
            ..Default::default()
        }),
        MetadataRecord::TopicConfig(TopicConfigRecord {
            topic_id: id,
            key: "retention.ms".into(),
            value: Some("1000".into()),
        }),
        MetadataRecord::TopicConfig(TopicConfigRecord {
            topic_id: id,
            key: "retention.ms".into(),
            value: None,
        }),
        MetadataRecord::BrokerConfig(BrokerConfigRecord {
            broker: None,
            key: "unclean.leader.election.enable".into(),
            value: Some("true".into()),
        }),
        MetadataRecord::BrokerConfig(BrokerConfigRecord {
            broker: Some(2),
            key: "min.insync.replicas".into(),
            value: None,
        }),
        MetadataRecord::RemoveTopic(RemoveTopicRecord { id }),
        MetadataRecord::ProducerIds(ProducerIdsRecord {
            broker_id: 2,
            broker_epoch: 5,
            next_block_start: 5000,
        }),
        MetadataRecord::RegisterBroker(RegisterBrokerRecord {
            broker_id: 2,
            incarnation_id: [9; 16],
            broker_epoch: 12,
            endpoints: vec![
                Endpoint {
                    listener: "PLAINTEXT".into(),
                    host: "10.0.0.2".into(),
                    port: 9092,
                    security_protocol: 0,
                },
                Endpoint {
                    listener: "CONTROLLER".into(),
                    host: "10.0.0.2".into(),
                    port: 9093,
                    security_protocol: 0,
                },
            ],
            rack: Some("r1".into()),
            fenced: true,
            in_controlled_shutdown: false,
        }),
        MetadataRecord::UnregisterBroker(UnregisterBrokerRecord {
            broker_id: 2,
            broker_epoch: 12,
        }),
        MetadataRecord::BrokerChange(BrokerChangeRecord {
            broker_id: 2,
            broker_epoch: 12,
            fenced: Some(false),
            in_controlled_shutdown: None,
        }),
        MetadataRecord::UncleanElection(UncleanElectionRecord {
            topic_id: id,
            partition: 1,
            leader: 3,
            leader_epoch: 7,
            replaced_isr: vec![1],
            replaced_elr: vec![2],
            time_ms: 1_700_000_000_000,
        }),
    ]
}

/// Raft messages of each type Weir's voters exchange, some carrying entries.
pub fn raft_messages() -> Vec<Vec<u8>> {
    use weir_replication::quorum::{wire, Entry, EntryType, Message, MessageType};
    let entry = |index: u64, term: u64| {
        let mut e = Entry::default();
        e.set_entry_type(EntryType::EntryNormal);
        e.index = index;
        e.term = term;
        e.data = encode_batch(&samples()[..2]).into();
        e
    };
    let peer = |node: u64| node + 1; // raft-rs ids are Kafka node ids shifted past raft's 0
    let mut out = Vec::new();
    for (t, entries) in [
        (MessageType::MsgAppend, vec![entry(2, 1), entry(3, 1)]),
        (MessageType::MsgAppendResponse, vec![]),
        (MessageType::MsgRequestVote, vec![]),
        (MessageType::MsgRequestVoteResponse, vec![]),
        (MessageType::MsgRequestPreVote, vec![]),
        (MessageType::MsgRequestPreVoteResponse, vec![]),
        (MessageType::MsgHeartbeat, vec![]),
        (MessageType::MsgHeartbeatResponse, vec![]),
        (MessageType::MsgSnapshot, vec![]),
    ] {
        let mut m = Message::default();
        m.set_msg_type(t);
        m.from = peer(2);
        m.to = peer(1);
        m.term = 2;
        m.log_term = 1;
        m.index = 1;
        m.commit = 1;
        m.entries = entries.into();
        out.push(wire::encode(&m).expect("encodes"));
    }
    out
}

/// Encoded metadata snapshots: an empty image and one with the sample records applied.
pub fn snapshots() -> Vec<Vec<u8>> {
    use weir_replication::metadata::{snapshot, MetadataImage};
    let mut image = MetadataImage::default();
    let empty = snapshot::encode(&image);
    for r in samples() {
        image.apply(&r);
    }
    vec![empty, snapshot::encode(&image)]
}

/// `metadata` inputs: a selector byte (0 a record, 1 a batch, 2 a snapshot, 3 an observer's
/// fetch response), then the bytes.
pub fn metadata_inputs() -> Vec<Vec<u8>> {
    use bytes::Bytes;
    use weir::cluster::observer::FetchResponse;
    use weir_replication::quorum::{CommittedEntry, SnapshotData};
    let with = |sel: u8, b: &[u8]| {
        let mut v = vec![sel];
        v.extend_from_slice(b);
        v
    };
    let mut out = Vec::new();
    for r in samples() {
        out.push(with(0, &r.encode()));
    }
    out.push(with(1, &encode_batch(&samples())));
    for s in snapshots() {
        out.push(with(2, &s));
    }
    let response = FetchResponse {
        error: 0,
        leader: 1,
        committed: 7,
        snapshot: Some(SnapshotData {
            index: 5,
            term: 2,
            data: Bytes::from(snapshots().pop().expect("two")),
        }),
        entries: vec![CommittedEntry {
            index: 6,
            term: 2,
            data: Bytes::from(encode_batch(&samples()[..3])),
        }],
    };
    out.push(with(3, &response.encode()));
    let no_snapshot = FetchResponse {
        snapshot: None,
        ..response
    };
    out.push(with(3, &no_snapshot.encode()));
    out
}

/// `disk_files` inputs: a selector byte, then a file's bytes (see the target for the kinds).
pub fn disk_files_inputs() -> Vec<Vec<u8>> {
    use weir::group::records as group;
    use weir_replication::quorum::{entry_batch, state_file, Entry, EntryType, QuorumHardState};
    use weir_storage::batch::{build_batch, BatchHeader, ProducerFields, Record};
    use weir_storage::producer::ProducerStateManager;
    let with = |sel: u8, b: &[u8]| {
        let mut v = vec![sel];
        v.extend_from_slice(b);
        v
    };
    let mut out = Vec::new();
    let fields = "log_start_offset 0\nrecovery_point 10\nrecovery_segment 0\nrecovery_position 4096\nhigh_watermark 9\nfirst_dirty 3\n";
    out.push(with(0, format!("1\n{fields}").as_bytes()));
    let mut slot = format!("2\nseq 4\n{fields}").into_bytes();
    let crc = crc32c(&slot);
    slot.extend_from_slice(format!("crc {crc}\n").as_bytes());
    out.push(with(1, &slot));
    out.push(with(2, b"0\n3\n0 0\n2 15\n5 100\n"));
    // A producer snapshot holding two producers.
    let mut state = ProducerStateManager::default();
    for (pid, base) in [(1000i64, 0i64), (1001, 3)] {
        let mut b = build_batch(
            &[Record {
                key: None,
                value: Some(b"v".to_vec()),
                headers: vec![],
                timestamp_delta: 0,
            }],
            1_700_000_000_000,
            ProducerFields {
                producer_id: pid,
                producer_epoch: 1,
                base_sequence: 0,
            },
        );
        weir_storage::batch::assign(&mut b, base, 1);
        let h = BatchHeader::parse(&b).expect("header");
        state.track_replicated(&h);
    }
    out.push(with(3, &state.encode_snapshot(10)));
    out.push(with(
        4,
        &state_file::encode(&state_file::QuorumStateFile {
            hard_state: QuorumHardState {
                term: 3,
                vote: Some(2),
                commit: 7,
            },
            voters: vec![1, 2, 3],
        }),
    ));
    let mut entries = Vec::new();
    for i in 1..=3u64 {
        let mut e = Entry::default();
        e.set_entry_type(if i == 2 {
            EntryType::EntryConfChangeV2
        } else {
            EntryType::EntryNormal
        });
        e.index = i;
        e.term = 1;
        e.data = encode_batch(&samples()[..1]).into();
        e.context = b"ctx".to_vec().into();
        entries.extend(entry_batch::encode(&e, 1_700_000_000_000).expect("encodes"));
    }
    out.push(with(5, &entries));
    out.push(with(6, &group::offset_key("g", "t", 3)));
    out.push(with(6, &group::group_key("g")));
    out.push(with(
        7,
        &group::group_value(&group::GroupMeta {
            protocol_type: "consumer".into(),
            generation: 4,
            protocol: Some("range".into()),
            leader: Some("m1".into()),
            state_timestamp: 1_700_000_000_000,
            members: vec![group::MemberMeta {
                member_id: "m1".into(),
                instance_id: Some("i".into()),
                client_id: "c".into(),
                client_host: "/127.0.0.1".into(),
                rebalance_timeout_ms: 300_000,
                session_timeout_ms: 45_000,
                subscription: vec![0, 1, 0, 0, 0, 1, 0, 1, b't'],
                assignment: vec![0, 1],
            }],
        }),
    ));
    out.push(with(
        8,
        &group::offset_value(&group::Committed {
            offset: 42,
            leader_epoch: 3,
            metadata: "m".into(),
            commit_timestamp: 1_700_000_000_000,
        }),
    ));
    out
}

/// The checkpoint slot's CRC: CRC-32C, as storage writes it.
fn crc32c(b: &[u8]) -> u32 {
    ::crc32c::crc32c(b)
}
