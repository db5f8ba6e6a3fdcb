//! The controller on a simulated voter, driven as the broker's `ControllerService` drives it:
//! every committed entry replayed in order; activated when the quorum reports this node active
//! (after it applied everything before its term), deactivated when it resigns or dies; one
//! operation at a time — decide against the committed image, propose the records as one raft
//! entry, answer once that entry committed, or NOT_CONTROLLER if it did not; its timers
//! (session expiry, unclean elections) every 100 ms while active.
//!
//! Entries carry an 8-byte nonce before the encoded batch, so two operations writing identical
//! records are still two entries (the quorum simulator checks that no entry is applied twice).

use super::env::Env;
use super::msg::{CallAnswer, Msg};
use crate::controller::testkit::TestValidator;
use crate::controller::{ControllerConfig, ControllerReply, ControllerRequest, ControllerState};
use crate::metadata::image::MetadataImage;
use crate::metadata::records::{decode_batch, encode_batch, MetadataRecord};
use crate::quorum::tests::cluster::Outcome;
use crate::types::NodeId;
use bytes::Bytes;
use std::collections::VecDeque;

/// Weir's controller timer period (`cluster/controller.rs`).
pub const TICK_MS: i64 = 100;

/// A raft entry's payload: a nonce, then the records.
pub fn encode_entry(nonce: u64, records: &[MetadataRecord]) -> Bytes {
    let mut out = nonce.to_be_bytes().to_vec();
    out.extend_from_slice(&encode_batch(records));
    Bytes::from(out)
}

pub fn decode_entry(data: &[u8]) -> (u64, Vec<MetadataRecord>) {
    let nonce = u64::from_be_bytes(data[..8].try_into().expect("a nonce"));
    let records = decode_batch(&data[8..]).expect("committed entries decode");
    (nonce, records)
}

/// A request waiting its turn.
#[derive(Debug)]
struct Call {
    from: NodeId,
    id: u64,
    request: ControllerRequest,
}

/// The operation whose entry is proposed and not yet decided.
#[derive(Debug)]
struct InFlight {
    nonce: u64,
    /// Whom to answer once it commits (none for a tick's records).
    answer: Option<(NodeId, u64, ControllerReply)>,
}

pub struct ControllerNode {
    pub id: NodeId,
    pub state: ControllerState,
    /// The highest raft index replayed.
    replayed: u64,
    queue: VecDeque<Call>,
    in_flight: Option<InFlight>,
    /// The records to propose, for the world to hand to the quorum node.
    pub to_propose: Option<Bytes>,
    next_tick_ms: i64,
    active_term: Option<u64>,
}

impl ControllerNode {
    pub fn new(id: NodeId, config: ControllerConfig, seed: u64) -> Self {
        Self {
            id,
            state: ControllerState::new(config, Box::new(TestValidator), seed),
            replayed: 0,
            queue: VecDeque::new(),
            in_flight: None,
            to_propose: None,
            next_tick_ms: 0,
            active_term: None,
        }
    }

    pub fn is_active(&self) -> bool {
        self.active_term.is_some()
    }

    /// Replays the committed entries this node applied since the last call.
    pub fn catch_up(&mut self, applied: &[(u64, Bytes)]) {
        let from = applied.partition_point(|(i, _)| *i <= self.replayed);
        for (index, data) in &applied[from..] {
            let (_, records) = decode_entry(data);
            self.state.replay(*index as i64, &records);
            self.replayed = *index;
        }
    }

    pub fn activate(&mut self, term: u64, env: &mut Env) {
        self.state.activate(env.now_ms);
        self.active_term = Some(term);
        self.next_tick_ms = env.now_ms;
        env.log(
            &format!("c{}", self.id),
            format!("active controller of term {term}"),
        );
    }

    pub fn resign(&mut self, term: u64, leader: Option<NodeId>, env: &mut Env) {
        if self.active_term.take().is_some() {
            env.log(&format!("c{}", self.id), format!("resigns (term {term})"));
        }
        self.state.deactivate();
        if let Some(f) = self.in_flight.take() {
            if let Some((to, id, _)) = f.answer {
                not_controller(env, self.id, to, id, leader);
            }
        }
        self.to_propose = None;
        for c in std::mem::take(&mut self.queue) {
            not_controller(env, self.id, c.from, c.id, leader);
        }
    }

    /// A request from a broker; answered NOT_CONTROLLER at once when not active.
    pub fn on_call(
        &mut self,
        from: NodeId,
        id: u64,
        request: ControllerRequest,
        leader: Option<NodeId>,
        env: &mut Env,
    ) {
        if !self.is_active() {
            not_controller(env, self.id, from, id, leader);
            return;
        }
        self.queue.push_back(Call { from, id, request });
    }

