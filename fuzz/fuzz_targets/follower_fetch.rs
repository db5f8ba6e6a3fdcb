//! A FetchResponse as a follower's replica fetcher reads it: the response frame body (size
//! prefix stripped) decoded with kafka-protocol as `weir_net::client` does (response header, then
//! the body at the version the fetcher asked for, v12-v16), then each partition's records
//! validated as the follower append path does (`weir_storage::log::Log::
//! append_bytes_as_follower`: `split_and_validate`, `max.message.bytes`, offsets at or after the
//! log end and increasing, idempotent producers' state followed unchecked), plus the diverging
//! epoch and high watermark a fetcher reads.
//!
//! Input: a version byte (12 + n % 5), then the frame body.
#![no_main]

use bytes::Bytes;
use kafka_protocol::messages::{ApiKey, FetchResponse, ResponseHeader};
use kafka_protocol::protocol::Decodable;
use libfuzzer_sys::fuzz_target;
use weir_storage::batch;
use weir_storage::producer::ProducerStateManager;

const BASE: usize = 64 << 10;
/// Decoded structures per frame byte; records stay slices of the frame.
const PER_BYTE: usize = 512;
/// Kafka's default `max.message.bytes` (1 MiB + the batch overhead), as a follower's topic has.
const MAX_MESSAGE_BYTES: usize = 1_048_588;

fuzz_target!(|data: &[u8]| {
    let Some((&v, body)) = data.split_first() else {
        return;
    };
    let version = 12 + (v % 5) as i16;
    let mut frame = Bytes::copy_from_slice(body);
    let _guard = weir_fuzz::bound(data.len(), BASE, PER_BYTE);
    if ResponseHeader::decode(&mut frame, ApiKey::Fetch.response_header_version(version)).is_err()
    {
        return;
    }
    let Ok(response) = FetchResponse::decode(&mut frame, version) else {
        return;
    };
    for topic in &response.responses {
        for p in &topic.partitions {
            let _ = (p.high_watermark, p.log_start_offset, &p.diverging_epoch);
            let Some(records) = &p.records else { continue };
            follower_append(records, 0);
        }
    }
});

/// What `append_bytes_as_follower` and the queueing after it check, without the disk: the log
/// end is `log_end`.
fn follower_append(records: &Bytes, log_end: i64) {
    let Ok(parsed) = batch::split_and_validate(records) else {
        return;
    };
    if parsed.iter().any(|(r, _)| r.len() > MAX_MESSAGE_BYTES) || parsed.is_empty() {
        return;
    }
    let mut next = log_end;
    for (_, h) in &parsed {
        if h.base_offset < next {
            return; // NonMonotonicOffset
        }
        next = h.last_offset() + 1;
    }
    let mut state = ProducerStateManager::default();
    for (range, h) in &parsed {
        let _ = records.slice(range.clone());
        state.track_replicated(h);
    }
    for (_, h) in &parsed {
        state.record(h);
    }
    let _ = state.encode_snapshot(next);
}
