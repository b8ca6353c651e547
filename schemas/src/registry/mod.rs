//! The registry: subjects, versions, global ids, compatibility, modes.
//!
//! # Write path
//! 1. Take the writer lock (a tokio mutex): one change at a time, so two
//!    concurrent registrations of one schema get one id, and ids stay unique.
//! 2. Validate against the current state (parse, resolve references, check
//!    compatibility, pick id and version).
//! 3. Encode the change as `_schemas` records and append each to the
//!    [`SchemaLog`], awaiting durability.
//! 4. Apply each appended record to memory with the same code a replay
//!    uses ([`Registry::apply_record`]), then answer.
//!
//! A failed append leaves memory unchanged. Reads never wait for writers:
//! they take a short `std::sync::RwLock` read lock (never held across an
//! `.await`), so the broker can call them from any thread.
//!
//! # Recovery
//! Create the registry with [`Registry::new`], feed every record of the
//! topic, in offset order, to [`Registry::apply_record`] (or
//! [`Registry::replay`]), then serve. A record that does not apply is
//! returned as an [`ApplyError`] naming its offset; the caller logs it and
//! goes on. Applying a record twice is harmless.

mod state;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use crate::error::{ApplyError, PayloadError, RegistryError};
use crate::format::{Labels, ParsedSchema};
use crate::log::{LogRecord, Record, SchemaLog, SchemaValue};
use crate::model::{CompatibilityLevel, Mode, Schema, SchemaReference, SchemaType, SubjectVersion};
use state::{State, resolve_references};

/// A schema as a client submits it (register, lookup, compatibility check).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SchemaRequest {
    /// The schema text (Protobuf: `.proto` text or base64 descriptor).
    pub schema: String,
    /// The format (`AVRO` when the client omits it).
    pub schema_type: SchemaType,
    /// References to schemas of other subjects.
    pub references: Vec<SchemaReference>,
    /// An id to register under (IMPORT mode only).
    pub id: Option<u32>,
    /// A version to register as (IMPORT mode only).
    pub version: Option<i32>,
}

/// A version as named in a URL: a number, or `latest` / `-1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionSpec {
    /// The highest live version.
    Latest,
    /// A version number (>= 1).
    Number(i32),
}

impl VersionSpec {
    /// Parses `latest`, `-1` or a positive number; anything else is
    /// [`RegistryError::InvalidVersion`] (42202).
    pub fn parse(text: &str) -> Result<VersionSpec, RegistryError> {
        if text.eq_ignore_ascii_case("latest") {
            return Ok(VersionSpec::Latest);
        }
        match text.parse::<i32>() {
            Ok(-1) => Ok(VersionSpec::Latest),
            Ok(n) if n >= 1 => Ok(VersionSpec::Number(n)),
            _ => Err(RegistryError::InvalidVersion {
                version: text.to_owned(),
            }),
        }
    }
}

/// What a registration answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Registered {
    /// The schema's global id.
    pub id: u32,
    /// The subject version holding it.
    pub version: i32,
}

/// The outcome of a replay: how many records applied, and the ones that
/// did not (already logged with `tracing`).
#[derive(Debug, Default)]
pub struct ReplayReport {
    /// Records applied.
    pub applied: usize,
    /// Records skipped, each naming its offset.
    pub skipped: Vec<ApplyError>,
}

/// A Confluent-compatible schema registry backed by a [`SchemaLog`].
pub struct Registry {
    log: Arc<dyn SchemaLog>,
    state: RwLock<State>,
    writer: tokio::sync::Mutex<()>,
    compiled: Mutex<HashMap<u32, Arc<ParsedSchema>>>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry").finish_non_exhaustive()
    }
}

