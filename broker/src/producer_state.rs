//! Idempotent-producer bookkeeping for one partition: Kafka's `ProducerStateManager` and
//! `ProducerAppendInfo`, for idempotent, non-transactional producers. Pure logic; the only
//! "I/O" is the explicit snapshot and producer-id encode/decode helpers.
//!
//! # What is tracked, and why
//!
//! An idempotent producer stamps each batch with its producer id, epoch and a per-partition
//! sequence number, and keeps up to 5 requests in flight. When a request is retried (lost
//! response, timeout), the broker must recognise the batch and answer with the offsets it got the
//! first time instead of appending it again. So for every producer id we keep its epoch and the
//! metadata of the last [`NUM_BATCHES_TO_RETAIN`] (5, Kafka's `NUM_BATCHES_TO_RETAIN`) batches:
//! first and last sequence, first and last offset, max timestamp.
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
//! # The two-phase append, and batches in flight on one core
//!
//! Kafka validates and updates producer state under the partition lock, in the same critical
//! section as the append, so it never sees two unwritten batches at once. Weir does not hold a
//! lock across the write: the storage layer assigns offsets synchronously when a batch is
//! enqueued, but the appender only learns them (in `AppendInfo`) after the group write completes,
//! and meanwhile other produce requests on the same core run. So the API is two-phase, with an
//! explicit **in-flight view**:
//!
//! - [`ProducerStateManager::check`] validates the batch against the committed state *plus* the
//!   batches already checked but not yet recorded for the same producer, and if the answer is
//!   [`Check::Append`] it registers the batch as in flight. A second batch from the same
//!   producer is thus validated against the first one's sequence even though the first one is
//!   not written yet — exactly what Kafka would have seen, since Kafka appends in that order.
//! - [`ProducerStateManager::record`] is called when the write succeeded, with the header
//!   carrying its assigned `base_offset`. In-flight batches are committed to the producer's state
//!   in **check order** (which is log order, see the requirement below), even if the tasks call
//!   `record` in a different order: a batch recorded early waits, already carrying its offsets,
//!   until those checked before it are recorded or aborted.
//! - [`ProducerStateManager::abort`] is called when the append failed (or was never enqueued);
//!   the in-flight entry is forgotten.
//!
//! Requirements on the caller:
//! - **No `.await` between `check` and enqueueing the append** (the synchronous part of
//!   `PartitionLog::append_as_leader`, i.e. its first poll). Then check order is enqueue order is
//!   offset order. The storage layer fails a write group and everything queued behind it
//!   together, so a later in-flight batch can not land when an earlier one was lost.
//! - Every `Check::Append` must end in exactly one `record` or `abort`, even if the request task
//!   is dropped (connection closed): use a drop guard that aborts, or run the append in a
//!   detached task. A forgotten in-flight batch holds back the commit of that producer's later
//!   batches, blocks its expiry, and pins [`ProducerStateManager::snapshot_offset`].
//!   (Aborting a batch that was in fact written is safe: the state simply does not retain it, so
//!   a retry of it is refused as out of order instead of being answered as a duplicate.)
//! - A retry of a batch that is itself still in flight cannot be answered yet (its offsets are
//!   not known): `check` returns [`ProducerStateError::DuplicateInFlight`], which maps to the
//!   retriable `REQUEST_TIMED_OUT` (the client retries and then gets the original offsets). A
//!   broker may instead wait until that batch is recorded and call `check` again, which then
//!   returns [`Check::Duplicate`].
//!
//! # Persistence
//!
//! As in Kafka, state survives a restart as a *snapshot* plus a *replay*: at segment roll and at
//! clean shutdown the broker writes [`ProducerStateManager::encode_snapshot`] (Kafka names these
//! files `<offset>.snapshot`, the offset being [`ProducerStateManager::snapshot_offset`]); on
//! open it decodes the newest snapshot whose offset is ≤ the recovered log end (a snapshot from
//! beyond the log end describes data lost in recovery and must be ignored), then feeds
//! [`ProducerStateManager::rebuild_from_batches`] the headers of every batch from the snapshot
//! offset to the log end, then calls [`ProducerStateManager::expire`]. With no usable snapshot it
//! replays the whole log into [`ProducerStateManager::new`]. Replay is idempotent: a batch at or
//! below what the state already reflects is skipped. After a log truncation (follower
//! reconciliation) the state must be rebuilt the same way from a snapshot at or below the new
//! log end; it can not be "un-applied".
//!
//! Unlike Kafka, whose snapshot keeps only the *last* batch of each producer (so a retry of the
//! other four in-flight batches after a restart is refused as out of order), the snapshot keeps
//! all five retained batches.
//!
//! Expiry follows `producer.id.expiration.ms` (default 1 day): a producer whose last batch's
//! timestamp (the batch's `maxTimestamp`, as in Kafka) is that old is dropped. Kafka no longer
//! drops producers when the log start offset moves past their data (KAFKA-7190), so neither do
//! we; there is no such hook.
//!
//! Producer ids are handed out by `InitProducerId`; [`ProducerIdAllocator`] reserves them in
//! durable blocks so none is ever reused after a restart.
//!
//! Out of scope: transactions (the broker refuses transactional batches before calling `check`;
//! control batches, which only transactions produce, are ignored during replay).

use std::borrow::Borrow;
use std::collections::{HashMap, VecDeque};

use weir_storage::batch::BatchHeader;
use weir_storage::types::Offset;

/// Kafka's `RecordBatch.NO_PRODUCER_ID`. Any negative id means "not idempotent".
pub const NO_PRODUCER_ID: i64 = -1;
/// Kafka's `RecordBatch.NO_SEQUENCE`.
pub const NO_SEQUENCE: i32 = -1;
/// Batches retained per producer for duplicate detection: a client has at most 5 requests in
/// flight per connection when idempotence is on (Kafka's `ProducerStateEntry.NUM_BATCHES_TO_RETAIN`).
pub const NUM_BATCHES_TO_RETAIN: usize = 5;
/// Kafka's default `producer.id.expiration.ms`: one day.
pub const DEFAULT_PRODUCER_ID_EXPIRATION_MS: i64 = 86_400_000;

/// Kafka error codes the errors of this module map to.
pub mod error_codes {
    pub const UNKNOWN_SERVER_ERROR: i16 = -1;
    pub const REQUEST_TIMED_OUT: i16 = 7;
    pub const OUT_OF_ORDER_SEQUENCE_NUMBER: i16 = 45;
    pub const INVALID_PRODUCER_EPOCH: i16 = 47;
    pub const INVALID_RECORD: i16 = 87;
}

/// Why a batch (or a persisted file) was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProducerStateError {
    /// `OUT_OF_ORDER_SEQUENCE_NUMBER` (45).
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
    /// `INVALID_PRODUCER_EPOCH` (47).
    #[error("producer {producer_id} epoch {got} is older than the current epoch {current}")]
    InvalidProducerEpoch {
        producer_id: i64,
        got: i16,
        current: i16,
    },
    /// `INVALID_RECORD` (87): a producer id with a negative base sequence (Kafka's `LogValidator`).
    #[error("invalid sequence number {sequence} in record batch with producer id {producer_id}")]
    InvalidSequence { producer_id: i64, sequence: i32 },
    /// A retry of a batch that is checked but not yet written: its offsets are not known yet.
    /// Kafka cannot see this (it appends under a lock); mapped to the retriable
    /// `REQUEST_TIMED_OUT` (7) so the client retries and then gets [`Check::Duplicate`].
    #[error(
        "batch {first_seq}..={last_seq} of producer {producer_id} (epoch {epoch}) is still being written"
    )]
    DuplicateInFlight {
        producer_id: i64,
        epoch: i16,
        first_seq: i32,
        last_seq: i32,
    },
    /// A snapshot or producer-id file failed its checksum or its structural checks. Never sent
    /// to a client: the broker falls back to an older snapshot or a full replay.
    #[error("corrupt producer state file: {0}")]
    CorruptSnapshot(String),
}

impl ProducerStateError {
    /// The Kafka error code to answer the produce request with.
    pub fn kafka_error_code(&self) -> i16 {
        match self {
            Self::OutOfOrderSequence { .. } => error_codes::OUT_OF_ORDER_SEQUENCE_NUMBER,
            Self::InvalidProducerEpoch { .. } => error_codes::INVALID_PRODUCER_EPOCH,
            Self::InvalidSequence { .. } => error_codes::INVALID_RECORD,
            Self::DuplicateInFlight { .. } => error_codes::REQUEST_TIMED_OUT,
            Self::CorruptSnapshot(_) => error_codes::UNKNOWN_SERVER_ERROR,
        }
    }
}

