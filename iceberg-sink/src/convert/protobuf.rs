//! Protobuf: the Iceberg shape of one message type, and a decoder that
//! parses with prost-reflect (`DynamicMessage`, which checks lengths against
//! the buffer and limits nesting) and writes the fields into the columns.

use arrow_schema::{DataType, Fields, TimeUnit};
use prost_reflect::{
    DynamicMessage, EnumDescriptor, FieldDescriptor, Kind, MapKey, MessageDescriptor,
    ReflectMessage, Value,
};
use schemas::protobuf::ProtoSchema;
use schemas::wire;

use super::column::{Bad, Column};
use super::shape::{Shape, ShapeField};
use super::{RootColumns, fits, match_fields, nested_fields};

/// The message type at a Confluent message-index path (`[]` is `[0]`).
pub(crate) fn message(schema: &ProtoSchema, indexes: &[i64]) -> Result<MessageDescriptor, String> {
    let indexes = if indexes.is_empty() {
        &[0][..]
    } else {
        indexes
    };
    schema
        .message_at(indexes)
        .ok_or_else(|| format!("no message type at index path {indexes:?}"))
}

/// Message types with a dedicated mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WellKnown {
    Timestamp,
    /// google.protobuf.*Value: the message's field 1.
    Wrapper,
    /// google.protobuf.Struct / Value / ListValue, stored as JSON text.
    Json,
}

fn well_known(message: &MessageDescriptor) -> Option<WellKnown> {
    match message.full_name() {
        "google.protobuf.Timestamp" => Some(WellKnown::Timestamp),
        "google.protobuf.DoubleValue"
        | "google.protobuf.FloatValue"
        | "google.protobuf.Int64Value"
        | "google.protobuf.UInt64Value"
        | "google.protobuf.Int32Value"
        | "google.protobuf.UInt32Value"
        | "google.protobuf.BoolValue"
        | "google.protobuf.StringValue"
        | "google.protobuf.BytesValue" => Some(WellKnown::Wrapper),
        "google.protobuf.Struct" | "google.protobuf.Value" | "google.protobuf.ListValue" => {
            Some(WellKnown::Json)
        }
        _ => None,
    }
}

fn wrapped(message: &MessageDescriptor) -> Result<FieldDescriptor, String> {
    message
        .get_field(1)
        .ok_or_else(|| format!("{} has no field 1", message.full_name()))
}

/// The shape of a message's values (`None`: no storable field).
pub(crate) fn shape(message: &MessageDescriptor) -> Result<Option<Shape>, String> {
    message_shape(message, &mut Vec::new())
}

fn message_shape(
    message: &MessageDescriptor,
    stack: &mut Vec<String>,
) -> Result<Option<Shape>, String> {
    match well_known(message) {
        Some(WellKnown::Timestamp) => return Ok(Some(Shape::Timestamptz)),
        Some(WellKnown::Wrapper) => return kind_shape(&wrapped(message)?.kind(), stack),
        Some(WellKnown::Json) => return Ok(Some(Shape::String)),
        None => {}
    }
    let name = message.full_name().to_owned();
    if stack.contains(&name) {
        return Err(format!("recursive message {name} cannot be a table column"));
    }
    stack.push(name);
    let mut fields = Vec::new();
    for field in message.fields() {
        if let Some(shape) =
            field_shape(&field, stack).map_err(|e| format!("{}: {e}", field.name()))?
        {
            fields.push(ShapeField::optional(field.name(), shape));
        }
    }
    stack.pop();
    Ok((!fields.is_empty()).then_some(Shape::Struct(fields)))
}

fn field_shape(field: &FieldDescriptor, stack: &mut Vec<String>) -> Result<Option<Shape>, String> {
    if field.is_map() {
        let Kind::Message(entry) = field.kind() else {
            return Err("map field without an entry message".to_owned());
        };
        let key = kind_shape(&entry.map_entry_key_field().kind(), stack)?
            .ok_or_else(|| "map key has no storable type".to_owned())?;
        let value = kind_shape(&entry.map_entry_value_field().kind(), stack)?
            .ok_or_else(|| "map value has no storable type".to_owned())?;
        return Ok(Some(Shape::Map(Box::new(key), Box::new(value))));
    }
    let shape = kind_shape(&field.kind(), stack)?;
    if field.is_list() {
        return match shape {
            Some(item) => Ok(Some(Shape::List(Box::new(item)))),
            None => Err("repeated field of a type with no storable field".to_owned()),
        };
    }
    Ok(shape)
}

