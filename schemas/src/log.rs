//! Durability: the `_schemas` record format and the [`SchemaLog`] the broker
//! implements.
//!
//! Every registry change is one or more records in Confluent's `_schemas`
//! format. Keys are JSON objects with a `keytype`; a `null` value is a
//! tombstone:
//!
//! | keytype | key | value |
//! |---|---|---|
//! | `SCHEMA` | `{"keytype":"SCHEMA","subject":"s","version":1,"magic":1}` | `{"subject","version","id","schemaType","references","schema","deleted"}`; tombstone = version permanently deleted |
//! | `CONFIG` | `{"keytype":"CONFIG","subject":"s"\|null,"magic":0}` | `{"compatibilityLevel":"FULL"}`; tombstone = config removed |
//! | `MODE` | `{"keytype":"MODE","subject":"s"\|null,"magic":0}` | `{"mode":"READONLY"}`; tombstone = mode removed |
//! | `DELETE_SUBJECT` | `{"keytype":"DELETE_SUBJECT","subject":"s","magic":0}` | `{"subject":"s","version":N}`: versions up to N soft-deleted |
//! | `NOOP` | `{"keytype":"NOOP","magic":0}` | ignored by Confluent; Floe writes `{"maxId":N}` before permanent deletes so ids stay unique after compaction |
//!
//! Keys are serialized with a fixed field order so that the same logical key
//! is always the same bytes (compaction keys on bytes).

use std::sync::Mutex;

use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};

use crate::error::{ApplyReason, LogError};
use crate::model::{CompatibilityLevel, Mode, SchemaReference, SchemaType};

/// The log the registry writes its changes to: in the broker, the internal
/// topic `_schemas` (one partition).
///
/// # Contract
/// - `append` resolves only once the record is durable (it will be seen by a
///   replay after a crash), with the record's offset.
/// - Records appended by one caller are replayed in append order. The
///   registry serializes its own appends, so it never has two outstanding.
/// - An `Err` means the record was not appended, or its fate is unknown
///   ([`LogError::Timeout`]); the registry then leaves its memory unchanged,
///   and a later replay decides.
pub trait SchemaLog: Send + Sync + 'static {
    /// Appends one record (`value: None` is a tombstone).
    fn append(
        &self,
        key: Vec<u8>,
        value: Option<Vec<u8>>,
    ) -> BoxFuture<'static, Result<i64, LogError>>;
}

/// One record of the log, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRecord {
    /// The record's offset.
    pub offset: i64,
    /// Key bytes (JSON).
    pub key: Vec<u8>,
    /// Value bytes (JSON), `None` for a tombstone.
    pub value: Option<Vec<u8>>,
}

/// A [`SchemaLog`] kept in memory. **For tests and standalone demos only:**
/// nothing survives the process. It can be told to fail appends, to test
/// that a failed append changes nothing.
#[derive(Debug, Default)]
pub struct MemoryLog {
    records: Mutex<Vec<LogRecord>>,
    failing: Mutex<bool>,
}

impl MemoryLog {
    /// An empty log.
    pub fn new() -> MemoryLog {
        MemoryLog::default()
    }

    /// A copy of every record appended so far, in order.
    pub fn records(&self) -> Vec<LogRecord> {
        self.records.lock().unwrap().clone()
    }

    /// When `true`, every append fails with [`LogError::Unavailable`].
    pub fn set_failing(&self, failing: bool) {
        *self.failing.lock().unwrap() = failing;
    }
}

impl SchemaLog for MemoryLog {
    fn append(
        &self,
        key: Vec<u8>,
        value: Option<Vec<u8>>,
    ) -> BoxFuture<'static, Result<i64, LogError>> {
        let result = if *self.failing.lock().unwrap() {
            Err(LogError::Unavailable {
                reason: "memory log set to fail".to_owned(),
            })
        } else {
            let mut records = self.records.lock().unwrap();
            let offset = records.len() as i64;
            records.push(LogRecord { offset, key, value });
            Ok(offset)
        };
        Box::pin(std::future::ready(result))
    }
}

