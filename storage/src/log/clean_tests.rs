//! Tests of the compaction cleaner against real directories, checked against a model of what
//! was written: after cleaning, a reader from the start sees exactly the latest record per key
//! (in the cleaned range), each at its original offset with its original value.

use super::tests::{open, read_all, run};
use super::*;
use crate::batch::{build_batch, ProducerFields, Record};
use crate::records::BatchRecords;
use std::collections::BTreeMap;

fn compact_config(segment_bytes: u64) -> LogConfig {
    LogConfig {
        segment_bytes,
        index_interval_bytes: 128,
        compact: true,
        cleanup_delete: false,
        ..LogConfig::default()
    }
}

fn force(now_ms: i64) -> CleanOptions {
    CleanOptions {
        now_ms,
        dedupe_buffer_bytes: 1 << 20,
        force: true,
    }
}

/// A batch of `(key, value)` records; `None` values are tombstones.
fn keyed(records: &[(&str, Option<String>)], ts: i64) -> Vec<u8> {
    let records: Vec<Record> = records
        .iter()
        .enumerate()
        .map(|(i, (k, v))| Record {
            key: Some(k.as_bytes().to_vec()),
            value: v.as_ref().map(|v| v.as_bytes().to_vec()),
            headers: vec![],
            timestamp_delta: i as i64,
        })
        .collect();
    build_batch(&records, ts, ProducerFields::NONE)
}

/// Every record readable from the log start: offset → (key, value).
async fn visible(log: &PartitionLog) -> BTreeMap<Offset, (String, Option<String>)> {
    let mut out = BTreeMap::new();
    for (_, _, bytes) in read_all(log, log.log_start_offset()).await {
        let b = BatchRecords::parse(&bytes).unwrap();
        for r in &b.records {
            let key = String::from_utf8(b.key(r).unwrap().to_vec()).unwrap();
            let value = b.value(r).map(|v| String::from_utf8(v.to_vec()).unwrap());
            assert!(
                out.insert(r.offset, (key, value)).is_none(),
                "offset seen twice"
            );
        }
    }
    out
}

/// Writes `rounds` rounds of updates to `keys` keys, one batch per round, and makes everything
/// committed and durable (the cleaner only touches such segments).
async fn write_rounds(
    log: &Rc<PartitionLog>,
    model: &mut BTreeMap<Offset, (String, Option<String>)>,
    rounds: std::ops::Range<usize>,
    keys: usize,
) {
    for round in rounds {
        let records: Vec<(String, Option<String>)> = (0..keys)
            .filter(|k| (k + round) % 3 != 0) // not every key in every round
            .map(|k| (format!("k{k}"), Some(format!("v{round}-{k}"))))
            .collect();
        let refs: Vec<(&str, Option<String>)> = records
            .iter()
            .map(|(k, v)| (k.as_str(), v.clone()))
            .collect();
        let info = log
            .append_as_leader(&keyed(&refs, 1000 + round as i64), 0, 0)
            .await
            .unwrap();
        for (i, (k, v)) in records.into_iter().enumerate() {
            model.insert(info.first_offset + i as i64, (k, v));
        }
    }
    log.set_high_watermark(log.log_end_offset());
    log.flush().await.unwrap();
}

/// What a reader must see after cleaning below `clean_end`: the latest record of each key among
/// offsets below it (tombstones included unless dropped), and everything at or above it.
fn expected_after_clean(
    model: &BTreeMap<Offset, (String, Option<String>)>,
    clean_end: Offset,
    drop_tombstones: bool,
) -> BTreeMap<Offset, (String, Option<String>)> {
    // The cleaner never reads the active segment: a key written again there still keeps its
    // latest record below `clean_end` (Kafka's behaviour too).
    let mut latest: BTreeMap<&str, Offset> = BTreeMap::new();
    for (o, (k, _)) in model.range(..clean_end) {
        latest.insert(k, *o);
    }
    model
        .iter()
        .filter(|(o, (k, v))| {
            **o >= clean_end || (latest[k.as_str()] == **o && !(drop_tombstones && v.is_none()))
        })
        .map(|(o, r)| (*o, r.clone()))
        .collect()
}

