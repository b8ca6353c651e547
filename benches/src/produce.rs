//! The producer: one writer and one reader thread per connection, up to
//! `in_flight` requests outstanding on each.
//!
//! Without a rate, every request is the same frame (one full batch per
//! partition of the connection), encoded once and restamped in place before
//! each send: new timestamps, value stamps and CRCs, no copy. With a rate,
//! records become due on a fixed schedule; a request carries the records due
//! when it is sent, each stamped with the time it became due, so producer
//! queueing counts in the end-to-end latency.

use std::net::SocketAddr;
use std::ops::Range;
use std::sync::Arc;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use bytes::Bytes;
use protocol::produce_request::{PartitionProduceData, ProduceRequest, TopicProduceData};
use protocol::produce_response::ProduceResponse;

use crate::connection::{self, Connection, RequestWriter, ResponseReader};
use crate::kafka_error::{self, KafkaError};
use crate::records;
use crate::stats::{self, Counters, Latencies};

const PRODUCE_VERSION: i16 = 9;
const TIMEOUT_MS: i32 = 30_000;

#[derive(Debug, Clone)]
pub struct ProduceOptions {
    pub broker: SocketAddr,
    pub topic: String,
    pub partitions: i32,
    pub record_size: usize,
    /// -1 (all), 0 or 1.
    pub acks: i16,
    pub duration: Duration,
    /// Bytes of record values per second over all connections; `None`: as
    /// fast as possible.
    pub rate: Option<f64>,
    pub connections: usize,
    /// Largest batch per partition and request.
    pub batch_bytes: usize,
    pub in_flight: usize,
    /// With a rate: how long a due record may wait for more to join it.
    pub linger: Duration,
}

impl ProduceOptions {
    fn records_per_batch(&self) -> usize {
        (self.batch_bytes / (self.record_size + 8)).max(1)
    }

    /// The partitions connection `c` writes to: an even share, or one
    /// partition shared with other connections when there are more
    /// connections than partitions.
    fn partitions_of(&self, c: usize) -> Vec<i32> {
        let n = self.partitions as usize;
        if self.connections >= n {
            vec![(c % n) as i32]
        } else {
            (0..n)
                .filter(|p| p % self.connections == c)
                .map(|p| p as i32)
                .collect()
        }
    }
}

/// What a produce run measured.
pub struct ProduceOutcome {
    pub elapsed: Duration,
    /// Request latency: sent to acknowledged.
    pub latencies: Latencies,
}

/// Produces until `opts.duration` has passed and every request is answered.
pub fn run(opts: &ProduceOptions, counters: Arc<Counters>) -> anyhow::Result<ProduceOutcome> {
    let start = Instant::now();
    let workers: Vec<_> = (0..opts.connections)
        .map(|c| {
            let opts = opts.clone();
            let counters = counters.clone();
            thread::Builder::new()
                .name(format!("produce-{c}"))
                .spawn(move || produce_on_connection(&opts, c, &counters))
        })
        .collect::<Result<_, _>>()?;
    let mut latencies = Latencies::default();
    let mut first_error = None;
    for w in workers {
        match w.join() {
            Ok(Ok(l)) => latencies.merge(l),
            Ok(Err(e)) => {
                first_error.get_or_insert(e);
            }
            Err(_) => {
                first_error.get_or_insert(anyhow::anyhow!("a producer thread panicked"));
            }
        }
    }
    if let Some(e) = first_error {
        return Err(e);
    }
    Ok(ProduceOutcome {
        elapsed: start.elapsed(),
        latencies,
    })
}

/// A request on the wire, awaiting its response.
struct Pending {
    correlation_id: i32,
    sent: Instant,
    records: u64,
    value_bytes: u64,
    batch_bytes: u64,
}

