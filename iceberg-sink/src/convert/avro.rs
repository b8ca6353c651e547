//! Avro: the value schema's Iceberg shape, and a decoder that reads the
//! binary datum straight into the column buffers (no `apache_avro::Value`
//! tree: apache-avro 0.21 allocates from wire lengths and tolerates some
//! truncated input). Every length is checked against the bytes that remain,
//! the whole payload must be consumed, and block item counts are bounded by
//! a step budget proportional to the payload size.

use std::collections::HashMap;

use apache_avro::Schema;
use arrow_schema::{DataType, Fields, TimeUnit};
use schemas::avro::AvroSchema;

use super::column::{Bad, Column};
use super::shape::{Shape, ShapeField};
use super::{RootColumns, fits, match_fields, nested_fields};

type Names = HashMap<String, Schema>;

fn names(schema: &AvroSchema) -> Names {
    let mut names = HashMap::new();
    collect_names(schema.schema(), &mut names);
    for referenced in schema.referenced() {
        collect_names(referenced, &mut names);
    }
    names
}

fn collect_names(schema: &Schema, names: &mut Names) {
    match schema {
        Schema::Record(record)
            if names
                .insert(record.name.fullname(None), schema.clone())
                .is_none() =>
        {
            for field in &record.fields {
                collect_names(&field.schema, names);
            }
        }
        Schema::Enum(e) => {
            names.insert(e.name.fullname(None), schema.clone());
        }
        Schema::Fixed(f) => {
            names.insert(f.name.fullname(None), schema.clone());
        }
        Schema::Array(a) => collect_names(&a.items, names),
        Schema::Map(m) => collect_names(&m.types, names),
        Schema::Union(u) => u.variants().iter().for_each(|v| collect_names(v, names)),
        Schema::Decimal(d) => collect_names(&d.inner, names),
        _ => {}
    }
}

fn resolve<'a>(schema: &'a Schema, names: &'a Names) -> Result<&'a Schema, String> {
    match schema {
        Schema::Ref { name } => names
            .get(&name.fullname(None))
            .ok_or_else(|| format!("unknown named type {}", name.fullname(None))),
        _ => Ok(schema),
    }
}

/// The Iceberg shape of `schema`'s values; `None` when nothing is stored
/// (the `null` type, records without storable fields).
pub(crate) fn shape(schema: &AvroSchema) -> Result<Option<Shape>, String> {
    let names = names(schema);
    shape_of(schema.schema(), &names, &mut Vec::new())
}

