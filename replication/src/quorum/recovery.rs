//! Rebuilding a voter from what the driver found on disk: the `quorum-state` file, the latest
//! checkpoint, and the log. The checks here are what make the persistence order of
//! `QuorumReady` (checkpoint, log reset, truncation, entries, fsync, hard state) crash-safe:
//! every state a crash can leave is either accepted as is, finished (an interrupted snapshot
//! install), or refused as corruption.

use super::ids::{peer_of, NO_PEER};
use super::ready::{QuorumHardState, SnapshotData};
use super::storage::{snapshot_of, QuorumStorage};
use super::{QuorumConfig, INDEX_MAX, TERM_MAX};
use crate::types::NodeId;
use raft::eraftpb::{ConfState, Entry, EntryType, HardState, Snapshot};

/// What the driver read back. A fresh voter passes [`RecoveredState::fresh`].
#[derive(Debug, Clone, Default)]
pub struct RecoveredState {
    /// From the `quorum-state` file (default when there is none).
    pub hard_state: QuorumHardState,
    /// The voters the `quorum-state` file records; `None` when there is no file.
    pub recorded_voters: Option<Vec<NodeId>>,
    /// The latest checkpoint, if any.
    pub snapshot: Option<SnapshotData>,
    /// The log's entries in order, decoded with `entry_batch::decode`. Entries at or below the
    /// snapshot index may be included (they are skipped; the one at the snapshot index is used
    /// to check that the log agrees with the snapshot).
    pub entries: Vec<Entry>,
}

impl RecoveredState {
    /// A voter that never ran: no state, no log. Every voter of a new quorum starts from this
    /// with the same static voter set.
    pub fn fresh() -> Self {
        Self::default()
    }
}

/// Why the persisted state cannot be used. Each is corruption or a configuration change the
/// static quorum does not support; the broker refuses to start rather than risk the log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecoveryError {
    #[error(
        "configured voters {configured:?} differ from the voters {recorded:?} in the \
         quorum-state file (the static quorum cannot change its voters)"
    )]
    VotersChanged {
        configured: Vec<NodeId>,
        recorded: Vec<NodeId>,
    },
    #[error("log entries are not contiguous: expected index {expected}, found {found}")]
    NotContiguous { expected: u64, found: u64 },
    #[error("the log starts at index {first_index}, after the snapshot at {snapshot_index}")]
    GapAfterSnapshot {
        snapshot_index: u64,
        first_index: u64,
    },
    #[error("entry {index} has term {term}, lower than the entry before it ({previous})")]
    TermDecreases {
        index: u64,
        term: u64,
        previous: u64,
    },
    #[error("entry {index} has type {entry_type:?}; the static quorum writes only normal entries")]
    UnsupportedEntryType { index: u64, entry_type: EntryType },
    #[error("the hard state commits index {commit} but the log ends at {last_index}")]
    CommitBeyondLog { commit: u64, last_index: u64 },
    #[error("the hard state votes for {0}, which is not a voter")]
    VoteNotAVoter(NodeId),
    #[error("term {0} exceeds the largest epoch a record batch can hold")]
    TermTooLarge(u64),
    #[error("index {0} exceeds the largest log offset")]
    IndexTooLarge(u64),
}

/// What recovery changed, for the broker's log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryNotes {
    /// The hard state's term was below the log's or the snapshot's (the crash came between the
    /// log fsync and the hard-state write); raised, with no vote (none was sent in that term:
    /// votes leave only after the hard state is durable).
    pub term_raised_from: Option<u64>,
    /// The commit index was below the snapshot's (snapshots hold only committed state).
    pub commit_raised_from: Option<u64>,
    /// Entries after the snapshot dropped because they disagree with it (a snapshot install
    /// interrupted before its log reset).
    pub entries_dropped: usize,
    /// The log must restart after this index before the first append.
    pub log_reset_after: Option<u64>,
}

pub(crate) struct Recovered {
    pub storage: QuorumStorage,
    /// The index the state machine holds once the driver loaded the snapshot: raft-rs hands
    /// out the committed entries after it.
    pub applied: u64,
    pub notes: RecoveryNotes,
}

