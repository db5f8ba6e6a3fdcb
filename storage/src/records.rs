//! The records inside a v2 batch, for the few places that must look past the header: the
//! compaction cleaner (which keeps some records of a batch and drops others) and produce
//! validation for compacted topics (every record needs a key).
//!
//! Records are not decoded into owned values: each is a byte range of the (decompressed) records
//! section plus the fields the callers need, so a rewritten batch carries its surviving records
//! byte for byte, offset deltas and timestamps included, exactly as Kafka's cleaner keeps them.
//! Compression codecs come from `kafka-protocol` (Kafka's framing of snappy and lz4 included).

use crate::batch::{
    compute_crc, get_varint, BatchHeader, ATTRIBUTES_AT, BATCH_LENGTH_AT, CRC_AT, HEADER_LEN,
    LOG_OVERHEAD, MAX_TIMESTAMP_AT, RECORD_COUNT_AT,
};
use crate::types::Offset;
use bytes::{Bytes, BytesMut};
use kafka_protocol::compression::{Compressor, Gzip, Lz4, Snappy, Zstd};
use std::io::Read;
use std::ops::Range;

/// The most bytes one batch's records may decompress to. Kafka bounds batches by their
/// compressed size only; a batch of 1 MiB (the default `max.message.bytes`) compressing a
/// thousand to one would still fit, while a hostile batch inflating to gigabytes is refused
/// instead of exhausting the broker's memory.
pub const DECOMPRESSED_BATCH_BYTES_MAX: usize = 256 << 20;

/// Why the records of a batch could not be read or rewritten.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordsError {
    #[error("unknown compression codec {0}")]
    UnknownCodec(u8),
    #[error("{codec} records section could not be {action}: {reason}")]
    Codec {
        codec: &'static str,
        action: &'static str,
        reason: String,
    },
    #[error("record {index} of the batch is malformed")]
    Malformed { index: i32 },
    #[error("the batch holds {found} records, its header says {expected}")]
    CountMismatch { expected: i32, found: i32 },
    #[error("the batch header is invalid")]
    BadHeader,
    #[error("the records decompress to more than {max} bytes")]
    TooLarge { max: usize },
}

/// One record of a batch, located in [`BatchRecords::data`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordView {
    /// The whole record: its length varint and body, to copy into a rewritten batch.
    pub raw: Range<usize>,
    pub offset: Offset,
    pub timestamp: i64,
    /// The key bytes, `None` for a null key.
    pub key: Option<Range<usize>>,
    /// The value bytes, `None` for a null value (a tombstone in a compacted topic).
    pub value: Option<Range<usize>>,
    /// Everything after the offset delta (key, value and headers, as encoded): what a batch
    /// rebuilt in another codec copies, with fresh deltas in front.
    pub fields: Range<usize>,
}

impl RecordView {
    pub fn is_tombstone(&self) -> bool {
        self.value.is_none()
    }
}

/// The records of one batch, decompressed.
pub struct BatchRecords {
    pub header: BatchHeader,
    /// The records section, decompressed.
    pub data: Bytes,
    pub records: Vec<RecordView>,
}

impl BatchRecords {
    /// Reads every record of a complete batch (`batch` holds exactly one).
    pub fn parse(batch: &[u8]) -> Result<Self, RecordsError> {
        let header = BatchHeader::parse(batch).map_err(|_| RecordsError::BadHeader)?;
        if header.total_len() != batch.len() {
            return Err(RecordsError::BadHeader);
        }
        let data = decompress(header.compression(), &batch[HEADER_LEN..])?;
        let records = parse_records(&header, &data)?;
        Ok(Self {
            header,
            data,
            records,
        })
    }

    pub fn key(&self, r: &RecordView) -> Option<&[u8]> {
        r.key.clone().map(|k| &self.data[k])
    }

    pub fn value(&self, r: &RecordView) -> Option<&[u8]> {
        r.value.clone().map(|v| &self.data[v])
    }

