//! Broker settings and per-topic configs.
//!
//! Precedence for broker settings: command-line flags > `FLOE_*` environment
//! variables (both handled by clap in `main.rs`) > `floe.toml` > defaults.
//! Topic configs use Kafka's names; Redpanda's names are accepted as aliases.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Why a configuration could not be loaded or applied.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    #[error("cannot read config file {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid config file {path}")]
    Parse {
        path: PathBuf,
        #[source]
        source: toml::de::Error,
    },
    #[error("unknown topic config {name}")]
    UnknownTopicConfig { name: String },
    #[error("invalid value {value:?} for topic config {name}: {reason}")]
    InvalidTopicConfig {
        name: String,
        value: String,
        reason: String,
    },
    #[error("invalid address {value:?} for {name}")]
    InvalidAddress { name: &'static str, value: String },
}

/// The `floe.toml` file: every field optional, merged under the flags.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct FileConfig {
    pub data_dir: Option<PathBuf>,
    pub kafka_addr: Option<String>,
    pub advertised_addr: Option<String>,
    pub admin_addr: Option<String>,
    pub registry_addr: Option<String>,
    pub cores: Option<usize>,
    pub socket_request_max_bytes: Option<usize>,
    pub auto_create_topics_enable: Option<bool>,
    pub num_partitions: Option<i32>,
    pub group_initial_rebalance_delay_ms: Option<i64>,
    pub min_free_bytes: Option<u64>,
    /// Broker-wide defaults for topic configs, by Kafka name.
    #[serde(default)]
    pub topic_defaults: BTreeMap<String, toml::Value>,
    /// Object store URL: `file:///path` or `s3://bucket[/prefix]`.
    pub object_store: Option<String>,
    /// Tiered storage settings (`[tier]`).
    #[serde(default)]
    pub tier: TierFileConfig,
    /// S3 settings that win over the `AWS_*` environment (`[s3]`).
    #[serde(default)]
    pub s3: S3FileConfig,
    /// Iceberg namespace of projected topics' tables (default `floe`).
    pub iceberg_namespace: Option<String>,
    /// Iceberg warehouse URL (default `<object-store>/iceberg`).
    pub iceberg_warehouse: Option<String>,
    /// Iceberg catalog: `filesystem` (default) or `rest`.
    pub iceberg_catalog: Option<IcebergCatalogKind>,
    /// The REST catalog's URI (`rest` only).
    pub iceberg_catalog_uri: Option<String>,
    /// The REST catalog's `warehouse` property.
    pub iceberg_catalog_warehouse: Option<String>,
    /// A bearer token for the REST catalog.
    pub iceberg_catalog_token: Option<String>,
    /// OAuth2 client credentials for the REST catalog, `id:secret`.
    pub iceberg_catalog_credential: Option<String>,
    /// Other REST catalog properties (`scope`, `oauth2-server-uri`,
    /// `header.<name>`, ...).
    #[serde(default)]
    pub iceberg_catalog_properties: BTreeMap<String, String>,
}

/// Which Iceberg catalog the projector uses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IcebergCatalogKind {
    /// Metadata files in the object store, next to the data.
    #[default]
    Filesystem,
    /// An external Iceberg REST catalog.
    Rest,
}

impl std::str::FromStr for IcebergCatalogKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "filesystem" => Ok(IcebergCatalogKind::Filesystem),
            "rest" => Ok(IcebergCatalogKind::Rest),
            other => Err(format!(
                "unknown Iceberg catalog {other:?}: use filesystem or rest"
            )),
        }
    }
}

/// The Iceberg catalog as the broker runs it. `Debug` hides the token and
/// the credential.
#[derive(Clone, Default)]
pub struct IcebergCatalogSettings {
    pub kind: IcebergCatalogKind,
    /// `rest`: the catalog's base URI (required).
    pub uri: Option<String>,
    /// `rest`: the `warehouse` property sent to the catalog.
    pub warehouse: Option<String>,
    pub token: Option<String>,
    pub credential: Option<String>,
    pub properties: BTreeMap<String, String>,
}

