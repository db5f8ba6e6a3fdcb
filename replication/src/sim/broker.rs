//! A simulated broker: its disk (logs and the clean-shutdown marker, what survives a crash),
//! its metadata image, its lifecycle with the controller (Weir's `cluster/lifecycle.rs`:
//! register with a fresh incarnation and the epoch of its last clean shutdown, heartbeat,
//! register again when the controller forgot it, controlled shutdown), its controller client
//! (follows NOT_CONTROLLER hints, passes over a controller that does not answer), the metadata
//! fetch of a broker-only node, and its partitions (`replica`). Partitions act only once the
//! image holds this incarnation's registration: an image replayed after a restart is stale
//! until then.

use super::controller::decode_entry;
use super::env::Env;
use super::log::SimLog;
use super::msg::{CallAnswer, MetadataAnswer, Msg, Tp};
use super::replica::{Propose, Replica, View};
use crate::controller::{
    AlterPartitionItem, AlterPartitionRequest, AlterPartitionTopic, BrokerHeartbeat,
    BrokerRegistration, ControllerError, ControllerReply, ControllerRequest, IsrMember,
};
use crate::metadata::image::MetadataImage;
use crate::metadata::records::Endpoint;
use crate::partition::leader::{ProposalResult, Refusal};
use crate::partition::PartitionState;
use crate::types::{BrokerEpoch, LeaderEpoch, NodeId};
use bytes::Bytes;
use std::collections::BTreeMap;

/// What survives a broker's crash.
#[derive(Debug, Default)]
pub struct Disk {
    pub logs: BTreeMap<Tp, SimLog>,
    /// The broker epoch written with the clean-shutdown marker at the last clean stop; a
    /// start takes it (KIP-966: a crash after that start leaves none).
    pub clean_epoch: Option<BrokerEpoch>,
}

/// Why a controller call was made: what to do with its answer.
#[derive(Debug, Clone)]
enum Purpose {
    Register,
    Heartbeat,
    AlterPartition { tp: Tp, leader_epoch: LeaderEpoch },
}

#[derive(Debug)]
struct Call {
    purpose: Purpose,
    request: ControllerRequest,
    target: NodeId,
    sent_ms: i64,
}

pub struct Broker {
    pub id: NodeId,
    /// Which start of this node this is, for the oracle (a restarted node is another leader).
    pub incarnation: u64,
    incarnation_id: [u8; 16],
    previous_epoch: BrokerEpoch,
    pub epoch: Option<BrokerEpoch>,
    /// The epoch of the latest registration, kept while registering again.
    last_epoch: BrokerEpoch,
    pub disk: Disk,
    pub image: MetadataImage,
    /// The metadata index applied to the image.
    pub applied: u64,
    /// The image holds this incarnation's registration: partitions may act.
    pub caught_up: bool,
    pub fenced: bool,
    pub want_shutdown: Option<i64>,
    /// The controller let this broker go after its controlled shutdown.
    pub released: bool,
    pub replicas: BTreeMap<Tp, Replica>,
    calls: BTreeMap<u64, Call>,
    next_heartbeat_ms: i64,
    voters: Vec<NodeId>,
    is_voter: bool,
    hint: Option<NodeId>,
    rotation: usize,
    metadata_fetch: Option<(u64, NodeId, i64)>,
    next_metadata_fetch_ms: i64,
    next_flush_ms: i64,
    next_checkpoint_ms: i64,
}

