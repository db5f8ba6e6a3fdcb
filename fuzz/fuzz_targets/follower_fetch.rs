//! A FetchResponse as a follower's replica fetcher reads it (`broker/src/replicate/fetcher.rs`),
//! step by step through the same functions, without the socket and the disk:
//! - the response frame body (size prefix stripped) decoded as `weir_net::client` decodes a
//!   call's answer: the response header, then `FetchResponse` at the version the fetcher asked
//!   for (`FETCH_VERSIONS`); a top-level error ends the round;
//! - each partition's answer picked out as the fetcher does (`fetcher::answer_for`) and handed to
//!   a follower's state machine (`FollowerState::on_answer`) whose local log is described by the
//!   input (its end and leader-epoch cache, a `LeaderEpochCache` as the log keeps it);
//! - an append: the records split and checked as `PartitionLog::append_bytes_as_follower` does
//!   (`follower_batches` under Kafka's default `max.message.bytes`, `follower_next_offset`
//!   against the log end), producer state followed, the epoch cache assigned from the batches;
//!   then the follower's high watermark;
//! - a truncation: the offset must be one the log can truncate to (0 ..= log end).
//!
//! Input: 9 bytes of follower state — the Fetch version (`FETCH_VERSIONS.0 + byte % span`), the
//! local log end (u16), the follower's current leader epoch (u8), 5 bytes packing up to 4 local
//! epochs (see `local_log`) — then the response frame body.
#![no_main]

use bytes::Bytes;
use kafka_protocol::messages::{ApiKey, FetchResponse, ResponseHeader};
use kafka_protocol::protocol::Decodable;
use libfuzzer_sys::fuzz_target;
use weir::replicate::fetcher::{answer_for, FETCH_VERSIONS};
use weir_replication::partition::epochs::EpochLookup;
use weir_replication::partition::follower::{
    follower_high_watermark, FollowerAction, FollowerState,
};
use weir_replication::types::{LeaderEpoch, Offset};
use weir_storage::batch::LOG_OVERHEAD;
use weir_storage::checkpoint::LeaderEpochCache;
use weir_storage::log::{follower_batches, follower_next_offset};
use weir_storage::producer::ProducerStateManager;

/// Bytes of follower state before the frame.
const STATE_BYTES: usize = 9;
const BASE: usize = 64 << 10;
/// Decoded structures per frame byte; records stay slices of the frame.
const PER_BYTE: usize = 512;
/// Kafka's default `max.message.bytes` (1 MiB + the batch overhead), as a follower's topic has.
const MAX_MESSAGE_BYTES: usize = 1_048_588;

/// The follower's local log: its end and its leader-epoch cache.
#[derive(Clone)]
struct LocalLog {
    end: Offset,
    epochs: LeaderEpochCache,
}

impl EpochLookup for LocalLog {
    fn end_offset_for_epoch(&self, epoch: LeaderEpoch) -> Option<(LeaderEpoch, Offset)> {
        self.epochs.end_offset_for(epoch, self.end)
    }
}

/// `state`: [version, end hi, end lo, leader epoch, packed epochs ×5]. Up to 4 epochs, each a
/// step from the previous (epoch +1..=8, start +0..=31 offsets), all at or below the end, as a
/// real log's cache is.
fn local_log(state: &[u8]) -> (LocalLog, LeaderEpoch) {
    let end = u16::from_be_bytes([state[1], state[2]]) as Offset;
    let leader_epoch = state[3] as LeaderEpoch;
    let mut epochs = LeaderEpochCache::default();
    let packed = u64::from_be_bytes([0, 0, 0, state[4], state[5], state[6], state[7], state[8]]);
    let n = (packed & 0x7) as usize % 5;
    let (mut epoch, mut start) = (-1, 0);
    for i in 0..n {
        let bits = packed >> (3 + 8 * i);
        epoch += 1 + (bits & 0x7) as LeaderEpoch;
        start = (start + ((bits >> 3) & 0x1f) as Offset).min(end);
        epochs.assign(epoch, start);
    }
    (LocalLog { end, epochs }, leader_epoch)
}

