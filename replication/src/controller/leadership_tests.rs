//! Preferred leadership: ElectLeaders on demand, and leader rebalancing
//! (`auto.leader.rebalance.enable`): leadership goes back to the preferred replica where it is
//! an acceptable ISR member, and nowhere else.

use super::super::testkit::*;
use super::super::*;
use crate::metadata::records::{DiscardedRange, PartitionChangeRecord, UncleanReport};

fn three_brokers() -> Harness {
    let mut h = Harness::new(config());
    for id in 1..=3 {
        h.join(id);
    }
    h
}

/// Moves leadership of `topic`-`p` to its second replica, keeping the ISR (what a fencing and
/// the preferred replica's return leave behind).
fn lead_by_second(h: &mut Harness, topic: &str, p: usize) {
    let topic_id = h.state.image().topic(topic).unwrap().id;
    let second = h.partition(topic, p).replicas[1];
    h.commit(vec![MetadataRecord::PartitionChange(
        PartitionChangeRecord {
            topic_id,
            partition: p as i32,
            leader: Some(second),
            isr: None,
            elr: None,
            last_known_elr: None,
            replicas: None,
        },
    )]);
}

fn balance(h: &mut Harness) -> (usize, bool) {
    let (records, more) = h.state.balance_leaders(h.now);
    let n = records.len();
    h.commit(records);
    (n, more)
}

#[test]
fn leadership_returns_to_the_preferred_replica_in_the_isr() {
    let mut h = three_brokers();
    h.create("t", 3, 3, &[]).unwrap();
    assert!(!h.state.leaders_imbalanced());
    assert_eq!(balance(&mut h), (0, false));
    for p in 0..3 {
        lead_by_second(&mut h, "t", p);
    }
    let before: Vec<_> = (0..3).map(|p| h.partition("t", p)).collect();
    assert!(h.state.leaders_imbalanced());
    assert_eq!(balance(&mut h), (3, false));
    for (p, b) in before.iter().enumerate() {
        let now = h.partition("t", p);
        assert_eq!(now.leader, now.replicas[0]);
        assert_eq!(now.leader_epoch, b.leader_epoch + 1, "a new leader epoch");
        assert_eq!(now.isr, b.isr, "the ISR is left alone");
        assert!(now.last_unclean_election.is_none());
    }
    assert!(!h.state.leaders_imbalanced());
    assert_eq!(balance(&mut h), (0, false), "nothing left to do");
    assert_eq!(h.state.image(), &h.replayed());
}

#[test]
fn a_preferred_replica_outside_the_isr_or_unavailable_does_not_lead() {
    let mut h = three_brokers();
    h.create("t", 1, 3, &[]).unwrap();
    let preferred = h.partition("t", 0).replicas[0];
    // Fenced: it leaves the ISR and leadership moves away.
    h.heartbeat_with(preferred, true, false).unwrap();
    let p = h.partition("t", 0);
    assert_ne!(p.leader, preferred);
    assert!(!p.isr.contains(&preferred));
    assert_eq!(balance(&mut h), (0, false), "fenced and out of the ISR");
    // Back and unfenced, but not caught up (not in the ISR): still not.
    h.heartbeat(preferred).unwrap();
    assert!(h.state.image().is_active(preferred));
    assert_eq!(balance(&mut h), (0, false), "not in the ISR");
    assert!(h.state.leaders_imbalanced());
    // In the ISR again but shutting down: still not.
    let topic_id = h.state.image().topic("t").unwrap().id;
    h.commit(vec![MetadataRecord::PartitionChange(
        PartitionChangeRecord {
            topic_id,
            partition: 0,
            leader: None,
            isr: Some(p.replicas.clone()),
            elr: None,
            last_known_elr: None,
            replicas: None,
        },
    )]);
    h.heartbeat_with(preferred, false, true).unwrap();
    assert_eq!(balance(&mut h), (0, false), "in controlled shutdown");
}

#[test]
fn offline_partitions_are_not_the_rebalancers_business() {
    let mut h = three_brokers();
    h.create("t", 1, 1, &[]).unwrap();
    let only = h.partition("t", 0).replicas[0];
    h.heartbeat_with(only, true, false).unwrap();
    assert_eq!(h.partition("t", 0).leader, crate::types::NO_NODE);
    assert!(!h.state.leaders_imbalanced());
    assert_eq!(balance(&mut h), (0, false));
}

