//! Topic-level configuration: every topic config Kafka 4.4 defines (its `LogConfig`), each with
//! Kafka's type, default, validator and the broker configs it falls back to
//! (`ServerTopicConfigSynonyms`), in one table, [`TOPIC_CONFIGS`]. A topic's effective
//! configuration is its overrides over the broker's values ([`TopicConfig`]); DescribeConfigs
//! reports each config's source and synonyms as Kafka does ([`topic_synonyms`]).
//!
//! Every config is accepted, validated and described as Kafka does. Those that cannot change
//! behaviour in Weir yet say why in [`TopicConfigDef::inert`] (tiered storage, replication
//! throttles and elections with a single replica).

use crate::config::{
    invalid, parse_bool, parse_num, BrokerConfig, CleanupPolicy, ConfigEntry, ConfigError,
    ConfigSource, ConfigType, TimestampType, BROKER_KEYS,
};
use std::collections::BTreeMap;
use std::sync::Arc;
use weir_storage::{Compression, LogConfig};

use ConfigType::{Boolean as B, Double as D, Int as I, List as L, Long as J, String as Str};

/// How a broker synonym's value converts to the topic config's unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Same,
    Minutes,
    Hours,
}

/// A broker config a topic config falls back to.
#[derive(Debug, Clone, Copy)]
pub struct Synonym {
    pub name: &'static str,
    pub unit: Unit,
}

const fn same(name: &'static str) -> Synonym {
    Synonym {
        name,
        unit: Unit::Same,
    }
}

const fn minutes(name: &'static str) -> Synonym {
    Synonym {
        name,
        unit: Unit::Minutes,
    }
}

const fn hours(name: &'static str) -> Synonym {
    Synonym {
        name,
        unit: Unit::Hours,
    }
}

/// Kafka's validator of a config (the type's own parse comes first).
#[derive(Debug, Clone, Copy)]
pub enum Check {
    /// Any value of the type.
    Any,
    /// `Range.atLeast`.
    AtLeast(i64),
    /// `Range.between`, bounds included.
    Between(i64, i64),
    /// A double in [0, 1].
    Ratio,
    /// `ValidString.in` (case-sensitive).
    OneOf(&'static [&'static str]),
    /// `ValidList.in`: distinct, non-empty entries among these; the empty list is allowed.
    ListOf(&'static [&'static str]),
    /// gzip's level: 1 to 9, or -1 for deflate's default.
    GzipLevel,
    /// `ThrottledReplicaListValidator`: `*`, or `partition:broker` entries.
    ThrottledReplicas,
}

/// One topic config as Kafka defines it.
#[derive(Debug)]
pub struct TopicConfigDef {
    pub name: &'static str,
    pub ty: ConfigType,
    /// Kafka's default when no broker synonym gives one; `None` for a nullable config.
    pub default: Option<&'static str>,
    pub check: Check,
    /// Broker configs it falls back to, in precedence order (ServerTopicConfigSynonyms).
    pub synonyms: &'static [Synonym],
    /// Kafka's `defineInternal`: accepted, described only when set on the topic.
    pub internal: bool,
    /// Why the config changes nothing in Weir yet; `None` when it is acted on.
    pub inert: Option<&'static str>,
}

const fn def(
    name: &'static str,
    ty: ConfigType,
    default: &'static str,
    check: Check,
    synonyms: &'static [Synonym],
) -> TopicConfigDef {
    TopicConfigDef {
        name,
        ty,
        default: Some(default),
        check,
        synonyms,
        internal: false,
        inert: None,
    }
}

const fn inert(mut d: TopicConfigDef, why: &'static str) -> TopicConfigDef {
    d.inert = Some(why);
    d
}

const LONG_MAX: &str = "9223372036854775807";
const COMPRESSION_TYPES: &[&str] = &["uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"];
const NO_TIERING: &str =
    "Weir has no tiered storage (a broker with remote.log.storage.system.enable=false)";

