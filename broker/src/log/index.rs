//! The sparse indexes of one segment, kept in memory and persisted when the
//! segment is rolled or the log closed.
//!
//! - `.index`: `relative offset u32 BE, position u32 BE` for the batch that
//!   starts at `position`, one entry after every `index_interval_bytes` of
//!   batches. A lookup gives a position at or before the batch holding an
//!   offset.
//! - `.timeindex`: `timestamp i64 BE, relative offset u32 BE`, timestamps
//!   strictly increasing. Every batch before the entry's offset has a max
//!   timestamp at most the entry's, so a search for the first batch with
//!   `max_timestamp >= t` may start at the last entry below `t`.
//!
//! Index files are never trusted over the log: they are checked for sanity
//! when loaded and rebuilt from the log after an unclean shutdown.

/// Bytes of one `.index` entry.
pub const OFFSET_ENTRY_LEN: usize = 8;
/// Bytes of one `.timeindex` entry.
pub const TIME_ENTRY_LEN: usize = 12;

/// Both indexes of a segment, and what is needed to extend them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentIndex {
    interval_bytes: u64,
    /// `(relative offset, position)`, both strictly increasing.
    offsets: Vec<(u32, u32)>,
    /// `(timestamp, relative offset)`, timestamps strictly increasing.
    times: Vec<(i64, u32)>,
    bytes_since_entry: u64,
    /// Largest batch max timestamp in the segment, -1 when none.
    max_timestamp: i64,
    /// Relative offset of the last batch seen.
    last_batch: Option<u32>,
}

impl SegmentIndex {
    pub fn new(interval_bytes: u64) -> SegmentIndex {
        SegmentIndex {
            interval_bytes,
            offsets: Vec::new(),
            times: Vec::new(),
            bytes_since_entry: 0,
            max_timestamp: -1,
            last_batch: None,
        }
    }

    /// Records a batch appended (or found by a scan) at `position`.
    pub fn on_batch(&mut self, relative_base: u32, position: u32, size: u64, max_timestamp: i64) {
        let after_last_entry = self.offsets.last().is_none_or(|&(_, p)| position > p);
        if self.bytes_since_entry >= self.interval_bytes && position > 0 && after_last_entry {
            self.offsets.push((relative_base, position));
            if self
                .times
                .last()
                .is_none_or(|&(t, _)| self.max_timestamp > t)
            {
                self.times.push((self.max_timestamp, relative_base));
            }
            self.bytes_since_entry = 0;
        }
        self.bytes_since_entry += size;
        self.max_timestamp = self.max_timestamp.max(max_timestamp);
        self.last_batch = Some(relative_base);
    }

    /// The last entry at or below `relative`: `(relative offset, position)`
    /// of a batch at or before the one holding `relative`. `None`: start at
    /// the beginning of the segment.
    pub fn entry_at_or_before(&self, relative: u32) -> Option<(u32, u32)> {
        let idx = self.offsets.partition_point(|&(rel, _)| rel <= relative);
        idx.checked_sub(1).map(|i| self.offsets[i])
    }

    /// A relative offset at or before the first batch whose max timestamp is
    /// at least `timestamp` (`None`: start of the segment).
    pub fn scan_start_for_timestamp(&self, timestamp: i64) -> Option<u32> {
        let idx = self.times.partition_point(|&(t, _)| t < timestamp);
        if idx == 0 {
            None
        } else {
            Some(self.times[idx - 1].1)
        }
    }

    /// Largest batch max timestamp in the segment, -1 when none.
    pub fn max_timestamp(&self) -> i64 {
        self.max_timestamp
    }

    /// The last offset index entry: `(relative offset, position)`.
    pub fn last_entry(&self) -> Option<(u32, u32)> {
        self.offsets.last().copied()
    }

