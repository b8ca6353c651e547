//! The conformance suite: the same scenarios against every store Floe
//! supports — a local directory, the in-memory store, s3s-fs (a real
//! SigV4-checking S3 server started in-process) and, when
//! `FLOE_TEST_S3_ENDPOINT` is set, an external S3-compatible server (moto in
//! CI).

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use common::{Backend, Log};
use shadow_index::cache::ChunkCache;
use shadow_index::error::Error;
use shadow_index::layout::{SegmentName, manifest_key};
use shadow_index::manifest::TopicManifest;
use shadow_index::reader::{ReaderConfig, RemoteReader};
use shadow_index::recovery::{RecoveryOptions, recover_all};
use shadow_index::retention::{
    RetentionPolicy, apply_retention, delete_records, delete_topic, sweep_orphans,
};
use shadow_index::store::Remote;
use shadow_index::uploader::{UploadOutcome, Uploader, UploaderConfig};

fn uploader(remote: &Remote) -> Uploader {
    Uploader::new(
        remote.clone(),
        UploaderConfig {
            multipart_threshold: 8 << 20,
            part_size: 5 << 20,
            index_interval: 1024,
            retry: common::fast_retry(5),
            ..UploaderConfig::default()
        },
    )
}

fn reader(remote: &Remote, cache_dir: &std::path::Path, chunk_size: u64) -> RemoteReader {
    let cache = ChunkCache::open(cache_dir, 1 << 30).unwrap();
    RemoteReader::with_config(
        remote.clone(),
        cache,
        ReaderConfig {
            chunk_size,
            ..ReaderConfig::default()
        },
    )
}

/// Reads the whole remote tier from `from` with `max_bytes` per call.
async fn read_all(
    reader: &RemoteReader,
    topic: &str,
    partition: i32,
    from: i64,
    max_bytes: usize,
) -> Vec<u8> {
    let mut out = Vec::new();
    let mut offset = from;
    loop {
        match reader.read(topic, partition, offset, max_bytes).await {
            Ok(slice) => {
                assert!(slice.next_offset > offset);
                out.extend_from_slice(&slice.bytes);
                offset = slice.next_offset;
            }
            Err(Error::OffsetOutOfRange { end, .. }) if offset == end => return out,
            Err(e) => panic!("read at {offset}: {e}"),
        }
    }
}

async fn store_basics(remote: Remote) {
    remote.check().await.unwrap();
    let body = Bytes::from_static(b"0123456789abcdef");
    remote.put("topics/t/0/x.bin", body.clone()).await.unwrap();
    remote
        .put("topics/u/topic.json", body.clone())
        .await
        .unwrap();
    assert_eq!(remote.get("topics/t/0/x.bin").await.unwrap(), body);
    assert_eq!(
        remote.get_range("topics/t/0/x.bin", 3..9).await.unwrap(),
        body.slice(3..9)
    );
    assert_eq!(remote.head("topics/t/0/x.bin").await.unwrap(), 16);
    let listed = remote.list("topics/t").await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].key, "topics/t/0/x.bin");
    assert_eq!(listed[0].size, 16);
    assert_eq!(remote.list_dirs("topics").await.unwrap(), vec!["t", "u"]);
    let missing = remote.get("topics/t/0/nope").await.unwrap_err();
    assert!(missing.is_not_found(), "{missing}");
    assert!(!missing.is_retriable());
    remote.delete("topics/t/0/x.bin").await.unwrap();
    remote.delete("topics/t/0/x.bin").await.unwrap();
    assert!(remote.list("topics/t").await.unwrap().is_empty());
    // The probe leaves nothing behind.
    assert!(remote.list("_floe_probe").await.unwrap().is_empty());
}

