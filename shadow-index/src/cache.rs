//! The bounded on-disk chunk cache of the remote reader.
//!
//! Chunks (fixed-size byte ranges of remote `.log` objects) are kept as files
//! in one directory, evicted least-recently-used first when the total passes
//! `max_bytes`. Readers ask for byte ranges ([`ChunkCache::get_range`]): only
//! the blocks holding the range are read from the file, so returning 1 MiB
//! of a 16 MiB chunk reads and checks about 1 MiB. A small in-memory tier in
//! front holds the chunks readers are in, and chunks whose file is still
//! being written are served from memory until the file is in place.
//!
//! Chunk data is written and read with direct I/O (`O_DIRECT`) where the
//! filesystem allows (unless turned off, [`ChunkCache::set_direct_io`]): caching a chunk copies nothing into the page cache
//! and reading a range back is a DMA into a reused buffer, so the cache
//! neither pushes the log's hot pages out of the page cache nor pays for
//! fresh page-cache pages (on a VM whose host reclaims idle guest memory
//! that first touch cost more than the rest of a cold read together:
//! measured in `benches/RESULTS.md`, tiered storage run 4).
//!
//! Each file is `<fnv64(key, chunk):016x>.chunk` and starts with a header:
//! `b"FLC3"`, key length `u16`, key, chunk index `u64`, data length `u64`,
//! block size `u32`, one CRC32C `u32` per block of the data, and a CRC32C
//! `u32` of all the header bytes before it; zeros up to the next 4 KiB
//! boundary; then the data. Every read checks the header (magic, key,
//! chunk, length, header CRC) and the CRC of every block it reads. Files are
//! written to `*.tmp` and renamed, so a crash leaves either a whole chunk
//! or a temp file (a torn file fails its CRCs: a miss). The padding puts
//! the data on a 4 KiB boundary for direct I/O; a chunk whose buffer is
//! not page-aligned is written through the page cache, and a filesystem
//! without direct I/O (tmpfs) gets buffered writes and reads.
//!
//! The cache survives restarts: [`ChunkCache::open`] deletes temp files and
//! rebuilds the LRU order from the remaining files' modification times. A
//! file whose header or a block CRC does not match on read is deleted and
//! treated as a miss, so the cache can lose data but never return wrong
//! bytes. (Files of the older formats fail the magic check and are dropped
//! the same way.)

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use bytes::Bytes;
use prometheus_client::metrics::gauge::Gauge;
use tokio::sync::Notify;

use crate::buffers::ChunkBuffers;
use crate::error::{Error, Result};

mod file;

pub use file::BLOCK_SIZE;
use file::{chunk_file_len, file_name, read_chunk_file, write_chunk_file};

/// Default bytes of chunk files being written at once, at most: a chunk
/// fetched while its file would pass this is served but not cached on
/// disk, so a slow disk never makes the cache hold more than this in
/// memory for writes (pending chunks are served from memory until their
/// file is in place). 8 chunks of the default 16 MiB.
pub const MAX_PENDING_BYTES: u64 = 128 << 20;

/// An object key and a chunk number.
type ChunkId = (String, u64);

/// An on-disk LRU cache of object chunks; cheap to clone.
#[derive(Clone)]
pub struct ChunkCache {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for ChunkCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChunkCache")
            .field("dir", &self.inner.dir)
            .field("max_bytes", &self.inner.max_bytes)
            .finish()
    }
}

struct Inner {
    dir: PathBuf,
    max_bytes: u64,
    memory_max_bytes: u64,
    /// Chunk files are written only while the filesystem keeps this much
    /// free besides them (0: no floor).
    min_free_bytes: AtomicU64,
    /// See [`MAX_PENDING_BYTES`].
    max_pending_bytes: AtomicU64,
    /// Chunk files written and read with `O_DIRECT` ([`ChunkCache::set_direct_io`]).
    direct_io: AtomicBool,
    /// Buffers for large range reads (the reader's).
    buffers: OnceLock<ChunkBuffers>,
    state: Mutex<State>,
    /// Woken whenever a pending write ends.
    written: Notify,
}

#[derive(Default)]
struct State {
    tick: u64,
    disk: HashMap<String, (u64, u64)>,
    disk_order: BTreeMap<u64, String>,
    disk_bytes: u64,
    memory: HashMap<ChunkId, (Bytes, u64)>,
    memory_order: BTreeMap<u64, ChunkId>,
    memory_bytes: u64,
    /// Chunks whose file is being written, with the write's generation: a
    /// write lands only if its entry is still here when it finishes.
    pending: HashMap<ChunkId, (Bytes, u64)>,
    /// Chunk files being written (pending or no longer wanted), and their
    /// bytes.
    writing: usize,
    pending_bytes: u64,
    gauge: Option<Gauge>,
}

