//! A simulated cluster of voters, each driven exactly as the broker's driver will drive it
//! (the loop in `quorum/mod.rs`), over a simulated network and simulated disks, one tick per
//! step, deterministic from its seed. It checks raft's safety properties as it goes.

use super::disk::{SimDisk, StateMachine, Write};
use super::history::History;
use super::net::{Faults, SimNet};
use crate::quorum::rng::SplitMix64;
use crate::quorum::{
    wire, Leadership, MessageType, Proposal, ProposalResult, ProposeError, QuorumConfig,
    QuorumNode, QuorumReady, QuorumTimeouts, StepError,
};
use crate::types::NodeId;
use bytes::Bytes;
use std::collections::{BTreeMap, VecDeque};

/// The driver's tick period in the simulation (Weir's default).
pub const TICK_MS: i64 = 50;

enum Input {
    Frame(Bytes),
    Tick,
    Propose(Bytes),
}

pub struct SimNode {
    pub id: NodeId,
    pub node: Option<QuorumNode>,
    pub disk: SimDisk,
    pub sm: StateMachine,
    inbox: VecDeque<Input>,
    /// The round being persisted and the step its fsync completes.
    in_flight: Option<(QuorumReady, u64)>,
    /// Proposals this node's driver made and awaits, with their data.
    proposals: BTreeMap<Proposal, Bytes>,
    starts: u64,
    /// Frozen (SIGSTOP) until this step: no ticks, no input handled, frames wait in the inbox.
    pub paused_until: u64,
}

impl SimNode {
    pub fn quorum(&self) -> &QuorumNode {
        self.node.as_ref().expect("node is up")
    }

    pub fn is_up(&self) -> bool {
        self.node.is_some()
    }

    fn is_paused(&self, now: u64) -> bool {
        self.paused_until > now
    }
}

/// What became of a proposal a driver made with [`Cluster::propose_data`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Committed,
    /// The node stopped leading before it committed: it may still commit, or not.
    Indefinite,
    /// `propose` refused it (not the leader, not yet active, busy).
    Refused(ProposeError),
}

pub struct Cluster {
    pub now: u64,
    pub seed: u64,
    pub rng: SplitMix64,
    pub net: SimNet,
    pub nodes: Vec<SimNode>,
    pub voters: Vec<NodeId>,
    pub history: History,
    /// Rounds take up to this many steps to fsync (0: at once).
    pub fsync_delay_max: u64,
    proposals_made: u64,
    /// Messages refused by `step` (never expected between honest voters, except the stale
    /// ones `validate.rs` names), by reason.
    pub refused: BTreeMap<String, u64>,
    /// Snapshots received from a leader and installed, over all nodes.
    pub snapshots_installed: u64,
    /// Snapshot messages still to lose in transit (a test sets it).
    pub drop_snapshots: u64,
    /// Outcomes of proposals made with `propose_data`, in the order they were known, for the
    /// driver above (the replication simulator's controllers) to collect.
    pub outcomes: Vec<(NodeId, Bytes, Outcome)>,
}

impl Cluster {
    pub fn new(voters: &[NodeId], seed: u64, faults: Faults) -> Self {
        let mut c = Self {
            now: 0,
            seed,
            rng: SplitMix64::new(seed),
            net: SimNet::new(faults),
            nodes: Vec::new(),
            voters: voters.to_vec(),
            history: History::default(),
            fsync_delay_max: 0,
            proposals_made: 0,
            refused: BTreeMap::new(),
            snapshots_installed: 0,
            drop_snapshots: 0,
            outcomes: Vec::new(),
        };
        for &id in voters {
            c.nodes.push(SimNode {
                id,
                node: None,
                disk: SimDisk::default(),
                sm: StateMachine::default(),
                inbox: VecDeque::new(),
                in_flight: None,
                proposals: BTreeMap::new(),
                starts: 0,
                paused_until: 0,
            });
        }
        for i in 0..voters.len() {
            c.start(i);
        }
        c
    }

