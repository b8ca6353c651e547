//! `floe`: the broker and its admin commands.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context as _, bail};
use broker::client::Client;
use broker::config::{
    BrokerConfig, FileConfig, IcebergCatalogKind, IcebergCatalogSettings, TierSettings,
    topic_defaults_from_toml,
};
use clap::{Args, Parser, Subcommand};
use protocol::create_topics_request::{CreatableTopic, CreatableTopicConfig, CreateTopicsRequest};
use protocol::create_topics_response::CreateTopicsResponse;
use protocol::delete_topics_request::DeleteTopicsRequest;
use protocol::delete_topics_response::DeleteTopicsResponse;
use protocol::describe_configs_request::{DescribeConfigsRequest, DescribeConfigsResource};
use protocol::describe_configs_response::DescribeConfigsResponse;
use protocol::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig, IncrementalAlterConfigsRequest,
};
use protocol::incremental_alter_configs_response::IncrementalAlterConfigsResponse;
use protocol::list_offsets_request::{ListOffsetsPartition, ListOffsetsRequest, ListOffsetsTopic};
use protocol::list_offsets_response::ListOffsetsResponse;
use protocol::metadata_request::{MetadataRequest, MetadataRequestTopic};
use protocol::metadata_response::MetadataResponse;

/// jemalloc keeps freed memory for reuse (it decays over seconds), where
/// glibc's malloc unmaps every large block on free: a Fetch that allocates
/// and frees ~1 MiB per partition then pays a page fault per 4 KiB, which
/// halved consume throughput (benches/RESULTS.md).
#[cfg(feature = "jemalloc")]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[derive(Parser)]
#[command(
    name = "floe",
    version,
    about = "Floe: a Kafka-compatible streaming storage engine"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the broker.
    Serve(Box<ServeArgs>),
    /// Manage topics on a running broker.
    Topic {
        #[command(subcommand)]
        command: TopicCommand,
    },
    /// Tiered storage on a running broker.
    Tier {
        #[command(subcommand)]
        command: TierCommand,
    },
    /// Iceberg projection on a running broker.
    Iceberg {
        #[command(subcommand)]
        command: IcebergCommand,
    },
}

#[derive(Subcommand)]
enum IcebergCommand {
    /// Per projected topic: table, last commit, data files, rows, DLQ rows;
    /// per partition: projected offset and lag in records and time.
    Status {
        /// Only this topic.
        topic: Option<String>,
        /// Print the JSON the broker answered.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        admin: AdminArg,
    },
}

#[derive(Args)]
struct AdminArg {
    /// The broker's admin API (`--admin-addr` of `floe serve`).
    #[arg(long, env = "FLOE_ADMIN", default_value = "127.0.0.1:9644")]
    admin: String,
}

#[derive(Subcommand)]
enum TierCommand {
    /// Per partition: local start, remote start and end, high watermark,
    /// uploaded segments and bytes, upload lag; and the cache hit ratio.
    Status {
        /// Only this topic.
        topic: Option<String>,
        /// Print the JSON the broker answered.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        admin: AdminArg,
    },
}

