//! Protobuf: `.proto` text (parsed in pure Rust by protox) or a base64
//! serialized `FileDescriptorProto` (how confluent-kafka's Python serializer
//! registers), one canonical text, wire compatibility, and payload decoding
//! by message-index path with prost-reflect.
//!
//! References are imports: a reference's `name` is the import path.
//! `google/protobuf/*.proto` imports resolve without a reference (protox
//! ships them).

mod compat;
mod print;

use std::collections::HashMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use prost::Message;
use prost_reflect::{DescriptorPool, DynamicMessage, FileDescriptor, MessageDescriptor};
use prost_types::FileDescriptorProto;
use prost_types::field_descriptor_proto::Type;
use protox::file::{File, FileResolver, GoogleFileResolver};

pub use compat::incompatibilities;

use crate::error::PayloadError;
use crate::format::ResolvedReference;
use crate::wire;

/// The file name the registered schema is compiled under.
const MAIN_FILE: &str = "schema.proto";
/// Used instead when a reference is itself named `schema.proto`.
const MAIN_FILE_ALT: &str = "floe/registered_schema.proto";

/// A compiled Protobuf schema: the registered file and everything it imports.
#[derive(Debug)]
pub struct ProtoSchema {
    pool: DescriptorPool,
    file: FileDescriptor,
}

struct Resolver {
    files: HashMap<String, File>,
    google: GoogleFileResolver,
}

impl FileResolver for Resolver {
    fn open_file(&self, name: &str) -> Result<File, protox::Error> {
        match self.files.get(name) {
            Some(file) => Ok(file.clone()),
            None => self.google.open_file(name),
        }
    }
}

/// Decodes `text` as a base64 serialized `FileDescriptorProto`, if it is one.
fn decode_serialized(text: &str) -> Option<FileDescriptorProto> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return None;
    }
    let bytes = BASE64.decode(trimmed).ok()?;
    FileDescriptorProto::decode(bytes.as_slice()).ok()
}

impl ProtoSchema {
    /// Parses `.proto` text or a base64 serialized `FileDescriptorProto`,
    /// resolving imports from `references` (and the well-known types).
    pub fn parse(text: &str, references: &[ResolvedReference]) -> Result<ProtoSchema, String> {
        let mut files = HashMap::new();
        for reference in references {
            let file = match decode_serialized(&reference.text) {
                Some(mut descriptor) => {
                    descriptor.name = Some(reference.name.clone());
                    File::from_file_descriptor_proto(descriptor)
                }
                None => File::from_source(&reference.name, &reference.text)
                    .map_err(|e| format!("reference '{}': {e}", reference.name))?,
            };
            files.insert(reference.name.clone(), file);
        }
        let main_name = if files.contains_key(MAIN_FILE) {
            MAIN_FILE_ALT
        } else {
            MAIN_FILE
        };
        let main = match decode_serialized(text) {
            Some(mut descriptor) => {
                descriptor.name = Some(main_name.to_owned());
                File::from_file_descriptor_proto(descriptor)
            }
            None => File::from_source(main_name, text).map_err(|e| e.to_string())?,
        };
        files.insert(main_name.to_owned(), main);
        let mut compiler = protox::Compiler::with_file_resolver(Resolver {
            files,
            google: GoogleFileResolver::new(),
        });
        compiler.include_imports(true).include_source_info(false);
        compiler.open_file(main_name).map_err(|e| e.to_string())?;
        let pool = compiler.descriptor_pool();
        let file = pool
            .get_file_by_name(main_name)
            .ok_or_else(|| "compiled file missing from its pool".to_owned())?;
        if pool.all_messages().any(|m| {
            m.descriptor_proto()
                .field
                .iter()
                .any(|f| f.r#type() == Type::Group)
        }) {
            return Err("proto2 groups are not supported".to_owned());
        }
        Ok(ProtoSchema { pool, file })
    }

    /// The registered file.
    pub fn file(&self) -> &FileDescriptor {
        &self.file
    }

    /// The pool with the file and its imports.
    pub fn pool(&self) -> &DescriptorPool {
        &self.pool
    }

    /// The canonical `.proto` text (see `print`).
    pub fn canonical(&self) -> String {
        print::print_file(self.file.file_descriptor_proto())
    }

    /// The file as a base64 serialized `FileDescriptorProto`, the form
    /// `?format=serialized` answers with.
    pub fn serialized(&self) -> String {
        let mut descriptor = self.file.file_descriptor_proto().clone();
        descriptor.source_code_info = None;
        BASE64.encode(descriptor.encode_to_vec())
    }

    /// The message type at a Confluent message-index path (`[0]` is the
    /// first top-level message, `[1, 0]` the first nested message of the
    /// second, ...).
    pub fn message_at(&self, indexes: &[i64]) -> Option<MessageDescriptor> {
        let (&first, rest) = indexes.split_first()?;
        let proto = self.file.file_descriptor_proto();
        let top = proto.message_type.get(usize::try_from(first).ok()?)?;
        let mut name = if proto.package().is_empty() {
            top.name().to_owned()
        } else {
            format!("{}.{}", proto.package(), top.name())
        };
        let mut current = self.pool.get_message_by_name(&name)?;
        for &index in rest {
            let nested = current
                .descriptor_proto()
                .nested_type
                .get(usize::try_from(index).ok()?)?;
            name = format!("{}.{}", current.full_name(), nested.name());
            current = self.pool.get_message_by_name(&name)?;
        }
        Some(current)
    }

    /// Splits a payload (after the 5-byte header) into its message type and
    /// message bytes. Producers that omit the message indexes are tolerated:
    /// when the indexes do not parse or do not name a message that decodes,
    /// the whole payload is tried as the first message.
    pub fn message_for_payload<'p>(
        &self,
        payload: &'p [u8],
    ) -> Result<(MessageDescriptor, &'p [u8]), PayloadError> {
        let first = self
            .message_at(&[0])
            .ok_or_else(|| PayloadError::new("protobuf schema has no message type"))?;
        let indexed = match wire::parse_message_indexes(payload) {
            Ok((indexes, rest)) => match self.message_at(&indexes) {
                Some(descriptor) => match DynamicMessage::decode(descriptor.clone(), rest) {
                    Ok(_) => return Ok((descriptor, rest)),
                    Err(e) => PayloadError::new(format!(
                        "protobuf decode of {}: {e}",
                        descriptor.full_name()
                    )),
                },
                None => PayloadError::new(format!("no message type at index path {indexes:?}")),
            },
            Err(e) => PayloadError::new(e.to_string()),
        };
        match DynamicMessage::decode(first.clone(), payload) {
            Ok(_) => Ok((first, payload)),
            Err(_) => Err(indexed),
        }
    }

