//! Schema mapping and row conversion through the public `convert` API:
//! values encoded by the format's own library, framed as producers frame
//! them, decoded into Arrow batches whose values are checked exactly.

use std::collections::HashMap;

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Date32Type, Decimal128Type, Float32Type, Float64Type, Int32Type, Int64Type,
    Time64MicrosecondType, TimestampMicrosecondType,
};
use arrow_array::{Array, RecordBatch, StructArray};
use iceberg::spec::{Schema, Type};
use iceberg_sink::convert::{
    ConvertError, Framing, RowBuilder, dlq_schema, key_value_schema, value_schema,
};
use iceberg_sink::{SinkHeader, SinkRecord};
use schemas::ParsedSchema;
use schemas::SchemaType;
use schemas::wire::{SchemaId, encode_header};

/// The Iceberg type tree without ids: `name: type` for optional fields,
/// `name!: type` for required ones.
fn render(t: &Type) -> String {
    match t {
        Type::Primitive(p) => p.to_string(),
        Type::Struct(s) => {
            let fields: Vec<String> = s
                .fields()
                .iter()
                .map(|f| {
                    let bang = if f.required { "!" } else { "" };
                    format!("{}{bang}: {}", f.name, render(&f.field_type))
                })
                .collect();
            format!("struct<{}>", fields.join(", "))
        }
        Type::List(l) => {
            let bang = if l.element_field.required { "!" } else { "" };
            format!("list<{}{bang}>", render(&l.element_field.field_type))
        }
        Type::Map(m) => format!(
            "map<{}, {}>",
            render(&m.key_field.field_type),
            render(&m.value_field.field_type)
        ),
    }
}

/// The value columns of a table (everything after `kafka`).
fn value_columns(schema: &Schema) -> Vec<String> {
    schema
        .as_struct()
        .fields()
        .iter()
        .filter(|f| f.name != "kafka")
        .map(|f| {
            let bang = if f.required { "!" } else { "" };
            format!("{}{bang}: {}", f.name, render(&f.field_type))
        })
        .collect()
}

const KAFKA: &str = "kafka!: struct<partition!: int, offset!: long, timestamp: timestamptz, \
     timestamp_type: int, key: binary, headers: list<struct<key!: string, value: binary>>>";

fn record<'a>(
    offset: i64,
    value: Option<&'a [u8]>,
    headers: &'a [SinkHeader<'a>],
) -> SinkRecord<'a> {
    SinkRecord {
        partition: 3,
        offset,
        timestamp_ms: 1_700_000_000_123,
        timestamp_type: 0,
        key: Some(b"k"),
        value,
        headers,
    }
}

fn framed(id: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    encode_header(SchemaId(id), &mut out);
    out.extend_from_slice(payload);
    out
}

fn column<'b>(batch: &'b RecordBatch, name: &str) -> &'b dyn Array {
    batch
        .column_by_name(name)
        .unwrap_or_else(|| panic!("no column {name}"))
        .as_ref()
}

fn child<'b>(array: &'b StructArray, name: &str) -> &'b dyn Array {
    array
        .column_by_name(name)
        .unwrap_or_else(|| panic!("no child {name}"))
        .as_ref()
}

fn field_id(batch: &RecordBatch, name: &str) -> i32 {
    batch.schema().field_with_name(name).unwrap().metadata()["PARQUET:field_id"]
        .parse()
        .unwrap()
}

// ---------------------------------------------------------------- kafka

#[test]
fn key_value_and_dlq_rows_carry_the_kafka_coordinates() {
    let schema = key_value_schema();
    assert_eq!(value_columns(&schema), vec!["value: binary"]);
    assert_eq!(
        format!(
            "kafka!: {}",
            render(&schema.as_struct().fields()[0].field_type)
        ),
        KAFKA
    );
    let mut rows = RowBuilder::new(&schema).unwrap();
    let headers = [
        SinkHeader {
            key: b"trace",
            value: Some(b"abc"),
        },
        SinkHeader {
            key: b"bad\xff",
            value: None,
        },
    ];
    rows.push_key_value(&record(10, Some(b"v1"), &headers))
        .unwrap();
    let mut tombstone = record(11, None, &[]);
    tombstone.key = None;
    tombstone.timestamp_ms = -1;
    tombstone.timestamp_type = 1;
    rows.push_key_value(&tombstone).unwrap();
    assert_eq!(rows.len(), 2);
    assert!(rows.byte_size() > 0);
    let batch = rows.finish().unwrap();
    assert!(rows.is_empty());
    assert_eq!(batch.schema(), *rows.arrow_schema());
    assert_eq!(
        field_id(&batch, "kafka"),
        schema.field_id_by_name("kafka").unwrap()
    );
    assert_eq!(
        field_id(&batch, "value"),
        schema.field_id_by_name("value").unwrap()
    );

    let kafka = column(&batch, "kafka").as_struct();
    assert_eq!(
        child(kafka, "partition")
            .as_primitive::<Int32Type>()
            .values(),
        &[3, 3]
    );
    assert_eq!(
        child(kafka, "offset").as_primitive::<Int64Type>().values(),
        &[10, 11]
    );
    let ts = child(kafka, "timestamp").as_primitive::<TimestampMicrosecondType>();
    assert_eq!(ts.value(0), 1_700_000_000_123_000);
    assert!(ts.is_null(1));
    assert_eq!(ts.timezone(), Some("+00:00"));
    assert_eq!(
        child(kafka, "timestamp_type")
            .as_primitive::<Int32Type>()
            .values(),
        &[0, 1]
    );
    let key = child(kafka, "key").as_binary::<i64>();
    assert_eq!(key.value(0), b"k");
    assert!(key.is_null(1));
    let headers = child(kafka, "headers").as_list::<i32>();
    assert_eq!(headers.value_offsets(), &[0, 2, 2]);
    let header = headers.values().as_struct();
    let keys = child(header, "key").as_string::<i32>();
    assert_eq!((keys.value(0), keys.value(1)), ("trace", "bad\u{fffd}"));
    let values = child(header, "value").as_binary::<i64>();
    assert_eq!(values.value(0), b"abc");
    assert!(values.is_null(1));
    let value = column(&batch, "value").as_binary::<i64>();
    assert_eq!(value.value(0), b"v1");
    assert!(value.is_null(1));

    let dlq = dlq_schema();
    assert_eq!(value_columns(&dlq), vec!["value: binary", "reason: string"]);
    let mut rows = RowBuilder::new(&dlq).unwrap();
    rows.push_dlq(
        &record(12, Some(b"\x00junk"), &[]),
        "avro decode: truncated",
    )
    .unwrap();
    let batch = rows.finish().unwrap();
    assert_eq!(
        column(&batch, "reason").as_string::<i32>().value(0),
        "avro decode: truncated"
    );
    assert_eq!(
        column(&batch, "value").as_binary::<i64>().value(0),
        b"\x00junk"
    );
    // A key_value table has no reason column.
    let mut rows = RowBuilder::new(&key_value_schema()).unwrap();
    assert!(rows.push_dlq(&record(1, None, &[]), "x").is_err());
    assert!(rows.is_empty());
}

