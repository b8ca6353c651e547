//! The schema registry in the broker: the `schemas` crate's [`Registry`]
//! backed by the internal topic `_schemas`, served over HTTP on
//! `--registry-addr`, and consulted by Produce for topics with schema id
//! validation.
//!
//! # Startup
//! 1. [`start`] binds the registry address (a taken port fails startup at
//!    once) and starts the registry task on the cloud plane's tokio runtime
//!    (never a shard).
//! 2. That task creates `_schemas` (one partition, `retention.ms=-1`,
//!    internal: clients cannot produce to it) if it is missing.
//! 3. It reads the partition from its start to its end through the inbox of
//!    the shard that owns it, and applies every record in offset order. A
//!    record (or batch) that does not apply is logged with its offset and
//!    skipped; a summary is logged at the end.
//! 4. It marks the registry loaded, then serves HTTP. Shards bind the Kafka
//!    port only after step 4, so no record is validated against a half
//!    loaded registry and `/health` is ready only once the registry is.
//!
//! # Write path
//! A registry change is one record (Confluent's `_schemas` format, see
//! `schemas::log`) in an uncompressed batch, sent as a [`PartitionOp::Produce`]
//! with `acks=-1` to the owner shard of `_schemas-0`: the shard appends it and
//! fdatasyncs before it answers with the offset, and only then does the
//! registry apply the change and answer the client.
//!
//! # Validation
//! For a topic with `value.schema.id.validation` (or `key.`) set, Produce
//! calls [`Schemas::check_records`] on the connection's shard before handing
//! the batches to the partition: every non-null value (key) must be in the
//! Confluent wire format with a registered schema id, and with
//! `schema.validation.mode=full` its payload must decode with that schema.
//! A null key or value carries no data to type and passes (tombstones,
//! keyless records). One bad record rejects the partition's whole request
//! with `INVALID_RECORD` and per-record errors; nothing is appended. Topics
//! without validation pay one config lookup per request and no per-record
//! work.

use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use bytes::Bytes;
use event_listener::Event;
use futures_util::future::BoxFuture;
use schemas::wire::Framed;
use schemas::{Registry, SchemaLog};

use crate::config::TopicConfig;
use crate::error_code;
use crate::log::batch::{self, BatchHeader, BatchIter, HEADER_LEN};
use crate::log::{BatchBuilder, Compression, LogConfig, compression};
use crate::offsets;
use crate::shard::{Cluster, PartitionOp, PartitionReply, ShardMsg, now_ms};
use crate::topics::{TopicError, TopicMeta, TopicPartition, new_topic_id};

/// The internal topic holding every registry change.
pub const SCHEMAS_TOPIC: &str = "_schemas";
/// How long an append may wait for the owner shard before its fate is
/// reported as unknown.
const APPEND_TIMEOUT: Duration = Duration::from_secs(30);
/// Bytes read from `_schemas` per request during the replay.
const READ_CHUNK: usize = 1 << 20;
/// Offsets of skipped records named in the summary line.
const SUMMARY_OFFSETS: usize = 20;
/// Per-record errors returned in one produce response.
const MAX_RECORD_ERRORS: usize = 1000;
/// How long in-flight registry requests may run after shutdown begins.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Why the registry could not be loaded at startup.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    #[error("cannot create the {SCHEMAS_TOPIC} topic")]
    CreateTopic {
        #[source]
        source: TopicError,
    },
    #[error("cannot read {SCHEMAS_TOPIC} at offset {offset} (kafka error {code})")]
    Read { offset: i64, code: i16 },
    #[error("reading {SCHEMAS_TOPIC} made no progress at offset {offset}")]
    Stuck { offset: i64 },
    #[error("the shard owning {SCHEMAS_TOPIC} stopped during the replay")]
    ShardStopped,
}

/// The broker's registry: the shared [`Registry`] and whether its replay is
/// done. Lives in [`Cluster`]; every shard reads it.
pub struct Schemas {
    registry: Arc<Registry>,
    loaded: AtomicBool,
    loaded_event: Event,
}

impl std::fmt::Debug for Schemas {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Schemas")
            .field("loaded", &self.is_loaded())
            .finish_non_exhaustive()
    }
}

