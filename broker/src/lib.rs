//! Floe's broker: the `floe` binary's library half.
//!
//! # Layout
//! - `log`: the local log of one partition (segments, indexes, recovery,
//!   retention, group commit).

pub mod log;