impl std::fmt::Debug for IcebergCatalogSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IcebergCatalogSettings")
            .field("kind", &self.kind)
            .field("uri", &self.uri)
            .field("warehouse", &self.warehouse)
            .field("token", &self.token.as_ref().map(|_| "<hidden>"))
            .field("credential", &self.credential.as_ref().map(|_| "<hidden>"))
            .field("properties", &self.properties.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// `[tier]` in `floe.toml`.
#[derive(Debug, Default, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct TierFileConfig {
    pub cache_dir: Option<PathBuf>,
    pub cache_bytes: Option<u64>,
    pub chunk_bytes: Option<u64>,
    pub idle_roll_ms: Option<i64>,
    pub upload_interval_ms: Option<u64>,
    pub upload_concurrency: Option<usize>,
    pub orphan_min_age_ms: Option<i64>,
    pub cache_direct_io: Option<bool>,
    pub writer_lease_ms: Option<u64>,
}

/// `[s3]` in `floe.toml`.
#[derive(Debug, Default, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct S3FileConfig {
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    pub allow_http: Option<bool>,
    pub virtual_hosted_style: Option<bool>,
}

/// Tiered storage (the shadow index) as the broker runs it.
#[derive(Debug, Clone)]
pub struct TierSettings {
    /// Object store URL; by default `file://<data-dir>/bucket`.
    pub object_store: String,
    pub s3: S3FileConfig,
    /// The remote-read chunk cache: directory and size in bytes.
    pub cache_dir: PathBuf,
    pub cache_bytes: u64,
    /// Bytes per ranged GET (and cache entry).
    pub chunk_bytes: u64,
    /// An active segment idle this long is rolled so it can be uploaded.
    pub idle_roll_ms: i64,
    /// How often each shard looks for segments to upload.
    pub upload_interval_ms: u64,
    /// Segment uploads in flight at once.
    pub upload_concurrency: usize,
    /// Unlisted objects older than this are deleted as orphans of crashed
    /// uploads (younger ones may belong to an upload in flight).
    pub orphan_min_age_ms: i64,
    /// Chunk cache files written and read with `O_DIRECT` (default), or
    /// through the page cache (`false`): re-reads of recently cached chunks
    /// then come from memory, at the cost of a copy of every cold byte
    /// into the page cache and of the log's pages being pushed out.
    pub cache_direct_io: bool,
    /// The writer lease on the object store's prefix
    /// ([`shadow_index::lease`]): a second broker on the same prefix is
    /// refused while this broker renews it. 0 turns it off.
    pub writer_lease_ms: u64,
    /// The data disk's `min-free-bytes` (None: its default). The cache
    /// writes chunk files only while twice that stays free, so remote reads
    /// never take the space produce needs.
    pub min_free_bytes: Option<u64>,
}

impl TierSettings {
    pub const DEFAULT_CACHE_BYTES: u64 = 1 << 30;
    pub const DEFAULT_CHUNK_BYTES: u64 = 16 << 20;
    pub const DEFAULT_IDLE_ROLL_MS: i64 = 10 * 60 * 1000;
    pub const DEFAULT_UPLOAD_INTERVAL_MS: u64 = 1000;

    /// The defaults for a broker whose data lives in `data_dir`.
    pub fn defaults(data_dir: &Path) -> TierSettings {
        TierSettings {
            object_store: default_object_store(data_dir),
            s3: S3FileConfig::default(),
            cache_dir: data_dir.join("cache"),
            cache_bytes: Self::DEFAULT_CACHE_BYTES,
            chunk_bytes: Self::DEFAULT_CHUNK_BYTES,
            idle_roll_ms: Self::DEFAULT_IDLE_ROLL_MS,
            upload_interval_ms: Self::DEFAULT_UPLOAD_INTERVAL_MS,
            upload_concurrency: 4,
            orphan_min_age_ms: 60 * 60 * 1000,
            cache_direct_io: true,
            writer_lease_ms: 30_000,
            min_free_bytes: None,
        }
    }
}

/// `file://<data-dir>/bucket`, with the data dir made absolute.
pub fn default_object_store(data_dir: &Path) -> String {
    let dir = std::path::absolute(data_dir).unwrap_or_else(|_| data_dir.to_path_buf());
    format!("file://{}", dir.join("bucket").display())
}

