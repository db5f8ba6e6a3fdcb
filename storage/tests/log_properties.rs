//! Model-based property tests of the partition log.
//!
//! A case is a random sequence of operations (appends, concurrent appends, reads, truncations,
//! clean restarts and crashes) run against a real log in a real directory, next to a model: the
//! batches the log must hold, with the offsets and leader epochs it assigned, and the segment
//! bases its roll rule must produce. A crash drops the log without closing it, may cut or corrupt
//! the active segment's file, and reopens without the clean-shutdown promise; the log must then
//! hold exactly the longest valid prefix of the model, byte for byte, and carry on from there.
//!
//! Each life of the log (open .. close or crash) runs in its own glommio executor, so a crash
//! really ends every task of the old instance (a background segment flush, say) instead of
//! leaving it running beside the reopened log, which no real crash would.
//!
//! `PROPTEST_CASES` raises the number of cases (64 by default).

use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use weir_storage::batch::{self, build_batch, ProducerFields, Record};
use weir_storage::batch::{BATCH_LENGTH_AT, LEADER_EPOCH_AT, MAGIC_AT};
use weir_storage::checkpoint::PartitionCheckpoint;
use weir_storage::heartbeat::{Heartbeat, HEARTBEAT_PERIOD};
use weir_storage::{
    LogConfig, Offset, PartitionLog, SegmentFileCache, StorageError, TopicPartition,
};

/// Far from the clock the log is given, so `segment.ms` never rolls: rolls come from size only,
/// which the model reproduces.
const BASE_TIMESTAMP: i64 = 1_700_000_000_000;
const NOW_MS: i64 = BASE_TIMESTAMP;

#[derive(Debug, Clone)]
struct BatchSpec {
    records: usize,
    value_len: usize,
}

#[derive(Debug, Clone, Copy)]
enum Damage {
    None,
    /// Cut the active segment's file at a point chosen by this fraction of its length.
    Cut(u32),
    /// XOR one byte of the active segment (chosen by the fraction) with a non-zero mask.
    Flip {
        at: u32,
        mask: u8,
    },
}

#[derive(Debug, Clone)]
enum Op {
    /// One append call carrying one or more concatenated batches.
    Append {
        batches: Vec<BatchSpec>,
        new_epoch: bool,
    },
    /// Several appenders in one scheduling round: they share group commits, and a roll may fall
    /// inside a group.
    Concurrent {
        appends: Vec<Vec<BatchSpec>>,
    },
    /// Fractions pick the fetch offset and bound within the log as it is when the read runs.
    Read {
        at: u32,
        max_bytes: u64,
        max_offset: Option<u32>,
        min_one_batch: bool,
    },
    Truncate {
        at: u32,
    },
    Reopen,
    Crash(Damage),
}

