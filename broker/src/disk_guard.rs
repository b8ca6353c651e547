//! Keeps produce from filling the data disk.
//!
//! A background thread reads the free space of the data directory's
//! filesystem twice a second. Below `min-free-bytes` (default: 5% of the
//! filesystem, at most 1 GiB) produce is refused with the retriable
//! `KAFKA_STORAGE_ERROR`, so clients back off and retry instead of the log
//! hitting ENOSPC mid-write (which would poison the partition). Produce
//! resumes by itself once retention, DeleteRecords or the operator frees
//! space.
//!
//! Between two readings every produce takes its size off the last reading
//! ([`DiskGuard::reserve`]), so a producer writing faster than the reserve
//! per half second still stops before the reserve: the guard never relies
//! on the reading being fresh. Produce resumes only once the reading is
//! half a reserve above it, so the state does not flap at the edge.

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
        let min_free = reserve_of(total, self.configured_min_free);
        self.min_free.store(min_free, Ordering::Relaxed);
        self.free.store(free, Ordering::Relaxed);
        let was = self.low.load(Ordering::Relaxed);
        if free < min_free {
            self.mark_low(free, min_free);
        } else if was && free >= min_free.saturating_add(min_free / 2) {
            self.low.store(false, Ordering::Relaxed);
            tracing::info!(dir = %self.dir.display(), free, "data disk has room again: produce resumed");
        }
    }

    fn mark_low(&self, free: u64, min_free: u64) {
        if !self.low.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                dir = %self.dir.display(),
                free,
                min_free,
                "data disk nearly full: refusing produce until space is freed"
            );
        }
    }

    /// The reserve in bytes: `min-free-bytes`, or its default for this
    /// filesystem.
    pub fn min_free(&self) -> u64 {
        self.min_free.load(Ordering::Relaxed)
    }

    /// Takes `bytes` off the free space for a write about to happen, or
    /// refuses (`Err(reason)`) if the disk is low or the write would take
    /// it below the reserve. The next reading replaces the estimate.
    pub fn reserve(&self, bytes: u64) -> Result<(), String> {
        if let Some(reason) = self.check() {
            return Err(reason);
        }
        let min_free = self.min_free.load(Ordering::Relaxed);
        let mut free = self.free.load(Ordering::Relaxed);
        loop {
            let after = free.saturating_sub(bytes);
            if after < min_free {
                self.mark_low(free, min_free);
                return Err(self.reason(free, min_free));
            }
            match self
                .free
                .compare_exchange_weak(free, after, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return Ok(()),
                Err(now) => free = now,
            }
        }
    }

    /// Whether produce must be refused; `Some(reason)` when it must.
    pub fn check(&self) -> Option<String> {
        if !self.low.load(Ordering::Relaxed) {
            return None;
        }
        Some(self.reason(
            self.free.load(Ordering::Relaxed),
            self.min_free.load(Ordering::Relaxed),
        ))
    }

    fn reason(&self, free: u64, min_free: u64) -> String {
        format!(
            "data disk has about {free} bytes free, at or below min-free-bytes {min_free}: produce is paused until space is freed"
        )
    }
}

/// The reserve of a filesystem of `total` bytes: `configured`, or 5% of it,
/// at most 1 GiB.
pub fn reserve_of(total: u64, configured: Option<u64>) -> u64 {
    configured.unwrap_or_else(|| (total / 20).min(1 << 30))
}

/// The reserve of the filesystem holding `dir` (0 if it cannot be read).
pub fn reserve_at(dir: &Path, configured: Option<u64>) -> u64 {
    match space(dir) {
        Ok((_, total)) => reserve_of(total, configured),
        Err(_) => configured.unwrap_or(0),
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

    #[test]
    fn writes_between_readings_count_against_the_reserve() {
        let dir = tempfile::tempdir().unwrap();
        let (free, _) = space(dir.path()).unwrap();
        // A reserve 1 GiB below the free space: 1 GiB of writes fit, not more (the margin
        // is wide so that other processes writing meanwhile do not matter).
        let guard = DiskGuard::new(dir.path(), Some(free.saturating_sub(1 << 30)));
        assert_eq!(guard.check(), None);
        for _ in 0..8 {
            guard.reserve(100 << 20).unwrap();
        }
        let refused = guard.reserve(300 << 20).unwrap_err();
        assert!(refused.contains("min-free-bytes"), "{refused}");
        // Low from now on, even for a write that would fit, until a reading says otherwise.
        assert!(guard.reserve(1).is_err());
        assert!(guard.check().is_some());
        // The next reading sees the real free space (nothing was written): not low again
        // only once half a reserve above it, which a reserve just under the free space is not.
        guard.refresh();
        assert!(
            guard.check().is_some(),
            "resumed without the hysteresis margin"
        );
        let roomy = DiskGuard::new(dir.path(), Some(0));
        roomy.reserve(1 << 20).unwrap();
    }
}
