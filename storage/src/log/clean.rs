//! Log compaction (`cleanup.policy=compact`), as Kafka's log cleaner does it.
//!
//! A pass maps every key of the *dirty* part of the log (segments not yet cleaned) to its latest
//! offset, then rewrites the closed segments from the log start up to the end of that map,
//! keeping a record only if no later record has its key. Offsets never change: surviving batches
//! keep their base offset and offset span, surviving records their bytes. Tombstones (null
//! values) are kept until their segment has been clean for `delete.retention.ms`, so consumers
//! reading behind still see the delete. The active segment, anything above the high watermark
//! or the recovery point, and records younger than `min.compaction.lag.ms` are never touched.
//!
//! Consecutive segments are merged while their total size fits in `segment.bytes`. Each group is
//! written to `<base>.log.cleaned` (and index files) without the structure permit, then swapped in
//! under it: a `<base>.cleaner-swap` marker naming the group's end offset is made durable first,
//! so a crash at any point after it is finished by [`complete_swaps`] on the next open, and a
//! crash before it leaves only `.cleaned` files, which opening deletes.
//!
//! Readers never hold the permit. The swap changes the log state and installs the cleaned file in
//! the file cache (pinned, since its final name still belongs to the old file) in one synchronous
//! step and counts it in `swaps`; a read that saw the counter move redoes itself.

use super::PartitionLog;
use crate::batch::{BatchHeader, HEADER_LEN};
use crate::config::LogConfig;
use crate::error::{gio, Result, StorageError};
use crate::file_cache::OpenSegment;
use crate::fs;
use crate::records::BatchRecords;
use crate::segment::{self, Indexer, Segment, INDEX_SUFFIX, LOG_SUFFIX, TIME_INDEX_SUFFIX};
use crate::types::Offset;
use ahash::AHashMap;
use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::rc::Rc;

/// Suffix of a cleaned segment's files before the swap.
const CLEANED_SUFFIX: &str = "cleaned";
/// Suffix of the marker that commits a swap: `<base>.cleaner-swap`, holding the group's end.
pub(crate) const SWAP_MARKER_SUFFIX: &str = "cleaner-swap";
/// How much of a segment the cleaner reads per I/O.
const READ_CHUNK_BYTES: usize = 1 << 20;
/// Cleaned bytes buffered before they are written out.
const WRITE_CHUNK_BYTES: usize = 4 << 20;
/// Bytes the key map is charged per entry beyond the key itself (hash slot, offset, Vec header).
const MAP_ENTRY_OVERHEAD_BYTES: usize = 48;

/// What the caller decides for a pass.
#[derive(Debug, Clone, Copy)]
pub struct CleanOptions {
    pub now_ms: i64,
    /// The most memory the key map may take (Kafka's `log.cleaner.dedupe.buffer.size`). At least
    /// one dirty segment is always mapped, whatever its size.
    pub dedupe_buffer_bytes: usize,
    /// Clean whatever the dirty ratio (operators, tests).
    pub force: bool,
}

/// What a pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CleanOutcome {
    pub segments_before: usize,
    pub segments_after: usize,
    pub bytes_before: u64,
    pub bytes_after: u64,
    pub records_removed: u64,
    pub tombstones_removed: u64,
    /// The cleaner's position after the pass: everything below it is clean.
    pub first_dirty: Offset,
}

/// A closed segment as the cleaner plans with it.
#[derive(Debug, Clone, Copy)]
struct Candidate {
    base: Offset,
    size: u64,
    next_offset: Offset,
    max_timestamp: i64,
    /// The `.log` file's modification time (ms): tombstone expiry is measured from it.
    mtime_ms: i64,
}

struct Plan {
    /// Closed segments the pass may rewrite, oldest first.
    cleanable: Vec<Candidate>,
    first_dirty: Offset,
    truncations: u64,
}

/// Latest offset per key in the dirty part of the log.
struct KeyMap {
    latest: AHashMap<Vec<u8>, Offset>,
    /// One past the last offset mapped: the pass cleans below it.
    end: Offset,
}

