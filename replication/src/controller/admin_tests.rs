//! Topic administration, configs and producer ids: the validation single-node Weir did, with
//! Kafka's codes and messages, now against registered brokers.

use super::testkit::*;
use super::*;

fn one_broker() -> Harness {
    let mut h = Harness::new(config());
    h.join(1);
    h
}

fn code<T>(r: Result<T, ControllerError>) -> Option<i16> {
    r.err().map(|e| e.kafka_code())
}

#[test]
fn topic_names_follow_kafka_rules() {
    assert!(validate_topic_name("orders.v1_x-2").is_ok());
    for bad in ["", ".", "..", "a/b", "a b", "ü"] {
        assert!(validate_topic_name(bad).is_err(), "{bad:?}");
    }
    assert!(validate_topic_name(&"a".repeat(249)).is_ok());
    assert!(validate_topic_name(&"a".repeat(250)).is_err());
}

#[test]
fn create_validates_like_kafka() {
    let mut h = one_broker();
    let made = h.create("orders", -1, -1, &[]).unwrap();
    assert_eq!(
        (made.num_partitions, made.replication_factor),
        (3, 1),
        "defaults"
    );
    assert!(made
        .configs
        .iter()
        .any(|c| c.name == "cleanup.policy" && c.is_default));
    assert_eq!(code(h.create("orders", 1, 1, &[])), Some(36));
    assert_eq!(code(h.create("bad/name", 1, 1, &[])), Some(17));
    assert_eq!(code(h.create("or.ders", 1, 1, &[])), None);
    let e = h.create("or_ders", 1, 1, &[]).unwrap_err();
    assert_eq!(
        e,
        ControllerError::InvalidTopic(
            "Topic 'or_ders' collides with existing topic: or.ders".into()
        )
    );
    assert_eq!(code(h.create("zero", 0, 1, &[])), Some(37));
    assert_eq!(code(h.create("rf0", 1, 0, &[])), Some(38));
    let e = h.create("rf3", 1, 3, &[]).unwrap_err();
    assert_eq!(
        e.message(),
        "Unable to replicate the partition 3 time(s): The target replication factor of 3 cannot be reached because only 1 broker(s) are registered."
    );
    assert_eq!(
        code(h.create("cfg", 1, 1, &[("retention.ms", "soon")])),
        Some(40)
    );
    assert!(
        h.state.image().topic("cfg").is_none(),
        "refused creates leave nothing"
    );
    let too_many = h.create("huge", MAX_RECORDS_PER_USER_OP as i32, 1, &[]);
    assert_eq!(code(too_many), Some(-1));
    assert_eq!(h.state.image(), &h.replayed());
}

#[test]
fn create_topics_refuses_duplicates_and_null_configs_and_validate_only_writes_nothing() {
    let mut h = one_broker();
    let topic = |name: &str, configs: Vec<ConfigEntry>| NewTopic {
        name: name.into(),
        num_partitions: 1,
        replication_factor: 1,
        assignments: vec![],
        configs,
    };
    let req = ControllerRequest::CreateTopics {
        topics: vec![
            topic("a", vec![]),
            topic("a", vec![]),
            topic("x.y", vec![]),
            topic("x_y", vec![]),
            topic(
                "n",
                vec![
                    ConfigEntry {
                        key: "retention.ms".into(),
                        value: None,
                    },
                    ConfigEntry {
                        key: "segment.bytes".into(),
                        value: None,
                    },
                ],
            ),
        ],
        validate_only: true,
    };
    let (reply, records) = h.state.handle(req, 0);
    assert!(records.is_empty(), "validate_only");
    let ControllerReply::CreateTopics(r) = reply else {
        panic!()
    };
    assert_eq!(code(r[0].clone()), Some(42));
    assert_eq!(code(r[1].clone()), Some(42));
    assert_eq!(code(r[2].clone()), None);
    assert_eq!(code(r[3].clone()), Some(17), "collides within the request");
    assert_eq!(
        r[4].clone().unwrap_err().message(),
        "Null value not supported for topic configs: retention.ms,segment.bytes"
    );
}

