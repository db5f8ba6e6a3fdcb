//! The active controller's service, on core 0 of a controller: it runs
//! `replication::controller::ControllerState` one operation at a time — decide against the
//! committed image, propose the records as one raft entry, wait until they are committed and
//! applied, answer — and its timers (broker sessions) while this node leads the quorum.
//!
//! Requests come from brokers over the private `WeirController` api (or straight from this
//! node's own broker side): registrations, heartbeats, ISR changes, and the topic
//! administration brokers forward for their clients.

use super::applier::MetadataApplier;
use super::quorum::QuorumDriver;
use crate::clock::now_ms;
use bytes::Bytes;
use glommio::sync::Semaphore;
use std::cell::{Cell, RefCell};
use std::rc::{Rc, Weak};
use std::time::Duration;
use weir_replication::controller::wire::ControllerResponse;
use weir_replication::controller::{
    ControllerError, ControllerReply, ControllerRequest, ControllerState,
};
use weir_replication::metadata::{encode_batch, MetadataImage, MetadataRecord};
use weir_replication::types::NO_NODE;

/// How often the active controller looks at its timers (Kafka's heartbeat manager checks
/// sessions continuously; a tenth of a second keeps fencing within 0.1 s of the session timeout).
const TICK: Duration = Duration::from_millis(100);

pub struct ControllerService {
    state: RefCell<ControllerState>,
    quorum: RefCell<Weak<QuorumDriver>>,
    applier: Rc<MetadataApplier>,
    /// One operation at a time: each decides against the image its predecessor's records made.
    turn: Semaphore,
    /// The term this node leads and is active in.
    active_term: Cell<Option<u64>>,
    /// `leader.imbalance.check.interval.seconds` when `auto.leader.rebalance.enable` is on.
    rebalance_interval: Option<Duration>,
}

impl ControllerService {
    /// `rebalance_interval`: how often leadership is moved back to preferred replicas (None:
    /// never, `auto.leader.rebalance.enable=false`).
    pub fn new(
        state: ControllerState,
        applier: Rc<MetadataApplier>,
        rebalance_interval: Option<Duration>,
    ) -> Rc<Self> {
        let service = Rc::new(Self {
            state: RefCell::new(state),
            quorum: RefCell::new(Weak::new()),
            applier: applier.clone(),
            turn: Semaphore::new(1),
            active_term: Cell::new(None),
            rebalance_interval,
        });
        applier.set_controller(&service);
        service
    }

    pub fn set_quorum(&self, quorum: &Rc<QuorumDriver>) {
        *self.quorum.borrow_mut() = Rc::downgrade(quorum);
    }

    pub fn is_active(&self) -> bool {
        self.active_term.get().is_some()
    }

    /// The term this node is the active controller in, if it is.
    pub fn active_term(&self) -> Option<u64> {
        self.active_term.get()
    }

    pub fn replay(&self, index: u64, records: &[MetadataRecord]) {
        self.state.borrow_mut().replay(index as i64, records);
    }

    pub fn restore(&self, image: MetadataImage, index: u64) {
        self.state.borrow_mut().restore(image, index as i64);
    }

    pub fn with_image<R>(&self, f: impl FnOnce(&MetadataImage) -> R) -> R {
        f(self.state.borrow().image())
    }

    /// This node leads `term` and has applied everything committed before it.
    pub fn activate(self: &Rc<Self>, term: u64) {
        self.state.borrow_mut().activate(now_ms());
        self.active_term.set(Some(term));
        tracing::info!(term, "this node is the active controller");
        glommio::spawn_local(self.clone().timers(term)).detach();
        if let Some(interval) = self.rebalance_interval {
            glommio::spawn_local(self.clone().rebalancer(term, interval)).detach();
        }
    }

    pub fn resign(&self, term: u64) {
        if self.active_term.get().is_some() {
            tracing::info!(term, "this node is no longer the active controller");
        }
        self.active_term.set(None);
        self.state.borrow_mut().deactivate();
    }

