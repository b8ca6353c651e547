//! A filesystem-style (Hadoop-layout) Iceberg catalog kept in the object store.
//!
//! Layout under the warehouse root:
//!
//! ```text
//! <root>/<namespace>/.namespace                      marker written by create_namespace
//! <root>/<namespace>/<table>/metadata/v1.metadata.json
//! <root>/<namespace>/<table>/metadata/v2.metadata.json ...
//! <root>/<namespace>/<table>/metadata/version-hint.text   "N" of the newest version
//! <root>/<namespace>/<table>/metadata/*.avro         manifest lists and manifests
//! <root>/<namespace>/<table>/data/...                Parquet data files
//! ```
//!
//! Readers need no catalog service: DuckDB's `iceberg_scan('<table dir>')`
//! follows the hint, pyiceberg's `StaticTable.from_metadata` opens a
//! `vN.metadata.json`.
//!
//! # Commit protocol
//!
//! 1. Load the newest version N: read the hint, then probe `v<N+1>`,
//!    `v<N+2>`, ... (the hint is written after the metadata and lags after a
//!    crash); without a hint, list the metadata directory.
//! 2. If a snapshot of version N already carries this commit's
//!    [`COMMIT_ID_KEY`], an earlier attempt succeeded and its answer was
//!    lost: return the table as it is.
//! 3. Check the commit's requirements against version N and apply its updates.
//! 4. Create `v<N+1>` with put-if-absent. If it already exists, another writer
//!    won: when that version carries our commit id it was us, otherwise
//!    answer [`ErrorKind::CatalogCommitConflicts`] (retryable), so that
//!    `Transaction::commit` reloads and retries.
//! 5. Overwrite the hint with N+1. A failure here does not fail the commit:
//!    loads probe past a stale hint.
//!
//! Nothing a committed version may reference is ever deleted here; only
//! `drop_table` / `purge_table` delete, and they delete the whole table.
//!
//! Stores without conditional puts fall back to a head check and a plain put
//! (see [`crate::storage`]); two writers racing on such a store can both
//! believe they committed. Use one writer per table there.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::TryStreamExt;
use iceberg::io::FileIO;
use iceberg::spec::{
    FormatVersion, PartitionSpec, TableMetadata, TableMetadataBuilder, UnboundPartitionSpec,
};
use iceberg::table::Table;
use iceberg::{
    Catalog, Error, ErrorKind, Namespace, NamespaceIdent, Result, Runtime, TableCommit,
    TableCreation, TableIdent, TableRequirement, TableUpdate,
};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};

use crate::storage::{Warehouse, put_if_absent, store_error};

/// Snapshot summary key holding the id of the commit that made the snapshot.
/// The table writer sets it; the catalog uses it to recognize a commit it
/// has already applied.
pub const COMMIT_ID_KEY: &str = "floe.commit-id";

/// The file that names the newest metadata version.
pub const VERSION_HINT: &str = "version-hint.text";

const METADATA_DIR: &str = "metadata";
const NAMESPACE_MARKER: &str = ".namespace";

/// Table properties every table gets unless the creator sets them.
pub(crate) const DEFAULT_PROPERTIES: &[(&str, &str)] = &[
    ("write.format.default", "parquet"),
    ("write.parquet.compression-codec", "zstd"),
];

/// The catalog. Cheap to share behind an `Arc`; holds no state beyond the
/// warehouse, so several catalogs (or processes) may use the same tables.
#[derive(Debug, Clone)]
pub struct FileSystemCatalog {
    warehouse: Warehouse,
    file_io: FileIO,
}