fn kind_shape(kind: &Kind, stack: &mut Vec<String>) -> Result<Option<Shape>, String> {
    Ok(Some(match kind {
        Kind::Double => Shape::Double,
        Kind::Float => Shape::Float,
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => Shape::Int,
        Kind::Uint32 | Kind::Fixed32 => Shape::Long,
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 | Kind::Uint64 | Kind::Fixed64 => Shape::Long,
        Kind::Bool => Shape::Bool,
        Kind::String | Kind::Enum(_) => Shape::String,
        Kind::Bytes => Shape::Binary,
        Kind::Message(message) => return message_shape(message, stack),
    }))
}

/// How one value is written.
#[derive(Debug)]
enum Op {
    Bool,
    I32,
    U32,
    I64,
    U64,
    F32,
    F64,
    String,
    Bytes,
    Enum(EnumDescriptor),
    Message(MessagePlan),
    Timestamp,
    /// The wrapper's field 1, written with the op.
    Wrapper(FieldDescriptor, Box<Op>),
    Json,
}

/// A message's stored fields and the struct columns no field fills.
#[derive(Debug)]
struct MessagePlan {
    fields: Vec<FieldOp>,
    missing: Vec<usize>,
}

#[derive(Debug)]
struct FieldOp {
    field: FieldDescriptor,
    kind: FieldKind,
    column: usize,
}

#[derive(Debug)]
enum FieldKind {
    Single(Op),
    List(Op),
    Map(Op, Op),
}

/// The compiled decoder for one message type and one table layout.
#[derive(Debug)]
pub(crate) struct Plan {
    message: MessageDescriptor,
    /// The message's index path; `[0]` also accepts payloads without
    /// message indexes.
    path: Vec<i64>,
    root: RootPlan,
}

#[derive(Debug)]
enum RootPlan {
    Fields(MessagePlan),
    /// A well-known type at the root: one `value` column.
    Value(Op, usize),
    Nothing,
}

impl Plan {
    pub(crate) fn compile(
        schema: &ProtoSchema,
        indexes: &[i64],
        root: &RootColumns<'_>,
    ) -> Result<Plan, String> {
        let message = message(schema, indexes)?;
        let path = if indexes.is_empty() {
            vec![0]
        } else {
            indexes.to_vec()
        };
        let root_plan = if well_known(&message).is_some() {
            let column = root.value_column()?;
            let op = message_op(
                &message,
                Some(root.fields[column].data_type()),
                &mut Vec::new(),
            )?;
            RootPlan::Value(op, column)
        } else if shape(&message)?.is_none() {
            RootPlan::Nothing
        } else {
            let mut stack = vec![message.full_name().to_owned()];
            RootPlan::Fields(compile_fields(
                &message,
                root.fields,
                Some(root),
                &mut stack,
            )?)
        };
        Ok(Plan {
            message,
            path,
            root: root_plan,
        })
    }

    /// Parses the payload (after the 5-byte header when `framed`, then
    /// message indexes) and writes the fields.
    pub(crate) fn decode(
        &self,
        payload: &[u8],
        framed: bool,
        columns: &mut [Column],
    ) -> Result<(), Bad> {
        let message = if framed {
            self.parse_framed(payload)?
        } else {
            self.parse(payload)?
        };
        match &self.root {
            RootPlan::Fields(plan) => write_fields(plan, &message, columns),
            RootPlan::Value(op, column) => {
                write(op, &Value::Message(message), &mut columns[*column])
            }
            RootPlan::Nothing => Ok(()),
        }
    }

    fn parse(&self, bytes: &[u8]) -> Result<DynamicMessage, Bad> {
        DynamicMessage::decode(self.message.clone(), bytes).map_err(|e| {
            Bad::new(format!(
                "protobuf decode of {}: {e}",
                self.message.full_name()
            ))
        })
    }

