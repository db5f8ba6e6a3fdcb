//! DescribeConfigs, AlterConfigs and IncrementalAlterConfigs for topics (changes go through the
//! controller and the metadata log) and, read-only, for the broker. A topic's configs are
//! described as Kafka describes them: every config with its source, type and synonyms.

use super::sb;
use crate::config::topic::{topic_config_def, topic_synonyms, DescribedBroker};
use crate::config::ConfigSource;
use crate::runtime::core::Core;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::*;
use kafka_protocol::ResponseError as K;
use std::rc::Rc;
use weir_replication::controller::{
    AlterConfigsResource, ConfigChange, ConfigOp, ConfigResource, ControllerReply,
    ControllerRequest,
};

/// Kafka's ConfigResource types.
const RESOURCE_TOPIC: i8 = 2;
const RESOURCE_BROKER: i8 = 4;

pub fn describe(core: &Rc<Core>, req: DescribeConfigsRequest) -> DescribeConfigsResponse {
    let s = &core.settings();
    let include_synonyms = req.include_synonyms;
    let results = req
        .resources
        .into_iter()
        .map(|r| {
            let base = DescribeConfigsResult::default()
                .with_resource_type(r.resource_type)
                .with_resource_name(r.resource_name.clone());
            let wanted = |name: &str| {
                r.configuration_keys
                    .as_ref()
                    .is_none_or(|keys| keys.iter().any(|k| k.as_str() == name))
            };
            match r.resource_type {
                RESOURCE_TOPIC => {
                    let overrides = core
                        .image()
                        .topic(r.resource_name.as_str())
                        .map(|t| t.configs.clone());
                    let Some(overrides) = overrides else {
                        return base
                            .with_error_code(K::UnknownTopicOrPartition.code())
                            .with_error_message(Some(sb(format!(
                                "Topic {} does not exist",
                                r.resource_name.as_str()
                            ))));
                    };
                    // Synonyms name the broker configs each value falls back to; the broker's
                    // values are known here as its own DescribeConfigs lists them.
                    let broker = DescribedBroker::from_entries(&s.broker_configs);
                    let configs = (s.describe_topic)(&overrides)
                        .into_iter()
                        .filter(|(k, _, _)| wanted(k))
                        .filter_map(|(k, v, _)| {
                            let def = topic_config_def(&k)?;
                            let synonyms =
                                topic_synonyms(def, &v, overrides.contains_key(&k), &broker);
                            let source = synonyms
                                .first()
                                .map_or(ConfigSource::DefaultConfig, |s| s.source);
                            let synonyms = if include_synonyms {
                                synonyms
                                    .into_iter()
                                    .map(|s| {
                                        DescribeConfigsSynonym::default()
                                            .with_name(sb(s.name))
                                            .with_value(s.value.map(sb))
                                            .with_source(s.source as i8)
                                    })
                                    .collect()
                            } else {
                                Vec::new()
                            };
                            Some(
                                DescribeConfigsResourceResult::default()
                                    .with_name(sb(k))
                                    .with_value(Some(sb(v)))
                                    .with_config_source(source as i8)
                                    .with_read_only(false)
                                    .with_is_sensitive(false)
                                    .with_config_type(def.ty as i8)
                                    .with_documentation(None)
                                    .with_synonyms(synonyms),
                            )
                        })
                        .collect();
                    base.with_configs(configs)
                }
                RESOURCE_BROKER
                    if r.resource_name.is_empty()
                        || r.resource_name.as_str() == s.node_id.to_string() =>
                {
                    // As Kafka: an unset config is null (not ""), and one left at its default
                    // is DEFAULT_CONFIG, not STATIC_BROKER_CONFIG (tools print both as such).
                    let configs = s
                        .broker_configs
                        .iter()
                        .filter(|e| wanted(&e.name))
                        .map(|e| {
                            DescribeConfigsResourceResult::default()
                                .with_name(sb(e.name.clone()))
                                .with_value(e.value.clone().map(sb))
                                .with_read_only(e.read_only)
                                .with_config_source(e.source as i8)
                                .with_is_sensitive(e.sensitive)
                                .with_config_type(e.config_type as i8)
                        })
                        .collect();
                    base.with_configs(configs)
                }
                RESOURCE_BROKER => base
                    .with_error_code(K::InvalidRequest.code())
                    .with_error_message(Some(sb("unexpected broker id"))),
                _ => base
                    .with_error_code(K::InvalidRequest.code())
                    .with_error_message(Some(sb("unsupported resource type"))),
            }
        })
        .collect();
    DescribeConfigsResponse::default().with_results(results)
}

