//! One core's groups: the state machines of the groups whose `__consumer_offsets` partition
//! this core owns, the requests waiting on them, and the offset writes to those partitions.
//! Only this core touches them; other cores reach them as [`GroupCall`] messages.

use super::records::{self, Committed, Key};
use super::state::{Delivery, Group, JoinRequest, JoinResponse, Outcome, State, SyncResponse};
use super::{partition_for, GroupError, GroupSettings, OFFSETS_TOPIC};
use crate::metadata::controller::now_ms;
use crate::runtime::core::Core;
use ahash::AHashMap;
use bytes::Bytes;
use glommio::channels::local_channel::{self, LocalSender};
use kafka_protocol::messages::{
    HeartbeatRequest, JoinGroupRequest, OffsetCommitRequest, OffsetDeleteRequest, SyncGroupRequest,
};
use kafka_protocol::ResponseError as K;
use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;
use weir_storage::batch::{build_batch, ProducerFields, Record};
use weir_storage::records::BatchRecords;
use weir_storage::{Offset, PartitionLog, StorageError};

/// Kafka's `offset.metadata.max.bytes`.
pub const OFFSET_METADATA_MAX_BYTES: usize = 4096;

/// How often the group timers (sessions, rebalance and sync deadlines) are checked.
pub const TICK: Duration = Duration::from_millis(100);

/// How often expired offsets are looked for (in ticks: one minute).
const EXPIRY_EVERY_TICKS: u64 = 600;

/// Group work sent to the core that owns the group.
pub enum GroupCall {
    Join {
        req: JoinGroupRequest,
        version: i16,
        client_id: String,
        client_host: String,
    },
    Sync(SyncGroupRequest),
    Heartbeat(HeartbeatRequest),
    Leave {
        group: String,
        members: Vec<Leaving>,
    },
    /// Partitions already checked by the caller: `Err` carries their failure.
    Commit {
        req: OffsetCommitRequest,
        checked: Checked,
    },
    Fetch {
        group: String,
        topics: Option<Vec<(String, Vec<i32>)>>,
    },
    Describe(String),
    List,
    Delete(String),
    OffsetDelete(OffsetDeleteRequest),
}

/// One member of a LeaveGroup request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leaving {
    pub member_id: String,
    pub instance_id: Option<String>,
    /// LeaveGroup v5+: why it leaves (logged, as Kafka does).
    pub reason: Option<String>,
}

/// A group's description for DescribeGroups.
#[derive(Debug, Clone, Default)]
pub struct Described {
    pub state: String,
    pub protocol_type: String,
    pub protocol: String,
    /// (member id, instance id, client id, client host, metadata, assignment)
    pub members: Vec<(String, Option<String>, String, String, Bytes, Bytes)>,
}

pub type TopicResults<T> = Vec<(String, Vec<(i32, T)>)>;

/// Commit partitions as the receiving core checked them: `Err` carries their failure.
pub type Checked = TopicResults<Result<(), GroupError>>;

pub enum GroupReply {
    Join(JoinResponse),
    Sync(SyncResponse),
    Heartbeat(Result<(), GroupError>),
    /// The request's failure, or one result per member.
    Leave(Result<Vec<Result<(), GroupError>>, GroupError>),
    Commit(TopicResults<Result<(), GroupError>>),
    Fetch(Result<TopicResults<Option<Committed>>, GroupError>),
    Describe(Described),
    /// (group id, protocol type, state)
    List(Vec<(String, String, String)>),
    Delete(Result<(), GroupError>),
    OffsetDelete(Result<TopicResults<Result<(), GroupError>>, GroupError>),
}

struct Slot {
    group: Group,
    /// (state, generation, member-id changes) of the membership last written to the log.
    persisted: Option<MembershipVersion>,
    joins: AHashMap<String, LocalSender<JoinResponse>>,
    syncs: AHashMap<String, LocalSender<SyncResponse>>,
}

type MembershipVersion = (State, i32, u64);

