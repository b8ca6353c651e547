//! Generates the Kafka message structs and their codecs from `schema/*.txt`.
//!
//! The notation is described in `schema/README.md`. The output is one Rust
//! module per message (`produce_request`, `produce_response`, ...), an
//! `ApiKey` enum, the supported version table and a `Request` enum that
//! decodes any supported request. Only `std` is used here so the generator
//! builds fast and has nothing to audit.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

const MAX_VERSION: i16 = i16::MAX;

#[derive(Clone, Debug, PartialEq)]
enum Prim {
    Bool,
    I8,
    I16,
    I32,
    I64,
    U16,
    U32,
    F64,
    Str,
    Bytes,
    Records,
    Uuid,
}

#[derive(Clone, Debug)]
enum Type {
    Prim(Prim),
    Array(Box<Type>),
    Struct(String),
}

#[derive(Clone, Debug)]
struct Field {
    name: String,
    ty: Type,
    versions: (i16, i16),
    nullable: Option<(i16, i16)>,
    tag: Option<u32>,
    default: Option<String>,
}

#[derive(Clone, Debug, Default)]
struct StructDef {
    name: String,
    fields: Vec<Field>,
}

#[derive(Debug)]
struct Message {
    api_key: i16,
    api_name: String,
    /// `Request` or `Response`.
    kind: &'static str,
    versions: (i16, i16),
    flexible_from: Option<i16>,
    /// Struct definitions in order of appearance; the first is the message.
    structs: Vec<StructDef>,
}

impl Message {
    fn name(&self) -> String {
        format!("{}{}", self.api_name, self.kind)
    }
    fn module(&self) -> String {
        snake(&self.name())
    }
    fn find(&self, name: &str) -> &StructDef {
        self.structs
            .iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("{}: unknown struct {name}", self.name()))
    }
    fn is_flexible(&self, version: i16) -> bool {
        self.flexible_from.is_some_and(|f| version >= f)
    }
}

fn snake(name: &str) -> String {
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

fn fail(file: &str, line_no: usize, msg: &str) -> ! {
    panic!("{file}:{line_no}: {msg}")
}

fn parse_range(s: &str, hi: i16, file: &str, line_no: usize) -> (i16, i16) {
    let parse = |t: &str| -> i16 {
        t.parse()
            .unwrap_or_else(|_| fail(file, line_no, &format!("bad version `{t}`")))
    };
    if let Some(lo) = s.strip_suffix('+') {
        (parse(lo), hi)
    } else if let Some((a, b)) = s.split_once('-') {
        (parse(a), parse(b))
    } else {
        let v = parse(s);
        (v, v)
    }
}

fn parse_type(s: &str, file: &str, line_no: usize) -> Type {
    if let Some(inner) = s.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
        return Type::Array(Box::new(parse_type(inner, file, line_no)));
    }
    if let Some(inner) = s.strip_prefix('{').and_then(|t| t.strip_suffix('}')) {
        return Type::Struct(inner.to_string());
    }
    let prim = match s {
        "bool" => Prim::Bool,
        "i8" => Prim::I8,
        "i16" => Prim::I16,
        "i32" => Prim::I32,
        "i64" => Prim::I64,
        "u16" => Prim::U16,
        "u32" => Prim::U32,
        "f64" => Prim::F64,
        "string" => Prim::Str,
        "bytes" => Prim::Bytes,
        "records" => Prim::Records,
        "uuid" => Prim::Uuid,
        other if other.starts_with(|c: char| c.is_ascii_uppercase()) => {
            // An array's element struct is written `[Name]`; handled above.
            return Type::Struct(other.to_string());
        }
        other => fail(file, line_no, &format!("unknown type `{other}`")),
    };
    Type::Prim(prim)
}

fn struct_name(ty: &Type) -> Option<&str> {
    match ty {
        Type::Struct(n) => Some(n),
        Type::Array(inner) => struct_name(inner),
        Type::Prim(_) => None,
    }
}

