//! DescribeGroups (key 15): state, protocol and members of groups, each
//! asked of its coordinator shard.

use futures_util::future::join_all;
use protocol::describe_groups_request::DescribeGroupsRequest;
use protocol::describe_groups_response::{DescribeGroupsResponse, DescribedGroup};

use super::Call;
use crate::group_service::{GroupOp, GroupReply};

pub async fn handle(call: &Call<'_>, req: DescribeGroupsRequest) -> DescribeGroupsResponse {
    let shard = call.shard();
    let replies = join_all(req.groups.iter().map(|group| {
        shard.group_op(
            group,
            GroupOp::Describe {
                req: DescribeGroupsRequest {
                    groups: vec![group.clone()],
                    include_authorized_operations: req.include_authorized_operations,
                },
                version: call.version,
            },
        )
    }))
    .await;
    let mut groups = Vec::with_capacity(req.groups.len());
    for (group, reply) in req.groups.iter().zip(replies) {
        match reply {
            GroupReply::Describe(resp) => groups.extend(resp.groups),
            GroupReply::Error(code) => groups.push(DescribedGroup {
                error_code: code,
                group_id: group.clone(),
                ..Default::default()
            }),
            other => unreachable!("describe answered with {other:?}"),
        }
    }
    DescribeGroupsResponse {
        groups,
        ..Default::default()
    }
}
