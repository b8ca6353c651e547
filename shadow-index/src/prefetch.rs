//! Read-ahead bookkeeping of the remote reader: which partitions read
//! sequentially and how fast, how long a chunk GET takes, and the chunks
//! fetched ahead that no read has taken yet.
//!
//! Depth: a sequential reader keeps `1 + ceil(rate x GET time / chunk)`
//! chunks coming (its consumption rate and the recent chunk-GET time, both
//! moving averages), at least `prefetch_chunks` and at most
//! `max_prefetch_chunks`: enough that the next chunk has arrived when the
//! reader gets to it, however fast the consumer or slow the store.
//!
//! Memory: chunks fetched ahead are held here (not in the cache's LRU
//! memory tier, where they would push out the chunks readers are in) until
//! a read takes them. Prefetches in flight plus chunks held here never pass
//! `max_ahead_chunks`; a held chunk no read took within [`AHEAD_TTL`] is
//! dropped (it stays in the on-disk cache), and so is the oldest one past
//! a second when a new prefetch finds the budget full (a partition whose
//! consumer went on into the local log leaves its last prefetches behind).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;

/// How long a chunk fetched ahead waits for its reader.
pub(crate) const AHEAD_TTL: Duration = Duration::from_secs(30);

/// A held chunk older than this gives way to a new prefetch when the
/// budget is full: its reader stopped, moved elsewhere, or went on in the
/// local log (it stays in the on-disk cache).
const AHEAD_STALE: Duration = Duration::from_secs(1);

/// Partitions whose reads are remembered for prefetch.
const MAX_TRACKED_PARTITIONS: usize = 65_536;

/// Weight of the newest sample in the moving averages.
const NEW_WEIGHT: f64 = 0.25;

/// An object key and a chunk number.
pub(crate) type ChunkId = (String, u64);

/// Where a partition's reads are and how fast they go.
struct Flow {
    key: String,
    /// Byte position where the last read ended, and whether that was the
    /// object's end.
    end: u64,
    at_end: bool,
    at: Instant,
    /// Bytes per second of sequential reads (0: not known yet).
    rate: f64,
}

struct Held {
    data: Bytes,
    landed: Instant,
}

#[derive(Default)]
struct State {
    flows: HashMap<(String, i32), Flow>,
    held: HashMap<ChunkId, Held>,
    /// Prefetch GETs admitted and not finished.
    in_flight: usize,
    /// Seconds per chunk GET (0: none measured yet).
    get_seconds: f64,
}

/// Read-ahead state shared by a reader's clones.
pub(crate) struct Readahead {
    min_depth: usize,
    max_depth: usize,
    max_ahead: usize,
    stale: Duration,
    state: Arc<Mutex<State>>,
}

/// A prefetch admitted by [`Readahead::admit`]; ends its in-flight count
/// when its chunk is held or when dropped.
pub(crate) struct Admitted {
    state: Arc<Mutex<State>>,
    /// Whether the in-flight count was already ended (by a hold).
    ended: AtomicBool,
}

impl Admitted {
    /// Ends the in-flight count once; `state` is the locked state.
    fn end(&self, state: &mut State) {
        if !self.ended.swap(true, Ordering::Relaxed) {
            state.in_flight -= 1;
        }
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let state = self.state.clone();
        self.end(&mut state.lock().expect("readahead poisoned"));
    }
}