impl FileConfig {
    pub fn load(path: &Path) -> Result<FileConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        toml::from_str(&text).map_err(|source| ConfigError::Parse {
            path: path.to_path_buf(),
            source,
        })
    }
}

/// The broker's effective settings.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    pub data_dir: PathBuf,
    pub kafka_addr: String,
    /// `host:port` that clients are told to connect to.
    pub advertised_addr: String,
    pub admin_addr: String,
    /// Schema registry HTTP listener.
    pub registry_addr: String,
    pub cores: usize,
    pub node_id: i32,
    pub cluster_id: String,
    pub socket_request_max_bytes: usize,
    pub auto_create_topics_enable: bool,
    pub num_partitions: i32,
    pub group_initial_rebalance_delay_ms: i64,
    /// Produce is refused below this much free space on the data disk;
    /// `None`: 5% of the filesystem, at most 1 GiB.
    pub min_free_bytes: Option<u64>,
    /// Broker-level overrides of topic config defaults (source
    /// STATIC_BROKER_CONFIG in DescribeConfigs).
    pub topic_defaults: BTreeMap<String, String>,
    /// Tiered storage.
    pub tier: TierSettings,
    /// Iceberg namespace of the projected topics' tables.
    pub iceberg_namespace: String,
    /// Where the tables live when not `<object-store>/iceberg`.
    pub iceberg_warehouse: Option<String>,
    /// The catalog that holds the tables' metadata.
    pub iceberg_catalog: IcebergCatalogSettings,
}

impl BrokerConfig {
    pub const DEFAULT_KAFKA_ADDR: &'static str = "0.0.0.0:9092";
    pub const DEFAULT_ADMIN_ADDR: &'static str = "0.0.0.0:9644";
    pub const DEFAULT_REGISTRY_ADDR: &'static str = "0.0.0.0:8081";
    pub const DEFAULT_DATA_DIR: &'static str = "./floe-data";

    /// The broker-level default of a topic config, if set in `floe.toml`.
    pub fn broker_default(&self, name: &str) -> Option<&str> {
        self.topic_defaults.get(name).map(String::as_str)
    }
}

/// Where a topic config's effective value comes from (DescribeConfigs
/// `config_source`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigSource {
    Topic = 1,
    StaticBroker = 4,
    Default = 5,
}

/// Kafka's config value types (DescribeConfigs v3+ `config_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigType {
    Boolean = 1,
    String = 2,
    Int = 3,
    Long = 5,
}

/// One supported topic config.
#[derive(Debug)]
pub struct TopicConfigDef {
    pub name: &'static str,
    pub default: &'static str,
    pub kind: ConfigType,
    pub doc: &'static str,
    validate: fn(&str) -> Result<(), String>,
}

fn long_at_least(min: i64) -> impl Fn(&str) -> Result<(), String> {
    move |v: &str| match v.trim().parse::<i64>() {
        Ok(n) if n >= min => Ok(()),
        Ok(_) => Err(format!("must be at least {min}")),
        Err(_) => Err("must be an integer".into()),
    }
}

