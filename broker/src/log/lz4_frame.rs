//! LZ4 frame decoding straight into a capped output buffer.
//!
//! lz4_flex's `FrameDecoder` decodes through block buffers of its own: up to
//! 12 MiB for a frame of linked 4 MiB blocks, and a second frame with another
//! block mode grows them while the old ones are still held, so a 20-byte
//! input could make it hold 16 MiB (found by the `decompress` fuzz target).
//! Here each block is decoded directly into the output, with the frame's
//! previous 64 KiB of output as the dictionary of linked blocks: no memory
//! beyond the output itself, and one copy less.
//!
//! Frame format: <https://github.com/lz4/lz4/blob/dev/doc/lz4_Frame_format.md>
//! (magic, FLG, BD, optional content size, header checksum, blocks with
//! optional checksums, end mark, optional content checksum; skippable frames
//! are skipped; dictionary ids are refused).

use std::io;

use lz4_flex::block::DecompressError;
use twox_hash::XxHash32;

const MAGIC: u32 = 0x184D_2204;
/// Skippable frames use the magics 0x184D2A50 to 0x184D2A5F.
const SKIPPABLE: u32 = 0x184D_2A50;
const SKIPPABLE_MASK: u32 = 0xFFFF_FFF0;
/// How far back an LZ4 match can reach.
const WINDOW: usize = 64 * 1024;

/// Decodes every frame of `input`. `Ok(None)` when the output would exceed
/// `cap` bytes; the output buffer never grows beyond `cap`.
pub(super) fn decompress(input: &[u8], cap: usize) -> io::Result<Option<Vec<u8>>> {
    let mut out = Output {
        buf: Vec::new(),
        filled: 0,
        cap,
    };
    let mut rest = input;
    while !rest.is_empty() {
        let magic = take_u32(&mut rest, "frame magic number")?;
        if magic & SKIPPABLE_MASK == SKIPPABLE {
            let len = take_u32(&mut rest, "skippable frame size")?;
            take(&mut rest, len as usize, "skippable frame")?;
            continue;
        }
        if magic != MAGIC {
            return Err(invalid(format!(
                "not an lz4 frame: magic number {magic:#010x}"
            )));
        }
        if !frame(&mut rest, &mut out)? {
            return Ok(None);
        }
    }
    let Output {
        mut buf, filled, ..
    } = out;
    buf.truncate(filled);
    Ok(Some(buf))
}

/// The output: `buf[..filled]` is decoded data; `buf[filled..]` is zeroed
/// space kept from earlier blocks, so a block's room is zeroed at most once.
struct Output {
    buf: Vec<u8>,
    filled: usize,
    cap: usize,
}

impl Output {
    /// Makes `buf[filled..filled + want]` available (`want` at most what the
    /// cap leaves), growing geometrically but never past the cap.
    fn room(&mut self, want: usize) {
        let need = self.filled + want;
        if need > self.buf.len() {
            let grown = need.max(self.buf.len().saturating_mul(2)).min(self.cap);
            self.buf.reserve_exact(grown - self.buf.len());
            self.buf.resize(grown, 0);
        }
    }

    fn left(&self) -> usize {
        self.cap - self.filled
    }
}

