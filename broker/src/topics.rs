//! Topic metadata: names, ids, partition counts and explicit configs.
//!
//! Shared by every shard (reads are frequent, writes rare) and persisted to
//! `<data>/meta/topics.json` with an atomic replace: write a temporary file,
//! fdatasync it, rename it over the old one, fsync the directory.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, RwLock};

use protocol::wire::Uuid;
use serde::{Deserialize, Serialize};

/// Topic and partition: the unit of ownership and storage.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicPartition {
    pub topic: String,
    pub partition: i32,
}

impl TopicPartition {
    pub fn new(topic: impl Into<String>, partition: i32) -> Self {
        TopicPartition {
            topic: topic.into(),
            partition,
        }
    }

    /// The partition's directory name, `<topic>-<partition>`.
    pub fn dir_name(&self) -> String {
        format!("{}-{}", self.topic, self.partition)
    }
}

impl std::fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}

/// Why a topic operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TopicError {
    #[error("topic {name} already exists")]
    AlreadyExists { name: String },
    #[error("topic {name} does not exist")]
    NotFound { name: String },
    #[error("invalid topic name {name:?}: {reason}")]
    InvalidName { name: String, reason: &'static str },
    #[error("invalid partition count {count} for topic {name}: {reason}")]
    InvalidPartitions {
        name: String,
        count: i32,
        reason: &'static str,
    },
    #[error("cannot persist topic metadata to {path}")]
    Persist {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("topic metadata file {path} is corrupt")]
    Corrupt {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

/// One topic's metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicMeta {
    pub name: String,
    /// Hex of the 16-byte topic id.
    pub id: String,
    pub partitions: i32,
    /// Configs set explicitly on the topic (Kafka names).
    pub configs: BTreeMap<String, String>,
    #[serde(default)]
    pub internal: bool,
    pub created_ms: i64,
}

impl TopicMeta {
    pub fn uuid(&self) -> Uuid {
        let mut out = [0u8; 16];
        for (i, chunk) in self.id.as_bytes().chunks(2).take(16).enumerate() {
            let hex = std::str::from_utf8(chunk).unwrap_or("00");
            out[i] = u8::from_str_radix(hex, 16).unwrap_or(0);
        }
        Uuid(out)
    }
}

/// A fresh random topic id, hex encoded.
pub fn new_topic_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// Checks a topic name against Kafka's rules.
pub fn validate_name(name: &str) -> Result<(), TopicError> {
    let invalid = |reason| TopicError::InvalidName {
        name: name.to_string(),
        reason,
    };
    if name.is_empty() {
        return Err(invalid("empty"));
    }
    if name == "." || name == ".." {
        return Err(invalid("'.' and '..' are not allowed"));
    }
    if name.len() > 249 {
        return Err(invalid("longer than 249 characters"));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
    {
        return Err(invalid(
            "only ASCII letters, digits, '.', '_' and '-' are allowed",
        ));
    }
    Ok(())
}

/// Replaces `path` with `bytes` atomically and durably: write a temporary
/// file, fdatasync it, rename it over `path`, fsync the directory.
pub fn replace_durably(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_data()?;
    drop(f);
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct TopicsFile {
    topics: Vec<TopicMeta>,
}

/// All topics of the broker.
#[derive(Debug)]
pub struct TopicRegistry {
    path: PathBuf,
    topics: RwLock<BTreeMap<String, TopicMeta>>,
    /// Serializes writers so the file and the map change together.
    writer: Mutex<()>,
}

impl TopicRegistry {
    /// Loads `<meta_dir>/topics.json`, or starts empty.
    pub fn open(meta_dir: &Path) -> Result<TopicRegistry, TopicError> {
        let path = meta_dir.join("topics.json");
        std::fs::create_dir_all(meta_dir).map_err(|source| TopicError::Persist {
            path: meta_dir.to_path_buf(),
            source,
        })?;
        let topics = match std::fs::read(&path) {
            Ok(bytes) => {
                let file: TopicsFile =
                    serde_json::from_slice(&bytes).map_err(|source| TopicError::Corrupt {
                        path: path.clone(),
                        source,
                    })?;
                file.topics
                    .into_iter()
                    .map(|t| (t.name.clone(), t))
                    .collect()
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(source) => return Err(TopicError::Persist { path, source }),
        };
        Ok(TopicRegistry {
            path,
            topics: RwLock::new(topics),
            writer: Mutex::new(()),
        })
    }

    pub fn get(&self, name: &str) -> Option<TopicMeta> {
        self.read().get(name).cloned()
    }

    pub fn partition_count(&self, name: &str) -> Option<i32> {
        self.read().get(name).map(|t| t.partitions)
    }

    pub fn by_id(&self, id: &Uuid) -> Option<TopicMeta> {
        self.read().values().find(|t| t.uuid() == *id).cloned()
    }

    pub fn list(&self) -> Vec<TopicMeta> {
        self.read().values().cloned().collect()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, TopicMeta>> {
        self.topics.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Applies `change` to a copy of the map, persists it, then publishes it.
    fn update<T>(
        &self,
        change: impl FnOnce(&mut BTreeMap<String, TopicMeta>) -> Result<T, TopicError>,
    ) -> Result<T, TopicError> {
        let _guard = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let mut next = self.read().clone();
        let out = change(&mut next)?;
        self.persist(&next)?;
        *self.topics.write().unwrap_or_else(|p| p.into_inner()) = next;
        Ok(out)
    }

    fn persist(&self, topics: &BTreeMap<String, TopicMeta>) -> Result<(), TopicError> {
        let err = |source| TopicError::Persist {
            path: self.path.clone(),
            source,
        };
        let file = TopicsFile {
            topics: topics.values().cloned().collect(),
        };
        let bytes = serde_json::to_vec_pretty(&file).expect("topic metadata serializes");
        replace_durably(&self.path, &bytes).map_err(err)
    }

    /// Creates a topic; fails if it exists.
    pub fn create(&self, meta: TopicMeta) -> Result<TopicMeta, TopicError> {
        validate_name(&meta.name)?;
        if meta.partitions < 1 {
            return Err(TopicError::InvalidPartitions {
                name: meta.name.clone(),
                count: meta.partitions,
                reason: "must be at least 1",
            });
        }
        self.update(|topics| {
            if topics.contains_key(&meta.name) {
                return Err(TopicError::AlreadyExists {
                    name: meta.name.clone(),
                });
            }
            topics.insert(meta.name.clone(), meta.clone());
            Ok(meta)
        })
    }

    /// Removes a topic and returns what it was.
    pub fn delete(&self, name: &str) -> Result<TopicMeta, TopicError> {
        self.update(|topics| {
            topics.remove(name).ok_or_else(|| TopicError::NotFound {
                name: name.to_string(),
            })
        })
    }

    /// Replaces a topic's explicit configs.
    pub fn set_configs(
        &self,
        name: &str,
        configs: BTreeMap<String, String>,
    ) -> Result<TopicMeta, TopicError> {
        self.update(|topics| {
            let t = topics.get_mut(name).ok_or_else(|| TopicError::NotFound {
                name: name.to_string(),
            })?;
            t.configs = configs;
            Ok(t.clone())
        })
    }

    /// Raises a topic's partition count.
    pub fn set_partitions(&self, name: &str, count: i32) -> Result<TopicMeta, TopicError> {
        self.update(|topics| {
            let t = topics.get_mut(name).ok_or_else(|| TopicError::NotFound {
                name: name.to_string(),
            })?;
            if count <= t.partitions {
                return Err(TopicError::InvalidPartitions {
                    name: name.to_string(),
                    count,
                    reason: "the partition count can only grow",
                });
            }
            t.partitions = count;
            Ok(t.clone())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(name: &str) -> TopicMeta {
        TopicMeta {
            name: name.into(),
            id: new_topic_id(),
            partitions: 3,
            configs: BTreeMap::new(),
            internal: false,
            created_ms: 0,
        }
    }

    #[test]
    fn topics_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let reg = TopicRegistry::open(dir.path()).unwrap();
        let created = reg.create(meta("orders")).unwrap();
        reg.set_configs(
            "orders",
            BTreeMap::from([("retention.ms".into(), "5".into())]),
        )
        .unwrap();
        assert!(matches!(
            reg.create(meta("orders")),
            Err(TopicError::AlreadyExists { .. })
        ));
        let again = TopicRegistry::open(dir.path()).unwrap();
        let t = again.get("orders").unwrap();
        assert_eq!(t.id, created.id);
        assert_eq!(t.configs.get("retention.ms").map(String::as_str), Some("5"));
        assert_eq!(again.by_id(&created.uuid()).unwrap().name, "orders");
    }

    #[test]
    fn names_follow_kafka_rules() {
        assert!(validate_name("a.b_c-1").is_ok());
        assert!(validate_name("..").is_err());
        assert!(validate_name("has space").is_err());
        assert!(validate_name(&"x".repeat(250)).is_err());
    }
}
