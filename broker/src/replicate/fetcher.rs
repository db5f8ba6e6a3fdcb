//! Followers copy their leaders (Kafka's replica fetcher threads, one per core and leader
//! here): a fetcher is a task on a core that sends one Fetch at a time to one leader broker's
//! inter-broker listener, carrying every partition this core follows from that leader — so
//! 2000 partitions are a handful of connections — and hands each partition's answer to its
//! `FollowerState`: append the batches as they came (offsets and epochs kept, CRCs checked, the
//! bytes not copied again), truncate where the logs diverge, start over at the leader's log
//! start, or back off.

use crate::clock::now_ms;
use crate::replica::Replica;
use crate::replicate::epochs::LogEpochs;
use crate::replicate::role::Role;
use crate::runtime::core::Core;
use glommio::channels::local_channel::{self, LocalReceiver, LocalSender};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic, ReplicaState};
use kafka_protocol::messages::{ApiKey, BrokerId, FetchRequest, FetchResponse};
use std::cell::{Cell, RefCell};
use std::collections::{BTreeSet, HashMap};
use std::rc::{Rc, Weak};
use std::time::Duration;
use weir_net::client::{BackoffConfig, ClientConfig, Reconnecting};
use weir_replication::partition::epochs::DivergingEpoch;
use weir_replication::partition::follower::{
    follower_high_watermark, FetchAnswer, FetchError, FetchPosition, FollowerAction,
};
use weir_replication::types::NodeId;

/// How fetchers fetch (Kafka's `replica.fetch.*` settings).
#[derive(Debug, Clone)]
pub struct FetchSettings {
    /// `replica.fetch.max.bytes`: per partition.
    pub max_bytes_per_partition: i32,
    /// `replica.fetch.response.max.bytes`: per response.
    pub response_max_bytes: i32,
    /// `replica.fetch.wait.max.ms`.
    pub wait_max_ms: i32,
    /// `replica.fetch.min.bytes`.
    pub min_bytes: i32,
    /// `replica.fetch.backoff.ms`.
    pub backoff_ms: i64,
    /// `replica.socket.timeout.ms`: one fetch round trip.
    pub socket_timeout_ms: i64,
    /// `inter.broker.listener.name`: the listener of the leader's registration to dial.
    pub listener: String,
}

/// The fetchers of one core, by leader.
#[derive(Default)]
pub struct Fetchers {
    by_leader: RefCell<HashMap<NodeId, Rc<Fetcher>>>,
}

struct Fetcher {
    leader: NodeId,
    partitions: RefCell<BTreeSet<(String, i32)>>,
    wake: LocalSender<()>,
    stopped: Cell<bool>,
}

impl Fetchers {
    /// This core now follows `leader` for the partition.
    pub fn follow(&self, core: &Rc<Core>, leader: NodeId, topic: &str, partition: i32) {
        let fetcher = self
            .by_leader
            .borrow_mut()
            .entry(leader)
            .or_insert_with(|| Fetcher::start(core, leader))
            .clone();
        fetcher
            .partitions
            .borrow_mut()
            .insert((topic.to_string(), partition));
        let _ = fetcher.wake.try_send(());
    }

    /// This core no longer follows `leader` for the partition; a fetcher left with nothing stops.
    pub fn unfollow(&self, leader: NodeId, topic: &str, partition: i32) {
        let mut by_leader = self.by_leader.borrow_mut();
        let Some(f) = by_leader.get(&leader) else {
            return;
        };
        f.partitions
            .borrow_mut()
            .remove(&(topic.to_string(), partition));
        if f.partitions.borrow().is_empty() {
            f.stopped.set(true);
            let _ = f.wake.try_send(());
            by_leader.remove(&leader);
        }
    }

    pub fn stop_all(&self) {
        for (_, f) in self.by_leader.borrow_mut().drain() {
            f.stopped.set(true);
            let _ = f.wake.try_send(());
        }
    }
}

