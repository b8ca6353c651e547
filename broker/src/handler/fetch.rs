//! Fetch (key 1): read record batches, with long polling.
//!
//! The first pass reads every partition at once, each within its share of
//! the response budget. If fewer than `min_bytes`
//! came back and `max_wait_ms` allows, the handler waits until any requested
//! partition gets new data (or the wait runs out) and reads again. Fetch
//! sessions are not kept: `session_id` 0 tells clients to send full requests.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::future::{join_all, select_all};
use protocol::fetch_request::FetchRequest;
use protocol::fetch_response::{FetchResponse, FetchableTopicResponse, PartitionData};

use super::Call;
use crate::error_code;
use crate::shard::{PartitionOp, PartitionReply, Shard};
use crate::topics::TopicPartition;

/// The broker's cap on one fetch response (Kafka's `fetch.max.bytes`).
const FETCH_MAX_BYTES: usize = 55 << 20;

struct Wanted {
    topic_index: usize,
    tp: TopicPartition,
    offset: i64,
    max_bytes: usize,
}

/// Reads the wanted partitions concurrently within the response budget:
/// walking the request in order, each partition reserves what it may read,
/// `min(partition_max_bytes, what is left of total_max)`; partitions with
/// nothing left to reserve, and repeated partitions, are answered with their
/// offsets only. A read may exceed its reservation by one batch (Kafka's rule
/// that a consumer always progresses), so memory per request stays near
/// `total_max` whatever the request asks.
async fn read_all(
    shard: &Shard,
    wanted: &[Wanted],
    total_max: usize,
) -> (Vec<PartitionData>, usize) {
    let mut seen = HashSet::with_capacity(wanted.len());
    let mut left = total_max;
    let budgets: Vec<usize> = wanted
        .iter()
        .map(|w| {
            if !seen.insert(w.tp.clone()) {
                return 0;
            }
            let budget = w.max_bytes.min(left);
            left -= budget;
            budget
        })
        .collect();
    let replies = join_all(wanted.iter().zip(&budgets).map(|(w, budget)| {
        shard.partition_op(
            w.tp.clone(),
            PartitionOp::Read {
                offset: w.offset,
                max_bytes: *budget,
            },
        )
    }))
    .await;
    let mut out = Vec::with_capacity(wanted.len());
    let mut total = 0usize;
    for (w, reply) in wanted.iter().zip(replies) {
        let mut data = PartitionData {
            partition_index: w.tp.partition,
            ..Default::default()
        };
        match reply {
            PartitionReply::Read(r) => {
                data.error_code = r.error_code;
                data.high_watermark = r.high_watermark;
                data.last_stable_offset = r.high_watermark;
                data.log_start_offset = r.log_start_offset;
                let records = r.records.unwrap_or_default();
                total += records.len();
                data.records = Some(records);
            }
            PartitionReply::Done(Err(code)) => {
                data.error_code = code;
                data.high_watermark = -1;
                data.records = Some(Bytes::new());
            }
            _ => data.error_code = error_code::UNKNOWN_SERVER_ERROR,
        }
        out.push(data);
    }
    (out, total)
}

pub async fn handle(call: &Call<'_>, req: FetchRequest) -> FetchResponse {
    let shard = call.shard();
    let mut wanted = Vec::new();
    for (topic_index, topic) in req.topics.iter().enumerate() {
        for p in &topic.partitions {
            wanted.push(Wanted {
                topic_index,
                tp: TopicPartition::new(topic.topic.clone(), p.partition),
                offset: p.fetch_offset,
                max_bytes: p.partition_max_bytes.max(0) as usize,
            });
        }
    }
    let total_max = if req.max_bytes <= 0 {
        FETCH_MAX_BYTES
    } else {
        (req.max_bytes as usize).min(FETCH_MAX_BYTES)
    };
    let min_bytes = req.min_bytes.max(0) as usize;
    let deadline = Instant::now() + Duration::from_millis(req.max_wait_ms.max(0) as u64);
    let (mut partitions, mut total) = read_all(shard, &wanted, total_max).await;
    while total < min_bytes.max(1)
        && !wanted.is_empty()
        && !shard.cluster.is_shutting_down()
        && partitions.iter().all(|p| p.error_code == error_code::NONE)
    {
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        let remaining = deadline - now;
        let waits = wanted.iter().map(|w| {
            Box::pin(shard.partition_op(
                w.tp.clone(),
                PartitionOp::WaitForData {
                    offset: w.offset.max(0),
                    timeout: remaining,
                },
            ))
        });
        let _ = select_all(waits).await;
        (partitions, total) = read_all(shard, &wanted, total_max).await;
        if min_bytes <= 1 {
            break;
        }
    }
    let mut responses: Vec<FetchableTopicResponse> = req
        .topics
        .iter()
        .map(|t| FetchableTopicResponse {
            topic: t.topic.clone(),
            partitions: Vec::new(),
        })
        .collect();
    for (w, data) in wanted.iter().zip(partitions) {
        responses[w.topic_index].partitions.push(data);
    }
    FetchResponse {
        responses,
        ..Default::default()
    }
}