/// What to do with a batch that passed [`ProducerStateManager::check`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// Append it, then call [`ProducerStateManager::record`] (or `abort` if the append fails).
    Append,
    /// A retry of a batch already in the log: do not append; answer with these offsets.
    Duplicate {
        first_offset: Offset,
        last_offset: Offset,
        /// The batch's max timestamp as appended (the append time on a LogAppendTime topic):
        /// Kafka answers a duplicate with it as the response's `log_append_time_ms`.
        timestamp: i64,
    },
    /// No producer id: append it; nothing to record (calling `record` is harmless).
    Untracked,
}

/// One retained batch of a producer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchMetadata {
    pub first_seq: i32,
    pub last_seq: i32,
    pub first_offset: Offset,
    pub last_offset: Offset,
    /// The batch's `maxTimestamp`; the last batch's drives expiry.
    pub timestamp: i64,
}

impl BatchMetadata {
    fn of(h: &BatchHeader) -> Self {
        Self {
            first_seq: h.base_sequence,
            last_seq: last_sequence(h),
            first_offset: h.base_offset,
            last_offset: h.last_offset(),
            timestamp: h.max_timestamp,
        }
    }
}

/// A producer's committed state, as [`ProducerStateManager::producer`] reports it (what Kafka's
/// DescribeProducers returns, minus transactions).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerInfo {
    pub producer_id: i64,
    pub epoch: i16,
    /// Retained batches, oldest first; never empty.
    pub batches: Vec<BatchMetadata>,
}

impl ProducerInfo {
    pub fn last_sequence(&self) -> i32 {
        self.batches.last().map_or(NO_SEQUENCE, |b| b.last_seq)
    }
    pub fn last_timestamp(&self) -> i64 {
        self.batches.last().map_or(-1, |b| b.timestamp)
    }
}

/// Committed state of one producer: the batches in the log, newest last, all of `epoch`.
/// Invariant: `batches` holds 1..=NUM_BATCHES_TO_RETAIN entries in increasing offset order.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ProducerEntry {
    epoch: i16,
    batches: VecDeque<BatchMetadata>,
}

impl ProducerEntry {
    fn last(&self) -> &BatchMetadata {
        self.batches
            .back()
            .expect("a producer entry is never empty")
    }

    /// Kafka's `ProducerStateEntry.addBatch`: a new epoch forgets the old epoch's batches.
    fn push(&mut self, epoch: i16, meta: BatchMetadata) {
        if epoch != self.epoch {
            self.epoch = epoch;
            self.batches.clear();
        }
        if self.batches.len() == NUM_BATCHES_TO_RETAIN {
            self.batches.pop_front();
        }
        self.batches.push_back(meta);
    }
}

/// A batch that passed `check` and is being written.
#[derive(Debug, Clone, PartialEq, Eq)]
struct InFlight {
    epoch: i16,
    first_seq: i32,
    last_seq: i32,
    /// `map_end_offset` when it was checked: its offset will be at least this, since everything
    /// recorded by then was enqueued before it. Bounds [`ProducerStateManager::snapshot_offset`].
    floor_offset: Offset,
    /// Set by `record` when it completes before a batch checked earlier does.
    written: Option<BatchMetadata>,
}

/// One entry of a producer's duplicate-detection window (committed or in flight), newest first.
struct WindowItem {
    epoch: i16,
    first_seq: i32,
    last_seq: i32,
    /// `None` while the batch is in flight and not yet written; else its offsets and timestamp.
    offsets: Option<(Offset, Offset, i64)>,
}

/// Idempotent-producer state of one partition. Owned by the partition's core; not `Sync`-shared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerStateManager {
    producers: HashMap<i64, ProducerEntry>,
    /// Per producer, batches checked but not yet recorded or aborted, in check order.
    in_flight: HashMap<i64, VecDeque<InFlight>>,
    /// One past the last offset the committed state reflects (Kafka's `mapEndOffset`). Replay
    /// skips batches below it, so replaying the same headers twice changes nothing.
    map_end_offset: Offset,
    expiration_ms: i64,
}

impl Default for ProducerStateManager {
    fn default() -> Self {
        Self::new(DEFAULT_PRODUCER_ID_EXPIRATION_MS)
    }
}

impl ProducerStateManager {
    /// Empty state for a new (or fully replayed) partition.
    pub fn new(producer_id_expiration_ms: i64) -> Self {
        Self {
            producers: HashMap::new(),
            in_flight: HashMap::new(),
            map_end_offset: 0,
            expiration_ms: producer_id_expiration_ms,
        }
    }

    /// `producer.id.expiration.ms` is a dynamic broker config.
    pub fn set_producer_id_expiration_ms(&mut self, ms: i64) {
        self.expiration_ms = ms;
    }

    /// Validates a batch before it is appended; see the module doc for the protocol. On
    /// [`Check::Append`] the batch is registered as in flight and must later be passed to
    /// [`record`](Self::record) or [`abort`](Self::abort).
    pub fn check(&mut self, h: &BatchHeader) -> Result<Check, ProducerStateError> {
        let check = self.evaluate(h)?;
        if check == Check::Append {
            let floor_offset = self.map_end_offset;
            self.in_flight
                .entry(h.producer_id)
                .or_default()
                .push_back(InFlight {
                    epoch: h.producer_epoch,
                    first_seq: h.base_sequence,
                    last_seq: last_sequence(h),
                    floor_offset,
                    written: None,
                });
        }
        Ok(check)
    }

    /// The pure part of `check`.
    fn evaluate(&self, h: &BatchHeader) -> Result<Check, ProducerStateError> {
        let pid = h.producer_id;
        if pid < 0 {
            return Ok(Check::Untracked);
        }
        if h.base_sequence < 0 {
            return Err(ProducerStateError::InvalidSequence {
                producer_id: pid,
                sequence: h.base_sequence,
            });
        }
        let epoch = h.producer_epoch;
        let first_seq = h.base_sequence;
        let last_seq = last_sequence(h);

        // The effective current epoch is the newest batch's, in flight or committed: in flight
        // batches come after every committed one.
        let current = match self.window(pid).next() {
            Some(newest) => newest.epoch,
            // Unknown producer: any sequence (Kafka ≥ 2.4/2.5, see the module doc).
            None => return Ok(Check::Append),
        };

        if epoch == current {
            if let Some(dup) = self
                .window(pid)
                .find(|b| b.first_seq == first_seq && b.last_seq == last_seq)
            {
                return match dup.offsets {
                    Some((first_offset, last_offset, timestamp)) => Ok(Check::Duplicate {
                        first_offset,
                        last_offset,
                        timestamp,
                    }),
                    None => Err(ProducerStateError::DuplicateInFlight {
                        producer_id: pid,
                        epoch,
                        first_seq,
                        last_seq,
                    }),
                };
            }
        }

        if epoch < current {
            return Err(ProducerStateError::InvalidProducerEpoch {
                producer_id: pid,
                got: epoch,
                current,
            });
        }
        if epoch > current {
            // A bumped epoch restarts the sequence at 0.
            if first_seq != 0 {
                return Err(ProducerStateError::OutOfOrderSequence {
                    producer_id: pid,
                    epoch,
                    got: first_seq,
                    expected: 0,
                });
            }
            return Ok(Check::Append);
        }
        let last = self.window(pid).next().map_or(NO_SEQUENCE, |b| b.last_seq);
        if in_sequence(last, first_seq) {
            Ok(Check::Append)
        } else {
            Err(ProducerStateError::OutOfOrderSequence {
                producer_id: pid,
                epoch,
                got: first_seq,
                expected: next_sequence(last),
            })
        }
    }

