//! Hot-path codec costs: decoding a Produce request (the records stay a zero-copy slice of the
//! frame) and encoding the framing of a zero-copy Fetch response around file regions.
//! `cargo bench -p weir-net`.

use bytes::{Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{ApiKey, ProduceRequest, RequestHeader, TopicName};
use kafka_protocol::protocol::{Encodable, StrBytes};
use std::hint::black_box;
use std::os::fd::AsRawFd;
use std::rc::Rc;
use weir_net::fetch_response::{
    encode_fetch_response, FetchPartitionData, FetchResponseData, FetchTopicData,
};
use weir_net::{decode_request, FileRegion, Part, SupportedApis};

const PRODUCE_VERSION: i16 = 9;
const FETCH_VERSION: i16 = 12;

/// A Produce request frame body (after the size prefix) carrying `partitions` batches.
fn produce_frame(partitions: i32, records_len: usize) -> Bytes {
    let header = RequestHeader::default()
        .with_request_api_key(ApiKey::Produce as i16)
        .with_request_api_version(PRODUCE_VERSION)
        .with_correlation_id(1)
        .with_client_id(Some(StrBytes::from_static_str("bench")));
    let partition_data = (0..partitions)
        .map(|i| {
            PartitionProduceData::default()
                .with_index(i)
                .with_records(Some(Bytes::from(vec![7u8; records_len])))
        })
        .collect();
    let request = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(30_000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_static_str("bench-topic")))
            .with_partition_data(partition_data)]);
    let mut buf = BytesMut::new();
    header
        .encode(
            &mut buf,
            ApiKey::Produce.request_header_version(PRODUCE_VERSION),
        )
        .expect("header encodes");
    request
        .encode(&mut buf, PRODUCE_VERSION)
        .expect("request encodes");
    buf.freeze()
}

fn produce_decode(c: &mut Criterion) {
    let supported = SupportedApis::everything_decodable();
    let mut group = c.benchmark_group("produce_decode");
    for (partitions, records_len) in [(1, 16 << 10), (1, 1 << 20), (64, 16 << 10)] {
        let frame = produce_frame(partitions, records_len);
        group.throughput(Throughput::Bytes(frame.len() as u64));
        group.bench_with_input(
            BenchmarkId::from_parameter(format!("{partitions}x{}KiB", records_len >> 10)),
            &frame,
            |b, frame| {
                b.iter(|| black_box(decode_request(frame.clone(), &supported).expect("decodes")))
            },
        );
    }
    group.finish();
}

fn fetch_encode(c: &mut Criterion) {
    // Encoding never touches the descriptor: the regions are spliced in by sendfile later.
    let file: Rc<dyn AsRawFd> = Rc::new(std::fs::File::open("/dev/null").expect("/dev/null"));
    let mut group = c.benchmark_group("fetch_encode");
    for partitions in [1, 64, 1000] {
        let topics = vec![FetchTopicData {
            name: StrBytes::from_static_str("bench-topic"),
            topic_id: [1; 16],
            partitions: (0..partitions)
                .map(|p| {
                    let mut d = FetchPartitionData::new(p);
                    d.high_watermark = 1_000_000;
                    d.log_start_offset = 0;
                    d.records = vec![Part::File(FileRegion::new(file.clone(), 4096, 1 << 20))];
                    d
                })
                .collect(),
        }];
        let data = FetchResponseData {
            topics,
            ..FetchResponseData::default()
        };
        group.throughput(Throughput::Elements(partitions as u64));
        group.bench_with_input(
            BenchmarkId::new("partitions", partitions),
            &data,
            |b, data| {
                b.iter(|| {
                    black_box(encode_fetch_response(FETCH_VERSION, 7, data).expect("encodes"))
                })
            },
        );
    }
    group.finish();
}

criterion_group!(benches, produce_decode, fetch_encode);
criterion_main!(benches);
