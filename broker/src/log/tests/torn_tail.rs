//! D3: a torn or corrupt tail of the active segment. Cut the last batches
//! at every byte, flip a bit in every byte of them: recovery never panics,
//! never serves a batch failing its CRC, keeps every batch before the damage
//! and truncates the file after the last valid batch.

use std::path::{Path, PathBuf};

use super::*;
use crate::log::Disk;

const SEGMENT: &str = "00000000000000000000.log";
/// Batches at the end of the segment whose bytes are cut or flipped.
const DAMAGED_BATCHES: usize = 3;

/// A segment of mixed-codec batches written and synced but not closed: the
/// stored batches and the segment's bytes.
async fn reference(dir: &Path) -> (Vec<Vec<u8>>, Vec<u8>) {
    let log = PartitionLog::open(dir, one_segment(), Disk::Real)
        .await
        .unwrap();
    for i in 0..12u64 {
        let records = if i >= 9 { 2 } else { 4 };
        append(
            &log,
            test_batch(i, records, CODECS[i as usize % 5], 1_000 * i as i64),
        )
        .await
        .unwrap();
    }
    log.sync().await.unwrap();
    let stored = read_all(&log).await;
    drop(log);
    let bytes = std::fs::read(dir.join(SEGMENT)).unwrap();
    (stored, bytes)
}

fn one_segment() -> LogConfig {
    LogConfig {
        segment_bytes: 1 << 20,
        ..small_config()
    }
}

/// A partition directory holding only `bytes` as its segment.
fn damaged_dir(root: &Path, name: String, bytes: &[u8]) -> PathBuf {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(SEGMENT), bytes).unwrap();
    dir
}

/// Byte position where each batch ends.
fn batch_ends(stored: &[Vec<u8>]) -> Vec<usize> {
    stored
        .iter()
        .scan(0, |end, b| {
            *end += b.len();
            Some(*end)
        })
        .collect()
}

/// Opens a damaged directory, checks what recovery kept, and that the log
/// takes appends after it. Returns the batches read back.
async fn recover(dir: &Path) -> Vec<Vec<u8>> {
    let log = PartitionLog::open(dir, one_segment(), Disk::Real)
        .await
        .expect("recovery never fails on a damaged tail");
    let stored = read_all(&log).await;
    assert_dense(&log, &stored);
    let valid: usize = stored.iter().map(Vec::len).sum();
    assert_eq!(
        std::fs::metadata(dir.join(SEGMENT)).unwrap().len(),
        valid as u64,
        "truncated after the last valid batch"
    );
    let end = log.log_end_offset();
    let info = append(&log, test_batch(77, 1, Compression::None, 0))
        .await
        .unwrap();
    assert_eq!(info.base_offset, end);
    stored
}

#[test]
fn every_cut_keeps_the_whole_batches_before_it() {
    run(|| async {
        let root = tempfile::tempdir().unwrap();
        let (stored, bytes) = reference(&root.path().join("reference")).await;
        let ends = batch_ends(&stored);
        assert_eq!(*ends.last().unwrap(), bytes.len());
        let from = ends[ends.len() - DAMAGED_BATCHES - 1];
        for cut in from..bytes.len() {
            let dir = damaged_dir(root.path(), format!("cut-{cut}"), &bytes[..cut]);
            let recovered = recover(&dir).await;
            let whole = ends.iter().filter(|&&end| end <= cut).count();
            assert_eq!(recovered, stored[..whole], "cut at byte {cut}");
            std::fs::remove_dir_all(&dir).unwrap();
        }
    });
}

#[test]
fn every_flipped_bit_drops_the_damaged_batch_and_what_follows() {
    run(|| async {
        let root = tempfile::tempdir().unwrap();
        let (stored, bytes) = reference(&root.path().join("reference")).await;
        let ends = batch_ends(&stored);
        let from = ends[ends.len() - DAMAGED_BATCHES - 1];
        for at in from..bytes.len() {
            let mut damaged = bytes.clone();
            damaged[at] ^= 1 << (at % 8);
            let dir = damaged_dir(root.path(), format!("flip-{at}"), &damaged);
            let recovered = recover(&dir).await;
            let hit = ends.iter().position(|&end| end > at).unwrap();
            let batch_start = if hit == 0 { 0 } else { ends[hit - 1] };
            let in_leader_epoch = (12..16).contains(&(at - batch_start));
            assert_eq!(recovered[..hit], stored[..hit], "flip at byte {at}");
            if in_leader_epoch {
                // The leader epoch is outside the CRC, as in Kafka: the batch
                // is kept with the flipped epoch.
                assert_eq!(recovered.len(), stored.len(), "flip at byte {at}");
            } else {
                assert_eq!(recovered.len(), hit, "flip at byte {at}");
            }
            std::fs::remove_dir_all(&dir).unwrap();
        }
    });
}

#[test]
fn zeroed_or_garbage_tails_are_truncated_even_after_a_clean_close() {
    run(|| async {
        let root = tempfile::tempdir().unwrap();
        let (stored, bytes) = reference(&root.path().join("reference")).await;

        // A tail of zeros, as after a crash that extended the file but lost
        // its data.
        let mut zeroed = bytes.clone();
        zeroed.extend_from_slice(&[0; 4096]);
        let dir = damaged_dir(root.path(), "zeros".into(), &zeroed);
        assert_eq!(recover(&dir).await, stored);

        // A plausible header with a wrong CRC.
        let mut garbage = bytes.clone();
        let mut fake = stored[0].clone();
        fake[..8].copy_from_slice(&1_000i64.to_be_bytes());
        let last = fake.len() - 1;
        fake[last] ^= 0xff;
        garbage.extend_from_slice(&fake);
        let dir = damaged_dir(root.path(), "garbage".into(), &garbage);
        assert_eq!(recover(&dir).await, stored);

        // Damage after a clean close: the marker does not make recovery
        // trust the tail.
        let dir = root.path().join("clean");
        let log = PartitionLog::open(&dir, one_segment(), Disk::Real)
            .await
            .unwrap();
        for b in &stored {
            append(&log, b.clone()).await.unwrap();
        }
        log.close().await.unwrap();
        drop(log);
        let segment = dir.join(SEGMENT);
        let mut torn = std::fs::read(&segment).unwrap();
        let cut = torn.len() - 10;
        torn.truncate(cut);
        std::fs::write(&segment, &torn).unwrap();
        let recovered = recover(&dir).await;
        assert_eq!(recovered.len(), stored.len() - 1);
        for (r, s) in recovered.iter().zip(&stored) {
            assert!(same_batch(r, s));
        }
    });
}
