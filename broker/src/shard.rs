//! Shards: one glommio executor per core, shared-nothing.
//!
//! Every partition belongs to exactly one shard, chosen by a stable hash of
//! `(topic, partition)`. A request that touches a partition of another shard
//! sends a [`PartitionOp`] over that shard's inbox (an async channel whose
//! wakers glommio accepts from foreign threads) and awaits the reply on a
//! one-shot channel; the owner runs the op as a local task. Group
//! coordination is routed the same way, by the `__consumer_offsets`
//! partition that holds the group.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use glommio::sync::Semaphore;

use crate::config::{BrokerConfig, TopicConfig};
use crate::error_code;
use crate::group_service::{GroupOp, GroupReply, GroupService};
use crate::log;
use crate::partition::{Partition, ProduceResult, ReadResult};
use crate::producer_ids::ProducerIds;
use crate::topics::{TopicPartition, TopicRegistry};

/// The internal topic holding committed consumer offsets.
pub const CONSUMER_OFFSETS: &str = "__consumer_offsets";
/// Its partition count; fixed so groups map to the same partition across
/// restarts with a different number of cores.
pub const CONSUMER_OFFSETS_PARTITIONS: i32 = 16;

/// An operation on one partition, run by its owner shard.
#[derive(Debug)]
pub enum PartitionOp {
    Produce {
        records: Option<Bytes>,
        acks: i16,
    },
    Read {
        offset: i64,
        max_bytes: usize,
    },
    WaitForData {
        offset: i64,
        timeout: Duration,
    },
    ListOffset {
        timestamp: i64,
    },
    EndOffset,
    /// Makes the partition's appended data durable (acks=all).
    Sync,
    DeleteRecords {
        offset: i64,
    },
    /// Opens the partition if it is not open (after CreateTopics).
    Open,
    /// Applies the topic's current configs.
    Reconfigure,
    /// Closes and deletes the partition's data (DeleteTopics).
    Delete,
}

/// The reply to a [`PartitionOp`].
#[derive(Debug)]
pub enum PartitionReply {
    Produced(ProduceResult),
    Read(ReadResult),
    Offset(Result<(i64, i64), i16>),
    Done(Result<(), i16>),
}

/// A message to a shard's inbox.
pub enum ShardMsg {
    Partition {
        tp: TopicPartition,
        op: PartitionOp,
        reply: async_channel::Sender<PartitionReply>,
    },
    Group {
        op: GroupOp,
        reply: async_channel::Sender<GroupReply>,
    },
    /// Tier status of this shard's open partitions (of one topic or all).
    TierStatus {
        topic: Option<String>,
        reply: async_channel::Sender<Vec<crate::partition::TierStatus>>,
    },
    /// Recreates a topic from the object store (`floe topic recover`).
    Recover {
        plan: shadow_index::recovery::TopicRecovery,
        reply: async_channel::Sender<Result<String, String>>,
    },
    Shutdown,
}

/// State shared by every shard (thread-safe, rarely written).
pub struct Cluster {
    pub config: Arc<BrokerConfig>,
    pub topics: TopicRegistry,
    pub producer_ids: ProducerIds,
    pub inboxes: Vec<async_channel::Sender<ShardMsg>>,
    pub shutting_down: AtomicBool,
    pub metrics: crate::metrics::Metrics,
    pub disk: Arc<crate::disk_guard::DiskGuard>,
    /// The schema registry (`_schemas`), read by Produce validation.
    pub schemas: crate::registry::Schemas,
    /// Tiered storage (the shadow index on the cloud plane).
    pub tier: Option<Arc<crate::tier::Tier>>,
    /// What retention may delete of projected topics (the Iceberg
    /// projector's committed offsets).
    pub fences: Arc<crate::fences::RetentionFences>,
}

impl Cluster {
    pub fn shards(&self) -> usize {
        self.inboxes.len()
    }

    /// The shard that owns `tp`.
    pub fn owner(&self, tp: &TopicPartition) -> usize {
        // FNV-1a: stable across runs and platforms.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in tp.topic.bytes().chain(tp.partition.to_be_bytes()) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        (h % self.shards() as u64) as usize
    }

    /// The `__consumer_offsets` partition that holds `group`.
    pub fn offsets_partition(group: &str) -> i32 {
        // Kafka's choice: abs(hashCode) % partitions, with Java's String hash.
        let mut h: i32 = 0;
        for c in group.encode_utf16() {
            h = h.wrapping_mul(31).wrapping_add(i32::from(c as i16));
        }
        (h.unsigned_abs() % CONSUMER_OFFSETS_PARTITIONS as u32) as i32
    }

