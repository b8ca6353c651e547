//! Primitive wire types: the building blocks the generated code calls.
//!
//! Decoding reads from a [`Reader`] over a `Bytes` frame, so byte arrays and
//! record batches are returned as zero-copy slices of the frame. Encoding
//! appends to a `Vec<u8>`.
//!
//! Every length or count read off the wire is checked against the bytes that
//! remain *before* anything is allocated: an array count must fit in the
//! remaining bytes at the element type's minimum encoded size.

use bytes::Bytes;

use crate::error::{DecodeError, EncodeError};

/// Cap on the capacity reserved up front for a decoded array; beyond it the
/// vector grows with the elements actually decoded.
const MAX_PREALLOCATED_ITEMS: usize = 1024;

/// A cursor over one frame.
#[derive(Debug, Clone)]
pub struct Reader {
    buf: Bytes,
    pos: usize,
}

impl Reader {
    pub fn new(buf: Bytes) -> Self {
        Reader { buf, pos: 0 }
    }

    /// Byte position within the frame.
    pub fn position(&self) -> usize {
        self.pos
    }

    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// The bytes not yet read, as a zero-copy slice.
    pub fn rest(&self) -> Bytes {
        self.buf.slice(self.pos..)
    }

    fn take(&mut self, n: usize) -> Result<&[u8], DecodeError> {
        if self.remaining() < n {
            return Err(DecodeError::Truncated {
                at: self.pos,
                needed: n,
                available: self.remaining(),
            });
        }
        let start = self.pos;
        self.pos += n;
        Ok(&self.buf[start..start + n])
    }

    fn take_bytes(&mut self, n: usize) -> Result<Bytes, DecodeError> {
        if self.remaining() < n {
            return Err(DecodeError::Truncated {
                at: self.pos,
                needed: n,
                available: self.remaining(),
            });
        }
        let out = self.buf.slice(self.pos..self.pos + n);
        self.pos += n;
        Ok(out)
    }

    /// Skips `n` bytes (an unknown tagged field).
    pub fn skip(&mut self, n: usize) -> Result<(), DecodeError> {
        self.take(n).map(|_| ())
    }

    /// A sub-reader over the next `n` bytes, which are consumed from `self`.
    pub fn sub(&mut self, n: usize) -> Result<Reader, DecodeError> {
        Ok(Reader::new(self.take_bytes(n)?))
    }

    pub fn i8(&mut self) -> Result<i8, DecodeError> {
        Ok(self.take(1)?[0] as i8)
    }

    pub fn bool(&mut self) -> Result<bool, DecodeError> {
        Ok(self.take(1)?[0] != 0)
    }

    pub fn i16(&mut self) -> Result<i16, DecodeError> {
        let b = self.take(2)?;
        Ok(i16::from_be_bytes([b[0], b[1]]))
    }

    pub fn u16(&mut self) -> Result<u16, DecodeError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    pub fn i32(&mut self) -> Result<i32, DecodeError> {
        let b = self.take(4)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub fn u32(&mut self) -> Result<u32, DecodeError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub fn i64(&mut self) -> Result<i64, DecodeError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(i64::from_be_bytes(a))
    }

    pub fn f64(&mut self) -> Result<f64, DecodeError> {
        Ok(f64::from_bits(self.i64()? as u64))
    }

    pub fn uuid(&mut self) -> Result<Uuid, DecodeError> {
        let b = self.take(16)?;
        let mut a = [0u8; 16];
        a.copy_from_slice(b);
        Ok(Uuid(a))
    }