fn shape_of(
    schema: &Schema,
    names: &Names,
    stack: &mut Vec<String>,
) -> Result<Option<Shape>, String> {
    let schema = resolve(schema, names)?;
    Ok(Some(match schema {
        Schema::Null => return Ok(None),
        Schema::Boolean => Shape::Bool,
        Schema::Int => Shape::Int,
        Schema::Long => Shape::Long,
        Schema::Float => Shape::Float,
        Schema::Double => Shape::Double,
        Schema::Bytes | Schema::BigDecimal => Shape::Binary,
        Schema::String | Schema::Uuid | Schema::Enum(_) => Shape::String,
        Schema::Fixed(f) => Shape::Fixed(f.size as u64),
        Schema::Duration => Shape::Fixed(12),
        Schema::Decimal(d) => {
            if d.precision == 0 || d.precision > 38 || d.scale > d.precision {
                return Err(format!(
                    "decimal({}, {}) does not fit Iceberg (precision 1 to 38)",
                    d.precision, d.scale
                ));
            }
            Shape::Decimal {
                precision: d.precision as u32,
                scale: d.scale as u32,
            }
        }
        Schema::Date => Shape::Date,
        Schema::TimeMillis | Schema::TimeMicros => Shape::Time,
        Schema::TimestampMillis | Schema::TimestampMicros | Schema::TimestampNanos => {
            Shape::Timestamptz
        }
        Schema::LocalTimestampMillis
        | Schema::LocalTimestampMicros
        | Schema::LocalTimestampNanos => Shape::Timestamp,
        Schema::Array(a) => match shape_of(&a.items, names, stack)? {
            Some(item) => Shape::List(Box::new(item)),
            None => return Err("array items have no storable type".to_owned()),
        },
        Schema::Map(m) => match shape_of(&m.types, names, stack)? {
            Some(value) => Shape::Map(Box::new(Shape::String), Box::new(value)),
            None => return Err("map values have no storable type".to_owned()),
        },
        Schema::Union(u) => {
            let members = union_members(u.variants(), names)?;
            match members.as_slice() {
                [] => return Ok(None),
                [(_, only)] => return shape_of(only, names, stack),
                _ => {
                    let mut fields = Vec::new();
                    for (name, member) in members {
                        if let Some(shape) = shape_of(member, names, stack)? {
                            fields.push(ShapeField::optional(name, shape));
                        }
                    }
                    if fields.is_empty() {
                        return Ok(None);
                    }
                    Shape::Struct(fields)
                }
            }
        }
        Schema::Record(r) => {
            let full = r.name.fullname(None);
            if stack.contains(&full) {
                return Err(format!("recursive record {full} cannot be a table column"));
            }
            stack.push(full);
            let mut fields = Vec::new();
            for field in &r.fields {
                if let Some(shape) =
                    shape_of(&field.schema, names, stack).map_err(|e| at(&field.name, e))?
                {
                    fields.push(ShapeField::optional(&field.name, shape));
                }
            }
            stack.pop();
            if fields.is_empty() {
                return Ok(None);
            }
            Shape::Struct(fields)
        }
        Schema::Ref { name } => return Err(format!("unresolved reference {name}")),
    }))
}

fn at(name: &str, error: String) -> String {
    format!("{name}: {error}")
}

/// The non-null members of a union with their column names: the type name
/// (`int`, `string`, `array`, a named type's simple name, a logical type's
/// name), or `member<position>` for every member if two names collide.
fn union_members<'a>(
    variants: &'a [Schema],
    names: &'a Names,
) -> Result<Vec<(String, &'a Schema)>, String> {
    let mut members = Vec::new();
    for variant in variants {
        let resolved = resolve(variant, names)?;
        if matches!(resolved, Schema::Null) {
            continue;
        }
        let name = match resolved {
            Schema::Record(r) => r.name.name.clone(),
            Schema::Enum(e) => e.name.name.clone(),
            Schema::Fixed(f) => f.name.name.clone(),
            other => {
                let kind = format!("{:?}", apache_avro::schema::SchemaKind::from(other));
                // SchemaKind's Debug is the variant name (`TimestampMillis`):
                // snake case it (`timestamp_millis`).
                let mut snake = String::new();
                for (i, c) in kind.chars().enumerate() {
                    if c.is_ascii_uppercase() && i > 0 {
                        snake.push('_');
                    }
                    snake.push(c.to_ascii_lowercase());
                }
                snake
            }
        };
        members.push((name, variant));
    }
    let mut seen: Vec<&str> = members.iter().map(|(n, _)| n.as_str()).collect();
    seen.sort_unstable();
    if seen.windows(2).any(|w| w[0] == w[1]) {
        let mut renamed = Vec::new();
        for (position, variant) in variants.iter().enumerate() {
            if !matches!(resolve(variant, names)?, Schema::Null) {
                renamed.push((format!("member{position}"), variant));
            }
        }
        return Ok(renamed);
    }
    Ok(members)
}

/// One step of the decoder, compiled from the writer schema against the
/// table's columns.
#[derive(Debug)]
enum Op {
    /// The `null` type: nothing on the wire.
    Null,
    Bool,
    Int,
    Long,
    Float,
    Double,
    Bytes,
    String,
    Fixed(usize),
    Enum(Vec<String>),
    /// Unscaled two's complement, in bytes or a fixed of this size.
    Decimal(Option<usize>),
    TimeMillis,
    /// Longs in microseconds (time-micros, timestamp-micros, local too).
    Micros,
    TimestampMillis,
    TimestampNanos,
    Array(Box<Op>),
    Map(Box<Op>),
    Record(Vec<FieldOp>, Vec<usize>),
    /// A union whose non-null members share one column (`None`: null).
    Nullable(Vec<Option<Op>>),
    /// A union stored as a struct of optional members.
    Union(Vec<Member>),
}