/// The value of a `SCHEMA` record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchemaValue {
    /// The subject.
    pub subject: String,
    /// The version.
    pub version: i32,
    /// The global id.
    pub id: u32,
    /// The format; absent means AVRO.
    #[serde(
        rename = "schemaType",
        default,
        skip_serializing_if = "SchemaType::is_avro"
    )]
    pub schema_type: SchemaType,
    /// References to other subjects' schemas.
    #[serde(default)]
    pub references: Vec<SchemaReference>,
    /// The canonical schema text.
    pub schema: String,
    /// Soft-deleted.
    #[serde(default)]
    pub deleted: bool,
}

/// A decoded `_schemas` record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// A subject version: registered, soft-deleted (`deleted: true`) or
    /// permanently deleted (`value: None`).
    Schema {
        /// The subject.
        subject: String,
        /// The version.
        version: i32,
        /// The version's state; `None` when permanently deleted.
        value: Option<SchemaValue>,
    },
    /// A compatibility level set (`Some`) or removed (`None`), global when
    /// `subject` is `None`.
    Config {
        /// The subject, or `None` for the global level.
        subject: Option<String>,
        /// The level.
        level: Option<CompatibilityLevel>,
    },
    /// A mode set or removed, global when `subject` is `None`.
    Mode {
        /// The subject, or `None` for the global mode.
        subject: Option<String>,
        /// The mode.
        mode: Option<Mode>,
    },
    /// Versions up to `version` of `subject` soft-deleted.
    DeleteSubject {
        /// The subject.
        subject: String,
        /// The highest version deleted.
        version: i32,
    },
    /// No state change; may carry the highest id ever assigned.
    Noop {
        /// The highest id ever assigned, when known.
        max_id: Option<u32>,
    },
}

#[derive(Serialize)]
struct SchemaKeyJson<'a> {
    keytype: &'static str,
    subject: &'a str,
    version: i32,
    magic: i32,
}

#[derive(Serialize)]
struct SubjectKeyJson<'a> {
    keytype: &'static str,
    subject: Option<&'a str>,
    magic: i32,
}

#[derive(Serialize)]
struct NoopKeyJson {
    keytype: &'static str,
    magic: i32,
}

#[derive(Deserialize)]
struct AnyKeyJson {
    keytype: String,
    #[serde(default)]
    subject: Option<String>,
    #[serde(default)]
    version: Option<i32>,
}

#[derive(Serialize, Deserialize)]
struct ConfigValueJson {
    #[serde(
        rename = "compatibilityLevel",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    compatibility_level: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct ModeValueJson {
    mode: String,
}

#[derive(Serialize, Deserialize)]
struct DeleteSubjectValueJson {
    subject: String,
    version: i32,
}

#[derive(Serialize, Deserialize)]
struct NoopValueJson {
    #[serde(rename = "maxId", default, skip_serializing_if = "Option::is_none")]
    max_id: Option<u32>,
}

fn to_json<T: Serialize>(value: &T) -> Vec<u8> {
    // Serializing these plain structs cannot fail (no maps with non-string
    // keys, no custom Serialize impls that error).
    serde_json::to_vec(value).expect("record serialization is infallible")
}

impl Record {
    /// Encodes the record into key and value bytes.
    pub fn encode(&self) -> (Vec<u8>, Option<Vec<u8>>) {
        match self {
            Record::Schema {
                subject,
                version,
                value,
            } => (
                to_json(&SchemaKeyJson {
                    keytype: "SCHEMA",
                    subject,
                    version: *version,
                    magic: 1,
                }),
                value.as_ref().map(to_json),
            ),
            Record::Config { subject, level } => (
                to_json(&SubjectKeyJson {
                    keytype: "CONFIG",
                    subject: subject.as_deref(),
                    magic: 0,
                }),
                level.map(|level| {
                    to_json(&ConfigValueJson {
                        compatibility_level: Some(level.as_str().to_owned()),
                    })
                }),
            ),
            Record::Mode { subject, mode } => (
                to_json(&SubjectKeyJson {
                    keytype: "MODE",
                    subject: subject.as_deref(),
                    magic: 0,
                }),
                mode.map(|mode| {
                    to_json(&ModeValueJson {
                        mode: mode.as_str().to_owned(),
                    })
                }),
            ),
            Record::DeleteSubject { subject, version } => (
                to_json(&SubjectKeyJson {
                    keytype: "DELETE_SUBJECT",
                    subject: Some(subject),
                    magic: 0,
                }),
                Some(to_json(&DeleteSubjectValueJson {
                    subject: subject.clone(),
                    version: *version,
                })),
            ),
            Record::Noop { max_id } => (
                to_json(&NoopKeyJson {
                    keytype: "NOOP",
                    magic: 0,
                }),
                Some(to_json(&NoopValueJson { max_id: *max_id })),
            ),
        }
    }

