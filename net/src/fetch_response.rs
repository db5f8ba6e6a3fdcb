//! FetchResponse framing around records that never enter user space.
//!
//! kafka-protocol's encoder needs every partition's records as one in-memory `Bytes`; a
//! broker serving from page-cached segments wants them to stay file regions. So the bytes
//! *around* the records are encoded here, field for field as kafka-protocol's generated
//! `fetch_response.rs` (and Kafka's FetchResponse.json) lay them out, and each partition's
//! records are spliced in as parts whose total length is known up front.
//!
//! Versions 4..=18: v5 adds log_start_offset, v7 top-level error_code and session_id, v11
//! preferred_read_replica, v12 the flexible encoding (compact lengths, tagged fields), v13
//! topic ids instead of names, v16 node_endpoints; v17 and v18 change only the request.
//! Fields a version cannot carry are dropped or refused exactly as kafka-protocol does.

use crate::response::{put_response_header, EncodeError, Part, ResponseFrame};
use bytes::{BufMut, BytesMut};
use kafka_protocol::messages::fetch_response::{
    EpochEndOffset, LeaderIdAndEpoch, NodeEndpoint, SnapshotId,
};
use kafka_protocol::messages::ApiKey;
use kafka_protocol::protocol::{Encodable, StrBytes};

/// Lowest FetchResponse version encoded here (kafka-protocol's and Kafka 4's floor).
pub const FETCH_MIN_VERSION: i16 = 4;
/// Highest FetchResponse version encoded here.
pub const FETCH_MAX_VERSION: i16 = 18;

const FIRST_FLEXIBLE_VERSION: i16 = 12;
const FIRST_TOPIC_ID_VERSION: i16 = 13;

/// A FetchResponse whose partitions' records are parts.
#[derive(Debug, Clone, Default)]
pub struct FetchResponseData {
    /// Quota throttle.
    pub throttle_time_ms: i32,
    /// Top-level error (v7+; dropped below, as Kafka does).
    pub error_code: i16,
    /// Fetch session id (v7+; must be 0 below).
    pub session_id: i32,
    /// Topics in response order.
    pub topics: Vec<FetchTopicData>,
    /// Leaders' endpoints for NOT_LEADER/FENCED partitions (v16+ tagged field).
    pub node_endpoints: Vec<NodeEndpoint>,
}

/// One topic of a FetchResponse.
#[derive(Debug, Clone, Default)]
pub struct FetchTopicData {
    /// Topic name, sent up to v12.
    pub name: StrBytes,
    /// Topic id, sent from v13.
    pub topic_id: [u8; 16],
    /// Partitions in response order.
    pub partitions: Vec<FetchPartitionData>,
}

/// One aborted transaction in a partition's fetched range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbortedTxn {
    /// The aborting producer.
    pub producer_id: i64,
    /// First offset of the aborted transaction.
    pub first_offset: i64,
}

/// One partition of a FetchResponse.
#[derive(Debug, Clone)]
pub struct FetchPartitionData {
    /// Partition index.
    pub partition_index: i32,
    /// Partition error code.
    pub error_code: i16,
    /// High watermark.
    pub high_watermark: i64,
    /// Last stable offset (-1 if unknown).
    pub last_stable_offset: i64,
    /// Log start offset (v5+; -1 if unknown).
    pub log_start_offset: i64,
    /// Aborted transactions; `None` (null on the wire) for READ_UNCOMMITTED fetches.
    pub aborted_transactions: Option<Vec<AbortedTxn>>,
    /// Preferred read replica (v11+; must be -1 below).
    pub preferred_read_replica: i32,
    /// The record batches, in order; may be empty.
    pub records: Vec<Part>,
    /// Tagged (v12+): the epoch end offset the follower diverged at.
    pub diverging_epoch: Option<EpochEndOffset>,
    /// Tagged (v12+): current leader, for NOT_LEADER/FENCED errors.
    pub current_leader: Option<LeaderIdAndEpoch>,
    /// Tagged (v12+): snapshot to fetch instead (KRaft).
    pub snapshot_id: Option<SnapshotId>,
}

