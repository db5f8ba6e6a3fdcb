//! Partition leadership and ISRs (Kafka's ReplicationControlManager): AlterPartition from
//! leaders, ElectLeaders from operators, and the changes a broker's fencing, unfencing,
//! controlled shutdown, unclean restart or unregistration makes to the partitions it serves.

use super::election::{Election, PartitionChangeBuilder};
use super::error::ControllerError;
use super::request::*;
use super::{ControllerState, MAX_ELECTIONS_PER_TICK, MAX_RECORDS_PER_USER_OP};
use crate::metadata::image::{PartitionMeta, TopicMeta};
use crate::metadata::records::{MetadataRecord, UncleanReport, UncleanReportRecord};
use crate::types::{NodeId, TopicId, NO_NODE};
use std::collections::BTreeSet;

/// What happened to a broker, for the partitions it serves.
#[derive(Debug, Clone, Copy)]
pub(super) enum BrokerUpdate {
    /// Fenced (session expired, asked to, or shut down): it leaves the ISRs (kept if the last
    /// member) and cannot lead.
    Fence(NodeId),
    /// Entering controlled shutdown: the same, while it still runs.
    Shutdown(NodeId),
    /// Restarted uncleanly or unregistered: it leaves ISRs and ELRs even if the ISR empties.
    Lost(NodeId),
    /// Unfenced: partitions without a leader may get it (or anyone acceptable) back.
    Unfence(NodeId),
}

impl ControllerState {
    /// The records that follow from `update`, one change per affected partition, in topic name
    /// and partition order so every run decides alike.
    pub(super) fn partition_updates(
        &self,
        update: BrokerUpdate,
        now_ms: i64,
    ) -> Vec<MetadataRecord> {
        let image = &self.image;
        let acceptable = |r: NodeId| match update {
            BrokerUpdate::Fence(b) | BrokerUpdate::Shutdown(b) | BrokerUpdate::Lost(b) => {
                r != b && image.is_active(r)
            }
            // Still fenced in the image while these records are built.
            BrokerUpdate::Unfence(b) => r == b || image.is_active(r),
        };
        let mut records = Vec::new();
        for topic in image.topics() {
            for (i, p) in topic.partitions.iter().enumerate() {
                let affected = match update {
                    BrokerUpdate::Fence(b) | BrokerUpdate::Shutdown(b) => {
                        p.isr.contains(&b) || p.leader == b
                    }
                    BrokerUpdate::Lost(b) => {
                        p.isr.contains(&b) || p.elr.contains(&b) || p.leader == b
                    }
                    BrokerUpdate::Unfence(_) => p.leader == NO_NODE,
                };
                if !affected {
                    continue;
                }
                let builder = self.builder(topic, i as i32, p, &acceptable, now_ms);
                let builder = match update {
                    BrokerUpdate::Fence(b) | BrokerUpdate::Shutdown(b) => {
                        builder.remove_from_isr_keeping_last(b)
                    }
                    BrokerUpdate::Lost(b) => builder.remove_lost_replica(b),
                    BrokerUpdate::Unfence(_) => builder,
                };
                if let Some(built) = builder.build() {
                    records.extend(built.into_records());
                }
            }
        }
        records
    }

