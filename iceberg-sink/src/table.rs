//! Writing one Iceberg table: Parquet data files, then commits that carry the
//! committed offsets.
//!
//! The write path is iceberg-rust's composable writers:
//! `ParquetWriter` (zstd) -> `RollingFileWriter` (target file size) ->
//! `DataFileWriter` -> `FanoutWriter` (one writer per partition value,
//! computed from the table's partition spec). [`TableWriter::commit`] then
//! makes the files visible in one `fast_append` whose snapshot summary holds
//! the next offset of every partition ([`CommittedOffsets`]) and a fresh
//! commit id ([`COMMIT_ID_KEY`]).
//!
//! # Exactly once
//!
//! A commit whose answer is lost may still have happened. The catalog
//! recognizes a retried commit by its id and answers success without a
//! second snapshot, and [`TableWriter::commit`] checks the table for its own
//! commit id after any failure before reporting one. On restart the
//! projector resumes from [`TableWriter::committed_offsets`].

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use arrow_array::RecordBatch;
use async_trait::async_trait;
use futures_util::{Stream, TryStreamExt};
use iceberg::arrow::{RecordBatchPartitionSplitter, schema_to_arrow_schema};
use iceberg::spec::{
    DataFile, DataFileFormat, Schema, SchemaRef, TableMetadata, UnboundPartitionSpec,
};
use iceberg::table::Table;
use iceberg::transaction::{ApplyTransactionAction, Transaction};
use iceberg::writer::base_writer::data_file_writer::DataFileWriterBuilder;
use iceberg::writer::file_writer::ParquetWriterBuilder;
use iceberg::writer::file_writer::location_generator::{
    DefaultFileNameGenerator, DefaultLocationGenerator,
};
use iceberg::writer::file_writer::rolling_writer::RollingFileWriterBuilder;
use iceberg::writer::partitioning::PartitioningWriter;
use iceberg::writer::partitioning::fanout_writer::FanoutWriter;
use iceberg::writer::{IcebergWriter, IcebergWriterBuilder};
use iceberg::{
    Catalog, ErrorKind, Namespace, NamespaceIdent, TableCommit, TableCreation, TableIdent,
    TableRequirement, TableUpdate,
};
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use uuid::Uuid;

use crate::catalog::{COMMIT_ID_KEY, TableCatalog, has_commit};
use crate::offsets::{CommittedOffsets, OffsetsError};

/// Data files roll over at this size unless configured otherwise.
pub const DEFAULT_TARGET_FILE_SIZE: usize = 128 * 1024 * 1024;

/// What went wrong on the table side. Every variant names the table.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TableError {
    #[error("invalid warehouse root {root}: {reason}")]
    InvalidWarehouse { root: String, reason: String },
    #[error("cannot open or create table {table} at {location}")]
    Open {
        table: String,
        location: String,
        #[source]
        source: Box<iceberg::Error>,
    },
    #[error("schema of table {table} has no Arrow form")]
    ArrowSchema {
        table: String,
        #[source]
        source: Box<iceberg::Error>,
    },
    #[error("record batch does not match the schema of table {table}")]
    BatchSchema {
        table: String,
        #[source]
        source: arrow_schema::ArrowError,
    },
    #[error("cannot write data files of table {table} under {location}")]
    Write {
        table: String,
        location: String,
        #[source]
        source: Box<iceberg::Error>,
    },
    #[error("commit to table {table} failed")]
    Commit {
        table: String,
        #[source]
        source: Box<iceberg::Error>,
    },
    #[error("snapshot {snapshot_id} of table {table} has invalid committed offsets")]
    Offsets {
        table: String,
        snapshot_id: i64,
        #[source]
        source: OffsetsError,
    },
    #[error("cannot expire snapshots of table {table}")]
    Expire {
        table: String,
        #[source]
        source: Box<iceberg::Error>,
    },
    #[error("cannot compact data files of table {table}")]
    Compact {
        table: String,
        #[source]
        source: Box<iceberg::Error>,
    },
    #[error(
        "compaction of table {table} lost rows: {expected} in the manifests, {read} read, {written} written; nothing committed"
    )]
    CompactRows {
        table: String,
        expected: u64,
        read: u64,
        written: u64,
    },
}

