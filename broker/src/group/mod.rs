//! The classic group coordinator: consumer groups (JoinGroup, SyncGroup, Heartbeat, LeaveGroup)
//! and committed offsets, kept in the internal topic `__consumer_offsets`.
//!
//! Thread-per-core: a group lives on the core that owns its `__consumer_offsets` partition
//! (Kafka's mapping, [`partition_for`]); every group request is forwarded there as a message,
//! so coordination takes no lock. [`state`] is the pure state machine (driven with explicit
//! time), [`records`] the on-disk key/value schemas, [`coordinator`] one core's groups and
//! their waiting requests, [`GroupError`] what can fail.
//!
//! The layer depends on no other part of the broker: the Kafka requests are mapped to group
//! calls at the protocol edge (`handlers::groups`), the coordinator reaches the core it runs
//! on only through [`coordinator::GroupHost`], and a [`GroupError`] becomes a Kafka error code
//! in `errors.rs`.

pub mod coordinator;
mod error;
pub mod records;
pub mod state;

pub use error::GroupError;

/// The internal topic holding committed offsets.
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

/// What the coordinator takes from the broker configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupSettings {
    /// `offsets.topic.num.partitions`.
    pub offsets_partitions: i32,
    /// `group.initial.rebalance.delay.ms`.
    pub initial_rebalance_delay_ms: i64,
    /// `group.min.session.timeout.ms`.
    pub min_session_timeout_ms: i32,
    /// `group.max.session.timeout.ms`.
    pub max_session_timeout_ms: i32,
    /// `offsets.retention.minutes`, in milliseconds.
    pub offsets_retention_ms: i64,
    /// `offsets.topic.segment.bytes`.
    pub offsets_segment_bytes: i32,
    /// `offsets.topic.replication.factor` (1 on a single node running a quorum of itself).
    pub offsets_replication_factor: i16,
}

impl Default for GroupSettings {
    fn default() -> Self {
        Self {
            offsets_partitions: 50,
            offsets_replication_factor: 3,
            initial_rebalance_delay_ms: 3000,
            min_session_timeout_ms: 6000,
            max_session_timeout_ms: 1_800_000,
            offsets_retention_ms: 7 * 24 * 3600 * 1000,
            offsets_segment_bytes: 100 << 20,
        }
    }
}

/// Java's `String.hashCode`: over UTF-16 code units, `h = 31 * h + c` with wrapping.
pub fn java_string_hash(s: &str) -> i32 {
    s.encode_utf16()
        .fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(c as i32))
}

/// The `__consumer_offsets` partition of a group: Kafka's
/// `Utils.abs(groupId.hashCode) % offsets.topic.num.partitions` (`abs` being `i & 0x7fffffff`).
pub fn partition_for(group_id: &str, partitions: i32) -> i32 {
    (java_string_hash(group_id) & 0x7fff_ffff) % partitions.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_hash_codes() {
        assert_eq!(java_string_hash(""), 0);
        assert_eq!(java_string_hash("a"), 97);
        assert_eq!(java_string_hash("group"), 98629247);
        // Overflowing and non-BMP strings, as Java computes them.
        assert_eq!(java_string_hash("hello world"), 1794106052);
        assert_eq!(java_string_hash("polygenelubricants"), i32::MIN);
        assert_eq!(java_string_hash("😀"), 1772899);
    }

    #[test]
    fn partition_mapping_is_kafkas() {
        assert_eq!(partition_for("group", 50), 98629247 % 50);
        // hashCode MIN_VALUE: Utils.abs gives 0, unlike Math.abs.
        assert_eq!(partition_for("polygenelubricants", 50), 0);
        assert_eq!(partition_for("", 50), 0);
        for g in ["a", "b", "consumer-group-1", "x".repeat(300).as_str()] {
            assert!((0..50).contains(&partition_for(g, 50)));
        }
    }
}
