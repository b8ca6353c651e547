//! One segment: `<base_offset:020>.log` with its `.index` and `.timeindex`,
//! and the batch scanner used by recovery, index rebuilds and reads.

use std::path::{Path, PathBuf};

use super::batch::{self, BatchHeader, HEADER_LEN};
use super::error::LogError;
use super::file::{Disk, DiskFile};
use super::index::{OFFSET_ENTRY_LEN, SegmentIndex, TIME_ENTRY_LEN};

const LOG_SUFFIX: &str = ".log";
const INDEX_SUFFIX: &str = ".index";
const TIME_INDEX_SUFFIX: &str = ".timeindex";

/// Bytes read per I/O when scanning a segment.
/// Read size of a full scan (recovery), which reads every byte.
const SCAN_CHUNK: usize = 256 * 1024;
/// Read size of a header walk (finding the batch that holds an offset),
/// which reads a few headers near an index entry.
pub const HEADER_WALK_CHUNK: usize = 8 * 1024;

/// The file name of a segment: its base offset, zero-padded to 20 digits.
pub fn segment_file_name(base_offset: i64) -> String {
    format!("{base_offset:020}{LOG_SUFFIX}")
}

/// The base offset named by a `.log` file name.
pub fn parse_segment_file_name(name: &str) -> Option<i64> {
    parse_name(name, LOG_SUFFIX)
}

/// The base offset named by an index file name (`.index` or `.timeindex`).
pub fn parse_index_file_name(name: &str) -> Option<i64> {
    parse_name(name, INDEX_SUFFIX).or_else(|| parse_name(name, TIME_INDEX_SUFFIX))
}

