//! Snapshots of the metadata image (the `<index>-<term>.checkpoint` files and what a lagging
//! broker is sent first): the image archived with rkyv, so a reader can check and walk it
//! without parsing it field by field.
//!
//! Layout: an 8-byte magic, a u32 format version, a u32 CRC-32C of the payload, then the rkyv
//! payload. A snapshot comes from disk or from another node, so it is untrusted: the checksum
//! catches torn or flipped bytes that would still be a well-formed archive, rkyv's checked
//! access (bytecheck) refuses any archive that is not well-formed (never a panic, never UB), and
//! the decoded image is checked for what the archive's types cannot say (unique names and ids).
//!
//! The archived types below are the format: changing one means a new `SNAPSHOT_VERSION` and a
//! decoder for the old one.

use super::image::{BrokerMeta, MetadataImage, PartitionMeta, TopicMeta, UncleanElection};
use super::records::{DiscardedRange, Endpoint};
use crate::types::NodeId;
use rkyv::rancor;
use std::collections::BTreeMap;

const MAGIC: &[u8; 8] = b"WEIRMETA";
/// The snapshot format this code writes and reads. Version 1 (no unclean election reports)
/// is still read.
pub const SNAPSHOT_VERSION: u32 = 2;
const HEADER_BYTES: usize = 16;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotError {
    #[error("not a metadata snapshot (bad magic)")]
    BadMagic,
    #[error(
        "metadata snapshot format {0} is not supported (this build reads 1 to {SNAPSHOT_VERSION})"
    )]
    UnsupportedVersion(u32),
    #[error("metadata snapshot checksum mismatch")]
    Checksum,
    #[error("malformed metadata snapshot: {0}")]
    Malformed(String),
    #[error("inconsistent metadata snapshot: {0}")]
    Inconsistent(&'static str),
}

#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
struct Snapshot {
    topics: Vec<SnapTopic>,
    brokers: Vec<SnapBroker>,
    broker_configs: Vec<SnapBrokerConfigs>,
    next_producer_id_block: i64,
    next_broker_epoch: i64,
}

#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
struct SnapConfig {
    key: String,
    value: String,
}

#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
struct SnapTopic {
    name: String,
    id: [u8; 16],
    partitions: Vec<SnapPartition>,
    configs: Vec<SnapConfig>,
}

#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
struct SnapUnclean {
    leader: i32,
    leader_epoch: i32,
    replaced_isr: Vec<i32>,
    replaced_elr: Vec<i32>,
    time_ms: i64,
    leader_log_end: Option<i64>,
    discarded: Vec<(i32, DiscardedRange)>,
}

#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
struct SnapPartition {
    replicas: Vec<i32>,
    isr: Vec<i32>,
    elr: Vec<i32>,
    last_known_elr: Vec<i32>,
    leader: i32,
    leader_epoch: i32,
    partition_epoch: i32,
    unclean: Option<SnapUnclean>,
}

#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
struct SnapBroker {
    id: i32,
    incarnation_id: [u8; 16],
    epoch: i64,
    endpoints: Vec<Endpoint>,
    rack: Option<String>,
    fenced: bool,
    in_controlled_shutdown: bool,
}

#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
struct SnapBrokerConfigs {
    broker: Option<i32>,
    configs: Vec<SnapConfig>,
}

fn configs_out(m: &BTreeMap<String, String>) -> Vec<SnapConfig> {
    m.iter()
        .map(|(k, v)| SnapConfig {
            key: k.clone(),
            value: v.clone(),
        })
        .collect()
}

fn configs_in(v: Vec<SnapConfig>) -> Result<BTreeMap<String, String>, SnapshotError> {
    let n = v.len();
    let m: BTreeMap<_, _> = v.into_iter().map(|c| (c.key, c.value)).collect();
    if m.len() != n {
        return Err(SnapshotError::Inconsistent("duplicate config key"));
    }
    Ok(m)
}

