//! Floe's shadow index: the object-store tier of each partition.
//!
//! Sealed local segments are uploaded to an object store (S3, an
//! S3-compatible server, a local directory, or memory in tests), listed in a
//! per-partition manifest, read back through a bounded on-disk chunk cache,
//! trimmed by retention, and used to rebuild topics on an empty broker. The
//! crate sees segments as bytes plus offset/timestamp metadata: it reads the
//! fixed RecordBatch v2 header (framing, offsets, timestamps, CRC32C) and
//! nothing else of the Kafka protocol. It runs on tokio (the broker's cloud
//! plane).
//!
//! # Layout
//!
//! | module | what |
//! |---|---|
//! | [`store`] | [`open_store`](store::open_store) (`file://`, `memory://`, `s3://`), the [`Remote`](store::Remote) handle, the startup [`check`](store::Remote::check) |
//! | [`layout`] | object keys: `topics/<topic>/<partition>/<base:020>-<last:020>-<epoch>.log` / `.index`, `manifest.json`, `topic.json` |
//! | [`manifest`] | [`PartitionManifest`](manifest::PartitionManifest), [`SegmentMeta`](manifest::SegmentMeta), [`TopicManifest`](manifest::TopicManifest); serialized read-modify-write |
//! | [`index`] | batch-header parsing, [`validate_batches`](index::validate_batches), the streaming [`BatchScanner`](index::BatchScanner) and the [`RemoteIndex`](index::RemoteIndex) object |
//! | [`uploader`] | [`Uploader::upload_segment`](uploader::Uploader::upload_segment): data, index, then manifest |
//! | [`reader`] | [`RemoteReader::read`](reader::RemoteReader::read), timestamp lookup, prefetch |
//! | `prefetch` | read-ahead depth from each reader's rate and the GET time; chunks fetched ahead, within a budget |
//! | [`buffers`] | [`ChunkBuffers`](buffers::ChunkBuffers): reused, page-aligned buffers that chunk GETs fill |
//! | [`cache`] | [`ChunkCache`](cache::ChunkCache): on-disk LRU by bytes, survives restarts, direct I/O; `cache/file.rs` the chunk file format |
//! | [`retention`] | retention.ms/bytes, delete-records, topic deletion, the orphan sweeper |
//! | [`recovery`] | topics, partition counts, configs and offsets from the bucket |
//! | [`lease`] | [`WriterLease`](lease::WriterLease): one broker writes a prefix; a second one is refused, a taken-over one stops writing |
//! | [`retry`] | exponential backoff with full jitter |
//! | [`metrics`] | Prometheus series (`floe_tier_*`) |
//! | [`error`] | the crate's [`Error`] with [`Error::is_retriable`] |
//!
//! # Durability order
//!
//! 1. Upload the `.log` object (one PUT, or a multipart upload for large
//!    segments); on a `file://` store, fsync it and its directory.
//! 2. Upload the `.index` object.
//! 3. PUT the partition manifest listing the segment (atomic). Only now may
//!    the broker delete the local segment.
//!
//! Removal goes the other way: the manifest moves first, objects are deleted
//! after. A crash anywhere leaves at worst unlisted objects (orphans), which
//! [`retention::sweep_orphans`] deletes once they are older than a guard age.
//!
//! # Example
//! ```
//! use shadow_index::cache::ChunkCache;
//! use shadow_index::index::test_batch;
//! use shadow_index::reader::RemoteReader;
//! use shadow_index::store::open_store;
//! use shadow_index::uploader::{SealedSegment, Uploader, UploaderConfig};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
//!     let remote = open_store("memory://")?;
//!     remote.check().await?;
//!
//!     // A sealed segment: two batches, offsets 0..=9 and 10..=14.
//!     let mut log = test_batch(0, 10, 1_000, b"first").to_vec();
//!     log.extend_from_slice(&test_batch(10, 5, 2_000, b"second"));
//!     let path = dir.path().join("00000000000000000000.log");
//!     std::fs::write(&path, &log)?;
//!
//!     let uploader = Uploader::new(remote.clone(), UploaderConfig::default());
//!     let segment = SealedSegment {
//!         topic: "orders".into(), partition: 0,
//!         base_offset: 0, last_offset: 14, epoch: 0, path,
//!     };
//!     assert_eq!(uploader.upload_segment(&segment).await?.next_offset(), 15);
//!
//!     let reader = RemoteReader::new(remote, ChunkCache::open(dir.path().join("cache"), 1 << 30)?);
//!     let slice = reader.read("orders", 0, 12, 1 << 20).await?;
//!     assert_eq!((slice.base_offset, slice.next_offset), (10, 15));
//!     assert_eq!(&slice.bytes[..], &log[log.len() - slice.bytes.len()..]);
//!     Ok::<_, Box<dyn std::error::Error>>(())
//! })
//! # }
//! ```

pub mod buffers;
pub mod cache;
pub mod error;
pub mod index;
pub mod layout;
pub mod lease;
pub mod manifest;
pub mod metrics;
mod prefetch;
pub mod reader;
pub mod recovery;
pub mod retention;
pub mod retry;
pub mod store;
pub mod uploader;

pub use error::{Error, Result};
