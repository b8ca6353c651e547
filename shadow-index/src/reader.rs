//! Serving reads from the remote tier.
//!
//! [`RemoteReader::read`] goes offset -> manifest (cached in the
//! [`Remote`]) -> segment -> `.index` object (cached in memory) -> the byte
//! position of the indexed span -> chunks of the `.log` object (ranged GETs
//! of `chunk_size` bytes, kept in the [`ChunkCache`]) -> whole batches, each
//! CRC-checked before it is returned. A missing object or a batch that fails
//! its checks is an error naming the segment's offset range; a truncated or
//! failed GET is retried and then reported as a retriable error. Wrong bytes
//! are never returned.
//!
//! When a read ends in the second half of a chunk, the next chunk (of the
//! same segment, or the first chunk of the next one) is fetched by a
//! background task, at most `max_prefetches` at once, so a sequential
//! consumer finds it in the cache.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use tokio::sync::Semaphore;

use crate::cache::ChunkCache;
use crate::error::{Error, Result};
use crate::index::{BATCH_HEADER_LEN, BatchHeader, RemoteIndex};
use crate::manifest::{PartitionManifest, SegmentMeta};
use crate::retry::retry;
use crate::store::Remote;

/// Default chunk size of ranged GETs: 16 MiB.
pub const DEFAULT_CHUNK_SIZE: u64 = 16 << 20;

/// Reader settings.
#[derive(Debug, Clone)]
pub struct ReaderConfig {
    /// Bytes per ranged GET and per cache entry.
    pub chunk_size: u64,
    /// Prefetch the next chunk for sequential readers.
    pub prefetch: bool,
    /// Prefetch tasks running at once.
    pub max_prefetches: usize,
    /// Parsed `.index` objects kept in memory.
    pub index_cache_entries: usize,
}

impl Default for ReaderConfig {
    fn default() -> Self {
        ReaderConfig {
            chunk_size: DEFAULT_CHUNK_SIZE,
            prefetch: true,
            max_prefetches: 4,
            index_cache_entries: 1024,
        }
    }
}

/// Batches read from the remote tier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteSlice {
    /// Whole, CRC-checked batches; the first holds the requested offset (or,
    /// when that offset fell in a gap, is the first batch after it).
    pub bytes: Bytes,
    /// Base offset of the first batch.
    pub base_offset: i64,
    /// The offset after the last batch returned: where the next read starts.
    pub next_offset: i64,
    /// The remote tier's start offset when the read was served.
    pub remote_start: i64,
    /// The remote tier's end (offset after the last uploaded one).
    pub remote_end: i64,
}

/// Reads batches back from the remote tier; cheap to clone.
#[derive(Clone)]
pub struct RemoteReader {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for RemoteReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteReader")
            .field("remote", &self.inner.remote)
            .field("cache", &self.inner.cache)
            .finish()
    }
}

struct Inner {
    remote: Remote,
    cache: ChunkCache,
    config: ReaderConfig,
    indexes: Mutex<IndexCache>,
    fetches: Mutex<HashMap<ChunkId, Arc<tokio::sync::Mutex<()>>>>,
    prefetches: Arc<Semaphore>,
}

/// An object key and a chunk number.
type ChunkId = (String, u64);

#[derive(Default)]
struct IndexCache {
    map: HashMap<String, Arc<RemoteIndex>>,
    order: VecDeque<String>,
}

/// The place of one segment object, for reads and error messages.
#[derive(Debug, Clone)]
struct Located {
    topic: String,
    partition: i32,
    meta: SegmentMeta,
    key: String,
}

impl Located {
    fn corrupt(&self, reason: String) -> Error {
        Error::CorruptObject {
            topic: self.topic.clone(),
            partition: self.partition,
            base_offset: self.meta.base_offset,
            last_offset: self.meta.last_offset,
            key: self.key.clone(),
            reason,
        }
    }

    fn missing(&self, key: &str) -> Error {
        Error::MissingObject {
            topic: self.topic.clone(),
            partition: self.partition,
            base_offset: self.meta.base_offset,
            last_offset: self.meta.last_offset,
            key: key.to_owned(),
        }
    }
}

impl RemoteReader {
    /// A reader with the default [`ReaderConfig`] (16 MiB chunks).
    pub fn new(remote: Remote, cache: ChunkCache) -> RemoteReader {
        RemoteReader::with_config(remote, cache, ReaderConfig::default())
    }

    /// A reader with explicit settings.
    pub fn with_config(remote: Remote, cache: ChunkCache, config: ReaderConfig) -> RemoteReader {
        cache.set_gauge(remote.metrics().cache_bytes.clone());
        let prefetches = Arc::new(Semaphore::new(config.max_prefetches));
        RemoteReader {
            inner: Arc::new(Inner {
                remote,
                cache,
                config,
                indexes: Mutex::new(IndexCache::default()),
                fetches: Mutex::new(HashMap::new()),
                prefetches,
            }),
        }
    }

