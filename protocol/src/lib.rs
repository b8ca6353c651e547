//! Floe's Kafka protocol codec: sans-IO, no async, no sockets.
//!
//! Every message struct and its `decode` / `encode` are generated at build
//! time from the schemas in `protocol/schema/*.txt` (Floe's own notation for
//! the facts of the Kafka protocol; see `schema/README.md`). Nothing is
//! encoded by hand except the request and response headers.
//!
//! # Layout
//! - [`wire`]: primitive readers and writers; every count read off the wire is
//!   checked against the bytes that remain before anything is allocated.
//! - [`header`]: request / response headers and frame handling.
//! - `messages` (generated): one module per message, [`ApiKey`], [`Request`].
//! - [`error`]: [`DecodeError`], [`EncodeError`].
//!
//! # Example
//! ```
//! use bytes::Bytes;
//! use protocol::{Message, metadata_request::MetadataRequest, wire::Reader};
//!
//! let request = MetadataRequest { topics: Some(vec![]), ..Default::default() };
//! let mut buf = Vec::new();
//! request.encode(&mut buf, 4).unwrap();
//! let decoded = MetadataRequest::decode(&mut Reader::new(Bytes::from(buf)), 4).unwrap();
//! assert_eq!(decoded, request);
//! ```

pub mod error;
pub mod header;
pub mod wire;

#[allow(missing_docs, clippy::all, clippy::pedantic)]
mod messages {
    include!(concat!(env!("OUT_DIR"), "/messages.rs"));
}

pub use error::{DecodeError, EncodeError};
pub use header::{RequestHeader, ResponseHeader};
pub use messages::*;

/// A Kafka message (request or response body) with a generated codec.
pub trait Message: Sized {
    const API_KEY: i16;
    const MIN_VERSION: i16;
    const MAX_VERSION: i16;
    /// First flexible version (`i16::MAX` when the message has none).
    const FLEXIBLE_FROM: i16;

    /// Decodes the body at `version`; fails on versions outside the range.
    fn decode(r: &mut wire::Reader, version: i16) -> Result<Self, DecodeError>;

    /// Appends the body at `version` to `w`.
    fn encode<W: wire::Put>(&self, w: &mut W, version: i16) -> Result<(), EncodeError>;
}