async fn upload_and_read_back(remote: Remote) {
    let dir = tempfile::tempdir().unwrap();
    let up = uploader(&remote);
    let logs = [
        Log::generate(0, 120, 5, 3000, 1_000_000),
        Log::generate(600, 80, 3, 5000, 2_000_000),
        Log::generate(840, 1, 1, 10, 3_000_000),
    ];
    for log in &logs {
        let outcome = up
            .upload_segment(&log.seal(dir.path(), "orders", 2))
            .await
            .unwrap();
        let UploadOutcome::Uploaded(meta) = outcome else {
            panic!("expected an upload");
        };
        assert_eq!(
            (meta.base_offset, meta.last_offset),
            (log.base(), log.last())
        );
        assert_eq!(meta.size_bytes, log.bytes.len() as u64);
        assert_eq!(meta.crc32c, crc32c::crc32c(&log.bytes));
        assert_eq!(meta.batch_count, log.batches.len() as u64);
        // The objects are exactly the segment and a decodable index.
        let stored = remote.get(&meta.name().log_key("orders", 2)).await.unwrap();
        assert_eq!(&stored[..], &log.bytes[..]);
        assert_eq!(
            remote
                .head(&meta.name().index_key("orders", 2))
                .await
                .unwrap(),
            meta.index_size
        );
    }
    let manifest = remote.load_manifest("orders", 2).await.unwrap().unwrap();
    assert_eq!(manifest.segments.len(), 3);
    assert_eq!(manifest.next_offset(), 841);
    assert_eq!(manifest.remote_start_offset, 0);

    let whole: Vec<u8> = logs.iter().flat_map(|l| l.bytes.clone()).collect();
    // Small chunks so batches straddle chunk boundaries.
    let r = reader(&remote, &dir.path().join("cache"), 4096);
    assert_eq!(read_all(&r, "orders", 2, 0, 1 << 20).await, whole);
    assert_eq!(
        read_all(&r, "orders", 2, 0, 1).await,
        whole,
        "one batch per read"
    );

    // From any offset: the batch holding it first, byte-identical.
    for offset in [1, 4, 5, 333, 599, 600, 601, 839, 840] {
        let slice = r.read("orders", 2, offset, 64 << 10).await.unwrap();
        let log = logs.iter().find(|l| l.last() >= offset).unwrap();
        let expected = log.bytes_from(offset);
        assert!(slice.base_offset <= offset && slice.next_offset > offset);
        assert_eq!(
            &slice.bytes[..],
            &expected[..slice.bytes.len()],
            "offset {offset}"
        );
    }
    match r.read("orders", 2, 841, 100).await {
        Err(Error::OffsetOutOfRange {
            start: 0, end: 841, ..
        }) => {}
        other => panic!("expected out of range, got {other:?}"),
    }
    match r.read("orders", 9, 0, 100).await {
        Err(Error::NoRemoteData { .. }) => {}
        other => panic!("expected no data, got {other:?}"),
    }
    assert_eq!(r.remote_range("orders", 2).await.unwrap(), Some((0, 841)));

    // A fresh reader over the same cache directory is served from disk.
    r.wait_for_prefetches().await;
    drop(r);
    let misses = remote.metrics().cache_misses.get();
    let r = reader(&remote, &dir.path().join("cache"), 4096);
    assert_eq!(read_all(&r, "orders", 2, 0, 1 << 20).await, whole);
    assert_eq!(
        remote.metrics().cache_misses.get(),
        misses,
        "all chunks cached on disk"
    );
}

async fn multipart_upload(remote: Remote) {
    let dir = tempfile::tempdir().unwrap();
    // About 11 MiB: three parts of at least 5 MiB (S3's minimum) but the last.
    let log = Log::generate(0, 180, 10, 128 << 10, 0);
    assert!(log.bytes.len() > 10 << 20);
    let outcome = uploader(&remote)
        .upload_segment(&log.seal(dir.path(), "big", 0))
        .await
        .unwrap();
    let UploadOutcome::Uploaded(meta) = outcome else {
        panic!("expected an upload");
    };
    assert_eq!(meta.crc32c, crc32c::crc32c(&log.bytes));
    let stored = remote.get(&meta.name().log_key("big", 0)).await.unwrap();
    assert!(stored[..] == log.bytes[..], "multipart object differs");
    let r = reader(&remote, &dir.path().join("cache"), 1 << 20);
    assert_eq!(read_all(&r, "big", 0, 0, 3 << 20).await, log.bytes);
}

