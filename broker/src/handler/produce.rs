//! Produce (key 0): append record batches, acks 0, 1 or all (-1).

use futures_util::future::join_all;
use protocol::produce_request::ProduceRequest;
use protocol::produce_response::{PartitionProduceResponse, ProduceResponse, TopicProduceResponse};

use super::Call;
use crate::error_code;
use crate::shard::{PartitionOp, PartitionReply};
use crate::topics::TopicPartition;

pub async fn handle(call: &Call<'_>, req: ProduceRequest) -> ProduceResponse {
    let shard = call.shard();
    let acks = req.acks;
    let valid_acks = matches!(acks, -1..=1);
    if req.transactional_id.is_some() {
        tracing::warn!(
            client = call.client_id(),
            "transactional produce is not supported"
        );
    }
    let mut responses = Vec::with_capacity(req.topic_data.len());
    for topic in req.topic_data {
        let name = topic.name;
        let futures = topic.partition_data.into_iter().map(|p| {
            let tp = TopicPartition::new(name.clone(), p.index);
            let transactional = req.transactional_id.is_some();
            async move {
                if !valid_acks {
                    return (
                        p.index,
                        error_response(p.index, error_code::INVALID_REQUIRED_ACKS),
                    );
                }
                if transactional {
                    return (
                        p.index,
                        error_response(p.index, error_code::UNSUPPORTED_FOR_MESSAGE_FORMAT),
                    );
                }
                let reply = shard
                    .partition_op(
                        tp,
                        PartitionOp::Produce {
                            records: p.records,
                            acks,
                        },
                    )
                    .await;
                let resp = match reply {
                    PartitionReply::Produced(r) => PartitionProduceResponse {
                        index: p.index,
                        error_code: r.error_code,
                        base_offset: r.base_offset,
                        log_append_time_ms: r.log_append_time_ms,
                        log_start_offset: r.log_start_offset,
                        error_message: r.error_message,
                        ..Default::default()
                    },
                    PartitionReply::Done(Err(code)) => error_response(p.index, code),
                    _ => error_response(p.index, error_code::UNKNOWN_SERVER_ERROR),
                };
                (p.index, resp)
            }
        });
        let partition_responses = join_all(futures)
            .await
            .into_iter()
            .map(|(_, r)| r)
            .collect();
        responses.push(TopicProduceResponse {
            name,
            partition_responses,
        });
    }
    ProduceResponse {
        responses,
        ..Default::default()
    }
}

fn error_response(index: i32, code: i16) -> PartitionProduceResponse {
    PartitionProduceResponse {
        index,
        error_code: code,
        base_offset: -1,
        log_append_time_ms: -1,
        log_start_offset: -1,
        ..Default::default()
    }
}
