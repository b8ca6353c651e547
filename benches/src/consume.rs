//! The consumer: one thread and connection per share of the partitions, one
//! Fetch in flight on each (the next fetch offset comes from the previous
//! answer, as in every Kafka consumer).

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use protocol::fetch_request::{FetchPartition, FetchRequest, FetchTopic};
use protocol::fetch_response::FetchResponse;

use crate::connection::Connection;
use crate::kafka_error::{self, KafkaError};
use crate::records;
use crate::stats::{self, Counters, Latencies};

const FETCH_VERSION: i16 = 12;

#[derive(Debug, Clone)]
pub struct ConsumeOptions {
    pub broker: SocketAddr,
    pub topic: String,
    pub connections: usize,
    /// Give up after this long even if `stop_at` is not reached.
    pub duration: Duration,
    pub max_wait: Duration,
    pub max_bytes: i32,
    pub partition_max_bytes: i32,
    pub check_crcs: bool,
    /// Record end-to-end latency from the value stamps.
    pub end_to_end: bool,
    /// MB/s of values over all connections, at most (each connection
    /// takes its share); `None` reads as fast as the broker answers.
    pub rate: Option<f64>,
}

/// Where consumption stops: every partition's offset, once known. A
/// consumer that reached them all stops; before they are set it keeps
/// going until the duration runs out.
pub type StopAt = Arc<OnceLock<Vec<i64>>>;

pub struct ConsumeOutcome {
    pub elapsed: Duration,
    /// Fetch request latency: sent to answered.
    pub fetch_latencies: Latencies,
    /// Per record: received minus the value stamp (with `end_to_end`).
    pub end_to_end: Latencies,
}

/// Consumes the partitions from `start` (one offset per partition).
pub fn run(
    opts: &ConsumeOptions,
    start: Vec<i64>,
    stop_at: StopAt,
    counters: Arc<Counters>,
) -> anyhow::Result<ConsumeOutcome> {
    let began = Instant::now();
    let connections = opts.connections.clamp(1, start.len().max(1));
    let workers: Vec<_> = (0..connections)
        .map(|c| {
            let partitions: Vec<(i32, i64)> = start
                .iter()
                .enumerate()
                .filter(|(p, _)| p % connections == c)
                .map(|(p, &o)| (p as i32, o))
                .collect();
            // The connections actually used (a rate is split among them).
            let opts = ConsumeOptions {
                connections,
                ..opts.clone()
            };
            let stop_at = stop_at.clone();
            let counters = counters.clone();
            thread::Builder::new()
                .name(format!("consume-{c}"))
                .spawn(move || fetch_loop(&opts, partitions, &stop_at, &counters))
        })
        .collect::<Result<_, _>>()?;
    let mut fetch_latencies = Latencies::default();
    let mut end_to_end = Latencies::default();
    let mut first_error = None;
    for w in workers {
        match w.join() {
            Ok(Ok((f, e))) => {
                fetch_latencies.merge(f);
                end_to_end.merge(e);
            }
            Ok(Err(e)) => {
                first_error.get_or_insert(e);
            }
            Err(_) => {
                first_error.get_or_insert(anyhow::anyhow!("a consumer thread panicked"));
            }
        }
    }
    if let Some(e) = first_error {
        return Err(e);
    }
    Ok(ConsumeOutcome {
        elapsed: began.elapsed(),
        fetch_latencies,
        end_to_end,
    })
}

fn fetch_loop(
    opts: &ConsumeOptions,
    mut partitions: Vec<(i32, i64)>,
    stop_at: &StopAt,
    counters: &Counters,
) -> anyhow::Result<(Latencies, Latencies)> {
    let mut conn = Connection::connect(opts.broker)?;
    let began = Instant::now();
    let deadline = began + opts.duration;
    // With a rate: the bytes of values this connection may have read by
    // now; ahead of that, it sleeps before its next fetch.
    let bytes_per_second = opts.rate.map(|r| r * 1e6 / opts.connections.max(1) as f64);
    let mut value_bytes = 0u64;
    let mut fetch_latencies = Latencies::default();
    let mut end_to_end = Latencies::default();
    let done = |partitions: &[(i32, i64)]| {
        stop_at.get().is_some_and(|ends| {
            partitions
                .iter()
                .all(|&(p, o)| ends.get(p as usize).is_none_or(|&end| o >= end))
        })
    };
    while Instant::now() < deadline && !partitions.is_empty() && !done(&partitions) {
        let req = FetchRequest {
            replica_id: -1,
            max_wait_ms: opts.max_wait.as_millis() as i32,
            min_bytes: 1,
            max_bytes: opts.max_bytes,
            // No fetch session: full requests every time.
            session_id: 0,
            session_epoch: -1,
            topics: vec![FetchTopic {
                topic: opts.topic.clone(),
                partitions: partitions
                    .iter()
                    .map(|&(partition, fetch_offset)| FetchPartition {
                        partition,
                        fetch_offset,
                        partition_max_bytes: opts.partition_max_bytes,
                        ..Default::default()
                    })
                    .collect(),
            }],
            ..Default::default()
        };
        let sent = Instant::now();
        let resp: FetchResponse = conn.call(&req, FETCH_VERSION)?;
        fetch_latencies.record(sent.elapsed().as_micros() as u64);
        let received = stats::now_micros();
        if resp.error_code != kafka_error::NONE {
            return Err(KafkaError::new("Fetch", &opts.topic, None, resp.error_code, None).into());
        }
        for t in resp.responses {
            for data in t.partitions {
                if data.error_code != kafka_error::NONE {
                    return Err(KafkaError::new(
                        "Fetch",
                        &t.topic,
                        Some(data.partition_index),
                        data.error_code,
                        None,
                    )
                    .into());
                }
                let Some(bytes) = data.records else { continue };
                let mut on_stamp = |stamp: u64| end_to_end.record(received.saturating_sub(stamp));
                let fetched = records::read_fetched(
                    &bytes,
                    opts.check_crcs,
                    opts.end_to_end
                        .then_some(&mut on_stamp as &mut dyn FnMut(u64)),
                )
                .with_context(|| format!("{}-{}", t.topic, data.partition_index))?;
                counters.add(fetched.records, fetched.value_bytes, fetched.batch_bytes);
                value_bytes += fetched.value_bytes;
                if let Some(next) = fetched.next_offset
                    && let Some(slot) = partitions
                        .iter_mut()
                        .find(|(p, _)| *p == data.partition_index)
                {
                    slot.1 = slot.1.max(next);
                }
            }
        }
        if let Some(rate) = bytes_per_second {
            let due = began + Duration::from_secs_f64(value_bytes as f64 / rate);
            let now = Instant::now();
            if due > now {
                thread::sleep((due - now).min(deadline.saturating_duration_since(now)));
            }
        }
    }
    Ok((fetch_latencies, end_to_end))
}
