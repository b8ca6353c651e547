//! Produce-path cost per batch of 1 KiB records:
//! - `validate`: `batch::validate_produce` (framing, CRC32C, decompression
//!   under the cap, every record walked, the copy into the log's buffer),
//!   per codec and batch size;
//! - `validate_append`: `PartitionLog::validate` + `append` on a real temp
//!   dir inside a glommio executor (page cache, no fdatasync);
//! - `validate_append_sync`: the same plus `PartitionLog::sync`, one
//!   fdatasync per append (acks=all with no group commit).
//!
//! Throughput is in record-value bytes (1 KiB per record), so codecs compare.

use std::hint::black_box;
use std::rc::Rc;
use std::time::{Duration, Instant};

use broker::log::batch::{BatchLimits, validate_produce};
use broker::log::{BatchBuilder, Compression, Disk, LogConfig, PartitionLog, RetentionPolicy};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use glommio::{LocalExecutor, LocalExecutorBuilder, Placement};

const RECORD: usize = 1024;

/// Values that compress about as well as typical JSON-ish payloads: words
/// from a small vocabulary, a counter, some noise.
fn value(i: usize) -> Vec<u8> {
    const WORDS: [&str; 12] = [
        "order",
        "customer",
        "amount",
        "currency",
        "EUR",
        "status",
        "shipped",
        "id",
        "sku",
        "warehouse",
        "berlin",
        "true",
    ];
    let mut v = Vec::with_capacity(RECORD);
    let mut x = (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    while v.len() < RECORD {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.extend_from_slice(WORDS[(x % WORDS.len() as u64) as usize].as_bytes());
        v.push(b':');
        v.extend_from_slice((x % 100_000).to_string().as_bytes());
        v.push(b',');
    }
    v.truncate(RECORD);
    v
}

fn batch(records: usize, codec: Compression) -> Vec<u8> {
    let mut b = BatchBuilder::new(codec);
    for i in 0..records {
        b.push(1_700_000_000_000 + i as i64, None, Some(&value(i)), &[]);
    }
    b.build().unwrap()
}

fn validate(c: &mut Criterion) {
    let limits = BatchLimits {
        max_batch_bytes: 16 << 20,
        max_decompressed_bytes: 64 << 20,
    };
    let mut group = c.benchmark_group("validate");
    for codec in [
        Compression::None,
        Compression::Lz4,
        Compression::Zstd,
        Compression::Snappy,
        Compression::Gzip,
    ] {
        for records in [1usize, 16, 256] {
            let bytes = batch(records, codec);
            group.throughput(Throughput::Bytes((records * RECORD) as u64));
            group.bench_with_input(
                BenchmarkId::new(format!("{codec:?}"), format!("{records}x1KiB")),
                &bytes,
                |b, bytes| b.iter(|| validate_produce(black_box(bytes), &limits).unwrap()),
            );
        }
    }
    group.finish();
}

/// A glommio executor on this thread, so the log (which is `!Send`) lives
/// across Criterion's calls.
fn executor() -> LocalExecutor {
    LocalExecutorBuilder::new(Placement::Unbound)
        .make()
        .expect("glommio executor starts")
}

/// Keeps the bench's disk use bounded: about 256 MiB of log.
fn trim(ex: &LocalExecutor, log: &PartitionLog) {
    let policy = RetentionPolicy {
        retention_ms: -1,
        retention_bytes: 256 << 20,
        deletable_end_offset: None,
    };
    ex.run(log.apply_retention(0, &policy)).unwrap();
}

fn append(c: &mut Criterion, sync: bool) {
    let name = if sync {
        "validate_append_sync"
    } else {
        "validate_append"
    };
    let ex = executor();
    let dir = tempfile::tempdir_in(std::env::var_os("BENCH_DIR").unwrap_or("/tmp".into())).unwrap();
    let config = LogConfig {
        segment_bytes: 64 << 20,
        max_batch_bytes: 16 << 20,
        ..LogConfig::default()
    };
    let log = Rc::new(
        ex.run(PartitionLog::open(
            dir.path().join("bench-0"),
            config,
            Disk::Real,
        ))
        .unwrap(),
    );
    let mut group = c.benchmark_group(name);
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(if sync { 8 } else { 4 }));
    let sizes: &[usize] = if sync { &[16, 256] } else { &[1, 16, 256] };
    for codec in [Compression::None, Compression::Lz4] {
        for &records in sizes {
            let bytes = batch(records, codec);
            group.throughput(Throughput::Bytes((records * RECORD) as u64));
            group.bench_with_input(
                BenchmarkId::new(format!("{codec:?}"), format!("{records}x1KiB")),
                &bytes,
                |b, bytes| {
                    b.iter_custom(|iters| {
                        let l = log.clone();
                        let took = ex.run(async move {
                            let start = Instant::now();
                            for _ in 0..iters {
                                let records = l.validate(bytes).unwrap();
                                black_box(l.append(records).await.unwrap());
                                if sync {
                                    l.sync().await.unwrap();
                                }
                            }
                            start.elapsed()
                        });
                        trim(&ex, &log);
                        took
                    })
                },
            );
        }
    }
    group.finish();
    ex.run(log.close()).unwrap();
}

fn validate_append(c: &mut Criterion) {
    append(c, false);
}

fn validate_append_sync(c: &mut Criterion) {
    append(c, true);
}

criterion_group!(benches, validate, validate_append, validate_append_sync);
criterion_main!(benches);
