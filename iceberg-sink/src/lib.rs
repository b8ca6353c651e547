//! Floe's Iceberg sink: records of one topic in, Iceberg snapshots out.
//!
//! Input is plain data ([`SinkRecord`]s read from a topic's log), never a
//! socket; the broker's projector feeds it on the cloud plane. The pieces:
//!
//! - [`convert`]: Iceberg schemas for each `iceberg.mode` (the `kafka` struct
//!   column, `value binary` for `key_value`, the value's fields as top-level
//!   columns for the schema modes, the DLQ shape) and row conversion from
//!   Avro / Protobuf / JSON payloads into Arrow record batches; schema
//!   evolution between versions.
//! - [`storage`]: iceberg-rust's pluggable `Storage` over `object_store`, so
//!   the bucket and credentials of the shadow index are configured once.
//! - [`catalog`]: a filesystem-style catalog in the object store
//!   (`<warehouse>/<namespace>/<table>/metadata/vN.metadata.json` plus
//!   `version-hint.text`) that readers open without a catalog service.
//! - [`rest`]: an external Iceberg REST catalog instead (iceberg-catalog-rest
//!   for config, namespaces and tables; Floe's own storage and
//!   exactly-once commits). Both catalogs are [`catalog::TableCatalog`]s.
//! - [`table`]: Parquet (zstd) data files written with iceberg-rust's writers,
//!   partitioned by the table's spec, and commits whose snapshot summary
//!   carries the next offset of every partition ([`offsets`]).
//! - [`compact`]: small data files rewritten into target-size files in one
//!   `replace` snapshot that keeps the committed offsets.
//! - [`partition_spec`]: the `iceberg.partition.spec` topic config.
//!
//! # Example
//! ```
//! use iceberg_sink::offsets::CommittedOffsets;
//! let mut offsets = CommittedOffsets::default();
//! offsets.advance(0, 100);
//! let summary = offsets.to_summary();
//! assert_eq!(CommittedOffsets::from_summary(&summary).unwrap().next_offset(0), Some(100));
//! ```

pub mod catalog;
pub mod compact;
pub mod convert;
pub mod failpoint;
pub mod offsets;
pub mod partition_spec;
pub mod record;
pub mod rest;
pub mod storage;
pub mod table;

pub use compact::{Compacted, CompactionPolicy};
pub use record::{SinkHeader, SinkRecord};

/// An error with its sources, `a: b: c` (each source once; reqwest's and
/// iceberg's own texts are terse).
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut out = error.to_string();
    let mut source = error.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}
