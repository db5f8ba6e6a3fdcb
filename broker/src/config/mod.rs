//! Broker configuration, loaded the way `kafka-server-start.sh server.properties --override k=v`
//! loads Kafka's: built-in defaults, then a Java-`Properties` file, then command-line overrides.
//!
//! Property names, types, defaults and range checks are Apache Kafka's, so an existing
//! `server.properties` works unchanged: keys Weir does not implement are reported as warnings,
//! never as errors. Weir's own settings live under `weir.`. Topic-level configs ([`TopicConfig`])
//! fall back to their broker-wide `log.*` counterparts, exactly as in Kafka, and describe
//! themselves with the sources DescribeConfigs reports.
//!
//! Where each part lives: [`cli`] (the command line and [`load`]), [`properties`] (Java
//! properties files), [`parse`] (a [`BrokerConfig`] from properties), [`broker_keys`] (the
//! broker key table and DescribeConfigs of the broker), [`listeners`] (listeners and their
//! security protocols), [`cluster`] (roles, the controller quorum and the other KRaft
//! settings, with the helpers the runtime calls), [`replication`] (follower fetching),
//! [`values`] (shared value types and scalar parsers), [`topic`] (topic configs: definitions,
//! validation, synonyms, a topic's values).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use weir_storage::LogConfig;

pub mod broker_keys;
pub mod cli;
pub mod cluster;
pub mod listeners;
pub mod parse;
pub mod properties;
pub mod replication;
pub mod topic;
pub mod values;

pub use cli::{load, Cli};
pub use cluster::{ClusterConfig, HostPort, ProcessRole, Voter};
pub use listeners::{Listener, SecurityProtocol};
pub use properties::Properties;
pub use replication::ReplicationConfig;
pub use topic::{ConfigSynonym, TopicConfig};
pub(crate) use values::{csv, parse_bool, parse_int, parse_long, parse_num, parse_ratio};
pub use values::{CleanupPolicy, ConfigEntry, ConfigSource, ConfigType, TimestampType};

/// Why a configuration could not be loaded or applied.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A known key with a value of the wrong type or outside Kafka's allowed range.
    #[error("invalid value {value:?} for {key}: {reason}")]
    InvalidValue {
        key: String,
        value: String,
        reason: String,
    },
    /// A topic config name Kafka does not define (Kafka answers `INVALID_CONFIG`, in these
    /// words).
    #[error("Unknown topic config name: {key}")]
    UnknownKey { key: String },
    /// Topic configs valid one by one that Kafka refuses together (e.g. a min compaction lag
    /// above the max); the message is Kafka's.
    #[error("{0}")]
    Conflict(String),
    /// The configuration file could not be read.
    #[error("cannot read configuration file {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A malformed line; `origin` is the file path, or `<input>` for parsed text.
    #[error("{origin}:{line}: {reason}")]
    Parse {
        origin: String,
        line: usize,
        reason: String,
    },
}

pub(crate) fn invalid(key: &str, value: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError::InvalidValue {
        key: key.to_owned(),
        value: value.to_owned(),
        reason: reason.into(),
    }
}

/// Each `-1` (unbounded) `queued.max.request.bytes` becomes this much per core, so one core's
/// clients cannot buffer without limit.
pub const QUEUED_REQUEST_BYTES_PER_CORE_DEFAULT: u64 = 256 << 20;

