//! What the coordinator needs from the core it runs on, and nothing more: the clock, random
//! member ids, appends to the `__consumer_offsets` partitions the core owns, and whether the
//! core is stopping. The runtime's `Core` is the host in the broker; a test can be one with
//! a fake log and its own time.

use bytes::Bytes;
use std::future::Future;

pub trait GroupHost {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> i64;

    /// 16 random bytes: the UUID in a new member id.
    fn random_id(&self) -> [u8; 16];

    /// Whether the core is shutting down (the group timers stop).
    fn is_stopping(&self) -> bool;

    /// Appends a batch to partition `partition` of `__consumer_offsets` with acks=all,
    /// answered once it is written.
    fn append_offsets(
        &self,
        partition: i32,
        batch: Bytes,
        now_ms: i64,
    ) -> impl Future<Output = Result<(), AppendFailure>>;
}

/// Why an append to `__consumer_offsets` failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppendFailure {
    /// This core does not hold the partition (not opened yet, or deleted).
    NotHere,
    /// The partition refused or failed the append, as its produce path reported it: the
    /// Kafka code and message only for the coordinator's log line, and whether the batch was
    /// too large for the partition.
    Refused {
        code: i16,
        message: Option<String>,
        too_large: bool,
    },
}
