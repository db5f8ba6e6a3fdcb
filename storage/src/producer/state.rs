//! [`ProducerStateManager`]: the idempotence check, the in-flight view of batches being written,
//! and the committed state the log's batches leave behind (replay, expiry, reset).

use std::borrow::Borrow;
use std::collections::{HashMap, VecDeque};

use crate::batch::BatchHeader;
use crate::types::Offset;

use super::entry::{in_sequence, last_sequence, next_sequence, ProducerEntry};
use super::{
    BatchMetadata, ProducerInfo, ProducerStateError, DEFAULT_PRODUCER_ID_EXPIRATION_MS,
    NO_SEQUENCE, NUM_BATCHES_TO_RETAIN,
};

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

/// A batch that passed `check` (or a follower's batch) and is being written.
#[derive(Debug, Clone, PartialEq, Eq)]
struct InFlight {
    epoch: i16,
    first_seq: i32,
    last_seq: i32,
    /// The lowest offset it can be written at: the offset the log assigned it (the log checks a
    /// batch with its assigned base offset), and at least `map_end_offset` when it was checked,
    /// since everything recorded by then was enqueued before it. Bounds
    /// [`ProducerStateManager::snapshot_offset`].
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

/// Idempotent-producer state of one partition. Owned by the partition's log, on its core.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerStateManager {
    pub(super) producers: HashMap<i64, ProducerEntry>,
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

    /// Committed state as a snapshot describes it, with the default expiration.
    pub(super) fn from_parts(
        producers: HashMap<i64, ProducerEntry>,
        map_end_offset: Offset,
    ) -> Self {
        Self {
            producers,
            map_end_offset,
            ..Self::default()
        }
    }

    /// `producer.id.expiration.ms` is a dynamic broker config.
    pub fn set_producer_id_expiration_ms(&mut self, ms: i64) {
        self.expiration_ms = ms;
    }

    pub fn producer_id_expiration_ms(&self) -> i64 {
        self.expiration_ms
    }

    /// Validates a batch before it is appended; see the module doc for the protocol. `h` carries
    /// the base offset the batch will be written at (the log assigns it before checking; a
    /// caller that does not know it passes anything lower, e.g. 0). On [`Check::Append`] the
    /// batch is registered as in flight and must later be passed to [`record`](Self::record) or
    /// [`abort`](Self::abort), or be dropped with every other by
    /// [`clear_in_flight`](Self::clear_in_flight).
    pub fn check(&mut self, h: &BatchHeader) -> Result<Check, ProducerStateError> {
        let check = self.evaluate(h)?;
        if check == Check::Append {
            self.push_in_flight(h);
        }
        Ok(check)
    }

    /// Registers a batch a follower is appending (Kafka's `REPLICATION` origin): not validated,
    /// the leader did that; in flight like a checked batch, so a check made before it is written
    /// (this replica became leader meanwhile) sees it. Batches without a producer id and control
    /// batches are not tracked.
    pub fn track_replicated(&mut self, h: &BatchHeader) {
        if h.producer_id >= 0 && !h.is_control() {
            self.push_in_flight(h);
        }
    }

    fn push_in_flight(&mut self, h: &BatchHeader) {
        let floor_offset = self.map_end_offset.max(h.base_offset);
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

    /// Commits a batch whose write completed. `h.base_offset` must be the assigned offset. For
    /// a log-append-time topic, `h.max_timestamp` is the append time, as Kafka keeps it, so
    /// expiry uses it.
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

    /// Forgets every in-flight batch: the log failed all pending writes together (a failed
    /// write takes it offline; a truncation fails what was queued). Batches recorded early and
    /// held back behind one of them go too: they were never part of a consistent log prefix.
    pub fn clear_in_flight(&mut self) {
        self.in_flight.clear();
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
                    self.producers.insert(pid, ProducerEntry::new(epoch, meta));
                }
            }
            self.map_end_offset = self.map_end_offset.max(meta.last_offset + 1);
        }
        if q.is_empty() {
            self.in_flight.remove(&pid);
        }
    }

    /// Applies batch headers read back from the log (on open and after a truncation, from the
    /// snapshot offset to the log end), in offset order. Nothing is validated, as Kafka does for
    /// its `REPLICATION` origin: the log is the truth. Batches the state already reflects are
    /// skipped, so replaying twice is harmless. Returns how many batches changed the state.
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
                self.producers
                    .insert(h.producer_id, ProducerEntry::new(h.producer_epoch, meta));
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
    /// (Kafka's `truncateFullyAndStartAt`), or before a reload after a truncation. In-flight
    /// batches are forgotten too (the log fails them).
    pub fn reset_to(&mut self, offset: Offset) {
        self.producers.clear();
        self.in_flight.clear();
        self.map_end_offset = offset;
    }

    /// Replaces the committed state with `loaded` (a decoded snapshot), keeping this state's
    /// expiration setting; in-flight batches are forgotten.
    pub fn replace_with(&mut self, loaded: ProducerStateManager) {
        let expiration_ms = self.expiration_ms;
        *self = loaded;
        self.expiration_ms = expiration_ms;
    }

    /// The log start offset moved up (retention, DeleteRecords): as Kafka's
    /// `onLogStartOffsetIncremented`, producers are kept (KAFKA-7190: a producer whose batches
    /// were all deleted still has its sequence), and the state reflects nothing below the log.
    pub fn on_log_start_offset_incremented(&mut self, log_start_offset: Offset) {
        self.map_end_offset = self.map_end_offset.max(log_start_offset);
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
    /// in flight, to the lowest offset any of them can be written at (a replay from the snapshot
    /// offset must include them). Name the snapshot file after this offset.
    pub fn snapshot_offset(&self, log_end_offset: Offset) -> Offset {
        self.in_flight
            .values()
            .flatten()
            .map(|f| f.floor_offset)
            .fold(log_end_offset, Offset::min)
    }
}
