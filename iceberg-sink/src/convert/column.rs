//! Growable column buffers shaped like one Arrow field, that can be cut
//! back to a row count (a record that fails half-way leaves nothing behind)
//! and turned into an Arrow array.
//!
//! Nulls inside a null struct are "masked": every child gets a slot (Arrow
//! requires equal lengths) with its validity bit cleared, which is allowed
//! even for non-nullable children because the parent's null covers it.

use std::mem;
use std::sync::Arc;

use arrow_array::types::{
    Date32Type, Decimal128Type, Float32Type, Float64Type, Int32Type, Int64Type,
    Time64MicrosecondType, TimestampMicrosecondType, TimestampNanosecondType,
};
use arrow_array::{
    ArrayRef, ArrowPrimitiveType, BooleanArray, FixedSizeBinaryArray, LargeBinaryArray, ListArray,
    MapArray, PrimitiveArray, StringArray, StructArray,
};
use arrow_buffer::{Buffer, NullBuffer, OffsetBuffer, ScalarBuffer};
use arrow_schema::{ArrowError, DataType, FieldRef, Fields, TimeUnit};

/// Why one value could not be written; becomes the record's DLQ reason.
/// `path` is filled in (innermost last) while the error travels up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Bad {
    path: Vec<String>,
    message: String,
}

impl Bad {
    pub(crate) fn new(message: impl Into<String>) -> Bad {
        Bad {
            path: Vec::new(),
            message: message.into(),
        }
    }

    /// Adds the enclosing field name.
    pub(crate) fn at(mut self, name: &str) -> Bad {
        self.path.push(name.to_owned());
        self
    }

    /// `field a.b: message`, or just the message at the root.
    pub(crate) fn reason(&self) -> String {
        if self.path.is_empty() {
            return self.message.clone();
        }
        let path: Vec<&str> = self.path.iter().rev().map(String::as_str).collect();
        format!("field {}: {}", path.join("."), self.message)
    }
}

/// Buffers for one Arrow field (and its children).
#[derive(Debug)]
pub(crate) struct Column {
    field: FieldRef,
    valid: Vec<bool>,
    data: Data,
}

#[derive(Debug)]
enum Data {
    Bool(Vec<bool>),
    /// Int32, Date32.
    I32(Vec<i32>),
    /// Int64, Time64(us), Timestamp(us/ns).
    I64(Vec<i64>),
    F32(Vec<f32>),
    F64(Vec<f64>),
    Decimal {
        values: Vec<i128>,
        /// Largest magnitude the column's precision holds.
        max: i128,
    },
    Utf8 {
        offsets: Vec<i32>,
        bytes: Vec<u8>,
    },
    LargeBinary {
        offsets: Vec<i64>,
        bytes: Vec<u8>,
    },
    Fixed {
        size: usize,
        bytes: Vec<u8>,
    },
    List {
        offsets: Vec<i32>,
        item: Box<Column>,
    },
    /// `entries` is the struct column of key/value pairs.
    Map {
        offsets: Vec<i32>,
        entries: Box<Column>,
    },
    Struct(Vec<Column>),
}

fn mismatch(field: &FieldRef, what: &str) -> Bad {
    Bad::new(format!(
        "{what} does not fit column type {}",
        field.data_type()
    ))
}

fn unsupported(field: &FieldRef) -> String {
    format!(
        "column {} has Arrow type {}, which the converter does not write",
        field.name(),
        field.data_type()
    )
}

impl Column {
    /// Empty buffers for `field`; fails for Arrow types that Iceberg's
    /// schema conversion does not produce.
    pub(crate) fn new(field: &FieldRef) -> Result<Column, String> {
        let data = match field.data_type() {
            DataType::Boolean => Data::Bool(Vec::new()),
            DataType::Int32 | DataType::Date32 => Data::I32(Vec::new()),
            DataType::Int64
            | DataType::Time64(TimeUnit::Microsecond)
            | DataType::Timestamp(TimeUnit::Microsecond | TimeUnit::Nanosecond, _) => {
                Data::I64(Vec::new())
            }
            DataType::Float32 => Data::F32(Vec::new()),
            DataType::Float64 => Data::F64(Vec::new()),
            DataType::Decimal128(precision, _) => Data::Decimal {
                values: Vec::new(),
                max: 10i128.pow(u32::from((*precision).min(38))) - 1,
            },
            DataType::Utf8 => Data::Utf8 {
                offsets: vec![0],
                bytes: Vec::new(),
            },
            DataType::LargeBinary => Data::LargeBinary {
                offsets: vec![0],
                bytes: Vec::new(),
            },
            DataType::FixedSizeBinary(size) => Data::Fixed {
                size: usize::try_from(*size).map_err(|_| unsupported(field))?,
                bytes: Vec::new(),
            },
            DataType::List(item) => Data::List {
                offsets: vec![0],
                item: Box::new(Column::new(item)?),
            },
            DataType::Map(entries, _) => {
                let entries = Column::new(entries)?;
                match &entries.data {
                    Data::Struct(children) if children.len() == 2 => {}
                    _ => return Err(unsupported(field)),
                }
                Data::Map {
                    offsets: vec![0],
                    entries: Box::new(entries),
                }
            }
            DataType::Struct(fields) => {
                Data::Struct(fields.iter().map(Column::new).collect::<Result<_, _>>()?)
            }
            _ => return Err(unsupported(field)),
        };
        Ok(Column {
            field: field.clone(),
            valid: Vec::new(),
            data,
        })
    }