    pub fn index_of(&self, id: NodeId) -> usize {
        self.voters.iter().position(|v| *v == id).expect("a voter")
    }

    fn config(&self, i: usize) -> QuorumConfig {
        let node = &self.nodes[i];
        let seed = self.seed.wrapping_mul(0x100_0000_01B3) ^ node.starts;
        QuorumConfig::new(node.id, &self.voters, QuorumTimeouts::default(), seed)
            .expect("valid config")
    }

    /// Starts (or restarts) node `i` from its disk, as the broker does at boot.
    pub fn start(&mut self, i: usize) {
        let config = self.config(i);
        let node = &mut self.nodes[i];
        assert!(node.node.is_none());
        let state = node.disk.recovered_state();
        node.sm = match &state.snapshot {
            Some(s) => StateMachine::decode(&s.data),
            None => StateMachine::default(),
        };
        let q = QuorumNode::recover(config, state)
            .unwrap_or_else(|e| panic!("seed {}: node {} cannot recover: {e}", self.seed, node.id));
        self.history
            .check_recovered(node.id, &q, &node.disk, self.seed);
        self.history.check_snapshot(node.id, &node.sm, self.seed);
        node.node = Some(q);
        node.starts += 1;
    }

    /// A power loss on node `i`: memory gone, unsynced writes partly lost.
    pub fn crash(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        node.node = None;
        node.paused_until = 0;
        node.inbox.clear();
        node.in_flight = None;
        node.proposals.clear();
        node.disk.crash(&mut self.rng);
    }

    /// The node that is the active controller, if exactly one up node says it is.
    pub fn active(&self) -> Option<usize> {
        let active: Vec<usize> = (0..self.nodes.len())
            .filter(|&i| self.nodes[i].node.as_ref().is_some_and(|q| q.is_active()))
            .collect();
        (active.len() == 1).then(|| active[0])
    }

    /// Asks node `i`'s driver to propose a fresh, unique payload.
    pub fn propose(&mut self, i: usize) {
        self.proposals_made += 1;
        let data = Bytes::from(format!("n{}-p{}", self.nodes[i].id, self.proposals_made));
        self.nodes[i].inbox.push_back(Input::Propose(data));
    }

    /// Asks node `i`'s driver to propose `data` (unique: the history checks that no entry is
    /// applied twice); its fate is reported in [`Self::outcomes`].
    pub fn propose_data(&mut self, i: usize, data: Bytes) {
        self.nodes[i].inbox.push_back(Input::Propose(data));
    }

    /// Node `i` snapshots its applied state and compacts, as the driver does periodically.
    pub fn compact(&mut self, i: usize) -> bool {
        let node = &mut self.nodes[i];
        let Some(q) = node.node.as_mut() else {
            return false;
        };
        if node.in_flight.is_some() || node.sm.applied_index == 0 {
            return false;
        }
        let Ok(snap) = q.compact(node.sm.applied_index, node.sm.encode()) else {
            return false;
        };
        node.disk.write(Write::Checkpoint(snap.clone()));
        node.disk.write(Write::AdvanceLogStart(snap.index as i64));
        node.disk.fsync();
        true
    }

    /// One tick of simulated time.
    pub fn step(&mut self) {
        self.now += 1;
        let mut rng = self.rng.clone();
        for f in self.net.due(self.now, &mut rng) {
            let i = self.index_of(f.to);
            if self.nodes[i].is_up() {
                self.nodes[i].inbox.push_back(Input::Frame(f.payload));
            }
        }
        self.rng = rng;
        let now = self.now;
        for node in self
            .nodes
            .iter_mut()
            .filter(|n| n.is_up() && !n.is_paused(now))
        {
            node.inbox.push_back(Input::Tick);
        }
        let mut order: Vec<usize> = (0..self.nodes.len()).collect();
        for k in (1..order.len()).rev() {
            let j = self.rng.range(0, k as u64 + 1) as usize;
            order.swap(k, j);
        }
        for i in order {
            self.drive(i);
        }
        self.history.check_leaders(&self.nodes, self.seed);
    }

