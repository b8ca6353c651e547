//! Golden bytes captured from confluent-kafka 2.16.1's Python serializers
//! (AvroSerializer, ProtobufSerializer with a google.protobuf.Timestamp
//! field, JSONSerializer) run against this registry: the framed values must
//! parse and validate with the schemas the serializers registered.

use std::sync::Arc;

use schemas::wire::{Framed, parse_message_indexes};
use schemas::{MemoryLog, ParsedSchema, Registry, SchemaRequest, SchemaType};

fn hex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

const AVRO_SCHEMA: &str = r#"{"fields":[{"name":"id","type":"long"},{"name":"name","type":"string"}],"name":"User","namespace":"ex","type":"record"}"#;
const AVRO_VALUE: &str = "00000000010e06616e6e";
/// The `FileDescriptorProto` the Python serializer registered (base64), for
/// `message Event { string name = 1; google.protobuf.Timestamp at = 2; }`
/// and `message Other { int32 x = 1; }` in package `ex`.
const PROTO_SCHEMA: &str = "CgxzY2hlbWEucHJvdG8SAmV4Gh9nb29nbGUvcHJvdG9idWYvdGltZXN0YW1wLnByb3RvIkcKBUV2ZW50EhIKBG5hbWUYASABKAlSBG5hbWUSKgoCYXQYAiABKAsyGi5nb29nbGUucHJvdG9idWYuVGltZXN0YW1wUgJhdCIVCgVPdGhlchIMCgF4GAEgASgFUgF4YgZwcm90bzM=";
const PROTO_EVENT_VALUE: &str = "0000000003000a066c61756e636812080880e2cfaa061005";
const PROTO_OTHER_VALUE: &str = "000000000302020805";
const JSON_SCHEMA: &str = r#"{"$schema":"http://json-schema.org/draft-07/schema#","properties":{"x":{"type":"integer"},"y":{"type":"integer"}},"required":["x"],"title":"Pt","type":"object"}"#;
const JSON_VALUE: &str = "00000000047b2278223a312c2279223a327d";

#[tokio::test]
async fn python_serializer_output_validates() {
    let registry = Registry::new(Arc::new(MemoryLog::new()));
    let register = |subject: &'static str, schema: &'static str, schema_type| {
        let registry = &registry;
        async move {
            let request = SchemaRequest {
                schema: schema.to_owned(),
                schema_type,
                ..Default::default()
            };
            registry.register(subject, request, false).await.unwrap().id
        }
    };
    let avro = register("users-value", AVRO_SCHEMA, SchemaType::Avro).await;
    let proto = register("events-value", PROTO_SCHEMA, SchemaType::Protobuf).await;
    let json = register("points-value", JSON_SCHEMA, SchemaType::Json).await;

    for (id, value) in [
        (avro, AVRO_VALUE),
        (proto, PROTO_EVENT_VALUE),
        (proto, PROTO_OTHER_VALUE),
        (json, JSON_VALUE),
    ] {
        let bytes = hex(value);
        let framed = Framed::parse(&bytes).unwrap();
        // The Python client got ids 1, 3, 3, 4 from its registry; this
        // fresh one numbers them 1, 2, 2, 3.
        assert!(registry.contains_id(id) && framed.schema_id.0 >= id);
        registry
            .validate_payload(id, framed.payload)
            .unwrap_or_else(|e| panic!("{value}: {e}"));
        // A truncated value does not validate (JSON and Avro cut anywhere,
        // Protobuf inside a length-delimited field).
        let cut = &framed.payload[..framed.payload.len() - 1];
        assert!(registry.validate_payload(id, cut).is_err(), "{value} cut");
    }

    // The Protobuf message-index paths name Event ([0], the shortcut) and Other ([1]).
    let ParsedSchema::Protobuf(schema) = &*registry.compiled(proto).unwrap() else {
        panic!("not protobuf");
    };
    for (value, name) in [
        (PROTO_EVENT_VALUE, "ex.Event"),
        (PROTO_OTHER_VALUE, "ex.Other"),
    ] {
        let bytes = hex(value);
        let payload = Framed::parse(&bytes).unwrap().payload;
        let (indexes, _) = parse_message_indexes(payload).unwrap();
        assert_eq!(schema.message_at(&indexes).unwrap().full_name(), name);
        assert_eq!(
            schema.message_for_payload(payload).unwrap().0.full_name(),
            name
        );
    }
}
