use super::*;
use proptest::prelude::*;

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
        MetadataRecord::UncleanReport(UncleanReportRecord {
            topic_id: id,
            partition: 1,
            election_epoch: 7,
            broker: 3,
            report: UncleanReport::LeaderLogEnd(120),
        }),
        MetadataRecord::UncleanReport(UncleanReportRecord {
            topic_id: id,
            partition: 1,
            election_epoch: 7,
            broker: 1,
            report: UncleanReport::Discarded(DiscardedRange {
                from_offset: 120,
                to_offset: 190,
                high_watermark: 180,
                epochs: vec![(5, 120), (6, 150)],
                time_ms: 1_700_000_000_500,
            }),
        }),
    ]
}

#[test]
fn records_round_trip_and_refuse_torn_or_padded_bytes() {
    for r in samples() {
        let bytes = r.encode();
        assert_eq!(MetadataRecord::decode(&bytes).unwrap(), r);
        for cut in 0..bytes.len() {
            assert!(
                MetadataRecord::decode(&bytes[..cut]).is_err(),
                "{r:?} cut at {cut}"
            );
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(MetadataRecord::decode(&longer).is_err());
    }
    assert!(MetadataRecord::decode(&[99, 0]).is_err(), "unknown tag");
    assert!(MetadataRecord::decode(&[1, 9]).is_err(), "unknown version");
}

/// Bytes exactly as single-node Weir's encoder wrote them (tag, version 0, fields): a log
/// from before the cluster must replay unchanged.
#[test]
fn version_zero_records_from_single_node_weir_still_decode() {
    let id: Vec<u8> = (1..=16).collect();
    let mut topic = vec![1, 0, 0, 6];
    topic.extend_from_slice(b"orders");
    topic.extend_from_slice(&id);
    assert_eq!(
        MetadataRecord::decode(&topic).unwrap(),
        MetadataRecord::Topic(TopicRecord {
            name: "orders".into(),
            id: id.clone().try_into().unwrap()
        })
    );

    let mut partition = vec![2, 0];
    partition.extend_from_slice(&id);
    for v in [3i32, 1, 0, 1, 1, 1, 1] {
        // partition 3, leader 1, epoch 0, replicas [1], isr [1]
        partition.extend_from_slice(&v.to_be_bytes());
    }
    assert_eq!(
        MetadataRecord::decode(&partition).unwrap(),
        MetadataRecord::Partition(PartitionRecord {
            topic_id: id.clone().try_into().unwrap(),
            partition: 3,
            replicas: vec![1],
            isr: vec![1],
            elr: vec![],
            last_known_elr: vec![],
            leader: 1,
            leader_epoch: 0,
            partition_epoch: 0,
        })
    );

    let mut config = vec![3, 0];
    config.extend_from_slice(&id);
    config.extend_from_slice(&[0, 2, b'a', b'b', 0xff, 0xff]);
    assert_eq!(
        MetadataRecord::decode(&config).unwrap(),
        MetadataRecord::TopicConfig(TopicConfigRecord {
            topic_id: id.clone().try_into().unwrap(),
            key: "ab".into(),
            value: None
        })
    );

    let mut remove = vec![4, 0];
    remove.extend_from_slice(&id);
    assert!(matches!(
        MetadataRecord::decode(&remove).unwrap(),
        MetadataRecord::RemoveTopic(_)
    ));

    let mut pids = vec![5, 0];
    pids.extend_from_slice(&5000i64.to_be_bytes());
    assert_eq!(
        MetadataRecord::decode(&pids).unwrap(),
        MetadataRecord::ProducerIds(ProducerIdsRecord {
            broker_id: -1,
            broker_epoch: -1,
            next_block_start: 5000
        })
    );
}

#[test]
fn a_list_length_larger_than_the_record_is_refused_before_allocating() {
    let mut b = vec![2, 0];
    b.extend_from_slice(&[0; 16]);
    b.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0]);
    b.extend_from_slice(&0x7fff_ffffi32.to_be_bytes());
    assert_eq!(
        MetadataRecord::decode(&b),
        Err(RecordError("bad list length"))
    );
}

#[test]
fn batches_round_trip_and_are_refused_whole() {
    let all = samples();
    let bytes = encode_batch(&all);
    assert_eq!(decode_batch(&bytes).unwrap(), all);
    assert_eq!(decode_batch(&encode_batch(&[])).unwrap(), vec![]);
    for cut in 0..bytes.len() {
        assert!(decode_batch(&bytes[..cut]).is_err());
    }
    let mut padded = bytes.clone();
    padded.push(0);
    assert!(decode_batch(&padded).is_err());
    // A huge count in a short batch fails at once.
    assert!(decode_batch(&[0, 0xff, 0xff, 0xff, 0xff, 0, 0]).is_err());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Garbage never panics: it decodes to something or is refused.
    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = MetadataRecord::decode(&bytes);
        let _ = decode_batch(&bytes);
    }

    /// Garbage that starts like a real record (a known tag and version) reaches the field
    /// decoders instead of stopping at the tag.
    #[test]
    fn random_bodies_of_known_records_never_panic(
        tag in 1u8..=11,
        version in 0u8..=1,
        body in proptest::collection::vec(any::<u8>(), 0..128),
    ) {
        let mut bytes = vec![tag, version];
        bytes.extend_from_slice(&body);
        if let Ok(r) = MetadataRecord::decode(&bytes) {
            // What decodes re-encodes to a record that decodes the same.
            prop_assert_eq!(MetadataRecord::decode(&r.encode()).unwrap(), r);
        }
    }

    /// Flipping any byte of a valid batch never panics.
    #[test]
    fn corrupted_batches_never_panic(at in any::<prop::sample::Index>(), x in 1u8..=255) {
        let mut bytes = encode_batch(&samples());
        let i = at.index(bytes.len());
        bytes[i] ^= x;
        let _ = decode_batch(&bytes);
    }
}
