"""Malformed requests on a live broker (TESTING.md target S2).

While a confluent-kafka producer (acks=all) produces steadily in a background thread, raw TCP
connections send what a buggy or hostile client could: frame lengths above
socket.request.max.bytes or negative, huge and negative array counts (the CVE-2022-34917
shape), bad varints in flexible requests, unknown api keys, unsupported versions, truncated
frames, produce requests with bad CRCs, unknown codecs and compression bombs, random garbage.

Each bad request must get the answer Kafka gives it, asserted exactly: an error response
(UNSUPPORTED_VERSION in the v0 ApiVersions format, CORRUPT_MESSAGE, UNSUPPORTED_COMPRESSION_TYPE
for a partition, with the connection still usable afterwards) or a closed connection, never a
hang. Afterwards the producer saw 0 errors, every record it was acknowledged for is readable at
its offset, the broker is healthy, its memory stayed bounded, and a fresh client works.

Requests are built by hand with `struct` (Kafka's wire format, RecordBatch v2 with a
table-driven CRC32C) so nothing in between can fix them up.
"""

from __future__ import annotations

import os
import random
import socket
import struct
import threading
import time
import urllib.request
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from floe_harness import consume_all, unique_topic, watermarks

# --- Kafka constants ----------------------------------------------------------------------

PRODUCE, FETCH, METADATA, API_VERSIONS = 0, 1, 3, 18
NONE, CORRUPT_MESSAGE, INVALID_RECORD, UNSUPPORTED_VERSION = 0, 2, 87, 35
UNSUPPORTED_COMPRESSION_TYPE, MESSAGE_TOO_LARGE = 76, 10
GZIP, SNAPPY, LZ4, ZSTD = 1, 2, 3, 4

SOCKET_REQUEST_MAX_BYTES = 100 * 1024 * 1024  # Floe's default, as Kafka's
REPLY_TIMEOUT = 15.0  # neither an answer nor a close within this is a hang: a failure
RSS_LIMIT = 1 << 30  # the broker's peak RSS (VmHWM) must stay under this


# --- wire encoding --------------------------------------------------------------------------


def _crc32c_table() -> list[int]:
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_CRC32C = _crc32c_table()


