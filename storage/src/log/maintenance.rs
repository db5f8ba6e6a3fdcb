//! Structural changes to a log: roll, flush, truncation, retention, close and delete. Each runs
//! under the log's `structure` permit (the writer already holds it when it rolls or flushes).

use super::PartitionLog;
use crate::error::{gio, Result, StorageError};
use crate::fs;
use crate::segment::{self, Segment, INDEX_SUFFIX, LOG_SUFFIX, TIME_INDEX_SUFFIX};
use crate::types::Offset;
use std::rc::Rc;

/// What a retention pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetentionOutcome {
    pub deleted_segments: usize,
    pub deleted_bytes: u64,
    pub log_start_offset: Offset,
}

impl PartitionLog {
    /// Closes the active segment and starts a new one at `new_base`. The closed segment's data
    /// and indexes are fsynced in the background, as Kafka does, so a roll never stalls the
    /// produce path behind a large fsync; the recovery point moves to the new segment only once
    /// that fsync is done. Caller holds the structure permit.
    pub(crate) async fn roll(self: &Rc<Self>, new_base: Offset) -> Result<()> {
        let (old_base, write, reserved_past) = {
            let mut s = self.state.borrow_mut();
            let active = s.active_mut();
            assert!(new_base >= active.next_offset, "roll must not go backwards");
            let base = active.base_offset;
            // Whenever blocks were reserved: past the end, or (a write that outran the reservation)
            // ext4's own preallocation for the delayed-allocated rest.
            let reserved_past = (active.preallocated > 0).then_some(active.size);
            let indexer = active.indexer.as_mut().expect("active segment has indexes");
            indexer.add_time_entry(base);
            (base, indexer.unpersisted(), reserved_past)
        };
        write.run(&self.dir, old_base, false).await?;
        if let Some(size) = reserved_past {
            // Give back the blocks reserved past the closed segment's end (cutting a file to its
            // own size frees them); the file's bytes do not change. Under the structure permit,
            // so no truncation or swap can change the file while the blocking thread cuts it;
            // only this log's appends wait, not the core.
            let file = self.segment_file(old_base, false).await?;
            fs::truncate_off_reactor(&file.file, &file.path, size).await?;
        }
        self.segment_file(new_base, true).await?;
        for suffix in [INDEX_SUFFIX, TIME_INDEX_SUFFIX] {
            let path = segment::file_path(&self.dir, new_base, suffix);
            fs::open_rw(&path, true)
                .await?
                .close()
                .await
                .map_err(|e| gio(&path, e))?;
        }
        let truncations = {
            let mut s = self.state.borrow_mut();
            let old = s.segments.get_mut(&old_base).expect("old active present");
            // Inactive segments load indexes on demand through the file cache.
            old.indexer = None;
            s.segments.insert(new_base, Segment::new_active(new_base));
            s.stats.rolls += 1;
            s.background_flushes += 1;
            s.truncations
        };
        // Kafka snapshots producer state at each roll, so a crash replays at most about one
        // segment of batch headers. Taken now, written after the rolled segment's fsync.
        let (snapshot_offset, snapshot) = self.producer_snapshot_at_roll(new_base);
        let log = self.clone();
        glommio::spawn_local(async move {
            if let Err(e) = log.flush_rolled(old_base, new_base, truncations).await {
                tracing::error!(partition = %log.tp, error = %e, "flushing a rolled segment failed; log goes offline");
                log.state.borrow_mut().offline = true;
            }
            log.write_roll_snapshot(snapshot_offset, snapshot, truncations)
                .await;
            log.state.borrow_mut().background_flushes -= 1;
            log.progress.notify_all();
        })
        .detach();
        Ok(())
    }

