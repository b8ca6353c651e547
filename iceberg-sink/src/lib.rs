//! Floe's Iceberg sink: records of one topic in, Iceberg snapshots out.
//!
//! Input is plain data (`topic, partition, offsets, records`), never a socket.
//! Today this crate holds the exactly-once bookkeeping: the next offset of
//! every partition a commit covers is stored in the snapshot summary under
//! `floe.next-offset.<partition>`, and read back on restart. Arrow conversion,
//! Parquet writing and snapshot commits land here next.
//!
//! # Example
//! ```
//! use iceberg_sink::offsets::CommittedOffsets;
//! let mut offsets = CommittedOffsets::default();
//! offsets.advance(0, 100);
//! let summary = offsets.to_summary();
//! assert_eq!(CommittedOffsets::from_summary(&summary).unwrap().next_offset(0), Some(100));
//! ```

pub mod offsets;
