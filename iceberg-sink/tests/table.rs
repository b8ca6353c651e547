//! Table writer and filesystem catalog against a local directory and an
//! in-memory store: write, commit with offsets, reopen, read back with
//! iceberg-rust's own scan, and the commit edge cases exactly-once needs.

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use common::{Backend, Row, batch, rows, scan_rows, summaries};
use futures_util::FutureExt;
use iceberg::spec::{PrimitiveType, Type};
use iceberg::transaction::{ApplyTransactionAction, Transaction};
use iceberg::{Catalog, ErrorKind, NamespaceIdent, TableCommit, TableIdent};
use iceberg_sink::catalog::{COMMIT_ID_KEY, FileSystemCatalog};
use iceberg_sink::offsets::CommittedOffsets;
use iceberg_sink::partition_spec::{DEFAULT_PARTITION_SPEC, parse_partition_spec};
use iceberg_sink::table::TableWriter;

fn ident() -> TableIdent {
    TableIdent::new(NamespaceIdent::new("floe".into()), "orders".into())
}

async fn open(backend: &Backend, schema: iceberg::spec::Schema) -> TableWriter {
    let spec = parse_partition_spec(DEFAULT_PARTITION_SPEC, &schema).unwrap();
    TableWriter::open_or_create(backend.catalog(), ident(), schema, spec)
        .await
        .unwrap()
}

fn offsets(pairs: &[(i32, i64)]) -> CommittedOffsets {
    let mut o = CommittedOffsets::default();
    for (p, n) in pairs {
        o.advance(*p, *n);
    }
    o
}

/// Next offset per partition of `rows`.
fn offsets_of(rows: &[Row]) -> CommittedOffsets {
    let mut o = CommittedOffsets::default();
    for r in rows {
        o.advance(r.partition, r.offset + 1);
    }
    o
}

async fn write_rows(writer: &mut TableWriter, rows: &[Row]) -> Vec<iceberg::spec::DataFile> {
    let schema = writer.arrow_schema();
    // Two batches, to exercise several writes into the same partitions.
    let (a, b) = rows.split_at(rows.len() / 2);
    writer
        .write(&[batch(&schema, a), batch(&schema, b)])
        .await
        .unwrap()
}

const TABLE_DIR: &str = "iceberg/floe/orders";