    /// Producers that omit the message indexes are tolerated for the first
    /// message type: the whole payload is tried as that message.
    fn parse_framed(&self, payload: &[u8]) -> Result<DynamicMessage, Bad> {
        let first = self.path == [0];
        let indexed = match wire::parse_message_indexes(payload) {
            Ok((indexes, rest)) if indexes == self.path => match self.parse(rest) {
                Ok(message) => return Ok(message),
                Err(e) => e,
            },
            Ok((indexes, _)) => Bad::new(format!(
                "value is message type {indexes:?}, the table holds {} ({:?})",
                self.message.full_name(),
                self.path
            )),
            Err(e) => Bad::new(e.to_string()),
        };
        if first && let Ok(message) = self.parse(payload) {
            return Ok(message);
        }
        Err(indexed)
    }
}

fn compile_fields(
    message: &MessageDescriptor,
    target: &Fields,
    root: Option<&RootColumns<'_>>,
    stack: &mut Vec<String>,
) -> Result<MessagePlan, String> {
    let fields: Vec<FieldDescriptor> = message.fields().collect();
    let mut named = Vec::with_capacity(fields.len());
    for field in &fields {
        let stored = field_shape(field, stack)
            .map_err(|e| format!("{}: {e}", field.name()))?
            .is_some();
        named.push((field.name().to_owned(), stored));
    }
    let (columns, missing) = match root {
        Some(root) => root.match_names(&named)?,
        None => {
            let names: Vec<String> = named.iter().map(|(n, _)| n.clone()).collect();
            match_fields(target, &names, &named, None)?
        }
    };
    let mut ops = Vec::new();
    for (field, column) in fields.into_iter().zip(columns) {
        let Some(column) = column else { continue };
        let kind = field_kind(&field, target[column].data_type(), stack)
            .map_err(|e| format!("{}: {e}", field.name()))?;
        ops.push(FieldOp {
            field,
            kind,
            column,
        });
    }
    Ok(MessagePlan {
        fields: ops,
        missing,
    })
}

fn field_kind(
    field: &FieldDescriptor,
    data_type: &DataType,
    stack: &mut Vec<String>,
) -> Result<FieldKind, String> {
    if field.is_map() {
        let Kind::Message(entry) = field.kind() else {
            return Err("map field without an entry message".to_owned());
        };
        let DataType::Map(entries, _) = data_type else {
            return Err(format!("map does not fit column type {data_type}"));
        };
        let kv = nested_fields(entries.data_type())
            .filter(|kv| kv.len() == 2)
            .ok_or_else(|| "malformed map column".to_owned())?;
        let key = kind_op(
            &entry.map_entry_key_field().kind(),
            Some(kv[0].data_type()),
            stack,
        )?;
        let value = kind_op(
            &entry.map_entry_value_field().kind(),
            Some(kv[1].data_type()),
            stack,
        )?;
        return Ok(FieldKind::Map(key, value));
    }
    if field.is_list() {
        let DataType::List(item) = data_type else {
            return Err(format!(
                "repeated field does not fit column type {data_type}"
            ));
        };
        return Ok(FieldKind::List(kind_op(
            &field.kind(),
            Some(item.data_type()),
            stack,
        )?));
    }
    Ok(FieldKind::Single(kind_op(
        &field.kind(),
        Some(data_type),
        stack,
    )?))
}