impl Fetcher {
    fn start(core: &Rc<Core>, leader: NodeId) -> Rc<Self> {
        let (wake, woken) = local_channel::new_bounded(1);
        let f = Rc::new(Self {
            leader,
            partitions: RefCell::default(),
            wake,
            stopped: Cell::new(false),
        });
        tracing::info!(core = core.id(), leader, "starting a replica fetcher");
        glommio::spawn_local(f.clone().run(Rc::downgrade(core), woken)).detach();
        f
    }

    async fn run(self: Rc<Self>, core: Weak<Core>, woken: LocalReceiver<()>) {
        let mut conn: Option<(String, Reconnecting)> = None;
        loop {
            if self.stopped.get() {
                return;
            }
            let Some(core) = core.upgrade() else { return };
            if core.is_stopping() {
                return;
            }
            let settings = core.settings.fetch.clone();
            let asked = self.positions(&core);
            if asked.is_empty() {
                drop(core);
                wait_or(&woken, Duration::from_millis(200)).await;
                continue;
            }
            let Some(endpoint) = core.broker_endpoint(self.leader, &settings.listener) else {
                // The leader has no registration (yet) here: wait for metadata.
                drop(core);
                wait_or(&woken, Duration::from_millis(200)).await;
                continue;
            };
            if conn.as_ref().is_none_or(|(e, _)| *e != endpoint) {
                let config = ClientConfig {
                    request_timeout: Duration::from_millis(settings.socket_timeout_ms.max(1) as u64),
                    ..ClientConfig::new(format!(
                        "weir-fetcher-{}-{}",
                        core.settings.node_id,
                        core.id()
                    ))
                };
                conn = Some((
                    endpoint.clone(),
                    Reconnecting::new(endpoint.clone(), config, BackoffConfig::default()),
                ));
            }
            let (_, reconnecting) = conn.as_ref().expect("just set");
            let response = match fetch(&core, reconnecting, &asked, &settings).await {
                Ok(r) => r,
                Err(e) => {
                    tracing::debug!(leader = self.leader, error = %e, "replica fetch failed");
                    let now = now_ms();
                    for (r, _) in &asked {
                        if let Role::Follower(f) = &mut *r.role.borrow_mut() {
                            f.back_off(now);
                        }
                    }
                    drop(core);
                    wait_or(
                        &woken,
                        Duration::from_millis(settings.backoff_ms.max(1) as u64),
                    )
                    .await;
                    continue;
                }
            };
            for (r, pos) in asked {
                let answer = find_answer(&core, &response, &r);
                match answer {
                    Some((answer, records)) => process(&r, pos, answer, records).await,
                    None => {
                        // Not in the response (a leader that dropped it): ask again later.
                        if let Role::Follower(f) = &mut *r.role.borrow_mut() {
                            f.back_off(now_ms());
                        }
                    }
                }
            }
        }
    }

    /// The partitions to fetch now and where from.
    fn positions(&self, core: &Core) -> Vec<(Rc<Replica>, FetchPosition)> {
        let now = now_ms();
        let mut out = Vec::new();
        for (t, p) in self.partitions.borrow().iter() {
            let Some(r) = core.replica(t, *p) else {
                continue;
            };
            let pos = match &mut *r.role.borrow_mut() {
                Role::Follower(f) if f.leader() == self.leader => f.position(now),
                _ => None,
            };
            if let Some(pos) = pos {
                out.push((r.clone(), pos));
            }
        }
        out
    }
}

async fn wait_or(woken: &LocalReceiver<()>, timeout: Duration) {
    futures_lite::future::or(
        async {
            woken.recv().await;
        },
        glommio::timer::sleep(timeout),
    )
    .await;
}

