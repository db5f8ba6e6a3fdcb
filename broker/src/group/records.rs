//! `__consumer_offsets` records in Kafka's schemas. Offset commit key (version 1): group, topic,
//! partition. Offset commit value (version 3): offset, leader epoch, metadata, commit timestamp;
//! values 0–2 are read too. Group metadata key (version 2): group; value (version 3): protocol
//! type, generation, protocol, leader, state timestamp, members; values 0–2 are read too. A null
//! value is a tombstone (the offset or group was deleted).

/// A committed offset as the cache and the log hold it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: String,
    pub commit_timestamp: i64,
}

/// A decoded record key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Key {
    Offset {
        group: String,
        topic: String,
        partition: i32,
    },
    GroupMetadata {
        group: String,
    },
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    let b = s.as_bytes();
    let len = b.len().min(i16::MAX as usize);
    out.extend_from_slice(&(len as i16).to_be_bytes());
    out.extend_from_slice(&b[..len]);
}

pub fn offset_key(group: &str, topic: &str, partition: i32) -> Vec<u8> {
    let mut out = Vec::with_capacity(10 + group.len() + topic.len());
    out.extend_from_slice(&1i16.to_be_bytes());
    put_str(&mut out, group);
    put_str(&mut out, topic);
    out.extend_from_slice(&partition.to_be_bytes());
    out
}

pub fn offset_value(c: &Committed) -> Vec<u8> {
    let mut out = Vec::with_capacity(24 + c.metadata.len());
    out.extend_from_slice(&3i16.to_be_bytes());
    out.extend_from_slice(&c.offset.to_be_bytes());
    out.extend_from_slice(&c.leader_epoch.to_be_bytes());
    put_str(&mut out, &c.metadata);
    out.extend_from_slice(&c.commit_timestamp.to_be_bytes());
    out
}

struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n).filter(|e| *e <= self.b.len())?;
        let s = &self.b[self.pos..end];
        self.pos = end;
        Some(s)
    }
    fn i16(&mut self) -> Option<i16> {
        Some(i16::from_be_bytes(self.take(2)?.try_into().ok()?))
    }
    fn i32(&mut self) -> Option<i32> {
        Some(i32::from_be_bytes(self.take(4)?.try_into().ok()?))
    }
    fn i64(&mut self) -> Option<i64> {
        Some(i64::from_be_bytes(self.take(8)?.try_into().ok()?))
    }
    fn nullable_string(&mut self) -> Option<Option<String>> {
        let len = i16::from_be_bytes(self.b.get(self.pos..self.pos + 2)?.try_into().ok()?);
        if len < 0 {
            self.pos += 2;
            return Some(None);
        }
        self.string().map(Some)
    }
    fn bytes(&mut self) -> Option<Vec<u8>> {
        let len = self.i32()?;
        if len < 0 {
            return Some(Vec::new());
        }
        Some(self.take(len as usize)?.to_vec())
    }
    fn string(&mut self) -> Option<String> {
        let len = self.i16()?;
        if len < 0 {
            return Some(String::new());
        }
        String::from_utf8(self.take(len as usize)?.to_vec()).ok()
    }
}

pub fn decode_key(b: &[u8]) -> Option<Key> {
    let mut r = Reader { b, pos: 0 };
    match r.i16()? {
        0 | 1 => Some(Key::Offset {
            group: r.string()?,
            topic: r.string()?,
            partition: r.i32()?,
        }),
        2 => Some(Key::GroupMetadata { group: r.string()? }),
        _ => None,
    }
}

pub fn group_key(group: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + group.len());
    out.extend_from_slice(&2i16.to_be_bytes());
    put_str(&mut out, group);
    out
}

/// A group's membership as the group metadata record holds it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GroupMeta {
    pub protocol_type: String,
    pub generation: i32,
    pub protocol: Option<String>,
    pub leader: Option<String>,
    pub state_timestamp: i64,
    pub members: Vec<MemberMeta>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MemberMeta {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub rebalance_timeout_ms: i32,
    pub session_timeout_ms: i32,
    pub subscription: Vec<u8>,
    pub assignment: Vec<u8>,
}

fn put_nullable_str(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => put_str(out, s),
        None => out.extend_from_slice(&(-1i16).to_be_bytes()),
    }
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as i32).to_be_bytes());
    out.extend_from_slice(b);
}

/// Group metadata value, version 3.
pub fn group_value(g: &GroupMeta) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&3i16.to_be_bytes());
    put_str(&mut out, &g.protocol_type);
    out.extend_from_slice(&g.generation.to_be_bytes());
    put_nullable_str(&mut out, g.protocol.as_deref());
    put_nullable_str(&mut out, g.leader.as_deref());
    out.extend_from_slice(&g.state_timestamp.to_be_bytes());
    out.extend_from_slice(&(g.members.len() as i32).to_be_bytes());
    for m in &g.members {
        put_str(&mut out, &m.member_id);
        put_nullable_str(&mut out, m.instance_id.as_deref());
        put_str(&mut out, &m.client_id);
        put_str(&mut out, &m.client_host);
        out.extend_from_slice(&m.rebalance_timeout_ms.to_be_bytes());
        out.extend_from_slice(&m.session_timeout_ms.to_be_bytes());
        put_bytes(&mut out, &m.subscription);
        put_bytes(&mut out, &m.assignment);
    }
    out
}

