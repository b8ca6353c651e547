//! JSON Schema: parsing and validation (the `jsonschema` crate, no network
//! resolution: `$ref`s to other documents resolve only to registered
//! references), canonical text (compact, keys sorted) and compatibility.
//!
//! Compatibility asks whether every document the writer schema accepts is
//! accepted by the reader schema, keyword by keyword: types narrowed (an
//! `integer` writer is read by a `number` reader, not the reverse), enums
//! narrowed, limits tightened or added (`maximum`, `minLength`, ...),
//! `pattern` added or changed, properties removed from a closed content
//! model or added to an open one (the writer may have had any value under
//! that name), required properties added, `additionalProperties` narrowed,
//! array `items`, and `oneOf`/`anyOf`/`allOf` branches. Local `$ref`s
//! (`#/definitions/...`, `#/$defs/...`) are followed.

use std::collections::HashMap;

use jsonschema::{Retrieve, Uri, Validator};
use serde_json::Value;

use crate::error::PayloadError;
use crate::format::{Incompatibility, Labels, ResolvedReference, canonical_json};

/// A parsed and compiled JSON Schema.
#[derive(Debug)]
pub struct JsonSchema {
    value: Value,
    validator: Validator,
}

/// Serves the registered references to the validator; anything else is an
/// error (no HTTP, no files).
struct References(HashMap<String, Value>);

impl Retrieve for References {
    fn retrieve(
        &self,
        uri: &Uri<String>,
    ) -> Result<Value, Box<dyn std::error::Error + Send + Sync>> {
        let uri = uri.as_str();
        let found = self.0.iter().find(|(name, _)| {
            uri == name.as_str()
                || uri
                    .strip_suffix(name.as_str())
                    .is_some_and(|head| head.ends_with('/'))
        });
        match found {
            Some((_, value)) => Ok(value.clone()),
            None => Err(format!("reference '{uri}' is not a registered schema reference").into()),
        }
    }
}

impl JsonSchema {
    /// Parses and compiles `text`; `$ref`s to other documents resolve to
    /// `references` by name.
    pub fn parse(text: &str, references: &[ResolvedReference]) -> Result<JsonSchema, String> {
        let value: Value = serde_json::from_str(text).map_err(|e| format!("Invalid JSON: {e}"))?;
        if !value.is_object() && !value.is_boolean() {
            return Err("a JSON Schema must be an object or a boolean".to_owned());
        }
        let mut refs = HashMap::new();
        for reference in references {
            let parsed: Value = serde_json::from_str(&reference.text)
                .map_err(|e| format!("reference '{}': invalid JSON: {e}", reference.name))?;
            refs.insert(reference.name.clone(), parsed);
        }
        let validator = jsonschema::options()
            .with_retriever(References(refs))
            .build(&value)
            .map_err(|e| e.to_string())?;
        Ok(JsonSchema { value, validator })
    }

    /// The schema document.
    pub fn value(&self) -> &Value {
        &self.value
    }

    /// The canonical text: compact, keys sorted.
    pub fn canonical(&self) -> String {
        canonical_json(&self.value)
    }

    /// Parses `payload` as JSON and validates it.
    pub fn validate_payload(&self, payload: &[u8]) -> Result<(), PayloadError> {
        let document: Value = serde_json::from_slice(payload)
            .map_err(|e| PayloadError::new(format!("invalid JSON: {e}")))?;
        self.validator
            .validate(&document)
            .map_err(|e| PayloadError::new(format!("JSON Schema validation: {e}")))
    }
}

/// What breaks when documents valid under `writer` are read with `reader`.
pub fn incompatibilities(
    reader: &JsonSchema,
    writer: &JsonSchema,
    labels: Labels,
) -> Vec<Incompatibility> {
    let mut checker = Checker {
        reader_root: &reader.value,
        writer_root: &writer.value,
        labels,
        out: Vec::new(),
    };
    checker.check(&reader.value, &writer.value, "#", 0);
    checker.out
}

const MAX_DEPTH: usize = 48;

static EMPTY: Value = Value::Null;

