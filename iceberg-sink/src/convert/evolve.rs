//! Schema evolution: the table schema that holds both the rows already
//! written and values of a wanted schema, with the field ids of existing
//! columns kept.
//!
//! Columns are matched by name, recursively (struct fields, list elements,
//! map keys and values). Rules:
//! - a wanted column the table lacks is appended (optional, fresh ids above
//!   the table's highest id);
//! - a table column the wanted schema lacks stays (old rows have it; new
//!   rows get nulls), and is made optional if it was required;
//! - types are promoted as Iceberg allows: int -> long, float -> double,
//!   decimal(p, s) -> decimal(p', s) with p' > p;
//! - a table column that already holds the wanted type (long for a wanted
//!   int, double for float, a wider decimal) stays as it is: records of
//!   older schema versions keep arriving after the table moved on;
//! - required-ness is never tightened: a wanted required column over an
//!   optional one stays optional; a wanted optional column over a required
//!   one makes it optional;
//! - anything else (string vs int, struct vs list, decimal scale, fixed
//!   length, timestamp vs timestamptz, ...) is refused.

use std::sync::Arc;

use iceberg::spec::{
    ListType, MapType, NestedField, NestedFieldRef, PrimitiveType, Schema, StructType, Type,
};

/// Why a table schema cannot hold a wanted schema.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EvolveError {
    /// The column's type cannot change into (or hold) the wanted type.
    #[error("column {column} is {current} in the table and cannot hold {wanted}")]
    IncompatibleType {
        column: String,
        current: String,
        wanted: String,
    },
    /// iceberg-rust refused the evolved schema.
    #[error("invalid evolved schema")]
    InvalidSchema {
        #[source]
        source: iceberg::Error,
    },
}

/// The evolved schema, or `None` when `current` already holds `wanted`'s
/// values. The result's schema id is `current`'s plus one.
pub fn evolve(current: &Schema, wanted: &Schema) -> Result<Option<Schema>, EvolveError> {
    let mut next_id = current.highest_field_id() + 1;
    let mut changed = false;
    let fields = merge_fields(
        current.as_struct().fields(),
        wanted.as_struct().fields(),
        "",
        &mut next_id,
        &mut changed,
    )?;
    if !changed {
        return Ok(None);
    }
    Schema::builder()
        .with_schema_id(current.schema_id() + 1)
        .with_fields(fields)
        .with_identifier_field_ids(current.identifier_field_ids())
        .build()
        .map(Some)
        .map_err(|source| EvolveError::InvalidSchema { source })
}

fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_owned()
    } else {
        format!("{path}.{name}")
    }
}

fn merge_fields(
    current: &[NestedFieldRef],
    wanted: &[NestedFieldRef],
    path: &str,
    next_id: &mut i32,
    changed: &mut bool,
) -> Result<Vec<NestedFieldRef>, EvolveError> {
    let mut merged = Vec::with_capacity(current.len());
    for field in current {
        let want = wanted.iter().find(|w| w.name == field.name);
        merged.push(merge_field(
            field,
            want,
            &join(path, &field.name),
            next_id,
            changed,
        )?);
    }
    // New columns get ids level by level, like a table created from them.
    let added: Vec<&NestedFieldRef> = wanted
        .iter()
        .filter(|w| !current.iter().any(|c| c.name == w.name))
        .collect();
    if !added.is_empty() {
        *changed = true;
        let ids: Vec<i32> = added.iter().map(|_| take_id(next_id)).collect();
        for (field, id) in added.into_iter().zip(ids) {
            let field_type = fresh_type(&field.field_type, next_id);
            let mut new = NestedField::new(id, &field.name, field_type, false);
            new.doc = field.doc.clone();
            merged.push(Arc::new(new));
        }
    }
    Ok(merged)
}

fn merge_field(
    field: &NestedFieldRef,
    wanted: Option<&NestedFieldRef>,
    path: &str,
    next_id: &mut i32,
    changed: &mut bool,
) -> Result<NestedFieldRef, EvolveError> {
    // Missing from the wanted schema, or optional there: new rows may be null.
    let required = field.required && wanted.is_some_and(|w| w.required);
    let field_type = match wanted {
        Some(w) => merge_type(&field.field_type, &w.field_type, path, next_id, changed)?,
        None => (*field.field_type).clone(),
    };
    if required == field.required && field_type == *field.field_type {
        return Ok(field.clone());
    }
    *changed = true;
    let mut merged = (**field).clone();
    merged.required = required;
    merged.field_type = Box::new(field_type);
    Ok(Arc::new(merged))
}