    /// A new batch holding only `keep` (records of this batch, in order): the same base offset,
    /// last offset delta, producer fields, base timestamp and codec, so every surviving record
    /// keeps its offset and timestamp; record count, max timestamp, length and CRC are rewritten.
    pub fn rebuild(&self, keep: &[&RecordView], original: &[u8]) -> Result<Vec<u8>, RecordsError> {
        let mut section = Vec::with_capacity(keep.iter().map(|r| r.raw.len()).sum());
        for r in keep {
            section.extend_from_slice(&self.data[r.raw.clone()]);
        }
        let body = compress(self.header.compression(), section)?;
        let mut out = Vec::with_capacity(HEADER_LEN + body.len());
        out.extend_from_slice(&original[..HEADER_LEN]);
        out.extend_from_slice(&body);
        let batch_length = (out.len() - LOG_OVERHEAD) as i32;
        out[BATCH_LENGTH_AT..BATCH_LENGTH_AT + 4].copy_from_slice(&batch_length.to_be_bytes());
        let max_ts = keep
            .iter()
            .map(|r| r.timestamp)
            .max()
            .unwrap_or(self.header.max_timestamp);
        out[MAX_TIMESTAMP_AT..MAX_TIMESTAMP_AT + 8].copy_from_slice(&max_ts.to_be_bytes());
        out[RECORD_COUNT_AT..RECORD_COUNT_AT + 4]
            .copy_from_slice(&(keep.len() as i32).to_be_bytes());
        let crc = compute_crc(&out);
        out[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
        Ok(out)
    }
}

/// Whether any record of the batch has a null key (Kafka refuses such records in a compacted
/// topic: they could never be cleaned).
pub fn has_keyless_record(batch: &[u8]) -> Result<bool, RecordsError> {
    let b = BatchRecords::parse(batch)?;
    Ok(b.records.iter().any(|r| r.key.is_none()))
}

pub(crate) fn parse_records(h: &BatchHeader, data: &[u8]) -> Result<Vec<RecordView>, RecordsError> {
    // A count larger than the bytes could hold is hostile: never pre-allocate from it.
    let mut out = Vec::with_capacity((h.record_count.max(0) as usize).min(data.len() / 7 + 1));
    let mut pos = 0usize;
    let mut index = 0i32;
    while pos < data.len() {
        let bad = RecordsError::Malformed { index };
        let start = pos;
        let len = get_varint(data, &mut pos).ok_or(bad.clone())?;
        let body_start = pos;
        let end = usize::try_from(len)
            .ok()
            .and_then(|l| body_start.checked_add(l))
            .filter(|e| *e <= data.len())
            .ok_or(bad.clone())?;
        let body = &data[..end];
        let mut p = body_start + 1; // attributes: unused in v2
        let ts_delta = get_varint(body, &mut p).ok_or(bad.clone())?;
        let offset_delta = get_varint(body, &mut p).ok_or(bad.clone())?;
        let fields = p..end;
        let key = read_bytes(body, &mut p).ok_or(bad.clone())?;
        let value = read_bytes(body, &mut p).ok_or(bad.clone())?;
        // The base offset is outside the CRC and the delta anything a peer wrote: an offset
        // past i64::MAX is a malformed record, not an overflow.
        let offset = h.base_offset.checked_add(offset_delta).ok_or(bad.clone())?;
        out.push(RecordView {
            raw: start..end,
            offset,
            timestamp: h.base_timestamp.wrapping_add(ts_delta),
            key,
            value,
            fields,
        });
        pos = end;
        index += 1;
    }
    if index != h.record_count {
        return Err(RecordsError::CountMismatch {
            expected: h.record_count,
            found: index,
        });
    }
    Ok(out)
}

/// What validation reads of one record, without copying it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordMeta {
    pub timestamp_delta: i64,
    pub offset_delta: i64,
    /// Key and value lengths as encoded; -1 for null.
    pub key_len: i64,
    pub value_len: i64,
}