fn kind_op(kind: &Kind, dt: Option<&DataType>, stack: &mut Vec<String>) -> Result<Op, String> {
    let is = |want: DataType| move |d: &DataType| *d == want;
    Ok(match kind {
        Kind::Double => {
            fits(dt, is(DataType::Float64), "double")?;
            Op::F64
        }
        Kind::Float => {
            fits(
                dt,
                |d| matches!(d, DataType::Float32 | DataType::Float64),
                "float",
            )?;
            Op::F32
        }
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => {
            fits(
                dt,
                |d| matches!(d, DataType::Int32 | DataType::Int64),
                "int32",
            )?;
            Op::I32
        }
        Kind::Uint32 | Kind::Fixed32 => {
            fits(dt, is(DataType::Int64), "uint32")?;
            Op::U32
        }
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => {
            fits(dt, is(DataType::Int64), "int64")?;
            Op::I64
        }
        Kind::Uint64 | Kind::Fixed64 => {
            fits(dt, is(DataType::Int64), "uint64")?;
            Op::U64
        }
        Kind::Bool => {
            fits(dt, is(DataType::Boolean), "bool")?;
            Op::Bool
        }
        Kind::String => {
            fits(dt, is(DataType::Utf8), "string")?;
            Op::String
        }
        Kind::Enum(e) => {
            fits(dt, is(DataType::Utf8), "enum")?;
            Op::Enum(e.clone())
        }
        Kind::Bytes => {
            fits(dt, is(DataType::LargeBinary), "bytes")?;
            Op::Bytes
        }
        Kind::Message(message) => message_op(message, dt, stack)?,
    })
}

fn message_op(
    message: &MessageDescriptor,
    dt: Option<&DataType>,
    stack: &mut Vec<String>,
) -> Result<Op, String> {
    match well_known(message) {
        Some(WellKnown::Timestamp) => {
            fits(
                dt,
                |d| {
                    matches!(
                        d,
                        DataType::Timestamp(TimeUnit::Microsecond | TimeUnit::Nanosecond, Some(_))
                    )
                },
                "timestamp",
            )?;
            return Ok(Op::Timestamp);
        }
        Some(WellKnown::Wrapper) => {
            let field = wrapped(message)?;
            let op = kind_op(&field.kind(), dt, stack)?;
            return Ok(Op::Wrapper(field, Box::new(op)));
        }
        Some(WellKnown::Json) => {
            fits(dt, |d| *d == DataType::Utf8, "google.protobuf.Struct")?;
            return Ok(Op::Json);
        }
        None => {}
    }
    let name = message.full_name().to_owned();
    if stack.contains(&name) {
        return Err(format!("recursive message {name} cannot be a table column"));
    }
    let fields = match dt {
        Some(DataType::Struct(fields)) => fields,
        Some(other) => return Err(format!("message does not fit column type {other}")),
        None => return Err("message has no column".to_owned()),
    };
    stack.push(name);
    let compiled = compile_fields(message, fields, None, stack);
    stack.pop();
    Ok(Op::Message(compiled?))
}

fn write_fields(
    plan: &MessagePlan,
    message: &DynamicMessage,
    columns: &mut [Column],
) -> Result<(), Bad> {
    for op in &plan.fields {
        let column = &mut columns[op.column];
        write_field(op, message, column).map_err(|e| e.at(op.field.name()))?;
    }
    for &i in &plan.missing {
        let column = &mut columns[i];
        let name = column.field().name().clone();
        column.push_null().map_err(|e| e.at(&name))?;
    }
    Ok(())
}

fn write_field(op: &FieldOp, message: &DynamicMessage, column: &mut Column) -> Result<(), Bad> {
    match &op.kind {
        FieldKind::Single(value_op) => {
            if op.field.supports_presence() && !message.has_field(&op.field) {
                return column.push_null();
            }
            write(value_op, &message.get_field(&op.field), column)
        }
        FieldKind::List(item_op) => {
            let value = message.get_field(&op.field);
            let Value::List(items) = value.as_ref() else {
                return Err(Bad::new("repeated field without a list value"));
            };
            let item = column.list_item()?;
            for value in items {
                write(item_op, value, item)?;
            }
            column.end_list()
        }
        FieldKind::Map(key_op, value_op) => {
            let value = message.get_field(&op.field);
            let Value::Map(map) = value.as_ref() else {
                return Err(Bad::new("map field without a map value"));
            };
            // HashMap order is random: sort for reproducible rows.
            let mut entries: Vec<(&MapKey, &Value)> = map.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
            let (keys, values) = column.map_entries()?;
            for (key, value) in entries {
                write(key_op, &map_key_value(key), keys)?;
                write(value_op, value, values)?;
            }
            column.end_list()
        }
    }
}

