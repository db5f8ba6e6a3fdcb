//! One segment of a partition log: file naming, what is known about it in memory, how its
//! indexes grow as batches are appended, and header-by-header scans of its `.log` file.

use crate::batch::{BatchHeader, HEADER_LEN};
use crate::error::Result;
use crate::fs;
use crate::index::{OffsetEntry, OffsetIndex, TimeEntry, TimeIndex, TIME_ENTRY_LEN};
use crate::types::Offset;
use glommio::io::BufferedFile;
use std::path::{Path, PathBuf};

pub const LOG_SUFFIX: &str = "log";
pub const INDEX_SUFFIX: &str = "index";
pub const TIME_INDEX_SUFFIX: &str = "timeindex";

/// `00000000000000000042.log`: the base offset, zero-padded to 20 digits, as Kafka names files.
pub fn file_name(base_offset: Offset, suffix: &str) -> String {
    format!("{base_offset:020}.{suffix}")
}

pub fn file_path(dir: &Path, base_offset: Offset, suffix: &str) -> PathBuf {
    dir.join(file_name(base_offset, suffix))
}

/// Parses `<20 digits>.<suffix>` back into a base offset.
pub fn parse_file_name(name: &str) -> Option<(Offset, &str)> {
    let (stem, suffix) = name.split_once('.')?;
    if stem.len() != 20 || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((stem.parse().ok()?, suffix))
}

/// Builds the sparse indexes as batches are appended (or re-read during recovery), with Kafka's
/// rule: an entry is added for a batch once more than `index.interval.bytes` were appended since
/// the previous entry; each offset entry pairs the batch's last offset with its start position,
/// and each time entry records the largest timestamp so far.
#[derive(Debug, Clone, Default)]
pub struct Indexer {
    pub offsets: OffsetIndex,
    pub times: TimeIndex,
    bytes_since_entry: u64,
    pub max_timestamp: i64,
    pub offset_of_max_timestamp: Offset,
    /// Entries already written to the index files; the rest are written on flush or roll.
    pub persisted_offsets: usize,
    pub persisted_times: usize,
}

impl Indexer {
    pub fn new() -> Self {
        Self {
            max_timestamp: -1,
            offset_of_max_timestamp: -1,
            ..Self::default()
        }
    }

    pub fn on_batch(
        &mut self,
        segment_base: Offset,
        h: &BatchHeader,
        position: u64,
        interval: u64,
    ) {
        if h.max_timestamp > self.max_timestamp {
            self.max_timestamp = h.max_timestamp;
            self.offset_of_max_timestamp = h.last_offset();
        }
        if self.bytes_since_entry > interval {
            self.offsets.append(OffsetEntry {
                relative_offset: (h.last_offset() - segment_base) as u32,
                position: position as u32,
            });
            self.add_time_entry(segment_base);
            self.bytes_since_entry = 0;
        }
        self.bytes_since_entry += h.total_len() as u64;
    }

    /// The final time entry Kafka writes when a segment stops being active, so the last entry of
    /// an inactive segment's `.timeindex` is its largest timestamp.
    pub fn add_time_entry(&mut self, segment_base: Offset) {
        if self.max_timestamp >= 0 {
            self.times.maybe_append(TimeEntry {
                timestamp: self.max_timestamp,
                relative_offset: (self.offset_of_max_timestamp - segment_base) as u32,
            });
        }
    }

    /// What must be written to bring the index files up to date with memory. Taken while the
    /// state is borrowed; run after the borrow ends (files are written across awaits).
    pub fn unpersisted(&self) -> IndexWrite {
        IndexWrite {
            offsets: self.offsets.encode_from(self.persisted_offsets),
            offsets_at: (self.persisted_offsets * crate::index::OFFSET_ENTRY_LEN) as u64,
            offsets_len: self.offsets.len(),
            times: self.times.encode_from(self.persisted_times),
            times_at: (self.persisted_times * TIME_ENTRY_LEN) as u64,
            times_len: self.times.len(),
        }
    }

    /// The whole indexes, for rewriting both files from scratch.
    pub fn everything(&self) -> IndexWrite {
        IndexWrite {
            offsets: self.offsets.encode_from(0),
            offsets_at: 0,
            offsets_len: self.offsets.len(),
            times: self.times.encode_from(0),
            times_at: 0,
            times_len: self.times.len(),
        }
    }

    /// Records that a write taken by [`Self::unpersisted`] reached the files. Entries removed by a
    /// truncation in between are not counted back in.
    pub fn mark_persisted(&mut self, w: &IndexWrite) {
        self.persisted_offsets = w.offsets_len.min(self.offsets.len());
        self.persisted_times = w.times_len.min(self.times.len());
    }

    /// Rewrites both index files from scratch, for an indexer not shared with anyone (rebuilt
    /// during open).
    pub async fn rewrite(&mut self, dir: &Path, base: Offset) -> Result<()> {
        let w = self.everything();
        w.run(dir, base, true).await?;
        self.mark_persisted(&w);
        Ok(())
    }

    pub fn truncate_to(&mut self, segment_base: Offset, offset: Offset, position: u64) {
        self.offsets.truncate_to_position(position);
        self.times
            .truncate_to_offset((offset - segment_base).max(0) as u32);
        self.persisted_offsets = self.persisted_offsets.min(self.offsets.len());
        self.persisted_times = self.persisted_times.min(self.times.len());
        self.bytes_since_entry = 0;
    }
}

