//! JSON Schema: the Iceberg shape of a schema document, and a decoder that
//! parses the payload with serde_json and writes it into the columns.
//! Anything the mapping cannot type precisely is kept as JSON text.

use arrow_schema::{DataType, Fields, TimeUnit};
use chrono::{DateTime, NaiveDate};
use serde_json::Value;

use super::column::{Bad, Column};
use super::shape::{Shape, ShapeField};
use super::{RootColumns, fits, match_fields};

/// What a schema node's documents become.
#[derive(Debug, Clone, PartialEq)]
enum Kind {
    /// Only `null` is allowed: no column.
    Null,
    Bool,
    Long,
    Double,
    String,
    Timestamptz,
    Date,
    /// The value's JSON text.
    Text,
    List(Box<Kind>),
    /// Properties in name order.
    Object(Vec<(String, Kind)>),
}

fn is_null_schema(node: &Value) -> bool {
    node.get("type").and_then(Value::as_str) == Some("null")
}

fn kind(node: &Value, root: &Value, refs: &mut Vec<String>) -> Kind {
    let Value::Object(map) = node else {
        // `true`, `false` or malformed: anything goes.
        return Kind::Text;
    };
    if let Some(reference) = map.get("$ref").and_then(Value::as_str) {
        // Local references only; another document's or a cycle: text.
        let Some(pointer) = reference.strip_prefix('#') else {
            return Kind::Text;
        };
        if refs.iter().any(|r| r == reference) {
            return Kind::Text;
        }
        let Some(target) = root.pointer(pointer) else {
            return Kind::Text;
        };
        refs.push(reference.to_owned());
        let resolved = kind(target, root, refs);
        refs.pop();
        return resolved;
    }
    for combinator in ["oneOf", "anyOf"] {
        if let Some(Value::Array(variants)) = map.get(combinator) {
            let rest: Vec<&Value> = variants.iter().filter(|v| !is_null_schema(v)).collect();
            return match rest.as_slice() {
                [] => Kind::Null,
                [only] => kind(only, root, refs),
                _ => Kind::Text,
            };
        }
    }
    if let Some(Value::Array(all)) = map.get("allOf") {
        return match all.as_slice() {
            [only] => kind(only, root, refs),
            _ => Kind::Text,
        };
    }
    let mut types: Vec<&str> = match map.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    let declared = !types.is_empty();
    types.retain(|t| *t != "null");
    if types.is_empty() {
        if declared {
            return Kind::Null;
        }
        if map.contains_key("properties") {
            types.push("object");
        } else if map.contains_key("items") {
            types.push("array");
        } else if map
            .get("enum")
            .and_then(Value::as_array)
            .is_some_and(|e| !e.is_empty() && e.iter().all(Value::is_string))
        {
            types.push("string");
        }
    }
    types.sort_unstable();
    types.dedup();
    match types.as_slice() {
        ["object"] => {
            let Some(Value::Object(properties)) = map.get("properties") else {
                return Kind::Text;
            };
            let mut names: Vec<&String> = properties.keys().collect();
            names.sort();
            let fields: Vec<(String, Kind)> = names
                .into_iter()
                .map(|name| (name.clone(), kind(&properties[name], root, refs)))
                .filter(|(_, k)| *k != Kind::Null)
                .collect();
            if fields.is_empty() {
                return Kind::Text;
            }
            Kind::Object(fields)
        }
        ["array"] => {
            let item = match map.get("items") {
                Some(items @ Value::Object(_)) => kind(items, root, refs),
                _ => Kind::Text,
            };
            match item {
                Kind::Null => Kind::List(Box::new(Kind::Text)),
                item => Kind::List(Box::new(item)),
            }
        }
        ["string"] => match map.get("format").and_then(Value::as_str) {
            Some("date-time") => Kind::Timestamptz,
            Some("date") => Kind::Date,
            _ => Kind::String,
        },
        ["integer"] => Kind::Long,
        ["number"] | ["integer", "number"] => Kind::Double,
        ["boolean"] => Kind::Bool,
        _ => Kind::Text,
    }
}

