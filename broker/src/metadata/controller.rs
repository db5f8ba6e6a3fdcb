//! The controller: the one writer of the metadata log. It validates topic administration as
//! Kafka's controller does, commits the resulting records as one batch (fsynced: metadata is
//! never lost), and publishes them to every core, which apply them to their images. It runs on
//! one core; every other core forwards administration requests to it as messages.

use super::image::MetadataImage;
use super::records::MetadataRecord;
use super::{new_topic_id, TopicId, METADATA_TOPIC};
use crate::runtime::messages::{
    ConfigChange, ControllerCall, ControllerReply, CreatedTopic, NewTopic, TopicRef,
};
use glommio::sync::Semaphore;
use kafka_protocol::ResponseError as K;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::Path;
use std::rc::Rc;
use weir_storage::batch::{build_batch, ProducerFields, Record};
use weir_storage::{
    LogConfig, Offset, PartitionLog, SegmentFileCache, StorageError, TopicPartition,
};

/// Kafka's longest legal topic name.
pub const TOPIC_NAME_LENGTH_MAX: usize = 249;

/// Producer ids are handed out in blocks, so the metadata log is written once per block, not
/// once per InitProducerId (Kafka's ProducerIdManager does the same).
pub const PRODUCER_ID_BLOCK_SIZE: i64 = 1000;

/// Checks topic config overrides and returns the effective configs (name, value, is_default).
pub type ConfigValidator =
    Rc<dyn Fn(&BTreeMap<String, String>) -> Result<Vec<(String, String, bool)>, String>>;

/// Defaults the controller applies to CreateTopics.
#[derive(Debug, Clone)]
pub struct ControllerDefaults {
    pub node_id: i32,
    pub num_partitions: i32,
    pub replication_factor: i16,
    pub delete_topic_enable: bool,
    /// Brokers that can hold replicas (this single node for now).
    pub live_brokers: Vec<i32>,
}

pub struct Controller {
    log: Rc<PartitionLog>,
    image: RefCell<MetadataImage>,
    /// One operation at a time: validate, commit and publish are one step for the others.
    gate: Semaphore,
    defaults: ControllerDefaults,
    validator: ConfigValidator,
    /// Producer ids left in the current block: (next, end).
    producer_ids: RefCell<(i64, i64)>,
}

type Failure = (i16, String);

fn fail(kind: K, message: impl Into<String>) -> Failure {
    (kind.code(), message.into())
}

/// Kafka's topic name rules (`org.apache.kafka.common.internals.Topic.validate`).
pub fn validate_topic_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("Topic name is illegal, it can't be empty".into());
    }
    if name == "." || name == ".." {
        return Err("Topic name cannot be \".\" or \"..\"".into());
    }
    if name.len() > TOPIC_NAME_LENGTH_MAX {
        return Err(format!("Topic name is illegal, it can't be longer than {TOPIC_NAME_LENGTH_MAX} characters, topic name: {name}"));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
    {
        return Err(format!("Topic name \"{name}\" is illegal, it contains a character other than ASCII alphanumerics, '.', '_' and '-'"));
    }
    Ok(())
}

impl Controller {
    /// Opens the metadata log and replays it. Returns the controller and every committed record,
    /// in order, for the cores to build their images from.
    pub async fn open(
        log_dir: &Path,
        cache: Rc<SegmentFileCache>,
        clean: bool,
        defaults: ControllerDefaults,
        validator: ConfigValidator,
    ) -> Result<(Self, Vec<MetadataRecord>), StorageError> {
        let tp = TopicPartition::new(METADATA_TOPIC, 0);
        let config = LogConfig {
            max_message_bytes: 64 << 20,
            retention_ms: -1,
            ..LogConfig::default()
        };
        let log = PartitionLog::open(log_dir.join(tp.dir_name()), tp, config, cache, clean).await?;
        let records = replay(&log).await?;
        let mut image = MetadataImage::default();
        for r in &records {
            image.apply(r);
        }
        let controller = Self {
            log,
            image: RefCell::new(image),
            gate: Semaphore::new(1),
            defaults,
            validator,
            producer_ids: RefCell::new((0, 0)),
        };
        Ok((controller, records))
    }

