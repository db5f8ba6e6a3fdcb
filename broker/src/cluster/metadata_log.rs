//! Where a controller keeps the quorum's state, in the metadata log's directory
//! (`__cluster_metadata-0/`, KRaft's layout): the raft log as an ordinary partition log (entry
//! `i` is one batch at offset `i - 1`, its epoch the entry's term), the `quorum-state` file (hard
//! state and voters), and checkpoints of the metadata image (`<index>-<term>.checkpoint`).
//!
//! It carries out step 2 of a quorum round (`QuorumReady`'s persistence, in its order), reads
//! the log back for recovery and for brokers that fetch metadata, and converts a single-node
//! Weir's metadata log (records in plain batches, before the quorum existed) into a checkpoint
//! once, so an existing data directory keeps its topics.

use bytes::Bytes;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use weir_replication::metadata::{self, MetadataImage, MetadataRecord, METADATA_TOPIC};
use weir_replication::quorum::{
    entry_batch, state_file, Entry, QuorumHardState, QuorumReady, RecoveredState, SnapshotData,
};
use weir_replication::types::NodeId;
use weir_storage::{
    LogConfig, Offset, PartitionLog, SegmentFileCache, StorageError, TopicPartition,
};

/// A checkpoint file's suffix (Kafka's snapshot files are `<offset>-<epoch>.checkpoint`).
const CHECKPOINT_SUFFIX: &str = ".checkpoint";

/// Largest read when replaying or serving the log.
const READ_BYTES: u64 = 8 << 20;

/// Why the metadata log cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum MetadataLogError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("the quorum-state file is unreadable: {0}")]
    StateFile(#[from] state_file::StateFileError),
    #[error("raft entry at offset {offset} is unreadable: {error}")]
    Entry {
        offset: Offset,
        error: entry_batch::EntryBatchError,
    },
    #[error("checkpoint {path} is unreadable: {error}")]
    Checkpoint {
        path: PathBuf,
        error: metadata::snapshot::SnapshotError,
    },
}

pub struct MetadataLog {
    dir: PathBuf,
    log: Rc<PartitionLog>,
    voters: Vec<NodeId>,
    /// The newest checkpoint on disk.
    snapshot: std::cell::RefCell<Option<SnapshotData>>,
}

impl MetadataLog {
    /// Opens the metadata log in `log_dir` and reads back what recovery needs.
    pub async fn open(
        log_dir: &Path,
        cache: Rc<SegmentFileCache>,
        clean: bool,
        voters: &[NodeId],
    ) -> Result<(Self, RecoveredState), MetadataLogError> {
        let tp = TopicPartition::new(METADATA_TOPIC, 0);
        let dir = log_dir.join(tp.dir_name());
        let config = LogConfig {
            // One raft entry is one batch; the quorum caps entries at 8 MiB.
            max_message_bytes: 64 << 20,
            // Only checkpoints shorten the log.
            retention_ms: -1,
            retention_bytes: -1,
            ..LogConfig::default()
        };
        let log = PartitionLog::open(dir.clone(), tp, config, cache, clean).await?;
        let me = Self {
            dir,
            log,
            voters: voters.to_vec(),
            snapshot: Default::default(),
        };
        let state_path = me.dir.join(state_file::QUORUM_STATE_FILE);
        let state = match weir_storage::read_small_file(&state_path).await? {
            Some(bytes) => Some(state_file::decode(&bytes)?),
            None => None,
        };
        if state.is_none() && me.log.log_end_offset() > me.log.log_start_offset() {
            me.convert_single_node_log().await?;
            return Box::pin(Self::open_after_conversion(me)).await;
        }
        let recovered = me.recover(state).await?;
        Ok((me, recovered))
    }

    async fn open_after_conversion(me: Self) -> Result<(Self, RecoveredState), MetadataLogError> {
        let state_path = me.dir.join(state_file::QUORUM_STATE_FILE);
        let bytes = weir_storage::read_small_file(&state_path)
            .await?
            .expect("the conversion wrote the quorum-state file");
        let state = state_file::decode(&bytes)?;
        let recovered = me.recover(Some(state)).await?;
        Ok((me, recovered))
    }

    async fn recover(
        &self,
        state: Option<state_file::QuorumStateFile>,
    ) -> Result<RecoveredState, MetadataLogError> {
        let snapshot = self.load_latest_checkpoint().await?;
        *self.snapshot.borrow_mut() = snapshot.clone();
        let entries = self
            .entries_between(self.log.log_start_offset() as u64 + 1, u64::MAX, u64::MAX)
            .await?;
        Ok(RecoveredState {
            hard_state: state.as_ref().map(|s| s.hard_state).unwrap_or_default(),
            recorded_voters: state.map(|s| s.voters),
            snapshot,
            entries,
        })
    }

