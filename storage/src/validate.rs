//! What the leader does to a producer's batches before they are appended: Kafka's
//! `LogValidator`. Records are checked where the topic's configs ask for it (a key in a
//! compacted topic, a CreateTime within `message.timestamp.before.max.ms` and
//! `message.timestamp.after.max.ms`); a batch with bad records is refused whole, listing each bad
//! record (Produce v8+ `record_errors`, KIP-467), so a client fails only those and retries the
//! rest. A batch is rewritten only when it must be: recompressed when `compression.type` names a
//! codec other than the producer's, stamped when the topic keeps LogAppendTime, or given its
//! records' real max timestamp. Every other batch goes on as the request's own bytes, so the
//! common produce path copies nothing.
//!
//! Where Weir reads less than Kafka: records are read (walked in place when uncompressed, a few
//! varints each and no allocation; decompressed otherwise) only when a check needs each one:
//! compaction keys, recompression, a `message.timestamp.before.max.ms` bound, or a batch whose
//! max timestamp breaks the after bound. Otherwise the batch's max timestamp, which bounds every
//! record's, answers Kafka 4's default after bound (an hour) from the header. Kafka walks every
//! record of every batch; doing so here cost ~20-60 ns a record (the `batch` bench, on a loaded
//! machine: 1 MiB batches of 1 KiB records validated in 68-101 µs instead of 40-46), which the
//! common produce path does not pay. What that skips: a producer whose stated max timestamp is
//! below one of its records' (no client does this; Kafka would rewrite the max, or refuse a
//! record past the bound), and malformed records inside a batch whose CRC is intact, which
//! consumers then refuse. Kafka also rebuilds a compressed batch whose inner offsets are not
//! 0..n-1; Weir stores it.

use crate::batch::{self, BatchHeader, HEADER_LEN, LOG_OVERHEAD};
use crate::config::{Compression, LogConfig, TimestampType};
use crate::error::{BatchError, RecordError, Result, StorageError};
use crate::records::{self, RecordsError};
use crate::types::TopicPartition;
use bytes::Bytes;

/// Kafka's `RecordBatch.NO_TIMESTAMP`: a record without a timestamp escapes the bounds.
const NO_TIMESTAMP: i64 = -1;

/// How many record errors the partition's error message quotes, as Kafka's does.
const QUOTED_RECORD_ERRORS_MAX: usize = 3;

/// A batch ready to append: the request's own bytes, or the rewritten ones.
#[derive(Debug, Clone)]
pub struct ValidBatch {
    pub bytes: Bytes,
    pub header: BatchHeader,
}

/// A producer's batches, validated and (where the topic says so) rewritten.
#[derive(Debug, Clone)]
pub struct Validated {
    /// Never empty.
    pub batches: Vec<ValidBatch>,
    /// The time stamped into the batches of a LogAppendTime topic; -1 for CreateTime.
    pub log_append_time_ms: i64,
}

impl Validated {
    pub fn first_header(&self) -> &BatchHeader {
        &self.batches[0].header
    }
}

/// Validates a producer's record batches (concatenated, as in a produce request) for a log
/// with `config`: framing and CRC, the record count, `max.message.bytes`, then the record-level
/// checks and rewrites described in the module doc. `now_ms` is the append time.
pub fn validate_produced(
    records: &Bytes,
    config: &LogConfig,
    tp: &TopicPartition,
    now_ms: i64,
) -> Result<Validated> {
    let parsed = batch::split_and_validate(records)?;
    for (_, h) in &parsed {
        h.check_produced()?;
    }
    if let Some((range, _)) = parsed
        .iter()
        .find(|(r, _)| r.len() > config.max_message_bytes)
    {
        return Err(too_large(range.len(), config));
    }
    if parsed.is_empty() {
        return Err(BatchError::TooShort {
            len: 0,
            min: HEADER_LEN,
        }
        .into());
    }
    let mut batches = Vec::with_capacity(parsed.len());
    for (range, h) in parsed {
        batches.push(validate_batch(records.slice(range), h, config, tp, now_ms)?);
    }
    let log_append_time = config.timestamp_type == TimestampType::LogAppendTime;
    Ok(Validated {
        batches,
        log_append_time_ms: if log_append_time { now_ms } else { -1 },
    })
}

