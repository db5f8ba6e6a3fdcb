//! Reads for zero-copy fetch and offset lookups. A read returns file regions (a segment's open
//! file, a position, a length) holding whole batches; the network layer sends them with
//! `sendfile`, so record bytes never pass through user space.

use super::PartitionLog;
use crate::error::{Result, StorageError};
use crate::file_cache::OpenSegment;
use crate::fs;
use crate::index::{OffsetIndex, TimeIndex};
use crate::records::BatchRecords;
use crate::segment::{self, LOG_SUFFIX};
use crate::types::Offset;
use glommio::io::BufferedFile;
use std::os::fd::{AsRawFd, RawFd};
use std::rc::Rc;

/// How many times a read is redone when a cleaner swap raced it.
const READ_ATTEMPTS_MAX: usize = 16;

/// Bytes of one segment file to send as they are: whole batches, from `position`.
#[derive(Clone)]
pub struct FileRegion {
    segment: Rc<OpenSegment>,
    pub position: u64,
    pub len: u64,
    /// Base offset of the first batch in the region.
    pub first_offset: Offset,
}

impl FileRegion {
    pub fn file(&self) -> &BufferedFile {
        &self.segment.file
    }

    /// Reads the region into memory. For tests, tools and internal consumers; fetches send
    /// regions with `sendfile` instead.
    pub async fn read_to_vec(&self) -> Result<Vec<u8>> {
        fs::read_at(
            &self.segment.file,
            &self.segment.path,
            self.position,
            self.len as usize,
        )
        .await
    }
}

impl AsRawFd for FileRegion {
    fn as_raw_fd(&self) -> RawFd {
        self.segment.file.as_raw_fd()
    }
}

impl std::fmt::Debug for FileRegion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileRegion")
            .field("path", &self.segment.path)
            .field("position", &self.position)
            .field("len", &self.len)
            .field("first_offset", &self.first_offset)
            .finish()
    }
}

/// The answer to a read: the data (if any) and the log's offsets at the time.
#[derive(Debug, Clone)]
pub struct ReadOutcome {
    pub region: Option<FileRegion>,
    pub log_start_offset: Offset,
    pub log_end_offset: Offset,
    pub high_watermark: Offset,
}

/// The answer to a lookup by timestamp: the first offset whose record's timestamp is at or after
/// the target, and that timestamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimestampLookup {
    pub offset: Offset,
    pub timestamp: i64,
}

impl PartitionLog {
    /// Reads whole batches starting with the one containing `fetch_offset`, up to `max_bytes`
    /// and below `max_offset` (exclusive: the high watermark for consumers, the log end for
    /// followers). With `min_one_batch`, the first batch is returned even if it is larger than
    /// `max_bytes`, so a consumer always makes progress (Kafka's rule). Reads from one segment.
    pub async fn read(
        &self,
        fetch_offset: Offset,
        max_bytes: u64,
        max_offset: Offset,
        min_one_batch: bool,
    ) -> Result<ReadOutcome> {
        // A cleaner swap between the lookups of a read and their use would mix two versions of
        // a segment (its size from one, its file or index from the other): such a read is
        // redone. Swaps are rare (one per cleaned group), so the bound is never reached in
        // practice; if it were, an empty answer is safe (the consumer fetches again).
        let mut out = None;
        for _ in 0..READ_ATTEMPTS_MAX {
            let swaps = self.state.borrow().swaps;
            let attempt = match self
                .read_segments(fetch_offset, max_bytes, max_offset, min_one_batch)
                .await
            {
                Ok(a) => a,
                // Retention removed the segment between the lookup and the open: the offset is
                // now below the log start, which is what the reader must hear (Kafka's
                // OFFSET_OUT_OF_RANGE), not an I/O error that takes the partition for broken.
                Err(StorageError::Io { .. }) if fetch_offset < self.log_start_offset() => {
                    let s = self.state.borrow();
                    return Err(StorageError::OffsetOutOfRange {
                        offset: fetch_offset,
                        log_start: s.log_start_offset,
                        log_end: s.log_end_offset,
                    });
                }
                Err(e) => return Err(e),
            };
            if self.state.borrow().swaps == swaps {
                return Ok(attempt);
            }
            out = Some(ReadOutcome {
                region: None,
                ..attempt
            });
        }
        Ok(out.expect("READ_ATTEMPTS_MAX is positive"))
    }

