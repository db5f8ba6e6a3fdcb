//! The driver of this controller's raft node, on core 0: it owns the `QuorumNode`, feeds it
//! ticks, messages from peer voters and proposals, and carries out each round in the order
//! `QuorumReady` prescribes — send, persist (the metadata log, `quorum-state`, checkpoints),
//! send what needed durability, hand committed entries to the applier, advance.
//!
//! Inputs are queued and taken only between rounds (the node refuses input while a round is
//! outstanding). Applying committed metadata can take long (a CreateTopics of 2000 partitions
//! opens 2000 logs), so the driver never waits for it: it hands entries to the applier's queue
//! and goes on ticking, or heartbeats would stop and the other voters would elect another
//! leader.

use super::applier::{Applied, MetadataApplier};
use super::metadata_log::MetadataLog;
use super::transport::Transport;
use crate::clock::now_ms;
use bytes::Bytes;
use glommio::channels::local_channel::{self, LocalReceiver, LocalSender};
use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::rc::Rc;
use std::time::{Duration, Instant};
use weir_replication::quorum::{
    wire, Message, Proposal, ProposalResult, ProposeError, QuorumNode, QuorumStatus, StepError,
};
use weir_replication::types::NodeId;

/// Answers a proposal: `Some(index)` once committed and applied, `None` when its fate is unknown.
type ProposalReply = LocalSender<Result<Option<u64>, ProposeError>>;

/// What the driver takes between rounds.
enum Input {
    Message(Message),
    Propose(Bytes, ProposalReply),
    Unreachable(NodeId),
    Compact(u64, Bytes),
}