impl TableError {
    /// Whether the same call may succeed later: commit conflicts that
    /// survived iceberg's own retries, and object store failures.
    pub fn is_retriable(&self) -> bool {
        match self {
            TableError::Open { source, .. }
            | TableError::Write { source, .. }
            | TableError::Commit { source, .. }
            | TableError::Expire { source, .. }
            | TableError::Compact { source, .. } => {
                source.retryable()
                    || matches!(
                        source.kind(),
                        ErrorKind::CatalogCommitConflicts | ErrorKind::Unexpected
                    )
            }
            _ => false,
        }
    }
}

/// What [`TableWriter::expire_snapshots`] removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExpiredSnapshots {
    pub snapshots: usize,
    /// Manifest lists, manifests and data files deleted.
    pub files_deleted: usize,
}

/// Writes data files to one table and commits them with offsets.
pub struct TableWriter {
    pub(crate) catalog: Arc<dyn TableCatalog>,
    pub(crate) ident: TableIdent,
    pub(crate) table: Table,
    /// The schema new data files are written with: the table's, or a newer
    /// one staged by [`TableWriter::set_schema`] until the next commit.
    schema: SchemaRef,
    arrow_schema: arrow_schema::SchemaRef,
    target_file_size: usize,
}

impl std::fmt::Debug for TableWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TableWriter")
            .field("table", &self.ident.to_string())
            .field("schema_id", &self.schema.schema_id())
            .finish()
    }
}

fn arrow_schema_of(
    ident: &TableIdent,
    schema: &Schema,
) -> Result<arrow_schema::SchemaRef, TableError> {
    schema_to_arrow_schema(schema)
        .map(Arc::new)
        .map_err(|source| TableError::ArrowSchema {
            table: ident.to_string(),
            source: Box::new(source),
        })
}

impl TableWriter {
    /// Loads the table, or creates it (and its namespace) with `schema` and
    /// `partition_spec`. An existing table keeps its own schema and spec.
    pub async fn open_or_create(
        catalog: Arc<dyn TableCatalog>,
        ident: TableIdent,
        schema: Schema,
        partition_spec: UnboundPartitionSpec,
    ) -> Result<Self, TableError> {
        let location = catalog.describe_location(&ident);
        let open_error = |source| TableError::Open {
            table: ident.to_string(),
            location: location.clone(),
            source: Box::new(source),
        };
        let table = match catalog.load_table(&ident).await {
            Ok(table) => table,
            Err(e) if e.kind() == ErrorKind::TableNotFound => {
                ensure_namespace(catalog.as_ref(), &ident.namespace)
                    .await
                    .map_err(open_error)?;
                let creation = TableCreation::builder()
                    .name(ident.name.clone())
                    .schema(schema)
                    .partition_spec(partition_spec)
                    .build();
                match catalog.create_table(&ident.namespace, creation).await {
                    Ok(table) => table,
                    // Another writer created it first.
                    Err(e) if e.kind() == ErrorKind::TableAlreadyExists => {
                        catalog.load_table(&ident).await.map_err(open_error)?
                    }
                    Err(e) => return Err(open_error(e)),
                }
            }
            Err(e) => return Err(open_error(e)),
        };
        let schema = table.metadata().current_schema().clone();
        let arrow_schema = arrow_schema_of(&ident, &schema)?;
        Ok(TableWriter {
            catalog,
            ident,
            table,
            schema,
            arrow_schema,
            target_file_size: DEFAULT_TARGET_FILE_SIZE,
        })
    }

    /// Data files roll over once they reach about `bytes`.
    pub fn with_target_file_size(mut self, bytes: usize) -> Self {
        self.target_file_size = bytes.max(1);
        self
    }