    /// Decodes a record from its key and value bytes.
    pub fn decode(key: &[u8], value: Option<&[u8]>) -> Result<Record, ApplyReason> {
        let key: AnyKeyJson =
            serde_json::from_slice(key).map_err(|source| ApplyReason::MalformedKey { source })?;
        let missing = |field: &str, keytype: &str| ApplyReason::InvalidField {
            message: format!("{keytype} key without {field}"),
        };
        match key.keytype.as_str() {
            "SCHEMA" => {
                let subject = key.subject.ok_or_else(|| missing("subject", "SCHEMA"))?;
                let version = key.version.ok_or_else(|| missing("version", "SCHEMA"))?;
                if version < 1 {
                    return Err(ApplyReason::InvalidField {
                        message: format!("version {version} < 1"),
                    });
                }
                let value = match value {
                    None => None,
                    Some(bytes) => {
                        let value: SchemaValue =
                            serde_json::from_slice(bytes).map_err(|source| {
                                ApplyReason::MalformedValue {
                                    keytype: "SCHEMA",
                                    source,
                                }
                            })?;
                        if value.subject != subject || value.version != version {
                            return Err(ApplyReason::KeyValueMismatch {
                                key: format!("{subject} v{version}"),
                                value: format!("{} v{}", value.subject, value.version),
                            });
                        }
                        Some(value)
                    }
                };
                Ok(Record::Schema {
                    subject,
                    version,
                    value,
                })
            }
            "CONFIG" => {
                let level = match value {
                    None => None,
                    Some(bytes) => {
                        let value: ConfigValueJson =
                            serde_json::from_slice(bytes).map_err(|source| {
                                ApplyReason::MalformedValue {
                                    keytype: "CONFIG",
                                    source,
                                }
                            })?;
                        match value.compatibility_level {
                            None => None,
                            Some(level) => {
                                Some(level.parse().map_err(|()| ApplyReason::InvalidField {
                                    message: format!("unknown compatibility level '{level}'"),
                                })?)
                            }
                        }
                    }
                };
                Ok(Record::Config {
                    subject: key.subject,
                    level,
                })
            }
            "MODE" => {
                let mode = match value {
                    None => None,
                    Some(bytes) => {
                        let value: ModeValueJson =
                            serde_json::from_slice(bytes).map_err(|source| {
                                ApplyReason::MalformedValue {
                                    keytype: "MODE",
                                    source,
                                }
                            })?;
                        Some(value.mode.parse().map_err(|()| ApplyReason::InvalidField {
                            message: format!("unknown mode '{}'", value.mode),
                        })?)
                    }
                };
                Ok(Record::Mode {
                    subject: key.subject,
                    mode,
                })
            }
            "DELETE_SUBJECT" => {
                let subject = key
                    .subject
                    .ok_or_else(|| missing("subject", "DELETE_SUBJECT"))?;
                let bytes = value.ok_or_else(|| ApplyReason::InvalidField {
                    message: "DELETE_SUBJECT without value".to_owned(),
                })?;
                let value: DeleteSubjectValueJson =
                    serde_json::from_slice(bytes).map_err(|source| {
                        ApplyReason::MalformedValue {
                            keytype: "DELETE_SUBJECT",
                            source,
                        }
                    })?;
                if value.subject != subject {
                    return Err(ApplyReason::KeyValueMismatch {
                        key: subject,
                        value: value.subject,
                    });
                }
                Ok(Record::DeleteSubject {
                    subject,
                    version: value.version,
                })
            }
            "NOOP" => {
                let max_id = match value {
                    // Confluent's NOOP values carry nothing Floe needs.
                    Some(bytes) => serde_json::from_slice::<NoopValueJson>(bytes)
                        .ok()
                        .and_then(|v| v.max_id),
                    None => None,
                };
                Ok(Record::Noop { max_id })
            }
            other => Err(ApplyReason::UnknownKeyType {
                keytype: other.to_owned(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_match_confluent_layout() {
        let (key, value) = Record::Schema {
            subject: "s".into(),
            version: 1,
            value: Some(SchemaValue {
                subject: "s".into(),
                version: 1,
                id: 3,
                schema_type: SchemaType::Avro,
                references: vec![],
                schema: "\"string\"".into(),
                deleted: false,
            }),
        }
        .encode();
        assert_eq!(
            key,
            br#"{"keytype":"SCHEMA","subject":"s","version":1,"magic":1}"#
        );
        assert_eq!(
            String::from_utf8(value.unwrap()).unwrap(),
            r#"{"subject":"s","version":1,"id":3,"references":[],"schema":"\"string\"","deleted":false}"#
        );
        let (key, value) = Record::Config {
            subject: None,
            level: Some(CompatibilityLevel::Full),
        }
        .encode();
        assert_eq!(key, br#"{"keytype":"CONFIG","subject":null,"magic":0}"#);
        assert_eq!(value.unwrap(), br#"{"compatibilityLevel":"FULL"}"#);
    }

    #[test]
    fn every_record_round_trips() {
        let records = vec![
            Record::Schema {
                subject: "a.b:c".into(),
                version: 2,
                value: Some(SchemaValue {
                    subject: "a.b:c".into(),
                    version: 2,
                    id: 9,
                    schema_type: SchemaType::Protobuf,
                    references: vec![SchemaReference {
                        name: "x.proto".into(),
                        subject: "x".into(),
                        version: 1,
                    }],
                    schema: "syntax = \"proto3\";".into(),
                    deleted: true,
                }),
            },
            Record::Schema {
                subject: "s".into(),
                version: 1,
                value: None,
            },
            Record::Config {
                subject: Some("s".into()),
                level: Some(CompatibilityLevel::ForwardTransitive),
            },
            Record::Config {
                subject: Some("s".into()),
                level: None,
            },
            Record::Mode {
                subject: None,
                mode: Some(Mode::Import),
            },
            Record::DeleteSubject {
                subject: "s".into(),
                version: 4,
            },
            Record::Noop { max_id: Some(12) },
        ];
        for record in records {
            let (key, value) = record.encode();
            assert_eq!(Record::decode(&key, value.as_deref()).unwrap(), record);
        }
    }

    #[test]
    fn reads_confluent_written_records() {
        // As written by Confluent Schema Registry (schemaType absent = AVRO).
        let key = br#"{"keytype":"SCHEMA","subject":"t-value","version":1,"magic":1}"#;
        let value =
            br#"{"subject":"t-value","version":1,"id":1,"schema":"\"string\"","deleted":false}"#;
        let Record::Schema { value: Some(v), .. } = Record::decode(key, Some(value)).unwrap()
        else {
            panic!("not a schema record");
        };
        assert_eq!(v.schema_type, SchemaType::Avro);
        assert!(v.references.is_empty());
        assert!(matches!(
            Record::decode(br#"{"keytype":"NOOP","magic":0}"#, None).unwrap(),
            Record::Noop { max_id: None }
        ));
    }

    #[test]
    fn broken_records_are_typed_errors() {
        assert!(matches!(
            Record::decode(b"not json", None),
            Err(ApplyReason::MalformedKey { .. })
        ));
        assert!(matches!(
            Record::decode(br#"{"keytype":"CLEAR","magic":0}"#, None),
            Err(ApplyReason::UnknownKeyType { .. })
        ));
        let key = br#"{"keytype":"SCHEMA","subject":"a","version":1,"magic":1}"#;
        let value = br#"{"subject":"b","version":1,"id":1,"schema":"\"int\""}"#;
        assert!(matches!(
            Record::decode(key, Some(value)),
            Err(ApplyReason::KeyValueMismatch { .. })
        ));
        assert!(matches!(
            Record::decode(key, Some(b"{")),
            Err(ApplyReason::MalformedValue { .. })
        ));
        assert!(matches!(
            Record::decode(
                br#"{"keytype":"CONFIG","subject":null,"magic":0}"#,
                Some(br#"{"compatibilityLevel":"SIDEWAYS"}"#)
            ),
            Err(ApplyReason::InvalidField { .. })
        ));
    }
}
