//! Validation of produced batches, built with real encoders.

use proptest::prelude::*;

use super::*;
use crate::log::builder::{BatchBuilder, put_varint, put_varlong};

const LIMITS: BatchLimits = BatchLimits {
    max_batch_bytes: 8 << 20,
    max_decompressed_bytes: 1 << 20,
};

const CODECS: [Compression; 5] = [
    Compression::None,
    Compression::Gzip,
    Compression::Snappy,
    Compression::Lz4,
    Compression::Zstd,
];

fn batch(codec: Compression, records: usize) -> Vec<u8> {
    let mut builder = BatchBuilder::new(codec);
    for i in 0..records {
        let key = format!("key-{i}");
        let value = format!("value-{i}-{}", "x".repeat(i % 40));
        builder.push(
            1_000 + i as i64,
            Some(key.as_bytes()),
            Some(value.as_bytes()),
            &[(b"h", Some(b"v")), (b"n", None)],
        );
    }
    builder.build().unwrap()
}

/// Recomputes the CRC after a test edited covered bytes.
fn fix_crc(mut bytes: Vec<u8>) -> Vec<u8> {
    let crc = crc32c::crc32c(&bytes[21..]);
    bytes[17..21].copy_from_slice(&crc.to_be_bytes());
    bytes
}

/// A batch around hand-encoded record bodies, with any declared count.
fn raw_batch(codec: Compression, bodies: &[Vec<u8>], count: i32) -> Vec<u8> {
    let mut section = Vec::new();
    for body in bodies {
        put_varint(&mut section, body.len() as i32);
        section.extend_from_slice(body);
    }
    let template = BatchBuilder::new(codec);
    let mut one = template.clone();
    one.push(0, None, None, &[]);
    let mut out = one.build().unwrap()[..HEADER_LEN].to_vec();
    let packed = compression::compress(codec, &section).unwrap();
    out.extend_from_slice(&packed);
    let length = (out.len() - LOG_OVERHEAD) as i32;
    out[8..12].copy_from_slice(&length.to_be_bytes());
    out[23..27].copy_from_slice(&(count - 1).to_be_bytes());
    out[57..61].copy_from_slice(&count.to_be_bytes());
    fix_crc(out)
}

fn body(offset_delta: i32, value: &[u8]) -> Vec<u8> {
    let mut b = vec![0u8];
    put_varlong(&mut b, 0);
    put_varint(&mut b, offset_delta);
    put_varint(&mut b, -1);
    put_varint(&mut b, value.len() as i32);
    b.extend_from_slice(value);
    put_varint(&mut b, 0);
    b
}

#[test]
fn every_codec_is_accepted() {
    for codec in CODECS {
        let bytes = batch(codec, 25);
        let header = validate(&bytes, &LIMITS).unwrap_or_else(|e| panic!("{codec}: {e}"));
        assert_eq!(header.records_count, 25);
        assert_eq!(header.last_offset_delta, 24);
        assert_eq!(header.compression().unwrap(), codec);
        assert_eq!(header.base_timestamp, 1_000);
        assert_eq!(header.max_timestamp, 1_024);
        assert_eq!(header.size(), bytes.len());
    }
}

#[test]
fn raw_snappy_batches_are_accepted() {
    let bodies: Vec<_> = (0..3).map(|i| body(i, b"librdkafka")).collect();
    let mut section = Vec::new();
    for b in &bodies {
        put_varint(&mut section, b.len() as i32);
        section.extend_from_slice(b);
    }
    let mut bytes = raw_batch(Compression::None, &bodies, 3);
    bytes.truncate(HEADER_LEN);
    bytes.extend_from_slice(&snap::raw::Encoder::new().compress_vec(&section).unwrap());
    let length = (bytes.len() - LOG_OVERHEAD) as i32;
    bytes[8..12].copy_from_slice(&length.to_be_bytes());
    bytes[21..23].copy_from_slice(&2i16.to_be_bytes());
    let bytes = fix_crc(bytes);
    assert_eq!(validate(&bytes, &LIMITS).unwrap().records_count, 3);
}

#[test]
fn a_flipped_bit_fails_the_crc() {
    let good = batch(Compression::None, 5);
    for at in 21..good.len() {
        let mut bad = good.clone();
        bad[at] ^= 0x10;
        assert!(
            matches!(validate(&bad, &LIMITS), Err(LogError::CrcMismatch { .. })),
            "flip at {at}"
        );
    }
}

