//! Serving reads from the remote tier.
//!
//! [`RemoteReader::read`] goes offset -> manifest (cached in the
//! [`Remote`]) -> segment -> `.index` object (cached in memory) -> the byte
//! position of the indexed span -> the bytes of the `.log` object from there
//! to a little past `max_bytes` -> whole batches, each CRC-checked before it
//! is returned. The object is fetched in chunks (ranged GETs of `chunk_size`
//! bytes, one at a time per chunk, kept in the [`ChunkCache`]); a read takes
//! only the byte range it needs from a cached chunk (zero-copy from a
//! freshly fetched one). A missing object or a batch that fails its checks
//! is an error naming the segment's offset range; when the damaged bytes
//! came from the cache, the chunks are dropped from it and the read is
//! tried once more from the object store first. A truncated or failed GET
//! is retried and then reported as a retriable error. Wrong bytes are never
//! returned.
//!
//! Prefetch (module `prefetch`): a read that continues where the
//! previous read of the partition ended (a sequential consumer) keeps the
//! next chunks coming (of the same segment, then of the following ones,
//! with their `.index` objects), as many as its rate times the time a chunk
//! takes to arrive needs, between `prefetch_chunks` and
//! `max_prefetch_chunks`: from the store, or, when a chunk is cached on
//! disk, from its cache file (one direct read of the whole chunk, every
//! block checked); any other read that ends in the second half of a chunk
//! fetches the next one. A fetched chunk is usable at once while its cache
//! file is written in the background.
//!
//! # Memory
//!
//! Chunks live in [`ChunkBuffers`] (reused, page-aligned). At any time a
//! reader holds, in chunk buffers of `chunk_size` bytes:
//! - per read in progress: the chunks its bytes come from, one (a read
//!   stays within the chunk it starts in), two when its first batch runs
//!   into the next chunk (more only for a batch larger than a chunk); a
//!   range of more than 1 MiB read from a cache file takes a buffer too;
//! - for all partitions together: at most `max_ahead_chunks` fetched ahead
//!   (in flight, or landed and not yet read), `max_prefetches` GETs of them
//!   at once;
//! - the cache's memory tier ([`ChunkCache::open_with_memory`]) and chunks
//!   whose cache file is being written (at most
//!   [`MAX_PENDING_BYTES`](crate::cache::MAX_PENDING_BYTES) by default,
//!   more are not cached on disk).
//!
//! These sets share buffers (a chunk is in the memory tier and being
//! written at once), so the sum is an upper bound: with the defaults and
//! 16 MiB chunks, 8 x 16 MiB ahead + the memory tier + 8 x 16 MiB of
//! writes + 16 to 32 MiB per read in progress (one per partition of each
//! Fetch being served). Unused buffers are kept for reuse, at most
//! `max_ahead_chunks` plus the memory tier's chunks
//! ([`ChunkBuffers::trim`] frees them); they are not on top of the bound:
//! a buffer is allocated only when no unused one is left.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use tokio::sync::Semaphore;

use crate::buffers::ChunkBuffers;
use crate::cache::ChunkCache;
use crate::error::{Error, Result};
use crate::index::{BATCH_HEADER_LEN, BatchHeader, RemoteIndex};
use crate::manifest::{PartitionManifest, SegmentMeta};
use crate::prefetch::{Admitted, ChunkId, Readahead};
use crate::retry::retry;
use crate::store::Remote;

/// Default chunk size of ranged GETs: 16 MiB.
pub const DEFAULT_CHUNK_SIZE: u64 = 16 << 20;

/// Bytes read past `max_bytes` in the same go, so the header of the batch
/// after the last one that fits (and the batches before the requested offset
/// in its indexed span) need no second read.
const READ_SLACK: u64 = 64 << 10;

