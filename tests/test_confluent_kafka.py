"""confluent-kafka (librdkafka 2.16): produce/consume, compression, offsets and the AdminClient."""

from __future__ import annotations

import pytest
from confluent_kafka import (
    OFFSET_END,
    Consumer,
    KafkaError,
    KafkaException,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ConfigSource,
    NewPartitions,
    NewTopic,
    OffsetSpec,
    ResourceType,
)

from floe_harness import (
    TS_BASE,
    Rec,
    assert_records_at,
    consume_all,
    make_records,
    produce,
    unique_topic,
    wait_until,
    watermarks,
)

IDEMPOTENT = {"enable.idempotence": True, "acks": "all"}


def admin(broker) -> AdminClient:
    return AdminClient({"bootstrap.servers": broker.bootstrap})


def admin_result(broker, method: str, arg, key, **kwargs):
    """AdminClient.<method>(arg, **kwargs)[key].result(): the client must outlive its futures."""
    client = admin(broker)
    fut = getattr(client, method)(arg, **kwargs)[key]
    return fut.result(timeout=60)


def topic_partitions(broker, topic) -> int | None:
    md = admin(broker).list_topics(timeout=10)  # all topics: never auto-creates
    t = md.topics.get(topic)
    return None if t is None or t.error is not None else len(t.partitions)


def describe(broker, topic) -> dict[str, ConfigEntry]:
    res = ConfigResource(ResourceType.TOPIC, topic)
    return admin_result(broker, "describe_configs", [res], res, request_timeout=30)


def test_100k_records_with_headers_roundtrip(broker):
    topic = broker.create_topic(unique_topic("ck-100k"), partitions=4)
    records = make_records(100_000, seed=10, big_every=25_000)

    reports = produce(broker.bootstrap, topic, records, conf=IDEMPOTENT)
    consumed = consume_all(broker.bootstrap, topic, conf={"check.crcs": True})

    assert sum(len(v) for v in consumed.values()) == len(records)
    assert len({p for p, _ in reports}) == 4, "keyed records should spread over all 4 partitions"
    assert_records_at(consumed, records, reports)
    # Per partition, records appear in the order they were produced.
    last: dict[int, int] = {}
    for i, (p, off) in enumerate(reports):
        assert off > last.get(p, -1), f"record {i} at {p}/{off} is before an earlier record"
        last[p] = off


@pytest.mark.parametrize("codec", ["none", "gzip", "snappy", "lz4", "zstd"])
def test_compression_roundtrip(broker, codec):
    topic = broker.create_topic(unique_topic(f"ck-{codec}"), partitions=2)
    records = make_records(5_000, seed=11, partitions=2)
    for i, r in enumerate(records):
        if i % 2 and r.value is not None:  # half very compressible, half random
            r.value = (b"floe compresses this line %d " % (i % 13)) * (1 + i % 40)

    reports = produce(broker.bootstrap, topic, records, conf={**IDEMPOTENT, "compression.type": codec, "linger.ms": 20})
    consumed = consume_all(broker.bootstrap, topic, conf={"check.crcs": True})

    assert sum(len(v) for v in consumed.values()) == len(records)
    assert_records_at(consumed, records, reports)


def produce_timestamped(broker, topic, n=100, per_batch=10):
    """n records to partition 0 with CreateTime TS_BASE + i*1000, in separate batches."""
    p = Producer({"bootstrap.servers": broker.bootstrap, "acks": "all", "linger.ms": 0})
    for start in range(0, n, per_batch):
        for i in range(start, start + per_batch):
            p.produce(topic, key=b"%d" % i, value=b"v%d" % i, partition=0, timestamp=TS_BASE + i * 1000)
        assert p.flush(30) == 0


def test_watermarks_and_offsets_for_times(broker):
    topic = broker.create_topic(unique_topic("ck-times"), partitions=1)
    assert watermarks(broker.bootstrap, topic) == {0: (0, 0)}
    produce_timestamped(broker, topic)

    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": unique_topic("g")})
    try:
        assert c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10, cached=False) == (0, 100)
        cases = {
            TS_BASE - 1: 0,  # before everything: the first record
            TS_BASE: 0,
            TS_BASE + 50_000: 50,  # exact match, first record of a batch
            TS_BASE + 55_000: 55,  # inside a batch
            TS_BASE + 54_500: 55,  # between records: the next one
            TS_BASE + 99_000: 99,
            TS_BASE + 99_001: OFFSET_END,  # after everything: no such record
        }
        for ts, want in cases.items():
            [tp] = c.offsets_for_times([TopicPartition(topic, 0, ts)], timeout=10)
            assert tp.error is None, tp.error
            assert tp.offset == want, f"offsets_for_times({ts - TS_BASE:+d}ms) = {tp.offset}, want {want}"
    finally:
        c.close()


def test_admin_list_offsets(broker):
    topic = broker.create_topic(unique_topic("ck-listoffsets"), partitions=1)
    produce_timestamped(broker, topic)
    tp = TopicPartition(topic, 0)
    specs = {
        "earliest": (OffsetSpec.earliest(), 0),
        "latest": (OffsetSpec.latest(), 100),
        "for_timestamp": (OffsetSpec.for_timestamp(TS_BASE + 42_000), 42),
        "max_timestamp": (OffsetSpec.max_timestamp(), 99),
    }
    for name, (spec, want) in specs.items():
        info = admin_result(broker, "list_offsets", {tp: spec}, tp, request_timeout=30)
        assert info.offset == want, f"list_offsets {name}: {info.offset}, want {want}"