    /// Waits until no prefetch task is running (for shutdown and tests).
    pub async fn wait_for_prefetches(&self) {
        let all = u32::try_from(self.inner.config.max_prefetches).unwrap_or(u32::MAX);
        if all > 0 {
            let _ = self.inner.prefetches.acquire_many(all).await;
        }
    }

    /// The remote this reader reads from.
    pub fn remote(&self) -> &Remote {
        &self.inner.remote
    }

    /// The chunk cache.
    pub fn cache(&self) -> &ChunkCache {
        &self.inner.cache
    }

    /// `(remote start, remote end)` of a partition: the earliest readable
    /// offset and the offset after the last uploaded one. `None` when the
    /// partition has nothing remote.
    pub async fn remote_range(&self, topic: &str, partition: i32) -> Result<Option<(i64, i64)>> {
        Ok(self
            .inner
            .remote
            .manifest(topic, partition)
            .await?
            .map(|m| (m.remote_start_offset, m.next_offset())))
    }

    /// The earliest offset readable from the remote tier.
    pub async fn remote_start(&self, topic: &str, partition: i32) -> Result<Option<i64>> {
        Ok(self.remote_range(topic, partition).await?.map(|r| r.0))
    }

    /// Reads whole batches starting with the one that holds `offset`, up to
    /// about `max_bytes` (at least one batch is returned even if larger;
    /// reads stop at the end of a segment). Errors: [`Error::OffsetOutOfRange`]
    /// when `offset` is below the remote start or at/after the remote end,
    /// [`Error::NoRemoteData`], [`Error::MissingObject`],
    /// [`Error::CorruptObject`], or a retriable store error.
    pub async fn read(
        &self,
        topic: &str,
        partition: i32,
        offset: i64,
        max_bytes: usize,
    ) -> Result<RemoteSlice> {
        let started = Instant::now();
        let manifest = self.manifest_covering(topic, partition, offset).await?;
        let meta = manifest
            .segment_for(offset)
            .cloned()
            .ok_or_else(|| out_of_range(&manifest, offset))?;
        let seg = Located {
            topic: topic.to_owned(),
            partition,
            key: meta.name().log_key(topic, partition),
            meta,
        };
        let index = self.index(&seg).await?;
        let mut position = if offset <= seg.meta.base_offset {
            0
        } else {
            index.position_for(offset)
        };
        let mut chunks = Chunks::default();
        let mut first: Option<(u64, i64)> = None;
        let mut end = position;
        let mut previous_last: Option<i64> = None;
        let mut next_offset = offset;
        while position < seg.meta.size_bytes {
            let header = self.header_at(&seg, &mut chunks, position).await?;
            if let Some(prev) = previous_last
                && header.base_offset <= prev
            {
                return Err(seg.corrupt(format!(
                    "batch at byte {position} has base offset {} after {prev}",
                    header.base_offset
                )));
            }
            previous_last = Some(header.last_offset());
            let size = header.size();
            if header.last_offset() < offset {
                position += size;
                continue;
            }
            if let Some((start, _)) = first
                && (end - start) + size > max_bytes as u64
            {
                break;
            }
            let batch = self.bytes_at(&seg, &mut chunks, position, size).await?;
            check_batch(&seg, &batch, &header, position)?;
            first.get_or_insert((position, header.base_offset));
            position += size;
            end = position;
            next_offset = header.last_offset() + 1;
            if end - first.map_or(end, |f| f.0) >= max_bytes as u64 {
                break;
            }
        }
        let Some((start, base_offset)) = first else {
            return Err(seg.corrupt(format!("no batch holds offset {offset}")));
        };
        let bytes = self.bytes_at(&seg, &mut chunks, start, end - start).await?;
        let metrics = self.inner.remote.metrics();
        metrics.read_bytes.inc_by(bytes.len() as u64);
        metrics
            .read_seconds
            .observe(started.elapsed().as_secs_f64());
        self.maybe_prefetch(&manifest, &seg, end);
        Ok(RemoteSlice {
            bytes,
            base_offset,
            next_offset,
            remote_start: manifest.remote_start_offset,
            remote_end: manifest.next_offset(),
        })
    }

