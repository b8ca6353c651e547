//! Remote retention, delete-records, topic deletion and the orphan sweeper.
//!
//! Every operation that removes data moves the manifest first (one atomic
//! PUT) and deletes objects afterwards. A crash in between leaves unlisted
//! objects, which [`sweep_orphans`] removes later; a reader never finds a
//! manifest entry whose object is gone.

use std::collections::HashSet;
use std::time::Duration;

use crate::error::Result;
use crate::layout::{SegmentName, partition_prefix, topic_key};
use crate::manifest::{SegmentMeta, now_ms};
use crate::retry::retry;
use crate::store::Remote;

/// Topic retention as it applies to the remote tier.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetentionPolicy {
    /// `retention.ms`: a segment whose newest record is older than this is
    /// deleted. `None` (or Kafka's -1) keeps forever.
    pub retention_ms: Option<i64>,
    /// `retention.bytes`: the whole log (remote plus `local_only_bytes`) is
    /// trimmed, oldest segment first, until it fits. `None` = unlimited.
    pub retention_bytes: Option<u64>,
    /// Bytes of the log held only locally (offsets at or after the remote
    /// end), counted toward `retention_bytes`.
    pub local_only_bytes: u64,
    /// Never move the remote start past this offset (e.g. the Iceberg
    /// projector's committed offset).
    pub keep_from: Option<i64>,
    /// "Now" in ms since the Unix epoch; `None` = the system clock.
    pub now_ms: Option<i64>,
}

/// What a retention pass or delete did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetentionOutcome {
    /// The partition's remote start offset afterwards.
    pub remote_start_offset: i64,
    /// Segments removed from the manifest.
    pub deleted_segments: usize,
    /// Their bytes.
    pub deleted_bytes: u64,
}

/// Applies `policy` to one partition's remote tier: moves the remote start
/// past expired segments, saves the manifest, then deletes their objects.
/// Only a prefix of segments is ever removed (the oldest first).
pub async fn apply_retention(
    remote: &Remote,
    topic: &str,
    partition: i32,
    policy: &RetentionPolicy,
) -> Result<RetentionOutcome> {
    if remote.manifest(topic, partition).await?.is_none() {
        return Ok(RetentionOutcome::default());
    }
    let now = policy.now_ms.unwrap_or_else(now_ms);
    let policy = policy.clone();
    let (manifest, removed) = remote
        .update_manifest(topic, partition, move |m| {
            let live = m.live_segments();
            let mut total: u64 =
                live.iter().map(|s| s.size_bytes).sum::<u64>() + policy.local_only_bytes;
            let mut new_start = m.remote_start_offset;
            for s in live {
                if policy.keep_from.is_some_and(|keep| s.last_offset >= keep) {
                    break;
                }
                let expired = policy
                    .retention_ms
                    .is_some_and(|ms| ms >= 0 && s.max_timestamp < now.saturating_sub(ms));
                let oversized = policy.retention_bytes.is_some_and(|max| total > max);
                if !expired && !oversized {
                    break;
                }
                total -= s.size_bytes;
                new_start = s.last_offset + 1;
            }
            Ok(trim_to(m, new_start))
        })
        .await?;
    finish(
        remote,
        topic,
        partition,
        manifest.remote_start_offset,
        removed,
    )
    .await
}

/// Kafka DeleteRecords on the remote tier: the remote start becomes at least
/// `before_offset`; segments wholly below it are unlisted, then deleted.
pub async fn delete_records(
    remote: &Remote,
    topic: &str,
    partition: i32,
    before_offset: i64,
) -> Result<RetentionOutcome> {
    let (manifest, removed) = remote
        .update_manifest(topic, partition, move |m| Ok(trim_to(m, before_offset)))
        .await?;
    finish(
        remote,
        topic,
        partition,
        manifest.remote_start_offset,
        removed,
    )
    .await
}

