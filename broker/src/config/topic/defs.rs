//! The table of Kafka's topic configs ([`TOPIC_CONFIGS`]): type, default, validator, broker
//! synonyms, and why a config does not act yet where it does not.

use crate::config::ConfigType;

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
        def("remote.copy.lag.bytes", J, "-1", Check::AtLeast(-1), &[]),
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

pub(super) fn index_of(name: &str) -> Option<usize> {
    TOPIC_CONFIGS.iter().position(|d| d.name == name)
}

#[cfg(test)]
mod tests {
    use super::super::check_value;
    use super::*;
    use crate::config::broker_keys::BROKER_KEYS;
    use crate::config::BrokerConfig;

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
}
