//! Batched append (group commit). Appenders validate their batches, get offsets assigned in
//! arrival order, copy the bytes into the log's pending buffer and wait. One writer task per log
//! writes everything pending in a single `write` and then wakes them; whatever arrives while a
//! write is in flight goes into the next one. So all appends a core receives in one scheduling
//! round reach the file in one write, and no appender's response is held hostage by later load.

use super::PartitionLog;
use crate::batch::{self, BatchHeader};
use crate::error::{BatchError, Result, StorageError};
use crate::segment::Segment;
use crate::types::{LeaderEpoch, Offset};
use std::cell::RefCell;
use std::rc::Rc;

/// Where an append landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendInfo {
    pub first_offset: Offset,
    pub last_offset: Offset,
    /// Largest timestamp among the appended batches.
    pub max_timestamp: i64,
    pub log_start_offset: Offset,
    pub record_count: u64,
}

type Slot = Rc<RefCell<Option<Result<AppendInfo>>>>;

/// One batch waiting to be written: where it sits in the pending buffer and its (assigned)
/// header.
struct PendingBatch {
    start: usize,
    header: BatchHeader,
}

/// One appender's share of the pending buffer.
struct PendingAppend {
    batches: std::ops::Range<usize>,
    slot: Slot,
}

#[derive(Default)]
pub(crate) struct WriteQueue {
    /// Next offset to assign; runs ahead of the log end by what is pending or being written.
    pub next_offset: Offset,
    buf: Vec<u8>,
    batches: Vec<PendingBatch>,
    appends: Vec<PendingAppend>,
    writer_running: bool,
    /// The clock reading of the latest append, used by the writer for `segment.ms` and
    /// `flush.ms` (storage reads no clock of its own).
    now_ms: i64,
}

impl WriteQueue {
    pub fn is_idle(&self) -> bool {
        !self.writer_running && self.appends.is_empty()
    }

    /// Fails every pending append (the log was truncated or closed under them).
    pub fn fail_pending(&mut self, err: impl Fn() -> StorageError) {
        for a in self.appends.drain(..) {
            *a.slot.borrow_mut() = Some(Err(err()));
        }
        self.batches.clear();
        self.buf.clear();
    }
}

/// How the offsets of appended batches are decided.
#[derive(Clone, Copy)]
enum Origin {
    /// A producer's batches: the log assigns offsets and stamps the leader epoch.
    Leader(LeaderEpoch),
    /// A follower copying the leader: offsets and epochs are already in the batches.
    Replica,
}

impl PartitionLog {
    /// Appends a producer's record batches (one or more v2 batches, concatenated as in a produce
    /// request). Offsets are assigned here; the leader epoch is stamped into each batch.
    pub async fn append_as_leader(
        self: &Rc<Self>,
        records: &[u8],
        leader_epoch: LeaderEpoch,
        now_ms: i64,
    ) -> Result<AppendInfo> {
        self.append(records, Origin::Leader(leader_epoch), now_ms)
            .await
    }

    /// Appends batches copied from the leader, keeping their offsets and epochs. They must start
    /// at or after the log end and increase.
    pub async fn append_as_follower(
        self: &Rc<Self>,
        records: &[u8],
        now_ms: i64,
    ) -> Result<AppendInfo> {
        self.append(records, Origin::Replica, now_ms).await
    }