    /// The entries with indices in `[from, up_to]`, at most about `max_bytes` of them (at least
    /// one), in order.
    pub async fn entries_between(
        &self,
        from: u64,
        up_to: u64,
        max_bytes: u64,
    ) -> Result<Vec<Entry>, MetadataLogError> {
        let mut out = Vec::new();
        let mut next = (from.max(1) - 1) as Offset;
        let end = self
            .log
            .log_end_offset()
            .min(up_to.min(i64::MAX as u64) as Offset);
        let mut budget = max_bytes;
        while next < end && budget > 0 {
            let read = self
                .log
                .read(next, READ_BYTES.min(budget), end, true)
                .await?;
            let Some(region) = read.region else { break };
            budget = budget.saturating_sub(region.len);
            let bytes = region.read_to_vec().await?;
            let entries =
                entry_batch::decode_all(&bytes).map_err(|error| MetadataLogError::Entry {
                    offset: next,
                    error,
                })?;
            let Some(last) = entries.last() else { break };
            next = last.index as Offset;
            out.extend(entries.into_iter().filter(|e| e.index <= up_to));
        }
        Ok(out)
    }

    /// The newest checkpoint, if any.
    pub fn snapshot(&self) -> Option<SnapshotData> {
        self.snapshot.borrow().clone()
    }

    /// The first index the log still holds.
    pub fn first_index(&self) -> u64 {
        self.log.log_start_offset() as u64 + 1
    }

    /// Step 2 of a round, in `QuorumReady`'s order.
    pub async fn persist(&self, rd: &QuorumReady, now_ms: i64) -> Result<(), MetadataLogError> {
        if let Some(snap) = &rd.snapshot {
            self.write_checkpoint(snap).await?;
        }
        if let Some(index) = rd.log_reset_after {
            self.log
                .truncate_fully_and_start_at(index as Offset)
                .await?;
        }
        if let Some(index) = rd.truncate_from {
            self.log.truncate_to(index as Offset - 1).await?;
        }
        if !rd.entries.is_empty() {
            let mut bytes = Vec::new();
            for e in &rd.entries {
                let b =
                    entry_batch::encode(e, now_ms).map_err(|error| MetadataLogError::Entry {
                        offset: e.index as Offset - 1,
                        error,
                    })?;
                bytes.extend_from_slice(&b);
            }
            self.log.append_as_follower(&bytes, now_ms).await?;
        }
        if rd.must_sync {
            self.log.flush().await?;
        }
        if let Some(hs) = &rd.hard_state {
            self.write_hard_state(*hs).await?;
        }
        // Everything in the log that raft committed is readable by brokers fetching metadata.
        if let Some(hs) = &rd.hard_state {
            self.log.set_high_watermark(hs.commit as Offset);
        }
        Ok(())
    }

    async fn write_hard_state(&self, hard_state: QuorumHardState) -> Result<(), MetadataLogError> {
        let bytes = state_file::encode(&state_file::QuorumStateFile {
            hard_state,
            voters: self.voters.clone(),
        });
        weir_storage::write_atomic(&self.dir.join(state_file::QUORUM_STATE_FILE), bytes).await?;
        Ok(())
    }

    /// Writes a checkpoint and removes the older ones (the newest is enough to recover).
    pub async fn write_checkpoint(&self, snap: &SnapshotData) -> Result<(), MetadataLogError> {
        let path = self.dir.join(checkpoint_name(snap.index, snap.term));
        weir_storage::write_atomic(&path, snap.data.to_vec()).await?;
        for name in weir_storage::list_dir(&self.dir).await? {
            if let Some((index, _)) = parse_checkpoint_name(&name) {
                if index < snap.index {
                    weir_storage::remove_if_exists(&self.dir.join(&name)).await?;
                }
            }
        }
        *self.snapshot.borrow_mut() = Some(snap.clone());
        Ok(())
    }

    /// After a checkpoint at `index`, the log keeps only what follows it.
    pub async fn compact_to(&self, index: u64) -> Result<(), MetadataLogError> {
        let offset = (index as Offset).min(self.log.high_watermark());
        if offset > self.log.log_start_offset() {
            self.log.advance_log_start(offset).await?;
        }
        Ok(())
    }

    /// Bytes in the log (the snapshot policy compares it with
    /// `metadata.log.max.record.bytes.between.snapshots`).
    pub fn size_bytes(&self) -> u64 {
        self.log.size_bytes()
    }

