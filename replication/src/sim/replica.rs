//! One partition on one simulated broker: the glue between the log and the pure state machines
//! of `crate::partition`, written as the broker will carry them out (Kafka's `Partition` and
//! `ReplicaFetcherThread`): roles from the metadata image, produce with acks=1 and acks=all,
//! follower fetches served by the leader (epoch checks, `DivergingEpoch`, the follower's
//! position), the follower's handling of each answer, ISR proposals, the leader's periodic
//! check and the high watermark. It reports what it does to the oracle.

use super::env::{Env, Params};
use super::log::{Batch, SimLog};
use super::msg::{
    Acks, FetchRequest, FetchResponse, Msg, ProduceError, ProduceRequest, ProduceResponse, Tp,
};
use crate::metadata::image::MetadataImage;
use crate::partition::acks::AckQueue;
use crate::partition::epochs::diverging_epoch;
use crate::partition::follower::{
    follower_high_watermark, FetchAnswer, FetchError, FetchPosition, FollowerAction, FollowerState,
};
use crate::partition::leader::{
    AckStatus, BrokerStatus, BrokerView, FollowerFetchError, IsrProposal, LeaderActions,
    LeaderConfig, LeaderState, ProposalResult,
};
use crate::partition::PartitionState;
use crate::types::{BrokerEpoch, LeaderEpoch, NodeId, Offset, NO_NODE};

/// What a broker knows when one of its partitions acts.
pub struct View<'a> {
    pub image: &'a MetadataImage,
    pub me: NodeId,
    pub incarnation: u64,
    /// The broker epoch of this broker's registration (-1 before the first).
    pub broker_epoch: BrokerEpoch,
}

impl BrokerView for View<'_> {
    fn broker(&self, id: NodeId) -> Option<BrokerStatus> {
        self.image.broker(id).map(|b| BrokerStatus {
            epoch: b.epoch,
            fenced: b.fenced,
            shutting_down: b.in_controlled_shutdown,
        })
    }
}

/// The topic's effective `min.insync.replicas` as the broker resolves it: the topic's
/// override, this broker's dynamic config, the cluster default, the static one; at most the
/// replication factor, as the controller takes it.
pub fn min_isr(image: &MetadataImage, tp: Tp, me: NodeId, params: &Params) -> usize {
    const KEY: &str = "min.insync.replicas";
    let Some(topic) = image.topic(&tp.topic_name()) else {
        return params.min_isr.max(1) as usize;
    };
    let configured = topic
        .configs
        .get(KEY)
        .or_else(|| image.broker_configs(Some(me)).and_then(|c| c.get(KEY)))
        .or_else(|| image.broker_configs(None).and_then(|c| c.get(KEY)))
        .and_then(|v| v.parse::<i32>().ok())
        .unwrap_or(params.min_isr);
    (configured.max(1) as usize).min(topic.replication_factor().max(1))
}

fn leader_config(view: &View, tp: Tp, params: &Params) -> LeaderConfig {
    LeaderConfig {
        replica_lag_time_max_ms: params.lag_ms,
        min_insync_replicas: min_isr(view.image, tp, view.me, params),
    }
}

/// An acks=all produce waiting for the high watermark.
#[derive(Debug)]
struct Waiter {
    client: NodeId,
    id: u64,
    batch: Batch,
    deadline_ms: i64,
}

pub struct Lead {
    pub state: LeaderState,
    acks: AckQueue<Waiter>,
    /// The AlterPartition call carrying this leader's proposal, while one is out.
    pub call: Option<u64>,
    next_tick_ms: i64,
}

pub struct Follow {
    pub state: FollowerState,
    /// The fetch out: its id, the position asked from, when it left.
    in_flight: Option<(u64, FetchPosition, i64)>,
    next_fetch_ms: i64,
}

pub enum Role {
    /// Not acting: not a replica, or the broker has not caught up with its own registration.
    Idle,
    Leader(Box<Lead>),
    Follower(Follow),
}

pub struct Replica {
    pub tp: Tp,
    pub role: Role,
    /// Offsets below this were checked against the committed history.
    agreed: Offset,
}