/// Schema checks a topic asks for; `None` from [`Validation::for_topic`]
/// when it asks for none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Validation {
    pub key: bool,
    pub value: bool,
    /// Decode each payload with its schema, not only check the id.
    pub full: bool,
}

impl Validation {
    /// The checks `config` asks for, if any.
    pub fn from_config(config: &TopicConfig) -> Option<Validation> {
        (config.key_schema_id_validation || config.value_schema_id_validation).then_some(
            Validation {
                key: config.key_schema_id_validation,
                value: config.value_schema_id_validation,
                full: config.schema_validation_full,
            },
        )
    }

    /// The checks of a topic with explicit `configs` on this broker.
    pub fn for_topic(
        configs: &BTreeMap<String, String>,
        broker: &crate::config::BrokerConfig,
    ) -> Option<Validation> {
        Validation::from_config(&TopicConfig::effective(configs, broker))
    }
}

/// A produce refused by schema validation: the partition's error message
/// and, per failing record, its index in the request and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    pub message: String,
    pub records: Vec<(i32, String)>,
}

/// What the replay did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct LoadSummary {
    pub applied: usize,
    /// Offsets of records that did not apply (for a corrupt batch, its
    /// base offset).
    pub skipped: Vec<i64>,
    /// The offset after the last record read.
    pub end_offset: i64,
}

impl Schemas {
    /// An empty registry whose changes go to `_schemas` through `cluster`'s
    /// shards.
    pub fn new(cluster: Weak<Cluster>) -> Schemas {
        Schemas {
            registry: Arc::new(Registry::new(Arc::new(TopicLog { cluster }))),
            loaded: AtomicBool::new(false),
            loaded_event: Event::new(),
        }
    }

    /// The registry (reads are cheap and never wait for writers).
    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    /// Whether the startup replay is done.
    pub fn is_loaded(&self) -> bool {
        self.loaded.load(Ordering::SeqCst)
    }

    fn mark_loaded(&self) {
        self.loaded.store(true, Ordering::SeqCst);
        self.loaded_event.notify(usize::MAX);
    }

    /// Resolves once the startup replay is done (any executor).
    pub async fn wait_loaded(&self) {
        loop {
            if self.is_loaded() {
                return;
            }
            let listener = self.loaded_event.listen();
            if self.is_loaded() {
                return;
            }
            listener.await;
        }
    }

    /// Checks the records of one partition's produce request against
    /// `rules`. Batches that are not well formed are left to the partition,
    /// which refuses them with their own error.
    pub fn check_records(&self, rules: Validation, records: &[u8]) -> Result<(), Rejected> {
        let Ok(ranges) = batch::split_batches(records) else {
            return Ok(());
        };
        let mut index = 0i32;
        let mut failed = 0usize;
        let mut errors = Vec::new();
        let cap = LogConfig::default().max_batch_decompressed_bytes;
        for range in ranges {
            let bytes = &records[range];
            let Ok(header) = batch::verify(bytes) else {
                return Ok(());
            };
            let Some(section) = records_section(bytes, &header, cap) else {
                return Ok(());
            };
            let pairs = offsets::key_values(&section);
            if usize::try_from(header.records_count).ok() != Some(pairs.len()) {
                return Ok(());
            }
            for (key, value) in pairs {
                let mut reasons = Vec::new();
                if rules.key
                    && let Err(reason) = self.check_field(key, rules.full)
                {
                    reasons.push(format!("key {reason}"));
                }
                if rules.value
                    && let Err(reason) = self.check_field(value, rules.full)
                {
                    reasons.push(format!("value {reason}"));
                }
                if !reasons.is_empty() {
                    failed += 1;
                    if errors.len() < MAX_RECORD_ERRORS {
                        errors.push((index, reasons.join("; ")));
                    }
                }
                index = index.saturating_add(1);
            }
        }
        if errors.is_empty() {
            return Ok(());
        }
        let first = &errors[0];
        Err(Rejected {
            message: format!(
                "{failed} of {index} records failed schema validation; record {}: {}",
                first.0, first.1
            ),
            records: errors,
        })
    }

