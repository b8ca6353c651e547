//! The group coordinator of one shard, wired to time and storage.
//!
//! `group::Coordinator` is a pure state machine; this service feeds it
//! requests and the clock, parks delayed JoinGroup / SyncGroup answers until
//! the state machine releases them, and keeps committed offsets: in memory,
//! and durably as records of the group's `__consumer_offsets` partition
//! (which this shard owns, see `shard.rs`). Offsets are loaded from that
//! partition the first time one of its groups is used after a start.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use glommio::sync::Semaphore;
use protocol::describe_groups_request::DescribeGroupsRequest;
use protocol::describe_groups_response::DescribeGroupsResponse;
use protocol::heartbeat_request::HeartbeatRequest;
use protocol::heartbeat_response::HeartbeatResponse;
use protocol::join_group_request::JoinGroupRequest;
use protocol::join_group_response::JoinGroupResponse;
use protocol::leave_group_request::LeaveGroupRequest;
use protocol::leave_group_response::LeaveGroupResponse;
use protocol::list_groups_request::ListGroupsRequest;
use protocol::list_groups_response::ListGroupsResponse;
use protocol::sync_group_request::SyncGroupRequest;
use protocol::sync_group_response::SyncGroupResponse;

use crate::error_code;
use crate::group::{Coordinator, CoordinatorConfig, Output, Responder};
use crate::log::{BatchBuilder, Compression, batch::BatchHeader};
use crate::offsets::{self, Committed, OffsetMap};
use crate::shard::{CONSUMER_OFFSETS, Cluster, PartitionOp, PartitionReply, Shard, now_ms};
use crate::topics::TopicPartition;

/// One partition's commit: topic, partition, offset, leader epoch, metadata.
pub type CommitEntry = (String, i32, i64, i32, Option<String>);

/// A group operation, run on the group's coordinator shard.
#[derive(Debug)]
pub enum GroupOp {
    Join {
        client_id: String,
        client_host: String,
        req: JoinGroupRequest,
        version: i16,
    },
    Sync {
        req: SyncGroupRequest,
        version: i16,
    },
    Heartbeat {
        req: HeartbeatRequest,
        version: i16,
    },
    Leave {
        req: LeaveGroupRequest,
        version: i16,
    },
    Describe {
        req: DescribeGroupsRequest,
        version: i16,
    },
    List {
        req: ListGroupsRequest,
        version: i16,
    },
    Delete {
        group_ids: Vec<String>,
    },
    Commit {
        group_id: String,
        generation_id: i32,
        member_id: String,
        group_instance_id: Option<String>,
        entries: Vec<CommitEntry>,
    },
    FetchOffsets {
        group_id: String,
        /// `None`: every partition with a committed offset.
        partitions: Option<Vec<(String, Vec<i32>)>>,
    },
}

/// The answer to a [`GroupOp`].
#[derive(Debug)]
pub enum GroupReply {
    Join(JoinGroupResponse),
    Sync(SyncGroupResponse),
    Heartbeat(HeartbeatResponse),
    Leave(LeaveGroupResponse),
    Describe(DescribeGroupsResponse),
    List(ListGroupsResponse),
    Deleted(Vec<(String, i16)>),
    /// Per entry: topic, partition, error code.
    Committed(Vec<(String, i32, i16)>),
    /// Topic, partition, committed offset (or None).
    Offsets(Vec<(String, i32, Option<Committed>)>),
    Error(i16),
}

/// The coordinator service of one shard.
pub struct GroupService {
    cluster: Arc<Cluster>,
    coordinator: RefCell<Coordinator>,
    waiting: RefCell<HashMap<Responder, async_channel::Sender<GroupReply>>>,
    next_responder: Cell<u64>,
    offsets: RefCell<OffsetMap>,
    loaded: RefCell<HashSet<i32>>,
    load_lock: Semaphore,
}

