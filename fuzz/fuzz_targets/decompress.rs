//! Decompression of a records section: byte 0 picks the codec, bytes 1-2
//! the output cap (0 to 512 KiB in steps of 8 bytes), the rest is the input.
//!
//! Invariants: the output never exceeds the cap, and neither does the memory
//! allocated for it (plus the codecs' fixed working memory); an output that
//! fits is also accepted with the cap set to its exact length; "too large"
//! names the cap it was given. The input itself, compressed with the codec,
//! decompresses back to itself at exactly its length and is refused one byte
//! below.

#![no_main]

use broker::log::LogError;
use broker::log::compression::{Compression, compress, decompress};
use floe_fuzz::alloc;
use libfuzzer_sys::fuzz_target;

const CODECS: [Compression; 5] = [
    Compression::None,
    Compression::Gzip,
    Compression::Snappy,
    Compression::Lz4,
    Compression::Zstd,
];

/// The decoders' own buffers: flate2 and snappy state (LZ4 blocks are
/// decoded straight into the output, see `log/lz4_frame.rs`; zstd's window
/// is C memory, bounded by `window_log_max`). Independent of the input.
const WORKING_MEMORY: usize = 16 << 20;

fuzz_target!(|data: &[u8]| {
    let [codec, cap_lo, cap_hi, input @ ..] = data else {
        return;
    };
    let codec = CODECS[usize::from(*codec) % CODECS.len()];
    let cap = usize::from(u16::from_le_bytes([*cap_lo, *cap_hi])) * 8;

    let baseline = alloc::start();
    let out = decompress(codec, input, cap);
    let peak = alloc::peak_since(baseline);
    assert!(
        peak <= cap + WORKING_MEMORY,
        "{codec}: decompressing {} bytes with cap {cap} allocated {peak} bytes",
        input.len()
    );
    match &out {
        Ok(bytes) => {
            assert!(
                bytes.len() <= cap,
                "{codec}: {} bytes out, cap {cap}",
                bytes.len()
            );
            match decompress(codec, input, bytes.len()) {
                Ok(again) => assert!(again == *bytes, "{codec}: output depends on the cap"),
                Err(e) => panic!(
                    "{codec}: {} bytes fit cap {cap} but not cap {}: {e}",
                    bytes.len(),
                    bytes.len()
                ),
            }
        }
        Err(LogError::DecompressedTooLarge {
            codec: c,
            cap: reported,
        }) => {
            assert_eq!((*c, *reported), (codec, cap));
        }
        Err(LogError::Decompression { codec: c, .. }) => assert_eq!(*c, codec),
        Err(other) => panic!("{codec}: unexpected error {other:?}"),
    }

    let packed = compress(codec, input).expect("compression of any bytes works");
    match decompress(codec, &packed, input.len()) {
        Ok(unpacked) => assert!(unpacked == input, "{codec}: round trip changed the bytes"),
        Err(e) => panic!("{codec}: round trip of {} bytes failed: {e}", input.len()),
    }
    if !input.is_empty() {
        let below = decompress(codec, &packed, input.len() - 1);
        assert!(
            matches!(below, Err(LogError::DecompressedTooLarge { .. })),
            "{codec}: {} bytes accepted under cap {}: {below:?}",
            input.len(),
            input.len() - 1
        );
    }
});