/// What a replica asks its broker to do: send an ISR proposal for the leader of `epoch`.
pub struct Propose {
    pub tp: Tp,
    pub leader_epoch: LeaderEpoch,
    pub proposal: IsrProposal,
}

impl Replica {
    pub fn new(tp: Tp) -> Self {
        Self {
            tp,
            role: Role::Idle,
            agreed: 0,
        }
    }

    fn who(&self, me: NodeId) -> String {
        format!("b{me}/{}", self.tp)
    }

    /// Brings the role in line with the image (after metadata was applied).
    pub fn reconcile(&mut self, log: &mut SimLog, view: &View, env: &mut Env) -> Option<Propose> {
        let tp = self.tp;
        let who = self.who(view.me);
        let meta = view
            .image
            .topic(&tp.topic_name())
            .and_then(|t| t.partitions.get(tp.partition as usize));
        let Some(meta) = meta.filter(|m| m.replicas.contains(&view.me)) else {
            self.lose_leadership(view.me, env);
            self.role = Role::Idle;
            return None;
        };
        let state = PartitionState {
            leader: meta.leader,
            leader_epoch: meta.leader_epoch,
            partition_epoch: meta.partition_epoch,
            replicas: meta.replicas.clone(),
            isr: meta.isr.clone(),
        };
        let now = env.now_ms;
        if meta.leader == view.me {
            let config = leader_config(view, tp, env.params);
            if let Role::Leader(l) = &mut self.role {
                let old_epoch = l.state.leader_epoch();
                if state.leader_epoch < old_epoch {
                    return None;
                }
                // As the broker's `Role::apply`: a new epoch starts at the log end in the epoch
                // cache; the new state may commit what the log already holds.
                if state.leader_epoch > old_epoch {
                    log.assign_epoch_start(state.leader_epoch);
                }
                // Then a changed `min.insync.replicas` (the broker does not pass it to a
                // running leader yet; the simulator does, as it should).
                let mut actions = l.state.update_state(state.clone(), now);
                let later = [
                    l.state.set_config(config).high_watermark,
                    l.state.on_append(log.end(), now),
                ];
                // Each is returned only when above everything before it: the last one stands.
                if let Some(hw) = later.into_iter().flatten().last() {
                    actions.high_watermark = Some(hw);
                }
                if state.leader_epoch > old_epoch {
                    env.log(
                        &who,
                        format!(
                            "leads again in epoch {} (was {old_epoch}): end {} hw {} isr {:?}",
                            state.leader_epoch,
                            log.end(),
                            log.high_watermark(),
                            state.isr
                        ),
                    );
                    self.took_over(log, view, state.leader_epoch, env);
                }
                return self.apply(actions, log, view, env);
            }
            let unclean = meta
                .last_unclean_election
                .as_ref()
                .is_some_and(|u| u.leader == view.me && u.leader_epoch == state.leader_epoch);
            env.log(
                &who,
                format!(
                    "becomes leader of epoch {}{}: end {} hw {} isr {:?} elr {:?}",
                    state.leader_epoch,
                    if unclean { " (UNCLEAN)" } else { "" },
                    log.end(),
                    log.high_watermark(),
                    state.isr,
                    meta.elr
                ),
            );
            // Kafka's `makeLeader`: the epoch's start is recorded before anything of it is
            // written, so a diverged follower learns where this leader's log departs.
            log.assign_epoch_start(state.leader_epoch);
            let mut lead = LeaderState::new(
                view.me,
                state.clone(),
                log.end(),
                log.high_watermark(),
                config,
                now,
            );
            assert_eq!(
                lead.high_watermark(),
                log.high_watermark(),
                "a new leader starts from its log's high watermark"
            );
            // A leader alone in its ISR commits what it has at once.
            let high_watermark = lead.on_append(log.end(), now);
            self.role = Role::Leader(Box::new(Lead {
                state: lead,
                acks: AckQueue::new(env.params.acks_waiting_max),
                call: None,
                next_tick_ms: now + env.params.lag_ms / 2,
            }));
            self.took_over(log, view, state.leader_epoch, env);
            let actions = LeaderActions {
                high_watermark,
                propose: None,
            };
            return self.apply(actions, log, view, env);
        }
        self.lose_leadership(view.me, env);
        match &mut self.role {
            // As the broker's `Role::apply`: a new leader or epoch starts a fresh fetch state
            // from the log's end and latest epoch; the log is not truncated until a fetch
            // says where it diverged.
            Role::Follower(f) => {
                if f.state.leader() != meta.leader || meta.leader_epoch > f.state.leader_epoch() {
                    env.log(
                        &who,
                        format!(
                            "follows {} in epoch {}: end {} hw {}",
                            meta.leader,
                            meta.leader_epoch,
                            log.end(),
                            log.high_watermark()
                        ),
                    );
                    f.state = FollowerState::new(
                        meta.leader,
                        meta.leader_epoch,
                        log.end(),
                        log.latest_epoch(),
                        env.params.fetch_backoff_ms,
                    );
                    f.in_flight = None;
                    f.next_fetch_ms = now;
                }
            }
            _ => {
                env.log(
                    &who,
                    format!(
                        "becomes follower of {} in epoch {}: end {} hw {}",
                        meta.leader,
                        meta.leader_epoch,
                        log.end(),
                        log.high_watermark()
                    ),
                );
                self.role = Role::Follower(Follow {
                    state: FollowerState::new(
                        meta.leader,
                        meta.leader_epoch,
                        log.end(),
                        log.latest_epoch(),
                        env.params.fetch_backoff_ms,
                    ),
                    in_flight: None,
                    next_fetch_ms: now,
                });
            }
        }
        None
    }

