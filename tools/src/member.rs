//! A member of a classic consumer group (JoinGroup, SyncGroup, Heartbeat, LeaveGroup), speaking
//! the "consumer" protocol with the range assignor, so it shares a group with Java and
//! librdkafka consumers (both offer "range") and `group describe` shows its assignment.

use crate::client::{sb, topic_name, Client};
use crate::commits::{self, Committer};
use crate::error::{check, AdminError, Result};
use crate::metadata::{self, Tp};
use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::consumer_protocol_assignment::TopicPartition as AssignedTopic;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{
    ApiKey, ConsumerProtocolAssignment, ConsumerProtocolSubscription, GroupId, HeartbeatRequest,
    JoinGroupRequest, LeaveGroupRequest, SyncGroupRequest,
};
use kafka_protocol::protocol::{Decodable, Encodable};
use kafka_protocol::ResponseError as K;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

pub const PROTOCOL_TYPE: &str = "consumer";
pub const ASSIGNOR: &str = "range";
/// A member not heard from for this long is removed by the coordinator.
const SESSION_TIMEOUT_MS: i32 = 30_000;
/// How long the coordinator waits for every member to rejoin; also bounds how long JoinGroup
/// blocks, which must stay below the client's response timeout (60 s).
const REBALANCE_TIMEOUT_MS: i32 = 30_000;
/// Kafka's default heartbeat.interval.ms: a third of its session timeout or less.
const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(3);
/// Join attempts before giving up (each retriable error costs one).
const JOIN_ATTEMPTS: usize = 30;
const JOIN_BACKOFF: Duration = Duration::from_millis(200);
/// Kafka's MEMBER_ID_REQUIRED (79): the first JoinGroup (v4+) is answered with an id to rejoin with.
const MEMBER_ID_REQUIRED: i16 = 79;

pub struct Member {
    pub group: String,
    topics: Vec<String>,
    pub member_id: String,
    pub generation: i32,
    coordinator: Option<i32>,
    last_heartbeat: Instant,
}

/// `version` (i16, big-endian) then the body: how consumer protocol payloads are framed.
fn encode_versioned<T: Encodable>(msg: &T, version: i16) -> Result<Bytes> {
    let mut buf = BytesMut::new();
    buf.put_i16(version);
    msg.encode(&mut buf, version)
        .map_err(AdminError::protocol)?;
    Ok(buf.freeze())
}

fn decode_versioned<T: Decodable>(mut b: Bytes, max: i16) -> Result<T> {
    if b.len() < 2 {
        return Err(AdminError::Protocol(
            "consumer protocol payload too short".into(),
        ));
    }
    // Newer versions only add fields at the end: read them as the newest this codec knows.
    let version = b.get_i16().min(max);
    T::decode(&mut b, version).map_err(AdminError::protocol)
}

pub fn encode_subscription(topics: &[String]) -> Result<Bytes> {
    let sub = ConsumerProtocolSubscription::default().with_topics(topics.iter().map(sb).collect());
    encode_versioned(&sub, 0)
}

pub fn decode_subscription(b: Bytes) -> Result<Vec<String>> {
    let s: ConsumerProtocolSubscription = decode_versioned(b, 3)?;
    Ok(s.topics.iter().map(|t| t.to_string()).collect())
}

pub fn encode_assignment(partitions: &BTreeMap<String, Vec<i32>>) -> Result<Bytes> {
    let a = ConsumerProtocolAssignment::default().with_assigned_partitions(
        partitions
            .iter()
            .map(|(t, ps)| {
                AssignedTopic::default()
                    .with_topic(topic_name(t))
                    .with_partitions(ps.clone())
            })
            .collect(),
    );
    encode_versioned(&a, 0)
}

/// A member's assignment; empty bytes mean no partitions.
pub fn decode_assignment(b: Bytes) -> Result<Vec<Tp>> {
    if b.is_empty() {
        return Ok(Vec::new());
    }
    let a: ConsumerProtocolAssignment = decode_versioned(b, 3)?;
    Ok(a.assigned_partitions
        .iter()
        .flat_map(|t| t.partitions.iter().map(|p| (t.topic.0.to_string(), *p)))
        .collect())
}