    /// The shard coordinating `group`.
    pub fn group_owner(&self, group: &str) -> usize {
        self.owner(&TopicPartition::new(
            CONSUMER_OFFSETS,
            Self::offsets_partition(group),
        ))
    }

    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::Relaxed)
    }

    /// Runs `op` on `tp` through its owner shard's inbox, from any thread
    /// (the cloud plane's registry and projector). `None` when the shard is
    /// gone.
    pub async fn send_partition_op(
        &self,
        tp: TopicPartition,
        op: PartitionOp,
    ) -> Option<PartitionReply> {
        let owner = self.owner(&tp);
        let (reply, answer) = async_channel::bounded(1);
        self.inboxes[owner]
            .send(ShardMsg::Partition { tp, op, reply })
            .await
            .ok()?;
        answer.recv().await.ok()
    }
}

/// A topic's partition count and explicit configs, as in its `topic.json`.
type SavedTopic = (i32, std::collections::BTreeMap<String, String>);

/// One shard: the partitions and groups it owns.
pub struct Shard {
    pub id: usize,
    pub cluster: Arc<Cluster>,
    pub disk: log::Disk,
    partitions: RefCell<HashMap<TopicPartition, Rc<Partition>>>,
    /// Serializes partition opens so a partition is opened once.
    open_lock: Semaphore,
    pub groups: GroupService,
    /// `topic.json` contents last written, by topic.
    saved_topics: RefCell<HashMap<String, SavedTopic>>,
}

impl Shard {
    pub fn new(id: usize, cluster: Arc<Cluster>, disk: log::Disk) -> Rc<Shard> {
        let groups = GroupService::new(id, cluster.clone());
        Rc::new(Shard {
            id,
            cluster,
            disk,
            partitions: RefCell::new(HashMap::new()),
            open_lock: Semaphore::new(1),
            groups,
            saved_topics: RefCell::new(HashMap::new()),
        })
    }

    /// Runs an op on `tp`, here or on its owner shard.
    pub async fn partition_op(&self, tp: TopicPartition, op: PartitionOp) -> PartitionReply {
        let owner = self.cluster.owner(&tp);
        if owner == self.id {
            return self.execute(tp, op).await;
        }
        let (tx, rx) = async_channel::bounded(1);
        let msg = ShardMsg::Partition { tp, op, reply: tx };
        if self.cluster.inboxes[owner].send(msg).await.is_err() {
            return PartitionReply::Done(Err(error_code::NOT_LEADER_OR_FOLLOWER));
        }
        rx.recv().await.unwrap_or(PartitionReply::Done(Err(
            error_code::NOT_LEADER_OR_FOLLOWER,
        )))
    }

    /// Runs a group op on the group's coordinator shard.
    pub async fn group_op(&self, group: &str, op: GroupOp) -> GroupReply {
        self.group_op_on(self.cluster.group_owner(group), op).await
    }

    /// Runs a group op on shard `owner`.
    pub async fn group_op_on(&self, owner: usize, op: GroupOp) -> GroupReply {
        if owner == self.id {
            return self.groups.execute(self, op).await;
        }
        let (tx, rx) = async_channel::bounded(1);
        if self.cluster.inboxes[owner]
            .send(ShardMsg::Group { op, reply: tx })
            .await
            .is_err()
        {
            return GroupReply::Error(error_code::COORDINATOR_NOT_AVAILABLE);
        }
        rx.recv()
            .await
            .unwrap_or(GroupReply::Error(error_code::COORDINATOR_NOT_AVAILABLE))
    }

    /// The open partition `tp`, opening it if the topic has it.
    pub async fn partition(&self, tp: &TopicPartition) -> Result<Rc<Partition>, i16> {
        if let Some(p) = self.partitions.borrow().get(tp) {
            return Ok(p.clone());
        }
        let Some(meta) = self.cluster.topics.get(&tp.topic) else {
            return Err(error_code::UNKNOWN_TOPIC_OR_PARTITION);
        };
        if tp.partition < 0 || tp.partition >= meta.partitions {
            return Err(error_code::UNKNOWN_TOPIC_OR_PARTITION);
        }
        let _permit = self
            .open_lock
            .acquire_permit(1)
            .await
            .map_err(|_| error_code::KAFKA_STORAGE_ERROR)?;
        if let Some(p) = self.partitions.borrow().get(tp) {
            return Ok(p.clone());
        }
        let config = TopicConfig::effective(&meta.configs, &self.cluster.config);
        let dir = self.cluster.config.data_dir.join(tp.dir_name());
        let tier = self.cluster.tier.clone();
        let fences = self.cluster.fences.clone();
        match Partition::open(tp.clone(), dir, config, self.disk.clone(), tier, fences).await {
            Ok(p) => {
                self.partitions.borrow_mut().insert(tp.clone(), p.clone());
                Ok(p)
            }
            Err(e) => {
                tracing::error!(partition = %tp, error = %e, "cannot open partition");
                Err(error_code::KAFKA_STORAGE_ERROR)
            }
        }
    }

