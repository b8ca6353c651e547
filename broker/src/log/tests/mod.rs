//! Scenario tests of the partition log, one scenario family per file, run on
//! glommio executors against the real disk (temporary directories) or the
//! simulated one.

mod group_commit;
mod index_files;
mod power_loss;
mod retention;
mod round_trip;
mod torn_tail;

use std::future::Future;

use super::batch::{self, BatchHeader};
use super::{
    AppendInfo, BatchBuilder, Compression, LogConfig, LogError, PartitionLog, ReadOutcome,
};

pub(super) const CODECS: [Compression; 5] = [
    Compression::None,
    Compression::Gzip,
    Compression::Snappy,
    Compression::Lz4,
    Compression::Zstd,
];

/// Runs a test body on a fresh glommio executor.
pub(super) fn run<F, Fut>(body: F)
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = ()> + 'static,
{
    glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
        .io_memory(1 << 20)
        .spawn(body)
        .expect("glommio executor starts")
        .join()
        .expect("test body does not panic");
}

/// Small segments and dense indexes, so tests roll and index often.
pub(super) fn small_config() -> LogConfig {
    LogConfig {
        segment_bytes: 4096,
        index_interval_bytes: 256,
        ..LogConfig::default()
    }
}

/// A batch of `records` records tagged `tag`, with timestamps from
/// `timestamp`.
pub(super) fn test_batch(tag: u64, records: usize, codec: Compression, timestamp: i64) -> Vec<u8> {
    let mut builder = BatchBuilder::new(codec);
    for i in 0..records {
        let key = format!("key-{tag}-{i}");
        let value = format!(
            "value-{tag}-{i}-{}",
            "v".repeat((tag as usize * 7 + i) % 50)
        );
        builder.push(
            timestamp + i as i64,
            Some(key.as_bytes()),
            Some(value.as_bytes()),
            &[(b"tag", Some(tag.to_string().as_bytes()))],
        );
    }
    builder.build().expect("test batch encodes")
}

/// Validates and appends produce records, as the produce handler does.
pub(super) async fn append(log: &PartitionLog, records: Vec<u8>) -> Result<AppendInfo, LogError> {
    let validated = log.validate(&records)?;
    log.append(validated).await
}

/// Splits bytes returned by a read into batches, checking every one.
pub(super) fn split_verified(bytes: &[u8]) -> Vec<Vec<u8>> {
    let ranges = batch::split_batches(bytes).expect("reads return whole batches");
    ranges
        .into_iter()
        .map(|range| {
            let one = &bytes[range];
            batch::verify(one).expect("every batch read passes its CRC");
            one.to_vec()
        })
        .collect()
}

/// Every batch from the log start to the end, read in small steps.
pub(super) async fn read_all(log: &PartitionLog) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut offset = log.log_start_offset();
    loop {
        match log.read(offset, 700).await.expect("read succeeds") {
            ReadOutcome::Records { bytes, next_offset } => {
                if bytes.is_empty() {
                    assert_eq!(offset, log.log_end_offset());
                    return out;
                }
                out.extend(split_verified(&bytes));
                offset = next_offset;
            }
            other => panic!("unexpected {other:?} at {offset}"),
        }
    }
}

pub(super) fn header(batch: &[u8]) -> BatchHeader {
    BatchHeader::parse(batch).expect("a whole header")
}

/// Whether a stored batch is the produced one, apart from the assigned
/// offset.
pub(super) fn same_batch(stored: &[u8], produced: &[u8]) -> bool {
    stored.len() == produced.len() && stored[8..] == produced[8..]
}

/// Asserts that offsets are dense from the log start to the log end.
pub(super) fn assert_dense(log: &PartitionLog, batches: &[Vec<u8>]) {
    let mut next = log.log_start_offset();
    for b in batches {
        let h = header(b);
        assert!(
            h.base_offset <= next && h.last_offset() >= next,
            "batch {}..={} does not hold offset {next}",
            h.base_offset,
            h.last_offset()
        );
        next = h.last_offset() + 1;
    }
    assert_eq!(next, log.log_end_offset());
}