/// A catalog Floe's table writer commits through: iceberg's [`Catalog`] plus
/// commits made of requirements and updates (iceberg's `TableCommit` cannot
/// be built outside the iceberg crate), for schema changes and snapshots
/// that iceberg's own actions cannot express.
///
/// Implemented by [`FileSystemCatalog`] and by the REST catalog
/// ([`crate::rest::RestTableCatalog`]). Every `Table` they return reads and
/// writes through Floe's own object store (a [`Warehouse`]).
///
/// # Contract
///
/// - [`TableCatalog::commit`] checks `requirements` against the current
///   table and applies `updates` atomically, or not at all.
/// - Exactly once: when `updates` add a snapshot whose summary carries
///   [`COMMIT_ID_KEY`] and the table already has a snapshot with that id, an
///   earlier attempt succeeded and its answer was lost; the answer is the
///   table as it is, without a second snapshot.
/// - Another writer got there first (a requirement no longer holds):
///   [`ErrorKind::CatalogCommitConflicts`], retryable.
/// - An answer that does not say whether the commit happened is
///   [`ErrorKind::Unexpected`]; the caller looks for its commit id in the
///   table before reporting a failure.
#[async_trait]
pub trait TableCatalog: Catalog {
    /// Applies one commit; see the trait's contract.
    async fn commit(
        &self,
        ident: &TableIdent,
        requirements: Vec<TableRequirement>,
        updates: Vec<TableUpdate>,
    ) -> Result<Table>;

    /// A `Table` for `metadata` at `metadata_location` that reads and writes
    /// through this catalog's storage.
    fn build_table(
        &self,
        ident: &TableIdent,
        metadata_location: String,
        metadata: TableMetadata,
    ) -> Result<Table>;

    /// Where table `ident` lives, or who decides it, for messages.
    fn describe_location(&self, ident: &TableIdent) -> String;

    /// The catalog kind and where it is, for status and logs
    /// (`filesystem file:///...`, `rest http://...`).
    fn describe(&self) -> String;
}

/// The file name of metadata version `version`.
pub fn metadata_file_name(version: u64) -> String {
    format!("v{version}.metadata.json")
}

