//! Protobuf wire compatibility: can a reader compiled from one schema parse
//! the bytes a writer compiled from the other produces?
//!
//! Checked for every message and enum declared in the writer's file:
//! message or enum removed, package changed, field number reused with an
//! incompatible type (wire-compatible groups: int32/uint32/int64/uint64/bool,
//! sint32/sint64, fixed32/sfixed32, fixed64/sfixed64, string/bytes),
//! message/enum type of a field changed, required fields added, singular
//! and repeated swapped for non-numeric fields (numeric fields may change,
//! since parsers accept packed and unpacked), map changed to non-map, fields
//! moved into a oneof, enum value renamed. Removing an optional field or an
//! enum value is compatible (unknown fields and values are kept).

use prost_reflect::{Cardinality, FieldDescriptor, Kind, MessageDescriptor};

use super::ProtoSchema;
use crate::format::{Incompatibility, Labels};

fn scalar_group(kind: &Kind) -> Option<u8> {
    Some(match kind {
        Kind::Int32 | Kind::Uint32 | Kind::Int64 | Kind::Uint64 | Kind::Bool => 1,
        Kind::Sint32 | Kind::Sint64 => 2,
        Kind::Fixed32 | Kind::Sfixed32 => 3,
        Kind::Fixed64 | Kind::Sfixed64 => 4,
        Kind::String | Kind::Bytes => 5,
        Kind::Float => 6,
        Kind::Double => 7,
        Kind::Message(_) | Kind::Enum(_) => return None,
    })
}

fn kind_name(kind: &Kind) -> String {
    match kind {
        Kind::Message(m) => m.full_name().to_owned(),
        Kind::Enum(e) => e.full_name().to_owned(),
        other => format!("{other:?}").to_lowercase(),
    }
}

fn is_numeric_scalar(kind: &Kind) -> bool {
    !matches!(kind, Kind::String | Kind::Bytes | Kind::Message(_))
}

fn all_messages(schema: &ProtoSchema) -> Vec<MessageDescriptor> {
    fn walk(message: MessageDescriptor, out: &mut Vec<MessageDescriptor>) {
        for child in message.child_messages() {
            walk(child, out);
        }
        out.push(message);
    }
    let mut out = Vec::new();
    for message in schema.file().messages() {
        walk(message, &mut out);
    }
    out
}

/// What breaks when data written with `writer` is read with `reader`.
pub fn incompatibilities(
    reader: &ProtoSchema,
    writer: &ProtoSchema,
    labels: Labels,
) -> Vec<Incompatibility> {
    let mut out = Vec::new();
    let (rf, wf) = (reader.file(), writer.file());
    if rf.package_name() != wf.package_name() {
        out.push(Incompatibility {
            error_type: "PACKAGE_CHANGED",
            path: "#/".to_owned(),
            description: format!(
                "The package changed from '{}' in the {} schema to '{}' in the {} schema",
                wf.package_name(),
                labels.writer,
                rf.package_name(),
                labels.reader
            ),
        });
        return out;
    }
    for w in all_messages(writer) {
        let Some(r) = reader.pool().get_message_by_name(w.full_name()) else {
            if !w.is_map_entry() {
                out.push(Incompatibility {
                    error_type: "MESSAGE_REMOVED",
                    path: format!("#/{}", w.full_name()),
                    description: format!(
                        "The {} schema is missing message '{}' of the {} schema",
                        labels.reader,
                        w.full_name(),
                        labels.writer
                    ),
                });
            }
            continue;
        };
        check_message(&r, &w, labels, &mut out);
    }
    for w in writer
        .pool()
        .all_enums()
        .filter(|e| e.parent_file().name() == wf.name())
    {
        let Some(r) = reader.pool().get_enum_by_name(w.full_name()) else {
            out.push(Incompatibility {
                error_type: "ENUM_REMOVED",
                path: format!("#/{}", w.full_name()),
                description: format!(
                    "The {} schema is missing enum '{}' of the {} schema",
                    labels.reader,
                    w.full_name(),
                    labels.writer
                ),
            });
            continue;
        };
        for value in w.values() {
            if let Some(rv) = r.get_value(value.number())
                && rv.name() != value.name()
                && r.values()
                    .all(|v| v.name() != value.name() || v.number() != value.number())
            {
                out.push(Incompatibility {
                    error_type: "ENUM_CONST_CHANGED",
                    path: format!("#/{}/{}", w.full_name(), value.number()),
                    description: format!(
                        "Enum value {} of '{}' is '{}' in the {} schema but '{}' in the {} schema",
                        value.number(),
                        w.full_name(),
                        value.name(),
                        labels.writer,
                        rv.name(),
                        labels.reader
                    ),
                });
            }
        }
    }
    out
}

