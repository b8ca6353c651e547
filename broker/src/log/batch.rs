//! Kafka RecordBatch v2: header parsing and validation, sans-IO over bytes.
//!
//! ```text
//! @0  base_offset i64           @27 base_timestamp i64
//! @8  batch_length i32          @35 max_timestamp i64
//! @12 partition_leader_epoch    @43 producer_id i64
//! @16 magic i8 (= 2)            @51 producer_epoch i16
//! @17 crc u32 (CRC32C of @21..) @53 base_sequence i32
//! @21 attributes i16            @57 records_count i32
//! @23 last_offset_delta i32     @61 records
//! ```
//!
//! The CRC covers neither the base offset nor the leader epoch, so offsets
//! are assigned by rewriting bytes 0..8 in place.

use std::ops::{ControlFlow, Range};

use super::compression::{self, Compression};
use super::error::LogError;

/// Bytes of the fixed v2 header, up to the first record.
pub const HEADER_LEN: usize = 61;
/// Bytes before the part that `batch_length` counts.
pub const LOG_OVERHEAD: usize = 12;
/// Smallest legal `batch_length`: the header after the length field.
pub const MIN_BATCH_LENGTH: i32 = (HEADER_LEN - LOG_OVERHEAD) as i32;
/// Where the CRC-covered bytes start.
const CRC_START: usize = 21;
const MAGIC_V2: i8 = 2;
const TIMESTAMP_TYPE_BIT: i16 = 1 << 3;
const TRANSACTIONAL_BIT: i16 = 1 << 4;
const CONTROL_BIT: i16 = 1 << 5;
/// A record is at least its length, attributes, timestamp delta, offset
/// delta, key length, value length and header count: one byte each.
const MIN_RECORD_LEN: usize = 7;

/// How a batch's timestamps were set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimestampType {
    /// Set by the producer.
    CreateTime,
    /// Set by the broker when appended.
    LogAppendTime,
}

/// The fixed header of one record batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    pub base_offset: i64,
    pub batch_length: i32,
    pub partition_leader_epoch: i32,
    pub magic: i8,
    pub crc: u32,
    pub attributes: i16,
    pub last_offset_delta: i32,
    pub base_timestamp: i64,
    pub max_timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub records_count: i32,
}

impl BatchHeader {
    /// Reads the fixed header fields, checking nothing but their presence.
    pub fn parse(bytes: &[u8]) -> Result<BatchHeader, LogError> {
        let h: &[u8; HEADER_LEN] = bytes
            .get(..HEADER_LEN)
            .and_then(|s| s.try_into().ok())
            .ok_or(LogError::TruncatedBatch {
                needed: HEADER_LEN,
                available: bytes.len(),
            })?;
        Ok(BatchHeader {
            base_offset: i64::from_be_bytes(field(h, 0)),
            batch_length: i32::from_be_bytes(field(h, 8)),
            partition_leader_epoch: i32::from_be_bytes(field(h, 12)),
            magic: h[16] as i8,
            crc: u32::from_be_bytes(field(h, 17)),
            attributes: i16::from_be_bytes(field(h, 21)),
            last_offset_delta: i32::from_be_bytes(field(h, 23)),
            base_timestamp: i64::from_be_bytes(field(h, 27)),
            max_timestamp: i64::from_be_bytes(field(h, 35)),
            producer_id: i64::from_be_bytes(field(h, 43)),
            producer_epoch: i16::from_be_bytes(field(h, 51)),
            base_sequence: i32::from_be_bytes(field(h, 53)),
            records_count: i32::from_be_bytes(field(h, 57)),
        })
    }

    /// Checks the header fields that need no other bytes: length, magic,
    /// codec and a non-negative record count.
    pub fn check(&self) -> Result<(), LogError> {
        if self.batch_length < MIN_BATCH_LENGTH {
            return Err(LogError::BatchLengthTooSmall {
                length: self.batch_length,
            });
        }
        if self.magic != MAGIC_V2 {
            return Err(LogError::UnsupportedMagic { magic: self.magic });
        }
        self.compression()?;
        if self.records_count < 0 {
            return Err(LogError::InvalidRecordCount {
                count: self.records_count,
            });
        }
        if self.last_offset_delta < 0 {
            return Err(LogError::OffsetDeltaMismatch {
                last_offset_delta: self.last_offset_delta,
                records_count: self.records_count,
            });
        }
        Ok(())
    }