fn parse_name(name: &str, suffix: &str) -> Option<i64> {
    let digits = name.strip_suffix(suffix)?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

pub fn log_path(dir: &Path, base_offset: i64) -> PathBuf {
    dir.join(segment_file_name(base_offset))
}

pub fn index_path(dir: &Path, base_offset: i64) -> PathBuf {
    dir.join(format!("{base_offset:020}{INDEX_SUFFIX}"))
}

pub fn time_index_path(dir: &Path, base_offset: i64) -> PathBuf {
    dir.join(format!("{base_offset:020}{TIME_INDEX_SUFFIX}"))
}

/// A segment in memory. `size` and `end_offset` cover whole, written batches
/// only: a read never sees an append in progress.
pub struct Segment {
    pub base_offset: i64,
    pub file: DiskFile,
    /// Bytes of complete batches.
    pub size: u64,
    /// The offset after the last batch (`base_offset` when empty).
    pub end_offset: i64,
    pub index: SegmentIndex,
    /// Max timestamp of the first batch, the age that `segment_ms` rolls on.
    pub first_batch_timestamp: Option<i64>,
    /// When the segment was created or opened, for `segment_ms` when its
    /// batches carry no timestamp.
    pub created_ms: i64,
    /// Last write, for time retention when batches carry no timestamp.
    pub modified_ms: i64,
}

impl Segment {
    /// Relative offset of `offset` in this segment (offsets in a segment are
    /// at most `u32::MAX` past its base: appends roll before that).
    pub fn relative(&self, offset: i64) -> u32 {
        u32::try_from((offset - self.base_offset).max(0)).unwrap_or(u32::MAX)
    }

    /// Records a batch written at `position`.
    pub fn on_batch(&mut self, position: u64, header: &BatchHeader) {
        let relative = self.relative(header.base_offset);
        let position = u32::try_from(position).unwrap_or(u32::MAX);
        self.index.on_batch(
            relative,
            position,
            header.size() as u64,
            header.max_timestamp,
        );
        if self.first_batch_timestamp.is_none() {
            self.first_batch_timestamp = Some(header.max_timestamp);
        }
        self.size += header.size() as u64;
        self.end_offset = header.last_offset() + 1;
    }

    /// The largest timestamp for time-based retention.
    pub fn largest_timestamp(&self) -> i64 {
        if self.index.max_timestamp() >= 0 {
            self.index.max_timestamp()
        } else {
            self.modified_ms
        }
    }
}

/// Creates an empty segment file at `base_offset` (emptying a stale file of
/// that name and removing stale indexes). Its directory entry is durable
/// once the caller syncs the directory.
pub async fn create(
    disk: &Disk,
    dir: &Path,
    base_offset: i64,
    index_interval_bytes: u64,
    now: i64,
) -> Result<Segment, LogError> {
    disk.remove_file(&index_path(dir, base_offset)).await?;
    disk.remove_file(&time_index_path(dir, base_offset)).await?;
    let file = disk.open_file(&log_path(dir, base_offset)).await?;
    if file.size().await? != 0 {
        file.truncate(0).await?;
        file.fdatasync().await?;
    }
    Ok(Segment {
        base_offset,
        file,
        size: 0,
        end_offset: base_offset,
        index: SegmentIndex::new(index_interval_bytes),
        first_batch_timestamp: None,
        created_ms: now,
        modified_ms: now,
    })
}

/// Removes a segment's files, the log first so that a crash leaves at worst
/// orphan indexes (removed at open). Durable once the caller syncs the
/// directory.
pub async fn remove_files(disk: &Disk, dir: &Path, base_offset: i64) -> Result<(), LogError> {
    disk.remove_file(&log_path(dir, base_offset)).await?;
    disk.remove_file(&index_path(dir, base_offset)).await?;
    disk.remove_file(&time_index_path(dir, base_offset)).await
}

/// Writes both index files of a segment and fdatasyncs them.
pub async fn persist_index(
    disk: &Disk,
    dir: &Path,
    base_offset: i64,
    index: &SegmentIndex,
) -> Result<(), LogError> {
    let files = [
        (index_path(dir, base_offset), index.encode_offsets()),
        (time_index_path(dir, base_offset), index.encode_times()),
    ];
    for (path, bytes) in files {
        let file = disk.open_file(&path).await?;
        file.truncate(0).await?;
        if !bytes.is_empty() {
            file.write_all_at(bytes, 0).await?;
        }
        file.fdatasync().await?;
    }
    Ok(())
}

/// Loads the persisted indexes of a segment, `None` when they are missing,
/// not sane, or their last entry does not point at the batch it names.
pub async fn load_index(
    disk: &Disk,
    dir: &Path,
    file: &DiskFile,
    base_offset: i64,
    size: u64,
    end_offset: i64,
    interval_bytes: u64,
) -> Result<Option<SegmentIndex>, LogError> {
    let names = disk.list_files(dir)?;
    let index_file = index_path(dir, base_offset);
    let time_file = time_index_path(dir, base_offset);
    let present = |path: &Path| {
        path.file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| names.iter().any(|m| m == n))
    };
    if !present(&index_file) || !present(&time_file) {
        return Ok(None);
    }
    // No more entries than batches could fit.
    let max_entries = size / HEADER_LEN as u64 + 1;
    let mut contents = Vec::new();
    for (path, entry_len) in [
        (&index_file, OFFSET_ENTRY_LEN),
        (&time_file, TIME_ENTRY_LEN),
    ] {
        let handle = disk.open_file(path).await?;
        let len = handle.size().await?;
        if len > max_entries * entry_len as u64 {
            return Ok(None);
        }
        contents.push(handle.read_at(0, len as usize).await?);
    }
    let relative_end = u64::try_from(end_offset - base_offset).unwrap_or(0);
    let Some(index) = SegmentIndex::decode(
        interval_bytes,
        &contents[0],
        &contents[1],
        size,
        relative_end,
    ) else {
        return Ok(None);
    };
    if let Some((relative, position)) = index.last_entry() {
        let bytes = file.read_at(u64::from(position), HEADER_LEN).await?;
        let points_at_batch = BatchHeader::parse(&bytes)
            .is_ok_and(|h| h.check().is_ok() && h.base_offset == base_offset + i64::from(relative));
        if !points_at_batch {
            return Ok(None);
        }
    }
    Ok(Some(index))
}

/// Where a scan stopped.
#[derive(Debug)]
pub struct ScanEnd {
    /// Byte after the last valid batch.
    pub position: u64,
    /// Offset after the last valid batch.
    pub next_offset: i64,
    /// Why the scan stopped before the end of the file, if it did.
    pub invalid: Option<LogError>,
}

/// Reads a segment in chunks, serving byte ranges from the current chunk.
pub struct ChunkReader<'a> {
    file: &'a DiskFile,
    limit: u64,
    start: u64,
    chunk: Vec<u8>,
    chunk_size: usize,
}

