//! Random sequences of requests, heartbeats, time passing and controller failovers never
//! break the image's invariants, and replaying the committed log from nothing (or from a
//! snapshot) rebuilds the very same image.

use super::testkit::*;
use super::*;
use crate::metadata::snapshot;
use crate::types::NO_NODE;
use proptest::prelude::*;
use std::collections::BTreeSet;

#[derive(Debug, Clone)]
enum Op {
    Register {
        id: NodeId,
        incarnation: u8,
        clean: bool,
    },
    Heartbeat {
        id: NodeId,
        fence: bool,
        shutdown: bool,
    },
    /// Time passes in one-second steps; brokers not in `silent` heartbeat at each.
    Wait {
        ms: i64,
        silent: u8,
    },
    Create {
        topic: u8,
        partitions: i32,
        rf: i16,
        min_isr: u8,
        unclean: bool,
    },
    Delete {
        topic: u8,
    },
    Grow {
        topic: u8,
        extra: i32,
    },
    AlterIsr {
        topic: u8,
        partition: usize,
        mask: u8,
        stale: bool,
    },
    Elect {
        unclean: bool,
        all: bool,
    },
    SetConfig {
        broker_wide: bool,
        unclean: bool,
        min_isr: u8,
    },
    Unregister {
        id: NodeId,
    },
    ProducerIds {
        id: NodeId,
    },
    Failover {
        ms: i64,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        1 => (1..=4, 0u8..3, any::<bool>())
            .prop_map(|(id, incarnation, clean)| Op::Register { id, incarnation, clean }),
        4 => (1..=4, prop::bool::weighted(0.1), prop::bool::weighted(0.1))
            .prop_map(|(id, fence, shutdown)| Op::Heartbeat { id, fence, shutdown }),
        3 => (0i64..15_000, any::<u8>()).prop_map(|(ms, silent)| Op::Wait { ms, silent }),
        3 => (0u8..4, 1..4, 1i16..4, 1u8..4, any::<bool>()).prop_map(
            |(topic, partitions, rf, min_isr, unclean)| Op::Create { topic, partitions, rf, min_isr, unclean }
        ),
        1 => (0u8..4).prop_map(|topic| Op::Delete { topic }),
        1 => (0u8..4, 1..3).prop_map(|(topic, extra)| Op::Grow { topic, extra }),
        4 => (0u8..4, 0usize..4, any::<u8>(), prop::bool::weighted(0.2))
            .prop_map(|(topic, partition, mask, stale)| Op::AlterIsr { topic, partition, mask, stale }),
        1 => (any::<bool>(), any::<bool>()).prop_map(|(unclean, all)| Op::Elect { unclean, all }),
        1 => (any::<bool>(), any::<bool>(), 1u8..4)
            .prop_map(|(broker_wide, unclean, min_isr)| Op::SetConfig { broker_wide, unclean, min_isr }),
        1 => (1..=4).prop_map(|id| Op::Unregister { id }),
        1 => (1..=4).prop_map(|id| Op::ProducerIds { id }),
        1 => (0i64..20_000).prop_map(|ms| Op::Failover { ms }),
    ]
}

fn topic_name(i: u8) -> String {
    format!("t{i}")
}

