//! The Iceberg projector: every topic with `iceberg.mode` set becomes an
//! Iceberg table in the object store (`<object-store>/iceberg/<namespace>/
//! <topic>`), written by the `iceberg-sink` crate.
//!
//! It runs on the cloud plane (tokio) and reads the log the way a consumer
//! does, through the owning shard's inbox (`PartitionOp::Read`, which serves
//! both tiers), so producers never wait for it. One task per projected
//! topic:
//!
//! 1. open (or create) the table and, lazily, `<topic>~dlq`; the next offset
//!    of every partition comes from the tables' snapshot summaries (the
//!    earliest offset still held when the table has none: backfill);
//! 2. read each partition from there, decode every record into Arrow rows
//!    (records that do not decode go to the DLQ table with the reason, or
//!    are dropped with `iceberg.invalid.record.action=drop`);
//! 3. every `iceberg.target.lag.ms` write Parquet files and commit them with
//!    the next offsets in the snapshot summary: the DLQ table first, then
//!    the main table. After a crash or an unknown commit outcome the offsets
//!    read back say exactly what is in each table, so nothing is written
//!    twice and nothing is skipped;
//! 4. publish the main table's offsets as retention fences
//!    ([`crate::fences`]): neither tier deletes a record not yet projected.
//!
//! A newer value schema evolves the table in the same commit as the first
//! rows that need it. Errors (an unreachable store, a subject not yet
//! registered) are shown by `floe iceberg status` and retried.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use iceberg::spec::Schema;
use iceberg::{NamespaceIdent, TableIdent};
use iceberg_sink::catalog::{FileSystemCatalog, TableCatalog};
use iceberg_sink::convert::{ConvertError, dlq_schema, key_value_schema};
use iceberg_sink::error_chain;
use iceberg_sink::offsets::CommittedOffsets;
use iceberg_sink::partition_spec::parse_partition_spec;
use iceberg_sink::rest::{RestSettings, RestTableCatalog};
use iceberg_sink::storage::Warehouse;
use iceberg_sink::table::TableWriter;
use schemas::ParsedSchema;

use crate::config::{IcebergCatalogKind, IcebergMode, IcebergTopicConfig, TopicConfig};
use crate::error_code;
use crate::shard::{Cluster, PartitionOp, PartitionReply};
use crate::topics::TopicPartition;

mod projection;

use projection::{Pending, Projection};

/// Bytes read from a partition per read.
const READ_BYTES: usize = 4 << 20;
/// Buffered rows are written to Parquet files beyond this many bytes, so
/// memory stays bounded however long the target lag.
const WRITE_BYTES: usize = 64 << 20;
/// How often the supervisor looks for topics to start or stop.
const SUPERVISE_EVERY: Duration = Duration::from_secs(1);
/// Pause after a failed attempt before the task starts over.
const RETRY_AFTER: Duration = Duration::from_secs(2);
/// The most small-file bytes one compaction run rewrites (per table), so a
/// run holds the projection back for seconds, not minutes; the rest is
/// compacted in later runs.
const COMPACT_MAX_INPUT_BYTES: u64 = 512 << 20;

/// Why a projection step failed. Shown in `floe iceberg status` and
/// retried.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProjectError {
    #[error("table {table}: {source}")]
    Table {
        table: String,
        #[source]
        source: iceberg_sink::table::TableError,
    },
    #[error("{0}")]
    Convert(#[from] ConvertError),
    #[error("partition spec {spec:?}: {reason}")]
    PartitionSpec { spec: String, reason: String },
    #[error("schema registry: {0}")]
    Registry(String),
    #[error("catalog: {0}")]
    Catalog(String),
    #[error("reading {tp}: Kafka error code {code}")]
    Read { tp: TopicPartition, code: i16 },
    #[error("the broker is stopping")]
    Stopped,
    #[error("not writing to the object store: {0}")]
    WritesRefused(String),
    #[error("cannot start the projector's runtime: {0}")]
    Runtime(std::io::Error),
    #[error("iceberg.mode needs the object store (the shadow index), which is not configured")]
    NoObjectStore,
}

/// Where the tables live: the catalog (filesystem or REST) and the
/// namespace; table files in the tier's object store under `iceberg/` (or
/// `--iceberg-warehouse`).
#[derive(Debug, Clone)]
pub struct Warehouses {
    catalog: Arc<dyn TableCatalog>,
    namespace: NamespaceIdent,
}

