//! [`RowBuilder`]: rows of one table schema, appended record by record and
//! handed out as Arrow record batches; [`Decoder`]: one value schema
//! compiled against that table.

use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::{DataType, SchemaRef};
use schemas::ParsedSchema;
use schemas::wire::Framed;

use super::column::{Bad, Column};
use super::shape::{KAFKA_COLUMN, REASON_COLUMN, VALUE_COLUMN};
use super::{ConvertError, Framing, RootColumns, avro, json, protobuf};
use crate::SinkRecord;

/// What a child of the `kafka` struct holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Meta {
    Partition,
    Offset,
    Timestamp,
    TimestampType,
    Key,
    Headers,
    /// A column this version does not know (left null).
    Other,
}

/// Appends rows for one table schema. See the [module docs](super) for the
/// table shapes.
#[derive(Debug)]
pub struct RowBuilder {
    arrow: SchemaRef,
    columns: Vec<Column>,
    kafka: usize,
    meta: Vec<Meta>,
    /// Positions of `key` and `value` in a header struct.
    header_key: Option<usize>,
    header_value: Option<usize>,
    value: Option<usize>,
    reason: Option<usize>,
    rows: usize,
}

fn mismatch(reason: impl Into<String>) -> ConvertError {
    ConvertError::TableMismatch {
        reason: reason.into(),
    }
}

impl RowBuilder {
    /// A builder for rows of `table` (the table's current schema). Fails when
    /// the schema has no `kafka` struct column or types the converter does
    /// not write.
    pub fn new(table: &iceberg::spec::Schema) -> Result<RowBuilder, ConvertError> {
        let arrow = iceberg::arrow::schema_to_arrow_schema(table)
            .map_err(|source| ConvertError::InvalidSchema { source })?;
        let arrow = Arc::new(arrow);
        let columns = arrow
            .fields()
            .iter()
            .map(Column::new)
            .collect::<Result<Vec<_>, _>>()
            .map_err(mismatch)?;
        let kafka = arrow
            .fields()
            .iter()
            .position(|f| f.name() == KAFKA_COLUMN)
            .ok_or_else(|| mismatch("no kafka column"))?;
        let DataType::Struct(kafka_fields) = arrow.field(kafka).data_type() else {
            return Err(mismatch("the kafka column is not a struct"));
        };
        let mut header_key = None;
        let mut header_value = None;
        let meta = kafka_fields
            .iter()
            .map(|f| match (f.name().as_str(), f.data_type()) {
                ("partition", DataType::Int32) => Meta::Partition,
                ("offset", DataType::Int64) => Meta::Offset,
                ("timestamp", DataType::Timestamp(_, Some(_))) => Meta::Timestamp,
                ("timestamp_type", DataType::Int32) => Meta::TimestampType,
                ("key", DataType::LargeBinary) => Meta::Key,
                ("headers", DataType::List(item)) => match item.data_type() {
                    DataType::Struct(fields) => {
                        header_key = fields
                            .iter()
                            .position(|f| f.name() == "key" && *f.data_type() == DataType::Utf8);
                        header_value = fields.iter().position(|f| {
                            f.name() == "value" && *f.data_type() == DataType::LargeBinary
                        });
                        Meta::Headers
                    }
                    _ => Meta::Other,
                },
                _ => Meta::Other,
            })
            .collect();
        let position = |name: &str, data_type: DataType| {
            arrow
                .fields()
                .iter()
                .position(|f| f.name() == name && *f.data_type() == data_type)
        };
        Ok(RowBuilder {
            value: position(VALUE_COLUMN, DataType::LargeBinary),
            reason: position(REASON_COLUMN, DataType::Utf8),
            arrow: arrow.clone(),
            columns,
            kafka,
            meta,
            header_key,
            header_value,
            rows: 0,
        })
    }

    /// The Arrow schema of the batches (with `PARQUET:field_id` metadata).
    pub fn arrow_schema(&self) -> &SchemaRef {
        &self.arrow
    }

