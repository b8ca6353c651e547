//! `floe`: the broker and its admin commands.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context as _, bail};
use broker::client::Client;
use broker::config::{BrokerConfig, FileConfig, topic_defaults_from_toml};
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
    Serve(ServeArgs),
    /// Manage topics on a running broker.
    Topic {
        #[command(subcommand)]
        command: TopicCommand,
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
    /// Data-plane shards (one thread per core) [default: all cores].
    #[arg(long, env = "FLOE_CORES")]
    cores: Option<usize>,
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
    Ok(BrokerConfig {
        cluster_id: cluster_id(&data_dir)?,
        data_dir,
        kafka_addr,
        advertised_addr,
        admin_addr: args
            .admin_addr
            .or(file.admin_addr)
            .unwrap_or_else(|| BrokerConfig::DEFAULT_ADMIN_ADDR.to_string()),
        cores,
        node_id: 1,
        socket_request_max_bytes: file.socket_request_max_bytes.unwrap_or(100 << 20),
        auto_create_topics_enable: file.auto_create_topics_enable.unwrap_or(true),
        num_partitions,
        group_initial_rebalance_delay_ms: file.group_initial_rebalance_delay_ms.unwrap_or(0),
        min_free_bytes: file.min_free_bytes,
        topic_defaults: topic_defaults_from_toml(&file.topic_defaults)?,
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
            let config = broker_config(args)?;
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
        },
    }
    Ok(())
}
