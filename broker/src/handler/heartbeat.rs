//! Heartbeat (key 12): keeps a member's session alive; tells it when a
//! rebalance is in progress.

use protocol::heartbeat_request::HeartbeatRequest;
use protocol::heartbeat_response::HeartbeatResponse;

use super::Call;
use crate::group_service::{GroupOp, GroupReply};

pub async fn handle(call: &Call<'_>, req: HeartbeatRequest) -> HeartbeatResponse {
    let group = req.group_id.clone();
    let op = GroupOp::Heartbeat {
        req,
        version: call.version,
    };
    match call.shard().group_op(&group, op).await {
        GroupReply::Heartbeat(resp) => resp,
        GroupReply::Error(code) => HeartbeatResponse {
            error_code: code,
            ..Default::default()
        },
        other => unreachable!("heartbeat answered with {other:?}"),
    }
}