    /// Total bytes of the batch, including offset and length fields.
    /// Meaningful once [`check`](Self::check) passed (`batch_length >= 49`).
    pub fn size(&self) -> usize {
        LOG_OVERHEAD + usize::try_from(self.batch_length).unwrap_or(0)
    }

    /// Offset of the last record.
    pub fn last_offset(&self) -> i64 {
        self.base_offset + i64::from(self.last_offset_delta)
    }

    pub fn compression(&self) -> Result<Compression, LogError> {
        Compression::from_attributes(self.attributes)
    }

    pub fn timestamp_type(&self) -> TimestampType {
        if self.attributes & TIMESTAMP_TYPE_BIT != 0 {
            TimestampType::LogAppendTime
        } else {
            TimestampType::CreateTime
        }
    }

    pub fn is_transactional(&self) -> bool {
        self.attributes & TRANSACTIONAL_BIT != 0
    }

    pub fn is_control(&self) -> bool {
        self.attributes & CONTROL_BIT != 0
    }
}

fn field<const N: usize>(h: &[u8; HEADER_LEN], at: usize) -> [u8; N] {
    let mut out = [0u8; N];
    out.copy_from_slice(&h[at..at + N]);
    out
}

/// Limits applied to produced batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchLimits {
    /// Largest batch accepted, in bytes (Kafka `max.message.bytes`).
    pub max_batch_bytes: usize,
    /// Cap on the decompressed records section of one batch.
    pub max_decompressed_bytes: usize,
}

/// One batch of a produce request that passed [`validate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidatedBatch {
    /// Where the batch lies in the records buffer.
    pub range: Range<usize>,
    pub header: BatchHeader,
}

/// The records of a produce request after [`validate_produce`]: the only
/// input [`PartitionLog::append`](super::PartitionLog::append) takes, so no
/// unvalidated byte can reach the log and no batch is decompressed twice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidatedRecords {
    bytes: Vec<u8>,
    batches: Vec<ValidatedBatch>,
}

impl ValidatedRecords {
    /// The batches, in order (for idempotence checks before appending).
    pub fn batches(&self) -> &[ValidatedBatch] {
        &self.batches
    }

    /// Total bytes of the batches.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Always false: validation refuses empty records.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    pub(crate) fn into_parts(self) -> (Vec<u8>, Vec<ValidatedBatch>) {
        (self.bytes, self.batches)
    }
}

/// Checks the integrity of the batch at the start of `bytes`: a whole header,
/// a legal length, every declared byte present, magic 2, a known codec and
/// the CRC32C. Bytes after the batch are ignored. Records are not walked:
/// this is the check for bytes already in the log.
pub fn verify(bytes: &[u8]) -> Result<BatchHeader, LogError> {
    let header = BatchHeader::parse(bytes)?;
    header.check()?;
    let size = header.size();
    if bytes.len() < size {
        return Err(LogError::TruncatedBatch {
            needed: size,
            available: bytes.len(),
        });
    }
    let computed = crc32c::crc32c(&bytes[CRC_START..size]);
    if computed != header.crc {
        return Err(LogError::CrcMismatch {
            stored: header.crc,
            computed,
        });
    }
    Ok(header)
}

/// Fully validates one produced batch (exactly the bytes of `batch`):
/// everything [`verify`] checks, the size limit, the rules Kafka applies to
/// client batches (records present, dense offset deltas, no control batch,
/// a base sequence when idempotent), and that the records section, after
/// decompression within the cap, holds exactly `records_count` well-formed
/// records.
pub fn validate(batch: &[u8], limits: &BatchLimits) -> Result<BatchHeader, LogError> {
    let header = verify(batch)?;
    let size = header.size();
    if size != batch.len() {
        return Err(LogError::TrailingBytes {
            count: batch.len() - size,
        });
    }
    if size > limits.max_batch_bytes {
        return Err(LogError::BatchTooLarge {
            size,
            max: limits.max_batch_bytes,
        });
    }
    if header.records_count <= 0 {
        return Err(LogError::InvalidRecordCount {
            count: header.records_count,
        });
    }
    if i64::from(header.last_offset_delta) != i64::from(header.records_count) - 1 {
        return Err(LogError::OffsetDeltaMismatch {
            last_offset_delta: header.last_offset_delta,
            records_count: header.records_count,
        });
    }
    if header.is_control() {
        return Err(LogError::ControlBatchFromClient);
    }
    if header.producer_id >= 0 && header.base_sequence < 0 {
        return Err(LogError::InvalidBaseSequence {
            producer_id: header.producer_id,
            base_sequence: header.base_sequence,
        });
    }
    let mut expected_delta = 0i32;
    let mut bad_delta = None;
    for_each_record(batch, &header, limits.max_decompressed_bytes, |record| {
        if record.offset_delta != expected_delta {
            bad_delta = Some((expected_delta, record.offset_delta));
            return ControlFlow::Break(());
        }
        expected_delta += 1;
        ControlFlow::Continue(())
    })?;
    if let Some((index, offset_delta)) = bad_delta {
        return Err(LogError::NonSequentialOffsetDelta {
            record: index as usize,
            offset_delta,
        });
    }
    Ok(header)
}

