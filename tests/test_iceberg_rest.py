"""Iceberg projection through an external REST catalog (`--iceberg-catalog rest`), end to end:
the real `floe` binary against a real Iceberg REST catalog server (tests/iceberg_rest_catalog.py:
the REST protocol over pyiceberg 0.12's SqlCatalog, so requirements are checked and metadata
is written by pyiceberg), tables read back the way a user reads them: pyiceberg's own
`RestCatalog` client (load_table, scan) and DuckDB's `iceberg_scan` on the metadata location
the catalog reports.

What a user relies on, checked here (row comparisons are exact: all rows, all columns):
- The test server is a real REST catalog: pyiceberg's RestCatalog creates, appends, loads,
  gets a 409 for a stale commit, and gets new tokens after they expire.
- value_schema_id_prefix with Avro, 2 partitions, OAuth2 client credentials from floe.toml and
  the `warehouse` property: the catalog's table (location chosen by the catalog, under
  `--iceberg-warehouse`) holds exactly the produced rows with the kafka struct, for both
  readers; the snapshot summary carries the offsets; commits went through the catalog (no
  `vN.metadata.json` of Floe's own); `floe iceberg status` names the catalog. After every token
  is revoked mid-stream, Floe gets a new one and keeps committing.
- The tier and the tables in one S3 bucket (moto), one S3 configuration: the catalog writes
  the metadata, Floe the data and manifests, with its own settings (not the catalog's).
- Schema evolution mid-stream (an added optional column, int promoted to long) commits through
  REST in the same commit as the rows that need it, with a bearer token from the environment.
- kill -9 of the broker while it projects, twice, restart: exactly one row per record.
- A commit the catalog applied but whose answer was lost (502), and a 409 conflict: one
  snapshot per commit, no duplicate rows.
- A catalog that chooses no location gets one in Floe's warehouse; a table the catalog put
  outside Floe's warehouse is refused with the reason in `floe iceberg status`.
- An https catalog: trusted through the system's roots (SSL_CERT_FILE), refused without.
- `--iceberg-catalog rest` with an unreachable URI, or without a URI, fails startup with a clear
  message.
"""

from __future__ import annotations

import random
import subprocess
import threading
import time

import pytest
from pyiceberg.catalog.rest import RestCatalog

from floe_harness import BrokerError, Rec, consume_all, free_ports, make_records, produce, unique_topic, wait_until, \
    watermarks
from iceberg_rest_catalog import RestCatalogServer, make_certificates
from iceberg_support import (
    paced_producer,
    column_types,
    duckdb_connect,
    duckdb_rows,
    high_watermarks,
    micros,
    pyiceberg_rows,
    topic_status,
    wait_projected,
)
from tier_support import S3_ENV, MotoServer, TierBroker, s3_env
from test_iceberg import (
    COMMIT_DEADLINE,
    LAG,
    PROJECT_TIMEOUT,
    READING_AVRO,
    READING_TYPES,
    assert_rows,
    avro_values,
    expected_rows,
    readings,
    recent_hour_base,
    registry,
)

NAMESPACE = "floe"
CREDENTIAL = "floe-broker:s3cr3t-client"
TOKEN = "static-bearer-token-for-floe"

USER_V1 = {
    "type": "record",
    "name": "User",
    "namespace": "floe.itest",
    "fields": [{"name": "id", "type": "int"}, {"name": "name", "type": "string"}],
}
USER_V2 = {
    "type": "record",
    "name": "User",
    "namespace": "floe.itest",
    "fields": [{"name": "id", "type": "long"}, {"name": "name", "type": "string"},
               {"name": "email", "type": ["null", "string"], "default": None}],
}


@pytest.fixture
def rest_server(tmp_path):
    """Factory: a REST catalog server (stopped at teardown) with its own sqlite file."""
    started = []

    def start(warehouse: str | None, **auth) -> RestCatalogServer:
        db = tmp_path / f"catalog-{len(started)}.db"
        server = RestCatalogServer(db, warehouse, **auth).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def rest_client(server: RestCatalogServer) -> RestCatalog:
    return RestCatalog("floe-test-reader", **server.client_properties())


def rest_table(server: RestCatalogServer, topic: str):
    return rest_client(server).load_table((NAMESPACE, topic))


