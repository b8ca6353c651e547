//! Avro: parsing with references, canonical text, schema-resolution
//! compatibility and datum validation (apache-avro does the parsing and
//! decoding; the resolution rules are checked here so that every problem is
//! named with its path).
//!
//! Canonical text: the schema JSON, compact, object keys sorted. With
//! `normalize`, the schema as apache-avro understands it (names fully
//! qualified, unknown attributes dropped), compact and sorted.

use std::collections::{HashMap, HashSet};

use apache_avro::Schema;
use apache_avro::schema::{Name, RecordSchema};

use crate::error::PayloadError;
use crate::format::{Incompatibility, Labels, ResolvedReference, canonical_json};

/// A parsed Avro schema and the named schemas it references.
#[derive(Debug)]
pub struct AvroSchema {
    schema: Schema,
    referenced: Vec<Schema>,
    json: serde_json::Value,
}

impl AvroSchema {
    /// Parses `text`; `references` are named Avro types (records, enums,
    /// fixed) it may use by name.
    pub fn parse(text: &str, references: &[ResolvedReference]) -> Result<AvroSchema, String> {
        let json: serde_json::Value =
            serde_json::from_str(text).map_err(|e| format!("Invalid schema JSON: {e}"))?;
        let (schema, referenced) = if references.is_empty() {
            (Schema::parse(&json).map_err(|e| e.to_string())?, Vec::new())
        } else {
            let texts: Vec<&str> = references.iter().map(|r| r.text.as_str()).collect();
            Schema::parse_str_with_list(text, texts).map_err(|e| e.to_string())?
        };
        Ok(AvroSchema {
            schema,
            referenced,
            json,
        })
    }

    /// The parsed schema.
    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    /// The referenced schemas it was parsed with (where the named types of
    /// its `Schema::Ref`s may be defined).
    pub fn referenced(&self) -> &[Schema] {
        &self.referenced
    }

    /// The canonical text (see the module docs).
    pub fn canonical(&self, normalize: bool) -> String {
        if normalize && let Ok(value) = serde_json::to_value(&self.schema) {
            return canonical_json(&value);
        }
        canonical_json(&self.json)
    }

    /// Decodes one datum; every byte must be consumed. The decoder is
    /// Floe's own validating walk (no values are built): every length read
    /// off the wire is checked against the bytes that remain, before any
    /// allocation, and the work is bounded by the payload size.
    pub fn validate_payload(&self, payload: &[u8]) -> Result<(), PayloadError> {
        let names = self.names();
        let mut datum = Datum {
            bytes: payload,
            pos: 0,
            names: &names,
            budget: payload.len().saturating_mul(16).saturating_add(1024),
        };
        datum
            .value(&self.schema, 0)
            .map_err(|e| PayloadError::new(format!("avro decode at byte {}: {e}", datum.pos)))?;
        if datum.pos != payload.len() {
            return Err(PayloadError::new(format!(
                "avro decode: {} trailing bytes after the datum",
                payload.len() - datum.pos
            )));
        }
        Ok(())
    }

    fn names(&self) -> HashMap<String, &Schema> {
        let mut names = HashMap::new();
        collect_names(&self.schema, &mut names);
        for schema in &self.referenced {
            collect_names(schema, &mut names);
        }
        names
    }
}

fn collect_names<'a>(schema: &'a Schema, names: &mut HashMap<String, &'a Schema>) {
    match schema {
        Schema::Record(record) if names.insert(record.name.fullname(None), schema).is_none() => {
            for field in &record.fields {
                collect_names(&field.schema, names);
            }
        }
        Schema::Enum(e) => {
            names.insert(e.name.fullname(None), schema);
        }
        Schema::Fixed(f) => {
            names.insert(f.name.fullname(None), schema);
        }
        Schema::Array(a) => collect_names(&a.items, names),
        Schema::Map(m) => collect_names(&m.types, names),
        Schema::Union(u) => {
            for variant in u.variants() {
                collect_names(variant, names);
            }
        }
        Schema::Decimal(d) => collect_names(&d.inner, names),
        _ => {}
    }
}