#[test]
fn cleaning_keeps_the_latest_record_per_key_at_its_offset() {
    run(|| async {
        let dir = tempfile::tempdir().unwrap();
        let log = open(dir.path(), compact_config(600), false).await;
        let mut model = BTreeMap::new();
        write_rounds(&log, &mut model, 0..40, 6).await;
        let end = log.log_end_offset();
        let segments_before = log.segment_count();
        assert!(segments_before > 5, "{segments_before} segments");
        assert_eq!(visible(&log).await, model);

        let outcome = log.clean(force(0)).await.unwrap().expect("cleaned");
        let active_base = *log.segment_bases().last().unwrap();
        assert_eq!(
            outcome.first_dirty, active_base,
            "cleaned up to the active segment"
        );
        assert!(outcome.records_removed > 0);
        assert!(outcome.bytes_after < outcome.bytes_before);
        assert_eq!(
            log.log_end_offset(),
            end,
            "cleaning never moves the log end"
        );
        assert_eq!(
            visible(&log).await,
            expected_after_clean(&model, active_base, false)
        );

        // A second pass after more writes merges the shrunken segments.
        let segments_after_first = log.segment_count();
        write_rounds(&log, &mut model, 40..80, 6).await;
        let outcome = log.clean(force(0)).await.unwrap().expect("cleaned");
        let active_base = *log.segment_bases().last().unwrap();
        assert_eq!(outcome.first_dirty, active_base);
        assert!(
            outcome.segments_after < outcome.segments_before,
            "{outcome:?}"
        );
        let expected = expected_after_clean(&model, active_base, false);
        assert_eq!(visible(&log).await, expected);
        assert!(log.segment_count() < segments_after_first + 10);

        // A read from an offset the cleaner removed answers the next surviving batch.
        let gone = (0..active_base)
            .find(|o| !expected.contains_key(o))
            .expect("some offset was removed");
        let r = log.read(gone, 1 << 20, Offset::MAX, true).await.unwrap();
        let first = r.region.expect("data after a removed offset").first_offset;
        let next_kept = *expected.range(gone..).next().unwrap().0;
        assert!(first <= next_kept);

        // Nothing dirty enough: with the default ratio and nothing new, no pass runs.
        let opts = CleanOptions {
            force: false,
            ..force(0)
        };
        assert_eq!(log.clean(opts).await.unwrap(), None);

        // The cleaned log reopens to the same records, after a clean shutdown or a crash.
        log.close().await.unwrap();
        let log = open(dir.path(), compact_config(600), true).await;
        assert_eq!(visible(&log).await, expected);
        assert_eq!(log.log_end_offset(), model.keys().last().unwrap() + 1);
        drop(log);
        crate::checkpoint::PartitionCheckpoint::remove_files(&dir.path().join("t-0")).unwrap();
        let log = open(dir.path(), compact_config(600), false).await;
        assert_eq!(visible(&log).await, expected);
        log.close().await.unwrap();
    });
}

#[test]
fn tombstones_stay_for_delete_retention_then_go() {
    run(|| async {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = compact_config(300);
        cfg.delete_retention_ms = 0;
        let log = open(dir.path(), cfg, false).await;
        let mut model = BTreeMap::new();
        let put = |k: &str, v: Option<&str>| (k.to_owned(), v.map(str::to_owned));
        for (i, records) in [
            vec![put("a", Some("1")), put("b", Some("1"))],
            vec![put("a", None), put("c", Some("1"))],
            vec![put("d", Some("1"))],
            vec![put("e", Some("1"))],
        ]
        .into_iter()
        .enumerate()
        {
            let refs: Vec<(&str, Option<String>)> = records
                .iter()
                .map(|(k, v)| (k.as_str(), v.clone()))
                .collect();
            let info = log
                .append_as_leader(&keyed(&refs, 10 + i as i64), 0, 0)
                .await
                .unwrap();
            for (j, r) in records.into_iter().enumerate() {
                model.insert(info.first_offset + j as i64, r);
            }
            log.roll_for_test().await;
        }
        log.set_high_watermark(log.log_end_offset());
        log.flush().await.unwrap();
        // First pass: the tombstone is cleaned for the first time and stays.
        log.clean(force(0)).await.unwrap().expect("cleaned");
        let seen = visible(&log).await;
        assert!(
            seen.values().any(|(k, v)| k == "a" && v.is_none()),
            "{seen:?}"
        );
        assert!(!seen.values().any(|(k, v)| k == "a" && v.is_some()));
        // Later, with delete.retention.ms=0 elapsed, the next pass removes it.
        log.append_as_leader(&keyed(&[("f", Some("1".into()))], 20), 0, 0)
            .await
            .unwrap();
        log.roll_for_test().await;
        log.set_high_watermark(log.log_end_offset());
        log.flush().await.unwrap();
        let outcome = log.clean(force(0)).await.unwrap().expect("cleaned");
        assert_eq!(outcome.tombstones_removed, 1, "{outcome:?}");
        let seen = visible(&log).await;
        assert!(!seen.values().any(|(k, _)| k == "a"), "{seen:?}");
        for k in ["b", "c", "d", "e", "f"] {
            assert!(seen.values().any(|(key, _)| key == k), "{k} kept");
        }
        log.close().await.unwrap();
    });
}