fn produce_on_connection(
    opts: &ProduceOptions,
    c: usize,
    counters: &Arc<Counters>,
) -> anyhow::Result<Latencies> {
    let partitions = opts.partitions_of(c);
    let (mut writer, reader) = Connection::connect(opts.broker)?.split();
    let (pending_tx, pending_rx) = mpsc::channel::<Pending>();
    let (credit_tx, credit_rx) = mpsc::sync_channel::<()>(opts.in_flight);
    for _ in 0..opts.in_flight {
        credit_tx.send(())?;
    }
    let acks = opts.acks;
    let reader = if acks == 0 {
        drop(credit_tx);
        None
    } else {
        let counters = counters.clone();
        let topic = opts.topic.clone();
        Some(thread::spawn(move || {
            read_responses(reader, &topic, pending_rx, credit_tx, &counters)
        }))
    };
    let acquire = |credits: &mpsc::Receiver<()>| acks == 0 || credits.recv().is_ok();
    let send_result = match opts.rate {
        None => send_full_frames(opts, &partitions, &mut writer, &pending_tx, || {
            acquire(&credit_rx)
        }),
        Some(rate) => {
            let rate = rate / opts.connections as f64;
            send_at_rate(opts, &partitions, rate, &mut writer, &pending_tx, || {
                acquire(&credit_rx)
            })
        }
    };
    drop(pending_tx);
    let latencies = match reader {
        Some(r) => r
            .join()
            .map_err(|_| anyhow::anyhow!("response reader panicked"))??,
        None => Latencies::default(),
    };
    // A reader error explains a failed send (the connection closed under
    // it), so it is reported first, above.
    let sent = send_result?;
    if acks == 0 {
        counters.add(sent.records, sent.value_bytes, sent.batch_bytes);
    }
    Ok(latencies)
}

#[derive(Default)]
struct Sent {
    records: u64,
    value_bytes: u64,
    batch_bytes: u64,
}

/// One request frame, encoded once: where its batches are and where their
/// values are (relative to each batch).
struct FrameTemplate {
    frame: Vec<u8>,
    batches: Vec<(Range<usize>, Vec<Range<usize>>)>,
}

fn frame_template(opts: &ProduceOptions, partitions: &[i32]) -> anyhow::Result<FrameTemplate> {
    let per_batch = opts.records_per_batch();
    // Each batch carries a unique base offset while encoding, to find it in
    // the frame; the broker assigns offsets anyway.
    let marker = |p: i32| (0x464c_4f45_i64 << 32) | i64::from(p);
    let mut batches = Vec::new();
    let mut data = Vec::new();
    for &p in partitions {
        let mut batch = records::build_batch(opts.record_size, &vec![0; per_batch])?;
        batch[..8].copy_from_slice(&marker(p).to_be_bytes());
        let values = records::value_ranges(&batch)?;
        batches.push((batch.len(), values));
        data.push(PartitionProduceData {
            index: p,
            records: Some(Bytes::from(batch)),
        });
    }
    let req = produce_request(opts, data);
    let mut frame = connection::encode(&req, PRODUCE_VERSION, 0)?;
    let mut located = Vec::new();
    for (&p, (len, values)) in partitions.iter().zip(batches) {
        let needle = marker(p).to_be_bytes();
        let at = frame
            .windows(8)
            .position(|w| w == needle)
            .context("batch not found in its own request frame")?;
        frame[at..at + 8].copy_from_slice(&0i64.to_be_bytes());
        located.push((at..at + len, values));
    }
    Ok(FrameTemplate {
        frame,
        batches: located,
    })
}

fn produce_request(opts: &ProduceOptions, data: Vec<PartitionProduceData>) -> ProduceRequest {
    ProduceRequest {
        acks: opts.acks,
        timeout_ms: TIMEOUT_MS,
        topic_data: vec![TopicProduceData {
            name: opts.topic.clone(),
            partition_data: data,
        }],
        ..Default::default()
    }
}

fn send_full_frames(
    opts: &ProduceOptions,
    partitions: &[i32],
    writer: &mut RequestWriter,
    pending: &mpsc::Sender<Pending>,
    mut acquire: impl FnMut() -> bool,
) -> anyhow::Result<Sent> {
    let mut template = frame_template(opts, partitions)?;
    let per_request_records = (opts.records_per_batch() * partitions.len()) as u64;
    let per_request_batch_bytes: u64 = template.batches.iter().map(|b| b.0.len() as u64).sum();
    let per_request_values = per_request_records * opts.record_size as u64;
    let deadline = Instant::now() + opts.duration;
    let mut sent = Sent::default();
    while Instant::now() < deadline {
        if !acquire() {
            break; // the reader stopped: it reports why
        }
        let correlation_id = writer.next_correlation();
        let frame = &mut template.frame;
        frame[connection::CORRELATION_AT..connection::CORRELATION_AT + 4]
            .copy_from_slice(&correlation_id.to_be_bytes());
        let now = stats::now_micros();
        for (range, values) in &template.batches {
            records::restamp(&mut frame[range.clone()], values, now);
        }
        let p = Pending {
            correlation_id,
            sent: Instant::now(),
            records: per_request_records,
            value_bytes: per_request_values,
            batch_bytes: per_request_batch_bytes,
        };
        if opts.acks != 0 {
            let _ = pending.send(p);
        }
        writer.write_frame(frame)?;
        sent.records += per_request_records;
        sent.value_bytes += per_request_values;
        sent.batch_bytes += per_request_batch_bytes;
    }
    Ok(sent)
}

