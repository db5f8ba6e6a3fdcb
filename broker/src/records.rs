//! Reading the records inside an uncompressed v2 batch, for the broker's own internal logs
//! (the metadata log now, `__consumer_offsets` later). Client data is never parsed this way:
//! produce and fetch move batches as they are.

use weir_storage::batch::{get_varint, BatchHeader, HEADER_LEN};

/// A record's key and value, borrowed from the batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordView<'a> {
    pub offset_delta: i32,
    pub timestamp_delta: i64,
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
}

/// The records of an uncompressed batch; `None` if compressed or malformed.
pub fn records(batch: &[u8]) -> Option<Vec<RecordView<'_>>> {
    let header = BatchHeader::parse(batch).ok()?;
    if header.compression() != 0 {
        return None;
    }
    let mut out = Vec::with_capacity(header.record_count.clamp(0, 4096) as usize);
    let mut pos = HEADER_LEN;
    for _ in 0..header.record_count {
        let len = usize::try_from(get_varint(batch, &mut pos)?).ok()?;
        let end = pos.checked_add(len).filter(|e| *e <= batch.len())?;
        pos += 1; // record attributes
        let timestamp_delta = get_varint(batch, &mut pos)?;
        let offset_delta = get_varint(batch, &mut pos)? as i32;
        let key = bytes_field(batch, &mut pos, end)?;
        let value = bytes_field(batch, &mut pos, end)?;
        out.push(RecordView {
            offset_delta,
            timestamp_delta,
            key,
            value,
        });
        pos = end;
    }
    Some(out)
}

fn bytes_field<'a>(b: &'a [u8], pos: &mut usize, end: usize) -> Option<Option<&'a [u8]>> {
    let len = get_varint(b, pos)?;
    if len < 0 {
        return Some(None);
    }
    let stop = pos.checked_add(len as usize).filter(|e| *e <= end)?;
    let s = &b[*pos..stop];
    *pos = stop;
    Some(Some(s))
}

/// Just the values, in order.
pub fn record_values(batch: &[u8]) -> Option<Vec<Option<&[u8]>>> {
    Some(records(batch)?.into_iter().map(|r| r.value).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use weir_storage::batch::{build_batch, ProducerFields, Record};

    #[test]
    fn reads_back_what_the_builder_wrote() {
        let recs = vec![
            Record {
                key: Some(b"k".to_vec()),
                value: Some(b"v1".to_vec()),
                ..Record::default()
            },
            Record {
                key: None,
                value: None,
                timestamp_delta: 5,
                ..Record::default()
            },
        ];
        let b = build_batch(&recs, 100, ProducerFields::NONE);
        let got = records(&b).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(
            (got[0].key, got[0].value),
            (Some(&b"k"[..]), Some(&b"v1"[..]))
        );
        assert_eq!(
            (
                got[1].key,
                got[1].value,
                got[1].timestamp_delta,
                got[1].offset_delta
            ),
            (None, None, 5, 1)
        );
        assert!(records(&b[..b.len() - 1]).is_none());
    }
}
