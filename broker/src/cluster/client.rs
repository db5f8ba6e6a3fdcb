//! How a broker reaches the active controller: over the private `WeirController` api to the
//! CONTROLLER listener of whichever voter leads (straight to the local service when that is
//! this node), following `NotController` answers and lost connections to the next candidate
//! until the request's deadline.

use super::applier::MetadataApplier;
use super::controller::ControllerService;
use bytes::Bytes;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::time::{Duration, Instant};
use weir_net::client::{BackoffConfig, ClientConfig, Reconnecting};
use weir_net::WeirApi;
use weir_replication::controller::wire::{self, ControllerResponse};
use weir_replication::controller::{ControllerError, ControllerReply, ControllerRequest};
use weir_replication::types::NodeId;

/// Pause before trying again when no controller answered (an election is usually under way).
const RETRY_BACKOFF: Duration = Duration::from_millis(50);

/// How often a request in flight to a controller checks whether the quorum elected another.
const LEADER_CHECK: Duration = Duration::from_millis(100);

/// How long a voter that could not be reached is passed over when choosing whom to ask (it is
/// still asked when it is the only one, or named the leader): a dead controller's reconnect
/// backoff must not delay reaching its successor.
const UNREACHABLE_FOR: Duration = Duration::from_millis(1000);

pub struct ControllerClient {
    node_id: NodeId,
    /// Each voter and its CONTROLLER listener (`host:port`).
    voters: Vec<(NodeId, String)>,
    local: RefCell<Option<Rc<ControllerService>>>,
    conns: RefCell<HashMap<NodeId, Rc<Reconnecting>>>,
    /// The controller that answered last, tried first.
    active: Cell<Option<NodeId>>,
    applier: Rc<MetadataApplier>,
    config: ClientConfig,
    /// The next voter to try when no hint is known.
    next: Cell<usize>,
    /// Voters that could not be reached, until when they are passed over.
    unreachable: RefCell<HashMap<NodeId, Instant>>,
}

impl ControllerClient {
    pub fn new(
        node_id: NodeId,
        voters: Vec<(NodeId, String)>,
        applier: Rc<MetadataApplier>,
        config: ClientConfig,
    ) -> Rc<Self> {
        Rc::new(Self {
            node_id,
            voters,
            local: RefCell::new(None),
            conns: RefCell::default(),
            active: Cell::new(None),
            applier,
            config,
            next: Cell::new(0),
            unreachable: RefCell::default(),
        })
    }

    pub fn set_local(&self, service: &Rc<ControllerService>) {
        *self.local.borrow_mut() = Some(service.clone());
    }

    /// The active controller as far as this broker knows.
    pub fn active_controller(&self) -> Option<NodeId> {
        self.active.get().or_else(|| self.applier.known_leader())
    }

    /// Sends `request` to the active controller, trying until `timeout` passes. The reply and
    /// the metadata offset its records committed at; past the deadline every item is refused
    /// with NOT_CONTROLLER, which clients retry as they retry Kafka's.
    pub async fn call(
        &self,
        request: ControllerRequest,
        timeout: Duration,
    ) -> (i64, ControllerReply) {
        let deadline = Instant::now() + timeout;
        let body = Bytes::from(wire::encode_request(&request));
        let mut last_error;
        loop {
            let target = self.candidate();
            let answer = self.call_one(target, &request, &body, deadline).await;
            match answer {
                Ok(ControllerResponse::Done {
                    metadata_offset,
                    reply,
                }) => {
                    self.active.set(Some(target));
                    return (metadata_offset, reply);
                }
                Ok(ControllerResponse::NotController { leader }) => {
                    // Follow the hint only to another voter that answers; otherwise an
                    // election is under way: wait a little before asking again.
                    let hint = (leader >= 0 && leader != target && self.reachable(leader))
                        .then_some(leader);
                    self.active.set(hint);
                    if hint.is_none() {
                        self.advance_candidate(target);
                        glommio::timer::sleep(RETRY_BACKOFF).await;
                    }
                    last_error = format!("node {target} is not the active controller");
                }
                Err(e) => {
                    self.active.set(None);
                    self.mark_unreachable(target);
                    self.advance_candidate(target);
                    if !self.voters.iter().any(|(id, _)| self.reachable(*id)) {
                        glommio::timer::sleep(RETRY_BACKOFF).await;
                    }
                    last_error = format!("controller {target}: {e}");
                }
            }
            if Instant::now() >= deadline {
                return (
                    -1,
                    ControllerReply::refuse(
                        &request,
                        ControllerError::NotController(format!(
                            "no active controller answered within {timeout:?} ({last_error})"
                        )),
                    ),
                );
            }
            // A local answer never waits: never let this loop hold the core.
            futures_lite::future::yield_now().await;
        }
    }