// ----------------------------------------------------------------- avro

const AVRO: &str = r#"{"type":"record","name":"Order","namespace":"shop","fields":[
 {"name":"id","type":"long"},
 {"name":"qty","type":"int"},
 {"name":"ok","type":"boolean"},
 {"name":"ratio","type":"float"},
 {"name":"score","type":"double"},
 {"name":"name","type":"string"},
 {"name":"blob","type":"bytes"},
 {"name":"note","type":["null","string"],"default":null},
 {"name":"status","type":{"type":"enum","name":"Status","symbols":["NEW","DONE"]}},
 {"name":"hash","type":{"type":"fixed","name":"Hash","size":4}},
 {"name":"price","type":{"type":"bytes","logicalType":"decimal","precision":10,"scale":2}},
 {"name":"fprice","type":{"type":"fixed","name":"F8","size":8,"logicalType":"decimal","precision":18,"scale":4}},
 {"name":"day","type":{"type":"int","logicalType":"date"}},
 {"name":"at_ms","type":{"type":"long","logicalType":"timestamp-millis"}},
 {"name":"at_us","type":{"type":"long","logicalType":"timestamp-micros"}},
 {"name":"local_ms","type":{"type":"long","logicalType":"local-timestamp-millis"}},
 {"name":"t_ms","type":{"type":"int","logicalType":"time-millis"}},
 {"name":"t_us","type":{"type":"long","logicalType":"time-micros"}},
 {"name":"uid","type":{"type":"string","logicalType":"uuid"}},
 {"name":"tags","type":{"type":"array","items":"string"}},
 {"name":"attrs","type":{"type":"map","values":["null","long"]}},
 {"name":"lines","type":{"type":"array","items":{"type":"record","name":"Line","fields":[
    {"name":"sku","type":"string"},{"name":"n","type":"int"}]}}},
 {"name":"best","type":["null","Line"]},
 {"name":"choice","type":["null","int","string","Line"]},
 {"name":"Kafka","type":"string"},
 {"name":"nothing","type":"null"}
]}"#;

fn avro_schema() -> ParsedSchema {
    ParsedSchema::parse(SchemaType::Avro, AVRO, &[]).unwrap()
}

#[test]
fn avro_schema_maps_every_type() {
    let table = value_schema(&avro_schema(), &[]).unwrap();
    let line = "struct<sku: string, n: int>";
    assert_eq!(
        value_columns(&table),
        vec![
            "id: long".to_owned(),
            "qty: int".into(),
            "ok: boolean".into(),
            "ratio: float".into(),
            "score: double".into(),
            "name: string".into(),
            "blob: binary".into(),
            "note: string".into(),
            "status: string".into(),
            "hash: fixed(4)".into(),
            "price: decimal(10, 2)".into(),
            "fprice: decimal(18, 4)".into(),
            "day: date".into(),
            "at_ms: timestamptz".into(),
            "at_us: timestamptz".into(),
            "local_ms: timestamp".into(),
            "t_ms: time".into(),
            "t_us: time".into(),
            "uid: string".into(),
            "tags: list<string>".into(),
            "attrs: map<string, long>".into(),
            format!("lines: list<{line}>"),
            format!("best: {line}"),
            format!("choice: struct<int: int, string: string, Line: {line}>"),
            "Kafka_: string".into(),
        ]
    );
    assert_eq!(
        format!(
            "kafka!: {}",
            render(&table.as_struct().fields()[0].field_type)
        ),
        KAFKA
    );
    // Ids are assigned like a new table's: top-level fields first.
    assert_eq!(table.field_id_by_name("kafka"), Some(1));
    assert_eq!(table.field_id_by_name("id"), Some(2));
    assert_eq!(table.field_id_by_name("Kafka_"), Some(26));
    assert_eq!(table.field_id_by_name("kafka.partition"), Some(27));
}

#[test]
fn avro_refuses_recursion_and_wide_decimals() {
    let recursive = r#"{"type":"record","name":"Node","fields":[
        {"name":"next","type":["null","Node"]}]}"#;
    let schema = ParsedSchema::parse(SchemaType::Avro, recursive, &[]).unwrap();
    let err = value_schema(&schema, &[]).unwrap_err();
    assert!(
        matches!(err, ConvertError::UnmappableSchema { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("recursive record Node"), "{err}");
    let wide = r#"{"type":"record","name":"R","fields":[{"name":"d","type":
        {"type":"bytes","logicalType":"decimal","precision":40,"scale":2}}]}"#;
    let schema = ParsedSchema::parse(SchemaType::Avro, wide, &[]).unwrap();
    assert!(value_schema(&schema, &[]).is_err());
}