/// Reader settings.
#[derive(Debug, Clone)]
pub struct ReaderConfig {
    /// Bytes per ranged GET and per cache entry.
    pub chunk_size: u64,
    /// Prefetch chunks ahead of sequential readers.
    pub prefetch: bool,
    /// Chunks kept coming ahead of a sequential reader, at least (1 or
    /// more)...
    pub prefetch_chunks: usize,
    /// ... and at most, when its rate times the GET time needs more.
    pub max_prefetch_chunks: usize,
    /// Prefetch GETs running at once.
    pub max_prefetches: usize,
    /// Chunks fetched ahead for all partitions together: prefetches in
    /// flight plus landed chunks no read has taken yet.
    pub max_ahead_chunks: usize,
    /// Parsed `.index` objects kept in memory.
    pub index_cache_entries: usize,
}

impl Default for ReaderConfig {
    fn default() -> Self {
        ReaderConfig {
            chunk_size: DEFAULT_CHUNK_SIZE,
            prefetch: true,
            prefetch_chunks: 2,
            max_prefetch_chunks: 4,
            max_prefetches: 4,
            max_ahead_chunks: 8,
            index_cache_entries: 1024,
        }
    }
}

/// A partition's remote tier as its manifest lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RemoteExtent {
    /// The earliest offset readable from the object store.
    pub start: i64,
    /// The offset after the last uploaded one.
    pub end: i64,
    /// Segment objects listed (`.log` objects; each has its `.index`).
    pub segments: u64,
    /// Their `.log` bytes.
    pub bytes: u64,
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
    buffers: ChunkBuffers,
    indexes: Mutex<IndexCache>,
    fetches: Mutex<HashMap<ChunkId, Arc<tokio::sync::Mutex<()>>>>,
    prefetches: Arc<Semaphore>,
    readahead: Readahead,
}

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

/// The bytes of one segment object that one read works on: a contiguous
/// span, grown as the read needs more.
#[derive(Default)]
struct Window {
    start: u64,
    data: Bytes,
    /// Whole chunks fetched (or found in the memory tier) during this read.
    chunks: HashMap<u64, Bytes>,
    /// Chunks this read took from the cache, or fetched and cached.
    touched: BTreeSet<u64>,
    /// Whether any bytes came from the cache rather than a GET of this read.
    from_cache: bool,
}

impl Window {
    fn end(&self) -> u64 {
        self.start + self.data.len() as u64
    }
}

