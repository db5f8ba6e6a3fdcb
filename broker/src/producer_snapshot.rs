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

/// The snapshot files beside the log. Listed on the blocking thread, as every file-system call
/// that may wait for the disk is (`docs/ARCHITECTURE.md`).
async fn snapshots(replica: &Replica) -> Vec<(Offset, PathBuf)> {
    let dir = replica.log.dir();
    let Ok(names) = weir_storage::list_dir(dir).await else {
        return Vec::new();
    };
    names
        .into_iter()
        .filter_map(|name| {
            let (offset, suffix) = parse_file_name(&name)?;
            (suffix == SNAPSHOT_SUFFIX).then(|| (offset, dir.join(&name)))
        })
        .collect()
}

pub async fn load(replica: &Replica, now_ms: i64) -> Result<(), StorageError> {
    let end = replica.log.log_end_offset();
    let newest = snapshots(replica)
        .await
        .into_iter()
        .filter(|(o, _)| *o <= end)
        .max_by_key(|(o, _)| *o);
    let mut from = replica.log.log_start_offset();
    if let Some((_, path)) = newest {
        let decoded = match weir_storage::read_small_file(&path).await {
            Ok(Some(b)) => ProducerStateManager::decode_snapshot(&b).map_err(|e| e.to_string()),
            Ok(None) => Err("the snapshot file is gone".to_string()),
            Err(e) => Err(e.to_string()),
        };
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

/// Writes the snapshot (atomically, on the blocking thread) and removes older ones. A failure only costs a longer replay next time.
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
    for (o, old) in snapshots(replica).await {
        if o != offset {
            let _ = weir_storage::remove_if_exists(&old).await;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::settings::TopicSettings;
    use std::rc::Rc;
    use weir_storage::batch::{build_batch, ProducerFields, Record};
    use weir_storage::testing::{forbid_file_syscalls, trapped_file_syscalls};
    use weir_storage::{LogConfig, PartitionLog, SegmentFileCache, TopicPartition};

    fn replica(log: &Rc<PartitionLog>) -> Replica {
        let settings = TopicSettings {
            log: LogConfig::default(),
            min_insync_replicas: 1,
            unclean_leader_election: false,
        };
        Replica::new(
            log.topic_partition().clone(),
            [7; 16],
            log.clone(),
            0,
            settings,
        )
    }

    /// Issue 12: listing, reading and removing snapshots must not block the core's thread (a
    /// directory listing or an open may wait for the disk); a direct file-system call on the
    /// executor's thread traps and is counted.
    #[test]
    fn snapshots_are_listed_read_and_removed_off_the_executor_thread() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        weir_storage::heartbeat::run_on_executor(move || async move {
            forbid_file_syscalls();
            let tp = TopicPartition::new("t", 0);
            let log = PartitionLog::open(
                root.join(tp.dir_name()),
                tp,
                LogConfig::default(),
                SegmentFileCache::new(8),
                false,
            )
            .await
            .unwrap();
            let record = Record {
                key: None,
                value: Some(b"v".to_vec()),
                headers: vec![],
                timestamp_delta: 0,
            };
            let producer = ProducerFields {
                producer_id: 42,
                producer_epoch: 0,
                base_sequence: 0,
            };
            log.append_as_leader(&build_batch(&[record], 1000, producer), 0, 1000)
                .await
                .unwrap();
            // A stale snapshot, which saving a newer one removes.
            let stale = log.dir().join(file_name(0, SNAPSHOT_SUFFIX));
            weir_storage::write_atomic(&stale, b"stale".to_vec())
                .await
                .unwrap();

            // The stale snapshot does not decode: the producer comes from replaying the log.
            let first = replica(&log);
            load(&first, 1000).await.unwrap();
            assert_eq!(first.producers.borrow().producer_count(), 1);
            save(&first).await;
            let mut left = weir_storage::list_dir(log.dir()).await.unwrap();
            left.retain(|n| n.ends_with(".snapshot"));
            assert_eq!(
                left,
                [file_name(1, SNAPSHOT_SUFFIX)],
                "the stale snapshot is removed, the new one is at the log end"
            );

            // Loading again reads the snapshot (nothing is left to replay after offset 1).
            let second = replica(&log);
            load(&second, 1000).await.unwrap();
            assert_eq!(second.producers.borrow().producer_count(), 1);
            log.close().await.unwrap();

            let (count, first_nr) = trapped_file_syscalls();
            assert_eq!(
                count, 0,
                "{count} file-system calls on the executor thread, the first syscall number {first_nr}"
            );
        });
    }
}
