//! Deterministic reproductions of bugs the property tests (`log_properties.rs`) found.

use std::rc::Rc;
use weir_storage::batch::{build_batch, split_and_validate, ProducerFields, Record};
use weir_storage::{LogConfig, Offset, PartitionLog, SegmentFileCache, TopicPartition};

fn run<F: std::future::Future<Output = ()> + 'static>(f: impl FnOnce() -> F + Send + 'static) {
    weir_storage::heartbeat::run_on_executor(f)
}

fn batch(records: usize, value_len: usize) -> Vec<u8> {
    let records: Vec<Record> = (0..records)
        .map(|i| Record {
            key: None,
            value: Some(vec![b'x'; value_len]),
            headers: vec![],
            timestamp_delta: i as i64,
        })
        .collect();
    build_batch(&records, 1_000, ProducerFields::NONE)
}

async fn open(dir: &std::path::Path, config: LogConfig) -> Rc<PartitionLog> {
    PartitionLog::open(
        dir.join("t-0"),
        TopicPartition::new("t", 0),
        config,
        SegmentFileCache::new(64),
        false,
    )
    .await
    .expect("open")
}

/// Truncating into a rolled segment looked its offset index up (caching it with the open file),
/// cut the file, and left that index cached. Once the segment rolled again, reads located
/// batches through the stale positions and returned regions that cut batches in half.
#[test]
fn reads_after_truncating_into_a_rolled_segment_return_whole_batches() {
    run(|| async {
        let dir = tempfile::tempdir().unwrap();
        let config = LogConfig {
            segment_bytes: 4096,
            index_interval_bytes: 1,
            ..LogConfig::default()
        };
        let log = open(dir.path(), config).await;
        for _ in 0..12 {
            log.append_as_leader(&batch(4, 100), 0, 0).await.unwrap();
        }
        assert!(log.segment_count() > 1);
        log.truncate_to(10).await.unwrap();
        assert_eq!(log.segment_bases(), vec![0]);
        // Batches of another size, so the old index positions fall inside them.
        while log.segment_count() < 2 {
            log.append_as_leader(&batch(3, 37), 0, 0).await.unwrap();
        }
        let end = log.log_end_offset();
        for fetch in 0..end {
            for max_bytes in [1, 150, 700, 2000] {
                let out = log.read(fetch, max_bytes, Offset::MAX, true).await.unwrap();
                let region = out.region.expect("data below the log end");
                let bytes = region.read_to_vec().await.unwrap();
                let batches = split_and_validate(&bytes)
                    .unwrap_or_else(|e| panic!("read({fetch}, {max_bytes}): {e}"));
                let first = &batches[0].1;
                assert!(first.base_offset <= fetch && fetch <= first.last_offset());
            }
        }
        log.close().await.unwrap();
    });
}

/// Time retention rolls the active segment and deletes it at once, while the roll's background
/// fsync of that segment is still running; the fsync then either failed on the removed files and
/// took the log offline, or re-created index files for the deleted segment.
#[test]
fn retention_deleting_a_just_rolled_segment_keeps_the_log_online() {
    run(|| async {
        let dir = tempfile::tempdir().unwrap();
        let config = LogConfig {
            retention_ms: 1_000,
            ..LogConfig::default()
        };
        let log = open(dir.path(), config).await;
        for _ in 0..20 {
            log.append_as_leader(&batch(2, 1000), 0, 0).await.unwrap();
        }
        log.set_high_watermark(log.log_end_offset());
        let out = log.enforce_retention(1_000_000).await.unwrap();
        assert_eq!(out.deleted_segments, 1);
        assert_eq!(out.log_start_offset, 40);
        let info = log.append_as_leader(&batch(1, 10), 0, 0).await.unwrap();
        assert_eq!(info.first_offset, 40);
        assert!(!log.is_offline());
        log.close().await.unwrap();
        assert!(!log.is_offline(), "the background fsync ended well");
        let mut names: Vec<String> = std::fs::read_dir(log.dir())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.ends_with("index") || n.ends_with(".log"))
            .collect();
        names.sort();
        assert_eq!(
            names,
            [
                "00000000000000000040.index",
                "00000000000000000040.log",
                "00000000000000000040.timeindex"
            ],
            "no index files of the deleted segment"
        );
    });
}

/// Closing right after a roll: close returned while the rolled segment's fsync was still
/// running (the caller may then vouch for it with the clean-shutdown marker), and that fsync
/// then found the log closed and reported a failure.
#[test]
fn close_waits_for_the_fsync_of_a_rolled_segment() {
    run(|| async {
        let dir = tempfile::tempdir().unwrap();
        let config = LogConfig {
            segment_bytes: 4096,
            ..LogConfig::default()
        };
        let log = open(dir.path(), config).await;
        for _ in 0..3 {
            log.append_as_leader(&batch(2, 1500), 0, 0).await.unwrap();
        }
        assert!(log.segment_count() > 1);
        log.close().await.unwrap();
        assert!(!log.is_offline(), "the background fsync ended well");
    });
}