    /// Rows appended since the last [`RowBuilder::finish`].
    pub fn len(&self) -> usize {
        self.rows
    }

    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Approximate bytes buffered (for rolling batches and files).
    pub fn byte_size(&self) -> usize {
        self.columns.iter().map(Column::byte_size).sum()
    }

    /// A decoder of values of `schema` into this builder's table. For
    /// Protobuf, `message` is the message-index path of the value type (the
    /// one [`super::value_schema`] was called with). Fails when the table
    /// cannot hold the schema's values (evolve the table first).
    pub fn decoder(
        &self,
        schema: &ParsedSchema,
        message: &[i64],
        framing: Framing,
    ) -> Result<Decoder, ConvertError> {
        let root = RootColumns {
            fields: self.arrow.fields(),
            kafka: self.kafka,
        };
        let plan = match schema {
            ParsedSchema::Avro(s) => Plan::Avro(avro::Plan::compile(s, &root).map_err(mismatch)?),
            ParsedSchema::Protobuf(s) => {
                Plan::Protobuf(protobuf::Plan::compile(s, message, &root).map_err(mismatch)?)
            }
            ParsedSchema::Json(s) => {
                Plan::Json(json::Plan::compile(s.value(), &root).map_err(mismatch)?)
            }
        };
        Ok(Decoder {
            arrow: self.arrow.clone(),
            framing,
            plan,
        })
    }

    /// Appends a `key_value` row (also fills `kafka` in any table).
    pub fn push_key_value(&mut self, record: &SinkRecord<'_>) -> Result<(), ConvertError> {
        let value = self
            .value
            .ok_or_else(|| mismatch("no value binary column"))?;
        self.push_with(record, |columns| match record.value {
            Some(bytes) => columns[value].push_bytes(bytes),
            None => columns[value].push_null(),
        })
    }

    /// Appends a row for the decoded value: all of it or, on error, nothing
    /// (the error's [`ConvertError::reason`] is for the DLQ). A null value
    /// (tombstone) makes a row whose value columns are all null.
    pub fn push_value(
        &mut self,
        record: &SinkRecord<'_>,
        decoder: &Decoder,
    ) -> Result<(), ConvertError> {
        if !Arc::ptr_eq(&decoder.arrow, &self.arrow) && decoder.arrow != self.arrow {
            return Err(mismatch("the decoder was made for another table schema"));
        }
        self.push_with(record, |columns| match record.value {
            Some(value) => decoder.decode(value, columns),
            None => Ok(()),
        })
    }

    /// Appends a row for a record without a value (a tombstone in a schema
    /// mode): `kafka`, and nulls in every other column.
    pub fn push_null_value(&mut self, record: &SinkRecord<'_>) -> Result<(), ConvertError> {
        self.push_with(record, |_| Ok(()))
    }

    /// Appends a DLQ row: `kafka`, the raw value and `reason`.
    pub fn push_dlq(&mut self, record: &SinkRecord<'_>, reason: &str) -> Result<(), ConvertError> {
        let (Some(value), Some(reason_column)) = (self.value, self.reason) else {
            return Err(mismatch("no value and reason columns (not a DLQ table)"));
        };
        self.push_with(record, |columns| {
            match record.value {
                Some(bytes) => columns[value].push_bytes(bytes)?,
                None => columns[value].push_null()?,
            }
            columns[reason_column].push_str(reason)
        })
    }

