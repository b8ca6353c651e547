//! Appends and reads across segment rolls, reopening, timestamps.

use std::cell::RefCell;
use std::rc::Rc;

use super::*;
use crate::log::{Disk, LogError, TimestampType};

#[test]
fn appends_read_back_across_segment_rolls() {
    run(|| async {
        let dir = tempfile::tempdir().unwrap();
        let log = PartitionLog::open(dir.path().join("t-0"), small_config(), Disk::Real)
            .await
            .unwrap();
        let mut produced = Vec::new();
        for i in 0..120u64 {
            let codec = CODECS[i as usize % CODECS.len()];
            // Every fifth append carries three batches.
            let count = if i % 5 == 0 { 3 } else { 1 };
            let batches: Vec<Vec<u8>> = (0..count)
                .map(|j| test_batch(i * 10 + j, 1 + (i as usize % 7), codec, 1_000 + i as i64))
                .collect();
            let expected_base = log.log_end_offset();
            let info = append(&log, batches.concat()).await.unwrap();
            assert_eq!(info.base_offset, expected_base);
            assert_eq!(info.batch_count, count as usize);
            let records: i64 = batches
                .iter()
                .map(|b| i64::from(header(b).records_count))
                .sum();
            assert_eq!(info.last_offset, expected_base + records - 1);
            assert_eq!(info.log_append_time_ms, None);
            produced.extend(batches);
        }
        assert!(log.segment_count() > 5, "{} segments", log.segment_count());

        let stored = read_all(&log).await;
        assert_eq!(stored.len(), produced.len());
        for (s, p) in stored.iter().zip(&produced) {
            assert!(same_batch(s, p));
        }
        assert_dense(&log, &stored);

        // Every offset reads from the batch that holds it.
        for b in &stored {
            let h = header(b);
            for offset in h.base_offset..=h.last_offset() {
                match log.read(offset, 1).await.unwrap() {
                    ReadOutcome::Records { bytes, next_offset } => {
                        assert_eq!(&bytes[..], &b[..], "offset {offset}");
                        assert_eq!(next_offset, h.last_offset() + 1);
                    }
                    other => panic!("{other:?}"),
                }
            }
        }
    });
}

#[test]
fn reads_return_whole_batches_within_max_bytes() {
    run(|| async {
        let dir = tempfile::tempdir().unwrap();
        let config = LogConfig {
            segment_bytes: 1 << 20,
            ..small_config()
        };
        let log = PartitionLog::open(dir.path(), config, Disk::Real)
            .await
            .unwrap();
        let mut sizes = Vec::new();
        for i in 0..10 {
            let b = test_batch(i, 5, Compression::None, 0);
            sizes.push(b.len());
            append(&log, b).await.unwrap();
        }
        // A tiny max_bytes still returns the first batch.
        let ReadOutcome::Records { bytes, next_offset } = log.read(0, 1).await.unwrap() else {
            panic!("records expected");
        };
        assert_eq!(bytes.len(), sizes[0]);
        assert_eq!(next_offset, 5);
        // Room for two and a half batches gives two.
        let ReadOutcome::Records { bytes, .. } = log
            .read(7, sizes[1] + sizes[2] + sizes[3] / 2)
            .await
            .unwrap()
        else {
            panic!("records expected");
        };
        assert_eq!(split_verified(&bytes).len(), 2);
        // A bound stops before the batch starting at it.
        let ReadOutcome::Records { bytes, next_offset } =
            log.read_bounded(0, 1 << 20, 15).await.unwrap()
        else {
            panic!("records expected");
        };
        assert_eq!(split_verified(&bytes).len(), 3);
        assert_eq!(next_offset, 15);
        assert_eq!(
            log.read_bounded(15, 100, 15).await.unwrap(),
            ReadOutcome::Records {
                bytes: bytes::Bytes::new(),
                next_offset: 15
            }
        );
        // At the end: empty; past it: out of range.
        assert_eq!(
            log.read(50, 100).await.unwrap(),
            ReadOutcome::Records {
                bytes: bytes::Bytes::new(),
                next_offset: 50
            }
        );
        assert_eq!(
            log.read(51, 100).await.unwrap(),
            ReadOutcome::AboveLogEnd { log_end: 50 }
        );
    });
}