    async fn read_segments(
        &self,
        fetch_offset: Offset,
        max_bytes: u64,
        max_offset: Offset,
        min_one_batch: bool,
    ) -> Result<ReadOutcome> {
        self.ensure_open()?;
        let (start, end, hw) = {
            let s = self.state.borrow();
            (s.log_start_offset, s.log_end_offset, s.high_watermark)
        };
        let mut out = ReadOutcome {
            region: None,
            log_start_offset: start,
            log_end_offset: end,
            high_watermark: hw,
        };
        if fetch_offset < start || fetch_offset > end {
            return Err(StorageError::OffsetOutOfRange {
                offset: fetch_offset,
                log_start: start,
                log_end: end,
            });
        }
        let bound = max_offset.min(end);
        if fetch_offset >= bound {
            return Ok(out);
        }
        // The segment holding `fetch_offset`; an offset at a segment's end moves to the next.
        let mut candidate = {
            let s = self.state.borrow();
            s.segments
                .range(..=fetch_offset)
                .next_back()
                .filter(|(_, g)| fetch_offset < g.next_offset)
                .or_else(|| s.segments.range(fetch_offset + 1..).next())
                .map(|(b, g)| (*b, g.size, g.next_offset))
        };
        // Compaction leaves gaps: a cleaned segment may hold nothing at or after
        // `fetch_offset` (even nothing at all), and the read moves on to the next segment.
        let (base, size, seg_end, file, path, position, first) = loop {
            let Some((base, size, seg_end)) = candidate else {
                return Ok(out);
            };
            let file = self.segment_file(base, false).await?;
            let path = segment::file_path(&self.dir, base, LOG_SUFFIX);
            let from = self.index_floor(base, fetch_offset).await?;
            match segment::find_batch(&file.file, &path, from, size, fetch_offset).await? {
                Some((position, first)) => {
                    break (base, size, seg_end, file, path, position, first)
                }
                None if seg_end >= bound => return Ok(out),
                None => {
                    candidate = self
                        .state
                        .borrow()
                        .segments
                        .range(base + 1..)
                        .next()
                        .map(|(b, g)| (*b, g.size, g.next_offset));
                }
            }
        };
        if first.base_offset >= bound {
            return Ok(out);
        }
        // End of what may be sent: the segment's end, or the start of the batch holding `bound`.
        let limit = if bound < seg_end {
            let from = self.index_floor(base, bound).await?.max(position);
            match segment::find_batch(&file.file, &path, from, size, bound).await? {
                Some((pos, _)) => pos,
                None => size,
            }
        } else {
            size
        };
        let budget_end = position.saturating_add(max_bytes);
        let region_end = if limit <= budget_end {
            limit
        } else {
            let hint = self
                .position_floor(base, budget_end)
                .await?
                .filter(|p| *p > position)
                .unwrap_or(position);
            let boundary =
                segment::last_boundary_within(&file.file, &path, hint, budget_end, limit).await?;
            if boundary > position {
                boundary
            } else if min_one_batch {
                position + first.total_len() as u64
            } else {
                position
            }
        };
        if region_end > position {
            out.region = Some(FileRegion {
                segment: file,
                position,
                len: region_end - position,
                first_offset: first.base_offset,
            });
        }
        Ok(out)
    }

    /// Kafka's ListOffsets by timestamp: the earliest offset whose timestamp is at or after
    /// `timestamp`, or `None` if every record is older. Precise to the record (a compressed
    /// batch is decompressed to find it).
    pub async fn offset_for_timestamp(&self, timestamp: i64) -> Result<Option<TimestampLookup>> {
        // Redone if a cleaner swap raced it, as `read` is.
        for _ in 0..READ_ATTEMPTS_MAX {
            let swaps = self.state.borrow().swaps;
            let found = self.lookup_timestamp(timestamp).await?;
            if self.state.borrow().swaps == swaps {
                return Ok(found);
            }
        }
        Err(StorageError::Busy(self.dir.clone()))
    }