fn too_large(size: usize, config: &LogConfig) -> StorageError {
    BatchError::TooLarge {
        size,
        max: config.max_message_bytes,
    }
    .into()
}

/// `message.timestamp.before.max.ms` and `.after.max.ms` around the append time.
struct Bounds {
    now: i64,
    before: i64,
    after: i64,
}

impl Bounds {
    /// `None` when nothing is checked: a LogAppendTime topic, or both bounds unlimited.
    fn of(config: &LogConfig, now: i64) -> Option<Self> {
        let create_time = config.timestamp_type == TimestampType::CreateTime;
        let bounded =
            config.timestamp_before_max_ms < i64::MAX || config.timestamp_after_max_ms < i64::MAX;
        (create_time && bounded).then_some(Self {
            now,
            before: config.timestamp_before_max_ms,
            after: config.timestamp_after_max_ms,
        })
    }

    /// Kafka's `recordHasInvalidTimestamp`, without its overflow at the extremes.
    fn allows(&self, ts: i64) -> bool {
        let diff = i128::from(self.now) - i128::from(ts);
        diff <= i128::from(self.before) && -diff <= i128::from(self.after)
    }

    fn error(&self, ts: i64, offset: i64) -> String {
        // Kafka prints the range with Java's wrapping arithmetic: unlimited bounds show as the
        // values a Java long wraps to, and so they do here.
        format!(
            "Timestamp {ts} of message with offset {offset} is out of range. The timestamp should be within [{}, {}]",
            self.now.wrapping_sub(self.before),
            self.now.wrapping_add(self.after)
        )
    }
}

fn validate_batch(
    bytes: Bytes,
    h: BatchHeader,
    config: &LogConfig,
    tp: &TopicPartition,
    now: i64,
) -> Result<ValidBatch> {
    let log_append_time = config.timestamp_type == TimestampType::LogAppendTime;
    let source = h.compression();
    let target = config.compression.unwrap_or(Compression {
        codec: source,
        level: None,
    });
    let recompress = target.codec != source;
    let bounds = Bounds::of(config, now);
    // The max timestamp bounds every record's: within the after bound, no record is past it.
    // Only the before bound needs each record's own timestamp.
    let must_read = recompress
        || config.compact
        || h.is_log_append_time()
        || bounds
            .as_ref()
            .is_some_and(|b| b.before < i64::MAX || !b.allows(h.max_timestamp));
    if !must_read {
        return in_place(bytes, h, log_append_time, None, now, config);
    }
    let data = if source == 0 {
        bytes.slice(HEADER_LEN..)
    } else {
        records::decompress(source, &bytes[HEADER_LEN..])?
    };
    // A LogAppendTime batch's records all carry its max timestamp (Kafka's record reader).
    let timestamp_of = |delta: i64| {
        if h.is_log_append_time() {
            h.max_timestamp
        } else {
            h.base_timestamp.wrapping_add(delta)
        }
    };
    let mut errors = Vec::new();
    let mut invalid_timestamp = false;
    let mut max_timestamp = NO_TIMESTAMP;
    records::walk_records(&data, h.record_count, |index, r| {
        let ts = timestamp_of(r.timestamp_delta);
        max_timestamp = max_timestamp.max(ts);
        let offset = h.base_offset.wrapping_add(r.offset_delta);
        // Kafka's order: the key first, then the timestamp; one error per record.
        let message = if config.compact && r.key_len < 0 {
            format!("Compacted topic cannot accept message without key in topic partition {tp}.")
        } else if !log_append_time && ts != NO_TIMESTAMP {
            match &bounds {
                Some(b) if !b.allows(ts) => {
                    invalid_timestamp = true;
                    b.error(ts, offset)
                }
                _ => return,
            }
        } else if h.is_log_append_time() {
            invalid_timestamp = true;
            format!(
                "Invalid timestamp type in message DefaultRecord(offset={offset}, timestamp={ts}, key={} bytes, value={} bytes). Producer should not set timestamp type to LogAppendTime.",
                r.key_len.max(0),
                r.value_len.max(0)
            )
        } else {
            return;
        };
        errors.push(RecordError {
            batch_index: index,
            message,
        });
    })
    .map_err(|e| invalid_record(e, tp))?;
    if !errors.is_empty() {
        return Err(record_validation(errors, invalid_timestamp));
    }
    if recompress {
        let rebuilt = rebuild(&h, &data, target, log_append_time, now)?;
        if rebuilt.len() > config.max_message_bytes {
            return Err(too_large(rebuilt.len(), config));
        }
        let header = BatchHeader::parse(&rebuilt)?;
        return Ok(ValidBatch {
            bytes: Bytes::from(rebuilt),
            header,
        });
    }
    in_place(bytes, h, log_append_time, Some(max_timestamp), now, config)
}