#[test]
fn magic_other_than_two_is_rejected() {
    for magic in [0u8, 1, 3, 0xff] {
        let mut bad = batch(Compression::None, 2);
        bad[16] = magic;
        assert!(matches!(
            validate(&bad, &LIMITS),
            Err(LogError::UnsupportedMagic { magic: m }) if m == magic as i8
        ));
    }
}

#[test]
fn every_truncation_is_rejected() {
    let good = batch(Compression::Lz4, 10);
    for len in 0..good.len() {
        let err = validate(&good[..len], &LIMITS).unwrap_err();
        assert!(
            matches!(err, LogError::TruncatedBatch { .. }),
            "cut at {len}: {err}"
        );
        assert!(split_batches(&good[..len]).is_err() || len == 0);
    }
}

#[test]
fn short_batch_length_is_rejected() {
    let mut bad = batch(Compression::None, 1);
    bad[8..12].copy_from_slice(&48i32.to_be_bytes());
    assert!(matches!(
        validate(&bad, &LIMITS),
        Err(LogError::BatchLengthTooSmall { length: 48 })
    ));
    bad[8..12].copy_from_slice(&i32::MIN.to_be_bytes());
    assert!(matches!(
        split_batches(&bad),
        Err(LogError::BatchLengthTooSmall { .. })
    ));
}

#[test]
fn absurd_record_counts_are_rejected() {
    for codec in [Compression::None, Compression::Gzip, Compression::Zstd] {
        let bodies: Vec<_> = (0..3).map(|i| body(i, b"v")).collect();
        for count in [i32::MAX, 1 << 20, 4] {
            let bad = raw_batch(codec, &bodies, count);
            assert!(
                matches!(
                    validate(&bad, &LIMITS),
                    Err(LogError::RecordCountMismatch { declared, .. }) if declared == count
                ),
                "{codec} count {count}"
            );
        }
        let fewer = raw_batch(codec, &bodies, 2);
        assert!(matches!(
            validate(&fewer, &LIMITS),
            Err(LogError::TrailingBytes { .. })
        ));
        for count in [0, -1, i32::MIN] {
            let mut bad = raw_batch(codec, &bodies, 3);
            bad[57..61].copy_from_slice(&count.to_be_bytes());
            let bad = fix_crc(bad);
            assert!(matches!(
                validate(&bad, &LIMITS),
                Err(LogError::InvalidRecordCount { .. })
            ));
        }
    }
}

#[test]
fn inconsistent_last_offset_delta_is_rejected() {
    let mut bad = batch(Compression::None, 3);
    bad[23..27].copy_from_slice(&5i32.to_be_bytes());
    let bad = fix_crc(bad);
    assert!(matches!(
        validate(&bad, &LIMITS),
        Err(LogError::OffsetDeltaMismatch {
            last_offset_delta: 5,
            records_count: 3
        })
    ));
}

#[test]
fn non_sequential_offset_deltas_are_rejected() {
    let bodies = vec![body(0, b"a"), body(2, b"b")];
    for codec in [Compression::None, Compression::Snappy] {
        let bad = raw_batch(codec, &bodies, 2);
        assert!(matches!(
            validate(&bad, &LIMITS),
            Err(LogError::NonSequentialOffsetDelta {
                record: 1,
                offset_delta: 2
            })
        ));
    }
}

#[test]
fn malformed_records_are_rejected() {
    // A record whose value length runs past its body.
    let mut long_value = body(0, b"abc");
    long_value.truncate(long_value.len() - 3);
    long_value.push(0);
    // A varint that never ends.
    let endless = vec![0u8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff];
    // A body with a byte too many.
    let mut extra = body(0, b"abc");
    extra.push(7);
    for bad_body in [long_value, endless, extra] {
        let bad = raw_batch(Compression::None, &[bad_body], 1);
        let err = validate(&bad, &LIMITS).unwrap_err();
        assert!(matches!(err, LogError::MalformedRecord { .. }), "{err}");
    }
}

#[test]
fn unknown_codec_is_rejected() {
    for bits in [5i16, 6, 7] {
        let mut bad = batch(Compression::None, 2);
        bad[21..23].copy_from_slice(&bits.to_be_bytes());
        let bad = fix_crc(bad);
        assert!(matches!(
            validate(&bad, &LIMITS),
            Err(LogError::UnknownCompression { codec }) if i16::from(codec) == bits
        ));
    }
}