def crc32c(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for b in data:
        crc = _CRC32C[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


assert crc32c(b"123456789") == 0xE3069283  # the standard check value


def uvarint(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def varint(n: int) -> bytes:
    """Zigzag varint (record fields)."""
    return uvarint((n << 1) ^ (n >> 63))


def string(s: str | None) -> bytes:
    if s is None:
        return struct.pack(">h", -1)
    raw = s.encode()
    return struct.pack(">h", len(raw)) + raw


def compact_string(s: str | None) -> bytes:
    if s is None:
        return uvarint(0)
    raw = s.encode()
    return uvarint(len(raw) + 1) + raw


def request_header(api_key: int, version: int, correlation_id: int, flexible: bool,
                   client_id: str | None = "floe-malformed") -> bytes:
    """Request header v1 (v2 with an empty tag buffer when flexible)."""
    h = struct.pack(">hhi", api_key, version, correlation_id) + string(client_id)
    return h + (uvarint(0) if flexible else b"")


def frame(payload: bytes) -> bytes:
    return struct.pack(">i", len(payload)) + payload


def record(offset_delta: int, key: bytes | None, value: bytes | None) -> bytes:
    body = b"\x00" + varint(0) + varint(offset_delta)
    body += varint(-1) if key is None else varint(len(key)) + key
    body += varint(-1) if value is None else varint(len(value)) + value
    body += varint(0)  # no headers
    return varint(len(body)) + body


def record_batch(section: bytes, count: int, codec: int = 0, crc: int | None = None,
                 magic: int = 2) -> bytes:
    """A RecordBatch v2 around an already encoded (and possibly compressed) records section."""
    ts = int(time.time() * 1000)
    after_crc = struct.pack(">hiqqqhii", codec, count - 1, ts, ts, -1, -1, -1, count) + section
    crc = crc32c(after_crc) if crc is None else crc
    after_length = struct.pack(">ibI", -1, magic, crc) + after_crc
    return struct.pack(">qi", 0, len(after_length)) + after_length


def plain_batch(values: list[bytes]) -> bytes:
    section = b"".join(record(i, b"k%d" % i, v) for i, v in enumerate(values))
    return record_batch(section, len(values))


def produce_v3(topic: str, partitions: dict[int, bytes], correlation_id: int, acks: int = -1) -> bytes:
    body = string(None) + struct.pack(">hii", acks, 30_000, 1) + string(topic)
    body += struct.pack(">i", len(partitions))
    for index, records in partitions.items():
        body += struct.pack(">ii", index, len(records)) + records
    return frame(request_header(PRODUCE, 3, correlation_id, flexible=False) + body)


def produce_v9(topic: str, partitions: dict[int, bytes], correlation_id: int) -> bytes:
    body = compact_string(None) + struct.pack(">hi", -1, 30_000) + uvarint(2) + compact_string(topic)
    body += uvarint(len(partitions) + 1)
    for index, records in partitions.items():
        body += struct.pack(">i", index) + uvarint(len(records) + 1) + records + uvarint(0)
    body += uvarint(0) + uvarint(0)  # topic tags, request tags
    return frame(request_header(PRODUCE, 9, correlation_id, flexible=True) + body)


def metadata_v1(correlation_id: int, topics: list[str] | None) -> bytes:
    body = struct.pack(">i", -1) if topics is None else struct.pack(">i", len(topics)) + b"".join(map(string, topics))
    return frame(request_header(METADATA, 1, correlation_id, flexible=False) + body)


def api_versions(version: int, correlation_id: int) -> bytes:
    flexible = version >= 3
    body = compact_string("floe-test") + compact_string("1.0") + uvarint(0) if flexible else b""
    return frame(request_header(API_VERSIONS, version, correlation_id, flexible) + body)


# --- wire decoding --------------------------------------------------------------------------


class Buf:
    def __init__(self, data: bytes):
        self.data, self.at = data, 0

    def take(self, fmt: str):
        values = struct.unpack_from(fmt, self.data, self.at)
        self.at += struct.calcsize(fmt)
        return values if len(values) > 1 else values[0]

    def uvarint(self) -> int:
        shift = value = 0
        while True:
            b = self.data[self.at]
            self.at += 1
            value |= (b & 0x7F) << shift
            if not b & 0x80:
                return value
            shift += 7

    def skip_tags(self):
        for _ in range(self.uvarint()):
            self.uvarint()
            self.at += self.uvarint()

    def string(self, flexible: bool) -> str | None:
        n = self.uvarint() - 1 if flexible else self.take(">h")
        if n < 0:
            return None
        s = self.data[self.at:self.at + n].decode()
        self.at += n
        return s

    def remaining(self) -> int:
        return len(self.data) - self.at


def parse_api_versions_v0(payload: bytes) -> tuple[int, int, dict[int, tuple[int, int]]]:
    """(correlation id, error code, {api: (min, max)}); asserts it is exactly the v0 format."""
    b = Buf(payload)
    correlation_id, error = b.take(">ih")
    apis = {}
    for _ in range(b.take(">i")):
        key, lo, hi = b.take(">hhh")
        apis[key] = (lo, hi)
    assert b.remaining() == 0, f"{b.remaining()} bytes after the v0 ApiVersions body: not the v0 format"
    return correlation_id, error, apis


def parse_produce(payload: bytes, version: int) -> tuple[int, dict[tuple[str, int], tuple[int, int]]]:
    """(correlation id, {(topic, partition): (error code, base offset)}) of a v3 or v9 response."""
    flexible = version >= 9
    b = Buf(payload)
    correlation_id = b.take(">i")
    if flexible:
        b.skip_tags()
    out = {}
    topics = b.uvarint() - 1 if flexible else b.take(">i")
    for _ in range(topics):
        name = b.string(flexible)
        partitions = b.uvarint() - 1 if flexible else b.take(">i")
        for _ in range(partitions):
            index, error, base_offset, _append_time = b.take(">ihqq")
            if version >= 5:
                b.take(">q")  # log start offset
            if version >= 8:
                for _ in range(b.uvarint() - 1 if flexible else b.take(">i")):
                    b.take(">i")
                    b.string(flexible)
                    if flexible:
                        b.skip_tags()
                b.string(flexible)  # error message
            if flexible:
                b.skip_tags()
            out[(name, index)] = (error, base_offset)
        if flexible:
            b.skip_tags()
    return correlation_id, out


# --- raw connections ------------------------------------------------------------------------


class Closed(Exception):
    """The broker closed the connection."""


class Conn:
    """One raw TCP connection to the broker's Kafka port."""

    def __init__(self, bootstrap: str):
        host, port = bootstrap.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=REPLY_TIMEOUT)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def send(self, data: bytes):
        self.sock.sendall(data)

    def _exactly(self, n: int) -> bytes:
        out = bytearray()
        while len(out) < n:
            try:
                chunk = self.sock.recv(n - len(out))
            except ConnectionResetError:
                chunk = b""
            except socket.timeout:
                raise AssertionError(f"no answer and no close within {REPLY_TIMEOUT:.0f}s: the broker hangs")
            if not chunk:
                if out:
                    raise AssertionError(f"connection closed in the middle of a response ({len(out)} of {n} bytes)")
                raise Closed()
            out += chunk
        return bytes(out)

    def recv(self) -> bytes:
        """The next response frame (without its size); raises Closed on EOF."""
        (size,) = struct.unpack(">i", self._exactly(4))
        assert 0 <= size <= 64 << 20, f"response frame size {size}"
        return self._exactly(size)

    def request(self, data: bytes) -> bytes:
        self.send(data)
        return self.recv()

    def expect_closed(self, what: str):
        """The broker must close the connection without answering."""
        try:
            payload = self.recv()
        except Closed:
            return
        raise AssertionError(f"{what}: expected the connection to be closed, got a {len(payload)}-byte response")

    def half_close(self):
        self.sock.shutdown(socket.SHUT_WR)

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def send_expect_closed(broker, data: bytes, what: str):
    with Conn(broker.bootstrap) as c:
        try:
            c.send(data)
        except (BrokenPipeError, ConnectionResetError):
            return  # closed while we were still sending: closed
        c.expect_closed(what)


def assert_connection_usable(c: Conn, correlation_id: int):
    """A good request on the same connection still gets its answer."""
    cid, error, apis = parse_api_versions_v0(c.request(api_versions(0, correlation_id)))
    assert (cid, error) == (correlation_id, NONE)
    assert API_VERSIONS in apis


# --- the broker process ---------------------------------------------------------------------


def proc_status(broker) -> dict[str, int]:
    """VmRSS and VmHWM (peak RSS) of the broker process, in bytes."""
    out = {}
    with open(f"/proc/{broker.proc.pid}/status") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(rest.split()[0]) * 1024
    return out


def assert_memory_bounded(broker, what: str):
    status = proc_status(broker)
    assert status["VmHWM"] < RSS_LIMIT, (
        f"after {what}: broker peak RSS {status['VmHWM'] >> 20} MiB >= {RSS_LIMIT >> 20} MiB "
        f"(now {status['VmRSS'] >> 20} MiB)"
    )
    return status


def assert_healthy(broker):
    assert broker.running, f"broker exited with code {broker.proc.returncode}"
    with urllib.request.urlopen(f"http://{broker.admin_addr}/health", timeout=10) as resp:
        assert resp.status == 200


# --- the steady producer --------------------------------------------------------------------


@dataclass
class SteadyProducer:
    """An acks=all confluent-kafka producer sending numbered records until stopped."""

    bootstrap: str
    topic: str
    partitions: int
    rate: float = 400.0  # records per second
    acked: dict[int, tuple[int, int]] = field(default_factory=dict)
    errors: list = field(default_factory=list)
    sent: int = 0

    def __post_init__(self):
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="steady-producer", daemon=True)
        self._failure: BaseException | None = None

    def start(self):
        self._thread.start()
        return self

    def _on_delivery(self, err, msg):
        if err is not None:
            self.errors.append(("delivery", err))
        else:
            self.acked[int(msg.key())] = (msg.partition(), msg.offset())

    def _run(self):
        try:
            p = Producer({
                "bootstrap.servers": self.bootstrap,
                "acks": "all",
                "enable.idempotence": True,  # a retry can never store a record twice
                "linger.ms": 5,
                "message.timeout.ms": 120_000,
                "error_cb": lambda e: self.errors.append(("client", e)),
            })
            start = time.monotonic()
            while not self._stop.is_set():
                due = int((time.monotonic() - start) * self.rate) + 1
                while self.sent < due:
                    seq = self.sent
                    p.produce(self.topic, key=b"%d" % seq, value=self.value(seq),
                              partition=seq % self.partitions, on_delivery=self._on_delivery)
                    self.sent += 1
                p.poll(0.01)
            left = p.flush(120)
            if left:
                self.errors.append(("flush", f"{left} records undelivered"))
        except BaseException as e:  # surfaced by stop()
            self._failure = e

    @staticmethod
    def value(seq: int) -> bytes:
        return b"steady-%08d-" % seq + bytes((seq * 7 + i) % 256 for i in range(seq % 200))

    def wait_acked(self, n: int, timeout: float = 60.0):
        deadline = time.monotonic() + timeout
        while len(self.acked) < n:
            assert self._thread.is_alive(), f"producer thread died: {self._failure!r}"
            assert time.monotonic() < deadline, f"only {len(self.acked)} of {n} records acknowledged in {timeout:.0f}s"
            time.sleep(0.05)

    def stop(self):
        self._stop.set()
        self._thread.join(timeout=180)
        assert not self._thread.is_alive(), "producer did not finish flushing"
        if self._failure is not None:
            raise self._failure


class Live:
    """A broker with a steady producer running; `finish()` runs the checks every test ends with."""

    def __init__(self, broker):
        self.broker = broker
        self.topic = broker.create_topic(unique_topic("steady"), partitions=3)
        self.producer = SteadyProducer(broker.bootstrap, self.topic, partitions=3).start()
        self.producer.wait_acked(50)  # the producer is connected and acknowledged before we start
        self.baseline = proc_status(broker)
        self._correlation = 1000

    def next_id(self) -> int:
        self._correlation += 1
        return self._correlation

    def finish(self):
        broker, producer = self.broker, self.producer
        # The producer keeps going through everything: more acks after the bad requests.
        before = len(producer.acked)
        producer.wait_acked(before + 200)
        producer.stop()
        assert producer.errors == [], f"the producer saw errors: {producer.errors[:5]}"
        assert len(producer.acked) == producer.sent, f"{producer.sent} sent, {len(producer.acked)} acknowledged"
        assert_healthy(broker)
        status = assert_memory_bounded(broker, "the malformed requests")
        print(f"broker RSS: baseline {self.baseline['VmRSS'] >> 20} MiB, now {status['VmRSS'] >> 20} MiB, "
              f"peak {status['VmHWM'] >> 20} MiB; {producer.sent} records produced meanwhile")

        # Every acknowledged record is readable, where its ack said, byte for byte.
        consumed = consume_all(broker.bootstrap, self.topic)
        at = {(m.partition, m.offset): m for msgs in consumed.values() for m in msgs}
        assert sum(len(v) for v in consumed.values()) == producer.sent, "records in the topic != records acknowledged"
        for seq, (p, off) in producer.acked.items():
            m = at.get((p, off))
            assert m is not None, f"record {seq} acknowledged at {p}/{off} is missing"
            assert (m.key, m.value) == (b"%d" % seq, producer.value(seq)), f"record {seq} at {p}/{off} differs"

        # A fresh client works.
        topic = unique_topic("fresh")
        p = Producer({"bootstrap.servers": broker.bootstrap, "acks": "all"})
        got = []
        p.produce(topic, key=b"fresh", value=b"after the storm", on_delivery=lambda err, msg: got.append(err))
        assert p.flush(30) == 0 and got == [None], f"fresh producer: {got}"
        c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": unique_topic("fresh"),
                      "auto.offset.reset": "earliest"})
        try:
            c.assign([TopicPartition(topic, 0, 0)])
            msg = None
            deadline = time.monotonic() + 30
            while msg is None and time.monotonic() < deadline:
                msg = c.poll(0.5)
            assert msg is not None and msg.error() is None, f"fresh consumer: {msg and msg.error()}"
            assert (msg.key(), msg.value()) == (b"fresh", b"after the storm")
        finally:
            c.close()


