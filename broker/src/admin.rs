//! Topic administration shared by the Kafka admin APIs, auto-creation and
//! startup: create, delete, grow, reconfigure.

use std::collections::BTreeMap;

use futures_util::future::join_all;

use crate::config::{ConfigError, validate_topic_config};
use crate::error_code;
use crate::shard::{
    CONSUMER_OFFSETS, CONSUMER_OFFSETS_PARTITIONS, PartitionOp, PartitionReply, Shard, now_ms,
};
use crate::topics::{TopicError, TopicMeta, TopicPartition, new_topic_id, validate_name};

/// A refused admin operation: Kafka error code and message.
pub type AdminError = (i16, String);

/// Splits `host:port` (IPv6 in brackets allowed).
pub fn split_host_port(addr: &str) -> (String, i32) {
    match addr.rsplit_once(':') {
        Some((host, port)) => (
            host.trim_start_matches('[')
                .trim_end_matches(']')
                .to_string(),
            port.parse().unwrap_or(9092),
        ),
        None => (addr.to_string(), 9092),
    }
}

/// The Kafka error for a topic registry failure.
pub fn topic_error_code(e: &TopicError) -> i16 {
    match e {
        TopicError::AlreadyExists { .. } => error_code::TOPIC_ALREADY_EXISTS,
        TopicError::NotFound { .. } => error_code::UNKNOWN_TOPIC_OR_PARTITION,
        TopicError::InvalidName { .. } => error_code::INVALID_TOPIC_EXCEPTION,
        TopicError::InvalidPartitions { .. } => error_code::INVALID_PARTITIONS,
        _ => error_code::KAFKA_STORAGE_ERROR,
    }
}

/// The Kafka error for a config validation failure.
pub fn config_error(e: &ConfigError) -> AdminError {
    (error_code::INVALID_CONFIG, e.to_string())
}

/// Validates `name=value` pairs into a map of Kafka names.
pub fn validate_configs<'a>(
    pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Result<BTreeMap<String, String>, AdminError> {
    let mut out = BTreeMap::new();
    for (name, value) in pairs {
        let (name, value) = validate_topic_config(name, value).map_err(|e| config_error(&e))?;
        out.insert(name, value);
    }
    Ok(out)
}

/// The topic a config-altering request names: only topic resources
/// (type 2) can be altered.
pub fn alterable_topic(
    shard: &Shard,
    resource_type: i8,
    name: &str,
) -> Result<TopicMeta, AdminError> {
    const RESOURCE_TOPIC: i8 = 2;
    if resource_type != RESOURCE_TOPIC {
        return Err((
            error_code::INVALID_REQUEST,
            format!("only topic configs can be altered (resource type {resource_type})"),
        ));
    }
    shard.cluster.topics.get(name).ok_or_else(|| {
        (
            error_code::UNKNOWN_TOPIC_OR_PARTITION,
            format!("topic {name} does not exist"),
        )
    })
}

/// The `(error_code, error_message)` pair of an admin outcome.
pub fn outcome_codes<T>(outcome: Result<T, AdminError>) -> (i16, Option<String>) {
    match outcome {
        Ok(_) => (error_code::NONE, None),
        Err((code, message)) => (code, Some(message)),
    }
}

/// Runs `op_for(p)` on every partition in `range` of `topic`, concurrently.
async fn for_partitions(
    shard: &Shard,
    topic: &str,
    range: std::ops::Range<i32>,
    op_for: impl Fn() -> PartitionOp,
) -> Result<(), i16> {
    let results =
        join_all(range.map(|p| shard.partition_op(TopicPartition::new(topic, p), op_for()))).await;
    for r in results {
        if let PartitionReply::Done(Err(code)) = r {
            return Err(code);
        }
    }
    Ok(())
}