/// Every topic config of Kafka 4.4, sorted by name. Defaults are Kafka's `LogConfig` ones; the
/// broker's values of the synonyms take their place (see [`TopicConfig::from_broker`]).
pub static TOPIC_CONFIGS: &[TopicConfigDef] = &[
    def(
        "cleanup.policy",
        L,
        "delete",
        Check::ListOf(&["compact", "delete"]),
        &[same("log.cleanup.policy")],
    ),
    def(
        "compression.gzip.level",
        I,
        "-1",
        Check::GzipLevel,
        &[same("compression.gzip.level")],
    ),
    def(
        "compression.lz4.level",
        I,
        "9",
        Check::Between(1, 17),
        &[same("compression.lz4.level")],
    ),
    def(
        "compression.type",
        Str,
        "producer",
        Check::OneOf(COMPRESSION_TYPES),
        &[same("compression.type")],
    ),
    def(
        "compression.zstd.level",
        I,
        "3",
        Check::Between(-131_072, 22),
        &[same("compression.zstd.level")],
    ),
    def(
        "delete.retention.ms",
        J,
        "86400000",
        Check::AtLeast(0),
        &[same("log.cleaner.delete.retention.ms")],
    ),
    def(
        "file.delete.delay.ms",
        J,
        "60000",
        Check::AtLeast(0),
        &[same("log.segment.delete.delay.ms")],
    ),
    def(
        "flush.messages",
        J,
        LONG_MAX,
        Check::AtLeast(1),
        &[same("log.flush.interval.messages")],
    ),
    def(
        "flush.ms",
        J,
        LONG_MAX,
        Check::AtLeast(0),
        &[
            same("log.flush.interval.ms"),
            same("log.flush.scheduler.interval.ms"),
        ],
    ),
    inert(
        def(
            "follower.replication.throttled.replicas",
            L,
            "",
            Check::ThrottledReplicas,
            &[],
        ),
        "no replication yet: nothing to throttle",
    ),
    def(
        "index.interval.bytes",
        I,
        "4096",
        Check::AtLeast(0),
        &[same("log.index.interval.bytes")],
    ),
    TopicConfigDef {
        name: "internal.segment.bytes",
        ty: I,
        default: None,
        check: Check::Any,
        synonyms: &[],
        internal: true,
        inert: None,
    },
    inert(
        def(
            "leader.replication.throttled.replicas",
            L,
            "",
            Check::ThrottledReplicas,
            &[],
        ),
        "no replication yet: nothing to throttle",
    ),
    inert(
        def(
            "local.retention.bytes",
            J,
            "-2",
            Check::AtLeast(-2),
            &[same("log.local.retention.bytes")],
        ),
        NO_TIERING,
    ),
    inert(
        def(
            "local.retention.ms",
            J,
            "-2",
            Check::AtLeast(-2),
            &[same("log.local.retention.ms")],
        ),
        NO_TIERING,
    ),
    def(
        "max.compaction.lag.ms",
        J,
        LONG_MAX,
        Check::AtLeast(1),
        &[same("log.cleaner.max.compaction.lag.ms")],
    ),
    def(
        "max.message.bytes",
        I,
        "1048588",
        Check::AtLeast(0),
        &[same("message.max.bytes")],
    ),
    def(
        "message.timestamp.after.max.ms",
        J,
        "3600000",
        Check::AtLeast(0),
        &[same("log.message.timestamp.after.max.ms")],
    ),
    def(
        "message.timestamp.before.max.ms",
        J,
        LONG_MAX,
        Check::AtLeast(0),
        &[same("log.message.timestamp.before.max.ms")],
    ),
    def(
        "message.timestamp.type",
        Str,
        "CreateTime",
        Check::OneOf(&["CreateTime", "LogAppendTime"]),
        &[same("log.message.timestamp.type")],
    ),
    def(
        "min.cleanable.dirty.ratio",
        D,
        "0.5",
        Check::Ratio,
        &[same("log.cleaner.min.cleanable.ratio")],
    ),
    def(
        "min.compaction.lag.ms",
        J,
        "0",
        Check::AtLeast(0),
        &[same("log.cleaner.min.compaction.lag.ms")],
    ),
    def(
        "min.insync.replicas",
        I,
        "1",
        Check::AtLeast(1),
        &[same("min.insync.replicas")],
    ),
    def(
        "preallocate",
        B,
        "false",
        Check::Any,
        &[same("log.preallocate")],
    ),
    inert(
        def("remote.copy.lag.bytes", J, "0", Check::AtLeast(-1), &[]),
        NO_TIERING,
    ),
    inert(
        def("remote.copy.lag.ms", J, "0", Check::AtLeast(-1), &[]),
        NO_TIERING,
    ),
    inert(
        def("remote.log.copy.disable", B, "false", Check::Any, &[]),
        NO_TIERING,
    ),
    inert(
        def("remote.log.delete.on.disable", B, "false", Check::Any, &[]),
        NO_TIERING,
    ),
    // Validated further below: true is refused, as Kafka refuses it with tiering disabled.
    def("remote.storage.enable", B, "false", Check::Any, &[]),
    def(
        "retention.bytes",
        J,
        "-1",
        Check::Any,
        &[same("log.retention.bytes")],
    ),
    def(
        "retention.ms",
        J,
        "604800000",
        Check::AtLeast(-1),
        &[
            same("log.retention.ms"),
            minutes("log.retention.minutes"),
            hours("log.retention.hours"),
        ],
    ),
    // Kafka 4.1+ requires at least 1 MiB (KAFKA-19080) and offers `internal.segment.bytes` for
    // smaller test segments; Weir keeps the storage format's floor of 14 because its own
    // `__consumer_offsets` creation passes `offsets.topic.segment.bytes`, which may be smaller.
    def(
        "segment.bytes",
        I,
        "1073741824",
        Check::AtLeast(14),
        &[same("log.segment.bytes")],
    ),
    def(
        "segment.index.bytes",
        I,
        "10485760",
        Check::AtLeast(4),
        &[same("log.index.size.max.bytes")],
    ),
    def(
        "segment.jitter.ms",
        J,
        "0",
        Check::AtLeast(0),
        &[same("log.roll.jitter.ms"), hours("log.roll.jitter.hours")],
    ),
    def(
        "segment.ms",
        J,
        "604800000",
        Check::AtLeast(1),
        &[same("log.roll.ms"), hours("log.roll.hours")],
    ),
    inert(
        def(
            "unclean.leader.election.enable",
            B,
            "false",
            Check::Any,
            &[same("unclean.leader.election.enable")],
        ),
        "a single replica: no leader election to make unclean",
    ),
];