fn avro_order(id: i64, note: Option<&str>, choice: u32) -> apache_avro::types::Value {
    use apache_avro::types::Value as V;
    let line = |sku: &str, n: i32| {
        V::Record(vec![
            ("sku".into(), V::String(sku.into())),
            ("n".into(), V::Int(n)),
        ])
    };
    let choice = match choice {
        0 => V::Union(0, Box::new(V::Null)),
        1 => V::Union(1, Box::new(V::Int(7))),
        2 => V::Union(2, Box::new(V::String("seven".into()))),
        _ => V::Union(3, Box::new(line("c", 9))),
    };
    V::Record(vec![
        ("id".into(), V::Long(id)),
        ("qty".into(), V::Int(-5)),
        ("ok".into(), V::Boolean(true)),
        ("ratio".into(), V::Float(0.5)),
        ("score".into(), V::Double(-2.25)),
        ("name".into(), V::String("widget".into())),
        ("blob".into(), V::Bytes(vec![0, 1, 2])),
        (
            "note".into(),
            match note {
                Some(n) => V::Union(1, Box::new(V::String(n.into()))),
                None => V::Union(0, Box::new(V::Null)),
            },
        ),
        ("status".into(), V::Enum(1, "DONE".into())),
        ("hash".into(), V::Fixed(4, vec![9, 8, 7, 6])),
        // -123.45 as unscaled -12345, big-endian two's complement
        (
            "price".into(),
            V::Decimal((-12345i64).to_be_bytes()[5..].to_vec().into()),
        ),
        (
            "fprice".into(),
            V::Decimal(123_456_789i64.to_be_bytes().to_vec().into()),
        ),
        ("day".into(), V::Date(19_000)),
        ("at_ms".into(), V::TimestampMillis(1_700_000_000_123)),
        ("at_us".into(), V::TimestampMicros(1_700_000_000_123_456)),
        ("local_ms".into(), V::LocalTimestampMillis(86_400_000)),
        ("t_ms".into(), V::TimeMillis(3_600_000)),
        ("t_us".into(), V::TimeMicros(1_500)),
        (
            "uid".into(),
            V::Uuid("6f1c2a3e-0000-4000-8000-000000000001".parse().unwrap()),
        ),
        (
            "tags".into(),
            V::Array(vec![V::String("a".into()), V::String("b".into())]),
        ),
        (
            "attrs".into(),
            V::Map(HashMap::from([(
                "x".to_owned(),
                V::Union(1, Box::new(V::Long(1))),
            )])),
        ),
        ("lines".into(), V::Array(vec![line("s1", 1), line("s2", 2)])),
        ("best".into(), V::Union(1, Box::new(line("b", 3)))),
        ("choice".into(), choice),
        ("Kafka".into(), V::String("not the metadata".into())),
        ("nothing".into(), V::Null),
    ])
}

fn avro_payload(value: apache_avro::types::Value) -> Vec<u8> {
    let ParsedSchema::Avro(schema) = avro_schema() else {
        unreachable!()
    };
    apache_avro::to_avro_datum(schema.schema(), value).unwrap()
}

#[test]
fn avro_values_round_trip_into_arrow() {
    let parsed = avro_schema();
    let table = value_schema(&parsed, &[]).unwrap();
    let mut rows = RowBuilder::new(&table).unwrap();
    let decoder = rows
        .decoder(&parsed, &[], Framing::SchemaIdPrefix(SchemaId(7)))
        .unwrap();
    let values: Vec<Vec<u8>> = vec![
        framed(7, &avro_payload(avro_order(1, Some("hi"), 1))),
        framed(7, &avro_payload(avro_order(2, None, 2))),
        framed(7, &avro_payload(avro_order(3, None, 0))),
        framed(7, &avro_payload(avro_order(4, None, 3))),
    ];
    for (i, value) in values.iter().enumerate() {
        rows.push_value(&record(i as i64, Some(value), &[]), &decoder)
            .unwrap();
    }
    // A tombstone: a row whose value columns are null.
    rows.push_value(&record(4, None, &[]), &decoder).unwrap();
    let batch = rows.finish().unwrap();
    assert_eq!(batch.num_rows(), 5);
    assert_eq!(batch.schema(), *rows.arrow_schema());
    assert_eq!(
        field_id(&batch, "Kafka_"),
        table.field_id_by_name("Kafka_").unwrap()
    );

    let ids = column(&batch, "id").as_primitive::<Int64Type>();
    assert_eq!(ids.values(), &[1, 2, 3, 4, 0]);
    assert!(ids.is_null(4));
    assert_eq!(
        column(&batch, "qty").as_primitive::<Int32Type>().value(0),
        -5
    );
    assert!(column(&batch, "ok").as_boolean().value(0));
    assert_eq!(
        column(&batch, "ratio")
            .as_primitive::<Float32Type>()
            .value(0),
        0.5
    );
    assert_eq!(
        column(&batch, "score")
            .as_primitive::<Float64Type>()
            .value(0),
        -2.25
    );
    assert_eq!(column(&batch, "name").as_string::<i32>().value(0), "widget");
    assert_eq!(
        column(&batch, "blob").as_binary::<i64>().value(0),
        &[0, 1, 2]
    );
    let note = column(&batch, "note").as_string::<i32>();
    assert_eq!(note.value(0), "hi");
    assert!(note.is_null(1));
    assert_eq!(column(&batch, "status").as_string::<i32>().value(0), "DONE");
    assert_eq!(
        column(&batch, "hash").as_fixed_size_binary().value(0),
        &[9, 8, 7, 6]
    );
    let price = column(&batch, "price").as_primitive::<Decimal128Type>();
    assert_eq!(
        (price.value(0), price.precision(), price.scale()),
        (-12345, 10, 2)
    );
    assert_eq!(
        column(&batch, "fprice")
            .as_primitive::<Decimal128Type>()
            .value(0),
        123_456_789
    );
    assert_eq!(
        column(&batch, "day").as_primitive::<Date32Type>().value(0),
        19_000
    );
    let at_ms = column(&batch, "at_ms").as_primitive::<TimestampMicrosecondType>();
    assert_eq!(at_ms.value(0), 1_700_000_000_123_000);
    assert_eq!(at_ms.timezone(), Some("+00:00"));
    assert_eq!(
        column(&batch, "at_us")
            .as_primitive::<TimestampMicrosecondType>()
            .value(0),
        1_700_000_000_123_456
    );
    let local = column(&batch, "local_ms").as_primitive::<TimestampMicrosecondType>();
    assert_eq!((local.value(0), local.timezone()), (86_400_000_000, None));
    let t_ms = column(&batch, "t_ms").as_primitive::<Time64MicrosecondType>();
    assert_eq!(t_ms.value(0), 3_600_000_000);
    assert_eq!(
        column(&batch, "t_us")
            .as_primitive::<Time64MicrosecondType>()
            .value(0),
        1_500
    );
    assert_eq!(
        column(&batch, "uid").as_string::<i32>().value(0),
        "6f1c2a3e-0000-4000-8000-000000000001"
    );
    let tags = column(&batch, "tags").as_list::<i32>();
    assert_eq!(
        tags.value(0).as_string::<i32>().iter().collect::<Vec<_>>(),
        [Some("a"), Some("b")]
    );
    let attrs = column(&batch, "attrs").as_map();
    assert_eq!(attrs.keys().as_string::<i32>().value(0), "x");
    assert_eq!(attrs.values().as_primitive::<Int64Type>().value(0), 1);
    let lines = column(&batch, "lines").as_list::<i32>();
    assert_eq!(lines.value_offsets()[..3], [0, 2, 4]);
    let line = lines.values().as_struct();
    assert_eq!(child(line, "sku").as_string::<i32>().value(1), "s2");
    assert_eq!(child(line, "n").as_primitive::<Int32Type>().value(1), 2);
    let best = column(&batch, "best").as_struct();
    assert_eq!(child(best, "sku").as_string::<i32>().value(0), "b");
    assert!(best.is_null(4));

    let choice = column(&batch, "choice").as_struct();
    let int = child(choice, "int").as_primitive::<Int32Type>();
    let string = child(choice, "string").as_string::<i32>();
    let line = child(choice, "Line").as_struct();
    assert_eq!(
        (int.value(0), string.is_null(0), line.is_null(0)),
        (7, true, true)
    );
    assert_eq!((int.is_null(1), string.value(1)), (true, "seven"));
    assert!(choice.is_null(2));
    assert_eq!(child(line, "n").as_primitive::<Int32Type>().value(3), 9);
    assert_eq!(
        column(&batch, "Kafka_").as_string::<i32>().value(0),
        "not the metadata"
    );
    let kafka = column(&batch, "kafka").as_struct();
    assert_eq!(
        child(kafka, "offset").as_primitive::<Int64Type>().values(),
        &[0, 1, 2, 3, 4]
    );
}

