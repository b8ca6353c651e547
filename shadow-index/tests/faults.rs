//! Fault scenarios of TESTING.md at test scale, with a fault-injecting
//! decorator over a real store:
//! - T1: the store returns 503s (an outage, then flakiness): uploads resume
//!   and nothing is lost.
//! - T3: a crash at each upload step leaves no manifest entry without its
//!   objects; the leftovers are orphans the sweeper removes.
//! - T4: flaky remote reads (503s, truncated bodies, bodies that break
//!   or run past their range midway, latency) return identical bytes or a
//!   retriable error.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Log, fast_retry, with_faults};
use shadow_index::cache::ChunkCache;
use shadow_index::error::Error;
use shadow_index::reader::{ReaderConfig, RemoteReader};
use shadow_index::retention::sweep_orphans;
use shadow_index::store::Remote;
use shadow_index::uploader::{UploadOutcome, Uploader, UploaderConfig};

fn uploader(remote: &Remote, attempts: u32) -> Uploader {
    Uploader::new(
        remote.clone(),
        UploaderConfig {
            retry: fast_retry(attempts),
            index_interval: 512,
            ..UploaderConfig::default()
        },
    )
}

fn reader(remote: &Remote, cache_dir: &std::path::Path, cache_bytes: u64) -> RemoteReader {
    RemoteReader::with_config(
        remote.clone(),
        ChunkCache::open(cache_dir, cache_bytes).unwrap(),
        ReaderConfig {
            chunk_size: 2048,
            prefetch: false,
            ..ReaderConfig::default()
        },
    )
}

async fn read_all(reader: &RemoteReader, topic: &str, partition: i32) -> Vec<u8> {
    let mut out = Vec::new();
    let mut offset = 0;
    loop {
        match reader.read(topic, partition, offset, 10_000).await {
            Ok(slice) => {
                out.extend_from_slice(&slice.bytes);
                offset = slice.next_offset;
            }
            Err(Error::OffsetOutOfRange { end, .. }) if end == offset => return out,
            Err(e) => panic!("read at {offset}: {e}"),
        }
    }
}

fn segments(count: usize) -> Vec<Log> {
    let mut base = 0;
    (0..count)
        .map(|i| {
            let log = Log::generate(base, 15 + i, 4, 800, i as i64 * 100_000);
            base = log.last() + 1;
            log
        })
        .collect()
}

