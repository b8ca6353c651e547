//! Projection cost per core: Kafka records in, a Parquet data file out, as
//! the broker's projector does it (`broker/src/projector/`), on one
//! thread (a current-thread tokio runtime; nothing in the write path
//! spawns).
//!
//! Three record shapes, each timed three ways:
//! - `decode`: `RowBuilder::push_value` (or `push_key_value`) for every
//!   record, then `finish()` into one Arrow record batch;
//! - `write`: `TableWriter::write` of that batch: Parquet with zstd (the
//!   production writer properties), the default partition spec
//!   `hour(kafka.timestamp)` (all records fall in one hour: one file), into
//!   an `object_store::memory::InMemory` warehouse;
//! - `decode_write`: both, the whole per-record cost of a projection
//!   (commits are per target lag, not per record, and are not timed).
//!
//! Shapes:
//! - `avro_1k`: 1024-byte values in Confluent wire format (magic 0, schema
//!   id, Avro binary) of a 14-field record: longs, a timestamp-millis,
//!   doubles, strings, a nested record, an array of strings and a
//!   `[null, string]` union; text is drawn from a small vocabulary so it
//!   compresses roughly like real text;
//! - `narrow`: the same framing, 4 small fields, ~30 bytes;
//! - `key_value_1k`: `iceberg.mode=key_value` with the `avro_1k` values as
//!   opaque bytes.
//!
//! Criterion prints both rows/s (elements) and bytes/s, where the bytes are
//! the record values (the Avro input, header included); keys are 8 bytes
//! and not counted.
//!
//! ```sh
//! cargo bench -p iceberg-sink --bench projection
//! ```

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use apache_avro::types::Value as Avro;
use arrow_array::RecordBatch;
use criterion::{BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main};
use iceberg::{NamespaceIdent, TableIdent};
use iceberg_sink::SinkRecord;
use iceberg_sink::catalog::FileSystemCatalog;
use iceberg_sink::convert::{Decoder, Framing, RowBuilder, key_value_schema, value_schema};
use iceberg_sink::partition_spec::{DEFAULT_PARTITION_SPEC, parse_partition_spec};
use iceberg_sink::storage::Warehouse;
use iceberg_sink::table::TableWriter;
use object_store::memory::InMemory;
use schemas::wire::{SchemaId, encode_header};
use schemas::{ParsedSchema, SchemaType};

const SCHEMA_ID: u32 = 1;
/// The start of an hour (2023-11-14T22:00:00Z), so every record's
/// timestamp falls in one `hour(kafka.timestamp)` partition.
const BASE_TIMESTAMP_MS: i64 = 1_699_999_200_000;
const WIDE_VALUE_BYTES: usize = 1024;
/// Records per iteration: ~10 MB of 1 KiB values, ~3 MB of narrow ones.
const WIDE_RECORDS: usize = 10_000;
const NARROW_RECORDS: usize = 100_000;

const WIDE_SCHEMA: &str = r#"{"type":"record","name":"PageView","namespace":"bench","fields":[
  {"name":"id","type":"long"},
  {"name":"at","type":{"type":"long","logicalType":"timestamp-millis"}},
  {"name":"user_id","type":"long"},
  {"name":"session_id","type":"long"},
  {"name":"duration_ms","type":"int"},
  {"name":"price","type":"double"},
  {"name":"score","type":"double"},
  {"name":"latitude","type":"double"},
  {"name":"url","type":"string"},
  {"name":"user_agent","type":"string"},
  {"name":"description","type":"string"},
  {"name":"address","type":{"type":"record","name":"Address","fields":[
    {"name":"street","type":"string"},
    {"name":"city","type":"string"},
    {"name":"zip","type":"string"}]}},
  {"name":"tags","type":{"type":"array","items":"string"}},
  {"name":"note","type":["null","string"]}]}"#;

const NARROW_SCHEMA: &str = r#"{"type":"record","name":"Tick","namespace":"bench","fields":[
  {"name":"id","type":"long"},
  {"name":"kind","type":"int"},
  {"name":"amount","type":"double"},
  {"name":"sku","type":"string"}]}"#;

const WORDS: [&str; 48] = [
    "order",
    "shipped",
    "the",
    "customer",
    "returned",
    "a",
    "blue",
    "large",
    "parcel",
    "to",
    "warehouse",
    "north",
    "south",
    "east",
    "west",
    "express",
    "standard",
    "delivery",
    "of",
    "item",
    "gift",
    "card",
    "payment",
    "failed",
    "retry",
    "approved",
    "pending",
    "cart",
    "added",
    "removed",
    "search",
    "results",
    "page",
    "checkout",
    "coupon",
    "discount",
    "review",
    "stars",
    "mobile",
    "desktop",
    "tablet",
    "account",
    "login",
    "logout",
    "session",
    "and",
    "with",
    "for",
];
const CITIES: [&str; 8] = [
    "Berlin", "Lisbon", "Osaka", "Toronto", "Nairobi", "Lima", "Oslo", "Perth",
];
const AGENTS: [&str; 4] = [
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "okhttp/4.12.0",
];