/// Creates a topic and opens its partitions on their shards.
pub async fn create_topic(
    shard: &Shard,
    name: &str,
    partitions: i32,
    configs: BTreeMap<String, String>,
    validate_only: bool,
) -> Result<TopicMeta, AdminError> {
    validate_name(name).map_err(|e| (topic_error_code(&e), e.to_string()))?;
    if name.starts_with("__") && name != CONSUMER_OFFSETS {
        tracing::info!(
            topic = name,
            "creating a topic with a reserved-looking name"
        );
    }
    if !(1..=100_000).contains(&partitions) {
        return Err((
            error_code::INVALID_PARTITIONS,
            format!("partition count {partitions} must be between 1 and 100000"),
        ));
    }
    if shard.cluster.topics.get(name).is_some() {
        return Err((
            error_code::TOPIC_ALREADY_EXISTS,
            format!("topic {name} already exists"),
        ));
    }
    let meta = TopicMeta {
        name: name.to_string(),
        id: new_topic_id(),
        partitions,
        configs,
        internal: name == CONSUMER_OFFSETS || name == crate::registry::SCHEMAS_TOPIC,
        created_ms: now_ms(),
    };
    if validate_only {
        return Ok(meta);
    }
    let meta = shard
        .cluster
        .topics
        .create(meta)
        .map_err(|e| (topic_error_code(&e), e.to_string()))?;
    tracing::info!(topic = name, partitions, "created topic");
    for_partitions(shard, name, 0..partitions, || PartitionOp::Open)
        .await
        .map_err(|code| (code, format!("cannot open partitions of {name}")))?;
    Ok(meta)
}

/// Auto-creation on Metadata: broker default partition count, no configs.
pub async fn auto_create_topic(shard: &Shard, name: &str) -> Result<TopicMeta, i16> {
    let partitions = shard.cluster.config.num_partitions;
    match create_topic(shard, name, partitions, BTreeMap::new(), false).await {
        Ok(m) => Ok(m),
        Err((code, _)) if code == error_code::TOPIC_ALREADY_EXISTS => {
            shard.cluster.topics.get(name).ok_or(code)
        }
        Err((code, msg)) => {
            tracing::warn!(topic = name, %msg, "auto-creation failed");
            Err(code)
        }
    }
}

/// Deletes a topic and its data.
pub async fn delete_topic(shard: &Shard, name: &str) -> Result<(), AdminError> {
    let internal = shard.cluster.topics.get(name).is_some_and(|m| m.internal);
    if name == CONSUMER_OFFSETS || internal {
        return Err((
            error_code::INVALID_TOPIC_EXCEPTION,
            format!("internal topic {name} cannot be deleted"),
        ));
    }
    let meta = shard
        .cluster
        .topics
        .delete(name)
        .map_err(|e| (topic_error_code(&e), e.to_string()))?;
    tracing::info!(topic = name, "deleted topic");
    for_partitions(shard, name, 0..meta.partitions, || PartitionOp::Delete)
        .await
        .map_err(|code| (code, format!("cannot delete the data of {name}")))?;
    let config = crate::config::TopicConfig::effective(&meta.configs, &shard.cluster.config);
    if let Some(tier) = &shard.cluster.tier
        && config.remote_delete
    {
        // The topic is gone locally either way; objects left behind by a
        // failure here are logged, and a re-created topic of the same name
        // starts from an empty manifest only after they are removed.
        match tier.delete_topic(name).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(topic = name, objects = n, "deleted the topic's remote data"),
            Err(e) => {
                tracing::error!(topic = name, error = %e, "cannot delete the topic's remote data");
                return Err((
                    error_code::KAFKA_STORAGE_ERROR,
                    format!("{name} was deleted locally but its remote data could not be: {e}"),
                ));
            }
        }
    }
    Ok(())
}

/// Recreates `plan`'s topic from the object store: each partition's local
/// log starts empty at the offset after its last uploaded one (a durable
/// log-start checkpoint written before the topic exists), and everything
/// below is read back from the bucket. Refuses a topic that exists.
pub async fn recover_topic(
    shard: &Shard,
    plan: &shadow_index::recovery::TopicRecovery,
) -> Result<String, String> {
    let name = plan.topic.topic.as_str();
    if let Some(meta) = shard.cluster.topics.get(name) {
        if meta.internal {
            // Internal topics recover by themselves at startup when the
            // store has them; here they already exist.
            return Ok(format!("{name}: internal topic, already present"));
        }
        return Err(format!("{name}: exists here already; not recovered"));
    }
    let mut configs = BTreeMap::new();
    for (key, value) in &plan.topic.configs {
        let (key, value) = crate::config::validate_topic_config(key, value)
            .map_err(|e| format!("{name}: config {key}={value} in topic.json: {e}"))?;
        configs.insert(key, value);
    }
    let mut records = 0;
    for part in &plan.partitions {
        let tp = crate::topics::TopicPartition::new(name, part.partition);
        let dir = shard.cluster.config.data_dir.join(tp.dir_name());
        crate::log::start_empty_at(&shard.disk, &dir, part.next_offset)
            .await
            .map_err(|e| format!("{tp}: cannot prepare the local log: {e}"))?;
        records += part.next_offset - part.remote_start_offset;
    }
    create_topic(shard, name, plan.topic.partition_count, configs, false)
        .await
        .map_err(|(code, message)| format!("{name}: {message} (kafka error {code})"))?;
    Ok(format!(
        "{name}: recovered {} partitions, {records} offsets readable from the object store",
        plan.topic.partition_count
    ))
}

