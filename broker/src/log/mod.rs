//! The local log of one partition.
//!
//! A partition directory holds segments `<base_offset:020>.log` of Kafka
//! RecordBatch v2 bytes exactly as produced (offsets assigned in place), each
//! with a sparse `.index` and `.timeindex`, plus `log-start-offset` (the log
//! start checkpoint) and, between a clean close and the next open,
//! `.clean_shutdown`.
//!
//! # Layout
//! - [`batch`]: sans-IO RecordBatch v2 parsing and validation.
//! - [`compression`]: codecs, decompression with an output cap.
//! - `builder`: [`BatchBuilder`], encoding batches (control markers, tests).
//! - `file`: the I/O layer, [`Disk`] (glommio buffered files or a
//!   [`SimulatedDisk`] for power-loss tests) and [`DiskFile`].
//! - `segment`, `index`: one segment, its indexes, the verifying scanner.
//! - `recovery`: opening a log directory, truncating a torn tail.
//! - `partition_log`: [`PartitionLog`], appends, rolls and group commit;
//!   `read` and `retention` extend it.
//!
//! # Write path
//! 1. [`PartitionLog::validate`]: validate every batch of the produce request
//!    (no byte is stored for a bad one); the handler may inspect the headers
//!    (idempotence) before appending.
//! 2. Under the append lock: assign offsets (rewrite base offsets), roll the
//!    segment if it is full or old, write the batches at the end of the
//!    active segment (page cache), index them.
//! 3. Rolling: fdatasync the old segment, write and fdatasync its indexes,
//!    create the new segment file, fsync the directory.
//! 4. [`PartitionLog::sync`] (for `acks=all`): one fdatasync of the active
//!    segment, shared by every caller waiting meanwhile; `durable_offset`
//!    moves to the end it covered. A failed fdatasync poisons the log.
//!
//! # Recovery
//! 1. Without `.clean_shutdown`, scan the active segment from its start,
//!    verifying every batch (header, length, dense offsets, CRC32C); with it,
//!    load the indexes and verify from the last index entry on.
//! 2. Truncate at the first invalid byte (warning with path, offset and
//!    position), fdatasync the segment, rebuild its indexes.
//! 3. Sealed segments keep their persisted indexes when these are sane, and
//!    are rebuilt (and verified) otherwise.
//! 4. Apply the log start checkpoint, remove `.clean_shutdown` and fsync the
//!    directory, so that a later crash is detected.
//!
//! # Example
//! ```no_run
//! use broker::log::{BatchBuilder, Compression, Disk, LogConfig, PartitionLog, ReadOutcome};
//!
//! glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
//!     .spawn(|| async move {
//!         let log = PartitionLog::open("/data/orders-0", LogConfig::default(), Disk::Real)
//!             .await
//!             .unwrap();
//!         let mut batch = BatchBuilder::new(Compression::Lz4);
//!         batch.push(1_700_000_000_000, Some(b"k"), Some(b"v"), &[]);
//!         let records = log.validate(&batch.build().unwrap()).unwrap(); // 1.
//!         let info = log.append(records).await.unwrap(); // 2.
//!         log.sync().await.unwrap(); // acks=all
//!         match log.read(info.base_offset, 1 << 20).await.unwrap() {
//!             ReadOutcome::Records { bytes, .. } => assert!(!bytes.is_empty()),
//!             other => panic!("{other:?}"),
//!         }
//!         log.close().await.unwrap();
//!     })
//!     .unwrap()
//!     .join()
//!     .unwrap();
//! ```

pub mod batch;
mod builder;
mod checkpoint;
pub mod compression;
mod error;
mod file;
mod index;
mod lz4_frame;
mod partition_log;
mod read;
mod recovery;
mod retention;
mod segment;
mod simulated;
#[cfg(test)]
mod tests;

use std::time::{SystemTime, UNIX_EPOCH};

pub use batch::{
    BatchHeader, BatchIter, BatchLimits, Record, RecordHeader, TimestampType, ValidatedBatch,
    ValidatedRecords,
};
pub use builder::BatchBuilder;
pub use compression::Compression;
pub use error::LogError;
pub use file::{Disk, DiskFile};
pub use partition_log::{AppendInfo, PartitionLog, SealedInfo};
pub use read::{ReadOutcome, first_record_in_batches};

/// Prepares `dir` so that the log opened there next starts empty at
/// `offset` (topic recovery from the object store): the directory and a
/// durable log-start checkpoint. Refuses a directory that holds segments.
pub async fn start_empty_at(
    disk: &Disk,
    dir: &std::path::Path,
    offset: i64,
) -> Result<(), LogError> {
    if disk.create_dir_all(dir)?
        && let Some(parent) = dir.parent()
    {
        disk.sync_dir(parent).await?;
    }
    let existing = disk.list_files(dir)?;
    if existing
        .iter()
        .any(|f| segment::parse_segment_file_name(f).is_some())
    {
        return Err(LogError::io(
            "prepare",
            dir,
            std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                "the directory already holds log segments",
            ),
        ));
    }
    checkpoint::write(disk, dir, offset).await
}
pub use retention::{RetentionOutcome, RetentionPolicy};
pub use simulated::SimulatedDisk;

/// Settings of one partition log, with Kafka's defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    /// Roll the active segment before it grows past this (`segment.bytes`).
    pub segment_bytes: u64,
    /// Roll the active segment once it spans this long (`segment.ms`).
    pub segment_ms: i64,
    /// Bytes of batches between two index entries (`index.interval.bytes`).
    pub index_interval_bytes: u64,
    /// Largest batch accepted (`max.message.bytes`).
    pub max_batch_bytes: usize,
    /// Cap on one batch's decompressed records when validating it.
    pub max_batch_decompressed_bytes: usize,
    /// Keep producer timestamps, or stamp batches when appended
    /// (`message.timestamp.type`).
    pub timestamp_type: TimestampType,
}

impl Default for LogConfig {
    fn default() -> LogConfig {
        LogConfig {
            segment_bytes: 1 << 30,
            segment_ms: 7 * 24 * 60 * 60 * 1000,
            index_interval_bytes: 4096,
            max_batch_bytes: 1_048_588,
            max_batch_decompressed_bytes: 64 << 20,
            timestamp_type: TimestampType::CreateTime,
        }
    }
}

impl LogConfig {
    /// The produce validation limits of this config.
    pub fn batch_limits(&self) -> BatchLimits {
        BatchLimits {
            max_batch_bytes: self.max_batch_bytes,
            max_decompressed_bytes: self.max_batch_decompressed_bytes,
        }
    }

    fn check(&self) -> Result<(), LogError> {
        let fail = |reason| Err(LogError::InvalidConfig { reason });
        if self.segment_bytes == 0 || self.segment_bytes > i32::MAX as u64 {
            return fail("segment_bytes must be within 1..=2147483647");
        }
        if self.segment_ms <= 0 {
            return fail("segment_ms must be positive");
        }
        if self.max_batch_bytes < batch::HEADER_LEN {
            return fail("max_batch_bytes is smaller than a batch header");
        }
        if self.max_batch_decompressed_bytes == 0 {
            return fail("max_batch_decompressed_bytes must be positive");
        }
        Ok(())
    }
}

/// Wall-clock time in ms since the epoch.
pub(crate) fn now_ms() -> i64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
}
