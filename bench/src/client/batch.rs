//! Kafka v2 record batches: an allocation-light encoder for uncompressed batches (what the
//! producers send) and a reader that walks the records of fetched batches (what consumers see).

use anyhow::{bail, Context};

// The v2 batch layout and the record varints are storage's (one definition of the format).
pub use weir_storage::batch::{get_varint, put_varint, HEADER_LEN};
use weir_storage::batch::{ATTRIBUTES_AT, CRC_AT, LOG_OVERHEAD, RECORD_COUNT_AT};

fn varint_len(v: i64) -> usize {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    let mut n = 1;
    while z >= 0x80 {
        z >>= 7;
        n += 1;
    }
    n
}

/// Encoded size of one record (without its length prefix) with a null key and `value_len` bytes.
fn record_body_len(offset_delta: i64, timestamp_delta: i64, value_len: usize) -> usize {
    1 + varint_len(timestamp_delta)
        + varint_len(offset_delta)
        + varint_len(-1)
        + varint_len(value_len as i64)
        + value_len
        + varint_len(0)
}

/// Builds one uncompressed v2 batch, record by record, into a reused buffer.
pub struct BatchBuilder {
    buf: Vec<u8>,
    count: i32,
    base_timestamp: i64,
    max_timestamp: i64,
}

