//! The active controller: validates topic administration, broker registrations and heartbeats,
//! ISR changes and elections against the committed metadata image, and answers with the
//! records to commit. See `docs/CLUSTER.md`. The behaviour is Kafka's QuorumController with its
//! ReplicationControlManager, ClusterControlManager and BrokerHeartbeatManager.
//!
//! # Driving it
//! One [`ControllerState`] per controller node, on one core:
//! - every committed raft entry, in order, on every controller (active or not):
//!   [`ControllerState::replay`] with the entry's index and its records;
//! - when this node becomes the raft leader: [`ControllerState::activate`] (brokers get fresh
//!   sessions), and [`ControllerState::deactivate`] when it stops being it;
//! - each request: [`ControllerState::handle`] gives the reply and the records to propose as one
//!   raft entry; the reply is sent once that entry committed (and was replayed), or replaced by
//!   NOT_CONTROLLER if it never commits. With no records, the reply can go at once;
//! - every few hundred milliseconds: [`ControllerState::tick`], whose records are proposed the
//!   same way (fencing brokers whose sessions expired, unclean elections). It fences one
//!   broker per call, so when it returned records, tick again once they committed.
//!
//! One operation at a time: `handle` and `tick` decide against the committed image, so the
//! records of one must have been replayed before the next is asked for (KRaft pipelines
//! against uncommitted state; Weir keeps the simpler rule, and heartbeats that change nothing
//! produce no records, so they do not wait).

pub mod assign;
mod cluster;
mod configs;
pub mod election;
pub mod error;
mod partitions;
pub mod request;
mod topics;
pub mod wire;

#[cfg(test)]
mod admin_tests;
#[cfg(test)]
mod invariants;
#[cfg(test)]
mod scenarios;
#[cfg(test)]
pub(crate) mod testkit;

pub use error::ControllerError;
pub use request::*;
pub use topics::{validate_topic_name, TOPIC_NAME_LENGTH_MAX};

use crate::metadata::image::MetadataImage;
use crate::metadata::records::MetadataRecord;
use crate::types::{NodeId, TopicId};
use std::collections::BTreeMap;

/// Producer ids are handed out in blocks, so the metadata log is written once per block, not
/// once per InitProducerId (Kafka's ProducerIdsBlock.PRODUCER_ID_BLOCK_SIZE).
pub const PRODUCER_ID_BLOCK_SIZE: i32 = 1000;

/// At most this many records per administrative operation (Kafka's MAX_RECORDS_PER_USER_OP), so
/// one request cannot build a raft entry of unbounded size.
pub const MAX_RECORDS_PER_USER_OP: usize = 10_000;

/// At most this many unclean elections per tick (Kafka's maxElectionsPerImbalance): the rest
/// wait for the next tick.
pub const MAX_ELECTIONS_PER_TICK: usize = 1000;

/// The controller's static configuration (`server.properties`), Kafka's names and defaults.
#[derive(Debug, Clone)]
pub struct ControllerConfig {
    /// `node.id` of this controller: its own dynamic broker configs come before the cluster
    /// default when resolving topic defaults, as in Kafka.
    pub node_id: NodeId,
    /// The cluster id brokers must register with.
    pub cluster_id: String,
    /// `num.partitions`.
    pub num_partitions: i32,
    /// `default.replication.factor`.
    pub default_replication_factor: i16,
    /// `delete.topic.enable`.
    pub delete_topic_enable: bool,
    /// `broker.session.timeout.ms`.
    pub broker_session_timeout_ms: i64,
    /// `min.insync.replicas`: the static default under topic and dynamic broker configs.
    pub min_insync_replicas: i32,
    /// `unclean.leader.election.enable`: the static default under topic and dynamic configs.
    pub unclean_leader_election_enable: bool,
}

impl Default for ControllerConfig {
    fn default() -> Self {
        Self {
            node_id: 1,
            cluster_id: String::new(),
            num_partitions: 1,
            default_replication_factor: 1,
            delete_topic_enable: true,
            broker_session_timeout_ms: 9000,
            min_insync_replicas: 1,
            unclean_leader_election_enable: false,
        }
    }
}