impl Slot {
    fn version(&self) -> MembershipVersion {
        (
            self.group.state,
            self.group.generation,
            self.group.membership_changes,
        )
    }

    /// The group metadata record, if the membership changed since it was last written; it
    /// counts as written from now (reset by the caller if the write fails).
    fn dirty_record(&mut self, id: &str, now: i64) -> Option<Record> {
        let version = self.version();
        if self.persisted == Some(version) || self.group.generation == 0 {
            return None;
        }
        let meta = self.group.snapshot(now)?;
        self.persisted = Some(version);
        Some(Record {
            key: Some(records::group_key(id)),
            value: Some(records::group_value(&meta)),
            ..Record::default()
        })
    }

    fn new(id: &str) -> Self {
        Self {
            group: Group::new(id),
            persisted: None,
            joins: AHashMap::new(),
            syncs: AHashMap::new(),
        }
    }

    fn dispatch(&mut self, deliveries: Vec<Delivery>) {
        for d in deliveries {
            match d {
                Delivery::Join { member, response } => {
                    if let Some(tx) = self.joins.remove(&member) {
                        let _ = tx.try_send(response);
                    }
                }
                Delivery::Sync { member, response } => {
                    if let Some(tx) = self.syncs.remove(&member) {
                        let _ = tx.try_send(response);
                    }
                }
            }
        }
    }
}

/// This core's groups.
pub struct Coordinator {
    pub settings: GroupSettings,
    groups: RefCell<AHashMap<String, Slot>>,
}

impl Coordinator {
    pub fn new(settings: GroupSettings) -> Self {
        Self {
            settings,
            groups: RefCell::default(),
        }
    }

    /// Rebuilds the committed offsets of one `__consumer_offsets` partition from its log.
    pub async fn load(&self, log: &PartitionLog) -> Result<usize, StorageError> {
        let mut next: Offset = log.log_start_offset();
        let end = log.log_end_offset();
        let mut applied = 0;
        // Groups whose membership this partition holds, logged once loaded (a log not yet
        // compacted holds many records of a group).
        let mut loaded = std::collections::BTreeSet::new();
        while next < end {
            let read = log.read(next, 8 << 20, Offset::MAX, true).await?;
            let Some(region) = read.region else { break };
            let bytes = region.read_to_vec().await?;
            let batches = weir_storage::batch::split_and_validate(&bytes)?;
            if batches.is_empty() {
                break;
            }
            for (range, header) in batches {
                let batch = match BatchRecords::parse(&bytes[range]) {
                    Ok(b) => b,
                    Err(e) => {
                        tracing::warn!(
                            offset = header.base_offset,
                            error = %e,
                            "unreadable __consumer_offsets batch skipped"
                        );
                        next = header.last_offset() + 1;
                        continue;
                    }
                };
                let mut groups = self.groups.borrow_mut();
                for view in &batch.records {
                    let r = RecordRef {
                        key: batch.key(view),
                        value: batch.value(view),
                    };
                    let (group, topic, partition) = match r.key.and_then(records::decode_key) {
                        Some(Key::Offset {
                            group,
                            topic,
                            partition,
                        }) => (group, topic, partition),
                        Some(Key::GroupMetadata { group }) => {
                            loaded.insert(group.clone());
                            let slot = groups
                                .entry(group.clone())
                                .or_insert_with(|| Slot::new(&group));
                            match r.value.map(records::decode_group_value) {
                                Some(Some(meta)) => slot.group.restore(meta, now_ms()),
                                Some(None) => {}
                                None => {
                                    let offsets = std::mem::take(&mut slot.group.offsets);
                                    slot.group = Group::new(&group);
                                    slot.group.offsets = offsets;
                                }
                            }
                            slot.persisted = Some(slot.version());
                            applied += 1;
                            continue;
                        }
                        None => continue,
                    };
                    let slot = groups
                        .entry(group.clone())
                        .or_insert_with(|| Slot::new(&group));
                    match r.value.map(records::decode_offset_value) {
                        Some(Some(c)) => {
                            slot.group.offsets.insert((topic, partition), c);
                        }
                        Some(None) => {}
                        None => {
                            slot.group.offsets.remove(&(topic, partition));
                        }
                    }
                    applied += 1;
                }
                next = header.last_offset() + 1;
            }
        }
        let mut groups = self.groups.borrow_mut();
        groups.retain(|_, s| !s.group.is_gone());
        for id in loaded {
            if let Some(slot) = groups.get(&id) {
                let g = &slot.group;
                tracing::info!(
                    "Loaded classic group {id} with {} members (generation {}, {}).",
                    g.members.len(),
                    g.generation,
                    g.state.name()
                );
            }
        }
        Ok(applied)
    }

