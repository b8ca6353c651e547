//! Shared helpers for the table tests: backends, the Kafka-shaped schema,
//! batch building and reading rows back, and a store that can inject faults.

#![allow(dead_code)]

use std::collections::HashMap;
use std::fmt;
use std::ops::Range;
use std::sync::{Arc, Mutex};

use arrow_array::{
    Array, ArrayRef, BinaryArray, Int32Array, Int64Array, LargeBinaryArray, ListArray, RecordBatch,
    StringArray, StructArray, TimestampMicrosecondArray,
};
use arrow_buffer::OffsetBuffer;
use arrow_schema::{DataType, Fields, SchemaRef};
use async_trait::async_trait;
use bytes::Bytes;
use futures_util::TryStreamExt;
use futures_util::future::BoxFuture;
use futures_util::stream::BoxStream;
use iceberg::spec::{ListType, NestedField, PrimitiveType, Schema, StructType, Type};
use iceberg::table::Table;
use iceberg_sink::catalog::FileSystemCatalog;
use iceberg_sink::storage::Warehouse;
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMode, PutMultipartOptions, PutOptions, PutPayload, PutResult, RenameOptions,
};

/// One object store to run a scenario against.
pub struct Backend {
    pub name: &'static str,
    pub root: String,
    /// The raw store, shared by every catalog the test opens.
    pub store: Arc<dyn ObjectStore>,
    pub hooks: Arc<HookStore>,
    pub dir: Option<tempfile::TempDir>,
}

impl Backend {
    pub fn local() -> Backend {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn ObjectStore> =
            Arc::new(LocalFileSystem::new_with_prefix(dir.path()).unwrap());
        let root = format!("file://{}", dir.path().display());
        Backend::with_store("local", root, store, Some(dir))
    }

    pub fn memory() -> Backend {
        let root = format!("memory://test-{}", uuid::Uuid::new_v4());
        Backend::with_store("memory", root, Arc::new(InMemory::new()), None)
    }

    pub fn all() -> Vec<Backend> {
        vec![Backend::local(), Backend::memory()]
    }

    fn with_store(
        name: &'static str,
        root: String,
        store: Arc<dyn ObjectStore>,
        dir: Option<tempfile::TempDir>,
    ) -> Backend {
        let hooks = Arc::new(HookStore::new(store.clone()));
        Backend {
            name,
            root,
            store,
            hooks,
            dir,
        }
    }

    /// A fresh warehouse and catalog over the store, as a restarted process
    /// would open them. Goes through the fault-injecting wrapper.
    pub fn catalog(&self) -> Arc<FileSystemCatalog> {
        let store: Arc<dyn ObjectStore> = self.hooks.clone();
        let warehouse =
            Warehouse::new(store, &format!("{}/iceberg", self.root), "iceberg").unwrap();
        Arc::new(FileSystemCatalog::new(warehouse))
    }

    /// Bytes of an object, by key relative to the store root.
    pub async fn read(&self, key: &str) -> Option<Bytes> {
        match self
            .store
            .get_opts(&Path::from(key), GetOptions::default())
            .await
        {
            Ok(r) => Some(r.bytes().await.unwrap()),
            Err(object_store::Error::NotFound { .. }) => None,
            Err(e) => panic!("read {key}: {e}"),
        }
    }

    pub async fn write(&self, key: &str, bytes: &'static [u8]) {
        self.store
            .put_opts(
                &Path::from(key),
                PutPayload::from_static(bytes),
                PutOptions::default(),
            )
            .await
            .unwrap();
    }

    pub async fn delete(&self, key: &str) {
        use object_store::ObjectStoreExt;
        self.store.delete(&Path::from(key)).await.unwrap();
    }

    pub async fn keys(&self, prefix: &str) -> Vec<String> {
        let mut keys: Vec<String> = self
            .store
            .list(Some(&Path::from(prefix)))
            .map_ok(|m| m.location.to_string())
            .try_collect()
            .await
            .unwrap();
        keys.sort();
        keys
    }
}

