//! Prints a compiled `FileDescriptorProto` as `.proto` text: the canonical
//! form Floe stores, whether the schema arrived as text or as a serialized
//! descriptor. Type names are printed fully qualified (`.pkg.Msg`), so the
//! text means the same wherever it is compiled.
//!
//! Kept: syntax, package, imports, the common file options, messages (nested,
//! maps, oneofs, proto3 `optional`, reserved ranges and names, extension
//! ranges), enums, services, extensions, field options `packed`,
//! `deprecated`, `json_name` (when not the default) and proto2 defaults.
//! Dropped: comments and custom (extension) options.

use std::fmt::Write;

use prost_types::field_descriptor_proto::{Label, Type};
use prost_types::{
    DescriptorProto, EnumDescriptorProto, FieldDescriptorProto, FileDescriptorProto,
    ServiceDescriptorProto,
};

const MAX_FIELD_NUMBER: i32 = 536_870_911;

/// The `.proto` text of `file`.
pub fn print_file(file: &FileDescriptorProto) -> String {
    let mut p = Printer {
        out: String::new(),
        proto3: file.syntax() == "proto3",
    };
    p.file(file);
    p.out
}

struct Printer {
    out: String,
    proto3: bool,
}

fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\{:03o}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// protoc's default `json_name`: underscores dropped, the next letter upper-cased.
fn default_json_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut upper = false;
    for c in name.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

fn scalar_name(t: Type) -> &'static str {
    match t {
        Type::Double => "double",
        Type::Float => "float",
        Type::Int64 => "int64",
        Type::Uint64 => "uint64",
        Type::Int32 => "int32",
        Type::Fixed64 => "fixed64",
        Type::Fixed32 => "fixed32",
        Type::Bool => "bool",
        Type::String => "string",
        Type::Bytes => "bytes",
        Type::Uint32 => "uint32",
        Type::Sfixed32 => "sfixed32",
        Type::Sfixed64 => "sfixed64",
        Type::Sint32 => "sint32",
        Type::Sint64 => "sint64",
        Type::Group | Type::Message | Type::Enum => "",
    }
}

fn range_end(end_inclusive: i32) -> String {
    if end_inclusive >= MAX_FIELD_NUMBER {
        "max".to_owned()
    } else {
        end_inclusive.to_string()
    }
}

impl Printer {
    fn line(&mut self, depth: usize, text: &str) {
        for _ in 0..depth {
            self.out.push_str("  ");
        }
        self.out.push_str(text);
        self.out.push('\n');
    }

    fn file(&mut self, file: &FileDescriptorProto) {
        let syntax = if file.syntax.is_none() || file.syntax() == "" {
            "proto2"
        } else {
            file.syntax()
        };
        self.line(0, &format!("syntax = {};", quote(syntax)));
        if !file.package().is_empty() {
            self.line(0, &format!("package {};", file.package()));
        }
        for (i, dep) in file.dependency.iter().enumerate() {
            let modifier = if file.public_dependency.contains(&(i as i32)) {
                "public "
            } else if file.weak_dependency.contains(&(i as i32)) {
                "weak "
            } else {
                ""
            };
            self.line(0, &format!("import {modifier}{};", quote(dep)));
        }
        if let Some(o) = &file.options {
            let strings = [
                ("java_package", &o.java_package),
                ("java_outer_classname", &o.java_outer_classname),
                ("go_package", &o.go_package),
                ("objc_class_prefix", &o.objc_class_prefix),
                ("csharp_namespace", &o.csharp_namespace),
                ("swift_prefix", &o.swift_prefix),
                ("php_class_prefix", &o.php_class_prefix),
                ("php_namespace", &o.php_namespace),
                ("php_metadata_namespace", &o.php_metadata_namespace),
                ("ruby_package", &o.ruby_package),
            ];
            for (name, value) in strings {
                if let Some(v) = value {
                    self.line(0, &format!("option {name} = {};", quote(v)));
                }
            }
            let bools = [
                ("java_multiple_files", o.java_multiple_files),
                ("java_string_check_utf8", o.java_string_check_utf8),
                ("cc_enable_arenas", o.cc_enable_arenas),
                ("deprecated", o.deprecated),
            ];
            for (name, value) in bools {
                if let Some(v) = value {
                    self.line(0, &format!("option {name} = {v};"));
                }
            }
            if o.optimize_for.is_some() {
                self.line(
                    0,
                    &format!("option optimize_for = {};", o.optimize_for().as_str_name()),
                );
            }
        }
        for message in &file.message_type {
            self.message(message, 0);
        }
        for e in &file.enum_type {
            self.enumeration(e, 0);
        }
        self.extensions(&file.extension, 0);
        for service in &file.service {
            self.service(service);
        }
    }

