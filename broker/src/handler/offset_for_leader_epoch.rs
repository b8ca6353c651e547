//! OffsetForLeaderEpoch (key 23): the end offset of a leader epoch. A single
//! broker never changes leader, so every partition has one epoch, 0, ending at
//! the log end.

use futures_util::future::join_all;
use protocol::offset_for_leader_epoch_request::OffsetForLeaderEpochRequest;
use protocol::offset_for_leader_epoch_response::{
    OffsetForLeaderEpochResponse, OffsetForLeaderPartitionResult, OffsetForLeaderTopicResult,
};

use super::Call;
use crate::error_code;
use crate::shard::{PartitionOp, PartitionReply};
use crate::topics::TopicPartition;

pub async fn handle(
    call: &Call<'_>,
    req: OffsetForLeaderEpochRequest,
) -> OffsetForLeaderEpochResponse {
    let shard = call.shard();
    let mut topics = Vec::with_capacity(req.topics.len());
    for topic in req.topics {
        let replies = join_all(topic.partitions.iter().map(|p| {
            shard.partition_op(
                TopicPartition::new(topic.topic.clone(), p.partition),
                PartitionOp::EndOffset,
            )
        }))
        .await;
        let partitions = topic
            .partitions
            .iter()
            .zip(replies)
            .map(|(p, reply)| {
                let mut out = OffsetForLeaderPartitionResult {
                    partition: p.partition,
                    ..Default::default()
                };
                match reply {
                    PartitionReply::Offset(Ok((end, _))) => {
                        out.leader_epoch = 0;
                        out.end_offset = end;
                    }
                    PartitionReply::Offset(Err(code)) | PartitionReply::Done(Err(code)) => {
                        out.error_code = code;
                        out.end_offset = -1;
                    }
                    _ => out.error_code = error_code::UNKNOWN_SERVER_ERROR,
                }
                out
            })
            .collect();
        topics.push(OffsetForLeaderTopicResult {
            topic: topic.topic,
            partitions,
        });
    }
    OffsetForLeaderEpochResponse {
        topics,
        ..Default::default()
    }
}