#[test]
fn reopening_after_a_clean_close_keeps_everything() {
    run(|| async {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t-1");
        let log = PartitionLog::open(&path, small_config(), Disk::Real)
            .await
            .unwrap();
        for i in 0..60 {
            append(
                &log,
                test_batch(i, 3, CODECS[i as usize % 5], 10 * i as i64),
            )
            .await
            .unwrap();
        }
        let before = read_all(&log).await;
        let end = log.log_end_offset();
        log.close().await.unwrap();
        assert!(path.join(".clean_shutdown").exists());
        assert!(matches!(
            append(&log, test_batch(99, 1, Compression::None, 0)).await,
            Err(LogError::Closed { .. })
        ));
        drop(log);

        let log = PartitionLog::open(&path, small_config(), Disk::Real)
            .await
            .unwrap();
        assert!(
            !path.join(".clean_shutdown").exists(),
            "marker removed at open"
        );
        assert_eq!(log.log_end_offset(), end);
        assert_eq!(log.durable_offset(), end);
        assert_eq!(read_all(&log).await, before);
        assert_eq!(
            log.offset_for_timestamp(305).await.unwrap(),
            Some((93, 310))
        );
        let info = append(&log, test_batch(7, 2, Compression::Lz4, 0))
            .await
            .unwrap();
        assert_eq!(info.base_offset, end);

        // An unclean stop (no close) on the real disk loses nothing either:
        // the page cache survives a process crash.
        drop(log);
        let log = PartitionLog::open(&path, small_config(), Disk::Real)
            .await
            .unwrap();
        assert_eq!(log.log_end_offset(), end + 2);
        assert_eq!(read_all(&log).await.len(), before.len() + 1);
    });
}

#[test]
fn invalid_batches_store_nothing() {
    run(|| async {
        let dir = tempfile::tempdir().unwrap();
        let log = PartitionLog::open(dir.path(), small_config(), Disk::Real)
            .await
            .unwrap();
        append(&log, test_batch(1, 2, Compression::None, 0))
            .await
            .unwrap();
        let good = test_batch(2, 2, Compression::Gzip, 0);
        let mut bad = good.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        // A good batch followed by a bad one: the whole append is refused.
        let err = append(&log, [good.clone(), bad].concat())
            .await
            .unwrap_err();
        assert!(err.is_invalid_batch(), "{err}");
        assert!(matches!(err, LogError::CrcMismatch { .. }));
        assert_eq!(log.log_end_offset(), 2);
        assert_eq!(read_all(&log).await.len(), 1);
        append(&log, good).await.unwrap();
        assert_eq!(log.log_end_offset(), 4);
    });
}

