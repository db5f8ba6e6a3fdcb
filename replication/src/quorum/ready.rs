//! What the node hands the driver each round, in the driver's vocabulary (Kafka node ids,
//! indices, terms), and the rules for carrying it out. See [`QuorumReady`].

use crate::types::NodeId;
use bytes::Bytes;
use raft::eraftpb::{Entry, Message};

/// raft's persistent state (the `quorum-state` file) with Kafka node ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QuorumHardState {
    /// The current term (KRaft's epoch).
    pub term: u64,
    /// Whom this voter voted for in `term`.
    pub vote: Option<NodeId>,
    /// The highest index known committed. Losing a recent value is harmless (the leader tells
    /// again); that is why a round whose only change is the commit index need not fsync.
    pub commit: u64,
}

/// A snapshot of the applied state: everything up to and including entry `index` (whose term
/// was `term`), as the driver stores it in `<index>-<term>.checkpoint`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotData {
    pub index: u64,
    pub term: u64,
    pub data: Bytes,
}

/// A message for another voter. Encode it with [`super::wire::encode`].
#[derive(Debug, Clone, PartialEq)]
pub struct Outgoing {
    pub to: NodeId,
    pub message: Message,
}

/// A committed entry carrying data, to apply to the state machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedEntry {
    pub index: u64,
    pub term: u64,
    pub data: Bytes,
}

/// Where a proposal landed in the leader's log. It commits exactly when the entry at `index`
/// commits with `term`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Proposal {
    pub index: u64,
    pub term: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProposalResult {
    /// Committed; its entry is in this round's `committed` (or was, if its data was empty).
    Committed,
    /// This node stopped leading before the proposal committed. A later leader may still
    /// commit it (it is in some voters' logs) or drop it: the outcome is unknown here, as for
    /// Kafka's `NOT_CONTROLLER` answer. The committed entries say what happened.
    Indefinite,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProposalOutcome {
    pub proposal: Proposal,
    pub result: ProposalResult,
}

/// Who leads, as far as this node knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaderInfo {
    /// `None` while no leader is known (an election is running).
    pub leader: Option<NodeId>,
    pub term: u64,
}

/// This node's turn as the active controller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Leadership {
    /// This node leads `term` and has applied every entry committed before it (its term's first
    /// entry is applied in this round): its state machine is current, it may serve and propose.
    Active { term: u64 },
    /// It no longer leads (a newer term, or check-quorum: it lost contact with a majority).
    Resigned { term: u64 },
}

/// One round of work. The driver carries it out **in this order**, then calls
/// `QuorumNode::advance`, and only then gives the node further input:
///
/// 1. Send [`Self::messages`]. They may leave before anything of this round is durable (the
///    leader's appends: raft thesis 10.2.1), or later.
/// 2. Persist, in this order:
///    - [`Self::snapshot`]: write it (`<index>-<term>.checkpoint`);
///    - [`Self::log_reset_after`]: discard the whole log and restart it empty after that
///      index (Kafka: `truncate_fully_and_start_at(offset = index)`);
///    - [`Self::truncate_from`]: remove every entry from that index on (offsets
///      `>= index - 1`);
///    - append [`Self::entries`] (entry `i` at offset `i - 1`, see `entry_batch`);
///    - if [`Self::must_sync`], fsync the log;
///    - [`Self::hard_state`]: write the `quorum-state` file (atomically; fsync if `must_sync`).
///
///    The order makes a crash at any point recoverable: the hard state never names a commit
///    index beyond the durable log, and a checkpoint without its log reset is detected and
///    finished on recovery.
/// 3. Once step 2 is durable, send [`Self::persisted_messages`] (votes and append
///    acknowledgements: a voter must not promise what a crash could make it forget).
/// 4. If [`Self::snapshot`] is set, replace the state machine with its data; then apply
///    [`Self::committed`] in order. Act on [`Self::leadership`] after applying (an `Active`
///    leader's state machine is current only then) and on [`Self::proposals`].
/// 5. `QuorumNode::advance()`. Then call `QuorumNode::ready()` again until it returns `None`:
///    advancing can release more work (the leader's own fsync may commit entries).
#[derive(Debug, Default)]
pub struct QuorumReady {
    pub messages: Vec<Outgoing>,
    /// A snapshot received from the leader, to persist and install (step 2a, 4).
    pub snapshot: Option<SnapshotData>,
    /// Restart the log empty after this index (step 2b): set with `snapshot`, or in the first
    /// round after recovery found a checkpoint whose log reset had not happened.
    pub log_reset_after: Option<u64>,
    /// Remove entries from this index on before appending (step 2c).
    pub truncate_from: Option<u64>,
    /// Entries to append, contiguous and following the log (after 2b and 2c).
    pub entries: Vec<Entry>,
    pub hard_state: Option<QuorumHardState>,
    /// Whether step 2 must be durable (fsync) before step 3 and `advance`. False when only the
    /// commit index changed: a lazy write of the hard state is then allowed.
    pub must_sync: bool,
    pub persisted_messages: Vec<Outgoing>,
    /// Committed entries with data, in index order. Entries without data (a new leader's first
    /// entry) are not listed but count in `applied_index`.
    pub committed: Vec<CommittedEntry>,
    /// The highest index this round commits for the state machine, data or not.
    pub applied_index: Option<u64>,
    /// Set when the known leader or the term changed.
    pub leader: Option<LeaderInfo>,
    pub leadership: Option<Leadership>,
    pub proposals: Vec<ProposalOutcome>,
}

impl QuorumReady {
    /// Whether anything in step 2 needs writing.
    pub fn has_persistence(&self) -> bool {
        self.snapshot.is_some()
            || self.log_reset_after.is_some()
            || self.truncate_from.is_some()
            || !self.entries.is_empty()
            || self.hard_state.is_some()
    }
}