fn run(h: &mut Harness, op: &Op) {
    match op.clone() {
        Op::Register {
            id,
            incarnation,
            clean,
        } => {
            let prev = if clean {
                h.state.image().broker(id).map_or(-1, |b| b.epoch)
            } else {
                -1
            };
            let _ = h.register_as(id, incarnation, prev);
        }
        Op::Heartbeat {
            id,
            fence,
            shutdown,
        } => {
            let _ = h.heartbeat_with(id, fence, shutdown);
        }
        Op::Wait { ms, silent } => {
            let until = h.now + ms;
            while h.now < until {
                h.now = (h.now + 1000).min(until);
                let alive: Vec<NodeId> = h
                    .state
                    .image()
                    .brokers()
                    .map(|b| b.id)
                    .filter(|id| silent & (1 << id) == 0)
                    .collect();
                for id in alive {
                    let _ = h.heartbeat(id);
                }
                h.settle();
            }
        }
        Op::Create {
            topic,
            partitions,
            rf,
            min_isr,
            unclean,
        } => {
            let min = min_isr.to_string();
            let _ = h.create(
                &topic_name(topic),
                partitions,
                rf,
                &[
                    ("min.insync.replicas", min.as_str()),
                    (
                        "unclean.leader.election.enable",
                        if unclean { "true" } else { "false" },
                    ),
                ],
            );
        }
        Op::Delete { topic } => {
            h.handle(ControllerRequest::DeleteTopics {
                topics: vec![TopicRef::Name(topic_name(topic))],
            });
        }
        Op::Grow { topic, extra } => {
            let name = topic_name(topic);
            let count = h
                .state
                .image()
                .topic(&name)
                .map_or(1, |t| t.partitions.len() as i32);
            h.handle(ControllerRequest::CreatePartitions {
                topics: vec![NewPartitions {
                    topic: name,
                    count: count + extra,
                    assignments: None,
                }],
                validate_only: false,
            });
        }
        Op::AlterIsr {
            topic,
            partition,
            mask,
            stale,
        } => {
            let Some(t) = h.state.image().topic(&topic_name(topic)) else {
                return;
            };
            let Some(p) = t.partitions.get(partition % t.partitions.len().max(1)) else {
                return;
            };
            let leader = if p.leader == NO_NODE {
                p.replicas[0]
            } else {
                p.leader
            };
            let mut isr = vec![leader];
            for (i, r) in p.replicas.iter().enumerate() {
                if mask & (1 << i) != 0 && *r != leader {
                    isr.push(*r);
                }
            }
            let image = h.state.image();
            let req = AlterPartitionRequest {
                broker_id: leader,
                broker_epoch: image.broker(leader).map_or(-1, |b| b.epoch),
                topics: vec![AlterPartitionTopic {
                    topic_id: t.id,
                    partitions: vec![AlterPartitionItem {
                        partition: (partition % t.partitions.len()) as i32,
                        leader_epoch: p.leader_epoch,
                        partition_epoch: p.partition_epoch - i32::from(stale),
                        new_isr: isr
                            .iter()
                            .map(|b| IsrMember {
                                broker_id: *b,
                                broker_epoch: image.broker(*b).map_or(-1, |x| x.epoch),
                            })
                            .collect(),
                    }],
                }],
            };
            h.handle(ControllerRequest::AlterPartition(req));
        }
        Op::Elect { unclean, all } => {
            let partitions = (!all).then(|| {
                (0..4)
                    .map(|t| TopicPartitions {
                        topic: topic_name(t),
                        partitions: vec![0, 1],
                    })
                    .collect()
            });
            let election_type = if unclean {
                ElectionType::Unclean
            } else {
                ElectionType::Preferred
            };
            h.handle(ControllerRequest::ElectLeaders(ElectLeadersRequest {
                election_type,
                partitions,
            }));
        }
        Op::SetConfig {
            broker_wide,
            unclean,
            min_isr,
        } => {
            let resource = if broker_wide {
                ConfigResource::Broker(String::new())
            } else {
                ConfigResource::Topic(topic_name(0))
            };
            let changes = vec![
                ConfigChange {
                    key: "unclean.leader.election.enable".into(),
                    op: ConfigOp::Set,
                    value: Some(unclean.to_string()),
                },
                ConfigChange {
                    key: "min.insync.replicas".into(),
                    op: ConfigOp::Set,
                    value: Some(min_isr.to_string()),
                },
            ];
            h.handle(ControllerRequest::AlterConfigs {
                resources: vec![AlterConfigsResource { resource, changes }],
                replace_all: false,
                validate_only: false,
            });
        }
        Op::Unregister { id } => {
            h.handle(ControllerRequest::UnregisterBroker { broker_id: id });
        }
        Op::ProducerIds { id } => {
            let epoch = h.state.image().broker(id).map_or(-1, |b| b.epoch);
            h.handle(ControllerRequest::AllocateProducerIds {
                broker_id: id,
                broker_epoch: epoch,
            });
        }
        Op::Failover { ms } => {
            h.state.deactivate();
            h.now += ms;
            h.state.activate(h.now);
        }
    }
}