fn check_message(
    r: &MessageDescriptor,
    w: &MessageDescriptor,
    labels: Labels,
    out: &mut Vec<Incompatibility>,
) {
    let path = |f: &FieldDescriptor| format!("#/{}/{}", r.full_name(), f.number());
    for rf in r.fields() {
        match w.get_field(rf.number()) {
            None if rf.cardinality() == Cardinality::Required => out.push(Incompatibility {
                error_type: "REQUIRED_FIELD_ADDED",
                path: path(&rf),
                description: format!(
                    "The {} schema requires field '{}' ({}) that the {} schema does not have",
                    labels.reader,
                    rf.full_name(),
                    rf.number(),
                    labels.writer
                ),
            }),
            None => {}
            Some(wf) => check_field(&rf, &wf, w, labels, &path(&rf), out),
        }
    }
    // Several existing fields moved together into one new oneof: a writer
    // may set more than one of them, the reader keeps only the last.
    for oneof in r.oneofs().filter(|o| !o.is_synthetic()) {
        let moved: Vec<String> = oneof
            .fields()
            .filter(|f| {
                w.get_field(f.number())
                    .is_some_and(|wf| wf.containing_oneof().is_none_or(|o| o.is_synthetic()))
            })
            .map(|f| f.name().to_owned())
            .collect();
        let existed = oneof.fields().any(|f| {
            w.get_field(f.number())
                .and_then(|wf| wf.containing_oneof())
                .is_some_and(|o| !o.is_synthetic())
        });
        if (existed && !moved.is_empty()) || moved.len() > 1 {
            out.push(Incompatibility {
                error_type: if existed {
                    "FIELD_MOVED_TO_EXISTING_ONEOF"
                } else {
                    "MULTIPLE_FIELDS_MOVED_TO_ONEOF"
                },
                path: format!("#/{}/{}", r.full_name(), oneof.name()),
                description: format!(
                    "Fields [{}] of '{}' are in oneof '{}' in the {} schema but not in the {} schema",
                    moved.join(", "),
                    r.full_name(),
                    oneof.name(),
                    labels.reader,
                    labels.writer
                ),
            });
        }
    }
}

