//! DescribeConfigs (key 32): every topic config with its value and source
//! (topic, broker default from floe.toml, or Kafka default).

use protocol::describe_configs_request::DescribeConfigsRequest;
use protocol::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResponse, DescribeConfigsResult,
    DescribeConfigsSynonym,
};

use super::Call;
use crate::config::{ConfigSource, TOPIC_CONFIGS, TopicConfig};
use crate::error_code;

/// Resource types of the config APIs.
pub const RESOURCE_TOPIC: i8 = 2;
pub const RESOURCE_BROKER: i8 = 4;

pub fn handle(call: &Call<'_>, req: DescribeConfigsRequest) -> DescribeConfigsResponse {
    let shard = call.shard();
    let broker = &shard.cluster.config;
    let results = req
        .resources
        .into_iter()
        .map(|res| {
            let mut result = DescribeConfigsResult {
                error_code: error_code::NONE,
                error_message: None,
                resource_type: res.resource_type,
                resource_name: res.resource_name.clone(),
                configs: Vec::new(),
            };
            let explicit = match res.resource_type {
                RESOURCE_TOPIC => match shard.cluster.topics.get(&res.resource_name) {
                    Some(meta) => meta.configs,
                    None => {
                        result.error_code = error_code::UNKNOWN_TOPIC_OR_PARTITION;
                        result.error_message =
                            Some(format!("topic {} does not exist", res.resource_name));
                        return result;
                    }
                },
                // Broker resources describe the broker-level topic defaults.
                RESOURCE_BROKER => Default::default(),
                other => {
                    result.error_code = error_code::INVALID_REQUEST;
                    result.error_message = Some(format!("unsupported resource type {other}"));
                    return result;
                }
            };
            for def in TOPIC_CONFIGS {
                if let Some(keys) = &res.configuration_keys
                    && !keys.iter().any(|k| k == def.name)
                {
                    continue;
                }
                let Some((value, source)) = TopicConfig::resolve(def.name, &explicit, broker)
                else {
                    continue;
                };
                let mut synonyms = Vec::new();
                if req.include_synonyms {
                    synonyms.push(DescribeConfigsSynonym {
                        name: def.name.to_string(),
                        value: Some(value.clone()),
                        source: source as i8,
                    });
                    if source == ConfigSource::Topic
                        && let Some(b) = broker.broker_default(def.name)
                    {
                        synonyms.push(DescribeConfigsSynonym {
                            name: def.name.to_string(),
                            value: Some(b.to_string()),
                            source: ConfigSource::StaticBroker as i8,
                        });
                    }
                    if source != ConfigSource::Default {
                        synonyms.push(DescribeConfigsSynonym {
                            name: def.name.to_string(),
                            value: Some(def.default.to_string()),
                            source: ConfigSource::Default as i8,
                        });
                    }
                }
                result.configs.push(DescribeConfigsResourceResult {
                    name: def.name.to_string(),
                    value: Some(value),
                    read_only: res.resource_type == RESOURCE_BROKER,
                    is_default: source == ConfigSource::Default,
                    config_source: source as i8,
                    is_sensitive: false,
                    synonyms,
                    config_type: def.kind as i8,
                    documentation: req.include_documentation.then(|| def.doc.to_string()),
                });
            }
            result
        })
        .collect();
    DescribeConfigsResponse {
        results,
        ..Default::default()
    }
}
