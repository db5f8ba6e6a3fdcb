//! The invariants, checked as the run goes (a violation panics with what broke; the runner
//! prints the seed and the trace). Per partition the oracle keeps the truth the replicas must
//! agree on:
//!
//! - **committed history**: offset → (epoch, value) of every record some leader's high
//!   watermark passed, with the epoch of the first leader that committed it. A record committed
//!   twice must be the same record ("replicas agree below the high watermark").
//! - **leaders**: who took each leader epoch, with its log at that moment. One leader per
//!   epoch, ever (a restarted node counts as another leader).
//! - **acknowledged writes**: every acks=all produce answered without error, at its offset.
//! - **unclean elections**: an election the metadata reports as unclean (an `UncleanElection`
//!   record for that leader and epoch) may lose what its leader lacked; the oracle cuts the
//!   committed history where the new leader's log departs from it, and that cut is the report.
//!   Writes acknowledged by older leaders at or past the cut are then excused, and so are
//!   commits and acknowledgements a deposed older leader makes past it afterwards (a "zombie":
//!   it does not know yet that it was replaced). A node that learns of its unclean election
//!   only after a newer epoch took over (it applies metadata late) cannot lose what the newer
//!   leaders committed: its cut counts only the history committed before its epoch.
//!
//! Checks: a leader elected without an `UncleanElection` record holds every record committed
//! by older leaders and every write they acknowledged, not excused; a leader's high watermark
//! never goes back within its epoch; a replica's records below its high watermark are the
//! committed ones (or excused); a truncation never removes a committed record below the
//! replica's own high watermark; an acknowledged write is committed when it is acknowledged,
//! and is in the log every newer clean leader took over with.

use super::log::{Batch, SimLog, Value};
use super::msg::Tp;
use crate::types::{LeaderEpoch, NodeId, Offset};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Committed {
    epoch: LeaderEpoch,
    value: Value,
    /// The epoch of the first leader whose high watermark passed it.
    by: LeaderEpoch,
}

/// An unclean election: from leader epoch `epoch`, the history at and after `offset` is what
/// that leader has, not what was committed before.
#[derive(Debug, Clone, Copy)]
struct Cut {
    epoch: LeaderEpoch,
    offset: Offset,
}

#[derive(Debug, Clone)]
struct Takeover {
    node: NodeId,
    incarnation: u64,
    unclean: bool,
    /// The leader's records at the moment it took over, from offset 0.
    log: Vec<(LeaderEpoch, Value)>,
}

#[derive(Debug, Clone, Copy)]
struct Ack {
    offset: Offset,
    value: Value,
    /// The epoch the record was written in.
    record_epoch: LeaderEpoch,
    /// The epoch of the leader that acknowledged it (a leader re-elected while the write
    /// waited acknowledges it in its new epoch).
    epoch: LeaderEpoch,
}

#[derive(Debug, Default)]
struct History {
    committed: Vec<Committed>,
    cuts: Vec<Cut>,
    takeovers: BTreeMap<LeaderEpoch, Takeover>,
    acked: Vec<Ack>,
    /// The last high watermark each leader epoch published.
    published: BTreeMap<LeaderEpoch, Offset>,
    /// Epochs whose leader was elected uncleanly and took over only after a newer epoch had:
    /// a branch that is discarded whole (what it commits and acknowledges is lost, reported
    /// by its own election).
    stale_unclean: std::collections::BTreeSet<LeaderEpoch>,
}

impl History {
    /// A leader of `epoch` committing at `offset` was replaced by an unclean election since.
    fn is_zombie(&self, epoch: LeaderEpoch, offset: Offset) -> bool {
        self.stale_unclean.contains(&epoch)
            || self
                .cuts
                .iter()
                .any(|c| epoch < c.epoch && offset >= c.offset)
    }

    /// `ack` may be missing on a leader of `upto`: an unclean election between its leader and
    /// that one reported the loss.
    fn excused(&self, ack: &Ack, upto: LeaderEpoch) -> bool {
        self.stale_unclean.contains(&ack.epoch)
            || self
                .cuts
                .iter()
                .any(|c| ack.epoch < c.epoch && c.epoch <= upto && ack.offset >= c.offset)
    }
}

/// What the oracle counted, to show a run did something.
#[derive(Debug, Default, Clone)]
pub struct Stats {
    pub acked_all: u64,
    pub acked_one: u64,
    pub committed: u64,
    pub takeovers: u64,
    pub unclean_elections: u64,
    /// Acknowledged acks=all writes an unclean election reported lost.
    pub acked_lost_reported: u64,
    pub truncations: u64,
    pub records_truncated: u64,
}

#[derive(Debug, Default)]
pub struct Oracle {
    parts: BTreeMap<Tp, History>,
    pub stats: Stats,
}

