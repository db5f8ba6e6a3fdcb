//! One core's runtime: the partitions it owns, its metadata image, its end of the mesh, and (on
//! the controller core) the controller. Requests for partitions this core owns run here; others
//! are forwarded to their owner as messages.

use super::mesh::{Mesh, ShardMsg};
use super::messages::{
    ReadResult, ReadSpec, RemoteRegion, ShardRequest, ShardResponse, WaitSpec, WaiterId,
};
use super::replicas::ReplicaTable;
use super::settings::{CleanerSettings, Settings};
use crate::clock::now_ms;
use crate::cluster::Cluster;
use crate::errors::ApiError;
use crate::replica::Replica;
use crate::shard::{shard_for, ShardId, CONTROLLER_SHARD};
use ahash::AHashMap;
use glommio::channels::channel_mesh::Receivers;
use glommio::channels::local_channel::LocalSender;
use kafka_protocol::ResponseError as K;
use std::cell::{Cell, RefCell};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::rc::Rc;
use std::time::Duration;
use weir_replication::controller::{ControllerError, ControllerReply, ControllerRequest};
use weir_replication::metadata::{Change, MetadataImage, MetadataRecord};
use weir_storage::log::CleanOptions;
use weir_storage::{FileRegion, PartitionLog, SegmentFileCache, TopicPartition};

pub struct Core {
    pub settings: Settings,
    pub mesh: Mesh,
    pub image: RefCell<MetadataImage>,
    partitions: RefCell<ReplicaTable>,
    cache: Rc<SegmentFileCache>,
    /// The cluster side (quorum, controller, registration), on core 0 only.
    cluster: RefCell<Option<Rc<Cluster>>>,
    /// Producer ids of this broker's block not yet handed out, `[next, end)` (core 0 only).
    producer_ids: Cell<(i64, i64)>,
    /// Whether the log directory was shut down cleanly (no recovery scans needed).
    clean_start: bool,
    stopping: Cell<bool>,
    /// Set once this broker is registered and unfenced (core 0 tells every core).
    initial_applied: Cell<bool>,
    /// The consumer groups whose `__consumer_offsets` partition this core owns.
    pub groups: crate::group::coordinator::Coordinator,
    /// Long polls of other cores' fetches waiting here, by id: dropping one's sender cancels it.
    waits: RefCell<AHashMap<WaiterId, LocalSender<()>>>,
    /// Numbers this core's long polls (`WaiterId::id`).
    next_waiter: Cell<u64>,
    /// This core's replica fetchers, by leader.
    pub(crate) fetchers: crate::replicate::fetcher::Fetchers,
    /// ISR proposals waiting to go to the controller together (`roles::send_proposals`).
    pub(crate) proposals: RefCell<
        Vec<(
            Rc<Replica>,
            weir_replication::partition::leader::IsrProposal,
        )>,
    >,
}

impl Core {
    pub fn new(
        settings: Settings,
        mesh: Mesh,
        cache: Rc<SegmentFileCache>,
        clean_start: bool,
    ) -> Rc<Self> {
        let groups = crate::group::coordinator::Coordinator::new(settings.groups);
        Rc::new(Self {
            groups,
            settings,
            mesh,
            image: RefCell::default(),
            partitions: RefCell::default(),
            cache,
            cluster: RefCell::new(None),
            producer_ids: Cell::new((0, 0)),
            clean_start,
            stopping: Cell::new(false),
            initial_applied: Cell::new(false),
            waits: RefCell::default(),
            next_waiter: Cell::new(0),
            fetchers: Default::default(),
            proposals: RefCell::default(),
        })
    }

    /// A fresh id for a long poll started on this core.
    pub fn new_waiter(&self) -> WaiterId {
        let id = self.next_waiter.get();
        self.next_waiter.set(id + 1);
        WaiterId {
            origin: self.id(),
            id,
        }
    }

    pub fn id(&self) -> ShardId {
        self.mesh.me()
    }

    pub fn cores(&self) -> usize {
        self.settings.cores
    }