/// Walks the records of a (decompressed) records section, calling `f` with each record's index
/// and fields, and checks the structure as Kafka's record reader does: every length inside its
/// record, headers included, and as many records as the header counts. No allocation: this runs
/// on every produced batch that needs a record-level check.
pub fn walk_records(
    data: &[u8],
    record_count: i32,
    mut f: impl FnMut(i32, RecordMeta),
) -> Result<(), RecordsError> {
    let mut pos = 0usize;
    let mut index = 0i32;
    while pos < data.len() {
        let bad = || RecordsError::Malformed { index };
        let len = get_varint(data, &mut pos).ok_or_else(bad)?;
        let body_start = pos;
        let end = usize::try_from(len)
            .ok()
            .filter(|l| *l > 0)
            .and_then(|l| body_start.checked_add(l))
            .filter(|e| *e <= data.len())
            .ok_or_else(bad)?;
        let body = &data[..end];
        let mut p = body_start + 1; // attributes: unused in v2
        let timestamp_delta = get_varint(body, &mut p).ok_or_else(bad)?;
        let offset_delta = get_varint(body, &mut p).ok_or_else(bad)?;
        let key_len = skip_bytes(body, &mut p).ok_or_else(bad)?;
        let value_len = skip_bytes(body, &mut p).ok_or_else(bad)?;
        let headers = get_varint(body, &mut p).ok_or_else(bad)?;
        if headers < 0 {
            return Err(bad());
        }
        for _ in 0..headers {
            // A header key is never null; its value may be.
            if skip_bytes(body, &mut p).ok_or_else(bad)? < 0 {
                return Err(bad());
            }
            skip_bytes(body, &mut p).ok_or_else(bad)?;
        }
        if p != end {
            return Err(bad());
        }
        f(
            index,
            RecordMeta {
                timestamp_delta,
                offset_delta,
                key_len,
                value_len,
            },
        );
        pos = end;
        index = index.checked_add(1).ok_or_else(bad)?;
    }
    if index != record_count {
        return Err(RecordsError::CountMismatch {
            expected: record_count,
            found: index,
        });
    }
    Ok(())
}

/// A varint length and that many bytes (or null at -1), skipped; returns the length.
fn skip_bytes(b: &[u8], pos: &mut usize) -> Option<i64> {
    let len = get_varint(b, pos)?;
    if len < -1 {
        return None;
    }
    if len >= 0 {
        let end = pos.checked_add(usize::try_from(len).ok()?)?;
        if end > b.len() {
            return None;
        }
        *pos = end;
    }
    Some(len)
}

/// A varint length and that many bytes (or null at -1); returns the bytes' range.
fn read_bytes(b: &[u8], pos: &mut usize) -> Option<Option<Range<usize>>> {
    let len = get_varint(b, pos)?;
    if len < 0 {
        return Some(None);
    }
    let start = *pos;
    let end = start.checked_add(usize::try_from(len).ok()?)?;
    if end > b.len() {
        return None;
    }
    *pos = end;
    Some(Some(start..end))
}

fn codec_name(codec: u8) -> &'static str {
    match codec {
        1 => "gzip",
        2 => "snappy",
        3 => "lz4",
        4 => "zstd",
        _ => "none",
    }
}

pub(crate) fn decompress(codec: u8, section: &[u8]) -> Result<Bytes, RecordsError> {
    decompress_bounded(codec, section, DECOMPRESSED_BATCH_BYTES_MAX)
}

/// Decompresses a records section, refusing to produce more than `max` bytes.
fn decompress_bounded(codec: u8, section: &[u8], max: usize) -> Result<Bytes, RecordsError> {
    let fail = |reason: String| RecordsError::Codec {
        codec: codec_name(codec),
        action: "decompressed",
        reason,
    };
    let read_all = |reader: &mut dyn Read| -> Result<Vec<u8>, RecordsError> {
        let mut out = Vec::new();
        reader
            .take(max as u64 + 1)
            .read_to_end(&mut out)
            .map_err(|e| fail(e.to_string()))?;
        if out.len() > max {
            return Err(RecordsError::TooLarge { max });
        }
        Ok(out)
    };
    let out = match codec {
        0 => return Ok(Bytes::copy_from_slice(section)),
        1 => read_all(&mut flate2::read::MultiGzDecoder::new(section))?,
        2 => snappy_bounded(section, max).map_err(|e| match e {
            SnappyError::TooLarge => RecordsError::TooLarge { max },
            SnappyError::Bad(reason) => fail(reason),
        })?,
        3 => read_all(&mut lz4::Decoder::new(section).map_err(|e| fail(e.to_string()))?)?,
        4 => read_all(
            &mut zstd::stream::read::Decoder::new(section).map_err(|e| fail(e.to_string()))?,
        )?,
        c => return Err(RecordsError::UnknownCodec(c)),
    };
    Ok(Bytes::from(out))
}

