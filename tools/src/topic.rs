//! `topic create|list|describe|delete|add-partitions`, as kafka-topics.sh does them.

use crate::client::{sb, topic_name, Client};
use crate::error::{answer_for, check, AdminError, Result};
use crate::metadata::{self, TopicMeta, EARLIEST, LATEST};
use crate::props::parse_pairs;
use crate::table::{Cell, Report, Table};
use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::{
    ApiKey, CreatePartitionsRequest, CreateTopicsRequest, DeleteTopicsRequest,
};
use kafka_protocol::ResponseError as K;

/// How long the broker may take to apply a topic change before answering REQUEST_TIMED_OUT.
const ADMIN_TIMEOUT_MS: i32 = 30_000;

pub struct CreateSpec<'a> {
    pub name: &'a str,
    /// `None`: the broker's default (`-1` on the wire, CreateTopics v4+).
    pub partitions: Option<i32>,
    pub replication_factor: Option<i16>,
    pub configs: &'a [String],
    pub if_not_exists: bool,
}

pub fn create(client: &mut Client, spec: &CreateSpec<'_>) -> Result<Report> {
    let configs = parse_pairs(spec.configs)?;
    let conn = client.any();
    let v = conn.version(ApiKey::CreateTopics, 2, 7)?;
    if v < 4 && (spec.partitions.is_none() || spec.replication_factor.is_none()) {
        return Err(AdminError::Unsupported(format!(
            "broker {} speaks CreateTopics v{v}, which needs --partitions and --replication-factor",
            conn.addr()
        )));
    }
    let req = CreateTopicsRequest::default()
        .with_timeout_ms(ADMIN_TIMEOUT_MS)
        .with_topics(vec![CreatableTopic::default()
            .with_name(topic_name(spec.name))
            .with_num_partitions(spec.partitions.unwrap_or(-1))
            .with_replication_factor(spec.replication_factor.unwrap_or(-1))
            .with_configs(
                configs
                    .into_iter()
                    .map(|(k, v)| {
                        CreatableTopicConfig::default()
                            .with_name(sb(k))
                            .with_value(Some(sb(v)))
                    })
                    .collect(),
            )]);
    let resp = conn.call(&req, v)?;
    let t = answer_for(&resp.topics, "CreateTopics", spec.name, |t| {
        t.name.0.as_str() == spec.name
    })?;
    let mut report = Report::new();
    if spec.if_not_exists && t.error_code == K::TopicAlreadyExists.code() {
        report.lines(
            "result",
            vec![format!("Topic {} already exists.", spec.name)],
        );
        return Ok(report);
    }
    check(t.error_code, t.error_message.as_deref(), || {
        format!("create topic {}", spec.name)
    })?;
    let mut line = format!("Created topic {}.", spec.name);
    // v5+ answers the partition count and replication factor the broker chose.
    if v >= 5 {
        line = format!(
            "Created topic {} with {} partitions, replication factor {}.",
            spec.name, t.num_partitions, t.replication_factor
        );
    }
    report.lines("result", vec![line]);
    Ok(report)
}

pub fn list(client: &mut Client, exclude_internal: bool) -> Result<Report> {
    let meta = metadata::fetch(client, None)?;
    let mut table = Table::new(&["TOPIC", "PARTITIONS", "REPLICATION-FACTOR", "INTERNAL"]);
    for t in meta
        .topics
        .iter()
        .filter(|t| !(exclude_internal && t.internal))
    {
        table.push(vec![
            t.name.clone().into(),
            t.partitions.len().into(),
            t.replication_factor().into(),
            t.internal.into(),
        ]);
    }
    let mut report = Report::new();
    report.table("topics", None, table);
    Ok(report)
}

pub fn describe(client: &mut Client, names: &[String], exclude_internal: bool) -> Result<Report> {
    let meta = metadata::fetch(client, (!names.is_empty()).then_some(names))?;
    let topics: Vec<TopicMeta> = meta
        .topics
        .into_iter()
        .filter(|t| !(names.is_empty() && exclude_internal && t.internal))
        .collect();
    let leaders = metadata::leaders(&topics);
    // Offsets only of partitions that have a leader; the others show "-".
    let led: std::collections::BTreeMap<_, _> =
        leaders.into_iter().filter(|(_, l)| *l >= 0).collect();
    let starts = metadata::list_offsets(client, &led, EARLIEST)?;
    let ends = metadata::list_offsets(client, &led, LATEST)?;
    let mut summary = Table::new(&[
        "TOPIC",
        "TOPIC-ID",
        "PARTITIONS",
        "REPLICATION-FACTOR",
        "INTERNAL",
    ]);
    let mut parts = Table::new(&[
        "TOPIC",
        "PARTITION",
        "LEADER",
        "LEADER-EPOCH",
        "REPLICAS",
        "ISR",
        "LOG-START-OFFSET",
        "LOG-END-OFFSET",
        "ERROR",
    ]);
    for t in &topics {
        summary.push(vec![
            t.name.clone().into(),
            t.id.clone().into(),
            t.partitions.len().into(),
            t.replication_factor().into(),
            t.internal.into(),
        ]);
        for p in &t.partitions {
            let key = (t.name.clone(), p.partition);
            let error = K::try_from_code(p.error_code)
                .map(|e| Cell::Text(crate::error::KafkaName(e).to_string()))
                .unwrap_or(Cell::None);
            parts.push(vec![
                t.name.clone().into(),
                p.partition.into(),
                if p.leader >= 0 {
                    p.leader.into()
                } else {
                    Cell::None
                },
                p.leader_epoch.into(),
                Cell::List(p.replicas.iter().map(|&r| r.into()).collect()),
                Cell::List(p.isr.iter().map(|&r| r.into()).collect()),
                starts.get(&key).copied().into(),
                ends.get(&key).copied().into(),
                error,
            ]);
        }
    }
    let mut report = Report::new();
    report.table("topics", None, summary);
    report.table("partitions", None, parts);
    Ok(report)
}