    fn message(&mut self, m: &DescriptorProto, depth: usize) {
        self.line(depth, &format!("message {} {{", m.name()));
        let inner = depth + 1;
        if m.options.as_ref().and_then(|o| o.deprecated) == Some(true) {
            self.line(inner, "option deprecated = true;");
        }
        // Fields in declaration order; a real oneof is printed where its
        // first field was declared.
        let mut printed_oneofs = Vec::new();
        for field in &m.field {
            let real_oneof = field.oneof_index.filter(|_| !field.proto3_optional());
            match real_oneof {
                Some(index) => {
                    if printed_oneofs.contains(&index) {
                        continue;
                    }
                    printed_oneofs.push(index);
                    let name = m
                        .oneof_decl
                        .get(index as usize)
                        .map(|o| o.name())
                        .unwrap_or("oneof");
                    self.line(inner, &format!("oneof {name} {{"));
                    for member in m
                        .field
                        .iter()
                        .filter(|f| f.oneof_index == Some(index) && !f.proto3_optional())
                    {
                        let text = self.field(member, m, true);
                        self.line(inner + 1, &text);
                    }
                    self.line(inner, "}");
                }
                None => {
                    let text = self.field(field, m, false);
                    self.line(inner, &text);
                }
            }
        }
        for nested in &m.nested_type {
            if nested.options.as_ref().and_then(|o| o.map_entry) == Some(true) {
                continue;
            }
            self.message(nested, inner);
        }
        for e in &m.enum_type {
            self.enumeration(e, inner);
        }
        for range in &m.extension_range {
            self.line(
                inner,
                &format!(
                    "extensions {} to {};",
                    range.start(),
                    range_end(range.end() - 1)
                ),
            );
        }
        self.extensions(&m.extension, inner);
        let ranges: Vec<String> = m
            .reserved_range
            .iter()
            .map(|r| {
                if r.end() - 1 == r.start() {
                    r.start().to_string()
                } else {
                    format!("{} to {}", r.start(), range_end(r.end() - 1))
                }
            })
            .collect();
        if !ranges.is_empty() {
            self.line(inner, &format!("reserved {};", ranges.join(", ")));
        }
        if !m.reserved_name.is_empty() {
            let names: Vec<String> = m.reserved_name.iter().map(|n| quote(n)).collect();
            self.line(inner, &format!("reserved {};", names.join(", ")));
        }
        self.line(depth, "}");
    }

