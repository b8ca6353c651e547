//! CreatePartitions (key 37): grow a topic's partition count.

use protocol::create_partitions_request::CreatePartitionsRequest;
use protocol::create_partitions_response::{CreatePartitionsResponse, CreatePartitionsTopicResult};

use super::Call;
use crate::admin;
use crate::error_code;

pub async fn handle(call: &Call<'_>, req: CreatePartitionsRequest) -> CreatePartitionsResponse {
    let mut results = Vec::with_capacity(req.topics.len());
    for topic in req.topics {
        let outcome =
            admin::create_partitions(call.shard(), &topic.name, topic.count, req.validate_only)
                .await;
        let (error_code, error_message) = match outcome {
            Ok(()) => (error_code::NONE, None),
            Err((code, message)) => (code, Some(message)),
        };
        results.push(CreatePartitionsTopicResult {
            name: topic.name,
            error_code,
            error_message,
        });
    }
    CreatePartitionsResponse {
        results,
        ..Default::default()
    }
}