    /// An unsigned LEB128 varint of at most 32 bits.
    pub fn uvarint(&mut self) -> Result<u32, DecodeError> {
        let at = self.pos;
        let mut value: u32 = 0;
        for i in 0..5 {
            let byte = self.take(1)?[0];
            if i == 4 && byte > 0x0f {
                return Err(DecodeError::MalformedVarint { at });
            }
            value |= u32::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(DecodeError::MalformedVarint { at })
    }

    /// The length prefix of a string or byte array: `None` for null.
    fn length(&mut self, flexible: bool, wide: bool) -> Result<Option<usize>, DecodeError> {
        let at = self.pos;
        let length: i64 = if flexible {
            i64::from(self.uvarint()?) - 1
        } else if wide {
            i64::from(self.i32()?)
        } else {
            i64::from(self.i16()?)
        };
        match length {
            -1 => Ok(None),
            n if n < 0 => Err(DecodeError::InvalidLength { at, length: n }),
            n => Ok(Some(n as usize)),
        }
    }

    fn utf8(&mut self, n: usize) -> Result<String, DecodeError> {
        let at = self.pos;
        let raw = self.take(n)?;
        std::str::from_utf8(raw)
            .map(str::to_owned)
            .map_err(|_| DecodeError::InvalidUtf8 { at })
    }

    pub fn nullable_string(&mut self, flexible: bool) -> Result<Option<String>, DecodeError> {
        match self.length(flexible, false)? {
            None => Ok(None),
            Some(n) => self.utf8(n).map(Some),
        }
    }

    pub fn string(&mut self, flexible: bool) -> Result<String, DecodeError> {
        let at = self.pos;
        self.nullable_string(flexible)?
            .ok_or(DecodeError::UnexpectedNull { at })
    }

    pub fn nullable_bytes(&mut self, flexible: bool) -> Result<Option<Bytes>, DecodeError> {
        match self.length(flexible, true)? {
            None => Ok(None),
            Some(n) => self.take_bytes(n).map(Some),
        }
    }

    pub fn bytes(&mut self, flexible: bool) -> Result<Bytes, DecodeError> {
        let at = self.pos;
        self.nullable_bytes(flexible)?
            .ok_or(DecodeError::UnexpectedNull { at })
    }

    /// An array count, checked against the remaining bytes at
    /// `min_item_size` bytes per item. `None` for a null array.
    pub fn array_len(
        &mut self,
        flexible: bool,
        min_item_size: usize,
    ) -> Result<Option<usize>, DecodeError> {
        let at = self.pos;
        let count: i64 = if flexible {
            i64::from(self.uvarint()?) - 1
        } else {
            i64::from(self.i32()?)
        };
        if count == -1 {
            return Ok(None);
        }
        if count < 0 {
            return Err(DecodeError::InvalidLength { at, length: count });
        }
        let count = count as u64;
        let needed = count.saturating_mul(min_item_size.max(1) as u64);
        if needed > self.remaining() as u64 {
            return Err(DecodeError::CountTooLarge {
                at,
                count,
                remaining: self.remaining(),
            });
        }
        Ok(Some(count as usize))
    }

    /// A non-null array count (see [`Reader::array_len`]).
    pub fn array_len_nonnull(
        &mut self,
        flexible: bool,
        min_item_size: usize,
    ) -> Result<usize, DecodeError> {
        let at = self.pos;
        self.array_len(flexible, min_item_size)?
            .ok_or(DecodeError::UnexpectedNull { at })
    }

    /// The marker before a nullable struct: false for null.
    pub fn struct_marker(&mut self) -> Result<bool, DecodeError> {
        let at = self.pos;
        match self.i8()? {
            -1 => Ok(false),
            1 => Ok(true),
            marker => Err(DecodeError::InvalidMarker { at, marker }),
        }
    }
}

/// A vector with capacity for `count` items, capped so that a large count
/// never reserves memory ahead of the items actually decoded.
pub fn vec_for<T>(count: usize) -> Vec<T> {
    Vec::with_capacity(count.min(MAX_PREALLOCATED_ITEMS))
}

/// A Kafka UUID (topic ids), 16 raw bytes.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Uuid(pub [u8; 16]);

impl Uuid {
    pub const ZERO: Uuid = Uuid([0; 16]);

    pub fn is_zero(&self) -> bool {
        self.0 == [0; 16]
    }
}

impl std::fmt::Debug for Uuid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Uuid(")?;
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        write!(f, ")")
    }
}

/// Appends primitive values in Kafka's wire format. Implementors provide
/// [`put_raw`](Put::put_raw); [`put_records`](Put::put_records) may keep a
/// reference to the records instead of copying them (see [`Frame`]).
pub trait Put {
    /// Appends bytes as they are.
    fn put_raw(&mut self, v: &[u8]);
    /// Bytes written so far.
    fn written(&self) -> usize;

