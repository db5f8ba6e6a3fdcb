//! The simulated cluster: voters (each a quorum node of `quorum::tests::cluster`, its
//! controller and its broker), broker-only nodes, the producer, the data network, virtual
//! time, and the faults the plan inflicts (crashes, clean shutdowns, pauses, network
//! partitions). One step is one quorum tick (50 ms): the quorum steps, controllers follow it,
//! messages due are delivered, every node handles its inbox and timers in a shuffled order, and
//! the outbox leaves over the network.

use super::broker::{Broker, Disk};
use super::client::{Producer, CLIENT};
use super::controller::ControllerNode;
use super::env::{Env, Outgoing, Params};
use super::msg::{Acks, CallAnswer, MetadataAnswer, Msg, Tp};
use super::oracle::Oracle;
use super::trace::Trace;
use crate::controller::{ControllerConfig, ControllerRequest};
use crate::quorum::rng::SplitMix64;
use crate::quorum::tests::cluster::{self, Cluster};
use crate::quorum::tests::net::{Faults, SimNet};
use crate::types::NodeId;
use std::collections::{BTreeMap, VecDeque};

pub const TICK_MS: i64 = cluster::TICK_MS;
pub const CLUSTER_ID: &str = "weir-test";
/// The operator's node id (topic creation, config changes, elections).
pub const ADMIN: NodeId = 1001;
/// Metadata entries per answer to a broker-only node.
const METADATA_FETCH_ENTRIES_MAX: usize = 64;

pub enum NodeState {
    Up(Box<Broker>),
    Down(Disk),
}

pub struct Node {
    pub id: NodeId,
    /// Its index in the quorum cluster, for a voter.
    pub voter: Option<usize>,
    pub state: NodeState,
    inbox: VecDeque<(NodeId, Msg)>,
    pub paused_until_ms: i64,
}

impl Node {
    pub fn broker(&self) -> Option<&Broker> {
        match &self.state {
            NodeState::Up(b) => Some(b),
            NodeState::Down(_) => None,
        }
    }
}

/// An operator's call to the controller, retried until answered.
struct AdminCall {
    request: ControllerRequest,
    sent_ms: i64,
    target: NodeId,
}

pub struct World {
    pub seed: u64,
    pub params: Params,
    pub cluster: Cluster,
    pub nodes: Vec<Node>,
    pub controllers: BTreeMap<NodeId, ControllerNode>,
    controller_config: ControllerConfig,
    pub net: SimNet<Msg>,
    pub producer: Producer,
    pub oracle: Oracle,
    pub trace: Trace,
    pub rng: SplitMix64,
    ids: u64,
    out: Vec<Outgoing>,
    seen_activations: usize,
    seen_resignations: usize,
    starts: u64,
    admin: BTreeMap<u64, AdminCall>,
    /// Every partition of the run.
    pub partitions: Vec<Tp>,
    /// Steps taken (50 ms of virtual time each).
    pub steps: u64,
}

/// Builds the `Env` from the world's fields, leaving `nodes`, `cluster` and `controllers`
/// free to borrow.
macro_rules! env {
    ($w:expr, $now:expr) => {
        Env {
            now_ms: $now,
            params: &$w.params,
            out: &mut $w.out,
            oracle: &mut $w.oracle,
            trace: &mut $w.trace,
            rng: &mut $w.rng,
            ids: &mut $w.ids,
        }
    };
}

