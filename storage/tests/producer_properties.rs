//! Property test of the log's idempotent producer state across truncations, clean restarts and
//! crashes: whatever happened, the state the log holds is the state a replay of every batch
//! from the log start gives (what any replica holding the same batches knows). After a crash
//! that state comes from the newest snapshot a roll wrote plus a replay of the headers after
//! it; after a truncation, from a snapshot at or below the new end plus a replay.
//!
//! Each life of the log runs in its own executor, so a crash ends every task of the old
//! instance (a roll's snapshot being written, say) as a real one would.
//!
//! `PROPTEST_CASES` raises the number of cases (32 by default).

use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use weir_storage::batch::{build_batch, BatchHeader, ProducerFields, Record};
use weir_storage::heartbeat::run_on_executor;
use weir_storage::producer::{ProducerInfo, ProducerStateManager};
use weir_storage::{
    LogConfig, Offset, PartitionLog, SegmentFileCache, StorageError, TopicPartition,
};

const TS: i64 = 1_700_000_000_000;
const PRODUCERS: usize = 3;

#[derive(Debug, Clone)]
enum Produce {
    /// The producer's next batch.
    Next,
    /// A retry of its batch `back` batches ago (a duplicate while in the last five).
    Retry(usize),
    /// A sequence gap (refused).
    Gap,
    /// A new epoch, from sequence 0.
    Bump,
}

