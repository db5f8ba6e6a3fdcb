//! The requests one core sends another, and their answers. Everything here is `Send`: it is
//! moved through the mesh, never shared.

use bytes::Bytes;
use std::os::fd::OwnedFd;
use weir_replication::controller::{ControllerReply, ControllerRequest};
use weir_replication::metadata::{MetadataImage, MetadataRecord};
use weir_storage::{AppendInfo, TimestampLookup};

pub enum ShardRequest {
    /// Append one partition's records; with acks=all the answer waits for the commit, at most
    /// `timeout_ms` (the request's).
    Produce {
        topic: String,
        partition: i32,
        records: Bytes,
        acks: i16,
        timeout_ms: i32,
        now_ms: i64,
    },
    /// Read partitions owned by the receiving core.
    Read(Vec<ReadSpec>),
    /// Resolve when any of these partitions moved past what the caller saw, or after the
    /// wait, or when the caller cancels it (`CancelWait` with the same id).
    WaitForData {
        waiter: WaiterId,
        parts: Vec<WaitSpec>,
        max_wait_ms: u64,
    },
    /// The caller no longer needs that wait (its fetch was answered).
    CancelWait(WaiterId),
    ListOffset {
        topic: String,
        partition: i32,
        timestamp: i64,
        committed: bool,
        current_leader_epoch: i32,
    },
    /// Where `leader_epoch` ends in the leader's log (OffsetForLeaderEpoch).
    OffsetForEpoch {
        topic: String,
        partition: i32,
        current_leader_epoch: i32,
        leader_epoch: i32,
    },
    /// Move a partition's log start offset forward (DeleteRecords); -1 means the high
    /// watermark.
    DeleteRecords {
        topic: String,
        partition: i32,
        offset: i64,
    },
    /// Metadata records the controller committed, to apply in order.
    Apply(Vec<MetadataRecord>),
    /// A whole metadata image replacing the current one (a snapshot was installed).
    InstallImage(Box<MetadataImage>),
    /// This broker is registered and unfenced: serve clients.
    ClusterReady,
    /// For the active controller (run on core 0, which reaches it).
    Controller(Box<ControllerRequest>),
    /// A producer id for InitProducerId (core 0 holds this broker's block).
    ProducerId,
    /// Work for a consumer group owned by the receiving core.
    Group(Box<crate::group::coordinator::GroupCall>),
}

pub enum ShardResponse {
    Produce(Result<AppendInfo, ProduceFailure>),
    Read(Vec<ReadResult<RemoteRegion>>),
    Waited,
    WaitCancelled,
    ListOffset(Result<ListedOffset, i16>),
    /// The largest epoch at or below the one asked and where it ends.
    OffsetForEpoch(Result<(i32, i64), i16>),
    /// The new low watermark.
    DeleteRecords(Result<i64, crate::errors::ApiError>),
    Applied,
    Controller(Box<ControllerReply>),
    ProducerId(Result<i64, i16>),
    Group(crate::group::coordinator::GroupReply),
}

#[derive(Debug, Clone)]
pub struct ReadSpec {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub max_bytes: u64,
    /// Return the first batch whole even if it is larger than `max_bytes` (KIP-74: only the
    /// first non-empty partition of a fetch gets this).
    pub min_one_batch: bool,
    /// READ_COMMITTED: bounded by the last stable offset (the high watermark: no transactions).
    pub committed: bool,
    /// The fetcher's view of the leader epoch (KIP-320), -1 when it sent none.
    pub current_leader_epoch: i32,
    /// Set when a follower fetches (Kafka's replica fetch): it reads up to the log end, not the
    /// high watermark, and its position moves the high watermark and the ISR.
    pub follower: Option<FollowerFetch>,
}

/// What a follower's fetch says of it, per partition.
#[derive(Debug, Clone, Copy)]
pub struct FollowerFetch {
    pub replica_id: i32,
    /// Its registration epoch (KIP-903's `ReplicaEpoch`), -1 if it sent none.
    pub broker_epoch: i64,
    /// The epoch of its last batch (KIP-595's `LastFetchedEpoch`), -1 if none.
    pub last_fetched_epoch: i32,
    pub log_start_offset: i64,
}

/// A long poll's partition: wake when its high watermark passes `seen_high_watermark` (what the
/// fetch's last read saw), or when `fetch_offset` falls out of the log.
#[derive(Debug, Clone)]
pub struct WaitSpec {
    pub topic: String,
    pub partition: i32,
    pub fetch_offset: i64,
    pub seen_high_watermark: i64,
    /// A follower waits for the log end to pass its fetch offset (it reads up to the log end).
    pub follower: bool,
}

/// Names one long poll across cores: the core it started on and a number unique there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct WaiterId {
    pub origin: usize,
    pub id: u64,
}

/// A read's answer; `R` is a local file region or, across cores, a duplicated descriptor.
#[derive(Debug)]
pub struct ReadResult<R> {
    pub error_code: i16,
    pub high_watermark: i64,
    pub log_start_offset: i64,
    pub region: Option<R>,
    /// For a follower whose log holds an epoch the leader's does not: where to truncate.
    pub diverging_epoch: Option<weir_replication::partition::epochs::DivergingEpoch>,
    /// The leader and epoch this broker knows, for NOT_LEADER / FENCED answers (KIP-951).
    pub current_leader: Option<(i32, i32)>,
}

impl<R> ReadResult<R> {
    /// A read refused with `error_code`.
    pub fn error(error_code: i16) -> Self {
        Self {
            error_code,
            high_watermark: -1,
            log_start_offset: -1,
            region: None,
            diverging_epoch: None,
            current_leader: None,
        }
    }
}

/// A file region sent to another core: its own descriptor (a `dup`), so the bytes can still go
/// to that core's socket with `sendfile` and the owning core's file cache stays its own.
#[derive(Debug)]
pub struct RemoteRegion {
    pub fd: OwnedFd,
    pub position: u64,
    pub len: u64,
}

impl std::os::fd::AsRawFd for RemoteRegion {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.fd.as_raw_fd()
    }
}

#[derive(Debug, Clone, Copy)]
pub struct ListedOffset {
    pub offset: i64,
    pub timestamp: i64,
    pub leader_epoch: i32,
}

impl From<TimestampLookup> for ListedOffset {
    fn from(t: TimestampLookup) -> Self {
        Self {
            offset: t.offset,
            timestamp: t.timestamp,
            leader_epoch: 0,
        }
    }
}

/// A produce refused: the Kafka error code and, where useful, a message.
#[derive(Debug, Clone)]
pub struct ProduceFailure {
    pub code: i16,
    pub message: Option<String>,
    /// The records that made the leader refuse the batch (Produce v8+ `record_errors`).
    pub record_errors: Vec<weir_storage::RecordError>,
    /// The partition's log start offset where Kafka reports it with an error (record
    /// validation and other refusals of the batch's content); -1 otherwise.
    pub log_start_offset: i64,
}

impl ProduceFailure {
    /// A bare error code, as Kafka answers most partition errors.
    pub fn code(code: i16) -> Self {
        Self {
            code,
            message: None,
            record_errors: Vec::new(),
            log_start_offset: -1,
        }
    }

    pub fn with_message(code: i16, message: impl Into<String>) -> Self {
        Self {
            message: Some(message.into()),
            ..Self::code(code)
        }
    }
}