    pub(crate) fn field(&self) -> &FieldRef {
        &self.field
    }

    pub(crate) fn data_type(&self) -> &DataType {
        self.field.data_type()
    }

    pub(crate) fn len(&self) -> usize {
        self.valid.len()
    }

    /// The child columns of a struct column (empty for other types).
    pub(crate) fn children(&self) -> &[Column] {
        match &self.data {
            Data::Struct(children) => children,
            _ => &[],
        }
    }

    /// A null; refused for a required column.
    pub(crate) fn push_null(&mut self) -> Result<(), Bad> {
        if !self.field.is_nullable() {
            return Err(Bad::new("null for a required column"));
        }
        self.push_masked();
        Ok(())
    }

    /// A null slot without the nullability check (under a null parent).
    pub(crate) fn push_masked(&mut self) {
        self.valid.push(false);
        match &mut self.data {
            Data::Bool(v) => v.push(false),
            Data::I32(v) => v.push(0),
            Data::I64(v) => v.push(0),
            Data::F32(v) => v.push(0.0),
            Data::F64(v) => v.push(0.0),
            Data::Decimal { values, .. } => values.push(0),
            Data::Utf8 { offsets, .. } => offsets.push(*offsets.last().unwrap_or(&0)),
            Data::LargeBinary { offsets, .. } => offsets.push(*offsets.last().unwrap_or(&0)),
            Data::Fixed { size, bytes } => bytes.resize(bytes.len() + *size, 0),
            Data::List { offsets, .. } | Data::Map { offsets, .. } => {
                offsets.push(*offsets.last().unwrap_or(&0))
            }
            Data::Struct(children) => children.iter_mut().for_each(Column::push_masked),
        }
    }

    pub(crate) fn push_bool(&mut self, value: bool) -> Result<(), Bad> {
        match &mut self.data {
            Data::Bool(v) => v.push(value),
            _ => return Err(mismatch(&self.field, "boolean")),
        }
        self.valid.push(true);
        Ok(())
    }

    /// An int; an int column promoted to long takes it too.
    pub(crate) fn push_i32(&mut self, value: i32) -> Result<(), Bad> {
        match &mut self.data {
            Data::I32(v) => v.push(value),
            Data::I64(v) => v.push(i64::from(value)),
            _ => return Err(mismatch(&self.field, "int")),
        }
        self.valid.push(true);
        Ok(())
    }

    /// A long (also times and timestamps, in the column's unit).
    pub(crate) fn push_i64(&mut self, value: i64) -> Result<(), Bad> {
        match &mut self.data {
            Data::I64(v) => v.push(value),
            Data::I32(v) => match i32::try_from(value) {
                Ok(value) => v.push(value),
                Err(_) => return Err(Bad::new(format!("{value} does not fit an int column"))),
            },
            _ => return Err(mismatch(&self.field, "long")),
        }
        self.valid.push(true);
        Ok(())
    }

    /// A timestamp in microseconds; a nanosecond column gets it scaled.
    pub(crate) fn push_micros(&mut self, micros: i64) -> Result<(), Bad> {
        if let DataType::Timestamp(TimeUnit::Nanosecond, _) = self.data_type() {
            let nanos = micros
                .checked_mul(1000)
                .ok_or_else(|| Bad::new(format!("timestamp {micros}us out of range")))?;
            return self.push_i64(nanos);
        }
        self.push_i64(micros)
    }

    pub(crate) fn push_f32(&mut self, value: f32) -> Result<(), Bad> {
        match &mut self.data {
            Data::F32(v) => v.push(value),
            Data::F64(v) => v.push(f64::from(value)),
            _ => return Err(mismatch(&self.field, "float")),
        }
        self.valid.push(true);
        Ok(())
    }

