//! `PartitionLog`: one partition's log, owned by one core.
//!
//! State lives in `RefCell`s borrowed only between awaits, so tasks of the owning core (producer
//! requests, fetches, the replica fetcher, retention) interleave safely without locks. Structural
//! changes (writing, rolling, truncating, deleting segments) take the log's single-permit
//! `structure` semaphore, a cooperative single-threaded gate, so they never interleave with each
//! other; reads take nothing and see only batches whose write has completed.

mod append;
mod clean;
mod deferred_delete;
mod maintenance;
mod open;
mod preallocate;
mod producers;
mod read;

pub use append::AppendInfo;
pub use clean::{CleanOptions, CleanOutcome};
pub use maintenance::RetentionOutcome;
pub use open::OpenReport;
pub use read::{FileRegion, ReadOutcome, TimestampLookup};

#[cfg(test)]
mod clean_tests;
#[cfg(test)]
mod producer_tests;
#[cfg(test)]
mod tests;

use crate::checkpoint::{LeaderEpochCache, PartitionCheckpoint};
use crate::config::LogConfig;
use crate::error::{Result, StorageError};
use crate::file_cache::{OpenSegment, SegmentFileCache};
use crate::segment::{self, Segment, LOG_SUFFIX};
use crate::types::{LeaderEpoch, Offset, TopicPartition};
use crate::wait::Notify;
use append::WriteQueue;
use glommio::sync::Semaphore;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;

pub struct PartitionLog {
    tp: TopicPartition,
    dir: PathBuf,
    /// This log's id in the core's file cache.
    id: u64,
    cache: Rc<SegmentFileCache>,
    config: RefCell<LogConfig>,
    state: RefCell<LogState>,
    writes: RefCell<WriteQueue>,
    /// Wakes appenders whose write finished and readers waiting for the log end to move.
    progress: Notify,
    /// One permit: held by whoever changes the segment structure or writes.
    structure: Semaphore,
    /// One permit: checkpoint files are replaced through one temporary file each.
    checkpoint_gate: Semaphore,
    /// What the partition checkpoint file says now, so unchanged state is not rewritten.
    last_checkpoint: RefCell<Option<PartitionCheckpoint>>,
    /// Sequence number of the next partition checkpoint (it picks the slot it overwrites).
    checkpoint_seq: std::cell::Cell<u64>,
    /// Block reservations of the active segment (see `preallocate`).
    reservation: std::cell::Cell<preallocate::Reservation>,
    /// Idempotent producers' state and its snapshot files (see `producers`).
    producers: producers::Producers,
}

pub(crate) struct LogState {
    pub segments: BTreeMap<Offset, Segment>,
    pub log_start_offset: Offset,
    /// One past the last offset whose write completed: what reads may see.
    pub log_end_offset: Offset,
    pub high_watermark: Offset,
    pub recovery_point: Offset,
    pub recovery_segment: Offset,
    pub recovery_position: u64,
    pub epochs: LeaderEpochCache,
    pub epochs_dirty: bool,
    pub unflushed_messages: u64,
    pub first_unflushed_ms: Option<i64>,
    /// Set after a failed write: the log refuses appends until reopened.
    pub offline: bool,
    pub closed: bool,
    pub stats: LogStats,
    /// Rolled segments whose fsync runs in the background; close waits for them.
    pub background_flushes: u32,
    /// Counts truncations. A background flush that sees it change knows the segments it was
    /// spawned for may have been deleted, or cut and written again (even under the same base).
    pub truncations: u64,
    /// Counts cleaner swaps (segments replaced by their cleaned version). A read that sees it
    /// change may have mixed the two versions and is redone.
    pub swaps: u64,
    /// The cleaner's position: offsets below it were cleaned with everything before them
    /// (Kafka's cleaner-offset-checkpoint). Checkpointed with the partition checkpoint.
    pub first_dirty: Offset,
}

/// Counters for operators and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LogStats {
    /// `write` calls made to `.log` files (group commit makes this far fewer than appends).
    pub writes: u64,
    /// Append calls completed.
    pub appends: u64,
    pub rolls: u64,
    pub flushes: u64,
}

impl LogState {
    pub fn active(&self) -> &Segment {
        self.segments
            .values()
            .next_back()
            .expect("a log always has an active segment")
    }

    pub fn active_mut(&mut self) -> &mut Segment {
        self.segments
            .values_mut()
            .next_back()
            .expect("a log always has an active segment")
    }

    pub fn checkpoint(&self) -> PartitionCheckpoint {
        PartitionCheckpoint {
            log_start_offset: self.log_start_offset,
            recovery_point: self.recovery_point,
            recovery_segment: self.recovery_segment,
            recovery_position: self.recovery_position,
            high_watermark: self.high_watermark,
            first_dirty: self.first_dirty,
        }
    }

    pub fn size_bytes(&self) -> u64 {
        self.segments.values().map(|s| s.size).sum()
    }
}

/// A consistent snapshot of a log's offsets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogOffsets {
    pub log_start_offset: Offset,
    pub log_end_offset: Offset,
    pub high_watermark: Offset,
}

