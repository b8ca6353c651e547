//! The `replace` snapshot of a compaction: its manifests, manifest list
//! and summary (steps 3 and 4 of the [parent module](super)), written to
//! storage but not committed.

use std::collections::{HashMap, HashSet};

use iceberg::spec::{
    DataFile, ManifestFile, ManifestListWriter, ManifestWriter, ManifestWriterBuilder, Operation,
    PartitionSpec, SchemaRef, Snapshot, SnapshotSummaryCollector, Summary, TableMetadata,
    TableProperties,
};
use iceberg::table::Table;
use iceberg::{Error, ErrorKind};
use uuid::Uuid;

use super::Plan;

/// Writes the manifests and manifest list of one replace snapshot.
pub(super) struct SnapshotWriter<'a> {
    table: &'a Table,
    commit_id: &'a str,
    snapshot_id: i64,
    sequence_number: i64,
    manifests_written: usize,
}

impl<'a> SnapshotWriter<'a> {
    pub(super) fn new(table: &'a Table, commit_id: &'a str) -> Self {
        let metadata = table.metadata();
        SnapshotWriter {
            table,
            commit_id,
            snapshot_id: new_snapshot_id(metadata),
            sequence_number: metadata.next_sequence_number(),
            manifests_written: 0,
        }
    }

    pub(super) async fn write(
        mut self,
        plan: &Plan,
        added: &[DataFile],
        properties: HashMap<String, String>,
        written: &mut Vec<String>,
    ) -> iceberg::Result<Snapshot> {
        let removed = plan.removed_paths();
        let mut manifests = vec![self.added_manifest(added, written).await?];
        let mut deleted = 0;
        for manifest in &plan.manifests {
            if plan.touched.contains(&manifest.manifest_path) {
                let (rewritten, count) = self.rewrite_manifest(manifest, &removed, written).await?;
                deleted += count;
                manifests.push(rewritten);
            } else {
                manifests.push(manifest.clone());
            }
        }
        if deleted != removed.len() {
            return Err(Error::new(
                ErrorKind::DataInvalid,
                format!(
                    "{} files planned for replacement but {deleted} manifest entries found",
                    removed.len()
                ),
            ));
        }
        let manifest_list = self
            .write_manifest_list(plan.snapshot.snapshot_id(), manifests, written)
            .await?;
        let metadata = self.table.metadata();
        let removed_files: Vec<&DataFile> = plan.inputs().map(|e| e.data_file()).collect();
        let summary = replace_summary(metadata, &plan.snapshot, added, &removed_files, properties);
        Ok(Snapshot::builder()
            .with_snapshot_id(self.snapshot_id)
            .with_parent_snapshot_id(Some(plan.snapshot.snapshot_id()))
            .with_sequence_number(self.sequence_number)
            .with_timestamp_ms(chrono::Utc::now().timestamp_millis())
            .with_manifest_list(manifest_list)
            .with_summary(summary)
            .with_schema_id(metadata.current_schema_id())
            .build())
    }

    fn manifest_writer(
        &mut self,
        schema: SchemaRef,
        spec: PartitionSpec,
        written: &mut Vec<String>,
    ) -> iceberg::Result<ManifestWriter> {
        let path = format!(
            "{}/metadata/{}-m{}.avro",
            self.table.metadata().location(),
            self.commit_id,
            self.manifests_written
        );
        self.manifests_written += 1;
        let output = self.table.file_io().new_output(&path)?;
        written.push(path);
        Ok(
            ManifestWriterBuilder::new(output, Some(self.snapshot_id), schema, spec)
                .build_v2_data(),
        )
    }

    /// The manifest of the new files: ADDED in this snapshot.
    async fn added_manifest(
        &mut self,
        added: &[DataFile],
        written: &mut Vec<String>,
    ) -> iceberg::Result<ManifestFile> {
        let metadata = self.table.metadata();
        let mut writer = self.manifest_writer(
            metadata.current_schema().clone(),
            metadata.default_partition_spec().as_ref().clone(),
            written,
        )?;
        for file in added {
            writer.add_file(file.clone(), self.sequence_number)?;
        }
        writer.write_manifest_file().await
    }

    /// `manifest` with the `removed` files DELETED and its other live files
    /// EXISTING; returns it and how many entries it marked DELETED.
    async fn rewrite_manifest(
        &mut self,
        manifest_file: &ManifestFile,
        removed: &HashSet<&str>,
        written: &mut Vec<String>,
    ) -> iceberg::Result<(ManifestFile, usize)> {
        let manifest = manifest_file.load_manifest(self.table.file_io()).await?;
        let (entries, metadata) = manifest.into_parts();
        let mut writer = self.manifest_writer(metadata.schema, metadata.partition_spec, written)?;
        let mut deleted = 0;
        // DELETED entries of earlier snapshots are dropped, as the spec allows.
        for entry in entries.iter().filter(|e| e.is_alive()) {
            let missing = |what: &str| {
                Error::new(
                    ErrorKind::DataInvalid,
                    format!(
                        "manifest {} lists {} without {what}",
                        manifest_file.manifest_path,
                        entry.file_path()
                    ),
                )
            };
            let sequence_number = entry
                .sequence_number()
                .ok_or_else(|| missing("a sequence number"))?;
            let file_sequence_number = entry.file_sequence_number;
            if removed.contains(entry.file_path()) {
                writer.add_delete_file(
                    entry.data_file().clone(),
                    sequence_number,
                    file_sequence_number,
                )?;
                deleted += 1;
            } else {
                let snapshot_id = entry
                    .snapshot_id()
                    .ok_or_else(|| missing("a snapshot id"))?;
                writer.add_existing_file(
                    entry.data_file().clone(),
                    snapshot_id,
                    sequence_number,
                    file_sequence_number,
                )?;
            }
        }
        Ok((writer.write_manifest_file().await?, deleted))
    }

