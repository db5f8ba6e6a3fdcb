//! What the simulated cluster did, and the safety checks over it:
//! - one leader per term (election safety);
//! - every index is applied with the same content on every node, a restarted node included
//!   (state machine safety);
//! - an acknowledged proposal is at its index with its data, and at the end every node holds
//!   every acknowledged proposal exactly once (durability, no duplicates).

use super::cluster::SimNode;
use super::disk::{SimDisk, StateMachine};
use crate::quorum::{CommittedEntry, Proposal, QuorumNode, Role};
use crate::types::NodeId;
use bytes::Bytes;
use std::collections::{BTreeMap, BTreeSet};

/// What is committed at an index, as far as anyone has applied it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Slot {
    Data {
        term: u64,
        data: Bytes,
    },
    /// An entry without data (a new leader's first entry).
    Empty,
}

#[derive(Debug, Default)]
pub struct History {
    pub committed: BTreeMap<u64, Slot>,
    pub leaders: BTreeMap<u64, NodeId>,
    pub acked: Vec<(Proposal, Bytes)>,
    /// (step, node, term) of each `Leadership::Active` and `Leadership::Resigned`.
    pub activations: Vec<(u64, NodeId, u64)>,
    pub resignations: Vec<(u64, NodeId, u64)>,
    /// Proposals whose leader stopped leading before they committed.
    pub indefinite: u64,
}

impl History {
    fn agree(&mut self, index: u64, slot: Slot, node: NodeId, seed: u64) {
        let known = self.committed.entry(index).or_insert_with(|| slot.clone());
        assert_eq!(
            *known, slot,
            "seed {seed}: node {node} applied index {index} differently from another node"
        );
    }

    /// A node applied `(from, to]`: the listed entries with data, the others empty.
    pub fn record_applied(
        &mut self,
        node: NodeId,
        from: u64,
        to: u64,
        committed: &[CommittedEntry],
        seed: u64,
    ) {
        let mut with_data = committed.iter().peekable();
        for index in from + 1..=to {
            let slot = match with_data.peek() {
                Some(e) if e.index == index => {
                    let e = with_data.next().expect("peeked");
                    Slot::Data {
                        term: e.term,
                        data: e.data.clone(),
                    }
                }
                _ => Slot::Empty,
            };
            self.agree(index, slot, node, seed);
        }
        assert!(
            with_data.next().is_none(),
            "seed {seed}: entries beyond the applied index"
        );
    }

    /// A snapshot a node installed holds what was committed.
    pub fn check_snapshot(&self, node: NodeId, sm: &StateMachine, seed: u64) {
        for (index, data) in &sm.entries {
            if let Some(Slot::Data { data: known, .. }) = self.committed.get(index) {
                assert_eq!(
                    known, data,
                    "seed {seed}: node {node}'s snapshot differs at {index}"
                );
            } else if self.committed.contains_key(index) {
                panic!("seed {seed}: node {node}'s snapshot has data at empty index {index}");
            }
        }
    }

    pub fn acked(&mut self, p: Proposal, data: Bytes, seed: u64) {
        assert_eq!(
            self.committed.get(&p.index),
            Some(&Slot::Data {
                term: p.term,
                data: data.clone()
            }),
            "seed {seed}: a proposal reported committed is not what was applied at its index"
        );
        self.acked.push((p, data));
    }

    pub fn check_leaders(&mut self, nodes: &[SimNode], seed: u64) {
        for q in nodes.iter().filter_map(|n| n.node.as_ref()) {
            let s = q.status();
            if s.role == Role::Leader {
                let first = *self.leaders.entry(s.term).or_insert(s.node_id);
                assert_eq!(
                    first, s.node_id,
                    "seed {seed}: two leaders in term {}",
                    s.term
                );
            }
        }
    }

    /// A restarted node's log agrees with what was committed, up to its commit index. Only the
    /// entries recovery keeps count: those after the checkpoint (the ones at or below it are
    /// superseded by it), unless recovery dropped them (an interrupted snapshot install).
    pub fn check_recovered(&self, node: NodeId, q: &QuorumNode, disk: &SimDisk, seed: u64) {
        let commit = q.status().commit_index;
        let state = disk.recovered_state();
        let snapshot_index = state.snapshot.as_ref().map_or(0, |s| s.index);
        if q.recovery_notes().entries_dropped > 0 {
            return;
        }
        for e in state.entries.iter().filter(|e| e.index > snapshot_index) {
            if e.index > commit {
                break;
            }
            let agrees = match self.committed.get(&e.index) {
                Some(Slot::Data { term, data }) => e.term == *term && e.data == *data,
                Some(Slot::Empty) => e.data.is_empty(),
                None => true,
            };
            assert!(
                agrees,
                "seed {seed}: node {node} recovered entry {} (term {}, {:?}) committed as {:?}; \
                 commit {commit}, hard state {:?}, snapshot {:?}, notes {:?}",
                e.index,
                e.term,
                e.data,
                self.committed.get(&e.index),
                state.hard_state,
                state.snapshot.as_ref().map(|s| (s.index, s.term)),
                q.recovery_notes()
            );
        }
    }

    /// After healing: one state everywhere, holding every acknowledged proposal once.
    pub fn check_final(&self, nodes: &[SimNode], seed: u64) {
        let first = &nodes[0].sm;
        for n in nodes {
            assert_eq!(
                n.sm.entries, first.entries,
                "seed {seed}: node {} and node {} hold different states",
                n.id, nodes[0].id
            );
        }
        let mut seen = BTreeSet::new();
        for (_, data) in &first.entries {
            assert!(
                seen.insert(data.clone()),
                "seed {seed}: {data:?} applied twice"
            );
        }
        let by_index: BTreeMap<u64, &Bytes> = first.entries.iter().map(|(i, d)| (*i, d)).collect();
        for (p, data) in &self.acked {
            assert_eq!(
                by_index.get(&p.index),
                Some(&data),
                "seed {seed}: acknowledged proposal at {} lost",
                p.index
            );
        }
    }
}