fn parse_file(path: &Path) -> Vec<Message> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).expect("read schema");
    let mut api: Option<(i16, String)> = None;
    let mut messages: Vec<Message> = Vec::new();
    // Stack of (depth, struct name) for the message being parsed.
    let mut stack: Vec<(usize, String)> = Vec::new();
    for (idx, raw) in text.lines().enumerate() {
        let line_no = idx + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let indent = raw.len() - raw.trim_start().len();
        let words: Vec<&str> = trimmed.split_whitespace().collect();
        if indent == 0 {
            match words[0] {
                "api" => {
                    let key = words
                        .get(1)
                        .and_then(|k| k.parse().ok())
                        .unwrap_or_else(|| fail(&file, line_no, "api needs a key"));
                    let name = words
                        .get(2)
                        .unwrap_or_else(|| fail(&file, line_no, "api needs a name"));
                    api = Some((key, name.to_string()));
                }
                kind @ ("request" | "response") => {
                    let (key, name) = api
                        .clone()
                        .unwrap_or_else(|| fail(&file, line_no, "`api` line missing"));
                    if words.len() != 5 || words[1] != "versions" || words[3] != "flexible" {
                        fail(
                            &file,
                            line_no,
                            "expected `request versions A-B flexible N+|none`",
                        );
                    }
                    let versions = parse_range(words[2], MAX_VERSION, &file, line_no);
                    let flexible_from = match words[4] {
                        "none" => None,
                        f => Some(parse_range(f, MAX_VERSION, &file, line_no).0),
                    };
                    let kind = if kind == "request" {
                        "Request"
                    } else {
                        "Response"
                    };
                    let root = StructDef {
                        name: format!("{name}{kind}"),
                        fields: Vec::new(),
                    };
                    stack = vec![(0, root.name.clone())];
                    messages.push(Message {
                        api_key: key,
                        api_name: name,
                        kind,
                        versions,
                        flexible_from,
                        structs: vec![root],
                    });
                }
                other => fail(&file, line_no, &format!("unexpected `{other}`")),
            }
            continue;
        }
        if indent % 2 != 0 {
            fail(&file, line_no, "indent by two spaces per level");
        }
        let depth = indent / 2;
        let message = messages
            .last_mut()
            .unwrap_or_else(|| fail(&file, line_no, "field outside a message"));
        while stack.last().is_some_and(|(d, _)| *d >= depth) {
            stack.pop();
        }
        let Some((parent_depth, parent)) = stack.last().cloned() else {
            fail(&file, line_no, "bad indentation")
        };
        if parent_depth + 1 != depth {
            fail(&file, line_no, "field indented too deep");
        }
        let parent_versions = message.versions;
        if words.len() < 2 {
            fail(&file, line_no, "a field needs a name and a type");
        }
        let mut field = Field {
            name: words[0].to_string(),
            ty: parse_type(words[1], &file, line_no),
            versions: parent_versions,
            nullable: None,
            tag: None,
            default: None,
        };
        let mut i = 2;
        while i < words.len() {
            let w = words[i];
            if let Some(v) = w.strip_prefix('v') {
                field.versions = parse_range(v, parent_versions.1, &file, line_no);
                i += 1;
                continue;
            }
            let arg = words
                .get(i + 1)
                .unwrap_or_else(|| fail(&file, line_no, &format!("`{w}` needs a value")));
            match w {
                "null" => field.nullable = Some(parse_range(arg, MAX_VERSION, &file, line_no)),
                "tag" => {
                    field.tag = Some(
                        arg.parse()
                            .unwrap_or_else(|_| fail(&file, line_no, "bad tag")),
                    )
                }
                "default" => {
                    // A quoted default may contain spaces.
                    if arg.starts_with('"') && !(arg.len() > 1 && arg.ends_with('"')) {
                        let rest = words[i + 1..].join(" ");
                        let end = rest[1..]
                            .find('"')
                            .unwrap_or_else(|| fail(&file, line_no, "unterminated string"));
                        field.default = Some(rest[..end + 2].to_string());
                        i = words.len();
                        continue;
                    }
                    field.default = Some(arg.to_string());
                }
                other => fail(&file, line_no, &format!("unknown attribute `{other}`")),
            }
            i += 2;
        }
        field.versions.0 = field.versions.0.max(parent_versions.0);
        field.versions.1 = field.versions.1.min(parent_versions.1);
        if let Some(sn) = struct_name(&field.ty).map(str::to_string)
            && !message.structs.iter().any(|s| s.name == sn)
        {
            message.structs.push(StructDef {
                name: sn.clone(),
                fields: Vec::new(),
            });
        }
        let sname = struct_name(&field.ty).map(str::to_string);
        message
            .structs
            .iter_mut()
            .find(|s| s.name == parent)
            .expect("parent struct")
            .fields
            .push(field);
        if let Some(sn) = sname {
            stack.push((depth, sn));
        }
    }
    messages
}

