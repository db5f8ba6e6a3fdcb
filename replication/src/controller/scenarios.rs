//! The cluster's life as sequences: brokers join, lose their sessions, come back, shut down;
//! leaders and ISRs follow.

use super::testkit::*;
use super::*;
use crate::metadata::image::PartitionMeta;
use crate::types::NO_NODE;

fn three_brokers() -> Harness {
    let mut h = Harness::new(config());
    for id in 1..=3 {
        h.join(id);
    }
    h
}

/// Heartbeats from `alive` only, up to `until` ms, ticking as the controller does.
fn run_until(h: &mut Harness, until: i64, alive: &[NodeId]) {
    while h.now < until {
        h.now += 1000;
        for id in alive {
            h.heartbeat(*id).unwrap();
        }
        h.settle();
    }
}

fn alter_isr(
    h: &mut Harness,
    leader: NodeId,
    topic: &str,
    p: &PartitionMeta,
    isr: &[NodeId],
) -> Result<PartitionState, ControllerError> {
    let topic_id = h.state.image().topic(topic).unwrap().id;
    let req = AlterPartitionRequest {
        broker_id: leader,
        broker_epoch: h.epochs[&leader],
        topics: vec![AlterPartitionTopic {
            topic_id,
            partitions: vec![AlterPartitionItem {
                partition: 0,
                leader_epoch: p.leader_epoch,
                partition_epoch: p.partition_epoch,
                new_isr: isr
                    .iter()
                    .map(|b| IsrMember {
                        broker_id: *b,
                        broker_epoch: h.epochs[b],
                    })
                    .collect(),
            }],
        }],
    };
    match h.handle(ControllerRequest::AlterPartition(req)) {
        ControllerReply::AlterPartition(Ok(mut t)) => t.remove(0).partitions.remove(0).result,
        other => panic!("{other:?}"),
    }
}

#[test]
fn brokers_register_fenced_and_are_unfenced_once_caught_up() {
    let mut h = Harness::new(config());
    let epoch = h.register_as(1, 1, -1).unwrap();
    assert!(h.state.image().broker(1).unwrap().fenced);
    // Behind its own registration: stays fenced.
    let hb = BrokerHeartbeat {
        broker_id: 1,
        broker_epoch: epoch,
        current_metadata_offset: h.state.applied_offset() - 1,
        want_fence: false,
        want_shutdown: false,
    };
    match h.handle(ControllerRequest::BrokerHeartbeat(hb)) {
        ControllerReply::BrokerHeartbeat(Ok(r)) => assert!(r.is_fenced && !r.is_caught_up),
        other => panic!("{other:?}"),
    }
    let r = h.heartbeat(1).unwrap();
    assert!(r.is_caught_up && !r.is_fenced && !r.should_shutdown);
    assert!(h.state.image().is_active(1));
    let second = h.register_as(2, 2, -1).unwrap();
    assert!(second > epoch, "every registration gets a new epoch");
}

#[test]
fn a_topic_with_rf_3_spreads_replicas_and_leaders() {
    let mut h = three_brokers();
    let t = h.create("orders", 3, 3, &[]).unwrap();
    assert_eq!((t.num_partitions, t.replication_factor), (3, 3));
    let leaders: Vec<_> = (0..3).map(|p| h.partition("orders", p).leader).collect();
    assert_eq!(leaders, vec![1, 2, 3]);
    for p in 0..3 {
        let part = h.partition("orders", p);
        assert_eq!(part.isr, part.replicas);
        assert_eq!(part.leader, part.replicas[0]);
        assert_eq!((part.leader_epoch, part.partition_epoch), (0, 0));
    }
}

#[test]
fn a_silent_leader_is_fenced_and_an_isr_member_takes_over() {
    let mut h = three_brokers();
    h.create("t", 1, 3, &[]).unwrap();
    assert_eq!(h.partition("t", 0).leader, 1);
    // Broker 1 stops heartbeating; the others keep going.
    run_until(&mut h, SESSION_MS + 2000, &[2, 3]);
    let p = h.partition("t", 0);
    assert!(h.state.image().broker(1).unwrap().fenced);
    assert_eq!(p.leader, 2, "next ISR member in replica order");
    assert_eq!(p.isr, vec![2, 3]);
    assert_eq!(p.leader_epoch, 1);
    assert!(p.partition_epoch >= 1);
    // It comes back: fenced until caught up, then unfenced; leadership stays where it is.
    h.heartbeat(1).unwrap();
    assert!(h.state.image().is_active(1));
    assert_eq!(h.partition("t", 0).leader, 2);
    assert_eq!(h.state.image(), &h.replayed());
}