def rest_args(server: RestCatalogServer, lake) -> list[str]:
    return ["--iceberg-warehouse", f"file://{lake}", "--iceberg-catalog", "rest", "--iceberg-catalog-uri", server.uri]


def summary_of_current(tbl) -> dict[str, str]:
    snap = tbl.current_snapshot()
    assert snap is not None, "the table has no snapshot"
    return dict(snap.summary.additional_properties)


def next_offsets(tbl) -> dict[int, int]:
    return {int(k.rsplit(".", 1)[1]): int(v) for k, v in summary_of_current(tbl).items()
            if k.startswith("floe.next-offset.")}


def commit_ids(tbl) -> list[str]:
    """`floe.commit-id` of every snapshot of the table."""
    return [s.summary.additional_properties.get("floe.commit-id") for s in tbl.metadata.snapshots]


def assert_duckdb_rows(tbl, want: list[dict]) -> None:
    """DuckDB's iceberg_scan on the metadata location the catalog reports."""
    assert_rows(duckdb_rows(duckdb_connect(), tbl.metadata_location), want,
                f"DuckDB iceberg_scan({tbl.metadata_location})")


# --- the server itself ------------------------------------------------------------------------------


def test_rest_server_speaks_rest_to_pyiceberg(rest_server, tmp_path):
    """The test server is a real REST catalog for pyiceberg's own client."""
    import pyarrow as pa
    from pyiceberg.exceptions import CommitFailedException, CommitStateUnknownException, NoSuchTableError
    from pyiceberg.table.update import AssertRefSnapshotId, SetPropertiesUpdate

    server = rest_server(f"file://{tmp_path / 'wh'}", credential=CREDENTIAL)
    cat = rest_client(server)
    cat.create_namespace(NAMESPACE)
    assert cat.list_namespaces() == [(NAMESPACE,)]
    schema = pa.schema([("id", pa.int64()), ("name", pa.string())])
    tbl = cat.create_table((NAMESPACE, "people"), schema=schema)
    assert tbl.location() == f"file://{tmp_path / 'wh'}/{NAMESPACE}/people"
    tbl.append(pa.table({"id": [1, 2], "name": ["a", "b"]}))
    assert cat.load_table((NAMESPACE, "people")).scan().to_arrow().to_pylist() == \
        [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}]

    # A commit based on an old snapshot fails its requirement: 409.
    stale = cat.load_table((NAMESPACE, "people"))
    cat.load_table((NAMESPACE, "people")).append(pa.table({"id": [3], "name": ["c"]}))
    with pytest.raises(CommitFailedException):
        cat.commit_table(stale, (AssertRefSnapshotId(ref="main", snapshot_id=stale.metadata.current_snapshot_id),),
                         (SetPropertiesUpdate(updates={"stale": "yes"}),))
    assert "stale" not in cat.load_table((NAMESPACE, "people")).properties

    # An applied commit whose answer is lost: the client cannot know (502), the table has it.
    server.inject("lose_commit_answer")
    with pytest.raises(CommitStateUnknownException):
        cat.load_table((NAMESPACE, "people")).append(pa.table({"id": [5], "name": ["e"]}))
    assert sorted(r["id"] for r in cat.load_table((NAMESPACE, "people")).scan().to_arrow().to_pylist()) == [1, 2, 3, 5]

    # Expired tokens: the client exchanges its credential again.
    exchanges = [p for _, p in server.requests].count("/v1/oauth/tokens")
    server.revoke_tokens()
    assert cat.list_tables(NAMESPACE) == [(NAMESPACE, "people")]
    assert [p for _, p in server.requests].count("/v1/oauth/tokens") == exchanges + 1
    cat.drop_table((NAMESPACE, "people"))
    with pytest.raises(NoSuchTableError):
        cat.load_table((NAMESPACE, "people"))


# --- the main flow -----------------------------------------------------------------------------------


def produce_readings(broker, topic: str, values: list[dict], first: int, partitions: int, base: int):
    encoded = avro_values(broker, topic, READING_AVRO, values)
    records = []
    for j, v in enumerate(encoded):
        i = first + j
        headers = [("i", b"%d" % i), ("even", None)] if i % 2 else []
        records.append(Rec(key=b"reading-%d" % i, value=v, headers=headers, partition=i % partitions,
                           timestamp=base + (i % 3) * 3_600_000 + i * 1000))
    return records, produce(broker.bootstrap, topic, records)