#[test]
fn avro_truncated_or_garbage_payloads_add_no_row() {
    let parsed = avro_schema();
    let table = value_schema(&parsed, &[]).unwrap();
    let mut rows = RowBuilder::new(&table).unwrap();
    let decoder = rows
        .decoder(&parsed, &[], Framing::SchemaIdPrefix(SchemaId(7)))
        .unwrap();
    let good = framed(7, &avro_payload(avro_order(1, Some("hi"), 3)));
    rows.push_value(&record(0, Some(&good), &[]), &decoder)
        .unwrap();
    // Every cut of the value fails (a record that ends early, or the
    // header itself), and leaves the builder as it was.
    for cut in 0..good.len() {
        let err = rows
            .push_value(&record(1, Some(&good[..cut]), &[]), &decoder)
            .unwrap_err();
        assert!(
            matches!(err, ConvertError::BadRecord { offset: 1, .. }),
            "{err}"
        );
        assert_eq!(rows.len(), 1, "cut at {cut}");
    }
    let mut trailing = good.clone();
    trailing.push(0);
    let err = rows
        .push_value(&record(1, Some(&trailing), &[]), &decoder)
        .unwrap_err();
    assert!(err.reason().contains("trailing"), "{err}");
    // A huge string length is refused without allocating it.
    let huge = framed(7, &[0x02, 0xfe, 0xff, 0xff, 0xff, 0x0f]);
    assert!(
        rows.push_value(&record(1, Some(&huge), &[]), &decoder)
            .is_err()
    );
    let other_id = framed(8, &avro_payload(avro_order(1, None, 0)));
    let err = rows
        .push_value(&record(1, Some(&other_id), &[]), &decoder)
        .unwrap_err();
    assert!(err.reason().contains("schema id 8"), "{err}");
    assert!(
        rows.push_value(&record(1, Some(b"\x01\0\0\0\x07"), &[]), &decoder)
            .is_err()
    );
    assert_eq!(rows.len(), 1);
    rows.push_value(&record(2, Some(&good), &[]), &decoder)
        .unwrap();
    let batch = rows.finish().unwrap();
    assert_eq!(batch.num_rows(), 2);
    let lines = column(&batch, "lines").as_list::<i32>();
    assert_eq!(lines.values().len(), 4);
    assert_eq!(column(&batch, "tags").as_list::<i32>().values().len(), 4);
}

#[test]
fn avro_plain_framing_and_non_record_values() {
    let parsed = ParsedSchema::parse(SchemaType::Avro, r#""string""#, &[]).unwrap();
    let table = value_schema(&parsed, &[]).unwrap();
    assert_eq!(value_columns(&table), vec!["value: string"]);
    let mut rows = RowBuilder::new(&table).unwrap();
    let decoder = rows.decoder(&parsed, &[], Framing::Plain).unwrap();
    rows.push_value(&record(0, Some(b"\x06abc"), &[]), &decoder)
        .unwrap();
    let batch = rows.finish().unwrap();
    assert_eq!(column(&batch, "value").as_string::<i32>().value(0), "abc");
}

#[test]
#[ignore = "timing print; run with --release --ignored --nocapture"]
fn avro_throughput() {
    let parsed = avro_schema();
    let table = value_schema(&parsed, &[]).unwrap();
    let mut rows = RowBuilder::new(&table).unwrap();
    let decoder = rows
        .decoder(&parsed, &[], Framing::SchemaIdPrefix(SchemaId(7)))
        .unwrap();
    let mut order = avro_order(1, Some(&"n".repeat(600)), 3);
    if let apache_avro::types::Value::Record(fields) = &mut order {
        fields[19].1 = apache_avro::types::Value::Array(
            (0..20)
                .map(|i| apache_avro::types::Value::String(format!("tag{i}")))
                .collect(),
        );
    }
    let value = framed(7, &avro_payload(order));
    let n = 200_000;
    let start = std::time::Instant::now();
    for i in 0..n {
        rows.push_value(&record(i, Some(&value), &[]), &decoder)
            .unwrap();
        if rows.len() == 10_000 {
            rows.finish().unwrap();
        }
    }
    rows.finish().unwrap();
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{} byte records: {:.0} records/s, {:.1} MB/s",
        value.len(),
        n as f64 / secs,
        (value.len() * n as usize) as f64 / secs / 1e6
    );
}

