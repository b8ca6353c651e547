//! Record-batch framing of segment bytes and the remote index object.
//!
//! A segment is a sequence of Kafka RecordBatch v2 frames. This module reads
//! only the fixed batch header (the segment format, not the Kafka protocol):
//!
//! ```text
//! 0  base_offset i64      12 partition_leader_epoch i32   21 attributes i16
//! 8  batch_length i32     16 magic i8 (= 2)               23 last_offset_delta i32
//!                         17 crc u32 (CRC32C of bytes 21..end)
//! 27 base_timestamp i64   35 max_timestamp i64   ... 61 = end of the fixed header
//! ```
//!
//! `batch_length` counts the bytes after itself, so a batch spans
//! `12 + batch_length` bytes. The [`RemoteIndex`] uploaded next to each
//! segment maps offsets to byte positions and holds the largest timestamp of
//! each indexed span, so a reader can fetch one chunk instead of the object.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::error::{Error, Result};

/// Bytes before `batch_length`'s counted region (base offset + length).
pub const LOG_OVERHEAD: usize = 12;
/// Size of the fixed RecordBatch v2 header.
pub const BATCH_HEADER_LEN: usize = 61;
/// Where the CRC-covered region of a batch starts.
const CRC_START: usize = 21;
/// Default span of one index entry.
pub const DEFAULT_INDEX_INTERVAL: u64 = 4096;

/// The fields of a batch header this crate uses.
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
}

impl BatchHeader {
    /// Parses and sanity-checks the header at the start of `buf` (which must
    /// hold at least [`BATCH_HEADER_LEN`] bytes). `position` is only used in
    /// errors.
    pub fn parse(buf: &[u8], position: u64) -> Result<BatchHeader> {
        let bad = |reason: String| Error::BadBatch { position, reason };
        if buf.len() < BATCH_HEADER_LEN {
            return Err(bad(format!(
                "{} bytes, less than a batch header",
                buf.len()
            )));
        }
        let mut b = &buf[..BATCH_HEADER_LEN];
        let header = BatchHeader {
            base_offset: b.get_i64(),
            batch_length: b.get_i32(),
            partition_leader_epoch: b.get_i32(),
            magic: b.get_i8(),
            crc: b.get_u32(),
            attributes: b.get_i16(),
            last_offset_delta: b.get_i32(),
            base_timestamp: b.get_i64(),
            max_timestamp: b.get_i64(),
        };
        if header.magic != 2 {
            return Err(bad(format!("magic {} (expected 2)", header.magic)));
        }
        if (header.batch_length as i64) < (BATCH_HEADER_LEN - LOG_OVERHEAD) as i64 {
            return Err(bad(format!(
                "batch length {} too small",
                header.batch_length
            )));
        }
        if header.base_offset < 0 || header.last_offset_delta < 0 {
            return Err(bad(format!(
                "base offset {} / last offset delta {}",
                header.base_offset, header.last_offset_delta
            )));
        }
        Ok(header)
    }

    /// Total bytes of the batch, headers included.
    pub fn size(&self) -> u64 {
        LOG_OVERHEAD as u64 + self.batch_length as u64
    }

    /// Offset of the batch's last record.
    pub fn last_offset(&self) -> i64 {
        self.base_offset + self.last_offset_delta as i64
    }
}

/// Offsets, timestamps and counts of a run of batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchSummary {
    pub batch_count: u64,
    /// Bytes covered by the complete batches (a trailing partial batch is
    /// not counted and not an error).
    pub complete_len: u64,
    pub base_offset: i64,
    pub last_offset: i64,
    pub base_timestamp: i64,
    pub max_timestamp: i64,
}

