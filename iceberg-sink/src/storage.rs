//! iceberg-rust's pluggable storage over `object_store`.
//!
//! A [`Warehouse`] is an object store plus the URL that names its root
//! (`file:///abs/dir`, `s3://bucket/prefix`, `memory://name`) and the key
//! prefix that root maps to inside the store. Iceberg only ever sees absolute
//! URLs under that root; [`Warehouse::key`] turns them into store keys and
//! refuses anything outside the root.
//!
//! iceberg-rust serializes its storage through `typetag`, so
//! [`WarehouseStorage`] and [`WarehouseStorageFactory`] serialize as the root
//! URL and deserialize by looking the store up in a process-wide registry that
//! every [`Warehouse::new`] adds to. A store cannot cross a process boundary.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::{Arc, LazyLock, Mutex, Weak};

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::stream::BoxStream;
use futures_util::{StreamExt, TryStreamExt};
use iceberg::io::{
    FileIO, FileIOBuilder, FileMetadata, FileRead, FileWrite, InputFile, OutputFile, Storage,
    StorageConfig, StorageFactory,
};
use iceberg::{Error, ErrorKind, Result};
use object_store::MultipartUpload;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use serde::{Deserialize, Serialize};

use crate::table::TableError;

/// Size of one multipart-upload part. Files smaller than this are written
/// with a single put.
pub const PART_SIZE: usize = 8 * 1024 * 1024;

/// Deletes issued concurrently by `delete_prefix` and `delete_stream`.
const DELETE_CONCURRENCY: usize = 8;

/// An object store and the URL that names its root.
#[derive(Clone)]
pub struct Warehouse {
    inner: Arc<WarehouseInner>,
}

struct WarehouseInner {
    store: Arc<dyn ObjectStore>,
    /// The root URL without a trailing slash (`memory://` stays as given).
    root: String,
    /// The key the root URL maps to inside `store`; empty for the store's root.
    prefix: Path,
}

impl std::fmt::Debug for Warehouse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Warehouse")
            .field("root", &self.inner.root)
            .field("prefix", &self.inner.prefix.as_ref())
            .field("store", &self.inner.store.to_string())
            .finish()
    }
}

/// Warehouses by root URL, for deserializing storage. Weak so that dropping
/// the last handle frees the store.
static REGISTRY: LazyLock<Mutex<HashMap<String, Weak<WarehouseInner>>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

