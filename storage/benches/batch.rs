//! Batch validation on the produce path: framing, shape and CRC-32C of whole batches, next to
//! CRC-32C alone (the floor), and the leader's whole validation (`validate_produced`: the
//! same plus each record's timestamp against Kafka's default bounds, the common path).
//! `cargo bench -p weir-storage --bench batch`.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::hint::black_box;
use weir_storage::batch::{
    build_batch, compute_crc, split_and_validate, split_headers, ProducerFields, Record,
};
use weir_storage::validate::validate_produced;
use weir_storage::{LogConfig, TopicPartition};

fn batch_of(bytes: usize) -> Vec<u8> {
    let records: Vec<Record> = (0..bytes / 1024)
        .map(|i| Record {
            key: Some(format!("k{i}").into_bytes()),
            value: Some(vec![b'v'; 1000]),
            timestamp_delta: i as i64,
            ..Record::default()
        })
        .collect();
    build_batch(&records, 1_700_000_000_000, ProducerFields::NONE)
}

fn validation(c: &mut Criterion) {
    let mut group = c.benchmark_group("batch");
    for (name, size) in [("16KiB", 16 << 10), ("1MiB", 1 << 20)] {
        let b = batch_of(size);
        group.throughput(Throughput::Bytes(b.len() as u64));
        group.bench_with_input(
            BenchmarkId::new("split_and_validate", name),
            &b,
            |bench, b| bench.iter(|| black_box(split_and_validate(b).expect("valid"))),
        );
        group.bench_with_input(BenchmarkId::new("crc32c_only", name), &b, |bench, b| {
            bench.iter(|| black_box(compute_crc(b)))
        });
        group.bench_with_input(BenchmarkId::new("split_headers", name), &b, |bench, b| {
            bench.iter(|| black_box(split_headers(b).expect("valid")))
        });
        let bytes = bytes::Bytes::from(b.clone());
        let config = LogConfig::default();
        let tp = TopicPartition::new("t", 0);
        group.bench_with_input(
            BenchmarkId::new("validate_produced", name),
            &bytes,
            |bench, b| {
                bench.iter(|| {
                    black_box(validate_produced(b, &config, &tp, 1_700_000_000_000).expect("valid"))
                })
            },
        );
    }
    group.finish();
}

criterion_group!(benches, validation);
criterion_main!(benches);
