//! Floe's shadow index: the object-store tier of each partition.
//!
//! This crate sees segments as bytes plus offset/timestamp metadata and knows
//! nothing of the Kafka protocol. Today it holds the object-store layout (how
//! segments, indexes and manifests are named); the uploader, the partition
//! manifest, the remote reader and its cache land here next.
//!
//! # Example
//! ```
//! use shadow_index::layout::SegmentName;
//! let name = SegmentName { base_offset: 0, last_offset: 99, epoch: 1 };
//! assert_eq!(name.log_key("orders", 3), "topics/orders/3/00000000000000000000-00000000000000000099-1.log");
//! assert_eq!(SegmentName::parse(&name.file_stem()), Some(name));
//! ```

pub mod layout;