/// Field ids are assigned here in depth-first order, unlike iceberg's own
/// breadth-first renumbering, so tests notice if the catalog renumbers.
pub fn kafka_fields() -> Vec<iceberg::spec::NestedFieldRef> {
    let header = StructType::new(vec![
        NestedField::optional(9, "key", Type::Primitive(PrimitiveType::String)).into(),
        NestedField::optional(10, "value", Type::Primitive(PrimitiveType::Binary)).into(),
    ]);
    let kafka = StructType::new(vec![
        NestedField::required(2, "partition", Type::Primitive(PrimitiveType::Int)).into(),
        NestedField::required(3, "offset", Type::Primitive(PrimitiveType::Long)).into(),
        NestedField::required(4, "timestamp", Type::Primitive(PrimitiveType::Timestamptz)).into(),
        NestedField::required(5, "timestamp_type", Type::Primitive(PrimitiveType::Int)).into(),
        NestedField::optional(6, "key", Type::Primitive(PrimitiveType::Binary)).into(),
        NestedField::optional(
            7,
            "headers",
            Type::List(ListType::new(
                NestedField::list_element(8, Type::Struct(header), false).into(),
            )),
        )
        .into(),
    ]);
    vec![
        NestedField::required(1, "kafka", Type::Struct(kafka)).into(),
        NestedField::optional(11, "value", Type::Primitive(PrimitiveType::Binary)).into(),
    ]
}

pub fn kafka_schema() -> Schema {
    Schema::builder()
        .with_fields(kafka_fields())
        .build()
        .unwrap()
}

/// The kafka schema plus `n int` (id 12), for promotion tests.
pub fn schema_with_n() -> Schema {
    let mut fields = kafka_fields();
    fields.push(NestedField::optional(12, "n", Type::Primitive(PrimitiveType::Int)).into());
    Schema::builder().with_fields(fields).build().unwrap()
}

/// `n` promoted to long and a new optional `note string` (id 13).
pub fn evolved_schema() -> Schema {
    let mut fields = kafka_fields();
    fields.push(NestedField::optional(12, "n", Type::Primitive(PrimitiveType::Long)).into());
    fields.push(NestedField::optional(13, "note", Type::Primitive(PrimitiveType::String)).into());
    Schema::builder()
        .with_schema_id(1)
        .with_fields(fields)
        .build()
        .unwrap()
}

/// 2024-03-01T10:00:00Z in milliseconds.
pub const BASE_MS: i64 = 1_709_287_200_000;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Row {
    pub partition: i32,
    pub offset: i64,
    pub timestamp_us: i64,
    pub timestamp_type: i32,
    pub key: Option<Vec<u8>>,
    pub headers: Vec<(Option<String>, Option<Vec<u8>>)>,
    pub value: Option<Vec<u8>>,
    /// `n` widened to i64, when the schema has it.
    pub n: Option<i64>,
    pub note: Option<String>,
}

/// `count` records starting at `first`, spread over three hours from
/// BASE_MS, sorted as [`rows_of`] sorts.
pub fn rows(first: i64, count: i64) -> Vec<Row> {
    let mut rows: Vec<Row> = (first..first + count)
        .map(|i| Row {
            partition: (i % 2) as i32,
            offset: i,
            timestamp_us: (BASE_MS + (i % 3) * 3_600_000 + i) * 1000,
            timestamp_type: (i % 2) as i32,
            key: (i % 5 != 0).then(|| format!("key-{i}").into_bytes()),
            headers: if i % 4 == 0 {
                vec![]
            } else {
                vec![
                    (Some("h".to_string()), Some(format!("hv{i}").into_bytes())),
                    (Some("empty".to_string()), None),
                ]
            },
            value: (i % 7 != 0).then(|| format!("value-{i}").into_bytes()),
            n: None,
            note: None,
        })
        .collect();
    rows.sort();
    rows
}

fn binary(data_type: &DataType, values: Vec<Option<&[u8]>>) -> ArrayRef {
    match data_type {
        DataType::LargeBinary => Arc::new(LargeBinaryArray::from(values)),
        DataType::Binary => Arc::new(BinaryArray::from(values)),
        other => panic!("not a binary type: {other}"),
    }
}

fn struct_fields(data_type: &DataType) -> Fields {
    match data_type {
        DataType::Struct(fields) => fields.clone(),
        other => panic!("not a struct: {other}"),
    }
}

