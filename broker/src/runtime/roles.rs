//! How a core carries out replication for the partitions it owns: role changes when committed
//! metadata arrives, the high watermark and ISR proposals a leader's state machine asks for,
//! the periodic ISR check, and which partitions its fetchers copy.

use super::core::Core;
use crate::clock::now_ms;
use crate::replica::Replica;
use crate::replicate::role::{Role, RoleContext};
use std::rc::Rc;
use std::time::Duration;
use weir_replication::controller::{
    AlterPartitionItem, AlterPartitionRequest, AlterPartitionTopic, ControllerError,
    ControllerReply, ControllerRequest, IsrMember,
};
use weir_replication::partition::leader::{
    IsrProposal, LeaderActions, LeaderConfig, ProposalResult, Refusal,
};
use weir_replication::partition::PartitionState;

impl Core {
    /// The replication settings a partition's leader runs with (its topic's
    /// `min.insync.replicas` over the broker's).
    fn leader_config(&self, r: &Replica) -> LeaderConfig {
        LeaderConfig {
            replica_lag_time_max_ms: self.settings.replication.replica_lag_time_max_ms,
            min_insync_replicas: r.settings.borrow().min_insync_replicas.max(1) as usize,
        }
    }

    /// A topic's settings changed (its configs, or the broker's it falls back to): a leader
    /// counts `min.insync.replicas` anew at once, which may move its high watermark (a lower
    /// minimum commits what was waiting) or hold it.
    pub(super) fn settings_changed(self: &Rc<Self>, r: &Rc<Replica>) {
        let config = self.leader_config(r);
        let actions = match &mut *r.role.borrow_mut() {
            Role::Leader(l) => l.state.set_config(config),
            _ => return,
        };
        self.leader_actions(r, actions);
    }

    /// Brings a partition's role in line with the committed metadata: lead, follow, or idle.
    pub(super) async fn update_role(self: &Rc<Self>, topic: &str, partition: i32) {
        let Some(r) = self.replica(topic, partition) else {
            return;
        };
        let meta = self
            .image()
            .topic(topic)
            .and_then(|t| t.partitions.get(partition as usize).cloned());
        let Some(meta) = meta else { return };
        if !meta.replicas.contains(&self.settings.node_id) {
            return;
        }
        r.leader_epoch.set(meta.leader_epoch);
        let cx = RoleContext {
            node_id: self.settings.node_id,
            log: &r.log,
            leader: self.leader_config(&r),
            fetch_backoff_ms: self.settings.replication.replica_fetch_backoff_ms,
            acks_max: self.settings.replication.acks_waiters_max,
            now_ms: now_ms(),
        };
        let change = r.role.borrow_mut().apply(&meta, &cx);
        if meta.last_unclean_election.is_some() {
            // The new leader's log end, or reports a crash or a missing controller held back.
            crate::replicate::unclean::start_reporting(self, &r);
        }
        if let Some(old) = change.unfollow {
            self.fetchers.unfollow(old, topic, partition);
        }
        if let Some(leader) = change.follow {
            self.fetchers.follow(self, leader, topic, partition);
        }
        if topic == crate::group::OFFSETS_TOPIC {
            if change.became_leader {
                // The group coordinator moves with the partition's leadership.
                match self.groups.load(&**self, &r.log).await {
                    Ok(n) if n > 0 => {
                        tracing::info!(partition, records = n, "committed offsets loaded")
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::error!(partition, error = %e, "loading committed offsets failed")
                    }
                }
            } else if change.stopped_leading {
                self.groups.unload(partition);
            }
        }
        self.leader_actions(&r, change.actions);
    }

    /// Carries out what a leader's state machine asked for: publish a high watermark (which
    /// answers the acks=all produces it covers), queue an ISR proposal for the controller.
    pub(crate) fn leader_actions(self: &Rc<Self>, r: &Rc<Replica>, actions: LeaderActions) {
        if let Some(hw) = actions.high_watermark {
            r.role.borrow_mut().publish_high_watermark(&r.log, hw);
        }
        if let Some(p) = actions.propose {
            if let Role::Leader(l) = &mut *r.role.borrow_mut() {
                l.proposing = true;
            }
            let first = self.proposals.borrow().is_empty();
            self.proposals.borrow_mut().push((r.clone(), p));
            if first {
                let core = self.clone();
                glommio::spawn_local(async move { core.send_proposals().await }).detach();
            }
        }
    }