    pub fn run(&mut self, steps: u64) {
        for _ in 0..steps {
            self.step();
        }
    }

    /// Runs until `done` holds, at most `max` steps; returns the steps taken.
    pub fn run_until(&mut self, max: u64, mut done: impl FnMut(&Cluster) -> bool) -> Option<u64> {
        for taken in 0..=max {
            if done(self) {
                return Some(taken);
            }
            self.step();
        }
        None
    }

    /// Node `i`'s driver: finish the round in flight; then step every queued input (raft-rs
    /// batches them into one round) and start the next round, until it must wait.
    fn drive(&mut self, i: usize) {
        loop {
            if !self.nodes[i].is_up() || self.nodes[i].is_paused(self.now) {
                return;
            }
            if let Some((_, done_at)) = &self.nodes[i].in_flight {
                if *done_at > self.now {
                    return;
                }
                self.complete_round(i);
                continue;
            }
            let node = &mut self.nodes[i];
            let q = node.node.as_mut().expect("up");
            while let Some(input) = node.inbox.pop_front() {
                match input {
                    Input::Tick => q.tick().expect("no round outstanding"),
                    Input::Frame(bytes) => {
                        let msg = wire::decode(&bytes).expect("our own frames decode");
                        if let Err(e) = q.step(msg) {
                            assert!(
                                !matches!(
                                    e,
                                    StepError::RoundOutstanding | StepError::NotAVoter { .. }
                                ),
                                "seed {}: {e}",
                                self.seed
                            );
                            *self.refused.entry(e.to_string()).or_default() += 1;
                        }
                    }
                    Input::Propose(data) => match q.propose(data.clone()) {
                        Ok(p) => {
                            node.proposals.insert(p, data);
                        }
                        Err(e) => self.outcomes.push((node.id, data, Outcome::Refused(e))),
                    },
                }
            }
            match q.ready() {
                Some(rd) => self.start_round(i, rd),
                None => return,
            }
        }
    }

    fn send(&mut self, i: usize, messages: &[crate::quorum::Outgoing]) -> Vec<NodeId> {
        let from = self.nodes[i].id;
        let mut unreachable = Vec::new();
        for m in messages {
            if m.message.get_msg_type() == MessageType::MsgSnapshot && self.drop_snapshots > 0 {
                self.drop_snapshots -= 1;
                continue;
            }
            let bytes = Bytes::from(wire::encode(&m.message).expect("encodes"));
            if !self.net.send(self.now, from, m.to, bytes, &mut self.rng) {
                unreachable.push(m.to);
            }
        }
        unreachable
    }

    /// Steps 1 and 2 (the writes) of a round; the fsync completes later.
    fn start_round(&mut self, i: usize, rd: QuorumReady) {
        let unreachable = self.send(i, &rd.messages);
        let now_ms = self.now as i64 * TICK_MS;
        self.nodes[i].disk.write_log(&rd, now_ms);
        // Only a round with something to make durable waits for an fsync.
        let delay = if rd.must_sync {
            self.rng.range(0, self.fsync_delay_max + 1)
        } else {
            0
        };
        self.nodes[i].in_flight = Some((rd, self.now + delay));
        self.report_unreachable(i, unreachable);
    }

