//! Opening the object store and the [`Remote`] handle every component uses.
//!
//! A [`Remote`] is an `Arc<dyn ObjectStore>` plus a key prefix, the URL it was
//! opened from (for error messages), the shared [`Metrics`] and the shared
//! partition-manifest cache. Keys passed to its methods are relative to the
//! prefix and follow [`crate::layout`].

use std::collections::HashMap;
use std::ops::Range;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures_util::StreamExt;
#[cfg(feature = "s3")]
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{
    GetOptions, GetResultPayload, MultipartUpload, ObjectStore, ObjectStoreExt, PutPayload,
};

use crate::buffers::ChunkBuffers;
use crate::error::{Error, Result};
use crate::manifest::ManifestSlots;
use crate::metrics::Metrics;
use crate::retry::RetryConfig;

/// Where the remote tier lives and how to reach it.
///
/// `url` is one of:
/// - `file:///abs/path`: a local directory (created if missing); objects are
///   written to a temporary file and renamed, then fsynced with their
///   directory, so a put is atomic and durable.
/// - `memory://`: an in-process store, for tests.
/// - `s3://bucket[/prefix]`: S3 or any S3-compatible server. Settings come from
///   the standard `AWS_*` environment variables (`AWS_ENDPOINT` /
///   `AWS_ENDPOINT_URL`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
///   `AWS_REGION`, `AWS_ALLOW_HTTP`, ...) and are then overridden by
///   [`S3Options`] (from `floe.toml`). With an endpoint set, requests are
///   path-style unless `virtual_hosted_style` says otherwise.
#[derive(Debug, Clone, Default)]
pub struct ObjectStoreConfig {
    /// The store URL (see above).
    pub url: String,
    /// Explicit S3 settings; `None` fields keep the environment's value.
    pub s3: S3Options,
    /// Retries used by the reader, retention and recovery (the uploader has
    /// its own in [`crate::uploader::UploaderConfig`]).
    pub retry: RetryConfig,
}

/// Explicit S3 settings that win over the `AWS_*` environment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct S3Options {
    /// `http(s)://host:port` of an S3-compatible server.
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    /// Allow a plain-HTTP endpoint.
    pub allow_http: Option<bool>,
    /// `bucket.host` addressing instead of `host/bucket`.
    pub virtual_hosted_style: Option<bool>,
    /// Retries of the HTTP client itself (object_store's default: 10
    /// retries within 3 minutes). Floe's own [`RetryConfig`] runs on top.
    pub client_max_retries: Option<usize>,
    /// Time budget of the HTTP client's own retries.
    pub client_retry_timeout: Option<std::time::Duration>,
}

/// Opens the store at `url` with default settings; see [`ObjectStoreConfig`].
pub fn open_store(url: &str) -> Result<Remote> {
    open_store_with(&ObjectStoreConfig {
        url: url.to_owned(),
        ..ObjectStoreConfig::default()
    })
}

