"""Harness for Floe's end-to-end tests.

Runs the real `floe` binary on free loopback ports with a fresh data directory
and talks to it the way users do: real Kafka clients over real sockets.

- `Broker`: one `floe serve` process (start / stop / kill / restart on the same
  data dir and ports), its log file, and the `floe topic ...` admin commands.
- `make_records`, `produce`, `consume_all`: deterministic record sets, an
  acks=all producer that returns each record's delivery report, and a reader
  that drains every partition up to its high watermark.
- `wait_until`: poll a condition until a deadline instead of sleeping.
"""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections import namedtuple
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent

# Generous but finite: a debug machine under load is slow, a hung broker is a failure.
STARTUP_TIMEOUT = float(os.environ.get("FLOE_TEST_STARTUP_TIMEOUT", "60"))
SHUTDOWN_TIMEOUT = float(os.environ.get("FLOE_TEST_SHUTDOWN_TIMEOUT", "30"))
CLI_TIMEOUT = 60.0


class BrokerError(AssertionError):
    """The broker process did not behave: failed to start, to become healthy, or to stop."""


def floe_bin() -> Path:
    """The `floe` binary under test: $FLOE_BIN, else target/release/floe."""
    raw = os.environ.get("FLOE_BIN")
    path = Path(raw) if raw else REPO_ROOT / "target" / "release" / "floe"
    if not path.is_absolute():
        path = (Path.cwd() / path) if (Path.cwd() / path).exists() else REPO_ROOT / path
    return path


def free_ports(n: int) -> list[int]:
    """n distinct loopback ports that were free a moment ago."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def unique_topic(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def wait_until(predicate, timeout: float, what: str, interval: float = 0.05):
    """Call predicate until it returns something truthy; return that. Fail after timeout seconds."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        last = predicate()
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what} (last value: {last!r})")
        time.sleep(interval)