@pytest.fixture
def live(broker):
    live = Live(broker)
    yield live
    if live.producer._thread.is_alive():  # the test failed before finish()
        live.producer._stop.set()
        live.producer._thread.join(timeout=30)


# --- the tests --------------------------------------------------------------------------------


def test_frame_lengths_out_of_range_close_the_connection(live):
    broker = live.broker
    header = request_header(API_VERSIONS, 0, 1, flexible=False)
    for size in (SOCKET_REQUEST_MAX_BYTES + 1, 0x7FFFFFFF, -1, -2, -0x80000000):
        send_expect_closed(broker, struct.pack(">i", size) + header, f"frame length {size}")
    # An empty frame has no header.
    send_expect_closed(broker, struct.pack(">i", 0), "frame length 0")
    live.finish()


def test_announced_frames_that_never_arrive_cost_no_memory(live):
    """Frames announcing just under socket.request.max.bytes, then silence: the broker waits for
    the bytes (a partial frame is a normal state) but must not reserve 100 MiB per connection."""
    broker = live.broker
    conns = [Conn(broker.bootstrap) for _ in range(16)]
    try:
        for c in conns:
            c.send(struct.pack(">i", SOCKET_REQUEST_MAX_BYTES) + request_header(PRODUCE, 3, 1, flexible=False))
        time.sleep(1.0)
        grown = proc_status(broker)["VmRSS"] - live.baseline["VmRSS"]
        assert grown < 256 << 20, (
            f"16 connections that announced {SOCKET_REQUEST_MAX_BYTES >> 20} MiB frames and sent 14 bytes "
            f"grew the broker's RSS by {grown >> 20} MiB"
        )
        assert_healthy(broker)
    finally:
        for c in conns:
            c.close()
    live.finish()