/// The broker's static configuration. Each field documents its Kafka property; integer types are
/// Kafka's (INT = i32, LONG = i64, SHORT = i16) so values pass to the protocol unchanged.
#[derive(Debug, Clone, PartialEq)]
pub struct BrokerConfig {
    /// `node.id` (legacy `broker.id`; if both are set they must match). Default 1.
    pub node_id: i32,
    /// `process.roles`. Default `broker,controller`.
    pub process_roles: Vec<ProcessRole>,
    /// `controller.listener.names`, upper-cased. Default none (required once the quorum is
    /// configured; see [`cluster::rules`]).
    pub controller_listener_names: Vec<String>,
    /// The controller quorum, broker sessions, leader balancing and the metadata log.
    pub cluster: ClusterConfig,
    /// Followers' fetching from their leaders.
    pub replication: ReplicationConfig,
    /// `cluster.id`.
    pub cluster_id: Option<String>,
    /// `listeners`. Default `PLAINTEXT://127.0.0.1:9092` (Kafka binds all interfaces; Weir stays
    /// local until told otherwise). See [`BrokerConfig::client_listener`] and the other listener
    /// helpers in [`cluster`].
    pub listeners: Vec<Listener>,
    /// `advertised.listeners`; default: `listeners` without the controller listeners.
    pub advertised_listeners: Vec<Listener>,
    /// `log.dirs`, else `log.dir`. Default `./weir-data`; Weir uses the first.
    pub log_dirs: Vec<PathBuf>,
    /// `num.partitions` (≥ 1). Default 1.
    pub num_partitions: i32,
    /// `default.replication.factor` (≥ 1). Default 1.
    pub default_replication_factor: i32,
    /// `auto.create.topics.enable`. Default true.
    pub auto_create_topics_enable: bool,
    /// `delete.topic.enable`. Default true.
    pub delete_topic_enable: bool,
    /// `message.max.bytes` (≥ 0). Default 1048588.
    pub message_max_bytes: i32,
    /// `socket.request.max.bytes` (≥ 1). Default 104857600.
    pub socket_request_max_bytes: i32,
    /// `queued.max.request.bytes`; ≤ 0 is unbounded in Kafka. Default -1. See
    /// [`BrokerConfig::queued_request_bytes_per_core`].
    pub queued_max_request_bytes: i64,
    /// `max.connections` (≥ 0). Default `i32::MAX`.
    pub max_connections: i32,
    /// `log.segment.bytes` (≥ 14). Default 1073741824.
    pub log_segment_bytes: i32,
    /// `log.roll.ms`, else `log.roll.hours` (≥ 1). Default 168 h.
    pub log_roll_ms: i64,
    /// `log.retention.ms`, else `.minutes`, else `.hours`; -1 (any negative) = forever.
    /// Default 168 h.
    pub log_retention_ms: i64,
    /// `log.retention.bytes`; negative = no limit. Default -1.
    pub log_retention_bytes: i64,
    /// `log.retention.check.interval.ms` (≥ 1). Default 300000.
    pub log_retention_check_interval_ms: i64,
    /// `log.index.interval.bytes` (≥ 4). Default 4096.
    pub log_index_interval_bytes: i32,
    /// `log.flush.interval.messages` (≥ 1). Default `i64::MAX`.
    pub log_flush_interval_messages: i64,
    /// `log.flush.interval.ms`, else `log.flush.scheduler.interval.ms` (≥ 0). Default `i64::MAX`.
    pub log_flush_interval_ms: i64,
    /// `log.cleaner.enable`. Default true.
    pub log_cleaner_enable: bool,
    /// `log.cleanup.policy`. Default delete.
    pub log_cleanup_policy: CleanupPolicy,
    /// `log.cleaner.delete.retention.ms` (≥ 0). Default 86400000.
    pub log_cleaner_delete_retention_ms: i64,
    /// `log.cleaner.min.compaction.lag.ms` (≥ 0). Default 0.
    pub log_cleaner_min_compaction_lag_ms: i64,
    /// `log.cleaner.max.compaction.lag.ms` (≥ 1). Default `i64::MAX`.
    pub log_cleaner_max_compaction_lag_ms: i64,
    /// `log.cleaner.min.cleanable.ratio` (0 to 1). Default 0.5.
    pub log_cleaner_min_cleanable_ratio: f64,
    /// `log.cleaner.backoff.ms` (≥ 0): how often each core looks for logs to clean. Default 15000.
    pub log_cleaner_backoff_ms: i64,
    /// `log.cleaner.dedupe.buffer.size` (≥ 1 MiB): key-map memory, shared by the cores' cleaners
    /// (Kafka shares it by cleaner threads). Default 134217728.
    pub log_cleaner_dedupe_buffer_size: i64,
    /// `offsets.topic.segment.bytes` (≥ 1). Default 104857600.
    pub offsets_topic_segment_bytes: i32,
    /// `log.message.timestamp.type`. Default CreateTime.
    pub log_message_timestamp_type: TimestampType,
    /// `min.insync.replicas` (≥ 1). Default 1.
    pub min_insync_replicas: i32,
    /// `unclean.leader.election.enable`. Default false.
    pub unclean_leader_election_enable: bool,
    /// `log.preallocate`: reserve a new segment's whole `segment.bytes` of disk blocks at once
    /// (Kafka's meaning). Default false.
    pub log_preallocate: bool,
    /// `weir.log.preallocate.step.bytes` (≥ 0): otherwise the active segment's blocks are
    /// reserved ahead of its writes by as much as it holds, up to this (0: off). Why: on ext4,
    /// appends otherwise wait for the flusher's block allocation (tens of ms of produce
    /// latency). Default 16777216.
    pub weir_log_preallocate_step_bytes: i64,
    /// `log.roll.jitter.ms`, else `log.roll.jitter.hours` (≥ 0). Default 0.
    pub log_roll_jitter_ms: i64,
    /// `log.index.size.max.bytes` (≥ 4). Default 10485760.
    pub log_index_size_max_bytes: i32,
    /// `log.segment.delete.delay.ms` (≥ 0). Default 60000.
    pub log_segment_delete_delay_ms: i64,
    /// `compression.type`: `producer`, `uncompressed` or a codec. Default producer.
    pub compression_type: String,
    /// `compression.gzip.level` (1 to 9, or -1). Default -1.
    pub compression_gzip_level: i32,
    /// `compression.lz4.level` (1 to 17). Default 9.
    pub compression_lz4_level: i32,
    /// `compression.zstd.level` (-131072 to 22). Default 3.
    pub compression_zstd_level: i32,
    /// `log.message.timestamp.before.max.ms` (≥ 0). Default `i64::MAX`.
    pub log_message_timestamp_before_max_ms: i64,
    /// `log.message.timestamp.after.max.ms` (≥ 0). Default 3600000.
    pub log_message_timestamp_after_max_ms: i64,
    /// `log.local.retention.ms` (≥ -2; -2: as retention). Default -2.
    pub log_local_retention_ms: i64,
    /// `log.local.retention.bytes` (≥ -2; -2: as retention). Default -2.
    pub log_local_retention_bytes: i64,
    /// `replica.high.watermark.checkpoint.interval.ms` (≥ 1). Default 5000.
    pub replica_high_watermark_checkpoint_interval_ms: i64,
    /// `offsets.topic.num.partitions` (≥ 1). Default 50.
    pub offsets_topic_num_partitions: i32,
    /// `offsets.topic.replication.factor` (≥ 1). Default 3; stored as configured, the effective
    /// factor is min(this, live brokers).
    pub offsets_topic_replication_factor: i16,
    /// `offsets.retention.minutes` (≥ 1). Default 10080.
    pub offsets_retention_minutes: i32,
    /// `group.initial.rebalance.delay.ms` (≥ 0). Default 3000.
    pub group_initial_rebalance_delay_ms: i32,
    /// `group.min.session.timeout.ms` (≥ 0, ≤ max). Default 6000.
    pub group_min_session_timeout_ms: i32,
    /// `group.max.session.timeout.ms`. Default 1800000.
    pub group_max_session_timeout_ms: i32,
    /// `transaction.state.log.num.partitions` (≥ 1). Default 50.
    pub transaction_state_log_num_partitions: i32,
    /// `transaction.state.log.replication.factor` (≥ 1). Default 3; like the offsets topic's,
    /// the effective factor is min(this, live brokers).
    pub transaction_state_log_replication_factor: i16,
    /// `weir.cores` (≥ 1): executors pinned one per core. Default: the length of `weir.cpus`
    /// if set, else available parallelism.
    pub cores: usize,
    /// `weir.cpus`: which CPUs the executors are pinned to, e.g. `0,2-3`, in order (executor i
    /// on the i-th CPU, wrapping if there are more executors). Default: the CPUs this process
    /// may run on (its affinity mask, so `taskset` also chooses).
    pub cpus: Option<Vec<usize>>,
    /// `weir.log.open.segments.max` (≥ 1): open segment descriptors across the broker, split
    /// evenly between cores. Default 16384.
    pub open_segments_max: usize,
    /// Known keys set explicitly (trimmed), for DescribeConfigs sources.
    static_values: BTreeMap<String, String>,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        Self::from_properties(&Properties::new())
            .expect("built-in defaults are valid")
            .0
    }
}

