//! Sequential remote reads through [`RemoteReader`] over the in-memory store,
//! with the chunk cache cold (a fresh cache directory: every chunk is a GET
//! plus a cache write) and warm (every chunk already in the cache directory,
//! read by a fresh reader, so nothing is in the cache's memory tier).
//!
//! Each partition is one 48 MiB segment (three 16 MiB chunks) of ~64 KiB
//! batches, read with 1 MiB reads like a consumer's fetches; the 4-partition
//! cases interleave the partitions round robin, as a broker serving one
//! consumer of 4 partitions does.
//!
//! `cargo bench -p shadow-index --bench remote_read`

use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use shadow_index::cache::ChunkCache;
use shadow_index::error::Error;
use shadow_index::index::test_batch;
use shadow_index::reader::{ReaderConfig, RemoteReader};
use shadow_index::store::{Remote, open_store};
use shadow_index::uploader::{SealedSegment, Uploader, UploaderConfig};

const TOPIC: &str = "bench";
const SEGMENT_BYTES: usize = 48 << 20;
const BATCH_PAYLOAD: usize = 64 << 10;
const READ_BYTES: usize = 1 << 20;
const CACHE_BYTES: u64 = 4 << 30;

fn runtime() -> tokio::runtime::Runtime {
    // The broker's cloud plane runs on 2 threads.
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Uploads one segment per partition; returns the total bytes.
async fn populate(remote: &Remote, partitions: i32, dir: &std::path::Path) -> u64 {
    let uploader = Uploader::new(remote.clone(), UploaderConfig::default());
    let mut total = 0;
    for partition in 0..partitions {
        let mut bytes = Vec::with_capacity(SEGMENT_BYTES + BATCH_PAYLOAD);
        let mut offset = 0i64;
        while bytes.len() < SEGMENT_BYTES {
            let payload: Vec<u8> = (0..BATCH_PAYLOAD)
                .map(|j| (j as i64 * 31 + offset) as u8)
                .collect();
            bytes.extend_from_slice(&test_batch(offset, 16, offset, &payload));
            offset += 16;
        }
        let path = dir.join(format!("{partition}.log"));
        std::fs::write(&path, &bytes).unwrap();
        uploader
            .upload_segment(&SealedSegment {
                topic: TOPIC.into(),
                partition,
                base_offset: 0,
                last_offset: offset - 1,
                epoch: 1,
                path,
            })
            .await
            .unwrap();
        total += bytes.len() as u64;
    }
    total
}

fn reader(remote: &Remote, cache_dir: &std::path::Path) -> RemoteReader {
    RemoteReader::with_config(
        remote.clone(),
        ChunkCache::open(cache_dir, CACHE_BYTES).unwrap(),
        ReaderConfig::default(),
    )
}

/// Reads every partition to its end, round robin, `READ_BYTES` per read.
async fn read_all(reader: &RemoteReader, partitions: i32) -> u64 {
    let mut offsets = vec![0i64; partitions as usize];
    let mut done = vec![false; partitions as usize];
    let mut bytes = 0;
    while done.iter().any(|d| !d) {
        for partition in 0..partitions {
            let p = partition as usize;
            if done[p] {
                continue;
            }
            match reader.read(TOPIC, partition, offsets[p], READ_BYTES).await {
                Ok(slice) => {
                    bytes += slice.bytes.len() as u64;
                    offsets[p] = slice.next_offset;
                }
                Err(Error::OffsetOutOfRange { end, .. }) if end == offsets[p] => done[p] = true,
                Err(e) => panic!("read: {e}"),
            }
        }
    }
    bytes
}

fn bench(c: &mut Criterion) {
    let rt = runtime();
    let work = tempfile::tempdir().unwrap();
    let mut group = c.benchmark_group("remote_read");
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(8));
    for partitions in [1, 4] {
        let remote = open_store("memory://").unwrap();
        let total = rt.block_on(populate(&remote, partitions, work.path()));
        group.throughput(Throughput::Bytes(total));

        group.bench_function(format!("cold_{partitions}p"), |b| {
            b.iter_custom(|iters| {
                let mut elapsed = Duration::ZERO;
                for _ in 0..iters {
                    let cache = tempfile::tempdir_in(work.path()).unwrap();
                    let r = reader(&remote, cache.path());
                    let started = Instant::now();
                    let read = rt.block_on(async {
                        let read = read_all(&r, partitions).await;
                        r.wait_for_prefetches().await;
                        read
                    });
                    elapsed += started.elapsed();
                    assert_eq!(read, total);
                }
                elapsed
            })
        });

        let warm = tempfile::tempdir_in(work.path()).unwrap();
        {
            let r = reader(&remote, warm.path());
            rt.block_on(async {
                read_all(&r, partitions).await;
                r.wait_for_prefetches().await;
            });
        }
        group.bench_function(format!("warm_{partitions}p"), |b| {
            b.iter_custom(|iters| {
                let mut elapsed = Duration::ZERO;
                for _ in 0..iters {
                    let r = reader(&remote, warm.path());
                    let misses = remote.metrics().cache_misses.get();
                    let started = Instant::now();
                    let read = rt.block_on(async {
                        let read = read_all(&r, partitions).await;
                        r.wait_for_prefetches().await;
                        read
                    });
                    elapsed += started.elapsed();
                    assert_eq!(read, total);
                    assert_eq!(remote.metrics().cache_misses.get(), misses, "warm");
                }
                elapsed
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
