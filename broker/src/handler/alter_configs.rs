//! AlterConfigs (key 33): replace a topic's whole set of explicit configs.

use protocol::alter_configs_request::AlterConfigsRequest;
use protocol::alter_configs_response::{AlterConfigsResourceResponse, AlterConfigsResponse};

use super::Call;
use super::describe_configs::RESOURCE_TOPIC;
use crate::admin;
use crate::error_code;

pub async fn handle(call: &Call<'_>, req: AlterConfigsRequest) -> AlterConfigsResponse {
    let shard = call.shard();
    let mut responses = Vec::with_capacity(req.resources.len());
    for res in req.resources {
        let outcome = async {
            if res.resource_type != RESOURCE_TOPIC {
                return Err((
                    error_code::INVALID_REQUEST,
                    format!(
                        "only topic configs can be altered (resource type {})",
                        res.resource_type
                    ),
                ));
            }
            if shard.cluster.topics.get(&res.resource_name).is_none() {
                return Err((
                    error_code::UNKNOWN_TOPIC_OR_PARTITION,
                    format!("topic {} does not exist", res.resource_name),
                ));
            }
            let configs = admin::validate_configs(
                res.configs
                    .iter()
                    .filter_map(|c| c.value.as_deref().map(|v| (c.name.as_str(), v))),
            )?;
            if req.validate_only {
                return Ok(());
            }
            admin::set_topic_configs(shard, &res.resource_name, configs).await
        }
        .await;
        let (error_code, error_message) = match outcome {
            Ok(()) => (error_code::NONE, None),
            Err((code, message)) => (code, Some(message)),
        };
        responses.push(AlterConfigsResourceResponse {
            error_code,
            error_message,
            resource_type: res.resource_type,
            resource_name: res.resource_name,
        });
    }
    AlterConfigsResponse {
        responses,
        ..Default::default()
    }
}