impl GroupService {
    pub fn new(shard_id: usize, cluster: Arc<Cluster>) -> GroupService {
        let config = CoordinatorConfig {
            initial_rebalance_delay_ms: cluster.config.group_initial_rebalance_delay_ms,
            member_id_seed: ((shard_id as u64) << 32) ^ now_ms() as u64,
            ..CoordinatorConfig::default()
        };
        GroupService {
            cluster,
            coordinator: RefCell::new(Coordinator::new(config)),
            waiting: RefCell::new(HashMap::new()),
            next_responder: Cell::new(1),
            offsets: RefCell::new(OffsetMap::new()),
            loaded: RefCell::new(HashSet::new()),
            load_lock: Semaphore::new(1),
        }
    }

    fn park(&self) -> (Responder, async_channel::Receiver<GroupReply>) {
        let id = self.next_responder.get();
        self.next_responder.set(id + 1);
        let (tx, rx) = async_channel::bounded(1);
        self.waiting.borrow_mut().insert(id, tx);
        (id, rx)
    }

    fn deliver(&self, outputs: Vec<Output>) {
        for out in outputs {
            let (responder, reply) = match out {
                Output::Join(r, resp) => (r, GroupReply::Join(resp)),
                Output::Sync(r, resp) => (r, GroupReply::Sync(resp)),
            };
            if let Some(tx) = self.waiting.borrow_mut().remove(&responder) {
                let _ = tx.try_send(reply);
            }
        }
    }

    async fn wait(
        &self,
        responder: Responder,
        rx: async_channel::Receiver<GroupReply>,
    ) -> GroupReply {
        let reply = rx
            .recv()
            .await
            .unwrap_or(GroupReply::Error(error_code::COORDINATOR_NOT_AVAILABLE));
        self.waiting.borrow_mut().remove(&responder);
        reply
    }

    /// Drives session and rebalance timeouts; runs for the shard's life.
    pub async fn run_timers(&self) {
        loop {
            if self.cluster.is_shutting_down() {
                return;
            }
            let now = now_ms();
            let outputs = self.coordinator.borrow_mut().tick(now);
            self.deliver(outputs);
            let next = self.coordinator.borrow().next_deadline();
            let sleep_ms = next.map_or(100, |d| (d - now).clamp(1, 100));
            glommio::timer::sleep(Duration::from_millis(sleep_ms as u64)).await;
        }
    }

