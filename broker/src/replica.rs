//! A partition as its owning core holds it: the log (which keeps the idempotent producers'
//! state), the leader epoch, the topic's settings. Everything here runs on that one core.

use crate::errors::{storage_error, ApiError};
use crate::replicate::epochs::LogEpochs;
use crate::replicate::role::{AckOutcome, Role};
use crate::runtime::messages::{ListedOffset, ProduceFailure, ReadResult, ReadSpec};
use crate::runtime::settings::TopicSettings;
use bytes::Bytes;
use kafka_protocol::ResponseError as K;
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use weir_replication::partition::epochs::{
    diverging_epoch, UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET,
};
use weir_replication::partition::leader::{BrokerView, FollowerFetchError, LeaderActions};
use weir_replication::types::TopicId;
use weir_storage::{AppendInfo, FileRegion, Offset, PartitionLog, StorageError, TopicPartition};

/// Kafka's `offsets.commit.timeout.ms` default: how long an offset commit's acks=all append may
/// wait for its commit.
const OFFSETS_COMMIT_TIMEOUT_MS: i32 = 5000;

/// ListOffsets' special timestamps.
pub const LATEST_TIMESTAMP: i64 = -1;
pub const EARLIEST_TIMESTAMP: i64 = -2;
pub const MAX_TIMESTAMP: i64 = -3;
/// DeleteRecords' "up to the high watermark" (`DeleteRecordsRequest.HIGH_WATERMARK`).
pub const DELETE_TO_HIGH_WATERMARK: i64 = -1;

pub struct Replica {
    pub tp: TopicPartition,
    pub topic_id: TopicId,
    pub log: Rc<PartitionLog>,
    /// The partition's leader epoch as the metadata says (stamped into batches appended here
    /// as leader, checked against fetchers' epochs).
    pub leader_epoch: Cell<i32>,
    pub settings: RefCell<TopicSettings>,
    /// Leader, follower or idle (see `replicate::role`).
    pub role: RefCell<Role>,
    /// A task is sending this replica's unclean election reports (`replicate::unclean`), and
    /// whether it should look once more before it ends.
    pub unclean_reporting: Cell<bool>,
    pub unclean_recheck: Cell<bool>,
}

impl Replica {
    pub fn new(
        tp: TopicPartition,
        topic_id: TopicId,
        log: Rc<PartitionLog>,
        leader_epoch: i32,
        settings: TopicSettings,
    ) -> Self {
        Self {
            tp,
            topic_id,
            log,
            leader_epoch: Cell::new(leader_epoch),
            settings: RefCell::new(settings),
            role: RefCell::new(Role::Idle),
            unclean_reporting: Cell::new(false),
            unclean_recheck: Cell::new(false),
        }
    }

    pub fn set_settings(&self, settings: TopicSettings) {
        self.log.set_config(settings.log.clone());
        *self.settings.borrow_mut() = settings;
    }

    /// [`Self::produce_within`] for the broker's own appends (the group coordinator's offset
    /// commits), bounded as Kafka bounds them: `offsets.commit.timeout.ms`, default 5000.
    pub async fn produce(
        &self,
        records: Bytes,
        acks: i16,
        now_ms: i64,
    ) -> Result<AppendInfo, ProduceFailure> {
        self.produce_within(records, acks, OFFSETS_COMMIT_TIMEOUT_MS, now_ms)
            .await
    }

