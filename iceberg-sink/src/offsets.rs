//! Per-partition next offsets stored in an Iceberg snapshot summary.

use std::collections::BTreeMap;

const KEY_PREFIX: &str = "floe.next-offset.";

/// A summary entry that does not hold a valid offset.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OffsetsError {
    #[error("snapshot summary key {key} has invalid value {value:?}")]
    InvalidEntry { key: String, value: String },
}

/// The next offset to project, per partition, as of one snapshot.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommittedOffsets {
    next: BTreeMap<i32, i64>,
}

impl CommittedOffsets {
    /// Records that everything below `next_offset` of `partition` is in the
    /// table. Offsets never move backwards.
    pub fn advance(&mut self, partition: i32, next_offset: i64) {
        let entry = self.next.entry(partition).or_insert(next_offset);
        *entry = (*entry).max(next_offset);
    }

    pub fn next_offset(&self, partition: i32) -> Option<i64> {
        self.next.get(&partition).copied()
    }

    /// Summary properties to attach to a snapshot.
    pub fn to_summary(&self) -> BTreeMap<String, String> {
        self.next
            .iter()
            .map(|(p, o)| (format!("{KEY_PREFIX}{p}"), o.to_string()))
            .collect()
    }

    /// Reads the offsets back from a snapshot summary; other keys are ignored.
    pub fn from_summary(summary: &BTreeMap<String, String>) -> Result<Self, OffsetsError> {
        let mut out = CommittedOffsets::default();
        for (key, value) in summary {
            let Some(partition) = key.strip_prefix(KEY_PREFIX) else {
                continue;
            };
            let invalid = || OffsetsError::InvalidEntry {
                key: key.clone(),
                value: value.clone(),
            };
            let partition: i32 = partition.parse().map_err(|_| invalid())?;
            let offset: i64 = value.parse().map_err(|_| invalid())?;
            if partition < 0 || offset < 0 {
                return Err(invalid());
            }
            out.advance(partition, offset);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_never_move_backwards() {
        let mut o = CommittedOffsets::default();
        o.advance(1, 10);
        o.advance(1, 5);
        assert_eq!(o.next_offset(1), Some(10));
    }

    #[test]
    fn invalid_summary_entries_are_errors() {
        let mut s = BTreeMap::new();
        s.insert("floe.next-offset.x".to_string(), "1".to_string());
        assert!(CommittedOffsets::from_summary(&s).is_err());
        let mut s = BTreeMap::new();
        s.insert("other".to_string(), "zzz".to_string());
        assert_eq!(
            CommittedOffsets::from_summary(&s).unwrap(),
            CommittedOffsets::default()
        );
    }
}