fn parse_metadata_file_name(name: &str) -> Option<u64> {
    let digits = name.strip_prefix('v')?.strip_suffix(".metadata.json")?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The commit id carried by an `AddSnapshot` among `updates`.
pub(crate) fn commit_id_of(updates: &[TableUpdate]) -> Option<String> {
    updates.iter().find_map(|u| match u {
        TableUpdate::AddSnapshot { snapshot } => snapshot
            .summary()
            .additional_properties
            .get(COMMIT_ID_KEY)
            .cloned(),
        _ => None,
    })
}

/// Whether a snapshot of `metadata` was made by commit `commit_id`.
pub fn has_commit(metadata: &TableMetadata, commit_id: &str) -> bool {
    metadata.snapshots().any(|s| {
        s.summary()
            .additional_properties
            .get(COMMIT_ID_KEY)
            .is_some_and(|id| id == commit_id)
    })
}

fn check_segment(kind: &str, name: &str) -> Result<()> {
    let bad = name.is_empty()
        || name == "."
        || name == ".."
        || name.starts_with('.')
        || name.contains(['/', '\\'])
        || name.chars().any(char::is_control)
        || Path::parse(name).is_err();
    if bad {
        return Err(Error::new(
            ErrorKind::DataInvalid,
            format!("invalid {kind} name {name:?}: it must be usable as one path segment"),
        ));
    }
    Ok(())
}

fn table_not_found(ident: &TableIdent, location: &str) -> Error {
    Error::new(
        ErrorKind::TableNotFound,
        format!("table {ident} does not exist at {location}"),
    )
}

/// Version N and its metadata.
struct Current {
    version: u64,
    metadata: TableMetadata,
}

impl FileSystemCatalog {
    /// A catalog whose tables live at `<warehouse root>/<namespace>/<table>`.
    pub fn new(warehouse: Warehouse) -> Self {
        let file_io = warehouse.file_io();
        FileSystemCatalog { warehouse, file_io }
    }

    pub fn warehouse(&self) -> &Warehouse {
        &self.warehouse
    }

    pub fn file_io(&self) -> &FileIO {
        &self.file_io
    }

    fn namespace_path(namespace: &NamespaceIdent) -> Result<String> {
        for part in namespace.iter() {
            check_segment("namespace", part)?;
        }
        Ok(namespace.join("/"))
    }

    /// The table directory URL.
    pub fn table_location(&self, ident: &TableIdent) -> Result<String> {
        let ns = Self::namespace_path(&ident.namespace)?;
        check_segment("table", &ident.name)?;
        Ok(self.warehouse.url(&format!("{ns}/{}", ident.name)))
    }

    /// The URL of metadata version `version` of a table.
    pub fn metadata_location(&self, ident: &TableIdent, version: u64) -> Result<String> {
        Ok(format!(
            "{}/{METADATA_DIR}/{}",
            self.table_location(ident)?,
            metadata_file_name(version)
        ))
    }

    fn hint_location(&self, ident: &TableIdent) -> Result<String> {
        Ok(format!(
            "{}/{METADATA_DIR}/{VERSION_HINT}",
            self.table_location(ident)?
        ))
    }

    fn store(&self) -> &Arc<dyn ObjectStore> {
        self.warehouse.store()
    }

    async fn exists(&self, url: &str) -> Result<bool> {
        let key = self.warehouse.key(url)?;
        match self.store().head(&key).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(store_error("check", url, e)),
        }
    }

    /// Object bytes, or `None` when there is no object.
    async fn get(&self, url: &str) -> Result<Option<Bytes>> {
        let key = self.warehouse.key(url)?;
        let result = match self.store().get(&key).await {
            Ok(r) => r,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(store_error("read", url, e)),
        };
        result
            .bytes()
            .await
            .map(Some)
            .map_err(|e| store_error("read", url, e))
    }

    /// Children of a directory: (sub-directory names, object names).
    async fn list_dir(&self, url: &str) -> Result<(Vec<String>, Vec<String>)> {
        let key = self.warehouse.key(url)?;
        let prefix = (!key.as_ref().is_empty()).then_some(&key);
        let listing = match self.store().list_with_delimiter(prefix).await {
            Ok(l) => l,
            Err(object_store::Error::NotFound { .. }) => return Ok((vec![], vec![])),
            Err(e) => return Err(store_error("list", url, e)),
        };
        let name = |p: &Path| p.filename().unwrap_or_default().to_string();
        Ok((
            listing.common_prefixes.iter().map(name).collect(),
            listing.objects.iter().map(|o| name(&o.location)).collect(),
        ))
    }

    /// Names of the objects anywhere under a directory, up to `limit`.
    /// Directories alone do not count: a local filesystem keeps empty ones.
    async fn objects_under(&self, url: &str, limit: usize) -> Result<Vec<String>> {
        let key = self.warehouse.key(url)?;
        let prefix = (!key.as_ref().is_empty()).then_some(&key);
        let mut out = Vec::new();
        let mut stream = self.store().list(prefix);
        while out.len() < limit {
            match stream.try_next().await {
                Ok(Some(meta)) => {
                    out.push(meta.location.filename().unwrap_or_default().to_string())
                }
                Ok(None) | Err(object_store::Error::NotFound { .. }) => break,
                Err(e) => return Err(store_error("list", url, e)),
            }
        }
        Ok(out)
    }

    /// The newest metadata version, or `None` when the table does not exist.
    async fn current_version(&self, ident: &TableIdent) -> Result<Option<u64>> {
        let hint_url = self.hint_location(ident)?;
        let hinted = match self.get(&hint_url).await? {
            Some(bytes) => std::str::from_utf8(&bytes)
                .ok()
                .and_then(|s| s.trim().parse::<u64>().ok())
                .filter(|v| *v > 0),
            None => None,
        };
        if let Some(hinted) = hinted
            && self.exists(&self.metadata_location(ident, hinted)?).await?
        {
            let mut version = hinted;
            while self
                .exists(&self.metadata_location(ident, version + 1)?)
                .await?
            {
                version += 1;
            }
            return Ok(Some(version));
        }
        if hinted.is_some() {
            tracing::warn!(table = %ident, hint = %hint_url, "version hint names a missing metadata file; listing");
        }
        let metadata_dir = format!("{}/{METADATA_DIR}", self.table_location(ident)?);
        let (_, files) = self.list_dir(&metadata_dir).await?;
        Ok(files
            .iter()
            .filter_map(|f| parse_metadata_file_name(f))
            .max())
    }

    async fn read_metadata(&self, ident: &TableIdent, version: u64) -> Result<TableMetadata> {
        let url = self.metadata_location(ident, version)?;
        let bytes = self.get(&url).await?.ok_or_else(|| {
            Error::new(
                ErrorKind::Unexpected,
                format!("metadata file {url} of table {ident} disappeared"),
            )
        })?;
        serde_json::from_slice(&bytes).map_err(|e| {
            Error::new(
                ErrorKind::DataInvalid,
                format!("invalid table metadata in {url}"),
            )
            .with_source(e)
        })
    }

    async fn load_current(&self, ident: &TableIdent) -> Result<Current> {
        let version = self.current_version(ident).await?.ok_or_else(|| {
            table_not_found(ident, &self.table_location(ident).unwrap_or_default())
        })?;
        let metadata = self.read_metadata(ident, version).await?;
        Ok(Current { version, metadata })
    }

    /// A `Table` for `metadata` at `metadata_location`.
    pub fn build_table(
        &self,
        ident: &TableIdent,
        metadata_location: String,
        metadata: TableMetadata,
    ) -> Result<Table> {
        table_with(self.file_io.clone(), ident, metadata_location, metadata)
    }

    fn table_at(&self, ident: &TableIdent, current: Current) -> Result<Table> {
        let location = self.metadata_location(ident, current.version)?;
        self.build_table(ident, location, current.metadata)
    }

    async fn write_hint(&self, ident: &TableIdent, version: u64) {
        let result = async {
            let url = self.hint_location(ident)?;
            let key = self.warehouse.key(&url)?;
            self.store()
                .put(&key, version.to_string().into())
                .await
                .map_err(|e| store_error("write", &url, e))
        }
        .await;
        if let Err(e) = result {
            tracing::warn!(table = %ident, version, error = %e, "cannot update version hint; loads probe past it");
        }
    }

    /// Applies one commit: the core of [`Catalog::update_table`], public so
    /// that callers holding requirements and updates (which cannot build an
    /// iceberg `TableCommit` themselves) can commit them.
    pub async fn commit(
        &self,
        ident: &TableIdent,
        requirements: Vec<TableRequirement>,
        updates: Vec<TableUpdate>,
    ) -> Result<Table> {
        let commit_id = commit_id_of(&updates);
        let current = self.load_current(ident).await?;
        if let Some(id) = &commit_id
            && has_commit(&current.metadata, id)
        {
            tracing::info!(table = %ident, commit_id = %id, "commit already applied; answering with the table as is");
            return self.table_at(ident, current);
        }
        if updates.is_empty() {
            for requirement in &requirements {
                requirement.check(Some(&current.metadata))?;
            }
            return self.table_at(ident, current);
        }
        for requirement in &requirements {
            requirement.check(Some(&current.metadata))?;
        }
        let current_location = self.metadata_location(ident, current.version)?;
        let mut builder = current
            .metadata
            .clone()
            .into_builder(Some(current_location));
        for update in updates {
            builder = update.apply(builder)?;
        }
        let metadata = builder.build()?.metadata;

        let next = current.version + 1;
        let url = self.metadata_location(ident, next)?;
        let bytes = serde_json::to_vec(&metadata).map_err(|e| {
            Error::new(
                ErrorKind::Unexpected,
                format!("cannot serialize metadata for {url}"),
            )
            .with_source(e)
        })?;
        let key = self.warehouse.key(&url)?;
        if put_if_absent(self.store(), &key, &url, bytes.into()).await? {
            crate::failpoint::hit("iceberg-after-metadata");
            self.write_hint(ident, next).await;
            return self.build_table(ident, url, metadata);
        }

        // Another writer created v<next> first. It may have been us, in an
        // attempt whose answer was lost.
        if let Some(id) = &commit_id {
            let theirs = self.read_metadata(ident, next).await?;
            if has_commit(&theirs, id) {
                return self.build_table(ident, url, theirs);
            }
        }
        Err(Error::new(
            ErrorKind::CatalogCommitConflicts,
            format!("table {ident}: another writer committed {url} first"),
        )
        .with_retryable(true))
    }

    /// Metadata for a new table, keeping the caller's field ids (iceberg's
    /// builder renumbers them from 1, which would break ids the caller
    /// assigns on later schema changes).
    fn new_table_metadata(&self, creation: TableCreation) -> Result<TableMetadata> {
        let schema = creation
            .schema
            .clone()
            .into_builder()
            .with_schema_id(0)
            .build()?;
        let spec: PartitionSpec = creation
            .partition_spec
            .clone()
            .unwrap_or_else(|| UnboundPartitionSpec::builder().build())
            .bind(Arc::new(schema.clone()))?;
        let metadata = TableMetadataBuilder::from_table_creation(creation)?
            .build()?
            .metadata;
        if metadata.current_schema().as_struct() == schema.as_struct() {
            return Ok(metadata);
        }
        let invalid = |e: serde_json::Error| {
            Error::new(ErrorKind::Unexpected, "cannot rebuild new table metadata").with_source(e)
        };
        let mut json = serde_json::to_value(&metadata).map_err(invalid)?;
        json["schemas"] = serde_json::json!([serde_json::to_value(&schema).map_err(invalid)?]);
        json["current-schema-id"] = 0.into();
        json["last-column-id"] = schema.highest_field_id().into();
        json["partition-specs"] =
            serde_json::json!([serde_json::to_value(&spec).map_err(invalid)?]);
        json["default-spec-id"] = spec.spec_id().into();
        json["last-partition-id"] = spec.highest_field_id().unwrap_or(999).into();
        serde_json::from_value(json).map_err(invalid)
    }
}

