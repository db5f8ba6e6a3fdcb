//! Tests of the partition log against a real directory, on a real glommio executor.

use super::*;
use crate::batch::{build_batch, validate, ProducerFields, Record};
use crate::error::BatchError;
use crate::segment::{file_path, INDEX_SUFFIX};
use std::future::Future;

pub(crate) fn run<F: Future<Output = ()> + 'static>(f: impl FnOnce() -> F + Send + 'static) {
    crate::heartbeat::run_on_executor(f)
}

pub(crate) fn batch(n: usize, value_len: usize, ts: i64) -> Vec<u8> {
    let records: Vec<Record> = (0..n)
        .map(|i| Record {
            key: Some(format!("key-{i}").into_bytes()),
            value: Some(vec![b'v'; value_len]),
            headers: vec![],
            timestamp_delta: i as i64,
        })
        .collect();
    build_batch(&records, ts, ProducerFields::NONE)
}

pub(crate) fn config(segment_bytes: u64) -> LogConfig {
    LogConfig {
        segment_bytes,
        index_interval_bytes: 256,
        ..LogConfig::default()
    }
}

pub(crate) async fn open(dir: &Path, cfg: LogConfig, clean: bool) -> Rc<PartitionLog> {
    PartitionLog::open(
        dir.join("t-0"),
        TopicPartition::new("t", 0),
        cfg,
        SegmentFileCache::new(64),
        clean,
    )
    .await
    .expect("open")
}

/// Every batch readable from `from`, in order, as (base offset, last offset, bytes).
pub(crate) async fn read_all(log: &PartitionLog, from: Offset) -> Vec<(Offset, Offset, Vec<u8>)> {
    let mut out = Vec::new();
    let mut next = from;
    loop {
        let r = log
            .read(next, 1 << 20, Offset::MAX, true)
            .await
            .expect("read");
        let Some(region) = r.region else { break };
        let bytes = region.read_to_vec().await.expect("region bytes");
        assert_eq!(bytes.len() as u64, region.len);
        let batches =
            crate::batch::split_and_validate(&bytes).expect("regions hold whole valid batches");
        for (range, h) in batches {
            out.push((h.base_offset, h.last_offset(), bytes[range].to_vec()));
            next = h.last_offset() + 1;
        }
    }
    out
}

#[test]
fn appends_get_contiguous_offsets_and_read_back_whole() {
    run(|| async {
        let dir = tempfile::tempdir().unwrap();
        let log = open(dir.path(), config(1 << 20), false).await;
        let mut expected = 0;
        for i in 0..50 {
            let info = log
                .append_as_leader(&batch(1 + i % 4, 100, 1000 + i as i64), 3, 0)
                .await
                .unwrap();
            assert_eq!(info.first_offset, expected);
            expected = info.last_offset + 1;
        }
        assert_eq!(log.log_end_offset(), expected);
        let all = read_all(&log, 0).await;
        assert_eq!(all.first().unwrap().0, 0);
        for w in all.windows(2) {
            assert_eq!(w[0].1 + 1, w[1].0, "offsets are contiguous");
        }
        assert_eq!(all.last().unwrap().1 + 1, expected);
        for (_, _, b) in &all {
            assert_eq!(
                validate(b).unwrap().partition_leader_epoch,
                3,
                "epoch stamped"
            );
        }
        // Reading from the middle of a batch starts at the batch that holds the offset.
        let r = log
            .read(2, 1 << 20, Offset::MAX, true)
            .await
            .unwrap()
            .region
            .unwrap();
        assert!(r.first_offset <= 2);
        log.close().await.unwrap();
    });
}

