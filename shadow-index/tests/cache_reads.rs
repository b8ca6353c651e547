//! The reader's use of the chunk cache: range reads of cached chunks,
//! damage in cache files, single fetches under concurrency, prefetch depth
//! and its memory budget.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::Log;
use shadow_index::cache::ChunkCache;
use shadow_index::error::Error;
use shadow_index::manifest::SegmentMeta;
use shadow_index::reader::{ReaderConfig, RemoteReader};
use shadow_index::store::Remote;
use shadow_index::uploader::{UploadOutcome, Uploader, UploaderConfig};

const CHUNK: u64 = 4096;

fn reader(remote: &Remote, cache_dir: &std::path::Path, config: ReaderConfig) -> RemoteReader {
    RemoteReader::with_config(
        remote.clone(),
        ChunkCache::open(cache_dir, 1 << 30).unwrap(),
        config,
    )
}

fn config(prefetch: bool) -> ReaderConfig {
    ReaderConfig {
        chunk_size: CHUNK,
        prefetch,
        ..ReaderConfig::default()
    }
}

async fn upload(
    remote: &Remote,
    dir: &std::path::Path,
    topic: &str,
    logs: &[Log],
) -> Vec<SegmentMeta> {
    let up = Uploader::new(
        remote.clone(),
        UploaderConfig {
            index_interval: 512,
            retry: common::fast_retry(5),
            ..UploaderConfig::default()
        },
    );
    let mut metas = Vec::new();
    for log in logs {
        match up.upload_segment(&log.seal(dir, topic, 0)).await.unwrap() {
            UploadOutcome::Uploaded(meta) => metas.push(meta),
            other => panic!("expected an upload, got {other:?}"),
        }
    }
    metas
}

async fn read_all(reader: &RemoteReader, topic: &str, max_bytes: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let mut offset = 0;
    loop {
        match reader.read(topic, 0, offset, max_bytes).await {
            Ok(slice) => {
                out.extend_from_slice(&slice.bytes);
                offset = slice.next_offset;
            }
            Err(Error::OffsetOutOfRange { end, .. }) if end == offset => return out,
            Err(e) => panic!("read at {offset}: {e}"),
        }
    }
}

fn chunks_of(meta: &SegmentMeta) -> u64 {
    meta.size_bytes.div_ceil(CHUNK)
}

