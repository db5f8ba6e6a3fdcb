//! Per-log settings. Field names follow Kafka's topic-level configs; the broker maps both the
//! broker-wide `log.*` names and per-topic overrides onto this struct.

/// Settings of one partition log. Defaults are Apache Kafka's.
#[derive(Debug, Clone, PartialEq)]
pub struct LogConfig {
    /// `segment.bytes` / `log.segment.bytes`: roll the active segment past this size.
    pub segment_bytes: u64,
    /// `segment.ms` / `log.roll.ms`: roll the active segment once its first batch is this old.
    pub segment_ms: i64,
    /// `index.interval.bytes` / `log.index.interval.bytes`: bytes between sparse index entries.
    pub index_interval_bytes: u64,
    /// `retention.ms` / `log.retention.ms`: delete segments whose newest record is older;
    /// negative means keep forever.
    pub retention_ms: i64,
    /// `retention.bytes` / `log.retention.bytes`: delete oldest segments while the log is larger;
    /// negative means no limit.
    pub retention_bytes: i64,
    /// `flush.messages` / `log.flush.interval.messages`: fsync after this many appended messages.
    pub flush_messages: u64,
    /// `flush.ms` / `log.flush.interval.ms`: fsync when the oldest unflushed append is this old.
    pub flush_ms: i64,
    /// `max.message.bytes` / `message.max.bytes`: the largest record batch accepted.
    pub max_message_bytes: usize,
    /// `cleanup.policy` contains `delete`: retention deletes old segments.
    pub cleanup_delete: bool,
    /// `cleanup.policy` contains `compact`: the cleaner keeps the latest record per key.
    pub compact: bool,
    /// `delete.retention.ms` / `log.cleaner.delete.retention.ms`: how long a tombstone stays
    /// after its segment was first cleaned, so consumers reading behind see the delete.
    pub delete_retention_ms: i64,
    /// `min.compaction.lag.ms`: records younger than this are never compacted.
    pub min_compaction_lag_ms: i64,
    /// `max.compaction.lag.ms`: a dirty record older than this makes the log cleanable
    /// whatever its dirty ratio.
    pub max_compaction_lag_ms: i64,
    /// `min.cleanable.dirty.ratio` / `log.cleaner.min.cleanable.ratio`: clean once the
    /// uncleaned part is at least this share of the log.
    pub min_cleanable_dirty_ratio: f64,
    /// `preallocate` / `log.preallocate`: reserve the whole `segment.bytes` of a new segment's
    /// blocks at once, as Kafka does when it is set.
    pub preallocate: bool,
    /// Otherwise the active segment's blocks are reserved ahead of the writes by as much as it
    /// already holds, at least [`PREALLOCATE_MIN_BYTES`] and at most this (0: never); see
    /// `log::preallocate` for why. Weir's `weir.log.preallocate.step.bytes`.
    pub preallocate_step_bytes: u64,
    /// `message.timestamp.type` / `log.message.timestamp.type`: whether a batch keeps its
    /// producer's CreateTime or is stamped with the time the leader appends it.
    pub timestamp_type: TimestampType,
    /// `message.timestamp.before.max.ms`: a CreateTime record older than now minus this is
    /// refused (`INVALID_TIMESTAMP`). `i64::MAX`: no bound.
    pub timestamp_before_max_ms: i64,
    /// `message.timestamp.after.max.ms`: a CreateTime record newer than now plus this is refused.
    pub timestamp_after_max_ms: i64,
    /// `compression.type` (with its codec's level): the codec batches are stored in. `None`
    /// (`producer`) keeps each batch as the producer compressed it.
    pub compression: Option<Compression>,
    /// `file.delete.delay.ms` / `log.segment.delete.delay.ms`: how long the files of a segment
    /// retention deleted stay (renamed `.deleted`) before they are unlinked.
    pub file_delete_delay_ms: i64,
    /// `segment.jitter.ms` / `log.roll.jitter.ms`: the most a segment's age roll is brought
    /// forward, a per-segment amount, so segments created together do not all roll together.
    pub segment_jitter_ms: i64,
    /// `segment.index.bytes` / `log.index.size.max.bytes`: the active segment rolls once its
    /// offset index (8 bytes an entry) or time index (12) would outgrow this.
    pub segment_index_bytes: u64,
}

/// `message.timestamp.type`: Kafka's `TimestampType` (the batch attribute bit 3 says which).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimestampType {
    CreateTime,
    LogAppendTime,
}

/// A codec a topic's `compression.type` names, with the level of `compression.<codec>.level`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Compression {
    /// Kafka's codec id: 0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd.
    pub codec: u8,
    /// The codec's level; `None` for the codec's default (and for none and snappy, which have
    /// no levels).
    pub level: Option<i32>,
}

/// The smallest reservation ahead of the writes: a partition that receives little reserves
/// little (with thousands of partitions, reservations are disk space nobody uses yet).
pub const PREALLOCATE_MIN_BYTES: u64 = 64 << 10;

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            segment_bytes: 1 << 30,
            segment_ms: 7 * 24 * 3600 * 1000,
            index_interval_bytes: 4096,
            retention_ms: 7 * 24 * 3600 * 1000,
            retention_bytes: -1,
            // Kafka leaves flushing to the OS and to replication by default.
            flush_messages: u64::MAX,
            flush_ms: i64::MAX,
            max_message_bytes: 1_048_588,
            cleanup_delete: true,
            compact: false,
            delete_retention_ms: 24 * 3600 * 1000,
            min_compaction_lag_ms: 0,
            max_compaction_lag_ms: i64::MAX,
            min_cleanable_dirty_ratio: 0.5,
            preallocate: false,
            preallocate_step_bytes: 16 << 20,
            timestamp_type: TimestampType::CreateTime,
            timestamp_before_max_ms: i64::MAX,
            // Kafka 4.0 (KIP-1030): records more than an hour in the future are refused.
            timestamp_after_max_ms: 3_600_000,
            compression: None,
            file_delete_delay_ms: 60_000,
            segment_jitter_ms: 0,
            segment_index_bytes: 10 << 20,
        }
    }
}

/// Offsets within a segment are stored relative to its base as u32, and file positions as u32,
/// exactly as Kafka's index format does, so a segment can never grow past 4 GiB.
pub const SEGMENT_BYTES_MAX: u64 = u32::MAX as u64;

/// Kafka's lower bound for `segment.bytes` (a batch header plus some records).
pub const SEGMENT_BYTES_MIN: u64 = 14;

impl LogConfig {
    /// Clamps values into the ranges the on-disk format can represent.
    pub fn normalized(mut self) -> Self {
        self.segment_bytes = self
            .segment_bytes
            .clamp(SEGMENT_BYTES_MIN, SEGMENT_BYTES_MAX);
        self.index_interval_bytes = self.index_interval_bytes.max(1);
        self.segment_ms = self.segment_ms.max(1);
        self.delete_retention_ms = self.delete_retention_ms.max(0);
        self.min_compaction_lag_ms = self.min_compaction_lag_ms.max(0);
        self.max_compaction_lag_ms = self.max_compaction_lag_ms.max(1);
        self.min_cleanable_dirty_ratio = self.min_cleanable_dirty_ratio.clamp(0.0, 1.0);
        self.timestamp_before_max_ms = self.timestamp_before_max_ms.max(0);
        self.timestamp_after_max_ms = self.timestamp_after_max_ms.max(0);
        self.file_delete_delay_ms = self.file_delete_delay_ms.max(0);
        self.segment_jitter_ms = self.segment_jitter_ms.max(0);
        self.segment_index_bytes = self.segment_index_bytes.max(4);
        self
    }
}
