//! Schema evolution across value schema versions.

use super::*;

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