    /// fsyncs a rolled segment, its indexes and the directory, then moves the recovery point to
    /// the segment after it.
    async fn flush_rolled(
        &self,
        old_base: Offset,
        new_base: Offset,
        truncations: u64,
    ) -> Result<()> {
        let _slot = self.cache.background_fsync_slot().await;
        // The segment may be gone already (retention, truncation): nothing left to make durable.
        if !self.state.borrow().segments.contains_key(&old_base) {
            return Ok(());
        }
        // It may also go while this runs without the permit, its files removed under the
        // fsyncs: an error then is no reason to take the log offline. And after a truncation
        // the fsync vouches for nothing: the segment may have been cut and written again since.
        let stale = || {
            let s = self.state.borrow();
            s.truncations != truncations || !s.segments.contains_key(&old_base)
        };
        // Sync every segment from the recovery point up to this one, not just this one: two
        // background fsyncs may finish out of order, and the recovery point may only pass
        // segments that are all on disk.
        let pending: Vec<Offset> = {
            let s = self.state.borrow();
            if s.recovery_segment > old_base {
                // A later flush passed it while this waited for its slot: it synced every
                // segment from the recovery point up, this one included.
                return Ok(());
            }
            s.segments
                .range(s.recovery_segment..=old_base)
                .map(|(b, _)| *b)
                .collect()
        };
        for b in pending {
            match self.sync_rolled_files(b).await {
                Err(_) if stale() => return Ok(()),
                // Retention may delete an older segment while this runs without the permit:
                // gone, it needs no fsync.
                Err(_) if !self.state.borrow().segments.contains_key(&b) => continue,
                result => result?,
            }
        }
        // No structure permit: the state changes below happen without an await after the
        // staleness check, and the checkpoint write has its own gate, so appends never wait
        // behind this fsync.
        if stale() {
            return Ok(());
        }
        {
            let mut s = self.state.borrow_mut();
            if s.recovery_point >= new_base || !s.segments.contains_key(&new_base) {
                return Ok(());
            }
            s.recovery_point = new_base;
            s.recovery_segment = new_base;
            s.recovery_position = 0;
        }
        self.write_checkpoint().await
    }

    async fn sync_rolled_files(&self, base: Offset) -> Result<()> {
        let file = self.segment_file(base, false).await?;
        // The index files are opened without create: the roll wrote them, and a deleted segment
        // must not leave index files behind.
        let result = fs::sync_off_reactor(
            &file.file,
            segment::file_path(&self.dir, base, LOG_SUFFIX),
            [INDEX_SUFFIX, TIME_INDEX_SUFFIX]
                .map(|suffix| segment::file_path(&self.dir, base, suffix))
                .to_vec(),
            self.dir.clone(),
        )
        .await;
        // The segment's descriptor stayed open (held here) until the fsync returned.
        drop(file);
        result
    }

    /// fsyncs the active segment and its indexes and moves the recovery point to what was
    /// written. Caller holds the structure permit.
    pub(crate) async fn flush_active(&self) -> Result<()> {
        let (base, size, end, write) = {
            let s = self.state.borrow();
            let a = s.active();
            let w = a
                .indexer
                .as_ref()
                .expect("active segment has indexes")
                .unpersisted();
            (a.base_offset, a.size, s.log_end_offset, w)
        };
        write.run(&self.dir, base, true).await?;
        // Everything from the recovery point up must be on disk before the recovery point moves
        // past it: rolled segments whose background fsync has not finished are synced here too
        // (as Kafka's flush syncs every segment above its recovery point).
        let rolled: Vec<Offset> = {
            let s = self.state.borrow();
            s.segments
                .range(s.recovery_segment..base)
                .map(|(b, _)| *b)
                .collect()
        };
        for b in rolled {
            self.sync_rolled_files(b).await?;
        }
        let file = self.segment_file(base, false).await?;
        file.file
            .fdatasync()
            .await
            .map_err(|e| gio(&segment::file_path(&self.dir, base, LOG_SUFFIX), e))?;
        {
            let mut s = self.state.borrow_mut();
            if let Some(idx) = s.segments.get_mut(&base).and_then(|a| a.indexer.as_mut()) {
                idx.mark_persisted(&write);
            }
            if end >= s.recovery_point && s.segments.contains_key(&base) {
                s.recovery_point = end;
                s.recovery_segment = base;
                s.recovery_position = size;
            }
            s.unflushed_messages = 0;
            s.first_unflushed_ms = None;
            s.stats.flushes += 1;
        }
        self.write_checkpoint().await
    }

    fn flush_due(&self, now_ms: i64) -> bool {
        let s = self.state.borrow();
        let c = self.config.borrow();
        s.unflushed_messages > 0
            && (s.unflushed_messages >= c.flush_messages
                || s.first_unflushed_ms
                    .is_some_and(|t| now_ms.saturating_sub(t) >= c.flush_ms))
    }

    pub(crate) async fn maybe_flush_after_append(&self, now_ms: i64) -> Result<()> {
        if self.flush_due(now_ms) {
            self.flush_active().await?;
        }
        Ok(())
    }

    /// Flushes if `flush.messages` or `flush.ms` says so. The owning core calls this from its
    /// background tick.
    pub async fn flush_if_due(&self, now_ms: i64) -> Result<bool> {
        if !self.flush_due(now_ms) {
            return Ok(false);
        }
        self.flush().await?;
        Ok(true)
    }

