//! Topic setup: find or create the topic, list partition offsets.

use std::net::SocketAddr;

use anyhow::{Context as _, bail};
use protocol::create_topics_request::{CreatableTopic, CreateTopicsRequest};
use protocol::create_topics_response::CreateTopicsResponse;
use protocol::list_offsets_request::{ListOffsetsPartition, ListOffsetsRequest, ListOffsetsTopic};
use protocol::list_offsets_response::ListOffsetsResponse;
use protocol::metadata_request::{MetadataRequest, MetadataRequestTopic};
use protocol::metadata_response::MetadataResponse;

use crate::connection::Connection;
use crate::kafka_error::{self, KafkaError};

const METADATA_VERSION: i16 = 9;
const CREATE_TOPICS_VERSION: i16 = 5;
const LIST_OFFSETS_VERSION: i16 = 6;

/// ListOffsets timestamps meaning "earliest" and "latest".
pub const EARLIEST: i64 = -2;
pub const LATEST: i64 = -1;

/// The partition count of `topic`, or `None` when it does not exist.
pub fn partition_count(conn: &mut Connection, topic: &str) -> anyhow::Result<Option<i32>> {
    let req = MetadataRequest {
        topics: Some(vec![MetadataRequestTopic {
            name: Some(topic.to_string()),
            ..Default::default()
        }]),
        // A load test must not create a 1-partition topic by accident.
        allow_auto_topic_creation: false,
        ..Default::default()
    };
    let resp: MetadataResponse = conn.call(&req, METADATA_VERSION)?;
    let t = resp
        .topics
        .into_iter()
        .find(|t| t.name.as_deref() == Some(topic))
        .with_context(|| format!("metadata response has no entry for topic {topic}"))?;
    match t.error_code {
        kafka_error::NONE => Ok(Some(t.partitions.len() as i32)),
        kafka_error::UNKNOWN_TOPIC_OR_PARTITION => Ok(None),
        code => Err(KafkaError::new("Metadata", topic, None, code, None).into()),
    }
}

/// Makes sure `topic` exists with at least `partitions` partitions, creating
/// it if needed. Returns its partition count.
pub fn ensure(addr: SocketAddr, topic: &str, partitions: i32) -> anyhow::Result<i32> {
    let mut conn = Connection::connect(addr)?;
    if let Some(count) = partition_count(&mut conn, topic)? {
        if count < partitions {
            bail!(
                "topic {topic} exists with {count} partitions, fewer than the {partitions} asked for"
            );
        }
        return Ok(count);
    }
    let req = CreateTopicsRequest {
        topics: vec![CreatableTopic {
            name: topic.to_string(),
            num_partitions: partitions,
            replication_factor: 1,
            ..Default::default()
        }],
        timeout_ms: 30_000,
        ..Default::default()
    };
    let resp: CreateTopicsResponse = conn.call(&req, CREATE_TOPICS_VERSION)?;
    for t in resp.topics {
        match t.error_code {
            kafka_error::NONE | kafka_error::TOPIC_ALREADY_EXISTS => {}
            code => {
                return Err(
                    KafkaError::new("CreateTopics", &t.name, None, code, t.error_message).into(),
                );
            }
        }
    }
    eprintln!("created topic {topic} with {partitions} partitions");
    Ok(partitions)
}

/// The offset of every partition `0..partitions` at `timestamp`
/// ([`EARLIEST`] or [`LATEST`]).
pub fn offsets(
    addr: SocketAddr,
    topic: &str,
    partitions: i32,
    timestamp: i64,
) -> anyhow::Result<Vec<i64>> {
    let mut conn = Connection::connect(addr)?;
    let req = ListOffsetsRequest {
        replica_id: -1,
        topics: vec![ListOffsetsTopic {
            name: topic.to_string(),
            partitions: (0..partitions)
                .map(|p| ListOffsetsPartition {
                    partition_index: p,
                    timestamp,
                    ..Default::default()
                })
                .collect(),
        }],
        ..Default::default()
    };
    let resp: ListOffsetsResponse = conn.call(&req, LIST_OFFSETS_VERSION)?;
    let mut out = vec![-1; partitions as usize];
    for t in resp.topics {
        for p in t.partitions {
            if p.error_code != kafka_error::NONE {
                return Err(KafkaError::new(
                    "ListOffsets",
                    &t.name,
                    Some(p.partition_index),
                    p.error_code,
                    None,
                )
                .into());
            }
            if let Some(slot) = out.get_mut(p.partition_index as usize) {
                *slot = p.offset;
            }
        }
    }
    if let Some(p) = out.iter().position(|o| *o < 0) {
        bail!("ListOffsets returned no offset for {topic}-{p}");
    }
    Ok(out)
}
