//! Record batches and records, every codec: what a producer sends, through the leader's
//! validation (`weir_storage::validate::validate_produced`, Kafka's LogValidator: decompress,
//! walk records, recompress to the topic's codec, stamp timestamps) under a topic config the
//! input picks, and through the record reader the cleaner and raft entries use
//! (`BatchRecords::parse`).
//!
//! Input: one config byte, then concatenated batches. When the config byte asks for it the
//! target rewrites each batch's length and CRC to match its bytes first, so mutations reach the
//! records and codecs instead of dying at the CRC check (the CRC path itself is fuzzed by the
//! inputs that leave it alone).
//!
//! Memory: a batch may decompress to `DECOMPRESSED_BATCH_BYTES_MAX` (256 MiB, Weir's named cap)
//! whatever its compressed size, so the bound here is that cap's worth of buffers (the
//! decompressed section, `read_to_end`'s doubling past it, and the recompressed copy) on top of
//! a per-byte allowance; what this catches is memory that grows past the cap or with a count.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use weir_storage::batch::{self, BATCH_LENGTH_AT, CRC_AT, HEADER_LEN, LOG_OVERHEAD};
use weir_storage::records::{BatchRecords, DECOMPRESSED_BATCH_BYTES_MAX};
use weir_storage::{Compression, LogConfig, TimestampType, TopicPartition};

const BASE: usize = 256 << 10;
const PER_BYTE: usize = 256;

fn config(byte: u8) -> LogConfig {
    let mut c = LogConfig {
        compact: byte & 0x08 != 0,
        ..LogConfig::default()
    };
    c.compression = match byte & 0x07 {
        0..=4 => Some(Compression {
            codec: byte & 0x07,
            level: None,
        }),
        _ => None, // "producer": keep the batch's codec
    };
    if byte & 0x10 != 0 {
        c.timestamp_type = TimestampType::LogAppendTime;
    }
    if byte & 0x20 != 0 {
        c.timestamp_before_max_ms = 3_600_000;
        c.timestamp_after_max_ms = 3_600_000;
    }
    if byte & 0x40 != 0 {
        c.max_message_bytes = 200;
    }
    c
}

/// Makes each batch's length and CRC agree with the bytes that follow its header.
fn fix_up(buf: &mut [u8]) {
    let mut pos = 0;
    while buf.len() - pos >= HEADER_LEN {
        let rest = &mut buf[pos..];
        let declared = i32::from_be_bytes(
            rest[BATCH_LENGTH_AT..BATCH_LENGTH_AT + 4]
                .try_into()
                .unwrap(),
        );
        let len = (declared.max(0) as usize + LOG_OVERHEAD).clamp(HEADER_LEN, rest.len());
        let batch = &mut rest[..len];
        batch[BATCH_LENGTH_AT..BATCH_LENGTH_AT + 4]
            .copy_from_slice(&((len - LOG_OVERHEAD) as i32).to_be_bytes());
        let crc = batch::compute_crc(batch);
        batch[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
        pos += len;
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&cfg, rest)) = data.split_first() else {
        return;
    };
    let mut records = rest.to_vec();
    if cfg & 0x80 != 0 {
        fix_up(&mut records);
    }
    let records = Bytes::from(records);
    let config = config(cfg);
    let tp = TopicPartition {
        topic: "fuzz".into(),
        partition: 0,
    };
    let _guard = weir_fuzz::bound(
        data.len(),
        BASE + 3 * DECOMPRESSED_BATCH_BYTES_MAX,
        PER_BYTE,
    );
    let _ = weir_storage::validate::validate_produced(&records, &config, &tp, 1_700_000_000_000)
        .map_err(|e| e.to_string());
    // The reader the cleaner, raft entries and has_keyless_record use, on each framed batch.
    if let Ok(parsed) = batch::split_and_validate(&records) {
        for (range, _) in parsed {
            if let Ok(b) = BatchRecords::parse(&records[range.clone()]) {
                for r in &b.records {
                    let _ = (b.key(r), b.value(r));
                }
            }
        }
    }
});
