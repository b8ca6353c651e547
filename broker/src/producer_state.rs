//! Idempotent-producer state of one partition: per producer id, its epoch and
//! the last five batches it wrote, so a retried batch gets its original
//! offset back instead of being written twice.
//!
//! Pure logic: the partition checks every batch here before appending, and
//! records the batch after the append succeeds. The state is rebuilt after a
//! restart by replaying the batch headers of the log tail (see
//! `partition.rs`).

use std::collections::{HashMap, VecDeque};

use crate::error_code;

/// How many batches per producer are remembered for deduplication (Kafka's
/// `max.in.flight.requests.per.connection` limit for idempotence).
pub const DEDUP_WINDOW: usize = 5;

/// A batch written by a producer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchRecord {
    pub first_seq: i32,
    pub last_seq: i32,
    pub base_offset: i64,
    pub last_offset: i64,
}

#[derive(Debug, Clone, Default)]
struct ProducerEntry {
    epoch: i16,
    batches: VecDeque<BatchRecord>,
}

/// The result of checking a batch before the append.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SequenceCheck {
    /// Not idempotent, or the next expected sequence: append it.
    Append,
    /// Already written: answer with the original offsets, append nothing.
    Duplicate(BatchRecord),
    /// Refused with this Kafka error code.
    Reject(i16),
}

/// The last sequence number of a batch, wrapping at `i32::MAX` as Kafka does.
pub fn last_sequence(first_seq: i32, record_count: i32) -> i32 {
    let last = i64::from(first_seq) + i64::from(record_count) - 1;
    if last > i64::from(i32::MAX) {
        (last - i64::from(i32::MAX) - 1) as i32
    } else {
        last as i32
    }
}

fn next_sequence(seq: i32) -> i32 {
    if seq == i32::MAX { 0 } else { seq + 1 }
}

/// One producer in a snapshot: id, epoch, remembered batches.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SnapshotEntry {
    pub producer_id: i64,
    pub epoch: i16,
    /// `(first_seq, last_seq, base_offset, last_offset)`, oldest first.
    pub batches: Vec<(i32, i32, i64, i64)>,
}

/// Producer states of one partition.
#[derive(Debug, Default)]
pub struct ProducerStates {
    producers: HashMap<i64, ProducerEntry>,
}

impl ProducerStates {
    /// Checks a batch from `producer_id` (-1 = not idempotent).
    pub fn check(
        &self,
        producer_id: i64,
        epoch: i16,
        first_seq: i32,
        last_seq: i32,
    ) -> SequenceCheck {
        if producer_id < 0 {
            return SequenceCheck::Append;
        }
        let Some(entry) = self.producers.get(&producer_id) else {
            // Unknown producer: a fresh one starts at 0. A non-zero start
            // means its earlier state is gone (retention, or a log we did not
            // keep): Kafka answers UNKNOWN_PRODUCER_ID and the client resets.
            return if first_seq == 0 {
                SequenceCheck::Append
            } else {
                SequenceCheck::Reject(error_code::UNKNOWN_PRODUCER_ID)
            };
        };
        if epoch < entry.epoch {
            return SequenceCheck::Reject(error_code::INVALID_PRODUCER_EPOCH);
        }
        if epoch > entry.epoch {
            return if first_seq == 0 {
                SequenceCheck::Append
            } else {
                SequenceCheck::Reject(error_code::OUT_OF_ORDER_SEQUENCE_NUMBER)
            };
        }
        if let Some(b) = entry
            .batches
            .iter()
            .find(|b| b.first_seq == first_seq && b.last_seq == last_seq)
        {
            return SequenceCheck::Duplicate(*b);
        }
        match entry.batches.back() {
            Some(last) if next_sequence(last.last_seq) == first_seq => SequenceCheck::Append,
            Some(_) => {
                // An older batch outside the window, or a gap.
                if entry
                    .batches
                    .front()
                    .is_some_and(|f| seq_before(first_seq, f.first_seq))
                {
                    SequenceCheck::Reject(error_code::DUPLICATE_SEQUENCE_NUMBER)
                } else {
                    SequenceCheck::Reject(error_code::OUT_OF_ORDER_SEQUENCE_NUMBER)
                }
            }
            None if first_seq == 0 => SequenceCheck::Append,
            None => SequenceCheck::Reject(error_code::OUT_OF_ORDER_SEQUENCE_NUMBER),
        }
    }

    /// Records a batch that was appended (or replayed from the log).
    pub fn record(&mut self, producer_id: i64, epoch: i16, batch: BatchRecord) {
        if producer_id < 0 {
            return;
        }
        let entry = self.producers.entry(producer_id).or_default();
        if epoch != entry.epoch {
            entry.epoch = epoch;
            entry.batches.clear();
        }
        entry.batches.push_back(batch);
        while entry.batches.len() > DEDUP_WINDOW {
            entry.batches.pop_front();
        }
    }

    /// Forgets batches whose offsets are below `log_start` (deleted by
    /// retention), and producers left with none.
    pub fn trim_below(&mut self, log_start: i64) {
        self.producers.retain(|_, e| {
            e.batches.retain(|b| b.last_offset >= log_start);
            !e.batches.is_empty()
        });
    }

