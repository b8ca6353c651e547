//! Compaction: a table's small data files rewritten into target-size files
//! and committed as one Iceberg `replace` snapshot.
//!
//! Every projector commit adds at least one file per partition value, so a
//! busy table collects many small files; readers pay per file. iceberg-rust
//! 0.10 has no rewrite action, so [`TableWriter::compact`] builds the
//! snapshot itself, following the Iceberg v2 spec:
//!
//! 1. **Plan.** Reload the table. From the current snapshot, take the live
//!    data files of the default partition spec and group them by partition
//!    value. In each group the files below
//!    [`CompactionPolicy::small_file_size`] are candidates; a group with at
//!    least [`CompactionPolicy::min_input_files`] of them is compacted,
//!    oldest files first, within [`CompactionPolicy::max_input_bytes`] per
//!    run. A table with live delete files is left alone (a rewritten row
//!    would escape the deletes that applied to it).
//! 2. **Rewrite.** Read each group's files with iceberg's Arrow reader,
//!    projected to the current schema (columns added since a file was
//!    written come back null), and write them with the pipeline of
//!    [`TableWriter::write`]: Parquet (zstd), rolling at the target size,
//!    split by the partition spec. The rows the manifests list, the rows
//!    read and the rows written must agree, and every new file must land in
//!    its group's partition; otherwise nothing is committed.
//! 3. **Manifests.** One new manifest lists the new files as ADDED. Each
//!    manifest that lists a replaced file is rewritten with those entries
//!    DELETED and its other live entries EXISTING, keeping their snapshot
//!    ids and sequence numbers; every other manifest is carried over as it
//!    is. A new manifest list names them all.
//! 4. **Commit.** One snapshot: operation `replace`, parent the planned
//!    snapshot, sequence number last + 1, a summary with the standard
//!    counts, the committed offsets of the planned snapshot and a fresh
//!    [`COMMIT_ID_KEY`]. It commits only if the table's uuid and `main` are
//!    still those of the planned snapshot (updates: `AddSnapshot`, then
//!    `SetSnapshotRef(main)`).
//!
//! # Exactly once
//!
//! A replace snapshot changes which files hold the rows, never which rows
//! there are: every row of a replaced file is in exactly one new file (the
//! counts are checked before committing), and the new files and the DELETED
//! entries become visible in the same atomic commit. The snapshot carries
//! the planned snapshot's offsets unchanged, so
//! [`TableWriter::committed_offsets`] reads the same map before and after.
//! Because the commit requires `main` to be the planned snapshot, a
//! projector commit that landed in between is neither lost nor shadowed by
//! older offsets: the compaction fails as a conflict instead and is planned
//! again on the next run.
//!
//! # Failures
//!
//! - Before the commit: the files this attempt wrote are deleted (a writer
//!   that fails midway may leave a file it never reported: an orphan).
//! - The catalog reports a conflict: the table is reloaded. If it carries
//!   this commit's id, an earlier answer was lost and the compaction
//!   happened. Otherwise it definitely did not: the attempt's files are
//!   deleted and [`Compacted::conflict`] is set; this is a normal outcome.
//! - Any other error: the table is reloaded and checked for the commit id
//!   the same way; without it the outcome is unknown (the request may still
//!   be applied), so the files are left in place. An orphan file costs
//!   storage; a deleted file that a snapshot references loses data.
//!
//! Replaced files stay on storage: earlier snapshots still read them.
//! [`TableWriter::expire_snapshots`] deletes them once no remaining snapshot
//! does.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use arrow_array::RecordBatch;
use futures_util::{StreamExt, TryStreamExt};
use iceberg::arrow::{ArrowReaderBuilder, schema_to_arrow_schema};
use iceberg::scan::FileScanTask;
use iceberg::spec::{
    DEFAULT_SCHEMA_NAME_MAPPING, DataContentType, DataFile, DataFileFormat, FormatVersion,
    MAIN_BRANCH, ManifestContentType, ManifestEntryRef, ManifestFile, NameMapping, SchemaRef,
    Snapshot, SnapshotReference, SnapshotRetention, Struct, TableMetadata,
};
use iceberg::table::Table;
use iceberg::{Error, ErrorKind, Runtime, TableRequirement, TableUpdate};
use uuid::Uuid;

use crate::catalog::{COMMIT_ID_KEY, has_commit};
use crate::table::{DEFAULT_TARGET_FILE_SIZE, TableError, TableWriter, same_schema};

