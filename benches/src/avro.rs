//! Avro record values for `produce --avro-schema-id N`: Confluent wire
//! format (magic byte 0, the 4-byte schema id, Avro binary) of [`SCHEMA`],
//! for topics projected with `iceberg.mode=value_schema_id_prefix`.
//!
//! The schema's first field is the 8-byte creation stamp (a `fixed`), so
//! the stamp sits at [`STAMP_AT`] and restamping stays an in-place write.
//! The other fields are the same in every record; the last one, a string,
//! pads the value to `--record-size`. Register the schema printed by
//! `floe-load avro-schema` under `<topic>-value` and pass the id it gets.

use std::sync::OnceLock;

use anyhow::bail;

/// The value schema (register it, then produce with its id).
pub const SCHEMA: &str = r#"{"type":"record","name":"Load","namespace":"floe_load","fields":[
  {"name":"stamp","type":{"type":"fixed","name":"Stamp","size":8}},
  {"name":"id","type":"long"},
  {"name":"at","type":{"type":"long","logicalType":"timestamp-millis"}},
  {"name":"user_id","type":"long"},
  {"name":"session_id","type":"long"},
  {"name":"duration_ms","type":"int"},
  {"name":"price","type":"double"},
  {"name":"score","type":"double"},
  {"name":"url","type":"string"},
  {"name":"user_agent","type":"string"},
  {"name":"address","type":{"type":"record","name":"Address","fields":[
    {"name":"street","type":"string"},
    {"name":"city","type":"string"},
    {"name":"zip","type":"string"}]}},
  {"name":"tags","type":{"type":"array","items":"string"}},
  {"name":"note","type":["null","string"]},
  {"name":"description","type":"string"}]}"#;

/// Where the creation stamp starts in a value: after the 5-byte header.
pub const STAMP_AT: usize = 5;

static SCHEMA_ID: OnceLock<u32> = OnceLock::new();

/// Makes every value built from now on an Avro value with schema `id`.
pub fn enable(id: u32) {
    let _ = SCHEMA_ID.set(id);
}

/// The schema id values are framed with, when Avro values are on.
pub fn schema_id() -> Option<u32> {
    SCHEMA_ID.get().copied()
}

fn long(v: i64, out: &mut Vec<u8>) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    while z >= 0x80 {
        out.push((z as u8 & 0x7f) | 0x80);
        z >>= 7;
    }
    out.push(z as u8);
}

fn string(s: &str, out: &mut Vec<u8>) {
    long(s.len() as i64, out);
    out.extend_from_slice(s.as_bytes());
}

/// A value of exactly `size` bytes for schema `id`, stamp zero.
pub fn value(id: u32, size: usize) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(size);
    out.push(0);
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&[0; 8]); // stamp
    long(1_234_567, &mut out); // id
    long(1_700_000_000_123, &mut out); // at
    long(42_424, &mut out); // user_id
    long(-7_046_029_254_386_353_131, &mut out); // session_id
    long(1_250, &mut out); // duration_ms
    out.extend_from_slice(&19.99f64.to_le_bytes()); // price
    out.extend_from_slice(&0.8125f64.to_le_bytes()); // score
    string(
        "https://shop.example.com/cart/checkout?item=73112",
        &mut out,
    );
    string(
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0",
        &mut out,
    );
    string("17 harbour street", &mut out); // address.street
    string("Lisbon", &mut out); // address.city
    string("01100", &mut out); // address.zip
    long(3, &mut out); // tags: one block of 3
    for tag in ["mobile", "express", "gift"] {
        string(tag, &mut out);
    }
    long(0, &mut out); // end of the array
    long(1, &mut out); // note: the string branch
    string("leave at the door", &mut out);
    // description: n bytes plus its length, filling the rest.
    let rest = size.saturating_sub(out.len());
    let Some(n) = (0..=rest).rev().find(|n| {
        let mut prefix = Vec::new();
        long(*n as i64, &mut prefix);
        n + prefix.len() == rest
    }) else {
        bail!(
            "--record-size must be at least {} with --avro-schema-id",
            out.len() + 1
        );
    };
    let filler: String = (0..n)
        .map(|i| char::from(b"the quick brown fox jumps over a lazy dog "[i % 42]))
        .collect();
    string(&filler, &mut out);
    debug_assert_eq!(out.len(), size);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_have_the_asked_size() {
        for size in [300, 1024, 4096] {
            let v = value(9, size).unwrap();
            assert_eq!(v.len(), size);
            assert_eq!(&v[..5], &[0, 0, 0, 0, 9]);
        }
        assert!(value(9, 100).is_err());
    }
}