/// Limits where the reader may not be tighter than the writer.
const UPPER: [(&str, &str, &str); 5] = [
    ("maximum", "MAXIMUM_ADDED", "MAXIMUM_DECREASED"),
    (
        "exclusiveMaximum",
        "EXCLUSIVE_MAXIMUM_ADDED",
        "EXCLUSIVE_MAXIMUM_DECREASED",
    ),
    ("maxLength", "MAX_LENGTH_ADDED", "MAX_LENGTH_DECREASED"),
    ("maxItems", "MAX_ITEMS_ADDED", "MAX_ITEMS_DECREASED"),
    (
        "maxProperties",
        "MAX_PROPERTIES_ADDED",
        "MAX_PROPERTIES_DECREASED",
    ),
];
const LOWER: [(&str, &str, &str); 5] = [
    ("minimum", "MINIMUM_ADDED", "MINIMUM_INCREASED"),
    (
        "exclusiveMinimum",
        "EXCLUSIVE_MINIMUM_ADDED",
        "EXCLUSIVE_MINIMUM_INCREASED",
    ),
    ("minLength", "MIN_LENGTH_ADDED", "MIN_LENGTH_INCREASED"),
    ("minItems", "MIN_ITEMS_ADDED", "MIN_ITEMS_INCREASED"),
    (
        "minProperties",
        "MIN_PROPERTIES_ADDED",
        "MIN_PROPERTIES_INCREASED",
    ),
];

struct Checker<'a> {
    reader_root: &'a Value,
    writer_root: &'a Value,
    labels: Labels,
    out: Vec<Incompatibility>,
}

/// Follows a local `$ref` (one that starts with `#`).
fn deref<'v>(root: &'v Value, schema: &'v Value) -> &'v Value {
    let mut current = schema;
    for _ in 0..MAX_DEPTH {
        let Some(reference) = current.get("$ref").and_then(Value::as_str) else {
            return current;
        };
        let Some(pointer) = reference.strip_prefix('#') else {
            return current;
        };
        match root.pointer(pointer) {
            Some(target) => current = target,
            None => return current,
        }
    }
    current
}

/// `None`: any type.
fn types(schema: &Value) -> Option<Vec<&str>> {
    match schema.get("type")? {
        Value::String(t) => Some(vec![t.as_str()]),
        Value::Array(ts) => Some(ts.iter().filter_map(Value::as_str).collect()),
        _ => None,
    }
}

/// Whether the schema accepts every document (`true`, `{}`, or only
/// annotations).
fn accepts_anything(schema: &Value) -> bool {
    match schema {
        Value::Bool(b) => *b,
        Value::Object(map) => map.keys().all(|k| {
            matches!(
                k.as_str(),
                "title"
                    | "description"
                    | "$comment"
                    | "default"
                    | "examples"
                    | "$id"
                    | "$schema"
                    | "deprecated"
                    | "readOnly"
                    | "writeOnly"
            )
        }),
        _ => false,
    }
}

fn is_closed(schema: &Value) -> bool {
    matches!(schema.get("additionalProperties"), Some(Value::Bool(false)))
        || matches!(
            schema.get("unevaluatedProperties"),
            Some(Value::Bool(false))
        )
}

impl<'a> Checker<'a> {
    fn push(&mut self, error_type: &'static str, path: &str, description: String) {
        self.out.push(Incompatibility {
            error_type,
            path: path.to_owned(),
            description,
        });
    }

    fn compatible(&self, reader: &'a Value, writer: &'a Value, path: &str, depth: usize) -> bool {
        let mut trial = Checker {
            reader_root: self.reader_root,
            writer_root: self.writer_root,
            labels: self.labels,
            out: Vec::new(),
        };
        trial.check(reader, writer, path, depth);
        trial.out.is_empty()
    }