    pub fn owner_of(&self, topic: &str, partition: i32) -> ShardId {
        crate::shard::shard_for_parts(topic, partition, self.cores())
    }

    /// The owning core of a partition the metadata knows, `None` for an unknown topic or
    /// partition (UNKNOWN_TOPIC_OR_PARTITION).
    pub fn owner_of_existing(&self, topic: &str, partition: i32) -> Option<ShardId> {
        let count = self
            .image
            .borrow()
            .topic(topic)
            .map_or(0, |m| m.partitions.len() as i32);
        (0..count)
            .contains(&partition)
            .then(|| self.owner_of(topic, partition))
    }

    pub fn replica(&self, topic: &str, partition: i32) -> Option<Rc<Replica>> {
        self.partitions.borrow().get(topic, partition).cloned()
    }

    /// Every partition this core holds.
    pub fn all_replicas(&self) -> Vec<Rc<Replica>> {
        self.partitions.borrow().all().cloned().collect()
    }

    /// Where another broker serves `listener` (its registration), as `host:port`.
    pub fn broker_endpoint(
        &self,
        broker: weir_replication::types::NodeId,
        listener: &str,
    ) -> Option<String> {
        let image = self.image.borrow();
        let b = image.broker(broker)?;
        let e = b
            .endpoints
            .iter()
            .find(|e| e.listener.eq_ignore_ascii_case(listener))?;
        Some(format!("{}:{}", e.host, e.port))
    }

    pub fn owned_partitions(&self) -> usize {
        self.partitions.borrow().len()
    }

    /// Runs `request` on `shard`: directly if that is this core, else as a message.
    pub async fn call(
        self: &Rc<Self>,
        shard: ShardId,
        request: ShardRequest,
    ) -> Option<ShardResponse> {
        if shard == self.id() {
            return Some(Box::pin(self.handle(request, false)).await);
        }
        match self.mesh.call(shard, request).await {
            Ok(r) => Some(r),
            Err(e) => {
                tracing::warn!(error = %e, "cross-core call failed");
                None
            }
        }
    }

    /// Serves calls from the other cores until the mesh closes.
    pub fn serve_mesh(self: &Rc<Self>, mut receivers: Receivers<ShardMsg>) {
        for (peer, stream) in receivers.streams() {
            let core = self.clone();
            glommio::spawn_local(async move {
                while let Some(msg) = stream.recv().await {
                    match msg {
                        ShardMsg::Call { id, request } => {
                            let core = core.clone();
                            glommio::spawn_local(async move {
                                let response = core.handle(request, true).await;
                                core.mesh.reply(peer, id, response).await;
                            })
                            .detach();
                        }
                        ShardMsg::Reply { id, response } => core.mesh.deliver(id, response),
                    }
                }
            })
            .detach();
        }
    }

