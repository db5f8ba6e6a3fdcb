//! CreateTopics, DeleteTopics and CreatePartitions (Kafka's ReplicationControlManager), with
//! the validation single-node Weir already did and the same codes and messages.

use super::assign::{initial_isr, validate_manual, Placer};
use super::error::ControllerError;
use super::request::*;
use super::{ControllerState, MAX_RECORDS_PER_USER_OP};
use crate::metadata::records::{
    MetadataRecord, PartitionRecord, RemoveTopicRecord, TopicConfigRecord, TopicRecord,
};
use crate::types::{NodeId, TopicId};
use std::collections::{BTreeMap, BTreeSet};

/// Kafka's longest legal topic name.
pub const TOPIC_NAME_LENGTH_MAX: usize = 249;

/// Kafka's topic name rules (`org.apache.kafka.common.internals.Topic.validate`).
pub fn validate_topic_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("Topic name is illegal, it can't be empty".into());
    }
    if name == "." || name == ".." {
        return Err("Topic name cannot be \".\" or \"..\"".into());
    }
    if name.len() > TOPIC_NAME_LENGTH_MAX {
        return Err(format!("Topic name is illegal, it can't be longer than {TOPIC_NAME_LENGTH_MAX} characters, topic name: {name}"));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
    {
        return Err(format!("Topic name \"{name}\" is illegal, it contains a character other than ASCII alphanumerics, '.', '_' and '-'"));
    }
    Ok(())
}

/// Kafka refuses names that differ only by '.' vs '_': their metric names would collide.
fn canonical(name: &str) -> String {
    name.replace('.', "_")
}

fn too_many_records(what: &str) -> ControllerError {
    ControllerError::UnknownServerError(format!(
        "{what} would write more than {MAX_RECORDS_PER_USER_OP} metadata records in one operation"
    ))
}

/// Partitions to create for one topic: replicas and ISR of each.
type NewParts = Vec<(Vec<NodeId>, Vec<NodeId>)>;

impl ControllerState {
    pub(super) fn create_topics(
        &mut self,
        topics: Vec<NewTopic>,
        validate_only: bool,
    ) -> (ControllerReply, Vec<MetadataRecord>) {
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for t in &topics {
            *counts.entry(t.name.as_str()).or_default() += 1;
        }
        let duplicates: BTreeSet<String> = counts
            .into_iter()
            .filter(|(_, n)| *n > 1)
            .map(|(name, _)| name.to_string())
            .collect();
        let mut placer = Placer::new(&self.image);
        // Canonical names of the topics this request already created, so two of them cannot
        // collide with each other either.
        let mut created: BTreeMap<String, String> = BTreeMap::new();
        let mut records = Vec::new();
        let mut results = Vec::with_capacity(topics.len());
        for t in &topics {
            let result = if duplicates.contains(&t.name) {
                Err(ControllerError::InvalidRequest(
                    "Duplicate topic name.".into(),
                ))
            } else {
                self.create_topic(t, &mut placer, &created, records.len())
            };
            results.push(result.map(|(created_topic, topic_records)| {
                created.insert(canonical(&t.name), t.name.clone());
                if !validate_only {
                    records.extend(topic_records);
                }
                created_topic
            }));
        }
        (ControllerReply::CreateTopics(results), records)
    }

    fn create_topic(
        &mut self,
        t: &NewTopic,
        placer: &mut Placer,
        created: &BTreeMap<String, String>,
        records_so_far: usize,
    ) -> Result<(CreatedTopic, Vec<MetadataRecord>), ControllerError> {
        validate_topic_name(&t.name).map_err(ControllerError::InvalidTopic)?;
        if self.image.topic(&t.name).is_some() {
            return Err(ControllerError::TopicAlreadyExists(format!(
                "Topic '{}' already exists.",
                t.name
            )));
        }
        let canon = canonical(&t.name);
        let collision = self
            .image
            .topics()
            .find(|o| canonical(&o.name) == canon)
            .map(|o| o.name.clone())
            .or_else(|| created.get(&canon).cloned());
        if let Some(other) = collision {
            return Err(ControllerError::InvalidTopic(format!(
                "Topic '{}' collides with existing topic: {other}",
                t.name
            )));
        }
        let parts = if t.assignments.is_empty() {
            self.place_new_topic(t, placer, records_so_far)?
        } else {
            self.check_manual_topic(t, records_so_far)?
        };
        let mut overrides = BTreeMap::new();
        let mut nulls = Vec::new();
        for c in &t.configs {
            match &c.value {
                Some(v) => {
                    overrides.insert(c.key.clone(), v.clone());
                }
                None => nulls.push(c.key.as_str()),
            }
        }
        if !nulls.is_empty() {
            return Err(ControllerError::InvalidConfig(format!(
                "Null value not supported for topic configs: {}",
                nulls.join(",")
            )));
        }
        let effective = self
            .validator
            .validate_topic(&overrides)
            .map_err(ControllerError::InvalidConfig)?;
        let id = self.next_topic_id();
        let created = CreatedTopic {
            id,
            num_partitions: parts.len() as i32,
            replication_factor: parts.first().map_or(0, |p| p.0.len() as i16),
            configs: effective,
        };
        let mut records = vec![MetadataRecord::Topic(TopicRecord {
            name: t.name.clone(),
            id,
        })];
        // Configs go after the topic and before its partitions, as Kafka writes them.
        records.extend(overrides.into_iter().map(|(key, value)| {
            MetadataRecord::TopicConfig(TopicConfigRecord {
                topic_id: id,
                key,
                value: Some(value),
            })
        }));
        records.extend(partition_records(id, 0, parts));
        Ok((created, records))
    }