    /// Runs `fill` on the columns, then writes `kafka` and nulls in every
    /// column left unwritten; on any error cuts everything back.
    fn push_with(
        &mut self,
        record: &SinkRecord<'_>,
        fill: impl FnOnce(&mut [Column]) -> Result<(), Bad>,
    ) -> Result<(), ConvertError> {
        let result = fill(&mut self.columns).and_then(|()| self.push_kafka(record));
        let result = result.and_then(|()| {
            for column in &mut self.columns {
                if column.len() == self.rows {
                    let name = column.field().name().clone();
                    column.push_null().map_err(|e| e.at(&name))?;
                }
            }
            Ok(())
        });
        match result {
            Ok(()) => {
                self.rows += 1;
                Ok(())
            }
            Err(bad) => {
                for column in &mut self.columns {
                    column.truncate(self.rows);
                }
                Err(ConvertError::BadRecord {
                    partition: record.partition,
                    offset: record.offset,
                    reason: bad.reason(),
                })
            }
        }
    }

    fn push_kafka(&mut self, record: &SinkRecord<'_>) -> Result<(), Bad> {
        let (header_key, header_value) = (self.header_key, self.header_value);
        let children = self.columns[self.kafka].begin_struct()?;
        for (child, meta) in children.iter_mut().zip(&self.meta) {
            match meta {
                Meta::Partition => child.push_i32(record.partition)?,
                Meta::Offset => child.push_i64(record.offset)?,
                Meta::Timestamp => match record.timestamp_ms.checked_mul(1000) {
                    Some(micros) if record.timestamp_ms >= 0 => child.push_micros(micros)?,
                    _ => child.push_null()?,
                },
                Meta::TimestampType => child.push_i32(record.timestamp_type)?,
                Meta::Key => match record.key {
                    Some(key) => child.push_bytes(key)?,
                    None => child.push_null()?,
                },
                Meta::Headers => {
                    let item = child.list_item()?;
                    for header in record.headers {
                        let fields = item.begin_struct()?;
                        for (i, field) in fields.iter_mut().enumerate() {
                            if Some(i) == header_key {
                                field.push_str(&String::from_utf8_lossy(header.key))?;
                            } else if Some(i) == header_value
                                && let Some(value) = header.value
                            {
                                field.push_bytes(value)?;
                            } else {
                                field.push_null()?;
                            }
                        }
                    }
                    child.end_list()?;
                }
                Meta::Other => child.push_null()?,
            }
        }
        Ok(())
    }

    /// The rows appended so far as one batch; the builder is empty after.
    pub fn finish(&mut self) -> Result<RecordBatch, ConvertError> {
        let arrow = |source| ConvertError::Arrow { source };
        let arrays = self
            .columns
            .iter_mut()
            .map(Column::finish)
            .collect::<Result<Vec<_>, _>>()
            .map_err(arrow)?;
        self.rows = 0;
        RecordBatch::try_new(self.arrow.clone(), arrays).map_err(arrow)
    }
}

#[derive(Debug)]
enum Plan {
    Avro(avro::Plan),
    Protobuf(protobuf::Plan),
    Json(json::Plan),
}

/// One value schema compiled against one table schema (see
/// [`RowBuilder::decoder`]). Immutable: share it across records.
#[derive(Debug)]
pub struct Decoder {
    arrow: SchemaRef,
    framing: Framing,
    plan: Plan,
}

impl Decoder {
    /// The framing this decoder expects.
    pub fn framing(&self) -> Framing {
        self.framing
    }

    fn decode(&self, value: &[u8], columns: &mut [Column]) -> Result<(), Bad> {
        let (payload, framed) = match self.framing {
            Framing::Plain => (value, false),
            Framing::SchemaIdPrefix(id) => {
                let framed = Framed::parse(value).map_err(|e| Bad::new(e.to_string()))?;
                if framed.schema_id != id {
                    return Err(Bad::new(format!(
                        "value has schema id {}, the decoder is for {}",
                        framed.schema_id.0, id.0
                    )));
                }
                (framed.payload, true)
            }
        };
        match &self.plan {
            Plan::Avro(plan) => plan.decode(payload, columns),
            Plan::Protobuf(plan) => plan.decode(payload, framed, columns),
            Plan::Json(plan) => plan.decode(payload, columns),
        }
    }
}