// ------------------------------------------------------------- protobuf

const PROTO: &str = r#"syntax = "proto3";
package shop;
import "google/protobuf/timestamp.proto";
import "google/protobuf/wrappers.proto";
import "google/protobuf/struct.proto";

message Order {
  int64 id = 1;
  int32 qty = 2;
  uint32 small = 3;
  uint64 big = 4;
  sint32 delta = 5;
  float ratio = 6;
  double score = 7;
  bool ok = 8;
  string name = 9;
  bytes blob = 10;
  Status status = 11;
  google.protobuf.Timestamp at = 12;
  map<string, int64> attrs = 13;
  repeated Line lines = 14;
  repeated string tags = 15;
  google.protobuf.StringValue note = 16;
  oneof choice {
    int32 num = 17;
    string text = 18;
  }
  optional string maybe = 19;
  google.protobuf.Struct extra = 20;
  fixed64 kafka = 21;
  message Line {
    string sku = 1;
    int32 n = 2;
  }
  enum Status {
    NEW = 0;
    DONE = 1;
  }
}

message Other {
  string x = 1;
}
"#;

fn proto_schema() -> ParsedSchema {
    ParsedSchema::parse(SchemaType::Protobuf, PROTO, &[]).unwrap()
}

#[test]
fn protobuf_schema_maps_every_type() {
    let table = value_schema(&proto_schema(), &[0]).unwrap();
    assert_eq!(
        value_columns(&table),
        vec![
            "id: long",
            "qty: int",
            "small: long",
            "big: long",
            "delta: int",
            "ratio: float",
            "score: double",
            "ok: boolean",
            "name: string",
            "blob: binary",
            "status: string",
            "at: timestamptz",
            "attrs: map<string, long>",
            "lines: list<struct<sku: string, n: int>>",
            "tags: list<string>",
            "note: string",
            "num: int",
            "text: string",
            "maybe: string",
            "extra: string",
            "kafka_: long",
        ]
    );
    let other = value_schema(&proto_schema(), &[1]).unwrap();
    assert_eq!(value_columns(&other), vec!["x: string"]);
    assert!(value_schema(&proto_schema(), &[2]).is_err());
    let recursive = "syntax = \"proto3\"; message Node { Node next = 1; }";
    let schema = ParsedSchema::parse(SchemaType::Protobuf, recursive, &[]).unwrap();
    let err = value_schema(&schema, &[]).unwrap_err();
    assert!(err.to_string().contains("recursive message Node"), "{err}");
}

fn proto_order(schema: &ParsedSchema, id: i64, big: u64, full: bool) -> Vec<u8> {
    use prost_reflect::prost::Message;
    use prost_reflect::{DynamicMessage, MapKey, Value};
    let ParsedSchema::Protobuf(proto) = schema else {
        unreachable!()
    };
    let pool = proto.pool();
    let message = |name: &str| DynamicMessage::new(pool.get_message_by_name(name).unwrap());
    let mut order = message("shop.Order");
    order.set_field_by_name("id", Value::I64(id));
    order.set_field_by_name("big", Value::U64(big));
    if full {
        order.set_field_by_name("qty", Value::I32(-5));
        order.set_field_by_name("small", Value::U32(u32::MAX));
        order.set_field_by_name("delta", Value::I32(-1));
        order.set_field_by_name("ratio", Value::F32(0.5));
        order.set_field_by_name("score", Value::F64(-2.25));
        order.set_field_by_name("ok", Value::Bool(true));
        order.set_field_by_name("name", Value::String("widget".into()));
        order.set_field_by_name("blob", Value::Bytes(vec![0u8, 1, 2].into()));
        order.set_field_by_name("status", Value::EnumNumber(1));
        let mut at = message("google.protobuf.Timestamp");
        at.set_field_by_name("seconds", Value::I64(1_700_000_000));
        at.set_field_by_name("nanos", Value::I32(123_456_789));
        order.set_field_by_name("at", Value::Message(at));
        order.set_field_by_name(
            "attrs",
            Value::Map(HashMap::from([
                (MapKey::String("b".into()), Value::I64(2)),
                (MapKey::String("a".into()), Value::I64(1)),
            ])),
        );
        let line = |sku: &str, n: i32| {
            let mut line = message("shop.Order.Line");
            line.set_field_by_name("sku", Value::String(sku.into()));
            line.set_field_by_name("n", Value::I32(n));
            Value::Message(line)
        };
        order.set_field_by_name("lines", Value::List(vec![line("s1", 1), line("s2", 2)]));
        order.set_field_by_name("tags", Value::List(vec![Value::String("t".into())]));
        let mut note = message("google.protobuf.StringValue");
        note.set_field_by_name("value", Value::String("hi".into()));
        order.set_field_by_name("note", Value::Message(note));
        order.set_field_by_name("text", Value::String("seven".into()));
        order.set_field_by_name("maybe", Value::String(String::new()));
        let mut number = message("google.protobuf.Value");
        number.set_field_by_name("number_value", Value::F64(1.5));
        let mut extra = message("google.protobuf.Struct");
        extra.set_field_by_name(
            "fields",
            Value::Map(HashMap::from([(
                MapKey::String("n".into()),
                Value::Message(number),
            )])),
        );
        order.set_field_by_name("extra", Value::Message(extra));
        order.set_field_by_name("kafka", Value::U64(5));
    }
    order.encode_to_vec()
}

