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

mod avro;
mod evolve;
mod json;
mod protobuf;