/// Splits the `records` field of a produce request into its batches and
/// validates each ([`validate`]). Fails on the first bad batch, on a partial
/// batch at the end, and on an empty buffer. On success the bytes are copied
/// once, into the buffer the log will write.
pub fn validate_produce(
    records: &[u8],
    limits: &BatchLimits,
) -> Result<ValidatedRecords, LogError> {
    let ranges = split_batches(records)?;
    if ranges.is_empty() {
        return Err(LogError::NoBatches);
    }
    let batches = ranges
        .into_iter()
        .map(|range| {
            let header = validate(&records[range.clone()], limits)?;
            Ok(ValidatedBatch { range, header })
        })
        .collect::<Result<Vec<_>, LogError>>()?;
    Ok(ValidatedRecords {
        bytes: records.to_vec(),
        batches,
    })
}

/// Iterates over the headers of consecutive batches in a buffer (a read
/// result, a produce request), checking framing and header fields but not
/// CRCs. Yields one error and stops at the first bad or partial batch.
#[derive(Debug, Clone)]
pub struct BatchIter<'a> {
    bytes: &'a [u8],
    position: usize,
    failed: bool,
}

impl<'a> BatchIter<'a> {
    pub fn new(bytes: &'a [u8]) -> BatchIter<'a> {
        BatchIter {
            bytes,
            position: 0,
            failed: false,
        }
    }

    /// Where the next batch starts.
    pub fn position(&self) -> usize {
        self.position
    }
}

impl Iterator for BatchIter<'_> {
    type Item = Result<BatchHeader, LogError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.position >= self.bytes.len() {
            return None;
        }
        let rest = &self.bytes[self.position..];
        let header = BatchHeader::parse(rest).and_then(|h| {
            h.check()?;
            if h.size() > rest.len() {
                return Err(LogError::TruncatedBatch {
                    needed: h.size(),
                    available: rest.len(),
                });
            }
            Ok(h)
        });
        match &header {
            Ok(h) => self.position += h.size(),
            Err(_) => self.failed = true,
        }
        Some(header)
    }
}

/// Splits a buffer holding consecutive batches at their length fields. Only
/// the framing is checked (a length of at least 49, every declared byte
/// present); a partial batch at the end is an error.
pub fn split_batches(records: &[u8]) -> Result<Vec<Range<usize>>, LogError> {
    let mut ranges = Vec::new();
    let mut at = 0usize;
    while at < records.len() {
        let rest = &records[at..];
        if rest.len() < LOG_OVERHEAD {
            return Err(LogError::TruncatedBatch {
                needed: LOG_OVERHEAD,
                available: rest.len(),
            });
        }
        let length = i32::from_be_bytes([rest[8], rest[9], rest[10], rest[11]]);
        if length < MIN_BATCH_LENGTH {
            return Err(LogError::BatchLengthTooSmall { length });
        }
        let size = LOG_OVERHEAD + length as usize;
        if rest.len() < size {
            return Err(LogError::TruncatedBatch {
                needed: size,
                available: rest.len(),
            });
        }
        ranges.push(at..at + size);
        at += size;
    }
    Ok(ranges)
}

/// Rewrites the base offset of the batch at the start of `batch`. The CRC
/// does not cover it, so the batch stays valid.
pub fn set_base_offset(batch: &mut [u8], base_offset: i64) {
    batch[..8].copy_from_slice(&base_offset.to_be_bytes());
}

/// Rewrites the partition leader epoch (not covered by the CRC either).
pub fn set_partition_leader_epoch(batch: &mut [u8], epoch: i32) {
    batch[12..16].copy_from_slice(&epoch.to_be_bytes());
}

