//! `QuorumNode`: one voter, raft-rs's `RawNode` behind inputs in Kafka's vocabulary.
//!
//! Inputs: [`QuorumNode::tick`], [`QuorumNode::step`], [`QuorumNode::propose`],
//! [`QuorumNode::compact`], and the delivery reports. Output: rounds of work
//! ([`QuorumNode::ready`] / [`QuorumNode::advance`], in `round.rs`). Nothing here reads a clock,
//! does I/O or blocks.
//!
//! Two things raft-rs does not do and the node adds:
//! - deterministic election timeouts: raft-rs draws them from the thread's OS-seeded RNG; the
//!   node draws from its own seeded generator and imposes the value before every tick, so a
//!   simulated run replays exactly from its seed;
//! - the active-controller notion: a leader is *active* only once it has applied its term's
//!   first entry, i.e. everything earlier leaders committed (KRaft's controller likewise waits
//!   to replay the log before it serves).

use super::config::QuorumConfig;
use super::ids::{node_of, peer_of};
use super::logging::raft_logger;
use super::ready::{
    LeaderInfo, Leadership, Proposal, ProposalOutcome, ProposalResult, SnapshotData,
};
use super::recovery::{recover, RecoveredState, RecoveryError, RecoveryNotes};
use super::rng::SplitMix64;
use super::status::Contacts;
use super::storage::QuorumStorage;
use super::validate::{self, StepError};
use crate::types::NodeId;
use bytes::Bytes;
use raft::eraftpb::{Entry, HardState, Message, MessageType, Snapshot};
use raft::{ProgressState, RawNode, SnapshotStatus, StateRole};
use std::collections::VecDeque;

/// Why a node could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuorumError {
    #[error("the persisted quorum state is unusable: {0}")]
    Recovery(#[from] RecoveryError),
    #[error("raft-rs refused the configuration: {0}")]
    Raft(String),
}

/// Why a proposal was not appended. For a client: `NotLeader` and `NotYetActive` are Kafka's
/// `NOT_CONTROLLER` (with the leader, when known); `Busy` means retry later; `TooLarge` and
/// `Empty` are the caller's bug; `RoundOutstanding` means the driver must queue the proposal
/// until it has advanced the round.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProposeError {
    #[error("not the leader; the leader is {leader:?} (term {term})")]
    NotLeader { leader: Option<NodeId>, term: u64 },
    #[error("leader of term {term}, but not yet caught up with the committed log")]
    NotYetActive { term: u64 },
    #[error("entry of {size} bytes exceeds the {max}-byte limit")]
    TooLarge { size: usize, max: usize },
    #[error("an empty entry cannot be told apart from a new leader's first entry")]
    Empty,
    #[error("too many proposals are waiting to commit")]
    Busy,
    #[error("a round is outstanding: carry it out and advance before further input")]
    RoundOutstanding,
}

/// Why a compaction was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CompactError {
    #[error("index {index} is not applied yet (applied: {applied})")]
    NotApplied { index: u64, applied: u64 },
    #[error("index {index} is already covered by the snapshot at {snapshot_index}")]
    AlreadyCompacted { index: u64, snapshot_index: u64 },
}

/// This node's current turn as leader.
#[derive(Debug, Clone, Copy)]
pub(super) struct Turn {
    pub term: u64,
    /// The index of the entry raft-rs appended on election; applying it makes the leader
    /// active.
    pub first_index: u64,
    pub active: bool,
}

/// The round handed out by `ready` and not yet advanced.
pub(super) struct Round {
    pub ready: raft::Ready,
    pub snapshot: Option<Snapshot>,
    pub entries: Vec<Entry>,
    pub hard_state: Option<HardState>,
}

/// What raft-rs released when the last round was advanced, handed out with the next round.
#[derive(Default)]
pub(super) struct Carry {
    pub messages: Vec<Message>,
    pub committed: Vec<Entry>,
    pub commit_changed: bool,
}

impl Carry {
    pub fn is_empty(&self) -> bool {
        self.messages.is_empty() && self.committed.is_empty() && !self.commit_changed
    }
}