/// Checks framing and CRC of every complete batch in `bytes` and that base
/// offsets increase. A partial batch at the end is reported through
/// [`BatchSummary::complete_len`], not as an error; `None` when `bytes` holds
/// no complete batch.
pub fn validate_batches(bytes: &[u8]) -> Result<Option<BatchSummary>> {
    let mut position = 0usize;
    let mut summary: Option<BatchSummary> = None;
    while bytes.len() - position >= BATCH_HEADER_LEN {
        let header = BatchHeader::parse(&bytes[position..], position as u64)?;
        let size = header.size() as usize;
        if bytes.len() - position < size {
            break;
        }
        let computed = crc32c::crc32c(&bytes[position + CRC_START..position + size]);
        if computed != header.crc {
            return Err(Error::BadBatch {
                position: position as u64,
                reason: format!(
                    "crc mismatch (stored {:#010x}, computed {computed:#010x})",
                    header.crc
                ),
            });
        }
        summary = Some(match summary {
            None => BatchSummary {
                batch_count: 1,
                complete_len: size as u64,
                base_offset: header.base_offset,
                last_offset: header.last_offset(),
                base_timestamp: header.base_timestamp,
                max_timestamp: header.max_timestamp,
            },
            Some(mut s) => {
                if header.base_offset <= s.last_offset {
                    return Err(Error::BadBatch {
                        position: position as u64,
                        reason: format!(
                            "base offset {} not after previous last offset {}",
                            header.base_offset, s.last_offset
                        ),
                    });
                }
                s.batch_count += 1;
                s.complete_len += size as u64;
                s.last_offset = header.last_offset();
                s.max_timestamp = s.max_timestamp.max(header.max_timestamp);
                s
            }
        });
        position += size;
    }
    Ok(summary)
}

/// One index entry: the span of batches starting at `position` whose first
/// batch has base offset `offset`; `max_timestamp` is the largest timestamp
/// of the span.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexEntry {
    pub offset: i64,
    pub position: u64,
    pub max_timestamp: i64,
}

/// The `.index` object: sparse offset -> position entries, one per
/// `interval` bytes of batches (at least one per batch boundary crossed).
///
/// Encoding (big-endian): `b"FLXI"`, version `u8` = 1, three zero bytes,
/// entry count `u32`, then per entry `offset i64, position u64,
/// max_timestamp i64`, then CRC32C `u32` of everything before it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RemoteIndex {
    pub entries: Vec<IndexEntry>,
}

const INDEX_MAGIC: &[u8; 4] = b"FLXI";
const INDEX_ENTRY_LEN: usize = 24;

impl RemoteIndex {
    /// Serializes the index.
    pub fn encode(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(12 + self.entries.len() * INDEX_ENTRY_LEN + 4);
        out.put_slice(INDEX_MAGIC);
        out.put_u8(1);
        out.put_bytes(0, 3);
        out.put_u32(self.entries.len() as u32);
        for e in &self.entries {
            out.put_i64(e.offset);
            out.put_u64(e.position);
            out.put_i64(e.max_timestamp);
        }
        let crc = crc32c::crc32c(&out);
        out.put_u32(crc);
        out.freeze()
    }

    /// Parses an index object, checking magic, length, CRC and ordering.
    /// The error is a plain reason; callers add the key and offsets.
    pub fn decode(bytes: &[u8]) -> Result<RemoteIndex, String> {
        if bytes.len() < 16 || &bytes[..4] != INDEX_MAGIC || bytes[4] != 1 {
            return Err("not a version-1 index object".into());
        }
        let (body, crc) = bytes.split_at(bytes.len() - 4);
        let stored = u32::from_be_bytes(crc.try_into().expect("4 bytes"));
        if crc32c::crc32c(body) != stored {
            return Err("index crc mismatch".into());
        }
        let mut b = &body[8..];
        let count = b.get_u32() as usize;
        if b.len() != count.saturating_mul(INDEX_ENTRY_LEN) {
            return Err(format!("{count} entries but {} bytes", b.len()));
        }
        let mut entries = Vec::with_capacity(count);
        for _ in 0..count {
            let e = IndexEntry {
                offset: b.get_i64(),
                position: b.get_u64(),
                max_timestamp: b.get_i64(),
            };
            if let Some(p) = entries.last() {
                let p: &IndexEntry = p;
                if e.offset <= p.offset || e.position <= p.position {
                    return Err("entries not increasing".into());
                }
            }
            entries.push(e);
        }
        Ok(RemoteIndex { entries })
    }

    /// The position of the indexed span that holds `offset`: the last entry
    /// whose offset is at or below it (0 when none is).
    pub fn position_for(&self, offset: i64) -> u64 {
        let i = self.entries.partition_point(|e| e.offset <= offset);
        if i == 0 {
            0
        } else {
            self.entries[i - 1].position
        }
    }

    /// The byte range `start..end` (end `None` = object end) of the first span
    /// holding a timestamp at or after `timestamp`.
    pub fn span_for_timestamp(&self, timestamp: i64) -> Option<(u64, Option<u64>)> {
        let i = self
            .entries
            .iter()
            .position(|e| e.max_timestamp >= timestamp)?;
        Some((
            self.entries[i].position,
            self.entries.get(i + 1).map(|e| e.position),
        ))
    }
}

