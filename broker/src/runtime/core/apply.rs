//! How committed metadata reaches this core's partitions: every core applies the records (or an
//! installed snapshot's image) to its own image, then opens, reconfigures, leads, follows or
//! deletes the partitions it owns. Only this module changes the image.

use super::*;

impl Core {
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

    fn reconfigure(self: &Rc<Self>, topic: &str) {
        let configs = self
            .image
            .borrow()
            .topic(topic)
            .map(|t| t.configs.clone())
            .unwrap_or_default();
        match (self.settings.resolve_topic)(&configs) {
            Ok(s) => {
                let replicas: Vec<Rc<Replica>> =
                    self.partitions.borrow().of_topic(topic).cloned().collect();
                for r in replicas {
                    r.set_settings(s.clone());
                    self.settings_changed(&r);
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
}