    /// A change builder with the topic's rules: effective min ISR, and unclean elections if
    /// `unclean.leader.election.enable` says so.
    fn builder<'a>(
        &self,
        topic: &TopicMeta,
        partition: i32,
        p: &'a PartitionMeta,
        acceptable: &'a dyn Fn(NodeId) -> bool,
        now_ms: i64,
    ) -> PartitionChangeBuilder<'a> {
        PartitionChangeBuilder::new(
            topic.id,
            partition,
            p,
            acceptable,
            self.min_isr(topic),
            now_ms,
        )
        .unclean_allowed(self.unclean_enabled(topic))
    }

    /// Elects leaders for offline partitions of topics that allow unclean elections (the
    /// config may have been turned on since they went offline).
    pub(super) fn unclean_sweep(&self, now_ms: i64) -> Vec<MetadataRecord> {
        let acceptable = |r: NodeId| self.image.is_active(r);
        let mut records = Vec::new();
        let mut elections = 0;
        for topic in self.image.topics() {
            if !self.unclean_enabled(topic) {
                continue;
            }
            for (i, p) in topic.partitions.iter().enumerate() {
                if p.has_leader() {
                    continue;
                }
                if elections == MAX_ELECTIONS_PER_TICK {
                    return records;
                }
                if let Some(built) = self
                    .builder(topic, i as i32, p, &acceptable, now_ms)
                    .build()
                {
                    tracing::warn!(topic = %topic.name, partition = i, leader = ?built.change.leader,
                        "unclean leader election for an offline partition");
                    records.extend(built.into_records());
                    elections += 1;
                }
            }
        }
        records
    }

    /// Whether some led partition is not led by its preferred (first) replica: what
    /// `auto.leader.rebalance.enable` looks for (Kafka's `arePartitionLeadersImbalanced`).
    pub fn leaders_imbalanced(&self) -> bool {
        self.image
            .topics()
            .flat_map(|t| t.partitions.iter())
            .any(|p| p.has_leader() && !p.has_preferred_leader())
    }

    /// Leader rebalancing (Kafka 4's `maybeBalancePartitionLeaders`): a preferred election
    /// for every partition whose leader is not its preferred replica, which moves leadership
    /// back wherever the preferred replica is an acceptable ISR member. Any imbalanced
    /// partition qualifies (Kafka 4 dropped `leader.imbalance.per.broker.percentage`).
    /// Partitions without a leader are left to fencing, unfencing and unclean elections. At
    /// most [`MAX_ELECTIONS_PER_TICK`] elections; `true` with them when more may remain, so
    /// the caller runs it again at once (after these records committed) rather than a whole
    /// check interval later. Empty when this node is not the active controller.
    pub fn balance_leaders(&self, now_ms: i64) -> (Vec<MetadataRecord>, bool) {
        if !self.active {
            return (Vec::new(), false);
        }
        let acceptable = |r: NodeId| self.image.is_active(r);
        let mut records = Vec::new();
        let mut elections = 0;
        for topic in self.image.topics() {
            for (i, p) in topic.partitions.iter().enumerate() {
                if !p.has_leader() || p.has_preferred_leader() {
                    continue;
                }
                if elections == MAX_ELECTIONS_PER_TICK {
                    return (records, true);
                }
                let built = self
                    .builder(topic, i as i32, p, &acceptable, now_ms)
                    .election(Election::Preferred)
                    .build();
                if let Some(built) = built.filter(|b| b.change.leader.is_some()) {
                    tracing::info!(topic = %topic.name, partition = i, leader = ?built.change.leader,
                        "leader rebalance: leadership back to the preferred replica");
                    records.extend(built.into_records());
                    elections += 1;
                }
            }
        }
        (records, false)
    }

    /// A replica's report on the partition's last unclean election: the new leader's log end
    /// when it took over, or what a replica truncated to it. Written once (a repeated report
    /// changes nothing); a report on an election no longer the last is refused, so the
    /// replica stops sending it (its own file next to the log keeps it).
    pub(super) fn report_unclean(
        &self,
        req: UncleanReportRequest,
    ) -> (ControllerReply, Vec<MetadataRecord>) {
        let refuse = |e| (ControllerReply::ReportUnclean(Err(e)), Vec::new());
        if let Err(e) = self.check_broker_epoch(req.broker_id, req.broker_epoch) {
            return refuse(e);
        }
        let Some(topic) = self.image.topic_by_id(&req.topic_id) else {
            return refuse(ControllerError::UnknownTopicId(
                "This server does not host this topic ID.".into(),
            ));
        };
        let Some(p) = self.image.partition(&req.topic_id, req.partition) else {
            return refuse(ControllerError::UnknownTopicOrPartition(
                "This server does not host this topic-partition.".into(),
            ));
        };
        let name = format!("{}-{}", topic.name, req.partition);
        if !p.replicas.contains(&req.broker_id) {
            return refuse(ControllerError::InvalidRequest(format!(
                "Broker {} is not a replica of {name}.",
                req.broker_id
            )));
        }
        let Some(u) = p
            .last_unclean_election
            .as_ref()
            .filter(|u| u.leader_epoch == req.election_epoch)
        else {
            return refuse(ControllerError::FencedLeaderEpoch(format!(
                "The unclean election of {name} at leader epoch {} is not its last one.",
                req.election_epoch
            )));
        };
        let news = match &req.report {
            UncleanReport::LeaderLogEnd(end) => {
                if req.broker_id != u.leader || *end < 0 {
                    return refuse(ControllerError::InvalidRequest(format!(
                        "Only the leader {} reports its log end for {name}, and not below 0.",
                        u.leader
                    )));
                }
                u.leader_log_end.is_none()
            }
            UncleanReport::Discarded(d) => {
                let in_range = d.epochs.windows(2).all(|w| w[0].1 < w[1].1)
                    && d.epochs.first().is_some_and(|(_, s)| *s == d.from_offset)
                    && d.epochs
                        .iter()
                        .all(|(e, s)| *e >= 0 && *e < req.election_epoch && *s < d.to_offset);
                if d.from_offset < 0 || d.from_offset >= d.to_offset || !in_range {
                    return refuse(ControllerError::InvalidRequest(format!(
                        "Invalid discarded range of {name}: offsets [{}, {}) with epochs {:?} \
                         (each older than {}).",
                        d.from_offset, d.to_offset, d.epochs, req.election_epoch
                    )));
                }
                u.clone().add_discarded(req.broker_id, d)
            }
        };
        let records = if news {
            vec![MetadataRecord::UncleanReport(UncleanReportRecord {
                topic_id: req.topic_id,
                partition: req.partition,
                election_epoch: req.election_epoch,
                broker: req.broker_id,
                report: req.report,
            })]
        } else {
            Vec::new()
        };
        (ControllerReply::ReportUnclean(Ok(())), records)
    }

    pub(super) fn alter_partition(
        &mut self,
        req: AlterPartitionRequest,
        now_ms: i64,
    ) -> (ControllerReply, Vec<MetadataRecord>) {
        if let Err(e) = self.check_broker_epoch(req.broker_id, req.broker_epoch) {
            return (ControllerReply::AlterPartition(Err(e)), Vec::new());
        }
        let mut records = Vec::new();
        let mut seen: BTreeSet<(TopicId, i32)> = BTreeSet::new();
        let mut topics = Vec::with_capacity(req.topics.len());
        for t in &req.topics {
            let mut partitions = Vec::with_capacity(t.partitions.len());
            for item in &t.partitions {
                let result = if !seen.insert((t.topic_id, item.partition)) {
                    Err(ControllerError::OperationNotAttempted(
                        "Duplicate partition in the request: only its first occurrence was attempted."
                            .into(),
                    ))
                } else {
                    self.alter_one(req.broker_id, t.topic_id, item, now_ms, &mut records)
                };
                partitions.push(AlterPartitionResult {
                    partition: item.partition,
                    result,
                });
            }
            topics.push(AlterPartitionTopicResult {
                topic_id: t.topic_id,
                partitions,
            });
        }
        (ControllerReply::AlterPartition(Ok(topics)), records)
    }

    /// One partition of an AlterPartition, checked in Kafka's order.
    fn alter_one(
        &self,
        broker_id: NodeId,
        topic_id: TopicId,
        item: &AlterPartitionItem,
        now_ms: i64,
        records: &mut Vec<MetadataRecord>,
    ) -> Result<PartitionState, ControllerError> {
        let Some(topic) = self.image.topic_by_id(&topic_id) else {
            return Err(ControllerError::UnknownTopicId(
                "This server does not host this topic ID.".into(),
            ));
        };
        let Some(p) = self.image.partition(&topic_id, item.partition) else {
            return Err(ControllerError::UnknownTopicOrPartition(
                "This server does not host this topic-partition.".into(),
            ));
        };
        let name = format!("{}-{}", topic.name, item.partition);
        // Epochs newer than ours: this controller is behind, the leader must look elsewhere.
        if item.leader_epoch > p.leader_epoch || item.partition_epoch > p.partition_epoch {
            return Err(ControllerError::NotController(format!(
                "The partition state of {name} in the request is newer than this controller's."
            )));
        }
        if item.leader_epoch < p.leader_epoch {
            return Err(ControllerError::FencedLeaderEpoch(format!(
                "Leader epoch {} of {name} is older than the current {}.",
                item.leader_epoch, p.leader_epoch
            )));
        }
        if broker_id != p.leader {
            return Err(ControllerError::NotLeaderOrFollower(format!(
                "Broker {broker_id} is not the leader of {name} (the leader is {}).",
                p.leader
            )));
        }
        if item.partition_epoch < p.partition_epoch {
            return Err(ControllerError::InvalidUpdateVersion(format!(
                "Partition epoch {} of {name} is older than the current {}.",
                item.partition_epoch, p.partition_epoch
            )));
        }
        let new_isr: Vec<NodeId> = item.new_isr.iter().map(|m| m.broker_id).collect();
        let mut distinct = BTreeSet::new();
        if new_isr.is_empty()
            || !new_isr
                .iter()
                .all(|r| p.replicas.contains(r) && distinct.insert(*r))
        {
            return Err(ControllerError::InvalidRequest(format!(
                "Invalid ISR {new_isr:?} for {name}: members must be distinct replicas."
            )));
        }
        if !new_isr.contains(&p.leader) {
            return Err(ControllerError::InvalidRequest(format!(
                "Invalid ISR {new_isr:?} for {name}: it must include the leader {}.",
                p.leader
            )));
        }
        // KIP-841: only brokers that can serve may join an ISR, and only the incarnation the
        // leader saw fetching.
        let ineligible: Vec<String> = item
            .new_isr
            .iter()
            .filter_map(|m| {
                let why = match self.image.broker(m.broker_id) {
                    None => "not registered".to_string(),
                    Some(b) if b.in_controlled_shutdown => "shutting down".into(),
                    Some(b) if b.fenced => "fenced".into(),
                    Some(b) if m.broker_epoch != -1 && m.broker_epoch != b.epoch => format!(
                        "broker epoch mismatch: requested={} VS expected={}",
                        m.broker_epoch, b.epoch
                    ),
                    Some(_) => return None,
                };
                Some(format!("{} ({why})", m.broker_id))
            })
            .collect();
        if !ineligible.is_empty() {
            return Err(ControllerError::IneligibleReplica(format!(
                "The new ISR of {name} contains ineligible replicas: {}.",
                ineligible.join(", ")
            )));
        }
        let acceptable = |r: NodeId| self.image.is_active(r);
        let built = self
            .builder(topic, item.partition, p, &acceptable, now_ms)
            .target_isr(new_isr)
            .build();
        let mut after = p.clone();
        if let Some(built) = built {
            after.merge(&built.change);
            let leader_moved = built.change.leader.is_some_and(|l| l != broker_id);
            records.extend(built.into_records());
            if leader_moved {
                return Err(ControllerError::NewLeaderElected(format!(
                    "The ISR change of {name} elected another leader."
                )));
            }
        }
        Ok(PartitionState {
            leader: after.leader,
            leader_epoch: after.leader_epoch,
            partition_epoch: after.partition_epoch,
            isr: after.isr,
        })
    }

    pub(super) fn elect_leaders(
        &mut self,
        req: ElectLeadersRequest,
        now_ms: i64,
    ) -> (ControllerReply, Vec<MetadataRecord>) {
        let mut records = Vec::new();
        let mut results = Vec::new();
        match &req.partitions {
            // Every partition; those that need no election are left out of the answer, as Kafka.
            None => {
                for topic in self.image.topics() {
                    let mut partitions = Vec::new();
                    for i in 0..topic.partitions.len() as i32 {
                        let result = self.elect_one(
                            &topic.name,
                            i,
                            &req.election_type,
                            now_ms,
                            &mut records,
                        );
                        if !matches!(result, Err(ControllerError::ElectionNotNeeded(_))) {
                            partitions.push(ElectionResultItem {
                                partition: i,
                                result,
                            });
                        }
                    }
                    results.push(ElectionTopicResult {
                        topic: topic.name.clone(),
                        partitions,
                    });
                }
            }
            Some(list) => {
                // A partition named twice is refused at every mention and not elected, as
                // Kafka's controller refuses duplicated topics in CreateTopics and DeleteTopics
                // (Kafka's own admin client sends a set, so only a hand-made request has them).
                let mut seen: BTreeSet<(&str, i32)> = BTreeSet::new();
                let duplicates: BTreeSet<(&str, i32)> = list
                    .iter()
                    .flat_map(|t| t.partitions.iter().map(move |&i| (t.topic.as_str(), i)))
                    .filter(|k| !seen.insert(*k))
                    .collect();
                for t in list {
                    let partitions = t
                        .partitions
                        .iter()
                        .map(|&i| ElectionResultItem {
                            partition: i,
                            result: if duplicates.contains(&(t.topic.as_str(), i)) {
                                Err(ControllerError::InvalidRequest(format!(
                                    "Duplicate partition {}-{i} in the request.",
                                    t.topic
                                )))
                            } else {
                                self.elect_one(
                                    &t.topic,
                                    i,
                                    &req.election_type,
                                    now_ms,
                                    &mut records,
                                )
                            },
                        })
                        .collect();
                    results.push(ElectionTopicResult {
                        topic: t.topic.clone(),
                        partitions,
                    });
                }
            }
        }
        (ControllerReply::ElectLeaders(Ok(results)), records)
    }

    /// One partition of an ElectLeaders (Kafka's electLeader).
    fn elect_one(
        &self,
        topic_name: &str,
        partition: i32,
        election_type: &ElectionType,
        now_ms: i64,
        records: &mut Vec<MetadataRecord>,
    ) -> Result<(), ControllerError> {
        let Some(topic) = self.image.topic(topic_name) else {
            return Err(ControllerError::UnknownTopicOrPartition(format!(
                "No such topic as {topic_name}"
            )));
        };
        let Some(p) = self.image.partition(&topic.id, partition) else {
            return Err(ControllerError::UnknownTopicOrPartition(format!(
                "No such partition as {topic_name}-{partition}"
            )));
        };
        let not_needed = match election_type {
            ElectionType::Preferred => p.has_preferred_leader(),
            ElectionType::Unclean => p.has_leader(),
        };
        if not_needed {
            return Err(ControllerError::ElectionNotNeeded(
                "Leader election not needed for topic partition.".into(),
            ));
        }
        let acceptable = |r: NodeId| self.image.is_active(r);
        let builder = self.builder(topic, partition, p, &acceptable, now_ms);
        let builder = match election_type {
            ElectionType::Preferred => builder.election(Election::Preferred),
            // Asked for explicitly: allowed whatever the topic's config says.
            ElectionType::Unclean => builder.unclean_allowed(true),
        };
        let Some(built) = builder.build() else {
            return Err(match election_type {
                ElectionType::Preferred => ControllerError::PreferredLeaderNotAvailable(
                    "The preferred leader was not available.".into(),
                ),
                ElectionType::Unclean => ControllerError::EligibleLeadersNotAvailable(
                    "Eligible topic partition leaders are not available.".into(),
                ),
            });
        };
        if records.len() + 2 > MAX_RECORDS_PER_USER_OP {
            return Err(ControllerError::OperationNotAttempted(format!(
                "The election would write more than {MAX_RECORDS_PER_USER_OP} metadata records in one operation; retry for the rest."
            )));
        }
        records.extend(built.into_records());
        Ok(())
    }
}

#[cfg(test)]
#[path = "leadership_tests.rs"]
mod leadership_tests;
