//! The records floe-load writes and reads: RecordBatch v2 of fixed-size,
//! key-less records whose value starts with the microsecond (Unix epoch)
//! time the record was created, big-endian; the rest is filler. With
//! `--avro-schema-id` the values are Avro ([`crate::avro`]) and the stamp
//! follows their 5-byte header.

use std::ops::Range;

use anyhow::{Context as _, bail};
use broker::log::batch::{BatchHeader, HEADER_LEN};
use broker::log::{BatchBuilder, BatchIter, Compression, LogError};

/// Bytes of the creation stamp at the start of every value.
pub const STAMP_LEN: usize = 8;

/// Where the stamp starts in a value.
fn stamp_at() -> usize {
    if crate::avro::schema_id().is_some() {
        crate::avro::STAMP_AT
    } else {
        0
    }
}

/// A value of `size` bytes stamped `micros`.
pub fn value(size: usize, micros: u64) -> anyhow::Result<Vec<u8>> {
    let mut v: Vec<u8> = match crate::avro::schema_id() {
        Some(id) => crate::avro::value(id, size)?,
        None => (0..size).map(|i| b'a' + (i % 26) as u8).collect(),
    };
    stamp(&mut v, micros);
    Ok(v)
}

fn stamp(value: &mut [u8], micros: u64) {
    let at = stamp_at();
    if let Some(prefix) = value.get_mut(at..at + STAMP_LEN) {
        prefix.copy_from_slice(&micros.to_be_bytes());
    }
}

/// An uncompressed batch of `count` records of `size`-byte values, with
/// the given creation stamps (one per record).
pub fn build_batch(size: usize, stamps: &[u64]) -> anyhow::Result<Vec<u8>> {
    let mut builder = BatchBuilder::new(Compression::None);
    let mut v = value(size, 0)?;
    for &micros in stamps {
        stamp(&mut v, micros);
        builder.push((micros / 1000) as i64, None, Some(&v), &[]);
    }
    builder.build().context("cannot build record batch")
}

/// Restamps a batch in place: header timestamps, every value's stamp, CRC.
/// `values` are the value ranges within the batch ([`value_ranges`]).
pub fn restamp(batch: &mut [u8], values: &[Range<usize>], micros: u64) {
    let ms = ((micros / 1000) as i64).to_be_bytes();
    let at = stamp_at();
    batch[27..35].copy_from_slice(&ms); // base timestamp
    batch[35..43].copy_from_slice(&ms); // max timestamp
    for r in values {
        if r.len() >= at + STAMP_LEN {
            let start = r.start + at;
            batch[start..start + STAMP_LEN].copy_from_slice(&micros.to_be_bytes());
        }
    }
    let crc = crc32c::crc32c(&batch[21..]);
    batch[17..21].copy_from_slice(&crc.to_be_bytes());
}

/// The byte ranges of the record values of one uncompressed batch (exactly
/// the batch's bytes).
pub fn value_ranges(batch: &[u8]) -> anyhow::Result<Vec<Range<usize>>> {
    let mut out = Vec::new();
    for_each_value(batch, |r| out.push(r))?;
    Ok(out)
}

/// Calls `f` with the range of every record value (`None` values skipped)
/// of the batch at the start of `batch`; fails on compressed batches.
pub fn for_each_value(batch: &[u8], mut f: impl FnMut(Range<usize>)) -> anyhow::Result<()> {
    let header = BatchHeader::parse(batch)?;
    if header.compression()? != Compression::None {
        bail!("floe-load reads only uncompressed batches");
    }
    let end = header.size().min(batch.len());
    let mut at = HEADER_LEN;
    for _ in 0..header.records_count {
        let len = varint(batch, &mut at)?;
        let record_end = at + usize::try_from(len).context("negative record length")?;
        at += 1; // attributes
        varint(batch, &mut at)?; // timestamp delta
        varint(batch, &mut at)?; // offset delta
        let key = varint(batch, &mut at)?;
        if key > 0 {
            at += key as usize;
        }
        let value = varint(batch, &mut at)?;
        if value >= 0 {
            f(at..at + value as usize);
        }
        at = record_end;
        if at > end {
            bail!("record runs past the end of its batch");
        }
    }
    Ok(())
}