    pub fn ident(&self) -> &TableIdent {
        &self.ident
    }

    /// The table as of the last load or commit.
    pub fn table(&self) -> &Table {
        &self.table
    }

    /// The schema data files are written with.
    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// The Arrow schema record batches must have: iceberg's Arrow form of
    /// [`TableWriter::schema`], with the field-id metadata Parquet needs.
    pub fn arrow_schema(&self) -> arrow_schema::SchemaRef {
        self.arrow_schema.clone()
    }

    /// Stages a new schema (caller-assigned field ids, compatible with the
    /// table's: added optional columns, promoted types). Files written from
    /// now on use it, and the next [`TableWriter::commit`] makes it the
    /// table's current schema in the same commit as those files.
    pub fn set_schema(&mut self, schema: Schema) -> Result<(), TableError> {
        let arrow_schema = arrow_schema_of(&self.ident, &schema)?;
        self.schema = Arc::new(schema);
        self.arrow_schema = arrow_schema;
        Ok(())
    }

    /// Reloads the table from the catalog, dropping a staged schema.
    pub async fn refresh(&mut self) -> Result<(), TableError> {
        let table = self
            .catalog
            .load_table(&self.ident)
            .await
            .map_err(|source| TableError::Open {
                table: self.ident.to_string(),
                location: self.table.metadata().location().to_string(),
                source: Box::new(source),
            })?;
        self.adopt(table)
    }

    pub(crate) fn adopt(&mut self, table: Table) -> Result<(), TableError> {
        let schema = table.metadata().current_schema().clone();
        self.arrow_schema = arrow_schema_of(&self.ident, &schema)?;
        self.schema = schema;
        self.table = table;
        Ok(())
    }

    /// Writes `batches` as Parquet data files, split by partition. The files
    /// are invisible until committed. Each call names its files with a fresh
    /// UUIDv7, so files never collide across calls, writers or retries.
    pub async fn write(&mut self, batches: &[RecordBatch]) -> Result<Vec<DataFile>, TableError> {
        let batches = batches
            .iter()
            .filter(|b| b.num_rows() > 0)
            .map(|b| {
                RecordBatch::try_new(self.arrow_schema.clone(), b.columns().to_vec()).map_err(
                    |source| TableError::BatchSchema {
                        table: self.ident.to_string(),
                        source,
                    },
                )
            })
            .collect::<Result<Vec<_>, _>>()?;
        if batches.is_empty() {
            return Ok(Vec::new());
        }
        let batches = futures_util::stream::iter(batches.into_iter().map(Ok));
        self.write_batches(self.schema.clone(), self.target_file_size, batches)
            .await
    }

    /// The write path of [`TableWriter::write`] over a stream of batches
    /// that already have `schema`'s Arrow form: Parquet (zstd) files rolling
    /// at `target_file_size`, one writer per partition value of the default
    /// spec. Compaction streams rewritten files through it too.
    pub(crate) async fn write_batches<S>(
        &self,
        schema: SchemaRef,
        target_file_size: usize,
        mut batches: S,
    ) -> Result<Vec<DataFile>, TableError>
    where
        S: Stream<Item = Result<RecordBatch, TableError>> + Unpin,
    {
        let data_location = format!("{}/data", self.table.metadata().location());
        let write_error = |source| TableError::Write {
            table: self.ident.to_string(),
            location: data_location.clone(),
            source: Box::new(source),
        };
        let metadata = self.table.metadata();
        let properties = WriterProperties::builder()
            .set_compression(Compression::ZSTD(ZstdLevel::default()))
            .build();
        let parquet = ParquetWriterBuilder::new(properties, schema.clone());
        let locations = DefaultLocationGenerator::new(metadata).map_err(write_error)?;
        let names = DefaultFileNameGenerator::new(
            Uuid::now_v7().to_string(),
            None,
            DataFileFormat::Parquet,
        );
        let rolling = RollingFileWriterBuilder::new(
            parquet,
            target_file_size,
            self.table.file_io().clone(),
            locations,
            names,
        );
        let builder = DataFileWriterBuilder::new(rolling);
        let spec = metadata.default_partition_spec().clone();

        if spec.is_unpartitioned() {
            let mut writer = builder.build(None).await.map_err(write_error)?;
            while let Some(batch) = batches.try_next().await? {
                writer.write(batch).await.map_err(write_error)?;
            }
            return writer.close().await.map_err(write_error);
        }

        let splitter = RecordBatchPartitionSplitter::try_new_with_computed_values(schema, spec)
            .map_err(write_error)?;
        let mut writer = FanoutWriter::new(builder);
        while let Some(batch) = batches.try_next().await? {
            for (key, part) in splitter.split(&batch).map_err(write_error)? {
                writer.write(key, part).await.map_err(write_error)?;
            }
        }
        writer.close().await.map_err(write_error)
    }