/// One projected partition, for `floe iceberg status`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PartitionStatus {
    pub partition: i32,
    /// Every offset below this is in the table (or the DLQ table).
    pub projected_offset: i64,
    pub high_watermark: i64,
    pub lag_records: i64,
    /// How long the oldest record not yet committed has waited.
    pub lag_ms: i64,
}

/// One projected topic, for `floe iceberg status`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ProjectionStatus {
    pub topic: String,
    pub mode: &'static str,
    pub table: String,
    /// The catalog holding the table (`filesystem <root>`, `rest <uri>`).
    pub catalog: String,
    pub location: String,
    pub state: &'static str,
    pub last_error: Option<String>,
    pub last_commit_ms: Option<i64>,
    pub commits: u64,
    pub rows: u64,
    pub data_files: u64,
    pub dlq_rows: u64,
    /// Records skipped because they do not decode and the topic drops them.
    pub dropped_records: u64,
    pub partitions: Vec<PartitionStatus>,
}

type StatusMap = Arc<Mutex<BTreeMap<String, ProjectionStatus>>>;

/// The projector service: a supervisor task that keeps one projection task
/// per projected topic, on the projector's own runtime.
pub struct Projector {
    status: StatusMap,
    _runtime: ProjectorRuntime,
}

/// Worker threads of the projector's runtime.
const PROJECTOR_THREADS: usize = 2;
/// The nice value of the projector's threads (0 is the shards' and the
/// cloud plane's).
const PROJECTOR_NICE: i32 = 10;

/// The projector's own Tokio runtime. Decoding records and encoding Parquet
/// is CPU work with a deadline of `iceberg.target.lag.ms`, while produce
/// and fetch answer clients now: its threads run at nice 10, so when the
/// cores are busy the shards (and the cloud plane's uploads and remote
/// reads) get the CPU first and the projection takes what is left; on an
/// idle machine it runs at full speed. Shut down in the background when
/// dropped (it may be dropped from async code).
struct ProjectorRuntime(Option<tokio::runtime::Runtime>);

impl ProjectorRuntime {
    fn start() -> Result<ProjectorRuntime, ProjectError> {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(PROJECTOR_THREADS)
            .thread_name("floe-iceberg")
            .on_thread_start(lower_thread_priority)
            .enable_all()
            .build()
            .map(|rt| ProjectorRuntime(Some(rt)))
            .map_err(ProjectError::Runtime)
    }

    fn handle(&self) -> &tokio::runtime::Handle {
        self.0
            .as_ref()
            .expect("the projector runtime lives until dropped")
            .handle()
    }
}

impl Drop for ProjectorRuntime {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

/// Lowers the calling thread's scheduling priority to [`PROJECTOR_NICE`]
/// (on Linux a thread id names just that thread).
fn lower_thread_priority() {
    let tid = rustix::thread::gettid();
    if let Err(e) = rustix::process::setpriority_process(Some(tid), PROJECTOR_NICE) {
        tracing::warn!(error = %e, "cannot lower the priority of an iceberg projector thread");
    }
}

impl std::fmt::Debug for Projector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Projector").finish()
    }
}