    fn put_i8(&mut self, v: i8) {
        self.put_raw(&[v as u8]);
    }
    fn put_bool(&mut self, v: bool) {
        self.put_raw(&[u8::from(v)]);
    }
    fn put_i16(&mut self, v: i16) {
        self.put_raw(&v.to_be_bytes());
    }
    fn put_u16(&mut self, v: u16) {
        self.put_raw(&v.to_be_bytes());
    }
    fn put_i32(&mut self, v: i32) {
        self.put_raw(&v.to_be_bytes());
    }
    fn put_u32(&mut self, v: u32) {
        self.put_raw(&v.to_be_bytes());
    }
    fn put_i64(&mut self, v: i64) {
        self.put_raw(&v.to_be_bytes());
    }
    fn put_f64(&mut self, v: f64) {
        self.put_raw(&v.to_bits().to_be_bytes());
    }
    fn put_uuid(&mut self, v: &Uuid) {
        self.put_raw(&v.0);
    }
    fn put_uvarint(&mut self, mut v: u32) {
        let mut out = [0u8; 5];
        let mut n = 0;
        while v >= 0x80 {
            out[n] = (v as u8) | 0x80;
            v >>= 7;
            n += 1;
        }
        out[n] = v as u8;
        self.put_raw(&out[..=n]);
    }
    fn put_length(
        &mut self,
        len: Option<usize>,
        flexible: bool,
        wide: bool,
    ) -> Result<(), EncodeError> {
        match (len, flexible) {
            (None, true) => self.put_uvarint(0),
            (None, false) if wide => self.put_i32(-1),
            (None, false) => self.put_i16(-1),
            (Some(n), true) => {
                let v = u32::try_from(n)
                    .ok()
                    .and_then(|n| n.checked_add(1))
                    .ok_or(EncodeError::TooLong { length: n })?;
                self.put_uvarint(v);
            }
            (Some(n), false) if wide => {
                let v = i32::try_from(n).map_err(|_| EncodeError::TooLong { length: n })?;
                self.put_i32(v);
            }
            (Some(n), false) => {
                let v = i16::try_from(n).map_err(|_| EncodeError::TooLong { length: n })?;
                self.put_i16(v);
            }
        }
        Ok(())
    }
    fn put_string(&mut self, v: &str, flexible: bool) -> Result<(), EncodeError> {
        self.put_length(Some(v.len()), flexible, false)?;
        self.put_raw(v.as_bytes());
        Ok(())
    }
    fn put_nullable_string(&mut self, v: Option<&str>, flexible: bool) -> Result<(), EncodeError> {
        match v {
            Some(s) => self.put_string(s, flexible),
            None => self.put_length(None, flexible, false),
        }
    }
    fn put_bytes(&mut self, v: &[u8], flexible: bool) -> Result<(), EncodeError> {
        self.put_length(Some(v.len()), flexible, true)?;
        self.put_raw(v);
        Ok(())
    }
    fn put_nullable_bytes(&mut self, v: Option<&[u8]>, flexible: bool) -> Result<(), EncodeError> {
        match v {
            Some(b) => self.put_bytes(b, flexible),
            None => self.put_length(None, flexible, true),
        }
    }
    /// A `records` field: like [`put_bytes`](Put::put_bytes), but the
    /// implementor may keep `v` by reference.
    fn put_records(&mut self, v: &Bytes, flexible: bool) -> Result<(), EncodeError> {
        self.put_bytes(v, flexible)
    }
    fn put_nullable_records(
        &mut self,
        v: Option<&Bytes>,
        flexible: bool,
    ) -> Result<(), EncodeError> {
        match v {
            Some(b) => self.put_records(b, flexible),
            None => self.put_length(None, flexible, true),
        }
    }
    fn put_array_len(&mut self, len: Option<usize>, flexible: bool) -> Result<(), EncodeError> {
        self.put_length(len, flexible, true)
    }
}

impl Put for Vec<u8> {
    fn put_raw(&mut self, v: &[u8]) {
        self.extend_from_slice(v);
    }
    fn written(&self) -> usize {
        self.len()
    }
}