fn shape_of(kind: &Kind) -> Option<Shape> {
    Some(match kind {
        Kind::Null => return None,
        Kind::Bool => Shape::Bool,
        Kind::Long => Shape::Long,
        Kind::Double => Shape::Double,
        Kind::String | Kind::Text => Shape::String,
        Kind::Timestamptz => Shape::Timestamptz,
        Kind::Date => Shape::Date,
        Kind::List(item) => Shape::List(Box::new(shape_of(item)?)),
        Kind::Object(fields) => Shape::Struct(
            fields
                .iter()
                .filter_map(|(name, k)| shape_of(k).map(|s| ShapeField::optional(name, s)))
                .collect(),
        ),
    })
}

/// The shape of the schema's documents.
pub(crate) fn shape(schema: &Value) -> Result<Option<Shape>, String> {
    Ok(shape_of(&kind(schema, schema, &mut Vec::new())))
}

#[derive(Debug)]
enum Op {
    Bool,
    Long,
    Double,
    String,
    Timestamptz,
    Date,
    Text,
    List(Box<Op>),
    Object(ObjectPlan),
}

#[derive(Debug)]
struct ObjectPlan {
    /// Property name, op, column.
    fields: Vec<(String, Op, usize)>,
    missing: Vec<usize>,
}

/// The compiled decoder for one JSON Schema and one table layout.
#[derive(Debug)]
pub(crate) struct Plan {
    root: RootPlan,
}

#[derive(Debug)]
enum RootPlan {
    Fields(ObjectPlan),
    Value(Op, usize),
    Nothing,
}

impl Plan {
    pub(crate) fn compile(schema: &Value, root: &RootColumns<'_>) -> Result<Plan, String> {
        let root_plan = match kind(schema, schema, &mut Vec::new()) {
            Kind::Null => RootPlan::Nothing,
            Kind::Object(fields) => {
                RootPlan::Fields(compile_object(&fields, root.fields, Some(root))?)
            }
            other => {
                let column = root.value_column()?;
                RootPlan::Value(compile(&other, root.fields[column].data_type())?, column)
            }
        };
        Ok(Plan { root: root_plan })
    }

    pub(crate) fn decode(&self, payload: &[u8], columns: &mut [Column]) -> Result<(), Bad> {
        let document: Value =
            serde_json::from_slice(payload).map_err(|e| Bad::new(format!("invalid JSON: {e}")))?;
        match &self.root {
            RootPlan::Fields(plan) => match &document {
                Value::Object(_) => write_object(plan, &document, columns),
                other => Err(Bad::new(format!(
                    "expected an object, got {}",
                    type_name(other)
                ))),
            },
            RootPlan::Value(op, column) => write(op, &document, &mut columns[*column]),
            RootPlan::Nothing => Ok(()),
        }
    }
}

fn compile_object(
    fields: &[(String, Kind)],
    target: &Fields,
    root: Option<&RootColumns<'_>>,
) -> Result<ObjectPlan, String> {
    let named: Vec<(String, bool)> = fields
        .iter()
        .map(|(name, k)| (name.clone(), shape_of(k).is_some()))
        .collect();
    let (columns, missing) = match root {
        Some(root) => root.match_names(&named)?,
        None => {
            let names: Vec<String> = named.iter().map(|(n, _)| n.clone()).collect();
            match_fields(target, &names, &named, None)?
        }
    };
    let mut ops = Vec::new();
    for ((name, k), column) in fields.iter().zip(columns) {
        let Some(column) = column else { continue };
        let op = compile(k, target[column].data_type()).map_err(|e| format!("{name}: {e}"))?;
        ops.push((name.clone(), op, column));
    }
    Ok(ObjectPlan {
        fields: ops,
        missing,
    })
}