impl Warehouse {
    /// A warehouse whose root URL `root` maps to key `prefix` of `store`
    /// (use `""` when the store itself is rooted there, as a
    /// `LocalFileSystem::new_with_prefix` is).
    ///
    /// Registers the warehouse under `root`, replacing an earlier one with the
    /// same root URL.
    pub fn new(
        store: Arc<dyn ObjectStore>,
        root: &str,
        prefix: &str,
    ) -> std::result::Result<Self, TableError> {
        let invalid = |reason: String| TableError::InvalidWarehouse {
            root: root.to_string(),
            reason,
        };
        let Some((scheme, rest)) = root.split_once("://") else {
            return Err(invalid(
                "the root must be a URL such as s3://bucket/prefix".into(),
            ));
        };
        if scheme.is_empty()
            || !scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '+')
        {
            return Err(invalid(format!("invalid scheme {scheme:?}")));
        }
        if rest.contains(['?', '#']) {
            return Err(invalid(
                "the root must not carry a query or fragment".into(),
            ));
        }
        let root = if rest.is_empty() {
            root.to_string()
        } else {
            root.trim_end_matches('/').to_string()
        };
        let prefix = Path::parse(prefix).map_err(|e| invalid(format!("key prefix: {e}")))?;
        let inner = Arc::new(WarehouseInner {
            store,
            root: root.clone(),
            prefix,
        });
        let mut registry = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
        registry.retain(|_, w| w.strong_count() > 0);
        registry.insert(root, Arc::downgrade(&inner));
        Ok(Warehouse { inner })
    }

    /// The registered warehouse whose root URL is `root`.
    pub fn lookup(root: &str) -> Option<Warehouse> {
        let registry = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
        registry
            .get(root)
            .and_then(Weak::upgrade)
            .map(|inner| Warehouse { inner })
    }

    /// The root URL, without a trailing slash.
    pub fn root(&self) -> &str {
        &self.inner.root
    }

    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.inner.store
    }

    /// `root/relative`, for building Iceberg locations.
    pub fn url(&self, relative: &str) -> String {
        let relative = relative.trim_start_matches('/');
        if self.inner.root.ends_with('/') {
            format!("{}{relative}", self.inner.root)
        } else if relative.is_empty() {
            self.inner.root.clone()
        } else {
            format!("{}/{relative}", self.inner.root)
        }
    }

    /// The store key of an absolute URL under the root. URLs outside the
    /// root, and URLs with empty, `.` or `..` segments, are refused.
    pub fn key(&self, url: &str) -> Result<Path> {
        let root = &self.inner.root;
        let rest = if url == root.as_str() {
            ""
        } else if root.ends_with('/') {
            url.strip_prefix(root.as_str())
                .ok_or_else(|| outside(url, root))?
        } else {
            url.strip_prefix(root.as_str())
                .and_then(|r| r.strip_prefix('/'))
                .ok_or_else(|| outside(url, root))?
        };
        let rest = rest.trim_end_matches('/');
        let relative = Path::parse(rest).map_err(|e| {
            Error::new(
                ErrorKind::DataInvalid,
                format!("invalid path {url} in warehouse {root}"),
            )
            .with_source(e)
        })?;
        Ok(Path::from_iter(
            self.inner.prefix.parts().chain(relative.parts()),
        ))
    }

    /// The absolute URL of a store key under the prefix.
    pub fn url_of_key(&self, key: &Path) -> Result<String> {
        let parts = key.prefix_match(&self.inner.prefix).ok_or_else(|| {
            Error::new(
                ErrorKind::DataInvalid,
                format!(
                    "key {key} is outside the prefix {} of warehouse {}",
                    self.inner.prefix, self.inner.root
                ),
            )
        })?;
        let relative = Path::from_iter(parts);
        Ok(self.url(relative.as_ref()))
    }

    /// A `FileIO` whose storage is this warehouse.
    pub fn file_io(&self) -> FileIO {
        FileIOBuilder::new(Arc::new(WarehouseStorageFactory {
            warehouse: self.clone(),
        }))
        .build()
    }

    /// The storage iceberg-rust uses for this warehouse.
    pub fn storage(&self) -> WarehouseStorage {
        WarehouseStorage {
            warehouse: self.clone(),
        }
    }
}

fn outside(url: &str, root: &str) -> Error {
    Error::new(
        ErrorKind::DataInvalid,
        format!("path {url} is outside the warehouse root {root}"),
    )
}

/// Converts an object store error, naming the operation and the URL.
pub(crate) fn store_error(operation: &str, url: &str, e: object_store::Error) -> Error {
    let kind = match e {
        object_store::Error::NotFound { .. } => ErrorKind::DataInvalid,
        object_store::Error::NotSupported { .. } | object_store::Error::NotImplemented { .. } => {
            ErrorKind::FeatureUnsupported
        }
        _ => ErrorKind::Unexpected,
    };
    Error::new(kind, format!("cannot {operation} {url}: {e}")).with_source(e)
}

/// The serialized form of storage: only the root URL.
#[derive(Serialize, Deserialize)]
struct WarehouseRef {
    root: String,
}

impl From<Warehouse> for WarehouseRef {
    fn from(w: Warehouse) -> Self {
        WarehouseRef {
            root: w.inner.root.clone(),
        }
    }
}

impl TryFrom<WarehouseRef> for Warehouse {
    type Error = String;

    fn try_from(r: WarehouseRef) -> std::result::Result<Self, String> {
        Warehouse::lookup(&r.root).ok_or_else(|| {
            format!(
                "no warehouse with root {} is open in this process; storage can only be \
                 deserialized where its object store was registered",
                r.root
            )
        })
    }
}

