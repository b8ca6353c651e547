//! SyncGroup (key 14): the leader hands out assignments; every member gets
//! its own.

use protocol::sync_group_request::SyncGroupRequest;
use protocol::sync_group_response::SyncGroupResponse;

use super::Call;
use crate::group_service::{GroupOp, GroupReply};

pub async fn handle(call: &Call<'_>, req: SyncGroupRequest) -> SyncGroupResponse {
    let group = req.group_id.clone();
    let op = GroupOp::Sync {
        req,
        version: call.version,
    };
    match call.shard().group_op(&group, op).await {
        GroupReply::Sync(resp) => resp,
        GroupReply::Error(code) => SyncGroupResponse {
            error_code: code,
            ..Default::default()
        },
        other => unreachable!("sync answered with {other:?}"),
    }
}