fn validate_retention(v: &str) -> Result<(), String> {
    long_at_least(-1)(v)
}
fn validate_segment_bytes(v: &str) -> Result<(), String> {
    match v.trim().parse::<i64>() {
        Ok(n) if (1024..=i32::MAX as i64).contains(&n) => Ok(()),
        Ok(_) => Err("must be between 1024 and 2147483647".into()),
        Err(_) => Err("must be an integer".into()),
    }
}
fn validate_positive(v: &str) -> Result<(), String> {
    long_at_least(1)(v)
}
fn validate_min_isr(v: &str) -> Result<(), String> {
    match v.trim().parse::<i32>() {
        Ok(1) => Ok(()),
        Ok(_) => Err("a single Floe broker holds one replica: must be 1".into()),
        Err(_) => Err("must be an integer".into()),
    }
}
fn validate_cleanup_policy(v: &str) -> Result<(), String> {
    match v.trim() {
        "delete" => Ok(()),
        "compact" | "compact,delete" | "delete,compact" => {
            Err("log compaction is not implemented yet; use delete".into())
        }
        _ => Err("must be delete".into()),
    }
}
fn validate_timestamp_type(v: &str) -> Result<(), String> {
    match v.trim() {
        "CreateTime" | "LogAppendTime" => Ok(()),
        _ => Err("must be CreateTime or LogAppendTime".into()),
    }
}
fn validate_bool(v: &str) -> Result<(), String> {
    match v.trim() {
        "true" | "false" => Ok(()),
        _ => Err("must be true or false".into()),
    }
}
fn validate_local_retention(v: &str) -> Result<(), String> {
    long_at_least(-2)(v)
}
fn validate_schema_validation_mode(v: &str) -> Result<(), String> {
    match v.trim() {
        "id" | "full" => Ok(()),
        _ => Err("must be id (the schema id must be registered) or full (the payload must decode with that schema)".into()),
    }
}
fn validate_iceberg_mode(v: &str) -> Result<(), String> {
    match v.trim() {
        "disabled" => Ok(()),
        "key_value" | "value_schema_id_prefix" | "value_schema_latest"
            if !cfg!(feature = "iceberg") =>
        {
            Err("this floe was built without the iceberg feature".into())
        }
        "key_value" | "value_schema_id_prefix" | "value_schema_latest" => Ok(()),
        _ => {
            Err("must be disabled, key_value, value_schema_id_prefix or value_schema_latest".into())
        }
    }
}
fn validate_invalid_record_action(v: &str) -> Result<(), String> {
    match v.trim() {
        "dlq_table" | "drop" => Ok(()),
        _ => Err("must be dlq_table or drop".into()),
    }
}
/// The partition spec grammar is checked against the table's columns when
/// the table is created; here only its shape: a non-empty list of fields.
fn validate_partition_spec(v: &str) -> Result<(), String> {
    let inner = v.trim();
    let inner = inner
        .strip_prefix('(')
        .and_then(|s| s.strip_suffix(')'))
        .unwrap_or(inner);
    if inner.trim().is_empty() {
        return Err("must name at least one field, e.g. (hour(kafka.timestamp))".into());
    }
    let opens = inner.matches('(').count();
    if opens != inner.matches(')').count() {
        return Err("unbalanced parentheses".into());
    }
    Ok(())
}
fn validate_max_message_bytes(v: &str) -> Result<(), String> {
    match v.trim().parse::<i64>() {
        Ok(n) if (0..=i32::MAX as i64).contains(&n) => Ok(()),
        _ => Err("must be an integer between 0 and 2147483647".into()),
    }
}

