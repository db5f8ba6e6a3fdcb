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
    key("cluster.id", Str, None),
    // The controller quorum and broker lifecycle (KRaftConfigs, QuorumConfig).
    key("controller.quorum.voters", L, Some("")),
    key("controller.quorum.bootstrap.servers", L, Some("")),
    key("controller.listener.names", Str, None),
    key("inter.broker.listener.name", Str, None),
    key("security.inter.broker.protocol", Str, Some("PLAINTEXT")),
    key("broker.heartbeat.interval.ms", I, Some("2000")),
    key("broker.session.timeout.ms", I, Some("9000")),
    key("controller.quorum.election.timeout.ms", I, Some("1000")),
    key("controller.quorum.fetch.timeout.ms", I, Some("2000")),
    key("controller.quorum.election.backoff.max.ms", I, Some("1000")),
    key("controller.quorum.request.timeout.ms", I, Some("2000")),
    key("controlled.shutdown.enable", B, Some("true")),
    key("auto.leader.rebalance.enable", B, Some("true")),
    key("leader.imbalance.check.interval.seconds", J, Some("300")),
    // Kafka 4 dropped leader.imbalance.per.broker.percentage (any imbalance triggers the
    // preferred-leader election); it is an unknown key here as there.
    key("metadata.log.dir", Str, None),
    key("metadata.log.segment.bytes", I, Some("1073741824")),
    key(
        "metadata.log.max.record.bytes.between.snapshots",
        J,
        Some("20971520"),
    ),
    key("metadata.max.idle.interval.ms", I, Some("500")),
    key("metadata.log.max.snapshot.interval.ms", J, Some("3600000")),
    // Followers (ReplicationConfigs).
    key("replica.lag.time.max.ms", J, Some("30000")),
    key("replica.fetch.max.bytes", I, Some("1048576")),
    key("replica.fetch.response.max.bytes", I, Some("10485760")),
    key("replica.fetch.wait.max.ms", I, Some("500")),
    key("replica.fetch.min.bytes", I, Some("1")),
    key("replica.fetch.backoff.ms", I, Some("1000")),
    key("replica.socket.timeout.ms", I, Some("30000")),
    key("replica.socket.receive.buffer.bytes", I, Some("65536")),
    key("num.replica.fetchers", I, Some("1")),
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
    key("transaction.state.log.replication.factor", S, Some("3")),
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
    "socket.send.buffer.bytes",
    "socket.receive.buffer.bytes",
    "transaction.state.log.min.isr",
    "authorizer.class.name",
    "log.cleaner.threads",
    // Tiered storage: Weir has none, so topics are refused `remote.storage.enable=true` as a
    // Kafka broker with the system disabled refuses them.
    "remote.log.storage.system.enable",
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

    #[test]
    fn cluster_and_replication_keys_are_described_with_kafkas_defaults() {
        let (b, _) = broker(
            "controller.quorum.voters=1@h:9093\nlisteners=PLAINTEXT://:9092,CONTROLLER://:9093\n\
             controller.listener.names=CONTROLLER\nreplica.lag.time.max.ms=10000",
        );
        let entries = b.describe();
        let find = |name: &str| {
            let e = entries.iter().find(|e| e.name == name).unwrap();
            (
                e.value.as_deref().map(str::to_owned),
                e.source,
                e.config_type,
            )
        };
        let default = |v: &str, t| (Some(v.to_owned()), ConfigSource::DefaultConfig, t);
        let set = |v: &str, t| (Some(v.to_owned()), ConfigSource::StaticBroker, t);
        assert_eq!(find("controller.quorum.voters"), set("1@h:9093", L));
        assert_eq!(find("controller.listener.names"), set("CONTROLLER", Str));
        assert_eq!(find("replica.lag.time.max.ms"), set("10000", J));
        assert_eq!(find("controller.quorum.bootstrap.servers"), default("", L));
        assert_eq!(
            find("inter.broker.listener.name"),
            (None, ConfigSource::DefaultConfig, Str)
        );
        assert_eq!(find("metadata.log.dir").0, None);
        for (key, value, ty) in [
            ("security.inter.broker.protocol", "PLAINTEXT", Str),
            ("broker.heartbeat.interval.ms", "2000", I),
            ("broker.session.timeout.ms", "9000", I),
            ("controller.quorum.election.timeout.ms", "1000", I),
            ("controller.quorum.fetch.timeout.ms", "2000", I),
            ("controller.quorum.election.backoff.max.ms", "1000", I),
            ("controller.quorum.request.timeout.ms", "2000", I),
            ("controlled.shutdown.enable", "true", B),
            ("auto.leader.rebalance.enable", "true", B),
            ("leader.imbalance.check.interval.seconds", "300", J),
            ("metadata.log.segment.bytes", "1073741824", I),
            (
                "metadata.log.max.record.bytes.between.snapshots",
                "20971520",
                J,
            ),
            ("metadata.max.idle.interval.ms", "500", I),
            ("metadata.log.max.snapshot.interval.ms", "3600000", J),
            ("replica.fetch.max.bytes", "1048576", I),
            ("replica.fetch.response.max.bytes", "10485760", I),
            ("replica.fetch.wait.max.ms", "500", I),
            ("replica.fetch.min.bytes", "1", I),
            ("replica.fetch.backoff.ms", "1000", I),
            ("replica.socket.timeout.ms", "30000", I),
            ("replica.socket.receive.buffer.bytes", "65536", I),
            ("num.replica.fetchers", "1", I),
            ("transaction.state.log.replication.factor", "3", S),
        ] {
            assert_eq!(find(key), default(value, ty), "{key}");
        }
        // None of them is "accepted but has no effect" any more.
        for k in BROKER_KEYS {
            assert!(
                !NO_EFFECT_KEYS.contains(&k.name),
                "{} is in both lists",
                k.name
            );
        }
    }
}