#[test]
fn reads_respect_budget_bound_and_range() {
    run(|| async {
        let dir = tempfile::tempdir().unwrap();
        let log = open(dir.path(), config(1 << 20), false).await;
        let one = batch(2, 500, 0);
        for _ in 0..20 {
            log.append_as_leader(&one, 0, 0).await.unwrap();
        }
        let blen = one.len() as u64;
        // A budget of 3.5 batches returns exactly 3.
        let r = log
            .read(0, blen * 7 / 2, Offset::MAX, true)
            .await
            .unwrap()
            .region
            .unwrap();
        assert_eq!(r.len, 3 * blen);
        // A budget smaller than one batch: one batch with min_one_batch, nothing without.
        let r = log
            .read(4, 10, Offset::MAX, true)
            .await
            .unwrap()
            .region
            .unwrap();
        assert_eq!((r.len, r.first_offset), (blen, 4));
        assert!(log
            .read(4, 10, Offset::MAX, false)
            .await
            .unwrap()
            .region
            .is_none());
        // An upper bound (the high watermark) stops before the batch holding it.
        let r = log
            .read(0, 1 << 20, 10, true)
            .await
            .unwrap()
            .region
            .unwrap();
        assert_eq!(r.len, 5 * blen);
        assert!(log
            .read(10, 1 << 20, 10, true)
            .await
            .unwrap()
            .region
            .is_none());
        // At the log end: empty; past it or before the start: out of range.
        assert!(log
            .read(40, 1 << 20, Offset::MAX, true)
            .await
            .unwrap()
            .region
            .is_none());
        assert!(matches!(
            log.read(41, 1, Offset::MAX, true).await,
            Err(StorageError::OffsetOutOfRange { .. })
        ));
        assert!(matches!(
            log.read(-1, 1, Offset::MAX, true).await,
            Err(StorageError::OffsetOutOfRange { .. })
        ));
        log.close().await.unwrap();
    });
}

#[test]
fn bad_batches_are_refused_and_nothing_reaches_disk() {
    run(|| async {
        let dir = tempfile::tempdir().unwrap();
        let log = open(dir.path(), config(1 << 20), false).await;
        log.append_as_leader(&batch(1, 10, 0), 0, 0).await.unwrap();
        let size = log.size_bytes();
        let mut bad = batch(3, 10, 0);
        let n = bad.len();
        bad[n - 1] ^= 1;
        let e = log.append_as_leader(&bad, 0, 0).await.unwrap_err();
        assert!(
            matches!(
                e,
                StorageError::InvalidBatch(BatchError::CrcMismatch { .. })
            ),
            "{e}"
        );
        // A good batch followed by a bad one: the whole request is refused.
        let mut two = batch(1, 10, 0);
        two.extend_from_slice(&bad);
        assert!(log.append_as_leader(&two, 0, 0).await.is_err());
        assert!(log.append_as_leader(&[1, 2, 3], 0, 0).await.is_err());
        let mut big = log.config();
        big.max_message_bytes = 100;
        log.set_config(big);
        let e = log
            .append_as_leader(&batch(1, 200, 0), 0, 0)
            .await
            .unwrap_err();
        assert!(matches!(
            e,
            StorageError::InvalidBatch(BatchError::TooLarge { .. })
        ));
        assert_eq!(log.size_bytes(), size);
        assert_eq!(log.log_end_offset(), 1);
        log.close().await.unwrap();
    });
}

#[test]
fn concurrent_appends_in_one_round_share_one_write() {
    run(|| async {
        let dir = tempfile::tempdir().unwrap();
        let log = open(dir.path(), config(1 << 20), false).await;
        let tasks: Vec<_> = (0..32)
            .map(|_| {
                let log = log.clone();
                glommio::spawn_local(async move {
                    log.append_as_leader(&batch(2, 50, 0), 0, 0).await.unwrap()
                })
            })
            .collect();
        let mut firsts = Vec::new();
        for t in tasks {
            firsts.push(t.await.first_offset);
        }
        firsts.sort_unstable();
        assert_eq!(firsts, (0..32).map(|i| i * 2).collect::<Vec<_>>());
        let stats = log.stats();
        assert_eq!(stats.appends, 32);
        assert_eq!(stats.writes, 1, "one scheduling round, one write");
        assert_eq!(read_all(&log, 0).await.len(), 32);
        log.close().await.unwrap();
    });
}

#[test]
fn segments_roll_by_size_and_age_with_kafka_file_names() {
    run(|| async {
        let dir = tempfile::tempdir().unwrap();
        let one = batch(4, 200, 1_000);
        let log = open(dir.path(), config(one.len() as u64 * 3), false).await;
        for _ in 0..10 {
            log.append_as_leader(&one, 0, 1_000).await.unwrap();
        }
        assert_eq!(log.segment_bases(), vec![0, 12, 24, 36]);
        for base in log.segment_bases() {
            for suffix in ["log", "index", "timeindex"] {
                assert!(
                    file_path(log.dir(), base, suffix).exists(),
                    "{base}.{suffix}"
                );
            }
        }
        assert!(log.dir().join("00000000000000000012.log").exists());
        let all = read_all(&log, 0).await;
        assert_eq!(all.len(), 10);
        // Age, as Kafka measures it: a batch whose timestamp is more than segment.ms past the
        // segment's first one rolls before it is appended; the wall clock does not count, so
        // old records appended late (a backfill) do not roll a segment per batch.
        let mut cfg = log.config();
        cfg.segment_ms = 500;
        log.set_config(cfg);
        log.append_as_leader(&one, 0, 1_000_000).await.unwrap();
        assert_eq!(log.segment_count(), 4, "old timestamps appended late");
        log.append_as_leader(&batch(4, 200, 1_600), 0, 1_600)
            .await
            .unwrap();
        assert_eq!(log.segment_count(), 5);
        log.close().await.unwrap();
    });
}

