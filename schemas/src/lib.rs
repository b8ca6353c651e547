//! Floe's schema registry: a Confluent-compatible registry library that the
//! broker mounts on its HTTP port and backs with the internal topic
//! `_schemas`. It knows nothing of Kafka logs, Arrow or Iceberg.
//!
//! # Layout
//! - [`model`]: schema types, references, compatibility levels, modes.
//! - [`registry`]: subjects, versions, ids, deletes, config, mode; the write
//!   path (validate, append to the log, apply) and replay.
//! - [`log`]: the `_schemas` record format, the [`SchemaLog`] trait the
//!   broker implements and an in-memory log for tests.
//! - [`format`], [`avro`], [`protobuf`], [`json`]: parsing, canonical text,
//!   compatibility rules and payload validation per format.
//! - [`http`]: the Confluent REST API as an axum router.
//! - [`wire`]: the Confluent wire format (magic 0, schema id, Protobuf
//!   message indexes).
//! - [`error`]: the crate's typed errors.
//!
//! # Example
//! ```
//! use std::sync::Arc;
//! use schemas::{MemoryLog, Registry, SchemaRequest};
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let log = Arc::new(MemoryLog::new());
//! let registry = Registry::new(log.clone());
//! let request = SchemaRequest { schema: r#""string""#.into(), ..Default::default() };
//! let registered = registry.register("t-value", request, false).await.unwrap();
//! assert_eq!((registered.id, registered.version), (1, 1));
//!
//! // After a restart: replay the log into a new registry.
//! let restarted = Registry::new(log.clone());
//! assert!(restarted.replay(log.records()).skipped.is_empty());
//! assert!(restarted.contains_id(1));
//!
//! // Serve it: `schemas::http::router(Arc::new(restarted))` is an axum Router.
//! # });
//! ```
//!
//! A framed value:
//! ```
//! use schemas::wire::{Framed, SchemaId};
//! let mut buf = Vec::new();
//! schemas::wire::encode_header(SchemaId(7), &mut buf);
//! buf.extend_from_slice(b"payload");
//! let framed = Framed::parse(&buf).unwrap();
//! assert_eq!(framed.schema_id, SchemaId(7));
//! assert_eq!(framed.payload, b"payload");
//! ```

pub mod avro;
pub mod error;
pub mod format;
pub mod http;
pub mod json;
pub mod log;
pub mod model;
pub mod protobuf;
pub mod registry;
pub mod wire;

pub use error::{ApplyError, ApplyReason, LogError, PayloadError, RegistryError};
pub use format::ParsedSchema;
pub use log::{LogRecord, MemoryLog, SchemaLog};
pub use model::{CompatibilityLevel, Mode, Schema, SchemaReference, SchemaType};
pub use registry::{Registered, Registry, ReplayReport, SchemaRequest, VersionSpec};