    /// The last [`NUM_BATCHES_TO_RETAIN`] batches of `pid` of the newest epoch, in flight ones
    /// included, newest first. This is the state Kafka would hold had the in-flight batches
    /// already been appended (it appends them in this order).
    fn window(&self, pid: i64) -> impl Iterator<Item = WindowItem> + '_ {
        let in_flight = self.in_flight.get(&pid).into_iter().flat_map(|q| {
            q.iter().rev().map(|f| WindowItem {
                epoch: f.epoch,
                first_seq: f.first_seq,
                last_seq: f.last_seq,
                offsets: f
                    .written
                    .map(|m| (m.first_offset, m.last_offset, m.timestamp)),
            })
        });
        let committed = self.producers.get(&pid).into_iter().flat_map(|e| {
            e.batches.iter().rev().map(move |m| WindowItem {
                epoch: e.epoch,
                first_seq: m.first_seq,
                last_seq: m.last_seq,
                offsets: Some((m.first_offset, m.last_offset, m.timestamp)),
            })
        });
        let mut all = in_flight.chain(committed).peekable();
        let newest_epoch = all.peek().map(|b| b.epoch);
        // Epochs never decrease along the queue, so "same epoch as the newest" is a prefix; an
        // epoch bump hides the older epoch's batches, as Kafka's `maybeUpdateProducerEpoch` clears them.
        all.take_while(move |b| Some(b.epoch) == newest_epoch)
            .take(NUM_BATCHES_TO_RETAIN)
    }

    /// Commits a batch whose append succeeded. `h.base_offset` must be the assigned offset
    /// (`AppendInfo::first_offset` for a one-batch produce). For a log-append-time topic, set
    /// `h.max_timestamp` to the append time first, as Kafka does, so expiry uses it.
    ///
    /// Batches checked earlier for the same producer and not yet recorded hold this one back
    /// (it is kept, with its offsets, until they are recorded or aborted), so the committed
    /// state always follows log order. A header that was never checked (or an untracked one) is
    /// applied as in replay.
    pub fn record(&mut self, h: &BatchHeader) {
        let pid = h.producer_id;
        if pid < 0 {
            self.map_end_offset = self.map_end_offset.max(h.last_offset() + 1);
            return;
        }
        let meta = BatchMetadata::of(h);
        let found = self.in_flight.get_mut(&pid).and_then(|q| {
            q.iter_mut().find(|f| {
                f.written.is_none()
                    && f.epoch == h.producer_epoch
                    && f.first_seq == meta.first_seq
                    && f.last_seq == meta.last_seq
            })
        });
        match found {
            Some(f) => {
                f.written = Some(meta);
                self.drain_in_flight(pid);
            }
            None => {
                tracing::debug!(
                    producer_id = pid,
                    base_offset = h.base_offset,
                    "producer state: recording a batch that was not checked; applied as replay"
                );
                self.replay(h);
            }
        }
    }

    /// Forgets an in-flight batch whose append failed or never happened.
    pub fn abort(&mut self, h: &BatchHeader) {
        let pid = h.producer_id;
        let last_seq = last_sequence(h);
        let Some(q) = self.in_flight.get_mut(&pid) else {
            return;
        };
        if let Some(i) = q.iter().position(|f| {
            f.written.is_none()
                && f.epoch == h.producer_epoch
                && f.first_seq == h.base_sequence
                && f.last_seq == last_seq
        }) {
            q.remove(i);
        }
        // Batches after it that are already written may now commit.
        self.drain_in_flight(pid);
    }

    /// Commits the written prefix of `pid`'s in-flight queue, in check order.
    fn drain_in_flight(&mut self, pid: i64) {
        let Some(q) = self.in_flight.get_mut(&pid) else {
            return;
        };
        while let Some(meta) = q.front().and_then(|f| f.written) {
            let epoch = q.pop_front().expect("front exists").epoch;
            match self.producers.get_mut(&pid) {
                // Already applied (a repeated `record` took the replay path): keep log order.
                Some(e) if e.last().last_offset >= meta.last_offset => {}
                Some(e) => e.push(epoch, meta),
                None => {
                    self.producers.insert(
                        pid,
                        ProducerEntry {
                            epoch,
                            batches: VecDeque::from([meta]),
                        },
                    );
                }
            }
            self.map_end_offset = self.map_end_offset.max(meta.last_offset + 1);
        }
        if q.is_empty() {
            self.in_flight.remove(&pid);
        }
    }

    /// Applies batch headers read back from the log (on open, after [`decode_snapshot`], from the
    /// snapshot offset to the log end; or batches a follower copied from the leader), in offset
    /// order. Nothing is validated, as Kafka does for its `REPLICATION` origin: the log is the
    /// truth. Batches the state already reflects are skipped, so replaying twice is harmless.
    /// Returns how many batches changed the state.
    ///
    /// [`decode_snapshot`]: Self::decode_snapshot
    pub fn rebuild_from_batches<I>(&mut self, batches: I) -> usize
    where
        I: IntoIterator,
        I::Item: Borrow<BatchHeader>,
    {
        batches
            .into_iter()
            .filter(|h| self.replay(h.borrow()))
            .count()
    }

    fn replay(&mut self, h: &BatchHeader) -> bool {
        let last_offset = h.last_offset();
        if last_offset < self.map_end_offset {
            return false; // already reflected (or deliberately absent: expired)
        }
        self.map_end_offset = last_offset + 1;
        // Control batches (transaction markers) carry no sequence; transactions are out of scope.
        if h.producer_id < 0 || h.is_control() {
            return false;
        }
        let meta = BatchMetadata::of(h);
        match self.producers.get_mut(&h.producer_id) {
            Some(e) if e.last().last_offset >= last_offset => false,
            Some(e) => {
                e.push(h.producer_epoch, meta);
                true
            }
            None => {
                self.producers.insert(
                    h.producer_id,
                    ProducerEntry {
                        epoch: h.producer_epoch,
                        batches: VecDeque::from([meta]),
                    },
                );
                true
            }
        }
    }

    /// Drops producers whose last batch's timestamp is `producer.id.expiration.ms` or more before
    /// `now_ms` (Kafka's `isProducerExpired` uses `>=`). Producers with batches in flight are
    /// kept. Returns how many were dropped.
    pub fn expire(&mut self, now_ms: i64) -> usize {
        let before = self.producers.len();
        let (in_flight, expiration_ms) = (&self.in_flight, self.expiration_ms);
        self.producers.retain(|pid, e| {
            in_flight.contains_key(pid) || now_ms.saturating_sub(e.last().timestamp) < expiration_ms
        });
        let dropped = before - self.producers.len();
        if dropped > 0 {
            tracing::debug!(dropped, "producer state: expired producer ids");
        }
        dropped
    }

    /// Resets to empty state starting at `offset`, for a log truncated fully and restarted there
    /// (Kafka's `truncateFullyAndStartAt`). In-flight batches are forgotten too (the storage
    /// layer fails them).
    pub fn reset_to(&mut self, offset: Offset) {
        self.producers.clear();
        self.in_flight.clear();
        self.map_end_offset = offset;
    }

    /// The committed state of one producer.
    pub fn producer(&self, producer_id: i64) -> Option<ProducerInfo> {
        self.producers.get(&producer_id).map(|e| ProducerInfo {
            producer_id,
            epoch: e.epoch,
            batches: e.batches.iter().copied().collect(),
        })
    }

    /// All producers with committed state, in no particular order (DescribeProducers).
    pub fn producers(&self) -> impl Iterator<Item = ProducerInfo> + '_ {
        self.producers.keys().filter_map(|&pid| self.producer(pid))
    }

    pub fn producer_count(&self) -> usize {
        self.producers.len()
    }

    /// Batches checked and not yet recorded or aborted, all producers together.
    pub fn in_flight_count(&self) -> usize {
        self.in_flight.values().map(VecDeque::len).sum()
    }

    /// One past the last offset the committed state reflects.
    pub fn map_end_offset(&self) -> Offset {
        self.map_end_offset
    }

    /// The offset a snapshot taken now will carry: `log_end_offset`, lowered, while batches are
    /// in flight, to the lowest offset any of them can have been written at (their offsets are
    /// unknown until recorded, and a replay from the snapshot offset must include them). Name the
    /// snapshot file after this offset.
    pub fn snapshot_offset(&self, log_end_offset: Offset) -> Offset {
        self.in_flight
            .values()
            .flatten()
            .map(|f| f.floor_offset)
            .fold(log_end_offset, Offset::min)
    }

    /// Encodes the state as of [`snapshot_offset(log_end_offset)`](Self::snapshot_offset): only
    /// batches below that offset are written, so after a restart the snapshot never refers to
    /// data past it, and replay from it restores the rest.
    ///
    /// Format (big-endian), version 1:
    /// `version: u16, crc32c(body): u32, body` where body is
    /// `snapshot_offset: i64, producer_count: u32`, then per producer (ascending id)
    /// `producer_id: i64, epoch: i16, batch_count: u8 (1..=5)`, then per batch (oldest first)
    /// `first_seq: i32, last_seq: i32, first_offset: i64, last_offset: i64, timestamp: i64`.
    pub fn encode_snapshot(&self, log_end_offset: Offset) -> Vec<u8> {
        let snapshot_offset = self.snapshot_offset(log_end_offset);
        let mut pids: Vec<i64> = self.producers.keys().copied().collect();
        pids.sort_unstable();
        let mut body = Vec::with_capacity(12 + pids.len() * (11 + 32));
        body.extend_from_slice(&snapshot_offset.to_be_bytes());
        body.extend_from_slice(&[0; 4]); // producer count, patched below
        let mut count: u32 = 0;
        for pid in pids {
            let e = &self.producers[&pid];
            let kept: Vec<&BatchMetadata> = e
                .batches
                .iter()
                .filter(|b| b.last_offset < snapshot_offset)
                .collect();
            if kept.is_empty() {
                continue; // all of it lies at or past the snapshot offset: replay restores it
            }
            count += 1;
            body.extend_from_slice(&pid.to_be_bytes());
            body.extend_from_slice(&e.epoch.to_be_bytes());
            body.push(kept.len() as u8);
            for b in kept {
                body.extend_from_slice(&b.first_seq.to_be_bytes());
                body.extend_from_slice(&b.last_seq.to_be_bytes());
                body.extend_from_slice(&b.first_offset.to_be_bytes());
                body.extend_from_slice(&b.last_offset.to_be_bytes());
                body.extend_from_slice(&b.timestamp.to_be_bytes());
            }
        }
        body[8..12].copy_from_slice(&count.to_be_bytes());
        frame(SNAPSHOT_VERSION, &body)
    }

    /// Decodes a snapshot; returns the state (with the default expiration; see
    /// [`set_producer_id_expiration_ms`](Self::set_producer_id_expiration_ms)) and the snapshot
    /// offset, from which the broker replays the log.
    pub fn decode_snapshot(bytes: &[u8]) -> Result<(Self, Offset), ProducerStateError> {
        let body = unframe(bytes, SNAPSHOT_VERSION, "producer snapshot")?;
        let mut r = Reader { b: body, pos: 0 };
        let snapshot_offset = r.i64()?;
        if snapshot_offset < 0 {
            return Err(corrupt("negative snapshot offset"));
        }
        let count = r.u32()? as usize;
        const MIN_ENTRY: usize = 8 + 2 + 1 + 32;
        if count > r.remaining() / MIN_ENTRY {
            return Err(corrupt("producer count exceeds the file"));
        }
        let mut producers = HashMap::with_capacity(count);
        for _ in 0..count {
            let pid = r.i64()?;
            let epoch = r.i16()?;
            let n = r.u8()? as usize;
            if pid < 0 {
                return Err(corrupt("negative producer id"));
            }
            if n == 0 || n > NUM_BATCHES_TO_RETAIN {
                return Err(corrupt("batch count out of range"));
            }
            let mut batches = VecDeque::with_capacity(n);
            for _ in 0..n {
                let m = BatchMetadata {
                    first_seq: r.i32()?,
                    last_seq: r.i32()?,
                    first_offset: r.i64()?,
                    last_offset: r.i64()?,
                    timestamp: r.i64()?,
                };
                let delta = m.last_offset.checked_sub(m.first_offset);
                let consistent = m.first_seq >= 0
                    && m.first_offset >= 0
                    && m.last_offset < snapshot_offset
                    && delta.is_some_and(|d| {
                        (0..=i32::MAX as i64).contains(&d)
                            && increment_sequence(m.first_seq, d as i32) == m.last_seq
                    })
                    && batches
                        .back()
                        .is_none_or(|p: &BatchMetadata| p.last_offset < m.first_offset);
                if !consistent {
                    return Err(corrupt("inconsistent batch metadata"));
                }
                batches.push_back(m);
            }
            if producers
                .insert(pid, ProducerEntry { epoch, batches })
                .is_some()
            {
                return Err(corrupt("duplicate producer id"));
            }
        }
        if r.remaining() != 0 {
            return Err(corrupt("trailing bytes"));
        }
        let m = Self {
            producers,
            map_end_offset: snapshot_offset,
            ..Self::default()
        };
        Ok((m, snapshot_offset))
    }
}

