//! Opening a partition log: find its segments, trust what a clean shutdown or an fsync vouched
//! for, and scan (with CRC checks) everything after the recovery point, cutting a torn or corrupt
//! tail at the last valid batch boundary and rebuilding indexes that are missing or damaged.

use super::{append::WriteQueue, LogState, PartitionLog};
use crate::checkpoint::{LeaderEpochCache, PartitionCheckpoint};
use crate::config::LogConfig;
use crate::error::{gio, Result};
use crate::file_cache::SegmentFileCache;
use crate::fs;
use crate::index::{OffsetIndex, TimeIndex};
use crate::recovery::{self, ScanInput};
use crate::segment::{self, Indexer, Segment, INDEX_SUFFIX, LOG_SUFFIX, TIME_INDEX_SUFFIX};
use crate::types::{Offset, TopicPartition};
use crate::wait::Notify;
use glommio::sync::Semaphore;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;

/// What opening found and did, for logs and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OpenReport {
    pub segments: usize,
    pub scanned_batches: u64,
    pub truncated_bytes: u64,
    pub deleted_segments: usize,
    pub rebuilt_indexes: usize,
}

impl PartitionLog {
    /// Opens (creating if needed) the log in `dir`. `clean_shutdown` says the log directory's
    /// clean-shutdown marker was present, so no recovery scan is needed.
    pub async fn open(
        dir: PathBuf,
        tp: TopicPartition,
        config: LogConfig,
        cache: Rc<SegmentFileCache>,
        clean_shutdown: bool,
    ) -> Result<Rc<Self>> {
        Self::open_with_report(dir, tp, config, cache, clean_shutdown)
            .await
            .map(|(log, _)| log)
    }