impl PartitionLog {
    /// Runs one cleaning pass if the log is compacted and dirty enough. `None`: nothing done.
    pub async fn clean(self: &Rc<Self>, opts: CleanOptions) -> Result<Option<CleanOutcome>> {
        self.ensure_open()?;
        let config = self.config();
        if !config.compact {
            return Ok(None);
        }
        let Some(mut plan) = self.plan(&config, &opts) else {
            return Ok(None);
        };
        let paths = plan
            .cleanable
            .iter()
            .map(|c| segment::file_path(&self.dir, c.base, LOG_SUFFIX))
            .collect();
        for (c, ms) in plan.cleanable.iter_mut().zip(fs::modified_ms(paths).await) {
            c.mtime_ms = ms;
        }
        let Some(map) = self.map_keys(&plan, opts.dedupe_buffer_bytes).await? else {
            return Ok(None);
        };
        let in_pass: Vec<Candidate> = plan
            .cleanable
            .iter()
            .copied()
            .take_while(|c| c.next_offset <= map.end)
            .collect();
        // Tombstones expire `delete.retention.ms` after the newest segment that was already
        // clean before this pass (Kafka's rule): a tombstone first cleaned now is always kept.
        let horizon_ms = plan
            .cleanable
            .iter()
            .take_while(|c| c.next_offset <= plan.first_dirty)
            .last()
            .map_or(i64::MIN, |c| {
                c.mtime_ms.saturating_sub(config.delete_retention_ms)
            });
        let mut outcome = CleanOutcome {
            segments_before: in_pass.len(),
            bytes_before: in_pass.iter().map(|c| c.size).sum(),
            first_dirty: plan.first_dirty,
            ..CleanOutcome::default()
        };
        for group in group_by_size(&in_pass, config.segment_bytes) {
            let Some(cleaned) = self
                .clean_group(group, &map, horizon_ms, &config, &mut outcome)
                .await?
            else {
                // The log changed under the pass (retention, truncation): try again later.
                return Ok(None);
            };
            if !self.swap(group, cleaned, plan.truncations).await? {
                return Ok(None);
            }
            outcome.segments_after += 1;
        }
        outcome.bytes_after = {
            let s = self.state.borrow();
            s.segments
                .range(..map.end)
                .filter(|(_, g)| g.next_offset <= map.end)
                .map(|(_, g)| g.size)
                .sum()
        };
        {
            let mut s = self.state.borrow_mut();
            s.first_dirty = s.first_dirty.max(map.end);
            outcome.first_dirty = s.first_dirty;
        }
        self.write_checkpoint().await?;
        Ok(Some(outcome))
    }

    /// The share of the cleanable part of the log that was never cleaned, or `None` if the log
    /// has no closed segment the cleaner may touch.
    pub fn dirty_ratio(&self, now_ms: i64) -> Option<f64> {
        let config = self.config();
        let plan = self.cleanable(&config, now_ms)?;
        Some(dirty_ratio(&plan))
    }

    fn cleanable(&self, config: &LogConfig, now_ms: i64) -> Option<Plan> {
        let s = self.state.borrow();
        let active_base = s.active().base_offset;
        let lag = config.min_compaction_lag_ms;
        let mut cleanable = Vec::new();
        for g in s.segments.values() {
            // Closed, committed and fsynced segments only: the swap never races the writer, a
            // follower's truncation of uncommitted data, or a background fsync.
            if g.base_offset == active_base
                || g.next_offset > s.high_watermark
                || g.next_offset > s.recovery_point
            {
                break;
            }
            if lag > 0 && g.max_timestamp >= 0 && now_ms.saturating_sub(g.max_timestamp) < lag {
                break;
            }
            cleanable.push(Candidate {
                base: g.base_offset,
                size: g.size,
                next_offset: g.next_offset,
                max_timestamp: g.max_timestamp,
                mtime_ms: 0, // read by `clean` only, off the reactor
            });
        }
        let first_dirty = s.first_dirty.max(s.log_start_offset);
        if cleanable.iter().all(|c| c.next_offset <= first_dirty) {
            return None;
        }
        Some(Plan {
            cleanable,
            first_dirty,
            truncations: s.truncations,
        })
    }

