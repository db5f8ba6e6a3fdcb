//! Typed errors at the storage boundary. The broker maps each to a Kafka error code in one place.

use crate::types::Offset;
use std::path::PathBuf;

/// Why a record batch was refused before anything of it reached disk.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    #[error("batch is {len} bytes, shorter than the {min}-byte v2 header")]
    TooShort { len: usize, min: usize },
    #[error("batchLength {batch_length} does not match the {available} bytes present")]
    LengthMismatch { batch_length: i64, available: usize },
    #[error("unsupported magic {0}; only record batch v2 is accepted")]
    BadMagic(i8),
    #[error("CRC-32C mismatch: header says {expected:#010x}, bytes give {actual:#010x}")]
    CrcMismatch { expected: u32, actual: u32 },
    #[error("record count {record_count} disagrees with lastOffsetDelta {last_offset_delta}")]
    BadRecordCount {
        record_count: i32,
        last_offset_delta: i32,
    },
    #[error("batch of {size} bytes exceeds max.message.bytes {max}")]
    TooLarge { size: usize, max: usize },
    /// Offsets the batch keeps (a follower's) that would pass the largest offset.
    #[error(
        "base offset {base_offset} + lastOffsetDelta {last_offset_delta} passes the largest offset"
    )]
    OffsetOverflow {
        base_offset: i64,
        last_offset_delta: i32,
    },
}

/// One record of a produced batch the leader refused, as Produce v8+ lists it in
/// `record_errors` (KIP-467): the record's index in its batch and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordError {
    pub batch_index: i32,
    pub message: String,
}

/// Errors of the partition log.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// A batch failed validation (Kafka: `CORRUPT_MESSAGE`, or `MESSAGE_TOO_LARGE` for `TooLarge`).
    #[error("invalid record batch: {0}")]
    InvalidBatch(#[from] BatchError),
    /// Kafka: `OFFSET_OUT_OF_RANGE`.
    #[error("offset {offset} is outside [{log_start}, {log_end}]")]
    OffsetOutOfRange {
        offset: Offset,
        log_start: Offset,
        log_end: Offset,
    },
    /// A follower append whose offsets do not continue the log (Kafka: `UNKNOWN_SERVER_ERROR`
    /// on the follower, which then truncates and refetches).
    #[error("follower batch at offset {base_offset} does not follow log end {log_end}")]
    NonMonotonicOffset {
        base_offset: Offset,
        log_end: Offset,
    },
    /// An I/O error took the log offline (Kafka: `KAFKA_STORAGE_ERROR`). Once a write has failed
    /// the log refuses further appends: offsets handed out after the failed write can no longer be
    /// honoured, exactly why Kafka marks the whole log directory offline.
    #[error("I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The log failed an earlier write and is offline (Kafka: `KAFKA_STORAGE_ERROR`).
    #[error("log {0} is offline after an earlier I/O error")]
    Offline(PathBuf),
    /// A file on disk is not in the expected format (e.g. a checkpoint).
    #[error("corrupt file {path}: {reason}")]
    CorruptFile { path: PathBuf, reason: String },
    /// The log was closed or deleted while the operation waited.
    #[error("log {0} is closed")]
    Closed(PathBuf),
    /// A lookup kept racing the compaction cleaner's segment swaps (Kafka: `REQUEST_TIMED_OUT`,
    /// which clients retry).
    #[error("log {0} changed under a lookup too often; try again")]
    Busy(PathBuf),
    /// A batch's records could not be read (compaction, key checks of a compacted topic).
    #[error("unreadable records in a batch: {0}")]
    Records(#[from] crate::records::RecordsError),
    /// Records of a produced batch failed the leader's checks (Kafka's
    /// `RecordValidationException`): the whole batch is refused, `records` says which and why.
    /// Kafka: `INVALID_TIMESTAMP` when a timestamp was among the reasons, else `INVALID_RECORD`.
    #[error("{message}")]
    RecordValidation {
        invalid_timestamp: bool,
        records: Vec<RecordError>,
        message: String,
    },
    /// A produced batch whose records are not well formed (Kafka's `InvalidRecordException`:
    /// `INVALID_RECORD`).
    #[error("{0}")]
    InvalidRecord(String),
    /// The leader refused an idempotent producer's batch (its sequence or epoch); see
    /// [`crate::producer`]. Nothing of the append was written.
    #[error("{0}")]
    Producer(#[from] crate::producer::ProducerStateError),
}

impl StorageError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: impl Into<std::io::Error>) -> Self {
        StorageError::Io {
            path: path.into(),
            source: source.into(),
        }
    }
}

/// glommio returns its own error type; storage reports plain `std::io::Error`s.
pub(crate) fn gio(path: &std::path::Path, e: glommio::GlommioError<()>) -> StorageError {
    StorageError::io(path, std::io::Error::from(e))
}

pub type Result<T, E = StorageError> = std::result::Result<T, E>;
