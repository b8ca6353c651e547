//! LeaveGroup (key 13): members leave; the rest rebalance.

use protocol::leave_group_request::LeaveGroupRequest;
use protocol::leave_group_response::LeaveGroupResponse;

use super::Call;
use crate::group_service::{GroupOp, GroupReply};

pub async fn handle(call: &Call<'_>, req: LeaveGroupRequest) -> LeaveGroupResponse {
    let group = req.group_id.clone();
    let op = GroupOp::Leave {
        req,
        version: call.version,
    };
    match call.shard().group_op(&group, op).await {
        GroupReply::Leave(resp) => resp,
        GroupReply::Error(code) => LeaveGroupResponse {
            error_code: code,
            ..Default::default()
        },
        other => unreachable!("leave answered with {other:?}"),
    }
}