async fn hint(backend: &Backend) -> String {
    let bytes = backend
        .read(&format!("{TABLE_DIR}/metadata/version-hint.text"))
        .await
        .expect("version hint");
    String::from_utf8(bytes.to_vec()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_commit_reopen_and_read_back() {
    for backend in Backend::all() {
        let name = backend.name;
        let mut writer = open(&backend, common::kafka_schema()).await;
        assert_eq!(hint(&backend).await, "1", "{name}");

        // Field ids are the caller's, not iceberg's renumbering.
        let schema = writer.table().metadata().current_schema().clone();
        assert_eq!(schema.field_by_name("kafka.timestamp").unwrap().id, 4);
        assert_eq!(schema.field_by_name("value").unwrap().id, 11);
        assert_eq!(
            schema
                .field_by_name("kafka.headers.element.value")
                .unwrap()
                .id,
            10
        );
        let props = writer.table().metadata().properties();
        assert_eq!(props["write.format.default"], "parquet");
        assert_eq!(props["write.parquet.compression-codec"], "zstd");

        let first = rows(0, 30);
        let files = write_rows(&mut writer, &first).await;
        let partitions: HashSet<_> = files.iter().map(|f| f.partition().clone()).collect();
        assert_eq!(partitions.len(), 3, "{name}: one partition per hour");
        assert!(files.iter().all(|f| f.file_path().ends_with(".parquet")));
        writer
            .commit(files, &offsets_of(&first), None)
            .await
            .unwrap();
        assert_eq!(hint(&backend).await, "2", "{name}");
        assert!(
            backend
                .read(&format!("{TABLE_DIR}/metadata/v2.metadata.json"))
                .await
                .is_some()
        );

        // A fresh catalog, as after a restart.
        let catalog = backend.catalog();
        let table = catalog.load_table(&ident()).await.unwrap();
        assert_eq!(scan_rows(&table).await, first, "{name}");
        let snapshot = table.metadata().current_snapshot().unwrap();
        assert_eq!(
            committed_partitions(&table).await.len(),
            3,
            "{name}: three partition values in the committed manifests"
        );
        assert!(
            snapshot
                .summary()
                .additional_properties
                .contains_key(COMMIT_ID_KEY)
        );

        let reopened = open(&backend, common::kafka_schema()).await;
        assert_eq!(
            reopened.committed_offsets().unwrap(),
            offsets(&[(0, 29), (1, 30)]),
            "{name}"
        );

        // A second commit on the reopened writer.
        let mut writer = reopened;
        let second = rows(30, 12);
        let files = write_rows(&mut writer, &second).await;
        let table = writer
            .commit(files, &offsets_of(&second), None)
            .await
            .unwrap();
        assert_eq!(hint(&backend).await, "3", "{name}");
        assert_eq!(table.metadata().snapshots().count(), 2);
        assert_eq!(
            writer.committed_offsets().unwrap(),
            offsets(&[(0, 41), (1, 42)])
        );
        let all: Vec<Row> = rows(0, 42);
        let table = backend.catalog().load_table(&ident()).await.unwrap();
        assert_eq!(scan_rows(&table).await, all, "{name}");

        // Data files are zstd Parquet under data/<partition path>/.
        let keys = backend.keys(&format!("{TABLE_DIR}/data")).await;
        assert!(
            keys.iter().all(|k| k.contains("/kafka_timestamp_hour=")),
            "{keys:?}"
        );
    }
}

/// Partition values recorded in the manifests of the current snapshot.
async fn committed_partitions(table: &iceberg::table::Table) -> HashSet<iceberg::spec::Struct> {
    let snapshot = table.metadata().current_snapshot().unwrap();
    let list = table.manifest_list_reader(snapshot).load().await.unwrap();
    let mut out = HashSet::new();
    for m in list.entries() {
        let manifest = m.load_manifest(table.file_io()).await.unwrap();
        for e in manifest.entries() {
            out.insert(e.data_file().partition().clone());
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commit_without_files_records_offsets() {
    for backend in Backend::all() {
        let mut writer = open(&backend, common::kafka_schema()).await;
        let table = writer
            .commit(vec![], &offsets(&[(0, 5), (3, 9)]), None)
            .await
            .unwrap();
        assert_eq!(table.metadata().snapshots().count(), 1);
        let reopened = open(&backend, common::kafka_schema()).await;
        assert_eq!(
            reopened.committed_offsets().unwrap(),
            offsets(&[(0, 5), (3, 9)])
        );
        assert!(scan_rows(reopened.table()).await.is_empty());

        // Offsets never move back, and partitions missing from a commit keep
        // their offsets: every snapshot holds the full map.
        let mut writer = reopened;
        writer
            .commit(vec![], &offsets(&[(0, 3), (1, 1)]), None)
            .await
            .unwrap();
        assert_eq!(
            writer.committed_offsets().unwrap(),
            offsets(&[(0, 5), (1, 1), (3, 9)])
        );
    }
}

/// Offsets are read from the newest snapshot that has them, when another
/// tool committed after Floe.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committed_offsets_skip_foreign_snapshots() {
    let backend = Backend::memory();
    let mut writer = open(&backend, common::kafka_schema()).await;
    writer
        .commit(vec![], &offsets(&[(0, 7)]), None)
        .await
        .unwrap();
    let catalog = backend.catalog();
    let table = catalog.load_table(&ident()).await.unwrap();
    let tx = Transaction::new(&table);
    let tx = tx
        .fast_append()
        .set_snapshot_properties(HashMap::from([("tool".to_string(), "other".to_string())]))
        .apply(tx)
        .unwrap();
    tx.commit(catalog.as_ref()).await.unwrap();
    writer.refresh().await.unwrap();
    assert_eq!(writer.table().metadata().snapshots().count(), 2);
    assert_eq!(writer.committed_offsets().unwrap(), offsets(&[(0, 7)]));
}

/// `update_table` called again with a commit that already happened (its
/// answer was lost) succeeds without a second snapshot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_commit_applies_once() {
    for backend in Backend::all() {
        let name = backend.name;
        let mut writer = open(&backend, common::kafka_schema()).await;
        let files = write_rows(&mut writer, &rows(0, 10)).await;
        let catalog = backend.catalog();
        let table = catalog.load_table(&ident()).await.unwrap();
        let tx = Transaction::new(&table);
        let tx = tx
            .fast_append()
            .set_snapshot_properties(HashMap::from([
                (COMMIT_ID_KEY.to_string(), "commit-1".to_string()),
                ("floe.next-offset.0".to_string(), "10".to_string()),
            ]))
            .add_data_files(files)
            .apply(tx)
            .unwrap();
        let twice = CommitTwice {
            inner: catalog.clone(),
        };
        let table = tx.commit(&twice).await.unwrap();
        assert_eq!(table.metadata().snapshots().count(), 1, "{name}");
        assert_eq!(hint(&backend).await, "2", "{name}");
        assert!(
            backend
                .read(&format!("{TABLE_DIR}/metadata/v3.metadata.json"))
                .await
                .is_none(),
            "{name}: the repeated commit wrote no new version"
        );
        assert_eq!(scan_rows(&table).await, rows(0, 10));
    }
}

/// The store reports an error after the new metadata version was written:
/// the writer finds its commit in the table and reports success, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_reply_is_recognized() {
    for backend in Backend::all() {
        let name = backend.name;
        let mut writer = open(&backend, common::kafka_schema()).await;
        let batch_rows = rows(0, 10);
        let files = write_rows(&mut writer, &batch_rows).await;
        backend.hooks.lose_next_metadata_reply();
        let table = writer
            .commit(files, &offsets_of(&batch_rows), None)
            .await
            .unwrap();
        assert_eq!(table.metadata().snapshots().count(), 1, "{name}");
        assert_eq!(scan_rows(&table).await, batch_rows, "{name}");
        assert_eq!(writer.committed_offsets().unwrap(), offsets_of(&batch_rows));
    }
}

/// Another writer commits between our load and our put of the next version:
/// the put-if-absent fails, iceberg retries on the new base, and both
/// snapshots exist.
/// Right before our next metadata write, another writer (`theirs`, through
/// its own catalog on the raw store, without hooks) appends `files` with
/// the snapshot `properties`, taking the version we are about to create.
fn other_writer_commits_first(
    backend: &Backend,
    theirs: TableWriter,
    files: Vec<iceberg::spec::DataFile>,
    properties: HashMap<String, String>,
) {
    let raw = iceberg_sink::storage::Warehouse::new(
        backend.store.clone(),
        &format!("{}/iceberg", backend.root),
        "iceberg",
    )
    .unwrap();
    let other_catalog = Arc::new(FileSystemCatalog::new(raw));
    backend.hooks.before_next_metadata_create(Box::new(move || {
        async move {
            let table = other_catalog.load_table(&ident()).await.unwrap();
            let tx = Transaction::new(&table);
            let tx = tx
                .fast_append()
                .set_snapshot_properties(properties)
                .add_data_files(files)
                .apply(tx)
                .unwrap();
            tx.commit(other_catalog.as_ref()).await.unwrap();
            drop(theirs);
        }
        .boxed()
    }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conflicting_commit_is_retried() {
    for backend in Backend::all() {
        let name = backend.name;
        let mut ours = open(&backend, common::kafka_schema()).await;
        let our_rows = rows(0, 10);
        let files = write_rows(&mut ours, &our_rows).await;

        let mut theirs = open(&backend, common::kafka_schema()).await;
        let their_rows = rows(100, 6);
        let their_files = write_rows(&mut theirs, &their_rows).await;
        other_writer_commits_first(
            &backend,
            theirs,
            their_files,
            HashMap::from([(COMMIT_ID_KEY.to_string(), "theirs".to_string())]),
        );

        let creates_before = *backend.hooks.metadata_creates.lock().unwrap();
        let table = ours
            .commit(files, &offsets_of(&our_rows), None)
            .await
            .unwrap();
        // v2 was taken by the other writer; ours landed as v3 after a retry.
        assert_eq!(
            *backend.hooks.metadata_creates.lock().unwrap(),
            creates_before + 1
        );
        let keys = backend.keys(&format!("{TABLE_DIR}/metadata")).await;
        assert_eq!(hint(&backend).await, "3", "{name}: {keys:#?}");
        assert!(keys.iter().any(|k| k.ends_with("/v3.metadata.json")));
        assert!(!keys.iter().any(|k| k.ends_with("/v4.metadata.json")));
        assert_eq!(table.metadata().snapshots().count(), 2, "{name}");
        let ids: Vec<_> = summaries(&table)
            .iter()
            .map(|s| s.get(COMMIT_ID_KEY).cloned().unwrap())
            .collect();
        assert_eq!(ids[0], "theirs", "{name}");
        let current = table.metadata().current_snapshot().unwrap();
        assert_eq!(
            current.parent_snapshot_id(),
            table
                .metadata()
                .snapshots()
                .find(|s| s.summary().additional_properties[COMMIT_ID_KEY] == "theirs")
                .map(|s| s.snapshot_id())
        );
        let mut expected = our_rows.clone();
        expected.extend(their_rows);
        expected.sort();
        assert_eq!(scan_rows(&table).await, expected, "{name}");
    }
}

/// Another writer projected the same records first (its snapshot moved the
/// offsets) while our commit of them was being prepared: iceberg's retry
/// would apply our append on top of theirs (every row twice, the offsets
/// moved back), so the commit fails instead, not retryable, and the table
/// keeps their rows once; a writer opened afterwards starts from their
/// offsets.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commit_after_another_writer_moved_the_offsets_fails() {
    for backend in Backend::all() {
        let name = backend.name;
        let mut ours = open(&backend, common::kafka_schema()).await;
        let records = rows(0, 10);
        let files = write_rows(&mut ours, &records).await;

        let mut theirs = open(&backend, common::kafka_schema()).await;
        let their_files = write_rows(&mut theirs, &records).await;
        let their_offsets = offsets_of(&records);
        let mut properties: HashMap<String, String> =
            their_offsets.to_summary().into_iter().collect();
        properties.insert(COMMIT_ID_KEY.to_string(), "theirs".to_string());
        other_writer_commits_first(&backend, theirs, their_files, properties);

        let err = ours
            .commit(files, &offsets_of(&records), None)
            .await
            .expect_err("a commit over another writer's offsets must fail");
        assert!(!err.is_retriable(), "{name}: {err:?}");
        let chain = format!("{err:?}");
        assert!(
            chain.contains("another writer committed offsets"),
            "{name}: {chain}"
        );

        let table = backend.catalog().load_table(&ident()).await.unwrap();
        assert_eq!(table.metadata().snapshots().count(), 1, "{name}");
        let mut expected = records.clone();
        expected.sort();
        assert_eq!(scan_rows(&table).await, expected, "{name}: rows once");
        let reopened = open(&backend, common::kafka_schema()).await;
        assert_eq!(
            reopened.committed_offsets().unwrap(),
            their_offsets,
            "{name}"
        );
    }
}

/// A requirement that fails against the newest version is a retryable
/// conflict, not a silent overwrite.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_requirements_are_a_retryable_conflict() {
    let backend = Backend::memory();
    let mut writer = open(&backend, common::kafka_schema()).await;
    let catalog = backend.catalog();
    let stale = catalog.load_table(&ident()).await.unwrap();
    writer
        .commit(vec![], &offsets(&[(0, 1)]), None)
        .await
        .unwrap();
    let tx = Transaction::new(&stale);
    let tx = tx
        .fast_append()
        .set_snapshot_properties(HashMap::from([("x".to_string(), "y".to_string())]))
        .apply(tx)
        .unwrap();
    // Commit directly (no reload) by capturing the updates the transaction makes.
    let capture = Capture::default();
    *capture.table.lock().unwrap() = Some(stale.clone());
    let _ = tx.commit(&capture).await;
    let (requirements, updates) = capture.take();
    let err = catalog
        .commit(&ident(), requirements, updates)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::CatalogCommitConflicts);
    assert!(err.retryable());
}

/// Added optional column and int -> long promotion in the same commit as the
/// data that needs them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schema_change_in_the_commit_of_its_data() {
    for backend in Backend::all() {
        let name = backend.name;
        let mut writer = open(&backend, common::schema_with_n()).await;
        let mut old_rows = rows(0, 6);
        for (i, r) in old_rows.iter_mut().enumerate() {
            r.n = (i % 2 == 0).then_some(i as i64 * 1000);
        }
        let files = write_rows(&mut writer, &old_rows).await;
        writer
            .commit(files, &offsets_of(&old_rows), None)
            .await
            .unwrap();

        let evolved = common::evolved_schema();
        writer.set_schema(evolved.clone()).unwrap();
        let mut new_rows = rows(6, 6);
        for (i, r) in new_rows.iter_mut().enumerate() {
            r.n = Some(5_000_000_000 + i as i64);
            r.note = (i % 2 == 1).then(|| format!("note {i}"));
        }
        let files = write_rows(&mut writer, &new_rows).await;
        let table = writer
            .commit(files, &offsets_of(&new_rows), Some(evolved))
            .await
            .unwrap();

        let metadata = table.metadata();
        assert_eq!(metadata.snapshots().count(), 2, "{name}");
        let schema = metadata.current_schema();
        let n = schema.field_by_name("n").unwrap();
        assert_eq!(
            (n.id, &*n.field_type),
            (12, &Type::Primitive(PrimitiveType::Long))
        );
        assert_eq!(schema.field_by_name("note").unwrap().id, 13);
        assert_eq!(
            metadata.current_snapshot().unwrap().schema_id(),
            Some(metadata.current_schema_id()),
            "{name}: the snapshot was made with the new schema"
        );
        // One metadata version for schema and data together.
        assert_eq!(hint(&backend).await, "3", "{name}");

        let table = backend.catalog().load_table(&ident()).await.unwrap();
        let mut expected = old_rows;
        expected.extend(new_rows);
        expected.sort();
        assert_eq!(scan_rows(&table).await, expected, "{name}");
        assert_eq!(writer.arrow_schema().fields().len(), 4);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expiry_keeps_current_snapshot_and_data() {
    for backend in Backend::all() {
        let name = backend.name;
        let mut writer = open(&backend, common::kafka_schema()).await;
        let mut all = Vec::new();
        for i in 0..4 {
            let batch_rows = rows(i * 5, 5);
            let files = write_rows(&mut writer, &batch_rows).await;
            writer
                .commit(files, &offsets_of(&batch_rows), None)
                .await
                .unwrap();
            all.extend(batch_rows);
        }
        all.sort();
        let lists_before = backend
            .keys(&format!("{TABLE_DIR}/metadata"))
            .await
            .into_iter()
            .filter(|k| k.contains("/snap-"))
            .count();
        assert_eq!(lists_before, 4);
        let offsets_before = writer.committed_offsets().unwrap();

        let far_future = chrono::Utc::now().timestamp_millis() + 60_000;
        let outcome = writer.expire_snapshots(1, far_future).await.unwrap();
        assert_eq!(outcome.snapshots, 3, "{name}");
        // Fast appends carry every manifest forward, so only the three old
        // manifest lists became unreferenced.
        assert_eq!(outcome.files_deleted, 3, "{name}");
        let lists_after = backend
            .keys(&format!("{TABLE_DIR}/metadata"))
            .await
            .into_iter()
            .filter(|k| k.contains("/snap-"))
            .count();
        assert_eq!(lists_after, 1);

        let table = backend.catalog().load_table(&ident()).await.unwrap();
        assert_eq!(table.metadata().snapshots().count(), 1);
        assert_eq!(scan_rows(&table).await, all, "{name}");
        assert_eq!(writer.committed_offsets().unwrap(), offsets_before);

        // Nothing more to expire.
        let outcome = writer.expire_snapshots(1, far_future).await.unwrap();
        assert_eq!(outcome.snapshots, 0);
    }
}

/// The hint lags after a crash between metadata and hint, or is missing:
/// loads still find the newest version.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_or_missing_hint() {
    for backend in Backend::all() {
        let mut writer = open(&backend, common::kafka_schema()).await;
        writer
            .commit(vec![], &offsets(&[(0, 1)]), None)
            .await
            .unwrap();
        writer
            .commit(vec![], &offsets(&[(0, 2)]), None)
            .await
            .unwrap();
        let hint_key = format!("{TABLE_DIR}/metadata/version-hint.text");

        backend.write(&hint_key, b"1").await;
        let reopened = open(&backend, common::kafka_schema()).await;
        assert_eq!(reopened.committed_offsets().unwrap(), offsets(&[(0, 2)]));
        assert!(
            reopened
                .table()
                .metadata_location()
                .unwrap()
                .ends_with("/v3.metadata.json")
        );

        backend.delete(&hint_key).await;
        let mut reopened = open(&backend, common::kafka_schema()).await;
        assert_eq!(reopened.committed_offsets().unwrap(), offsets(&[(0, 2)]));
        reopened
            .commit(vec![], &offsets(&[(0, 3)]), None)
            .await
            .unwrap();
        assert_eq!(hint(&backend).await, "4");

        backend.write(&hint_key, b"garbage").await;
        let reopened = open(&backend, common::kafka_schema()).await;
        assert_eq!(reopened.committed_offsets().unwrap(), offsets(&[(0, 3)]));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespaces_tables_and_drop() {
    for backend in Backend::all() {
        let catalog = backend.catalog();
        let floe = NamespaceIdent::new("floe".into());
        assert!(catalog.list_namespaces(None).await.unwrap().is_empty());
        assert!(!catalog.table_exists(&ident()).await.unwrap());
        let err = catalog.load_table(&ident()).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::TableNotFound);
        assert!(err.to_string().contains("floe.orders"), "{err}");

        let _ = open(&backend, common::kafka_schema()).await;
        let other = TableIdent::new(floe.clone(), "other~dlq".into());
        TableWriter::open_or_create(
            catalog.clone(),
            other.clone(),
            common::kafka_schema(),
            iceberg::spec::UnboundPartitionSpec::builder().build(),
        )
        .await
        .unwrap();
        assert_eq!(
            catalog.list_namespaces(None).await.unwrap(),
            vec![floe.clone()]
        );
        assert!(catalog.namespace_exists(&floe).await.unwrap());
        assert_eq!(
            catalog.list_tables(&floe).await.unwrap(),
            vec![ident(), other.clone()]
        );
        let creation = iceberg::TableCreation::builder()
            .name("orders".into())
            .schema(common::kafka_schema())
            .build();
        let err = catalog.create_table(&floe, creation).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::TableAlreadyExists);
        let err = catalog.rename_table(&ident(), &other).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::FeatureUnsupported);

        catalog.drop_table(&other).await.unwrap();
        assert!(!catalog.table_exists(&other).await.unwrap());
        assert!(backend.keys("iceberg/floe/other~dlq").await.is_empty());
        assert_eq!(catalog.list_tables(&floe).await.unwrap(), vec![ident()]);
        let err = catalog.drop_namespace(&floe).await.unwrap_err();
        assert!(err.to_string().contains("not empty"), "{err}");
        catalog.drop_table(&ident()).await.unwrap();
        catalog.drop_namespace(&floe).await.unwrap();
        assert!(catalog.list_namespaces(None).await.unwrap().is_empty());
    }
}

/// Writes a table and keeps it on disk for DuckDB / pyiceberg checks by
/// hand: `cargo test -p iceberg-sink --test table -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn leave_table_for_external_readers() {
    let backend = Backend::local();
    let mut writer = open(&backend, common::schema_with_n()).await;
    let mut first = rows(0, 30);
    for r in &mut first {
        r.n = Some(r.offset * 10);
    }
    let files = write_rows(&mut writer, &first).await;
    writer
        .commit(files, &offsets_of(&first), None)
        .await
        .unwrap();
    let evolved = common::evolved_schema();
    writer.set_schema(evolved.clone()).unwrap();
    let mut second = rows(30, 12);
    for r in &mut second {
        r.n = Some(5_000_000_000 + r.offset);
        r.note = Some(format!("note {}", r.offset));
    }
    let files = write_rows(&mut writer, &second).await;
    let table = writer
        .commit(files, &offsets_of(&second), Some(evolved))
        .await
        .unwrap();
    let dir = backend.dir.unwrap().keep();
    println!("table dir: {}/{TABLE_DIR}", dir.display());
    println!("metadata: {}", table.metadata_location().unwrap());
}