impl<'a> ChunkReader<'a> {
    /// A reader of `file` that never reads at or past `limit`, reading
    /// `chunk_size` bytes at a time (more when a range asked is larger).
    pub fn new(file: &'a DiskFile, limit: u64, chunk_size: usize) -> ChunkReader<'a> {
        ChunkReader {
            file,
            limit,
            start: 0,
            chunk: Vec::new(),
            chunk_size,
        }
    }

    /// Up to `len` bytes at `pos` (fewer at the limit). `len` should be at
    /// most a chunk.
    pub async fn bytes(&mut self, pos: u64, len: usize) -> Result<&[u8], LogError> {
        let end = (pos + len as u64).min(self.limit);
        if pos < self.start || end > self.start + self.chunk.len() as u64 {
            let want = (self.limit.saturating_sub(pos)).min(self.chunk_size.max(len) as u64);
            self.chunk = self.file.read_at(pos, want as usize).await?;
            self.start = pos;
        }
        // Past the limit there is nothing to serve: an empty slice.
        let from = (pos.saturating_sub(self.start) as usize).min(self.chunk.len());
        let to = (end.saturating_sub(self.start) as usize).clamp(from, self.chunk.len());
        Ok(&self.chunk[from..to])
    }
}

/// Scans batches from `start` (a batch boundary holding `expected_offset`)
/// to `limit`, verifying each batch: header, length within the file, dense
/// offsets, CRC32C. Calls `on_batch` for every valid batch and stops at the
/// first invalid byte. I/O errors are returned; corruption is a value in
/// [`ScanEnd::invalid`].
pub async fn scan(
    file: &DiskFile,
    start: u64,
    limit: u64,
    expected_offset: i64,
    mut on_batch: impl FnMut(u64, &BatchHeader),
) -> Result<ScanEnd, LogError> {
    let mut reader = ChunkReader::new(file, limit, SCAN_CHUNK);
    let mut position = start;
    let mut next_offset = expected_offset;
    let invalid = loop {
        if position >= limit {
            break None;
        }
        let head = reader.bytes(position, HEADER_LEN).await?;
        let header = match BatchHeader::parse(head).and_then(|h| h.check().map(|()| h)) {
            Ok(h) => h,
            Err(e) => break Some(e),
        };
        let size = header.size() as u64;
        if position + size > limit {
            break Some(LogError::TruncatedBatch {
                needed: header.size(),
                available: (limit - position) as usize,
            });
        }
        if position + size > u64::from(u32::MAX) {
            break Some(LogError::BatchTooLarge {
                size: header.size(),
                max: (u64::from(u32::MAX) - position) as usize,
            });
        }
        if header.base_offset != next_offset {
            break Some(LogError::UnexpectedBaseOffset {
                expected: next_offset,
                found: header.base_offset,
            });
        }
        let mut crc = batch::crc_of_header_tail(head);
        let mut at = position + HEADER_LEN as u64;
        while at < position + size {
            let want = ((position + size - at) as usize).min(SCAN_CHUNK);
            let piece = reader.bytes(at, want).await?;
            if piece.is_empty() {
                break;
            }
            crc = crc32c::crc32c_append(crc, piece);
            at += piece.len() as u64;
        }
        if crc != header.crc {
            break Some(LogError::CrcMismatch {
                stored: header.crc,
                computed: crc,
            });
        }
        on_batch(position, &header);
        position += size;
        next_offset = header.last_offset() + 1;
    };
    Ok(ScanEnd {
        position,
        next_offset,
        invalid,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        assert_eq!(segment_file_name(42), "00000000000000000042.log");
        assert_eq!(
            parse_segment_file_name("00000000000000000042.log"),
            Some(42)
        );
        assert_eq!(
            parse_index_file_name("00000000000000000042.timeindex"),
            Some(42)
        );
        assert_eq!(
            parse_index_file_name("00000000000000000042.index"),
            Some(42)
        );
        for bad in [
            "42.log",
            "0000000000000000004x.log",
            "00000000000000000042.log.tmp",
        ] {
            assert_eq!(parse_segment_file_name(bad), None, "{bad}");
        }
    }
}