    pub async fn close(&self) -> Result<(), StorageError> {
        self.log.close().await
    }

    /// Runs one administration call; `publish` delivers committed records to every core and
    /// resolves once all have applied them.
    pub async fn handle<P, F>(&self, call: ControllerCall, publish: P) -> ControllerReply
    where
        P: Fn(Vec<MetadataRecord>) -> F,
        F: std::future::Future<Output = ()>,
    {
        let Ok(_turn) = self.gate.acquire_permit(1).await else {
            return match call {
                ControllerCall::CreateTopics { topics, .. } => ControllerReply::CreateTopics(
                    topics
                        .iter()
                        .map(|_| Err(fail(K::NotController, "controller is shutting down")))
                        .collect(),
                ),
                ControllerCall::DeleteTopics { topics } => ControllerReply::DeleteTopics(
                    topics
                        .iter()
                        .map(|_| Err(fail(K::NotController, "controller is shutting down")))
                        .collect(),
                ),
                ControllerCall::CreatePartitions { topics, .. } => {
                    ControllerReply::CreatePartitions(
                        topics
                            .iter()
                            .map(|_| Err(fail(K::NotController, "controller is shutting down")))
                            .collect(),
                    )
                }
                ControllerCall::AlterConfigs { .. } => ControllerReply::AlterConfigs(Err(fail(
                    K::NotController,
                    "controller is shutting down",
                ))),
                ControllerCall::AllocateProducerId => ControllerReply::ProducerId(Err(fail(
                    K::NotController,
                    "controller is shutting down",
                ))),
            };
        };
        match call {
            ControllerCall::CreateTopics {
                topics,
                validate_only,
            } => {
                let mut out = Vec::with_capacity(topics.len());
                for t in topics {
                    out.push(self.create_topic(t, validate_only, &publish).await);
                }
                ControllerReply::CreateTopics(out)
            }
            ControllerCall::DeleteTopics { topics } => {
                let mut out = Vec::with_capacity(topics.len());
                for t in topics {
                    out.push(self.delete_topic(t, &publish).await);
                }
                ControllerReply::DeleteTopics(out)
            }
            ControllerCall::CreatePartitions {
                topics,
                validate_only,
            } => {
                let mut out = Vec::with_capacity(topics.len());
                for (name, count) in topics {
                    out.push(
                        self.create_partitions(&name, count, validate_only, &publish)
                            .await,
                    );
                }
                ControllerReply::CreatePartitions(out)
            }
            ControllerCall::AlterConfigs {
                topic,
                changes,
                replace_all,
                validate_only,
            } => ControllerReply::AlterConfigs(
                self.alter_configs(&topic, changes, replace_all, validate_only, &publish)
                    .await,
            ),
            ControllerCall::AllocateProducerId => {
                ControllerReply::ProducerId(self.allocate_producer_id(&publish).await)
            }
        }
    }

    async fn commit<P, F>(&self, records: Vec<MetadataRecord>, publish: &P) -> Result<(), Failure>
    where
        P: Fn(Vec<MetadataRecord>) -> F,
        F: std::future::Future<Output = ()>,
    {
        let batch = build_batch(
            &records
                .iter()
                .map(|r| Record {
                    value: Some(r.encode()),
                    ..Record::default()
                })
                .collect::<Vec<_>>(),
            now_ms(),
            ProducerFields::NONE,
        );
        let appended = self.log.append_as_leader(&batch, 0, now_ms()).await;
        let appended = match appended {
            Ok(_) => self.log.flush().await,
            Err(e) => Err(e),
        };
        if let Err(e) = appended {
            tracing::error!(error = %e, "metadata log write failed");
            return Err(fail(
                K::KafkaStorageError,
                format!("metadata log write failed: {e}"),
            ));
        }
        self.log.set_high_watermark(self.log.log_end_offset());
        {
            let mut image = self.image.borrow_mut();
            for r in &records {
                image.apply(r);
            }
        }
        publish(records).await;
        Ok(())
    }