/// Every topic config Floe implements, with Kafka's defaults.
pub static TOPIC_CONFIGS: &[TopicConfigDef] = &[
    TopicConfigDef {
        name: "cleanup.policy",
        default: "delete",
        kind: ConfigType::String,
        doc: "delete old segments by retention.ms / retention.bytes",
        validate: validate_cleanup_policy,
    },
    TopicConfigDef {
        name: "retention.ms",
        default: "604800000",
        kind: ConfigType::Long,
        doc: "how long to keep a segment after its newest record; -1 = forever",
        validate: validate_retention,
    },
    TopicConfigDef {
        name: "retention.bytes",
        default: "-1",
        kind: ConfigType::Long,
        doc: "size a partition may grow to before old segments are deleted; -1 = unlimited",
        validate: validate_retention,
    },
    TopicConfigDef {
        name: "segment.bytes",
        default: "1073741824",
        kind: ConfigType::Int,
        doc: "size at which the active segment rolls",
        validate: validate_segment_bytes,
    },
    TopicConfigDef {
        name: "segment.ms",
        default: "604800000",
        kind: ConfigType::Long,
        doc: "age at which the active segment rolls",
        validate: validate_positive,
    },
    TopicConfigDef {
        name: "max.message.bytes",
        default: "1048588",
        kind: ConfigType::Int,
        doc: "largest record batch accepted by produce",
        validate: validate_max_message_bytes,
    },
    TopicConfigDef {
        name: "message.timestamp.type",
        default: "CreateTime",
        kind: ConfigType::String,
        doc: "CreateTime keeps the producer's timestamps; LogAppendTime stamps the broker's",
        validate: validate_timestamp_type,
    },
    TopicConfigDef {
        name: "min.insync.replicas",
        default: "1",
        kind: ConfigType::Int,
        doc: "replicas that must acknowledge acks=all; one broker holds one replica",
        validate: validate_min_isr,
    },
    TopicConfigDef {
        name: "remote.storage.enable",
        default: "false",
        kind: ConfigType::Boolean,
        doc: "upload sealed segments to the object store and serve older offsets from there",
        validate: validate_bool,
    },
    TopicConfigDef {
        name: "local.retention.ms",
        default: "-2",
        kind: ConfigType::Long,
        doc: "with remote storage, how long segments stay on local disk; -2 = retention.ms",
        validate: validate_local_retention,
    },
    TopicConfigDef {
        name: "local.retention.bytes",
        default: "-2",
        kind: ConfigType::Long,
        doc: "with remote storage, local size target of a partition; -2 = retention.bytes",
        validate: validate_local_retention,
    },
    TopicConfigDef {
        name: "remote.delete",
        default: "true",
        kind: ConfigType::Boolean,
        doc: "deleting the topic deletes its data in the object store",
        validate: validate_bool,
    },
    TopicConfigDef {
        name: "value.schema.id.validation",
        default: "false",
        kind: ConfigType::Boolean,
        doc: "reject records whose value does not start with a registered schema id",
        validate: validate_bool,
    },
    TopicConfigDef {
        name: "key.schema.id.validation",
        default: "false",
        kind: ConfigType::Boolean,
        doc: "reject records whose key does not start with a registered schema id",
        validate: validate_bool,
    },
    TopicConfigDef {
        name: "schema.validation.mode",
        default: "id",
        kind: ConfigType::String,
        doc: "with schema id validation: id (the id is registered) or full (the payload decodes with it)",
        validate: validate_schema_validation_mode,
    },
    TopicConfigDef {
        name: "iceberg.mode",
        default: "disabled",
        kind: ConfigType::String,
        doc: "project the topic into an Iceberg table: disabled, key_value, value_schema_id_prefix or value_schema_latest",
        validate: validate_iceberg_mode,
    },
    TopicConfigDef {
        name: "iceberg.target.lag.ms",
        default: "60000",
        kind: ConfigType::Long,
        doc: "how long a record may wait before the projector commits it to the table",
        validate: validate_positive,
    },
    TopicConfigDef {
        name: "iceberg.partition.spec",
        default: "(hour(kafka.timestamp))",
        kind: ConfigType::String,
        doc: "partitioning of a new table: identity, year/month/day/hour, bucket(N, col), truncate(W, col)",
        validate: validate_partition_spec,
    },
    TopicConfigDef {
        name: "iceberg.snapshot.max.age.ms",
        default: "86400000",
        kind: ConfigType::Long,
        doc: "snapshots of the topic's table older than this are expired (files only they reference deleted); -1 = never",
        validate: validate_retention,
    },
    TopicConfigDef {
        name: "iceberg.snapshot.expire.interval.ms",
        default: "600000",
        kind: ConfigType::Long,
        doc: "how often the projector expires old snapshots of the topic's tables",
        validate: validate_positive,
    },
    TopicConfigDef {
        name: "iceberg.snapshot.min.keep",
        default: "10",
        kind: ConfigType::Int,
        doc: "the newest snapshots always kept, whatever their age",
        validate: validate_positive,
    },
    TopicConfigDef {
        name: "iceberg.target.file.size.bytes",
        default: "134217728",
        kind: ConfigType::Long,
        doc: "data files of the topic's table roll over at about this size; compaction rewrites smaller ones into files of it",
        validate: validate_positive,
    },
    TopicConfigDef {
        name: "iceberg.compaction.enable",
        default: "true",
        kind: ConfigType::Boolean,
        doc: "compact small data files of the topic's tables in the background (a replace snapshot: same rows, same committed offsets)",
        validate: validate_bool,
    },
    TopicConfigDef {
        name: "iceberg.compaction.interval.ms",
        default: "600000",
        kind: ConfigType::Long,
        doc: "how often the projector looks for small files to compact",
        validate: validate_positive,
    },
    TopicConfigDef {
        name: "iceberg.compaction.min.input.files",
        default: "5",
        kind: ConfigType::Int,
        doc: "a partition is compacted once it has this many files below 75% of iceberg.target.file.size.bytes",
        validate: validate_positive,
    },
    TopicConfigDef {
        name: "iceberg.invalid.record.action",
        default: "dlq_table",
        kind: ConfigType::String,
        doc: "records that do not decode: dlq_table (write them to <topic>~dlq) or drop",
        validate: validate_invalid_record_action,
    },
];

