//! The registry's in-memory state and how one `_schemas` record changes it.
//! Every change, live or replayed, goes through [`State::apply`], so a
//! replay of the records the registry appended rebuilds the same state.

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::error::{ApplyReason, RegistryError};
use crate::format::ResolvedReference;
use crate::log::Record;
use crate::model::{CompatibilityLevel, Mode, Schema, SchemaReference, SchemaType};

/// One version of a subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct VersionState {
    pub id: u32,
    pub deleted: bool,
}

#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct State {
    /// Every live or soft-deleted schema by id.
    pub schemas: BTreeMap<u32, Schema>,
    /// The id of each schema content (the first id it got).
    pub by_content: HashMap<Schema, u32>,
    /// Subject -> version -> state.
    pub subjects: BTreeMap<String, BTreeMap<i32, VersionState>>,
    pub global_level: Option<CompatibilityLevel>,
    pub subject_levels: BTreeMap<String, CompatibilityLevel>,
    pub global_mode: Option<Mode>,
    pub subject_modes: BTreeMap<String, Mode>,
    /// The highest id ever assigned (also of permanently deleted schemas):
    /// new ids are above it, so ids are never reused.
    pub max_id: u32,
}

impl State {
    pub fn apply(&mut self, record: Record) -> Result<(), ApplyReason> {
        match record {
            Record::Schema {
                subject,
                version,
                value: Some(value),
            } => {
                let schema = Schema {
                    schema_type: value.schema_type,
                    text: value.schema,
                    references: value.references,
                };
                match self.schemas.get(&value.id) {
                    Some(existing) if *existing != schema => {
                        return Err(ApplyReason::IdConflict { id: value.id });
                    }
                    Some(_) => {}
                    None => {
                        self.by_content.entry(schema.clone()).or_insert(value.id);
                        self.schemas.insert(value.id, schema);
                    }
                }
                self.max_id = self.max_id.max(value.id);
                let previous = self.subjects.entry(subject).or_default().insert(
                    version,
                    VersionState {
                        id: value.id,
                        deleted: value.deleted,
                    },
                );
                if let Some(previous) = previous
                    && previous.id != value.id
                {
                    self.collect(previous.id);
                }
            }
            Record::Schema {
                subject,
                version,
                value: None,
            } => {
                let Some(versions) = self.subjects.get_mut(&subject) else {
                    return Ok(());
                };
                let removed = versions.remove(&version);
                if versions.is_empty() {
                    self.subjects.remove(&subject);
                }
                if let Some(removed) = removed {
                    self.collect(removed.id);
                }
            }
            Record::DeleteSubject { subject, version } => {
                if let Some(versions) = self.subjects.get_mut(&subject) {
                    for (_, state) in versions.range_mut(..=version) {
                        state.deleted = true;
                    }
                }
            }
            Record::Config { subject, level } => match (subject, level) {
                (None, level) => self.global_level = level,
                (Some(subject), Some(level)) => {
                    self.subject_levels.insert(subject, level);
                }
                (Some(subject), None) => {
                    self.subject_levels.remove(&subject);
                }
            },
            Record::Mode { subject, mode } => match (subject, mode) {
                (None, mode) => self.global_mode = mode,
                (Some(subject), Some(mode)) => {
                    self.subject_modes.insert(subject, mode);
                }
                (Some(subject), None) => {
                    self.subject_modes.remove(&subject);
                }
            },
            Record::Noop { max_id } => {
                if let Some(max_id) = max_id {
                    self.max_id = self.max_id.max(max_id);
                }
            }
        }
        Ok(())
    }

    /// Forgets schema `id` once no version uses it any more (its id stays
    /// counted in `max_id`).
    fn collect(&mut self, id: u32) {
        let used = self
            .subjects
            .values()
            .any(|versions| versions.values().any(|v| v.id == id));
        if used {
            return;
        }
        if let Some(schema) = self.schemas.remove(&id)
            && self.by_content.get(&schema) == Some(&id)
        {
            self.by_content.remove(&schema);
        }
    }

    /// Live versions of a subject, ascending.
    pub fn live_versions(&self, subject: &str) -> Vec<(i32, VersionState)> {
        self.subjects
            .get(subject)
            .map(|versions| {
                versions
                    .iter()
                    .filter(|(_, v)| !v.deleted)
                    .map(|(n, v)| (*n, *v))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Live versions of any subject whose schema references `subject`
    /// version `version`, as schema ids.
    pub fn referencing_ids(&self, subject: &str, version: i32) -> Vec<u32> {
        let mut ids: Vec<u32> = self
            .subjects
            .values()
            .flat_map(|versions| versions.values())
            .filter(|v| !v.deleted)
            .filter(|v| {
                self.schemas.get(&v.id).is_some_and(|schema| {
                    schema
                        .references
                        .iter()
                        .any(|r| r.subject == subject && r.version == version)
                })
            })
            .map(|v| v.id)
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    pub fn mode_of(&self, subject: Option<&str>) -> Mode {
        subject
            .and_then(|s| self.subject_modes.get(s).copied())
            .or(self.global_mode)
            .unwrap_or_default()
    }

    pub fn level_of(&self, subject: Option<&str>) -> CompatibilityLevel {
        subject
            .and_then(|s| self.subject_levels.get(s).copied())
            .or(self.global_level)
            .unwrap_or_default()
    }
}

/// The transitive closure of `references`, dependencies first, each name
/// once.
pub(crate) fn resolve_references(
    state: &State,
    references: &[SchemaReference],
) -> Result<Vec<ResolvedReference>, RegistryError> {
    fn visit(
        state: &State,
        reference: &SchemaReference,
        seen: &mut HashSet<String>,
        out: &mut Vec<ResolvedReference>,
        depth: usize,
    ) -> Result<(), RegistryError> {
        let invalid = |message: String| RegistryError::InvalidSchema {
            schema_type: SchemaType::Avro,
            message,
        };
        if depth > 32 {
            return Err(invalid(format!(
                "references nested too deeply at '{}'",
                reference.name
            )));
        }
        if !seen.insert(reference.name.clone()) {
            return Ok(());
        }
        let id = state
            .subjects
            .get(&reference.subject)
            .and_then(|versions| versions.get(&reference.version))
            .map(|v| v.id)
            .ok_or_else(|| {
                invalid(format!(
                    "reference '{}' names subject '{}' version {}, which does not exist",
                    reference.name, reference.subject, reference.version
                ))
            })?;
        let schema = state.schemas.get(&id).ok_or_else(|| {
            invalid(format!(
                "reference '{}': schema {id} not found",
                reference.name
            ))
        })?;
        for child in &schema.references {
            visit(state, child, seen, out, depth + 1)?;
        }
        out.push(ResolvedReference {
            name: reference.name.clone(),
            schema_type: schema.schema_type,
            text: schema.text.clone(),
        });
        Ok(())
    }
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for reference in references {
        visit(state, reference, &mut seen, &mut out, 0)?;
    }
    Ok(out)
}