/// One voter of the controller quorum.
pub struct QuorumNode {
    pub(super) raw: RawNode<QuorumStorage>,
    pub(super) config: QuorumConfig,
    rng: SplitMix64,
    /// The election timeout imposed on raft-rs before each tick (see the module comment).
    election_timeout: usize,
    /// (term, role, leader) after the last input. raft-rs restarts its election timer exactly
    /// when one of them changes, and so does the node: it draws a new timeout then.
    last_seen: (u64, StateRole, u64),
    /// Ticks since construction: the clock of contact times and snapshot resends.
    pub(super) ticks: u64,
    pub(super) round: Option<Round>,
    pub(super) carry: Carry,
    pub(super) turn: Option<Turn>,
    pub(super) leadership_event: Option<Leadership>,
    /// The leader and term last reported in a round.
    pub(super) reported_leader: Option<LeaderInfo>,
    /// Proposals appended and not yet committed, by index (only while leading).
    pub(super) pending: VecDeque<Proposal>,
    pub(super) outcomes: Vec<ProposalOutcome>,
    /// The highest index handed to the driver to apply (committed entries or a snapshot).
    pub(super) handed_out: u64,
    /// A log reset recovery found necessary, handed out with the first round.
    pub(super) log_reset_after: Option<u64>,
    pub(super) contacts: Contacts,
    /// Per voter: the tick a snapshot was sent to it, until it confirms or times out.
    pub(super) snapshot_sent: Vec<Option<u64>>,
    recovery_notes: RecoveryNotes,
}

impl QuorumNode {
    /// A voter that never ran. Every voter of a new quorum starts this way with the same voters.
    pub fn bootstrap(config: QuorumConfig) -> Result<Self, QuorumError> {
        Self::recover(config, RecoveredState::fresh())
    }

    /// A voter restarting from what it persisted. The driver has loaded the snapshot's data
    /// into its state machine; the committed entries after the snapshot come out of the first
    /// rounds again, to apply on top of it.
    pub fn recover(config: QuorumConfig, state: RecoveredState) -> Result<Self, QuorumError> {
        let recovered = recover(&config, state)?;
        let notes = recovered.notes;
        if notes != RecoveryNotes::default() {
            tracing::warn!(
                node_id = config.node_id,
                ?notes,
                "quorum state repaired on recovery"
            );
        }
        let mut rc = raft::Config::new(peer_of(config.node_id));
        rc.election_tick = config.election_timeout_ticks;
        rc.min_election_tick = config.election_timeout_ticks;
        rc.max_election_tick = config.election_timeout_max_ticks;
        rc.heartbeat_tick = config.heartbeat_ticks;
        rc.applied = recovered.applied;
        rc.max_size_per_msg = config.append_bytes_max;
        rc.max_inflight_msgs = config.inflight_appends_max;
        rc.max_uncommitted_size = config.uncommitted_bytes_max;
        // A partitioned voter must not force elections on rejoining (pre-vote), and a leader
        // cut off from its majority must step down instead of leading alone (check-quorum).
        rc.pre_vote = true;
        rc.check_quorum = true;
        let logger = raft_logger(config.node_id);
        let raw = RawNode::new(&rc, recovered.storage, &logger)
            .map_err(|e| QuorumError::Raft(e.to_string()))?;
        let voters = config.voters.len();
        // Mix the node id in: voters given the same seed still draw different timeouts.
        let mut rng = SplitMix64::new(config.rng_seed ^ (peer_of(config.node_id) << 32));
        let election_timeout = rng.range(
            config.election_timeout_ticks as u64,
            config.election_timeout_max_ticks as u64,
        ) as usize;
        let mut node = Self {
            last_seen: (raw.raft.term, raw.raft.state, raw.raft.leader_id),
            raw,
            rng,
            election_timeout,
            ticks: 0,
            round: None,
            carry: Carry::default(),
            turn: None,
            leadership_event: None,
            reported_leader: None,
            pending: VecDeque::new(),
            outcomes: Vec::new(),
            handed_out: recovered.applied,
            log_reset_after: notes.log_reset_after,
            contacts: Contacts::new(voters),
            snapshot_sent: vec![None; voters],
            recovery_notes: notes,
            config,
        };
        node.raw
            .raft
            .set_randomized_election_timeout(election_timeout);
        if node.config.is_single_voter() {
            // A quorum of one needs nobody's vote: lead at once instead of after a timeout.
            node.raw
                .campaign()
                .map_err(|e| QuorumError::Raft(e.to_string()))?;
            node.after_input();
        }
        Ok(node)
    }

