//! Avro: schema mapping, values into Arrow, bad payloads, references.

use super::*;

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
