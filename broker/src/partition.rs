//! One partition as the broker sees it: its local log, the idempotent
//! producer state, and a wake-up for fetches waiting for new data.
//!
//! Owned by exactly one shard and never touched from another thread.

use std::cell::RefCell;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use event_listener::Event;
use glommio::sync::Semaphore;

use crate::config::TopicConfig;
use crate::error_code;
use crate::fences::RetentionFences;
use crate::log::{
    self, Disk, LogConfig, LogError, PartitionLog, ReadOutcome, RetentionPolicy, TimestampType,
};
use crate::producer_state::{BatchRecord, ProducerStates, SequenceCheck, last_sequence};
use crate::tier::Tier;
use crate::topics::TopicPartition;

/// What a produce to one partition returned.
#[derive(Debug, Clone, Default)]
pub struct ProduceResult {
    pub error_code: i16,
    pub error_message: Option<String>,
    pub base_offset: i64,
    pub log_append_time_ms: i64,
    pub log_start_offset: i64,
}

impl ProduceResult {
    fn error(code: i16, message: impl Into<String>) -> Self {
        ProduceResult {
            error_code: code,
            error_message: Some(message.into()),
            base_offset: -1,
            log_append_time_ms: -1,
            log_start_offset: -1,
        }
    }
}

/// What a read of one partition returned.
#[derive(Debug, Clone, Default)]
pub struct ReadResult {
    pub error_code: i16,
    pub high_watermark: i64,
    pub log_start_offset: i64,
    pub records: Option<Bytes>,
}

/// File name of the producer-state snapshot in the partition directory.
const PRODUCER_SNAPSHOT: &str = "producer-state.json";

/// Producer state as of `end_offset` (exclusive).
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct ProducerSnapshot {
    end_offset: i64,
    producers: Vec<crate::producer_state::SnapshotEntry>,
}

/// A partition of this shard.
pub struct Partition {
    pub tp: TopicPartition,
    log: PartitionLog,
    producers: RefCell<ProducerStates>,
    config: RefCell<TopicConfig>,
    /// Held across the sequence check and the append, so two batches of one
    /// producer cannot both pass the check.
    append_lock: Semaphore,
    /// Notified after every append, for long-polling fetches.
    appended: Event,
    /// End offset of the last snapshot written.
    snapshot_end: std::cell::Cell<i64>,
    /// Tiered storage, when the broker runs it.
    tier: Option<Arc<Tier>>,
    /// What this partition has in the object store.
    remote: RefCell<RemoteState>,
    /// One tier pass (upload, remote retention) at a time.
    tier_lock: Semaphore,
    /// The Iceberg projector's committed offsets: retention stays below.
    fences: Arc<RetentionFences>,
}

/// A partition's remote tier as last seen.
#[derive(Debug, Clone, Default)]
pub struct RemoteState {
    /// The manifest was read (or found missing) since the partition opened.
    pub loaded: bool,
    /// `(start, end)`: offsets `start..end` are readable from the object
    /// store; everything below `end` is uploaded and listed durably.
    pub range: Option<(i64, i64)>,
    /// Segment objects the manifest lists, and their bytes: read from it
    /// when the partition opens, then kept up to date by uploads, retention
    /// and DeleteRecords (so they survive restarts and count every upload,
    /// whichever process made it).
    pub uploaded_segments: u64,
    pub uploaded_bytes: u64,
    /// The last upload error, until an upload succeeds.
    pub last_error: Option<String>,
    /// When the remote retention last ran (ms since the epoch).
    pub retention_ran_ms: i64,
    /// When orphaned objects were last swept (ms since the epoch).
    pub swept_ms: i64,
}

impl RemoteState {
    /// The offset below which everything is in the object store.
    pub fn end(&self) -> Option<i64> {
        self.range.map(|(_, end)| end)
    }

    /// Applies what retention or DeleteRecords removed from the manifest:
    /// the new remote start, and the segments off the counts.
    fn apply_deletion(&mut self, outcome: &shadow_index::retention::RetentionOutcome) {
        if let Some((start, _)) = &mut self.range {
            *start = outcome.remote_start_offset;
        }
        self.uploaded_segments = self
            .uploaded_segments
            .saturating_sub(outcome.deleted_segments as u64);
        self.uploaded_bytes = self.uploaded_bytes.saturating_sub(outcome.deleted_bytes);
    }
}

