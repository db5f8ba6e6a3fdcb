//! Metadata records: the entries of the metadata log (`__cluster_metadata-0`), in the spirit of
//! KRaft's records (`TopicRecord`, `PartitionRecord`, `PartitionChangeRecord`, `ConfigRecord`,
//! `RegisterBrokerRecord`, ...). One controller operation writes one batch of them (one raft
//! entry), which applies atomically on replay.
//!
//! Encoding: a tag byte, a version byte, then fields (big-endian integers, u16-length strings,
//! i16-length optional strings, i32-count lists, 16-byte ids; see `codec`). Tags 1-5 at version
//! 0 are what single-node Weir wrote before the cluster existed and still decode as they did.
//! Unknown tags or versions are refused: a log written by a newer Weir must not be
//! half-understood.

use super::codec::{Reader, RecordError, Writer};
use crate::types::{BrokerEpoch, LeaderEpoch, NodeId, TopicId};

/// A broker process's identity (Kafka's incarnation id): a fresh UUID per process start, so the
/// controller tells a restarted broker from a second broker claiming the same node id.
pub type IncarnationId = [u8; 16];

/// A new topic's name and id (Kafka's TopicRecord).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicRecord {
    pub name: String,
    pub id: TopicId,
}

/// A partition's full state (Kafka's PartitionRecord): written when the partition is created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionRecord {
    pub topic_id: TopicId,
    pub partition: i32,
    pub replicas: Vec<NodeId>,
    pub isr: Vec<NodeId>,
    /// Eligible leader replicas (KIP-966): left the ISR while it was below
    /// `min.insync.replicas`, so they hold everything committed.
    pub elr: Vec<NodeId>,
    /// The last known leader, kept once the ISR and ELR are both empty (KIP-966).
    pub last_known_elr: Vec<NodeId>,
    pub leader: NodeId,
    pub leader_epoch: LeaderEpoch,
    pub partition_epoch: i32,
}

/// What changed in a partition (Kafka's PartitionChangeRecord): only the changed fields are
/// set. Replay bumps the leader epoch when `leader` is set and the partition epoch always,
/// so the epochs are never written and never disagree with the log.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PartitionChangeRecord {
    pub topic_id: TopicId,
    pub partition: i32,
    pub leader: Option<NodeId>,
    pub isr: Option<Vec<NodeId>>,
    pub elr: Option<Vec<NodeId>>,
    pub last_known_elr: Option<Vec<NodeId>>,
    /// Reserved for reassignments (none yet); replay honours it so a later writer can use it.
    pub replicas: Option<Vec<NodeId>>,
}

/// A topic config override set (`Some`) or removed (`None`) (Kafka's ConfigRecord, TOPIC).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicConfigRecord {
    pub topic_id: TopicId,
    pub key: String,
    pub value: Option<String>,
}

/// A dynamic broker config set or removed (Kafka's ConfigRecord, BROKER): `broker` None is the
/// cluster-wide default (resource name ""), `Some(id)` one broker's own value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerConfigRecord {
    pub broker: Option<NodeId>,
    pub key: String,
    pub value: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoveTopicRecord {
    pub id: TopicId,
}

/// The next producer id block starts here (Kafka's ProducerIdsRecord); the broker that got the
/// block is recorded for diagnosis (-1 in logs written before brokers registered).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerIdsRecord {
    pub broker_id: NodeId,
    pub broker_epoch: BrokerEpoch,
    pub next_block_start: i64,
}

/// One advertised listener of a broker (Kafka's BrokerEndpoint).
#[derive(Debug, Clone, PartialEq, Eq, Hash, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct Endpoint {
    pub listener: String,
    pub host: String,
    pub port: u16,
    /// Kafka's SecurityProtocol id: 0 PLAINTEXT, 1 SSL, 2 SASL_PLAINTEXT, 3 SASL_SSL.
    pub security_protocol: i16,
}

/// A broker registration (Kafka's RegisterBrokerRecord). A new incarnation gets a new epoch
/// and starts fenced; an amended registration of the same incarnation keeps both.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisterBrokerRecord {
    pub broker_id: NodeId,
    pub incarnation_id: IncarnationId,
    pub broker_epoch: BrokerEpoch,
    pub endpoints: Vec<Endpoint>,
    pub rack: Option<String>,
    pub fenced: bool,
    pub in_controlled_shutdown: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnregisterBrokerRecord {
    pub broker_id: NodeId,
    pub broker_epoch: BrokerEpoch,
}