/// Keeps the batch's records as they are, setting its timestamp type and max timestamp as
/// Kafka's in-place path does (LogAppendTime: the append time; CreateTime: the records' largest,
/// where they were read). A batch already right stays the request's own bytes.
fn in_place(
    bytes: Bytes,
    h: BatchHeader,
    log_append_time: bool,
    records_max: Option<i64>,
    now: i64,
    config: &LogConfig,
) -> Result<ValidBatch> {
    let max = if log_append_time {
        now
    } else {
        records_max.unwrap_or(h.max_timestamp)
    };
    if h.is_log_append_time() == log_append_time && h.max_timestamp == max {
        return Ok(ValidBatch { bytes, header: h });
    }
    let mut owned = bytes.to_vec();
    batch::set_max_timestamp(&mut owned, log_append_time, max);
    debug_assert!(owned.len() <= config.max_message_bytes);
    let header = BatchHeader::parse(&owned)?;
    Ok(ValidBatch {
        bytes: Bytes::from(owned),
        header,
    })
}

/// The batch in `target`'s codec, built as Kafka's `MemoryRecordsBuilder` builds it: the same
/// producer id, epoch, base sequence and transactional flag; every record re-encoded with offset
/// delta = its index and its timestamp relative to the first record's (which becomes the base
/// timestamp), its key, value and headers byte for byte; max timestamp the records' largest, or
/// the append time for a LogAppendTime topic. Offsets and the leader epoch are assigned on
/// append, as for any batch.
fn rebuild(
    h: &BatchHeader,
    data: &[u8],
    target: Compression,
    log_append_time: bool,
    now: i64,
) -> Result<Vec<u8>> {
    let views = records::parse_records(h, data)?;
    let ts = |r: &records::RecordView| {
        if h.is_log_append_time() {
            h.max_timestamp
        } else {
            r.timestamp
        }
    };
    let base_timestamp = views.first().map_or(h.base_timestamp, ts);
    let mut section = Vec::with_capacity(data.len() + views.len() * 4);
    let mut body = Vec::new();
    let mut max_timestamp = NO_TIMESTAMP;
    for (i, r) in views.iter().enumerate() {
        body.clear();
        body.push(0); // record attributes: unused in v2
        batch::put_varint(&mut body, ts(r).wrapping_sub(base_timestamp));
        batch::put_varint(&mut body, i as i64);
        body.extend_from_slice(&data[r.fields.clone()]);
        batch::put_varint(&mut section, body.len() as i64);
        section.extend_from_slice(&body);
        max_timestamp = max_timestamp.max(ts(r));
    }
    let packed = records::compress_section(target.codec, target.level, &section)?;
    let count = views.len() as i32;
    let mut out = Vec::with_capacity(HEADER_LEN + packed.len());
    out.extend_from_slice(&0i64.to_be_bytes()); // base offset: assigned on append
    let length = (HEADER_LEN - LOG_OVERHEAD + packed.len()) as i32;
    out.extend_from_slice(&length.to_be_bytes());
    out.extend_from_slice(&(-1i32).to_be_bytes()); // leader epoch: assigned on append
    out.push(2);
    out.extend_from_slice(&0u32.to_be_bytes()); // CRC, below
    let attributes = batch::attributes_with(h.attributes, target.codec, log_append_time);
    out.extend_from_slice(&attributes.to_be_bytes());
    out.extend_from_slice(&(count - 1).to_be_bytes());
    out.extend_from_slice(&base_timestamp.to_be_bytes());
    let max = if log_append_time { now } else { max_timestamp };
    out.extend_from_slice(&max.to_be_bytes());
    out.extend_from_slice(&h.producer_id.to_be_bytes());
    out.extend_from_slice(&h.producer_epoch.to_be_bytes());
    out.extend_from_slice(&h.base_sequence.to_be_bytes());
    out.extend_from_slice(&count.to_be_bytes());
    out.extend_from_slice(&packed);
    let crc = batch::compute_crc(&out);
    out[batch::CRC_AT..batch::CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
    Ok(out)
}

fn invalid_record(e: RecordsError, tp: &TopicPartition) -> StorageError {
    StorageError::InvalidRecord(format!("{e} in topic partition {tp}"))
}

/// Kafka's `processRecordErrors`: the partition's error and its message.
fn record_validation(records: Vec<RecordError>, invalid_timestamp: bool) -> StorageError {
    let message = if invalid_timestamp {
        "One or more records have been rejected due to invalid timestamp".to_owned()
    } else {
        let quoted: Vec<String> = records
            .iter()
            .take(QUOTED_RECORD_ERRORS_MAX)
            .map(|e| {
                format!(
                    "RecordError(batchIndex={}, message='{}')",
                    e.batch_index, e.message
                )
            })
            .collect();
        format!(
            "One or more records have been rejected due to {} record errors in total, and only showing the first three errors at most: [{}]",
            records.len(),
            quoted.join(", ")
        )
    };
    StorageError::RecordValidation {
        invalid_timestamp,
        records,
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::{build_batch, validate, ProducerFields, Record};
    use crate::records::{compress_batch, BatchRecords};

    const NOW: i64 = 1_700_000_000_000;

    fn tp() -> TopicPartition {
        TopicPartition::new("t", 0)
    }

    fn rec(key: Option<&str>, delta: i64) -> Record {
        Record {
            key: key.map(|k| k.as_bytes().to_vec()),
            value: Some(b"value".to_vec()),
            headers: vec![("h".into(), Some(b"x".to_vec()))],
            timestamp_delta: delta,
        }
    }

    fn keyed(n: usize, base_ts: i64) -> Bytes {
        let records: Vec<Record> = (0..n).map(|i| rec(Some("k"), i as i64)).collect();
        Bytes::from(build_batch(&records, base_ts, ProducerFields::NONE))
    }

    fn config() -> LogConfig {
        LogConfig::default()
    }

    #[test]
    fn an_untouched_batch_keeps_the_request_bytes() {
        let b = keyed(5, NOW - 1000);
        let v = validate_produced(&b, &config(), &tp(), NOW).unwrap();
        assert_eq!(v.log_append_time_ms, -1);
        assert_eq!(v.batches.len(), 1);
        // The same allocation: nothing was copied.
        assert_eq!(v.batches[0].bytes.as_ptr(), b.as_ptr());
        assert_eq!(v.batches[0].bytes.len(), b.len());
    }

    #[test]
    fn log_append_time_stamps_the_batch_and_keeps_the_records() {
        let c = LogConfig {
            timestamp_type: TimestampType::LogAppendTime,
            ..config()
        };
        // Far in the past: LogAppendTime topics check no CreateTime bounds.
        let b = keyed(3, 1_000);
        let v = validate_produced(&b, &c, &tp(), NOW).unwrap();
        assert_eq!(v.log_append_time_ms, NOW);
        let out = &v.batches[0];
        let h = validate(&out.bytes).unwrap();
        assert!(h.is_log_append_time());
        assert_eq!((h.max_timestamp, h.base_timestamp), (NOW, 1_000));
        assert_eq!(
            out.bytes[HEADER_LEN..],
            b[HEADER_LEN..],
            "records untouched"
        );
        assert_eq!(out.header, h);
    }

    #[test]
    fn keyless_records_of_a_compacted_topic_are_listed() {
        let c = LogConfig {
            compact: true,
            ..config()
        };
        let records: Vec<Record> = (0..100)
            .map(|i| rec((i % 10 != 3).then_some("k"), 0))
            .collect();
        for codec in 0..=4u8 {
            let plain = build_batch(&records, NOW, ProducerFields::NONE);
            let b = Bytes::from(if codec == 0 {
                plain
            } else {
                compress_batch(&plain, codec).unwrap()
            });
            let e = validate_produced(&b, &c, &tp(), NOW).unwrap_err();
            let StorageError::RecordValidation {
                invalid_timestamp,
                records,
                message,
            } = e
            else {
                panic!("{e:?}")
            };
            assert!(!invalid_timestamp);
            let bad: Vec<i32> = records.iter().map(|r| r.batch_index).collect();
            assert_eq!(bad, (0..10).map(|i| i * 10 + 3).collect::<Vec<_>>());
            assert_eq!(
                records[0].message,
                "Compacted topic cannot accept message without key in topic partition t-0."
            );
            assert!(
                message.starts_with("One or more records have been rejected due to 10 record errors in total, and only showing the first three errors at most: [RecordError(batchIndex=3, message='Compacted topic"),
                "{message}"
            );
        }
    }

    #[test]
    fn create_times_outside_the_bounds_are_refused() {
        let c = LogConfig {
            timestamp_before_max_ms: 10_000,
            timestamp_after_max_ms: 5_000,
            ..config()
        };
        // Records at NOW-20000 .. : deltas 0, 15000, 30000 -> -20000 (too old), -5000, +10000 (too new).
        let records = [
            rec(Some("a"), 0),
            rec(Some("b"), 15_000),
            rec(Some("c"), 30_000),
        ];
        for codec in [0u8, 3] {
            let plain = build_batch(&records, NOW - 20_000, ProducerFields::NONE);
            let b = Bytes::from(if codec == 0 {
                plain
            } else {
                compress_batch(&plain, codec).unwrap()
            });
            let e = validate_produced(&b, &c, &tp(), NOW).unwrap_err();
            let StorageError::RecordValidation {
                invalid_timestamp,
                records,
                message,
            } = e
            else {
                panic!("{e:?}")
            };
            assert!(invalid_timestamp);
            assert_eq!(
                message,
                "One or more records have been rejected due to invalid timestamp"
            );
            assert_eq!(
                records.iter().map(|r| r.batch_index).collect::<Vec<_>>(),
                [0, 2]
            );
            assert_eq!(
                records[0].message,
                format!(
                    "Timestamp {} of message with offset 0 is out of range. The timestamp should be within [{}, {}]",
                    NOW - 20_000,
                    NOW - 10_000,
                    NOW + 5_000
                )
            );
        }
        // Kafka 4's default after bound (an hour) applies without any topic config.
        let future = keyed(1, NOW + 3_600_001);
        assert!(matches!(
            validate_produced(&future, &config(), &tp(), NOW),
            Err(StorageError::RecordValidation {
                invalid_timestamp: true,
                ..
            })
        ));
        // A compressed batch whose max timestamp is in range is not decompressed, and passes.
        let ok = Bytes::from(compress_batch(&keyed(3, NOW + 3_000_000), 4).unwrap());
        let v = validate_produced(&ok, &config(), &tp(), NOW).unwrap();
        assert_eq!(v.batches[0].bytes.as_ptr(), ok.as_ptr());
    }

    #[test]
    fn a_producer_may_not_send_log_append_time() {
        let mut b = keyed(2, NOW).to_vec();
        batch::set_max_timestamp(&mut b, true, NOW);
        let c = LogConfig {
            timestamp_type: TimestampType::LogAppendTime,
            ..config()
        };
        let e = validate_produced(&Bytes::from(b), &c, &tp(), NOW).unwrap_err();
        let StorageError::RecordValidation { records, .. } = e else {
            panic!("{e:?}")
        };
        assert_eq!(records.len(), 2);
        assert!(records[1]
            .message
            .ends_with("Producer should not set timestamp type to LogAppendTime."));
    }

    #[test]
    fn a_wrong_max_timestamp_is_corrected_where_records_are_read() {
        let mut b = keyed(3, NOW).to_vec();
        batch::set_max_timestamp(&mut b, false, NOW - 7);
        let b = Bytes::from(b);
        // The default checks go by the header: the batch is stored as sent.
        let v = validate_produced(&b, &config(), &tp(), NOW).unwrap();
        assert_eq!(v.batches[0].bytes.as_ptr(), b.as_ptr());
        // Where every record is read (here: a compacted topic), the max is the records' own.
        let c = LogConfig {
            compact: true,
            ..config()
        };
        let v = validate_produced(&b, &c, &tp(), NOW).unwrap();
        let h = validate(&v.batches[0].bytes).unwrap();
        assert_eq!(h.max_timestamp, NOW + 2);
    }

    #[test]
    fn recompression_keeps_every_record_and_the_producer_fields() {
        let producer = ProducerFields {
            producer_id: 7,
            producer_epoch: 2,
            base_sequence: 40,
        };
        let records: Vec<Record> = (0..50)
            .map(|i| Record {
                key: Some(format!("key-{i}").into_bytes()),
                value: (i % 7 != 0).then(|| vec![b'v'; 100 + i]),
                headers: vec![("h".into(), Some(vec![i as u8])), ("n".into(), None)],
                timestamp_delta: (i as i64 * 37) % 11,
            })
            .collect();
        let plain = build_batch(&records, NOW, producer);
        let want = BatchRecords::parse(&plain).unwrap();
        for source in 0..=4u8 {
            for target in 0..=4u8 {
                let input = if source == 0 {
                    plain.clone()
                } else {
                    compress_batch(&plain, source).unwrap()
                };
                for lat in [false, true] {
                    let c = LogConfig {
                        compression: Some(Compression {
                            codec: target,
                            level: (target == 4).then_some(-5),
                        }),
                        timestamp_type: if lat {
                            TimestampType::LogAppendTime
                        } else {
                            TimestampType::CreateTime
                        },
                        ..config()
                    };
                    let b = Bytes::from(input.clone());
                    let v = validate_produced(&b, &c, &tp(), NOW + 99).unwrap();
                    let out = &v.batches[0].bytes;
                    let h = validate(out).unwrap_or_else(|e| panic!("{source}->{target}: {e}"));
                    assert_eq!(h.compression(), target, "{source}->{target}");
                    assert_eq!(
                        (h.producer_id, h.producer_epoch, h.base_sequence),
                        (7, 2, 40)
                    );
                    assert_eq!((h.record_count, h.last_offset_delta), (50, 49));
                    assert_eq!(h.is_log_append_time(), lat);
                    assert_eq!(h.max_timestamp, if lat { NOW + 99 } else { NOW + 10 });
                    let got = BatchRecords::parse(out).unwrap();
                    for (a, b) in want.records.iter().zip(&got.records) {
                        assert_eq!(want.key(a), got.key(b));
                        assert_eq!(want.value(a), got.value(b));
                        assert_eq!(a.timestamp, b.timestamp);
                        assert_eq!(a.offset, b.offset);
                        assert_eq!(want.data[a.fields.clone()], got.data[b.fields.clone()]);
                    }
                    if source == target && !lat {
                        assert_eq!(out.as_ptr(), b.as_ptr(), "no rewrite without a reason");
                    }
                }
            }
        }
    }

    #[test]
    fn recompression_is_bounded_by_max_message_bytes() {
        // Random bytes do not compress; gzip's framing makes them larger.
        let mut x: u64 = 1;
        let noise: Vec<u8> = (0..4000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        let records = [Record {
            key: Some(b"k".to_vec()),
            value: Some(noise),
            headers: vec![],
            timestamp_delta: 0,
        }];
        let plain = Bytes::from(build_batch(&records, NOW, ProducerFields::NONE));
        let c = LogConfig {
            compression: Some(Compression {
                codec: 1,
                level: Some(9),
            }),
            max_message_bytes: plain.len(),
            ..config()
        };
        assert!(matches!(
            validate_produced(&plain, &c, &tp(), NOW),
            Err(StorageError::InvalidBatch(BatchError::TooLarge { .. }))
        ));
    }

    #[test]
    fn malformed_records_are_invalid_not_panics() {
        // Records are read where a check needs them: a compacted topic.
        let compacted = LogConfig {
            compact: true,
            ..config()
        };
        let b = keyed(2, NOW).to_vec();
        for cut in HEADER_LEN + 1..b.len() {
            let mut broken = b[..cut].to_vec();
            let len = (broken.len() - LOG_OVERHEAD) as i32;
            broken[batch::BATCH_LENGTH_AT..batch::BATCH_LENGTH_AT + 4]
                .copy_from_slice(&len.to_be_bytes());
            let crc = batch::compute_crc(&broken);
            broken[batch::CRC_AT..batch::CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
            let e = validate_produced(&Bytes::from(broken), &compacted, &tp(), NOW).unwrap_err();
            assert!(
                matches!(e, StorageError::InvalidRecord(_)),
                "cut {cut}: {e:?}"
            );
        }
    }
}
