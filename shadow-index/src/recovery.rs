//! Rebuilding topics from the remote tier (`floe topic recover`).
//!
//! `topic.json` gives the name, partition count and configs; each partition
//! manifest gives the remote start offset (the new log start) and the remote
//! end (the new high watermark and next offset of an empty local log).

use crate::error::{Error, Result};
use crate::layout::SegmentName;
use crate::manifest::TopicManifest;
use crate::retry::retry;
use crate::store::Remote;

/// What the broker needs to recreate one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionRecovery {
    pub partition: i32,
    /// The log start offset to set.
    pub remote_start_offset: i64,
    /// The next offset (high watermark) to set; equals the start when the
    /// partition has nothing remote.
    pub next_offset: i64,
    /// Listed live segments and their bytes.
    pub segments: usize,
    pub bytes: u64,
    /// Epoch of the newest segment (-1 when none).
    pub last_epoch: i64,
    /// Largest record timestamp remote (-1 when none).
    pub max_timestamp: i64,
}

/// A topic as found in the remote tier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicRecovery {
    pub topic: TopicManifest,
    /// One entry per partition, `0..partition_count`.
    pub partitions: Vec<PartitionRecovery>,
}

/// Progress reports while recovery runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecoveryProgress<'a> {
    /// Starting topic `index` (0-based) of `total`.
    Topic {
        topic: &'a str,
        index: usize,
        total: usize,
    },
    /// A partition's manifest was read (and its objects checked if asked).
    Partition {
        topic: &'a str,
        partition: i32,
        done: usize,
        total: usize,
    },
}

/// Recovery settings.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecoveryOptions {
    /// HEAD every listed `.log` and `.index` object and compare sizes, so a
    /// damaged bucket is reported before the broker serves from it.
    pub verify_objects: bool,
}

/// Every topic with a `topic.json`, sorted by name. Directories without one
/// (a topic deleted half-way) are skipped with a warning.
pub async fn list_topics(remote: &Remote) -> Result<Vec<TopicManifest>> {
    let mut topics = Vec::new();
    for name in remote.list_topic_names().await? {
        match remote.load_topic(&name).await? {
            Some(topic) => topics.push(topic),
            None => {
                tracing::warn!(topic = %name, "remote topic directory without topic.json; skipped")
            }
        }
    }
    Ok(topics)
}

/// Reads one topic's recovery information; `None` when it has no
/// `topic.json`.
pub async fn recover_topic(
    remote: &Remote,
    topic: &str,
    options: RecoveryOptions,
    progress: &mut (dyn FnMut(RecoveryProgress<'_>) + Send),
) -> Result<Option<TopicRecovery>> {
    let Some(manifest) = remote.load_topic(topic).await? else {
        return Ok(None);
    };
    let total = manifest.partition_count as usize;
    let mut partitions = Vec::with_capacity(total.min(1 << 16));
    for partition in 0..manifest.partition_count {
        let info = match remote.refresh_manifest(topic, partition).await? {
            None => PartitionRecovery {
                partition,
                remote_start_offset: 0,
                next_offset: 0,
                segments: 0,
                bytes: 0,
                last_epoch: -1,
                max_timestamp: -1,
            },
            Some(m) => {
                let live = m.live_segments();
                if options.verify_objects {
                    for s in live {
                        let name: SegmentName = s.name();
                        for (key, size) in [
                            (name.log_key(topic, partition), s.size_bytes),
                            (name.index_key(topic, partition), s.index_size),
                        ] {
                            let found =
                                retry(remote.retry(), "verify object", || remote.head(&key)).await;
                            let missing = || Error::MissingObject {
                                topic: topic.to_owned(),
                                partition,
                                base_offset: s.base_offset,
                                last_offset: s.last_offset,
                                key: key.clone(),
                            };
                            match found {
                                Ok(actual) if actual == size => {}
                                Ok(actual) => {
                                    return Err(Error::CorruptObject {
                                        topic: topic.to_owned(),
                                        partition,
                                        base_offset: s.base_offset,
                                        last_offset: s.last_offset,
                                        key: key.clone(),
                                        reason: format!("{actual} bytes, manifest says {size}"),
                                    });
                                }
                                Err(e) if e.is_not_found() => return Err(missing()),
                                Err(e) => return Err(e),
                            }
                        }
                    }
                }
                PartitionRecovery {
                    partition,
                    remote_start_offset: m.remote_start_offset,
                    next_offset: m.next_offset(),
                    segments: live.len(),
                    bytes: m.live_bytes(),
                    last_epoch: live.last().map_or(-1, |s| s.epoch),
                    max_timestamp: live.iter().map(|s| s.max_timestamp).max().unwrap_or(-1),
                }
            }
        };
        partitions.push(info);
        progress(RecoveryProgress::Partition {
            topic,
            partition,
            done: partitions.len(),
            total,
        });
    }
    Ok(Some(TopicRecovery {
        topic: manifest,
        partitions,
    }))
}

/// [`recover_topic`] for every topic of [`list_topics`].
pub async fn recover_all(
    remote: &Remote,
    options: RecoveryOptions,
    progress: &mut (dyn FnMut(RecoveryProgress<'_>) + Send),
) -> Result<Vec<TopicRecovery>> {
    let topics = list_topics(remote).await?;
    let total = topics.len();
    let mut out = Vec::with_capacity(total);
    for (index, topic) in topics.iter().enumerate() {
        progress(RecoveryProgress::Topic {
            topic: &topic.topic,
            index,
            total,
        });
        if let Some(found) = recover_topic(remote, &topic.topic, options, progress).await? {
            out.push(found);
        }
    }
    Ok(out)
}