fn unsupported(what: &str) -> Error {
    Error::new(
        ErrorKind::FeatureUnsupported,
        format!("the filesystem catalog does not support {what}"),
    )
}

#[async_trait]
impl TableCatalog for FileSystemCatalog {
    async fn commit(
        &self,
        ident: &TableIdent,
        requirements: Vec<TableRequirement>,
        updates: Vec<TableUpdate>,
    ) -> Result<Table> {
        FileSystemCatalog::commit(self, ident, requirements, updates).await
    }

    fn build_table(
        &self,
        ident: &TableIdent,
        metadata_location: String,
        metadata: TableMetadata,
    ) -> Result<Table> {
        FileSystemCatalog::build_table(self, ident, metadata_location, metadata)
    }

    fn describe_location(&self, ident: &TableIdent) -> String {
        self.table_location(ident).unwrap_or_default()
    }

    fn describe(&self) -> String {
        format!("filesystem {}", self.warehouse.root())
    }
}

#[async_trait]
impl Catalog for FileSystemCatalog {
    async fn list_namespaces(
        &self,
        parent: Option<&NamespaceIdent>,
    ) -> Result<Vec<NamespaceIdent>> {
        let (dir, base): (String, Vec<String>) = match parent {
            Some(p) => (
                self.warehouse.url(&Self::namespace_path(p)?),
                p.as_ref().clone(),
            ),
            None => (self.warehouse.url(""), vec![]),
        };
        let (children, _) = self.list_dir(&dir).await?;
        let mut out = Vec::new();
        for child in children {
            if child.starts_with('.') {
                continue;
            }
            let child_dir = format!("{dir}/{child}");
            if self.objects_under(&child_dir, 1).await?.is_empty() {
                continue; // an empty directory left behind
            }
            let (grandchildren, _) = self.list_dir(&child_dir).await?;
            if grandchildren.iter().any(|g| g == METADATA_DIR) {
                continue; // a table
            }
            let mut names = base.clone();
            names.push(child);
            out.push(NamespaceIdent::from_vec(names)?);
        }
        out.sort();
        Ok(out)
    }