impl Projector {
    /// Starts the supervisor on the projector's own runtime (see
    /// [`ProjectorRuntime`]). Tables go to the tier's object store under
    /// `iceberg/<namespace>/`.
    pub fn start(cluster: &Arc<Cluster>) -> Result<Arc<Projector>, ProjectError> {
        let runtime = ProjectorRuntime::start()?;
        let handle = runtime.handle().clone();
        let tier = cluster.tier.as_ref().ok_or(ProjectError::NoObjectStore)?;
        let (root, store, key_prefix) = match &cluster.config.iceberg_warehouse {
            // `--iceberg-warehouse URL`: tables at <URL>/<namespace>/<topic>.
            Some(url) => {
                let (store, url, prefix) = tier
                    .open_other_store(url)
                    .map_err(|e| ProjectError::Catalog(format!("warehouse {url}: {e}")))?;
                (url.trim_end_matches('/').to_string(), store, prefix)
            }
            // The tier's bucket: <object-store>/iceberg/<namespace>/<topic>.
            None => {
                let (store, url, prefix) = tier.object_store();
                let root = format!("{}/iceberg", url.trim_end_matches('/'));
                let key_prefix = if prefix.is_empty() {
                    "iceberg".to_string()
                } else {
                    format!("{prefix}/iceberg")
                };
                (root, store, key_prefix)
            }
        };
        let warehouse =
            Warehouse::new(store, &root, &key_prefix).map_err(|source| ProjectError::Table {
                table: root.clone(),
                source,
            })?;
        let namespace = NamespaceIdent::new(cluster.config.iceberg_namespace.clone());
        let settings = &cluster.config.iceberg_catalog;
        let catalog: Arc<dyn TableCatalog> = match settings.kind {
            IcebergCatalogKind::Filesystem => Arc::new(FileSystemCatalog::new(warehouse)),
            IcebergCatalogKind::Rest => {
                let rest = RestSettings {
                    uri: settings.uri.clone().unwrap_or_default(),
                    warehouse: settings.warehouse.clone(),
                    token: settings.token.clone(),
                    credential: settings.credential.clone(),
                    properties: settings.properties.clone().into_iter().collect(),
                };
                // Fails startup when the catalog is unreachable or refuses
                // the credentials, like the object store check.
                let catalog = handle
                    .block_on(RestTableCatalog::connect(rest, warehouse))
                    .map_err(|e| ProjectError::Catalog(e.message().to_string()))?;
                Arc::new(catalog)
            }
        };
        let warehouses = Warehouses { catalog, namespace };
        tracing::info!(catalog = %warehouses.catalog.describe(), warehouse = %root, namespace = %cluster.config.iceberg_namespace, "iceberg projector ready");
        let projector = Arc::new(Projector {
            status: Arc::default(),
            _runtime: runtime,
        });
        let status = projector.status.clone();
        let weak = Arc::downgrade(cluster);
        handle.spawn(supervise(weak, warehouses, status));
        Ok(projector)
    }

    /// Status of every projected topic, or of `topic`.
    pub fn status(&self, topic: Option<&str>) -> Vec<ProjectionStatus> {
        let status = self.status.lock().unwrap_or_else(|e| e.into_inner());
        status
            .values()
            .filter(|s| topic.is_none_or(|t| t == s.topic))
            .cloned()
            .collect()
    }
}

/// What a running task was started with; a change restarts it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct TaskKey {
    config: IcebergTopicConfig,
    partitions: i32,
    topic_id: String,
}

async fn supervise(cluster: Weak<Cluster>, warehouses: Warehouses, status: StatusMap) {
    let mut tasks: HashMap<String, (TaskKey, tokio::task::JoinHandle<()>)> = HashMap::new();
    loop {
        tokio::time::sleep(SUPERVISE_EVERY).await;
        let Some(c) = cluster.upgrade() else { break };
        if c.is_shutting_down() {
            break;
        }
        let mut wanted: HashMap<String, TaskKey> = HashMap::new();
        for meta in c.topics.list() {
            if meta.internal {
                continue;
            }
            let config = TopicConfig::effective(&meta.configs, &c.config).iceberg;
            if config.mode == IcebergMode::Disabled {
                continue;
            }
            wanted.insert(
                meta.name.clone(),
                TaskKey {
                    config,
                    partitions: meta.partitions,
                    topic_id: meta.id.clone(),
                },
            );
        }
        tasks.retain(|topic, (key, handle)| {
            let keep = wanted.get(topic) == Some(key) && !handle.is_finished();
            if !keep {
                handle.abort();
                c.fences.remove_topic(topic);
                if !wanted.contains_key(topic) {
                    let mut s = status.lock().unwrap_or_else(|e| e.into_inner());
                    s.remove(topic);
                    tracing::info!(topic, "iceberg projection stopped");
                }
            }
            keep
        });
        for (topic, key) in wanted {
            if tasks.contains_key(&topic) {
                continue;
            }
            tracing::info!(
                topic,
                mode = key.config.mode.as_str(),
                "iceberg projection starting"
            );
            let handle = tokio::spawn(run_topic(
                cluster.clone(),
                warehouses.clone(),
                topic.clone(),
                key.clone(),
                status.clone(),
            ));
            tasks.insert(topic, (key, handle));
        }
    }
    for (_, (_, handle)) in tasks {
        handle.abort();
    }
}

