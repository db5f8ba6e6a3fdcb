//! Benchmarks of the partition log: append throughput against a plain `write` of the same bytes,
//! locating fetch regions, recovery of a 1 GiB segment, and compaction.
//!
//! Files go to a temporary directory on a real disk (`$TMPDIR`, or `WEIR_BENCH_DIR`), never
//! tmpfs: appends and plain writes both land in the page cache of the same filesystem, so the
//! comparison is between code paths, not devices. Nothing is fsynced on the append path (Kafka's
//! default `flush.messages`), and neither is the baseline.
//!
//! `cargo bench -p weir-storage`; one group: `cargo bench -p weir-storage -- append`.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::future::Future;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, Instant};
use weir_storage::batch::{build_batch, ProducerFields, Record};
use weir_storage::checkpoint::PartitionCheckpoint;
use weir_storage::{LogConfig, Offset, PartitionLog, SegmentFileCache, TopicPartition};

const KIB: usize = 1024;
const MIB: usize = 1024 * KIB;
/// The batches' timestamp and the append clock: a realistic now, within the leader's default
/// timestamp bounds (`message.timestamp.after.max.ms`).
const BATCH_TIMESTAMP: i64 = 1_700_000_000_000;
/// Bytes appended (or written) per criterion iteration, the same for every variant so page-cache
/// behaviour (dirty pages, writeback) is comparable.
const BYTES_PER_ITER: usize = 64 * MIB;
const RECORD_VALUE: usize = KIB;

