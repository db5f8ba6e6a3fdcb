//! `cluster describe`: the brokers, the controller, and how many partition replicas and leaders
//! each broker carries, with a warning above the partition count Weir is sized for.

use crate::client::{BrokerAddr, Client};
use crate::error::{check, Result};
use crate::metadata::{self, TopicMeta};
use crate::table::{Cell, Report, Table};
use kafka_protocol::messages::{ApiKey, DescribeClusterRequest};
use std::collections::BTreeMap;

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
    // DescribeCluster (KIP-700) is the admin API for this; Metadata is the fallback for brokers
    // without it, and gives the same brokers.
    let mut fenced: BTreeMap<i32, bool> = BTreeMap::new();
    let conn = client.any();
    if conn.supports(ApiKey::DescribeCluster) {
        let v = conn.version(ApiKey::DescribeCluster, 0, 1)?;
        let resp = conn.call(&DescribeClusterRequest::default(), v)?;
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
    for w in warnings(&load, warn_threshold) {
        report.warn(w);
    }
    Ok(report)
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
}