/// A partition's offsets across both tiers, for `floe tier status`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TierStatus {
    pub topic: String,
    pub partition: i32,
    pub remote_storage: bool,
    pub local_start: i64,
    pub remote_start: Option<i64>,
    pub remote_end: Option<i64>,
    pub high_watermark: i64,
    pub local_bytes: u64,
    pub local_segments: usize,
    pub uploaded_segments: u64,
    pub uploaded_bytes: u64,
    /// Offsets not yet in the object store.
    pub upload_lag: i64,
    pub last_error: Option<String>,
}

impl std::fmt::Debug for Partition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Partition").field("tp", &self.tp).finish()
    }
}

fn log_config(config: &TopicConfig) -> LogConfig {
    LogConfig {
        segment_bytes: config.segment_bytes,
        segment_ms: config.segment_ms,
        max_batch_bytes: config.max_message_bytes.max(log::batch::HEADER_LEN),
        timestamp_type: if config.log_append_time {
            TimestampType::LogAppendTime
        } else {
            TimestampType::CreateTime
        },
        ..LogConfig::default()
    }
}

impl Partition {
    /// Opens (recovering if needed) the partition stored under `dir`.
    pub async fn open(
        tp: TopicPartition,
        dir: PathBuf,
        config: TopicConfig,
        disk: Disk,
        tier: Option<Arc<Tier>>,
        fences: Arc<RetentionFences>,
    ) -> Result<Rc<Partition>, LogError> {
        let log = PartitionLog::open(dir, log_config(&config), disk).await?;
        let partition = Partition {
            tp,
            log,
            producers: RefCell::new(ProducerStates::default()),
            config: RefCell::new(config),
            append_lock: Semaphore::new(1),
            appended: Event::new(),
            snapshot_end: std::cell::Cell::new(-1),
            tier,
            remote: RefCell::new(RemoteState::default()),
            tier_lock: Semaphore::new(1),
            fences,
        };
        partition.rebuild_producer_state().await?;
        partition.load_remote_range().await;
        Ok(Rc::new(partition))
    }

    fn snapshot_path(&self) -> PathBuf {
        self.log.dir().join(PRODUCER_SNAPSHOT)
    }