    /// Runs one group operation.
    pub async fn execute(&self, shard: &Shard, op: GroupOp) -> GroupReply {
        let now = now_ms();
        match op {
            GroupOp::Join {
                client_id,
                client_host,
                req,
                version,
            } => {
                let (responder, rx) = self.park();
                let outputs = self.coordinator.borrow_mut().join_group(
                    now,
                    responder,
                    &client_id,
                    &client_host,
                    &req,
                    version,
                );
                self.deliver(outputs);
                self.wait(responder, rx).await
            }
            GroupOp::Sync { req, version } => {
                let (responder, rx) = self.park();
                let outputs = self
                    .coordinator
                    .borrow_mut()
                    .sync_group(now, responder, &req, version);
                self.deliver(outputs);
                self.wait(responder, rx).await
            }
            GroupOp::Heartbeat { req, version } => {
                GroupReply::Heartbeat(self.coordinator.borrow_mut().heartbeat(now, &req, version))
            }
            GroupOp::Leave { req, version } => {
                let (resp, outputs) = self
                    .coordinator
                    .borrow_mut()
                    .leave_group(now, &req, version);
                self.deliver(outputs);
                GroupReply::Leave(resp)
            }
            GroupOp::Describe { req, version } => {
                GroupReply::Describe(self.coordinator.borrow().describe_groups(&req, version))
            }
            GroupOp::List { req, version } => {
                GroupReply::List(self.coordinator.borrow().list_groups(&req, version))
            }
            GroupOp::Delete { group_ids } => {
                let results = self.coordinator.borrow_mut().delete_groups(&group_ids);
                let mut out = Vec::with_capacity(results.len());
                for (group, code) in results {
                    let code = if code == error_code::GROUP_ID_NOT_FOUND
                        && self.has_offsets(shard, &group).await
                    {
                        error_code::NONE
                    } else {
                        code
                    };
                    if code == error_code::NONE
                        && let Err(e) = self.delete_offsets(shard, &group).await
                    {
                        out.push((group, e));
                        continue;
                    }
                    out.push((group, code));
                }
                GroupReply::Deleted(out)
            }
            GroupOp::Commit {
                group_id,
                generation_id,
                member_id,
                group_instance_id,
                entries,
            } => {
                let allowed = self.coordinator.borrow().commit_allowed(
                    &group_id,
                    generation_id,
                    &member_id,
                    group_instance_id.as_deref(),
                );
                if let Err(code) = allowed {
                    return GroupReply::Committed(
                        entries.into_iter().map(|(t, p, ..)| (t, p, code)).collect(),
                    );
                }
                let code = match self.store_offsets(shard, &group_id, &entries, now).await {
                    Ok(()) => {
                        // Offsets-only groups are listed and described as Empty.
                        self.coordinator.borrow_mut().ensure_group(&group_id);
                        error_code::NONE
                    }
                    Err(code) => code,
                };
                GroupReply::Committed(entries.into_iter().map(|(t, p, ..)| (t, p, code)).collect())
            }
            GroupOp::FetchOffsets {
                group_id,
                partitions,
            } => {
                if let Err(code) = self.ensure_loaded(shard, &group_id).await {
                    return GroupReply::Error(code);
                }
                let offsets = self.offsets.borrow();
                let group = offsets.get(&group_id);
                let out = match partitions {
                    Some(list) => list
                        .into_iter()
                        .flat_map(|(topic, parts)| {
                            parts.into_iter().map(move |p| (topic.clone(), p))
                        })
                        .map(|(topic, p)| {
                            let c = group.and_then(|g| g.get(&(topic.clone(), p))).cloned();
                            (topic, p, c)
                        })
                        .collect(),
                    None => group
                        .map(|g| {
                            g.iter()
                                .map(|((t, p), c)| (t.clone(), *p, Some(c.clone())))
                                .collect()
                        })
                        .unwrap_or_default(),
                };
                GroupReply::Offsets(out)
            }
        }
    }

    fn offsets_tp(group: &str) -> TopicPartition {
        TopicPartition::new(CONSUMER_OFFSETS, Cluster::offsets_partition(group))
    }

    async fn has_offsets(&self, shard: &Shard, group: &str) -> bool {
        self.ensure_loaded(shard, group).await.is_ok() && self.offsets.borrow().contains_key(group)
    }

    /// Loads the group's `__consumer_offsets` partition once per start.
    async fn ensure_loaded(&self, shard: &Shard, group: &str) -> Result<(), i16> {
        let tp = Self::offsets_tp(group);
        if self.loaded.borrow().contains(&tp.partition) {
            return Ok(());
        }
        let _permit = self
            .load_lock
            .acquire_permit(1)
            .await
            .map_err(|_| error_code::COORDINATOR_LOAD_IN_PROGRESS)?;
        if self.loaded.borrow().contains(&tp.partition) {
            return Ok(());
        }
        let mut offset = 0i64;
        let mut loaded = 0usize;
        loop {
            let reply = shard
                .partition_op(
                    tp.clone(),
                    PartitionOp::Read {
                        offset,
                        max_bytes: 1 << 20,
                    },
                )
                .await;
            let PartitionReply::Read(r) = reply else {
                return Err(error_code::COORDINATOR_LOAD_IN_PROGRESS);
            };
            if r.error_code == error_code::OFFSET_OUT_OF_RANGE && offset < r.log_start_offset {
                offset = r.log_start_offset;
                continue;
            }
            if r.error_code != error_code::NONE {
                tracing::error!(partition = %tp, code = r.error_code, "cannot load committed offsets");
                return Err(error_code::COORDINATOR_LOAD_IN_PROGRESS);
            }
            let records = r.records.unwrap_or_default();
            if records.is_empty() {
                break;
            }
            let mut pos = 0;
            let mut map = self.offsets.borrow_mut();
            while pos < records.len() {
                let Ok(header) = BatchHeader::parse(&records[pos..]) else {
                    break;
                };
                let end = pos + header.size();
                if end > records.len() {
                    break;
                }
                for (key, value) in offsets::key_values(&records[pos + 61..end]) {
                    if let Some(key) = key {
                        offsets::apply(&mut map, key, value);
                        loaded += 1;
                    }
                }
                offset = header.last_offset() + 1;
                pos = end;
            }
            if offset >= r.high_watermark {
                break;
            }
        }
        {
            let groups: Vec<String> = self.offsets.borrow().keys().cloned().collect();
            let mut coordinator = self.coordinator.borrow_mut();
            for g in groups {
                if Cluster::offsets_partition(&g) == tp.partition {
                    coordinator.ensure_group(&g);
                }
            }
        }
        tracing::info!(partition = %tp, records = loaded, "loaded committed offsets");
        self.loaded.borrow_mut().insert(tp.partition);
        Ok(())
    }

