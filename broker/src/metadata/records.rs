//! Metadata records: the entries of the metadata log (`__cluster_metadata-0`), in the spirit of
//! KRaft's records. Each is the value of a record in an ordinary v2 record batch; one controller
//! operation writes one batch, so it applies atomically on replay.
//!
//! Encoding: a tag byte, a version byte, then fields (big-endian integers, u16-length strings,
//! i16-length optional strings, 16-byte ids). Unknown tags are refused: a log written by a newer
//! Weir must not be half-understood.

use super::TopicId;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetadataRecord {
    Topic {
        name: String,
        id: TopicId,
    },
    Partition {
        topic_id: TopicId,
        partition: i32,
        leader: i32,
        leader_epoch: i32,
        replicas: Vec<i32>,
        isr: Vec<i32>,
    },
    /// A topic config override set (`Some`) or removed (`None`).
    TopicConfig {
        topic_id: TopicId,
        key: String,
        value: Option<String>,
    },
    RemoveTopic {
        id: TopicId,
    },
    /// The next producer id block starts here (Kafka's ProducerIdsRecord).
    ProducerIds {
        next_block_start: i64,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed metadata record: {0}")]
pub struct RecordError(pub &'static str);

const TOPIC: u8 = 1;
const PARTITION: u8 = 2;
const TOPIC_CONFIG: u8 = 3;
const REMOVE_TOPIC: u8 = 4;
const PRODUCER_IDS: u8 = 5;
const VERSION: u8 = 0;

impl MetadataRecord {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let mut w = Writer(&mut out);
        match self {
            MetadataRecord::Topic { name, id } => {
                w.head(TOPIC);
                w.string(name);
                w.id(id);
            }
            MetadataRecord::Partition {
                topic_id,
                partition,
                leader,
                leader_epoch,
                replicas,
                isr,
            } => {
                w.head(PARTITION);
                w.id(topic_id);
                w.i32(*partition);
                w.i32(*leader);
                w.i32(*leader_epoch);
                w.i32s(replicas);
                w.i32s(isr);
            }
            MetadataRecord::TopicConfig {
                topic_id,
                key,
                value,
            } => {
                w.head(TOPIC_CONFIG);
                w.id(topic_id);
                w.string(key);
                w.opt_string(value.as_deref());
            }
            MetadataRecord::RemoveTopic { id } => {
                w.head(REMOVE_TOPIC);
                w.id(id);
            }
            MetadataRecord::ProducerIds { next_block_start } => {
                w.head(PRODUCER_IDS);
                w.0.extend_from_slice(&next_block_start.to_be_bytes());
            }
        }
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, RecordError> {
        let mut r = Reader { b: bytes, pos: 0 };
        let tag = r.u8()?;
        if r.u8()? != VERSION {
            return Err(RecordError("unknown record version"));
        }
        let rec = match tag {
            TOPIC => MetadataRecord::Topic {
                name: r.string()?,
                id: r.id()?,
            },
            PARTITION => MetadataRecord::Partition {
                topic_id: r.id()?,
                partition: r.i32()?,
                leader: r.i32()?,
                leader_epoch: r.i32()?,
                replicas: r.i32s()?,
                isr: r.i32s()?,
            },
            TOPIC_CONFIG => MetadataRecord::TopicConfig {
                topic_id: r.id()?,
                key: r.string()?,
                value: r.opt_string()?,
            },
            REMOVE_TOPIC => MetadataRecord::RemoveTopic { id: r.id()? },
            PRODUCER_IDS => MetadataRecord::ProducerIds {
                next_block_start: i64::from_be_bytes(r.take(8)?.try_into().expect("8 bytes")),
            },
            _ => return Err(RecordError("unknown record type")),
        };
        if r.pos != bytes.len() {
            return Err(RecordError("trailing bytes"));
        }
        Ok(rec)
    }
}

struct Writer<'a>(&'a mut Vec<u8>);

impl Writer<'_> {
    fn head(&mut self, tag: u8) {
        self.0.push(tag);
        self.0.push(VERSION);
    }
    fn i32(&mut self, v: i32) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    fn i32s(&mut self, v: &[i32]) {
        self.i32(v.len() as i32);
        for x in v {
            self.i32(*x);
        }
    }
    fn string(&mut self, s: &str) {
        self.0.extend_from_slice(&(s.len() as u16).to_be_bytes());
        self.0.extend_from_slice(s.as_bytes());
    }
    fn opt_string(&mut self, s: Option<&str>) {
        match s {
            None => self.0.extend_from_slice(&(-1i16).to_be_bytes()),
            Some(s) => self.string(s),
        }
    }
    fn id(&mut self, id: &TopicId) {
        self.0.extend_from_slice(id);
    }
}

struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], RecordError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|e| *e <= self.b.len())
            .ok_or(RecordError("truncated"))?;
        let s = &self.b[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8, RecordError> {
        Ok(self.take(1)?[0])
    }
    fn i32(&mut self) -> Result<i32, RecordError> {
        Ok(i32::from_be_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }
    fn i32s(&mut self) -> Result<Vec<i32>, RecordError> {
        let n = self.i32()?;
        if n < 0 || n as usize > self.b.len() / 4 {
            return Err(RecordError("bad list length"));
        }
        (0..n).map(|_| self.i32()).collect()
    }
    fn string(&mut self) -> Result<String, RecordError> {
        let n = u16::from_be_bytes(self.take(2)?.try_into().expect("2 bytes")) as usize;
        String::from_utf8(self.take(n)?.to_vec()).map_err(|_| RecordError("string is not UTF-8"))
    }
    fn opt_string(&mut self) -> Result<Option<String>, RecordError> {
        let n = i16::from_be_bytes(
            self.b
                .get(self.pos..self.pos + 2)
                .ok_or(RecordError("truncated"))?
                .try_into()
                .expect("2 bytes"),
        );
        if n == -1 {
            self.pos += 2;
            return Ok(None);
        }
        self.string().map(Some)
    }
    fn id(&mut self) -> Result<TopicId, RecordError> {
        Ok(self.take(16)?.try_into().expect("16 bytes"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_reject_garbage() {
        let id = [7u8; 16];
        let all = vec![
            MetadataRecord::Topic {
                name: "orders".into(),
                id,
            },
            MetadataRecord::Partition {
                topic_id: id,
                partition: 3,
                leader: 1,
                leader_epoch: 0,
                replicas: vec![1],
                isr: vec![1],
            },
            MetadataRecord::TopicConfig {
                topic_id: id,
                key: "retention.ms".into(),
                value: Some("1000".into()),
            },
            MetadataRecord::TopicConfig {
                topic_id: id,
                key: "retention.ms".into(),
                value: None,
            },
            MetadataRecord::RemoveTopic { id },
            MetadataRecord::ProducerIds {
                next_block_start: 5000,
            },
        ];
        for r in all {
            let bytes = r.encode();
            assert_eq!(MetadataRecord::decode(&bytes).unwrap(), r);
            assert!(MetadataRecord::decode(&bytes[..bytes.len() - 1]).is_err());
            let mut longer = bytes.clone();
            longer.push(0);
            assert!(MetadataRecord::decode(&longer).is_err());
        }
        assert!(MetadataRecord::decode(&[99, 0]).is_err());
        assert!(MetadataRecord::decode(&[
            2, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 0, 0, 0, 1, 0, 0, 0, 1, 0,
            0, 0, 0, 0x7f, 0xff, 0xff, 0xff
        ])
        .is_err());
    }
}