#[test]
fn protobuf_values_round_trip_into_arrow() {
    let parsed = proto_schema();
    let table = value_schema(&parsed, &[0]).unwrap();
    let mut rows = RowBuilder::new(&table).unwrap();
    let decoder = rows
        .decoder(&parsed, &[0], Framing::SchemaIdPrefix(SchemaId(9)))
        .unwrap();
    // The usual framing (message index shortcut 0), then a producer that
    // writes no message indexes at all.
    let mut with_index = vec![0u8];
    with_index.extend(proto_order(&parsed, 1, 42, true));
    let first = framed(9, &with_index);
    let second = framed(9, &proto_order(&parsed, 2, 0, false));
    rows.push_value(&record(0, Some(&first), &[]), &decoder)
        .unwrap();
    rows.push_value(&record(1, Some(&second), &[]), &decoder)
        .unwrap();
    let batch = rows.finish().unwrap();
    assert_eq!(batch.num_rows(), 2);
    assert_eq!(batch.schema(), *rows.arrow_schema());

    assert_eq!(
        column(&batch, "id").as_primitive::<Int64Type>().values(),
        &[1, 2]
    );
    // Scalars without presence read as their defaults when absent.
    assert_eq!(
        column(&batch, "qty").as_primitive::<Int32Type>().values(),
        &[-5, 0]
    );
    assert!(!column(&batch, "qty").is_null(1));
    assert_eq!(
        column(&batch, "small").as_primitive::<Int64Type>().value(0),
        i64::from(u32::MAX)
    );
    assert_eq!(
        column(&batch, "big").as_primitive::<Int64Type>().value(0),
        42
    );
    assert_eq!(
        column(&batch, "delta").as_primitive::<Int32Type>().value(0),
        -1
    );
    assert_eq!(
        column(&batch, "ratio")
            .as_primitive::<Float32Type>()
            .value(0),
        0.5
    );
    assert_eq!(
        column(&batch, "score")
            .as_primitive::<Float64Type>()
            .value(0),
        -2.25
    );
    assert!(column(&batch, "ok").as_boolean().value(0));
    assert_eq!(column(&batch, "name").as_string::<i32>().value(0), "widget");
    assert_eq!(
        column(&batch, "blob").as_binary::<i64>().value(0),
        &[0, 1, 2]
    );
    let status = column(&batch, "status").as_string::<i32>();
    assert_eq!((status.value(0), status.value(1)), ("DONE", "NEW"));
    let at = column(&batch, "at").as_primitive::<TimestampMicrosecondType>();
    assert_eq!(at.value(0), 1_700_000_000_123_456);
    assert!(at.is_null(1));
    let attrs = column(&batch, "attrs").as_map();
    assert_eq!(attrs.value_offsets(), &[0, 2, 2]);
    let keys: Vec<_> = attrs.keys().as_string::<i32>().iter().flatten().collect();
    assert_eq!(keys, ["a", "b"]);
    assert_eq!(attrs.values().as_primitive::<Int64Type>().values(), &[1, 2]);
    let lines = column(&batch, "lines").as_list::<i32>();
    assert_eq!(lines.value_offsets(), &[0, 2, 2]);
    let line = lines.values().as_struct();
    assert_eq!(child(line, "sku").as_string::<i32>().value(1), "s2");
    assert_eq!(
        child(line, "n").as_primitive::<Int32Type>().values(),
        &[1, 2]
    );
    assert_eq!(
        column(&batch, "tags").as_list::<i32>().value_offsets(),
        &[0, 1, 1]
    );
    let note = column(&batch, "note").as_string::<i32>();
    assert_eq!(note.value(0), "hi");
    assert!(note.is_null(1));
    let (num, text) = (
        column(&batch, "num"),
        column(&batch, "text").as_string::<i32>(),
    );
    assert!(num.is_null(0) && num.is_null(1));
    assert_eq!(text.value(0), "seven");
    let maybe = column(&batch, "maybe").as_string::<i32>();
    assert_eq!(maybe.value(0), "");
    assert!(maybe.is_null(1));
    let extra = column(&batch, "extra").as_string::<i32>();
    assert_eq!(extra.value(0), r#"{"n":1.5}"#);
    assert_eq!(
        column(&batch, "kafka_")
            .as_primitive::<Int64Type>()
            .value(0),
        5
    );
}

#[test]
fn protobuf_bad_payloads_add_no_row() {
    let parsed = proto_schema();
    let table = value_schema(&parsed, &[0]).unwrap();
    let mut rows = RowBuilder::new(&table).unwrap();
    let decoder = rows.decoder(&parsed, &[0], Framing::Plain).unwrap();
    let good = proto_order(&parsed, 1, 42, true);
    rows.push_value(&record(0, Some(&good), &[]), &decoder)
        .unwrap();
    let mut failures = 0;
    for cut in 1..good.len() {
        if rows
            .push_value(&record(1, Some(&good[..cut]), &[]), &decoder)
            .is_err()
        {
            failures += 1;
        } else {
            // A cut at a field boundary is a valid, shorter message.
            rows.push_value(&record(1, Some(&good), &[]), &decoder)
                .unwrap();
        }
    }
    assert!(
        failures > good.len() / 2,
        "{failures} of {} cuts failed",
        good.len()
    );
    let before = rows.len();
    let too_big = proto_order(&parsed, 1, u64::MAX, true);
    let err = rows
        .push_value(&record(2, Some(&too_big), &[]), &decoder)
        .unwrap_err();
    assert!(err.reason().contains("uint64"), "{err}");
    assert!(
        rows.push_value(&record(2, Some(&[0xff; 7]), &[]), &decoder)
            .is_err()
    );
    assert_eq!(rows.len(), before);
    let batch = rows.finish().unwrap();
    assert_eq!(batch.num_rows(), before);
    // Every row's map and list entries belong to successful rows only.
    let lines = column(&batch, "lines").as_list::<i32>();
    assert_eq!(
        lines.values().len(),
        *lines.value_offsets().last().unwrap() as usize
    );
    // A payload naming another message type of the file is refused.
    let mut rows = RowBuilder::new(&table).unwrap();
    let decoder = rows
        .decoder(&parsed, &[0], Framing::SchemaIdPrefix(SchemaId(9)))
        .unwrap();
    let other = framed(9, &[2, 2, 0x0a, 1, b'x']);
    assert!(
        rows.push_value(&record(3, Some(&other), &[]), &decoder)
            .is_err()
    );
    assert!(rows.is_empty());
}

// ----------------------------------------------------------------- json

const JSON: &str = r##"{"type":"object","properties":{
  "id":{"type":"integer"},
  "name":{"type":"string"},
  "score":{"type":"number"},
  "ok":{"type":"boolean"},
  "at":{"type":"string","format":"date-time"},
  "day":{"type":"string","format":"date"},
  "uid":{"type":"string","format":"uuid"},
  "note":{"type":["null","string"]},
  "tags":{"type":"array","items":{"type":"string"}},
  "addr":{"type":"object","properties":{"city":{"type":"string"},"zip":{"type":"integer"}},
          "additionalProperties":false},
  "any":{"oneOf":[{"type":"string"},{"type":"integer"}]},
  "maybe":{"oneOf":[{"type":"null"},{"type":"integer"}]},
  "free":{"type":"object"},
  "point":{"$ref":"#/definitions/Point"},
  "kafka":{"type":"string"}
 },
 "definitions":{"Point":{"type":"object","properties":{"x":{"type":"number"},"y":{"type":"number"}}}}}"##;

