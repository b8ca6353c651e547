//! `floe-load`: produces to and consumes from a running Kafka-compatible
//! broker over TCP and reports MB/s, records/s and latency percentiles.
//!
//! A real Kafka client built on the `protocol` crate (no librdkafka):
//! RecordBatch v2 with CRC32C, several requests in flight per connection
//! (answers come back in order), topics created with CreateTopics.
//!
//! # Layout
//! - `connection`: a blocking connection split into writer and reader.
//! - `topic`: Metadata, CreateTopics, ListOffsets.
//! - `records`: stamped record batches, walking fetched batches.
//! - `produce`, `consume`: the two halves; `e2e` runs both at once.
//! - `stats`: exact percentiles, throughput, progress lines.
//! - `kafka_error`: error codes with their names.
//! - `s3get`: an S3 server's own parallel ranged-GET rate (`s3-get`).
//! - `avro`: Avro values in Confluent wire format (`--avro-schema-id`).
//!
//! # Example
//! ```text
//! floe-load produce --broker 127.0.0.1:9092 --topic bench --partitions 8 \
//!     --record-size 1024 --acks all --duration 20s
//! floe-load consume --broker 127.0.0.1:9092 --topic bench --from earliest
//! floe-load e2e --broker 127.0.0.1:9092 --topic e2e --rate 20
//! floe-load s3-get --endpoint http://127.0.0.1:15000 --bucket floe-bench \
//!     --prefix floe/topics/cold --parallel 4
//! ```
//!
//! MB means 10^6 bytes of record values; batch bytes (headers and record
//! framing included) are reported beside them.

mod avro;
mod connection;
mod consume;
mod kafka_error;
mod produce;
mod records;
mod s3get;
mod stats;
mod topic;

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::thread;
use std::time::Duration;

use anyhow::bail;
use clap::{Args, Parser, Subcommand};

use consume::ConsumeOptions;
use produce::ProduceOptions;
use stats::{Counters, Progress};

#[derive(Parser)]
#[command(
    name = "floe-load",
    about = "Load generator for Kafka-compatible brokers"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Produce as fast as possible, or at --rate.
    Produce(ProduceArgs),
    /// Consume from the earliest or latest offsets.
    Consume(ConsumeArgs),
    /// Produce at a fixed rate and consume concurrently; end-to-end latency
    /// is the consume time minus the creation stamp in each record.
    E2e(E2eArgs),
    /// Parallel ranged GETs of every `.log` object under a prefix of an S3
    /// bucket, with the broker's object-store client: the server's own read
    /// rate, to set beside the broker's cold remote reads.
    S3Get(S3GetArgs),
    /// Prints the Avro schema of `produce --avro-schema-id` values (to
    /// register under `<topic>-value`).
    AvroSchema,
}

#[derive(Args)]
struct S3GetArgs {
    /// `http(s)://host:port` of the S3 server (default: AWS_ENDPOINT_URL);
    /// credentials and region come from the AWS_* environment.
    #[arg(long)]
    endpoint: Option<String>,
    #[arg(long)]
    bucket: String,
    /// Key prefix under which the `.log` objects are listed, e.g.
    /// `floe/topics/cold` for a broker with `--object-store s3://B/floe`.
    #[arg(long, default_value = "")]
    prefix: String,
    /// GETs in flight at once.
    #[arg(long, default_value_t = 4)]
    parallel: usize,
    /// Bytes per ranged GET (the broker's `[tier] chunk-bytes`).
    #[arg(long, default_value_t = 16 << 20)]
    chunk_bytes: u64,
    /// Tokio worker threads (the broker's cloud plane runs 2).
    #[arg(long, default_value_t = 2)]
    threads: usize,
}

#[derive(Args, Clone)]
struct Common {
    /// Broker address; every connection goes there (single broker).
    #[arg(long, default_value = "127.0.0.1:9092")]
    broker: String,
    #[arg(long, default_value = "floe-load")]
    topic: String,
    /// Partitions to use (the topic is created with this many if missing).
    #[arg(long, default_value_t = 1)]
    partitions: i32,
    /// How long to run: `20s`, `500ms`, `2m` or seconds.
    #[arg(long, default_value = "20s", value_parser = parse_duration)]
    duration: Duration,
}