    /// Appends a producer's records as the leader. Kafka's checks, in Kafka's order: acks=all
    /// needs `min.insync.replicas` in sync; produce v3+ carries exactly one v2 batch; then the
    /// log's leader append: the batch must be valid, within `max.message.bytes` and pass the
    /// topic's record checks (the log's validator, which also rewrites it where the topic says
    /// so), then the idempotent producer's sequence (a retry of a written batch gets its
    /// original offsets). With acks=all the answer waits until the high watermark covers the
    /// batch, at most `timeout_ms` (the request's), then says `REQUEST_TIMED_OUT`.
    pub async fn produce_within(
        &self,
        records: Bytes,
        acks: i16,
        timeout_ms: i32,
        now_ms: i64,
    ) -> Result<AppendInfo, ProduceFailure> {
        match &*self.role.borrow() {
            Role::Leader(l) if acks == -1 => {
                if let Err(e) = l.state.check_acks_all_append() {
                    return Err(self.content_failure(
                        K::NotEnoughReplicas.code(),
                        format!("{e} for partition {}", self.tp),
                    ));
                }
            }
            Role::Leader(_) => {}
            _ => return Err(ProduceFailure::code(K::NotLeaderOrFollower.code())),
        }
        // Headers only: the log validates every byte (CRC included) once, below.
        let batches = weir_storage::batch::split_headers(&records)
            .map_err(|e| self.storage_failure(StorageError::InvalidBatch(e)))?;
        if batches.len() != 1 {
            return Err(self.content_failure(
                K::InvalidRecord.code(),
                "Produce requests with version 3 and above must contain exactly one record batch per partition",
            ));
        }
        if batches[0].is_transactional() || batches[0].is_control() {
            // Transactions are not implemented: refuse rather than store half of their meaning.
            return Err(ProduceFailure::with_message(
                K::TransactionalIdAuthorizationFailed.code(),
                "transactions are not supported by this broker",
            ));
        }
        // The log's validator, then the producer's sequence, as Kafka orders them (a retried
        // batch with bad records is refused, not acknowledged). A duplicate comes back with its
        // original offsets, as Kafka answers it; the wait below then covers those.
        let epoch = self.leader_epoch.get();
        let info = self
            .log
            .append_bytes_as_leader(records, epoch, now_ms)
            .await
            .map_err(|e| self.storage_failure(e))?;
        // The leader's own log end moved: with no follower to wait for, that commits it.
        self.after_append(now_ms);
        if acks == -1 {
            self.wait_for_commit(info.last_offset + 1, timeout_ms)
                .await?;
        }
        Ok(info)
    }

    /// The leader's log end moved (an append finished): the high watermark may follow.
    pub fn after_append(&self, now_ms: i64) {
        let mut role = self.role.borrow_mut();
        let hw = match &mut *role {
            Role::Leader(l) => l.state.on_append(self.log.log_end_offset(), now_ms),
            _ => None,
        };
        if let Some(hw) = hw {
            role.publish_high_watermark(&self.log, hw);
        }
    }

    /// acks=all: waits, in offset order with the other waiters of this partition, until the
    /// high watermark passes `end` (the batch is committed), at most `timeout_ms` as Kafka's
    /// delayed produce does (`REQUEST_TIMED_OUT` then; the batch stays in the log, so an
    /// idempotent retry is a duplicate); NOT_ENOUGH_REPLICAS_AFTER_APPEND if the ISR fell below
    /// `min.insync.replicas` meanwhile; NOT_LEADER_OR_FOLLOWER if this broker stops leading.
    async fn wait_for_commit(&self, end: Offset, timeout_ms: i32) -> Result<(), ProduceFailure> {
        let waiting = {
            let mut role = self.role.borrow_mut();
            let Role::Leader(l) = &mut *role else {
                return Err(ProduceFailure::code(K::NotLeaderOrFollower.code()));
            };
            if self.log.high_watermark() >= end {
                return match l.state.ack_status(end - 1) {
                    weir_replication::partition::leader::AckStatus::NotEnoughReplicasAfterAppend => {
                        Err(self.not_enough_after_append())
                    }
                    _ => Ok(()),
                };
            }
            let (tx, rx) = glommio::channels::local_channel::new_bounded(1);
            if l.acks.push(end - 1, tx).is_err() {
                // Too many produces already waiting here: this one is not tracked.
                return Err(ProduceFailure::code(K::RequestTimedOut.code()));
            }
            rx
        };
        let bound = std::time::Duration::from_millis(u64::try_from(timeout_ms).unwrap_or(0));
        let outcome = glommio::timer::timeout(bound, async { Ok(waiting.recv().await) }).await;
        match outcome {
            Ok(Some(AckOutcome::Committed)) => Ok(()),
            Ok(Some(AckOutcome::NotEnoughReplicasAfterAppend)) => {
                Err(self.not_enough_after_append())
            }
            Ok(Some(AckOutcome::NotLeader)) | Ok(None) => {
                Err(ProduceFailure::code(K::NotLeaderOrFollower.code()))
            }
            // The waiter stays queued until the high watermark or a role change removes it;
            // its receiver is gone, so that answer goes nowhere.
            Err(_) if self.log.is_offline() => {
                Err(ProduceFailure::code(K::KafkaStorageError.code()))
            }
            Err(_) => Err(ProduceFailure::code(K::RequestTimedOut.code())),
        }
    }