/// The definition of a topic config, if Kafka defines it.
pub fn topic_config_def(name: &str) -> Option<&'static TopicConfigDef> {
    TOPIC_CONFIGS.iter().find(|d| d.name == name)
}

fn index_of(name: &str) -> Option<usize> {
    TOPIC_CONFIGS.iter().position(|d| d.name == name)
}

/// Parses and checks a value as Kafka's `ConfigDef` does for `def`, returning it as Kafka
/// describes it (`ConfigDef.convertToString` of the parsed value: lists joined by commas, trimmed
/// strings, canonical booleans and numbers).
pub fn check_value(def: &TopicConfigDef, raw: &str) -> Result<String, ConfigError> {
    let key = def.name;
    let raw = raw.trim();
    let bad = |reason: String| invalid(key, raw, reason);
    let number = |n: i64| -> Result<String, ConfigError> {
        match def.check {
            Check::AtLeast(min) if n < min => Err(bad(format!("Value must be at least {min}"))),
            Check::Between(min, _) if n < min => Err(bad(format!("Value must be at least {min}"))),
            Check::Between(_, max) if n > max => {
                Err(bad(format!("Value must be no more than {max}")))
            }
            Check::GzipLevel if !(1..=9).contains(&n) && n != -1 => Err(bad(
                "Value must be between 1 and 9 or equal to -1".to_owned(),
            )),
            _ => Ok(n.to_string()),
        }
    };
    match def.ty {
        ConfigType::Int | ConfigType::Short => {
            let n: i32 = parse_num(key, raw, i32::MIN, "a 32-bit integer")?;
            number(i64::from(n))
        }
        ConfigType::Long => number(parse_num(key, raw, i64::MIN, "a 64-bit integer")?),
        ConfigType::Double => {
            let v: f64 = raw
                .parse()
                .ok()
                .filter(|v: &f64| v.is_finite())
                .ok_or_else(|| bad("expected a number".to_owned()))?;
            if matches!(def.check, Check::Ratio) && !(0.0..=1.0).contains(&v) {
                return Err(bad(if v < 0.0 {
                    "Value must be at least 0".to_owned()
                } else {
                    "Value must be no more than 1".to_owned()
                }));
            }
            Ok(java_double(v))
        }
        ConfigType::Boolean => Ok(parse_bool(key, raw)?.to_string()),
        ConfigType::String => match def.check {
            Check::OneOf(allowed) if !allowed.contains(&raw) => Err(bad(format!(
                "String must be one of: {}",
                allowed.join(", ")
            ))),
            _ => Ok(raw.to_owned()),
        },
        ConfigType::List => {
            // Kafka splits on commas with the whitespace around them; "" is the empty list.
            let items: Vec<&str> = if raw.is_empty() {
                Vec::new()
            } else {
                raw.split(',').map(str::trim).collect()
            };
            match def.check {
                Check::ListOf(allowed) => {
                    for (i, item) in items.iter().enumerate() {
                        if item.is_empty() {
                            return Err(bad(format!(
                                "Configuration '{key}' values must not be empty."
                            )));
                        }
                        if items[..i].contains(item) {
                            return Err(bad(format!(
                                "Configuration '{key}' values must not be duplicated."
                            )));
                        }
                        if !allowed.contains(item) {
                            return Err(invalid(
                                key,
                                item,
                                format!("String must be one of: {}", allowed.join(", ")),
                            ));
                        }
                    }
                }
                Check::ThrottledReplicas => {
                    let pair = |s: &str| {
                        s.is_empty()
                            || s.split_once(':').is_some_and(|(p, b)| {
                                [p, b]
                                    .iter()
                                    .all(|n| !n.is_empty() && n.bytes().all(|c| c.is_ascii_digit()))
                            })
                    };
                    if !(items.iter().all(|s| pair(s)) || items.concat() == "*") {
                        return Err(bad(format!("{key} must be the literal '*' or a list of replicas in the following format: [partitionId]:[brokerId],[partitionId]:[brokerId],...")));
                    }
                }
                _ => {}
            }
            Ok(items.join(","))
        }
    }
}