    /// Appends commit records (acks=all) and then updates the cache.
    async fn store_offsets(
        &self,
        shard: &Shard,
        group: &str,
        entries: &[CommitEntry],
        now: i64,
    ) -> Result<(), i16> {
        self.ensure_loaded(shard, group).await?;
        let mut builder = BatchBuilder::new(Compression::None);
        let mut committed = Vec::with_capacity(entries.len());
        for (topic, partition, offset, leader_epoch, metadata) in entries {
            let c = Committed {
                offset: *offset,
                leader_epoch: *leader_epoch,
                commit_ms: now,
                metadata: metadata.clone(),
            };
            let key = offsets::encode_key(group, topic, *partition);
            builder.push(now, Some(&key), Some(&offsets::encode_value(&c)), &[]);
            committed.push(((topic.clone(), *partition), c));
        }
        self.append(shard, group, builder).await?;
        let mut map = self.offsets.borrow_mut();
        let g = map.entry(group.to_string()).or_default();
        for (k, c) in committed {
            g.insert(k, c);
        }
        Ok(())
    }

    /// Writes tombstones for every committed offset of `group`.
    async fn delete_offsets(&self, shard: &Shard, group: &str) -> Result<(), i16> {
        self.ensure_loaded(shard, group).await?;
        let keys: Vec<(String, i32)> = self
            .offsets
            .borrow()
            .get(group)
            .map(|g| g.keys().cloned().collect())
            .unwrap_or_default();
        if keys.is_empty() {
            return Ok(());
        }
        let mut builder = BatchBuilder::new(Compression::None);
        for (topic, partition) in &keys {
            builder.push(
                now_ms(),
                Some(&offsets::encode_key(group, topic, *partition)),
                None,
                &[],
            );
        }
        self.append(shard, group, builder).await?;
        self.offsets.borrow_mut().remove(group);
        Ok(())
    }

    async fn append(&self, shard: &Shard, group: &str, builder: BatchBuilder) -> Result<(), i16> {
        let batch = builder.build().map_err(|e| {
            tracing::error!(error = %e, "cannot encode offset records");
            error_code::UNKNOWN_SERVER_ERROR
        })?;
        let reply = shard
            .partition_op(
                Self::offsets_tp(group),
                PartitionOp::Produce {
                    records: Some(Bytes::from(batch)),
                    acks: -1,
                },
            )
            .await;
        match reply {
            PartitionReply::Produced(r) if r.error_code == error_code::NONE => Ok(()),
            PartitionReply::Produced(r) => {
                tracing::error!(group, code = r.error_code, message = ?r.error_message, "cannot store offsets");
                Err(error_code::COORDINATOR_NOT_AVAILABLE)
            }
            _ => Err(error_code::COORDINATOR_NOT_AVAILABLE),
        }
    }
}