/// Which kind of resource a config belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigKind {
    Topic,
    Broker,
}

/// The broker's config schema, injected: the controller knows which configs exist only through
/// it, so config rules live in one place (the broker's config module).
pub trait ConfigValidator {
    /// Checks a topic's complete set of overrides and returns its effective configs (what
    /// CreateTopics answers), or Kafka's INVALID_CONFIG message.
    fn validate_topic(
        &self,
        overrides: &BTreeMap<String, String>,
    ) -> Result<Vec<EffectiveConfig>, String>;

    /// Checks the complete set of dynamic configs of one broker (`Some(id)`) or of the
    /// cluster default (`None`).
    fn validate_broker(
        &self,
        broker: Option<NodeId>,
        configs: &BTreeMap<String, String>,
    ) -> Result<(), String>;

    /// For a LIST-typed config (APPEND and SUBTRACT apply only to those), its default value;
    /// None when `key` is not a list.
    fn list_default(&self, kind: ConfigKind, key: &str) -> Option<String>;
}

/// What the controller remembers of a broker between heartbeats; volatile, as Kafka's
/// BrokerHeartbeatManager: a new active controller starts every session afresh.
#[derive(Debug, Clone, Copy)]
struct Session {
    last_contact_ms: i64,
    /// The metadata offset the broker said it applied (-1 before its first heartbeat).
    metadata_offset: i64,
}

pub struct ControllerState {
    config: ControllerConfig,
    validator: Box<dyn ConfigValidator>,
    /// The committed image: what every decision is made against.
    image: MetadataImage,
    /// Index of the last replayed entry.
    applied_offset: i64,
    /// The entry that holds each broker's current registration: caught up means applied past
    /// it (Kafka's registerBrokerRecordOffsets).
    registration_offsets: BTreeMap<NodeId, i64>,
    /// The entry that put a broker in controlled shutdown: it may stop once every active broker
    /// applied past it (Kafka's controlledShutdownOffset).
    shutdown_offsets: BTreeMap<NodeId, i64>,
    sessions: BTreeMap<NodeId, Session>,
    active: bool,
    /// State of the generator of topic ids (seeded by the caller: no randomness in here).
    rng: u64,
}

impl ControllerState {
    /// A controller with an empty image; `seed` seeds topic ids (the broker passes random
    /// bytes, tests a constant).
    pub fn new(config: ControllerConfig, validator: Box<dyn ConfigValidator>, seed: u64) -> Self {
        Self {
            config,
            validator,
            image: MetadataImage::default(),
            applied_offset: 0,
            registration_offsets: BTreeMap::new(),
            shutdown_offsets: BTreeMap::new(),
            sessions: BTreeMap::new(),
            active: false,
            rng: seed,
        }
    }

    /// Starts from a snapshot taken at `offset` (entries after it are replayed next). Every
    /// registration counts as written at `offset`, the earliest the snapshot can vouch for.
    pub fn restore(&mut self, image: MetadataImage, offset: i64) {
        self.registration_offsets = image.brokers().map(|b| (b.id, offset)).collect();
        self.shutdown_offsets.clear();
        self.image = image;
        self.applied_offset = offset;
    }

    pub fn image(&self) -> &MetadataImage {
        &self.image
    }

    pub fn config(&self) -> &ControllerConfig {
        &self.config
    }

    pub fn applied_offset(&self) -> i64 {
        self.applied_offset
    }

    pub fn is_active(&self) -> bool {
        self.active
    }