/// Decodes one frame after its magic number. `Ok(false)` when the output
/// would exceed the cap.
fn frame(rest: &mut &[u8], out: &mut Output) -> io::Result<bool> {
    let descriptor = *rest;
    let flg = take_u8(rest, "frame descriptor")?;
    let bd = take_u8(rest, "frame descriptor")?;
    let version = flg >> 6;
    if version != 1 {
        return Err(invalid(format!("lz4 frame version {version}, expected 1")));
    }
    if flg & 0b10 != 0 || bd & 0x8F != 0 {
        return Err(invalid(format!(
            "lz4 frame descriptor has reserved bits set (FLG {flg:#04x}, BD {bd:#04x})"
        )));
    }
    if flg & 0b1 != 0 {
        return Err(invalid(
            "lz4 frame names a dictionary; dictionaries are not supported".to_owned(),
        ));
    }
    let independent = flg & 0x20 != 0;
    let block_checksums = flg & 0x10 != 0;
    let has_content_size = flg & 0x08 != 0;
    let content_checksum = flg & 0x04 != 0;
    let block_max = match (bd >> 4) & 0x07 {
        4 => 64 << 10,
        5 => 256 << 10,
        6 => 1 << 20,
        7 => 4 << 20,
        id => return Err(invalid(format!("lz4 block size id {id} (valid: 4-7)"))),
    };
    let content_size = if has_content_size {
        let bytes = take(rest, 8, "frame content size")?;
        let mut le = [0u8; 8];
        le.copy_from_slice(bytes);
        Some(u64::from_le_bytes(le))
    } else {
        None
    };
    let descriptor_len = if has_content_size { 10 } else { 2 };
    let header_checksum = take_u8(rest, "frame header checksum")?;
    let expected = (XxHash32::oneshot(0, &descriptor[..descriptor_len]) >> 8) as u8;
    if header_checksum != expected {
        return Err(invalid(format!(
            "lz4 frame header checksum {header_checksum:#04x}, computed {expected:#04x}"
        )));
    }
    if let Some(size) = content_size
        && size > out.left() as u64
    {
        return Ok(false);
    }

    let frame_start = out.filled;
    loop {
        let word = take_u32(rest, "block size")?;
        if word == 0 {
            break;
        }
        let stored = word & 0x8000_0000 != 0;
        let len = (word & 0x7FFF_FFFF) as usize;
        if len > block_max {
            return Err(invalid(format!(
                "lz4 block of {len} bytes in a frame of {block_max}-byte blocks"
            )));
        }
        let block = take(rest, len, "block")?;
        if block_checksums {
            let declared = take_u32(rest, "block checksum")?;
            let computed = XxHash32::oneshot(0, block);
            if declared != computed {
                return Err(invalid(format!(
                    "lz4 block checksum {declared:#010x}, computed {computed:#010x}"
                )));
            }
        }
        if stored {
            if len > out.left() {
                return Ok(false);
            }
            out.room(len);
            out.buf[out.filled..out.filled + len].copy_from_slice(block);
            out.filled += len;
            continue;
        }
        let want = block_max.min(out.left());
        out.room(want);
        let start = out.filled;
        let dict_start = if independent {
            start
        } else {
            start.saturating_sub(WINDOW).max(frame_start)
        };
        let (head, tail) = out.buf.split_at_mut(start);
        let result = lz4_flex::block::decompress_into_with_dict(
            block,
            &mut tail[..want],
            &head[dict_start..],
        );
        match result {
            Ok(n) => out.filled += n,
            // The room was cut short by the cap, not by the block size: the
            // block's output does not fit under the cap.
            Err(DecompressError::OutputTooSmall { .. }) if want < block_max => return Ok(false),
            Err(e) => return Err(invalid(format!("lz4 block: {e}"))),
        }
    }
    let produced = &out.buf[frame_start..out.filled];
    if content_checksum {
        let declared = take_u32(rest, "content checksum")?;
        let computed = XxHash32::oneshot(0, produced);
        if declared != computed {
            return Err(invalid(format!(
                "lz4 content checksum {declared:#010x}, computed {computed:#010x}"
            )));
        }
    }
    if let Some(size) = content_size
        && size != produced.len() as u64
    {
        return Err(invalid(format!(
            "lz4 frame declares {size} bytes of content, its blocks hold {}",
            produced.len()
        )));
    }
    Ok(true)
}

fn take<'a>(rest: &mut &'a [u8], len: usize, what: &str) -> io::Result<&'a [u8]> {
    if rest.len() < len {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!(
                "lz4 frame cut short: {what} needs {len} bytes, {} remain",
                rest.len()
            ),
        ));
    }
    let (head, tail) = rest.split_at(len);
    *rest = tail;
    Ok(head)
}

fn take_u8(rest: &mut &[u8], what: &str) -> io::Result<u8> {
    Ok(take(rest, 1, what)?[0])
}