def test_huge_and_negative_array_counts_close_the_connection(live):
    broker = live.broker
    v1 = request_header(METADATA, 1, 7, flexible=False)
    # CVE-2022-34917: an 8-byte body declaring 2^31-1 topics.
    send_expect_closed(broker, frame(v1 + struct.pack(">i", 0x7FFFFFFF) + b"\x00\x01a\x00"),
                       "Metadata v1 with 2^31-1 topics in 8 bytes")
    # Negative counts other than -1 (null).
    for count in (-2, -0x80000000):
        send_expect_closed(broker, frame(v1 + struct.pack(">i", count)), f"Metadata v1 topic count {count}")
    # -1 is a null array, which Metadata v1 reads as "all topics": a valid request.
    with Conn(broker.bootstrap) as c:
        payload = c.request(frame(v1 + struct.pack(">i", -1)))
        assert struct.unpack_from(">i", payload)[0] == 7
    # Produce v3: 2^31-1 topics, and a partition array of -5.
    p3 = request_header(PRODUCE, 3, 8, flexible=False) + string(None) + struct.pack(">hi", -1, 30_000)
    send_expect_closed(broker, frame(p3 + struct.pack(">i", 0x7FFFFFFF)), "Produce v3 with 2^31-1 topics")
    send_expect_closed(broker, frame(p3 + struct.pack(">i", 1) + string(live.topic) + struct.pack(">i", -5)),
                       "Produce v3 with -5 partitions")
    # A records field claiming 2^31-1 bytes.
    send_expect_closed(broker, frame(p3 + struct.pack(">i", 1) + string(live.topic) + struct.pack(">iii", 1, 0, 0x7FFFFFFF)),
                       "Produce v3 with a 2 GiB records field")
    # Flexible: a compact array count of 2^32-2 in a Metadata v9 request.
    v9 = request_header(METADATA, 9, 9, flexible=True)
    send_expect_closed(broker, frame(v9 + uvarint(0xFFFFFFFF) + b"\x00" * 4), "Metadata v9 with 2^32-2 topics")
    live.finish()