    async fn create_namespace(
        &self,
        namespace: &NamespaceIdent,
        properties: HashMap<String, String>,
    ) -> Result<Namespace> {
        if !properties.is_empty() {
            return Err(unsupported("namespace properties"));
        }
        let url = self.warehouse.url(&format!(
            "{}/{NAMESPACE_MARKER}",
            Self::namespace_path(namespace)?
        ));
        let key = self.warehouse.key(&url)?;
        if !put_if_absent(self.store(), &key, &url, Bytes::new()).await? {
            return Err(Error::new(
                ErrorKind::NamespaceAlreadyExists,
                format!("namespace {namespace} already exists"),
            ));
        }
        Ok(Namespace::new(namespace.clone()))
    }

    async fn get_namespace(&self, namespace: &NamespaceIdent) -> Result<Namespace> {
        if self.namespace_exists(namespace).await? {
            Ok(Namespace::new(namespace.clone()))
        } else {
            Err(Error::new(
                ErrorKind::NamespaceNotFound,
                format!("namespace {namespace} does not exist"),
            ))
        }
    }

    /// A namespace exists if its marker does or if it holds anything (tables
    /// created without `create_namespace`).
    async fn namespace_exists(&self, namespace: &NamespaceIdent) -> Result<bool> {
        let dir = self.warehouse.url(&Self::namespace_path(namespace)?);
        Ok(!self.objects_under(&dir, 1).await?.is_empty())
    }