#[derive(Args, Clone)]
struct ProducerArgs {
    /// Bytes of each record value (records have no key).
    #[arg(long, default_value_t = 1024)]
    record_size: usize,
    /// all (-1), 1 or 0.
    #[arg(long, default_value = "all", value_parser = parse_acks)]
    acks: i16,
    /// Largest batch per partition and request, in bytes.
    #[arg(long, default_value_t = 256 * 1024)]
    batch_bytes: usize,
    /// Produce requests in flight per connection.
    #[arg(long, default_value_t = 4)]
    in_flight: usize,
    /// Producer connections; more than the partitions share partitions.
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// With a rate: how long a due record waits for others to join its
    /// request, in milliseconds.
    #[arg(long, default_value_t = 1.0)]
    linger_ms: f64,
    /// Write Avro values framed with this registered schema id (the schema
    /// `floe-load avro-schema` prints) instead of filler bytes.
    #[arg(long)]
    avro_schema_id: Option<u32>,
}

#[derive(Args)]
struct ProduceArgs {
    #[command(flatten)]
    common: Common,
    #[command(flatten)]
    producer: ProducerArgs,
    /// Fixed rate in MB/s (10^6 bytes of values) over all connections.
    #[arg(long)]
    rate: Option<f64>,
}

#[derive(Args, Clone)]
struct ConsumerArgs {
    /// Fetch connections (partitions are split among them).
    #[arg(long, default_value_t = 1)]
    fetch_connections: usize,
    #[arg(long, default_value_t = 500)]
    max_wait_ms: u32,
    /// Fetch max_bytes (whole response).
    #[arg(long, default_value_t = 50 << 20)]
    max_bytes: i32,
    /// Fetch partition_max_bytes.
    #[arg(long, default_value_t = 1 << 20)]
    partition_max_bytes: i32,
    /// Verify every fetched batch's CRC32C, as Kafka consumers do by default.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    check_crcs: bool,
}

#[derive(Args)]
struct ConsumeArgs {
    #[command(flatten)]
    common: Common,
    #[command(flatten)]
    consumer: ConsumerArgs,
    /// earliest or latest.
    #[arg(long, default_value = "earliest")]
    from: String,
    /// Stop at the log end seen when starting (else run for --duration).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    until_end: bool,
    /// Read at most this many MB/s (10^6 bytes of values) over all
    /// connections, as a consumer that processes what it reads would;
    /// without it, as fast as the broker answers.
    #[arg(long)]
    rate: Option<f64>,
}

