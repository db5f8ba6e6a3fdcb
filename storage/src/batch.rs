//! Kafka record batches (magic v2): header layout, validation, offset assignment, and a builder.
//!
//! A batch is stored exactly as the client sent it. The broker writes only `baseOffset` and
//! `partitionLeaderEpoch`, which lie before the CRC-covered range (`attributes` onwards), so the
//! client's CRC stays valid and nothing is re-encoded or decompressed.

use crate::error::BatchError;
use crate::types::{LeaderEpoch, Offset};

pub const BASE_OFFSET_AT: usize = 0;
pub const BATCH_LENGTH_AT: usize = 8;
pub const LEADER_EPOCH_AT: usize = 12;
pub const MAGIC_AT: usize = 16;
pub const CRC_AT: usize = 17;
pub const ATTRIBUTES_AT: usize = 21;
pub const LAST_OFFSET_DELTA_AT: usize = 23;
pub const BASE_TIMESTAMP_AT: usize = 27;
pub const MAX_TIMESTAMP_AT: usize = 35;
pub const PRODUCER_ID_AT: usize = 43;
pub const PRODUCER_EPOCH_AT: usize = 51;
pub const BASE_SEQUENCE_AT: usize = 53;
pub const RECORD_COUNT_AT: usize = 57;
/// Size of the v2 batch header; records follow.
pub const HEADER_LEN: usize = 61;
/// `baseOffset` and `batchLength` precede the part `batchLength` counts.
pub const LOG_OVERHEAD: usize = 12;

const COMPRESSION_MASK: i16 = 0x07;
/// Attribute bit 3: the batch's timestamps are LogAppendTime (set by the broker).
pub const LOG_APPEND_TIME_FLAG: i16 = 0x08;
const TRANSACTIONAL_FLAG: i16 = 0x10;
const CONTROL_FLAG: i16 = 0x20;

/// The fixed header of a v2 record batch, decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    pub base_offset: Offset,
    pub batch_length: i32,
    pub partition_leader_epoch: LeaderEpoch,
    pub magic: i8,
    pub crc: u32,
    pub attributes: i16,
    pub last_offset_delta: i32,
    pub base_timestamp: i64,
    pub max_timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub record_count: i32,
}

fn be_i16(b: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([b[at], b[at + 1]])
}
fn be_i32(b: &[u8], at: usize) -> i32 {
    i32::from_be_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}