    async fn update_namespace(
        &self,
        _namespace: &NamespaceIdent,
        _properties: HashMap<String, String>,
    ) -> Result<()> {
        Err(unsupported("namespace properties"))
    }

    async fn drop_namespace(&self, namespace: &NamespaceIdent) -> Result<()> {
        let dir = self.warehouse.url(&Self::namespace_path(namespace)?);
        let objects = self.objects_under(&dir, 2).await?;
        if objects.is_empty() {
            return Err(Error::new(
                ErrorKind::NamespaceNotFound,
                format!("namespace {namespace} does not exist"),
            ));
        }
        if objects.iter().any(|o| o != NAMESPACE_MARKER) {
            return Err(Error::new(
                ErrorKind::DataInvalid,
                format!("namespace {namespace} is not empty"),
            ));
        }
        let url = format!("{dir}/{NAMESPACE_MARKER}");
        let key = self.warehouse.key(&url)?;
        self.store()
            .delete(&key)
            .await
            .map_err(|e| store_error("delete", &url, e))
    }

    async fn list_tables(&self, namespace: &NamespaceIdent) -> Result<Vec<TableIdent>> {
        let dir = self.warehouse.url(&Self::namespace_path(namespace)?);
        let (children, _) = self.list_dir(&dir).await?;
        let mut out = Vec::new();
        for child in children {
            let (_, files) = self
                .list_dir(&format!("{dir}/{child}/{METADATA_DIR}"))
                .await?;
            if files.iter().any(|f| parse_metadata_file_name(f).is_some()) {
                out.push(TableIdent::new(namespace.clone(), child));
            }
        }
        out.sort();
        Ok(out)
    }

    async fn create_table(
        &self,
        namespace: &NamespaceIdent,
        mut creation: TableCreation,
    ) -> Result<Table> {
        let ident = TableIdent::new(namespace.clone(), creation.name.clone());
        let location = self.table_location(&ident)?;
        if let Some(asked) = &creation.location
            && asked.trim_end_matches('/') != location
        {
            return Err(Error::new(
                ErrorKind::FeatureUnsupported,
                format!(
                    "table {ident} must live at {location} in the filesystem catalog, not {asked}"
                ),
            ));
        }
        if self.current_version(&ident).await?.is_some() {
            return Err(Error::new(
                ErrorKind::TableAlreadyExists,
                format!("table {ident} already exists at {location}"),
            ));
        }
        creation.location = Some(location.clone());
        creation.format_version = FormatVersion::V2;
        for (key, value) in DEFAULT_PROPERTIES {
            creation
                .properties
                .entry(key.to_string())
                .or_insert_with(|| value.to_string());
        }
        let metadata = self.new_table_metadata(creation)?;
        let url = self.metadata_location(&ident, 1)?;
        let bytes = serde_json::to_vec(&metadata).map_err(|e| {
            Error::new(ErrorKind::Unexpected, format!("cannot serialize {url}")).with_source(e)
        })?;
        let key = self.warehouse.key(&url)?;
        if !put_if_absent(self.store(), &key, &url, bytes.into()).await? {
            return Err(Error::new(
                ErrorKind::TableAlreadyExists,
                format!("table {ident} already exists at {location}"),
            ));
        }
        self.write_hint(&ident, 1).await;
        self.build_table(&ident, url, metadata)
    }

