//! DeleteRecords (key 21): move partitions' log start offsets forward.

use futures_util::future::join_all;
use protocol::delete_records_request::DeleteRecordsRequest;
use protocol::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsResponse, DeleteRecordsTopicResult,
};

use super::Call;
use crate::error_code;
use crate::shard::{PartitionOp, PartitionReply};
use crate::topics::TopicPartition;

pub async fn handle(call: &Call<'_>, req: DeleteRecordsRequest) -> DeleteRecordsResponse {
    let shard = call.shard();
    let mut topics = Vec::with_capacity(req.topics.len());
    for topic in req.topics {
        let replies = join_all(topic.partitions.iter().map(|p| {
            shard.partition_op(
                TopicPartition::new(topic.name.clone(), p.partition_index),
                PartitionOp::DeleteRecords { offset: p.offset },
            )
        }))
        .await;
        let partitions = topic
            .partitions
            .iter()
            .zip(replies)
            .map(|(p, reply)| {
                let (low_watermark, error_code) = match reply {
                    PartitionReply::Offset(Ok((low, _))) => (low, error_code::NONE),
                    PartitionReply::Offset(Err(code)) | PartitionReply::Done(Err(code)) => {
                        (-1, code)
                    }
                    _ => (-1, error_code::UNKNOWN_SERVER_ERROR),
                };
                DeleteRecordsPartitionResult {
                    partition_index: p.partition_index,
                    low_watermark,
                    error_code,
                }
            })
            .collect();
        topics.push(DeleteRecordsTopicResult {
            name: topic.name,
            partitions,
        });
    }
    DeleteRecordsResponse {
        topics,
        ..Default::default()
    }
}