#[test]
fn clean_and_unclean_reopen_keep_offsets() {
    run(|| async {
        let dir = tempfile::tempdir().unwrap();
        let one = batch(3, 300, 5);
        let cfg = config(one.len() as u64 * 4);
        let log = open(dir.path(), cfg.clone(), false).await;
        for _ in 0..10 {
            log.append_as_leader(&one, 1, 0).await.unwrap();
        }
        log.set_high_watermark(21);
        let before = read_all(&log, 0).await;
        log.close().await.unwrap();

        let log = open(dir.path(), cfg.clone(), true).await;
        assert_eq!(log.log_end_offset(), 30);
        assert_eq!(log.high_watermark(), 21);
        assert_eq!(read_all(&log, 0).await, before);
        assert_eq!(
            log.append_as_leader(&one, 2, 0).await.unwrap().first_offset,
            30
        );
        assert_eq!(log.epoch_entries(), vec![(1, 0), (2, 30)]);
        // Dropped without close: the next open is unclean and scans.
        drop(log);

        let (log, report) = PartitionLog::open_with_report(
            dir.path().join("t-0"),
            TopicPartition::new("t", 0),
            cfg,
            SegmentFileCache::new(8),
            false,
        )
        .await
        .unwrap();
        assert!(report.scanned_batches >= 1);
        assert_eq!(report.truncated_bytes, 0);
        assert_eq!(log.log_end_offset(), 33);
        assert_eq!(read_all(&log, 0).await.len(), 11);
        assert_eq!(log.epoch_entries(), vec![(1, 0), (2, 30)]);
        log.close().await.unwrap();
    });
}

#[test]
fn torn_tail_is_cut_at_the_last_whole_batch() {
    run(|| async {
        let dir = tempfile::tempdir().unwrap();
        let one = batch(2, 100, 0);
        let log = open(dir.path(), config(1 << 20), false).await;
        for _ in 0..10 {
            log.append_as_leader(&one, 0, 0).await.unwrap();
        }
        let path = file_path(log.dir(), 0, LOG_SUFFIX);
        drop(log);
        // Simulate a crash mid-write: half of the last batch reached the disk; and a flipped
        // byte inside batch 8.
        let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        f.set_len(one.len() as u64 * 19 / 2).unwrap();
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[one.len() * 8 + 70] ^= 0xff;
        std::fs::write(&path, &bytes).unwrap();

        let log = open(dir.path(), config(1 << 20), false).await;
        assert_eq!(log.log_end_offset(), 16, "batches 0..8 survive");
        assert_eq!(
            std::fs::metadata(&path).unwrap().len(),
            one.len() as u64 * 8
        );
        assert_eq!(
            log.append_as_leader(&one, 0, 0).await.unwrap().first_offset,
            16
        );
        log.close().await.unwrap();
    });
}

#[test]
fn missing_or_damaged_indexes_are_rebuilt() {
    run(|| async {
        let dir = tempfile::tempdir().unwrap();
        let one = batch(2, 400, 0);
        let cfg = config(one.len() as u64 * 20);
        let log = open(dir.path(), cfg.clone(), false).await;
        for _ in 0..50 {
            log.append_as_leader(&one, 0, 0).await.unwrap();
        }
        let before = read_all(&log, 0).await;
        log.close().await.unwrap();
        let d = dir.path().join("t-0");
        std::fs::remove_file(file_path(&d, 0, INDEX_SUFFIX)).unwrap(); // inactive segment
        std::fs::write(file_path(&d, 40, INDEX_SUFFIX), b"garbage").unwrap(); // inactive segment
        std::fs::write(file_path(&d, 80, INDEX_SUFFIX), b"more garbage").unwrap(); // active segment
        let (log, report) = PartitionLog::open_with_report(
            d.clone(),
            TopicPartition::new("t", 0),
            cfg,
            SegmentFileCache::new(8),
            true,
        )
        .await
        .unwrap();
        assert_eq!(log.segment_bases(), vec![0, 40, 80]);
        assert_eq!(
            report.rebuilt_indexes, 1,
            "the active segment's index at open; others on use"
        );
        assert_eq!(read_all(&log, 0).await, before);
        let r = log
            .read(77, 1, Offset::MAX, true)
            .await
            .unwrap()
            .region
            .unwrap();
        assert_eq!(r.first_offset, 76);
        log.close().await.unwrap();
    });
}