// ---------------------------------------------------------------- emission

fn prim_rust(p: &Prim) -> &'static str {
    match p {
        Prim::Bool => "bool",
        Prim::I8 => "i8",
        Prim::I16 => "i16",
        Prim::I32 => "i32",
        Prim::I64 => "i64",
        Prim::U16 => "u16",
        Prim::U32 => "u32",
        Prim::F64 => "f64",
        Prim::Str => "String",
        Prim::Bytes | Prim::Records => "Bytes",
        Prim::Uuid => "Uuid",
    }
}

fn base_rust(ty: &Type) -> String {
    match ty {
        Type::Prim(p) => prim_rust(p).to_string(),
        Type::Array(inner) => format!("Vec<{}>", base_rust(inner)),
        Type::Struct(n) => n.clone(),
    }
}

fn is_optional(f: &Field) -> bool {
    f.nullable.is_some() || matches!(f.ty, Type::Prim(Prim::Records))
}

fn rust_type(f: &Field) -> String {
    if is_optional(f) {
        format!("Option<{}>", base_rust(&f.ty))
    } else {
        base_rust(&f.ty)
    }
}

fn default_expr(f: &Field) -> String {
    let opt = is_optional(f);
    match f.default.as_deref() {
        Some("null") | None if opt => "None".into(),
        None => "Default::default()".into(),
        Some(lit) => {
            let value = if lit.starts_with('"') {
                format!("String::from({lit})")
            } else if matches!(f.ty, Type::Prim(Prim::F64)) && !lit.contains('.') {
                format!("{lit}.0")
            } else if lit.starts_with("0x") && matches!(f.ty, Type::Prim(Prim::I32)) {
                format!("{lit}_u32 as i32")
            } else {
                lit.to_string()
            };
            if opt { format!("Some({value})") } else { value }
        }
    }
}

fn typed_default(f: &Field) -> String {
    let expr = default_expr(f);
    if expr == "Default::default()" {
        format!("<{} as Default>::default()", rust_type(f))
    } else {
        expr
    }
}

fn range_cond(range: (i16, i16), message: (i16, i16)) -> String {
    let lo = range.0 > message.0;
    let hi = range.1 < message.1;
    match (lo, hi) {
        (false, false) => "true".into(),
        (true, false) => format!("version >= {}", range.0),
        (false, true) => format!("version <= {}", range.1),
        (true, true) => format!("(version >= {} && version <= {})", range.0, range.1),
    }
}

fn null_cond(f: &Field) -> String {
    match f.nullable {
        None => "false".into(),
        Some((lo, hi)) => {
            let mut parts = Vec::new();
            if lo > 0 {
                parts.push(format!("version >= {lo}"));
            }
            if hi < MAX_VERSION {
                parts.push(format!("version <= {hi}"));
            }
            if parts.is_empty() {
                "true".into()
            } else {
                format!("({})", parts.join(" && "))
            }
        }
    }
}

/// Smallest encoded size of a value of `ty` at `version`.
fn min_size(msg: &Message, ty: &Type, version: i16, nullable: bool) -> usize {
    let flex = msg.is_flexible(version);
    match ty {
        Type::Prim(p) => match p {
            Prim::Bool | Prim::I8 => 1,
            Prim::I16 | Prim::U16 => 2,
            Prim::I32 | Prim::U32 => 4,
            Prim::I64 | Prim::F64 => 8,
            Prim::Uuid => 16,
            Prim::Str => {
                if flex {
                    1
                } else {
                    2
                }
            }
            Prim::Bytes | Prim::Records => {
                if flex {
                    1
                } else {
                    4
                }
            }
        },
        Type::Array(_) => {
            if flex {
                1
            } else {
                4
            }
        }
        Type::Struct(n) => {
            if nullable {
                return 1;
            }
            let def = msg.find(n);
            let mut total = if flex { 1 } else { 0 };
            for f in &def.fields {
                if f.tag.is_some() || version < f.versions.0 || version > f.versions.1 {
                    continue;
                }
                total += min_size(msg, &f.ty, version, false);
            }
            total
        }
    }
}

