//! OffsetFetch (key 9): consumers' committed positions; one group (v0-7) or
//! several (v8).

use protocol::offset_fetch_request::OffsetFetchRequest;
use protocol::offset_fetch_response::{
    OffsetFetchResponse, OffsetFetchResponseGroup, OffsetFetchResponsePartition,
    OffsetFetchResponsePartitions, OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};

use super::Call;
use crate::error_code;
use crate::group_service::{GroupOp, GroupReply};
use crate::offsets::Committed;

type Fetched = Result<Vec<(String, i32, Option<Committed>)>, i16>;

async fn fetch_group(
    call: &Call<'_>,
    group: &str,
    partitions: Option<Vec<(String, Vec<i32>)>>,
) -> Fetched {
    let op = GroupOp::FetchOffsets {
        group_id: group.to_string(),
        partitions,
    };
    match call.shard().group_op(group, op).await {
        GroupReply::Offsets(list) => Ok(list),
        GroupReply::Error(code) => Err(code),
        other => unreachable!("offset fetch answered with {other:?}"),
    }
}

/// One topic's partitions and their committed offsets.
type TopicOffsets = (String, Vec<(i32, Option<Committed>)>);

/// Groups the flat list by topic, keeping first-seen order.
fn by_topic(list: Vec<(String, i32, Option<Committed>)>) -> Vec<TopicOffsets> {
    let mut out: Vec<TopicOffsets> = Vec::new();
    for (t, p, c) in list {
        match out.iter_mut().find(|(name, _)| *name == t) {
            Some((_, v)) => v.push((p, c)),
            None => out.push((t, vec![(p, c)])),
        }
    }
    out
}

pub async fn handle(call: &Call<'_>, req: OffsetFetchRequest) -> OffsetFetchResponse {
    if call.version >= 8 {
        let mut group_ids = Vec::with_capacity(req.groups.len());
        for g in req.groups {
            let wanted = g.topics.map(|ts| {
                ts.into_iter()
                    .map(|t| (t.name, t.partition_indexes))
                    .collect()
            });
            let fetched = fetch_group(call, &g.group_id, wanted).await;
            let (topics, error_code) = match fetched {
                Ok(list) => (
                    by_topic(list)
                        .into_iter()
                        .map(|(name, parts)| OffsetFetchResponseTopics {
                            name,
                            partitions: parts
                                .into_iter()
                                .map(|(p, c)| OffsetFetchResponsePartitions {
                                    partition_index: p,
                                    committed_offset: c.as_ref().map_or(-1, |c| c.offset),
                                    committed_leader_epoch: c
                                        .as_ref()
                                        .map_or(-1, |c| c.leader_epoch),
                                    metadata: c.and_then(|c| c.metadata).or(Some(String::new())),
                                    error_code: error_code::NONE,
                                })
                                .collect(),
                        })
                        .collect(),
                    error_code::NONE,
                ),
                Err(code) => (Vec::new(), code),
            };
            group_ids.push(OffsetFetchResponseGroup {
                group_id: g.group_id,
                topics,
                error_code,
            });
        }
        return OffsetFetchResponse {
            group_ids,
            ..Default::default()
        };
    }
    let wanted = req.topics.map(|ts| {
        ts.into_iter()
            .map(|t| (t.name, t.partition_indexes))
            .collect()
    });
    match fetch_group(call, &req.group_id, wanted).await {
        Ok(list) => OffsetFetchResponse {
            topics: by_topic(list)
                .into_iter()
                .map(|(name, parts)| OffsetFetchResponseTopic {
                    name,
                    partitions: parts
                        .into_iter()
                        .map(|(p, c)| OffsetFetchResponsePartition {
                            partition_index: p,
                            committed_offset: c.as_ref().map_or(-1, |c| c.offset),
                            committed_leader_epoch: c.as_ref().map_or(-1, |c| c.leader_epoch),
                            metadata: c.and_then(|c| c.metadata).or(Some(String::new())),
                            error_code: error_code::NONE,
                        })
                        .collect(),
                })
                .collect(),
            ..Default::default()
        },
        Err(code) => OffsetFetchResponse {
            error_code: code,
            ..Default::default()
        },
    }
}
