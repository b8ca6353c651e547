//! The `iceberg.partition.spec` topic config.
//!
//! Redpanda's syntax: a comma list, optionally inside parentheses, of
//! `col`, `identity(col)`, `year(col)`, `month(col)`, `day(col)`,
//! `hour(col)`, `bucket(N, col)` and `truncate(W, col)`. A column may be a
//! nested path such as `kafka.timestamp`. `()` is an unpartitioned table.
//!
//! ```
//! use iceberg::spec::{NestedField, PrimitiveType, Schema, Type};
//! use iceberg_sink::partition_spec::parse_partition_spec;
//! let schema = Schema::builder()
//!     .with_fields(vec![
//!         NestedField::required(1, "ts", Type::Primitive(PrimitiveType::Timestamptz)).into(),
//!     ])
//!     .build()
//!     .unwrap();
//! let spec = parse_partition_spec("(day(ts))", &schema).unwrap();
//! assert_eq!(spec.fields()[0].name, "ts_day");
//! ```

use iceberg::spec::{Schema, Transform, Type, UnboundPartitionSpec};

/// The spec of a topic that sets none: one partition per hour of record time.
pub const DEFAULT_PARTITION_SPEC: &str = "(hour(kafka.timestamp))";

/// An `iceberg.partition.spec` value that cannot be used with the schema.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PartitionSpecError {
    #[error("partition spec {spec:?}: {reason}")]
    Syntax { spec: String, reason: String },
    #[error("partition spec {spec:?}: unknown transform {name:?}")]
    UnknownTransform { spec: String, name: String },
    #[error("partition spec {spec:?}: {transform} needs {expected}, got {got:?}")]
    InvalidNumber {
        spec: String,
        transform: String,
        expected: &'static str,
        got: String,
    },
    #[error("partition spec {spec:?}: no column {column:?} in the table schema")]
    UnknownColumn { spec: String, column: String },
    #[error("partition spec {spec:?}: column {column:?} is inside a list or map")]
    NestedInCollection { spec: String, column: String },
    #[error(
        "partition spec {spec:?}: {transform} does not apply to column {column:?} of type {column_type}"
    )]
    TransformNotApplicable {
        spec: String,
        column: String,
        transform: String,
        column_type: String,
    },
    #[error("partition spec {spec:?}: {reason}")]
    Invalid { spec: String, reason: String },
}

/// Parses `spec` and resolves its columns against `schema`.
pub fn parse_partition_spec(
    spec: &str,
    schema: &Schema,
) -> Result<UnboundPartitionSpec, PartitionSpecError> {
    let items = parse_items(spec)?;
    let mut builder = UnboundPartitionSpec::builder();
    for item in items {
        let field = schema.field_by_name(&item.column).ok_or_else(|| {
            PartitionSpecError::UnknownColumn {
                spec: spec.to_string(),
                column: item.column.clone(),
            }
        })?;
        let not_applicable = || PartitionSpecError::TransformNotApplicable {
            spec: spec.to_string(),
            column: item.column.clone(),
            transform: item.transform.to_string(),
            column_type: field.field_type.to_string(),
        };
        if !matches!(*field.field_type, Type::Primitive(_)) {
            return Err(not_applicable());
        }
        // Only primitives reachable through structs alone have accessors.
        if schema.accessor_by_field_id(field.id).is_none() {
            return Err(PartitionSpecError::NestedInCollection {
                spec: spec.to_string(),
                column: item.column.clone(),
            });
        }
        item.transform
            .result_type(&field.field_type)
            .map_err(|_| not_applicable())?;
        builder = builder
            .add_partition_field(field.id, field_name(&item), item.transform)
            .map_err(|e| PartitionSpecError::Invalid {
                spec: spec.to_string(),
                reason: e.message().to_string(),
            })?;
    }
    Ok(builder.build())
}