/// One Fetch for every asked partition, as a follower sends it (KIP-903 replica state, the
/// follower's leader epoch and last fetched epoch).
async fn fetch(
    core: &Core,
    conn: &Reconnecting,
    asked: &[(Rc<Replica>, FetchPosition)],
    s: &FetchSettings,
) -> Result<FetchResponse, String> {
    let c = conn.connection().await.map_err(|e| e.to_string())?;
    let version = c
        .version(ApiKey::Fetch, 12, 15)
        .map_err(|e| e.to_string())?;
    let me = core.settings.node_id;
    let epoch = core.image.borrow().broker(me).map_or(-1, |b| b.epoch);
    let mut topics: Vec<FetchTopic> = Vec::new();
    for (r, pos) in asked {
        let partition = FetchPartition::default()
            .with_partition(r.tp.partition)
            .with_current_leader_epoch(pos.current_leader_epoch)
            .with_fetch_offset(pos.fetch_offset)
            .with_last_fetched_epoch(pos.last_fetched_epoch)
            .with_log_start_offset(r.log.log_start_offset())
            .with_partition_max_bytes(s.max_bytes_per_partition);
        let id = uuid::Uuid::from_bytes(r.topic_id);
        match topics.iter_mut().find(|t| t.topic_id == id) {
            Some(t) => t.partitions.push(partition),
            None => topics.push(
                FetchTopic::default()
                    .with_topic(kafka_protocol::messages::TopicName(
                        kafka_protocol::protocol::StrBytes::from_string(r.tp.topic.clone()),
                    ))
                    .with_topic_id(id)
                    .with_partitions(vec![partition]),
            ),
        }
    }
    let request = FetchRequest::default()
        .with_replica_id(BrokerId(if version < 15 { me } else { -1 }))
        .with_replica_state(
            ReplicaState::default()
                .with_replica_id(BrokerId(if version >= 15 { me } else { -1 }))
                .with_replica_epoch(if version >= 15 { epoch } else { -1 }),
        )
        .with_max_wait_ms(s.wait_max_ms)
        .with_min_bytes(s.min_bytes)
        .with_max_bytes(s.response_max_bytes)
        .with_isolation_level(0)
        .with_session_id(0)
        .with_session_epoch(-1)
        .with_topics(topics);
    let response: FetchResponse = c
        .call_at(request, version)
        .await
        .map_err(|e| e.to_string())?;
    if response.error_code != 0 {
        return Err(format!("fetch refused with error {}", response.error_code));
    }
    Ok(response)
}

/// The leader's answer for `r`, if the response has one.
fn find_answer(
    core: &Core,
    response: &FetchResponse,
    r: &Replica,
) -> Option<(FetchAnswer, Option<bytes::Bytes>)> {
    let id = uuid::Uuid::from_bytes(r.topic_id);
    let topic = response.responses.iter().find(|t| {
        t.topic_id == id || (!t.topic.0.is_empty() && t.topic.0.as_str() == r.tp.topic)
    })?;
    let _ = core;
    let p = topic
        .partitions
        .iter()
        .find(|p| p.partition_index == r.tp.partition)?;
    let error = match p.error_code {
        0 => FetchError::None,
        1 => FetchError::OffsetOutOfRange,
        74 => FetchError::FencedLeaderEpoch,
        75 => FetchError::UnknownLeaderEpoch,
        _ => FetchError::Retriable,
    };
    let diverging = (p.diverging_epoch.epoch >= 0 || p.diverging_epoch.end_offset >= 0).then_some(
        DivergingEpoch {
            epoch: p.diverging_epoch.epoch,
            end_offset: p.diverging_epoch.end_offset,
        },
    );
    Some((
        FetchAnswer {
            error,
            high_watermark: p.high_watermark,
            log_start_offset: p.log_start_offset,
            diverging_epoch: diverging,
        },
        p.records.clone(),
    ))
}

