//! Validating scans of a segment's `.log` file, for recovery after a crash and for rebuilding
//! indexes. A scan stops at the first batch that is torn (runs past the end of the file), malformed,
//! out of order, or (when asked) fails its CRC: what precedes it is the longest valid prefix.

use crate::batch::{compute_crc, BatchHeader, HEADER_LEN};
use crate::error::Result;
use crate::fs;
use crate::segment::Indexer;
use crate::types::Offset;
use glommio::io::BufferedFile;
use std::path::Path;

/// How much of a segment a scan reads per I/O: large reads keep a 1 GiB recovery fast.
const SCAN_CHUNK_BYTES: usize = 8 << 20;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanOutcome {
    /// Position after the last valid batch.
    pub valid_end: u64,
    /// One past the last offset of the last valid batch (or the `expected_next` given).
    pub next_offset: Offset,
    /// Timestamp of the first valid batch scanned, if any.
    pub first_batch_timestamp: Option<i64>,
    /// Whether bytes past `valid_end` were found and refused.
    pub invalid_tail: bool,
    pub batches: u64,
    /// Each leader epoch met and the first offset written in it, as Kafka's recovery rebuilds
    /// the leader epoch cache from the batches' `partitionLeaderEpoch`.
    pub epochs: Vec<(crate::types::LeaderEpoch, Offset)>,
}

pub struct ScanInput<'a> {
    pub file: &'a BufferedFile,
    pub path: &'a Path,
    pub segment_base: Offset,
    pub position: u64,
    pub expected_next: Offset,
    pub file_len: u64,
    pub verify_crc: bool,
    pub index_interval_bytes: u64,
}

/// Scans from `input.position` to the end of the file, feeding every valid batch to `indexer`.
pub async fn scan(input: ScanInput<'_>, indexer: &mut Indexer) -> Result<ScanOutcome> {
    let mut out = ScanOutcome {
        valid_end: input.position,
        next_offset: input.expected_next,
        first_batch_timestamp: None,
        invalid_tail: false,
        batches: 0,
        epochs: Vec::new(),
    };
    let mut chunk_start = input.position;
    let mut chunk: Vec<u8> = Vec::new();
    while out.valid_end < input.file_len {
        let pos = out.valid_end;
        let at = (pos - chunk_start) as usize;
        // Make sure the header, then the whole batch, is in the chunk.
        let need_header = at + HEADER_LEN > chunk.len();
        if need_header {
            let want = SCAN_CHUNK_BYTES.min((input.file_len - pos) as usize);
            chunk = fs::read_at(input.file, input.path, pos, want).await?;
            chunk_start = pos;
        }
        let at = (pos - chunk_start) as usize;
        if chunk.len() < at + HEADER_LEN {
            out.invalid_tail = true;
            break;
        }
        let Ok(h) = BatchHeader::parse(&chunk[at..]) else {
            out.invalid_tail = true;
            break;
        };
        if !batch_is_plausible(&h, &input, pos, out.next_offset) {
            out.invalid_tail = true;
            break;
        }
        let len = h.total_len();
        if at + len > chunk.len() {
            chunk = fs::read_at(
                input.file,
                input.path,
                pos,
                len.max(SCAN_CHUNK_BYTES.min((input.file_len - pos) as usize)),
            )
            .await?;
            chunk_start = pos;
            if chunk.len() < len {
                out.invalid_tail = true;
                break;
            }
        }
        let at = (pos - chunk_start) as usize;
        let bytes = &chunk[at..at + len];
        if input.verify_crc && compute_crc(bytes) != h.crc {
            out.invalid_tail = true;
            break;
        }
        indexer.on_batch(input.segment_base, &h, pos, input.index_interval_bytes);
        out.first_batch_timestamp.get_or_insert(h.max_timestamp);
        if out
            .epochs
            .last()
            .is_none_or(|(e, _)| *e != h.partition_leader_epoch)
        {
            out.epochs.push((h.partition_leader_epoch, h.base_offset));
        }
        out.next_offset = h.last_offset() + 1;
        out.valid_end = pos + len as u64;
        out.batches += 1;
    }
    Ok(out)
}

fn batch_is_plausible(
    h: &BatchHeader,
    input: &ScanInput<'_>,
    pos: u64,
    expected_next: Offset,
) -> bool {
    h.check_shape().is_ok()
        && pos + h.total_len() as u64 <= input.file_len
        && h.base_offset >= expected_next
        && h.base_offset >= input.segment_base
        && h.last_offset() - input.segment_base <= u32::MAX as i64
}