    fn check(&mut self, reader: &'a Value, writer: &'a Value, path: &str, depth: usize) {
        if depth > MAX_DEPTH {
            return;
        }
        let reader = deref(self.reader_root, reader);
        let writer = deref(self.writer_root, writer);
        if accepts_anything(reader) || writer == &Value::Bool(false) {
            return;
        }
        if reader == &Value::Bool(false) {
            self.push(
                "SCHEMA_CLOSED",
                path,
                format!(
                    "The {} schema at '{path}' accepts nothing",
                    self.labels.reader
                ),
            );
            return;
        }
        let (labels_reader, labels_writer) = (self.labels.reader, self.labels.writer);
        // Sum types: every writer branch must be readable.
        for key in ["oneOf", "anyOf"] {
            if let Some(branches) = writer.get(key).and_then(Value::as_array) {
                for (i, branch) in branches.iter().enumerate() {
                    let readable = match reader
                        .get(key)
                        .or_else(|| reader.get("anyOf"))
                        .or_else(|| reader.get("oneOf"))
                    {
                        Some(Value::Array(rb)) => rb
                            .iter()
                            .any(|r| self.compatible(r, branch, path, depth + 1)),
                        _ => self.compatible(reader, branch, path, depth + 1),
                    };
                    if !readable {
                        self.push(
                            "SUM_TYPE_NARROWED",
                            &format!("{path}/{key}/{i}"),
                            format!(
                                "Branch {i} of {key} at '{path}' in the {labels_writer} schema is not accepted by the {labels_reader} schema"
                            ),
                        );
                    }
                }
                return;
            }
        }
        for key in ["oneOf", "anyOf"] {
            if let Some(branches) = reader.get(key).and_then(Value::as_array) {
                if !branches
                    .iter()
                    .any(|r| self.compatible(r, writer, path, depth + 1))
                {
                    self.push(
                        "SUM_TYPE_NARROWED",
                        &format!("{path}/{key}"),
                        format!("No branch of {key} at '{path}' in the {labels_reader} schema accepts the {labels_writer} schema"),
                    );
                }
                return;
            }
        }
        if let Some(branches) = reader.get("allOf").and_then(Value::as_array) {
            // Each reader constraint must hold for the writer (or for one
            // of the writer's own allOf parts).
            let writer_parts: Vec<&Value> = match writer.get("allOf").and_then(Value::as_array) {
                Some(parts) => parts.iter().collect(),
                None => vec![writer],
            };
            for (i, branch) in branches.iter().enumerate() {
                if !writer_parts
                    .iter()
                    .any(|w| self.compatible(branch, w, path, depth + 1))
                {
                    self.push(
                        "PRODUCT_TYPE_EXTENDED",
                        &format!("{path}/allOf/{i}"),
                        format!("allOf branch {i} at '{path}' in the {labels_reader} schema is not implied by the {labels_writer} schema"),
                    );
                }
            }
            return;
        }
        if let Some(parts) = writer.get("allOf").and_then(Value::as_array)
            && parts
                .iter()
                .any(|w| self.compatible(reader, w, path, depth + 1))
        {
            return;
        }
        self.check_type(reader, writer, path);
        self.check_values(reader, writer, path);
        self.check_object(reader, writer, path, depth);
        self.check_array(reader, writer, path, depth);
    }

    fn check_type(&mut self, reader: &Value, writer: &Value, path: &str) {
        let Some(reader_types) = types(reader) else {
            return;
        };
        let narrowed: Vec<String> = match types(writer) {
            None => vec!["any".to_owned()],
            Some(writer_types) => writer_types
                .into_iter()
                .filter(|t| {
                    !(reader_types.contains(t)
                        || (*t == "integer" && reader_types.contains(&"number")))
                })
                .map(str::to_owned)
                .collect(),
        };
        if !narrowed.is_empty() {
            let description = format!(
                "The type at '{path}' is narrowed: the {} schema accepts {:?} but the {} schema allows {}",
                self.labels.reader,
                reader_types,
                self.labels.writer,
                narrowed.join(", ")
            );
            self.push("TYPE_NARROWED", path, description);
        }
    }