    fn took_over(&mut self, log: &SimLog, view: &View, epoch: LeaderEpoch, env: &mut Env) {
        let meta = view
            .image
            .topic(&self.tp.topic_name())
            .and_then(|t| t.partitions.get(self.tp.partition as usize))
            .expect("the partition exists");
        // The latest unclean election that chose this node, up to this epoch: this one, or an
        // earlier one whose leader never acted (paused, or its image jumped past it) and that
        // this clean re-election of the same node inherits.
        let unclean = meta
            .last_unclean_election
            .as_ref()
            .filter(|u| u.leader == view.me && u.leader_epoch <= epoch)
            .map(|u| u.leader_epoch);
        let lost = env
            .oracle
            .took_over(self.tp, epoch, view.me, view.incarnation, unclean, log);
        if lost > 0 {
            env.log(
                &self.who(view.me),
                format!("the unclean election of epoch {epoch} loses {lost} committed records (reported)"),
            );
        }
    }

    /// Leadership lost (or the broker stops serving the partition): waiters are answered
    /// NOT_LEADER_OR_FOLLOWER, as Kafka answers them.
    fn lose_leadership(&mut self, me: NodeId, env: &mut Env) {
        let who = self.who(me);
        let Role::Leader(l) = &mut self.role else {
            return;
        };
        let waiting = l.acks.drain_all();
        env.log(
            &who,
            format!(
                "no longer leads epoch {} ({} acks=all waiters answered NOT_LEADER_OR_FOLLOWER)",
                l.state.leader_epoch(),
                waiting.len()
            ),
        );
        for w in waiting {
            answer_produce(
                env,
                me,
                w.client,
                w.id,
                Err(ProduceError::NotLeaderOrFollower),
            );
        }
        self.role = Role::Idle;
    }

