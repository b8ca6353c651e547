//! Retention fences: per-partition offsets that retention must not delete
//! past.
//!
//! The Iceberg projector publishes, for every partition of a projected
//! topic, the next offset its table holds (the offset committed in the
//! table's snapshot summary). Local and remote retention delete only what
//! lies entirely below it, so a record is never deleted before it is in the
//! table. A projected partition without a published fence (the projector
//! has not loaded its table yet, e.g. right after a restart) deletes
//! nothing.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::topics::TopicPartition;

/// Thread-safe: the projector sets fences from the cloud plane, the shards
/// read them in their retention passes.
#[derive(Debug, Default)]
pub struct RetentionFences {
    fences: Mutex<HashMap<TopicPartition, i64>>,
}

impl RetentionFences {
    /// Everything below `next_offset` of `tp` may be deleted by retention.
    /// Fences only move forward.
    pub fn advance(&self, tp: &TopicPartition, next_offset: i64) {
        let mut fences = self.fences.lock().unwrap_or_else(|e| e.into_inner());
        let entry = fences.entry(tp.clone()).or_insert(next_offset);
        *entry = (*entry).max(next_offset);
    }

    /// The fence of `tp`, if the projector published one.
    pub fn get(&self, tp: &TopicPartition) -> Option<i64> {
        let fences = self.fences.lock().unwrap_or_else(|e| e.into_inner());
        fences.get(tp).copied()
    }

    /// Forgets a topic's fences (its projection stopped or it was deleted).
    pub fn remove_topic(&self, topic: &str) {
        let mut fences = self.fences.lock().unwrap_or_else(|e| e.into_inner());
        fences.retain(|tp, _| tp.topic != topic);
    }

    /// The offset retention of `tp` must stay below when the topic is
    /// projected: the published fence, or `i64::MIN` (delete nothing) while
    /// none is published. `None` when the topic is not projected.
    pub fn limit(&self, tp: &TopicPartition, projected: bool) -> Option<i64> {
        projected.then(|| self.get(tp).unwrap_or(i64::MIN))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fences_move_forward_and_default_to_keep_everything() {
        let fences = RetentionFences::default();
        let tp = TopicPartition::new("t", 0);
        assert_eq!(fences.limit(&tp, false), None);
        assert_eq!(fences.limit(&tp, true), Some(i64::MIN));
        fences.advance(&tp, 10);
        fences.advance(&tp, 5);
        assert_eq!(fences.limit(&tp, true), Some(10));
        fences.remove_topic("t");
        assert_eq!(fences.get(&tp), None);
    }
}
