//! Partition manifests (`manifest.json`) and topic manifests (`topic.json`).
//!
//! The partition manifest is the source of truth of the remote tier: an
//! object is part of the log only once a manifest lists it. Manifests are
//! JSON and written with one PUT (atomic in object stores; the local
//! directory store writes a temporary file and renames it, and
//! [`Remote::put`] fsyncs it).
//!
//! Each process keeps one cached copy per partition inside its [`Remote`];
//! every write goes through [`Remote::update_manifest`], which serializes
//! writers of the same partition. Floe has one writer per partition (the
//! broker that owns it), so the cache is authoritative for that process.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::layout::{SegmentName, manifest_key, topic_key};
use crate::retry::retry;
use crate::store::Remote;

/// Manifest format version written by this crate.
pub const MANIFEST_VERSION: u32 = 1;

/// One uploaded segment as listed in the partition manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentMeta {
    /// Base offset of the first batch in the object.
    pub base_offset: i64,
    /// Last offset of the last batch in the object.
    pub last_offset: i64,
    /// Base timestamp of the first batch.
    pub base_timestamp: i64,
    /// Largest `max_timestamp` of any batch.
    pub max_timestamp: i64,
    /// Size of the `.log` object in bytes.
    pub size_bytes: u64,
    /// CRC32C of the whole `.log` object.
    pub crc32c: u32,
    /// Leader epoch the segment was written under.
    pub epoch: i64,
    /// Size of the `.index` object in bytes.
    pub index_size: u64,
    /// Number of record batches in the object.
    pub batch_count: u64,
    /// When the manifest entry was made, ms since the Unix epoch.
    pub uploaded_at_ms: i64,
}

impl SegmentMeta {
    /// The object-name identity of this segment.
    pub fn name(&self) -> SegmentName {
        SegmentName {
            base_offset: self.base_offset,
            last_offset: self.last_offset,
            epoch: self.epoch,
        }
    }
}

/// The partition manifest: which segments the remote tier holds and from
/// which offset the partition is readable.
///
/// Invariants (checked by [`PartitionManifest::validate`] on every load and
/// save): segments are sorted by base offset, each has
/// `base_offset <= last_offset`, and they do not overlap. Gaps between
/// segments are allowed (a local log truncated or compacted before upload
/// leaves one); a read in a gap continues at the next segment, as a Kafka
/// fetch does. Segments wholly below `remote_start_offset` are logically
/// deleted and may still be listed only until retention removes them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionManifest {
    pub version: u32,
    pub topic: String,
    pub partition: i32,
    /// The earliest offset readable from the remote tier (moved by retention
    /// and delete-records).
    pub remote_start_offset: i64,
    pub segments: Vec<SegmentMeta>,
    /// Last write, ms since the Unix epoch.
    pub updated_at_ms: i64,
}

impl PartitionManifest {
    /// An empty manifest starting at offset 0.
    pub fn new(topic: &str, partition: i32) -> PartitionManifest {
        PartitionManifest {
            version: MANIFEST_VERSION,
            topic: topic.to_owned(),
            partition,
            remote_start_offset: 0,
            segments: Vec::new(),
            updated_at_ms: now_ms(),
        }
    }

    /// The offset after the last uploaded one (the remote tier's end); equal
    /// to `remote_start_offset` when nothing readable is uploaded.
    pub fn next_offset(&self) -> i64 {
        self.segments
            .last()
            .map_or(self.remote_start_offset, |s| s.last_offset + 1)
            .max(self.remote_start_offset)
    }

    /// Segments holding at least one offset at or after the remote start.
    pub fn live_segments(&self) -> &[SegmentMeta] {
        let first = self
            .segments
            .partition_point(|s| s.last_offset < self.remote_start_offset);
        &self.segments[first..]
    }

    /// The first live segment holding `offset` or, when `offset` falls in a
    /// gap, the first one after it.
    pub fn segment_for(&self, offset: i64) -> Option<&SegmentMeta> {
        let live = self.live_segments();
        let i = live.partition_point(|s| s.last_offset < offset);
        live.get(i)
    }

    /// Bytes of the live segments.
    pub fn live_bytes(&self) -> u64 {
        self.live_segments().iter().map(|s| s.size_bytes).sum()
    }

    /// Checks the invariants listed on the type.
    pub fn validate(&self) -> Result<(), String> {
        if self.version != MANIFEST_VERSION {
            return Err(format!("unsupported version {}", self.version));
        }
        if self.remote_start_offset < 0 {
            return Err(format!(
                "negative remote start offset {}",
                self.remote_start_offset
            ));
        }
        let mut previous: Option<&SegmentMeta> = None;
        for s in &self.segments {
            if s.base_offset < 0 || s.base_offset > s.last_offset {
                return Err(format!(
                    "segment {}..={} has a bad offset range",
                    s.base_offset, s.last_offset
                ));
            }
            if let Some(p) = previous
                && s.base_offset <= p.last_offset
            {
                return Err(format!(
                    "segment {}..={} overlaps or precedes {}..={}",
                    s.base_offset, s.last_offset, p.base_offset, p.last_offset
                ));
            }
            previous = Some(s);
        }
        Ok(())
    }