#[test]
fn manual_assignments_are_validated_and_used() {
    let mut h = Harness::new(config());
    for id in 1..=3 {
        h.join(id);
    }
    h.heartbeat_with(3, true, false).unwrap();
    let create = |h: &mut Harness, assignments: Vec<(i32, Vec<i32>)>, n: i32| {
        let req = ControllerRequest::CreateTopics {
            topics: vec![NewTopic {
                name: "m".into(),
                num_partitions: n,
                replication_factor: -1,
                assignments: assignments
                    .into_iter()
                    .map(|(partition, brokers)| ReplicaAssignment { partition, brokers })
                    .collect(),
                configs: vec![],
            }],
            validate_only: false,
        };
        match h.handle(req) {
            ControllerReply::CreateTopics(mut r) => r.pop().unwrap(),
            r => panic!("{r:?}"),
        }
    };
    assert_eq!(code(create(&mut h, vec![(0, vec![1])], 1)), Some(42));
    assert_eq!(
        code(create(&mut h, vec![(0, vec![1]), (0, vec![2])], -1)),
        Some(39)
    );
    assert_eq!(code(create(&mut h, vec![(1, vec![1])], -1)), Some(39));
    assert_eq!(code(create(&mut h, vec![(0, vec![1, 1])], -1)), Some(39));
    assert_eq!(code(create(&mut h, vec![(0, vec![1, 9])], -1)), Some(39));
    assert_eq!(
        code(create(&mut h, vec![(0, vec![1]), (1, vec![1, 2])], -1)),
        Some(39)
    );
    let e = create(&mut h, vec![(0, vec![3])], -1).unwrap_err();
    assert!(
        e.message().contains("fenced or in controlled shutdown"),
        "{e}"
    );
    let made = create(&mut h, vec![(1, vec![3, 2]), (0, vec![2, 1])], -1).unwrap();
    assert_eq!((made.num_partitions, made.replication_factor), (2, 2));
    let p1 = h.partition("m", 1);
    assert_eq!(
        (p1.replicas.clone(), p1.isr.clone(), p1.leader),
        (vec![3, 2], vec![2], 2)
    );
}

#[test]
fn delete_topics_by_name_and_id() {
    let mut h = one_broker();
    let a = h.create("a", 1, 1, &[]).unwrap();
    h.create("b", 1, 1, &[]).unwrap();
    let req = ControllerRequest::DeleteTopics {
        topics: vec![
            TopicRef::Id(a.id),
            TopicRef::Name("a".into()),
            TopicRef::Name("nope".into()),
            TopicRef::Id([9; 16]),
            TopicRef::Name("b".into()),
            TopicRef::Name("b".into()),
        ],
    };
    let (reply, records) = h.state.handle(req, 0);
    let ControllerReply::DeleteTopics(r) = reply else {
        panic!()
    };
    assert_eq!(r[0].as_ref().unwrap().name, "a");
    assert_eq!(r[1].as_ref().unwrap().id, a.id);
    assert_eq!(code(r[2].clone()), Some(3));
    assert_eq!(code(r[3].clone()), Some(100));
    assert_eq!(code(r[4].clone()), Some(42));
    assert_eq!(records.len(), 1, "one removal for a named twice");
    h.commit(records);
    assert!(h.state.image().topic("a").is_none());

    let mut off = config();
    off.delete_topic_enable = false;
    let mut h = Harness::new(off);
    h.join(1);
    h.create("a", 1, 1, &[]).unwrap();
    match h.handle(ControllerRequest::DeleteTopics {
        topics: vec![TopicRef::Name("a".into())],
    }) {
        ControllerReply::DeleteTopics(r) => assert_eq!(code(r[0].clone()), Some(73)),
        r => panic!("{r:?}"),
    }
}