    pub(crate) fn push_f64(&mut self, value: f64) -> Result<(), Bad> {
        match &mut self.data {
            Data::F64(v) => v.push(value),
            _ => return Err(mismatch(&self.field, "double")),
        }
        self.valid.push(true);
        Ok(())
    }

    /// An unscaled decimal (the scale is the column's); refused when it
    /// needs more digits than the column's precision.
    pub(crate) fn push_decimal(&mut self, unscaled: i128) -> Result<(), Bad> {
        match &mut self.data {
            Data::Decimal { values, max } => {
                if unscaled > *max || unscaled < -*max {
                    return Err(Bad::new(format!(
                        "decimal {unscaled} (unscaled) exceeds the column's precision"
                    )));
                }
                values.push(unscaled);
            }
            _ => return Err(mismatch(&self.field, "decimal")),
        }
        self.valid.push(true);
        Ok(())
    }

    pub(crate) fn push_str(&mut self, value: &str) -> Result<(), Bad> {
        match &mut self.data {
            Data::Utf8 { offsets, bytes } => {
                let end = i32::try_from(bytes.len() + value.len())
                    .map_err(|_| Bad::new("string data of the batch exceeds 2 GiB"))?;
                bytes.extend_from_slice(value.as_bytes());
                offsets.push(end);
            }
            _ => return Err(mismatch(&self.field, "string")),
        }
        self.valid.push(true);
        Ok(())
    }

    /// Binary or fixed; a fixed column checks the length.
    pub(crate) fn push_bytes(&mut self, value: &[u8]) -> Result<(), Bad> {
        match &mut self.data {
            Data::LargeBinary { offsets, bytes } => {
                bytes.extend_from_slice(value);
                offsets.push(bytes.len() as i64);
            }
            Data::Fixed { size, bytes } => {
                if value.len() != *size {
                    return Err(Bad::new(format!(
                        "{} bytes for a fixed[{size}] column",
                        value.len()
                    )));
                }
                bytes.extend_from_slice(value);
            }
            _ => return Err(mismatch(&self.field, "binary")),
        }
        self.valid.push(true);
        Ok(())
    }

    /// A valid struct slot; the caller then fills every child once.
    pub(crate) fn begin_struct(&mut self) -> Result<&mut [Column], Bad> {
        match &mut self.data {
            Data::Struct(children) => {
                self.valid.push(true);
                Ok(children)
            }
            _ => Err(Bad::new(format!(
                "record does not fit column type {}",
                self.field.data_type()
            ))),
        }
    }

    /// The item column of a list; push items, then [`Column::end_list`].
    pub(crate) fn list_item(&mut self) -> Result<&mut Column, Bad> {
        match &mut self.data {
            Data::List { item, .. } => Ok(item),
            _ => Err(mismatch(&self.field, "array")),
        }
    }

    /// The key and value columns of a map; push pairs, then
    /// [`Column::end_list`].
    pub(crate) fn map_entries(&mut self) -> Result<(&mut Column, &mut Column), Bad> {
        match &mut self.data {
            Data::Map { entries, .. } => match &mut entries.data {
                Data::Struct(kv) => {
                    let (key, value) = kv.split_at_mut(1);
                    Ok((&mut key[0], &mut value[0]))
                }
                _ => Err(Bad::new("malformed map column")),
            },
            _ => Err(mismatch(&self.field, "map")),
        }
    }

    /// Closes a list or map slot after its items were pushed.
    pub(crate) fn end_list(&mut self) -> Result<(), Bad> {
        match &mut self.data {
            Data::List { offsets, item } => {
                offsets.push(
                    i32::try_from(item.len())
                        .map_err(|_| Bad::new("more than 2^31 list items in the batch"))?,
                );
            }
            Data::Map { offsets, entries } => {
                // Entries are never null: keep the struct's validity in step
                // with its children.
                let children_len = entries.children().first().map_or(0, Column::len);
                while entries.valid.len() < children_len {
                    entries.valid.push(true);
                }
                offsets.push(
                    i32::try_from(children_len)
                        .map_err(|_| Bad::new("more than 2^31 map entries in the batch"))?,
                );
            }
            _ => return Err(mismatch(&self.field, "array")),
        }
        self.valid.push(true);
        Ok(())
    }

