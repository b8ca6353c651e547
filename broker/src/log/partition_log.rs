//! [`PartitionLog`]: appends, segment rolls, group commit, close.

use std::cell::{Cell, RefCell};
use std::path::{Path, PathBuf};

use glommio::sync::{Permit, Semaphore};

use super::batch::{self, BatchHeader, TimestampType, ValidatedRecords};
use super::error::LogError;
use super::file::Disk;
use super::recovery;
use super::segment::{self, Segment};
use super::{LogConfig, now_ms};

/// The clean-shutdown marker, written last by [`PartitionLog::close`].
pub(super) const CLEAN_SHUTDOWN: &str = ".clean_shutdown";

/// The local log of one partition.
///
/// Lives on one glommio executor (it is `!Send`). Every method takes `&self`
/// and may be called from several tasks of that executor at once: appends,
/// rolls and deletions are serialized by an internal lock, fdatasyncs are
/// shared (group commit), reads run alongside and see only whole batches.
pub struct PartitionLog {
    pub(super) dir: PathBuf,
    pub(super) config: RefCell<LogConfig>,
    pub(super) disk: Disk,
    pub(super) state: RefCell<LogState>,
    /// One permit: held by an append, a roll, a deletion or a close.
    pub(super) writer: Semaphore,
    /// One permit: held while an fdatasync for `sync` is in flight.
    syncer: Semaphore,
    /// Every offset below this is durable.
    durable_offset: Cell<i64>,
    health: Cell<Health>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Health {
    Open,
    Poisoned,
    Closed,
}

/// The segments and the log start; the active segment is the last one.
pub(super) struct LogState {
    pub segments: Vec<Segment>,
    pub log_start: i64,
}

impl LogState {
    pub fn active(&self) -> &Segment {
        self.segments
            .last()
            .expect("a log always has an active segment")
    }

    pub fn active_mut(&mut self) -> &mut Segment {
        self.segments
            .last_mut()
            .expect("a log always has an active segment")
    }

    pub fn log_end(&self) -> i64 {
        self.active().end_offset
    }
}

/// A sealed segment, for the uploader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedInfo {
    pub base_offset: i64,
    /// The offset after its last record.
    pub end_offset: i64,
    pub size: u64,
    pub path: PathBuf,
}

/// What an append assigned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendInfo {
    /// Offset of the first record appended.
    pub base_offset: i64,
    /// Offset of the last record appended.
    pub last_offset: i64,
    /// The time stamped on the batches with `LogAppendTime`, else `None`
    /// (`-1` on the wire).
    pub log_append_time_ms: Option<i64>,
    /// Largest max timestamp of the appended batches.
    pub max_timestamp: i64,
    pub log_start_offset: i64,
    pub batch_count: usize,
    pub record_count: i64,
    pub size_bytes: usize,
}