    async fn load_table(&self, table: &TableIdent) -> Result<Table> {
        let current = self.load_current(table).await?;
        self.table_at(table, current)
    }

    /// Deletes the table directory: metadata and data.
    async fn drop_table(&self, table: &TableIdent) -> Result<()> {
        let location = self.table_location(table)?;
        if self.current_version(table).await?.is_none() {
            return Err(table_not_found(table, &location));
        }
        let prefix = self.warehouse.key(&location)?;
        let keys: Vec<Path> = self
            .store()
            .list(Some(&prefix))
            .map_ok(|m| m.location)
            .try_collect()
            .await
            .map_err(|e| store_error("list", &location, e))?;
        // Metadata first, so that a crash midway leaves no table that points
        // at deleted data.
        let (metadata, data): (Vec<Path>, Vec<Path>) = keys
            .into_iter()
            .partition(|k| k.parts().any(|p| p.as_ref() == METADATA_DIR));
        for key in metadata.into_iter().chain(data) {
            match self.store().delete(&key).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(store_error("delete", key.as_ref(), e)),
            }
        }
        Ok(())
    }

    async fn purge_table(&self, table: &TableIdent) -> Result<()> {
        self.drop_table(table).await
    }

    async fn table_exists(&self, table: &TableIdent) -> Result<bool> {
        Ok(self.current_version(table).await?.is_some())
    }

    async fn rename_table(&self, _src: &TableIdent, _dest: &TableIdent) -> Result<()> {
        Err(unsupported(
            "rename_table: a table's files name its directory",
        ))
    }

    async fn register_table(
        &self,
        _table: &TableIdent,
        _metadata_location: String,
    ) -> Result<Table> {
        Err(unsupported(
            "register_table: tables are found by their directory",
        ))
    }

    async fn update_table(&self, mut commit: TableCommit) -> Result<Table> {
        let ident = commit.identifier().clone();
        let requirements = commit.take_requirements();
        let updates = commit.take_updates();
        self.commit(&ident, requirements, updates).await
    }
}

/// A `Table` for `metadata` at `metadata_location`, read and written
/// through `file_io` (Floe's object store), on the current Tokio runtime.
pub(crate) fn table_with(
    file_io: FileIO,
    ident: &TableIdent,
    metadata_location: String,
    metadata: TableMetadata,
) -> Result<Table> {
    Table::builder()
        .file_io(file_io)
        .metadata_location(metadata_location)
        .metadata(metadata)
        .identifier(ident.clone())
        .runtime(Runtime::try_current()?)
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_file_names() {
        assert_eq!(metadata_file_name(12), "v12.metadata.json");
        assert_eq!(parse_metadata_file_name("v12.metadata.json"), Some(12));
        assert_eq!(parse_metadata_file_name("v.metadata.json"), None);
        assert_eq!(parse_metadata_file_name("v1x.metadata.json"), None);
        assert_eq!(parse_metadata_file_name("00001-abc.metadata.json"), None);
        assert_eq!(parse_metadata_file_name(VERSION_HINT), None);
    }

    #[test]
    fn segments_are_checked() {
        assert!(check_segment("table", "orders~dlq").is_ok());
        assert!(check_segment("table", "my.topic-1_x").is_ok());
        for bad in ["", ".", "..", ".hidden", "a/b", "a\\b", "a\nb"] {
            assert!(check_segment("table", bad).is_err(), "{bad:?}");
        }
    }
}