/// Hands out producer ids for `InitProducerId`, never reusing one across restarts.
///
/// Like Kafka's `ProducerIdManager` (blocks of 1000, `PidBlockSize`), ids are reserved in blocks:
/// the durable *high-water mark* is one past the largest id that may have been handed out, and
/// only moving it needs an fsync. Use:
///
/// ```text
/// let id = loop {
///     if let Some(id) = alloc.next() { break id; }
///     let hw = alloc.next_block().ok_or(exhausted)?;
///     write_atomic_and_fsync(ProducerIdAllocator::encode_high_water(hw)).await?;
///     alloc.block_persisted(hw);
/// };
/// ```
///
/// Persist one reservation at a time (a semaphore around the write): two racing writes could
/// land in the opposite order and leave a lower mark on disk than ids already handed out.
/// After a restart, [`decode`](Self::decode) starts at the persisted mark, skipping whatever
/// was left of the last block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerIdAllocator {
    next: i64,
    /// Exclusive end of the durably reserved block: the persisted high-water mark.
    reserved_end: i64,
    block_size: i64,
}

impl Default for ProducerIdAllocator {
    fn default() -> Self {
        Self::new()
    }
}

impl ProducerIdAllocator {
    /// Kafka's `ProducerIdsBlock.PRODUCER_ID_BLOCK_SIZE`.
    pub const DEFAULT_BLOCK_SIZE: i64 = 1000;

    /// A broker that has never handed out an id: ids start at 0, as in Kafka.
    pub fn new() -> Self {
        Self::starting_at(0)
    }

    /// Ids from `high_water` on; nothing reserved yet.
    pub fn starting_at(high_water: i64) -> Self {
        Self {
            next: high_water.max(0),
            reserved_end: high_water.max(0),
            block_size: Self::DEFAULT_BLOCK_SIZE,
        }
    }

    /// Changes the reservation block size (at least 1).
    pub fn with_block_size(mut self, block_size: i64) -> Self {
        self.block_size = block_size.max(1);
        self
    }

    /// The next id of the reserved block, or `None` when a new block must be persisted first.
    #[allow(clippy::should_implement_trait)] // not an iterator: `None` means "reserve", not "done"
    pub fn next(&mut self) -> Option<i64> {
        (self.next < self.reserved_end).then(|| {
            self.next += 1;
            self.next - 1
        })
    }

    /// The high-water mark to persist to reserve the next block; `None` once ids are exhausted.
    pub fn next_block(&self) -> Option<i64> {
        self.reserved_end
            .checked_add(self.block_size)
            .filter(|&hw| hw < i64::MAX)
    }

    /// Records that `high_water` is durable: ids below it may now be handed out.
    pub fn block_persisted(&mut self, high_water: i64) {
        self.reserved_end = self.reserved_end.max(high_water);
    }

    /// The durable high-water mark.
    pub fn high_water(&self) -> i64 {
        self.reserved_end
    }

    /// Format: `version: u16 (1), crc32c(body): u32, body = high_water: i64`, big-endian.
    pub fn encode_high_water(high_water: i64) -> Vec<u8> {
        frame(ALLOCATOR_VERSION, &high_water.to_be_bytes())
    }

    /// Restores the allocator from its persisted high-water mark.
    pub fn decode(bytes: &[u8]) -> Result<Self, ProducerStateError> {
        let body = unframe(bytes, ALLOCATOR_VERSION, "producer id high-water mark")?;
        let mut r = Reader { b: body, pos: 0 };
        let hw = r.i64()?;
        if r.remaining() != 0 || hw < 0 {
            return Err(corrupt("bad producer id high-water mark"));
        }
        Ok(Self::starting_at(hw))
    }
}

// ---- sequences ----

/// Kafka's `DefaultRecordBatch.lastSequence`. Uses `lastOffsetDelta`, not the record count, as
/// Kafka does: a batch emptied by compaction keeps its delta, and with it its sequence range.
fn last_sequence(h: &BatchHeader) -> i32 {
    increment_sequence(h.base_sequence, h.last_offset_delta.max(0))
}

/// Kafka's `DefaultRecordBatch.incrementSequence`: sequences wrap from `i32::MAX` to 0.
fn increment_sequence(seq: i32, delta: i32) -> i32 {
    if seq > i32::MAX - delta {
        delta - (i32::MAX - seq) - 1
    } else {
        seq + delta
    }
}

/// Kafka's `ProducerAppendInfo.inSequence`.
fn in_sequence(last: i32, next: i32) -> bool {
    next as i64 == last as i64 + 1 || (next == 0 && last == i32::MAX)
}