#[derive(Debug)]
struct FieldOp {
    name: String,
    op: Op,
    column: Option<usize>,
}

#[derive(Debug)]
enum Member {
    Null,
    /// The member's op and its child column in the union's struct.
    Value(Op, Option<usize>),
}

/// The compiled decoder for one writer schema and one table layout.
#[derive(Debug)]
pub(crate) struct Plan {
    root: Op,
    /// Whether the root record's fields are the top-level columns (else the
    /// root value goes into `root_column`).
    record_root: bool,
    root_column: Option<usize>,
}

impl Plan {
    pub(crate) fn compile(schema: &AvroSchema, root: &RootColumns<'_>) -> Result<Plan, String> {
        let names = names(schema);
        let writer = resolve(schema.schema(), &names)?;
        if let Schema::Record(r) = writer {
            let mut stack = vec![r.name.fullname(None)];
            let (fields, missing) =
                compile_fields(&r.fields, &names, &mut stack, root.fields, Some(root))?;
            return Ok(Plan {
                root: Op::Record(fields, missing),
                record_root: true,
                root_column: None,
            });
        }
        let shape = shape_of(writer, &names, &mut Vec::new())?;
        let column = match shape {
            Some(_) => Some(root.value_column()?),
            None => None,
        };
        let data_type = column.map(|i| root.fields[i].data_type());
        Ok(Plan {
            root: compile(writer, &names, &mut Vec::new(), data_type)?,
            record_root: false,
            root_column: column,
        })
    }

    /// Decodes one datum into the top-level columns.
    pub(crate) fn decode(&self, payload: &[u8], columns: &mut [Column]) -> Result<(), Bad> {
        let mut reader = Reader {
            bytes: payload,
            pos: 0,
            budget: payload.len().saturating_mul(16).saturating_add(1024),
        };
        let result = if self.record_root {
            let Op::Record(fields, missing) = &self.root else {
                unreachable!("record roots compile to a record op")
            };
            read_fields(fields, missing, &mut reader, Some(columns))
        } else {
            let column = self.root_column.map(|i| &mut columns[i]);
            read(&self.root, &mut reader, column)
        };
        result.map_err(|e| {
            let at = reader.pos;
            Bad::new(format!("avro decode at byte {at}: {}", e.reason()))
        })?;
        if reader.pos != payload.len() {
            return Err(Bad::new(format!(
                "avro decode: {} trailing bytes after the datum",
                payload.len() - reader.pos
            )));
        }
        Ok(())
    }
}

type Compiled = (Vec<FieldOp>, Vec<usize>);

/// Matches record fields to the struct's columns by name. `root` renames
/// top-level fields (the `kafka` clash) and skips the `kafka` column.
fn compile_fields(
    fields: &[apache_avro::schema::RecordField],
    names: &Names,
    stack: &mut Vec<String>,
    target: &Fields,
    root: Option<&RootColumns<'_>>,
) -> Result<Compiled, String> {
    let mut named = Vec::with_capacity(fields.len());
    for field in fields {
        let stored = shape_of(&field.schema, names, stack)
            .map_err(|e| at(&field.name, e))?
            .is_some();
        named.push((field.name.clone(), stored));
    }
    let (columns, missing) = match root {
        Some(root) => root.match_names(&named)?,
        None => {
            let column_names: Vec<String> = named.iter().map(|(n, _)| n.clone()).collect();
            match_fields(target, &column_names, &named, None)?
        }
    };
    let mut ops = Vec::with_capacity(fields.len());
    for (field, column) in fields.iter().zip(columns) {
        let data_type = column.map(|i| target[i].data_type());
        let op = compile(&field.schema, names, stack, data_type).map_err(|e| at(&field.name, e))?;
        ops.push(FieldOp {
            name: field.name.clone(),
            op,
            column,
        });
    }
    Ok((ops, missing))
}

