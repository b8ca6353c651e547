//! Record batch compression codecs, with a hard cap on decompressed output.
//!
//! Decompression never allocates more than the cap for its output: gzip and
//! zstd are read through `read_capped`, LZ4 blocks are decoded straight into
//! the capped output (`lz4_frame`), and snappy's declared lengths are checked
//! before a buffer is made. The decoders' own working memory is bounded
//! independently of the input (the zstd window at most 128 MiB, see
//! `zstd_window_log`; LZ4 needs none).

use std::fmt;
use std::io::{self, Read, Write};

use super::error::LogError;

/// The compression codec of a record batch (attribute bits 0-2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Compression {
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

impl Compression {
    /// The codec named by the low three attribute bits.
    pub fn from_attributes(attributes: i16) -> Result<Compression, LogError> {
        let codec = (attributes & 0x07) as u8;
        match codec {
            0 => Ok(Compression::None),
            1 => Ok(Compression::Gzip),
            2 => Ok(Compression::Snappy),
            3 => Ok(Compression::Lz4),
            4 => Ok(Compression::Zstd),
            _ => Err(LogError::UnknownCompression { codec }),
        }
    }

    /// The attribute bits for this codec.
    pub fn attribute_bits(self) -> i16 {
        match self {
            Compression::None => 0,
            Compression::Gzip => 1,
            Compression::Snappy => 2,
            Compression::Lz4 => 3,
            Compression::Zstd => 4,
        }
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Compression::None => "uncompressed",
            Compression::Gzip => "gzip",
            Compression::Snappy => "snappy",
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
        };
        f.write_str(name)
    }
}

/// The 8-byte magic that starts snappy-java's (xerial) framing, used by the
/// Java client.
const XERIAL_MAGIC: &[u8; 8] = b"\x82SNAPPY\0";
/// Magic, version and minimum compatible version.
const XERIAL_HEADER_LEN: usize = 16;
/// Largest output snappy-java writes per block; a raw block is capped anyway.
const XERIAL_BLOCK_SIZE: usize = 32 * 1024;

/// Decompresses a records section, failing with
/// [`LogError::DecompressedTooLarge`] as soon as the output would exceed
/// `cap` bytes.
pub fn decompress(codec: Compression, input: &[u8], cap: usize) -> Result<Vec<u8>, LogError> {
    let fail = |source: io::Error| LogError::Decompression { codec, source };
    let out = match codec {
        Compression::None => {
            if input.len() > cap {
                return Err(LogError::DecompressedTooLarge { codec, cap });
            }
            Ok(Some(input.to_vec()))
        }
        Compression::Gzip => read_capped(flate2::read::MultiGzDecoder::new(input), cap),
        Compression::Snappy => return snappy_decompress(input, cap),
        Compression::Lz4 => super::lz4_frame::decompress(input, cap),
        Compression::Zstd => {
            let mut decoder = zstd::stream::read::Decoder::new(input).map_err(fail)?;
            decoder.window_log_max(zstd_window_log(cap)).map_err(fail)?;
            read_capped(decoder, cap)
        }
    };
    match out {
        Ok(Some(bytes)) => Ok(bytes),
        Ok(None) => Err(LogError::DecompressedTooLarge { codec, cap }),
        Err(source) => Err(fail(source)),
    }
}

/// Compresses a records section. Snappy uses the xerial framing the Java
/// client writes, which every Kafka client reads.
pub fn compress(codec: Compression, input: &[u8]) -> Result<Vec<u8>, LogError> {
    let fail = |source: io::Error| LogError::CompressionFailed { codec, source };
    match codec {
        Compression::None => Ok(input.to_vec()),
        Compression::Gzip => {
            let mut encoder =
                flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            encoder.write_all(input).map_err(fail)?;
            encoder.finish().map_err(fail)
        }
        Compression::Snappy => {
            let mut out = Vec::with_capacity(XERIAL_HEADER_LEN + input.len() / 2);
            out.extend_from_slice(XERIAL_MAGIC);
            out.extend_from_slice(&1i32.to_be_bytes());
            out.extend_from_slice(&1i32.to_be_bytes());
            let mut encoder = snap::raw::Encoder::new();
            for chunk in input.chunks(XERIAL_BLOCK_SIZE) {
                let block = encoder
                    .compress_vec(chunk)
                    .map_err(|e| fail(io::Error::other(e)))?;
                let len = i32::try_from(block.len()).map_err(|e| fail(io::Error::other(e)))?;
                out.extend_from_slice(&len.to_be_bytes());
                out.extend_from_slice(&block);
            }
            Ok(out)
        }
        Compression::Lz4 => {
            let mut encoder = lz4_flex::frame::FrameEncoder::new(Vec::new());
            encoder.write_all(input).map_err(fail)?;
            encoder.finish().map_err(|e| fail(io::Error::other(e)))
        }
        Compression::Zstd => zstd::stream::encode_all(input, 3).map_err(fail),
    }
}

/// Reads `reader` to its end into a buffer that never grows beyond `cap`
/// bytes. `Ok(None)` when there is more than `cap` bytes of output.
fn read_capped(mut reader: impl Read, cap: usize) -> io::Result<Option<Vec<u8>>> {
    const INITIAL: usize = 16 * 1024;
    let mut out: Vec<u8> = Vec::new();
    out.reserve_exact(INITIAL.min(cap));
    let mut filled = 0usize;
    loop {
        if filled == out.len() {
            if out.len() == cap {
                // The buffer is full: one more byte of output means the cap is
                // exceeded.
                let mut probe = [0u8; 1];
                return match read_retrying(&mut reader, &mut probe)? {
                    0 => Ok(Some(out)),
                    _ => Ok(None),
                };
            }
            let grow_to = (out.len().max(INITIAL / 2) * 2).min(cap);
            out.reserve_exact(grow_to - out.len());
            out.resize(grow_to, 0);
        }
        let n = read_retrying(&mut reader, &mut out[filled..])?;
        if n == 0 {
            out.truncate(filled);
            return Ok(Some(out));
        }
        filled += n;
    }
}