impl Registry {
    /// An empty registry that writes its changes to `log`. Replay the log
    /// into it before serving.
    pub fn new(log: Arc<dyn SchemaLog>) -> Registry {
        Registry {
            log,
            state: RwLock::new(State::default()),
            writer: tokio::sync::Mutex::new(()),
            compiled: Mutex::new(HashMap::new()),
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        // A panic while holding the lock cannot leave State half-changed
        // (apply validates before it mutates), so a poisoned lock is usable.
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write_state(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Applies one `_schemas` record (replay at startup, or tailing the
    /// topic). Idempotent.
    pub fn apply_record(
        &self,
        offset: i64,
        key: &[u8],
        value: Option<&[u8]>,
    ) -> Result<(), ApplyError> {
        let record = Record::decode(key, value).map_err(|reason| ApplyError { offset, reason })?;
        self.write_state()
            .apply(record)
            .map_err(|reason| ApplyError { offset, reason })
    }

    /// Applies `records` in order; broken ones are logged (`warn`) with their
    /// offset and skipped.
    pub fn replay(&self, records: impl IntoIterator<Item = LogRecord>) -> ReplayReport {
        let mut report = ReplayReport::default();
        for record in records {
            match self.apply_record(record.offset, &record.key, record.value.as_deref()) {
                Ok(()) => report.applied += 1,
                Err(error) => {
                    tracing::warn!(offset = error.offset, %error, "skipping broken _schemas record");
                    report.skipped.push(error);
                }
            }
        }
        report
    }

    /// Appends `record`, then applies it. Called with the writer lock held.
    async fn commit(&self, record: Record) -> Result<(), RegistryError> {
        let (key, value) = record.encode();
        let offset = self
            .log
            .append(key, value)
            .await
            .map_err(|source| RegistryError::Store { source })?;
        self.write_state()
            .apply(record)
            .map_err(|reason| RegistryError::Inconsistent {
                error: ApplyError { offset, reason },
            })
    }

    // ----- reads -----

    /// Subjects with a live version (`include_deleted`: with any version),
    /// sorted, optionally only those starting with `prefix`.
    pub fn subjects(&self, include_deleted: bool, prefix: Option<&str>) -> Vec<String> {
        self.read()
            .subjects
            .iter()
            .filter(|(name, _)| prefix.is_none_or(|p| name.starts_with(p)))
            .filter(|(_, versions)| include_deleted || versions.values().any(|v| !v.deleted))
            .map(|(name, _)| name.clone())
            .collect()
    }

    /// Versions of `subject`, ascending.
    pub fn versions(
        &self,
        subject: &str,
        include_deleted: bool,
    ) -> Result<Vec<i32>, RegistryError> {
        let state = self.read();
        let versions: Vec<i32> = state
            .subjects
            .get(subject)
            .map(|vs| {
                vs.iter()
                    .filter(|(_, v)| include_deleted || !v.deleted)
                    .map(|(n, _)| *n)
                    .collect()
            })
            .unwrap_or_default();
        if versions.is_empty() {
            return Err(RegistryError::SubjectNotFound {
                subject: subject.to_owned(),
            });
        }
        Ok(versions)
    }

    /// One version of a subject. `Latest` is the highest live version.
    pub fn version(
        &self,
        subject: &str,
        version: VersionSpec,
        include_deleted: bool,
    ) -> Result<SubjectVersion, RegistryError> {
        let state = self.read();
        let (number, entry) = Self::find_version(&state, subject, version, include_deleted)?;
        let schema =
            state
                .schemas
                .get(&entry.id)
                .cloned()
                .ok_or_else(|| RegistryError::SchemaNotFound {
                    what: entry.id.to_string(),
                })?;
        Ok(SubjectVersion {
            subject: subject.to_owned(),
            version: number,
            id: entry.id,
            schema,
            deleted: entry.deleted,
        })
    }

    fn find_version(
        state: &State,
        subject: &str,
        version: VersionSpec,
        include_deleted: bool,
    ) -> Result<(i32, state::VersionState), RegistryError> {
        let not_found = || RegistryError::SubjectNotFound {
            subject: subject.to_owned(),
        };
        let versions = state.subjects.get(subject).ok_or_else(not_found)?;
        if !include_deleted && versions.values().all(|v| v.deleted) {
            return Err(not_found());
        }
        match version {
            VersionSpec::Latest => versions
                .iter()
                .rev()
                .find(|(_, v)| include_deleted || !v.deleted)
                .map(|(n, v)| (*n, *v))
                .ok_or_else(not_found),
            VersionSpec::Number(n) => match versions.get(&n) {
                Some(v) if include_deleted || !v.deleted => Ok((n, *v)),
                _ => Err(RegistryError::VersionNotFound {
                    subject: subject.to_owned(),
                    version: n,
                }),
            },
        }
    }

    /// The schema with global id `id` (also when only soft-deleted versions
    /// use it).
    pub fn schema_by_id(&self, id: u32) -> Result<Schema, RegistryError> {
        self.read()
            .schemas
            .get(&id)
            .cloned()
            .ok_or_else(|| RegistryError::SchemaNotFound {
                what: id.to_string(),
            })
    }

    /// Whether `id` names a registered schema: the cheap check for
    /// broker-side `schema.id.validation`.
    pub fn contains_id(&self, id: u32) -> bool {
        self.read().schemas.contains_key(&id)
    }

    /// The (subject, version) pairs using schema `id`.
    pub fn versions_for_id(
        &self,
        id: u32,
        include_deleted: bool,
    ) -> Result<Vec<(String, i32)>, RegistryError> {
        let state = self.read();
        if !state.schemas.contains_key(&id) {
            return Err(RegistryError::SchemaNotFound {
                what: id.to_string(),
            });
        }
        Ok(state
            .subjects
            .iter()
            .flat_map(|(subject, versions)| {
                versions
                    .iter()
                    .filter(move |(_, v)| v.id == id && (include_deleted || !v.deleted))
                    .map(move |(n, _)| (subject.clone(), *n))
            })
            .collect())
    }

    /// Ids of live schemas that reference `subject` `version`.
    pub fn referenced_by(
        &self,
        subject: &str,
        version: VersionSpec,
    ) -> Result<Vec<u32>, RegistryError> {
        let state = self.read();
        let (number, _) = Self::find_version(&state, subject, version, false)?;
        Ok(state.referencing_ids(subject, number))
    }

    /// The subject's own compatibility level, if set.
    pub fn subject_compatibility(&self, subject: &str) -> Option<CompatibilityLevel> {
        self.read().subject_levels.get(subject).copied()
    }

    /// The level that applies to `subject` (its own, else the global one),
    /// or the global level when `subject` is `None`.
    pub fn compatibility(&self, subject: Option<&str>) -> CompatibilityLevel {
        self.read().level_of(subject)
    }

    /// The subject's own mode, if set.
    pub fn subject_mode(&self, subject: &str) -> Option<Mode> {
        self.read().subject_modes.get(subject).copied()
    }

    /// The mode that applies to `subject`, or the global mode.
    pub fn mode(&self, subject: Option<&str>) -> Mode {
        self.read().mode_of(subject)
    }

    /// The compiled schema `id`, cached: for payload validation and for
    /// consumers of the schema (Iceberg projection).
    pub fn compiled(&self, id: u32) -> Result<Arc<ParsedSchema>, RegistryError> {
        if let Some(hit) = self
            .compiled
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&id)
        {
            return Ok(hit.clone());
        }
        let (schema, references) =
            {
                let state = self.read();
                let schema = state.schemas.get(&id).cloned().ok_or_else(|| {
                    RegistryError::SchemaNotFound {
                        what: id.to_string(),
                    }
                })?;
                let references = resolve_references(&state, &schema.references)?;
                (schema, references)
            };
        let parsed = ParsedSchema::parse(schema.schema_type, &schema.text, &references).map_err(
            |message| RegistryError::InvalidSchema {
                schema_type: schema.schema_type,
                message,
            },
        )?;
        let parsed = Arc::new(parsed);
        self.compiled
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, parsed.clone());
        Ok(parsed)
    }

    /// Full validation of a record value: `payload` is the bytes after the
    /// 5-byte wire header, decoded with schema `id`.
    pub fn validate_payload(&self, id: u32, payload: &[u8]) -> Result<(), PayloadError> {
        let schema = self
            .compiled(id)
            .map_err(|e| PayloadError::new(e.to_string()))?;
        schema.validate_payload(payload)
    }

    /// The schema text in the form asked: `format=serialized` gives a
    /// Protobuf schema as a base64 `FileDescriptorProto`; any other format
    /// the stored canonical text.
    pub fn render(
        &self,
        id: u32,
        schema: &Schema,
        format: Option<&str>,
    ) -> Result<String, RegistryError> {
        if schema.schema_type == SchemaType::Protobuf
            && format.is_some_and(|f| f.eq_ignore_ascii_case("serialized"))
            && let ParsedSchema::Protobuf(proto) = &*self.compiled(id)?
        {
            return Ok(proto.serialized());
        }
        Ok(schema.text.clone())
    }

    /// Parses a request into its canonical stored form.
    fn prepare(
        &self,
        request: &SchemaRequest,
        normalize: bool,
    ) -> Result<(Schema, ParsedSchema), RegistryError> {
        let (references, resolved) = {
            let state = self.read();
            let mut references = request.references.clone();
            for reference in &mut references {
                if reference.version == -1
                    && let Some((latest, _)) = state.live_versions(&reference.subject).last()
                {
                    reference.version = *latest;
                }
            }
            let resolved = resolve_references(&state, &references).map_err(|e| match e {
                RegistryError::InvalidSchema { message, .. } => RegistryError::InvalidSchema {
                    schema_type: request.schema_type,
                    message,
                },
                other => other,
            })?;
            (references, resolved)
        };
        let parsed = ParsedSchema::parse(request.schema_type, &request.schema, &resolved).map_err(
            |message| RegistryError::InvalidSchema {
                schema_type: request.schema_type,
                message,
            },
        )?;
        let schema = Schema {
            schema_type: request.schema_type,
            text: parsed.canonical(normalize),
            references,
        };
        Ok((schema, parsed))
    }

    /// Finds the version of `subject` holding `request`'s schema.
    pub fn lookup(
        &self,
        subject: &str,
        request: &SchemaRequest,
        normalize: bool,
        include_deleted: bool,
    ) -> Result<SubjectVersion, RegistryError> {
        if self.versions(subject, include_deleted).is_err() {
            return Err(RegistryError::SubjectNotFound {
                subject: subject.to_owned(),
            });
        }
        let (schema, _) = self.prepare(request, normalize)?;
        let state = self.read();
        let id = state.by_content.get(&schema).copied();
        let found = state.subjects.get(subject).and_then(|versions| {
            versions
                .iter()
                .rev()
                .find(|(_, v)| Some(v.id) == id && (include_deleted || !v.deleted))
                .map(|(n, v)| (*n, *v))
        });
        match found {
            Some((version, v)) => Ok(SubjectVersion {
                subject: subject.to_owned(),
                version,
                id: v.id,
                schema,
                deleted: v.deleted,
            }),
            None => Err(RegistryError::SchemaNotFound {
                what: format!("under subject '{subject}'"),
            }),
        }
    }

    /// Checks `new` against the versions of `subject` its level names (or
    /// against `version` alone). Returns what breaks; empty = compatible.
    fn incompatibilities(
        &self,
        subject: &str,
        new: &ParsedSchema,
        level: CompatibilityLevel,
        only: Option<i32>,
    ) -> Result<Vec<String>, RegistryError> {
        if level == CompatibilityLevel::None {
            return Ok(Vec::new());
        }
        let live = self.read().live_versions(subject);
        let targets: Vec<(i32, u32)> = match only {
            Some(n) => live
                .iter()
                .filter(|(v, _)| *v == n)
                .map(|(v, s)| (*v, s.id))
                .collect(),
            None if level.transitive() => live.iter().rev().map(|(v, s)| (*v, s.id)).collect(),
            None => live.last().map(|(v, s)| (*v, s.id)).into_iter().collect(),
        };
        let mut messages = Vec::new();
        for (version, id) in targets {
            let old = self.compiled(id)?;
            let mut found = Vec::new();
            if level.backward() {
                found.extend(ParsedSchema::incompatibilities(
                    new,
                    &old,
                    Labels {
                        reader: "new",
                        writer: "old",
                    },
                ));
            }
            if level.forward() {
                found.extend(ParsedSchema::incompatibilities(
                    &old,
                    new,
                    Labels {
                        reader: "old",
                        writer: "new",
                    },
                ));
            }
            if !found.is_empty() {
                messages.extend(found.iter().map(ToString::to_string));
                messages.push(format!("{{oldSchemaVersion: {version}}}"));
                messages.push(format!("{{compatibility: '{level}'}}"));
                break;
            }
        }
        Ok(messages)
    }

    /// `POST /compatibility/subjects/{subject}/versions[/{version}]`: what
    /// breaks if `request` were registered (empty = compatible). With a
    /// version, only that version is checked, in the subject's direction.
    pub fn check_compatibility(
        &self,
        subject: &str,
        version: Option<VersionSpec>,
        request: &SchemaRequest,
        normalize: bool,
    ) -> Result<Vec<String>, RegistryError> {
        let only = match version {
            Some(spec) => {
                let state = self.read();
                Some(Self::find_version(&state, subject, spec, false)?.0)
            }
            None => None,
        };
        let (_, parsed) = self.prepare(request, normalize)?;
        let level = self.compatibility(Some(subject));
        self.incompatibilities(subject, &parsed, level, only)
    }

    fn ensure_writable(&self, subject: &str) -> Result<Mode, RegistryError> {
        let mode = self.mode(Some(subject));
        if mode.read_only() {
            return Err(RegistryError::OperationNotPermitted {
                message: format!("Subject {subject} is in read-only mode"),
            });
        }
        Ok(mode)
    }

    /// Drops compiled schemas whose id is gone (permanently deleted).
    fn prune_compiled(&self) {
        let state = self.read();
        self.compiled
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|id, _| state.schemas.contains_key(id));
    }

    // ----- writes -----

    /// Registers `request` under `subject`: the id and version of the schema
    /// (an existing live version of the same schema is answered as is).
    pub async fn register(
        &self,
        subject: &str,
        request: SchemaRequest,
        normalize: bool,
    ) -> Result<Registered, RegistryError> {
        if subject.is_empty() || subject.chars().any(char::is_control) {
            return Err(RegistryError::InvalidRequest {
                message: format!("invalid subject name {subject:?}"),
            });
        }
        let _writer = self.writer.lock().await;
        let mode = self.ensure_writable(subject)?;
        let (schema, parsed) = self.prepare(&request, normalize)?;
        let (existing_id, existing_version, next_version, max_id) = {
            let state = self.read();
            let existing_id = state.by_content.get(&schema).copied();
            let versions = state.subjects.get(subject);
            let existing_version = existing_id.and_then(|id| {
                versions.and_then(|vs| {
                    vs.iter()
                        .rev()
                        .find(|(_, v)| v.id == id && !v.deleted)
                        .map(|(n, _)| *n)
                })
            });
            let next = versions
                .and_then(|vs| vs.keys().next_back().copied())
                .unwrap_or(0)
                + 1;
            (existing_id, existing_version, next, state.max_id)
        };
        if let (Some(id), Some(version)) = (existing_id, existing_version) {
            if request.id.is_some_and(|wanted| wanted != id) {
                return Err(RegistryError::OperationNotPermitted {
                    message: format!(
                        "Schema already registered with id {id} instead of input id {}",
                        request.id.unwrap_or(0)
                    ),
                });
            }
            return Ok(Registered { id, version });
        }
        let id = if mode == Mode::Import {
            match request.id {
                Some(wanted) => {
                    if let Ok(taken) = self.schema_by_id(wanted)
                        && taken != schema
                    {
                        return Err(RegistryError::OperationNotPermitted {
                            message: format!(
                                "Overwrite new schema with id {wanted} is not permitted."
                            ),
                        });
                    }
                    wanted
                }
                None => existing_id.unwrap_or(max_id + 1),
            }
        } else {
            if let Some(wanted) = request.id
                && existing_id != Some(wanted)
            {
                return Err(RegistryError::OperationNotPermitted {
                    message: format!(
                        "Overwrite new schema with id {wanted} is not permitted (subject is not in IMPORT mode)."
                    ),
                });
            }
            let level = self.compatibility(Some(subject));
            let messages = self.incompatibilities(subject, &parsed, level, None)?;
            if !messages.is_empty() {
                return Err(RegistryError::Incompatible {
                    subject: subject.to_owned(),
                    messages,
                });
            }
            existing_id.unwrap_or(max_id + 1)
        };
        if id == 0 || id > i32::MAX as u32 {
            return Err(RegistryError::InvalidRequest {
                message: format!("schema id {id} out of range"),
            });
        }
        let version = match (mode, request.version) {
            (Mode::Import, Some(wanted)) if wanted >= 1 => {
                if self
                    .read()
                    .subjects
                    .get(subject)
                    .is_some_and(|vs| vs.contains_key(&wanted))
                {
                    return Err(RegistryError::OperationNotPermitted {
                        message: format!("Version {wanted} of subject {subject} already exists"),
                    });
                }
                wanted
            }
            _ => next_version,
        };
        self.commit(Record::Schema {
            subject: subject.to_owned(),
            version,
            value: Some(SchemaValue {
                subject: subject.to_owned(),
                version,
                id,
                schema_type: schema.schema_type,
                references: schema.references.clone(),
                schema: schema.text.clone(),
                deleted: false,
            }),
        })
        .await?;
        self.compiled
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(id)
            .or_insert_with(|| Arc::new(parsed));
        Ok(Registered { id, version })
    }

    /// Deletes one version: soft, or permanently (only after a soft delete).
    /// Answers the version number.
    pub async fn delete_version(
        &self,
        subject: &str,
        version: VersionSpec,
        permanent: bool,
    ) -> Result<i32, RegistryError> {
        let _writer = self.writer.lock().await;
        self.ensure_writable(subject)?;
        let (number, entry, value) = {
            let state = self.read();
            let (number, entry) = Self::find_version(&state, subject, version, permanent)?;
            if !permanent && entry.deleted {
                return Err(RegistryError::VersionSoftDeleted {
                    subject: subject.to_owned(),
                    version: number,
                });
            }
            if permanent && !entry.deleted {
                return Err(RegistryError::VersionNotSoftDeleted {
                    subject: subject.to_owned(),
                    version: number,
                });
            }
            if !state.referencing_ids(subject, number).is_empty() {
                return Err(RegistryError::ReferenceExists {
                    subject: subject.to_owned(),
                    version: number,
                });
            }
            let schema = state.schemas.get(&entry.id).cloned();
            (number, entry, schema)
        };
        if permanent {
            let max_id = self.read().max_id;
            self.commit(Record::Noop {
                max_id: Some(max_id),
            })
            .await?;
            self.commit(Record::Schema {
                subject: subject.to_owned(),
                version: number,
                value: None,
            })
            .await?;
            self.prune_compiled();
        } else {
            let schema = value.ok_or_else(|| RegistryError::SchemaNotFound {
                what: entry.id.to_string(),
            })?;
            self.commit(Record::Schema {
                subject: subject.to_owned(),
                version: number,
                value: Some(SchemaValue {
                    subject: subject.to_owned(),
                    version: number,
                    id: entry.id,
                    schema_type: schema.schema_type,
                    references: schema.references,
                    schema: schema.text,
                    deleted: true,
                }),
            })
            .await?;
        }
        Ok(number)
    }

    /// Deletes a subject: soft (all live versions), or permanently (only
    /// after a soft delete; also drops its config and mode). Answers the
    /// versions deleted.
    pub async fn delete_subject(
        &self,
        subject: &str,
        permanent: bool,
    ) -> Result<Vec<i32>, RegistryError> {
        let _writer = self.writer.lock().await;
        self.ensure_writable(subject)?;
        let (all, live, has_level, has_mode, max_id) = {
            let state = self.read();
            let Some(versions) = state.subjects.get(subject) else {
                return Err(RegistryError::SubjectNotFound {
                    subject: subject.to_owned(),
                });
            };
            let all: Vec<i32> = versions.keys().copied().collect();
            let live: Vec<i32> = state
                .live_versions(subject)
                .into_iter()
                .map(|(n, _)| n)
                .collect();
            for &version in &live {
                if !state.referencing_ids(subject, version).is_empty() {
                    return Err(RegistryError::ReferenceExists {
                        subject: subject.to_owned(),
                        version,
                    });
                }
            }
            (
                all,
                live,
                state.subject_levels.contains_key(subject),
                state.subject_modes.contains_key(subject),
                state.max_id,
            )
        };
        if !permanent {
            let Some(&highest) = live.last() else {
                return Err(RegistryError::SubjectSoftDeleted {
                    subject: subject.to_owned(),
                });
            };
            self.commit(Record::DeleteSubject {
                subject: subject.to_owned(),
                version: highest,
            })
            .await?;
            return Ok(live);
        }
        if !live.is_empty() {
            return Err(RegistryError::SubjectNotSoftDeleted {
                subject: subject.to_owned(),
            });
        }
        self.commit(Record::Noop {
            max_id: Some(max_id),
        })
        .await?;
        for &version in &all {
            self.commit(Record::Schema {
                subject: subject.to_owned(),
                version,
                value: None,
            })
            .await?;
        }
        self.prune_compiled();
        if has_level {
            self.commit(Record::Config {
                subject: Some(subject.to_owned()),
                level: None,
            })
            .await?;
        }
        if has_mode {
            self.commit(Record::Mode {
                subject: Some(subject.to_owned()),
                mode: None,
            })
            .await?;
        }
        Ok(all)
    }

    /// Sets the compatibility level of `subject`, or the global one.
    pub async fn set_compatibility(
        &self,
        subject: Option<&str>,
        level: CompatibilityLevel,
    ) -> Result<(), RegistryError> {
        let _writer = self.writer.lock().await;
        if let Some(subject) = subject
            && self.mode(Some(subject)) == Mode::Readonly
        {
            return Err(RegistryError::OperationNotPermitted {
                message: format!("Subject {subject} is in read-only mode"),
            });
        }
        self.commit(Record::Config {
            subject: subject.map(str::to_owned),
            level: Some(level),
        })
        .await
    }

    /// Removes the level of `subject` (or the global one, back to
    /// `BACKWARD`); answers the level that was in force.
    pub async fn delete_compatibility(
        &self,
        subject: Option<&str>,
    ) -> Result<CompatibilityLevel, RegistryError> {
        let _writer = self.writer.lock().await;
        let previous = self.compatibility(subject);
        if let Some(subject) = subject {
            let (own, known) = {
                let state = self.read();
                (
                    state.subject_levels.contains_key(subject),
                    state.subjects.contains_key(subject),
                )
            };
            if !own {
                return if known {
                    Ok(previous)
                } else {
                    Err(RegistryError::SubjectNotFound {
                        subject: subject.to_owned(),
                    })
                };
            }
        }
        self.commit(Record::Config {
            subject: subject.map(str::to_owned),
            level: None,
        })
        .await?;
        Ok(previous)
    }

    /// Sets the mode of `subject`, or the global one. IMPORT is refused
    /// while schemas exist unless `force`.
    pub async fn set_mode(
        &self,
        subject: Option<&str>,
        mode: Mode,
        force: bool,
    ) -> Result<(), RegistryError> {
        let _writer = self.writer.lock().await;
        if mode == Mode::Import && !force {
            let state = self.read();
            let occupied = match subject {
                Some(s) => state.subjects.contains_key(s),
                None => !state.subjects.is_empty(),
            };
            if occupied {
                return Err(RegistryError::OperationNotPermitted {
                    message: "Cannot import since found existing subjects".to_owned(),
                });
            }
        }
        self.commit(Record::Mode {
            subject: subject.map(str::to_owned),
            mode: Some(mode),
        })
        .await
    }

    /// Removes the mode of `subject` (or the global one, back to
    /// `READWRITE`); answers the mode that was in force.
    pub async fn delete_mode(&self, subject: Option<&str>) -> Result<Mode, RegistryError> {
        let _writer = self.writer.lock().await;
        let previous = self.mode(subject);
        if let Some(subject) = subject
            && !self.read().subject_modes.contains_key(subject)
        {
            return Err(RegistryError::SubjectModeNotFound {
                subject: subject.to_owned(),
            });
        }
        self.commit(Record::Mode {
            subject: subject.map(str::to_owned),
            mode: None,
        })
        .await?;
        Ok(previous)
    }
}

#[cfg(test)]
mod tests;