#[derive(Args)]
struct E2eArgs {
    #[command(flatten)]
    common: Common,
    #[command(flatten)]
    producer: ProducerArgs,
    #[command(flatten)]
    consumer: ConsumerArgs,
    /// Fixed produce rate in MB/s (10^6 bytes of values).
    #[arg(long, default_value_t = 20.0)]
    rate: f64,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let (number, unit) = match s.find(|c: char| c.is_ascii_alphabetic()) {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let n: f64 = number.parse().map_err(|_| format!("bad duration {s:?}"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        _ => return Err(format!("bad duration unit in {s:?} (ms, s or m)")),
    };
    Duration::try_from_secs_f64(secs).map_err(|e| format!("bad duration {s:?}: {e}"))
}

fn parse_acks(s: &str) -> Result<i16, String> {
    match s {
        "all" | "-1" => Ok(-1),
        "1" => Ok(1),
        "0" => Ok(0),
        _ => Err(format!("acks must be all, 1 or 0, not {s:?}")),
    }
}

fn acks_name(acks: i16) -> &'static str {
    match acks {
        -1 => "all",
        0 => "0",
        _ => "1",
    }
}

fn produce_options(
    broker: SocketAddr,
    common: &Common,
    p: &ProducerArgs,
    rate_mb: Option<f64>,
) -> anyhow::Result<ProduceOptions> {
    if p.record_size < records::STAMP_LEN {
        bail!("--record-size must be at least {}", records::STAMP_LEN);
    }
    if p.connections == 0 || p.in_flight == 0 {
        bail!("--connections and --in-flight must be at least 1");
    }
    if let Some(id) = p.avro_schema_id {
        avro::value(id, p.record_size)?;
        avro::enable(id);
    }
    Ok(ProduceOptions {
        broker,
        topic: common.topic.clone(),
        partitions: common.partitions,
        record_size: p.record_size,
        acks: p.acks,
        duration: common.duration,
        rate: rate_mb.map(|r| r * 1e6),
        connections: p.connections,
        batch_bytes: p.batch_bytes,
        in_flight: p.in_flight,
        linger: Duration::from_secs_f64(p.linger_ms.max(0.0) / 1000.0),
    })
}

fn consume_options(
    broker: SocketAddr,
    common: &Common,
    c: &ConsumerArgs,
    duration: Duration,
    end_to_end: bool,
    rate: Option<f64>,
) -> ConsumeOptions {
    ConsumeOptions {
        broker,
        topic: common.topic.clone(),
        connections: c.fetch_connections,
        duration,
        max_wait: Duration::from_millis(u64::from(c.max_wait_ms)),
        max_bytes: c.max_bytes,
        partition_max_bytes: c.partition_max_bytes,
        check_crcs: c.check_crcs,
        end_to_end,
        rate,
    }
}

fn produce(args: ProduceArgs) -> anyhow::Result<()> {
    let broker = connection::resolve(&args.common.broker)?;
    topic::ensure(broker, &args.common.topic, args.common.partitions)?;
    let opts = produce_options(broker, &args.common, &args.producer, args.rate)?;
    println!(
        "produce: topic {} partitions {} record-size {} acks {} connections {} in-flight {} \
         batch-bytes {} rate {}",
        opts.topic,
        opts.partitions,
        opts.record_size,
        acks_name(opts.acks),
        opts.connections,
        opts.in_flight,
        opts.batch_bytes,
        args.rate
            .map_or("unlimited".to_string(), |r| format!("{r} MB/s")),
    );
    let counters = Arc::new(Counters::default());
    let outcome = {
        let _progress = Progress::start("produce", counters.clone());
        produce::run(&opts, counters.clone())?
    };
    let mut latencies = outcome.latencies;
    println!("{}", stats::throughput(&counters, outcome.elapsed));
    println!("  produce request latency: {}", latencies.summary());
    Ok(())
}

fn consume(args: ConsumeArgs) -> anyhow::Result<()> {
    let broker = connection::resolve(&args.common.broker)?;
    let mut conn = connection::Connection::connect(broker)?;
    let Some(partitions) = topic::partition_count(&mut conn, &args.common.topic)? else {
        bail!("topic {} does not exist", args.common.topic);
    };
    let from = match args.from.as_str() {
        "earliest" => topic::EARLIEST,
        "latest" => topic::LATEST,
        other => bail!("--from must be earliest or latest, not {other:?}"),
    };
    let start = topic::offsets(broker, &args.common.topic, partitions, from)?;
    let end = topic::offsets(broker, &args.common.topic, partitions, topic::LATEST)?;
    let stop_at: consume::StopAt = Arc::new(OnceLock::new());
    if args.until_end {
        let _ = stop_at.set(end.clone());
    }
    let opts = consume_options(
        broker,
        &args.common,
        &args.consumer,
        args.common.duration,
        false,
        args.rate,
    );
    if args.rate.is_some_and(|r| r.is_nan() || r <= 0.0) {
        bail!("--rate must be a positive number of MB/s");
    }
    println!(
        "consume: topic {} partitions {} from {} ({} records to the end) fetch-connections {} \
         partition-max-bytes {} check-crcs {} rate {}",
        opts.topic,
        partitions,
        args.from,
        end.iter().zip(&start).map(|(e, s)| e - s).sum::<i64>(),
        opts.connections,
        opts.partition_max_bytes,
        opts.check_crcs,
        args.rate
            .map_or("unlimited".to_string(), |r| format!("{r} MB/s")),
    );
    let counters = Arc::new(Counters::default());
    let outcome = {
        let _progress = Progress::start("consume", counters.clone());
        consume::run(&opts, start, stop_at, counters.clone())?
    };
    let mut fetches = outcome.fetch_latencies;
    println!("{}", stats::throughput(&counters, outcome.elapsed));
    println!("  fetch request latency: {}", fetches.summary());
    Ok(())
}

fn e2e(args: E2eArgs) -> anyhow::Result<()> {
    let broker = connection::resolve(&args.common.broker)?;
    let partitions = topic::ensure(broker, &args.common.topic, args.common.partitions)?;
    let popts = produce_options(broker, &args.common, &args.producer, Some(args.rate))?;
    // The consumer gets a grace period to drain after the producer stops.
    let copts = consume_options(
        broker,
        &args.common,
        &args.consumer,
        args.common.duration + Duration::from_secs(10),
        true,
        None,
    );
    let start = topic::offsets(broker, &args.common.topic, partitions, topic::LATEST)?;
    println!(
        "e2e: topic {} partitions {} rate {} MB/s record-size {} acks {} connections {} \
         in-flight {} linger {} ms fetch max-wait {} ms",
        popts.topic,
        popts.partitions,
        args.rate,
        popts.record_size,
        acks_name(popts.acks),
        popts.connections,
        popts.in_flight,
        args.producer.linger_ms,
        args.consumer.max_wait_ms,
    );
    let stop_at: consume::StopAt = Arc::new(OnceLock::new());
    let consumed = Arc::new(Counters::default());
    let consumer = {
        let stop_at = stop_at.clone();
        let consumed = consumed.clone();
        thread::spawn(move || consume::run(&copts, start, stop_at, consumed))
    };
    let produced = Arc::new(Counters::default());
    let produce_result = {
        let _progress = Progress::start("produce", produced.clone());
        produce::run(&popts, produced.clone())
    };
    // Stop the consumer at the log end once the producer is done (or at
    // once if the producer failed: its error is the one to report).
    let end = match &produce_result {
        Ok(_) => topic::offsets(broker, &args.common.topic, partitions, topic::LATEST)?,
        Err(_) => vec![i64::MIN; partitions as usize],
    };
    let _ = stop_at.set(end);
    let produce_outcome = produce_result?;
    let consume_outcome = consumer
        .join()
        .map_err(|_| anyhow::anyhow!("consumer panicked"))??;
    let mut acks = produce_outcome.latencies;
    let mut e2e = consume_outcome.end_to_end;
    println!("produced:");
    println!("{}", stats::throughput(&produced, produce_outcome.elapsed));
    println!("  produce request latency: {}", acks.summary());
    // The consumer's own rate is the producer's; its elapsed time includes
    // waiting for the producer to start and to finish.
    println!(
        "consumed: {} records",
        consumed.records.load(std::sync::atomic::Ordering::Relaxed)
    );
    println!("  end-to-end latency: {}", e2e.summary());
    let missing =
        produced.records.load(std::sync::atomic::Ordering::Relaxed) as i64 - e2e.len() as i64;
    if missing != 0 {
        bail!("{missing} produced records were not consumed");
    }
    Ok(())
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Produce(a) => produce(a),
        Command::Consume(a) => consume(a),
        Command::E2e(a) => e2e(a),
        Command::S3Get(a) => s3get::run(&s3get::S3GetOptions {
            endpoint: a.endpoint,
            bucket: a.bucket,
            prefix: a.prefix,
            parallel: a.parallel,
            chunk_bytes: a.chunk_bytes,
            threads: a.threads,
        }),
        Command::AvroSchema => {
            println!("{}", avro::SCHEMA);
            Ok(())
        }
    };
    if let Err(e) = result {
        eprintln!("floe-load: {e:#}");
        std::process::exit(1);
    }
}