#[test]
fn partitions_only_grow_and_use_the_same_placement() {
    let mut h = Harness::new(config());
    for id in 1..=3 {
        h.join(id);
    }
    h.create("t", 2, 2, &[]).unwrap();
    let grow = |h: &mut Harness, count, assignments| {
        let req = ControllerRequest::CreatePartitions {
            topics: vec![NewPartitions {
                topic: "t".into(),
                count,
                assignments,
            }],
            validate_only: false,
        };
        match h.handle(req) {
            ControllerReply::CreatePartitions(mut r) => r.pop().unwrap(),
            r => panic!("{r:?}"),
        }
    };
    let e = grow(&mut h, 1, None).unwrap_err();
    assert_eq!(
        e.message(),
        "Topic currently has 2 partitions, which is higher than the requested 1."
    );
    assert_eq!(
        grow(&mut h, 2, None).unwrap_err().message(),
        "Topic already has 2 partitions."
    );
    assert_eq!(code(grow(&mut h, 4, Some(vec![vec![1, 2]]))), Some(39));
    assert_eq!(code(grow(&mut h, 3, Some(vec![vec![1]]))), Some(39), "RF 2");
    grow(&mut h, 3, Some(vec![vec![3, 1]])).unwrap();
    assert_eq!(h.partition("t", 2).replicas, vec![3, 1]);
    grow(&mut h, 6, None).unwrap();
    let topic = h.state.image().topic("t").unwrap();
    assert_eq!(topic.partitions.len(), 6);
    let mut leaders = [0; 4];
    for p in &topic.partitions {
        assert_eq!(p.replicas.len(), 2);
        leaders[p.leader as usize] += 1;
    }
    assert_eq!(&leaders[1..], &[2, 2, 2], "leaders spread");
    let missing = ControllerRequest::CreatePartitions {
        topics: vec![NewPartitions {
            topic: "none".into(),
            count: 2,
            assignments: None,
        }],
        validate_only: false,
    };
    match h.handle(missing) {
        ControllerReply::CreatePartitions(r) => assert_eq!(code(r[0].clone()), Some(3)),
        r => panic!("{r:?}"),
    }
}

fn alter(
    h: &mut Harness,
    resource: ConfigResource,
    changes: &[(&str, ConfigOp, Option<&str>)],
    replace_all: bool,
) -> Result<(), ControllerError> {
    let req = ControllerRequest::AlterConfigs {
        resources: vec![AlterConfigsResource {
            resource,
            changes: changes
                .iter()
                .map(|(k, op, v)| ConfigChange {
                    key: k.to_string(),
                    op: op.clone(),
                    value: v.map(str::to_string),
                })
                .collect(),
        }],
        replace_all,
        validate_only: false,
    };
    match h.handle(req) {
        ControllerReply::AlterConfigs(mut r) => r.pop().unwrap(),
        r => panic!("{r:?}"),
    }
}

#[test]
fn topic_configs_alter_incrementally_or_all_at_once() {
    let mut h = one_broker();
    h.create("t", 1, 1, &[]).unwrap();
    let t = || ConfigResource::Topic("t".into());
    let configs = |h: &Harness| h.state.image().topic("t").unwrap().configs.clone();
    alter(
        &mut h,
        t(),
        &[
            ("retention.ms", ConfigOp::Set, Some("1000")),
            ("cleanup.policy", ConfigOp::Set, Some("delete")),
        ],
        false,
    )
    .unwrap();
    alter(
        &mut h,
        t(),
        &[("cleanup.policy", ConfigOp::Append, Some("compact"))],
        false,
    )
    .unwrap();
    assert_eq!(configs(&h)["cleanup.policy"], "delete,compact");
    alter(
        &mut h,
        t(),
        &[("cleanup.policy", ConfigOp::Subtract, Some("delete"))],
        false,
    )
    .unwrap();
    assert_eq!(configs(&h)["cleanup.policy"], "compact");
    let e = alter(
        &mut h,
        t(),
        &[("retention.ms", ConfigOp::Append, Some("1"))],
        false,
    )
    .unwrap_err();
    assert_eq!(
        e.message(),
        "Can't APPEND to key retention.ms because its type is not LIST."
    );
    alter(
        &mut h,
        t(),
        &[("retention.ms", ConfigOp::Delete, None)],
        false,
    )
    .unwrap();
    assert!(!configs(&h).contains_key("retention.ms"));
    // AlterConfigs (not incremental) replaces every override with what it lists.
    alter(
        &mut h,
        t(),
        &[("segment.bytes", ConfigOp::Set, Some("1048576"))],
        true,
    )
    .unwrap();
    assert_eq!(
        configs(&h).keys().collect::<Vec<_>>(),
        vec!["segment.bytes"]
    );
    assert_eq!(
        code(alter(
            &mut h,
            t(),
            &[("retention.ms", ConfigOp::Set, Some("x"))],
            false
        )),
        Some(40)
    );
    assert_eq!(
        code(alter(
            &mut h,
            t(),
            &[("retention.ms", ConfigOp::Set, None)],
            false
        )),
        Some(40)
    );
    assert_eq!(
        code(alter(
            &mut h,
            t(),
            &[
                ("retention.ms", ConfigOp::Set, Some("1")),
                ("retention.ms", ConfigOp::Delete, None)
            ],
            false
        )),
        Some(42)
    );
    assert_eq!(
        code(alter(
            &mut h,
            ConfigResource::Topic("none".into()),
            &[],
            false
        )),
        Some(3)
    );
    assert_eq!(
        code(alter(&mut h, ConfigResource::Topic("".into()), &[], false)),
        Some(42)
    );
    assert_eq!(h.state.image(), &h.replayed());
}