#[test]
fn compressed_batches_are_rewritten_with_their_codec() {
    run(|| async {
        let dir = tempfile::tempdir().unwrap();
        let log = open(dir.path(), compact_config(1 << 20), false).await;
        for (round, codec) in [1u8, 4, 3, 2, 1, 4].into_iter().enumerate() {
            let v = format!("r{round}");
            let plain = keyed(
                &[("x", Some(v.clone())), (&format!("only{round}"), Some(v))],
                100,
            );
            let batch = crate::records::with_codec(&plain, codec);
            log.append_as_leader(&batch, 0, 0).await.unwrap();
            log.roll_for_test().await;
        }
        log.set_high_watermark(log.log_end_offset());
        log.flush().await.unwrap();
        log.clean(force(0)).await.unwrap().expect("cleaned");
        let batches = read_all(&log, 0).await;
        let mut xs = 0;
        for (i, (_, _, bytes)) in batches.iter().enumerate() {
            let b = BatchRecords::parse(bytes).unwrap();
            // Round i was written with this codec; every batch keeps its own.
            assert_eq!(b.header.compression(), [1u8, 4, 3, 2, 1, 4][i]);
            xs += b.records.iter().filter(|r| b.key(r) == Some(b"x")).count();
        }
        assert_eq!(batches.len(), 6, "each batch keeps its unique key");
        assert_eq!(xs, 1, "one x survives: the latest");
        log.close().await.unwrap();
    });
}