    /// One key or value: framed, with a registered id, and (full mode)
    /// decoding with its schema.
    fn check_field(&self, field: Option<&[u8]>, full: bool) -> Result<(), String> {
        let Some(bytes) = field else {
            return Ok(());
        };
        let framed = Framed::parse(bytes).map_err(|e| format!("is not schema-framed: {e}"))?;
        let id = framed.schema_id.0;
        if !self.registry.contains_id(id) {
            return Err(format!("has schema id {id}, which is not registered"));
        }
        if full {
            self.registry
                .validate_payload(id, framed.payload)
                .map_err(|e| format!("does not decode with schema {id}: {e}"))?;
        }
        Ok(())
    }

    /// Applies one chunk of `_schemas` (whole batches, as a read returns
    /// them); returns the offset after its last batch, or `None` when it
    /// holds no whole batch.
    pub fn apply_chunk(&self, bytes: &[u8], summary: &mut LoadSummary) -> Option<i64> {
        let mut position = 0usize;
        let mut next = None;
        for header in BatchIter::new(bytes) {
            let Ok(header) = header else {
                break;
            };
            let batch_bytes = &bytes[position..position + header.size()];
            position += header.size();
            next = Some(header.last_offset() + 1);
            self.apply_batch(batch_bytes, &header, summary);
        }
        next
    }

    fn apply_batch(&self, bytes: &[u8], header: &BatchHeader, summary: &mut LoadSummary) {
        if header.is_control() {
            return;
        }
        let cap = LogConfig::default().max_batch_decompressed_bytes;
        let skip_batch = |summary: &mut LoadSummary, error: &dyn std::fmt::Display| {
            tracing::warn!(
                base_offset = header.base_offset,
                last_offset = header.last_offset(),
                %error,
                "skipping a broken {SCHEMAS_TOPIC} batch"
            );
            summary.skipped.push(header.base_offset);
        };
        if let Err(e) = batch::verify(bytes) {
            return skip_batch(summary, &e);
        }
        let mut deltas = Vec::new();
        if let Err(e) = batch::for_each_record(bytes, header, cap, |record| {
            deltas.push(record.offset_delta);
            ControlFlow::Continue(())
        }) {
            return skip_batch(summary, &e);
        }
        let Some(section) = records_section(bytes, header, cap) else {
            return skip_batch(summary, &"records section does not decompress");
        };
        for ((key, value), delta) in offsets::key_values(&section).into_iter().zip(deltas) {
            let offset = header.base_offset + i64::from(delta);
            let Some(key) = key else {
                tracing::warn!(offset, "skipping a {SCHEMAS_TOPIC} record without a key");
                summary.skipped.push(offset);
                continue;
            };
            match self.registry.apply_record(offset, key, value) {
                Ok(()) => summary.applied += 1,
                Err(error) => {
                    tracing::warn!(offset, %error, "skipping a broken {SCHEMAS_TOPIC} record");
                    summary.skipped.push(offset);
                }
            }
        }
    }

    /// Creates `_schemas` if missing and applies all of it.
    pub async fn load(&self, cluster: &Cluster) -> Result<LoadSummary, LoadError> {
        if cluster.topics.get(SCHEMAS_TOPIC).is_none() {
            recover_topic(cluster).await;
        }
        ensure_topic(cluster)?;
        let mut summary = LoadSummary::default();
        let mut offset = 0i64;
        loop {
            let op = PartitionOp::Read {
                offset,
                max_bytes: READ_CHUNK,
            };
            let Some(PartitionReply::Read(read)) = schemas_op(cluster, op).await else {
                return Err(LoadError::ShardStopped);
            };
            if read.error_code == error_code::OFFSET_OUT_OF_RANGE && offset < read.log_start_offset
            {
                offset = read.log_start_offset;
                continue;
            }
            if read.error_code != error_code::NONE {
                return Err(LoadError::Read {
                    offset,
                    code: read.error_code,
                });
            }
            let bytes = read.records.unwrap_or_default();
            if bytes.is_empty() {
                break;
            }
            match self.apply_chunk(&bytes, &mut summary) {
                Some(next) if next > offset => offset = next,
                _ => return Err(LoadError::Stuck { offset }),
            }
            if offset >= read.high_watermark {
                break;
            }
        }
        summary.end_offset = offset;
        Ok(summary)
    }
}