/// The cache file of chunk `index` of `key` (the only file whose bytes
/// contain the key and that was written for that chunk).
fn cache_file(cache: &std::path::Path, key: &str, index: u64) -> std::path::PathBuf {
    for entry in std::fs::read_dir(cache).unwrap() {
        let path = entry.unwrap().path();
        let raw = std::fs::read(&path).unwrap();
        let at = 6;
        if raw.len() > at + key.len() + 8
            && &raw[at..at + key.len()] == key.as_bytes()
            && raw[at + key.len()..at + key.len() + 8] == index.to_be_bytes()
        {
            return path;
        }
    }
    panic!("no cache file for {key} chunk {index}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_byte_in_a_cached_chunk_is_caught_and_the_chunk_refetched() {
    let backend = common::memory_backend();
    let remote = backend.remote.clone();
    let dir = tempfile::tempdir().unwrap();
    let log = Log::generate(0, 40, 2, 700, 0);
    let meta = upload(&remote, dir.path(), "dmg", std::slice::from_ref(&log)).await[0].clone();
    let key = meta.name().log_key("dmg", 0);
    let cache_dir = dir.path().join("cache");
    let r = reader(&remote, &cache_dir, config(false));
    assert_eq!(read_all(&r, "dmg", 1 << 20).await, log.bytes);
    r.wait_for_prefetches().await;
    drop(r);
    let fetched = remote.metrics().cache_misses.get();
    assert_eq!(fetched, chunks_of(&meta));

    // Flip one byte in the data of chunk 1 (batch bytes, not its header).
    let path = cache_file(&cache_dir, &key, 1);
    let mut raw = std::fs::read(&path).unwrap();
    let last = raw.len() - 100;
    raw[last] ^= 0x08;
    std::fs::write(&path, raw).unwrap();

    // A fresh reader (nothing in memory) reads the range from the file,
    // finds the damage, drops the file and fetches the chunk again.
    let r = reader(&remote, &cache_dir, config(false));
    assert_eq!(read_all(&r, "dmg", 1000).await, log.bytes);
    assert_eq!(remote.metrics().cache_misses.get(), fetched + 1);
    r.wait_for_prefetches().await;
    drop(r);
    // The refetched chunk is cached again: everything reads from disk.
    let r = reader(&remote, &cache_dir, config(false));
    assert_eq!(read_all(&r, "dmg", 1 << 20).await, log.bytes);
    assert_eq!(remote.metrics().cache_misses.get(), fetched + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_batches_cached_with_valid_checksums_are_refetched() {
    // Bytes damaged before they were cached (say in transit) pass the
    // cache's own checks; the batch CRC catches them, the reader drops the
    // chunk and reads it again from the store.
    let backend = common::memory_backend();
    let remote = backend.remote.clone();
    let dir = tempfile::tempdir().unwrap();
    let log = Log::generate(0, 40, 2, 700, 0);
    let meta = upload(&remote, dir.path(), "dmg2", std::slice::from_ref(&log)).await[0].clone();
    let key = meta.name().log_key("dmg2", 0);
    let cache_dir = dir.path().join("cache");
    let r = reader(&remote, &cache_dir, config(false));
    let mut damaged = log.bytes[..CHUNK as usize].to_vec();
    damaged[log.batches[1].position + 70] ^= 1;
    r.cache()
        .insert(&key, 0, Bytes::from(damaged))
        .await
        .unwrap();
    let slice = r.read("dmg2", 0, log.batches[1].base, 1).await.unwrap();
    let b = log.batches[1];
    assert_eq!(
        &slice.bytes[..],
        &log.bytes[b.position..b.position + b.size]
    );
    assert_eq!(remote.metrics().cache_misses.get(), 1);
    assert_eq!(read_all(&r, "dmg2", 1 << 20).await, log.bytes);

    // A damaged object in the store stays an error (after one refetch).
    let mut flipped = log.bytes.clone();
    flipped[log.batches[1].position + 70] ^= 1;
    remote.put(&key, Bytes::from(flipped)).await.unwrap();
    let r = reader(&remote, &dir.path().join("cache2"), config(false));
    match r.read("dmg2", 0, log.batches[1].base, 1).await {
        Err(Error::CorruptObject { .. }) => {}
        other => panic!("expected corruption, got {other:?}"),
    }
    match r.read("dmg2", 0, log.batches[1].base, 1).await {
        Err(Error::CorruptObject { .. }) => {}
        other => panic!("expected corruption, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_readers_fetch_each_chunk_once() {
    let backend = common::memory_backend();
    let remote = backend.remote.clone();
    let dir = tempfile::tempdir().unwrap();
    let logs = [
        Log::generate(0, 60, 2, 900, 0),
        Log::generate(120, 60, 2, 900, 0),
    ];
    let metas = upload(&remote, dir.path(), "conc", &logs).await;
    let whole: Vec<u8> = logs.iter().flat_map(|l| l.bytes.clone()).collect();
    // A memory tier of one chunk: chunks leave memory while being written.
    let r = RemoteReader::with_config(
        remote.clone(),
        ChunkCache::open_with_memory(dir.path().join("cache"), 1 << 30, CHUNK).unwrap(),
        config(true),
    );
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let r = r.clone();
        tasks.push(tokio::spawn(
            async move { read_all(&r, "conc", 1500).await },
        ));
    }
    for task in tasks {
        assert_eq!(task.await.unwrap(), whole);
    }
    r.wait_for_prefetches().await;
    let chunks: u64 = metas.iter().map(chunks_of).sum();
    assert_eq!(remote.metrics().cache_misses.get(), chunks);
    assert_eq!(remote.metrics().fetched_bytes.get(), whole.len() as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sequential_readers_prefetch_two_chunks_ahead() {
    let backend = common::memory_backend();
    let remote = backend.remote.clone();
    let dir = tempfile::tempdir().unwrap();
    let logs = [
        Log::generate(0, 40, 1, 700, 0),
        Log::generate(40, 40, 1, 700, 0),
    ];
    let metas = upload(&remote, dir.path(), "pf", &logs).await;
    let keys: Vec<String> = metas.iter().map(|m| m.name().log_key("pf", 0)).collect();
    assert!(chunks_of(&metas[0]) >= 4);
    let r = reader(&remote, &dir.path().join("cache"), config(true));
    let cache = r.cache().clone();
    let held = |key: &str| -> Vec<u64> { (0..8).filter(|i| cache.contains(key, *i)).collect() };

    // A first (not yet sequential) read early in chunk 0: no prefetch.
    let first = r.read("pf", 0, 0, 1).await.unwrap();
    r.wait_for_prefetches().await;
    assert_eq!(held(&keys[0]), vec![0]);
    // Continuing where it ended: chunks 1 and 2 come ahead, not 3.
    let second = r.read("pf", 0, first.next_offset, 1).await.unwrap();
    assert_eq!(second.base_offset, first.next_offset);
    r.wait_for_prefetches().await;
    assert_eq!(held(&keys[0]), vec![0, 1, 2]);
    assert_eq!(remote.metrics().cache_misses.get(), 3);

    // A jump to the last batch of the segment (not sequential, second half
    // of its chunk): one chunk ahead, the first of the next segment.
    let last = logs[0].batches.last().unwrap();
    let jump = r.read("pf", 0, last.base, 1).await.unwrap();
    assert_eq!(jump.next_offset, 40);
    r.wait_for_prefetches().await;
    assert!(held(&keys[1]).len() <= 1);
    // Then reading on into the next segment is sequential: two ahead there.
    let next = r.read("pf", 0, 40, 1).await.unwrap();
    assert_eq!(next.base_offset, 40);
    r.wait_for_prefetches().await;
    assert_eq!(held(&keys[1]), vec![0, 1, 2]);

    // Reading everything sequentially stays byte-identical.
    let whole: Vec<u8> = logs.iter().flat_map(|l| l.bytes.clone()).collect();
    assert_eq!(read_all(&r, "pf", 3000).await, whole);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_gets_make_fast_sequential_readers_prefetch_deeper() {
    let backend = common::memory_backend();
    let dir = tempfile::tempdir().unwrap();
    let log = Log::generate(0, 200, 1, 700, 0);
    let meta = upload(
        &backend.remote,
        dir.path(),
        "deep",
        std::slice::from_ref(&log),
    )
    .await;
    assert!(chunks_of(&meta[0]) >= 12);
    let (remote, faults) = common::with_faults(&backend.remote, common::fast_retry(5));
    faults.set_latency(Duration::from_millis(30));
    let config = ReaderConfig {
        max_prefetch_chunks: 5,
        max_prefetches: 8,
        max_ahead_chunks: 8,
        ..config(true)
    };
    let r = reader(&remote, &dir.path().join("cache"), config);
    let key = meta[0].name().log_key("deep", 0);
    let mut offset = 0;
    let mut deepest = 0;
    let mut out = Vec::new();
    for read in 0.. {
        if offset > log.last() {
            break;
        }
        let slice = r.read("deep", 0, offset, 1).await.unwrap();
        out.extend_from_slice(&slice.bytes);
        offset = slice.next_offset;
        assert!(r.chunks_ahead() <= 8);
        if read % 5 == 4 {
            // Let the prefetches land, then count the chunks held or cached
            // past the one the read ended in.
            r.wait_for_prefetches().await;
            let last = log.batches.iter().find(|b| b.last == offset - 1).unwrap();
            let current = (last.position + last.size - 1) as u64 / CHUNK;
            let ahead = (current + 1..chunks_of(&meta[0]))
                .take_while(|i| r.cache().contains(&key, *i))
                .count();
            assert!(ahead <= 5, "{ahead} chunks ahead of chunk {current}");
            deepest = deepest.max(ahead);
        }
    }
    assert_eq!(out, log.bytes);
    // 30 ms per GET against reads that take microseconds: more than the
    // 2 chunks a reader of unknown speed gets, at most the cap of 5.
    assert!(deepest > 2, "deepest {deepest}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deeper_prefetch_keeps_memory_bounded() {
    let backend = common::memory_backend();
    let dir = tempfile::tempdir().unwrap();
    let topics: Vec<String> = (0..6).map(|i| format!("mem{i}")).collect();
    let mut logs = Vec::new();
    for topic in &topics {
        let log = Log::generate(0, 60, 1, 900, 0);
        upload(
            &backend.remote,
            dir.path(),
            topic,
            std::slice::from_ref(&log),
        )
        .await;
        logs.push(log);
    }
    let (remote, faults) = common::with_faults(&backend.remote, common::fast_retry(5));
    faults.set_latency(Duration::from_millis(5));
    let (max_ahead, memory_chunks) = (5, 2);
    let config = ReaderConfig {
        max_prefetch_chunks: 6,
        max_prefetches: 4,
        max_ahead_chunks: max_ahead,
        ..config(true)
    };
    let r = RemoteReader::with_config(
        remote.clone(),
        ChunkCache::open_with_memory(dir.path().join("cache"), 1 << 30, memory_chunks * CHUNK)
            .unwrap(),
        config,
    );
    // Six sequential readers, round robin, a batch per read.
    let mut offsets = vec![0i64; topics.len()];
    let mut out = vec![Vec::new(); topics.len()];
    let mut peak = 0;
    while offsets.iter().zip(&logs).any(|(o, l)| *o <= l.last()) {
        for (i, topic) in topics.iter().enumerate() {
            if offsets[i] > logs[i].last() {
                continue;
            }
            let slice = r.read(topic, 0, offsets[i], 1).await.unwrap();
            out[i].extend_from_slice(&slice.bytes);
            offsets[i] = slice.next_offset;
            drop(slice);
            let ahead = r.chunks_ahead();
            let in_use = r.buffers().in_use();
            peak = peak.max(in_use);
            assert!(ahead <= max_ahead, "{ahead} chunks ahead");
            // Every live chunk buffer is ahead, in the memory tier, or
            // being written to its cache file.
            let bound = max_ahead + memory_chunks as usize + r.cache().writes_in_progress();
            assert!(in_use <= bound, "{in_use} buffers in use, bound {bound}");
        }
    }
    for (got, log) in out.iter().zip(&logs) {
        assert_eq!(got, &log.bytes);
    }
    assert!(
        peak > memory_chunks as usize,
        "prefetch never ran: peak {peak}"
    );
    r.wait_for_prefetches().await;
    assert!(r.buffers().in_use() <= max_ahead + memory_chunks as usize);
    // Unused buffers kept for reuse stay within the budget too.
    assert!(r.buffers().idle() <= max_ahead + memory_chunks as usize);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_stay_within_one_chunk_unless_their_first_batch_crosses() {
    let backend = common::memory_backend();
    let dir = tempfile::tempdir().unwrap();
    let log = Log::generate(0, 80, 1, 1500, 0);
    upload(
        &backend.remote,
        dir.path(),
        "span",
        std::slice::from_ref(&log),
    )
    .await;
    let r = reader(&backend.remote, &dir.path().join("cache"), config(true));
    let mut crossing = 0;
    for max_bytes in [1, 3000, 1 << 20] {
        let mut offset = 0;
        let mut out = Vec::new();
        while offset <= log.last() {
            let slice = r.read("span", 0, offset, max_bytes).await.unwrap();
            let first = log
                .batches
                .iter()
                .find(|b| b.base == slice.base_offset)
                .unwrap();
            let (start, end) = (first.position, first.position + slice.bytes.len());
            let (start_chunk, end_chunk) = (start as u64 / CHUNK, (end as u64 - 1) / CHUNK);
            if start_chunk != end_chunk {
                // Only a first batch that runs into the next chunk, alone.
                assert_eq!(slice.bytes.len(), first.size, "read at {offset}");
                crossing += 1;
            }
            out.extend_from_slice(&slice.bytes);
            offset = slice.next_offset;
        }
        assert_eq!(out, log.bytes, "max_bytes {max_bytes}");
    }
    assert!(crossing > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sequential_reread_loads_cached_chunks_ahead_from_disk() {
    let backend = common::memory_backend();
    let remote = backend.remote.clone();
    let dir = tempfile::tempdir().unwrap();
    let log = Log::generate(0, 120, 1, 900, 0);
    let meta = upload(&remote, dir.path(), "again", std::slice::from_ref(&log)).await;
    let cache_dir = dir.path().join("cache");
    let first = reader(&remote, &cache_dir, config(false));
    assert_eq!(read_all(&first, "again", 1 << 20).await, log.bytes);
    first.wait_for_prefetches().await;
    drop(first);
    let fetched = remote.metrics().fetched_bytes.get();
    assert_eq!(fetched, meta[0].size_bytes);

    // A fresh reader (nothing in memory) reading batch by batch: its
    // prefetches load the next chunks from their cache files.
    let r = RemoteReader::with_config(
        remote.clone(),
        ChunkCache::open_with_memory(&cache_dir, 1 << 30, CHUNK).unwrap(),
        config(true),
    );
    let mut offset = 0;
    let mut out = Vec::new();
    let mut held = 0;
    while offset <= log.last() {
        let slice = r.read("again", 0, offset, 1).await.unwrap();
        out.extend_from_slice(&slice.bytes);
        offset = slice.next_offset;
        r.wait_for_prefetches().await;
        held = held.max(r.chunks_ahead());
    }
    assert_eq!(out, log.bytes);
    assert!(held >= 2, "no chunk was loaded ahead: {held}");
    assert_eq!(
        remote.metrics().fetched_bytes.get(),
        fetched,
        "a re-read went to the store"
    );
}
