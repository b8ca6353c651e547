//! IncrementalAlterConfigs (key 44): set or delete individual topic configs.

use protocol::incremental_alter_configs_request::IncrementalAlterConfigsRequest;
use protocol::incremental_alter_configs_response::{
    AlterConfigsResourceResponse, IncrementalAlterConfigsResponse,
};

use super::Call;
use crate::admin;
use crate::config::{topic_config_def, validate_topic_config};
use crate::error_code;

const OP_SET: i8 = 0;
const OP_DELETE: i8 = 1;

pub async fn handle(
    call: &Call<'_>,
    req: IncrementalAlterConfigsRequest,
) -> IncrementalAlterConfigsResponse {
    let shard = call.shard();
    let mut responses = Vec::with_capacity(req.resources.len());
    for res in req.resources {
        let outcome = async {
            let meta = admin::alterable_topic(shard, res.resource_type, &res.resource_name)?;
            let mut configs = meta.configs.clone();
            for c in &res.configs {
                match c.config_operation {
                    OP_SET => {
                        let value = c.value.as_deref().unwrap_or("");
                        let (name, value) = validate_topic_config(&c.name, value)
                            .map_err(|e| admin::config_error(&e))?;
                        configs.insert(name, value);
                    }
                    OP_DELETE => {
                        let def = topic_config_def(&c.name).ok_or_else(|| {
                            (
                                error_code::INVALID_CONFIG,
                                format!("unknown topic config {}", c.name),
                            )
                        })?;
                        configs.remove(def.name);
                    }
                    op => {
                        return Err((
                            error_code::INVALID_CONFIG,
                            format!(
                                "operation {op} on {} needs a list-valued config; none is",
                                c.name
                            ),
                        ));
                    }
                }
            }
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
    IncrementalAlterConfigsResponse {
        responses,
        ..Default::default()
    }
}
