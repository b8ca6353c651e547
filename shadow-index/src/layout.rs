//! Object-store layout (DESIGN section 6):
//!
//! ```text
//! <prefix>/topics/<topic>/topic.json
//! <prefix>/topics/<topic>/<partition>/manifest.json
//! <prefix>/topics/<topic>/<partition>/<base:020>-<last:020>-<epoch>.log
//! <prefix>/topics/<topic>/<partition>/<base:020>-<last:020>-<epoch>.index
//! ```

/// The identity of an uploaded segment: its offset range and epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SegmentName {
    pub base_offset: i64,
    pub last_offset: i64,
    pub epoch: i64,
}

impl SegmentName {
    /// `<base:020>-<last:020>-<epoch>`.
    pub fn file_stem(&self) -> String {
        format!(
            "{:020}-{:020}-{}",
            self.base_offset, self.last_offset, self.epoch
        )
    }

    /// Parses a file stem written by [`SegmentName::file_stem`].
    pub fn parse(stem: &str) -> Option<SegmentName> {
        let mut parts = stem.splitn(3, '-');
        let base = parts.next()?;
        let last = parts.next()?;
        let epoch = parts.next()?;
        if base.len() != 20 || last.len() != 20 {
            return None;
        }
        let name = SegmentName {
            base_offset: base.parse().ok()?,
            last_offset: last.parse().ok()?,
            epoch: epoch.parse().ok()?,
        };
        (name.base_offset <= name.last_offset && name.epoch >= 0).then_some(name)
    }

    /// Object key of the segment data.
    pub fn log_key(&self, topic: &str, partition: i32) -> String {
        format!(
            "{}/{}.log",
            partition_prefix(topic, partition),
            self.file_stem()
        )
    }

    /// Object key of the segment's offset/time index.
    pub fn index_key(&self, topic: &str, partition: i32) -> String {
        format!(
            "{}/{}.index",
            partition_prefix(topic, partition),
            self.file_stem()
        )
    }
}

/// `topics/<topic>/<partition>`.
pub fn partition_prefix(topic: &str, partition: i32) -> String {
    format!("topics/{topic}/{partition}")
}

/// `topics/<topic>/<partition>/manifest.json`.
pub fn manifest_key(topic: &str, partition: i32) -> String {
    format!("{}/manifest.json", partition_prefix(topic, partition))
}

/// `topics/<topic>/topic.json`.
pub fn topic_key(topic: &str) -> String {
    format!("topics/{topic}/topic.json")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_rejects_malformed_stems() {
        assert_eq!(SegmentName::parse("12-34-1"), None);
        assert_eq!(
            SegmentName::parse("00000000000000000010-00000000000000000001-0"),
            None,
            "last below base"
        );
        assert_eq!(
            SegmentName::parse("0000000000000000001x-00000000000000000011-0"),
            None
        );
    }

    #[test]
    fn keys_follow_the_layout() {
        assert_eq!(manifest_key("t", 0), "topics/t/0/manifest.json");
        assert_eq!(topic_key("t"), "topics/t/topic.json");
    }
}
