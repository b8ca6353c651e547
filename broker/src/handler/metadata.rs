//! Metadata (key 3): brokers, topics, partitions and their leader.
//!
//! A single broker leads every partition. Topics named in the request that do
//! not exist are created when `allow_auto_topic_creation` is set and the
//! broker has `auto.create.topics.enable`.

use protocol::metadata_request::MetadataRequest;
use protocol::metadata_response::{
    MetadataResponse, MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};

use super::Call;
use crate::admin;
use crate::error_code;
use crate::topics::TopicMeta;

fn topic_entry(node: i32, meta: &TopicMeta) -> MetadataResponseTopic {
    MetadataResponseTopic {
        error_code: error_code::NONE,
        name: Some(meta.name.clone()),
        topic_id: meta.uuid(),
        is_internal: meta.internal,
        partitions: (0..meta.partitions)
            .map(|p| MetadataResponsePartition {
                error_code: error_code::NONE,
                partition_index: p,
                leader_id: node,
                leader_epoch: 0,
                replica_nodes: vec![node],
                isr_nodes: vec![node],
                offline_replicas: vec![],
            })
            .collect(),
        ..Default::default()
    }
}

pub async fn handle(call: &Call<'_>, req: MetadataRequest) -> MetadataResponse {
    let shard = call.shard();
    let config = &shard.cluster.config;
    let node = config.node_id;
    let (host, port) = admin::split_host_port(&config.advertised_addr);
    let mut topics = Vec::new();
    // v0 sends an empty list for "all topics"; v1+ sends null.
    let all = match &req.topics {
        None => true,
        Some(list) => list.is_empty() && call.version == 0,
    };
    match req.topics {
        _ if all => {
            topics.extend(
                shard
                    .cluster
                    .topics
                    .list()
                    .iter()
                    .map(|m| topic_entry(node, m)),
            );
        }
        None => {}
        Some(list) => {
            for requested in list {
                let meta = match &requested.name {
                    Some(name) => shard.cluster.topics.get(name),
                    None => shard.cluster.topics.by_id(&requested.topic_id),
                };
                let name = requested.name.clone().unwrap_or_default();
                let entry = match meta {
                    Some(m) => topic_entry(node, &m),
                    None => {
                        let auto = req.allow_auto_topic_creation
                            && config.auto_create_topics_enable
                            && requested.name.is_some();
                        let created = if auto {
                            admin::auto_create_topic(shard, &name).await
                        } else {
                            Err(error_code::UNKNOWN_TOPIC_OR_PARTITION)
                        };
                        match created {
                            Ok(m) => topic_entry(node, &m),
                            Err(code) => MetadataResponseTopic {
                                error_code: code,
                                name: Some(name),
                                topic_id: requested.topic_id,
                                ..Default::default()
                            },
                        }
                    }
                };
                topics.push(entry);
            }
        }
    }
    MetadataResponse {
        brokers: vec![MetadataResponseBroker {
            node_id: node,
            host,
            port,
            rack: None,
        }],
        cluster_id: Some(config.cluster_id.clone()),
        controller_id: node,
        topics,
        ..Default::default()
    }
}