    pub fn encode_offsets(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.offsets.len() * OFFSET_ENTRY_LEN);
        for (rel, pos) in &self.offsets {
            out.extend_from_slice(&rel.to_be_bytes());
            out.extend_from_slice(&pos.to_be_bytes());
        }
        out
    }

    /// The time index, closed with an entry for the segment's max timestamp
    /// so that it survives a reload.
    pub fn encode_times(&self) -> Vec<u8> {
        let mut times = self.times.clone();
        if let Some(last) = self.last_batch
            && self.max_timestamp >= 0
            && times.last().is_none_or(|&(t, _)| self.max_timestamp > t)
        {
            times.push((self.max_timestamp, last));
        }
        let mut out = Vec::with_capacity(times.len() * TIME_ENTRY_LEN);
        for (ts, rel) in &times {
            out.extend_from_slice(&ts.to_be_bytes());
            out.extend_from_slice(&rel.to_be_bytes());
        }
        out
    }

    /// Parses persisted index files of a segment of `segment_size` bytes
    /// holding relative offsets below `relative_end`. `None` when either file
    /// is not sane (bad length, entries out of order or out of range): the
    /// caller then rebuilds from the log.
    pub fn decode(
        interval_bytes: u64,
        offsets: &[u8],
        times: &[u8],
        segment_size: u64,
        relative_end: u64,
    ) -> Option<SegmentIndex> {
        if !offsets.len().is_multiple_of(OFFSET_ENTRY_LEN)
            || !times.len().is_multiple_of(TIME_ENTRY_LEN)
        {
            return None;
        }
        let mut index = SegmentIndex::new(interval_bytes);
        for entry in offsets.chunks_exact(OFFSET_ENTRY_LEN) {
            let rel = u32::from_be_bytes([entry[0], entry[1], entry[2], entry[3]]);
            let pos = u32::from_be_bytes([entry[4], entry[5], entry[6], entry[7]]);
            let ordered = index
                .offsets
                .last()
                .is_none_or(|&(r, p)| rel > r && pos > p);
            if !ordered
                || pos == 0
                || u64::from(pos) >= segment_size
                || u64::from(rel) >= relative_end
            {
                return None;
            }
            index.offsets.push((rel, pos));
        }
        for entry in times.chunks_exact(TIME_ENTRY_LEN) {
            let mut ts = [0u8; 8];
            ts.copy_from_slice(&entry[..8]);
            let ts = i64::from_be_bytes(ts);
            let rel = u32::from_be_bytes([entry[8], entry[9], entry[10], entry[11]]);
            let ordered = index.times.last().is_none_or(|&(t, r)| ts > t && rel >= r);
            if !ordered || u64::from(rel) >= relative_end {
                return None;
            }
            index.times.push((ts, rel));
        }
        if let Some(&(ts, rel)) = index.times.last() {
            index.max_timestamp = ts;
            index.last_batch = Some(rel);
        }
        Some(index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> SegmentIndex {
        let mut index = SegmentIndex::new(100);
        // 10 batches of 60 bytes, 5 records each, timestamps rising but for
        // batch 4.
        let timestamps = [10, 20, 30, 40, 5, 60, 70, 80, 90, 100];
        for (i, ts) in timestamps.into_iter().enumerate() {
            index.on_batch(i as u32 * 5, i as u32 * 60, 60, ts);
        }
        index
    }

    #[test]
    fn entries_follow_the_interval() {
        let index = sample();
        assert_eq!(
            index.offsets,
            vec![(10, 120), (20, 240), (30, 360), (40, 480)]
        );
        assert_eq!(index.times, vec![(20, 10), (40, 20), (60, 30), (80, 40)]);
        assert_eq!(index.max_timestamp(), 100);
    }

    #[test]
    fn lookups_land_at_or_before_the_target() {
        let index = sample();
        assert_eq!(index.entry_at_or_before(0), None);
        assert_eq!(index.entry_at_or_before(9), None);
        assert_eq!(index.entry_at_or_before(10), Some((10, 120)));
        assert_eq!(index.entry_at_or_before(29), Some((20, 240)));
        assert_eq!(index.entry_at_or_before(1_000), Some((40, 480)));
        assert_eq!(index.scan_start_for_timestamp(20), None);
        assert_eq!(index.scan_start_for_timestamp(21), Some(10));
        assert_eq!(index.scan_start_for_timestamp(61), Some(30));
        assert_eq!(index.scan_start_for_timestamp(1_000), Some(40));
    }

    #[test]
    fn persisted_indexes_reload() {
        let index = sample();
        let loaded =
            SegmentIndex::decode(100, &index.encode_offsets(), &index.encode_times(), 600, 50)
                .unwrap();
        assert_eq!(loaded.offsets, index.offsets);
        assert_eq!(loaded.max_timestamp(), 100);
        assert_eq!(loaded.times.last(), Some(&(100, 45)));
    }

    #[test]
    fn insane_index_files_are_refused() {
        let index = sample();
        let offsets = index.encode_offsets();
        let times = index.encode_times();
        // Cut entry, position past the segment, offset past the end.
        assert!(SegmentIndex::decode(100, &offsets[..7], &times, 600, 50).is_none());
        assert!(SegmentIndex::decode(100, &offsets, &times, 400, 50).is_none());
        assert!(SegmentIndex::decode(100, &offsets, &times, 600, 40).is_none());
        // Entries out of order.
        let mut swapped = offsets[8..16].to_vec();
        swapped.extend_from_slice(&offsets[..8]);
        assert!(SegmentIndex::decode(100, &swapped, &[], 600, 50).is_none());
        // Times not increasing.
        let mut times_swapped = times[12..24].to_vec();
        times_swapped.extend_from_slice(&times[..12]);
        assert!(SegmentIndex::decode(100, &offsets, &times_swapped, 600, 50).is_none());
    }
}