impl World {
    pub fn new(
        seed: u64,
        voters: &[NodeId],
        brokers_only: &[NodeId],
        params: Params,
        faults: Faults,
    ) -> Self {
        let cluster = Cluster::new(voters, seed, faults);
        let controller_config = ControllerConfig {
            node_id: 0,
            cluster_id: CLUSTER_ID.into(),
            num_partitions: 1,
            default_replication_factor: 3,
            delete_topic_enable: true,
            broker_session_timeout_ms: params.session_ms,
            min_insync_replicas: params.min_isr,
            unclean_leader_election_enable: false,
        };
        let mut w = Self {
            seed,
            params,
            cluster,
            nodes: Vec::new(),
            controllers: BTreeMap::new(),
            controller_config,
            net: SimNet::new(faults),
            producer: Producer::default(),
            oracle: Oracle::default(),
            trace: Trace::default(),
            rng: SplitMix64::new(seed ^ 0x005E_ED0F_DA7A),
            ids: 0,
            out: Vec::new(),
            seen_activations: 0,
            seen_resignations: 0,
            starts: 0,
            admin: BTreeMap::new(),
            partitions: Vec::new(),
            steps: 0,
        };
        for (i, &id) in voters.iter().chain(brokers_only).enumerate() {
            w.nodes.push(Node {
                id,
                voter: (i < voters.len()).then_some(i),
                state: NodeState::Down(Disk::default()),
                inbox: VecDeque::new(),
                paused_until_ms: 0,
            });
            w.start_broker(i);
        }
        w
    }

    pub fn now_ms(&self) -> i64 {
        self.cluster.now as i64 * TICK_MS
    }

    fn voter_ids(&self) -> Vec<NodeId> {
        self.cluster.voters.clone()
    }

    fn all_ids(&self) -> Vec<NodeId> {
        let mut ids: Vec<NodeId> = self.nodes.iter().map(|n| n.id).collect();
        ids.push(CLIENT);
        ids.push(ADMIN);
        ids
    }

    pub fn index_of(&self, id: NodeId) -> Option<usize> {
        self.nodes.iter().position(|n| n.id == id)
    }

    fn start_broker(&mut self, i: usize) {
        let now = self.now_ms();
        self.starts += 1;
        let starts = self.starts;
        let voters = self.voter_ids();
        let node = &mut self.nodes[i];
        let NodeState::Down(disk) =
            std::mem::replace(&mut node.state, NodeState::Down(Disk::default()))
        else {
            panic!("node {} is already up", node.id);
        };
        let mut env = env!(self, now);
        let broker = Broker::start(node.id, starts, disk, &voters, &mut env);
        node.state = NodeState::Up(Box::new(broker));
        node.inbox.clear();
        node.paused_until_ms = 0;
    }

    // ---- faults ----

    pub fn is_up(&self, i: usize) -> bool {
        matches!(self.nodes[i].state, NodeState::Up(_))
    }

    /// Power loss on node `i`: its broker, controller and quorum node lose what they did not
    /// fsync.
    pub fn crash(&mut self, i: usize) {
        if !self.is_up(i) {
            return;
        }
        let now = self.now_ms();
        let node = &mut self.nodes[i];
        let NodeState::Up(b) = std::mem::replace(&mut node.state, NodeState::Down(Disk::default()))
        else {
            unreachable!()
        };
        let mut env = env!(self, now);
        node.state = NodeState::Down(b.crash(&mut env));
        node.inbox.clear();
        node.paused_until_ms = 0;
        if let Some(ci) = node.voter {
            self.cluster.crash(ci);
            self.controllers.remove(&node.id);
        }
    }

    pub fn restart(&mut self, i: usize) {
        if self.is_up(i) {
            return;
        }
        if let Some(ci) = self.nodes[i].voter {
            self.cluster.start(ci);
        }
        self.start_broker(i);
    }

    /// SIGTERM: a controlled shutdown, then a clean stop.
    pub fn shutdown(&mut self, i: usize) {
        let now = self.now_ms();
        if let NodeState::Up(b) = &mut self.nodes[i].state {
            let mut env = env!(self, now);
            b.begin_shutdown(&mut env);
        }
    }

    fn stop_cleanly(&mut self, i: usize) {
        let now = self.now_ms();
        let node = &mut self.nodes[i];
        let NodeState::Up(b) = std::mem::replace(&mut node.state, NodeState::Down(Disk::default()))
        else {
            return;
        };
        let mut env = env!(self, now);
        node.state = NodeState::Down(b.stop_cleanly(&mut env));
        node.inbox.clear();
        if let Some(ci) = node.voter {
            // The quorum node's rounds are durable before they are acknowledged; what a stop
            // loses of an unfinished round a crash loses too.
            self.cluster.crash(ci);
            self.controllers.remove(&node.id);
        }
    }

