use super::*;
use crate::metadata::records::*;

fn topic(name: &str, id: TopicId) -> MetadataRecord {
    MetadataRecord::Topic(TopicRecord {
        name: name.into(),
        id,
    })
}

fn partition(id: TopicId, p: i32, replicas: Vec<i32>) -> MetadataRecord {
    MetadataRecord::Partition(PartitionRecord {
        topic_id: id,
        partition: p,
        leader: replicas[0],
        isr: replicas.clone(),
        replicas,
        elr: vec![],
        last_known_elr: vec![],
        leader_epoch: 0,
        partition_epoch: 0,
    })
}

fn register(id: NodeId, epoch: BrokerEpoch, incarnation: u8) -> MetadataRecord {
    MetadataRecord::RegisterBroker(RegisterBrokerRecord {
        broker_id: id,
        incarnation_id: [incarnation; 16],
        broker_epoch: epoch,
        endpoints: vec![Endpoint {
            listener: "PLAINTEXT".into(),
            host: "h".into(),
            port: 9092,
            security_protocol: 0,
        }],
        rack: None,
        fenced: true,
        in_controlled_shutdown: false,
    })
}

#[test]
fn replay_builds_topics_and_removal_forgets_them() {
    let id = [1u8; 16];
    let mut img = MetadataImage::default();
    assert_eq!(
        img.apply(&topic("a", id)),
        Change::TopicCreated {
            name: "a".into(),
            id
        }
    );
    for p in 0..3 {
        assert_eq!(
            img.apply(&partition(id, p, vec![1])),
            Change::PartitionAdded {
                topic: "a".into(),
                partition: p
            }
        );
    }
    assert_eq!(img.apply(&partition(id, 7, vec![1])), Change::None, "gap");
    img.apply(&MetadataRecord::TopicConfig(TopicConfigRecord {
        topic_id: id,
        key: "retention.ms".into(),
        value: Some("5".into()),
    }));
    assert_eq!(img.topic("a").unwrap().partitions.len(), 3);
    assert_eq!(img.topic_by_id(&id).unwrap().configs["retention.ms"], "5");
    assert_eq!(img.partition_count(), 3);
    assert_eq!(
        img.apply(&MetadataRecord::RemoveTopic(RemoveTopicRecord { id })),
        Change::TopicRemoved {
            name: "a".into(),
            id,
            partitions: 3
        }
    );
    assert!(img.topic("a").is_none());
    let unknown = [
        MetadataRecord::TopicConfig(TopicConfigRecord {
            topic_id: id,
            key: "x".into(),
            value: None,
        }),
        MetadataRecord::PartitionChange(PartitionChangeRecord {
            topic_id: id,
            partition: 0,
            leader: Some(2),
            ..Default::default()
        }),
        MetadataRecord::RemoveTopic(RemoveTopicRecord { id }),
    ];
    for r in unknown {
        assert_eq!(img.apply(&r), Change::None, "{r:?}");
    }
}

#[test]
fn partition_changes_bump_leader_epoch_only_with_the_leader_and_partition_epoch_always() {
    let id = [2u8; 16];
    let mut img = MetadataImage::default();
    img.apply(&topic("t", id));
    img.apply(&partition(id, 0, vec![1, 2, 3]));
    let shrink = MetadataRecord::PartitionChange(PartitionChangeRecord {
        topic_id: id,
        partition: 0,
        isr: Some(vec![1, 2]),
        ..Default::default()
    });
    assert_eq!(
        img.apply(&shrink),
        Change::PartitionChanged {
            topic: "t".into(),
            partition: 0,
            old_leader: 1,
            leader: 1,
            leader_epoch: 0,
            partition_epoch: 1
        }
    );
    let lead = MetadataRecord::PartitionChange(PartitionChangeRecord {
        topic_id: id,
        partition: 0,
        leader: Some(2),
        isr: Some(vec![2]),
        elr: Some(vec![1]),
        ..Default::default()
    });
    assert_eq!(
        img.apply(&lead),
        Change::PartitionChanged {
            topic: "t".into(),
            partition: 0,
            old_leader: 1,
            leader: 2,
            leader_epoch: 1,
            partition_epoch: 2
        }
    );
    let p = img.partition(&id, 0).unwrap();
    assert_eq!((p.isr.clone(), p.elr.clone()), (vec![2], vec![1]));
    assert!(img.partition(&id, 1).is_none());
    assert!(img.partition(&id, -1).is_none());
}