    pub async fn open_with_report(
        dir: PathBuf,
        tp: TopicPartition,
        config: LogConfig,
        cache: Rc<SegmentFileCache>,
        clean_shutdown: bool,
    ) -> Result<(Rc<Self>, OpenReport)> {
        let dir = fs::absolute_for_glommio(dir)?;
        fs::create_dir_off_reactor(&dir).await?;
        let config = config.normalized();
        let (checkpoint, checkpoint_seq) = match PartitionCheckpoint::load_latest(&dir).await {
            Ok(Some((c, seq))) => (Some(c), seq + 1),
            Ok(None) => (None, 0),
            Err(e) => {
                tracing::warn!(dir = %dir.display(), error = %e, "unreadable checkpoint; recovering the whole log");
                (None, 0)
            }
        };
        let mut epochs_dirty = false;
        let epochs = match LeaderEpochCache::load(&dir).await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(dir = %dir.display(), error = %e, "unreadable leader epoch checkpoint; starting empty");
                epochs_dirty = true;
                LeaderEpochCache::default()
            }
        };
        let id = cache.register_log();
        let log = Rc::new(PartitionLog {
            tp,
            dir: dir.clone(),
            id,
            cache,
            config: RefCell::new(config),
            state: RefCell::new(LogState {
                segments: BTreeMap::new(),
                log_start_offset: 0,
                log_end_offset: 0,
                high_watermark: 0,
                recovery_point: 0,
                recovery_segment: 0,
                recovery_position: 0,
                epochs,
                epochs_dirty,
                unflushed_messages: 0,
                first_unflushed_ms: None,
                offline: false,
                closed: false,
                stats: Default::default(),
                background_flushes: 0,
                truncations: 0,
                swaps: 0,
                first_dirty: 0,
            }),
            writes: RefCell::new(WriteQueue::default()),
            progress: Notify::default(),
            structure: Semaphore::new(1),
            checkpoint_gate: Semaphore::new(1),
            last_checkpoint: RefCell::new(None),
            checkpoint_seq: std::cell::Cell::new(checkpoint_seq),
            reservation: Default::default(),
            producers: Default::default(),
        });
        let report = log.load(checkpoint, clean_shutdown).await?;
        Ok((log, report))
    }

    async fn load(
        &self,
        checkpoint: Option<PartitionCheckpoint>,
        clean: bool,
    ) -> Result<OpenReport> {
        let mut report = OpenReport::default();
        super::clean::complete_swaps(&self.dir).await?;
        let (bases, snapshots) = list_segments(&self.dir).await?;
        let cp = checkpoint.unwrap_or_default();
        let mut segments: BTreeMap<Offset, Segment> = BTreeMap::new();
        if bases.is_empty() {
            let base = cp.log_start_offset.max(0);
            segments.insert(base, Segment::new_active(base));
            self.segment_file(base, true).await?;
            fs::sync_dir(&self.dir).await?;
        }
        // Where the recovery scan starts: nowhere after a clean shutdown; otherwise at the
        // checkpointed position in the checkpointed segment, or the whole log if unknown.
        let scan_from: Option<(Offset, u64)> = if clean || bases.is_empty() {
            None
        } else if checkpoint.is_some() && bases.contains(&cp.recovery_segment) {
            Some((cp.recovery_segment, cp.recovery_position))
        } else {
            let start = bases
                .iter()
                .rev()
                .find(|b| **b <= cp.recovery_point)
                .or(bases.first());
            start.map(|b| (*b, 0))
        };
        let last = bases.last().copied();
        let mut iter = bases.iter().copied().peekable();
        while let Some(base) = iter.next() {
            let next_base = iter.peek().copied();
            let is_active = Some(base) == last;
            let scan_at = match scan_from {
                Some((b, pos)) if base == b => Some(pos),
                Some((b, _)) if base > b => Some(0),
                _ => None,
            };
            let outcome = self
                .load_segment(base, next_base, is_active, scan_at, &mut report)
                .await?;
            let cut = outcome.cut;
            segments.insert(base, outcome.segment);
            if cut {
                // Everything after a corrupt point is not part of the valid prefix.
                for later in iter.by_ref() {
                    self.delete_segment_files(later).await?;
                    report.deleted_segments += 1;
                }
                // The cut segment becomes the active one: give it in-memory indexes.
                break;
            }
        }
        // The active segment must carry in-memory indexes; a cut inactive segment became active.
        let last_base = *segments.keys().next_back().expect("at least one segment");
        if segments[&last_base].indexer.is_none() {
            let seg = segments.get_mut(&last_base).expect("present");
            let (indexer, _) = self.index_by_scan(seg.base_offset, seg.size, false).await?;
            seg.indexer = Some(indexer);
        }
        report.segments = segments.len();
        let log_end = segments[&last_base].next_offset;
        let first_base = *segments.keys().next().expect("at least one segment");
        {
            let mut s = self.state.borrow_mut();
            s.log_start_offset = cp.log_start_offset.clamp(first_base, log_end);
            s.log_end_offset = log_end;
            s.high_watermark = cp.high_watermark.clamp(s.log_start_offset, log_end);
            s.first_dirty = cp.first_dirty.clamp(0, log_end);
            let active = &segments[&last_base];
            s.recovery_point = log_end;
            s.recovery_segment = last_base;
            s.recovery_position = active.size;
            if s.epochs.truncate_from_end(log_end) {
                s.epochs_dirty = true;
            }
            s.segments = segments;
        }
        self.writes.borrow_mut().next_offset = log_end;
        // Make recovered state the new baseline, so a crash now does not rescan it. A clean open
        // changed nothing and skips the fsyncs (thousands of partitions open at start-up).
        let recovered = report.scanned_batches > 0
            || report.truncated_bytes > 0
            || report.deleted_segments > 0
            || report.rebuilt_indexes > 0;
        if recovered {
            self.flush_active().await?;
        }
        self.load_producers(snapshots).await?;
        Ok(report)
    }

    async fn load_segment(
        &self,
        base: Offset,
        next_base: Option<Offset>,
        is_active: bool,
        scan_at: Option<u64>,
        report: &mut OpenReport,
    ) -> Result<LoadedSegment> {
        let config = self.config.borrow().clone();
        let file = self.segment_file(base, false).await?;
        let path = segment::file_path(&self.dir, base, LOG_SUFFIX);
        let file_len = file.file.file_size().await.map_err(|e| gio(&path, e))?;
        let mut seg = Segment::new_active(base);
        seg.size = file_len;
        seg.indexer = None;

        if let Some(start) = scan_at {
            // Keep the index entries that describe fsynced data, rebuild the rest by scanning.
            let (mut indexer, start, expected) = self.trusted_prefix(base, file_len, start).await?;
            let out = recovery::scan(
                ScanInput {
                    file: &file.file,
                    path: &path,
                    segment_base: base,
                    position: start,
                    expected_next: expected,
                    file_len,
                    verify_crc: true,
                    index_interval_bytes: config.index_interval_bytes,
                },
                &mut indexer,
            )
            .await?;
            report.scanned_batches += out.batches;
            {
                let mut s = self.state.borrow_mut();
                for (epoch, offset) in &out.epochs {
                    if s.epochs.assign(*epoch, *offset) {
                        s.epochs_dirty = true;
                    }
                }
            }
            let cut = out.invalid_tail || out.valid_end < file_len;
            if cut {
                tracing::warn!(
                    file = %path.display(), valid_end = out.valid_end, file_len,
                    "recovery: cutting invalid tail"
                );
                file.file
                    .truncate(out.valid_end)
                    .await
                    .map_err(|e| gio(&path, e))?;
                file.file.fdatasync().await.map_err(|e| gio(&path, e))?;
                report.truncated_bytes += file_len - out.valid_end;
            }
            seg.size = out.valid_end;
            seg.next_offset = out.next_offset;
            if !is_active && !cut {
                // An inactive segment ends where the next begins (gaps are possible after
                // compaction, so the next base is the truth).
                seg.next_offset = next_base.unwrap_or(seg.next_offset).max(seg.next_offset);
            }
            seg.max_timestamp = indexer.max_timestamp;
            seg.offset_of_max_timestamp = indexer.offset_of_max_timestamp;
            seg.first_batch_timestamp = self.first_batch_timestamp(base, &file, seg.size).await?;
            if !is_active && !cut {
                indexer.add_time_entry(base);
            }
            indexer.rewrite(&self.dir, base).await?;
            report.rebuilt_indexes += 1;
            seg.indexer = (is_active || cut).then_some(indexer);
            return Ok(LoadedSegment { segment: seg, cut });
        }

        if is_active {
            let (mut indexer, rebuilt) = self.load_active_indexes(base, file_len).await?;
            report.rebuilt_indexes += rebuilt as usize;
            // The index tells where the last indexed batch starts; walk headers from there to
            // the end, adding the entries that were never persisted.
            let from = indexer.offsets.last().map_or(0, |e| e.position as u64);
            let out = recovery::scan(
                ScanInput {
                    file: &file.file,
                    path: &path,
                    segment_base: base,
                    position: from,
                    expected_next: base,
                    file_len,
                    verify_crc: false,
                    index_interval_bytes: config.index_interval_bytes,
                },
                &mut indexer,
            )
            .await?;
            if out.invalid_tail {
                // A clean shutdown promised a whole log; it is not. Recover this segment fully.
                tracing::warn!(file = %path.display(), "active segment damaged despite clean shutdown; recovering");
                return Box::pin(self.load_segment(base, next_base, is_active, Some(0), report))
                    .await;
            }
            seg.next_offset = if out.batches == 0 {
                base
            } else {
                out.next_offset
            };
            seg.max_timestamp = indexer.max_timestamp;
            seg.offset_of_max_timestamp = indexer.offset_of_max_timestamp;
            seg.first_batch_timestamp = self.first_batch_timestamp(base, &file, seg.size).await?;
            seg.indexer = Some(indexer);
            return Ok(LoadedSegment {
                segment: seg,
                cut: false,
            });
        }

        // Inactive and trusted: size from the file, end from the next segment, largest timestamp
        // from the last time index entry (rebuilt from the log if that file is unusable).
        seg.next_offset = next_base.unwrap_or(base);
        match segment::last_time_entry(&self.dir, base).await? {
            Some(t) => {
                seg.max_timestamp = t.timestamp;
                seg.offset_of_max_timestamp = base + t.relative_offset as i64;
            }
            None if file_len > 0 => {
                let (mut indexer, _) = self.index_by_scan(base, file_len, false).await?;
                indexer.add_time_entry(base);
                indexer.rewrite(&self.dir, base).await?;
                report.rebuilt_indexes += 1;
                seg.max_timestamp = indexer.max_timestamp;
                seg.offset_of_max_timestamp = indexer.offset_of_max_timestamp;
            }
            None => {}
        }
        Ok(LoadedSegment {
            segment: seg,
            cut: false,
        })
    }

    /// The index entries that describe fsynced data (at or below the recovery position, written
    /// and fsynced with it), and the batch position and minimum offset the scan continues from.
    async fn trusted_prefix(
        &self,
        base: Offset,
        file_len: u64,
        start: u64,
    ) -> Result<(Indexer, u64, Offset)> {
        let fresh = (Indexer::new(), 0, base);
        if start == 0 || start > file_len {
            return Ok(fresh);
        }
        let (Some(index), Some(times)) = (
            read_offset_index(&self.dir, base, file_len).await?,
            read_time_index(&self.dir, base).await?,
        ) else {
            return Ok(fresh);
        };
        let Some(resume) = index.floor_by_position(start.min(u32::MAX as u64) as u32) else {
            return Ok(fresh);
        };
        let mut indexer = Indexer::new();
        let mut previous_last = None;
        for e in index
            .entries()
            .iter()
            .take_while(|e| e.position <= resume.position)
        {
            if e.position < resume.position {
                previous_last = Some(e.relative_offset);
            }
            indexer.offsets.append(*e);
        }
        // A time entry is added with each offset entry when the largest timestamp grew, so the
        // entries up to the resume batch give the exact largest timestamp up to it.
        for t in times
            .entries()
            .iter()
            .take_while(|t| t.relative_offset <= resume.relative_offset)
        {
            indexer.times.maybe_append(*t);
            indexer.max_timestamp = t.timestamp;
            indexer.offset_of_max_timestamp = base + t.relative_offset as i64;
        }
        indexer.persisted_offsets = 0;
        indexer.persisted_times = 0;
        let expected = previous_last.map_or(base, |o| base + o as i64 + 1);
        Ok((indexer, resume.position as u64, expected))
    }

    async fn first_batch_timestamp(
        &self,
        base: Offset,
        file: &crate::file_cache::OpenSegment,
        size: u64,
    ) -> Result<Option<i64>> {
        if size == 0 {
            return Ok(None);
        }
        let path = segment::file_path(&self.dir, base, LOG_SUFFIX);
        Ok(segment::read_header(&file.file, &path, 0)
            .await?
            .map(|h| h.max_timestamp))
    }

    /// Loads the active segment's indexes from their files, or rebuilds them from the log when
    /// they are missing or damaged. Returns whether a rebuild happened.
    async fn load_active_indexes(&self, base: Offset, file_len: u64) -> Result<(Indexer, bool)> {
        let offsets = read_offset_index(&self.dir, base, file_len).await?;
        let times = read_time_index(&self.dir, base).await?;
        match (offsets, times) {
            (Some(offsets), Some(times)) => {
                let mut indexer = Indexer::new();
                if let Some(t) = times.last() {
                    indexer.max_timestamp = t.timestamp;
                    indexer.offset_of_max_timestamp = base + t.relative_offset as i64;
                }
                indexer.persisted_offsets = offsets.len();
                indexer.persisted_times = times.len();
                indexer.offsets = offsets;
                indexer.times = times;
                Ok((indexer, false))
            }
            _ => {
                let (mut indexer, _) = self.index_by_scan(base, file_len, false).await?;
                indexer.rewrite(&self.dir, base).await?;
                Ok((indexer, true))
            }
        }
    }

    /// Builds a segment's indexes by walking its batches.
    pub(crate) async fn index_by_scan(
        &self,
        base: Offset,
        size: u64,
        verify_crc: bool,
    ) -> Result<(Indexer, recovery::ScanOutcome)> {
        let file = self.segment_file(base, false).await?;
        let path = segment::file_path(&self.dir, base, LOG_SUFFIX);
        let mut indexer = Indexer::new();
        let interval = self.config.borrow().index_interval_bytes;
        let out = recovery::scan(
            ScanInput {
                file: &file.file,
                path: &path,
                segment_base: base,
                position: 0,
                expected_next: base,
                file_len: size,
                verify_crc,
                index_interval_bytes: interval,
            },
            &mut indexer,
        )
        .await?;
        Ok((indexer, out))
    }

    /// Renames a segment's files to `<name>.deleted` (Kafka's suffix for files awaiting
    /// deletion) and returns the new paths, for the caller to unlink once it no longer holds the
    /// structure permit. A crash in between leaves `.deleted` files, which opening removes.
    pub(crate) async fn retire_segment_files(&self, base: Offset) -> Result<Vec<PathBuf>> {
        self.cache.remove((self.id, base)).await;
        let mut retired = Vec::new();
        for suffix in [LOG_SUFFIX, INDEX_SUFFIX, TIME_INDEX_SUFFIX] {
            let path = segment::file_path(&self.dir, base, suffix);
            let mut deleted = path.clone().into_os_string();
            deleted.push(".deleted");
            let deleted = PathBuf::from(deleted);
            if fs::rename_if_exists(&path, &deleted).await? {
                retired.push(deleted);
            }
        }
        Ok(retired)
    }

    pub(crate) async fn delete_segment_files(&self, base: Offset) -> Result<()> {
        self.cache.remove((self.id, base)).await;
        for suffix in [LOG_SUFFIX, INDEX_SUFFIX, TIME_INDEX_SUFFIX] {
            fs::remove_if_exists(&segment::file_path(&self.dir, base, suffix)).await?;
        }
        Ok(())
    }
}