    async fn append(
        self: &Rc<Self>,
        records: &[u8],
        origin: Origin,
        now_ms: i64,
    ) -> Result<AppendInfo> {
        self.ensure_open()?;
        let max_bytes = self.config.borrow().max_message_bytes;
        let parsed = batch::split_and_validate(records)?;
        if let Origin::Leader(_) = origin {
            for (_, h) in &parsed {
                h.check_produced()?;
            }
        }
        if let Some((range, _)) = parsed.iter().find(|(r, _)| r.len() > max_bytes) {
            return Err(BatchError::TooLarge {
                size: range.len(),
                max: max_bytes,
            }
            .into());
        }
        if parsed.is_empty() {
            return Err(BatchError::TooShort {
                len: 0,
                min: batch::HEADER_LEN,
            }
            .into());
        }
        let slot: Slot = Rc::new(RefCell::new(None));
        {
            let mut q = self.writes.borrow_mut();
            let first_batch = q.batches.len();
            let mut next = q.next_offset;
            // Check the whole set before touching the queue, so a refused follower append
            // leaves nothing behind.
            if let Origin::Replica = origin {
                for (_, h) in &parsed {
                    if h.base_offset < next {
                        return Err(StorageError::NonMonotonicOffset {
                            base_offset: h.base_offset,
                            log_end: next,
                        });
                    }
                    next = h.last_offset() + 1;
                }
                next = q.next_offset;
            }
            for (range, h) in parsed {
                let start = q.buf.len();
                q.buf.extend_from_slice(&records[range]);
                let mut header = h;
                if let Origin::Leader(epoch) = origin {
                    batch::assign(&mut q.buf[start..], next, epoch);
                    header.base_offset = next;
                    header.partition_leader_epoch = epoch;
                }
                next = header.last_offset() + 1;
                q.batches.push(PendingBatch { start, header });
            }
            q.next_offset = next;
            q.now_ms = q.now_ms.max(now_ms);
            let batches = first_batch..q.batches.len();
            q.appends.push(PendingAppend {
                batches,
                slot: slot.clone(),
            });
            if !q.writer_running {
                q.writer_running = true;
                let log = self.clone();
                glommio::spawn_local(async move { log.run_writer().await }).detach();
            }
        }
        self.progress.wait_until(|| slot.borrow_mut().take()).await
    }

    /// Writes pending appends until none are left.
    async fn run_writer(self: Rc<Self>) {
        // Let every task already runnable in this round add its batches first.
        futures_lite::future::yield_now().await;
        loop {
            // The permit is taken per group, so background flushes and maintenance get their
            // turn between groups even under continuous load.
            let Ok(_permit) = self.structure.acquire_permit(1).await else {
                let mut q = self.writes.borrow_mut();
                q.fail_pending(|| StorageError::Closed(self.dir.clone()));
                q.writer_running = false;
                drop(q);
                self.progress.notify_all();
                return;
            };
            let (buf, batches, appends, now_ms) = {
                let mut q = self.writes.borrow_mut();
                if q.appends.is_empty() {
                    q.writer_running = false;
                    break;
                }
                (
                    std::mem::take(&mut q.buf),
                    std::mem::take(&mut q.batches),
                    std::mem::take(&mut q.appends),
                    q.now_ms,
                )
            };
            // Kafka fsyncs inside the append when `flush.messages` is reached, before the
            // producer is answered: flush.messages=1 means every acknowledged batch is on disk.
            let mut result = self.write_group(buf, &batches, now_ms).await;
            if result.is_ok() {
                result = self.maybe_flush_after_append(now_ms).await;
            }
            match result {
                Ok(()) => {
                    let log_start = {
                        let mut s = self.state.borrow_mut();
                        s.stats.appends += appends.len() as u64;
                        s.log_start_offset
                    };
                    for a in appends {
                        let hs = &batches[a.batches];
                        let info = AppendInfo {
                            first_offset: hs[0].header.base_offset,
                            last_offset: hs[hs.len() - 1].header.last_offset(),
                            max_timestamp: hs
                                .iter()
                                .map(|b| b.header.max_timestamp)
                                .max()
                                .unwrap_or(-1),
                            log_start_offset: log_start,
                            record_count: hs.iter().map(|b| b.header.record_count as u64).sum(),
                        };
                        *a.slot.borrow_mut() = Some(Ok(info));
                    }
                }
                Err(e) => {
                    tracing::error!(dir = %self.dir.display(), error = %e, "write failed; log goes offline");
                    self.state.borrow_mut().offline = true;
                    let mut first = Some(e);
                    for a in appends {
                        let err = first
                            .take()
                            .unwrap_or_else(|| StorageError::Offline(self.dir.clone()));
                        *a.slot.borrow_mut() = Some(Err(err));
                    }
                    let mut q = self.writes.borrow_mut();
                    q.fail_pending(|| StorageError::Offline(self.dir.clone()));
                    q.writer_running = false;
                    drop(q);
                    self.progress.notify_all();
                    return;
                }
            }
            self.progress.notify_all();
        }
        self.progress.notify_all();
    }