#[test]
fn fencing_every_replica_keeps_the_last_isr_member_and_it_leads_again() {
    let mut h = three_brokers();
    h.create("t", 1, 3, &[]).unwrap();
    run_until(&mut h, SESSION_MS + 2000, &[3]);
    assert_eq!(h.partition("t", 0).leader, 3);
    run_until(&mut h, 3 * SESSION_MS, &[]);
    let p = h.partition("t", 0);
    assert_eq!(p.leader, NO_NODE, "offline");
    assert_eq!(p.isr, vec![3], "the last ISR member stays");
    let epoch = p.leader_epoch;
    // Broker 1 returns first: not in the ISR, no unclean elections: still offline.
    h.heartbeat(1).unwrap();
    assert_eq!(h.partition("t", 0).leader, NO_NODE);
    // Broker 3 returns: it leads again, cleanly.
    h.heartbeat(3).unwrap();
    let p = h.partition("t", 0);
    assert_eq!((p.leader, p.isr.clone()), (3, vec![3]));
    assert_eq!(p.leader_epoch, epoch + 1);
    assert!(p.last_unclean_election.is_none());
}

#[test]
fn alter_partition_checks_epochs_leadership_and_eligibility() {
    let mut h = three_brokers();
    h.create("t", 1, 3, &[]).unwrap();
    let p = h.partition("t", 0);
    let shrunk = alter_isr(&mut h, 1, "t", &p, &[1, 2]).unwrap();
    assert_eq!(shrunk.isr, vec![1, 2]);
    assert_eq!(
        shrunk.leader_epoch, p.leader_epoch,
        "same leader, same epoch"
    );
    assert_eq!(shrunk.partition_epoch, p.partition_epoch + 1);
    // The same proposal again carries a stale partition epoch.
    let e = alter_isr(&mut h, 1, "t", &p, &[1, 2, 3]).unwrap_err();
    assert_eq!(e.kafka_code(), 95, "INVALID_UPDATE_VERSION: {e}");
    let now = h.partition("t", 0);
    let e = alter_isr(&mut h, 2, "t", &now, &[1, 2]).unwrap_err();
    assert_eq!(e.kafka_code(), 6, "not the leader: {e}");
    let e = alter_isr(&mut h, 1, "t", &now, &[2, 3]).unwrap_err();
    assert_eq!(e.kafka_code(), 42, "the ISR must hold the leader: {e}");
    // Broker 3 fenced: it cannot join.
    h.heartbeat_with(3, true, false).unwrap();
    let e = alter_isr(&mut h, 1, "t", &now, &[1, 2, 3]).unwrap_err();
    assert_eq!(e.kafka_code(), 107, "INELIGIBLE_REPLICA: {e}");
    // An older incarnation's epoch for an ISR member.
    h.heartbeat(3).unwrap();
    let now = h.partition("t", 0);
    let real = h.epochs[&3];
    h.epochs.insert(3, real - 1);
    let e = alter_isr(&mut h, 1, "t", &now, &[1, 2, 3]).unwrap_err();
    assert!(e.message().contains("broker epoch mismatch"), "{e}");
    h.epochs.insert(3, real);
    assert_eq!(
        alter_isr(&mut h, 1, "t", &now, &[1, 2, 3]).unwrap().isr,
        vec![1, 2, 3]
    );
    // After a leader change, a proposal made under the old leader epoch is fenced.
    let before = h.partition("t", 0);
    h.heartbeat_with(1, true, false).unwrap();
    let after = h.partition("t", 0);
    assert_eq!(
        (after.leader, after.leader_epoch),
        (2, before.leader_epoch + 1)
    );
    let mut stale = after.clone();
    stale.leader_epoch = before.leader_epoch;
    let e = alter_isr(&mut h, 2, "t", &stale, &[2, 3]).unwrap_err();
    assert_eq!(e.kafka_code(), 74, "FENCED_LEADER_EPOCH: {e}");
    let mut ahead = after.clone();
    ahead.partition_epoch += 1;
    let e = alter_isr(&mut h, 2, "t", &ahead, &[2, 3]).unwrap_err();
    assert_eq!(e.kafka_code(), 41, "newer than the controller: {e}");
    h.heartbeat(1).unwrap();
    // A leader with a stale broker epoch is refused as a whole.
    let real = h.epochs[&1];
    h.epochs.insert(1, real + 5);
    let now = h.partition("t", 0);
    let topic_id = h.state.image().topic("t").unwrap().id;
    let req = AlterPartitionRequest {
        broker_id: 1,
        broker_epoch: real + 5,
        topics: vec![AlterPartitionTopic {
            topic_id,
            partitions: vec![AlterPartitionItem {
                partition: 0,
                leader_epoch: now.leader_epoch,
                partition_epoch: now.partition_epoch,
                new_isr: vec![],
            }],
        }],
    };
    match h.handle(ControllerRequest::AlterPartition(req)) {
        ControllerReply::AlterPartition(Err(e)) => assert_eq!(e.kafka_code(), 77),
        other => panic!("{other:?}"),
    }
}

