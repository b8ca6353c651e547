"""An idempotent producer (enable.idempotence=True, acks=all) keeps producing while the
broker is killed with SIGKILL and restarted on the same data dir, several times.

Pass (reliability target D1): every acknowledged record is present exactly once, at the
offset its delivery report gave; no record appears twice; offsets are dense; per
partition the records keep the order they were produced in; the producer never sees a
fatal error.
"""

from __future__ import annotations

import os
import random
import time
from collections import Counter

from confluent_kafka import Producer

from floe_harness import consume_all, unique_topic

PARTITIONS = 3
N = 60_000
KILLS = 8
WINDOW = 5_000


def test_idempotent_producer_through_kill9_restarts(broker):
    seed = int(os.environ.get("FLOE_TEST_SEED", random.randrange(1 << 30)))
    print(f"seed {seed} (FLOE_TEST_SEED to repeat)")
    rnd = random.Random(seed)
    # KILLS kill points in the middle of the run, at least 2.5% of it apart.
    kill_at = sorted(rnd.sample(range(N // 10, N - N // 10, N // 20), KILLS))
    kill_at = [k + rnd.randrange(N // 40) for k in kill_at]

    topic = broker.create_topic(unique_topic("idem"), partitions=PARTITIONS)
    acked: dict[int, tuple[int, int]] = {}  # seq -> (partition, offset)
    failed: dict[int, object] = {}  # seq -> delivery error (record not acknowledged)
    fatal: list = []
    errors: list = []

    def on_error(err):
        errors.append(err)
        if err.fatal():
            fatal.append(err)

    def on_delivery(err, msg):
        seq = int(msg.value())
        if err is None:
            acked[seq] = (msg.partition(), msg.offset())
        else:
            failed[seq] = err

    producer = Producer({
        "bootstrap.servers": broker.bootstrap,
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 2,
        "message.timeout.ms": 180_000,  # outlast every restart: a record is acked or still retrying
        "retry.backoff.ms": 50,
        "retry.backoff.max.ms": 500,
        "reconnect.backoff.ms": 50,
        "reconnect.backoff.max.ms": 500,
        "queue.buffering.max.messages": N,
        "error_cb": on_error,
        "on_delivery": on_delivery,
    })

    def send(seq: int, bounded: bool = True):
        # At most WINDOW records outstanding, like an application bounded by its queue, so
        # every kill lands after real progress and with requests in flight.
        deadline = time.monotonic() + 120
        while bounded and seq - len(acked) - len(failed) > WINDOW:
            assert not fatal, f"fatal producer error: {fatal}"
            assert time.monotonic() < deadline, (
                f"no progress for 120s at record {seq}: {len(acked)} acked, client errors: {errors[-5:]}"
            )
            producer.poll(0.01)
        while True:
            try:
                producer.produce(topic, key=b"%d" % seq, value=b"%d" % seq, partition=seq % PARTITIONS)
                return
            except BufferError:
                producer.poll(0.05)

    def wait_acked(seq: int, timeout: float = 120.0):
        """Serve callbacks until record `seq` or a later one is acknowledged."""
        deadline = time.monotonic() + timeout
        while not acked or max(acked) < seq:
            assert not fatal, f"fatal producer error: {fatal}"
            assert time.monotonic() < deadline, (
                f"no record from {seq} on acknowledged within {timeout}s of the restart; "
                f"{len(acked)} acked, {len(failed)} failed, client errors: {errors[-5:]}"
            )
            producer.poll(0.05)

    seq = 0
    while seq < N:
        if kill_at and seq >= kill_at[0]:
            kill_at.pop(0)
            # Kill with requests in flight: nothing waits for them before the kill.
            broker.kill()
            # Keep producing into the client's queue while the broker is down.
            first_after_kill = seq
            for _ in range(min(500, N - seq)):
                send(seq, bounded=False)
                seq += 1
            broker.start()
            print(f"killed at {first_after_kill}, {len(acked)} acked so far")
            wait_acked(first_after_kill)
            continue
        send(seq)
        seq += 1
        if seq % 200 == 0:
            producer.poll(0)

    left = producer.flush(120)
    assert not fatal, f"fatal producer error: {fatal}"
    assert left == 0, f"{left} records neither acknowledged nor failed after 120s"
    print(f"acked {len(acked)}, failed {len(failed)}, client errors {len(errors)}: {errors[:5]}")

    consumed = consume_all(broker.bootstrap, topic, conf={"check.crcs": True})
    seqs = Counter(int(m.value) for msgs in consumed.values() for m in msgs)
    dups = {s: n for s, n in seqs.items() if n > 1}
    assert not dups, f"{len(dups)} records stored more than once, e.g. {list(dups.items())[:10]}"
    missing = sorted(s for s in acked if s not in seqs)
    assert not missing, f"{len(missing)} acknowledged records lost, e.g. {missing[:10]}"
    where = {int(m.value): (m.partition, m.offset) for msgs in consumed.values() for m in msgs}
    moved = [(s, acked[s], where[s]) for s in acked if where[s] != acked[s]]
    assert not moved, f"{len(moved)} records not at their acknowledged offset, e.g. {moved[:5]}"
    for p, msgs in consumed.items():
        order = [int(m.value) for m in msgs]
        assert order == sorted(order), f"partition {p}: records out of produce order"
