//! The chunk file: layout, writing with direct I/O, reading a range back
//! and checking it.
//!
//! `<fnv64(key, chunk):016x>.chunk` = header (`b"FLC3"`, key length `u16`,
//! key, chunk index `u64`, data length `u64`, block size `u32`, one CRC32C
//! `u32` per [`BLOCK_SIZE`] block of the data, a CRC32C `u32` of the header
//! bytes before it), zeros up to the next [`ALIGN`] boundary, the data.

use std::io::{Read, Seek, SeekFrom, Write};
use std::ops::Range;
use std::path::Path;

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::buffers::{ALIGN, ChunkBuffer, ChunkBuffers};
use crate::error::{Error, Result};

const CHUNK_MAGIC: &[u8; 4] = b"FLC3";

/// Bytes covered by one CRC in a chunk file: a range read checks (and
/// reads) the whole blocks holding it.
pub const BLOCK_SIZE: u64 = 64 << 10;

pub(super) fn file_name(key: &str, chunk: u64) -> String {
    // FNV-1a, 64 bit: a stable spread of names; the header check makes a
    // collision a miss, never a wrong answer.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in key.as_bytes().iter().chain(&chunk.to_be_bytes()) {
        hash ^= *byte as u64;
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{hash:016x}.chunk")
}

pub(super) fn block_count(data_len: u64) -> u64 {
    data_len.div_ceil(BLOCK_SIZE)
}

/// Bytes of the header, CRC table and header CRC included.
pub(super) fn header_len(key_len: usize, data_len: u64) -> u64 {
    (4 + 2 + key_len + 8 + 8 + 4 + 4) as u64 + 4 * block_count(data_len)
}

/// Where the data starts: after the header, padded to [`ALIGN`] so that
/// the data can be written with direct I/O.
pub(super) fn data_offset(key_len: usize, data_len: u64) -> u64 {
    header_len(key_len, data_len).next_multiple_of(ALIGN as u64)
}

pub(super) fn chunk_file_len(key: &str, data_len: usize) -> u64 {
    data_offset(key.len(), data_len as u64) + data_len as u64
}

/// The header and its padding, in an aligned buffer.
pub(super) fn chunk_header(key: &str, chunk: u64, data: &[u8]) -> Bytes {
    let data_len = data.len() as u64;
    let mut header = BytesMut::with_capacity(header_len(key.len(), data_len) as usize);
    header.put_slice(CHUNK_MAGIC);
    header.put_u16(key.len() as u16);
    header.put_slice(key.as_bytes());
    header.put_u64(chunk);
    header.put_u64(data_len);
    header.put_u32(BLOCK_SIZE as u32);
    for block in data.chunks(BLOCK_SIZE as usize) {
        header.put_u32(crc32c::crc32c(block));
    }
    let crc = crc32c::crc32c(&header);
    header.put_u32(crc);
    debug_assert_eq!(header.len() as u64, header_len(key.len(), data_len));
    let padded = data_offset(key.len(), data_len) as usize;
    let mut out = ChunkBuffer::unpooled(padded);
    let zeros = [0u8; ALIGN];
    let filled = out.extend(&header) && out.extend(&zeros[..padded - header.len()]);
    debug_assert!(filled);
    out.freeze()
}

/// Writes a chunk file: with direct I/O when `direct` is set, the data is
/// page-aligned (a [`ChunkBuffers`](crate::buffers::ChunkBuffers) chunk) and
/// the filesystem takes it, so caching a chunk neither copies it into the
/// page cache nor pushes the log's hot pages out of it; buffered otherwise.
pub(super) fn write_chunk_file(
    tmp: &Path,
    key: &str,
    chunk: u64,
    data: &[u8],
    direct: bool,
) -> Result<()> {
    let header = chunk_header(key, chunk, data);
    let io = |source| Error::Io {
        path: tmp.to_owned(),
        source,
    };
    if direct && data.as_ptr().align_offset(ALIGN) == 0 {
        match write_direct(tmp, &header, data) {
            Ok(()) => return Ok(()),
            // Direct I/O not supported here (tmpfs, some overlays): buffered.
            Err(e) if e.raw_os_error() == Some(rustix::io::Errno::INVAL.raw_os_error()) => {}
            Err(e) => return Err(io(e)),
        }
    }
    let mut file = std::fs::File::create(tmp).map_err(io)?;
    file.write_all(&header)
        .and_then(|()| file.write_all(data))
        .map_err(io)
}