/// Opens the store described by `config`. Nothing is contacted yet: call
/// [`Remote::check`] at startup to verify reachability and credentials.
pub fn open_store_with(config: &ObjectStoreConfig) -> Result<Remote> {
    let url = config.url.trim();
    let invalid = |reason: &str| Error::InvalidUrl {
        url: url.to_owned(),
        reason: reason.to_owned(),
    };
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| invalid("expected file:///path, memory:// or s3://bucket[/prefix]"))?;
    let remote = match scheme {
        "file" => {
            if !rest.starts_with('/') {
                return Err(invalid("file:// needs an absolute path (file:///abs/path)"));
            }
            let root = PathBuf::from(rest);
            std::fs::create_dir_all(&root).map_err(|source| Error::Io {
                path: root.clone(),
                source,
            })?;
            let store =
                LocalFileSystem::new_with_prefix(&root).map_err(|source| Error::StoreConfig {
                    url: url.to_owned(),
                    source,
                })?;
            let mut remote = Remote::new(Arc::new(store), "", url);
            Arc::get_mut(&mut remote.inner)
                .expect("fresh remote")
                .local_root = Some(root);
            remote
        }
        "memory" => {
            if !rest.trim_matches('/').is_empty() {
                return Err(invalid("memory:// takes no path"));
            }
            Remote::new(Arc::new(InMemory::new()), "", url)
        }
        #[cfg(feature = "s3")]
        "s3" | "s3a" => {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(invalid("missing bucket name"));
            }
            let mut builder = AmazonS3Builder::from_env().with_bucket_name(bucket);
            let s3 = &config.s3;
            if let Some(endpoint) = &s3.endpoint {
                builder = builder.with_endpoint(endpoint);
            }
            if let Some(region) = &s3.region {
                builder = builder.with_region(region);
            }
            if let Some(key) = &s3.access_key_id {
                builder = builder.with_access_key_id(key);
            }
            if let Some(secret) = &s3.secret_access_key {
                builder = builder.with_secret_access_key(secret);
            }
            if let Some(allow) = s3.allow_http {
                builder = builder.with_allow_http(allow);
            }
            if let Some(virtual_hosted) = s3.virtual_hosted_style {
                builder = builder.with_virtual_hosted_style_request(virtual_hosted);
            }
            if s3.client_max_retries.is_some() || s3.client_retry_timeout.is_some() {
                let defaults = object_store::RetryConfig::default();
                builder = builder.with_retry(object_store::RetryConfig {
                    backoff: defaults.backoff,
                    max_retries: s3.client_max_retries.unwrap_or(defaults.max_retries),
                    retry_timeout: s3.client_retry_timeout.unwrap_or(defaults.retry_timeout),
                });
            }
            let store = builder.build().map_err(|source| Error::StoreConfig {
                url: url.to_owned(),
                source,
            })?;
            Remote::new(Arc::new(store), prefix, url)
        }
        #[cfg(not(feature = "s3"))]
        "s3" | "s3a" => {
            return Err(invalid(
                "this build has no S3 support (the shadow-index crate's `s3` feature is off)",
            ));
        }
        _ => return Err(invalid("unknown scheme")),
    };
    Ok(remote.with_retry(config.retry.clone()))
}

/// One listed object: its key relative to the [`Remote`]'s prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    pub key: String,
    pub size: u64,
    /// Last modification, milliseconds since the Unix epoch.
    pub last_modified_ms: i64,
}

/// A handle on the remote tier: the store, the key prefix, the metrics and
/// the partition-manifest cache. Cheap to clone; clones share everything.
#[derive(Clone)]
pub struct Remote {
    inner: Arc<RemoteInner>,
}

struct RemoteInner {
    store: Arc<dyn ObjectStore>,
    prefix: String,
    url: String,
    local_root: Option<PathBuf>,
    retry: RetryConfig,
    metrics: Metrics,
    pub(crate) manifests: ManifestSlots,
    pub(crate) locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Whether writes are allowed (the writer lease's gate).
    write_gate: Mutex<WriteGate>,
}

/// Whether a [`Remote`] may write.
#[derive(Debug, Default)]
struct WriteGate {
    /// Why writes are refused, until cleared.
    refused: Option<String>,
    /// Writes are refused from this instant on.
    until: Option<std::time::Instant>,
}

impl std::fmt::Debug for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Remote")
            .field("url", &self.inner.url)
            .field("prefix", &self.inner.prefix)
            .finish()
    }
}

impl Remote {
    /// Wraps any store (a decorator, a test double over a real store). Keys
    /// are placed under `prefix` (may be empty); `url` is only used in
    /// messages.
    pub fn new(store: Arc<dyn ObjectStore>, prefix: &str, url: &str) -> Remote {
        Remote {
            inner: Arc::new(RemoteInner {
                store,
                prefix: prefix.trim_matches('/').to_owned(),
                url: url.to_owned(),
                local_root: None,
                retry: RetryConfig::default(),
                metrics: Metrics::default(),
                manifests: ManifestSlots::default(),
                locks: Mutex::new(HashMap::new()),
                write_gate: Mutex::new(WriteGate::default()),
            }),
        }
    }