impl State {
    fn next_tick(&mut self) -> u64 {
        self.tick += 1;
        self.tick
    }

    fn touch_disk(&mut self, name: &str) {
        let tick = self.next_tick();
        if let Some((_, old)) = self.disk.get_mut(name) {
            let previous = std::mem::replace(old, tick);
            self.disk_order.remove(&previous);
            self.disk_order.insert(tick, name.to_owned());
        }
    }

    fn remove_disk(&mut self, name: &str) -> bool {
        match self.disk.remove(name) {
            Some((size, tick)) => {
                self.disk_order.remove(&tick);
                self.disk_bytes -= size;
                true
            }
            None => false,
        }
    }

    fn remove_memory(&mut self, id: &ChunkId) {
        if let Some((old, old_tick)) = self.memory.remove(id) {
            self.memory_order.remove(&old_tick);
            self.memory_bytes -= old.len() as u64;
        }
    }

    fn add_memory(&mut self, id: ChunkId, data: Bytes, max: u64) {
        if data.len() as u64 > max {
            return;
        }
        let tick = self.next_tick();
        self.remove_memory(&id);
        self.memory_bytes += data.len() as u64;
        self.memory.insert(id.clone(), (data, tick));
        self.memory_order.insert(tick, id);
        while self.memory_bytes > max {
            let Some((_, victim)) = self.memory_order.pop_first() else {
                break;
            };
            if let Some((data, _)) = self.memory.remove(&victim) {
                self.memory_bytes -= data.len() as u64;
            }
        }
    }

    /// The chunk from the memory tier or a pending write, touching it.
    fn in_memory(&mut self, id: &ChunkId, name: &str) -> Option<Bytes> {
        let tick = self.next_tick();
        if let Some((data, old_tick)) = self.memory.get_mut(id) {
            let data = data.clone();
            let previous = std::mem::replace(old_tick, tick);
            self.memory_order.remove(&previous);
            self.memory_order.insert(tick, id.clone());
            self.touch_disk(name);
            return Some(data);
        }
        self.pending.get(id).map(|(data, _)| data.clone())
    }

    fn publish(&self) {
        if let Some(gauge) = &self.gauge {
            gauge.set(self.disk_bytes as i64);
        }
    }
}

/// Ends a write when dropped (also when the writing future is cancelled),
/// so [`ChunkCache::flush`] never waits forever.
struct WriteGuard {
    cache: ChunkCache,
    id: ChunkId,
    generation: u64,
    bytes: u64,
}

impl Drop for WriteGuard {
    fn drop(&mut self) {
        let mut state = self.cache.state();
        if state.pending.get(&self.id).map(|p| p.1) == Some(self.generation) {
            state.pending.remove(&self.id);
        }
        state.writing -= 1;
        state.pending_bytes -= self.bytes;
        drop(state);
        self.cache.inner.written.notify_waiters();
    }
}

impl ChunkCache {
    /// Opens (creating if needed) the cache directory, keeping at most
    /// `max_bytes` of chunk files (0 disables the disk tier) and up to
    /// 64 MiB (or `max_bytes` if smaller) in memory.
    pub fn open(dir: impl Into<PathBuf>, max_bytes: u64) -> Result<ChunkCache> {
        Self::open_with_memory(dir, max_bytes, max_bytes.min(64 << 20))
    }

