//! A partition as its owning core holds it: the log, the leader epoch, the topic's settings and
//! the idempotent producers' state. Everything here runs on that one core.

use crate::errors::{storage_error, ApiError};
use crate::metadata::TopicId;
use crate::producer_state::{Check, ProducerStateManager, DEFAULT_PRODUCER_ID_EXPIRATION_MS};
use crate::runtime::messages::{ListedOffset, ProduceFailure, ReadResult, ReadSpec};
use crate::runtime::settings::TopicSettings;
use bytes::Bytes;
use kafka_protocol::ResponseError as K;
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use weir_storage::{AppendInfo, FileRegion, Offset, PartitionLog, StorageError, TopicPartition};

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
    pub leader_epoch: Cell<i32>,
    pub settings: RefCell<TopicSettings>,
    /// In-sync replicas, this broker included (replication will change it).
    pub isr_size: Cell<i32>,
    /// Idempotent producers' sequences, so a retried batch is acknowledged, not appended twice.
    pub producers: RefCell<ProducerStateManager>,
    /// The active segment when producer state was last snapshotted (a roll prompts a new one).
    pub snapshot_segment: Cell<Offset>,
}

/// Releases an in-flight idempotent batch if its append never finishes (the request task was
/// dropped), so that producer's later batches are not held back.
struct InFlight<'a> {
    producers: &'a RefCell<ProducerStateManager>,
    header: Option<weir_storage::batch::BatchHeader>,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if let Some(h) = self.header.take() {
            self.producers.borrow_mut().abort(&h);
        }
    }
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
            isr_size: Cell::new(1),
            producers: RefCell::new(ProducerStateManager::new(DEFAULT_PRODUCER_ID_EXPIRATION_MS)),
            snapshot_segment: Cell::new(0),
        }
    }

    pub fn set_settings(&self, settings: TopicSettings) {
        self.log.set_config(settings.log.clone());
        *self.settings.borrow_mut() = settings;
    }

    /// Appends a producer's records as the leader. Kafka's checks, in Kafka's order: acks=all
    /// needs `min.insync.replicas` in sync; produce v3+ carries exactly one v2 batch; the batch
    /// must be valid and within `max.message.bytes`.
    pub async fn produce(
        &self,
        records: Bytes,
        acks: i16,
        now_ms: i64,
    ) -> Result<AppendInfo, ProduceFailure> {
        let min_isr = self.settings.borrow().min_insync_replicas;
        if acks == -1 && self.isr_size.get() < min_isr {
            return Err(ProduceFailure {
                code: K::NotEnoughReplicas.code(),
                message: Some(format!("The size of the current ISR {} is insufficient to satisfy the min.isr requirement of {min_isr} for partition {}", self.isr_size.get(), self.tp)),
            });
        }
        // Headers only: the log validates every byte (CRC included) once, when it appends.
        let batches = weir_storage::batch::split_headers(&records).map_err(|e| {
            let e = StorageError::InvalidBatch(e);
            ProduceFailure {
                code: storage_error(&e).code(),
                message: Some(e.to_string()),
            }
        })?;
        if batches.len() != 1 {
            return Err(ProduceFailure {
                code: K::InvalidRecord.code(),
                message: Some("Produce requests with version 3 and above must contain exactly one record batch per partition".into()),
            });
        }
        let header = batches[0];
        if header.is_transactional() || header.is_control() {
            // Transactions are not implemented: refuse rather than store half of their meaning.
            return Err(ProduceFailure {
                code: K::TransactionalIdAuthorizationFailed.code(),
                message: Some("transactions are not supported by this broker".into()),
            });
        }
        if self.log.config().compact {
            // Kafka's rule: a record without a key could never be cleaned away.
            let keyless = weir_storage::records::has_keyless_record(&records).map_err(|e| {
                ProduceFailure {
                    code: K::CorruptMessage.code(),
                    message: Some(e.to_string()),
                }
            })?;
            if keyless {
                return Err(ProduceFailure {
                    code: K::InvalidRecord.code(),
                    message: Some(format!(
                        "Compacted topic cannot accept message without key in topic partition {}.",
                        self.tp
                    )),
                });
            }
        }
        // Idempotence: checked and queued with no await in between, so check order is offset
        // order (what the producer state relies on).
        let check = self
            .producers
            .borrow_mut()
            .check(&header)
            .map_err(|e| ProduceFailure {
                code: e.kafka_error_code(),
                message: Some(e.to_string()),
            })?;
        let mut guard = InFlight {
            producers: &self.producers,
            header: None,
        };
        match check {
            Check::Duplicate {
                first_offset,
                last_offset,
            } => {
                // A retry of an acknowledged batch: acknowledge it again with its original
                // offsets, append nothing.
                return Ok(AppendInfo {
                    first_offset,
                    last_offset,
                    max_timestamp: header.max_timestamp,
                    log_start_offset: self.log.log_start_offset(),
                    record_count: header.record_count as u64,
                });
            }
            Check::Append => guard.header = Some(header),
            Check::Untracked => {}
        }
        let info = self
            .log
            .append_bytes_as_leader(records, self.leader_epoch.get(), now_ms)
            .await;
        match info {
            Ok(info) => {
                if let Some(mut h) = guard.header.take() {
                    h.base_offset = info.first_offset;
                    self.producers.borrow_mut().record(&h);
                }
                // A single replica is its own ISR: what is written is committed.
                self.log.set_high_watermark(self.log.log_end_offset());
                Ok(info)
            }
            Err(e) => Err(ProduceFailure {
                code: storage_error(&e).code(),
                message: Some(e.to_string()),
            }),
        }
    }

    /// Reads for a consumer: up to the high watermark (READ_UNCOMMITTED) or the last stable
    /// offset (READ_COMMITTED; equal to the high watermark, as no transactions exist).
    pub async fn read(&self, spec: &ReadSpec) -> ReadResult<FileRegion> {
        let hw = self.log.high_watermark();
        match self
            .log
            .read(spec.offset, spec.max_bytes, hw, spec.min_one_batch)
            .await
        {
            Ok(out) => ReadResult {
                error_code: 0,
                high_watermark: out.high_watermark,
                log_start_offset: out.log_start_offset,
                region: out.region,
            },
            Err(e) => {
                let offsets = self.log.offsets();
                ReadResult {
                    error_code: storage_error(&e).code(),
                    high_watermark: offsets.high_watermark,
                    log_start_offset: offsets.log_start_offset,
                    region: None,
                }
            }
        }
    }

    /// Whether a long poll that last saw `seen_high_watermark` for a fetch at `offset` has
    /// something new to read: the high watermark moved, or the offset left the log (an error
    /// to report).
    pub fn moved_past(&self, offset: Offset, seen_high_watermark: Offset) -> bool {
        let o = self.log.offsets();
        o.high_watermark != seen_high_watermark
            || offset < o.log_start_offset
            || offset > o.log_end_offset
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

    /// Kafka's ListOffsets for a consumer.
    pub async fn list_offset(&self, timestamp: i64) -> Result<ListedOffset, i16> {
        let epoch = self.leader_epoch.get();
        let o = self.log.offsets();
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
