//! The raft log as raft-rs reads it: an in-memory mirror of what the driver has persisted.
//!
//! Why not raft-rs's `MemStorage`: its `snapshot()` invents a snapshot at the commit index with
//! no data (raft-rs's own tests never ship state), behind an `Arc<RwLock>` this single-threaded
//! node does not need. A lagging follower must receive the real metadata image, so this storage
//! keeps the latest snapshot *with its data* (the one the driver handed to `compact` or the one
//! received from the leader) and the entries after it.
//!
//! The mirror is updated in `QuorumNode::advance`, i.e. only once the driver has persisted the
//! round, so raft-rs never reads from storage anything that a crash could take back.

use bytes::Bytes;
use raft::eraftpb::{ConfState, Entry, HardState, Snapshot, SnapshotMetadata};
use raft::{GetEntriesContext, RaftState, StorageError};

/// The log's state: snapshot, then contiguous entries after it.
pub(crate) struct QuorumStorage {
    hard_state: HardState,
    conf_state: ConfState,
    /// The latest snapshot; index 0 means none (the log starts at index 1).
    snapshot: Snapshot,
    /// `entries[i].index == snapshot index + 1 + i`.
    entries: Vec<Entry>,
}

impl QuorumStorage {
    /// A storage over state the caller checked (see `recovery.rs`).
    pub fn new(
        hard_state: HardState,
        conf_state: ConfState,
        snapshot: Snapshot,
        entries: Vec<Entry>,
    ) -> Self {
        let s = Self {
            hard_state,
            conf_state,
            snapshot,
            entries,
        };
        s.assert_contiguous();
        s
    }

    fn assert_contiguous(&self) {
        let first = self.first();
        for (i, e) in self.entries.iter().enumerate() {
            assert_eq!(e.index, first + i as u64, "raft log entries are contiguous");
        }
    }

    pub fn snapshot_index(&self) -> u64 {
        self.snapshot.get_metadata().index
    }

    pub fn snapshot_term(&self) -> u64 {
        self.snapshot.get_metadata().term
    }

    pub fn first(&self) -> u64 {
        self.snapshot_index() + 1
    }

    pub fn last(&self) -> u64 {
        self.snapshot_index() + self.entries.len() as u64
    }

    /// The term of the entry at `index`, if this storage still knows it.
    pub fn term_at(&self, index: u64) -> Option<u64> {
        if index == self.snapshot_index() {
            return Some(self.snapshot_term());
        }
        if index < self.first() || index > self.last() {
            return None;
        }
        Some(self.entries[(index - self.first()) as usize].term)
    }

    /// Appends persisted entries, first dropping the ones they replace (a follower whose
    /// uncommitted tail conflicted with its leader's).
    pub fn append(&mut self, entries: &[Entry]) {
        let Some(head) = entries.first() else {
            return;
        };
        assert!(
            head.index >= self.first() && head.index <= self.last() + 1,
            "raft appends at {} to a log of [{}, {}]",
            head.index,
            self.first(),
            self.last()
        );
        self.entries.truncate((head.index - self.first()) as usize);
        self.entries.extend_from_slice(entries);
        self.assert_contiguous();
    }

    /// Replaces the whole log with a snapshot received from the leader.
    pub fn install(&mut self, snapshot: Snapshot) {
        self.entries.clear();
        self.snapshot = snapshot;
    }

    pub fn set_hard_state(&mut self, hard_state: HardState) {
        self.hard_state = hard_state;
    }

    /// Makes `data` (the applied state at `index`) the latest snapshot and drops the entries it
    /// covers. The caller checked `first <= index <= applied <= last`.
    pub fn compact(&mut self, index: u64, data: Bytes) -> (u64, u64) {
        let term = self.term_at(index).expect("compaction index is in the log");
        self.entries.drain(..(index - self.first() + 1) as usize);
        self.snapshot = snapshot_of(index, term, self.conf_state.clone(), data);
        (index, term)
    }
}

/// A raft snapshot of the state at `index` (whose entry had `term`).
pub(crate) fn snapshot_of(index: u64, term: u64, conf_state: ConfState, data: Bytes) -> Snapshot {
    Snapshot {
        data,
        metadata: Some(SnapshotMetadata {
            conf_state: Some(conf_state).into(),
            index,
            term,
            ..SnapshotMetadata::default()
        })
        .into(),
        ..Snapshot::default()
    }
}