/// The partition field name, as Iceberg's Java API names them, with the
/// dots of nested paths replaced by `_`: manifests are Avro, whose field
/// names cannot contain dots.
fn field_name(item: &Item) -> String {
    let column = &item.column.replace('.', "_");
    match item.transform {
        Transform::Identity => column.clone(),
        Transform::Year => format!("{column}_year"),
        Transform::Month => format!("{column}_month"),
        Transform::Day => format!("{column}_day"),
        Transform::Hour => format!("{column}_hour"),
        Transform::Bucket(_) => format!("{column}_bucket"),
        Transform::Truncate(_) => format!("{column}_trunc"),
        _ => format!("{column}_{}", item.transform),
    }
}

#[derive(Debug, PartialEq)]
struct Item {
    transform: Transform,
    column: String,
}

fn parse_items(spec: &str) -> Result<Vec<Item>, PartitionSpecError> {
    let syntax = |reason: &str| PartitionSpecError::Syntax {
        spec: spec.to_string(),
        reason: reason.to_string(),
    };
    let mut body = spec.trim();
    if let Some(rest) = body.strip_prefix('(') {
        body = rest
            .strip_suffix(')')
            .ok_or_else(|| syntax("missing closing parenthesis"))?
            .trim();
        if body.is_empty() {
            return Ok(Vec::new());
        }
    }
    if body.is_empty() {
        return Err(syntax("empty; write () for an unpartitioned table"));
    }
    split_top_level(body)
        .map_err(|reason| syntax(&reason))?
        .into_iter()
        .map(|item| parse_item(spec, item))
        .collect()
}