pub(crate) fn recover(
    config: &QuorumConfig,
    state: RecoveredState,
) -> Result<Recovered, RecoveryError> {
    if let Some(mut recorded) = state.recorded_voters {
        recorded.sort_unstable();
        if recorded != config.voters {
            return Err(RecoveryError::VotersChanged {
                configured: config.voters.clone(),
                recorded,
            });
        }
    }
    let (snap_index, snap_term) = state
        .snapshot
        .as_ref()
        .map_or((0, 0), |s| (s.index, s.term));
    check_bounds(snap_index, snap_term)?;
    check_log(&state.entries)?;

    let mut notes = RecoveryNotes::default();
    let at_snapshot = state.entries.iter().find(|e| e.index == snap_index);
    let mut kept: Vec<Entry> = state
        .entries
        .iter()
        .filter(|e| e.index > snap_index)
        .cloned()
        .collect();
    if let Some(first) = kept.first() {
        if first.index != snap_index + 1 {
            return Err(RecoveryError::GapAfterSnapshot {
                snapshot_index: snap_index,
                first_index: first.index,
            });
        }
    }
    let agrees = match at_snapshot {
        Some(e) => e.term == snap_term,
        // The log starts right after the snapshot (its start moved there), or nothing follows.
        None => kept.first().is_none_or(|e| e.term >= snap_term),
    };
    if snap_index > 0 && !agrees {
        notes.entries_dropped = kept.len();
        kept.clear();
    }
    if snap_index > 0 && kept.is_empty() && at_snapshot.is_none_or(|e| e.term != snap_term) {
        // The log does not end exactly at the snapshot: make it start there, so the next
        // append lands at offset `snap_index`.
        notes.log_reset_after = Some(snap_index);
    }

    let last_index = kept.last().map_or(snap_index, |e| e.index);
    let last_term = kept.last().map_or(snap_term, |e| e.term);
    let mut hs = state.hard_state;
    check_bounds(hs.commit, hs.term)?;
    if hs.term < last_term {
        notes.term_raised_from = Some(hs.term);
        hs.term = last_term;
        hs.vote = None;
    }
    if hs.commit < snap_index {
        notes.commit_raised_from = Some(hs.commit);
        hs.commit = snap_index;
    }
    if hs.commit > last_index {
        return Err(RecoveryError::CommitBeyondLog {
            commit: hs.commit,
            last_index,
        });
    }
    if let Some(v) = hs.vote {
        if !config.is_voter(v) {
            return Err(RecoveryError::VoteNotAVoter(v));
        }
    }

    let conf_state = ConfState::from((config.voters.iter().map(|v| peer_of(*v)), Vec::new()));
    let raft_hs = HardState {
        term: hs.term,
        vote: hs.vote.map_or(NO_PEER, peer_of),
        commit: hs.commit,
        ..HardState::default()
    };
    let snapshot = match state.snapshot.filter(|s| s.index > 0) {
        Some(s) => snapshot_of(s.index, s.term, conf_state.clone(), s.data),
        None => Snapshot::default(),
    };
    Ok(Recovered {
        storage: QuorumStorage::new(raft_hs, conf_state, snapshot, kept),
        applied: snap_index,
        notes,
    })
}

fn check_bounds(index: u64, term: u64) -> Result<(), RecoveryError> {
    if term > TERM_MAX {
        return Err(RecoveryError::TermTooLarge(term));
    }
    if index > INDEX_MAX {
        return Err(RecoveryError::IndexTooLarge(index));
    }
    Ok(())
}

