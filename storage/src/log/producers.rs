//! The log's idempotent producers (Kafka's `UnifiedLog` owning its `ProducerStateManager`): the
//! leader's check as batches are queued, the commit as they are written (leader's and
//! follower's alike), the rebuild on open and after a truncation (the newest snapshot at or
//! below the log end, then a replay of batch headers), and the `<offset>.snapshot` files: one
//! written at each roll (in the rolled segment's background task) and one at a clean close,
//! deleted when they describe offsets the log no longer holds.

use super::{AppendInfo, PartitionLog};
use crate::batch::{BatchHeader, HEADER_LEN};
use crate::error::{Result, StorageError};
use crate::fs;
use crate::producer::{Check, ProducerInfo, ProducerStateManager, SNAPSHOT_SUFFIX};
use crate::segment::{self, LOG_SUFFIX};
use crate::types::Offset;
use glommio::sync::Semaphore;
use std::cell::RefCell;
use std::collections::BTreeSet;
use std::path::PathBuf;

/// How much of a segment one replay read covers. Replay needs only headers: batches of up to
/// this size arrive many per read; a larger batch costs one read of this size, skipping the
/// rest of it.
const REPLAY_READ_BYTES: usize = 64 << 10;

pub(crate) struct Producers {
    pub state: RefCell<ProducerStateManager>,
    /// Offsets of the snapshot files in the log's directory.
    snapshots: RefCell<BTreeSet<Offset>>,
    /// One permit: snapshot files are written and deleted one at a time, so a truncation's
    /// deletions wait for a roll's snapshot being written, and a write that starts after a
    /// truncation sees it (and gives up) before it writes.
    gate: Semaphore,
}

impl Default for Producers {
    fn default() -> Self {
        Self {
            state: RefCell::default(),
            snapshots: RefCell::default(),
            gate: Semaphore::new(1),
        }
    }
}

impl PartitionLog {
    /// The committed state of one idempotent producer.
    pub fn producer(&self, producer_id: i64) -> Option<ProducerInfo> {
        self.producers.state.borrow().producer(producer_id)
    }

    /// Every idempotent producer this log knows, by id (Kafka's DescribeProducers).
    pub fn producer_infos(&self) -> Vec<ProducerInfo> {
        let mut all: Vec<ProducerInfo> = self.producers.state.borrow().producers().collect();
        all.sort_unstable_by_key(|p| p.producer_id);
        all
    }

    /// Drops producers idle for `producer.id.expiration.ms` (Kafka's `removeExpiredProducers`);
    /// returns how many. Storage reads no clock: the owning core calls this.
    pub fn remove_expired_producers(&self, now_ms: i64) -> usize {
        self.producers.state.borrow_mut().expire(now_ms)
    }

    /// Offsets of the producer snapshot files this log keeps, oldest first.
    pub fn producer_snapshot_offsets(&self) -> Vec<Offset> {
        self.producers.snapshots.borrow().iter().copied().collect()
    }