impl Broker {
    pub fn start(
        id: NodeId,
        incarnation: u64,
        mut disk: Disk,
        voters: &[NodeId],
        env: &mut Env,
    ) -> Self {
        let previous_epoch = disk.clean_epoch.take().unwrap_or(-1);
        for log in disk.logs.values_mut() {
            log.open();
        }
        let mut incarnation_id = [0u8; 16];
        incarnation_id[..8].copy_from_slice(&incarnation.to_be_bytes());
        incarnation_id[8..12].copy_from_slice(&id.to_be_bytes());
        env.log(
            &format!("b{id}"),
            format!(
                "starts (start {incarnation}, previous clean epoch {previous_epoch}); logs: {}",
                disk.logs
                    .iter()
                    .map(|(tp, l)| format!("{tp} end {} hw {}", l.end(), l.high_watermark()))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        );
        let now = env.now_ms;
        let mut b = Self {
            id,
            incarnation,
            incarnation_id,
            previous_epoch,
            epoch: None,
            last_epoch: -1,
            disk,
            image: MetadataImage::default(),
            applied: 0,
            caught_up: false,
            fenced: true,
            want_shutdown: None,
            released: false,
            replicas: BTreeMap::new(),
            calls: BTreeMap::new(),
            next_heartbeat_ms: now,
            voters: voters.to_vec(),
            is_voter: voters.contains(&id),
            hint: None,
            rotation: id as usize,
            metadata_fetch: None,
            next_metadata_fetch_ms: now,
            next_flush_ms: now + env.params.flush_interval_ms.unwrap_or(0),
            next_checkpoint_ms: now + env.params.checkpoint_interval_ms,
        };
        b.register(env, None);
        b
    }

    fn who(&self) -> String {
        format!("b{}", self.id)
    }

    // ---- the controller client ----

    fn target(&mut self, quorum_leader: Option<NodeId>) -> NodeId {
        if let Some(l) = quorum_leader.filter(|_| self.is_voter).or(self.hint) {
            return l;
        }
        self.rotation += 1;
        self.voters[self.rotation % self.voters.len()]
    }

    fn call(
        &mut self,
        purpose: Purpose,
        request: ControllerRequest,
        quorum_leader: Option<NodeId>,
        env: &mut Env,
    ) {
        let id = env.next_id();
        let target = self.target(quorum_leader);
        env.send(
            self.id,
            target,
            Msg::Call {
                id,
                request: request.clone(),
            },
        );
        self.calls.insert(
            id,
            Call {
                purpose,
                request,
                target,
                sent_ms: env.now_ms,
            },
        );
    }

    /// Sends a call again (to the hinted or next controller), rebuilding what must be current.
    fn resend(&mut self, call: Call, quorum_leader: Option<NodeId>, env: &mut Env) {
        let request = match call.purpose {
            Purpose::Heartbeat => match self.heartbeat_request() {
                Some(r) => r,
                None => return,
            },
            _ => call.request,
        };
        self.call(call.purpose, request, quorum_leader, env);
    }

    fn register(&mut self, env: &mut Env, quorum_leader: Option<NodeId>) {
        let request = ControllerRequest::RegisterBroker(BrokerRegistration {
            broker_id: self.id,
            cluster_id: super::world::CLUSTER_ID.into(),
            incarnation_id: self.incarnation_id,
            listeners: vec![Endpoint {
                listener: "PLAINTEXT".into(),
                host: format!("b{}", self.id),
                port: 9092,
                security_protocol: 0,
            }],
            rack: None,
            previous_broker_epoch: self.previous_epoch,
        });
        self.call(Purpose::Register, request, quorum_leader, env);
    }

    fn heartbeat_request(&self) -> Option<ControllerRequest> {
        Some(ControllerRequest::BrokerHeartbeat(BrokerHeartbeat {
            broker_id: self.id,
            broker_epoch: self.epoch?,
            current_metadata_offset: self.applied as i64,
            want_fence: false,
            want_shutdown: self.want_shutdown.is_some(),
        }))
    }

    fn on_call_answer(&mut self, id: u64, answer: CallAnswer, env: &mut Env) {
        let Some(call) = self.calls.remove(&id) else {
            return;
        };
        let reply = match answer {
            CallAnswer::NotController { leader } => {
                self.hint = leader.filter(|l| *l != call.target);
                // The quorum leader this node knows of may be the one that refused: ask the
                // hint, or the next voter, on the next poll.
                let retry = Call {
                    sent_ms: i64::MIN,
                    ..call
                };
                self.calls.insert(id, retry);
                return;
            }
            CallAnswer::Done(reply) => reply,
        };
        let who = self.who();
        match (call.purpose, reply) {
            (Purpose::Register, ControllerReply::RegisterBroker(r)) => match r {
                Ok(epoch) => {
                    env.log(&who, format!("registered with epoch {epoch}"));
                    self.epoch = Some(epoch);
                    self.last_epoch = epoch;
                    self.next_heartbeat_ms = env.now_ms;
                }
                Err(e) => {
                    env.log(&who, format!("registration refused: {e}"));
                    self.next_heartbeat_ms = env.now_ms + env.params.fast_heartbeat_ms;
                }
            },
            (Purpose::Heartbeat, ControllerReply::BrokerHeartbeat(r)) => match r {
                Ok(r) => {
                    if self.fenced != r.is_fenced {
                        env.log(&who, format!("fenced: {}", r.is_fenced));
                    }
                    self.fenced = r.is_fenced;
                    if self.want_shutdown.is_some() && r.should_shutdown && !self.released {
                        env.log(&who, "controlled shutdown released by the controller");
                        self.released = true;
                    }
                    let fast = r.is_fenced || self.want_shutdown.is_some();
                    self.next_heartbeat_ms = env.now_ms
                        + if fast {
                            env.params.fast_heartbeat_ms
                        } else {
                            env.params.heartbeat_ms
                        };
                }
                Err(
                    e @ (ControllerError::StaleBrokerEpoch(_)
                    | ControllerError::BrokerIdNotRegistered(_)),
                ) => {
                    env.log(&who, format!("heartbeat refused ({e}): registering again"));
                    self.epoch = None;
                    self.fenced = true;
                    self.next_heartbeat_ms = env.now_ms;
                }
                Err(e) => {
                    env.log(&who, format!("heartbeat refused: {e}"));
                    self.next_heartbeat_ms = env.now_ms + env.params.fast_heartbeat_ms;
                }
            },
            (Purpose::AlterPartition { tp, leader_epoch }, ControllerReply::AlterPartition(r)) => {
                let result = match r {
                    Err(_) => ProposalResult::Refused {
                        kind: Refusal::Retry,
                    },
                    Ok(topics) => {
                        let item = topics
                            .iter()
                            .flat_map(|t| t.partitions.iter())
                            .find(|p| p.partition == tp.partition)
                            .expect("the answer has the partition asked for");
                        match &item.result {
                            Ok(s) => {
                                let replicas = self
                                    .replicas
                                    .get(&tp)
                                    .and_then(|r| match &r.role {
                                        super::replica::Role::Leader(l) => {
                                            Some(l.state.state().replicas.clone())
                                        }
                                        _ => None,
                                    })
                                    .unwrap_or_default();
                                ProposalResult::Committed(PartitionState {
                                    leader: s.leader,
                                    leader_epoch: s.leader_epoch,
                                    partition_epoch: s.partition_epoch,
                                    replicas,
                                    isr: s.isr.clone(),
                                })
                            }
                            Err(e) => ProposalResult::Refused { kind: refusal(e) },
                        }
                    }
                };
                self.with_replica(tp, env, |r, log, view, env| {
                    r.on_proposal_result(log, view, leader_epoch, result, env)
                });
            }
            (purpose, reply) => panic!("{purpose:?} answered with {reply:?}"),
        }
    }

    /// Sends an ISR proposal a leader made.
    fn propose(&mut self, p: Propose, quorum_leader: Option<NodeId>, env: &mut Env) {
        let Some(topic) = self.image.topic(&p.tp.topic_name()) else {
            return;
        };
        let request = ControllerRequest::AlterPartition(AlterPartitionRequest {
            broker_id: self.id,
            broker_epoch: self.epoch.unwrap_or(self.last_epoch),
            topics: vec![AlterPartitionTopic {
                topic_id: topic.id,
                partitions: vec![AlterPartitionItem {
                    partition: p.tp.partition,
                    leader_epoch: p.proposal.leader_epoch,
                    partition_epoch: p.proposal.partition_epoch,
                    new_isr: p
                        .proposal
                        .isr
                        .iter()
                        .map(|(id, epoch)| IsrMember {
                            broker_id: *id,
                            broker_epoch: *epoch,
                        })
                        .collect(),
                }],
            }],
        });
        let purpose = Purpose::AlterPartition {
            tp: p.tp,
            leader_epoch: p.leader_epoch,
        };
        self.call(purpose, request, quorum_leader, env);
    }

    // ---- metadata ----

    /// Applies committed entries after `self.applied`; `applied_to` is where they bring the
    /// image (empty entries included) when all of them are applied.
    pub fn apply_entries(
        &mut self,
        entries: &[(u64, Bytes)],
        applied_to: u64,
        quorum_leader: Option<NodeId>,
        env: &mut Env,
    ) {
        let from = entries.partition_point(|(i, _)| *i <= self.applied);
        for (index, data) in &entries[from..] {
            let (_, records) = decode_entry(data);
            for r in &records {
                self.image.apply(r);
            }
            self.applied = *index;
            if !self.caught_up {
                let me = self.image.broker(self.id);
                if me.is_some_and(|b| b.incarnation_id == self.incarnation_id) {
                    self.caught_up = true;
                    env.log(
                        &self.who(),
                        format!("caught up with its registration at {index}"),
                    );
                }
            }
            if self.caught_up {
                self.reconcile(quorum_leader, env);
            }
        }
        self.applied = self.applied.max(applied_to);
    }

    /// Every partition of the image this broker is a replica of takes the role the image says.
    fn reconcile(&mut self, quorum_leader: Option<NodeId>, env: &mut Env) {
        let mut mine = Vec::new();
        for topic in self.image.topics() {
            let idx: u8 = topic.name[1..].parse().expect("simulator topics are t<n>");
            for (p, meta) in topic.partitions.iter().enumerate() {
                if meta.replicas.contains(&self.id) {
                    mine.push(Tp {
                        topic: idx,
                        partition: p as i32,
                    });
                }
            }
        }
        for tp in mine {
            self.disk.logs.entry(tp).or_default();
            self.replicas.entry(tp).or_insert_with(|| Replica::new(tp));
            let propose =
                self.with_replica(tp, env, |r, log, view, env| r.reconcile(log, view, env));
            if let Some(p) = propose {
                self.propose(p, quorum_leader, env);
            }
        }
    }

    /// Runs `f` on one partition with its log and this broker's view.
    fn with_replica<R>(
        &mut self,
        tp: Tp,
        env: &mut Env,
        f: impl FnOnce(&mut Replica, &mut SimLog, &View, &mut Env) -> Option<R>,
    ) -> Option<R> {
        let view = View {
            image: &self.image,
            me: self.id,
            incarnation: self.incarnation,
            broker_epoch: self.epoch.unwrap_or(self.last_epoch),
        };
        let replica = self.replicas.get_mut(&tp)?;
        let log = self.disk.logs.get_mut(&tp)?;
        f(replica, log, &view, env)
    }

    // ---- messages and timers ----

    pub fn on_message(
        &mut self,
        from: NodeId,
        msg: Msg,
        quorum_leader: Option<NodeId>,
        env: &mut Env,
    ) {
        let propose = match msg {
            Msg::Fetch(req) => {
                if !self.caught_up {
                    return;
                }
                let tp = req.tp;
                if !self.replicas.contains_key(&tp) {
                    return;
                }
                self.with_replica(tp, env, |r, log, view, env| {
                    r.serve_fetch(log, view, req, env)
                })
            }
            Msg::FetchAnswer(resp) => {
                let tp = resp.tp;
                self.with_replica(tp, env, |r, log, view, env| {
                    r.on_fetch_answer(log, view, resp, env);
                    None::<Propose>
                })
            }
            Msg::Produce(req) => {
                let tp = req.tp;
                if !self.caught_up || !self.replicas.contains_key(&tp) {
                    env.send(
                        self.id,
                        from,
                        Msg::ProduceAnswer(super::msg::ProduceResponse {
                            id: req.id,
                            result: Err(super::msg::ProduceError::NotLeaderOrFollower),
                        }),
                    );
                    return;
                }
                self.with_replica(tp, env, |r, log, view, env| {
                    r.on_produce(log, view, from, req, env)
                })
            }
            Msg::CallAnswer { id, answer } => {
                self.on_call_answer(id, answer, env);
                None
            }
            Msg::MetadataAnswer { id, answer } => {
                if self.metadata_fetch.is_some_and(|(mid, _, _)| mid == id) {
                    self.metadata_fetch = None;
                    match answer {
                        MetadataAnswer::Entries { entries, applied } => {
                            let more = !entries.is_empty();
                            self.apply_entries(&entries, applied, quorum_leader, env);
                            self.next_metadata_fetch_ms =
                                env.now_ms + if more { 0 } else { super::world::TICK_MS * 2 };
                        }
                        MetadataAnswer::NotController { leader } => {
                            self.hint = leader;
                            self.next_metadata_fetch_ms = env.now_ms + super::world::TICK_MS;
                        }
                    }
                }
                None
            }
            Msg::ProduceAnswer(_) | Msg::Call { .. } | Msg::MetadataFetch { .. } => None,
        };
        if let Some(p) = propose {
            self.propose(p, quorum_leader, env);
        }
    }

    /// Timers: registration and heartbeats, call retries, the metadata fetch of a broker-only
    /// node, flushes and checkpoints, and every partition's.
    pub fn poll(&mut self, quorum_leader: Option<NodeId>, env: &mut Env) {
        let now = env.now_ms;
        // Calls refused NOT_CONTROLLER, or unanswered for the request timeout: once more.
        let due: Vec<u64> = self
            .calls
            .iter()
            .filter(|(_, c)| {
                c.sent_ms == i64::MIN || now - c.sent_ms >= env.params.request_timeout_ms
            })
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            let call = self.calls.remove(&id).expect("listed");
            if call.sent_ms != i64::MIN {
                // No answer: that controller is taken as unreachable.
                self.hint = None;
            }
            self.resend(call, quorum_leader, env);
        }
        let busy = |p: fn(&Purpose) -> bool| self.calls.values().any(|c| p(&c.purpose));
        if now >= self.next_heartbeat_ms
            && !busy(|p| matches!(p, Purpose::Register | Purpose::Heartbeat))
        {
            match self.heartbeat_request() {
                Some(r) => {
                    self.next_heartbeat_ms = now + env.params.heartbeat_ms;
                    self.call(Purpose::Heartbeat, r, quorum_leader, env);
                }
                None => {
                    self.next_heartbeat_ms = now + env.params.fast_heartbeat_ms;
                    self.register(env, quorum_leader);
                }
            }
        }
        if !self.is_voter {
            if let Some((_, _, sent)) = self.metadata_fetch {
                if now - sent >= env.params.request_timeout_ms {
                    self.metadata_fetch = None;
                    self.hint = None;
                }
            }
            if self.metadata_fetch.is_none() && now >= self.next_metadata_fetch_ms {
                let id = env.next_id();
                let target = self.target(None);
                self.metadata_fetch = Some((id, target, now));
                env.send(
                    self.id,
                    target,
                    Msg::MetadataFetch {
                        id,
                        after: self.applied,
                    },
                );
            }
        }
        if let Some(every) = env.params.flush_interval_ms {
            if now >= self.next_flush_ms {
                self.next_flush_ms = now + every;
                for log in self.disk.logs.values_mut() {
                    log.fsync();
                }
            }
        }
        if now >= self.next_checkpoint_ms {
            self.next_checkpoint_ms = now + env.params.checkpoint_interval_ms;
            for log in self.disk.logs.values_mut() {
                log.checkpoint();
            }
        }
        let tps: Vec<Tp> = self.replicas.keys().copied().collect();
        for tp in tps {
            if let Some(p) = self.with_replica(tp, env, |r, log, view, env| r.poll(log, view, env))
            {
                self.propose(p, quorum_leader, env);
            }
        }
    }