#[test]
fn an_isr_below_min_isr_builds_the_elr_and_an_elr_member_leads_cleanly() {
    let mut h = three_brokers();
    h.create("t", 1, 3, &[("min.insync.replicas", "2")])
        .unwrap();
    let p = h.partition("t", 0);
    alter_isr(&mut h, 1, "t", &p, &[1, 2]).unwrap();
    assert!(h.partition("t", 0).elr.is_empty(), "still at min ISR");
    let p = h.partition("t", 0);
    alter_isr(&mut h, 1, "t", &p, &[1]).unwrap();
    let p = h.partition("t", 0);
    assert_eq!((p.isr.clone(), p.elr.clone()), (vec![1], vec![2]));
    // The followers go silent, then the leader; broker 2 (ELR) returns first and leads
    // without loss.
    run_until(&mut h, SESSION_MS + 2000, &[1]);
    assert_eq!(h.partition("t", 0).leader, 1);
    run_until(&mut h, 3 * SESSION_MS, &[]);
    let p = h.partition("t", 0);
    assert_eq!(
        (p.leader, p.isr.clone(), p.elr.clone()),
        (NO_NODE, vec![1], vec![2])
    );
    h.heartbeat(2).unwrap();
    let p = h.partition("t", 0);
    assert_eq!(p.leader, 2);
    assert_eq!(p.isr, vec![2]);
    assert_eq!(p.elr, vec![1], "the old ISR member is eligible too");
    assert!(p.last_unclean_election.is_none());
    // Back at min ISR, the ELR clears.
    h.heartbeat(1).unwrap();
    let p = h.partition("t", 0);
    alter_isr(&mut h, 2, "t", &p, &[2, 1]).unwrap();
    assert!(h.partition("t", 0).elr.is_empty());
}

#[test]
fn unclean_elections_follow_the_topic_then_the_dynamic_broker_config() {
    let mut h = three_brokers();
    h.create("t", 1, 3, &[]).unwrap();
    let p = h.partition("t", 0);
    alter_isr(&mut h, 1, "t", &p, &[1]).unwrap();
    run_until(&mut h, 2 * SESSION_MS, &[2, 3]);
    assert_eq!(h.partition("t", 0).leader, NO_NODE, "disabled by default");
    // The cluster-wide dynamic default turns it on: the next tick elects.
    let set = |resource: ConfigResource, v: &str| ControllerRequest::AlterConfigs {
        resources: vec![AlterConfigsResource {
            resource,
            changes: vec![ConfigChange {
                key: "unclean.leader.election.enable".into(),
                op: ConfigOp::Set,
                value: Some(v.into()),
            }],
        }],
        replace_all: false,
        validate_only: false,
    };
    // ... unless the topic says no.
    h.handle(set(ConfigResource::Topic("t".into()), "false"));
    h.handle(set(ConfigResource::Broker("".into()), "true"));
    h.settle();
    assert_eq!(
        h.partition("t", 0).leader,
        NO_NODE,
        "the topic's false wins"
    );
    h.handle(ControllerRequest::AlterConfigs {
        resources: vec![AlterConfigsResource {
            resource: ConfigResource::Topic("t".into()),
            changes: vec![ConfigChange {
                key: "unclean.leader.election.enable".into(),
                op: ConfigOp::Delete,
                value: None,
            }],
        }],
        replace_all: false,
        validate_only: false,
    });
    h.settle();
    let p = h.partition("t", 0);
    assert_eq!(p.leader, 2);
    assert_eq!(p.isr, vec![2]);
    let u = p.last_unclean_election.clone().unwrap();
    assert_eq!(
        (u.leader, u.leader_epoch, u.replaced_isr),
        (2, p.leader_epoch, vec![1])
    );
    assert_eq!(h.state.image(), &h.replayed());
}

