//! Reads: fetching batches by offset, and the ListOffsets timestamp lookup.

use std::ops::ControlFlow;

use bytes::Bytes;

use super::batch::{self, BatchHeader, HEADER_LEN, TimestampType};
use super::error::LogError;
use super::file::DiskFile;
use super::partition_log::{LogState, PartitionLog};
use super::segment::{ChunkReader, HEADER_WALK_CHUNK, Segment};

/// The result of a read. Offsets outside the log are outcomes, not errors:
/// the Fetch handler turns `BelowLogStart` into a remote (tiered) read and
/// `AboveLogEnd` into `OFFSET_OUT_OF_RANGE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadOutcome {
    /// Whole batches starting with the one holding the requested offset;
    /// empty when the offset is at the end (or the read bound).
    Records {
        bytes: Bytes,
        /// The offset after the last batch returned.
        next_offset: i64,
    },
    /// The offset is below the log start.
    BelowLogStart { log_start: i64 },
    /// The offset is past the log end.
    AboveLogEnd { log_end: i64 },
}

/// Where a read starts: a segment's file, its readable size, and a position
/// at or before the batch holding the offset, with the base offset of the
/// batch there when it comes from an index entry.
struct ReadStart {
    file: DiskFile,
    size: u64,
    position: u64,
    indexed_base: Option<i64>,
}

impl ReadStart {
    /// Starts at the index entry at or below `relative` in `segment`.
    fn at(segment: &Segment, relative: Option<u32>) -> ReadStart {
        let entry = relative.and_then(|r| segment.index.entry_at_or_before(r));
        ReadStart {
            file: segment.file.clone(),
            size: segment.size,
            position: entry.map_or(0, |(_, pos)| u64::from(pos)),
            indexed_base: entry.map(|(rel, _)| segment.base_offset + i64::from(rel)),
        }
    }
}

impl PartitionLog {
    /// Reads whole batches from the one holding `offset` up to the log end:
    /// see [`read_bounded`](Self::read_bounded).
    pub async fn read(&self, offset: i64, max_bytes: usize) -> Result<ReadOutcome, LogError> {
        self.read_bounded(offset, max_bytes, i64::MAX).await
    }

    /// Reads whole batches, starting with the batch that holds `offset`,
    /// none starting at or past `end_offset` (the high watermark, or the
    /// durable offset) nor past the log end. The first batch is returned even
    /// when larger than `max_bytes` (Kafka semantics, so a consumer always
    /// progresses); later ones only while they fit. A read stays within one
    /// segment.
    pub async fn read_bounded(
        &self,
        offset: i64,
        max_bytes: usize,
        end_offset: i64,
    ) -> Result<ReadOutcome, LogError> {
        let (log_start, log_end) = {
            let state = self.state.borrow();
            (state.log_start, state.log_end())
        };
        if offset < log_start {
            return Ok(ReadOutcome::BelowLogStart { log_start });
        }
        if offset > log_end {
            return Ok(ReadOutcome::AboveLogEnd { log_end });
        }
        let bound = end_offset.min(log_end);
        let empty = ReadOutcome::Records {
            bytes: Bytes::new(),
            next_offset: offset,
        };
        if offset >= bound {
            return Ok(empty);
        }
        let Some(start) = read_start(&self.state.borrow(), offset) else {
            return Ok(empty);
        };
        let Some((position, first)) = self.find_batch(&start, offset).await? else {
            return Ok(empty);
        };
        if first.base_offset >= bound {
            return Ok(empty);
        }
        let want = (max_bytes.max(first.size()) as u64).min(start.size - position);
        let mut data = start.file.read_at(position, want as usize).await?;
        let (cut, next_offset) = whole_batches(&data, bound, offset);
        data.truncate(cut);
        Ok(ReadOutcome::Records {
            bytes: Bytes::from(data),
            next_offset,
        })
    }

    /// Finds the batch holding `offset` by scanning headers from the indexed
    /// position.
    async fn find_batch(
        &self,
        start: &ReadStart,
        offset: i64,
    ) -> Result<Option<(u64, BatchHeader)>, LogError> {
        let mut reader = ChunkReader::new(&start.file, start.size, HEADER_WALK_CHUNK);
        let mut position = checked_start(start, &mut reader).await?;
        while position < start.size {
            let header = self
                .stored_header(&mut reader, position, &start.file)
                .await?;
            if header.last_offset() >= offset {
                return Ok(Some((position, header)));
            }
            position += header.size() as u64;
        }
        Ok(None)
    }

    /// A header of a batch already in the log. It was verified when written
    /// or recovered; failing now means the media changed under us.
    async fn stored_header(
        &self,
        reader: &mut ChunkReader<'_>,
        position: u64,
        file: &DiskFile,
    ) -> Result<BatchHeader, LogError> {
        let bytes = reader.bytes(position, HEADER_LEN).await?;
        BatchHeader::parse(bytes)
            .and_then(|h| h.check().map(|()| h))
            .map_err(|source| LogError::CorruptSegment {
                path: file.path().to_path_buf(),
                position,
                source: Box::new(source),
            })
    }