fn log_records(log: &SimLog) -> Vec<(LeaderEpoch, Value)> {
    assert_eq!(log.start(), 0, "the simulator never moves a log's start");
    log.records().map(|(_, e, v)| (e, v)).collect()
}

impl Oracle {
    /// `node` (incarnation `incarnation`) became leader of `tp` in `epoch` with `log`;
    /// `unclean_epoch`: the epoch of the latest unclean election its image records for it.
    /// Returns how many committed records the election lost (reported), for the trace.
    pub fn took_over(
        &mut self,
        tp: Tp,
        epoch: LeaderEpoch,
        node: NodeId,
        incarnation: u64,
        unclean_epoch: Option<LeaderEpoch>,
        log: &SimLog,
    ) -> usize {
        self.stats.takeovers += 1;
        let h = self.parts.entry(tp).or_default();
        // Unclean: elected so in this epoch, or in an earlier one that no takeover carried
        // out (its leader never acted; this node, re-elected cleanly from the ISR of one, is
        // that election's outcome).
        let unclean = unclean_epoch.is_some_and(|u| h.takeovers.range(u..epoch).next().is_none());
        if let Some(t) = h.takeovers.get(&epoch) {
            panic!(
                "invariant: two leaders of {tp} epoch {epoch}: node {} (start {}) and node {node} (start {incarnation})",
                t.node, t.incarnation
            );
        }
        let mut lost = 0;
        // A newer epoch took over already: this node learns of its election late (it applies
        // metadata behind) and was replaced before it acted. Its election cannot lose what the
        // newer leaders committed: only the history committed before it counts.
        let stale = h.takeovers.range(epoch + 1..).next().is_some();
        if unclean {
            let at = h
                .committed
                .iter()
                .enumerate()
                .find(|(o, c)| {
                    (stale && c.by > epoch) || log.record(*o as Offset) != Some((c.epoch, c.value))
                })
                .map_or(h.committed.len(), |(o, _)| o);
            lost = h.committed.len() - at;
            let lost_acks = h
                .acked
                .iter()
                .filter(|a| a.epoch < epoch && a.offset >= at as Offset)
                .filter(|a| !h.excused(a, epoch))
                .count();
            if stale {
                h.stale_unclean.insert(epoch);
            } else {
                h.committed.truncate(at);
            }
            h.cuts.push(Cut {
                epoch,
                offset: at as Offset,
            });
            self.stats.unclean_elections += 1;
            self.stats.acked_lost_reported += lost_acks as u64;
        } else {
            for (o, c) in h.committed.iter().enumerate() {
                if c.by < epoch && log.record(o as Offset) != Some((c.epoch, c.value)) {
                    panic!(
                        "invariant: {tp}: node {node} became leader of epoch {epoch} cleanly without \
                         offset {o} (epoch {}, value {}) committed by the leader of epoch {}; it has {:?}",
                        c.epoch,
                        c.value,
                        c.by,
                        log.record(o as Offset)
                    );
                }
            }
            for a in h.acked.iter().filter(|a| a.epoch < epoch) {
                if !h.excused(a, epoch) && log.record(a.offset) != Some((a.record_epoch, a.value)) {
                    panic!(
                        "invariant: {tp}: node {node} became leader of epoch {epoch} cleanly without \
                         the acknowledged write {} at offset {} (epoch {}); it has {:?}",
                        a.value,
                        a.offset,
                        a.record_epoch,
                        log.record(a.offset)
                    );
                }
            }
        }
        h.takeovers.insert(
            epoch,
            Takeover {
                node,
                incarnation,
                unclean,
                log: log_records(log),
            },
        );
        lost
    }

    /// The leader of `epoch` set its high watermark to `hw`.
    pub fn published(&mut self, tp: Tp, epoch: LeaderEpoch, hw: Offset, log: &SimLog) {
        let h = self.parts.entry(tp).or_default();
        let last = h.published.get(&epoch).copied().unwrap_or(0);
        assert!(
            hw >= last,
            "invariant: {tp}: the high watermark of epoch {epoch} went back from {last} to {hw}"
        );
        h.published.insert(epoch, hw);
        let from = last.min(h.committed.len() as Offset);
        let mut added = 0;
        for o in from..hw {
            if h.is_zombie(epoch, o) {
                break;
            }
            let (e, v) = log
                .record(o)
                .unwrap_or_else(|| panic!("{tp}: a high watermark {hw} past the log end"));
            match h.committed.get(o as usize) {
                Some(c) if (c.epoch, c.value) != (e, v) => panic!(
                    "invariant: {tp}: the leader of epoch {epoch} committed offset {o} as \
                     (epoch {e}, value {v}) but it was committed as (epoch {}, value {}) by the leader of epoch {}",
                    c.epoch, c.value, c.by
                ),
                Some(_) => {}
                None => {
                    h.committed.push(Committed {
                        epoch: e,
                        value: v,
                        by: epoch,
                    });
                    added += 1;
                }
            }
        }
        self.stats.committed += added;
    }