/// Incremental framing + CRC check of a segment fed in arbitrary pieces,
/// building its [`RemoteIndex`] on the way. Memory use is one batch header,
/// whatever the segment size.
#[derive(Debug)]
pub struct BatchScanner {
    position: u64,
    header: [u8; BATCH_HEADER_LEN],
    header_len: usize,
    current: Option<Pending>,
    interval: u64,
    index: RemoteIndex,
    summary: Option<BatchSummary>,
}

#[derive(Debug)]
struct Pending {
    header: BatchHeader,
    start: u64,
    end: u64,
    crc: u32,
}

impl BatchScanner {
    /// A scanner for bytes starting at position 0 of an object, with one
    /// index entry per `interval` bytes.
    pub fn new(interval: u64) -> BatchScanner {
        BatchScanner {
            position: 0,
            header: [0; BATCH_HEADER_LEN],
            header_len: 0,
            current: None,
            interval: interval.max(1),
            index: RemoteIndex::default(),
            summary: None,
        }
    }

    /// Feeds the next bytes of the object.
    pub fn push(&mut self, mut data: &[u8]) -> Result<()> {
        while !data.is_empty() {
            match &mut self.current {
                None => {
                    let take = (BATCH_HEADER_LEN - self.header_len).min(data.len());
                    self.header[self.header_len..self.header_len + take]
                        .copy_from_slice(&data[..take]);
                    self.header_len += take;
                    self.position += take as u64;
                    data = &data[take..];
                    if self.header_len == BATCH_HEADER_LEN {
                        let start = self.position - BATCH_HEADER_LEN as u64;
                        let header = BatchHeader::parse(&self.header, start)?;
                        self.current = Some(Pending {
                            header,
                            start,
                            end: start + header.size(),
                            crc: crc32c::crc32c(&self.header[CRC_START..]),
                        });
                        self.header_len = 0;
                    }
                }
                Some(pending) => {
                    let take = ((pending.end - self.position) as usize).min(data.len());
                    pending.crc = crc32c::crc32c_append(pending.crc, &data[..take]);
                    self.position += take as u64;
                    data = &data[take..];
                }
            }
            if self
                .current
                .as_ref()
                .is_some_and(|p| p.end == self.position)
            {
                let done = self.current.take().expect("pending batch");
                self.complete(done)?;
            }
        }
        Ok(())
    }

    fn complete(&mut self, batch: Pending) -> Result<()> {
        let h = batch.header;
        if batch.crc != h.crc {
            return Err(Error::BadBatch {
                position: batch.start,
                reason: format!(
                    "crc mismatch (stored {:#010x}, computed {:#010x})",
                    h.crc, batch.crc
                ),
            });
        }
        let size = batch.end - batch.start;
        match &mut self.summary {
            None => {
                self.summary = Some(BatchSummary {
                    batch_count: 1,
                    complete_len: size,
                    base_offset: h.base_offset,
                    last_offset: h.last_offset(),
                    base_timestamp: h.base_timestamp,
                    max_timestamp: h.max_timestamp,
                })
            }
            Some(s) => {
                if h.base_offset <= s.last_offset {
                    return Err(Error::BadBatch {
                        position: batch.start,
                        reason: format!(
                            "base offset {} not after previous last offset {}",
                            h.base_offset, s.last_offset
                        ),
                    });
                }
                s.batch_count += 1;
                s.complete_len += size;
                s.last_offset = h.last_offset();
                s.max_timestamp = s.max_timestamp.max(h.max_timestamp);
            }
        }
        match self.index.entries.last_mut() {
            Some(last) if batch.start - last.position < self.interval => {
                last.max_timestamp = last.max_timestamp.max(h.max_timestamp);
            }
            _ => self.index.entries.push(IndexEntry {
                offset: h.base_offset,
                position: batch.start,
                max_timestamp: h.max_timestamp,
            }),
        }
        Ok(())
    }

    /// Ends the scan: every byte fed must belong to a complete batch.
    pub fn finish(self) -> Result<(RemoteIndex, Option<BatchSummary>)> {
        if self.header_len > 0 || self.current.is_some() {
            let start = self
                .current
                .as_ref()
                .map_or(self.position - self.header_len as u64, |p| p.start);
            return Err(Error::BadBatch {
                position: start,
                reason: format!("truncated batch at end ({} bytes total)", self.position),
            });
        }
        Ok((self.index, self.summary))
    }
}