    /// Serves one request. Answered only after its records (if any) are committed and applied
    /// on every core of this node.
    pub async fn handle(&self, request: ControllerRequest) -> ControllerResponse {
        let not_controller = || ControllerResponse::NotController {
            leader: self.applier.known_leader().unwrap_or(NO_NODE),
        };
        let Some(term) = self.active_term.get() else {
            return not_controller();
        };
        let Ok(_turn) = self.turn.acquire_permit(1).await else {
            return not_controller();
        };
        if self.active_term.get() != Some(term) {
            return not_controller();
        }
        let (reply, records) = self.state.borrow_mut().handle(request.clone(), now_ms());
        log_refused_broker(&request, &reply);
        match self.commit(records).await {
            Ok(offset) => ControllerResponse::Done {
                metadata_offset: offset,
                reply,
            },
            Err(CommitFailure::NotController) => not_controller(),
            Err(CommitFailure::Refused(e)) => ControllerResponse::Done {
                metadata_offset: self.applier.applied_index() as i64,
                reply: ControllerReply::refuse(&request, e),
            },
        }
    }

    /// Proposes `records` as one entry and waits until it is applied; the metadata offset that
    /// holds them (or the current one when there is nothing to write).
    async fn commit(&self, records: Vec<MetadataRecord>) -> Result<i64, CommitFailure> {
        if records.is_empty() {
            return Ok(self.applier.applied_index() as i64);
        }
        let Some(quorum) = self.quorum.borrow().upgrade() else {
            return Err(CommitFailure::NotController);
        };
        match quorum.propose(Bytes::from(encode_batch(&records))).await {
            Ok(Some(index)) => Ok(index as i64),
            Ok(None) => Err(CommitFailure::NotController),
            Err(weir_replication::quorum::ProposeError::NotLeader { .. })
            | Err(weir_replication::quorum::ProposeError::NotYetActive { .. }) => {
                Err(CommitFailure::NotController)
            }
            Err(e) => {
                tracing::error!(error = %e, records = records.len(), "metadata proposal refused");
                Err(CommitFailure::Refused(ControllerError::UnknownServerError(
                    e.to_string(),
                )))
            }
        }
    }

    /// Session expiry and the elections it causes, while active in `term`.
    async fn timers(self: Rc<Self>, term: u64) {
        while self.active_term.get() == Some(term) {
            glommio::timer::sleep(TICK).await;
            loop {
                let Ok(_turn) = self.turn.acquire_permit(1).await else {
                    return;
                };
                if self.active_term.get() != Some(term) {
                    return;
                }
                let records = self.state.borrow_mut().tick(now_ms());
                if records.is_empty() {
                    break;
                }
                // Each tick decides one thing (one broker fenced); the next sees its records.
                if self.commit(records).await.is_err() {
                    break;
                }
            }
        }
    }
}

impl ControllerService {
    /// Leader rebalancing while active in `term` (Kafka's `auto.leader.rebalance.enable`):
    /// every `interval`, preferred elections where the preferred replica is back in the ISR;
    /// a round that hit the per-round bound goes on at once once its records committed.
    async fn rebalancer(self: Rc<Self>, term: u64, interval: Duration) {
        while self.active_term.get() == Some(term) {
            glommio::timer::sleep(interval).await;
            loop {
                let Ok(_turn) = self.turn.acquire_permit(1).await else {
                    return;
                };
                if self.active_term.get() != Some(term) {
                    return;
                }
                let (records, more) = self.state.borrow().balance_leaders(now_ms());
                if records.is_empty() {
                    break;
                }
                tracing::info!(
                    records = records.len(),
                    more,
                    "leader rebalance: moving leadership back to preferred replicas"
                );
                if self.commit(records).await.is_err() || !more {
                    break;
                }
            }
        }
    }
}

/// A broker the controller refuses (a duplicate `node.id`, a stale epoch, another cluster) is
/// logged here too, not only by the broker: the operator of the controller sees who knocks.
fn log_refused_broker(request: &ControllerRequest, reply: &ControllerReply) {
    match (request, reply) {
        (ControllerRequest::RegisterBroker(r), ControllerReply::RegisterBroker(Err(e))) => {
            tracing::warn!(broker = r.broker_id, error = %e, "broker registration refused");
        }
        (ControllerRequest::BrokerHeartbeat(h), ControllerReply::BrokerHeartbeat(Err(e))) => {
            tracing::warn!(broker = h.broker_id, epoch = h.broker_epoch, error = %e, "broker heartbeat refused");
        }
        _ => {}
    }
}

enum CommitFailure {
    NotController,
    Refused(ControllerError),
}