#[test]
fn broker_configs_alter_per_broker_and_cluster_wide() {
    let mut h = one_broker();
    let set = |k: &'static str, v: &'static str| [(k, ConfigOp::Set, Some(v))];
    alter(
        &mut h,
        ConfigResource::Broker("".into()),
        &set("min.insync.replicas", "2"),
        false,
    )
    .unwrap();
    alter(
        &mut h,
        ConfigResource::Broker("1".into()),
        &set("min.insync.replicas", "1"),
        false,
    )
    .unwrap();
    let img = h.state.image();
    assert_eq!(
        img.broker_configs(None).unwrap()["min.insync.replicas"],
        "2"
    );
    assert_eq!(
        img.broker_configs(Some(1)).unwrap()["min.insync.replicas"],
        "1"
    );
    // Unchanged broker configs are written again, so brokers reload them (KAFKA-14136).
    let (_, records) = h.state.handle(
        ControllerRequest::AlterConfigs {
            resources: vec![AlterConfigsResource {
                resource: ConfigResource::Broker("1".into()),
                changes: vec![ConfigChange {
                    key: "min.insync.replicas".into(),
                    op: ConfigOp::Set,
                    value: Some("1".into()),
                }],
            }],
            replace_all: false,
            validate_only: false,
        },
        0,
    );
    assert_eq!(records.len(), 1);
    assert_eq!(
        code(alter(
            &mut h,
            ConfigResource::Broker("x".into()),
            &[],
            false
        )),
        Some(42)
    );
    assert_eq!(
        code(alter(
            &mut h,
            ConfigResource::Broker("-2".into()),
            &[],
            false
        )),
        Some(42)
    );
    assert_eq!(
        code(alter(
            &mut h,
            ConfigResource::Broker("".into()),
            &set("log.dirs", "/x"),
            false
        )),
        Some(40)
    );
    alter(&mut h, ConfigResource::Broker("".into()), &[], true).unwrap();
    assert!(
        h.state.image().broker_configs(None).is_none(),
        "replace-all with nothing clears"
    );
}

#[test]
fn producer_id_blocks_are_consecutive_and_need_a_current_epoch() {
    let mut h = one_broker();
    let epoch = h.epochs[&1];
    let alloc = |h: &mut Harness, e| match h.handle(ControllerRequest::AllocateProducerIds {
        broker_id: 1,
        broker_epoch: e,
    }) {
        ControllerReply::AllocateProducerIds(r) => r,
        r => panic!("{r:?}"),
    };
    let a = alloc(&mut h, epoch).unwrap();
    let b = alloc(&mut h, epoch).unwrap();
    assert_eq!((a.start, a.len, b.start), (0, PRODUCER_ID_BLOCK_SIZE, 1000));
    assert_eq!(code(alloc(&mut h, epoch + 1)), Some(77));
    assert_eq!(
        h.replayed().next_producer_id_block(),
        2000,
        "survives a restart"
    );
}