/// [`Storage`] over a [`Warehouse`].
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(into = "WarehouseRef", try_from = "WarehouseRef")]
pub struct WarehouseStorage {
    warehouse: Warehouse,
}

impl From<WarehouseStorage> for WarehouseRef {
    fn from(s: WarehouseStorage) -> Self {
        s.warehouse.into()
    }
}

impl TryFrom<WarehouseRef> for WarehouseStorage {
    type Error = String;

    fn try_from(r: WarehouseRef) -> std::result::Result<Self, String> {
        Ok(WarehouseStorage {
            warehouse: r.try_into()?,
        })
    }
}

/// [`StorageFactory`] that always builds the storage of one [`Warehouse`].
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(into = "WarehouseRef", try_from = "WarehouseRef")]
pub struct WarehouseStorageFactory {
    warehouse: Warehouse,
}

impl From<WarehouseStorageFactory> for WarehouseRef {
    fn from(s: WarehouseStorageFactory) -> Self {
        s.warehouse.into()
    }
}

impl TryFrom<WarehouseRef> for WarehouseStorageFactory {
    type Error = String;

    fn try_from(r: WarehouseRef) -> std::result::Result<Self, String> {
        Ok(WarehouseStorageFactory {
            warehouse: r.try_into()?,
        })
    }
}

#[typetag::serde]
impl StorageFactory for WarehouseStorageFactory {
    fn build(&self, _config: &StorageConfig) -> Result<Arc<dyn Storage>> {
        Ok(Arc::new(self.warehouse.storage()))
    }
}

impl WarehouseStorage {
    fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.warehouse.inner.store
    }

    async fn delete_key(&self, key: &Path, url: &str) -> Result<()> {
        match self.store().delete(key).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(store_error("delete", url, e)),
        }
    }
}

#[async_trait]
#[typetag::serde]
impl Storage for WarehouseStorage {
    async fn exists(&self, path: &str) -> Result<bool> {
        let key = self.warehouse.key(path)?;
        match self.store().head(&key).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(store_error("check", path, e)),
        }
    }

    async fn metadata(&self, path: &str) -> Result<FileMetadata> {
        let key = self.warehouse.key(path)?;
        let meta = self
            .store()
            .head(&key)
            .await
            .map_err(|e| store_error("stat", path, e))?;
        Ok(FileMetadata { size: meta.size })
    }

    async fn read(&self, path: &str) -> Result<Bytes> {
        let key = self.warehouse.key(path)?;
        let result = self
            .store()
            .get(&key)
            .await
            .map_err(|e| store_error("read", path, e))?;
        result
            .bytes()
            .await
            .map_err(|e| store_error("read", path, e))
    }

    async fn reader(&self, path: &str) -> Result<Box<dyn FileRead>> {
        let key = self.warehouse.key(path)?;
        Ok(Box::new(ObjectRead {
            store: self.store().clone(),
            key,
            url: path.to_string(),
        }))
    }

    async fn write(&self, path: &str, bs: Bytes) -> Result<()> {
        let key = self.warehouse.key(path)?;
        self.store()
            .put(&key, PutPayload::from(bs))
            .await
            .map_err(|e| store_error("write", path, e))?;
        Ok(())
    }

    async fn writer(&self, path: &str) -> Result<Box<dyn FileWrite>> {
        let key = self.warehouse.key(path)?;
        Ok(Box::new(ObjectWrite {
            store: self.store().clone(),
            key,
            url: path.to_string(),
            buffer: Vec::new(),
            buffered: 0,
            upload: None,
            closed: false,
        }))
    }

    async fn delete(&self, path: &str) -> Result<()> {
        let key = self.warehouse.key(path)?;
        self.delete_key(&key, path).await
    }

    /// Deletes every object whose key lies under `path` (segment-wise, so
    /// `a/b` does not match `a/bc`). A path that names no objects is a no-op.
    async fn delete_prefix(&self, path: &str) -> Result<()> {
        let prefix = self.warehouse.key(path)?;
        let keys: Vec<Path> = self
            .store()
            .list(Some(&prefix))
            .map_ok(|meta| meta.location)
            .try_collect()
            .await
            .map_err(|e| store_error("list", path, e))?;
        futures_util::stream::iter(keys)
            .map(|key| async move {
                let url = self
                    .warehouse
                    .url_of_key(&key)
                    .unwrap_or_else(|_| key.to_string());
                self.delete_key(&key, &url).await
            })
            .buffer_unordered(DELETE_CONCURRENCY)
            .try_collect::<Vec<()>>()
            .await?;
        Ok(())
    }

    async fn delete_stream(&self, paths: BoxStream<'static, String>) -> Result<()> {
        paths
            .map(|path| async move { self.delete(&path).await })
            .buffer_unordered(DELETE_CONCURRENCY)
            .try_collect::<Vec<()>>()
            .await?;
        Ok(())
    }

    fn new_input(&self, path: &str) -> Result<InputFile> {
        self.warehouse.key(path)?;
        Ok(InputFile::new(Arc::new(self.clone()), path.to_string()))
    }

    fn new_output(&self, path: &str) -> Result<OutputFile> {
        self.warehouse.key(path)?;
        Ok(OutputFile::new(Arc::new(self.clone()), path.to_string()))
    }
}

