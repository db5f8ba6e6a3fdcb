//! Raft entries as Kafka record batches, so the raft log is an ordinary partition log
//! (`__cluster_metadata-0`) that Kafka's own `kafka-dump-log.sh` reads, as KRaft lays it out:
//!
//! - entry `i` is one v2 batch at base offset `i - 1` (raft indices start at 1, offsets at 0),
//!   so a log's end offset is its last index and the high watermark is the commit index;
//! - the batch's partition leader epoch is the entry's term (KRaft: epochs are terms), so the
//!   log's leader-epoch cache is the raft log's term boundaries;
//! - the batch holds one record: key = the entry type (one byte, raft's enum value), value =
//!   the entry's data (empty for a new leader's first entry), and a `raft.context` header only
//!   when raft-rs gave the entry a context (Weir's quorum never does; kept so the mapping loses
//!   nothing).
//!
//! Decoding validates the batch (framing, CRC) through `weir_storage` and refuses anything
//! that is not exactly this shape.

use super::{INDEX_MAX, TERM_MAX};
use bytes::Bytes;
use raft::eraftpb::{Entry, EntryType};
use weir_storage::batch::{self, get_varint, ProducerFields, Record};
use weir_storage::records::{BatchRecords, RecordsError};
use weir_storage::BatchError;