impl BrokerConfig {
    /// Makes every relative path in the configuration absolute against `cwd`, once, at load:
    /// Kafka resolves them against the working directory, and everything below the config
    /// (glommio's `Directory::open` and `OpenOptions` open relative to descriptor -1, which
    /// fails with EBADF) then only ever sees absolute paths.
    pub fn resolve_relative_paths(&mut self, cwd: &Path) {
        let dirs = self
            .log_dirs
            .iter_mut()
            .chain(self.cluster.metadata_log_dir.as_mut());
        for dir in dirs {
            if dir.is_relative() {
                // `components()` drops `.` segments: `./weir-data` becomes `<cwd>/weir-data`.
                *dir = cwd.join(&*dir).components().collect();
            }
        }
    }

    /// The data directory Weir uses (the first of `log.dirs`).
    pub fn log_dir(&self) -> &Path {
        &self.log_dirs[0]
    }

    /// Bytes of requests one core may hold in memory. Kafka's `queued.max.request.bytes` is
    /// broker-wide, so a positive value is split between cores; unbounded (≤ 0) becomes
    /// [`QUEUED_REQUEST_BYTES_PER_CORE_DEFAULT`]. Never below `socket.request.max.bytes`, so the
    /// largest legal request always fits.
    pub fn queued_request_bytes_per_core(&self) -> u64 {
        let floor = self.socket_request_max_bytes as u64;
        let budget = if self.queued_max_request_bytes <= 0 {
            QUEUED_REQUEST_BYTES_PER_CORE_DEFAULT
        } else {
            self.queued_max_request_bytes as u64 / self.cores as u64
        };
        budget.max(floor)
    }

