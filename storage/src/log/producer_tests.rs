//! The log's idempotent producers: the leader's check in the append path, follower appends,
//! truncation, snapshots at roll and close, and the log start moving.

use super::tests::{open, read_all, run};
use super::*;
use crate::batch::{build_batch, ProducerFields, Record};
use crate::producer::{ProducerInfo, ProducerStateError, SNAPSHOT_SUFFIX};
use std::time::Duration;

const PID: i64 = 4242;
const TS: i64 = 1_700_000_000_000;

/// A batch of `n` records from producer `pid` (epoch, first sequence), as the client sends it.
fn pbatch(pid: i64, epoch: i16, seq: i32, n: usize) -> Vec<u8> {
    let records: Vec<Record> = (0..n)
        .map(|i| Record {
            key: Some(format!("k{i}").into_bytes()),
            value: Some(vec![b'v'; 40]),
            headers: vec![],
            timestamp_delta: i as i64,
        })
        .collect();
    let producer = ProducerFields {
        producer_id: pid,
        producer_epoch: epoch,
        base_sequence: seq,
    };
    build_batch(&records, TS, producer)
}

fn plain(n: usize) -> Vec<u8> {
    pbatch(-1, -1, -1, n)
}

fn cfg(segment_bytes: u64) -> LogConfig {
    super::tests::config(segment_bytes)
}

fn producer_error(r: Result<AppendInfo>) -> ProducerStateError {
    match r {
        Err(StorageError::Producer(e)) => e,
        other => panic!("expected a producer error, got {other:?}"),
    }
}

/// Waits (bounded) until the log end passes `offset`.
async fn wait_for_end(log: &PartitionLog, offset: Offset) {
    glommio::timer::timeout(Duration::from_secs(10), async {
        log.wait_for_progress(offset, Offset::MAX).await;
        Ok(())
    })
    .await
    .expect("the log end moves");
}

/// The state a replay of every batch from the log start gives: what any replica holding these
/// batches must know.
async fn replayed_from_start(log: &PartitionLog) -> Vec<ProducerInfo> {
    let mut state = crate::producer::ProducerStateManager::default();
    for (_, _, bytes) in read_all(log, log.log_start_offset()).await {
        state.rebuild_from_batches([crate::batch::BatchHeader::parse(&bytes).unwrap()]);
    }
    let mut all: Vec<ProducerInfo> = state.producers().collect();
    all.sort_unstable_by_key(|p| p.producer_id);
    all
}

/// Waits (bounded) for the rolls' background tasks, which write their snapshots.
async fn settle(log: &PartitionLog) {
    glommio::timer::timeout(Duration::from_secs(10), async {
        log.progress
            .wait_until(|| (log.state.borrow().background_flushes == 0).then_some(()))
            .await;
        Ok(())
    })
    .await
    .expect("background flushes end");
}

fn snapshot_files(log: &PartitionLog) -> Vec<Offset> {
    let mut found: Vec<Offset> = std::fs::read_dir(log.dir())
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().into_string().unwrap();
            match crate::segment::parse_file_name(&name) {
                Some((o, SNAPSHOT_SUFFIX)) => Some(o),
                _ => None,
            }
        })
        .collect();
    found.sort_unstable();
    found
}

#[test]
fn the_leader_append_answers_a_retry_with_its_original_offsets() {
    run(|| async {
        let dir = tempfile::tempdir().unwrap();
        let log = open(dir.path(), cfg(1 << 20), false).await;
        let a = pbatch(PID, 0, 0, 3);
        let first = log.append_as_leader(&a, 2, TS).await.unwrap();
        assert_eq!((first.first_offset, first.last_offset), (0, 2));
        log.append_as_leader(&plain(2), 2, TS).await.unwrap();
        // The retry: the original offsets and timestamp, nothing appended.
        let again = log.append_as_leader(&a, 2, TS + 10).await.unwrap();
        assert_eq!((again.first_offset, again.last_offset), (0, 2));
        assert_eq!(again.log_append_time_ms, first.max_timestamp);
        assert_eq!(log.log_end_offset(), 5);
        assert_eq!(read_all(&log, 0).await.len(), 2);

        // A gap, an old epoch, a negative sequence: refused, nothing appended.
        assert_eq!(
            producer_error(log.append_as_leader(&pbatch(PID, 0, 9, 1), 2, TS).await),
            ProducerStateError::OutOfOrderSequence {
                producer_id: PID,
                epoch: 0,
                got: 9,
                expected: 3
            }
        );
        log.append_as_leader(&pbatch(PID, 1, 0, 1), 2, TS)
            .await
            .unwrap();
        assert!(matches!(
            producer_error(log.append_as_leader(&pbatch(PID, 0, 3, 1), 2, TS).await),
            ProducerStateError::InvalidProducerEpoch { current: 1, .. }
        ));
        assert!(matches!(
            producer_error(
                log.append_as_leader(&pbatch(PID + 1, 0, -1, 1), 2, TS)
                    .await
            ),
            ProducerStateError::InvalidSequence { .. }
        ));
        assert_eq!(log.log_end_offset(), 6);
        // An unknown producer starts anywhere (KIP-360).
        let info = log
            .append_as_leader(&pbatch(PID + 2, 3, 777, 2), 2, TS)
            .await
            .unwrap();
        assert_eq!(info.first_offset, 6);
        assert_eq!(log.producer(PID + 2).unwrap().last_sequence(), 778);
        assert_eq!(log.producers.state.borrow().in_flight_count(), 0);
        log.close().await.unwrap();
    });
}