    /// Runs `op` on a partition this shard owns.
    pub async fn execute(&self, tp: TopicPartition, op: PartitionOp) -> PartitionReply {
        if let PartitionOp::Delete = op {
            let removed = self.partitions.borrow_mut().remove(&tp);
            let result = match removed {
                Some(p) => p.delete().await.map_err(|e| {
                    tracing::error!(partition = %tp, error = %e, "cannot delete partition");
                    error_code::KAFKA_STORAGE_ERROR
                }),
                None => {
                    // Not open: remove whatever is on disk.
                    let dir = self.cluster.config.data_dir.join(tp.dir_name());
                    match std::fs::remove_dir_all(&dir) {
                        Ok(()) => Ok(()),
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                        Err(e) => {
                            tracing::error!(dir = %dir.display(), error = %e, "cannot delete partition directory");
                            Err(error_code::KAFKA_STORAGE_ERROR)
                        }
                    }
                }
            };
            return PartitionReply::Done(result);
        }
        let partition = match self.partition(&tp).await {
            Ok(p) => p,
            Err(code) => {
                return match op {
                    PartitionOp::Produce { .. } => PartitionReply::Produced(ProduceResult {
                        error_code: code,
                        base_offset: -1,
                        log_append_time_ms: -1,
                        log_start_offset: -1,
                        error_message: None,
                    }),
                    PartitionOp::Read { .. } => PartitionReply::Read(ReadResult {
                        error_code: code,
                        high_watermark: -1,
                        log_start_offset: -1,
                        records: None,
                    }),
                    PartitionOp::ListOffset { .. } | PartitionOp::EndOffset => {
                        PartitionReply::Offset(Err(code))
                    }
                    _ => PartitionReply::Done(Err(code)),
                };
            }
        };
        match op {
            PartitionOp::Produce { records, acks } => {
                let size = records.as_ref().map_or(0, |r| r.len() as u64);
                if let Err(reason) = self.cluster.disk.reserve(size) {
                    return PartitionReply::Produced(ProduceResult {
                        error_code: error_code::KAFKA_STORAGE_ERROR,
                        error_message: Some(reason),
                        base_offset: -1,
                        log_append_time_ms: -1,
                        log_start_offset: -1,
                    });
                }
                let result = partition.produce(records, acks).await;
                let metrics = &self.cluster.metrics;
                if result.error_code == error_code::NONE {
                    metrics.produced_bytes.inc_by(size);
                    metrics.produced_batches.inc();
                } else {
                    metrics
                        .produce_errors
                        .get_or_create(&crate::metrics::CodeLabels {
                            code: result.error_code,
                        })
                        .inc();
                }
                PartitionReply::Produced(result)
            }
            PartitionOp::Read { offset, max_bytes } => {
                let result = partition.read(offset, max_bytes).await;
                let size = result.records.as_ref().map_or(0, |r| r.len() as u64);
                self.cluster.metrics.fetched_bytes.inc_by(size);
                PartitionReply::Read(result)
            }
            PartitionOp::WaitForData { offset, timeout } => {
                partition.wait_for_data(offset, timeout).await;
                PartitionReply::Done(Ok(()))
            }
            PartitionOp::ListOffset { timestamp } => {
                PartitionReply::Offset(partition.list_offset(timestamp).await)
            }
            PartitionOp::EndOffset => PartitionReply::Offset(Ok((partition.log_end_offset(), -1))),
            PartitionOp::Sync => PartitionReply::Done(partition.sync().await),
            PartitionOp::DeleteRecords { offset } => {
                PartitionReply::Offset(partition.delete_records(offset).await.map(|low| (low, -1)))
            }
            PartitionOp::Open => PartitionReply::Done(Ok(())),
            PartitionOp::Reconfigure => {
                let Some(meta) = self.cluster.topics.get(&tp.topic) else {
                    return PartitionReply::Done(Ok(()));
                };
                let config = TopicConfig::effective(&meta.configs, &self.cluster.config);
                PartitionReply::Done(partition.set_config(config).map_err(|e| {
                    tracing::error!(partition = %tp, error = %e, "cannot apply topic configs");
                    error_code::INVALID_CONFIG
                }))
            }
            PartitionOp::Delete => unreachable!("handled above"),
        }
    }

