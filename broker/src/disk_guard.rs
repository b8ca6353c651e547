//! Keeps produce from filling the data disk.
//!
//! A background thread reads the free space of the data directory's
//! filesystem twice a second. Below `min-free-bytes` (default: 5% of the
//! filesystem, at most 1 GiB) produce is refused with the retriable
//! `KAFKA_STORAGE_ERROR`, so clients back off and retry instead of the log
//! hitting ENOSPC mid-write (which would poison the partition). Produce
//! resumes by itself once retention, DeleteRecords or the operator frees
//! space.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

/// Free-space state of the data directory, shared by every shard.
#[derive(Debug)]
pub struct DiskGuard {
    dir: PathBuf,
    min_free: AtomicU64,
    configured_min_free: Option<u64>,
    free: AtomicU64,
    low: AtomicBool,
}

/// Free and total bytes of the filesystem holding `dir`.
pub fn space(dir: &Path) -> std::io::Result<(u64, u64)> {
    let st = rustix::fs::statvfs(dir)?;
    let unit = st.f_frsize.max(1);
    Ok((
        st.f_bavail.saturating_mul(unit),
        st.f_blocks.saturating_mul(unit),
    ))
}

impl DiskGuard {
    /// `min_free`: explicit reserve in bytes, or `None` for the default.
    pub fn new(dir: &Path, min_free: Option<u64>) -> Arc<DiskGuard> {
        let guard = Arc::new(DiskGuard {
            dir: dir.to_path_buf(),
            min_free: AtomicU64::new(min_free.unwrap_or(0)),
            configured_min_free: min_free,
            free: AtomicU64::new(u64::MAX),
            low: AtomicBool::new(false),
        });
        guard.refresh();
        guard
    }

    /// Starts the refresh thread; it stops when the guard is dropped by
    /// everyone else.
    pub fn start(self: &Arc<Self>) {
        let weak = Arc::downgrade(self);
        let spawned = std::thread::Builder::new()
            .name("floe-disk-guard".into())
            .spawn(move || {
                while let Some(guard) = weak.upgrade() {
                    guard.refresh();
                    drop(guard);
                    std::thread::sleep(Duration::from_millis(500));
                }
            });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start the disk space monitor");
        }
    }

    fn refresh(&self) {
        let (free, total) = match space(&self.dir) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(dir = %self.dir.display(), error = %e, "cannot read free disk space");
                return;
            }
        };
        let min_free = self
            .configured_min_free
            .unwrap_or_else(|| (total / 20).min(1 << 30));
        self.min_free.store(min_free, Ordering::Relaxed);
        self.free.store(free, Ordering::Relaxed);
        let low = free < min_free;
        let was = self.low.swap(low, Ordering::Relaxed);
        if low && !was {
            tracing::warn!(
                dir = %self.dir.display(),
                free,
                min_free,
                "data disk nearly full: refusing produce until space is freed"
            );
        } else if !low && was {
            tracing::info!(dir = %self.dir.display(), free, "data disk has room again: produce resumed");
        }
    }

    /// Whether produce must be refused; `Some(reason)` when it must.
    pub fn check(&self) -> Option<String> {
        if !self.low.load(Ordering::Relaxed) {
            return None;
        }
        Some(format!(
            "data disk has {} bytes free, below min-free-bytes {}: produce is paused until space is freed",
            self.free.load(Ordering::Relaxed),
            self.min_free.load(Ordering::Relaxed)
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_impossible_reserve_refuses_and_a_zero_reserve_allows() {
        let dir = tempfile::tempdir().unwrap();
        let strict = DiskGuard::new(dir.path(), Some(u64::MAX));
        assert!(strict.check().unwrap().contains("min-free-bytes"));
        let lax = DiskGuard::new(dir.path(), Some(0));
        assert_eq!(lax.check(), None);
        let (free, total) = space(dir.path()).unwrap();
        assert!(total >= free && total > 0);
    }
}
