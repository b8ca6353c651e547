//! OffsetCommit (key 8): store consumers' positions durably.

use protocol::offset_commit_request::OffsetCommitRequest;
use protocol::offset_commit_response::{
    OffsetCommitResponse, OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};

use super::Call;
use crate::error_code;
use crate::group_service::{GroupOp, GroupReply};

pub async fn handle(call: &Call<'_>, req: OffsetCommitRequest) -> OffsetCommitResponse {
    let shard = call.shard();
    let mut entries = Vec::new();
    let mut unknown = Vec::new();
    for t in &req.topics {
        let count = shard.cluster.topics.partition_count(&t.name);
        for p in &t.partitions {
            if count.is_some_and(|n| p.partition_index >= 0 && p.partition_index < n) {
                entries.push((
                    t.name.clone(),
                    p.partition_index,
                    p.committed_offset,
                    p.committed_leader_epoch,
                    p.committed_metadata.clone(),
                ));
            } else {
                unknown.push((t.name.clone(), p.partition_index));
            }
        }
    }
    let mut results: Vec<(String, i32, i16)> = unknown
        .into_iter()
        .map(|(t, p)| (t, p, error_code::UNKNOWN_TOPIC_OR_PARTITION))
        .collect();
    if !entries.is_empty() {
        let keys: Vec<(String, i32)> = entries.iter().map(|e| (e.0.clone(), e.1)).collect();
        let op = GroupOp::Commit {
            group_id: req.group_id.clone(),
            generation_id: req.generation_id,
            member_id: req.member_id.clone(),
            group_instance_id: req.group_instance_id.clone(),
            entries,
        };
        match shard.group_op(&req.group_id, op).await {
            GroupReply::Committed(list) => results.extend(list),
            GroupReply::Error(code) => results.extend(keys.into_iter().map(|(t, p)| (t, p, code))),
            other => unreachable!("commit answered with {other:?}"),
        }
    }
    let topics = req
        .topics
        .iter()
        .map(|t| OffsetCommitResponseTopic {
            name: t.name.clone(),
            partitions: t
                .partitions
                .iter()
                .map(|p| OffsetCommitResponsePartition {
                    partition_index: p.partition_index,
                    error_code: results
                        .iter()
                        .find(|(rt, rp, _)| *rt == t.name && *rp == p.partition_index)
                        .map_or(error_code::UNKNOWN_SERVER_ERROR, |r| r.2),
                })
                .collect(),
        })
        .collect();
    OffsetCommitResponse {
        topics,
        ..Default::default()
    }
}