#[test]
fn brokers_register_change_and_unregister_by_epoch() {
    let mut img = MetadataImage::default();
    assert_eq!(img.next_broker_epoch(), 0);
    assert_eq!(
        img.apply(&register(1, 0, 1)),
        Change::BrokerRegistered {
            broker: 1,
            epoch: 0,
            new_incarnation: true
        }
    );
    assert_eq!(img.next_broker_epoch(), 1);
    assert!(img.broker(1).unwrap().fenced);
    assert!(!img.is_active(1));
    let unfence = |epoch| {
        MetadataRecord::BrokerChange(BrokerChangeRecord {
            broker_id: 1,
            broker_epoch: epoch,
            fenced: Some(false),
            in_controlled_shutdown: None,
        })
    };
    assert_eq!(img.apply(&unfence(7)), Change::None, "another epoch");
    assert_eq!(
        img.apply(&unfence(0)),
        Change::BrokerChanged {
            broker: 1,
            fenced: false,
            in_controlled_shutdown: false
        }
    );
    assert!(img.is_active(1));
    assert_eq!(img.apply(&unfence(0)), Change::None, "no-op");
    // The same process amends its registration; a restart brings a new incarnation.
    assert_eq!(
        img.apply(&register(1, 0, 1)),
        Change::BrokerRegistered {
            broker: 1,
            epoch: 0,
            new_incarnation: false
        }
    );
    img.apply(&register(1, 5, 2));
    assert_eq!(img.next_broker_epoch(), 6);
    let unregister = |epoch| {
        MetadataRecord::UnregisterBroker(UnregisterBrokerRecord {
            broker_id: 1,
            broker_epoch: epoch,
        })
    };
    assert_eq!(img.apply(&unregister(0)), Change::None, "stale epoch");
    assert_eq!(
        img.apply(&unregister(5)),
        Change::BrokerUnregistered { broker: 1 }
    );
    assert!(img.broker(1).is_none());
    assert_eq!(img.next_broker_epoch(), 6, "epochs are never reused");
}

#[test]
fn broker_configs_and_producer_ids_accumulate() {
    let mut img = MetadataImage::default();
    let set = |broker, value: Option<&str>| {
        MetadataRecord::BrokerConfig(BrokerConfigRecord {
            broker,
            key: "min.insync.replicas".into(),
            value: value.map(str::to_string),
        })
    };
    assert_eq!(
        img.apply(&set(None, Some("2"))),
        Change::BrokerConfigChanged { broker: None }
    );
    img.apply(&set(Some(3), Some("1")));
    assert_eq!(
        img.broker_configs(None).unwrap()["min.insync.replicas"],
        "2"
    );
    assert_eq!(
        img.broker_configs(Some(3)).unwrap()["min.insync.replicas"],
        "1"
    );
    img.apply(&set(Some(3), None));
    assert!(img.broker_configs(Some(3)).is_none(), "empty sets vanish");
    for start in [1000, 3000, 2000] {
        img.apply(&MetadataRecord::ProducerIds(ProducerIdsRecord {
            broker_id: 1,
            broker_epoch: 0,
            next_block_start: start,
        }));
    }
    assert_eq!(img.next_producer_id_block(), 3000, "never moves back");
}

#[test]
fn a_reused_name_or_id_keeps_names_and_ids_one_to_one() {
    let mut img = MetadataImage::default();
    img.apply(&topic("a", [1; 16]));
    img.apply(&topic("a", [2; 16]));
    assert!(img.topic_by_id(&[1; 16]).is_none());
    img.apply(&topic("b", [2; 16]));
    assert!(img.topic("a").is_none());
    assert_eq!(img.topics().count(), 1);
    assert_eq!(img.names_by_id.len(), 1);
}

#[test]
fn unclean_elections_are_kept_on_the_partition() {
    let id = [3u8; 16];
    let mut img = MetadataImage::default();
    img.apply(&topic("t", id));
    img.apply(&partition(id, 0, vec![1, 2]));
    let c = img.apply(&MetadataRecord::UncleanElection(UncleanElectionRecord {
        topic_id: id,
        partition: 0,
        leader: 2,
        leader_epoch: 1,
        replaced_isr: vec![1],
        replaced_elr: vec![],
        time_ms: 42,
    }));
    assert_eq!(
        c,
        Change::UncleanElection {
            topic: "t".into(),
            partition: 0,
            leader: 2,
            leader_epoch: 1
        }
    );
    let u = img
        .partition(&id, 0)
        .unwrap()
        .last_unclean_election
        .clone()
        .unwrap();
    assert_eq!((u.leader, u.replaced_isr, u.time_ms), (2, vec![1], 42));
}