    /// Memberships that changed since last written: (group, group metadata record).
    fn take_dirty(&self, now: i64) -> Vec<(String, Record)> {
        let mut out = Vec::new();
        for (id, slot) in self.groups.borrow_mut().iter_mut() {
            if let Some(record) = slot.dirty_record(id, now) {
                out.push((id.clone(), record));
            }
        }
        out
    }

    /// Removes expired offsets (and groups left with nothing); returns the tombstones to write.
    fn expire(&self, now: i64) -> Vec<(String, Vec<Record>)> {
        let retention = self.settings.offsets_retention_ms;
        let mut out = Vec::new();
        let mut groups = self.groups.borrow_mut();
        for (id, slot) in groups.iter_mut() {
            let expired = slot.group.expire_offsets(now, retention);
            if expired.is_empty() {
                continue;
            }
            let mut tombstones: Vec<Record> = expired
                .iter()
                .map(|(t, p)| Record {
                    key: Some(records::offset_key(id, t, *p)),
                    value: None,
                    ..Record::default()
                })
                .collect();
            if slot.group.state == State::Dead {
                tombstones.push(Record {
                    key: Some(records::group_key(id)),
                    value: None,
                    ..Record::default()
                });
            }
            tracing::info!(group = %id, offsets = expired.len(), "expired committed offsets");
            out.push((id.clone(), tombstones));
        }
        groups.retain(|_, s| {
            s.group.state != State::Dead || !s.joins.is_empty() || !s.syncs.is_empty()
        });
        out
    }

    /// Expires sessions and completes rebalances whose deadline passed.
    pub fn tick(&self, now: i64) {
        let mut groups = self.groups.borrow_mut();
        for slot in groups.values_mut() {
            let d = slot.group.tick(now, &self.settings);
            slot.dispatch(d);
        }
        groups.retain(|_, s| !s.group.is_gone() || !s.joins.is_empty() || !s.syncs.is_empty());
    }
}

/// Runs the group timers of this core until it stops.
pub async fn run_timers(core: Rc<Core>) {
    let mut until_expiry = EXPIRY_EVERY_TICKS;
    while !core.is_stopping() {
        glommio::timer::sleep(TICK).await;
        core.groups.tick(now_ms());
        persist_memberships(&core).await;
        until_expiry -= 1;
        if until_expiry == 0 {
            until_expiry = EXPIRY_EVERY_TICKS;
            for (group, tombstones) in core.groups.expire(now_ms()) {
                if let Err(e) = write(&core, &group, tombstones).await {
                    tracing::warn!(group, error = %e, "writing expired offsets failed");
                }
            }
        }
    }
}

/// Writes one group's membership if it changed. A failed write leaves it marked unwritten.
async fn store_group(core: &Rc<Core>, group: &str) -> Result<(), GroupError> {
    let record = {
        let mut groups = core.groups.groups.borrow_mut();
        let Some(slot) = groups.get_mut(group) else {
            return Ok(());
        };
        slot.dirty_record(group, now_ms())
    };
    let Some(record) = record else {
        return Ok(());
    };
    let result = write(core, group, vec![record]).await;
    if result.is_err() {
        if let Some(slot) = core.groups.groups.borrow_mut().get_mut(group) {
            slot.persisted = None;
        }
    }
    result
}

