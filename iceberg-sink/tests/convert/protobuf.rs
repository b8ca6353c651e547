//! Protobuf: schema mapping, values into Arrow, bad payloads.

use super::*;

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
