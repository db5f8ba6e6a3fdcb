//! Topic-level configuration: every topic config Kafka 4.4 defines (its `LogConfig`), each with
//! Kafka's type, default, validator and the broker configs it falls back to
//! (`ServerTopicConfigSynonyms`), in one table, [`TOPIC_CONFIGS`]. A topic's effective
//! configuration is its overrides over the broker's values ([`TopicConfig`]); DescribeConfigs
//! reports each config's source and synonyms as Kafka does ([`topic_synonyms`]).
//!
//! Every config is accepted, validated and described as Kafka does. Those that cannot change
//! behaviour in Weir yet say why in [`TopicConfigDef::inert`] (tiered storage, replication
//! throttles and elections with a single replica).
//!
//! Parts: [`defs`] (the table), [`validate`] (a value checked and described as Kafka does),
//! [`synonyms`] (DescribeConfigs' synonyms and sources); a topic's values are here.

use std::collections::BTreeMap;
use std::sync::Arc;

use weir_storage::{Compression, LogConfig};

use crate::config::{
    BrokerConfig, CleanupPolicy, ConfigEntry, ConfigError, ConfigSource, TimestampType,
};

pub mod defs;
pub mod synonyms;
pub mod validate;

use defs::index_of;
pub use defs::{topic_config_def, Check, Synonym, TopicConfigDef, Unit, TOPIC_CONFIGS};
use synonyms::broker_key_default;
pub use synonyms::{resolved_source, topic_synonyms, BrokerValues, ConfigSynonym, DescribedBroker};
pub use validate::{check_broker_value, check_value};

/// The broker-derived defaults a topic falls back to, shared by every topic of a broker.
#[derive(Debug, PartialEq)]
struct TopicBase {
    /// Default text per [`TOPIC_CONFIGS`] entry.
    defaults: Vec<Option<String>>,
    /// Broker keys that were set, for synonyms.
    broker_set: BTreeMap<&'static str, String>,
    /// The broker's `weir.log.preallocate.step.bytes` (not a topic config).
    preallocate_step_bytes: i64,
}

impl BrokerValues for TopicBase {
    fn set_value(&self, key: &str) -> Option<String> {
        self.broker_set.get(key).cloned()
    }
}

/// One topic's effective configuration: every topic config's value, its overrides over the
/// broker's. The typed fields are what the broker acts on; all are kept in step with the values.
#[derive(Debug, Clone, PartialEq)]
pub struct TopicConfig {
    /// `retention.ms` (≥ -1; -1 = forever).
    pub retention_ms: i64,
    /// `retention.bytes` (negative = no limit).
    pub retention_bytes: i64,
    /// `segment.bytes`, or `internal.segment.bytes` where set (Kafka's `segmentSize()`).
    pub segment_bytes: i32,
    /// `segment.ms` (≥ 1).
    pub segment_ms: i64,
    /// `segment.jitter.ms` (≥ 0).
    pub segment_jitter_ms: i64,
    /// `segment.index.bytes` (≥ 4).
    pub segment_index_bytes: i32,
    /// `cleanup.policy`.
    pub cleanup_policy: CleanupPolicy,
    /// `min.insync.replicas` (≥ 1).
    pub min_insync_replicas: i32,
    /// `unclean.leader.election.enable`.
    pub unclean_leader_election_enable: bool,
    /// `max.message.bytes` (≥ 0).
    pub max_message_bytes: i32,
    /// `index.interval.bytes` (≥ 0).
    pub index_interval_bytes: i32,
    /// `flush.messages` (≥ 1).
    pub flush_messages: i64,
    /// `flush.ms` (≥ 0).
    pub flush_ms: i64,
    /// `message.timestamp.type`.
    pub message_timestamp_type: TimestampType,
    /// `message.timestamp.before.max.ms` (≥ 0).
    pub message_timestamp_before_max_ms: i64,
    /// `message.timestamp.after.max.ms` (≥ 0).
    pub message_timestamp_after_max_ms: i64,
    /// `delete.retention.ms` (≥ 0).
    pub delete_retention_ms: i64,
    /// `min.compaction.lag.ms` (≥ 0).
    pub min_compaction_lag_ms: i64,
    /// `max.compaction.lag.ms` (≥ 1).
    pub max_compaction_lag_ms: i64,
    /// `min.cleanable.dirty.ratio` (0 to 1).
    pub min_cleanable_dirty_ratio: f64,
    /// `preallocate`.
    pub preallocate: bool,
    /// `file.delete.delay.ms` (≥ 0).
    pub file_delete_delay_ms: i64,
    /// `compression.type` with its codec's `compression.<codec>.level`; `None` for `producer`.
    pub compression: Option<Compression>,
    /// Every config's value as described, per [`TOPIC_CONFIGS`] entry (`None`: a nullable
    /// config not set).
    values: Vec<Option<String>>,
    base: Arc<TopicBase>,
}

