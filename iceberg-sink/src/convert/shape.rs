//! The format-neutral shape of a value schema, and the Iceberg schemas of
//! the table kinds built from it.
//!
//! Field ids are assigned the way iceberg-rust reassigns them when a table
//! is created (from 1, every field of a struct before the fields nested in
//! it), so a schema built here is the schema a new table gets.

use std::sync::Arc;

use iceberg::spec::{
    ListType, MapType, NestedField, NestedFieldRef, PrimitiveType, Schema, StructType, Type,
};

use super::ConvertError;

/// Name of the struct column with the Kafka coordinates of each row.
pub const KAFKA_COLUMN: &str = "kafka";
/// Name of the raw value column (`key_value` mode and DLQ tables), and of the
/// single column a value schema that is not a record maps to.
pub const VALUE_COLUMN: &str = "value";
/// Name of the DLQ table's column with why the record was not decoded.
pub const REASON_COLUMN: &str = "reason";

/// What a value schema node becomes in Iceberg.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Shape {
    Bool,
    Int,
    Long,
    Float,
    Double,
    Decimal {
        precision: u32,
        scale: u32,
    },
    Date,
    Time,
    Timestamp,
    Timestamptz,
    String,
    Binary,
    Fixed(u64),
    /// Elements are optional.
    List(Box<Shape>),
    /// Keys are required, values optional.
    Map(Box<Shape>, Box<Shape>),
    Struct(Vec<ShapeField>),
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ShapeField {
    pub name: String,
    pub shape: Shape,
    pub required: bool,
}

impl ShapeField {
    /// Value fields are always optional (see the module docs of `convert`).
    pub(crate) fn optional(name: impl Into<String>, shape: Shape) -> ShapeField {
        ShapeField {
            name: name.into(),
            shape,
            required: false,
        }
    }

    fn required(name: &str, shape: Shape) -> ShapeField {
        ShapeField {
            name: name.to_owned(),
            shape,
            required: true,
        }
    }
}

/// The `kafka` column's struct.
fn kafka_shape() -> Shape {
    Shape::Struct(vec![
        ShapeField::required("partition", Shape::Int),
        ShapeField::required("offset", Shape::Long),
        ShapeField::optional("timestamp", Shape::Timestamptz),
        ShapeField::optional("timestamp_type", Shape::Int),
        ShapeField::optional("key", Shape::Binary),
        ShapeField::optional(
            "headers",
            Shape::List(Box::new(Shape::Struct(vec![
                ShapeField::required("key", Shape::String),
                ShapeField::optional("value", Shape::Binary),
            ]))),
        ),
    ])
}

/// Top-level column names for a record value's fields: a field that clashes
/// with `kafka` (ignoring case, since many engines resolve names that way)
/// gets `_` appended until it is unique.
pub(crate) fn top_level_names<'a>(names: impl Iterator<Item = &'a str>) -> Vec<String> {
    let names: Vec<&str> = names.collect();
    let taken = |candidate: &str| {
        candidate.eq_ignore_ascii_case(KAFKA_COLUMN)
            || names.iter().any(|n| n.eq_ignore_ascii_case(candidate))
    };
    names
        .iter()
        .map(|name| {
            let mut candidate = (*name).to_owned();
            if candidate.eq_ignore_ascii_case(KAFKA_COLUMN) {
                candidate.push('_');
                while taken(&candidate) {
                    candidate.push('_');
                }
            }
            candidate
        })
        .collect()
}

/// The table schema for a value of `shape`: `kafka` plus the record's
/// fields, or `kafka` plus one `value` column for a non-record value.
pub(crate) fn value_table(shape: Option<Shape>) -> Result<Schema, ConvertError> {
    let mut fields = vec![ShapeField::required(KAFKA_COLUMN, kafka_shape())];
    match shape {
        Some(Shape::Struct(value_fields)) => {
            let names = top_level_names(value_fields.iter().map(|f| f.name.as_str()));
            for (field, name) in value_fields.into_iter().zip(names) {
                fields.push(ShapeField { name, ..field });
            }
        }
        Some(shape) => fields.push(ShapeField::optional(VALUE_COLUMN, shape)),
        None => {}
    }
    build(fields)
}