fn to_snapshot(image: &MetadataImage) -> Snapshot {
    Snapshot {
        topics: image
            .topics
            .values()
            .map(|t| SnapTopic {
                name: t.name.clone(),
                id: t.id,
                partitions: t
                    .partitions
                    .iter()
                    .map(|p| SnapPartition {
                        replicas: p.replicas.clone(),
                        isr: p.isr.clone(),
                        elr: p.elr.clone(),
                        last_known_elr: p.last_known_elr.clone(),
                        leader: p.leader,
                        leader_epoch: p.leader_epoch,
                        partition_epoch: p.partition_epoch,
                        unclean: p.last_unclean_election.as_ref().map(|u| SnapUnclean {
                            leader: u.leader,
                            leader_epoch: u.leader_epoch,
                            replaced_isr: u.replaced_isr.clone(),
                            replaced_elr: u.replaced_elr.clone(),
                            time_ms: u.time_ms,
                            leader_log_end: u.leader_log_end,
                            discarded: u.discarded.clone(),
                        }),
                    })
                    .collect(),
                configs: configs_out(&t.configs),
            })
            .collect(),
        brokers: image
            .brokers
            .values()
            .map(|b| SnapBroker {
                id: b.id,
                incarnation_id: b.incarnation_id,
                epoch: b.epoch,
                endpoints: b.endpoints.clone(),
                rack: b.rack.clone(),
                fenced: b.fenced,
                in_controlled_shutdown: b.in_controlled_shutdown,
            })
            .collect(),
        broker_configs: image
            .broker_configs
            .iter()
            .map(|(broker, c)| SnapBrokerConfigs {
                broker: *broker,
                configs: configs_out(c),
            })
            .collect(),
        next_producer_id_block: image.next_producer_id_block,
        next_broker_epoch: image.next_broker_epoch,
    }
}

fn from_snapshot(s: Snapshot) -> Result<MetadataImage, SnapshotError> {
    let mut image = MetadataImage {
        next_producer_id_block: s.next_producer_id_block,
        next_broker_epoch: s.next_broker_epoch,
        ..MetadataImage::default()
    };
    for t in s.topics {
        let partitions = t
            .partitions
            .into_iter()
            .map(|p| PartitionMeta {
                replicas: p.replicas,
                isr: p.isr,
                elr: p.elr,
                last_known_elr: p.last_known_elr,
                leader: p.leader,
                leader_epoch: p.leader_epoch,
                partition_epoch: p.partition_epoch,
                last_unclean_election: p.unclean.map(|u| UncleanElection {
                    leader: u.leader,
                    leader_epoch: u.leader_epoch,
                    replaced_isr: u.replaced_isr,
                    replaced_elr: u.replaced_elr,
                    time_ms: u.time_ms,
                    leader_log_end: u.leader_log_end,
                    discarded: u.discarded,
                }),
            })
            .collect();
        if image.names_by_id.insert(t.id, t.name.clone()).is_some() {
            return Err(SnapshotError::Inconsistent("duplicate topic id"));
        }
        let meta = TopicMeta {
            name: t.name.clone(),
            id: t.id,
            partitions,
            configs: configs_in(t.configs)?,
        };
        if image.topics.insert(t.name, meta).is_some() {
            return Err(SnapshotError::Inconsistent("duplicate topic name"));
        }
    }
    for b in s.brokers {
        let id: NodeId = b.id;
        let meta = BrokerMeta {
            id,
            incarnation_id: b.incarnation_id,
            epoch: b.epoch,
            endpoints: b.endpoints,
            rack: b.rack,
            fenced: b.fenced,
            in_controlled_shutdown: b.in_controlled_shutdown,
        };
        if image.brokers.insert(id, meta).is_some() {
            return Err(SnapshotError::Inconsistent("duplicate broker id"));
        }
    }
    for c in s.broker_configs {
        if c.configs.is_empty() {
            return Err(SnapshotError::Inconsistent("empty broker config set"));
        }
        if image
            .broker_configs
            .insert(c.broker, configs_in(c.configs)?)
            .is_some()
        {
            return Err(SnapshotError::Inconsistent("duplicate broker config set"));
        }
    }
    Ok(image)
}

/// The image as snapshot bytes.
pub fn encode(image: &MetadataImage) -> Vec<u8> {
    let payload = rkyv::to_bytes::<rancor::Error>(&to_snapshot(image))
        // Serializing owned strings, vectors and integers into memory has no failure mode
        // but running out of memory, which aborts anyway.
        .expect("archiving the metadata image into memory");
    let mut out = Vec::with_capacity(HEADER_BYTES + payload.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&SNAPSHOT_VERSION.to_be_bytes());
    out.extend_from_slice(&crc32c::crc32c(&payload).to_be_bytes());
    out.extend_from_slice(&payload);
    out
}

/// Snapshot bytes (from disk or another node: untrusted) as an image.
pub fn decode(bytes: &[u8]) -> Result<MetadataImage, SnapshotError> {
    if bytes.len() < HEADER_BYTES || &bytes[..8] != MAGIC {
        return Err(SnapshotError::BadMagic);
    }
    let word =
        |at: usize| u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
    let version = word(8);
    if version != SNAPSHOT_VERSION && version != 1 {
        return Err(SnapshotError::UnsupportedVersion(version));
    }
    let payload = &bytes[HEADER_BYTES..];
    if crc32c::crc32c(payload) != word(12) {
        return Err(SnapshotError::Checksum);
    }
    // rkyv reads archives in place and needs them aligned; bytes from a file or a socket
    // buffer have no such promise, so they are copied into an aligned buffer first.
    let mut aligned = rkyv::util::AlignedVec::<16>::with_capacity(payload.len());
    aligned.extend_from_slice(payload);
    let snapshot = if version == 1 {
        rkyv::from_bytes::<v1::Snapshot, rancor::Error>(&aligned).map(Snapshot::from)
    } else {
        rkyv::from_bytes::<Snapshot, rancor::Error>(&aligned)
    }
    .map_err(|e| SnapshotError::Malformed(e.to_string()))?;
    from_snapshot(snapshot)
}

