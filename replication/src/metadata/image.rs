//! The metadata image: every topic, its partitions and config overrides, every registered
//! broker, the dynamic broker configs and the id counters, as the metadata log says. Each core
//! of each node keeps its own copy and applies the same records in the same order (KRaft's
//! model), so no core ever reads another core's memory.
//!
//! `apply` is total and deterministic: a record about a topic, partition or broker registration
//! that does not exist (removed later in the same log, or from another epoch) is ignored, and
//! the maps are ordered, so every node that applies the same records holds an equal image.

use super::records::{
    BrokerChangeRecord, DiscardedRange, Endpoint, IncarnationId, MetadataRecord,
    PartitionChangeRecord, PartitionRecord, RegisterBrokerRecord, UncleanReport,
};
use crate::types::{BrokerEpoch, LeaderEpoch, NodeId, PartitionEpoch, TopicId, NO_NODE};
use std::collections::BTreeMap;

/// The last election of a partition that may have lost acknowledged data, and what the
/// replicas reported it cost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UncleanElection {
    pub leader: NodeId,
    pub leader_epoch: LeaderEpoch,
    pub replaced_isr: Vec<NodeId>,
    pub replaced_elr: Vec<NodeId>,
    pub time_ms: i64,
    /// The new leader's log end when it took over, once it reported it.
    pub leader_log_end: Option<i64>,
    /// What replicas truncated to the new leader, per broker in the order reported;
    /// contiguous or overlapping reports of one broker are merged.
    pub discarded: Vec<(NodeId, DiscardedRange)>,
}