mod snapshot;
use snapshot::SnapshotWriter;

/// Which files [`TableWriter::compact`] rewrites, and how much per run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompactionPolicy {
    /// Rewritten files roll over at about this size.
    pub target_file_size: u64,
    /// Files below this size are candidates (default: 75% of the target,
    /// as Spark's `rewrite_data_files` `min-file-size-bytes`).
    pub small_file_size: u64,
    /// A partition is compacted once it holds this many candidates (at
    /// least 2: rewriting one file into one file gains nothing).
    pub min_input_files: usize,
    /// The most input bytes one run reads, bounding its time and I/O.
    pub max_input_bytes: u64,
}

impl CompactionPolicy {
    /// The default policy for tables whose files roll at `bytes`.
    pub fn for_target_file_size(bytes: u64) -> Self {
        CompactionPolicy {
            target_file_size: bytes,
            small_file_size: bytes / 4 * 3,
            min_input_files: 5,
            max_input_bytes: 2 * 1024 * 1024 * 1024,
        }
    }
}

impl Default for CompactionPolicy {
    fn default() -> Self {
        CompactionPolicy::for_target_file_size(DEFAULT_TARGET_FILE_SIZE as u64)
    }
}

/// What one [`TableWriter::compact`] run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Compacted {
    /// Partition values compacted.
    pub groups: usize,
    pub files_removed: usize,
    pub files_added: usize,
    pub bytes_removed: u64,
    pub bytes_added: u64,
    /// Rows rewritten (the same rows, in fewer files).
    pub rows: u64,
    /// Another commit landed after planning, so nothing was committed and
    /// the attempt's files were deleted. Run again later.
    pub conflict: bool,
}

/// The files of one partition value chosen for rewriting.
struct Group {
    partition: Struct,
    inputs: Vec<ManifestEntryRef>,
}

impl Group {
    fn rows(&self) -> u64 {
        self.inputs.iter().map(|e| e.record_count()).sum()
    }
}

/// What to rewrite, as of one snapshot.
struct Plan {
    snapshot: Arc<Snapshot>,
    /// The snapshot's manifest list.
    manifests: Vec<ManifestFile>,
    groups: Vec<Group>,
    /// Paths of the manifests that list an input file.
    touched: HashSet<String>,
}

impl Plan {
    fn removed_paths(&self) -> HashSet<&str> {
        self.inputs().map(|e| e.file_path()).collect()
    }

    fn inputs(&self) -> impl Iterator<Item = &ManifestEntryRef> {
        self.groups.iter().flat_map(|g| g.inputs.iter())
    }
}

/// A snapshot written to storage but not yet committed.
struct Staged {
    snapshot: Snapshot,
    commit_id: String,
    outcome: Compacted,
}

impl TableWriter {
    /// Rewrites small data files into target-size ones and commits them in
    /// one `replace` snapshot that keeps the committed offsets (see the
    /// [module docs](self)). A conflict with another commit is a
    /// [`Compacted::conflict`] outcome, not an error. A schema staged by
    /// [`TableWriter::set_schema`] stays staged.
    pub async fn compact(&mut self, policy: &CompactionPolicy) -> Result<Compacted, TableError> {
        self.reload_keeping_staged_schema().await?;
        let table = self.table.clone();
        let Some(plan) = plan(&table, policy)
            .await
            .map_err(|e| self.compact_error(e))?
        else {
            return Ok(Compacted::default());
        };
        let mut written = Vec::new();
        let staged = match self.stage(&plan, policy, &mut written).await {
            Ok(staged) => staged,
            Err(e) => {
                delete_files(&table, &written).await;
                return Err(e);
            }
        };
        self.commit_replace(&plan, staged, written).await
    }

    fn compact_error(&self, source: Error) -> TableError {
        TableError::Compact {
            table: self.ident.to_string(),
            source: Box::new(source),
        }
    }

    async fn reload_keeping_staged_schema(&mut self) -> Result<(), TableError> {
        let table = self
            .catalog
            .load_table(&self.ident)
            .await
            .map_err(|e| self.compact_error(e))?;
        self.adopt_keeping_staged_schema(table)
    }

    /// Adopts `table` but keeps a schema staged for the next data commit.
    fn adopt_keeping_staged_schema(&mut self, table: Table) -> Result<(), TableError> {
        let current = self.table.metadata().current_schema();
        let staged = (!same_schema(self.schema(), current)).then(|| self.schema().as_ref().clone());
        self.adopt(table)?;
        match staged {
            Some(schema) => self.set_schema(schema),
            None => Ok(()),
        }
    }