#[test]
fn at_most_a_bounded_number_of_elections_per_round() {
    let mut h = three_brokers();
    let n = MAX_ELECTIONS_PER_TICK + 5;
    h.create("big", n as i32, 2, &[]).unwrap();
    for p in 0..n {
        lead_by_second(&mut h, "big", p);
    }
    assert_eq!(balance(&mut h), (MAX_ELECTIONS_PER_TICK, true));
    assert_eq!(balance(&mut h), (5, false));
    assert!(!h.state.leaders_imbalanced());
}

#[test]
fn only_the_active_controller_rebalances() {
    let mut h = three_brokers();
    h.create("t", 1, 3, &[]).unwrap();
    lead_by_second(&mut h, "t", 0);
    h.state.deactivate();
    assert_eq!(balance(&mut h), (0, false));
}

fn elect(
    h: &mut Harness,
    election_type: ElectionType,
    partitions: Option<Vec<TopicPartitions>>,
) -> Vec<ElectionTopicResult> {
    match h.handle(ControllerRequest::ElectLeaders(ElectLeadersRequest {
        election_type,
        partitions,
    })) {
        ControllerReply::ElectLeaders(Ok(r)) => r,
        other => panic!("{other:?}"),
    }
}

fn codes(r: &[ElectionTopicResult]) -> Vec<(String, i32, i16)> {
    r.iter()
        .flat_map(|t| {
            t.partitions.iter().map(|p| {
                let code = p.result.as_ref().err().map_or(0, |e| e.kafka_code());
                (t.topic.clone(), p.partition, code)
            })
        })
        .collect()
}

#[test]
fn a_partition_named_twice_is_refused_at_every_mention_and_not_elected() {
    let mut h = three_brokers();
    h.create("t", 2, 3, &[]).unwrap();
    lead_by_second(&mut h, "t", 0);
    lead_by_second(&mut h, "t", 1);
    let before = h.partition("t", 0);
    let r = elect(
        &mut h,
        ElectionType::Preferred,
        Some(vec![
            TopicPartitions {
                topic: "t".into(),
                partitions: vec![0, 1],
            },
            TopicPartitions {
                topic: "t".into(),
                partitions: vec![0],
            },
        ]),
    );
    assert_eq!(
        codes(&r),
        vec![("t".into(), 0, 42), ("t".into(), 1, 0), ("t".into(), 0, 42)]
    );
    assert_eq!(h.partition("t", 0), before, "not elected");
    let p1 = h.partition("t", 1);
    assert_eq!(p1.leader, p1.replicas[0]);
}

#[test]
fn electing_every_partition_answers_only_those_that_needed_an_election() {
    let mut h = three_brokers();
    h.create("a", 3, 3, &[]).unwrap();
    h.create("b", 1, 3, &[]).unwrap();
    lead_by_second(&mut h, "a", 1);
    let r = elect(&mut h, ElectionType::Preferred, None);
    // Every topic is listed; only a-1 had something to do.
    assert_eq!(codes(&r), vec![("a".into(), 1, 0)]);
    assert_eq!(
        r.iter().map(|t| t.topic.as_str()).collect::<Vec<_>>(),
        ["a", "b"]
    );
    assert!(!h.state.leaders_imbalanced());
    // Nothing to do for an unclean election of led partitions: an empty answer per topic.
    let r = elect(&mut h, ElectionType::Unclean, None);
    assert!(codes(&r).is_empty());
}

fn report(
    h: &mut Harness,
    broker: NodeId,
    election_epoch: i32,
    report: UncleanReport,
) -> Result<usize, ControllerError> {
    let topic_id = h.state.image().topic("t").unwrap().id;
    let before = h.log.len();
    match h.handle(ControllerRequest::ReportUnclean(UncleanReportRequest {
        broker_id: broker,
        broker_epoch: h.epochs[&broker],
        topic_id,
        partition: 0,
        election_epoch,
        report,
    })) {
        ControllerReply::ReportUnclean(r) => r.map(|()| h.log.len() - before),
        other => panic!("{other:?}"),
    }
}

fn range(from: i64, to: i64, hw: i64, epochs: &[(i32, i64)]) -> UncleanReport {
    UncleanReport::Discarded(DiscardedRange {
        from_offset: from,
        to_offset: to,
        high_watermark: hw,
        epochs: epochs.to_vec(),
        time_ms: 5,
    })
}