fn compile(
    schema: &Schema,
    names: &Names,
    stack: &mut Vec<String>,
    dt: Option<&DataType>,
) -> Result<Op, String> {
    let schema = resolve(schema, names)?;
    let micros = |dt: &DataType, tz: bool| matches!(dt, DataType::Timestamp(TimeUnit::Microsecond | TimeUnit::Nanosecond, zone) if zone.is_some() == tz);
    Ok(match schema {
        Schema::Null => Op::Null,
        Schema::Boolean => {
            fits(dt, |d| *d == DataType::Boolean, "boolean")?;
            Op::Bool
        }
        Schema::Int => {
            fits(
                dt,
                |d| matches!(d, DataType::Int32 | DataType::Int64),
                "int",
            )?;
            Op::Int
        }
        Schema::Long => {
            fits(dt, |d| *d == DataType::Int64, "long")?;
            Op::Long
        }
        Schema::Float => {
            fits(
                dt,
                |d| matches!(d, DataType::Float32 | DataType::Float64),
                "float",
            )?;
            Op::Float
        }
        Schema::Double => {
            fits(dt, |d| *d == DataType::Float64, "double")?;
            Op::Double
        }
        Schema::Bytes | Schema::BigDecimal => {
            fits(dt, |d| *d == DataType::LargeBinary, "bytes")?;
            Op::Bytes
        }
        Schema::String | Schema::Uuid => {
            fits(dt, |d| *d == DataType::Utf8, "string")?;
            Op::String
        }
        Schema::Enum(e) => {
            fits(dt, |d| *d == DataType::Utf8, "enum")?;
            Op::Enum(e.symbols.clone())
        }
        Schema::Fixed(f) => {
            fits(
                dt,
                |d| *d == DataType::FixedSizeBinary(f.size as i32),
                "fixed",
            )?;
            Op::Fixed(f.size)
        }
        Schema::Duration => {
            fits(dt, |d| *d == DataType::FixedSizeBinary(12), "duration")?;
            Op::Fixed(12)
        }
        Schema::Decimal(d) => {
            fits(
                dt,
                |t| matches!(t, DataType::Decimal128(p, s) if usize::from(*p) >= d.precision && usize::try_from(*s).ok() == Some(d.scale)),
                &format!("decimal({}, {})", d.precision, d.scale),
            )?;
            match resolve(&d.inner, names)? {
                Schema::Fixed(f) => Op::Decimal(Some(f.size)),
                _ => Op::Decimal(None),
            }
        }
        Schema::Date => {
            fits(dt, |d| *d == DataType::Date32, "date")?;
            Op::Int
        }
        Schema::TimeMillis | Schema::TimeMicros => {
            fits(
                dt,
                |d| *d == DataType::Time64(TimeUnit::Microsecond),
                "time",
            )?;
            if matches!(schema, Schema::TimeMillis) {
                Op::TimeMillis
            } else {
                Op::Micros
            }
        }
        Schema::TimestampMillis | Schema::TimestampMicros | Schema::TimestampNanos => {
            fits(dt, |d| micros(d, true), "timestamp")?;
            timestamp_op(schema)
        }
        Schema::LocalTimestampMillis
        | Schema::LocalTimestampMicros
        | Schema::LocalTimestampNanos => {
            fits(dt, |d| micros(d, false), "local timestamp")?;
            timestamp_op(schema)
        }
        Schema::Array(a) => {
            let item = match dt {
                None => None,
                Some(DataType::List(item)) => Some(item.data_type()),
                Some(other) => return Err(format!("array does not fit column type {other}")),
            };
            Op::Array(Box::new(compile(&a.items, names, stack, item)?))
        }
        Schema::Map(m) => {
            let value = match dt {
                None => None,
                Some(DataType::Map(entries, _)) => {
                    let kv = nested_fields(entries.data_type());
                    match kv {
                        Some(kv) if kv.len() == 2 && *kv[0].data_type() == DataType::Utf8 => {
                            Some(kv[1].data_type())
                        }
                        _ => return Err("map does not fit a map with string keys".to_owned()),
                    }
                }
                Some(other) => return Err(format!("map does not fit column type {other}")),
            };
            Op::Map(Box::new(compile(&m.types, names, stack, value)?))
        }
        Schema::Union(u) => compile_union(u.variants(), names, stack, dt)?,
        Schema::Record(r) => {
            let full = r.name.fullname(None);
            if stack.contains(&full) {
                return Err(format!("recursive record {full} cannot be a table column"));
            }
            stack.push(full);
            let compiled = match dt {
                None => {
                    let empty = Fields::empty();
                    compile_fields(&r.fields, names, stack, &empty, None)
                }
                Some(DataType::Struct(fields)) => {
                    compile_fields(&r.fields, names, stack, fields, None)
                }
                Some(other) => Err(format!("record does not fit column type {other}")),
            };
            stack.pop();
            let (fields, missing) = compiled?;
            Op::Record(fields, missing)
        }
        Schema::Ref { name } => return Err(format!("unresolved reference {name}")),
    })
}