    async fn create_topic<P, F>(
        &self,
        t: NewTopic,
        validate_only: bool,
        publish: &P,
    ) -> Result<CreatedTopic, Failure>
    where
        P: Fn(Vec<MetadataRecord>) -> F,
        F: std::future::Future<Output = ()>,
    {
        validate_topic_name(&t.name).map_err(|m| fail(K::InvalidTopicException, m))?;
        {
            let image = self.image.borrow();
            if image.topic(&t.name).is_some() {
                return Err(fail(
                    K::TopicAlreadyExists,
                    format!("Topic '{}' already exists.", t.name),
                ));
            }
            // Kafka refuses names that differ only by '.' vs '_': metric names would collide.
            let canon = t.name.replace('.', "_");
            let collision = image
                .topics()
                .find(|o| o.name.replace('.', "_") == canon)
                .map(|o| o.name.clone());
            if let Some(other) = collision {
                return Err(fail(
                    K::InvalidTopicException,
                    format!("Topic '{}' collides with existing topic: {other}", t.name),
                ));
            }
        }
        if !t.assignments.is_empty() && (t.num_partitions != -1 || t.replication_factor != -1) {
            return Err(fail(K::InvalidRequest, "Both numPartitions or replicationFactor and replicasAssignments were set. Both cannot be used at the same time."));
        }
        let (partitions, rf) = if t.assignments.is_empty() {
            let n = if t.num_partitions == -1 {
                self.defaults.num_partitions
            } else {
                t.num_partitions
            };
            let rf = if t.replication_factor == -1 {
                self.defaults.replication_factor
            } else {
                t.replication_factor
            };
            if n <= 0 {
                return Err(fail(
                    K::InvalidPartitions,
                    "Number of partitions was set to an invalid non-positive value.",
                ));
            }
            if rf <= 0 {
                return Err(fail(
                    K::InvalidReplicationFactor,
                    "Replication factor must be larger than 0.",
                ));
            }
            if rf as usize > self.defaults.live_brokers.len() {
                return Err(fail(
                    K::InvalidReplicationFactor,
                    format!("Unable to replicate the partition {rf} time(s): The target replication factor of {rf} cannot be reached because only {} broker(s) are registered.", self.defaults.live_brokers.len()),
                ));
            }
            (n, rf)
        } else {
            let mut assignments = t.assignments.clone();
            assignments.sort_by_key(|a| a.0);
            let rf = assignments[0].1.len() as i16;
            for (i, (p, replicas)) in assignments.iter().enumerate() {
                if *p != i as i32 {
                    return Err(fail(
                        K::InvalidReplicaAssignment,
                        "Partitions should be a consecutive 0-based integer sequence",
                    ));
                }
                if replicas.is_empty()
                    || replicas.len() as i16 != rf
                    || replicas
                        .iter()
                        .any(|b| !self.defaults.live_brokers.contains(b))
                {
                    return Err(fail(
                        K::InvalidReplicaAssignment,
                        format!("Invalid replica assignment for partition {p}"),
                    ));
                }
            }
            (assignments.len() as i32, rf)
        };
        let mut overrides = BTreeMap::new();
        for (k, v) in &t.configs {
            match v {
                Some(v) => {
                    overrides.insert(k.clone(), v.clone());
                }
                None => {
                    return Err(fail(
                        K::InvalidConfig,
                        format!("Null value not supported for topic configs: {k}"),
                    ))
                }
            }
        }
        let effective = (self.validator)(&overrides).map_err(|m| fail(K::InvalidConfig, m))?;
        let id = new_topic_id();
        let created = CreatedTopic {
            id,
            num_partitions: partitions,
            replication_factor: rf,
            configs: effective,
        };
        if validate_only {
            return Ok(created);
        }
        let mut records = vec![MetadataRecord::Topic {
            name: t.name.clone(),
            id,
        }];
        records.extend(
            overrides
                .into_iter()
                .map(|(key, value)| MetadataRecord::TopicConfig {
                    topic_id: id,
                    key,
                    value: Some(value),
                }),
        );
        records.extend((0..partitions).map(|p| self.partition_record(id, p, rf)));
        self.commit(records, publish).await?;
        tracing::info!(topic = %t.name, partitions, replication_factor = rf, "created topic");
        Ok(created)
    }