/// The header carrying an entry's context.
pub const CONTEXT_HEADER: &str = "raft.context";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntryBatchError {
    #[error("entry index {0} has no log offset (indices start at 1 and end at 2^63 - 1)")]
    IndexOutOfRange(u64),
    #[error("entry term {0} does not fit a partition leader epoch")]
    TermOutOfRange(u64),
    #[error("invalid record batch: {0}")]
    Batch(#[from] BatchError),
    #[error("unreadable records: {0}")]
    Records(#[from] RecordsError),
    #[error("a raft entry batch holds exactly one record at its base offset; {0}")]
    Shape(&'static str),
    #[error("unknown raft entry type {0}")]
    UnknownType(u8),
}

/// The batch for `entry`, stamped with the time the driver appends it (the batch's timestamp,
/// shown by `kafka-dump-log.sh`; raft itself has no clock).
pub fn encode(entry: &Entry, append_time_ms: i64) -> Result<Vec<u8>, EntryBatchError> {
    if entry.index == 0 || entry.index > INDEX_MAX {
        return Err(EntryBatchError::IndexOutOfRange(entry.index));
    }
    if entry.term > TERM_MAX {
        return Err(EntryBatchError::TermOutOfRange(entry.term));
    }
    let headers = if entry.context.is_empty() {
        Vec::new()
    } else {
        vec![(CONTEXT_HEADER.to_string(), Some(entry.context.to_vec()))]
    };
    let record = Record {
        key: Some(vec![entry.get_entry_type() as u8]),
        value: Some(entry.data.to_vec()),
        headers,
        timestamp_delta: 0,
    };
    let mut b = batch::build_batch(&[record], append_time_ms, ProducerFields::NONE);
    // Both fields lie before the CRC-covered range: the checksum stays valid.
    batch::assign(&mut b, entry.index as i64 - 1, entry.term as i32);
    Ok(b)
}

/// The entry in `bytes`, which holds exactly one batch.
pub fn decode(bytes: &[u8]) -> Result<Entry, EntryBatchError> {
    let header = batch::validate(bytes)?;
    let shape = EntryBatchError::Shape;
    if header.base_offset < 0 {
        return Err(EntryBatchError::IndexOutOfRange(0));
    }
    if header.partition_leader_epoch < 0 {
        return Err(shape("a negative partition leader epoch is no term"));
    }
    if header.record_count != 1 || header.last_offset_delta != 0 {
        return Err(shape("the batch spans more than one offset"));
    }
    let records = BatchRecords::parse(bytes)?;
    let [record] = records.records.as_slice() else {
        return Err(shape("the batch does not hold one record"));
    };
    if record.offset != header.base_offset {
        return Err(shape("the record's offset delta is not 0"));
    }
    let key = records.key(record).ok_or(shape("the key is null"))?;
    let [type_byte] = key else {
        return Err(shape("the key is not one byte"));
    };
    let entry_type = match *type_byte {
        0 => EntryType::EntryNormal,
        1 => EntryType::EntryConfChange,
        2 => EntryType::EntryConfChangeV2,
        t => return Err(EntryBatchError::UnknownType(t)),
    };
    let value = record.value.clone().ok_or(shape("the value is null"))?;
    let context = read_context(&records.data, value.end, record.raw.end)?;
    let mut entry = Entry::default();
    entry.set_entry_type(entry_type);
    entry.index = header.base_offset as u64 + 1;
    entry.term = header.partition_leader_epoch as u64;
    entry.data = records.data.slice(value);
    entry.context = context;
    Ok(entry)
}

/// Decodes consecutive batches (a read of the log). Stops at the first bad batch.
pub fn decode_all(mut bytes: &[u8]) -> Result<Vec<Entry>, EntryBatchError> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let header = batch::BatchHeader::parse(bytes)?;
        let len = header.total_len().min(bytes.len());
        out.push(decode(&bytes[..len])?);
        bytes = &bytes[len..];
    }
    Ok(out)
}

/// The record's headers, from `at` (just after the value) to `end`: none, or the context.
fn read_context(data: &[u8], at: usize, end: usize) -> Result<Bytes, EntryBatchError> {
    let bad = EntryBatchError::Shape("the headers are not a raft context");
    let body = &data[..end];
    let mut pos = at;
    let count = get_varint(body, &mut pos).ok_or(bad.clone())?;
    let context = match count {
        0 => Bytes::new(),
        1 => {
            let key = read_bytes(body, &mut pos).ok_or(bad.clone())?;
            if key != Some(CONTEXT_HEADER.as_bytes()) {
                return Err(bad);
            }
            let value = read_bytes(body, &mut pos)
                .ok_or(bad.clone())?
                .ok_or(bad.clone())?;
            Bytes::copy_from_slice(value)
        }
        _ => return Err(bad),
    };
    if pos != end {
        return Err(bad);
    }
    Ok(context)
}

fn read_bytes<'a>(b: &'a [u8], pos: &mut usize) -> Option<Option<&'a [u8]>> {
    let len = get_varint(b, pos)?;
    if len < 0 {
        return Some(None);
    }
    let start = *pos;
    let end = start.checked_add(usize::try_from(len).ok()?)?;
    let out = b.get(start..end)?;
    *pos = end;
    Some(Some(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn entry(index: u64, term: u64, data: &'static [u8]) -> Entry {
        Entry {
            index,
            term,
            data: Bytes::from_static(data),
            ..Entry::default()
        }
    }

    #[test]
    fn entries_map_to_kafka_offsets_and_epochs() {
        let e = entry(42, 7, b"records");
        let b = encode(&e, 1_700_000_000_000).unwrap();
        let h = batch::validate(&b).unwrap();
        assert_eq!(
            (h.base_offset, h.partition_leader_epoch, h.record_count),
            (41, 7, 1)
        );
        assert_eq!(h.base_timestamp, 1_700_000_000_000);
        assert_eq!(decode(&b).unwrap(), e);
    }

    #[test]
    fn empty_entries_and_contexts_round_trip() {
        let noop = entry(1, 1, b"");
        assert_eq!(decode(&encode(&noop, 0).unwrap()).unwrap(), noop);
        let mut ctx = entry(3, 2, b"x");
        ctx.context = Bytes::from_static(b"ctx");
        ctx.set_entry_type(EntryType::EntryConfChangeV2);
        assert_eq!(decode(&encode(&ctx, 0).unwrap()).unwrap(), ctx);
        let mut log = encode(&noop, 0).unwrap();
        log.extend(encode(&entry(2, 1, b"a"), 0).unwrap());
        log.extend(encode(&ctx, 0).unwrap());
        let all = decode_all(&log).unwrap();
        assert_eq!(
            all.iter().map(|e| e.index).collect::<Vec<_>>(),
            vec![1, 2, 3]
        );
        assert!(decode_all(&log[..log.len() - 1]).is_err());
    }

    #[test]
    fn entries_without_an_offset_or_epoch_are_refused() {
        assert_eq!(
            encode(&entry(0, 1, b""), 0),
            Err(EntryBatchError::IndexOutOfRange(0))
        );
        assert_eq!(
            encode(&entry(1, TERM_MAX + 1, b""), 0),
            Err(EntryBatchError::TermOutOfRange(TERM_MAX + 1))
        );
    }

    #[test]
    fn other_batches_are_refused() {
        // A producer's batch of two records is not an entry.
        let two = batch::build_batch(
            &[Record::default(), Record::default()],
            0,
            ProducerFields::NONE,
        );
        assert!(decode(&two).is_err());
        let keyless = batch::build_batch(
            &[Record {
                value: Some(vec![1]),
                ..Record::default()
            }],
            0,
            ProducerFields::NONE,
        );
        assert!(decode(&keyless).is_err());
        let mut bad_type = batch::build_batch(
            &[Record {
                key: Some(vec![9]),
                value: Some(vec![]),
                ..Record::default()
            }],
            0,
            ProducerFields::NONE,
        );
        batch::assign(&mut bad_type, 0, 1);
        assert_eq!(decode(&bad_type), Err(EntryBatchError::UnknownType(9)));
        let mut flipped = encode(&entry(5, 1, b"data"), 0).unwrap();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert!(matches!(
            decode(&flipped),
            Err(EntryBatchError::Batch(BatchError::CrcMismatch { .. }))
        ));
    }

    proptest! {
        #[test]
        fn any_entry_round_trips(index in 1u64..=INDEX_MAX, term in 0u64..=TERM_MAX,
                                 data in proptest::collection::vec(any::<u8>(), 0..256),
                                 context in proptest::collection::vec(any::<u8>(), 0..16)) {
            let e = Entry {
                index,
                term,
                data: Bytes::from(data),
                context: Bytes::from(context),
                ..Entry::default()
            };
            prop_assert_eq!(decode(&encode(&e, 5).unwrap()).unwrap(), e);
        }

        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = decode(&bytes);
            let _ = decode_all(&bytes);
        }

        /// Bytes changed after the CRC was computed are always refused.
        #[test]
        fn corruption_is_refused(at in 0usize..1000, x in 1u8..=255) {
            let mut b = encode(&entry(9, 3, b"some records"), 0).unwrap();
            let i = batch::ATTRIBUTES_AT + at % (b.len() - batch::ATTRIBUTES_AT);
            b[i] ^= x;
            prop_assert!(decode(&b).is_err());
        }
    }
}
