//! The crate's one error type.

use std::path::PathBuf;

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the shadow index.
///
/// Variants name what happened and carry the topic, partition, offsets, object
/// key or file path involved. [`Error::is_retriable`] tells whether trying the
/// same operation again later can succeed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The object-store URL could not be understood.
    #[error("invalid object-store url {url:?}: {reason}")]
    InvalidUrl { url: String, reason: String },

    /// The object store could not be built from its configuration.
    #[error("cannot configure object store {url}")]
    StoreConfig {
        url: String,
        #[source]
        source: object_store::Error,
    },

    /// The startup probe (put, get, delete of a small object) failed.
    #[error("object store {url} failed the startup check at {step} of {key}; {hint}")]
    StoreCheck {
        url: String,
        step: &'static str,
        key: String,
        hint: &'static str,
        #[source]
        source: Box<Error>,
    },

    /// An object-store operation failed.
    #[error("object store {op} of {key} failed")]
    ObjectStore {
        op: &'static str,
        key: String,
        #[source]
        source: object_store::Error,
    },

    /// A ranged GET returned another number of bytes than asked (a
    /// truncated body, or a server that ignored the range).
    #[error("short read of {key}: asked bytes {start}..{end}, got {got}")]
    ShortRead {
        key: String,
        start: u64,
        end: u64,
        got: u64,
    },

    /// A local file (sealed segment, cache chunk) could not be read or written.
    #[error("i/o error on {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A manifest object exists but is not a valid manifest.
    #[error("corrupt manifest {key}: {reason}")]
    CorruptManifest { key: String, reason: String },

    /// A segment or index object listed in the manifest does not exist.
    #[error("missing object {key} for {topic}/{partition} offsets {base_offset}..={last_offset}")]
    MissingObject {
        topic: String,
        partition: i32,
        base_offset: i64,
        last_offset: i64,
        key: String,
    },

    /// A remote segment or index object failed its framing or CRC checks.
    #[error(
        "corrupt remote object {key} for {topic}/{partition} offsets {base_offset}..={last_offset}: {reason}"
    )]
    CorruptObject {
        topic: String,
        partition: i32,
        base_offset: i64,
        last_offset: i64,
        key: String,
        reason: String,
    },

    /// A local sealed segment handed to the uploader is not a valid segment.
    #[error("invalid sealed segment {path}: {reason}")]
    InvalidSegment { path: PathBuf, reason: String },

    /// Batch framing or CRC error at a byte position of a buffer.
    #[error("bad record batch at byte {position}: {reason}")]
    BadBatch { position: u64, reason: String },

    /// A read asked for an offset outside what the remote tier holds.
    ///
    /// `start` is the remote start offset (the earliest readable offset) and
    /// `end` the offset after the last uploaded one.
    #[error("offset {offset} of {topic}/{partition} is outside the remote range {start}..{end}")]
    OffsetOutOfRange {
        topic: String,
        partition: i32,
        offset: i64,
        start: i64,
        end: i64,
    },

    /// The partition has nothing in the remote tier (no manifest).
    #[error("no remote data for {topic}/{partition}")]
    NoRemoteData { topic: String, partition: i32 },

    /// A segment could not be appended to the manifest.
    #[error(
        "cannot list segment {base_offset}..={last_offset} in manifest of {topic}/{partition}: {reason}"
    )]
    ManifestConflict {
        topic: String,
        partition: i32,
        base_offset: i64,
        last_offset: i64,
        reason: String,
    },

    /// Another broker holds the writer lease of this store's prefix.
    #[error(
        "object store {url} is written by another Floe broker ({holder}), whose writer lease was renewed {age_ms} ms ago; \
         two brokers must not share a prefix (each would overwrite the other's manifests). Give this broker its own \
         prefix or stop the other one; if it is gone, its lease expires in {expires_in_ms} ms"
    )]
    LeaseHeld {
        url: String,
        holder: String,
        age_ms: i64,
        expires_in_ms: i64,
    },

    /// Writes to the store are refused (the writer lease was lost or could
    /// not be renewed in time); reads go on.
    #[error("object store {op} of {key} refused: {reason}")]
    WritesRefused {
        op: &'static str,
        key: String,
        reason: String,
    },

    /// A background task panicked or was cancelled.
    #[error("background task failed")]
    Task(#[source] tokio::task::JoinError),
}

impl Error {
    /// Whether the same operation may succeed if tried again later.
    ///
    /// Network errors, 5xx answers, timeouts and truncated bodies are
    /// retriable; missing or corrupt objects, bad configuration and
    /// credentials, and offset errors are not.
    pub fn is_retriable(&self) -> bool {
        match self {
            Error::ObjectStore { source, .. } => store_error_is_retriable(source),
            Error::ShortRead { .. } => true,
            Error::StoreCheck { source, .. } => source.is_retriable(),
            Error::Io { source, .. } => matches!(
                source.kind(),
                std::io::ErrorKind::Interrupted
                    | std::io::ErrorKind::TimedOut
                    | std::io::ErrorKind::WouldBlock
            ),
            Error::Task(_) => true,
            _ => false,
        }
    }

    /// Whether this error means "the object does not exist".
    pub fn is_not_found(&self) -> bool {
        matches!(
            self,
            Error::ObjectStore {
                source: object_store::Error::NotFound { .. },
                ..
            }
        )
    }
}

/// Whether an `object_store` error is worth retrying.
///
/// `Generic` carries network failures, timeouts and 5xx answers (after the
/// HTTP client's own retries); a join error is a lost blocking task. All
/// other kinds (not found, precondition, permission, bad path, unsupported)
/// answer the same way every time.
pub(crate) fn store_error_is_retriable(error: &object_store::Error) -> bool {
    matches!(
        error,
        object_store::Error::Generic { .. } | object_store::Error::JoinError { .. }
    )
}

/// A short, stable label for an `object_store` error, for metrics.
pub(crate) fn store_error_kind(error: &object_store::Error) -> &'static str {
    match error {
        object_store::Error::Generic { .. } => "generic",
        object_store::Error::NotFound { .. } => "not_found",
        object_store::Error::InvalidPath { .. } => "invalid_path",
        object_store::Error::JoinError { .. } => "join",
        object_store::Error::NotSupported { .. } | object_store::Error::NotImplemented { .. } => {
            "not_supported"
        }
        object_store::Error::AlreadyExists { .. } => "already_exists",
        object_store::Error::Precondition { .. } => "precondition",
        object_store::Error::NotModified { .. } => "not_modified",
        object_store::Error::PermissionDenied { .. } => "permission_denied",
        object_store::Error::Unauthenticated { .. } => "unauthenticated",
        object_store::Error::UnknownConfigurationKey { .. } => "config",
        _ => "other",
    }
}
