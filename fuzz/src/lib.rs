//! Shared pieces of Floe's fuzz targets (TESTING.md, target S1).
//!
//! # Layout
//! - [`alloc`]: a counting global allocator. Every target asserts that the
//!   memory a decoder allocates is bounded by its input (or by its output cap),
//!   which is what STYLE.md habit 7 promises: a count read off the wire is
//!   checked against the bytes that remain before anything is allocated.
//! - [`requests`]: decoding a request body of any API at any version and the
//!   round-trip invariant (decode, encode, decode gives the same value and the
//!   same bytes again).
//! - [`batches`]: the fix-ups that let the fuzzer reach record parsing behind
//!   a batch's CRC and compression.
//!
//! The targets are in `fuzz_targets/`, the seed writer in `seeds.rs`; run
//! them with `scripts/fuzz.sh`.

pub mod alloc;
pub mod batches;
pub mod requests;

#[global_allocator]
static ALLOCATOR: alloc::Counting = alloc::Counting;