    /// Carries out a leader's actions: the high watermark (and the waiters it completes), and
    /// a proposal for the broker to send.
    fn apply(
        &mut self,
        actions: LeaderActions,
        log: &mut SimLog,
        view: &View,
        env: &mut Env,
    ) -> Option<Propose> {
        let tp = self.tp;
        let who = self.who(view.me);
        let Role::Leader(l) = &mut self.role else {
            return None;
        };
        if let Some(hw) = actions.high_watermark {
            let before = log.high_watermark();
            assert!(
                hw >= before,
                "invariant: {tp}: leader {} of epoch {} moves its high watermark back from {before} to {hw}",
                view.me,
                l.state.leader_epoch()
            );
            let set = log.set_high_watermark(hw);
            assert_eq!(set, hw, "the leader's high watermark is within its log");
            if super::verbose() {
                let followers: Vec<(NodeId, Offset)> = l
                    .state
                    .state()
                    .replicas
                    .iter()
                    .filter_map(|r| l.state.follower(*r).map(|f| (*r, f.log_end)))
                    .collect();
                env.log(&who, format!(
                    "hw {before} -> {hw}: isr {:?}, maximal {:?}, followers' ends {followers:?}, end {}",
                    l.state.isr(),
                    l.state.maximal_isr(),
                    log.end()
                ));
            }
            env.oracle.published(tp, l.state.leader_epoch(), hw, log);
            for w in l.acks.complete_below(hw) {
                let last = w.batch.end() - 1;
                match l.state.ack_status(last) {
                    AckStatus::Done => {
                        env.oracle.acked(tp, l.state.leader_epoch(), &w.batch);
                        answer_produce(
                            env,
                            view.me,
                            w.client,
                            w.id,
                            Ok((w.batch.base, w.batch.epoch)),
                        );
                    }
                    AckStatus::NotEnoughReplicasAfterAppend => answer_produce(
                        env,
                        view.me,
                        w.client,
                        w.id,
                        Err(ProduceError::NotEnoughReplicasAfterAppend),
                    ),
                    AckStatus::Waiting => unreachable!("completed below the high watermark"),
                }
            }
        }
        let proposal = actions.propose?;
        env.log(
            &who,
            format!(
                "proposes ISR {:?} (leader epoch {}, partition epoch {})",
                proposal.members(),
                proposal.leader_epoch,
                proposal.partition_epoch
            ),
        );
        Some(Propose {
            tp,
            leader_epoch: l.state.leader_epoch(),
            proposal,
        })
    }

    /// A produce request for this partition.
    pub fn on_produce(
        &mut self,
        log: &mut SimLog,
        view: &View,
        client: NodeId,
        req: ProduceRequest,
        env: &mut Env,
    ) -> Option<Propose> {
        let Role::Leader(l) = &mut self.role else {
            answer_produce(
                env,
                view.me,
                client,
                req.id,
                Err(ProduceError::NotLeaderOrFollower),
            );
            return None;
        };
        if req.acks == Acks::All && l.state.check_acks_all_append().is_err() {
            answer_produce(
                env,
                view.me,
                client,
                req.id,
                Err(ProduceError::NotEnoughReplicas),
            );
            return None;
        }
        let batch = log.append_as_leader(l.state.leader_epoch(), req.values);
        let hw = l.state.on_append(log.end(), env.now_ms);
        match req.acks {
            Acks::Leader => {
                env.oracle.acked_one();
                answer_produce(env, view.me, client, req.id, Ok((batch.base, batch.epoch)));
            }
            // The batch waits for the high watermark: the HW this append moved (a lone
            // leader's) completes it below, like any later one.
            Acks::All => {
                let last = batch.end() - 1;
                let waiter = Waiter {
                    client,
                    id: req.id,
                    batch,
                    deadline_ms: env.now_ms + req.timeout_ms,
                };
                if l.acks.push(last, waiter).is_err() {
                    answer_produce(env, view.me, client, req.id, Err(ProduceError::QueueFull));
                }
            }
        }
        let actions = LeaderActions {
            high_watermark: hw,
            propose: None,
        };
        self.apply(actions, log, view, env)
    }