    async fn write_manifest_list(
        &self,
        parent_id: i64,
        manifests: Vec<ManifestFile>,
        written: &mut Vec<String>,
    ) -> iceberg::Result<String> {
        let path = format!(
            "{}/metadata/snap-{}-1-{}.avro",
            self.table.metadata().location(),
            self.snapshot_id,
            self.commit_id
        );
        let output = self.table.file_io().new_output(&path)?;
        written.push(path.clone());
        let mut writer = ManifestListWriter::v2(
            output.writer().await?,
            self.snapshot_id,
            Some(parent_id),
            self.sequence_number,
        );
        writer.add_manifests(manifests.into_iter())?;
        writer.close().await?;
        Ok(path)
    }
}

/// A positive snapshot id no snapshot of the table has.
fn new_snapshot_id(metadata: &TableMetadata) -> i64 {
    loop {
        let (high, low) = Uuid::new_v4().as_u64_pair();
        let id = ((high ^ low) & i64::MAX as u64) as i64;
        if id != 0 && metadata.snapshot_by_id(id).is_none() {
            return id;
        }
    }
}

/// Summary keys that carry a running total, with the keys of what a
/// snapshot added and removed.
const TOTALS: [(&str, &str, &str); 6] = [
    ("total-data-files", "added-data-files", "deleted-data-files"),
    ("total-records", "added-records", "deleted-records"),
    ("total-files-size", "added-files-size", "removed-files-size"),
    (
        "total-delete-files",
        "added-delete-files",
        "removed-delete-files",
    ),
    (
        "total-position-deletes",
        "added-position-deletes",
        "removed-position-deletes",
    ),
    (
        "total-equality-deletes",
        "added-equality-deletes",
        "removed-equality-deletes",
    ),
];

/// The summary of a replace snapshot: `properties` (offsets, commit id),
/// then the added/deleted counts and running totals, which win over any
/// colliding property.
fn replace_summary(
    metadata: &TableMetadata,
    parent: &Snapshot,
    added: &[DataFile],
    removed: &[&DataFile],
    mut properties: HashMap<String, String>,
) -> Summary {
    let schema = metadata.current_schema().clone();
    let spec = metadata.default_partition_spec().clone();
    let mut collector = SnapshotSummaryCollector::default();
    let limit = metadata
        .properties()
        .get(TableProperties::PROPERTY_WRITE_PARTITION_SUMMARY_LIMIT)
        .and_then(|v| v.parse().ok())
        .unwrap_or(TableProperties::PROPERTY_WRITE_PARTITION_SUMMARY_LIMIT_DEFAULT);
    collector.set_partition_summary_limit(limit);
    for file in added {
        collector.add_file(file, schema.clone(), spec.clone());
    }
    for file in removed {
        collector.remove_file(file, schema.clone(), spec.clone());
    }
    let counts = collector.build();
    properties.extend(totals(&counts, &parent.summary().additional_properties));
    properties.extend(counts);
    Summary {
        operation: Operation::Replace,
        additional_properties: properties,
    }
}

/// The running totals after a snapshot with `counts`, from the `previous`
/// snapshot's. Like iceberg, a total the previous summary lacks (or cannot
/// be parsed) is left out rather than guessed.
fn totals(
    counts: &HashMap<String, String>,
    previous: &HashMap<String, String>,
) -> HashMap<String, String> {
    let number = |map: &HashMap<String, String>, key: &str| map.get(key)?.parse::<u64>().ok();
    TOTALS
        .iter()
        .filter_map(|(total, plus, minus)| {
            let before = number(previous, total)?;
            let plus = number(counts, plus).unwrap_or(0);
            let minus = number(counts, minus).unwrap_or(0);
            let after = (before + plus).saturating_sub(minus);
            Some((total.to_string(), after.to_string()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_follow_the_previous_summary() {
        let map = |pairs: &[(&str, &str)]| -> HashMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let counts = map(&[
            ("added-data-files", "2"),
            ("deleted-data-files", "9"),
            ("added-records", "500"),
            ("deleted-records", "500"),
            ("added-files-size", "300"),
            ("removed-files-size", "900"),
        ]);
        let previous = map(&[
            ("total-data-files", "12"),
            ("total-records", "800"),
            ("total-files-size", "1000"),
            ("total-delete-files", "0"),
            ("total-position-deletes", "x"),
        ]);
        let totals = totals(&counts, &previous);
        assert_eq!(
            totals,
            map(&[
                ("total-data-files", "5"),
                ("total-records", "800"),
                ("total-files-size", "400"),
                ("total-delete-files", "0"),
            ])
        );
    }
}
