//! Leader election and partition changes (Kafka's `PartitionChangeBuilder`), pure: given a
//! partition, the ISR wanted next, which brokers may lead, and the topic's rules, it says
//! which record (if any) the controller writes.
//!
//! Election order: the ISR (the preferred replica first; an acceptable current leader is kept
//! by an ordinary election), then an ELR member (KIP-966: replicas that left the ISR while it
//! was below `min.insync.replicas`, so they hold everything committed), then the last known
//! leader once the ISR and ELR have emptied (KIP-966's balanced recovery, reported as unclean
//! because an unclean restart may have cost it its unflushed tail), then, only when
//! `unclean.leader.election.enable` allows it, any acceptable replica. Otherwise the partition
//! is offline (leader -1).
//!
//! Weir keeps the last ISR member in the ISR when it is fenced or shuts down (Kafka's rule
//! without ELR): it holds everything committed, so when it returns it leads again cleanly. The
//! ISR empties only when a member is known to have lost data (an unclean restart) or is gone
//! (unregistered); then the last known leader is remembered.
//!
//! "Acceptable" is the caller's: registered, unfenced, not in controlled shutdown, and not the
//! broker being removed.

use crate::metadata::image::PartitionMeta;
use crate::metadata::records::{MetadataRecord, PartitionChangeRecord, UncleanElectionRecord};
use crate::types::{NodeId, TopicId, NO_NODE};

/// Which replica an election prefers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Election {
    /// Keep an acceptable leader; otherwise the first acceptable ISR member in replica order.
    Online,
    /// The preferred (first) replica if it is an acceptable ISR member, else as `Online`
    /// (ElectLeaders PREFERRED, leader rebalancing). Never unclean.
    Preferred,
}

/// Who an election chose, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Elected {
    /// An ISR member (possibly the current leader).
    Isr(NodeId),
    /// An eligible leader replica: clean, it holds everything committed.
    Elr(NodeId),
    /// The last known leader after the ISR and ELR emptied: may have lost its unflushed tail.
    LastKnownLeader(NodeId),
    /// A replica outside the ISR and ELR: may lack acknowledged data.
    Unclean(NodeId),
    Offline,
}

impl Elected {
    pub fn leader(self) -> NodeId {
        match self {
            Elected::Isr(n)
            | Elected::Elr(n)
            | Elected::LastKnownLeader(n)
            | Elected::Unclean(n) => n,
            Elected::Offline => NO_NODE,
        }
    }

    /// The leader may lack data some acknowledged write had, so the election is recorded.
    pub fn is_unclean(self) -> bool {
        matches!(self, Elected::LastKnownLeader(_) | Elected::Unclean(_))
    }
}

/// What a partition looks like to an election.
pub struct Candidates<'a> {
    pub replicas: &'a [NodeId],
    pub isr: &'a [NodeId],
    pub elr: &'a [NodeId],
    pub last_known_elr: &'a [NodeId],
    pub leader: NodeId,
}

/// Picks a leader; see the module comment for the order.
pub fn elect(
    c: &Candidates<'_>,
    election: Election,
    acceptable: &dyn Fn(NodeId) -> bool,
    unclean_allowed: bool,
) -> Elected {
    let in_isr = |r: NodeId| c.isr.contains(&r) && acceptable(r);
    if election == Election::Preferred {
        if let Some(&p) = c.replicas.first() {
            if in_isr(p) {
                return Elected::Isr(p);
            }
        }
    }
    if c.leader != NO_NODE && in_isr(c.leader) {
        return Elected::Isr(c.leader);
    }
    if let Some(&r) = c.replicas.iter().find(|r| in_isr(**r)) {
        return Elected::Isr(r);
    }
    if let Some(&r) = c
        .replicas
        .iter()
        .find(|r| c.elr.contains(r) && acceptable(**r))
    {
        return Elected::Elr(r);
    }
    if c.isr.is_empty() && c.elr.is_empty() {
        if let [last] = c.last_known_elr {
            if c.replicas.contains(last) && acceptable(*last) {
                return Elected::LastKnownLeader(*last);
            }
        }
    }
    if unclean_allowed && election == Election::Online {
        if let Some(&r) = c.replicas.iter().find(|r| acceptable(**r)) {
            return Elected::Unclean(r);
        }
    }
    Elected::Offline
}

/// The records one partition change produces: the change, and the unclean election it made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltChange {
    pub change: PartitionChangeRecord,
    pub unclean: Option<UncleanElectionRecord>,
}

impl BuiltChange {
    pub fn into_records(self) -> impl Iterator<Item = MetadataRecord> {
        std::iter::once(MetadataRecord::PartitionChange(self.change))
            .chain(self.unclean.map(MetadataRecord::UncleanElection))
    }
}

/// Builds one partition's change (Kafka's `PartitionChangeBuilder`).
pub struct PartitionChangeBuilder<'a> {
    topic_id: TopicId,
    partition_id: i32,
    current: &'a PartitionMeta,
    acceptable: &'a dyn Fn(NodeId) -> bool,
    min_isr: usize,
    target_isr: Vec<NodeId>,
    election: Election,
    unclean_allowed: bool,
    keep_last_isr_member: bool,
    lost_replica: Option<NodeId>,
    now_ms: i64,
}

