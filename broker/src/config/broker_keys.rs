//! The broker keys Weir knows: Kafka's name, type and default of each ([`BROKER_KEYS`], the one
//! source of defaults for parsing and describing), the Kafka keys accepted without effect, and
//! DescribeConfigs on a broker resource.

use super::{BrokerConfig, ConfigEntry, ConfigSource, ConfigType};

pub(crate) struct KeyDef {
    pub(crate) name: &'static str,
    pub(crate) ty: ConfigType,
    /// Kafka's default as text; `None` for nullable configs (and `weir.cores`, computed).
    pub(crate) default: Option<&'static str>,
}

const fn key(name: &'static str, ty: ConfigType, default: Option<&'static str>) -> KeyDef {
    KeyDef { name, ty, default }
}

// Short aliases keep the key tables to one line per key (J for LONG, as in JVM descriptors).
use ConfigType::{
    Boolean as B, Double as D, Int as I, List as L, Long as J, Short as S, String as Str,
};

/// Every broker key Weir understands; the single source of defaults for parsing and describing.
pub(crate) const BROKER_KEYS: &[KeyDef] = &[
    key("node.id", I, Some("1")),
    key("broker.id", I, None),
    key("process.roles", L, Some("broker,controller")),
    key("controller.quorum.voters", L, None),
    key("controller.listener.names", L, None),
    key("cluster.id", Str, None),
    key("listeners", L, Some("PLAINTEXT://127.0.0.1:9092")),
    key("advertised.listeners", L, None),
    key(
        "listener.security.protocol.map",
        Str,
        Some("PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL"),
    ),
    key("log.dirs", L, None),
    key("log.dir", Str, Some("./weir-data")),
    key("num.partitions", I, Some("1")),
    key("default.replication.factor", I, Some("1")),
    key("auto.create.topics.enable", B, Some("true")),
    key("delete.topic.enable", B, Some("true")),
    key("message.max.bytes", I, Some("1048588")),
    key("socket.request.max.bytes", I, Some("104857600")),
    key("queued.max.request.bytes", J, Some("-1")),
    key("max.connections", I, Some("2147483647")),
    key("log.segment.bytes", I, Some("1073741824")),
    key("log.roll.ms", J, None),
    key("log.roll.hours", I, Some("168")),
    key("log.retention.ms", J, None),
    key("log.retention.minutes", I, None),
    key("log.retention.hours", I, Some("168")),
    key("log.retention.bytes", J, Some("-1")),
    key("log.retention.check.interval.ms", J, Some("300000")),
    key("log.index.interval.bytes", I, Some("4096")),
    key(
        "log.flush.interval.messages",
        J,
        Some("9223372036854775807"),
    ),
    key("log.flush.interval.ms", J, None),
    key(
        "log.flush.scheduler.interval.ms",
        J,
        Some("9223372036854775807"),
    ),
    key("log.cleaner.enable", B, Some("true")),
    key("log.cleanup.policy", L, Some("delete")),
    key("log.cleaner.delete.retention.ms", J, Some("86400000")),
    key("log.cleaner.min.compaction.lag.ms", J, Some("0")),
    key(
        "log.cleaner.max.compaction.lag.ms",
        J,
        Some("9223372036854775807"),
    ),
    key("log.cleaner.min.cleanable.ratio", D, Some("0.5")),
    key("log.cleaner.backoff.ms", J, Some("15000")),
    key("log.cleaner.dedupe.buffer.size", J, Some("134217728")),
    key("offsets.topic.segment.bytes", I, Some("104857600")),
    key("log.message.timestamp.type", Str, Some("CreateTime")),
    key("min.insync.replicas", I, Some("1")),
    key("unclean.leader.election.enable", B, Some("false")),
    key(
        "replica.high.watermark.checkpoint.interval.ms",
        J,
        Some("5000"),
    ),
    key("offsets.topic.num.partitions", I, Some("50")),
    key("offsets.topic.replication.factor", S, Some("3")),
    key("offsets.retention.minutes", I, Some("10080")),
    key("group.initial.rebalance.delay.ms", I, Some("3000")),
    key("group.min.session.timeout.ms", I, Some("6000")),
    key("group.max.session.timeout.ms", I, Some("1800000")),
    key("transaction.state.log.num.partitions", I, Some("50")),
    key("weir.cores", I, None),
    key("weir.cpus", L, None),
    key("weir.log.open.segments.max", I, Some("16384")),
    key("log.preallocate", B, Some("false")),
    key("weir.log.preallocate.step.bytes", J, Some("16777216")),
    key("log.roll.jitter.ms", J, None),
    key("log.roll.jitter.hours", I, Some("0")),
    key("log.index.size.max.bytes", I, Some("10485760")),
    key("log.segment.delete.delay.ms", J, Some("60000")),
    key("compression.type", Str, Some("producer")),
    key("compression.gzip.level", I, Some("-1")),
    key("compression.lz4.level", I, Some("9")),
    key("compression.zstd.level", I, Some("3")),
    key(
        "log.message.timestamp.before.max.ms",
        J,
        Some("9223372036854775807"),
    ),
    // Kafka 4.0 (KIP-1030): an hour; it was unlimited before.
    key("log.message.timestamp.after.max.ms", J, Some("3600000")),
    key("log.local.retention.ms", J, Some("-2")),
    key("log.local.retention.bytes", J, Some("-2")),
];