#[test]
fn a_request_dropped_mid_append_leaves_its_batch_in_the_log_and_in_the_state() {
    run(|| async {
        let dir = tempfile::tempdir().unwrap();
        let log = open(dir.path(), cfg(1 << 20), false).await;
        log.append_as_leader(&pbatch(PID, 0, 0, 1), 0, TS)
            .await
            .unwrap();
        // Queued (checked, offset 1 assigned) at its first poll, then dropped, as a request task
        // is when its connection closes.
        let b = pbatch(PID, 0, 1, 2);
        let polled = futures_lite::future::poll_once(log.append_as_leader(&b, 0, TS)).await;
        assert!(polled.is_none(), "the write completes later");
        // A batch following it, checked while it is in flight.
        let c = log
            .append_as_leader(&pbatch(PID, 0, 3, 1), 0, TS)
            .await
            .unwrap();
        assert_eq!(c.first_offset, 3);
        wait_for_end(&log, 3).await;
        // The retry of the dropped request: a duplicate, at the offsets its batch got.
        let retry = log.append_as_leader(&b, 0, TS).await.unwrap();
        assert_eq!((retry.first_offset, retry.last_offset), (1, 2));
        assert_eq!(log.log_end_offset(), 4);
        let p = log.producer(PID).unwrap();
        assert_eq!(p.last_sequence(), 3);
        assert_eq!(log.producers.state.borrow().in_flight_count(), 0);
        log.close().await.unwrap();
    });
}

#[test]
fn a_retry_of_a_batch_still_being_written_is_refused_as_retriable() {
    run(|| async {
        let dir = tempfile::tempdir().unwrap();
        let log = open(dir.path(), cfg(1 << 20), false).await;
        let a = pbatch(PID, 0, 0, 1);
        // Both queued in the same round: the second sees the first in flight.
        let (first, retry) = futures_lite::future::zip(
            log.append_as_leader(&a, 0, TS),
            log.append_as_leader(&a, 0, TS),
        )
        .await;
        assert_eq!(first.unwrap().first_offset, 0);
        assert!(matches!(
            producer_error(retry),
            ProducerStateError::DuplicateInFlight { .. }
        ));
        assert_eq!(
            log.append_as_leader(&a, 0, TS).await.unwrap().first_offset,
            0
        );
        assert_eq!(log.log_end_offset(), 1);
    });
}

#[test]
fn a_refused_batch_rolls_back_the_earlier_batches_of_its_request() {
    run(|| async {
        let dir = tempfile::tempdir().unwrap();
        let log = open(dir.path(), cfg(1 << 20), false).await;
        let mut request = pbatch(PID, 0, 0, 2);
        request.extend(pbatch(PID, 0, 5, 1)); // a gap after the first batch
        assert!(matches!(
            producer_error(log.append_as_leader(&request, 0, TS).await),
            ProducerStateError::OutOfOrderSequence { expected: 2, .. }
        ));
        assert_eq!(log.producers.state.borrow().in_flight_count(), 0);
        assert_eq!(log.log_end_offset(), 0);
        // Nothing of it counts: the producer is still unknown, its sequence 0 is not taken.
        let mut good = pbatch(PID, 0, 0, 2);
        good.extend(pbatch(PID, 0, 2, 1));
        let info = log.append_as_leader(&good, 0, TS).await.unwrap();
        assert_eq!((info.first_offset, info.last_offset), (0, 2));
        assert_eq!(log.producer(PID).unwrap().batches.len(), 2);
    });
}