    /// Handles a shard request on this core; `remote` says the answer crosses cores, so file
    /// regions are handed over as duplicated descriptors.
    pub async fn handle(self: &Rc<Self>, request: ShardRequest, remote: bool) -> ShardResponse {
        match request {
            ShardRequest::Produce {
                topic,
                partition,
                records,
                acks,
                timeout_ms,
                now_ms,
            } => {
                let Some(r) = self.leader_replica(&topic, partition) else {
                    return ShardResponse::Produce(Err(super::messages::ProduceFailure::code(
                        self.not_here(&topic, partition),
                    )));
                };
                ShardResponse::Produce(r.produce_within(records, acks, timeout_ms, now_ms).await)
            }
            ShardRequest::Read(specs) => {
                debug_assert!(remote, "local reads use read_local");
                let local = self.read_local(&specs).await;
                ShardResponse::Read(local.into_iter().map(to_remote).collect())
            }
            ShardRequest::WaitForData {
                waiter,
                parts,
                max_wait_ms,
            } => {
                // Cancellable: the fetch that asked may be answered by another core's data
                // first, and must not leave this wait running until max_wait_ms.
                let (cancel, cancelled) = glommio::channels::local_channel::new_bounded::<()>(1);
                self.waits.borrow_mut().insert(waiter, cancel);
                futures_lite::future::or(self.wait_for_data(&parts, max_wait_ms), async move {
                    let _ = cancelled.recv().await;
                })
                .await;
                self.waits.borrow_mut().remove(&waiter);
                ShardResponse::Waited
            }
            ShardRequest::CancelWait(waiter) => {
                // Dropping the sender ends the wait's `recv`.
                self.waits.borrow_mut().remove(&waiter);
                ShardResponse::WaitCancelled
            }
            ShardRequest::ListOffset {
                topic,
                partition,
                timestamp,
                committed: _,
                current_leader_epoch,
            } => {
                let Some(r) = self.leader_replica(&topic, partition) else {
                    return ShardResponse::ListOffset(Err(self.not_here(&topic, partition)));
                };
                ShardResponse::ListOffset(r.list_offset(timestamp, current_leader_epoch).await)
            }
            ShardRequest::OffsetForEpoch {
                topic,
                partition,
                current_leader_epoch,
                leader_epoch,
            } => {
                let Some(r) = self.leader_replica(&topic, partition) else {
                    return ShardResponse::OffsetForEpoch(Err(self.not_here(&topic, partition)));
                };
                ShardResponse::OffsetForEpoch(
                    r.offset_for_epoch(current_leader_epoch, leader_epoch),
                )
            }
            ShardRequest::DeleteRecords {
                topic,
                partition,
                offset,
            } => {
                let Some(r) = self.leader_replica(&topic, partition) else {
                    return ShardResponse::DeleteRecords(Err(ApiError {
                        code: self.not_here(&topic, partition),
                        message: None,
                    }));
                };
                ShardResponse::DeleteRecords(r.delete_records(offset).await)
            }
            ShardRequest::Apply(records) => {
                self.apply(records).await;
                ShardResponse::Applied
            }
            ShardRequest::InstallImage(image) => {
                self.install_image(*image).await;
                ShardResponse::Applied
            }
            ShardRequest::ClusterReady => {
                self.initial_applied.set(true);
                ShardResponse::Applied
            }
            ShardRequest::Group(call) => {
                ShardResponse::Group(self.groups.handle(&**self, *call).await)
            }
            ShardRequest::Controller(request) => {
                ShardResponse::Controller(Box::new(self.controller_call_here(*request).await))
            }
            ShardRequest::ProducerId => ShardResponse::ProducerId(self.producer_id_here().await),
        }
    }

    /// Reads partitions this core owns, for consumers or followers (whose positions may move
    /// the high watermark and the ISR).
    pub async fn read_local(self: &Rc<Self>, specs: &[ReadSpec]) -> Vec<ReadResult<FileRegion>> {
        let mut out = Vec::with_capacity(specs.len());
        for spec in specs {
            match self.leader_replica(&spec.topic, spec.partition) {
                Some(r) => {
                    let mut result = r.read(spec).await;
                    if spec.follower.is_some()
                        && result.error_code == 0
                        && result.diverging_epoch.is_none()
                    {
                        let recorded = {
                            let image = self.image.borrow();
                            let brokers = crate::replicate::brokers::ImageBrokers(&image);
                            r.record_follower_fetch(spec, &brokers, now_ms())
                        };
                        match recorded {
                            Ok(actions) => self.leader_actions(&r, actions),
                            Err(code) => result = ReadResult::error(code),
                        }
                    }
                    out.push(result);
                }
                None => {
                    let mut result = ReadResult::error(self.not_here(&spec.topic, spec.partition));
                    result.current_leader = self.leader_of(&spec.topic, spec.partition);
                    out.push(result);
                }
            }
        }
        out
    }

    /// The partition's leader and leader epoch as this core's image says (KIP-951 hints).
    pub fn leader_of(&self, topic: &str, partition: i32) -> Option<(i32, i32)> {
        self.image
            .borrow()
            .topic(topic)
            .and_then(|t| t.partitions.get(partition as usize))
            .map(|p| (p.leader, p.leader_epoch))
    }

