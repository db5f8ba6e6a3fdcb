//! How followers copy partitions from their leaders, with Kafka's names, defaults and checks
//! (its `ReplicationConfigs` and the replica part of `KafkaConfig.validateValues`);
//! `docs/REPLICATION.md` says how each is used. The replication settings Weir already acted on
//! as a single broker (`min.insync.replicas`, `unclean.leader.election.enable`,
//! `default.replication.factor`, `offsets.topic.replication.factor`,
//! `replica.high.watermark.checkpoint.interval.ms`) stay on [`BrokerConfig`] itself.

use super::parse::Reader;
#[cfg(doc)]
use super::BrokerConfig;
use super::{invalid, ConfigError};

/// The follower side of replication. Integer types are Kafka's (INT = i32, LONG = i64). Where
/// Kafka has no range check and a value below the floor given here cannot work, Weir refuses it:
/// each field says which floor is Kafka's and which is Weir's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicationConfig {
    /// `replica.lag.time.max.ms` (≥ 1, Weir's floor): a follower that has not caught up with the
    /// leader's log end for this long leaves the ISR. Default 30000.
    pub replica_lag_time_max_ms: i64,
    /// `replica.fetch.max.bytes` (≥ 0, Kafka's): bytes per partition in one follower fetch (a
    /// larger first batch is still sent whole). Default 1048576.
    pub replica_fetch_max_bytes: i32,
    /// `replica.fetch.response.max.bytes` (≥ 0, Kafka's): bytes per fetch response (a larger
    /// first batch is still sent whole). Default 10485760.
    pub replica_fetch_response_max_bytes: i32,
    /// `replica.fetch.wait.max.ms` (≥ 0, Weir's floor; at most `replica.lag.time.max.ms` and
    /// `replica.socket.timeout.ms`, Kafka's rules). Default 500.
    pub replica_fetch_wait_max_ms: i32,
    /// `replica.fetch.min.bytes` (≥ 0, Weir's floor). Default 1.
    pub replica_fetch_min_bytes: i32,
    /// `replica.fetch.backoff.ms` (≥ 0, Kafka's): pause after a failed fetch. Default 1000.
    pub replica_fetch_backoff_ms: i32,
    /// `replica.socket.timeout.ms` (≥ 1, Weir's floor). Default 30000.
    pub replica_socket_timeout_ms: i32,
    /// `replica.socket.receive.buffer.bytes` (≥ -1, Weir's floor; -1: the OS default).
    /// Default 65536.
    pub replica_socket_receive_buffer_bytes: i32,
    /// `num.replica.fetchers` (≥ 1, Weir's floor). Weir's fetchers are per core and leader
    /// (`docs/REPLICATION.md`), so this does not multiply connections. Default 1.
    pub num_replica_fetchers: i32,
    /// `weir.replication.acks.waiters.max` (≥ 1, Weir's): acks=all produces one partition holds
    /// waiting for the high watermark (each costs a channel and its request); past it a produce
    /// is answered REQUEST_TIMED_OUT at once. Kafka's purgatory has no bound; this one keeps a
    /// stalled ISR from growing memory without limit. Default 100000.
    pub acks_waiters_max: i32,
}