impl Default for TopicConfig {
    fn default() -> Self {
        BrokerConfig::default().topic_defaults()
    }
}

impl TopicConfig {
    /// The configuration of a topic without overrides on this broker: each config takes its
    /// broker synonym's value (Kafka's `extractLogConfigMap`), else Kafka's default.
    pub fn from_broker(b: &BrokerConfig) -> Self {
        let defaults = TOPIC_CONFIGS
            .iter()
            .map(|d| broker_derived(b, d).or_else(|| d.default.map(str::to_owned)))
            .collect();
        let broker_set = TOPIC_CONFIGS
            .iter()
            .flat_map(|d| d.synonyms)
            .filter_map(|s| Some((s.name, b.static_value(s.name)?.to_owned())))
            .collect();
        let base = Arc::new(TopicBase {
            defaults,
            broker_set,
            preallocate_step_bytes: b.weir_log_preallocate_step_bytes,
        });
        Self::with_values(base.defaults.clone(), base)
    }

    fn with_values(values: Vec<Option<String>>, base: Arc<TopicBase>) -> Self {
        let mut c = Self {
            retention_ms: 0,
            retention_bytes: 0,
            segment_bytes: 0,
            segment_ms: 0,
            segment_jitter_ms: 0,
            segment_index_bytes: 0,
            cleanup_policy: CleanupPolicy::Delete,
            min_insync_replicas: 0,
            unclean_leader_election_enable: false,
            max_message_bytes: 0,
            index_interval_bytes: 0,
            flush_messages: 0,
            flush_ms: 0,
            message_timestamp_type: TimestampType::CreateTime,
            message_timestamp_before_max_ms: 0,
            message_timestamp_after_max_ms: 0,
            delete_retention_ms: 0,
            min_compaction_lag_ms: 0,
            max_compaction_lag_ms: 0,
            min_cleanable_dirty_ratio: 0.0,
            preallocate: false,
            file_delete_delay_ms: 0,
            compression: None,
            values,
            base,
        };
        c.refresh();
        c
    }

    /// The broker defaults with `overrides` applied (as stored for a topic, or sent in
    /// CreateTopics), then checked as a whole as Kafka's `LogConfig.validate` does.
    pub fn with_overrides(
        broker: &BrokerConfig,
        overrides: &BTreeMap<String, String>,
    ) -> Result<Self, ConfigError> {
        let mut config = Self::from_broker(broker);
        // Names first, as Kafka's validateNames: an unknown name wins over a bad value.
        if let Some(key) = overrides.keys().find(|k| topic_config_def(k).is_none()) {
            return Err(ConfigError::UnknownKey { key: key.clone() });
        }
        for (key, value) in overrides {
            config.apply(key, Some(value))?;
        }
        config.check_combination()?;
        Ok(config)
    }

    /// Kafka's checks across configs (`validateValues` and the remote storage ones).
    fn check_combination(&self) -> Result<(), ConfigError> {
        if self.min_compaction_lag_ms > self.max_compaction_lag_ms {
            return Err(ConfigError::Conflict(format!(
                "conflict topic config setting min.compaction.lag.ms ({}) > max.compaction.lag.ms ({})",
                self.min_compaction_lag_ms, self.max_compaction_lag_ms
            )));
        }
        if self.value("remote.storage.enable") == Some("true") {
            return Err(ConfigError::Conflict(
                "Tiered Storage functionality is disabled in the broker. Topic cannot be configured with remote log storage.".to_owned(),
            ));
        }
        Ok(())
    }

    /// Sets one topic config (`Some`) or removes its override so the broker default applies
    /// again (`None`). On error nothing changes.
    pub fn apply(&mut self, key: &str, value: Option<&str>) -> Result<(), ConfigError> {
        let Some(index) = index_of(key) else {
            return Err(ConfigError::UnknownKey {
                key: key.to_owned(),
            });
        };
        self.values[index] = match value {
            Some(v) => Some(check_value(&TOPIC_CONFIGS[index], v)?),
            None => self.base.defaults[index].clone(),
        };
        self.refresh();
        Ok(())
    }

    /// A config's value as described.
    pub fn value(&self, name: &str) -> Option<&str> {
        self.values[index_of(name)?].as_deref()
    }