#[test]
fn a_swap_interrupted_by_a_crash_is_finished_on_open() {
    run(|| async {
        let dir = tempfile::tempdir().unwrap();
        let log = open(dir.path(), compact_config(500), false).await;
        let mut model = BTreeMap::new();
        write_rounds(&log, &mut model, 0..30, 5).await;
        log.clean(force(0)).await.unwrap().expect("first pass");
        write_rounds(&log, &mut model, 30..60, 5).await;
        // The directory as it is before the second (merging) pass.
        let part = dir.path().join("t-0");
        let before = dir.path().join("before");
        copy_dir(&part, &before);
        let visible_before = visible(&log).await;
        let outcome = log.clean(force(0)).await.unwrap().expect("second pass");
        assert!(outcome.segments_after < outcome.segments_before);
        let expected = visible(&log).await;
        let bases = log.segment_bases();
        log.close().await.unwrap();

        // Rebuild the moment after each swap's marker was made durable: old segments still in
        // place, cleaned files under their temporary names.
        let crashed = dir.path().join("crashed").join("t-0");
        copy_dir(&before, &crashed);
        for w in bases.windows(2).filter(|w| w[1] <= outcome.first_dirty) {
            let (base, end) = (w[0], w[1]);
            for suffix in ["log", "index", "timeindex"] {
                let name = crate::segment::file_name(base, suffix);
                std::fs::copy(part.join(&name), crashed.join(format!("{name}.cleaned"))).unwrap();
            }
            std::fs::write(
                crashed.join(crate::segment::file_name(base, "cleaner-swap")),
                format!("{end}\n"),
            )
            .unwrap();
        }
        let log = open(crashed.parent().unwrap(), compact_config(500), false).await;
        assert_eq!(visible(&log).await, expected);
        assert_eq!(log.segment_bases(), bases);
        let leftovers: Vec<_> = std::fs::read_dir(&crashed)
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.ends_with(".cleaned") || n.ends_with(".cleaner-swap"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
        log.close().await.unwrap();

        // A crash before any marker: the cleaned files are dropped and the old log stays.
        let early = dir.path().join("early").join("t-0");
        copy_dir(&before, &early);
        let first = bases[0];
        std::fs::copy(
            part.join(crate::segment::file_name(first, "log")),
            early.join(format!(
                "{}.cleaned",
                crate::segment::file_name(first, "log")
            )),
        )
        .unwrap();
        let log = open(early.parent().unwrap(), compact_config(500), false).await;
        assert_eq!(visible(&log).await, visible_before);
        log.close().await.unwrap();
    });
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

impl PartitionLog {
    /// Closes the active segment now (as a full segment or `segment.ms` would).
    async fn roll_for_test(self: &Rc<Self>) {
        let _permit = self.permit().await.unwrap();
        let end = self.log_end_offset();
        self.roll(end).await.unwrap();
    }
}

#[test]
fn segments_the_cleaner_emptied_go_with_retention_under_compact_delete() {
    run(|| async {
        let dir = tempfile::tempdir().unwrap();
        // Segments too large to merge: each is cleaned on its own.
        let mut cfg = compact_config(100);
        cfg.cleanup_delete = true;
        let log = open(dir.path(), cfg, false).await;
        // Every segment rewrites the same key: after cleaning, all but the last are empty.
        for round in 0..5 {
            log.append_as_leader(&keyed(&[("a", Some(format!("{round}")))], 10), 0, 0)
                .await
                .unwrap();
            log.roll_for_test().await;
        }
        log.set_high_watermark(log.log_end_offset());
        log.flush().await.unwrap();
        log.clean(force(0)).await.unwrap().expect("cleaned");
        let seen = visible(&log).await;
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[&4].1.as_deref(), Some("4"));
        let before = log.segment_count();
        // Nothing has aged past retention.ms (7 days); the emptied segments go all the same.
        let outcome = log.enforce_retention(20).await.unwrap();
        assert!(outcome.deleted_segments >= 4, "{outcome:?}");
        assert_eq!(log.segment_count(), before - outcome.deleted_segments);
        assert_eq!(log.log_start_offset(), 4);
        assert_eq!(visible(&log).await, seen);
        log.close().await.unwrap();
    });
}

fn lcg(state: &mut u64) -> u64 {
    *state = state
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    *state >> 33
}

#[test]
fn random_workloads_match_the_model_across_passes_and_reopens() {
    for seed in 1..=10u64 {
        run(move || async move {
            let dir = tempfile::tempdir().unwrap();
            let mut rng = seed;
            let segment_bytes = 300 + lcg(&mut rng) % 900;
            let cfg = compact_config(segment_bytes);
            let mut log = open(dir.path(), cfg.clone(), false).await;
            let mut model = BTreeMap::new();
            let mut clean_end: Offset = 0;
            for round in 0..6 {
                for _ in 0..(5 + lcg(&mut rng) % 25) {
                    let records: Vec<(String, Option<String>)> = (0..1 + lcg(&mut rng) % 4)
                        .map(|_| {
                            let key = format!("k{}", lcg(&mut rng) % 12);
                            // One record in seven is a tombstone.
                            let die = lcg(&mut rng) % 7;
                            let value = (die >= 1).then(|| format!("v{}", lcg(&mut rng) % 1000));
                            (key, value)
                        })
                        .collect();
                    let refs: Vec<(&str, Option<String>)> = records
                        .iter()
                        .map(|(k, v)| (k.as_str(), v.clone()))
                        .collect();
                    let codec = (lcg(&mut rng) % 5) as u8;
                    let batch = crate::records::with_codec(&keyed(&refs, 1_000), codec);
                    let info = log.append_as_leader(&batch, 0, 0).await.unwrap();
                    for (i, r) in records.into_iter().enumerate() {
                        model.insert(info.first_offset + i as i64, r);
                    }
                }
                log.set_high_watermark(log.log_end_offset());
                log.flush().await.unwrap();
                if let Some(outcome) = log.clean(force(0)).await.unwrap() {
                    clean_end = outcome.first_dirty;
                }
                assert_eq!(
                    visible(&log).await,
                    expected_after_clean(&model, clean_end, false),
                    "seed {seed}, round {round}, segment.bytes {segment_bytes}"
                );
                if round % 2 == 1 {
                    // Reopen, alternately after a clean shutdown and as after a crash.
                    log.close().await.unwrap();
                    drop(log);
                    let clean = round % 4 == 1;
                    if !clean {
                        // Losing the checkpoint loses the cleaner's position, not what it did:
                        // the next pass re-maps everything, with the same result.
                        crate::checkpoint::PartitionCheckpoint::remove_files(
                            &dir.path().join("t-0"),
                        )
                        .unwrap();
                    }
                    log = open(dir.path(), cfg.clone(), clean).await;
                    assert_eq!(
                        visible(&log).await,
                        expected_after_clean(&model, clean_end, false),
                        "seed {seed}, round {round}: reopened (clean {clean})"
                    );
                }
            }
            log.close().await.unwrap();
        });
    }
}

/// Runs the test's own file operations (setup, checks) off the guarded executor thread.
async fn on_blocking_thread<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    glommio::executor().spawn_blocking(f).await
}