    /// What the quorum did with the proposal carrying `nonce`.
    pub fn on_outcome(
        &mut self,
        nonce: u64,
        outcome: &Outcome,
        leader: Option<NodeId>,
        env: &mut Env,
    ) {
        let Some(f) = self.in_flight.take_if(|f| f.nonce == nonce) else {
            return;
        };
        match (outcome, f.answer) {
            (Outcome::Committed, Some((to, id, reply))) => {
                env.send(
                    self.id,
                    to,
                    Msg::CallAnswer {
                        id,
                        answer: CallAnswer::Done(reply),
                    },
                );
            }
            (Outcome::Committed, None) => {
                // A tick's records: tick again at once, the next broker may be stale too.
                self.next_tick_ms = env.now_ms;
            }
            (_, Some((to, id, _))) => not_controller(env, self.id, to, id, leader),
            (_, None) => {}
        }
    }

    /// Handles the next request, or ticks, when no operation is in flight.
    pub fn poll(&mut self, env: &mut Env) {
        if !self.is_active() || self.in_flight.is_some() {
            return;
        }
        while let Some(call) = self.queue.pop_front() {
            let (reply, records) = self.state.handle(call.request, env.now_ms);
            if records.is_empty() {
                env.send(
                    self.id,
                    call.from,
                    Msg::CallAnswer {
                        id: call.id,
                        answer: CallAnswer::Done(reply),
                    },
                );
                continue;
            }
            self.propose(records, Some((call.from, call.id, reply)), env);
            return;
        }
        if env.now_ms >= self.next_tick_ms {
            self.next_tick_ms = env.now_ms + TICK_MS;
            let records = self.state.tick(env.now_ms);
            if !records.is_empty() {
                self.propose(records, None, env);
            }
        }
    }

    fn propose(
        &mut self,
        records: Vec<MetadataRecord>,
        answer: Option<(NodeId, u64, ControllerReply)>,
        env: &mut Env,
    ) {
        let nonce = env.next_id();
        let what = describe(&records, self.state.image());
        env.log(&format!("c{}", self.id), format!("proposes {what}"));
        self.to_propose = Some(encode_entry(nonce, &records));
        self.in_flight = Some(InFlight { nonce, answer });
    }
}

fn not_controller(env: &mut Env, me: NodeId, to: NodeId, id: u64, leader: Option<NodeId>) {
    env.send(
        me,
        to,
        Msg::CallAnswer {
            id,
            answer: CallAnswer::NotController { leader },
        },
    );
}

/// The records of an entry, short, for the trace.
pub fn describe(records: &[MetadataRecord], image: &MetadataImage) -> String {
    let name = |id: &[u8; 16], p: i32| {
        image
            .topic_by_id(id)
            .map_or_else(|| format!("?-{p}"), |t| format!("{}-{p}", t.name))
    };
    let parts: Vec<String> = records
        .iter()
        .map(|r| match r {
            MetadataRecord::PartitionChange(c) => {
                let mut s = format!("change {}", name(&c.topic_id, c.partition));
                if let Some(l) = c.leader {
                    s += &format!(" leader={l}");
                }
                if let Some(isr) = &c.isr {
                    s += &format!(" isr={isr:?}");
                }
                if let Some(elr) = &c.elr {
                    s += &format!(" elr={elr:?}");
                }
                if let Some(lke) = &c.last_known_elr {
                    s += &format!(" lke={lke:?}");
                }
                s
            }
            MetadataRecord::RegisterBroker(b) => format!(
                "register b{} epoch {}{}",
                b.broker_id,
                b.broker_epoch,
                if b.fenced { " fenced" } else { "" }
            ),
            MetadataRecord::BrokerChange(b) => format!(
                "broker b{} epoch {} fenced={:?} shutdown={:?}",
                b.broker_id, b.broker_epoch, b.fenced, b.in_controlled_shutdown
            ),
            MetadataRecord::UncleanElection(u) => format!(
                "UNCLEAN election {} leader {} epoch {} replaced isr {:?} elr {:?}",
                name(&u.topic_id, u.partition),
                u.leader,
                u.leader_epoch,
                u.replaced_isr,
                u.replaced_elr
            ),
            MetadataRecord::Topic(t) => format!("topic {}", t.name),
            MetadataRecord::Partition(p) => format!(
                "partition {} replicas {:?} leader {}",
                p.partition, p.replicas, p.leader
            ),
            other => format!("{other:?}"),
        })
        .collect();
    parts.join("; ")
}