    /// [`ChunkCache::open`] with an explicit in-memory budget.
    pub fn open_with_memory(
        dir: impl Into<PathBuf>,
        max_bytes: u64,
        memory_max_bytes: u64,
    ) -> Result<ChunkCache> {
        let dir = dir.into();
        let io = |path: &Path, source| Error::Io {
            path: path.to_owned(),
            source,
        };
        std::fs::create_dir_all(&dir).map_err(|e| io(&dir, e))?;
        let mut found = Vec::new();
        for entry in std::fs::read_dir(&dir).map_err(|e| io(&dir, e))? {
            let entry = entry.map_err(|e| io(&dir, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = entry.path();
            if name.ends_with(".tmp") {
                let _ = std::fs::remove_file(&path);
                continue;
            }
            if !name.ends_with(".chunk") {
                continue;
            }
            let meta = entry.metadata().map_err(|e| io(&path, e))?;
            let modified = meta.modified().unwrap_or(std::time::UNIX_EPOCH);
            found.push((modified, name, meta.len()));
        }
        found.sort();
        let mut state = State::default();
        for (_, name, size) in found {
            let tick = state.next_tick();
            state.disk_bytes += size;
            state.disk.insert(name.clone(), (size, tick));
            state.disk_order.insert(tick, name);
        }
        let cache = ChunkCache {
            inner: Arc::new(Inner {
                dir,
                max_bytes,
                memory_max_bytes,
                min_free_bytes: AtomicU64::new(0),
                max_pending_bytes: AtomicU64::new(MAX_PENDING_BYTES),
                direct_io: AtomicBool::new(true),
                buffers: OnceLock::new(),
                state: Mutex::new(state),
                written: Notify::new(),
            }),
        };
        let victims = cache.evict_over_budget(0);
        for victim in victims {
            let _ = std::fs::remove_file(cache.inner.dir.join(victim));
        }
        Ok(cache)
    }

    /// Writes chunk files only while the cache directory's filesystem keeps
    /// `bytes` free besides them: below that, the oldest chunk files are
    /// evicted to make room, and if that is not enough the chunk is served
    /// from memory only. The cache shares its disk with the log; this keeps
    /// remote reads from taking the space produce needs.
    pub fn set_min_free_bytes(&self, bytes: u64) {
        self.inner.min_free_bytes.store(bytes, Ordering::Relaxed);
    }

    /// Bytes of chunk files written at once, at most (default
    /// [`MAX_PENDING_BYTES`]); chunks past it are not cached on disk.
    pub fn set_max_pending_bytes(&self, bytes: u64) {
        self.inner.max_pending_bytes.store(bytes, Ordering::Relaxed);
    }

    /// Direct I/O for chunk files (the default) or, with `false`, the page
    /// cache: a chunk read again soon after it was cached then comes from
    /// memory instead of the disk, at the cost of copying every cached
    /// chunk into fresh page-cache pages and of those pages pushing the
    /// log's own out (see the module docs). Files already written are read
    /// either way.
    pub fn set_direct_io(&self, direct: bool) {
        self.inner.direct_io.store(direct, Ordering::Relaxed);
    }

    /// Reads ranges of more than 1 MiB into buffers of `buffers` (reused
    /// memory) from now on; the first pool given stays.
    pub fn use_buffers(&self, buffers: ChunkBuffers) {
        let _ = self.inner.buffers.set(buffers);
    }

    /// Reports the disk usage into `gauge` from now on.
    pub fn set_gauge(&self, gauge: Gauge) {
        let mut state = self.state();
        gauge.set(state.disk_bytes as i64);
        state.gauge = Some(gauge);
    }

    /// Bytes of chunk files on disk.
    pub fn disk_bytes(&self) -> u64 {
        self.state().disk_bytes
    }

    /// Number of chunk files on disk.
    pub fn disk_chunks(&self) -> usize {
        self.state().disk.len()
    }

    /// Chunk files being written now (each holds its chunk in memory).
    pub fn writes_in_progress(&self) -> usize {
        self.state().writing
    }

    /// The memory tier's budget.
    pub fn memory_max_bytes(&self) -> u64 {
        self.inner.memory_max_bytes
    }

    /// The configured disk budget.
    pub fn max_bytes(&self) -> u64 {
        self.inner.max_bytes
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.inner.state.lock().expect("chunk cache poisoned")
    }

    /// Whether chunk `chunk` of `key` is held (in memory, being written or
    /// on disk), without reading or checking it.
    pub fn contains(&self, key: &str, chunk: u64) -> bool {
        let id = (key.to_owned(), chunk);
        let state = self.state();
        state.memory.contains_key(&id)
            || state.pending.contains_key(&id)
            || state.disk.contains_key(&file_name(key, chunk))
    }

    /// Whether chunk `chunk` of `key` is in the memory tier or being
    /// written (served from memory, no disk read).
    pub fn in_memory(&self, key: &str, chunk: u64) -> bool {
        let id = (key.to_owned(), chunk);
        let state = self.state();
        state.memory.contains_key(&id) || state.pending.contains_key(&id)
    }

    /// The cached bytes of chunk `chunk` of object `key`, if held.
    pub async fn get(&self, key: &str, chunk: u64) -> Result<Option<Bytes>> {
        self.lookup(key, chunk, None).await
    }

    /// Bytes `range` of chunk `chunk` of object `key`, if that chunk is held
    /// and is `chunk_len` bytes long. Only the blocks holding `range` are
    /// read from disk, each checked against its CRC.
    pub async fn get_range(
        &self,
        key: &str,
        chunk: u64,
        chunk_len: u64,
        range: Range<u64>,
    ) -> Result<Option<Bytes>> {
        if range.start > range.end || range.end > chunk_len {
            return Ok(None);
        }
        self.lookup(key, chunk, Some((chunk_len, range))).await
    }

    async fn lookup(
        &self,
        key: &str,
        chunk: u64,
        want: Option<(u64, Range<u64>)>,
    ) -> Result<Option<Bytes>> {
        let id = (key.to_owned(), chunk);
        let name = file_name(key, chunk);
        {
            let mut state = self.state();
            if let Some(data) = state.in_memory(&id, &name) {
                return Ok(match want {
                    None => Some(data),
                    Some((len, range)) if data.len() as u64 == len => {
                        Some(data.slice(range.start as usize..range.end as usize))
                    }
                    Some(_) => None,
                });
            }
            if !state.disk.contains_key(&name) {
                return Ok(None);
            }
        }
        let path = self.inner.dir.join(&name);
        let owned_key = key.to_owned();
        let buffers = self.inner.buffers.get().cloned();
        let direct = self.inner.direct_io.load(Ordering::Relaxed);
        let read = tokio::task::spawn_blocking(move || {
            read_chunk_file(&path, &owned_key, chunk, want, buffers.as_ref(), direct)
        })
        .await
        .map_err(Error::Task)?;
        let mut state = self.state();
        match read {
            Some(data) => {
                state.touch_disk(&name);
                Ok(Some(data))
            }
            None => {
                // Unreadable, damaged, torn or a hash collision: drop it,
                // count a miss.
                if state.remove_disk(&name) {
                    let _ = std::fs::remove_file(self.inner.dir.join(&name));
                }
                state.publish();
                Ok(None)
            }
        }
    }

    /// Drops chunk `chunk` of `key` from every tier (a write in progress is
    /// discarded when it ends).
    pub fn remove(&self, key: &str, chunk: u64) {
        let id = (key.to_owned(), chunk);
        let name = file_name(key, chunk);
        let mut state = self.state();
        state.remove_memory(&id);
        state.pending.remove(&id);
        if state.remove_disk(&name) {
            let _ = std::fs::remove_file(self.inner.dir.join(&name));
        }
        state.publish();
    }

    /// Stores chunk `chunk` of object `key` and waits for its file. Writing
    /// is best effort: an I/O error is returned, but the cache stays
    /// consistent.
    pub async fn insert(&self, key: &str, chunk: u64, data: Bytes) -> Result<()> {
        match self.begin_insert(key, chunk, &data, true) {
            Some(guard) => self.write(data, guard).await,
            None => Ok(()),
        }
    }

    /// Stores chunk `chunk` of object `key`: it is served from memory at
    /// once and its file is written by a background task (errors are
    /// logged). [`ChunkCache::flush`] waits for such writes. Needs a Tokio
    /// runtime.
    pub fn insert_in_background(&self, key: &str, chunk: u64, data: Bytes) {
        self.store_in_background(key, chunk, data, true);
    }

    /// Writes the file of chunk `chunk` of object `key` in the background
    /// without putting it in the memory tier (a prefetched chunk, held by
    /// the reader until read); it is served from memory until the file is
    /// written.
    pub fn write_in_background(&self, key: &str, chunk: u64, data: Bytes) {
        self.store_in_background(key, chunk, data, false);
    }

    /// Puts chunk `chunk` of object `key` in the memory tier only (it is
    /// cached on disk already, or being written).
    pub fn keep_in_memory(&self, key: &str, chunk: u64, data: Bytes) {
        let max = self.inner.memory_max_bytes;
        self.state().add_memory((key.to_owned(), chunk), data, max);
    }

    fn store_in_background(&self, key: &str, chunk: u64, data: Bytes, memory: bool) {
        let Some(guard) = self.begin_insert(key, chunk, &data, memory) else {
            return;
        };
        let cache = self.clone();
        let key = key.to_owned();
        tokio::spawn(async move {
            if let Err(error) = cache.write(data, guard).await {
                tracing::warn!(%error, %key, chunk, "cannot cache remote chunk");
            }
        });
    }

    /// Waits until no chunk file is being written.
    pub async fn flush(&self) {
        loop {
            let notified = self.inner.written.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.state().writing == 0 {
                return;
            }
            notified.await;
        }
    }

    /// Puts the chunk in memory (with `memory`) and, if a file of it fits
    /// the budget and the files being written stay within their limit
    /// ([`MAX_PENDING_BYTES`] by default), marks it pending; returns the
    /// guard of its write.
    fn begin_insert(
        &self,
        key: &str,
        chunk: u64,
        data: &Bytes,
        memory: bool,
    ) -> Option<WriteGuard> {
        let id = (key.to_owned(), chunk);
        let mut state = self.state();
        if memory {
            state.add_memory(id.clone(), data.clone(), self.inner.memory_max_bytes);
        }
        if chunk_file_len(key, data.len()) > self.inner.max_bytes {
            return None;
        }
        let max_pending = self.inner.max_pending_bytes.load(Ordering::Relaxed);
        if state.pending_bytes + data.len() as u64 > max_pending {
            tracing::debug!(%key, chunk, "chunk cache writes behind: chunk not cached on disk");
            return None;
        }
        let generation = state.next_tick();
        state.pending.insert(id.clone(), (data.clone(), generation));
        state.writing += 1;
        state.pending_bytes += data.len() as u64;
        Some(WriteGuard {
            cache: self.clone(),
            id,
            generation,
            bytes: data.len() as u64,
        })
    }

    async fn write(&self, data: Bytes, guard: WriteGuard) -> Result<()> {
        let (key, chunk) = guard.id.clone();
        let generation = guard.generation;
        let name = file_name(&key, chunk);
        let size = chunk_file_len(&key, data.len());
        let dir = self.inner.dir.clone();
        if !self.make_room(size).await? {
            tracing::debug!(%key, chunk, size, "cache disk below its free-space floor: chunk kept in memory only");
            return Ok(());
        }
        let tmp = dir.join(format!("{name}.{generation}.tmp"));
        let written = {
            let tmp = tmp.clone();
            let direct = self.inner.direct_io.load(Ordering::Relaxed);
            tokio::task::spawn_blocking(move || write_chunk_file(&tmp, &key, chunk, &data, direct))
                .await
                .map_err(Error::Task)
                .and_then(|r| r)
        };
        let victims = {
            let mut state = self.state();
            let current = state.pending.get(&guard.id).map(|p| p.1) == Some(generation);
            if let Err(error) = written {
                let _ = std::fs::remove_file(&tmp);
                return Err(error);
            }
            if !current {
                // Removed (or replaced) while it was written.
                let _ = std::fs::remove_file(&tmp);
                return Ok(());
            }
            // Renamed under the lock, so the file and the index agree.
            let target = dir.join(&name);
            if let Err(source) = std::fs::rename(&tmp, &target) {
                let _ = std::fs::remove_file(&tmp);
                return Err(Error::Io {
                    path: target,
                    source,
                });
            }
            state.remove_disk(&name);
            let tick = state.next_tick();
            state.disk_bytes += size;
            state.disk.insert(name.clone(), (size, tick));
            state.disk_order.insert(tick, name);
            drop(state);
            self.evict_over_budget(0)
        };
        drop(guard);
        if !victims.is_empty() {
            tokio::task::spawn_blocking(move || {
                for victim in victims {
                    let _ = std::fs::remove_file(dir.join(victim));
                }
            })
            .await
            .map_err(Error::Task)?;
        }
        Ok(())
    }

    /// Whether a chunk file of `size` bytes may be written without taking
    /// the filesystem below the free-space floor, after evicting the oldest
    /// chunk files if that is what it takes.
    async fn make_room(&self, size: u64) -> Result<bool> {
        let floor = self.inner.min_free_bytes.load(Ordering::Relaxed);
        if floor == 0 {
            return Ok(true);
        }
        let want = floor.saturating_add(size);
        let dir = self.inner.dir.clone();
        let free = move || free_bytes(&dir);
        let Some(now) = free() else {
            return Ok(true); // unknown: let the write itself report
        };
        if now >= want {
            return Ok(true);
        }
        let victims = self.evict_bytes(want - now);
        if victims.is_empty() {
            return Ok(false);
        }
        let dir = self.inner.dir.clone();
        let after = tokio::task::spawn_blocking(move || {
            for victim in victims {
                let _ = std::fs::remove_file(dir.join(victim));
            }
            free_bytes(&dir)
        })
        .await
        .map_err(Error::Task)?;
        Ok(after.is_none_or(|after| after >= want))
    }

    /// Drops entries (oldest first) until they add up to `bytes`; returns
    /// the file names to delete.
    fn evict_bytes(&self, bytes: u64) -> Vec<String> {
        let mut state = self.state();
        let mut victims = Vec::new();
        let mut freed = 0;
        while freed < bytes {
            let Some((_, name)) = state.disk_order.pop_first() else {
                break;
            };
            if let Some((size, _)) = state.disk.remove(&name) {
                state.disk_bytes -= size;
                freed += size;
            }
            victims.push(name);
        }
        state.publish();
        victims
    }

    /// Drops entries (oldest first) until `extra` more bytes fit; returns
    /// the file names to delete.
    fn evict_over_budget(&self, extra: u64) -> Vec<String> {
        let mut state = self.state();
        let mut victims = Vec::new();
        while state.disk_bytes + extra > self.inner.max_bytes {
            let Some((_, name)) = state.disk_order.pop_first() else {
                break;
            };
            if let Some((size, _)) = state.disk.remove(&name) {
                state.disk_bytes -= size;
            }
            victims.push(name);
        }
        state.publish();
        victims
    }
}

/// Free bytes of the filesystem holding `dir`, if it can be read.
fn free_bytes(dir: &Path) -> Option<u64> {
    let st = rustix::fs::statvfs(dir).ok()?;
    Some(st.f_bavail.saturating_mul(st.f_frsize.max(1)))
}

#[cfg(test)]
mod tests {
    use super::file::{data_offset, header_len};
    use super::*;
    use crate::buffers::ALIGN;

    #[tokio::test]
    async fn a_free_space_floor_evicts_files_and_then_keeps_chunks_in_memory() {
        let dir = tempfile::tempdir().unwrap();
        let chunk = |i: u8| Bytes::from(vec![i; 1000]);
        let cache = ChunkCache::open_with_memory(dir.path(), 1 << 30, 1 << 20).unwrap();
        for i in 0..3 {
            cache.insert("k", i, chunk(i as u8)).await.unwrap();
        }
        assert_eq!(cache.disk_chunks(), 3);
        // A floor no disk can keep: the files go, new chunks stay in memory only.
        let free = free_bytes(dir.path()).unwrap();
        cache.set_min_free_bytes(free.saturating_mul(2).max(1 << 40));
        cache.insert("k", 3, chunk(3)).await.unwrap();
        assert_eq!(cache.disk_chunks(), 0, "chunk files kept below the floor");
        assert_eq!(cache.disk_bytes(), 0);
        let on_disk = std::fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(on_disk, 0, "files left in the cache directory");
        assert_eq!(cache.get("k", 3).await.unwrap().unwrap(), chunk(3));
        // A floor the disk keeps: files again.
        cache.set_min_free_bytes(1);
        cache.insert("k", 4, chunk(4)).await.unwrap();
        assert_eq!(cache.disk_chunks(), 1);
    }

    #[tokio::test]
    async fn evicts_least_recently_used_and_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let chunk = |i: u8| Bytes::from(vec![i; 1000]);
        let per_file = chunk_file_len("k", 1000);
        let cache = ChunkCache::open_with_memory(dir.path(), per_file * 3, 0).unwrap();
        for i in 0..3 {
            cache.insert("k", i, chunk(i as u8)).await.unwrap();
        }
        // Touch chunk 0 so chunk 1 is the oldest.
        assert_eq!(cache.get("k", 0).await.unwrap().unwrap(), chunk(0));
        cache.insert("k", 3, chunk(3)).await.unwrap();
        assert_eq!(cache.disk_chunks(), 3);
        assert!(cache.disk_bytes() <= cache.max_bytes());
        assert!(cache.get("k", 1).await.unwrap().is_none());
        assert!(cache.get("other", 0).await.unwrap().is_none());

        drop(cache);
        let cache = ChunkCache::open_with_memory(dir.path(), per_file * 3, 0).unwrap();
        assert_eq!(cache.disk_chunks(), 3);
        assert_eq!(cache.get("k", 3).await.unwrap().unwrap(), chunk(3));
        // A smaller budget on reopen evicts down to it.
        drop(cache);
        let cache = ChunkCache::open_with_memory(dir.path(), per_file, 0).unwrap();
        assert_eq!(cache.disk_chunks(), 1);
    }

    #[tokio::test]
    async fn a_corrupted_file_is_a_miss_not_data() {
        let dir = tempfile::tempdir().unwrap();
        let cache = ChunkCache::open_with_memory(dir.path(), 1 << 20, 0).unwrap();
        cache
            .insert("k", 0, Bytes::from(vec![7u8; 500]))
            .await
            .unwrap();
        let path = dir.path().join(file_name("k", 0));
        let mut raw = std::fs::read(&path).unwrap();
        let last = raw.len() - 1;
        raw[last] ^= 1;
        std::fs::write(&path, raw).unwrap();
        assert!(cache.get("k", 0).await.unwrap().is_none());
        assert!(!path.exists());
        assert_eq!(cache.disk_bytes(), 0);
    }

    fn pattern(len: usize) -> Bytes {
        (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
    }

    #[tokio::test]
    async fn range_reads_check_only_the_blocks_they_read() {
        let dir = tempfile::tempdir().unwrap();
        let cache = ChunkCache::open_with_memory(dir.path(), 1 << 30, 0).unwrap();
        let len = (3 * BLOCK_SIZE + 1000) as usize;
        let data = pattern(len);
        cache.insert("key", 2, data.clone()).await.unwrap();
        let n = len as u64;
        for range in [
            0..1,
            0..n,
            BLOCK_SIZE - 1..BLOCK_SIZE + 1,
            2 * BLOCK_SIZE..3 * BLOCK_SIZE,
            n - 10..n,
            5..5,
        ] {
            let got = cache.get_range("key", 2, n, range.clone()).await.unwrap();
            assert_eq!(
                got.unwrap(),
                data.slice(range.start as usize..range.end as usize),
                "{range:?}"
            );
        }
        // A range past the chunk, another chunk: misses.
        assert!(
            cache
                .get_range("key", 2, n, 0..n + 1)
                .await
                .unwrap()
                .is_none()
        );
        assert!(cache.get_range("key", 3, n, 0..1).await.unwrap().is_none());
        // A chunk of another length than expected: a miss that drops it.
        assert!(
            cache
                .get_range("key", 2, n + 1, 0..1)
                .await
                .unwrap()
                .is_none()
        );
        assert_eq!(cache.disk_chunks(), 0);
        cache.insert("key", 2, data.clone()).await.unwrap();

        // Damage in block 1 of the data.
        let path = dir.path().join(file_name("key", 2));
        let mut raw = std::fs::read(&path).unwrap();
        let data_at = data_offset(3, n) as usize;
        raw[data_at + BLOCK_SIZE as usize + 17] ^= 0x20;
        std::fs::write(&path, &raw).unwrap();
        // Reads of other blocks return right bytes; a read touching block 1
        // is a miss and drops the file.
        assert_eq!(
            cache
                .get_range("key", 2, n, 10..BLOCK_SIZE)
                .await
                .unwrap()
                .unwrap(),
            data.slice(10..BLOCK_SIZE as usize)
        );
        assert!(
            cache
                .get_range("key", 2, n, BLOCK_SIZE - 1..BLOCK_SIZE)
                .await
                .unwrap()
                .is_some()
        );
        assert!(
            cache
                .get_range("key", 2, n, BLOCK_SIZE..BLOCK_SIZE + 1)
                .await
                .unwrap()
                .is_none()
        );
        assert!(!path.exists());
        assert_eq!(cache.disk_chunks(), 0);
    }

    #[tokio::test]
    async fn damaged_headers_and_old_files_are_misses() {
        let dir = tempfile::tempdir().unwrap();
        let cache = ChunkCache::open_with_memory(dir.path(), 1 << 30, 0).unwrap();
        let data = pattern(2 * BLOCK_SIZE as usize);
        let n = data.len() as u64;
        let path = dir.path().join(file_name("k", 0));
        let header = header_len(1, n) as usize;
        // A byte of the CRC table, of the header CRC, of the length; a
        // truncated file; a file of the older format (magic FLCC).
        for at in [header - 9, header - 1, 4 + 2 + 1 + 8 + 3] {
            cache.insert("k", 0, data.clone()).await.unwrap();
            let mut raw = std::fs::read(&path).unwrap();
            raw[at] ^= 1;
            std::fs::write(&path, &raw).unwrap();
            assert!(
                cache.get_range("k", 0, n, 0..1).await.unwrap().is_none(),
                "{at}"
            );
            assert!(!path.exists());
        }
        cache.insert("k", 0, data.clone()).await.unwrap();
        let raw = std::fs::read(&path).unwrap();
        std::fs::write(&path, &raw[..raw.len() - 1]).unwrap();
        assert!(cache.get_range("k", 0, n, 0..1).await.unwrap().is_none());
        cache.insert("k", 0, data.clone()).await.unwrap();
        let mut raw = std::fs::read(&path).unwrap();
        raw[..4].copy_from_slice(b"FLCC");
        std::fs::write(&path, &raw).unwrap();
        assert!(cache.get("k", 0).await.unwrap().is_none());
        assert_eq!(cache.disk_chunks(), 0);
    }

    #[tokio::test]
    async fn aligned_chunks_are_written_direct_and_read_back_whole() {
        let dir = tempfile::tempdir().unwrap();
        let cache = ChunkCache::open_with_memory(dir.path(), 1 << 30, 0).unwrap();
        let pool = crate::buffers::ChunkBuffers::new(1 << 20, 1);
        // A whole number of 4 KiB blocks, and one with a partial last block.
        for (chunk, len) in [(0u64, 3 * ALIGN), (1, 2 * BLOCK_SIZE as usize + 777)] {
            let data = pattern(len);
            let mut buffer = pool.take(len);
            assert!(buffer.extend(&data));
            let aligned = buffer.freeze();
            assert_eq!(aligned.as_ptr().align_offset(ALIGN), 0);
            cache.insert("key", chunk, aligned).await.unwrap();
            let path = dir.path().join(file_name("key", chunk));
            let on_disk = std::fs::metadata(&path).unwrap().len();
            assert_eq!(on_disk, chunk_file_len("key", len), "no padding left");
            let n = len as u64;
            for range in [0..n, 1..n - 1, n - 1..n] {
                let got = cache.get_range("key", chunk, n, range.clone()).await;
                assert_eq!(
                    got.unwrap().unwrap(),
                    data.slice(range.start as usize..range.end as usize)
                );
            }
            assert_eq!(cache.get("key", chunk).await.unwrap().unwrap(), data);
        }
    }

    #[tokio::test]
    async fn buffered_mode_round_trips_and_reads_files_written_direct() {
        let dir = tempfile::tempdir().unwrap();
        let cache = ChunkCache::open_with_memory(dir.path(), 1 << 30, 0).unwrap();
        let pool = crate::buffers::ChunkBuffers::new(1 << 20, 2);
        let len = 2 * BLOCK_SIZE as usize + 777;
        let aligned = |seed: usize| {
            let data: Bytes = pattern(len + seed).slice(seed..);
            let mut buffer = pool.take(len);
            assert!(buffer.extend(&data));
            (buffer.freeze(), data)
        };
        // Chunk 0 written direct, chunk 1 buffered; both read back either way.
        let (a0, d0) = aligned(0);
        cache.insert("key", 0, a0).await.unwrap();
        cache.set_direct_io(false);
        let (a1, d1) = aligned(5);
        cache.insert("key", 1, a1).await.unwrap();
        for direct in [false, true] {
            cache.set_direct_io(direct);
            for (chunk, data) in [(0u64, &d0), (1, &d1)] {
                let n = len as u64;
                let path = dir.path().join(file_name("key", chunk));
                assert_eq!(
                    std::fs::metadata(&path).unwrap().len(),
                    chunk_file_len("key", len)
                );
                for range in [0..n, 1..n - 1, BLOCK_SIZE..BLOCK_SIZE + 1] {
                    let got = cache.get_range("key", chunk, n, range.clone()).await;
                    assert_eq!(
                        got.unwrap().unwrap(),
                        data.slice(range.start as usize..range.end as usize),
                        "chunk {chunk}, direct {direct}"
                    );
                }
            }
        }
    }

    // One thread: the writes cannot end between the inserts.
    #[tokio::test]
    async fn writes_past_the_pending_limit_are_served_but_not_cached_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        let cache = ChunkCache::open_with_memory(dir.path(), 1 << 30, 1 << 20).unwrap();
        cache.set_max_pending_bytes(2_500);
        let chunk = |i: u8| Bytes::from(vec![i; 1000]);
        // Three chunks at once: the third would pass 2,500 bytes of writes.
        for i in 0..3 {
            cache.insert_in_background("k", i, chunk(i as u8));
        }
        assert_eq!(cache.writes_in_progress(), 2);
        for i in 0..3 {
            assert_eq!(cache.get("k", i).await.unwrap().unwrap(), chunk(i as u8));
        }
        cache.flush().await;
        assert_eq!(cache.writes_in_progress(), 0);
        assert_eq!(cache.disk_chunks(), 2);
        // Once the writes are done, new ones are cached again.
        cache.insert_in_background("k", 3, chunk(3));
        cache.flush().await;
        assert_eq!(cache.disk_chunks(), 3);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn background_inserts_are_served_at_once_and_flushed() {
        let dir = tempfile::tempdir().unwrap();
        let cache = ChunkCache::open_with_memory(dir.path(), 1 << 30, 0).unwrap();
        let data = pattern(100_000);
        let n = data.len() as u64;
        cache.insert_in_background("k", 0, data.clone());
        // No memory tier: served from the pending write until it lands.
        assert!(cache.contains("k", 0));
        assert_eq!(
            cache.get_range("k", 0, n, 5..9).await.unwrap().unwrap(),
            data.slice(5..9)
        );
        cache.flush().await;
        assert_eq!(cache.disk_chunks(), 1);
        assert_eq!(cache.get("k", 0).await.unwrap().unwrap(), data);

        // Removed while being written: the file never appears.
        cache.insert_in_background("k", 1, data.clone());
        cache.remove("k", 1);
        assert!(!cache.contains("k", 1));
        cache.flush().await;
        assert_eq!(cache.disk_chunks(), 1);
        assert!(!dir.path().join(file_name("k", 1)).exists());
        cache.remove("k", 0);
        assert_eq!((cache.disk_chunks(), cache.disk_bytes()), (0, 0));
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert!(left.is_empty(), "{left:?}");
    }
}