fn read_retrying(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match reader.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

/// The zstd window limit: the cap rounded up to a power of two, but at least
/// 8 MiB (what levels up to 19 use: producers stream frames without a content
/// size, so their window is set by the level, not by the data) and at most
/// 128 MiB (zstd's own default limit). The window is the decoder's working
/// memory, fixed per frame, independent of how much the frame expands.
fn zstd_window_log(cap: usize) -> u32 {
    const MIN: u32 = 23;
    const MAX: u32 = 27;
    let log = usize::BITS - cap.saturating_sub(1).leading_zeros();
    log.clamp(MIN, MAX)
}

/// Snappy as Kafka clients send it: raw snappy (librdkafka, older clients),
/// or xerial framing (the Java client).
fn snappy_decompress(input: &[u8], cap: usize) -> Result<Vec<u8>, LogError> {
    let codec = Compression::Snappy;
    let fail = |reason: String| LogError::Decompression {
        codec,
        source: io::Error::new(io::ErrorKind::InvalidData, reason),
    };
    if input.len() >= XERIAL_HEADER_LEN && input.starts_with(XERIAL_MAGIC) {
        let mut out = Vec::new();
        let mut rest = &input[XERIAL_HEADER_LEN..];
        while !rest.is_empty() {
            if rest.len() < 4 {
                return Err(fail(format!(
                    "xerial block header cut at {} bytes",
                    rest.len()
                )));
            }
            let declared = i32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]);
            let len = usize::try_from(declared)
                .map_err(|_| fail(format!("xerial block length {declared}")))?;
            rest = &rest[4..];
            if len > rest.len() {
                return Err(fail(format!(
                    "xerial block of {len} bytes, {} remain",
                    rest.len()
                )));
            }
            let (block, tail) = rest.split_at(len);
            snappy_raw_into(block, cap, &mut out)?;
            rest = tail;
        }
        Ok(out)
    } else {
        let mut out = Vec::new();
        snappy_raw_into(input, cap, &mut out)?;
        Ok(out)
    }
}

/// Appends one raw snappy block to `out`, checking its declared length
/// against what the cap leaves before allocating.
fn snappy_raw_into(block: &[u8], cap: usize, out: &mut Vec<u8>) -> Result<(), LogError> {
    let codec = Compression::Snappy;
    let fail = |e: snap::Error| LogError::Decompression {
        codec,
        source: io::Error::new(io::ErrorKind::InvalidData, e),
    };
    let len = snap::raw::decompress_len(block).map_err(fail)?;
    if len > cap.saturating_sub(out.len()) {
        return Err(LogError::DecompressedTooLarge { codec, cap });
    }
    let start = out.len();
    out.reserve_exact(len);
    out.resize(start + len, 0);
    let written = snap::raw::Decoder::new()
        .decompress(block, &mut out[start..])
        .map_err(fail)?;
    out.truncate(start + written);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Compression; 5] = [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ];

    #[test]
    fn every_codec_round_trips() {
        let input: Vec<u8> = (0..100_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect();
        for codec in ALL {
            let packed = compress(codec, &input).unwrap();
            let unpacked = decompress(codec, &packed, input.len()).unwrap();
            assert_eq!(unpacked, input, "{codec}");
        }
    }

    #[test]
    fn raw_snappy_is_accepted() {
        let input = b"raw snappy as librdkafka sends it".repeat(50);
        let packed = snap::raw::Encoder::new().compress_vec(&input).unwrap();
        assert_eq!(
            decompress(Compression::Snappy, &packed, 1 << 20).unwrap(),
            input
        );
    }

    #[test]
    fn output_beyond_the_cap_is_refused() {
        let bomb = vec![0u8; 4 << 20];
        for codec in ALL {
            let packed = compress(codec, &bomb).unwrap();
            let err = decompress(codec, &packed, 1 << 20).unwrap_err();
            assert!(
                matches!(err, LogError::DecompressedTooLarge { cap, .. } if cap == 1 << 20),
                "{codec}: {err}"
            );
        }
    }

    #[test]
    fn output_exactly_at_the_cap_is_accepted() {
        let input = vec![7u8; 65_536];
        for codec in ALL {
            let packed = compress(codec, &input).unwrap();
            assert_eq!(decompress(codec, &packed, input.len()).unwrap(), input);
        }
    }

    #[test]
    fn garbage_is_a_decompression_error() {
        let garbage = b"\x82SNAPPY\0\0\0\0\x01\0\0\0\x01\x7f\xff\xff\xffxx";
        for codec in [
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            let err = decompress(codec, garbage, 1 << 20).unwrap_err();
            assert!(
                matches!(err, LogError::Decompression { .. }),
                "{codec}: {err}"
            );
        }
    }

    #[test]
    fn unknown_codec_bits_are_rejected() {
        for bits in 5..8 {
            assert!(matches!(
                Compression::from_attributes(bits),
                Err(LogError::UnknownCompression { codec }) if i16::from(codec) == bits
            ));
        }
    }
}
