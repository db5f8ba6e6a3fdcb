//! Messages in and out of record batches. Fetched data is framed and CRC-checked with storage's
//! batch parsing (the same validation the broker applies), then decoded, decompressing if need
//! be, by the `kafka-protocol` codec; produced messages are encoded by that codec.

use crate::error::{AdminError, Result};
use bytes::{Bytes, BytesMut};
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions,
    TimestampType, NO_PARTITION_LEADER_EPOCH, NO_PRODUCER_EPOCH, NO_PRODUCER_ID,
};
use weir_storage::batch::{self as wire, BatchHeader};

/// One message as the console tools see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub offset: i64,
    pub timestamp: i64,
    /// `CreateTime` or `LogAppendTime`, as Kafka's console consumer prints it.
    pub timestamp_type: &'static str,
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub headers: Vec<(String, Option<Bytes>)>,
}

/// What one partition's fetched `records` held.
#[derive(Debug, Default)]
pub struct Fetched {
    pub messages: Vec<Message>,
    /// The offset after the last whole batch (control batches included), where the next fetch
    /// starts; `None` when the data held no whole batch.
    pub next_offset: Option<i64>,
}

/// Decodes the whole batches of a fetch response's `records`. A trailing partial batch is
/// normal (a broker cuts the data at the size asked for) and is left for the next fetch;
/// control batches (transaction markers) are skipped, as consumers do.
pub fn decode_fetched(data: &Bytes) -> Result<Fetched> {
    let mut out = Fetched::default();
    let mut pos = 0;
    while data.len() - pos >= wire::HEADER_LEN {
        let header = BatchHeader::parse(&data[pos..]).map_err(AdminError::protocol)?;
        let len = header.total_len();
        if header.batch_length <= 0 || len > data.len() - pos {
            break;
        }
        let batch = data.slice(pos..pos + len);
        pos += len;
        let header = wire::validate(&batch).map_err(|e| {
            AdminError::Protocol(format!(
                "fetched batch at offset {}: {e}",
                header.base_offset
            ))
        })?;
        out.next_offset = Some(header.last_offset() + 1);
        if header.is_control() {
            continue;
        }
        let mut buf = batch;
        let set = RecordBatchDecoder::decode(&mut buf).map_err(|e| {
            AdminError::Protocol(format!(
                "decoding batch at offset {}: {e:#}",
                header.base_offset
            ))
        })?;
        out.messages.extend(set.records.into_iter().map(|r| {
            Message {
                offset: r.offset,
                timestamp: r.timestamp,
                timestamp_type: match r.timestamp_type {
                    TimestampType::Creation => "CreateTime",
                    TimestampType::LogAppend => "LogAppendTime",
                },
                key: r.key,
                value: r.value,
                headers: r
                    .headers
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v))
                    .collect(),
            }
        }));
    }
    Ok(out)
}

/// A message to produce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub headers: Vec<(String, Option<Bytes>)>,
    pub timestamp: i64,
}

/// `none`, `gzip`, `snappy`, `lz4`, `zstd`: Kafka's `compression.type` names.
pub fn parse_compression(s: &str) -> Result<Compression> {
    Ok(match s.to_ascii_lowercase().as_str() {
        "none" => Compression::None,
        "gzip" => Compression::Gzip,
        "snappy" => Compression::Snappy,
        "lz4" => Compression::Lz4,
        "zstd" => Compression::Zstd,
        _ => {
            return Err(AdminError::Invalid(format!(
                "unknown compression codec '{s}'; use none, gzip, snappy, lz4 or zstd"
            )))
        }
    })
}

/// One v2 batch of `messages`, as a non-idempotent producer sends it (producer id, epoch and base
/// sequence -1). A header key given twice keeps its last value: the codec keys headers by name.
pub fn encode_batch(messages: &[Outgoing], compression: Compression) -> Result<Bytes> {
    let records: Vec<Record> = messages
        .iter()
        .enumerate()
        .map(|(i, m)| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: NO_PARTITION_LEADER_EPOCH,
            producer_id: NO_PRODUCER_ID,
            producer_epoch: NO_PRODUCER_EPOCH,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            // The codec derives the batch's base sequence as `sequence - offset` of the first
            // record and keeps records in one batch while that difference holds: -1 + offset
            // gives one batch with Kafka's "no sequence" (-1) base.
            sequence: i as i32 - 1,
            timestamp: m.timestamp,
            key: m.key.clone(),
            value: m.value.clone(),
            headers: m
                .headers
                .iter()
                .map(|(k, v)| (StrBytes::from_string(k.clone()), v.clone()))
                .collect::<IndexMap<_, _>>(),
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        records.iter(),
        &RecordEncodeOptions {
            version: 2,
            compression,
        },
    )
    .map_err(|e| AdminError::Protocol(format!("encoding a batch: {e:#}")))?;
    Ok(buf.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(i: i64) -> Outgoing {
        Outgoing {
            key: (i % 2 == 0).then(|| Bytes::from(format!("k{i}"))),
            value: Some(Bytes::from(format!("value {i}"))),
            headers: vec![
                ("h".into(), Some(Bytes::from_static(b"v"))),
                ("n".into(), None),
            ],
            timestamp: 1_700_000_000_000 + i,
        }
    }

    fn with_base_offset(mut batch: Vec<u8>, base: i64) -> Vec<u8> {
        wire::assign(&mut batch, base, 0);
        batch
    }

    #[test]
    fn encoded_batches_are_single_valid_v2_batches_that_decode_back() {
        for compression in [Compression::None, Compression::Gzip, Compression::Zstd] {
            let out: Vec<Outgoing> = (0..5).map(msg).collect();
            let batch = encode_batch(&out, compression).unwrap();
            let header = wire::validate(&batch).expect("one valid batch");
            assert_eq!(header.record_count, 5);
            assert_eq!(
                (header.producer_id, header.base_sequence),
                (-1, -1),
                "non-idempotent producer fields"
            );
            let fetched =
                decode_fetched(&Bytes::from(with_base_offset(batch.to_vec(), 40))).unwrap();
            assert_eq!(fetched.next_offset, Some(45));
            let got: Vec<_> = fetched.messages.iter().map(|m| m.offset).collect();
            assert_eq!(got, vec![40, 41, 42, 43, 44]);
            for (m, o) in fetched.messages.iter().zip(&out) {
                assert_eq!(
                    (&m.key, &m.value, &m.headers),
                    (&o.key, &o.value, &o.headers)
                );
                assert_eq!(m.timestamp, o.timestamp);
                assert_eq!(m.timestamp_type, "CreateTime");
            }
        }
    }

    #[test]
    fn a_trailing_partial_batch_waits_and_corruption_is_an_error() {
        let a = with_base_offset(
            encode_batch(&[msg(0)], Compression::None).unwrap().to_vec(),
            0,
        );
        let b = with_base_offset(
            encode_batch(&[msg(1)], Compression::None).unwrap().to_vec(),
            1,
        );
        let mut data = a.clone();
        data.extend_from_slice(&b[..b.len() - 3]);
        let fetched = decode_fetched(&Bytes::from(data)).unwrap();
        assert_eq!(fetched.messages.len(), 1);
        assert_eq!(fetched.next_offset, Some(1));
        let mut bad = a;
        let last = bad.len() - 1;
        bad[last] ^= 0xff;
        let e = decode_fetched(&Bytes::from(bad)).unwrap_err().to_string();
        assert!(e.contains("CRC"), "{e}");
    }
}
