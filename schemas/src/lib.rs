//! Floe's schema registry core.
//!
//! Today this crate holds the Confluent wire format (the framing that
//! serializers put in front of a value: magic byte 0, a 4-byte schema id and,
//! for Protobuf, the message-index path). The registry itself (subjects,
//! versions, compatibility, the HTTP API) lands here next; it knows nothing of
//! Kafka logs, Arrow or Iceberg.
//!
//! # Example
//! ```
//! use schemas::wire::{Framed, SchemaId};
//! let mut buf = Vec::new();
//! schemas::wire::encode_header(SchemaId(7), &mut buf);
//! buf.extend_from_slice(b"payload");
//! let framed = Framed::parse(&buf).unwrap();
//! assert_eq!(framed.schema_id, SchemaId(7));
//! assert_eq!(framed.payload, b"payload");
//! ```

pub mod wire;
