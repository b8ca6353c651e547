//! Compaction against real tables (local directory and in-memory store,
//! through the filesystem catalog): the replace snapshot keeps every row and
//! the committed offsets, respects partitions and schema evolution, gives up
//! cleanly on a conflict, and expiry then deletes exactly the replaced files.

mod common;

use std::collections::{HashMap, HashSet};

use bytes::Bytes;
use common::{Backend, Row, batch, rows, rows_of, scan_rows};
use futures_util::{FutureExt, TryStreamExt};
use iceberg::spec::{
    DataFile, Literal, ManifestStatus, Operation, PrimitiveLiteral, Schema, Struct,
};
use iceberg::table::Table;
use iceberg::{Catalog, NamespaceIdent, TableIdent};
use iceberg_sink::catalog::COMMIT_ID_KEY;
use iceberg_sink::offsets::CommittedOffsets;
use iceberg_sink::partition_spec::{DEFAULT_PARTITION_SPEC, parse_partition_spec};
use iceberg_sink::table::TableWriter;
use iceberg_sink::{Compacted, CompactionPolicy};

const TABLE_DIR: &str = "iceberg/floe/orders";
const UNPARTITIONED: &str = "()";

fn ident() -> TableIdent {
    TableIdent::new(NamespaceIdent::new("floe".into()), "orders".into())
}

async fn open(backend: &Backend, schema: Schema, spec: &str) -> TableWriter {
    let spec = parse_partition_spec(spec, &schema).unwrap();
    TableWriter::open_or_create(backend.catalog(), ident(), schema, spec)
        .await
        .unwrap()
}

fn offsets_of(rows: &[Row]) -> CommittedOffsets {
    let mut o = CommittedOffsets::default();
    for r in rows {
        o.advance(r.partition, r.offset + 1);
    }
    o
}

/// Writes and commits `rows` in one snapshot (one file per partition value).
async fn commit_rows(writer: &mut TableWriter, rows: &[Row]) -> Vec<DataFile> {
    let files = writer
        .write(&[batch(&writer.arrow_schema(), rows)])
        .await
        .unwrap();
    writer
        .commit(files.clone(), &offsets_of(rows), None)
        .await
        .unwrap();
    files
}

/// `commits` commits of `per_commit` rows each, from offset 0.
async fn small_commits(writer: &mut TableWriter, commits: i64, per_commit: i64) -> Vec<Row> {
    let mut all = Vec::new();
    for i in 0..commits {
        let chunk = rows(i * per_commit, per_commit);
        commit_rows(writer, &chunk).await;
        all.extend(chunk);
    }
    all.sort();
    all
}

async fn fresh_table(backend: &Backend) -> Table {
    backend.catalog().load_table(&ident()).await.unwrap()
}

fn sorted(mut rows: Vec<Row>) -> Vec<Row> {
    rows.sort();
    rows
}

/// One entry of a manifest of a snapshot.
#[derive(Debug, Clone)]
struct Entry {
    manifest: String,
    status: ManifestStatus,
    path: String,
    size: u64,
    records: u64,
    partition: Struct,
    snapshot_id: i64,
    sequence_number: i64,
    file_sequence_number: i64,
}

async fn entries_of(table: &Table, snapshot_id: i64) -> Vec<Entry> {
    let snapshot = table.metadata().snapshot_by_id(snapshot_id).unwrap();
    let list = table.manifest_list_reader(snapshot).load().await.unwrap();
    let mut out = Vec::new();
    for m in list.entries() {
        let manifest = m.load_manifest(table.file_io()).await.unwrap();
        for e in manifest.entries() {
            out.push(Entry {
                manifest: m.manifest_path.clone(),
                status: e.status(),
                path: e.file_path().to_string(),
                size: e.file_size_in_bytes(),
                records: e.record_count(),
                partition: e.data_file().partition().clone(),
                snapshot_id: e.snapshot_id().unwrap(),
                sequence_number: e.sequence_number().unwrap(),
                file_sequence_number: e.file_sequence_number.unwrap(),
            });
        }
    }
    out
}

async fn current_entries(table: &Table) -> Vec<Entry> {
    entries_of(table, table.metadata().current_snapshot_id().unwrap()).await
}

