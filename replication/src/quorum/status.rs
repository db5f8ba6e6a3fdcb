//! What DescribeQuorum shows (`kafka-metadata-quorum.sh describe --status` / `--replication`):
//! leader, epoch (the raft term), high watermark (the commit index: entry `i` is offset `i - 1`,
//! so the committed prefix ends at offset `commit`), and per voter its log end (the leader's
//! match index for it), last contact and last caught-up time.
//!
//! Times are in ticks ago; the driver turns them into Kafka's millisecond timestamps
//! (`now_ms - ticks_ago * tick_ms`). raft-rs does not track contact times, so the node records
//! them as messages arrive.

use super::ids::peer_of;
use super::node::QuorumNode;
use crate::types::NodeId;
use raft::StateRole;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Follower,
    /// Asking for pre-votes: would it win an election? (No term change yet.)
    PreCandidate,
    Candidate,
    Leader,
}

impl From<StateRole> for Role {
    fn from(r: StateRole) -> Self {
        match r {
            StateRole::Follower => Role::Follower,
            StateRole::PreCandidate => Role::PreCandidate,
            StateRole::Candidate => Role::Candidate,
            StateRole::Leader => Role::Leader,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VoterStatus {
    pub node_id: NodeId,
    /// On the leader: the last index known to be on this voter's disk (Kafka's
    /// `LogEndOffset`). `None` on other nodes, which do not track it.
    pub match_index: Option<u64>,
    /// Ticks since a message from this voter arrived (0 for this node); `None` if none has.
    pub last_contact_ticks_ago: Option<u64>,
    /// On the leader: ticks since this voter was last known to hold the leader's whole log
    /// (Kafka's `LastCaughtUpTimestamp`).
    pub last_caught_up_ticks_ago: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumStatus {
    pub node_id: NodeId,
    pub role: Role,
    pub leader: Option<NodeId>,
    /// KRaft's epoch.
    pub term: u64,
    /// Whether this node is the active controller (see `Leadership::Active`).
    pub active: bool,
    /// The high watermark.
    pub commit_index: u64,
    pub applied_index: u64,
    /// The first index still in the log (the one after the latest snapshot).
    pub first_index: u64,
    pub last_index: u64,
    pub voters: Vec<VoterStatus>,
}

impl QuorumStatus {
    /// Kafka's `MaxFollowerLag`: the most entries a voter is behind the leader.
    pub fn max_follower_lag(&self) -> Option<u64> {
        self.voters
            .iter()
            .filter_map(|v| v.match_index)
            .map(|m| self.last_index.saturating_sub(m))
            .max()
    }
}

/// Per voter (in `config.voters` order): the tick of its last message and of the last time it
/// was caught up.
#[derive(Debug, Clone)]
pub(crate) struct Contacts {
    last_contact: Vec<Option<u64>>,
    caught_up: Vec<Option<u64>>,
}

impl Contacts {
    pub fn new(voters: usize) -> Self {
        Self {
            last_contact: vec![None; voters],
            caught_up: vec![None; voters],
        }
    }

    pub fn heard(&mut self, slot: usize, tick: u64) {
        self.last_contact[slot] = Some(tick);
    }

    pub fn caught_up(&mut self, slot: usize, tick: u64) {
        self.caught_up[slot] = Some(tick);
    }
}

impl QuorumNode {
    /// The quorum as this node sees it. Match indices and caught-up times only on the leader,
    /// which is the node DescribeQuorum asks.
    pub fn status(&self) -> QuorumStatus {
        let raft = &self.raw.raft;
        let leading = raft.state == StateRole::Leader;
        let now = self.ticks;
        let voters = self
            .config
            .voters
            .iter()
            .enumerate()
            .map(|(slot, &node_id)| {
                let me = node_id == self.config.node_id;
                let progress = leading.then(|| raft.prs().get(peer_of(node_id))).flatten();
                let ago = |t: Option<u64>| t.map(|t| now - t);
                VoterStatus {
                    node_id,
                    match_index: progress.map(|p| p.matched),
                    last_contact_ticks_ago: if me {
                        Some(0)
                    } else {
                        ago(self.contacts.last_contact[slot])
                    },
                    last_caught_up_ticks_ago: match (leading, me) {
                        (false, _) => None,
                        (true, true) => Some(0),
                        (true, false) => ago(self.contacts.caught_up[slot]),
                    },
                }
            })
            .collect();
        QuorumStatus {
            node_id: self.config.node_id,
            role: raft.state.into(),
            leader: self.leader(),
            term: raft.term,
            active: self.is_active(),
            commit_index: raft.raft_log.committed,
            applied_index: raft.raft_log.applied,
            first_index: raft.raft_log.first_index(),
            last_index: raft.raft_log.last_index(),
            voters,
        }
    }
}