fn be_i64(b: &[u8], at: usize) -> i64 {
    i64::from_be_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

impl BatchHeader {
    /// Decodes the header from the first [`HEADER_LEN`] bytes. Checks nothing but length.
    pub fn parse(b: &[u8]) -> Result<Self, BatchError> {
        if b.len() < HEADER_LEN {
            return Err(BatchError::TooShort {
                len: b.len(),
                min: HEADER_LEN,
            });
        }
        Ok(Self {
            base_offset: be_i64(b, BASE_OFFSET_AT),
            batch_length: be_i32(b, BATCH_LENGTH_AT),
            partition_leader_epoch: be_i32(b, LEADER_EPOCH_AT),
            magic: b[MAGIC_AT] as i8,
            crc: u32::from_be_bytes(b[CRC_AT..CRC_AT + 4].try_into().expect("4 bytes")),
            attributes: be_i16(b, ATTRIBUTES_AT),
            last_offset_delta: be_i32(b, LAST_OFFSET_DELTA_AT),
            base_timestamp: be_i64(b, BASE_TIMESTAMP_AT),
            max_timestamp: be_i64(b, MAX_TIMESTAMP_AT),
            producer_id: be_i64(b, PRODUCER_ID_AT),
            producer_epoch: be_i16(b, PRODUCER_EPOCH_AT),
            base_sequence: be_i32(b, BASE_SEQUENCE_AT),
            record_count: be_i32(b, RECORD_COUNT_AT),
        })
    }

    /// Bytes the whole batch occupies in the log, header included.
    pub fn total_len(&self) -> usize {
        LOG_OVERHEAD + self.batch_length.max(0) as usize
    }

    pub fn last_offset(&self) -> Offset {
        self.base_offset + self.last_offset_delta as i64
    }

    /// 0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd.
    pub fn compression(&self) -> u8 {
        (self.attributes & COMPRESSION_MASK) as u8
    }

    /// Whether the batch's timestamp type is LogAppendTime: every record's timestamp is then the
    /// batch's max timestamp.
    pub fn is_log_append_time(&self) -> bool {
        self.attributes & LOG_APPEND_TIME_FLAG != 0
    }

    pub fn is_transactional(&self) -> bool {
        self.attributes & TRANSACTIONAL_FLAG != 0
    }

    pub fn is_control(&self) -> bool {
        self.attributes & CONTROL_FLAG != 0
    }

    /// Checks what can be checked from the header alone: magic, a length that covers a header,
    /// and a record count that fits the batch's offset span. A stored batch may hold fewer
    /// records than its span (the compaction cleaner removes records but keeps the span);
    /// [`Self::check_produced`] is the stricter rule for what a producer sends.
    pub fn check_shape(&self) -> Result<(), BatchError> {
        if self.magic != 2 {
            return Err(BatchError::BadMagic(self.magic));
        }
        if (self.batch_length as i64) < (HEADER_LEN - LOG_OVERHEAD) as i64 {
            return Err(BatchError::LengthMismatch {
                batch_length: self.batch_length as i64,
                available: HEADER_LEN - LOG_OVERHEAD,
            });
        }
        if self.record_count < 0
            || self.last_offset_delta < 0
            || self.record_count as i64 > self.last_offset_delta as i64 + 1
        {
            return Err(self.bad_count());
        }
        Ok(())
    }

    /// A producer's batch: at least one record, and exactly one offset per record.
    pub fn check_produced(&self) -> Result<(), BatchError> {
        if self.record_count < 1 || self.last_offset_delta != self.record_count - 1 {
            return Err(self.bad_count());
        }
        Ok(())
    }

    fn bad_count(&self) -> BatchError {
        BatchError::BadRecordCount {
            record_count: self.record_count,
            last_offset_delta: self.last_offset_delta,
        }
    }
}

/// CRC-32C over `attributes` to the end of the batch, as the v2 format defines it.
pub fn compute_crc(batch: &[u8]) -> u32 {
    crc32c::crc32c(&batch[ATTRIBUTES_AT..])
}

/// Validates one complete batch (exactly `batch.len()` bytes): framing, magic, record count, CRC.
pub fn validate(batch: &[u8]) -> Result<BatchHeader, BatchError> {
    let header = BatchHeader::parse(batch)?;
    header.check_shape()?;
    if header.total_len() != batch.len() {
        return Err(BatchError::LengthMismatch {
            batch_length: header.batch_length as i64,
            available: batch.len().saturating_sub(LOG_OVERHEAD),
        });
    }
    let actual = compute_crc(batch);
    if actual != header.crc {
        return Err(BatchError::CrcMismatch {
            expected: header.crc,
            actual,
        });
    }
    Ok(header)
}

/// Splits a buffer of concatenated batches (a produce request's or a fetch's `records`) into
/// validated batches. A trailing partial batch is an error here: producers send whole batches.
pub fn split_and_validate(
    buf: &[u8],
) -> Result<Vec<(std::ops::Range<usize>, BatchHeader)>, BatchError> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < buf.len() {
        let rest = &buf[pos..];
        if rest.len() < HEADER_LEN {
            return Err(BatchError::TooShort {
                len: rest.len(),
                min: HEADER_LEN,
            });
        }
        let header = BatchHeader::parse(rest)?;
        header.check_shape()?;
        let len = header.total_len();
        if len > rest.len() {
            return Err(BatchError::LengthMismatch {
                batch_length: header.batch_length as i64,
                available: rest.len() - LOG_OVERHEAD,
            });
        }
        validate(&rest[..len])?;
        out.push((pos..pos + len, header));
        pos += len;
    }
    Ok(out)
}

/// Splits concatenated batches by their headers alone: framing and shape, no CRC. For callers
/// that need the headers before handing the bytes to the log, which validates fully (so the CRC
/// is computed once per batch on the produce path).
pub fn split_headers(buf: &[u8]) -> Result<Vec<BatchHeader>, BatchError> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < buf.len() {
        let header = BatchHeader::parse(&buf[pos..])?;
        header.check_shape()?;
        let len = header.total_len();
        if len > buf.len() - pos {
            return Err(BatchError::LengthMismatch {
                batch_length: header.batch_length as i64,
                available: buf.len() - pos - LOG_OVERHEAD.min(buf.len() - pos),
            });
        }
        out.push(header);
        pos += len;
    }
    Ok(out)
}