async fn idempotent_and_overlapping_uploads(remote: Remote) {
    let dir = tempfile::tempdir().unwrap();
    let up = uploader(&remote);
    let all = Log::generate(0, 60, 4, 700, 0);
    // First segment: batches 0..40; a second covering batches 30..60 overlaps.
    let first = Log {
        bytes: all.bytes[..all.batches[40].position].to_vec(),
        batches: all.batches[..40].to_vec(),
    };
    let second_start = all.batches[30].position;
    let second = Log {
        bytes: all.bytes[second_start..].to_vec(),
        batches: all.batches[30..]
            .iter()
            .map(|b| common::BatchInfo {
                position: b.position - second_start,
                ..*b
            })
            .collect(),
    };
    let first_seg = first.seal(dir.path(), "idem", 0);
    assert!(matches!(
        up.upload_segment(&first_seg).await.unwrap(),
        UploadOutcome::Uploaded(_)
    ));
    assert_eq!(
        up.upload_segment(&first_seg).await.unwrap(),
        UploadOutcome::AlreadyCovered { next_offset: 160 }
    );
    let UploadOutcome::Uploaded(trimmed) = up
        .upload_segment(&second.seal(dir.path(), "idem", 0))
        .await
        .unwrap()
    else {
        panic!("expected the tail to be uploaded");
    };
    assert_eq!((trimmed.base_offset, trimmed.last_offset), (160, 239));
    let manifest = remote.load_manifest("idem", 0).await.unwrap().unwrap();
    assert_eq!(manifest.segments.len(), 2);
    let r = reader(&remote, &dir.path().join("cache"), 8192);
    assert_eq!(read_all(&r, "idem", 0, 0, 10_000).await, all.bytes);

    // A sealed file whose declared range does not match its batches is refused.
    let mut lying = Log::generate(240, 3, 1, 10, 0).seal(dir.path(), "idem", 0);
    lying.last_offset = 250;
    assert!(matches!(
        up.upload_segment(&lying).await,
        Err(Error::InvalidSegment { .. })
    ));
    assert_eq!(
        remote
            .load_manifest("idem", 0)
            .await
            .unwrap()
            .unwrap()
            .segments
            .len(),
        2
    );
}

