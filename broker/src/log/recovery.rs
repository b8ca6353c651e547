//! Opening a partition directory: creating it, or recovering it after a
//! clean or unclean shutdown (steps in the module docs of `log`).

use std::path::Path;

use super::batch::{BatchHeader, HEADER_LEN};
use super::checkpoint;
use super::error::LogError;
use super::file::{Disk, DiskFile};
use super::index::SegmentIndex;
use super::partition_log::CLEAN_SHUTDOWN;
use super::segment::{
    self, Segment, load_index, log_path, parse_index_file_name, parse_segment_file_name, scan,
};
use super::{LogConfig, now_ms};

pub(super) struct Recovered {
    pub segments: Vec<Segment>,
    pub log_start: i64,
}

pub(super) async fn recover(
    dir: &Path,
    config: &LogConfig,
    disk: &Disk,
) -> Result<Recovered, LogError> {
    let now = now_ms();
    disk.create_dir_all(dir)?;
    // Always, not only when just created: a previous run may have crashed
    // before making the entry durable.
    if let Some(parent) = dir.parent() {
        disk.sync_dir(parent).await?;
    }
    let names = disk.list_files(dir)?;
    let clean = names.iter().any(|n| n == CLEAN_SHUTDOWN);
    let checkpoint = checkpoint::read(disk, dir).await?;
    let mut bases: Vec<i64> = names
        .iter()
        .filter_map(|n| parse_segment_file_name(n))
        .collect();
    bases.sort_unstable();

    for name in &names {
        let orphan_index =
            parse_index_file_name(name).is_some_and(|base| bases.binary_search(&base).is_err());
        if name.ends_with(".tmp") || orphan_index {
            disk.remove_file(&dir.join(name)).await?;
        }
    }

    let mut segments = Vec::with_capacity(bases.len().max(1));
    for (i, &base) in bases.iter().enumerate() {
        let segment = match bases.get(i + 1) {
            Some(&next) => open_sealed(disk, dir, config, base, next, now).await?,
            None => open_active(disk, dir, config, base, clean, now).await?,
        };
        segments.push(segment);
    }

    let first_base = segments.first().map_or(0, |s| s.base_offset);
    let log_start = checkpoint.unwrap_or(0).max(first_base);
    let log_end = segments.last().map(|s| s.end_offset);
    match log_end {
        None => {
            segments.push(
                segment::create(disk, dir, log_start, config.index_interval_bytes, now).await?,
            );
        }
        Some(log_end) if log_start > log_end => {
            // Records were deleted up to offsets that never became durable:
            // start over, empty, at the log start (as Kafka does).
            tracing::warn!(
                dir = %dir.display(),
                log_start,
                log_end,
                "log start checkpoint is past the recovered log end; starting empty at the log start"
            );
            for segment in segments.drain(..) {
                segment::remove_files(disk, dir, segment.base_offset).await?;
            }
            disk.sync_dir(dir).await?;
            segments.push(
                segment::create(disk, dir, log_start, config.index_interval_bytes, now).await?,
            );
        }
        Some(_) => {
            // Sealed segments wholly below the log start: a crash came
            // between the checkpoint and their deletion.
            while segments.len() > 1 && segments[0].end_offset <= log_start {
                let segment = segments.remove(0);
                segment::remove_files(disk, dir, segment.base_offset).await?;
            }
        }
    }
    if clean {
        // From now on a crash must be detectable.
        disk.remove_file(&dir.join(CLEAN_SHUTDOWN)).await?;
    }
    // Every entry is durable before anything is appended: a previous run may
    // have crashed between creating a segment and syncing the directory.
    disk.sync_dir(dir).await?;
    Ok(Recovered {
        segments,
        log_start,
    })
}

