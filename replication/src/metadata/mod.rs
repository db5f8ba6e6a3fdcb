//! The metadata log's records and the image they build. See `docs/CLUSTER.md`.
//!
//! - [`records`]: the records (KRaft's, in spirit) and their versioned binary codec, and the
//!   batch of records one raft entry carries.
//! - [`image`]: what the records say, applied one at a time; each application reports what
//!   changed so a core can react.
//! - [`snapshot`]: the image as validated rkyv bytes, for checkpoints and lagging brokers.

mod codec;
pub mod image;
pub mod records;
pub mod snapshot;

pub use codec::RecordError;
pub use image::{BrokerMeta, Change, MetadataImage, PartitionMeta, TopicMeta, UncleanElection};
pub use records::{decode_batch, encode_batch, Endpoint, IncarnationId, MetadataRecord};

/// Kafka's name for the metadata log's partition directory.
pub const METADATA_TOPIC: &str = "__cluster_metadata";
