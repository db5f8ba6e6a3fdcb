//! Which core owns which partition: one deterministic function, the same on every core and
//! across restarts (a partition's files are opened by whichever core owns it at start-up, so the
//! mapping may change with the core count without harm).

use weir_storage::TopicPartition;

/// Index of a core among the broker's executors (0-based, not the CPU number).
pub type ShardId = usize;

/// The core that owns `tp`. Partitions of one topic are spread round-robin from a per-topic
/// starting core, so a topic's partitions land on all cores evenly and topics start on
/// different cores.
pub fn shard_for(tp: &TopicPartition, cores: usize) -> ShardId {
    shard_for_parts(&tp.topic, tp.partition, cores)
}

pub fn shard_for_parts(topic: &str, partition: i32, cores: usize) -> ShardId {
    debug_assert!(cores > 0);
    // crc32c: stable across processes and versions, unlike std's randomized hasher.
    let start = crc32c::crc32c(topic.as_bytes()) as u64;
    ((start + partition.max(0) as u64) % cores.max(1) as u64) as ShardId
}

/// The core that runs the controller (the metadata log and topic administration).
pub const CONTROLLER_SHARD: ShardId = 0;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_balanced() {
        let tp = TopicPartition::new("orders", 3);
        assert_eq!(shard_for(&tp, 4), shard_for(&tp.clone(), 4));
        let mut counts = [0usize; 4];
        for p in 0..400 {
            counts[shard_for_parts("orders", p, 4)] += 1;
        }
        assert_eq!(counts, [100; 4]);
        assert_eq!(shard_for_parts("x", 7, 1), 0);
    }
}