/// A validating Avro binary decoder over one datum.
struct Datum<'p, 'n> {
    bytes: &'p [u8],
    pos: usize,
    names: &'n HashMap<String, &'n Schema>,
    /// Steps left: zero-length items (nulls, empty records) in huge array
    /// blocks would otherwise loop without consuming input.
    budget: usize,
}

const MAX_NESTING: usize = 128;

impl Datum<'_, '_> {
    fn take(&mut self, n: usize) -> Result<&[u8], String> {
        if n > self.bytes.len() - self.pos {
            return Err(format!(
                "needs {n} bytes, {} remain",
                self.bytes.len() - self.pos
            ));
        }
        let slice = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(slice)
    }

    fn long(&mut self) -> Result<i64, String> {
        let mut value: u64 = 0;
        for shift in (0..70).step_by(7) {
            let byte = self.take(1)?[0];
            if shift == 63 && byte > 1 {
                return Err("varint overflows 64 bits".to_owned());
            }
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(((value >> 1) as i64) ^ -((value & 1) as i64));
            }
        }
        Err("varint longer than 10 bytes".to_owned())
    }

    fn int(&mut self) -> Result<i32, String> {
        let v = self.long()?;
        i32::try_from(v).map_err(|_| format!("int out of range: {v}"))
    }

    fn length(&mut self) -> Result<usize, String> {
        let len = self.long()?;
        usize::try_from(len).map_err(|_| format!("negative length {len}"))
    }

    fn step(&mut self) -> Result<(), String> {
        self.budget = self
            .budget
            .checked_sub(1)
            .ok_or_else(|| "too many items for the payload size".to_owned())?;
        Ok(())
    }

    /// Array and map blocks: a count (negative: followed by a byte size),
    /// items, until a zero count.
    fn blocks(
        &mut self,
        depth: usize,
        mut item: impl FnMut(&mut Self, usize) -> Result<(), String>,
    ) -> Result<(), String> {
        loop {
            let count = self.long()?;
            if count == 0 {
                return Ok(());
            }
            if count < 0 {
                self.length()?;
            }
            let count = count.unsigned_abs();
            for _ in 0..count {
                self.step()?;
                item(self, depth + 1)?;
            }
        }
    }

    fn value(&mut self, schema: &Schema, depth: usize) -> Result<(), String> {
        if depth > MAX_NESTING {
            return Err("nesting deeper than 128".to_owned());
        }
        self.step()?;
        match schema {
            Schema::Null => Ok(()),
            Schema::Boolean => match self.take(1)?[0] {
                0 | 1 => Ok(()),
                b => Err(format!("invalid boolean byte {b}")),
            },
            Schema::Int | Schema::Date | Schema::TimeMillis => self.int().map(drop),
            Schema::Long
            | Schema::TimeMicros
            | Schema::TimestampMillis
            | Schema::TimestampMicros
            | Schema::TimestampNanos
            | Schema::LocalTimestampMillis
            | Schema::LocalTimestampMicros
            | Schema::LocalTimestampNanos => self.long().map(drop),
            Schema::Float => self.take(4).map(drop),
            Schema::Double => self.take(8).map(drop),
            Schema::Bytes | Schema::BigDecimal => {
                let len = self.length()?;
                self.take(len).map(drop)
            }
            Schema::String | Schema::Uuid => {
                let len = self.length()?;
                let bytes = self.take(len)?;
                std::str::from_utf8(bytes)
                    .map(drop)
                    .map_err(|e| format!("string is not UTF-8: {e}"))
            }
            Schema::Fixed(f) => self.take(f.size).map(drop),
            Schema::Duration => self.take(12).map(drop),
            Schema::Decimal(d) => self.value(&d.inner, depth + 1),
            Schema::Enum(e) => {
                let index = self.int()?;
                if index < 0 || index as usize >= e.symbols.len() {
                    return Err(format!(
                        "enum index {index} out of range for {}",
                        e.name.fullname(None)
                    ));
                }
                Ok(())
            }
            Schema::Union(u) => {
                let index = self.long()?;
                let branch = usize::try_from(index)
                    .ok()
                    .and_then(|i| u.variants().get(i))
                    .ok_or_else(|| format!("union index {index} out of range"))?;
                self.value(branch, depth + 1)
            }
            Schema::Array(a) => self.blocks(depth, |d, depth| d.value(&a.items, depth)),
            Schema::Map(m) => self.blocks(depth, |d, depth| {
                let len = d.length()?;
                d.take(len)?;
                d.value(&m.types, depth)
            }),
            Schema::Record(r) => {
                for field in &r.fields {
                    self.value(&field.schema, depth + 1)?;
                }
                Ok(())
            }
            Schema::Ref { name } => {
                let target = *self
                    .names
                    .get(&name.fullname(None))
                    .ok_or_else(|| format!("unknown named type {}", name.fullname(None)))?;
                self.value(target, depth + 1)
            }
        }
    }
}