fn send_at_rate(
    opts: &ProduceOptions,
    partitions: &[i32],
    rate: f64,
    writer: &mut RequestWriter,
    pending: &mpsc::Sender<Pending>,
    mut acquire: impl FnMut() -> bool,
) -> anyhow::Result<Sent> {
    if rate <= 0.0 {
        bail!("the rate must be positive");
    }
    let record_interval = opts.record_size as f64 / rate; // seconds
    let max_records = (opts.records_per_batch() * partitions.len()) as u64;
    let start = Instant::now();
    let start_micros = stats::now_micros();
    let due_at = |i: u64| start + Duration::from_secs_f64(i as f64 * record_interval);
    let mut next = 0u64; // the first record not sent yet
    let mut sent = Sent::default();
    loop {
        // Wait until the first unsent record has lingered long enough, or a
        // full request is due.
        let send_at = due_at(next + max_records - 1).min(due_at(next) + opts.linger);
        if send_at >= start + opts.duration {
            break;
        }
        sleep_until(send_at);
        if !acquire() {
            break;
        }
        let now = Instant::now();
        let due = ((now - start).as_secs_f64() / record_interval).floor() as u64 + 1;
        let count = due.saturating_sub(next).clamp(1, max_records);
        let stamp = |i: u64| start_micros + (i as f64 * record_interval * 1e6) as u64;
        let mut data = Vec::with_capacity(partitions.len());
        let mut batch_bytes = 0u64;
        for (j, &p) in partitions.iter().enumerate() {
            let stamps: Vec<u64> = (next..next + count)
                .filter(|i| (i % partitions.len() as u64) as usize == j)
                .map(stamp)
                .collect();
            if stamps.is_empty() {
                continue;
            }
            let batch = records::build_batch(opts.record_size, &stamps)?;
            batch_bytes += batch.len() as u64;
            data.push(PartitionProduceData {
                index: p,
                records: Some(Bytes::from(batch)),
            });
        }
        let req = produce_request(opts, data);
        let correlation_id = writer.next_correlation();
        let frame = connection::encode(&req, PRODUCE_VERSION, correlation_id)?;
        let p = Pending {
            correlation_id,
            sent: Instant::now(),
            records: count,
            value_bytes: count * opts.record_size as u64,
            batch_bytes,
        };
        if opts.acks != 0 {
            let _ = pending.send(p);
        }
        writer.write_frame(&frame)?;
        next += count;
        sent.records += count;
        sent.value_bytes += count * opts.record_size as u64;
        sent.batch_bytes += batch_bytes;
    }
    Ok(sent)
}

fn sleep_until(t: Instant) {
    let now = Instant::now();
    if t > now {
        thread::sleep(t - now);
    }
}

fn read_responses(
    mut reader: ResponseReader,
    topic: &str,
    pending: mpsc::Receiver<Pending>,
    credits: mpsc::SyncSender<()>,
    counters: &Counters,
) -> anyhow::Result<Latencies> {
    let mut latencies = Latencies::default();
    for p in pending {
        let resp: ProduceResponse = reader.receive(p.correlation_id, PRODUCE_VERSION)?;
        latencies.record(p.sent.elapsed().as_micros() as u64);
        for t in &resp.responses {
            for part in &t.partition_responses {
                if part.error_code != kafka_error::NONE {
                    return Err(KafkaError::new(
                        "Produce",
                        topic,
                        Some(part.index),
                        part.error_code,
                        part.error_message.clone(),
                    )
                    .into());
                }
            }
        }
        counters.add(p.records, p.value_bytes, p.batch_bytes);
        let _ = credits.send(());
    }
    Ok(latencies)
}