/// A `WeirRaft` frame refused before it reached the node.
#[derive(Debug, thiserror::Error)]
pub enum RaftReceiveError {
    #[error(transparent)]
    Wire(#[from] wire::WireError),
    #[error(transparent)]
    Step(#[from] StepError),
}

pub struct QuorumDriver {
    node: RefCell<QuorumNode>,
    log: Rc<MetadataLog>,
    transport: RefCell<Option<Rc<Transport>>>,
    applier: Rc<MetadataApplier>,
    inputs: RefCell<VecDeque<Input>>,
    wake: LocalSender<()>,
    waiting: RefCell<HashMap<Proposal, ProposalReply>>,
    tick: Duration,
    stopping: Cell<bool>,
    /// The latest status, refreshed every round (DescribeQuorum reads it).
    status: RefCell<QuorumStatus>,
}

impl QuorumDriver {
    /// Starts the driver's task. `peers` are the other voters' CONTROLLER listeners.
    pub fn start(
        node: QuorumNode,
        log: Rc<MetadataLog>,
        peers: &[(NodeId, String)],
        client: weir_net::client::ClientConfig,
        applier: Rc<MetadataApplier>,
        tick: Duration,
    ) -> Rc<Self> {
        let (wake, woken) = local_channel::new_bounded(1);
        let status = node.status();
        let driver = Rc::new(Self {
            node: RefCell::new(node),
            log,
            transport: RefCell::new(None),
            applier,
            inputs: RefCell::default(),
            wake,
            waiting: RefCell::default(),
            tick,
            stopping: Cell::new(false),
            status: RefCell::new(status),
        });
        let weak = Rc::downgrade(&driver);
        let unreachable: super::transport::Unreachable = Rc::new(move |peer| {
            if let Some(d) = weak.upgrade() {
                d.push(Input::Unreachable(peer));
            }
        });
        *driver.transport.borrow_mut() =
            Some(Rc::new(Transport::start(peers, client, unreachable)));
        glommio::spawn_local(driver.clone().run(woken)).detach();
        driver
    }

    fn push(&self, input: Input) {
        self.inputs.borrow_mut().push_back(input);
        let _ = self.wake.try_send(());
    }

    /// A `WeirRaft` frame from the network. A sender that is not a voter is refused at once
    /// (the caller closes its connection); everything else is queued for the node, whose own
    /// checks refuse malformed messages.
    pub fn receive(&self, frame: &Bytes) -> Result<(), RaftReceiveError> {
        let msg = wire::decode(frame)?;
        match wire::sender(&msg) {
            Some(from) if self.node.borrow().config().is_voter(from) => {
                self.push(Input::Message(msg));
                Ok(())
            }
            from => Err(RaftReceiveError::Step(StepError::NotAVoter {
                from_peer: msg.from,
                from,
            })),
        }
    }

    /// Proposes one entry (a batch of metadata records) and waits until it committed and every
    /// core applied it (`Some(index)`), or its fate became unknown (`None`: this node stopped
    /// leading first; a later leader may still commit it, as after Kafka's NOT_CONTROLLER).
    pub async fn propose(&self, data: Bytes) -> Result<Option<u64>, ProposeError> {
        let (tx, rx) = local_channel::new_bounded(1);
        self.push(Input::Propose(data, tx));
        rx.recv().await.unwrap_or(Ok(None))
    }

    /// Makes `data` (the image with every entry up to `index` applied) the latest checkpoint.
    pub fn compact(&self, index: u64, data: Bytes) {
        self.push(Input::Compact(index, data));
    }

    pub fn status(&self) -> QuorumStatus {
        self.status.borrow().clone()
    }

    pub fn leader(&self) -> Option<NodeId> {
        self.status.borrow().leader
    }

    pub fn stop(&self) {
        self.stopping.set(true);
        let _ = self.wake.try_send(());
    }

    async fn run(self: Rc<Self>, woken: LocalReceiver<()>) {
        let mut next_tick = Instant::now() + self.tick;
        while !self.stopping.get() {
            let left = next_tick.saturating_duration_since(Instant::now());
            futures_lite::future::or(
                async {
                    woken.recv().await;
                },
                glommio::timer::sleep(left),
            )
            .await;
            if Instant::now() >= next_tick {
                next_tick += self.tick;
                if next_tick < Instant::now() {
                    // A stall (a slow fsync): do not replay the missed ticks in a burst.
                    next_tick = Instant::now() + self.tick;
                }
                if let Err(e) = self.node.borrow_mut().tick() {
                    tracing::error!(error = %e, "quorum tick refused");
                }
            }
            self.take_inputs();
            if let Err(e) = self.rounds().await {
                // The log or the quorum-state file could not be written: this voter can no
                // longer promise anything. Kafka halts the process on metadata log errors.
                tracing::error!(error = %e, "the metadata log failed; this controller stops taking part in the quorum");
                self.stopping.set(true);
                self.applier.failed(e.to_string());
            }
            *self.status.borrow_mut() = self.node.borrow().status();
        }
        for (_, tx) in self.waiting.borrow_mut().drain() {
            let _ = tx.try_send(Ok(None));
        }
    }

    fn take_inputs(&self) {
        let inputs: Vec<Input> = self.inputs.borrow_mut().drain(..).collect();
        let mut node = self.node.borrow_mut();
        for input in inputs {
            match input {
                Input::Message(m) => {
                    if let Err(e) = node.step(m) {
                        tracing::debug!(error = %e, "raft message refused");
                    }
                }
                Input::Propose(data, tx) => match node.propose(data) {
                    Ok(p) => {
                        self.waiting.borrow_mut().insert(p, tx);
                    }
                    Err(e) => {
                        let _ = tx.try_send(Err(e));
                    }
                },
                Input::Unreachable(peer) => node.report_unreachable(peer),
                Input::Compact(index, data) => match node.compact(index, data) {
                    Ok(snap) => {
                        let log = self.log.clone();
                        // Written in the background: the checkpoint only shortens the log.
                        glommio::spawn_local(async move {
                            let written = match log.write_checkpoint(&snap).await {
                                Ok(()) => log.compact_to(snap.index).await,
                                Err(e) => Err(e),
                            };
                            match written {
                                Ok(()) => tracing::info!(
                                    index = snap.index,
                                    term = snap.term,
                                    bytes = snap.data.len(),
                                    "metadata checkpoint written"
                                ),
                                Err(e) => tracing::error!(error = %e, "metadata checkpoint failed"),
                            }
                        })
                        .detach();
                    }
                    Err(e) => tracing::debug!(error = %e, "metadata compaction skipped"),
                },
            }
        }
    }

    /// Carries out every round the node has, in `QuorumReady`'s order.
    async fn rounds(&self) -> Result<(), super::metadata_log::MetadataLogError> {
        loop {
            let Some(rd) = self.node.borrow_mut().ready() else {
                return Ok(());
            };
            let transport = self.transport.borrow().clone().expect("started");
            for m in rd.messages.iter().cloned() {
                transport.send(m);
            }
            if rd.has_persistence() {
                self.log.persist(&rd, now_ms()).await?;
            }
            for m in rd.persisted_messages.iter().cloned() {
                transport.send(m);
            }
            if let Some(snap) = &rd.snapshot {
                self.applier.push(Applied::Snapshot(snap.clone()));
            }
            if !rd.committed.is_empty() || rd.applied_index.is_some() {
                self.applier.push(Applied::Entries {
                    entries: rd.committed.clone(),
                    applied_index: rd.applied_index,
                });
            }
            if let Some(info) = rd.leader {
                self.applier.push(Applied::Leader(info));
            }
            if let Some(l) = rd.leadership {
                self.applier.push(Applied::Leadership(l));
            }
            for outcome in &rd.proposals {
                if let Some(tx) = self.waiting.borrow_mut().remove(&outcome.proposal) {
                    match outcome.result {
                        // Answered once applied, so the proposer's next decision sees it.
                        ProposalResult::Committed => {
                            let applier = self.applier.clone();
                            let index = outcome.proposal.index;
                            glommio::spawn_local(async move {
                                applier.wait_applied(index).await;
                                let _ = tx.try_send(Ok(Some(index)));
                            })
                            .detach();
                        }
                        ProposalResult::Indefinite => {
                            let _ = tx.try_send(Ok(None));
                        }
                    }
                }
            }
            if let Err(e) = self.node.borrow_mut().advance() {
                tracing::error!(error = %e, "quorum advance without a round");
            }
        }
    }
}
