//! `log dump`: the batches of a segment or partition directory, one line each in the format of
//! Kafka's `kafka-dump-log.sh` (so its readers and greps carry over), or one JSON object per
//! line. Streamed: a segment of millions of batches never sits in memory.

use crate::records::{decode_fetched, Message};
use crate::segwalk::{self, Batch, LogError};
use bytes::Bytes;
use serde_json::{json, Value};
use std::io::Write;
use std::path::Path;

/// Errors of a dump: reading the data, or writing the output (e.g. a closed pipe).
#[derive(Debug, thiserror::Error)]
pub enum DumpError {
    #[error(transparent)]
    Log(#[from] LogError),
    #[error("writing output: {0}")]
    Output(#[from] std::io::Error),
}

fn codec(c: u8) -> &'static str {
    match c {
        0 => "none",
        1 => "gzip",
        2 => "snappy",
        3 => "lz4",
        4 => "zstd",
        _ => "unknown",
    }
}

/// Kafka's dump-log line for a batch.
pub fn batch_line(b: &Batch) -> String {
    let h = &b.header;
    let crc = if b.crc_ok() {
        format!("crc: {} isvalid: true", h.crc)
    } else {
        format!(
            "crc: {} isvalid: false (computed {})",
            h.crc, b.computed_crc
        )
    };
    format!(
        "baseOffset: {} lastOffset: {} count: {} baseSequence: {} lastSequence: {} producerId: {} \
         producerEpoch: {} partitionLeaderEpoch: {} isTransactional: {} isControl: {} \
         position: {} CreateTime: {} size: {} magic: {} compresscodec: {} {}",
        h.base_offset,
        h.last_offset(),
        h.record_count,
        h.base_sequence,
        if h.base_sequence < 0 {
            -1
        } else {
            h.base_sequence.wrapping_add(h.last_offset_delta)
        },
        h.producer_id,
        h.producer_epoch,
        h.partition_leader_epoch,
        h.is_transactional(),
        h.is_control(),
        b.position,
        h.max_timestamp,
        h.total_len(),
        h.magic,
        codec(h.compression()),
        crc
    )
}

fn batch_json(b: &Batch) -> Value {
    let h = &b.header;
    json!({
        "base_offset": h.base_offset,
        "last_offset": h.last_offset(),
        "count": h.record_count,
        "position": b.position,
        "size": h.total_len(),
        "base_timestamp": h.base_timestamp,
        "max_timestamp": h.max_timestamp,
        "producer_id": h.producer_id,
        "producer_epoch": h.producer_epoch,
        "base_sequence": h.base_sequence,
        "partition_leader_epoch": h.partition_leader_epoch,
        "compression": codec(h.compression()),
        "transactional": h.is_transactional(),
        "control": h.is_control(),
        "crc": h.crc,
        "crc_valid": b.crc_ok(),
    })
}

fn text(b: &Option<Bytes>) -> String {
    b.as_ref().map_or_else(
        || "null".into(),
        |b| String::from_utf8_lossy(b).into_owned(),
    )
}

/// Kafka's `| offset: ...` line for a record.
fn record_line(m: &Message) -> String {
    let headers: Vec<&str> = m.headers.iter().map(|(k, _)| k.as_str()).collect();
    format!(
        "| offset: {} {}: {} keySize: {} valueSize: {} headerKeys: [{}] key: {} payload: {}",
        m.offset,
        m.timestamp_type,
        m.timestamp,
        m.key.as_ref().map_or(-1, |k| k.len() as i64),
        m.value.as_ref().map_or(-1, |v| v.len() as i64),
        headers.join(","),
        text(&m.key),
        text(&m.value)
    )
}

fn record_json(m: &Message) -> Value {
    json!({
        "offset": m.offset,
        "timestamp": m.timestamp,
        "timestamp_type": m.timestamp_type,
        "key": m.key.as_ref().map(|k| String::from_utf8_lossy(k).into_owned()),
        "value": m.value.as_ref().map(|v| String::from_utf8_lossy(v).into_owned()),
        "headers": m.headers.iter().map(|(k, v)| json!({"key": k, "value": v.as_ref().map(|v| String::from_utf8_lossy(v).into_owned())})).collect::<Vec<_>>(),
    })
}

/// Records of a batch, or why they cannot be shown (a corrupt batch is not decoded).
fn records(b: &Batch, bytes: &[u8]) -> Result<Vec<Message>, String> {
    if !b.crc_ok() {
        return Err("records not shown: the batch fails its CRC".into());
    }
    decode_fetched(&Bytes::copy_from_slice(bytes))
        .map(|f| f.messages)
        .map_err(|e| format!("records not decoded: {e}"))
}

/// Dumps every segment `path` names to `out`. Returns the number of batches.
pub fn dump(
    path: &Path,
    print_data: bool,
    as_json: bool,
    out: &mut dyn Write,
) -> Result<u64, DumpError> {
    let partitions = segwalk::resolve(path)?;
    let mut count = 0u64;
    for p in &partitions {
        for seg in &p.segments {
            if as_json {
                let v = json!({"segment": seg.log.display().to_string(), "base_offset": seg.base_offset});
                writeln!(out, "{v}")?;
            } else {
                writeln!(out, "Dumping {}", seg.log.display())?;
                writeln!(out, "Log starting offset: {}", seg.base_offset)?;
            }
            let mut write_err = None;
            let torn = segwalk::walk(
                &seg.log,
                |b, bytes| {
                    count += 1;
                    if write_err.is_some() {
                        return;
                    }
                    let r = if as_json {
                        let mut v = batch_json(b);
                        if print_data {
                            v["records"] = match records(b, bytes) {
                                Ok(ms) => Value::Array(ms.iter().map(record_json).collect()),
                                Err(why) => json!(why),
                            };
                        }
                        writeln!(out, "{v}")
                    } else {
                        let mut r = writeln!(out, "{}", batch_line(b));
                        if print_data && r.is_ok() {
                            r = match records(b, bytes) {
                                Ok(ms) => ms
                                    .iter()
                                    .try_for_each(|m| writeln!(out, "{}", record_line(m))),
                                Err(why) => writeln!(out, "| {why}"),
                            };
                        }
                        r
                    };
                    if let Err(e) = r {
                        write_err = Some(e);
                    }
                },
                |_| {},
            )?;
            if let Some(e) = write_err {
                return Err(e.into());
            }
            if let Some(t) = torn {
                if as_json {
                    writeln!(
                        out,
                        "{}",
                        json!({"torn_at": t.position, "reason": t.reason})
                    )?;
                } else {
                    writeln!(
                        out,
                        "Found an unreadable tail at position {}: {}",
                        t.position, t.reason
                    )?;
                }
            }
        }
    }
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::segwalk::tests::stored_batch;

    #[test]
    fn dumps_batches_and_records_in_kafkas_format() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = stored_batch(0, 2, 1000);
        log.extend(stored_batch(2, 1, 2000));
        let bad_at = log.len() - 1;
        log[bad_at] ^= 1;
        std::fs::write(dir.path().join("00000000000000000000.log"), &log).unwrap();
        let mut out = Vec::new();
        assert_eq!(dump(dir.path(), true, false, &mut out).unwrap(), 2);
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("Dumping ") && lines[0].ends_with("00000000000000000000.log"));
        assert_eq!(lines[1], "Log starting offset: 0");
        assert!(
            lines[2].starts_with("baseOffset: 0 lastOffset: 1 count: 2 "),
            "{}",
            lines[2]
        );
        assert!(
            lines[2].contains(" position: 0 CreateTime: 1001 "),
            "{}",
            lines[2]
        );
        assert!(lines[2].ends_with("isvalid: true"), "{}", lines[2]);
        assert_eq!(
            lines[3],
            "| offset: 0 CreateTime: 1000 keySize: 2 valueSize: 20 headerKeys: [] key: k0 payload: xxxxxxxxxxxxxxxxxxxx"
        );
        assert!(
            lines[5].starts_with("baseOffset: 2 lastOffset: 2"),
            "{}",
            lines[5]
        );
        assert!(
            lines[5].contains("isvalid: false (computed "),
            "{}",
            lines[5]
        );
        assert_eq!(lines[6], "| records not shown: the batch fails its CRC");

        let mut out = Vec::new();
        dump(dir.path(), false, true, &mut out).unwrap();
        let objs: Vec<Value> = String::from_utf8(out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(objs.len(), 3);
        assert_eq!(objs[1]["count"], 2);
        assert_eq!(objs[2]["crc_valid"], false);
    }
}