    /// Rewrites every group, then writes the manifests and manifest list of
    /// the replace snapshot. Every file written is recorded in `written`.
    async fn stage(
        &self,
        plan: &Plan,
        policy: &CompactionPolicy,
        written: &mut Vec<String>,
    ) -> Result<Staged, TableError> {
        let mut added = Vec::new();
        for group in &plan.groups {
            added.extend(self.rewrite_group(group, policy, written).await?);
        }
        let mut properties: HashMap<String, String> =
            self.committed_offsets()?.to_summary().into_iter().collect();
        let commit_id = Uuid::now_v7().to_string();
        properties.insert(COMMIT_ID_KEY.to_string(), commit_id.clone());
        let snapshot = SnapshotWriter::new(&self.table, &commit_id)
            .write(plan, &added, properties, written)
            .await
            .map_err(|e| self.compact_error(e))?;
        let outcome = Compacted {
            groups: plan.groups.len(),
            files_removed: plan.inputs().count(),
            files_added: added.len(),
            bytes_removed: plan.inputs().map(|e| e.file_size_in_bytes()).sum(),
            bytes_added: added.iter().map(|f| f.file_size_in_bytes()).sum(),
            rows: plan.groups.iter().map(Group::rows).sum(),
            conflict: false,
        };
        Ok(Staged {
            snapshot,
            commit_id,
            outcome,
        })
    }

    /// Reads one group's files in the current schema and writes them anew.
    async fn rewrite_group(
        &self,
        group: &Group,
        policy: &CompactionPolicy,
        written: &mut Vec<String>,
    ) -> Result<Vec<DataFile>, TableError> {
        let metadata = self.table.metadata();
        let schema = metadata.current_schema().clone();
        let arrow_schema = schema_to_arrow_schema(&schema)
            .map(Arc::new)
            .map_err(|e| self.compact_error(e))?;
        let name_mapping = name_mapping(metadata).map_err(|e| self.compact_error(e))?;
        let tasks: Vec<_> = group
            .inputs
            .iter()
            .map(|entry| Ok(scan_task(entry, &schema, name_mapping.clone())))
            .collect();
        let runtime = Runtime::try_current().map_err(|e| self.compact_error(e))?;
        // One file at a time keeps the rows in file order.
        let reader = ArrowReaderBuilder::new(self.table.file_io().clone(), runtime)
            .with_data_file_concurrency_limit(1)
            .build();
        let stream = reader
            .read(Box::pin(futures_util::stream::iter(tasks)))
            .map_err(|e| self.compact_error(e))?
            .stream();

        let mut read = 0u64;
        let batches = stream
            .map_err(|e| self.compact_error(e))
            .try_filter(|batch| std::future::ready(batch.num_rows() > 0))
            .map(|batch| {
                let batch = batch?;
                read += batch.num_rows() as u64;
                RecordBatch::try_new(arrow_schema.clone(), batch.columns().to_vec()).map_err(
                    |source| TableError::BatchSchema {
                        table: self.ident.to_string(),
                        source,
                    },
                )
            });
        let target = usize::try_from(policy.target_file_size.max(1)).unwrap_or(usize::MAX);
        let files = self.write_batches(schema, target, batches).await?;
        written.extend(files.iter().map(|f| f.file_path().to_string()));
        self.check_rewrite(group, read, &files)?;
        Ok(files)
    }

    /// The same rows, in files of the group's partition.
    fn check_rewrite(
        &self,
        group: &Group,
        read: u64,
        files: &[DataFile],
    ) -> Result<(), TableError> {
        let expected = group.rows();
        let written: u64 = files.iter().map(|f| f.record_count()).sum();
        if expected != read || read != written {
            return Err(TableError::CompactRows {
                table: self.ident.to_string(),
                expected,
                read,
                written,
            });
        }
        if let Some(stray) = files.iter().find(|f| f.partition() != &group.partition) {
            return Err(self.compact_error(Error::new(
                ErrorKind::DataInvalid,
                format!(
                    "rewritten file {} has partition {:?}, not {:?} as its inputs",
                    stray.file_path(),
                    stray.partition(),
                    group.partition
                ),
            )));
        }
        Ok(())
    }

