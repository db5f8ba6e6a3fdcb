//! Building a [`BrokerConfig`] from properties: every known key parsed and range-checked as Kafka
//! does, synonyms resolved by Kafka's precedence, unknown keys reported as warnings.

use std::path::PathBuf;

use super::broker_keys::{BROKER_KEYS, NO_EFFECT_KEYS, NO_EFFECT_PREFIXES};
use super::cluster::parse_roles;
use super::listeners::resolve_listeners;
use super::topic::check_broker_value;
use super::{
    csv, invalid, parse_bool, parse_int, parse_long, parse_num, parse_ratio, BrokerConfig,
    CleanupPolicy, ClusterConfig, ConfigError, Properties, ReplicationConfig, TimestampType,
};

/// Parses a CPU list as Linux writes them (`0,2-3,8`): ascending or not, no duplicates.
fn parse_cpu_list(text: &str) -> Result<Vec<usize>, String> {
    let mut cpus = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (lo, hi) = match part.split_once('-') {
            Some((a, b)) => (a.trim(), b.trim()),
            None => (part, part),
        };
        let lo: usize = lo
            .parse()
            .map_err(|_| format!("'{part}' is not a CPU number or range"))?;
        let hi: usize = hi
            .parse()
            .map_err(|_| format!("'{part}' is not a CPU number or range"))?;
        if lo > hi || hi >= libc::CPU_SETSIZE as usize {
            return Err(format!("'{part}' is not a valid CPU range"));
        }
        for c in lo..=hi {
            if cpus.contains(&c) {
                return Err(format!("CPU {c} is listed twice"));
            }
            cpus.push(c);
        }
    }
    if cpus.is_empty() {
        return Err("expected at least one CPU, e.g. 0,2-3".into());
    }
    Ok(cpus)
}

/// Typed access to properties, falling back to [`BROKER_KEYS`] defaults.
pub(super) struct Reader<'a> {
    pub(super) props: &'a Properties,
}

impl Reader<'_> {
    pub(super) fn raw(&self, key: &'static str) -> Option<&str> {
        self.props.get(key).or_else(|| {
            let def = BROKER_KEYS.iter().find(|k| k.name == key);
            debug_assert!(def.is_some(), "{key} missing from BROKER_KEYS");
            def.and_then(|k| k.default)
        })
    }

    pub(super) fn required(&self, key: &'static str) -> Result<&str, ConfigError> {
        self.raw(key)
            .ok_or_else(|| invalid(key, "", "a value is required"))
    }

    pub(super) fn int(&self, key: &'static str, min: i32) -> Result<i32, ConfigError> {
        parse_int(key, self.required(key)?, min)
    }

    pub(super) fn opt_int(&self, key: &'static str, min: i32) -> Result<Option<i32>, ConfigError> {
        self.raw(key).map(|v| parse_int(key, v, min)).transpose()
    }

    pub(super) fn long(&self, key: &'static str, min: i64) -> Result<i64, ConfigError> {
        parse_long(key, self.required(key)?, min)
    }

    pub(super) fn opt_long(&self, key: &'static str, min: i64) -> Result<Option<i64>, ConfigError> {
        self.raw(key).map(|v| parse_long(key, v, min)).transpose()
    }

    pub(super) fn boolean(&self, key: &'static str) -> Result<bool, ConfigError> {
        parse_bool(key, self.required(key)?)
    }

    pub(super) fn opt_string(&self, key: &'static str) -> Option<String> {
        self.raw(key).filter(|v| !v.is_empty()).map(str::to_owned)
    }
}