/// What one read found: the span of whole batches and its offsets.
struct Found {
    start: u64,
    end: u64,
    base_offset: i64,
    next_offset: i64,
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
        // Keep as many unused buffers as chunks ahead and in the memory
        // tier can take again.
        let memory_chunks = cache.memory_max_bytes() / config.chunk_size.max(1);
        let buffers = ChunkBuffers::new(
            usize::try_from(config.chunk_size).unwrap_or(usize::MAX),
            config.max_ahead_chunks + usize::try_from(memory_chunks).unwrap_or(0),
        );
        cache.use_buffers(buffers.clone());
        let readahead = Readahead::new(
            config.prefetch_chunks,
            config.max_prefetch_chunks,
            config.max_ahead_chunks,
        );
        RemoteReader {
            inner: Arc::new(Inner {
                remote,
                cache,
                config,
                buffers,
                indexes: Mutex::new(IndexCache::default()),
                fetches: Mutex::new(HashMap::new()),
                prefetches,
                readahead,
            }),
        }
    }

    /// Waits until no prefetch task is running and every fetched chunk's
    /// cache file is written (for shutdown and tests).
    pub async fn wait_for_prefetches(&self) {
        let all = u32::try_from(self.inner.config.max_prefetches).unwrap_or(u32::MAX);
        if all > 0 {
            let _ = self.inner.prefetches.acquire_many(all).await;
        }
        self.inner.cache.flush().await;
    }

    /// The remote this reader reads from.
    pub fn remote(&self) -> &Remote {
        &self.inner.remote
    }

    /// The chunk cache.
    pub fn cache(&self) -> &ChunkCache {
        &self.inner.cache
    }

    /// The buffers chunks are fetched into.
    pub fn buffers(&self) -> &ChunkBuffers {
        &self.inner.buffers
    }

    /// Chunks fetched ahead for sequential readers: prefetches in flight
    /// plus landed chunks no read has taken yet.
    pub fn chunks_ahead(&self) -> usize {
        self.inner.readahead.ahead()
    }

    /// `(remote start, remote end)` of a partition: the earliest readable
    /// offset and the offset after the last uploaded one. `None` when the
    /// partition has nothing remote.
    pub async fn remote_range(&self, topic: &str, partition: i32) -> Result<Option<(i64, i64)>> {
        Ok(self
            .remote_extent(topic, partition)
            .await?
            .map(|e| (e.start, e.end)))
    }

    /// The partition's remote tier as its manifest lists it: offsets, and
    /// the segment objects with their bytes. `None` without a manifest.
    pub async fn remote_extent(&self, topic: &str, partition: i32) -> Result<Option<RemoteExtent>> {
        Ok(self
            .inner
            .remote
            .manifest(topic, partition)
            .await?
            .map(|m| RemoteExtent {
                start: m.remote_start_offset,
                end: m.next_offset(),
                segments: m.segments.len() as u64,
                bytes: m.segments.iter().map(|s| s.size_bytes).sum(),
            }))
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
        let position = if offset <= seg.meta.base_offset {
            0
        } else {
            index.position_for(offset)
        };
        let mut window = Window::default();
        let found = match self
            .scan(&seg, &mut window, position, offset, max_bytes)
            .await
        {
            Err(error @ Error::CorruptObject { .. }) => {
                // Drop what this read cached or took from the cache: bytes
                // damaged in the cache or in transit are fetched again; an
                // object damaged in the store fails again.
                for chunk in &window.touched {
                    self.drop_chunk(&seg, *chunk);
                }
                if !window.from_cache {
                    return Err(error);
                }
                tracing::warn!(%error, "damaged bytes from the chunk cache; refetching");
                window = Window::default();
                self.scan(&seg, &mut window, position, offset, max_bytes)
                    .await
                    .inspect_err(|_| {
                        for chunk in &window.touched {
                            self.drop_chunk(&seg, *chunk);
                        }
                    })?
            }
            other => other?,
        };
        let bytes = self
            .bytes_at(&seg, &mut window, found.start, found.end - found.start, 0)
            .await?;
        let metrics = self.inner.remote.metrics();
        metrics.read_bytes.inc_by(bytes.len() as u64);
        metrics
            .read_seconds
            .observe(started.elapsed().as_secs_f64());
        let depth = self.inner.readahead.note_read(
            (&seg.topic, seg.partition),
            &seg.key,
            found.start,
            found.end,
            seg.meta.size_bytes,
            self.inner.config.chunk_size.max(1),
        );
        self.maybe_prefetch(&manifest, &seg, found.end, depth);
        Ok(RemoteSlice {
            bytes,
            base_offset: found.base_offset,
            next_offset: found.next_offset,
            remote_start: manifest.remote_start_offset,
            remote_end: manifest.next_offset(),
        })
    }

    /// Walks the batches from `position` and checks the ones returned.
    async fn scan(
        &self,
        seg: &Located,
        window: &mut Window,
        mut position: u64,
        offset: i64,
        max_bytes: usize,
    ) -> Result<Found> {
        let budget = (max_bytes as u64).saturating_add(READ_SLACK);
        let chunk_size = self.inner.config.chunk_size.max(1);
        let mut first: Option<(u64, i64)> = None;
        let mut end = position;
        let mut previous_last: Option<i64> = None;
        let mut next_offset = offset;
        while position < seg.meta.size_bytes {
            // The read stays in the chunk its first batch starts in (before
            // one is found: the chunk of `position`), so that its bytes are
            // a slice of that chunk, never a copy joining two. Only a first
            // batch that runs into the next chunk is joined, and returned
            // alone.
            let anchor = first.map_or(position, |f| f.0);
            let chunk_end = (anchor / chunk_size + 1).saturating_mul(chunk_size);
            if first.is_some() && position + BATCH_HEADER_LEN as u64 > chunk_end {
                break;
            }
            let want = anchor
                .saturating_add(budget)
                .min(chunk_end)
                .saturating_sub(position);
            let header = self.header_at(seg, window, position, want).await?;
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
                && ((end - start) + size > max_bytes as u64 || position + size > chunk_end)
            {
                break;
            }
            let batch = self.bytes_at(seg, window, position, size, want).await?;
            check_batch(seg, &batch, &header, position)?;
            first.get_or_insert((position, header.base_offset));
            position += size;
            end = position;
            next_offset = header.last_offset() + 1;
            if end - first.map_or(end, |f| f.0) >= max_bytes as u64 || end > chunk_end {
                break;
            }
        }
        let Some((start, base_offset)) = first else {
            return Err(seg.corrupt(format!("no batch holds offset {offset}")));
        };
        Ok(Found {
            start,
            end,
            base_offset,
            next_offset,
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
            let mut window = Window::default();
            while position < end {
                let want = end - position;
                let header = self.header_at(&seg, &mut window, position, want).await?;
                if header.max_timestamp >= timestamp
                    && header.last_offset() >= manifest.remote_start_offset
                {
                    let batch = self
                        .bytes_at(&seg, &mut window, position, header.size(), 0)
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
        window: &mut Window,
        position: u64,
        want: u64,
    ) -> Result<BatchHeader> {
        if seg.meta.size_bytes - position < BATCH_HEADER_LEN as u64 {
            return Err(seg.corrupt(format!("partial batch header at byte {position}")));
        }
        let bytes = self
            .bytes_at(seg, window, position, BATCH_HEADER_LEN as u64, want)
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

    /// `len` bytes at `position` of the object, from the read's window;
    /// when the window does not hold them, it is moved (or grown, if it
    /// holds `position`) to cover about `want` bytes from `position`, the
    /// last [`READ_SLACK`] of them only if they are in a chunk needed anyway.
    async fn bytes_at(
        &self,
        seg: &Located,
        window: &mut Window,
        position: u64,
        len: u64,
        want: u64,
    ) -> Result<Bytes> {
        let end = position + len;
        if position < window.start || end > window.end() {
            // The last READ_SLACK bytes of `want` are optional: they never
            // pull in another chunk.
            let chunk_size = self.inner.config.chunk_size.max(1);
            let wanted = position.saturating_add(want);
            let needed = end.max(wanted.saturating_sub(READ_SLACK));
            let boundary = needed.div_ceil(chunk_size).saturating_mul(chunk_size);
            let to = wanted.min(boundary).min(seg.meta.size_bytes).max(end);
            if !window.data.is_empty() && position >= window.start && position <= window.end() {
                let more = self.load(seg, window, window.end(), to).await?;
                let mut joined = BytesMut::with_capacity(window.data.len() + more.len());
                joined.extend_from_slice(&window.data);
                joined.extend_from_slice(&more);
                window.data = joined.freeze();
            } else {
                window.data = self.load(seg, window, position, to).await?;
                window.start = position;
            }
        }
        let from = (position - window.start) as usize;
        Ok(window.data.slice(from..from + len as usize))
    }

    /// Bytes `from..to` of the object: a slice of one chunk, or a copy
    /// joining several.
    async fn load(&self, seg: &Located, window: &mut Window, from: u64, to: u64) -> Result<Bytes> {
        if from >= to {
            return Ok(Bytes::new());
        }
        let chunk_size = self.inner.config.chunk_size.max(1);
        let first = from / chunk_size;
        let last = (to - 1) / chunk_size;
        if first == last {
            let base = first * chunk_size;
            return self
                .chunk_range(seg, window, first, from - base, to - base)
                .await;
        }
        let mut out = BytesMut::with_capacity((to - from) as usize);
        for index in first..=last {
            let base = index * chunk_size;
            let lo = from.max(base) - base;
            let hi = to.min(base + chunk_size) - base;
            out.extend_from_slice(&self.chunk_range(seg, window, index, lo, hi).await?);
        }
        Ok(out.freeze())
    }

    /// The length of chunk `index` of a segment object.
    fn chunk_len(&self, seg: &Located, index: u64) -> u64 {
        let chunk_size = self.inner.config.chunk_size.max(1);
        let start = index * chunk_size;
        (start + chunk_size)
            .min(seg.meta.size_bytes)
            .saturating_sub(start)
    }

    /// Bytes `from..to` of chunk `index`: from this read's chunks, the
    /// chunks fetched ahead, the cache, or one ranged GET of the whole chunk.
    async fn chunk_range(
        &self,
        seg: &Located,
        window: &mut Window,
        index: u64,
        from: u64,
        to: u64,
    ) -> Result<Bytes> {
        let (lo, hi) = (from as usize, to as usize);
        if let Some(data) = window.chunks.get(&index) {
            return Ok(data.slice(lo..hi));
        }
        let expected = self.chunk_len(seg, index);
        let cache = &self.inner.cache;
        let metrics = self.inner.remote.metrics();
        window.touched.insert(index);
        for recheck in [true, true, false] {
            if let Some(data) = self.take_ahead(seg, index) {
                metrics.cache_hits.inc();
                let bytes = data.slice(lo..hi);
                window.chunks.insert(index, data);
                return Ok(bytes);
            }
            if recheck
                && let Ok(Some(bytes)) = cache.get_range(&seg.key, index, expected, from..to).await
            {
                metrics.cache_hits.inc();
                window.from_cache = true;
                return Ok(bytes);
            }
            let waited = Instant::now();
            let fetched = self.fetch_chunk(seg, index, recheck, None).await;
            metrics
                .read_wait_seconds
                .inc_by(waited.elapsed().as_secs_f64());
            if let Some(data) = fetched? {
                let bytes = data.slice(lo..hi);
                window.chunks.insert(index, data);
                return Ok(bytes);
            }
        }
        unreachable!("a fetch without recheck returns the chunk")
    }

    /// Chunk `index` if a prefetch holds it, moved into the cache's memory
    /// tier (the reader is in it now).
    fn take_ahead(&self, seg: &Located, index: u64) -> Option<Bytes> {
        let data = self.inner.readahead.take(&(seg.key.clone(), index))?;
        if data.len() as u64 != self.chunk_len(seg, index) {
            return None;
        }
        self.inner
            .cache
            .keep_in_memory(&seg.key, index, data.clone());
        Some(data)
    }

    /// Drops chunk `index` of `seg` wherever the reader or the cache holds
    /// it (its bytes failed a check).
    fn drop_chunk(&self, seg: &Located, index: u64) {
        self.inner.readahead.forget(&(seg.key.clone(), index));
        self.inner.cache.remove(&seg.key, index);
    }

    /// One ranged GET of chunk `index` (single-flight per chunk, retried).
    /// A read's chunk goes into the cache (memory tier and file); a
    /// prefetched one (`ahead` set) is held for its reader and only written
    /// to a cache file. With `recheck`, `None` when the chunk is (by then)
    /// held or cached; a prefetch of a chunk cached only on disk loads it
    /// from there instead of the store.
    async fn fetch_chunk(
        &self,
        seg: &Located,
        index: u64,
        recheck: bool,
        ahead: Option<&Admitted>,
    ) -> Result<Option<Bytes>> {
        let chunk_size = self.inner.config.chunk_size.max(1);
        let start = index * chunk_size;
        let end = start + self.chunk_len(seg, index);
        let cache = &self.inner.cache;
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
        let done = || {
            self.inner.fetches.lock().expect("fetch map").remove(&id);
        };
        if recheck {
            let held = self.inner.readahead.holds(&id);
            match ahead {
                None if held || cache.contains(&seg.key, index) => {
                    done();
                    return Ok(None);
                }
                Some(_) if held || cache.in_memory(&seg.key, index) => {
                    done();
                    return Ok(None);
                }
                Some(admitted) => {
                    // Cached on disk: the whole chunk, for its reader (one
                    // direct read instead of one per fetch as it gets there).
                    let started = Instant::now();
                    if let Ok(Some(data)) = cache.get(&seg.key, index).await
                        && data.len() as u64 == end - start
                    {
                        self.inner.readahead.record_get(started.elapsed());
                        self.inner
                            .readahead
                            .hold(admitted, id.clone(), data.clone());
                        done();
                        return Ok(Some(data));
                    }
                }
                None => {}
            }
        }
        self.inner.remote.metrics().cache_misses.inc();
        let remote = &self.inner.remote;
        let started = Instant::now();
        let result = retry(remote.retry(), "read chunk", || {
            remote.get_range_pooled(&seg.key, start..end, &self.inner.buffers)
        })
        .await
        .map_err(|e| {
            if e.is_not_found() {
                seg.missing(&seg.key)
            } else {
                e
            }
        });
        if let Ok(data) = &result {
            self.inner.readahead.record_get(started.elapsed());
            // Held or cached before the gate opens, so no one fetches it
            // again while its file is written.
            match ahead {
                Some(admitted) => {
                    cache.write_in_background(&seg.key, index, data.clone());
                    self.inner
                        .readahead
                        .hold(admitted, id.clone(), data.clone());
                }
                None => cache.insert_in_background(&seg.key, index, data.clone()),
            }
        }
        done();
        result.map(Some)
    }

    /// Starts background fetches of the chunks after byte `end` of `seg`:
    /// `depth` of them after a sequential read, the next one after any
    /// other read ending in the second half of a chunk; as many as the
    /// read-ahead budget admits.
    fn maybe_prefetch(
        &self,
        manifest: &PartitionManifest,
        seg: &Located,
        end: u64,
        depth: Option<usize>,
    ) {
        let config = &self.inner.config;
        if !config.prefetch {
            return;
        }
        let chunk_size = config.chunk_size.max(1);
        let depth = match depth {
            Some(depth) => depth.max(1),
            None if end.is_multiple_of(chunk_size) || end % chunk_size >= chunk_size / 2 => 1,
            None => return,
        };
        let mut targets = Vec::with_capacity(depth);
        let mut current = seg.clone();
        let mut next = end.saturating_sub(1) / chunk_size + 1;
        while targets.len() < depth {
            if next * chunk_size < current.meta.size_bytes {
                targets.push((current.clone(), next));
                next += 1;
                continue;
            }
            let Some(meta) = manifest
                .live_segments()
                .iter()
                .find(|s| s.base_offset > current.meta.last_offset)
            else {
                break;
            };
            current = Located {
                topic: seg.topic.clone(),
                partition: seg.partition,
                key: meta.name().log_key(&seg.topic, seg.partition),
                meta: meta.clone(),
            };
            next = 0;
        }
        for (target, index) in targets {
            let id = (target.key.clone(), index);
            if self.inner.readahead.holds(&id)
                || self.inner.cache.in_memory(&target.key, index)
                || self
                    .inner
                    .fetches
                    .lock()
                    .expect("fetch map")
                    .contains_key(&id)
            {
                continue;
            }
            let Some(admitted) = self.inner.readahead.admit() else {
                return;
            };
            let Ok(permit) = self.inner.prefetches.clone().try_acquire_owned() else {
                return;
            };
            let reader = self.clone();
            let other_segment = target.key != seg.key;
            tokio::spawn(async move {
                let _permit = permit;
                if other_segment {
                    // Its index too: a read that starts the segment needs
                    // it first (a GET round trip otherwise).
                    if let Err(error) = reader.index(&target).await {
                        tracing::debug!(%error, key = %target.key, "index prefetch failed");
                    }
                }
                let fetched = reader
                    .fetch_chunk(&target, index, true, Some(&admitted))
                    .await;
                if let Err(error) = fetched {
                    tracing::debug!(%error, key = %target.key, index, "prefetch failed");
                }
            });
        }
    }
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
