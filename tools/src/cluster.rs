//! `cluster describe`: the brokers (fenced ones too, marked), the controller, how many partition
//! replicas and leaders each broker carries, with a warning above the partition count Weir is
//! sized for, and the controller quorum as `kafka-metadata-quorum describe --status` and
//! `--replication` show it: leader, epoch, high watermark, each voter's log end, lag and last
//! contact, and the observers (broker-only nodes).

use crate::client::{sb, BrokerAddr, Client};
use crate::error::{check, Result};
use crate::metadata::{self, TopicMeta};
use crate::table::{Cell, Report, Table};
use kafka_protocol::messages::describe_quorum_request::{PartitionData, TopicData};
use kafka_protocol::messages::{ApiKey, DescribeClusterRequest, DescribeQuorumRequest, TopicName};
use std::collections::BTreeMap;

/// KRaft's metadata partition, the one DescribeQuorum describes.
const METADATA_TOPIC: &str = "__cluster_metadata";

/// Partition replicas per broker above which Weir's seed recommends adding brokers: each
/// partition costs open segment descriptors, memory for indexes and a share of its core.
pub const PARTITIONS_PER_BROKER_WARN: usize = 2000;

/// Replicas and leaders each broker carries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Load {
    pub replicas: usize,
    pub leaders: usize,
}

pub fn load_per_broker(brokers: &[BrokerAddr], topics: &[TopicMeta]) -> BTreeMap<i32, Load> {
    let mut load: BTreeMap<i32, Load> = brokers
        .iter()
        .map(|b| (b.node_id, Load::default()))
        .collect();
    for p in topics.iter().flat_map(|t| &t.partitions) {
        for r in &p.replicas {
            load.entry(*r).or_default().replicas += 1;
        }
        if p.leader >= 0 {
            load.entry(p.leader).or_default().leaders += 1;
        }
    }
    load
}

/// One warning per broker above `threshold` replicas.
pub fn warnings(load: &BTreeMap<i32, Load>, threshold: usize) -> Vec<String> {
    load.iter()
        .filter(|(_, l)| l.replicas > threshold)
        .map(|(id, l)| {
            format!(
                "broker {id} hosts {} partition replicas, above the recommended {threshold} per \
                 broker; add brokers or reduce partitions",
                l.replicas
            )
        })
        .collect()
}

pub fn describe(client: &mut Client, warn_threshold: usize) -> Result<Report> {
    let meta = metadata::fetch(client, None)?;
    let mut cluster_id = meta.cluster_id.clone();
    let mut controller = meta.controller;
    let mut brokers = meta.brokers.clone();
    // DescribeCluster (KIP-700) is the admin API for this, and v2 (KIP-1073) lists fenced
    // brokers too; Metadata is the fallback for brokers without it (live brokers only).
    let mut fenced: BTreeMap<i32, bool> = BTreeMap::new();
    let conn = client.any();
    if conn.supports(ApiKey::DescribeCluster) {
        let v = conn.version(ApiKey::DescribeCluster, 0, 2)?;
        let req = DescribeClusterRequest::default().with_include_fenced_brokers(v >= 2);
        let resp = conn.call(&req, v)?;
        check(resp.error_code, resp.error_message.as_deref(), || {
            "describe cluster".into()
        })?;
        cluster_id = Some(resp.cluster_id.to_string());
        controller = resp.controller_id.0;
        brokers = resp
            .brokers
            .iter()
            .map(|b| BrokerAddr {
                node_id: b.broker_id.0,
                host: b.host.to_string(),
                port: b.port,
                rack: b.rack.as_ref().map(|r| r.to_string()),
            })
            .collect();
        fenced = resp
            .brokers
            .iter()
            .map(|b| (b.broker_id.0, b.is_fenced))
            .collect();
    }
    brokers.sort_by_key(|b| b.node_id);
    let load = load_per_broker(&brokers, &meta.topics);
    let mut table = Table::new(&[
        "ID",
        "HOST",
        "PORT",
        "RACK",
        "CONTROLLER",
        "FENCED",
        "PARTITIONS",
        "LEADERS",
    ]);
    for b in &brokers {
        let l = load.get(&b.node_id).copied().unwrap_or_default();
        table.push(vec![
            b.node_id.into(),
            b.host.clone().into(),
            b.port.into(),
            b.rack.clone().into(),
            (b.node_id == controller).into(),
            fenced
                .get(&b.node_id)
                .copied()
                .map_or(Cell::None, Cell::Bool),
            l.replicas.into(),
            l.leaders.into(),
        ]);
    }
    let partitions: usize = meta.topics.iter().map(|t| t.partitions.len()).sum();
    let mut report = Report::new();
    report.fields(
        "cluster",
        vec![
            ("ClusterId", cluster_id.into()),
            ("Controller", controller.into()),
            ("Brokers", brokers.len().into()),
            ("Topics", meta.topics.len().into()),
            ("Partitions", partitions.into()),
        ],
    );
    report.table("brokers", None, table);
    let conn = client.any();
    if conn.supports(ApiKey::DescribeQuorum) {
        match describe_quorum(client) {
            Ok(q) => quorum_sections(&mut report, &q, now_ms()),
            // The brokers are still worth showing while the quorum elects a leader.
            Err(e) => {
                report.warn(format!("the controller quorum could not be described: {e}"));
            }
        }
    }
    for w in warnings(&load, warn_threshold) {
        report.warn(w);
    }
    Ok(report)
}