fn map_key_value(key: &MapKey) -> Value {
    match key {
        MapKey::Bool(v) => Value::Bool(*v),
        MapKey::I32(v) => Value::I32(*v),
        MapKey::I64(v) => Value::I64(*v),
        MapKey::U32(v) => Value::U32(*v),
        MapKey::U64(v) => Value::U64(*v),
        MapKey::String(v) => Value::String(v.clone()),
    }
}

fn unexpected(value: &Value) -> Bad {
    Bad::new(format!("unexpected protobuf value {value:?}"))
}

fn write(op: &Op, value: &Value, column: &mut Column) -> Result<(), Bad> {
    match (op, value) {
        (Op::Bool, Value::Bool(v)) => column.push_bool(*v),
        (Op::I32, Value::I32(v)) => column.push_i32(*v),
        (Op::U32, Value::U32(v)) => column.push_i64(i64::from(*v)),
        (Op::I64, Value::I64(v)) => column.push_i64(*v),
        (Op::U64, Value::U64(v)) => match i64::try_from(*v) {
            Ok(v) => column.push_i64(v),
            Err(_) => Err(Bad::new(format!("uint64 {v} exceeds the long column"))),
        },
        (Op::F32, Value::F32(v)) => column.push_f32(*v),
        (Op::F64, Value::F64(v)) => column.push_f64(*v),
        (Op::String, Value::String(v)) => column.push_str(v),
        (Op::Bytes, Value::Bytes(v)) => column.push_bytes(v),
        (Op::Enum(e), Value::EnumNumber(n)) => match e.get_value(*n) {
            Some(symbol) => column.push_str(symbol.name()),
            None => column.push_str(&n.to_string()),
        },
        (Op::Message(plan), Value::Message(message)) => {
            write_fields(plan, message, column.begin_struct()?)
        }
        (Op::Timestamp, Value::Message(message)) => {
            let seconds = match message.get_field_by_number(1).as_deref() {
                Some(Value::I64(s)) => *s,
                _ => 0,
            };
            let nanos = match message.get_field_by_number(2).as_deref() {
                Some(Value::I32(n)) => *n,
                _ => 0,
            };
            let micros = seconds
                .checked_mul(1_000_000)
                .and_then(|m| m.checked_add(i64::from(nanos.div_euclid(1000))))
                .ok_or_else(|| Bad::new(format!("timestamp {seconds}s out of range")))?;
            column.push_micros(micros)
        }
        (Op::Wrapper(field, inner), Value::Message(message)) => {
            write(inner, &message.get_field(field), column)
        }
        (Op::Json, Value::Message(message)) => {
            column.push_str(&json_of_message(message).to_string())
        }
        (_, other) => Err(unexpected(other)),
    }
}

/// google.protobuf.Struct / Value / ListValue as JSON.
fn json_of_message(message: &DynamicMessage) -> serde_json::Value {
    match message.descriptor().full_name() {
        "google.protobuf.Struct" => {
            let mut object = serde_json::Map::new();
            if let Some(Value::Map(fields)) = message.get_field_by_number(1).as_deref() {
                let mut entries: Vec<_> = fields.iter().collect();
                entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
                for (key, value) in entries {
                    if let (MapKey::String(key), Value::Message(value)) = (key, value) {
                        object.insert(key.clone(), json_of_message(value));
                    }
                }
            }
            serde_json::Value::Object(object)
        }
        "google.protobuf.ListValue" => {
            let mut array = Vec::new();
            if let Some(Value::List(values)) = message.get_field_by_number(1).as_deref() {
                for value in values {
                    if let Value::Message(value) = value {
                        array.push(json_of_message(value));
                    }
                }
            }
            serde_json::Value::Array(array)
        }
        _ => {
            // google.protobuf.Value: a oneof of the kinds.
            let Some((field, value)) = message.fields().next() else {
                return serde_json::Value::Null;
            };
            match (field.number(), value) {
                (2, Value::F64(n)) => serde_json::Number::from_f64(*n)
                    .map_or(serde_json::Value::Null, serde_json::Value::Number),
                (3, Value::String(s)) => serde_json::Value::String(s.clone()),
                (4, Value::Bool(b)) => serde_json::Value::Bool(*b),
                (5 | 6, Value::Message(m)) => json_of_message(m),
                _ => serde_json::Value::Null,
            }
        }
    }
}