impl UncleanElection {
    /// Adds one replica's truncation; false when it adds nothing (already known).
    pub fn add_discarded(&mut self, broker: NodeId, d: &DiscardedRange) -> bool {
        for (_, known) in self.discarded.iter_mut().filter(|(b, _)| *b == broker) {
            if d.from_offset >= known.from_offset && d.to_offset <= known.to_offset {
                return false;
            }
            if d.from_offset <= known.to_offset && d.to_offset >= known.from_offset {
                // One broker truncating again (KIP-279's rounds walk back epoch by epoch):
                // the ranges touch, so they are one loss.
                let mut epochs: Vec<(LeaderEpoch, i64)> =
                    known.epochs.iter().chain(&d.epochs).copied().collect();
                epochs.sort_by_key(|(e, start)| (*start, *e));
                let mut merged: Vec<(LeaderEpoch, i64)> = Vec::with_capacity(epochs.len());
                for (e, start) in epochs {
                    if !merged.iter().any(|(m, _)| *m == e) {
                        merged.push((e, start));
                    }
                }
                known.from_offset = known.from_offset.min(d.from_offset);
                known.to_offset = known.to_offset.max(d.to_offset);
                known.high_watermark = known.high_watermark.max(d.high_watermark);
                known.time_ms = known.time_ms.max(d.time_ms);
                known.epochs = merged;
                return true;
            }
        }
        self.discarded.push((broker, d.clone()));
        true
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionMeta {
    /// The assigned replicas; the first is the preferred leader.
    pub replicas: Vec<NodeId>,
    pub isr: Vec<NodeId>,
    /// Eligible leader replicas (KIP-966).
    pub elr: Vec<NodeId>,
    /// The last known leader once the ISR emptied (KIP-966's balanced recovery).
    pub last_known_elr: Vec<NodeId>,
    /// `NO_NODE` (-1) while the partition is offline.
    pub leader: NodeId,
    pub leader_epoch: LeaderEpoch,
    pub partition_epoch: PartitionEpoch,
    pub last_unclean_election: Option<UncleanElection>,
}

impl PartitionMeta {
    pub fn from_record(r: &PartitionRecord) -> Self {
        Self {
            replicas: r.replicas.clone(),
            isr: r.isr.clone(),
            elr: r.elr.clone(),
            last_known_elr: r.last_known_elr.clone(),
            leader: r.leader,
            leader_epoch: r.leader_epoch,
            partition_epoch: r.partition_epoch,
            last_unclean_election: None,
        }
    }

    pub fn has_leader(&self) -> bool {
        self.leader != NO_NODE
    }

    /// Led by its first replica, as `auto.leader.rebalance.enable` and preferred elections want.
    pub fn has_preferred_leader(&self) -> bool {
        self.replicas.first() == Some(&self.leader)
    }

    /// Applies a change as KRaft does: the leader epoch moves when the leader field is set,
    /// the partition epoch on every change.
    pub fn merge(&mut self, c: &PartitionChangeRecord) {
        if let Some(r) = &c.replicas {
            self.replicas = r.clone();
        }
        if let Some(isr) = &c.isr {
            self.isr = isr.clone();
        }
        if let Some(elr) = &c.elr {
            self.elr = elr.clone();
        }
        if let Some(lke) = &c.last_known_elr {
            self.last_known_elr = lke.clone();
        }
        if let Some(leader) = c.leader {
            self.leader = leader;
            self.leader_epoch = self.leader_epoch.saturating_add(1);
        }
        self.partition_epoch = self.partition_epoch.saturating_add(1);
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicMeta {
    pub name: String,
    pub id: TopicId,
    pub partitions: Vec<PartitionMeta>,
    /// Topic-level config overrides (DescribeConfigs source DYNAMIC_TOPIC_CONFIG).
    pub configs: BTreeMap<String, String>,
}

impl TopicMeta {
    /// The replication factor: every partition has as many replicas as the first.
    pub fn replication_factor(&self) -> usize {
        self.partitions.first().map_or(0, |p| p.replicas.len())
    }
}

/// A registered broker, as its latest registration and changes say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerMeta {
    pub id: NodeId,
    pub incarnation_id: IncarnationId,
    pub epoch: BrokerEpoch,
    pub endpoints: Vec<Endpoint>,
    pub rack: Option<String>,
    pub fenced: bool,
    pub in_controlled_shutdown: bool,
}

impl BrokerMeta {
    fn from_record(r: &RegisterBrokerRecord) -> Self {
        Self {
            id: r.broker_id,
            incarnation_id: r.incarnation_id,
            epoch: r.broker_epoch,
            endpoints: r.endpoints.clone(),
            rack: r.rack.clone(),
            fenced: r.fenced,
            in_controlled_shutdown: r.in_controlled_shutdown,
        }
    }

    /// Can lead and join ISRs: unfenced and not shutting down (Kafka's `isActive`).
    pub fn is_active(&self) -> bool {
        !self.fenced && !self.in_controlled_shutdown
    }
}

/// What applying a record changed, so a core can open, lead, follow, reconfigure or delete its
/// partitions, and refresh what Metadata shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    None,
    TopicCreated {
        name: String,
        id: TopicId,
    },
    PartitionAdded {
        topic: String,
        partition: i32,
    },
    /// Leader, ISR, ELR or replicas changed; the image has the new state.
    PartitionChanged {
        topic: String,
        partition: i32,
        old_leader: NodeId,
        leader: NodeId,
        leader_epoch: LeaderEpoch,
        partition_epoch: PartitionEpoch,
    },
    TopicConfigChanged {
        topic: String,
    },
    /// A dynamic broker config changed: `None` is the cluster default.
    BrokerConfigChanged {
        broker: Option<NodeId>,
    },
    TopicRemoved {
        name: String,
        id: TopicId,
        partitions: i32,
    },
    BrokerRegistered {
        broker: NodeId,
        epoch: BrokerEpoch,
        /// False when the same process amended its registration.
        new_incarnation: bool,
    },
    BrokerUnregistered {
        broker: NodeId,
    },
    /// Fenced, unfenced or entering controlled shutdown; the new state.
    BrokerChanged {
        broker: NodeId,
        fenced: bool,
        in_controlled_shutdown: bool,
    },
    /// A leader was elected that may lack acknowledged data (logged and counted by the core).
    UncleanElection {
        topic: String,
        partition: i32,
        leader: NodeId,
        leader_epoch: LeaderEpoch,
    },
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MetadataImage {
    pub(crate) topics: BTreeMap<String, TopicMeta>,
    pub(crate) names_by_id: BTreeMap<TopicId, String>,
    pub(crate) brokers: BTreeMap<NodeId, BrokerMeta>,
    /// Dynamic broker configs: `None` the cluster default, `Some(id)` one broker's.
    pub(crate) broker_configs: BTreeMap<Option<NodeId>, BTreeMap<String, String>>,
    /// Where the next block of producer ids starts (never reused across restarts).
    pub(crate) next_producer_id_block: i64,
    /// The epoch the next new broker incarnation gets: above every epoch handed out, so a
    /// request from an older incarnation never matches a newer one.
    pub(crate) next_broker_epoch: BrokerEpoch,
}

impl MetadataImage {
    pub fn topic(&self, name: &str) -> Option<&TopicMeta> {
        self.topics.get(name)
    }

    pub fn topic_by_id(&self, id: &TopicId) -> Option<&TopicMeta> {
        self.names_by_id.get(id).and_then(|n| self.topics.get(n))
    }

    pub fn topics(&self) -> impl Iterator<Item = &TopicMeta> {
        self.topics.values()
    }

    pub fn partition(&self, topic_id: &TopicId, partition: i32) -> Option<&PartitionMeta> {
        let t = self.topic_by_id(topic_id)?;
        usize::try_from(partition)
            .ok()
            .and_then(|p| t.partitions.get(p))
    }

    pub fn partition_count(&self) -> usize {
        self.topics.values().map(|t| t.partitions.len()).sum()
    }

    pub fn broker(&self, id: NodeId) -> Option<&BrokerMeta> {
        self.brokers.get(&id)
    }

    pub fn brokers(&self) -> impl Iterator<Item = &BrokerMeta> {
        self.brokers.values()
    }

    /// Registered, unfenced and not shutting down.
    pub fn is_active(&self, id: NodeId) -> bool {
        self.brokers.get(&id).is_some_and(BrokerMeta::is_active)
    }

    /// The dynamic configs of one broker (`Some(id)`) or the cluster default (`None`).
    pub fn broker_configs(&self, broker: Option<NodeId>) -> Option<&BTreeMap<String, String>> {
        self.broker_configs.get(&broker)
    }

    pub fn next_producer_id_block(&self) -> i64 {
        self.next_producer_id_block
    }

    pub fn next_broker_epoch(&self) -> BrokerEpoch {
        self.next_broker_epoch
    }

    fn topic_mut(&mut self, id: &TopicId) -> Option<&mut TopicMeta> {
        self.names_by_id
            .get(id)
            .and_then(|n| self.topics.get_mut(n))
    }

    /// Applies one record and says what changed.
    pub fn apply(&mut self, record: &MetadataRecord) -> Change {
        match record {
            MetadataRecord::Topic(r) => {
                // A name or id already taken can only come from a corrupt log; the newer
                // record wins so names and ids stay one-to-one.
                if let Some(old) = self.topics.remove(&r.name) {
                    self.names_by_id.remove(&old.id);
                }
                if let Some(old) = self.names_by_id.remove(&r.id) {
                    self.topics.remove(&old);
                }
                self.names_by_id.insert(r.id, r.name.clone());
                self.topics.insert(
                    r.name.clone(),
                    TopicMeta {
                        name: r.name.clone(),
                        id: r.id,
                        partitions: Vec::new(),
                        configs: BTreeMap::new(),
                    },
                );
                Change::TopicCreated {
                    name: r.name.clone(),
                    id: r.id,
                }
            }
            MetadataRecord::Partition(r) => {
                let Some(t) = self.topic_mut(&r.topic_id) else {
                    return Change::None;
                };
                let meta = PartitionMeta::from_record(r);
                let (leader, leader_epoch, partition_epoch) =
                    (meta.leader, meta.leader_epoch, meta.partition_epoch);
                match usize::try_from(r.partition) {
                    Ok(p) if p < t.partitions.len() => {
                        let old_leader = t.partitions[p].leader;
                        t.partitions[p] = meta;
                        Change::PartitionChanged {
                            topic: t.name.clone(),
                            partition: r.partition,
                            old_leader,
                            leader,
                            leader_epoch,
                            partition_epoch,
                        }
                    }
                    Ok(p) if p == t.partitions.len() => {
                        t.partitions.push(meta);
                        Change::PartitionAdded {
                            topic: t.name.clone(),
                            partition: r.partition,
                        }
                    }
                    _ => {
                        // Partitions are numbered densely; a gap means a corrupt log.
                        tracing::error!(topic = %t.name, partition = r.partition,
                            "metadata: partition record out of order ignored");
                        Change::None
                    }
                }
            }
            MetadataRecord::PartitionChange(c) => {
                let Some(t) = self.topic_mut(&c.topic_id) else {
                    return Change::None;
                };
                let Some(p) = usize::try_from(c.partition)
                    .ok()
                    .and_then(|i| t.partitions.get_mut(i))
                else {
                    return Change::None;
                };
                let old_leader = p.leader;
                p.merge(c);
                Change::PartitionChanged {
                    topic: t.name.clone(),
                    partition: c.partition,
                    old_leader,
                    leader: p.leader,
                    leader_epoch: p.leader_epoch,
                    partition_epoch: p.partition_epoch,
                }
            }
            MetadataRecord::TopicConfig(r) => {
                let Some(t) = self.topic_mut(&r.topic_id) else {
                    return Change::None;
                };
                match &r.value {
                    Some(v) => t.configs.insert(r.key.clone(), v.clone()),
                    None => t.configs.remove(&r.key),
                };
                Change::TopicConfigChanged {
                    topic: t.name.clone(),
                }
            }
            MetadataRecord::BrokerConfig(r) => {
                let configs = self.broker_configs.entry(r.broker).or_default();
                match &r.value {
                    Some(v) => configs.insert(r.key.clone(), v.clone()),
                    None => configs.remove(&r.key),
                };
                if configs.is_empty() {
                    self.broker_configs.remove(&r.broker);
                }
                Change::BrokerConfigChanged { broker: r.broker }
            }
            MetadataRecord::RemoveTopic(r) => {
                let Some(name) = self.names_by_id.remove(&r.id) else {
                    return Change::None;
                };
                let partitions = self
                    .topics
                    .remove(&name)
                    .map_or(0, |t| t.partitions.len() as i32);
                Change::TopicRemoved {
                    name,
                    id: r.id,
                    partitions,
                }
            }
            MetadataRecord::ProducerIds(r) => {
                self.next_producer_id_block = self.next_producer_id_block.max(r.next_block_start);
                Change::None
            }
            MetadataRecord::RegisterBroker(r) => self.register(r),
            MetadataRecord::UnregisterBroker(r) => {
                if self.brokers.get(&r.broker_id).map(|b| b.epoch) != Some(r.broker_epoch) {
                    return Change::None;
                }
                self.brokers.remove(&r.broker_id);
                Change::BrokerUnregistered {
                    broker: r.broker_id,
                }
            }
            MetadataRecord::BrokerChange(r) => self.change_broker(r),
            MetadataRecord::UncleanReport(r) => self.unclean_report(r),
            MetadataRecord::UncleanElection(r) => {
                let Some(t) = self.topic_mut(&r.topic_id) else {
                    return Change::None;
                };
                let Some(p) = usize::try_from(r.partition)
                    .ok()
                    .and_then(|i| t.partitions.get_mut(i))
                else {
                    return Change::None;
                };
                p.last_unclean_election = Some(UncleanElection {
                    leader: r.leader,
                    leader_epoch: r.leader_epoch,
                    replaced_isr: r.replaced_isr.clone(),
                    replaced_elr: r.replaced_elr.clone(),
                    time_ms: r.time_ms,
                    leader_log_end: None,
                    discarded: Vec::new(),
                });
                Change::UncleanElection {
                    topic: t.name.clone(),
                    partition: r.partition,
                    leader: r.leader,
                    leader_epoch: r.leader_epoch,
                }
            }
        }
    }

    fn unclean_report(&mut self, r: &super::records::UncleanReportRecord) -> Change {
        let Some(t) = self.topic_mut(&r.topic_id) else {
            return Change::None;
        };
        let Some(u) = usize::try_from(r.partition)
            .ok()
            .and_then(|i| t.partitions.get_mut(i))
            .and_then(|p| p.last_unclean_election.as_mut())
            .filter(|u| u.leader_epoch == r.election_epoch)
        else {
            return Change::None;
        };
        match &r.report {
            UncleanReport::LeaderLogEnd(end) => {
                if r.broker == u.leader && u.leader_log_end.is_none() {
                    u.leader_log_end = Some(*end);
                }
            }
            UncleanReport::Discarded(d) => {
                u.add_discarded(r.broker, d);
            }
        }
        Change::None
    }

    fn register(&mut self, r: &RegisterBrokerRecord) -> Change {
        let new_incarnation = self
            .brokers
            .get(&r.broker_id)
            .is_none_or(|b| b.incarnation_id != r.incarnation_id);
        self.brokers.insert(r.broker_id, BrokerMeta::from_record(r));
        self.next_broker_epoch = self.next_broker_epoch.max(r.broker_epoch.saturating_add(1));
        Change::BrokerRegistered {
            broker: r.broker_id,
            epoch: r.broker_epoch,
            new_incarnation,
        }
    }

    fn change_broker(&mut self, r: &BrokerChangeRecord) -> Change {
        let Some(b) = self.brokers.get_mut(&r.broker_id) else {
            return Change::None;
        };
        // A change written for an older registration must not touch a newer one.
        if b.epoch != r.broker_epoch {
            return Change::None;
        }
        let before = (b.fenced, b.in_controlled_shutdown);
        if let Some(f) = r.fenced {
            b.fenced = f;
        }
        if let Some(s) = r.in_controlled_shutdown {
            b.in_controlled_shutdown = s;
        }
        if before == (b.fenced, b.in_controlled_shutdown) {
            return Change::None;
        }
        Change::BrokerChanged {
            broker: b.id,
            fenced: b.fenced,
            in_controlled_shutdown: b.in_controlled_shutdown,
        }
    }
}

#[cfg(test)]
#[path = "image_tests.rs"]
mod tests;
