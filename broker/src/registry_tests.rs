use std::sync::Weak;

use schemas::log::{Record, SchemaValue};
use schemas::wire::{SchemaId, encode_header};

use super::*;

const AVRO_RECORD: &str = r#"{"type":"record","name":"R","fields":[{"name":"a","type":"string"}]}"#;

fn schema_record(subject: &str, version: i32, id: u32, schema: &str) -> (Vec<u8>, Option<Vec<u8>>) {
    Record::Schema {
        subject: subject.into(),
        version,
        value: Some(SchemaValue {
            subject: subject.into(),
            version,
            id,
            schema_type: schemas::SchemaType::Avro,
            references: vec![],
            schema: schema.into(),
            deleted: false,
        }),
    }
    .encode()
}

/// A registry that knows schema id 1 (an Avro record with one string field).
fn loaded() -> Schemas {
    let schemas = Schemas::new(Weak::new());
    let (key, value) = schema_record("t-value", 1, 1, AVRO_RECORD);
    schemas
        .registry()
        .apply_record(0, &key, value.as_deref())
        .unwrap();
    schemas
}

fn framed(id: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    encode_header(SchemaId(id), &mut out);
    out.extend_from_slice(payload);
    out
}

/// Avro binary of `{"a": "hi"}`: zigzag length 2, then the bytes.
const GOOD_AVRO: &[u8] = &[0x04, b'h', b'i'];
/// A string length of 8 with one byte behind it.
const BAD_AVRO: &[u8] = &[0x10, b'h'];