    /// The base offset of the first remote batch holding a record with a
    /// timestamp at or after `timestamp` (at or after the remote start).
    /// Batch granularity: the broker may refine within the batch. `None`
    /// when no remote batch is that recent.
    pub async fn offset_for_timestamp(
        &self,
        topic: &str,
        partition: i32,
        timestamp: i64,
    ) -> Result<Option<i64>> {
        let Some(manifest) = self.inner.remote.manifest(topic, partition).await? else {
            return Ok(None);
        };
        for meta in manifest.live_segments() {
            if meta.max_timestamp < timestamp {
                continue;
            }
            let seg = Located {
                topic: topic.to_owned(),
                partition,
                key: meta.name().log_key(topic, partition),
                meta: meta.clone(),
            };
            let index = self.index(&seg).await?;
            let Some((mut position, span_end)) = index.span_for_timestamp(timestamp) else {
                continue;
            };
            let end = span_end.unwrap_or(meta.size_bytes).min(meta.size_bytes);
            let mut chunks = Chunks::default();
            while position < end {
                let header = self.header_at(&seg, &mut chunks, position).await?;
                if header.max_timestamp >= timestamp
                    && header.last_offset() >= manifest.remote_start_offset
                {
                    let batch = self
                        .bytes_at(&seg, &mut chunks, position, header.size())
                        .await?;
                    check_batch(&seg, &batch, &header, position)?;
                    return Ok(Some(header.base_offset.max(manifest.remote_start_offset)));
                }
                position += header.size();
            }
        }
        Ok(None)
    }

    /// The manifest, refreshed once when `offset` is at or past its end;
    /// errors when `offset` is outside the remote range.
    async fn manifest_covering(
        &self,
        topic: &str,
        partition: i32,
        offset: i64,
    ) -> Result<Arc<PartitionManifest>> {
        let remote = &self.inner.remote;
        let no_data = || Error::NoRemoteData {
            topic: topic.to_owned(),
            partition,
        };
        let mut manifest = remote
            .manifest(topic, partition)
            .await?
            .ok_or_else(no_data)?;
        if offset >= manifest.next_offset() {
            manifest = remote
                .refresh_manifest(topic, partition)
                .await?
                .ok_or_else(no_data)?;
        }
        if offset < manifest.remote_start_offset || offset >= manifest.next_offset() {
            return Err(out_of_range(&manifest, offset));
        }
        Ok(manifest)
    }

    async fn index(&self, seg: &Located) -> Result<Arc<RemoteIndex>> {
        let key = seg.meta.name().index_key(&seg.topic, seg.partition);
        if let Some(index) = self
            .inner
            .indexes
            .lock()
            .expect("index cache")
            .map
            .get(&key)
        {
            return Ok(index.clone());
        }
        let remote = &self.inner.remote;
        let bytes = retry(remote.retry(), "read index", || remote.get(&key))
            .await
            .map_err(|e| {
                if e.is_not_found() {
                    seg.missing(&key)
                } else {
                    e
                }
            })?;
        if bytes.len() as u64 != seg.meta.index_size {
            return Err(seg.corrupt(format!(
                "index {key} has {} bytes, manifest says {}",
                bytes.len(),
                seg.meta.index_size
            )));
        }
        let index = Arc::new(
            RemoteIndex::decode(&bytes)
                .map_err(|reason| seg.corrupt(format!("index {key}: {reason}")))?,
        );
        let mut cache = self.inner.indexes.lock().expect("index cache");
        if cache.map.insert(key.clone(), index.clone()).is_none() {
            cache.order.push_back(key);
        }
        while cache.order.len() > self.inner.config.index_cache_entries.max(1) {
            if let Some(old) = cache.order.pop_front() {
                cache.map.remove(&old);
            }
        }
        Ok(index)
    }

    async fn header_at(
        &self,
        seg: &Located,
        chunks: &mut Chunks,
        position: u64,
    ) -> Result<BatchHeader> {
        if seg.meta.size_bytes - position < BATCH_HEADER_LEN as u64 {
            return Err(seg.corrupt(format!("partial batch header at byte {position}")));
        }
        let bytes = self
            .bytes_at(seg, chunks, position, BATCH_HEADER_LEN as u64)
            .await?;
        let header =
            BatchHeader::parse(&bytes, position).map_err(|e| seg.corrupt(e.to_string()))?;
        if position + header.size() > seg.meta.size_bytes {
            return Err(seg.corrupt(format!("batch at byte {position} runs past the object end")));
        }
        if header.base_offset < seg.meta.base_offset || header.last_offset() > seg.meta.last_offset
        {
            return Err(seg.corrupt(format!(
                "batch at byte {position} holds offsets {}..={} outside the segment",
                header.base_offset,
                header.last_offset()
            )));
        }
        Ok(header)
    }

