//! The reader's use of the chunk cache: range reads of cached chunks,
//! damage in cache files, single fetches under concurrency, prefetch depth.

mod common;

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
