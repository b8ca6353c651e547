//! JoinGroup (key 11): join a consumer group; answered when the rebalance
//! completes (possibly much later).

use protocol::join_group_request::JoinGroupRequest;
use protocol::join_group_response::JoinGroupResponse;

use super::Call;
use crate::group_service::{GroupOp, GroupReply};

pub async fn handle(call: &Call<'_>, req: JoinGroupRequest) -> JoinGroupResponse {
    let group = req.group_id.clone();
    let op = GroupOp::Join {
        client_id: call.client_id().to_string(),
        client_host: format!("/{}", call.ctx.peer.ip()),
        req,
        version: call.version,
    };
    match call.shard().group_op(&group, op).await {
        GroupReply::Join(resp) => resp,
        GroupReply::Error(code) => JoinGroupResponse {
            error_code: code,
            generation_id: -1,
            ..Default::default()
        },
        other => unreachable!("join answered with {other:?}"),
    }
}