    fn long(&self, name: &str) -> i64 {
        self.value(name).and_then(|v| v.parse().ok()).unwrap_or(0)
    }

    fn int(&self, name: &str) -> i32 {
        self.value(name).and_then(|v| v.parse().ok()).unwrap_or(0)
    }

    fn flag(&self, name: &str) -> bool {
        self.value(name) == Some("true")
    }

    /// Brings the typed fields in line with the values (all validated, so every parse holds).
    fn refresh(&mut self) {
        self.retention_ms = self.long("retention.ms");
        self.retention_bytes = self.long("retention.bytes");
        self.segment_bytes = match self.value("internal.segment.bytes") {
            Some(v) => v.parse().unwrap_or(0),
            None => self.int("segment.bytes"),
        };
        self.segment_ms = self.long("segment.ms");
        self.segment_jitter_ms = self.long("segment.jitter.ms");
        self.segment_index_bytes = self.int("segment.index.bytes");
        self.cleanup_policy = CleanupPolicy::from_list(self.value("cleanup.policy").unwrap_or(""));
        self.min_insync_replicas = self.int("min.insync.replicas");
        self.unclean_leader_election_enable = self.flag("unclean.leader.election.enable");
        self.max_message_bytes = self.int("max.message.bytes");
        self.index_interval_bytes = self.int("index.interval.bytes");
        self.flush_messages = self.long("flush.messages");
        self.flush_ms = self.long("flush.ms");
        self.message_timestamp_type = match self.value("message.timestamp.type") {
            Some("LogAppendTime") => TimestampType::LogAppendTime,
            _ => TimestampType::CreateTime,
        };
        self.message_timestamp_before_max_ms = self.long("message.timestamp.before.max.ms");
        self.message_timestamp_after_max_ms = self.long("message.timestamp.after.max.ms");
        self.delete_retention_ms = self.long("delete.retention.ms");
        self.min_compaction_lag_ms = self.long("min.compaction.lag.ms");
        self.max_compaction_lag_ms = self.long("max.compaction.lag.ms");
        self.min_cleanable_dirty_ratio = self
            .value("min.cleanable.dirty.ratio")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.5);
        self.preallocate = self.flag("preallocate");
        self.file_delete_delay_ms = self.long("file.delete.delay.ms");
        let level = |name| Some(self.int(name));
        self.compression = match self.value("compression.type") {
            Some("uncompressed") => Some((0, None)),
            Some("gzip") => Some((1, level("compression.gzip.level"))),
            Some("snappy") => Some((2, None)),
            Some("lz4") => Some((3, level("compression.lz4.level"))),
            Some("zstd") => Some((4, level("compression.zstd.level"))),
            _ => None,
        }
        .map(|(codec, level)| Compression { codec, level });
    }

    /// Every topic config with its effective value, source and synonyms, for DescribeConfigs
    /// on a topic (internal configs only where the topic sets them, as Kafka describes them).
    /// `overrides` are the topic's stored overrides.
    pub fn describe(&self, overrides: &BTreeMap<String, String>) -> Vec<ConfigEntry> {
        TOPIC_CONFIGS
            .iter()
            .zip(&self.values)
            .filter(|(d, _)| !d.internal || overrides.contains_key(d.name))
            .filter_map(|(d, v)| {
                let value = v.clone()?;
                let synonyms =
                    topic_synonyms(d, &value, overrides.contains_key(d.name), &*self.base);
                Some(ConfigEntry {
                    name: d.name.to_owned(),
                    source: synonyms
                        .first()
                        .map_or(ConfigSource::DefaultConfig, |s| s.source),
                    value: Some(value),
                    read_only: false,
                    sensitive: false,
                    config_type: d.ty,
                    synonyms,
                })
            })
            .collect()
    }

    /// The storage-level settings of this topic's partition logs.
    pub fn to_log_config(&self) -> LogConfig {
        // Validation keeps these non-negative; the fallbacks are never taken.
        LogConfig {
            segment_bytes: u64::try_from(self.segment_bytes).unwrap_or(1 << 30),
            segment_ms: self.segment_ms,
            index_interval_bytes: u64::try_from(self.index_interval_bytes).unwrap_or(4096),
            retention_ms: self.retention_ms,
            retention_bytes: self.retention_bytes,
            // Kafka's "never" is Long.MAX; storage's is u64::MAX.
            flush_messages: match self.flush_messages {
                i64::MAX => u64::MAX,
                n => u64::try_from(n).unwrap_or(u64::MAX),
            },
            flush_ms: self.flush_ms,
            max_message_bytes: usize::try_from(self.max_message_bytes).unwrap_or(0),
            cleanup_delete: self.cleanup_policy.deletes(),
            compact: self.cleanup_policy.compacts(),
            delete_retention_ms: self.delete_retention_ms,
            min_compaction_lag_ms: self.min_compaction_lag_ms,
            max_compaction_lag_ms: self.max_compaction_lag_ms,
            min_cleanable_dirty_ratio: self.min_cleanable_dirty_ratio,
            preallocate: self.preallocate,
            preallocate_step_bytes: u64::try_from(self.base.preallocate_step_bytes).unwrap_or(0),
            timestamp_type: match self.message_timestamp_type {
                TimestampType::CreateTime => weir_storage::TimestampType::CreateTime,
                TimestampType::LogAppendTime => weir_storage::TimestampType::LogAppendTime,
            },
            timestamp_before_max_ms: self.message_timestamp_before_max_ms,
            timestamp_after_max_ms: self.message_timestamp_after_max_ms,
            compression: self.compression,
            file_delete_delay_ms: self.file_delete_delay_ms,
            segment_jitter_ms: self.segment_jitter_ms,
            segment_index_bytes: u64::try_from(self.segment_index_bytes).unwrap_or(10 << 20),
        }
        .normalized()
    }
}

