use super::*;
use crate::metadata::records::*;
use proptest::prelude::*;

/// An image with every kind of state: topics with configs, partitions with ELR and an unclean
/// election, brokers with endpoints and racks, broker configs, counters.
fn rich_image() -> MetadataImage {
    let mut img = MetadataImage::default();
    let records = vec![
        MetadataRecord::Topic(TopicRecord {
            name: "orders".into(),
            id: [1; 16],
        }),
        MetadataRecord::Partition(PartitionRecord {
            topic_id: [1; 16],
            partition: 0,
            replicas: vec![1, 2, 3],
            isr: vec![1],
            elr: vec![2],
            last_known_elr: vec![],
            leader: 1,
            leader_epoch: 3,
            partition_epoch: 8,
        }),
        MetadataRecord::UncleanElection(UncleanElectionRecord {
            topic_id: [1; 16],
            partition: 0,
            leader: 1,
            leader_epoch: 3,
            replaced_isr: vec![3],
            replaced_elr: vec![],
            time_ms: 77,
        }),
        MetadataRecord::UncleanReport(UncleanReportRecord {
            topic_id: [1; 16],
            partition: 0,
            election_epoch: 3,
            broker: 1,
            report: UncleanReport::LeaderLogEnd(40),
        }),
        MetadataRecord::UncleanReport(UncleanReportRecord {
            topic_id: [1; 16],
            partition: 0,
            election_epoch: 3,
            broker: 3,
            report: UncleanReport::Discarded(DiscardedRange {
                from_offset: 40,
                to_offset: 55,
                high_watermark: 50,
                epochs: vec![(2, 40)],
                time_ms: 90,
            }),
        }),
        MetadataRecord::TopicConfig(TopicConfigRecord {
            topic_id: [1; 16],
            key: "retention.ms".into(),
            value: Some("60000".into()),
        }),
        MetadataRecord::Topic(TopicRecord {
            name: "empty".into(),
            id: [2; 16],
        }),
        MetadataRecord::RegisterBroker(RegisterBrokerRecord {
            broker_id: 1,
            incarnation_id: [5; 16],
            broker_epoch: 4,
            endpoints: vec![Endpoint {
                listener: "PLAINTEXT".into(),
                host: "a".into(),
                port: 9092,
                security_protocol: 0,
            }],
            rack: Some("r1".into()),
            fenced: false,
            in_controlled_shutdown: true,
        }),
        MetadataRecord::BrokerConfig(BrokerConfigRecord {
            broker: None,
            key: "unclean.leader.election.enable".into(),
            value: Some("true".into()),
        }),
        MetadataRecord::BrokerConfig(BrokerConfigRecord {
            broker: Some(1),
            key: "min.insync.replicas".into(),
            value: Some("2".into()),
        }),
        MetadataRecord::ProducerIds(ProducerIdsRecord {
            broker_id: 1,
            broker_epoch: 4,
            next_block_start: 2000,
        }),
    ];
    for r in &records {
        img.apply(r);
    }
    img
}

#[test]
fn snapshots_round_trip() {
    for img in [MetadataImage::default(), rich_image()] {
        let bytes = encode(&img);
        assert_eq!(decode(&bytes).unwrap(), img);
    }
}

#[test]
fn format_1_snapshots_are_still_read_without_unclean_reports() {
    let img = rich_image();
    let u = img.topic("orders").unwrap().partitions[0]
        .last_unclean_election
        .clone()
        .unwrap();
    assert_eq!(u.leader_log_end, Some(40));
    assert_eq!(u.discarded.len(), 1);
    let mut expected = img.clone();
    if let Some(u) = expected.topics.get_mut("orders").unwrap().partitions[0]
        .last_unclean_election
        .as_mut()
    {
        u.leader_log_end = None;
        u.discarded.clear();
    }
    assert_eq!(decode(&v1::encode(&img)).unwrap(), expected);
}

#[test]
fn snapshots_refuse_bad_headers_and_corruption() {
    let bytes = encode(&rich_image());
    assert_eq!(decode(&bytes[..10]), Err(SnapshotError::BadMagic));
    let mut other = bytes.clone();
    other[0] = b'X';
    assert_eq!(decode(&other), Err(SnapshotError::BadMagic));
    let mut newer = bytes.clone();
    newer[8..12].copy_from_slice(&3u32.to_be_bytes());
    assert_eq!(decode(&newer), Err(SnapshotError::UnsupportedVersion(3)));
    for i in HEADER_BYTES..bytes.len() {
        let mut flipped = bytes.clone();
        flipped[i] ^= 0x40;
        assert_eq!(decode(&flipped), Err(SnapshotError::Checksum), "byte {i}");
    }
    assert!(decode(&bytes[..bytes.len() - 1]).is_err());
}

/// With a matching checksum, rkyv's validation is what stands between garbage and the image.
fn with_checksum(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&SNAPSHOT_VERSION.to_be_bytes());
    out.extend_from_slice(&crc32c::crc32c(payload).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

#[test]
fn archives_with_a_valid_checksum_are_still_validated() {
    let good = encode(&rich_image());
    let payload = &good[HEADER_BYTES..];
    // Every single-byte corruption, checksummed so it reaches rkyv: refused or decoded, never
    // a panic.
    for i in 0..payload.len() {
        for x in [0x01u8, 0x80, 0xff] {
            let mut p = payload.to_vec();
            p[i] ^= x;
            let _ = decode(&with_checksum(&p));
        }
    }
    assert!(matches!(
        decode(&with_checksum(&[])),
        Err(SnapshotError::Malformed(_))
    ));
}

#[test]
fn duplicate_names_in_an_archive_are_refused() {
    let snap = Snapshot {
        topics: vec![
            SnapTopic {
                name: "a".into(),
                id: [1; 16],
                partitions: vec![],
                configs: vec![],
            },
            SnapTopic {
                name: "a".into(),
                id: [2; 16],
                partitions: vec![],
                configs: vec![],
            },
        ],
        brokers: vec![],
        broker_configs: vec![],
        next_producer_id_block: 0,
        next_broker_epoch: 0,
    };
    let payload = rkyv::to_bytes::<rancor::Error>(&snap).unwrap();
    assert_eq!(
        decode(&with_checksum(&payload)),
        Err(SnapshotError::Inconsistent("duplicate topic name"))
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn random_checksummed_payloads_never_panic(payload in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = decode(&with_checksum(&payload));
        let _ = decode(&payload);
    }
}