impl Default for BatchBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl BatchBuilder {
    pub fn new() -> Self {
        Self {
            buf: Vec::new(),
            count: 0,
            base_timestamp: 0,
            max_timestamp: 0,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Bytes the batch would have on the wire now.
    pub fn size(&self) -> usize {
        if self.count == 0 {
            0
        } else {
            self.buf.len()
        }
    }

    /// Bytes the batch would have after adding a value of `value_len` bytes at `timestamp_ms`.
    pub fn size_with(&self, value_len: usize, timestamp_ms: i64) -> usize {
        let (delta, base) = if self.count == 0 {
            (0, HEADER_LEN)
        } else {
            (timestamp_ms - self.base_timestamp, self.buf.len())
        };
        let body = record_body_len(self.count as i64, delta, value_len);
        base + varint_len(body as i64) + body
    }

    /// Appends a record with a null key, the given value and no headers.
    pub fn push(&mut self, value: &[u8], timestamp_ms: i64) {
        if self.count == 0 {
            self.buf.clear();
            self.buf.resize(HEADER_LEN, 0);
            self.base_timestamp = timestamp_ms;
            self.max_timestamp = timestamp_ms;
        }
        let delta = timestamp_ms - self.base_timestamp;
        let body = record_body_len(self.count as i64, delta, value.len());
        put_varint(&mut self.buf, body as i64);
        self.buf.push(0); // record attributes
        put_varint(&mut self.buf, delta);
        put_varint(&mut self.buf, self.count as i64);
        put_varint(&mut self.buf, -1); // null key
        put_varint(&mut self.buf, value.len() as i64);
        self.buf.extend_from_slice(value);
        put_varint(&mut self.buf, 0); // no headers
        self.count += 1;
        self.max_timestamp = self.max_timestamp.max(timestamp_ms);
    }

    /// Seals the batch (header and CRC-32C) and returns its bytes; the builder is empty again.
    pub fn finish(&mut self) -> Vec<u8> {
        assert!(self.count > 0, "finishing an empty batch");
        let len = self.buf.len();
        let b = &mut self.buf;
        b[0..8].copy_from_slice(&0i64.to_be_bytes());
        b[8..12].copy_from_slice(&((len - LOG_OVERHEAD) as i32).to_be_bytes());
        b[12..16].copy_from_slice(&(-1i32).to_be_bytes()); // partition leader epoch
        b[16] = 2; // magic
        b[ATTRIBUTES_AT..23].copy_from_slice(&0i16.to_be_bytes());
        b[23..27].copy_from_slice(&(self.count - 1).to_be_bytes());
        b[27..35].copy_from_slice(&self.base_timestamp.to_be_bytes());
        b[35..43].copy_from_slice(&self.max_timestamp.to_be_bytes());
        b[43..51].copy_from_slice(&(-1i64).to_be_bytes()); // producer id
        b[51..53].copy_from_slice(&(-1i16).to_be_bytes()); // producer epoch
        b[53..57].copy_from_slice(&(-1i32).to_be_bytes()); // base sequence
        b[RECORD_COUNT_AT..HEADER_LEN].copy_from_slice(&self.count.to_be_bytes());
        let crc = crc32c::crc32c(&b[ATTRIBUTES_AT..]);
        b[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
        self.count = 0;
        let out = b.clone();
        b.clear();
        out
    }
}

/// One record as a consumer sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordView<'a> {
    pub offset: i64,
    pub value: Option<&'a [u8]>,
}

/// Walks every record of a fetched `records` blob (a sequence of v2 batches; a trailing partial
/// batch, which brokers may send, is ignored). Calls `f` for each record and returns the offset
/// after the last whole batch, or `None` if there was no whole batch.
pub fn for_each_record<'a>(
    mut data: &'a [u8],
    mut f: impl FnMut(RecordView<'a>),
) -> anyhow::Result<Option<i64>> {
    let mut next = None;
    while data.len() >= LOG_OVERHEAD {
        let base_offset = i64::from_be_bytes(data[0..8].try_into().expect("8 bytes"));
        let batch_len = i32::from_be_bytes(data[8..12].try_into().expect("4 bytes"));
        if batch_len < 0 {
            bail!("negative batch length {batch_len}");
        }
        let total = LOG_OVERHEAD + batch_len as usize;
        if data.len() < total {
            break; // partial trailing batch
        }
        let batch = &data[..total];
        data = &data[total..];
        if total < HEADER_LEN {
            bail!("batch of {total} bytes is shorter than a v2 header");
        }
        if batch[16] != 2 {
            bail!("record batch magic {} is not supported", batch[16]);
        }
        let crc = u32::from_be_bytes(batch[CRC_AT..CRC_AT + 4].try_into().expect("4 bytes"));
        if crc32c::crc32c(&batch[ATTRIBUTES_AT..]) != crc {
            bail!("CRC mismatch in batch at offset {base_offset}");
        }
        let attributes = i16::from_be_bytes([batch[21], batch[22]]);
        let last_delta = i32::from_be_bytes(batch[23..27].try_into().expect("4 bytes"));
        next = Some(base_offset + i64::from(last_delta) + 1);
        if attributes & 0x20 != 0 {
            continue; // control batch
        }
        if attributes & 0x07 != 0 {
            bail!("compressed batches are not supported by the bench consumer");
        }
        let count = i32::from_be_bytes(batch[57..61].try_into().expect("4 bytes"));
        let mut pos = HEADER_LEN;
        for _ in 0..count {
            let len = get_varint(batch, &mut pos).context("record length")? as usize;
            let end = pos + len;
            if end > batch.len() {
                bail!("record overruns its batch");
            }
            let rec = &batch[..end];
            pos += 1; // attributes
            get_varint(rec, &mut pos).context("timestamp delta")?;
            let offset_delta = get_varint(rec, &mut pos).context("offset delta")?;
            let key_len = get_varint(rec, &mut pos).context("key length")?;
            if key_len > 0 {
                pos += key_len as usize;
            }
            let value_len = get_varint(rec, &mut pos).context("value length")?;
            let value = if value_len < 0 {
                None
            } else {
                let v = rec
                    .get(pos..pos + value_len as usize)
                    .context("value overruns its record")?;
                Some(v)
            };
            f(RecordView {
                offset: base_offset + offset_delta,
                value,
            });
            pos = end;
        }
    }
    Ok(next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use kafka_protocol::records::RecordBatchDecoder;

    /// The encoder sizes records with its own `varint_len`: it must agree with storage's
    /// `put_varint`, which writes them.
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
            -300,
            i32::MAX as i64,
            i64::MIN,
            i64::MAX,
        ] {
            let mut b = Vec::new();
            put_varint(&mut b, v);
            assert_eq!(b.len(), varint_len(v));
            let mut pos = 0;
            assert_eq!(get_varint(&b, &mut pos), Some(v));
            assert_eq!(pos, b.len());
        }
    }

    #[test]
    fn batch_decodes_with_kafka_protocol_and_size_prediction_is_exact() {
        let mut builder = BatchBuilder::new();
        let values: Vec<Vec<u8>> = (0..50).map(|i| vec![i as u8; 10 + i * 7]).collect();
        for (i, v) in values.iter().enumerate() {
            let predicted = builder.size_with(v.len(), 1_000 + i as i64);
            builder.push(v, 1_000 + i as i64);
            assert_eq!(builder.size(), predicted);
        }
        let batch = builder.finish();
        assert!(builder.is_empty());
        let mut bytes = Bytes::from(batch.clone());
        let set = RecordBatchDecoder::decode(&mut bytes).expect("kafka-protocol decodes it");
        assert_eq!(set.records.len(), values.len());
        for (i, r) in set.records.iter().enumerate() {
            assert_eq!(r.offset, i as i64);
            assert_eq!(r.timestamp, 1_000 + i as i64);
            assert!(r.key.is_none());
            assert_eq!(r.value.as_deref(), Some(values[i].as_slice()));
        }
        // and our own reader agrees, with a partial batch after it ignored
        let mut data = batch.clone();
        data.extend_from_slice(&batch[..30]);
        let mut seen = Vec::new();
        let next =
            for_each_record(&data, |r| seen.push((r.offset, r.value.unwrap().to_vec()))).unwrap();
        assert_eq!(next, Some(values.len() as i64));
        assert_eq!(seen.len(), values.len());
        assert_eq!(seen[7].1, values[7]);
    }

    #[test]
    fn reader_rejects_a_corrupted_batch() {
        let mut builder = BatchBuilder::new();
        builder.push(b"hello", 5);
        let mut batch = builder.finish();
        let last = batch.len() - 2;
        batch[last] ^= 0xff;
        assert!(for_each_record(&batch, |_| {}).is_err());
    }
}