    /// Serializes to JSON.
    pub fn to_json(&self) -> Bytes {
        Bytes::from(serde_json::to_vec_pretty(self).expect("manifest serializes"))
    }

    /// Parses and validates a manifest read from `key`.
    pub fn from_json(key: &str, bytes: &[u8]) -> Result<PartitionManifest> {
        let manifest: PartitionManifest =
            serde_json::from_slice(bytes).map_err(|e| Error::CorruptManifest {
                key: key.to_owned(),
                reason: e.to_string(),
            })?;
        manifest
            .validate()
            .map_err(|reason| Error::CorruptManifest {
                key: key.to_owned(),
                reason,
            })?;
        Ok(manifest)
    }
}

/// `topic.json`: what recovery needs to recreate a topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicManifest {
    pub version: u32,
    pub topic: String,
    pub partition_count: i32,
    /// Explicitly set topic configs (Kafka names).
    pub configs: BTreeMap<String, String>,
    /// Last write, ms since the Unix epoch.
    pub updated_at_ms: i64,
}

impl TopicManifest {
    /// A topic manifest for `topic` with `partition_count` partitions.
    pub fn new(
        topic: &str,
        partition_count: i32,
        configs: BTreeMap<String, String>,
    ) -> TopicManifest {
        TopicManifest {
            version: MANIFEST_VERSION,
            topic: topic.to_owned(),
            partition_count,
            configs,
            updated_at_ms: now_ms(),
        }
    }
}

/// The per-process cache of partition manifests, held by [`Remote`].
#[derive(Default)]
pub(crate) struct ManifestSlots {
    cached: Mutex<HashMap<(String, i32), Arc<PartitionManifest>>>,
}

impl ManifestSlots {
    fn get(&self, topic: &str, partition: i32) -> Option<Arc<PartitionManifest>> {
        self.cached
            .lock()
            .expect("manifest cache poisoned")
            .get(&(topic.to_owned(), partition))
            .cloned()
    }

    fn set(&self, topic: &str, partition: i32, manifest: Option<Arc<PartitionManifest>>) {
        let mut cached = self.cached.lock().expect("manifest cache poisoned");
        match manifest {
            Some(m) => cached.insert((topic.to_owned(), partition), m),
            None => cached.remove(&(topic.to_owned(), partition)),
        };
    }

    pub(crate) fn forget_topic(&self, topic: &str) {
        self.cached
            .lock()
            .expect("manifest cache poisoned")
            .retain(|(t, _), _| t != topic);
    }
}

impl Remote {
    /// Reads a partition manifest from the store (no cache); `None` when the
    /// partition has none.
    pub async fn load_manifest(
        &self,
        topic: &str,
        partition: i32,
    ) -> Result<Option<PartitionManifest>> {
        let key = manifest_key(topic, partition);
        let bytes = match retry(self.retry(), "load manifest", || self.get(&key)).await {
            Ok(bytes) => bytes,
            Err(e) if e.is_not_found() => return Ok(None),
            Err(e) => return Err(e),
        };
        let manifest = PartitionManifest::from_json(&key, &bytes)?;
        if manifest.topic != topic || manifest.partition != partition {
            return Err(Error::CorruptManifest {
                key,
                reason: format!("lists {}/{} instead", manifest.topic, manifest.partition),
            });
        }
        Ok(Some(manifest))
    }

    /// The partition manifest, from this process's cache or the store.
    pub async fn manifest(
        &self,
        topic: &str,
        partition: i32,
    ) -> Result<Option<Arc<PartitionManifest>>> {
        if let Some(m) = self.manifests().get(topic, partition) {
            return Ok(Some(m));
        }
        self.refresh_manifest(topic, partition).await
    }

    /// Reloads the partition manifest from the store into the cache.
    pub async fn refresh_manifest(
        &self,
        topic: &str,
        partition: i32,
    ) -> Result<Option<Arc<PartitionManifest>>> {
        let lock = self.lock_for(&format!("manifest:{topic}/{partition}"));
        let _guard = lock.lock().await;
        let loaded = self.load_manifest(topic, partition).await?.map(Arc::new);
        self.manifests().set(topic, partition, loaded.clone());
        Ok(loaded)
    }