/// A fraction `f / 2^32` of `n`: a value in `0..n` (0 when `n` is 0). Positions are drawn as
/// fractions because the log's size is only known when the operation runs.
fn pick(f: u32, n: u64) -> u64 {
    ((f as u128 * n as u128) >> 32) as u64
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Stored {
    base: Offset,
    last: Offset,
    epoch: i32,
    bytes: Vec<u8>,
}

#[derive(Debug, Clone)]
struct Model {
    batches: Vec<Stored>,
    /// Segment base offsets, oldest first.
    segments: Vec<Offset>,
    epoch: i32,
    /// Distinguishes the content of every batch built, so byte comparisons mean something.
    seq: u64,
}

impl Model {
    fn new() -> Self {
        Self {
            batches: Vec::new(),
            segments: vec![0],
            epoch: 0,
            seq: 0,
        }
    }

    fn end(&self) -> Offset {
        self.batches.last().map_or(0, |b| b.last + 1)
    }

    fn active_base(&self) -> Offset {
        *self.segments.last().expect("a log always has a segment")
    }

    /// Index of the first batch at or after `base` (batches are in offset order).
    fn first_at(&self, base: Offset) -> usize {
        self.batches.partition_point(|b| b.base < base)
    }

    fn segment_of(&self, offset: Offset) -> Offset {
        let i = self.segments.partition_point(|b| *b <= offset);
        self.segments[i - 1]
    }

    /// The batches of the segment starting at `base`.
    fn segment_batches(&self, base: Offset) -> &[Stored] {
        let next = self
            .segments
            .iter()
            .find(|b| **b > base)
            .copied()
            .unwrap_or(Offset::MAX);
        &self.batches[self.first_at(base)..self.first_at(next)]
    }

    fn segment_size(&self, base: Offset) -> u64 {
        self.segment_batches(base)
            .iter()
            .map(|b| b.bytes.len() as u64)
            .sum()
    }

    /// Records a batch written at the log end, rolling first as the log must: when the active
    /// segment is not empty and the batch would take it past `segment.bytes`.
    fn push(&mut self, stored: Stored, segment_bytes: u64) {
        let size = self.segment_size(self.active_base());
        if size > 0 && size + stored.bytes.len() as u64 > segment_bytes {
            self.segments.push(stored.base);
        }
        self.batches.push(stored);
    }

    /// `truncate_to`: the batch holding `offset` and everything after it go, and so do the
    /// segments that start after it.
    fn truncate(&mut self, offset: Offset) {
        if offset >= self.end() {
            return;
        }
        self.batches.retain(|b| b.last < offset);
        self.segments.retain(|b| *b <= offset);
    }

    /// The leader epoch cache the batches imply: each epoch and its first offset.
    fn epochs(&self) -> Vec<(i32, Offset)> {
        let mut out: Vec<(i32, Offset)> = Vec::new();
        for b in &self.batches {
            if out.last().is_none_or(|(e, _)| b.epoch > *e) {
                out.push((b.epoch, b.base));
            }
        }
        out
    }

    /// What `read` must return: `Err` for an offset out of range, else the first offset and
    /// bytes of the region, if any. Kafka's rules: start at the batch holding the offset, whole
    /// batches only, one segment, only batches wholly below the bound, as many as fit the budget,
    /// and the first one even if it does not fit when `min_one_batch` says so.
    fn read(
        &self,
        fetch: Offset,
        max_bytes: u64,
        max_offset: Offset,
        min_one_batch: bool,
    ) -> Result<Option<(Offset, Vec<u8>)>, ()> {
        let end = self.end();
        if !(0..=end).contains(&fetch) {
            return Err(());
        }
        let bound = max_offset.min(end);
        if fetch >= bound {
            return Ok(None);
        }
        let first = self.batches.partition_point(|b| b.last < fetch);
        let segment = self.segment_of(self.batches[first].base);
        let eligible: Vec<&Stored> = self.batches[first..]
            .iter()
            .take_while(|b| self.segment_of(b.base) == segment && b.last < bound)
            .collect();
        let mut taken = 0;
        let mut size = 0u64;
        for b in &eligible {
            if size + b.bytes.len() as u64 > max_bytes {
                break;
            }
            size += b.bytes.len() as u64;
            taken += 1;
        }
        if taken == 0 && min_one_batch && !eligible.is_empty() {
            taken = 1;
        }
        if taken == 0 {
            return Ok(None);
        }
        let bytes = eligible[..taken]
            .iter()
            .flat_map(|b| b.bytes.iter().copied())
            .collect();
        Ok(Some((eligible[0].base, bytes)))
    }
}

fn make_batch(seq: u64, spec: &BatchSpec) -> Vec<u8> {
    let records: Vec<Record> = (0..spec.records)
        .map(|i| Record {
            key: (i % 3 != 0).then(|| format!("k{seq}-{i}").into_bytes()),
            value: Some(
                (0..spec.value_len)
                    .map(|j| (seq as usize * 31 + i * 7 + j) as u8)
                    .collect(),
            ),
            headers: if i % 4 == 1 {
                vec![("h".into(), Some(vec![i as u8]))]
            } else {
                vec![]
            },
            timestamp_delta: i as i64,
        })
        .collect();
    build_batch(
        &records,
        BASE_TIMESTAMP + seq as i64 * 10,
        ProducerFields::NONE,
    )
}

trait OrFail<T> {
    fn or_fail(self, what: &str) -> Result<T, TestCaseError>;
}

impl<T, E: std::fmt::Display> OrFail<T> for Result<T, E> {
    fn or_fail(self, what: &str) -> Result<T, TestCaseError> {
        self.map_err(|e| TestCaseError::fail(format!("{what}: {e}")))
    }
}

struct Setup {
    dir: PathBuf,
    config: LogConfig,
}

fn tp() -> TopicPartition {
    TopicPartition::new("p", 0)
}

/// Builds the batches of one append call, stamped as the log will stamp them once it has said
/// where they start.
fn build_append(model: &mut Model, specs: &[BatchSpec]) -> (Vec<u8>, Vec<Vec<u8>>) {
    let mut all = Vec::new();
    let mut each = Vec::new();
    for spec in specs {
        let b = make_batch(model.seq, spec);
        model.seq += 1;
        all.extend_from_slice(&b);
        each.push(b);
    }
    (all, each)
}

/// Adds batches the log accepted starting at `first`, checking they land at the model's end.
fn record_append(
    model: &mut Model,
    first: Offset,
    last: Offset,
    epoch: i32,
    built: Vec<Vec<u8>>,
    segment_bytes: u64,
) -> Result<(), TestCaseError> {
    prop_assert_eq!(first, model.end(), "an append starts at the log end");
    for mut b in built {
        let base = model.end();
        batch::assign(&mut b, base, epoch);
        let h = batch::validate(&b).or_fail("a stamped batch stays valid")?;
        model.push(
            Stored {
                base,
                last: h.last_offset(),
                epoch,
                bytes: b,
            },
            segment_bytes,
        );
    }
    prop_assert_eq!(last, model.end() - 1, "an append ends at its last record");
    Ok(())
}

async fn append(
    log: &Rc<PartitionLog>,
    model: &mut Model,
    specs: &[BatchSpec],
    segment_bytes: u64,
) -> Result<(), TestCaseError> {
    let (bytes, built) = build_append(model, specs);
    let info = log
        .append_as_leader(&bytes, model.epoch, NOW_MS)
        .await
        .or_fail("append")?;
    let records: usize = specs.iter().map(|s| s.records).sum();
    prop_assert_eq!(info.record_count, records as u64);
    record_append(
        model,
        info.first_offset,
        info.last_offset,
        model.epoch,
        built,
        segment_bytes,
    )
}

async fn read_region(
    log: &PartitionLog,
    fetch: Offset,
    max_bytes: u64,
    max_offset: Offset,
    min_one_batch: bool,
) -> Result<Result<Option<(Offset, Vec<u8>)>, StorageError>, TestCaseError> {
    let outcome = match log.read(fetch, max_bytes, max_offset, min_one_batch).await {
        Ok(o) => o,
        Err(e) => return Ok(Err(e)),
    };
    let Some(region) = outcome.region else {
        return Ok(Ok(None));
    };
    let bytes = region.read_to_vec().await.or_fail("region bytes")?;
    prop_assert_eq!(
        bytes.len() as u64,
        region.len,
        "a region's bytes are all there"
    );
    let batches =
        batch::split_and_validate(&bytes).or_fail("a region holds whole valid batches")?;
    prop_assert_eq!(batches[0].1.base_offset, region.first_offset);
    Ok(Ok(Some((region.first_offset, bytes))))
}

/// The whole log must be the model: offsets, segments, epochs, every batch byte for byte, and
/// segment files exactly as large as their batches.
async fn verify(log: &PartitionLog, model: &Model, setup: &Setup) -> Result<(), TestCaseError> {
    prop_assert_eq!(log.log_end_offset(), model.end());
    prop_assert_eq!(log.log_start_offset(), 0);
    prop_assert!(log.high_watermark() <= log.log_end_offset());
    prop_assert_eq!(log.segment_bases(), model.segments.clone());
    prop_assert_eq!(log.epoch_entries(), model.epochs());
    let mut got: Vec<Stored> = Vec::new();
    let mut next = 0;
    // Each read returns at least one batch, so this many reads cover the log.
    for _ in 0..=model.batches.len() {
        let Some((_, bytes)) = read_region(log, next, 1 << 16, Offset::MAX, true)
            .await?
            .or_fail("read")?
        else {
            break;
        };
        for (range, h) in batch::split_and_validate(&bytes).or_fail("split")? {
            got.push(Stored {
                base: h.base_offset,
                last: h.last_offset(),
                epoch: h.partition_leader_epoch,
                bytes: bytes[range].to_vec(),
            });
            next = h.last_offset() + 1;
        }
    }
    prop_assert_eq!(got.len(), model.batches.len(), "batch count");
    for (g, m) in got.iter().zip(&model.batches) {
        prop_assert!(
            g == m,
            "batch {}..={} differs from the model's {}..={}",
            g.base,
            g.last,
            m.base,
            m.last
        );
    }
    for base in &model.segments {
        let path = setup.dir.join(format!("{base:020}.log"));
        let len = std::fs::metadata(&path).or_fail("segment file")?.len();
        prop_assert_eq!(len, model.segment_size(*base), "size of segment {}", base);
        prop_assert!(
            len <= setup.config.segment_bytes || model.segment_batches(*base).len() == 1,
            "segment {} holds {} bytes over segment.bytes {} in more than one batch",
            base,
            len,
            setup.config.segment_bytes
        );
    }
    Ok(())
}

/// Damages the active segment file as a crash might, and cuts the model to what recovery must
/// keep. Returns the bytes recovery must cut.
///
/// Only bytes the log has not fsynced are flipped: what lies before the checkpointed recovery
/// point (older segments, and the active one up to the recovery position) is trusted without a
/// scan, as in Kafka. A cut may fall anywhere: a file shorter than the recovery position makes
/// recovery scan the segment from its start. The broker-written `baseOffset` and
/// `partitionLeaderEpoch` fields are outside the CRC by the format's design, so no check can see
/// a flip there; they are left alone.
fn damage_active_segment(
    setup: &Setup,
    model: &mut Model,
    damage: Damage,
    checkpoint: Option<PartitionCheckpoint>,
) -> Result<u64, TestCaseError> {
    let active = model.active_base();
    let path = setup.dir.join(format!("{active:020}.log"));
    let on_disk = std::fs::read(&path).or_fail("active segment")?;
    let first = model.first_at(active);
    let expected: Vec<u8> = model.batches[first..]
        .iter()
        .flat_map(|b| b.bytes.iter().copied())
        .collect();
    prop_assert!(
        on_disk == expected,
        "the active segment on disk ({} bytes) is not the model's ({} bytes) before the crash",
        on_disk.len(),
        expected.len()
    );
    let len = on_disk.len() as u64;
    let starts: Vec<u64> = model.batches[first..]
        .iter()
        .scan(0u64, |pos, b| {
            let start = *pos;
            *pos += b.bytes.len() as u64;
            Some(start)
        })
        .collect();
    let trusted = match checkpoint {
        Some(cp) if cp.recovery_segment == active => cp.recovery_position.min(len),
        Some(cp) if cp.recovery_segment > active => len,
        _ => 0,
    };
    // (file length after the damage, end of the valid prefix)
    let (file_len, valid_end) = match damage {
        Damage::None => return Ok(0),
        Damage::Cut(f) => {
            let at = pick(f, len + 1);
            let file = std::fs::OpenOptions::new()
                .write(true)
                .open(&path)
                .or_fail("open")?;
            file.set_len(at).or_fail("cut")?;
            let valid = starts
                .iter()
                .zip(&model.batches[first..])
                .map(|(s, b)| s + b.bytes.len() as u64)
                .take_while(|e| *e <= at)
                .last()
                .unwrap_or(0);
            (at, valid)
        }
        Damage::Flip { at, mask } => {
            // CRC-checked bytes of the batches after the trusted position: from `batchLength`
            // on, except `partitionLeaderEpoch`.
            let mut ranges = Vec::new();
            for (s, b) in starts.iter().zip(&model.batches[first..]) {
                if *s >= trusted {
                    ranges.push(s + BATCH_LENGTH_AT as u64..s + LEADER_EPOCH_AT as u64);
                    ranges.push(s + MAGIC_AT as u64..s + b.bytes.len() as u64);
                }
            }
            let total: u64 = ranges.iter().map(|r| r.end - r.start).sum();
            if total == 0 {
                return Ok(0);
            }
            let mut k = pick(at, total);
            let mut position = 0;
            for r in &ranges {
                let n = r.end - r.start;
                if k < n {
                    position = r.start + k;
                    break;
                }
                k -= n;
            }
            let mut bytes = on_disk;
            bytes[position as usize] ^= mask;
            std::fs::write(&path, &bytes).or_fail("write flipped byte")?;
            let damaged = starts.partition_point(|s| *s <= position) - 1;
            (len, starts[damaged])
        }
    };
    let keep = starts
        .iter()
        .zip(&model.batches[first..])
        .take_while(|(s, b)| *s + b.bytes.len() as u64 <= valid_end)
        .count();
    model.batches.truncate(first + keep);
    Ok(file_len - valid_end)
}

#[derive(Clone, Copy)]
enum Start {
    Fresh,
    Clean,
    Crashed(Damage),
}

enum End {
    Closed,
    Crashed(Damage),
}

/// One life of the log, in its own executor: open (recovering from `start`), run `ops` until a
/// restart or crash, and leave the log closed or crashed.
fn life(
    setup: &Setup,
    start: Start,
    ops: Vec<Op>,
    model: Model,
) -> Result<(Model, End, usize), TestCaseError> {
    let dir = setup.dir.clone();
    let config = setup.config.clone();
    glommio::LocalExecutorBuilder::default()
        .spawn(move || async move {
            let _heartbeat = Heartbeat::start(HEARTBEAT_PERIOD);
            let setup = Setup { dir, config };
            run_life(&setup, start, &ops, model).await
        })
        .or_fail("executor")?
        .join()
        .or_fail("executor")?
}

async fn run_life(
    setup: &Setup,
    start: Start,
    ops: &[Op],
    mut model: Model,
) -> Result<(Model, End, usize), TestCaseError> {
    let seg_bytes = setup.config.segment_bytes;
    // A small descriptor cache, so reads and rolls evict and reopen segment files.
    let cache = SegmentFileCache::new(3);
    let (clean, expected_cut) = match start {
        Start::Fresh => (false, 0),
        Start::Clean => (true, 0),
        Start::Crashed(damage) => {
            let cp = PartitionCheckpoint::load(&setup.dir)
                .await
                .or_fail("checkpoint")?;
            (false, damage_active_segment(setup, &mut model, damage, cp)?)
        }
    };
    let (log, report) =
        PartitionLog::open_with_report(setup.dir.clone(), tp(), setup.config.clone(), cache, clean)
            .await
            .or_fail("open")?;
    prop_assert_eq!(
        report.truncated_bytes,
        expected_cut,
        "bytes cut by recovery"
    );
    prop_assert_eq!(report.deleted_segments, 0);
    verify(&log, &model, setup).await?;
    if let Start::Crashed(_) = start {
        // The log carries on at the recovered end.
        let probe = BatchSpec {
            records: 2,
            value_len: 5,
        };
        append(&log, &mut model, &[probe], seg_bytes).await?;
    }

    for (i, op) in ops.iter().enumerate() {
        match op {
            Op::Append { batches, new_epoch } => {
                if *new_epoch {
                    model.epoch += 1;
                }
                append(&log, &mut model, batches, seg_bytes).await?;
            }
            Op::Concurrent { appends } => {
                let epoch = model.epoch;
                let tasks: Vec<_> = appends
                    .iter()
                    .map(|specs| {
                        let (bytes, built) = build_append(&mut model, specs);
                        let log = log.clone();
                        glommio::spawn_local(async move {
                            let r = log.append_as_leader(&bytes, epoch, NOW_MS).await;
                            (r, built)
                        })
                    })
                    .collect();
                let mut done = Vec::new();
                for t in tasks {
                    let (r, built) = t.await;
                    done.push((r.or_fail("concurrent append")?, built));
                }
                // Offsets follow arrival order, which the scheduler decides; the model follows
                // the offsets.
                done.sort_by_key(|(info, _)| info.first_offset);
                for (info, built) in done {
                    record_append(
                        &mut model,
                        info.first_offset,
                        info.last_offset,
                        epoch,
                        built,
                        seg_bytes,
                    )?;
                }
            }
            Op::Read {
                at,
                max_bytes,
                max_offset,
                min_one_batch,
            } => {
                let end = model.end() as u64;
                let fetch = pick(*at, end + 2) as Offset;
                let bound = max_offset.map_or(Offset::MAX, |f| pick(f, end + 2) as Offset);
                let got = read_region(&log, fetch, *max_bytes, bound, *min_one_batch).await?;
                let want = model.read(fetch, *max_bytes, bound, *min_one_batch);
                match (got, want) {
                    (Err(StorageError::OffsetOutOfRange { .. }), Err(())) => {}
                    (Ok(g), Ok(w)) => prop_assert!(
                        g == w,
                        "read({fetch}, {max_bytes}, {bound}, {min_one_batch}) returned {:?}, \
                         the model says {:?}",
                        g.map(|(o, b)| (o, b.len())),
                        w.map(|(o, b)| (o, b.len()))
                    ),
                    (g, w) => prop_assert!(
                        false,
                        "read({fetch}, {max_bytes}, {bound}, {min_one_batch}): {:?} vs model {:?}",
                        g.map(|r| r.map(|(o, b)| (o, b.len()))),
                        w.map(|r| r.map(|(o, b)| (o, b.len())))
                    ),
                }
            }
            Op::Truncate { at } => {
                let offset = pick(*at, model.end() as u64 + 2) as Offset;
                log.truncate_to(offset).await.or_fail("truncate")?;
                model.truncate(offset);
                verify(&log, &model, setup).await?;
            }
            Op::Reopen => {
                verify(&log, &model, setup).await?;
                log.close().await.or_fail("close")?;
                return Ok((model, End::Closed, i + 1));
            }
            Op::Crash(damage) => {
                // No close: nothing is flushed or checkpointed, and the executor's end kills any
                // background flush still running.
                drop(log);
                return Ok((model, End::Crashed(*damage), i + 1));
            }
        }
    }
    verify(&log, &model, setup).await?;
    log.close().await.or_fail("close")?;
    Ok((model, End::Closed, ops.len()))
}

fn run_case(
    segment_bytes: u64,
    index_interval_bytes: u64,
    ops: Vec<Op>,
) -> Result<(), TestCaseError> {
    // fsyncs are many and what is under test is not the disk: tmpfs keeps cases fast.
    let root = if Path::new("/dev/shm").is_dir() {
        tempfile::tempdir_in("/dev/shm")
    } else {
        tempfile::tempdir()
    }
    .or_fail("tempdir")?;
    let setup = Setup {
        dir: root.path().join("p-0"),
        config: LogConfig {
            segment_bytes,
            index_interval_bytes,
            ..LogConfig::default()
        },
    };
    let mut model = Model::new();
    let mut start = Start::Fresh;
    let mut rest = &ops[..];
    // Every life consumes at least its terminating operation, so this ends.
    loop {
        let (m, end, used) = life(&setup, start, rest.to_vec(), model)?;
        model = m;
        rest = &rest[used..];
        start = match end {
            End::Closed => Start::Clean,
            End::Crashed(d) => Start::Crashed(d),
        };
        if rest.is_empty() {
            break;
        }
    }
    // A last life checks that whatever the previous one left reopens as the model.
    life(&setup, start, Vec::new(), model)?;
    Ok(())
}

fn batch_spec() -> impl Strategy<Value = BatchSpec> {
    (
        1usize..=12,
        prop_oneof![3 => 0usize..=64, 1 => 64usize..=700],
    )
        .prop_map(|(records, value_len)| BatchSpec { records, value_len })
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        1 => Just(Damage::None),
        3 => any::<u32>().prop_map(Damage::Cut),
        3 => (any::<u32>(), 1u8..=255).prop_map(|(at, mask)| Damage::Flip { at, mask }),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        10 => (prop::collection::vec(batch_spec(), 1..=4), prop::bool::weighted(0.15))
            .prop_map(|(batches, new_epoch)| Op::Append { batches, new_epoch }),
        2 => prop::collection::vec(prop::collection::vec(batch_spec(), 1..=2), 2..=6)
            .prop_map(|appends| Op::Concurrent { appends }),
        8 => (
            any::<u32>(),
            prop_oneof![0u64..=200, 0u64..=20_000],
            prop::option::weighted(0.3, any::<u32>()),
            any::<bool>(),
        )
            .prop_map(|(at, max_bytes, max_offset, min_one_batch)| Op::Read {
                at,
                max_bytes,
                max_offset,
                min_one_batch,
            }),
        1 => any::<u32>().prop_map(|at| Op::Truncate { at }),
        1 => Just(Op::Reopen),
        3 => damage().prop_map(Op::Crash),
    ]
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(),
        ..ProptestConfig::default()
    })]

    #[test]
    fn log_matches_model_across_restarts_and_crashes(
        segment_bytes in 400u64..=6_000,
        index_interval_bytes in prop_oneof![1u64..=64, 64u64..=2_048],
        ops in prop::collection::vec(op(), 1..=48),
    ) {
        run_case(segment_bytes, index_interval_bytes, ops)?;
    }
}