/// Grows a topic to `count` partitions.
pub async fn create_partitions(
    shard: &Shard,
    name: &str,
    count: i32,
    validate_only: bool,
) -> Result<(), AdminError> {
    let meta = shard.cluster.topics.get(name).ok_or_else(|| {
        (
            error_code::UNKNOWN_TOPIC_OR_PARTITION,
            format!("topic {name} does not exist"),
        )
    })?;
    if count <= meta.partitions {
        return Err((
            error_code::INVALID_PARTITIONS,
            format!(
                "topic {name} has {} partitions; the count can only grow",
                meta.partitions
            ),
        ));
    }
    if count > 100_000 {
        return Err((
            error_code::INVALID_PARTITIONS,
            format!("partition count {count} exceeds 100000"),
        ));
    }
    if validate_only {
        return Ok(());
    }
    shard
        .cluster
        .topics
        .set_partitions(name, count)
        .map_err(|e| (topic_error_code(&e), e.to_string()))?;
    for_partitions(shard, name, meta.partitions..count, || PartitionOp::Open)
        .await
        .map_err(|code| (code, format!("cannot open new partitions of {name}")))
}

/// Replaces a topic's explicit configs and applies them to its partitions.
pub async fn set_topic_configs(
    shard: &Shard,
    name: &str,
    configs: BTreeMap<String, String>,
) -> Result<(), AdminError> {
    let meta = shard
        .cluster
        .topics
        .set_configs(name, configs)
        .map_err(|e| (topic_error_code(&e), e.to_string()))?;
    for_partitions(shard, name, 0..meta.partitions, || PartitionOp::Reconfigure)
        .await
        .map_err(|code| (code, format!("cannot reconfigure {name}")))
}

/// Creates the internal topics if missing (at startup).
pub async fn ensure_internal_topics(shard: &Shard) -> Result<(), AdminError> {
    if shard.cluster.topics.get(CONSUMER_OFFSETS).is_none()
        && !recover_internal_topic(shard, CONSUMER_OFFSETS).await
    {
        create_topic(
            shard,
            CONSUMER_OFFSETS,
            CONSUMER_OFFSETS_PARTITIONS,
            internal_topic_configs(),
            false,
        )
        .await?;
    }
    Ok(())
}

/// Configs of the internal topics: kept forever, and tiered so that a
/// broker started on an empty disk gets them back from the object store.
pub fn internal_topic_configs() -> BTreeMap<String, String> {
    BTreeMap::from([
        ("retention.ms".to_string(), "-1".to_string()),
        ("remote.storage.enable".to_string(), "true".to_string()),
    ])
}

/// On a data dir without internal topic `name`, recovers it from the
/// object store when the store has it (a broker rebuilt from the bucket
/// keeps its committed offsets and schemas). Returns whether it did.
pub async fn recover_internal_topic(shard: &Shard, name: &str) -> bool {
    let Some(tier) = shard.cluster.tier.clone() else {
        return false;
    };
    let plan = match tier.recovery_plan(Some(name.to_string()), |_| {}).await {
        Ok(plan) => plan,
        Err(e) => {
            tracing::warn!(topic = name, error = %e, "cannot look for the internal topic in the object store; creating it empty");
            return false;
        }
    };
    let Some(plan) = plan.into_iter().next() else {
        return false;
    };
    match recover_topic(shard, &plan).await {
        Ok(line) => {
            tracing::info!(topic = name, "{line}");
            true
        }
        Err(e) => {
            tracing::warn!(topic = name, error = %e, "cannot recover the internal topic");
            false
        }
    }
}
