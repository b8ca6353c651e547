//! The bounded on-disk chunk cache of the remote reader.
//!
//! Chunks (fixed-size byte ranges of remote `.log` objects) are kept as files
//! in one directory, evicted least-recently-used first when the total passes
//! `max_bytes`. A small in-memory tier in front holds the most recently used
//! chunks so a sequential reader does not reread a 16 MiB file for every
//! fetch.
//!
//! Each file is `<fnv64(key, chunk):016x>.chunk` and starts with a header:
//! `b"FLCC"`, key length `u16`, key, chunk index `u64`, data length `u64`,
//! CRC32C `u32` of the data; then the data. Files are written to `*.tmp`
//! and renamed, so a crash leaves either a whole chunk or a temp file.
//!
//! The cache survives restarts: [`ChunkCache::open`] deletes temp files and
//! rebuilds the LRU order from the remaining files' modification times. A
//! file whose header or CRC does not match on read is deleted and treated as
//! a miss, so the cache can lose data but never return wrong bytes.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use prometheus_client::metrics::gauge::Gauge;

use crate::error::{Error, Result};

const CHUNK_MAGIC: &[u8; 4] = b"FLCC";

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
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    tick: u64,
    disk: HashMap<String, (u64, u64)>,
    disk_order: BTreeMap<u64, String>,
    disk_bytes: u64,
    memory: HashMap<(String, u64), (Bytes, u64)>,
    memory_order: BTreeMap<u64, (String, u64)>,
    memory_bytes: u64,
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

    fn add_memory(&mut self, id: (String, u64), data: Bytes, max: u64) {
        if data.len() as u64 > max {
            return;
        }
        let tick = self.next_tick();
        if let Some((old, old_tick)) = self.memory.remove(&id) {
            self.memory_order.remove(&old_tick);
            self.memory_bytes -= old.len() as u64;
        }
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

    fn publish(&self) {
        if let Some(gauge) = &self.gauge {
            gauge.set(self.disk_bytes as i64);
        }
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
                state: Mutex::new(state),
            }),
        };
        let victims = cache.evict_over_budget(0);
        for victim in victims {
            let _ = std::fs::remove_file(cache.inner.dir.join(victim));
        }
        Ok(cache)
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

    /// The configured disk budget.
    pub fn max_bytes(&self) -> u64 {
        self.inner.max_bytes
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.inner.state.lock().expect("chunk cache poisoned")
    }

    /// The cached bytes of chunk `chunk` of object `key`, if held.
    pub async fn get(&self, key: &str, chunk: u64) -> Result<Option<Bytes>> {
        let id = (key.to_owned(), chunk);
        let name = file_name(key, chunk);
        {
            let mut state = self.state();
            let tick = state.next_tick();
            if let Some((data, old_tick)) = state.memory.get_mut(&id) {
                let data = data.clone();
                let previous = std::mem::replace(old_tick, tick);
                state.memory_order.remove(&previous);
                state.memory_order.insert(tick, id);
                state.touch_disk(&name);
                return Ok(Some(data));
            }
            if !state.disk.contains_key(&name) {
                return Ok(None);
            }
        }
        let path = self.inner.dir.join(&name);
        let owned_key = key.to_owned();
        let read = tokio::task::spawn_blocking(move || read_chunk_file(&path, &owned_key, chunk))
            .await
            .map_err(Error::Task)?;
        let mut state = self.state();
        match read {
            Some(data) => {
                state.touch_disk(&name);
                state.add_memory(id, data.clone(), self.inner.memory_max_bytes);
                Ok(Some(data))
            }
            None => {
                // Unreadable, torn or a hash collision: drop it, count a miss.
                if state.remove_disk(&name) {
                    let _ = std::fs::remove_file(self.inner.dir.join(&name));
                }
                state.publish();
                Ok(None)
            }
        }
    }

    /// Stores chunk `chunk` of object `key`. Writing is best effort: an I/O
    /// error is returned, but the cache stays consistent.
    pub async fn insert(&self, key: &str, chunk: u64, data: Bytes) -> Result<()> {
        self.state().add_memory(
            (key.to_owned(), chunk),
            data.clone(),
            self.inner.memory_max_bytes,
        );
        let size = chunk_file_len(key, data.len());
        if size > self.inner.max_bytes {
            return Ok(());
        }
        let name = file_name(key, chunk);
        let dir = self.inner.dir.clone();
        let owned_key = key.to_owned();
        let file = name.clone();
        tokio::task::spawn_blocking(move || {
            write_chunk_file(&dir, &file, &owned_key, chunk, &data)
        })
        .await
        .map_err(Error::Task)??;
        let victims = {
            let mut state = self.state();
            state.remove_disk(&name);
            let tick = state.next_tick();
            state.disk_bytes += size;
            state.disk.insert(name.clone(), (size, tick));
            state.disk_order.insert(tick, name);
            drop(state);
            self.evict_over_budget(0)
        };
        if !victims.is_empty() {
            let dir = self.inner.dir.clone();
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

fn file_name(key: &str, chunk: u64) -> String {
    // FNV-1a, 64 bit: a stable spread of names; the header check makes a
    // collision a miss, never a wrong answer.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in key.as_bytes().iter().chain(&chunk.to_be_bytes()) {
        hash ^= *byte as u64;
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{hash:016x}.chunk")
}

fn chunk_file_len(key: &str, data_len: usize) -> u64 {
    (4 + 2 + key.len() + 8 + 8 + 4 + data_len) as u64
}

fn write_chunk_file(dir: &Path, name: &str, key: &str, chunk: u64, data: &[u8]) -> Result<()> {
    let mut header = BytesMut::with_capacity(26 + key.len());
    header.put_slice(CHUNK_MAGIC);
    header.put_u16(key.len() as u16);
    header.put_slice(key.as_bytes());
    header.put_u64(chunk);
    header.put_u64(data.len() as u64);
    header.put_u32(crc32c::crc32c(data));
    let tmp = dir.join(format!("{name}.tmp"));
    let io = |path: &Path, source| Error::Io {
        path: path.to_owned(),
        source,
    };
    let mut file = std::fs::File::create(&tmp).map_err(|e| io(&tmp, e))?;
    file.write_all(&header)
        .and_then(|()| file.write_all(data))
        .map_err(|e| io(&tmp, e))?;
    drop(file);
    let target = dir.join(name);
    std::fs::rename(&tmp, &target).map_err(|e| io(&target, e))
}

/// The data of a chunk file if it is whole and is the chunk asked for.
fn read_chunk_file(path: &Path, key: &str, chunk: u64) -> Option<Bytes> {
    let bytes = Bytes::from(std::fs::read(path).ok()?);
    let mut b = &bytes[..];
    if b.len() < 26 || &b[..4] != CHUNK_MAGIC {
        return None;
    }
    b.advance(4);
    let key_len = b.get_u16() as usize;
    if b.len() < key_len + 20 || &b[..key_len] != key.as_bytes() {
        return None;
    }
    b.advance(key_len);
    let stored_chunk = b.get_u64();
    let len = b.get_u64();
    let crc = b.get_u32();
    if stored_chunk != chunk || b.len() as u64 != len || crc32c::crc32c(b) != crc {
        return None;
    }
    let start = bytes.len() - b.len();
    Some(bytes.slice(start..))
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
