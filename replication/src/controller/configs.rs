//! AlterConfigs and IncrementalAlterConfigs for topics and dynamic broker configs (Kafka's
//! ConfigurationControlManager), and how a topic's effective config is resolved: the topic's
//! override, else this controller's dynamic broker config, else the cluster-wide dynamic
//! default, else the static default.

use super::error::ControllerError;
use super::request::*;
use super::{ConfigKind, ControllerState};
use crate::metadata::image::TopicMeta;
use crate::metadata::records::{
    BrokerConfigRecord, MetadataRecord, PartitionChangeRecord, TopicConfigRecord,
};
use crate::types::NodeId;
use std::collections::{BTreeMap, BTreeSet};

const MIN_INSYNC_REPLICAS: &str = "min.insync.replicas";
const UNCLEAN_LEADER_ELECTION_ENABLE: &str = "unclean.leader.election.enable";

/// Kafka's ConfigRecord for a broker resource is written even when the value is unchanged, so
/// brokers reload it (KAFKA-14136); a topic's only when it changes.
fn diff_records(
    old: &BTreeMap<String, String>,
    new: &BTreeMap<String, String>,
    touched: &BTreeSet<String>,
    always_touched: bool,
) -> Vec<(String, Option<String>)> {
    let mut out = Vec::new();
    for (k, v) in new {
        if old.get(k) != Some(v) || (always_touched && touched.contains(k)) {
            out.push((k.clone(), Some(v.clone())));
        }
    }
    for k in old.keys().filter(|k| !new.contains_key(*k)) {
        out.push((k.clone(), None));
    }
    out
}

/// Kafka's broker resource names: "" is the cluster default, else a non-negative decimal id.
fn broker_scope(name: &str) -> Result<Option<NodeId>, ControllerError> {
    if name.is_empty() {
        return Ok(None);
    }
    let id: NodeId = name.parse().map_err(|_| {
        ControllerError::InvalidRequest("Unable to parse broker name as a base 10 number.".into())
    })?;
    if id < 0 {
        return Err(ControllerError::InvalidRequest(
            "Invalid negative broker ID.".into(),
        ));
    }
    Ok(Some(id))
}

impl ControllerState {
    pub(super) fn alter_configs(
        &mut self,
        resources: Vec<AlterConfigsResource>,
        replace_all: bool,
        validate_only: bool,
    ) -> (ControllerReply, Vec<MetadataRecord>) {
        let mut records = Vec::new();
        let results = resources
            .iter()
            .map(|r| {
                if resources
                    .iter()
                    .filter(|o| o.resource == r.resource)
                    .count()
                    > 1
                {
                    return Err(ControllerError::InvalidRequest(
                        "Duplicate resource.".into(),
                    ));
                }
                let new = self.alter_resource(r, replace_all)?;
                if !validate_only {
                    records.extend(new);
                }
                Ok(())
            })
            .collect();
        let clear = self.clear_elr_records(&records);
        records.extend(clear);
        (ControllerReply::AlterConfigs(results), records)
    }

    /// Kafka's `createClearElrRecordsAsNeeded`: a change of `min.insync.replicas` empties the
    /// ELR and last known ELR of the partitions it applies to (the topic's for a topic config,
    /// every topic's for a broker one). ELR members were left out of an ISR under the old
    /// minimum; with a lower one, a leader alone in its ISR commits again without them, so
    /// electing one of them cleanly would lose what it committed since (KIP-966).
    fn clear_elr_records(&self, records: &[MetadataRecord]) -> Vec<MetadataRecord> {
        let mut all = false;
        let mut topics = BTreeSet::new();
        for r in records {
            match r {
                MetadataRecord::TopicConfig(c) if c.key == MIN_INSYNC_REPLICAS => {
                    topics.insert(c.topic_id);
                }
                MetadataRecord::BrokerConfig(c) if c.key == MIN_INSYNC_REPLICAS => all = true,
                _ => {}
            }
        }
        self.image
            .topics()
            .filter(|t| all || topics.contains(&t.id))
            .flat_map(|t| {
                t.partitions.iter().enumerate().filter_map(|(i, p)| {
                    let stale = !p.elr.is_empty() || !p.last_known_elr.is_empty();
                    stale.then(|| {
                        MetadataRecord::PartitionChange(PartitionChangeRecord {
                            topic_id: t.id,
                            partition: i as i32,
                            leader: None,
                            isr: None,
                            elr: Some(Vec::new()),
                            last_known_elr: Some(Vec::new()),
                            replicas: None,
                        })
                    })
                })
            })
            .collect()
    }