#[test]
fn retention_deletes_old_segments_and_advances_log_start() {
    run(|| async {
        let dir = tempfile::tempdir().unwrap();
        let one = batch(1, 500, 0);
        let mut cfg = config(one.len() as u64 * 2);
        cfg.retention_bytes = one.len() as i64 * 4;
        let log = open(dir.path(), cfg, false).await;
        for i in 0..10 {
            let ts = 1_000 * (i as i64 + 1);
            log.append_as_leader(&batch(1, 500, ts), 0, ts)
                .await
                .unwrap();
        }
        assert_eq!(log.segment_count(), 5);
        // Nothing beyond the high watermark may go.
        log.set_high_watermark(0);
        assert_eq!(
            log.enforce_retention(10_000)
                .await
                .unwrap()
                .deleted_segments,
            0
        );
        log.set_high_watermark(10);
        let out = log.enforce_retention(10_000).await.unwrap();
        assert_eq!(
            out.deleted_segments, 3,
            "6 batches over 4 allowed: 3 whole segments"
        );
        assert_eq!(log.log_start_offset(), 6);
        assert!(matches!(
            log.read(0, 1, Offset::MAX, true).await,
            Err(StorageError::OffsetOutOfRange { .. })
        ));
        assert_eq!(read_all(&log, 6).await.len(), 4);
        // By time: everything older than retention.ms goes, the active segment rolled first.
        let mut cfg = log.config();
        cfg.retention_bytes = -1;
        cfg.retention_ms = 1_000;
        log.set_config(cfg);
        let out = log.enforce_retention(100_000).await.unwrap();
        assert_eq!(out.deleted_segments, 2);
        assert_eq!(log.log_start_offset(), 10);
        assert_eq!(log.log_end_offset(), 10);
        assert_eq!(
            log.append_as_leader(&one, 0, 0).await.unwrap().first_offset,
            10,
            "offsets never reused"
        );
        log.close().await.unwrap();
        let log = open(dir.path(), log_cfg_default(), true).await;
        assert_eq!((log.log_start_offset(), log.log_end_offset()), (10, 11));
        log.close().await.unwrap();
    });
}

fn log_cfg_default() -> LogConfig {
    config(1 << 20)
}

#[test]
fn truncation_removes_the_batch_holding_the_offset_and_later_segments() {
    run(|| async {
        let dir = tempfile::tempdir().unwrap();
        let one = batch(5, 100, 0);
        let log = open(dir.path(), config(one.len() as u64 * 3), false).await;
        for e in 0..10 {
            log.append_as_leader(&one, e / 4, 0).await.unwrap();
        }
        log.set_high_watermark(50);
        assert_eq!(log.segment_count(), 4);
        log.truncate_to(22).await.unwrap();
        assert_eq!(
            log.log_end_offset(),
            20,
            "batch 20..24 holds 22 and goes whole"
        );
        assert_eq!(log.high_watermark(), 20);
        assert_eq!(log.segment_bases(), vec![0, 15]);
        assert_eq!(
            log.epoch_entries(),
            vec![(0, 0), (1, 20)]
                .into_iter()
                .filter(|e| e.1 < 20)
                .collect::<Vec<_>>()
        );
        assert_eq!(log.end_offset_for_epoch(0), Some((0, 20)));
        assert_eq!(
            log.append_as_leader(&one, 7, 0).await.unwrap().first_offset,
            20
        );
        assert_eq!(read_all(&log, 0).await.len(), 5);
        log.truncate_fully_and_start_at(100).await.unwrap();
        assert_eq!((log.log_start_offset(), log.log_end_offset()), (100, 100));
        assert_eq!(log.segment_bases(), vec![100]);
        log.close().await.unwrap();
    });
}