/// Smallest encoded size of an element of type `ty` over every version.
fn min_elem_size(msg: &Message, ty: &Type) -> usize {
    (msg.versions.0..=msg.versions.1)
        .map(|v| min_size(msg, ty, v, false))
        .min()
        .unwrap_or(1)
        .max(1)
}

fn decode_elem(msg: &Message, ty: &Type) -> String {
    match ty {
        Type::Prim(p) => match p {
            Prim::Bool => "r.bool()?".into(),
            Prim::I8 => "r.i8()?".into(),
            Prim::I16 => "r.i16()?".into(),
            Prim::I32 => "r.i32()?".into(),
            Prim::I64 => "r.i64()?".into(),
            Prim::U16 => "r.u16()?".into(),
            Prim::U32 => "r.u32()?".into(),
            Prim::F64 => "r.f64()?".into(),
            Prim::Uuid => "r.uuid()?".into(),
            Prim::Str => "r.string(flexible)?".into(),
            Prim::Bytes | Prim::Records => "r.bytes(flexible)?".into(),
        },
        Type::Array(inner) => {
            let min = min_elem_size(msg, inner);
            let elem = decode_elem(msg, inner);
            format!(
                "{{ let n = r.array_len_nonnull(flexible, {min})?; let mut items = vec_for(n); for _ in 0..n {{ items.push({elem}); }} items }}"
            )
        }
        Type::Struct(n) => format!("{n}::decode_body(r, version)?"),
    }
}

fn decode_field(msg: &Message, f: &Field) -> String {
    let nc = null_cond(f);
    match (&f.ty, is_optional(f)) {
        (_, false) => decode_elem(msg, &f.ty),
        (Type::Prim(Prim::Str), true) => format!(
            "if {nc} {{ r.nullable_string(flexible)? }} else {{ Some(r.string(flexible)?) }}"
        ),
        (Type::Prim(Prim::Records), true) => "r.nullable_bytes(flexible)?".into(),
        (Type::Prim(Prim::Bytes), true) => {
            format!("if {nc} {{ r.nullable_bytes(flexible)? }} else {{ Some(r.bytes(flexible)?) }}")
        }
        (Type::Array(inner), true) => {
            let min = min_elem_size(msg, inner);
            let elem = decode_elem(msg, inner);
            format!(
                "{{ let n = if {nc} {{ r.array_len(flexible, {min})? }} else {{ Some(r.array_len_nonnull(flexible, {min})?) }}; match n {{ None => None, Some(n) => {{ let mut items = vec_for(n); for _ in 0..n {{ items.push({elem}); }} Some(items) }} }} }}"
            )
        }
        (Type::Struct(n), true) => format!(
            "if !{nc} || r.struct_marker()? {{ Some({n}::decode_body(r, version)?) }} else {{ None }}"
        ),
        (Type::Prim(_), true) => format!("Some({})", decode_elem(msg, &f.ty)),
    }
}

fn encode_elem(ty: &Type, v: &str) -> String {
    // `v` is an expression of type `&T`.
    match ty {
        Type::Prim(p) => match p {
            Prim::Bool => format!("w.put_bool(*{v});"),
            Prim::I8 => format!("w.put_i8(*{v});"),
            Prim::I16 => format!("w.put_i16(*{v});"),
            Prim::I32 => format!("w.put_i32(*{v});"),
            Prim::I64 => format!("w.put_i64(*{v});"),
            Prim::U16 => format!("w.put_u16(*{v});"),
            Prim::U32 => format!("w.put_u32(*{v});"),
            Prim::F64 => format!("w.put_f64(*{v});"),
            Prim::Uuid => format!("w.put_uuid({v});"),
            Prim::Str => format!("w.put_string({v}, flexible)?;"),
            Prim::Bytes => format!("w.put_bytes({v}, flexible)?;"),
            Prim::Records => format!("w.put_records({v}, flexible)?;"),
        },
        Type::Array(inner) => {
            let elem = encode_elem(inner, "item");
            format!(
                "w.put_array_len(Some({v}.len()), flexible)?; for item in {v}.iter() {{ {elem} }}"
            )
        }
        Type::Struct(_) => format!("{v}.encode_body(w, version)?;"),
    }
}