fn batch(codec: Compression, records: &[offsets::KeyValue<'_>]) -> Vec<u8> {
    let mut builder = BatchBuilder::new(codec);
    for (key, value) in records {
        builder.push(1_700_000_000_000, *key, *value, &[]);
    }
    builder.build().unwrap()
}

const VALUE_ID: Validation = Validation {
    key: false,
    value: true,
    full: false,
};

#[test]
fn registered_ids_pass_and_others_are_named_per_record() {
    let schemas = loaded();
    let good = framed(1, GOOD_AVRO);
    let unknown = framed(9, GOOD_AVRO);
    let ok = batch(Compression::None, &[(None, Some(&good)), (None, None)]);
    assert_eq!(schemas.check_records(VALUE_ID, &ok), Ok(()));

    let mixed = batch(
        Compression::None,
        &[
            (None, Some(&good)),
            (None, Some(b"raw bytes")),
            (None, Some(&unknown)),
        ],
    );
    let rejected = schemas.check_records(VALUE_ID, &mixed).unwrap_err();
    let indexes: Vec<i32> = rejected.records.iter().map(|(i, _)| *i).collect();
    assert_eq!(indexes, [1, 2]);
    assert!(
        rejected.records[0].1.contains("not schema-framed"),
        "{rejected:?}"
    );
    assert!(
        rejected.records[1].1.contains("schema id 9"),
        "{rejected:?}"
    );
    assert!(
        rejected.message.starts_with("2 of 3 records"),
        "{rejected:?}"
    );
}

#[test]
fn compressed_batches_and_later_batches_are_checked() {
    let schemas = loaded();
    let good = framed(1, GOOD_AVRO);
    let mut records = batch(
        Compression::Lz4,
        &[(None, Some(&good)), (None, Some(&good))],
    );
    records.extend(batch(
        Compression::Zstd,
        &[(None, Some(&good)), (None, Some(b"\x01nope"))],
    ));
    let rejected = schemas.check_records(VALUE_ID, &records).unwrap_err();
    assert_eq!(rejected.records.len(), 1);
    assert_eq!(rejected.records[0].0, 3, "index counts across batches");
    assert!(rejected.records[0].1.contains("magic"), "{rejected:?}");
}

#[test]
fn keys_are_checked_only_when_asked() {
    let schemas = loaded();
    let good = framed(1, GOOD_AVRO);
    let records = batch(Compression::None, &[(Some(b"plain key"), Some(&good))]);
    assert_eq!(schemas.check_records(VALUE_ID, &records), Ok(()));
    let keys = Validation {
        key: true,
        value: true,
        full: false,
    };
    let rejected = schemas.check_records(keys, &records).unwrap_err();
    assert!(rejected.records[0].1.starts_with("key "), "{rejected:?}");
}

#[test]
fn full_mode_decodes_the_payload() {
    let schemas = loaded();
    let good = framed(1, GOOD_AVRO);
    let bad = framed(1, BAD_AVRO);
    let records = batch(
        Compression::None,
        &[(None, Some(&good)), (None, Some(&bad))],
    );
    assert_eq!(schemas.check_records(VALUE_ID, &records), Ok(()));
    let full = Validation {
        full: true,
        ..VALUE_ID
    };
    let rejected = schemas.check_records(full, &records).unwrap_err();
    assert_eq!(rejected.records.len(), 1);
    assert_eq!(rejected.records[0].0, 1);
    assert!(
        rejected.records[0]
            .1
            .contains("does not decode with schema 1"),
        "{rejected:?}"
    );
}

#[test]
fn malformed_batches_are_left_to_the_partition() {
    let schemas = loaded();
    let mut records = batch(Compression::None, &[(None, Some(b"raw"))]);
    let last = records.len() - 1;
    records[last] ^= 0xff; // CRC no longer matches
    assert_eq!(schemas.check_records(VALUE_ID, &records), Ok(()));
    assert_eq!(schemas.check_records(VALUE_ID, &records[..20]), Ok(()));
}

#[test]
fn replay_skips_broken_records_and_names_their_offsets() {
    let schemas = Schemas::new(Weak::new());
    let (k1, v1) = schema_record("a-value", 1, 1, AVRO_RECORD);
    let (k2, v2) = schema_record("b-value", 1, 2, r#""string""#);
    let mut chunk = BatchBuilder::new(Compression::None).base_offset(10);
    chunk.push(0, Some(&k1), v1.as_deref(), &[]);
    chunk.push(0, Some(b"not json"), Some(b"{}"), &[]);
    chunk.push(0, None, Some(b"{}"), &[]);
    let mut bytes = chunk.build().unwrap();
    // A second batch whose CRC is broken: skipped whole, by base offset.
    let mut corrupt = BatchBuilder::new(Compression::None).base_offset(13);
    corrupt.push(0, Some(&k2), v2.as_deref(), &[]);
    let mut corrupt = corrupt.build().unwrap();
    let last = corrupt.len() - 1;
    corrupt[last] ^= 0x55;
    bytes.extend(&corrupt);
    // A third, compressed, that applies.
    let mut good = BatchBuilder::new(Compression::Gzip).base_offset(14);
    good.push(0, Some(&k2), v2.as_deref(), &[]);
    bytes.extend(good.build().unwrap());

    let mut summary = LoadSummary::default();
    assert_eq!(schemas.apply_chunk(&bytes, &mut summary), Some(15));
    assert_eq!(summary.applied, 2);
    assert_eq!(summary.skipped, [11, 12, 13]);
    assert!(schemas.registry().contains_id(1));
    assert!(schemas.registry().contains_id(2));
    assert!(!schemas.registry().contains_id(3));
    assert_eq!(schemas.apply_chunk(&bytes[..30], &mut summary), None);
}

#[test]
fn appends_fail_cleanly_without_a_broker() {
    let schemas = Schemas::new(Weak::new());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let request = schemas::SchemaRequest {
        schema: r#""string""#.into(),
        ..Default::default()
    };
    let err = rt
        .block_on(schemas.registry().register("s", request, false))
        .unwrap_err();
    assert!(matches!(err, schemas::RegistryError::Store { .. }), "{err}");
    assert!(!schemas.registry().contains_id(1));
}