    fn check_values(&mut self, reader: &Value, writer: &Value, path: &str) {
        let (r_label, w_label) = (self.labels.reader, self.labels.writer);
        if let Some(allowed) = reader.get("enum").and_then(Value::as_array) {
            let ok = match writer.get("enum").and_then(Value::as_array) {
                Some(written) => written.iter().all(|v| allowed.contains(v)),
                None => writer.get("const").is_some_and(|c| allowed.contains(c)),
            };
            if !ok {
                self.push(
                    "ENUM_ARRAY_NARROWED",
                    &format!("{path}/enum"),
                    format!("The {r_label} schema's enum at '{path}' does not contain every value the {w_label} schema allows"),
                );
            }
        }
        if let Some(constant) = reader.get("const")
            && writer.get("const") != Some(constant)
        {
            self.push(
                "CONST_CHANGED",
                &format!("{path}/const"),
                format!("The {r_label} schema requires const {constant} at '{path}'"),
            );
        }
        let number = |s: &Value, k: &str| s.get(k).and_then(Value::as_f64);
        for (upper, keywords) in [(true, &UPPER), (false, &LOWER)] {
            for &(keyword, added, tightened) in keywords.iter() {
                let Some(r) = number(reader, keyword) else {
                    continue;
                };
                match number(writer, keyword) {
                    None => self.push(
                        added,
                        &format!("{path}/{keyword}"),
                        format!("The {r_label} schema adds {keyword} {r} at '{path}'"),
                    ),
                    Some(w) if (upper && r < w) || (!upper && r > w) => self.push(
                        tightened,
                        &format!("{path}/{keyword}"),
                        format!("{keyword} at '{path}' changed from {w} in the {w_label} schema to {r} in the {r_label} schema"),
                    ),
                    Some(_) => {}
                }
            }
        }
        if let Some(pattern) = reader.get("pattern") {
            match writer.get("pattern") {
                None => self.push(
                    "PATTERN_ADDED",
                    &format!("{path}/pattern"),
                    format!("The {r_label} schema adds pattern {pattern} at '{path}'"),
                ),
                Some(w) if w != pattern => self.push(
                    "PATTERN_CHANGED",
                    &format!("{path}/pattern"),
                    format!("pattern at '{path}' changed from {w} to {pattern}"),
                ),
                Some(_) => {}
            }
        }
        if let Some(r) = number(reader, "multipleOf") {
            let ok =
                number(writer, "multipleOf").is_some_and(|w| r != 0.0 && (w / r).fract() == 0.0);
            if !ok {
                self.push(
                    "MULTIPLE_OF_CHANGED",
                    &format!("{path}/multipleOf"),
                    format!("The {r_label} schema requires multipleOf {r} at '{path}'"),
                );
            }
        }
        if reader.get("uniqueItems") == Some(&Value::Bool(true))
            && writer.get("uniqueItems") != Some(&Value::Bool(true))
        {
            self.push(
                "UNIQUE_ITEMS_ADDED",
                &format!("{path}/uniqueItems"),
                format!("The {r_label} schema requires unique items at '{path}'"),
            );
        }
    }

    fn check_object(&mut self, reader: &'a Value, writer: &'a Value, path: &str, depth: usize) {
        let reader_props = reader.get("properties").and_then(Value::as_object);
        let writer_props = writer.get("properties").and_then(Value::as_object);
        let reader_additional = reader.get("additionalProperties").unwrap_or(&EMPTY);
        let writer_additional = writer.get("additionalProperties").unwrap_or(&EMPTY);
        let (r_label, w_label) = (self.labels.reader, self.labels.writer);
        for (name, w) in writer_props.into_iter().flatten() {
            let property_path = format!("{path}/properties/{name}");
            match reader_props.and_then(|p| p.get(name)) {
                Some(r) => self.check(r, w, &property_path, depth + 1),
                None if is_closed(reader) => self.push(
                    "PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL",
                    &property_path,
                    format!("The {r_label} schema's closed content model lacks property '{name}' of the {w_label} schema"),
                ),
                None if reader_additional.is_object() => self.check(reader_additional, w, &property_path, depth + 1),
                None => {}
            }
        }
        for (name, r) in reader_props.into_iter().flatten() {
            if writer_props.is_some_and(|p| p.contains_key(name)) || is_closed(writer) {
                continue;
            }
            let property_path = format!("{path}/properties/{name}");
            if writer_additional.is_object() {
                self.check(r, writer_additional, &property_path, depth + 1);
            } else if !accepts_anything(deref(self.reader_root, r)) {
                self.push(
                    "PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL",
                    &property_path,
                    format!(
                        "Property '{name}' added in the {r_label} schema may hold any value in data of the {w_label} schema (open content model)"
                    ),
                );
            }
        }
        let writer_required: Vec<&Value> = writer
            .get("required")
            .and_then(Value::as_array)
            .map(|r| r.iter().collect())
            .unwrap_or_default();
        if let Some(required) = reader.get("required").and_then(Value::as_array) {
            for name in required {
                if !writer_required.contains(&name) {
                    self.push(
                        "REQUIRED_PROPERTY_ADDED",
                        &format!("{path}/required"),
                        format!("Property {name} is required in the {r_label} schema but not in the {w_label} schema"),
                    );
                }
            }
        }
        if is_closed(reader)
            && !is_closed(writer)
            && (writer.get("properties").is_some()
                || types(writer).is_some_and(|t| t.contains(&"object")))
        {
            self.push(
                "ADDITIONAL_PROPERTIES_REMOVED",
                &format!("{path}/additionalProperties"),
                format!("The {r_label} schema closes the content model at '{path}' that the {w_label} schema leaves open"),
            );
        } else if reader_additional.is_object() && !is_closed(writer) {
            if writer_additional.is_object() {
                self.check(
                    reader_additional,
                    writer_additional,
                    &format!("{path}/additionalProperties"),
                    depth + 1,
                );
            } else if !accepts_anything(reader_additional) {
                self.push(
                    "ADDITIONAL_PROPERTIES_NARROWED",
                    &format!("{path}/additionalProperties"),
                    format!("The {r_label} schema constrains additional properties at '{path}' that the {w_label} schema leaves open"),
                );
            }
        }
    }