/// Writes the memberships that changed (Kafka stores a group when it becomes Stable or Empty).
async fn persist_memberships(core: &Rc<Core>) {
    for (group, record) in core.groups.take_dirty(now_ms()) {
        if let Err(e) = write(core, &group, vec![record]).await {
            tracing::warn!(group, error = %e, "writing group metadata failed");
        }
    }
}

/// Kafka's `generateMemberId`: a static member's id starts with its instance id (which names
/// it across restarts), a dynamic member's with its client id.
fn new_member_id(client_id: &str, instance_id: Option<&str>) -> String {
    let id = uuid::Uuid::from_bytes(crate::metadata::new_topic_id());
    format!("{}-{id}", instance_id.unwrap_or(client_id))
}

async fn wait_for<T>(rx: local_channel::LocalReceiver<T>, limit_ms: i64, late: T) -> T {
    let limit = Duration::from_millis(limit_ms.clamp(1000, 30 * 60 * 1000) as u64 + 5000);
    futures_lite::future::or(async { rx.recv().await }, async {
        glommio::timer::sleep(limit).await;
        None
    })
    .await
    .unwrap_or(late)
}

/// Handles a group call on the core that owns the group.
pub async fn handle(core: &Rc<Core>, call: GroupCall) -> GroupReply {
    let membership = matches!(
        call,
        GroupCall::Join { .. } | GroupCall::Sync(_) | GroupCall::Leave { .. }
    );
    if !membership {
        return handle_call(core, call).await;
    }
    // The membership is written once the state machine settled (Stable or Empty).
    let reply = handle_call(core, call).await;
    persist_memberships(core).await;
    reply
}