/// Builds a valid RecordBatch v2 header plus `payload` (opaque bytes standing
/// in for the records), CRC included. For tests and examples only: the
/// payload is not a real record encoding.
pub fn test_batch(base_offset: i64, record_count: i32, timestamp: i64, payload: &[u8]) -> Bytes {
    let mut b = BytesMut::with_capacity(BATCH_HEADER_LEN + payload.len());
    b.put_i64(base_offset);
    b.put_i32((BATCH_HEADER_LEN - LOG_OVERHEAD + payload.len()) as i32);
    b.put_i32(0); // partition leader epoch
    b.put_i8(2);
    b.put_u32(0); // crc, patched below
    b.put_i16(0);
    b.put_i32(record_count - 1);
    b.put_i64(timestamp);
    b.put_i64(timestamp + record_count as i64 - 1);
    b.put_i64(-1); // producer id
    b.put_i16(-1);
    b.put_i32(-1);
    b.put_i32(record_count);
    b.put_slice(payload);
    let crc = crc32c::crc32c(&b[CRC_START..]);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    b.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segment(batches: usize) -> Vec<u8> {
        let mut out = Vec::new();
        for i in 0..batches {
            let payload = vec![i as u8; 100 + i * 37 % 500];
            out.extend_from_slice(&test_batch(
                i as i64 * 10,
                10,
                1_000 + i as i64 * 100,
                &payload,
            ));
        }
        out
    }

    #[test]
    fn scanner_matches_whole_buffer_validation_for_any_split() {
        let seg = segment(40);
        let whole = validate_batches(&seg).unwrap().unwrap();
        assert_eq!(whole.batch_count, 40);
        assert_eq!(whole.complete_len, seg.len() as u64);
        assert_eq!(whole.last_offset, 399);
        for piece in [1, 7, 61, 62, 1000, seg.len()] {
            let mut scanner = BatchScanner::new(1024);
            for chunk in seg.chunks(piece) {
                scanner.push(chunk).unwrap();
            }
            let (index, summary) = scanner.finish().unwrap();
            assert_eq!(summary.unwrap(), whole);
            assert!(index.entries.len() > 1 && index.entries.len() < 40);
            assert_eq!(RemoteIndex::decode(&index.encode()).unwrap(), index);
        }
    }

    #[test]
    fn every_bit_flip_in_a_crc_covered_byte_is_caught() {
        let seg = segment(2);
        let first = BatchHeader::parse(&seg, 0).unwrap().size() as usize;
        for byte in (CRC_START..first).step_by(3) {
            let mut bad = seg.clone();
            bad[byte] ^= 0x10;
            assert!(validate_batches(&bad).is_err(), "byte {byte}");
            let mut scanner = BatchScanner::new(4096);
            let pushed = scanner.push(&bad);
            assert!(pushed.is_err() || scanner.finish().is_err(), "byte {byte}");
        }
    }

    #[test]
    fn truncation_is_partial_for_validate_and_an_error_for_the_scanner() {
        let seg = segment(3);
        let cut = &seg[..seg.len() - 5];
        let summary = validate_batches(cut).unwrap().unwrap();
        assert_eq!(summary.batch_count, 2);
        let mut scanner = BatchScanner::new(4096);
        scanner.push(cut).unwrap();
        assert!(scanner.finish().is_err());
        assert_eq!(validate_batches(&seg[..10]).unwrap(), None);
    }

    #[test]
    fn index_lookups() {
        let index = RemoteIndex {
            entries: vec![
                IndexEntry {
                    offset: 0,
                    position: 0,
                    max_timestamp: 50,
                },
                IndexEntry {
                    offset: 100,
                    position: 4096,
                    max_timestamp: 40,
                },
                IndexEntry {
                    offset: 200,
                    position: 8192,
                    max_timestamp: 90,
                },
            ],
        };
        assert_eq!(index.position_for(0), 0);
        assert_eq!(index.position_for(99), 0);
        assert_eq!(index.position_for(100), 4096);
        assert_eq!(index.position_for(10_000), 8192);
        assert_eq!(index.span_for_timestamp(45), Some((0, Some(4096))));
        assert_eq!(index.span_for_timestamp(60), Some((8192, None)));
        assert_eq!(index.span_for_timestamp(91), None);
        let mut bytes = index.encode().to_vec();
        bytes[20] ^= 1;
        assert!(RemoteIndex::decode(&bytes).is_err());
    }
}
