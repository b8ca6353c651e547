"""Consumer groups with confluent-kafka: balanced assignment, rebalance when a member
leaves, synchronous commits that survive a broker restart, fan-out to several groups."""

from __future__ import annotations

import time

from confluent_kafka import Consumer, TopicPartition

from floe_harness import Rec, produce, unique_topic

PARTITIONS = 6


def group_consumer(broker, group: str, **conf) -> Consumer:
    return Consumer({
        "bootstrap.servers": broker.bootstrap,
        "group.id": group,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "session.timeout.ms": 10_000,
        "heartbeat.interval.ms": 500,
        **conf,
    })


def assigned(c: Consumer) -> set[int]:
    return {tp.partition for tp in c.assignment()}


def poll_until(consumers, condition, timeout: float, what: str, on_message=None):
    """Poll every consumer in turn (a member that stops polling is thrown out) until condition()."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            state = [sorted(assigned(c)) for c in consumers]
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}; assignments {state}")
        for c in consumers:
            for m in c.consume(num_messages=500, timeout=0.05):
                assert not m.error(), f"consumer error: {m.error()}"
                if on_message is None:
                    raise AssertionError(f"unexpected record {m.partition()}/{m.offset()} while waiting for {what}")
                on_message(c, m)


def balanced(consumers, per_member: int) -> bool:
    sets = [assigned(c) for c in consumers]
    union = set().union(*sets)
    return all(len(s) == per_member for s in sets) and union == set(range(PARTITIONS)) and \
        sum(len(s) for s in sets) == PARTITIONS


def batch(start: int, count: int) -> list[Rec]:
    """count records per partition, numbered from start: key b"p<p>-<n>", value b"v<p>-<n>"."""
    return [Rec(b"p%d-%d" % (p, n), b"v%d-%d-" % (p, n) + b"x" * (n % 50), [("n", b"%d" % n)], p)
            for n in range(start, start + count) for p in range(PARTITIONS)]


def test_group_rebalance_commit_and_resume_after_restart(broker):
    topic = broker.create_topic(unique_topic("grp"), partitions=PARTITIONS)
    group = unique_topic("group")

    # Three members share six partitions two each.
    members = [group_consumer(broker, group) for _ in range(3)]
    for c in members:
        c.subscribe([topic])
    poll_until(members, lambda: balanced(members, 2), 60, "3 members with 2 partitions each")

    # One leaves: the other two take over all six.
    members.pop().close()
    poll_until(members, lambda: balanced(members, 3), 60, "2 members with 3 partitions each")

    # Records arrive; each member processes its own partitions and commits synchronously
    # after offset 49, so the group's committed offset is 50 everywhere.
    produce(broker.bootstrap, topic, batch(0, 100))
    seen: dict[int, list[tuple[int, bytes, bytes]]] = {p: [] for p in range(PARTITIONS)}
    owner: dict[int, int] = {}

    def on_message(c, m):
        p = m.partition()
        assert owner.setdefault(p, id(c)) == id(c), f"partition {p} delivered to two members"
        seen[p].append((m.offset(), m.key(), m.value()))
        if m.offset() == 49:
            res = c.commit(message=m, asynchronous=False)
            assert all(tp.error is None for tp in res), res

    poll_until(members, lambda: all(len(v) >= 100 for v in seen.values()), 60, "100 records per partition",
               on_message=on_message)
    expected = {p: [] for p in range(PARTITIONS)}
    for r in batch(0, 100):
        expected[r.partition].append(r)
    for p in range(PARTITIONS):
        assert [o for o, _, _ in seen[p]] == list(range(100)), f"partition {p} offsets"
        assert [(k, v) for _, k, v in seen[p]] == [(r.key, r.value) for r in expected[p]]
    for c in members:
        c.close()  # no auto-commit: the committed offsets stay at 50

    broker.restart()
    produce(broker.bootstrap, topic, batch(100, 20))

    # A new member of the same group resumes exactly at the committed offsets.
    c = group_consumer(broker, group)
    try:
        committed = c.committed([TopicPartition(topic, p) for p in range(PARTITIONS)], timeout=30)
        assert {tp.partition: tp.offset for tp in committed} == {p: 50 for p in range(PARTITIONS)}

        c.subscribe([topic])
        resumed: dict[int, list] = {p: [] for p in range(PARTITIONS)}
        poll_until([c], lambda: all(len(v) >= 70 for v in resumed.values()), 60, "records 50..119",
                   on_message=lambda _c, m: resumed[m.partition()].append((m.offset(), m.key(), m.value())))
        all_expected = {p: [] for p in range(PARTITIONS)}
        for r in batch(0, 120):
            all_expected[r.partition].append(r)
        for p in range(PARTITIONS):
            offsets = [o for o, _, _ in resumed[p]]
            assert offsets == list(range(50, 120)), f"partition {p}: resumed at {offsets[:3]}..., want 50..119"
            assert [(k, v) for _, k, v in resumed[p]] == [(r.key, r.value) for r in all_expected[p][50:120]]
    finally:
        c.close()


def test_every_group_gets_every_record(broker):
    topic = broker.create_topic(unique_topic("fanout"), partitions=3)
    records = [Rec(b"k%d" % i, b"v%d" % i, [], i % 3) for i in range(300)]
    produce(broker.bootstrap, topic, records)

    groups = [unique_topic("fan-a"), unique_topic("fan-b")]
    consumers = [group_consumer(broker, g) for g in groups]
    got = {id(c): [] for c in consumers}
    try:
        for c in consumers:
            c.subscribe([topic])
        poll_until(consumers, lambda: all(len(v) >= 300 for v in got.values()), 60, "both groups to read 300",
                   on_message=lambda c, m: got[id(c)].append((m.key(), m.value())))
    finally:
        for c in consumers:
            c.close()
    want = sorted((r.key, r.value) for r in records)
    for v in got.values():
        assert sorted(v) == want