/// Kafka keys Weir accepts without acting on them, so stock `server.properties` files load.
pub(super) const NO_EFFECT_KEYS: &[&str] = &[
    "num.network.threads",
    "num.io.threads",
    "num.recovery.threads.per.data.dir",
    "num.replica.fetchers",
    "socket.send.buffer.bytes",
    "socket.receive.buffer.bytes",
    "inter.broker.listener.name",
    "security.inter.broker.protocol",
    "controller.quorum.bootstrap.servers",
    "transaction.state.log.replication.factor",
    "transaction.state.log.min.isr",
    "auto.leader.rebalance.enable",
    "authorizer.class.name",
    "log.cleaner.threads",
    // Tiered storage: Weir has none, so topics are refused `remote.storage.enable=true` as a
    // Kafka broker with the system disabled refuses them.
    "remote.log.storage.system.enable",
    "metadata.log.dir",
    "metric.reporters",
];
pub(super) const NO_EFFECT_PREFIXES: &[&str] =
    &["ssl.", "sasl.", "zookeeper.", "share.coordinator."];

impl BrokerConfig {
    /// Every broker config Weir knows, for DescribeConfigs on a broker resource. All are
    /// read-only: Weir does not alter broker configs at runtime.
    pub fn describe(&self) -> Vec<ConfigEntry> {
        BROKER_KEYS
            .iter()
            .map(|k| {
                let (value, source) = match self.static_values.get(k.name) {
                    Some(v) => (Some(v.clone()), ConfigSource::StaticBroker),
                    None if k.name == "weir.cores" => {
                        (Some(self.cores.to_string()), ConfigSource::DefaultConfig)
                    }
                    None => (k.default.map(str::to_owned), ConfigSource::DefaultConfig),
                };
                ConfigEntry {
                    name: k.name.to_owned(),
                    value,
                    source,
                    read_only: true,
                    sensitive: false,
                    config_type: k.ty,
                    synonyms: Vec::new(),
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::broker;
    use super::*;

    #[test]
    fn describe_reports_sources() {
        let (b, _) = broker("log.retention.hours=24\nnum.partitions=3");
        let entries = b.describe();
        let find = |name: &str| entries.iter().find(|e| e.name == name).unwrap().clone();
        assert_eq!(find("num.partitions").source, ConfigSource::StaticBroker);
        assert_eq!(find("num.partitions").value.as_deref(), Some("3"));
        assert_eq!(
            find("log.segment.bytes").source,
            ConfigSource::DefaultConfig
        );
        assert_eq!(
            find("log.segment.bytes").value.as_deref(),
            Some("1073741824")
        );
        assert_eq!(find("log.retention.ms").value, None);
        assert_eq!(find("weir.cores").value, Some(b.cores.to_string()));
        assert!(entries.iter().all(|e| e.read_only));
        assert_eq!(ConfigSource::StaticBroker as i8, 4);
    }
}