/// An encoded frame that refers to large `records` fields instead of copying
/// them: a Fetch response of 50 MiB costs one small header buffer, and the
/// record bytes go from the log read straight to the socket.
#[derive(Debug, Default)]
pub struct Frame {
    head: Vec<u8>,
    /// `(position in head, bytes)`: `bytes` follow `head[..position]`.
    parts: Vec<(usize, Bytes)>,
    parts_len: usize,
}

impl Frame {
    /// Records at least this long are referenced, smaller ones copied.
    pub const REFERENCE_MIN: usize = 16 * 1024;

    pub fn with_capacity(capacity: usize) -> Frame {
        Frame {
            head: Vec::with_capacity(capacity),
            ..Frame::default()
        }
    }

    /// Overwrites bytes already written at `at` (at most the head's first
    /// bytes, which are never a reference): for a size prefix.
    pub fn patch(&mut self, at: usize, v: &[u8]) {
        self.head[at..at + v.len()].copy_from_slice(v);
    }

    /// The frame as consecutive chunks, to be written in order.
    pub fn into_chunks(self) -> Vec<Bytes> {
        let mut head = Bytes::from(self.head);
        let mut chunks = Vec::with_capacity(2 * self.parts.len() + 1);
        let mut taken = 0;
        for (position, bytes) in self.parts {
            let piece = head.split_to(position - taken);
            taken = position;
            if !piece.is_empty() {
                chunks.push(piece);
            }
            chunks.push(bytes);
        }
        if !head.is_empty() {
            chunks.push(head);
        }
        chunks
    }
}

impl Put for Frame {
    fn put_raw(&mut self, v: &[u8]) {
        self.head.extend_from_slice(v);
    }
    fn written(&self) -> usize {
        self.head.len() + self.parts_len
    }
    fn put_records(&mut self, v: &Bytes, flexible: bool) -> Result<(), EncodeError> {
        self.put_length(Some(v.len()), flexible, true)?;
        if v.len() >= Frame::REFERENCE_MIN {
            self.parts.push((self.head.len(), v.clone()));
            self.parts_len += v.len();
        } else {
            self.head.extend_from_slice(v);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uvarint_round_trips_at_the_edges() {
        for v in [0u32, 1, 127, 128, 16383, 16384, u32::MAX] {
            let mut w = Vec::new();
            w.put_uvarint(v);
            let mut r = Reader::new(Bytes::from(w));
            assert_eq!(r.uvarint().unwrap(), v);
            assert_eq!(r.remaining(), 0);
        }
    }

    #[test]
    fn overlong_uvarint_is_rejected() {
        let mut r = Reader::new(Bytes::from_static(&[0xff, 0xff, 0xff, 0xff, 0xff, 0x01]));
        assert!(matches!(
            r.uvarint(),
            Err(DecodeError::MalformedVarint { at: 0 })
        ));
    }

    #[test]
    fn huge_array_count_is_rejected_before_allocation() {
        // i32::MAX items of at least 2 bytes each in a 4-byte tail.
        let mut w = Vec::new();
        w.put_i32(i32::MAX);
        w.put_i32(0);
        let mut r = Reader::new(Bytes::from(w));
        assert!(matches!(
            r.array_len(false, 2),
            Err(DecodeError::CountTooLarge { count, remaining: 4, .. }) if count == i32::MAX as u64
        ));
    }

    #[test]
    fn string_length_beyond_frame_is_truncation() {
        let mut w = Vec::new();
        w.put_i16(100);
        w.extend_from_slice(b"abc");
        let mut r = Reader::new(Bytes::from(w));
        assert!(matches!(
            r.string(false),
            Err(DecodeError::Truncated {
                needed: 100,
                available: 3,
                ..
            })
        ));
    }

    #[test]
    fn negative_lengths_other_than_null_are_invalid() {
        let mut w = Vec::new();
        w.put_i32(-2);
        let mut r = Reader::new(Bytes::from(w));
        assert!(matches!(
            r.nullable_bytes(false),
            Err(DecodeError::InvalidLength { length: -2, .. })
        ));
    }
}