/// Marks a verified batch as `LogAppendTime` with `max_timestamp = now_ms`
/// and recomputes its CRC, as Kafka does for topics with
/// `message.timestamp.type=LogAppendTime`.
pub fn set_log_append_time(batch: &mut [u8], header: &BatchHeader, now_ms: i64) {
    let attributes = header.attributes | TIMESTAMP_TYPE_BIT;
    batch[21..23].copy_from_slice(&attributes.to_be_bytes());
    batch[35..43].copy_from_slice(&now_ms.to_be_bytes());
    let crc = crc32c::crc32c(&batch[CRC_START..header.size()]);
    batch[17..21].copy_from_slice(&crc.to_be_bytes());
}

/// CRC32C over the covered part of a header, continued later over the rest
/// of the batch (for scanning batches too large to read at once).
pub(crate) fn crc_of_header_tail(header_bytes: &[u8]) -> u32 {
    crc32c::crc32c(&header_bytes[CRC_START..HEADER_LEN])
}

/// The per-record fields the log needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordInfo {
    pub offset_delta: i32,
    pub timestamp_delta: i64,
}

/// One record with its payload, borrowed from a (decompressed) records
/// section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record<'a> {
    pub offset_delta: i32,
    pub timestamp_delta: i64,
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
    pub headers: &'a [RecordHeader<'a>],
}

/// One record header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordHeader<'a> {
    pub key: &'a [u8],
    pub value: Option<&'a [u8]>,
}

/// Walks every record of a batch whose header was already checked,
/// decompressing within `max_decompressed` bytes. Fails unless the records
/// section holds exactly `records_count` well-formed records and nothing
/// else; `f` may stop the walk early, which skips those checks.
pub fn for_each_record(
    batch: &[u8],
    header: &BatchHeader,
    max_decompressed: usize,
    mut f: impl FnMut(RecordInfo) -> ControlFlow<()>,
) -> Result<(), LogError> {
    for_each_full_record(batch, header, max_decompressed, |record| {
        f(RecordInfo {
            offset_delta: record.offset_delta,
            timestamp_delta: record.timestamp_delta,
        })
    })
}

/// [`for_each_record`] with every record's key, value and headers.
pub fn for_each_full_record(
    batch: &[u8],
    header: &BatchHeader,
    max_decompressed: usize,
    mut f: impl FnMut(&Record<'_>) -> ControlFlow<()>,
) -> Result<(), LogError> {
    let size = header.size();
    let section = batch
        .get(HEADER_LEN..size)
        .ok_or(LogError::TruncatedBatch {
            needed: size,
            available: batch.len(),
        })?;
    let codec = header.compression()?;
    let declared =
        usize::try_from(header.records_count).map_err(|_| LogError::InvalidRecordCount {
            count: header.records_count,
        })?;
    // Compressed sections can hold more records than their size suggests;
    // the count is checked against the decompressed bytes below.
    if codec == Compression::None && declared > section.len() / MIN_RECORD_LEN {
        return Err(LogError::RecordCountMismatch {
            declared: header.records_count,
            found: section.len() / MIN_RECORD_LEN,
        });
    }
    let decompressed;
    let records = if codec == Compression::None {
        section
    } else {
        decompressed = compression::decompress(codec, section, max_decompressed)?;
        if declared > decompressed.len() / MIN_RECORD_LEN {
            return Err(LogError::RecordCountMismatch {
                declared: header.records_count,
                found: decompressed.len() / MIN_RECORD_LEN,
            });
        }
        &decompressed[..]
    };
    let mut cursor = Cursor {
        bytes: records,
        at: 0,
    };
    let mut headers = Vec::new();
    for index in 0..declared {
        if cursor.remaining() == 0 {
            return Err(LogError::RecordCountMismatch {
                declared: header.records_count,
                found: index,
            });
        }
        headers.clear();
        let fields = read_record(&mut cursor, index, &mut headers)?;
        let record = Record {
            offset_delta: fields.offset_delta,
            timestamp_delta: fields.timestamp_delta,
            key: fields.key,
            value: fields.value,
            headers: &headers,
        };
        if f(&record).is_break() {
            return Ok(());
        }
    }
    if cursor.remaining() > 0 {
        return Err(LogError::TrailingBytes {
            count: cursor.remaining(),
        });
    }
    Ok(())
}

/// A record's fields other than its headers.
struct RecordFields<'a> {
    offset_delta: i32,
    timestamp_delta: i64,
    key: Option<&'a [u8]>,
    value: Option<&'a [u8]>,
}