/// A test catalog: `impl Catalog for $ty` with the given methods, and every
/// other method unreachable (the wrappers below only load and commit).
macro_rules! test_catalog {
    ($ty:ty, { $($methods:tt)* }) => {
        #[async_trait::async_trait]
        impl Catalog for $ty {
            $($methods)*
                async fn list_namespaces(
                    &self,
                    _: Option<&NamespaceIdent>,
                ) -> iceberg::Result<Vec<NamespaceIdent>> {
                    unimplemented!()
                }
                async fn create_namespace(
                    &self,
                    _: &NamespaceIdent,
                    _: HashMap<String, String>,
                ) -> iceberg::Result<iceberg::Namespace> {
                    unimplemented!()
                }
                async fn get_namespace(&self, _: &NamespaceIdent) -> iceberg::Result<iceberg::Namespace> {
                    unimplemented!()
                }
                async fn namespace_exists(&self, _: &NamespaceIdent) -> iceberg::Result<bool> {
                    unimplemented!()
                }
                async fn update_namespace(
                    &self,
                    _: &NamespaceIdent,
                    _: HashMap<String, String>,
                ) -> iceberg::Result<()> {
                    unimplemented!()
                }
                async fn drop_namespace(&self, _: &NamespaceIdent) -> iceberg::Result<()> {
                    unimplemented!()
                }
                async fn list_tables(&self, _: &NamespaceIdent) -> iceberg::Result<Vec<TableIdent>> {
                    unimplemented!()
                }
                async fn create_table(
                    &self,
                    _: &NamespaceIdent,
                    _: iceberg::TableCreation,
                ) -> iceberg::Result<iceberg::table::Table> {
                    unimplemented!()
                }
                async fn drop_table(&self, _: &TableIdent) -> iceberg::Result<()> {
                    unimplemented!()
                }
                async fn purge_table(&self, _: &TableIdent) -> iceberg::Result<()> {
                    unimplemented!()
                }
                async fn table_exists(&self, _: &TableIdent) -> iceberg::Result<bool> {
                    unimplemented!()
                }
                async fn rename_table(&self, _: &TableIdent, _: &TableIdent) -> iceberg::Result<()> {
                    unimplemented!()
                }
                async fn register_table(
                    &self,
                    _: &TableIdent,
                    _: String,
                ) -> iceberg::Result<iceberg::table::Table> {
                    unimplemented!()
                }
        }
    };
}