    fn not_enough_after_append(&self) -> ProduceFailure {
        ProduceFailure::with_message(
            K::NotEnoughReplicasAfterAppend.code(),
            format!(
                "The size of the current ISR is insufficient to satisfy the min.isr requirement of {} for partition {}",
                self.settings.borrow().min_insync_replicas,
                self.tp
            ),
        )
    }

    /// A refusal of the batch's content: Kafka reports the log start offset with it.
    fn content_failure(&self, code: i16, message: impl Into<String>) -> ProduceFailure {
        ProduceFailure {
            log_start_offset: self.log.log_start_offset(),
            ..ProduceFailure::with_message(code, message)
        }
    }

    /// The one mapping of a storage error to a produce answer (code via `errors.rs`).
    fn storage_failure(&self, e: StorageError) -> ProduceFailure {
        let code = storage_error(&e).code();
        match e {
            StorageError::RecordValidation {
                records, message, ..
            } => ProduceFailure {
                record_errors: records,
                ..self.content_failure(code, message)
            },
            StorageError::InvalidRecord(message) => self.content_failure(code, message),
            StorageError::Producer(e) => self.content_failure(code, e.to_string()),
            e => ProduceFailure::with_message(code, e.to_string()),
        }
    }

    /// Checks a fetcher's leader epoch against this partition's (KIP-320): older is
    /// FENCED_LEADER_EPOCH, newer UNKNOWN_LEADER_EPOCH (this broker has not seen it yet).
    pub fn check_epoch(&self, current_leader_epoch: i32) -> Result<(), i16> {
        let mine = self.leader_epoch.get();
        if current_leader_epoch < 0 || current_leader_epoch == mine {
            Ok(())
        } else if current_leader_epoch < mine {
            Err(K::FencedLeaderEpoch.code())
        } else {
            Err(K::UnknownLeaderEpoch.code())
        }
    }

    /// Reads for a consumer (up to the high watermark; READ_COMMITTED is the same, as no
    /// transactions exist) or for a follower (up to the log end, after checking where its log
    /// diverges). The caller then records a follower's position
    /// ([`Self::record_follower_fetch`]) when the read succeeded without divergence.
    pub async fn read(&self, spec: &ReadSpec) -> ReadResult<FileRegion> {
        let mut result = ReadResult::error(0);
        result.current_leader = Some((-1, self.leader_epoch.get()));
        if let Err(code) = self.check_epoch(spec.current_leader_epoch) {
            result.error_code = code;
            return result;
        }
        let Some(f) = spec.follower else {
            let hw = self.log.high_watermark();
            return self.read_to(spec, hw).await;
        };
        if !matches!(&*self.role.borrow(), Role::Leader(_)) {
            result.error_code = K::NotLeaderOrFollower.code();
            return result;
        }
        if let Some(d) = diverging_epoch(&LogEpochs(&self.log), f.last_fetched_epoch, spec.offset) {
            // Kafka answers with the divergence and no records, and records no position.
            let o = self.log.offsets();
            result.high_watermark = o.high_watermark;
            result.log_start_offset = o.log_start_offset;
            result.diverging_epoch = Some(d);
            return result;
        }
        self.read_to(spec, self.log.log_end_offset()).await
    }

