//! The metadata image: every topic, its partitions and config overrides, as the metadata log
//! says. Each core keeps its own copy and applies the same records in the same order (KRaft's
//! model), so no core ever reads another core's memory.

use super::records::MetadataRecord;
use super::TopicId;
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionMeta {
    pub leader: i32,
    pub leader_epoch: i32,
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicMeta {
    pub name: String,
    pub id: TopicId,
    pub partitions: Vec<PartitionMeta>,
    /// Topic-level config overrides (DescribeConfigs source DYNAMIC_TOPIC_CONFIG).
    pub configs: BTreeMap<String, String>,
}

/// What applying a record changed, so a core can open, reconfigure or delete its partitions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    None,
    TopicCreated { name: String },
    PartitionAdded { topic: String, partition: i32 },
    ConfigChanged { topic: String },
    TopicRemoved { name: String, partitions: i32 },
}

#[derive(Debug, Clone, Default)]
pub struct MetadataImage {
    topics: BTreeMap<String, TopicMeta>,
    names_by_id: BTreeMap<TopicId, String>,
    /// Where the next block of producer ids starts (never reused across restarts).
    pub next_producer_id_block: i64,
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

    pub fn partition_count(&self) -> usize {
        self.topics.values().map(|t| t.partitions.len()).sum()
    }

    /// Applies one record. Records that refer to unknown topics are ignored (a topic removed
    /// later in the same log), which keeps replay total.
    pub fn apply(&mut self, record: &MetadataRecord) -> Change {
        match record {
            MetadataRecord::Topic { name, id } => {
                self.names_by_id.insert(*id, name.clone());
                self.topics.insert(
                    name.clone(),
                    TopicMeta {
                        name: name.clone(),
                        id: *id,
                        partitions: Vec::new(),
                        configs: BTreeMap::new(),
                    },
                );
                Change::TopicCreated { name: name.clone() }
            }
            MetadataRecord::Partition {
                topic_id,
                partition,
                leader,
                leader_epoch,
                replicas,
                isr,
            } => {
                let Some(t) = self
                    .names_by_id
                    .get(topic_id)
                    .and_then(|n| self.topics.get_mut(n))
                else {
                    return Change::None;
                };
                let meta = PartitionMeta {
                    leader: *leader,
                    leader_epoch: *leader_epoch,
                    replicas: replicas.clone(),
                    isr: isr.clone(),
                };
                let p = *partition as usize;
                if p < t.partitions.len() {
                    t.partitions[p] = meta;
                    Change::None
                } else if p == t.partitions.len() {
                    t.partitions.push(meta);
                    Change::PartitionAdded {
                        topic: t.name.clone(),
                        partition: *partition,
                    }
                } else {
                    // Partitions are numbered densely; a gap means a corrupt log.
                    tracing::error!(topic = %t.name, partition, "metadata: partition record out of order ignored");
                    Change::None
                }
            }
            MetadataRecord::TopicConfig {
                topic_id,
                key,
                value,
            } => {
                let Some(t) = self
                    .names_by_id
                    .get(topic_id)
                    .and_then(|n| self.topics.get_mut(n))
                else {
                    return Change::None;
                };
                match value {
                    Some(v) => t.configs.insert(key.clone(), v.clone()),
                    None => t.configs.remove(key),
                };
                Change::ConfigChanged {
                    topic: t.name.clone(),
                }
            }
            MetadataRecord::RemoveTopic { id } => {
                let Some(name) = self.names_by_id.remove(id) else {
                    return Change::None;
                };
                let partitions = self
                    .topics
                    .remove(&name)
                    .map_or(0, |t| t.partitions.len() as i32);
                Change::TopicRemoved { name, partitions }
            }
            MetadataRecord::ProducerIds { next_block_start } => {
                self.next_producer_id_block = self.next_producer_id_block.max(*next_block_start);
                Change::None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replay_builds_topics_and_removal_forgets_them() {
        let id = [1u8; 16];
        let mut img = MetadataImage::default();
        assert_eq!(
            img.apply(&MetadataRecord::Topic {
                name: "a".into(),
                id
            }),
            Change::TopicCreated { name: "a".into() }
        );
        for p in 0..3 {
            let c = img.apply(&MetadataRecord::Partition {
                topic_id: id,
                partition: p,
                leader: 1,
                leader_epoch: 0,
                replicas: vec![1],
                isr: vec![1],
            });
            assert_eq!(
                c,
                Change::PartitionAdded {
                    topic: "a".into(),
                    partition: p
                }
            );
        }
        img.apply(&MetadataRecord::TopicConfig {
            topic_id: id,
            key: "retention.ms".into(),
            value: Some("5".into()),
        });
        assert_eq!(img.topic("a").unwrap().partitions.len(), 3);
        assert_eq!(img.topic_by_id(&id).unwrap().configs["retention.ms"], "5");
        assert_eq!(img.partition_count(), 3);
        assert_eq!(
            img.apply(&MetadataRecord::RemoveTopic { id }),
            Change::TopicRemoved {
                name: "a".into(),
                partitions: 3
            }
        );
        assert!(img.topic("a").is_none());
        assert_eq!(
            img.apply(&MetadataRecord::TopicConfig {
                topic_id: id,
                key: "x".into(),
                value: None
            }),
            Change::None
        );
    }
}