/// What breaks when data written with `writer` is read with `reader`, by the
/// Avro specification's schema resolution rules.
pub fn incompatibilities(
    reader: &AvroSchema,
    writer: &AvroSchema,
    labels: Labels,
) -> Vec<Incompatibility> {
    let checker = Checker {
        reader_names: reader.names(),
        writer_names: writer.names(),
        labels,
    };
    let mut out = Vec::new();
    let mut visiting = HashSet::new();
    checker.check(&reader.schema, &writer.schema, "", &mut visiting, &mut out);
    out
}

/// The underlying Avro type of a schema, logical types mapped to what they
/// annotate (resolution ignores logical types, as the Java implementation does).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Primitive {
    Null,
    Boolean,
    Int,
    Long,
    Float,
    Double,
    Bytes,
    String,
}

fn primitive(schema: &Schema) -> Option<Primitive> {
    Some(match schema {
        Schema::Null => Primitive::Null,
        Schema::Boolean => Primitive::Boolean,
        Schema::Int | Schema::Date | Schema::TimeMillis => Primitive::Int,
        Schema::Long
        | Schema::TimeMicros
        | Schema::TimestampMillis
        | Schema::TimestampMicros
        | Schema::TimestampNanos
        | Schema::LocalTimestampMillis
        | Schema::LocalTimestampMicros
        | Schema::LocalTimestampNanos => Primitive::Long,
        Schema::Float => Primitive::Float,
        Schema::Double => Primitive::Double,
        Schema::Bytes | Schema::BigDecimal => Primitive::Bytes,
        Schema::String | Schema::Uuid => Primitive::String,
        _ => return None,
    })
}

fn promotable(writer: Primitive, reader: Primitive) -> bool {
    use Primitive::*;
    writer == reader
        || matches!(
            (writer, reader),
            (Int, Long | Float | Double)
                | (Long, Float | Double)
                | (Float, Double)
                | (String, Bytes)
                | (Bytes, String)
        )
}

fn type_name(schema: &Schema) -> String {
    match schema {
        Schema::Record(r) => format!("record {}", r.name.fullname(None)),
        Schema::Enum(e) => format!("enum {}", e.name.fullname(None)),
        Schema::Fixed(f) => format!("fixed {}", f.name.fullname(None)),
        Schema::Array(_) => "array".to_owned(),
        Schema::Map(_) => "map".to_owned(),
        Schema::Union(_) => "union".to_owned(),
        Schema::Ref { name } => name.fullname(None),
        Schema::Decimal(_) => "decimal".to_owned(),
        Schema::Duration => "duration".to_owned(),
        other => match primitive(other) {
            Some(p) => format!("{p:?}").to_lowercase(),
            None => format!("{other:?}"),
        },
    }
}

/// Names match when the unqualified names are equal (as in Java's
/// `SchemaCompatibility`) or the reader lists the writer's name as an alias.
fn names_match(
    reader: &Name,
    reader_aliases: Option<&Vec<apache_avro::schema::Alias>>,
    writer: &Name,
) -> bool {
    if reader.name == writer.name {
        return true;
    }
    let writer_full = writer.fullname(None);
    reader_aliases.is_some_and(|aliases| {
        aliases.iter().any(|alias| {
            alias.fullname(reader.namespace.clone()) == writer_full || alias.name() == writer.name
        })
    })
}

struct Checker<'a> {
    reader_names: HashMap<String, &'a Schema>,
    writer_names: HashMap<String, &'a Schema>,
    labels: Labels,
}