    /// Records a follower's fetch at `spec.offset`: the high watermark may move and the
    /// follower may be proposed into the ISR (the returned actions). A fetch from a replica
    /// this leader does not know, or from an older incarnation of one, is refused with the
    /// code Kafka answers.
    pub fn record_follower_fetch(
        &self,
        spec: &ReadSpec,
        brokers: &impl BrokerView,
        now_ms: i64,
    ) -> Result<LeaderActions, i16> {
        let Some(f) = spec.follower else {
            return Ok(LeaderActions::default());
        };
        let recorded = match &mut *self.role.borrow_mut() {
            Role::Leader(l) => l.state.on_follower_fetch(
                f.replica_id,
                f.broker_epoch,
                spec.offset,
                f.log_start_offset,
                now_ms,
                brokers,
            ),
            _ => return Err(K::NotLeaderOrFollower.code()),
        };
        match recorded {
            Ok(actions) => Ok(actions),
            // Kafka (`Partition.followerReplicaOrThrow`): with the leader epoch given, the
            // (replica, epoch) pair is not known here yet (a reassignment under way) and the
            // follower retries; without it, the fetcher is no follower of this partition.
            Err(FollowerFetchError::NotAReplica(_)) if spec.current_leader_epoch >= 0 => {
                Err(K::UnknownLeaderEpoch.code())
            }
            Err(FollowerFetchError::NotAReplica(id)) => {
                tracing::warn!(partition = %self.tp, replica = id, "fetch from a broker that is no replica of this partition refused");
                Err(K::NotLeaderOrFollower.code())
            }
            Err(e @ FollowerFetchError::StaleBrokerEpoch { .. }) => {
                tracing::warn!(partition = %self.tp, replica = f.replica_id, error = %e, "fetch from an older incarnation of a follower refused");
                Err(K::NotLeaderOrFollower.code())
            }
        }
    }

    async fn read_to(&self, spec: &ReadSpec, max_offset: Offset) -> ReadResult<FileRegion> {
        match self
            .log
            .read(spec.offset, spec.max_bytes, max_offset, spec.min_one_batch)
            .await
        {
            Ok(out) => ReadResult {
                error_code: 0,
                high_watermark: out.high_watermark,
                log_start_offset: out.log_start_offset,
                region: out.region,
                diverging_epoch: None,
                current_leader: None,
            },
            Err(e) => {
                let offsets = self.log.offsets();
                ReadResult {
                    high_watermark: offsets.high_watermark,
                    log_start_offset: offsets.log_start_offset,
                    ..ReadResult::error(storage_error(&e).code())
                }
            }
        }
    }

    /// Whether a long poll that last saw `seen_high_watermark` for a fetch at `offset` has
    /// something new to read: the high watermark moved, or the offset left the log (an error
    /// to report).
    pub fn moved_past(&self, offset: Offset, seen_high_watermark: Offset, follower: bool) -> bool {
        let o = self.log.offsets();
        let moved = if follower {
            o.log_end_offset > offset
        } else {
            o.high_watermark != seen_high_watermark
        };
        moved || offset < o.log_start_offset || offset > o.log_end_offset
    }

    /// Kafka's DeleteRecords on the leader: moves the log start offset to `offset` (-1: the
    /// high watermark), never past the high watermark, and answers the new low watermark.
    /// Segments wholly below it are removed; fetches below it get OFFSET_OUT_OF_RANGE.
    pub async fn delete_records(&self, offset: Offset) -> Result<Offset, ApiError> {
        if !self.log.config().cleanup_delete {
            // Kafka's rule: only a topic whose cleanup.policy includes `delete` may lose
            // records this way.
            return Err(ApiError::new(
                K::PolicyViolation,
                format!(
                    "Records of partition {} can not be deleted due to the configured policy",
                    self.tp
                ),
            ));
        }
        let target = if offset == DELETE_TO_HIGH_WATERMARK {
            self.log.high_watermark()
        } else {
            offset
        };
        if target < 0 || target > self.log.high_watermark() {
            return Err(ApiError::new(
                K::OffsetOutOfRange,
                format!(
                    "Cannot increment the log start offset to {target} of partition {} since it is larger than the high watermark {}",
                    self.tp,
                    self.log.high_watermark()
                ),
            ));
        }
        self.log
            .advance_log_start(target)
            .await
            .map_err(|e| ApiError::new(storage_error(&e), e.to_string()))?;
        tracing::info!(partition = %self.tp, log_start = self.log.log_start_offset(), "log start offset moved by DeleteRecords");
        Ok(self.log.log_start_offset())
    }