fn timestamp_op(schema: &Schema) -> Op {
    match schema {
        Schema::TimestampMillis | Schema::LocalTimestampMillis => Op::TimestampMillis,
        Schema::TimestampNanos | Schema::LocalTimestampNanos => Op::TimestampNanos,
        _ => Op::Micros,
    }
}

fn compile_union(
    variants: &[Schema],
    names: &Names,
    stack: &mut Vec<String>,
    dt: Option<&DataType>,
) -> Result<Op, String> {
    let members = union_members(variants, names)?;
    if members.len() <= 1 {
        let mut ops = Vec::new();
        for variant in variants {
            ops.push(match resolve(variant, names)? {
                Schema::Null => None,
                _ => Some(compile(variant, names, stack, dt)?),
            });
        }
        return Ok(Op::Nullable(ops));
    }
    let struct_fields = match dt {
        None => None,
        Some(DataType::Struct(fields)) => Some(fields),
        Some(other) => return Err(format!("union does not fit column type {other}")),
    };
    let mut members = members.into_iter();
    let mut ops = Vec::new();
    for variant in variants {
        if matches!(resolve(variant, names)?, Schema::Null) {
            ops.push(Member::Null);
            continue;
        }
        let (name, member) = members.next().expect("one member per non-null variant");
        let stored = shape_of(member, names, stack)?.is_some();
        let child = match struct_fields {
            Some(fields) if stored => Some(
                fields
                    .iter()
                    .position(|f| f.name() == &name)
                    .ok_or_else(|| format!("the table has no union member column {name}"))?,
            ),
            _ => None,
        };
        let child_type = child.and_then(|i| struct_fields.map(|f| f[i].data_type()));
        ops.push(Member::Value(
            compile(member, names, stack, child_type)?,
            child,
        ));
    }
    Ok(Op::Union(ops))
}

struct Reader<'p> {
    bytes: &'p [u8],
    pos: usize,
    /// Steps left: items of zero bytes in huge blocks would otherwise loop
    /// (and grow columns) without consuming input.
    budget: usize,
}