    /// Makes `files` visible and records `offsets` in one snapshot; with
    /// `new_schema` (or a schema staged by [`TableWriter::set_schema`]) the
    /// same commit makes that schema current. Offsets are merged with the
    /// committed ones (they never move back), so the snapshot always holds
    /// the full map. A commit with no files still records the offsets.
    pub async fn commit(
        &mut self,
        files: Vec<DataFile>,
        offsets: &CommittedOffsets,
        new_schema: Option<Schema>,
    ) -> Result<Table, TableError> {
        if let Some(schema) = new_schema {
            self.set_schema(schema)?;
        }
        let commit_error = |source| TableError::Commit {
            table: self.ident.to_string(),
            source: Box::new(source),
        };
        let base_offsets = self.committed_offsets()?;
        let merged = merge_offsets(base_offsets.clone(), offsets);
        let commit_id = Uuid::now_v7();
        let mut properties: HashMap<String, String> = merged.to_summary().into_iter().collect();
        properties.insert(COMMIT_ID_KEY.to_string(), commit_id.to_string());

        let tx = Transaction::new(&self.table);
        let append = tx
            .fast_append()
            .set_commit_uuid(commit_id)
            .set_snapshot_properties(properties)
            // Duplicates are caught by commit id; the check would read every
            // manifest of the table on every commit.
            .with_check_duplicate(false)
            .add_data_files(files);
        let tx = append.apply(tx).map_err(commit_error)?;

        let change_schema = !same_schema(&self.schema, self.table.metadata().current_schema());
        let catalog = CommitCatalog {
            inner: self.catalog.as_ref(),
            schema: change_schema.then(|| self.schema.as_ref().clone()),
            base_schema_id: Mutex::new(None),
            base_offsets,
            commit_id: commit_id.to_string(),
        };
        let result = tx.commit(&catalog).await;
        let table = match result {
            Ok(table) => table,
            Err(e) => {
                // The commit may have happened even though its answer was an
                // error (lost reply, conflict reported after our write).
                match self.catalog.load_table(&self.ident).await {
                    Ok(table) if has_commit(table.metadata(), &commit_id.to_string()) => {
                        tracing::info!(table = %self.ident, %commit_id, error = %e, "commit reported an error but is in the table");
                        table
                    }
                    _ => return Err(commit_error(e)),
                }
            }
        };
        self.adopt(table.clone())?;
        Ok(table)
    }

    /// The offsets recorded by the newest snapshot that has any: the current
    /// one, or (after a commit by another tool, such as an expiry or a
    /// compaction) its nearest ancestor with Floe's keys.
    pub fn committed_offsets(&self) -> Result<CommittedOffsets, TableError> {
        committed_offsets(&self.ident, self.table.metadata())
    }

