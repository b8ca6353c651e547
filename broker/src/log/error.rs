//! The one error type of the `log` module.

use std::io;
use std::path::PathBuf;

use super::compression::Compression;

/// Everything that can go wrong in the local log: a produce batch that fails
/// validation, an I/O failure, or a log that refuses writes after a failed
/// fsync.
///
/// Batch validation variants (see [`LogError::is_invalid_batch`]) mean the
/// client sent bad bytes: nothing was stored. Expected states of a read (an
/// offset below the log start or past the end) are not errors: see
/// [`ReadOutcome`](super::ReadOutcome).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LogError {
    /// Fewer bytes than a record batch header, or than the batch declares.
    #[error("record batch truncated: needed {needed} bytes, {available} available")]
    TruncatedBatch { needed: usize, available: usize },

    /// The batch length field is smaller than the fixed part of a v2 header.
    #[error("record batch length {length} is below the v2 minimum of 49")]
    BatchLengthTooSmall { length: i32 },

    /// Only message format v2 is accepted.
    #[error("record batch magic {magic} is not supported, only 2 is")]
    UnsupportedMagic { magic: i8 },

    /// The stored CRC32C does not match the bytes it covers.
    #[error("record batch crc mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    CrcMismatch { stored: u32, computed: u32 },

    /// The compression codec bits name no known codec.
    #[error("record batch uses unknown compression codec {codec}")]
    UnknownCompression { codec: u8 },

    /// A record count that is negative, or zero in a produced batch.
    #[error("record batch declares an invalid record count {count}")]
    InvalidRecordCount { count: i32 },

    /// Produced batches carry dense offsets: `last_offset_delta` must be
    /// `records_count - 1`.
    #[error(
        "record batch last offset delta {last_offset_delta} does not match its {records_count} records"
    )]
    OffsetDeltaMismatch {
        last_offset_delta: i32,
        records_count: i32,
    },

    /// The records section holds a different number of records than declared.
    #[error("record batch declares {declared} records but holds {found}")]
    RecordCountMismatch { declared: i32, found: usize },

    /// A record inside a batch does not parse.
    #[error("record {record} is malformed at byte {position}: {reason}")]
    MalformedRecord {
        record: usize,
        position: usize,
        reason: &'static str,
    },

    /// Bytes left over after the last declared record.
    #[error("record batch has {count} trailing bytes after its last record")]
    TrailingBytes { count: usize },

    /// A record's offset delta is not its index in a produced batch.
    #[error("record {record} has offset delta {offset_delta}, expected {record}")]
    NonSequentialOffsetDelta { record: usize, offset_delta: i32 },

    /// The decompressed records would exceed the configured cap.
    #[error("{codec} records decompress to more than {cap} bytes")]
    DecompressedTooLarge { codec: Compression, cap: usize },

    /// The compressed records section is not valid for its codec.
    #[error("{codec} records fail to decompress")]
    Decompression {
        codec: Compression,
        #[source]
        source: io::Error,
    },

    /// Compressing a records section failed (building batches only).
    #[error("{codec} compression failed")]
    CompressionFailed {
        codec: Compression,
        #[source]
        source: io::Error,
    },

    /// Clients may not write transaction markers.
    #[error("control batches may not be produced by clients")]
    ControlBatchFromClient,

    /// An idempotent batch must carry a base sequence.
    #[error("producer {producer_id} sent base sequence {base_sequence}")]
    InvalidBaseSequence {
        producer_id: i64,
        base_sequence: i32,
    },

    /// A batch larger than `max_message_bytes`.
    #[error("record batch of {size} bytes exceeds the limit of {max}")]
    BatchTooLarge { size: usize, max: usize },

    /// A produce request with no batch at all.
    #[error("produce records hold no record batch")]
    NoBatches,

    /// A batch whose base offset breaks the dense offset sequence of a
    /// segment (only seen during recovery).
    #[error("record batch base offset {found} does not follow offset {expected}")]
    UnexpectedBaseOffset { expected: i64, found: i64 },

    /// An I/O call failed.
    #[error("{op} {path} failed")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// A sealed (non-active) segment holds an invalid batch. Sealed segments
    /// were fsynced before the next one was created, so this is media
    /// corruption: the log refuses to open rather than drop later segments.
    #[error("sealed segment {path} is corrupt at byte {position}")]
    CorruptSegment {
        path: PathBuf,
        position: u64,
        #[source]
        source: Box<LogError>,
    },

    /// An fsync or write failed earlier; the log is read-only until it is
    /// reopened.
    #[error("log {dir} is read-only after a failed write or fsync")]
    Poisoned { dir: PathBuf },

    /// The log was closed.
    #[error("log {dir} is closed")]
    Closed { dir: PathBuf },

    /// An offset outside `[log_start, log_end]` was given where one inside is
    /// required.
    #[error("offset {offset} is outside the log range [{log_start}, {log_end}]")]
    OffsetOutOfRange {
        offset: i64,
        log_start: i64,
        log_end: i64,
    },

    /// A `LogConfig` value that cannot work.
    #[error("invalid log config: {reason}")]
    InvalidConfig { reason: &'static str },
}

impl LogError {
    /// True when the client sent a batch that fails validation; the produce
    /// handler answers `CORRUPT_MESSAGE` (CRC, framing) or `INVALID_RECORD`.
    pub fn is_invalid_batch(&self) -> bool {
        matches!(
            self,
            LogError::TruncatedBatch { .. }
                | LogError::BatchLengthTooSmall { .. }
                | LogError::UnsupportedMagic { .. }
                | LogError::CrcMismatch { .. }
                | LogError::UnknownCompression { .. }
                | LogError::InvalidRecordCount { .. }
                | LogError::OffsetDeltaMismatch { .. }
                | LogError::RecordCountMismatch { .. }
                | LogError::MalformedRecord { .. }
                | LogError::TrailingBytes { .. }
                | LogError::NonSequentialOffsetDelta { .. }
                | LogError::DecompressedTooLarge { .. }
                | LogError::Decompression { .. }
                | LogError::ControlBatchFromClient
                | LogError::InvalidBaseSequence { .. }
                | LogError::BatchTooLarge { .. }
                | LogError::NoBatches
        )
    }

    /// Whether retrying the same call can succeed. Nothing in the local log
    /// is: a bad batch stays bad, and a failed fsync poisons the log (retrying
    /// it could report lost pages as durable).
    pub fn is_retriable(&self) -> bool {
        false
    }

    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        LogError::Io {
            op,
            path: path.into(),
            source,
        }
    }
}