class Broker:
    """One `floe serve` process on fixed ports and a data dir that outlive restarts."""

    def __init__(self, binary: Path, workdir: Path, extra_args: tuple[str, ...] = ()):
        self.binary = Path(binary)
        self.workdir = Path(workdir)
        self.data_dir = self.workdir / "data"
        self.log_path = self.workdir / "floe.log"
        kafka_port, admin_port, registry_port = free_ports(3)
        self.bootstrap = f"127.0.0.1:{kafka_port}"
        self.admin_addr = f"127.0.0.1:{admin_port}"
        self.registry_addr = f"127.0.0.1:{registry_port}"
        self.registry_url = f"http://{self.registry_addr}"
        self.extra_args = tuple(extra_args)
        self.proc: subprocess.Popen | None = None
        self.starts = 0

    # --- lifecycle -----------------------------------------------------------------

    def command(self) -> list[str]:
        cmd = [
            str(self.binary), "serve",
            "--data-dir", str(self.data_dir),
            "--kafka-addr", self.bootstrap,
            "--advertised-addr", self.bootstrap,
            "--admin-addr", self.admin_addr,
            "--registry-addr", self.registry_addr,
        ]
        cores = os.environ.get("FLOE_TEST_CORES")
        if cores:
            cmd += ["--cores", cores]
        return cmd + list(self.extra_args)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout: float = STARTUP_TIMEOUT) -> None:
        """Start (or restart) on the same data dir and ports; return once GET /health is 200."""
        if self.running:
            raise BrokerError("start() called while the broker is still running")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.starts += 1
        env = dict(os.environ)
        env.setdefault("RUST_BACKTRACE", "1")
        env.setdefault("RUST_LOG", "info")
        with open(self.log_path, "ab") as log:
            log.write(f"\n===== floe start #{self.starts}: {' '.join(self.command())}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                self.command(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.workdir,
                env=env,
                start_new_session=True,  # own process group: kill() takes everything it started
            )
        self.wait_healthy(timeout)

    def wait_healthy(self, timeout: float = STARTUP_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        url = f"http://{self.admin_addr}/health"
        last = "no answer yet"
        while True:
            rc = self.proc.poll()
            if rc is not None:
                raise BrokerError(f"floe exited with code {rc} before becoming healthy\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(url, timeout=2) as resp:
                    if resp.status == 200:
                        break
                    last = f"HTTP {resp.status}"
            except urllib.error.HTTPError as e:
                last = f"HTTP {e.code}"
            except (urllib.error.URLError, OSError) as e:
                last = repr(e)
            if time.monotonic() > deadline:
                self.kill()
                raise BrokerError(
                    f"GET {url} not 200 within {timeout:.0f}s (last: {last}); broker killed\n{self.log_tail()}"
                )
            time.sleep(0.05)
        # /health promises readiness: the Kafka listener must accept connections now.
        host, port = self.bootstrap.rsplit(":", 1)
        try:
            socket.create_connection((host, int(port)), timeout=5).close()
        except OSError as e:
            raise BrokerError(
                f"/health is 200 but the Kafka port {self.bootstrap} refuses: {e}\n{self.log_tail()}"
            ) from e

    def stop(self, timeout: float = SHUTDOWN_TIMEOUT, expect_clean: bool = True) -> int | None:
        """SIGTERM (graceful shutdown) and wait. Returns the exit code."""
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise BrokerError(
                f"floe did not exit within {timeout:.0f}s of SIGTERM; killed\n{self.log_tail()}"
            ) from None
        self._reap_group()
        if expect_clean and rc != 0:
            raise BrokerError(
                f"floe exited with code {rc} after SIGTERM (graceful shutdown expects 0)\n{self.log_tail()}"
            )
        return rc

    def kill(self) -> None:
        """SIGKILL the broker (and anything it started): a crash, no shutdown code runs."""
        if self.proc is None:
            return
        self._reap_group()
        self.proc.wait(timeout=30)

    def restart(self, hard: bool = False) -> None:
        self.kill() if hard else self.stop()
        self.start()

    def close(self) -> None:
        """Teardown: stop gracefully if possible, never leave a process behind."""
        if self.proc is None:
            return
        try:
            if self.running:
                self.stop(expect_clean=False)
        finally:
            self.kill()

    def _reap_group(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    # --- logs ----------------------------------------------------------------------

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return "(no broker log written)"

    def log_tail(self, lines: int = 300) -> str:
        text = self.log_text().splitlines()
        head = f"----- floe log {self.log_path} (last {min(lines, len(text))} of {len(text)} lines) -----"
        return "\n".join([head, *text[-lines:]])

    # --- admin CLI -----------------------------------------------------------------

    def cli(self, *args: str, check: bool = True, timeout: float = CLI_TIMEOUT) -> subprocess.CompletedProcess:
        """Run `floe <args...> --broker <kafka addr>` against this broker."""
        cmd = [str(self.binary), *args, "--broker", self.bootstrap]
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
        if check and res.returncode != 0:
            raise AssertionError(
                f"`{' '.join(cmd)}` exited {res.returncode}\nstdout:\n{res.stdout}\nstderr:\n{res.stderr}"
            )
        return res

    def topic(self, *args: str, check: bool = True, timeout: float = CLI_TIMEOUT) -> subprocess.CompletedProcess:
        """Run `floe topic <args...> --broker <kafka addr>`."""
        return self.cli("topic", *args, check=check, timeout=timeout)

    def create_topic(self, name: str, partitions: int = 1, **configs: str) -> str:
        args = ["create", name, "--partitions", str(partitions)]
        for k, v in configs.items():
            args += ["--config", f"{k}={v}"]
        self.topic(*args)
        return name


# --- records ---------------------------------------------------------------------------


@dataclass
class Rec:
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes | None]] = field(default_factory=list)
    partition: int | None = None
    timestamp: int | None = None  # ms since epoch, CreateTime


Consumed = namedtuple("Consumed", "partition offset key value headers timestamp")

TS_BASE = 1_750_000_000_000  # a fixed, recent CreateTime base (ms)


def make_records(n: int, seed: int, partitions: int | None = None, big_every: int = 0,
                 null_headers: bool = True) -> list[Rec]:
    """n records with distinct keys, varied binary values and headers; deterministic per seed.

    Some keys and values are null, some values empty; every `big_every`-th value is
    300 KB. With `partitions`, record i goes to partition i % partitions.
    """
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        key = None if i % 1009 == 7 else b"key-%08d-" % i + rnd.randbytes(rnd.randint(0, 12))
        if i % 997 == 5:
            value = None
        elif i % 101 == 3:
            value = b""
        elif big_every and i % big_every == big_every - 1:
            value = rnd.randbytes(300 * 1024)
        else:
            value = rnd.randbytes(rnd.randint(1, 200))
        headers = [("seq", b"%d" % i)]
        if i % 3 == 0:
            headers.append(("bin", rnd.randbytes(rnd.randint(0, 16))))
        if i % 7 == 0:
            headers.append(("seq", b"dup-key-%d" % i))  # repeated header keys are legal and ordered
        if null_headers and i % 11 == 0:
            headers.append(("null", None))
        out.append(Rec(key, value, headers, None if partitions is None else i % partitions, TS_BASE + i))
    return out


def norm_headers(headers) -> list[tuple[str, bytes | None]]:
    return [(k, v) for k, v in (headers or [])]


# --- confluent-kafka helpers -------------------------------------------------------------


def produce(bootstrap: str, topic: str, records: list[Rec], conf: dict | None = None,
            timeout: float = 120.0) -> list[tuple[int, int]]:
    """Produce all records with acks=all and wait for every delivery report.

    Returns (partition, offset) per record, in order. Fails on any delivery error.
    """
    from confluent_kafka import Producer

    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5, **(conf or {})})
    reports: list = [None] * len(records)

    def on_delivery(i, err, msg):
        reports[i] = err if err is not None else (msg.partition(), msg.offset())

    for i, r in enumerate(records):
        kwargs = {"key": r.key, "value": r.value, "on_delivery": lambda err, msg, i=i: on_delivery(i, err, msg)}
        if r.headers:
            kwargs["headers"] = r.headers
        if r.partition is not None:
            kwargs["partition"] = r.partition
        if r.timestamp is not None:
            kwargs["timestamp"] = r.timestamp
        while True:
            try:
                p.produce(topic, **kwargs)
                break
            except BufferError:
                p.poll(0.05)
        if i % 1000 == 0:
            p.poll(0)
    left = p.flush(timeout)
    assert left == 0, f"{left} records still undelivered after {timeout}s"
    errors = [(i, e) for i, e in enumerate(reports) if not isinstance(e, tuple)]
    assert not errors, f"{len(errors)} delivery errors, first: {errors[:5]}"
    return reports