    fn plan(&self, config: &LogConfig, opts: &CleanOptions) -> Option<Plan> {
        let plan = self.cleanable(config, opts.now_ms)?;
        let overdue = config.max_compaction_lag_ms < i64::MAX
            && plan.cleanable.iter().any(|c| {
                c.next_offset > plan.first_dirty
                    && c.max_timestamp >= 0
                    && opts.now_ms.saturating_sub(c.max_timestamp) > config.max_compaction_lag_ms
            });
        (opts.force || overdue || dirty_ratio(&plan) >= config.min_cleanable_dirty_ratio)
            .then_some(plan)
    }

    /// Maps the keys of dirty segments, oldest first, until the map's budget is used.
    async fn map_keys(&self, plan: &Plan, budget_bytes: usize) -> Result<Option<KeyMap>> {
        let mut map = KeyMap {
            latest: AHashMap::new(),
            end: plan.first_dirty,
        };
        let mut used = 0usize;
        for c in plan
            .cleanable
            .iter()
            .filter(|c| c.next_offset > plan.first_dirty)
        {
            if used > budget_bytes && map.end > plan.first_dirty {
                break;
            }
            let mut reader = self.batches(c.base, c.size);
            while let Some(chunk) = reader.next_chunk(self).await? {
                let Some(chunk) = chunk else {
                    return Ok(None);
                };
                for range in &chunk.batches {
                    // Decompressing a batch can take milliseconds: let produce and fetch in.
                    glommio::yield_if_needed().await;
                    let bytes = &chunk.bytes[range.clone()];
                    let header = BatchHeader::parse(bytes).map_err(StorageError::InvalidBatch)?;
                    if header.is_control() {
                        continue;
                    }
                    let batch = BatchRecords::parse(bytes)?;
                    for r in &batch.records {
                        let Some(key) = batch.key(r) else { continue };
                        if r.offset < plan.first_dirty {
                            continue;
                        }
                        match map.latest.get_mut(key) {
                            Some(o) => *o = (*o).max(r.offset),
                            None => {
                                used += key.len() + MAP_ENTRY_OVERHEAD_BYTES;
                                map.latest.insert(key.to_vec(), r.offset);
                            }
                        }
                    }
                }
            }
            map.end = c.next_offset;
        }
        Ok((map.end > plan.first_dirty).then_some(map))
    }

    /// Writes the cleaned version of `group` to `.cleaned` files. `None` if a segment of the
    /// group went away meanwhile.
    async fn clean_group(
        &self,
        group: &[Candidate],
        map: &KeyMap,
        horizon_ms: i64,
        config: &LogConfig,
        outcome: &mut CleanOutcome,
    ) -> Result<Option<Cleaned>> {
        let base = group[0].base;
        let paths = CleanedPaths::new(&self.dir, base);
        let out = fs::open_rw(&paths.log, true).await?;
        out.truncate(0).await.map_err(|e| gio(&paths.log, e))?;
        let mut indexer = Indexer::new();
        let mut written = 0u64;
        let mut pending: Vec<u8> = Vec::new();
        let mut first_batch_timestamp = None;
        for c in group {
            let keep_tombstones = c.mtime_ms > horizon_ms;
            let mut reader = self.batches(c.base, c.size);
            while let Some(chunk) = reader.next_chunk(self).await? {
                let Some(chunk) = chunk else {
                    drop(out);
                    paths.remove().await;
                    return Ok(None);
                };
                for range in &chunk.batches {
                    // Re-compressing a batch (gzip: ~14 MiB/s) takes milliseconds: yield often.
                    glommio::yield_if_needed().await;
                    let bytes = &chunk.bytes[range.clone()];
                    let Some(kept) = retain(bytes, map, keep_tombstones, outcome)? else {
                        continue;
                    };
                    let kept_bytes: &[u8] = kept.as_deref().unwrap_or(bytes);
                    let h = BatchHeader::parse(kept_bytes).map_err(StorageError::InvalidBatch)?;
                    let position = written + pending.len() as u64;
                    indexer.on_batch(base, &h, position, config.index_interval_bytes);
                    first_batch_timestamp.get_or_insert(h.max_timestamp);
                    pending.extend_from_slice(kept_bytes);
                }
                if pending.len() >= WRITE_CHUNK_BYTES {
                    let n = pending.len() as u64;
                    fs::write_all_at(&out, &paths.log, std::mem::take(&mut pending), written)
                        .await?;
                    written += n;
                }
            }
        }
        if !pending.is_empty() {
            let n = pending.len() as u64;
            fs::write_all_at(&out, &paths.log, pending, written).await?;
            written += n;
        }
        // The cleaned segment is as old as the newest of its sources, so tombstones in it
        // expire on the same clock as before the rewrite (Kafka sets the same time).
        let newest = group.iter().map(|c| c.mtime_ms).max().unwrap_or(0);
        if let Err(e) = fs::set_modified_ms(&paths.log, newest).await {
            // Only tombstone expiry reads it: a fresh time keeps tombstones longer, never shorter.
            tracing::warn!(path = %paths.log.display(), error = %e, "could not keep a cleaned segment's time");
        }
        out.fdatasync().await.map_err(|e| gio(&paths.log, e))?;
        indexer.add_time_entry(base);
        indexer
            .everything()
            .run_to(&paths.index, &paths.time_index, true)
            .await?;
        Ok(Some(Cleaned {
            file: out,
            size: written,
            indexer,
            first_batch_timestamp,
        }))
    }