    async fn lookup_timestamp(&self, timestamp: i64) -> Result<Option<TimestampLookup>> {
        self.ensure_open()?;
        let candidate = {
            let s = self.state.borrow();
            s.segments
                .values()
                .find(|g| g.max_timestamp >= timestamp && g.size > 0)
                .map(|g| (g.base_offset, g.size))
        };
        let Some((base, size)) = candidate else {
            return Ok(None);
        };
        let start_offset = match self.time_index_floor(base, timestamp).await? {
            Some(rel) => base + rel as i64,
            None => base,
        };
        let log_start = self.log_start_offset();
        let file = self.segment_file(base, false).await?;
        let path = segment::file_path(&self.dir, base, LOG_SUFFIX);
        let mut pos = self.index_floor(base, start_offset).await?;
        while pos < size {
            let Some(h) = segment::read_header(&file.file, &path, pos).await? else {
                break;
            };
            if h.batch_length <= 0 {
                break;
            }
            if h.max_timestamp >= timestamp && h.last_offset() >= log_start {
                let bytes = fs::read_at(&file.file, &path, pos, h.total_len()).await?;
                // Unreadable records (never expected: the batch passed its CRC on the way in)
                // fall back to the batch's first offset.
                let found = BatchRecords::parse(&bytes).ok().and_then(|b| {
                    b.records
                        .iter()
                        .map(|r| (r.offset, r.timestamp))
                        .find(|(o, t)| *t >= timestamp && *o >= log_start)
                });
                let (offset, ts) = found.unwrap_or((h.base_offset.max(log_start), h.max_timestamp));
                return Ok(Some(TimestampLookup {
                    offset,
                    timestamp: ts,
                }));
            }
            pos += h.total_len() as u64;
        }
        Ok(None)
    }

    /// Kafka's ListOffsets MAX_TIMESTAMP: the offset and value of the largest timestamp.
    pub fn max_timestamp(&self) -> Option<TimestampLookup> {
        let s = self.state.borrow();
        s.segments
            .values()
            .filter(|g| g.max_timestamp >= 0)
            .max_by_key(|g| g.max_timestamp)
            .map(|g| TimestampLookup {
                offset: g.offset_of_max_timestamp,
                timestamp: g.max_timestamp,
            })
    }

    /// The last batch start at or below `position` that the offset index knows.
    async fn position_floor(&self, base: Offset, position: u64) -> Result<Option<u64>> {
        let p = position.min(u32::MAX as u64) as u32;
        if let Some(idx) = self
            .state
            .borrow()
            .segments
            .get(&base)
            .and_then(|s| s.indexer.as_ref())
        {
            return Ok(idx.offsets.floor_by_position(p).map(|e| e.position as u64));
        }
        let index = self.inactive_offset_index(base).await?;
        Ok(index.floor_by_position(p).map(|e| e.position as u64))
    }

    /// A relative offset from which batches may hold `timestamp` or later.
    async fn time_index_floor(&self, base: Offset, timestamp: i64) -> Result<Option<u32>> {
        if let Some(idx) = self
            .state
            .borrow()
            .segments
            .get(&base)
            .and_then(|s| s.indexer.as_ref())
        {
            return Ok(idx.times.floor_below(timestamp).map(|e| e.relative_offset));
        }
        let index = self.inactive_time_index(base).await?;
        Ok(index.floor_below(timestamp).map(|e| e.relative_offset))
    }

    /// Bytes written to segment `base` (0 if it is gone).
    fn segment_size(&self, base: Offset) -> u64 {
        self.state
            .borrow()
            .segments
            .get(&base)
            .map_or(0, |s| s.size)
    }

    /// An inactive segment's offset index, loaded once per open file and rebuilt in memory if the
    /// file is missing or damaged.
    pub(crate) async fn inactive_offset_index(&self, base: Offset) -> Result<Rc<OffsetIndex>> {
        let file = self.segment_file(base, false).await?;
        if let Some(i) = file.offset_index.borrow().clone() {
            return Ok(i);
        }
        let size = self.segment_size(base);
        let index = match super::open::read_offset_index(&self.dir, base, size).await? {
            Some(i) => i,
            None => {
                tracing::warn!(partition = %self.tp, base, "offset index unusable; rebuilding in memory");
                self.index_by_scan(base, size, false).await?.0.offsets
            }
        };
        let index = Rc::new(index);
        *file.offset_index.borrow_mut() = Some(index.clone());
        Ok(index)
    }

    pub(crate) async fn inactive_time_index(&self, base: Offset) -> Result<Rc<TimeIndex>> {
        let file = self.segment_file(base, false).await?;
        if let Some(i) = file.time_index.borrow().clone() {
            return Ok(i);
        }
        let size = self.segment_size(base);
        let index = match super::open::read_time_index(&self.dir, base).await? {
            Some(i) => i,
            None => self.index_by_scan(base, size, false).await?.0.times,
        };
        let index = Rc::new(index);
        *file.time_index.borrow_mut() = Some(index.clone());
        Ok(index)
    }
}