    fn check_array(&mut self, reader: &'a Value, writer: &'a Value, path: &str, depth: usize) {
        let Some(r) = reader.get("items") else { return };
        match writer.get("items") {
            Some(w) => self.check(r, w, &format!("{path}/items"), depth + 1),
            None if !accepts_anything(r) && types(writer).is_none_or(|t| t.contains(&"array")) => {
                self.push(
                    "ITEMS_ADDED",
                    &format!("{path}/items"),
                    format!(
                        "The {} schema constrains array items at '{path}'",
                        self.labels.reader
                    ),
                )
            }
            None => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NEW_OLD: Labels = Labels {
        reader: "new",
        writer: "old",
    };

    fn parse(text: &str) -> JsonSchema {
        JsonSchema::parse(text, &[]).unwrap()
    }

    fn problems(reader: &str, writer: &str) -> Vec<&'static str> {
        incompatibilities(&parse(reader), &parse(writer), NEW_OLD)
            .into_iter()
            .map(|i| i.error_type)
            .collect()
    }

    #[test]
    fn types_widen_but_do_not_narrow() {
        assert!(problems(r#"{"type":"number"}"#, r#"{"type":"integer"}"#).is_empty());
        assert_eq!(
            problems(r#"{"type":"integer"}"#, r#"{"type":"number"}"#),
            ["TYPE_NARROWED"]
        );
        assert!(problems(r#"{"type":["string","null"]}"#, r#"{"type":"string"}"#).is_empty());
        assert_eq!(
            problems(r#"{"type":"string"}"#, r#"{"type":["string","null"]}"#),
            ["TYPE_NARROWED"]
        );
    }

    #[test]
    fn open_and_closed_content_models() {
        let open_a = r#"{"type":"object","properties":{"a":{"type":"string"}}}"#;
        let open_ab =
            r#"{"type":"object","properties":{"a":{"type":"string"},"b":{"type":"integer"}}}"#;
        let closed_a = r#"{"type":"object","properties":{"a":{"type":"string"}},"additionalProperties":false}"#;
        let closed_ab = r#"{"type":"object","properties":{"a":{"type":"string"},"b":{"type":"integer"}},"additionalProperties":false}"#;
        // Adding a property to an open model: old data may hold anything there.
        assert_eq!(
            problems(open_ab, open_a),
            ["PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL"]
        );
        // Adding to a closed model: old data never has it.
        assert!(problems(closed_ab, closed_a).is_empty());
        // Removing from an open model is fine, from a closed one not.
        assert!(problems(open_a, open_ab).is_empty());
        assert_eq!(
            problems(closed_a, closed_ab),
            ["PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL"]
        );
        // Closing an open model.
        assert_eq!(
            problems(closed_a, open_a),
            ["ADDITIONAL_PROPERTIES_REMOVED"]
        );
    }

    #[test]
    fn required_enums_limits_and_nesting() {
        let base = r#"{"type":"object","properties":{"a":{"type":"string"}}}"#;
        let required = r#"{"type":"object","properties":{"a":{"type":"string"}},"required":["a"]}"#;
        assert_eq!(problems(required, base), ["REQUIRED_PROPERTY_ADDED"]);
        assert!(problems(base, required).is_empty());
        assert_eq!(
            problems(r#"{"enum":["a"]}"#, r#"{"enum":["a","b"]}"#),
            ["ENUM_ARRAY_NARROWED"]
        );
        assert!(problems(r#"{"enum":["a","b","c"]}"#, r#"{"enum":["a","b"]}"#).is_empty());
        assert_eq!(
            problems(
                r#"{"type":"string","maxLength":5}"#,
                r#"{"type":"string","maxLength":10}"#
            ),
            ["MAX_LENGTH_DECREASED"]
        );
        assert!(
            problems(
                r#"{"type":"string","maxLength":10}"#,
                r#"{"type":"string","maxLength":5}"#
            )
            .is_empty()
        );
        assert_eq!(
            problems(r#"{"type":"integer","minimum":0}"#, r#"{"type":"integer"}"#),
            ["MINIMUM_ADDED"]
        );
        let nested = |t: &str| {
            format!(
                r#"{{"type":"array","items":{{"type":"object","properties":{{"n":{{"type":"{t}"}}}}}}}}"#
            )
        };
        let found = incompatibilities(
            &parse(&nested("integer")),
            &parse(&nested("number")),
            NEW_OLD,
        );
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].path, "#/items/properties/n");
    }

    #[test]
    fn sum_types_and_local_refs() {
        assert!(
            problems(
                r#"{"oneOf":[{"type":"string"},{"type":"integer"}]}"#,
                r#"{"type":"string"}"#
            )
            .is_empty()
        );
        assert_eq!(
            problems(
                r#"{"type":"string"}"#,
                r#"{"oneOf":[{"type":"string"},{"type":"integer"}]}"#
            ),
            ["SUM_TYPE_NARROWED"]
        );
        let with_ref = |t: &str| {
            format!(
                r##"{{"definitions":{{"x":{{"type":"{t}"}}}},"type":"object","properties":{{"v":{{"$ref":"#/definitions/x"}}}}}}"##
            )
        };
        assert!(problems(&with_ref("number"), &with_ref("integer")).is_empty());
        assert_eq!(
            problems(&with_ref("integer"), &with_ref("number")),
            ["TYPE_NARROWED"]
        );
    }

    #[test]
    fn parse_validate_and_references() {
        assert!(JsonSchema::parse("[1]", &[]).is_err());
        assert!(JsonSchema::parse(r#"{"type": 12}"#, &[]).is_err());
        let s =
            parse(r#"{"type":"object","properties":{"n":{"type":"integer"}},"required":["n"]}"#);
        s.validate_payload(br#"{"n": 3}"#).unwrap();
        assert!(s.validate_payload(br#"{"n": "x"}"#).is_err());
        assert!(s.validate_payload(b"{").is_err());

        let text = r#"{"type":"object","properties":{"home":{"$ref":"address.json"}}}"#;
        assert!(JsonSchema::parse(text, &[]).is_err());
        let address = ResolvedReference {
            name: "address.json".into(),
            schema_type: crate::model::SchemaType::Json,
            text:
                r#"{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}"#
                    .into(),
        };
        let s = JsonSchema::parse(text, std::slice::from_ref(&address)).unwrap();
        s.validate_payload(br#"{"home":{"city":"x"}}"#).unwrap();
        assert!(s.validate_payload(br#"{"home":{}}"#).is_err());
    }

    #[test]
    fn canonical_text_sorts_keys() {
        assert_eq!(
            parse(r#"{ "type": "object", "$schema": "http://json-schema.org/draft-07/schema#" }"#)
                .canonical(),
            r#"{"$schema":"http://json-schema.org/draft-07/schema#","type":"object"}"#
        );
    }
}
