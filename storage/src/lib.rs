//! # weir-storage: the partition log
//!
//! What it owns: the bytes of every partition on disk, in Kafka's layout (a directory
//! `<topic>-<partition>/` of segments, each a `.log` of v2 record batches exactly as on the wire,
//! a sparse `.index` and a `.timeindex`), and the offsets that name them.
//!
//! Invariants it keeps:
//! - Offsets increase by one per record, per partition, forever; they are never reused after a
//!   restart, except below a truncation point.
//! - A batch is validated (framing, magic 2, record count, CRC-32C) before any of it is written;
//!   the broker sets `baseOffset` and `partitionLeaderEpoch`, outside the CRC, and rewrites a
//!   producer's batch (new CRC) only where the topic says so: LogAppendTime, another codec.
//! - What was fsynced is never lost; what was not may be cut on recovery, only at a batch
//!   boundary, leaving the longest valid prefix.
//! - Reads see only batches whose write completed, and return whole batches.
//! - A log's producer state describes exactly its batches: checked as they are queued (in
//!   offset order), committed as they are written, rebuilt after a truncation.
//! - A log is owned by one core: `Rc`/`RefCell`, no `Arc`, no `Mutex`; the number of open `.log`
//!   descriptors per core is capped by [`SegmentFileCache`].
//!
//! Modules: [`batch`] (record batch format), [`index`] (index formats), [`segment`] (one
//! segment), [`records`] (the records inside a batch), [`validate`] (what the leader checks and
//! rewrites in a producer's batches: Kafka's LogValidator), [`recovery`] (validating scans), [`log`] (the partition log: append, read,
//! maintenance, open), [`producer`] (idempotent producers' sequences, which the log keeps,
//! rebuilds from its batches and snapshots beside its segments), [`file_cache`] (bounded descriptors), [`checkpoint`] (small durable
//! files), [`config`], [`error`], [`types`] (identifiers shared by every crate).

pub mod batch;
pub mod checkpoint;
pub mod config;
pub mod cpus;
pub mod error;
pub mod file_cache;
mod fs;
pub mod heartbeat;
pub mod index;
pub mod log;
pub mod producer;
pub mod records;
pub mod recovery;
pub mod segment;
#[cfg(any(test, feature = "test-support"))]
pub mod testing;
pub mod types;
pub mod validate;
mod wait;

pub use checkpoint::{take_clean_shutdown_marker, write_clean_shutdown_marker};
pub use config::{Compression, LogConfig, TimestampType};
pub use error::{BatchError, RecordError, StorageError};
pub use file_cache::SegmentFileCache;
/// For small files beside a log that other layers keep; none of them blocks the executor's
/// thread.
pub use fs::{list_dir, read_small_file, remove_if_exists, write_atomic};
pub use log::{
    AppendInfo, FileRegion, LogOffsets, LogStats, OpenReport, PartitionLog, ReadOutcome,
    RetentionOutcome, TimestampLookup,
};
pub use producer::{ProducerInfo, ProducerStateError};
pub use types::{LeaderEpoch, Offset, TopicPartition};