pub fn delete(client: &mut Client, names: &[String], if_exists: bool) -> Result<Report> {
    if names.is_empty() {
        return Err(AdminError::Invalid(
            "name at least one topic to delete".into(),
        ));
    }
    let conn = client.any();
    let v = conn.version(ApiKey::DeleteTopics, 1, 6)?;
    let mut req = DeleteTopicsRequest::default().with_timeout_ms(ADMIN_TIMEOUT_MS);
    if v >= 6 {
        req = req.with_topics(
            names
                .iter()
                .map(|n| DeleteTopicState::default().with_name(Some(topic_name(n))))
                .collect(),
        );
    } else {
        req = req.with_topic_names(names.iter().map(|n| topic_name(n)).collect());
    }
    let resp = conn.call(&req, v)?;
    let mut lines = Vec::new();
    for name in names {
        let r = answer_for(&resp.responses, "DeleteTopics", name, |r| {
            r.name.as_ref().map(|n| n.0.as_str()) == Some(name.as_str())
        })?;
        if if_exists && r.error_code == K::UnknownTopicOrPartition.code() {
            lines.push(format!("Topic {name} does not exist."));
            continue;
        }
        check(r.error_code, r.error_message.as_deref(), || {
            format!("delete topic {name}")
        })?;
        lines.push(format!("Deleted topic {name}."));
    }
    let mut report = Report::new();
    report.lines("result", lines);
    Ok(report)
}

/// Why a partition count cannot be applied, decided before asking the broker: Kafka cannot
/// remove partitions (their data and the key-to-partition mapping would be lost).
pub fn check_growth(topic: &str, current: usize, wanted: i32) -> Result<()> {
    if wanted < 1 {
        return Err(AdminError::Invalid(format!(
            "--partitions must be at least 1, got {wanted}"
        )));
    }
    let wanted = wanted as usize;
    if wanted < current {
        return Err(AdminError::Invalid(format!(
            "topic {topic} has {current} partitions; partitions can only grow, not shrink to \
             {wanted} (to shrink, delete and re-create the topic)"
        )));
    }
    if wanted == current {
        return Err(AdminError::Invalid(format!(
            "topic {topic} already has {current} partitions; --partitions is the new total, \
             which must be larger"
        )));
    }
    Ok(())
}

pub fn add_partitions(client: &mut Client, name: &str, total: i32) -> Result<Report> {
    let current = metadata::topic(client, name)?.partitions.len();
    check_growth(name, current, total)?;
    let conn = client.any();
    let v = conn.version(ApiKey::CreatePartitions, 0, 3)?;
    let req = CreatePartitionsRequest::default()
        .with_timeout_ms(ADMIN_TIMEOUT_MS)
        .with_topics(vec![CreatePartitionsTopic::default()
            .with_name(topic_name(name))
            .with_count(total)]);
    let resp = conn.call(&req, v)?;
    let r = answer_for(&resp.results, "CreatePartitions", name, |r| {
        r.name.0.as_str() == name
    })?;
    check(r.error_code, r.error_message.as_deref(), || {
        format!("add partitions to {name}")
    })?;
    let mut report = Report::new();
    report.lines(
        "result",
        vec![format!(
            "Topic {name} now has {total} partitions (was {current})."
        )],
    );
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_only_grow() {
        assert!(check_growth("t", 3, 4).is_ok());
        let shrink = check_growth("t", 3, 2).unwrap_err().to_string();
        assert!(shrink.contains("can only grow"), "{shrink}");
        assert!(shrink.contains("delete and re-create"), "{shrink}");
        assert!(check_growth("t", 3, 3)
            .unwrap_err()
            .to_string()
            .contains("already has 3"));
        assert!(check_growth("t", 3, 0).is_err());
    }
}
