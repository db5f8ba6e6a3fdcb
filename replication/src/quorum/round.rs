//! Rounds: what the node hands the driver ([`QuorumNode::ready`]) and how the driver hands it
//! back ([`QuorumNode::advance`]). The order the driver follows is documented on
//! [`QuorumReady`].
//!
//! raft-rs splits a round in two: a `Ready`, then after `advance` a `LightReady` with what the
//! persisted round released (a leader's commit, its broadcasts). The node folds the second
//! into the next round, so the driver handles one kind of round in one loop.

use super::ids::{node_of, peer_of, NO_PEER};
use super::node::{QuorumNode, Round};
use super::ready::{
    CommittedEntry, LeaderInfo, Leadership, Outgoing, ProposalOutcome, ProposalResult,
    QuorumHardState, QuorumReady, SnapshotData,
};
use raft::eraftpb::{EntryType, HardState, Message, MessageType};

/// `advance` without an outstanding round: the driver's loop is out of step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("no round is outstanding")]
pub struct NoRound;

impl QuorumNode {
    /// Whether [`Self::ready`] has work (always false while a round is outstanding).
    pub fn has_ready(&self) -> bool {
        self.round.is_none()
            && (self.raw.has_ready()
                || !self.carry.is_empty()
                || self.leadership_event.is_some()
                || !self.outcomes.is_empty()
                || self.log_reset_after.is_some()
                || Some(self.leader_info()) != self.reported_leader)
    }

    /// The next round of work, or `None` when there is none or a round is outstanding. Carry it
    /// out as [`QuorumReady`] describes, then call [`Self::advance`].
    pub fn ready(&mut self) -> Option<QuorumReady> {
        if !self.has_ready() {
            return None;
        }
        let mut rd = self.raw.ready();
        let carry = std::mem::take(&mut self.carry);
        let snapshot = (!rd.snapshot().is_empty()).then(|| rd.snapshot().clone());
        let entries = rd.take_entries();
        let mut hard_state = rd.hs().cloned();
        if hard_state.is_none() && carry.commit_changed {
            hard_state = Some(self.raw.raft.hard_state());
        }
        let store = self.raw.store();
        let truncate_from = entries
            .first()
            .filter(|e| snapshot.is_none() && e.index <= store.last())
            .map(|e| e.index);

        let mut out = QuorumReady {
            must_sync: rd.must_sync(),
            truncate_from,
            entries: entries.clone(),
            hard_state: hard_state.as_ref().map(to_quorum_hard_state),
            log_reset_after: self.log_reset_after.take(),
            ..QuorumReady::default()
        };
        let messages = carry.messages.into_iter().chain(rd.take_messages());
        out.messages = self.outgoing(messages);
        out.persisted_messages = self.outgoing(rd.take_persisted_messages());
        if out.log_reset_after.is_some() {
            out.must_sync = true;
        }

        let mut committed = carry.committed;
        if let Some(s) = &snapshot {
            let meta = s.get_metadata();
            // The snapshot holds everything up to its index: entries released before it was
            // received are in it, and must not be applied on top of it.
            committed.retain(|e| e.index > meta.index);
            out.log_reset_after = Some(meta.index);
            out.snapshot = Some(SnapshotData {
                index: meta.index,
                term: meta.term,
                data: s.data.clone(),
            });
            self.handed_out = meta.index;
            out.applied_index = Some(meta.index);
            self.resolve_proposals_up_to(meta.index, None);
        }
        committed.extend(rd.take_committed_entries());
        for e in committed {
            out.applied_index = Some(e.index);
            self.handed_out = e.index;
            self.resolve_proposals_up_to(e.index, Some(e.term));
            if e.get_entry_type() != EntryType::EntryNormal {
                // Never written by Weir (static voters; validate.rs refuses them on the wire).
                tracing::error!(
                    node_id = self.config.node_id,
                    index = e.index,
                    "skipping a committed configuration entry"
                );
                continue;
            }
            if !e.data.is_empty() {
                out.committed.push(CommittedEntry {
                    index: e.index,
                    term: e.term,
                    data: e.data,
                });
            }
        }

        if let Some(turn) = self.turn.as_mut() {
            if !turn.active && self.handed_out >= turn.first_index {
                turn.active = true;
                debug_assert!(self.leadership_event.is_none());
                self.leadership_event = Some(Leadership::Active { term: turn.term });
            }
        }
        out.leadership = self.leadership_event.take();
        out.proposals = std::mem::take(&mut self.outcomes);
        let leader = self.leader_info();
        if self.reported_leader != Some(leader) {
            self.reported_leader = Some(leader);
            out.leader = Some(leader);
        }

        self.round = Some(Round {
            ready: rd,
            snapshot,
            entries,
            hard_state,
        });
        Some(out)
    }

    /// Completes the outstanding round: the driver persisted it (durably if `must_sync`),
    /// sent its messages and applied its entries.
    pub fn advance(&mut self) -> Result<(), NoRound> {
        let round = self.round.take().ok_or(NoRound)?;
        // The storage mirrors the disk, and raft-rs reads it once the round is stable: update
        // it before raft-rs moves the round out of its unstable log.
        let store = self.raw.mut_store();
        if let Some(snapshot) = round.snapshot {
            store.install(snapshot);
        }
        store.append(&round.entries);
        if let Some(hs) = round.hard_state {
            store.set_hard_state(hs);
        }
        let mut light = self.raw.advance(round.ready);
        self.carry.messages.extend(light.take_messages());
        self.carry.committed.extend(light.take_committed_entries());
        self.carry.commit_changed |= light.commit_index().is_some();
        self.after_input();
        Ok(())
    }

    fn leader_info(&self) -> LeaderInfo {
        LeaderInfo {
            leader: node_of(self.raw.raft.leader_id),
            term: self.raw.raft.term,
        }
    }

    /// Resolves the proposals at or below `index`: committed if the entry there carries the
    /// proposal's term (`term`, when known), else of unknown fate.
    fn resolve_proposals_up_to(&mut self, index: u64, term: Option<u64>) {
        while let Some(p) = self.pending.front().copied() {
            if p.index > index {
                break;
            }
            self.pending.pop_front();
            let result = if p.index == index && term == Some(p.term) {
                ProposalResult::Committed
            } else {
                ProposalResult::Indefinite
            };
            self.outcomes.push(ProposalOutcome {
                proposal: p,
                result,
            });
        }
    }

    /// Addresses messages by node id, and notes snapshots sent (see `resend_lost_snapshots`).
    fn outgoing(&mut self, messages: impl IntoIterator<Item = Message>) -> Vec<Outgoing> {
        let mut out = Vec::new();
        for message in messages {
            let Some(to) = node_of(message.to).filter(|n| self.config.is_voter(*n)) else {
                // raft-rs addresses only the peers of its configuration, which are the voters.
                tracing::error!(
                    node_id = self.config.node_id,
                    to = message.to,
                    "raft-rs addressed an unknown peer"
                );
                continue;
            };
            if message.get_msg_type() == MessageType::MsgSnapshot {
                let slot = self.slot(to);
                self.snapshot_sent[slot] = Some(self.ticks);
            }
            debug_assert_eq!(message.from, peer_of(self.config.node_id));
            out.push(Outgoing { to, message });
        }
        out
    }
}

fn to_quorum_hard_state(hs: &HardState) -> QuorumHardState {
    QuorumHardState {
        term: hs.term,
        vote: (hs.vote != NO_PEER).then(|| node_of(hs.vote)).flatten(),
        commit: hs.commit,
    }
}