def test_bad_varints_in_flexible_requests_close_the_connection(live):
    broker = live.broker
    v9 = request_header(METADATA, 9, 11, flexible=True)
    cases = {
        "an overlong (6-byte) array count": v9 + b"\xff\xff\xff\xff\xff\x01" + b"\x00" * 8,
        "a 5-byte varint above 32 bits": v9 + b"\xff\xff\xff\xff\x7f" + b"\x00" * 8,
        "a varint cut by the end of the frame": v9 + b"\x82\x80",
        "a topic name length past the frame": v9 + uvarint(2) + uvarint(1000) + b"abc",
        # v9 body: topics (empty), then three booleans, then the tag buffer.
        "a tag count of 2^32-1": v9 + uvarint(1) + b"\x01\x00\x01" + b"\xff\xff\xff\xff\x0f",
        "a tagged field longer than the frame": v9 + uvarint(1) + b"\x01\x00\x01" + uvarint(1) + uvarint(5)
        + uvarint(1 << 20) + b"x",
    }
    # In the request header's tag buffer (header v2).
    cases["an overlong header tag count"] = (
        struct.pack(">hhi", METADATA, 9, 11) + string("x") + b"\xff\xff\xff\xff\xff\xff"
    )
    # ApiVersions v3 (flexible): an overlong compact string length for client_software_name.
    cases["an overlong client_software_name length"] = (
        request_header(API_VERSIONS, 3, 12, flexible=True) + b"\x80\x80\x80\x80\x80\x80" + b"\x00" * 4
    )
    for what, payload in cases.items():
        send_expect_closed(broker, frame(payload), f"flexible request with {what}")
    live.finish()


def test_unknown_api_keys_close_the_connection(live):
    for key in (999, 32767, -1, 68):  # 68 exists in Kafka, not in Floe
        send_expect_closed(live.broker, frame(request_header(key, 0, 5, flexible=False) + bytes(8)), f"api key {key}")
    live.finish()


def test_unsupported_versions(live):
    broker = live.broker
    # ApiVersions above (and below) our range: a v0-format answer with UNSUPPORTED_VERSION and
    # our ranges, so the client retries lower; the connection stays open.
    for version in (5, 127, 32767, -1):
        with Conn(broker.bootstrap) as c:
            cid = live.next_id()
            correlation_id, error, apis = parse_api_versions_v0(c.request(api_versions(version, cid)))
            assert correlation_id == cid
            assert error == UNSUPPORTED_VERSION, f"ApiVersions v{version}: error {error}, expected 35"
            assert apis.get(API_VERSIONS) == (0, 4), f"ApiVersions range {apis.get(API_VERSIONS)}"
            assert apis.get(PRODUCE) is not None and apis.get(METADATA) is not None
            # The client retries lower on the same connection.
            cid = live.next_id()
            payload = c.request(api_versions(3, cid))
            b = Buf(payload)
            assert b.take(">ih") == (cid, NONE)  # v3 response body still uses header v0
    # Any other API at an unsupported version: closed, as Kafka does.
    for api, version, flexible in ((METADATA, 13, True), (PRODUCE, 2, False), (PRODUCE, 12, True),
                                   (FETCH, 3, False), (METADATA, -1, False)):
        payload = request_header(api, version, 3, flexible) + struct.pack(">i", 0)
        send_expect_closed(broker, frame(payload), f"api {api} v{version}")
    live.finish()


