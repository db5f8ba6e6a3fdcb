//! Cluster metadata: the records of the metadata log, the image every core keeps, and the
//! controller that writes the log.

pub mod controller;
pub mod image;
pub mod records;

pub use image::{Change, MetadataImage, PartitionMeta, TopicMeta};
pub use records::MetadataRecord;

/// Kafka's topic id: a 16-byte UUID.
pub type TopicId = [u8; 16];

/// Kafka's name for the metadata log's partition directory.
pub const METADATA_TOPIC: &str = "__cluster_metadata";

/// A random (v4) UUID for a new topic. Kafka never hands out the all-zero id (it means "no id").
pub fn new_topic_id() -> TopicId {
    let mut id = [0u8; 16];
    loop {
        // SAFETY: getrandom writes at most `len` bytes into the buffer we own.
        let n = unsafe { libc::getrandom(id.as_mut_ptr().cast(), id.len(), 0) };
        if n == id.len() as isize {
            break;
        }
    }
    id[6] = (id[6] & 0x0f) | 0x40;
    id[8] = (id[8] & 0x3f) | 0x80;
    id
}