#[test]
fn truncating_at_the_log_end_drops_an_epoch_that_starts_there() {
    // A leadership that appended nothing (epoch 2 at the end) before the next leader was
    // elected: truncating to the end cuts no record but must drop that epoch (Kafka's
    // truncateTo), durably.
    run(|| async {
        let dir = tempfile::tempdir().unwrap();
        let one = batch(5, 100, 0);
        let log = open(dir.path(), config(1 << 20), false).await;
        log.append_as_leader(&one, 1, 0).await.unwrap();
        assert!(log.assign_epoch_start(2));
        assert_eq!(log.epoch_entries(), vec![(1, 0), (2, 5)]);
        log.truncate_to(5).await.unwrap();
        assert_eq!(log.log_end_offset(), 5);
        assert_eq!(log.epoch_entries(), vec![(1, 0)]);
        log.close().await.unwrap();
        let log = open(dir.path(), config(1 << 20), true).await;
        assert_eq!(log.epoch_entries(), vec![(1, 0)]);
        // An empty log too.
        assert!(log.assign_epoch_start(3));
        log.truncate_to(9).await.unwrap();
        assert_eq!(log.epoch_entries(), vec![(1, 0)]);
        log.close().await.unwrap();
    });
}

#[test]
fn follower_appends_keep_leader_offsets() {
    run(|| async {
        let dir = tempfile::tempdir().unwrap();
        let leader = open(dir.path(), config(1 << 20), false).await;
        for e in 0..4 {
            leader
                .append_as_leader(&batch(3, 10, 0), e, 0)
                .await
                .unwrap();
        }
        let region = leader
            .read(0, 1 << 20, Offset::MAX, true)
            .await
            .unwrap()
            .region
            .unwrap();
        let bytes = region.read_to_vec().await.unwrap();
        let fdir = tempfile::tempdir().unwrap();
        let follower = open(fdir.path(), config(1 << 20), false).await;
        let info = follower.append_as_follower(&bytes, 0).await.unwrap();
        assert_eq!((info.first_offset, info.last_offset), (0, 11));
        assert_eq!(follower.epoch_entries(), leader.epoch_entries());
        let again = follower.append_as_follower(&bytes, 0).await.unwrap_err();
        assert!(matches!(again, StorageError::NonMonotonicOffset { .. }));
        leader.close().await.unwrap();
        follower.close().await.unwrap();
    });
}

#[test]
fn lookup_by_timestamp_finds_the_first_record_at_or_after() {
    run(|| async {
        let dir = tempfile::tempdir().unwrap();
        let log = open(dir.path(), config(4096), false).await;
        // Batch i holds records with timestamps 1000*i + {0,1,2}.
        for i in 0..30i64 {
            log.append_as_leader(&batch(3, 300, 1000 * i), 0, 0)
                .await
                .unwrap();
        }
        assert!(log.segment_count() > 2);
        let hit = log.offset_for_timestamp(5001).await.unwrap().unwrap();
        assert_eq!(
            hit,
            TimestampLookup {
                offset: 16,
                timestamp: 5001
            }
        );
        let hit = log.offset_for_timestamp(5003).await.unwrap().unwrap();
        assert_eq!(
            hit,
            TimestampLookup {
                offset: 18,
                timestamp: 6000
            }
        );
        assert_eq!(
            log.offset_for_timestamp(0).await.unwrap().unwrap().offset,
            0
        );
        assert_eq!(log.offset_for_timestamp(100_000).await.unwrap(), None);
        assert_eq!(
            log.max_timestamp().unwrap(),
            TimestampLookup {
                offset: 89,
                timestamp: 29_002
            }
        );
        log.close().await.unwrap();
    });
}

#[test]
fn flush_policy_moves_the_recovery_point() {
    run(|| async {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = config(1 << 20);
        cfg.flush_messages = 10;
        let log = open(dir.path(), cfg, false).await;
        let base_flushes = log.stats().flushes;
        for _ in 0..4 {
            log.append_as_leader(&batch(5, 10, 0), 0, 0).await.unwrap();
        }
        assert_eq!(log.stats().flushes - base_flushes, 2);
        let cp = crate::checkpoint::PartitionCheckpoint::load(log.dir())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(cp.recovery_point, 20);
        let mut cfg = log.config();
        cfg.flush_messages = u64::MAX;
        cfg.flush_ms = 100;
        log.set_config(cfg);
        log.append_as_leader(&batch(1, 10, 0), 0, 1_000)
            .await
            .unwrap();
        assert!(!log.flush_if_due(1_050).await.unwrap());
        assert!(log.flush_if_due(1_100).await.unwrap());
        log.close().await.unwrap();
    });
}