fn next_sequence(last: i32) -> i32 {
    if last == i32::MAX {
        0
    } else {
        last + 1
    }
}

// ---- framing ----

const SNAPSHOT_VERSION: u16 = 1;
const ALLOCATOR_VERSION: u16 = 1;
const FRAME_HEADER: usize = 6;

/// `version: u16, crc32c(body): u32, body` — the layout of Kafka's producer snapshot files.
fn frame(version: u16, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(FRAME_HEADER + body.len());
    out.extend_from_slice(&version.to_be_bytes());
    out.extend_from_slice(&crc32c(body).to_be_bytes());
    out.extend_from_slice(body);
    out
}

fn unframe<'a>(bytes: &'a [u8], version: u16, what: &str) -> Result<&'a [u8], ProducerStateError> {
    if bytes.len() < FRAME_HEADER {
        return Err(corrupt(&format!("{what}: too short")));
    }
    let got = u16::from_be_bytes([bytes[0], bytes[1]]);
    if got != version {
        return Err(corrupt(&format!("{what}: unknown version {got}")));
    }
    let crc = u32::from_be_bytes(bytes[2..6].try_into().expect("4 bytes"));
    let body = &bytes[FRAME_HEADER..];
    if crc32c(body) != crc {
        return Err(corrupt(&format!("{what}: checksum mismatch")));
    }
    Ok(body)
}

fn corrupt(reason: &str) -> ProducerStateError {
    ProducerStateError::CorruptSnapshot(reason.to_string())
}

struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn remaining(&self) -> usize {
        self.b.len() - self.pos
    }
    fn take<const N: usize>(&mut self) -> Result<[u8; N], ProducerStateError> {
        let s = self
            .b
            .get(self.pos..self.pos + N)
            .ok_or_else(|| corrupt("truncated"))?;
        self.pos += N;
        Ok(s.try_into().expect("N bytes"))
    }
    fn u8(&mut self) -> Result<u8, ProducerStateError> {
        Ok(self.take::<1>()?[0])
    }
    fn i16(&mut self) -> Result<i16, ProducerStateError> {
        self.take().map(i16::from_be_bytes)
    }
    fn i32(&mut self) -> Result<i32, ProducerStateError> {
        self.take().map(i32::from_be_bytes)
    }
    fn u32(&mut self) -> Result<u32, ProducerStateError> {
        self.take().map(u32::from_be_bytes)
    }
    fn i64(&mut self) -> Result<i64, ProducerStateError> {
        self.take().map(i64::from_be_bytes)
    }
}