    /// Resolves when any listed partition this core owns moved past what the fetch saw, or
    /// after the wait. A partition no longer here (deleted, moved) answers at once: the fetch
    /// reads it again and reports the error.
    pub async fn wait_for_data(&self, parts: &[WaitSpec], max_wait_ms: u64) {
        let mut replicas = Vec::with_capacity(parts.len());
        for p in parts {
            match self.replica(&p.topic, p.partition) {
                Some(r) if !r.moved_past(p.fetch_offset, p.seen_high_watermark, p.follower) => {
                    replicas.push((r, p))
                }
                _ => return,
            }
        }
        if replicas.is_empty() {
            return;
        }
        // Consumers read up to the high watermark, so only its movement can answer them;
        // followers read up to the log end.
        let waits = replicas.iter().map(|(r, p)| {
            let log = r.log.clone();
            let (end, hw) = if p.follower {
                (p.fetch_offset, i64::MAX)
            } else {
                (i64::MAX, p.seen_high_watermark)
            };
            Box::pin(async move { log.wait_for_progress(end, hw).await })
        });
        let any = futures_lite::future::or(
            select_all(waits.collect()),
            glommio::timer::sleep(Duration::from_millis(max_wait_ms)),
        );
        any.await;
    }

    /// Delivers a metadata image to every core, replacing theirs (a snapshot was installed).
    pub async fn publish_image(self: &Rc<Self>, image: MetadataImage) {
        let calls = (0..self.cores()).map(|shard| {
            let core = self.clone();
            let image = Box::new(image.clone());
            Box::pin(async move {
                core.call(shard, ShardRequest::InstallImage(image)).await;
            })
        });
        join_all(calls.collect()).await;
    }

    /// Tells every core this broker is registered and unfenced.
    pub async fn announce_ready(self: &Rc<Self>) {
        let calls = (0..self.cores()).map(|shard| {
            let core = self.clone();
            Box::pin(async move {
                core.call(shard, ShardRequest::ClusterReady).await;
            })
        });
        join_all(calls.collect()).await;
    }

    /// Delivers committed metadata records to every core (this one included) and waits until
    /// all have applied them, so an answered CreateTopics means the partitions are ready.
    pub async fn publish(self: &Rc<Self>, records: Vec<MetadataRecord>) {
        let calls = (0..self.cores()).map(|shard| {
            let core = self.clone();
            let records = records.clone();
            Box::pin(async move {
                core.call(shard, ShardRequest::Apply(records)).await;
            })
        });
        join_all(calls.collect()).await;
    }

    /// Applies metadata records to this core's image and opens, reconfigures or deletes the
    /// partitions this core owns accordingly.
    pub fn initial_metadata_applied(&self) -> bool {
        self.initial_applied.get()
    }

    pub async fn apply(self: &Rc<Self>, records: Vec<MetadataRecord>) {
        for record in records {
            let change = self.image.borrow_mut().apply(&record);
            self.react(change).await;
        }
    }

    /// Acts on one change of the image: open a partition this node now holds a replica of,
    /// reconfigure or delete partitions. (Leadership itself is read from the image when a
    /// request arrives.)
    async fn react(self: &Rc<Self>, change: Change) {
        match change {
            Change::PartitionAdded { topic, partition }
            | Change::PartitionChanged {
                topic, partition, ..
            } => {
                if self.owner_of(&topic, partition) == self.id()
                    && self.is_replica(&topic, partition)
                {
                    if let Err(e) = self.open_partition(&topic, partition).await {
                        tracing::error!(topic, partition, error = %e, "opening partition failed");
                    }
                    self.update_role(&topic, partition).await;
                }
            }
            Change::TopicConfigChanged { topic } => self.reconfigure(&topic),
            Change::TopicRemoved {
                name, partitions, ..
            } => self.delete_partitions(&name, partitions).await,
            Change::UncleanElection {
                topic,
                partition,
                leader,
                leader_epoch,
            } => {
                if self.owner_of(&topic, partition) == self.id() {
                    tracing::warn!(
                        topic,
                        partition,
                        leader,
                        leader_epoch,
                        "unclean leader election: the new leader may lack acknowledged records"
                    );
                }
            }
            Change::None
            | Change::TopicCreated { .. }
            | Change::BrokerConfigChanged { .. }
            | Change::BrokerRegistered { .. }
            | Change::BrokerUnregistered { .. }
            | Change::BrokerChanged { .. } => {}
        }
    }

