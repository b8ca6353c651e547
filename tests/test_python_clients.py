"""The pure-Python clients: kafka-python 3.0.12 (ApiVersions v4 first) and aiokafka 0.14.0
(ApiVersions v0 first) produce and consume through Floe byte-identically, in a group,
with committed offsets."""

from __future__ import annotations

import asyncio
import random
import time

import pytest

from floe_harness import TS_BASE, unique_topic

N = 3_000
PARTITIONS = 3


def records(seed: int) -> list[tuple[bytes | None, bytes, list[tuple[str, bytes]], int]]:
    """(key, value, headers, timestamp_ms); some null keys, some empty values, binary content."""
    rnd = random.Random(seed)
    out = []
    for i in range(N):
        key = None if i % 101 == 9 else b"key-%d-" % i + rnd.randbytes(rnd.randint(0, 8))
        value = b"" if i % 53 == 1 else rnd.randbytes(rnd.randint(1, 300))
        headers = [("seq", b"%d" % i)] + ([("bin", rnd.randbytes(8))] if i % 2 else [])
        out.append((key, value, headers, TS_BASE + i))
    return out


def check(sent, acked, got):
    """Every acked (partition, offset) holds the record sent; nothing else was read; offsets dense."""
    assert len(got) == len(sent), f"read {len(got)} records, produced {len(sent)}"
    for i, ((key, value, headers, ts), where) in enumerate(zip(sent, acked)):
        assert where in got, f"record {i} acknowledged at {where} was not read"
        assert got[where] == (key, value, headers, ts), f"record {i} at {where}: {got[where]!r}"
    for p in {p for p, _ in got}:
        offsets = sorted(o for q, o in got if q == p)
        assert offsets == list(range(len(offsets))), f"partition {p} offsets not dense"


@pytest.mark.parametrize("codec", [None, "gzip"], ids=["plain", "gzip"])
def test_kafka_python_roundtrip(broker, codec):
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition

    topic = broker.create_topic(unique_topic("kp"), partitions=PARTITIONS)
    sent = records(seed=21)

    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, acks="all", linger_ms=5, compression_type=codec)
    try:
        futures = [producer.send(topic, key=k, value=v, headers=h, timestamp_ms=ts) for k, v, h, ts in sent]
        producer.flush(timeout=60)
        acked = [(m.partition, m.offset) for m in (f.get(timeout=60) for f in futures)]
    finally:
        producer.close(timeout=10)

    group = unique_topic("kp-group")
    consumer = KafkaConsumer(topic, bootstrap_servers=broker.bootstrap, group_id=group,
                             auto_offset_reset="earliest", enable_auto_commit=False)
    got = {}
    try:
        deadline = time.monotonic() + 120
        while len(got) < N:
            assert time.monotonic() < deadline, f"read {len(got)} of {N} records within 120s"
            for tp, recs in consumer.poll(timeout_ms=500).items():
                for r in recs:
                    got[(tp.partition, r.offset)] = (r.key, r.value, list(r.headers), r.timestamp)
        consumer.commit()
        ends = {p: max(o for q, o in got if q == p) + 1 for p in range(PARTITIONS)}
        for p in range(PARTITIONS):
            assert consumer.committed(TopicPartition(topic, p)) == ends[p]
    finally:
        consumer.close(autocommit=False)
    check(sent, acked, got)


@pytest.mark.parametrize("codec,idempotent", [(None, False), ("gzip", True)], ids=["plain", "gzip-idempotent"])
def test_aiokafka_roundtrip(broker, codec, idempotent):
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

    topic = broker.create_topic(unique_topic("aio"), partitions=PARTITIONS)
    sent = records(seed=22)

    async def run():
        producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, acks="all", linger_ms=5,
                                    compression_type=codec, enable_idempotence=idempotent)
        await producer.start()
        try:
            futures = [await producer.send(topic, key=k, value=v, headers=h, timestamp_ms=ts)
                       for k, v, h, ts in sent]
            acked = [(m.partition, m.offset) for m in await asyncio.gather(*futures)]
        finally:
            await producer.stop()

        consumer = AIOKafkaConsumer(topic, bootstrap_servers=broker.bootstrap, group_id=unique_topic("aio-group"),
                                    auto_offset_reset="earliest", enable_auto_commit=False)
        await consumer.start()
        got = {}
        try:
            while len(got) < N:
                for tp, recs in (await consumer.getmany(timeout_ms=500)).items():
                    for r in recs:
                        got[(tp.partition, r.offset)] = (r.key, r.value, list(r.headers), r.timestamp)
            await consumer.commit()
            ends = {p: max(o for q, o in got if q == p) + 1 for p in range(PARTITIONS)}
            for p in range(PARTITIONS):
                assert await consumer.committed(TopicPartition(topic, p)) == ends[p]
        finally:
            await consumer.stop()
        return acked, got

    acked, got = asyncio.run(asyncio.wait_for(run(), timeout=180))
    check(sent, acked, got)
