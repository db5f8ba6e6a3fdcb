//! One core's groups: the state machines of the groups whose `__consumer_offsets` partition
//! this core owns, the requests waiting on them, and the offset writes to those partitions.
//! Only this core touches them; other cores reach them as [`GroupCall`] messages.
//!
//! The coordinator knows nothing of the core it runs on: what it needs from it (the clock,
//! member ids, appends to `__consumer_offsets`) comes through a [`GroupHost`], the settings at
//! construction. Its parts: `calls` (the messages), `host` (the [`GroupHost`] seam), `loading`
//! (groups rebuilt from the log), `membership` (JoinGroup, SyncGroup, Heartbeat, LeaveGroup),
//! `offsets` (OffsetCommit, OffsetFetch, OffsetDelete), `admin` (DescribeGroups, ListGroups,
//! DeleteGroups), `timers` (sessions, deadlines, offset expiry).

mod admin;
mod calls;
mod host;
mod loading;
mod membership;
mod offsets;
mod timers;

#[cfg(test)]
mod tests;

pub use calls::{
    CommitCall, CommitOffset, CommitPartition, Described, GroupCall, GroupReply, Leaving,
    MemberCall, SyncCall, TopicResults,
};
pub use host::{AppendFailure, GroupHost};
pub use timers::TICK;

use super::records;
use super::state::{Delivery, Group, JoinResponse, State, SyncResponse};
use super::{partition_for, GroupError, GroupSettings};
use ahash::AHashMap;
use bytes::Bytes;
use glommio::channels::local_channel::{LocalReceiver, LocalSender};
use std::cell::RefCell;
use std::time::Duration;
use weir_storage::batch::{build_batch, ProducerFields, Record};

/// Kafka's `offset.metadata.max.bytes`.
pub const OFFSET_METADATA_MAX_BYTES: usize = 4096;

/// A group and the requests waiting on it.
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

    /// Forgets the groups of one `__consumer_offsets` partition: this broker stopped leading
    /// it, and the new leader's coordinator rebuilds them from its copy of the log.
    pub fn unload(&self, partition: i32) {
        let n = self.offsets_partitions();
        let mut groups = self.groups.borrow_mut();
        let before = groups.len();
        groups.retain(|id, _| crate::group::partition_for(id, n) != partition);
        let gone = before - groups.len();
        if gone > 0 {
            tracing::info!(
                partition,
                groups = gone,
                "groups unloaded: this broker no longer leads their __consumer_offsets partition"
            );
        }
    }

    /// The partition count of `__consumer_offsets`: `offsets.topic.num.partitions`, as Kafka
    /// maps groups. Never the count in the metadata image: while the topic is being created a
    /// core's image lists only the partitions applied so far, and a group must never map
    /// elsewhere.
    pub fn offsets_partitions(&self) -> i32 {
        self.settings.offsets_partitions
    }

    /// Handles a group call on the core that owns the group.
    pub async fn handle(&self, host: &impl GroupHost, call: GroupCall) -> GroupReply {
        let membership = matches!(
            call,
            GroupCall::Join { .. } | GroupCall::Sync(_) | GroupCall::Leave { .. }
        );
        if !membership {
            return self.handle_call(host, call).await;
        }
        // The membership is written once the state machine settled (Stable or Empty).
        let reply = self.handle_call(host, call).await;
        self.persist_memberships(host).await;
        reply
    }

    async fn handle_call(&self, host: &impl GroupHost, call: GroupCall) -> GroupReply {
        let now = host.now_ms();
        match call {
            GroupCall::Join { group, req } => {
                GroupReply::Join(self.join(host, group, req, now).await)
            }
            GroupCall::Sync(call) => GroupReply::Sync(self.sync(host, call, now).await),
            GroupCall::Heartbeat(call) => GroupReply::Heartbeat(self.heartbeat(&call, now)),
            GroupCall::Leave { group, members } => {
                GroupReply::Leave(self.leave(&group, &members, now))
            }
            GroupCall::Commit(call) => GroupReply::Commit(self.commit(host, call).await),
            GroupCall::Fetch { group, topics } => GroupReply::Fetch(Ok(self.fetch(&group, topics))),
            GroupCall::Describe(group) => GroupReply::Describe(self.describe(&group)),
            GroupCall::List => GroupReply::List(self.list()),
            GroupCall::Delete(group) => GroupReply::Delete(self.delete(host, &group).await),
            GroupCall::OffsetDelete { group, topics } => {
                GroupReply::OffsetDelete(self.offset_delete(host, group, topics).await)
            }
        }
    }

    /// Appends records to the group's `__consumer_offsets` partition (acks=all: answered
    /// after the write).
    async fn write(
        &self,
        host: &impl GroupHost,
        group: &str,
        records: Vec<Record>,
    ) -> Result<(), GroupError> {
        if records.is_empty() {
            return Ok(());
        }
        let partition = partition_for(group, self.offsets_partitions());
        let now = host.now_ms();
        let batch = build_batch(&records, now, ProducerFields::NONE);
        match host
            .append_offsets(partition, Bytes::from(batch), now)
            .await
        {
            Ok(()) => Ok(()),
            Err(AppendFailure::NotHere) => Err(GroupError::NotCoordinator),
            Err(AppendFailure::Refused {
                code,
                message,
                too_large,
            }) => {
                tracing::warn!(group, code, message = ?message, "__consumer_offsets write failed");
                Err(if too_large {
                    GroupError::InvalidCommitOffsetSize
                } else {
                    GroupError::CoordinatorNotAvailable
                })
            }
        }
    }
}

/// Kafka's `generateMemberId`: a static member's id starts with its instance id (which names
/// it across restarts), a dynamic member's with its client id.
fn new_member_id(host: &impl GroupHost, client_id: &str, instance_id: Option<&str>) -> String {
    let id = uuid::Uuid::from_bytes(host.random_id());
    format!("{}-{id}", instance_id.unwrap_or(client_id))
}

/// The answer to a waiting request, or `late` if none came within its limit.
async fn wait_for<T>(rx: LocalReceiver<T>, limit_ms: i64, late: T) -> T {
    let limit = Duration::from_millis(limit_ms.clamp(1000, 30 * 60 * 1000) as u64 + 5000);
    futures_lite::future::or(async { rx.recv().await }, async {
        glommio::timer::sleep(limit).await;
        None
    })
    .await
    .unwrap_or(late)
}
