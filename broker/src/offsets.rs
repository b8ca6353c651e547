//! Committed consumer offsets, stored as records of `__consumer_offsets`.
//!
//! Key: `u16 version (1)`, group, topic (each `u16` length + UTF-8), `i32`
//! partition. Value: `u16 version (1)`, `i64` offset, `i32` leader epoch,
//! `i64` commit time, metadata (`i32` length, -1 = null, + UTF-8). A null
//! value is a tombstone (DeleteGroups). Records are written uncompressed.

use std::collections::HashMap;

/// One committed offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    pub offset: i64,
    pub leader_epoch: i32,
    pub commit_ms: i64,
    pub metadata: Option<String>,
}

/// Offsets of the groups of one shard: group -> (topic, partition) -> offset.
pub type OffsetMap = HashMap<String, HashMap<(String, i32), Committed>>;

fn put_str(out: &mut Vec<u8>, s: &str) {
    let bytes = &s.as_bytes()[..s.len().min(u16::MAX as usize)];
    out.extend_from_slice(&(bytes.len() as u16).to_be_bytes());
    out.extend_from_slice(bytes);
}

pub fn encode_key(group: &str, topic: &str, partition: i32) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + group.len() + topic.len());
    out.extend_from_slice(&1u16.to_be_bytes());
    put_str(&mut out, group);
    put_str(&mut out, topic);
    out.extend_from_slice(&partition.to_be_bytes());
    out
}

pub fn encode_value(c: &Committed) -> Vec<u8> {
    let mut out = Vec::with_capacity(32);
    out.extend_from_slice(&1u16.to_be_bytes());
    out.extend_from_slice(&c.offset.to_be_bytes());
    out.extend_from_slice(&c.leader_epoch.to_be_bytes());
    out.extend_from_slice(&c.commit_ms.to_be_bytes());
    match &c.metadata {
        None => out.extend_from_slice(&(-1i32).to_be_bytes()),
        Some(m) => {
            out.extend_from_slice(&(m.len() as i32).to_be_bytes());
            out.extend_from_slice(m.as_bytes());
        }
    }
    out
}

struct Cursor<'a> {
    b: &'a [u8],
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.b.len() < n {
            return None;
        }
        let (head, tail) = self.b.split_at(n);
        self.b = tail;
        Some(head)
    }
    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_be_bytes([b[0], b[1]]))
    }
    fn i32(&mut self) -> Option<i32> {
        self.take(4)
            .map(|b| i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn i64(&mut self) -> Option<i64> {
        self.take(8).map(|b| {
            let mut a = [0u8; 8];
            a.copy_from_slice(b);
            i64::from_be_bytes(a)
        })
    }
    fn str16(&mut self) -> Option<String> {
        let n = self.u16()? as usize;
        String::from_utf8(self.take(n)?.to_vec()).ok()
    }
}

pub fn decode_key(key: &[u8]) -> Option<(String, String, i32)> {
    let mut c = Cursor { b: key };
    if c.u16()? != 1 {
        return None;
    }
    Some((c.str16()?, c.str16()?, c.i32()?))
}

pub fn decode_value(value: &[u8]) -> Option<Committed> {
    let mut c = Cursor { b: value };
    if c.u16()? != 1 {
        return None;
    }
    let offset = c.i64()?;
    let leader_epoch = c.i32()?;
    let commit_ms = c.i64()?;
    let len = c.i32()?;
    let metadata = if len < 0 {
        None
    } else {
        Some(String::from_utf8(c.take(len as usize)?.to_vec()).ok()?)
    };
    Some(Committed {
        offset,
        leader_epoch,
        commit_ms,
        metadata,
    })
}

/// Applies one stored record to the map.
pub fn apply(map: &mut OffsetMap, key: &[u8], value: Option<&[u8]>) {
    let Some((group, topic, partition)) = decode_key(key) else {
        tracing::warn!("skipping an unreadable __consumer_offsets key");
        return;
    };
    match value {
        Some(v) => match decode_value(v) {
            Some(c) => {
                map.entry(group).or_default().insert((topic, partition), c);
            }
            None => {
                tracing::warn!(%group, %topic, partition, "skipping an unreadable offset value")
            }
        },
        None => {
            if let Some(g) = map.get_mut(&group) {
                g.remove(&(topic, partition));
                if g.is_empty() {
                    map.remove(&group);
                }
            }
        }
    }
}

fn varint(b: &[u8], pos: &mut usize) -> Option<i64> {
    let mut raw: u64 = 0;
    for shift in (0..64).step_by(7) {
        let byte = *b.get(*pos)?;
        *pos += 1;
        raw |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(((raw >> 1) as i64) ^ -((raw & 1) as i64));
        }
    }
    None
}

fn nullable<'a>(b: &'a [u8], pos: &mut usize) -> Option<Option<&'a [u8]>> {
    let len = varint(b, pos)?;
    if len < 0 {
        return Some(None);
    }
    let end = pos.checked_add(usize::try_from(len).ok()?)?;
    let out = b.get(*pos..end)?;
    *pos = end;
    Some(Some(out))
}

/// A record's key and value (`None` = null).
pub type KeyValue<'a> = (Option<&'a [u8]>, Option<&'a [u8]>);

/// The (key, value) pairs of the records section of an uncompressed batch
/// written by the broker itself. Stops at the first malformed record.
pub fn key_values(records: &[u8]) -> Vec<KeyValue<'_>> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < records.len() {
        let Some(len) = varint(records, &mut pos) else {
            break;
        };
        let Ok(len) = usize::try_from(len) else { break };
        let Some(end) = pos.checked_add(len).filter(|e| *e <= records.len()) else {
            break;
        };
        let rec = &records[pos..end];
        pos = end;
        let mut p = 1; // attributes
        if varint(rec, &mut p).is_none() || varint(rec, &mut p).is_none() {
            break; // timestamp delta, offset delta
        }
        let Some(key) = nullable(rec, &mut p) else {
            break;
        };
        let Some(value) = nullable(rec, &mut p) else {
            break;
        };
        out.push((key, value));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_tombstones_remove() {
        let c = Committed {
            offset: 42,
            leader_epoch: 0,
            commit_ms: 7,
            metadata: Some("m".into()),
        };
        let key = encode_key("g", "t", 3);
        assert_eq!(decode_key(&key), Some(("g".into(), "t".into(), 3)));
        let mut map = OffsetMap::new();
        apply(&mut map, &key, Some(&encode_value(&c)));
        assert_eq!(map["g"][&("t".to_string(), 3)], c);
        apply(&mut map, &key, None);
        assert!(map.is_empty());
        assert_eq!(decode_value(&[0, 1, 2]), None);
    }
}