/// A zigzag varint (records use varlongs for timestamps; the values here
/// fit in 64 bits either way).
fn varint(buf: &[u8], at: &mut usize) -> anyhow::Result<i64> {
    let mut value: u64 = 0;
    for shift in (0..64).step_by(7) {
        let b = *buf.get(*at).context("varint runs past the batch")?;
        *at += 1;
        value |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok(((value >> 1) as i64) ^ -((value & 1) as i64));
        }
    }
    bail!("varint longer than 10 bytes")
}

/// What a fetch response's records held.
#[derive(Debug, Default, Clone, Copy)]
pub struct Fetched {
    pub batches: u64,
    pub records: u64,
    pub batch_bytes: u64,
    pub value_bytes: u64,
    /// The offset after the last whole batch, if any.
    pub next_offset: Option<i64>,
}

/// Walks the whole batches of a fetch response (a partial batch at the end
/// is allowed, as Kafka may send one), optionally verifying CRCs, and calls
/// `on_stamp(stamp, ...)` for every value's creation stamp when given.
pub fn read_fetched(
    records: &[u8],
    check_crcs: bool,
    mut on_stamp: Option<&mut dyn FnMut(u64)>,
) -> anyhow::Result<Fetched> {
    let mut out = Fetched::default();
    let mut position = 0;
    let at = stamp_at();
    for header in BatchIter::new(records) {
        let header = match header {
            Ok(h) => h,
            Err(LogError::TruncatedBatch { .. }) => break,
            Err(e) => return Err(e).context("bad batch in fetch response"),
        };
        let batch = &records[position..position + header.size()];
        position += header.size();
        if check_crcs {
            broker::log::batch::verify(batch).context("fetched batch fails its CRC check")?;
        }
        out.batches += 1;
        out.records += header.records_count as u64;
        out.batch_bytes += batch.len() as u64;
        out.next_offset = Some(header.last_offset() + 1);
        for_each_value(batch, |r| {
            out.value_bytes += r.len() as u64;
            if let Some(f) = on_stamp.as_mut()
                && r.len() >= at + STAMP_LEN
            {
                let mut s = [0u8; STAMP_LEN];
                s.copy_from_slice(&batch[r.start + at..r.start + at + STAMP_LEN]);
                f(u64::from_be_bytes(s));
            }
        })?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restamped_batches_verify_and_carry_the_stamp() {
        let mut batch = build_batch(1024, &[1, 2, 3]).unwrap();
        let values = value_ranges(&batch).unwrap();
        assert_eq!(values.len(), 3);
        assert!(values.iter().all(|r| r.len() == 1024));
        restamp(&mut batch, &values, 1_700_000_000_123_456);
        broker::log::batch::verify(&batch).unwrap();
        let mut stamps = Vec::new();
        let fetched = read_fetched(&batch, true, Some(&mut |s| stamps.push(s))).unwrap();
        assert_eq!(fetched.records, 3);
        assert_eq!(fetched.value_bytes, 3 * 1024);
        assert_eq!(stamps, vec![1_700_000_000_123_456; 3]);
    }

    #[test]
    fn a_partial_batch_at_the_end_is_skipped() {
        let a = build_batch(100, &[5]).unwrap();
        let b = build_batch(100, &[6, 7]).unwrap();
        let mut both = [a.clone(), b].concat();
        both.truncate(a.len() + 30);
        let fetched = read_fetched(&both, true, None).unwrap();
        assert_eq!(fetched.records, 1);
        assert_eq!(fetched.next_offset, Some(1));
    }
}