/// Ranged reads of one object.
struct ObjectRead {
    store: Arc<dyn ObjectStore>,
    key: Path,
    url: String,
}

#[async_trait]
impl FileRead for ObjectRead {
    async fn read(&self, range: Range<u64>) -> Result<Bytes> {
        if range.start >= range.end {
            return Ok(Bytes::new());
        }
        let bytes = self
            .store
            .get_range(&self.key, range.clone())
            .await
            .map_err(|e| {
                store_error(
                    &format!("read bytes {}..{} of", range.start, range.end),
                    &self.url,
                    e,
                )
            })?;
        let expected = range.end - range.start;
        if bytes.len() as u64 != expected {
            return Err(Error::new(
                ErrorKind::Unexpected,
                format!(
                    "short read of {}: asked bytes {}..{}, got {} bytes",
                    self.url,
                    range.start,
                    range.end,
                    bytes.len()
                ),
            ));
        }
        Ok(bytes)
    }
}

/// Buffers writes; switches to a multipart upload once a part's worth of
/// bytes is buffered, otherwise writes the object with one put on close.
/// The object appears only on a successful close.
struct ObjectWrite {
    store: Arc<dyn ObjectStore>,
    key: Path,
    url: String,
    buffer: Vec<Bytes>,
    buffered: usize,
    upload: Option<Box<dyn MultipartUpload>>,
    closed: bool,
}

impl ObjectWrite {
    fn take_part(&mut self) -> PutPayload {
        self.buffered = 0;
        std::mem::take(&mut self.buffer).into_iter().collect()
    }

    async fn upload_part(&mut self) -> Result<()> {
        if self.upload.is_none() {
            let upload = self
                .store
                .put_multipart(&self.key)
                .await
                .map_err(|e| store_error("start multipart upload of", &self.url, e))?;
            self.upload = Some(upload);
        }
        let part = self.take_part();
        let upload = self.upload.as_mut().expect("upload was just started");
        if let Err(e) = upload.put_part(part).await {
            self.abort().await;
            return Err(store_error("upload a part of", &self.url, e));
        }
        Ok(())
    }

    async fn abort(&mut self) {
        if let Some(mut upload) = self.upload.take()
            && let Err(e) = upload.abort().await
        {
            tracing::warn!(url = %self.url, error = %e, "cannot abort multipart upload");
        }
    }
}

#[async_trait]
impl FileWrite for ObjectWrite {
    async fn write(&mut self, bs: Bytes) -> Result<()> {
        if self.closed {
            return Err(Error::new(
                ErrorKind::Unexpected,
                format!("write to {} after close", self.url),
            ));
        }
        self.buffered += bs.len();
        self.buffer.push(bs);
        if self.buffered >= PART_SIZE {
            self.upload_part().await?;
        }
        Ok(())
    }