    /// The leader's idempotence check of the batches of one append (their offsets assigned), in
    /// the synchronous step that queues them: all pass and are in flight, or none is. A retry of
    /// a written batch is answered with its original offsets (Kafka answers the whole request
    /// with the first duplicate it finds).
    pub(super) fn check_produced<'a>(
        &self,
        headers: impl Iterator<Item = &'a BatchHeader> + Clone,
    ) -> Result<Option<AppendInfo>> {
        let mut state = self.producers.state.borrow_mut();
        for (i, h) in headers.clone().enumerate() {
            let refusal = match state.check(h) {
                Ok(Check::Append | Check::Untracked) => continue,
                Ok(Check::Duplicate {
                    first_offset,
                    last_offset,
                    timestamp,
                }) => Ok(Some(AppendInfo {
                    first_offset,
                    last_offset,
                    max_timestamp: timestamp,
                    log_start_offset: self.log_start_offset(),
                    record_count: h.record_count as u64,
                    // Kafka reports a duplicate's stored max timestamp as its log append time,
                    // whatever the topic's timestamp type.
                    log_append_time_ms: timestamp,
                })),
                Err(e) => Err(StorageError::Producer(e)),
            };
            for earlier in headers.take(i) {
                state.abort(earlier);
            }
            return refusal;
        }
        Ok(None)
    }

    /// A follower's batches being queued: tracked, not checked.
    pub(super) fn track_replicated<'a>(&self, headers: impl Iterator<Item = &'a BatchHeader>) {
        let mut state = self.producers.state.borrow_mut();
        for h in headers {
            state.track_replicated(h);
        }
    }

    /// Batches whose write completed, in offset order.
    pub(super) fn record_written<'a>(&self, headers: impl Iterator<Item = &'a BatchHeader>) {
        let mut state = self.producers.state.borrow_mut();
        for h in headers {
            state.record(h);
        }
    }

    /// Every queued append failed (a failed write, a truncation, the log closing).
    pub(super) fn fail_in_flight_producers(&self) {
        self.producers.state.borrow_mut().clear_in_flight();
    }

    /// The snapshot to take as the active segment rolls at `new_base`: everything below it is
    /// written and recorded then (the writer records each chunk as it lands), so it is the state
    /// as of `new_base`, as Kafka's roll snapshot is.
    pub(super) fn producer_snapshot_at_roll(&self, new_base: Offset) -> (Offset, Vec<u8>) {
        let state = self.producers.state.borrow();
        (
            state.snapshot_offset(new_base),
            state.encode_snapshot(new_base),
        )
    }

    /// Writes a roll's snapshot, unless a truncation since the roll may have removed what it
    /// describes. A failure costs only a longer replay after a crash.
    pub(super) async fn write_roll_snapshot(
        &self,
        offset: Offset,
        bytes: Vec<u8>,
        truncations: u64,
    ) {
        let Ok(_gate) = self.producers.gate.acquire_permit(1).await else {
            return;
        };
        let _slot = self.cache.background_fsync_slot().await;
        {
            let s = self.state.borrow();
            if s.truncations != truncations || s.closed || s.offline {
                return;
            }
        }
        self.write_snapshot_file(offset, bytes).await;
    }

    /// At a clean close (the writer idle, the structure permit held): the state at the log end,
    /// so the next open replays nothing (Kafka's `takeSnapshot` in `close`).
    pub(super) async fn snapshot_producers_at_close(&self) {
        let Ok(_gate) = self.producers.gate.acquire_permit(1).await else {
            return;
        };
        let (offset, bytes) = {
            let end = self.log_end_offset();
            let state = self.producers.state.borrow();
            (state.snapshot_offset(end), state.encode_snapshot(end))
        };
        if !self.producers.snapshots.borrow().contains(&offset) {
            self.write_snapshot_file(offset, bytes).await;
        }
    }

    /// Caller holds the gate.
    async fn write_snapshot_file(&self, offset: Offset, bytes: Vec<u8>) {
        let path = self.snapshot_path(offset);
        match fs::write_atomic(&path, bytes).await {
            Ok(()) => {
                self.producers.snapshots.borrow_mut().insert(offset);
            }
            Err(e) => {
                tracing::warn!(partition = %self.tp, offset, error = %e, "writing a producer snapshot failed")
            }
        }
    }

    fn snapshot_path(&self, offset: Offset) -> PathBuf {
        self.dir.join(segment::file_name(offset, SNAPSHOT_SUFFIX))
    }

    /// Deletes the snapshot files whose offset `doomed` picks. A file that cannot be removed
    /// is only logged: it is out of the set, and the next open removes it (it is then stray).
    async fn delete_snapshots(&self, doomed: impl Fn(Offset) -> bool) {
        let Ok(_gate) = self.producers.gate.acquire_permit(1).await else {
            return;
        };
        let gone: Vec<Offset> = {
            let mut set = self.producers.snapshots.borrow_mut();
            let gone: Vec<Offset> = set.iter().copied().filter(|o| doomed(*o)).collect();
            for o in &gone {
                set.remove(o);
            }
            gone
        };
        for offset in gone {
            if let Err(e) = fs::remove_if_exists(&self.snapshot_path(offset)).await {
                tracing::warn!(partition = %self.tp, offset, error = %e, "removing a producer snapshot failed");
            }
        }
    }

    /// On open, after recovery: keeps the snapshots that describe this log (Kafka's
    /// `removeStraySnapshots` and `truncateAndReload`: one per segment base, plus the newest
    /// other one, a clean close's, if it lies past the last base; none past the log end, where
    /// data was lost in recovery, nor below the log start), then rebuilds the state.
    pub(super) async fn load_producers(&self, found: Vec<Offset>) -> Result<()> {
        let (start, end, bases) = {
            let s = self.state.borrow();
            let bases: BTreeSet<Offset> = s.segments.keys().copied().collect();
            (s.log_start_offset, s.log_end_offset, bases)
        };
        let last_base = bases.last().copied().unwrap_or(start);
        let in_range = |o: &Offset| (start..=end).contains(o);
        let newest_stray = found
            .iter()
            .copied()
            .filter(|o| in_range(o) && !bases.contains(o))
            .max();
        let keep = |o: Offset| {
            in_range(&o) && (bases.contains(&o) || (Some(o) == newest_stray && o > last_base))
        };
        *self.producers.snapshots.borrow_mut() = found.iter().copied().collect();
        self.delete_snapshots(|o| !keep(o)).await;
        self.rebuild_producers(start, end).await
    }

    /// After a truncation (structure permit held, queued appends failed): snapshots past the new
    /// end go, and unless the state reflects nothing that was cut, it is rebuilt from the newest
    /// remaining snapshot and the batch headers after it (Kafka's `truncateAndReload`).
    pub(super) async fn reload_producers(&self) -> Result<()> {
        self.fail_in_flight_producers();
        let (start, end) = {
            let s = self.state.borrow();
            (s.log_start_offset, s.log_end_offset)
        };
        self.delete_snapshots(|o| o > end).await;
        if self.producers.state.borrow().map_end_offset() == end {
            return Ok(());
        }
        if let Err(e) = self.rebuild_producers(start, end).await {
            // Idempotence checks against a half-rebuilt state could acknowledge a batch that is
            // not in the log: the log refuses appends until it is reopened.
            tracing::error!(partition = %self.tp, error = %e, "rebuilding producer state failed; log goes offline");
            self.state.borrow_mut().offline = true;
            return Err(e);
        }
        Ok(())
    }

    /// The log restarts empty at `offset` (Kafka's `truncateFullyAndStartAt`): no producer, no
    /// snapshot.
    pub(super) async fn reset_producers(&self, offset: Offset) {
        self.producers.state.borrow_mut().reset_to(offset);
        self.delete_snapshots(|_| true).await;
    }

    /// The log start moved up (retention, DeleteRecords): producers stay (KAFKA-7190), the
    /// snapshots below the new start go, as Kafka deletes those of deleted segments.
    pub(super) async fn on_log_start_moved(&self) {
        let start = self.log_start_offset();
        self.producers
            .state
            .borrow_mut()
            .on_log_start_offset_incremented(start);
        self.delete_snapshots(|o| o < start).await;
    }

    /// Loads the newest usable snapshot at or below `end` (a corrupt one is deleted and the next
    /// older tried, as Kafka does), or starts empty at `start`, then replays the batch headers
    /// from there to `end`.
    async fn rebuild_producers(&self, start: Offset, end: Offset) -> Result<()> {
        let expiration_ms = self.producers.state.borrow().producer_id_expiration_ms();
        let mut fresh = ProducerStateManager::new(expiration_ms);
        fresh.reset_to(start);
        let candidates: Vec<Offset> = self
            .producers
            .snapshots
            .borrow()
            .range(..=end)
            .rev()
            .copied()
            .collect();
        for offset in candidates {
            let decoded = match fs::read_small_file(&self.snapshot_path(offset)).await {
                Ok(Some(bytes)) => {
                    ProducerStateManager::decode_snapshot(&bytes).map_err(|e| e.to_string())
                }
                Ok(None) => Err("the file is gone".to_string()),
                Err(e) => Err(e.to_string()),
            };
            match decoded {
                Ok((loaded, at)) if at == offset => {
                    fresh.replace_with(loaded);
                    fresh.on_log_start_offset_incremented(start);
                    break;
                }
                Ok((_, at)) => {
                    tracing::warn!(partition = %self.tp, offset, says = at, "producer snapshot names another offset; ignoring it");
                }
                Err(e) => {
                    tracing::warn!(partition = %self.tp, offset, error = %e, "unusable producer snapshot; trying an older one");
                }
            }
            self.delete_snapshots(|o| o == offset).await;
        }
        *self.producers.state.borrow_mut() = fresh;
        let from = self.producers.state.borrow().map_end_offset();
        let replayed = self.replay_producers(from, end).await?;
        tracing::debug!(partition = %self.tp, from, end, replayed, "producer state rebuilt");
        Ok(())
    }

    /// Applies the headers of the batches holding offsets in `from..end`, segment by segment,
    /// reading headers only (no record is parsed). Returns how many batches changed the state.
    async fn replay_producers(&self, from: Offset, end: Offset) -> Result<usize> {
        let segments: Vec<(Offset, u64)> = {
            let s = self.state.borrow();
            s.segments
                .values()
                .filter(|g| g.next_offset > from && g.base_offset < end)
                .map(|g| (g.base_offset, g.size))
                .collect()
        };
        let mut changed = 0;
        for (base, size) in segments {
            let file = self.segment_file(base, false).await?;
            let path = segment::file_path(&self.dir, base, LOG_SUFFIX);
            let mut position = if from > base {
                self.index_floor(base, from).await?
            } else {
                0
            };
            while position < size {
                let len = REPLAY_READ_BYTES.min((size - position) as usize);
                let bytes = fs::read_at(&file.file, &path, position, len).await?;
                let mut headers = Vec::new();
                let mut at = 0;
                let mut past_end = false;
                while at + HEADER_LEN <= bytes.len() {
                    let Ok(h) = BatchHeader::parse(&bytes[at..]) else {
                        break;
                    };
                    if h.batch_length <= 0 || h.base_offset >= end {
                        past_end = true;
                        break;
                    }
                    if h.last_offset() >= from {
                        headers.push(h);
                    }
                    at += h.total_len();
                }
                changed += self
                    .producers
                    .state
                    .borrow_mut()
                    .rebuild_from_batches(&headers);
                if past_end || at == 0 {
                    // The end, or bytes recovery did not vouch for: nothing more to replay here.
                    break;
                }
                position += at as u64;
            }
        }
        Ok(changed)
    }
}