impl BrokerConfig {
    /// Builds the configuration from properties (file plus overrides), validating every known
    /// key; the strings are warnings (unknown or ineffective keys, ignored listeners).
    pub fn from_properties(props: &Properties) -> Result<(Self, Vec<String>), ConfigError> {
        let r = Reader { props };
        let mut warnings = Vec::new();
        for (key, _) in props.iter() {
            if BROKER_KEYS.iter().any(|k| k.name == key) {
                continue;
            }
            if NO_EFFECT_KEYS.contains(&key)
                || NO_EFFECT_PREFIXES.iter().any(|p| key.starts_with(p))
            {
                warnings.push(format!(
                    "configuration '{key}' is accepted but has no effect in Weir"
                ));
            } else {
                warnings.push(format!("unknown configuration '{key}' ignored"));
            }
        }

        let mut node_id = r.int("node.id", 0)?;
        if let Some(broker_id) = r.opt_int("broker.id", 0)? {
            if props.get("node.id").is_some() && broker_id != node_id {
                return Err(invalid(
                    "broker.id",
                    &broker_id.to_string(),
                    format!("must match node.id ({node_id}) when both are set"),
                ));
            }
            node_id = broker_id;
        }

        let process_roles = parse_roles(r.required("process.roles")?)?;
        let controller_listener_names: Vec<String> = r
            .raw("controller.listener.names")
            .map(|v| csv(v).map(str::to_ascii_uppercase).collect())
            .unwrap_or_default();
        let resolved = resolve_listeners(&r, &controller_listener_names, &mut warnings)?;
        let cluster = ClusterConfig::parse(&r, &mut warnings)?;
        let replication = ReplicationConfig::parse(&r)?;

        let log_dirs: Vec<PathBuf> = match r.raw("log.dirs") {
            Some(dirs) => csv(dirs).map(PathBuf::from).collect(),
            None => csv(r.required("log.dir")?).map(PathBuf::from).collect(),
        };
        if log_dirs.is_empty() {
            let key = if props.get("log.dirs").is_some() {
                "log.dirs"
            } else {
                "log.dir"
            };
            return Err(invalid(
                key,
                r.raw(key).unwrap_or(""),
                "expected at least one directory",
            ));
        }
        if log_dirs.len() > 1 {
            warnings.push(format!(
                "Weir stores data in the first log directory only ({}); the others are ignored",
                log_dirs[0].display()
            ));
        }

        let socket_request_max_bytes = r.int("socket.request.max.bytes", 1)?;
        let queued_max_request_bytes = r.long("queued.max.request.bytes", i64::MIN)?;
        if queued_max_request_bytes > 0
            && queued_max_request_bytes < i64::from(socket_request_max_bytes)
        {
            return Err(invalid(
                "queued.max.request.bytes",
                &queued_max_request_bytes.to_string(),
                format!(
                    "must be -1 or at least socket.request.max.bytes ({socket_request_max_bytes})"
                ),
            ));
        }

        // Kafka parses every synonym even when a higher-precedence one wins.
        let roll_ms = r.opt_long("log.roll.ms", 1)?;
        let roll_hours = r.int("log.roll.hours", 1)?;
        let retention_ms = r.opt_long("log.retention.ms", i64::MIN)?;
        let retention_minutes = r.opt_int("log.retention.minutes", i32::MIN)?;
        let retention_hours = r.int("log.retention.hours", i32::MIN)?;
        let retention = retention_ms
            .or(retention_minutes.map(|m| i64::from(m) * 60_000))
            .unwrap_or(i64::from(retention_hours) * 3_600_000);
        let roll_jitter_ms = r.opt_long("log.roll.jitter.ms", i64::MIN)?;
        let roll_jitter_hours = r.int("log.roll.jitter.hours", 0)?;
        let flush_ms = r.opt_long("log.flush.interval.ms", 0)?;
        let flush_scheduler_ms = r.long("log.flush.scheduler.interval.ms", 0)?;

        let group_min_session_timeout_ms = r.int("group.min.session.timeout.ms", 0)?;
        let group_max_session_timeout_ms = r.int("group.max.session.timeout.ms", 0)?;
        if group_max_session_timeout_ms < group_min_session_timeout_ms {
            return Err(invalid(
                "group.max.session.timeout.ms",
                &group_max_session_timeout_ms.to_string(),
                format!("must be at least group.min.session.timeout.ms ({group_min_session_timeout_ms})"),
            ));
        }

        let available = std::thread::available_parallelism().map_or(1, |n| n.get());
        let cpus = match r.opt_string("weir.cpus") {
            Some(list) => {
                Some(parse_cpu_list(&list).map_err(|reason| invalid("weir.cpus", &list, reason))?)
            }
            None => None,
        };
        let cores = match (r.opt_int("weir.cores", 1)?, &cpus) {
            (Some(n), _) => n as usize,
            (None, Some(list)) => list.len(),
            (None, None) => available,
        };
        if cores > available {
            warnings.push(format!(
                "weir.cores={cores} exceeds the {available} cores available; shards will share cores"
            ));
        }

        let config = Self {
            node_id,
            process_roles,
            controller_listener_names,
            cluster,
            replication,
            cluster_id: r.opt_string("cluster.id"),
            listeners: resolved.listeners,
            advertised_listeners: resolved.advertised,
            log_dirs,
            num_partitions: r.int("num.partitions", 1)?,
            default_replication_factor: r.int("default.replication.factor", 1)?,
            auto_create_topics_enable: r.boolean("auto.create.topics.enable")?,
            delete_topic_enable: r.boolean("delete.topic.enable")?,
            message_max_bytes: r.int("message.max.bytes", 0)?,
            socket_request_max_bytes,
            queued_max_request_bytes,
            max_connections: r.int("max.connections", 0)?,
            log_segment_bytes: r.int("log.segment.bytes", 14)?,
            log_roll_ms: roll_ms.unwrap_or(i64::from(roll_hours) * 3_600_000),
            log_retention_ms: retention.max(-1),
            log_retention_bytes: r.long("log.retention.bytes", i64::MIN)?,
            log_retention_check_interval_ms: r.long("log.retention.check.interval.ms", 1)?,
            log_index_interval_bytes: r.int("log.index.interval.bytes", 4)?,
            log_flush_interval_messages: r.long("log.flush.interval.messages", 1)?,
            log_flush_interval_ms: flush_ms.unwrap_or(flush_scheduler_ms),
            log_cleaner_enable: r.boolean("log.cleaner.enable")?,
            log_cleanup_policy: CleanupPolicy::parse(
                "log.cleanup.policy",
                r.required("log.cleanup.policy")?,
            )?,
            log_cleaner_delete_retention_ms: r.long("log.cleaner.delete.retention.ms", 0)?,
            log_cleaner_min_compaction_lag_ms: r.long("log.cleaner.min.compaction.lag.ms", 0)?,
            log_cleaner_max_compaction_lag_ms: r.long("log.cleaner.max.compaction.lag.ms", 1)?,
            log_cleaner_min_cleanable_ratio: parse_ratio(
                "log.cleaner.min.cleanable.ratio",
                r.required("log.cleaner.min.cleanable.ratio")?,
            )?,
            log_cleaner_backoff_ms: r.long("log.cleaner.backoff.ms", 0)?,
            log_cleaner_dedupe_buffer_size: r.long("log.cleaner.dedupe.buffer.size", 1 << 20)?,
            offsets_topic_segment_bytes: r.int("offsets.topic.segment.bytes", 1)?,
            log_message_timestamp_type: TimestampType::parse(
                "log.message.timestamp.type",
                r.required("log.message.timestamp.type")?,
            )?,
            min_insync_replicas: r.int("min.insync.replicas", 1)?,
            unclean_leader_election_enable: r.boolean("unclean.leader.election.enable")?,
            log_preallocate: r.boolean("log.preallocate")?,
            weir_log_preallocate_step_bytes: r.long("weir.log.preallocate.step.bytes", 0)?,
            log_roll_jitter_ms: roll_jitter_ms.unwrap_or(i64::from(roll_jitter_hours) * 3_600_000),
            log_index_size_max_bytes: r.int("log.index.size.max.bytes", 4)?,
            log_segment_delete_delay_ms: r.long("log.segment.delete.delay.ms", 0)?,
            compression_type: check_broker_value(
                "compression.type",
                r.required("compression.type")?,
            )?,
            compression_gzip_level: check_broker_value(
                "compression.gzip.level",
                r.required("compression.gzip.level")?,
            )?
            .parse()
            .expect("checked"),
            compression_lz4_level: check_broker_value(
                "compression.lz4.level",
                r.required("compression.lz4.level")?,
            )?
            .parse()
            .expect("checked"),
            compression_zstd_level: check_broker_value(
                "compression.zstd.level",
                r.required("compression.zstd.level")?,
            )?
            .parse()
            .expect("checked"),
            log_message_timestamp_before_max_ms: r
                .long("log.message.timestamp.before.max.ms", 0)?,
            log_message_timestamp_after_max_ms: r.long("log.message.timestamp.after.max.ms", 0)?,
            log_local_retention_ms: r.long("log.local.retention.ms", -2)?,
            log_local_retention_bytes: r.long("log.local.retention.bytes", -2)?,
            replica_high_watermark_checkpoint_interval_ms: r
                .long("replica.high.watermark.checkpoint.interval.ms", 1)?,
            offsets_topic_num_partitions: r.int("offsets.topic.num.partitions", 1)?,
            offsets_topic_replication_factor: parse_num(
                "offsets.topic.replication.factor",
                r.required("offsets.topic.replication.factor")?,
                1i16,
                "a 16-bit integer",
            )?,
            offsets_retention_minutes: r.int("offsets.retention.minutes", 1)?,
            group_initial_rebalance_delay_ms: r.int("group.initial.rebalance.delay.ms", 0)?,
            group_min_session_timeout_ms,
            group_max_session_timeout_ms,
            transaction_state_log_num_partitions: r
                .int("transaction.state.log.num.partitions", 1)?,
            transaction_state_log_replication_factor: parse_num(
                "transaction.state.log.replication.factor",
                r.required("transaction.state.log.replication.factor")?,
                1i16,
                "a 16-bit integer",
            )?,
            cores,
            cpus,
            open_segments_max: r.int("weir.log.open.segments.max", 1)? as usize,
            static_values: props
                .iter()
                .filter(|(k, _)| BROKER_KEYS.iter().any(|d| d.name == *k))
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
        };
        config.check_cluster(&r, &resolved.protocols, &mut warnings)?;
        Ok((config, warnings))
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{broker, broker_err};
    use super::*;
    use crate::config::ProcessRole;
    use std::path::Path;
    use weir_storage::LogConfig;

    #[test]
    fn defaults_are_kafkas() {
        let (c, warnings) = broker("");
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(c.node_id, 1);
        assert_eq!(
            c.process_roles,
            [ProcessRole::Broker, ProcessRole::Controller]
        );
        assert_eq!(
            c.client_listener().unwrap().to_string(),
            "PLAINTEXT://127.0.0.1:9092"
        );
        assert_eq!(c.advertised_listeners, c.listeners);
        assert_eq!(c.log_dir(), Path::new("./weir-data"));
        assert_eq!(c.num_partitions, 1);
        assert_eq!(c.default_replication_factor, 1);
        assert!(c.auto_create_topics_enable && c.delete_topic_enable && c.log_cleaner_enable);
        assert_eq!(c.message_max_bytes, 1_048_588);
        assert_eq!(c.socket_request_max_bytes, 104_857_600);
        assert_eq!(c.queued_max_request_bytes, -1);
        assert_eq!(c.max_connections, i32::MAX);
        assert_eq!(c.log_segment_bytes, 1 << 30);
        assert_eq!(c.log_roll_ms, 168 * 3_600_000);
        assert_eq!(c.log_retention_ms, 168 * 3_600_000);
        assert_eq!(c.log_retention_bytes, -1);
        assert_eq!(c.log_retention_check_interval_ms, 300_000);
        assert_eq!(c.log_index_interval_bytes, 4096);
        assert_eq!(c.log_flush_interval_messages, i64::MAX);
        assert_eq!(c.log_flush_interval_ms, i64::MAX);
        assert_eq!(c.log_cleanup_policy, CleanupPolicy::Delete);
        assert_eq!(c.log_cleaner_delete_retention_ms, 86_400_000);
        assert_eq!(c.log_cleaner_min_compaction_lag_ms, 0);
        assert_eq!(c.log_message_timestamp_type, TimestampType::CreateTime);
        assert_eq!(c.min_insync_replicas, 1);
        assert!(!c.unclean_leader_election_enable);
        assert_eq!(c.replica_high_watermark_checkpoint_interval_ms, 5000);
        assert_eq!(c.offsets_topic_num_partitions, 50);
        assert_eq!(c.offsets_topic_replication_factor, 3);
        assert_eq!(c.offsets_retention_minutes, 10080);
        assert_eq!(c.group_initial_rebalance_delay_ms, 3000);
        assert_eq!(c.group_min_session_timeout_ms, 6000);
        assert_eq!(c.group_max_session_timeout_ms, 1_800_000);
        assert_eq!(c.transaction_state_log_num_partitions, 50);
        assert_eq!(c.cluster_id, None);
        let available = std::thread::available_parallelism().unwrap().get();
        assert_eq!(c.cores, available);
        assert_eq!(c.open_segments_max, 16384);
        assert_eq!(c.log_config(), LogConfig::default());
    }

    #[test]
    fn retention_precedence_is_ms_then_minutes_then_hours() {
        assert_eq!(
            broker("log.retention.hours=1").0.log_retention_ms,
            3_600_000
        );
        let both = "log.retention.hours=1\nlog.retention.minutes=2";
        assert_eq!(broker(both).0.log_retention_ms, 120_000);
        let all = format!("{both}\nlog.retention.ms=5");
        assert_eq!(broker(&all).0.log_retention_ms, 5);
        assert_eq!(broker("log.retention.ms=-7").0.log_retention_ms, -1);
        assert_eq!(broker("log.retention.hours=-1").0.log_retention_ms, -1);
        // A losing synonym is still validated, as Kafka parses every key.
        assert!(
            broker_err("log.retention.ms=5\nlog.retention.hours=x").contains("log.retention.hours")
        );
        assert_eq!(broker("log.roll.hours=2").0.log_roll_ms, 7_200_000);
        assert_eq!(broker("log.roll.hours=2\nlog.roll.ms=9").0.log_roll_ms, 9);
    }

    #[test]
    fn errors_name_the_key_and_value() {
        let e = broker_err("log.segment.bytes=abc");
        assert_eq!(
            e,
            "invalid value \"abc\" for log.segment.bytes: expected a 32-bit integer"
        );
        for (text, key) in [
            ("log.segment.bytes=13", "log.segment.bytes"),
            ("num.partitions=0", "num.partitions"),
            ("message.max.bytes=-1", "message.max.bytes"),
            ("min.insync.replicas=0", "min.insync.replicas"),
            ("auto.create.topics.enable=yes", "auto.create.topics.enable"),
            ("listeners=PLAINTEXT://:70000", "listeners"),
            ("listeners=localhost:9092", "listeners"),
            ("log.cleanup.policy=shred", "log.cleanup.policy"),
            (
                "log.message.timestamp.type=createtime",
                "log.message.timestamp.type",
            ),
            ("node.id=2\nbroker.id=3", "broker.id"),
            ("process.roles=controller", "controller.quorum.voters"),
            ("process.roles=broker", "controller.quorum.voters"),
            ("queued.max.request.bytes=1000", "queued.max.request.bytes"),
            (
                "group.min.session.timeout.ms=10\ngroup.max.session.timeout.ms=5",
                "group.max",
            ),
            ("weir.cores=0", "weir.cores"),
            ("log.dirs= , ", "log.dirs"),
        ] {
            let e = broker_err(text);
            assert!(e.contains(key), "{text}: {e}");
        }
        assert!(broker_err("num.partitions=0").contains("must be at least 1"));
    }

    #[test]
    fn unknown_and_ineffective_keys_warn() {
        let (_, w) = broker("foo.bar=1\nnum.io.threads=8\nssl.keystore.location=/x\n");
        assert!(
            w.contains(&"unknown configuration 'foo.bar' ignored".to_owned()),
            "{w:?}"
        );
        let no_effect =
            |k: &str| format!("configuration '{k}' is accepted but has no effect in Weir");
        assert!(w.contains(&no_effect("num.io.threads")), "{w:?}");
        assert!(w.contains(&no_effect("ssl.keystore.location")), "{w:?}");
        assert_eq!(w.len(), 3);
    }

    #[test]
    fn cpu_lists_choose_the_pinned_set() {
        assert_eq!(parse_cpu_list("0,2-3").unwrap(), vec![0, 2, 3]);
        assert_eq!(parse_cpu_list(" 5 ").unwrap(), vec![5]);
        for bad in ["", "a", "3-1", "1,1", "0-"] {
            assert!(parse_cpu_list(bad).is_err(), "{bad:?}");
        }
        let (c, _) = broker("weir.cpus=0-1");
        assert_eq!((c.cores, c.cpus.clone()), (2, Some(vec![0, 1])));
        let (c, _) = broker("weir.cpus=1\nweir.cores=3");
        assert_eq!(
            c.cores, 3,
            "an explicit count wins; executors wrap over the CPUs"
        );
    }
}
