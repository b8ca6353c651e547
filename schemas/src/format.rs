//! What every schema format provides: parse with references, canonical
//! text, compatibility between two parsed schemas, payload validation.
//! The formats themselves live in `avro`, `protobuf` and `json`.

use std::fmt;

use crate::error::PayloadError;
use crate::model::SchemaType;
use crate::{avro, json, protobuf};

/// A referenced schema, resolved for parsing: the import name it is known by
/// and its stored text. Parsers get the whole transitive closure, with
/// dependencies before the schemas that use them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedReference {
    /// The import name (Avro full name, `.proto` path, JSON `$ref`).
    pub name: String,
    /// The referenced schema's format.
    pub schema_type: SchemaType,
    /// Its canonical text.
    pub text: String,
}

/// One way in which a reader schema cannot read a writer schema's data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incompatibility {
    /// Confluent's name for the kind of problem (`READER_FIELD_MISSING_DEFAULT_VALUE`, ...).
    pub error_type: &'static str,
    /// Where in the schema (`/fields/1/type`, a message name, a JSON pointer).
    pub path: String,
    /// A sentence saying what breaks.
    pub description: String,
}

impl fmt::Display for Incompatibility {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{{errorType:'{}', description:'{}', additionalInfo:'{}'}}",
            self.error_type, self.description, self.path
        )
    }
}

/// How the two schemas of a check are named in messages: for a BACKWARD
/// check the reader is the new schema, for FORWARD it is the old one.
#[derive(Debug, Clone, Copy)]
pub struct Labels {
    /// Name of the reader schema in messages.
    pub reader: &'static str,
    /// Name of the writer schema in messages.
    pub writer: &'static str,
}

/// A schema parsed and validated, ready for compatibility checks and payload
/// validation.
#[derive(Debug)]
pub enum ParsedSchema {
    /// An Avro schema.
    Avro(avro::AvroSchema),
    /// A Protobuf file.
    Protobuf(protobuf::ProtoSchema),
    /// A JSON Schema.
    Json(json::JsonSchema),
}

impl ParsedSchema {
    /// Parses `text` as `schema_type`, resolving `references`. The error is
    /// the parser's message.
    pub fn parse(
        schema_type: SchemaType,
        text: &str,
        references: &[ResolvedReference],
    ) -> Result<ParsedSchema, String> {
        Ok(match schema_type {
            SchemaType::Avro => ParsedSchema::Avro(avro::AvroSchema::parse(text, references)?),
            SchemaType::Protobuf => {
                ParsedSchema::Protobuf(protobuf::ProtoSchema::parse(text, references)?)
            }
            SchemaType::Json => ParsedSchema::Json(json::JsonSchema::parse(text, references)?),
        })
    }

    /// The format.
    pub fn schema_type(&self) -> SchemaType {
        match self {
            ParsedSchema::Avro(_) => SchemaType::Avro,
            ParsedSchema::Protobuf(_) => SchemaType::Protobuf,
            ParsedSchema::Json(_) => SchemaType::Json,
        }
    }

    /// The text to store: equal schemas give equal text. `normalize` asks
    /// for the stronger normalization of the format (see each module).
    pub fn canonical(&self, normalize: bool) -> String {
        match self {
            ParsedSchema::Avro(s) => s.canonical(normalize),
            ParsedSchema::Protobuf(s) => s.canonical(),
            ParsedSchema::Json(s) => s.canonical(),
        }
    }

    /// What breaks when data written with `writer` is read with `reader`.
    /// Empty means compatible.
    pub fn incompatibilities(
        reader: &ParsedSchema,
        writer: &ParsedSchema,
        labels: Labels,
    ) -> Vec<Incompatibility> {
        match (reader, writer) {
            (ParsedSchema::Avro(r), ParsedSchema::Avro(w)) => avro::incompatibilities(r, w, labels),
            (ParsedSchema::Protobuf(r), ParsedSchema::Protobuf(w)) => {
                protobuf::incompatibilities(r, w, labels)
            }
            (ParsedSchema::Json(r), ParsedSchema::Json(w)) => json::incompatibilities(r, w, labels),
            _ => vec![Incompatibility {
                error_type: "TYPE_MISMATCH",
                path: "/".to_owned(),
                description: format!(
                    "The {} schema is {} but the {} schema is {}",
                    labels.reader,
                    reader.schema_type(),
                    labels.writer,
                    writer.schema_type()
                ),
            }],
        }
    }

    /// Checks that `payload` (the bytes after the 5-byte wire header) is a
    /// valid datum of this schema: an Avro datum, a Protobuf message-index
    /// path and message, or a JSON document that validates.
    pub fn validate_payload(&self, payload: &[u8]) -> Result<(), PayloadError> {
        match self {
            ParsedSchema::Avro(s) => s.validate_payload(payload),
            ParsedSchema::Protobuf(s) => s.validate_payload(payload),
            ParsedSchema::Json(s) => s.validate_payload(payload),
        }
    }
}

/// Writes `value` as compact JSON with object keys sorted, independent of
/// serde_json's `preserve_order` feature (which another crate of the
/// workspace may turn on): the canonical text must not depend on the build.
pub(crate) fn canonical_json(value: &serde_json::Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &serde_json::Value, out: &mut String) {
    use serde_json::Value;
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                write_canonical(&map[key.as_str()], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_json_sorts_keys_and_drops_whitespace() {
        let a: serde_json::Value =
            serde_json::from_str(r#"{ "b": [1, {"y":2, "x":1}], "a": "é\"" }"#).unwrap();
        assert_eq!(canonical_json(&a), r#"{"a":"é\"","b":[1,{"x":1,"y":2}]}"#);
    }
}
