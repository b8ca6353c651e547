"""acks=all means durable: every acknowledged record survives SIGKILL of the broker and a
restart on the same data dir; topics (created or auto-created) survive too; offsets go on
after the old end, never reused; SIGTERM shuts down cleanly (exit code 0)."""

from __future__ import annotations

import time

from confluent_kafka import Producer

from floe_harness import Rec, assert_records_at, consume_all, make_records, produce, unique_topic, watermarks

PLAIN = {"acks": "all", "enable.idempotence": False}


def test_acked_records_survive_kill9(broker):
    topic = broker.create_topic(unique_topic("dur-kill"), partitions=2)
    records = make_records(20_000, seed=31, partitions=2, big_every=5_000)
    reports = produce(broker.bootstrap, topic, records, conf=PLAIN)
    before = watermarks(broker.bootstrap, topic)

    broker.kill()  # right after the last ack: no graceful shutdown, no flush on exit
    broker.start()

    assert watermarks(broker.bootstrap, topic) == before
    consumed = consume_all(broker.bootstrap, topic, conf={"check.crcs": True})
    assert_records_at(consumed, records, reports)

    # New records go on after the old end.
    more = make_records(100, seed=32, partitions=2)
    more_reports = produce(broker.bootstrap, topic, more, conf=PLAIN)
    for p in (0, 1):
        offsets = [off for q, off in more_reports if q == p]
        assert offsets == list(range(before[p][1], before[p][1] + 50)), f"partition {p} offsets {offsets[:3]}..."
    assert_records_at(consume_all(broker.bootstrap, topic), records + more, reports + more_reports)


def test_acked_records_survive_kill9_mid_stream(broker):
    """Kill while a non-idempotent acks=all producer has requests in flight: whatever was
    acknowledged is there (retries may store a record twice; that is what idempotence is for)."""
    topic = broker.create_topic(unique_topic("dur-mid"), partitions=3)
    acked: dict[int, tuple[int, int]] = {}
    fatal = []

    def on_delivery(err, msg):
        if err is None:
            acked[int(msg.value())] = (msg.partition(), msg.offset())

    producer = Producer({
        "bootstrap.servers": broker.bootstrap, **PLAIN, "linger.ms": 2, "message.timeout.ms": 120_000,
        "reconnect.backoff.ms": 50, "reconnect.backoff.max.ms": 500, "retry.backoff.ms": 50,
        "error_cb": lambda e: e.fatal() and fatal.append(e),
    })
    n = 20_000
    for seq in range(n):
        producer.produce(topic, value=b"%d" % seq, partition=seq % 3, on_delivery=on_delivery)
        if seq % 200 == 0:
            producer.poll(0)
        if seq == n // 2:
            broker.kill()
        if seq == n // 2 + 1000:
            broker.start()
    assert producer.flush(120) == 0
    assert not fatal, fatal
    assert len(acked) >= n // 2, f"only {len(acked)} of {n} acknowledged"

    consumed = consume_all(broker.bootstrap, topic, conf={"check.crcs": True})
    where = {(m.partition, m.offset): int(m.value) for msgs in consumed.values() for m in msgs}
    lost = [(s, pos) for s, pos in acked.items() if where.get(pos) != s]
    assert not lost, f"{len(lost)} acknowledged records not at their offset, e.g. {lost[:5]}"


def test_sigterm_is_clean_and_topics_survive(broker):
    created = broker.create_topic(unique_topic("dur-created"), partitions=4)
    auto = unique_topic("dur-auto")  # auto.create.topics.enable defaults to true
    records = make_records(1_000, seed=33)
    reports_created = produce(broker.bootstrap, created, records)
    reports_auto = produce(broker.bootstrap, auto, [Rec(b"k%d" % i, b"v%d" % i) for i in range(100)])
    parts_auto = len(watermarks(broker.bootstrap, auto))

    t0 = time.monotonic()
    assert broker.stop() == 0  # SIGTERM: graceful, exit code 0
    print(f"graceful shutdown took {time.monotonic() - t0:.2f}s")
    broker.start()

    assert len(watermarks(broker.bootstrap, created)) == 4
    assert len(watermarks(broker.bootstrap, auto)) == parts_auto
    assert_records_at(consume_all(broker.bootstrap, created), records, reports_created)
    consumed_auto = consume_all(broker.bootstrap, auto)
    assert sorted(m.value for msgs in consumed_auto.values() for m in msgs) == sorted(b"v%d" % i for i in range(100))
    assert len(reports_auto) == 100
