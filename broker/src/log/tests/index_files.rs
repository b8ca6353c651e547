//! Index files are never trusted over the log: missing, cut, or wrong
//! indexes are rebuilt or bypassed, and reads stay correct.

use std::path::Path;

use super::*;
use crate::log::Disk;

fn files_with_suffix(dir: &Path, suffix: &str) -> Vec<std::path::PathBuf> {
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(suffix))
        .collect();
    paths.sort();
    paths
}

/// Adds `delta` to the position of entry `entry` of an `.index` file.
fn shift_entry(path: &Path, entry: usize, delta: u32) {
    let mut bytes = std::fs::read(path).unwrap();
    let at = entry * 8 + 4;
    let pos = u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap());
    bytes[at..at + 4].copy_from_slice(&(pos + delta).to_be_bytes());
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn damaged_index_files_never_change_what_is_read() {
    run(|| async {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("t-0");
        let log = PartitionLog::open(&dir, small_config(), Disk::Real)
            .await
            .unwrap();
        for i in 0..150u64 {
            let codec = CODECS[i as usize % 5];
            append(&log, test_batch(i, 2, codec, 10 * i as i64))
                .await
                .unwrap();
        }
        let before = read_all(&log).await;
        let end = log.log_end_offset();
        let timestamps: Vec<_> = [5, 333, 1_001, 1_490].into_iter().collect();
        let mut answers = Vec::new();
        for ts in &timestamps {
            answers.push(log.offset_for_timestamp(*ts).await.unwrap());
        }
        log.close().await.unwrap();
        drop(log);

        let indexes = files_with_suffix(&dir, ".index");
        let time_indexes = files_with_suffix(&dir, ".timeindex");
        assert!(indexes.len() >= 5, "{} segments", indexes.len());
        assert!(std::fs::metadata(&indexes[2]).unwrap().len() >= 16);
        // Cut mid-entry.
        let cut = std::fs::read(&indexes[0]).unwrap();
        std::fs::write(&indexes[0], &cut[..cut.len() - 3]).unwrap();
        // Every position off by one: the last entry check refuses the file.
        let entries = std::fs::metadata(&indexes[1]).unwrap().len() as usize / 8;
        for entry in 0..entries {
            shift_entry(&indexes[1], entry, 1);
        }
        // One wrong entry that is not the last one: loaded, then bypassed
        // when a read lands on it.
        shift_entry(&indexes[2], 0, 1);
        // Missing: rebuilt and written again.
        std::fs::remove_file(&indexes[3]).unwrap();
        // The active segment's time index is garbage.
        std::fs::write(time_indexes.last().unwrap(), b"not an index").unwrap();

        let log = PartitionLog::open(&dir, small_config(), Disk::Real)
            .await
            .unwrap();
        assert!(indexes[3].exists());
        assert_eq!(log.log_end_offset(), end);
        assert_eq!(read_all(&log).await, before);
        for b in &before {
            let h = header(b);
            for offset in h.base_offset..=h.last_offset() {
                let ReadOutcome::Records { bytes, .. } = log.read(offset, 1).await.unwrap() else {
                    panic!("records expected at {offset}");
                };
                assert_eq!(&bytes[..], &b[..], "offset {offset}");
            }
        }
        for (ts, answer) in timestamps.iter().zip(&answers) {
            assert_eq!(log.offset_for_timestamp(*ts).await.unwrap(), *answer);
        }
    });
}