    /// Replaces the retry settings used by reads, retention and recovery.
    ///
    /// # Panics
    /// When the handle was already cloned (call it right after
    /// [`Remote::new`]).
    pub fn with_retry(mut self, retry: RetryConfig) -> Remote {
        Arc::get_mut(&mut self.inner)
            .expect("with_retry before the remote is shared")
            .retry = retry;
        self
    }

    /// The URL this store was opened from.
    pub fn url(&self) -> &str {
        &self.inner.url
    }

    /// The underlying store.
    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.inner.store
    }

    /// Retry settings for reads, retention and recovery.
    pub fn retry(&self) -> &RetryConfig {
        &self.inner.retry
    }

    /// The shared metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// Registers the remote tier's metrics in the broker's registry.
    pub fn register_metrics(&self, registry: &mut prometheus_client::registry::Registry) {
        self.inner.metrics.register(registry);
    }

    pub(crate) fn manifests(&self) -> &ManifestSlots {
        &self.inner.manifests
    }

    /// A per-name async mutex (per-partition manifest writes, uploads).
    pub(crate) fn lock_for(&self, name: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.inner.locks.lock().expect("lock map poisoned");
        locks
            .entry(name.to_owned())
            .or_insert_with(|| Arc::new(tokio::sync::Mutex::new(())))
            .clone()
    }

    /// The full object path of a relative key.
    pub fn path(&self, key: &str) -> Path {
        if self.inner.prefix.is_empty() {
            Path::from(key)
        } else {
            Path::from(format!("{}/{key}", self.inner.prefix))
        }
    }

    fn relative(&self, path: &Path) -> String {
        let full = path.as_ref();
        if self.inner.prefix.is_empty() {
            full.to_owned()
        } else {
            full.strip_prefix(&self.inner.prefix)
                .map(|s| s.trim_start_matches('/'))
                .unwrap_or(full)
                .to_owned()
        }
    }

    fn store_error(&self, op: &'static str, key: &str, source: object_store::Error) -> Error {
        self.inner.metrics.store_error(op, &source);
        Error::ObjectStore {
            op,
            key: key.to_owned(),
            source,
        }
    }

    /// Refuses every write (PUT, multipart upload, DELETE) from now on with
    /// [`Error::WritesRefused`] and `reason`, or allows them again (`None`).
    /// Set by the [`WriterLease`](crate::lease::WriterLease).
    pub fn refuse_writes(&self, reason: Option<String>) {
        self.gate().refused = reason;
    }

    /// Refuses writes after `deadline` (until moved again): the writer
    /// lease's renewal deadline, enforced at every write even when the
    /// renewing task has not run (a process paused past it).
    pub(crate) fn allow_writes_until(&self, deadline: Option<std::time::Instant>) {
        self.gate().until = deadline;
    }

    fn gate(&self) -> std::sync::MutexGuard<'_, WriteGate> {
        self.inner
            .write_gate
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// Why writes are refused right now (the writer lease lapsed or was
    /// taken over), or `None` when they are allowed. For writers that do not
    /// go through this `Remote` (the Iceberg projector's commits).
    pub fn writes_refused(&self) -> Option<String> {
        self.check_writable("write", "").err().map(|e| match e {
            Error::WritesRefused { reason, .. } => reason,
            other => other.to_string(),
        })
    }

    fn check_writable(&self, op: &'static str, key: &str) -> Result<()> {
        let gate = self.gate();
        let reason = match (&gate.refused, gate.until) {
            (Some(reason), _) => reason.clone(),
            (None, Some(until)) if std::time::Instant::now() >= until => {
                "the writer lease was not renewed in time (the object store unreachable, or this \
                 process paused); writes wait for its renewal"
                    .to_owned()
            }
            _ => return Ok(()),
        };
        Err(Error::WritesRefused {
            op,
            key: key.to_owned(),
            reason,
        })
    }

    /// One PUT of a whole object (atomic in every store). On a `file://`
    /// store the file and its directory are fsynced before this returns.
    pub async fn put(&self, key: &str, data: Bytes) -> Result<()> {
        self.check_writable("put", key)?;
        self.put_unchecked(key, data).await
    }

    /// [`Remote::put`] even while writes are refused (the lease's own).
    pub(crate) async fn put_unchecked(&self, key: &str, data: Bytes) -> Result<()> {
        self.inner
            .store
            .put(&self.path(key), PutPayload::from_bytes(data))
            .await
            .map_err(|e| self.store_error("put", key, e))?;
        self.persist(key).await
    }

    /// Starts a multipart upload of `key`. Call [`Remote::persist`] after it
    /// completes.
    pub async fn put_multipart(&self, key: &str) -> Result<Box<dyn MultipartUpload>> {
        self.check_writable("put_multipart", key)?;
        self.inner
            .store
            .put_multipart(&self.path(key))
            .await
            .map_err(|e| self.store_error("put_multipart", key, e))
    }

    pub(crate) fn multipart_error(&self, key: &str, source: object_store::Error) -> Error {
        self.store_error("put_part", key, source)
    }

    /// Makes a written object durable where the store does not (the local
    /// directory store renames without fsync): fsync the file, then its
    /// directory. A no-op for S3 and memory.
    pub async fn persist(&self, key: &str) -> Result<()> {
        let Some(root) = &self.inner.local_root else {
            return Ok(());
        };
        let file = root.join(self.path(key).as_ref());
        tokio::task::spawn_blocking(move || {
            let sync = |p: &std::path::Path| std::fs::File::open(p).and_then(|f| f.sync_all());
            sync(&file).map_err(|source| Error::Io {
                path: file.clone(),
                source,
            })?;
            if let Some(dir) = file.parent() {
                sync(dir).map_err(|source| Error::Io {
                    path: dir.to_owned(),
                    source,
                })?;
            }
            Ok(())
        })
        .await
        .map_err(Error::Task)?
    }

    /// GET of a whole object.
    pub async fn get(&self, key: &str) -> Result<Bytes> {
        Ok(self.get_with_modified(key).await?.0)
    }

    /// Ranged GET of `range` into a fresh buffer; a body of any other
    /// length is a [`Error::ShortRead`] (retriable), never returned as data.
    pub async fn get_range(&self, key: &str, range: Range<u64>) -> Result<Bytes> {
        let bytes = self
            .inner
            .store
            .get_range(&self.path(key), range.clone())
            .await
            .map_err(|e| self.store_error("get_range", key, e))?;
        if bytes.len() as u64 != range.end - range.start {
            return Err(Error::ShortRead {
                key: key.to_owned(),
                start: range.start,
                end: range.end,
                got: bytes.len() as u64,
            });
        }
        self.inner.metrics.fetched_bytes.inc_by(bytes.len() as u64);
        Ok(bytes)
    }

    /// Ranged GET of `range` into a buffer of `buffers` (reused memory,
    /// page-aligned data), the body copied straight from the connection's
    /// reads (or, on a `file://` store, read from the file) into it. A body
    /// of any other length, or one that fails midway, is an error
    /// ([`Error::ShortRead`] or the store's, both retriable), never data:
    /// the partly filled buffer is dropped.
    pub async fn get_range_pooled(
        &self,
        key: &str,
        range: Range<u64>,
        buffers: &ChunkBuffers,
    ) -> Result<Bytes> {
        let len = range.end - range.start;
        let short = |got: u64| Error::ShortRead {
            key: key.to_owned(),
            start: range.start,
            end: range.end,
            got,
        };
        let wanted = usize::try_from(len).map_err(|_| short(0))?;
        let result = self
            .inner
            .store
            .get_opts(
                &self.path(key),
                GetOptions::new().with_range(Some(range.clone())),
            )
            .await
            .map_err(|e| self.store_error("get_range", key, e))?;
        if result.range != range {
            return Err(short(result.range.end.saturating_sub(result.range.start)));
        }
        let mut buffer = buffers.take(wanted);
        match result.payload {
            GetResultPayload::File(mut file, path) => {
                let start = range.start;
                buffer = tokio::task::spawn_blocking(move || {
                    use std::io::{Seek, SeekFrom};
                    file.seek(SeekFrom::Start(start))
                        .and_then(|_| buffer.fill_from(&mut file))
                        .map(|_| buffer)
                        .map_err(|source| Error::Io { path, source })
                })
                .await
                .map_err(Error::Task)??;
            }
            GetResultPayload::Stream(mut body) => {
                while let Some(piece) = body.next().await {
                    let piece = piece.map_err(|e| self.store_error("get_range", key, e))?;
                    if !buffer.extend(&piece) {
                        return Err(short((buffer.len() + piece.len()) as u64));
                    }
                }
            }
        }
        if buffer.len() != wanted {
            return Err(short(buffer.len() as u64));
        }
        self.inner.metrics.fetched_bytes.inc_by(len);
        Ok(buffer.freeze())
    }

    /// An object's last-modified time, ms since the Unix epoch, by the
    /// store's clock.
    pub(crate) async fn head_modified(&self, key: &str) -> Result<i64> {
        self.inner
            .store
            .head(&self.path(key))
            .await
            .map(|meta| meta.last_modified.timestamp_millis())
            .map_err(|e| self.store_error("head", key, e))
    }

    /// GET of a whole object with its last-modified time (ms since the
    /// Unix epoch, by the store's clock); a body of another length than the
    /// object's is a [`Error::ShortRead`].
    pub(crate) async fn get_with_modified(&self, key: &str) -> Result<(Bytes, i64)> {
        let result = self
            .inner
            .store
            .get(&self.path(key))
            .await
            .map_err(|e| self.store_error("get", key, e))?;
        let modified = result.meta.last_modified.timestamp_millis();
        let expected = result.meta.size;
        let bytes = result
            .bytes()
            .await
            .map_err(|e| self.store_error("get", key, e))?;
        if bytes.len() as u64 != expected {
            return Err(Error::ShortRead {
                key: key.to_owned(),
                start: 0,
                end: expected,
                got: bytes.len() as u64,
            });
        }
        Ok((bytes, modified))
    }

    /// Size of an object.
    pub async fn head(&self, key: &str) -> Result<u64> {
        self.inner
            .store
            .head(&self.path(key))
            .await
            .map(|meta| meta.size)
            .map_err(|e| self.store_error("head", key, e))
    }

    /// Deletes an object; deleting a missing object succeeds.
    pub async fn delete(&self, key: &str) -> Result<()> {
        self.check_writable("delete", key)?;
        self.delete_unchecked(key).await
    }

    /// [`Remote::delete`] even while writes are refused (the lease's own).
    pub(crate) async fn delete_unchecked(&self, key: &str) -> Result<()> {
        match self.inner.store.delete(&self.path(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.store_error("delete", key, e)),
        }
    }

    /// Every object whose key starts with the directory `prefix`.
    pub async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>> {
        let path = self.path(prefix);
        let mut stream = self.inner.store.list(Some(&path));
        let mut out = Vec::new();
        while let Some(item) = stream.next().await {
            let meta = item.map_err(|e| self.store_error("list", prefix, e))?;
            out.push(ObjectInfo {
                key: self.relative(&meta.location),
                size: meta.size,
                last_modified_ms: meta.last_modified.timestamp_millis(),
            });
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    /// The names of the "directories" directly under `prefix`.
    pub async fn list_dirs(&self, prefix: &str) -> Result<Vec<String>> {
        let path = self.path(prefix);
        let listing = self
            .inner
            .store
            .list_with_delimiter(Some(&path))
            .await
            .map_err(|e| self.store_error("list", prefix, e))?;
        let mut names: Vec<String> = listing
            .common_prefixes
            .iter()
            .filter_map(|p| p.filename().map(str::to_owned))
            .collect();
        names.sort();
        Ok(names)
    }

    /// Startup check: PUT, GET and DELETE of a small probe object under
    /// `_floe_probe/`. The error names the URL, the failing step and a hint
    /// (credentials, endpoint, bucket).
    pub async fn check(&self) -> Result<()> {
        let nonce = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let key = format!("_floe_probe/{}-{nonce}", std::process::id());
        let body = Bytes::from(format!("floe probe {nonce}"));
        let fail = |step: &'static str, source: Error| Error::StoreCheck {
            url: self.inner.url.clone(),
            step,
            key: key.clone(),
            hint: hint_for(&source),
            source: Box::new(source),
        };
        self.put(&key, body.clone())
            .await
            .map_err(|e| fail("put", e))?;
        let read = self.get(&key).await.map_err(|e| fail("get", e))?;
        if read != body {
            return Err(fail(
                "get",
                Error::ShortRead {
                    key: key.clone(),
                    start: 0,
                    end: body.len() as u64,
                    got: read.len() as u64,
                },
            ));
        }
        self.delete(&key).await.map_err(|e| fail("delete", e))?;
        Ok(())
    }
}