/// Redpanda's names for Kafka's topic configs.
const ALIASES: &[(&str, &str)] = &[
    ("retention.local.target.ms", "local.retention.ms"),
    ("retention.local.target.bytes", "local.retention.bytes"),
    ("redpanda.remote.write", "remote.storage.enable"),
    ("redpanda.remote.read", "remote.storage.enable"),
    ("redpanda.remote.delete", "remote.delete"),
    (
        "redpanda.value.schema.id.validation",
        "value.schema.id.validation",
    ),
    (
        "redpanda.key.schema.id.validation",
        "key.schema.id.validation",
    ),
    ("redpanda.iceberg.mode", "iceberg.mode"),
    ("redpanda.iceberg.target.lag.ms", "iceberg.target.lag.ms"),
    ("redpanda.iceberg.partition.spec", "iceberg.partition.spec"),
    (
        "redpanda.iceberg.invalid.record.action",
        "iceberg.invalid.record.action",
    ),
];

/// Looks up a topic config by Kafka name or alias.
pub fn topic_config_def(name: &str) -> Option<&'static TopicConfigDef> {
    let name = ALIASES
        .iter()
        .find(|(alias, _)| *alias == name)
        .map(|(_, kafka)| *kafka)
        .unwrap_or(name);
    TOPIC_CONFIGS.iter().find(|d| d.name == name)
}

/// Validates one `name=value` pair and returns it under its Kafka name.
pub fn validate_topic_config(name: &str, value: &str) -> Result<(String, String), ConfigError> {
    let def = topic_config_def(name).ok_or_else(|| ConfigError::UnknownTopicConfig {
        name: name.to_string(),
    })?;
    (def.validate)(value).map_err(|reason| ConfigError::InvalidTopicConfig {
        name: name.to_string(),
        value: value.to_string(),
        reason,
    })?;
    Ok((def.name.to_string(), value.trim().to_string()))
}

/// The effective configs of one topic: explicit values over broker defaults
/// over Kafka defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicConfig {
    pub retention_ms: i64,
    pub retention_bytes: i64,
    pub segment_bytes: u64,
    pub segment_ms: i64,
    pub max_message_bytes: usize,
    pub log_append_time: bool,
    /// Sealed segments go to the object store; older offsets are read back.
    pub remote_storage: bool,
    /// Local-disk targets with remote storage (`-2` resolved to the totals).
    pub local_retention_ms: i64,
    pub local_retention_bytes: i64,
    /// Deleting the topic deletes its objects.
    pub remote_delete: bool,
    pub value_schema_id_validation: bool,
    pub key_schema_id_validation: bool,
    /// With schema id validation: decode each payload with its schema.
    pub schema_validation_full: bool,
    /// The Iceberg projection of the topic.
    pub iceberg: IcebergTopicConfig,
}

/// How a topic is projected into an Iceberg table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IcebergMode {
    Disabled,
    KeyValue,
    ValueSchemaIdPrefix,
    ValueSchemaLatest,
}

impl IcebergMode {
    pub fn parse(v: &str) -> IcebergMode {
        match v.trim() {
            "key_value" => IcebergMode::KeyValue,
            "value_schema_id_prefix" => IcebergMode::ValueSchemaIdPrefix,
            "value_schema_latest" => IcebergMode::ValueSchemaLatest,
            _ => IcebergMode::Disabled,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            IcebergMode::Disabled => "disabled",
            IcebergMode::KeyValue => "key_value",
            IcebergMode::ValueSchemaIdPrefix => "value_schema_id_prefix",
            IcebergMode::ValueSchemaLatest => "value_schema_latest",
        }
    }
}

