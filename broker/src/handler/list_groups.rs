//! ListGroups (key 16): every group of every shard.

use futures_util::future::join_all;
use protocol::list_groups_request::ListGroupsRequest;
use protocol::list_groups_response::ListGroupsResponse;

use super::Call;
use crate::error_code;
use crate::group_service::{GroupOp, GroupReply};

pub async fn handle(call: &Call<'_>, req: ListGroupsRequest) -> ListGroupsResponse {
    let shard = call.shard();
    let replies = join_all((0..shard.cluster.shards()).map(|s| {
        shard.group_op_on(
            s,
            GroupOp::List {
                req: req.clone(),
                version: call.version,
            },
        )
    }))
    .await;
    let mut out = ListGroupsResponse::default();
    for reply in replies {
        match reply {
            GroupReply::List(resp) => {
                if resp.error_code != error_code::NONE {
                    out.error_code = resp.error_code;
                }
                out.groups.extend(resp.groups);
            }
            GroupReply::Error(code) => out.error_code = code,
            other => unreachable!("list answered with {other:?}"),
        }
    }
    out
}