/// Carries out the follower's decision for one partition.
async fn process(
    r: &Rc<Replica>,
    asked: FetchPosition,
    answer: FetchAnswer,
    records: Option<bytes::Bytes>,
) {
    let now = now_ms();
    let action = match &mut *r.role.borrow_mut() {
        Role::Follower(f) => f.on_answer(
            asked,
            answer,
            &LogEpochs(&r.log),
            r.log.log_end_offset(),
            now,
        ),
        _ => return,
    };
    match action {
        FollowerAction::Append {
            leader_high_watermark,
            log_start_offset,
        } => {
            if let Some(bytes) = records.filter(|b| !b.is_empty()) {
                if let Err(e) = r.log.append_bytes_as_follower(bytes, now).await {
                    tracing::warn!(partition = %r.tp, error = %e, "appending fetched records failed");
                    if let Role::Follower(f) = &mut *r.role.borrow_mut() {
                        f.back_off(now);
                    }
                    return;
                }
            }
            let end = r.log.log_end_offset();
            if let Role::Follower(f) = &mut *r.role.borrow_mut() {
                f.on_appended(end, r.log.latest_epoch());
            }
            r.log
                .set_high_watermark(follower_high_watermark(leader_high_watermark, end));
            // Records the leader deleted (retention, DeleteRecords) go here too.
            if log_start_offset > r.log.log_start_offset()
                && log_start_offset <= r.log.high_watermark()
            {
                if let Err(e) = r.log.advance_log_start(log_start_offset).await {
                    tracing::warn!(partition = %r.tp, error = %e, "following the leader's log start failed");
                }
            }
        }
        FollowerAction::Truncate { offset, complete } => {
            let (old_end, old_hw) = (r.log.log_end_offset(), r.log.high_watermark());
            if offset < old_end {
                report_truncation(r, offset, old_end, old_hw);
            }
            if let Err(e) = r.log.truncate_to(offset).await {
                tracing::error!(partition = %r.tp, error = %e, "truncating to the leader's log failed");
                if let Role::Follower(f) = &mut *r.role.borrow_mut() {
                    f.back_off(now);
                }
                return;
            }
            let end = r.log.log_end_offset();
            if let Role::Follower(f) = &mut *r.role.borrow_mut() {
                f.on_truncated(end, r.log.latest_epoch());
            }
            let _ = complete;
        }
        FollowerAction::TruncateFullyAndStartAt { offset } => {
            let (old_end, old_hw) = (r.log.log_end_offset(), r.log.high_watermark());
            if offset < old_end {
                report_truncation(r, r.log.log_start_offset(), old_end, old_hw);
            }
            tracing::info!(partition = %r.tp, offset, "log behind the leader's log start: starting over there");
            if let Err(e) = r.log.truncate_fully_and_start_at(offset).await {
                tracing::error!(partition = %r.tp, error = %e, "restarting the log at the leader's start failed");
                if let Role::Follower(f) = &mut *r.role.borrow_mut() {
                    f.back_off(now);
                }
                return;
            }
            if let Role::Follower(f) = &mut *r.role.borrow_mut() {
                f.on_truncated(offset, None);
            }
        }
        FollowerAction::Wait => {}
    }
}

/// A follower discarding records: ordinary when they were never committed (above its high
/// watermark); when committed records go, the leader was elected uncleanly and this is what
/// the election lost.
fn report_truncation(r: &Replica, from: i64, old_end: i64, old_hw: i64) {
    let epochs: Vec<(i32, i64)> = r
        .log
        .epoch_entries()
        .into_iter()
        .filter(|(_, start)| *start < old_end)
        .collect();
    if from < old_hw {
        tracing::warn!(
            partition = %r.tp,
            from,
            to = old_end,
            committed_lost = old_hw - from,
            ?epochs,
            "truncating records this replica had as committed: the leader was elected uncleanly"
        );
    } else {
        tracing::info!(partition = %r.tp, from, to = old_end, "truncating records the leader does not have (never committed)");
    }
}
