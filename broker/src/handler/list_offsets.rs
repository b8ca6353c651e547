//! ListOffsets (key 2): earliest (-2), latest (-1), max timestamp (-3), or
//! the first offset at or after a timestamp.

use futures_util::future::join_all;
use protocol::list_offsets_request::ListOffsetsRequest;
use protocol::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsResponse, ListOffsetsTopicResponse,
};

use super::Call;
use crate::error_code;
use crate::shard::{PartitionOp, PartitionReply};
use crate::topics::TopicPartition;

pub async fn handle(call: &Call<'_>, req: ListOffsetsRequest) -> ListOffsetsResponse {
    let shard = call.shard();
    let mut topics = Vec::with_capacity(req.topics.len());
    for topic in req.topics {
        let futures = topic.partitions.iter().map(|p| {
            shard.partition_op(
                TopicPartition::new(topic.name.clone(), p.partition_index),
                PartitionOp::ListOffset {
                    timestamp: p.timestamp,
                },
            )
        });
        let replies = join_all(futures).await;
        let partitions = topic
            .partitions
            .iter()
            .zip(replies)
            .map(|(p, reply)| {
                let mut out = ListOffsetsPartitionResponse {
                    partition_index: p.partition_index,
                    ..Default::default()
                };
                match reply {
                    PartitionReply::Offset(Ok((offset, timestamp))) => {
                        out.offset = offset;
                        out.timestamp = timestamp;
                        out.leader_epoch = 0;
                    }
                    PartitionReply::Offset(Err(code)) | PartitionReply::Done(Err(code)) => {
                        out.error_code = code
                    }
                    _ => out.error_code = error_code::UNKNOWN_SERVER_ERROR,
                }
                out
            })
            .collect();
        topics.push(ListOffsetsTopicResponse {
            name: topic.name,
            partitions,
        });
    }
    ListOffsetsResponse {
        topics,
        ..Default::default()
    }
}