    /// Expires snapshots older than `older_than_ms` beyond the newest
    /// `keep_last` ones, then deletes the manifest lists and manifests that
    /// only expired snapshots referenced, and the data files that only
    /// expired snapshots could read: a file a compaction replaced goes once
    /// no remaining snapshot reads it, even though remaining manifests still
    /// list it as DELETED. The current snapshot, and the snapshot holding
    /// the committed offsets, are always kept.
    /// Metadata JSON files of earlier versions are left in place.
    pub async fn expire_snapshots(
        &mut self,
        keep_last: usize,
        older_than_ms: i64,
    ) -> Result<ExpiredSnapshots, TableError> {
        let expire_error = |source| TableError::Expire {
            table: self.ident.to_string(),
            source: Box::new(source),
        };
        let before = self
            .catalog
            .load_table(&self.ident)
            .await
            .map_err(expire_error)?;
        let keep_last = keep_last
            .max(1)
            .max(offsets_snapshot_depth(before.metadata()) + 1);
        let tx = Transaction::new(&before);
        let action = tx
            .expire_snapshots()
            .retain_last(keep_last)
            .expire_older_than_ms(older_than_ms);
        let tx = action.apply(tx).map_err(expire_error)?;
        let after = tx
            .commit(self.catalog.as_ref())
            .await
            .map_err(expire_error)?;

        let remaining: HashSet<i64> = after
            .metadata()
            .snapshots()
            .map(|s| s.snapshot_id())
            .collect();
        let expired: Vec<_> = before
            .metadata()
            .snapshots()
            .filter(|s| !remaining.contains(&s.snapshot_id()))
            .cloned()
            .collect();
        let mut outcome = ExpiredSnapshots {
            snapshots: expired.len(),
            files_deleted: 0,
        };
        if !expired.is_empty() {
            let live = referenced_files(&after, after.metadata().snapshots().cloned().collect())
                .await
                .map_err(expire_error)?;
            let dead = referenced_files(&before, expired)
                .await
                .map_err(expire_error)?;
            let file_io = after.file_io();
            for path in dead.difference(&live) {
                file_io.delete(path).await.map_err(expire_error)?;
                outcome.files_deleted += 1;
            }
        }
        self.adopt(after)?;
        Ok(outcome)
    }
}

/// `committed` advanced by every partition of `new`.
fn merge_offsets(committed: CommittedOffsets, new: &CommittedOffsets) -> CommittedOffsets {
    committed.merged_with(new)
}

/// Same fields and identifier fields, whatever the schema ids.
pub(crate) fn same_schema(a: &Schema, b: &Schema) -> bool {
    a.as_struct() == b.as_struct() && a.identifier_field_ids().eq(b.identifier_field_ids())
}

fn has_floe_keys(summary: &iceberg::spec::Summary) -> bool {
    summary
        .additional_properties
        .keys()
        .any(|k| k == COMMIT_ID_KEY || k.starts_with("floe.next-offset."))
}

/// Offsets of the newest snapshot in the current lineage that has Floe's keys.
fn committed_offsets(
    ident: &TableIdent,
    metadata: &TableMetadata,
) -> Result<CommittedOffsets, TableError> {
    let mut next = metadata.current_snapshot_id();
    while let Some(id) = next {
        let Some(snapshot) = metadata.snapshot_by_id(id) else {
            break;
        };
        let summary = snapshot.summary();
        if has_floe_keys(summary) {
            let map = summary
                .additional_properties
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            return CommittedOffsets::from_summary(&map).map_err(|source| TableError::Offsets {
                table: ident.to_string(),
                snapshot_id: id,
                source,
            });
        }
        next = snapshot.parent_snapshot_id();
    }
    Ok(CommittedOffsets::default())
}

/// How many parents back from the current snapshot the offsets live (0 when
/// the current snapshot has them, or when none has).
fn offsets_snapshot_depth(metadata: &TableMetadata) -> usize {
    let mut depth = 0;
    let mut next = metadata.current_snapshot_id();
    while let Some(snapshot) = next.and_then(|id| metadata.snapshot_by_id(id)) {
        if has_floe_keys(snapshot.summary()) {
            return depth;
        }
        depth += 1;
        next = snapshot.parent_snapshot_id();
    }
    0
}