    /// `len` bytes at `position` of the object: a slice of one chunk, or a
    /// copy joining several.
    async fn bytes_at(
        &self,
        seg: &Located,
        chunks: &mut Chunks,
        position: u64,
        len: u64,
    ) -> Result<Bytes> {
        let chunk_size = self.inner.config.chunk_size.max(1);
        let first = position / chunk_size;
        let last = (position + len.max(1) - 1) / chunk_size;
        for index in first..=last {
            if let std::collections::hash_map::Entry::Vacant(slot) = chunks.map.entry(index) {
                slot.insert(self.chunk(seg, index).await?);
            }
        }
        if first == last {
            let data = &chunks.map[&first];
            let start = (position - first * chunk_size) as usize;
            return Ok(data.slice(start..start + len as usize));
        }
        let mut out = BytesMut::with_capacity(len as usize);
        let mut at = position;
        let end = position + len;
        for index in first..=last {
            let data = &chunks.map[&index];
            let chunk_start = index * chunk_size;
            let from = (at - chunk_start) as usize;
            let to = ((end - chunk_start) as usize).min(data.len());
            out.extend_from_slice(&data[from..to]);
            at = chunk_start + to as u64;
        }
        Ok(out.freeze())
    }

    /// One chunk of a segment object: from the cache, or one ranged GET
    /// (single-flight per chunk, retried).
    async fn chunk(&self, seg: &Located, index: u64) -> Result<Bytes> {
        let chunk_size = self.inner.config.chunk_size.max(1);
        let start = index * chunk_size;
        let end = (start + chunk_size).min(seg.meta.size_bytes);
        let expected = end.saturating_sub(start);
        let metrics = self.inner.remote.metrics();
        let cache = &self.inner.cache;
        let cached = |data: Option<Bytes>| data.filter(|d| d.len() as u64 == expected);
        if let Some(data) = cached(cache.get(&seg.key, index).await.unwrap_or(None)) {
            metrics.cache_hits.inc();
            return Ok(data);
        }
        let id = (seg.key.clone(), index);
        let gate = self
            .inner
            .fetches
            .lock()
            .expect("fetch map")
            .entry(id.clone())
            .or_default()
            .clone();
        let _guard = gate.lock().await;
        if let Some(data) = cached(cache.get(&seg.key, index).await.unwrap_or(None)) {
            metrics.cache_hits.inc();
            return Ok(data);
        }
        metrics.cache_misses.inc();
        let remote = &self.inner.remote;
        let result = retry(remote.retry(), "read chunk", || {
            remote.get_range(&seg.key, start..end)
        })
        .await
        .map_err(|e| {
            if e.is_not_found() {
                seg.missing(&seg.key)
            } else {
                e
            }
        });
        self.inner.fetches.lock().expect("fetch map").remove(&id);
        let data = result?;
        if let Err(error) = cache.insert(&seg.key, index, data.clone()).await {
            tracing::warn!(%error, key = %seg.key, index, "cannot cache remote chunk");
        }
        Ok(data)
    }

    fn maybe_prefetch(&self, manifest: &PartitionManifest, seg: &Located, end: u64) {
        if !self.inner.config.prefetch {
            return;
        }
        let chunk_size = self.inner.config.chunk_size.max(1);
        let current = end.saturating_sub(1) / chunk_size;
        if !end.is_multiple_of(chunk_size) && end % chunk_size < chunk_size / 2 {
            return;
        }
        let next = if (current + 1) * chunk_size < seg.meta.size_bytes {
            Some((seg.clone(), current + 1))
        } else {
            manifest
                .live_segments()
                .iter()
                .find(|s| s.base_offset > seg.meta.last_offset)
                .map(|meta| {
                    (
                        Located {
                            topic: seg.topic.clone(),
                            partition: seg.partition,
                            key: meta.name().log_key(&seg.topic, seg.partition),
                            meta: meta.clone(),
                        },
                        0,
                    )
                })
        };
        let Some((target, index)) = next else {
            return;
        };
        let Ok(permit) = self.inner.prefetches.clone().try_acquire_owned() else {
            return;
        };
        let reader = self.clone();
        tokio::spawn(async move {
            let _permit = permit;
            if let Err(error) = reader.chunk(&target, index).await {
                tracing::debug!(%error, key = %target.key, index, "prefetch failed");
            }
        });
    }
}

/// Chunks fetched during one read.
#[derive(Default)]
struct Chunks {
    map: HashMap<u64, Bytes>,
}

fn check_batch(seg: &Located, batch: &[u8], header: &BatchHeader, position: u64) -> Result<()> {
    let computed = crc32c::crc32c(&batch[21..]);
    if computed != header.crc {
        return Err(seg.corrupt(format!(
            "crc mismatch in batch {}..={} at byte {position}",
            header.base_offset,
            header.last_offset()
        )));
    }
    Ok(())
}

fn out_of_range(manifest: &PartitionManifest, offset: i64) -> Error {
    Error::OffsetOutOfRange {
        topic: manifest.topic.clone(),
        partition: manifest.partition,
        offset,
        start: manifest.remote_start_offset,
        end: manifest.next_offset(),
    }
}