async fn retention_and_delete_records(remote: Remote) {
    let dir = tempfile::tempdir().unwrap();
    let up = uploader(&remote);
    let logs: Vec<Log> = (0..4)
        .map(|i| Log::generate(i * 100, 20, 5, 400, i * 1_000_000))
        .collect();
    for log in &logs {
        up.upload_segment(&log.seal(dir.path(), "ret", 1))
            .await
            .unwrap();
    }
    let key_of = |log: &Log| {
        SegmentName {
            base_offset: log.base(),
            last_offset: log.last(),
            epoch: 1,
        }
        .log_key("ret", 1)
    };
    // DeleteRecords into the middle of segment 1: segment 0 goes.
    let outcome = delete_records(&remote, "ret", 1, 150).await.unwrap();
    assert_eq!(outcome.remote_start_offset, 150);
    assert_eq!(outcome.deleted_segments, 1);
    assert!(
        remote
            .get(&key_of(&logs[0]))
            .await
            .unwrap_err()
            .is_not_found()
    );
    let r = reader(&remote, &dir.path().join("cache"), 1 << 20);
    match r.read("ret", 1, 149, 100).await {
        Err(Error::OffsetOutOfRange { start: 150, .. }) => {}
        other => panic!("expected out of range at start 150, got {other:?}"),
    }
    let slice = r.read("ret", 1, 150, 100).await.unwrap();
    assert_eq!(slice.base_offset, 150);
    assert_eq!(r.remote_start("ret", 1).await.unwrap(), Some(150));

    // retention.bytes: keep about two segments in total with 0 local bytes.
    let two = (logs[2].bytes.len() + logs[3].bytes.len()) as u64;
    let outcome = apply_retention(
        &remote,
        "ret",
        1,
        &RetentionPolicy {
            retention_bytes: Some(two),
            ..RetentionPolicy::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(outcome.remote_start_offset, 200);
    assert_eq!(outcome.deleted_segments, 1);
    assert!(
        remote
            .get(&key_of(&logs[1]))
            .await
            .unwrap_err()
            .is_not_found()
    );

    // retention.ms: segment 2's newest record is older than now - ms, 3's is not;
    // keep_from protects segment 3 anyway.
    let now = 3_000_000 + 10_000;
    let outcome = apply_retention(
        &remote,
        "ret",
        1,
        &RetentionPolicy {
            retention_ms: Some(500_000),
            now_ms: Some(now),
            ..RetentionPolicy::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(outcome.remote_start_offset, 300);
    let outcome = apply_retention(
        &remote,
        "ret",
        1,
        &RetentionPolicy {
            retention_ms: Some(0),
            keep_from: Some(350),
            now_ms: Some(now * 10),
            ..RetentionPolicy::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(
        outcome.deleted_segments, 0,
        "keep_from protects the last segment"
    );
    let manifest = remote.load_manifest("ret", 1).await.unwrap().unwrap();
    assert_eq!(manifest.segments.len(), 1);
    assert_eq!(manifest.next_offset(), 400);
    assert_eq!(read_all(&r, "ret", 1, 300, 1 << 20).await, logs[3].bytes);
}

async fn timestamps(remote: Remote) {
    let dir = tempfile::tempdir().unwrap();
    let up = uploader(&remote);
    let a = Log::generate(0, 50, 2, 900, 10_000);
    let b = Log::generate(100, 50, 2, 900, 200_000);
    up.upload_segment(&a.seal(dir.path(), "ts", 0))
        .await
        .unwrap();
    up.upload_segment(&b.seal(dir.path(), "ts", 0))
        .await
        .unwrap();
    let r = reader(&remote, &dir.path().join("cache"), 2048);
    for (ts, expected) in [
        (0, Some(0)),
        (10_000, Some(0)),
        (10_001, Some(0)),
        (10_002, Some(2)),
        (37_000, Some(54)),
        (59_002, Some(100)),
        (200_000, Some(100)),
        (249_001, Some(198)),
        (249_002, None),
    ] {
        assert_eq!(
            r.offset_for_timestamp("ts", 0, ts).await.unwrap(),
            expected,
            "ts {ts}"
        );
    }
}

async fn orphans_are_swept(remote: Remote) {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::generate(0, 10, 1, 100, 0);
    uploader(&remote)
        .upload_segment(&log.seal(dir.path(), "orph", 0))
        .await
        .unwrap();
    let stray = SegmentName {
        base_offset: 10,
        last_offset: 19,
        epoch: 1,
    };
    remote
        .put(&stray.log_key("orph", 0), Bytes::from_static(b"leftover"))
        .await
        .unwrap();
    remote
        .put(&stray.index_key("orph", 0), Bytes::from_static(b"leftover"))
        .await
        .unwrap();
    let young = sweep_orphans(&remote, "orph", 0, Duration::from_secs(3600))
        .await
        .unwrap();
    assert!(young.is_empty(), "the age guard protects in-flight uploads");
    let deleted = sweep_orphans(&remote, "orph", 0, Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(deleted.len(), 2);
    let left: Vec<String> = remote
        .list("topics/orph/0")
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.key)
        .collect();
    assert_eq!(left.len(), 3, "{left:?}");
    assert!(left.contains(&manifest_key("orph", 0)));
    let r = reader(&remote, &dir.path().join("cache"), 1 << 20);
    assert_eq!(read_all(&r, "orph", 0, 0, 1 << 20).await, log.bytes);
}

async fn recovery_and_topic_delete(remote: Remote) {
    let dir = tempfile::tempdir().unwrap();
    let up = uploader(&remote);
    let mut configs = BTreeMap::new();
    configs.insert("remote.storage.enable".to_owned(), "true".to_owned());
    remote
        .save_topic(&TopicManifest::new("rec", 3, configs.clone()))
        .await
        .unwrap();
    remote
        .save_topic(&TopicManifest::new("rec2", 1, BTreeMap::new()))
        .await
        .unwrap();
    for p in 0..2 {
        let log = Log::generate(0, 10 + p as usize, 3, 100, 5);
        up.upload_segment(&log.seal(dir.path(), "rec", p))
            .await
            .unwrap();
    }
    delete_records(&remote, "rec", 1, 6).await.unwrap();
    // A fresh process: a new handle on the same bucket has no cache.
    let mut progress = Vec::new();
    let found = recover_all(
        &remote,
        RecoveryOptions {
            verify_objects: true,
        },
        &mut |p| progress.push(format!("{p:?}")),
    )
    .await
    .unwrap();
    assert_eq!(found.len(), 2);
    let rec = &found[0];
    assert_eq!(rec.topic.topic, "rec");
    assert_eq!(rec.topic.configs, configs);
    let ranges: Vec<(i64, i64)> = rec
        .partitions
        .iter()
        .map(|p| (p.remote_start_offset, p.next_offset))
        .collect();
    assert_eq!(ranges, vec![(0, 30), (6, 33), (0, 0)]);
    assert_eq!(progress.len(), 2 + 4);

    let deleted = delete_topic(&remote, "rec").await.unwrap();
    assert!(deleted >= 6);
    assert!(remote.list("topics/rec").await.unwrap().is_empty());
    assert!(remote.load_manifest("rec", 0).await.unwrap().is_none());
    let names: Vec<String> = shadow_index::recovery::list_topics(&remote)
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.topic)
        .collect();
    assert_eq!(names, vec!["rec2"]);
}

async fn corrupt_and_missing_objects_are_errors(remote: Remote) {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::generate(0, 30, 2, 500, 0);
    let UploadOutcome::Uploaded(meta) = uploader(&remote)
        .upload_segment(&log.seal(dir.path(), "bad", 0))
        .await
        .unwrap()
    else {
        panic!("expected an upload");
    };
    let key = meta.name().log_key("bad", 0);
    let mut flipped = log.bytes.clone();
    let target = log.batches[10];
    flipped[target.position + target.size - 3] ^= 0x40;
    remote.put(&key, Bytes::from(flipped)).await.unwrap();
    let r = reader(&remote, &dir.path().join("cache"), 4096);
    // Batches before the damage still read; the damaged one is an error
    // naming the segment's range, never data.
    let ok = r.read("bad", 0, 0, 1).await.unwrap();
    assert_eq!(&ok.bytes[..], &log.bytes[..log.batches[0].size]);
    match r.read("bad", 0, target.base, 1 << 20).await {
        Err(
            e @ Error::CorruptObject {
                base_offset: 0,
                last_offset: 59,
                ..
            },
        ) => {
            assert!(!e.is_retriable());
        }
        other => panic!("expected corruption, got {other:?}"),
    }
    remote.delete(&key).await.unwrap();
    let r = reader(&remote, &dir.path().join("cache2"), 4096);
    match r.read("bad", 0, 0, 1 << 20).await {
        Err(Error::MissingObject {
            base_offset: 0,
            last_offset: 59,
            ..
        }) => {}
        other => panic!("expected missing object, got {other:?}"),
    }
}

macro_rules! conformance {
    ($($scenario:ident),* $(,)?) => {
        mod local {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $scenario() {
                let backend = super::common::local_backend();
                super::$scenario(backend.remote.clone()).await;
            })*
        }
        mod memory {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $scenario() {
                let backend = super::common::memory_backend();
                super::$scenario(backend.remote.clone()).await;
            })*
        }
        mod s3s {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $scenario() {
                let backend = super::common::s3s_backend().await;
                super::$scenario(backend.remote.clone()).await;
            })*
        }
        mod external_s3 {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $scenario() {
                let Some(backend): Option<super::Backend> = super::common::external_s3_backend() else {
                    eprintln!("FLOE_TEST_S3_ENDPOINT not set; external S3 run skipped");
                    return;
                };
                super::$scenario(backend.remote.clone()).await;
            })*
        }
    };
}

conformance!(
    store_basics,
    upload_and_read_back,
    multipart_upload,
    idempotent_and_overlapping_uploads,
    retention_and_delete_records,
    timestamps,
    orphans_are_swept,
    recovery_and_topic_delete,
    corrupt_and_missing_objects_are_errors,
);