/// Splits at commas outside parentheses.
fn split_top_level(body: &str) -> Result<Vec<&str>, String> {
    let mut items = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, c) in body.char_indices() {
        match c {
            '(' => {
                depth += 1;
                if depth > 1 {
                    return Err("nested parentheses".into());
                }
            }
            ')' => {
                depth = depth
                    .checked_sub(1)
                    .ok_or_else(|| format!("unbalanced ')' at byte {i}"))?;
            }
            ',' if depth == 0 => {
                items.push(body[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    if depth != 0 {
        return Err("missing closing parenthesis".into());
    }
    items.push(body[start..].trim());
    if items.iter().any(|item| item.is_empty()) {
        return Err("empty item".into());
    }
    Ok(items)
}

fn parse_item(spec: &str, item: &str) -> Result<Item, PartitionSpecError> {
    let syntax = |reason: String| PartitionSpecError::Syntax {
        spec: spec.to_string(),
        reason,
    };
    let Some(open) = item.find('(') else {
        return Ok(Item {
            transform: Transform::Identity,
            column: column(item).map_err(syntax)?,
        });
    };
    let name = item[..open].trim().to_ascii_lowercase();
    let args = item[open + 1..]
        .strip_suffix(')')
        .ok_or_else(|| syntax(format!("text after ')' in {item:?}")))?;
    let args: Vec<&str> = args.split(',').map(str::trim).collect();
    let one_column = |transform: Transform| -> Result<Item, PartitionSpecError> {
        match args.as_slice() {
            [col] => Ok(Item {
                transform,
                column: column(col).map_err(syntax)?,
            }),
            _ => Err(syntax(format!("{name}() takes one column, got {item:?}"))),
        }
    };
    let number_and_column = |expected: &'static str| -> Result<(u32, String), PartitionSpecError> {
        let [n, col] = args.as_slice() else {
            return Err(syntax(format!(
                "{name}() takes a number and a column, got {item:?}"
            )));
        };
        let n = n
            .parse::<u32>()
            .ok()
            .filter(|n| *n > 0 && *n <= i32::MAX as u32)
            .ok_or_else(|| PartitionSpecError::InvalidNumber {
                spec: spec.to_string(),
                transform: name.clone(),
                expected,
                got: n.to_string(),
            })?;
        Ok((n, column(col).map_err(syntax)?))
    };
    match name.as_str() {
        "identity" => one_column(Transform::Identity),
        "year" | "years" => one_column(Transform::Year),
        "month" | "months" => one_column(Transform::Month),
        "day" | "days" => one_column(Transform::Day),
        "hour" | "hours" => one_column(Transform::Hour),
        "bucket" => {
            let (n, column) = number_and_column("a bucket count between 1 and 2147483647")?;
            Ok(Item {
                transform: Transform::Bucket(n),
                column,
            })
        }
        "truncate" => {
            let (w, column) = number_and_column("a width between 1 and 2147483647")?;
            Ok(Item {
                transform: Transform::Truncate(w),
                column,
            })
        }
        "" => Err(syntax(format!(
            "missing transform name before '(' in {item:?}"
        ))),
        _ => Err(PartitionSpecError::UnknownTransform {
            spec: spec.to_string(),
            name,
        }),
    }
}

/// A column path: dot-separated names of letters, digits, `_`, `-` or `$`.
fn column(text: &str) -> Result<String, String> {
    let text = text.trim();
    let valid_name =
        |s: &str| !s.is_empty() && s.chars().all(|c| c.is_alphanumeric() || "_-$".contains(c));
    if text.is_empty() {
        return Err("missing column name".into());
    }
    if !text.split('.').all(valid_name) {
        return Err(format!("invalid column name {text:?}"));
    }
    Ok(text.to_string())
}

#[cfg(test)]
mod tests {
    use iceberg::spec::{ListType, NestedField, PrimitiveType, StructType};

    use super::*;

    fn schema() -> Schema {
        let kafka = StructType::new(vec![
            NestedField::required(10, "partition", Type::Primitive(PrimitiveType::Int)).into(),
            NestedField::required(11, "offset", Type::Primitive(PrimitiveType::Long)).into(),
            NestedField::required(12, "timestamp", Type::Primitive(PrimitiveType::Timestamptz))
                .into(),
            NestedField::optional(13, "key", Type::Primitive(PrimitiveType::Binary)).into(),
            NestedField::optional(
                14,
                "headers",
                Type::List(ListType::new(
                    NestedField::list_element(
                        15,
                        Type::Struct(StructType::new(vec![
                            NestedField::optional(
                                16,
                                "key",
                                Type::Primitive(PrimitiveType::String),
                            )
                            .into(),
                        ])),
                        false,
                    )
                    .into(),
                )),
            )
            .into(),
        ]);
        Schema::builder()
            .with_fields(vec![
                NestedField::required(1, "kafka", Type::Struct(kafka)).into(),
                NestedField::optional(2, "name", Type::Primitive(PrimitiveType::String)).into(),
                NestedField::optional(3, "day_of", Type::Primitive(PrimitiveType::Date)).into(),
                NestedField::optional(4, "flag", Type::Primitive(PrimitiveType::Boolean)).into(),
                NestedField::optional(5, "score", Type::Primitive(PrimitiveType::Double)).into(),
            ])
            .build()
            .unwrap()
    }

    fn fields(spec: &str) -> Vec<(i32, String, Transform)> {
        parse_partition_spec(spec, &schema())
            .unwrap()
            .fields()
            .iter()
            .map(|f| (f.source_id, f.name.clone(), f.transform))
            .collect()
    }

    #[test]
    fn default_spec_is_hour_of_record_time() {
        assert_eq!(
            fields(DEFAULT_PARTITION_SPEC),
            vec![(12, "kafka_timestamp_hour".into(), Transform::Hour)]
        );
    }

    #[test]
    fn every_form() {
        assert_eq!(
            fields("name"),
            vec![(2, "name".into(), Transform::Identity)]
        );
        assert_eq!(
            fields("identity(kafka.partition)"),
            vec![(10, "kafka_partition".into(), Transform::Identity)]
        );
        assert_eq!(
            fields("(year(kafka.timestamp))"),
            vec![(12, "kafka_timestamp_year".into(), Transform::Year)]
        );
        assert_eq!(
            fields("month(day_of)"),
            vec![(3, "day_of_month".into(), Transform::Month)]
        );
        assert_eq!(
            fields("day(kafka.timestamp)"),
            vec![(12, "kafka_timestamp_day".into(), Transform::Day)]
        );
        assert_eq!(
            fields(" ( bucket( 16 , kafka.key ) , truncate(4, name), kafka.partition ) "),
            vec![
                (13, "kafka_key_bucket".into(), Transform::Bucket(16)),
                (2, "name_trunc".into(), Transform::Truncate(4)),
                (10, "kafka_partition".into(), Transform::Identity),
            ]
        );
        assert_eq!(fields("HOUR(kafka.timestamp)")[0].2, Transform::Hour);
        assert!(fields("()").is_empty());
        assert!(fields(" ( ) ").is_empty());
    }

    fn err(spec: &str) -> PartitionSpecError {
        parse_partition_spec(spec, &schema()).unwrap_err()
    }

    #[test]
    fn syntax_errors() {
        for spec in [
            "",
            "(",
            "(name",
            "name)",
            "name,",
            ",name",
            "a,,b",
            "hour(kafka.timestamp",
            "hour(kafka.timestamp))",
            "hour(kafka.timestamp) x",
            "hour((kafka.timestamp))",
            "(kafka timestamp)",
            "hour()",
            "hour(a, b)",
            "bucket(kafka.key)",
            "bucket(1, 2, kafka.key)",
            "(a..b)",
            "(.a)",
            "(name",
            "(name))",
            "(day(x)",
        ] {
            assert!(
                matches!(err(spec), PartitionSpecError::Syntax { .. }),
                "{spec:?}: {:?}",
                err(spec)
            );
        }
        assert!(matches!(
            err("(hour)(x)"),
            PartitionSpecError::Syntax { .. } | PartitionSpecError::UnknownTransform { .. }
        ));
    }

    #[test]
    fn unknown_transform() {
        let e = err("minute(kafka.timestamp)");
        assert_eq!(
            e,
            PartitionSpecError::UnknownTransform {
                spec: "minute(kafka.timestamp)".into(),
                name: "minute".into()
            }
        );
        assert!(e.to_string().contains("minute"));
    }

    #[test]
    fn bad_numbers() {
        for spec in [
            "bucket(0, name)",
            "bucket(-1, name)",
            "bucket(x, name)",
            "bucket(1.5, name)",
            "bucket(99999999999, name)",
            "truncate(0, name)",
            "truncate(, name)",
        ] {
            assert!(
                matches!(err(spec), PartitionSpecError::InvalidNumber { .. }),
                "{spec:?}: {:?}",
                err(spec)
            );
        }
    }

    #[test]
    fn unknown_columns() {
        for (spec, column) in [
            ("nope", "nope"),
            ("hour(kafka.time)", "kafka.time"),
            ("hour(timestamp)", "timestamp"),
            ("bucket(4, kafka.nope)", "kafka.nope"),
        ] {
            assert_eq!(
                err(spec),
                PartitionSpecError::UnknownColumn {
                    spec: spec.into(),
                    column: column.into()
                }
            );
        }
    }

    #[test]
    fn columns_inside_lists_are_refused() {
        assert!(matches!(
            err("kafka.headers.element.key"),
            PartitionSpecError::NestedInCollection { .. }
        ));
    }

    #[test]
    fn transforms_that_do_not_apply() {
        for spec in [
            "hour(name)",
            "day(kafka.offset)",
            "hour(day_of)",
            "year(flag)",
            "bucket(4, score)",
            "truncate(4, kafka.timestamp)",
            "truncate(4, flag)",
            "kafka",
            "identity(kafka.headers)",
            "bucket(2, kafka)",
        ] {
            let e = err(spec);
            assert!(
                matches!(e, PartitionSpecError::TransformNotApplicable { .. }),
                "{spec:?}: {e:?}"
            );
        }
        let e = err("hour(name)").to_string();
        assert!(
            e.contains("hour") && e.contains("name") && e.contains("string"),
            "{e}"
        );
    }

    #[test]
    fn duplicate_fields_are_invalid() {
        assert!(matches!(
            err("hour(kafka.timestamp), hour(kafka.timestamp)"),
            PartitionSpecError::Invalid { .. }
        ));
    }

    #[test]
    fn spec_binds_to_the_schema() {
        let schema = schema();
        let spec = parse_partition_spec("(hour(kafka.timestamp), bucket(8, name))", &schema)
            .unwrap()
            .bind(std::sync::Arc::new(schema))
            .unwrap();
        assert_eq!(spec.fields().len(), 2);
    }
}
