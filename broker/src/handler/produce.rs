//! Produce (key 0): append record batches, acks 0, 1 or all (-1).
//!
//! Two halves: [`append`] writes every partition's batches (in request order,
//! before the connection reads its next request), then for acks=all [`sync`]
//! makes them durable while the connection goes on reading, so several
//! requests of one producer share an fdatasync.

use futures_util::future::join_all;
use protocol::produce_request::ProduceRequest;
use protocol::produce_response::{
    BatchIndexAndErrorMessage, PartitionProduceResponse, ProduceResponse, TopicProduceResponse,
};

use super::Call;
use crate::error_code;
use crate::registry::{Rejected, Validation};
use crate::shard::{PartitionOp, PartitionReply, Shard};
use crate::topics::TopicPartition;

/// Appends every partition's batches; returns the response so far and the
/// partitions that still need an fdatasync before an acks=all answer.
pub async fn append(
    call: &Call<'_>,
    req: ProduceRequest,
) -> (ProduceResponse, Vec<TopicPartition>) {
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
        // Internal topics are written by the broker only: a client's produce
        // could forge committed offsets. One registry lookup per topic.
        let meta = shard.cluster.topics.get(&name);
        let internal = meta.as_ref().is_some_and(|m| m.internal);
        // Schema validation (registry.rs): decided once per topic, so a
        // topic without it costs no per-record work.
        let validation = meta
            .as_ref()
            .and_then(|m| Validation::for_topic(&m.configs, &shard.cluster.config));
        let futures = topic.partition_data.into_iter().map(|p| {
            let tp = TopicPartition::new(name.clone(), p.index);
            let transactional = req.transactional_id.is_some();
            async move {
                if internal {
                    return (
                        p.index,
                        error_response(p.index, error_code::INVALID_TOPIC_EXCEPTION),
                    );
                }
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
                if let (Some(rules), Some(records)) = (validation, &p.records)
                    && let Err(rejected) = shard.cluster.schemas.check_records(rules, records)
                {
                    tracing::debug!(partition = %tp, reason = %rejected.message, "schema validation refused a produce");
                    return (p.index, rejected_response(p.index, rejected));
                }
                // The fdatasync of acks=all runs in `sync`, after the append.
                let append_acks = if acks == -1 { 1 } else { acks };
                let reply = shard
                    .partition_op(
                        tp,
                        PartitionOp::Produce {
                            records: p.records,
                            acks: append_acks,
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
    let to_sync = responses
        .iter()
        .flat_map(|t| {
            t.partition_responses
                .iter()
                .filter(|p| p.error_code == error_code::NONE)
                .map(|p| TopicPartition::new(t.name.clone(), p.index))
        })
        .collect();
    let resp = ProduceResponse {
        responses,
        ..Default::default()
    };
    (resp, to_sync)
}

/// Makes the appended partitions durable; a partition whose fdatasync fails
/// gets its error code instead of success.
pub async fn sync(
    shard: &Shard,
    mut resp: ProduceResponse,
    to_sync: Vec<TopicPartition>,
) -> ProduceResponse {
    let results = join_all(
        to_sync
            .iter()
            .map(|tp| shard.partition_op(tp.clone(), PartitionOp::Sync)),
    )
    .await;
    for (tp, result) in to_sync.iter().zip(results) {
        let code = match result {
            PartitionReply::Done(Ok(())) => continue,
            PartitionReply::Done(Err(code)) => code,
            _ => error_code::UNKNOWN_SERVER_ERROR,
        };
        if let Some(p) = resp
            .responses
            .iter_mut()
            .filter(|t| t.name == tp.topic)
            .flat_map(|t| t.partition_responses.iter_mut())
            .find(|p| p.index == tp.partition)
        {
            *p = error_response(p.index, code);
        }
    }
    resp
}

/// INVALID_RECORD with the per-record errors of schema validation.
fn rejected_response(index: i32, rejected: Rejected) -> PartitionProduceResponse {
    PartitionProduceResponse {
        error_message: Some(rejected.message),
        record_errors: rejected
            .records
            .into_iter()
            .map(|(batch_index, message)| BatchIndexAndErrorMessage {
                batch_index,
                batch_index_error_message: Some(message),
            })
            .collect(),
        ..error_response(index, error_code::INVALID_RECORD)
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
