//! Kafka records to Iceberg rows: the table schema of each `iceberg.mode`,
//! row conversion into Arrow record batches, and schema evolution.
//!
//! # Tables
//! Every table has the required struct column `kafka { partition int
//! (required), offset long (required), timestamp timestamptz, timestamp_type
//! int, key binary, headers list<struct<key string (required), value
//! binary>> }`. `timestamp` is null when the record has none (negative).
//! - `key_value` ([`key_value_schema`]): plus `value binary`.
//! - schema modes ([`value_schema`]): plus the value's fields as top-level
//!   columns. A value field whose name equals `kafka` (ignoring case) is
//!   stored as `kafka_` (more `_` until unique). A value schema that is not a
//!   record/message/object becomes one column `value`.
//! - DLQ `<topic>~dlq` ([`dlq_schema`]): `key_value` plus `reason string`.
//!
//! Value columns are all optional, at every level (list elements and map
//! values too): value schemas evolve by registry-compatible steps (fields
//! removed, made nullable) and Iceberg cannot loosen what a reader already
//! relies on without a schema change, so nothing in the value is required.
//!
//! # Type mapping
//! - Avro ([`avro`]): record -> struct, array -> list, map -> map<string, T>,
//!   `[null, T]` -> T, other unions -> struct of optional members named by
//!   type (`int`, `string`, `array`, a named type's simple name, a logical
//!   type's snake-case name; `member<position>` for all when names collide;
//!   a null value makes the struct null), enum -> string, fixed(n) ->
//!   fixed(n), bytes -> binary, decimal(p,s) -> decimal(p,s) (p <= 38), date,
//!   time-millis/micros -> time, timestamp-millis/micros/nanos ->
//!   timestamptz, local-timestamp-* -> timestamp (nanos floored to micros),
//!   uuid -> string, duration -> fixed(12), big-decimal -> binary. The
//!   `null` type and records without storable fields get no column.
//!   Recursive records are refused.
//! - Protobuf ([`protobuf`]): message -> struct, repeated -> list, map ->
//!   map (key type mapped like a scalar), enum -> string (the value name;
//!   the number as text when unknown), oneof members -> optional fields,
//!   int32/sint32/sfixed32 -> int, uint32/fixed32 -> long, int64/sint64/
//!   sfixed64/uint64/fixed64 -> long (a uint64 above i64::MAX fails the
//!   record), float, double, bool, string, bytes -> binary,
//!   google.protobuf.Timestamp -> timestamptz, google.protobuf.*Value
//!   wrappers -> the optional primitive, google.protobuf.Struct/Value/
//!   ListValue -> string (JSON text). Scalars without presence are written
//!   with their default value when absent; fields with presence are null.
//!   Recursive messages are refused.
//! - JSON Schema ([`json`]): object with properties -> struct (properties in
//!   name order), array -> list of `items`, string (format date-time ->
//!   timestamptz, date -> date, others and uuid -> string), integer -> long,
//!   number (or integer|number) -> double, boolean; `["null", T]` and
//!   `oneOf`/`anyOf` of null and one schema -> T; local `$ref`s followed.
//!   Anything else (several types, objects without properties, `{}`,
//!   recursion) -> string holding the value's JSON text. `additionalProperties`
//!   and properties not in the schema are ignored; documents are not
//!   validated against the schema, only against the columns.
//!
//! # Decoding
//! [`RowBuilder`] is made for one table schema (Arrow schema from
//! `iceberg::arrow::schema_to_arrow_schema`, field ids included). A
//! [`Decoder`], made by [`RowBuilder::decoder`] for one value schema and
//! that table, reads the record's whole value: with
//! [`Framing::SchemaIdPrefix`] it checks the 5-byte Confluent header (and
//! reads Protobuf message indexes), with [`Framing::Plain`] the value is the
//! bare payload. A record either adds one complete row or, on error, nothing.
//!
//! [`evolve`] turns a table schema into one that also holds a new value
//! schema, keeping field ids.

mod avro;
mod column;
mod evolve;
mod json;
mod protobuf;
mod rows;
mod shape;

use arrow_schema::{DataType, Fields};
use schemas::ParsedSchema;
use schemas::wire::SchemaId;

pub use evolve::{EvolveError, evolve};
pub use rows::{Decoder, RowBuilder};
pub use shape::{KAFKA_COLUMN, REASON_COLUMN, VALUE_COLUMN, dlq_schema, key_value_schema};

/// How a record's value bytes carry the value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// Confluent wire format: magic byte 0, the schema id (must be this
    /// one), for Protobuf the message-index path, then the payload
    /// (`value_schema_id_prefix`).
    SchemaIdPrefix(SchemaId),
    /// The bare payload; Protobuf values are the message named at
    /// construction (`value_schema_latest`).
    Plain,
}