/// Parses one record (length-prefixed), pushing its headers, and checks
/// that its body is exactly as long as declared.
fn read_record<'a>(
    cursor: &mut Cursor<'a>,
    record: usize,
    headers_out: &mut Vec<RecordHeader<'a>>,
) -> Result<RecordFields<'a>, LogError> {
    let start = cursor.at;
    let malformed = |position: usize, reason: &'static str| LogError::MalformedRecord {
        record,
        position,
        reason,
    };
    let length = cursor
        .varint()
        .ok_or_else(|| malformed(start, "bad record length varint"))?;
    let length = usize::try_from(length).map_err(|_| malformed(start, "negative record length"))?;
    if length > cursor.remaining() {
        return Err(malformed(start, "record longer than the bytes left"));
    }
    let body_start = cursor.at;
    let mut body = Cursor {
        bytes: &cursor.bytes[..body_start + length],
        at: body_start,
    };
    cursor.at = body_start + length;

    body.skip(1)
        .ok_or_else(|| malformed(body.at, "missing attributes"))?;
    let timestamp_delta = body
        .varlong()
        .ok_or_else(|| malformed(body.at, "bad timestamp delta"))?;
    let offset_delta = body
        .varint()
        .ok_or_else(|| malformed(body.at, "bad offset delta"))?;
    let key = body
        .nullable_bytes()
        .map_err(|reason| malformed(body.at, reason))?;
    let value = body
        .nullable_bytes()
        .map_err(|reason| malformed(body.at, reason))?;
    let headers = body
        .varint()
        .ok_or_else(|| malformed(body.at, "bad header count"))?;
    let headers =
        usize::try_from(headers).map_err(|_| malformed(body.at, "negative header count"))?;
    // Each header is at least a key length and a value length.
    if headers > body.remaining() / 2 {
        return Err(malformed(body.at, "header count exceeds the bytes left"));
    }
    for _ in 0..headers {
        let key_at = body.at;
        let key = match body.varint() {
            Some(len) if len >= 0 => body
                .take(len as usize)
                .ok_or_else(|| malformed(key_at, "header key longer than the record"))?,
            Some(_) => return Err(malformed(key_at, "null header key")),
            None => return Err(malformed(key_at, "bad header key length")),
        };
        let value = body
            .nullable_bytes()
            .map_err(|reason| malformed(body.at, reason))?;
        headers_out.push(RecordHeader { key, value });
    }
    if body.remaining() != 0 {
        return Err(malformed(body.at, "record body longer than its fields"));
    }
    Ok(RecordFields {
        offset_delta,
        timestamp_delta,
        key,
        value,
    })
}

/// A read position over a byte slice; every read checks the bytes left.
struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn remaining(&self) -> usize {
        self.bytes.len() - self.at
    }

    fn skip(&mut self, n: usize) -> Option<()> {
        self.take(n).map(|_| ())
    }

    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if n > self.remaining() {
            return None;
        }
        let bytes = &self.bytes[self.at..self.at + n];
        self.at += n;
        Some(bytes)
    }

    /// An unsigned LEB128 value of at most `max_bytes` bytes.
    fn unsigned(&mut self, max_bytes: usize) -> Option<u64> {
        let mut value = 0u64;
        for i in 0..max_bytes {
            let byte = *self.bytes.get(self.at)?;
            self.at += 1;
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                return Some(value);
            }
        }
        None
    }

    /// A zigzag varint that must fit an i32.
    fn varint(&mut self) -> Option<i32> {
        let raw = u32::try_from(self.unsigned(5)?).ok()?;
        Some(((raw >> 1) as i32) ^ -((raw & 1) as i32))
    }

    /// A zigzag varlong.
    fn varlong(&mut self) -> Option<i64> {
        let raw = self.unsigned(10)?;
        Some(((raw >> 1) as i64) ^ -((raw & 1) as i64))
    }

    /// A varint length (-1 for null) and that many bytes.
    fn nullable_bytes(&mut self) -> Result<Option<&'a [u8]>, &'static str> {
        match self.varint() {
            Some(-1) => Ok(None),
            Some(len) if len >= 0 => self
                .take(len as usize)
                .map(Some)
                .ok_or("field longer than the record"),
            Some(_) => Err("negative field length"),
            None => Err("bad field length varint"),
        }
    }
}

#[cfg(test)]
#[path = "batch_tests.rs"]
mod tests;
