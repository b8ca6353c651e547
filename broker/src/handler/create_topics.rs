//! CreateTopics (key 19): create topics with partition counts and configs,
//! or only validate them (`validate_only`).

use protocol::create_topics_request::CreateTopicsRequest;
use protocol::create_topics_response::{
    CreatableTopicConfigs, CreatableTopicResult, CreateTopicsResponse,
};

use super::Call;
use crate::admin;
use crate::config::{TOPIC_CONFIGS, TopicConfig};
use crate::error_code;

pub async fn handle(call: &Call<'_>, req: CreateTopicsRequest) -> CreateTopicsResponse {
    let shard = call.shard();
    let mut topics = Vec::with_capacity(req.topics.len());
    for topic in req.topics {
        let mut result = CreatableTopicResult {
            name: topic.name.clone(),
            error_code: error_code::NONE,
            error_message: None,
            ..Default::default()
        };
        let outcome = async {
            if topic.replication_factor > 1 {
                return Err((
                    error_code::INVALID_REPLICATION_FACTOR,
                    format!(
                        "replication factor {} is larger than the 1 available broker",
                        topic.replication_factor
                    ),
                ));
            }
            let partitions = if !topic.assignments.is_empty() {
                topic.assignments.len() as i32
            } else if topic.num_partitions == -1 {
                shard.cluster.config.num_partitions
            } else {
                topic.num_partitions
            };
            let configs = admin::validate_configs(
                topic
                    .configs
                    .iter()
                    .filter_map(|c| c.value.as_deref().map(|v| (c.name.as_str(), v))),
            )?;
            admin::create_topic(shard, &topic.name, partitions, configs, req.validate_only).await
        }
        .await;
        match outcome {
            Ok(meta) => {
                result.topic_id = meta.uuid();
                result.num_partitions = meta.partitions;
                result.replication_factor = 1;
                result.configs = Some(
                    TOPIC_CONFIGS
                        .iter()
                        .filter_map(|def| {
                            let (value, source) = TopicConfig::resolve(
                                def.name,
                                &meta.configs,
                                &shard.cluster.config,
                            )?;
                            Some(CreatableTopicConfigs {
                                name: def.name.to_string(),
                                value: Some(value),
                                read_only: false,
                                config_source: source as i8,
                                is_sensitive: false,
                            })
                        })
                        .collect(),
                );
            }
            Err((code, message)) => {
                result.error_code = code;
                result.error_message = Some(message);
                result.configs = None;
            }
        }
        topics.push(result);
    }
    CreateTopicsResponse {
        topics,
        ..Default::default()
    }
}
