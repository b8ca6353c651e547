//! DeleteGroups (key 42): delete empty groups and their committed offsets.

use futures_util::future::join_all;
use protocol::delete_groups_request::DeleteGroupsRequest;
use protocol::delete_groups_response::{DeletableGroupResult, DeleteGroupsResponse};

use super::Call;
use crate::group_service::{GroupOp, GroupReply};

pub async fn handle(call: &Call<'_>, req: DeleteGroupsRequest) -> DeleteGroupsResponse {
    let shard = call.shard();
    let replies = join_all(req.groups_names.iter().map(|group| {
        shard.group_op(
            group,
            GroupOp::Delete {
                group_ids: vec![group.clone()],
            },
        )
    }))
    .await;
    let mut results = Vec::with_capacity(req.groups_names.len());
    for (group, reply) in req.groups_names.iter().zip(replies) {
        match reply {
            GroupReply::Deleted(list) => {
                results.extend(list.into_iter().map(|(group_id, error_code)| {
                    DeletableGroupResult {
                        group_id,
                        error_code,
                    }
                }))
            }
            GroupReply::Error(code) => results.push(DeletableGroupResult {
                group_id: group.clone(),
                error_code: code,
            }),
            other => unreachable!("delete answered with {other:?}"),
        }
    }
    DeleteGroupsResponse {
        results,
        ..Default::default()
    }
}