    /// The rest of a round once its fsync is done: hard state, persisted messages, apply,
    /// advance.
    fn complete_round(&mut self, i: usize) {
        let (rd, _) = self.nodes[i].in_flight.take().expect("a round in flight");
        let voters = self.voters.clone();
        self.nodes[i].disk.finish(&rd, &voters);
        let unreachable = self.send(i, &rd.persisted_messages);
        let seed = self.seed;
        let node = &mut self.nodes[i];
        if let Some(s) = &rd.snapshot {
            self.snapshots_installed += 1;
            node.sm = StateMachine::decode(&s.data);
            assert_eq!(
                node.sm.applied_index, s.index,
                "seed {seed}: snapshot data and index agree"
            );
            self.history.check_snapshot(node.id, &node.sm, seed);
        }
        let from = node.sm.applied_index;
        for e in &rd.committed {
            assert!(
                e.index > node.sm.applied_index,
                "seed {seed}: node {} applies out of order",
                node.id
            );
            node.sm.entries.push((e.index, e.data.clone()));
            node.sm.applied_index = e.index;
        }
        if let Some(applied) = rd.applied_index {
            assert!(
                applied >= node.sm.applied_index,
                "seed {seed}: applied index goes back"
            );
            node.sm.applied_index = applied;
        }
        self.history
            .record_applied(node.id, from, node.sm.applied_index, &rd.committed, seed);
        for outcome in &rd.proposals {
            let data = node.proposals.remove(&outcome.proposal);
            match (outcome.result, data) {
                (ProposalResult::Committed, Some(data)) => {
                    self.outcomes
                        .push((node.id, data.clone(), Outcome::Committed));
                    self.history.acked(outcome.proposal, data, seed)
                }
                (ProposalResult::Indefinite, Some(data)) => {
                    self.outcomes.push((node.id, data, Outcome::Indefinite));
                    self.history.indefinite += 1
                }
                (_, None) => panic!("seed {seed}: an outcome for a proposal never made"),
            }
        }
        match rd.leadership {
            Some(Leadership::Active { term }) => {
                self.history.activations.push((self.now, node.id, term))
            }
            Some(Leadership::Resigned { term }) => {
                self.history.resignations.push((self.now, node.id, term))
            }
            None => {}
        }
        node.node
            .as_mut()
            .expect("up")
            .advance()
            .expect("a round was outstanding");
        self.report_unreachable(i, unreachable);
    }

    fn report_unreachable(&mut self, i: usize, nodes: Vec<NodeId>) {
        if let Some(q) = self.nodes[i].node.as_mut() {
            for n in nodes {
                q.report_unreachable(n);
            }
        }
    }

    /// Heals everything, restarts every node, and runs until all apply the same commit.
    /// Then checks that every node holds the same state, with every acknowledged proposal.
    pub fn settle(&mut self, max_steps: u64) {
        self.net.heal();
        self.net.faults = Faults::LAN;
        for i in 0..self.nodes.len() {
            if !self.nodes[i].is_up() {
                self.start(i);
            }
        }
        // A fresh entry proves a leader of the final term commits, and pulls everyone up to it.
        let seed = self.seed;
        let converged = |c: &Cluster| {
            let Some(a) = c.active() else {
                return false;
            };
            let target = c.nodes[a].quorum().status().commit_index;
            c.nodes
                .iter()
                .all(|n| n.sm.applied_index == target && n.quorum().status().commit_index == target)
                && c.nodes
                    .iter()
                    .all(|n| n.in_flight.is_none() && n.inbox.is_empty())
        };
        let found = self.run_until(max_steps, |c| c.active().is_some());
        assert!(
            found.is_some(),
            "seed {seed}: no active leader after healing"
        );
        let a = self.active().expect("active");
        self.propose(a);
        let done = self.run_until(max_steps, converged);
        assert!(
            done.is_some(),
            "seed {seed}: the cluster did not converge after healing:\n{}",
            self.describe()
        );
        self.history.check_final(&self.nodes, seed);
    }

    /// Every node's state, for failure messages.
    pub fn describe(&self) -> String {
        let mut out = String::new();
        for n in &self.nodes {
            let status = n.node.as_ref().map(|q| q.status());
            out.push_str(&format!(
                "node {}: applied {} in_flight {} inbox {} status {status:?}\n",
                n.id,
                n.sm.applied_index,
                n.in_flight.is_some(),
                n.inbox.len()
            ));
        }
        out
    }
}
