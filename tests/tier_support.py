"""Helpers for the tiered-storage (shadow index) end-to-end tests, test_tiered_storage.py.

- `TierBroker`: a `floe serve` (floe_harness.Broker) with extra environment (AWS_*),
  knowing its object store; `partition_dir`, `local_log_bytes`, `local_segments`.
- `FileBucket` / `S3Bucket`: read-only views of the object store, read directly (never
  through floe): keys and sizes, manifests, missing objects.
- `MotoServer`: `moto_server` (an S3-compatible server) as a subprocess.
- `FaultProxy`: an HTTP proxy between floe and moto that can answer 503 to everything
  ("down"), hang requests ("hang"), add latency, or fail a fraction of GETs with a 503
  or a truncated body.
- `RecordGen`: deterministic ~1 KiB records (printable values, so kcat output can be
  parsed): record i goes to offset i of a fresh single-partition topic.
- `produce_records`: an idempotent acks=all producer with delivery bookkeeping,
  optional pacing and a progress callback.
- `verify_confluent`, `verify_kcat`: read a partition from offset 0 and compare every
  record with what RecordGen produced, streaming (no 100 MB lists).
- `scrape_metrics`, `LocalSampler`.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import random
import re
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from floe_harness import Broker, free_ports, unique_topic

MiB = 1 << 20


# --- the broker --------------------------------------------------------------------------


class TierBroker(Broker):
    """A Broker whose process gets `env` on top of os.environ and knows its object store."""

    def __init__(self, binary, workdir, extra_args=(), env: dict | None = None, bucket=None):
        super().__init__(binary, workdir, tuple(extra_args))
        self.env = dict(env or {})
        self.bucket = bucket if bucket is not None else FileBucket(self.data_dir / "bucket")

    def start(self, timeout: float | None = None) -> None:
        # Broker.start copies os.environ for the child: lend it our variables for that moment.
        saved = {k: os.environ.get(k) for k in self.env}
        os.environ.update(self.env)
        try:
            if timeout is None:
                super().start()
            else:
                super().start(timeout)
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v

    def partition_dir(self, topic: str, partition: int = 0) -> Path:
        return self.data_dir / f"{topic}-{partition}"

    def local_segments(self, topic: str, partition: int = 0) -> dict[int, int]:
        """{base offset: size} of the partition's local .log segments."""
        out = {}
        d = self.partition_dir(topic, partition)
        try:
            names = os.listdir(d)
        except FileNotFoundError:
            return out
        for name in names:
            if name.endswith(".log") and name[:-4].isdigit():
                try:
                    out[int(name[:-4])] = os.stat(d / name).st_size
                except FileNotFoundError:
                    pass  # deleted by retention between listdir and stat
        return out

    def local_log_bytes(self, topic: str, partition: int = 0) -> int:
        return sum(self.local_segments(topic, partition).values())

    def metrics(self) -> dict[tuple[str, frozenset], float]:
        return scrape_metrics(self.admin_addr)

    def admin_get(self, path: str, timeout: float = 30.0):
        """GET http://<admin><path> -> (status, body bytes)."""
        try:
            with urllib.request.urlopen(f"http://{self.admin_addr}{path}", timeout=timeout) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()


# --- metrics -----------------------------------------------------------------------------

_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)')
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def scrape_metrics(admin_addr: str) -> dict[tuple[str, frozenset], float]:
    """GET /metrics -> {(name, frozenset(labels.items())): value}."""
    with urllib.request.urlopen(f"http://{admin_addr}/metrics", timeout=10) as r:
        text = r.read().decode()
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _SAMPLE.match(line)
        if not m:
            continue
        labels = frozenset(_LABEL.findall(m.group(2) or ""))
        try:
            out[(m.group(1), labels)] = float(m.group(3))
        except ValueError:
            pass
    return out


def metric_sum(metrics: dict, name: str, **labels) -> float | None:
    """Sum of the series `name` (any suffix-free match) whose labels include `labels`; None if absent."""
    want = set(labels.items())
    vals = [v for (n, ls), v in metrics.items() if n == name and want <= set(ls)]
    return sum(vals) if vals else None