#[test]
fn open_descriptors_stay_under_the_cap_with_2000_partitions() {
    run(|| async {
        // Tests run in parallel threads of one process: count only descriptors into this
        // test's directory. tmpfs (when present) keeps the 12,000 fsyncs of this test cheap;
        // what is measured here is descriptors, not durability.
        let dir = if std::path::Path::new("/dev/shm").is_dir() {
            tempfile::tempdir_in("/dev/shm").unwrap()
        } else {
            tempfile::tempdir().unwrap()
        };
        let root = dir.path().to_path_buf();
        let open_fds = move || {
            std::fs::read_dir("/proc/self/fd")
                .unwrap()
                .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
                .filter(|target| target.starts_with(&root))
                .count()
        };
        let cap = 300;
        let cache = SegmentFileCache::new(cap);
        let one = batch(1, 100, 0);
        let cfg = config(one.len() as u64 * 2);
        let mut peak = 0;
        let mut logs = Vec::new();
        for p in 0..2000 {
            let log = PartitionLog::open(
                dir.path().join(format!("t-{p}")),
                TopicPartition::new("t", p),
                cfg.clone(),
                cache.clone(),
                false,
            )
            .await
            .unwrap();
            // 6 batches at 2 per segment: 3 segments each (two rolled, one active).
            for _ in 0..5 {
                log.append_as_leader(&one, 0, 0).await.unwrap();
            }
            assert_eq!(log.segment_count(), 3);
            logs.push(log);
            peak = peak.max(open_fds());
        }
        // Read every partition from the start: touches every segment of every partition.
        for log in &logs {
            assert_eq!(read_all(log, 0).await.len(), 5);
            peak = peak.max(open_fds());
        }
        assert!(cache.open_count() <= cap);
        // Transient descriptors: each background fsync in flight holds a segment the cache may
        // have evicted meanwhile and an index file; the roll in progress one file more.
        let transient = 2 * crate::file_cache::BACKGROUND_FSYNCS_MAX + 2;
        assert!(
            peak <= cap + transient,
            "peak {peak} descriptors into the log directory, cap {cap}"
        );
        assert!(
            peak >= cap / 2,
            "the measurement sees the cache's descriptors ({peak})"
        );
        assert!(cache.stats().evictions > 0);
        for log in logs {
            log.close().await.unwrap();
        }
    });
}

/// Waits (bounded) for a block reservation running on the blocking thread.
async fn settle(log: &PartitionLog) {
    for _ in 0..500 {
        if !log.reservation_running() {
            return;
        }
        glommio::timer::sleep(std::time::Duration::from_millis(2)).await;
    }
    panic!("a block reservation never finished");
}

#[test]
fn active_segment_blocks_are_reserved_ahead_and_given_back_on_roll() {
    use crate::config::PREALLOCATE_MIN_BYTES;
    use std::os::unix::fs::MetadataExt;
    run(|| async {
        let dir = tempfile::tempdir().unwrap();
        let one = batch(10, 1000, 0);
        let len = one.len() as u64;
        let mut cfg = config(len * 20);
        cfg.preallocate_step_bytes = 256 << 10;
        let log = open(dir.path(), cfg.clone(), false).await;
        log.append_as_leader(&one, 0, 0).await.unwrap();
        settle(&log).await;
        let first = file_path(log.dir(), 0, "log");
        let reserved = |p: &Path| std::fs::metadata(p).unwrap().blocks() * 512;
        // The file's size is what was written, whatever is reserved behind it.
        assert_eq!(std::fs::metadata(&first).unwrap().len(), len);
        let supported = !log.reservation_unsupported();
        if supported {
            assert!(
                reserved(&first) >= len + PREALLOCATE_MIN_BYTES,
                "{}",
                reserved(&first)
            );
        }
        for _ in 1..25 {
            log.append_as_leader(&one, 0, 0).await.unwrap();
            settle(&log).await;
        }
        assert_eq!(log.segment_count(), 2);
        let rolled_size = std::fs::metadata(&first).unwrap().len();
        assert_eq!(rolled_size, len * 20);
        if supported {
            // Released down to the blocks holding data (and an extent tree block or so: the
            // reservations left the file in more extents than its inode holds).
            assert!(
                reserved(&first) < rolled_size + 16384,
                "{} blocks for {} bytes",
                reserved(&first),
                rolled_size
            );
        }
        let before = read_all(&log, 0).await;
        assert_eq!(before.len(), 25);
        // A crash with blocks reserved past the end: recovery sees only the written batches.
        drop(log);
        let log = open(dir.path(), cfg.clone(), false).await;
        assert_eq!(log.log_end_offset(), 250);
        assert_eq!(read_all(&log, 0).await, before);
        log.append_as_leader(&one, 0, 0).await.unwrap();
        assert_eq!(log.log_end_offset(), 260);
        log.close().await.unwrap();

        // Kafka's `preallocate`: a new segment reserves its whole size at once.
        let whole = tempfile::tempdir().unwrap();
        let mut cfg = config(1 << 20);
        cfg.preallocate = true;
        let log = open(whole.path(), cfg, false).await;
        log.append_as_leader(&one, 0, 0).await.unwrap();
        settle(&log).await;
        let path = file_path(log.dir(), 0, "log");
        assert_eq!(std::fs::metadata(&path).unwrap().len(), len);
        if supported {
            assert!(reserved(&path) >= 1 << 20, "{}", reserved(&path));
        }
        log.close().await.unwrap();
    });
}

