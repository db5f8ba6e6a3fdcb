//! Batched append (group commit). Appenders validate their batches, get offsets assigned in
//! arrival order, queue them and wait. One writer task per log writes everything pending in a
//! single `pwritev` and then wakes them; whatever arrives while a write is in flight goes into
//! the next one. So all appends a core receives in one scheduling round reach the file in one
//! write, and no appender's response is held hostage by later load.
//!
//! Batches are not copied: each is queued as a slice of the request's own bytes plus a patched
//! copy of its first 16 bytes (base offset, length, leader epoch — outside the CRC), and the
//! write gathers them. Copying every request into a pending buffer cost 7% of a produce-saturated
//! core. A batch the leader had to rewrite (recompressed, stamped with LogAppendTime: see
//! [`crate::validate`]) is queued the same way, as its own new bytes.

use super::PartitionLog;
use crate::batch::{self, BatchHeader};
use crate::error::{BatchError, Result, StorageError};
use crate::index::{OFFSET_ENTRY_LEN, TIME_ENTRY_LEN};
use crate::segment::Segment;
use crate::types::{LeaderEpoch, Offset};
use crate::validate::{self, Validated};
use bytes::Bytes;
use std::cell::RefCell;
use std::io::IoSlice;
use std::rc::Rc;

/// The bytes of a batch header an append may rewrite: base offset, batch length, leader epoch.
const PATCHED_HEAD: usize = 16;

/// Where an append landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendInfo {
    pub first_offset: Offset,
    pub last_offset: Offset,
    /// Largest timestamp among the appended batches.
    pub max_timestamp: i64,
    pub log_start_offset: Offset,
    pub record_count: u64,
    /// The append time stamped into the batches of a LogAppendTime log (what the produce
    /// response reports); -1 for CreateTime.
    pub log_append_time_ms: i64,
}

type Slot = Rc<RefCell<Option<Result<AppendInfo>>>>;

/// One batch waiting to be written: its first bytes as they go to disk (offset and epoch
/// assigned), the whole batch as received, and its (assigned) header.
struct PendingBatch {
    head: [u8; PATCHED_HEAD],
    bytes: Bytes,
    header: BatchHeader,
}

impl PendingBatch {
    /// The batch as it goes to disk, as two slices.
    fn io_slices(&self) -> [IoSlice<'_>; 2] {
        [
            IoSlice::new(&self.head),
            IoSlice::new(&self.bytes[PATCHED_HEAD..]),
        ]
    }
}

/// One appender's share of the pending batches.
struct PendingAppend {
    batches: std::ops::Range<usize>,
    slot: Slot,
    /// What [`AppendInfo::log_append_time_ms`] reports.
    log_append_time_ms: i64,
}

#[derive(Default)]
pub(crate) struct WriteQueue {
    /// Next offset to assign; runs ahead of the log end by what is pending or being written.
    pub next_offset: Offset,
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
    }
}

