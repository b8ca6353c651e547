//! Moving the log start: DeleteRecords and time/size retention. Only whole
//! segments are deleted, never the active one.

use super::checkpoint;
use super::error::LogError;
use super::now_ms;
use super::partition_log::PartitionLog;
use super::segment::{self, Segment};

/// What retention may delete. `-1` means unlimited, as in Kafka.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionPolicy {
    /// Delete segments whose newest record is older than this (`retention.ms`).
    pub retention_ms: i64,
    /// Delete the oldest segments while the log is larger than this
    /// (`retention.bytes`).
    pub retention_bytes: i64,
    /// Only segments that end at or below this offset may be deleted: with
    /// tiered storage, the end of what is uploaded and listed in a durable
    /// manifest. `None`: no such fence.
    pub deletable_end_offset: Option<i64>,
}

impl Default for RetentionPolicy {
    fn default() -> RetentionPolicy {
        RetentionPolicy {
            retention_ms: 7 * 24 * 60 * 60 * 1000,
            retention_bytes: -1,
            deletable_end_offset: None,
        }
    }
}

/// What a retention pass did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionOutcome {
    pub deleted_segments: usize,
    pub deleted_bytes: u64,
    pub log_start_offset: i64,
}

impl PartitionLog {
    /// Moves the log start to `offset` (Kafka DeleteRecords): reads below it
    /// answer `BelowLogStart`, and segments wholly below it are deleted. The
    /// new log start is checkpointed durably before any file is removed.
    /// Returns the log start, which never moves back.
    pub async fn delete_records_before(&self, offset: i64) -> Result<i64, LogError> {
        let _permit = self.lock_writer().await?;
        self.check_writable()?;
        let (log_start, log_end) = {
            let state = self.state.borrow();
            (state.log_start, state.log_end())
        };
        if offset < 0 || offset > log_end {
            return Err(LogError::OffsetOutOfRange {
                offset,
                log_start,
                log_end,
            });
        }
        if offset <= log_start {
            return Ok(log_start);
        }
        self.poison_on_error(checkpoint::write(&self.disk, &self.dir, offset).await)?;
        self.state.borrow_mut().log_start = offset;
        let active_below = {
            let state = self.state.borrow();
            state.active().size > 0 && state.active().end_offset <= offset
        };
        if active_below {
            // So that the last segment with records can go too.
            self.roll(now_ms()).await?;
        }
        let count = {
            let state = self.state.borrow();
            let sealed = &state.segments[..state.segments.len() - 1];
            sealed.iter().take_while(|s| s.end_offset <= offset).count()
        };
        self.delete_oldest_segments(count).await?;
        Ok(offset)
    }

    /// Deletes the oldest sealed segments that `policy` no longer keeps:
    /// older than `retention_ms` by their newest timestamp (file time when
    /// they have none), or beyond `retention_bytes` of log, and not past
    /// `deletable_end_offset`. The log start moves to the first segment kept.
    pub async fn apply_retention(
        &self,
        now_ms: i64,
        policy: &RetentionPolicy,
    ) -> Result<RetentionOutcome, LogError> {
        let _permit = self.lock_writer().await?;
        self.check_writable()?;
        let (count, bytes) = {
            let state = self.state.borrow();
            expired_prefix(&state.segments, now_ms, policy)
        };
        if count > 0 {
            let mut state = self.state.borrow_mut();
            let first_kept = state.segments[count].base_offset;
            state.log_start = state.log_start.max(first_kept);
        }
        self.delete_oldest_segments(count).await?;
        Ok(RetentionOutcome {
            deleted_segments: count,
            deleted_bytes: bytes,
            log_start_offset: self.log_start_offset(),
        })
    }

    /// Drops the `count` oldest segments from the log, then removes their
    /// files and fsyncs the directory. Readers holding a segment's file keep
    /// reading it until they finish.
    async fn delete_oldest_segments(&self, count: usize) -> Result<(), LogError> {
        if count == 0 {
            return Ok(());
        }
        let removed: Vec<Segment> = self.state.borrow_mut().segments.drain(..count).collect();
        for segment in &removed {
            segment::remove_files(&self.disk, &self.dir, segment.base_offset).await?;
            tracing::info!(
                dir = %self.dir.display(),
                base_offset = segment.base_offset,
                end_offset = segment.end_offset,
                "deleted segment"
            );
        }
        self.disk.sync_dir(&self.dir).await
    }
}

/// How many of the oldest sealed segments retention deletes, and their
/// bytes. Time and size are applied as one prefix, as Kafka's two passes
/// would.
fn expired_prefix(segments: &[Segment], now_ms: i64, policy: &RetentionPolicy) -> (usize, u64) {
    let sealed = &segments[..segments.len().saturating_sub(1)];
    let mut total: u64 = segments.iter().map(|s| s.size).sum();
    let mut count = 0;
    let mut bytes = 0;
    for segment in sealed {
        if policy
            .deletable_end_offset
            .is_some_and(|fence| segment.end_offset > fence)
        {
            break;
        }
        let too_old = policy.retention_ms >= 0
            && now_ms.saturating_sub(segment.largest_timestamp()) > policy.retention_ms;
        let too_big = u64::try_from(policy.retention_bytes)
            .is_ok_and(|limit| total.saturating_sub(segment.size) >= limit);
        if !(too_old || too_big) {
            break;
        }
        total -= segment.size;
        bytes += segment.size;
        count += 1;
    }
    (count, bytes)
}