fuzz_target!(|data: &[u8]| {
    if data.len() < STATE_BYTES {
        return;
    }
    let (state, body) = data.split_at(STATE_BYTES);
    let (lo, hi) = FETCH_VERSIONS;
    let version = lo + (state[0] as i16 % (hi - lo + 1));
    let (local, leader_epoch) = local_log(state);
    let mut frame = Bytes::copy_from_slice(body);
    let _guard = weir_fuzz::bound(data.len(), BASE, PER_BYTE);
    // weir_net::client's read of an answer: the correlation id is there, the header decodes,
    // then the body at the version the call was made at.
    if frame.len() < 4
        || ResponseHeader::decode(&mut frame, ApiKey::Fetch.response_header_version(version))
            .is_err()
    {
        return;
    }
    let Ok(response) = FetchResponse::decode(&mut frame, version) else {
        return;
    };
    if response.error_code != 0 {
        return;
    }
    // Every partition the response names, as the follower of it reads its answer.
    for topic in &response.responses {
        for p in &topic.partitions {
            follow(
                &response,
                *topic.topic_id.as_bytes(),
                topic.topic.0.as_str(),
                p.partition_index,
                &local,
                leader_epoch,
            );
        }
    }
});

fn follow(
    response: &FetchResponse,
    topic_id: [u8; 16],
    topic: &str,
    partition: i32,
    local: &LocalLog,
    leader_epoch: LeaderEpoch,
) {
    let Some((answer, records)) = answer_for(response, topic_id, topic, partition) else {
        return;
    };
    let mut log = local.clone();
    let mut f = FollowerState::new(1, leader_epoch, log.end, log.epochs.latest_epoch(), 1000);
    let asked = f.position(0).expect("a new follower fetches at once");
    match f.on_answer(asked, answer, &log, log.end, 0) {
        FollowerAction::Append {
            leader_high_watermark,
            log_start_offset: _,
        } => {
            if let Some(bytes) = records.filter(|b| !b.is_empty()) {
                // append_bytes_as_follower, then the queue's offset check (enqueue).
                let Ok(batches) = follower_batches(&bytes, MAX_MESSAGE_BYTES) else {
                    return;
                };
                let Ok(next) = follower_next_offset(batches.iter().map(|(_, h)| h), log.end) else {
                    return;
                };
                let mut producers = ProducerStateManager::default();
                for (_, h) in &batches {
                    producers.track_replicated(h);
                }
                for (b, h) in &batches {
                    assert_eq!(
                        b.len(),
                        h.batch_length as usize + LOG_OVERHEAD,
                        "a batch is its frame"
                    );
                    producers.record(h);
                    log.epochs.assign(h.partition_leader_epoch, h.base_offset);
                }
                assert!(next > log.end, "an append moves the log end forward");
                log.end = next;
            }
            f.on_appended(log.end, log.epochs.latest_epoch());
            let hw = follower_high_watermark(leader_high_watermark, log.end);
            assert!(
                (0..=log.end).contains(&hw),
                "high watermark {hw} outside 0..={}",
                log.end
            );
        }
        FollowerAction::Truncate { offset, .. } => {
            assert!(
                (0..=log.end).contains(&offset),
                "truncation to {offset} of a log ending at {} ({answer:?})",
                log.end
            );
            log.epochs.truncate_from_end(offset);
            f.on_truncated(offset, log.epochs.latest_epoch());
        }
        FollowerAction::TruncateFullyAndStartAt { offset } => {
            assert!(offset >= 0, "a log restarted at {offset} ({answer:?})");
            f.on_truncated(offset, None);
        }
        FollowerAction::Wait => {}
    }
    if let Some(next) = f.position(i64::MAX / 2) {
        assert!(
            next.fetch_offset >= 0,
            "next fetch at {}",
            next.fetch_offset
        );
    }
}