impl FetchPartitionData {
    /// A partition with Kafka's defaults: unknown LSO and log start, no preferred replica, no
    /// records.
    pub fn new(partition_index: i32) -> Self {
        FetchPartitionData {
            partition_index,
            error_code: 0,
            high_watermark: 0,
            last_stable_offset: -1,
            log_start_offset: -1,
            aborted_transactions: None,
            preferred_read_replica: -1,
            records: Vec::new(),
            diverging_epoch: None,
            current_leader: None,
            snapshot_id: None,
        }
    }
}

/// Accumulates encoded bytes, cutting them into parts where records are spliced in.
struct Out {
    parts: Vec<Part>,
    buf: BytesMut,
    version: i16,
    flexible: bool,
}

impl Out {
    fn cut(&mut self) {
        if !self.buf.is_empty() {
            self.parts.push(Part::Bytes(self.buf.split().freeze()));
        }
    }

    fn put_uvarint(&mut self, mut v: u32) {
        while v >= 0x80 {
            self.buf.put_u8((v as u8 & 0x7f) | 0x80);
            v >>= 7;
        }
        self.buf.put_u8(v as u8);
    }

    /// Array length: i32 count, or count + 1 as an unsigned varint when flexible.
    fn put_array_len(
        &mut self,
        len: Option<usize>,
        field: &'static str,
    ) -> Result<(), EncodeError> {
        let overflow = |len| EncodeError::LengthOverflow { field, len };
        match (len, self.flexible) {
            (None, false) => self.buf.put_i32(-1),
            (None, true) => self.put_uvarint(0),
            (Some(n), false) => self.buf.put_i32(i32::try_from(n).map_err(|_| overflow(n))?),
            (Some(n), true) => {
                let n1 = u32::try_from(n).ok().and_then(|n| n.checked_add(1));
                self.put_uvarint(n1.ok_or_else(|| overflow(n))?);
            }
        }
        Ok(())
    }

    fn put_string(&mut self, s: &str, field: &'static str) -> Result<(), EncodeError> {
        let len = s.len();
        if self.flexible {
            let n1 = u32::try_from(len).ok().and_then(|n| n.checked_add(1));
            self.put_uvarint(n1.ok_or(EncodeError::LengthOverflow { field, len })?);
        } else {
            let n = i16::try_from(len).map_err(|_| EncodeError::LengthOverflow { field, len })?;
            self.buf.put_i16(n);
        }
        self.buf.put_slice(s.as_bytes());
        Ok(())
    }

    fn put_struct<T: Encodable>(&mut self, value: &T) -> Result<(), EncodeError> {
        value
            .encode(&mut self.buf, self.version)
            .map_err(|e| protocol_error(self.version, e))
    }

    /// One tagged field holding a struct: tag, size, then the struct.
    fn put_tagged_struct<T: Encodable>(&mut self, tag: u32, value: &T) -> Result<(), EncodeError> {
        let size = value
            .compute_size(self.version)
            .map_err(|e| protocol_error(self.version, e))?;
        self.put_uvarint(tag);
        self.put_uvarint(tagged_size(size)?);
        self.put_struct(value)
    }
}

fn protocol_error(version: i16, e: impl std::fmt::Display) -> EncodeError {
    EncodeError::Protocol {
        api_key: ApiKey::Fetch,
        version,
        reason: e.to_string(),
    }
}

fn tagged_size(size: usize) -> Result<u32, EncodeError> {
    u32::try_from(size).map_err(|_| EncodeError::LengthOverflow {
        field: "tagged field",
        len: size,
    })
}

fn uvarint_len(v: u32) -> usize {
    match v {
        0..=0x7f => 1,
        0x80..=0x3fff => 2,
        0x4000..=0x1f_ffff => 3,
        0x20_0000..=0xfff_ffff => 4,
        _ => 5,
    }
}

fn not_in_version(field: &'static str, version: i16) -> EncodeError {
    EncodeError::FieldNotInVersion {
        api_key: ApiKey::Fetch,
        field,
        version,
    }
}