/// The uncompressed records section of a verified batch.
fn records_section(bytes: &[u8], header: &BatchHeader, cap: usize) -> Option<Vec<u8>> {
    let section = bytes.get(HEADER_LEN..header.size())?;
    match header.compression().ok()? {
        Compression::None => Some(section.to_vec()),
        codec => compression::decompress(codec, section, cap).ok(),
    }
}

fn schemas_tp() -> TopicPartition {
    TopicPartition::new(SCHEMAS_TOPIC, 0)
}

/// Runs `op` on `_schemas-0` through its owner shard's inbox, from any
/// thread. `None` when the shard is gone.
async fn schemas_op(cluster: &Cluster, op: PartitionOp) -> Option<PartitionReply> {
    cluster.send_partition_op(schemas_tp(), op).await
}

/// Recovers `_schemas` from the object store when the store holds it (a
/// broker rebuilt on an empty disk keeps its schemas and ids), through
/// shard 0 like `floe topic recover`.
async fn recover_topic(cluster: &Cluster) {
    let Some(tier) = cluster.tier.clone() else {
        return;
    };
    let plan = match tier
        .recovery_plan(Some(SCHEMAS_TOPIC.to_string()), |_| {})
        .await
    {
        Ok(plan) => plan,
        Err(e) => {
            tracing::warn!(error = %e, "cannot look for {SCHEMAS_TOPIC} in the object store");
            return;
        }
    };
    let Some(plan) = plan.into_iter().next() else {
        return;
    };
    let (reply, answer) = async_channel::bounded(1);
    if cluster.inboxes[0]
        .send(ShardMsg::Recover { plan, reply })
        .await
        .is_err()
    {
        return;
    }
    match answer.recv().await {
        Ok(Ok(line)) => tracing::info!("{line}"),
        Ok(Err(e)) => tracing::warn!(error = %e, "cannot recover {SCHEMAS_TOPIC}"),
        Err(_) => {}
    }
}

/// Creates `_schemas` when it does not exist.
fn ensure_topic(cluster: &Cluster) -> Result<(), LoadError> {
    if cluster.topics.get(SCHEMAS_TOPIC).is_some() {
        return Ok(());
    }
    let meta = TopicMeta {
        name: SCHEMAS_TOPIC.to_string(),
        id: new_topic_id(),
        partitions: 1,
        configs: crate::admin::internal_topic_configs(),
        internal: true,
        created_ms: now_ms(),
    };
    match cluster.topics.create(meta) {
        Ok(_) => {
            tracing::info!(topic = SCHEMAS_TOPIC, "created topic");
            Ok(())
        }
        Err(TopicError::AlreadyExists { .. }) => Ok(()),
        Err(source) => Err(LoadError::CreateTopic { source }),
    }
}

/// The [`SchemaLog`] over `_schemas-0`.
struct TopicLog {
    cluster: Weak<Cluster>,
}

fn unavailable(reason: impl Into<String>) -> schemas::LogError {
    schemas::LogError::Unavailable {
        reason: reason.into(),
    }
}

impl SchemaLog for TopicLog {
    fn append(
        &self,
        key: Vec<u8>,
        value: Option<Vec<u8>>,
    ) -> BoxFuture<'static, Result<i64, schemas::LogError>> {
        let cluster = self.cluster.clone();
        Box::pin(async move {
            let cluster = cluster
                .upgrade()
                .filter(|c| !c.is_shutting_down())
                .ok_or_else(|| unavailable("the broker is shutting down"))?;
            let mut builder = BatchBuilder::new(Compression::None);
            builder.push(now_ms(), Some(&key), value.as_deref(), &[]);
            let batch = builder.build().map_err(|e| schemas::LogError::Other {
                source: Box::new(e),
            })?;
            // acks=-1: the shard answers once the record is fdatasynced.
            let op = PartitionOp::Produce {
                records: Some(Bytes::from(batch)),
                acks: -1,
            };
            match tokio::time::timeout(APPEND_TIMEOUT, schemas_op(&cluster, op)).await {
                Err(_) => Err(schemas::LogError::Timeout),
                Ok(Some(PartitionReply::Produced(r))) if r.error_code == error_code::NONE => {
                    Ok(r.base_offset)
                }
                Ok(Some(PartitionReply::Produced(r))) => Err(unavailable(format!(
                    "{SCHEMAS_TOPIC} append failed with kafka error {}{}",
                    r.error_code,
                    r.error_message
                        .map(|m| format!(": {m}"))
                        .unwrap_or_default()
                ))),
                Ok(_) => Err(unavailable(format!(
                    "the shard owning {SCHEMAS_TOPIC} did not answer"
                ))),
            }
        })
    }
}