/// Failover: the follower's producer state comes from the batches it copied, so the new leader
/// answers the producer's retry with the offsets the old leader gave.
#[test]
fn a_follower_rebuilds_producer_state_so_a_new_leader_answers_a_retry() {
    run(|| async {
        let dir = tempfile::tempdir().unwrap();
        let leader = open(&dir.path().join("leader"), cfg(1 << 20), false).await;
        let follower = open(&dir.path().join("follower"), cfg(1 << 20), false).await;
        let mut sent = Vec::new();
        for seq in 0..7 {
            let b = pbatch(PID, 0, seq * 2, 2);
            let info = leader.append_as_leader(&b, 0, TS).await.unwrap();
            sent.push((b, info));
            leader
                .append_as_leader(&pbatch(PID + 1, 4, seq, 1), 0, TS)
                .await
                .unwrap();
            leader.append_as_leader(&plain(1), 0, TS).await.unwrap();
        }
        // The follower copies the leader's bytes, as fetched: some batches at a time.
        let fetched: Vec<Vec<u8>> = read_all(&leader, 0)
            .await
            .into_iter()
            .map(|(_, _, b)| b)
            .collect();
        for chunk in fetched.chunks(4) {
            let bytes = bytes::Bytes::from(chunk.concat());
            follower.append_bytes_as_follower(bytes, TS).await.unwrap();
        }
        assert_eq!(follower.log_end_offset(), leader.log_end_offset());
        assert_eq!(follower.producer_infos(), leader.producer_infos());

        // The follower becomes leader (epoch 1); the producer retries its last five batches.
        let end = follower.log_end_offset();
        for (b, original) in &sent[2..] {
            let info = follower.append_as_leader(b, 1, TS + 99).await.unwrap();
            assert_eq!(
                (info.first_offset, info.last_offset),
                (original.first_offset, original.last_offset)
            );
        }
        assert_eq!(follower.log_end_offset(), end, "no retry was appended");
        // The sixth back is out of the window: out of order, as on the old leader.
        assert!(matches!(
            producer_error(follower.append_as_leader(&sent[1].0, 1, TS).await),
            ProducerStateError::OutOfOrderSequence { expected: 14, .. }
        ));
        // And the producer carries on where it was.
        let next = follower
            .append_as_leader(&pbatch(PID, 0, 14, 1), 1, TS)
            .await
            .unwrap();
        assert_eq!(next.first_offset, end);
        // The other producer's epoch came over too.
        assert!(matches!(
            producer_error(
                follower
                    .append_as_leader(&pbatch(PID + 1, 3, 0, 1), 1, TS)
                    .await
            ),
            ProducerStateError::InvalidProducerEpoch { current: 4, .. }
        ));
    });
}

#[test]
fn truncation_below_a_producers_last_batch_rebuilds_its_state_from_the_log() {
    run(|| async {
        let dir = tempfile::tempdir().unwrap();
        // Small segments: rolls leave snapshots above the truncation point.
        let log = open(dir.path(), cfg(600), false).await;
        let mut infos = Vec::new();
        for seq in 0..12 {
            infos.push(
                log.append_as_leader(&pbatch(PID, 0, seq, 1), 0, TS)
                    .await
                    .unwrap(),
            );
            log.append_as_leader(&pbatch(PID + 1, 0, seq, 1), 0, TS)
                .await
                .unwrap();
        }
        settle(&log).await;
        let before = snapshot_files(&log);
        assert!(before.len() >= 3, "snapshots at the rolls: {before:?}");

        // Cut inside the producer's history: its batches from seq 7 on go.
        let cut = infos[7].first_offset;
        log.truncate_to(cut).await.unwrap();
        assert_eq!(log.log_end_offset(), cut);
        assert!(snapshot_files(&log).iter().all(|o| *o <= cut));
        assert_eq!(log.producer_infos(), replayed_from_start(&log).await);
        assert_eq!(log.producer(PID).unwrap().last_sequence(), 6);

        // A retry of a truncated batch is appended again, not acknowledged as a duplicate.
        let again = log
            .append_as_leader(&pbatch(PID, 0, 7, 1), 0, TS)
            .await
            .unwrap();
        assert_eq!(again.first_offset, cut);
        assert_eq!(log.log_end_offset(), cut + 1);
        // A gap after the truncation is out of order, as Kafka decides it.
        assert_eq!(
            producer_error(log.append_as_leader(&pbatch(PID, 0, 9, 1), 0, TS).await),
            ProducerStateError::OutOfOrderSequence {
                producer_id: PID,
                epoch: 0,
                got: 9,
                expected: 8
            }
        );
        // Below every snapshot: rebuilt from the start of the log.
        log.truncate_to(3).await.unwrap();
        assert!(snapshot_files(&log).iter().all(|o| *o <= 3));
        assert_eq!(log.producer_infos(), replayed_from_start(&log).await);
        assert_eq!(log.producer(PID).unwrap().last_sequence(), 1);
        log.close().await.unwrap();

        // What was truncated stays truncated after a restart.
        let log = open(dir.path(), cfg(600), true).await;
        assert_eq!(log.producer(PID).unwrap().last_sequence(), 1);
        assert_eq!(log.producer_infos(), replayed_from_start(&log).await);
    });
}