    fn partition_record(&self, topic_id: TopicId, partition: i32, rf: i16) -> MetadataRecord {
        let brokers = &self.defaults.live_brokers;
        let replicas: Vec<i32> = (0..rf as usize)
            .map(|i| brokers[(partition as usize + i) % brokers.len()])
            .collect();
        MetadataRecord::Partition {
            topic_id,
            partition,
            leader: replicas[0],
            leader_epoch: 0,
            isr: replicas.clone(),
            replicas,
        }
    }

    async fn delete_topic<P, F>(
        &self,
        t: TopicRef,
        publish: &P,
    ) -> Result<(String, TopicId), Failure>
    where
        P: Fn(Vec<MetadataRecord>) -> F,
        F: std::future::Future<Output = ()>,
    {
        if !self.defaults.delete_topic_enable {
            return Err(fail(
                K::TopicDeletionDisabled,
                "Topic deletion is disabled.",
            ));
        }
        let found = {
            let image = self.image.borrow();
            match &t {
                TopicRef::Name(n) => image.topic(n).map(|m| (m.name.clone(), m.id)),
                TopicRef::Id(id) => image.topic_by_id(id).map(|m| (m.name.clone(), m.id)),
            }
        };
        let Some((name, id)) = found else {
            return Err(match t {
                TopicRef::Name(_) => fail(
                    K::UnknownTopicOrPartition,
                    "This server does not host this topic-partition.",
                ),
                TopicRef::Id(_) => fail(
                    K::UnknownTopicId,
                    "This server does not host this topic ID.",
                ),
            });
        };
        self.commit(vec![MetadataRecord::RemoveTopic { id }], publish)
            .await?;
        tracing::info!(topic = %name, "deleted topic");
        Ok((name, id))
    }

    async fn create_partitions<P, F>(
        &self,
        name: &str,
        count: i32,
        validate_only: bool,
        publish: &P,
    ) -> Result<(), Failure>
    where
        P: Fn(Vec<MetadataRecord>) -> F,
        F: std::future::Future<Output = ()>,
    {
        let (id, current, rf) = {
            let image = self.image.borrow();
            let Some(t) = image.topic(name) else {
                return Err(fail(
                    K::UnknownTopicOrPartition,
                    format!("The topic '{name}' does not exist."),
                ));
            };
            (
                t.id,
                t.partitions.len() as i32,
                t.partitions.first().map_or(1, |p| p.replicas.len() as i16),
            )
        };
        // The seed: a partition count only grows. To shrink, delete and re-create the topic.
        if count < current {
            return Err(fail(K::InvalidPartitions, format!("Topic currently has {current} partitions, which is higher than the requested {count}.")));
        }
        if count == current {
            return Err(fail(
                K::InvalidPartitions,
                format!("Topic already has {current} partitions."),
            ));
        }
        if validate_only {
            return Ok(());
        }
        let records = (current..count)
            .map(|p| self.partition_record(id, p, rf))
            .collect();
        self.commit(records, publish).await?;
        tracing::info!(topic = %name, from = current, to = count, "added partitions");
        Ok(())
    }