/// Writes the broker-assigned fields. Neither is covered by the CRC.
pub fn assign(batch: &mut [u8], base_offset: Offset, leader_epoch: LeaderEpoch) {
    batch[BASE_OFFSET_AT..BASE_OFFSET_AT + 8].copy_from_slice(&base_offset.to_be_bytes());
    batch[LEADER_EPOCH_AT..LEADER_EPOCH_AT + 4].copy_from_slice(&leader_epoch.to_be_bytes());
}

/// Sets a complete batch's timestamp type and max timestamp and recomputes its CRC (Kafka's
/// `DefaultRecordBatch.setMaxTimestamp`): what the leader does to a LogAppendTime topic's
/// batches, and to a batch whose stated max timestamp is not its records' largest.
pub fn set_max_timestamp(batch: &mut [u8], log_append_time: bool, max_timestamp: i64) {
    let attributes = be_i16(batch, ATTRIBUTES_AT) & !LOG_APPEND_TIME_FLAG
        | if log_append_time {
            LOG_APPEND_TIME_FLAG
        } else {
            0
        };
    batch[ATTRIBUTES_AT..ATTRIBUTES_AT + 2].copy_from_slice(&attributes.to_be_bytes());
    batch[MAX_TIMESTAMP_AT..MAX_TIMESTAMP_AT + 8].copy_from_slice(&max_timestamp.to_be_bytes());
    let crc = compute_crc(batch);
    batch[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
}

/// `attributes` with another codec and timestamp type, the other flags kept: the attributes of
/// a batch the leader rebuilds.
pub fn attributes_with(attributes: i16, codec: u8, log_append_time: bool) -> i16 {
    let timestamp_type = if log_append_time {
        LOG_APPEND_TIME_FLAG
    } else {
        0
    };
    (attributes & !(COMPRESSION_MASK | LOG_APPEND_TIME_FLAG))
        | (i16::from(codec) & COMPRESSION_MASK)
        | timestamp_type
}

/// Zig-zag varint, as records inside a batch encode their fields.
pub fn put_varint(out: &mut Vec<u8>, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    while z >= 0x80 {
        out.push((z as u8) | 0x80);
        z >>= 7;
    }
    out.push(z as u8);
}

/// Reads a zig-zag varint; `None` when the buffer ends inside it or it is over-long.
pub fn get_varint(b: &[u8], pos: &mut usize) -> Option<i64> {
    let unzigzag = |z: u64| ((z >> 1) as i64) ^ -((z & 1) as i64);
    // One byte is the common case (small lengths and deltas): the produce path reads several
    // per record.
    let first = *b.get(*pos)?;
    *pos += 1;
    if first < 0x80 {
        return Some(unzigzag(u64::from(first)));
    }
    let mut z = u64::from(first & 0x7f);
    let mut shift = 7;
    while shift < 70 {
        let byte = *b.get(*pos)?;
        *pos += 1;
        z |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(unzigzag(z));
        }
        shift += 7;
    }
    None
}

/// A record to put in a batch built by [`build_batch`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Record {
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<(String, Option<Vec<u8>>)>,
    /// Milliseconds after the batch's base timestamp.
    pub timestamp_delta: i64,
}

/// Producer identity stamped in a batch (`-1` fields for a non-idempotent producer).
#[derive(Debug, Clone, Copy)]
pub struct ProducerFields {
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
}

impl ProducerFields {
    pub const NONE: Self = Self {
        producer_id: -1,
        producer_epoch: -1,
        base_sequence: -1,
    };
}