fn json_schema() -> ParsedSchema {
    ParsedSchema::parse(SchemaType::Json, JSON, &[]).unwrap()
}

#[test]
fn json_schema_maps_every_type() {
    let table = value_schema(&json_schema(), &[]).unwrap();
    assert_eq!(
        value_columns(&table),
        vec![
            "addr: struct<city: string, zip: long>",
            "any: string",
            "at: timestamptz",
            "day: date",
            "free: string",
            "id: long",
            "kafka_: string",
            "maybe: long",
            "name: string",
            "note: string",
            "ok: boolean",
            "point: struct<x: double, y: double>",
            "score: double",
            "tags: list<string>",
            "uid: string",
        ]
    );
}

#[test]
fn json_values_round_trip_into_arrow() {
    let parsed = json_schema();
    let table = value_schema(&parsed, &[]).unwrap();
    let mut rows = RowBuilder::new(&table).unwrap();
    let decoder = rows
        .decoder(&parsed, &[], Framing::SchemaIdPrefix(SchemaId(4)))
        .unwrap();
    let doc = serde_json::json!({
        "id": 12, "name": "widget", "score": 1.5, "ok": true,
        "at": "2023-11-14T22:13:20.123456+01:00", "day": "2024-01-02",
        "uid": "6f1c2a3e-0000-4000-8000-000000000001", "note": null,
        "tags": ["a", "b"], "addr": {"city": "Oslo", "zip": 150, "extra": 1},
        "any": 7, "maybe": 3, "free": {"k": [1, 2]}, "point": {"x": 1, "y": -2.5},
        "kafka": "mine", "unknown": "ignored"
    });
    let first = framed(4, &serde_json::to_vec(&doc).unwrap());
    let second = framed(4, br#"{"id": 13.0, "any": "seven"}"#);
    rows.push_value(&record(0, Some(&first), &[]), &decoder)
        .unwrap();
    rows.push_value(&record(1, Some(&second), &[]), &decoder)
        .unwrap();
    let batch = rows.finish().unwrap();
    assert_eq!(batch.num_rows(), 2);
    assert_eq!(batch.schema(), *rows.arrow_schema());

    assert_eq!(
        column(&batch, "id").as_primitive::<Int64Type>().values(),
        &[12, 13]
    );
    assert_eq!(column(&batch, "name").as_string::<i32>().value(0), "widget");
    assert!(column(&batch, "name").is_null(1));
    assert_eq!(
        column(&batch, "score")
            .as_primitive::<Float64Type>()
            .value(0),
        1.5
    );
    assert!(column(&batch, "ok").as_boolean().value(0));
    assert_eq!(
        column(&batch, "at")
            .as_primitive::<TimestampMicrosecondType>()
            .value(0),
        1_699_996_400_123_456
    );
    assert_eq!(
        column(&batch, "day").as_primitive::<Date32Type>().value(0),
        19_724
    );
    assert_eq!(
        column(&batch, "uid").as_string::<i32>().value(0),
        "6f1c2a3e-0000-4000-8000-000000000001"
    );
    assert!(column(&batch, "note").is_null(0));
    let tags = column(&batch, "tags").as_list::<i32>();
    assert_eq!(tags.value_offsets(), &[0, 2, 2]);
    assert!(tags.is_null(1));
    let addr = column(&batch, "addr").as_struct();
    assert_eq!(child(addr, "city").as_string::<i32>().value(0), "Oslo");
    assert_eq!(child(addr, "zip").as_primitive::<Int64Type>().value(0), 150);
    assert!(addr.is_null(1));
    let any = column(&batch, "any").as_string::<i32>();
    assert_eq!((any.value(0), any.value(1)), ("7", "\"seven\""));
    assert_eq!(
        column(&batch, "maybe").as_primitive::<Int64Type>().value(0),
        3
    );
    assert_eq!(
        column(&batch, "free").as_string::<i32>().value(0),
        r#"{"k":[1,2]}"#
    );
    let point = column(&batch, "point").as_struct();
    assert_eq!(
        child(point, "y").as_primitive::<Float64Type>().value(0),
        -2.5
    );
    assert_eq!(
        child(point, "x").as_primitive::<Float64Type>().value(0),
        1.0
    );
    assert_eq!(column(&batch, "kafka_").as_string::<i32>().value(0), "mine");
}

#[test]
fn json_values_that_do_not_fit_add_no_row() {
    let parsed = json_schema();
    let table = value_schema(&parsed, &[]).unwrap();
    let mut rows = RowBuilder::new(&table).unwrap();
    let decoder = rows.decoder(&parsed, &[], Framing::Plain).unwrap();
    for bad in [
        &br#"{"id": "twelve"}"#[..],
        br#"{"id": 1.5}"#,
        br#"{"at": "yesterday"}"#,
        br#"{"day": "2024-13-01"}"#,
        br#"{"tags": ["a", 1]}"#,
        br#"{"addr": {"zip": "x"}}"#,
        br#"{"id": 1, "name": "#,
        br#"[1, 2]"#,
        b"\xff",
    ] {
        let err = rows
            .push_value(&record(0, Some(bad), &[]), &decoder)
            .unwrap_err();
        assert!(matches!(err, ConvertError::BadRecord { .. }), "{err}");
    }
    let err = rows
        .push_value(&record(0, Some(br#"{"tags": ["a", 1]}"#), &[]), &decoder)
        .unwrap_err();
    assert_eq!(err.reason(), "field tags: expected a string, got number");
    assert!(rows.is_empty());
    rows.push_value(&record(1, Some(br#"{"tags": ["a"]}"#), &[]), &decoder)
        .unwrap();
    let batch = rows.finish().unwrap();
    assert_eq!(column(&batch, "tags").as_list::<i32>().values().len(), 1);
}

// ------------------------------------------------------------ evolution

#[test]
fn a_new_schema_version_evolves_the_table_and_old_records_still_fit() {
    use iceberg_sink::convert::evolve;
    let v1 = ParsedSchema::parse(
        SchemaType::Avro,
        r#"{"type":"record","name":"R","fields":[{"name":"a","type":"int"},
            {"name":"f","type":"float"}]}"#,
        &[],
    )
    .unwrap();
    let v2 = ParsedSchema::parse(
        SchemaType::Avro,
        r#"{"type":"record","name":"R","fields":[{"name":"a","type":"long"},
            {"name":"b","type":["null","string"],"default":null}]}"#,
        &[],
    )
    .unwrap();
    let t1 = value_schema(&v1, &[]).unwrap();
    let t2 = evolve(&t1, &value_schema(&v2, &[]).unwrap())
        .unwrap()
        .unwrap();
    assert_eq!(value_columns(&t2), vec!["a: long", "f: float", "b: string"]);
    assert_eq!(t2.field_id_by_name("a"), t1.field_id_by_name("a"));
    assert_eq!(t2.field_id_by_name("b"), Some(t1.highest_field_id() + 1));
    // Nothing to do for either version now.
    assert!(
        evolve(&t2, &value_schema(&v1, &[]).unwrap())
            .unwrap()
            .is_none()
    );
    assert!(
        evolve(&t2, &value_schema(&v2, &[]).unwrap())
            .unwrap()
            .is_none()
    );

    let mut rows = RowBuilder::new(&t2).unwrap();
    let old = rows.decoder(&v1, &[], Framing::Plain).unwrap();
    let new = rows.decoder(&v2, &[], Framing::Plain).unwrap();
    // v1: a=int -3 (zigzag 5), f=1.0; v2: a=long 1 (2), b="x".
    rows.push_value(&record(0, Some(&[5, 0, 0, 0x80, 0x3f]), &[]), &old)
        .unwrap();
    rows.push_value(&record(1, Some(&[2, 2, 2, b'x']), &[]), &new)
        .unwrap();
    let batch = rows.finish().unwrap();
    assert_eq!(
        column(&batch, "a").as_primitive::<Int64Type>().values(),
        &[-3, 1]
    );
    assert!(column(&batch, "f").is_null(1));
    assert!(column(&batch, "b").is_null(0));
    // A decoder for the old table cannot be used with the new builder, and
    // v2 does not fit the v1 table.
    let rows_v1 = RowBuilder::new(&t1).unwrap();
    assert!(matches!(
        rows_v1.decoder(&v2, &[], Framing::Plain),
        Err(ConvertError::TableMismatch { .. })
    ));
    let old_decoder = rows_v1.decoder(&v1, &[], Framing::Plain).unwrap();
    let err = rows.push_value(&record(2, Some(&[5, 0, 0, 0x80, 0x3f]), &[]), &old_decoder);
    assert!(err.is_err());
}

#[test]
fn avro_named_types_from_references_are_resolved() {
    use schemas::format::ResolvedReference;
    let line = r#"{"type":"record","name":"Line","namespace":"shop","fields":[
        {"name":"sku","type":"string"}]}"#;
    let references = [ResolvedReference {
        name: "shop.Line".into(),
        schema_type: SchemaType::Avro,
        text: line.into(),
    }];
    let main = r#"{"type":"record","name":"Order","namespace":"shop","fields":[
        {"name":"first","type":"shop.Line"},{"name":"rest","type":{"type":"array","items":"shop.Line"}}]}"#;
    let parsed = ParsedSchema::parse(SchemaType::Avro, main, &references).unwrap();
    let table = value_schema(&parsed, &[]).unwrap();
    assert_eq!(
        value_columns(&table),
        vec![
            "first: struct<sku: string>",
            "rest: list<struct<sku: string>>"
        ]
    );
    let mut rows = RowBuilder::new(&table).unwrap();
    let decoder = rows.decoder(&parsed, &[], Framing::Plain).unwrap();
    // first = {sku: "a"}, rest = [{sku: "b"}]
    rows.push_value(&record(0, Some(b"\x02a\x02\x02b\x00"), &[]), &decoder)
        .unwrap();
    let batch = rows.finish().unwrap();
    let rest = column(&batch, "rest").as_list::<i32>();
    assert_eq!(
        child(rest.values().as_struct(), "sku")
            .as_string::<i32>()
            .value(0),
        "b"
    );
}