fn live(entries: &[Entry]) -> Vec<Entry> {
    entries
        .iter()
        .filter(|e| e.status != ManifestStatus::Deleted)
        .cloned()
        .collect()
}

fn paths(entries: &[Entry]) -> HashSet<String> {
    entries.iter().map(|e| e.path.clone()).collect()
}

fn summary(table: &Table) -> HashMap<String, String> {
    let snapshot = table.metadata().current_snapshot().unwrap();
    snapshot.summary().additional_properties.clone()
}

/// Every manifest list, manifest and readable data file of every snapshot.
async fn referenced(table: &Table) -> HashSet<String> {
    let mut out = HashSet::new();
    for snapshot in table.metadata().snapshots() {
        out.insert(snapshot.manifest_list().to_string());
        let list = table.manifest_list_reader(snapshot).load().await.unwrap();
        for m in list.entries() {
            out.insert(m.manifest_path.clone());
        }
        out.extend(paths(&live(
            &entries_of(table, snapshot.snapshot_id()).await,
        )));
    }
    out
}

/// URLs of the data files, manifests and manifest lists on storage.
async fn stored(backend: &Backend) -> HashSet<String> {
    backend
        .keys(TABLE_DIR)
        .await
        .into_iter()
        .filter(|k| k.ends_with(".parquet") || k.ends_with(".avro"))
        .map(|k| format!("{}/{k}", backend.root))
        .collect()
}

async fn exists(backend: &Backend, url: &str) -> bool {
    let key = url.strip_prefix(&format!("{}/", backend.root)).unwrap();
    backend.read(key).await.is_some()
}

/// Rows of one data file, read straight from its Parquet bytes.
async fn file_rows(backend: &Backend, url: &str) -> (Vec<Row>, arrow_schema::SchemaRef) {
    let key = url.strip_prefix(&format!("{}/", backend.root)).unwrap();
    let bytes: Bytes = backend.read(key).await.unwrap();
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes)
        .unwrap()
        .build()
        .unwrap();
    let batches: Vec<_> = reader.map(|b| b.unwrap()).collect();
    let schema = batches[0].schema();
    (rows_of(&batches), schema)
}

fn hour_of(row: &Row) -> i32 {
    (row.timestamp_us / 3_600_000_000) as i32
}

fn int_partition(partition: &Struct) -> i32 {
    match partition.fields() {
        [Some(Literal::Primitive(PrimitiveLiteral::Int(v)))] => *v,
        other => panic!("unexpected partition {other:?}"),
    }
}