fn take_u32(rest: &mut &[u8], what: &str) -> io::Result<u32> {
    let bytes = take(rest, 4, what)?;
    Ok(u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use lz4_flex::frame::{BlockMode, BlockSize, FrameEncoder, FrameInfo};

    use super::*;

    fn encode(data: &[u8], info: FrameInfo) -> Vec<u8> {
        let mut encoder = FrameEncoder::with_frame_info(info, Vec::new());
        encoder.write_all(data).unwrap();
        encoder.finish().unwrap()
    }

    /// Compressible, but with matches reaching back across block boundaries.
    fn sample(len: usize) -> Vec<u8> {
        let mut state = 0x9E37_79B9u32;
        let words: Vec<u8> = (0..4096)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                b"abcdefghij"[(state % 10) as usize]
            })
            .collect();
        words.iter().copied().cycle().take(len).collect()
    }

    fn all_frame_shapes() -> Vec<FrameInfo> {
        let mut shapes = Vec::new();
        for size in [BlockSize::Max64KB, BlockSize::Max256KB, BlockSize::Max4MB] {
            for mode in [BlockMode::Independent, BlockMode::Linked] {
                for checksums in [false, true] {
                    shapes.push(
                        FrameInfo::new()
                            .block_size(size)
                            .block_mode(mode)
                            .block_checksums(checksums)
                            .content_checksum(checksums),
                    );
                }
            }
        }
        shapes
    }

    #[test]
    fn decodes_what_lz4_flex_encodes_in_every_frame_shape() {
        let data = sample(700_000);
        for info in all_frame_shapes() {
            let packed = encode(&data, info.clone());
            assert_eq!(
                decompress(&packed, data.len()).unwrap().unwrap(),
                data,
                "{info:?}"
            );
            assert!(
                decompress(&packed, data.len() - 1).unwrap().is_none(),
                "{info:?}"
            );
        }
    }

    #[test]
    fn content_size_is_checked_and_used_to_refuse_early() {
        let data = sample(100_000);
        let mut info = FrameInfo::new();
        info.content_size = Some(data.len() as u64);
        let packed = encode(&data, info);
        assert_eq!(decompress(&packed, data.len()).unwrap().unwrap(), data);
        assert!(decompress(&packed, 10).unwrap().is_none());
    }

    #[test]
    fn concatenated_and_skippable_frames() {
        let a = sample(90_000);
        let b = b"second frame".repeat(1000);
        let mut input = encode(&a, FrameInfo::new().block_mode(BlockMode::Linked));
        input.extend_from_slice(&(SKIPPABLE + 3).to_le_bytes());
        input.extend_from_slice(&5u32.to_le_bytes());
        input.extend_from_slice(b"hello");
        input.extend_from_slice(&encode(&b, FrameInfo::new()));
        let out = decompress(&input, 1 << 20).unwrap().unwrap();
        assert_eq!(out.len(), a.len() + b.len());
        assert_eq!(&out[..a.len()], &a[..]);
        assert_eq!(&out[a.len()..], &b[..]);
    }

    #[test]
    fn empty_input_is_empty_output() {
        assert_eq!(decompress(b"", 0).unwrap().unwrap(), Vec::<u8>::new());
    }

    #[test]
    fn damage_is_an_error_never_other_bytes() {
        let data = sample(200_000);
        let info = FrameInfo::new()
            .block_mode(BlockMode::Linked)
            .content_checksum(true);
        let packed = encode(&data, info);
        for at in (0..packed.len()).step_by(97) {
            let mut bad = packed.clone();
            bad[at] ^= 0x20;
            if let Ok(Some(out)) = decompress(&bad, 1 << 20) {
                panic!("flipping byte {at} decoded {} bytes", out.len());
            }
        }
        for cut in [1, 4, 6, 7, packed.len() / 2, packed.len() - 1] {
            assert!(decompress(&packed[..cut], 1 << 20).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn large_block_headers_cost_no_memory_beyond_the_output() {
        // Two empty frames declaring 4 MiB blocks, independent then linked:
        // what made lz4_flex's FrameDecoder hold 16 MiB.
        let mut input = Vec::new();
        for info in [
            FrameInfo::new().block_size(BlockSize::Max4MB),
            FrameInfo::new()
                .block_size(BlockSize::Max4MB)
                .block_mode(BlockMode::Linked),
        ] {
            input.extend_from_slice(&encode(b"", info));
        }
        let out = decompress(&input, 1024).unwrap().unwrap();
        assert!(out.is_empty());
        assert_eq!(out.capacity(), 0);
    }
}