    /// Replaces `group` by its cleaned version. `false` if the log changed under the pass.
    async fn swap(&self, group: &[Candidate], cleaned: Cleaned, truncations: u64) -> Result<bool> {
        let base = group[0].base;
        let end = group.last().expect("groups are not empty").next_offset;
        let paths = CleanedPaths::new(&self.dir, base);
        let permit = self.permit().await?;
        let unchanged = {
            let s = self.state.borrow();
            s.truncations == truncations
                && !s.closed
                && !s.offline
                && group.iter().all(|c| {
                    s.segments
                        .get(&c.base)
                        .is_some_and(|g| g.size == c.size && g.next_offset == c.next_offset)
                })
        };
        if !unchanged {
            drop(cleaned);
            paths.remove().await;
            return Ok(false);
        }
        // From here the swap is committed: a crash is finished by `complete_swaps` on open.
        fs::write_atomic(&paths.marker, format!("{end}\n").into_bytes()).await?;
        let replaced = {
            let mut s = self.state.borrow_mut();
            for c in group {
                s.segments.remove(&c.base);
            }
            let max_timestamp = cleaned.indexer.max_timestamp;
            s.segments.insert(
                base,
                Segment {
                    base_offset: base,
                    size: cleaned.size,
                    next_offset: end,
                    max_timestamp,
                    offset_of_max_timestamp: cleaned.indexer.offset_of_max_timestamp,
                    first_batch_timestamp: cleaned.first_batch_timestamp,
                    indexer: None,
                    preallocated: 0,
                },
            );
            s.swaps += 1;
            let open = Rc::new(OpenSegment {
                file: cleaned.file,
                path: segment::file_path(&self.dir, base, LOG_SUFFIX),
                offset_index: RefCell::new(Some(Rc::new(cleaned.indexer.offsets))),
                time_index: RefCell::new(Some(Rc::new(cleaned.indexer.times))),
            });
            self.cache.install_pinned((self.id, base), open)
        };
        self.cache.close_unused(replaced).await;
        let mut trash = Vec::new();
        let finished = async {
            for c in &group[1..] {
                trash.extend(self.retire_segment_files(c.base).await?);
            }
            paths.install().await?;
            fs::remove_if_exists(&paths.marker).await?;
            fs::sync_dir(&self.dir).await
        }
        .await;
        self.cache.unpin((self.id, base));
        drop(permit);
        // Unlinked outside the permit (see enforce_retention), after `file.delete.delay.ms`.
        let delay_ms = self.config.borrow().file_delete_delay_ms;
        self.delete_retired(trash, delay_ms).await;
        if let Err(e) = finished {
            // The state already names the cleaned segment; until a reopen finishes the swap
            // from the marker, the files do not match it.
            self.state.borrow_mut().offline = true;
            return Err(e);
        }
        self.progress.notify_all();
        Ok(true)
    }

    fn batches(&self, base: Offset, size: u64) -> BatchChunks {
        BatchChunks {
            base,
            size,
            position: 0,
        }
    }
}