impl<'p> Reader<'p> {
    fn take(&mut self, n: usize) -> Result<&'p [u8], Bad> {
        let remaining = self.bytes.len() - self.pos;
        if n > remaining {
            return Err(Bad::new(format!("needs {n} bytes, {remaining} remain")));
        }
        let slice = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(slice)
    }

    fn long(&mut self) -> Result<i64, Bad> {
        let mut value: u64 = 0;
        let mut shift = 0;
        loop {
            let Some(&byte) = self.bytes.get(self.pos) else {
                return Err(Bad::new("truncated varint"));
            };
            self.pos += 1;
            if shift == 63 && byte > 1 {
                return Err(Bad::new("varint overflows 64 bits"));
            }
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(((value >> 1) as i64) ^ -((value & 1) as i64));
            }
            shift += 7;
            if shift > 63 {
                return Err(Bad::new("varint longer than 10 bytes"));
            }
        }
    }

    fn int(&mut self) -> Result<i32, Bad> {
        let v = self.long()?;
        i32::try_from(v).map_err(|_| Bad::new(format!("int out of range: {v}")))
    }

    fn bytes(&mut self) -> Result<&'p [u8], Bad> {
        let len = self.long()?;
        let len = usize::try_from(len).map_err(|_| Bad::new(format!("negative length {len}")))?;
        self.take(len)
    }

    fn str(&mut self) -> Result<&'p str, Bad> {
        let bytes = self.bytes()?;
        std::str::from_utf8(bytes).map_err(|e| Bad::new(format!("string is not UTF-8: {e}")))
    }

    fn step(&mut self) -> Result<(), Bad> {
        self.budget = self
            .budget
            .checked_sub(1)
            .ok_or_else(|| Bad::new("too many items for the payload size"))?;
        Ok(())
    }

    /// The item count of the next block (0 at the end); a negative count is
    /// followed by the block's byte size, which is not needed.
    fn block(&mut self) -> Result<u64, Bad> {
        let count = self.long()?;
        if count < 0 {
            self.long()?;
        }
        Ok(count.unsigned_abs())
    }
}

fn decimal(bytes: &[u8]) -> Result<i128, Bad> {
    let negative = bytes.first().is_some_and(|b| b & 0x80 != 0);
    let sign = if negative { 0xff } else { 0 };
    if bytes.len() > 16 {
        let (extra, _) = bytes.split_at(bytes.len() - 16);
        if extra.iter().any(|b| *b != sign) {
            return Err(Bad::new("decimal wider than 128 bits"));
        }
    }
    let mut buf = [sign; 16];
    let tail = &bytes[bytes.len().saturating_sub(16)..];
    buf[16 - tail.len()..].copy_from_slice(tail);
    let value = i128::from_be_bytes(buf);
    if bytes.len() >= 16 && (value < 0) != negative {
        return Err(Bad::new("decimal wider than 128 bits"));
    }
    Ok(value)
}

fn read_fields(
    fields: &[FieldOp],
    missing: &[usize],
    r: &mut Reader<'_>,
    mut columns: Option<&mut [Column]>,
) -> Result<(), Bad> {
    for field in fields {
        let column = match (&mut columns, field.column) {
            (Some(columns), Some(i)) => Some(&mut columns[i]),
            _ => None,
        };
        read(&field.op, r, column).map_err(|e| e.at(&field.name))?;
    }
    if let Some(columns) = columns {
        for &i in missing {
            let column = &mut columns[i];
            column
                .push_null()
                .map_err(|e| e.at(&column.field().name().clone()))?;
        }
    }
    Ok(())
}