    /// Cuts the column back to `len` slots (children to what those slots
    /// reference).
    pub(crate) fn truncate(&mut self, len: usize) {
        // Children may hold items of an unfinished slot beyond what the
        // offsets say: cut them even when `len` equals the slot count.
        if len > self.valid.len() {
            return;
        }
        self.valid.truncate(len);
        match &mut self.data {
            Data::Bool(v) => v.truncate(len),
            Data::I32(v) => v.truncate(len),
            Data::I64(v) => v.truncate(len),
            Data::F32(v) => v.truncate(len),
            Data::F64(v) => v.truncate(len),
            Data::Decimal { values, .. } => values.truncate(len),
            Data::Utf8 { offsets, bytes } => {
                offsets.truncate(len + 1);
                bytes.truncate(offsets[len] as usize);
            }
            Data::LargeBinary { offsets, bytes } => {
                offsets.truncate(len + 1);
                bytes.truncate(offsets[len] as usize);
            }
            Data::Fixed { size, bytes } => bytes.truncate(len * *size),
            Data::List { offsets, item } => {
                offsets.truncate(len + 1);
                item.truncate(offsets[len] as usize);
            }
            Data::Map { offsets, entries } => {
                offsets.truncate(len + 1);
                let keep = offsets[len] as usize;
                entries.valid.truncate(keep);
                for child in entries.children_mut() {
                    child.truncate(keep);
                }
            }
            Data::Struct(children) => children.iter_mut().for_each(|c| c.truncate(len)),
        }
    }

    fn children_mut(&mut self) -> &mut [Column] {
        match &mut self.data {
            Data::Struct(children) => children,
            _ => &mut [],
        }
    }

    /// Approximate bytes held.
    pub(crate) fn byte_size(&self) -> usize {
        let data = match &self.data {
            Data::Bool(v) => v.len(),
            Data::I32(v) => v.len() * 4,
            Data::I64(v) => v.len() * 8,
            Data::F32(v) => v.len() * 4,
            Data::F64(v) => v.len() * 8,
            Data::Decimal { values, .. } => values.len() * 16,
            Data::Utf8 { offsets, bytes } => offsets.len() * 4 + bytes.len(),
            Data::LargeBinary { offsets, bytes } => offsets.len() * 8 + bytes.len(),
            Data::Fixed { bytes, .. } => bytes.len(),
            Data::List { offsets, item } => offsets.len() * 4 + item.byte_size(),
            Data::Map { offsets, entries } => offsets.len() * 4 + entries.byte_size(),
            Data::Struct(children) => children.iter().map(Column::byte_size).sum(),
        };
        data + self.valid.len() / 8
    }

    /// The Arrow array of everything pushed; the column is empty afterwards.
    pub(crate) fn finish(&mut self) -> Result<ArrayRef, ArrowError> {
        let valid = take_sized(&mut self.valid);
        let len = valid.len();
        let nulls = if valid.iter().all(|v| *v) {
            None
        } else {
            Some(NullBuffer::from(valid))
        };
        let data_type = self.field.data_type().clone();
        let array: ArrayRef = match &mut self.data {
            Data::Bool(v) => Arc::new(BooleanArray::new(take_sized(v).into(), nulls)),
            Data::I32(v) => match data_type {
                DataType::Date32 => primitive::<Date32Type>(v, nulls, data_type),
                _ => primitive::<Int32Type>(v, nulls, data_type),
            },
            Data::I64(v) => match data_type {
                DataType::Time64(_) => primitive::<Time64MicrosecondType>(v, nulls, data_type),
                DataType::Timestamp(TimeUnit::Microsecond, _) => {
                    primitive::<TimestampMicrosecondType>(v, nulls, data_type)
                }
                DataType::Timestamp(_, _) => {
                    primitive::<TimestampNanosecondType>(v, nulls, data_type)
                }
                _ => primitive::<Int64Type>(v, nulls, data_type),
            },
            Data::F32(v) => primitive::<Float32Type>(v, nulls, data_type),
            Data::F64(v) => primitive::<Float64Type>(v, nulls, data_type),
            Data::Decimal { values, .. } => primitive::<Decimal128Type>(values, nulls, data_type),
            Data::Utf8 { offsets, bytes } => {
                let offsets = OffsetBuffer::new(ScalarBuffer::from(take_offsets(offsets)));
                Arc::new(StringArray::try_new(
                    offsets,
                    Buffer::from(take_sized(bytes)),
                    nulls,
                )?)
            }
            Data::LargeBinary { offsets, bytes } => {
                let offsets = OffsetBuffer::new(ScalarBuffer::from(take_offsets(offsets)));
                Arc::new(LargeBinaryArray::try_new(
                    offsets,
                    Buffer::from(take_sized(bytes)),
                    nulls,
                )?)
            }
            Data::Fixed { size, bytes } => {
                let size = i32::try_from(*size)
                    .map_err(|_| ArrowError::InvalidArgumentError("fixed size".into()))?;
                if len == 0 {
                    Arc::new(FixedSizeBinaryArray::new_null(size, 0))
                } else {
                    Arc::new(FixedSizeBinaryArray::try_new(
                        size,
                        Buffer::from(take_sized(bytes)),
                        nulls,
                    )?)
                }
            }
            Data::List { offsets, item } => {
                let DataType::List(item_field) = data_type else {
                    unreachable!("list data for a list type")
                };
                let offsets = OffsetBuffer::new(ScalarBuffer::from(take_offsets(offsets)));
                Arc::new(ListArray::try_new(
                    item_field,
                    offsets,
                    item.finish()?,
                    nulls,
                )?)
            }
            Data::Map { offsets, entries } => {
                let DataType::Map(entries_field, ordered) = data_type else {
                    unreachable!("map data for a map type")
                };
                let offsets = OffsetBuffer::new(ScalarBuffer::from(take_offsets(offsets)));
                let entries = entries.finish()?;
                let entries = entries
                    .as_any()
                    .downcast_ref::<StructArray>()
                    .ok_or_else(|| ArrowError::InvalidArgumentError("map entries".into()))?
                    .clone();
                Arc::new(MapArray::try_new(
                    entries_field,
                    offsets,
                    entries,
                    nulls,
                    ordered,
                )?)
            }
            Data::Struct(children) => {
                let DataType::Struct(fields) = data_type else {
                    unreachable!("struct data for a struct type")
                };
                let arrays = children
                    .iter_mut()
                    .map(Column::finish)
                    .collect::<Result<Vec<_>, _>>()?;
                struct_array(fields, arrays, nulls, len)?
            }
        };
        Ok(array)
    }
}