/// Issue 12: no file-system call of a log (open with leftovers to remove, appends and rolls,
/// two cleaner passes, finishing a crashed cleaner swap, retention, close, delete) runs on the
/// executor's own thread, where it would block every partition of the core; each must go
/// through io_uring or glommio's blocking thread. A direct call traps and is counted.
#[test]
fn a_logs_file_operations_never_block_the_executor_thread() {
    run(|| async {
        crate::testing::forbid_file_syscalls();
        let dir = on_blocking_thread(|| tempfile::tempdir().unwrap()).await;
        let root = dir.path().to_path_buf();
        let log = open(&root, compact_config(500), false).await;
        let mut model = BTreeMap::new();
        write_rounds(&log, &mut model, 0..30, 5).await;
        log.clean(force(0)).await.unwrap().expect("first pass");
        write_rounds(&log, &mut model, 30..60, 5).await;
        let part = root.join("t-0");
        let before = root.join("before");
        on_blocking_thread({
            let (part, before) = (part.clone(), before.clone());
            move || copy_dir(&part, &before)
        })
        .await;
        let outcome = log.clean(force(0)).await.unwrap().expect("second pass");
        let expected = visible(&log).await;
        let bases = log.segment_bases();
        log.close().await.unwrap();

        // What a crash right after the second pass's swap markers leaves, plus leftovers.
        let crashed = root.join("crashed").join("t-0");
        on_blocking_thread({
            let crashed = crashed.clone();
            move || {
                copy_dir(&before, &crashed);
                for w in bases.windows(2).filter(|w| w[1] <= outcome.first_dirty) {
                    let (base, end) = (w[0], w[1]);
                    for suffix in ["log", "index", "timeindex"] {
                        let name = crate::segment::file_name(base, suffix);
                        std::fs::copy(part.join(&name), crashed.join(format!("{name}.cleaned")))
                            .unwrap();
                    }
                    let marker = crate::segment::file_name(base, "cleaner-swap");
                    std::fs::write(crashed.join(marker), format!("{end}\n")).unwrap();
                }
                std::fs::write(crashed.join("00000000000000000001.log.deleted"), b"x").unwrap();
                std::fs::write(crashed.join("00000000000000099999.index"), b"x").unwrap();
            }
        })
        .await;
        let log = open(crashed.parent().unwrap(), compact_config(500), false).await;
        assert_eq!(visible(&log).await, expected);

        // Retention by size on the same log.
        let mut cfg = log.config();
        cfg.cleanup_delete = true;
        cfg.retention_bytes = 1000;
        log.set_config(cfg);
        log.roll_for_test().await;
        let out = log.enforce_retention(0).await.unwrap();
        assert!(out.deleted_segments > 0);
        log.delete().await.unwrap();

        let (count, first) = crate::testing::trapped_file_syscalls();
        assert_eq!(
            count, 0,
            "{count} file-system calls on the executor thread, the first syscall number {first}"
        );
        on_blocking_thread(move || drop(dir)).await;
    });
}