/// What the cleaner keeps of one batch: `None` drops it, `Some(None)` keeps it as it is,
/// `Some(Some(bytes))` keeps a rewritten batch.
fn retain(
    bytes: &[u8],
    map: &KeyMap,
    keep_tombstones: bool,
    outcome: &mut CleanOutcome,
) -> Result<Option<Option<Vec<u8>>>> {
    let header = BatchHeader::parse(bytes).map_err(StorageError::InvalidBatch)?;
    if header.is_control() {
        return Ok(Some(None));
    }
    let batch = BatchRecords::parse(bytes)?;
    let mut keep = Vec::with_capacity(batch.records.len());
    for r in &batch.records {
        // A record without a key cannot be compacted; Kafka's cleaner discards it.
        let Some(key) = batch.key(r) else {
            outcome.records_removed += 1;
            continue;
        };
        if map.latest.get(key).is_some_and(|latest| r.offset < *latest) {
            outcome.records_removed += 1;
            continue;
        }
        if r.is_tombstone() && !keep_tombstones {
            outcome.records_removed += 1;
            outcome.tombstones_removed += 1;
            continue;
        }
        keep.push(r);
    }
    Ok(if keep.is_empty() {
        None
    } else if keep.len() == batch.records.len() {
        Some(None)
    } else {
        Some(Some(batch.rebuild(&keep, bytes)?))
    })
}

fn dirty_ratio(plan: &Plan) -> f64 {
    let total: u64 = plan.cleanable.iter().map(|c| c.size).sum();
    let dirty: u64 = plan
        .cleanable
        .iter()
        .filter(|c| c.next_offset > plan.first_dirty)
        .map(|c| c.size)
        .sum();
    if total == 0 {
        0.0
    } else {
        dirty as f64 / total as f64
    }
}

/// Consecutive segments whose sizes add up to at most `segment_bytes` (one segment at least),
/// whose offsets fit the index's 32-bit relative offsets from the group's base.
fn group_by_size(segments: &[Candidate], segment_bytes: u64) -> Vec<&[Candidate]> {
    let mut groups = Vec::new();
    let mut start = 0;
    while start < segments.len() {
        let mut end = start + 1;
        let mut size = segments[start].size;
        while end < segments.len()
            && size + segments[end].size <= segment_bytes
            && segments[end].next_offset - 1 - segments[start].base <= i32::MAX as i64
        {
            size += segments[end].size;
            end += 1;
        }
        groups.push(&segments[start..end]);
        start = end;
    }
    groups
}

/// A cleaned group, written and fsynced under its temporary names.
struct Cleaned {
    file: glommio::io::BufferedFile,
    size: u64,
    indexer: Indexer,
    first_batch_timestamp: Option<i64>,
}

struct CleanedPaths {
    log: PathBuf,
    index: PathBuf,
    time_index: PathBuf,
    marker: PathBuf,
    final_log: PathBuf,
    final_index: PathBuf,
    final_time_index: PathBuf,
}

impl CleanedPaths {
    fn new(dir: &Path, base: Offset) -> Self {
        let temp = |suffix: &str| {
            dir.join(format!(
                "{}.{CLEANED_SUFFIX}",
                segment::file_name(base, suffix)
            ))
        };
        Self {
            log: temp(LOG_SUFFIX),
            index: temp(INDEX_SUFFIX),
            time_index: temp(TIME_INDEX_SUFFIX),
            marker: segment::file_path(dir, base, SWAP_MARKER_SUFFIX),
            final_log: segment::file_path(dir, base, LOG_SUFFIX),
            final_index: segment::file_path(dir, base, INDEX_SUFFIX),
            final_time_index: segment::file_path(dir, base, TIME_INDEX_SUFFIX),
        }
    }

    /// Gives the cleaned files their final names: indexes first, the log last, so while the
    /// `.log.cleaned` file exists the swap is known to be unfinished.
    async fn install(&self) -> Result<()> {
        for (from, to) in [
            (&self.index, &self.final_index),
            (&self.time_index, &self.final_time_index),
            (&self.log, &self.final_log),
        ] {
            fs::rename_if_exists(from, to).await?;
        }
        Ok(())
    }