fn check_field(
    rf: &FieldDescriptor,
    wf: &FieldDescriptor,
    _w: &MessageDescriptor,
    labels: Labels,
    path: &str,
    out: &mut Vec<Incompatibility>,
) {
    let mut push = |error_type: &'static str, description: String| {
        out.push(Incompatibility {
            error_type,
            path: path.to_owned(),
            description,
        })
    };
    if rf.cardinality() == Cardinality::Required && wf.cardinality() != Cardinality::Required {
        push(
            "REQUIRED_FIELD_ADDED",
            format!(
                "Field '{}' ({}) is required in the {} schema but not in the {} schema",
                rf.full_name(),
                rf.number(),
                labels.reader,
                labels.writer
            ),
        );
    }
    let (rk, wk) = (rf.kind(), wf.kind());
    if rf.is_map() != wf.is_map() {
        push(
            "FIELD_KIND_CHANGED",
            format!(
                "Field {} changed between map and non-map ({} schema: {}, {} schema: {})",
                rf.number(),
                labels.reader,
                if rf.is_map() { "map" } else { "not a map" },
                labels.writer,
                if wf.is_map() { "map" } else { "not a map" },
            ),
        );
        return;
    }
    let kinds_ok = match (&rk, &wk) {
        (Kind::Message(a), Kind::Message(b)) => {
            if a.full_name() != b.full_name() {
                push(
                    "FIELD_NAMED_TYPE_CHANGED",
                    format!(
                        "Field {} has type '{}' in the {} schema but '{}' in the {} schema",
                        rf.number(),
                        a.full_name(),
                        labels.reader,
                        b.full_name(),
                        labels.writer
                    ),
                );
            }
            true
        }
        (Kind::Enum(a), Kind::Enum(b)) => {
            if a.full_name() != b.full_name() {
                push(
                    "FIELD_NAMED_TYPE_CHANGED",
                    format!(
                        "Field {} has enum type '{}' in the {} schema but '{}' in the {} schema",
                        rf.number(),
                        a.full_name(),
                        labels.reader,
                        b.full_name(),
                        labels.writer
                    ),
                );
            }
            true
        }
        _ => match (scalar_group(&rk), scalar_group(&wk)) {
            (Some(a), Some(b)) if a == b => true,
            (Some(_), Some(_)) => {
                push(
                    "FIELD_SCALAR_KIND_CHANGED",
                    format!(
                        "Field {} changed from {} in the {} schema to {} in the {} schema, which are not wire compatible",
                        rf.number(),
                        kind_name(&wk),
                        labels.writer,
                        kind_name(&rk),
                        labels.reader
                    ),
                );
                false
            }
            _ => {
                push(
                    "FIELD_KIND_CHANGED",
                    format!(
                        "Field {} changed from {} in the {} schema to {} in the {} schema",
                        rf.number(),
                        kind_name(&wk),
                        labels.writer,
                        kind_name(&rk),
                        labels.reader
                    ),
                );
                false
            }
        },
    };
    if kinds_ok
        && !rf.is_map()
        && rf.is_list() != wf.is_list()
        && !(is_numeric_scalar(&rk) && is_numeric_scalar(&wk))
    {
        push(
            "FIELD_LABEL_CHANGED",
            format!(
                "Field {} is {} in the {} schema but {} in the {} schema",
                rf.number(),
                if rf.is_list() { "repeated" } else { "singular" },
                labels.reader,
                if wf.is_list() { "repeated" } else { "singular" },
                labels.writer
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NEW_OLD: Labels = Labels {
        reader: "new",
        writer: "old",
    };

    fn problems(reader: &str, writer: &str) -> Vec<&'static str> {
        let r = ProtoSchema::parse(reader, &[]).unwrap();
        let w = ProtoSchema::parse(writer, &[]).unwrap();
        incompatibilities(&r, &w, NEW_OLD)
            .into_iter()
            .map(|i| i.error_type)
            .collect()
    }

    fn p3(body: &str) -> String {
        format!("syntax = \"proto3\"; package p; {body}")
    }

    #[test]
    fn adding_and_removing_optional_fields_is_compatible() {
        let old = p3("message M { string a = 1; }");
        let new = p3("message M { string a = 1; int64 b = 2; }");
        assert!(problems(&new, &old).is_empty());
        assert!(problems(&old, &new).is_empty());
        // Renaming a field keeps the wire format.
        assert!(problems(&p3("message M { string renamed = 1; }"), &old).is_empty());
    }

    #[test]
    fn wire_compatible_scalar_groups() {
        for (a, b, ok) in [
            ("int32", "int64", true),
            ("uint32", "bool", true),
            ("sint32", "sint64", true),
            ("fixed32", "sfixed32", true),
            ("string", "bytes", true),
            ("int32", "sint32", false),
            ("int64", "fixed64", false),
            ("float", "double", false),
            ("string", "int32", false),
        ] {
            let r = p3(&format!("message M {{ {a} f = 1; }}"));
            let w = p3(&format!("message M {{ {b} f = 1; }}"));
            assert_eq!(problems(&r, &w).is_empty(), ok, "{b} -> {a}");
        }
        assert_eq!(
            problems(
                &p3("message M { N f = 1; } message N {}"),
                &p3("message M { string f = 1; } message N {}")
            ),
            ["FIELD_KIND_CHANGED"]
        );
    }

    #[test]
    fn removed_messages_enums_and_changed_types_break() {
        let old = p3("message M { N n = 1; } message N { int32 x = 1; } enum E { A = 0; B = 1; }");
        assert_eq!(
            problems(
                &p3("message M { N n = 1; } message N { int32 x = 1; }"),
                &old
            ),
            ["ENUM_REMOVED"]
        );
        assert_eq!(
            problems(
                &p3("message M { O n = 1; } message O { int32 x = 1; } enum E { A = 0; B = 1; }"),
                &old
            ),
            ["MESSAGE_REMOVED", "FIELD_NAMED_TYPE_CHANGED"]
                .iter()
                .rev()
                .copied()
                .collect::<Vec<_>>()
        );
        assert_eq!(
            problems(
                &p3("message M { N n = 1; } message N { int32 x = 1; } enum E { A = 0; C = 1; }"),
                &old
            ),
            ["ENUM_CONST_CHANGED"]
        );
        assert_eq!(
            problems(
                "syntax = \"proto3\"; package q; message M {}",
                &p3("message M {}")
            ),
            ["PACKAGE_CHANGED"]
        );
    }

    #[test]
    fn labels_required_and_oneofs() {
        let p2 = |body: &str| format!("syntax = \"proto2\"; package p; {body}");
        assert_eq!(
            problems(
                &p2("message M { required int32 a = 1; }"),
                &p2("message M { optional int32 a = 1; }")
            ),
            ["REQUIRED_FIELD_ADDED"]
        );
        assert_eq!(
            problems(
                &p2("message M { optional int32 a = 1; required int32 b = 2; }"),
                &p2("message M { optional int32 a = 1; }")
            ),
            ["REQUIRED_FIELD_ADDED"]
        );
        // Numeric repeated <-> singular is accepted by parsers; strings are not.
        assert!(
            problems(
                &p3("message M { repeated int32 a = 1; }"),
                &p3("message M { int32 a = 1; }")
            )
            .is_empty()
        );
        assert_eq!(
            problems(
                &p3("message M { repeated string a = 1; }"),
                &p3("message M { string a = 1; }")
            ),
            ["FIELD_LABEL_CHANGED"]
        );
        assert_eq!(
            problems(
                &p3("message M { oneof o { int32 a = 1; string b = 2; } }"),
                &p3("message M { int32 a = 1; string b = 2; }")
            ),
            ["MULTIPLE_FIELDS_MOVED_TO_ONEOF"]
        );
        assert_eq!(
            problems(
                &p3("message M { oneof o { int32 a = 1; string b = 2; } }"),
                &p3("message M { oneof o { int32 a = 1; } string b = 2; }")
            ),
            ["FIELD_MOVED_TO_EXISTING_ONEOF"]
        );
        // One field into a new oneof is fine.
        assert!(
            problems(
                &p3("message M { oneof o { int32 a = 1; } }"),
                &p3("message M { int32 a = 1; }")
            )
            .is_empty()
        );
        assert_eq!(
            problems(
                &p3("message M { map<string, int32> a = 1; }"),
                &p3("message M { map<string, string> a = 1; }")
            ),
            ["FIELD_SCALAR_KIND_CHANGED"]
        );
    }
}