    /// Replaces this core's image with `image` (a snapshot was installed) and brings its
    /// partitions in line: open those it now holds, delete those whose topic is gone (a topic
    /// deleted while this node missed the records), reconfigure the rest.
    pub async fn install_image(self: &Rc<Self>, image: MetadataImage) {
        let old = std::mem::replace(&mut *self.image.borrow_mut(), image);
        let gone: Vec<(String, i32)> = old
            .topics()
            .filter(|t| {
                self.image
                    .borrow()
                    .topic(&t.name)
                    .is_none_or(|now| now.id != t.id)
            })
            .map(|t| (t.name.clone(), t.partitions.len() as i32))
            .collect();
        for (name, partitions) in gone {
            self.delete_partitions(&name, partitions).await;
        }
        let wanted: Vec<(String, i32)> = self
            .image
            .borrow()
            .topics()
            .flat_map(|t| (0..t.partitions.len() as i32).map(move |p| (t.name.clone(), p)))
            .filter(|(t, p)| self.owner_of(t, *p) == self.id() && self.is_replica(t, *p))
            .collect();
        for (topic, partition) in wanted {
            if let Err(e) = self.open_partition(&topic, partition).await {
                tracing::error!(topic, partition, error = %e, "opening partition failed");
            }
            self.update_role(&topic, partition).await;
        }
        let topics: Vec<String> = self
            .image
            .borrow()
            .topics()
            .map(|t| t.name.clone())
            .collect();
        for t in topics {
            self.reconfigure(&t);
        }
    }

    fn reconfigure(&self, topic: &str) {
        let configs = self
            .image
            .borrow()
            .topic(topic)
            .map(|t| t.configs.clone())
            .unwrap_or_default();
        match (self.settings.resolve_topic)(&configs) {
            Ok(s) => {
                for r in self.partitions.borrow().of_topic(topic) {
                    r.set_settings(s.clone());
                }
            }
            Err(e) => {
                tracing::error!(topic, error = %e, "committed topic config does not resolve")
            }
        }
    }

    async fn delete_partitions(&self, name: &str, partitions: i32) {
        for p in 0..partitions {
            let removed = self.partitions.borrow_mut().remove(name, p);
            if let Some(r) = removed {
                if let Some(leader) = r.role.borrow().followed_leader() {
                    self.fetchers.unfollow(leader, name, p);
                }
                r.role.borrow_mut().close();
                if let Err(e) = r.log.clone().delete().await {
                    tracing::error!(partition = %r.tp, error = %e, "deleting partition files failed");
                }
            }
        }
    }

    /// The partition's replica here when this node leads it: only the leader serves clients.
    pub fn leader_replica(&self, topic: &str, partition: i32) -> Option<Rc<Replica>> {
        if !self.leads(topic, partition) {
            return None;
        }
        self.replica(topic, partition)
    }

    /// Why a request for a partition cannot be served here: the topic or partition does not
    /// exist, or another broker (or none, during an election) leads it.
    pub fn not_here(&self, topic: &str, partition: i32) -> i16 {
        let exists = self
            .image
            .borrow()
            .topic(topic)
            .is_some_and(|t| partition >= 0 && (partition as usize) < t.partitions.len());
        if exists {
            K::NotLeaderOrFollower.code()
        } else {
            K::UnknownTopicOrPartition.code()
        }
    }