/// A record batch of `rows` with exactly `schema` (the writer's Arrow schema).
pub fn batch(schema: &SchemaRef, rows: &[Row]) -> RecordBatch {
    let kafka_fields = struct_fields(schema.field_with_name("kafka").unwrap().data_type());
    let field = |name: &str| {
        kafka_fields
            .iter()
            .find(|f| f.name() == name)
            .unwrap()
            .clone()
    };
    let tz = match field("timestamp").data_type() {
        DataType::Timestamp(_, tz) => tz.clone(),
        other => panic!("timestamp is {other}"),
    };
    let headers_type = field("headers").data_type().clone();
    let DataType::List(element) = &headers_type else {
        panic!("headers is {headers_type}");
    };
    let header_fields = struct_fields(element.data_type());
    let header_value_type = header_fields[1].data_type().clone();

    let mut offsets = vec![0i32];
    let mut header_keys = Vec::new();
    let mut header_values: Vec<Option<&[u8]>> = Vec::new();
    for row in rows {
        for (k, v) in &row.headers {
            header_keys.push(k.clone());
            header_values.push(v.as_deref());
        }
        offsets.push(header_keys.len() as i32);
    }
    let header_struct = StructArray::try_new(
        header_fields.clone(),
        vec![
            Arc::new(StringArray::from(header_keys)) as ArrayRef,
            binary(&header_value_type, header_values),
        ],
        None,
    )
    .unwrap();
    let headers = ListArray::try_new(
        element.clone(),
        OffsetBuffer::new(offsets.into()),
        Arc::new(header_struct),
        None,
    )
    .unwrap();

    let mut kafka_columns: Vec<ArrayRef> = Vec::new();
    for f in kafka_fields.iter() {
        let column: ArrayRef = match f.name().as_str() {
            "partition" => Arc::new(Int32Array::from_iter_values(
                rows.iter().map(|r| r.partition),
            )),
            "offset" => Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.offset))),
            "timestamp" => Arc::new(
                TimestampMicrosecondArray::from_iter_values(rows.iter().map(|r| r.timestamp_us))
                    .with_timezone_opt(tz.clone()),
            ),
            "timestamp_type" => Arc::new(Int32Array::from_iter_values(
                rows.iter().map(|r| r.timestamp_type),
            )),
            "key" => binary(
                f.data_type(),
                rows.iter().map(|r| r.key.as_deref()).collect(),
            ),
            "headers" => Arc::new(headers.clone()),
            other => panic!("unexpected kafka field {other}"),
        };
        kafka_columns.push(column);
    }
    let kafka = StructArray::try_new(kafka_fields.clone(), kafka_columns, None).unwrap();

    let mut columns: Vec<ArrayRef> = vec![Arc::new(kafka)];
    for f in schema.fields().iter().skip(1) {
        let column: ArrayRef = match (f.name().as_str(), f.data_type()) {
            ("value", t) => binary(t, rows.iter().map(|r| r.value.as_deref()).collect()),
            ("n", DataType::Int32) => Arc::new(Int32Array::from(
                rows.iter()
                    .map(|r| r.n.map(|n| n as i32))
                    .collect::<Vec<_>>(),
            )),
            ("n", DataType::Int64) => Arc::new(Int64Array::from(
                rows.iter().map(|r| r.n).collect::<Vec<_>>(),
            )),
            ("note", _) => Arc::new(StringArray::from(
                rows.iter().map(|r| r.note.clone()).collect::<Vec<_>>(),
            )),
            (other, t) => panic!("unexpected column {other}: {t}"),
        };
        columns.push(column);
    }
    RecordBatch::try_new(schema.clone(), columns).unwrap()
}

fn binary_at(array: &dyn Array, i: usize) -> Option<Vec<u8>> {
    if array.is_null(i) {
        return None;
    }
    if let Some(a) = array.as_any().downcast_ref::<LargeBinaryArray>() {
        return Some(a.value(i).to_vec());
    }
    if let Some(a) = array.as_any().downcast_ref::<BinaryArray>() {
        return Some(a.value(i).to_vec());
    }
    panic!("not binary: {}", array.data_type());
}

fn column<'a>(s: &'a StructArray, name: &str) -> &'a ArrayRef {
    s.column_by_name(name)
        .unwrap_or_else(|| panic!("no column {name}"))
}

fn downcast<T: 'static>(a: &ArrayRef) -> &T {
    a.as_any()
        .downcast_ref::<T>()
        .unwrap_or_else(|| panic!("unexpected type {}", a.data_type()))
}