    /// Sends every queued ISR proposal of this core to the controller as one AlterPartition
    /// (Kafka's AlterPartitionManager batches the same way: one request, one metadata entry,
    /// for however many partitions changed meanwhile) and applies the answers.
    async fn send_proposals(self: &Rc<Self>) {
        // Let the proposals of this scheduling round gather first.
        glommio::executor().yield_task_queue_now().await;
        let batch: Vec<(Rc<Replica>, IsrProposal)> =
            std::mem::take(&mut *self.proposals.borrow_mut());
        if batch.is_empty() {
            return;
        }
        let broker_epoch = self
            .image()
            .broker(self.settings.node_id)
            .map_or(-1, |b| b.epoch);
        let mut topics: Vec<AlterPartitionTopic> = Vec::new();
        for (r, proposal) in &batch {
            tracing::info!(partition = %r.tp, isr = ?proposal.members(), leader_epoch = proposal.leader_epoch, partition_epoch = proposal.partition_epoch, "proposing ISR change");
            let item = AlterPartitionItem {
                partition: r.tp.partition,
                leader_epoch: proposal.leader_epoch,
                partition_epoch: proposal.partition_epoch,
                new_isr: proposal
                    .isr
                    .iter()
                    .map(|(id, epoch)| IsrMember {
                        broker_id: *id,
                        broker_epoch: if *id == self.settings.node_id {
                            broker_epoch
                        } else {
                            *epoch
                        },
                    })
                    .collect(),
            };
            match topics.iter_mut().find(|t| t.topic_id == r.topic_id) {
                Some(t) => t.partitions.push(item),
                None => topics.push(AlterPartitionTopic {
                    topic_id: r.topic_id,
                    partitions: vec![item],
                }),
            }
        }
        let request = ControllerRequest::AlterPartition(AlterPartitionRequest {
            broker_id: self.settings.node_id,
            broker_epoch,
            topics,
        });
        let reply = self.controller_call(request).await;
        let mut retry = false;
        for (r, _) in batch {
            let result = match &reply {
                ControllerReply::AlterPartition(Ok(topics)) => topics
                    .iter()
                    .filter(|t| t.topic_id == r.topic_id)
                    .flat_map(|t| t.partitions.iter())
                    .find(|p| p.partition == r.tp.partition)
                    .map(|p| p.result.clone()),
                ControllerReply::AlterPartition(Err(e)) => Some(Err(e.clone())),
                _ => None,
            };
            let result = match result {
                Some(Ok(state)) => ProposalResult::Committed(PartitionState {
                    leader: state.leader,
                    leader_epoch: state.leader_epoch,
                    partition_epoch: state.partition_epoch,
                    replicas: r.role.borrow().leader_replicas().unwrap_or_default(),
                    isr: state.isr,
                }),
                Some(Err(e)) => {
                    tracing::info!(partition = %r.tp, error = %e, "ISR change refused");
                    ProposalResult::Refused { kind: refusal(&e) }
                }
                None => ProposalResult::Refused {
                    kind: Refusal::Retry,
                },
            };
            let actions = match &mut *r.role.borrow_mut() {
                Role::Leader(l) => {
                    l.proposing = false;
                    l.state.on_proposal_result(result, now_ms())
                }
                _ => LeaderActions::default(),
            };
            if actions.propose.is_some() {
                retry = true;
            }
            if retry {
                // Retried after a pause: the controller may be changing hands.
                let (core, r) = (self.clone(), r.clone());
                glommio::spawn_local(async move {
                    glommio::timer::sleep(Duration::from_millis(100)).await;
                    core.leader_actions(&r, actions);
                })
                .detach();
            } else {
                self.leader_actions(&r, actions);
            }
            retry = false;
        }
    }

    /// Kafka's ISR expiration check, every `replica.lag.time.max.ms / 2`: leaders propose out
    /// the followers that stopped keeping up.
    pub async fn run_isr_checks(self: Rc<Self>) {
        let period = Duration::from_millis(
            (self.settings.replication.replica_lag_time_max_ms / 2).max(100) as u64,
        );
        while !self.is_stopping() {
            glommio::timer::sleep(period).await;
            let now = now_ms();
            for r in self.all_replicas() {
                let actions = match &mut *r.role.borrow_mut() {
                    Role::Leader(l) if !l.proposing => l.state.tick(now),
                    _ => continue,
                };
                self.leader_actions(&r, actions);
            }
        }
    }
}

/// How the leader treats a refused proposal (Kafka's `handleAlterPartitionError`).
fn refusal(e: &ControllerError) -> Refusal {
    match e {
        ControllerError::OperationNotAttempted(_) | ControllerError::IneligibleReplica(_) => {
            Refusal::NotApplied
        }
        ControllerError::FencedLeaderEpoch(_)
        | ControllerError::InvalidUpdateVersion(_)
        | ControllerError::UnknownTopicOrPartition(_)
        | ControllerError::UnknownTopicId(_)
        | ControllerError::InvalidRequest(_)
        | ControllerError::NewLeaderElected(_)
        | ControllerError::NotLeaderOrFollower(_) => Refusal::Stale,
        _ => Refusal::Retry,
    }
}