/// The broker's value for a topic config (Kafka's `extractLogConfigMap`): the first synonym
/// set, converted to the topic config's unit, else the first synonym's default. Synonyms with
/// units are resolved by the broker config itself (its precedence rules and -1 handling).
fn broker_derived(b: &BrokerConfig, d: &TopicConfigDef) -> Option<String> {
    match d.name {
        "segment.ms" => return Some(b.log_roll_ms.to_string()),
        "segment.jitter.ms" => return Some(b.log_roll_jitter_ms.to_string()),
        "retention.ms" => return Some(b.log_retention_ms.to_string()),
        "flush.ms" => return Some(b.log_flush_interval_ms.to_string()),
        _ => {}
    }
    let s = d.synonyms.first()?;
    debug_assert_eq!(
        s.unit,
        Unit::Same,
        "{}: converted synonyms are resolved above",
        d.name
    );
    let raw = b
        .static_value(s.name)
        .map(str::to_owned)
        .or_else(|| broker_key_default(s.name).map(str::to_owned))?;
    // The broker validated its value (its validators match the topic's); a value that still
    // fails here falls back to Kafka's topic default rather than stopping the broker.
    check_value(d, &raw).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn broker(text: &str) -> BrokerConfig {
        crate::config::tests::broker(text).0
    }

    #[test]
    fn unknown_and_removed_configs_are_refused() {
        let b = BrokerConfig::default();
        for key in [
            "no.such.config",
            // Removed in Kafka 4.0: unknown to a 4.x broker.
            "message.timestamp.difference.max.ms",
            "message.format.version",
            "message.downconversion.enable",
        ] {
            let o = BTreeMap::from([(key.to_owned(), "1".to_owned())]);
            let e = TopicConfig::with_overrides(&b, &o).unwrap_err();
            assert!(matches!(&e, ConfigError::UnknownKey { .. }), "{key}: {e}");
            assert_eq!(e.to_string(), format!("Unknown topic config name: {key}"));
        }
    }

    #[test]
    fn combinations_are_checked() {
        let b = BrokerConfig::default();
        let with = |pairs: &[(&str, &str)]| {
            let o: BTreeMap<String, String> = pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            TopicConfig::with_overrides(&b, &o)
        };
        assert!(with(&[
            ("min.compaction.lag.ms", "10"),
            ("max.compaction.lag.ms", "5")
        ])
        .unwrap_err()
        .to_string()
        .contains("min.compaction.lag.ms (10) > max.compaction.lag.ms (5)"));
        assert!(with(&[("remote.storage.enable", "true")])
            .unwrap_err()
            .to_string()
            .contains("Tiered Storage functionality is disabled"));
        // Accepted, validated and described, though they change nothing here.
        let t = with(&[
            ("remote.storage.enable", "false"),
            ("local.retention.ms", "1000"),
            ("leader.replication.throttled.replicas", "*"),
            ("remote.copy.lag.bytes", "-1"),
        ])
        .unwrap();
        assert_eq!(t.value("local.retention.ms"), Some("1000"));
    }

    #[test]
    fn behaviour_configs_reach_the_log_config() {
        let b = broker("compression.type=lz4\ncompression.lz4.level=3\nlog.segment.delete.delay.ms=5\nlog.message.timestamp.type=LogAppendTime");
        let log = b.topic_defaults().to_log_config();
        assert_eq!(
            log.compression,
            Some(Compression {
                codec: 3,
                level: Some(3)
            })
        );
        assert_eq!(log.file_delete_delay_ms, 5);
        assert_eq!(
            log.timestamp_type,
            weir_storage::TimestampType::LogAppendTime
        );
        let o = BTreeMap::from([
            ("compression.type".to_owned(), "producer".to_owned()),
            ("cleanup.policy".to_owned(), "".to_owned()),
            ("internal.segment.bytes".to_owned(), "100".to_owned()),
            ("segment.jitter.ms".to_owned(), "7".to_owned()),
            ("segment.index.bytes".to_owned(), "80".to_owned()),
            ("message.timestamp.before.max.ms".to_owned(), "1".to_owned()),
        ]);
        let log = TopicConfig::with_overrides(&b, &o).unwrap().to_log_config();
        assert_eq!(log.compression, None);
        assert!(
            !log.cleanup_delete && !log.compact,
            "an empty policy neither deletes nor compacts"
        );
        assert_eq!(
            (
                log.segment_bytes,
                log.segment_jitter_ms,
                log.segment_index_bytes
            ),
            (100, 7, 80)
        );
        assert_eq!(log.timestamp_before_max_ms, 1);
    }

    #[test]
    fn topic_config_falls_back_to_broker_values() {
        let b = broker("log.retention.minutes=10\nlog.segment.bytes=2048\nmessage.max.bytes=500\nlog.flush.interval.ms=7");
        let t = b.topic_defaults();
        assert_eq!(t.retention_ms, 600_000);
        assert_eq!(t.segment_bytes, 2048);
        assert_eq!(t.max_message_bytes, 500);
        assert_eq!(t.flush_ms, 7);
        let log = t.to_log_config();
        assert_eq!(
            (log.retention_ms, log.segment_bytes, log.max_message_bytes),
            (600_000, 2048, 500)
        );
    }

    #[test]
    fn topic_apply_validates_and_resets() {
        let b = BrokerConfig::default();
        let mut t = b.topic_defaults();
        t.apply("retention.ms", Some("1000")).unwrap();
        t.apply("cleanup.policy", Some("delete,compact")).unwrap();
        assert_eq!(t.retention_ms, 1000);
        assert_eq!(t.cleanup_policy, CleanupPolicy::CompactDelete);
        t.apply("retention.ms", None).unwrap();
        assert_eq!(t.retention_ms, b.log_retention_ms);

        let before = t.clone();
        let err = t.apply("segment.bytes", Some("13")).unwrap_err();
        assert!(matches!(&err, ConfigError::InvalidValue { key, .. } if key == "segment.bytes"));
        assert!(t.apply("retention.ms", Some("-2")).is_err());
        assert!(t
            .apply("unclean.leader.election.enable", Some("1"))
            .is_err());
        assert_eq!(t, before);
        assert!(matches!(
            t.apply("nope", Some("1")),
            Err(ConfigError::UnknownKey { .. })
        ));
        // Kafka's topic configs are all accepted (compression.type among them).
        t.apply("compression.type", Some("lz4")).unwrap();
        // Every broker-derived default must be a valid topic value, or a reset could fail.
        for d in TOPIC_CONFIGS {
            t.apply(d.name, None).unwrap();
        }
        assert_eq!(t, b.topic_defaults());
    }

    #[test]
    fn describe_reports_sources() {
        let b = broker("log.retention.hours=24\nnum.partitions=3");
        let overrides = BTreeMap::from([("segment.bytes".to_owned(), "4096".to_owned())]);
        let t = TopicConfig::with_overrides(&b, &overrides).unwrap();
        let entries = t.describe(&overrides);
        let public = TOPIC_CONFIGS.iter().filter(|d| !d.internal).count();
        assert_eq!(entries.len(), public);
        let find = |name: &str| entries.iter().find(|e| e.name == name).unwrap().clone();
        let seg = find("segment.bytes");
        assert_eq!(
            (seg.value.as_deref(), seg.source),
            (Some("4096"), ConfigSource::DynamicTopic)
        );
        // Kafka describes retention.ms as a default when only log.retention.hours is set (its
        // synonym list starts at log.retention.ms; see topic_synonyms).
        let ret = find("retention.ms");
        assert_eq!(
            (ret.value.as_deref(), ret.source),
            (Some("86400000"), ConfigSource::DefaultConfig)
        );
        assert_eq!(find("flush.ms").source, ConfigSource::DefaultConfig);
        assert!(entries.iter().all(|e| !e.read_only && !e.sensitive));
    }
}