#[test]
fn concurrent_appends_get_distinct_dense_offsets() {
    run(|| async {
        let dir = tempfile::tempdir().unwrap();
        let log = Rc::new(
            PartitionLog::open(dir.path(), small_config(), Disk::Real)
                .await
                .unwrap(),
        );
        let appended = Rc::new(RefCell::new(Vec::new()));
        let tasks: Vec<_> = (0..8u64)
            .map(|task| {
                let log = Rc::clone(&log);
                let appended = Rc::clone(&appended);
                glommio::spawn_local(async move {
                    for i in 0..25 {
                        let tag = task * 1000 + i;
                        let b =
                            test_batch(tag, 1 + (tag % 4) as usize, CODECS[(tag % 5) as usize], 0);
                        let info = append(&log, b.clone()).await.unwrap();
                        log.sync().await.unwrap();
                        appended.borrow_mut().push((info.base_offset, b));
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await;
        }
        let stored = read_all(&log).await;
        assert_dense(&log, &stored);
        let mut appended = appended.borrow().clone();
        appended.sort_by_key(|(base, _)| *base);
        assert_eq!(stored.len(), appended.len());
        for (s, (base, b)) in stored.iter().zip(&appended) {
            assert_eq!(header(s).base_offset, *base);
            assert!(same_batch(s, b));
        }
        assert_eq!(log.durable_offset(), log.log_end_offset());
    });
}

#[test]
fn offset_for_timestamp_finds_the_first_record_at_or_after() {
    run(|| async {
        let dir = tempfile::tempdir().unwrap();
        let log = PartitionLog::open(dir.path(), small_config(), Disk::Real)
            .await
            .unwrap();
        // Records: (offset, timestamp), with one batch going back in time.
        let mut records = Vec::new();
        let starts = [100i64, 200, 150, 300, 400, 390, 500, 600, 700, 800];
        for round in 0..4 {
            for (i, start) in starts.iter().enumerate() {
                let ts = start + round * 1_000;
                let codec = CODECS[i % 5];
                let base = log.log_end_offset();
                append(&log, test_batch(i as u64, 4, codec, ts))
                    .await
                    .unwrap();
                for r in 0..4 {
                    records.push((base + r, ts + r));
                }
            }
        }
        assert!(log.segment_count() > 1);
        let newest = records.iter().map(|(_, ts)| *ts).max().unwrap();
        let first_newest = records.iter().find(|(_, ts)| *ts == newest).copied();
        assert_eq!(log.max_timestamp().await.unwrap(), first_newest);
        for target in (0..4_000).step_by(7) {
            let expected = records.iter().find(|(_, ts)| *ts >= target).copied();
            assert_eq!(
                log.offset_for_timestamp(target).await.unwrap(),
                expected,
                "target {target}"
            );
        }
    });
}

#[test]
fn old_segments_roll_by_timestamp() {
    run(|| async {
        let dir = tempfile::tempdir().unwrap();
        let config = LogConfig {
            segment_bytes: 1 << 20,
            segment_ms: 60_000,
            ..small_config()
        };
        let log = PartitionLog::open(dir.path(), config, Disk::Real)
            .await
            .unwrap();
        append(&log, test_batch(1, 1, Compression::None, 1_000_000))
            .await
            .unwrap();
        append(&log, test_batch(2, 1, Compression::None, 1_030_000))
            .await
            .unwrap();
        assert_eq!(log.segment_count(), 1);
        append(&log, test_batch(3, 1, Compression::None, 1_060_001))
            .await
            .unwrap();
        assert_eq!(log.segment_count(), 2);
        assert_eq!(read_all(&log).await.len(), 3);

        // AlterConfigs: a tiny segment size rolls on the next append.
        let bad = LogConfig {
            segment_bytes: 0,
            ..log.config()
        };
        assert!(matches!(
            log.set_config(bad),
            Err(LogError::InvalidConfig { .. })
        ));
        let tiny = LogConfig {
            segment_bytes: 100,
            ..log.config()
        };
        log.set_config(tiny).unwrap();
        append(&log, test_batch(4, 1, Compression::None, 1_060_002))
            .await
            .unwrap();
        assert_eq!(log.segment_count(), 3);
    });
}

#[test]
fn log_append_time_stamps_batches() {
    run(|| async {
        let dir = tempfile::tempdir().unwrap();
        let config = LogConfig {
            timestamp_type: TimestampType::LogAppendTime,
            ..small_config()
        };
        let log = PartitionLog::open(dir.path(), config, Disk::Real)
            .await
            .unwrap();
        let info = append(&log, test_batch(1, 3, Compression::Snappy, 5))
            .await
            .unwrap();
        let stamped = info.log_append_time_ms.expect("stamped");
        assert!(stamped > 1_600_000_000_000);
        let stored = read_all(&log).await;
        let h = header(&stored[0]);
        assert_eq!(h.timestamp_type(), TimestampType::LogAppendTime);
        assert_eq!(h.max_timestamp, stamped);
        assert_eq!(
            log.offset_for_timestamp(stamped).await.unwrap(),
            Some((0, stamped))
        );
    });
}