/// Encodes a complete FetchResponse frame (size prefix, response header, body) at `version`,
/// with each partition's records as the parts the caller gave.
pub fn encode_fetch_response(
    version: i16,
    correlation_id: i32,
    data: &FetchResponseData,
) -> Result<ResponseFrame, EncodeError> {
    if !(FETCH_MIN_VERSION..=FETCH_MAX_VERSION).contains(&version) {
        return Err(EncodeError::UnsupportedVersion {
            api_key: ApiKey::Fetch,
            version,
        });
    }
    if version < 7 && data.session_id != 0 {
        return Err(not_in_version("session_id", version));
    }
    let mut out = Out {
        parts: Vec::new(),
        buf: BytesMut::new(),
        version,
        flexible: version >= FIRST_FLEXIBLE_VERSION,
    };
    put_response_header(&mut out.buf, ApiKey::Fetch, version, correlation_id)?;
    out.buf.put_i32(data.throttle_time_ms);
    if version >= 7 {
        out.buf.put_i16(data.error_code);
        out.buf.put_i32(data.session_id);
    }
    out.put_array_len(Some(data.topics.len()), "responses")?;
    for topic in &data.topics {
        put_topic(&mut out, topic)?;
    }
    if out.flexible {
        let endpoints = version >= 16 && !data.node_endpoints.is_empty();
        out.put_uvarint(u32::from(endpoints));
        if endpoints {
            let count = u32::try_from(data.node_endpoints.len() + 1).map_err(|_| {
                EncodeError::LengthOverflow {
                    field: "node_endpoints",
                    len: data.node_endpoints.len(),
                }
            })?;
            let mut size = uvarint_len(count);
            for endpoint in &data.node_endpoints {
                size += endpoint
                    .compute_size(version)
                    .map_err(|e| protocol_error(version, e))?;
            }
            out.put_uvarint(0);
            out.put_uvarint(tagged_size(size)?);
            out.put_array_len(Some(data.node_endpoints.len()), "node_endpoints")?;
            for endpoint in &data.node_endpoints {
                out.put_struct(endpoint)?;
            }
        }
    }
    out.cut();
    ResponseFrame::from_body_parts(out.parts)
}

fn put_topic(out: &mut Out, topic: &FetchTopicData) -> Result<(), EncodeError> {
    if out.version < FIRST_TOPIC_ID_VERSION {
        out.put_string(&topic.name, "topic")?;
    } else {
        out.buf.put_slice(&topic.topic_id);
    }
    out.put_array_len(Some(topic.partitions.len()), "partitions")?;
    for partition in &topic.partitions {
        put_partition(out, partition)?;
    }
    if out.flexible {
        out.put_uvarint(0);
    }
    Ok(())
}