    /// Loads the producer-state snapshot, if it is readable and does not
    /// reach beyond the recovered log.
    fn load_snapshot(&self) -> Option<ProducerSnapshot> {
        let bytes = std::fs::read(self.snapshot_path()).ok()?;
        let snap: ProducerSnapshot = match serde_json::from_slice(&bytes) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(partition = %self.tp, error = %e, "ignoring an unreadable producer-state snapshot");
                return None;
            }
        };
        let usable = snap.end_offset <= self.log.log_end_offset()
            && snap.end_offset >= self.log.log_start_offset();
        usable.then_some(snap)
    }

    /// Writes the producer state as of the durable offset: the log can never
    /// be truncated below it, so the snapshot never names a batch the log
    /// lost. Written atomically (temp + rename); a torn or stale snapshot
    /// only costs a longer replay.
    pub fn write_snapshot(&self) {
        let end_offset = self.log.durable_offset();
        if end_offset <= self.snapshot_end.get() {
            return;
        }
        let snap = ProducerSnapshot {
            end_offset,
            producers: self.producers.borrow().snapshot(end_offset),
        };
        let path = self.snapshot_path();
        let tmp = path.with_extension("tmp");
        let result = serde_json::to_vec(&snap)
            .map_err(std::io::Error::other)
            .and_then(|bytes| std::fs::write(&tmp, bytes))
            .and_then(|()| std::fs::rename(&tmp, &path));
        match result {
            Ok(()) => self.snapshot_end.set(end_offset),
            Err(e) => {
                tracing::warn!(partition = %self.tp, error = %e, "cannot write the producer-state snapshot")
            }
        }
    }

    /// Rebuilds the deduplication state of idempotent producers: the latest
    /// snapshot, then the batch headers of the log after it.
    async fn rebuild_producer_state(&self) -> Result<(), LogError> {
        let end = self.log.log_end_offset();
        let (mut offset, mut states) = match self.load_snapshot() {
            Some(snap) => (
                snap.end_offset,
                ProducerStates::from_snapshot(&snap.producers),
            ),
            None => (self.log.log_start_offset(), ProducerStates::default()),
        };
        while offset < end {
            let chunk = match self.log.read(offset, 4 << 20).await? {
                ReadOutcome::Records { bytes, .. } if !bytes.is_empty() => bytes,
                _ => break,
            };
            let mut next = offset;
            for batch in log::batch::BatchIter::new(&chunk) {
                let Ok(header) = batch else { break };
                if header.producer_id >= 0 {
                    states.record(
                        header.producer_id,
                        header.producer_epoch,
                        BatchRecord {
                            first_seq: header.base_sequence,
                            last_seq: last_sequence(header.base_sequence, header.records_count),
                            base_offset: header.base_offset,
                            last_offset: header.last_offset(),
                        },
                    );
                }
                next = header.last_offset() + 1;
            }
            if next <= offset {
                break;
            }
            offset = next;
        }
        *self.producers.borrow_mut() = states;
        Ok(())
    }

    /// The earliest readable offset: the remote start when the object
    /// store holds older data than the local log, else the local start.
    pub fn log_start_offset(&self) -> i64 {
        let local = self.log.log_start_offset();
        match self.remote.borrow().range {
            Some((start, end)) if start < local && end >= local => start,
            _ => local,
        }
    }

    /// The local log's start offset.
    pub fn local_start_offset(&self) -> i64 {
        self.log.log_start_offset()
    }

    pub fn log_end_offset(&self) -> i64 {
        self.log.log_end_offset()
    }

    pub fn set_config(&self, config: TopicConfig) -> Result<(), LogError> {
        self.log.set_config(log_config(&config))?;
        *self.config.borrow_mut() = config;
        Ok(())
    }

    /// Validates and appends the batches of one produce request; with
    /// `acks = -1` returns only once they are durable.
    pub async fn produce(&self, records: Option<Bytes>, acks: i16) -> ProduceResult {
        let Some(records) = records else {
            return ProduceResult::error(error_code::CORRUPT_MESSAGE, "no records");
        };
        let validated = match self.log.validate(&records) {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!(partition = %self.tp, error = %e, "rejected produce batch");
                return ProduceResult::error(error_code::from_log_error(&e), e.to_string());
            }
        };
        let headers: Vec<log::BatchHeader> = validated.batches().iter().map(|b| b.header).collect();
        if headers.iter().any(|h| h.is_transactional()) {
            return ProduceResult::error(
                error_code::INVALID_TXN_STATE,
                "transactional batches are not supported",
            );
        }
        let Ok(_permit) = self.append_lock.acquire_permit(1).await else {
            return ProduceResult::error(error_code::KAFKA_STORAGE_ERROR, "partition closed");
        };
        // Idempotence: every batch of the request must pass, or none is written.
        let mut duplicate = None;
        {
            let producers = self.producers.borrow();
            for h in &headers {
                let last_seq = last_sequence(h.base_sequence, h.records_count);
                match producers.check(h.producer_id, h.producer_epoch, h.base_sequence, last_seq) {
                    SequenceCheck::Append => {}
                    SequenceCheck::Duplicate(b) => duplicate = Some(b),
                    SequenceCheck::Reject(code) => {
                        return ProduceResult::error(
                            code,
                            format!(
                                "producer {} epoch {} sequence {} rejected",
                                h.producer_id, h.producer_epoch, h.base_sequence
                            ),
                        );
                    }
                }
            }
        }
        if let Some(b) = duplicate {
            // A retry of a batch already written: answer with its offset.
            // It may not be durable yet if the first attempt is still syncing.
            if acks == -1
                && let Err(e) = self.log.sync().await
            {
                return ProduceResult::error(error_code::from_log_error(&e), e.to_string());
            }
            return ProduceResult {
                error_code: error_code::NONE,
                error_message: None,
                base_offset: b.base_offset,
                log_append_time_ms: -1,
                log_start_offset: self.log.log_start_offset(),
            };
        }
        let info = match self.log.append(validated).await {
            Ok(info) => info,
            Err(e) => {
                tracing::error!(partition = %self.tp, error = %e, "append failed");
                return ProduceResult::error(error_code::from_log_error(&e), e.to_string());
            }
        };
        {
            let mut producers = self.producers.borrow_mut();
            let mut offset = info.base_offset;
            for h in &headers {
                let count = i64::from(h.last_offset_delta) + 1;
                producers.record(
                    h.producer_id,
                    h.producer_epoch,
                    BatchRecord {
                        first_seq: h.base_sequence,
                        last_seq: last_sequence(h.base_sequence, h.records_count),
                        base_offset: offset,
                        last_offset: offset + count - 1,
                    },
                );
                offset += count;
            }
        }
        drop(_permit);
        self.appended.notify(usize::MAX);
        if acks == -1
            && let Err(e) = self.log.sync().await
        {
            tracing::error!(partition = %self.tp, error = %e, "fdatasync failed");
            return ProduceResult::error(error_code::from_log_error(&e), e.to_string());
        }
        ProduceResult {
            error_code: error_code::NONE,
            error_message: None,
            base_offset: info.base_offset,
            log_append_time_ms: info.log_append_time_ms.unwrap_or(-1),
            log_start_offset: self.log.log_start_offset(),
        }
    }

    /// Makes everything appended so far durable (the second half of an
    /// `acks=all` produce whose append already returned).
    pub async fn sync(&self) -> Result<(), i16> {
        self.log.sync().await.map_err(|e| {
            tracing::error!(partition = %self.tp, error = %e, "fdatasync failed");
            error_code::from_log_error(&e)
        })
    }

    /// Reads whole batches from `offset`, at most about `max_bytes` (the first
    /// batch is returned whole even when larger, as Kafka does).
    pub async fn read(&self, offset: i64, max_bytes: usize) -> ReadResult {
        let high_watermark = self.log.log_end_offset();
        let log_start_offset = self.log_start_offset();
        let base = ReadResult {
            error_code: error_code::NONE,
            high_watermark,
            log_start_offset,
            records: None,
        };
        // At the end, or past the response budget: offsets only.
        if offset == high_watermark || max_bytes == 0 {
            if offset < log_start_offset || offset > high_watermark {
                return ReadResult {
                    error_code: error_code::OFFSET_OUT_OF_RANGE,
                    ..base
                };
            }
            return ReadResult {
                records: Some(Bytes::new()),
                ..base
            };
        }
        match self.log.read(offset, max_bytes).await {
            Ok(ReadOutcome::Records { bytes, .. }) => ReadResult {
                records: Some(bytes),
                ..base
            },
            Ok(ReadOutcome::BelowLogStart { .. }) if offset >= log_start_offset => {
                self.read_remote(offset, max_bytes, base).await
            }
            Ok(_) => ReadResult {
                error_code: error_code::OFFSET_OUT_OF_RANGE,
                ..base
            },
            Err(e) => {
                tracing::error!(partition = %self.tp, offset, error = %e, "read failed");
                ReadResult {
                    error_code: error_code::from_log_error(&e),
                    ..base
                }
            }
        }
    }

    /// Reads the partition manifest, so reads and ListOffsets see the
    /// remote tier from the first request on. A failure is logged and the
    /// next tier pass tries again.
    async fn load_remote_range(&self) {
        let Some(tier) = &self.tier else { return };
        match tier.remote_extent(&self.tp.topic, self.tp.partition).await {
            Ok(extent) => {
                let mut state = self.remote.borrow_mut();
                state.range = extent.map(|e| (e.start, e.end));
                state.uploaded_segments = extent.map_or(0, |e| e.segments);
                state.uploaded_bytes = extent.map_or(0, |e| e.bytes);
                state.loaded = true;
            }
            Err(e) => {
                tracing::warn!(partition = %self.tp, error = %e, "cannot read the partition manifest");
                self.remote.borrow_mut().last_error = Some(e.to_string());
            }
        }
    }

    /// Reads batches below the local log start back from the object store.
    async fn read_remote(&self, offset: i64, max_bytes: usize, base: ReadResult) -> ReadResult {
        let Some(tier) = &self.tier else {
            return ReadResult {
                error_code: error_code::OFFSET_OUT_OF_RANGE,
                ..base
            };
        };
        match tier
            .read(&self.tp.topic, self.tp.partition, offset, max_bytes)
            .await
        {
            Ok(slice) => ReadResult {
                records: Some(slice.bytes),
                ..base
            },
            Err(e) => {
                if e.kafka_code() == error_code::OFFSET_OUT_OF_RANGE {
                    // The remote start moved (retention): refresh it.
                    self.remote.borrow_mut().loaded = false;
                } else {
                    tracing::error!(partition = %self.tp, offset, error = %e, "remote read failed");
                }
                ReadResult {
                    error_code: e.kafka_code(),
                    ..base
                }
            }
        }
    }

    /// Waits until the log end moves past `offset` or `timeout` elapses.
    pub async fn wait_for_data(&self, offset: i64, timeout: Duration) {
        let listener = self.appended.listen();
        if self.log.log_end_offset() > offset {
            return;
        }
        futures_lite::future::or(listener, glommio::timer::sleep(timeout)).await;
    }

    /// ListOffsets: -2 earliest, -1 latest, else the first offset whose
    /// timestamp is at or after `timestamp`. Returns `(offset, timestamp)`.
    pub async fn list_offset(&self, timestamp: i64) -> Result<(i64, i64), i16> {
        match timestamp {
            -2 => Ok((self.log_start_offset(), -1)),
            -1 => Ok((self.log.log_end_offset(), -1)),
            -3 => {
                // max timestamp (KIP-734): the batch with the largest timestamp.
                match self.log.max_timestamp().await {
                    Ok(Some((offset, ts))) => Ok((offset, ts)),
                    Ok(None) => Ok((-1, -1)),
                    Err(e) => Err(error_code::from_log_error(&e)),
                }
            }
            ts if ts >= 0 => {
                if let Some(found) = self.remote_offset_for_timestamp(ts).await? {
                    return Ok(found);
                }
                self.local_offset_for_timestamp(ts).await
            }
            _ => Err(error_code::INVALID_REQUEST),
        }
    }

    /// The first remote record at or after `timestamp`, when the object
    /// store holds data older than the local log.
    async fn remote_offset_for_timestamp(&self, ts: i64) -> Result<Option<(i64, i64)>, i16> {
        let (Some(tier), Some((start, end))) = (&self.tier, self.remote.borrow().range) else {
            return Ok(None);
        };
        if start >= self.log.log_start_offset() {
            return Ok(None);
        }
        let topic = &self.tp.topic;
        let Some(batch_offset) = tier
            .offset_for_timestamp(topic, self.tp.partition, ts)
            .await
            .map_err(|e| e.kafka_code())?
        else {
            return Ok(None);
        };
        if batch_offset >= end {
            return Ok(None);
        }
        let slice = tier
            .read(topic, self.tp.partition, batch_offset, 1)
            .await
            .map_err(|e| e.kafka_code())?;
        let cap = self.log.config().max_batch_decompressed_bytes;
        Ok(log::first_record_in_batches(&slice.bytes, ts, start, cap))
    }

    async fn local_offset_for_timestamp(&self, ts: i64) -> Result<(i64, i64), i16> {
        {
            match self.log.offset_for_timestamp(ts).await {
                Ok(Some((offset, ts))) => Ok((offset, ts)),
                Ok(None) => Ok((-1, -1)),
                Err(e) => Err(error_code::from_log_error(&e)),
            }
        }
    }

    /// DeleteRecords: moves the log start to `offset` (-1 = high watermark).
    pub async fn delete_records(&self, offset: i64) -> Result<i64, i16> {
        let end = self.log.log_end_offset();
        let target = if offset == -1 { end } else { offset };
        if target < 0 || target > end {
            return Err(error_code::OFFSET_OUT_OF_RANGE);
        }
        if target <= self.log_start_offset() {
            return Ok(self.log_start_offset());
        }
        // The remote tier first: once its start has moved, nothing below
        // the target is readable from either tier.
        let remote = self.remote.borrow().range;
        if let (Some(tier), Some((start, _))) = (&self.tier, remote)
            && target > start
        {
            let outcome = tier
                .delete_records(&self.tp.topic, self.tp.partition, target)
                .await
                .map_err(|e| {
                    tracing::error!(partition = %self.tp, error = %e, "remote DeleteRecords failed");
                    e.kafka_code()
                })?;
            let mut state = self.remote.borrow_mut();
            state.apply_deletion(&outcome);
        }
        if target > self.log.log_start_offset() {
            self.log
                .delete_records_before(target)
                .await
                .map_err(|e| error_code::from_log_error(&e))?;
        }
        self.producers.borrow_mut().trim_below(target);
        Ok(self.log_start_offset())
    }

    /// Deletes local segments beyond the topic's retention. With remote
    /// storage the local targets apply (`local.retention.*`), and only
    /// segments already uploaded and listed in a durable manifest go.
    pub async fn apply_retention(&self, now_ms: i64) -> Result<(), LogError> {
        let policy = {
            let c = self.config.borrow();
            let projected = self.projection_fence();
            if c.remote_storage && self.tier.is_some() {
                let uploaded = self
                    .remote
                    .borrow()
                    .end()
                    .unwrap_or_else(|| self.log.log_start_offset());
                RetentionPolicy {
                    retention_ms: c.local_retention_ms,
                    retention_bytes: c.local_retention_bytes,
                    deletable_end_offset: Some(projected.map_or(uploaded, |p| p.min(uploaded))),
                }
            } else {
                RetentionPolicy {
                    retention_ms: c.retention_ms,
                    retention_bytes: c.retention_bytes,
                    deletable_end_offset: projected,
                }
            }
        };
        self.log.apply_retention(now_ms, &policy).await?;
        let start = self.log.log_start_offset();
        self.producers.borrow_mut().trim_below(start);
        Ok(())
    }

    /// One tier pass: learn the remote range, roll an idle active segment,
    /// upload sealed segments not yet in the object store (oldest first,
    /// stopping at the first failure, which the next pass retries), and now
    /// and then apply total retention to the remote tier. Never called from
    /// a request; produce never waits for it.
    pub async fn tier_pass(&self, now_ms: i64) {
        let Some(tier) = self.tier.clone() else {
            return;
        };
        let Ok(_pass) = self.tier_lock.try_acquire_permit(1) else {
            return; // the previous pass is still uploading
        };
        let (topic, partition) = (self.tp.topic.clone(), self.tp.partition);
        if !self.remote.borrow().loaded {
            self.load_remote_range().await;
            if !self.remote.borrow().loaded {
                return;
            }
        }
        if !self.config.borrow().remote_storage {
            return;
        }
        if let Err(e) = self
            .log
            .roll_if_idle(now_ms, tier.settings.idle_roll_ms)
            .await
        {
            tracing::error!(partition = %self.tp, error = %e, "cannot roll the idle segment");
        }
        for segment in self.log.sealed_segments() {
            let uploaded = self.remote.borrow().end().unwrap_or(i64::MIN);
            if segment.end_offset <= uploaded {
                continue;
            }
            let sealed = shadow_index::uploader::SealedSegment {
                topic: topic.clone(),
                partition,
                base_offset: segment.base_offset,
                last_offset: segment.end_offset - 1,
                epoch: 0,
                path: segment.path.clone(),
            };
            match tier.upload(sealed).await {
                Ok(outcome) => {
                    let end = outcome.next_offset();
                    let mut state = self.remote.borrow_mut();
                    let start = state.range.map_or(segment.base_offset, |(s, _)| s);
                    state.range = Some((start, end));
                    if let shadow_index::uploader::UploadOutcome::Uploaded(meta) = &outcome {
                        state.uploaded_segments += 1;
                        state.uploaded_bytes += meta.size_bytes;
                        tracing::debug!(partition = %self.tp, base = meta.base_offset, last = meta.last_offset, bytes = meta.size_bytes, "segment uploaded");
                    }
                    if state.last_error.take().is_some() {
                        tracing::info!(partition = %self.tp, base_offset = segment.base_offset, "segment uploads resumed");
                    }
                }
                Err(e) => {
                    // Retried every pass: logged when the error changes (an
                    // outage or a lost lease would otherwise log every second).
                    let message = e.to_string();
                    let mut state = self.remote.borrow_mut();
                    if state.last_error.as_deref() == Some(message.as_str()) {
                        tracing::debug!(partition = %self.tp, base_offset = segment.base_offset, error = %message, "segment upload failed again");
                    } else {
                        tracing::warn!(partition = %self.tp, base_offset = segment.base_offset, error = %message, "segment upload failed; retrying on every pass (logged again if the error changes)");
                    }
                    state.last_error = Some(message);
                    return;
                }
            }
        }
        self.remote_retention(&tier, now_ms).await;
        self.sweep_orphans(&tier, now_ms).await;
    }

    /// Deletes objects of this partition that no manifest lists and that
    /// are older than `[tier] orphan-min-age-ms` (what a crash between an
    /// upload's data and its manifest leaves), at most every tenth of that
    /// age.
    async fn sweep_orphans(&self, tier: &Tier, now_ms: i64) {
        let min_age = tier.settings.orphan_min_age_ms;
        if now_ms - self.remote.borrow().swept_ms < (min_age / 10).max(1000) {
            return;
        }
        self.remote.borrow_mut().swept_ms = now_ms;
        let age = Duration::from_millis(min_age.max(0) as u64);
        match tier
            .sweep_orphans(&self.tp.topic, self.tp.partition, age)
            .await
        {
            Ok(deleted) if !deleted.is_empty() => {
                tracing::info!(partition = %self.tp, objects = deleted.len(), "swept orphaned objects")
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(partition = %self.tp, error = %e, "orphan sweep failed"),
        }
    }

    /// Total retention (`retention.ms`, `retention.bytes`) on the remote
    /// tier, at most every 30 s.
    async fn remote_retention(&self, tier: &Tier, now_ms: i64) {
        let (range, ran) = {
            let state = self.remote.borrow();
            (state.range, state.retention_ran_ms)
        };
        let Some((_, end)) = range else { return };
        if now_ms - ran < 30_000 {
            return;
        }
        self.remote.borrow_mut().retention_ran_ms = now_ms;
        let (ms, bytes) = {
            let c = self.config.borrow();
            (c.retention_ms, c.retention_bytes)
        };
        let policy = shadow_index::retention::RetentionPolicy {
            retention_ms: (ms >= 0).then_some(ms),
            retention_bytes: u64::try_from(bytes).ok(),
            local_only_bytes: self.log.bytes_from(end),
            keep_from: self.projection_fence(),
            now_ms: Some(now_ms),
        };
        match tier
            .apply_retention(&self.tp.topic, self.tp.partition, policy)
            .await
        {
            Ok(outcome) => {
                if outcome.deleted_segments > 0 {
                    tracing::info!(partition = %self.tp, segments = outcome.deleted_segments, bytes = outcome.deleted_bytes, remote_start = outcome.remote_start_offset, "remote retention");
                }
                self.remote.borrow_mut().apply_deletion(&outcome);
            }
            Err(e) => {
                tracing::warn!(partition = %self.tp, error = %e, "remote retention failed")
            }
        }
    }

    /// With an Iceberg projection: the offset retention must stay below
    /// (nothing while the projector has not published its offsets).
    fn projection_fence(&self) -> Option<i64> {
        let projected = self.config.borrow().iceberg.mode != crate::config::IcebergMode::Disabled;
        self.fences.limit(&self.tp, projected)
    }

    /// Offsets and upload progress across both tiers.
    pub fn tier_status(&self) -> TierStatus {
        let state = self.remote.borrow().clone();
        let high_watermark = self.log.log_end_offset();
        TierStatus {
            topic: self.tp.topic.clone(),
            partition: self.tp.partition,
            remote_storage: self.config.borrow().remote_storage,
            local_start: self.log.log_start_offset(),
            remote_start: state.range.map(|(s, _)| s),
            remote_end: state.end(),
            high_watermark,
            local_bytes: self.log.size_bytes(),
            local_segments: self.log.segment_count(),
            uploaded_segments: state.uploaded_segments,
            uploaded_bytes: state.uploaded_bytes,
            upload_lag: high_watermark
                - state
                    .end()
                    .unwrap_or(self.log.log_start_offset())
                    .min(high_watermark),
            last_error: state.last_error,
        }
    }

    /// Flushes, snapshots producer state and writes the clean-shutdown marker.
    pub async fn close(&self) -> Result<(), LogError> {
        self.log.close().await?;
        self.write_snapshot();
        Ok(())
    }

    /// Removes the partition's files.
    pub async fn delete(&self) -> Result<(), LogError> {
        self.log.delete().await
    }
}