    pub fn config(&self) -> &QuorumConfig {
        &self.config
    }

    /// What recovery repaired (empty for a consistent state).
    pub fn recovery_notes(&self) -> &RecoveryNotes {
        &self.recovery_notes
    }

    /// The leader this node knows of, if any.
    pub fn leader(&self) -> Option<NodeId> {
        node_of(self.raw.raft.leader_id)
    }

    pub fn term(&self) -> u64 {
        self.raw.raft.term
    }

    /// Whether this node is the active controller: leader, and caught up with everything
    /// committed before its term.
    pub fn is_active(&self) -> bool {
        self.turn.is_some_and(|t| t.active)
    }

    /// One tick of the driver's clock.
    pub fn tick(&mut self) -> Result<(), StepError> {
        if self.round.is_some() {
            return Err(StepError::RoundOutstanding);
        }
        self.ticks += 1;
        let was_leader = self.raw.raft.state == StateRole::Leader;
        if !was_leader {
            self.raw
                .raft
                .set_randomized_election_timeout(self.election_timeout);
        }
        // For a non-leader, `tick` returns true exactly when its election timer fired.
        if self.raw.tick() && !was_leader {
            self.draw_election_timeout();
        }
        self.resend_lost_snapshots();
        self.after_input();
        Ok(())
    }

    /// A message from another voter, decoded with `wire::decode`. Messages from anyone but a
    /// configured voter, and messages raft-rs could not digest, are refused (see `validate.rs`).
    pub fn step(&mut self, msg: Message) -> Result<(), StepError> {
        if self.round.is_some() {
            return Err(StepError::RoundOutstanding);
        }
        let from = validate::check(&msg, &self.config, &self.raw.raft.raft_log)?;
        let slot = self.slot(from);
        self.contacts.heard(slot, self.ticks);
        self.raw
            .step(msg)
            .map_err(|e| StepError::Raft(e.to_string()))?;
        if self.raw.raft.state == StateRole::Leader {
            let last = self.raw.raft.raft_log.last_index();
            if let Some(p) = self.raw.raft.prs().get(peer_of(from)) {
                if p.matched >= last {
                    self.contacts.caught_up(slot, self.ticks);
                }
                if p.state != ProgressState::Snapshot {
                    self.snapshot_sent[slot] = None;
                }
            }
        }
        self.after_input();
        Ok(())
    }

    /// Appends `data` (one batch of metadata records) as an entry, on the active leader only.
    /// The returned proposal resolves in a later round's `proposals`.
    pub fn propose(&mut self, data: Bytes) -> Result<Proposal, ProposeError> {
        if self.round.is_some() {
            return Err(ProposeError::RoundOutstanding);
        }
        let term = self.raw.raft.term;
        match self.turn {
            None => {
                return Err(ProposeError::NotLeader {
                    leader: self.leader(),
                    term,
                })
            }
            Some(t) if !t.active => return Err(ProposeError::NotYetActive { term }),
            Some(_) => {}
        }
        if data.is_empty() {
            return Err(ProposeError::Empty);
        }
        if data.len() > self.config.entry_bytes_max {
            return Err(ProposeError::TooLarge {
                size: data.len(),
                max: self.config.entry_bytes_max,
            });
        }
        let before = self.raw.raft.raft_log.last_index();
        // RawNode::propose copies the data into a Vec first; this steps the same message
        // with the caller's buffer.
        let m = Message {
            msg_type: MessageType::MsgPropose,
            from: self.raw.raft.id,
            entries: vec![Entry {
                data,
                ..Entry::default()
            }]
            .into(),
            ..Message::default()
        };
        match self.raw.raft.step(m) {
            Ok(()) => {}
            Err(raft::Error::ProposalDropped) => return Err(ProposeError::Busy),
            Err(e) => {
                tracing::error!(node_id = self.config.node_id, error = %e, "raft-rs refused a proposal");
                return Err(ProposeError::Busy);
            }
        }
        let index = self.raw.raft.raft_log.last_index();
        assert_eq!(index, before + 1, "a proposal appends exactly one entry");
        let proposal = Proposal { index, term };
        self.pending.push_back(proposal);
        self.after_input();
        Ok(proposal)
    }

