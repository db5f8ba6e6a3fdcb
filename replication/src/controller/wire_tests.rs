use super::*;
use crate::controller::error::ControllerError;
use crate::controller::request::*;
use crate::metadata::records::Endpoint;
use proptest::prelude::*;

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
        ControllerRequest::ReportUnclean(UncleanReportRequest {
            broker_id: 2,
            broker_epoch: 9,
            topic_id: [3; 16],
            partition: 1,
            election_epoch: 5,
            report: crate::metadata::records::UncleanReport::Discarded(
                crate::metadata::records::DiscardedRange {
                    from_offset: 10,
                    to_offset: 20,
                    high_watermark: 15,
                    epochs: vec![(3, 10), (4, 12)],
                    time_ms: 1,
                },
            ),
        }),
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
        ControllerReply::ReportUnclean(Ok(())),
    ];
    let mut out: Vec<_> = replies
        .into_iter()
        .enumerate()
        .map(|(i, reply)| ControllerResponse::Done {
            metadata_offset: i as i64,
            reply,
        })
        .collect();
    out.push(ControllerResponse::NotController { leader: 3 });
    out
}

#[test]
fn every_request_and_response_round_trips() {
    for r in requests() {
        assert_eq!(decode_request(&encode_request(&r)).unwrap(), r);
    }
    for r in responses() {
        assert_eq!(decode_response(&encode_response(&r)).unwrap(), r);
    }
}

#[test]
fn frames_of_another_kind_or_version_are_refused() {
    let bytes = encode_request(&requests()[0]);
    assert_eq!(decode_request(&bytes[..3]), Err(WireError::BadMagic));
    let mut other = bytes.clone();
    other[3] = 1;
    assert_eq!(
        decode_request(&other),
        Err(WireError::UnsupportedVersion(1))
    );
    assert!(matches!(
        decode_request(&bytes[..bytes.len() - 1]),
        Err(WireError::Malformed(_))
    ));
    // A response is not a request.
    let resp = encode_response(&responses()[0]);
    let _ = decode_request(&resp);
}

#[test]
fn every_single_byte_corruption_is_survived() {
    for r in requests() {
        let bytes = encode_request(&r);
        for i in HEADER_BYTES..bytes.len() {
            for x in [0x01u8, 0x80, 0xff] {
                let mut b = bytes.clone();
                b[i] ^= x;
                let _ = decode_request(&b);
                let _ = decode_response(&b);
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn random_frames_never_panic(body in proptest::collection::vec(any::<u8>(), 0..512)) {
        let mut bytes = b"WC\0\x01".to_vec();
        bytes.extend_from_slice(&body);
        let _ = decode_request(&bytes);
        let _ = decode_response(&bytes);
        let _ = decode_request(&body);
    }
}
