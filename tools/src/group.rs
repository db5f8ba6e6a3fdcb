//! `group list|describe|reset-offsets|delete`, as kafka-consumer-groups.sh does them: describe
//! joins DescribeGroups (members and assignments) with the committed offsets and the log end
//! offsets to show lag; a reset is a dry run unless executed, and only for an inactive group.

use crate::client::{sb, Client};
use crate::commits::{self, Committer};
use crate::error::{answer_for, check, AdminError, Result};
use crate::member::{decode_assignment, PROTOCOL_TYPE};
use crate::metadata::{self, Tp, EARLIEST, LATEST};
use crate::table::{Cell, Report, Table};
use kafka_protocol::messages::{
    ApiKey, DeleteGroupsRequest, DescribeGroupsRequest, GroupId, ListGroupsRequest,
};
use std::collections::{BTreeMap, BTreeSet};

pub fn list(client: &mut Client, states: &[String]) -> Result<Report> {
    // Every broker coordinates some groups: ask each one (a single broker here, many in Kafka).
    client.metadata(Some(&[]))?;
    let ids: Vec<i32> = client.brokers().keys().copied().collect();
    let mut rows = BTreeMap::new();
    for id in ids {
        let conn = client.broker(id)?;
        let v = conn.version(ApiKey::ListGroups, 0, 5)?;
        let mut req = ListGroupsRequest::default();
        if v >= 4 {
            req = req.with_states_filter(states.iter().map(sb).collect());
        }
        let resp = conn.call(&req, v)?;
        check(resp.error_code, None, || "list groups".into())?;
        for g in resp.groups {
            let state = (v >= 4).then(|| g.group_state.to_string());
            // Brokers before v4 cannot filter by state; nor report it.
            if v < 4 && !states.is_empty() {
                return Err(AdminError::Unsupported(
                    "the broker cannot filter groups by state (ListGroups v4+)".into(),
                ));
            }
            rows.insert(
                g.group_id.0.to_string(),
                (g.protocol_type.to_string(), state),
            );
        }
    }
    let mut table = Table::new(&["GROUP", "STATE", "PROTOCOL-TYPE"]);
    for (group, (protocol_type, state)) in rows {
        table.push(vec![
            group.into(),
            state.into(),
            Cell::from((!protocol_type.is_empty()).then_some(protocol_type)),
        ]);
    }
    let mut report = Report::new();
    report.table("groups", None, table);
    Ok(report)
}

/// A group as DescribeGroups tells it.
#[derive(Debug, Clone)]
pub struct GroupInfo {
    pub group: String,
    pub state: String,
    pub protocol_type: String,
    pub protocol: String,
    pub members: Vec<MemberInfo>,
}

#[derive(Debug, Clone)]
pub struct MemberInfo {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub host: String,
    pub assignment: Vec<Tp>,
}