/// glommio 0.9 opens relative paths against descriptor -1 (EBADF); a log opened at a relative
/// directory must still work (the README's `log.dirs=./weir-data` failed this way).
#[test]
fn a_log_opened_at_a_relative_directory_works() {
    let tmp = tempfile::tempdir().unwrap();
    // A relative path to the temporary directory, without changing the process's working
    // directory (tests run in parallel threads).
    let cwd = std::env::current_dir().unwrap();
    let mut rel = PathBuf::new();
    for _ in cwd.components().skip(1) {
        rel.push("..");
    }
    rel.push(tmp.path().strip_prefix("/").unwrap());
    rel.push("t-0");
    assert!(rel.is_relative());
    run(move || async move {
        let log = PartitionLog::open(
            rel,
            TopicPartition::new("t", 0),
            config(1 << 20),
            SegmentFileCache::new(8),
            false,
        )
        .await
        .expect("open at a relative directory");
        log.append_as_leader(&batch(3, 10, 1), 0, 1).await.unwrap();
        log.flush().await.unwrap();
        assert!(log.dir().is_absolute());
        assert_eq!(log.log_end_offset(), 3);
        log.close().await.unwrap();
    });
    assert!(tmp
        .path()
        .join("t-0")
        .join("00000000000000000000.log")
        .exists());
}

/// Issue 12: a long poll that times out drops its wait; the log must not keep its waker (each
/// holds its task's memory, and an idle log is never notified to clear them).
#[test]
fn abandoned_waits_leave_no_waiter_behind_and_a_live_one_still_wakes() {
    run(|| async {
        let dir = tempfile::tempdir().unwrap();
        let log = open(dir.path(), config(1 << 20), false).await;
        // Long polls on an idle log, each in a task of its own as the broker runs them, each
        // given up after a millisecond.
        let polls: Vec<_> = (0..500)
            .map(|_| {
                let log = log.clone();
                glommio::spawn_local(async move {
                    let hw = log.high_watermark();
                    let woken = async {
                        log.wait_for_progress(Offset::MAX, hw).await;
                        true
                    };
                    let timed_out = async {
                        glommio::timer::sleep(std::time::Duration::from_millis(1)).await;
                        false
                    };
                    futures_lite::future::or(woken, timed_out).await
                })
            })
            .collect();
        for p in polls {
            assert!(!p.await, "nothing changed the log, so every poll timed out");
        }
        assert_eq!(
            log.progress.waiting(),
            0,
            "timed-out waits left wakers behind"
        );

        // A wait still in progress is registered once, and an append wakes it.
        let end = log.log_end_offset();
        let live = glommio::spawn_local({
            let log = log.clone();
            async move { log.wait_for_progress(end, log.high_watermark()).await }
        });
        while log.progress.waiting() == 0 {
            futures_lite::future::yield_now().await;
        }
        assert_eq!(log.progress.waiting(), 1);
        log.append_as_leader(&batch(1, 10, 1000), 3, 0)
            .await
            .unwrap();
        let bound = async {
            glommio::timer::sleep(std::time::Duration::from_secs(10)).await;
            panic!("the append did not wake the live wait");
        };
        futures_lite::future::or(live, bound).await;
        assert_eq!(log.progress.waiting(), 0);
    });
}