/// Why a schema could not be mapped or a record not converted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConvertError {
    /// The value schema has a construct with no Iceberg equivalent.
    #[error("value schema cannot be a table: {reason}")]
    UnmappableSchema { reason: String },
    /// The table schema cannot hold values of the schema (evolve it first),
    /// or lacks a column the operation needs.
    #[error("table schema does not fit: {reason}")]
    TableMismatch { reason: String },
    /// The record could not be decoded or does not fit the table; it added
    /// no row. `reason` is what goes to the DLQ table.
    #[error("record at partition {partition} offset {offset}: {reason}")]
    BadRecord {
        partition: i32,
        offset: i64,
        reason: String,
    },
    /// iceberg-rust refused a schema built here.
    #[error("invalid iceberg schema")]
    InvalidSchema {
        #[source]
        source: iceberg::Error,
    },
    /// Arrow refused the buffers (a bug in the converter).
    #[error("building the arrow batch")]
    Arrow {
        #[source]
        source: arrow_schema::ArrowError,
    },
}

impl ConvertError {
    /// The short reason of a [`ConvertError::BadRecord`] (the DLQ `reason`),
    /// or the whole message for the other variants.
    pub fn reason(&self) -> String {
        match self {
            ConvertError::BadRecord { reason, .. } => reason.clone(),
            other => other.to_string(),
        }
    }
}

/// The table schema for values of `schema`: `kafka` plus the value's
/// columns. For Protobuf, `message` is the message-index path of the value's
/// type (`[0]`: the first message of the file); other formats ignore it.
pub fn value_schema(
    schema: &ParsedSchema,
    message: &[i64],
) -> Result<iceberg::spec::Schema, ConvertError> {
    let unmappable = |reason: String| ConvertError::UnmappableSchema { reason };
    let shape = match schema {
        ParsedSchema::Avro(s) => avro::shape(s).map_err(unmappable)?,
        ParsedSchema::Protobuf(s) => {
            let descriptor = protobuf::message(s, message).map_err(unmappable)?;
            protobuf::shape(&descriptor).map_err(unmappable)?
        }
        ParsedSchema::Json(s) => json::shape(s.value()).map_err(unmappable)?,
    };
    shape::value_table(shape)
}

/// The top-level columns a value's root writes to.
pub(crate) struct RootColumns<'a> {
    fields: &'a Fields,
    /// Index of the `kafka` column, never written by value decoders.
    kafka: usize,
}

impl RootColumns<'_> {
    /// Column names for the root record's fields (the `kafka` rename).
    fn names_for<'n>(&self, names: impl Iterator<Item = &'n str>) -> Vec<String> {
        shape::top_level_names(names)
    }

    /// Index of the `value` column a non-record root goes to.
    fn value_column(&self) -> Result<usize, String> {
        self.fields
            .iter()
            .position(|f| f.name() == VALUE_COLUMN)
            .ok_or_else(|| "the table has no value column for a non-record value".to_owned())
    }

    /// Matches the root's field names to columns: the column index of each
    /// (None: the field is not stored, `stored` said so) and the columns no
    /// field fills (to be set null).
    fn match_names(
        &self,
        names: &[(String, bool)],
    ) -> Result<(Vec<Option<usize>>, Vec<usize>), String> {
        let renamed = self.names_for(names.iter().map(|(n, _)| n.as_str()));
        match_fields(self.fields, &renamed, names, Some(self.kafka))
    }
}

/// Matches field names (`stored` false: no column) to the struct's fields by
/// `column_names`; returns each field's column and the unfilled columns.
fn match_fields(
    target: &Fields,
    column_names: &[String],
    names: &[(String, bool)],
    skip: Option<usize>,
) -> Result<(Vec<Option<usize>>, Vec<usize>), String> {
    let mut used = vec![false; target.len()];
    let mut columns = Vec::with_capacity(names.len());
    for ((_, stored), column_name) in names.iter().zip(column_names) {
        if !stored {
            columns.push(None);
            continue;
        }
        let index = target
            .iter()
            .position(|f| f.name() == column_name)
            .ok_or_else(|| format!("the table has no column {column_name}"))?;
        used[index] = true;
        columns.push(Some(index));
    }
    let missing = (0..target.len())
        .filter(|i| !used[*i] && Some(*i) != skip)
        .collect();
    Ok((columns, missing))
}

/// Checks a column type (`None`: no column) against what a value needs.
fn fits(
    data_type: Option<&DataType>,
    ok: impl Fn(&DataType) -> bool,
    what: &str,
) -> Result<(), String> {
    match data_type {
        Some(dt) if !ok(dt) => Err(format!("{what} does not fit column type {dt}")),
        _ => Ok(()),
    }
}

/// The fields of a struct data type.
fn nested_fields(data_type: &DataType) -> Option<&Fields> {
    match data_type {
        DataType::Struct(fields) => Some(fields),
        _ => None,
    }
}