    /// Read-modify-write of a partition manifest, serialized per partition.
    ///
    /// `change` gets the current manifest (or a new empty one) and returns
    /// whether it changed it plus a value passed back. A changed manifest is
    /// validated and saved with one PUT before the cache sees it; when the
    /// save fails the cache entry is dropped, so the next access rereads
    /// what the store really holds.
    pub async fn update_manifest<T>(
        &self,
        topic: &str,
        partition: i32,
        change: impl FnOnce(&mut PartitionManifest) -> Result<(bool, T)>,
    ) -> Result<(Arc<PartitionManifest>, T)> {
        let lock = self.lock_for(&format!("manifest:{topic}/{partition}"));
        let _guard = lock.lock().await;
        let current = match self.manifests().get(topic, partition) {
            Some(m) => Some(m),
            None => self.load_manifest(topic, partition).await?.map(Arc::new),
        };
        let mut next = current
            .as_deref()
            .cloned()
            .unwrap_or_else(|| PartitionManifest::new(topic, partition));
        let (changed, value) = change(&mut next)?;
        if !changed {
            let current = current.unwrap_or_else(|| Arc::new(next));
            return Ok((current, value));
        }
        next.updated_at_ms = now_ms();
        let key = manifest_key(topic, partition);
        next.validate().map_err(|reason| Error::CorruptManifest {
            key: key.clone(),
            reason: format!("refusing to save: {reason}"),
        })?;
        let body = next.to_json();
        let saved = retry(self.retry(), "save manifest", || {
            self.put(&key, body.clone())
        })
        .await;
        match saved {
            Ok(()) => {
                let next = Arc::new(next);
                self.manifests().set(topic, partition, Some(next.clone()));
                Ok((next, value))
            }
            Err(e) => {
                self.manifests().set(topic, partition, None);
                Err(e)
            }
        }
    }

    /// Writes `topic.json` (create or replace).
    pub async fn save_topic(&self, manifest: &TopicManifest) -> Result<()> {
        let key = topic_key(&manifest.topic);
        let body = Bytes::from(serde_json::to_vec_pretty(manifest).expect("topic serializes"));
        retry(self.retry(), "save topic manifest", || {
            self.put(&key, body.clone())
        })
        .await
    }

    /// Reads `topic.json`; `None` when the topic has none.
    pub async fn load_topic(&self, topic: &str) -> Result<Option<TopicManifest>> {
        let key = topic_key(topic);
        let bytes = match retry(self.retry(), "load topic manifest", || self.get(&key)).await {
            Ok(bytes) => bytes,
            Err(e) if e.is_not_found() => return Ok(None),
            Err(e) => return Err(e),
        };
        let manifest: TopicManifest =
            serde_json::from_slice(&bytes).map_err(|e| Error::CorruptManifest {
                key: key.clone(),
                reason: e.to_string(),
            })?;
        if manifest.topic != topic || manifest.partition_count < 1 {
            return Err(Error::CorruptManifest {
                key,
                reason: format!(
                    "names topic {:?} with {} partitions",
                    manifest.topic, manifest.partition_count
                ),
            });
        }
        Ok(Some(manifest))
    }

    /// Names of the topics that have a directory under `topics/`, sorted.
    pub async fn list_topic_names(&self) -> Result<Vec<String>> {
        retry(self.retry(), "list topics", || self.list_dirs("topics")).await
    }
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(base: i64, last: i64) -> SegmentMeta {
        SegmentMeta {
            base_offset: base,
            last_offset: last,
            base_timestamp: 0,
            max_timestamp: 0,
            size_bytes: 10,
            crc32c: 0,
            epoch: 0,
            index_size: 0,
            batch_count: 1,
            uploaded_at_ms: 0,
        }
    }

    #[test]
    fn validate_catches_overlap_and_disorder() {
        let mut m = PartitionManifest::new("t", 0);
        m.segments = vec![seg(0, 9), seg(10, 19), seg(25, 30)];
        assert!(m.validate().is_ok(), "a gap is allowed");
        m.segments = vec![seg(0, 9), seg(9, 19)];
        assert!(m.validate().is_err());
        m.segments = vec![seg(10, 19), seg(0, 9)];
        assert!(m.validate().is_err());
        m.segments = vec![seg(5, 4)];
        assert!(m.validate().is_err());
    }

    #[test]
    fn lookups_skip_deleted_segments_and_gaps() {
        let mut m = PartitionManifest::new("t", 0);
        assert_eq!(m.next_offset(), 0);
        m.segments = vec![seg(0, 9), seg(10, 19), seg(25, 30)];
        m.remote_start_offset = 12;
        assert_eq!(m.next_offset(), 31);
        assert_eq!(m.live_segments().len(), 2);
        assert_eq!(m.segment_for(12).unwrap().base_offset, 10);
        assert_eq!(m.segment_for(21).unwrap().base_offset, 25);
        assert!(m.segment_for(31).is_none());
        assert_eq!(m.live_bytes(), 20);
        m.remote_start_offset = 40;
        assert_eq!(m.next_offset(), 40);
    }

    #[test]
    fn json_round_trip_and_corrupt_input() {
        let mut m = PartitionManifest::new("t", 3);
        m.segments = vec![seg(0, 9)];
        let back = PartitionManifest::from_json("k", &m.to_json()).unwrap();
        assert_eq!(back, m);
        assert!(matches!(
            PartitionManifest::from_json("k", b"{\"version\":1"),
            Err(Error::CorruptManifest { .. })
        ));
        m.segments.push(seg(5, 20));
        assert!(matches!(
            PartitionManifest::from_json("k", &m.to_json()),
            Err(Error::CorruptManifest { .. })
        ));
    }
}
