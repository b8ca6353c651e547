//! Produce-time schema validation cost per record (`broker::registry`):
//! `Schemas::check_records` over one uncompressed batch of 64 records of
//! about 1 KiB, for Avro and Protobuf values, in `id` mode (wire header +
//! registered id) and `full` mode (the payload decoded with its schema).
//! `framing` is the same walk with no check turned on: batch CRC32C and the
//! record parse that every mode pays; a topic without validation pays none
//! of it.
//!
//! Throughput is in records, so criterion prints records per second; the
//! time per record is the batch time / 64.

use std::hint::black_box;
use std::sync::Weak;

use broker::log::{BatchBuilder, Compression};
use broker::registry::{Schemas, Validation};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use schemas::SchemaType;
use schemas::log::{Record, SchemaValue};

const RECORDS: usize = 64;
const AVRO_ID: u32 = 1;
const PROTO_ID: u32 = 2;

const AVRO_SCHEMA: &str = r#"{"type":"record","name":"Order","namespace":"bench","fields":[
  {"name":"id","type":"long"},
  {"name":"customer","type":"string"},
  {"name":"items","type":{"type":"array","items":{"type":"record","name":"Item","fields":[
    {"name":"sku","type":"string"},{"name":"qty","type":"int"},{"name":"price","type":"double"}]}}},
  {"name":"created_ms","type":"long"}]}"#;

const PROTO_SCHEMA: &str = r#"syntax = "proto3";
package bench;
import "google/protobuf/timestamp.proto";
message Order {
  int64 id = 1;
  string customer = 2;
  repeated Item items = 3;
  google.protobuf.Timestamp created_at = 4;
}
message Item {
  string sku = 1;
  int32 qty = 2;
  double price = 3;
}
"#;

/// Items per record: about 1 KiB of value in either format.
const AVRO_ITEMS: usize = 40;
const PROTO_ITEMS: usize = 34;

fn zigzag(v: i64, out: &mut Vec<u8>) {
    varint(((v << 1) ^ (v >> 63)) as u64, out);
}

fn varint(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn avro_string(s: &str, out: &mut Vec<u8>) {
    zigzag(s.len() as i64, out);
    out.extend_from_slice(s.as_bytes());
}

fn avro_value(i: usize) -> Vec<u8> {
    let mut out = vec![0];
    out.extend_from_slice(&AVRO_ID.to_be_bytes());
    zigzag(i as i64, &mut out);
    avro_string(&format!("customer-{i:08}"), &mut out);
    zigzag(AVRO_ITEMS as i64, &mut out); // one block of items
    for n in 0..AVRO_ITEMS {
        avro_string(&format!("sku-{i:06}-{n:04}"), &mut out);
        zigzag((n % 7) as i64 + 1, &mut out);
        out.extend_from_slice(&(n as f64 * 1.25).to_le_bytes());
    }
    zigzag(0, &mut out); // end of array
    zigzag(1_700_000_000_000 + i as i64, &mut out);
    out
}

fn proto_field(tag: u32, bytes: &[u8], out: &mut Vec<u8>) {
    varint(u64::from(tag << 3 | 2), out);
    varint(bytes.len() as u64, out);
    out.extend_from_slice(bytes);
}

fn proto_value(i: usize) -> Vec<u8> {
    let mut out = vec![0];
    out.extend_from_slice(&PROTO_ID.to_be_bytes());
    out.push(0); // message index shortcut: the first message, Order
    out.push(1 << 3); // id
    varint(i as u64, &mut out);
    proto_field(2, format!("customer-{i:08}").as_bytes(), &mut out);
    for n in 0..PROTO_ITEMS {
        let mut item = Vec::new();
        proto_field(1, format!("sku-{i:06}-{n:04}").as_bytes(), &mut item);
        item.push(2 << 3);
        varint((n % 7) as u64 + 1, &mut item);
        item.push(3 << 3 | 1);
        item.extend_from_slice(&(n as f64 * 1.25).to_le_bytes());
        proto_field(3, &item, &mut out);
    }
    let mut ts = vec![1 << 3];
    varint(1_700_000_000 + i as u64, &mut ts);
    proto_field(4, &ts, &mut out);
    out
}

fn register(schemas: &Schemas, subject: &str, id: u32, schema_type: SchemaType, schema: &str) {
    let (key, value) = Record::Schema {
        subject: subject.into(),
        version: 1,
        value: Some(SchemaValue {
            subject: subject.into(),
            version: 1,
            id,
            schema_type,
            references: vec![],
            schema: schema.into(),
            deleted: false,
        }),
    }
    .encode();
    schemas
        .registry()
        .apply_record(i64::from(id), &key, value.as_deref())
        .unwrap();
}

fn batch(value: impl Fn(usize) -> Vec<u8>) -> Vec<u8> {
    let mut b = BatchBuilder::new(Compression::None);
    for i in 0..RECORDS {
        b.push(1_700_000_000_000 + i as i64, None, Some(&value(i)), &[]);
    }
    b.build().unwrap()
}

fn bench(c: &mut Criterion) {
    let schemas = Schemas::new(Weak::new());
    register(&schemas, "a-value", AVRO_ID, SchemaType::Avro, AVRO_SCHEMA);
    register(
        &schemas,
        "p-value",
        PROTO_ID,
        SchemaType::Protobuf,
        PROTO_SCHEMA,
    );
    for value in [avro_value(0), proto_value(0)] {
        assert!((950..=1100).contains(&value.len()), "{} bytes", value.len());
    }
    let formats = [
        ("avro", batch(avro_value)),
        ("protobuf", batch(proto_value)),
    ];
    let modes = [
        (
            "framing",
            Validation {
                key: false,
                value: false,
                full: false,
            },
        ),
        (
            "id",
            Validation {
                key: false,
                value: true,
                full: false,
            },
        ),
        (
            "full",
            Validation {
                key: false,
                value: true,
                full: true,
            },
        ),
    ];
    let mut group = c.benchmark_group("schema_validation");
    group.throughput(Throughput::Elements(RECORDS as u64));
    for (format, records) in &formats {
        for (mode, rules) in modes {
            // Every record must pass, or the bench measures the error path.
            assert_eq!(
                schemas.check_records(rules, records),
                Ok(()),
                "{format}/{mode}"
            );
            group.bench_function(format!("{format}/{mode}"), |b| {
                b.iter(|| black_box(schemas.check_records(rules, black_box(records))))
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