    fn alter_resource(
        &self,
        r: &AlterConfigsResource,
        replace_all: bool,
    ) -> Result<Vec<MetadataRecord>, ControllerError> {
        let mut keys = BTreeSet::new();
        if !r.changes.iter().all(|c| keys.insert(c.key.as_str())) {
            return Err(ControllerError::InvalidRequest(
                "Error due to duplicate config keys".into(),
            ));
        }
        let touched: BTreeSet<String> = keys.into_iter().map(str::to_string).collect();
        match &r.resource {
            ConfigResource::Topic(name) => {
                if name.is_empty() {
                    return Err(ControllerError::InvalidRequest(
                        "Default topic resources are not allowed.".into(),
                    ));
                }
                let Some(topic) = self.image.topic(name) else {
                    return Err(ControllerError::UnknownTopicOrPartition(format!(
                        "The topic '{name}' does not exist."
                    )));
                };
                let new = self.apply_ops(ConfigKind::Topic, &topic.configs, r, replace_all)?;
                self.validator
                    .validate_topic(&new)
                    .map_err(ControllerError::InvalidConfig)?;
                Ok(diff_records(&topic.configs, &new, &touched, false)
                    .into_iter()
                    .map(|(key, value)| {
                        MetadataRecord::TopicConfig(TopicConfigRecord {
                            topic_id: topic.id,
                            key,
                            value,
                        })
                    })
                    .collect())
            }
            ConfigResource::Broker(name) => {
                let scope = broker_scope(name)?;
                let empty = BTreeMap::new();
                let old = self.image.broker_configs(scope).unwrap_or(&empty);
                let new = self.apply_ops(ConfigKind::Broker, old, r, replace_all)?;
                self.validator
                    .validate_broker(scope, &new)
                    .map_err(ControllerError::InvalidConfig)?;
                Ok(diff_records(old, &new, &touched, true)
                    .into_iter()
                    .map(|(key, value)| {
                        MetadataRecord::BrokerConfig(BrokerConfigRecord {
                            broker: scope,
                            key,
                            value,
                        })
                    })
                    .collect())
            }
        }
    }

    /// The resource's configs after the request: AlterConfigs replaces them with what it lists,
    /// IncrementalAlterConfigs applies each operation to the current ones.
    fn apply_ops(
        &self,
        kind: ConfigKind,
        old: &BTreeMap<String, String>,
        r: &AlterConfigsResource,
        replace_all: bool,
    ) -> Result<BTreeMap<String, String>, ControllerError> {
        let mut new = if replace_all {
            BTreeMap::new()
        } else {
            old.clone()
        };
        for c in &r.changes {
            match (&c.op, &c.value) {
                (ConfigOp::Set, Some(v)) => {
                    new.insert(c.key.clone(), v.clone());
                }
                // AlterConfigs with a null value leaves the key unset.
                (ConfigOp::Set, None) if replace_all => {}
                (ConfigOp::Set, None) => {
                    return Err(ControllerError::InvalidConfig(format!(
                        "Null value not supported for : {}",
                        c.key
                    )))
                }
                (ConfigOp::Delete, _) => {
                    new.remove(&c.key);
                }
                (op @ (ConfigOp::Append | ConfigOp::Subtract), v) => {
                    let op_name = if *op == ConfigOp::Append {
                        "APPEND"
                    } else {
                        "SUBTRACT"
                    };
                    let Some(default) = self.validator.list_default(kind, &c.key) else {
                        return Err(ControllerError::InvalidConfig(format!(
                            "Can't {op_name} to key {} because its type is not LIST.",
                            c.key
                        )));
                    };
                    let current = new.get(&c.key).cloned().unwrap_or(default);
                    let mut items: Vec<String> = current
                        .split(',')
                        .map(|s| s.trim().to_string())
                        .filter(|s| !s.is_empty())
                        .collect();
                    for item in v
                        .as_deref()
                        .unwrap_or("")
                        .split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                    {
                        if *op == ConfigOp::Append {
                            if !items.iter().any(|i| i == item) {
                                items.push(item.to_string());
                            }
                        } else {
                            items.retain(|i| i != item);
                        }
                    }
                    new.insert(c.key.clone(), items.join(","));
                }
            }
        }
        Ok(new)
    }

    /// A topic config as the topic sees it: its override, else this controller's dynamic
    /// broker config, else the cluster-wide dynamic default (Kafka's resolution order; the
    /// broker-level synonyms of the two configs used here have the same names).
    fn effective_topic_config<'a>(&'a self, topic: &'a TopicMeta, key: &str) -> Option<&'a str> {
        topic
            .configs
            .get(key)
            .or_else(|| {
                self.image
                    .broker_configs(Some(self.config.node_id))
                    .and_then(|c| c.get(key))
            })
            .or_else(|| self.image.broker_configs(None).and_then(|c| c.get(key)))
            .map(String::as_str)
    }

    /// `unclean.leader.election.enable` for this topic.
    pub(super) fn unclean_enabled(&self, topic: &TopicMeta) -> bool {
        self.effective_topic_config(topic, UNCLEAN_LEADER_ELECTION_ENABLE)
            .and_then(|v| v.trim().to_ascii_lowercase().parse().ok())
            .unwrap_or(self.config.unclean_leader_election_enable)
    }

    /// `min.insync.replicas` for this topic, at most its replication factor (as Kafka's
    /// getTopicEffectiveMinIsr) and at least one.
    pub(super) fn min_isr(&self, topic: &TopicMeta) -> usize {
        let configured = self
            .effective_topic_config(topic, MIN_INSYNC_REPLICAS)
            .and_then(|v| v.trim().parse::<i32>().ok())
            .unwrap_or(self.config.min_insync_replicas);
        (configured.max(1) as usize).min(topic.replication_factor().max(1))
    }
}