    async fn commit_replace(
        &mut self,
        plan: &Plan,
        staged: Staged,
        written: Vec<String>,
    ) -> Result<Compacted, TableError> {
        let snapshot_id = staged.snapshot.snapshot_id();
        let requirements = vec![
            TableRequirement::UuidMatch {
                uuid: self.table.metadata().uuid(),
            },
            TableRequirement::RefSnapshotIdMatch {
                r#ref: MAIN_BRANCH.to_string(),
                snapshot_id: Some(plan.snapshot.snapshot_id()),
            },
        ];
        // As iceberg's own snapshot producer sets it.
        let retention = SnapshotRetention::branch(None, None, None);
        let updates = vec![
            TableUpdate::AddSnapshot {
                snapshot: staged.snapshot,
            },
            TableUpdate::SetSnapshotRef {
                ref_name: MAIN_BRANCH.to_string(),
                reference: SnapshotReference::new(snapshot_id, retention),
            },
        ];
        let error = match self
            .catalog
            .commit(&self.ident, requirements, updates)
            .await
        {
            Ok(table) => {
                self.adopt_keeping_staged_schema(table)?;
                tracing::info!(table = %self.ident, snapshot_id, outcome = ?staged.outcome, "compacted");
                return Ok(staged.outcome);
            }
            Err(e) => e,
        };
        self.resolve_failed_commit(error, staged.commit_id, staged.outcome, &written)
            .await
    }

    /// After a failed commit: whether it happened anyway, definitely did
    /// not (delete what it wrote), or cannot be known (leave everything).
    async fn resolve_failed_commit(
        &mut self,
        error: Error,
        commit_id: String,
        outcome: Compacted,
        written: &[String],
    ) -> Result<Compacted, TableError> {
        let conflict = error.kind() == ErrorKind::CatalogCommitConflicts;
        match self.catalog.load_table(&self.ident).await {
            Ok(table) if has_commit(table.metadata(), &commit_id) => {
                tracing::info!(table = %self.ident, %commit_id, %error, "compaction commit reported an error but is in the table");
                self.adopt_keeping_staged_schema(table)?;
                Ok(outcome)
            }
            Ok(table) if conflict => {
                tracing::info!(table = %self.ident, %error, "compaction lost to another commit; deleting its files");
                delete_files(&table, written).await;
                self.adopt_keeping_staged_schema(table)?;
                Ok(Compacted {
                    conflict: true,
                    ..Compacted::default()
                })
            }
            reload => {
                let reload_error = reload.err().map(|e| e.to_string());
                tracing::warn!(table = %self.ident, %commit_id, %error, ?reload_error, files = written.len(), "compaction commit outcome unknown; leaving its files in place");
                Err(self.compact_error(error))
            }
        }
    }
}

/// The groups to compact as of the current snapshot, or `None` when there
/// is nothing to do.
async fn plan(table: &Table, policy: &CompactionPolicy) -> iceberg::Result<Option<Plan>> {
    let metadata = table.metadata();
    let Some(snapshot) = metadata.current_snapshot().cloned() else {
        return Ok(None);
    };
    if metadata.format_version() != FormatVersion::V2 {
        return Err(Error::new(
            ErrorKind::FeatureUnsupported,
            format!(
                "compaction writes format version 2 manifests; the table is version {}",
                metadata.format_version()
            ),
        ));
    }
    let manifests = table
        .manifest_list_reader(&snapshot)
        .load()
        .await?
        .consume_entries()
        .into_iter()
        .collect::<Vec<_>>();
    if manifests.iter().any(has_live_deletes) {
        tracing::warn!(table = %table.identifier(), "table has delete files; not compacting");
        return Ok(None);
    }
    let candidates = candidates(table, &manifests, policy).await?;
    let groups = choose_groups(candidates.by_partition, policy);
    if groups.is_empty() {
        return Ok(None);
    }
    let touched = groups
        .iter()
        .flat_map(|g| g.inputs.iter())
        .filter_map(|e| candidates.listed_in.get(e.file_path()).cloned())
        .collect();
    Ok(Some(Plan {
        snapshot,
        manifests,
        groups,
        touched,
    }))
}

fn has_live_deletes(manifest: &ManifestFile) -> bool {
    manifest.content == ManifestContentType::Deletes
        && (manifest.has_added_files() || manifest.has_existing_files())
}