impl PartitionLog {
    pub fn topic_partition(&self) -> &TopicPartition {
        &self.tp
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn config(&self) -> LogConfig {
        self.config.borrow().clone()
    }

    /// Takes effect for the next append, roll or retention pass (AlterConfigs).
    pub fn set_config(&self, config: LogConfig) {
        *self.config.borrow_mut() = config.normalized();
    }

    pub fn offsets(&self) -> LogOffsets {
        let s = self.state.borrow();
        LogOffsets {
            log_start_offset: s.log_start_offset,
            log_end_offset: s.log_end_offset,
            high_watermark: s.high_watermark,
        }
    }

    pub fn log_end_offset(&self) -> Offset {
        self.state.borrow().log_end_offset
    }

    pub fn log_start_offset(&self) -> Offset {
        self.state.borrow().log_start_offset
    }

    pub fn high_watermark(&self) -> Offset {
        self.state.borrow().high_watermark
    }

    /// Sets the high watermark (the replication layer decides it); clamped to
    /// [log start, log end]. Returns the value in force. Checkpointed by [`Self::checkpoint`].
    pub fn set_high_watermark(&self, hw: Offset) -> Offset {
        let mut s = self.state.borrow_mut();
        let hw = hw.clamp(s.log_start_offset, s.log_end_offset);
        if hw != s.high_watermark {
            s.high_watermark = hw;
            drop(s);
            self.progress.notify_all();
        }
        hw
    }

    pub fn size_bytes(&self) -> u64 {
        self.state.borrow().size_bytes()
    }

    pub fn segment_count(&self) -> usize {
        self.state.borrow().segments.len()
    }

    /// Base offsets of the segments, oldest first.
    pub fn segment_bases(&self) -> Vec<Offset> {
        self.state.borrow().segments.keys().copied().collect()
    }

    pub fn stats(&self) -> LogStats {
        self.state.borrow().stats
    }

    /// Closed (or deleted): it takes no more appends and its waits end.
    pub fn is_closed(&self) -> bool {
        self.state.borrow().closed
    }

    pub fn is_offline(&self) -> bool {
        self.state.borrow().offline
    }

    pub fn latest_epoch(&self) -> Option<LeaderEpoch> {
        self.state.borrow().epochs.latest_epoch()
    }

    pub fn epoch_entries(&self) -> Vec<(LeaderEpoch, Offset)> {
        self.state.borrow().epochs.entries().to_vec()
    }

    /// A new leader epoch starts at the log end (Kafka's `maybeAssignEpochStartOffset` when a
    /// replica becomes leader): recorded before any batch of it exists, so a follower that
    /// diverged learns where this leader's log stops being the old one's even when nothing new
    /// was written. Ignored unless newer than every epoch the log has. Checkpointed with the
    /// others.
    pub fn assign_epoch_start(&self, epoch: LeaderEpoch) -> bool {
        let mut s = self.state.borrow_mut();
        let end = s.log_end_offset;
        let assigned = s.epochs.assign(epoch, end);
        if assigned {
            s.epochs_dirty = true;
        }
        assigned
    }

    /// Kafka's OffsetForLeaderEpoch: the largest epoch at or below `epoch` and its end offset.
    pub fn end_offset_for_epoch(&self, epoch: LeaderEpoch) -> Option<(LeaderEpoch, Offset)> {
        let s = self.state.borrow();
        s.epochs.end_offset_for(epoch, s.log_end_offset)
    }

    /// Resolves once the log end offset exceeds `offset`, the high watermark moves past
    /// `high_watermark`, or the log closes. Lets a long-polling fetch wake on appends.
    pub async fn wait_for_progress(&self, offset: Offset, high_watermark: Offset) {
        self.progress
            .wait_until(|| {
                let s = self.state.borrow();
                (s.log_end_offset > offset
                    || s.high_watermark > high_watermark
                    || s.closed
                    || s.offline)
                    .then_some(())
            })
            .await
    }

    fn ensure_open(&self) -> Result<()> {
        let s = self.state.borrow();
        if s.closed {
            return Err(StorageError::Closed(self.dir.clone()));
        }
        if s.offline {
            return Err(StorageError::Offline(self.dir.clone()));
        }
        Ok(())
    }

    pub(crate) async fn segment_file(&self, base: Offset, create: bool) -> Result<Rc<OpenSegment>> {
        let dir = &self.dir;
        self.cache
            .get(
                (self.id, base),
                || segment::file_path(dir, base, LOG_SUFFIX),
                create,
            )
            .await
    }

    /// Writes the partition checkpoint (log start, recovery point, high watermark) and, if it
    /// changed, the leader epoch checkpoint. The owning core calls this periodically so the high
    /// watermark survives a restart (Kafka's `replica.high.watermark.checkpoint.interval.ms`).
    pub async fn checkpoint(&self) -> Result<()> {
        self.ensure_open()?;
        self.write_checkpoint().await
    }

    /// Writes the checkpoint files if what they would say changed. Writers of the checkpoint
    /// take their own gate, not the structure permit: a checkpoint is an fsync or three, and
    /// holding the permit across them stalled appends behind it (measured as ~100 ms produce
    /// tails every checkpoint interval with thousands of partitions).
    pub(crate) async fn write_checkpoint(&self) -> Result<()> {
        let Ok(_gate) = self.checkpoint_gate.acquire_permit(1).await else {
            return Err(StorageError::Closed(self.dir.clone()));
        };
        let (cp, epochs) = {
            let mut s = self.state.borrow_mut();
            let epochs = std::mem::take(&mut s.epochs_dirty).then(|| s.epochs.clone());
            (s.checkpoint(), epochs)
        };
        if let Some(epochs) = epochs {
            if let Err(e) = epochs.store(&self.dir).await {
                self.state.borrow_mut().epochs_dirty = true;
                return Err(e);
            }
        }
        if *self.last_checkpoint.borrow() == Some(cp) {
            return Ok(());
        }
        // Advanced only once written: a failed write may have torn its slot, and the retry must
        // rewrite that slot, not the other one, which holds the last good checkpoint.
        let seq = self.checkpoint_seq.get();
        cp.store(&self.dir, seq).await?;
        self.checkpoint_seq.set(seq + 1);
        *self.last_checkpoint.borrow_mut() = Some(cp);
        Ok(())
    }
}