def watermarks(bootstrap: str, topic: str, timeout: float = 30.0) -> dict[int, tuple[int, int]]:
    """{partition: (low, high)} from a fresh ListOffsets."""
    from confluent_kafka import Consumer, TopicPartition

    c = Consumer({"bootstrap.servers": bootstrap, "group.id": unique_topic("wm")})
    try:
        md = c.list_topics(topic, timeout=timeout)
        tmd = md.topics.get(topic)
        assert tmd is not None and tmd.error is None, f"topic {topic} not in metadata: {tmd and tmd.error}"
        return {
            p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=timeout, cached=False)
            for p in sorted(tmd.partitions)
        }
    finally:
        c.close()


def consume_all(bootstrap: str, topic: str, timeout: float = 90.0,
                conf: dict | None = None) -> dict[int, list[Consumed]]:
    """Read every partition from its low to its high watermark (taken first) with confluent-kafka.

    Asserts offsets are dense and in order. Returns {partition: [Consumed, ...]}.
    """
    from confluent_kafka import Consumer, TopicPartition

    marks = watermarks(bootstrap, topic)
    c = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": unique_topic("reader"),
        "enable.auto.commit": False,
        "auto.offset.reset": "error",
        **(conf or {}),
    })
    out: dict[int, list[Consumed]] = {p: [] for p in marks}
    remaining = {p for p, (lo, hi) in marks.items() if hi > lo}
    try:
        c.assign([TopicPartition(topic, p, marks[p][0]) for p in remaining])
        deadline = time.monotonic() + timeout
        while remaining:
            if time.monotonic() > deadline:
                got = {p: len(v) for p, v in out.items()}
                raise AssertionError(f"read {got} of watermarks {marks} within {timeout}s")
            for m in c.consume(num_messages=5000, timeout=0.5):
                if m.error():
                    raise AssertionError(f"consumer error on {topic}: {m.error()}")
                p = m.partition()
                out[p].append(Consumed(p, m.offset(), m.key(), m.value(), norm_headers(m.headers()), m.timestamp()))
                if m.offset() >= marks[p][1] - 1:
                    remaining.discard(p)
    finally:
        c.close()
    for p, msgs in out.items():
        lo, hi = marks[p]
        offsets = [m.offset for m in msgs]
        if offsets != list(range(lo, hi)):
            bad = next((i for i, (a, b) in enumerate(zip(offsets, range(lo, hi))) if a != b), len(offsets))
            raise AssertionError(
                f"partition {p}: offsets not dense {lo}..{hi}: {len(offsets)} read, first mismatch at "
                f"index {bad}: {offsets[max(0, bad - 2):bad + 3]}"
            )
    return out


def assert_records_at(consumed: dict[int, list[Consumed]], records: list[Rec], reports: list[tuple[int, int]],
                      check_timestamps: bool = True) -> None:
    """Each record is found, byte-identical, at the (partition, offset) its delivery report gave."""
    from confluent_kafka import TIMESTAMP_CREATE_TIME

    index = {(m.partition, m.offset): m for msgs in consumed.values() for m in msgs}
    assert len(records) == len(reports)
    for i, (r, (p, off)) in enumerate(zip(records, reports)):
        m = index.get((p, off))
        assert m is not None, f"record {i} acknowledged at {p}/{off} is missing"
        assert m.key == r.key, f"record {i} at {p}/{off}: key {m.key!r} != {r.key!r}"
        assert m.value == r.value, \
            f"record {i} at {p}/{off}: value differs (len {len(m.value or b'')} vs {len(r.value or b'')})"
        assert m.headers == norm_headers(r.headers), f"record {i} at {p}/{off}: headers {m.headers} != {r.headers}"
        if check_timestamps and r.timestamp is not None:
            assert m.timestamp == (TIMESTAMP_CREATE_TIME, r.timestamp), f"record {i}: timestamp {m.timestamp}"