impl<'a> Checker<'a> {
    fn deref(names: &HashMap<String, &'a Schema>, schema: &'a Schema) -> &'a Schema {
        match schema {
            Schema::Ref { name } => names.get(&name.fullname(None)).copied().unwrap_or(schema),
            Schema::Decimal(d) => Self::deref(names, &d.inner),
            other => other,
        }
    }

    fn compatible(
        &self,
        reader: &'a Schema,
        writer: &'a Schema,
        visiting: &mut HashSet<(String, String)>,
    ) -> bool {
        let mut out = Vec::new();
        self.check(reader, writer, "", visiting, &mut out);
        out.is_empty()
    }

    fn mismatch(
        &self,
        reader: &Schema,
        writer: &Schema,
        path: &str,
        out: &mut Vec<Incompatibility>,
    ) {
        out.push(Incompatibility {
            error_type: "TYPE_MISMATCH",
            path: path_or_root(path),
            description: format!(
                "The type (path '{}') of a field in the {} schema does not match with the {} schema: {} cannot read {}",
                path_or_root(path),
                self.labels.reader,
                self.labels.writer,
                type_name(reader),
                type_name(writer)
            ),
        });
    }

    fn check(
        &self,
        reader: &'a Schema,
        writer: &'a Schema,
        path: &str,
        visiting: &mut HashSet<(String, String)>,
        out: &mut Vec<Incompatibility>,
    ) {
        let reader = Self::deref(&self.reader_names, reader);
        let writer = Self::deref(&self.writer_names, writer);
        // A writer union: every branch it may have written must be readable.
        if let Schema::Union(writer_union) = writer {
            for (i, branch) in writer_union.variants().iter().enumerate() {
                let readable = match reader {
                    Schema::Union(reader_union) => reader_union
                        .variants()
                        .iter()
                        .any(|r| self.compatible(r, branch, visiting)),
                    _ => self.compatible(reader, branch, visiting),
                };
                if !readable {
                    out.push(Incompatibility {
                        error_type: "MISSING_UNION_BRANCH",
                        path: format!("{path}/{i}"),
                        description: format!(
                            "The {} schema is missing a type inside a union field at path '{path}/{i}' in the {} schema: {}",
                            self.labels.reader,
                            self.labels.writer,
                            type_name(Self::deref(&self.writer_names, branch))
                        ),
                    });
                }
            }
            return;
        }
        if let Schema::Union(reader_union) = reader {
            if !reader_union
                .variants()
                .iter()
                .any(|r| self.compatible(r, writer, visiting))
            {
                self.mismatch(reader, writer, path, out);
            }
            return;
        }
        if let (Some(r), Some(w)) = (primitive(reader), primitive(writer)) {
            if !promotable(w, r) {
                self.mismatch(reader, writer, path, out);
            }
            return;
        }
        match (reader, writer) {
            (Schema::Record(r), Schema::Record(w)) => self.check_record(r, w, path, visiting, out),
            (Schema::Enum(r), Schema::Enum(w)) => {
                if !names_match(&r.name, r.aliases.as_ref(), &w.name) {
                    self.name_mismatch(&r.name, &w.name, path, out);
                    return;
                }
                let missing: Vec<&str> = w
                    .symbols
                    .iter()
                    .filter(|s| !r.symbols.contains(s))
                    .map(String::as_str)
                    .collect();
                if !missing.is_empty() && r.default.is_none() {
                    out.push(Incompatibility {
                        error_type: "MISSING_ENUM_SYMBOLS",
                        path: format!("{}/symbols", path_or_root(path).trim_end_matches('/')),
                        description: format!(
                            "The {} schema is missing enum symbols '{}' at path '{}/symbols' in the {} schema",
                            self.labels.reader,
                            missing.join(","),
                            path,
                            self.labels.writer
                        ),
                    });
                }
            }
            (Schema::Fixed(r), Schema::Fixed(w)) => {
                if !names_match(&r.name, r.aliases.as_ref(), &w.name) {
                    self.name_mismatch(&r.name, &w.name, path, out);
                } else if r.size != w.size {
                    out.push(Incompatibility {
                        error_type: "FIXED_SIZE_MISMATCH",
                        path: format!("{path}/size"),
                        description: format!(
                            "The size of FIXED type field at path '{path}/size' in the {} schema ({}) does not match with the {} schema ({})",
                            self.labels.reader, r.size, self.labels.writer, w.size
                        ),
                    });
                }
            }
            (Schema::Duration, Schema::Duration) => {}
            (Schema::Array(r), Schema::Array(w)) => {
                self.check(&r.items, &w.items, &format!("{path}/items"), visiting, out)
            }
            (Schema::Map(r), Schema::Map(w)) => {
                self.check(&r.types, &w.types, &format!("{path}/values"), visiting, out)
            }
            _ => self.mismatch(reader, writer, path, out),
        }
    }

    fn name_mismatch(
        &self,
        reader: &Name,
        writer: &Name,
        path: &str,
        out: &mut Vec<Incompatibility>,
    ) {
        out.push(Incompatibility {
            error_type: "NAME_MISMATCH",
            path: format!("{path}/name"),
            description: format!(
                "The name of the schema has changed (path '{path}/name'): {} schema has '{}', {} schema has '{}'",
                self.labels.reader,
                reader.fullname(None),
                self.labels.writer,
                writer.fullname(None)
            ),
        });
    }

    fn check_record(
        &self,
        reader: &'a RecordSchema,
        writer: &'a RecordSchema,
        path: &str,
        visiting: &mut HashSet<(String, String)>,
        out: &mut Vec<Incompatibility>,
    ) {
        if !names_match(&reader.name, reader.aliases.as_ref(), &writer.name) {
            self.name_mismatch(&reader.name, &writer.name, path, out);
            return;
        }
        // Recursive types: a pair under check is assumed compatible.
        let pair = (reader.name.fullname(None), writer.name.fullname(None));
        if !visiting.insert(pair.clone()) {
            return;
        }
        for (i, field) in reader.fields.iter().enumerate() {
            let field_path = format!("{path}/fields/{i}");
            let writer_field = writer.fields.iter().find(|w| {
                w.name == field.name
                    || field.aliases.as_ref().is_some_and(|a| a.contains(&w.name))
                    || w.aliases.as_ref().is_some_and(|a| a.contains(&field.name))
            });
            match writer_field {
                Some(w) => self.check(&field.schema, &w.schema, &format!("{field_path}/type"), visiting, out),
                None if field.default.is_none() => out.push(Incompatibility {
                    error_type: "READER_FIELD_MISSING_DEFAULT_VALUE",
                    path: field_path.clone(),
                    description: format!(
                        "The field '{}' at path '{field_path}' in the {} schema has no default value and is missing in the {} schema",
                        field.name, self.labels.reader, self.labels.writer
                    ),
                }),
                None => {}
            }
        }
        visiting.remove(&pair);
    }
}