/// Whether the active segment's offset index (8-byte entries) or time index (12-byte entries)
/// holds as many entries as `segment.index.bytes` allows: Kafka rolls before appending to it.
/// Checked per write group, so one group may add its few entries past the bound.
fn index_full(active: &Segment, config: &crate::config::LogConfig) -> bool {
    active.indexer.as_ref().is_some_and(|i| {
        i.offsets.len() as u64 >= config.segment_index_bytes / OFFSET_ENTRY_LEN as u64
            || i.times.len() as u64 >= config.segment_index_bytes / TIME_ENTRY_LEN as u64
    })
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
    /// request), as the leader. Offsets are assigned here; the leader epoch is stamped into each
    /// batch. Idempotent producers' batches are checked as they are queued (see
    /// [`crate::producer`]): a retry of a written batch is answered with its original offsets and
    /// appends nothing; a sequence or epoch the state refuses is [`StorageError::Producer`].
    pub async fn append_as_leader(
        self: &Rc<Self>,
        records: &[u8],
        leader_epoch: LeaderEpoch,
        now_ms: i64,
    ) -> Result<AppendInfo> {
        self.append_bytes_as_leader(Bytes::copy_from_slice(records), leader_epoch, now_ms)
            .await
    }

    /// [`Self::append_as_leader`] without a copy: the log keeps slices of `records` until they
    /// are written.
    pub async fn append_bytes_as_leader(
        self: &Rc<Self>,
        records: Bytes,
        leader_epoch: LeaderEpoch,
        now_ms: i64,
    ) -> Result<AppendInfo> {
        let validated = self.validate_produced(&records, now_ms)?;
        self.append_validated(validated, leader_epoch, now_ms).await
    }

    /// What the leader checks and rewrites in a producer's batches under this log's current
    /// config (Kafka's LogValidator; see [`crate::validate`]), before the idempotence check, in
    /// Kafka's order: a retried batch with bad records is refused, not acknowledged. Separate
    /// from the append so a caller can look at the batches as they will be stored in between.
    pub fn validate_produced(&self, records: &Bytes, now_ms: i64) -> Result<Validated> {
        self.ensure_open()?;
        validate::validate_produced(records, &self.config.borrow(), &self.tp, now_ms)
    }

    /// Appends batches [`Self::validate_produced`] returned, as the leader (idempotence checked
    /// as in [`Self::append_as_leader`]).
    pub async fn append_validated(
        self: &Rc<Self>,
        validated: Validated,
        leader_epoch: LeaderEpoch,
        now_ms: i64,
    ) -> Result<AppendInfo> {
        let batches = validated
            .batches
            .into_iter()
            .map(|b| (b.bytes, b.header))
            .collect();
        let log_append_time_ms = validated.log_append_time_ms;
        self.enqueue(
            batches,
            Origin::Leader(leader_epoch),
            now_ms,
            log_append_time_ms,
        )
        .await
    }

    /// Appends batches copied from the leader, keeping their offsets and epochs. They must start
    /// at or after the log end and increase. Idempotent producers' state follows them, unchecked
    /// (the leader checked), so this replica answers a retry as the leader would once it leads.
    pub async fn append_as_follower(
        self: &Rc<Self>,
        records: &[u8],
        now_ms: i64,
    ) -> Result<AppendInfo> {
        self.append_bytes_as_follower(Bytes::copy_from_slice(records), now_ms)
            .await
    }

    /// [`Self::append_as_follower`] without a copy: the log keeps slices of `records` (a fetch
    /// response's bytes) until they are written.
    pub async fn append_bytes_as_follower(
        self: &Rc<Self>,
        records: Bytes,
        now_ms: i64,
    ) -> Result<AppendInfo> {
        self.ensure_open()?;
        let max_bytes = self.config.borrow().max_message_bytes;
        let batches = follower_batches(&records, max_bytes)?;
        self.enqueue(batches, Origin::Replica, now_ms, -1).await
    }

    /// Queues validated batches for the writer and waits for their write.
    async fn enqueue(
        self: &Rc<Self>,
        batches: Vec<(Bytes, BatchHeader)>,
        origin: Origin,
        now_ms: i64,
        log_append_time_ms: i64,
    ) -> Result<AppendInfo> {
        self.ensure_open()?;
        let slot: Slot = Rc::new(RefCell::new(None));
        {
            let mut q = self.writes.borrow_mut();
            let first_batch = q.batches.len();
            let mut next = q.next_offset;
            // Check the whole set before touching the queue, so a refused follower append
            // leaves nothing behind.
            if let Origin::Replica = origin {
                follower_next_offset(batches.iter().map(|(_, h)| h), next)?;
                self.track_replicated(batches.iter().map(|(_, h)| h));
            }
            for (bytes, h) in batches {
                // A validated batch is at least a whole header, longer than the patched part.
                let mut head = [0u8; PATCHED_HEAD];
                head.copy_from_slice(&bytes[..PATCHED_HEAD]);
                let mut header = h;
                if let Origin::Leader(epoch) = origin {
                    batch::assign(&mut head, next, epoch);
                    header.base_offset = next;
                    header.partition_leader_epoch = epoch;
                }
                next = header.last_offset() + 1;
                q.batches.push(PendingBatch {
                    head,
                    bytes,
                    header,
                });
            }
            if let Origin::Leader(_) = origin {
                // Idempotence, in the step that assigned the offsets: check order is offset
                // order, whatever other appends of this core do meanwhile.
                let checked =
                    self.check_produced(q.batches[first_batch..].iter().map(|b| &b.header));
                match checked {
                    Ok(None) => {}
                    Ok(Some(duplicate)) => {
                        q.batches.truncate(first_batch);
                        return Ok(duplicate);
                    }
                    Err(e) => {
                        q.batches.truncate(first_batch);
                        return Err(e);
                    }
                }
            }
            q.next_offset = next;
            q.now_ms = q.now_ms.max(now_ms);
            let batches = first_batch..q.batches.len();
            q.appends.push(PendingAppend {
                batches,
                slot: slot.clone(),
                log_append_time_ms,
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
                self.fail_in_flight_producers();
                self.progress.notify_all();
                return;
            };
            let (batches, appends, now_ms) = {
                let mut q = self.writes.borrow_mut();
                if q.appends.is_empty() {
                    q.writer_running = false;
                    break;
                }
                (
                    std::mem::take(&mut q.batches),
                    std::mem::take(&mut q.appends),
                    q.now_ms,
                )
            };
            // Kafka fsyncs inside the append when `flush.messages` is reached, before the
            // producer is answered: flush.messages=1 means every acknowledged batch is on disk.
            let mut result = self.write_group(&batches, now_ms).await;
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
                            log_append_time_ms: a.log_append_time_ms,
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
                    self.fail_in_flight_producers();
                    self.progress.notify_all();
                    return;
                }
            }
            self.progress.notify_all();
        }
        self.progress.notify_all();
    }

    /// Writes one group: normally a single write of all its batches; split only where the
    /// active segment must roll in between.
    async fn write_group(self: &Rc<Self>, batches: &[PendingBatch], now_ms: i64) -> Result<()> {
        let config = self.config.borrow().clone();
        let mut from = 0; // index into `batches` of the first batch not yet written
        while from < batches.len() {
            // How many batches fit in the active segment (at least one if it is empty).
            let (active_base, mut size, roll_now) = {
                let s = self.state.borrow();
                let a = s.active();
                let roll_after_ms = config.segment_ms - self.roll_jitter_ms(a.base_offset, &config);
                // Kafka's LogSegment.shouldRoll: the age is the incoming batch's max timestamp
                // less the segment's first one, not the wall clock's: a producer replaying
                // old records (a backfill, a mirror) would otherwise roll at every batch.
                let batch_ts = batches[from].header.max_timestamp;
                let age_roll = a
                    .first_batch_timestamp
                    .is_some_and(|t| batch_ts.saturating_sub(t) > roll_after_ms);
                (
                    a.base_offset,
                    a.size,
                    !a.is_empty() && (age_roll || index_full(a, &config)),
                )
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
            self.write_chunk(active_base, &batches[from..to], &config, now_ms)
                .await?;
            from = to;
        }
        Ok(())
    }

    /// How much earlier than `segment.ms` the segment at `base` rolls: Kafka draws this at random
    /// in [0, min(`segment.jitter.ms`, `segment.ms`)) when it creates a segment; here it is drawn
    /// from the partition and the base offset, so it needs no state and survives a restart.
    pub(crate) fn roll_jitter_ms(&self, base: Offset, config: &crate::config::LogConfig) -> i64 {
        let bound = config.segment_jitter_ms.min(config.segment_ms);
        if bound <= 0 {
            return 0;
        }
        // FNV-1a of the partition, then splitmix64 with the base offset: nearby offsets and
        // partitions of one topic spread evenly.
        let mut seed: u64 = 0xcbf2_9ce4_8422_2325;
        let tp = &self.tp;
        for b in tp.topic.bytes().chain(tp.partition.to_be_bytes()) {
            seed = (seed ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        let mut z = (seed ^ base as u64).wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        (z % bound as u64) as i64
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
        batches: &[PendingBatch],
        config: &crate::config::LogConfig,
        now_ms: i64,
    ) -> Result<()> {
        let position = self.state.borrow().active().size;
        let file = self.segment_file(base, true).await?;
        let len: u64 = batches.iter().map(|b| b.bytes.len() as u64).sum();
        self.reserve_ahead(base, &file, position + len, config);
        let mut slices: Vec<IoSlice<'_>> = batches.iter().flat_map(|b| b.io_slices()).collect();
        crate::fs::pwritev_all(&file.file, &file.path, &mut slices, position)?;
        let mut s = self.state.borrow_mut();
        let seg: &mut Segment = s.active_mut();
        let indexer = seg.indexer.as_mut().expect("active segment has indexes");
        let mut records = 0u64;
        let mut pos = position;
        for b in batches {
            indexer.on_batch(base, &b.header, pos, config.index_interval_bytes);
            pos += b.bytes.len() as u64;
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
        drop(s);
        // In the same step as the log end moved: a roll snapshot between two chunks, or a
        // check, sees the state of exactly what is written.
        self.record_written(batches.iter().map(|b| &b.header));
        Ok(())
    }
}

/// A fetch response's records as a follower appends them: split into batches (slices of
/// `records`, not copies), each framed and CRC-checked, none larger than `max_message_bytes`,
/// at least one. Pure, so the fuzz target of follower fetches runs exactly this.
pub fn follower_batches(
    records: &Bytes,
    max_message_bytes: usize,
) -> Result<Vec<(Bytes, BatchHeader)>> {
    let parsed = batch::split_and_validate(records)?;
    if let Some((range, _)) = parsed.iter().find(|(r, _)| r.len() > max_message_bytes) {
        return Err(BatchError::TooLarge {
            size: range.len(),
            max: max_message_bytes,
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
    Ok(parsed
        .into_iter()
        .map(|(range, h)| (records.slice(range), h))
        .collect())
}

/// Where a log ending at `log_end` ends after a follower appends batches with `headers`: they
/// keep the leader's offsets, so they must start at or after the end and increase (Kafka's
/// follower append refuses the rest the same way). The base offset is outside the CRC, so a
/// batch whose offsets would pass i64::MAX is refused rather than wrapped.
pub fn follower_next_offset<'a>(
    headers: impl IntoIterator<Item = &'a BatchHeader>,
    log_end: Offset,
) -> Result<Offset> {
    let mut next = log_end;
    for h in headers {
        if h.base_offset < next {
            return Err(StorageError::NonMonotonicOffset {
                base_offset: h.base_offset,
                log_end: next,
            });
        }
        next = h
            .base_offset
            .checked_add(i64::from(h.last_offset_delta) + 1)
            .ok_or(BatchError::OffsetOverflow {
                base_offset: h.base_offset,
                last_offset_delta: h.last_offset_delta,
            })?;
    }
    Ok(next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::{assign, build_batch, ProducerFields, Record};

    fn batch_at(base_offset: Offset, records: usize) -> Bytes {
        let r = Record {
            key: None,
            value: Some(b"v".to_vec()),
            headers: vec![],
            timestamp_delta: 0,
        };
        let mut b = build_batch(&vec![r; records], 1_000, ProducerFields::NONE);
        assign(&mut b, base_offset, 0);
        Bytes::from(b)
    }

    #[test]
    fn follower_batches_continue_the_log() {
        let mut records = batch_at(10, 3).to_vec();
        records.extend_from_slice(&batch_at(13, 2));
        let batches = follower_batches(&Bytes::from(records), 1 << 20).unwrap();
        let headers = || batches.iter().map(|(_, h)| h);
        assert_eq!(follower_next_offset(headers(), 10).unwrap(), 15);
        assert!(matches!(
            follower_next_offset(headers(), 11),
            Err(StorageError::NonMonotonicOffset { .. })
        ));
    }

    /// A leader's batch whose last offset passes i64::MAX (the base offset is outside the CRC)
    /// panicked the follower's append in a debug build and, wrapping in release, would have
    /// moved the log end below zero.
    #[test]
    fn a_follower_batch_past_the_largest_offset_is_refused() {
        let records = batch_at(i64::MAX - 1, 3);
        let batches = follower_batches(&records, 1 << 20).unwrap();
        assert!(matches!(
            follower_next_offset(batches.iter().map(|(_, h)| h), 0),
            Err(StorageError::InvalidBatch(
                BatchError::OffsetOverflow { .. }
            ))
        ));
    }
}
