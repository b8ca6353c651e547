//! DeleteRecords, time and size retention, deleting a partition.

use super::*;
use crate::log::{Disk, LogError, RetentionPolicy};

async fn filled_log(path: &std::path::Path, batches: u64, timestamp: i64) -> PartitionLog {
    let log = PartitionLog::open(path, small_config(), Disk::Real)
        .await
        .unwrap();
    for i in 0..batches {
        append(
            &log,
            test_batch(i, 4, Compression::None, timestamp + i as i64),
        )
        .await
        .unwrap();
    }
    log
}

fn log_files(path: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(path)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".log"))
        .collect();
    names.sort();
    names
}

#[test]
fn delete_records_moves_the_log_start_durably() {
    run(|| async {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t-0");
        let log = filled_log(&path, 80, 0).await;
        let segments = log.segment_count();
        assert!(segments > 3);
        let end = log.log_end_offset();

        assert!(matches!(
            log.delete_records_before(end + 1).await,
            Err(LogError::OffsetOutOfRange { .. })
        ));
        assert_eq!(log.delete_records_before(101).await.unwrap(), 101);
        assert_eq!(log.log_start_offset(), 101);
        assert!(log.segment_count() < segments);
        assert_eq!(log_files(&path).len(), log.segment_count());
        assert_eq!(
            log.read(100, 100).await.unwrap(),
            ReadOutcome::BelowLogStart { log_start: 101 }
        );
        // Offset 101 sits inside the batch 100..=103, which is returned whole.
        let ReadOutcome::Records { bytes, .. } = log.read(101, 1).await.unwrap() else {
            panic!("records expected");
        };
        assert_eq!(header(&bytes).base_offset, 100);
        // Moving back is a no-op.
        assert_eq!(log.delete_records_before(50).await.unwrap(), 101);
        drop(log);

        // The checkpoint survives an unclean restart.
        let log = PartitionLog::open(&path, small_config(), Disk::Real)
            .await
            .unwrap();
        assert_eq!(log.log_start_offset(), 101);
        assert_eq!(log.log_end_offset(), end);
        assert_dense(&log, &read_all(&log).await);

        // Deleting everything rolls the active segment away too.
        assert_eq!(log.delete_records_before(end).await.unwrap(), end);
        assert_eq!(log.segment_count(), 1);
        assert_eq!(log.size_bytes(), 0);
        assert_eq!(log_files(&path), vec![format!("{end:020}.log")]);
        let info = append(&log, test_batch(1, 1, Compression::None, 0))
            .await
            .unwrap();
        assert_eq!(info.base_offset, end);
        assert_eq!(info.log_start_offset, end);
    });
}

#[test]
fn size_retention_keeps_the_newest_bytes_and_the_active_segment() {
    run(|| async {
        let dir = tempfile::tempdir().unwrap();
        let log = filled_log(dir.path(), 100, 0).await;
        let total = log.size_bytes();
        let policy = RetentionPolicy {
            retention_ms: -1,
            retention_bytes: 10_000,
            deletable_end_offset: None,
        };
        let outcome = log.apply_retention(i64::MAX, &policy).await.unwrap();
        assert!(outcome.deleted_segments > 0);
        assert!(log.size_bytes() >= 10_000);
        assert!(log.size_bytes() < 10_000 + 4096 + 1024);
        assert_eq!(log.size_bytes() + outcome.deleted_bytes, total);
        assert_eq!(outcome.log_start_offset, log.log_start_offset());
        assert_dense(&log, &read_all(&log).await);

        // Nothing left to delete but the active segment: kept.
        let all = RetentionPolicy {
            retention_bytes: 0,
            ..policy
        };
        log.apply_retention(i64::MAX, &all).await.unwrap();
        assert_eq!(log.segment_count(), 1);
        assert_eq!(log.log_end_offset(), 400);
        assert_dense(&log, &read_all(&log).await);
    });
}

#[test]
fn time_retention_follows_record_timestamps_and_the_upload_fence() {
    run(|| async {
        let dir = tempfile::tempdir().unwrap();
        let log = filled_log(dir.path(), 100, 1_000_000).await;
        let segments = log.segment_count();
        // Timestamps are 1_000_000 + batch index: at now = 1_060_000 with a
        // 59_950 ms retention, batches older than 1_000_050 have expired.
        let policy = RetentionPolicy {
            retention_ms: 59_950,
            retention_bytes: -1,
            deletable_end_offset: Some(120),
        };
        let fenced = log.apply_retention(1_060_000, &policy).await.unwrap();
        let start = fenced.log_start_offset;
        assert!(start <= 120, "fence respected: start {start}");
        assert!(fenced.deleted_segments > 0);

        let unfenced = RetentionPolicy {
            deletable_end_offset: None,
            ..policy
        };
        let unfenced = log.apply_retention(1_060_000, &unfenced).await.unwrap();
        // Batch 47 (offsets 188..=191, newest record 1_000_050) is kept, and
        // with it its segment; everything in earlier segments was older.
        assert!(unfenced.deleted_segments > 0);
        assert!(unfenced.log_start_offset > start);
        assert!(unfenced.log_start_offset <= 188);
        assert!(log.segment_count() < segments);
        let stored = read_all(&log).await;
        assert_eq!(header(&stored[0]).base_offset, unfenced.log_start_offset);
        assert_dense(&log, &stored);
        // Unlimited retention deletes nothing.
        let keep = RetentionPolicy {
            retention_ms: -1,
            retention_bytes: -1,
            deletable_end_offset: None,
        };
        let count = log.segment_count();
        let none = log.apply_retention(i64::MAX, &keep).await.unwrap();
        assert_eq!(none.deleted_segments, 0);
        assert_eq!(log.segment_count(), count);
    });
}

#[test]
fn deleting_a_partition_removes_its_directory() {
    run(|| async {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gone-3");
        let log = filled_log(&path, 30, 0).await;
        log.delete().await.unwrap();
        assert!(!path.exists());
        assert!(matches!(
            append(&log, test_batch(1, 1, Compression::None, 0)).await,
            Err(LogError::Closed { .. })
        ));
    });
}
