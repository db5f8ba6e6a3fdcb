//! DescribeConfigs' synonyms and sources of a topic config, as Kafka's `ConfigHelper` and its
//! controller's `KafkaConfigSchema` list them.

use std::collections::BTreeMap;

use super::defs::TopicConfigDef;
use crate::config::broker_keys::BROKER_KEYS;
use crate::config::{BrokerConfig, ConfigSource};

/// What DescribeConfigs needs of the broker to list a topic config's synonyms: which broker
/// configs were set (Kafka's STATIC_BROKER_CONFIG), and their defaults (DEFAULT_CONFIG).
pub trait BrokerValues {
    /// The value the broker was started with, if this key was set.
    fn set_value(&self, key: &str) -> Option<String>;

    /// Kafka's default for the broker key, if it has one.
    fn default_value(&self, key: &str) -> Option<String> {
        broker_key_default(key).map(str::to_owned)
    }
}

pub(super) fn broker_key_default(key: &str) -> Option<&'static str> {
    BROKER_KEYS
        .iter()
        .find(|k| k.name == key)
        .and_then(|k| k.default)
}

impl BrokerValues for BrokerConfig {
    fn set_value(&self, key: &str) -> Option<String> {
        self.static_value(key).map(str::to_owned)
    }
}

/// The broker's values as its DescribeConfigs lists them (name and value of every key, set or
/// defaulted), for a handler that holds only that list: a key whose value differs from its
/// default counts as set. The one thing lost is a key set to exactly its default, which Kafka
/// would list twice (set, then default) and this lists once, as the default.
pub struct DescribedBroker {
    set: BTreeMap<String, String>,
}

impl DescribedBroker {
    pub fn from_described<'a>(entries: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let set = entries
            .into_iter()
            .filter(|(k, v)| !v.is_empty() && broker_key_default(k) != Some(*v))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        Self { set }
    }
}

impl DescribedBroker {
    /// The broker configs set in `server.properties` or `--override` (exact: the entries carry
    /// their source), from the broker's own described entries.
    pub fn from_entries(entries: &[crate::config::ConfigEntry]) -> Self {
        let set = entries
            .iter()
            .filter(|e| e.source == crate::config::ConfigSource::StaticBroker)
            .filter_map(|e| Some((e.name.clone(), e.value.clone()?)))
            .collect();
        Self { set }
    }
}

impl BrokerValues for DescribedBroker {
    fn set_value(&self, key: &str) -> Option<String> {
        self.set.get(key).cloned()
    }
}

/// One synonym of a described config (DescribeConfigs v1+).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigSynonym {
    pub name: String,
    pub value: Option<String>,
    pub source: ConfigSource,
}

/// A topic config's synonyms, most significant first, exactly as Kafka's `ConfigHelper` lists
/// them: the topic's own override (DYNAMIC_TOPIC_CONFIG); then, of the broker synonyms, those
/// set (STATIC_BROKER_CONFIG) and then those with a default (DEFAULT_CONFIG), in precedence
/// order; then Kafka drops every broker entry before the first naming the leading synonym. So
/// `retention.ms` on a broker where only `log.retention.hours` is set lists no broker synonym
/// at all (and is described as DEFAULT_CONFIG): Kafka's behaviour, kept.
pub fn topic_synonyms(
    def: &TopicConfigDef,
    value: &str,
    overridden: bool,
    broker: &dyn BrokerValues,
) -> Vec<ConfigSynonym> {
    let mut list = Vec::new();
    if overridden {
        list.push(ConfigSynonym {
            name: def.name.to_owned(),
            value: Some(value.to_owned()),
            source: ConfigSource::DynamicTopic,
        });
    }
    let Some(first) = def.synonyms.first() else {
        return list;
    };
    let mut brokers = Vec::new();
    for s in def.synonyms {
        if let Some(v) = broker.set_value(s.name) {
            brokers.push((s.name, v, ConfigSource::StaticBroker));
        }
    }
    for s in def.synonyms {
        if let Some(v) = broker.default_value(s.name) {
            brokers.push((s.name, v, ConfigSource::DefaultConfig));
        }
    }
    let from = brokers
        .iter()
        .position(|(n, _, _)| *n == first.name)
        .unwrap_or(brokers.len());
    list.extend(
        brokers
            .into_iter()
            .skip(from)
            .map(|(name, value, source)| ConfigSynonym {
                name: name.to_owned(),
                value: Some(value),
                source,
            }),
    );
    list
}

/// A topic config's source as Kafka's controller resolves it for the CreateTopics response
/// (`KafkaConfigSchema`): the topic's override, else the first broker synonym that was set,
/// else the default. (DescribeConfigs lists synonyms its own way: [`topic_synonyms`].)
pub fn resolved_source(
    def: &TopicConfigDef,
    overridden: bool,
    broker: &dyn BrokerValues,
) -> ConfigSource {
    if overridden {
        ConfigSource::DynamicTopic
    } else if def
        .synonyms
        .iter()
        .any(|s| broker.set_value(s.name).is_some())
    {
        ConfigSource::StaticBroker
    } else {
        ConfigSource::DefaultConfig
    }
}