async fn handle_call(core: &Rc<Core>, call: GroupCall) -> GroupReply {
    let c = &core.groups;
    let now = now_ms();
    match call {
        GroupCall::Join {
            req,
            version,
            client_id,
            client_host,
        } => {
            let group_id = req.group_id.0.to_string();
            let rebalance = if version == 0 || req.rebalance_timeout_ms <= 0 {
                req.session_timeout_ms
            } else {
                req.rebalance_timeout_ms
            };
            let jr = JoinRequest {
                member_id: req.member_id.to_string(),
                instance_id: req.group_instance_id.as_ref().map(|s| s.to_string()),
                client_id: client_id.clone(),
                client_host,
                session_timeout_ms: req.session_timeout_ms,
                rebalance_timeout_ms: rebalance,
                protocol_type: req.protocol_type.to_string(),
                protocols: req
                    .protocols
                    .iter()
                    .map(|p| (p.name.to_string(), p.metadata.clone()))
                    .collect(),
                require_known_member_id: version >= 4,
                reason: req.reason.as_ref().map(|r| r.to_string()),
                supports_skip_assignment: version >= 9,
            };
            let (tx, rx) = local_channel::new_bounded(1);
            let stored = {
                let mut groups = c.groups.borrow_mut();
                let slot = groups
                    .entry(group_id.clone())
                    .or_insert_with(|| Slot::new(&group_id));
                let new_id = new_member_id(&client_id, jr.instance_id.as_deref());
                let (outcome, deliveries) = slot.group.join(jr, new_id, now, &c.settings);
                match outcome {
                    Outcome::Reply(r) => {
                        slot.dispatch(deliveries);
                        return GroupReply::Join(r);
                    }
                    Outcome::ReplyWhenStored(r, swap) => {
                        slot.dispatch(deliveries);
                        Some((r, swap))
                    }
                    Outcome::Wait { member } => {
                        // A still-waiting earlier JoinGroup of this member is dropped here
                        // (its request answers REBALANCE_IN_PROGRESS).
                        slot.joins.insert(member, tx);
                        slot.dispatch(deliveries);
                        None
                    }
                }
            };
            let Some((response, swap)) = stored else {
                let late = JoinResponse::error(GroupError::RebalanceInProgress, &req.member_id);
                return GroupReply::Join(wait_for(rx, rebalance as i64, late).await);
            };
            // A static member took over its old member id without a rebalance: answered once
            // the membership with its new id is in the log, or, if that fails, taken back.
            match store_group(core, &group_id).await {
                Ok(()) => GroupReply::Join(response),
                Err(e) => {
                    tracing::warn!(
                        "Failed to persist metadata for group {group_id} static member {} with \
                         group instance id {} due to error {e:?}. Reverting to old member id {}.",
                        swap.new_member_id,
                        swap.instance_id,
                        swap.old_member_id
                    );
                    if let Some(slot) = c.groups.borrow_mut().get_mut(&group_id) {
                        slot.group.undo_static_swap(swap, now_ms());
                    }
                    GroupReply::Join(JoinResponse::error(e, ""))
                }
            }
        }
        GroupCall::Sync(req) => {
            let group_id = req.group_id.0.to_string();
            let (tx, rx) = local_channel::new_bounded(1);
            let limit = {
                let mut groups = c.groups.borrow_mut();
                let Some(slot) = groups.get_mut(&group_id) else {
                    return GroupReply::Sync(SyncResponse::error(GroupError::UnknownMemberId));
                };
                let (outcome, deliveries) = slot.group.sync(
                    &req.member_id,
                    req.group_instance_id.as_deref(),
                    req.generation_id,
                    req.protocol_type.as_deref(),
                    req.protocol_name.as_deref(),
                    req.assignments
                        .iter()
                        .map(|a| (a.member_id.to_string(), a.assignment.clone()))
                        .collect(),
                    now,
                );
                match outcome {
                    Outcome::Reply(r) => {
                        slot.dispatch(deliveries);
                        return GroupReply::Sync(r);
                    }
                    Outcome::ReplyWhenStored(_, never) => match never {},
                    Outcome::Wait { member } => {
                        let limit = slot
                            .group
                            .members
                            .get(&member)
                            .map_or(0, |m| m.rebalance_timeout_ms as i64);
                        slot.syncs.insert(member, tx);
                        (limit, deliveries)
                    }
                }
            };
            let (limit, deliveries) = limit;
            // The leader's assignment made the group Stable: as Kafka does, the members get
            // their assignments only once the group (with them) is in the log.
            let assigned = deliveries
                .iter()
                .any(|d| matches!(d, Delivery::Sync { response, .. } if response.error.is_none()));
            let stored = if assigned {
                store_group(core, &group_id).await
            } else {
                Ok(())
            };
            {
                let mut groups = c.groups.borrow_mut();
                if let Some(slot) = groups.get_mut(&group_id) {
                    match stored {
                        Ok(()) => slot.dispatch(deliveries),
                        Err(e) => {
                            tracing::warn!(group = %group_id, error = %e, "group assignment not stored; rebalancing");
                            let failed = deliveries.into_iter().map(|d| match d {
                                Delivery::Sync { member, .. } => Delivery::Sync {
                                    member,
                                    response: SyncResponse::error(e),
                                },
                                other => other,
                            });
                            slot.dispatch(failed.collect());
                            let more = slot.group.assignment_not_stored(
                                e,
                                &req.member_id,
                                now_ms(),
                                &c.settings,
                            );
                            slot.dispatch(more);
                        }
                    }
                }
            }
            let late = SyncResponse::error(GroupError::RebalanceInProgress);
            GroupReply::Sync(wait_for(rx, limit, late).await)
        }
        GroupCall::Heartbeat(req) => {
            let mut groups = c.groups.borrow_mut();
            let result = match groups.get_mut(req.group_id.0.as_str()) {
                Some(slot) => slot.group.heartbeat(
                    &req.member_id,
                    req.group_instance_id.as_deref(),
                    req.generation_id,
                    now,
                ),
                None => Err(GroupError::UnknownMemberId),
            };
            GroupReply::Heartbeat(result)
        }
        GroupCall::Leave { group, members } => {
            let mut groups = c.groups.borrow_mut();
            let Some(slot) = groups.get_mut(&group) else {
                // No such group here: the request as a whole fails (no per-member answers).
                return GroupReply::Leave(Err(GroupError::UnknownMemberId));
            };
            let mut results = Vec::with_capacity(members.len());
            for m in &members {
                let (result, deliveries) = slot.group.leave(
                    &m.member_id,
                    m.instance_id.as_deref(),
                    m.reason.as_deref(),
                    now,
                    &c.settings,
                );
                slot.dispatch(deliveries);
                results.push(result);
            }
            GroupReply::Leave(Ok(results))
        }
        GroupCall::Commit { req, checked } => GroupReply::Commit(commit(core, req, checked).await),
        GroupCall::Fetch { group, topics } => {
            let groups = c.groups.borrow();
            let offsets = groups.get(&group).map(|s| &s.group.offsets);
            let out = match topics {
                Some(topics) => topics
                    .into_iter()
                    .map(|(t, parts)| {
                        let found = parts
                            .into_iter()
                            .map(|p| {
                                let c = offsets.and_then(|o| o.get(&(t.clone(), p)).cloned());
                                (p, c)
                            })
                            .collect();
                        (t, found)
                    })
                    .collect(),
                None => {
                    let mut all: TopicResults<Option<Committed>> = Vec::new();
                    for ((t, p), c) in offsets.into_iter().flatten() {
                        match all.last_mut() {
                            Some((last, parts)) if last == t => parts.push((*p, Some(c.clone()))),
                            _ => all.push((t.clone(), vec![(*p, Some(c.clone()))])),
                        }
                    }
                    all
                }
            };
            GroupReply::Fetch(Ok(out))
        }
        GroupCall::Describe(group) => {
            let groups = c.groups.borrow();
            let Some(slot) = groups.get(&group) else {
                return GroupReply::Describe(Described {
                    state: State::Dead.name().into(),
                    ..Described::default()
                });
            };
            let g = &slot.group;
            let protocol = g.protocol.clone().unwrap_or_default();
            GroupReply::Describe(Described {
                state: g.state.name().into(),
                protocol_type: g.protocol_type.clone().unwrap_or_default(),
                protocol: protocol.clone(),
                members: g
                    .members
                    .values()
                    .map(|m| {
                        let metadata = m
                            .protocols
                            .iter()
                            .find(|(n, _)| *n == protocol)
                            .map(|(_, b)| b.clone())
                            .unwrap_or_default();
                        (
                            m.id.clone(),
                            m.instance_id.clone(),
                            m.client_id.clone(),
                            m.client_host.clone(),
                            metadata,
                            m.assignment.clone(),
                        )
                    })
                    .collect(),
            })
        }
        GroupCall::List => {
            let groups = c.groups.borrow();
            GroupReply::List(
                groups
                    .values()
                    .filter(|s| s.group.state != State::Dead)
                    .map(|s| {
                        (
                            s.group.id.clone(),
                            s.group.protocol_type.clone().unwrap_or_default(),
                            s.group.state.name().to_string(),
                        )
                    })
                    .collect(),
            )
        }
        GroupCall::Delete(group) => GroupReply::Delete(delete(core, &group).await),
        GroupCall::OffsetDelete(req) => GroupReply::OffsetDelete(offset_delete(core, req).await),
    }
}