fn encode_field(f: &Field, access: &str) -> String {
    let nc = null_cond(f);
    match (&f.ty, is_optional(f)) {
        (_, false) => encode_elem(&f.ty, &format!("(&{access})")),
        (Type::Prim(Prim::Str), true) => format!(
            "if {nc} {{ w.put_nullable_string({access}.as_deref(), flexible)?; }} else {{ w.put_string({access}.as_deref().unwrap_or(\"\"), flexible)?; }}"
        ),
        (Type::Prim(Prim::Records), true) => {
            format!("w.put_nullable_records({access}.as_ref(), flexible)?;")
        }
        (Type::Prim(Prim::Bytes), true) => format!(
            "if {nc} {{ w.put_nullable_bytes({access}.as_deref(), flexible)?; }} else {{ w.put_bytes({access}.as_deref().unwrap_or(&[]), flexible)?; }}"
        ),
        (Type::Array(inner), true) => {
            let elem = encode_elem(inner, "item");
            format!(
                "match &{access} {{ Some(items) => {{ w.put_array_len(Some(items.len()), flexible)?; for item in items.iter() {{ {elem} }} }} None => {{ if {nc} {{ w.put_array_len(None, flexible)?; }} else {{ w.put_array_len(Some(0), flexible)?; }} }} }}"
            )
        }
        (Type::Struct(n), true) => format!(
            "match &{access} {{ Some(s) => {{ if {nc} {{ w.put_i8(1); }} s.encode_body(w, version)?; }} None => {{ if {nc} {{ w.put_i8(-1); }} else {{ {n}::default().encode_body(w, version)?; }} }} }}"
        ),
        (Type::Prim(_), true) => format!(
            "match &{access} {{ Some(v) => {{ {} }} None => {{ {} }} }}",
            encode_elem(&f.ty, "v"),
            encode_elem(&f.ty, "(&Default::default())")
        ),
    }
}

const KEYWORDS: &[&str] = &[
    "type", "match", "ref", "mod", "move", "self", "static", "loop", "in", "fn", "impl", "where",
];

fn ident(name: &str) -> String {
    if KEYWORDS.contains(&name) {
        format!("r#{name}")
    } else {
        name.to_string()
    }
}