pub fn decode_group_value(b: &[u8]) -> Option<GroupMeta> {
    let mut r = Reader { b, pos: 0 };
    let version = r.i16()?;
    if !(0..=3).contains(&version) {
        return None;
    }
    let protocol_type = r.string()?;
    let generation = r.i32()?;
    let protocol = r.nullable_string()?;
    let leader = r.nullable_string()?;
    let state_timestamp = if version >= 2 { r.i64()? } else { -1 };
    let count = r.i32()?;
    let mut members = Vec::new();
    for _ in 0..count.clamp(0, 100_000) {
        let member_id = r.string()?;
        let instance_id = if version >= 3 {
            r.nullable_string()?
        } else {
            None
        };
        let client_id = r.string()?;
        let client_host = r.string()?;
        let rebalance_timeout_ms = if version >= 1 { r.i32()? } else { -1 };
        let session_timeout_ms = r.i32()?;
        let subscription = r.bytes()?;
        let assignment = r.bytes()?;
        members.push(MemberMeta {
            member_id,
            instance_id,
            client_id,
            client_host,
            rebalance_timeout_ms: if rebalance_timeout_ms < 0 {
                session_timeout_ms
            } else {
                rebalance_timeout_ms
            },
            session_timeout_ms,
            subscription,
            assignment,
        });
    }
    Some(GroupMeta {
        protocol_type,
        generation,
        protocol,
        leader,
        state_timestamp,
        members,
    })
}

pub fn decode_offset_value(b: &[u8]) -> Option<Committed> {
    let mut r = Reader { b, pos: 0 };
    let version = r.i16()?;
    let offset = r.i64()?;
    let leader_epoch = if version >= 3 { r.i32()? } else { -1 };
    let metadata = r.string()?;
    let commit_timestamp = r.i64()?;
    (0..=3).contains(&version).then_some(Committed {
        offset,
        leader_epoch,
        metadata,
        commit_timestamp,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_key_matches_kafkas_layout() {
        let k = offset_key("g", "t", 7);
        assert_eq!(k, vec![0, 1, 0, 1, b'g', 0, 1, b't', 0, 0, 0, 7]);
        assert_eq!(
            decode_key(&k),
            Some(Key::Offset {
                group: "g".into(),
                topic: "t".into(),
                partition: 7
            })
        );
        assert_eq!(
            decode_key(&[0, 2, 0, 2, b'g', b'1']),
            Some(Key::GroupMetadata { group: "g1".into() })
        );
        assert_eq!(decode_key(&[0, 9]), None);
        assert_eq!(decode_key(&[0, 1, 0, 5, b'g']), None);
    }

    #[test]
    fn group_value_v3_round_trips() {
        let g = GroupMeta {
            protocol_type: "consumer".into(),
            generation: 4,
            protocol: Some("range".into()),
            leader: Some("m1".into()),
            state_timestamp: 123,
            members: vec![MemberMeta {
                member_id: "m1".into(),
                instance_id: None,
                client_id: "c".into(),
                client_host: "/127.0.0.1".into(),
                rebalance_timeout_ms: 300_000,
                session_timeout_ms: 45_000,
                subscription: vec![1, 2],
                assignment: vec![3],
            }],
        };
        let v = group_value(&g);
        assert_eq!(&v[..2], &[0, 3]);
        assert_eq!(
            &v[2..12],
            &[0, 8, b'c', b'o', b'n', b's', b'u', b'm', b'e', b'r']
        );
        assert_eq!(decode_group_value(&v), Some(g.clone()));
        let empty = GroupMeta {
            protocol: None,
            leader: None,
            members: vec![],
            ..g
        };
        assert_eq!(decode_group_value(&group_value(&empty)), Some(empty));
        assert_eq!(decode_group_value(&v[..v.len() - 1]), None);
        assert_eq!(group_key("g"), vec![0, 2, 0, 1, b'g']);
    }

    #[test]
    fn offset_value_v3_round_trips() {
        let c = Committed {
            offset: 42,
            leader_epoch: 3,
            metadata: "meta".into(),
            commit_timestamp: 1_700_000_000_000,
        };
        let v = offset_value(&c);
        assert_eq!(&v[..2], &[0, 3]);
        assert_eq!(&v[2..10], &42i64.to_be_bytes());
        assert_eq!(&v[10..14], &3i32.to_be_bytes());
        assert_eq!(&v[14..20], &[0, 4, b'm', b'e', b't', b'a']);
        assert_eq!(v.len(), 28);
        assert_eq!(decode_offset_value(&v), Some(c));
        // Version 1: offset, metadata, commit timestamp, expire timestamp.
        let mut v1 = vec![0, 1];
        v1.extend_from_slice(&9i64.to_be_bytes());
        v1.extend_from_slice(&[0, 0]);
        v1.extend_from_slice(&5i64.to_be_bytes());
        v1.extend_from_slice(&6i64.to_be_bytes());
        let d = decode_offset_value(&v1).unwrap();
        assert_eq!((d.offset, d.leader_epoch, d.commit_timestamp), (9, -1, 5));
        assert_eq!(decode_offset_value(&v[..10]), None);
    }
}
