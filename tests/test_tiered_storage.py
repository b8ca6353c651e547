"""Tiered storage (the shadow index) end to end: the real `floe` binary, real clients
(confluent-kafka, kcat), a real object store (the default file:// directory, and moto's S3
server started by the tests, optionally behind a fault-injecting proxy).

What a user relies on, checked here:
- >= 100 MB through a topic with remote.storage.enable=true, segment.bytes=1 MiB and
  local.retention.bytes=2 MiB: the partition's local directory ends within the local target
  plus two segments (and while producing, segments uploaded more than a retention interval
  ago never exceed that); every object the manifest lists exists; a fresh confluent-kafka consumer
  and kcat from offset 0 read every record byte-identical and in order; ListOffsets earliest
  is 0; timestamp lookups in the remote part give the right offsets (file:// and S3).
- T1: the store answers 503 / hangs for ~20 s under steady produce: produce is unaffected,
  no un-uploaded local segment is deleted, uploads resume and catch up, nothing is lost.
- T3: kill -9 while uploads run, several times: no manifest entry without its object,
  reads across the local/remote boundary byte-identical.
- T4: 503s and truncated bodies on a fraction of remote GETs: the consumer gets identical
  bytes; a corrupt or missing object is never served as data.
- Deleting a tiered topic deletes its objects (remote.delete), and only its own.
- `floe tier status` / GET /v1/tier/status and `floe topic recover` (separate functions:
  they fail until those land in the broker).

Records come from tier_support.RecordGen: record i is at offset i with a key, a ~1 KiB
printable value and a CreateTime derived from i, so readers check every byte without
keeping 100 MB of copies.
"""

from __future__ import annotations

import json
import random
import subprocess
import threading
import time

import pytest
from confluent_kafka import TopicPartition

from floe_harness import unique_topic, watermarks
from iceberg_support import describe, topic_status, wait_projected
from tier_support import (
    MiB,
    FaultProxy,
    FileBucket,
    LocalSampler,
    MotoServer,
    RecordGen,
    TierBroker,
    assert_produced,
    metric_sum,
    produce_records,
    s3_env,
    upload_lag,
    verify_confluent,
    verify_kcat,
    wait_for,
)

SEGMENT = 1 * MiB
LOCAL_TARGET = 2 * MiB
LOCAL_BOUND = LOCAL_TARGET + 2 * SEGMENT  # what the local directory may hold once caught up
TIERED = {
    "remote.storage.enable": "true",
    "segment.bytes": str(SEGMENT),
    "local.retention.bytes": str(LOCAL_TARGET),
}
BIG = 100 * MiB  # the ">= 100 MB"
IDLE_ROLL_MS = "1000"
# The broker deletes local segments in a retention pass every 5 s and uploads in a tier pass
# every 1 s (floe.toml [tier] upload-interval-ms). While records arrive, the local directory
# holds what is not uploaded yet plus what was uploaded too recently for a retention pass:
# segments uploaded longer ago than this must be gone down to the local target + 2 segments.
RETENTION_SLACK_S = 5 + 1 + 2
CATCH_UP_TIMEOUT = 120.0


