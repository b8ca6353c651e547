//! Record batches: fix-ups that let mutated bytes get past the CRC and the
//! codec, and the invariants of `validate`, `validate_produce` and
//! `BatchIter`.
//!
//! Random bytes almost never carry a correct CRC32C, and mutated compressed
//! bytes almost never decompress, so without help the fuzzer would only ever
//! exercise the first checks. The first input byte chooses fix-ups
//! ([`Fixups`]) applied before validation: set the batch length, compress the
//! records section with the header's codec, recompute the CRC.

use broker::log::batch::{self, BatchIter, BatchLimits, HEADER_LEN, LOG_OVERHEAD};
use broker::log::compression::{self, Compression};

/// Which fix-ups to apply, from the first input byte.
#[derive(Debug, Clone, Copy)]
pub struct Fixups {
    /// Compress bytes 61.. with the codec of the attributes (if known).
    pub compress: bool,
    /// Set `batch_length` to the bytes present.
    pub length: bool,
    /// Recompute the CRC32C over the declared batch.
    pub crc: bool,
    /// Validate the batch twice in a row as one produce request.
    pub twice: bool,
}

impl Fixups {
    pub fn from_byte(b: u8) -> Fixups {
        Fixups {
            compress: b & 1 != 0,
            length: b & 2 != 0,
            crc: b & 4 != 0,
            twice: b & 8 != 0,
        }
    }

    pub fn to_byte(self) -> u8 {
        u8::from(self.compress)
            | u8::from(self.length) << 1
            | u8::from(self.crc) << 2
            | u8::from(self.twice) << 3
    }

    /// Applies the fix-ups to one batch.
    pub fn apply(self, mut bytes: Vec<u8>) -> Vec<u8> {
        if bytes.len() < HEADER_LEN {
            return bytes;
        }
        if self.compress {
            let attributes = i16::from_be_bytes([bytes[21], bytes[22]]);
            if let Ok(codec) = Compression::from_attributes(attributes)
                && codec != Compression::None
                && let Ok(section) = compression::compress(codec, &bytes[HEADER_LEN..])
            {
                bytes.truncate(HEADER_LEN);
                bytes.extend_from_slice(&section);
            }
        }
        if self.length
            && let Ok(length) = i32::try_from(bytes.len() - LOG_OVERHEAD)
        {
            bytes[8..12].copy_from_slice(&length.to_be_bytes());
        }
        if self.crc {
            let declared = i32::from_be_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
            let end = usize::try_from(declared)
                .ok()
                .and_then(|d| d.checked_add(LOG_OVERHEAD))
                .filter(|&end| end >= HEADER_LEN && end <= bytes.len());
            if let Some(end) = end {
                let crc = crc32c(&bytes[21..end]);
                bytes[17..21].copy_from_slice(&crc.to_be_bytes());
            }
        }
        bytes
    }
}

/// CRC32C (Castagnoli), bitwise: independent of the crate the broker uses.
pub fn crc32c(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0x82f6_3b78
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// Small limits, so that size checks and the decompression cap are reached.
pub const LIMITS: BatchLimits = BatchLimits {
    max_batch_bytes: 256 << 10,
    max_decompressed_bytes: 128 << 10,
};

/// Memory one validation may use beyond its input: the decompressed
/// section (at most the cap), the copy `validate_produce` makes, and the
/// decoders' fixed working memory (lz4 block buffers up to 2 x 4 MiB).
pub const VALIDATE_ALLOC_SLACK: usize = 16 << 20;

/// Runs `validate`, `validate_produce` and `BatchIter` on `records` and
/// checks that they agree with each other.
pub fn check_records(records: &[u8]) {
    let baseline = crate::alloc::start();
    let iterated: Vec<_> = BatchIter::new(records).collect();
    let validated = batch::validate(records, &LIMITS);
    let produced = batch::validate_produce(records, &LIMITS);
    let peak = crate::alloc::peak_since(baseline);
    let bound = 2 * records.len() + LIMITS.max_decompressed_bytes + VALIDATE_ALLOC_SLACK;
    assert!(
        peak <= bound,
        "validating {} bytes allocated {peak} bytes (bound {bound})",
        records.len()
    );

    // BatchIter: consecutive, within the buffer, stops after the first error.
    let mut at = 0usize;
    for (i, item) in iterated.iter().enumerate() {
        match item {
            Ok(h) => {
                assert!(h.batch_length >= batch::MIN_BATCH_LENGTH);
                at += h.size();
                assert!(at <= records.len(), "BatchIter went past the end");
            }
            Err(_) => assert_eq!(i, iterated.len() - 1, "BatchIter yielded after an error"),
        }
    }

    if let Ok(header) = &validated {
        // A valid batch is exactly one batch, fully verified.
        assert_eq!(header.size(), records.len());
        assert!(header.records_count > 0);
        assert_eq!(
            i64::from(header.last_offset_delta),
            i64::from(header.records_count) - 1
        );
        assert_eq!(
            batch::verify(records).expect("validated implies verified"),
            *header
        );
        assert!(
            header.crc == crc32c(&records[21..]),
            "validated a batch whose CRC32C is wrong"
        );
        assert!(header.size() <= LIMITS.max_batch_bytes);
        assert!(matches!(iterated.as_slice(), [Ok(h)] if h == header));
        // Alone, it is a valid produce request.
        let p = produced
            .as_ref()
            .expect("a valid batch is a valid produce request");
        assert_eq!(p.batches().len(), 1);
    }

    match &produced {
        Ok(p) => {
            assert_eq!(p.len(), records.len());
            let mut next = 0usize;
            for (b, it) in p.batches().iter().zip(&iterated) {
                assert_eq!(b.range.start, next, "produce batches are not contiguous");
                next = b.range.end;
                assert_eq!(it.as_ref().ok(), Some(&b.header), "BatchIter disagrees");
                let again = batch::validate(&records[b.range.clone()], &LIMITS)
                    .expect("each batch of a valid produce request is valid");
                assert_eq!(again, b.header);
            }
            assert_eq!(
                next,
                records.len(),
                "produce batches do not cover the records"
            );
            assert_eq!(p.batches().len(), iterated.len());
            if p.batches().len() == 1 {
                assert!(validated.is_ok(), "valid as produce, invalid as a batch");
            }
        }
        Err(_) => assert!(validated.is_err(), "valid as a batch, invalid as produce"),
    }
}