#[test]
fn elect_leaders_unclean_and_preferred() {
    let mut h = three_brokers();
    h.create("t", 1, 2, &[]).unwrap();
    let replicas = h.partition("t", 0).replicas.clone();
    let (first, second) = (replicas[0], replicas[1]);
    let elect = |h: &mut Harness, election_type| {
        let req = ElectLeadersRequest {
            election_type,
            partitions: Some(vec![TopicPartitions {
                topic: "t".into(),
                partitions: vec![0, 9],
            }]),
        };
        match h.handle(ControllerRequest::ElectLeaders(req)) {
            ControllerReply::ElectLeaders(Ok(mut r)) => {
                let t = r.remove(0);
                assert_eq!(t.partitions[1].result.as_ref().unwrap_err().kafka_code(), 3);
                t.partitions[0].result.clone()
            }
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(
        elect(&mut h, ElectionType::Preferred)
            .unwrap_err()
            .kafka_code(),
        84
    );
    assert_eq!(
        elect(&mut h, ElectionType::Unclean)
            .unwrap_err()
            .kafka_code(),
        84
    );
    // The preferred leader's broker is fenced: leadership moves to the other replica.
    h.heartbeat_with(first, true, false).unwrap();
    assert_eq!(h.partition("t", 0).leader, second);
    assert_eq!(
        elect(&mut h, ElectionType::Preferred)
            .unwrap_err()
            .kafka_code(),
        80
    );
    // It returns, catches up, rejoins the ISR: a preferred election moves leadership back.
    h.heartbeat(first).unwrap();
    let p = h.partition("t", 0);
    alter_isr(&mut h, second, "t", &p, &[second, first]).unwrap();
    assert_eq!(elect(&mut h, ElectionType::Preferred), Ok(()));
    assert_eq!(h.partition("t", 0).leader, first);
    // Second fenced and shrunk out; then first fenced: offline with ISR [first].
    h.heartbeat_with(second, true, false).unwrap();
    h.heartbeat_with(first, true, false).unwrap();
    assert_eq!(h.partition("t", 0).leader, NO_NODE);
    h.heartbeat(second).unwrap();
    assert_eq!(h.partition("t", 0).leader, NO_NODE);
    // An explicit unclean election takes the live replica whatever the config says.
    assert_eq!(elect(&mut h, ElectionType::Unclean), Ok(()));
    let p = h.partition("t", 0);
    assert_eq!((p.leader, p.isr.clone()), (second, vec![second]));
    assert!(p.last_unclean_election.is_some());
    // Nobody live at all: ELIGIBLE_LEADERS_NOT_AVAILABLE.
    h.heartbeat_with(second, true, false).unwrap();
    assert_eq!(
        elect(&mut h, ElectionType::Unclean)
            .unwrap_err()
            .kafka_code(),
        83
    );
}

#[test]
fn controlled_shutdown_moves_leaders_away_before_letting_the_broker_go() {
    let mut h = three_brokers();
    h.create("t", 3, 2, &[]).unwrap();
    h.create("solo", 1, 1, &[]).unwrap();
    let led_by_1 = |h: &Harness| {
        h.state
            .image()
            .topics()
            .flat_map(|t| t.partitions.iter())
            .filter(|p| p.leader == 1)
            .count()
    };
    assert!(led_by_1(&h) > 0);
    let r = h.heartbeat_with(1, false, true).unwrap();
    assert!(r.in_controlled_shutdown && !r.should_shutdown && !r.is_fenced);
    assert_eq!(led_by_1(&h), 0, "leaderships moved");
    for t in h.state.image().topics() {
        for p in &t.partitions {
            assert!(
                !p.isr.contains(&1) || p.isr == vec![1],
                "left every ISR it could"
            );
        }
    }
    // Broker 1 cannot rejoin an ISR while shutting down.
    assert!(h.state.image().broker(1).unwrap().in_controlled_shutdown);
    // The others have not reported applying the moves yet: wait.
    let r = h.heartbeat_with(1, false, true).unwrap();
    assert!(!r.should_shutdown);
    h.heartbeat(2).unwrap();
    h.heartbeat(3).unwrap();
    let r = h.heartbeat_with(1, false, true).unwrap();
    assert!(r.should_shutdown && r.is_fenced);
    assert!(h.state.image().broker(1).unwrap().fenced);
    // A clean restart keeps its place as the last ISR member of its RF=1 partitions.
    let old = h.epochs[&1];
    let new = h.register_as(1, 42, old).unwrap();
    assert!(new > old);
    h.heartbeat(1).unwrap();
    for t in h.state.image().topics() {
        for p in &t.partitions {
            assert!(p.leader != NO_NODE, "{} offline", t.name);
        }
    }
    assert_eq!(h.state.image(), &h.replayed());
}

#[test]
fn a_broker_without_leaderships_shuts_down_at_once() {
    let mut h = three_brokers();
    let r = h.heartbeat_with(2, false, true).unwrap();
    assert!(r.should_shutdown && r.is_fenced);
}

#[test]
fn registrations_refuse_duplicates_stale_epochs_and_other_clusters() {
    let mut h = three_brokers();
    let e = h.register_as(2, 99, -1).unwrap_err();
    assert_eq!(e.kafka_code(), 101, "DUPLICATE_BROKER_REGISTRATION: {e}");
    // The same process re-registering (same incarnation) keeps its epoch.
    let epoch = h.epochs[&2];
    assert_eq!(h.register_as(2, 2, -1).unwrap(), epoch);
    // A heartbeat from an older epoch.
    let real = h.epochs[&3];
    h.epochs.insert(3, real - 1);
    assert_eq!(h.heartbeat(3).unwrap_err().kafka_code(), 77);
    h.epochs.insert(3, real);
    assert_eq!(
        h.heartbeat(9).unwrap_err().kafka_code(),
        77,
        "never registered"
    );
    // Once its session expired, a new incarnation may take the id, with a new epoch.
    run_until(&mut h, SESSION_MS + 2000, &[1, 3]);
    let new = h.register_as(2, 99, -1).unwrap();
    assert!(new > epoch);
    let mut other = Harness::registration(4, 4, -1);
    if let ControllerRequest::RegisterBroker(r) = &mut other {
        r.cluster_id = "elsewhere".into();
    }
    match h.handle(other) {
        ControllerReply::RegisterBroker(Err(e)) => assert_eq!(e.kafka_code(), 104),
        r => panic!("{r:?}"),
    }
}

#[test]
fn an_unclean_restart_leaves_isrs_and_elrs_and_a_clean_one_does_not() {
    let mut h = three_brokers();
    h.create("t", 1, 3, &[("min.insync.replicas", "3")])
        .unwrap();
    run_until(&mut h, SESSION_MS + 2000, &[1, 2]);
    let p = h.partition("t", 0);
    assert_eq!((p.isr.clone(), p.elr.clone()), (vec![1, 2], vec![3]));
    // 3 restarts without a clean shutdown: out of the ELR.
    h.register_as(3, 33, -1).unwrap();
    assert!(h.partition("t", 0).elr.is_empty());
    // 2 restarts cleanly after being fenced: stays in the ISR... (fenced first)
    run_until(&mut h, 3 * SESSION_MS, &[1, 3]);
    let p = h.partition("t", 0);
    assert_eq!(p.isr, vec![1]);
    assert_eq!(p.elr, vec![2]);
    let old = h.epochs[&2];
    h.register_as(2, 22, old).unwrap();
    assert_eq!(h.partition("t", 0).elr, vec![2], "clean: still eligible");
    // 1, the leader, restarts uncleanly while its old session is still alive... refused,
    // then after its session expires, accepted and removed from the ISR.
    assert!(h.register_as(1, 11, -1).is_err());
    run_until(&mut h, 5 * SESSION_MS, &[3]);
    h.register_as(1, 11, -1).unwrap();
    let p = h.partition("t", 0);
    assert!(p.isr.is_empty(), "{p:?}");
    assert_eq!(p.leader, NO_NODE);
    // 2 (ELR, clean) comes back first and leads without loss.
    h.heartbeat(2).unwrap();
    let p = h.partition("t", 0);
    assert_eq!((p.leader, p.isr.clone()), (2, vec![2]));
    assert!(p.last_unclean_election.is_none());
    assert_eq!(h.state.image(), &h.replayed());
}

#[test]
fn unregistering_a_broker_removes_it_from_isrs_and_the_image() {
    let mut h = three_brokers();
    h.create("t", 1, 3, &[]).unwrap();
    match h.handle(ControllerRequest::UnregisterBroker { broker_id: 1 }) {
        ControllerReply::UnregisterBroker(Ok(())) => {}
        r => panic!("{r:?}"),
    }
    assert!(h.state.image().broker(1).is_none());
    let p = h.partition("t", 0);
    assert_eq!((p.leader, p.isr.clone()), (2, vec![2, 3]));
    match h.handle(ControllerRequest::UnregisterBroker { broker_id: 1 }) {
        ControllerReply::UnregisterBroker(Err(e)) => assert_eq!(e.kafka_code(), 102),
        r => panic!("{r:?}"),
    }
}

#[test]
fn a_new_active_controller_gives_every_broker_a_fresh_session() {
    let mut h = three_brokers();
    h.create("t", 1, 3, &[]).unwrap();
    h.state.deactivate();
    assert_eq!(h.state.tick(h.now + 100 * SESSION_MS), vec![]);
    match h
        .state
        .handle(ControllerRequest::UnregisterBroker { broker_id: 1 }, 0)
    {
        (ControllerReply::UnregisterBroker(Err(e)), r) => {
            assert_eq!(e.kafka_code(), 41);
            assert!(r.is_empty());
        }
        r => panic!("{r:?}"),
    }
    // Long after everyone's last heartbeat, a new controller takes over: nobody is fenced
    // until a full session passes without a heartbeat.
    h.now += 10 * SESSION_MS;
    h.state.activate(h.now);
    assert_eq!(h.tick(), 0);
    h.now += SESSION_MS - 1;
    assert_eq!(h.tick(), 0);
    h.now += 2;
    h.settle();
    assert!(h.state.image().brokers().all(|b| b.fenced));
}

#[test]
fn a_controller_restored_from_a_snapshot_continues_the_log() {
    let mut h = three_brokers();
    h.create("t", 2, 3, &[]).unwrap();
    let bytes = crate::metadata::snapshot::encode(h.state.image());
    let offset = h.state.applied_offset();
    let mut restored = ControllerState::new(config(), Box::new(TestValidator), 9);
    restored.restore(crate::metadata::snapshot::decode(&bytes).unwrap(), offset);
    assert_eq!(restored.image(), h.state.image());
    restored.activate(h.now);
    // The restored controller decides as the original would: heartbeats see brokers caught up.
    h.state = restored;
    assert!(!h.heartbeat(1).unwrap().is_fenced);
    let until = h.now + SESSION_MS + 2000;
    run_until(&mut h, until, &[2, 3]);
    assert_eq!(h.partition("t", 0).leader, 2);
}

/// KIP-966 (Kafka's `createClearElrRecordsAsNeeded`): changing `min.insync.replicas` empties
/// the ELR. Broker 2 left the ISR below the old minimum; with the new one, leader 1 alone
/// commits again without it, so 2 must not then lead cleanly (found by the replication
/// simulator, seed 173).
#[test]
fn a_min_isr_change_clears_the_elr() {
    let mut h = three_brokers();
    h.create("t", 1, 3, &[("min.insync.replicas", "2")])
        .unwrap();
    let p = h.partition("t", 0);
    alter_isr(&mut h, 1, "t", &p, &[1]).unwrap();
    assert_eq!(h.partition("t", 0).elr, vec![2, 3]);
    let set = |resource: ConfigResource| ControllerRequest::AlterConfigs {
        resources: vec![AlterConfigsResource {
            resource,
            changes: vec![ConfigChange {
                key: "min.insync.replicas".into(),
                op: ConfigOp::Set,
                value: Some("1".into()),
            }],
        }],
        replace_all: false,
        validate_only: false,
    };
    h.handle(set(ConfigResource::Topic("t".into())));
    let p = h.partition("t", 0);
    assert!(p.elr.is_empty() && p.last_known_elr.is_empty(), "{p:?}");
    // The leader goes silent: no clean candidate is left.
    run_until(&mut h, 2 * SESSION_MS, &[2, 3]);
    assert_eq!(h.partition("t", 0).leader, NO_NODE);
}