impl PartitionLog {
    /// Opens the log in `dir`, creating it or recovering it (see the module
    /// docs for the recovery steps).
    pub async fn open(
        dir: impl Into<PathBuf>,
        config: LogConfig,
        disk: Disk,
    ) -> Result<PartitionLog, LogError> {
        config.check()?;
        let dir = dir.into();
        let recovered = recovery::recover(&dir, &config, &disk).await?;
        let log_end = recovered.segments.last().map_or(0, |s| s.end_offset);
        Ok(PartitionLog {
            dir,
            config: RefCell::new(config),
            disk,
            state: RefCell::new(LogState {
                segments: recovered.segments,
                log_start: recovered.log_start,
            }),
            writer: Semaphore::new(1),
            syncer: Semaphore::new(1),
            // Recovery fdatasynced the active segment.
            durable_offset: Cell::new(log_end),
            health: Cell::new(Health::Open),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn config(&self) -> LogConfig {
        self.config.borrow().clone()
    }

    /// Replaces the config (AlterConfigs). Segment size and age apply from
    /// the next append, the index interval from the next segment.
    pub fn set_config(&self, config: LogConfig) -> Result<(), LogError> {
        config.check()?;
        *self.config.borrow_mut() = config;
        Ok(())
    }

    /// Validates the `records` of a produce request with this log's limits:
    /// see [`batch::validate_produce`]. Nothing is stored.
    pub fn validate(&self, records: &[u8]) -> Result<ValidatedRecords, LogError> {
        let limits = self.config.borrow().batch_limits();
        batch::validate_produce(records, &limits)
    }

    /// The first offset that can be read.
    pub fn log_start_offset(&self) -> i64 {
        self.state.borrow().log_start
    }

    /// The next offset to assign.
    pub fn log_end_offset(&self) -> i64 {
        self.state.borrow().log_end()
    }

    /// Every offset below this is durable (fdatasynced).
    pub fn durable_offset(&self) -> i64 {
        self.durable_offset.get()
    }

    /// Whether a failed write or fdatasync made the log read-only.
    pub fn is_poisoned(&self) -> bool {
        self.health.get() == Health::Poisoned
    }

    /// Number of segments, the active one included.
    pub fn segment_count(&self) -> usize {
        self.state.borrow().segments.len()
    }

    /// Total bytes of all segments.
    pub fn size_bytes(&self) -> u64 {
        self.state.borrow().segments.iter().map(|s| s.size).sum()
    }

    /// The sealed (non-active, non-empty) segments, oldest first. Their
    /// files never change again and were fdatasynced when they were sealed.
    pub fn sealed_segments(&self) -> Vec<SealedInfo> {
        let state = self.state.borrow();
        let sealed = &state.segments[..state.segments.len() - 1];
        sealed
            .iter()
            .filter(|s| s.end_offset > s.base_offset)
            .map(|s| SealedInfo {
                base_offset: s.base_offset,
                end_offset: s.end_offset,
                size: s.size,
                path: segment::log_path(&self.dir, s.base_offset),
            })
            .collect()
    }

    /// Bytes of the segments holding offsets at or after `offset`.
    pub fn bytes_from(&self, offset: i64) -> u64 {
        let state = self.state.borrow();
        state
            .segments
            .iter()
            .filter(|s| s.end_offset > offset)
            .map(|s| s.size)
            .sum()
    }

    /// Seals the active segment when it holds records and nothing was
    /// appended to it for `idle_ms`, so a quiet partition's data can be
    /// uploaded. Returns whether it rolled.
    pub async fn roll_if_idle(&self, now: i64, idle_ms: i64) -> Result<bool, LogError> {
        let idle = |log: &PartitionLog| {
            let state = log.state.borrow();
            let active = state.active();
            active.size > 0 && now - active.modified_ms >= idle_ms
        };
        if !idle(self) {
            return Ok(false);
        }
        let _permit = self.lock_writer().await?;
        self.check_writable()?;
        if !idle(self) {
            return Ok(false);
        }
        self.roll(now).await?;
        Ok(true)
    }

    pub(super) fn check_writable(&self) -> Result<(), LogError> {
        match self.health.get() {
            Health::Open => Ok(()),
            Health::Poisoned => Err(LogError::Poisoned {
                dir: self.dir.clone(),
            }),
            Health::Closed => Err(LogError::Closed {
                dir: self.dir.clone(),
            }),
        }
    }

    /// Makes the log read-only after a failed write or fsync. Never retried:
    /// after a failed fsync the kernel may have dropped the dirty pages, and
    /// a later fsync that succeeds would not bring them back.
    pub(super) fn poison(&self, cause: &LogError) {
        if self.health.get() != Health::Poisoned {
            self.health.set(Health::Poisoned);
            tracing::error!(
                dir = %self.dir.display(),
                error = %cause,
                "write or fsync failed: partition log is read-only until reopened"
            );
        }
    }

    /// Runs an I/O step whose failure must poison the log.
    pub(super) fn poison_on_error<T>(&self, result: Result<T, LogError>) -> Result<T, LogError> {
        if let Err(e) = &result {
            self.poison(e);
        }
        result
    }

    pub(super) async fn lock_writer(&self) -> Result<Permit<'_>, LogError> {
        self.writer
            .acquire_permit(1)
            .await
            .map_err(|_| LogError::Closed {
                dir: self.dir.clone(),
            })
    }

    /// Assigns offsets to validated records (see [`validate`](Self::validate))
    /// and writes them to the active segment, rolling it first when it is
    /// full or old. The data is in the page cache when this returns: call
    /// [`sync`](Self::sync) before acknowledging `acks=all`.
    pub async fn append(&self, records: ValidatedRecords) -> Result<AppendInfo, LogError> {
        self.check_writable()?;
        let (mut records, batches) = records.into_parts();
        let _permit = self.lock_writer().await?;
        self.check_writable()?;
        let now = now_ms();
        let log_append_time =
            (self.config.borrow().timestamp_type == TimestampType::LogAppendTime).then_some(now);

        let base_offset = self.log_end_offset();
        let mut next = base_offset;
        let mut headers = Vec::with_capacity(batches.len());
        for validated in &batches {
            let bytes = &mut records[validated.range.clone()];
            batch::set_base_offset(bytes, next);
            if let Some(now) = log_append_time {
                batch::set_log_append_time(bytes, &validated.header, now);
            }
            let header = BatchHeader::parse(bytes)?;
            next = header.last_offset() + 1;
            headers.push(header);
        }
        let last_offset = next - 1;
        let max_timestamp = headers.iter().map(|h| h.max_timestamp).max().unwrap_or(-1);
        let size_bytes = records.len();

        if self.should_roll(size_bytes as u64, last_offset, max_timestamp, now) {
            self.roll(now).await?;
        }
        let (file, position) = {
            let state = self.state.borrow();
            (state.active().file.clone(), state.active().size)
        };
        self.poison_on_error(file.write_all_at(records, position).await)?;

        let log_start_offset = {
            let mut state = self.state.borrow_mut();
            let active = state.active_mut();
            let mut at = position;
            for header in &headers {
                active.on_batch(at, header);
                at += header.size() as u64;
            }
            active.modified_ms = now;
            state.log_start
        };
        Ok(AppendInfo {
            base_offset,
            last_offset,
            log_append_time_ms: log_append_time,
            max_timestamp,
            log_start_offset,
            batch_count: headers.len(),
            record_count: headers.iter().map(|h| i64::from(h.records_count)).sum(),
            size_bytes,
        })
    }

    /// Whether the next append of `len` bytes ending at `last_offset` goes
    /// to a new segment: the active one is non-empty and would outgrow
    /// `segment_bytes`, spans more than `segment_ms` (measured on batch
    /// timestamps as Kafka does, wall clock when there are none), or would
    /// hold offsets or positions the indexes cannot express.
    fn should_roll(&self, len: u64, last_offset: i64, max_timestamp: i64, now: i64) -> bool {
        let state = self.state.borrow();
        let active = state.active();
        if active.size == 0 {
            return false;
        }
        let config = self.config.borrow();
        let too_big =
            active.size + len > config.segment_bytes || active.size + len > u64::from(u32::MAX);
        let age = match active.first_batch_timestamp {
            Some(first) if first >= 0 && max_timestamp >= 0 => max_timestamp - first,
            _ => now - active.created_ms,
        };
        let too_old = age > config.segment_ms;
        let offsets_overflow = last_offset - active.base_offset > i64::from(i32::MAX);
        too_big || too_old || offsets_overflow
    }

    /// Seals the active segment and starts a new one at the log end. The
    /// caller holds the writer permit. Any failure poisons the log.
    pub(super) async fn roll(&self, now: i64) -> Result<(), LogError> {
        let result = self.roll_steps(now).await;
        self.poison_on_error(result)
    }

    async fn roll_steps(&self, now: i64) -> Result<(), LogError> {
        let (file, end) = {
            let state = self.state.borrow();
            (state.active().file.clone(), state.active().end_offset)
        };
        // 1. The sealed segment is durable before anything follows it.
        file.fdatasync().await?;
        self.advance_durable(end);
        // 2. Its indexes, so a restart need not rebuild them.
        let (base, index) = {
            let state = self.state.borrow();
            (state.active().base_offset, state.active().index.clone())
        };
        segment::persist_index(&self.disk, &self.dir, base, &index).await?;
        // 3. The new segment, 4. its directory entry.
        let interval = self.config.borrow().index_interval_bytes;
        let segment = segment::create(&self.disk, &self.dir, end, interval, now).await?;
        self.disk.sync_dir(&self.dir).await?;
        self.state.borrow_mut().segments.push(segment);
        tracing::debug!(dir = %self.dir.display(), base_offset = end, "rolled segment");
        Ok(())
    }

    pub(super) fn advance_durable(&self, offset: i64) {
        if offset > self.durable_offset.get() {
            self.durable_offset.set(offset);
        }
    }

    /// Returns once every batch appended before the call is durable. Callers
    /// arriving while an fdatasync is in flight share the next one (group
    /// commit). A failed fdatasync poisons the log.
    pub async fn sync(&self) -> Result<(), LogError> {
        let target = self.log_end_offset();
        match self.health.get() {
            Health::Open => {}
            Health::Poisoned => return self.check_writable(),
            Health::Closed if self.durable_offset.get() >= target => return Ok(()),
            Health::Closed => return self.check_writable(),
        }
        if self.durable_offset.get() >= target {
            return Ok(());
        }
        let _permit = self
            .syncer
            .acquire_permit(1)
            .await
            .map_err(|_| LogError::Closed {
                dir: self.dir.clone(),
            })?;
        if self.durable_offset.get() >= target {
            // The fdatasync that was in flight, or the one just before us,
            // covered our data.
            return Ok(());
        }
        if self.health.get() == Health::Poisoned {
            return self.check_writable();
        }
        // Everything up to the active segment's end is in that file or in a
        // sealed segment (fdatasynced when rolled).
        let (file, covered) = {
            let state = self.state.borrow();
            (state.active().file.clone(), state.log_end())
        };
        self.poison_on_error(file.fdatasync().await)?;
        self.advance_durable(covered);
        Ok(())
    }

    /// Syncs, persists the active segment's indexes and writes the
    /// clean-shutdown marker. Appends fail with [`LogError::Closed`]
    /// afterwards; reads still work.
    pub async fn close(&self) -> Result<(), LogError> {
        let _permit = self.lock_writer().await?;
        match self.health.get() {
            Health::Closed => return Ok(()),
            Health::Poisoned => return self.check_writable(),
            Health::Open => {}
        }
        let result = self.close_steps().await;
        self.poison_on_error(result)?;
        self.health.set(Health::Closed);
        Ok(())
    }

    async fn close_steps(&self) -> Result<(), LogError> {
        let (file, end, base, index) = {
            let state = self.state.borrow();
            let active = state.active();
            (
                active.file.clone(),
                active.end_offset,
                active.base_offset,
                active.index.clone(),
            )
        };
        file.fdatasync().await?;
        self.advance_durable(end);
        segment::persist_index(&self.disk, &self.dir, base, &index).await?;
        let marker = self.disk.open_file(&self.dir.join(CLEAN_SHUTDOWN)).await?;
        marker.fdatasync().await?;
        self.disk.sync_dir(&self.dir).await
    }

    /// Removes the partition directory and everything in it (the partition
    /// was deleted). The log is closed afterwards.
    pub async fn delete(&self) -> Result<(), LogError> {
        let _permit = self.lock_writer().await?;
        self.health.set(Health::Closed);
        self.disk.remove_dir_all(&self.dir)?;
        if let Some(parent) = self.dir.parent() {
            self.disk.sync_dir(parent).await?;
        }
        Ok(())
    }
}
