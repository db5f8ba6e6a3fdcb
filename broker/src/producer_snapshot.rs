//! Persisting a partition's idempotent producer state: a snapshot at clean shutdown, named by
//! offset as Kafka's `<offset>.snapshot` files are, and on open the newest snapshot at or below
//! the log end plus a replay of the batch headers after it (Kafka's ProducerStateManager load).

use crate::producer_state::ProducerStateManager;
use crate::replica::Replica;
use std::path::PathBuf;
use weir_storage::batch::{BatchHeader, HEADER_LEN};
use weir_storage::segment::{file_name, parse_file_name};
use weir_storage::{Offset, StorageError};

const SNAPSHOT_SUFFIX: &str = "snapshot";

/// How much of the log one replay read covers.
const REPLAY_READ_BYTES: u64 = 4 << 20;

fn snapshots(replica: &Replica) -> Vec<(Offset, PathBuf)> {
    let Ok(entries) = std::fs::read_dir(replica.log.dir()) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name();
            let (offset, suffix) = parse_file_name(name.to_str()?)?;
            (suffix == SNAPSHOT_SUFFIX).then(|| (offset, e.path()))
        })
        .collect()
}

pub async fn load(replica: &Replica, now_ms: i64) -> Result<(), StorageError> {
    let end = replica.log.log_end_offset();
    let newest = snapshots(replica)
        .into_iter()
        .filter(|(o, _)| *o <= end)
        .max_by_key(|(o, _)| *o);
    let mut from = replica.log.log_start_offset();
    if let Some((_, path)) = newest {
        let decoded = std::fs::read(&path)
            .map_err(|e| e.to_string())
            .and_then(|b| ProducerStateManager::decode_snapshot(&b).map_err(|e| e.to_string()));
        match decoded {
            Ok((state, offset)) => {
                *replica.producers.borrow_mut() = state;
                from = offset.max(from);
            }
            Err(e) => {
                tracing::warn!(partition = %replica.tp, error = %e, "unusable producer snapshot; rebuilding from the log")
            }
        }
    }
    let mut next = from;
    while next < end {
        let read = replica.log.read(next, REPLAY_READ_BYTES, end, true).await?;
        let Some(region) = read.region else { break };
        let bytes = region.read_to_vec().await?;
        let mut headers = Vec::new();
        let mut pos = 0;
        while pos + HEADER_LEN <= bytes.len() {
            let Ok(h) = BatchHeader::parse(&bytes[pos..]) else {
                break;
            };
            pos += h.total_len();
            next = h.last_offset() + 1;
            headers.push(h);
        }
        if headers.is_empty() {
            break;
        }
        replica.producers.borrow_mut().rebuild_from_batches(headers);
    }
    replica.producers.borrow_mut().expire(now_ms);
    Ok(())
}

/// Writes the snapshot (atomically, through the executor's async file I/O) and removes older
/// ones. A failure only costs a longer replay next time.
pub async fn save(replica: &Replica) {
    let end = replica.log.log_end_offset();
    let (offset, bytes) = {
        let p = replica.producers.borrow();
        (p.snapshot_offset(end), p.encode_snapshot(end))
    };
    let path = replica.log.dir().join(file_name(offset, SNAPSHOT_SUFFIX));
    if let Err(e) = weir_storage::write_atomic(&path, bytes).await {
        tracing::warn!(partition = %replica.tp, error = %e, "writing the producer snapshot failed");
        return;
    }
    replica
        .snapshot_segment
        .set(replica.log.segment_bases().last().copied().unwrap_or(0));
    for (o, old) in snapshots(replica) {
        if o != offset {
            let _ = std::fs::remove_file(old);
        }
    }
}

/// Kafka snapshots producer state when a segment rolls, so a crash replays at most about one
/// segment of batch headers. The upkeep tick calls this; it writes only after a roll.
pub async fn save_if_rolled(replica: &Replica) {
    let active = replica.log.segment_bases().last().copied().unwrap_or(0);
    if active != replica.snapshot_segment.get() && replica.producers.borrow().producer_count() > 0 {
        save(replica).await;
    }
}
