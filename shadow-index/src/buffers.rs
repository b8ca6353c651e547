//! Reusable, page-aligned buffers for chunk GETs.
//!
//! A cold remote read receives every chunk (16 MiB by default) into memory
//! before it is served and cached. A fresh allocation per chunk costs a page
//! fault per 4 KiB on first touch (and, on a VM whose host reclaims idle
//! guest memory, much more), and the allocator hands large blocks back to
//! the kernel when they are freed. [`ChunkBuffers`] keeps freed chunk
//! buffers instead: a buffer is filled once ([`ChunkBuffer`]), frozen into
//! [`Bytes`] that readers slice without copying, and goes back to the pool
//! when the last slice of it is dropped (the cache's memory tier, a pending
//! cache write, a fetch response still being sent: whoever holds it last).
//!
//! The pool keeps at most `max_idle` buffers that nobody uses
//! ([`ChunkBuffers::trim`] frees the ones unused for a while); buffers in
//! use are counted ([`ChunkBuffers::in_use`]). Data starts at a [`ALIGN`]-byte boundary,
//! so a chunk can be written to its cache file with direct I/O.

use std::io::Read;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use bytes::Bytes;

/// Alignment of a buffer's first data byte (direct I/O needs the logical
/// block size; 4 KiB covers every common device).
pub const ALIGN: usize = 4096;

/// A pool of chunk buffers; cheap to clone.
#[derive(Clone)]
pub struct ChunkBuffers {
    inner: Arc<Pool>,
}

impl std::fmt::Debug for ChunkBuffers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChunkBuffers")
            .field("buffer_len", &self.inner.buffer_len)
            .field("max_idle", &self.inner.max_idle)
            .field("in_use", &self.in_use())
            .finish()
    }
}

struct Pool {
    /// Data capacity of a pooled buffer; larger requests get a one-off
    /// buffer that is not kept.
    buffer_len: usize,
    max_idle: usize,
    /// Unused buffers, newest last, with when they were last given back.
    idle: Mutex<Vec<(Vec<u8>, Instant)>>,
    in_use: AtomicUsize,
}

impl ChunkBuffers {
    /// A pool of buffers holding up to `buffer_len` bytes each, keeping at
    /// most `max_idle` unused ones.
    pub fn new(buffer_len: usize, max_idle: usize) -> ChunkBuffers {
        ChunkBuffers {
            inner: Arc::new(Pool {
                buffer_len,
                max_idle,
                idle: Mutex::new(Vec::new()),
                in_use: AtomicUsize::new(0),
            }),
        }
    }

    /// An empty buffer with room for `len` bytes: a pooled one when `len`
    /// fits the pool's size, else a one-off.
    pub fn take(&self, len: usize) -> ChunkBuffer {
        let pooled = len <= self.inner.buffer_len;
        let vec = if pooled {
            let mut idle = self.inner.idle.lock().expect("buffer pool");
            idle.pop().map(|(vec, _)| vec)
        } else {
            None
        };
        let capacity = if pooled { self.inner.buffer_len } else { len };
        let mut vec = vec.unwrap_or_else(|| Vec::with_capacity(capacity + ALIGN));
        // The allocation never moves (nothing is ever written past
        // `capacity`), so the aligned start stays aligned.
        let start = vec.as_ptr().align_offset(ALIGN).min(ALIGN);
        vec.clear();
        vec.resize(start, 0);
        self.inner.in_use.fetch_add(1, Ordering::Relaxed);
        ChunkBuffer {
            vec,
            start,
            limit: start + len,
            pool: pooled.then(|| Arc::downgrade(&self.inner)),
            counted: Arc::downgrade(&self.inner),
        }
    }

    /// Buffers taken and not yet dropped (filled, frozen or not).
    pub fn in_use(&self) -> usize {
        self.inner.in_use.load(Ordering::Relaxed)
    }

    /// Unused buffers the pool keeps.
    pub fn idle(&self) -> usize {
        self.inner.idle.lock().expect("buffer pool").len()
    }

    /// Frees the unused buffers nobody took for `age` (a burst of cold
    /// reads leaves up to `max_idle` behind).
    pub fn trim(&self, age: Duration) {
        let now = Instant::now();
        let freed: Vec<_> = {
            let mut idle = self.inner.idle.lock().expect("buffer pool");
            let keep = idle
                .iter()
                .position(|(_, at)| now.duration_since(*at) < age)
                .unwrap_or(idle.len());
            idle.drain(..keep).collect()
        };
        drop(freed);
    }

    /// Bytes each pooled buffer holds.
    pub fn buffer_len(&self) -> usize {
        self.inner.buffer_len
    }
}

/// A buffer being filled with one chunk; [`ChunkBuffer::freeze`] makes it
/// shareable. Goes back to its pool when dropped (or, once frozen, when the
/// last [`Bytes`] of it is dropped).
pub struct ChunkBuffer {
    vec: Vec<u8>,
    /// Index of the first data byte in `vec` (aligned to [`ALIGN`]).
    start: usize,
    /// `start` + the bytes this buffer may hold.
    limit: usize,
    pool: Option<Weak<Pool>>,
    counted: Weak<Pool>,
}

impl std::fmt::Debug for ChunkBuffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChunkBuffer")
            .field("len", &self.len())
            .field("room", &self.room())
            .finish()
    }
}