impl<'a> PartitionChangeBuilder<'a> {
    /// `min_isr` is the topic's effective `min.insync.replicas` (at most its replication
    /// factor); `now_ms` dates an unclean election.
    pub fn new(
        topic_id: TopicId,
        partition_id: i32,
        current: &'a PartitionMeta,
        acceptable: &'a dyn Fn(NodeId) -> bool,
        min_isr: usize,
        now_ms: i64,
    ) -> Self {
        Self {
            topic_id,
            partition_id,
            current,
            acceptable,
            min_isr: min_isr.max(1),
            target_isr: current.isr.clone(),
            election: Election::Online,
            unclean_allowed: false,
            keep_last_isr_member: false,
            lost_replica: None,
            now_ms,
        }
    }

    pub fn target_isr(mut self, isr: Vec<NodeId>) -> Self {
        self.target_isr = isr;
        self
    }

    pub fn election(mut self, election: Election) -> Self {
        self.election = election;
        self
    }

    /// `unclean.leader.election.enable` for this topic, or an explicit unclean ElectLeaders.
    pub fn unclean_allowed(mut self, allowed: bool) -> Self {
        self.unclean_allowed = allowed;
        self
    }

    /// Removes `broker` from the ISR but keeps it if it is the last member: it was fenced or
    /// is shutting down, and still holds everything committed.
    pub fn remove_from_isr_keeping_last(mut self, broker: NodeId) -> Self {
        self.target_isr.retain(|r| *r != broker);
        self.keep_last_isr_member = true;
        self
    }

    /// Removes `broker` from the ISR and ELR even if the ISR empties: it restarted uncleanly
    /// (and may have lost its unflushed tail) or was unregistered.
    pub fn remove_lost_replica(mut self, broker: NodeId) -> Self {
        self.target_isr.retain(|r| *r != broker);
        self.lost_replica = Some(broker);
        self
    }

    /// The ELR the partition gets with `isr`: empty when the ISR is large enough, else every
    /// replica that was in the ISR or ELR but is not in the new ISR (in replica order).
    fn elr_for(&self, isr: &[NodeId], also_was_isr: &[NodeId]) -> Vec<NodeId> {
        if isr.len() >= self.min_isr {
            return Vec::new();
        }
        let cur = self.current;
        cur.replicas
            .iter()
            .copied()
            .filter(|r| {
                (cur.isr.contains(r) || cur.elr.contains(r) || also_was_isr.contains(r))
                    && !isr.contains(r)
                    && Some(*r) != self.lost_replica
            })
            .collect()
    }

    /// The change, or None when nothing would change.
    pub fn build(self) -> Option<BuiltChange> {
        let cur = self.current;
        let mut isr = self.target_isr.clone();
        if isr.is_empty() && self.keep_last_isr_member && !cur.isr.is_empty() {
            isr = cur.isr.clone();
        }
        let candidate_elr = self.elr_for(&isr, &[]);
        let elected = elect(
            &Candidates {
                replicas: &cur.replicas,
                isr: &isr,
                elr: &candidate_elr,
                last_known_elr: &cur.last_known_elr,
                leader: cur.leader,
            },
            self.election,
            self.acceptable,
            self.unclean_allowed,
        );
        let leader = elected.leader();
        let replaced_isr = isr.clone();
        let (elr, last_known_elr) = match elected {
            Elected::Isr(_) => {
                let elr = self.elr_for(&isr, &[]);
                (elr, Vec::new())
            }
            Elected::Elr(l) => {
                // The ELR member becomes the ISR; whoever was in the ISR left it below min ISR.
                let was = std::mem::replace(&mut isr, vec![l]);
                (self.elr_for(&isr, &was), Vec::new())
            }
            Elected::LastKnownLeader(l) | Elected::Unclean(l) => {
                isr = vec![l];
                (Vec::new(), Vec::new())
            }
            Elected::Offline => {
                let elr = self.elr_for(&isr, &[]);
                let lke = if isr.is_empty() && cur.last_known_elr.is_empty() {
                    // The first time the ISR empties, remember who led (or last held it).
                    match (cur.leader, cur.isr.as_slice()) {
                        (l, _) if l != NO_NODE => vec![l],
                        (_, [only]) => vec![*only],
                        _ => Vec::new(),
                    }
                } else {
                    cur.last_known_elr.clone()
                };
                (elr, lke)
            }
        };
        let change = PartitionChangeRecord {
            topic_id: self.topic_id,
            partition: self.partition_id,
            leader: (leader != cur.leader).then_some(leader),
            isr: (isr != cur.isr).then(|| isr.clone()),
            elr: (elr != cur.elr).then(|| elr.clone()),
            last_known_elr: (last_known_elr != cur.last_known_elr).then_some(last_known_elr),
            replicas: None,
        };
        if change.leader.is_none()
            && change.isr.is_none()
            && change.elr.is_none()
            && change.last_known_elr.is_none()
        {
            return None;
        }
        let unclean =
            (elected.is_unclean() && change.leader.is_some()).then(|| UncleanElectionRecord {
                topic_id: self.topic_id,
                partition: self.partition_id,
                leader,
                leader_epoch: cur.leader_epoch.saturating_add(1),
                replaced_isr,
                replaced_elr: candidate_elr,
                time_ms: self.now_ms,
            });
        Some(BuiltChange { change, unclean })
    }
}

#[cfg(test)]
#[path = "election_tests.rs"]
mod tests;