    async fn close(&mut self) -> Result<()> {
        if self.closed {
            return Err(Error::new(
                ErrorKind::Unexpected,
                format!("{} closed twice", self.url),
            ));
        }
        self.closed = true;
        if self.upload.is_none() {
            let payload = self.take_part();
            self.store
                .put_opts(&self.key, payload, PutOptions::default())
                .await
                .map_err(|e| store_error("write", &self.url, e))?;
            return Ok(());
        }
        if self.buffered > 0 {
            self.upload_part().await?;
        }
        let mut upload = self.upload.take().expect("multipart upload in progress");
        if let Err(e) = upload.complete().await {
            if let Err(abort) = upload.abort().await {
                tracing::warn!(url = %self.url, error = %abort, "cannot abort multipart upload");
            }
            return Err(store_error("complete multipart upload of", &self.url, e));
        }
        Ok(())
    }
}

/// Writes `bytes` at `key` only if no object is there yet.
///
/// Returns `Ok(false)` when the object already exists. Stores that do not
/// implement conditional puts get a head check followed by a plain put: two
/// writers racing between the check and the put can both succeed, the later
/// one overwriting the earlier, so such stores need a single writer.
pub(crate) async fn put_if_absent(
    store: &Arc<dyn ObjectStore>,
    key: &Path,
    url: &str,
    bytes: Bytes,
) -> Result<bool> {
    let options = PutOptions {
        mode: PutMode::Create,
        ..PutOptions::default()
    };
    match store.put_opts(key, bytes.clone().into(), options).await {
        Ok(_) => Ok(true),
        Err(object_store::Error::AlreadyExists { .. }) => Ok(false),
        Err(
            object_store::Error::NotImplemented { .. } | object_store::Error::NotSupported { .. },
        ) => {
            match store.head(key).await {
                Ok(_) => return Ok(false),
                Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(store_error("check", url, e)),
            }
            store
                .put(key, bytes.into())
                .await
                .map_err(|e| store_error("write", url, e))?;
            Ok(true)
        }
        Err(e) => Err(store_error("create", url, e)),
    }
}

#[cfg(test)]
mod tests {
    use object_store::memory::InMemory;

    use super::*;

    fn warehouse(root: &str, prefix: &str) -> Warehouse {
        Warehouse::new(Arc::new(InMemory::new()), root, prefix).unwrap()
    }

    #[test]
    fn keys_are_relative_to_the_root_and_under_the_prefix() {
        let w = warehouse("s3://bucket/wh/", "wh");
        assert_eq!(w.root(), "s3://bucket/wh");
        assert_eq!(
            w.key("s3://bucket/wh/a/b.json").unwrap().as_ref(),
            "wh/a/b.json"
        );
        assert_eq!(w.key("s3://bucket/wh").unwrap().as_ref(), "wh");
        assert_eq!(w.key("s3://bucket/wh/a/").unwrap().as_ref(), "wh/a");
        assert_eq!(w.url("a/b"), "s3://bucket/wh/a/b");
        assert_eq!(
            w.url_of_key(&Path::from("wh/a/b")).unwrap(),
            "s3://bucket/wh/a/b"
        );
    }