# --- fixtures ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def moto(tmp_path_factory):
    server = MotoServer(tmp_path_factory.mktemp("moto"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def make_tier_broker(request, floe_binary, tmp_path):
    """make_tier_broker(name, *extra_args, store=URL, env={...}, bucket=view, config=toml, start=True)."""
    made: list[TierBroker] = []

    def make(name="broker", *extra, store=None, env=None, bucket=None, config=None, start=True,
             idle_roll_ms=IDLE_ROLL_MS):
        workdir = tmp_path / name
        workdir.mkdir(parents=True, exist_ok=True)
        args = ["--tier-idle-roll-ms", idle_roll_ms, *extra]
        if store:
            args += ["--object-store", store]
        if config:
            path = workdir / "floe.toml"
            path.write_text(config)
            args += ["--config", str(path)]
        b = TierBroker(floe_binary, workdir, args, env=env, bucket=bucket)
        made.append(b)
        # conftest.py attaches the log of every broker listed here to a failure report.
        request.node._floe_brokers = [*getattr(request.node, "_floe_brokers", []), b]
        if start:
            b.start()
        return b

    yield make
    for b in made:
        b.close()


@pytest.fixture
def s3(moto):
    """A fresh bucket on the module's moto server, dropped afterwards."""
    made = []

    def new(prefix="floe"):
        bucket = moto.new_bucket(prefix)
        made.append(bucket)
        return bucket

    yield new
    for bucket in made:
        moto.drop_bucket(bucket)


@pytest.fixture
def proxy(moto):
    proxies = []

    def new(seed=0):
        p = FaultProxy(moto.port, seed=seed).start()
        proxies.append(p)
        return p

    yield new
    for p in proxies:
        p.stop()


def s3_broker(make_tier_broker, bucket, endpoint, name="broker", *extra, **kw):
    store = f"s3://{bucket.bucket}/{bucket.prefix}" if bucket.prefix else f"s3://{bucket.bucket}"
    return make_tier_broker(name, *extra, store=store, env=s3_env(endpoint), bucket=bucket, **kw)


# --- waits and checks ------------------------------------------------------------------------------


def status_line(broker: TierBroker, topic: str, partition: int = 0) -> str:
    try:
        lag = upload_lag(broker, topic, partition)
    except Exception as e:  # noqa: BLE001 - a diagnostic, never the failure itself
        lag = f"unavailable ({e!r})"
    segs = broker.local_segments(topic, partition)
    return (f"remote end {broker.bucket.remote_end(topic, partition)}, upload lag metric {lag}, "
            f"local segments {len(segs)} from {min(segs, default=None)} holding {sum(segs.values())} bytes")


def wait_uploaded(broker: TierBroker, topic: str, end: int, timeout: float = CATCH_UP_TIMEOUT,
                  partition: int = 0) -> None:
    """The manifest lists offsets up to `end` and the lag metric says 0."""
    wait_for(lambda: broker.bucket.remote_end(topic, partition) >= end, timeout,
             lambda: f"{topic}/{partition}: uploads to reach offset {end} ({status_line(broker, topic, partition)})",
             interval=0.5)
    wait_for(lambda: upload_lag(broker, topic, partition) == 0, 30,
             lambda: f"{topic}/{partition}: floe_tier_upload_lag_offsets to be 0 ({status_line(broker, topic, partition)})",
             interval=0.5)


def wait_local_bound(broker: TierBroker, topic: str, bound: int = LOCAL_BOUND, timeout: float = 30.0) -> int:
    """The partition's local .log bytes come down to `bound` (retention runs every 5 s)."""
    wait_for(lambda: broker.local_log_bytes(topic) <= bound, timeout,
             lambda: f"{topic}: local .log bytes <= {bound} (local target {LOCAL_TARGET} + 2 segments of "
                     f"{SEGMENT}); {status_line(broker, topic)}",
             interval=0.5)
    return broker.local_log_bytes(topic)


def assert_manifest_sound(broker: TierBroker, topic: str, end: int | None = None, partition: int = 0) -> dict:
    m = broker.bucket.manifest(topic, partition)
    assert m is not None, f"{topic}/{partition}: no manifest.json in the object store"
    problems = broker.bucket.manifest_problems(topic, partition)
    assert not problems, f"{topic}/{partition}: manifest entries without their objects: {problems[:10]}"
    assert m["remote_start_offset"] == 0, f"{topic}/{partition}: remote start {m['remote_start_offset']}, expected 0"
    segs = m["segments"]
    assert segs and segs[0]["base_offset"] == 0, f"{topic}/{partition}: first remote segment {segs[:1]}"
    gaps = [(a["last_offset"], b["base_offset"]) for a, b in zip(segs, segs[1:]) if b["base_offset"] != a["last_offset"] + 1]
    assert not gaps, f"{topic}/{partition}: gaps between remote segments (last, next base): {gaps[:5]}"
    if end is not None:
        assert segs[-1]["last_offset"] + 1 == end, f"{topic}/{partition}: remote end {segs[-1]['last_offset'] + 1}, expected {end}"
    return m


def list_offsets(broker, topic: str, spec) -> int:
    from confluent_kafka.admin import AdminClient

    client = AdminClient({"bootstrap.servers": broker.bootstrap})
    tp = TopicPartition(topic, 0)
    return client.list_offsets({tp: spec}, request_timeout=30)[tp].result(timeout=60).offset


def offsets_for_times(broker, topic: str, timestamps: list[int]) -> list[int]:
    from confluent_kafka import Consumer

    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": unique_topic("ts")})
    out = []
    try:
        # One timestamp per request: librdkafka answers every entry of one partition with the
        # result of the last one when a request names the partition several times.
        for ts in timestamps:
            [r] = c.offsets_for_times([TopicPartition(topic, 0, ts)], timeout=60)
            assert r.error is None, f"offsets_for_times({ts}): {r.error}"
            out.append(r.offset)
        return out
    finally:
        c.close()


def read_window(bootstrap: str, topic: str, start: int, seconds: float) -> tuple[list, list]:
    """Whatever a consumer from `start` gets within `seconds`: ([(offset, key, value)], [errors])."""
    from confluent_kafka import Consumer, KafkaError

    c = Consumer({"bootstrap.servers": bootstrap, "group.id": unique_topic("win"), "enable.auto.commit": False,
                  "auto.offset.reset": "error", "check.crcs": True, "enable.partition.eof": False})
    got, errors = [], []
    try:
        c.assign([TopicPartition(topic, 0, start)])
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            for m in c.consume(num_messages=1000, timeout=0.3):
                if m.error():
                    if m.error().code() != KafkaError._PARTITION_EOF:
                        errors.append(str(m.error()))
                    continue
                got.append((m.offset(), m.key(), m.value()))
    finally:
        c.close()
    return got, errors


# --- the main flow: >= 100 MB through a tiered topic -----------------------------------------------


def run_big_flow(broker: TierBroker, kcat: str, name: str, rate_bytes: float | None = None) -> tuple[str, int, RecordGen]:
    from confluent_kafka.admin import OffsetSpec

    topic = broker.create_topic(unique_topic(name), partitions=1, **TIERED)
    gen = RecordGen(seed=7)
    n = gen.count_for(BIG)

    with LocalSampler(broker, topic, interval=0.2) as sampler:
        stats = produce_records(broker.bootstrap, topic, gen, 0, n, rate_bytes=rate_bytes)
        assert_produced(stats, n)
        assert stats.value_bytes >= BIG, f"produced only {stats.value_bytes} bytes of values"
        wait_uploaded(broker, topic, n)
        final = wait_local_bound(broker, topic)
    print(f"{topic}: produced {stats.value_bytes} value bytes in {stats.seconds:.1f}s; local dir max sampled "
          f"{sampler.max} bytes, {final} bytes once caught up")
    assert not sampler.violations, sampler.violations[:5]
    over = sampler.stale_violations(LOCAL_BOUND, RETENTION_SLACK_S)
    assert not over, (f"{topic}: local segments uploaded over {RETENTION_SLACK_S}s earlier hold more than the local "
                      f"target + 2 segments ({LOCAL_BOUND}) (s since start, bytes, remote end): {over[:10]}")
    segs = broker.local_segments(topic)
    local_start = min(segs)
    assert local_start >= n - (LOCAL_BOUND // gen.size) - 100, \
        f"{topic}: local log starts at {local_start} of {n}: the data is not mostly remote ({segs})"
    manifest = assert_manifest_sound(broker, topic, end=n)
    remote_bytes = sum(s["size_bytes"] for s in manifest["segments"])
    assert remote_bytes >= BIG, f"{topic}: the manifest lists only {remote_bytes} bytes"

    # ListOffsets: earliest is the remote start (0), latest the high watermark.
    assert watermarks(broker.bootstrap, topic) == {0: (0, n)}, f"{topic}: watermarks {watermarks(broker.bootstrap, topic)}"
    assert list_offsets(broker, topic, OffsetSpec.earliest()) == 0
    assert list_offsets(broker, topic, OffsetSpec.latest()) == n

    # Timestamp lookups across tiers: remote (first, middle), the boundary, local, past the end.
    probes = [0, 1, 12_345, n // 2, local_start - 1, local_start, n - 3]
    got = offsets_for_times(broker, topic, [gen.timestamp(i) for i in probes] + [gen.timestamp(n) + 60_000])
    assert got == probes + [-1], f"{topic}: offsets_for_times for records {probes} + past the end gave {got} " \
                                 f"(local start {local_start})"

    # Reads: a fresh confluent-kafka consumer and kcat from 0, and a random access into the remote part.
    r = verify_confluent(broker.bootstrap, topic, gen, n)
    assert r.count == n
    r = verify_kcat(kcat, broker.bootstrap, topic, gen, n)
    assert r.count == n
    start = 31_337
    r = verify_confluent(broker.bootstrap, topic, gen, start + 3000, start=start)
    assert r.count == 3000
    return topic, n, gen


def test_file_store_100mb_local_dir_bounded_and_reads_byte_identical(make_tier_broker, kcat):
    """Default store (file://<data-dir>/bucket, nothing else running). Produce is paced at
    8 MiB/s so the local directory is sampled over several retention passes."""
    broker = make_tier_broker("file")
    topic, n, _ = run_big_flow(broker, kcat, "tier-file", rate_bytes=8 * MiB)
    assert (broker.data_dir / "bucket" / "topics" / topic / "0" / "manifest.json").is_file(), \
        "the default object store is not <data-dir>/bucket"
    tj = broker.bucket.topic_manifest(topic)
    assert tj and tj.get("configs", {}).get("remote.storage.enable") == "true", f"topic.json: {tj}"


def test_s3_moto_100mb_local_dir_bounded_and_reads_byte_identical(make_tier_broker, s3, moto, kcat):
    """s3://bucket/prefix on moto, configured through the AWS_* variables."""
    bucket = s3("floe/cluster-a")
    broker = s3_broker(make_tier_broker, bucket, moto.endpoint, "s3")
    topic, n, _ = run_big_flow(broker, kcat, "tier-s3")

    keys = bucket.all_keys()
    outside = [k for k in keys if not k.startswith("floe/cluster-a/")]
    assert not outside, f"objects outside the configured prefix: {outside[:5]}"
    mine = bucket.keys(f"topics/{topic}/0/")
    logs = [k for k in mine if k.endswith(".log")]
    manifest = bucket.manifest(topic)
    assert len(logs) >= len(manifest["segments"]) >= 100, \
        f"{len(logs)} .log objects, {len(manifest['segments'])} manifest entries for {n} records"
    assert bucket.topic_manifest(topic) is not None, "topics/<topic>/topic.json missing"
    assert not (broker.data_dir / "bucket").exists() or not FileBucket(broker.data_dir / "bucket").keys("topics/"), \
        "with an s3:// store nothing should be written to <data-dir>/bucket"


def test_s3_unreachable_endpoint_fails_startup_clearly(make_tier_broker, tmp_path):
    from floe_harness import BrokerError, free_ports

    port = free_ports(1)[0]  # nothing listens there
    broker = make_tier_broker("dead", store="s3://nobucket/x", env=s3_env(f"http://127.0.0.1:{port}"), start=False)
    t0 = time.monotonic()
    with pytest.raises(BrokerError) as e:
        broker.start(timeout=120)
    assert "exited with code" in str(e.value), f"floe should exit, not hang: {str(e.value)[:500]}"
    assert broker.proc.returncode != 0
    log = broker.log_text()
    assert "s3://nobucket/x" in log and "endpoint" in log.lower(), f"no clear error in the log:\n{broker.log_tail(40)}"
    assert time.monotonic() - t0 < 90, "startup check took too long to give up"


def test_one_writer_per_prefix_second_broker_refused_taken_over_broker_stops_writing(make_tier_broker, s3, moto):
    """The writer lease on moto: a second data dir on the same prefix is refused while the first
    broker renews its lease; the same data dir restarting after kill -9 starts at once; a clean
    stop hands the prefix over at once; a broker paused past its lease and taken over stops
    writing (its manifests stay the new holder's) while it keeps acknowledging produce locally."""
    import os
    import signal

    from floe_harness import BrokerError

    bucket = s3("floe/shared")
    lease = "[tier]\nwriter-lease-ms = 4000\n"

    def broker(name, start=True):
        return s3_broker(make_tier_broker, bucket, moto.endpoint, name, config=lease, start=start)

    def holder():
        raw = bucket.get("_floe/writer.json")
        return json.loads(raw)["id"] if raw else None

    def cluster_id(b):
        return (b.data_dir / "meta" / "cluster_id").read_text().strip()

    a = broker("a")
    assert holder() == cluster_id(a)
    topic = a.create_topic(unique_topic("lease"), partitions=1, **TIERED)
    gen = RecordGen(seed=43)
    n = gen.count_for(3 * MiB)
    assert_produced(produce_records(a.bootstrap, topic, gen, 0, n), n)
    wait_uploaded(a, topic, n)

    # A second data dir on the prefix: refused, naming the holder; nothing of it written.
    b = broker("b", start=False)
    with pytest.raises(BrokerError):
        b.start(timeout=60)
    log = b.log_text()
    assert "written by another Floe broker" in log and cluster_id(a) in log and "expires in" in log, b.log_tail(20)
    assert holder() == cluster_id(a)
    assert a.bucket.remote_end(topic) == n

    # The holder's own data dir after kill -9: the same holder, starts at once.
    a.kill()
    a.start()
    assert holder() == cluster_id(a)
    # A clean stop releases the lease: the other data dir starts at once.
    a.stop()
    assert holder() is None, "a clean stop should delete the lease"
    b.start()
    assert holder() == cluster_id(b)

    # b, paused past its lease, is taken over by c; woken up, b writes nothing more: no
    # manifest, and no Iceberg commit of the topic it projects.
    t2 = b.create_topic(unique_topic("lease-b"), partitions=1,
                        **{**TIERED, "iceberg.mode": "key_value", "iceberg.target.lag.ms": "500"})
    gen2 = RecordGen(seed=44)
    m = gen2.count_for(2 * MiB)
    assert_produced(produce_records(b.bootstrap, t2, gen2, 0, m), m)
    wait_uploaded(b, t2, m)
    wait_projected(b, t2, {0: m}, rows=m, timeout=60)
    table_versions = lambda: sorted(k for k in b.bucket.keys(f"iceberg/floe/{t2}/metadata/")
                                    if k.endswith(".metadata.json"))
    versions = table_versions()
    assert versions, "no table metadata for the projected topic"
    os.kill(b.proc.pid, signal.SIGSTOP)
    try:
        time.sleep(6)  # past the 4 s lease, by moto's clock too (Last-Modified has whole seconds)
        c = broker("c")
        assert holder() == cluster_id(c)
    finally:
        os.kill(b.proc.pid, signal.SIGCONT)
    more = gen2.count_for(2 * MiB)
    assert_produced(produce_records(b.bootstrap, t2, gen2, m, more), more, "produce to the taken-over broker")
    wait_for(lambda: "took over the object store's writer lease" in b.log_text(), 30,
             lambda: f"b to notice the takeover:\n{b.log_tail(20)}", interval=0.5)
    time.sleep(4)  # idle roll (1 s) + tier passes: b would have uploaded the new segments by now
    assert b.bucket.remote_end(t2) == m, f"the taken-over broker wrote a manifest: remote end {b.bucket.remote_end(t2)}"
    assert holder() == cluster_id(c), "the taken-over broker rewrote the lease"
    _, body = b.admin_get(f"/v1/tier/status?topic={t2}")
    err = json.loads(body)["partitions"][0]["last_error"] or ""
    assert "refused" in err and "took over" in err, f"tier status of the taken-over broker: {err!r}"
    # The projector found the commit refused (its status shows it between restarts).
    wait_for(lambda: "not writing to the object store" in b.log_text(), 30,
             lambda: f"b's projector to refuse its commit:\n{describe(topic_status(b, t2))}\n{b.log_tail(20)}",
             interval=0.5)
    assert table_versions() == versions, "the taken-over broker committed to the Iceberg table"
    # Everything b acknowledged is still readable from it (local tier).
    r = verify_confluent(b.bootstrap, t2, gen2, m + more)
    assert r.count == m + more
    b.stop()
    c.stop()


# --- T1: the object store is down under steady produce ----------------------------------------------


def test_t1_store_outage_under_steady_produce(make_tier_broker, s3, moto, proxy):
    """503 for 14 s then hung requests for 6 s while a producer writes 1 MiB/s with acks=all."""
    bucket = s3()
    fp = proxy(seed=1)
    broker = s3_broker(make_tier_broker, bucket, fp.endpoint, "t1")
    topic = broker.create_topic(unique_topic("tier-t1"), partitions=1, **TIERED)
    gen = RecordGen(seed=11)
    rate = 1 * MiB
    ok_s, down_s, hang_s, after_s = 8.0, 14.0, 6.0, 8.0
    n = gen.count_for(int(rate * (ok_s + down_s + hang_s + after_s)))

    def deleted_before_upload():
        # Local first, then the manifest (read from moto directly): both only grow, so a
        # local start above the remote end is certain evidence of a segment deleted un-uploaded.
        segs = broker.local_segments(topic)
        if not segs:
            return None
        local_start = min(segs)
        remote_end = bucket.remote_end(topic)
        if local_start > remote_end:
            return f"local start {local_start} > remote end {remote_end} at {time.monotonic():.1f}"
        return None

    stats_box = {}
    producer = threading.Thread(
        target=lambda: stats_box.setdefault(
            "stats", produce_records(broker.bootstrap, topic, gen, 0, n, rate_bytes=rate,
                                     conf={"message.timeout.ms": 20_000})),
        name="steady-producer", daemon=True)
    phases = {}
    with LocalSampler(broker, topic, interval=0.5, check=deleted_before_upload) as sampler:
        t0 = time.monotonic()
        producer.start()
        time.sleep(ok_s)
        phases["down"] = time.monotonic()
        remote_end_at_down = bucket.remote_end(topic)
        fp.set_mode("down")
        time.sleep(down_s)
        phases["hang"] = time.monotonic()
        fp.set_mode("hang")
        time.sleep(hang_s)
        phases["heal"] = time.monotonic()
        fp.set_mode("ok")
        remote_end_at_heal = bucket.remote_end(topic)
        producer.join(timeout=ok_s + down_s + hang_s + after_s + 120)
        assert not producer.is_alive(), "the producer did not finish"
        stats = stats_box["stats"]
        assert_produced(stats, n, "steady produce through the outage")
        wait_uploaded(broker, topic, n, timeout=150)
        wait_local_bound(broker, topic)

    # Produce was unaffected: acknowledgements kept coming while the store was down or hung.
    acks = sorted(stats.ack_times)
    gaps = [(round(a - t0, 1), round(b - a, 2)) for a, b in zip(acks, acks[1:]) if b - a > 3.0]
    assert not gaps, f"produce stalled (time since start, gap s): {gaps[:10]}"
    for lo, hi in ((phases["down"], phases["hang"]), (phases["hang"], phases["heal"])):
        during = sum(1 for a in acks if lo <= a < hi)
        expected = (hi - lo) * rate / gen.size
        assert during >= 0.5 * expected, \
            f"only {during} acks in the {hi - lo:.0f}s outage window, ~{expected:.0f} expected at {rate} B/s"
    # The outage really happened and held uploads back.
    assert fp.counts.get("503", 0) > 0, f"floe made no request during the outage: {fp.counts}"
    assert remote_end_at_heal - remote_end_at_down <= 3000, \
        f"remote end moved {remote_end_at_down} -> {remote_end_at_heal} while the store was down"
    # No local segment deleted before its upload, and the local dir grew past the target meanwhile.
    assert not sampler.violations, f"local segments deleted before upload: {sampler.violations[:5]}"
    during_outage = [s for t, s in sampler.samples if phases["down"] <= t <= phases["heal"] + 1]
    assert max(during_outage) > LOCAL_BOUND, \
        f"local dir stayed <= {LOCAL_BOUND} bytes during the outage (max {max(during_outage)}): nothing was held back?"
    over = sampler.stale_violations(LOCAL_BOUND, RETENTION_SLACK_S)
    assert not over, (f"local segments uploaded over {RETENTION_SLACK_S}s earlier hold more than {LOCAL_BOUND} bytes "
                      f"(s since start, bytes, remote end): {over[:5]}")

    # The outage was reported once per kind of error (503, hung, refused), not on every retry
    # pass (a pass a second for 20 s), and the recovery was reported.
    log = broker.log_text()
    failures = [line for line in log.splitlines() if "segment upload failed" in line]
    assert 0 < len(failures) <= 6, f"{len(failures)} upload-failure lines:\n" + "\n".join(failures[:12])
    assert "segment uploads resumed" in log, broker.log_tail(20)

    assert_manifest_sound(broker, topic, end=n)
    r = verify_confluent(broker.bootstrap, topic, gen, n)
    assert r.count == n


# --- T3: crash while uploads run ----------------------------------------------------------------------


@pytest.mark.parametrize("store", ["s3", "file"])
def test_t3_kill9_during_uploads(make_tier_broker, s3, moto, proxy, store):
    rnd = random.Random(3)
    if store == "s3":
        bucket = s3()
        fp = proxy(seed=3)
        fp.latency = 0.05  # keep uploads in flight long enough to be interrupted
        broker = s3_broker(make_tier_broker, bucket, fp.endpoint, "t3")
    else:
        broker = make_tier_broker("t3")
    topic = broker.create_topic(unique_topic(f"tier-t3-{store}"), partitions=1, **TIERED)
    gen = RecordGen(seed=13)
    per_round = gen.count_for(8 * MiB)
    produced = 0
    kills = []
    for rnd_no in range(4):
        stats = produce_records(broker.bootstrap, topic, gen, produced, per_round)
        assert_produced(stats, per_round, f"round {rnd_no}")
        produced += per_round
        before = broker.bucket.remote_end(topic)
        # Kill once uploads of this round are under way (or right away now and then).
        if rnd_no % 2 == 0:
            wait_for(lambda: broker.bucket.remote_end(topic) > before, 30,
                     lambda: f"uploads to start ({status_line(broker, topic)})", interval=0.05)
        time.sleep(rnd.uniform(0, 0.8))
        broker.kill()
        listed = {f"{x['base_offset']:020d}-{x['last_offset']:020d}-{x['epoch']}"
                  for x in (broker.bucket.manifest(topic) or {"segments": []})["segments"]}
        orphans = [k for k in broker.bucket.keys(f"topics/{topic}/0/")
                   if k.endswith(".log") and k.rsplit("/", 1)[1][:-4] not in listed]
        kills.append((rnd_no, before, broker.bucket.remote_end(topic), produced, len(orphans)))
        problems = broker.bucket.manifest_problems(topic)
        assert not problems, f"after kill -9 #{rnd_no}: manifest entries without their objects: {problems[:5]}"
        broker.start()
        marks = watermarks(broker.bootstrap, topic)
        assert marks == {0: (0, produced)}, f"after kill -9 #{rnd_no}: watermarks {marks}, produced {produced}"
    print(f"kills (round, remote end before, at kill, produced, unlisted .log objects): {kills}")
    assert any(k[2] < k[3] for k in kills), f"no kill landed before uploads finished: {kills}"

    wait_uploaded(broker, topic, produced)
    wait_local_bound(broker, topic)
    assert_manifest_sound(broker, topic, end=produced)
    r = verify_confluent(broker.bootstrap, topic, gen, produced)
    assert r.count == produced
    # Across the local/remote boundary once more, from just below the local start.
    local_start = min(broker.local_segments(topic))
    start = max(0, local_start - 2000)
    r = verify_confluent(broker.bootstrap, topic, gen, produced, start=start)
    assert r.count == produced - start


# --- T4: flaky remote reads -------------------------------------------------------------------------


def test_t4_flaky_remote_reads_identical_bytes(make_tier_broker, s3, moto, proxy):
    """30% of GETs answer 503 or a body cut in half; a small cache so reads hit the store."""
    bucket = s3()
    fp = proxy(seed=4)
    broker = s3_broker(make_tier_broker, bucket, fp.endpoint, "t4", "--tier-cache-bytes", str(1 * MiB),
                       config="[tier]\nchunk-bytes = 262144\n")
    topic = broker.create_topic(unique_topic("tier-t4"), partitions=1, **TIERED)
    gen = RecordGen(seed=17)
    n = gen.count_for(24 * MiB)
    assert_produced(produce_records(broker.bootstrap, topic, gen, 0, n), n)
    wait_uploaded(broker, topic, n)
    wait_local_bound(broker, topic)
    local_start = min(broker.local_segments(topic))
    assert local_start > n // 2, f"local start {local_start}: too little of {n} is remote"
    fetched_before = metric_sum(broker.metrics(), "floe_tier_remote_fetched_bytes_total") or 0

    fp.get_fault_ratio = 0.3
    fp.latency = 0.005
    r = verify_confluent(broker.bootstrap, topic, gen, n, allow_retriable=True, timeout=240)
    assert r.count == n
    fp.get_fault_ratio = 0.0

    faults = fp.counts.get("get-503", 0) + fp.counts.get("get-truncated", 0)
    assert fp.counts.get("get-503", 0) > 0 and fp.counts.get("get-truncated", 0) > 0, \
        f"the proxy injected too few faults to mean anything: {fp.counts}"
    m = broker.metrics()
    fetched = (metric_sum(m, "floe_tier_remote_fetched_bytes_total") or 0) - fetched_before
    remote_bytes = sum(s["size_bytes"] for s in bucket.manifest(topic)["segments"] if s["last_offset"] < local_start)
    assert fetched >= 0.9 * remote_bytes, \
        f"only {fetched} bytes fetched from the store for {remote_bytes} remote bytes: reads did not hit the store"
    cache = metric_sum(m, "floe_tier_cache_bytes")
    assert cache is None or cache <= 2 * MiB, f"cache holds {cache} bytes with --tier-cache-bytes 1 MiB"
    print(f"\nT4: {faults} faults injected ({fp.counts}), {len(r.retriable_errors)} retriable errors seen, "
          f"read {n} records in {r.seconds:.1f}s")


def test_t4_corrupt_or_missing_object_never_served(make_tier_broker):
    """A remote .log with flipped bytes, another deleted: readers of those ranges get errors
    (or nothing), never wrong data; the rest of the partition stays readable."""
    broker = make_tier_broker("t4c", "--tier-cache-bytes", str(1 * MiB), config="[tier]\nchunk-bytes = 262144\n")
    topic = broker.create_topic(unique_topic("tier-t4c"), partitions=1, **TIERED)
    gen = RecordGen(seed=19)
    n = gen.count_for(12 * MiB)
    assert_produced(produce_records(broker.bootstrap, topic, gen, 0, n), n)
    wait_uploaded(broker, topic, n)
    wait_local_bound(broker, topic)
    local_start = min(broker.local_segments(topic))
    segs = [s for s in broker.bucket.manifest(topic)["segments"] if s["last_offset"] < local_start]
    assert len(segs) >= 6, f"too few remote-only segments: {len(segs)}"
    corrupt, missing, healthy = segs[2], segs[4], segs[3]
    root = broker.data_dir / "bucket" / "topics" / topic / "0"

    def stem(s):
        return f"{s['base_offset']:020d}-{s['last_offset']:020d}-{s['epoch']}"

    path = root / f"{stem(corrupt)}.log"
    data = bytearray(path.read_bytes())
    for k in range(len(data) // 3, len(data) // 3 + 64):
        data[k] ^= 0xFF
    path.write_bytes(bytes(data))
    (root / f"{stem(missing)}.log").unlink()

    for seg, what in ((corrupt, "corrupt"), (missing, "missing")):
        got, errors = read_window(broker.bootstrap, topic, seg["base_offset"], 5.0)
        wrong = [o for o, k, v in got if k != gen.key(o) or v != gen.value(o)]
        assert not wrong, f"{what} object: wrong data served at offsets {wrong[:5]}"
        inside = [o for o, _, _ in got if seg["base_offset"] <= o <= seg["last_offset"]]
        assert not inside, f"{what} object {stem(seg)}: records {inside[:3]}.. served from it"
        skipped = [o for o, _, _ in got if o > seg["last_offset"]]
        assert not skipped, (f"{what} object {stem(seg)}: the consumer silently skipped to offset {skipped[0]} "
                             f"(errors seen: {errors[:3]})")
    log = broker.log_text()
    assert "remote read failed" in log or "crc" in log.lower(), \
        f"no error logged for the corrupt/missing objects:\n{broker.log_tail(60)}"
    # The healthy segment between them still reads, byte-identical.
    r = verify_confluent(broker.bootstrap, topic, gen, healthy["last_offset"] + 1, start=healthy["base_offset"])
    assert r.count == healthy["last_offset"] + 1 - healthy["base_offset"]


# --- delete ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("store", ["file", "s3"])
def test_delete_tiered_topic_deletes_its_objects(make_tier_broker, s3, moto, store):
    if store == "s3":
        bucket = s3()
        broker = s3_broker(make_tier_broker, bucket, moto.endpoint, "del")
    else:
        broker = make_tier_broker("del")
    gen = RecordGen(seed=23)
    n = gen.count_for(4 * MiB)
    doomed = broker.create_topic(unique_topic("tier-del"), partitions=1, **TIERED)
    kept = broker.create_topic(unique_topic("tier-keep"), partitions=1, **TIERED)
    no_remote_delete = broker.create_topic(unique_topic("tier-nodel"), partitions=1,
                                           **{**TIERED, "remote.delete": "false"})
    for t in (doomed, kept, no_remote_delete):
        assert_produced(produce_records(broker.bootstrap, t, gen, 0, n), n, t)
    for t in (doomed, kept, no_remote_delete):
        wait_uploaded(broker, t, n)
    kept_keys = broker.bucket.keys(f"topics/{kept}/")
    nodel_keys = broker.bucket.keys(f"topics/{no_remote_delete}/")
    assert broker.bucket.keys(f"topics/{doomed}/"), "nothing uploaded for the topic to delete"

    broker.topic("delete", doomed)
    broker.topic("delete", no_remote_delete)
    wait_for(lambda: not broker.bucket.keys(f"topics/{doomed}/"), 60,
             lambda: f"objects of deleted {doomed} to go: {sorted(broker.bucket.keys(f'topics/{doomed}/'))[:5]}",
             interval=0.5)
    assert broker.bucket.keys(f"topics/{kept}/").keys() >= kept_keys.keys(), "another topic's objects were deleted"
    time.sleep(2)
    assert broker.bucket.keys(f"topics/{no_remote_delete}/").keys() >= nodel_keys.keys(), \
        "remote.delete=false: the objects should stay after the topic is deleted"
    r = verify_confluent(broker.bootstrap, kept, gen, n)
    assert r.count == n

    # A new topic of the same name starts empty: no old remote data comes back.
    again = broker.create_topic(doomed, partitions=1, **TIERED)
    fresh = RecordGen(seed=29)
    assert_produced(produce_records(broker.bootstrap, again, fresh, 0, 50), 50)
    assert watermarks(broker.bootstrap, again) == {0: (0, 50)}
    r = verify_confluent(broker.bootstrap, again, fresh, 50)
    assert r.count == 50


# --- coming: floe tier status / floe topic recover ------------------------------------------------------


def test_tier_status_cli_and_http(make_tier_broker):
    """PENDING FEATURE: `floe tier status [TOPIC] --admin` and GET /v1/tier/status?topic=T."""
    broker = make_tier_broker("status")
    topic = broker.create_topic(unique_topic("tier-status"), partitions=1, **TIERED)
    gen = RecordGen(seed=31)
    n = gen.count_for(8 * MiB)
    assert_produced(produce_records(broker.bootstrap, topic, gen, 0, n), n)
    wait_uploaded(broker, topic, n)
    wait_local_bound(broker, topic)
    time.sleep(1.5)  # let a tier pass and a retention pass publish the settled state
    manifest = broker.bucket.manifest(topic)
    local_start = min(broker.local_segments(topic))

    status, body = broker.admin_get(f"/v1/tier/status?topic={topic}")
    assert status == 200, f"GET /v1/tier/status?topic={topic}: HTTP {status} {body[:300]!r}"
    doc = json.loads(body)
    parts = [p for p in doc["partitions"] if p["topic"] == topic]
    assert len(parts) == 1, f"partitions for {topic}: {doc}"
    p = parts[0]
    want = {
        "partition": 0,
        "local_start": local_start,
        "remote_start": 0,
        "remote_end": n,
        "high_watermark": n,
        "upload_lag": 0,
    }
    assert {k: p.get(k) for k in want} == want, f"tier status {p}"
    assert p["uploaded_segments"] == len(manifest["segments"]), f"uploaded_segments {p['uploaded_segments']} vs manifest {len(manifest['segments'])}"
    assert p["uploaded_bytes"] == sum(s["size_bytes"] for s in manifest["segments"])
    assert all(q["topic"] == topic for q in doc["partitions"]), "?topic= should filter"
    status, _ = broker.admin_get(f"/v1/tier/status?topic={unique_topic('nope')}")
    assert status == 404

    res = subprocess.run([str(broker.binary), "tier", "status", topic, "--admin", broker.admin_addr],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, f"floe tier status exited {res.returncode}\n{res.stdout}\n{res.stderr}"
    out = res.stdout
    print(f"floe tier status {topic}:\n{out}")
    for v in (topic, str(n), str(local_start)):
        assert v in out, f"`floe tier status` output lacks {v!r}:\n{out}"
    res = subprocess.run([str(broker.binary), "tier", "status", "--admin", broker.admin_addr],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0 and topic in res.stdout, f"floe tier status (all):\n{res.stdout}\n{res.stderr}"

    # The counts are what the manifest lists, not what this process
    # uploaded: after a restart they are the same.
    broker.restart()
    def counts():
        _, body = broker.admin_get(f"/v1/tier/status?topic={topic}")
        q = json.loads(body)["partitions"][0]
        return q["uploaded_segments"], q["uploaded_bytes"]
    manifest = broker.bucket.manifest(topic)
    want_counts = (len(manifest["segments"]), sum(s["size_bytes"] for s in manifest["segments"]))
    wait_for(lambda: counts() == want_counts, 30,
             lambda: f"tier status after a restart: {counts()} vs the manifest's {want_counts}")


def _recent_records(n: int, seed: int, partitions: int):
    from floe_harness import make_records

    now = int(time.time() * 1000) - 600_000
    recs = make_records(n, seed=seed, partitions=partitions, big_every=4000)
    for i, r in enumerate(recs):
        r.timestamp = now + i  # within retention.ms, or time retention would delete them
    return recs


def test_topic_recover_from_bucket_on_empty_data_dir(make_tier_broker, tmp_path):
    """PENDING FEATURE: `floe topic recover --all` / `floe topic recover NAME` on a wiped data dir."""
    from floe_harness import assert_records_at, consume_all, produce

    store = f"file://{tmp_path / 'shared-bucket'}"
    bucket = FileBucket(tmp_path / "shared-bucket")
    a = make_tier_broker("a", store=store, bucket=bucket)
    one = a.create_topic(unique_topic("rec-one"), partitions=1, **TIERED)
    three = a.create_topic(unique_topic("rec-three"), partitions=3,
                           **{**TIERED, "retention.ms": "86400000", "max.message.bytes": "2000000"})
    gen = RecordGen(seed=37)
    n1 = gen.count_for(12 * MiB)
    assert_produced(produce_records(a.bootstrap, one, gen, 0, n1), n1)
    recs = _recent_records(12_000, seed=38, partitions=3)
    reports = produce(a.bootstrap, three, recs, conf={"enable.idempotence": True})
    marks3 = watermarks(a.bootstrap, three)
    wait_uploaded(a, one, n1)
    for p, (_, hi) in marks3.items():
        wait_uploaded(a, three, hi, partition=p)
    a.stop()

    # B: an empty data dir on the same bucket; recover everything.
    b = make_tier_broker("b", store=store, bucket=bucket)
    res = subprocess.run([str(b.binary), "topic", "recover", "--all", "--admin", b.admin_addr],
                         capture_output=True, text=True, timeout=180)
    print(f"floe topic recover --all:\n{res.stdout}{res.stderr}")
    assert res.returncode == 0, f"floe topic recover --all exited {res.returncode}\n{res.stdout}\n{res.stderr}"
    assert one in res.stdout and three in res.stdout, f"recover progress should name the topics:\n{res.stdout}"
    assert watermarks(b.bootstrap, one) == {0: (0, n1)}
    assert watermarks(b.bootstrap, three) == {p: (0, hi) for p, (_, hi) in marks3.items()}
    desc = b.topic("describe", three).stdout
    assert "retention.ms" in desc and "86400000" in desc, f"configs not restored:\n{desc}"
    assert "remote.storage.enable" in desc, f"configs not restored:\n{desc}"
    r = verify_confluent(b.bootstrap, one, gen, n1)
    assert r.count == n1
    consumed = consume_all(b.bootstrap, three)
    assert_records_at(consumed, recs, reports)
    # The local log continues at the remote end: new records get the next offsets and read back.
    more = 2000
    assert_produced(produce_records(b.bootstrap, one, gen, n1, more), more, "produce after recover")
    r = verify_confluent(b.bootstrap, one, gen, n1 + more)
    assert r.count == n1 + more
    b.stop()

    # C: another empty data dir, recover one topic by name: only that one comes back.
    c = make_tier_broker("c", store=store, bucket=bucket)
    res = subprocess.run([str(c.binary), "topic", "recover", three, "--admin", c.admin_addr],
                         capture_output=True, text=True, timeout=180)
    assert res.returncode == 0, f"floe topic recover {three} exited {res.returncode}\n{res.stdout}\n{res.stderr}"
    listed = c.topic("list").stdout
    assert three in listed and one not in listed, f"recover {three} should restore only it:\n{listed}"
    consumed = consume_all(c.bootstrap, three)
    assert_records_at(consumed, recs, reports)
    # An unknown topic: a clear failure, not success.
    res = subprocess.run([str(c.binary), "topic", "recover", unique_topic("nope"), "--admin", c.admin_addr],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode != 0, f"recovering an unknown topic should fail:\n{res.stdout}\n{res.stderr}"


# --- configs and DeleteRecords across tiers ---------------------------------------------------------------


def test_enable_tiering_without_restart_and_redpanda_aliases(make_tier_broker):
    """IncrementalAlterConfigs turns remote storage on for a live topic; Redpanda's config names
    (redpanda.remote.write, retention.local.target.bytes) work like the Kafka ones."""
    from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource, ResourceType

    broker = make_tier_broker("cfg")
    gen = RecordGen(seed=41)
    n = gen.count_for(6 * MiB)
    plain = broker.create_topic(unique_topic("tier-late"), partitions=1, **{"segment.bytes": str(SEGMENT)})
    aliased = broker.create_topic(unique_topic("tier-rp"), partitions=1, **{
        "redpanda.remote.write": "true",
        "redpanda.remote.read": "true",
        "retention.local.target.bytes": str(LOCAL_TARGET),
        "segment.bytes": str(SEGMENT),
    })
    for t in (plain, aliased):
        assert_produced(produce_records(broker.bootstrap, t, gen, 0, n), n, t)
    wait_uploaded(broker, aliased, n)
    wait_local_bound(broker, aliased)
    time.sleep(2.5)  # two tier passes
    assert broker.bucket.manifest(plain) is None, "a topic without remote storage was uploaded"
    assert broker.local_log_bytes(plain) > 5 * MiB

    client = AdminClient({"bootstrap.servers": broker.bootstrap})
    res = ConfigResource(ResourceType.TOPIC, plain, incremental_configs=[
        ConfigEntry("remote.storage.enable", "true", incremental_operation=AlterConfigOpType.SET),
        ConfigEntry("local.retention.bytes", str(LOCAL_TARGET), incremental_operation=AlterConfigOpType.SET),
    ])
    client.incremental_alter_configs([res])[res].result(timeout=60)
    wait_uploaded(broker, plain, n)
    wait_local_bound(broker, plain)
    for t in (plain, aliased):
        assert_manifest_sound(broker, t, end=n)
        assert min(broker.local_segments(t)) > n // 2, f"{t}: local data not trimmed"
        r = verify_confluent(broker.bootstrap, t, gen, n)
        assert r.count == n


def test_delete_records_moves_both_tiers(make_tier_broker):
    from confluent_kafka.admin import AdminClient

    broker = make_tier_broker("dr")
    topic = broker.create_topic(unique_topic("tier-dr"), partitions=1, **TIERED)
    gen = RecordGen(seed=43)
    n = gen.count_for(10 * MiB)
    assert_produced(produce_records(broker.bootstrap, topic, gen, 0, n), n)
    wait_uploaded(broker, topic, n)
    wait_local_bound(broker, topic)
    local_start = min(broker.local_segments(topic))
    client = AdminClient({"bootstrap.servers": broker.bootstrap})

    def delete_before(offset):
        tp = TopicPartition(topic, 0, offset)
        return client.delete_records([tp], request_timeout=60)[tp].result(timeout=60).low_watermark

    # In the remote part (mid-segment): the low watermark and the manifest's start move.
    cut = 2_500
    assert delete_before(cut) == cut
    assert watermarks(broker.bootstrap, topic) == {0: (cut, n)}
    wait_for(lambda: broker.bucket.manifest(topic)["remote_start_offset"] == cut, 30,
             lambda: f"manifest remote_start_offset to be {cut}: {broker.bucket.manifest(topic)['remote_start_offset']}")
    r = verify_confluent(broker.bootstrap, topic, gen, n, start=cut)
    assert r.count == n - cut
    got, errors = read_window(broker.bootstrap, topic, cut - 10, 4.0)
    assert not got, f"records below the deleted offset {cut} were served: {[o for o, _, _ in got[:5]]}"
    # Past the local start: nothing of the remote tier stays readable, the local log moves too.
    cut2 = local_start + 10
    assert delete_before(cut2) == cut2
    assert watermarks(broker.bootstrap, topic) == {0: (cut2, n)}
    wait_for(lambda: broker.bucket.manifest(topic)["remote_start_offset"] >= cut2, 30,
             lambda: f"manifest remote_start_offset to reach {cut2}: {broker.bucket.manifest(topic)['remote_start_offset']}")
    r = verify_confluent(broker.bootstrap, topic, gen, n, start=cut2)
    assert r.count == n - cut2
    # A restart keeps both.
    broker.restart()
    assert watermarks(broker.bootstrap, topic) == {0: (cut2, n)}


def test_internal_topics_come_back_from_the_bucket_and_cannot_be_deleted(make_tier_broker, tmp_path):
    """`_schemas` and `__consumer_offsets` are tiered: a broker started on an empty data dir
    over the same bucket has every schema id and committed offset back before it serves, and
    neither internal topic can be deleted by a client."""
    import urllib.request

    from confluent_kafka import Consumer

    from floe_harness import make_records, produce

    store = f"file://{tmp_path / 'shared-bucket'}"
    bucket = FileBucket(tmp_path / "shared-bucket")
    a = make_tier_broker("a", store=store, bucket=bucket, idle_roll_ms="300")

    schema = {"type": "record", "name": "Order", "fields": [{"name": "id", "type": "long"}]}
    req = urllib.request.Request(
        f"{a.registry_url}/subjects/orders-value/versions",
        data=json.dumps({"schema": json.dumps(schema)}).encode(),
        headers={"Content-Type": "application/vnd.schemaregistry.v1+json"}, method="POST")
    with urllib.request.urlopen(req, timeout=30) as r:
        schema_id = json.loads(r.read())["id"]

    topic = a.create_topic(unique_topic("committed"), partitions=1, **TIERED)
    produce(a.bootstrap, topic, make_records(50, seed=5))
    group = unique_topic("group")
    consumer = Consumer({"bootstrap.servers": a.bootstrap, "group.id": group,
                         "enable.auto.commit": False})
    try:
        consumer.commit(offsets=[TopicPartition(topic, 0, 42)], asynchronous=False)
    finally:
        consumer.close()

    # The idle active segments roll and upload: _schemas, the group's offsets partition, the topic.
    wait_uploaded(a, "_schemas", 1)
    wait_uploaded(a, topic, 50)
    wait_for(lambda: sum(bucket.remote_end("__consumer_offsets", p) for p in range(16)) > 0, 60,
             "the committed offset to reach the bucket", interval=0.5)
    a.stop()

    b = make_tier_broker("b", store=store, bucket=bucket)
    with urllib.request.urlopen(f"{b.registry_url}/schemas/ids/{schema_id}", timeout=30) as r:
        got = json.loads(json.loads(r.read())["schema"])
    assert got == schema, f"schema id {schema_id} after recovery from the bucket: {got}"
    with urllib.request.urlopen(f"{b.registry_url}/subjects", timeout=30) as r:
        assert json.loads(r.read()) == ["orders-value"]

    res = subprocess.run(
        [str(b.binary), "topic", "recover", topic, "--admin", b.admin_addr],
        capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, f"recover {topic}: {res.stdout}{res.stderr}"
    consumer = Consumer({"bootstrap.servers": b.bootstrap, "group.id": group,
                         "enable.auto.commit": False})
    try:
        committed = consumer.committed([TopicPartition(topic, 0)], timeout=30)
    finally:
        consumer.close()
    assert committed[0].offset == 42, f"committed offset after recovery: {committed[0]}"

    for internal in ("_schemas", "__consumer_offsets"):
        res = b.topic("delete", internal, check=False)
        assert res.returncode != 0, f"deleting {internal} should be refused:\n{res.stdout}{res.stderr}"
        # INVALID_TOPIC_EXCEPTION, and the topic is still there.
        assert "kafka error 17" in (res.stdout + res.stderr), res.stdout + res.stderr
        assert b.topic("describe", internal, check=False).returncode == 0
    assert b.bucket.manifest("_schemas") is not None


def test_relative_data_dir(floe_binary, tmp_path):
    """`floe serve --data-dir data` (relative to the working directory) starts and serves."""
    from floe_harness import Broker

    class RelativeBroker(Broker):
        def command(self):
            cmd = super().command()
            cmd[cmd.index("--data-dir") + 1] = "data"  # the harness runs it with cwd=workdir
            return cmd

    b = RelativeBroker(floe_binary, tmp_path)
    try:
        b.start()
        name = b.create_topic(unique_topic("rel"))
        assert (tmp_path / "data" / f"{name}-0").is_dir()
    finally:
        b.close()


# --- T2: the object store stays down until the local disk nears full ---------------------------------


T2_DISK_MB = 64


def _free_bytes(path) -> int:
    import os
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def test_t2_outage_until_disk_nearly_full(make_tier_broker, s3, moto, proxy, tmp_path):
    """TESTING.md T2 at CI scale: the data dir on a 64 MiB tmpfs, the store answering 503 while a
    producer writes as fast as it can. Produce must get retriable errors before the disk is
    full (the reserve is never eaten: no ENOSPC, no poisoned partition, no crash), consumers
    keep reading, and once the store heals, uploads drain, local retention frees the disk and
    the same producer's queued records go through by themselves: every record exactly once,
    in order, readable across both tiers. Reading the history back (through the remote-read
    cache, on the same small disk) must not refuse produce either."""
    import os

    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (CI runs as root)")
    disk = tmp_path / "t2" / "data"  # the broker's data dir; its log stays outside the tmpfs
    disk.mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={T2_DISK_MB}m", "tmpfs", str(disk)], check=True)
    try:
        _t2_body(make_tier_broker, s3, proxy, disk)
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def _t2_body(make_tier_broker, s3, proxy, disk):
    bucket = s3()
    fp = proxy(seed=2)
    broker = s3_broker(make_tier_broker, bucket, fp.endpoint, "t2")
    assert broker.data_dir == disk
    topic = broker.create_topic(unique_topic("tier-t2"), partitions=1, **TIERED)
    gen = RecordGen(seed=17)
    total = T2_DISK_MB << 20
    reserve = total // 20  # the default min-free-bytes: 5% of the filesystem

    # A baseline while the store is up.
    first = gen.count_for(4 * MiB)
    assert_produced(produce_records(broker.bootstrap, topic, gen, 0, first), first, "baseline")
    wait_uploaded(broker, topic, first)

    # The store goes down; a producer writes more than the whole disk holds, unthrottled.
    fp.set_mode("down")
    n = gen.count_for(int(total * 1.5))
    stats_box = {}
    producer = threading.Thread(
        target=lambda: stats_box.setdefault(
            "stats", produce_records(broker.bootstrap, topic, gen, first, n,
                                     conf={"message.timeout.ms": 300_000}, flush_timeout=300)),
        name="t2-producer", daemon=True)
    low_free = []
    stop = threading.Event()

    def sample_free():
        while not stop.is_set():
            low_free.append(_free_bytes(disk))
            time.sleep(0.05)

    sampler = threading.Thread(target=sample_free, name="t2-free", daemon=True)
    sampler.start()
    producer.start()
    try:
        wait_for(lambda: "nearly full" in broker.log_text(), 120,
                 lambda: f"the disk guard to trip (free {_free_bytes(disk)} of {total}; {status_line(broker, topic)})")
        # Held there: the log stops growing (after retention has deleted what was uploaded
        # before the outage, which may let a few more batches in), the broker stays up,
        # consumers still read.
        ends = []

        def held():
            ends.append(watermarks(broker.bootstrap, topic)[0][1])
            return len(ends) >= 4 and len(set(ends[-4:])) == 1

        wait_for(held, 60, lambda: f"the log to stop growing while the disk is low (ends {ends[-6:]})", interval=1.0)
        held_end = ends[-1]
        assert broker.running, broker.log_tail(40)
        assert producer.is_alive(), "the producer finished although the disk could not hold its records"
        # What is local reads fine (the uploaded head is out of reach while the store is down).
        local_start = min(broker.local_segments(topic))
        r = verify_confluent(broker.bootstrap, topic, gen, held_end, start=local_start)
        assert r.count == held_end - local_start
        assert fp.counts.get("503", 0) > 0, f"floe made no request during the outage: {fp.counts}"
        assert not [ln for ln in broker.log_text().splitlines() if "poison" in ln.lower()], broker.log_tail(40)

        # The store heals: uploads drain, retention frees the disk, produce resumes by itself.
        fp.set_mode("ok")
        producer.join(timeout=300)
        assert not producer.is_alive(), f"the producer did not finish after the store healed ({status_line(broker, topic)})"
    finally:
        stop.set()
        sampler.join()
    stats = stats_box["stats"]
    assert_produced(stats, n, "produce through the outage and the full disk")
    assert min(low_free) > reserve // 4, \
        f"the disk came down to {min(low_free)} free bytes (reserve {reserve}): produce ate the reserve"
    assert "room again" in broker.log_text()
    end = first + n
    wait_uploaded(broker, topic, end, timeout=180)
    wait_local_bound(broker, topic)
    assert_manifest_sound(broker, topic, end=end)

    # Read the whole history back (mostly remote, through the cache on this small disk) while
    # a producer writes: the cache must not take the space produce needs.
    more = gen.count_for(2 * MiB)
    reader = {}
    t = threading.Thread(target=lambda: reader.setdefault("r", verify_confluent(broker.bootstrap, topic, gen, end)),
                         name="t2-reader", daemon=True)
    t.start()
    extra = produce_records(broker.bootstrap, topic, gen, end, more,
                            conf={"message.timeout.ms": 60_000}, rate_bytes=1 * MiB)
    t.join(timeout=300)
    assert "r" in reader, "the history read did not finish"
    assert reader["r"].count == end
    assert_produced(extra, more, "produce while the history is read back")
    assert broker.running
