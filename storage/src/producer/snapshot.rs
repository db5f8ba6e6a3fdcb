//! The bytes of a producer state snapshot (`<offset>.snapshot` beside the segments): what is
//! written at a roll and at a clean close, and read back at open and after a truncation.
//!
//! Format (big-endian), version 1: `version: u16, crc32c(body): u32, body` where body is
//! `snapshot_offset: i64, producer_count: u32`, then per producer (ascending id)
//! `producer_id: i64, epoch: i16, batch_count: u8 (1..=5)`, then per batch (oldest first)
//! `first_seq: i32, last_seq: i32, first_offset: i64, last_offset: i64, timestamp: i64`.
//! Weir's own layout in Kafka's frame (version, CRC-32C, body); unchanged since the broker
//! wrote these files itself, so snapshots of older data directories still load.

use std::collections::{HashMap, VecDeque};

use crate::types::Offset;

use super::entry::{increment_sequence, ProducerEntry};
use super::{BatchMetadata, ProducerStateError, ProducerStateManager, NUM_BATCHES_TO_RETAIN};

/// The file suffix of producer snapshots (Kafka's `LogFileUtils.PRODUCER_SNAPSHOT_FILE_SUFFIX`).
pub const SNAPSHOT_SUFFIX: &str = "snapshot";

const SNAPSHOT_VERSION: u16 = 1;
pub(super) const FRAME_HEADER: usize = 6;
/// The smallest producer entry: id, epoch, count and one batch.
const MIN_ENTRY: usize = 8 + 2 + 1 + 32;

impl ProducerStateManager {
    /// Encodes the state as of [`snapshot_offset(log_end_offset)`](Self::snapshot_offset): only
    /// batches below that offset are written, so after a restart the snapshot never refers to
    /// data past it, and replay from it restores the rest.
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
    /// offset, from which the log replays its batches.
    pub fn decode_snapshot(bytes: &[u8]) -> Result<(Self, Offset), ProducerStateError> {
        let body = unframe(bytes, SNAPSHOT_VERSION, "producer snapshot")?;
        let mut r = Reader { b: body, pos: 0 };
        let snapshot_offset = r.i64()?;
        if snapshot_offset < 0 {
            return Err(corrupt("negative snapshot offset"));
        }
        let count = r.u32()? as usize;
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
        Ok((
            Self::from_parts(producers, snapshot_offset),
            snapshot_offset,
        ))
    }
}

/// `version: u16, crc32c(body): u32, body` — the layout of Kafka's producer snapshot files.
pub(super) fn frame(version: u16, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(FRAME_HEADER + body.len());
    out.extend_from_slice(&version.to_be_bytes());
    out.extend_from_slice(&crc32c::crc32c(body).to_be_bytes());
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
    if crc32c::crc32c(body) != crc {
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