fn merge_type(
    current: &Type,
    wanted: &Type,
    path: &str,
    next_id: &mut i32,
    changed: &mut bool,
) -> Result<Type, EvolveError> {
    let refuse = || EvolveError::IncompatibleType {
        column: path.to_owned(),
        current: describe(current),
        wanted: describe(wanted),
    };
    match (current, wanted) {
        (Type::Primitive(c), Type::Primitive(w)) => {
            Ok(Type::Primitive(merge_primitive(c, w).ok_or_else(refuse)?))
        }
        (Type::Struct(c), Type::Struct(w)) => {
            let fields = merge_fields(c.fields(), w.fields(), path, next_id, changed)?;
            Ok(Type::Struct(StructType::new(fields)))
        }
        (Type::List(c), Type::List(w)) => {
            let element = merge_field(
                &c.element_field,
                Some(&w.element_field),
                &join(path, "element"),
                next_id,
                changed,
            )?;
            Ok(Type::List(ListType::new(element)))
        }
        (Type::Map(c), Type::Map(w)) => {
            let key = merge_field(
                &c.key_field,
                Some(&w.key_field),
                &join(path, "key"),
                next_id,
                changed,
            )?;
            let value = merge_field(
                &c.value_field,
                Some(&w.value_field),
                &join(path, "value"),
                next_id,
                changed,
            )?;
            Ok(Type::Map(MapType::new(key, value)))
        }
        _ => Err(refuse()),
    }
}

/// The column type that holds both; `None` when Iceberg cannot get there.
fn merge_primitive(current: &PrimitiveType, wanted: &PrimitiveType) -> Option<PrimitiveType> {
    use PrimitiveType::{Decimal, Double, Float, Int, Long};
    match (current, wanted) {
        (c, w) if c == w => Some(c.clone()),
        (Int, Long) => Some(Long),
        (Long, Int) => Some(Long),
        (Float, Double) => Some(Double),
        (Double, Float) => Some(Double),
        (
            Decimal {
                precision: pc,
                scale: sc,
            },
            Decimal {
                precision: pw,
                scale: sw,
            },
        ) if sc == sw => Some(Decimal {
            precision: (*pc).max(*pw),
            scale: *sc,
        }),
        _ => None,
    }
}

fn describe(t: &Type) -> String {
    match t {
        Type::Primitive(p) => p.to_string(),
        Type::Struct(_) => "struct".to_owned(),
        Type::List(_) => "list".to_owned(),
        Type::Map(_) => "map".to_owned(),
    }
}

fn take_id(next_id: &mut i32) -> i32 {
    let id = *next_id;
    *next_id += 1;
    id
}