/// One resource of an AlterConfigs or IncrementalAlterConfigs request, through the controller
/// and the metadata log: topic overrides, or dynamic broker configs (resource name "" for the
/// cluster-wide default, or a broker id).
async fn alter_resource(
    core: &Rc<Core>,
    resource_type: i8,
    name: &str,
    changes: Vec<ConfigChange>,
    replace_all: bool,
    validate_only: bool,
) -> (i16, Option<String>) {
    let resource = match resource_type {
        RESOURCE_TOPIC => ConfigResource::Topic(name.to_string()),
        RESOURCE_BROKER => ConfigResource::Broker(name.to_string()),
        _ => {
            return (
                K::InvalidRequest.code(),
                Some("unsupported resource type".into()),
            )
        }
    };
    let request = ControllerRequest::AlterConfigs {
        resources: vec![AlterConfigsResource { resource, changes }],
        replace_all,
        validate_only,
    };
    match core.controller_call(request).await {
        ControllerReply::AlterConfigs(mut r) if r.len() == 1 => match r.remove(0) {
            Ok(()) => (0, None),
            Err(e) => {
                let (code, msg) = crate::errors::controller_error(&e);
                (code, Some(msg))
            }
        },
        other => {
            tracing::error!(?other, "controller answered with the wrong reply");
            (K::UnknownServerError.code(), None)
        }
    }
}

pub async fn alter(core: &Rc<Core>, req: AlterConfigsRequest) -> AlterConfigsResponse {
    let mut responses = Vec::new();
    for r in req.resources {
        // AlterConfigs replaces the whole set of overrides with what the request lists.
        let changes = r
            .configs
            .into_iter()
            .map(|c| ConfigChange {
                key: c.name.to_string(),
                op: ConfigOp::Set,
                value: c.value.map(|v| v.to_string()),
            })
            .collect();
        let (code, msg) = alter_resource(
            core,
            r.resource_type,
            r.resource_name.as_str(),
            changes,
            true,
            req.validate_only,
        )
        .await;
        responses.push(
            alter_configs_response::AlterConfigsResourceResponse::default()
                .with_resource_type(r.resource_type)
                .with_resource_name(r.resource_name)
                .with_error_code(code)
                .with_error_message(msg.map(sb)),
        );
    }
    AlterConfigsResponse::default().with_responses(responses)
}

pub async fn incremental_alter(
    core: &Rc<Core>,
    req: IncrementalAlterConfigsRequest,
) -> IncrementalAlterConfigsResponse {
    let mut responses = Vec::new();
    for r in req.resources {
        let changes: Option<Vec<ConfigChange>> = r
            .configs
            .into_iter()
            .map(|c| {
                Some(ConfigChange {
                    key: c.name.to_string(),
                    op: ConfigOp::from_kafka(c.config_operation)?,
                    value: c.value.map(|v| v.to_string()),
                })
            })
            .collect();
        let Some(changes) = changes else {
            responses.push(
                incremental_alter_configs_response::AlterConfigsResourceResponse::default()
                    .with_resource_type(r.resource_type)
                    .with_resource_name(r.resource_name)
                    .with_error_code(K::InvalidRequest.code())
                    .with_error_message(Some(sb("unknown config operation"))),
            );
            continue;
        };
        let (code, msg) = alter_resource(
            core,
            r.resource_type,
            r.resource_name.as_str(),
            changes,
            false,
            req.validate_only,
        )
        .await;
        responses.push(
            incremental_alter_configs_response::AlterConfigsResourceResponse::default()
                .with_resource_type(r.resource_type)
                .with_resource_name(r.resource_name)
                .with_error_code(code)
                .with_error_message(msg.map(sb)),
        );
    }
    IncrementalAlterConfigsResponse::default().with_responses(responses)
}
