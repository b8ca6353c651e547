//! AlterConfigs (key 33): replace a topic's whole set of explicit configs.

use protocol::alter_configs_request::AlterConfigsRequest;
use protocol::alter_configs_response::{AlterConfigsResourceResponse, AlterConfigsResponse};

use super::Call;
use crate::admin;

pub async fn handle(call: &Call<'_>, req: AlterConfigsRequest) -> AlterConfigsResponse {
    let shard = call.shard();
    let mut responses = Vec::with_capacity(req.resources.len());
    for res in req.resources {
        let outcome = async {
            admin::alterable_topic(shard, res.resource_type, &res.resource_name)?;
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
        let (error_code, error_message) = admin::outcome_codes(outcome);
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