/// `t` with fresh ids for everything nested in it.
fn fresh_type(t: &Type, next_id: &mut i32) -> Type {
    match t {
        Type::Primitive(_) => t.clone(),
        Type::Struct(s) => {
            let ids: Vec<i32> = s.fields().iter().map(|_| take_id(next_id)).collect();
            let fields = s
                .fields()
                .iter()
                .zip(ids)
                .map(|(f, id)| {
                    let mut new = (**f).clone();
                    new.id = id;
                    new.field_type = Box::new(fresh_type(&f.field_type, next_id));
                    Arc::new(new)
                })
                .collect();
            Type::Struct(StructType::new(fields))
        }
        Type::List(l) => {
            let mut element = (*l.element_field).clone();
            element.id = take_id(next_id);
            element.field_type = Box::new(fresh_type(&l.element_field.field_type, next_id));
            Type::List(ListType::new(Arc::new(element)))
        }
        Type::Map(m) => {
            let mut key = (*m.key_field).clone();
            key.id = take_id(next_id);
            key.field_type = Box::new(fresh_type(&m.key_field.field_type, next_id));
            let mut value = (*m.value_field).clone();
            value.id = take_id(next_id);
            value.field_type = Box::new(fresh_type(&m.value_field.field_type, next_id));
            Type::Map(MapType::new(Arc::new(key), Arc::new(value)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema(fields: Vec<NestedField>) -> Schema {
        Schema::builder()
            .with_fields(fields.into_iter().map(Arc::new))
            .build()
            .unwrap()
    }

    fn p(t: PrimitiveType) -> Type {
        Type::Primitive(t)
    }

    fn decimal(precision: u32, scale: u32) -> Type {
        p(PrimitiveType::Decimal { precision, scale })
    }

    fn refused(current: Type, wanted: Type) -> String {
        let current = schema(vec![NestedField::optional(1, "c", current)]);
        let wanted = schema(vec![NestedField::optional(1, "c", wanted)]);
        evolve(&current, &wanted).unwrap_err().to_string()
    }

    fn promoted(current: Type, wanted: Type) -> Option<Type> {
        let current = schema(vec![NestedField::optional(1, "c", current)]);
        let wanted = schema(vec![NestedField::optional(7, "c", wanted)]);
        evolve(&current, &wanted).unwrap().map(|s| {
            let field = s.field_by_name("c").unwrap();
            assert_eq!(field.id, 1);
            (*field.field_type).clone()
        })
    }

    #[test]
    fn promotions_keep_ids() {
        use PrimitiveType::*;
        assert_eq!(promoted(p(Int), p(Long)), Some(p(Long)));
        assert_eq!(promoted(p(Float), p(Double)), Some(p(Double)));
        assert_eq!(
            promoted(decimal(9, 2), decimal(12, 2)),
            Some(decimal(12, 2))
        );
        // The table already holds the wanted values: nothing to do.
        assert_eq!(promoted(p(Long), p(Int)), None);
        assert_eq!(promoted(p(Double), p(Float)), None);
        assert_eq!(promoted(decimal(12, 2), decimal(9, 2)), None);
        assert_eq!(promoted(p(Date), p(Date)), None);
    }

    #[test]
    fn incompatible_changes_are_refused() {
        use PrimitiveType::*;
        assert_eq!(
            refused(p(Int), p(String)),
            "column c is int in the table and cannot hold string"
        );
        assert!(refused(decimal(9, 2), decimal(12, 3)).contains("decimal(9, 2)"));
        assert!(refused(p(Int), p(Double)).contains("cannot hold double"));
        assert!(refused(p(Timestamptz), p(Timestamp)).contains("timestamptz"));
        assert!(refused(p(Fixed(4)), p(Fixed(8))).contains("fixed(4)"));
        let nested = Type::Struct(StructType::new(vec![Arc::new(NestedField::optional(
            2,
            "x",
            p(Long),
        ))]));
        let narrowed = Type::Struct(StructType::new(vec![Arc::new(NestedField::optional(
            2,
            "x",
            p(Boolean),
        ))]));
        assert_eq!(
            refused(nested.clone(), narrowed),
            "column c.x is long in the table and cannot hold boolean"
        );
        assert!(refused(nested, p(Long)).contains("struct"));
    }

    #[test]
    fn new_fields_are_optional_with_fresh_ids_and_dropped_ones_stay() {
        use PrimitiveType::*;
        let line = |fields: Vec<NestedField>| {
            Type::List(ListType::new(Arc::new(NestedField::list_element(
                3,
                Type::Struct(StructType::new(fields.into_iter().map(Arc::new).collect())),
                false,
            ))))
        };
        let current = schema(vec![
            NestedField::required(1, "id", p(Long)),
            NestedField::optional(
                2,
                "lines",
                line(vec![NestedField::optional(4, "sku", p(String))]),
            ),
            NestedField::required(5, "gone", p(Int)),
        ]);
        let wanted = schema(vec![
            NestedField::required(1, "id", p(Long)),
            NestedField::optional(
                2,
                "lines",
                line(vec![
                    NestedField::optional(4, "sku", p(String)),
                    NestedField::optional(5, "qty", p(Int)),
                ]),
            ),
            NestedField::required(
                6,
                "addr",
                Type::Struct(StructType::new(vec![
                    Arc::new(NestedField::required(7, "city", p(String))),
                    Arc::new(NestedField::optional(
                        8,
                        "tags",
                        Type::List(ListType::new(Arc::new(NestedField::list_element(
                            9,
                            p(String),
                            false,
                        )))),
                    )),
                ])),
            ),
        ]);
        let evolved = evolve(&current, &wanted).unwrap().unwrap();
        assert_eq!(evolved.schema_id(), current.schema_id() + 1);
        let id = |name: &str| evolved.field_id_by_name(name);
        assert_eq!(id("id"), Some(1));
        assert_eq!(id("lines.element.sku"), Some(4));
        assert_eq!(id("lines.element.qty"), Some(6));
        assert_eq!(id("addr"), Some(7));
        assert_eq!(id("addr.city"), Some(8));
        assert_eq!(id("addr.tags"), Some(9));
        assert_eq!(id("addr.tags.element"), Some(10));
        assert!(!evolved.field_by_name("addr").unwrap().required);
        assert!(!evolved.field_by_name("lines.element.qty").unwrap().required);
        // Still there, now optional: new rows have no value for it.
        let gone = evolved.field_by_name("gone").unwrap();
        assert_eq!((gone.id, gone.required), (5, false));
        assert!(evolved.field_by_name("id").unwrap().required);
        // Applying the same wanted schema again changes nothing.
        assert!(evolve(&evolved, &wanted).unwrap().is_none());
    }
}
