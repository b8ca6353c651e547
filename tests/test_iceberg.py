"""Iceberg projection end to end: the real `floe` binary, real clients (confluent-kafka and its
Avro / Protobuf / JSON Schema support against Floe's registry), real Iceberg readers (pyiceberg
0.12 and DuckDB 1.5's iceberg extension) reading the tables straight from the object store
(the default `file://<data-dir>/bucket`, and moto's S3 server).

What a user relies on, checked here (every comparison is exact: all rows, all columns):
- value_schema_id_prefix with Avro (AvroSerializer, subject `<topic>-value`), 2 partitions,
  CreateTimes in 3 different hours: within a deadline both readers return exactly the produced
  rows (typed columns equal to the produced values, `kafka.partition`/`kafka.offset` equal to
  the delivery reports, `kafka.timestamp` equal to the record timestamps); the table is
  partitioned by hour(kafka.timestamp): 3 partition values, and every data file holds only rows
  of its hour; the snapshot summary carries `floe.next-offset.<p>` = the high watermarks;
  `floe iceberg status` agrees (rows, data files, offsets, no lag). The same flow runs with
  the broker's object store on S3 (moto).
- key_value: binary keys and values (null, empty), headers in order with repeated keys and
  null values, equal to what was produced.
- value_schema_latest: plain Protobuf bytes (incl. a google.protobuf.Timestamp field and
  proto3 defaults) and plain JSON bytes decoded with the latest schema of `<topic>-value`:
  typed columns equal to the messages.
- Records that do not decode (not wire format, unknown schema id, truncated Avro) land in
  `<topic>~dlq` with their bytes, coordinates and a reason, while the good records of the same
  topic are in the main table; with iceberg.invalid.record.action=drop no DLQ table exists and
  the status counts the dropped records.
- Schema evolution: an optional field added to the Avro schema mid-stream: one table, old rows
  null in the new column, new rows filled.
- kill -9 of the broker while it projects, restart: table rows = log records, no duplicate
  and no missing (partition, offset).
- Backfill: a tiered topic whose early segments exist only in the bucket (tier status
  local_start > 0) gets iceberg.mode afterwards: every record from offset 0 ends up in the table.
- Retention fence: a projected topic's retention.bytes does not delete records before they are
  in the table (a twin topic without projection shows that retention would have), and does
  once they are.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import subprocess
import threading
import time
import urllib.request

import pytest
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

from floe_harness import Rec, consume_all, make_records, produce, unique_topic, wait_until, watermarks
from iceberg_support import (
    paced_producer,
    HOUR_MS,
    LocalWarehouse,
    S3Warehouse,
    column_types,
    describe,
    duckdb_connect,
    duckdb_rows,
    file_partitions,
    first_difference,
    high_watermarks,
    iceberg_status,
    micros,
    next_offsets,
    plain,
    pyiceberg_rows,
    pyiceberg_table,
    topic_status,
    wait_projected,
)
from tier_support import S3_ENV, MiB, MotoServer, RecordGen, TierBroker, assert_produced, produce_records, s3_env

LAG = {"iceberg.target.lag.ms": "1000"}
PROJECT_TIMEOUT = 60.0
# The main flow's promise: with iceberg.target.lag.ms=1000, records are queryable within seconds
# (one target lag, the supervisor's 1 s scan for new projected topics, slack for a busy 2-core box).
COMMIT_DEADLINE = 20.0


# --- schemas and values ------------------------------------------------------------------------

READING_AVRO = {
    "type": "record",
    "name": "Reading",
    "namespace": "floe.itest",
    "fields": [
        {"name": "id", "type": "long"},
        {"name": "sensor", "type": "string"},
        {"name": "celsius", "type": "double"},
        {"name": "ok", "type": "boolean"},
        {"name": "level", "type": "int"},
        {"name": "note", "type": ["null", "string"], "default": None},
        {"name": "tags", "type": {"type": "array", "items": "string"}},
        {"name": "raw", "type": "bytes"},
    ],
}
READING_TYPES = {"id": "long", "sensor": "string", "celsius": "double", "ok": "boolean", "level": "int",
                 "note": "string", "tags": "list<string>", "raw": "binary"}

USER_V1 = {
    "type": "record",
    "name": "User",
    "namespace": "floe.itest",
    "fields": [{"name": "id", "type": "long"}, {"name": "name", "type": "string"}],
}
USER_V2 = {**USER_V1, "fields": [*USER_V1["fields"], {"name": "email", "type": ["null", "string"], "default": None}]}

READING_PROTO = """syntax = "proto3";
package floe.itest;

import "google/protobuf/timestamp.proto";

message Measurement {
  int64 id = 1;
  string sensor = 2;
  double reading = 3;
  repeated string tags = 4;
  bool ok = 5;
  int32 level = 6;
  google.protobuf.Timestamp at = 7;
}
"""
MEASUREMENT_TYPES = {"id": "long", "sensor": "string", "reading": "double", "tags": "list<string>", "ok": "boolean",
                     "level": "int", "at": "timestamptz"}

EVENT_JSON_SCHEMA = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "title": "Event",
    "type": "object",
    "properties": {
        "kind": {"type": "string"},
        "count": {"type": "integer"},
        "ratio": {"type": "number"},
        "ok": {"type": "boolean"},
        "tags": {"type": "array", "items": {"type": "string"}},
        "at": {"type": "string", "format": "date-time"},
    },
    "required": ["kind", "count"],
}
EVENT_TYPES = {"kind": "string", "count": "long", "ratio": "double", "ok": "boolean", "tags": "list<string>",
               "at": "timestamptz"}


def recent_hour_base() -> int:
    """The start of the hour three hours ago: base, base+1h and base+2h all lie in the past and
    well inside the default retention.ms."""
    now = int(time.time() * 1000)
    return (now // HOUR_MS) * HOUR_MS - 3 * HOUR_MS


def readings(n: int) -> list[dict]:
    return [{
        "id": 1_000_000_000_000 + i,
        "sensor": f"sensor-{i % 7}",
        "celsius": i * 0.5 - 20.25,
        "ok": i % 2 == 0,
        "level": -i,
        "note": None if i % 4 == 0 else f"note {i}",
        "tags": [f"t{j}" for j in range(i % 3)],
        "raw": bytes([i % 256]) * (i % 5),
    } for i in range(n)]


def kafka_col(partition: int, offset: int, ts_ms: int, key: bytes | None, headers) -> dict:
    return {
        "partition": partition,
        "offset": offset,
        "timestamp": micros(ts_ms),
        "timestamp_type": 0,
        "key": key,
        "headers": [{"key": k, "value": v} for k, v in headers],
    }


def expected_rows(records: list[Rec], reports: list[tuple[int, int]], values: list[dict] | None = None) -> list[dict]:
    """Rows the table must hold: the kafka column from each record and its delivery report, plus
    the decoded value's columns (schema modes) or the raw `value` (key_value)."""
    out = []
    for i, (r, (p, o)) in enumerate(zip(records, reports)):
        row = {"kafka": kafka_col(p, o, r.timestamp, r.key, r.headers)}
        if values is None:
            row["value"] = r.value
        else:
            row.update(values[i])
        out.append(row)
    return sorted(out, key=lambda row: (row["kafka"]["partition"], row["kafka"]["offset"]))


def assert_rows(got: list[dict], want: list[dict], reader: str) -> None:
    assert got == want, f"{reader}: {first_difference(got, want)}"