    /// SIGSTOP for `ms`: the node (broker, controller, quorum node) does nothing; messages
    /// wait for it.
    pub fn pause(&mut self, i: usize, ms: i64) {
        let now = self.now_ms();
        let node = &mut self.nodes[i];
        node.paused_until_ms = now + ms;
        self.trace
            .log(now, &format!("n{}", node.id), format!("PAUSED for {ms} ms"));
        if let Some(ci) = node.voter {
            self.cluster.nodes[ci].paused_until = self.cluster.now + (ms / TICK_MS) as u64;
        }
    }

    /// Cuts `side` off from everyone else (clients included), on both networks.
    pub fn partition(&mut self, side: &[NodeId]) {
        let all = self.all_ids();
        let voters = self.voter_ids();
        self.heal();
        self.net.partition(side, &all);
        let voter_side: Vec<NodeId> = side
            .iter()
            .copied()
            .filter(|n| voters.contains(n))
            .collect();
        self.cluster.net.partition(&voter_side, &voters);
        let now = self.now_ms();
        self.trace
            .log(now, "net", format!("PARTITION {side:?} | rest"));
    }

    pub fn heal(&mut self) {
        self.net.heal();
        self.cluster.net.heal();
    }

    pub fn set_faults(&mut self, faults: Faults) {
        self.net.faults = faults;
        self.cluster.net.faults = faults;
    }

    // ---- the operator ----

    /// Sends a request to the controller as an operator would, retried until answered.
    pub fn admin(&mut self, request: ControllerRequest) {
        self.ids += 1;
        let id = self.ids;
        let voters = self.voter_ids();
        let target = voters[self.rng.range(0, voters.len() as u64) as usize];
        self.send_admin(id, request, target);
    }

    fn send_admin(&mut self, id: u64, request: ControllerRequest, target: NodeId) {
        let now = self.now_ms();
        self.out.push(Outgoing {
            from: ADMIN,
            to: target,
            msg: Msg::Call {
                id,
                request: request.clone(),
            },
        });
        self.admin.insert(
            id,
            AdminCall {
                request,
                sent_ms: now,
                target,
            },
        );
    }

    fn on_admin_answer(&mut self, id: u64, answer: CallAnswer) {
        let Some(call) = self.admin.remove(&id) else {
            return;
        };
        let now = self.now_ms();
        match answer {
            CallAnswer::Done(reply) => {
                self.trace.log(now, "admin", format!("answered: {reply:?}"));
            }
            CallAnswer::NotController { leader } => {
                let voters = self.voter_ids();
                let next = leader.unwrap_or_else(|| {
                    voters[(voters.iter().position(|v| *v == call.target).unwrap_or(0) + 1)
                        % voters.len()]
                });
                self.send_admin(id, call.request, next);
            }
        }
    }

    pub fn admin_pending(&self) -> usize {
        self.admin.len()
    }

    // ---- the producer ----

    /// One produce to `tp`, its leader looked up in a random running broker's metadata.
    pub fn produce(&mut self, tp: Tp, acks: Acks, records: usize) {
        let up: Vec<usize> = (0..self.nodes.len())
            .filter(|&i| self.nodes[i].broker().is_some_and(|b| b.caught_up))
            .collect();
        if up.is_empty() {
            return;
        }
        let i = up[self.rng.range(0, up.len() as u64) as usize];
        let now = self.now_ms();
        let NodeState::Up(b) = &self.nodes[i].state else {
            unreachable!()
        };
        let mut env = env!(self, now);
        self.producer.produce(tp, acks, records, &b.image, &mut env);
    }

    // ---- one step ----

