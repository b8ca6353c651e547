//! The crate's errors. [`RegistryError`] is what a registry operation
//! answers; `http` maps it to Confluent's `error_code` and HTTP status (in one
//! place, `http::error`).

use crate::model::SchemaType;

/// Why a registry operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// No live version of the subject exists.
    #[error("subject '{subject}' not found")]
    SubjectNotFound {
        /// The subject asked for.
        subject: String,
    },
    /// The subject exists but not that version.
    #[error("version {version} not found")]
    VersionNotFound {
        /// The subject.
        subject: String,
        /// The version asked for.
        version: i32,
    },
    /// No schema with that id, or the schema is not under the subject.
    #[error("schema {what} not found")]
    SchemaNotFound {
        /// The id, or a description of what was looked up.
        what: String,
    },
    /// The subject was soft-deleted (a soft delete of it again is refused).
    #[error("subject '{subject}' was soft deleted; set permanent=true to delete permanently")]
    SubjectSoftDeleted {
        /// The subject.
        subject: String,
    },
    /// A permanent delete of a subject that was not soft-deleted first.
    #[error("subject '{subject}' was not deleted first before being permanently deleted")]
    SubjectNotSoftDeleted {
        /// The subject.
        subject: String,
    },
    /// The version was soft-deleted already.
    #[error(
        "subject '{subject}' version {version} was soft deleted; set permanent=true to delete permanently"
    )]
    VersionSoftDeleted {
        /// The subject.
        subject: String,
        /// The version.
        version: i32,
    },
    /// A permanent delete of a version that was not soft-deleted first.
    #[error(
        "subject '{subject}' version {version} was not deleted first before being permanently deleted"
    )]
    VersionNotSoftDeleted {
        /// The subject.
        subject: String,
        /// The version.
        version: i32,
    },
    /// `GET /config/{subject}` without a subject-level config.
    #[error("subject '{subject}' does not have subject-level compatibility configured")]
    SubjectConfigNotFound {
        /// The subject.
        subject: String,
    },
    /// `GET /mode/{subject}` without a subject-level mode.
    #[error("subject '{subject}' does not have subject-level mode configured")]
    SubjectModeNotFound {
        /// The subject.
        subject: String,
    },
    /// The schema text does not parse or does not resolve.
    #[error("invalid {schema_type} schema: {message}")]
    InvalidSchema {
        /// The format it was parsed as.
        schema_type: SchemaType,
        /// The parser's message.
        message: String,
    },
    /// A version that is not a positive integer, `latest` or `-1`.
    #[error(
        "the specified version '{version}' is not a valid version id; allowed values are between [1, 2^31-1] and the string \"latest\""
    )]
    InvalidVersion {
        /// The version as given.
        version: String,
    },
    /// An unknown compatibility level.
    #[error("invalid compatibility level '{level}'")]
    InvalidCompatibilityLevel {
        /// The level as given.
        level: String,
    },
    /// An unknown mode.
    #[error("invalid mode '{mode}'")]
    InvalidMode {
        /// The mode as given.
        mode: String,
    },
    /// The mode forbids the operation, or an import id clashes.
    #[error("{message}")]
    OperationNotPermitted {
        /// What was refused and why.
        message: String,
    },
    /// A version still referenced by other schemas cannot be deleted.
    #[error("one or more references exist to subject '{subject}' version {version}")]
    ReferenceExists {
        /// The subject.
        subject: String,
        /// The version.
        version: i32,
    },
    /// The schema breaks the subject's compatibility level.
    #[error(
        "Schema being registered is incompatible with an earlier schema for subject \"{subject}\", details: [{}]",
        .messages.join(", ")
    )]
    Incompatible {
        /// The subject.
        subject: String,
        /// What breaks, one message per problem.
        messages: Vec<String>,
    },
    /// A request body that is not what the endpoint takes.
    #[error("{message}")]
    InvalidRequest {
        /// What is wrong.
        message: String,
    },
    /// A record the registry appended did not apply to its own state (a
    /// bug); the log holds the record, a restart replays it.
    #[error("registry state inconsistent with the schema log")]
    Inconsistent {
        /// The failed apply.
        #[source]
        error: ApplyError,
    },
    /// Appending to the schema log failed; nothing was changed.
    #[error("schema store error")]
    Store {
        /// The log's error.
        #[source]
        source: LogError,
    },
}

/// Why an append to the schema log failed. Implementations of
/// [`SchemaLog`](crate::log::SchemaLog) return it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LogError {
    /// The log cannot take writes now (leader moving, disk full, ...).
    #[error("schema log unavailable: {reason}")]
    Unavailable {
        /// Why.
        reason: String,
    },
    /// The append did not complete in time; it may or may not be durable.
    #[error("schema log append timed out")]
    Timeout,
    /// Any other failure of the underlying log.
    #[error("schema log append failed")]
    Other {
        /// The cause.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl LogError {
    /// Whether retrying the same append may succeed.
    pub fn is_retriable(&self) -> bool {
        matches!(self, LogError::Unavailable { .. } | LogError::Timeout)
    }
}

/// A `_schemas` record that could not be applied. The caller logs it (it
/// names the offset) and goes on with the next record.
#[derive(Debug, thiserror::Error)]
#[error("schema log record at offset {offset}: {reason}")]
pub struct ApplyError {
    /// The record's offset in the log.
    pub offset: i64,
    /// What is wrong with it.
    #[source]
    pub reason: ApplyReason,
}

/// What is wrong with a `_schemas` record.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApplyReason {
    /// The key is not a JSON object with a known `keytype`.
    #[error("malformed key")]
    MalformedKey {
        /// The JSON error.
        #[source]
        source: serde_json::Error,
    },
    /// The value does not match its key type.
    #[error("malformed {keytype} value")]
    MalformedValue {
        /// The key type.
        keytype: &'static str,
        /// The JSON error.
        #[source]
        source: serde_json::Error,
    },
    /// A key type this registry does not know.
    #[error("unknown key type '{keytype}'")]
    UnknownKeyType {
        /// As found in the key.
        keytype: String,
    },
    /// Key and value disagree (subject or version).
    #[error("key names {key} but value names {value}")]
    KeyValueMismatch {
        /// What the key says.
        key: String,
        /// What the value says.
        value: String,
    },
    /// The value reuses an id already bound to a different schema.
    #[error("schema id {id} is already bound to a different schema")]
    IdConflict {
        /// The id.
        id: u32,
    },
    /// A field holds a value out of range (version < 1, unknown level, ...).
    #[error("invalid field: {message}")]
    InvalidField {
        /// Which field and why.
        message: String,
    },
}

/// Why a payload does not decode with its schema.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct PayloadError {
    /// The decoder's message.
    pub message: String,
}

impl PayloadError {
    pub(crate) fn new(message: impl Into<String>) -> PayloadError {
        PayloadError {
            message: message.into(),
        }
    }
}