    async fn alter_configs<P, F>(
        &self,
        name: &str,
        changes: Vec<ConfigChange>,
        replace_all: bool,
        validate_only: bool,
        publish: &P,
    ) -> Result<(), Failure>
    where
        P: Fn(Vec<MetadataRecord>) -> F,
        F: std::future::Future<Output = ()>,
    {
        let (id, old) = {
            let image = self.image.borrow();
            let Some(t) = image.topic(name) else {
                return Err(fail(
                    K::UnknownTopicOrPartition,
                    format!("The topic '{name}' does not exist."),
                ));
            };
            (t.id, t.configs.clone())
        };
        let mut new = if replace_all {
            BTreeMap::new()
        } else {
            old.clone()
        };
        for c in &changes {
            match (c.op, &c.value) {
                (0, Some(v)) => {
                    new.insert(c.key.clone(), v.clone());
                }
                (0, None) if replace_all => {}
                (0, None) => {
                    return Err(fail(
                        K::InvalidConfig,
                        format!("Null value not supported for : {}", c.key),
                    ))
                }
                (1, _) => {
                    new.remove(&c.key);
                }
                (2 | 3, v) => {
                    // APPEND/SUBTRACT apply to LIST configs; an unset one starts from its
                    // Kafka default (Kafka's `getParts`), not from the broker's value.
                    let list_default = crate::config::topic::topic_config_def(&c.key)
                        .filter(|d| d.ty == crate::config::ConfigType::List)
                        .map(|d| d.default.unwrap_or(""));
                    let Some(list_default) = list_default else {
                        let op = if c.op == 2 { "APPEND" } else { "SUBTRACT" };
                        return Err(fail(
                            K::InvalidConfig,
                            format!("Can't {op} to key {} because its type is not LIST.", c.key),
                        ));
                    };
                    let cur = new
                        .get(&c.key)
                        .cloned()
                        .unwrap_or_else(|| list_default.into());
                    let mut items: Vec<String> = cur
                        .split(',')
                        .map(|s| s.trim().to_string())
                        .filter(|s| !s.is_empty())
                        .collect();
                    for v in v
                        .as_deref()
                        .unwrap_or("")
                        .split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                    {
                        if c.op == 2 && !items.iter().any(|i| i == v) {
                            items.push(v.to_string());
                        } else if c.op == 3 {
                            items.retain(|i| i != v);
                        }
                    }
                    new.insert(c.key.clone(), items.join(","));
                }
                _ => {
                    return Err(fail(
                        K::InvalidRequest,
                        format!("Unknown config operation {}", c.op),
                    ))
                }
            }
        }
        (self.validator)(&new).map_err(|m| fail(K::InvalidConfig, m))?;
        if validate_only {
            return Ok(());
        }
        let mut records = Vec::new();
        for (k, v) in &new {
            if old.get(k) != Some(v) {
                records.push(MetadataRecord::TopicConfig {
                    topic_id: id,
                    key: k.clone(),
                    value: Some(v.clone()),
                });
            }
        }
        for k in old.keys().filter(|k| !new.contains_key(*k)) {
            records.push(MetadataRecord::TopicConfig {
                topic_id: id,
                key: k.clone(),
                value: None,
            });
        }
        if !records.is_empty() {
            self.commit(records, publish).await?;
        }
        Ok(())
    }

    async fn allocate_producer_id<P, F>(&self, publish: &P) -> Result<i64, Failure>
    where
        P: Fn(Vec<MetadataRecord>) -> F,
        F: std::future::Future<Output = ()>,
    {
        let (next, end) = *self.producer_ids.borrow();
        if next < end {
            self.producer_ids.borrow_mut().0 += 1;
            return Ok(next);
        }
        let start = self.image.borrow().next_producer_id_block;
        self.commit(
            vec![MetadataRecord::ProducerIds {
                next_block_start: start + PRODUCER_ID_BLOCK_SIZE,
            }],
            publish,
        )
        .await?;
        *self.producer_ids.borrow_mut() = (start + 1, start + PRODUCER_ID_BLOCK_SIZE);
        Ok(start)
    }
}

/// Every record in the metadata log, in order.
async fn replay(log: &Rc<PartitionLog>) -> Result<Vec<MetadataRecord>, StorageError> {
    let mut out = Vec::new();
    let mut next: Offset = log.log_start_offset();
    // Everything written was fsynced before it was published, so all of it counts.
    log.set_high_watermark(log.log_end_offset());
    loop {
        let read = log.read(next, 8 << 20, Offset::MAX, true).await?;
        let Some(region) = read.region else { break };
        let bytes = region.read_to_vec().await?;
        let batches = weir_storage::batch::split_and_validate(&bytes)?;
        for (range, header) in batches {
            let batch = match weir_storage::records::BatchRecords::parse(&bytes[range]) {
                Ok(b) => b,
                Err(e) => {
                    tracing::error!(error = %e, offset = header.base_offset, "metadata batch skipped");
                    next = header.last_offset() + 1;
                    continue;
                }
            };
            for view in &batch.records {
                match batch.value(view).map(MetadataRecord::decode) {
                    Some(Ok(r)) => out.push(r),
                    Some(Err(e)) => {
                        tracing::error!(error = %e, offset = header.base_offset, "metadata record skipped")
                    }
                    None => {}
                }
            }
            next = header.last_offset() + 1;
        }
    }
    Ok(out)
}