#[test]
fn compression_bombs_hit_the_cap() {
    let huge = vec![0u8; 8 << 20];
    for codec in [
        Compression::Gzip,
        Compression::Zstd,
        Compression::Lz4,
        Compression::Snappy,
    ] {
        let mut builder = BatchBuilder::new(codec);
        builder.push(0, None, Some(&huge), &[]);
        let bomb = builder.build().unwrap();
        assert!(bomb.len() < 1 << 20, "{codec} compresses zeros");
        assert!(
            matches!(
                validate(&bomb, &LIMITS),
                Err(LogError::DecompressedTooLarge { cap, .. }) if cap == LIMITS.max_decompressed_bytes
            ),
            "{codec}"
        );
    }
}

#[test]
fn client_rules_are_enforced() {
    let mut builder = BatchBuilder::new(Compression::None).control(true);
    builder.push(0, None, Some(b"marker"), &[]);
    assert!(matches!(
        validate(&builder.build().unwrap(), &LIMITS),
        Err(LogError::ControlBatchFromClient)
    ));

    let mut builder = BatchBuilder::new(Compression::None).producer(7, 0, -1);
    builder.push(0, None, Some(b"v"), &[]);
    assert!(matches!(
        validate(&builder.build().unwrap(), &LIMITS),
        Err(LogError::InvalidBaseSequence { producer_id: 7, .. })
    ));

    let big = batch(Compression::None, 100);
    let small = BatchLimits {
        max_batch_bytes: big.len() - 1,
        ..LIMITS
    };
    assert!(matches!(
        validate(&big, &small),
        Err(LogError::BatchTooLarge { .. })
    ));
}

#[test]
fn produce_records_split_into_batches() {
    let mut records = Vec::new();
    let mut sizes = Vec::new();
    for codec in CODECS {
        let b = batch(codec, 3);
        sizes.push(b.len());
        records.extend_from_slice(&b);
    }
    let validated = validate_produce(&records, &LIMITS).unwrap();
    assert_eq!(validated.batches().len(), 5);
    assert_eq!(validated.len(), records.len());
    let mut at = 0;
    for (batch, size) in validated.batches().iter().zip(&sizes) {
        assert_eq!(batch.range, at..at + size);
        at += size;
    }
    let headers: Vec<BatchHeader> = BatchIter::new(&records).map(Result::unwrap).collect();
    assert_eq!(headers.len(), 5);
    assert_eq!(headers[4].compression().unwrap(), Compression::Zstd);
    let mut cut = BatchIter::new(&records[..records.len() - 1]);
    assert_eq!(cut.by_ref().filter(Result::is_ok).count(), 4);
    assert_eq!(cut.position(), records.len() - sizes[4]);
    assert!(cut.next().is_none());
    assert!(matches!(
        validate_produce(&records[..records.len() - 1], &LIMITS),
        Err(LogError::TruncatedBatch { .. })
    ));
    assert!(matches!(
        validate_produce(&[], &LIMITS),
        Err(LogError::NoBatches)
    ));
}

#[test]
fn rewriting_offsets_and_epoch_keeps_the_crc() {
    let mut bytes = batch(Compression::Gzip, 4);
    set_base_offset(&mut bytes, 1_234_567);
    set_partition_leader_epoch(&mut bytes, 9);
    let header = validate(&bytes, &LIMITS).unwrap();
    assert_eq!(header.base_offset, 1_234_567);
    assert_eq!(header.last_offset(), 1_234_570);
    assert_eq!(header.partition_leader_epoch, 9);
}

#[test]
fn log_append_time_is_stamped_with_a_new_crc() {
    let mut bytes = batch(Compression::None, 4);
    let header = verify(&bytes).unwrap();
    set_log_append_time(&mut bytes, &header, 99_000);
    let header = validate(&bytes, &LIMITS).unwrap();
    assert_eq!(header.timestamp_type(), TimestampType::LogAppendTime);
    assert_eq!(header.max_timestamp, 99_000);
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = validate(&bytes, &LIMITS);
        let _ = validate_produce(&bytes, &LIMITS);
        let _ = verify(&bytes);
    }

    #[test]
    fn mutated_batches_never_panic(
        codec in prop::sample::select(CODECS.to_vec()),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
    ) {
        let mut bytes = batch(codec, 6);
        for (at, value) in edits {
            let at = at.index(bytes.len());
            bytes[at] = value;
        }
        // With the CRC fixed, mutations reach the record walker.
        let fixed = if bytes.len() > 21 { fix_crc(bytes.clone()) } else { bytes.clone() };
        let _ = validate(&bytes, &LIMITS);
        let _ = validate(&fixed, &LIMITS);
    }
}