    /// Makes `data` — the state machine's content with every entry up to `index` applied —
    /// the latest snapshot, and drops the entries it covers from memory. Returns the snapshot
    /// for the driver to persist as `<index>-<term>.checkpoint`; once it is durable the driver
    /// may move the log's start to offset `index`. Lagging voters are sent this snapshot.
    pub fn compact(&mut self, index: u64, data: Bytes) -> Result<SnapshotData, CompactError> {
        let applied = self.raw.raft.raft_log.applied;
        if index > applied {
            return Err(CompactError::NotApplied { index, applied });
        }
        let store = self.raw.mut_store();
        if index <= store.snapshot_index() {
            return Err(CompactError::AlreadyCompacted {
                index,
                snapshot_index: store.snapshot_index(),
            });
        }
        let (index, term) = store.compact(index, data.clone());
        Ok(SnapshotData { index, term, data })
    }

    /// The driver could not deliver a message to `node` (no connection): raft-rs stops
    /// streaming appends to it and probes instead.
    pub fn report_unreachable(&mut self, node: NodeId) {
        if self.config.is_voter(node) && node != self.config.node_id {
            self.raw.report_unreachable(peer_of(node));
        }
    }

    /// The driver knows whether a snapshot reached `node` (e.g. the connection failed while
    /// sending it). Optional: an unconfirmed snapshot is sent again after
    /// `request_timeout_ticks` anyway.
    pub fn report_snapshot(&mut self, node: NodeId, delivered: bool) {
        if !self.config.is_voter(node) || node == self.config.node_id {
            return;
        }
        let status = if delivered {
            SnapshotStatus::Finish
        } else {
            SnapshotStatus::Failure
        };
        self.raw.report_snapshot(peer_of(node), status);
        let slot = self.slot(node);
        self.snapshot_sent[slot] = None;
    }

    pub(super) fn slot(&self, node: NodeId) -> usize {
        self.config
            .voters
            .binary_search(&node)
            .expect("a configured voter")
    }

    fn draw_election_timeout(&mut self) {
        self.election_timeout = self.rng.range(
            self.config.election_timeout_ticks as u64,
            self.config.election_timeout_max_ticks as u64,
        ) as usize;
        self.raw
            .raft
            .set_randomized_election_timeout(self.election_timeout);
    }

    /// A follower that never confirmed a snapshot (the WeirRaft API has no responses, so a
    /// lost one is only noticed by silence) is sent it again after the request timeout.
    fn resend_lost_snapshots(&mut self) {
        if self.raw.raft.state != StateRole::Leader {
            self.snapshot_sent.iter_mut().for_each(|s| *s = None);
            return;
        }
        for slot in 0..self.config.voters.len() {
            let Some(sent) = self.snapshot_sent[slot] else {
                continue;
            };
            if self.ticks - sent >= self.config.request_timeout_ticks {
                let node = self.config.voters[slot];
                tracing::info!(
                    node_id = self.config.node_id,
                    to = node,
                    "snapshot unconfirmed, sending it again"
                );
                self.report_snapshot(node, false);
            }
        }
    }

    /// Bookkeeping after every input: election timer, leadership turns, pending proposals.
    pub(super) fn after_input(&mut self) {
        let raft = &self.raw.raft;
        let seen = (raft.term, raft.state, raft.leader_id);
        if seen != self.last_seen {
            self.last_seen = seen;
            self.draw_election_timeout();
        }
        let (term, state) = (self.raw.raft.term, self.raw.raft.state);
        match (state, self.turn) {
            (StateRole::Leader, Some(t)) if t.term == term => {}
            (StateRole::Leader, _) => {
                self.end_turn();
                // raft-rs appended its term's first entry on becoming leader.
                self.turn = Some(Turn {
                    term,
                    first_index: self.raw.raft.raft_log.last_index(),
                    active: false,
                });
            }
            (_, Some(_)) => self.end_turn(),
            (_, None) => {}
        }
    }

    /// This node stopped leading: pending proposals have an unknown fate.
    fn end_turn(&mut self) {
        let Some(turn) = self.turn.take() else {
            return;
        };
        if turn.active {
            debug_assert!(
                self.leadership_event.is_none(),
                "one leadership change per round"
            );
            self.leadership_event = Some(Leadership::Resigned { term: turn.term });
        }
        for proposal in self.pending.drain(..) {
            self.outcomes.push(ProposalOutcome {
                proposal,
                result: ProposalResult::Indefinite,
            });
        }
    }
}