    fn type_name(&self, field: &FieldDescriptorProto) -> String {
        match field.r#type() {
            Type::Message | Type::Enum | Type::Group => field.type_name().to_owned(),
            scalar => scalar_name(scalar).to_owned(),
        }
    }

    /// The map entry message a field's type names, if it is one.
    fn map_entry<'m>(
        field: &FieldDescriptorProto,
        parent: &'m DescriptorProto,
    ) -> Option<&'m DescriptorProto> {
        if field.label() != Label::Repeated || field.r#type() != Type::Message {
            return None;
        }
        let simple = field.type_name().rsplit('.').next()?;
        parent.nested_type.iter().find(|n| {
            n.name() == simple && n.options.as_ref().and_then(|o| o.map_entry) == Some(true)
        })
    }

    fn field(
        &self,
        field: &FieldDescriptorProto,
        parent: &DescriptorProto,
        in_oneof: bool,
    ) -> String {
        let mut text = String::new();
        if let Some(entry) = Self::map_entry(field, parent) {
            let key = entry.field.iter().find(|f| f.number() == 1);
            let value = entry.field.iter().find(|f| f.number() == 2);
            if let (Some(key), Some(value)) = (key, value) {
                let _ = write!(
                    text,
                    "map<{}, {}> ",
                    self.type_name(key),
                    self.type_name(value)
                );
            }
        }
        if text.is_empty() {
            if !in_oneof {
                let label = match field.label() {
                    Label::Repeated => "repeated ",
                    Label::Required => "required ",
                    Label::Optional if !self.proto3 || field.proto3_optional() => "optional ",
                    Label::Optional => "",
                };
                text.push_str(label);
            }
            text.push_str(&self.type_name(field));
            text.push(' ');
        }
        let _ = write!(text, "{} = {}", field.name(), field.number());
        let mut options = Vec::new();
        if let Some(default) = &field.default_value {
            let value = match field.r#type() {
                Type::String => quote(default),
                // Already C-escaped by the compiler.
                Type::Bytes => format!("\"{default}\""),
                _ => default.clone(),
            };
            options.push(format!("default = {value}"));
        }
        if let Some(json_name) = &field.json_name
            && *json_name != default_json_name(field.name())
        {
            options.push(format!("json_name = {}", quote(json_name)));
        }
        if let Some(o) = &field.options {
            if let Some(packed) = o.packed {
                options.push(format!("packed = {packed}"));
            }
            if let Some(deprecated) = o.deprecated {
                options.push(format!("deprecated = {deprecated}"));
            }
        }
        if !options.is_empty() {
            let _ = write!(text, " [{}]", options.join(", "));
        }
        text.push(';');
        text
    }

    fn enumeration(&mut self, e: &EnumDescriptorProto, depth: usize) {
        self.line(depth, &format!("enum {} {{", e.name()));
        let inner = depth + 1;
        if let Some(o) = &e.options {
            if o.allow_alias == Some(true) {
                self.line(inner, "option allow_alias = true;");
            }
            if o.deprecated == Some(true) {
                self.line(inner, "option deprecated = true;");
            }
        }
        for value in &e.value {
            let deprecated = value.options.as_ref().and_then(|o| o.deprecated) == Some(true);
            let suffix = if deprecated {
                " [deprecated = true]"
            } else {
                ""
            };
            self.line(
                inner,
                &format!("{} = {}{suffix};", value.name(), value.number()),
            );
        }
        let ranges: Vec<String> = e
            .reserved_range
            .iter()
            .map(|r| {
                if r.start() == r.end() {
                    r.start().to_string()
                } else if r.end() == i32::MAX {
                    format!("{} to max", r.start())
                } else {
                    format!("{} to {}", r.start(), r.end())
                }
            })
            .collect();
        if !ranges.is_empty() {
            self.line(inner, &format!("reserved {};", ranges.join(", ")));
        }
        if !e.reserved_name.is_empty() {
            let names: Vec<String> = e.reserved_name.iter().map(|n| quote(n)).collect();
            self.line(inner, &format!("reserved {};", names.join(", ")));
        }
        self.line(depth, "}");
    }

    fn extensions(&mut self, extensions: &[FieldDescriptorProto], depth: usize) {
        let mut extendees: Vec<&str> = Vec::new();
        for ext in extensions {
            if !extendees.contains(&ext.extendee()) {
                extendees.push(ext.extendee());
            }
        }
        let empty = DescriptorProto::default();
        for extendee in extendees {
            self.line(depth, &format!("extend {extendee} {{"));
            for ext in extensions.iter().filter(|e| e.extendee() == extendee) {
                let text = self.field(ext, &empty, false);
                self.line(depth + 1, &text);
            }
            self.line(depth, "}");
        }
    }

    fn service(&mut self, s: &ServiceDescriptorProto) {
        self.line(0, &format!("service {} {{", s.name()));
        for m in &s.method {
            let stream = |yes: bool| if yes { "stream " } else { "" };
            self.line(
                1,
                &format!(
                    "rpc {}({}{}) returns ({}{});",
                    m.name(),
                    stream(m.client_streaming()),
                    m.input_type(),
                    stream(m.server_streaming()),
                    m.output_type()
                ),
            );
        }
        self.line(0, "}");
    }
}