/// One replica of the metadata log, as DescribeQuorum reports it (-1: unknown).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumReplica {
    pub node_id: i32,
    pub log_end_offset: i64,
    pub last_fetch_ms: i64,
    pub last_caught_up_ms: i64,
}

/// The controller quorum, from its leader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quorum {
    pub leader_id: i32,
    pub leader_epoch: i32,
    pub high_watermark: i64,
    pub voters: Vec<QuorumReplica>,
    pub observers: Vec<QuorumReplica>,
    /// Each voter's endpoints, `NAME://host:port` (DescribeQuorum v2).
    pub endpoints: BTreeMap<i32, Vec<String>>,
}

/// DescribeQuorum for `__cluster_metadata-0`, asked of any broker (it reaches the leader).
pub fn describe_quorum(client: &mut Client) -> Result<Quorum> {
    let conn = client.any();
    let v = conn.version(ApiKey::DescribeQuorum, 0, 2)?;
    let req = DescribeQuorumRequest::default().with_topics(vec![TopicData::default()
        .with_topic_name(TopicName(sb(METADATA_TOPIC)))
        .with_partitions(vec![PartitionData::default().with_partition_index(0)])]);
    let resp = conn.call(&req, v)?;
    check(resp.error_code, resp.error_message.as_deref(), || {
        "describe quorum".into()
    })?;
    let p = resp
        .topics
        .iter()
        .find(|t| t.topic_name.0.as_str() == METADATA_TOPIC)
        .and_then(|t| t.partitions.iter().find(|p| p.partition_index == 0))
        .ok_or_else(|| {
            crate::error::AdminError::Protocol(
                "DescribeQuorum answered without __cluster_metadata-0".into(),
            )
        })?;
    check(p.error_code, p.error_message.as_deref(), || {
        "describe quorum".into()
    })?;
    let replicas = |list: &[kafka_protocol::messages::describe_quorum_response::ReplicaState]| {
        list.iter()
            .map(|r| QuorumReplica {
                node_id: r.replica_id.0,
                log_end_offset: r.log_end_offset,
                last_fetch_ms: r.last_fetch_timestamp,
                last_caught_up_ms: r.last_caught_up_timestamp,
            })
            .collect()
    };
    Ok(Quorum {
        leader_id: p.leader_id.0,
        leader_epoch: p.leader_epoch,
        high_watermark: p.high_watermark,
        voters: replicas(&p.current_voters),
        observers: replicas(&p.observers),
        endpoints: resp
            .nodes
            .iter()
            .map(|n| {
                (
                    n.node_id.0,
                    n.listeners
                        .iter()
                        .map(|l| format!("{}://{}:{}", l.name, l.host, l.port))
                        .collect(),
                )
            })
            .collect(),
    })
}