    /// Applies one committed entry (raft index `offset`).
    pub fn replay(&mut self, offset: i64, records: &[MetadataRecord]) {
        for r in records {
            match r {
                MetadataRecord::RegisterBroker(reg) => {
                    // Even an amended registration must be applied before the broker counts
                    // as caught up (Kafka's registerBrokerRecordOffsets).
                    self.registration_offsets.insert(reg.broker_id, offset);
                    if self
                        .image
                        .broker(reg.broker_id)
                        .is_none_or(|b| b.incarnation_id != reg.incarnation_id)
                    {
                        self.shutdown_offsets.remove(&reg.broker_id);
                    }
                }
                MetadataRecord::UnregisterBroker(u)
                    if self.image.broker(u.broker_id).map(|b| b.epoch) == Some(u.broker_epoch) =>
                {
                    self.registration_offsets.remove(&u.broker_id);
                    self.shutdown_offsets.remove(&u.broker_id);
                    self.sessions.remove(&u.broker_id);
                }
                MetadataRecord::BrokerChange(c) if c.in_controlled_shutdown == Some(true) => {
                    self.shutdown_offsets.insert(c.broker_id, offset);
                }
                _ => {}
            }
            self.image.apply(r);
        }
        self.applied_offset = offset;
    }

    /// This node became the active controller: every registered broker gets a fresh session,
    /// so none is fenced for the time no controller was listening (as KRaft does).
    pub fn activate(&mut self, now_ms: i64) {
        self.active = true;
        self.sessions = self
            .image
            .brokers()
            .map(|b| {
                (
                    b.id,
                    Session {
                        last_contact_ms: now_ms,
                        metadata_offset: -1,
                    },
                )
            })
            .collect();
    }

    /// This node is no longer the active controller: sessions are the next one's business.
    pub fn deactivate(&mut self) {
        self.active = false;
        self.sessions.clear();
    }

    /// Decides one request against the committed image: the reply, and the records to propose
    /// as one raft entry before sending it.
    pub fn handle(
        &mut self,
        request: ControllerRequest,
        now_ms: i64,
    ) -> (ControllerReply, Vec<MetadataRecord>) {
        if !self.active {
            let e =
                ControllerError::NotController("This node is not the active controller.".into());
            return (ControllerReply::refuse(&request, e), Vec::new());
        }
        match request {
            ControllerRequest::CreateTopics {
                topics,
                validate_only,
            } => self.create_topics(topics, validate_only),
            ControllerRequest::DeleteTopics { topics } => self.delete_topics(topics),
            ControllerRequest::CreatePartitions {
                topics,
                validate_only,
            } => self.create_partitions(topics, validate_only),
            ControllerRequest::AlterConfigs {
                resources,
                replace_all,
                validate_only,
            } => self.alter_configs(resources, replace_all, validate_only),
            ControllerRequest::AllocateProducerIds {
                broker_id,
                broker_epoch,
            } => self.allocate_producer_ids(broker_id, broker_epoch),
            ControllerRequest::RegisterBroker(r) => self.register_broker(r, now_ms),
            ControllerRequest::BrokerHeartbeat(h) => self.heartbeat(h, now_ms),
            ControllerRequest::AlterPartition(a) => self.alter_partition(a, now_ms),
            ControllerRequest::ElectLeaders(e) => self.elect_leaders(e, now_ms),
            ControllerRequest::UnregisterBroker { broker_id } => {
                self.unregister_broker(broker_id, now_ms)
            }
            ControllerRequest::ReportUnclean(r) => self.report_unclean(r),
        }
    }

    /// Timers: fences one broker whose session expired (one per tick, as Kafka, so the next
    /// decision sees the previous one's records), else runs unclean elections where the
    /// topic's config now allows them.
    pub fn tick(&mut self, now_ms: i64) -> Vec<MetadataRecord> {
        if !self.active {
            return Vec::new();
        }
        if let Some(records) = self.fence_stale_broker(now_ms) {
            return records;
        }
        self.unclean_sweep(now_ms)
    }

    /// A fresh random (v4) topic id, never zero and never one the image has.
    fn next_topic_id(&mut self) -> TopicId {
        loop {
            let mut id = [0u8; 16];
            id[..8].copy_from_slice(&self.next_random().to_le_bytes());
            id[8..].copy_from_slice(&self.next_random().to_le_bytes());
            id[6] = (id[6] & 0x0f) | 0x40;
            id[8] = (id[8] & 0x3f) | 0x80;
            if self.image.topic_by_id(&id).is_none() {
                return id;
            }
        }
    }

    /// SplitMix64: small, fast, and good enough to make ids that do not collide.
    fn next_random(&mut self) -> u64 {
        self.rng = self.rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}