#[derive(Debug, Clone)]
enum Op {
    Append {
        producer: usize,
        send: Produce,
        records: usize,
    },
    Plain {
        records: usize,
    },
    /// Appends queued in the same round, checked against each other before any is written.
    Concurrent(Vec<(usize, usize)>),
    /// `truncate_to(log end - back)`, as a follower diverging from its leader.
    Truncate {
        back: i64,
    },
    Restart {
        crash: bool,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let send = prop_oneof![
        6 => Just(Produce::Next),
        2 => (0usize..7).prop_map(Produce::Retry),
        1 => Just(Produce::Gap),
        1 => Just(Produce::Bump),
    ];
    prop_oneof![
        10 => (0..PRODUCERS, send, 1usize..4).prop_map(|(producer, send, records)| Op::Append {
            producer,
            send,
            records
        }),
        2 => (1usize..4).prop_map(|records| Op::Plain { records }),
        2 => prop::collection::vec((0..PRODUCERS, 1usize..3), 2..5).prop_map(Op::Concurrent),
        2 => (0i64..12).prop_map(|back| Op::Truncate { back }),
        2 => any::<bool>().prop_map(|crash| Op::Restart { crash }),
    ]
}

/// What a producer sent so far (from the client's side): its epoch, its next sequence, and the
/// batches of this epoch, to retry.
#[derive(Debug, Clone, Default)]
struct Client {
    epoch: i16,
    next_seq: i32,
    sent: Vec<(i32, usize)>,
}

fn batch(pid: i64, epoch: i16, seq: i32, records: usize) -> Vec<u8> {
    let records: Vec<Record> = (0..records)
        .map(|i| Record {
            key: Some(format!("k{i}").into_bytes()),
            value: Some(vec![b'v'; 30]),
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

fn pid(producer: usize) -> i64 {
    1000 + producer as i64
}

async fn open(dir: &Path, segment_bytes: u64, clean: bool) -> Rc<PartitionLog> {
    let config = LogConfig {
        segment_bytes,
        index_interval_bytes: 128,
        ..LogConfig::default()
    };
    PartitionLog::open(
        dir.to_path_buf(),
        TopicPartition::new("p", 0),
        config,
        SegmentFileCache::new(4),
        clean,
    )
    .await
    .expect("open")
}

/// The state a replay of every batch from the log start gives.
async fn replayed_from_start(log: &PartitionLog) -> Vec<ProducerInfo> {
    let mut state = ProducerStateManager::default();
    let mut next = log.log_start_offset();
    loop {
        let read = log
            .read(next, 1 << 20, Offset::MAX, true)
            .await
            .expect("read");
        let Some(region) = read.region else { break };
        let bytes = region.read_to_vec().await.expect("read");
        let headers: Vec<BatchHeader> =
            weir_storage::batch::split_headers(&bytes).expect("whole batches");
        next = headers.last().expect("a batch").last_offset() + 1;
        state.rebuild_from_batches(&headers);
    }
    let mut all: Vec<ProducerInfo> = state.producers().collect();
    all.sort_unstable_by_key(|p| p.producer_id);
    all
}

async fn check_state(log: &PartitionLog, when: &str) -> Result<(), TestCaseError> {
    let expected = replayed_from_start(log).await;
    prop_assert_eq!(log.producer_infos(), expected, "producer state {}", when);
    Ok(())
}

fn producer_error(r: &Result<weir_storage::AppendInfo, StorageError>) -> bool {
    matches!(r, Err(StorageError::Producer(_)))
}

/// What a life leaves: the ops not run yet, how it ended (`None`: the ops ran out; else
/// whether it crashed), and the clients' view.
type LifeEnd = (Vec<Op>, Option<bool>, Vec<Client>);

/// One life: open, run ops until a restart, check the state against a replay from the start
/// at each truncation and at the end. Returns the ops not run yet and how the life ended.
fn life(
    dir: PathBuf,
    segment_bytes: u64,
    clean: bool,
    ops: Vec<Op>,
    clients: Vec<Client>,
) -> Result<LifeEnd, TestCaseError> {
    run_on_executor(move || async move {
        let mut clients = clients;
        let log = open(&dir, segment_bytes, clean).await;
        check_state(&log, "after open").await?;
        let mut ops = ops.into_iter();
        for op in ops.by_ref() {
            match op {
                Op::Append {
                    producer,
                    send,
                    records,
                } => {
                    let c = &mut clients[producer];
                    let bytes = match send {
                        Produce::Next => {
                            let b = batch(pid(producer), c.epoch, c.next_seq, records);
                            c.sent.push((c.next_seq, records));
                            c.next_seq += records as i32;
                            b
                        }
                        Produce::Retry(back) => match c.sent.iter().rev().nth(back) {
                            Some(&(seq, n)) => batch(pid(producer), c.epoch, seq, n),
                            None => continue,
                        },
                        Produce::Gap => batch(pid(producer), c.epoch, c.next_seq + 3, records),
                        Produce::Bump => {
                            c.epoch += 1;
                            c.sent = vec![(0, records)];
                            c.next_seq = records as i32;
                            batch(pid(producer), c.epoch, 0, records)
                        }
                    };
                    let r = log.append_as_leader(&bytes, 0, TS).await;
                    // Refusals are the producer state's; nothing else fails here. A refused
                    // "next" (the log forgot its batches in a truncation) is not sent again:
                    // the client restarts its epoch, as a real one would after an error.
                    if r.is_err() {
                        prop_assert!(producer_error(&r), "unexpected failure {:?}", r);
                        if let Produce::Next = send {
                            c.epoch += 1;
                            c.sent.clear();
                            c.next_seq = 0;
                        }
                    }
                }
                Op::Plain { records } => {
                    log.append_as_leader(&batch(-1, -1, -1, records), 0, TS)
                        .await
                        .expect("plain append");
                }
                Op::Concurrent(sends) => {
                    let mut futures = Vec::new();
                    for (producer, records) in sends {
                        let c = &mut clients[producer];
                        let b = batch(pid(producer), c.epoch, c.next_seq, records);
                        c.sent.push((c.next_seq, records));
                        c.next_seq += records as i32;
                        let log = log.clone();
                        futures.push(glommio::spawn_local(async move {
                            log.append_as_leader(&b, 0, TS).await
                        }));
                    }
                    for f in futures {
                        let r = f.await;
                        prop_assert!(r.is_ok() || producer_error(&r), "{:?}", r);
                    }
                }
                Op::Truncate { back } => {
                    let target = (log.log_end_offset() - back).max(log.log_start_offset());
                    log.truncate_to(target).await.expect("truncate");
                    check_state(&log, "after a truncation").await?;
                    prop_assert!(log
                        .producer_snapshot_offsets()
                        .iter()
                        .all(|o| *o <= log.log_end_offset()));
                }
                Op::Restart { crash } => {
                    check_state(&log, "before a restart").await?;
                    if !crash {
                        log.close().await.expect("close");
                    }
                    return Ok((ops.collect(), Some(crash), clients));
                }
            }
        }
        check_state(&log, "at the end").await?;
        log.close().await.expect("close");
        Ok((Vec::new(), None, clients))
    })
}

fn run_case(segment_bytes: u64, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("p-0");
    let mut clean = false;
    let mut ops = ops;
    let mut clients = vec![Client::default(); PRODUCERS];
    loop {
        let (rest, ended, c) = life(path.clone(), segment_bytes, clean, ops, clients)?;
        clients = c;
        match ended {
            None => return Ok(()),
            Some(crash) => {
                clean = !crash;
                ops = rest;
            }
        }
    }
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(32)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(),
        ..ProptestConfig::default()
    })]

    #[test]
    fn producer_state_is_the_replay_of_the_log_across_truncations_restarts_and_crashes(
        segment_bytes in 300u64..=3_000,
        ops in prop::collection::vec(op(), 1..=60),
    ) {
        run_case(segment_bytes, ops)?;
    }
}