pub use crate::clock::now_ms;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{BrokerConfig, TopicConfig};
    use crate::runtime::messages::ConfigChange;

    #[test]
    fn topic_names_follow_kafka_rules() {
        assert!(validate_topic_name("orders.v1_x-2").is_ok());
        for bad in ["", ".", "..", "a/b", "a b", "ü"] {
            assert!(validate_topic_name(bad).is_err(), "{bad:?}");
        }
        assert!(validate_topic_name(&"a".repeat(249)).is_ok());
        assert!(validate_topic_name(&"a".repeat(250)).is_err());
    }

    fn run<F: std::future::Future<Output = ()> + 'static>(f: impl FnOnce() -> F + Send + 'static) {
        weir_storage::heartbeat::run_on_executor(f)
    }

    async fn open(dir: &Path) -> (Controller, Vec<MetadataRecord>) {
        let broker = Rc::new(BrokerConfig::default());
        let validator: ConfigValidator = Rc::new(move |o: &BTreeMap<String, String>| {
            let t = TopicConfig::with_overrides(&broker, o).map_err(|e| e.to_string())?;
            Ok(t.describe(o)
                .into_iter()
                .map(|e| (e.name, e.value.unwrap_or_default(), false))
                .collect())
        });
        let defaults = ControllerDefaults {
            node_id: 1,
            num_partitions: 3,
            replication_factor: 1,
            delete_topic_enable: true,
            live_brokers: vec![1],
        };
        Controller::open(dir, SegmentFileCache::new(16), false, defaults, validator)
            .await
            .unwrap()
    }

    fn topic(name: &str, partitions: i32, rf: i16) -> NewTopic {
        NewTopic {
            name: name.into(),
            num_partitions: partitions,
            replication_factor: rf,
            assignments: vec![],
            configs: vec![],
        }
    }

    async fn create(c: &Controller, t: NewTopic) -> Result<CreatedTopic, Failure> {
        match c
            .handle(
                ControllerCall::CreateTopics {
                    topics: vec![t],
                    validate_only: false,
                },
                |_| async {},
            )
            .await
        {
            ControllerReply::CreateTopics(mut r) => r.pop().unwrap(),
            _ => unreachable!("create answers create"),
        }
    }

    #[test]
    fn create_validates_like_kafka_and_survives_reopen() {
        run(|| async {
            let dir = tempfile::tempdir().unwrap();
            let (c, replayed) = open(dir.path()).await;
            assert!(replayed.is_empty());
            let made = create(&c, topic("orders", -1, -1)).await.unwrap();
            assert_eq!(
                (made.num_partitions, made.replication_factor),
                (3, 1),
                "defaults apply"
            );
            let code = |r: Result<CreatedTopic, Failure>| r.err().map(|e| e.0);
            assert_eq!(
                code(create(&c, topic("orders", 1, 1)).await),
                Some(K::TopicAlreadyExists.code())
            );
            assert_eq!(
                code(create(&c, topic("bad/name", 1, 1)).await),
                Some(K::InvalidTopicException.code())
            );
            assert_eq!(code(create(&c, topic("or.ders", 1, 1)).await), None);
            assert_eq!(
                code(create(&c, topic("or_ders", 1, 1)).await),
                Some(K::InvalidTopicException.code()),
                "collides with or.ders"
            );
            assert_eq!(
                code(create(&c, topic("zero", 0, 1)).await),
                Some(K::InvalidPartitions.code())
            );
            assert_eq!(
                code(create(&c, topic("rf3", 1, 3)).await),
                Some(K::InvalidReplicationFactor.code())
            );
            let mut with_bad_config = topic("cfg", 1, 1);
            with_bad_config.configs = vec![("retention.ms".into(), Some("soon".into()))];
            assert_eq!(
                code(create(&c, with_bad_config).await),
                Some(K::InvalidConfig.code())
            );
            c.close().await.unwrap();

            let (c, replayed) = open(dir.path()).await;
            let mut image = MetadataImage::default();
            for r in &replayed {
                image.apply(r);
            }
            assert_eq!(image.topic("orders").unwrap().partitions.len(), 3);
            assert!(image.topic("or.ders").is_some());
            assert!(
                image.topic("cfg").is_none(),
                "refused creates leave nothing behind"
            );
            c.close().await.unwrap();
        });
    }

    #[test]
    fn partitions_only_grow_and_configs_alter_incrementally() {
        run(|| async {
            let dir = tempfile::tempdir().unwrap();
            let (c, _) = open(dir.path()).await;
            create(&c, topic("t", 2, 1)).await.unwrap();
            let grow = |n: i32| ControllerCall::CreatePartitions {
                topics: vec![("t".into(), n)],
                validate_only: false,
            };
            let result = |r: ControllerReply| match r {
                ControllerReply::CreatePartitions(mut v) => v.pop().unwrap().err().map(|e| e.0),
                _ => unreachable!(),
            };
            assert_eq!(
                result(c.handle(grow(1), |_| async {}).await),
                Some(K::InvalidPartitions.code()),
                "never shrinks"
            );
            assert_eq!(
                result(c.handle(grow(2), |_| async {}).await),
                Some(K::InvalidPartitions.code())
            );
            assert_eq!(result(c.handle(grow(5), |_| async {}).await), None);
            assert_eq!(c.image.borrow().topic("t").unwrap().partitions.len(), 5);

            let alter = |changes: Vec<ConfigChange>, replace_all| ControllerCall::AlterConfigs {
                topic: "t".into(),
                changes,
                replace_all,
                validate_only: false,
            };
            let set = |k: &str, op: i8, v: Option<&str>| ConfigChange {
                key: k.into(),
                op,
                value: v.map(str::to_string),
            };
            let ok = |r: ControllerReply| matches!(r, ControllerReply::AlterConfigs(Ok(())));
            assert!(ok(c
                .handle(
                    alter(
                        vec![
                            set("retention.ms", 0, Some("1000")),
                            set("cleanup.policy", 0, Some("delete"))
                        ],
                        false
                    ),
                    |_| async {}
                )
                .await));
            assert!(ok(c
                .handle(
                    alter(vec![set("cleanup.policy", 2, Some("compact"))], false),
                    |_| async {}
                )
                .await));
            assert_eq!(
                c.image.borrow().topic("t").unwrap().configs["cleanup.policy"],
                "delete,compact"
            );
            assert!(ok(c
                .handle(
                    alter(vec![set("cleanup.policy", 3, Some("delete"))], false),
                    |_| async {}
                )
                .await));
            assert_eq!(
                c.image.borrow().topic("t").unwrap().configs["cleanup.policy"],
                "compact"
            );
            // AlterConfigs (not incremental) replaces every override with what it lists.
            assert!(ok(c
                .handle(
                    alter(vec![set("segment.bytes", 0, Some("1048576"))], true),
                    |_| async {}
                )
                .await));
            let configs = c.image.borrow().topic("t").unwrap().configs.clone();
            assert_eq!(configs.keys().collect::<Vec<_>>(), vec!["segment.bytes"]);
            assert!(!ok(c
                .handle(
                    alter(vec![set("retention.ms", 0, Some("x"))], false),
                    |_| async {}
                )
                .await));
            c.close().await.unwrap();
        });
    }

    #[test]
    fn producer_ids_are_never_reused_across_restarts() {
        run(|| async {
            let dir = tempfile::tempdir().unwrap();
            let id = |r: ControllerReply| match r {
                ControllerReply::ProducerId(Ok(id)) => id,
                _ => panic!("no producer id"),
            };
            let (c, _) = open(dir.path()).await;
            let a = id(c
                .handle(ControllerCall::AllocateProducerId, |_| async {})
                .await);
            let b = id(c
                .handle(ControllerCall::AllocateProducerId, |_| async {})
                .await);
            assert_eq!(b, a + 1);
            c.close().await.unwrap();
            let (c, _) = open(dir.path()).await;
            let d = id(c
                .handle(ControllerCall::AllocateProducerId, |_| async {})
                .await);
            assert!(d > b, "a restart starts a fresh block ({d} after {b})");
            c.close().await.unwrap();
        });
    }
}
