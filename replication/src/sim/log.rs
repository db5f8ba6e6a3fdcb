//! A simulated partition log, with what matters to replication and nothing else: batches with
//! their offsets and leader epochs, the leader epoch cache (storage's own `LeaderEpochCache`,
//! kept from the batches as storage keeps it), the high watermark and its checkpoint, and
//! durability. Appends are volatile until an fsync; a truncation is durable at once (storage
//! fdatasyncs the segment it cuts); a crash keeps the fsynced batches and a prefix of the
//! others. A torn batch fails its CRC and recovery cuts the log before it, so what survives a
//! power loss is always a prefix of whole batches.

use crate::partition::epochs::EpochLookup;
use crate::quorum::rng::SplitMix64;
use crate::types::{LeaderEpoch, Offset};
use weir_storage::checkpoint::LeaderEpochCache;

/// A record's identity: the simulator writes unique values, so a record is known by it.
pub type Value = u64;

/// One record batch: `values[i]` is at offset `base + i`, all written in leader epoch `epoch`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    pub base: Offset,
    pub epoch: LeaderEpoch,
    pub values: Vec<Value>,
}

impl Batch {
    pub fn end(&self) -> Offset {
        self.base + self.values.len() as Offset
    }
}

#[derive(Debug, Clone, Default)]
pub struct SimLog {
    start: Offset,
    batches: Vec<Batch>,
    /// `batches[..durable]` survive a crash.
    durable: usize,
    epochs: LeaderEpochCache,
    /// The leader-epoch checkpoint file as last written (with the offsets checkpoint, at a
    /// flush and at a truncation); a crash starts from it.
    epochs_file: LeaderEpochCache,
    hw: Offset,
    /// The high watermark as last checkpointed (Kafka's replication-offset-checkpoint).
    hw_checkpoint: Offset,
}

impl SimLog {
    pub fn start(&self) -> Offset {
        self.start
    }

    pub fn end(&self) -> Offset {
        self.batches.last().map_or(self.start, Batch::end)
    }

    pub fn high_watermark(&self) -> Offset {
        self.hw
    }

    pub fn latest_epoch(&self) -> Option<LeaderEpoch> {
        self.epochs.latest_epoch()
    }

    pub fn batches(&self) -> &[Batch] {
        &self.batches
    }

    /// The record at `offset` and the epoch it was written in.
    pub fn record(&self, offset: Offset) -> Option<(LeaderEpoch, Value)> {
        let i = self.batch_index(offset)?;
        let b = &self.batches[i];
        Some((b.epoch, b.values[(offset - b.base) as usize]))
    }