/// Checks a broker config that has the same name and validator as a topic config (the
/// compression configs), returning it as described.
pub fn check_broker_value(key: &str, raw: &str) -> Result<String, ConfigError> {
    let def = topic_config_def(key).expect("a broker key shared with a topic config");
    check_value(def, raw)
}

/// Java's `Double.toString` for the values a ratio takes: an integral value keeps ".0".
fn java_double(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e7 {
        format!("{v:.1}")
    } else {
        v.to_string()
    }
}

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

fn broker_key_default(key: &str) -> Option<&'static str> {
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
    /// The broker configs set in `server.properties` or `--override` (not left at their
    /// defaults), from the broker's own described entries.
    pub fn from_entries(entries: &[crate::config::ConfigEntry]) -> Self {
        let set = entries
            .iter()
            .filter(|e| e.source == ConfigSource::StaticBroker)
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
    use crate::config::Properties;

    fn broker(text: &str) -> BrokerConfig {
        BrokerConfig::from_properties(&Properties::parse(text).unwrap())
            .unwrap()
            .0
    }

    #[test]
    fn the_table_is_sorted_and_every_default_checks() {
        for pair in TOPIC_CONFIGS.windows(2) {
            assert!(
                pair[0].name < pair[1].name,
                "{} before {}",
                pair[0].name,
                pair[1].name
            );
        }
        for d in TOPIC_CONFIGS {
            if let Some(v) = d.default {
                assert_eq!(check_value(d, v).unwrap(), v, "{}", d.name);
            }
            for s in d.synonyms {
                assert!(
                    BROKER_KEYS.iter().any(|k| k.name == s.name),
                    "{}: broker synonym {} is not a broker key",
                    d.name,
                    s.name
                );
            }
        }
        // The broker's own defaults give Kafka's topic defaults.
        let t = BrokerConfig::default().topic_defaults();
        for d in TOPIC_CONFIGS {
            assert_eq!(t.value(d.name), d.default, "{}", d.name);
        }
    }

    #[test]
    fn values_are_checked_and_described_as_kafka_does() {
        let d = |n| topic_config_def(n).unwrap();
        let ok = |n, v| check_value(d(n), v).unwrap();
        let err = |n, v| check_value(d(n), v).unwrap_err().to_string();
        assert_eq!(ok("cleanup.policy", " compact , delete "), "compact,delete");
        assert_eq!(ok("cleanup.policy", ""), "");
        assert!(err("cleanup.policy", "delete,delete").contains("duplicated"));
        assert!(err("cleanup.policy", "delete,").contains("must not be empty"));
        assert!(err("cleanup.policy", "shred").contains("String must be one of: compact, delete"));
        assert_eq!(ok("preallocate", "TRUE"), "true");
        assert_eq!(ok("min.cleanable.dirty.ratio", "1"), "1.0");
        assert_eq!(ok("min.cleanable.dirty.ratio", "0.25"), "0.25");
        assert!(err("min.cleanable.dirty.ratio", "1.5").contains("no more than 1"));
        assert_eq!(ok("compression.type", "zstd"), "zstd");
        assert!(err("compression.type", "ZSTD").contains("String must be one of"));
        assert_eq!(ok("compression.gzip.level", "-1"), "-1");
        assert!(err("compression.gzip.level", "0").contains("between 1 and 9 or equal to -1"));
        assert!(err("compression.lz4.level", "18").contains("no more than 17"));
        assert_eq!(ok("compression.zstd.level", "-131072"), "-131072");
        assert!(err("compression.zstd.level", "23").contains("no more than 22"));
        assert!(err("segment.bytes", "2147483648").contains("32-bit"));
        assert!(err("retention.ms", "-2").contains("at least -1"));
        assert_eq!(ok("retention.bytes", "-5"), "-5");
        assert_eq!(ok("leader.replication.throttled.replicas", "*"), "*");
        assert_eq!(
            ok("follower.replication.throttled.replicas", "0:1, 1:2"),
            "0:1,1:2"
        );
        assert!(err("leader.replication.throttled.replicas", "0:x").contains("[partitionId]"));
        assert!(err("message.timestamp.type", "createtime").contains("CreateTime"));
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