def upload_lag(broker: TierBroker, topic: str, partition: int = 0) -> float | None:
    return metric_sum(broker.metrics(), "floe_tier_upload_lag_offsets", topic=topic, partition=str(partition))


# --- object store views ------------------------------------------------------------------


class BucketView:
    """Read-only view of the object store: keys relative to the floe prefix."""

    def keys(self, prefix: str = "") -> dict[str, int]:  # key -> size
        raise NotImplementedError

    def get(self, key: str) -> bytes | None:
        raise NotImplementedError

    def manifest(self, topic: str, partition: int = 0) -> dict | None:
        raw = self.get(f"topics/{topic}/{partition}/manifest.json")
        return None if raw is None else json.loads(raw)

    def topic_manifest(self, topic: str) -> dict | None:
        raw = self.get(f"topics/{topic}/topic.json")
        return None if raw is None else json.loads(raw)

    def remote_end(self, topic: str, partition: int = 0) -> int:
        """The manifest's next offset (0 when there is no manifest yet)."""
        m = self.manifest(topic, partition)
        if not m:
            return 0
        segs = m.get("segments") or []
        return max(m.get("remote_start_offset", 0), segs[-1]["last_offset"] + 1 if segs else 0)

    def manifest_problems(self, topic: str, partition: int = 0) -> list[str]:
        """Every way the manifest disagrees with the objects: entries whose .log or .index is
        missing or of another size, overlapping or unsorted entries."""
        m = self.manifest(topic, partition)
        if m is None:
            return []
        objects = self.keys(f"topics/{topic}/{partition}/")
        problems = []
        prev_last = None
        for s in m["segments"]:
            stem = f"topics/{topic}/{partition}/{s['base_offset']:020d}-{s['last_offset']:020d}-{s['epoch']}"
            log_size = objects.get(stem + ".log")
            if log_size is None:
                problems.append(f"{stem}.log listed in the manifest but missing")
            elif log_size != s["size_bytes"]:
                problems.append(f"{stem}.log is {log_size} bytes, manifest says {s['size_bytes']}")
            if objects.get(stem + ".index") is None:
                problems.append(f"{stem}.index listed in the manifest but missing")
            elif "index_size" in s and objects[stem + ".index"] != s["index_size"]:
                problems.append(f"{stem}.index is {objects[stem + '.index']} bytes, manifest says {s['index_size']}")
            if s["base_offset"] > s["last_offset"]:
                problems.append(f"{stem}: base > last")
            if prev_last is not None and s["base_offset"] <= prev_last:
                problems.append(f"{stem} overlaps or precedes the previous entry (last {prev_last})")
            prev_last = s["last_offset"]
        return problems


class FileBucket(BucketView):
    def __init__(self, root: Path, prefix: str = ""):
        self.root = Path(root)
        self.prefix = prefix.strip("/")

    def _base(self) -> Path:
        return self.root / self.prefix if self.prefix else self.root

    def keys(self, prefix: str = "") -> dict[str, int]:
        base = self._base()
        out = {}
        start = base / prefix if prefix else base
        start = start if start.is_dir() else start.parent
        for dirpath, _dirs, files in os.walk(start):
            for f in files:
                p = Path(dirpath) / f
                rel = p.relative_to(base).as_posix()
                if rel.startswith(prefix):
                    try:
                        out[rel] = p.stat().st_size
                    except FileNotFoundError:
                        pass
        return out

    def get(self, key: str) -> bytes | None:
        try:
            return (self._base() / key).read_bytes()
        except (FileNotFoundError, IsADirectoryError):
            return None