/// CRC-32C (Castagnoli), bit-for-bit what the `crc32c` crate (a weir-storage dependency, and
/// Kafka's snapshot checksum) computes. Kept local because the broker crate does not depend on
/// `crc32c`; the files are tiny and written rarely, so a table-driven loop is plenty. Switching
/// to `crc32c::crc32c` later changes no byte on disk.
fn crc32c(data: &[u8]) -> u32 {
    const TABLE: [u32; 256] = {
        let mut t = [0u32; 256];
        let mut i = 0;
        while i < 256 {
            let mut c = i as u32;
            let mut k = 0;
            while k < 8 {
                c = if c & 1 != 0 {
                    (c >> 1) ^ 0x82F6_3B78
                } else {
                    c >> 1
                };
                k += 1;
            }
            t[i] = c;
            i += 1;
        }
        t
    };
    !data.iter().fold(!0u32, |c, &b| {
        TABLE[((c ^ b as u32) & 0xff) as usize] ^ (c >> 8)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PID: i64 = 1000;
    const T0: i64 = 1_700_000_000_000;

    fn hdr(pid: i64, epoch: i16, seq: i32, count: i32) -> BatchHeader {
        BatchHeader {
            base_offset: 0,
            batch_length: 0,
            partition_leader_epoch: 0,
            magic: 2,
            crc: 0,
            attributes: 0,
            last_offset_delta: count - 1,
            base_timestamp: T0,
            max_timestamp: T0,
            producer_id: pid,
            producer_epoch: epoch,
            base_sequence: seq,
            record_count: count,
        }
    }

    fn at(mut h: BatchHeader, base_offset: Offset) -> BatchHeader {
        h.base_offset = base_offset;
        h
    }

    /// A partition log stand-in: assigns offsets and remembers the written headers.
    #[derive(Default)]
    struct Log {
        end: Offset,
        written: Vec<BatchHeader>,
    }

    impl Log {
        fn enqueue(&mut self, h: BatchHeader) -> BatchHeader {
            let h = at(h, self.end);
            self.end = h.last_offset() + 1;
            self.written.push(h);
            h
        }
    }

    /// check + append + record, as the broker does for one produce.
    fn produce(
        m: &mut ProducerStateManager,
        log: &mut Log,
        h: BatchHeader,
    ) -> Result<Check, ProducerStateError> {
        let c = m.check(&h)?;
        if matches!(c, Check::Append | Check::Untracked) {
            let written = log.enqueue(h);
            m.record(&written);
        }
        Ok(c)
    }

    fn ooo(got: i32, expected: i32) -> ProducerStateError {
        ProducerStateError::OutOfOrderSequence {
            producer_id: PID,
            epoch: 0,
            got,
            expected,
        }
    }

    #[test]
    fn crc32c_matches_the_standard_and_storage() {
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
        assert_eq!(crc32c(b""), 0);
        // weir-storage's batch CRC is crc32c over bytes from `attributes` (21) onwards.
        let mut buf = vec![0xAAu8; weir_storage::batch::ATTRIBUTES_AT];
        buf.extend((0..=255u8).cycle().take(1000));
        assert_eq!(
            crc32c(&buf[weir_storage::batch::ATTRIBUTES_AT..]),
            weir_storage::batch::compute_crc(&buf)
        );
    }

    #[test]
    fn in_order_batches_are_appended_and_tracked() {
        let mut m = ProducerStateManager::default();
        let mut log = Log::default();
        assert_eq!(
            produce(&mut m, &mut log, hdr(PID, 0, 0, 3)),
            Ok(Check::Append)
        );
        assert_eq!(
            produce(&mut m, &mut log, hdr(PID, 0, 3, 2)),
            Ok(Check::Append)
        );
        assert_eq!(
            produce(&mut m, &mut log, hdr(PID, 0, 5, 1)),
            Ok(Check::Append)
        );
        let p = m.producer(PID).unwrap();
        assert_eq!(p.epoch, 0);
        assert_eq!(p.last_sequence(), 5);
        assert_eq!(p.batches.len(), 3);
        assert_eq!(p.batches[1].first_offset, 3);
        assert_eq!(p.batches[1].last_offset, 4);
        assert_eq!(m.map_end_offset(), 6);
        assert_eq!(m.in_flight_count(), 0);
    }

    #[test]
    fn untracked_batches_are_not_tracked() {
        let mut m = ProducerStateManager::default();
        let mut log = Log::default();
        for seq in [-1, 0, 7] {
            let h = hdr(NO_PRODUCER_ID, -1, seq, 2);
            assert_eq!(produce(&mut m, &mut log, h), Ok(Check::Untracked));
        }
        assert_eq!(m.check(&hdr(-7, 0, 0, 1)), Ok(Check::Untracked));
        assert_eq!(m.producer_count(), 0);
        assert_eq!(m.in_flight_count(), 0);
        assert_eq!(m.map_end_offset(), 6);
    }

    #[test]
    fn negative_sequence_with_a_producer_id_is_an_invalid_record() {
        let mut m = ProducerStateManager::default();
        let e = m.check(&hdr(PID, 0, -1, 1)).unwrap_err();
        assert_eq!(e.kafka_error_code(), error_codes::INVALID_RECORD);
        assert_eq!(m.in_flight_count(), 0);
    }

    #[test]
    fn duplicates_of_each_of_the_last_five_return_the_original_offsets() {
        let mut m = ProducerStateManager::default();
        let mut log = Log {
            end: 100, // offsets unrelated to sequences
            ..Log::default()
        };
        let mut sent = Vec::new();
        for i in 0..7 {
            let h = hdr(PID, 0, i * 2, 2);
            assert_eq!(produce(&mut m, &mut log, h), Ok(Check::Append));
            sent.push(*log.written.last().unwrap());
        }
        let end = log.end;
        for w in &sent[2..] {
            let retry = hdr(PID, 0, w.base_sequence, 2);
            assert_eq!(
                produce(&mut m, &mut log, retry),
                Ok(Check::Duplicate {
                    first_offset: w.base_offset,
                    last_offset: w.last_offset(),
                    timestamp: T0
                })
            );
        }
        assert_eq!(log.end, end, "no duplicate was appended");
        // Sixth back and older: outside the window, so out of order.
        for w in &sent[..2] {
            let retry = hdr(PID, 0, w.base_sequence, 2);
            assert_eq!(
                produce(&mut m, &mut log, retry),
                Err(ooo(w.base_sequence, 14))
            );
        }
        assert_eq!(m.in_flight_count(), 0);
    }

    #[test]
    fn sixth_back_duplicate_is_out_of_order() {
        let mut m = ProducerStateManager::default();
        let mut log = Log::default();
        for seq in 0..6 {
            produce(&mut m, &mut log, hdr(PID, 0, seq, 1)).unwrap();
        }
        assert_eq!(m.check(&hdr(PID, 0, 0, 1)), Err(ooo(0, 6)));
        assert!(matches!(
            m.check(&hdr(PID, 0, 1, 1)),
            Ok(Check::Duplicate {
                first_offset: 1,
                ..
            })
        ));
        let e = m.check(&hdr(PID, 0, 0, 1)).unwrap_err();
        assert_eq!(
            e.kafka_error_code(),
            error_codes::OUT_OF_ORDER_SEQUENCE_NUMBER
        );
    }

    #[test]
    fn partial_overlap_and_gaps_are_out_of_order() {
        let mut m = ProducerStateManager::default();
        let mut log = Log::default();
        produce(&mut m, &mut log, hdr(PID, 0, 0, 5)).unwrap();
        produce(&mut m, &mut log, hdr(PID, 0, 5, 5)).unwrap(); // seqs 5..=9
                                                               // Same first sequence, different last: not a duplicate.
        assert_eq!(m.check(&hdr(PID, 0, 5, 3)), Err(ooo(5, 10)));
        assert_eq!(m.check(&hdr(PID, 0, 6, 4)), Err(ooo(6, 10)));
        // A gap.
        assert_eq!(m.check(&hdr(PID, 0, 11, 1)), Err(ooo(11, 10)));
        // A big jump backwards.
        assert_eq!(m.check(&hdr(PID, 0, 2, 1)), Err(ooo(2, 10)));
        assert_eq!(m.in_flight_count(), 0, "refused batches are not in flight");
        assert_eq!(
            produce(&mut m, &mut log, hdr(PID, 0, 10, 1)),
            Ok(Check::Append)
        );
    }

    #[test]
    fn older_epoch_is_fenced_and_newer_epoch_restarts_at_zero() {
        let mut m = ProducerStateManager::default();
        let mut log = Log::default();
        produce(&mut m, &mut log, hdr(PID, 3, 0, 2)).unwrap();
        produce(&mut m, &mut log, hdr(PID, 3, 2, 2)).unwrap();

        let e = m.check(&hdr(PID, 2, 4, 1)).unwrap_err();
        assert_eq!(
            e,
            ProducerStateError::InvalidProducerEpoch {
                producer_id: PID,
                got: 2,
                current: 3
            }
        );
        assert_eq!(e.kafka_error_code(), error_codes::INVALID_PRODUCER_EPOCH);
        // A retry from an older epoch is fenced even if it matches sequences of the current one.
        assert!(matches!(
            m.check(&hdr(PID, 2, 0, 2)),
            Err(ProducerStateError::InvalidProducerEpoch { .. })
        ));

        // A bump must start at 0.
        assert_eq!(
            m.check(&hdr(PID, 4, 4, 1)),
            Err(ProducerStateError::OutOfOrderSequence {
                producer_id: PID,
                epoch: 4,
                got: 4,
                expected: 0
            })
        );
        assert_eq!(
            produce(&mut m, &mut log, hdr(PID, 4, 0, 1)),
            Ok(Check::Append)
        );
        let p = m.producer(PID).unwrap();
        assert_eq!((p.epoch, p.batches.len(), p.last_sequence()), (4, 1, 0));
        // The old epoch's batches are gone: a retry of one is now fenced, not a duplicate.
        assert!(matches!(
            m.check(&hdr(PID, 3, 2, 2)),
            Err(ProducerStateError::InvalidProducerEpoch { current: 4, .. })
        ));
        // And the new epoch's sequence 0 batch is a duplicate.
        assert_eq!(
            m.check(&hdr(PID, 4, 0, 1)),
            Ok(Check::Duplicate {
                first_offset: 4,
                last_offset: 4,
                timestamp: T0
            })
        );
    }

    #[test]
    fn sequences_wrap_from_i32_max_to_zero() {
        let mut m = ProducerStateManager::default();
        let mut log = Log::default();
        // Unknown producer: start near the top.
        produce(&mut m, &mut log, hdr(PID, 0, i32::MAX - 2, 2)).unwrap(); // MAX-2..=MAX-1
                                                                          // A batch spanning the wrap: MAX, 0, 1.
        let spanning = hdr(PID, 0, i32::MAX, 3);
        assert_eq!(last_sequence(&spanning), 1);
        assert_eq!(produce(&mut m, &mut log, spanning), Ok(Check::Append));
        assert_eq!(m.producer(PID).unwrap().last_sequence(), 1);
        assert_eq!(
            produce(&mut m, &mut log, hdr(PID, 0, 2, 1)),
            Ok(Check::Append)
        );
        // The spanning batch is still recognised as a duplicate.
        assert_eq!(
            m.check(&hdr(PID, 0, i32::MAX, 3)),
            Ok(Check::Duplicate {
                first_offset: 2,
                last_offset: 4,
                timestamp: T0
            })
        );
        // A batch ending exactly at MAX is followed by 0.
        let mut m = ProducerStateManager::default();
        produce(&mut m, &mut log, hdr(PID, 0, i32::MAX - 1, 2)).unwrap();
        assert_eq!(m.check(&hdr(PID, 0, 1, 1)), Err(ooo(1, 0)));
        assert_eq!(
            produce(&mut m, &mut log, hdr(PID, 0, 0, 1)),
            Ok(Check::Append)
        );
    }

    #[test]
    fn unknown_producer_is_accepted_at_any_sequence() {
        let mut m = ProducerStateManager::default();
        let mut log = Log::default();
        assert_eq!(
            produce(&mut m, &mut log, hdr(PID, 5, 999, 3)),
            Ok(Check::Append)
        );
        let p = m.producer(PID).unwrap();
        assert_eq!((p.epoch, p.last_sequence()), (5, 1001));
        // From then on it is held to its sequence.
        assert!(matches!(
            m.check(&hdr(PID, 5, 999, 1)),
            Err(ProducerStateError::OutOfOrderSequence { expected: 1002, .. })
        ));
        // Other producers are independent.
        assert_eq!(
            produce(&mut m, &mut log, hdr(PID + 1, 0, 42, 1)),
            Ok(Check::Append)
        );
        assert_eq!(
            produce(&mut m, &mut log, hdr(PID, 5, 1002, 1)),
            Ok(Check::Append)
        );
    }

    #[test]
    fn in_flight_batches_are_validated_against_each_other() {
        let mut m = ProducerStateManager::default();
        let mut log = Log::default();
        let a = hdr(PID, 0, 0, 5);
        let b = hdr(PID, 0, 5, 5);
        assert_eq!(m.check(&a), Ok(Check::Append));
        // B follows A although A is not written yet.
        assert_eq!(m.check(&b), Ok(Check::Append));
        // A batch that would follow the committed (empty) state but not A+B is refused.
        assert_eq!(m.check(&hdr(PID, 0, 5, 1)), Err(ooo(5, 10)));
        // Retries of in-flight batches cannot be answered yet.
        let e = m.check(&a).unwrap_err();
        assert_eq!(
            e,
            ProducerStateError::DuplicateInFlight {
                producer_id: PID,
                epoch: 0,
                first_seq: 0,
                last_seq: 4
            }
        );
        assert_eq!(e.kafka_error_code(), error_codes::REQUEST_TIMED_OUT);
        assert_eq!(m.in_flight_count(), 2);
        assert_eq!(m.producer(PID), None, "nothing committed yet");

        let wa = log.enqueue(a);
        let wb = log.enqueue(b);
        m.record(&wa);
        assert_eq!(m.producer(PID).unwrap().batches.len(), 1);
        assert_eq!(
            m.check(&a),
            Ok(Check::Duplicate {
                first_offset: 0,
                last_offset: 4,
                timestamp: T0
            })
        );
        assert!(matches!(
            m.check(&b),
            Err(ProducerStateError::DuplicateInFlight { .. })
        ));
        m.record(&wb);
        assert_eq!(m.in_flight_count(), 0);
        assert_eq!(m.producer(PID).unwrap().last_sequence(), 9);
        assert_eq!(
            m.check(&b),
            Ok(Check::Duplicate {
                first_offset: 5,
                last_offset: 9,
                timestamp: T0
            })
        );
    }

    #[test]
    fn records_out_of_check_order_commit_in_log_order() {
        let mut m = ProducerStateManager::default();
        let mut log = Log::default();
        let hs = [hdr(PID, 0, 0, 1), hdr(PID, 0, 1, 1), hdr(PID, 0, 2, 1)];
        for h in &hs {
            assert_eq!(m.check(h), Ok(Check::Append));
        }
        let w: Vec<_> = hs.iter().map(|h| log.enqueue(*h)).collect();
        // The third completes first: held back, but already answerable as a duplicate.
        m.record(&w[2]);
        assert_eq!(m.producer(PID), None);
        assert_eq!(
            m.check(&hs[2]),
            Ok(Check::Duplicate {
                first_offset: 2,
                last_offset: 2,
                timestamp: T0
            })
        );
        assert_eq!(m.check(&hdr(PID, 0, 3, 1)), Ok(Check::Append));
        m.record(&w[1]);
        assert_eq!(m.producer(PID), None);
        m.record(&w[0]);
        let p = m.producer(PID).unwrap();
        let offsets: Vec<_> = p.batches.iter().map(|b| b.first_offset).collect();
        assert_eq!(offsets, [0, 1, 2]);
        assert_eq!(m.in_flight_count(), 1, "seq 3 is still in flight");
        m.record(&log.enqueue(hdr(PID, 0, 3, 1)));
        assert_eq!(m.in_flight_count(), 0);
        assert_eq!(m.map_end_offset(), 4);
    }

    #[test]
    fn abort_forgets_an_in_flight_batch() {
        let mut m = ProducerStateManager::default();
        let mut log = Log::default();
        produce(&mut m, &mut log, hdr(PID, 0, 0, 1)).unwrap();
        let a = hdr(PID, 0, 1, 1);
        assert_eq!(m.check(&a), Ok(Check::Append));
        m.abort(&a);
        assert_eq!(m.in_flight_count(), 0);
        // The producer's retry of A is accepted again.
        assert_eq!(produce(&mut m, &mut log, a), Ok(Check::Append));
        assert_eq!(m.producer(PID).unwrap().last_sequence(), 1);

        // Aborting the first of two in flight lets an already written second one commit.
        let b = hdr(PID, 0, 2, 1);
        let c = hdr(PID, 0, 3, 1);
        m.check(&b).unwrap();
        m.check(&c).unwrap();
        let wc = at(c, 10);
        m.record(&wc);
        assert_eq!(m.producer(PID).unwrap().last_sequence(), 1);
        m.abort(&b);
        assert_eq!(m.in_flight_count(), 0);
        assert_eq!(m.producer(PID).unwrap().last_sequence(), 3);

        // Aborting something unknown is harmless.
        m.abort(&hdr(PID, 0, 77, 1));
        m.abort(&hdr(PID + 9, 0, 0, 1));
        assert_eq!(m.producer(PID).unwrap().last_sequence(), 3);
    }

    #[test]
    fn epoch_bump_while_the_old_epoch_is_in_flight() {
        let mut m = ProducerStateManager::default();
        let mut log = Log::default();
        produce(&mut m, &mut log, hdr(PID, 0, 0, 1)).unwrap();
        let old = hdr(PID, 0, 1, 1);
        let new = hdr(PID, 1, 0, 1);
        assert_eq!(m.check(&old), Ok(Check::Append));
        assert_eq!(m.check(&new), Ok(Check::Append));
        // The in-flight bump already fences the old epoch and hides its batches.
        assert!(matches!(
            m.check(&hdr(PID, 0, 2, 1)),
            Err(ProducerStateError::InvalidProducerEpoch { current: 1, .. })
        ));
        assert_eq!(
            m.check(&hdr(PID, 1, 1, 1)),
            Ok(Check::Append),
            "follows the in-flight bump"
        );
        m.record(&log.enqueue(old));
        assert_eq!(m.producer(PID).unwrap().epoch, 0);
        m.record(&log.enqueue(new));
        m.record(&log.enqueue(hdr(PID, 1, 1, 1)));
        let p = m.producer(PID).unwrap();
        assert_eq!((p.epoch, p.batches.len(), p.last_sequence()), (1, 2, 1));
    }

    #[test]
    fn unknown_producer_in_flight_sets_the_expected_sequence() {
        let mut m = ProducerStateManager::default();
        assert_eq!(m.check(&hdr(PID, 0, 100, 2)), Ok(Check::Append));
        assert_eq!(m.check(&hdr(PID, 0, 500, 1)), Err(ooo(500, 102)));
        assert_eq!(m.check(&hdr(PID, 0, 102, 1)), Ok(Check::Append));
    }

    #[test]
    fn record_without_check_is_applied_like_replay() {
        let mut m = ProducerStateManager::default();
        m.record(&at(hdr(PID, 0, 0, 2), 0));
        m.record(&at(hdr(PID, 0, 2, 2), 2));
        m.record(&at(hdr(PID, 0, 2, 2), 2)); // twice: ignored
        assert_eq!(m.producer(PID).unwrap().batches.len(), 2);
        assert_eq!(m.map_end_offset(), 4);

        // Recorded twice while held back behind an earlier in-flight batch: applied once.
        let (a, b) = (hdr(PID, 0, 4, 1), hdr(PID, 0, 5, 1));
        m.check(&a).unwrap();
        m.check(&b).unwrap();
        m.record(&at(b, 5));
        m.record(&at(b, 5));
        m.record(&at(a, 4));
        let seqs: Vec<_> = m
            .producer(PID)
            .unwrap()
            .batches
            .iter()
            .map(|b| b.first_seq)
            .collect();
        assert_eq!(
            seqs,
            [0, 2, 5],
            "b went ahead via the replay path; a arrived too late"
        );
        assert_eq!(m.in_flight_count(), 0);
    }

    fn sample_log() -> Vec<BatchHeader> {
        let mut log = Log::default();
        let mut m = ProducerStateManager::default();
        for i in 0..8 {
            produce(&mut m, &mut log, hdr(PID, 0, i * 3, 3)).unwrap();
            produce(&mut m, &mut log, hdr(NO_PRODUCER_ID, -1, -1, 2)).unwrap();
            if i < 3 {
                produce(&mut m, &mut log, hdr(PID + 1, 7, i, 1)).unwrap();
            }
        }
        produce(&mut m, &mut log, hdr(PID + 1, 8, 0, 1)).unwrap();
        log.written
    }

    fn replayed(batches: &[BatchHeader]) -> ProducerStateManager {
        let mut m = ProducerStateManager::default();
        m.rebuild_from_batches(batches);
        m
    }

    #[test]
    fn replay_matches_live_state_and_is_idempotent() {
        let batches = sample_log();
        let mut live = ProducerStateManager::default();
        let mut log = Log::default();
        for h in &batches {
            let c = produce(&mut live, &mut log, at(*h, 0)).unwrap();
            assert_ne!(
                c,
                Check::Duplicate {
                    first_offset: 0,
                    last_offset: 0,
                    timestamp: T0
                }
            );
        }
        assert_eq!(log.written, batches);

        let mut m = replayed(&batches);
        assert_eq!(m, live);
        // Replaying everything again, or any part of it, changes nothing.
        assert_eq!(m.rebuild_from_batches(&batches), 0);
        assert_eq!(m.rebuild_from_batches(batches[3..9].iter().copied()), 0);
        assert_eq!(m, live);
        assert_eq!(m.producer(PID + 1).unwrap().epoch, 8);
        assert_eq!(m.producer(PID).unwrap().batches.len(), 5);
    }

    #[test]
    fn snapshot_round_trip_then_replay_restores_the_state() {
        let batches = sample_log();
        let full = replayed(&batches);
        for cut in 0..=batches.len() {
            let before = replayed(&batches[..cut]);
            let snap_offset = batches
                .get(cut)
                .map_or(full.map_end_offset(), |h| h.base_offset);
            let bytes = before.encode_snapshot(snap_offset);
            let (mut m, offset) = ProducerStateManager::decode_snapshot(&bytes).unwrap();
            assert_eq!(offset, snap_offset);
            if cut > 0 {
                assert_eq!(m.producers, before.producers, "cut {cut}");
            }
            // Replay from the snapshot offset; then replay everything again for good measure.
            m.rebuild_from_batches(batches.iter().filter(|h| h.base_offset >= offset));
            assert_eq!(m, full, "cut {cut}");
            m.rebuild_from_batches(&batches);
            assert_eq!(m, full, "cut {cut}, second replay");
        }
    }

    #[test]
    fn snapshot_keeps_only_batches_below_its_offset() {
        let batches = sample_log();
        let full = replayed(&batches);
        // A snapshot of the full state labelled with a lower offset (as when appends were in
        // flight) must not describe batches at or past that offset: after an unclean restart
        // those may be gone from the log.
        let offset = batches[10].base_offset;
        let (mut m, got) =
            ProducerStateManager::decode_snapshot(&full.encode_snapshot(offset)).unwrap();
        assert_eq!(got, offset);
        let truth = replayed(&batches[..10]);
        for p in m.producers() {
            assert!(p.batches.iter().all(|b| b.last_offset < offset));
            // What is kept is true as of the offset: a suffix of the real window, same epoch.
            let t = truth.producer(p.producer_id).unwrap();
            assert_eq!(p.epoch, t.epoch);
            assert!(t.batches.ends_with(&p.batches));
        }
        // PID + 1 bumped its epoch past the offset: its entry is dropped, not mislabelled.
        assert!(m.producer(PID + 1).is_none());
        m.rebuild_from_batches(batches.iter().filter(|h| h.base_offset >= offset));
        assert_eq!(m, full);
    }

    #[test]
    fn snapshot_with_batches_in_flight_starts_below_them() {
        let mut m = ProducerStateManager::default();
        let mut log = Log::default();
        produce(&mut m, &mut log, hdr(PID, 0, 0, 1)).unwrap();
        produce(&mut m, &mut log, hdr(PID + 1, 0, 0, 1)).unwrap();
        let a = hdr(PID, 0, 1, 1);
        m.check(&a).unwrap();
        // Another producer's batch, enqueued after A, completes and is recorded first.
        let b = hdr(PID + 1, 0, 1, 1);
        m.check(&b).unwrap();
        let wa = log.enqueue(a);
        let wb = log.enqueue(b);
        m.record(&wb);
        // The log end is past A, but A is not reflected yet: the snapshot must start at A.
        assert_eq!(m.snapshot_offset(log.end), wa.base_offset);
        let (mut restored, offset) =
            ProducerStateManager::decode_snapshot(&m.encode_snapshot(log.end)).unwrap();
        assert_eq!(offset, 2);
        restored.rebuild_from_batches(log.written.iter().filter(|h| h.base_offset >= offset));
        m.record(&wa);
        assert_eq!(m.snapshot_offset(log.end), log.end);
        assert_eq!(restored, m);
    }

    #[test]
    fn empty_snapshot_round_trips() {
        let m = ProducerStateManager::default();
        let (d, off) = ProducerStateManager::decode_snapshot(&m.encode_snapshot(42)).unwrap();
        assert_eq!(off, 42);
        assert_eq!(d.producer_count(), 0);
        assert_eq!(d.map_end_offset(), 42);
    }

    #[test]
    fn corrupt_snapshots_are_refused_without_panicking() {
        let batches = sample_log();
        let m = replayed(&batches);
        let good = m.encode_snapshot(m.map_end_offset());
        assert!(ProducerStateManager::decode_snapshot(&good).is_ok());
        // Every truncation, and every single-bit flip, is detected.
        for len in 0..good.len() {
            assert!(ProducerStateManager::decode_snapshot(&good[..len]).is_err());
        }
        for i in 0..good.len() {
            for bit in 0..8 {
                let mut bad = good.clone();
                bad[i] ^= 1 << bit;
                assert!(matches!(
                    ProducerStateManager::decode_snapshot(&bad),
                    Err(ProducerStateError::CorruptSnapshot(_))
                ));
            }
        }
        // Structurally bad bodies with a valid checksum.
        let body_of = |b: &[u8]| b[FRAME_HEADER..].to_vec();
        let mut body = body_of(&good);
        body[8..12].copy_from_slice(&u32::MAX.to_be_bytes()); // absurd producer count
        assert!(ProducerStateManager::decode_snapshot(&frame(1, &body)).is_err());
        let mut body = body_of(&good);
        body.push(0); // trailing byte
        assert!(ProducerStateManager::decode_snapshot(&frame(1, &body)).is_err());
        let mut body = body_of(&good);
        body[0..8].copy_from_slice(&1i64.to_be_bytes()); // offset below the batches
        assert!(ProducerStateManager::decode_snapshot(&frame(1, &body)).is_err());
        let mut body = body_of(&good);
        body[12 + 10] = 6; // first producer claims 6 batches
        assert!(ProducerStateManager::decode_snapshot(&frame(1, &body)).is_err());
        assert!(ProducerStateManager::decode_snapshot(&frame(2, &body_of(&good))).is_err());
    }

    #[test]
    fn expiry_drops_idle_producers_but_not_in_flight_ones() {
        let mut m = ProducerStateManager::new(1000);
        let mut log = Log::default();
        let mut h = hdr(PID, 0, 0, 1);
        h.max_timestamp = 5000;
        produce(&mut m, &mut log, h).unwrap();
        let mut h2 = hdr(PID + 1, 0, 0, 1);
        h2.max_timestamp = 5500;
        produce(&mut m, &mut log, h2).unwrap();

        assert_eq!(m.expire(5999), 0);
        assert_eq!(m.expire(6000), 1, "expired at exactly the expiration time");
        assert!(m.producer(PID).is_none());
        assert!(m.producer(PID + 1).is_some());

        // PID is unknown again, so any sequence is accepted.
        assert_eq!(m.check(&hdr(PID, 0, 17, 1)), Ok(Check::Append));
        // PID + 1 has a batch in flight: kept despite its age.
        let mut h3 = hdr(PID + 1, 0, 1, 1);
        h3.max_timestamp = 9000;
        m.check(&h3).unwrap();
        assert_eq!(m.expire(100_000), 0);
        m.record(&log.enqueue(h3));
        assert_eq!(m.expire(9999), 0);
        assert_eq!(m.expire(10_000), 1);

        m.set_producer_id_expiration_ms(DEFAULT_PRODUCER_ID_EXPIRATION_MS);
        assert_eq!(m.expire(i64::MAX), 0, "PID's batch is still in flight");
    }

    #[test]
    fn reset_forgets_everything() {
        let batches = sample_log();
        let mut m = replayed(&batches);
        m.check(&hdr(PID + 5, 0, 0, 1)).unwrap();
        m.reset_to(500);
        assert_eq!((m.producer_count(), m.in_flight_count()), (0, 0));
        assert_eq!(m.map_end_offset(), 500);
        assert_eq!(
            m.rebuild_from_batches(&batches),
            0,
            "all below the new start"
        );
    }

    #[test]
    fn producer_id_allocator_reserves_blocks_and_never_reuses_ids() {
        let mut a = ProducerIdAllocator::new().with_block_size(3);
        assert_eq!(a.next(), None, "nothing reserved yet");
        let hw = a.next_block().unwrap();
        assert_eq!(hw, 3);
        a.block_persisted(hw);
        assert_eq!(
            (a.next(), a.next(), a.next(), a.next()),
            (Some(0), Some(1), Some(2), None)
        );
        a.block_persisted(a.next_block().unwrap());
        assert_eq!(a.next(), Some(3));
        assert_eq!(a.high_water(), 6);
        // A stale (lower) confirmation does not shrink the reservation.
        a.block_persisted(3);
        assert_eq!(a.high_water(), 6);

        // Restart: the persisted mark is where ids resume, past anything handed out.
        let bytes = ProducerIdAllocator::encode_high_water(a.high_water());
        let mut b = ProducerIdAllocator::decode(&bytes).unwrap();
        assert_eq!(b.next(), None);
        let hw = b.next_block().unwrap();
        assert_eq!(hw, 6 + ProducerIdAllocator::DEFAULT_BLOCK_SIZE);
        b.block_persisted(hw);
        assert_eq!(b.next(), Some(6));

        // Corruption is detected.
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x10;
            assert!(ProducerIdAllocator::decode(&bad).is_err());
        }
        assert!(ProducerIdAllocator::decode(&bytes[..bytes.len() - 1]).is_err());
        assert!(ProducerIdAllocator::decode(&frame(1, &(-5i64).to_be_bytes())).is_err());

        // Exhaustion is reported rather than wrapping.
        let c = ProducerIdAllocator::starting_at(i64::MAX - 10);
        assert_eq!(c.next_block(), None);
    }
}
