"""`floe topic create|list|describe|alter|delete` against a running broker. The output
format is the CLI's own; what must hold is checked through a real Kafka client too."""

from __future__ import annotations

from confluent_kafka.admin import AdminClient, ConfigResource, ResourceType

from floe_harness import unique_topic, wait_until


def kafka_view(broker, topic):
    """(partition count, {config: value}) as a Kafka AdminClient sees it; (None, {}) if absent."""
    client = AdminClient({"bootstrap.servers": broker.bootstrap})
    t = client.list_topics(timeout=10).topics.get(topic)
    if t is None or t.error is not None:
        return None, {}
    res = ConfigResource(ResourceType.TOPIC, topic)
    entries = client.describe_configs([res], request_timeout=30)[res].result(timeout=30)
    return len(t.partitions), {k: e.value for k, e in entries.items()}


def listed(broker, topic) -> bool:
    return topic in broker.topic("list").stdout.split()


def test_topic_lifecycle_through_cli(broker):
    topic = unique_topic("cli")
    broker.topic("create", topic, "--partitions", "3", "--config", "retention.ms=86400000",
                 "--config", "cleanup.policy=delete")

    assert listed(broker, topic)
    parts, configs = kafka_view(broker, topic)
    assert parts == 3
    assert configs["retention.ms"] == "86400000" and configs["cleanup.policy"] == "delete"

    out = broker.topic("describe", topic).stdout
    assert topic in out and "retention.ms" in out and "86400000" in out, out

    broker.topic("alter", topic, "--config", "retention.ms=3600000")
    assert kafka_view(broker, topic)[1]["retention.ms"] == "3600000"
    assert "3600000" in broker.topic("describe", topic).stdout

    # Mistakes are reported with a non-zero exit, and change nothing.
    dup = broker.topic("create", topic, "--partitions", "1", check=False)
    assert dup.returncode != 0, "creating an existing topic must fail"
    assert kafka_view(broker, topic)[0] == 3
    missing = broker.topic("describe", unique_topic("no-such-topic"), check=False)
    assert missing.returncode != 0, "describing a missing topic must fail"

    broker.topic("delete", topic)
    wait_until(lambda: kafka_view(broker, topic)[0] is None, 30, f"{topic} to be gone")
    assert not listed(broker, topic)