class S3Bucket(BucketView):
    def __init__(self, client, bucket: str, prefix: str = ""):
        self.client = client
        self.bucket = bucket
        self.prefix = prefix.strip("/")

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def keys(self, prefix: str = "") -> dict[str, int]:
        out = {}
        cut = len(self.prefix) + 1 if self.prefix else 0
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self._key(prefix))
        for page in pages:
            for o in page.get("Contents", []):
                out[o["Key"][cut:]] = o["Size"]
        return out

    def all_keys(self) -> dict[str, int]:
        """Every object of the bucket, prefix included (to see nothing lands outside it)."""
        out = {}
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket):
            for o in page.get("Contents", []):
                out[o["Key"]] = o["Size"]
        return out

    def get(self, key: str) -> bytes | None:
        try:
            return self.client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"].read()
        except self.client.exceptions.NoSuchKey:
            return None


# --- moto ---------------------------------------------------------------------------------

S3_ENV = {
    "AWS_ACCESS_KEY_ID": "floe-test-key",
    "AWS_SECRET_ACCESS_KEY": "floe-test-secret",
    "AWS_REGION": "us-east-1",
    "AWS_ALLOW_HTTP": "true",
}


def moto_binary() -> str | None:
    import shutil
    import sys

    here = Path(sys.executable).parent / "moto_server"
    return str(here) if here.exists() else shutil.which("moto_server")


class MotoServer:
    """`moto_server -H 127.0.0.1 -p PORT` in its own process group."""

    def __init__(self, workdir: Path):
        self.workdir = Path(workdir)
        self.port = free_ports(1)[0]
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.log_path = self.workdir / "moto.log"
        self.proc = None

    def start(self, timeout: float = 30.0) -> None:
        binary = moto_binary()
        if binary is None:
            raise AssertionError("moto_server not found: pip install 'moto[s3]==5.2.5' flask flask-cors boto3")
        self.workdir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([binary, "-H", "127.0.0.1", "-p", str(self.port)], stdout=log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()
        deadline = time.monotonic() + timeout
        last = None
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"moto_server exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(self.endpoint + "/", timeout=2) as r:
                    if r.status == 200:
                        return
            except Exception as e:  # noqa: BLE001 - anything but 200 means not ready
                last = e
            if time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"moto_server not answering on {self.endpoint} in {timeout}s ({last!r})")
            time.sleep(0.1)

    def client(self):
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3", endpoint_url=self.endpoint, aws_access_key_id=S3_ENV["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=S3_ENV["AWS_SECRET_ACCESS_KEY"], region_name=S3_ENV["AWS_REGION"],
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 3}),
        )

    def new_bucket(self, prefix: str = "floe") -> S3Bucket:
        client = self.client()
        name = unique_topic("bucket").lower()
        client.create_bucket(Bucket=name)
        return S3Bucket(client, name, prefix)

    def drop_bucket(self, bucket: S3Bucket) -> None:
        """Free moto's memory: delete every object and the bucket (best effort)."""
        try:
            keys = list(bucket.all_keys())
            for i in range(0, len(keys), 1000):
                bucket.client.delete_objects(Bucket=bucket.bucket,
                                             Delete={"Objects": [{"Key": k} for k in keys[i:i + 1000]]})
            bucket.client.delete_bucket(Bucket=bucket.bucket)
        except Exception:  # noqa: BLE001
            pass

    def log_tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except FileNotFoundError:
            return "(no moto log)"

    def stop(self) -> None:
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.proc.wait(timeout=30)


def s3_env(endpoint: str) -> dict:
    return {**S3_ENV, "AWS_ENDPOINT_URL": endpoint}


# --- fault-injecting proxy ------------------------------------------------------------------

_HOP = {"connection", "keep-alive", "server", "date", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade",
        "content-length"}