/// The `iceberg.*` topic configs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IcebergTopicConfig {
    pub mode: IcebergMode,
    pub target_lag_ms: i64,
    pub partition_spec: String,
    /// Undecodable records are dropped instead of written to `<topic>~dlq`.
    pub drop_invalid: bool,
    /// Snapshot expiry: age (`None`: never) and how many always stay.
    pub snapshot_max_age_ms: Option<i64>,
    pub snapshot_min_keep: usize,
    pub snapshot_expire_interval_ms: i64,
    /// Data files roll over at about this size; compaction's target.
    pub target_file_size: u64,
    /// Background compaction: how often (`None`: off) and from how many
    /// small files in a partition.
    pub compaction_interval_ms: Option<i64>,
    pub compaction_min_input_files: usize,
}

impl TopicConfig {
    /// Resolves the effective value of `name` and its source.
    pub fn resolve<'a>(
        name: &str,
        explicit: &'a BTreeMap<String, String>,
        broker: &'a BrokerConfig,
    ) -> Option<(String, ConfigSource)> {
        let def = topic_config_def(name)?;
        if let Some(v) = explicit.get(def.name) {
            return Some((v.clone(), ConfigSource::Topic));
        }
        if let Some(v) = broker.broker_default(def.name) {
            return Some((v.to_string(), ConfigSource::StaticBroker));
        }
        Some((def.default.to_string(), ConfigSource::Default))
    }

    /// The typed view of a topic's configs.
    pub fn effective(explicit: &BTreeMap<String, String>, broker: &BrokerConfig) -> TopicConfig {
        let get = |name: &str| -> String {
            Self::resolve(name, explicit, broker)
                .map(|(v, _)| v)
                .unwrap_or_default()
        };
        let long = |name: &str, fallback: i64| get(name).trim().parse().unwrap_or(fallback);
        TopicConfig {
            retention_ms: long("retention.ms", 604_800_000),
            retention_bytes: long("retention.bytes", -1),
            segment_bytes: long("segment.bytes", 1 << 30).max(1024) as u64,
            segment_ms: long("segment.ms", 604_800_000),
            max_message_bytes: long("max.message.bytes", 1_048_588).max(0) as usize,
            log_append_time: get("message.timestamp.type") == "LogAppendTime",
            remote_storage: get("remote.storage.enable") == "true",
            local_retention_ms: match long("local.retention.ms", -2) {
                -2 => long("retention.ms", 604_800_000),
                v => v,
            },
            local_retention_bytes: match long("local.retention.bytes", -2) {
                -2 => long("retention.bytes", -1),
                v => v,
            },
            remote_delete: get("remote.delete") != "false",
            value_schema_id_validation: get("value.schema.id.validation") == "true",
            key_schema_id_validation: get("key.schema.id.validation") == "true",
            schema_validation_full: get("schema.validation.mode") == "full",
            iceberg: IcebergTopicConfig {
                mode: IcebergMode::parse(&get("iceberg.mode")),
                target_lag_ms: long("iceberg.target.lag.ms", 60_000).max(1),
                partition_spec: get("iceberg.partition.spec"),
                drop_invalid: get("iceberg.invalid.record.action") == "drop",
                snapshot_max_age_ms: Some(long("iceberg.snapshot.max.age.ms", 86_400_000))
                    .filter(|ms| *ms >= 0),
                snapshot_min_keep: long("iceberg.snapshot.min.keep", 10).max(1) as usize,
                snapshot_expire_interval_ms: long("iceberg.snapshot.expire.interval.ms", 600_000)
                    .max(1),
                target_file_size: long("iceberg.target.file.size.bytes", 128 << 20).max(1) as u64,
                compaction_interval_ms: Some(long("iceberg.compaction.interval.ms", 600_000))
                    .filter(|_| get("iceberg.compaction.enable") != "false")
                    .map(|ms| ms.max(1)),
                compaction_min_input_files: long("iceberg.compaction.min.input.files", 5).max(2)
                    as usize,
            },
        }
    }
}