    fn place_new_topic(
        &self,
        t: &NewTopic,
        placer: &mut Placer,
        records_so_far: usize,
    ) -> Result<NewParts, ControllerError> {
        let n = if t.num_partitions == -1 {
            self.config.num_partitions
        } else {
            t.num_partitions
        };
        let rf = if t.replication_factor == -1 {
            self.config.default_replication_factor
        } else {
            t.replication_factor
        };
        if n <= 0 {
            return Err(ControllerError::InvalidPartitions(
                "Number of partitions was set to an invalid non-positive value.".into(),
            ));
        }
        if rf <= 0 {
            return Err(ControllerError::InvalidReplicationFactor(
                "Replication factor must be larger than 0.".into(),
            ));
        }
        if records_so_far + n as usize + 1 + t.configs.len() > MAX_RECORDS_PER_USER_OP {
            return Err(too_many_records(&format!("Creating {n} partitions")));
        }
        // A topic that fails half-way must not leave its partitions in the placer's counts.
        let before = placer.clone();
        let mut parts = Vec::with_capacity(n as usize);
        for _ in 0..n {
            match self.place_one(placer, i32::from(rf)) {
                Ok(part) => parts.push(part),
                Err(e) => {
                    *placer = before;
                    return Err(e);
                }
            }
        }
        Ok(parts)
    }

    /// One placed partition and its ISR, or Kafka's INVALID_REPLICATION_FACTOR.
    fn place_one(
        &self,
        placer: &mut Placer,
        rf: i32,
    ) -> Result<(Vec<NodeId>, Vec<NodeId>), ControllerError> {
        let fail = |m: &str| {
            ControllerError::InvalidReplicationFactor(format!(
                "Unable to replicate the partition {rf} time(s): {m}"
            ))
        };
        let replicas = placer.place(rf).map_err(|m| fail(&m))?;
        let isr = initial_isr(&self.image, &replicas);
        if isr.is_empty() {
            // The placer leads with an active broker, so this is a guard, as Kafka has it.
            return Err(fail(
                "All brokers are currently fenced or in controlled shutdown.",
            ));
        }
        Ok((replicas, isr))
    }

    fn check_manual_topic(
        &self,
        t: &NewTopic,
        records_so_far: usize,
    ) -> Result<NewParts, ControllerError> {
        if t.num_partitions != -1 || t.replication_factor != -1 {
            return Err(ControllerError::InvalidRequest("Both numPartitions or replicationFactor and replicasAssignments were set. Both cannot be used at the same time.".into()));
        }
        if records_so_far + t.assignments.len() + 1 + t.configs.len() > MAX_RECORDS_PER_USER_OP {
            return Err(too_many_records(&format!(
                "Creating {} partitions",
                t.assignments.len()
            )));
        }
        let mut by_partition: BTreeMap<i32, &[NodeId]> = BTreeMap::new();
        for a in &t.assignments {
            if by_partition.insert(a.partition, &a.brokers).is_some() {
                return Err(ControllerError::InvalidReplicaAssignment(format!(
                    "Found multiple manual partition assignments for partition {}",
                    a.partition
                )));
            }
        }
        let rf = t.assignments[0].brokers.len();
        let mut parts = Vec::with_capacity(by_partition.len());
        for (i, (p, replicas)) in by_partition.into_iter().enumerate() {
            if p != i as i32 {
                return Err(ControllerError::InvalidReplicaAssignment(
                    "Partitions should be a consecutive 0-based integer sequence".into(),
                ));
            }
            validate_manual(&self.image, replicas, Some(rf))?;
            parts.push(self.manual_partition(p, replicas)?);
        }
        Ok(parts)
    }

    /// A manually placed partition: its ISR is the replicas that can serve now; the first of
    /// them leads.
    fn manual_partition(
        &self,
        partition: i32,
        replicas: &[NodeId],
    ) -> Result<(Vec<NodeId>, Vec<NodeId>), ControllerError> {
        let isr = initial_isr(&self.image, replicas);
        if isr.is_empty() {
            return Err(ControllerError::InvalidReplicaAssignment(format!("All brokers specified in the manual partition assignment for partition {partition} are fenced or in controlled shutdown.")));
        }
        Ok((replicas.to_vec(), isr))
    }