pub(super) fn write_direct(tmp: &Path, header: &[u8], data: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::{FileExt, OpenOptionsExt};
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .custom_flags(rustix::fs::OFlags::DIRECT.bits() as i32)
        .open(tmp)?;
    let at = header.len() as u64;
    let whole = data.len() / ALIGN * ALIGN;
    file.write_all_at(header, 0)?;
    file.write_all_at(&data[..whole], at)?;
    if whole < data.len() {
        // The last partial block goes out padded, then the padding is cut.
        let mut tail = ChunkBuffer::unpooled(ALIGN);
        let zeros = [0u8; ALIGN];
        let rest = &data[whole..];
        let filled = tail.extend(rest) && tail.extend(&zeros[rest.len()..]);
        debug_assert!(filled);
        file.write_all_at(tail.as_ref(), at + whole as u64)?;
        file.set_len(at + data.len() as u64)?;
    }
    Ok(())
}

/// Reads exactly `len` bytes at the file's position into a fresh buffer.
pub(super) fn read_exact_vec(file: &mut std::fs::File, len: u64) -> Option<Vec<u8>> {
    let mut buf = Vec::with_capacity(usize::try_from(len).ok()?);
    file.take(len).read_to_end(&mut buf).ok()?;
    (buf.len() as u64 == len).then_some(buf)
}

/// The data of a chunk file (all of it, or `range` of it when the chunk is
/// `len` bytes long) if the file is whole, is the chunk asked for and every
/// block read matches its CRC. The header is read through the page cache,
/// the data with direct I/O when `direct` is set and the filesystem allows
/// (no page-cache copy, no page cache filled with chunks the memory tier
/// serves), else through the page cache too.
pub(super) fn read_chunk_file(
    path: &Path,
    key: &str,
    chunk: u64,
    want: Option<(u64, Range<u64>)>,
    buffers: Option<&ChunkBuffers>,
    direct: bool,
) -> Option<Bytes> {
    let mut file = std::fs::File::open(path).ok()?;
    let file_len = file.metadata().ok()?.len();
    let fixed = 4 + 2 + key.len() + 8 + 8 + 4;
    if file_len < fixed as u64 + 4 {
        return None;
    }
    let head = read_exact_vec(&mut file, fixed as u64)?;
    let mut b = &head[..];
    if &b[..4] != CHUNK_MAGIC {
        return None;
    }
    b.advance(4);
    if b.get_u16() as usize != key.len() || &b[..key.len()] != key.as_bytes() {
        return None;
    }
    b.advance(key.len());
    let stored_chunk = b.get_u64();
    let len = b.get_u64();
    let block_size = b.get_u32() as u64;
    if stored_chunk != chunk
        || block_size != BLOCK_SIZE
        || file_len.checked_sub(len) != Some(data_offset(key.len(), len))
    {
        return None;
    }
    let range = match want {
        Some((expected, range)) if expected == len && range.end <= len => range,
        Some(_) => return None,
        None => 0..len,
    };
    let blocks = block_count(len);
    let table = read_exact_vec(&mut file, 4 * blocks + 4)?;
    let (crcs, header_crc) = table.split_at(table.len() - 4);
    let computed = crc32c::crc32c_append(crc32c::crc32c(&head), crcs);
    if computed.to_be_bytes() != header_crc {
        return None;
    }
    if range.is_empty() {
        return Some(Bytes::new());
    }
    let first = range.start / BLOCK_SIZE;
    let last = (range.end - 1) / BLOCK_SIZE;
    let from = first * BLOCK_SIZE;
    let to = ((last + 1) * BLOCK_SIZE).min(len);
    let at = data_offset(key.len(), len) + from;
    let data = match direct
        .then(|| read_direct(path, at, to - from, buffers))
        .flatten()
    {
        Some(data) => data,
        None => {
            file.seek(SeekFrom::Start(at)).ok()?;
            Bytes::from(read_exact_vec(&mut file, to - from)?)
        }
    };
    if data.len() as u64 != to - from {
        return None;
    }
    for (i, block) in data.chunks(BLOCK_SIZE as usize).enumerate() {
        let at = (first as usize + i) * 4;
        if crc32c::crc32c(block).to_be_bytes() != crcs[at..at + 4] {
            return None;
        }
    }
    Some(data.slice((range.start - from) as usize..(range.end - from) as usize))
}

/// `len` bytes at `at` (a multiple of [`ALIGN`]) read with direct I/O into
/// an aligned buffer (one of `buffers` for more than 1 MiB); `None` when
/// the filesystem has no direct I/O or the read fails (the caller then
/// reads through the page cache, which reports real errors).
pub(super) fn read_direct(
    path: &Path,
    at: u64,
    len: u64,
    buffers: Option<&ChunkBuffers>,
) -> Option<Bytes> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::DIRECT.bits() as i32)
        .open(path)
        .ok()?;
    let len = usize::try_from(len).ok()?;
    let whole = len.next_multiple_of(ALIGN);
    let mut buffer = match buffers {
        Some(pool) if len > 1 << 20 && whole <= pool.buffer_len() => pool.take(whole),
        _ => ChunkBuffer::unpooled(whole),
    };
    let read = buffer.read_at(&file, at, whole).ok()?;
    // Past the end of the data only where the file ends.
    (read >= len).then(|| buffer.freeze().slice(..len))
}