/// Runs one topic's projection until aborted, starting over after errors.
async fn run_topic(
    cluster: Weak<Cluster>,
    warehouses: Warehouses,
    topic: String,
    key: TaskKey,
    status: StatusMap,
) {
    loop {
        let error = match Projection::open(&cluster, &warehouses, &topic, &key, &status).await {
            Ok(mut projection) => projection.run().await,
            Err(e) => e,
        };
        if matches!(error, ProjectError::Stopped) {
            return;
        }
        let message = error_chain(&error);
        tracing::warn!(topic, error = %message, "iceberg projection failed; retrying");
        if let Some(c) = cluster.upgrade() {
            let labels = crate::metrics::TopicLabels {
                topic: topic.clone(),
            };
            c.metrics.iceberg_commit_errors.get_or_create(&labels).inc();
        }
        {
            let mut s = status.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(entry) = s.get_mut(&topic) {
                entry.state = "error";
                entry.last_error = Some(message);
            }
        }
        tokio::time::sleep(RETRY_AFTER).await;
    }
}

/// `offsets` unless they belong to another incarnation of the topic (then
/// none: the new topic is projected from its start).
fn fresh_incarnation(
    offsets: CommittedOffsets,
    topic_id: &str,
    table: &TableIdent,
) -> CommittedOffsets {
    match offsets.topic_id() {
        Some(id) if id != topic_id => {
            tracing::warn!(%table, old_topic_id = id, topic_id, "the topic was deleted and created again: projecting the new topic from its start into the same table");
            CommittedOffsets::default()
        }
        _ => offsets,
    }
}

/// Opens `<topic>~dlq`; creates it only when `create`.
async fn open_dlq(
    warehouses: &Warehouses,
    topic: &str,
    create: bool,
) -> Result<Option<Pending>, ProjectError> {
    let ident = TableIdent::new(warehouses.namespace.clone(), format!("{topic}~dlq"));
    let exists = iceberg::Catalog::table_exists(warehouses.catalog.as_ref(), &ident)
        .await
        .map_err(|e| ProjectError::Catalog(format!("table {ident}: {e}")))?;
    if !exists && !create {
        return Ok(None);
    }
    let schema = dlq_schema();
    let spec = parse_partition_spec(
        iceberg_sink::partition_spec::DEFAULT_PARTITION_SPEC,
        &schema,
    )
    .map_err(|e| ProjectError::PartitionSpec {
        spec: iceberg_sink::partition_spec::DEFAULT_PARTITION_SPEC.into(),
        reason: e.to_string(),
    })?;
    let writer =
        TableWriter::open_or_create(warehouses.catalog.clone(), ident.clone(), schema, spec)
            .await
            .map_err(|source| ProjectError::Table {
                table: ident.to_string(),
                source,
            })?;
    Ok(Some(Pending::new(writer)?))
}

/// The latest live version of `<topic>-value`: its id and parsed schema.
fn latest_value_schema(
    cluster: &Cluster,
    topic: &str,
) -> Result<(u32, Arc<ParsedSchema>), ProjectError> {
    let registry = cluster.schemas.registry();
    let subject = format!("{topic}-value");
    let version = registry
        .version(&subject, schemas::VersionSpec::Latest, false)
        .map_err(|e| ProjectError::Registry(format!("subject {subject}: {e}")))?;
    let parsed = registry
        .compiled(version.id)
        .map_err(|e| ProjectError::Registry(format!("schema id {}: {e}", version.id)))?;
    Ok((version.id, parsed))
}

/// The table of `value_schema_id_prefix` before any value schema is known:
/// the `kafka` column only.
fn kafka_only_schema() -> Result<Schema, ProjectError> {
    let kv = key_value_schema();
    let fields: Vec<_> = kv
        .as_struct()
        .fields()
        .iter()
        .filter(|f| f.name == iceberg_sink::convert::KAFKA_COLUMN)
        .cloned()
        .collect();
    Schema::builder()
        .with_fields(fields)
        .build()
        .map_err(|e| ProjectError::Registry(format!("kafka column schema: {e}")))
}

/// `(log start, high watermark)` of a partition.
async fn log_bounds(cluster: &Cluster, tp: &TopicPartition) -> Result<(i64, i64), ProjectError> {
    let op = PartitionOp::Read {
        offset: i64::MAX,
        max_bytes: 0,
    };
    match cluster.send_partition_op(tp.clone(), op).await {
        // Past the end: out of range, with the bounds filled in.
        Some(PartitionReply::Read(read))
            if read.error_code == error_code::NONE
                || read.error_code == error_code::OFFSET_OUT_OF_RANGE =>
        {
            Ok((read.log_start_offset, read.high_watermark))
        }
        // Not open yet (startup) or gone: the task retries.
        Some(PartitionReply::Read(read)) => Err(ProjectError::Read {
            tp: tp.clone(),
            code: read.error_code,
        }),
        _ => Err(ProjectError::Stopped),
    }
}
