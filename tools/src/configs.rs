//! `topic config get|set|delete`: DescribeConfigs and IncrementalAlterConfigs on a topic, as
//! kafka-configs.sh `--entity-type topics` does them.

use crate::client::{sb, Client};
use crate::error::{check, AdminError, Result};
use crate::props::parse_pairs;
use crate::table::{Report, Table};
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::{ApiKey, DescribeConfigsRequest, IncrementalAlterConfigsRequest};

/// Kafka's ConfigResource type for topics.
const RESOURCE_TOPIC: i8 = 2;
/// IncrementalAlterConfigs operations.
const OP_SET: i8 = 0;
const OP_DELETE: i8 = 1;

/// Kafka's names for DescribeConfigs `config_source`.
pub fn source_name(source: i8) -> &'static str {
    match source {
        1 => "DYNAMIC_TOPIC_CONFIG",
        2 => "DYNAMIC_BROKER_CONFIG",
        3 => "DYNAMIC_DEFAULT_BROKER_CONFIG",
        4 => "STATIC_BROKER_CONFIG",
        5 => "DEFAULT_CONFIG",
        6 => "DYNAMIC_BROKER_LOGGER_CONFIG",
        7 => "CLIENT_METRICS_CONFIG",
        8 => "GROUP_CONFIG",
        _ => "UNKNOWN",
    }
}

pub fn get(client: &mut Client, topic: &str, keys: &[String]) -> Result<Report> {
    let conn = client.any();
    let v = conn.version(ApiKey::DescribeConfigs, 1, 4)?;
    let req =
        DescribeConfigsRequest::default().with_resources(vec![DescribeConfigsResource::default()
            .with_resource_type(RESOURCE_TOPIC)
            .with_resource_name(sb(topic))
            .with_configuration_keys((!keys.is_empty()).then(|| keys.iter().map(sb).collect()))]);
    let resp = conn.call(&req, v)?;
    let r = resp
        .results
        .first()
        .ok_or_else(|| AdminError::Protocol("DescribeConfigs answered no resource".into()))?;
    check(r.error_code, r.error_message.as_deref(), || {
        format!("configs of topic {topic}")
    })?;
    if let Some(missing) = keys
        .iter()
        .find(|k| !r.configs.iter().any(|c| c.name.as_str() == k.as_str()))
    {
        return Err(AdminError::Invalid(format!(
            "topic {topic} has no config '{missing}' (the broker does not support it)"
        )));
    }
    let mut configs: Vec<_> = r.configs.iter().collect();
    configs.sort_by(|a, b| a.name.cmp(&b.name));
    let mut table = Table::new(&["KEY", "VALUE", "SOURCE", "READ-ONLY", "SENSITIVE"]);
    for c in configs {
        // A sensitive value is never sent; Kafka's tools show it as null too.
        let value = if c.is_sensitive {
            None
        } else {
            c.value.as_ref().map(|v| v.to_string())
        };
        table.push(vec![
            c.name.to_string().into(),
            value.into(),
            source_name(c.config_source).into(),
            c.read_only.into(),
            c.is_sensitive.into(),
        ]);
    }
    let mut report = Report::new();
    report.table("configs", None, table);
    Ok(report)
}

fn alter(client: &mut Client, topic: &str, changes: Vec<AlterableConfig>) -> Result<()> {
    let conn = client.any();
    let v = conn.version(ApiKey::IncrementalAlterConfigs, 0, 1)?;
    let req = IncrementalAlterConfigsRequest::default().with_resources(vec![
        AlterConfigsResource::default()
            .with_resource_type(RESOURCE_TOPIC)
            .with_resource_name(sb(topic))
            .with_configs(changes),
    ]);
    let resp = conn.call(&req, v)?;
    let r = resp
        .responses
        .first()
        .ok_or_else(|| AdminError::Protocol("IncrementalAlterConfigs answered nothing".into()))?;
    check(r.error_code, r.error_message.as_deref(), || {
        format!("alter configs of topic {topic}")
    })
}

pub fn set(client: &mut Client, topic: &str, configs: &[String]) -> Result<Report> {
    let pairs = parse_pairs(configs)?;
    let changes = pairs
        .iter()
        .map(|(k, v)| {
            AlterableConfig::default()
                .with_name(sb(k.clone()))
                .with_config_operation(OP_SET)
                .with_value(Some(sb(v.clone())))
        })
        .collect();
    alter(client, topic, changes)?;
    let mut report = Report::new();
    report.lines(
        "result",
        pairs
            .iter()
            .map(|(k, v)| format!("Set {k}={v} on topic {topic}."))
            .collect(),
    );
    Ok(report)
}

pub fn delete(client: &mut Client, topic: &str, keys: &[String]) -> Result<Report> {
    let changes = keys
        .iter()
        .map(|k| {
            AlterableConfig::default()
                .with_name(sb(k.clone()))
                .with_config_operation(OP_DELETE)
        })
        .collect();
    alter(client, topic, changes)?;
    let mut report = Report::new();
    report.lines(
        "result",
        keys.iter()
            .map(|k| format!("Removed the override of {k} on topic {topic}."))
            .collect(),
    );
    Ok(report)
}