fn read(op: &Op, r: &mut Reader<'_>, column: Option<&mut Column>) -> Result<(), Bad> {
    r.step()?;
    match op {
        Op::Null => Ok(()),
        Op::Bool => {
            let value = match r.take(1)?[0] {
                0 => false,
                1 => true,
                b => return Err(Bad::new(format!("invalid boolean byte {b}"))),
            };
            column.map_or(Ok(()), |c| c.push_bool(value))
        }
        Op::Int => {
            let value = r.int()?;
            column.map_or(Ok(()), |c| c.push_i32(value))
        }
        Op::Long | Op::Micros => {
            let value = r.long()?;
            match column {
                Some(c) if matches!(op, Op::Micros) => c.push_micros(value),
                Some(c) => c.push_i64(value),
                None => Ok(()),
            }
        }
        Op::TimeMillis => {
            let value = i64::from(r.int()?) * 1000;
            column.map_or(Ok(()), |c| c.push_i64(value))
        }
        Op::TimestampMillis => {
            let value = r.long()?;
            let micros = value
                .checked_mul(1000)
                .ok_or_else(|| Bad::new(format!("timestamp {value}ms out of range")))?;
            column.map_or(Ok(()), |c| c.push_micros(micros))
        }
        Op::TimestampNanos => {
            let value = r.long()?;
            match column {
                Some(c)
                    if matches!(c.data_type(), DataType::Timestamp(TimeUnit::Nanosecond, _)) =>
                {
                    c.push_i64(value)
                }
                Some(c) => c.push_i64(value.div_euclid(1000)),
                None => Ok(()),
            }
        }
        Op::Float => {
            let value = f32::from_le_bytes(r.take(4)?.try_into().expect("4 bytes"));
            column.map_or(Ok(()), |c| c.push_f32(value))
        }
        Op::Double => {
            let value = f64::from_le_bytes(r.take(8)?.try_into().expect("8 bytes"));
            column.map_or(Ok(()), |c| c.push_f64(value))
        }
        Op::Bytes => {
            let value = r.bytes()?;
            column.map_or(Ok(()), |c| c.push_bytes(value))
        }
        Op::String => {
            let value = r.str()?;
            column.map_or(Ok(()), |c| c.push_str(value))
        }
        Op::Fixed(size) => {
            let value = r.take(*size)?;
            column.map_or(Ok(()), |c| c.push_bytes(value))
        }
        Op::Enum(symbols) => {
            let index = r.int()?;
            let symbol = usize::try_from(index)
                .ok()
                .and_then(|i| symbols.get(i))
                .ok_or_else(|| Bad::new(format!("enum index {index} out of range")))?;
            column.map_or(Ok(()), |c| c.push_str(symbol))
        }
        Op::Decimal(fixed) => {
            let bytes = match fixed {
                Some(size) => r.take(*size)?,
                None => r.bytes()?,
            };
            let value = decimal(bytes)?;
            column.map_or(Ok(()), |c| c.push_decimal(value))
        }
        Op::Array(item) => {
            let mut column = column;
            loop {
                let count = r.block()?;
                if count == 0 {
                    break;
                }
                for _ in 0..count {
                    r.step()?;
                    match column.as_deref_mut() {
                        Some(list) => read(item, r, Some(list.list_item()?))?,
                        None => read(item, r, None)?,
                    }
                }
            }
            column.map_or(Ok(()), Column::end_list)
        }
        Op::Map(value) => {
            let mut column = column;
            loop {
                let count = r.block()?;
                if count == 0 {
                    break;
                }
                for _ in 0..count {
                    r.step()?;
                    let key = r.str()?;
                    match column.as_deref_mut() {
                        Some(map) => {
                            let (keys, values) = map.map_entries()?;
                            keys.push_str(key)?;
                            read(value, r, Some(values)).map_err(|e| e.at(key))?;
                        }
                        None => read(value, r, None)?,
                    }
                }
            }
            column.map_or(Ok(()), Column::end_list)
        }
        Op::Record(fields, missing) => match column {
            Some(c) => read_fields(fields, missing, r, Some(c.begin_struct()?)),
            None => read_fields(fields, missing, r, None),
        },
        Op::Nullable(branches) => {
            let index = r.long()?;
            let branch = usize::try_from(index)
                .ok()
                .and_then(|i| branches.get(i))
                .ok_or_else(|| Bad::new(format!("union index {index} out of range")))?;
            match (branch, column) {
                (Some(op), column) => read(op, r, column),
                (None, Some(c)) => c.push_null(),
                (None, None) => Ok(()),
            }
        }
        Op::Union(members) => {
            let index = r.long()?;
            let member = usize::try_from(index)
                .ok()
                .and_then(|i| members.get(i))
                .ok_or_else(|| Bad::new(format!("union index {index} out of range")))?;
            let Some(column) = column else {
                return match member {
                    Member::Null => Ok(()),
                    Member::Value(op, _) => read(op, r, None),
                };
            };
            let Member::Value(op, child) = member else {
                return column.push_null();
            };
            let children = column.begin_struct()?;
            if let Some(i) = child {
                read(op, r, Some(&mut children[*i]))?;
            } else {
                read(op, r, None)?;
            }
            for (j, other) in children.iter_mut().enumerate() {
                if Some(j) != *child {
                    other.push_null()?;
                }
            }
            Ok(())
        }
    }
}