    /// The leader's side of a follower fetch (Kafka's `Partition.fetchRecords` for a replica).
    pub fn serve_fetch(
        &mut self,
        log: &mut SimLog,
        view: &View,
        req: FetchRequest,
        env: &mut Env,
    ) -> Option<Propose> {
        let mut answer = FetchResponse {
            id: req.id,
            tp: self.tp,
            error: FetchError::None,
            high_watermark: log.high_watermark(),
            log_start: log.start(),
            diverging: None,
            batches: Vec::new(),
        };
        let local_epoch = match &self.role {
            Role::Idle => None,
            Role::Leader(l) => Some(l.state.leader_epoch()),
            Role::Follower(f) => Some(f.state.leader_epoch()),
        };
        let asked = req.position.current_leader_epoch;
        answer.error = match local_epoch {
            None => FetchError::Retriable,
            Some(e) if asked < e => FetchError::FencedLeaderEpoch,
            Some(e) if asked > e => FetchError::UnknownLeaderEpoch,
            Some(_) if !matches!(self.role, Role::Leader(_)) => FetchError::Retriable,
            Some(_) => FetchError::None,
        };
        let mut propose = None;
        if answer.error == FetchError::None {
            let pos = req.position;
            if let Some(d) = diverging_epoch(log, pos.last_fetched_epoch, pos.fetch_offset) {
                answer.diverging = Some(d);
            } else if pos.fetch_offset > log.end() || pos.fetch_offset < log.start() {
                answer.error = FetchError::OffsetOutOfRange;
            } else {
                let Role::Leader(l) = &mut self.role else {
                    unreachable!("checked above")
                };
                match l.state.on_follower_fetch(
                    req.replica,
                    req.broker_epoch,
                    pos.fetch_offset,
                    req.log_start,
                    env.now_ms,
                    view,
                ) {
                    Ok(actions) => {
                        answer.batches = log.read(pos.fetch_offset, env.params.fetch_batches_max);
                        propose = self.apply(actions, log, view, env);
                        answer.high_watermark = log.high_watermark();
                    }
                    Err(FollowerFetchError::StaleBrokerEpoch { .. }) => {
                        answer.error = FetchError::Retriable
                    }
                    Err(FollowerFetchError::NotAReplica(_)) => {
                        answer.error = FetchError::UnknownLeaderEpoch
                    }
                }
            }
        }
        env.send(view.me, req.replica, Msg::FetchAnswer(answer));
        propose
    }

    /// A follower fetches: sends the next fetch when due, retries one that went unanswered.
    fn poll_follower(&mut self, log: &SimLog, view: &View, env: &mut Env) {
        let Role::Follower(f) = &mut self.role else {
            return;
        };
        let now = env.now_ms;
        if let Some((_, asked, sent)) = f.in_flight {
            if now - sent < env.params.fetch_timeout_ms {
                return;
            }
            // No answer: the connection is taken as lost (a retriable error).
            f.in_flight = None;
            let lost = FetchAnswer {
                error: FetchError::Retriable,
                high_watermark: -1,
                log_start_offset: -1,
                diverging_epoch: None,
            };
            f.state.on_answer(asked, lost, log, log.end(), now);
        }
        if now < f.next_fetch_ms || f.state.leader() == NO_NODE || f.state.leader() == view.me {
            return;
        }
        let Some(position) = f.state.position(now) else {
            return;
        };
        assert_eq!(
            position.fetch_offset,
            log.end(),
            "a follower fetches from its log end"
        );
        let id = env.next_id();
        f.in_flight = Some((id, position, now));
        let leader = f.state.leader();
        env.send(
            view.me,
            leader,
            Msg::Fetch(FetchRequest {
                id,
                tp: self.tp,
                replica: view.me,
                broker_epoch: view.broker_epoch,
                position,
                log_start: log.start(),
            }),
        );
    }