/// Every segment the manifest lists has its `.log` and `.index` objects.
async fn assert_manifest_honest(remote: &Remote, topic: &str, partition: i32) {
    let Some(manifest) = remote.load_manifest(topic, partition).await.unwrap() else {
        return;
    };
    for s in &manifest.segments {
        let name = s.name();
        assert_eq!(
            remote.head(&name.log_key(topic, partition)).await.unwrap(),
            s.size_bytes
        );
        assert_eq!(
            remote
                .head(&name.index_key(topic, partition))
                .await
                .unwrap(),
            s.index_size
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t1_uploads_resume_after_an_outage_and_nothing_is_lost() {
    let backend = common::local_backend();
    let clean = backend.remote.clone();
    let (remote, faults) = with_faults(&clean, fast_retry(3));
    let dir = tempfile::tempdir().unwrap();
    let up = uploader(&remote, 3);
    let logs = segments(5);

    faults.set_outage(true);
    let first = up
        .upload_segment(&logs[0].seal(dir.path(), "t1", 0))
        .await
        .unwrap_err();
    assert!(first.is_retriable(), "{first}");
    assert!(clean.load_manifest("t1", 0).await.unwrap().is_none());

    let healer = {
        let faults = faults.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            faults.clear();
        })
    };
    // The broker's loop: keep the local segment, try again later.
    let mut failures = 1;
    for log in &logs {
        let segment = log.seal(dir.path(), "t1", 0);
        loop {
            match up.upload_segment(&segment).await {
                Ok(outcome) => {
                    assert_eq!(outcome.next_offset(), log.last() + 1);
                    break;
                }
                Err(e) => {
                    assert!(e.is_retriable(), "{e}");
                    failures += 1;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }
    }
    healer.await.unwrap();
    assert!(failures > 1);
    assert!(remote.metrics().uploads_failed.get() >= failures);
    assert_eq!(remote.metrics().uploads_ok.get(), 5);
    let whole: Vec<u8> = logs.iter().flat_map(|l| l.bytes.clone()).collect();
    let r = reader(&clean, &dir.path().join("cache"), 1 << 20);
    assert_eq!(read_all(&r, "t1", 0).await, whole);
    assert_manifest_honest(&clean, "t1", 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t1_flaky_store_with_concurrent_partitions_loses_nothing() {
    let backend = common::memory_backend();
    let clean = backend.remote.clone();
    let (remote, faults) = with_faults(&clean, fast_retry(10));
    faults.fail_every(3);
    faults.set_latency(Duration::from_millis(1));
    let dir = tempfile::tempdir().unwrap();
    let up = Arc::new(uploader(&remote, 10));
    let logs = Arc::new(segments(4));
    let mut tasks = Vec::new();
    for partition in 0..4 {
        let up = up.clone();
        let logs = logs.clone();
        let path = dir.path().to_owned();
        tasks.push(tokio::spawn(async move {
            for log in logs.iter() {
                let outcome = up
                    .upload_segment(&log.seal(&path, "flaky", partition))
                    .await
                    .unwrap();
                assert!(matches!(outcome, UploadOutcome::Uploaded(_)));
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    assert!(
        faults.injected() > 10,
        "faults were injected: {}",
        faults.injected()
    );
    faults.clear();
    let whole: Vec<u8> = logs.iter().flat_map(|l| l.bytes.clone()).collect();
    let r = reader(&clean, &dir.path().join("cache"), 1 << 20);
    for partition in 0..4 {
        assert_eq!(read_all(&r, "flaky", partition).await, whole);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t3_crash_between_data_and_manifest_leaves_only_orphans() {
    let backend = common::local_backend();
    let clean = backend.remote.clone();
    let (remote, faults) = with_faults(&clean, fast_retry(2));
    let dir = tempfile::tempdir().unwrap();
    let up = uploader(&remote, 2);
    let logs = segments(3);
    up.upload_segment(&logs[0].seal(dir.path(), "t3", 0))
        .await
        .unwrap();

    // Step 2 fails: data written, index and manifest not.
    faults.fail_puts_containing(".index");
    assert!(
        up.upload_segment(&logs[1].seal(dir.path(), "t3", 0))
            .await
            .is_err()
    );
    // Step 3 fails: data and index written, manifest not.
    faults.clear();
    faults.fail_puts_containing("manifest.json");
    assert!(
        up.upload_segment(&logs[1].seal(dir.path(), "t3", 0))
            .await
            .is_err()
    );
    faults.clear();

    assert_manifest_honest(&clean, "t3", 0).await;
    let manifest = clean.load_manifest("t3", 0).await.unwrap().unwrap();
    assert_eq!(manifest.segments.len(), 1);
    let objects = clean.list("topics/t3/0").await.unwrap();
    assert_eq!(
        objects.len(),
        5,
        "manifest + 2 listed + 2 orphans: {objects:?}"
    );
    // Nothing past the manifest is served.
    let r = reader(&clean, &dir.path().join("cache"), 1 << 20);
    match r.read("t3", 0, logs[1].base(), 100).await {
        Err(Error::OffsetOutOfRange { end, .. }) => assert_eq!(end, logs[1].base()),
        other => panic!("expected out of range, got {other:?}"),
    }
    let swept = sweep_orphans(&clean, "t3", 0, Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(swept.len(), 2, "{swept:?}");
    assert_manifest_honest(&clean, "t3", 0).await;

    // After the "restart" the broker uploads again; nothing is lost.
    for log in &logs[1..] {
        up.upload_segment(&log.seal(dir.path(), "t3", 0))
            .await
            .unwrap();
    }
    let whole: Vec<u8> = logs.iter().flat_map(|l| l.bytes.clone()).collect();
    let r = reader(&clean, &dir.path().join("cache2"), 1 << 20);
    assert_eq!(read_all(&r, "t3", 0).await, whole);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t3_an_upload_killed_at_any_moment_keeps_the_manifest_honest() {
    let backend = common::memory_backend();
    let clean = backend.remote.clone();
    let dir = tempfile::tempdir().unwrap();
    let logs = segments(6);
    let mut next = 0;
    let (mut killed, mut completed) = (0, 0);
    for (round, delay_ms) in [0u64, 2, 5, 9, 14, 20, 27, 35, 44, 60, 1000]
        .into_iter()
        .enumerate()
    {
        // A new "process" each round: fresh handle and cache, slow store.
        let (remote, faults) = with_faults(&clean, fast_retry(2));
        faults.set_latency(Duration::from_millis(4));
        let up = uploader(&remote, 2);
        let segment = logs[next].seal(dir.path(), "kill", 0);
        let task = tokio::spawn(async move { up.upload_segment(&segment).await });
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        task.abort();
        let finished = matches!(task.await, Ok(Ok(_)));
        assert_manifest_honest(&clean, "kill", 0).await;
        let listed = clean
            .load_manifest("kill", 0)
            .await
            .unwrap()
            .map_or(0, |m| m.segments.len());
        if finished {
            assert_eq!(listed, next + 1, "round {round}");
            completed += 1;
        } else {
            killed += 1;
        }
        next = listed.min(logs.len() - 1);
    }
    assert!(
        killed > 0 && completed > 0,
        "killed {killed}, completed {completed}"
    );
    let up = uploader(&clean, 2);
    for log in &logs {
        up.upload_segment(&log.seal(dir.path(), "kill", 0))
            .await
            .unwrap();
    }
    sweep_orphans(&clean, "kill", 0, Duration::ZERO)
        .await
        .unwrap();
    let manifest = clean.load_manifest("kill", 0).await.unwrap().unwrap();
    assert_eq!(
        clean.list("topics/kill/0").await.unwrap().len(),
        1 + 2 * manifest.segments.len()
    );
    let whole: Vec<u8> = logs.iter().flat_map(|l| l.bytes.clone()).collect();
    let r = reader(&clean, &dir.path().join("cache"), 1 << 20);
    assert_eq!(read_all(&r, "kill", 0).await, whole);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t4_flaky_reads_return_identical_bytes_or_a_retriable_error() {
    let backend = common::local_backend();
    let clean = backend.remote.clone();
    let dir = tempfile::tempdir().unwrap();
    let logs = segments(3);
    let up = uploader(&clean, 2);
    for log in &logs {
        up.upload_segment(&log.seal(dir.path(), "t4", 0))
            .await
            .unwrap();
    }
    let whole: Vec<u8> = logs.iter().flat_map(|l| l.bytes.clone()).collect();
    let batches: Vec<common::BatchInfo> = {
        let mut shift = 0;
        let mut all = Vec::new();
        for log in &logs {
            all.extend(log.batches.iter().map(|b| common::BatchInfo {
                position: b.position + shift,
                ..*b
            }));
            shift += log.bytes.len();
        }
        all
    };
    let end = logs.last().unwrap().last() + 1;

    for (attempts, must_succeed) in [(2, false), (8, true)] {
        let (remote, faults) = with_faults(&clean, fast_retry(attempts));
        faults.fail_every(4);
        faults.truncate_every(3);
        faults.set_latency(Duration::from_millis(1));
        // No cache: every read goes to the flaky store.
        let r = reader(&remote, &dir.path().join(format!("cache-{attempts}")), 0);
        let (mut ok, mut failed) = (0, 0);
        for offset in (0..end).step_by(7) {
            match r.read("t4", 0, offset, 3000).await {
                Ok(slice) => {
                    let b = batches.iter().find(|b| b.last >= offset).unwrap();
                    assert_eq!(slice.base_offset, b.base);
                    assert_eq!(
                        &slice.bytes[..],
                        &whole[b.position..b.position + slice.bytes.len()]
                    );
                    ok += 1;
                }
                Err(e) => {
                    assert!(e.is_retriable(), "offset {offset}: {e}");
                    assert!(!must_succeed, "offset {offset}: {e}");
                    failed += 1;
                }
            }
        }
        assert!(ok > 0);
        assert!(faults.injected() > 10);
        if !must_succeed {
            assert!(
                failed > 0,
                "two attempts against 1-in-3 truncation must fail sometimes"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t4_a_body_that_breaks_or_overruns_midway_is_an_error_not_data() {
    let backend = common::memory_backend();
    let clean = backend.remote.clone();
    let dir = tempfile::tempdir().unwrap();
    let logs = segments(2);
    let up = uploader(&clean, 2);
    for log in &logs {
        up.upload_segment(&log.seal(dir.path(), "t4b", 0))
            .await
            .unwrap();
    }
    let whole: Vec<u8> = logs.iter().flat_map(|l| l.bytes.clone()).collect();
    let (remote, faults) = with_faults(&clean, fast_retry(1));
    // No cache at all: every read GETs its chunks.
    let r = reader(&remote, &dir.path().join("cache"), 0);
    // Reading once while the store behaves keeps the index objects in
    // memory, so that every GET below is a chunk's.
    assert_eq!(read_all(&r, "t4b", 0).await, whole);
    for fault in ["break", "overrun"] {
        faults.clear();
        match fault {
            "break" => faults.break_every(1),
            _ => faults.overrun_every(1),
        }
        let injected = faults.injected();
        for offset in [0, 5, logs[1].base()] {
            match r.read("t4b", 0, offset, 3000).await {
                Err(e) => assert!(e.is_retriable(), "{fault} at {offset}: {e}"),
                Ok(slice) => panic!("{fault} at {offset}: data from a broken body: {slice:?}"),
            }
        }
        assert_eq!(faults.injected(), injected + 3, "{fault}");
        // The partly filled buffers went back to the pool.
        r.cache().flush().await;
        assert_eq!(r.buffers().in_use(), 0, "{fault}");
    }
    faults.clear();
    assert_eq!(read_all(&r, "t4b", 0).await, whole);
}