    pub fn step(&mut self) {
        self.steps += 1;
        self.cluster.step();
        let now = self.now_ms();
        self.follow_quorum(now);
        let mut rng = self.rng.clone();
        let frames = self.net.due(self.cluster.now, &mut rng);
        self.rng = rng;
        for f in frames {
            match f.to {
                CLIENT => {
                    if let Msg::ProduceAnswer(a) = f.payload {
                        self.producer.on_answer(a.id, a.result);
                    }
                }
                ADMIN => {
                    if let Msg::CallAnswer { id, answer } = f.payload {
                        self.on_admin_answer(id, answer);
                    }
                }
                to => {
                    if let Some(i) = self.index_of(to) {
                        if self.is_up(i) {
                            self.nodes[i].inbox.push_back((f.from, f.payload));
                        }
                    }
                }
            }
        }
        let mut order: Vec<usize> = (0..self.nodes.len()).collect();
        for k in (1..order.len()).rev() {
            let j = self.rng.range(0, k as u64 + 1) as usize;
            order.swap(k, j);
        }
        for i in order {
            self.run_node(i, now);
        }
        self.poll_controllers(now);
        self.producer
            .expire(now, 4 * self.params.produce_timeout_ms);
        let stale: Vec<u64> = self
            .admin
            .iter()
            .filter(|(_, c)| now - c.sent_ms >= self.params.request_timeout_ms)
            .map(|(id, _)| *id)
            .collect();
        for id in stale {
            let call = self.admin.remove(&id).expect("listed");
            let voters = self.voter_ids();
            let next = voters[self.rng.range(0, voters.len() as u64) as usize];
            self.send_admin(id, call.request, next);
        }
        self.flush_out();
    }

    /// Controllers replay what their quorum node applied, follow its leadership and hear what
    /// became of their proposals.
    fn follow_quorum(&mut self, now: i64) {
        for node in &self.nodes {
            let Some(ci) = node.voter else { continue };
            if !matches!(node.state, NodeState::Up(_)) || !self.cluster.nodes[ci].is_up() {
                continue;
            }
            let mut config = self.controller_config.clone();
            config.node_id = node.id;
            let ctrl = self.controllers.entry(node.id).or_insert_with(|| {
                ControllerNode::new(node.id, config, self.seed ^ node.id as u64)
            });
            ctrl.catch_up(&self.cluster.nodes[ci].sm.entries);
        }
        let outcomes = std::mem::take(&mut self.cluster.outcomes);
        for (node, data, outcome) in outcomes {
            let leader = self.quorum_leader_of(node);
            let nonce = u64::from_be_bytes(data[..8].try_into().expect("a nonce"));
            if let Some(ctrl) = self.controllers.get_mut(&node) {
                let mut env = env!(self, now);
                ctrl.on_outcome(nonce, &outcome, leader, &mut env);
            }
        }
        // Leadership changes in order: by term, a turn's start before its end.
        let h = &self.cluster.history;
        let mut events: Vec<(u64, u8, NodeId)> = Vec::new();
        events.extend(
            h.activations[self.seen_activations..]
                .iter()
                .map(|(_, n, t)| (*t, 0, *n)),
        );
        events.extend(
            h.resignations[self.seen_resignations..]
                .iter()
                .map(|(_, n, t)| (*t, 1, *n)),
        );
        self.seen_activations = h.activations.len();
        self.seen_resignations = h.resignations.len();
        events.sort_unstable();
        for (term, kind, node) in events {
            let leader = self.quorum_leader_of(node);
            let Some(ctrl) = self.controllers.get_mut(&node) else {
                continue;
            };
            let mut env = env!(self, now);
            if kind == 0 {
                ctrl.activate(term, &mut env);
            } else {
                ctrl.resign(term, leader, &mut env);
            }
        }
    }

    fn quorum_leader_of(&self, node: NodeId) -> Option<NodeId> {
        let ci = self.cluster.voters.iter().position(|v| *v == node)?;
        self.cluster.nodes[ci]
            .node
            .as_ref()
            .and_then(|q| q.leader())
    }