    /// The leader answered this follower's fetch.
    pub fn on_fetch_answer(
        &mut self,
        log: &mut SimLog,
        view: &View,
        resp: FetchResponse,
        env: &mut Env,
    ) {
        let tp = self.tp;
        let who = self.who(view.me);
        let Role::Follower(f) = &mut self.role else {
            return;
        };
        let Some((id, asked, _)) = f.in_flight else {
            return;
        };
        if id != resp.id {
            return;
        }
        f.in_flight = None;
        let now = env.now_ms;
        let answer = FetchAnswer {
            error: resp.error,
            high_watermark: resp.high_watermark,
            log_start_offset: resp.log_start,
            diverging_epoch: resp.diverging,
        };
        match f.state.on_answer(asked, answer, log, log.end(), now) {
            FollowerAction::Append {
                leader_high_watermark,
                log_start_offset: _,
            } => {
                let got = !resp.batches.is_empty();
                if got {
                    log.append_as_follower(&resp.batches);
                }
                f.state.on_appended(log.end(), log.latest_epoch());
                let hw = follower_high_watermark(leader_high_watermark, log.end());
                log.set_high_watermark(hw);
                f.next_fetch_ms = if got {
                    now
                } else {
                    now + env.params.empty_fetch_wait_ms
                };
            }
            FollowerAction::Truncate { offset, complete } => {
                let (end, hw) = (log.end(), log.high_watermark());
                let removed = log.truncate_to(offset);
                env.log(&who, format!(
                    "truncates to {offset} (end was {end}, hw {hw}; diverging {:?}; {} records removed{})",
                    resp.diverging,
                    removed.iter().map(|b| b.values.len()).sum::<usize>(),
                    if complete { "" } else { "; more to check" }
                ));
                env.oracle.truncated(tp, view.me, hw, &removed);
                f.state.on_truncated(log.end(), log.latest_epoch());
            }
            FollowerAction::TruncateFullyAndStartAt { offset } => {
                let (end, hw) = (log.end(), log.high_watermark());
                let removed = log.truncate_fully_and_start_at(offset);
                env.log(
                    &who,
                    format!("empties its log (end was {end}) to start at {offset}"),
                );
                env.oracle.truncated(tp, view.me, hw, &removed);
                f.state.on_truncated(log.end(), None);
            }
            FollowerAction::Wait => {
                if resp.error != FetchError::None {
                    env.log(&who, format!("fetch answered {:?}", resp.error));
                }
            }
        }
        self.check(log, view.me, env);
    }

    /// The controller's answer to this leader's proposal made in `leader_epoch`.
    pub fn on_proposal_result(
        &mut self,
        log: &mut SimLog,
        view: &View,
        leader_epoch: LeaderEpoch,
        result: ProposalResult,
        env: &mut Env,
    ) -> Option<Propose> {
        let who = self.who(view.me);
        let Role::Leader(l) = &mut self.role else {
            return None;
        };
        if l.state.leader_epoch() != leader_epoch {
            return None;
        }
        l.call = None;
        env.log(&who, format!("proposal answered: {result:?}"));
        let actions = l.state.on_proposal_result(result, env.now_ms);
        self.apply(actions, log, view, env)
    }

    /// Timers: the leader's ISR check and expired acks=all waiters; the follower's fetches.
    pub fn poll(&mut self, log: &mut SimLog, view: &View, env: &mut Env) -> Option<Propose> {
        let now = env.now_ms;
        let mut propose = None;
        if let Role::Leader(l) = &mut self.role {
            let mut expired = Vec::new();
            l.acks.retain(|w| {
                if w.deadline_ms <= now {
                    expired.push((w.client, w.id));
                    false
                } else {
                    true
                }
            });
            for (client, id) in expired {
                answer_produce(env, view.me, client, id, Err(ProduceError::RequestTimedOut));
            }
            if now >= l.next_tick_ms {
                l.next_tick_ms = now + env.params.lag_ms / 2;
                let actions = l.state.tick(now);
                propose = self.apply(actions, log, view, env);
            }
        }
        self.poll_follower(log, view, env);
        self.check(log, view.me, env);
        propose
    }

    /// The replica's records below its high watermark are committed ones.
    pub fn check(&mut self, log: &SimLog, me: NodeId, env: &mut Env) {
        env.oracle.check_replica(self.tp, me, log, &mut self.agreed);
    }

    /// The broker stops (a clean shutdown): waiters get no answer from a process that is gone.
    pub fn stop(&mut self) {
        self.role = Role::Idle;
    }
}

fn answer_produce(
    env: &mut Env,
    me: NodeId,
    client: NodeId,
    id: u64,
    result: Result<(Offset, LeaderEpoch), ProduceError>,
) {
    env.send(
        me,
        client,
        Msg::ProduceAnswer(ProduceResponse { id, result }),
    );
}