def test_truncated_frames(live):
    broker = live.broker
    # A frame cut short, then the client closes: the broker drops the connection (EOF).
    for cut in (1, 3, 10, 40):
        full = produce_v3(live.topic, {0: plain_batch([b"never stored"])}, 21)
        with Conn(broker.bootstrap) as c:
            c.send(full[:cut])
            c.half_close()
            c.expect_closed(f"frame cut after {cut} bytes, then EOF")
    # A frame cut short and the socket closed outright.
    c = Conn(broker.bootstrap)
    c.send(struct.pack(">i", 1000) + b"x" * 100)
    c.close()
    # A complete frame whose content ends too early: the header's client_id says 1000 bytes.
    send_expect_closed(broker, frame(struct.pack(">hhih", METADATA, 1, 4, 1000) + b"abc"),
                       "a header whose client_id is longer than the frame")
    # A complete Produce frame that ends inside the records field.
    full = produce_v3(live.topic, {0: plain_batch([b"x" * 100])}, 22)
    send_expect_closed(broker, frame(full[4:-50]), "a produce frame cut inside its records")
    live.finish()


def test_produce_with_corrupt_batches_gets_per_partition_errors(live):
    """Bad CRC -> CORRUPT_MESSAGE; unknown codec -> UNSUPPORTED_COMPRESSION_TYPE; the good
    partition of the same request is stored; nothing of a bad batch is; the connection stays usable."""
    broker = live.broker
    topic = broker.create_topic(unique_topic("corrupt"), partitions=2)
    good = plain_batch([b"good-0", b"good-1"])
    bad_crc = bytearray(plain_batch([b"bad crc"]))
    bad_crc[17:21] = struct.pack(">I", crc32c(bytes(bad_crc[21:])) ^ 0xDEADBEEF)
    flipped = bytearray(plain_batch([b"flipped bit"]))
    flipped[-3] ^= 0x10  # CRC as sent, content changed
    truncated = plain_batch([b"the batch says it is longer"])[:-5]
    cases = [
        ("bad CRC", bytes(bad_crc), {CORRUPT_MESSAGE}),
        ("a bit flipped after the CRC was computed", bytes(flipped), {CORRUPT_MESSAGE}),
        ("a batch cut short", truncated, {CORRUPT_MESSAGE}),
        ("magic 1 in a v2 header", record_batch(record(0, None, b"v"), 1, magic=1), {CORRUPT_MESSAGE}),
        ("record count 3, one record", record_batch(record(0, None, b"v"), 3), {CORRUPT_MESSAGE, INVALID_RECORD}),
    ]
    for codec in (5, 6, 7):
        cases.append((f"unknown codec {codec}",
                      record_batch(record(0, None, b"v"), 1, codec=codec),
                      {UNSUPPORTED_COMPRESSION_TYPE, CORRUPT_MESSAGE}))
    expected_p1 = 0
    with Conn(broker.bootstrap) as c:
        for i, (what, batch, codes) in enumerate(cases):
            version = 3 if i % 2 == 0 else 9
            cid = live.next_id()
            build = produce_v3 if version == 3 else produce_v9
            correlation_id, results = parse_produce(c.request(build(topic, {0: batch, 1: good}, cid)), version)
            assert correlation_id == cid
            error, _ = results[(topic, 0)]
            assert error in codes, f"{what}: partition error {error}, expected one of {sorted(codes)}"
            ok, offset = results[(topic, 1)]
            assert (ok, offset) == (NONE, expected_p1), f"{what}: the good partition got {(ok, offset)}"
            expected_p1 += 2
            assert_connection_usable(c, live.next_id())
    marks = watermarks(broker.bootstrap, topic)
    assert marks == {0: (0, 0), 1: (0, expected_p1)}, f"watermarks {marks}: a bad batch was stored"
    live.finish()


def gzip_zeros(n: int) -> bytes:
    c = zlib.compressobj(9, zlib.DEFLATED, 31)
    chunk = bytes(1 << 20)
    parts = [c.compress(chunk) for _ in range(n >> 20)]
    parts.append(c.flush())
    return b"".join(parts)


def zstd_rle_zeros(n: int, declare_size: int | None = None) -> bytes:
    """A zstd frame of RLE blocks: 4 bytes per 128 KiB of zeros. With `declare_size`, the frame
    header claims that content size (a lie when it differs from n)."""
    block = 128 << 10
    assert n % block == 0
    out = bytearray(struct.pack("<I", 0xFD2FB528))
    if declare_size is None:
        out += bytes([0x00, 10 << 3])  # descriptor: no content size; window 2^20
    else:
        out += bytes([0xC0, 10 << 3]) + struct.pack("<Q", declare_size)  # 8-byte content size
    blocks = n // block
    for i in range(blocks):
        last = 1 if i == blocks - 1 else 0
        header = last | (1 << 1) | (block << 3)  # RLE block of `block` bytes
        out += struct.pack("<I", header)[:3] + b"\x00"
    return bytes(out)


def snappy_declaring(n: int) -> bytes:
    """Raw snappy whose preamble declares n bytes, followed by one small literal."""
    return uvarint(n) + bytes([(4 - 1) << 2]) + b"tiny"