#[test]
fn replicas_report_what_an_unclean_election_discarded() {
    let mut h = three_brokers();
    h.create("t", 1, 3, &[]).unwrap();
    let replicas = h.partition("t", 0).replicas.clone();
    let (a, b, c) = (replicas[0], replicas[1], replicas[2]);
    // Everyone fenced, the ISR keeps the last member; c comes back alone and is elected on
    // demand, uncleanly.
    for id in [c, b, a] {
        h.heartbeat_with(id, true, false).unwrap();
    }
    assert_eq!(h.partition("t", 0).leader, crate::types::NO_NODE);
    h.heartbeat(c).unwrap();
    assert_eq!(h.partition("t", 0).leader, crate::types::NO_NODE);
    let r = elect(
        &mut h,
        ElectionType::Unclean,
        Some(vec![TopicPartitions {
            topic: "t".into(),
            partitions: vec![0],
        }]),
    );
    assert_eq!(codes(&r), vec![("t".into(), 0, 0)]);
    let p = h.partition("t", 0);
    assert_eq!(p.leader, c);
    let epoch = p.leader_epoch;
    let u = p.last_unclean_election.clone().unwrap();
    assert_eq!(
        (u.leader, u.leader_epoch, u.leader_log_end),
        (c, epoch, None)
    );

    // The new leader's log end: once, from the leader only.
    assert_eq!(
        report(&mut h, c, epoch, UncleanReport::LeaderLogEnd(120)),
        Ok(1)
    );
    assert_eq!(
        report(&mut h, c, epoch, UncleanReport::LeaderLogEnd(120)),
        Ok(0)
    );
    assert_eq!(
        report(&mut h, b, epoch, UncleanReport::LeaderLogEnd(7)).map_err(|e| e.kafka_code()),
        Err(42)
    );
    // The old leader returns and truncates in two rounds (epoch by epoch): one merged loss.
    assert_eq!(
        report(&mut h, a, epoch, range(150, 200, 190, &[(1, 150)])),
        Ok(1)
    );
    assert_eq!(
        report(&mut h, a, epoch, range(120, 150, 150, &[(0, 120)])),
        Ok(1)
    );
    assert_eq!(
        report(&mut h, a, epoch, range(120, 200, 190, &[(0, 120)])),
        Ok(0),
        "known"
    );
    assert_eq!(
        report(&mut h, b, epoch, range(120, 130, 125, &[(0, 120)])),
        Ok(1)
    );
    let u = h.partition("t", 0).last_unclean_election.unwrap();
    assert_eq!(u.leader_log_end, Some(120));
    assert_eq!(
        u.discarded,
        vec![
            (
                a,
                DiscardedRange {
                    from_offset: 120,
                    to_offset: 200,
                    high_watermark: 190,
                    epochs: vec![(0, 120), (1, 150)],
                    time_ms: 5,
                }
            ),
            (
                b,
                DiscardedRange {
                    from_offset: 120,
                    to_offset: 130,
                    high_watermark: 125,
                    epochs: vec![(0, 120)],
                    time_ms: 5,
                }
            ),
        ]
    );
    // Nonsense is refused: empty or negative ranges, epochs not older than the election or
    // not covering the range from its start, another election, a stale broker epoch.
    for bad in [
        range(130, 130, 0, &[(0, 130)]),
        range(-1, 10, 0, &[(0, -1)]),
        range(120, 200, 0, &[(epoch, 120)]),
        range(120, 200, 0, &[(0, 121)]),
        range(120, 200, 0, &[]),
        range(120, 200, 0, &[(0, 120), (1, 120)]),
    ] {
        assert_eq!(
            report(&mut h, a, epoch, bad).map_err(|e| e.kafka_code()),
            Err(42)
        );
    }
    assert_eq!(
        report(&mut h, a, epoch - 1, range(0, 10, 0, &[(0, 0)])).map_err(|e| e.kafka_code()),
        Err(74)
    );
    h.epochs.insert(a, 999);
    assert_eq!(
        report(&mut h, a, epoch, range(0, 10, 0, &[(0, 0)])).map_err(|e| e.kafka_code()),
        Err(77)
    );
    assert_eq!(h.state.image(), &h.replayed());
}