    /// Serves this shard's inbox until shutdown.
    pub async fn serve_inbox(self: Rc<Self>, inbox: async_channel::Receiver<ShardMsg>) {
        while let Ok(msg) = inbox.recv().await {
            match msg {
                ShardMsg::Partition { tp, op, reply } => {
                    let shard = self.clone();
                    glommio::spawn_local(async move {
                        let r = shard.execute(tp, op).await;
                        let _ = reply.send(r).await;
                    })
                    .detach();
                }
                ShardMsg::Group { op, reply } => {
                    let shard = self.clone();
                    glommio::spawn_local(async move {
                        let r = shard.groups.execute(&shard, op).await;
                        let _ = reply.send(r).await;
                    })
                    .detach();
                }
                ShardMsg::TierStatus { topic, reply } => {
                    let _ = reply.send(self.tier_status(topic.as_deref())).await;
                }
                ShardMsg::Recover { plan, reply } => {
                    let shard = self.clone();
                    glommio::spawn_local(async move {
                        let r = crate::admin::recover_topic(&shard, &plan).await;
                        let _ = reply.send(r).await;
                    })
                    .detach();
                }
                ShardMsg::Shutdown => break,
            }
        }
    }

    /// Opens every partition this shard owns (at startup), so recovery runs
    /// before clients connect.
    pub async fn open_owned_partitions(&self) {
        for meta in self.cluster.topics.list() {
            for p in 0..meta.partitions {
                let tp = TopicPartition::new(meta.name.clone(), p);
                if self.cluster.owner(&tp) == self.id {
                    let _ = self.partition(&tp).await;
                }
            }
        }
    }

    /// Runs a tier pass on every open partition (uploads, remote
    /// retention) and keeps each tiered topic's `topic.json` current.
    pub async fn tier_pass(&self) {
        let Some(tier) = self.cluster.tier.clone() else {
            return;
        };
        let partitions: Vec<Rc<Partition>> = self.partitions.borrow().values().cloned().collect();
        let now = now_ms();
        // Partitions upload side by side (the uploader bounds the uploads in
        // flight across the broker); each partition runs one pass at a time.
        let passes: Vec<_> = partitions
            .iter()
            .map(|p| {
                let p = p.clone();
                let cluster = self.cluster.clone();
                glommio::spawn_local(async move {
                    if cluster.is_shutting_down() {
                        return;
                    }
                    p.tier_pass(now).await;
                    let status = p.tier_status();
                    if !status.remote_storage {
                        return;
                    }
                    // Free local space as soon as uploads allow, not only on
                    // the 5 s retention timer: the local directory stays near
                    // its target while producers run at full speed.
                    if let Err(e) = p.apply_retention(now).await {
                        tracing::error!(partition = %p.tp, error = %e, "retention failed");
                    }
                    let labels = crate::metrics::PartitionLabels {
                        topic: status.topic,
                        partition: status.partition,
                    };
                    cluster
                        .metrics
                        .tier_upload_lag
                        .get_or_create(&labels)
                        .set(status.upload_lag);
                })
            })
            .collect();
        for pass in passes {
            pass.await;
        }
        // topic.json for recovery, written by the shard owning partition 0.
        for p in partitions.iter().filter(|p| p.tp.partition == 0) {
            let Some(meta) = self.cluster.topics.get(&p.tp.topic) else {
                continue;
            };
            let config = TopicConfig::effective(&meta.configs, &self.cluster.config);
            let saved = (meta.partitions, meta.configs.clone());
            if !config.remote_storage || self.saved_topics.borrow().get(&p.tp.topic) == Some(&saved)
            {
                continue;
            }
            let manifest = shadow_index::manifest::TopicManifest::new(
                &p.tp.topic,
                meta.partitions,
                meta.configs.clone(),
            );
            match tier.save_topic(manifest).await {
                Ok(()) => {
                    self.saved_topics
                        .borrow_mut()
                        .insert(p.tp.topic.clone(), saved);
                }
                Err(e) => {
                    tracing::warn!(topic = %p.tp.topic, error = %e, "cannot write topic.json")
                }
            }
        }
    }

    /// Tier status of the open partitions of `topic` (all when `None`).
    pub fn tier_status(&self, topic: Option<&str>) -> Vec<crate::partition::TierStatus> {
        self.partitions
            .borrow()
            .values()
            .filter(|p| topic.is_none_or(|t| p.tp.topic == t))
            .map(|p| p.tier_status())
            .collect()
    }

    /// Applies retention to every open partition and snapshots producer
    /// state (bounding the log replay of the next start).
    pub async fn apply_retention(&self) {
        let partitions: Vec<Rc<Partition>> = self.partitions.borrow().values().cloned().collect();
        let now = now_ms();
        for p in partitions {
            if let Err(e) = p.apply_retention(now).await {
                tracing::error!(partition = %p.tp, error = %e, "retention failed");
            }
            p.write_snapshot();
        }
    }

    /// Closes every partition cleanly (writes the clean-shutdown markers).
    pub async fn close_all(&self) {
        let partitions: Vec<Rc<Partition>> = self
            .partitions
            .borrow_mut()
            .drain()
            .map(|(_, p)| p)
            .collect();
        for p in partitions {
            if let Err(e) = p.close().await {
                tracing::error!(partition = %p.tp, error = %e, "close failed");
            }
        }
    }
}

/// Wall-clock milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