/// Format 1: the same but for unclean elections, which had no reports.
mod v1 {
    use super::{SnapBroker, SnapBrokerConfigs, SnapConfig};

    #[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
    pub(super) struct Snapshot {
        topics: Vec<SnapTopic>,
        brokers: Vec<SnapBroker>,
        broker_configs: Vec<SnapBrokerConfigs>,
        next_producer_id_block: i64,
        next_broker_epoch: i64,
    }

    #[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
    struct SnapTopic {
        name: String,
        id: [u8; 16],
        partitions: Vec<SnapPartition>,
        configs: Vec<SnapConfig>,
    }

    #[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
    struct SnapUnclean {
        leader: i32,
        leader_epoch: i32,
        replaced_isr: Vec<i32>,
        replaced_elr: Vec<i32>,
        time_ms: i64,
    }

    #[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
    struct SnapPartition {
        replicas: Vec<i32>,
        isr: Vec<i32>,
        elr: Vec<i32>,
        last_known_elr: Vec<i32>,
        leader: i32,
        leader_epoch: i32,
        partition_epoch: i32,
        unclean: Option<SnapUnclean>,
    }

    impl From<Snapshot> for super::Snapshot {
        fn from(s: Snapshot) -> Self {
            let topics = s
                .topics
                .into_iter()
                .map(|t| super::SnapTopic {
                    name: t.name,
                    id: t.id,
                    configs: t.configs,
                    partitions: t
                        .partitions
                        .into_iter()
                        .map(|p| super::SnapPartition {
                            replicas: p.replicas,
                            isr: p.isr,
                            elr: p.elr,
                            last_known_elr: p.last_known_elr,
                            leader: p.leader,
                            leader_epoch: p.leader_epoch,
                            partition_epoch: p.partition_epoch,
                            unclean: p.unclean.map(|u| super::SnapUnclean {
                                leader: u.leader,
                                leader_epoch: u.leader_epoch,
                                replaced_isr: u.replaced_isr,
                                replaced_elr: u.replaced_elr,
                                time_ms: u.time_ms,
                                leader_log_end: None,
                                discarded: Vec::new(),
                            }),
                        })
                        .collect(),
                })
                .collect();
            Self {
                topics,
                brokers: s.brokers,
                broker_configs: s.broker_configs,
                next_producer_id_block: s.next_producer_id_block,
                next_broker_epoch: s.next_broker_epoch,
            }
        }
    }

    /// A format-1 snapshot of an image, for the test that format 1 is still read.
    #[cfg(test)]
    pub(crate) fn encode(image: &super::MetadataImage) -> Vec<u8> {
        let s = super::to_snapshot(image);
        let old = Snapshot {
            topics: s
                .topics
                .into_iter()
                .map(|t| SnapTopic {
                    name: t.name,
                    id: t.id,
                    configs: t.configs,
                    partitions: t
                        .partitions
                        .into_iter()
                        .map(|p| SnapPartition {
                            replicas: p.replicas,
                            isr: p.isr,
                            elr: p.elr,
                            last_known_elr: p.last_known_elr,
                            leader: p.leader,
                            leader_epoch: p.leader_epoch,
                            partition_epoch: p.partition_epoch,
                            unclean: p.unclean.map(|u| SnapUnclean {
                                leader: u.leader,
                                leader_epoch: u.leader_epoch,
                                replaced_isr: u.replaced_isr,
                                replaced_elr: u.replaced_elr,
                                time_ms: u.time_ms,
                            }),
                        })
                        .collect(),
                })
                .collect(),
            brokers: s.brokers,
            broker_configs: s.broker_configs,
            next_producer_id_block: s.next_producer_id_block,
            next_broker_epoch: s.next_broker_epoch,
        };
        let payload = rkyv::to_bytes::<super::rancor::Error>(&old).expect("archiving");
        let mut out = Vec::new();
        out.extend_from_slice(super::MAGIC);
        out.extend_from_slice(&1u32.to_be_bytes());
        out.extend_from_slice(&crc32c::crc32c(&payload).to_be_bytes());
        out.extend_from_slice(&payload);
        out
    }
}

#[cfg(test)]
#[path = "snapshot_tests.rs"]
mod tests;