fn path_or_root(path: &str) -> String {
    if path.is_empty() {
        "/".to_owned()
    } else {
        path.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NEW_OLD: Labels = Labels {
        reader: "new",
        writer: "old",
    };

    fn parse(text: &str) -> AvroSchema {
        AvroSchema::parse(text, &[]).unwrap()
    }

    fn problems(reader: &str, writer: &str) -> Vec<&'static str> {
        incompatibilities(&parse(reader), &parse(writer), NEW_OLD)
            .into_iter()
            .map(|i| i.error_type)
            .collect()
    }

    fn record(fields: &str) -> String {
        format!(
            r#"{{"type":"record","name":"User","namespace":"com.example","fields":[{fields}]}}"#
        )
    }

    #[test]
    fn added_field_needs_a_default_to_read_old_data() {
        let old = record(r#"{"name":"id","type":"long"}"#);
        let without = record(r#"{"name":"id","type":"long"},{"name":"email","type":"string"}"#);
        let with =
            record(r#"{"name":"id","type":"long"},{"name":"email","type":"string","default":""}"#);
        assert_eq!(
            problems(&without, &old),
            ["READER_FIELD_MISSING_DEFAULT_VALUE"]
        );
        let message = incompatibilities(&parse(&without), &parse(&old), NEW_OLD)[0].to_string();
        assert!(message.contains("'email'"), "{message}");
        assert!(problems(&with, &old).is_empty());
        // Removing a field: the old reader ignores it (forward direction) —
        // fine either way unless the old reader lacks a default for it.
        assert!(problems(&old, &with).is_empty());
    }

    #[test]
    fn promotions_follow_the_specification() {
        for (writer, reader, ok) in [
            ("int", "long", true),
            ("int", "double", true),
            ("long", "float", true),
            ("float", "double", true),
            ("string", "bytes", true),
            ("bytes", "string", true),
            ("long", "int", false),
            ("double", "float", false),
            ("string", "int", false),
            ("boolean", "int", false),
        ] {
            let r = record(&format!(r#"{{"name":"v","type":"{reader}"}}"#));
            let w = record(&format!(r#"{{"name":"v","type":"{writer}"}}"#));
            assert_eq!(problems(&r, &w).is_empty(), ok, "{writer} -> {reader}");
        }
    }

    #[test]
    fn enums_unions_and_fixed() {
        let e = |symbols: &str, default: &str| {
            format!(r#"{{"type":"enum","name":"Color","symbols":[{symbols}]{default}}}"#)
        };
        assert_eq!(
            problems(&e(r#""RED""#, ""), &e(r#""RED","BLUE""#, "")),
            ["MISSING_ENUM_SYMBOLS"]
        );
        assert!(problems(&e(r#""RED","BLUE""#, ""), &e(r#""RED""#, "")).is_empty());
        assert!(
            problems(
                &e(r#""RED""#, r#","default":"RED""#),
                &e(r#""RED","BLUE""#, "")
            )
            .is_empty()
        );

        // Writer union branches must all be readable.
        assert!(problems(r#"["null","string","int"]"#, r#"["null","string"]"#).is_empty());
        assert_eq!(
            problems(r#"["null","string"]"#, r#"["null","string","int"]"#),
            ["MISSING_UNION_BRANCH"]
        );
        // Non-union writer into a union reader, and the reverse.
        assert!(problems(r#"["null","long"]"#, r#""int""#).is_empty());
        assert_eq!(
            problems(r#""string""#, r#"["null","string"]"#),
            ["MISSING_UNION_BRANCH"]
        );

        let f = |size: usize| format!(r#"{{"type":"fixed","name":"Hash","size":{size}}}"#);
        assert_eq!(problems(&f(16), &f(32)), ["FIXED_SIZE_MISMATCH"]);
        assert!(problems(&f(16), &f(16)).is_empty());
    }

    #[test]
    fn record_names_and_aliases() {
        let old = r#"{"type":"record","name":"Old","fields":[{"name":"a","type":"int"}]}"#;
        let renamed = r#"{"type":"record","name":"New","fields":[{"name":"a","type":"int"}]}"#;
        let aliased = r#"{"type":"record","name":"New","aliases":["Old"],"fields":[{"name":"b","aliases":["a"],"type":"int"}]}"#;
        assert_eq!(problems(renamed, old), ["NAME_MISMATCH"]);
        assert!(problems(aliased, old).is_empty());
    }

    #[test]
    fn recursive_and_nested_types() {
        let list = r#"{"type":"record","name":"Node","fields":[{"name":"v","type":"int"},{"name":"next","type":["null","Node"]}]}"#;
        let list_long = r#"{"type":"record","name":"Node","fields":[{"name":"v","type":"long"},{"name":"next","type":["null","Node"]}]}"#;
        assert!(problems(list_long, list).is_empty());
        assert!(!problems(list, list_long).is_empty());
        let arr = |t: &str| {
            record(&format!(
                r#"{{"name":"xs","type":{{"type":"map","values":{{"type":"array","items":"{t}"}}}}}}"#
            ))
        };
        assert!(problems(&arr("long"), &arr("int")).is_empty());
        let found = incompatibilities(&parse(&arr("int")), &parse(&arr("long")), NEW_OLD);
        assert_eq!(found[0].path, "/fields/0/type/values/items");
    }

    #[test]
    fn canonical_text_ignores_layout_and_key_order() {
        let a =
            parse(r#"{"type": "record", "name": "R", "fields": [{"name": "a", "type": "int"}]}"#);
        let b = parse(r#"{"fields":[{"type":"int","name":"a"}],"name":"R","type":"record"}"#);
        assert_eq!(a.canonical(false), b.canonical(false));
        let c = parse(
            r#"{"type":"record","name":"R","namespace":"n","fields":[{"name":"a","type":"int"}]}"#,
        );
        let d = parse(r#"{"type":"record","name":"n.R","fields":[{"name":"a","type":"int"}]}"#);
        assert_ne!(c.canonical(false), d.canonical(false));
        assert_eq!(c.canonical(true), d.canonical(true));
        // The normalized text parses back to the same schema.
        assert_eq!(parse(&c.canonical(true)).canonical(true), c.canonical(true));
    }

    #[test]
    fn invalid_schemas_are_refused_with_the_parser_message() {
        assert!(AvroSchema::parse(r#"{"type":"record","name":"R"}"#, &[]).is_err());
        assert!(AvroSchema::parse(r#"{"type":"nope"}"#, &[]).is_err());
        assert!(AvroSchema::parse("{", &[]).unwrap_err().contains("JSON"));
    }

    #[test]
    fn references_resolve_named_types() {
        let address = ResolvedReference {
            name: "com.example.Address".into(),
            schema_type: crate::model::SchemaType::Avro,
            text: r#"{"type":"record","name":"Address","namespace":"com.example","fields":[{"name":"city","type":"string"}]}"#.into(),
        };
        let user = r#"{"type":"record","name":"User","namespace":"com.example","fields":[{"name":"home","type":"com.example.Address"}]}"#;
        assert!(AvroSchema::parse(user, &[]).is_err());
        let parsed = AvroSchema::parse(user, std::slice::from_ref(&address)).unwrap();
        // A datum: city "ab" (zigzag length 2 = 4).
        parsed.validate_payload(&[4, b'a', b'b']).unwrap();
        assert!(parsed.validate_payload(&[4, b'a']).is_err());
    }

    #[test]
    fn payload_validation_decodes_and_rejects_trailing_bytes() {
        let s = parse(&record(
            r#"{"name":"id","type":"long"},{"name":"name","type":"string"}"#,
        ));
        s.validate_payload(&[2, 2, b'x']).unwrap();
        assert!(s.validate_payload(&[2]).is_err());
        assert!(s.validate_payload(&[2, 2, b'x', 0]).is_err());
        // A length far beyond the payload is refused, not allocated.
        assert!(
            s.validate_payload(&[2, 0xfe, 0xff, 0xff, 0xff, 0x0f])
                .is_err()
        );
        assert!(s.validate_payload(&[2, 2, 0xff]).is_err(), "not UTF-8");
    }

    #[test]
    fn payload_validation_agrees_with_apache_avro_encoding() {
        use apache_avro::types::Value;
        let text = r#"{"type":"record","name":"R","fields":[
            {"name":"u","type":["null","string"]},
            {"name":"xs","type":{"type":"array","items":"int"}},
            {"name":"m","type":{"type":"map","values":"double"}},
            {"name":"e","type":{"type":"enum","name":"E","symbols":["A","B"]}},
            {"name":"f","type":{"type":"fixed","name":"F","size":2}},
            {"name":"b","type":"boolean"},
            {"name":"ts","type":{"type":"long","logicalType":"timestamp-millis"}}]}"#;
        let s = parse(text);
        let value = Value::Record(vec![
            (
                "u".into(),
                Value::Union(1, Box::new(Value::String("hé".into()))),
            ),
            (
                "xs".into(),
                Value::Array(vec![Value::Int(1), Value::Int(-300)]),
            ),
            (
                "m".into(),
                Value::Map([("k".to_owned(), Value::Double(1.5))].into_iter().collect()),
            ),
            ("e".into(), Value::Enum(1, "B".into())),
            ("f".into(), Value::Fixed(2, vec![1, 2])),
            ("b".into(), Value::Boolean(true)),
            ("ts".into(), Value::TimestampMillis(1_700_000_000_000)),
        ]);
        let bytes = apache_avro::to_avro_datum(s.schema(), value).unwrap();
        s.validate_payload(&bytes).unwrap();
        for cut in 0..bytes.len() {
            assert!(s.validate_payload(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        // A huge block count of zero-length items is bounded by the budget.
        let nulls = parse(r#"{"type":"array","items":"null"}"#);
        assert!(
            nulls
                .validate_payload(&[0xfe, 0xff, 0xff, 0xff, 0x0f, 0])
                .is_err()
        );
    }
}