#[cfg(test)]
mod tests {
    use super::super::topic_config_def;
    use super::*;

    fn broker(text: &str) -> BrokerConfig {
        crate::config::tests::broker(text).0
    }
    use crate::config::TopicConfig;

    #[test]
    fn synonyms_follow_kafkas_config_helper() {
        let names = |syns: &[ConfigSynonym]| -> Vec<(String, Option<String>, ConfigSource)> {
            syns.iter()
                .map(|s| (s.name.clone(), s.value.clone(), s.source))
                .collect()
        };
        let b = broker("log.retention.ms=5000\nlog.retention.hours=2\nlog.segment.bytes=2048");
        let o = BTreeMap::from([("segment.bytes".to_owned(), "4096".to_owned())]);
        let t = TopicConfig::with_overrides(&b, &o).unwrap();
        let entries = t.describe(&o);
        let find = |n: &str| entries.iter().find(|e| e.name == n).unwrap().clone();
        let seg = find("segment.bytes");
        assert_eq!(seg.source, ConfigSource::DynamicTopic);
        assert_eq!(
            names(&seg.synonyms),
            [
                (
                    "segment.bytes".into(),
                    Some("4096".into()),
                    ConfigSource::DynamicTopic
                ),
                (
                    "log.segment.bytes".into(),
                    Some("2048".into()),
                    ConfigSource::StaticBroker
                ),
                (
                    "log.segment.bytes".into(),
                    Some("1073741824".into()),
                    ConfigSource::DefaultConfig
                ),
            ]
        );
        let ret = find("retention.ms");
        assert_eq!(
            (ret.value.as_deref(), ret.source),
            (Some("5000"), ConfigSource::StaticBroker)
        );
        assert_eq!(
            names(&ret.synonyms),
            [
                (
                    "log.retention.ms".into(),
                    Some("5000".into()),
                    ConfigSource::StaticBroker
                ),
                (
                    "log.retention.hours".into(),
                    Some("2".into()),
                    ConfigSource::StaticBroker
                ),
                (
                    "log.retention.hours".into(),
                    Some("168".into()),
                    ConfigSource::DefaultConfig
                ),
            ]
        );
        // Only the hours set: Kafka drops the entries before log.retention.ms, i.e. all.
        let b = broker("log.retention.hours=2");
        let t = b.topic_defaults();
        let ret = t
            .describe(&BTreeMap::new())
            .into_iter()
            .find(|e| e.name == "retention.ms")
            .unwrap();
        assert_eq!(ret.value.as_deref(), Some("7200000"));
        assert_eq!(ret.source, ConfigSource::DefaultConfig);
        assert!(ret.synonyms.is_empty());
        let cp = t
            .describe(&BTreeMap::new())
            .into_iter()
            .find(|e| e.name == "compression.type")
            .unwrap();
        assert_eq!(
            names(&cp.synonyms),
            [(
                "compression.type".into(),
                Some("producer".into()),
                ConfigSource::DefaultConfig
            )]
        );
        // No broker synonym: no synonyms, DEFAULT_CONFIG.
        let rs = t
            .describe(&BTreeMap::new())
            .into_iter()
            .find(|e| e.name == "remote.storage.enable")
            .unwrap();
        assert_eq!(
            (rs.source, rs.synonyms.len()),
            (ConfigSource::DefaultConfig, 0)
        );
        // A handler that only has the broker's described list infers the same synonyms.
        let b = broker("log.segment.bytes=2048");
        let described: Vec<(String, String)> = b
            .describe()
            .into_iter()
            .map(|e| (e.name, e.value.unwrap_or_default()))
            .collect();
        let view = DescribedBroker::from_described(
            described.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        );
        let d = topic_config_def("segment.bytes").unwrap();
        assert_eq!(
            topic_synonyms(d, "2048", false, &view),
            topic_synonyms(d, "2048", false, &b)
        );
        // CreateTopics resolves sources as Kafka's controller does: any set synonym counts.
        let b = broker("log.retention.hours=2");
        let ret = topic_config_def("retention.ms").unwrap();
        assert_eq!(resolved_source(ret, false, &b), ConfigSource::StaticBroker);
        assert_eq!(resolved_source(ret, true, &b), ConfigSource::DynamicTopic);
        let seg = topic_config_def("segment.bytes").unwrap();
        assert_eq!(resolved_source(seg, false, &b), ConfigSource::DefaultConfig);
        // Internal configs are described only when set.
        assert!(t
            .describe(&BTreeMap::new())
            .iter()
            .all(|e| e.name != "internal.segment.bytes"));
    }
}