fn assert_send<T: Send>(_: &T) {}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_commits_become_one_file_with_the_same_rows_and_offsets() {
    for backend in Backend::all() {
        let name = backend.name;
        let mut writer = open(&backend, common::kafka_schema(), UNPARTITIONED).await;
        let all = small_commits(&mut writer, 8, 10).await;
        let before = fresh_table(&backend).await;
        let parent = before.metadata().current_snapshot().unwrap().clone();
        let small = current_entries(&before).await;
        assert_eq!(small.len(), 8, "{name}");
        let offsets = writer.committed_offsets().unwrap();
        assert_eq!(offsets, offsets_of(&all));

        let policy = CompactionPolicy::default();
        let future = writer.compact(&policy);
        assert_send(&future);
        let outcome = future.await.unwrap();
        let table = fresh_table(&backend).await;
        let added = live(&current_entries(&table).await);
        assert_eq!(added.len(), 1, "{name}");
        assert_eq!(
            outcome,
            Compacted {
                groups: 1,
                files_removed: 8,
                files_added: 1,
                bytes_removed: small.iter().map(|e| e.size).sum(),
                bytes_added: added[0].size,
                rows: 80,
                conflict: false,
            },
            "{name}"
        );

        // The same rows, read by iceberg's own scan, and the same offsets.
        assert_eq!(scan_rows(&table).await, all, "{name}");
        assert_eq!(writer.committed_offsets().unwrap(), offsets, "{name}");
        let reopened = open(&backend, common::kafka_schema(), UNPARTITIONED).await;
        assert_eq!(reopened.committed_offsets().unwrap(), offsets, "{name}");

        // One replace snapshot on top of the planned one.
        let snapshot = table.metadata().current_snapshot().unwrap();
        assert_eq!(snapshot.summary().operation, Operation::Replace);
        assert_eq!(snapshot.parent_snapshot_id(), Some(parent.snapshot_id()));
        assert_eq!(snapshot.sequence_number(), parent.sequence_number() + 1);
        assert_eq!(table.metadata().snapshots().count(), 9);
        let s = summary(&table);
        let size = added[0].size.to_string();
        let removed_size = outcome.bytes_removed.to_string();
        for (key, value) in [
            ("added-data-files", "1"),
            ("deleted-data-files", "8"),
            ("added-records", "80"),
            ("deleted-records", "80"),
            ("total-data-files", "1"),
            ("total-records", "80"),
            ("total-delete-files", "0"),
            ("added-files-size", size.as_str()),
            ("removed-files-size", removed_size.as_str()),
            ("total-files-size", size.as_str()),
        ] {
            assert_eq!(s.get(key).map(String::as_str), Some(value), "{name}: {key}");
        }
        let commit_id = &s[COMMIT_ID_KEY];
        assert_ne!(
            Some(commit_id),
            parent.summary().additional_properties.get(COMMIT_ID_KEY)
        );

        // Replaced files are DELETED entries that keep their sequence numbers.
        let entries = current_entries(&table).await;
        for old in &small {
            let now = entries.iter().find(|e| e.path == old.path).unwrap();
            assert_eq!(now.status, ManifestStatus::Deleted, "{name}");
            assert_eq!(now.snapshot_id, snapshot.snapshot_id());
            assert_eq!(now.sequence_number, old.sequence_number);
            assert_eq!(now.file_sequence_number, old.file_sequence_number);
            assert!(exists(&backend, &old.path).await, "kept until expiry");
        }
        assert_eq!(added[0].status, ManifestStatus::Added);
        assert_eq!(added[0].sequence_number, snapshot.sequence_number());
        assert_eq!(added[0].snapshot_id, snapshot.snapshot_id());

        // New data after the compaction: offsets keep advancing.
        let more = rows(80, 10);
        commit_rows(&mut writer, &more).await;
        assert_eq!(
            writer.committed_offsets().unwrap(),
            offsets_of(&rows(0, 90))
        );
        let table = fresh_table(&backend).await;
        assert_eq!(scan_rows(&table).await, rows(0, 90), "{name}");
        assert_eq!(summary(&table)["total-data-files"], "2");
        assert_eq!(summary(&table)["total-records"], "90");
        assert_eq!(live(&current_entries(&table).await).len(), 2);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitions_are_compacted_apart_within_the_byte_budget() {
    for backend in Backend::all() {
        let name = backend.name;
        let mut writer = open(&backend, common::kafka_schema(), DEFAULT_PARTITION_SPEC).await;
        // Six commits over three hours: 18 files, 6 per hour.
        let all = small_commits(&mut writer, 6, 12).await;
        let before = current_entries(&fresh_table(&backend).await).await;
        assert_eq!(before.len(), 18, "{name}");
        let mut group_bytes: HashMap<i32, u64> = HashMap::new();
        for e in &before {
            *group_bytes.entry(int_partition(&e.partition)).or_default() += e.size;
        }
        assert_eq!(group_bytes.len(), 3);

        // A budget for the biggest partition only: one group this run.
        let policy = CompactionPolicy {
            max_input_bytes: *group_bytes.values().max().unwrap(),
            ..CompactionPolicy::default()
        };
        let first = writer.compact(&policy).await.unwrap();
        assert_eq!(
            (first.groups, first.files_removed, first.files_added),
            (1, 6, 1),
            "{name}"
        );
        let table = fresh_table(&backend).await;
        assert_eq!(scan_rows(&table).await, all, "{name}");
        let replace_id = table.metadata().current_snapshot_id().unwrap();
        let entries = current_entries(&table).await;
        let added: Vec<_> = entries
            .iter()
            .filter(|e| e.status == ManifestStatus::Added)
            .collect();
        assert_eq!(added.len(), 1);
        let hour = int_partition(&added[0].partition);
        // Files of the other hours stay, EXISTING in the rewritten manifests
        // with their own snapshot ids and sequence numbers.
        for old in &before {
            let now = entries
                .iter()
                .find(|e| e.path == old.path && e.manifest != old.manifest)
                .unwrap_or_else(|| panic!("{name}: {} not rewritten", old.path));
            let expected = if int_partition(&old.partition) == hour {
                ManifestStatus::Deleted
            } else {
                ManifestStatus::Existing
            };
            assert_eq!(now.status, expected, "{name}");
            let snapshot_id = if expected == ManifestStatus::Deleted {
                replace_id
            } else {
                old.snapshot_id
            };
            assert_eq!(
                (
                    now.snapshot_id,
                    now.sequence_number,
                    now.file_sequence_number
                ),
                (snapshot_id, old.sequence_number, old.file_sequence_number),
                "{name}"
            );
        }

        // The next run takes the other two hours; the compacted one is left.
        let second = writer.compact(&CompactionPolicy::default()).await.unwrap();
        assert_eq!(
            (second.groups, second.files_removed, second.files_added),
            (2, 12, 2),
            "{name}"
        );
        let table = fresh_table(&backend).await;
        assert_eq!(scan_rows(&table).await, all, "{name}");
        let files = live(&current_entries(&table).await);
        assert_eq!(files.len(), 3);
        // Each file holds exactly the rows of its own hour.
        let mut from_files = Vec::new();
        for file in &files {
            let (file_rows, _) = file_rows(&backend, &file.path).await;
            let hour = int_partition(&file.partition);
            assert!(file_rows.iter().all(|r| hour_of(r) == hour), "{name}");
            assert_eq!(file_rows.len() as u64, file.records);
            from_files.extend(file_rows);
        }
        assert_eq!(sorted(from_files), all, "{name}");
        assert_eq!(writer.committed_offsets().unwrap(), offsets_of(&all));

        // Nothing left to do.
        let third = writer.compact(&CompactionPolicy::default()).await.unwrap();
        assert_eq!(third, Compacted::default());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_from_before_a_schema_change_get_the_new_columns() {
    for backend in Backend::all() {
        let name = backend.name;
        let mut writer = open(&backend, common::schema_with_n(), UNPARTITIONED).await;
        let mut old_rows = Vec::new();
        for i in 0..3 {
            let mut chunk = rows(i * 4, 4);
            for r in &mut chunk {
                r.n = Some(r.offset * 1000);
            }
            commit_rows(&mut writer, &chunk).await;
            old_rows.extend(chunk);
        }
        // `n` promoted to long and `note` added, then more small commits.
        writer.set_schema(common::evolved_schema()).unwrap();
        let mut new_rows = Vec::new();
        for i in 3..6 {
            let mut chunk = rows(i * 4, 4);
            for r in &mut chunk {
                r.n = Some(5_000_000_000 + r.offset);
                r.note = Some(format!("note {}", r.offset));
            }
            commit_rows(&mut writer, &chunk).await;
            new_rows.extend(chunk);
        }
        let all = sorted([old_rows, new_rows].concat());

        let outcome = writer.compact(&CompactionPolicy::default()).await.unwrap();
        assert_eq!(
            (outcome.files_removed, outcome.files_added),
            (6, 1),
            "{name}"
        );
        let table = fresh_table(&backend).await;
        assert_eq!(scan_rows(&table).await, all, "{name}");

        // The new file has the current columns; old rows have no note.
        let file = live(&current_entries(&table).await).remove(0);
        let (from_file, schema) = file_rows(&backend, &file.path).await;
        assert_eq!(from_file, all, "{name}");
        assert_eq!(
            schema.field_with_name("n").unwrap().data_type(),
            &arrow_schema::DataType::Int64
        );
        assert!(schema.field_with_name("note").is_ok());
        assert!(
            from_file
                .iter()
                .filter(|r| r.offset < 12)
                .all(|r| r.note.is_none())
        );
    }
}

/// Files written with a staged schema, compaction, then their commit: the
/// schema change still goes in with them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_staged_schema_survives_a_compaction() {
    let backend = Backend::memory();
    let mut writer = open(&backend, common::kafka_schema(), UNPARTITIONED).await;
    let old = small_commits(&mut writer, 5, 4).await;
    writer.set_schema(common::schema_with_n()).unwrap();
    let mut pending = rows(20, 4);
    for r in &mut pending {
        r.n = Some(r.offset);
    }
    let files = writer
        .write(&[batch(&writer.arrow_schema(), &pending)])
        .await
        .unwrap();

    let outcome = writer.compact(&CompactionPolicy::default()).await.unwrap();
    assert_eq!(outcome.files_removed, 5);
    assert!(writer.schema().field_by_name("n").is_some());
    let table = writer
        .commit(files, &offsets_of(&pending), None)
        .await
        .unwrap();
    assert!(
        table
            .metadata()
            .current_schema()
            .field_by_name("n")
            .is_some()
    );
    assert_eq!(scan_rows(&table).await, sorted([old, pending].concat()));
    assert_eq!(
        writer.committed_offsets().unwrap(),
        offsets_of(&rows(0, 24))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_few_small_files_or_big_files_are_left_alone() {
    for backend in Backend::all() {
        let name = backend.name;
        let mut writer = open(&backend, common::kafka_schema(), UNPARTITIONED).await;
        let small = small_commits(&mut writer, 4, 5).await;
        let big_rows = rows(20, 3000);
        let big = commit_rows(&mut writer, &big_rows).await.remove(0);
        let snapshots = writer.table().metadata().snapshots().count();
        // The big file is exactly at the small-file size: not a candidate.
        let policy = CompactionPolicy {
            small_file_size: big.file_size_in_bytes(),
            ..CompactionPolicy::default()
        };

        // Four small files, below min_input_files (5): nothing happens.
        let outcome = writer.compact(&policy).await.unwrap();
        assert_eq!(outcome, Compacted::default(), "{name}");
        assert_eq!(
            fresh_table(&backend).await.metadata().snapshots().count(),
            snapshots
        );

        // A fifth small file.
        let fifth = rows(3020, 5);
        commit_rows(&mut writer, &fifth).await;
        let strict = CompactionPolicy {
            min_input_files: 6,
            ..policy.clone()
        };
        assert_eq!(writer.compact(&strict).await.unwrap(), Compacted::default());
        let outcome = writer.compact(&policy).await.unwrap();
        assert_eq!(
            (outcome.files_removed, outcome.files_added, outcome.rows),
            (5, 1, 25),
            "{name}"
        );
        let table = fresh_table(&backend).await;
        let files = live(&current_entries(&table).await);
        assert_eq!(files.len(), 2, "{name}");
        assert!(files.iter().any(|f| f.path == big.file_path()), "{name}");
        let all = sorted([small, big_rows, fifth].concat());
        assert_eq!(scan_rows(&table).await, all, "{name}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_between_planning_and_commit_wins() {
    for backend in Backend::all() {
        let name = backend.name;
        let spec = "(identity(kafka.partition))";
        let mut writer = open(&backend, common::kafka_schema(), spec).await;
        let ours = small_commits(&mut writer, 6, 10).await;
        let stored_before = stored(&backend).await;

        // Another writer commits right before our new metadata version.
        let theirs = rows(1000, 10);
        let other_catalog = backend.catalog();
        let other_rows = theirs.clone();
        backend.hooks.before_next_metadata_create(Box::new(move || {
            async move {
                let schema = common::kafka_schema();
                let spec = parse_partition_spec(spec, &schema).unwrap();
                let mut other = TableWriter::open_or_create(other_catalog, ident(), schema, spec)
                    .await
                    .unwrap();
                commit_rows(&mut other, &other_rows).await;
            }
            .boxed()
        }));
        let outcome = writer.compact(&CompactionPolicy::default()).await.unwrap();
        assert_eq!(
            outcome,
            Compacted {
                conflict: true,
                ..Compacted::default()
            },
            "{name}"
        );

        // Their commit is current and intact, with their offsets.
        let table = fresh_table(&backend).await;
        let snapshot = table.metadata().current_snapshot().unwrap();
        assert_eq!(snapshot.summary().operation, Operation::Append, "{name}");
        assert_eq!(table.metadata().snapshots().count(), 7);
        let all = sorted([ours.clone(), theirs.clone()].concat());
        assert_eq!(scan_rows(&table).await, all, "{name}");
        let offsets = offsets_of(&all);
        assert_eq!(writer.committed_offsets().unwrap(), offsets, "{name}");

        // Every file the compaction wrote is gone: what is stored is what the
        // table references, and only their commit added files.
        let stored_after = stored(&backend).await;
        assert_eq!(stored_after, referenced(&table).await, "{name}");
        assert!(stored_before.is_subset(&stored_after));
        assert_eq!(stored_after.len() - stored_before.len(), 4, "{name}");

        // The next run compacts everything, theirs included.
        let retry = writer.compact(&CompactionPolicy::default()).await.unwrap();
        assert_eq!(
            (retry.groups, retry.files_removed, retry.files_added),
            (2, 14, 2),
            "{name}"
        );
        let table = fresh_table(&backend).await;
        assert_eq!(scan_rows(&table).await, all, "{name}");
        assert_eq!(writer.committed_offsets().unwrap(), offsets);
    }
}

/// The store fails after our metadata version was written: the compaction
/// finds its commit id in the table and keeps its files.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_commit_reply_is_recognized() {
    for backend in Backend::all() {
        let name = backend.name;
        let mut writer = open(&backend, common::kafka_schema(), UNPARTITIONED).await;
        let all = small_commits(&mut writer, 5, 10).await;
        backend.hooks.lose_next_metadata_reply();
        let outcome = writer.compact(&CompactionPolicy::default()).await.unwrap();
        assert_eq!(
            (outcome.files_removed, outcome.files_added, outcome.conflict),
            (5, 1, false),
            "{name}"
        );
        let table = fresh_table(&backend).await;
        assert_eq!(table.metadata().snapshots().count(), 6, "{name}");
        assert_eq!(
            table
                .metadata()
                .current_snapshot()
                .unwrap()
                .summary()
                .operation,
            Operation::Replace
        );
        assert_eq!(
            writer.table().metadata().current_snapshot_id(),
            table.metadata().current_snapshot_id()
        );
        assert_eq!(scan_rows(&table).await, all, "{name}");
        assert_eq!(stored(&backend).await, referenced(&table).await, "{name}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expiry_deletes_replaced_files_once_no_snapshot_reads_them() {
    for backend in Backend::all() {
        let name = backend.name;
        let mut writer = open(&backend, common::kafka_schema(), UNPARTITIONED).await;
        let old = small_commits(&mut writer, 6, 10).await;
        let last_append = writer.table().metadata().current_snapshot_id().unwrap();
        let small = paths(&current_entries(writer.table()).await);
        writer.compact(&CompactionPolicy::default()).await.unwrap();
        let compacted = paths(&live(&current_entries(writer.table()).await));
        let more = rows(60, 10);
        commit_rows(&mut writer, &more).await;
        let all = sorted([old.clone(), more].concat());
        let offsets = writer.committed_offsets().unwrap();
        let far_future = chrono::Utc::now().timestamp_millis() + 60_000;

        // The last append still reads the small files: they stay.
        writer.expire_snapshots(3, far_future).await.unwrap();
        let table = fresh_table(&backend).await;
        assert_eq!(table.metadata().snapshots().count(), 3, "{name}");
        for path in &small {
            assert!(
                exists(&backend, path).await,
                "{name}: {path} deleted too early"
            );
        }
        let stream = table
            .scan()
            .snapshot_id(last_append)
            .build()
            .unwrap()
            .to_arrow()
            .await
            .unwrap();
        let batches: Vec<_> = stream.try_collect().await.unwrap();
        assert_eq!(
            rows_of(&batches),
            old,
            "{name}: time travel before the compaction"
        );

        // Only the replace snapshot and the append after it remain; their
        // manifests list the small files as DELETED, which keeps none alive.
        let outcome = writer.expire_snapshots(2, far_future).await.unwrap();
        assert_eq!(outcome.snapshots, 1, "{name}");
        for path in &small {
            assert!(!exists(&backend, path).await, "{name}: {path} kept");
        }
        for path in &compacted {
            assert!(exists(&backend, path).await, "{name}: {path} deleted");
        }
        let table = fresh_table(&backend).await;
        assert_eq!(scan_rows(&table).await, all, "{name}");
        assert_eq!(writer.committed_offsets().unwrap(), offsets);
        // Everything any remaining snapshot reads is still there.
        for path in referenced(&table).await {
            assert!(exists(&backend, &path).await, "{name}: {path} missing");
        }
        assert_eq!(stored(&backend).await, referenced(&table).await, "{name}");
    }
}