impl ReplicationConfig {
    pub(super) fn parse(r: &Reader<'_>) -> Result<Self, ConfigError> {
        let c = Self {
            replica_lag_time_max_ms: r.long("replica.lag.time.max.ms", 1)?,
            replica_fetch_max_bytes: r.int("replica.fetch.max.bytes", 0)?,
            replica_fetch_response_max_bytes: r.int("replica.fetch.response.max.bytes", 0)?,
            replica_fetch_wait_max_ms: r.int("replica.fetch.wait.max.ms", 0)?,
            replica_fetch_min_bytes: r.int("replica.fetch.min.bytes", 0)?,
            replica_fetch_backoff_ms: r.int("replica.fetch.backoff.ms", 0)?,
            replica_socket_timeout_ms: r.int("replica.socket.timeout.ms", 1)?,
            replica_socket_receive_buffer_bytes: r
                .int("replica.socket.receive.buffer.bytes", -1)?,
            num_replica_fetchers: r.int("num.replica.fetchers", 1)?,
            acks_waiters_max: r.int("weir.replication.acks.waiters.max", 1)?,
        };
        let wait = c.replica_fetch_wait_max_ms;
        // Kafka's two rules: a fetch that may wait longer than the socket allows times out for
        // nothing, and one that may wait longer than the lag bound drops followers from the ISR
        // while they wait.
        if i64::from(wait) > i64::from(c.replica_socket_timeout_ms) {
            return Err(invalid(
                "replica.socket.timeout.ms",
                &c.replica_socket_timeout_ms.to_string(),
                format!("must be at least replica.fetch.wait.max.ms ({wait}), to prevent unnecessary socket timeouts"),
            ));
        }
        if i64::from(wait) > c.replica_lag_time_max_ms {
            return Err(invalid(
                "replica.fetch.wait.max.ms",
                &wait.to_string(),
                format!(
                    "must be at most replica.lag.time.max.ms ({}), to prevent frequent changes in ISR",
                    c.replica_lag_time_max_ms
                ),
            ));
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use crate::config::tests::{broker, broker_err};

    #[test]
    fn defaults_are_kafkas() {
        let r = broker("").0.replication;
        assert_eq!(r.replica_lag_time_max_ms, 30_000);
        assert_eq!(r.replica_fetch_max_bytes, 1 << 20);
        assert_eq!(r.replica_fetch_response_max_bytes, 10 << 20);
        assert_eq!(r.replica_fetch_wait_max_ms, 500);
        assert_eq!(r.replica_fetch_min_bytes, 1);
        assert_eq!(r.replica_fetch_backoff_ms, 1000);
        assert_eq!(r.replica_socket_timeout_ms, 30_000);
        assert_eq!(r.replica_socket_receive_buffer_bytes, 65_536);
        assert_eq!(r.num_replica_fetchers, 1);
        assert_eq!(r.acks_waiters_max, 100_000);
        let c = broker("").0;
        assert_eq!(c.transaction_state_log_replication_factor, 3);
    }

    #[test]
    fn good_values_are_read() {
        let (c, w) = broker(
            "replica.lag.time.max.ms=10000\nreplica.fetch.max.bytes=0\n\
             replica.fetch.response.max.bytes=1000\nreplica.fetch.wait.max.ms=10000\n\
             replica.fetch.min.bytes=0\nreplica.fetch.backoff.ms=0\nreplica.socket.timeout.ms=10000\n\
             replica.socket.receive.buffer.bytes=-1\nnum.replica.fetchers=4\n\
             weir.replication.acks.waiters.max=7\n\
             transaction.state.log.replication.factor=1",
        );
        assert!(w.is_empty(), "{w:?}");
        let r = &c.replication;
        assert_eq!(r.replica_lag_time_max_ms, 10_000);
        assert_eq!(r.replica_fetch_max_bytes, 0);
        assert_eq!(r.replica_fetch_response_max_bytes, 1000);
        assert_eq!(r.replica_fetch_wait_max_ms, 10_000);
        assert_eq!(r.replica_fetch_min_bytes, 0);
        assert_eq!(r.replica_fetch_backoff_ms, 0);
        assert_eq!(r.replica_socket_timeout_ms, 10_000);
        assert_eq!(r.replica_socket_receive_buffer_bytes, -1);
        assert_eq!(r.num_replica_fetchers, 4);
        assert_eq!(r.acks_waiters_max, 7);
        assert_eq!(c.transaction_state_log_replication_factor, 1);
    }

    #[test]
    fn bad_values_name_their_key() {
        for (text, key) in [
            ("replica.lag.time.max.ms=0", "replica.lag.time.max.ms"),
            ("replica.fetch.max.bytes=-1", "replica.fetch.max.bytes"),
            (
                "replica.fetch.response.max.bytes=-1",
                "replica.fetch.response.max.bytes",
            ),
            (
                "replica.fetch.response.max.bytes=1MB",
                "replica.fetch.response.max.bytes",
            ),
            ("replica.fetch.wait.max.ms=-1", "replica.fetch.wait.max.ms"),
            ("replica.fetch.min.bytes=-1", "replica.fetch.min.bytes"),
            (
                "weir.replication.acks.waiters.max=0",
                "weir.replication.acks.waiters.max",
            ),
            ("replica.fetch.backoff.ms=-1", "replica.fetch.backoff.ms"),
            ("replica.socket.timeout.ms=0", "replica.socket.timeout.ms"),
            (
                "replica.socket.receive.buffer.bytes=-2",
                "replica.socket.receive.buffer.bytes",
            ),
            ("num.replica.fetchers=0", "num.replica.fetchers"),
            (
                "transaction.state.log.replication.factor=0",
                "transaction.state.log.replication.factor",
            ),
            (
                "transaction.state.log.replication.factor=40000",
                "transaction.state.log.replication.factor",
            ),
        ] {
            let e = broker_err(text);
            assert!(e.contains(&format!("for {key}:")), "{text}: {e}");
        }
    }

    #[test]
    fn fetch_wait_fits_the_socket_timeout_and_the_lag_bound() {
        let e = broker_err("replica.fetch.wait.max.ms=30001");
        assert!(e.contains("for replica.socket.timeout.ms:"), "{e}");
        let e = broker_err("replica.lag.time.max.ms=400");
        assert!(e.contains("for replica.fetch.wait.max.ms:"), "{e}");
        assert!(e.contains("replica.lag.time.max.ms (400)"), "{e}");
        // Equal is allowed, as in Kafka.
        let (c, _) = broker("replica.lag.time.max.ms=500\nreplica.socket.timeout.ms=500");
        assert_eq!(c.replication.replica_lag_time_max_ms, 500);
    }
}