/// The quorum's sections: a summary (Kafka's `describe --status` fields) and the voters and
/// observers (Kafka's `--replication` rows, times as milliseconds before `now_ms`).
pub fn quorum_sections(report: &mut Report, q: &Quorum, now_ms: i64) {
    let leader_end = q
        .voters
        .iter()
        .find(|v| v.node_id == q.leader_id)
        .map(|v| v.log_end_offset);
    // Kafka's MaxFollowerLag and MaxFollowerLagTimeMs: the voter furthest behind (one whose
    // position the leader does not know yet counts as -1, as in Kafka's tool).
    let laggard = q.voters.iter().min_by_key(|v| v.log_end_offset);
    let max_lag = match (leader_end, laggard) {
        (Some(end), Some(l)) => Cell::Int(end - l.log_end_offset),
        _ => Cell::None,
    };
    let leader = q.voters.iter().find(|v| v.node_id == q.leader_id);
    let max_lag_ms = match (leader, laggard) {
        (Some(l), Some(f)) if l.node_id == f.node_id => Cell::Int(0),
        (Some(l), Some(f)) if l.last_caught_up_ms >= 0 && f.last_caught_up_ms >= 0 => {
            Cell::Int(l.last_caught_up_ms - f.last_caught_up_ms)
        }
        _ => Cell::None,
    };
    report.fields(
        "quorum",
        vec![
            ("LeaderId", q.leader_id.into()),
            ("LeaderEpoch", q.leader_epoch.into()),
            ("HighWatermark", q.high_watermark.into()),
            ("MaxFollowerLag", max_lag),
            ("MaxFollowerLagTimeMs", max_lag_ms),
            ("Voters", q.voters.len().into()),
            ("Observers", q.observers.len().into()),
        ],
    );
    let ago = |ms: i64| {
        if ms < 0 {
            Cell::None
        } else {
            Cell::Int((now_ms - ms).max(0))
        }
    };
    let rows = |replicas: &[QuorumReplica], observer: bool| {
        let mut t = Table::new(&[
            "ID",
            "STATUS",
            "LOG-END-OFFSET",
            "LAG",
            "LAST-FETCH-MS-AGO",
            "CAUGHT-UP-MS-AGO",
            "ENDPOINT",
        ]);
        for r in replicas {
            let status = match (observer, r.node_id == q.leader_id) {
                (true, _) => "Observer",
                (false, true) => "Leader",
                (false, false) => "Follower",
            };
            t.push(vec![
                r.node_id.into(),
                status.into(),
                if r.log_end_offset < 0 {
                    Cell::None
                } else {
                    r.log_end_offset.into()
                },
                match leader_end {
                    Some(end) if r.log_end_offset >= 0 => (end - r.log_end_offset).into(),
                    _ => Cell::None,
                },
                ago(r.last_fetch_ms),
                ago(r.last_caught_up_ms),
                q.endpoints
                    .get(&r.node_id)
                    .filter(|e| !e.is_empty())
                    .map_or(Cell::None, |e| e.join(",").into()),
            ]);
        }
        t
    };
    report.table(
        "voters",
        Some("Controller quorum voters:".into()),
        rows(&q.voters, false),
    );
    report.table(
        "observers",
        Some("Observers (broker-only nodes):".into()),
        rows(&q.observers, true),
    );
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::PartitionMeta;

    fn broker(id: i32) -> BrokerAddr {
        BrokerAddr {
            node_id: id,
            host: "127.0.0.1".into(),
            port: 9092,
            rack: None,
        }
    }

    fn topic(n: i32, replicas: &[i32]) -> TopicMeta {
        TopicMeta {
            name: "t".into(),
            id: String::new(),
            internal: false,
            partitions: (0..n)
                .map(|p| PartitionMeta {
                    partition: p,
                    leader: replicas[p as usize % replicas.len()],
                    leader_epoch: 0,
                    replicas: replicas.to_vec(),
                    isr: replicas.to_vec(),
                    error_code: 0,
                })
                .collect(),
        }
    }

    #[test]
    fn counts_replicas_and_leaders_per_broker() {
        let load = load_per_broker(&[broker(1), broker(2), broker(3)], &[topic(4, &[1, 2])]);
        assert_eq!(
            load[&1],
            Load {
                replicas: 4,
                leaders: 2
            }
        );
        assert_eq!(
            load[&2],
            Load {
                replicas: 4,
                leaders: 2
            }
        );
        assert_eq!(load[&3], Load::default());
    }

    #[test]
    fn warns_only_above_the_threshold() {
        let load = load_per_broker(&[broker(1)], &[topic(2001, &[1])]);
        let w = warnings(&load, PARTITIONS_PER_BROKER_WARN);
        assert_eq!(w.len(), 1);
        assert!(
            w[0].starts_with("broker 1 hosts 2001 partition replicas"),
            "{}",
            w[0]
        );
        assert!(warnings(&load, 2001).is_empty());
    }

    fn replica(id: i32, end: i64, fetch: i64, caught_up: i64) -> QuorumReplica {
        QuorumReplica {
            node_id: id,
            log_end_offset: end,
            last_fetch_ms: fetch,
            last_caught_up_ms: caught_up,
        }
    }

    fn quorum() -> Quorum {
        Quorum {
            leader_id: 2,
            leader_epoch: 7,
            high_watermark: 40,
            voters: vec![
                replica(1, 38, 9_800, 9_000),
                replica(2, 41, 10_000, 10_000),
                replica(3, -1, -1, -1),
            ],
            observers: vec![replica(4, 40, 9_950, 9_950)],
            endpoints: BTreeMap::from([
                (1, vec!["CONTROLLER://127.0.0.1:9093".to_string()]),
                (2, vec!["CONTROLLER://127.0.0.1:9095".to_string()]),
            ]),
        }
    }

    #[test]
    fn the_quorum_reads_as_kafkas_status_and_replication() {
        let mut r = Report::new();
        quorum_sections(&mut r, &quorum(), 10_000);
        assert_eq!(
            r.render_text(),
            "LeaderId:              2\n\
             LeaderEpoch:           7\n\
             HighWatermark:         40\n\
             MaxFollowerLag:        42\n\
             MaxFollowerLagTimeMs:  -\n\
             Voters:                3\n\
             Observers:             1\n\
             \n\
             Controller quorum voters:\n\
             ID  STATUS    LOG-END-OFFSET  LAG  LAST-FETCH-MS-AGO  CAUGHT-UP-MS-AGO  ENDPOINT\n\
             \x201  Follower              38    3                200              1000  CONTROLLER://127.0.0.1:9093\n\
             \x202  Leader                41    0                  0                 0  CONTROLLER://127.0.0.1:9095\n\
             \x203  Follower               -    -                  -                 -  -\n\
             \n\
             Observers (broker-only nodes):\n\
             ID  STATUS    LOG-END-OFFSET  LAG  LAST-FETCH-MS-AGO  CAUGHT-UP-MS-AGO  ENDPOINT\n\
             \x204  Observer              40    1                 50                50  -\n"
        );
    }

    #[test]
    fn the_laggard_sets_max_follower_lag() {
        let mut q = quorum();
        q.voters[2] = replica(3, 35, 9_990, 8_500);
        let mut r = Report::new();
        quorum_sections(&mut r, &q, 10_000);
        let j = r.json();
        assert_eq!(j["quorum"]["max_follower_lag"], 6);
        assert_eq!(j["quorum"]["max_follower_lag_time_ms"], 1_500);
        assert_eq!(j["voters"][2]["lag"], 6);
        assert_eq!(j["voters"][2]["caught_up_ms_ago"], 1_500);
        // A quorum of one: the leader is its own laggard.
        let solo = Quorum {
            voters: vec![replica(2, 41, 10_000, 10_000)],
            observers: vec![],
            ..quorum()
        };
        let mut r = Report::new();
        quorum_sections(&mut r, &solo, 10_000);
        assert_eq!(r.json()["quorum"]["max_follower_lag_time_ms"], 0);
        assert_eq!(r.json()["quorum"]["max_follower_lag"], 0);
    }
}