#[test]
fn retired_segments_are_unlinked_after_file_delete_delay_ms() {
    run(|| async {
        let dir = tempfile::tempdir().unwrap();
        let one = batch(1, 500, 1_000);
        let mut cfg = config(one.len() as u64);
        cfg.retention_ms = 1_000;
        cfg.file_delete_delay_ms = 300;
        let log = open(dir.path(), cfg, false).await;
        for _ in 0..4 {
            log.append_as_leader(&one, 0, 1_000).await.unwrap();
        }
        log.set_high_watermark(4);
        let retired = |log: &PartitionLog| {
            std::fs::read_dir(log.dir())
                .unwrap()
                .filter(|e| {
                    e.as_ref()
                        .unwrap()
                        .file_name()
                        .to_string_lossy()
                        .ends_with(".deleted")
                })
                .count()
        };
        let out = log.enforce_retention(100_000).await.unwrap();
        assert!(out.deleted_segments >= 3, "{out:?}");
        // Renamed at once, still there: the unlink waits for file.delete.delay.ms.
        assert_eq!(retired(&log), out.deleted_segments * 3);
        for _ in 0..200 {
            if retired(&log) == 0 {
                break;
            }
            glommio::timer::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert_eq!(retired(&log), 0, "unlinked after the delay");

        // file.delete.delay.ms=0: unlinked before retention returns.
        let mut cfg = log.config();
        cfg.file_delete_delay_ms = 0;
        log.set_config(cfg);
        for _ in 0..3 {
            log.append_as_leader(&one, 0, 1_000).await.unwrap();
        }
        log.set_high_watermark(log.log_end_offset());
        let out = log.enforce_retention(200_000).await.unwrap();
        assert!(out.deleted_segments >= 2, "{out:?}");
        assert_eq!(retired(&log), 0);
        log.close().await.unwrap();
    });
}

#[test]
fn a_full_index_rolls_the_segment() {
    run(|| async {
        let dir = tempfile::tempdir().unwrap();
        let one = batch(1, 300, 0);
        let mut cfg = config(1 << 30);
        // An index entry every batch (interval below a batch), two entries a segment.
        cfg.index_interval_bytes = 1;
        cfg.segment_index_bytes = 16;
        let log = open(dir.path(), cfg, false).await;
        for _ in 0..12 {
            log.append_as_leader(&one, 0, 0).await.unwrap();
        }
        // 16 bytes hold two offset entries but one time entry (12 bytes each): the second
        // batch of a segment adds the first entries (none is added for the first batch), and
        // the time index is then full.
        assert_eq!(log.segment_bases(), [0, 2, 4, 6, 8, 10]);
        assert_eq!(read_all(&log, 0).await.len(), 12);
        // 24 bytes: three offset entries, two time entries; equal timestamps add one time
        // entry a segment, so the offset index fills first: four batches a segment.
        let mut cfg = log.config();
        cfg.segment_index_bytes = 24;
        log.set_config(cfg);
        for _ in 0..8 {
            log.append_as_leader(&one, 0, 0).await.unwrap();
        }
        assert_eq!(log.segment_bases(), [0, 2, 4, 6, 8, 10, 14, 18]);
        log.close().await.unwrap();
    });
}

#[test]
fn roll_jitter_is_per_segment_and_bounded() {
    run(|| async {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = config(1 << 30);
        let log = open(dir.path(), cfg.clone(), false).await;
        assert_eq!(log.roll_jitter_ms(0, &cfg), 0, "no jitter by default");
        cfg.segment_ms = 1_000;
        cfg.segment_jitter_ms = 5_000;
        let jitters: Vec<i64> = (0..64).map(|b| log.roll_jitter_ms(b * 100, &cfg)).collect();
        assert!(
            jitters.iter().all(|j| (0..1_000).contains(j)),
            "{jitters:?}"
        );
        assert!(
            jitters.iter().any(|j| *j != jitters[0]),
            "differs by segment"
        );
        assert_eq!(jitters[5], log.roll_jitter_ms(500, &cfg), "stable");

        // A segment rolls by age once segment.ms minus its jitter has passed, age as Kafka
        // measures it: the incoming batch's timestamp less the segment's first.
        let base_jitter = log.roll_jitter_ms(0, &cfg);
        let roll_after = 1_000 - base_jitter;
        log.set_config(cfg);
        log.append_as_leader(&batch(1, 10, 0), 0, 0).await.unwrap();
        log.append_as_leader(&batch(1, 10, roll_after), 0, 0)
            .await
            .unwrap();
        assert_eq!(log.segment_count(), 1);
        log.append_as_leader(&batch(1, 10, roll_after + 1), 0, 0)
            .await
            .unwrap();
        assert_eq!(log.segment_count(), 2);
        log.close().await.unwrap();
    });
}