    /// Every record from the log start, in offset order: `(offset, epoch, value)`.
    pub fn records(&self) -> impl Iterator<Item = (Offset, LeaderEpoch, Value)> + '_ {
        self.batches.iter().flat_map(|b| {
            b.values
                .iter()
                .enumerate()
                .map(move |(i, v)| (b.base + i as Offset, b.epoch, *v))
        })
    }

    fn batch_index(&self, offset: Offset) -> Option<usize> {
        let i = self.batches.partition_point(|b| b.end() <= offset);
        self.batches.get(i).filter(|b| b.base <= offset).map(|_| i)
    }

    /// The leader's append: a new batch in `epoch` at the log end.
    pub fn append_as_leader(&mut self, epoch: LeaderEpoch, values: Vec<Value>) -> Batch {
        let batch = Batch {
            base: self.end(),
            epoch,
            values,
        };
        self.push(batch.clone());
        batch
    }

    /// A follower's append of batches copied from the leader, offsets and epochs kept.
    pub fn append_as_follower(&mut self, batches: &[Batch]) {
        for b in batches {
            assert_eq!(b.base, self.end(), "a follower appends at its log end");
            self.push(b.clone());
        }
    }

    /// A new leader epoch starts at the log end (storage's `assign_epoch_start`, Kafka's
    /// `makeLeader`): recorded before any batch of it exists. Ignored unless newer.
    pub fn assign_epoch_start(&mut self, epoch: LeaderEpoch) {
        let end = self.end();
        self.epochs.assign(epoch, end);
    }

    /// Opening the log at a start (storage's `load`): epochs starting at or past the log end
    /// are dropped, as recovery drops them (an epoch start no batch followed).
    pub fn open(&mut self) {
        let end = self.end();
        self.epochs.truncate_from_end(end);
    }

    fn push(&mut self, batch: Batch) {
        self.epochs.assign(batch.epoch, batch.base);
        self.batches.push(batch);
    }

    /// Up to `max` batches from `offset`, which must be a batch boundary (a follower fetches
    /// from its log end, which ends a batch it copied from this log's epoch).
    pub fn read(&self, offset: Offset, max: usize) -> Vec<Batch> {
        let i = self.batches.partition_point(|b| b.base < offset);
        if let Some(b) = self.batches.get(i) {
            assert_eq!(b.base, offset, "a fetch from the middle of a batch");
        }
        self.batches[i..].iter().take(max).cloned().collect()
    }

    /// Storage's `truncate_to`: removes the batch containing `offset` and everything after,
    /// fsynced; the epoch cache and the high watermark follow. Returns what was removed.
    pub fn truncate_to(&mut self, offset: Offset) -> Vec<Batch> {
        let keep = self.batches.partition_point(|b| b.end() <= offset);
        let removed = self.batches.split_off(keep);
        self.durable = self.batches.len();
        let end = self.end();
        self.epochs.truncate_from_end(end);
        self.hw = self.hw.min(end);
        self.hw_checkpoint = self.hw;
        self.epochs_file = self.epochs.clone();
        removed
    }

    /// Storage's `truncate_fully_and_start_at`: empty, starting at `offset`, durably.
    pub fn truncate_fully_and_start_at(&mut self, offset: Offset) -> Vec<Batch> {
        let removed = std::mem::take(&mut self.batches);
        self.start = offset;
        self.durable = 0;
        self.epochs = LeaderEpochCache::default();
        self.epochs_file = LeaderEpochCache::default();
        self.hw = offset;
        self.hw_checkpoint = offset;
        removed
    }

    /// Sets the high watermark, clamped to the log as storage clamps it; returns it.
    pub fn set_high_watermark(&mut self, hw: Offset) -> Offset {
        self.hw = hw.clamp(self.start, self.end());
        self.hw
    }

    /// Writes the high watermark checkpoint.
    /// Writes the high watermark checkpoint, and the leader-epoch file with it.
    pub fn checkpoint(&mut self) {
        self.hw_checkpoint = self.hw;
        self.epochs_file = self.epochs.clone();
    }

    /// Makes every batch durable (the log's fsync), and the leader-epoch file.
    pub fn fsync(&mut self) {
        self.durable = self.batches.len();
        self.epochs_file = self.epochs.clone();
    }

    /// A power loss: the fsynced batches and a random prefix of the others survive (the
    /// batch after them torn, cut by recovery's CRC check); the epoch cache is the last
    /// leader-epoch file, cut at the log end and completed from the surviving batches, as
    /// storage's recovery scan does; the high watermark is read back from its checkpoint
    /// (capped at the log end, as on load). Returns how many batches were lost.
    pub fn crash(&mut self, rng: &mut SplitMix64) -> usize {
        let volatile = (self.batches.len() - self.durable) as u64;
        let kept = self.durable + rng.range(0, volatile + 1) as usize;
        let lost = self.batches.len() - kept;
        self.batches.truncate(kept);
        self.durable = kept;
        self.epochs = self.epochs_file.clone();
        let end = self.end();
        self.epochs.truncate_from_end(end);
        for b in &self.batches {
            self.epochs.assign(b.epoch, b.base);
        }
        self.epochs_file = self.epochs.clone();
        self.hw = self.hw_checkpoint.clamp(self.start, self.end());
        self.hw_checkpoint = self.hw;
        lost
    }
}

impl EpochLookup for SimLog {
    fn end_offset_for_epoch(&self, epoch: LeaderEpoch) -> Option<(LeaderEpoch, Offset)> {
        self.epochs.end_offset_for(epoch, self.end())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_crash_keeps_the_fsynced_batches_and_a_prefix_of_the_rest() {
        let mut log = SimLog::default();
        log.append_as_leader(0, vec![1, 2]);
        log.fsync();
        for v in 3..10 {
            log.append_as_leader(1, vec![v]);
        }
        log.set_high_watermark(5);
        log.checkpoint();
        log.set_high_watermark(8);
        let mut rng = SplitMix64::new(3);
        log.crash(&mut rng);
        assert!(log.end() >= 2);
        assert_eq!(log.high_watermark(), 5.min(log.end()));
        let values: Vec<Value> = log.records().map(|r| r.2).collect();
        assert_eq!(values, (1..=log.end() as u64).collect::<Vec<_>>());
    }

    #[test]
    fn truncation_cuts_whole_batches_and_follows_epochs() {
        let mut log = SimLog::default();
        log.append_as_leader(0, vec![1, 2, 3]);
        log.append_as_leader(2, vec![4, 5]);
        log.set_high_watermark(5);
        assert_eq!(log.end_offset_for_epoch(1), Some((0, 3)));
        let removed = log.truncate_to(3);
        assert_eq!(removed.len(), 1);
        assert_eq!((log.end(), log.high_watermark()), (3, 3));
        assert_eq!(log.latest_epoch(), Some(0));
        assert_eq!(log.read(0, 10).len(), 1);
        assert_eq!(log.record(1), Some((0, 2)));
    }
}