class FaultProxy:
    """HTTP proxy to an S3 endpoint that injects faults.

    mode "ok": forward; "down": answer 503 SlowDown to every request at once; "hang": hold
    every request until the mode changes, then drop the connection without an answer (a
    timeout as the client sees it). `get_fault_ratio`: that fraction of GETs fail, half with
    a 503 and half with a body cut in the middle (full Content-Length announced, connection
    closed). `latency`: seconds added to every request.
    """

    def __init__(self, upstream_port: int, seed: int = 0):
        self.upstream = ("127.0.0.1", upstream_port)
        self.mode = "ok"
        self.get_fault_ratio = 0.0
        self.latency = 0.0
        self.rnd = random.Random(seed)
        self.lock = threading.Lock()
        self.counts: dict[str, int] = {}
        self.changed = threading.Condition()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                proxy._handle(self)

            do_PUT = do_POST = do_DELETE = do_HEAD = do_GET

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, name="fault-proxy", daemon=True)

    def start(self) -> "FaultProxy":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.set_mode("ok")
        self.server.shutdown()
        self.server.server_close()

    def set_mode(self, mode: str) -> None:
        assert mode in ("ok", "down", "hang"), mode
        with self.changed:
            self.mode = mode
            self.changed.notify_all()

    def count(self, what: str) -> None:
        with self.lock:
            self.counts[what] = self.counts.get(what, 0) + 1

    def _read_body(self, h) -> bytes:
        if h.headers.get("Transfer-Encoding", "").lower() == "chunked":
            parts = []
            while True:
                size = int(h.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while h.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(parts)
                parts.append(h.rfile.read(size))
                h.rfile.readline()
        n = int(h.headers.get("Content-Length") or 0)
        return h.rfile.read(n) if n else b""

    def _drop(self, h) -> None:
        h.close_connection = True
        try:
            h.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _handle(self, h) -> None:
        body = self._read_body(h)
        self.count(h.command)
        if self.latency:
            time.sleep(self.latency)
        mode = self.mode
        if mode == "hang":
            self.count("hung")
            with self.changed:
                self.changed.wait_for(lambda: self.mode != "hang", timeout=120)
            self._drop(h)
            return
        if mode == "down":
            self.count("503")
            self._send(h, 503, [("Content-Type", "application/xml")],
                       b"<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>SlowDown</Code>"
                       b"<Message>injected outage</Message></Error>")
            return
        fault = None
        if h.command == "GET" and self.get_fault_ratio:
            with self.lock:
                if self.rnd.random() < self.get_fault_ratio:
                    fault = self.rnd.choice(["503", "truncate"])
        if fault == "503":
            self.count("get-503")
            self._send(h, 503, [("Content-Type", "application/xml")],
                       b"<Error><Code>ServiceUnavailable</Code><Message>injected</Message></Error>")
            return
        headers = {k: v for k, v in h.headers.items() if k.lower() not in _HOP}
        conn = http.client.HTTPConnection(*self.upstream, timeout=60)
        try:
            conn.request(h.command, h.path, body=body if body or h.command in ("PUT", "POST") else None,
                         headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            out_headers = [(k, v) for k, v in resp.getheaders() if k.lower() not in _HOP]
            if h.command == "HEAD":
                length = resp.getheader("Content-Length")
                h.send_response(resp.status)
                for k, v in out_headers:
                    h.send_header(k, v)
                if length is not None:
                    h.send_header("Content-Length", length)
                h.end_headers()
                return
            if fault == "truncate" and resp.status in (200, 206) and len(data) > 1:
                self.count("get-truncated")
                h.send_response(resp.status)
                for k, v in out_headers:
                    h.send_header(k, v)
                h.send_header("Content-Length", str(len(data)))
                h.end_headers()
                h.wfile.write(data[: len(data) // 2])
                h.wfile.flush()
                self._drop(h)
                return
            self._send(h, resp.status, out_headers, data)
        except OSError as e:
            self.count("upstream-error")
            self._send(h, 502, [], f"proxy: upstream error {e!r}".encode())
        finally:
            conn.close()

    def _send(self, h, status, headers, data: bytes) -> None:
        try:
            h.send_response(status)
            for k, v in headers:
                h.send_header(k, v)
            h.send_header("Content-Length", str(len(data)))
            h.end_headers()
            h.wfile.write(data)
        except OSError:
            h.close_connection = True


# --- records ----------------------------------------------------------------------------------

_ALPHABET = bytes(sorted(set(range(33, 127)) - {ord(":")}))  # printable, no space/colon/newline
_TABLE = bytes(_ALPHABET[i % len(_ALPHABET)] for i in range(256))


class RecordGen:
    """Record i: key b"k%010d" % i, value ~1 KiB of printable bytes that depend on (seed, i),
    CreateTime ts_base + i ms. Cheap to recompute, so readers check without keeping copies.

    ts_base defaults to an hour ago: CreateTimes older than retention.ms (7 days by default)
    would be deleted by time retention from both tiers, as they should be."""

    POOL = 2 * MiB

    def __init__(self, seed: int, size: int = 1024, ts_base: int | None = None):
        self.seed = seed
        self.size = size
        self.ts_base = ts_base if ts_base is not None else int(time.time() * 1000) - 3_600_000
        self.pool = random.Random(seed).randbytes(self.POOL).translate(_TABLE)
        self.span = self.POOL - 2 * size - 64

    def key(self, i: int) -> bytes:
        return b"k%010d" % i

    def value(self, i: int) -> bytes:
        start = (i * 2654435761 + self.seed) % self.span
        length = self.size - 40 + (i * 7919) % 80
        return b"v%010d|" % i + self.pool[start:start + length]

    def timestamp(self, i: int) -> int:
        return self.ts_base + i

    def count_for(self, total_bytes: int) -> int:
        """Records needed for at least total_bytes of values."""
        return total_bytes // (self.size - 1) + 1

    def value_bytes(self, start: int, n: int) -> int:
        return sum(len(self.value(i)) for i in range(start, start + n))


@dataclass
class ProduceStats:
    acked: int = 0
    errors: list = field(default_factory=list)
    misplaced: list = field(default_factory=list)  # (record, offset) where offset != record
    ack_times: list = field(default_factory=list)  # monotonic time of each ack
    value_bytes: int = 0
    seconds: float = 0.0


def produce_records(bootstrap: str, topic: str, gen: RecordGen, start: int, n: int, *,
                    rate_bytes: float | None = None, conf: dict | None = None, flush_timeout: float = 180.0,
                    progress=None, progress_every: int = 2000) -> ProduceStats:
    """Produce records start..start+n-1 to partition 0 with an idempotent acks=all producer.

    Record i must land at offset i (a fresh single-partition topic, one producer at a time).
    `rate_bytes`: pace to about that many value bytes per second. `progress(i)` is called
    every `progress_every` records (e.g. to sample the local directory). Does not assert:
    the caller checks stats.errors and stats.misplaced.
    """
    from confluent_kafka import Producer

    stats = ProduceStats()
    lock = threading.Lock()
    p = Producer({
        "bootstrap.servers": bootstrap,
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 20,
        "batch.size": 1_000_000,
        "compression.type": "none",
        "queue.buffering.max.kbytes": 65536,
        "message.timeout.ms": 120_000,
        **(conf or {}),
    })

    def on_delivery(err, msg):
        with lock:
            if err is not None:
                stats.errors.append((msg.key(), str(err)))
                return
            stats.acked += 1
            stats.ack_times.append(time.monotonic())
            i = int(msg.key()[1:])
            if msg.offset() != i:
                stats.misplaced.append((i, msg.offset()))

    t0 = time.monotonic()
    sent_bytes = 0
    for i in range(start, start + n):
        v = gen.value(i)
        while True:
            try:
                p.produce(topic, key=gen.key(i), value=v, partition=0, timestamp=gen.timestamp(i),
                          on_delivery=on_delivery)
                break
            except BufferError:
                p.poll(0.02)
        sent_bytes += len(v)
        if rate_bytes:
            ahead = sent_bytes / rate_bytes - (time.monotonic() - t0)
            if ahead > 0:
                p.poll(ahead)
        if (i - start) % 500 == 0:
            p.poll(0)
        if progress is not None and (i - start) % progress_every == 0:
            progress(i)
    left = p.flush(flush_timeout)
    stats.seconds = time.monotonic() - t0
    stats.value_bytes = sent_bytes
    if left:
        stats.errors.append((None, f"{left} records undelivered after flush({flush_timeout})"))
    return stats


def assert_produced(stats: ProduceStats, n: int, what: str = "produce") -> None:
    assert not stats.errors, f"{what}: {len(stats.errors)} delivery errors, first: {stats.errors[:5]}"
    assert stats.acked == n, f"{what}: {stats.acked} of {n} records acknowledged"
    assert not stats.misplaced, f"{what}: records not at their expected offsets (record, offset): {stats.misplaced[:5]}"


# --- readers -------------------------------------------------------------------------------------


@dataclass
class ReadResult:
    count: int
    digest: str
    seconds: float
    retriable_errors: list


def expected_digest(gen: RecordGen, start: int, end: int) -> str:
    h = hashlib.sha256()
    for i in range(start, end):
        h.update(b"%d\0%s\0%s\0" % (i, gen.key(i), gen.value(i)))
    return h.hexdigest()


def verify_confluent(bootstrap: str, topic: str, gen: RecordGen, end: int, start: int = 0,
                     timeout: float = 180.0, conf: dict | None = None,
                     allow_retriable: bool = False) -> ReadResult:
    """A fresh confluent-kafka consumer reads partition 0 from `start` to `end`: every offset in
    order, each record byte-identical to gen's (key, value, CreateTime)."""
    from confluent_kafka import TIMESTAMP_CREATE_TIME, Consumer, KafkaError, TopicPartition

    c = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": unique_topic("tier-reader"),
        "enable.auto.commit": False,
        "auto.offset.reset": "error",
        "check.crcs": True,
        "fetch.max.bytes": 8 * MiB,
        "max.partition.fetch.bytes": 4 * MiB,
        **(conf or {}),
    })
    h = hashlib.sha256()
    nxt = start
    retriable = []
    t0 = time.monotonic()
    deadline = t0 + timeout
    try:
        c.assign([TopicPartition(topic, 0, start)])
        while nxt < end:
            if time.monotonic() > deadline:
                raise AssertionError(f"{topic}: read offsets {start}..{nxt - 1} of {start}..{end - 1} "
                                     f"within {timeout:.0f}s (retriable errors seen: {retriable[:5]})")
            for m in c.consume(num_messages=2000, timeout=0.5):
                err = m.error()
                if err is not None:
                    if err.code() == KafkaError._PARTITION_EOF:
                        continue
                    if allow_retriable and (err.retriable() or err.code() in (KafkaError.KAFKA_STORAGE_ERROR,)):
                        retriable.append(str(err))
                        continue
                    raise AssertionError(f"{topic}: consumer error at offset {nxt}: {err}")
                o = m.offset()
                if o != nxt:
                    raise AssertionError(f"{topic}: expected offset {nxt}, got {o} (gap or reorder)")
                if m.key() != gen.key(o) or m.value() != gen.value(o):
                    got = (m.key(), (m.value() or b"")[:40], len(m.value() or b""))
                    raise AssertionError(f"{topic}: record at offset {o} differs: key/value-prefix/len {got}, "
                                         f"want {(gen.key(o), gen.value(o)[:40], len(gen.value(o)))}")
                ts = m.timestamp()
                if ts != (TIMESTAMP_CREATE_TIME, gen.timestamp(o)):
                    raise AssertionError(f"{topic}: offset {o} timestamp {ts}, want CreateTime {gen.timestamp(o)}")
                h.update(b"%d\0%s\0%s\0" % (o, m.key(), m.value()))
                nxt += 1
                if nxt >= end:
                    break
    finally:
        c.close()
    return ReadResult(nxt - start, h.hexdigest(), time.monotonic() - t0, retriable)


def verify_kcat(kcat: str, bootstrap: str, topic: str, gen: RecordGen, end: int, timeout: float = 180.0) -> ReadResult:
    """kcat (librdkafka 2.0.2) from the beginning of partition 0 to the end: one line per record
    `offset key value`, compared with gen's line by line; also a hash of the values."""
    cmd = [kcat, "-C", "-b", bootstrap, "-t", topic, "-p", "0", "-o", "beginning", "-e", "-q",
           "-X", "check.crcs=true", "-f", "%o %k %s\n"]
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    timer = threading.Timer(timeout, proc.kill)
    timer.start()
    h = hashlib.sha256()
    n = 0
    mismatch = None
    try:
        for line in proc.stdout:
            if mismatch is None:
                want = b"%d %s %s\n" % (n, gen.key(n), gen.value(n)) if n < end else None
                if line != want:
                    mismatch = (n, line[:80], (want or b"(nothing: past the end)")[:80])
                else:
                    h.update(gen.value(n))
            n += 1
        proc.wait()
    finally:
        timer.cancel()
    stderr = proc.stderr.read().decode(errors="replace")
    proc.stderr.close()
    proc.stdout.close()
    elapsed = time.monotonic() - t0
    assert proc.returncode == 0, (f"kcat exited {proc.returncode} after {elapsed:.0f}s (timeout {timeout}s) "
                                  f"having read {n} records\nstderr:\n{stderr[-3000:]}")
    assert mismatch is None, f"kcat line {mismatch[0]}: got {mismatch[1]!r}, want {mismatch[2]!r}"
    assert n == end, f"kcat read {n} records, expected {end}\nstderr:\n{stderr[-2000:]}"
    want_h = hashlib.sha256()
    for i in range(end):
        want_h.update(gen.value(i))
    assert h.hexdigest() == want_h.hexdigest(), "kcat: hash of values differs"
    return ReadResult(n, h.hexdigest(), elapsed, [])


# --- sampling ------------------------------------------------------------------------------------


class LocalSampler:
    """Samples a partition's local .log segments, then the manifest's remote end, every
    `interval` s on a thread (plus an optional invariant `check`), keeping every sample."""

    def __init__(self, broker: TierBroker, topic: str, interval: float = 0.2, check=None):
        self.broker, self.topic, self.interval, self.check = broker, topic, interval, check
        self.samples: list[tuple[float, int]] = []  # (t, local .log bytes)
        self.detail: list[tuple[float, dict, int]] = []  # (t, {base: size}, remote end)
        self.violations: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="local-sampler", daemon=True)

    def _run(self):
        while not self._stop.is_set():
            try:
                self.sample()
            except Exception as e:  # noqa: BLE001 - a failed read of the store is recorded, not fatal
                self.violations.append(f"sampler error: {e!r}")
            self._stop.wait(self.interval)

    def sample(self) -> int:
        t = time.monotonic()
        segs = self.broker.local_segments(self.topic)  # local first: see stale_violations
        remote_end = self.broker.bucket.remote_end(self.topic)
        size = sum(segs.values())
        self.samples.append((t, size))
        self.detail.append((t, segs, remote_end))
        if self.check is not None:
            problem = self.check()
            if problem:
                self.violations.append(problem)
        return size

    def stale_violations(self, bound: int, slack_s: float) -> list:
        """Samples where local segments uploaded more than slack_s seconds earlier (base below
        the remote end seen slack_s before) hold more than `bound` bytes: local retention
        (a pass every few seconds) should have deleted them down to its target."""
        out = []
        for t, segs, _ in self.detail:
            earlier = [e for (t2, _, e) in self.detail if t2 <= t - slack_s]
            if not earlier:
                continue
            end = earlier[-1]
            stale = sum(size for base, size in segs.items() if base < end)
            if stale > bound:
                out.append((round(t - self.detail[0][0], 1), stale, end))
        return out

    @property
    def max(self) -> int:
        return max((s for _, s in self.samples), default=0)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=10)


def wait_for(predicate, timeout: float, what, interval: float = 0.25):
    """Poll predicate() until truthy; return it. On timeout fail with `what` (a string or a
    callable giving one, evaluated then) and the last value seen."""
    deadline = time.monotonic() + timeout
    while True:
        last = predicate()
        if last:
            return last
        if time.monotonic() > deadline:
            desc = what() if callable(what) else what
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {desc} (last value: {last!r})")
        time.sleep(interval)