/// Validates broker defaults from `floe.toml` into strings.
pub fn topic_defaults_from_toml(
    table: &BTreeMap<String, toml::Value>,
) -> Result<BTreeMap<String, String>, ConfigError> {
    let mut out = BTreeMap::new();
    for (name, value) in table {
        let text = match value {
            toml::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let (name, value) = validate_topic_config(name, &text)?;
        out.insert(name, value);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn broker() -> BrokerConfig {
        BrokerConfig {
            data_dir: PathBuf::from("/tmp/x"),
            kafka_addr: "127.0.0.1:9092".into(),
            advertised_addr: "127.0.0.1:9092".into(),
            admin_addr: "127.0.0.1:9644".into(),
            registry_addr: "127.0.0.1:8081".into(),
            cores: 1,
            node_id: 1,
            cluster_id: "c".into(),
            socket_request_max_bytes: 100 << 20,
            auto_create_topics_enable: true,
            num_partitions: 1,
            group_initial_rebalance_delay_ms: 0,
            min_free_bytes: None,
            topic_defaults: BTreeMap::from([("retention.ms".to_string(), "1000".to_string())]),
            tier: TierSettings::defaults(Path::new("/tmp/x")),
            iceberg_namespace: "floe".into(),
            iceberg_warehouse: None,
            iceberg_catalog: IcebergCatalogSettings::default(),
        }
    }

    #[test]
    fn iceberg_catalog_keys_parse() {
        let file: FileConfig = toml::from_str(
            r#"
iceberg-catalog = "rest"
iceberg-catalog-uri = "https://catalog.example.com/api"
iceberg-catalog-warehouse = "analytics"
iceberg-catalog-credential = "floe:s3cret"
iceberg-catalog-properties = { scope = "PRINCIPAL_ROLE:ALL", "header.X-Tenant" = "a" }
"#,
        )
        .unwrap();
        assert_eq!(file.iceberg_catalog, Some(IcebergCatalogKind::Rest));
        assert_eq!(file.iceberg_catalog_warehouse.as_deref(), Some("analytics"));
        assert_eq!(file.iceberg_catalog_properties["header.X-Tenant"], "a");
        assert!(toml::from_str::<FileConfig>(r#"iceberg-catalog = "hive""#).is_err());
        assert_eq!("REST".parse(), Ok(IcebergCatalogKind::Rest));
        assert!("glue".parse::<IcebergCatalogKind>().is_err());

        let settings = IcebergCatalogSettings {
            kind: IcebergCatalogKind::Rest,
            credential: file.iceberg_catalog_credential,
            token: Some("t0ken".into()),
            ..Default::default()
        };
        let shown = format!("{settings:?}");
        assert!(
            !shown.contains("s3cret") && !shown.contains("t0ken"),
            "{shown}"
        );
    }

    #[test]
    fn sources_follow_precedence() {
        let b = broker();
        let mut explicit = BTreeMap::new();
        assert_eq!(
            TopicConfig::resolve("retention.ms", &explicit, &b),
            Some(("1000".into(), ConfigSource::StaticBroker))
        );
        assert_eq!(
            TopicConfig::resolve("segment.bytes", &explicit, &b),
            Some(("1073741824".into(), ConfigSource::Default))
        );
        explicit.insert("retention.ms".into(), "5".into());
        assert_eq!(
            TopicConfig::resolve("retention.ms", &explicit, &b),
            Some(("5".into(), ConfigSource::Topic))
        );
    }

    #[test]
    fn invalid_and_unknown_configs_are_refused() {
        assert!(matches!(
            validate_topic_config("retention.ms", "soon"),
            Err(ConfigError::InvalidTopicConfig { .. })
        ));
        assert!(matches!(
            validate_topic_config("no.such.thing", "1"),
            Err(ConfigError::UnknownTopicConfig { .. })
        ));
        assert_eq!(
            validate_topic_config("segment.bytes", " 1048576 ").unwrap(),
            ("segment.bytes".to_string(), "1048576".to_string())
        );
    }
}