    /// Capacity of each core's `SegmentFileCache`.
    pub fn open_segments_per_core(&self) -> usize {
        (self.open_segments_max / self.cores).max(1)
    }

    /// Topic configuration for a topic without overrides.
    pub fn topic_defaults(&self) -> TopicConfig {
        TopicConfig::from_broker(self)
    }

    /// Storage settings for a topic without overrides.
    pub fn log_config(&self) -> LogConfig {
        self.topic_defaults().to_log_config()
    }

    /// Whether `key` was set by the file or an override (Kafka's STATIC_BROKER_CONFIG).
    pub fn is_set(&self, key: &str) -> bool {
        self.static_values.contains_key(key)
    }

    /// The value `key` was set to by the file or an override.
    pub fn static_value(&self, key: &str) -> Option<&str> {
        self.static_values.get(key).map(String::as_str)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn broker(text: &str) -> (BrokerConfig, Vec<String>) {
        BrokerConfig::from_properties(&Properties::parse(text).unwrap()).unwrap()
    }

    pub(crate) fn broker_err(text: &str) -> String {
        BrokerConfig::from_properties(&Properties::parse(text).unwrap())
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn relative_log_dirs_resolve_against_the_working_directory() {
        let (mut c, _) = broker("log.dirs=./weir-data,../other,/abs/dir");
        c.resolve_relative_paths(Path::new("/home/u/weir"));
        assert_eq!(
            c.log_dirs,
            [
                PathBuf::from("/home/u/weir/weir-data"),
                PathBuf::from("/home/u/weir/../other"),
                PathBuf::from("/abs/dir"),
            ]
        );
        let cli = Cli {
            log_dirs: Some("rel-data".into()),
            ..Cli::default()
        };
        let (loaded, _) = load(&cli).unwrap();
        assert!(loaded.log_dir().is_absolute());
        assert!(loaded.log_dir().ends_with("rel-data"));
    }

    #[test]
    fn log_dirs_wins_over_log_dir() {
        assert_eq!(broker("log.dir=/a").0.log_dir(), Path::new("/a"));
        let (c, w) = broker("log.dir=/a\nlog.dirs=/b, /c");
        assert_eq!(c.log_dirs, [PathBuf::from("/b"), PathBuf::from("/c")]);
        assert_eq!(w.len(), 1, "{w:?}");
    }

    #[test]
    fn per_core_budgets() {
        let (c, _) = broker("weir.cores=4\nweir.log.open.segments.max=100");
        assert_eq!(
            c.queued_request_bytes_per_core(),
            QUEUED_REQUEST_BYTES_PER_CORE_DEFAULT
        );
        assert_eq!(c.open_segments_per_core(), 25);
        let (c, _) = broker("weir.cores=4\nqueued.max.request.bytes=1000000000");
        assert_eq!(c.queued_request_bytes_per_core(), 250_000_000);
        let (c, _) = broker("weir.cores=4\nqueued.max.request.bytes=104857600");
        assert_eq!(c.queued_request_bytes_per_core(), 104_857_600);
    }

    /// Every configuration file the repository ships loads without an error or an unknown key,
    /// and says what its name promises.
    #[test]
    fn every_shipped_config_file_loads() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config");
        let mut files = Vec::new();
        for dir in [root.clone(), root.join("kraft")] {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.extension().is_some_and(|e| e == "properties") {
                    files.push(path);
                }
            }
        }
        files.sort();
        let names: Vec<String> = files
            .iter()
            .map(|f| f.strip_prefix(&root).unwrap().display().to_string())
            .collect();
        assert_eq!(
            names,
            [
                "kraft/broker-4.properties",
                "kraft/broker-5.properties",
                "kraft/controller-1.properties",
                "kraft/controller-2.properties",
                "kraft/controller-3.properties",
                "kraft/server-1.properties",
                "kraft/server-2.properties",
                "kraft/server-3.properties",
                "server.properties",
            ]
        );
        let voters = "1@127.0.0.1:9093,2@127.0.0.1:9095,3@127.0.0.1:9097";
        for (file, name) in files.iter().zip(&names) {
            let props = Properties::load_file(file).unwrap();
            let (c, warnings) =
                BrokerConfig::from_properties(&props).unwrap_or_else(|e| panic!("{name}: {e}"));
            for w in &warnings {
                assert!(
                    w.contains("is not opened"),
                    "{name}: unexpected warning {w}"
                );
            }
            let stem = file.file_stem().unwrap().to_str().unwrap();
            let n: i32 = stem.rsplit('-').next().unwrap().parse().unwrap_or(1);
            assert_eq!(c.node_id, n, "{name}");
            let quorum: Vec<String> = c.voters().iter().map(|v| v.to_string()).collect();
            if stem == "server" {
                // The single broker: a quorum of one, no controller listener.
                assert!(c.is_broker() && c.is_controller() && !c.has_configured_quorum());
                assert_eq!(quorum, ["1@127.0.0.1:9092"]);
                assert_eq!(c.controller_listener(), None);
                continue;
            }
            assert_eq!(quorum.join(","), voters, "{name}");
            let client = c.client_listener().map(|l| l.port);
            let controller = c.controller_listener().map(|l| l.port);
            let dir = format!("weir-data/{}", stem.replace("server", "node"));
            assert!(c.log_dir().ends_with(&dir), "{name}: {:?}", c.log_dir());
            match stem.split('-').next().unwrap() {
                "server" => {
                    assert!(c.is_broker() && c.is_controller(), "{name}");
                    let port = 9090 + 2 * n as u16;
                    assert_eq!((client, controller), (Some(port), Some(port + 1)), "{name}");
                    assert_eq!(c.default_replication_factor, 3);
                }
                "controller" => {
                    assert!(c.is_controller() && !c.is_broker(), "{name}");
                    assert_eq!((client, controller), (None, Some(9091 + 2 * n as u16)));
                }
                "broker" => {
                    assert!(c.is_broker() && !c.is_controller(), "{name}");
                    assert_eq!((client, controller), (Some(9094 + n as u16), None));
                    assert_eq!(c.controller_listener_name(), Some("CONTROLLER"));
                }
                other => panic!("{name}: unexpected kind {other}"),
            }
            if c.is_broker() {
                assert_eq!(
                    c.advertised_inter_broker_listener(),
                    c.advertised_client_listener(),
                    "{name}"
                );
            }
        }
    }
}