/// Builds an uncompressed v2 batch with base offset 0, as a producer would send it. Used by
/// storage's own tests and benches, the bench tool, and internal topics written by the broker.
pub fn build_batch(records: &[Record], base_timestamp: i64, producer: ProducerFields) -> Vec<u8> {
    let mut body = Vec::new();
    let mut max_ts = base_timestamp;
    for (i, r) in records.iter().enumerate() {
        let mut rec = Vec::new();
        rec.push(0u8); // record attributes: unused
        put_varint(&mut rec, r.timestamp_delta);
        put_varint(&mut rec, i as i64);
        put_bytes(&mut rec, r.key.as_deref());
        put_bytes(&mut rec, r.value.as_deref());
        put_varint(&mut rec, r.headers.len() as i64);
        for (k, v) in &r.headers {
            put_bytes(&mut rec, Some(k.as_bytes()));
            put_bytes(&mut rec, v.as_deref());
        }
        put_varint(&mut body, rec.len() as i64);
        body.extend_from_slice(&rec);
        max_ts = max_ts.max(base_timestamp + r.timestamp_delta);
    }
    let mut b = Vec::with_capacity(HEADER_LEN + body.len());
    b.extend_from_slice(&0i64.to_be_bytes());
    b.extend_from_slice(&((HEADER_LEN - LOG_OVERHEAD + body.len()) as i32).to_be_bytes());
    b.extend_from_slice(&(-1i32).to_be_bytes());
    b.push(2);
    b.extend_from_slice(&0u32.to_be_bytes());
    b.extend_from_slice(&0i16.to_be_bytes());
    b.extend_from_slice(&(records.len() as i32 - 1).to_be_bytes());
    b.extend_from_slice(&base_timestamp.to_be_bytes());
    b.extend_from_slice(&max_ts.to_be_bytes());
    b.extend_from_slice(&producer.producer_id.to_be_bytes());
    b.extend_from_slice(&producer.producer_epoch.to_be_bytes());
    b.extend_from_slice(&producer.base_sequence.to_be_bytes());
    b.extend_from_slice(&(records.len() as i32).to_be_bytes());
    b.extend_from_slice(&body);
    let crc = compute_crc(&b);
    b[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
    b
}

fn put_bytes(out: &mut Vec<u8>, v: Option<&[u8]>) {
    match v {
        None => put_varint(out, -1),
        Some(v) => {
            put_varint(out, v.len() as i64);
            out.extend_from_slice(v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(n: usize) -> Vec<u8> {
        let records: Vec<Record> = (0..n)
            .map(|i| Record {
                key: Some(format!("k{i}").into_bytes()),
                value: Some(vec![i as u8; 10]),
                headers: vec![("h".into(), None)],
                timestamp_delta: i as i64,
            })
            .collect();
        build_batch(&records, 1_700_000_000_000, ProducerFields::NONE)
    }

    #[test]
    fn built_batch_validates_and_reports_fields() {
        let b = sample(3);
        let h = validate(&b).unwrap();
        assert_eq!(h.record_count, 3);
        assert_eq!(h.last_offset_delta, 2);
        assert_eq!(h.max_timestamp, 1_700_000_000_002);
        assert_eq!(h.total_len(), b.len());
    }

    #[test]
    fn assigning_offset_and_epoch_keeps_crc_valid() {
        let mut b = sample(2);
        assign(&mut b, 1234, 7);
        let h = validate(&b).unwrap();
        assert_eq!(
            (h.base_offset, h.partition_leader_epoch, h.last_offset()),
            (1234, 7, 1235)
        );
    }

    #[test]
    fn every_flipped_covered_byte_is_caught() {
        let b = sample(2);
        for i in MAGIC_AT..b.len() {
            let mut c = b.clone();
            c[i] ^= 0x40;
            assert!(validate(&c).is_err(), "flip at {i} passed");
        }
    }

    #[test]
    fn framing_errors_are_typed() {
        let b = sample(1);
        assert!(matches!(
            validate(&b[..30]),
            Err(BatchError::TooShort { .. })
        ));
        assert!(matches!(
            validate(&b[..b.len() - 1]),
            Err(BatchError::LengthMismatch { .. })
        ));
        let mut m = b.clone();
        m[MAGIC_AT] = 1;
        assert_eq!(validate(&m), Err(BatchError::BadMagic(1)));
        let mut two = b.clone();
        two.extend_from_slice(&b);
        assert_eq!(split_and_validate(&two).unwrap().len(), 2);
        assert_eq!(split_headers(&two).unwrap().len(), 2);
        assert!(split_headers(&two[..two.len() - 1]).is_err());
        two.push(0);
        assert!(split_and_validate(&two).is_err());
    }

    #[test]
    fn varints_round_trip() {
        for v in [
            0i64,
            1,
            -1,
            63,
            -64,
            64,
            300,
            i32::MAX as i64,
            i64::MIN,
            i64::MAX,
        ] {
            let mut out = Vec::new();
            put_varint(&mut out, v);
            let mut pos = 0;
            assert_eq!(get_varint(&out, &mut pos), Some(v));
            assert_eq!(pos, out.len());
        }
    }
}
