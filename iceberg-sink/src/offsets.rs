//! Per-partition next offsets stored in an Iceberg snapshot summary.

use std::collections::BTreeMap;

const KEY_PREFIX: &str = "floe.next-offset.";
/// The id of the topic incarnation the offsets belong to: a topic deleted
/// and created again under the same name starts over at offset 0.
const TOPIC_ID_KEY: &str = "floe.topic-id";

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
    topic_id: Option<String>,
}

/// `next offsets p0=10 p1=7 (topic id ...)`, at most 8 partitions listed.
impl std::fmt::Display for CommittedOffsets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.next.is_empty() {
            f.write_str("no offsets")?;
        } else {
            f.write_str("next offsets")?;
            for (p, o) in self.next.iter().take(8) {
                write!(f, " p{p}={o}")?;
            }
            if self.next.len() > 8 {
                write!(f, " and {} more partitions", self.next.len() - 8)?;
            }
        }
        if let Some(id) = &self.topic_id {
            write!(f, " (topic id {id})")?;
        }
        Ok(())
    }
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

    /// `(partition, next offset)` in partition order.
    pub fn iter(&self) -> impl Iterator<Item = (i32, i64)> + '_ {
        self.next.iter().map(|(p, o)| (*p, *o))
    }

    /// Tags the offsets with the topic incarnation they belong to.
    pub fn with_topic_id(mut self, topic_id: impl Into<String>) -> Self {
        self.topic_id = Some(topic_id.into());
        self
    }

    pub fn topic_id(&self) -> Option<&str> {
        self.topic_id.as_deref()
    }

    /// These offsets combined with `newer`: per partition the larger one,
    /// unless `newer` belongs to another topic incarnation, which replaces
    /// them whole.
    pub fn merged_with(mut self, newer: &CommittedOffsets) -> CommittedOffsets {
        if newer.topic_id.is_some() && newer.topic_id != self.topic_id {
            return newer.clone();
        }
        for (partition, next) in newer.iter() {
            self.advance(partition, next);
        }
        self
    }

    /// Summary properties to attach to a snapshot.
    pub fn to_summary(&self) -> BTreeMap<String, String> {
        let mut out: BTreeMap<String, String> = self
            .next
            .iter()
            .map(|(p, o)| (format!("{KEY_PREFIX}{p}"), o.to_string()))
            .collect();
        if let Some(id) = &self.topic_id {
            out.insert(TOPIC_ID_KEY.to_string(), id.clone());
        }
        out
    }

    /// Reads the offsets back from a snapshot summary; other keys are ignored.
    pub fn from_summary(summary: &BTreeMap<String, String>) -> Result<Self, OffsetsError> {
        let mut out = CommittedOffsets::default();
        for (key, value) in summary {
            if key == TOPIC_ID_KEY {
                out.topic_id = Some(value.clone());
                continue;
            }
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
    fn a_new_topic_incarnation_replaces_the_offsets() {
        let mut old = CommittedOffsets::default().with_topic_id("a");
        old.advance(0, 1000);
        old.advance(1, 500);
        let back = CommittedOffsets::from_summary(&old.to_summary()).unwrap();
        assert_eq!(back, old);
        let mut same = CommittedOffsets::default().with_topic_id("a");
        same.advance(0, 10);
        assert_eq!(back.clone().merged_with(&same).next_offset(0), Some(1000));
        let mut fresh = CommittedOffsets::default().with_topic_id("b");
        fresh.advance(0, 10);
        let merged = back.merged_with(&fresh);
        assert_eq!(merged.next_offset(0), Some(10));
        assert_eq!(merged.next_offset(1), None);
        assert_eq!(merged.topic_id(), Some("b"));
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