#[derive(Args)]
struct ServeArgs {
    /// Config file (TOML); flags and FLOE_* variables override it.
    #[arg(long, env = "FLOE_CONFIG")]
    config: Option<PathBuf>,
    /// Where logs and metadata live [default: ./floe-data].
    #[arg(long, env = "FLOE_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Kafka listener [default: 0.0.0.0:9092].
    #[arg(long, env = "FLOE_KAFKA_ADDR")]
    kafka_addr: Option<String>,
    /// Address clients are told to connect to [default: the Kafka address,
    /// with a wildcard host replaced by this machine's name].
    #[arg(long, env = "FLOE_ADVERTISED_ADDR")]
    advertised_addr: Option<String>,
    /// Admin HTTP listener: /health, /metrics, /v1 [default: 0.0.0.0:9644].
    #[arg(long, env = "FLOE_ADMIN_ADDR")]
    admin_addr: Option<String>,
    /// Schema registry HTTP listener (Confluent API) [default: 0.0.0.0:8081].
    #[arg(long, env = "FLOE_REGISTRY_ADDR")]
    registry_addr: Option<String>,
    /// Data-plane shards (one thread per core) [default: all cores].
    #[arg(long, env = "FLOE_CORES")]
    cores: Option<usize>,
    /// Object store for tiered storage: file:///path or s3://bucket[/prefix]
    /// (S3 settings from AWS_* variables or [s3] in floe.toml)
    /// [default: file://<data-dir>/bucket].
    #[arg(long, env = "FLOE_OBJECT_STORE")]
    object_store: Option<String>,
    /// Iceberg namespace of projected topics' tables, under
    /// <object-store>/iceberg/ [default: floe].
    #[arg(long, env = "FLOE_ICEBERG_NAMESPACE")]
    iceberg_namespace: Option<String>,
    /// Where projected tables live: file:///path or s3://bucket[/prefix]
    /// (same S3 settings as the object store); tables at
    /// <warehouse>/<namespace>/<topic> [default: <object-store>/iceberg].
    #[arg(long, env = "FLOE_ICEBERG_WAREHOUSE")]
    iceberg_warehouse: Option<String>,
    /// Iceberg catalog of projected tables: filesystem (metadata files next
    /// to the data) or rest (an external Iceberg REST catalog; table data
    /// still goes to the warehouse) [default: filesystem].
    #[arg(long, env = "FLOE_ICEBERG_CATALOG", value_name = "filesystem|rest")]
    iceberg_catalog: Option<IcebergCatalogKind>,
    /// The REST catalog's base URI, e.g. http://catalog:8181 (without /v1).
    #[arg(long, env = "FLOE_ICEBERG_CATALOG_URI", value_name = "URL")]
    iceberg_catalog_uri: Option<String>,
    /// The REST catalog's `warehouse` property (which warehouse of the
    /// server holds the tables).
    #[arg(long, env = "FLOE_ICEBERG_CATALOG_WAREHOUSE", value_name = "NAME")]
    iceberg_catalog_warehouse: Option<String>,
    /// Bearer token for the REST catalog (prefer the variable: flags show
    /// in `ps`).
    #[arg(long, env = "FLOE_ICEBERG_CATALOG_TOKEN", hide_env_values = true)]
    iceberg_catalog_token: Option<String>,
    /// OAuth2 client credentials for the REST catalog, CLIENT_ID:SECRET,
    /// exchanged for tokens at its token endpoint (prefer the variable).
    #[arg(long, env = "FLOE_ICEBERG_CATALOG_CREDENTIAL", hide_env_values = true)]
    iceberg_catalog_credential: Option<String>,
    /// Roll an active segment idle this long so it reaches the object
    /// store [default: 600000].
    #[arg(long, env = "FLOE_TIER_IDLE_ROLL_MS")]
    tier_idle_roll_ms: Option<i64>,
    /// Size of the remote-read chunk cache in bytes [default: 1 GiB].
    #[arg(long, env = "FLOE_TIER_CACHE_BYTES")]
    tier_cache_bytes: Option<u64>,
}

#[derive(Args)]
struct BrokerArg {
    /// Broker to talk to.
    #[arg(long, env = "FLOE_BROKER", default_value = "127.0.0.1:9092")]
    broker: String,
}

#[derive(Subcommand)]
enum TopicCommand {
    /// Create a topic.
    Create {
        name: String,
        #[arg(long, default_value_t = 1)]
        partitions: i32,
        /// Topic config, repeatable: --config retention.ms=60000
        #[arg(long = "config", value_name = "KEY=VALUE")]
        configs: Vec<String>,
        #[command(flatten)]
        broker: BrokerArg,
    },
    /// List topics.
    List {
        /// Include internal topics.
        #[arg(long)]
        all: bool,
        #[command(flatten)]
        broker: BrokerArg,
    },
    /// Show partitions, offsets and configs of a topic.
    Describe {
        name: String,
        #[command(flatten)]
        broker: BrokerArg,
    },
    /// Change topic configs.
    Alter {
        name: String,
        /// Set a config, repeatable: --config retention.ms=60000
        #[arg(long = "config", value_name = "KEY=VALUE")]
        configs: Vec<String>,
        /// Remove an explicit config (back to the default), repeatable.
        #[arg(long = "delete-config", value_name = "KEY")]
        delete: Vec<String>,
        #[command(flatten)]
        broker: BrokerArg,
    },
    /// Delete a topic and its data.
    Delete {
        name: String,
        #[command(flatten)]
        broker: BrokerArg,
    },
    /// Recreate topics from the object store on a broker whose data dir
    /// lacks them (configs, partitions, offsets); consumers then read the
    /// whole history from the bucket.
    Recover {
        /// The topic to recover.
        name: Option<String>,
        /// Recover every topic found in the object store.
        #[arg(long, conflicts_with = "name")]
        all: bool,
        #[command(flatten)]
        admin: AdminArg,
    },
}