/// Appends records to the group's `__consumer_offsets` partition (acks=all: answered after
/// the write).
async fn write(core: &Rc<Core>, group: &str, records: Vec<Record>) -> Result<(), GroupError> {
    if records.is_empty() {
        return Ok(());
    }
    let partition = partition_for(group, offsets_partitions(core));
    let Some(replica) = core.replica(OFFSETS_TOPIC, partition) else {
        return Err(GroupError::NotCoordinator);
    };
    let now = now_ms();
    let batch = build_batch(&records, now, ProducerFields::NONE);
    match replica.produce(Bytes::from(batch), -1, now).await {
        Ok(_) => Ok(()),
        Err(f) => {
            tracing::warn!(group, code = f.code, message = ?f.message, "__consumer_offsets write failed");
            Err(if f.code == K::MessageTooLarge.code() {
                GroupError::InvalidCommitOffsetSize
            } else {
                GroupError::CoordinatorNotAvailable
            })
        }
    }
}

/// The partition count of `__consumer_offsets`: `offsets.topic.num.partitions`, as Kafka maps
/// groups. Never the count in the metadata image: while the topic is being created a core's
/// image lists only the partitions applied so far, and a group must never map elsewhere.
pub fn offsets_partitions(core: &Core) -> i32 {
    core.groups.settings.offsets_partitions
}