#[test]
fn truncating_fully_forgets_producers_and_their_snapshots() {
    run(|| async {
        let dir = tempfile::tempdir().unwrap();
        let log = open(dir.path(), cfg(600), false).await;
        for seq in 0..10 {
            log.append_as_leader(&pbatch(PID, 0, seq, 1), 0, TS)
                .await
                .unwrap();
        }
        settle(&log).await;
        assert!(!snapshot_files(&log).is_empty());
        log.truncate_fully_and_start_at(100).await.unwrap();
        assert!(log.producer_infos().is_empty());
        assert!(snapshot_files(&log).is_empty());
        assert!(log.producer_snapshot_offsets().is_empty());
        // Unknown again: any sequence.
        let info = log
            .append_as_leader(&pbatch(PID, 0, 55, 1), 0, TS)
            .await
            .unwrap();
        assert_eq!(info.first_offset, 100);
        log.close().await.unwrap();
        assert_eq!(snapshot_files(&log), [101]);
    });
}

#[test]
fn snapshots_at_roll_and_close_restore_the_state_after_a_restart_or_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let expected = run_life(root.clone(), false, |log| async move {
        for seq in 0..20 {
            log.append_as_leader(&pbatch(PID + seq as i64 % 3, 0, seq / 3, 1), 0, TS)
                .await
                .unwrap();
        }
        settle(&log).await;
        // One snapshot per roll, at the new segment's base.
        let snapshots = snapshot_files(&log);
        let bases = log.segment_bases();
        assert!(bases.len() > 2);
        assert_eq!(snapshots, bases[1..]);
        log.close().await.unwrap();
        // And one at the log end at close.
        assert_eq!(snapshot_files(&log).last(), Some(&20));
        log.producer_infos()
    });
    // A clean restart reads the close's snapshot and replays nothing.
    let (after_restart, batches) = run_life(root.clone(), true, |log| async move {
        let infos = log.producer_infos();
        for seq in 7..9 {
            log.append_as_leader(&pbatch(PID, 0, seq, 1), 0, TS)
                .await
                .unwrap();
        }
        let batches = read_all(&log, 0).await.len();
        // A crash: no close, no snapshot at the end.
        (infos, batches)
    });
    assert_eq!(after_restart, expected);
    assert_eq!(batches, 22);
    // After the crash: the newest snapshot at or below the log end, then a replay.
    let (after_crash, replayed, retry) = run_life(root, false, |log| async move {
        let retry = log
            .append_as_leader(&pbatch(PID, 0, 8, 1), 0, TS)
            .await
            .unwrap();
        (
            log.producer_infos(),
            replayed_from_start(&log).await,
            retry.first_offset,
        )
    });
    assert_eq!(after_crash, replayed);
    assert_eq!(
        after_crash
            .iter()
            .find(|p| p.producer_id == PID)
            .unwrap()
            .last_sequence(),
        8
    );
    assert_eq!(
        retry, 21,
        "the batch appended before the crash is a duplicate"
    );
}

/// One life of a log in `root` (`clean`: after a clean close, no recovery scan), in its own
/// executor, so a life that ends without `close` is a crash: its tasks end with it.
fn run_life<T, F>(
    root: std::path::PathBuf,
    clean: bool,
    body: impl FnOnce(Rc<PartitionLog>) -> F + Send + 'static,
) -> T
where
    T: Send + 'static,
    F: std::future::Future<Output = T> + 'static,
{
    crate::heartbeat::run_on_executor(move || async move {
        let log = open(&root, cfg(600), clean).await;
        body(log).await
    })
}