fn hint_for(error: &Error) -> &'static str {
    match error {
        Error::ObjectStore { source, .. } => match source {
            object_store::Error::Unauthenticated { .. } => {
                "check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (or the s3 credentials in floe.toml)"
            }
            object_store::Error::PermissionDenied { .. } => {
                "the credentials lack permission on this bucket/prefix (s3:PutObject, GetObject, DeleteObject, ListBucket)"
            }
            object_store::Error::NotFound { .. } => {
                "the store did not keep a written object; check the bucket name and endpoint"
            }
            object_store::Error::Generic { .. } => {
                "check that the endpoint (AWS_ENDPOINT_URL) is reachable, AWS_ALLOW_HTTP=true for http endpoints, AWS_REGION, and that the bucket exists"
            }
            _ => "check the object-store URL and its settings",
        },
        Error::Io { .. } => "check that the directory exists and is writable",
        _ => "the store answered with different bytes than were written",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_bad_urls() {
        for url in ["", "file://relative/path", "ftp://x", "s3://", "memory://x"] {
            assert!(
                matches!(open_store(url), Err(Error::InvalidUrl { .. })),
                "{url}"
            );
        }
    }

    #[test]
    fn s3_url_sets_the_prefix() {
        let remote = open_store_with(&ObjectStoreConfig {
            url: "s3://bucket/some/prefix/".into(),
            s3: S3Options {
                endpoint: Some("http://127.0.0.1:1".into()),
                region: Some("us-east-1".into()),
                access_key_id: Some("a".into()),
                secret_access_key: Some("b".into()),
                allow_http: Some(true),
                virtual_hosted_style: None,
                client_max_retries: Some(1),
                client_retry_timeout: Some(std::time::Duration::from_secs(5)),
            },
            retry: RetryConfig::default(),
        })
        .unwrap();
        assert_eq!(remote.path("topics/t").as_ref(), "some/prefix/topics/t");
    }

    #[tokio::test]
    async fn check_reports_an_unreachable_endpoint() {
        let remote = open_store_with(&ObjectStoreConfig {
            url: "s3://bucket".into(),
            s3: S3Options {
                endpoint: Some("http://127.0.0.1:9".into()),
                region: Some("us-east-1".into()),
                access_key_id: Some("a".into()),
                secret_access_key: Some("b".into()),
                allow_http: Some(true),
                virtual_hosted_style: None,
                client_max_retries: Some(1),
                client_retry_timeout: Some(std::time::Duration::from_secs(5)),
            },
            retry: RetryConfig::default(),
        })
        .unwrap();
        let error = tokio::time::timeout(std::time::Duration::from_secs(120), remote.check())
            .await
            .expect("check finishes")
            .unwrap_err();
        let text = error.to_string();
        assert!(text.contains("s3://bucket"), "{text}");
        assert!(text.contains("at put"), "{text}");
        assert!(text.contains("AWS_ENDPOINT_URL"), "{text}");
    }
}