    /// A controlled shutdown begins: heartbeats ask the controller to move leadership away.
    pub fn begin_shutdown(&mut self, env: &mut Env) {
        if self.want_shutdown.is_none() {
            env.log(&self.who(), "controlled shutdown requested");
            self.want_shutdown = Some(env.now_ms);
            self.next_heartbeat_ms = env.now_ms;
        }
    }

    /// The clean stop after a controlled shutdown: every log flushed and checkpointed, the
    /// clean-shutdown marker written with this broker's epoch.
    pub fn stop_cleanly(mut self, env: &mut Env) -> Disk {
        for r in self.replicas.values_mut() {
            r.stop();
        }
        for log in self.disk.logs.values_mut() {
            log.fsync();
            log.checkpoint();
        }
        self.disk.clean_epoch = self
            .epoch
            .or((self.last_epoch >= 0).then_some(self.last_epoch));
        env.log(
            &self.who(),
            format!("stops cleanly (clean epoch {:?})", self.disk.clean_epoch),
        );
        self.disk
    }

    /// A power loss: what was not fsynced may be gone, and no clean-shutdown marker.
    pub fn crash(self, env: &mut Env) -> Disk {
        let mut disk = self.disk;
        let mut lost = Vec::new();
        for (tp, log) in disk.logs.iter_mut() {
            let end = log.end();
            let n = log.crash(env.rng);
            if n > 0 {
                lost.push(format!("{tp} {} -> {}", end, log.end()));
            }
        }
        disk.clean_epoch = None;
        env.log(
            &format!("b{}", self.id),
            format!("CRASHES; unflushed lost: [{}]", lost.join(", ")),
        );
        disk
    }
}

/// How a leader takes an AlterPartition refusal (Kafka's `Partition.handleAlterPartitionError`).
fn refusal(e: &ControllerError) -> Refusal {
    match e {
        ControllerError::OperationNotAttempted(_) | ControllerError::IneligibleReplica(_) => {
            Refusal::NotApplied
        }
        ControllerError::FencedLeaderEpoch(_)
        | ControllerError::InvalidUpdateVersion(_)
        | ControllerError::UnknownTopicOrPartition(_)
        | ControllerError::UnknownTopicId(_)
        | ControllerError::NotLeaderOrFollower(_)
        | ControllerError::NewLeaderElected(_) => Refusal::Stale,
        _ => Refusal::Retry,
    }
}