/// Kafka's RangeAssignor: per topic, members sorted by id take consecutive ranges, the first
/// `partitions % members` one partition more.
pub fn range_assign(
    subscriptions: &BTreeMap<String, Vec<String>>,
    partition_counts: &BTreeMap<String, usize>,
) -> BTreeMap<String, BTreeMap<String, Vec<i32>>> {
    let mut out: BTreeMap<String, BTreeMap<String, Vec<i32>>> = subscriptions
        .keys()
        .map(|m| (m.clone(), BTreeMap::new()))
        .collect();
    for (topic, &n) in partition_counts {
        let members: Vec<&String> = subscriptions
            .iter()
            .filter(|(_, ts)| ts.contains(topic))
            .map(|(m, _)| m)
            .collect();
        if members.is_empty() {
            continue;
        }
        let per = n / members.len();
        let extra = n % members.len();
        for (i, m) in members.iter().enumerate() {
            let start = i * per + i.min(extra);
            let count = per + usize::from(i < extra);
            if count > 0 {
                out.get_mut(*m).expect("every member has an entry").insert(
                    topic.clone(),
                    (start..start + count).map(|p| p as i32).collect(),
                );
            }
        }
    }
    out
}

impl Member {
    pub fn new(group: &str, topics: Vec<String>) -> Self {
        Member {
            group: group.to_string(),
            topics,
            member_id: String::new(),
            generation: -1,
            coordinator: None,
            last_heartbeat: Instant::now(),
        }
    }