/// Runs `f` on a fresh glommio executor and returns its result.
fn on_executor<T, F>(f: impl FnOnce() -> F + Send + 'static) -> T
where
    T: Send + 'static,
    F: Future<Output = T> + 'static,
{
    weir_storage::heartbeat::run_on_executor(f)
}

fn bench_root() -> tempfile::TempDir {
    match std::env::var_os("WEIR_BENCH_DIR") {
        Some(d) => tempfile::tempdir_in(d),
        None => tempfile::tempdir(),
    }
    .expect("bench directory")
}

/// A producer's batch of 1 KiB records, as many as fit in `batch_bytes` (a "1 MiB" batch must
/// stay within the default `max.message.bytes`).
fn batch_of(batch_bytes: usize) -> Vec<u8> {
    // The v2 header, and about ten bytes of framing per record.
    let count = (batch_bytes - 61) / (RECORD_VALUE + 10);
    let records: Vec<Record> = (0..count)
        .map(|i| Record {
            key: None,
            value: Some(vec![(i % 251) as u8; RECORD_VALUE]),
            headers: vec![],
            timestamp_delta: 0,
        })
        .collect();
    let batch = build_batch(&records, BATCH_TIMESTAMP, ProducerFields::NONE);
    assert!(
        batch.len() <= batch_bytes,
        "{} > {batch_bytes}",
        batch.len()
    );
    batch
}

async fn open_log(dir: PathBuf, config: LogConfig, clean: bool) -> Rc<PartitionLog> {
    PartitionLog::open(
        dir,
        TopicPartition::new("bench", 0),
        config,
        SegmentFileCache::new(64),
        clean,
    )
    .await
    .expect("open")
}

/// Appends `iters` × [`BYTES_PER_ITER`] as `appenders` concurrent tasks, each awaiting its
/// append before sending the next (as a producer connection does), into a fresh log. Returns
/// the time the appends took (not the open or close).
fn timed_appends(batch: Rc<Vec<u8>>, iters: u64, appenders: usize) -> Duration {
    let batch = (*batch).clone();
    on_executor(move || async move {
        let root = bench_root();
        let log = open_log(root.path().join("bench-0"), LogConfig::default(), false).await;
        let batch = Rc::new(batch);
        let total = iters as usize * BYTES_PER_ITER.div_ceil(batch.len());
        let per_task = total.div_ceil(appenders);
        let start = Instant::now();
        let tasks: Vec<_> = (0..appenders)
            .map(|_| {
                let log = log.clone();
                let batch = batch.clone();
                glommio::spawn_local(async move {
                    for _ in 0..per_task {
                        log.append_as_leader(&batch, 0, BATCH_TIMESTAMP)
                            .await
                            .expect("append");
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await;
        }
        let elapsed = start.elapsed();
        log.close().await.expect("close");
        elapsed
    })
}

/// The baseline: the same number of batch-sized `write_all` calls to a plain file.
fn timed_plain_writes(batch: &[u8], iters: u64) -> Duration {
    let root = bench_root();
    let mut file = std::fs::File::create(root.path().join("plain.log")).expect("create");
    let count = iters as usize * BYTES_PER_ITER.div_ceil(batch.len());
    let start = Instant::now();
    for _ in 0..count {
        file.write_all(batch).expect("write");
    }
    start.elapsed()
}

/// The I/O the log's writer does, without the log: the same batch-sized writes through
/// glommio's buffered file (io_uring), so the two baselines separate the cost of the I/O path
/// from the cost of the log.
fn timed_glommio_writes(batch: Rc<Vec<u8>>, iters: u64) -> Duration {
    let batch = (*batch).clone();
    on_executor(move || async move {
        let root = bench_root();
        let file = glommio::io::OpenOptions::new()
            .write(true)
            .create(true)
            .buffered_open(root.path().join("glommio.log"))
            .await
            .expect("create");
        let count = iters as usize * BYTES_PER_ITER.div_ceil(batch.len());
        let mut pos = 0;
        let start = Instant::now();
        for _ in 0..count {
            // The log's writer hands over an owned buffer too.
            let n = file.write_at(batch.clone(), pos).await.expect("write");
            pos += n as u64;
        }
        let elapsed = start.elapsed();
        file.close().await.expect("close");
        elapsed
    })
}

fn append_throughput(c: &mut Criterion) {
    let mut group = c.benchmark_group("append");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(10));
    for (name, batch_bytes) in [("16KiB", 16 * KIB), ("1MiB", MIB)] {
        let batch = Rc::new(batch_of(batch_bytes));
        let bytes_per_iter = (BYTES_PER_ITER.div_ceil(batch.len()) * batch.len()) as u64;
        group.throughput(Throughput::Bytes(bytes_per_iter));
        group.bench_function(BenchmarkId::new("append_as_leader", name), |b| {
            b.iter_custom(|iters| timed_appends(batch.clone(), iters, 1))
        });
        group.bench_function(BenchmarkId::new("plain_write_all", name), |b| {
            b.iter_custom(|iters| timed_plain_writes(&batch, iters))
        });
        group.bench_function(BenchmarkId::new("glommio_write_at", name), |b| {
            b.iter_custom(|iters| timed_glommio_writes(batch.clone(), iters))
        });
    }
    // Many producers on one partition: appends arriving in the same scheduling round share one
    // write (group commit).
    let batch = Rc::new(batch_of(16 * KIB));
    group.throughput(Throughput::Bytes(
        (BYTES_PER_ITER.div_ceil(batch.len()) * batch.len()) as u64,
    ));
    group.bench_function(
        BenchmarkId::new("append_as_leader_16_tasks", "16KiB"),
        |b| b.iter_custom(|iters| timed_appends(batch.clone(), iters, 16)),
    );
    group.finish();
}

/// Deterministic pseudo-random numbers (no dependency, same offsets every run).
fn lcg(seed: &mut u64) -> u64 {
    *seed = seed
        .wrapping_mul(6_364_136_223_846_793_005)
        .wrapping_add(1_442_695_040_888_963_407);
    *seed >> 33
}

fn locate_for_fetch(c: &mut Criterion) {
    let mut group = c.benchmark_group("locate");
    group.sample_size(20);
    // 256 MiB of 16 KiB batches in 64 MiB segments: four segments, the last one active.
    let root = bench_root();
    let dir = root.path().join("bench-0");
    let config = LogConfig {
        segment_bytes: 64 * MIB as u64,
        ..LogConfig::default()
    };
    {
        let (dir, config) = (dir.clone(), config.clone());
        on_executor(move || async move {
            let log = open_log(dir, config, false).await;
            let batch = batch_of(16 * KIB);
            for _ in 0..(256 * MIB) / batch.len() {
                log.append_as_leader(&batch, 0, BATCH_TIMESTAMP)
                    .await
                    .expect("append");
            }
            assert!(log.segment_count() >= 4);
            log.close().await.expect("close");
        });
    }
    group.bench_function("read_1MiB_random_offset", |b| {
        b.iter_custom(|iters| {
            let (dir, config) = (dir.clone(), config.clone());
            on_executor(move || async move {
                let log = open_log(dir, config, true).await;
                let end = log.log_end_offset() as u64;
                let mut seed = 42;
                // Untimed pass: loads every inactive segment's index once, as a broker that has
                // served fetches for a while has.
                for _ in 0..64 {
                    let at = (lcg(&mut seed) % end) as Offset;
                    log.read(at, MIB as u64, Offset::MAX, true)
                        .await
                        .expect("read");
                }
                let start = Instant::now();
                for _ in 0..iters {
                    let at = (lcg(&mut seed) % end) as Offset;
                    let out = log
                        .read(at, MIB as u64, Offset::MAX, true)
                        .await
                        .expect("read");
                    std::hint::black_box(out.region.expect("region").len);
                }
                let elapsed = start.elapsed();
                log.close().await.expect("close");
                elapsed
            })
        })
    });
    group.finish();
}

/// Drops a file's pages from the page cache, so the next read comes from the disk.
fn evict_from_page_cache(path: &Path) {
    use std::os::fd::AsRawFd;
    let f = std::fs::File::open(path).expect("open");
    f.sync_all().expect("sync");
    // SAFETY: a valid descriptor; the call only drops clean cached pages.
    let rc = unsafe { libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
    assert_eq!(rc, 0, "posix_fadvise");
}

fn recovery(c: &mut Criterion) {
    let mut group = c.benchmark_group("recovery");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(30));
    // One 1 GiB active segment of 1 MiB batches (segment.bytes 2 GiB, so it never rolls).
    let root = bench_root();
    let dir = root.path().join("bench-0");
    let config = LogConfig {
        segment_bytes: 2 << 30,
        ..LogConfig::default()
    };
    let segment_bytes = {
        let (dir, config) = (dir.clone(), config.clone());
        on_executor(move || async move {
            let log = open_log(dir, config, false).await;
            let batch = batch_of(MIB);
            for _ in 0..(1 << 30) / batch.len() {
                log.append_as_leader(&batch, 0, BATCH_TIMESTAMP)
                    .await
                    .expect("append");
            }
            assert_eq!(log.segment_count(), 1);
            let size = log.size_bytes();
            log.close().await.expect("close");
            size
        })
    };
    let segment = dir.join(format!("{:020}.log", 0));

    // Each open after an unclean shutdown with no checkpoint scans the whole segment with CRC
    // checks; the open then checkpoints what it recovered, so the checkpoint goes every time.
    let timed_open = |clean: bool, cold: bool| {
        let (dir, config, segment) = (dir.clone(), config.clone(), segment.clone());
        move |iters: u64| {
            let (dir, config, segment) = (dir.clone(), config.clone(), segment.clone());
            on_executor(move || async move {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    if !clean {
                        PartitionCheckpoint::remove_files(&dir).expect("checkpoint removed");
                    }
                    if cold {
                        evict_from_page_cache(&segment);
                    }
                    let start = Instant::now();
                    let (log, report) = PartitionLog::open_with_report(
                        dir.clone(),
                        TopicPartition::new("bench", 0),
                        config.clone(),
                        SegmentFileCache::new(64),
                        clean,
                    )
                    .await
                    .expect("open");
                    total += start.elapsed();
                    assert_eq!(report.truncated_bytes, 0);
                    if !clean {
                        assert_eq!(report.scanned_batches, 1 << 10, "the whole segment scanned");
                    }
                    log.close().await.expect("close");
                }
                total
            })
        }
    };
    // For contrast: trusts the checkpoint and the indexes, reads a few headers.
    group.bench_function("clean_open_1GiB", |b| {
        b.iter_custom(timed_open(true, false))
    });
    group.throughput(Throughput::Bytes(segment_bytes));
    group.bench_function("unclean_open_1GiB_page_cached", |b| {
        b.iter_custom(timed_open(false, false))
    });
    group.bench_function("unclean_open_1GiB_from_disk", |b| {
        b.iter_custom(timed_open(false, true))
    });
    group.finish();
}

/// Compaction of a 256 MiB log: 1 KiB values over 20,000 keys written 13 times over (about
/// 92% of the records are obsolete), in 16 MiB segments, uncompressed and gzip-compressed
/// (16 records per batch). Each iteration cleans a fresh copy of the uncleaned directory; the
/// throughput is bytes of log read per second.
fn compaction(c: &mut Criterion) {
    let mut group = c.benchmark_group("clean");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(20));
    for codec in [0u8, 1] {
        let root = bench_root();
        let source = root.path().join("source-0");
        let config = LogConfig {
            segment_bytes: 16 * MIB as u64,
            compact: true,
            cleanup_delete: false,
            ..LogConfig::default()
        };
        let log_bytes = {
            let (source, config) = (source.clone(), config.clone());
            on_executor(move || async move {
                let log = open_log(source, config, false).await;
                let mut seed = 7u64;
                while log.size_bytes() < 256 * MIB as u64 {
                    let records: Vec<Record> = (0..16)
                        .map(|_| Record {
                            key: Some(format!("key-{}", lcg(&mut seed) % 20_000).into_bytes()),
                            value: Some(vec![b'v'; RECORD_VALUE]),
                            headers: vec![],
                            timestamp_delta: 0,
                        })
                        .collect();
                    let batch = build_batch(&records, BATCH_TIMESTAMP, ProducerFields::NONE);
                    let batch =
                        weir_storage::records::compress_batch(&batch, codec).expect("compress");
                    log.append_as_leader(&batch, 0, BATCH_TIMESTAMP)
                        .await
                        .expect("append");
                }
                log.set_high_watermark(log.log_end_offset());
                log.flush().await.expect("flush");
                let size = log.size_bytes();
                log.close().await.expect("close");
                size
            })
        };
        group.throughput(Throughput::Bytes(log_bytes));
        let name = if codec == 0 { "uncompressed" } else { "gzip" };
        group.bench_function(BenchmarkId::new("clean_256MiB", name), |b| {
            b.iter_custom(|iters| {
                let (root_path, source, config) =
                    (root.path().to_path_buf(), source.clone(), config.clone());
                on_executor(move || async move {
                    let mut total = Duration::ZERO;
                    for i in 0..iters {
                        let dir = root_path.join(format!("copy-{i}"));
                        std::fs::create_dir_all(&dir).expect("copy dir");
                        for e in std::fs::read_dir(&source).expect("source") {
                            let e = e.expect("entry");
                            std::fs::copy(e.path(), dir.join(e.file_name())).expect("copy");
                        }
                        let log = open_log(dir.clone(), config.clone(), true).await;
                        let start = Instant::now();
                        let outcome = log
                            .clean(weir_storage::log::CleanOptions {
                                now_ms: 1_700_000_000_000,
                                dedupe_buffer_bytes: 128 * MIB,
                                force: true,
                            })
                            .await
                            .expect("clean")
                            .expect("cleaned");
                        total += start.elapsed();
                        assert!(outcome.records_removed > 0);
                        log.close().await.expect("close");
                        std::fs::remove_dir_all(&dir).expect("remove copy");
                    }
                    total
                })
            })
        });
    }
    group.finish();
}

criterion_group!(
    benches,
    append_throughput,
    locate_for_fetch,
    recovery,
    compaction
);
criterion_main!(benches);