    /// Whether this node holds a replica of the partition (the image's assignment).
    pub fn is_replica(&self, topic: &str, partition: i32) -> bool {
        self.image
            .borrow()
            .topic(topic)
            .and_then(|t| t.partitions.get(partition as usize))
            .is_some_and(|p| p.replicas.contains(&self.settings.node_id))
    }

    /// Whether this node leads the partition (clients may produce and fetch here).
    pub fn leads(&self, topic: &str, partition: i32) -> bool {
        self.image
            .borrow()
            .topic(topic)
            .and_then(|t| t.partitions.get(partition as usize))
            .is_some_and(|p| p.leader == self.settings.node_id)
    }

    /// Core 0's cluster side, once started.
    pub fn set_cluster(&self, cluster: Rc<Cluster>) {
        *self.cluster.borrow_mut() = Some(cluster);
    }

    pub fn cluster(&self) -> Option<Rc<Cluster>> {
        self.cluster.borrow().clone()
    }

    /// The active controller as this node knows it (core 0 knows; other cores say none).
    pub fn active_controller(&self) -> Option<weir_replication::types::NodeId> {
        self.cluster().and_then(|c| c.active_controller())
    }

    /// Sends `request` to the active controller (through core 0) and answers once its records
    /// are applied on this node.
    pub async fn controller_call(self: &Rc<Self>, request: ControllerRequest) -> ControllerReply {
        match self
            .call(
                CONTROLLER_SHARD,
                ShardRequest::Controller(Box::new(request.clone())),
            )
            .await
        {
            Some(ShardResponse::Controller(r)) => *r,
            _ => ControllerReply::refuse(
                &request,
                ControllerError::NotController("the broker is shutting down".into()),
            ),
        }
    }

    async fn controller_call_here(&self, request: ControllerRequest) -> ControllerReply {
        let Some(cluster) = self.cluster() else {
            return ControllerReply::refuse(
                &request,
                ControllerError::NotController("the cluster side is not running".into()),
            );
        };
        let timeout = cluster
            .settings
            .request_timeout
            .max(Duration::from_secs(30));
        cluster.client.call_and_wait(request, timeout).await
    }

    /// A new producer id for InitProducerId, from this broker's block (core 0 asks the
    /// controller for a block of ids when it runs out, Kafka's AllocateProducerIds).
    pub async fn next_producer_id(self: &Rc<Self>) -> Result<i64, i16> {
        match self.call(CONTROLLER_SHARD, ShardRequest::ProducerId).await {
            Some(ShardResponse::ProducerId(r)) => r,
            _ => Err(K::CoordinatorNotAvailable.code()),
        }
    }

    async fn producer_id_here(&self) -> Result<i64, i16> {
        let (next, end) = self.producer_ids.get();
        if next < end {
            self.producer_ids.set((next + 1, end));
            return Ok(next);
        }
        let Some(cluster) = self.cluster() else {
            return Err(K::CoordinatorNotAvailable.code());
        };
        let Some(epoch) = cluster.broker_epoch() else {
            return Err(K::CoordinatorNotAvailable.code());
        };
        let request = ControllerRequest::AllocateProducerIds {
            broker_id: self.settings.node_id,
            broker_epoch: epoch,
        };
        let timeout = cluster
            .settings
            .request_timeout
            .max(Duration::from_secs(30));
        match cluster.client.call(request, timeout).await.1 {
            ControllerReply::AllocateProducerIds(Ok(block)) if block.len > 0 => {
                // Another InitProducerId may have refilled it while this one waited.
                let (next, end) = self.producer_ids.get();
                if next < end {
                    self.producer_ids.set((next + 1, end));
                    return Ok(next);
                }
                self.producer_ids
                    .set((block.start + 1, block.start + i64::from(block.len)));
                Ok(block.start)
            }
            ControllerReply::AllocateProducerIds(Err(e)) => Err(e.kafka_code()),
            _ => Err(K::CoordinatorNotAvailable.code()),
        }
    }