    pub(super) fn delete_topics(
        &mut self,
        refs: Vec<TopicRef>,
    ) -> (ControllerReply, Vec<MetadataRecord>) {
        if !self.config.delete_topic_enable {
            let e = ControllerError::TopicDeletionDisabled("Topic deletion is disabled.".into());
            return (
                ControllerReply::refuse(&ControllerRequest::DeleteTopics { topics: refs }, e),
                Vec::new(),
            );
        }
        let mut records = Vec::new();
        let mut removed: BTreeSet<TopicId> = BTreeSet::new();
        let results = refs
            .iter()
            .map(|r| {
                if refs.iter().filter(|o| *o == r).count() > 1 {
                    let what = match r {
                        TopicRef::Name(_) => "Duplicate topic name.",
                        TopicRef::Id(_) => "Duplicate topic id.",
                    };
                    return Err(ControllerError::InvalidRequest(what.into()));
                }
                let found = match r {
                    TopicRef::Name(n) => self.image.topic(n),
                    TopicRef::Id(id) => self.image.topic_by_id(id),
                };
                let Some(t) = found else {
                    return Err(match r {
                        TopicRef::Name(_) => ControllerError::UnknownTopicOrPartition(
                            "This server does not host this topic-partition.".into(),
                        ),
                        TopicRef::Id(_) => ControllerError::UnknownTopicId(
                            "This server does not host this topic ID.".into(),
                        ),
                    });
                };
                // Named once by name and once by id: one removal, two answers.
                if removed.insert(t.id) {
                    records.push(MetadataRecord::RemoveTopic(RemoveTopicRecord { id: t.id }));
                }
                Ok(DeletedTopic {
                    name: t.name.clone(),
                    id: t.id,
                })
            })
            .collect();
        (ControllerReply::DeleteTopics(results), records)
    }

    pub(super) fn create_partitions(
        &mut self,
        topics: Vec<NewPartitions>,
        validate_only: bool,
    ) -> (ControllerReply, Vec<MetadataRecord>) {
        let mut placer = Placer::new(&self.image);
        let mut records = Vec::new();
        let results = topics
            .iter()
            .map(|t| {
                if topics.iter().filter(|o| o.topic == t.topic).count() > 1 {
                    return Err(ControllerError::InvalidRequest(
                        "Duplicate topic name.".into(),
                    ));
                }
                let new = self.grow_topic(t, &mut placer, records.len())?;
                if !validate_only {
                    records.extend(new);
                }
                Ok(())
            })
            .collect();
        (ControllerReply::CreatePartitions(results), records)
    }

    fn grow_topic(
        &self,
        t: &NewPartitions,
        placer: &mut Placer,
        records_so_far: usize,
    ) -> Result<Vec<MetadataRecord>, ControllerError> {
        let Some(topic) = self.image.topic(&t.topic) else {
            return Err(ControllerError::UnknownTopicOrPartition(format!(
                "The topic '{}' does not exist.",
                t.topic
            )));
        };
        let current = topic.partitions.len() as i32;
        // The seed: a partition count only grows. To shrink, delete and re-create the topic.
        if t.count < current {
            return Err(ControllerError::InvalidPartitions(format!(
                "Topic currently has {current} partitions, which is higher than the requested {}.",
                t.count
            )));
        }
        if t.count == current {
            return Err(ControllerError::InvalidPartitions(format!(
                "Topic already has {current} partitions."
            )));
        }
        let additional = (t.count - current) as usize;
        if records_so_far + additional > MAX_RECORDS_PER_USER_OP {
            return Err(too_many_records(&format!("Adding {additional} partitions")));
        }
        let rf = topic.replication_factor();
        let parts = match &t.assignments {
            Some(assignments) => {
                if assignments.len() != additional {
                    return Err(ControllerError::InvalidReplicaAssignment(format!("Attempted to add {additional} additional partition(s), but only {} assignment(s) were specified.", assignments.len())));
                }
                let mut parts = Vec::with_capacity(additional);
                for (i, replicas) in assignments.iter().enumerate() {
                    validate_manual(&self.image, replicas, Some(rf))?;
                    parts.push(self.manual_partition(current + i as i32, replicas)?);
                }
                parts
            }
            None => {
                let before = placer.clone();
                let mut parts = Vec::with_capacity(additional);
                for _ in 0..additional {
                    match self.place_one(placer, rf as i32) {
                        Ok(part) => parts.push(part),
                        Err(e) => {
                            *placer = before;
                            return Err(e);
                        }
                    }
                }
                parts
            }
        };
        Ok(partition_records(topic.id, current, parts).collect())
    }
}

/// Partition records for new partitions numbered from `first`: leader the first ISR member,
/// epochs zero.
fn partition_records(
    topic_id: TopicId,
    first: i32,
    parts: NewParts,
) -> impl Iterator<Item = MetadataRecord> {
    parts
        .into_iter()
        .enumerate()
        .map(move |(i, (replicas, isr))| {
            MetadataRecord::Partition(PartitionRecord {
                topic_id,
                partition: first + i as i32,
                leader: isr[0],
                replicas,
                isr,
                elr: Vec::new(),
                last_known_elr: Vec::new(),
                leader_epoch: 0,
                partition_epoch: 0,
            })
        })
}