/// The log on its own: contiguous, terms never decreasing, normal entries only.
fn check_log(entries: &[Entry]) -> Result<(), RecoveryError> {
    for (i, e) in entries.iter().enumerate() {
        check_bounds(e.index, e.term)?;
        if e.get_entry_type() != EntryType::EntryNormal {
            return Err(RecoveryError::UnsupportedEntryType {
                index: e.index,
                entry_type: e.get_entry_type(),
            });
        }
        if e.index == 0 {
            return Err(RecoveryError::NotContiguous {
                expected: 1,
                found: 0,
            });
        }
        if let Some(prev) = i.checked_sub(1).map(|p| &entries[p]) {
            if e.index != prev.index + 1 {
                return Err(RecoveryError::NotContiguous {
                    expected: prev.index + 1,
                    found: e.index,
                });
            }
            if e.term < prev.term {
                return Err(RecoveryError::TermDecreases {
                    index: e.index,
                    term: e.term,
                    previous: prev.term,
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quorum::QuorumTimeouts;
    use bytes::Bytes;

    fn config() -> QuorumConfig {
        QuorumConfig::new(1, &[1, 2, 3], QuorumTimeouts::default(), 0).unwrap()
    }

    fn entries(range: std::ops::RangeInclusive<u64>, term: u64) -> Vec<Entry> {
        range
            .map(|i| Entry {
                index: i,
                term,
                ..Entry::default()
            })
            .collect()
    }

    fn snapshot(index: u64, term: u64) -> Option<SnapshotData> {
        Some(SnapshotData {
            index,
            term,
            data: Bytes::from_static(b"image"),
        })
    }

    fn state(hs: (u64, Option<NodeId>, u64)) -> RecoveredState {
        RecoveredState {
            hard_state: QuorumHardState {
                term: hs.0,
                vote: hs.1,
                commit: hs.2,
            },
            recorded_voters: Some(vec![3, 2, 1]),
            ..RecoveredState::default()
        }
    }

    #[test]
    fn a_consistent_state_is_taken_as_is() {
        let mut s = state((3, Some(2), 4));
        s.snapshot = snapshot(2, 1);
        s.entries = entries(1..=6, 1);
        let r = recover(&config(), s).unwrap();
        assert_eq!(r.notes, RecoveryNotes::default());
        assert_eq!((r.storage.first(), r.storage.last(), r.applied), (3, 6, 2));
    }

    #[test]
    fn a_lost_hard_state_write_raises_term_and_forgets_the_vote() {
        let mut s = state((1, Some(2), 0));
        s.entries = entries(1..=3, 2);
        let r = recover(&config(), s).unwrap();
        assert_eq!(r.notes.term_raised_from, Some(1));
        let hs = raft::Storage::initial_state(&r.storage).unwrap().hard_state;
        assert_eq!((hs.term, hs.vote), (2, NO_PEER));
    }

    #[test]
    fn an_interrupted_snapshot_install_is_finished() {
        // Checkpoint at 10 (term 3) written; the old log (terms 1, up to 12) not yet reset.
        let mut s = state((2, None, 5));
        s.snapshot = snapshot(10, 3);
        s.entries = entries(1..=12, 1);
        let r = recover(&config(), s).unwrap();
        assert_eq!(r.notes.entries_dropped, 2);
        assert_eq!(r.notes.log_reset_after, Some(10));
        assert_eq!(r.notes.commit_raised_from, Some(5));
        assert_eq!(r.notes.term_raised_from, Some(2));
        assert_eq!((r.storage.first(), r.storage.last()), (11, 10));

        // The same checkpoint with a log that ends before it.
        let mut s = state((3, None, 10));
        s.snapshot = snapshot(10, 3);
        s.entries = entries(1..=4, 1);
        let r = recover(&config(), s).unwrap();
        assert_eq!(r.notes.log_reset_after, Some(10));
    }

    #[test]
    fn a_log_that_matches_the_snapshot_needs_no_reset() {
        let mut s = state((3, None, 10));
        s.snapshot = snapshot(10, 3);
        s.entries = entries(10..=10, 3);
        assert_eq!(
            recover(&config(), s).unwrap().notes,
            RecoveryNotes::default()
        );
        // A log whose start moved to the snapshot: entries begin right after it.
        let mut s = state((3, None, 10));
        s.snapshot = snapshot(10, 3);
        s.entries = entries(11..=12, 3);
        assert_eq!(recover(&config(), s).unwrap().storage.last(), 12);
    }

    #[test]
    fn corruption_is_refused() {
        let cfg = config();
        let mut s = state((2, None, 9));
        s.entries = entries(1..=5, 1);
        assert_eq!(
            recover(&cfg, s).err(),
            Some(RecoveryError::CommitBeyondLog {
                commit: 9,
                last_index: 5
            })
        );
        let mut s = state((2, None, 0));
        s.entries = entries(1..=2, 1);
        s.entries.extend(entries(4..=4, 1));
        assert!(matches!(
            recover(&cfg, s),
            Err(RecoveryError::NotContiguous { .. })
        ));
        let mut s = state((2, None, 0));
        s.entries = entries(1..=2, 2);
        s.entries.extend(entries(3..=3, 1));
        assert!(matches!(
            recover(&cfg, s),
            Err(RecoveryError::TermDecreases { .. })
        ));
        let mut s = state((2, None, 0));
        s.snapshot = snapshot(3, 1);
        s.entries = entries(6..=7, 1);
        assert!(matches!(
            recover(&cfg, s),
            Err(RecoveryError::GapAfterSnapshot { .. })
        ));
        let mut s = state((2, Some(7), 0));
        s.recorded_voters = None;
        assert_eq!(
            recover(&cfg, s).err(),
            Some(RecoveryError::VoteNotAVoter(7))
        );
        let mut s = state((2, None, 0));
        s.recorded_voters = Some(vec![1, 2]);
        assert!(matches!(
            recover(&cfg, s),
            Err(RecoveryError::VotersChanged { .. })
        ));
        let mut s = state((TERM_MAX + 1, None, 0));
        s.recorded_voters = None;
        assert!(matches!(
            recover(&cfg, s),
            Err(RecoveryError::TermTooLarge(_))
        ));
        let mut s = state((1, None, 0));
        s.entries = entries(1..=1, 1);
        s.entries[0].set_entry_type(EntryType::EntryConfChange);
        assert!(matches!(
            recover(&cfg, s),
            Err(RecoveryError::UnsupportedEntryType { .. })
        ));
    }
}
