//! The Confluent wire format: `0x00`, big-endian `u32` schema id, payload.
//!
//! Protobuf payloads carry, after the id, the path of message indexes that
//! names the message type within the schema: a zigzag varint count followed
//! by that many zigzag varints, with the single byte `0` as a shortcut for
//! the first message (`[0]`).

/// A registry schema id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SchemaId(pub u32);

/// Why a value is not in the Confluent wire format.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    #[error("value of {len} bytes is too short for a schema id header")]
    TooShort { len: usize },
    #[error("unknown magic byte {magic}, expected 0")]
    UnknownMagic { magic: u8 },
    #[error("malformed protobuf message index at byte {at}")]
    MalformedMessageIndex { at: usize },
}

/// A value split into its schema id and payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Framed<'a> {
    pub schema_id: SchemaId,
    pub payload: &'a [u8],
}

impl<'a> Framed<'a> {
    /// Splits `value` into schema id and payload.
    pub fn parse(value: &'a [u8]) -> Result<Framed<'a>, WireError> {
        if value.len() < 5 {
            return Err(WireError::TooShort { len: value.len() });
        }
        if value[0] != 0 {
            return Err(WireError::UnknownMagic { magic: value[0] });
        }
        let id = u32::from_be_bytes([value[1], value[2], value[3], value[4]]);
        Ok(Framed {
            schema_id: SchemaId(id),
            payload: &value[5..],
        })
    }
}

/// Appends the 5-byte header for `id`.
pub fn encode_header(id: SchemaId, out: &mut Vec<u8>) {
    out.push(0);
    out.extend_from_slice(&id.0.to_be_bytes());
}

fn read_zigzag(buf: &[u8], pos: &mut usize) -> Option<i64> {
    let mut value: u64 = 0;
    for shift in (0..64).step_by(7) {
        let byte = *buf.get(*pos)?;
        *pos += 1;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(((value >> 1) as i64) ^ -((value & 1) as i64));
        }
    }
    None
}

/// Splits a Protobuf payload into its message-index path and the message
/// bytes. `[0]` (the first message) is returned for the one-byte shortcut.
pub fn parse_message_indexes(payload: &[u8]) -> Result<(Vec<i64>, &[u8]), WireError> {
    let mut pos = 0;
    let count = read_zigzag(payload, &mut pos).ok_or(WireError::MalformedMessageIndex { at: 0 })?;
    if count == 0 {
        return Ok((vec![0], &payload[pos..]));
    }
    // Each index takes at least one byte: never allocate beyond what remains.
    if count < 0 || count as usize > payload.len() - pos {
        return Err(WireError::MalformedMessageIndex { at: 0 });
    }
    let mut indexes = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let at = pos;
        indexes
            .push(read_zigzag(payload, &mut pos).ok_or(WireError::MalformedMessageIndex { at })?);
    }
    Ok((indexes, &payload[pos..]))
}

fn write_zigzag(value: i64, out: &mut Vec<u8>) {
    let mut v = ((value << 1) ^ (value >> 63)) as u64;
    while v >= 0x80 {
        out.push((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Appends the Protobuf message-index path: the single byte `0` for `[0]`
/// (the first message type, the shortcut every Confluent serializer
/// writes), otherwise a zigzag varint count and the zigzag varint indexes.
pub fn encode_message_indexes(indexes: &[i64], out: &mut Vec<u8>) {
    if indexes == [0] {
        out.push(0);
        return;
    }
    write_zigzag(indexes.len() as i64, out);
    for &index in indexes {
        write_zigzag(index, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_short_and_unknown_magic() {
        assert_eq!(
            Framed::parse(&[0, 0, 0]),
            Err(WireError::TooShort { len: 3 })
        );
        assert_eq!(
            Framed::parse(&[1, 0, 0, 0, 1, 9]),
            Err(WireError::UnknownMagic { magic: 1 })
        );
    }

    #[test]
    fn message_index_shortcut_and_path() {
        assert_eq!(
            parse_message_indexes(&[0, 42]).unwrap(),
            (vec![0], &[42u8][..])
        );
        // count 2 (zigzag 4), indexes 1 (2) and 3 (6)
        assert_eq!(
            parse_message_indexes(&[4, 2, 6, 42]).unwrap(),
            (vec![1, 3], &[42u8][..])
        );
        // a count far beyond the payload is refused without allocating
        assert!(parse_message_indexes(&[0xfe, 0xff, 0xff, 0xff, 0x0f]).is_err());
    }

    #[test]
    fn message_indexes_encode_with_the_shortcut() {
        let mut out = Vec::new();
        encode_message_indexes(&[0], &mut out);
        assert_eq!(out, [0]);
        out.clear();
        encode_message_indexes(&[1, 3], &mut out);
        assert_eq!(out, [4, 2, 6]);
        out.clear();
        encode_message_indexes(&[], &mut out);
        assert_eq!(out, [0]);
    }

    proptest::proptest! {
        #[test]
        fn message_indexes_round_trip(indexes in proptest::collection::vec(0i64..100_000, 1..6), tail in proptest::collection::vec(proptest::num::u8::ANY, 0..8)) {
            let mut buf = Vec::new();
            encode_message_indexes(&indexes, &mut buf);
            buf.extend_from_slice(&tail);
            let (parsed, rest) = parse_message_indexes(&buf).unwrap();
            proptest::prop_assert_eq!(parsed, indexes);
            proptest::prop_assert_eq!(rest, &tail[..]);
        }

        #[test]
        fn message_index_parsing_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..32)) {
            let _ = parse_message_indexes(&bytes);
            let _ = Framed::parse(&bytes);
        }
    }
}
