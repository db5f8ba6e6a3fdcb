//! A simulated network between voters: messages travel as WeirRaft frames (`wire::encode`),
//! each with a delivery time; the test decides latency, loss, duplication and partitions.
//! Generic over the payload, so the replication simulator (`crate::sim`) carries its broker
//! messages over the same rules.

use crate::quorum::rng::SplitMix64;
use crate::types::NodeId;
use bytes::Bytes;
use std::collections::BTreeSet;

/// How hostile the network is.
#[derive(Debug, Clone, Copy)]
pub struct Faults {
    /// Latency in ticks, drawn from `[0, delay_max]`: reorders messages sent close together.
    pub delay_max: u64,
    /// Per mille of messages lost.
    pub drop_per_mille: u64,
    /// Per mille of messages delivered twice (the copy later).
    pub duplicate_per_mille: u64,
}

impl Faults {
    pub const NONE: Faults = Faults {
        delay_max: 0,
        drop_per_mille: 0,
        duplicate_per_mille: 0,
    };
    /// A LAN: up to 2 ticks (100 ms) of latency, nothing lost.
    pub const LAN: Faults = Faults {
        delay_max: 2,
        drop_per_mille: 0,
        duplicate_per_mille: 0,
    };
}

#[derive(Debug)]
pub struct Frame<T = Bytes> {
    pub at: u64,
    pub from: NodeId,
    pub to: NodeId,
    pub payload: T,
}

#[derive(Debug)]
pub struct SimNet<T = Bytes> {
    pub faults: Faults,
    in_flight: Vec<Frame<T>>,
    /// Links that carry nothing, in both directions.
    cut: BTreeSet<(NodeId, NodeId)>,
    pub sent: u64,
}

impl<T: Clone> SimNet<T> {
    pub fn new(faults: Faults) -> Self {
        Self {
            faults,
            in_flight: Vec::new(),
            cut: BTreeSet::new(),
            sent: 0,
        }
    }

    pub fn is_cut(&self, a: NodeId, b: NodeId) -> bool {
        self.cut.contains(&(a.min(b), a.max(b)))
    }

    /// Cuts every link between `side` and the other nodes.
    pub fn partition(&mut self, side: &[NodeId], all: &[NodeId]) {
        for &a in side {
            for &b in all.iter().filter(|b| !side.contains(b)) {
                self.cut.insert((a.min(b), a.max(b)));
            }
        }
    }

    pub fn heal(&mut self) {
        self.cut.clear();
    }

    /// Queues a frame; returns false when the link is cut (the driver would see its
    /// connection fail).
    pub fn send(
        &mut self,
        now: u64,
        from: NodeId,
        to: NodeId,
        payload: T,
        rng: &mut SplitMix64,
    ) -> bool {
        if self.is_cut(from, to) {
            return false;
        }
        self.sent += 1;
        if rng.chance(self.faults.drop_per_mille, 1000) {
            return true;
        }
        let at = now + rng.range(0, self.faults.delay_max + 1);
        if rng.chance(self.faults.duplicate_per_mille, 1000) {
            let later = at + rng.range(1, self.faults.delay_max + 3);
            self.in_flight.push(Frame {
                at: later,
                from,
                to,
                payload: payload.clone(),
            });
        }
        self.in_flight.push(Frame {
            at,
            from,
            to,
            payload,
        });
        true
    }

    /// The frames due at `now`, in a shuffled order; frames on a link cut meanwhile are lost.
    pub fn due(&mut self, now: u64, rng: &mut SplitMix64) -> Vec<Frame<T>> {
        let (mut due, rest): (Vec<_>, Vec<_>) = self.in_flight.drain(..).partition(|f| f.at <= now);
        self.in_flight = rest;
        due.retain(|f| !self.is_cut(f.from, f.to));
        for i in (1..due.len()).rev() {
            let j = rng.range(0, i as u64 + 1) as usize;
            due.swap(i, j);
        }
        due
    }
}