def test_avro_through_rest_catalog(make_broker, rest_server, tmp_path):
    lake = tmp_path / "lake"
    server = rest_server(f"file://{lake}", credential=CREDENTIAL)
    workdir = tmp_path / "broker"
    workdir.mkdir()
    # The credential from floe.toml (read from the working directory), the rest from flags.
    (workdir / "floe.toml").write_text(f'iceberg-catalog-credential = "{CREDENTIAL}"\n')
    broker = make_broker(workdir, *rest_args(server, lake), "--iceberg-catalog-warehouse", "lake")
    assert server.config_queries and all(q.get("warehouse") == ["lake"] for q in server.config_queries), \
        f"GET /v1/config queries: {server.config_queries}"

    partitions = 2
    topic = broker.create_topic(unique_topic("rest-avro"), partitions=partitions,
                                **{"iceberg.mode": "value_schema_id_prefix", **LAG})
    base = recent_hour_base()
    values = readings(240)
    records, reports = produce_readings(broker, topic, values[:160], 0, partitions, base)
    hwm = high_watermarks(reports, partitions)
    wait_projected(broker, topic, hwm, rows=160, timeout=COMMIT_DEADLINE)

    # Every token expires: Floe (its loads and its own commit requests) gets a new one.
    tokens_before = [p for _, p in server.requests].count("/v1/oauth/tokens")
    server.revoke_tokens()
    more, more_reports = produce_readings(broker, topic, values[160:], 160, partitions, base)
    records, reports = records + more, reports + more_reports
    hwm = high_watermarks(reports, partitions)
    wait_projected(broker, topic, hwm, rows=len(values), timeout=PROJECT_TIMEOUT)
    assert [p for _, p in server.requests].count("/v1/oauth/tokens") > tokens_before, "no new token after revoking"

    want = expected_rows(records, reports, values)
    tbl = rest_table(server, topic)
    types = column_types(tbl)
    assert {k: types.get(k) for k in READING_TYPES} == READING_TYPES, f"column types {types}"
    assert set(types) == {"kafka", *READING_TYPES}, f"columns {sorted(types)}"
    schema = tbl.schema()
    kafka = {name: str(schema.find_field(f"kafka.{name}").field_type)
             for name in ("partition", "offset", "timestamp", "timestamp_type", "key")}
    assert kafka == {"partition": "int", "offset": "long", "timestamp": "timestamptz", "timestamp_type": "int",
                     "key": "binary"}, kafka
    assert_rows(pyiceberg_rows(tbl), want, "pyiceberg RestCatalog")
    assert_duckdb_rows(tbl, want)

    # The catalog chose the location (its warehouse, the same place as --iceberg-warehouse) and
    # wrote the metadata; Floe wrote the data files there and no metadata of its own.
    assert tbl.location() == f"file://{lake}/{NAMESPACE}/{topic}", tbl.location()
    metadata_dir = lake / NAMESPACE / topic / "metadata"
    names = sorted(p.name for p in metadata_dir.iterdir())
    assert not [n for n in names if n.startswith("v") and n.endswith(".metadata.json")], names
    assert "version-hint.text" not in names, names
    assert tbl.metadata_location.startswith(f"file://{metadata_dir}/"), tbl.metadata_location
    assert list((lake / NAMESPACE / topic / "data").rglob("*.parquet")), "no data files under the table location"
    assert not (broker.data_dir / "bucket" / "iceberg").exists(), "tables were also written to the default warehouse"
    assert next_offsets(tbl) == hwm, f"snapshot summary offsets {next_offsets(tbl)}"
    appends = [c for c in server.commits if "add-snapshot" in c]
    assert len(appends) == len(tbl.metadata.snapshots) >= 2, \
        f"commits through the catalog: {server.commits}; {len(tbl.metadata.snapshots)} snapshots"
    ids = commit_ids(tbl)
    assert None not in ids and len(set(ids)) == len(ids), f"commit ids {ids}"

    st = topic_status(broker, topic)
    assert st["catalog"] == f"rest {server.uri} (warehouse lake)", st
    assert st["location"] == tbl.location(), st
    assert st["state"] == "running" and st["last_error"] is None and st["rows"] == len(values), st
    res = subprocess.run([str(broker.binary), "iceberg", "status", topic, "--admin", broker.admin_addr],
                         capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert res.returncode == 0 and f"catalog: rest {server.uri} (warehouse lake)" in res.stdout, res.stdout + res.stderr


@pytest.fixture
def moto(tmp_path):
    server = MotoServer(tmp_path / "moto")
    server.start()
    yield server
    server.stop()


def test_rest_catalog_with_tables_on_s3(request, floe_binary, rest_server, tmp_path, moto):
    """One S3 configuration for the tier and the tables: the catalog (metadata) and Floe (data,
    manifests) write to the same bucket; Floe ignores the storage settings the catalog hands out."""
    bucket = moto.new_bucket("floe")
    storage = {"s3.endpoint": moto.endpoint, "s3.access-key-id": S3_ENV["AWS_ACCESS_KEY_ID"],
               "s3.secret-access-key": S3_ENV["AWS_SECRET_ACCESS_KEY"], "s3.region": S3_ENV["AWS_REGION"],
               "s3.force-virtual-addressing": "false"}
    server = rest_server(f"s3://{bucket.bucket}/lake", token=TOKEN, storage=storage)
    workdir = tmp_path / "broker"
    workdir.mkdir()
    b = TierBroker(floe_binary, workdir,
                   ["--object-store", f"s3://{bucket.bucket}/floe", "--iceberg-warehouse", f"s3://{bucket.bucket}/lake",
                    "--iceberg-catalog", "rest", "--iceberg-catalog-uri", server.uri],
                   env={**s3_env(moto.endpoint), "FLOE_ICEBERG_CATALOG_TOKEN": TOKEN}, bucket=bucket)
    request.node._floe_brokers = [*getattr(request.node, "_floe_brokers", []), b]
    try:
        b.start()
        topic = b.create_topic(unique_topic("rest-s3"), partitions=2, **{"iceberg.mode": "key_value", **LAG})
        records = make_records(300, seed=51, partitions=2)
        base = recent_hour_base()
        for i, r in enumerate(records):
            r.timestamp = base + i
        reports = produce(b.bootstrap, topic, records)
        hwm = high_watermarks(reports, 2)
        wait_projected(b, topic, hwm, rows=len(records), timeout=PROJECT_TIMEOUT)

        tbl = rest_table(server, topic)
        assert tbl.location() == f"s3://{bucket.bucket}/lake/{NAMESPACE}/{topic}", tbl.location()
        want = expected_rows(records, reports)
        assert_rows(pyiceberg_rows(tbl), want, "pyiceberg RestCatalog on S3")
        con = duckdb_connect()
        host = moto.endpoint.split("://", 1)[1]
        con.execute(f"CREATE SECRET moto (TYPE S3, KEY_ID '{S3_ENV['AWS_ACCESS_KEY_ID']}', "
                    f"SECRET '{S3_ENV['AWS_SECRET_ACCESS_KEY']}', REGION '{S3_ENV['AWS_REGION']}', ENDPOINT '{host}', "
                    "URL_STYLE 'path', USE_SSL false)")
        assert_rows(duckdb_rows(con, tbl.metadata_location), want, "DuckDB iceberg_scan on S3")
        assert next_offsets(tbl) == hwm

        keys = bucket.all_keys()
        table_keys = [k for k in keys if k.startswith(f"lake/{NAMESPACE}/{topic}/")]
        assert any(k.endswith(".parquet") for k in table_keys), sorted(keys)[:20]
        assert any(k.endswith(".metadata.json") for k in table_keys), sorted(keys)[:20]
        assert not [k for k in keys if k.startswith("floe/iceberg/")], "tables in the tier's prefix"
    finally:
        b.close()


# --- schema evolution ----------------------------------------------------------------------------------


def test_schema_evolution_commits_through_rest(make_broker, rest_server, tmp_path, monkeypatch):
    lake = tmp_path / "lake"
    server = rest_server(f"file://{lake}", token=TOKEN)
    monkeypatch.setenv("FLOE_ICEBERG_CATALOG_TOKEN", TOKEN)
    broker = make_broker(tmp_path / "broker", *rest_args(server, lake))
    topic = unique_topic("rest-evolve")
    base = recent_hour_base()
    v1 = [{"id": i, "name": f"old {i}"} for i in range(30)]
    v2 = [{"id": 5_000_000_000 + i, "name": f"new {i}", "email": None if i % 5 == 0 else f"u{i}@example.com"}
          for i in range(30)]
    rec1 = [Rec(key=b"a%d" % i, value=v, partition=0, timestamp=base + i)
            for i, v in enumerate(avro_values(broker, topic, USER_V1, v1))]
    broker.create_topic(topic, partitions=1, **{"iceberg.mode": "value_schema_id_prefix", **LAG})
    rep1 = produce(broker.bootstrap, topic, rec1)
    wait_projected(broker, topic, high_watermarks(rep1, 1), rows=len(rec1), timeout=PROJECT_TIMEOUT)
    before = rest_table(server, topic)
    assert column_types(before) == {"kafka": column_types(before)["kafka"], "id": "int", "name": "string"}
    commits_before = len(server.commits)

    rec2 = [Rec(key=b"b%d" % i, value=v, partition=0, timestamp=base + 1000 + i)
            for i, v in enumerate(avro_values(broker, topic, USER_V2, v2))]
    rep2 = produce(broker.bootstrap, topic, rec2)
    assert registry(broker).get_latest_version(f"{topic}-value").version == 2
    hwm = high_watermarks(rep1 + rep2, 1)
    wait_projected(broker, topic, hwm, rows=len(rec1) + len(rec2), timeout=PROJECT_TIMEOUT)

    after = rest_table(server, topic)
    types = column_types(after)
    assert types == {"kafka": types["kafka"], "id": "long", "name": "string", "email": "string"}, types
    assert not after.schema().find_field("email").required, "the new column must be optional"
    assert len(after.metadata.schemas) == len(before.metadata.schemas) + 1
    old_ids = {f.name: f.field_id for f in before.schema().fields}
    new_ids = {f.name: f.field_id for f in after.schema().fields}
    assert {k: new_ids[k] for k in old_ids} == old_ids, f"field ids changed: {old_ids} -> {new_ids}"
    # The schema change and the rows that need it: one commit through the catalog.
    evolving = [c for c in server.commits[commits_before:] if "add-schema" in c]
    assert len(evolving) == 1 and "set-current-schema" in evolving[0] and "add-snapshot" in evolving[0], \
        f"commits since V2: {server.commits[commits_before:]}"

    want = expected_rows(rec1 + rec2, rep1 + rep2, [{**v, "email": None} for v in v1] + v2)
    assert_rows(pyiceberg_rows(after), want, "pyiceberg RestCatalog")
    assert_duckdb_rows(after, want)
    assert next_offsets(after) == hwm


# --- crashes and lost answers ----------------------------------------------------------------------------


def log_rows(broker, topic: str) -> list[dict]:
    log = consume_all(broker.bootstrap, topic)
    return sorted(({"kafka": {"partition": m.partition, "offset": m.offset, "timestamp": micros(m.timestamp[1]),
                              "timestamp_type": 0, "key": m.key,
                              "headers": [{"key": k, "value": v} for k, v in m.headers]},
                    "value": m.value} for ms in log.values() for m in ms),
                  key=lambda r: (r["kafka"]["partition"], r["kafka"]["offset"]))


def assert_exactly_once(broker, server, topic: str) -> None:
    marks = watermarks(broker.bootstrap, topic)
    hwm = {p: hi for p, (_, hi) in marks.items()}
    total = sum(hwm.values())
    wait_projected(broker, topic, hwm, rows=None, timeout=PROJECT_TIMEOUT)
    tbl = rest_table(server, topic)
    rows = pyiceberg_rows(tbl)
    keys = [(r["kafka"]["partition"], r["kafka"]["offset"]) for r in rows]
    assert len(keys) == len(set(keys)), f"{len(keys) - len(set(keys))} duplicate (partition, offset) rows"
    want = log_rows(broker, topic)
    assert len(want) == total
    assert_rows(rows, want, "pyiceberg RestCatalog")
    con = duckdb_connect()
    dup = con.execute(f"SELECT count(*), count(DISTINCT (kafka.partition, kafka.offset)) "
                      f"FROM iceberg_scan('{tbl.metadata_location}')").fetchone()
    assert dup == (total, total), f"DuckDB: (rows, distinct (partition, offset)) = {dup}, expected {total}"
    assert next_offsets(tbl) == hwm
    ids = commit_ids(tbl)
    assert None not in ids and len(set(ids)) == len(ids), f"a commit made two snapshots: {ids}"


def test_kill9_during_projection_rest(make_broker, rest_server, tmp_path, monkeypatch):
    lake = tmp_path / "lake"
    server = rest_server(f"file://{lake}", token=TOKEN)
    monkeypatch.setenv("FLOE_ICEBERG_CATALOG_TOKEN", TOKEN)
    broker = make_broker(tmp_path / "broker", *rest_args(server, lake))
    partitions = 2
    topic = broker.create_topic(unique_topic("rest-crash"), partitions=partitions,
                                **{"iceberg.mode": "key_value", **LAG})
    rnd = random.Random(20261203)
    base = recent_hour_base()
    first = make_records(2000, seed=21, partitions=partitions)
    more = make_records(1500, seed=22, partitions=partitions)
    for i, r in enumerate(first + more):
        r.timestamp = base + i
    produce(broker.bootstrap, topic, first)

    thread, producer_error = paced_producer(broker.bootstrap, topic, more, "rest-crash-producer")
    for round_ in range(2):
        wait_until(lambda: (topic_status(broker, topic) or {}).get("commits", 0) >= 1 or not thread.is_alive(),
                   PROJECT_TIMEOUT, f"a commit of {topic} (round {round_})", interval=0.2)
        time.sleep(rnd.uniform(0.0, 1.2))
        broker.kill()
        broker.start()
    thread.join(timeout=180)
    assert not thread.is_alive(), "the background producer did not finish"
    assert not producer_error, f"background produce failed: {producer_error[0]!r}"
    assert_exactly_once(broker, server, topic)


def test_lost_commit_answer_and_conflict_apply_once(make_broker, rest_server, tmp_path, monkeypatch):
    """The catalog applies a commit and its answer is lost (502): Floe finds its commit id in the
    table and goes on without a second snapshot. A 409 conflict: retried, applied once."""
    lake = tmp_path / "lake"
    server = rest_server(f"file://{lake}", token=TOKEN)
    monkeypatch.setenv("FLOE_ICEBERG_CATALOG_TOKEN", TOKEN)
    broker = make_broker(tmp_path / "broker", *rest_args(server, lake))
    topic = broker.create_topic(unique_topic("rest-lost"), partitions=2, **{"iceberg.mode": "key_value", **LAG})
    base = recent_hour_base()
    records = make_records(600, seed=31, partitions=2)
    for i, r in enumerate(records):
        r.timestamp = base + i

    server.inject("lose_commit_answer")
    produce(broker.bootstrap, topic, records[:300])
    wait_until(lambda: not server.faults, PROJECT_TIMEOUT, "the commit whose answer is lost")
    assert_exactly_once(broker, server, topic)
    assert "commit already applied; answering with the table as is" in broker.log_text(), \
        "Floe did not recognise its applied commit"

    server.inject("conflict")
    produce(broker.bootstrap, topic, records[300:])
    wait_until(lambda: not server.faults, PROJECT_TIMEOUT, "the conflicting commit")
    assert_exactly_once(broker, server, topic)
    st = topic_status(broker, topic)
    assert st["rows"] == len(records), st


# --- where tables go ---------------------------------------------------------------------------------------


def test_catalog_without_warehouse_gets_floe_location(make_broker, rest_server, tmp_path):
    """The catalog chooses no location (it has no warehouse): Floe asks for one in its own."""
    server = rest_server(None)
    broker = make_broker(tmp_path / "broker", "--iceberg-catalog", "rest", "--iceberg-catalog-uri", server.uri)
    topic = broker.create_topic(unique_topic("rest-loc"), partitions=1, **{"iceberg.mode": "key_value", **LAG})
    records = make_records(40, seed=41, partitions=1)
    base = recent_hour_base()
    for i, r in enumerate(records):
        r.timestamp = base + i
    reports = produce(broker.bootstrap, topic, records)
    wait_projected(broker, topic, high_watermarks(reports, 1), rows=len(records), timeout=PROJECT_TIMEOUT)
    tbl = rest_table(server, topic)
    assert tbl.location() == f"file://{broker.data_dir / 'bucket' / 'iceberg'}/{NAMESPACE}/{topic}", tbl.location()
    assert_rows(pyiceberg_rows(tbl), expected_rows(records, reports), "pyiceberg RestCatalog")


def test_table_outside_floe_warehouse_is_refused(make_broker, rest_server, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    server = rest_server(f"file://{elsewhere}")
    broker = make_broker(tmp_path / "broker", "--iceberg-catalog", "rest", "--iceberg-catalog-uri", server.uri)
    topic = broker.create_topic(unique_topic("rest-out"), partitions=1, **{"iceberg.mode": "key_value", **LAG})
    produce(broker.bootstrap, topic, make_records(10, seed=42, partitions=1))
    st = wait_until(lambda: (s := topic_status(broker, topic)) and s.get("last_error") and s,
                    PROJECT_TIMEOUT, "the projection error", interval=0.2)
    assert st["state"] == "error", st
    assert "outside Floe's Iceberg warehouse" in st["last_error"] and str(elsewhere) in st["last_error"], st
    assert not list(elsewhere.rglob("*.parquet")), "data files were written outside Floe's warehouse"


# --- https ------------------------------------------------------------------------------------------------------


def test_https_catalog(make_broker, rest_server, tmp_path, monkeypatch):
    """An https catalog whose CA the system trusts (SSL_CERT_FILE): Floe projects through it.
    Without that CA, startup fails: the server is not trusted."""
    ca, cert, key = make_certificates(tmp_path / "tls")
    lake = tmp_path / "lake"
    server = rest_server(f"file://{lake}", token=TOKEN, tls=(cert, key))
    assert server.uri.startswith("https://")
    monkeypatch.setenv("FLOE_ICEBERG_CATALOG_TOKEN", TOKEN)

    untrusted = make_broker(tmp_path / "untrusted", *rest_args(server, lake), start=False)
    with pytest.raises(BrokerError) as err:
        untrusted.start(timeout=60)
    assert f"cannot reach the Iceberg REST catalog at {server.uri}" in str(err.value), str(err.value)[-2000:]

    monkeypatch.setenv("SSL_CERT_FILE", str(ca))
    broker = make_broker(tmp_path / "broker", *rest_args(server, lake))
    topic = broker.create_topic(unique_topic("rest-tls"), partitions=1, **{"iceberg.mode": "key_value", **LAG})
    records = make_records(50, seed=61, partitions=1)
    base = recent_hour_base()
    for i, r in enumerate(records):
        r.timestamp = base + i
    reports = produce(broker.bootstrap, topic, records)
    wait_projected(broker, topic, high_watermarks(reports, 1), rows=len(records), timeout=PROJECT_TIMEOUT)
    # pyiceberg's client (requests) trusts the CA through REQUESTS_CA_BUNDLE.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(ca))
    client = RestCatalog("floe-test-reader", **server.client_properties())
    tbl = client.load_table((NAMESPACE, topic))
    assert_rows(pyiceberg_rows(tbl), expected_rows(records, reports), "pyiceberg RestCatalog over https")


# --- startup --------------------------------------------------------------------------------------------------


def test_unreachable_catalog_fails_startup(make_broker, tmp_path):
    (port,) = free_ports(1)
    uri = f"http://127.0.0.1:{port}"
    b = make_broker(tmp_path / "a", "--iceberg-catalog", "rest", "--iceberg-catalog-uri", uri, start=False)
    with pytest.raises(BrokerError) as err:
        b.start(timeout=60)
    assert b.proc.poll() not in (None, 0), "floe kept running with an unreachable catalog"
    assert f"cannot reach the Iceberg REST catalog at {uri}" in str(err.value), str(err.value)[-2000:]

    b = make_broker(tmp_path / "b", "--iceberg-catalog", "rest", start=False)
    with pytest.raises(BrokerError) as err:
        b.start(timeout=60)
    assert "--iceberg-catalog rest needs the catalog's URI" in str(err.value), str(err.value)[-2000:]