@pytest.fixture(scope="module")
def bombs() -> list[tuple[str, int, bytes]]:
    return [
        ("gzip, 1 GiB of zeros", GZIP, gzip_zeros(1 << 30)),
        ("zstd RLE, 1 GiB of zeros", ZSTD, zstd_rle_zeros(1 << 30)),
        ("zstd RLE, 1 GiB of zeros, content size declared 1 TiB", ZSTD, zstd_rle_zeros(1 << 30, declare_size=1 << 40)),
        ("snappy declaring 4 GiB - 1", SNAPPY, snappy_declaring(0xFFFFFFFF)),
    ]


def test_compression_bombs_are_refused_within_bounded_memory(live, bombs):
    broker = live.broker
    topic = broker.create_topic(unique_topic("bomb"), partitions=1)  # default max.message.bytes
    for what, codec, section in bombs:
        batch = record_batch(section, 1, codec=codec)
        assert len(batch) < 1048588, f"{what}: {len(batch)} bytes is over max.message.bytes"
        with Conn(broker.bootstrap) as c:
            cid = live.next_id()
            correlation_id, results = parse_produce(c.request(produce_v3(topic, {0: batch}, cid)), 3)
            assert correlation_id == cid
            error, _ = results[(topic, 0)]
            assert error == CORRUPT_MESSAGE, f"{what}: error {error}, expected CORRUPT_MESSAGE (2)"
            assert_connection_usable(c, live.next_id())
        status = assert_memory_bounded(broker, what)
        print(f"{what} ({len(batch)} bytes): error {error}; RSS {status['VmRSS'] >> 20} MiB, "
              f"peak {status['VmHWM'] >> 20} MiB")

    # Many at once, from several connections.
    requests = [produce_v3(topic, {0: record_batch(section, 1, codec=codec)}, i)
                for i, (_, codec, section) in enumerate(bombs)]

    def one(i: int) -> int:
        with Conn(broker.bootstrap) as c:
            _, results = parse_produce(c.request(requests[i % len(requests)]), 3)
            return results[(topic, 0)][0]

    with ThreadPoolExecutor(max_workers=8) as pool:
        errors = list(pool.map(one, range(16)))
    assert errors == [CORRUPT_MESSAGE] * 16, f"concurrent bombs: {errors}"
    assert_memory_bounded(broker, "16 concurrent compression bombs")
    assert watermarks(broker.bootstrap, topic) == {0: (0, 0)}
    live.finish()


def test_random_garbage(live):
    """Random frames (random bytes; a valid header of a known API then random bytes) and random
    unframed streams: each gets well-formed responses or a close, never a hang or a crash."""
    broker = live.broker
    rnd = random.Random(20221)
    # (api, min, max, first flexible version). Left out: requests that may legitimately wait
    # (Fetch long polls, JoinGroup/SyncGroup rebalances) and admin changes that random bytes
    # could turn into valid, heavy operations (CreateTopics with 100000 partitions, AlterConfigs).
    known = [(PRODUCE, 3, 11, 9), (2, 1, 8, 6), (METADATA, 0, 12, 9), (8, 0, 8, 8), (9, 0, 8, 6),
             (10, 0, 4, 3), (12, 0, 4, 4), (13, 0, 5, 4), (15, 0, 5, 5), (16, 0, 4, 3),
             (API_VERSIONS, 0, 4, 3), (20, 0, 6, 4), (22, 0, 4, 2), (23, 0, 4, 4), (32, 0, 4, 4),
             (42, 0, 2, 2), (60, 0, 1, 0)]
    outcomes = {"response": 0, "closed": 0}

    def run(data: bytes, correlation_id: int | None):
        with Conn(broker.bootstrap) as c:
            try:
                c.send(data)
                c.half_close()
            except (BrokenPipeError, ConnectionResetError):
                outcomes["closed"] += 1
                return
            while True:
                try:
                    payload = c.recv()
                except Closed:
                    outcomes["closed"] += 1
                    return
                outcomes["response"] += 1
                if correlation_id is not None:
                    assert struct.unpack_from(">i", payload)[0] == correlation_id

    def random_body() -> bytes:
        body = bytearray(rnd.randbytes(rnd.randint(0, 300)))
        for _ in range(rnd.randint(0, 4)):  # sprinkle extreme counts and varints
            if body:
                at = rnd.randrange(len(body))
                body[at:at] = rnd.choice([b"\x7f\xff\xff\xff", b"\xff\xff\xff\xff", b"\x80\x00\x00\x00",
                                          b"\xff\xff\xff\xff\x0f", b"\xff" * 6, b"\x00\x00"])
        return bytes(body)

    for i in range(150):
        run(frame(rnd.randbytes(rnd.randint(0, 200))), None)
    for i in range(300):
        api, lo, hi, flexible_from = rnd.choice(known)
        version = rnd.randint(lo, hi)
        header = request_header(api, version, 100_000 + i, flexible=version >= flexible_from)
        run(frame(header + random_body()), 100_000 + i)
    for i in range(50):
        run(rnd.randbytes(rnd.randint(1, 2000)), None)
    print(f"random garbage outcomes: {outcomes}")
    assert outcomes["closed"] > 0
    live.finish()