    /// fsyncs everything written so far.
    pub async fn flush(&self) -> Result<()> {
        self.ensure_open()?;
        let _permit = self.permit().await?;
        self.flush_active().await
    }

    pub(crate) async fn permit(&self) -> Result<glommio::sync::Permit<'_>> {
        self.structure
            .acquire_permit(1)
            .await
            .map_err(|_| StorageError::Closed(self.dir.clone()))
    }

    /// Removes every offset at or after `offset` (a follower diverged from its leader). As Kafka
    /// does, the batch containing `offset` goes entirely. Appends waiting to be written fail.
    /// Idempotent producers' state is rebuilt from what is left (see `producers`).
    pub async fn truncate_to(&self, offset: Offset) -> Result<()> {
        self.ensure_open()?;
        let _permit = self.permit().await?;
        self.fail_queued_appends();
        let (log_start, log_end) = {
            let s = self.state.borrow();
            (s.log_start_offset, s.log_end_offset)
        };
        if offset >= log_end {
            self.writes.borrow_mut().next_offset = log_end;
            // Nothing to cut, but an epoch that starts at the log end goes, as in Kafka's
            // truncateTo: a leadership that appended nothing before the next leader was elected
            // left it, and a follower whose last fetched epoch the leader never had would be
            // told to diverge there on every fetch, and never join the ISR.
            let dropped = {
                let mut s = self.state.borrow_mut();
                let dropped = s.epochs.truncate_from_end(log_end);
                s.epochs_dirty |= dropped;
                dropped
            };
            if dropped {
                self.write_checkpoint().await?;
            }
            return Ok(());
        }
        if offset < log_start {
            return self.reset_locked(offset).await;
        }
        self.state.borrow_mut().truncations += 1;
        let doomed: Vec<Offset> = self
            .state
            .borrow()
            .segments
            .range(offset + 1..)
            .map(|(b, _)| *b)
            .collect();
        for base in doomed.iter().rev() {
            // Out of the state first: a background fsync that finds the files gone must see
            // the segment gone too, or it would take the log offline.
            self.state.borrow_mut().segments.remove(base);
            self.delete_segment_files(*base).await?;
        }
        // The segment holding `offset` becomes the active one, cut at the batch containing it.
        let (base, size) = {
            let s = self.state.borrow();
            let a = s.active();
            (a.base_offset, a.size)
        };
        let file = self.segment_file(base, false).await?;
        let path = segment::file_path(&self.dir, base, LOG_SUFFIX);
        let start = self.index_floor(base, offset).await?;
        let (cut_at, new_end) =
            match segment::find_batch(&file.file, &path, start, size, offset).await? {
                Some((pos, h)) => (pos, h.base_offset.min(offset)),
                None => (size, offset),
            };
        file.file
            .truncate(cut_at)
            .await
            .map_err(|e| gio(&path, e))?;
        file.file.fdatasync().await.map_err(|e| gio(&path, e))?;
        let (mut indexer, scan) = self.index_by_scan(base, cut_at, false).await?;
        indexer.rewrite(&self.dir, base).await?;
        {
            let mut s = self.state.borrow_mut();
            let seg = s.active_mut();
            seg.size = cut_at;
            seg.next_offset = if scan.batches == 0 {
                base
            } else {
                scan.next_offset
            };
            seg.max_timestamp = indexer.max_timestamp;
            seg.offset_of_max_timestamp = indexer.offset_of_max_timestamp;
            seg.first_batch_timestamp = scan.first_batch_timestamp;
            seg.indexer = Some(indexer);
            let end = seg.next_offset.max(base);
            debug_assert!(end <= new_end.max(base));
            s.log_end_offset = end;
            s.high_watermark = s.high_watermark.min(end);
            s.first_dirty = s.first_dirty.min(end);
            // The fsync above covers this segment only: while an older one's background fsync
            // is pending, the recovery point stays in it.
            if s.recovery_point >= base {
                s.recovery_point = end;
                s.recovery_segment = base;
                s.recovery_position = cut_at;
            }
            if s.epochs.truncate_from_end(end) {
                s.epochs_dirty = true;
            }
        }
        // Indexes cached while the segment was inactive (the lookup above loads one) describe
        // the bytes just cut; once it rolls again, reads would locate batches by stale positions.
        file.forget_indexes();
        self.writes.borrow_mut().next_offset = self.log_end_offset();
        self.reload_producers().await?;
        self.write_checkpoint().await?;
        self.progress.notify_all();
        Ok(())
    }

    /// Deletes everything and starts an empty log at `offset` (Kafka's
    /// `truncateFullyAndStartAt`, used when a follower is behind the leader's log start).
    pub async fn truncate_fully_and_start_at(&self, offset: Offset) -> Result<()> {
        self.ensure_open()?;
        let _permit = self.permit().await?;
        self.fail_queued_appends();
        self.reset_locked(offset).await
    }

    /// Fails every append not yet written, and with them their producers' batches in flight.
    fn fail_queued_appends(&self) {
        self.writes
            .borrow_mut()
            .fail_pending(|| StorageError::Closed(self.dir.clone()));
        self.fail_in_flight_producers();
    }

    async fn reset_locked(&self, offset: Offset) -> Result<()> {
        self.state.borrow_mut().truncations += 1;
        let bases = self.segment_bases();
        self.segment_file(offset, true).await?;
        {
            let mut s = self.state.borrow_mut();
            s.segments.clear();
            s.segments.insert(offset, Segment::new_active(offset));
            s.log_start_offset = offset;
            s.first_dirty = offset;
            s.log_end_offset = offset;
            s.high_watermark = offset;
            s.recovery_point = offset;
            s.recovery_segment = offset;
            s.recovery_position = 0;
            s.epochs = Default::default();
            s.epochs_dirty = true;
        }
        for base in bases.into_iter().filter(|b| *b != offset) {
            self.delete_segment_files(base).await?;
        }
        // A segment at `offset` that existed before is emptied rather than deleted.
        let file = self.segment_file(offset, true).await?;
        let path = segment::file_path(&self.dir, offset, LOG_SUFFIX);
        file.file.truncate(0).await.map_err(|e| gio(&path, e))?;
        file.forget_indexes();
        let mut fresh = segment::Indexer::new();
        fresh.rewrite(&self.dir, offset).await?;
        fs::sync_dir(&self.dir).await?;
        self.writes.borrow_mut().next_offset = offset;
        self.reset_producers(offset).await;
        self.write_checkpoint().await?;
        self.progress.notify_all();
        Ok(())
    }

    /// Deletes whole segments that `retention.ms` or `retention.bytes` no longer keep, oldest
    /// first, never past the high watermark (data not yet replicated is never deleted), and
    /// advances the log start offset. When every segment has expired by time, the active one is
    /// rolled first so it can go too, as Kafka does.
    pub async fn enforce_retention(self: &Rc<Self>, now_ms: i64) -> Result<RetentionOutcome> {
        self.ensure_open()?;
        let permit = self.permit().await?;
        let config = self.config.borrow().clone();
        // Retention applies to `cleanup.policy` delete (alone or with compact); a compact-only
        // log keeps every segment, the cleaner alone shrinks it.
        let deleting = config.cleanup_delete;
        let expired = |seg: &Segment| {
            // A closed segment the cleaner emptied holds nothing to keep (and has no timestamp
            // to age by); the active segment is never deleted here.
            let emptied =
                seg.is_empty() && seg.base_offset != self.state.borrow().active().base_offset;
            let aged = config.retention_ms >= 0
                && seg.max_timestamp >= 0
                && now_ms - seg.max_timestamp > config.retention_ms;
            deleting && (emptied || aged)
        };
        let roll_active = {
            let s = self.state.borrow();
            let a = s.active();
            !a.is_empty()
                && expired(a)
                && s.segments.values().all(expired)
                && s.high_watermark >= s.log_end_offset
        };
        if roll_active {
            let end = self.log_end_offset();
            self.roll(end).await?;
        }
        let doomed: Vec<(Offset, u64)> = {
            let s = self.state.borrow();
            let mut total = s.size_bytes() as i64;
            let active_base = s.active().base_offset;
            let mut out = Vec::new();
            for seg in s.segments.values() {
                if seg.base_offset == active_base || seg.next_offset > s.high_watermark {
                    break;
                }
                let by_size = deleting
                    && config.retention_bytes >= 0
                    && total - seg.size as i64 >= config.retention_bytes;
                if !(expired(seg) || by_size) {
                    break;
                }
                total -= seg.size as i64;
                out.push((seg.base_offset, seg.size));
            }
            out
        };
        let mut outcome = RetentionOutcome::default();
        let mut trash = Vec::new();
        for (base, size) in doomed {
            // Out of the state before the files go (see truncate_to). Under the permit the files
            // are only renamed; unlinking a large segment frees its extents, which took tens of
            // milliseconds per 64 MiB file and stalled appends that waited for the permit.
            self.state.borrow_mut().segments.remove(&base);
            trash.extend(self.retire_segment_files(base).await?);
            let mut s = self.state.borrow_mut();
            let first = *s.segments.keys().next().expect("active segment remains");
            s.log_start_offset = s.log_start_offset.max(first);
            let start = s.log_start_offset;
            if s.epochs.truncate_from_start(start) {
                s.epochs_dirty = true;
            }
            outcome.deleted_segments += 1;
            outcome.deleted_bytes += size;
        }
        drop(permit);
        self.delete_retired(trash, config.file_delete_delay_ms)
            .await;
        outcome.log_start_offset = self.log_start_offset();
        if outcome.deleted_segments > 0 {
            self.on_log_start_moved().await;
            tracing::info!(partition = %self.tp, deleted = outcome.deleted_segments, log_start = outcome.log_start_offset, "retention deleted segments");
            self.write_checkpoint().await?;
        }
        Ok(outcome)
    }

    /// Moves the log start offset forward (Kafka's DeleteRecords), up to the high watermark, and
    /// deletes segments wholly below it.
    pub async fn advance_log_start(&self, offset: Offset) -> Result<Offset> {
        self.ensure_open()?;
        let _permit = self.permit().await?;
        let (hw, start) = {
            let s = self.state.borrow();
            (s.high_watermark, s.log_start_offset)
        };
        if offset > hw {
            return Err(StorageError::OffsetOutOfRange {
                offset,
                log_start: start,
                log_end: hw,
            });
        }
        if offset <= start {
            return Ok(start);
        }
        let doomed: Vec<Offset> = {
            let s = self.state.borrow();
            let active = s.active().base_offset;
            s.segments
                .values()
                .filter(|g| g.base_offset != active && g.next_offset <= offset)
                .map(|g| g.base_offset)
                .collect()
        };
        for base in doomed {
            self.state.borrow_mut().segments.remove(&base);
            self.delete_segment_files(base).await?;
        }
        {
            let mut s = self.state.borrow_mut();
            s.log_start_offset = offset;
            if s.epochs.truncate_from_start(offset) {
                s.epochs_dirty = true;
            }
        }
        self.on_log_start_moved().await;
        self.write_checkpoint().await?;
        Ok(offset)
    }

    /// Flushes and closes the log. Appends still pending are written first; later calls fail
    /// with `Closed`.
    pub async fn close(&self) -> Result<()> {
        if self.state.borrow().closed {
            return Ok(());
        }
        // A rolled segment's background fsync must finish first: after close the caller may
        // write the clean-shutdown marker, vouching for it; and it needs the permit to finish.
        let permit = loop {
            self.progress
                .wait_until(|| {
                    (self.writes.borrow().is_idle() && self.state.borrow().background_flushes == 0)
                        .then_some(())
                })
                .await;
            let permit = self.permit().await?;
            if self.writes.borrow().is_idle() && self.state.borrow().background_flushes == 0 {
                break permit;
            }
        };
        let result = if self.state.borrow().offline {
            Ok(())
        } else {
            let flushed = self.flush_active().await;
            if flushed.is_ok() {
                self.snapshot_producers_at_close().await;
            }
            flushed
        };
        self.state.borrow_mut().closed = true;
        drop(permit);
        self.structure.close();
        self.cache.remove_log(self.id).await;
        self.progress.notify_all();
        result
    }

    /// Closes the log and removes its directory (topic deletion).
    pub async fn delete(self: Rc<Self>) -> Result<()> {
        if let Err(e) = self.close().await {
            tracing::warn!(partition = %self.tp, error = %e, "flush before delete failed; deleting anyway");
        }
        let dir = self.dir.clone();
        fs::off_reactor(move || std::fs::remove_dir_all(&dir).map_err(|e| (dir, e))).await
    }

    /// Where a scan for `offset` in segment `base` may start: the index entry at or below it.
    pub(crate) async fn index_floor(&self, base: Offset, offset: Offset) -> Result<u64> {
        let rel = (offset - base).clamp(0, u32::MAX as i64) as u32;
        if let Some(idx) = self
            .state
            .borrow()
            .segments
            .get(&base)
            .and_then(|s| s.indexer.as_ref())
        {
            return Ok(idx
                .offsets
                .floor_by_offset(rel)
                .map_or(0, |e| e.position as u64));
        }
        let index = self.inactive_offset_index(base).await?;
        Ok(index.floor_by_offset(rel).map_or(0, |e| e.position as u64))
    }
}