/// The running registry task; [`RegistryServer::stop`] ends it.
pub struct RegistryServer {
    stop: Option<tokio::sync::watch::Sender<bool>>,
    task: Option<(tokio::runtime::Handle, tokio::task::JoinHandle<()>)>,
}

impl RegistryServer {
    /// Stops accepting, lets in-flight requests finish (bounded), joins.
    pub fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(true);
        }
        if let Some((handle, task)) = self.task.take() {
            let _ = handle.block_on(task);
        }
    }
}

/// Binds the registry address and starts the registry task: create and
/// replay `_schemas`, mark the registry loaded, serve HTTP. A load failure
/// is handed to `on_failure` (the broker then stops).
pub fn start(
    cluster: Arc<Cluster>,
    cloud: &tokio::runtime::Handle,
    on_failure: impl FnOnce(LoadError) + Send + 'static,
) -> std::io::Result<RegistryServer> {
    let listener = std::net::TcpListener::bind(&cluster.config.registry_addr)?;
    listener.set_nonblocking(true)?;
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    let task = cloud.spawn(async move {
            let listener = match tokio::net::TcpListener::from_std(listener) {
                Ok(l) => l,
                Err(e) => {
                    tracing::error!(error = %e, "cannot serve the registry address");
                    return;
                }
            };
            let schemas = &cluster.schemas;
            let loaded = tokio::select! {
                loaded = schemas.load(&cluster) => loaded,
                _ = stop_rx.changed() => return,
            };
            match loaded {
                Ok(summary) => log_summary(schemas.registry(), &summary),
                Err(e) => {
                    tracing::error!(error = %e, "cannot load the schema registry");
                    on_failure(e);
                    return;
                }
            }
            drop(on_failure);
            schemas.mark_loaded();
            let app = schemas::http::router(schemas.registry().clone());
            let mut graceful = stop_rx.clone();
            let serve = axum::serve(listener, app).with_graceful_shutdown(async move {
                let _ = graceful.changed().await;
            });
            let deadline = async move {
                let _ = stop_rx.changed().await;
                tokio::time::sleep(SHUTDOWN_GRACE).await;
            };
            tokio::select! {
                served = serve => if let Err(e) = served {
                    tracing::error!(error = %e, "registry server failed");
                },
                () = deadline => tracing::warn!("registry requests still running at shutdown were dropped"),
            }
        });
    Ok(RegistryServer {
        stop: Some(stop_tx),
        task: Some((cloud.clone(), task)),
    })
}

fn log_summary(registry: &Registry, summary: &LoadSummary) {
    let subjects = registry.subjects(false, None).len();
    if summary.skipped.is_empty() {
        tracing::info!(
            records = summary.applied,
            subjects,
            end_offset = summary.end_offset,
            "schema registry loaded from {SCHEMAS_TOPIC}"
        );
    } else {
        let shown: Vec<String> = summary
            .skipped
            .iter()
            .take(SUMMARY_OFFSETS)
            .map(i64::to_string)
            .collect();
        tracing::warn!(
            records = summary.applied,
            skipped = summary.skipped.len(),
            skipped_offsets = %shown.join(","),
            subjects,
            end_offset = summary.end_offset,
            "schema registry loaded from {SCHEMAS_TOPIC}; broken records were skipped"
        );
    }
}

#[cfg(test)]
#[path = "registry_tests.rs"]
mod tests;