fn compile(kind: &Kind, data_type: &DataType) -> Result<Op, String> {
    let dt = Some(data_type);
    Ok(match kind {
        Kind::Null => return Err("null has no column".to_owned()),
        Kind::Bool => {
            fits(dt, |d| *d == DataType::Boolean, "boolean")?;
            Op::Bool
        }
        Kind::Long => {
            fits(dt, |d| *d == DataType::Int64, "integer")?;
            Op::Long
        }
        Kind::Double => {
            fits(dt, |d| *d == DataType::Float64, "number")?;
            Op::Double
        }
        Kind::String | Kind::Text => {
            fits(dt, |d| *d == DataType::Utf8, "string")?;
            if *kind == Kind::Text {
                Op::Text
            } else {
                Op::String
            }
        }
        Kind::Timestamptz => {
            fits(
                dt,
                |d| {
                    matches!(
                        d,
                        DataType::Timestamp(TimeUnit::Microsecond | TimeUnit::Nanosecond, Some(_))
                    )
                },
                "date-time",
            )?;
            Op::Timestamptz
        }
        Kind::Date => {
            fits(dt, |d| *d == DataType::Date32, "date")?;
            Op::Date
        }
        Kind::List(item) => match dt {
            Some(DataType::List(field)) => Op::List(Box::new(compile(item, field.data_type())?)),
            _ => {
                return Err(format!("array does not fit column type {}", data_type));
            }
        },
        Kind::Object(fields) => match dt {
            Some(DataType::Struct(target)) => Op::Object(compile_object(fields, target, None)?),
            _ => {
                return Err(format!("object does not fit column type {}", data_type));
            }
        },
    })
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn expected(what: &str, value: &Value) -> Bad {
    Bad::new(format!("expected {what}, got {}", type_name(value)))
}

fn write_object(plan: &ObjectPlan, object: &Value, columns: &mut [Column]) -> Result<(), Bad> {
    for (name, op, column) in &plan.fields {
        let column = &mut columns[*column];
        match object.get(name) {
            Some(value) => write(op, value, column),
            None => column.push_null(),
        }
        .map_err(|e| e.at(name))?;
    }
    for &i in &plan.missing {
        let column = &mut columns[i];
        let name = column.field().name().clone();
        column.push_null().map_err(|e| e.at(&name))?;
    }
    Ok(())
}

/// Days since 1970-01-01 of a `YYYY-MM-DD` date.
fn epoch_days(text: &str) -> Option<i32> {
    let date = NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()?;
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1)?;
    i32::try_from(date.signed_duration_since(epoch).num_days()).ok()
}

fn write(op: &Op, value: &Value, column: &mut Column) -> Result<(), Bad> {
    if value.is_null() {
        return column.push_null();
    }
    match op {
        Op::Bool => column.push_bool(
            value
                .as_bool()
                .ok_or_else(|| expected("a boolean", value))?,
        ),
        Op::Long => {
            let long = value.as_i64().or_else(|| {
                value
                    .as_f64()
                    .filter(|f| f.fract() == 0.0 && *f >= -(2f64.powi(63)) && *f < 2f64.powi(63))
                    .map(|f| f as i64)
            });
            match long {
                Some(long) => column.push_i64(long),
                None if value.is_number() => Err(Bad::new(format!(
                    "{value} is not an integer that fits a long"
                ))),
                None => Err(expected("an integer", value)),
            }
        }
        Op::Double => column.push_f64(value.as_f64().ok_or_else(|| expected("a number", value))?),
        Op::String => column.push_str(value.as_str().ok_or_else(|| expected("a string", value))?),
        Op::Text => column.push_str(&value.to_string()),
        Op::Timestamptz => {
            let text = value
                .as_str()
                .ok_or_else(|| expected("a date-time string", value))?;
            let time = DateTime::parse_from_rfc3339(text)
                .map_err(|e| Bad::new(format!("date-time {text:?}: {e}")))?;
            column.push_micros(time.timestamp_micros())
        }
        Op::Date => {
            let text = value
                .as_str()
                .ok_or_else(|| expected("a date string", value))?;
            let days =
                epoch_days(text).ok_or_else(|| Bad::new(format!("invalid date {text:?}")))?;
            column.push_i32(days)
        }
        Op::List(item_op) => {
            let items = value
                .as_array()
                .ok_or_else(|| expected("an array", value))?;
            let item = column.list_item()?;
            for value in items {
                write(item_op, value, item)?;
            }
            column.end_list()
        }
        Op::Object(plan) => {
            if !value.is_object() {
                return Err(expected("an object", value));
            }
            write_object(plan, value, column.begin_struct()?)
        }
    }
}