fn emit_struct(out: &mut String, msg: &Message, def: &StructDef) {
    let w = |out: &mut String, s: &str| {
        out.push_str(s);
        out.push('\n');
    };
    w(out, "#[derive(Debug, Clone, PartialEq)]");
    w(out, &format!("pub struct {} {{", def.name));
    for f in &def.fields {
        w(
            out,
            &format!(
                "    /// Versions {}-{}{}.",
                f.versions.0,
                f.versions.1,
                if f.tag.is_some() { ", tagged" } else { "" }
            ),
        );
        w(
            out,
            &format!("    pub {}: {},", ident(&f.name), rust_type(f)),
        );
    }
    w(out, "}");
    w(out, &format!("impl Default for {} {{", def.name));
    w(out, "    fn default() -> Self {");
    w(out, "        Self {");
    for f in &def.fields {
        w(
            out,
            &format!("            {}: {},", ident(&f.name), default_expr(f)),
        );
    }
    w(out, "        }");
    w(out, "    }");
    w(out, "}");

    let flex = match msg.flexible_from {
        Some(v) => format!("version >= {v}"),
        None => "false".into(),
    };
    w(out, &format!("impl {} {{", def.name));
    // decode
    w(
        out,
        "    pub(crate) fn decode_body(r: &mut Reader, version: i16) -> Result<Self, DecodeError> {",
    );
    w(out, &format!("        let flexible = {flex};"));
    w(out, "        let _ = flexible;");
    w(out, "        #[allow(unused_mut)]");
    w(out, "        let mut this = Self::default();");
    for f in def.fields.iter().filter(|f| f.tag.is_none()) {
        let cond = range_cond(f.versions, msg.versions);
        let expr = decode_field(msg, f);
        if cond == "true" {
            w(out, &format!("        this.{} = {expr};", ident(&f.name)));
        } else {
            w(
                out,
                &format!("        if {cond} {{ this.{} = {expr}; }}", ident(&f.name)),
            );
        }
    }
    if msg.flexible_from.is_some() {
        w(out, "        if flexible {");
        w(out, "            let tags = r.uvarint()?;");
        w(out, "            for _ in 0..tags {");
        w(out, "                let tag = r.uvarint()?;");
        w(out, "                let size = r.uvarint()? as usize;");
        w(out, "                let mut sub = r.sub(size)?;");
        w(out, "                let r = &mut sub;");
        w(out, "                match tag {");
        for f in def.fields.iter().filter(|f| f.tag.is_some()) {
            let cond = range_cond(f.versions, msg.versions);
            let expr = decode_field(msg, f);
            w(
                out,
                &format!(
                    "                    {} if {cond} => {{ this.{} = {expr}; }}",
                    f.tag.unwrap_or_default(),
                    ident(&f.name)
                ),
            );
        }
        w(out, "                    _ => { let _ = r; }");
        w(out, "                }");
        w(out, "            }");
        w(out, "        }");
    }
    w(out, "        Ok(this)");
    w(out, "    }");
    // encode
    w(
        out,
        "    pub(crate) fn encode_body<W: Put>(&self, w: &mut W, version: i16) -> Result<(), EncodeError> {",
    );
    w(out, &format!("        let flexible = {flex};"));
    w(out, "        let _ = flexible;");
    for f in def.fields.iter().filter(|f| f.tag.is_none()) {
        let cond = range_cond(f.versions, msg.versions);
        let stmt = encode_field(f, &format!("self.{}", ident(&f.name)));
        if cond == "true" {
            w(out, &format!("        {stmt}"));
        } else {
            w(out, &format!("        if {cond} {{ {stmt} }}"));
        }
    }
    if msg.flexible_from.is_some() {
        let mut tagged: Vec<&Field> = def.fields.iter().filter(|f| f.tag.is_some()).collect();
        tagged.sort_by_key(|f| f.tag);
        w(out, "        if flexible {");
        w(
            out,
            "            #[allow(unused_mut)] let mut tags: Vec<(u32, Vec<u8>)> = Vec::new();",
        );
        for f in tagged {
            let cond = range_cond(f.versions, msg.versions);
            let access = format!("self.{}", ident(&f.name));
            let stmt = encode_field(f, &access);
            w(
                out,
                &format!(
                    "            if {cond} && {access} != {} {{ let mut buf = Vec::<u8>::new(); {{ let w = &mut buf; {stmt} }} tags.push(({}, buf)); }}",
                    typed_default(f),
                    f.tag.unwrap_or_default()
                ),
            );
        }
        w(out, "            w.put_uvarint(tags.len() as u32);");
        w(
            out,
            "            for (tag, buf) in tags { w.put_uvarint(tag); w.put_uvarint(buf.len() as u32); w.put_raw(&buf); }",
        );
        w(out, "        }");
    }
    w(out, "        Ok(())");
    w(out, "    }");
    w(out, "}");
}

fn emit_message(out: &mut String, msg: &Message) {
    let module = msg.module();
    let name = msg.name();
    let _ = writeln!(
        out,
        "/// {} (api key {}), versions {}-{}.\npub mod {module} {{",
        name, msg.api_key, msg.versions.0, msg.versions.1
    );
    out.push_str("#![allow(clippy::all, unused_comparisons, unused_parens, unused_imports)]\n");
    out.push_str("use bytes::Bytes;\nuse crate::error::{DecodeError, EncodeError};\nuse crate::wire::{Put, Reader, Uuid, vec_for};\n");
    for def in &msg.structs {
        emit_struct(out, msg, def);
    }
    let flex = msg.flexible_from.unwrap_or(MAX_VERSION);
    let _ = writeln!(
        out,
        "impl crate::Message for {name} {{
    const API_KEY: i16 = {key};
    const MIN_VERSION: i16 = {lo};
    const MAX_VERSION: i16 = {hi};
    const FLEXIBLE_FROM: i16 = {flex};
    fn decode(r: &mut Reader, version: i16) -> Result<Self, DecodeError> {{
        if !(Self::MIN_VERSION..=Self::MAX_VERSION).contains(&version) {{
            return Err(DecodeError::UnsupportedVersion {{ api_key: {key}, version }});
        }}
        Self::decode_body(r, version)
    }}
    fn encode<W: Put>(&self, w: &mut W, version: i16) -> Result<(), EncodeError> {{
        if !(Self::MIN_VERSION..=Self::MAX_VERSION).contains(&version) {{
            return Err(EncodeError::UnsupportedVersion {{ api_key: {key}, version }});
        }}
        self.encode_body(w, version)
    }}
}}
}}",
        key = msg.api_key,
        lo = msg.versions.0,
        hi = msg.versions.1,
    );
}

