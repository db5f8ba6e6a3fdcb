//! How the controller checks configs it is asked to commit: topic overrides through the broker's
//! topic config rules (`config::topic`), dynamic broker configs against the keys Weir acts on
//! while running.

use super::settings::{TopicDescriber, TopicResolver};
use crate::config::topic::topic_config_def;
use crate::config::ConfigType;
use std::collections::BTreeMap;
use weir_replication::controller::{ConfigKind, ConfigValidator, EffectiveConfig};
use weir_replication::types::NodeId;

/// Broker configs that may change at run time (Kafka's dynamic broker configs that Weir acts
/// on): the controller's elections read them.
const DYNAMIC_BROKER_KEYS: &[&str] = &["unclean.leader.election.enable", "min.insync.replicas"];

pub struct Validator {
    resolve: TopicResolver,
    describe: TopicDescriber,
}

impl Validator {
    pub fn new(resolve: TopicResolver, describe: TopicDescriber) -> Self {
        Self { resolve, describe }
    }
}

impl ConfigValidator for Validator {
    fn validate_topic(
        &self,
        overrides: &BTreeMap<String, String>,
    ) -> Result<Vec<EffectiveConfig>, String> {
        (self.resolve)(overrides)?;
        Ok((self.describe)(overrides)
            .into_iter()
            .map(|(name, value, is_default)| EffectiveConfig {
                name,
                value,
                is_default,
            })
            .collect())
    }

    fn validate_broker(
        &self,
        _broker: Option<NodeId>,
        configs: &BTreeMap<String, String>,
    ) -> Result<(), String> {
        let fixed: Vec<&str> = configs
            .keys()
            .map(String::as_str)
            .filter(|k| !DYNAMIC_BROKER_KEYS.contains(k))
            .collect();
        if !fixed.is_empty() {
            return Err(format!(
                "Cannot update these configs dynamically: {fixed:?} (Weir changes {DYNAMIC_BROKER_KEYS:?} at run time; the others in server.properties)"
            ));
        }
        for (k, v) in configs {
            let ok = match k.as_str() {
                "unclean.leader.election.enable" => {
                    matches!(v.to_ascii_lowercase().as_str(), "true" | "false")
                }
                "min.insync.replicas" => v.parse::<i32>().is_ok_and(|n| n >= 1),
                _ => false,
            };
            if !ok {
                return Err(format!("Invalid value {v} for configuration {k}"));
            }
        }
        Ok(())
    }

    fn list_default(&self, kind: ConfigKind, key: &str) -> Option<String> {
        match kind {
            ConfigKind::Topic => {
                let def = topic_config_def(key)?;
                (def.ty == ConfigType::List).then(|| def.default.unwrap_or("").to_string())
            }
            ConfigKind::Broker => None,
        }
    }
}