/// A registered broker fenced, unfenced or entering controlled shutdown (Kafka's
/// BrokerRegistrationChangeRecord). Applies only to the registration with this epoch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerChangeRecord {
    pub broker_id: NodeId,
    pub broker_epoch: BrokerEpoch,
    pub fenced: Option<bool>,
    pub in_controlled_shutdown: Option<bool>,
}

/// An election that may have lost acknowledged data: a leader taken from outside the ISR and
/// ELR (`unclean.leader.election.enable`) or the last known leader after the ISR and ELR
/// emptied. Written in the same batch as the change, so the loss can be reported later.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UncleanElectionRecord {
    pub topic_id: TopicId,
    pub partition: i32,
    pub leader: NodeId,
    /// The leader epoch the new leader starts.
    pub leader_epoch: LeaderEpoch,
    /// The ISR and ELR the election ignored: whatever only they held may be lost.
    pub replaced_isr: Vec<NodeId>,
    pub replaced_elr: Vec<NodeId>,
    pub time_ms: i64,
}

/// What a replica reports about an unclean election once it knows (Weir's own record; Kafka
/// only logs a line). The controller knows the new leader, its epoch and the time; what the
/// election gave up is known only to the replicas: the new leader's log end when it took over,
/// and each replica that held more and truncated to the new leader. Applies only while the
/// election is the partition's last unclean one (`election_epoch`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UncleanReportRecord {
    pub topic_id: TopicId,
    pub partition: i32,
    /// The leader epoch the unclean election started.
    pub election_epoch: LeaderEpoch,
    /// The reporting replica.
    pub broker: NodeId,
    pub report: UncleanReport,
}

#[derive(Debug, Clone, PartialEq, Eq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub enum UncleanReport {
    /// The new leader's log end offset when it took over (where its epoch starts): records
    /// from here on of the older epochs existed only on other replicas.
    LeaderLogEnd(i64),
    /// A replica truncated records that existed only on it.
    Discarded(DiscardedRange),
}

/// Records a replica truncated: offsets `[from_offset, to_offset)`, written in the leader
/// epochs `epochs` (each with its first offset in the range, ascending).
#[derive(Debug, Clone, PartialEq, Eq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct DiscardedRange {
    pub from_offset: i64,
    /// Exclusive: the replica's log end before it truncated.
    pub to_offset: i64,
    /// The replica's high watermark before it truncated: `[from_offset, min(to_offset,
    /// high_watermark))` had been committed (acknowledged to acks=all producers).
    pub high_watermark: i64,
    pub epochs: Vec<(LeaderEpoch, i64)>,
    /// When the replica truncated.
    pub time_ms: i64,
}

