//! Helpers of the producer state's tests: batch headers and a stand-in for the log.

use crate::batch::BatchHeader;
use crate::types::Offset;

use super::{Check, ProducerStateError, ProducerStateManager, NO_PRODUCER_ID};

pub(crate) const PID: i64 = 1000;
pub(crate) const T0: i64 = 1_700_000_000_000;

pub(crate) fn hdr(pid: i64, epoch: i16, seq: i32, count: i32) -> BatchHeader {
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

pub(crate) fn at(mut h: BatchHeader, base_offset: Offset) -> BatchHeader {
    h.base_offset = base_offset;
    h
}

/// A partition log stand-in: assigns offsets and remembers the written headers.
#[derive(Default)]
pub(crate) struct Log {
    pub end: Offset,
    pub written: Vec<BatchHeader>,
}

impl Log {
    pub fn enqueue(&mut self, h: BatchHeader) -> BatchHeader {
        let h = at(h, self.end);
        self.end = h.last_offset() + 1;
        self.written.push(h);
        h
    }
}

/// check + append + record, as the broker does for one produce.
pub(crate) fn produce(
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

pub(crate) fn ooo(got: i32, expected: i32) -> ProducerStateError {
    ProducerStateError::OutOfOrderSequence {
        producer_id: PID,
        epoch: 0,
        got,
        expected,
    }
}

pub(crate) fn sample_log() -> Vec<BatchHeader> {
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

pub(crate) fn replayed(batches: &[BatchHeader]) -> ProducerStateManager {
    let mut m = ProducerStateManager::default();
    m.rebuild_from_batches(batches);
    m
}