    fn run_node(&mut self, i: usize, now: i64) {
        let node = &mut self.nodes[i];
        if node.paused_until_ms > now {
            return;
        }
        let NodeState::Up(broker) = &mut node.state else {
            node.inbox.clear();
            return;
        };
        let id = node.id;
        let quorum_leader = node
            .voter
            .and_then(|ci| self.cluster.nodes[ci].node.as_ref())
            .and_then(|q| q.leader());
        let mut env = env!(self, now);
        if let Some(ci) = node.voter {
            // Cores apply what core 0 publishes a little later: sometimes a step behind.
            if env.rng.chance(4, 5) {
                let sm = &self.cluster.nodes[ci].sm;
                broker.apply_entries(&sm.entries, sm.applied_index, quorum_leader, &mut env);
            }
        }
        while let Some((from, msg)) = node.inbox.pop_front() {
            match msg {
                Msg::Call { id: call, request } => match self.controllers.get_mut(&id) {
                    Some(ctrl) => ctrl.on_call(from, call, request, quorum_leader, &mut env),
                    None if node.voter.is_some() => env.send(
                        id,
                        from,
                        Msg::CallAnswer {
                            id: call,
                            answer: CallAnswer::NotController {
                                leader: quorum_leader,
                            },
                        },
                    ),
                    None => {}
                },
                Msg::MetadataFetch { id: fetch, after } => {
                    let Some(ci) = node.voter else { continue };
                    let active = self.controllers.get(&id).is_some_and(|c| c.is_active());
                    let answer = if active {
                        let sm = &self.cluster.nodes[ci].sm;
                        let from_i = sm.entries.partition_point(|(i, _)| *i <= after);
                        let entries: Vec<_> = sm.entries[from_i..]
                            .iter()
                            .take(METADATA_FETCH_ENTRIES_MAX)
                            .cloned()
                            .collect();
                        let applied = if from_i + entries.len() == sm.entries.len() {
                            sm.applied_index
                        } else {
                            entries.last().map_or(after, |e| e.0)
                        };
                        MetadataAnswer::Entries { entries, applied }
                    } else {
                        MetadataAnswer::NotController {
                            leader: quorum_leader,
                        }
                    };
                    env.send(id, from, Msg::MetadataAnswer { id: fetch, answer });
                }
                other => broker.on_message(from, other, quorum_leader, &mut env),
            }
        }
        broker.poll(quorum_leader, &mut env);
        let done = broker.released
            || broker
                .want_shutdown
                .is_some_and(|t| now - t >= self.params.shutdown_timeout_ms);
        if done {
            self.stop_cleanly(i);
        }
    }

    fn poll_controllers(&mut self, now: i64) {
        let ids: Vec<NodeId> = self.controllers.keys().copied().collect();
        for id in ids {
            let Some(i) = self.index_of(id) else { continue };
            if self.nodes[i].paused_until_ms > now {
                continue;
            }
            let ci = self.nodes[i].voter.expect("controllers are voters");
            let ctrl = self.controllers.get_mut(&id).expect("listed");
            let mut env = env!(self, now);
            ctrl.poll(&mut env);
            if let Some(data) = ctrl.to_propose.take() {
                self.cluster.propose_data(ci, data);
            }
        }
    }

    /// Sends the step's messages: a node's call to its own controller stays local.
    fn flush_out(&mut self) {
        for o in std::mem::take(&mut self.out) {
            if o.from == o.to {
                if let Some(i) = self.index_of(o.to) {
                    self.nodes[i].inbox.push_back((o.from, o.msg));
                }
                continue;
            }
            self.net
                .send(self.cluster.now, o.from, o.to, o.msg, &mut self.rng);
        }
    }

    /// The image of the active controller (the committed truth), if any.
    pub fn active_image(&self) -> Option<&crate::metadata::image::MetadataImage> {
        self.controllers
            .values()
            .find(|c| c.is_active())
            .map(|c| c.state.image())
    }
}
