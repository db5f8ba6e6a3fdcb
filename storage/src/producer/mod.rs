//! Idempotent-producer state of one partition: Kafka's `ProducerStateManager`,
//! `ProducerAppendInfo` and `ProducerStateEntry`, for idempotent, non-transactional producers.
//! The partition log owns it ([`crate::log`]'s `producers` module): it checks a producer's
//! batches as it queues them, records them as they are written, rebuilds the state from its
//! batch headers on open and after a truncation, and writes snapshots. Pure logic here; the
//! files are the log's business.
//!
//! # What is tracked, and why
//!
//! An idempotent producer stamps each batch with its producer id, epoch and a per-partition
//! sequence number, and keeps up to 5 requests in flight. When a request is retried (lost
//! response, timeout, a leader change), the leader must recognise the batch and answer with the
//! offsets it got the first time instead of appending it again. So for every producer id we keep
//! its epoch and the metadata of the last [`NUM_BATCHES_TO_RETAIN`] (5, Kafka's
//! `NUM_BATCHES_TO_RETAIN`) batches: first and last sequence, first and last offset, max
//! timestamp. Every replica keeps it, from the batches in its own log, so a new leader answers a
//! retry the old one appended.
//!
//! Rules, in Kafka's order (`UnifiedLog.analyzeAndValidateProducerState`, then
//! `ProducerAppendInfo.checkProducerEpoch` / `checkSequence`):
//! 1. A batch without a producer id (`producerId < 0`, Kafka's `hasProducerId()`) is not tracked.
//! 2. A batch with a producer id but a negative base sequence is refused (`INVALID_RECORD`, as
//!    Kafka's `LogValidator` does): it could never be deduplicated.
//! 3. Duplicate: same epoch, and one of the retained batches has the same first *and* last
//!    sequence → not appended; the producer is answered with the original offsets.
//! 4. Epoch older than the current one → `INVALID_PRODUCER_EPOCH` (47). (Kafka ≥ 2.7 answers a
//!    produce from an old epoch with `InvalidProducerEpoch`, not the fatal `PRODUCER_FENCED`.)
//! 5. Epoch newer than the current one → the sequence must be 0, else
//!    `OUT_OF_ORDER_SEQUENCE_NUMBER` (45); the old epoch's batches are forgotten.
//! 6. Same epoch → the base sequence must follow the last one (`last + 1`, wrapping from
//!    `i32::MAX` to 0), else `OUT_OF_ORDER_SEQUENCE_NUMBER`. A retry of a batch older than the
//!    retained five therefore fails as out of order, as in Kafka.
//! 7. Unknown producer id (never seen, or its state expired): **any** sequence is accepted and
//!    tracking starts there. This is Kafka's behaviour since KAFKA-7190 / KIP-360 (Kafka 2.4/2.5;
//!    unchanged through 3.x and 4.x): `checkSequence` says "If there is no current producer epoch
//!    (possibly because all producer records have been deleted due to retention or the
//!    DeleteRecords API) accept writes with any sequence number". Older brokers answered
//!    `UNKNOWN_PRODUCER_ID`, which made clients reset and re-send, re-introducing duplicates.
//!
//! The Kafka codes are the broker's mapping of [`ProducerStateError`] (`broker/src/errors.rs`).
//!
//! # Batches in flight
//!
//! Kafka validates and updates producer state under the partition lock, in the same critical
//! section as the append, so it never sees two unwritten batches at once. Weir's log assigns
//! offsets when a batch is queued, synchronously, and writes queued batches in groups later
//! (group commit); meanwhile other appends on the same core run. So the state keeps an explicit
//! **in-flight view**:
//!
//! - [`ProducerStateManager::check`] validates the batch against the committed state *plus* the
//!   batches already checked but not yet written for the same producer, and if the answer is
//!   [`Check::Append`] it registers the batch as in flight. A second batch from the same
//!   producer is thus validated against the first one's sequence even though the first one is
//!   not written yet — exactly what Kafka would have seen, since Kafka appends in that order.
//!   The log checks in the same synchronous step that assigns the offset and queues the batch,
//!   so check order is offset order. A follower's batches are registered unchecked
//!   ([`ProducerStateManager::track_replicated`]).
//! - [`ProducerStateManager::record`] commits a batch once its write completed. The log's writer
//!   records every batch of a written chunk, in offset order, whether or not the task that
//!   appended it still waits: a produce request dropped mid-append (its connection closed)
//!   leaves its batch in the log and in the state, so the retry is answered as a duplicate.
//!   `record` also accepts batches in another order than they were checked: a batch recorded
//!   early waits, already carrying its offsets, until those checked before it are recorded or
//!   aborted, so the committed state follows log order whoever calls it.
//! - [`ProducerStateManager::abort`] forgets one in-flight batch (the log rolls back the batches
//!   of a request of which a later batch was refused), and
//!   [`ProducerStateManager::clear_in_flight`] all of them (a failed write or a truncation fails
//!   every queued append together).
//! - A retry of a batch that is itself still in flight cannot be answered yet (its write has not
//!   completed): `check` returns [`ProducerStateError::DuplicateInFlight`], which the broker maps
//!   to the retriable `REQUEST_TIMED_OUT` (the client retries and then gets the original offsets).
//!
//! # Persistence
//!
//! As in Kafka, state survives a restart as a *snapshot* plus a *replay*: at a segment roll and
//! at a clean close the log writes [`ProducerStateManager::encode_snapshot`] as
//! `<offset>.snapshot` (Kafka's name), the offset being
//! [`ProducerStateManager::snapshot_offset`]; on open it decodes the newest snapshot whose offset
//! is ≤ the recovered log end (a snapshot from beyond the log end describes data lost in recovery
//! and is deleted), then feeds [`ProducerStateManager::rebuild_from_batches`] the headers of
//! every batch from the snapshot offset to the log end. With no usable snapshot it replays the
//! whole log. Replay is idempotent: a batch at or below what the state already reflects is
//! skipped. After a truncation the state is rebuilt the same way from a snapshot at or below the
//! new log end; it can not be "un-applied".
//!
//! Unlike Kafka, whose snapshot keeps only the *last* batch of each producer (so a retry of the
//! other four in-flight batches after a restart is refused as out of order), the snapshot keeps
//! all five retained batches.
//!
//! Expiry follows `producer.id.expiration.ms` (default 1 day): a producer whose last batch's
//! timestamp (the batch's `maxTimestamp`, as in Kafka) is that old is dropped. Kafka no longer
//! drops producers when the log start offset moves past their data (KAFKA-7190), so neither do
//! we: only snapshots below the log start go.
//!
//! Out of scope: transactions (the broker refuses transactional batches before appending;
//! control batches, which only transactions produce, are ignored during replay).