/// `kafka` plus `value binary`.
pub fn key_value_schema() -> Schema {
    build(vec![
        ShapeField::required(KAFKA_COLUMN, kafka_shape()),
        ShapeField::optional(VALUE_COLUMN, Shape::Binary),
    ])
    .expect("the key_value schema is valid")
}

/// The `<topic>~dlq` table: `kafka`, `value binary`, `reason string`.
pub fn dlq_schema() -> Schema {
    build(vec![
        ShapeField::required(KAFKA_COLUMN, kafka_shape()),
        ShapeField::optional(VALUE_COLUMN, Shape::Binary),
        ShapeField::optional(REASON_COLUMN, Shape::String),
    ])
    .expect("the dlq schema is valid")
}

fn build(fields: Vec<ShapeField>) -> Result<Schema, ConvertError> {
    let mut next_id = 1;
    let fields = struct_fields(&fields, &mut next_id);
    Schema::builder()
        .with_fields(fields)
        .build()
        .map_err(|source| ConvertError::InvalidSchema { source })
}

/// Ids for every field of the struct first, then for what is nested in each.
pub(crate) fn struct_fields(fields: &[ShapeField], next_id: &mut i32) -> Vec<NestedFieldRef> {
    let ids: Vec<i32> = fields
        .iter()
        .map(|_| {
            let id = *next_id;
            *next_id += 1;
            id
        })
        .collect();
    fields
        .iter()
        .zip(ids)
        .map(|(field, id)| {
            let field_type = iceberg_type(&field.shape, next_id);
            Arc::new(NestedField::new(
                id,
                &field.name,
                field_type,
                field.required,
            ))
        })
        .collect()
}

fn iceberg_type(shape: &Shape, next_id: &mut i32) -> Type {
    let primitive = |p: PrimitiveType| Type::Primitive(p);
    match shape {
        Shape::Bool => primitive(PrimitiveType::Boolean),
        Shape::Int => primitive(PrimitiveType::Int),
        Shape::Long => primitive(PrimitiveType::Long),
        Shape::Float => primitive(PrimitiveType::Float),
        Shape::Double => primitive(PrimitiveType::Double),
        Shape::Decimal { precision, scale } => primitive(PrimitiveType::Decimal {
            precision: *precision,
            scale: *scale,
        }),
        Shape::Date => primitive(PrimitiveType::Date),
        Shape::Time => primitive(PrimitiveType::Time),
        Shape::Timestamp => primitive(PrimitiveType::Timestamp),
        Shape::Timestamptz => primitive(PrimitiveType::Timestamptz),
        Shape::String => primitive(PrimitiveType::String),
        Shape::Binary => primitive(PrimitiveType::Binary),
        Shape::Fixed(n) => primitive(PrimitiveType::Fixed(*n)),
        Shape::List(item) => {
            let id = *next_id;
            *next_id += 1;
            let item = iceberg_type(item, next_id);
            Type::List(ListType::new(Arc::new(NestedField::list_element(
                id, item, false,
            ))))
        }
        Shape::Map(key, value) => {
            let key_id = *next_id;
            *next_id += 1;
            let key = iceberg_type(key, next_id);
            let value_id = *next_id;
            *next_id += 1;
            let value = iceberg_type(value, next_id);
            Type::Map(MapType::new(
                Arc::new(NestedField::map_key_element(key_id, key)),
                Arc::new(NestedField::map_value_element(value_id, value, false)),
            ))
        }
        Shape::Struct(fields) => Type::Struct(StructType::new(struct_fields(fields, next_id))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafka_clash_is_renamed() {
        let names = ["id", "Kafka", "kafka_"];
        assert_eq!(
            top_level_names(names.iter().copied()),
            vec!["id", "Kafka__", "kafka_"]
        );
    }

    #[test]
    fn key_value_ids_are_level_order() {
        let schema = key_value_schema();
        assert_eq!(schema.field_id_by_name("kafka"), Some(1));
        assert_eq!(schema.field_id_by_name("value"), Some(2));
        assert_eq!(schema.field_id_by_name("kafka.partition"), Some(3));
        assert_eq!(schema.field_id_by_name("kafka.headers"), Some(8));
        assert_eq!(schema.field_id_by_name("kafka.headers.element"), Some(9));
        assert_eq!(
            schema.field_id_by_name("kafka.headers.element.key"),
            Some(10)
        );
        assert_eq!(schema.highest_field_id(), 11);
    }
}
