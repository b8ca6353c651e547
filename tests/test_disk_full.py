"""Disk full: produce gets a retriable error before the disk is full, nothing acknowledged is
lost, and produce resumes by itself when space returns.

The broker's data directory lives on a small tmpfs; a filler file takes the free space below
the broker's reserve (5% of the filesystem by default). While the disk is low, the producer's
records are not acknowledged (the broker answers KAFKA_STORAGE_ERROR, which clients retry);
consumers keep reading; when the filler is removed the same producer's queued records go
through. Needs root for the tmpfs mount (CI runs as root).
"""

from __future__ import annotations

import os
import subprocess
import threading
import time

import pytest
from confluent_kafka import Producer

from floe_harness import consume_all, unique_topic, wait_until

TMPFS_MB = 48


@pytest.fixture
def small_disk(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (CI runs as root)")
    mnt = tmp_path / "disk"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={TMPFS_MB}m", "tmpfs", str(mnt)], check=True)
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def free_bytes(path) -> int:
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def test_produce_pauses_when_disk_low_and_resumes(small_disk, make_broker):
    broker = make_broker(small_disk)
    topic = broker.create_topic(unique_topic("diskfull"), partitions=2)
    acked: list[int] = []
    errors: list = []
    lock = threading.Lock()

    def on_delivery(err, msg):
        with lock:
            if err is None:
                acked.append(int(msg.value()[:8]))
            else:
                errors.append(err)

    producer = Producer({
        "bootstrap.servers": broker.bootstrap,
        "acks": "all",
        "enable.idempotence": True,
        "linger.ms": 5,
        "message.timeout.ms": 120_000,
        "retry.backoff.ms": 100,
        "retry.backoff.max.ms": 500,
    })
    pad = b"x" * 1000

    def produce(start: int, n: int):
        for i in range(start, start + n):
            producer.produce(topic, value=b"%08d" % i + pad, partition=i % 2, on_delivery=on_delivery)
            producer.poll(0)

    produce(0, 2000)
    assert producer.flush(60) == 0
    assert len(acked) == 2000 and not errors, errors[:3]

    # Take the free space below the reserve (5% of 48 MiB = 2.4 MiB): leave ~1 MiB.
    filler = small_disk / "filler"
    with open(filler, "wb") as f:
        chunk = b"\0" * (1 << 20)
        while free_bytes(small_disk) > (2 << 20):
            f.write(chunk)
            f.flush()
        os.fsync(f.fileno())
    assert free_bytes(small_disk) < (TMPFS_MB << 20) // 20

    # Produce while low: nothing new is acknowledged, the broker stays up and readable.
    wait_until(lambda: "nearly full" in broker.log_text(), 10, "the broker to notice the low disk")
    produce(2000, 500)
    deadline = time.monotonic() + 4
    while time.monotonic() < deadline:
        producer.poll(0.1)
    with lock:
        assert len(acked) == 2000, f"{len(acked) - 2000} records acknowledged while the disk was low"
        assert not errors, f"the producer must retry, not fail: {errors[:3]}"
    consumed = consume_all(broker.bootstrap, topic)
    assert sum(len(v) for v in consumed.values()) == 2000
    assert broker.running

    # Space returns: the queued records go through without any client action.
    filler.unlink()
    assert producer.flush(60) == 0
    with lock:
        assert not errors, errors[:3]
        assert sorted(acked) == list(range(2500))
    assert "room again" in broker.log_text()
    consumed = consume_all(broker.bootstrap, topic)
    values = sorted(int(m.value[:8]) for msgs in consumed.values() for m in msgs)
    assert values == list(range(2500)), "every acknowledged record, exactly once"