    /// [`Self::call`], then waits (bounded by what is left of `timeout`) until this node has
    /// applied the metadata the answer committed, so a client answered now sees it here.
    pub async fn call_and_wait(
        &self,
        request: ControllerRequest,
        timeout: Duration,
    ) -> ControllerReply {
        let deadline = Instant::now() + timeout;
        let (offset, reply) = self.call(request, timeout).await;
        if offset > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            futures_lite::future::or(self.applier.wait_applied(offset as u64), async {
                glommio::timer::sleep(left).await;
            })
            .await;
        }
        reply
    }

    /// Sends a private request to the active controller (following hints), once per
    /// candidate until one answers at the transport level; the answer's body.
    pub async fn call_raw_active(&self, api: WeirApi, body: Bytes) -> Result<Bytes, String> {
        let target = self.candidate();
        let result = async {
            let conn = self.connection(target)?;
            let c = conn.connection().await.map_err(|e| e.to_string())?;
            c.call_raw(api, 0, body).await.map_err(|e| e.to_string())
        }
        .await;
        if result.is_err() {
            self.active.set(None);
            self.mark_unreachable(target);
            self.advance_candidate(target);
        }
        result
    }

    /// A controller said who leads (or that it does not know: `None`).
    pub fn hint(&self, leader: Option<NodeId>) {
        let current = self.candidate();
        self.active.set(leader);
        if leader.is_none() {
            self.advance_candidate(current);
        }
    }

    fn reachable(&self, id: NodeId) -> bool {
        self.unreachable
            .borrow()
            .get(&id)
            .is_none_or(|until| *until <= Instant::now())
    }

    fn candidate(&self) -> NodeId {
        if let Some(a) = self.active_controller() {
            if self.voters.iter().any(|(id, _)| *id == a) && self.reachable(a) {
                return a;
            }
        }
        let n = self.voters.len();
        let start = self.next.get();
        (0..n)
            .map(|i| self.voters[(start + i) % n].0)
            .find(|id| self.reachable(*id))
            .unwrap_or(self.voters[start % n].0)
    }

    fn mark_unreachable(&self, id: NodeId) {
        if id != self.node_id {
            self.unreachable
                .borrow_mut()
                .insert(id, Instant::now() + UNREACHABLE_FOR);
        }
    }

    fn advance_candidate(&self, failed: NodeId) {
        if let Some(i) = self.voters.iter().position(|(id, _)| *id == failed) {
            self.next.set(i + 1);
        }
    }

    /// One attempt at `target`. A sent request is waited for until the deadline (at most
    /// `controller.socket.timeout.ms`, the transport's timeout) unless the quorum elects
    /// someone else meanwhile: only then is it worth asking again elsewhere.
    async fn call_one(
        &self,
        target: NodeId,
        request: &ControllerRequest,
        body: &Bytes,
        deadline: Instant,
    ) -> Result<ControllerResponse, String> {
        if target == self.node_id {
            let local = self.local.borrow().clone();
            return match local {
                Some(service) => Ok(service.handle(request.clone()).await),
                None => Err("this node is not a controller".into()),
            };
        }
        let conn = self.connection(target)?;
        let c = conn.connection().await.map_err(|e| e.to_string())?;
        let call = async {
            c.call_raw(WeirApi::Controller, 0, body.clone())
                .await
                .map_err(|e| e.to_string())
        };
        let give_up = async {
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(format!("controller {target} did not answer in time"));
                }
                glommio::timer::sleep(left.min(LEADER_CHECK)).await;
                if let Some(leader) = self.applier.known_leader() {
                    if leader != target {
                        return Err(format!(
                            "controller {target} lost the leadership to {leader} while the request was in flight"
                        ));
                    }
                }
            }
        };
        let answer = futures_lite::future::or(call, give_up).await?;
        wire::decode_response(&answer).map_err(|e| e.to_string())
    }

    fn connection(&self, target: NodeId) -> Result<Rc<Reconnecting>, String> {
        if let Some(c) = self.conns.borrow().get(&target) {
            return Ok(c.clone());
        }
        let addr = self
            .voters
            .iter()
            .find(|(id, _)| *id == target)
            .map(|(_, a)| a.clone())
            .ok_or_else(|| format!("node {target} is not a voter"))?;
        let c = Rc::new(Reconnecting::new(
            addr,
            self.config.clone(),
            BackoffConfig::default(),
        ));
        self.conns.borrow_mut().insert(target, c.clone());
        Ok(c)
    }
}