    async fn open_partition(
        &self,
        topic: &str,
        partition: i32,
    ) -> Result<(), weir_storage::StorageError> {
        let tp = TopicPartition::new(topic, partition);
        if self.partitions.borrow().contains(topic, partition) {
            return Ok(());
        }
        let (topic_id, epoch, configs) = {
            let image = self.image.borrow();
            let Some(t) = image.topic(topic) else {
                return Ok(());
            };
            let epoch = t
                .partitions
                .get(partition as usize)
                .map_or(0, |p| p.leader_epoch);
            (t.id, epoch, t.configs.clone())
        };
        let settings = match (self.settings.resolve_topic)(&configs) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(topic, error = %e, "topic config does not resolve; using broker defaults");
                (self.settings.resolve_topic)(&Default::default()).expect("broker defaults resolve")
            }
        };
        let dir = self.settings.log_dir.join(tp.dir_name());
        let log = PartitionLog::open(
            dir,
            tp.clone(),
            settings.log.clone(),
            self.cache.clone(),
            self.clean_start,
        )
        .await?;
        let replica = Rc::new(Replica::new(tp.clone(), topic_id, log, epoch, settings));
        // The log rebuilt its producers' state; those idle past `producer.id.expiration.ms` go.
        replica.log.remove_expired_producers(now_ms());
        // Its role (and, for `__consumer_offsets`, its groups when it leads) comes next, from
        // the partition's committed state: `update_role`.
        self.partitions
            .borrow_mut()
            .insert(topic, partition, replica);
        Ok(())
    }

    /// Background upkeep for this core's partitions: retention, timed flushes, high watermark
    /// checkpoints. Runs in a low-priority task queue so it yields to produce and fetch.
    pub async fn upkeep(self: Rc<Self>) {
        let tick = Duration::from_millis(1000);
        let mut since_retention = 0u64;
        let mut since_checkpoint = 0u64;
        let mut since_cleaning = 0u64;
        while !self.stopping.get() {
            glommio::timer::sleep(tick).await;
            since_retention += 1000;
            since_checkpoint += 1000;
            since_cleaning += 1000;
            let replicas: Vec<Rc<Replica>> = self.partitions.borrow().all().cloned().collect();
            let now = now_ms();
            for r in &replicas {
                if let Err(e) = r.log.flush_if_due(now).await {
                    tracing::error!(partition = %r.tp, error = %e, "timed flush failed");
                }
            }
            if since_retention >= self.settings.retention_check_interval_ms {
                since_retention = 0;
                for r in &replicas {
                    if let Err(e) = r.log.enforce_retention(now).await {
                        tracing::error!(partition = %r.tp, error = %e, "retention failed");
                    }
                }
            }
            if let Some(cleaner) = self.settings.cleaner {
                if since_cleaning >= cleaner.backoff_ms {
                    since_cleaning = 0;
                    self.clean_logs(&replicas, cleaner).await;
                }
            }
            if since_checkpoint >= self.settings.hw_checkpoint_interval_ms {
                since_checkpoint = 0;
                for r in &replicas {
                    if let Err(e) = r.log.checkpoint().await {
                        tracing::warn!(partition = %r.tp, error = %e, "checkpoint failed");
                    }
                }
            }
        }
    }

    /// One compaction pass over this core's compacted logs (Kafka's log cleaner, here a task of
    /// the core's low-priority queue instead of a thread pool: each core cleans what it owns).
    async fn clean_logs(&self, replicas: &[Rc<Replica>], cleaner: CleanerSettings) {
        for r in replicas {
            if self.stopping.get() {
                return;
            }
            let opts = CleanOptions {
                now_ms: now_ms(),
                dedupe_buffer_bytes: cleaner.dedupe_buffer_bytes_per_core,
                force: false,
            };
            match r.log.clean(opts).await {
                Ok(Some(o)) => tracing::info!(
                    partition = %r.tp,
                    segments = format!("{} -> {}", o.segments_before, o.segments_after),
                    bytes = format!("{} -> {}", o.bytes_before, o.bytes_after),
                    records_removed = o.records_removed,
                    tombstones_removed = o.tombstones_removed,
                    first_dirty = o.first_dirty,
                    "log cleaned"
                ),
                Ok(None) => {}
                Err(e) => tracing::error!(partition = %r.tp, error = %e, "log cleaning failed"),
            }
        }
    }

    /// Closes every partition (flushing it).
    pub async fn shutdown(&self) -> bool {
        self.stopping.set(true);
        self.fetchers.stop_all();
        let replicas: Vec<Rc<Replica>> = self.partitions.borrow_mut().take_all();
        let mut clean = true;
        for r in replicas {
            r.role.borrow_mut().close();
            if let Err(e) = r.log.close().await {
                tracing::error!(partition = %r.tp, error = %e, "close failed");
                clean = false;
            }
        }
        clean
    }

    pub fn is_stopping(&self) -> bool {
        self.stopping.get()
    }

    /// Runs this core's group timers (sessions, rebalance deadlines, offset expiry) until it
    /// stops.
    pub async fn run_group_timers(self: Rc<Self>) {
        self.groups.run_timers(&*self).await
    }

    pub fn is_controller(&self) -> bool {
        self.id() == CONTROLLER_SHARD
    }

    pub fn shard_of(&self, tp: &TopicPartition) -> ShardId {
        shard_for(tp, self.cores())
    }
}