impl ChunkBuffer {
    /// A one-off buffer with room for `len` bytes, in no pool (small
    /// aligned buffers for direct I/O).
    pub fn unpooled(len: usize) -> ChunkBuffer {
        let mut vec: Vec<u8> = Vec::with_capacity(len + ALIGN);
        let start = vec.as_ptr().align_offset(ALIGN).min(ALIGN);
        vec.resize(start, 0);
        ChunkBuffer {
            vec,
            start,
            limit: start + len,
            pool: None,
            counted: Weak::new(),
        }
    }

    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.vec.len() - self.start
    }

    /// Whether nothing was written yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes that may still be written.
    pub fn room(&self) -> usize {
        self.limit - self.vec.len()
    }

    /// Appends `data`; `false` (and nothing written) when it does not fit
    /// the length the buffer was taken for.
    #[must_use]
    pub fn extend(&mut self, data: &[u8]) -> bool {
        if data.len() > self.room() {
            return false;
        }
        self.vec.extend_from_slice(data);
        true
    }

    /// Reads from `reader` until the buffer is full or the reader ends;
    /// returns the bytes read.
    pub fn fill_from(&mut self, reader: &mut impl Read) -> std::io::Result<usize> {
        let room = self.room() as u64;
        let before = self.vec.len();
        reader.take(room).read_to_end(&mut self.vec)?;
        Ok(self.vec.len() - before)
    }

    /// Reads up to `len` bytes of `file` at `offset` into the buffer with
    /// positioned reads (direct I/O allowed: the buffer and every read
    /// after a full one stay [`ALIGN`]ed when `offset` and `len` are);
    /// stops at the end of the file. Returns the bytes read.
    pub fn read_at(
        &mut self,
        file: &std::fs::File,
        offset: u64,
        len: usize,
    ) -> std::io::Result<usize> {
        use std::os::unix::fs::FileExt;
        let len = len.min(self.room());
        let before = self.vec.len();
        self.vec.resize(before + len, 0);
        let mut done = 0;
        while done < len {
            let n = match file.read_at(&mut self.vec[before + done..], offset + done as u64) {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.vec.truncate(before);
                    return Err(e);
                }
            };
            done += n;
            // End of file (a direct read past it stops short of a block).
            if n == 0 || n % ALIGN != 0 {
                break;
            }
        }
        self.vec.truncate(before + done);
        Ok(done)
    }

    /// The written bytes as shared [`Bytes`], without a copy.
    pub fn freeze(self) -> Bytes {
        Bytes::from_owner(self)
    }
}

impl AsRef<[u8]> for ChunkBuffer {
    fn as_ref(&self) -> &[u8] {
        &self.vec[self.start..]
    }
}

impl Drop for ChunkBuffer {
    fn drop(&mut self) {
        if let Some(pool) = self.counted.upgrade() {
            pool.in_use.fetch_sub(1, Ordering::Relaxed);
        }
        let Some(pool) = self.pool.as_ref().and_then(Weak::upgrade) else {
            return;
        };
        let mut idle = pool.idle.lock().expect("buffer pool");
        if idle.len() < pool.max_idle && self.vec.capacity() >= pool.buffer_len + ALIGN {
            idle.push((std::mem::take(&mut self.vec), Instant::now()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_are_aligned_bounded_and_reused_after_the_last_slice_drops() {
        let pool = ChunkBuffers::new(1 << 20, 2);
        let mut buffer = pool.take(10_000);
        assert!(buffer.extend(&[7u8; 6_000]));
        assert!(!buffer.extend(&[7u8; 5_000]), "past the length asked for");
        assert!(buffer.extend(&[8u8; 4_000]));
        assert_eq!(buffer.room(), 0);
        assert!(!buffer.extend(&[1]));
        let bytes = buffer.freeze();
        assert_eq!(bytes.len(), 10_000);
        assert_eq!(bytes.as_ptr().align_offset(ALIGN), 0);
        assert_eq!(&bytes[5_999..6_001], &[7, 8]);
        let address = bytes.as_ptr();
        let slice = bytes.slice(100..200);
        drop(bytes);
        assert_eq!((pool.in_use(), pool.idle()), (1, 0), "a slice is alive");
        drop(slice);
        assert_eq!((pool.in_use(), pool.idle()), (0, 1));
        // The same memory again, aligned, empty.
        let again = pool.take(1 << 20);
        assert!(again.is_empty());
        assert_eq!(again.as_ref().as_ptr(), address);
        // Larger than the pool's size: a one-off, never kept.
        let big = pool.take(2 << 20);
        assert_eq!(big.room(), 2 << 20);
        assert_eq!(pool.in_use(), 2);
        drop((again, big));
        assert_eq!((pool.in_use(), pool.idle()), (0, 1));
        // At most `max_idle` kept.
        let all: Vec<_> = (0..4).map(|_| pool.take(10)).collect();
        drop(all);
        assert_eq!(pool.idle(), 2);
        // Trimming frees the ones unused for the age given.
        pool.trim(Duration::from_secs(60));
        assert_eq!(pool.idle(), 2);
        pool.trim(Duration::ZERO);
        assert_eq!(pool.idle(), 0);
    }

    #[test]
    fn fill_from_stops_at_the_length_asked_for() {
        let pool = ChunkBuffers::new(64, 1);
        let mut buffer = pool.take(10);
        let mut source: &[u8] = &[3u8; 25];
        assert_eq!(buffer.fill_from(&mut source).unwrap(), 10);
        assert_eq!(source.len(), 15);
        assert_eq!(buffer.freeze(), Bytes::from(vec![3u8; 10]));
    }
}
