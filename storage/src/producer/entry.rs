//! What is remembered of one producer: its epoch and its last batches (Kafka's
//! `ProducerStateEntry` and `BatchMetadata`), and the sequence arithmetic of record batches.

use std::collections::VecDeque;

use crate::batch::BatchHeader;
use crate::types::Offset;

use super::{NO_SEQUENCE, NUM_BATCHES_TO_RETAIN};

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
    pub(crate) fn of(h: &BatchHeader) -> Self {
        Self {
            first_seq: h.base_sequence,
            last_seq: last_sequence(h),
            first_offset: h.base_offset,
            last_offset: h.last_offset(),
            timestamp: h.max_timestamp,
        }
    }
}

/// A producer's committed state, as the state reports it (what Kafka's DescribeProducers
/// returns, minus transactions).
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
pub(crate) struct ProducerEntry {
    pub epoch: i16,
    pub batches: VecDeque<BatchMetadata>,
}

impl ProducerEntry {
    pub fn new(epoch: i16, first: BatchMetadata) -> Self {
        Self {
            epoch,
            batches: VecDeque::from([first]),
        }
    }

    pub fn last(&self) -> &BatchMetadata {
        self.batches
            .back()
            .expect("a producer entry is never empty")
    }

    /// Kafka's `ProducerStateEntry.addBatch`: a new epoch forgets the old epoch's batches.
    pub fn push(&mut self, epoch: i16, meta: BatchMetadata) {
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

/// Kafka's `DefaultRecordBatch.lastSequence`. Uses `lastOffsetDelta`, not the record count, as
/// Kafka does: a batch emptied by compaction keeps its delta, and with it its sequence range.
pub(crate) fn last_sequence(h: &BatchHeader) -> i32 {
    increment_sequence(h.base_sequence, h.last_offset_delta.max(0))
}

/// Kafka's `DefaultRecordBatch.incrementSequence`: sequences wrap from `i32::MAX` to 0.
pub(crate) fn increment_sequence(seq: i32, delta: i32) -> i32 {
    if seq > i32::MAX - delta {
        delta - (i32::MAX - seq) - 1
    } else {
        seq + delta
    }
}

/// Kafka's `ProducerAppendInfo.inSequence`.
pub(crate) fn in_sequence(last: i32, next: i32) -> bool {
    next as i64 == last as i64 + 1 || (next == 0 && last == i32::MAX)
}

pub(crate) fn next_sequence(last: i32) -> i32 {
    if last == i32::MAX {
        0
    } else {
        last + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_arithmetic_wraps_from_i32_max_to_zero() {
        assert_eq!(increment_sequence(5, 3), 8);
        assert_eq!(increment_sequence(i32::MAX, 0), i32::MAX);
        assert_eq!(increment_sequence(i32::MAX, 1), 0);
        assert_eq!(increment_sequence(i32::MAX - 1, 4), 2);
        assert!(in_sequence(i32::MAX, 0));
        assert!(in_sequence(4, 5));
        assert!(!in_sequence(4, 6));
        assert!(!in_sequence(NO_SEQUENCE, 1));
        assert_eq!(next_sequence(i32::MAX), 0);
        assert_eq!(next_sequence(7), 8);
    }

    #[test]
    fn an_entry_keeps_the_last_five_batches_of_its_newest_epoch() {
        let meta = |seq: i32| BatchMetadata {
            first_seq: seq,
            last_seq: seq,
            first_offset: seq as Offset,
            last_offset: seq as Offset,
            timestamp: 0,
        };
        let mut e = ProducerEntry::new(0, meta(0));
        for seq in 1..8 {
            e.push(0, meta(seq));
        }
        let seqs: Vec<i32> = e.batches.iter().map(|b| b.first_seq).collect();
        assert_eq!(seqs, [3, 4, 5, 6, 7]);
        e.push(1, meta(0));
        assert_eq!((e.epoch, e.batches.len(), e.last().first_seq), (1, 1, 0));
    }
}