    /// Decodes the message a payload names.
    pub fn validate_payload(&self, payload: &[u8]) -> Result<(), PayloadError> {
        self.message_for_payload(payload).map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::SchemaType;

    const ORDER: &str = r#"
        syntax = "proto3";
        package shop.v1;
        import "google/protobuf/timestamp.proto";
        option java_package = "com.shop";
        // a comment that canonical text drops
        message Order {
          string id = 1;
          repeated int64 quantities = 2 [packed = false];
          map<string, Line> lines = 3;
          google.protobuf.Timestamp created = 4;
          oneof payment {
            string card = 5;
            bytes token = 6;
          }
          optional int32 priority = 7;
          Status status = 8;
          reserved 10, 12 to 15;
          reserved "old";
          message Line { double price = 1; }
          enum Status { STATUS_UNKNOWN = 0; STATUS_PAID = 1; }
        }
        message Refund { string order_id = 1 [json_name = "orderRef"]; }
        service Shop { rpc Place(Order) returns (stream Refund); }
    "#;

    fn parse(text: &str) -> ProtoSchema {
        ProtoSchema::parse(text, &[]).unwrap()
    }

    #[test]
    fn canonical_text_recompiles_to_the_same_descriptor() {
        let schema = parse(ORDER);
        let text = schema.canonical();
        assert!(!text.contains("comment"));
        let again = parse(&text);
        assert_eq!(again.canonical(), text);
        let mut a = schema.file().file_descriptor_proto().clone();
        let mut b = again.file().file_descriptor_proto().clone();
        a.source_code_info = None;
        b.source_code_info = None;
        assert_eq!(a, b, "{text}");
    }

    #[test]
    fn serialized_and_text_forms_share_one_canonical_text() {
        let schema = parse(ORDER);
        let from_serialized = parse(&schema.serialized());
        assert_eq!(from_serialized.canonical(), schema.canonical());
    }

    #[test]
    fn invalid_proto_reports_the_parser_message() {
        let err =
            ProtoSchema::parse("syntax = \"proto3\"; message A { string x = ; }", &[]).unwrap_err();
        assert!(!err.is_empty());
        let err = ProtoSchema::parse("syntax = \"proto3\"; message A { Missing x = 1; }", &[])
            .unwrap_err();
        assert!(err.contains("Missing"), "{err}");
        assert!(ProtoSchema::parse("syntax = \"proto3\"; import \"nope.proto\";", &[]).is_err());
    }

    #[test]
    fn references_are_imports() {
        let common = ResolvedReference {
            name: "common/money.proto".into(),
            schema_type: SchemaType::Protobuf,
            text: "syntax = \"proto3\"; package common; message Money { int64 units = 1; }".into(),
        };
        let text = "syntax = \"proto3\"; import \"common/money.proto\"; message Price { common.Money amount = 1; }";
        assert!(ProtoSchema::parse(text, &[]).is_err());
        let schema = ProtoSchema::parse(text, std::slice::from_ref(&common)).unwrap();
        assert!(schema.canonical().contains(".common.Money amount = 1;"));
    }

    #[test]
    fn payloads_decode_by_index_path_and_tolerate_missing_indexes() {
        let schema = parse(ORDER);
        // Order { id: "a" } = field 1, wire type 2: 0x0a 0x01 'a'
        let order = [0x0a, 0x01, b'a'];
        let mut framed = vec![0];
        framed.extend_from_slice(&order);
        let (m, rest) = schema.message_for_payload(&framed).unwrap();
        assert_eq!((m.full_name(), rest), ("shop.v1.Order", &order[..]));
        // Index path [1] = Refund.
        let mut refund = Vec::new();
        wire::encode_message_indexes(&[1], &mut refund);
        refund.extend_from_slice(&order);
        assert_eq!(
            schema.message_for_payload(&refund).unwrap().0.full_name(),
            "shop.v1.Refund"
        );
        // Nested types count in declaration order, map entries included
        // (as protoc and Confluent's serializers number them).
        assert_eq!(
            schema.message_at(&[0, 0]).unwrap().full_name(),
            "shop.v1.Order.LinesEntry"
        );
        assert_eq!(
            schema.message_at(&[0, 1]).unwrap().full_name(),
            "shop.v1.Order.Line"
        );
        assert!(schema.message_at(&[5]).is_none());
        // Without indexes: the first message type.
        assert_eq!(
            schema.message_for_payload(&order).unwrap().0.full_name(),
            "shop.v1.Order"
        );
        // Garbage: a field header with a truncated length.
        assert!(schema.validate_payload(&[0, 0x0a, 0x05, b'a']).is_err());
    }
}