/// Checks one committed entry against the image it is about to be applied to: a leader field
/// is only written when the leader changes (so the leader epoch moves only then).
fn check_entry(image: &MetadataImage, records: &[MetadataRecord]) -> Result<(), TestCaseError> {
    for r in records {
        if let MetadataRecord::PartitionChange(c) = r {
            if let (Some(l), Some(p)) = (c.leader, image.partition(&c.topic_id, c.partition)) {
                prop_assert_ne!(
                    l,
                    p.leader,
                    "a leader field that does not change the leader"
                );
            }
        }
    }
    Ok(())
}

fn check_image(
    image: &MetadataImage,
    epochs: &mut BTreeMap<(TopicId, usize), (i32, i32)>,
) -> Result<(), TestCaseError> {
    for t in image.topics() {
        for (i, p) in t.partitions.iter().enumerate() {
            let at = format!("{}-{i}: {p:?}", t.name);
            let distinct: BTreeSet<_> = p.replicas.iter().collect();
            prop_assert_eq!(distinct.len(), p.replicas.len(), "replicas distinct {}", at);
            prop_assert!(
                p.isr.iter().all(|r| p.replicas.contains(r)),
                "ISR ⊆ replicas {}",
                at
            );
            let isr: BTreeSet<_> = p.isr.iter().collect();
            prop_assert_eq!(isr.len(), p.isr.len(), "ISR distinct {}", at);
            prop_assert!(
                p.elr
                    .iter()
                    .all(|r| p.replicas.contains(r) && !p.isr.contains(r)),
                "ELR {}",
                at
            );
            if p.leader != NO_NODE {
                prop_assert!(p.isr.contains(&p.leader), "leader ∈ ISR {}", at);
                prop_assert!(
                    image.is_active(p.leader),
                    "leaders are active brokers {}",
                    at
                );
            }
            let before = epochs.insert((t.id, i), (p.leader_epoch, p.partition_epoch));
            if let Some((le, pe)) = before {
                prop_assert!(
                    p.leader_epoch >= le && p.partition_epoch >= pe,
                    "epochs never decrease {}",
                    at
                );
            }
        }
    }
    let next = image.next_broker_epoch();
    prop_assert!(
        image.brokers().all(|b| b.epoch < next),
        "broker epochs below the next"
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn random_operations_keep_the_invariants_and_replay_exactly(ops in proptest::collection::vec(op(), 1..80)) {
        let mut h = Harness::new(config());
        // A cluster of four to start from; registrations and unregistrations change it.
        for id in 1..=4 {
            h.join(id);
        }
        let mut epochs = BTreeMap::new();
        for op in &ops {
            let before = h.log.len();
            let image_before = h.state.image().clone();
            run(&mut h, op);
            // Re-apply this step's entries on the previous image to check each one in turn.
            let mut img = image_before;
            for entry in &h.log[before..] {
                check_entry(&img, entry)?;
                for r in entry {
                    img.apply(r);
                }
            }
            prop_assert_eq!(&img, h.state.image());
            check_image(h.state.image(), &mut epochs)?;
        }
        prop_assert_eq!(&h.replayed(), h.state.image());
        let restored = snapshot::decode(&snapshot::encode(h.state.image())).unwrap();
        prop_assert_eq!(&restored, h.state.image());
    }
}
