//! DeleteTopics (key 20): delete topics and their data, by name or id (v6).

use protocol::delete_topics_request::DeleteTopicsRequest;
use protocol::delete_topics_response::{DeletableTopicResult, DeleteTopicsResponse};

use super::Call;
use crate::admin;
use crate::error_code;

pub async fn handle(call: &Call<'_>, req: DeleteTopicsRequest) -> DeleteTopicsResponse {
    let shard = call.shard();
    let mut targets: Vec<(Option<String>, protocol::wire::Uuid)> = req
        .topic_names
        .into_iter()
        .map(|n| (Some(n), protocol::wire::Uuid::ZERO))
        .collect();
    targets.extend(req.topics.into_iter().map(|t| (t.name, t.topic_id)));
    let mut responses = Vec::with_capacity(targets.len());
    for (name, id) in targets {
        let meta = match &name {
            Some(n) => shard.cluster.topics.get(n),
            None => shard.cluster.topics.by_id(&id),
        };
        let mut result = DeletableTopicResult {
            name: name.clone(),
            topic_id: id,
            ..Default::default()
        };
        match meta {
            None => {
                result.error_code = error_code::UNKNOWN_TOPIC_OR_PARTITION;
                result.error_message = Some("unknown topic".into());
            }
            Some(meta) => {
                result.name = Some(meta.name.clone());
                result.topic_id = meta.uuid();
                if let Err((code, message)) = admin::delete_topic(shard, &meta.name).await {
                    result.error_code = code;
                    result.error_message = Some(message);
                }
            }
        }
        responses.push(result);
    }
    DeleteTopicsResponse {
        responses,
        ..Default::default()
    }
}