/// The buffer's contents, leaving an empty one with the same capacity: the
/// next batch is about as large, and growing a fresh buffer by doubling
/// (reallocating, copying, faulting in new pages) was the largest cost of
/// row conversion (benches/RESULTS.md, "Iceberg projection").
fn take_sized<T>(buffer: &mut Vec<T>) -> Vec<T> {
    let capacity = buffer.len();
    mem::replace(buffer, Vec::with_capacity(capacity))
}

/// Like [`take_sized`] for an offsets buffer, which starts at `[0]`.
fn take_offsets<T: Default>(offsets: &mut Vec<T>) -> Vec<T> {
    let mut next = Vec::with_capacity(offsets.len());
    next.push(T::default());
    mem::replace(offsets, next)
}

fn primitive<T: ArrowPrimitiveType>(
    values: &mut Vec<T::Native>,
    nulls: Option<NullBuffer>,
    data_type: DataType,
) -> ArrayRef {
    let values = ScalarBuffer::from(take_sized(values));
    Arc::new(PrimitiveArray::<T>::new(values, nulls).with_data_type(data_type))
}

fn struct_array(
    fields: Fields,
    arrays: Vec<ArrayRef>,
    nulls: Option<NullBuffer>,
    len: usize,
) -> Result<ArrayRef, ArrowError> {
    Ok(Arc::new(StructArray::try_new_with_length(
        fields, arrays, nulls, len,
    )?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::Array;
    use arrow_schema::Field;

    #[test]
    fn truncate_cuts_nested_buffers_back() {
        let item = Arc::new(Field::new("element", DataType::Utf8, true));
        let field = Arc::new(Field::new("tags", DataType::List(item), true));
        let mut column = Column::new(&field).unwrap();
        column.list_item().unwrap().push_str("a").unwrap();
        column.end_list().unwrap();
        column.list_item().unwrap().push_str("bb").unwrap();
        column.list_item().unwrap().push_str("cc").unwrap();
        column.end_list().unwrap();
        column.truncate(1);
        column.push_null().unwrap();
        let array = column.finish().unwrap();
        let list = array.as_any().downcast_ref::<ListArray>().unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!(list.values().len(), 1);
        assert!(list.is_null(1));
    }

    #[test]
    fn required_column_refuses_null_and_decimal_checks_precision() {
        let field = Arc::new(Field::new("d", DataType::Decimal128(4, 2), false));
        let mut column = Column::new(&field).unwrap();
        assert!(column.push_null().is_err());
        column.push_decimal(9999).unwrap();
        assert!(column.push_decimal(10000).is_err());
        assert!(column.push_decimal(-10000).is_err());
        assert_eq!(column.len(), 1);
    }
}