def test_auto_create_topic_on_produce(broker):
    topic = unique_topic("ck-auto")
    records = [Rec(b"k%d" % i, b"v%d" % i) for i in range(10)]
    reports = produce(broker.bootstrap, topic, records, conf=IDEMPOTENT)
    assert (topic_partitions(broker, topic) or 0) >= 1
    assert_records_at(consume_all(broker.bootstrap, topic), records, reports, check_timestamps=False)


def test_topic_configs_describe_alter_survive_restart(broker):
    topic = unique_topic("ck-configs")
    configs = {"retention.ms": "3600000", "segment.bytes": "2097152", "cleanup.policy": "delete",
               "max.message.bytes": "2000000"}
    admin_result(broker, "create_topics", [NewTopic(topic, num_partitions=2, replication_factor=1, config=configs)],
                 topic)
    assert topic_partitions(broker, topic) == 2

    def check_created(entries):
        for k, v in configs.items():
            assert k in entries, f"{k} missing from describe_configs"
            assert entries[k].value == v, f"{k}={entries[k].value}, want {v}"
            assert is_topic_source(entries[k]), f"{k} source {source_of(entries[k])}"
        # A config nobody set is still listed, with a non-topic source.
        assert "retention.bytes" in entries, sorted(entries)
        assert not is_topic_source(entries["retention.bytes"]), source_of(entries["retention.bytes"])

    check_created(describe(broker, topic))

    # Creating it again is refused.
    with pytest.raises(KafkaException) as exc:
        admin_result(broker, "create_topics", [NewTopic(topic, num_partitions=1, replication_factor=1)], topic)
    assert exc.value.args[0].code() == KafkaError.TOPIC_ALREADY_EXISTS

    res = ConfigResource(ResourceType.TOPIC, topic, incremental_configs=[
        ConfigEntry("retention.ms", "7200000", incremental_operation=AlterConfigOpType.SET),
        ConfigEntry("segment.bytes", None, incremental_operation=AlterConfigOpType.DELETE),
    ])
    admin_result(broker, "incremental_alter_configs", [res], res)

    def check_altered(entries):
        assert entries["retention.ms"].value == "7200000"
        assert is_topic_source(entries["retention.ms"])
        assert entries["segment.bytes"].value != "2097152", "DELETE did not reset segment.bytes"
        assert not is_topic_source(entries["segment.bytes"])
        assert entries["cleanup.policy"].value == "delete" and is_topic_source(entries["cleanup.policy"])
        assert entries["max.message.bytes"].value == "2000000"

    check_altered(describe(broker, topic))
    broker.restart()  # graceful
    check_altered(describe(broker, topic))
    assert topic_partitions(broker, topic) == 2
    broker.restart(hard=True)  # kill -9: an acknowledged alter is durable
    check_altered(describe(broker, topic))


def source_of(entry: ConfigEntry) -> ConfigSource:
    return entry.source if isinstance(entry.source, ConfigSource) else ConfigSource(entry.source)


def is_topic_source(entry: ConfigEntry) -> bool:
    return source_of(entry) == ConfigSource.DYNAMIC_TOPIC_CONFIG


def test_delete_topic(broker):
    topic = broker.create_topic(unique_topic("ck-delete"), partitions=2)
    produce(broker.bootstrap, topic, make_records(100, seed=12, partitions=2))
    assert sum(hi for _, hi in watermarks(broker.bootstrap, topic).values()) == 100

    admin_result(broker, "delete_topics", [topic], topic, operation_timeout=30)
    wait_until(lambda: topic_partitions(broker, topic) is None, 30, f"{topic} to leave the metadata")

    # The name can be used again, and the new topic starts empty.
    def recreate():
        try:
            admin_result(broker, "create_topics", [NewTopic(topic, num_partitions=1, replication_factor=1)], topic)
            return True
        except KafkaException as e:
            if e.args[0].code() == KafkaError.TOPIC_ALREADY_EXISTS:  # deletion still in progress
                return False
            raise

    wait_until(recreate, 60, f"re-creating {topic}", interval=0.5)
    assert watermarks(broker.bootstrap, topic) == {0: (0, 0)}


def test_create_partitions(broker):
    topic = broker.create_topic(unique_topic("ck-grow"), partitions=2)
    first = make_records(200, seed=13, partitions=2)
    first_reports = produce(broker.bootstrap, topic, first)

    admin_result(broker, "create_partitions", [NewPartitions(topic, 5)], topic)
    wait_until(lambda: topic_partitions(broker, topic) == 5, 30, f"{topic} to have 5 partitions")

    second = make_records(500, seed=14, partitions=5)
    second_reports = produce(broker.bootstrap, topic, second)
    assert {p for p, _ in second_reports} == {0, 1, 2, 3, 4}

    consumed = consume_all(broker.bootstrap, topic)
    assert sorted(consumed) == [0, 1, 2, 3, 4]
    assert_records_at(consumed, first + second, first_reports + second_reports)

    with pytest.raises(KafkaException):  # shrinking is refused
        admin_result(broker, "create_partitions", [NewPartitions(topic, 3)], topic)