async fn commit(core: &Rc<Core>, req: OffsetCommitRequest, checked: Checked) -> Checked {
    let group_id = req.group_id.0.to_string();
    let all = |e: GroupError| -> Checked {
        checked
            .iter()
            .map(|(t, ps)| (t.clone(), ps.iter().map(|(p, _)| (*p, Err(e))).collect()))
            .collect()
    };
    let valid = {
        let mut groups = core.groups.groups.borrow_mut();
        let slot = groups
            .entry(group_id.clone())
            .or_insert_with(|| Slot::new(&group_id));
        slot.group.validate_commit(
            &req.member_id,
            req.group_instance_id.as_deref(),
            req.generation_id_or_member_epoch,
            now_ms(),
        )
    };
    if let Err(e) = valid {
        return all(e);
    }
    let now = now_ms();
    let mut records = Vec::new();
    let mut commits = Vec::new();
    let mut results: Checked = Vec::new();
    for (topic, parts) in &checked {
        let Some(t) = req.topics.iter().find(|t| t.name.0.as_str() == topic) else {
            continue;
        };
        let mut outcomes = Vec::new();
        for (p, check) in parts {
            let Some(rp) = t.partitions.iter().find(|x| x.partition_index == *p) else {
                continue;
            };
            let metadata = rp
                .committed_metadata
                .as_ref()
                .map(|m| m.to_string())
                .unwrap_or_default();
            let outcome = match check {
                Err(e) => Err(*e),
                Ok(()) if metadata.len() > OFFSET_METADATA_MAX_BYTES => {
                    Err(GroupError::OffsetMetadataTooLarge)
                }
                Ok(()) => {
                    let c = Committed {
                        offset: rp.committed_offset,
                        leader_epoch: rp.committed_leader_epoch,
                        metadata,
                        commit_timestamp: now,
                    };
                    records.push(Record {
                        key: Some(records::offset_key(&group_id, topic, *p)),
                        value: Some(records::offset_value(&c)),
                        ..Record::default()
                    });
                    commits.push(((topic.clone(), *p), c));
                    Ok(())
                }
            };
            outcomes.push((*p, outcome));
        }
        results.push((topic.clone(), outcomes));
    }
    if let Err(e) = write(core, &group_id, records).await {
        for (_, parts) in results.iter_mut() {
            for (_, c) in parts.iter_mut().filter(|(_, c)| c.is_ok()) {
                *c = Err(e);
            }
        }
        return results;
    }
    let mut groups = core.groups.groups.borrow_mut();
    let slot = groups
        .entry(group_id.clone())
        .or_insert_with(|| Slot::new(&group_id));
    slot.group.offsets.extend(commits);
    results
}

