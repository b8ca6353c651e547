"""Helpers for the Iceberg projection end-to-end tests, test_iceberg.py.

The tables are read the way a user reads them, never through floe:

- `LocalWarehouse` / `S3Warehouse`: where a broker's tables live (`<object store>/iceberg/
  <namespace>/<topic>`), the newest `vN.metadata.json` (by listing, not by the hint) and its
  JSON, and the properties a reader needs (S3 endpoint and keys for moto).
- `pyiceberg_table`, `pyiceberg_rows`: pyiceberg's `StaticTable.from_metadata` on the newest
  metadata, a full scan as a list of dicts.
- `duckdb_connect`, `duckdb_rows`: DuckDB with the iceberg/avro/httpfs extensions installed
  offline from their wheels into a private directory; `iceberg_scan` of the table directory
  (follows `version-hint.text`) or of a metadata file.
- `iceberg_status`, `wait_projected`: `floe iceberg status [TOPIC] --json --admin`, and a wait
  until a topic's table holds exactly the expected rows with every partition projected up to
  its high watermark.
- `plain`: one comparable form for both readers (timestamps as epoch microseconds).
"""

from __future__ import annotations

import datetime as dt
import glob
import importlib.util
import json
import os
import re
import subprocess
import tempfile
import time
from decimal import Decimal
from pathlib import Path

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
HOUR_MS = 3_600_000
_VERSION = re.compile(r"^v(\d+)\.metadata\.json$")


# --- values ------------------------------------------------------------------------------


def micros(ms: int) -> int:
    return ms * 1000