    /// Writes one group: normally a single write of the whole buffer; split only where the
    /// active segment must roll in between.
    async fn write_group(
        self: &Rc<Self>,
        mut buf: Vec<u8>,
        batches: &[PendingBatch],
        now_ms: i64,
    ) -> Result<()> {
        let config = self.config.borrow().clone();
        let mut from = 0; // index into `batches` of the first batch not yet written
        while from < batches.len() {
            // How many batches fit in the active segment (at least one if it is empty).
            let (active_base, mut size, roll_now) = {
                let s = self.state.borrow();
                let a = s.active();
                let age_roll = a
                    .first_batch_timestamp
                    .is_some_and(|t| now_ms.saturating_sub(t) >= config.segment_ms);
                (a.base_offset, a.size, !a.is_empty() && age_roll)
            };
            if roll_now || self.must_roll_before(&batches[from].header, active_base, size, &config)
            {
                self.roll(batches[from].header.base_offset).await?;
                continue;
            }
            let mut to = from;
            while to < batches.len() {
                let h = &batches[to].header;
                if to > from && self.must_roll_before(h, active_base, size, &config) {
                    break;
                }
                size += h.total_len() as u64;
                to += 1;
            }
            let start = batches[from].start;
            let end = batches.get(to).map_or(buf.len(), |b| b.start);
            let chunk = if from == 0 && to == batches.len() {
                std::mem::take(&mut buf)
            } else {
                buf[start..end].to_vec()
            };
            self.write_chunk(
                active_base,
                chunk,
                &batches[from..to],
                start,
                &config,
                now_ms,
            )
            .await?;
            from = to;
        }
        Ok(())
    }

    fn must_roll_before(
        &self,
        h: &BatchHeader,
        active_base: Offset,
        size: u64,
        config: &crate::config::LogConfig,
    ) -> bool {
        size > 0
            && (size + h.total_len() as u64 > config.segment_bytes
                || h.last_offset() - active_base > u32::MAX as i64)
    }

    async fn write_chunk(
        self: &Rc<Self>,
        base: Offset,
        chunk: Vec<u8>,
        batches: &[PendingBatch],
        buf_start: usize,
        config: &crate::config::LogConfig,
        now_ms: i64,
    ) -> Result<()> {
        let position = self.state.borrow().active().size;
        let file = self.segment_file(base, true).await?;
        let len = chunk.len() as u64;
        self.reserve_ahead(base, &file, position + len, config);
        crate::fs::pwrite_all(&file.file, &file.path, &chunk, position)?;
        let mut s = self.state.borrow_mut();
        let seg: &mut Segment = s.active_mut();
        let indexer = seg.indexer.as_mut().expect("active segment has indexes");
        let mut records = 0u64;
        for b in batches {
            let pos = position + (b.start - buf_start) as u64;
            indexer.on_batch(base, &b.header, pos, config.index_interval_bytes);
            seg.first_batch_timestamp
                .get_or_insert(b.header.max_timestamp);
            records += b.header.record_count as u64;
        }
        seg.size = position + len;
        let last = batches
            .last()
            .expect("non-empty chunk")
            .header
            .last_offset();
        seg.next_offset = last + 1;
        seg.max_timestamp = indexer.max_timestamp;
        seg.offset_of_max_timestamp = indexer.offset_of_max_timestamp;
        s.log_end_offset = last + 1;
        for b in batches {
            let epoch = b.header.partition_leader_epoch;
            if s.epochs.assign(epoch, b.header.base_offset) {
                s.epochs_dirty = true;
            }
        }
        s.unflushed_messages += records;
        s.stats.writes += 1;
        s.first_unflushed_ms.get_or_insert(now_ms);
        Ok(())
    }
}