/// Every manifest list and manifest `snapshots` reference, and every data
/// file they can read (a live entry: ADDED or EXISTING).
async fn referenced_files(
    table: &Table,
    snapshots: Vec<iceberg::spec::SnapshotRef>,
) -> iceberg::Result<HashSet<String>> {
    let mut files = HashSet::new();
    let mut manifests_seen = HashSet::new();
    for snapshot in snapshots {
        files.insert(snapshot.manifest_list().to_string());
        let list = table.manifest_list_reader(&snapshot).load().await?;
        for manifest_file in list.entries() {
            if !manifests_seen.insert(manifest_file.manifest_path.clone()) {
                continue;
            }
            files.insert(manifest_file.manifest_path.clone());
            let manifest = manifest_file.load_manifest(table.file_io()).await?;
            // A DELETED entry (left by a compaction's replace snapshot, and
            // carried on by later appends) does not make its file readable
            // from that snapshot: only live entries keep data files.
            for entry in manifest.entries().iter().filter(|e| e.is_alive()) {
                files.insert(entry.file_path().to_string());
            }
        }
    }
    Ok(files)
}

async fn ensure_namespace(
    catalog: &dyn TableCatalog,
    namespace: &NamespaceIdent,
) -> iceberg::Result<()> {
    if catalog.namespace_exists(namespace).await? {
        return Ok(());
    }
    match catalog.create_namespace(namespace, HashMap::new()).await {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == ErrorKind::NamespaceAlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// The catalog a [`TableWriter::commit`] hands its `Transaction`, which calls
/// `load_table` (to refresh its base) and `update_table` once per attempt.
///
/// **Offsets guard.** iceberg's `Transaction::commit` answers a conflict by
/// reloading the table and applying the same append again on top, with the
/// snapshot summary (the next offsets) computed before. That is right after
/// a commit by another tool (a maintenance job) but would duplicate rows and
/// move the offsets back if another writer had projected the same records
/// meanwhile (a second broker on the table, or this one resumed after a
/// pause while another took over). So every load checks that the table's
/// committed offsets are still `base_offsets`, the ones this commit was
/// prepared from, and otherwise fails the commit, not retryable: the caller
/// starts over from the table's offsets. A lost answer to our own commit
/// also moves them: a table that carries this commit's id passes, and the
/// catalog answers with it as it is.
///
/// **Schema change** (`schema` set): lets the commit carry a schema change
/// together with the fast append, which iceberg 0.10's own actions cannot do
/// (its `UpdateSchemaAction` renumbers field ids and cannot promote types,
/// and custom actions are crate-private). Loads hand the transaction the
/// table with `schema` already current, so the append's manifests and
/// snapshot use it; the commit then prepends `AddSchema` +
/// `SetCurrentSchema` to the append's updates, guarded by the schema id the
/// table had when loaded.
#[derive(Debug)]
struct CommitCatalog<'a> {
    inner: &'a dyn TableCatalog,
    schema: Option<Schema>,
    /// The current schema id of the last loaded table, when it needed the change.
    base_schema_id: Mutex<Option<i32>>,
    /// The committed offsets the commit's own offsets were merged with.
    base_offsets: CommittedOffsets,
    /// The commit's [`COMMIT_ID_KEY`].
    commit_id: String,
}

impl CommitCatalog<'_> {
    fn schema_updates(schema: &Schema) -> Vec<TableUpdate> {
        vec![
            TableUpdate::AddSchema {
                schema: schema.clone(),
            },
            TableUpdate::SetCurrentSchema { schema_id: -1 },
        ]
    }
}

fn unsupported() -> iceberg::Error {
    iceberg::Error::new(
        ErrorKind::FeatureUnsupported,
        "only load_table and update_table are used while committing",
    )
}

