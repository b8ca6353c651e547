//! `PartitionLog::read` at random offsets of a log with many segments:
//! segment binary search, sparse-index lookup, header scan from the indexed
//! position, then the read itself (page cache, glommio buffered file).
//!
//! - `first_batch`: `max_bytes = 1`, so one ~16 KiB batch comes back: the
//!   lookup dominates.
//! - `1MiB`: a consumer-sized read.

use std::hint::black_box;
use std::rc::Rc;
use std::time::{Duration, Instant};

use broker::log::{BatchBuilder, Compression, Disk, LogConfig, PartitionLog, ReadOutcome};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use glommio::{LocalExecutor, LocalExecutorBuilder, Placement};

const SEGMENTS: i64 = 256;
const SEGMENT_BYTES: u64 = 1 << 20;
const RECORDS_PER_BATCH: usize = 16;

fn batch() -> Vec<u8> {
    let mut b = BatchBuilder::new(Compression::None);
    let value = vec![b'x'; 1024];
    for i in 0..RECORDS_PER_BATCH {
        b.push(1_700_000_000_000 + i as i64, None, Some(&value), &[]);
    }
    b.build().unwrap()
}

fn index_lookup(c: &mut Criterion) {
    let ex: LocalExecutor = LocalExecutorBuilder::new(Placement::Unbound)
        .make()
        .expect("glommio executor starts");
    let dir = tempfile::tempdir_in(std::env::var_os("BENCH_DIR").unwrap_or("/tmp".into())).unwrap();
    let config = LogConfig {
        segment_bytes: SEGMENT_BYTES,
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
    let bytes = batch();
    ex.run(async {
        while (log.segment_count() as i64) < SEGMENTS {
            let records = log.validate(&bytes).unwrap();
            log.append(records).await.unwrap();
        }
    });
    let log_end = log.log_end_offset();
    eprintln!(
        "index_lookup: {} segments, {} records, {} MiB",
        log.segment_count(),
        log_end,
        log.size_bytes() >> 20
    );

    let mut group = c.benchmark_group("index_lookup");
    group.measurement_time(Duration::from_secs(5));
    for (name, max_bytes) in [("first_batch", 1usize), ("1MiB", 1 << 20)] {
        group.throughput(Throughput::Elements(1));
        group.bench_function(BenchmarkId::new("random_offset", name), |b| {
            let mut x: u64 = 0x2545_f491_4f6c_dd1d;
            b.iter_custom(|iters| {
                let log = log.clone();
                let offsets: Vec<i64> = (0..iters)
                    .map(|_| {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        (x % log_end as u64) as i64
                    })
                    .collect();
                ex.run(async move {
                    let start = Instant::now();
                    for offset in offsets {
                        match log.read(offset, max_bytes).await.unwrap() {
                            ReadOutcome::Records { bytes, .. } => black_box(bytes),
                            other => panic!("{other:?}"),
                        };
                    }
                    start.elapsed()
                })
            })
        });
    }
    group.finish();
    ex.run(log.close()).unwrap();
}

criterion_group!(benches, index_lookup);
criterion_main!(benches);