/// A sealed segment: fdatasynced before the next one was created. Its
/// indexes are loaded when sane, else rebuilt by a verifying scan, which
/// must find every byte valid.
async fn open_sealed(
    disk: &Disk,
    dir: &Path,
    config: &LogConfig,
    base: i64,
    next_base: i64,
    now: i64,
) -> Result<Segment, LogError> {
    let path = log_path(dir, base);
    let file = disk.open_file(&path).await?;
    let size = file.size().await?;
    let interval = config.index_interval_bytes;
    let loaded = load_index(disk, dir, &file, base, size, next_base, interval).await?;
    let index = match loaded {
        Some(index) => index,
        None => {
            let mut index = SegmentIndex::new(interval);
            let end = scan(&file, 0, size, base, |pos, h| {
                index.on_batch(
                    relative(base, h),
                    pos as u32,
                    h.size() as u64,
                    h.max_timestamp,
                );
            })
            .await?;
            let invalid = end.invalid.or_else(|| {
                (end.next_offset != next_base).then_some(LogError::UnexpectedBaseOffset {
                    expected: end.next_offset,
                    found: next_base,
                })
            });
            if let Some(source) = invalid {
                return Err(LogError::CorruptSegment {
                    path,
                    position: end.position,
                    source: Box::new(source),
                });
            }
            segment::persist_index(disk, dir, base, &index).await?;
            index
        }
    };
    Ok(Segment {
        base_offset: base,
        file,
        size,
        end_offset: next_base,
        index,
        first_batch_timestamp: None,
        created_ms: now,
        modified_ms: disk.modified_ms(&path)?,
    })
}

/// The active segment: verified from its start (or, after a clean shutdown,
/// from its last index entry) and truncated at the first invalid byte.
async fn open_active(
    disk: &Disk,
    dir: &Path,
    config: &LogConfig,
    base: i64,
    clean: bool,
    now: i64,
) -> Result<Segment, LogError> {
    let path = log_path(dir, base);
    let file = disk.open_file(&path).await?;
    let file_size = file.size().await?;
    let interval = config.index_interval_bytes;
    let loaded = if clean {
        let any_end = base.saturating_add(i64::from(u32::MAX) + 1);
        load_index(disk, dir, &file, base, file_size, any_end, interval).await?
    } else {
        None
    };
    let (mut index, start, expected) = match loaded {
        Some(index) => match index.last_entry() {
            Some((rel, pos)) => (index, u64::from(pos), base + i64::from(rel)),
            None => (index, 0, base),
        },
        None => (SegmentIndex::new(interval), 0, base),
    };
    let mut first_batch_timestamp = None;
    let end = scan(&file, start, file_size, expected, |pos, h| {
        if pos == 0 {
            first_batch_timestamp = Some(h.max_timestamp);
        }
        index.on_batch(
            relative(base, h),
            pos as u32,
            h.size() as u64,
            h.max_timestamp,
        );
    })
    .await?;
    if let Some(error) = &end.invalid {
        tracing::warn!(
            path = %path.display(),
            offset = end.next_offset,
            position = end.position,
            file_size,
            %error,
            "truncating the active segment at its first invalid byte"
        );
        file.truncate(end.position).await?;
    }
    // What recovery found may sit in the page cache only (after a crash of
    // the process, not of the machine): make it durable before anything is
    // appended after it.
    file.fdatasync().await?;
    if start > 0 {
        first_batch_timestamp = first_timestamp(&file).await?;
    }
    Ok(Segment {
        base_offset: base,
        file,
        size: end.position,
        end_offset: end.next_offset,
        index,
        first_batch_timestamp,
        created_ms: now,
        modified_ms: disk.modified_ms(&path)?,
    })
}

fn relative(base: i64, header: &BatchHeader) -> u32 {
    u32::try_from(header.base_offset - base).unwrap_or(u32::MAX)
}

async fn first_timestamp(file: &DiskFile) -> Result<Option<i64>, LogError> {
    let bytes = file.read_at(0, HEADER_LEN).await?;
    Ok(BatchHeader::parse(&bytes).ok().map(|h| h.max_timestamp))
}