fn put_partition(out: &mut Out, p: &FetchPartitionData) -> Result<(), EncodeError> {
    let version = out.version;
    if version < 11 && p.preferred_read_replica != -1 {
        return Err(not_in_version("preferred_read_replica", version));
    }
    out.buf.put_i32(p.partition_index);
    out.buf.put_i16(p.error_code);
    out.buf.put_i64(p.high_watermark);
    out.buf.put_i64(p.last_stable_offset);
    if version >= 5 {
        out.buf.put_i64(p.log_start_offset);
    }
    let aborted = p.aborted_transactions.as_deref();
    out.put_array_len(aborted.map(<[AbortedTxn]>::len), "aborted_transactions")?;
    for txn in aborted.unwrap_or_default() {
        out.buf.put_i64(txn.producer_id);
        out.buf.put_i64(txn.first_offset);
        if out.flexible {
            out.put_uvarint(0);
        }
    }
    if version >= 11 {
        out.buf.put_i32(p.preferred_read_replica);
    }
    let records_len: u64 = p.records.iter().map(Part::len).sum();
    let too_long = || EncodeError::LengthOverflow {
        field: "records",
        len: usize::try_from(records_len).unwrap_or(usize::MAX),
    };
    if out.flexible {
        let n1 = u32::try_from(records_len)
            .ok()
            .and_then(|n| n.checked_add(1))
            .ok_or_else(too_long)?;
        out.put_uvarint(n1);
    } else {
        out.buf
            .put_i32(i32::try_from(records_len).map_err(|_| too_long())?);
    }
    if records_len > 0 {
        out.cut();
        out.parts
            .extend(p.records.iter().filter(|r| !r.is_empty()).cloned());
    }
    if out.flexible {
        let tagged = [
            p.diverging_epoch.is_some(),
            p.current_leader.is_some(),
            p.snapshot_id.is_some(),
        ];
        out.put_uvarint(tagged.iter().filter(|t| **t).count() as u32);
        if let Some(e) = &p.diverging_epoch {
            out.put_tagged_struct(0, e)?;
        }
        if let Some(l) = &p.current_leader {
            out.put_tagged_struct(1, l)?;
        }
        if let Some(s) = &p.snapshot_id {
            out.put_tagged_struct(2, s)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::response::FileRegion;
    use bytes::{Buf, Bytes};
    use kafka_protocol::messages::fetch_response::{
        AbortedTransaction, FetchableTopicResponse, PartitionData,
    };
    use kafka_protocol::messages::{
        BrokerId, FetchResponse, ProducerId, ResponseHeader, TopicName,
    };
    use kafka_protocol::protocol::Decodable;
    use std::io::Write;
    use std::os::unix::fs::FileExt;
    use std::rc::Rc;

    /// Reads every part into memory, as the socket would receive it.
    fn materialise(frame: &ResponseFrame) -> Bytes {
        let mut wire = Vec::new();
        for part in frame.parts() {
            match part {
                Part::Bytes(b) => wire.extend_from_slice(b),
                Part::File(r) => {
                    let file = std::fs::File::open(format!("/proc/self/fd/{}", r.raw_fd()))
                        .expect("reopen region fd");
                    let mut buf = vec![0u8; r.len() as usize];
                    file.read_exact_at(&mut buf, r.offset())
                        .expect("read region");
                    wire.extend_from_slice(&buf);
                }
            }
        }
        assert_eq!(wire.len() as u64, frame.len());
        Bytes::from(wire)
    }

    /// The same response as kafka-protocol's own struct, records materialised.
    fn as_kafka_protocol(data: &FetchResponseData, records: &[Vec<Bytes>]) -> FetchResponse {
        let mut flat = records.iter();
        FetchResponse::default()
            .with_throttle_time_ms(data.throttle_time_ms)
            .with_error_code(data.error_code)
            .with_session_id(data.session_id)
            .with_node_endpoints(data.node_endpoints.clone())
            .with_responses(
                data.topics
                    .iter()
                    .map(|t| {
                        FetchableTopicResponse::default()
                            .with_topic(TopicName(t.name.clone()))
                            .with_topic_id(t.topic_id.to_vec().try_into().expect("16 bytes"))
                            .with_partitions(
                                t.partitions
                                    .iter()
                                    .map(|p| {
                                        let recs = flat.next().expect("records per partition");
                                        let joined: Vec<u8> =
                                            recs.iter().flat_map(|b| b.iter().copied()).collect();
                                        PartitionData::default()
                                            .with_partition_index(p.partition_index)
                                            .with_error_code(p.error_code)
                                            .with_high_watermark(p.high_watermark)
                                            .with_last_stable_offset(p.last_stable_offset)
                                            .with_log_start_offset(p.log_start_offset)
                                            .with_aborted_transactions(
                                                p.aborted_transactions.as_ref().map(|a| {
                                                    a.iter()
                                                        .map(|t| {
                                                            AbortedTransaction::default()
                                                                .with_producer_id(ProducerId(
                                                                    t.producer_id,
                                                                ))
                                                                .with_first_offset(t.first_offset)
                                                        })
                                                        .collect()
                                                }),
                                            )
                                            .with_preferred_read_replica(BrokerId(
                                                p.preferred_read_replica,
                                            ))
                                            .with_records(Some(Bytes::from(joined)))
                                            .with_diverging_epoch(
                                                p.diverging_epoch.clone().unwrap_or_default(),
                                            )
                                            .with_current_leader(
                                                p.current_leader.clone().unwrap_or_default(),
                                            )
                                            .with_snapshot_id(
                                                p.snapshot_id.clone().unwrap_or_default(),
                                            )
                                    })
                                    .collect(),
                            )
                    })
                    .collect(),
            )
    }

    struct Fixture {
        _dir: tempfile::TempDir,
        file: Rc<std::fs::File>,
    }

    /// A segment-like file with distinguishable bytes at every offset.
    fn segment() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("00000000000000000000.log");
        let mut f = std::fs::File::create(&path).unwrap();
        let content: Vec<u8> = (0..64 * 1024u32).map(|i| (i * 7 + i / 251) as u8).collect();
        f.write_all(&content).unwrap();
        f.sync_all().unwrap();
        let file = Rc::new(std::fs::File::open(&path).unwrap());
        Fixture { _dir: dir, file }
    }

    fn region(fx: &Fixture, offset: u64, len: u64) -> Part {
        let fd: Rc<dyn std::os::fd::AsRawFd> = fx.file.clone();
        Part::File(FileRegion::new(fd, offset, len))
    }

    /// Several topics and partitions exercising errors, empty/non-empty/null aborted lists,
    /// zero-length records, mixed memory/file records. Returns the data and each partition's
    /// expected record bytes.
    fn sample(fx: &Fixture, version: i16) -> (FetchResponseData, Vec<Vec<Bytes>>) {
        let read = |off: u64, len: u64| {
            let mut b = vec![0u8; len as usize];
            fx.file.read_exact_at(&mut b, off).unwrap();
            Bytes::from(b)
        };
        let flexible = version >= 12;
        let mut p0 = FetchPartitionData::new(0);
        p0.high_watermark = 1000;
        p0.last_stable_offset = 990;
        p0.log_start_offset = if version >= 5 { 10 } else { -1 };
        p0.aborted_transactions = Some(vec![
            AbortedTxn {
                producer_id: 77,
                first_offset: 900,
            },
            AbortedTxn {
                producer_id: 78,
                first_offset: 950,
            },
        ]);
        p0.records = vec![region(fx, 100, 3000), region(fx, 5000, 17)];
        if version >= 11 {
            p0.preferred_read_replica = 2;
        }
        let mut p1 = FetchPartitionData::new(1);
        p1.error_code = 6; // NOT_LEADER_OR_FOLLOWER
        p1.high_watermark = -1;
        p1.aborted_transactions = Some(Vec::new());
        if flexible {
            p1.current_leader = Some(
                LeaderIdAndEpoch::default()
                    .with_leader_id(BrokerId(3))
                    .with_leader_epoch(12),
            );
        }
        let mut p2 = FetchPartitionData::new(7);
        p2.high_watermark = 5;
        p2.records = vec![
            Part::Bytes(Bytes::from_static(b"in-memory-head")),
            region(fx, 40_000, 9000),
            Part::Bytes(Bytes::new()),
            region(fx, 0, 0),
        ];
        if flexible {
            p2.diverging_epoch = Some(EpochEndOffset::default().with_epoch(4).with_end_offset(3));
            p2.snapshot_id = Some(SnapshotId::default().with_end_offset(88).with_epoch(2));
        }
        let topic_a = FetchTopicData {
            name: StrBytes::from_static_str("orders"),
            topic_id: *b"0123456789abcdef",
            partitions: vec![p0, p1],
        };
        let topic_b = FetchTopicData {
            name: StrBytes::from_static_str("payments.eu"),
            topic_id: [0xab; 16],
            partitions: vec![p2],
        };
        let empty_topic = FetchTopicData {
            name: StrBytes::from_static_str("quiet"),
            topic_id: [1; 16],
            partitions: Vec::new(),
        };
        let data = FetchResponseData {
            throttle_time_ms: 25,
            error_code: 0,
            session_id: if version >= 7 { 123_456 } else { 0 },
            topics: vec![topic_a, topic_b, empty_topic],
            node_endpoints: if version >= 16 {
                vec![NodeEndpoint::default()
                    .with_node_id(BrokerId(3))
                    .with_host(StrBytes::from_static_str("broker-3.weir"))
                    .with_port(9092)
                    .with_rack(Some(StrBytes::from_static_str("az-2")))]
            } else {
                Vec::new()
            },
        };
        let records = vec![
            vec![read(100, 3000), read(5000, 17)],
            vec![],
            vec![Bytes::from_static(b"in-memory-head"), read(40_000, 9000)],
        ];
        (data, records)
    }

    #[test]
    fn kafka_protocol_decodes_every_version_identically() {
        let fx = segment();
        for version in FETCH_MIN_VERSION..=FETCH_MAX_VERSION {
            let (data, records) = sample(&fx, version);
            let frame = encode_fetch_response(version, 0x5eed, &data)
                .unwrap_or_else(|e| panic!("v{version}: {e}"));
            assert!(
                frame.parts().iter().any(|p| matches!(p, Part::File(_))),
                "records must stay file regions"
            );
            let mut wire = materialise(&frame);
            assert_eq!(
                wire.get_i32() as usize,
                wire.len(),
                "v{version} size prefix"
            );
            let hv = ApiKey::Fetch.response_header_version(version);
            let header = ResponseHeader::decode(&mut wire, hv).unwrap();
            assert_eq!(header.correlation_id, 0x5eed);
            let decoded = FetchResponse::decode(&mut wire, version)
                .unwrap_or_else(|e| panic!("kafka-protocol rejects our v{version}: {e:#}"));
            assert!(wire.is_empty(), "v{version}: {} trailing bytes", wire.len());

            assert_eq!(decoded.throttle_time_ms, 25);
            assert_eq!(decoded.session_id, if version >= 7 { 123_456 } else { 0 });
            assert_eq!(decoded.responses.len(), 3);
            let t0 = &decoded.responses[0];
            if version >= 13 {
                assert_eq!(t0.topic_id.as_bytes(), b"0123456789abcdef");
            } else {
                assert_eq!(&*t0.topic.0, "orders");
            }
            let p0 = &t0.partitions[0];
            assert_eq!(p0.high_watermark, 1000);
            assert_eq!(p0.last_stable_offset, 990);
            let aborted = p0.aborted_transactions.as_ref().expect("non-null");
            assert_eq!(aborted.len(), 2);
            assert_eq!(aborted[1].producer_id.0, 78);
            assert_eq!(aborted[1].first_offset, 950);
            let mut want0 = records[0][0].to_vec();
            want0.extend_from_slice(&records[0][1]);
            assert_eq!(p0.records.as_deref(), Some(&want0[..]));
            let p1 = &t0.partitions[1];
            assert_eq!(p1.error_code, 6);
            assert_eq!(p1.aborted_transactions.as_deref(), Some(&[][..]));
            assert_eq!(p1.records.as_deref(), Some(&[][..]), "zero-length records");
            let p2 = &decoded.responses[1].partitions[0];
            assert_eq!(p2.partition_index, 7);
            assert!(p2.aborted_transactions.is_none(), "null aborted list");
            assert_eq!(p2.records.as_ref().map(Bytes::len), Some(14 + 9000));
            assert!(decoded.responses[2].partitions.is_empty());
            if version >= 12 {
                assert_eq!(p1.current_leader.leader_id.0, 3);
                assert_eq!(p2.diverging_epoch.epoch, 4);
                assert_eq!(p2.snapshot_id.end_offset, 88);
            }
            if version >= 16 {
                assert_eq!(decoded.node_endpoints.len(), 1);
                assert_eq!(&*decoded.node_endpoints[0].host, "broker-3.weir");
            }

            // Byte-for-byte what kafka-protocol would have sent with the records in memory.
            let reference = as_kafka_protocol(&data, &records);
            assert_eq!(decoded, {
                let mut r = reference.clone();
                if version < 13 {
                    for t in &mut r.responses {
                        t.topic_id = Default::default();
                    }
                } else {
                    for t in &mut r.responses {
                        t.topic = Default::default();
                    }
                }
                if version < 5 {
                    for t in &mut r.responses {
                        for p in &mut t.partitions {
                            p.log_start_offset = -1;
                        }
                    }
                }
                r
            });
            let mut expected = BytesMut::new();
            expected.put_i32(0);
            ResponseHeader::default()
                .with_correlation_id(0x5eed)
                .encode(&mut expected, hv)
                .unwrap();
            reference.encode(&mut expected, version).unwrap();
            let body_len = (expected.len() - 4) as i32;
            expected[..4].copy_from_slice(&body_len.to_be_bytes());
            assert_eq!(
                materialise(&frame),
                expected.freeze(),
                "v{version} differs from kafka-protocol's encoding"
            );
        }
    }

    #[test]
    fn error_only_response_with_no_topics_decodes() {
        for version in [4i16, 7, 12, 16] {
            let data = FetchResponseData {
                error_code: if version >= 7 { 71 } else { 0 },
                ..FetchResponseData::default()
            };
            let frame = encode_fetch_response(version, 1, &data).unwrap();
            let mut wire = materialise(&frame);
            wire.advance(4);
            ResponseHeader::decode(&mut wire, ApiKey::Fetch.response_header_version(version))
                .unwrap();
            let decoded = FetchResponse::decode(&mut wire, version).unwrap();
            assert!(decoded.responses.is_empty());
            assert_eq!(decoded.error_code, if version >= 7 { 71 } else { 0 });
        }
    }

    #[test]
    fn records_spanning_a_varint_boundary_are_sized_correctly() {
        // 127 and 128 bytes straddle the 1-byte/2-byte compact length boundary (len + 1).
        let fx = segment();
        for len in [126u64, 127, 128, 16_383, 16_384] {
            let mut p = FetchPartitionData::new(0);
            p.records = vec![region(&fx, 1, len)];
            let data = FetchResponseData {
                topics: vec![FetchTopicData {
                    partitions: vec![p],
                    ..FetchTopicData::default()
                }],
                ..FetchResponseData::default()
            };
            let frame = encode_fetch_response(12, 9, &data).unwrap();
            let mut wire = materialise(&frame);
            wire.advance(4);
            ResponseHeader::decode(&mut wire, 1).unwrap();
            let decoded = FetchResponse::decode(&mut wire, 12).unwrap();
            assert!(wire.is_empty());
            let got = decoded.responses[0].partitions[0].records.clone().unwrap();
            assert_eq!(got.len() as u64, len);
        }
    }

    #[test]
    fn fields_a_version_cannot_carry_are_refused_like_kafka_protocol() {
        let mut p = FetchPartitionData::new(0);
        p.preferred_read_replica = 1;
        let data = FetchResponseData {
            topics: vec![FetchTopicData {
                partitions: vec![p],
                ..FetchTopicData::default()
            }],
            ..FetchResponseData::default()
        };
        assert_eq!(
            encode_fetch_response(10, 1, &data).unwrap_err(),
            EncodeError::FieldNotInVersion {
                api_key: ApiKey::Fetch,
                field: "preferred_read_replica",
                version: 10
            }
        );
        assert!(encode_fetch_response(11, 1, &data).is_ok());
        let data = FetchResponseData {
            session_id: 5,
            ..FetchResponseData::default()
        };
        assert!(matches!(
            encode_fetch_response(6, 1, &data),
            Err(EncodeError::FieldNotInVersion {
                field: "session_id",
                ..
            })
        ));
        for bad in [3i16, 19] {
            assert_eq!(
                encode_fetch_response(bad, 1, &FetchResponseData::default()).unwrap_err(),
                EncodeError::UnsupportedVersion {
                    api_key: ApiKey::Fetch,
                    version: bad
                }
            );
        }
    }
}