fn topic_recover(name: Option<&str>, all: bool, admin: &str) -> anyhow::Result<()> {
    let query = match (name, all) {
        (Some(n), _) => format!("topic={}", percent_encode(n)),
        (None, true) => "all=true".to_string(),
        (None, false) => bail!("name a topic to recover, or pass --all"),
    };
    let response = broker::admin_client::call(admin, "POST", &format!("/v1/tier/recover?{query}"))?;
    if response.status != 200 {
        bail!("recovery refused: {}", response.text()?.trim());
    }
    let mut failed = false;
    for line in std::io::BufRead::lines(response.body) {
        let line = line.context("the broker closed the connection mid-recovery")?;
        failed |= line.starts_with("ERROR");
        println!("{line}");
    }
    if failed {
        bail!("recovery did not complete");
    }
    Ok(())
}

fn tier_status(topic: Option<&str>, json: bool, admin: &str) -> anyhow::Result<()> {
    let Some(v) = status_answer("tier", topic, json, admin)? else {
        return Ok(());
    };
    println!(
        "object store: {}",
        v["object_store"].as_str().unwrap_or("-")
    );
    if let Some(ratio) = v["cache_hit_ratio"].as_f64() {
        println!("remote read cache hit ratio: {:.1}%", ratio * 100.0);
    }
    println!(
        "{:<30} {:>5} {:>6} {:>12} {:>12} {:>12} {:>12} {:>9} {:>14} {:>12} {:>12}",
        "TOPIC",
        "PART",
        "TIERED",
        "LOCAL_START",
        "REMOTE_START",
        "REMOTE_END",
        "HIGH_WATER",
        "SEGMENTS",
        "UPLOADED",
        "LOCAL",
        "UPLOAD_LAG"
    );
    let opt = |x: &serde_json::Value| x.as_i64().map_or("-".to_string(), |n| n.to_string());
    for p in v["partitions"].as_array().into_iter().flatten() {
        println!(
            "{:<30} {:>5} {:>6} {:>12} {:>12} {:>12} {:>12} {:>9} {:>14} {:>12} {:>12}",
            p["topic"].as_str().unwrap_or("?"),
            opt(&p["partition"]),
            if p["remote_storage"].as_bool() == Some(true) {
                "yes"
            } else {
                "no"
            },
            opt(&p["local_start"]),
            opt(&p["remote_start"]),
            opt(&p["remote_end"]),
            opt(&p["high_watermark"]),
            opt(&p["uploaded_segments"]),
            format!("{} B", opt(&p["uploaded_bytes"])),
            format!("{} B", opt(&p["local_bytes"])),
            opt(&p["upload_lag"]),
        );
        if let Some(e) = p["last_error"].as_str() {
            println!("    last upload error: {e}");
        }
    }
    Ok(())
}

