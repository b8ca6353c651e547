//! JSON Schema: schema mapping, values into Arrow, values that do not fit.

use super::*;

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