impl DiscardedRange {
    /// How many committed records went: those below the replica's high watermark.
    pub fn committed_count(&self) -> i64 {
        (self.high_watermark.min(self.to_offset) - self.from_offset).max(0)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetadataRecord {
    Topic(TopicRecord),
    Partition(PartitionRecord),
    PartitionChange(PartitionChangeRecord),
    TopicConfig(TopicConfigRecord),
    BrokerConfig(BrokerConfigRecord),
    RemoveTopic(RemoveTopicRecord),
    ProducerIds(ProducerIdsRecord),
    RegisterBroker(RegisterBrokerRecord),
    UnregisterBroker(UnregisterBrokerRecord),
    BrokerChange(BrokerChangeRecord),
    UncleanElection(UncleanElectionRecord),
    UncleanReport(UncleanReportRecord),
}

const TOPIC: u8 = 1;
const PARTITION: u8 = 2;
const TOPIC_CONFIG: u8 = 3;
const REMOVE_TOPIC: u8 = 4;
const PRODUCER_IDS: u8 = 5;
const PARTITION_CHANGE: u8 = 6;
const BROKER_CONFIG: u8 = 7;
const REGISTER_BROKER: u8 = 8;
const UNREGISTER_BROKER: u8 = 9;
const BROKER_CHANGE: u8 = 10;
const UNCLEAN_ELECTION: u8 = 11;
const UNCLEAN_REPORT: u8 = 12;
/// `UncleanReport` kinds.
const LEADER_LOG_END: u8 = 0;
const DISCARDED: u8 = 1;

/// Version 0 of `Partition` (single-node Weir) had no ELR and no partition epoch.
const PARTITION_V1: u8 = 1;
/// Version 0 of `ProducerIds` had no broker id and epoch.
const PRODUCER_IDS_V1: u8 = 1;

/// The smallest encoded endpoint (empty strings), to bound an endpoint count by what is left.
const ENDPOINT_BYTES_MIN: usize = 2 + 2 + 2 + 2;

/// `BrokerConfigRecord::broker` None is written as -1.
const CLUSTER_DEFAULT: i32 = -1;

fn tri(v: Option<bool>) -> u8 {
    match v {
        None => 0xff,
        Some(false) => 0,
        Some(true) => 1,
    }
}

fn untri(b: u8) -> Result<Option<bool>, RecordError> {
    match b {
        0xff => Ok(None),
        0 => Ok(Some(false)),
        1 => Ok(Some(true)),
        _ => Err(RecordError("bad tri-state flag")),
    }
}

impl MetadataRecord {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_into(&mut out);
        out
    }

    pub fn encode_into(&self, out: &mut Vec<u8>) {
        let mut w = Writer(out);
        match self {
            MetadataRecord::Topic(r) => {
                w.u8(TOPIC);
                w.u8(0);
                w.string(&r.name);
                w.id(&r.id);
            }
            MetadataRecord::Partition(r) => {
                w.u8(PARTITION);
                w.u8(PARTITION_V1);
                w.id(&r.topic_id);
                w.i32(r.partition);
                w.i32(r.leader);
                w.i32(r.leader_epoch);
                w.i32s(&r.replicas);
                w.i32s(&r.isr);
                w.i32s(&r.elr);
                w.i32s(&r.last_known_elr);
                w.i32(r.partition_epoch);
            }
            MetadataRecord::PartitionChange(r) => {
                w.u8(PARTITION_CHANGE);
                w.u8(0);
                w.id(&r.topic_id);
                w.i32(r.partition);
                match r.leader {
                    None => w.u8(0),
                    Some(l) => {
                        w.u8(1);
                        w.i32(l);
                    }
                }
                w.opt_i32s(r.isr.as_deref());
                w.opt_i32s(r.elr.as_deref());
                w.opt_i32s(r.last_known_elr.as_deref());
                w.opt_i32s(r.replicas.as_deref());
            }
            MetadataRecord::TopicConfig(r) => {
                w.u8(TOPIC_CONFIG);
                w.u8(0);
                w.id(&r.topic_id);
                w.string(&r.key);
                w.opt_string(r.value.as_deref());
            }
            MetadataRecord::BrokerConfig(r) => {
                w.u8(BROKER_CONFIG);
                w.u8(0);
                w.i32(r.broker.unwrap_or(CLUSTER_DEFAULT));
                w.string(&r.key);
                w.opt_string(r.value.as_deref());
            }
            MetadataRecord::RemoveTopic(r) => {
                w.u8(REMOVE_TOPIC);
                w.u8(0);
                w.id(&r.id);
            }
            MetadataRecord::ProducerIds(r) => {
                w.u8(PRODUCER_IDS);
                w.u8(PRODUCER_IDS_V1);
                w.i64(r.next_block_start);
                w.i32(r.broker_id);
                w.i64(r.broker_epoch);
            }
            MetadataRecord::RegisterBroker(r) => {
                w.u8(REGISTER_BROKER);
                w.u8(0);
                w.i32(r.broker_id);
                w.id(&r.incarnation_id);
                w.i64(r.broker_epoch);
                w.i32(r.endpoints.len() as i32);
                for e in &r.endpoints {
                    w.string(&e.listener);
                    w.string(&e.host);
                    w.u16(e.port);
                    w.i16(e.security_protocol);
                }
                w.opt_string(r.rack.as_deref());
                w.bool(r.fenced);
                w.bool(r.in_controlled_shutdown);
            }
            MetadataRecord::UnregisterBroker(r) => {
                w.u8(UNREGISTER_BROKER);
                w.u8(0);
                w.i32(r.broker_id);
                w.i64(r.broker_epoch);
            }
            MetadataRecord::BrokerChange(r) => {
                w.u8(BROKER_CHANGE);
                w.u8(0);
                w.i32(r.broker_id);
                w.i64(r.broker_epoch);
                w.u8(tri(r.fenced));
                w.u8(tri(r.in_controlled_shutdown));
            }
            MetadataRecord::UncleanElection(r) => {
                w.u8(UNCLEAN_ELECTION);
                w.u8(0);
                w.id(&r.topic_id);
                w.i32(r.partition);
                w.i32(r.leader);
                w.i32(r.leader_epoch);
                w.i32s(&r.replaced_isr);
                w.i32s(&r.replaced_elr);
                w.i64(r.time_ms);
            }
            MetadataRecord::UncleanReport(r) => {
                w.u8(UNCLEAN_REPORT);
                w.u8(0);
                w.id(&r.topic_id);
                w.i32(r.partition);
                w.i32(r.election_epoch);
                w.i32(r.broker);
                match &r.report {
                    UncleanReport::LeaderLogEnd(end) => {
                        w.u8(LEADER_LOG_END);
                        w.i64(*end);
                    }
                    UncleanReport::Discarded(d) => {
                        w.u8(DISCARDED);
                        w.i64(d.from_offset);
                        w.i64(d.to_offset);
                        w.i64(d.high_watermark);
                        w.i64(d.time_ms);
                        w.i32(d.epochs.len() as i32);
                        for (epoch, start) in &d.epochs {
                            w.i32(*epoch);
                            w.i64(*start);
                        }
                    }
                }
            }
        }
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, RecordError> {
        let mut r = Reader::new(bytes);
        let tag = r.u8()?;
        let version = r.u8()?;
        let rec = match (tag, version) {
            (TOPIC, 0) => MetadataRecord::Topic(TopicRecord {
                name: r.string()?,
                id: r.id()?,
            }),
            (PARTITION, 0 | PARTITION_V1) => {
                let topic_id = r.id()?;
                let partition = r.i32()?;
                let leader = r.i32()?;
                let leader_epoch = r.i32()?;
                let replicas = r.i32s()?;
                let isr = r.i32s()?;
                let (elr, last_known_elr, partition_epoch) = if version == PARTITION_V1 {
                    (r.i32s()?, r.i32s()?, r.i32()?)
                } else {
                    (Vec::new(), Vec::new(), 0)
                };
                MetadataRecord::Partition(PartitionRecord {
                    topic_id,
                    partition,
                    replicas,
                    isr,
                    elr,
                    last_known_elr,
                    leader,
                    leader_epoch,
                    partition_epoch,
                })
            }
            (PARTITION_CHANGE, 0) => {
                let topic_id = r.id()?;
                let partition = r.i32()?;
                let leader = match r.u8()? {
                    0 => None,
                    1 => Some(r.i32()?),
                    _ => return Err(RecordError("bad leader flag")),
                };
                MetadataRecord::PartitionChange(PartitionChangeRecord {
                    topic_id,
                    partition,
                    leader,
                    isr: r.opt_i32s()?,
                    elr: r.opt_i32s()?,
                    last_known_elr: r.opt_i32s()?,
                    replicas: r.opt_i32s()?,
                })
            }
            (TOPIC_CONFIG, 0) => MetadataRecord::TopicConfig(TopicConfigRecord {
                topic_id: r.id()?,
                key: r.string()?,
                value: r.opt_string()?,
            }),
            (BROKER_CONFIG, 0) => {
                let broker = match r.i32()? {
                    CLUSTER_DEFAULT => None,
                    id if id >= 0 => Some(id),
                    _ => return Err(RecordError("bad broker config resource")),
                };
                MetadataRecord::BrokerConfig(BrokerConfigRecord {
                    broker,
                    key: r.string()?,
                    value: r.opt_string()?,
                })
            }
            (REMOVE_TOPIC, 0) => MetadataRecord::RemoveTopic(RemoveTopicRecord { id: r.id()? }),
            (PRODUCER_IDS, 0) => MetadataRecord::ProducerIds(ProducerIdsRecord {
                next_block_start: r.i64()?,
                broker_id: -1,
                broker_epoch: -1,
            }),
            (PRODUCER_IDS, PRODUCER_IDS_V1) => MetadataRecord::ProducerIds(ProducerIdsRecord {
                next_block_start: r.i64()?,
                broker_id: r.i32()?,
                broker_epoch: r.i64()?,
            }),
            (REGISTER_BROKER, 0) => {
                let broker_id = r.i32()?;
                let incarnation_id = r.id()?;
                let broker_epoch = r.i64()?;
                let n = r.count(ENDPOINT_BYTES_MIN)?;
                let mut endpoints = Vec::with_capacity(n);
                for _ in 0..n {
                    endpoints.push(Endpoint {
                        listener: r.string()?,
                        host: r.string()?,
                        port: r.u16()?,
                        security_protocol: r.i16()?,
                    });
                }
                MetadataRecord::RegisterBroker(RegisterBrokerRecord {
                    broker_id,
                    incarnation_id,
                    broker_epoch,
                    endpoints,
                    rack: r.opt_string()?,
                    fenced: r.bool()?,
                    in_controlled_shutdown: r.bool()?,
                })
            }
            (UNREGISTER_BROKER, 0) => MetadataRecord::UnregisterBroker(UnregisterBrokerRecord {
                broker_id: r.i32()?,
                broker_epoch: r.i64()?,
            }),
            (BROKER_CHANGE, 0) => MetadataRecord::BrokerChange(BrokerChangeRecord {
                broker_id: r.i32()?,
                broker_epoch: r.i64()?,
                fenced: untri(r.u8()?)?,
                in_controlled_shutdown: untri(r.u8()?)?,
            }),
            (UNCLEAN_ELECTION, 0) => MetadataRecord::UncleanElection(UncleanElectionRecord {
                topic_id: r.id()?,
                partition: r.i32()?,
                leader: r.i32()?,
                leader_epoch: r.i32()?,
                replaced_isr: r.i32s()?,
                replaced_elr: r.i32s()?,
                time_ms: r.i64()?,
            }),
            (UNCLEAN_REPORT, 0) => {
                let topic_id = r.id()?;
                let partition = r.i32()?;
                let election_epoch = r.i32()?;
                let broker = r.i32()?;
                let report = match r.u8()? {
                    LEADER_LOG_END => UncleanReport::LeaderLogEnd(r.i64()?),
                    DISCARDED => {
                        let from_offset = r.i64()?;
                        let to_offset = r.i64()?;
                        let high_watermark = r.i64()?;
                        let time_ms = r.i64()?;
                        let n = r.count(4 + 8)?;
                        let mut epochs = Vec::with_capacity(n);
                        for _ in 0..n {
                            epochs.push((r.i32()?, r.i64()?));
                        }
                        UncleanReport::Discarded(DiscardedRange {
                            from_offset,
                            to_offset,
                            high_watermark,
                            epochs,
                            time_ms,
                        })
                    }
                    _ => return Err(RecordError("bad unclean report kind")),
                };
                MetadataRecord::UncleanReport(UncleanReportRecord {
                    topic_id,
                    partition,
                    election_epoch,
                    broker,
                    report,
                })
            }
            (TOPIC..=UNCLEAN_REPORT, _) => return Err(RecordError("unknown record version")),
            _ => return Err(RecordError("unknown record type")),
        };
        r.finish()?;
        Ok(rec)
    }
}

/// Version of the batch framing below.
const BATCH_VERSION: u8 = 0;

/// One raft entry's payload: the records of one controller operation, applied together.
/// Framing: a version byte, a u32 count, then each record as a u32 length and its bytes.
pub fn encode_batch(records: &[MetadataRecord]) -> Vec<u8> {
    let mut out = Vec::with_capacity(5 + records.len() * 32);
    out.push(BATCH_VERSION);
    out.extend_from_slice(&(records.len() as u32).to_be_bytes());
    let mut one = Vec::new();
    for r in records {
        one.clear();
        r.encode_into(&mut one);
        out.extend_from_slice(&(one.len() as u32).to_be_bytes());
        out.extend_from_slice(&one);
    }
    out
}

/// Decodes a whole batch or nothing: one bad record refuses the batch, because a batch is one
/// atomic operation and applying part of it would leave an image the controller never wrote.
pub fn decode_batch(bytes: &[u8]) -> Result<Vec<MetadataRecord>, RecordError> {
    let mut r = Reader::new(bytes);
    if r.u8()? != BATCH_VERSION {
        return Err(RecordError("unknown batch version"));
    }
    let n = r.u32()? as usize;
    // Every record is at least a u32 length plus a tag and a version byte.
    if n > r.remaining() / 6 {
        return Err(RecordError("bad record count"));
    }
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let len = r.u32()? as usize;
        out.push(MetadataRecord::decode(r.take(len)?)?);
    }
    r.finish()?;
    Ok(out)
}

#[cfg(test)]
#[path = "records_tests.rs"]
mod tests;