/// Manifests that may list live data files of the default spec.
fn default_spec_data(metadata: &TableMetadata, manifest: &ManifestFile) -> bool {
    manifest.content == ManifestContentType::Data
        && manifest.partition_spec_id == metadata.default_partition_spec_id()
        && (manifest.has_added_files() || manifest.has_existing_files())
}

/// Live Parquet data files of the default spec below the small-file size.
#[derive(Default)]
struct Candidates {
    by_partition: HashMap<Struct, Vec<ManifestEntryRef>>,
    /// The manifest that lists each candidate, by file path.
    listed_in: HashMap<String, String>,
}

async fn candidates(
    table: &Table,
    manifests: &[ManifestFile],
    policy: &CompactionPolicy,
) -> iceberg::Result<Candidates> {
    let mut out = Candidates::default();
    for manifest_file in manifests
        .iter()
        .filter(|m| default_spec_data(table.metadata(), m))
    {
        let manifest = manifest_file.load_manifest(table.file_io()).await?;
        for entry in manifest.entries() {
            let small = entry.is_alive()
                && entry.content_type() == DataContentType::Data
                && entry.file_format() == DataFileFormat::Parquet
                && entry.file_size_in_bytes() < policy.small_file_size;
            if !small {
                continue;
            }
            let path = entry.file_path().to_string();
            if let Some(other) = out
                .listed_in
                .insert(path.clone(), manifest_file.manifest_path.clone())
            {
                // Its rows are read twice; rewriting them would keep both copies.
                return Err(Error::new(
                    ErrorKind::DataInvalid,
                    format!(
                        "data file {path} is live in manifests {other} and {}",
                        manifest_file.manifest_path
                    ),
                ));
            }
            out.by_partition
                .entry(entry.data_file().partition().clone())
                .or_default()
                .push(entry.clone());
        }
    }
    Ok(out)
}

/// Partitions with enough candidates, the fullest first, each taking its
/// oldest files while the run's byte budget lasts.
fn choose_groups(
    candidates: HashMap<Struct, Vec<ManifestEntryRef>>,
    policy: &CompactionPolicy,
) -> Vec<Group> {
    let min_files = policy.min_input_files.max(2);
    let mut groups: Vec<Group> = candidates
        .into_iter()
        .filter(|(_, files)| files.len() >= min_files)
        .map(|(partition, mut inputs)| {
            inputs.sort_by(|a, b| {
                (a.sequence_number(), a.file_path()).cmp(&(b.sequence_number(), b.file_path()))
            });
            Group { partition, inputs }
        })
        .collect();
    groups.sort_by(|a, b| {
        b.inputs
            .len()
            .cmp(&a.inputs.len())
            .then_with(|| a.inputs[0].file_path().cmp(b.inputs[0].file_path()))
    });

    let mut budget = policy.max_input_bytes;
    let mut chosen = Vec::new();
    for mut group in groups {
        let mut bytes = 0u64;
        let fit = group
            .inputs
            .iter()
            .take_while(|e| {
                bytes += e.file_size_in_bytes();
                bytes <= budget
            })
            .count();
        if fit < min_files {
            continue;
        }
        group.inputs.truncate(fit);
        budget -= group
            .inputs
            .iter()
            .map(|e| e.file_size_in_bytes())
            .sum::<u64>();
        chosen.push(group);
    }
    chosen
}

fn name_mapping(metadata: &TableMetadata) -> iceberg::Result<Option<Arc<NameMapping>>> {
    let Some(raw) = metadata.properties().get(DEFAULT_SCHEMA_NAME_MAPPING) else {
        return Ok(None);
    };
    serde_json::from_str::<NameMapping>(raw)
        .map(|m| Some(Arc::new(m)))
        .map_err(|e| {
            Error::new(
                ErrorKind::DataInvalid,
                format!("invalid table property {DEFAULT_SCHEMA_NAME_MAPPING}"),
            )
            .with_source(e)
        })
}

/// A task reading one whole data file in `schema`. Partition values are
/// not passed: every column is read from the file, as written.
fn scan_task(
    entry: &ManifestEntryRef,
    schema: &SchemaRef,
    name_mapping: Option<Arc<NameMapping>>,
) -> FileScanTask {
    FileScanTask::builder()
        .with_file_size_in_bytes(entry.file_size_in_bytes())
        .with_start(0)
        .with_length(entry.file_size_in_bytes())
        .with_record_count(Some(entry.record_count()))
        .with_data_file_path(entry.file_path().to_string())
        .with_data_file_format(entry.file_format())
        .with_schema(schema.clone())
        .with_project_field_ids(schema.as_struct().fields().iter().map(|f| f.id).collect())
        .with_name_mapping(name_mapping)
        .with_case_sensitive(true)
        .build()
}