fn iceberg_status(topic: Option<&str>, json: bool, admin: &str) -> anyhow::Result<()> {
    let Some(v) = status_answer("iceberg", topic, json, admin)? else {
        return Ok(());
    };
    let topics = v["topics"].as_array().cloned().unwrap_or_default();
    if topics.is_empty() {
        println!("no topic is projected (set iceberg.mode on a topic)");
        return Ok(());
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let opt = |x: &serde_json::Value| x.as_i64().map_or("-".to_string(), |n| n.to_string());
    for t in topics {
        println!(
            "{} ({}) -> {} [{}]",
            t["topic"].as_str().unwrap_or("?"),
            t["mode"].as_str().unwrap_or("?"),
            t["table"].as_str().unwrap_or("?"),
            t["state"].as_str().unwrap_or("?"),
        );
        println!("  catalog: {}", t["catalog"].as_str().unwrap_or("-"));
        println!("  location: {}", t["location"].as_str().unwrap_or("-"));
        let last = t["last_commit_ms"]
            .as_i64()
            .map_or("never (this run)".to_string(), |ms| {
                format!("{:.1} s ago", (now - ms) as f64 / 1000.0)
            });
        println!(
            "  last commit: {last}; commits: {}; rows: {}; data files: {}; dlq rows: {}; dropped: {}",
            opt(&t["commits"]),
            opt(&t["rows"]),
            opt(&t["data_files"]),
            opt(&t["dlq_rows"]),
            opt(&t["dropped_records"]),
        );
        if let Some(e) = t["last_error"].as_str() {
            println!("  last error: {e}");
        }
        println!(
            "  {:>5} {:>14} {:>14} {:>12} {:>10}",
            "PART", "PROJECTED", "HIGH_WATER", "LAG", "LAG_MS"
        );
        for p in t["partitions"].as_array().into_iter().flatten() {
            println!(
                "  {:>5} {:>14} {:>14} {:>12} {:>10}",
                opt(&p["partition"]),
                opt(&p["projected_offset"]),
                opt(&p["high_watermark"]),
                opt(&p["lag_records"]),
                opt(&p["lag_ms"]),
            );
        }
    }
    Ok(())
}

/// `GET /v1/<kind>/status[?topic=T]` from the admin API. With `json`, prints
/// the answer as it came and returns `None`; otherwise returns it parsed.
fn status_answer(
    kind: &str,
    topic: Option<&str>,
    json: bool,
    admin: &str,
) -> anyhow::Result<Option<serde_json::Value>> {
    let path = match topic {
        Some(t) => format!("/v1/{kind}/status?topic={}", percent_encode(t)),
        None => format!("/v1/{kind}/status"),
    };
    let response = broker::admin_client::call(admin, "GET", &path)?;
    let status = response.status;
    let text = response.text()?;
    if status != 200 {
        bail!("{kind} status: {}", text.trim());
    }
    if json {
        println!("{text}");
        return Ok(None);
    }
    let answer = serde_json::from_str(&text).with_context(|| format!("{kind} status answer"))?;
    Ok(Some(answer))
}

/// Percent-encodes a topic name for a query string.
fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn parse_pairs(pairs: &[String]) -> anyhow::Result<Vec<(String, String)>> {
    pairs
        .iter()
        .map(|p| {
            p.split_once('=')
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                .with_context(|| format!("--config {p:?} is not KEY=VALUE"))
        })
        .collect()
}

/// A wildcard bind address is not something clients can connect to: use
/// the machine's name if it resolves, else loopback.
fn default_advertised(kafka_addr: &str) -> String {
    let (host, port) = broker::admin::split_host_port(kafka_addr);
    if host != "0.0.0.0" && host != "::" && !host.is_empty() {
        return kafka_addr.to_string();
    }
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    let resolves = !name.is_empty()
        && std::net::ToSocketAddrs::to_socket_addrs(&(name.as_str(), 0))
            .map(|mut a| a.next().is_some())
            .unwrap_or(false);
    if resolves {
        format!("{name}:{port}")
    } else {
        format!("127.0.0.1:{port}")
    }
}

fn broker_config(args: ServeArgs) -> anyhow::Result<BrokerConfig> {
    let file = match &args.config {
        Some(path) => FileConfig::load(path)?,
        None => {
            let default = PathBuf::from("floe.toml");
            if default.exists() {
                FileConfig::load(&default)?
            } else {
                FileConfig::default()
            }
        }
    };
    let kafka_addr = args
        .kafka_addr
        .or(file.kafka_addr)
        .unwrap_or_else(|| BrokerConfig::DEFAULT_KAFKA_ADDR.to_string());
    let advertised_addr = args
        .advertised_addr
        .or(file.advertised_addr)
        .unwrap_or_else(|| default_advertised(&kafka_addr));
    let cores = args
        .cores
        .or(file.cores)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    if cores == 0 || cores > 1024 {
        bail!("--cores must be between 1 and 1024, got {cores}");
    }
    let num_partitions = file.num_partitions.unwrap_or(1);
    if num_partitions < 1 {
        bail!("num-partitions must be at least 1");
    }
    let data_dir = args
        .data_dir
        .or(file.data_dir)
        .unwrap_or_else(|| PathBuf::from(BrokerConfig::DEFAULT_DATA_DIR));
    // Absolute, so that every directory has a parent to fsync (a relative
    // `data`'s parent is the empty path).
    let data_dir = std::path::absolute(&data_dir)
        .with_context(|| format!("cannot resolve the data directory {}", data_dir.display()))?;
    let defaults = TierSettings::defaults(&data_dir);
    let tier = TierSettings {
        object_store: args
            .object_store
            .or(file.object_store)
            .unwrap_or(defaults.object_store),
        s3: file.s3,
        cache_dir: file.tier.cache_dir.unwrap_or(defaults.cache_dir),
        cache_bytes: args
            .tier_cache_bytes
            .or(file.tier.cache_bytes)
            .unwrap_or(defaults.cache_bytes),
        chunk_bytes: file.tier.chunk_bytes.unwrap_or(defaults.chunk_bytes),
        idle_roll_ms: args
            .tier_idle_roll_ms
            .or(file.tier.idle_roll_ms)
            .unwrap_or(defaults.idle_roll_ms),
        upload_interval_ms: file
            .tier
            .upload_interval_ms
            .unwrap_or(defaults.upload_interval_ms),
        upload_concurrency: file
            .tier
            .upload_concurrency
            .unwrap_or(defaults.upload_concurrency),
        orphan_min_age_ms: file
            .tier
            .orphan_min_age_ms
            .unwrap_or(defaults.orphan_min_age_ms),
        cache_direct_io: file
            .tier
            .cache_direct_io
            .unwrap_or(defaults.cache_direct_io),
        writer_lease_ms: file
            .tier
            .writer_lease_ms
            .unwrap_or(defaults.writer_lease_ms),
        min_free_bytes: file.min_free_bytes,
    };
    if tier.chunk_bytes < 4096 {
        bail!("tier.chunk_bytes must be at least 4096");
    }
    let iceberg_catalog = IcebergCatalogSettings {
        kind: args
            .iceberg_catalog
            .or(file.iceberg_catalog)
            .unwrap_or_default(),
        uri: args.iceberg_catalog_uri.or(file.iceberg_catalog_uri),
        warehouse: args
            .iceberg_catalog_warehouse
            .or(file.iceberg_catalog_warehouse),
        token: args.iceberg_catalog_token.or(file.iceberg_catalog_token),
        credential: args
            .iceberg_catalog_credential
            .or(file.iceberg_catalog_credential),
        properties: file.iceberg_catalog_properties,
    };
    match iceberg_catalog.kind {
        IcebergCatalogKind::Rest if iceberg_catalog.uri.as_deref().is_none_or(str::is_empty) => {
            bail!(
                "--iceberg-catalog rest needs the catalog's URI: --iceberg-catalog-uri URL \
                 (FLOE_ICEBERG_CATALOG_URI, iceberg-catalog-uri in floe.toml)"
            )
        }
        IcebergCatalogKind::Filesystem if iceberg_catalog.uri.is_some() => {
            bail!(
                "--iceberg-catalog-uri needs --iceberg-catalog rest \
                 (the default filesystem catalog has no server)"
            )
        }
        _ => {}
    }
    Ok(BrokerConfig {
        cluster_id: cluster_id(&data_dir)?,
        data_dir,
        kafka_addr,
        advertised_addr,
        admin_addr: args
            .admin_addr
            .or(file.admin_addr)
            .unwrap_or_else(|| BrokerConfig::DEFAULT_ADMIN_ADDR.to_string()),
        registry_addr: args
            .registry_addr
            .or(file.registry_addr)
            .unwrap_or_else(|| BrokerConfig::DEFAULT_REGISTRY_ADDR.to_string()),
        cores,
        node_id: 1,
        socket_request_max_bytes: file.socket_request_max_bytes.unwrap_or(100 << 20),
        auto_create_topics_enable: file.auto_create_topics_enable.unwrap_or(true),
        num_partitions,
        group_initial_rebalance_delay_ms: file.group_initial_rebalance_delay_ms.unwrap_or(0),
        min_free_bytes: file.min_free_bytes,
        topic_defaults: topic_defaults_from_toml(&file.topic_defaults)?,
        tier,
        iceberg_namespace: args
            .iceberg_namespace
            .or(file.iceberg_namespace)
            .unwrap_or_else(|| "floe".to_string()),
        iceberg_warehouse: args.iceberg_warehouse.or(file.iceberg_warehouse),
        iceberg_catalog,
    })
}

/// The cluster id, created once per data directory.
fn cluster_id(data_dir: &std::path::Path) -> anyhow::Result<String> {
    let meta = data_dir.join("meta");
    std::fs::create_dir_all(&meta).with_context(|| format!("cannot create {}", meta.display()))?;
    let path = meta.join("cluster_id");
    if let Ok(id) = std::fs::read_to_string(&path) {
        return Ok(id.trim().to_string());
    }
    let id = uuid::Uuid::new_v4().simple().to_string();
    std::fs::write(&path, &id).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(id)
}

fn kafka_error(code: i16, message: Option<&str>) -> anyhow::Result<()> {
    if code == 0 {
        return Ok(());
    }
    match message {
        Some(m) if !m.is_empty() => bail!("{m} (kafka error {code})"),
        _ => bail!("kafka error {code}"),
    }
}

fn topic_create(
    name: &str,
    partitions: i32,
    configs: &[String],
    broker: &str,
) -> anyhow::Result<()> {
    let mut client = Client::connect(broker)?;
    let configs = parse_pairs(configs)?
        .into_iter()
        .map(|(name, value)| CreatableTopicConfig {
            name,
            value: Some(value),
        })
        .collect();
    let req = CreateTopicsRequest {
        topics: vec![CreatableTopic {
            name: name.to_string(),
            num_partitions: partitions,
            replication_factor: -1,
            assignments: vec![],
            configs,
        }],
        timeout_ms: 30_000,
        validate_only: false,
    };
    let resp: CreateTopicsResponse = client.call(&req, 5)?;
    for t in resp.topics {
        kafka_error(t.error_code, t.error_message.as_deref())
            .with_context(|| format!("cannot create topic {}", t.name))?;
        println!(
            "created topic {} with {} partitions",
            t.name, t.num_partitions
        );
    }
    Ok(())
}

fn metadata(client: &mut Client, topics: Option<Vec<String>>) -> anyhow::Result<MetadataResponse> {
    let req = MetadataRequest {
        topics: topics.map(|names| {
            names
                .into_iter()
                .map(|n| MetadataRequestTopic {
                    name: Some(n),
                    ..Default::default()
                })
                .collect()
        }),
        allow_auto_topic_creation: false,
        ..Default::default()
    };
    Ok(client.call(&req, 9)?)
}

fn topic_list(all: bool, broker: &str) -> anyhow::Result<()> {
    let mut client = Client::connect(broker)?;
    let resp = metadata(&mut client, None)?;
    let mut topics: Vec<_> = resp
        .topics
        .into_iter()
        .filter(|t| all || !t.is_internal)
        .collect();
    topics.sort_by(|a, b| a.name.cmp(&b.name));
    println!("{:<40} {:>10}", "TOPIC", "PARTITIONS");
    for t in topics {
        println!(
            "{:<40} {:>10}",
            t.name.unwrap_or_default(),
            t.partitions.len()
        );
    }
    Ok(())
}

fn offsets(
    client: &mut Client,
    name: &str,
    partitions: &[i32],
    ts: i64,
) -> anyhow::Result<BTreeMap<i32, i64>> {
    let req = ListOffsetsRequest {
        replica_id: -1,
        isolation_level: 0,
        topics: vec![ListOffsetsTopic {
            name: name.to_string(),
            partitions: partitions
                .iter()
                .map(|p| ListOffsetsPartition {
                    partition_index: *p,
                    current_leader_epoch: -1,
                    timestamp: ts,
                })
                .collect(),
        }],
    };
    let resp: ListOffsetsResponse = client.call(&req, 6)?;
    Ok(resp
        .topics
        .into_iter()
        .flat_map(|t| t.partitions)
        .map(|p| (p.partition_index, p.offset))
        .collect())
}

fn topic_describe(name: &str, broker: &str) -> anyhow::Result<()> {
    let mut client = Client::connect(broker)?;
    let resp = metadata(&mut client, Some(vec![name.to_string()]))?;
    let topic = resp
        .topics
        .into_iter()
        .next()
        .context("empty metadata response")?;
    kafka_error(topic.error_code, None).with_context(|| format!("cannot describe topic {name}"))?;
    let partitions: Vec<i32> = topic.partitions.iter().map(|p| p.partition_index).collect();
    let start = offsets(&mut client, name, &partitions, -2)?;
    let end = offsets(&mut client, name, &partitions, -1)?;
    let id: String = topic
        .topic_id
        .0
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    println!("topic      {name}");
    println!("id         {id}");
    println!("partitions {}", partitions.len());
    println!();
    println!(
        "{:>9} {:>7} {:>20} {:>20}",
        "PARTITION", "LEADER", "LOG START", "HIGH WATERMARK"
    );
    for p in &topic.partitions {
        println!(
            "{:>9} {:>7} {:>20} {:>20}",
            p.partition_index,
            p.leader_id,
            start.get(&p.partition_index).copied().unwrap_or(-1),
            end.get(&p.partition_index).copied().unwrap_or(-1)
        );
    }
    let req = DescribeConfigsRequest {
        resources: vec![DescribeConfigsResource {
            resource_type: 2,
            resource_name: name.to_string(),
            configuration_keys: None,
        }],
        include_synonyms: false,
        include_documentation: false,
    };
    let resp: DescribeConfigsResponse = client.call(&req, 4)?;
    println!();
    println!("{:<28} {:<24} SOURCE", "CONFIG", "VALUE");
    for r in resp.results {
        kafka_error(r.error_code, r.error_message.as_deref())?;
        for c in r.configs {
            let source = match c.config_source {
                1 => "topic",
                4 => "broker",
                5 => "default",
                _ => "other",
            };
            println!(
                "{:<28} {:<24} {source}",
                c.name,
                c.value.unwrap_or_default()
            );
        }
    }
    Ok(())
}

fn topic_alter(
    name: &str,
    configs: &[String],
    delete: &[String],
    broker: &str,
) -> anyhow::Result<()> {
    if configs.is_empty() && delete.is_empty() {
        bail!("nothing to change: give --config KEY=VALUE or --delete-config KEY");
    }
    let mut client = Client::connect(broker)?;
    let mut changes: Vec<AlterableConfig> = parse_pairs(configs)?
        .into_iter()
        .map(|(name, value)| AlterableConfig {
            name,
            config_operation: 0,
            value: Some(value),
        })
        .collect();
    changes.extend(delete.iter().map(|k| AlterableConfig {
        name: k.clone(),
        config_operation: 1,
        value: None,
    }));
    let req = IncrementalAlterConfigsRequest {
        resources: vec![AlterConfigsResource {
            resource_type: 2,
            resource_name: name.to_string(),
            configs: changes,
        }],
        validate_only: false,
    };
    let resp: IncrementalAlterConfigsResponse = client.call(&req, 1)?;
    for r in resp.responses {
        kafka_error(r.error_code, r.error_message.as_deref())
            .with_context(|| format!("cannot alter topic {name}"))?;
    }
    println!("altered topic {name}");
    Ok(())
}

fn topic_delete(name: &str, broker: &str) -> anyhow::Result<()> {
    let mut client = Client::connect(broker)?;
    let req = DeleteTopicsRequest {
        topic_names: vec![name.to_string()],
        timeout_ms: 30_000,
        ..Default::default()
    };
    let resp: DeleteTopicsResponse = client.call(&req, 4)?;
    for r in resp.responses {
        kafka_error(r.error_code, r.error_message.as_deref())
            .with_context(|| format!("cannot delete topic {name}"))?;
    }
    println!("deleted topic {name}");
    Ok(())
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("FLOE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => {
            let config = broker_config(*args)?;
            broker::server::serve(config)?;
        }
        Command::Topic { command } => match command {
            TopicCommand::Create {
                name,
                partitions,
                configs,
                broker,
            } => topic_create(&name, partitions, &configs, &broker.broker)?,
            TopicCommand::List { all, broker } => topic_list(all, &broker.broker)?,
            TopicCommand::Describe { name, broker } => topic_describe(&name, &broker.broker)?,
            TopicCommand::Alter {
                name,
                configs,
                delete,
                broker,
            } => topic_alter(&name, &configs, &delete, &broker.broker)?,
            TopicCommand::Delete { name, broker } => topic_delete(&name, &broker.broker)?,
            TopicCommand::Recover { name, all, admin } => {
                topic_recover(name.as_deref(), all, &admin.admin)?
            }
        },
        Command::Tier { command } => match command {
            TierCommand::Status { topic, json, admin } => {
                tier_status(topic.as_deref(), json, &admin.admin)?
            }
        },
        Command::Iceberg { command } => match command {
            IcebergCommand::Status { topic, json, admin } => {
                iceberg_status(topic.as_deref(), json, &admin.admin)?
            }
        },
    }
    Ok(())
}