# --- found by this suite and fixed: clients cannot write internal topics or transactional batches ---

INVALID_TOPIC_EXCEPTION = 17


def test_clients_cannot_produce_to_consumer_offsets(live):
    broker = live.broker
    victim = broker.create_topic(unique_topic("victim"), partitions=1)

    def s16(s: str) -> bytes:
        return struct.pack(">H", len(s)) + s.encode()

    # A commit record in the broker's own format: group "victim-group", offset 424242.
    key = struct.pack(">H", 1) + s16("victim-group") + s16(victim) + struct.pack(">i", 0)
    value = struct.pack(">Hqiqi", 1, 424242, -1, int(time.time() * 1000), -1)
    forged = record_batch(record(0, key, value), 1)
    with Conn(broker.bootstrap) as c:
        errors = []
        for p in range(16):  # whichever partition coordinates the group
            _, results = parse_produce(c.request(produce_v3("__consumer_offsets", {p: forged}, live.next_id())), 3)
            errors.append(results[("__consumer_offsets", p)][0])
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "victim-group"})
    try:
        committed = consumer.committed([TopicPartition(victim, 0)], timeout=20)[0].offset
    finally:
        consumer.close()
    assert committed != 424242, "a Produce to __consumer_offsets forged the group's committed offset"
    assert errors == [INVALID_TOPIC_EXCEPTION] * 16, f"produce to __consumer_offsets answered {errors}"
    live.finish()


def test_transactional_batches_without_a_transactional_id_are_refused(live):
    broker = live.broker
    topic = broker.create_topic(unique_topic("txn"), partitions=1)
    ts = int(time.time() * 1000)
    section = record(0, None, b"in a transaction that never ends")
    after_crc = struct.pack(">hiqqqhii", 1 << 4, 0, ts, ts, 4242, 0, 0, 1) + section
    after_length = struct.pack(">ibI", -1, 2, crc32c(after_crc)) + after_crc
    batch = struct.pack(">qi", 0, len(after_length)) + after_length
    with Conn(broker.bootstrap) as c:
        _, results = parse_produce(c.request(produce_v3(topic, {0: batch}, live.next_id())), 3)
    error, _ = results[(topic, 0)]
    assert error != NONE, "a transactional batch without a transactional id was stored"
    assert watermarks(broker.bootstrap, topic) == {0: (0, 0)}
    live.finish()


# --- found by this suite and fixed: fetch memory follows the request's limits -------------------


def fetch_v4(topic: str, partitions: list[tuple[int, int, int]], max_bytes: int, correlation_id: int) -> bytes:
    """Fetch v4: (partition, offset, partition_max_bytes) each; no wait, min_bytes 1."""
    body = struct.pack(">iiiib", -1, 0, 1, max_bytes, 0) + struct.pack(">i", 1) + string(topic)
    body += struct.pack(">i", len(partitions)) + b"".join(struct.pack(">iqi", *p) for p in partitions)
    return frame(request_header(FETCH, 4, correlation_id, flexible=False) + body)


def test_fetch_memory_is_bounded_by_the_request_limits(live):
    """One 459-byte Fetch naming the same partition 24 times with partition_max_bytes 2^31-1 and
    max_bytes 1 MiB. Kafka answers at most max_bytes (or one batch, if the first is larger) and
    caps reads at the broker's fetch.max.bytes; the broker's memory must stay bounded."""
    broker = live.broker
    topic = broker.create_topic(unique_topic("fetch-mem"), partitions=1)
    p = Producer({"bootstrap.servers": broker.bootstrap, "acks": "all", "linger.ms": 20,
                  "batch.size": 1_000_000, "compression.type": "none"})
    blob = os.urandom(100_000)
    for i in range(640):  # 64 MB of incompressible records, ~1 MB batches
        while True:
            try:
                p.produce(topic, value=blob[i % 100:] + blob[:i % 100], partition=0)
                break
            except BufferError:
                p.poll(0.1)
    assert p.flush(120) == 0

    request = fetch_v4(topic, [(0, 0, 0x7FFFFFFF)] * 24, 1 << 20, live.next_id())
    with Conn(broker.bootstrap) as c:
        response = c.request(request)
    status = proc_status(broker)
    print(f"a {len(request)}-byte fetch: {len(response) >> 20} MiB response; broker RSS peak "
          f"{status['VmHWM'] >> 20} MiB")
    assert_memory_bounded(broker, f"a {len(request)}-byte Fetch")
    assert len(response) <= (1 << 20) + (1 << 20), f"{len(response)}-byte response to max_bytes 1 MiB"
    live.finish()