enum SnappyError {
    TooLarge,
    Bad(String),
}

/// Kafka's snappy: xerial framing (a 16-byte magic header, then length-prefixed raw blocks), or
/// one raw block without the header, as Java's SnappyInputStream accepts. Each block states its
/// decompressed length up front, so the bound is checked before anything is allocated.
fn snappy_bounded(section: &[u8], max: usize) -> Result<Vec<u8>, SnappyError> {
    const XERIAL_MAGIC: &[u8; 8] = b"\x82SNAPPY\x00";
    const XERIAL_HEADER_BYTES: usize = 16;
    let bad = |e: &dyn std::fmt::Display| SnappyError::Bad(e.to_string());
    let mut out = Vec::new();
    let push_block = |block: &[u8], out: &mut Vec<u8>| -> Result<(), SnappyError> {
        let len = snap::raw::decompress_len(block).map_err(|e| bad(&e))?;
        if out.len().saturating_add(len) > max {
            return Err(SnappyError::TooLarge);
        }
        let start = out.len();
        out.resize(start + len, 0);
        snap::raw::Decoder::new()
            .decompress(block, &mut out[start..])
            .map_err(|e| bad(&e))?;
        Ok(())
    };
    if !section.starts_with(XERIAL_MAGIC) {
        push_block(section, &mut out)?;
        return Ok(out);
    }
    let mut rest = section
        .get(XERIAL_HEADER_BYTES..)
        .ok_or_else(|| bad(&"truncated xerial header"))?;
    while !rest.is_empty() {
        let len_bytes: [u8; 4] = rest
            .get(..4)
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| bad(&"truncated block length"))?;
        let len = u32::from_be_bytes(len_bytes) as usize;
        let block = rest
            .get(4..4 + len)
            .ok_or_else(|| bad(&"truncated block"))?;
        push_block(block, &mut out)?;
        rest = &rest[4 + len..];
    }
    Ok(out)
}

fn compress(codec: u8, section: Vec<u8>) -> Result<Vec<u8>, RecordsError> {
    let mut out = BytesMut::new();
    let put = |tmp: &mut BytesMut| {
        tmp.extend_from_slice(&section);
        Ok(())
    };
    let done = match codec {
        0 => return Ok(section),
        1 => Gzip::compress(&mut out, put),
        2 => Snappy::compress(&mut out, put),
        3 => Lz4::compress(&mut out, put),
        4 => Zstd::compress(&mut out, put),
        c => return Err(RecordsError::UnknownCodec(c)),
    };
    done.map_err(|e| RecordsError::Codec {
        codec: codec_name(codec),
        action: "compressed",
        reason: e.to_string(),
    })?;
    Ok(out.to_vec())
}

/// Kafka's default levels (`CompressionType.<codec>.defaultLevel()`): gzip -1 (deflate's own
/// default, 6), lz4 9, zstd 3.
pub const GZIP_DEFAULT_LEVEL: i32 = -1;
pub const LZ4_DEFAULT_LEVEL: i32 = 9;
pub const ZSTD_DEFAULT_LEVEL: i32 = 3;