/// xorshift64*: deterministic data without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Words of the vocabulary, exactly `len` bytes.
    fn text(&mut self, len: usize) -> String {
        let mut s = String::with_capacity(len + 16);
        while s.len() < len {
            if !s.is_empty() {
                s.push(' ');
            }
            s.push_str(WORDS[self.below(WORDS.len())]);
        }
        s.truncate(len);
        s
    }
}

fn avro_schema(text: &str) -> ParsedSchema {
    ParsedSchema::parse(SchemaType::Avro, text, &[]).expect("bench schema parses")
}

fn framed(schema: &ParsedSchema, value: Avro) -> Vec<u8> {
    let ParsedSchema::Avro(avro) = schema else {
        unreachable!("avro schemas only")
    };
    let mut out = Vec::with_capacity(WIDE_VALUE_BYTES);
    encode_header(SchemaId(SCHEMA_ID), &mut out);
    out.extend(apache_avro::to_avro_datum(avro.schema(), value).expect("value fits the schema"));
    out
}

fn wide_value(rng: &mut Rng, i: usize, description_len: usize) -> Avro {
    let s = |v: String| Avro::String(v);
    Avro::Record(vec![
        ("id".into(), Avro::Long(i as i64)),
        (
            "at".into(),
            Avro::TimestampMillis(BASE_TIMESTAMP_MS + i as i64),
        ),
        ("user_id".into(), Avro::Long(rng.below(1_000_000) as i64)),
        ("session_id".into(), Avro::Long(rng.next() as i64)),
        ("duration_ms".into(), Avro::Int(rng.below(60_000) as i32)),
        (
            "price".into(),
            Avro::Double((rng.unit() * 10_000.0).round() / 100.0),
        ),
        ("score".into(), Avro::Double(rng.unit())),
        ("latitude".into(), Avro::Double(rng.unit() * 180.0 - 90.0)),
        (
            "url".into(),
            s(format!(
                "https://shop.example.com/{}/{}?item={}",
                WORDS[rng.below(WORDS.len())],
                WORDS[rng.below(WORDS.len())],
                rng.below(100_000)
            )),
        ),
        (
            "user_agent".into(),
            s(AGENTS[rng.below(AGENTS.len())].into()),
        ),
        // Its own stream, so its length does not change the other fields.
        (
            "description".into(),
            s(Rng(rng.next() | 1).text(description_len)),
        ),
        (
            "address".into(),
            Avro::Record(vec![
                (
                    "street".into(),
                    s(format!(
                        "{} {} street",
                        rng.below(999),
                        WORDS[rng.below(WORDS.len())]
                    )),
                ),
                ("city".into(), s(CITIES[rng.below(CITIES.len())].into())),
                ("zip".into(), s(format!("{:05}", rng.below(100_000)))),
            ]),
        ),
        (
            "tags".into(),
            Avro::Array(
                (0..rng.below(6) + 1)
                    .map(|_| s(WORDS[rng.below(WORDS.len())].into()))
                    .collect(),
            ),
        ),
        (
            "note".into(),
            if rng.below(2) == 0 {
                Avro::Union(0, Box::new(Avro::Null))
            } else {
                Avro::Union(1, Box::new(s(rng.text(24))))
            },
        ),
    ])
}

/// `n` framed values of exactly [`WIDE_VALUE_BYTES`]: the description is
/// sized to fill what the other fields leave.
fn wide_values(schema: &ParsedSchema, n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| {
            // The same seed twice: a probe with an empty description, then
            // the real value with the description filling the rest (its
            // length prefix is 2 bytes for 64..8191).
            let seed = 0x9e37_79b9_7f4a_7c15 ^ (i as u64 + 1);
            let probe = framed(schema, wide_value(&mut Rng(seed), i, 0));
            let len = WIDE_VALUE_BYTES - probe.len() - 1;
            let value = framed(schema, wide_value(&mut Rng(seed), i, len));
            assert_eq!(value.len(), WIDE_VALUE_BYTES);
            value
        })
        .collect()
}

fn narrow_values(schema: &ParsedSchema, n: usize) -> Vec<Vec<u8>> {
    let mut rng = Rng(42);
    (0..n)
        .map(|i| {
            let value = Avro::Record(vec![
                ("id".into(), Avro::Long(1_000_000 + i as i64)),
                ("kind".into(), Avro::Int(rng.below(16) as i32)),
                (
                    "amount".into(),
                    Avro::Double((rng.unit() * 1e4).round() / 100.0),
                ),
                (
                    "sku".into(),
                    Avro::String(format!("SKU-{:06}", rng.below(1_000_000))),
                ),
            ]);
            framed(schema, value)
        })
        .collect()
}

fn keys(n: usize) -> Vec<[u8; 8]> {
    (0..n as u64).map(|i| (i * 7919).to_be_bytes()).collect()
}

