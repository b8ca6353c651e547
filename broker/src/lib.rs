//! Floe's broker: the `floe` binary's library half.
//!
//! # Layout
//! - [`server`]: startup (one glommio executor per core) and shutdown.
//! - [`net`]: the Kafka listener and connections of one shard.
//! - [`handler`]: one file per Kafka API, dispatched from `handler::dispatch`.
//! - [`shard`]: partition ownership and cross-shard forwarding.
//! - [`partition`]: a partition = its [`log`] + idempotent producer state.
//! - [`log`]: the local log (segments, indexes, recovery, group commit).
//! - [`group`]: the consumer-group state machine; [`group_service`] wires it
//!   to time and storage; [`offsets`] stores commits in `__consumer_offsets`.
//! - [`topics`], [`config`], [`admin`]: topic metadata, configs and admin ops.
//! - [`admin_http`], [`metrics`]: `/health`, `/metrics`, the JSON admin API.
//! - [`registry`]: the schema registry over `_schemas`, its HTTP server and
//!   produce-time schema validation.
//! - [`client`]: the blocking client behind `floe topic ...`.
//! - [`error_code`]: Kafka error codes.

pub mod admin;
pub mod admin_client;
pub mod admin_http;
pub mod client;
pub mod config;
pub mod disk_guard;
pub mod error_code;
pub mod fences;
pub mod frame_reader;
pub mod group;
pub mod group_service;
pub mod handler;
pub mod log;
pub mod metrics;
pub mod net;
pub mod offsets;
pub mod partition;
pub mod producer_ids;
pub mod producer_state;
#[cfg(feature = "iceberg")]
pub mod projector;
pub mod registry;
pub mod server;
pub mod shard;
pub mod tier;
pub mod topics;