struct LoadedSegment {
    segment: Segment,
    /// The segment was cut at a corrupt point: later segments are not part of the valid prefix.
    cut: bool,
}

pub(crate) async fn read_offset_index(
    dir: &Path,
    base: Offset,
    log_size: u64,
) -> Result<Option<OffsetIndex>> {
    let path = segment::file_path(dir, base, INDEX_SUFFIX);
    Ok(fs::read_small_file(&path)
        .await?
        .and_then(|b| OffsetIndex::decode(&b, log_size)))
}

pub(crate) async fn read_time_index(dir: &Path, base: Offset) -> Result<Option<TimeIndex>> {
    let path = segment::file_path(dir, base, TIME_INDEX_SUFFIX);
    Ok(fs::read_small_file(&path)
        .await?
        .and_then(|b| TimeIndex::decode(&b)))
}

/// Base offsets of the `.log` files in `dir`, sorted, and the offsets of the producer snapshots;
/// removes leftovers no log needs (temporary files, indexes whose log is gone).
async fn list_segments(dir: &Path) -> Result<(Vec<Offset>, Vec<Offset>)> {
    let mut logs = Vec::new();
    let mut others = Vec::new();
    let mut snapshots = Vec::new();
    for name in fs::list_dir(dir).await? {
        if name.ends_with(".tmp")
            || name.ends_with(".deleted")
            || name.ends_with(".swap")
            || name.ends_with(".cleaned")
        {
            fs::remove_if_exists(&dir.join(&name)).await?;
            continue;
        }
        match segment::parse_file_name(&name) {
            Some((base, LOG_SUFFIX)) => logs.push(base),
            Some((base, INDEX_SUFFIX | TIME_INDEX_SUFFIX)) => others.push((base, dir.join(&name))),
            Some((offset, crate::producer::SNAPSHOT_SUFFIX)) => snapshots.push(offset),
            _ => {}
        }
    }
    logs.sort_unstable();
    for (base, path) in others {
        if logs.binary_search(&base).is_err() {
            fs::remove_if_exists(&path).await?;
        }
    }
    Ok((logs, snapshots))
}