    /// Removes an abandoned pass's files (best effort: opening removes leftovers too).
    async fn remove(&self) {
        for p in [&self.log, &self.index, &self.time_index] {
            if let Err(e) = fs::remove_if_exists(p).await {
                tracing::warn!(path = %p.display(), error = %e, "removing an abandoned cleaned file");
            }
        }
    }
}

/// Finishes the cleaner swaps a crash interrupted: each `<base>.cleaner-swap` marker names a
/// group `[base, end)` whose cleaned files were complete and fsynced. The group's other segments
/// are deleted and the cleaned files take their final names; then the marker goes.
pub(crate) async fn complete_swaps(dir: &Path) -> Result<usize> {
    let mut markers = Vec::new();
    let mut logs = Vec::new();
    for name in fs::list_dir(dir).await? {
        match segment::parse_file_name(&name) {
            Some((base, SWAP_MARKER_SUFFIX)) => markers.push(base),
            Some((base, LOG_SUFFIX)) => logs.push(base),
            _ => {}
        }
    }
    for base in &markers {
        let paths = CleanedPaths::new(dir, *base);
        let end = fs::read_small_file(&paths.marker)
            .await?
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|t| t.trim().parse::<Offset>().ok());
        let Some(end) = end else {
            // A marker is written atomically; an unreadable one was never committed.
            fs::remove_if_exists(&paths.marker).await?;
            continue;
        };
        tracing::warn!(dir = %dir.display(), base, end, "finishing an interrupted cleaner swap");
        for old in logs.iter().filter(|b| **b > *base && **b < end) {
            for suffix in [LOG_SUFFIX, INDEX_SUFFIX, TIME_INDEX_SUFFIX] {
                fs::remove_if_exists(&segment::file_path(dir, *old, suffix)).await?;
            }
        }
        paths.install().await?;
        fs::sync_dir(dir).await?;
        fs::remove_if_exists(&paths.marker).await?;
        fs::sync_dir(dir).await?;
    }
    Ok(markers.len())
}

/// Reads a segment's batches a chunk at a time.
struct BatchChunks {
    base: Offset,
    size: u64,
    position: u64,
}

struct Chunk {
    bytes: Vec<u8>,
    batches: Vec<std::ops::Range<usize>>,
}

impl BatchChunks {
    /// The next whole batches; `Some(None)` if the segment was deleted under the reader (the
    /// pass is abandoned), `None` at the end.
    async fn next_chunk(&mut self, log: &PartitionLog) -> Result<Option<Option<Chunk>>> {
        // Each chunk is parsed without an await: give produce and fetch their turn between.
        glommio::yield_if_needed().await;
        if self.position >= self.size {
            return Ok(None);
        }
        if !log.state.borrow().segments.contains_key(&self.base) {
            return Ok(Some(None));
        }
        let file = match log.segment_file(self.base, false).await {
            Ok(f) => f,
            Err(_) if !log.state.borrow().segments.contains_key(&self.base) => {
                return Ok(Some(None));
            }
            Err(e) => return Err(e),
        };
        let path = segment::file_path(&log.dir, self.base, LOG_SUFFIX);
        let header = fs::read_at(&file.file, &path, self.position, HEADER_LEN).await?;
        let first = BatchHeader::parse(&header).map_err(StorageError::InvalidBatch)?;
        // At least the first batch, however large; otherwise up to the chunk size.
        let want = (self.size - self.position).min(READ_CHUNK_BYTES.max(first.total_len()) as u64)
            as usize;
        let bytes = fs::read_at(&file.file, &path, self.position, want).await?;
        let mut batches = Vec::new();
        let mut at = 0usize;
        while at + HEADER_LEN <= bytes.len() {
            let h = BatchHeader::parse(&bytes[at..]).map_err(StorageError::InvalidBatch)?;
            let len = h.total_len();
            if h.batch_length <= 0 || at + len > bytes.len() {
                break;
            }
            batches.push(at..at + len);
            at += len;
        }
        if batches.is_empty() {
            return Err(StorageError::CorruptFile {
                path,
                reason: format!("no whole batch at position {}", self.position),
            });
        }
        self.position += at as u64;
        Ok(Some(Some(Chunk { bytes, batches })))
    }
}