/// Commits every `update_table` twice, as a client whose first answer was
/// lost would, and returns the second answer.
#[derive(Debug)]
struct CommitTwice {
    inner: Arc<FileSystemCatalog>,
}

test_catalog!(CommitTwice, {
    async fn load_table(&self, table: &TableIdent) -> iceberg::Result<iceberg::table::Table> {
        self.inner.load_table(table).await
    }
    async fn update_table(
        &self,
        mut commit: TableCommit,
    ) -> iceberg::Result<iceberg::table::Table> {
        let ident = commit.identifier().clone();
        let requirements = commit.take_requirements();
        let updates = commit.take_updates();
        self.inner
            .commit(&ident, requirements.clone(), updates.clone())
            .await?;
        self.inner.commit(&ident, requirements, updates).await
    }
});

/// Records the requirements and updates of one `update_table` and fails it.
#[derive(Debug, Default)]
struct Capture {
    seen: std::sync::Mutex<Option<(Vec<iceberg::TableRequirement>, Vec<iceberg::TableUpdate>)>>,
    table: std::sync::Mutex<Option<iceberg::table::Table>>,
}

impl Capture {
    fn take(&self) -> (Vec<iceberg::TableRequirement>, Vec<iceberg::TableUpdate>) {
        self.seen.lock().unwrap().take().expect("a commit")
    }
}

test_catalog!(Capture, {
    /// Hands back the stale table the transaction started from, so its
    /// requirements stay stale.
    async fn load_table(&self, _: &TableIdent) -> iceberg::Result<iceberg::table::Table> {
        Ok(self.table.lock().unwrap().clone().expect("a table"))
    }
    async fn update_table(
        &self,
        mut commit: TableCommit,
    ) -> iceberg::Result<iceberg::table::Table> {
        *self.seen.lock().unwrap() = Some((commit.take_requirements(), commit.take_updates()));
        Err(iceberg::Error::new(ErrorKind::Unexpected, "captured"))
    }
});