/// Deletes files an attempt wrote, best effort: a file left behind is an
/// orphan nothing references.
async fn delete_files(table: &Table, paths: &[String]) {
    for path in paths {
        if let Err(e) = table.file_io().delete(path).await {
            tracing::warn!(table = %table.identifier(), %path, error = %e, "cannot delete a file of an abandoned compaction");
        }
    }
}

#[cfg(test)]
mod tests {
    use iceberg::spec::{DataFileBuilder, ManifestEntry, ManifestStatus};

    use super::*;

    fn entry(partition: i32, sequence_number: i64, size: u64) -> ManifestEntryRef {
        let file = DataFileBuilder::default()
            .content(DataContentType::Data)
            .file_path(format!(
                "file://t/data/p{partition}-{sequence_number}.parquet"
            ))
            .file_format(DataFileFormat::Parquet)
            .partition(Struct::from_iter([Some(iceberg::spec::Literal::int(
                partition,
            ))]))
            .record_count(1)
            .file_size_in_bytes(size)
            .build()
            .unwrap();
        Arc::new(
            ManifestEntry::builder()
                .status(ManifestStatus::Added)
                .sequence_number(sequence_number)
                .data_file(file)
                .build(),
        )
    }

    /// Partition 0 with six files, 1 with five, 2 with four; 10 bytes each,
    /// listed newest first.
    fn candidates() -> HashMap<Struct, Vec<ManifestEntryRef>> {
        let mut out: HashMap<Struct, Vec<ManifestEntryRef>> = HashMap::new();
        for (partition, files) in [(0, 6), (1, 5), (2, 4)] {
            for seq in (1..=files).rev() {
                let e = entry(partition, seq, 10);
                out.entry(e.data_file().partition().clone())
                    .or_default()
                    .push(e);
            }
        }
        out
    }

    fn chosen(budget: u64, min_input_files: usize) -> Vec<(String, Vec<i64>)> {
        let policy = CompactionPolicy {
            max_input_bytes: budget,
            min_input_files,
            ..CompactionPolicy::default()
        };
        choose_groups(candidates(), &policy)
            .into_iter()
            .map(|g| {
                let seqs = g
                    .inputs
                    .iter()
                    .filter_map(|e| e.sequence_number())
                    .collect();
                (format!("{:?}", g.partition.fields()), seqs)
            })
            .collect()
    }

    #[test]
    fn fullest_partitions_first_oldest_files_first() {
        let groups = chosen(u64::MAX, 5);
        assert_eq!(groups.len(), 2, "{groups:?}");
        assert_eq!(groups[0].1, vec![1, 2, 3, 4, 5, 6]);
        assert_eq!(groups[1].1, vec![1, 2, 3, 4, 5]);
        assert!(groups[0].0.contains("Int(0)"), "{groups:?}");
    }

    #[test]
    fn the_budget_bounds_a_run() {
        // Room for partition 0 only; 1 would get no file.
        assert_eq!(chosen(60, 5).len(), 1);
        // Partition 0 whole, then four files left for 1: below the minimum.
        assert_eq!(chosen(100, 5).len(), 1);
        // Five of partition 0's six files.
        assert_eq!(chosen(55, 5)[0].1, vec![1, 2, 3, 4, 5]);
        assert!(chosen(49, 5).is_empty());
        assert_eq!(chosen(110, 5).len(), 2);
    }

    #[test]
    fn one_file_is_never_a_group() {
        let mut single = HashMap::new();
        let e = entry(7, 1, 10);
        single.insert(e.data_file().partition().clone(), vec![e]);
        let policy = CompactionPolicy {
            min_input_files: 0,
            ..CompactionPolicy::default()
        };
        assert!(choose_groups(single, &policy).is_empty());
        assert_eq!(chosen(u64::MAX, 0).len(), 3);
    }

    #[test]
    fn default_policy_is_spark_like() {
        let policy = CompactionPolicy::default();
        assert_eq!(policy.target_file_size, 128 * 1024 * 1024);
        assert_eq!(policy.small_file_size, 96 * 1024 * 1024);
        assert_eq!(policy.min_input_files, 5);
    }
}
