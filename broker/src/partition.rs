//! One partition as the broker sees it: its local log, the idempotent
//! producer state, and a wake-up for fetches waiting for new data.
//!
//! Owned by exactly one shard and never touched from another thread.

use std::cell::RefCell;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;
use event_listener::Event;
use glommio::sync::Semaphore;

use crate::config::TopicConfig;
use crate::error_code;
use crate::log::{
    self, Disk, LogConfig, LogError, PartitionLog, ReadOutcome, RetentionPolicy, TimestampType,
};
use crate::producer_state::{BatchRecord, ProducerStates, SequenceCheck, last_sequence};
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
        };
        partition.rebuild_producer_state().await?;
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

    pub fn log_start_offset(&self) -> i64 {
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
        let log_start_offset = self.log.log_start_offset();
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
            -2 => Ok((self.log.log_start_offset(), -1)),
            -1 => Ok((self.log.log_end_offset(), -1)),
            -3 => {
                // max timestamp (KIP-734): the batch with the largest timestamp.
                match self.log.max_timestamp().await {
                    Ok(Some((offset, ts))) => Ok((offset, ts)),
                    Ok(None) => Ok((-1, -1)),
                    Err(e) => Err(error_code::from_log_error(&e)),
                }
            }
            ts if ts >= 0 => match self.log.offset_for_timestamp(ts).await {
                Ok(Some((offset, ts))) => Ok((offset, ts)),
                Ok(None) => Ok((-1, -1)),
                Err(e) => Err(error_code::from_log_error(&e)),
            },
            _ => Err(error_code::INVALID_REQUEST),
        }
    }

    /// DeleteRecords: moves the log start to `offset` (-1 = high watermark).
    pub async fn delete_records(&self, offset: i64) -> Result<i64, i16> {
        let end = self.log.log_end_offset();
        let target = if offset == -1 { end } else { offset };
        if target < 0 || target > end {
            return Err(error_code::OFFSET_OUT_OF_RANGE);
        }
        if target <= self.log.log_start_offset() {
            return Ok(self.log.log_start_offset());
        }
        self.log
            .delete_records_before(target)
            .await
            .map_err(|e| error_code::from_log_error(&e))?;
        self.producers.borrow_mut().trim_below(target);
        Ok(self.log.log_start_offset())
    }

    /// Deletes segments beyond the topic's retention.
    pub async fn apply_retention(&self, now_ms: i64) -> Result<(), LogError> {
        let (ms, bytes) = {
            let c = self.config.borrow();
            (c.retention_ms, c.retention_bytes)
        };
        let policy = RetentionPolicy {
            retention_ms: ms,
            retention_bytes: bytes,
            deletable_end_offset: None,
        };
        self.log.apply_retention(now_ms, &policy).await?;
        let start = self.log.log_start_offset();
        self.producers.borrow_mut().trim_below(start);
        Ok(())
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