#[async_trait]
impl Catalog for CommitCatalog<'_> {
    async fn load_table(&self, ident: &TableIdent) -> iceberg::Result<Table> {
        let table = self.inner.load_table(ident).await?;
        let metadata = table.metadata();
        let now = committed_offsets(ident, metadata).map_err(|e| {
            iceberg::Error::new(ErrorKind::DataInvalid, e.to_string()).with_retryable(false)
        })?;
        // Our own commit moved them if an earlier attempt landed and its
        // answer was lost: the catalog's commit recognises that by the id.
        if now != self.base_offsets && !has_commit(metadata, &self.commit_id) {
            return Err(iceberg::Error::new(
                ErrorKind::DataInvalid,
                format!(
                    "another writer committed offsets to table {ident} since this commit was \
                     prepared (prepared from {}, the table now has {}); not committing, so \
                     no record is written twice: start over from the table's offsets",
                    self.base_offsets, now
                ),
            )
            .with_retryable(false));
        }
        let Some(schema) = &self.schema else {
            return Ok(table);
        };
        if same_schema(schema, metadata.current_schema()) {
            *self
                .base_schema_id
                .lock()
                .unwrap_or_else(|e| e.into_inner()) = None;
            return Ok(table);
        }
        *self
            .base_schema_id
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(metadata.current_schema_id());
        let mut builder = metadata.clone().into_builder(None);
        for update in Self::schema_updates(schema) {
            builder = update.apply(builder)?;
        }
        let staged = builder.build()?.metadata;
        let location = table.metadata_location_result()?.to_string();
        self.inner.build_table(ident, location, staged)
    }

    async fn update_table(&self, mut commit: TableCommit) -> iceberg::Result<Table> {
        let ident = commit.identifier().clone();
        let mut requirements = commit.take_requirements();
        let mut updates = commit.take_updates();
        let base = *self
            .base_schema_id
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let (Some(base_schema_id), Some(schema)) = (base, &self.schema) {
            requirements.push(TableRequirement::CurrentSchemaIdMatch {
                current_schema_id: base_schema_id,
            });
            let mut all = Self::schema_updates(schema);
            all.append(&mut updates);
            updates = all;
        }
        self.inner.commit(&ident, requirements, updates).await
    }

    async fn list_namespaces(
        &self,
        _parent: Option<&NamespaceIdent>,
    ) -> iceberg::Result<Vec<NamespaceIdent>> {
        Err(unsupported())
    }
    async fn create_namespace(
        &self,
        _namespace: &NamespaceIdent,
        _properties: HashMap<String, String>,
    ) -> iceberg::Result<Namespace> {
        Err(unsupported())
    }
    async fn get_namespace(&self, _namespace: &NamespaceIdent) -> iceberg::Result<Namespace> {
        Err(unsupported())
    }
    async fn namespace_exists(&self, _namespace: &NamespaceIdent) -> iceberg::Result<bool> {
        Err(unsupported())
    }
    async fn update_namespace(
        &self,
        _namespace: &NamespaceIdent,
        _properties: HashMap<String, String>,
    ) -> iceberg::Result<()> {
        Err(unsupported())
    }
    async fn drop_namespace(&self, _namespace: &NamespaceIdent) -> iceberg::Result<()> {
        Err(unsupported())
    }
    async fn list_tables(&self, _namespace: &NamespaceIdent) -> iceberg::Result<Vec<TableIdent>> {
        Err(unsupported())
    }
    async fn create_table(
        &self,
        _namespace: &NamespaceIdent,
        _creation: TableCreation,
    ) -> iceberg::Result<Table> {
        Err(unsupported())
    }
    async fn drop_table(&self, _table: &TableIdent) -> iceberg::Result<()> {
        Err(unsupported())
    }
    async fn purge_table(&self, _table: &TableIdent) -> iceberg::Result<()> {
        Err(unsupported())
    }
    async fn table_exists(&self, _table: &TableIdent) -> iceberg::Result<bool> {
        Err(unsupported())
    }
    async fn rename_table(&self, _src: &TableIdent, _dest: &TableIdent) -> iceberg::Result<()> {
        Err(unsupported())
    }
    async fn register_table(
        &self,
        _table: &TableIdent,
        _metadata_location: String,
    ) -> iceberg::Result<Table> {
        Err(unsupported())
    }
}