/// Rows of batches read back, sorted by (partition, offset).
pub fn rows_of(batches: &[RecordBatch]) -> Vec<Row> {
    let mut out = Vec::new();
    for batch in batches {
        let top = StructArray::from(batch.clone());
        let kafka = downcast::<StructArray>(column(&top, "kafka"));
        let partition = downcast::<Int32Array>(column(kafka, "partition"));
        let offset = downcast::<Int64Array>(column(kafka, "offset"));
        let timestamp = downcast::<TimestampMicrosecondArray>(column(kafka, "timestamp"));
        let timestamp_type = downcast::<Int32Array>(column(kafka, "timestamp_type"));
        let key = column(kafka, "key");
        let headers = downcast::<ListArray>(column(kafka, "headers"));
        let value = column(&top, "value");
        let n = top.column_by_name("n");
        let note = top.column_by_name("note");
        for i in 0..batch.num_rows() {
            let list = headers.value(i);
            let list = list.as_any().downcast_ref::<StructArray>().unwrap();
            let hk = downcast::<StringArray>(column(list, "key"));
            let hv = column(list, "value");
            let headers = (0..list.len())
                .map(|j| {
                    (
                        (!hk.is_null(j)).then(|| hk.value(j).to_string()),
                        binary_at(hv.as_ref(), j),
                    )
                })
                .collect();
            let n = n.and_then(|n| {
                if n.is_null(i) {
                    return None;
                }
                match n.data_type() {
                    DataType::Int64 => Some(downcast::<Int64Array>(n).value(i)),
                    DataType::Int32 => Some(downcast::<Int32Array>(n).value(i) as i64),
                    t => panic!("n is {t}"),
                }
            });
            let note = note.and_then(|a| {
                let a = downcast::<StringArray>(a);
                (!a.is_null(i)).then(|| a.value(i).to_string())
            });
            out.push(Row {
                partition: partition.value(i),
                offset: offset.value(i),
                timestamp_us: timestamp.value(i),
                timestamp_type: timestamp_type.value(i),
                key: binary_at(key.as_ref(), i),
                headers,
                value: binary_at(value.as_ref(), i),
                n,
                note,
            });
        }
    }
    out.sort();
    out
}

/// Every row of the table's current snapshot, read by iceberg-rust's scan.
pub async fn scan_rows(table: &Table) -> Vec<Row> {
    let stream = table.scan().build().unwrap().to_arrow().await.unwrap();
    let batches: Vec<RecordBatch> = stream.try_collect().await.unwrap();
    rows_of(&batches)
}

type Hook = Box<dyn FnOnce() -> BoxFuture<'static, ()> + Send>;

/// A store that forwards everything to `inner` and can run a hook before
/// the next create-only put of a `*.metadata.json` (to commit as another
/// writer in between), or report an error after one succeeded (a lost reply).
pub struct HookStore {
    inner: Arc<dyn ObjectStore>,
    before_metadata_create: Mutex<Option<Hook>>,
    lose_next_metadata_reply: Mutex<bool>,
    pub metadata_creates: Mutex<u32>,
}

impl HookStore {
    pub fn new(inner: Arc<dyn ObjectStore>) -> Self {
        HookStore {
            inner,
            before_metadata_create: Mutex::new(None),
            lose_next_metadata_reply: Mutex::new(false),
            metadata_creates: Mutex::new(0),
        }
    }

    pub fn before_next_metadata_create(&self, hook: Hook) {
        *self.before_metadata_create.lock().unwrap() = Some(hook);
    }

    pub fn lose_next_metadata_reply(&self) {
        *self.lose_next_metadata_reply.lock().unwrap() = true;
    }
}

impl fmt::Debug for HookStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HookStore({})", self.inner)
    }
}

impl fmt::Display for HookStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HookStore({})", self.inner)
    }
}

#[async_trait]
impl ObjectStore for HookStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        let is_metadata_create =
            matches!(opts.mode, PutMode::Create) && location.as_ref().ends_with(".metadata.json");
        if is_metadata_create {
            let hook = self.before_metadata_create.lock().unwrap().take();
            if let Some(hook) = hook {
                hook().await;
            }
        }
        let result = self.inner.put_opts(location, payload, opts).await;
        if is_metadata_create && result.is_ok() {
            *self.metadata_creates.lock().unwrap() += 1;
            let lose = std::mem::take(&mut *self.lose_next_metadata_reply.lock().unwrap());
            if lose {
                return Err(object_store::Error::Generic {
                    store: "HookStore",
                    source: "connection reset after the request was sent".into(),
                });
            }
        }
        result
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        self.inner.get_opts(location, options).await
    }

    async fn get_ranges(
        &self,
        location: &Path,
        ranges: &[Range<u64>],
    ) -> object_store::Result<Vec<Bytes>> {
        self.inner.get_ranges(location, ranges).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.inner.list(prefix)
    }

    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        offset: &Path,
    ) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.inner.list_with_offset(prefix, offset)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(
        &self,
        from: &Path,
        to: &Path,
        options: CopyOptions,
    ) -> object_store::Result<()> {
        self.inner.copy_opts(from, to, options).await
    }

    async fn rename_opts(
        &self,
        from: &Path,
        to: &Path,
        options: RenameOptions,
    ) -> object_store::Result<()> {
        self.inner.rename_opts(from, to, options).await
    }
}

/// Snapshot summaries of the table's snapshots, oldest first.
pub fn summaries(table: &Table) -> Vec<HashMap<String, String>> {
    let mut snapshots: Vec<_> = table.metadata().snapshots().cloned().collect();
    snapshots.sort_by_key(|s| s.sequence_number());
    snapshots
        .iter()
        .map(|s| s.summary().additional_properties.clone())
        .collect()
}