impl raft::Storage for QuorumStorage {
    fn initial_state(&self) -> raft::Result<RaftState> {
        Ok(RaftState::new(
            self.hard_state.clone(),
            self.conf_state.clone(),
        ))
    }

    fn entries(
        &self,
        low: u64,
        high: u64,
        max_size: impl Into<Option<u64>>,
        _context: GetEntriesContext,
    ) -> raft::Result<Vec<Entry>> {
        if low < self.first() {
            return Err(raft::Error::Store(StorageError::Compacted));
        }
        if high > self.last() + 1 || low > high {
            return Err(raft::Error::Store(StorageError::Unavailable));
        }
        let from = (low - self.first()) as usize;
        let to = (high - self.first()) as usize;
        let mut out = self.entries[from..to].to_vec();
        raft::util::limit_size(&mut out, max_size.into());
        Ok(out)
    }

    fn term(&self, index: u64) -> raft::Result<u64> {
        if index < self.snapshot_index() {
            return Err(raft::Error::Store(StorageError::Compacted));
        }
        self.term_at(index)
            .ok_or(raft::Error::Store(StorageError::Unavailable))
    }

    fn first_index(&self) -> raft::Result<u64> {
        Ok(self.first())
    }

    fn last_index(&self) -> raft::Result<u64> {
        Ok(self.last())
    }

    /// The latest snapshot with its data. "Temporarily unavailable" (raft-rs then retries at the
    /// next heartbeat) when there is none or it is older than requested.
    fn snapshot(&self, request_index: u64, _to: u64) -> raft::Result<Snapshot> {
        if self.snapshot_index() == 0 || self.snapshot_index() < request_index {
            return Err(raft::Error::Store(
                StorageError::SnapshotTemporarilyUnavailable,
            ));
        }
        Ok(self.snapshot.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use raft::Storage;

    fn entry(index: u64, term: u64) -> Entry {
        Entry {
            index,
            term,
            data: Bytes::from(vec![index as u8]),
            ..Entry::default()
        }
    }

    fn storage(entries: Vec<Entry>) -> QuorumStorage {
        QuorumStorage::new(
            HardState::default(),
            ConfState::from((vec![1u64, 2, 3], vec![])),
            Snapshot::default(),
            entries,
        )
    }

    #[test]
    fn append_replaces_a_conflicting_tail() {
        let mut s = storage((1..=5).map(|i| entry(i, 1)).collect());
        s.append(&[entry(4, 2), entry(5, 2), entry(6, 2)]);
        assert_eq!(s.last(), 6);
        assert_eq!(
            (s.term_at(3), s.term_at(4), s.term_at(6)),
            (Some(1), Some(2), Some(2))
        );
    }

    #[test]
    fn compaction_keeps_data_and_answers_compacted() {
        let mut s = storage((1..=5).map(|i| entry(i, 1)).collect());
        assert_eq!(
            s.snapshot(0, 2),
            Err(raft::Error::Store(
                StorageError::SnapshotTemporarilyUnavailable
            ))
        );
        assert_eq!(s.compact(3, Bytes::from_static(b"image")), (3, 1));
        assert_eq!((s.first(), s.last()), (4, 5));
        assert_eq!(s.term(3), Ok(1));
        assert_eq!(s.term(2), Err(raft::Error::Store(StorageError::Compacted)));
        assert_eq!(
            s.entries(2, 4, None, GetEntriesContext::empty(false)),
            Err(raft::Error::Store(StorageError::Compacted))
        );
        let snap = s.snapshot(0, 2).unwrap();
        assert_eq!(snap.data.as_ref(), b"image");
        assert_eq!(snap.get_metadata().get_conf_state().voters, vec![1, 2, 3]);
        assert_eq!(
            s.entries(4, 6, None, GetEntriesContext::empty(false))
                .unwrap()
                .len(),
            2
        );
    }

    #[test]
    fn install_replaces_everything() {
        let mut s = storage((1..=5).map(|i| entry(i, 1)).collect());
        let mut snap = Snapshot::default();
        snap.mut_metadata().index = 10;
        snap.mut_metadata().term = 3;
        s.install(snap);
        assert_eq!((s.first(), s.last(), s.term_at(10)), (11, 10, Some(3)));
        s.append(&[entry(11, 3)]);
        assert_eq!(s.last(), 11);
    }
}
