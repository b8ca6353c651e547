//! Encoding record batches: what the broker needs to write batches of its
//! own (control markers) and what tests use to make real batches.

use super::batch::{HEADER_LEN, LOG_OVERHEAD};
use super::compression::{self, Compression};
use super::error::LogError;

/// Builds one RecordBatch v2 with offset deltas `0..n` and a correct CRC32C.
///
/// ```
/// use broker::log::{BatchBuilder, Compression};
/// let mut builder = BatchBuilder::new(Compression::Zstd);
/// builder.push(1_700_000_000_000, Some(b"key"), Some(b"value"), &[]);
/// let batch = builder.build().unwrap();
/// assert_eq!(broker::log::batch::verify(&batch).unwrap().records_count, 1);
/// ```
#[derive(Debug, Clone)]
pub struct BatchBuilder {
    compression: Compression,
    base_offset: i64,
    partition_leader_epoch: i32,
    producer_id: i64,
    producer_epoch: i16,
    base_sequence: i32,
    transactional: bool,
    control: bool,
    records: Vec<u8>,
    count: i32,
    base_timestamp: Option<i64>,
    max_timestamp: i64,
}

impl BatchBuilder {
    /// An empty, non-idempotent batch at base offset 0.
    pub fn new(compression: Compression) -> BatchBuilder {
        BatchBuilder {
            compression,
            base_offset: 0,
            partition_leader_epoch: -1,
            producer_id: -1,
            producer_epoch: -1,
            base_sequence: -1,
            transactional: false,
            control: false,
            records: Vec::new(),
            count: 0,
            base_timestamp: None,
            max_timestamp: -1,
        }
    }

    pub fn base_offset(mut self, base_offset: i64) -> BatchBuilder {
        self.base_offset = base_offset;
        self
    }

    pub fn partition_leader_epoch(mut self, epoch: i32) -> BatchBuilder {
        self.partition_leader_epoch = epoch;
        self
    }

    /// Makes the batch idempotent.
    pub fn producer(mut self, id: i64, epoch: i16, base_sequence: i32) -> BatchBuilder {
        self.producer_id = id;
        self.producer_epoch = epoch;
        self.base_sequence = base_sequence;
        self
    }

    pub fn transactional(mut self, transactional: bool) -> BatchBuilder {
        self.transactional = transactional;
        self
    }

    pub fn control(mut self, control: bool) -> BatchBuilder {
        self.control = control;
        self
    }

    /// Appends a record; the first record's timestamp is the batch's base
    /// timestamp.
    pub fn push(
        &mut self,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[(&[u8], Option<&[u8]>)],
    ) {
        let base_timestamp = *self.base_timestamp.get_or_insert(timestamp);
        self.max_timestamp = self.max_timestamp.max(timestamp);
        let mut body =
            Vec::with_capacity(16 + key.map_or(0, <[u8]>::len) + value.map_or(0, <[u8]>::len));
        body.push(0); // record attributes, unused
        put_varlong(&mut body, timestamp - base_timestamp);
        put_varint(&mut body, self.count);
        put_nullable(&mut body, key);
        put_nullable(&mut body, value);
        put_varint(&mut body, len_i32(headers.len()));
        for (header_key, header_value) in headers {
            put_nullable(&mut body, Some(header_key));
            put_nullable(&mut body, *header_value);
        }
        put_varint(&mut self.records, len_i32(body.len()));
        self.records.extend_from_slice(&body);
        self.count += 1;
    }

    /// Number of records pushed so far.
    pub fn len(&self) -> usize {
        self.count as usize
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Encodes the batch.
    pub fn build(self) -> Result<Vec<u8>, LogError> {
        let section = compression::compress(self.compression, &self.records)?;
        let size = HEADER_LEN + section.len();
        let mut out = Vec::with_capacity(size);
        let mut attributes = self.compression.attribute_bits();
        if self.transactional {
            attributes |= 1 << 4;
        }
        if self.control {
            attributes |= 1 << 5;
        }
        let base_timestamp = self.base_timestamp.unwrap_or(-1);
        out.extend_from_slice(&self.base_offset.to_be_bytes());
        out.extend_from_slice(&len_i32(size - LOG_OVERHEAD).to_be_bytes());
        out.extend_from_slice(&self.partition_leader_epoch.to_be_bytes());
        out.push(2);
        out.extend_from_slice(&[0; 4]); // crc, filled below
        out.extend_from_slice(&attributes.to_be_bytes());
        out.extend_from_slice(&(self.count - 1).max(0).to_be_bytes());
        out.extend_from_slice(&base_timestamp.to_be_bytes());
        out.extend_from_slice(&self.max_timestamp.to_be_bytes());
        out.extend_from_slice(&self.producer_id.to_be_bytes());
        out.extend_from_slice(&self.producer_epoch.to_be_bytes());
        out.extend_from_slice(&self.base_sequence.to_be_bytes());
        out.extend_from_slice(&self.count.to_be_bytes());
        out.extend_from_slice(&section);
        let crc = crc32c::crc32c(&out[21..]);
        out[17..21].copy_from_slice(&crc.to_be_bytes());
        Ok(out)
    }
}

fn len_i32(len: usize) -> i32 {
    i32::try_from(len).expect("record batch parts are smaller than 2 GiB")
}

fn put_unsigned(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// Zigzag varint.
pub(crate) fn put_varint(out: &mut Vec<u8>, value: i32) {
    put_unsigned(out, u64::from(((value << 1) ^ (value >> 31)) as u32));
}

/// Zigzag varlong.
pub(crate) fn put_varlong(out: &mut Vec<u8>, value: i64) {
    put_unsigned(out, ((value << 1) ^ (value >> 63)) as u64);
}

fn put_nullable(out: &mut Vec<u8>, bytes: Option<&[u8]>) {
    match bytes {
        None => put_varint(out, -1),
        Some(bytes) => {
            put_varint(out, len_i32(bytes.len()));
            out.extend_from_slice(bytes);
        }
    }
}