/// Compresses a records section as the broker does for `compression.type=<codec>` with
/// `compression.<codec>.level` (`None`: the codec's default), in the framing Kafka writes: gzip,
/// a standard LZ4 frame of independent 64 KiB blocks without checksums (Kafka's
/// `Lz4BlockOutputStream`; its reader refuses dependent blocks), a zstd frame, and xerial-framed
/// snappy. liblz4 caps the level at 12 where lz4-java goes to 17: levels above 12 compress as 12.
pub fn compress_section(
    codec: u8,
    level: Option<i32>,
    section: &[u8],
) -> Result<Vec<u8>, RecordsError> {
    use std::io::Write;
    let fail = |reason: String| RecordsError::Codec {
        codec: codec_name(codec),
        action: "compressed",
        reason,
    };
    match codec {
        1 => {
            let level = match level.unwrap_or(GZIP_DEFAULT_LEVEL) {
                l @ 0..=9 => flate2::Compression::new(l as u32),
                _ => flate2::Compression::default(),
            };
            let mut e = flate2::write::GzEncoder::new(Vec::with_capacity(section.len() / 2), level);
            e.write_all(section).map_err(|e| fail(e.to_string()))?;
            e.finish().map_err(|e| fail(e.to_string()))
        }
        3 => {
            let level = level.unwrap_or(LZ4_DEFAULT_LEVEL).max(0) as u32;
            let mut e = lz4::EncoderBuilder::new()
                .level(level)
                .block_size(lz4::BlockSize::Max64KB)
                .block_mode(lz4::BlockMode::Independent)
                .block_checksum(lz4::liblz4::BlockChecksum::NoBlockChecksum)
                .checksum(lz4::ContentChecksum::NoChecksum)
                .build(Vec::with_capacity(section.len() / 2))
                .map_err(|e| fail(e.to_string()))?;
            e.write_all(section).map_err(|e| fail(e.to_string()))?;
            let (out, done) = e.finish();
            done.map_err(|e| fail(e.to_string()))?;
            Ok(out)
        }
        4 => zstd::bulk::compress(section, level.unwrap_or(ZSTD_DEFAULT_LEVEL))
            .map_err(|e| fail(e.to_string())),
        c => compress(c, section.to_vec()),
    }
}