def registry(broker) -> SchemaRegistryClient:
    return SchemaRegistryClient({"url": broker.registry_url})


def avro_values(broker, topic: str, schema: dict, values: list[dict]) -> list[bytes]:
    ser = AvroSerializer(registry(broker), json.dumps(schema))
    ctx = SerializationContext(topic, MessageField.VALUE)
    return [ser(v, ctx) for v in values]


def assert_nothing_skipped(broker) -> None:
    """The projector logs a warning when offsets were gone before it projected them."""
    lines = [line for line in broker.log_text().splitlines() if "before they were projected" in line]
    assert not lines, "the projector skipped deleted offsets:\n" + "\n".join(lines[:5])


def tier_status(broker, topic: str) -> dict:
    cmd = [str(broker.binary), "tier", "status", topic, "--json", "--admin", broker.admin_addr]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert res.returncode == 0, f"`{' '.join(cmd)}` exited {res.returncode}\n{res.stdout}\n{res.stderr}"
    return json.loads(res.stdout)


def tier_partition(broker, topic: str, partition: int = 0) -> dict:
    doc = tier_status(broker, topic)
    parts = [p for p in doc.get("partitions", []) if p.get("topic") == topic and p.get("partition") == partition]
    assert len(parts) == 1, f"tier status for {topic}/{partition}: {doc}"
    return parts[0]


def assert_status_matches_table(broker, topic: str, wh, tbl, hwm: dict[int, int], mode: str, rows: int) -> None:
    st = topic_status(broker, topic)
    assert st is not None, f"`floe iceberg status {topic}` lists no such topic"
    files = file_partitions(tbl)
    want = {"topic": topic, "mode": mode, "state": "running", "last_error": None, "rows": rows,
            "data_files": len(files), "dlq_rows": 0, "dropped_records": 0}
    assert {k: st.get(k) for k in want} == want, f"iceberg status: {st}"
    assert st["location"].rstrip("/").endswith(f"iceberg/{wh.namespace}/{topic}"), f"status location {st['location']}"
    assert st["commits"] >= 1 and st["last_commit_ms"], f"status shows no commit: {st}"
    parts = sorted((p["partition"], p["projected_offset"], p["high_watermark"], p["lag_records"], p["lag_ms"])
                   for p in st["partitions"])
    assert parts == [(p, hwm[p], hwm[p], 0, 0) for p in sorted(hwm)], f"status partitions {st['partitions']}"


# --- the main flow (file:// and S3) -----------------------------------------------------------------


