//! Group commit, and the poisoning of a log whose fdatasync failed.

use std::rc::Rc;

use super::*;
use crate::log::{LogError, SimulatedDisk};

const DIR: &str = "/sim/orders-0";

#[test]
fn concurrent_syncs_share_fdatasyncs() {
    run(|| async {
        let sim = SimulatedDisk::new(1);
        // An fdatasync as slow as 16 buffered writes.
        sim.set_sync_turns(16);
        let config = LogConfig {
            segment_bytes: 1 << 20,
            ..small_config()
        };
        let log = Rc::new(PartitionLog::open(DIR, config, sim.disk()).await.unwrap());
        let before = sim.fdatasync_count();
        let producers = 32u64;
        let tasks: Vec<_> = (0..producers)
            .map(|i| {
                let log = Rc::clone(&log);
                glommio::spawn_local(async move {
                    let info = append(&log, test_batch(i, 2, Compression::None, 0))
                        .await
                        .unwrap();
                    log.sync().await.unwrap();
                    assert!(log.durable_offset() > info.last_offset);
                })
            })
            .collect();
        for task in tasks {
            task.await;
        }
        let used = sim.fdatasync_count() - before;
        assert!(
            used < producers / 4,
            "{used} fdatasyncs for {producers} producers"
        );
        assert_eq!(log.durable_offset(), log.log_end_offset());
        // Nothing new: no fdatasync at all.
        log.sync().await.unwrap();
        assert_eq!(sim.fdatasync_count() - before, used);
    });
}

#[test]
fn a_failed_fdatasync_poisons_the_log() {
    run(|| async {
        let sim = SimulatedDisk::new(2);
        let log = PartitionLog::open(DIR, small_config(), sim.disk())
            .await
            .unwrap();
        append(&log, test_batch(1, 3, Compression::None, 0))
            .await
            .unwrap();
        log.sync().await.unwrap();
        assert_eq!(log.durable_offset(), 3);

        append(&log, test_batch(2, 3, Compression::Zstd, 0))
            .await
            .unwrap();
        sim.fail_next_syncs(1);
        let err = log.sync().await.unwrap_err();
        assert!(
            matches!(
                err,
                LogError::Io {
                    op: "fdatasync",
                    ..
                }
            ),
            "{err}"
        );
        assert!(log.is_poisoned());
        assert_eq!(
            log.durable_offset(),
            3,
            "the failed sync made nothing durable"
        );

        // Never retried silently: every write path now refuses.
        for result in [
            log.sync().await.map(|_| ()),
            append(&log, test_batch(3, 1, Compression::None, 0))
                .await
                .map(|_| ()),
            log.delete_records_before(1).await.map(|_| ()),
            log.close().await,
        ] {
            assert!(
                matches!(result, Err(LogError::Poisoned { .. })),
                "{result:?}"
            );
        }
        // Reads still work.
        assert_eq!(read_all(&log).await.len(), 2);
        drop(log);

        // Reopening recovers and accepts writes again.
        let log = PartitionLog::open(DIR, small_config(), sim.disk())
            .await
            .unwrap();
        assert_eq!(log.log_end_offset(), 6);
        append(&log, test_batch(4, 1, Compression::None, 0))
            .await
            .unwrap();
        log.sync().await.unwrap();
        assert_eq!(log.durable_offset(), 7);
    });
}

#[test]
fn a_failed_roll_poisons_the_log() {
    run(|| async {
        let sim = SimulatedDisk::new(3);
        let log = PartitionLog::open(DIR, small_config(), sim.disk())
            .await
            .unwrap();
        let mut i = 0;
        while log.size_bytes() < 3_500 {
            append(&log, test_batch(i, 4, Compression::None, 0))
                .await
                .unwrap();
            i += 1;
        }
        sim.fail_next_syncs(1);
        // This append does not fit: the roll's fdatasync fails.
        let big = test_batch(99, 20, Compression::None, 0);
        let err = append(&log, big).await.unwrap_err();
        assert!(matches!(err, LogError::Io { .. }), "{err}");
        assert!(log.is_poisoned());
        assert_eq!(log.segment_count(), 1);
    });
}