fn record<'a>(offset: usize, key: &'a [u8], value: &'a [u8]) -> SinkRecord<'a> {
    SinkRecord {
        partition: 0,
        offset: offset as i64,
        timestamp_ms: BASE_TIMESTAMP_MS + offset as i64,
        timestamp_type: 0,
        key: Some(key),
        value: Some(value),
        headers: &[],
    }
}

/// What a shape's rows are built with.
enum Push<'d> {
    Value(&'d Decoder),
    KeyValue,
}

fn build(
    rows: &mut RowBuilder,
    push: &Push<'_>,
    keys: &[[u8; 8]],
    values: &[Vec<u8>],
) -> RecordBatch {
    for (i, (key, value)) in keys.iter().zip(values).enumerate() {
        let r = record(i, key, value);
        match push {
            Push::Value(decoder) => rows.push_value(&r, decoder),
            Push::KeyValue => rows.push_key_value(&r),
        }
        .expect("bench record decodes");
    }
    rows.finish().expect("batch builds")
}

/// A fresh table in a fresh in-memory warehouse.
fn table(rt: &tokio::runtime::Runtime, name: &str, schema: iceberg::spec::Schema) -> TableWriter {
    let root = format!("memory://bench-{name}-{}", uuid::Uuid::new_v4());
    let warehouse = Warehouse::new(Arc::new(InMemory::new()), &root, "").expect("warehouse");
    let catalog = Arc::new(FileSystemCatalog::new(warehouse));
    let spec = parse_partition_spec(DEFAULT_PARTITION_SPEC, &schema).expect("default spec");
    let ident = TableIdent::new(NamespaceIdent::new("bench".into()), name.into());
    rt.block_on(TableWriter::open_or_create(catalog, ident, schema, spec))
        .expect("table opens")
}

fn shape(
    group: &mut BenchmarkGroup<'_, criterion::measurement::WallTime>,
    rt: &tokio::runtime::Runtime,
    name: &str,
    table_schema: iceberg::spec::Schema,
    value_schema: Option<&ParsedSchema>,
    values: &[Vec<u8>],
) {
    let keys = keys(values.len());
    let mut rows = RowBuilder::new(&table_schema).expect("row builder");
    let decoder = value_schema.map(|s| {
        rows.decoder(s, &[], Framing::SchemaIdPrefix(SchemaId(SCHEMA_ID)))
            .expect("decoder")
    });
    let push = match &decoder {
        Some(d) => Push::Value(d),
        None => Push::KeyValue,
    };
    let bytes: usize = values.iter().map(Vec::len).sum();
    group.throughput(Throughput::ElementsAndBytes {
        elements: values.len() as u64,
        bytes: bytes as u64,
    });

    // Printed once so RESULTS.md can give the compression the write sees.
    let batch = build(&mut rows, &push, &keys, values);
    let mut writer = table(rt, name, table_schema);
    let files = rt
        .block_on(writer.write(std::slice::from_ref(&batch)))
        .expect("write");
    let parquet: u64 = files.iter().map(|f| f.file_size_in_bytes()).sum();
    eprintln!(
        "{name}: {} records, {bytes} value bytes ({:.0} per record), arrow batch {} bytes, \
         {} parquet file(s) of {parquet} bytes ({:.2}x smaller than the values)",
        values.len(),
        bytes as f64 / values.len() as f64,
        batch.get_array_memory_size(),
        files.len(),
        bytes as f64 / parquet as f64,
    );

    group.bench_function(format!("{name}/decode"), |b| {
        b.iter(|| black_box(build(&mut rows, &push, &keys, values)))
    });
    group.bench_function(format!("{name}/write"), |b| {
        b.iter(|| {
            black_box(
                rt.block_on(writer.write(std::slice::from_ref(&batch)))
                    .expect("write"),
            )
        })
    });
    group.bench_function(format!("{name}/decode_write"), |b| {
        b.iter(|| {
            let batch = build(&mut rows, &push, &keys, values);
            black_box(rt.block_on(writer.write(&[batch])).expect("write"))
        })
    });
}

fn projection(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let mut group = c.benchmark_group("projection");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(8));

    let wide = avro_schema(WIDE_SCHEMA);
    let wide_values = wide_values(&wide, WIDE_RECORDS);
    let wide_table = value_schema(&wide, &[]).expect("wide table schema");
    shape(
        &mut group,
        &rt,
        "avro_1k",
        wide_table,
        Some(&wide),
        &wide_values,
    );

    let narrow = avro_schema(NARROW_SCHEMA);
    let narrow_values = narrow_values(&narrow, NARROW_RECORDS);
    let narrow_table = value_schema(&narrow, &[]).expect("narrow table schema");
    shape(
        &mut group,
        &rt,
        "narrow",
        narrow_table,
        Some(&narrow),
        &narrow_values,
    );

    shape(
        &mut group,
        &rt,
        "key_value_1k",
        key_value_schema(),
        None,
        &wide_values,
    );
    group.finish();
}

criterion_group!(benches, projection);
criterion_main!(benches);