/// The core as its group coordinator's host: its clock, its `__consumer_offsets` partitions.
impl crate::group::coordinator::GroupHost for Core {
    fn now_ms(&self) -> i64 {
        now_ms()
    }

    fn random_id(&self) -> [u8; 16] {
        crate::clock::random_uuid()
    }

    fn is_stopping(&self) -> bool {
        self.stopping.get()
    }

    async fn append_offsets(
        &self,
        partition: i32,
        batch: bytes::Bytes,
        now_ms: i64,
    ) -> Result<(), crate::group::coordinator::AppendFailure> {
        use crate::group::coordinator::AppendFailure;
        let Some(replica) = self.replica(crate::group::OFFSETS_TOPIC, partition) else {
            return Err(AppendFailure::NotHere);
        };
        match replica.produce(batch, -1, now_ms).await {
            Ok(_) => Ok(()),
            Err(f) => Err(AppendFailure::Refused {
                too_large: f.code == K::MessageTooLarge.code(),
                code: f.code,
                message: f.message,
            }),
        }
    }
}

/// Hands a file region to another core as its own descriptor.
fn to_remote(r: ReadResult<FileRegion>) -> ReadResult<RemoteRegion> {
    let region = r.region.and_then(|region| {
        // SAFETY: dup returns a new descriptor we own (or -1, handled).
        let fd = unsafe { libc::dup(region.as_raw_fd()) };
        if fd < 0 {
            tracing::error!(error = %std::io::Error::last_os_error(), "dup of a segment descriptor failed");
            return None;
        }
        // SAFETY: `fd` is a fresh descriptor nobody else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Some(RemoteRegion { fd, position: region.position, len: region.len })
    });
    ReadResult {
        error_code: r.error_code,
        high_watermark: r.high_watermark,
        log_start_offset: r.log_start_offset,
        region,
        diverging_epoch: r.diverging_epoch,
        current_leader: r.current_leader,
    }
}

/// Waits for all futures (they run interleaved on this core).
pub async fn join_all<F: std::future::Future<Output = ()> + 'static>(
    futures: Vec<std::pin::Pin<Box<F>>>,
) {
    let tasks: Vec<_> = futures.into_iter().map(glommio::spawn_local).collect();
    for t in tasks {
        t.await;
    }
}

/// Resolves when the first future does.
pub async fn select_all<F: std::future::Future<Output = ()> + ?Sized>(
    mut futures: Vec<std::pin::Pin<Box<F>>>,
) {
    futures_lite::future::poll_fn(|cx| {
        for f in futures.iter_mut() {
            if f.as_mut().poll(cx).is_ready() {
                return std::task::Poll::Ready(());
            }
        }
        std::task::Poll::Pending
    })
    .await
}