    /// The first record with a timestamp at or after `timestamp`, as
    /// `(offset, timestamp)`: Kafka ListOffsets for a timestamp. `None` when
    /// no record is that recent. Records below the log start are skipped.
    pub async fn offset_for_timestamp(
        &self,
        timestamp: i64,
    ) -> Result<Option<(i64, i64)>, LogError> {
        let (log_start, candidates) = {
            let state = self.state.borrow();
            let candidates: Vec<ReadStart> = state
                .segments
                .iter()
                .filter(|s| s.index.max_timestamp() >= timestamp && s.end_offset > state.log_start)
                .map(|s| ReadStart::at(s, s.index.scan_start_for_timestamp(timestamp)))
                .collect();
            (state.log_start, candidates)
        };
        let cap = self.config.borrow().max_batch_decompressed_bytes;
        for start in candidates {
            let mut reader = ChunkReader::new(&start.file, start.size, HEADER_WALK_CHUNK);
            let mut position = checked_start(&start, &mut reader).await?;
            while position < start.size {
                let header = self
                    .stored_header(&mut reader, position, &start.file)
                    .await?;
                if header.last_offset() >= log_start && header.max_timestamp >= timestamp {
                    let bytes = start.file.read_at(position, header.size()).await?;
                    if let Some(found) =
                        first_record_at_or_after(&bytes, &header, timestamp, log_start, cap)
                    {
                        return Ok(Some(found));
                    }
                }
                position += header.size() as u64;
            }
        }
        Ok(None)
    }
}

impl PartitionLog {
    /// The first record with the largest timestamp in the log, as
    /// `(offset, timestamp)` (ListOffsets `-3`, KIP-734). `None` when no
    /// record carries a timestamp.
    pub async fn max_timestamp(&self) -> Result<Option<(i64, i64)>, LogError> {
        let max = {
            let state = self.state.borrow();
            state
                .segments
                .iter()
                .filter(|s| s.end_offset > state.log_start)
                .map(|s| s.index.max_timestamp())
                .max()
        };
        match max {
            Some(timestamp) if timestamp >= 0 => self.offset_for_timestamp(timestamp).await,
            _ => Ok(None),
        }
    }
}

/// The segment holding `offset` and where its index says to start.
fn read_start(state: &LogState, offset: i64) -> Option<ReadStart> {
    let idx = state.segments.partition_point(|s| s.end_offset <= offset);
    let segment = state.segments.get(idx)?;
    let relative = (offset >= segment.base_offset).then(|| segment.relative(offset));
    Some(ReadStart::at(segment, relative))
}

/// The position to scan from: the indexed one when the batch there is the
/// one its index entry names, else the segment start. Indexes are never
/// trusted over the log.
async fn checked_start(start: &ReadStart, reader: &mut ChunkReader<'_>) -> Result<u64, LogError> {
    let Some(expected) = start.indexed_base else {
        return Ok(start.position);
    };
    let bytes = reader.bytes(start.position, HEADER_LEN).await?;
    let points_at_batch =
        BatchHeader::parse(bytes).is_ok_and(|h| h.check().is_ok() && h.base_offset == expected);
    if points_at_batch {
        Ok(start.position)
    } else {
        tracing::warn!(
            path = %start.file.path().display(),
            position = start.position,
            expected_base_offset = expected,
            "index entry does not point at its batch; scanning from the segment start"
        );
        Ok(0)
    }
}

/// How many leading bytes of `data` are whole batches starting below
/// `bound` (the first batch always counts), and the offset after them
/// (`offset` when there is none).
fn whole_batches(data: &[u8], bound: i64, offset: i64) -> (usize, i64) {
    let mut at = 0usize;
    let mut next_offset = offset;
    while let Ok(header) = BatchHeader::parse(&data[at..]) {
        if header.batch_length < batch::MIN_BATCH_LENGTH
            || at + header.size() > data.len()
            || (at > 0 && header.base_offset >= bound)
        {
            break;
        }
        at += header.size();
        next_offset = header.last_offset() + 1;
    }
    (at, next_offset)
}

/// The first record with a timestamp at or after `timestamp` and an offset
/// at or after `log_start` in `bytes`, whole batches as stored (e.g. read
/// back from the remote tier), as `(offset, timestamp)`. `cap` bounds the
/// decompressed size of a batch.
pub fn first_record_in_batches(
    bytes: &[u8],
    timestamp: i64,
    log_start: i64,
    cap: usize,
) -> Option<(i64, i64)> {
    let mut at = 0;
    while at + HEADER_LEN <= bytes.len() {
        let header = BatchHeader::parse(&bytes[at..]).ok()?;
        let end = at + header.size();
        if end > bytes.len() {
            return None;
        }
        if header.last_offset() >= log_start
            && header.max_timestamp >= timestamp
            && let Some(found) =
                first_record_at_or_after(&bytes[at..end], &header, timestamp, log_start, cap)
        {
            return Some(found);
        }
        at = end;
    }
    None
}

/// The first record of a batch with a timestamp at or after `timestamp` and
/// an offset at or after `log_start`.
fn first_record_at_or_after(
    bytes: &[u8],
    header: &BatchHeader,
    timestamp: i64,
    log_start: i64,
    cap: usize,
) -> Option<(i64, i64)> {
    if header.timestamp_type() == TimestampType::LogAppendTime {
        // Every record carries the batch's append time.
        return Some((header.base_offset.max(log_start), header.max_timestamp));
    }
    let mut found = None;
    let walked = batch::for_each_record(bytes, header, cap, |record| {
        let offset = header.base_offset + i64::from(record.offset_delta);
        let record_timestamp = header.base_timestamp + record.timestamp_delta;
        if record_timestamp >= timestamp && offset >= log_start {
            found = Some((offset, record_timestamp));
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    });
    match walked {
        Ok(()) => found,
        // Records that cannot be walked (beyond the cap): answer with the
        // batch, whose max timestamp qualifies.
        Err(_) => Some((header.base_offset.max(log_start), header.max_timestamp)),
    }
}