    /// The leader of `epoch` acknowledged `batch` to an acks=all producer.
    pub fn acked(&mut self, tp: Tp, epoch: LeaderEpoch, batch: &Batch) {
        self.stats.acked_all += 1;
        let h = self.parts.entry(tp).or_default();
        for (i, v) in batch.values.iter().enumerate() {
            let a = Ack {
                offset: batch.base + i as Offset,
                value: *v,
                record_epoch: batch.epoch,
                epoch,
            };
            let committed = h.committed.get(a.offset as usize);
            if committed.map(|c| (c.epoch, c.value)) != Some((batch.epoch, a.value))
                && !h.is_zombie(epoch, a.offset)
            {
                panic!(
                    "invariant: {tp}: write {} acknowledged at offset {} by the leader of epoch {epoch} \
                     is not committed (committed there: {committed:?})",
                    a.value, a.offset
                );
            }
            for (e, t) in h.takeovers.range(epoch + 1..) {
                if !t.unclean
                    && !h.excused(&a, *e)
                    && t.log.get(a.offset as usize) != Some(&(batch.epoch, a.value))
                {
                    panic!(
                        "invariant: {tp}: write {} acknowledged at offset {} by the leader of epoch {epoch} \
                         is not in the log node {} took over epoch {e} with",
                        a.value, a.offset, t.node
                    );
                }
            }
            h.acked.push(a);
        }
    }

    pub fn acked_one(&mut self) {
        self.stats.acked_one += 1;
    }

    /// A replica of `node` truncated `removed` (not a crash: those lose only unflushed data).
    /// Only what the replica held below its own high watermark `hw` is checked: above it, a
    /// follower of a deposed leader may cut records a newer leader committed meanwhile (it
    /// fetches them back from that one), as Kafka's followers do.
    pub fn truncated(&mut self, tp: Tp, node: NodeId, hw: Offset, removed: &[Batch]) {
        self.stats.truncations += 1;
        let h = self.parts.entry(tp).or_default();
        for b in removed {
            for (i, v) in b.values.iter().enumerate() {
                let o = b.base + i as Offset;
                if o >= hw {
                    continue;
                }
                if let Some(c) = h.committed.get(o as usize) {
                    if (c.epoch, c.value) == (b.epoch, *v) {
                        panic!(
                            "invariant: {tp}: node {node} truncated offset {o} (epoch {}, value {v}), \
                             committed by the leader of epoch {}",
                            b.epoch, c.by
                        );
                    }
                }
            }
            self.stats.records_truncated += b.values.len() as u64;
        }
    }

    /// A replica's records below its high watermark are the committed ones (or were lost to a
    /// reported unclean election). `agreed` is how far this replica was already checked.
    pub fn check_replica(&mut self, tp: Tp, node: NodeId, log: &SimLog, agreed: &mut Offset) {
        let hw = log.high_watermark();
        *agreed = (*agreed).min(log.end());
        if *agreed >= hw {
            return;
        }
        let h = self.parts.entry(tp).or_default();
        for o in *agreed..hw {
            let (e, v) = log.record(o).expect("below the high watermark");
            let ok = match h.committed.get(o as usize) {
                Some(c) => (c.epoch, c.value) == (e, v),
                None => false,
            };
            let excused =
                h.stale_unclean.contains(&e) || h.cuts.iter().any(|c| e < c.epoch && o >= c.offset);
            if !ok && !excused {
                panic!(
                    "invariant: {tp}: node {node} holds (epoch {e}, value {v}) at offset {o}, below its \
                     high watermark {hw}, but the committed record there is {:?}",
                    h.committed.get(o as usize)
                );
            }
        }
        *agreed = hw;
    }

    /// At the end, after healing: every acknowledged write not excused is in `log`, the log of
    /// the final leader of `epoch` (taken over cleanly or not).
    pub fn check_final(&self, tp: Tp, epoch: LeaderEpoch, log: &SimLog) -> usize {
        let Some(h) = self.parts.get(&tp) else {
            return 0;
        };
        let mut kept = 0;
        for a in &h.acked {
            if h.excused(a, epoch) {
                continue;
            }
            assert_eq!(
                log.record(a.offset),
                Some((a.record_epoch, a.value)),
                "invariant: {tp}: acknowledged write {} at offset {} (epoch {}) is missing at the end",
                a.value,
                a.offset,
                a.record_epoch
            );
            kept += 1;
        }
        kept
    }
}