    async fn load_latest_checkpoint(&self) -> Result<Option<SnapshotData>, MetadataLogError> {
        let mut best: Option<(u64, u64, String)> = None;
        for name in weir_storage::list_dir(&self.dir).await? {
            if let Some((index, term)) = parse_checkpoint_name(&name) {
                if best.as_ref().is_none_or(|(i, _, _)| index > *i) {
                    best = Some((index, term, name));
                }
            }
        }
        let Some((index, term, name)) = best else {
            return Ok(None);
        };
        let path = self.dir.join(name);
        let Some(bytes) = weir_storage::read_small_file(&path).await? else {
            return Ok(None);
        };
        // Refuse a corrupt checkpoint now rather than when it is installed.
        metadata::snapshot::decode(&bytes).map_err(|error| MetadataLogError::Checkpoint {
            path: path.clone(),
            error,
        })?;
        Ok(Some(SnapshotData {
            index,
            term,
            data: Bytes::from(bytes),
        }))
    }

    /// A metadata log written by single-node Weir before the quorum: plain batches of metadata
    /// records. Its records become the image of a checkpoint at index N (N = its batch count)
    /// in term 1, the log restarts empty after it, and the hard state commits it — exactly the
    /// state a quorum of one would have after applying those N entries.
    async fn convert_single_node_log(&self) -> Result<(), MetadataLogError> {
        let (records, batches) = read_plain_records(&self.log).await?;
        let mut image = MetadataImage::default();
        for r in &records {
            image.apply(r);
        }
        let index = batches.max(1);
        let snap = SnapshotData {
            index,
            term: 1,
            data: Bytes::from(metadata::snapshot::encode(&image)),
        };
        tracing::info!(
            records = records.len(),
            batches,
            topics = image.topics().count(),
            "converting the single-node metadata log to the quorum's layout (a checkpoint at index {index})"
        );
        self.write_checkpoint(&snap).await?;
        self.log
            .truncate_fully_and_start_at(index as Offset)
            .await?;
        self.log.flush().await?;
        self.write_hard_state(QuorumHardState {
            term: 1,
            vote: None,
            commit: index,
        })
        .await
    }

    pub async fn close(&self) -> Result<(), StorageError> {
        self.log.close().await
    }
}

fn checkpoint_name(index: u64, term: u64) -> String {
    format!("{index:020}-{term:010}{CHECKPOINT_SUFFIX}")
}

fn parse_checkpoint_name(name: &str) -> Option<(u64, u64)> {
    let stem = name.strip_suffix(CHECKPOINT_SUFFIX)?;
    let (index, term) = stem.split_once('-')?;
    if index.len() != 20 || term.len() != 10 {
        return None;
    }
    Some((index.parse().ok()?, term.parse().ok()?))
}

/// The records of a pre-quorum metadata log, and how many batches held them.
async fn read_plain_records(
    log: &Rc<PartitionLog>,
) -> Result<(Vec<MetadataRecord>, u64), MetadataLogError> {
    let mut out = Vec::new();
    let mut batches = 0;
    let mut next = log.log_start_offset();
    log.set_high_watermark(log.log_end_offset());
    loop {
        let read = log.read(next, READ_BYTES, Offset::MAX, true).await?;
        let Some(region) = read.region else { break };
        let bytes = region.read_to_vec().await?;
        for (range, header) in
            weir_storage::batch::split_and_validate(&bytes).map_err(StorageError::from)?
        {
            batches += 1;
            next = header.last_offset() + 1;
            let batch = match weir_storage::records::BatchRecords::parse(&bytes[range]) {
                Ok(b) => b,
                Err(e) => {
                    tracing::error!(error = %e, offset = header.base_offset, "metadata batch skipped");
                    continue;
                }
            };
            for view in &batch.records {
                match batch.value(view).map(MetadataRecord::decode) {
                    Some(Ok(r)) => out.push(r),
                    Some(Err(e)) => {
                        tracing::error!(error = %e, offset = header.base_offset, "metadata record skipped")
                    }
                    None => {}
                }
            }
        }
    }
    Ok((out, batches))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoint_names_round_trip() {
        let n = checkpoint_name(42, 7);
        assert_eq!(n, "00000000000000000042-0000000007.checkpoint");
        assert_eq!(parse_checkpoint_name(&n), Some((42, 7)));
        assert_eq!(parse_checkpoint_name("42-7.checkpoint"), None);
        assert_eq!(parse_checkpoint_name("quorum-state"), None);
    }
}