mod entry;
mod snapshot;
mod state;

#[cfg(test)]
mod snapshot_tests;
#[cfg(test)]
mod state_tests;
#[cfg(test)]
pub(crate) mod test_support;

pub use entry::{BatchMetadata, ProducerInfo};
pub use snapshot::SNAPSHOT_SUFFIX;
pub use state::{Check, ProducerStateManager};

/// Kafka's `RecordBatch.NO_PRODUCER_ID`. Any negative id means "not idempotent".
pub const NO_PRODUCER_ID: i64 = -1;
/// Kafka's `RecordBatch.NO_SEQUENCE`.
pub const NO_SEQUENCE: i32 = -1;
/// Batches retained per producer for duplicate detection: a client has at most 5 requests in
/// flight per connection when idempotence is on (Kafka's `ProducerStateEntry.NUM_BATCHES_TO_RETAIN`).
pub const NUM_BATCHES_TO_RETAIN: usize = 5;
/// Kafka's default `producer.id.expiration.ms`: one day.
pub const DEFAULT_PRODUCER_ID_EXPIRATION_MS: i64 = 86_400_000;

/// Why a batch (or a snapshot file) was refused. The broker maps each to a Kafka error code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProducerStateError {
    /// Kafka: `OUT_OF_ORDER_SEQUENCE_NUMBER` (45).
    #[error(
        "out of order sequence number for producer {producer_id} (epoch {epoch}): \
         {got} (incoming), {expected} (expected)"
    )]
    OutOfOrderSequence {
        producer_id: i64,
        epoch: i16,
        got: i32,
        expected: i32,
    },
    /// Kafka: `INVALID_PRODUCER_EPOCH` (47).
    #[error("producer {producer_id} epoch {got} is older than the current epoch {current}")]
    InvalidProducerEpoch {
        producer_id: i64,
        got: i16,
        current: i16,
    },
    /// Kafka: `INVALID_RECORD` (87): a producer id with a negative base sequence (Kafka's
    /// `LogValidator`).
    #[error("invalid sequence number {sequence} in record batch with producer id {producer_id}")]
    InvalidSequence { producer_id: i64, sequence: i32 },
    /// A retry of a batch that is queued but not yet written. Kafka cannot see this (it appends
    /// under a lock); the broker answers the retriable `REQUEST_TIMED_OUT` (7) so the client
    /// retries and then gets the original offsets.
    #[error(
        "batch {first_seq}..={last_seq} of producer {producer_id} (epoch {epoch}) is still being written"
    )]
    DuplicateInFlight {
        producer_id: i64,
        epoch: i16,
        first_seq: i32,
        last_seq: i32,
    },
    /// A snapshot file failed its checksum or its structural checks. Never sent to a client:
    /// the log falls back to an older snapshot or a full replay.
    #[error("corrupt producer state file: {0}")]
    CorruptSnapshot(String),
}