pub fn describe_group(client: &mut Client, group: &str) -> Result<GroupInfo> {
    let conn = client.coordinator(group)?;
    let v = conn.version(ApiKey::DescribeGroups, 0, 5)?;
    let req = DescribeGroupsRequest::default().with_groups(vec![GroupId(sb(group))]);
    let resp = conn.call(&req, v)?;
    let g = answer_for(resp.groups, "DescribeGroups", group, |g| {
        g.group_id.0.as_str() == group
    })?;
    check(g.error_code, g.error_message.as_deref(), || {
        format!("describe group {group}")
    })?;
    let consumer = g.protocol_type.as_str() == PROTOCOL_TYPE;
    let members = g
        .members
        .into_iter()
        .map(|m| {
            // Only the consumer protocol's assignment format is known; others stay opaque.
            let assignment = if consumer {
                decode_assignment(m.member_assignment.clone())?
            } else {
                Vec::new()
            };
            Ok(MemberInfo {
                member_id: m.member_id.to_string(),
                instance_id: m.group_instance_id.map(|i| i.to_string()),
                client_id: m.client_id.to_string(),
                host: m.client_host.to_string(),
                assignment,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(GroupInfo {
        group: group.to_string(),
        state: g.group_state.to_string(),
        protocol_type: g.protocol_type.to_string(),
        protocol: g.protocol_data.to_string(),
        members,
    })
}

/// Log end offsets of `partitions`, from their leaders.
fn log_end_offsets(client: &mut Client, partitions: &BTreeSet<Tp>) -> Result<BTreeMap<Tp, i64>> {
    offsets_at(client, partitions, LATEST)
}

fn offsets_at(
    client: &mut Client,
    partitions: &BTreeSet<Tp>,
    ts: i64,
) -> Result<BTreeMap<Tp, i64>> {
    if partitions.is_empty() {
        return Ok(BTreeMap::new());
    }
    let topics: Vec<String> = partitions
        .iter()
        .map(|(t, _)| t.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let meta = metadata::fetch(client, Some(&topics))?;
    let all = metadata::leaders(&meta.topics);
    let mut leaders = BTreeMap::new();
    for tp in partitions {
        let leader = all.get(tp).copied().ok_or_else(|| {
            AdminError::Invalid(format!("topic {} has no partition {}", tp.0, tp.1))
        })?;
        leaders.insert(tp.clone(), leader);
    }
    metadata::list_offsets(client, &leaders, ts)
}

/// Lag of a committed offset: how many messages the group has yet to read.
pub fn lag(committed: Option<i64>, log_end: Option<i64>) -> Option<i64> {
    match (committed, log_end) {
        (Some(c), Some(e)) => Some((e - c).max(0)),
        _ => None,
    }
}

pub fn describe(client: &mut Client, groups: &[String]) -> Result<Report> {
    let mut report = Report::new();
    let mut summaries = Table::new(&[
        "GROUP",
        "STATE",
        "PROTOCOL-TYPE",
        "PROTOCOL",
        "COORDINATOR",
        "MEMBERS",
        "TOTAL-LAG",
    ]);
    let mut members_table = Table::new(&[
        "GROUP",
        "CONSUMER-ID",
        "GROUP-INSTANCE-ID",
        "HOST",
        "CLIENT-ID",
        "#PARTITIONS",
        "ASSIGNMENT",
    ]);
    let mut offsets_table = Table::new(&[
        "GROUP",
        "TOPIC",
        "PARTITION",
        "CURRENT-OFFSET",
        "LOG-END-OFFSET",
        "LAG",
        "CONSUMER-ID",
        "HOST",
        "CLIENT-ID",
    ]);
    for group in groups {
        let info = describe_group(client, group)?;
        let coordinator = client.coordinator_id(group)?;
        let committed = commits::fetch(client.coordinator(group)?, group, None)?;
        // Kafka's tool says a group that has neither members nor offsets does not exist.
        if info.state == "Dead" && committed.is_empty() {
            return Err(AdminError::Invalid(format!(
                "consumer group '{group}' does not exist"
            )));
        }
        let mut owner: BTreeMap<Tp, &MemberInfo> = BTreeMap::new();
        for m in &info.members {
            for tp in &m.assignment {
                owner.insert(tp.clone(), m);
            }
            let assignment = m
                .assignment
                .iter()
                .map(|(t, p)| format!("{t}-{p}"))
                .collect::<Vec<_>>()
                .join(",");
            members_table.push(vec![
                group.clone().into(),
                m.member_id.clone().into(),
                m.instance_id.clone().into(),
                m.host.clone().into(),
                m.client_id.clone().into(),
                m.assignment.len().into(),
                Cell::from((!assignment.is_empty()).then_some(assignment)),
            ]);
        }
        let partitions: BTreeSet<Tp> = committed.keys().chain(owner.keys()).cloned().collect();
        let ends = log_end_offsets(client, &partitions)?;
        let mut total_lag = 0;
        for tp in &partitions {
            let c = committed.get(tp).copied();
            let end = ends.get(tp).copied();
            let l = lag(c, end);
            total_lag += l.unwrap_or(0);
            let m = owner.get(tp);
            offsets_table.push(vec![
                group.clone().into(),
                tp.0.clone().into(),
                tp.1.into(),
                c.into(),
                end.into(),
                l.into(),
                m.map(|m| m.member_id.clone()).into(),
                m.map(|m| m.host.clone()).into(),
                m.map(|m| m.client_id.clone()).into(),
            ]);
        }
        summaries.push(vec![
            group.clone().into(),
            info.state.clone().into(),
            Cell::from((!info.protocol_type.is_empty()).then(|| info.protocol_type.clone())),
            Cell::from((!info.protocol.is_empty()).then(|| info.protocol.clone())),
            coordinator.into(),
            info.members.len().into(),
            total_lag.into(),
        ]);
    }
    report.table("groups", None, summaries);
    report.table("members", None, members_table);
    report.table("offsets", None, offsets_table);
    Ok(report)
}

/// Where `reset-offsets` moves each partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResetTo {
    Earliest,
    Latest,
    Offset(i64),
    /// Epoch milliseconds.
    Datetime(i64),
    ShiftBy(i64),
}

/// Parses `--topic TOPIC` or `--topic TOPIC:0,2`.
pub fn parse_topic_scope(s: &str) -> Result<(String, Option<Vec<i32>>)> {
    match s.split_once(':') {
        None if !s.is_empty() => Ok((s.to_string(), None)),
        Some((t, ps)) if !t.is_empty() => {
            let parts = ps
                .split(',')
                .map(|p| {
                    p.trim().parse::<i32>().map_err(|_| {
                        AdminError::Invalid(format!("'{p}' in --topic {s} is not a partition"))
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            Ok((t.to_string(), Some(parts)))
        }
        _ => Err(AdminError::Invalid(format!(
            "--topic {s}: expected TOPIC or TOPIC:P,P"
        ))),
    }
}

/// Kafka's rule: a reset target outside the log is moved to its nearest end.
pub fn clamp(target: i64, earliest: i64, latest: i64) -> i64 {
    target.clamp(earliest, latest.max(earliest))
}

/// The new offset of one partition.
pub fn target(
    to: ResetTo,
    committed: Option<i64>,
    earliest: i64,
    latest: i64,
    at_time: Option<i64>,
) -> i64 {
    match to {
        ResetTo::Earliest => earliest,
        ResetTo::Latest => latest,
        ResetTo::Offset(o) => clamp(o, earliest, latest),
        // No message at or after the time: the end (Kafka's --to-datetime does the same).
        ResetTo::Datetime(_) => match at_time {
            Some(o) if o >= 0 => o,
            _ => latest,
        },
        // Without a commit, Kafka shifts from the current position, which for an inactive
        // group with no commit is where auto.offset.reset would put it; it uses latest.
        ResetTo::ShiftBy(n) => clamp(
            committed.unwrap_or(latest).saturating_add(n),
            earliest,
            latest,
        ),
    }
}

pub struct ResetSpec<'a> {
    pub group: &'a str,
    pub topics: &'a [String],
    pub all_topics: bool,
    pub to: ResetTo,
    pub execute: bool,
}

/// States in which Kafka lets an administrator rewrite a group's offsets.
fn inactive(state: &str) -> bool {
    matches!(state, "Empty" | "Dead")
}

pub fn reset_offsets(client: &mut Client, spec: &ResetSpec<'_>) -> Result<Report> {
    let group = spec.group;
    let info = describe_group(client, group)?;
    if !inactive(&info.state) {
        return Err(AdminError::Invalid(format!(
            "assignments can only be reset if the group '{group}' is inactive, but the current \
             state is {} with {} members (stop them first)",
            info.state,
            info.members.len()
        )));
    }
    let committed = commits::fetch(client.coordinator(group)?, group, None)?;
    let mut partitions: BTreeSet<Tp> = BTreeSet::new();
    if spec.all_topics {
        partitions.extend(committed.keys().cloned());
    }
    for scope in spec.topics {
        let (topic, parts) = parse_topic_scope(scope)?;
        match parts {
            Some(ps) => partitions.extend(ps.into_iter().map(|p| (topic.clone(), p))),
            None => {
                let meta = metadata::topic(client, &topic)?;
                partitions.extend(meta.partitions.iter().map(|p| (topic.clone(), p.partition)));
            }
        }
    }
    if partitions.is_empty() {
        return Err(AdminError::Invalid(format!(
            "nothing to reset: group '{group}' has no committed offsets and no --topic was given"
        )));
    }
    let earliest = offsets_at(client, &partitions, EARLIEST)?;
    let latest = offsets_at(client, &partitions, LATEST)?;
    let at_time = match spec.to {
        ResetTo::Datetime(ts) => Some(offsets_at(client, &partitions, ts)?),
        _ => None,
    };
    let mut new_offsets = BTreeMap::new();
    let mut table = Table::new(&[
        "GROUP",
        "TOPIC",
        "PARTITION",
        "CURRENT-OFFSET",
        "NEW-OFFSET",
    ]);
    for tp in &partitions {
        let c = committed.get(tp).copied();
        let new = target(
            spec.to,
            c,
            earliest[tp],
            latest[tp],
            at_time.as_ref().map(|m| m[tp]),
        );
        new_offsets.insert(tp.clone(), new);
        table.push(vec![
            group.into(),
            tp.0.clone().into(),
            tp.1.into(),
            c.into(),
            new.into(),
        ]);
    }
    if spec.execute {
        commits::commit(
            client.coordinator(group)?,
            group,
            &Committer::admin(),
            &new_offsets,
        )?;
    }
    let mut report = Report::new();
    report.table("offsets", None, table);
    report.fields(
        "result",
        vec![
            ("Group", group.into()),
            ("Executed", spec.execute.into()),
            ("Partitions", new_offsets.len().into()),
        ],
    );
    if !spec.execute {
        report.warn(
            "no offsets were changed: this is a dry run; add --execute to apply the reset".into(),
        );
    }
    Ok(report)
}

pub fn delete(client: &mut Client, groups: &[String]) -> Result<Report> {
    let mut lines = Vec::new();
    for group in groups {
        let conn = client.coordinator(group)?;
        let v = conn.version(ApiKey::DeleteGroups, 0, 2)?;
        let req = DeleteGroupsRequest::default().with_groups_names(vec![GroupId(sb(group))]);
        let resp = conn.call(&req, v)?;
        let r = answer_for(&resp.results, "DeleteGroups", group, |r| {
            r.group_id.0.as_str() == group
        })?;
        check(r.error_code, None, || format!("delete group {group}"))?;
        lines.push(format!("Deleted consumer group '{group}'."));
    }
    let mut report = Report::new();
    report.lines("result", lines);
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lag_is_end_minus_committed_and_unknown_without_a_commit() {
        assert_eq!(lag(Some(5), Some(12)), Some(7));
        assert_eq!(lag(Some(12), Some(12)), Some(0));
        assert_eq!(
            lag(Some(20), Some(12)),
            Some(0),
            "a commit past the end after truncation"
        );
        assert_eq!(lag(None, Some(12)), None);
    }

    #[test]
    fn reset_targets_follow_kafka() {
        let t = |to, c| target(to, c, 10, 100, None);
        assert_eq!(t(ResetTo::Earliest, Some(50)), 10);
        assert_eq!(t(ResetTo::Latest, Some(50)), 100);
        assert_eq!(
            t(ResetTo::Offset(5), None),
            10,
            "below the log start: clamped"
        );
        assert_eq!(t(ResetTo::Offset(500), None), 100, "past the end: clamped");
        assert_eq!(t(ResetTo::Offset(42), None), 42);
        assert_eq!(t(ResetTo::ShiftBy(-5), Some(50)), 45);
        assert_eq!(t(ResetTo::ShiftBy(-500), Some(50)), 10);
        assert_eq!(t(ResetTo::ShiftBy(5), Some(98)), 100);
        assert_eq!(target(ResetTo::Datetime(1), None, 10, 100, Some(37)), 37);
        assert_eq!(target(ResetTo::Datetime(1), None, 10, 100, Some(-1)), 100);
    }

    #[test]
    fn topic_scopes_parse() {
        assert_eq!(
            parse_topic_scope("orders").unwrap(),
            ("orders".into(), None)
        );
        assert_eq!(
            parse_topic_scope("orders:0,2").unwrap(),
            ("orders".into(), Some(vec![0, 2]))
        );
        assert!(parse_topic_scope("orders:x").is_err());
        assert!(parse_topic_scope(":1").is_err());
    }

    #[test]
    fn only_inactive_groups_are_reset() {
        assert!(inactive("Empty") && inactive("Dead"));
        assert!(!inactive("Stable") && !inactive("PreparingRebalance"));
    }
}