def avro_main_flow(broker, wh, n: int = 300, partitions: int = 2) -> None:
    topic = broker.create_topic(unique_topic("ice-avro"), partitions=partitions,
                                **{"iceberg.mode": "value_schema_id_prefix", **LAG})
    values = readings(n)
    encoded = avro_values(broker, topic, READING_AVRO, values)
    base = recent_hour_base()
    records = []
    for i, v in enumerate(encoded):
        headers = [("i", b"%d" % i), ("even", None)] if i % 2 else []
        ts = base + (i % 3) * HOUR_MS + i * 1000
        records.append(Rec(key=b"reading-%d" % i, value=v, headers=headers, partition=i % partitions, timestamp=ts))
    t0 = time.monotonic()
    reports = produce(broker.bootstrap, topic, records)
    hwm = high_watermarks(reports, partitions)
    assert sum(hwm.values()) == n and all(hwm.values()), f"high watermarks {hwm}"
    wait_projected(broker, topic, hwm, rows=n, timeout=COMMIT_DEADLINE)
    print(f"{topic}: {n} Avro records projected {time.monotonic() - t0:.1f}s after the first produce")
    want = expected_rows(records, reports, values)

    tbl = pyiceberg_table(wh, topic)
    types = column_types(tbl)
    assert {k: types.get(k) for k in READING_TYPES} == READING_TYPES, f"column types {types}"
    assert set(types) == {"kafka", *READING_TYPES}, f"columns {sorted(types)}"
    schema = tbl.schema()
    kafka_types = {name: str(schema.find_field(f"kafka.{name}").field_type)
                   for name in ("partition", "offset", "timestamp", "timestamp_type", "key", "headers")}
    assert kafka_types == {"partition": "int", "offset": "long", "timestamp": "timestamptz", "timestamp_type": "int",
                           "key": "binary", "headers": kafka_types["headers"]}, kafka_types
    assert kafka_types["headers"].startswith("list<struct<"), kafka_types
    assert_rows(pyiceberg_rows(tbl), want, "pyiceberg")

    con = duckdb_connect(wh)
    assert_rows(duckdb_rows(con, wh.location(topic)), want, "DuckDB iceberg_scan(table dir)")
    newest = wh.newest(topic)
    assert wh.metadata(topic)["location"].rstrip("/").endswith(f"iceberg/{wh.namespace}/{topic}"), \
        f"table location {wh.metadata(topic)['location']}"
    assert wh.version_hint(topic) == str(newest), f"version-hint.text {wh.version_hint(topic)!r}, newest v{newest}"

    # Partitioned by hour(kafka.timestamp): the spec, 3 partition values, each file within its hour.
    spec = tbl.spec()
    ts_id = schema.find_field("kafka.timestamp").field_id
    assert [(f.source_id, str(f.transform)) for f in spec.fields] == [(ts_id, "hour")], f"partition spec {spec}"
    files = file_partitions(tbl)
    hours = {r.timestamp // HOUR_MS for r in records}
    assert len(hours) == 3
    got_hours = {tuple(part.values())[0] for _, part, _ in files}
    assert got_hours == hours, f"partition values {sorted(got_hours)}, record hours {sorted(hours)}"
    assert sum(c for _, _, c in files) == n, f"data file record counts {[c for _, _, c in files]}"
    import pyarrow.parquet as pq

    for path, part, count in files:
        with tbl.io.new_input(path).open() as f:
            data = pq.read_table(f)
        file_hours = {plain(k["timestamp"]) // 1000 // HOUR_MS for k in data.column("kafka").to_pylist()}
        assert file_hours == {tuple(part.values())[0]} and data.num_rows == count, \
            f"{path}: partition {part}, {count} records, rows of hours {file_hours} ({data.num_rows} rows)"

    # Exactly once: the committed offsets are in the snapshot summary; the status agrees.
    assert next_offsets(wh.metadata(topic)) == hwm, f"snapshot summary offsets {next_offsets(wh.metadata(topic))}"
    assert_status_matches_table(broker, topic, wh, tbl, hwm, "value_schema_id_prefix", n)
    assert not wh.exists(f"{topic}~dlq"), "a DLQ table was created though every record decodes"


def test_avro_value_schema_id_prefix(broker):
    avro_main_flow(broker, LocalWarehouse(broker.data_dir / "bucket"))


@pytest.fixture
def moto(tmp_path):
    server = MotoServer(tmp_path / "moto")
    server.start()
    yield server
    server.stop()


def test_avro_on_s3(request, floe_binary, tmp_path, moto):
    """The main flow with the broker's object store on S3 (moto); both readers read S3."""
    bucket = moto.new_bucket("floe")
    workdir = tmp_path / "broker"
    workdir.mkdir()
    b = TierBroker(floe_binary, workdir, ["--object-store", f"s3://{bucket.bucket}/floe"], env=s3_env(moto.endpoint),
                   bucket=bucket)
    request.node._floe_brokers = [*getattr(request.node, "_floe_brokers", []), b]
    try:
        b.start()
        wh = S3Warehouse(moto.client(), bucket.bucket, "floe", moto.endpoint, S3_ENV["AWS_ACCESS_KEY_ID"],
                         S3_ENV["AWS_SECRET_ACCESS_KEY"], S3_ENV["AWS_REGION"])
        avro_main_flow(b, wh, n=200)
        outside = [k for k in bucket.all_keys() if not k.startswith("floe/")]
        assert not outside, f"objects outside the store's prefix: {outside[:5]}"
    finally:
        b.close()


# --- key_value -----------------------------------------------------------------------------------


def test_key_value_binary(make_broker, tmp_path):
    """Also: --iceberg-namespace puts the table under iceberg/<namespace>/."""
    broker = make_broker(tmp_path, "--iceberg-namespace", "lake")
    partitions = 2
    topic = broker.create_topic(unique_topic("ice-kv"), partitions=partitions, **{"iceberg.mode": "key_value", **LAG})
    records = make_records(400, seed=7, partitions=partitions)
    base = recent_hour_base()
    for i, r in enumerate(records):
        r.timestamp = base + i
    assert any(r.key is None for r in records) and any(r.value is None for r in records)
    assert any(r.value == b"" for r in records) and any(v is None for r in records for _, v in r.headers)
    reports = produce(broker.bootstrap, topic, records)
    hwm = high_watermarks(reports, partitions)
    wait_projected(broker, topic, hwm, rows=len(records), timeout=PROJECT_TIMEOUT)
    want = expected_rows(records, reports)

    wh = LocalWarehouse(broker.data_dir / "bucket", namespace="lake")
    assert sorted(p.name for p in wh.root.iterdir() if p.is_dir()) == ["lake"], \
        f"namespaces under {wh.root}: {sorted(p.name for p in wh.root.iterdir())}"
    tbl = pyiceberg_table(wh, topic)
    types = column_types(tbl)
    assert set(types) == {"kafka", "value"} and types["value"] == "binary", f"columns {types}"
    assert_rows(pyiceberg_rows(tbl), want, "pyiceberg")
    assert_rows(duckdb_rows(duckdb_connect(wh), wh.location(topic)), want, "DuckDB")
    assert next_offsets(wh.metadata(topic)) == hwm
    assert_status_matches_table(broker, topic, wh, tbl, hwm, "key_value", len(records))


# --- value_schema_latest -------------------------------------------------------------------------


def measurement_class():
    """floe.itest.Measurement (the READING_PROTO message) built at test time, without protoc."""
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, timestamp_pb2

    pool = descriptor_pool.Default()
    try:
        return message_factory.GetMessageClass(pool.FindMessageTypeByName("floe.itest.Measurement"))
    except KeyError:
        pass
    fdp = descriptor_pb2.FileDescriptorProto(name="floe/itest/measurement.proto", package="floe.itest",
                                             syntax="proto3", dependency=[timestamp_pb2.DESCRIPTOR.name])
    msg = fdp.message_type.add(name="Measurement")
    F = descriptor_pb2.FieldDescriptorProto
    msg.field.add(name="id", number=1, type=F.TYPE_INT64, label=F.LABEL_OPTIONAL)
    msg.field.add(name="sensor", number=2, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
    msg.field.add(name="reading", number=3, type=F.TYPE_DOUBLE, label=F.LABEL_OPTIONAL)
    msg.field.add(name="tags", number=4, type=F.TYPE_STRING, label=F.LABEL_REPEATED)
    msg.field.add(name="ok", number=5, type=F.TYPE_BOOL, label=F.LABEL_OPTIONAL)
    msg.field.add(name="level", number=6, type=F.TYPE_INT32, label=F.LABEL_OPTIONAL)
    msg.field.add(name="at", number=7, type=F.TYPE_MESSAGE, label=F.LABEL_OPTIONAL,
                  type_name=".google.protobuf.Timestamp")
    pool.Add(fdp)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("floe.itest.Measurement"))


def run_value_schema_latest(broker, prefix: str, schema: Schema, payloads: list[bytes], values: list[dict],
                            types: dict[str, str]) -> None:
    topic = unique_topic(prefix)
    # The subject exists before the topic is projected: value_schema_latest decodes with it.
    registry(broker).register_schema(f"{topic}-value", schema)
    broker.create_topic(topic, partitions=1, **{"iceberg.mode": "value_schema_latest", **LAG})
    base = recent_hour_base()
    records = [Rec(key=b"k%d" % i, value=v, partition=0, timestamp=base + i) for i, v in enumerate(payloads)]
    reports = produce(broker.bootstrap, topic, records)
    hwm = high_watermarks(reports, 1)
    wait_projected(broker, topic, hwm, rows=len(records), timeout=PROJECT_TIMEOUT)
    want = expected_rows(records, reports, values)
    wh = LocalWarehouse(broker.data_dir / "bucket")
    tbl = pyiceberg_table(wh, topic)
    got_types = column_types(tbl)
    assert got_types == {"kafka": got_types.get("kafka"), **types}, f"column types {got_types}"
    assert_rows(pyiceberg_rows(tbl), want, "pyiceberg")
    assert_rows(duckdb_rows(duckdb_connect(wh), wh.location(topic)), want, "DuckDB")
    assert not wh.exists(f"{topic}~dlq"), f"DLQ rows: {pyiceberg_rows(pyiceberg_table(wh, topic + '~dlq'))[:3]}"
    assert_status_matches_table(broker, topic, wh, tbl, hwm, "value_schema_latest", len(records))


def test_protobuf_value_schema_latest(broker):
    cls = measurement_class()
    messages, values = [], []
    at0 = int(time.time()) - 86_400
    for i in range(120):
        m = cls()
        if i % 10 != 0:  # every tenth message is all defaults: proto3 scalars read back as defaults
            m.id, m.sensor, m.reading, m.ok, m.level = 5_000_000_000 + i, f"s{i}", i / 8, i % 3 == 0, -i
            m.tags.extend([f"tag{i}", "x"][: i % 3])
            m.at.seconds, m.at.nanos = at0 + i, (i % 1000) * 1000
        messages.append(m)
        values.append({
            "id": m.id, "sensor": m.sensor, "reading": m.reading, "tags": list(m.tags), "ok": m.ok, "level": m.level,
            "at": (m.at.seconds * 1_000_000 + m.at.nanos // 1000) if m.HasField("at") else None,
        })
    run_value_schema_latest(broker, "ice-proto", Schema(READING_PROTO, "PROTOBUF"),
                            [m.SerializeToString() for m in messages], values, MEASUREMENT_TYPES)


def test_json_value_schema_latest(broker):
    values, payloads = [], []
    t0 = dt.datetime(2026, 11, 30, 10, 0, 0, 250_000, tzinfo=dt.timezone.utc)
    for i in range(120):
        doc = {"kind": "click" if i % 2 else "view", "count": i * 1_000_003}
        if i % 5:
            doc["ratio"] = i / 4
        if i % 3 == 0:
            doc["ok"] = i % 2 == 0
        if i % 4:
            doc["tags"] = [f"t{j}" for j in range(i % 4)]
        at = None
        if i % 6:
            at_dt = t0 + dt.timedelta(seconds=i, microseconds=i)
            doc["at"] = at_dt.isoformat().replace("+00:00", "Z")
            at = plain(at_dt)
        payloads.append(json.dumps(doc).encode())
        values.append({"kind": doc["kind"], "count": doc["count"], "ratio": doc.get("ratio"), "ok": doc.get("ok"),
                       "tags": doc.get("tags"), "at": at})
    run_value_schema_latest(broker, "ice-json", Schema(json.dumps(EVENT_JSON_SCHEMA), "JSON"), payloads, values,
                            EVENT_TYPES)


# --- invalid records -----------------------------------------------------------------------------


BAD_SCHEMA_ID = 99_999


def mixed_records(broker, topic: str) -> tuple[list[Rec], list[int], dict[int, str]]:
    """Good Avro values with bad ones in between. Returns the records, the indexes of the good
    ones, and {index of a bad one: a word its DLQ reason must contain ('' for any)}."""
    users = [{"id": i, "name": f"user {i}"} for i in range(40)]
    good = avro_values(broker, topic, USER_V1, users)
    bad = {
        "raw": (b"this is not Avro, not wire format", "magic"),
        "unknown-id": (b"\x00" + BAD_SCHEMA_ID.to_bytes(4, "big") + good[1][5:], str(BAD_SCHEMA_ID)),
        "truncated": (good[3][:6], ""),
        "short": (b"\x00\x00", ""),
    }
    base = recent_hour_base()
    records, good_idx, reasons = [], [], {}
    bad_items = list(bad.values())
    for i, v in enumerate(good):
        if i % 8 == 4 and bad_items:
            raw, word = bad_items.pop(0)
            reasons[len(records)] = word
            records.append(Rec(key=b"bad-%d" % len(records), value=raw, headers=[("why", b"bad")], partition=0,
                               timestamp=base + len(records)))
        good_idx.append(len(records))
        records.append(Rec(key=b"good-%d" % i, value=v, partition=0, timestamp=base + len(records)))
    assert not bad_items
    return records, good_idx, reasons


def test_invalid_records_dlq_and_drop(broker):
    wh = LocalWarehouse(broker.data_dir / "bucket")
    users = [{"id": i, "name": f"user {i}"} for i in range(40)]

    # dlq_table (the default)
    topic = broker.create_topic(unique_topic("ice-dlq"), partitions=1,
                                **{"iceberg.mode": "value_schema_id_prefix", **LAG})
    records, good_idx, reasons = mixed_records(broker, topic)
    reports = produce(broker.bootstrap, topic, records)
    hwm = high_watermarks(reports, 1)
    wait_projected(broker, topic, hwm, rows=len(good_idx), dlq_rows=len(reasons), timeout=PROJECT_TIMEOUT)

    want_main = expected_rows([records[i] for i in good_idx], [reports[i] for i in good_idx], users)
    tbl = pyiceberg_table(wh, topic)
    assert_rows(pyiceberg_rows(tbl), want_main, "pyiceberg main table")
    con = duckdb_connect(wh)
    assert_rows(duckdb_rows(con, wh.location(topic)), want_main, "DuckDB main table")

    dlq = f"{topic}~dlq"
    dlq_tbl = pyiceberg_table(wh, dlq)
    dlq_types = column_types(dlq_tbl)
    assert set(dlq_types) == {"kafka", "value", "reason"}, f"DLQ columns {dlq_types}"
    assert (dlq_types["value"], dlq_types["reason"]) == ("binary", "string"), dlq_types
    bad_idx = sorted(reasons)
    want_dlq = expected_rows([records[i] for i in bad_idx], [reports[i] for i in bad_idx])
    for reader, got in (("pyiceberg", pyiceberg_rows(dlq_tbl)), ("DuckDB", duckdb_rows(con, wh.location(dlq)))):
        got_reasons = [r.pop("reason") for r in got]
        assert_rows(got, want_dlq, f"{reader} DLQ table")
        print(f"DLQ reasons ({reader}): {got_reasons}")
        for i, reason in zip(bad_idx, got_reasons):
            assert isinstance(reason, str) and reason.strip(), f"record {i}: empty DLQ reason {reason!r}"
            assert reasons[i].lower() in reason.lower(), f"record {i} ({records[i].value[:12]!r}): reason {reason!r} " \
                                                         f"does not mention {reasons[i]!r}"
    assert next_offsets(wh.metadata(topic)) == hwm
    assert next_offsets(wh.metadata(dlq)) == hwm, "the DLQ table's snapshot lacks the committed offsets"

    # drop
    dropped = broker.create_topic(unique_topic("ice-drop"), partitions=1,
                                  **{"iceberg.mode": "value_schema_id_prefix", "iceberg.invalid.record.action": "drop",
                                     **LAG})
    records, good_idx, reasons = mixed_records(broker, dropped)
    reports = produce(broker.bootstrap, dropped, records)
    hwm = high_watermarks(reports, 1)
    st = wait_projected(broker, dropped, hwm, rows=len(good_idx), dropped=len(reasons), timeout=PROJECT_TIMEOUT)
    assert st["dlq_rows"] == 0, describe(st)
    want_main = expected_rows([records[i] for i in good_idx], [reports[i] for i in good_idx], users)
    assert_rows(pyiceberg_rows(pyiceberg_table(wh, dropped)), want_main, "pyiceberg (drop)")
    assert not wh.exists(f"{dropped}~dlq"), f"a DLQ table exists for {dropped} with invalid.record.action=drop"


def test_dlq_rows_beyond_the_write_budget_go_to_files_before_the_commit(broker):
    """More invalid records than the projector buffers in memory (64 MB of rows) within one
    target lag: the rows past the budget are written to a Parquet file before the commit, and the
    one commit then adds both files, every row exactly once, the good records unaffected."""
    wh = LocalWarehouse(broker.data_dir / "bucket")
    topic = broker.create_topic(unique_topic("ice-dlq-big"), partitions=1)
    users = [{"id": i, "name": f"user {i}"} for i in range(5)]
    good = avro_values(broker, topic, USER_V1, users)
    base = recent_hour_base()
    rng = random.Random(41)
    n_bad, size = 36_000, 2_000  # 72 MB of values: past the 64 MB budget, below the 128 MiB file size
    records = [Rec(key=b"bad-%d" % i, value=b"not wire format " + rng.randbytes(size - 16), partition=0,
                   timestamp=base + i) for i in range(n_bad)]
    records += [Rec(key=b"good-%d" % i, value=v, partition=0, timestamp=base + n_bad + i) for i, v in enumerate(good)]
    # Written with the projection off, then turned on: the projector reads the whole backlog
    # well within one target lag, so a single commit has to carry all of it.
    reports = produce(broker.bootstrap, topic, records)
    hwm = high_watermarks(reports, 1)
    broker.topic("alter", topic, "--config", "iceberg.mode=value_schema_id_prefix",
                 "--config", "iceberg.target.lag.ms=15000")
    wait_projected(broker, topic, hwm, rows=len(good), dlq_rows=n_bad, timeout=120)

    dlq = f"{topic}~dlq"
    meta = wh.metadata(dlq)
    assert next_offsets(meta) == hwm
    snaps = meta.get("snapshots", [])
    assert len(snaps) == 1, f"the backlog should be one commit of the DLQ table, got {len(snaps)} snapshots: " \
                            f"{[s['summary'] for s in snaps]}"
    summary = snaps[0]["summary"]
    assert int(summary["added-data-files"]) >= 2, f"no file written before the commit: {summary}"
    assert int(summary["added-records"]) == n_bad, summary

    con = duckdb_connect(wh)
    got = con.execute(f"SELECT kafka.\"offset\" AS o, kafka.\"key\" AS k, value FROM iceberg_scan('{wh.location(dlq)}') "
                      "ORDER BY o").fetchall()
    want = [(o, r.key, r.value) for r, (_, o) in zip(records[:n_bad], reports[:n_bad])]
    assert len(got) == len(want), f"DLQ rows {len(got)}, want {len(want)}"
    diff = next((i for i, (g, w) in enumerate(zip(got, want)) if (g[0], bytes(g[1]), bytes(g[2])) != w), None)
    assert diff is None, f"DLQ row {diff}: offset {got[diff][0]} vs {want[diff][0]}"
    want_main = expected_rows(records[n_bad:], reports[n_bad:], users)
    assert_rows(pyiceberg_rows(pyiceberg_table(wh, topic)), want_main, "pyiceberg main table")


# --- schema evolution -----------------------------------------------------------------------------


def test_schema_evolution_adds_optional_column(broker):
    topic = unique_topic("ice-evolve")
    wh = LocalWarehouse(broker.data_dir / "bucket")
    base = recent_hour_base()
    v1 = [{"id": i, "name": f"old {i}"} for i in range(30)]
    v2 = [{"id": 100 + i, "name": f"new {i}", "email": None if i % 5 == 0 else f"u{i}@example.com"} for i in range(30)]
    # V1 is registered before the topic exists: the table starts with V1's columns.
    rec1 = [Rec(key=b"a%d" % i, value=v, partition=0, timestamp=base + i)
            for i, v in enumerate(avro_values(broker, topic, USER_V1, v1))]
    broker.create_topic(topic, partitions=1, **{"iceberg.mode": "value_schema_id_prefix", **LAG})
    rep1 = produce(broker.bootstrap, topic, rec1)
    wait_projected(broker, topic, high_watermarks(rep1, 1), rows=len(rec1), timeout=PROJECT_TIMEOUT)
    before = wh.metadata(topic)
    assert set(column_types(pyiceberg_table(wh, topic))) == {"kafka", "id", "name"}

    rec2 = [Rec(key=b"b%d" % i, value=v, partition=0, timestamp=base + 1000 + i)
            for i, v in enumerate(avro_values(broker, topic, USER_V2, v2))]
    rep2 = produce(broker.bootstrap, topic, rec2)
    assert [v.version for v in [registry(broker).get_latest_version(f"{topic}-value")]] == [2]
    hwm = high_watermarks(rep1 + rep2, 1)
    wait_projected(broker, topic, hwm, rows=len(rec1) + len(rec2), timeout=PROJECT_TIMEOUT)

    want = expected_rows(rec1 + rec2, rep1 + rep2, [{**v, "email": None} for v in v1] + v2)
    tbl = pyiceberg_table(wh, topic)
    types = column_types(tbl)
    assert types == {"kafka": types["kafka"], "id": "long", "name": "string", "email": "string"}, types
    email = tbl.schema().find_field("email")
    assert not email.required, "the new column must be optional"
    after = wh.metadata(topic)
    assert len(after["schemas"]) == len(before["schemas"]) + 1, \
        f"schemas before {[s['schema-id'] for s in before['schemas']]}, after {[s['schema-id'] for s in after['schemas']]}"
    assert after["current-schema-id"] != before["current-schema-id"]

    def current_fields(meta):
        schema = next(s for s in meta["schemas"] if s["schema-id"] == meta["current-schema-id"])
        return {f["name"]: f["id"] for f in schema["fields"]}

    old_ids, new_ids = current_fields(before), current_fields(after)
    assert set(new_ids) == set(old_ids) | {"email"}, f"columns {sorted(old_ids)} -> {sorted(new_ids)}"
    assert {k: new_ids[k] for k in old_ids} == old_ids, f"field ids changed: {old_ids} -> {new_ids}"
    assert_rows(pyiceberg_rows(tbl), want, "pyiceberg")
    assert_rows(duckdb_rows(duckdb_connect(wh), wh.location(topic)), want, "DuckDB")
    tables = sorted(p.name for p in (wh.root / wh.namespace).iterdir() if p.is_dir())
    assert tables == [topic], f"tables in the namespace: {tables}"


# --- kill -9 while projecting ---------------------------------------------------------------------------


def test_kill9_during_projection(broker):
    partitions = 2
    topic = broker.create_topic(unique_topic("ice-crash"), partitions=partitions,
                                **{"iceberg.mode": "key_value", **LAG})
    wh = LocalWarehouse(broker.data_dir / "bucket")
    rnd = random.Random(20261202)
    base = recent_hour_base()
    first = make_records(3000, seed=11, partitions=partitions)
    more = make_records(2500, seed=12, partitions=partitions)
    for i, r in enumerate(first + more):
        r.timestamp = base + i
    produce(broker.bootstrap, topic, first)

    # Keep producing (idempotent, paced) while the broker is killed twice mid-projection.
    thread, producer_error = paced_producer(broker.bootstrap, topic, more, "crash-producer")
    at_kill = []
    for round_ in range(3):
        # A commit by this broker process (or, once the producer is done, nothing left to commit).
        wait_until(lambda: (topic_status(broker, topic) or {}).get("commits", 0) >= 1 or not thread.is_alive(),
                   PROJECT_TIMEOUT, f"a commit of {topic} (round {round_})", interval=0.2)
        time.sleep(rnd.uniform(0.0, 1.2))
        st = topic_status(broker, topic)
        broker.kill()
        at_kill.append(sum(p["lag_records"] for p in st["partitions"]) if st else None)
        broker.start()
    print(f"records not yet committed when killed: {at_kill}")
    thread.join(timeout=180)
    assert not thread.is_alive(), "the background producer did not finish"
    assert not producer_error, f"background produce failed: {producer_error[0]!r}"

    marks = watermarks(broker.bootstrap, topic)
    assert all(lo == 0 for lo, _ in marks.values()), f"watermarks {marks}"
    hwm = {p: hi for p, (_, hi) in marks.items()}
    total = sum(hwm.values())
    assert total == len(first) + len(more), f"log holds {total} records, produced {len(first) + len(more)} ({marks})"
    wait_projected(broker, topic, hwm, rows=total, timeout=PROJECT_TIMEOUT)

    log = consume_all(broker.bootstrap, topic)
    want = sorted(({"kafka": {"partition": m.partition, "offset": m.offset, "timestamp": micros(m.timestamp[1]),
                              "timestamp_type": 0, "key": m.key,
                              "headers": [{"key": k, "value": v} for k, v in m.headers]},
                    "value": m.value} for ms in log.values() for m in ms),
                  key=lambda r: (r["kafka"]["partition"], r["kafka"]["offset"]))
    rows = pyiceberg_rows(pyiceberg_table(wh, topic))
    keys = [(r["kafka"]["partition"], r["kafka"]["offset"]) for r in rows]
    assert len(keys) == len(set(keys)), f"{len(keys) - len(set(keys))} duplicate (partition, offset) rows"
    assert set(keys) == {(p, o) for p in hwm for o in range(hwm[p])}, first_difference(rows, want)
    assert_rows(rows, want, "pyiceberg after kill -9")
    con = duckdb_connect(wh)
    dup = con.execute(f"SELECT count(*), count(DISTINCT (kafka.partition, kafka.offset)) "
                      f"FROM iceberg_scan('{wh.location(topic)}')").fetchone()
    assert dup == (total, total), f"DuckDB: (rows, distinct (partition, offset)) = {dup}, expected {total}"
    assert next_offsets(wh.metadata(topic)) == hwm


# --- backfill from the bucket ------------------------------------------------------------------------------


def test_backfill_tiered_topic_from_offset_zero(make_broker, tmp_path):
    broker = make_broker(tmp_path / "b", "--tier-idle-roll-ms", "1000")
    wh = LocalWarehouse(broker.data_dir / "bucket")
    topic = broker.create_topic(unique_topic("ice-backfill"), partitions=1, **{
        "remote.storage.enable": "true", "segment.bytes": str(MiB), "local.retention.bytes": str(MiB)})
    gen = RecordGen(seed=5)
    n = gen.count_for(5 * MiB)
    assert_produced(produce_records(broker.bootstrap, topic, gen, 0, n), n)
    part = wait_until(lambda: (lambda p: p if (p.get("local_start") or 0) > 0 else None)(tier_partition(broker, topic)),
                      60, f"{topic}: early segments only in the bucket (tier status local_start > 0)", interval=0.5)
    local_start = part["local_start"]
    assert part["remote_start"] == 0 and part["high_watermark"] == n, f"tier status {part}"
    local_bases = sorted(int(f.name[:-4]) for f in (broker.data_dir / f"{topic}-0").glob("*.log"))
    assert local_bases and local_bases[0] >= local_start > 0, \
        f"local segments start at {local_bases[:3]}, tier status local_start {local_start}"
    print(f"{topic}: offsets 0..{local_start - 1} only in the bucket, {local_start}..{n - 1} local")

    broker.topic("alter", topic, "--config", "iceberg.mode=key_value", "--config", "iceberg.target.lag.ms=1000")
    seen = []

    def progressed():
        st = topic_status(broker, topic)
        if st and st.get("partitions"):
            seen.append(st["partitions"][0]["projected_offset"])
            return st["rows"] == n and st["partitions"][0]["projected_offset"] == n and st
        return None

    wait_until(progressed, 90, f"{topic}: backfill of {n} records", interval=0.3)
    print(f"projected offsets seen while backfilling: {sorted(set(seen))[:20]}")
    wait_projected(broker, topic, {0: n}, rows=n, timeout=10)

    tbl = pyiceberg_table(wh, topic)
    got = tbl.scan(selected_fields=("kafka", "value")).to_arrow().to_pylist()
    got = sorted((r["kafka"]["offset"], r["kafka"]["key"], r["value"], plain(r["kafka"]["timestamp"])) for r in got)
    assert [g[0] for g in got] == list(range(n)), first_difference([g[0] for g in got], list(range(n)), "offsets")
    bad = [g[0] for g in got if (g[1], g[2], g[3]) != (gen.key(g[0]), gen.value(g[0]), micros(gen.timestamp(g[0])))]
    assert not bad, f"{len(bad)} rows differ from the records, first offsets {bad[:10]}"
    assert next_offsets(wh.metadata(topic)) == {0: n}
    assert_nothing_skipped(broker)


# --- retention fence ------------------------------------------------------------------------------------------


def test_retention_waits_for_projection(broker):
    """retention.bytes deletes old segments of a plain topic within a few retention passes; the
    same config on a projected topic whose commit is an hour away deletes nothing until the
    records are in the table, then deletes."""
    wh = LocalWarehouse(broker.data_dir / "bucket")
    configs = {"segment.bytes": str(256 * 1024), "retention.bytes": str(MiB)}
    control = broker.create_topic(unique_topic("ice-ret-plain"), partitions=1, **configs)
    topic = broker.create_topic(unique_topic("ice-ret"), partitions=1, **configs,
                                **{"iceberg.mode": "key_value", "iceberg.target.lag.ms": "3600000"})
    gen = RecordGen(seed=9)
    n = gen.count_for(3 * MiB)
    for t in (control, topic):
        assert_produced(produce_records(broker.bootstrap, t, gen, 0, n), n, t)
    wait_until(lambda: watermarks(broker.bootstrap, control)[0][0] > 0, 30,
               f"retention.bytes to delete the oldest segments of the unprojected {control}", interval=0.5)
    # The projector has read everything but commits only after an hour: nothing may go.
    wait_until(lambda: (lambda st: st and st["partitions"] and st["partitions"][0]["high_watermark"] == n)(
        topic_status(broker, topic)), 30, f"{topic} projection running", interval=0.5)
    time.sleep(6)  # at least one more retention pass (every 5 s)
    low, high = watermarks(broker.bootstrap, topic)[0]
    st = topic_status(broker, topic)
    assert (low, high) == (0, n), f"{topic}: watermarks ({low}, {high}) before any commit; status: {describe(st)}"
    assert (st["rows"], st["commits"]) == (0, 0), f"{topic} committed early: {describe(st)}"

    broker.topic("alter", topic, "--config", "iceberg.target.lag.ms=1000")
    wait_projected(broker, topic, {0: n}, rows=n, timeout=PROJECT_TIMEOUT)
    rows = pyiceberg_table(wh, topic).scan(selected_fields=("kafka",)).to_arrow().to_pylist()
    assert sorted(r["kafka"]["offset"] for r in rows) == list(range(n)), "the table lacks records of the log"
    wait_until(lambda: watermarks(broker.bootstrap, topic)[0][0] > 0, 30,
               f"retention of {topic} once its records are in the table", interval=0.5)
    assert_nothing_skipped(broker)


# --- I1: a crash at each step of a commit ------------------------------------------------------


@pytest.mark.parametrize("step", [
    "iceberg-after-data-files",      # Parquet files written, no metadata: orphans, no rows
    "iceberg-after-metadata",        # v<N+1>.metadata.json written, version-hint.text not yet
    "iceberg-between-dlq-and-main",  # the DLQ table committed, the main table not
    "iceberg-after-commit",          # both committed, retention fences not yet moved
])
def test_crash_at_each_commit_step(broker, monkeypatch, step):
    """TESTING.md I1: FLOE_FAILPOINT=<step> aborts the broker the first time a commit reaches
    that step (like a power cut); after a restart without it, the tables hold exactly one row
    per record: no duplicate and no missing (partition, offset), in the main and DLQ tables."""
    wh = LocalWarehouse(broker.data_dir / "bucket")
    broker.stop()
    monkeypatch.setenv("FLOE_FAILPOINT", step)
    broker.start()
    topic = broker.create_topic(unique_topic("ice-fail"), partitions=1,
                                **{"iceberg.mode": "value_schema_id_prefix", **LAG})
    records, good_idx, reasons = mixed_records(broker, topic)
    reports = produce(broker.bootstrap, topic, records)
    hwm = high_watermarks(reports, 1)
    wait_until(lambda: not broker.running, PROJECT_TIMEOUT, f"the broker to abort at {step}", interval=0.2)
    assert f"FLOE_FAILPOINT={step}: aborting here" in broker.log_text(), broker.log_tail(40)

    monkeypatch.delenv("FLOE_FAILPOINT")
    broker.start()
    wait_projected(broker, topic, hwm, rows=len(good_idx), dlq_rows=len(reasons), timeout=PROJECT_TIMEOUT)

    main = pyiceberg_rows(pyiceberg_table(wh, topic))
    got = sorted(r["kafka"]["offset"] for r in main)
    assert got == sorted(reports[i][1] for i in good_idx), f"main table offsets after a crash at {step}: {got}"
    dlq = pyiceberg_rows(pyiceberg_table(wh, f"{topic}~dlq"))
    got_dlq = sorted(r["kafka"]["offset"] for r in dlq)
    assert got_dlq == sorted(reports[i][1] for i in reasons), f"DLQ offsets after a crash at {step}: {got_dlq}"
    # The committed offsets say exactly what the tables hold.
    for table in (topic, f"{topic}~dlq"):
        assert next_offsets(wh.metadata(table)) == hwm, f"{table}: {next_offsets(wh.metadata(table))} != {hwm}"


# --- where tables live, and topic incarnations -------------------------------------------------


def test_iceberg_warehouse_flag_puts_tables_elsewhere(make_broker, tmp_path):
    """--iceberg-warehouse file:///<dir>: tables at <dir>/<namespace>/<topic>, none in the bucket."""
    lake = tmp_path / "lakehouse"
    broker = make_broker(tmp_path / "b", "--iceberg-warehouse", f"file://{lake}")
    topic = broker.create_topic(unique_topic("ice-wh"), partitions=1, **{"iceberg.mode": "key_value", **LAG})
    records = make_records(50, seed=3, partitions=1)
    base = recent_hour_base()
    for i, r in enumerate(records):
        r.timestamp = base + i
    reports = produce(broker.bootstrap, topic, records)
    hwm = high_watermarks(reports, 1)
    wait_projected(broker, topic, hwm, rows=len(records), timeout=PROJECT_TIMEOUT)

    wh = LocalWarehouse(tmp_path)
    wh.root = lake
    assert wh.version_hint(topic) is not None, f"no table under {lake}: {sorted(str(p) for p in lake.rglob('*'))[:10]}"
    assert_rows(pyiceberg_rows(pyiceberg_table(wh, topic)), expected_rows(records, reports), "pyiceberg")
    default_root = broker.data_dir / "bucket" / "iceberg"
    assert not (default_root / "floe" / topic).exists(), f"a table was also written under {default_root}"

    # The Prometheus series agree with the table.
    with urllib.request.urlopen(f"http://{broker.admin_addr}/metrics", timeout=30) as resp:
        text = resp.read().decode()
    series = {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
              for line in text.splitlines() if line.startswith("floe_iceberg_")}
    assert series.get(f'floe_iceberg_rows_total{{topic="{topic}"}}') == len(records), series
    assert series.get(f'floe_iceberg_commits_total{{topic="{topic}"}}', 0) >= 1, series
    assert series.get(f'floe_iceberg_lag_offsets{{topic="{topic}",partition="0"}}') == 0, series


def test_recreated_topic_is_projected_from_its_start(broker):
    """A projected topic deleted and created again under the same name: the new topic's offsets
    start at 0 again, and its records reach the same table (the old rows stay) instead of
    being skipped as already projected."""
    wh = LocalWarehouse(broker.data_dir / "bucket")
    name = unique_topic("ice-again")
    configs = {"iceberg.mode": "key_value", **LAG}
    broker.create_topic(name, partitions=1, **configs)
    base = recent_hour_base()
    old = [Rec(key=b"old-%d" % i, value=b"old value %d" % i, partition=0, timestamp=base + i) for i in range(10)]
    old_reports = produce(broker.bootstrap, name, old)
    wait_projected(broker, name, high_watermarks(old_reports, 1), rows=len(old), timeout=PROJECT_TIMEOUT)

    broker.topic("delete", name)
    wait_until(lambda: broker.topic("create", name, "--partitions", "1",
                                    *[a for k, v in configs.items() for a in ("--config", f"{k}={v}")],
                                    check=False).returncode == 0,
               30, f"{name} created again", interval=0.5)
    new = [Rec(key=b"new-%d" % i, value=b"new value %d" % i, partition=0, timestamp=base + 100 + i) for i in range(5)]
    new_reports = produce(broker.bootstrap, name, new)
    assert [o for _, o in new_reports] == list(range(5)), f"the new topic's offsets: {new_reports}"
    hwm = high_watermarks(new_reports, 1)
    wait_projected(broker, name, hwm, rows=len(old) + len(new), timeout=PROJECT_TIMEOUT)

    rows = pyiceberg_rows(pyiceberg_table(wh, name))
    got = sorted((r["kafka"]["key"], r["kafka"]["offset"], r["value"]) for r in rows)
    want = sorted([(r.key, o, r.value) for r, (_, o) in zip(old, old_reports)]
                  + [(r.key, o, r.value) for r, (_, o) in zip(new, new_reports)])
    assert got == want, first_difference(got, want)
    assert next_offsets(wh.metadata(name)) == hwm


def test_deleted_or_disabled_topic_stops_its_projection_quietly(broker):
    """Deleting one projected topic and setting `iceberg.mode=disabled` on another stop their
    projections within a few supervisor scans: `floe iceberg status` no longer lists them, the
    log says "iceberg projection stopped" for each and has no warning or error about them
    afterwards (no task left retrying reads of a topic that is gone), records produced after the
    disable are not projected, and both tables stay readable with exactly the rows projected
    before."""
    wh = LocalWarehouse(broker.data_dir / "bucket")
    gone = unique_topic("ice-gone")
    off = unique_topic("ice-off")
    projected: dict[str, list[tuple]] = {}
    for seed, name in enumerate((gone, off)):
        broker.create_topic(name, partitions=2, **{"iceberg.mode": "key_value", **LAG})
        recs = make_records(30, seed=seed, partitions=2)
        reports = produce(broker.bootstrap, name, recs)
        wait_projected(broker, name, high_watermarks(reports, 2), rows=len(recs), timeout=PROJECT_TIMEOUT)
        projected[name] = sorted((p, o, r.key, r.value) for r, (p, o) in zip(recs, reports))
    mark = len(broker.log_text())

    broker.topic("delete", gone)
    broker.topic("alter", off, "--config", "iceberg.mode=disabled")
    listed = lambda: {t.get("topic") for t in iceberg_status(broker).get("topics") or []}
    wait_until(lambda: not ({gone, off} & listed()), 30, "both projections gone from floe iceberg status",
               interval=0.5)
    later = make_records(20, seed=99, partitions=2)
    produce(broker.bootstrap, off, later)
    # Several supervisor scans (1 s) and target lags (1 s) and the 2 s retry pause of a failed task.
    time.sleep(6)

    after = broker.log_text()[mark:].splitlines()
    for name in (gone, off):
        lines = [line for line in after if name in line]
        assert any("iceberg projection stopped" in line for line in lines), \
            f"no 'iceberg projection stopped' for {name}:\n" + "\n".join(lines)
        noisy = [line for line in lines if " WARN " in line or " ERROR " in line]
        assert not noisy, f"warnings about {name} after its projection stopped:\n" + "\n".join(noisy)
        st = topic_status(broker, name)
        assert st is None, f"{name} still has a projection status: {describe(st)}"
        rows = pyiceberg_rows(pyiceberg_table(wh, name))
        got = sorted((r["kafka"]["partition"], r["kafka"]["offset"], r["kafka"]["key"], r["value"]) for r in rows)
        assert got == projected[name], first_difference(got, projected[name])


# --- compaction ------------------------------------------------------------------------------------


def test_compaction_replaces_small_files_exactly_once(broker):
    """Six commits of a key_value topic leave six small files in one partition; background
    compaction (every 2 s here, from 4 small files) rewrites them into fewer files in a
    `replace` snapshot. Both readers see exactly the produced rows, the replace snapshot carries
    the committed offsets, the snapshot before it still reads the same rows (its files are kept
    until expiry), and records produced afterwards are projected exactly once."""
    from tier_support import metric_sum, scrape_metrics

    wh = LocalWarehouse(broker.data_dir / "bucket")
    topic = broker.create_topic(unique_topic("ice-compact"), partitions=1, **{
        "iceberg.mode": "key_value",
        "iceberg.target.lag.ms": "200",
        "iceberg.partition.spec": "(kafka.partition)",
        "iceberg.compaction.interval.ms": "2000",
        "iceberg.compaction.min.input.files": "4",
    })
    records: list[Rec] = []
    reports: list[tuple[int, int]] = []
    burst = 40
    for b in range(6):
        batch = make_records(burst, seed=100 + b, partitions=1)
        records += batch
        reports += produce(broker.bootstrap, topic, batch)
        wait_projected(broker, topic, high_watermarks(reports, 1), rows=len(records), timeout=PROJECT_TIMEOUT)

    def compactions() -> float:
        return metric_sum(scrape_metrics(broker.admin_addr), "floe_iceberg_compactions_total", topic=topic) or 0

    wait_until(lambda: compactions() >= 1, 30, f"a compaction of {topic}", interval=0.5)
    time.sleep(2.5)  # one more interval: whatever is still small and numerous gets compacted too
    meta = wh.metadata(topic)
    snapshots = {s["snapshot-id"]: s for s in meta["snapshots"]}
    replaces = [s for s in meta["snapshots"] if s["summary"]["operation"] == "replace"]
    assert replaces, f"no replace snapshot in {[s['summary']['operation'] for s in meta['snapshots']]}"
    first = replaces[0]["summary"]
    assert int(first["deleted-data-files"]) >= 4 and int(first["added-data-files"]) >= 1, first
    assert first["deleted-records"] == first["added-records"], f"a replace must keep the rows: {first}"
    hwm = high_watermarks(reports, 1)
    assert next_offsets(meta) == hwm, "the current snapshot lost the committed offsets"

    want = expected_rows(records, reports)
    tbl = pyiceberg_table(wh, topic)
    files = file_partitions(tbl)
    assert len(files) < 6, f"{len(files)} live data files after compaction: {files}"
    assert sum(n for _, _, n in files) == len(records)
    assert_rows(pyiceberg_rows(tbl), want, "pyiceberg after compaction")
    assert_rows(duckdb_rows(duckdb_connect(wh), wh.location(topic)), want, "DuckDB after compaction")
    # Time travel to the snapshot the first compaction replaced: same rows, from the small files.
    parent = snapshots[replaces[0]["parent-snapshot-id"]]
    before = [plain(r) for r in tbl.scan(snapshot_id=parent["snapshot-id"]).to_arrow().to_pylist()]
    assert len(before) == int(parent["summary"]["total-records"])
    assert_rows(sorted(before, key=lambda r: (r["kafka"]["partition"], r["kafka"]["offset"])),
                want[: len(before)], "pyiceberg at the snapshot before compaction")

    # Projection goes on after compaction: more records, exactly once.
    batch = make_records(burst, seed=200, partitions=1)
    records += batch
    reports += produce(broker.bootstrap, topic, batch)
    hwm = high_watermarks(reports, 1)
    wait_projected(broker, topic, hwm, rows=len(records), timeout=PROJECT_TIMEOUT)
    want = expected_rows(records, reports)
    tbl = pyiceberg_table(wh, topic)
    assert_rows(pyiceberg_rows(tbl), want, "pyiceberg after more records")
    assert next_offsets(wh.metadata(topic)) == hwm
    assert_nothing_skipped(broker)


def test_expiry_after_compaction_deletes_the_replaced_files(broker):
    """Maintenance end to end: small files compacted, then snapshot expiry (max age 1 ms, keep 1)
    deletes the snapshots before the compaction and the small files only they read. What stays
    on storage is exactly what the table reads; both readers still return every row; the
    committed offsets survive (the newest snapshot carries them) and projection goes on."""
    from tier_support import metric_sum, scrape_metrics

    wh = LocalWarehouse(broker.data_dir / "bucket")
    topic = broker.create_topic(unique_topic("ice-expire"), partitions=1, **{
        "iceberg.mode": "key_value",
        "iceberg.target.lag.ms": "200",
        "iceberg.partition.spec": "(kafka.partition)",
        "iceberg.compaction.interval.ms": "1500",
        "iceberg.compaction.min.input.files": "3",
        "iceberg.snapshot.max.age.ms": "1",
        "iceberg.snapshot.min.keep": "1",
        "iceberg.snapshot.expire.interval.ms": "1500",
    })
    records: list[Rec] = []
    reports: list[tuple[int, int]] = []
    for b in range(5):
        batch = make_records(30, seed=300 + b, partitions=1)
        records += batch
        reports += produce(broker.bootstrap, topic, batch)
        wait_projected(broker, topic, high_watermarks(reports, 1), rows=len(records), timeout=PROJECT_TIMEOUT)
    hwm = high_watermarks(reports, 1)

    def compactions() -> float:
        return metric_sum(scrape_metrics(broker.admin_addr), "floe_iceberg_compactions_total", topic=topic) or 0

    wait_until(lambda: compactions() >= 1, 30, f"a compaction of {topic}", interval=0.5)

    def live_names() -> set[str]:
        return {p.rsplit("/", 1)[1] for p, _, _ in file_partitions(pyiceberg_table(wh, topic))}

    def stored_names() -> set[str]:
        return {p.rsplit("/", 1)[1] for p in wh.data_files(topic)}

    def expired() -> bool:
        return len(wh.metadata(topic)["snapshots"]) == 1 and stored_names() == live_names()

    try:
        wait_until(expired, 30, f"expiry down to the current snapshot and the files it reads in {topic}", interval=0.5)
    except AssertionError as e:
        ops = [s["summary"]["operation"] for s in wh.metadata(topic)["snapshots"]]
        raise AssertionError(f"{e}: stored {sorted(stored_names())}, live {sorted(live_names())}, snapshots {ops}")
    meta = wh.metadata(topic)
    assert next_offsets(meta) == hwm, "the committed offsets went with the expired snapshots"
    assert len(live_names()) < 5, f"not compacted: {live_names()}"
    # Every manifest and manifest list the metadata names still exists.
    tbl = pyiceberg_table(wh, topic)
    want = expected_rows(records, reports)
    assert_rows(pyiceberg_rows(tbl), want, "pyiceberg after expiry")
    assert_rows(duckdb_rows(duckdb_connect(wh), wh.location(topic)), want, "DuckDB after expiry")

    batch = make_records(30, seed=400, partitions=1)
    records += batch
    reports += produce(broker.bootstrap, topic, batch)
    hwm = high_watermarks(reports, 1)
    wait_projected(broker, topic, hwm, rows=len(records), timeout=PROJECT_TIMEOUT)
    assert_rows(pyiceberg_rows(pyiceberg_table(wh, topic)), expected_rows(records, reports), "pyiceberg after more")
    assert_nothing_skipped(broker)


def test_projector_threads_run_at_lower_priority(broker):
    """The projector decodes and encodes on its own threads at nice 10, so the shards (nice 0)
    get the CPU first when both want it."""
    import os

    pid = broker.proc.pid
    threads = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            comm = open(f"/proc/{pid}/task/{tid}/comm").read().strip()
            stat = open(f"/proc/{pid}/task/{tid}/stat").read()
        except FileNotFoundError:
            continue
        nice = int(stat.rsplit(")", 1)[1].split()[16])  # field 19 of proc(5)
        threads.setdefault(comm, set()).add(nice)
    assert threads.get("floe-iceberg") == {10}, threads
    shards = {n for comm, ns in threads.items() if comm.startswith("floe-shard") for n in ns}
    assert shards == {0}, threads