async fn delete(core: &Rc<Core>, group: &str) -> Result<(), GroupError> {
    let offsets: Vec<(String, i32)> = {
        let mut groups = core.groups.groups.borrow_mut();
        let Some(slot) = groups.get_mut(group) else {
            return Err(GroupError::GroupIdNotFound);
        };
        if slot.group.is_gone() {
            return Err(GroupError::GroupIdNotFound);
        }
        slot.group.delete()?;
        let keys: Vec<(String, i32)> = slot.group.offsets.keys().cloned().collect();
        groups.remove(group);
        tracing::info!(
            "The following groups were deleted: {group}. A total of {} offsets were removed.",
            keys.len()
        );
        keys
    };
    let mut tombstones: Vec<Record> = offsets
        .iter()
        .map(|(t, p)| Record {
            key: Some(records::offset_key(group, t, *p)),
            value: None,
            ..Record::default()
        })
        .collect();
    tombstones.push(Record {
        key: Some(records::group_key(group)),
        value: None,
        ..Record::default()
    });
    write(core, group, tombstones).await
}

/// Topics a consumer-protocol member subscribes to (ConsumerProtocolSubscription: version,
/// then an array of topic names).
fn subscribed_topics(metadata: &[u8]) -> Option<Vec<String>> {
    let mut pos = 2;
    let count = i32::from_be_bytes(metadata.get(pos..pos + 4)?.try_into().ok()?);
    pos += 4;
    let mut out = Vec::new();
    for _ in 0..count.clamp(0, 100_000) {
        let len = i16::from_be_bytes(metadata.get(pos..pos + 2)?.try_into().ok()?);
        pos += 2;
        let len = usize::try_from(len).ok()?;
        out.push(String::from_utf8(metadata.get(pos..pos + len)?.to_vec()).ok()?);
        pos += len;
    }
    Some(out)
}

async fn offset_delete(core: &Rc<Core>, req: OffsetDeleteRequest) -> Result<Checked, GroupError> {
    let group = req.group_id.0.to_string();
    let (results, removed) = {
        let mut groups = core.groups.groups.borrow_mut();
        let Some(slot) = groups.get_mut(&group).filter(|s| !s.group.is_gone()) else {
            return Err(GroupError::GroupIdNotFound);
        };
        let g = &mut slot.group;
        if g.state != State::Empty && g.protocol_type.as_deref() != Some("consumer") {
            return Err(GroupError::NonEmptyGroup);
        }
        let subscribed: Vec<String> = if g.state == State::Empty {
            vec![]
        } else {
            let protocol = g.protocol.clone().unwrap_or_default();
            g.members
                .values()
                .flat_map(|m| {
                    m.protocols
                        .iter()
                        .find(|(n, _)| *n == protocol)
                        .and_then(|(_, b)| subscribed_topics(b))
                        .unwrap_or_default()
                })
                .collect()
        };
        let mut results = Vec::new();
        let mut removed = Vec::new();
        for t in &req.topics {
            let name = t.name.0.to_string();
            let busy = subscribed.contains(&name);
            let mut outcomes = Vec::new();
            for p in &t.partitions {
                if busy {
                    outcomes.push((p.partition_index, Err(GroupError::GroupSubscribedToTopic)));
                } else {
                    if g.offsets
                        .remove(&(name.clone(), p.partition_index))
                        .is_some()
                    {
                        removed.push((name.clone(), p.partition_index));
                    }
                    outcomes.push((p.partition_index, Ok(())));
                }
            }
            results.push((name, outcomes));
        }
        (results, removed)
    };
    let tombstones = removed
        .iter()
        .map(|(t, p)| Record {
            key: Some(records::offset_key(&group, t, *p)),
            value: None,
            ..Record::default()
        })
        .collect();
    write(core, &group, tombstones).await?;
    Ok(results)
}

/// A record's key and value, borrowed from a parsed batch.
struct RecordRef<'a> {
    key: Option<&'a [u8]>,
    value: Option<&'a [u8]>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscriptions_are_parsed_from_consumer_metadata() {
        let mut m = vec![0, 1, 0, 0, 0, 2, 0, 1, b'a', 0, 2, b'b', b'c'];
        assert_eq!(subscribed_topics(&m), Some(vec!["a".into(), "bc".into()]));
        m.truncate(10);
        assert_eq!(subscribed_topics(&m), None);
    }
}