    /// The state as of `end_offset`: only batches that end below it.
    pub fn snapshot(&self, end_offset: i64) -> Vec<SnapshotEntry> {
        let mut out: Vec<SnapshotEntry> = self
            .producers
            .iter()
            .map(|(id, e)| SnapshotEntry {
                producer_id: *id,
                epoch: e.epoch,
                batches: e
                    .batches
                    .iter()
                    .filter(|b| b.last_offset < end_offset)
                    .map(|b| (b.first_seq, b.last_seq, b.base_offset, b.last_offset))
                    .collect(),
            })
            .filter(|e| !e.batches.is_empty())
            .collect();
        out.sort_by_key(|e| e.producer_id);
        out
    }

    /// Rebuilds the state from a snapshot.
    pub fn from_snapshot(entries: &[SnapshotEntry]) -> ProducerStates {
        let mut states = ProducerStates::default();
        for e in entries {
            for &(first_seq, last_seq, base_offset, last_offset) in &e.batches {
                states.record(
                    e.producer_id,
                    e.epoch,
                    BatchRecord {
                        first_seq,
                        last_seq,
                        base_offset,
                        last_offset,
                    },
                );
            }
        }
        states
    }

    pub fn len(&self) -> usize {
        self.producers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.producers.is_empty()
    }
}

/// Whether sequence `a` comes before `b` (no wrap handling beyond Kafka's:
/// sequences are compared as plain integers within a window).
fn seq_before(a: i32, b: i32) -> bool {
    a < b
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(first: i32, last: i32, base: i64) -> BatchRecord {
        BatchRecord {
            first_seq: first,
            last_seq: last,
            base_offset: base,
            last_offset: base + i64::from(last - first),
        }
    }

    #[test]
    fn in_order_batches_append_and_retries_are_duplicates() {
        let mut s = ProducerStates::default();
        assert_eq!(s.check(7, 0, 0, 9), SequenceCheck::Append);
        s.record(7, 0, batch(0, 9, 100));
        assert_eq!(s.check(7, 0, 10, 19), SequenceCheck::Append);
        s.record(7, 0, batch(10, 19, 110));
        assert_eq!(
            s.check(7, 0, 0, 9),
            SequenceCheck::Duplicate(batch(0, 9, 100))
        );
        assert_eq!(
            s.check(7, 0, 25, 30),
            SequenceCheck::Reject(error_code::OUT_OF_ORDER_SEQUENCE_NUMBER)
        );
    }

    #[test]
    fn old_epochs_are_fenced_and_new_epochs_restart_at_zero() {
        let mut s = ProducerStates::default();
        s.record(1, 3, batch(0, 0, 0));
        assert_eq!(
            s.check(1, 2, 1, 1),
            SequenceCheck::Reject(error_code::INVALID_PRODUCER_EPOCH)
        );
        assert_eq!(s.check(1, 4, 0, 5), SequenceCheck::Append);
        assert_eq!(
            s.check(1, 4, 3, 5),
            SequenceCheck::Reject(error_code::OUT_OF_ORDER_SEQUENCE_NUMBER)
        );
    }

    #[test]
    fn the_window_keeps_five_batches() {
        let mut s = ProducerStates::default();
        for i in 0..8 {
            s.record(1, 0, batch(i, i, i64::from(i)));
        }
        assert!(matches!(s.check(1, 0, 7, 7), SequenceCheck::Duplicate(_)));
        assert!(matches!(s.check(1, 0, 3, 3), SequenceCheck::Duplicate(_)));
        assert_eq!(
            s.check(1, 0, 2, 2),
            SequenceCheck::Reject(error_code::DUPLICATE_SEQUENCE_NUMBER)
        );
        assert_eq!(s.check(1, 0, 8, 8), SequenceCheck::Append);
    }

    #[test]
    fn snapshots_keep_only_batches_below_the_end_and_round_trip() {
        let mut s = ProducerStates::default();
        s.record(1, 2, batch(0, 4, 0));
        s.record(1, 2, batch(5, 9, 5));
        s.record(3, 0, batch(0, 0, 20));
        let snap = s.snapshot(10);
        assert_eq!(
            snap.len(),
            1,
            "producer 3's batch at offset 20 is beyond the end"
        );
        let back = ProducerStates::from_snapshot(&snap);
        assert!(matches!(
            back.check(1, 2, 5, 9),
            SequenceCheck::Duplicate(_)
        ));
        assert_eq!(back.check(1, 2, 10, 12), SequenceCheck::Append);
        assert_eq!(
            back.check(3, 0, 1, 1),
            SequenceCheck::Reject(error_code::UNKNOWN_PRODUCER_ID)
        );
    }

    #[test]
    fn sequences_wrap_at_i32_max() {
        assert_eq!(last_sequence(i32::MAX, 1), i32::MAX);
        assert_eq!(last_sequence(i32::MAX, 2), 0);
        let mut s = ProducerStates::default();
        s.record(1, 0, batch(i32::MAX - 1, i32::MAX, 0));
        assert_eq!(s.check(1, 0, 0, 4), SequenceCheck::Append);
    }

    #[test]
    fn unknown_producer_with_nonzero_sequence_is_reported() {
        let s = ProducerStates::default();
        assert_eq!(
            s.check(9, 0, 5, 6),
            SequenceCheck::Reject(error_code::UNKNOWN_PRODUCER_ID)
        );
        assert_eq!(s.check(-1, -1, -1, -1), SequenceCheck::Append);
    }
}