fn main() {
    let dir = Path::new("schema");
    println!("cargo:rerun-if-changed=schema");
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .expect("schema dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .collect();
    paths.sort();
    let mut messages = Vec::new();
    for p in &paths {
        println!("cargo:rerun-if-changed={}", p.display());
        messages.extend(parse_file(p));
    }
    let mut out = String::new();
    out.push_str("// Generated by protocol/build.rs from protocol/schema/*.txt. Do not edit.\n");
    for m in &messages {
        emit_message(&mut out, m);
    }
    // The API table and the request enum.
    let mut apis: BTreeMap<i16, (&Message, Option<&Message>)> = BTreeMap::new();
    for m in &messages {
        if m.kind == "Request" {
            apis.insert(m.api_key, (m, None));
        }
    }
    for m in &messages {
        if m.kind == "Response" {
            let entry = apis
                .get_mut(&m.api_key)
                .unwrap_or_else(|| panic!("response without request: {}", m.name()));
            if entry.0.versions != m.versions {
                panic!("{}: request and response version ranges differ", m.name());
            }
            entry.1 = Some(m);
        }
    }
    out.push_str(
        "/// The Kafka APIs this codec implements.\n#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]\n#[non_exhaustive]\npub enum ApiKey {\n",
    );
    for (key, (req, _)) in &apis {
        let _ = writeln!(out, "    {} = {key},", req.api_name);
    }
    out.push_str("}\n\nimpl ApiKey {\n    /// Every implemented API, by key.\n    pub const ALL: &'static [ApiKey] = &[");
    for (req, _) in apis.values() {
        let _ = write!(out, "ApiKey::{}, ", req.api_name);
    }
    out.push_str("];\n\n    pub fn from_i16(key: i16) -> Option<ApiKey> {\n        match key {\n");
    for (key, (req, _)) in &apis {
        let _ = writeln!(out, "            {key} => Some(ApiKey::{}),", req.api_name);
    }
    out.push_str("            _ => None,\n        }\n    }\n\n    /// `(min, max)` supported versions.\n    pub fn versions(self) -> (i16, i16) {\n        match self {\n");
    for (req, _) in apis.values() {
        let _ = writeln!(
            out,
            "            ApiKey::{} => ({}, {}),",
            req.api_name, req.versions.0, req.versions.1
        );
    }
    out.push_str("        }\n    }\n\n    /// First flexible version (`i16::MAX` when none).\n    pub fn flexible_from(self) -> i16 {\n        match self {\n");
    for (req, _) in apis.values() {
        let _ = writeln!(
            out,
            "            ApiKey::{} => {},",
            req.api_name,
            req.flexible_from.unwrap_or(MAX_VERSION)
        );
    }
    out.push_str(
        "        }\n    }\n\n    pub fn name(self) -> &'static str {\n        match self {\n",
    );
    for (req, _) in apis.values() {
        let _ = writeln!(
            out,
            "            ApiKey::{} => \"{}\",",
            req.api_name, req.api_name
        );
    }
    out.push_str("        }\n    }\n}\n\n");
    out.push_str("/// Any supported request, decoded.\n#[derive(Debug, Clone, PartialEq)]\n#[non_exhaustive]\npub enum Request {\n");
    for (req, _) in apis.values() {
        let _ = writeln!(
            out,
            "    {}({}::{}),",
            req.api_name,
            req.module(),
            req.name()
        );
    }
    out.push_str("}\n\nimpl Request {\n    /// Decodes a request body (after the header) of `api_key` at `version`.\n    pub fn decode(api_key: ApiKey, version: i16, r: &mut crate::wire::Reader) -> Result<Request, crate::DecodeError> {\n        use crate::Message as _;\n        Ok(match api_key {\n");
    for (req, _) in apis.values() {
        let _ = writeln!(
            out,
            "            ApiKey::{0} => Request::{0}({1}::{2}::decode(r, version)?),",
            req.api_name,
            req.module(),
            req.name()
        );
    }
    out.push_str("        })\n    }\n}\n");
    let out_dir = std::env::var("OUT_DIR").expect("OUT_DIR");
    std::fs::write(Path::new(&out_dir).join("messages.rs"), out).expect("write messages.rs");
}