    /// Kafka's OffsetForLeaderEpoch (`Partition.lastOffsetForLeaderEpoch`): the largest epoch
    /// at or below `leader_epoch` in this leader's log and the offset where it ends (the log end
    /// for the current epoch). An epoch older than the log keeps answers -1/-1 with no error,
    /// as Kafka answers; clients then fall back to ListOffsets (their reset policy).
    pub fn offset_for_epoch(
        &self,
        current_leader_epoch: i32,
        leader_epoch: i32,
    ) -> Result<(i32, i64), i16> {
        self.check_epoch(current_leader_epoch)?;
        if !matches!(&*self.role.borrow(), Role::Leader(_)) {
            return Err(K::NotLeaderOrFollower.code());
        }
        if leader_epoch < 0 {
            return Ok((UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET));
        }
        Ok(self
            .log
            .end_offset_for_epoch(leader_epoch)
            .unwrap_or((UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET)))
    }

    /// Kafka's ListOffsets for a consumer. A new leader whose high watermark has not reached
    /// its epoch's start offset yet answers OFFSET_NOT_AVAILABLE for the latest offset and
    /// timestamp lookups (what it would answer could be below what the old leader answered).
    pub async fn list_offset(
        &self,
        timestamp: i64,
        current_leader_epoch: i32,
    ) -> Result<ListedOffset, i16> {
        self.check_epoch(current_leader_epoch)?;
        let epoch = self.leader_epoch.get();
        let o = self.log.offsets();
        let behind = match &*self.role.borrow() {
            Role::Leader(l) => l.state.epoch_start_offset() > o.high_watermark,
            _ => return Err(K::NotLeaderOrFollower.code()),
        };
        if behind && timestamp != EARLIEST_TIMESTAMP {
            return Err(K::OffsetNotAvailable.code());
        }
        let at = |offset| {
            Ok(ListedOffset {
                offset,
                timestamp: -1,
                leader_epoch: epoch,
            })
        };
        match timestamp {
            LATEST_TIMESTAMP => at(o.high_watermark),
            EARLIEST_TIMESTAMP => at(o.log_start_offset),
            // The exact record carrying the largest timestamp (Kafka 3.7+, KAFKA-16310): the
            // first record at or after that timestamp is that record.
            MAX_TIMESTAMP => match self.log.max_timestamp() {
                Some(t) if t.offset < o.high_watermark => {
                    match self.log.offset_for_timestamp(t.timestamp).await {
                        Ok(Some(exact)) => Ok(ListedOffset {
                            offset: exact.offset,
                            timestamp: exact.timestamp,
                            leader_epoch: epoch,
                        }),
                        Ok(None) => Ok(ListedOffset {
                            offset: t.offset,
                            timestamp: t.timestamp,
                            leader_epoch: epoch,
                        }),
                        Err(e) => Err(storage_error(&e).code()),
                    }
                }
                _ => Ok(ListedOffset {
                    offset: -1,
                    timestamp: -1,
                    leader_epoch: epoch,
                }),
            },
            ts if ts < 0 => Err(K::InvalidRequest.code()),
            ts => match self.log.offset_for_timestamp(ts).await {
                Ok(Some(t)) if t.offset < o.high_watermark => Ok(ListedOffset {
                    offset: t.offset,
                    timestamp: t.timestamp,
                    leader_epoch: epoch,
                }),
                Ok(_) => Ok(ListedOffset {
                    offset: -1,
                    timestamp: -1,
                    leader_epoch: epoch,
                }),
                Err(e) => Err(storage_error(&e).code()),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{BrokerConfig, TopicConfig};
    use std::collections::BTreeMap;
    use weir_storage::batch::{build_batch, ProducerFields, Record};
    use weir_storage::SegmentFileCache;

    const NOW: i64 = 1_700_000_000_000;

    fn run<F: std::future::Future<Output = ()> + 'static>(f: impl FnOnce() -> F + Send + 'static) {
        weir_storage::heartbeat::run_on_executor(f)
    }

    fn settings(overrides: &[(&str, &str)]) -> TopicSettings {
        let o: BTreeMap<String, String> = overrides
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let t = TopicConfig::with_overrides(&BrokerConfig::default(), &o).unwrap();
        TopicSettings {
            log: t.to_log_config(),
            min_insync_replicas: t.min_insync_replicas,
            unclean_leader_election: t.unclean_leader_election_enable,
        }
    }

    async fn replica(dir: &std::path::Path, s: TopicSettings) -> Replica {
        let tp = TopicPartition::new("t", 0);
        let log = PartitionLog::open(
            dir.join("t-0"),
            tp.clone(),
            s.log.clone(),
            SegmentFileCache::new(8),
            false,
        )
        .await
        .unwrap();
        let r = Replica::new(tp, [0; 16], log, 0, s);
        lead(&r, &[1, 2], &[1]);
        r
    }

    /// Makes broker 1 the leader of `r` with these replicas and ISR.
    fn lead(r: &Replica, replicas: &[i32], isr: &[i32]) {
        let meta = weir_replication::metadata::PartitionMeta {
            replicas: replicas.to_vec(),
            isr: isr.to_vec(),
            elr: vec![],
            last_known_elr: vec![],
            leader: 1,
            leader_epoch: 0,
            partition_epoch: isr.len() as i32,
            last_unclean_election: None,
        };
        let cx = crate::replicate::role::RoleContext {
            node_id: 1,
            log: &r.log,
            leader: weir_replication::partition::leader::LeaderConfig {
                replica_lag_time_max_ms: 30_000,
                min_insync_replicas: 1,
            },
            fetch_backoff_ms: 100,
            acks_max: 100,
            now_ms: NOW,
        };
        let change = r.role.borrow_mut().apply(&meta, &cx);
        if let Some(hw) = change.actions.high_watermark {
            r.role.borrow_mut().publish_high_watermark(&r.log, hw);
        }
    }

    struct Brokers;

    impl BrokerView for Brokers {
        fn broker(&self, id: i32) -> Option<weir_replication::partition::leader::BrokerStatus> {
            Some(weir_replication::partition::leader::BrokerStatus {
                epoch: 10 + i64::from(id),
                fenced: false,
                shutting_down: false,
            })
        }
    }

    /// Broker 2 fetches at `offset` as a follower.
    fn follower_fetch(r: &Replica, offset: i64) {
        let spec = ReadSpec {
            topic: "t".into(),
            partition: 0,
            offset,
            max_bytes: 1 << 20,
            min_one_batch: true,
            committed: false,
            current_leader_epoch: 0,
            follower: Some(crate::runtime::messages::FollowerFetch {
                replica_id: 2,
                broker_epoch: 12,
                last_fetched_epoch: 0,
                log_start_offset: 0,
            }),
        };
        let actions = r.record_follower_fetch(&spec, &Brokers, NOW).unwrap();
        if let Some(hw) = actions.high_watermark {
            r.role.borrow_mut().publish_high_watermark(&r.log, hw);
        }
    }

    fn batch(keys: &[Option<&str>], producer: ProducerFields) -> Bytes {
        let records: Vec<Record> = keys
            .iter()
            .map(|k| Record {
                key: k.map(|k| k.as_bytes().to_vec()),
                value: Some(b"v".to_vec()),
                headers: vec![],
                timestamp_delta: 0,
            })
            .collect();
        Bytes::from(build_batch(&records, NOW - 1000, producer))
    }

    #[test]
    fn acks_all_waits_for_the_commit_at_most_timeout_ms() {
        run(|| async {
            let dir = tempfile::tempdir().unwrap();
            let r = replica(dir.path(), settings(&[])).await;
            let one = || batch(&[Some("k")], ProducerFields::NONE);
            // Alone in its ISR, what the leader writes is committed at once.
            let info = r.produce_within(one(), -1, 0, NOW).await.unwrap();
            assert_eq!(info.first_offset, 0);
            assert_eq!(r.log.high_watermark(), 1);

            // Broker 2 joins the ISR at offset 1; then it stops fetching: the high watermark
            // stays, and acks=all is answered REQUEST_TIMED_OUT once timeout_ms has passed;
            // the batch stays in the log. acks=1 does not wait.
            lead(&r, &[1, 2], &[1, 2]);
            follower_fetch(&r, 1);
            let e = r.produce_within(one(), -1, 50, NOW).await.unwrap_err();
            assert_eq!(e.code, K::RequestTimedOut.code());
            assert_eq!((r.log.log_end_offset(), r.log.high_watermark()), (2, 1));
            let info = r.produce_within(one(), 1, 50, NOW).await.unwrap();
            assert_eq!(info.first_offset, 2);

            // The follower catching up moves the high watermark, which answers the wait.
            let waiting = r.produce_within(one(), -1, 60_000, NOW);
            let advance = async {
                glommio::timer::sleep(std::time::Duration::from_millis(20)).await;
                follower_fetch(&r, r.log.log_end_offset());
            };
            let (result, ()) = futures_lite::future::zip(waiting, advance).await;
            assert_eq!(result.unwrap().first_offset, 3);
            assert_eq!(r.log.high_watermark(), 4);

            // Losing the leadership answers the waiters NOT_LEADER_OR_FOLLOWER.
            let waiting = r.produce_within(one(), -1, 60_000, NOW);
            let demote = async {
                glommio::timer::sleep(std::time::Duration::from_millis(20)).await;
                r.role.borrow_mut().close();
            };
            let (result, ()) = futures_lite::future::zip(waiting, demote).await;
            assert_eq!(result.unwrap_err().code, K::NotLeaderOrFollower.code());
        });
    }

    #[test]
    fn record_errors_and_log_append_time_reach_the_answer() {
        run(|| async {
            let dir = tempfile::tempdir().unwrap();
            let r = replica(
                dir.path(),
                settings(&[
                    ("cleanup.policy", "compact"),
                    ("message.timestamp.type", "LogAppendTime"),
                ]),
            )
            .await;
            let bad = batch(&[Some("a"), None, Some("b"), None], ProducerFields::NONE);
            let e = r.produce_within(bad, -1, 1000, NOW).await.unwrap_err();
            assert_eq!(e.code, K::InvalidRecord.code());
            let indexes: Vec<i32> = e.record_errors.iter().map(|r| r.batch_index).collect();
            assert_eq!(indexes, [1, 3]);
            assert_eq!(e.log_start_offset, 0);
            assert_eq!(r.log.log_end_offset(), 0);

            let producer = ProducerFields {
                producer_id: 9,
                producer_epoch: 0,
                base_sequence: 0,
            };
            let good = batch(&[Some("a"), Some("b")], producer);
            let info = r.produce_within(good.clone(), -1, 1000, NOW).await.unwrap();
            assert_eq!((info.first_offset, info.log_append_time_ms), (0, NOW));
            // A retry later: the original offsets, and the original append time.
            let again = r.produce_within(good, -1, 1000, NOW + 5000).await.unwrap();
            assert_eq!((again.first_offset, again.log_append_time_ms), (0, NOW));
            assert_eq!(r.log.log_end_offset(), 2);
            // A gap in the producer's sequence: the log's typed refusal, as Kafka's code.
            let gap = batch(
                &[Some("c")],
                ProducerFields {
                    base_sequence: 5,
                    ..producer
                },
            );
            let e = r.produce_within(gap, -1, 1000, NOW).await.unwrap_err();
            assert_eq!(e.code, K::OutOfOrderSequenceNumber.code());
            assert_eq!(e.log_start_offset, 0);
            assert_eq!(r.log.log_end_offset(), 2);
        });
    }
}