    fn coordinator<'c>(&mut self, client: &'c mut Client) -> Result<&'c mut crate::client::Conn> {
        let id = match self.coordinator {
            Some(id) => id,
            None => {
                let id = client.coordinator_id(&self.group)?;
                self.coordinator = Some(id);
                id
            }
        };
        client.broker(id)
    }

    /// Forget the coordinator after an error that says it moved or is gone.
    fn on_error(&mut self, client: &mut Client, e: &AdminError) {
        let moved = matches!(
            e.kafka_error(),
            Some(K::NotCoordinator | K::CoordinatorNotAvailable | K::CoordinatorLoadInProgress)
        ) || matches!(e, AdminError::Io { .. } | AdminError::Connect { .. });
        if moved {
            if let Some(id) = self.coordinator.take() {
                client.drop_broker(id);
            }
        }
    }

    /// Joins (or rejoins) the group and returns this member's partitions.
    pub fn join(&mut self, client: &mut Client) -> Result<Vec<Tp>> {
        let mut last = None;
        for _ in 0..JOIN_ATTEMPTS {
            match self.join_once(client) {
                Ok(Some(assignment)) => {
                    self.last_heartbeat = Instant::now();
                    return Ok(assignment);
                }
                Ok(None) => continue, // asked to rejoin at once
                Err(e) => {
                    let retry = matches!(
                        e.kafka_error(),
                        Some(
                            K::RebalanceInProgress
                                | K::UnknownMemberId
                                | K::IllegalGeneration
                                | K::NotCoordinator
                                | K::CoordinatorNotAvailable
                                | K::CoordinatorLoadInProgress
                        )
                    ) || matches!(e, AdminError::Io { .. });
                    if !retry {
                        return Err(e);
                    }
                    if e.kafka_error() == Some(K::UnknownMemberId) {
                        self.member_id.clear();
                    }
                    self.on_error(client, &e);
                    last = Some(e);
                    std::thread::sleep(JOIN_BACKOFF);
                }
            }
        }
        Err(last
            .unwrap_or_else(|| AdminError::Timeout(format!("could not join group {}", self.group))))
    }

    /// One JoinGroup + SyncGroup round. `Ok(None)`: rejoin now (member id assigned).
    fn join_once(&mut self, client: &mut Client) -> Result<Option<Vec<Tp>>> {
        let group = self.group.clone();
        let conn = self.coordinator(client)?;
        let v = conn.version(ApiKey::JoinGroup, 0, 7)?;
        let req = JoinGroupRequest::default()
            .with_group_id(GroupId(sb(group.clone())))
            .with_session_timeout_ms(SESSION_TIMEOUT_MS)
            .with_rebalance_timeout_ms(REBALANCE_TIMEOUT_MS)
            .with_member_id(sb(self.member_id.clone()))
            .with_protocol_type(sb(PROTOCOL_TYPE))
            .with_protocols(vec![JoinGroupRequestProtocol::default()
                .with_name(sb(ASSIGNOR))
                .with_metadata(encode_subscription(&self.topics)?)]);
        let resp = conn.call(&req, v)?;
        if resp.error_code == MEMBER_ID_REQUIRED {
            self.member_id = resp.member_id.to_string();
            return Ok(None);
        }
        check(resp.error_code, None, || format!("join group {group}"))?;
        self.member_id = resp.member_id.to_string();
        self.generation = resp.generation_id;
        if let Some(p) = resp
            .protocol_name
            .as_ref()
            .filter(|p| p.as_str() != ASSIGNOR)
        {
            return Err(AdminError::Protocol(format!(
                "group {group} chose assignor {p}, which weir-admin does not implement"
            )));
        }
        let assignments = if resp.leader == resp.member_id {
            let mut subs = BTreeMap::new();
            for m in &resp.members {
                subs.insert(
                    m.member_id.to_string(),
                    decode_subscription(m.metadata.clone())?,
                );
            }
            let topics: Vec<String> = {
                let mut all: Vec<String> = subs.values().flatten().cloned().collect();
                all.sort();
                all.dedup();
                all
            };
            let counts = metadata::fetch(client, Some(&topics))?
                .topics
                .iter()
                .map(|t| (t.name.clone(), t.partitions.len()))
                .collect();
            range_assign(&subs, &counts)
                .iter()
                .map(|(m, a)| {
                    Ok(SyncGroupRequestAssignment::default()
                        .with_member_id(sb(m.clone()))
                        .with_assignment(encode_assignment(a)?))
                })
                .collect::<Result<Vec<_>>>()?
        } else {
            Vec::new()
        };
        let conn = self.coordinator(client)?;
        let v = conn.version(ApiKey::SyncGroup, 0, 5)?;
        let req = SyncGroupRequest::default()
            .with_group_id(GroupId(sb(group.clone())))
            .with_generation_id(self.generation)
            .with_member_id(sb(self.member_id.clone()))
            .with_protocol_type(Some(sb(PROTOCOL_TYPE)))
            .with_protocol_name(Some(sb(ASSIGNOR)))
            .with_assignments(assignments);
        let resp = conn.call(&req, v)?;
        check(resp.error_code, None, || format!("sync group {group}"))?;
        decode_assignment(resp.assignment).map(Some)
    }

    /// Heartbeats when one is due. `Ok(true)`: the group is rebalancing and this member must
    /// commit and rejoin.
    pub fn heartbeat_if_due(&mut self, client: &mut Client) -> Result<bool> {
        if self.last_heartbeat.elapsed() < HEARTBEAT_INTERVAL {
            return Ok(false);
        }
        self.last_heartbeat = Instant::now();
        let req = HeartbeatRequest::default()
            .with_group_id(GroupId(sb(self.group.clone())))
            .with_generation_id(self.generation)
            .with_member_id(sb(self.member_id.clone()));
        let group = self.group.clone();
        let result = self.coordinator(client).and_then(|conn| {
            let v = conn.version(ApiKey::Heartbeat, 0, 4)?;
            let resp = conn.call(&req, v)?;
            check(resp.error_code, None, || {
                format!("heartbeat to group {group}")
            })
        });
        match result {
            Ok(()) => Ok(false),
            Err(e) => match e.kafka_error() {
                Some(K::RebalanceInProgress | K::IllegalGeneration) => Ok(true),
                Some(K::UnknownMemberId) => {
                    self.member_id.clear();
                    Ok(true)
                }
                _ => {
                    self.on_error(client, &e);
                    if self.coordinator.is_none() {
                        Ok(false) // found again at the next heartbeat
                    } else {
                        Err(e)
                    }
                }
            },
        }
    }

    /// Commits the positions (next offsets to consume) under this member's generation.
    pub fn commit(&mut self, client: &mut Client, offsets: &BTreeMap<Tp, i64>) -> Result<()> {
        let who = Committer {
            generation: self.generation,
            member_id: self.member_id.clone(),
        };
        let group = self.group.clone();
        let conn = self.coordinator(client)?;
        commits::commit(conn, &group, &who, offsets)
    }

    /// Committed offsets of the given partitions.
    pub fn committed(
        &mut self,
        client: &mut Client,
        partitions: &[Tp],
    ) -> Result<BTreeMap<Tp, i64>> {
        let mut by_topic: BTreeMap<String, Vec<i32>> = BTreeMap::new();
        for (t, p) in partitions {
            by_topic.entry(t.clone()).or_default().push(*p);
        }
        let group = self.group.clone();
        let conn = self.coordinator(client)?;
        commits::fetch(conn, &group, Some(&by_topic))
    }

    /// Leaves the group so the others rebalance at once rather than after the session timeout.
    pub fn leave(&mut self, client: &mut Client) -> Result<()> {
        if self.member_id.is_empty() {
            return Ok(());
        }
        let group = self.group.clone();
        let member = self.member_id.clone();
        let conn = self.coordinator(client)?;
        let v = conn.version(ApiKey::LeaveGroup, 0, 5)?;
        let mut req = LeaveGroupRequest::default().with_group_id(GroupId(sb(group.clone())));
        if v >= 3 {
            req = req.with_members(vec![MemberIdentity::default().with_member_id(sb(member))]);
        } else {
            req = req.with_member_id(sb(member));
        }
        let resp = conn.call(&req, v)?;
        check(resp.error_code, None, || format!("leave group {group}"))?;
        for m in &resp.members {
            check(m.error_code, None, || format!("leave group {group}"))?;
        }
        self.member_id.clear();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_assignment_matches_kafkas_range_assignor() {
        let subs: BTreeMap<String, Vec<String>> = [
            ("m1".to_string(), vec!["a".to_string(), "b".to_string()]),
            ("m2".to_string(), vec!["a".to_string()]),
            ("m3".to_string(), vec!["a".to_string()]),
        ]
        .into();
        let counts: BTreeMap<String, usize> = [("a".to_string(), 7), ("b".to_string(), 2)].into();
        let a = range_assign(&subs, &counts);
        assert_eq!(a["m1"]["a"], vec![0, 1, 2]);
        assert_eq!(a["m2"]["a"], vec![3, 4]);
        assert_eq!(a["m3"]["a"], vec![5, 6]);
        assert_eq!(a["m1"]["b"], vec![0, 1]);
        assert!(!a["m2"].contains_key("b"));
        // More members than partitions: the last get nothing.
        let counts: BTreeMap<String, usize> = [("a".to_string(), 2)].into();
        let a = range_assign(&subs, &counts);
        assert_eq!((a["m1"]["a"].len(), a["m2"]["a"].len()), (1, 1));
        assert!(a["m3"].is_empty());
    }

    #[test]
    fn consumer_protocol_payloads_round_trip() {
        let sub = encode_subscription(&["orders".to_string()]).unwrap();
        assert_eq!(&sub[..2], &[0, 0], "version 0 prefix");
        assert_eq!(
            decode_subscription(sub).unwrap(),
            vec!["orders".to_string()]
        );
        let assignment: BTreeMap<String, Vec<i32>> = [("orders".to_string(), vec![0, 2])].into();
        let b = encode_assignment(&assignment).unwrap();
        assert_eq!(
            decode_assignment(b).unwrap(),
            vec![("orders".to_string(), 0), ("orders".to_string(), 2)]
        );
        assert!(decode_assignment(Bytes::new()).unwrap().is_empty());
    }
}