#[test]
fn the_log_start_moving_drops_snapshots_below_it_but_not_producers() {
    run(|| async {
        let dir = tempfile::tempdir().unwrap();
        let mut c = cfg(600);
        c.retention_bytes = 1200;
        let log = open(dir.path(), c, false).await;
        for seq in 0..20 {
            log.append_as_leader(&pbatch(PID, 0, seq, 1), 0, TS)
                .await
                .unwrap();
        }
        log.append_as_leader(&pbatch(PID + 1, 0, 0, 1), 0, TS)
            .await
            .unwrap();
        log.set_high_watermark(log.log_end_offset());
        log.flush().await.unwrap();
        let out = log.enforce_retention(TS).await.unwrap();
        assert!(out.deleted_segments > 0);
        let start = log.log_start_offset();
        assert!(snapshot_files(&log).iter().all(|o| *o >= start));
        assert_eq!(log.producer_snapshot_offsets(), snapshot_files(&log));
        // KAFKA-7190: the producer keeps its sequence although its early batches are gone.
        assert_eq!(log.producer(PID).unwrap().last_sequence(), 19);

        // DeleteRecords into the active segment.
        let target = log.log_end_offset() - 1;
        log.advance_log_start(target).await.unwrap();
        assert!(snapshot_files(&log).iter().all(|o| *o >= target));
        assert_eq!(log.producer(PID).unwrap().last_sequence(), 19);
        assert_eq!(
            producer_error(log.append_as_leader(&pbatch(PID, 0, 25, 1), 0, TS).await),
            ProducerStateError::OutOfOrderSequence {
                producer_id: PID,
                epoch: 0,
                got: 25,
                expected: 20
            }
        );
        log.close().await.unwrap();
    });
}

#[test]
fn stray_and_lost_snapshots_are_removed_on_open_and_corrupt_ones_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let expected = run_life(root.clone(), false, |log| async move {
        for seq in 0..20 {
            log.append_as_leader(&pbatch(PID, 0, seq, 1), 0, TS)
                .await
                .unwrap();
        }
        log.close().await.unwrap();
        (
            log.producer_infos(),
            log.dir().to_path_buf(),
            log.segment_bases(),
        )
    });
    let (infos, log_dir, bases) = expected;
    let name = |o: Offset| log_dir.join(crate::segment::file_name(o, SNAPSHOT_SUFFIX));
    // Past the log end (data lost in a crash), a stray inside a segment, and the close's
    // snapshot damaged: the newest usable one is a roll's, and the replay does the rest.
    std::fs::write(name(500), b"from data that is gone").unwrap();
    std::fs::write(name(bases[1] + 1), b"stray").unwrap();
    let mut damaged = std::fs::read(name(20)).unwrap();
    let last = damaged.len() - 1;
    damaged[last] ^= 1;
    std::fs::write(name(20), damaged).unwrap();
    let (reopened, kept) = run_life(root, true, |log| async move {
        (log.producer_infos(), snapshot_files(&log))
    });
    assert_eq!(reopened, infos);
    assert_eq!(kept, bases[1..], "only the rolls' snapshots remain");
}

/// Issue 12: listing, reading, writing and removing snapshots must not block the core's thread
/// (a directory listing or an open may wait for the disk); a direct file-system call on the
/// executor's thread traps and is counted.
#[test]
fn producer_snapshots_are_handled_off_the_executor_thread() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    run(move || async move {
        crate::testing::forbid_file_syscalls();
        let log = open(&root, cfg(600), false).await;
        for seq in 0..12 {
            log.append_as_leader(&pbatch(PID, 0, seq, 1), 0, TS)
                .await
                .unwrap();
        }
        log.flush().await.unwrap();
        log.truncate_to(5).await.unwrap();
        log.append_as_leader(&pbatch(PID, 0, 5, 1), 0, TS)
            .await
            .unwrap();
        log.set_high_watermark(log.log_end_offset());
        log.advance_log_start(2).await.unwrap();
        log.close().await.unwrap();
        let log = open(&root, cfg(600), true).await;
        assert_eq!(log.producer(PID).unwrap().last_sequence(), 5);
        log.truncate_fully_and_start_at(50).await.unwrap();
        log.close().await.unwrap();
        let (count, first_nr) = crate::testing::trapped_file_syscalls();
        assert_eq!(
            count, 0,
            "{count} file-system calls on the executor thread, the first syscall number {first_nr}"
        );
    });
}