impl Readahead {
    pub(crate) fn new(min_depth: usize, max_depth: usize, max_ahead: usize) -> Readahead {
        let min_depth = min_depth.max(1);
        Readahead {
            min_depth,
            max_depth: max_depth.max(min_depth),
            max_ahead,
            stale: AHEAD_STALE,
            state: Arc::new(Mutex::new(State::default())),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("readahead poisoned")
    }

    /// Records a read of `start..end` of object `key` (`size` bytes) of a
    /// partition. Returns `None` when it did not continue the partition's
    /// previous read (in this object, or at the start of this object after
    /// the previous object's end), else the chunks to keep coming.
    pub(crate) fn note_read(
        &self,
        partition: (&str, i32),
        key: &str,
        start: u64,
        end: u64,
        size: u64,
        chunk_size: u64,
    ) -> Option<usize> {
        let now = Instant::now();
        let mut state = self.state();
        if state.flows.len() >= MAX_TRACKED_PARTITIONS {
            state.flows.clear();
        }
        let get_seconds = state.get_seconds;
        let id = (partition.0.to_owned(), partition.1);
        let flow = Flow {
            key: key.to_owned(),
            end,
            at_end: end >= size,
            at: now,
            rate: 0.0,
        };
        let previous = state.flows.insert(id.clone(), flow)?;
        let sequential = if previous.key == key {
            previous.end == start
        } else {
            previous.at_end && start == 0
        };
        if !sequential {
            return None;
        }
        let elapsed = now.duration_since(previous.at).as_secs_f64();
        let sample = (end - start) as f64 / elapsed.max(1e-6);
        let rate = if previous.rate == 0.0 {
            sample
        } else {
            previous.rate + NEW_WEIGHT * (sample - previous.rate)
        };
        if let Some(flow) = state.flows.get_mut(&id) {
            flow.rate = rate;
        }
        Some(self.depth(rate, get_seconds, chunk_size))
    }

    /// Chunks a reader consuming `rate` bytes/s keeps coming when a chunk
    /// GET takes `get_seconds`.
    fn depth(&self, rate: f64, get_seconds: f64, chunk_size: u64) -> usize {
        let needed = (rate * get_seconds / chunk_size.max(1) as f64).ceil();
        let depth = if needed > 0.0 {
            1 + needed.min(self.max_depth as f64) as usize
        } else {
            1
        };
        depth.clamp(self.min_depth, self.max_depth)
    }

    /// Records how long a chunk GET took.
    pub(crate) fn record_get(&self, took: Duration) {
        let mut state = self.state();
        let sample = took.as_secs_f64();
        state.get_seconds = if state.get_seconds == 0.0 {
            sample
        } else {
            state.get_seconds + NEW_WEIGHT * (sample - state.get_seconds)
        };
    }

    /// Admits one more prefetch if prefetches in flight plus chunks held
    /// stay within `max_ahead_chunks` (dropping held chunks past their
    /// time first, and, when that is not enough, the oldest stale one).
    pub(crate) fn admit(&self) -> Option<Admitted> {
        let mut state = self.state();
        let now = Instant::now();
        state
            .held
            .retain(|_, held| now.duration_since(held.landed) < AHEAD_TTL);
        if state.in_flight + state.held.len() >= self.max_ahead {
            let oldest = state
                .held
                .iter()
                .filter(|(_, held)| now.duration_since(held.landed) >= self.stale)
                .min_by_key(|(_, held)| held.landed)
                .map(|(id, _)| id.clone());
            match oldest {
                Some(id) if state.in_flight + state.held.len() == self.max_ahead => {
                    state.held.remove(&id);
                }
                _ => return None,
            }
        }
        state.in_flight += 1;
        Some(Admitted {
            state: self.state.clone(),
            ended: AtomicBool::new(false),
        })
    }

    /// Holds a prefetched chunk for its reader, in place of its admission
    /// (one count moves from in flight to held, so the two never pass the
    /// budget together).
    pub(crate) fn hold(&self, admitted: &Admitted, id: ChunkId, data: Bytes) {
        let landed = Instant::now();
        let mut state = self.state();
        admitted.end(&mut state);
        state.held.insert(id, Held { data, landed });
    }

    /// Takes a chunk fetched ahead, if held.
    pub(crate) fn take(&self, id: &ChunkId) -> Option<Bytes> {
        self.state().held.remove(id).map(|held| held.data)
    }

    /// Whether a chunk is held.
    pub(crate) fn holds(&self, id: &ChunkId) -> bool {
        self.state().held.contains_key(id)
    }

    /// Drops a held chunk (its bytes turned out damaged).
    pub(crate) fn forget(&self, id: &ChunkId) {
        self.state().held.remove(id);
    }

    /// Chunks held plus prefetches in flight.
    pub(crate) fn ahead(&self) -> usize {
        let state = self.state();
        state.held.len() + state.in_flight
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    #[test]
    fn depth_follows_rate_times_get_time_within_bounds() {
        let r = Readahead::new(2, 6, 8);
        // Unknown rate or GET time: the minimum.
        assert_eq!(r.depth(0.0, 0.0, 16 * MIB), 2);
        assert_eq!(r.depth(1e9, 0.0, 16 * MIB), 2);
        // 400 MB/s, 20 ms per GET: 8 MB in flight, half a chunk: 2.
        assert_eq!(r.depth(400e6, 0.02, 16 * MIB), 2);
        // 1 GB/s, 50 ms: 50 MB, 3 chunks plus the one being read: 4.
        assert_eq!(r.depth(1e9, 0.05, 16 * MIB), 4);
        // Far more than the cap: the cap.
        assert_eq!(r.depth(10e9, 1.0, 16 * MIB), 6);
        assert_eq!(r.depth(f64::INFINITY, 1.0, 16 * MIB), 6);
    }

    #[test]
    fn only_continuing_reads_are_sequential() {
        let r = Readahead::new(2, 4, 8);
        let p = ("t", 0);
        assert_eq!(r.note_read(p, "a", 0, 100, 1000, 64), None, "first read");
        assert_eq!(r.note_read(p, "a", 100, 200, 1000, 64), Some(2));
        assert_eq!(r.note_read(p, "a", 500, 600, 1000, 64), None, "a jump");
        assert_eq!(r.note_read(p, "a", 600, 1000, 1000, 64), Some(2));
        // On into the next object from its start.
        assert_eq!(r.note_read(p, "b", 0, 10, 1000, 64), Some(2));
        // Another partition is tracked on its own.
        assert_eq!(r.note_read(("t", 1), "c", 10, 20, 1000, 64), None);
        // Slow GETs make a fast reader go deeper.
        r.record_get(Duration::from_secs(10));
        assert_eq!(r.note_read(p, "b", 10, 20, 1000, 64), Some(4));
    }

    #[test]
    fn chunks_ahead_stay_within_the_budget() {
        let r = Readahead::new(1, 4, 3);
        let a = r.admit().unwrap();
        let b = r.admit().unwrap();
        let c = r.admit().unwrap();
        assert!(r.admit().is_none(), "three in flight");
        r.hold(&a, ("k".into(), 0), Bytes::from_static(b"x"));
        assert_eq!(r.ahead(), 3, "the held chunk replaces its admission");
        drop(a);
        assert_eq!(r.ahead(), 3);
        assert!(r.admit().is_none(), "two in flight and one held");
        assert_eq!(r.take(&("k".into(), 0)), Some(Bytes::from_static(b"x")));
        assert!(!r.holds(&("k".into(), 0)));
        let d = r.admit().unwrap();
        assert_eq!(r.ahead(), 3);
        drop((b, c, d));
        assert_eq!(r.ahead(), 0);
    }

    #[test]
    fn a_stale_held_chunk_gives_way_when_the_budget_is_full() {
        let mut r = Readahead::new(1, 4, 2);
        let a = r.admit().unwrap();
        r.hold(&a, ("k".into(), 0), Bytes::from_static(b"old"));
        let b = r.admit().unwrap();
        r.hold(&b, ("k".into(), 1), Bytes::from_static(b"new"));
        // Fresh chunks are kept: nothing admitted.
        assert!(r.admit().is_none());
        // Once stale, the oldest goes for the new prefetch; the other stays.
        r.stale = Duration::ZERO;
        let c = r.admit().unwrap();
        assert!(!r.holds(&("k".into(), 0)));
        assert!(r.holds(&("k".into(), 1)));
        assert_eq!(r.ahead(), 2);
        let d = r.admit().unwrap();
        assert!(!r.holds(&("k".into(), 1)));
        assert_eq!(r.ahead(), 2);
        // Only prefetches in flight: none gives way to another.
        assert!(r.admit().is_none());
        drop((c, d));
        assert_eq!(r.ahead(), 0);
    }
}