/// Moves the start to `start` (never backwards) and unlists segments wholly
/// below it.
fn trim_to(m: &mut crate::manifest::PartitionManifest, start: i64) -> (bool, Vec<SegmentMeta>) {
    let mut changed = false;
    if start > m.remote_start_offset {
        m.remote_start_offset = start;
        changed = true;
    }
    let keep_from = m
        .segments
        .partition_point(|s| s.last_offset < m.remote_start_offset);
    let removed: Vec<SegmentMeta> = m.segments.drain(..keep_from).collect();
    (changed || !removed.is_empty(), removed)
}

async fn finish(
    remote: &Remote,
    topic: &str,
    partition: i32,
    remote_start_offset: i64,
    removed: Vec<SegmentMeta>,
) -> Result<RetentionOutcome> {
    let outcome = RetentionOutcome {
        remote_start_offset,
        deleted_segments: removed.len(),
        deleted_bytes: removed.iter().map(|s| s.size_bytes).sum(),
    };
    for s in &removed {
        let name = s.name();
        for key in [
            name.log_key(topic, partition),
            name.index_key(topic, partition),
        ] {
            retry(remote.retry(), "delete segment", || remote.delete(&key)).await?;
        }
        remote.metrics().retention_deleted_segments.inc();
    }
    Ok(outcome)
}

/// Deletes everything of `topic` in the remote tier: `topic.json` first (so
/// recovery cannot bring back a half-deleted topic), then the partition
/// manifests, then the data. Returns the number of objects deleted.
pub async fn delete_topic(remote: &Remote, topic: &str) -> Result<usize> {
    let topic_json = topic_key(topic);
    retry(remote.retry(), "delete topic manifest", || {
        remote.delete(&topic_json)
    })
    .await?;
    let prefix = format!("topics/{topic}");
    let mut objects = retry(remote.retry(), "list topic", || remote.list(&prefix)).await?;
    objects.sort_by_key(|o| !o.key.ends_with("/manifest.json"));
    remote.manifests().forget_topic(topic);
    for object in &objects {
        retry(remote.retry(), "delete topic object", || {
            remote.delete(&object.key)
        })
        .await?;
    }
    remote.manifests().forget_topic(topic);
    Ok(objects.len() + 1)
}

/// Deletes `.log` / `.index` objects of a partition that its manifest does
/// not list and that are older than `min_age` (leftovers of a crashed upload
/// or of an interrupted delete). Uploads of this process are excluded by the
/// partition's upload lock; `min_age` protects uploads of other processes
/// and must exceed the longest upload. Returns the deleted keys.
pub async fn sweep_orphans(
    remote: &Remote,
    topic: &str,
    partition: i32,
    min_age: Duration,
) -> Result<Vec<String>> {
    let lock = remote.lock_for(&format!("upload:{topic}/{partition}"));
    let _uploads = lock.lock().await;
    let manifest = remote.refresh_manifest(topic, partition).await?;
    let listed: HashSet<SegmentName> = manifest
        .iter()
        .flat_map(|m| m.segments.iter().map(SegmentMeta::name))
        .collect();
    let prefix = partition_prefix(topic, partition);
    let objects = retry(remote.retry(), "list partition", || remote.list(&prefix)).await?;
    let cutoff = now_ms().saturating_sub(i64::try_from(min_age.as_millis()).unwrap_or(i64::MAX));
    let mut deleted = Vec::new();
    for object in objects {
        let Some(file) = object.key.rsplit('/').next() else {
            continue;
        };
        let Some(stem) = file
            .strip_suffix(".log")
            .or_else(|| file.strip_suffix(".index"))
        else {
            continue;
        };
        let Some(name) = SegmentName::parse(stem) else {
            continue;
        };
        if listed.contains(&name) || object.last_modified_ms > cutoff {
            continue;
        }
        retry(remote.retry(), "delete orphan", || {
            remote.delete(&object.key)
        })
        .await?;
        remote.metrics().orphans_deleted.inc();
        tracing::info!(key = %object.key, "deleted orphan object");
        deleted.push(object.key);
    }
    Ok(deleted)
}