/// Re-encodes an uncompressed batch with `codec` (Kafka's codec ids 0-4), as a client would
/// have sent it: same header, records section compressed, length and CRC rewritten. For
/// benchmarks, tests and tools that need compressed batches.
pub fn compress_batch(batch: &[u8], codec: u8) -> Result<Vec<u8>, RecordsError> {
    let parsed = BatchRecords::parse(batch)?;
    if parsed.header.compression() != 0 {
        return Err(RecordsError::BadHeader);
    }
    let mut out = batch[..HEADER_LEN].to_vec();
    out[ATTRIBUTES_AT + 1] |= codec;
    out.extend_from_slice(&compress(codec, parsed.data.to_vec())?);
    let len = (out.len() - LOG_OVERHEAD) as i32;
    out[BATCH_LENGTH_AT..BATCH_LENGTH_AT + 4].copy_from_slice(&len.to_be_bytes());
    let crc = compute_crc(&out);
    out[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
    Ok(out)
}

#[cfg(test)]
pub(crate) fn with_codec(batch: &[u8], codec: u8) -> Vec<u8> {
    compress_batch(batch, codec).expect("compressible test batch")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::{assign, build_batch, validate, ProducerFields, Record};

    fn rec(key: Option<&str>, value: Option<&str>, ts: i64) -> Record {
        Record {
            key: key.map(|k| k.as_bytes().to_vec()),
            value: value.map(|v| v.as_bytes().to_vec()),
            headers: vec![("h".into(), Some(b"x".to_vec()))],
            timestamp_delta: ts,
        }
    }

    /// Found by fuzz/fuzz_targets/records.rs: a record whose offset (base offset + delta)
    /// passes i64::MAX panicked the reader (the cleaner's, on bytes a leader sent).
    #[test]
    fn a_record_offset_past_the_largest_is_malformed() {
        let mut batch = build_batch(
            &[rec(Some("a"), Some("1"), 0), rec(Some("b"), Some("2"), 1)],
            1_000,
            ProducerFields::NONE,
        );
        assign(&mut batch, i64::MAX, 0);
        assert_eq!(
            BatchRecords::parse(&batch).map(|b| b.records.len()),
            Err(RecordsError::Malformed { index: 1 })
        );
    }

    #[test]
    fn rebuild_keeps_offsets_timestamps_and_codec() {
        for codec in 0..=4u8 {
            let mut plain = build_batch(
                &[
                    rec(Some("a"), Some("1"), 0),
                    rec(Some("b"), Some("2"), 5),
                    rec(Some("a"), None, 9),
                ],
                1_000,
                ProducerFields::NONE,
            );
            assign(&mut plain, 40, 3);
            let batch = with_codec(&plain, codec);
            validate(&batch).unwrap();
            let parsed = BatchRecords::parse(&batch).unwrap();
            assert_eq!(parsed.records.len(), 3);
            assert_eq!(parsed.key(&parsed.records[2]), Some(&b"a"[..]));
            assert!(parsed.records[2].is_tombstone());
            assert_eq!(parsed.records[1].offset, 41);
            assert_eq!(parsed.records[1].timestamp, 1_005);

            let keep = [&parsed.records[1]];
            let rebuilt = parsed.rebuild(&keep, &batch).unwrap();
            let h = validate(&rebuilt).unwrap_or_else(|e| panic!("codec {codec}: {e}"));
            // Kafka's cleaner keeps the batch's offsets span: base and last offset stay.
            assert_eq!(h.base_offset, 40);
            assert_eq!(h.last_offset(), 42);
            assert_eq!(h.compression(), codec);
            let again = BatchRecords::parse(&rebuilt).unwrap();
            assert_eq!(again.records.len(), 1);
            assert_eq!(again.records[0].offset, 41);
            assert_eq!(again.records[0].timestamp, 1_005);
            assert_eq!(again.key(&again.records[0]), Some(&b"b"[..]));
            assert_eq!(again.header.max_timestamp, 1_005);
        }
    }

    #[test]
    fn keyless_records_are_found() {
        let keyed = build_batch(&[rec(Some("k"), Some("v"), 0)], 0, ProducerFields::NONE);
        let mixed = build_batch(
            &[rec(Some("k"), Some("v"), 0), rec(None, Some("v"), 1)],
            0,
            ProducerFields::NONE,
        );
        assert!(!has_keyless_record(&keyed).unwrap());
        assert!(has_keyless_record(&mixed).unwrap());
        assert!(has_keyless_record(&with_codec(&mixed, 1)).unwrap());
    }

    #[test]
    fn decompression_is_bounded_for_every_codec() {
        // 4 MiB of zeros compresses to a few KiB in every codec.
        let zeros = vec![0u8; 4 << 20];
        for codec in 1..=4u8 {
            let packed = compress(codec, zeros.clone()).unwrap();
            assert!(packed.len() < 256 << 10, "codec {codec}: {}", packed.len());
            assert_eq!(
                decompress_bounded(codec, &packed, 4 << 20).unwrap().len(),
                4 << 20,
                "codec {codec} within the bound"
            );
            assert_eq!(
                decompress_bounded(codec, &packed, 1 << 20),
                Err(RecordsError::TooLarge { max: 1 << 20 }),
                "codec {codec} past the bound"
            );
        }
        // A raw snappy block claiming a huge length is refused before any allocation.
        let mut lying = Vec::new();
        let mut n: u64 = 0xFFFF_FFFF;
        while n >= 0x80 {
            lying.push((n as u8) | 0x80);
            n >>= 7;
        }
        lying.push(n as u8);
        lying.extend_from_slice(b"junk");
        assert_eq!(
            decompress_bounded(2, &lying, 1 << 20),
            Err(RecordsError::TooLarge { max: 1 << 20 })
        );
    }

    #[test]
    fn malformed_records_are_errors_not_panics() {
        let batch = build_batch(&[rec(Some("k"), Some("v"), 0)], 0, ProducerFields::NONE);
        for cut in HEADER_LEN..batch.len() {
            let mut b = batch[..cut].to_vec();
            let len = (b.len() - LOG_OVERHEAD) as i32;
            b[BATCH_LENGTH_AT..BATCH_LENGTH_AT + 4].copy_from_slice(&len.to_be_bytes());
            assert!(BatchRecords::parse(&b).is_err(), "cut at {cut}");
        }
        let mut lying = batch.clone();
        lying[RECORD_COUNT_AT..RECORD_COUNT_AT + 4].copy_from_slice(&5i32.to_be_bytes());
        assert!(matches!(
            BatchRecords::parse(&lying),
            Err(RecordsError::CountMismatch { .. })
        ));
        assert!(matches!(
            decompress(7, &batch[HEADER_LEN..]),
            Err(RecordsError::UnknownCodec(7))
        ));
        assert!(decompress(1, b"not gzip").is_err());
    }
}