def plain(v):
    """The same value from pyiceberg and DuckDB: datetimes -> epoch microseconds (naive ones
    read as UTC), dates -> ISO text, structs -> dicts, lists -> lists (map entries as pairs)."""
    if isinstance(v, dt.datetime):
        if v.tzinfo is None:
            v = v.replace(tzinfo=dt.timezone.utc)
        delta = v - EPOCH
        return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    if isinstance(v, dt.date):
        return v.isoformat()
    if isinstance(v, dict):
        return {k: plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [plain(x) for x in v]
    if isinstance(v, memoryview):
        return bytes(v)
    if isinstance(v, Decimal):
        return v
    return v


def row_key(row: dict) -> tuple[int, int]:
    return row["kafka"]["partition"], row["kafka"]["offset"]


def sort_rows(rows: list[dict]) -> list[dict]:
    return sorted(rows, key=row_key)


def high_watermarks(reports: list[tuple[int, int]], partitions: int) -> dict[int, int]:
    """{partition: next offset} from delivery reports (every partition listed)."""
    out = {p: 0 for p in range(partitions)}
    for p, o in reports:
        out[p] = max(out[p], o + 1)
    return out


def first_difference(got: list, want: list, what: str = "rows") -> str:
    """A short description of how two lists of rows differ (count, first differing index)."""
    if len(got) != len(want):
        gk = {row_key(r) for r in got} if got and isinstance(got[0], dict) and "kafka" in got[0] else None
        wk = {row_key(r) for r in want} if want and isinstance(want[0], dict) and "kafka" in want[0] else None
        extra = ""
        if gk is not None and wk is not None:
            extra = (f"; missing (partition, offset): {sorted(wk - gk)[:10]}, unexpected: {sorted(gk - wk)[:10]}, "
                     f"duplicates: {len(got) - len(gk)}")
        return f"{len(got)} {what}, expected {len(want)}{extra}"
    for i, (g, w) in enumerate(zip(got, want)):
        if g != w:
            return f"{what}[{i}] differs:\n  got  {_short(g)}\n  want {_short(w)}"
    return "equal"


def _short(v, limit: int = 600) -> str:
    s = repr(v)
    return s if len(s) <= limit else s[:limit] + "..."


# --- where tables live ------------------------------------------------------------------------


class LocalWarehouse:
    """Tables of a broker whose object store is a directory (the default `<data-dir>/bucket`)."""

    def __init__(self, bucket_root: Path, namespace: str = "floe"):
        self.root = Path(bucket_root) / "iceberg"
        self.namespace = namespace
        self.properties: dict[str, str] = {}

    def table_dir(self, table: str) -> Path:
        return self.root / self.namespace / table

    def location(self, table: str) -> str:
        """What a reader is given for the table directory."""
        return str(self.table_dir(table))

    def exists(self, table: str) -> bool:
        return self.table_dir(table).exists()

    def metadata_names(self, table: str) -> list[str]:
        d = self.table_dir(table) / "metadata"
        try:
            return os.listdir(d)
        except FileNotFoundError:
            return []

    def read(self, table: str, rel: str) -> bytes | None:
        try:
            return (self.table_dir(table) / rel).read_bytes()
        except FileNotFoundError:
            return None

    def metadata_location(self, table: str, version: int) -> str:
        return str(self.table_dir(table) / "metadata" / f"v{version}.metadata.json")

    def data_files(self, table: str) -> list[str]:
        d = self.table_dir(table) / "data"
        return sorted(str(p.relative_to(d)) for p in d.rglob("*.parquet")) if d.exists() else []

    def duckdb_setup(self, con) -> None:
        pass

    # shared with S3Warehouse

    def versions(self, table: str) -> list[int]:
        return sorted(int(m.group(1)) for n in self.metadata_names(table) if (m := _VERSION.match(n)))

    def newest(self, table: str) -> int | None:
        v = self.versions(table)
        return v[-1] if v else None

    def metadata(self, table: str, version: int | None = None) -> dict | None:
        """The JSON of vN.metadata.json (the newest when version is None)."""
        version = self.newest(table) if version is None else version
        if version is None:
            return None
        raw = self.read(table, f"metadata/v{version}.metadata.json")
        return None if raw is None else json.loads(raw)

    def version_hint(self, table: str) -> str | None:
        raw = self.read(table, "metadata/version-hint.text")
        return None if raw is None else raw.decode().strip()


class S3Warehouse(LocalWarehouse):
    """Tables of a broker whose object store is `s3://<bucket>/<prefix>` on moto."""

    def __init__(self, client, bucket: str, prefix: str, endpoint: str, access_key: str, secret_key: str,
                 region: str = "us-east-1", namespace: str = "floe"):
        self.client = client
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.endpoint = endpoint
        self.namespace = namespace
        self.access_key, self.secret_key, self.region = access_key, secret_key, region
        self.properties = {
            "s3.endpoint": endpoint,
            "s3.access-key-id": access_key,
            "s3.secret-access-key": secret_key,
            "s3.region": region,
            "s3.force-virtual-addressing": "false",
        }

    def _key(self, table: str, rel: str = "") -> str:
        base = f"{self.prefix}/iceberg/{self.namespace}/{table}" if self.prefix else f"iceberg/{self.namespace}/{table}"
        return f"{base}/{rel}" if rel else base

    def location(self, table: str) -> str:
        return f"s3://{self.bucket}/{self._key(table)}"

    def _list(self, prefix: str) -> list[str]:
        out = []
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
            out += [o["Key"] for o in page.get("Contents", [])]
        return out

    def exists(self, table: str) -> bool:
        return bool(self._list(self._key(table) + "/"))

    def metadata_names(self, table: str) -> list[str]:
        prefix = self._key(table, "metadata/")
        return [k[len(prefix):] for k in self._list(prefix)]

    def read(self, table: str, rel: str) -> bytes | None:
        try:
            return self.client.get_object(Bucket=self.bucket, Key=self._key(table, rel))["Body"].read()
        except self.client.exceptions.NoSuchKey:
            return None

    def metadata_location(self, table: str, version: int) -> str:
        return f"{self.location(table)}/metadata/v{version}.metadata.json"

    def data_files(self, table: str) -> list[str]:
        prefix = self._key(table, "data/")
        return sorted(k[len(prefix):] for k in self._list(prefix) if k.endswith(".parquet"))

    def duckdb_setup(self, con) -> None:
        host = self.endpoint.split("://", 1)[-1]
        con.execute(
            f"CREATE OR REPLACE SECRET floe_moto (TYPE S3, KEY_ID '{self.access_key}', SECRET '{self.secret_key}', "
            f"REGION '{self.region}', ENDPOINT '{host}', URL_STYLE 'path', USE_SSL false)"
        )


# --- pyiceberg ---------------------------------------------------------------------------------


def pyiceberg_table(wh: LocalWarehouse, table: str, version: int | None = None):
    """pyiceberg's StaticTable on vN.metadata.json (the newest when version is None)."""
    from pyiceberg.table import StaticTable

    version = wh.newest(table) if version is None else version
    assert version is not None, f"table {table}: no vN.metadata.json at {wh.location(table)}/metadata"
    return StaticTable.from_metadata(wh.metadata_location(table, version), properties=dict(wh.properties))


def pyiceberg_rows(tbl) -> list[dict]:
    """Every row of the table's current snapshot, sorted by (kafka.partition, kafka.offset)."""
    return sort_rows([plain(r) for r in tbl.scan().to_arrow().to_pylist()])


def column_types(tbl) -> dict[str, str]:
    """{top-level column: pyiceberg type text} of the current schema."""
    return {f.name: str(f.field_type) for f in tbl.schema().fields}


def file_partitions(tbl) -> list[tuple[str, dict, int]]:
    """(data file path, partition values, record count) of every live data file."""
    files = tbl.inspect.files().to_pylist()
    return [(f["file_path"], f["partition"], f["record_count"]) for f in files if f["content"] == 0]


# --- DuckDB ------------------------------------------------------------------------------------

_EXTENSIONS = ("avro", "httpfs", "iceberg")
_EXT_DIR = None


def _extension_file(name: str) -> str:
    spec = importlib.util.find_spec(f"duckdb_extension_{name}")
    assert spec is not None, f"duckdb-extension-{name} is not installed (tests/requirements.txt)"
    base = os.path.dirname(spec.origin) if spec.origin else list(spec.submodule_search_locations)[0]
    found = glob.glob(os.path.join(base, "extensions", "*", f"{name}.duckdb_extension"))
    assert found, f"no {name}.duckdb_extension under {base}/extensions"
    return found[0]


def duckdb_connect(wh: LocalWarehouse | None = None):
    """An in-memory DuckDB with iceberg, avro and httpfs loaded from their wheels (no network),
    UTC session time zone, and the warehouse's S3 secret when it has one."""
    import duckdb

    global _EXT_DIR
    if _EXT_DIR is None:
        _EXT_DIR = tempfile.mkdtemp(prefix="floe-duckdb-ext-")
    con = duckdb.connect(config={"extension_directory": _EXT_DIR, "autoinstall_known_extensions": False,
                                 "autoload_known_extensions": False})
    for name in _EXTENSIONS:
        con.execute(f"INSTALL '{_extension_file(name)}'")
        con.execute(f"LOAD {name}")
    con.execute("SET TimeZone = 'UTC'")
    if wh is not None:
        wh.duckdb_setup(con)
    return con


def duckdb_rows(con, location: str, where: str = "") -> list[dict]:
    """`SELECT * FROM iceberg_scan(location)` as plain dicts sorted by (partition, offset)."""
    sql = f"SELECT * FROM iceberg_scan('{location}') {where}"
    return sort_rows([plain(r) for r in con.execute(sql).to_arrow_table().to_pylist()])


# --- floe iceberg status --------------------------------------------------------------------------


def iceberg_status(broker, topic: str | None = None, check: bool = True) -> dict:
    """`floe iceberg status [TOPIC] --json --admin <admin addr>` parsed."""
    cmd = [str(broker.binary), "iceberg", "status", *([topic] if topic else []), "--json", "--admin", broker.admin_addr]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    if res.returncode != 0:
        if check:
            raise AssertionError(f"`{' '.join(cmd)}` exited {res.returncode}\n{res.stdout}\n{res.stderr}")
        return {"error": (res.stdout + res.stderr).strip()}
    return json.loads(res.stdout)


def topic_status(broker, topic: str) -> dict | None:
    doc = iceberg_status(broker, topic, check=False)
    for t in doc.get("topics") or []:
        if t.get("topic") == topic:
            return t
    return None


def describe(st: dict | None) -> str:
    if not st:
        return "no status for the topic"
    parts = ", ".join(f"p{p['partition']} {p['projected_offset']}/{p['high_watermark']}" for p in st.get("partitions", []))
    return (f"state {st.get('state')}, rows {st.get('rows')}, dlq_rows {st.get('dlq_rows')}, dropped "
            f"{st.get('dropped_records')}, commits {st.get('commits')}, partitions [{parts}], "
            f"last_error {st.get('last_error')!r}")


def wait_projected(broker, topic: str, hwm: dict[int, int], rows: int | None = None,
                   timeout: float = 60.0, dlq_rows: int | None = None, dropped: int | None = None) -> dict:
    """Wait until `floe iceberg status` shows every partition of `topic` projected to its
    high watermark `hwm[p]` (with no lag) and, when given, exactly `rows` rows in the table,
    `dlq_rows` in the DLQ table and `dropped` records dropped. Returns the status."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        st = topic_status(broker, topic)
        last = st
        if st is not None:
            parts = {p["partition"]: p for p in st.get("partitions", [])}
            done = (
                sorted(parts) == sorted(hwm)
                and all(parts[p]["projected_offset"] == hwm[p] and parts[p]["high_watermark"] == hwm[p]
                        and parts[p]["lag_records"] == 0 for p in hwm)
                and (rows is None or st.get("rows") == rows)
                and (dlq_rows is None or st.get("dlq_rows") == dlq_rows)
                and (dropped is None or st.get("dropped_records") == dropped)
            )
            if done:
                return st
        if time.monotonic() > deadline:
            raise AssertionError(
                f"{topic}: not projected within {timeout:.0f}s: want offsets {hwm}, rows {rows}, dlq_rows {dlq_rows}, "
                f"dropped {dropped}; status: {describe(last)}"
            )
        time.sleep(0.5)


def next_offsets(metadata: dict) -> dict[int, int]:
    """`floe.next-offset.<partition>` of the current snapshot's summary."""
    current = metadata.get("current-snapshot-id")
    snap = next((s for s in metadata.get("snapshots", []) if s["snapshot-id"] == current), None)
    if snap is None:
        return {}
    return {int(k.rsplit(".", 1)[1]): int(v) for k, v in snap["summary"].items()
            if k.startswith("floe.next-offset.")}


def paced_producer(bootstrap: str, topic: str, records, name: str):
    """Start producing `records` in the background, 100 at a time every 0.1 s, with an
    idempotent producer that rides out broker restarts. Returns (thread, errors): errors gets
    any exception, for the test thread to report."""
    import threading

    from floe_harness import produce

    errors: list = []

    def run():
        try:
            for start in range(0, len(records), 100):
                produce(bootstrap, topic, records[start:start + 100],
                        conf={"enable.idempotence": True, "message.timeout.ms": 120_000}, timeout=150)
                time.sleep(0.1)
        except BaseException as e:  # noqa: BLE001 - reported by the test thread
            errors.append(e)

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    return thread, errors