    #[test]
    fn paths_outside_the_root_are_refused() {
        let w = warehouse("s3://bucket/wh", "");
        for bad in [
            "s3://bucket/other/x",
            "s3://bucket/whx/y",
            "s3://other/wh/x",
            "/wh/x",
            "s3://bucket/wh/../x",
            "s3://bucket/wh/a//b",
        ] {
            let e = w.key(bad).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::DataInvalid, "{bad}");
            assert!(e.to_string().contains(bad), "{e}");
        }
    }

    #[test]
    fn memory_root_with_empty_authority() {
        let w = warehouse("memory://", "");
        assert_eq!(w.key("memory://a/b").unwrap().as_ref(), "a/b");
        assert_eq!(w.url("a/b"), "memory://a/b");
    }

    #[test]
    fn bad_roots_are_refused() {
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        assert!(Warehouse::new(store.clone(), "/tmp/x", "").is_err());
        assert!(Warehouse::new(store.clone(), "s3://b/x?y=1", "").is_err());
        assert!(Warehouse::new(store, "s3://b/x", "a//b").is_err());
    }

    #[tokio::test]
    async fn storage_round_trips_through_serde_by_root() {
        let root = format!("memory://serde-{}", uuid::Uuid::new_v4());
        let w = warehouse(&root, "");
        let storage: Box<dyn Storage> = Box::new(w.storage());
        let json = serde_json::to_string(&storage).unwrap();
        assert!(json.contains(&root), "{json}");
        let back: Box<dyn Storage> = serde_json::from_str(&json).unwrap();
        let path = format!("{root}/x");
        storage
            .write(&path, Bytes::from_static(b"hi"))
            .await
            .unwrap();
        assert_eq!(back.read(&path).await.unwrap(), Bytes::from_static(b"hi"));

        let factory: Box<dyn StorageFactory> = Box::new(WarehouseStorageFactory {
            warehouse: w.clone(),
        });
        let json = serde_json::to_string(&factory).unwrap();
        let _: Box<dyn StorageFactory> = serde_json::from_str(&json).unwrap();

        let unknown = json.replace(&root, "memory://nobody-registered-this");
        let err = serde_json::from_str::<Box<dyn StorageFactory>>(&unknown).unwrap_err();
        assert!(err.to_string().contains("no warehouse with root"), "{err}");
    }

    #[tokio::test]
    async fn reads_writes_and_deletes() {
        let w = warehouse("memory://rw", "p");
        let io = w.file_io();
        let out = io.new_output("memory://rw/t/a.bin").unwrap();
        let mut writer = out.writer().await.unwrap();
        // Two parts and a tail: exercises the multipart path.
        let chunk = Bytes::from(vec![7u8; PART_SIZE / 2 + 1]);
        for _ in 0..4 {
            writer.write(chunk.clone()).await.unwrap();
        }
        writer.write(Bytes::from_static(b"end")).await.unwrap();
        writer.close().await.unwrap();
        assert!(writer.close().await.is_err());

        let input = io.new_input("memory://rw/t/a.bin").unwrap();
        let total = 4 * chunk.len() as u64 + 3;
        assert_eq!(input.metadata().await.unwrap().size, total);
        let reader = input.reader().await.unwrap();
        assert_eq!(reader.read(total - 3..total).await.unwrap(), &b"end"[..]);
        assert_eq!(reader.read(5..5).await.unwrap().len(), 0);
        assert!(reader.read(total - 1..total + 10).await.is_err());
        assert!(w.store().head(&Path::from("p/t/a.bin")).await.is_ok());

        io.new_output("memory://rw/t/b.bin")
            .unwrap()
            .write(Bytes::from_static(b"b"))
            .await
            .unwrap();
        io.new_output("memory://rw/tt/c.bin")
            .unwrap()
            .write(Bytes::from_static(b"c"))
            .await
            .unwrap();
        io.delete_prefix("memory://rw/t").await.unwrap();
        assert!(!io.exists("memory://rw/t/a.bin").await.unwrap());
        assert!(!io.exists("memory://rw/t/b.bin").await.unwrap());
        assert!(io.exists("memory://rw/tt/c.bin").await.unwrap());
        io.delete("memory://rw/tt/c.bin").await.unwrap();
        io.delete("memory://rw/tt/c.bin").await.unwrap();
        assert!(!io.exists("memory://rw/tt/c.bin").await.unwrap());
        assert!(io.new_input("memory://elsewhere/x").is_err());
    }

    #[tokio::test]
    async fn put_if_absent_refuses_to_overwrite() {
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let key = Path::from("a");
        assert!(
            put_if_absent(&store, &key, "memory://a", Bytes::from_static(b"1"))
                .await
                .unwrap()
        );
        assert!(
            !put_if_absent(&store, &key, "memory://a", Bytes::from_static(b"2"))
                .await
                .unwrap()
        );
        let got = store.get(&key).await.unwrap().bytes().await.unwrap();
        assert_eq!(got, &b"1"[..]);
    }
}