/// Index entries to write to a segment's index files.
#[derive(Debug)]
pub struct IndexWrite {
    offsets: Vec<u8>,
    offsets_at: u64,
    offsets_len: usize,
    times: Vec<u8>,
    times_at: u64,
    times_len: usize,
}

impl IndexWrite {
    /// Writes the entries (and cuts whatever the files hold after them); `sync` fsyncs both.
    pub async fn run(&self, dir: &Path, base: Offset, sync: bool) -> Result<()> {
        let index_path = file_path(dir, base, INDEX_SUFFIX);
        let time_path = file_path(dir, base, TIME_INDEX_SUFFIX);
        self.run_to(&index_path, &time_path, sync).await
    }

    /// As [`Self::run`], to index files of other names (the cleaner's temporary files).
    pub async fn run_to(&self, index_path: &Path, time_path: &Path, sync: bool) -> Result<()> {
        write_at_and_cut(index_path, self.offsets.clone(), self.offsets_at, sync).await?;
        write_at_and_cut(time_path, self.times.clone(), self.times_at, sync).await
    }
}

/// Writes `bytes` at `pos` of a (possibly new) file and cuts anything after them, so index files
/// never keep stale entries past what memory holds.
async fn write_at_and_cut(path: &Path, bytes: Vec<u8>, pos: u64, sync: bool) -> Result<()> {
    let f = fs::open_rw(path, true).await?;
    let end = pos + bytes.len() as u64;
    if !bytes.is_empty() {
        fs::write_all_at(&f, path, bytes, pos).await?;
    }
    let size = f
        .file_size()
        .await
        .map_err(|e| crate::error::gio(path, e))?;
    if size > end {
        f.truncate(end)
            .await
            .map_err(|e| crate::error::gio(path, e))?;
    }
    if sync {
        f.fdatasync()
            .await
            .map_err(|e| crate::error::gio(path, e))?;
    }
    f.close().await.map_err(|e| crate::error::gio(path, e))
}

/// What the log knows of one segment without touching its files.
#[derive(Debug, Clone)]
pub struct Segment {
    pub base_offset: Offset,
    /// Bytes of whole, written batches.
    pub size: u64,
    /// One past the last offset in the segment (the base offset while empty).
    pub next_offset: Offset,
    /// Largest batch timestamp in the segment, -1 while empty or unknown.
    pub max_timestamp: i64,
    pub offset_of_max_timestamp: Offset,
    /// Timestamp of the first batch, which `segment.ms` rolling is measured from (Kafka's rule).
    pub first_batch_timestamp: Option<i64>,
    /// In-memory indexes: always present for the active segment, which is being appended to;
    /// inactive segments load theirs on demand through the file cache.
    pub indexer: Option<Indexer>,
    /// Active segment: the file's blocks are reserved up to here (see `log::preallocate`).
    pub preallocated: u64,
}

impl Segment {
    pub fn new_active(base_offset: Offset) -> Self {
        Self {
            base_offset,
            size: 0,
            next_offset: base_offset,
            max_timestamp: -1,
            offset_of_max_timestamp: -1,
            first_batch_timestamp: None,
            indexer: Some(Indexer::new()),
            preallocated: 0,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.size == 0
    }
}

/// Reads the header of the batch at `position`; `None` at or near end of file.
pub async fn read_header(
    file: &BufferedFile,
    path: &Path,
    position: u64,
) -> Result<Option<BatchHeader>> {
    let bytes = fs::read_at(file, path, position, HEADER_LEN).await?;
    if bytes.len() < HEADER_LEN {
        return Ok(None);
    }
    Ok(BatchHeader::parse(&bytes).ok())
}

/// The batch containing `offset`, found by walking headers forward from `position` (a batch
/// start at or before it), stopping at `end` (exclusive position). Returns its position and
/// header, or `None` if no batch before `end` reaches `offset`.
pub async fn find_batch(
    file: &BufferedFile,
    path: &Path,
    mut position: u64,
    end: u64,
    offset: Offset,
) -> Result<Option<(u64, BatchHeader)>> {
    while position < end {
        let Some(h) = read_header(file, path, position).await? else {
            return Ok(None);
        };
        if h.batch_length <= 0 {
            return Ok(None);
        }
        if h.last_offset() >= offset {
            return Ok(Some((position, h)));
        }
        position += h.total_len() as u64;
    }
    Ok(None)
}

/// The last batch boundary at or below `limit`, walking forward from the batch start `position`.
pub async fn last_boundary_within(
    file: &BufferedFile,
    path: &Path,
    mut position: u64,
    limit: u64,
    end: u64,
) -> Result<u64> {
    while position < end {
        let Some(h) = read_header(file, path, position).await? else {
            break;
        };
        let next = position + h.total_len() as u64;
        if h.batch_length <= 0 || next > limit || next > end {
            break;
        }
        position = next;
    }
    Ok(position)
}

/// The largest timestamp of an inactive segment: the last entry of its `.timeindex`.
pub async fn last_time_entry(dir: &Path, base: Offset) -> Result<Option<TimeEntry>> {
    let path = file_path(dir, base, TIME_INDEX_SUFFIX);
    let Some(bytes) = fs::read_small_file_tail(&path, TIME_ENTRY_LEN).await? else {
        return Ok(None);
    };
    Ok(TimeIndex::decode(&bytes).and_then(|t| t.last()))
}
