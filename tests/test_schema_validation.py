"""Broker-side schema validation (`value.schema.id.validation`, `key.`, `schema.validation.mode`).

A topic with validation on takes only records whose value (key) is in the Confluent wire format
with a schema id Floe's registry knows; in `full` mode the payload must also decode with that
schema. A failing record makes its partition's produce INVALID_RECORD (87) with per-record
errors and appends nothing there; other partitions and topics of the same request are
unaffected (Kafka's semantics). Checked with confluent-kafka's producer and serializers, and
with a hand-built Produce v8 request (two topics, three partitions in one request) whose
response is decoded field by field.
"""

from __future__ import annotations

import json
import struct

from confluent_kafka import KafkaError, Producer
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.schema_registry.protobuf import ProtobufSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

from floe_harness import consume_all, unique_topic, watermarks
from test_malformed import PRODUCE, Buf, Conn, frame, record, record_batch, request_header, string
from test_schema_registry import ORDER_V1, avro_orders, order_message_class, proto_orders

INVALID_RECORD = 87
VALIDATED = {"value.schema.id.validation": "true"}


def raw_produce(bootstrap: str, topic: str, values: list[tuple[bytes | None, bytes | None]],
                separately: bool = True) -> list:
    """Produce (key, value) pairs with acks=all; one delivery result (None or KafkaError) each.

    `separately`: flush after each record, so each is its own batch (a refused record rejects
    its whole batch)."""
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 20,
                  "message.timeout.ms": 20_000, "retries": 0})
    results: list = [None] * len(values)
    done = [False] * len(values)

    def report(i):
        def cb(err, _msg):
            results[i], done[i] = err, True
        return cb

    for i, (k, v) in enumerate(values):
        p.produce(topic, key=k, value=v, on_delivery=report(i))
        if separately:
            assert p.flush(40) == 0
    assert p.flush(40) == 0
    assert all(done)
    return results


def high_watermarks(bootstrap: str, topic: str) -> dict[int, int]:
    return {p: hi for p, (lo, hi) in watermarks(bootstrap, topic).items()}


def framed(schema_id: int, payload: bytes) -> bytes:
    return b"\x00" + schema_id.to_bytes(4, "big") + payload


def produce_v8(topics: dict[str, dict[int, bytes]], correlation_id: int) -> bytes:
    body = string(None) + struct.pack(">hii", -1, 30_000, len(topics))
    for name, partitions in topics.items():
        body += string(name) + struct.pack(">i", len(partitions))
        for index, records in partitions.items():
            body += struct.pack(">ii", index, len(records)) + records
    return frame(request_header(PRODUCE, 8, correlation_id, flexible=False) + body)


def parse_produce_v8(payload: bytes) -> dict[tuple[str, int], dict]:
    b = Buf(payload)
    b.take(">i")  # correlation id
    out = {}
    for _ in range(b.take(">i")):
        name = b.string(False)
        for _ in range(b.take(">i")):
            index, error, base_offset, _append_time, _log_start = b.take(">ihqqq")
            record_errors = [(b.take(">i"), b.string(False)) for _ in range(b.take(">i"))]
            out[(name, index)] = {"error": error, "base_offset": base_offset,
                                  "record_errors": record_errors, "error_message": b.string(False)}
    b.take(">i")  # throttle time
    assert b.remaining() == 0
    return out


def batch_of(values: list[bytes | None]) -> bytes:
    return record_batch(b"".join(record(i, b"k%d" % i, v) for i, v in enumerate(values)), len(values))


def test_raw_bytes_are_refused_and_framed_records_accepted(broker):
    topic = broker.create_topic(unique_topic("val"), partitions=1, **VALIDATED)
    results = raw_produce(broker.bootstrap, topic, [(None, b"plain bytes, no schema id")])
    assert results[0] is not None, "an unframed value was accepted"
    assert results[0].code() == KafkaError.INVALID_RECORD, results[0]
    assert high_watermarks(broker.bootstrap, topic) == {0: 0}, "a refused record was appended"

    client = SchemaRegistryClient({"url": broker.registry_url})
    ctx = SerializationContext(topic, MessageField.VALUE)
    ser = AvroSerializer(client, json.dumps(ORDER_V1))
    orders = avro_orders(30)
    results = raw_produce(broker.bootstrap, topic, [(b"k", ser(o, ctx)) for o in orders], separately=False)
    assert results == [None] * 30, results
    consumed = consume_all(broker.bootstrap, topic)[0]
    de = AvroDeserializer(client)
    assert [de(m.value, ctx) for m in consumed] == orders

    # A framed value whose id was never registered is refused too.
    results = raw_produce(broker.bootstrap, topic, [(None, framed(4242, b"\x02"))])
    assert results[0] is not None and results[0].code() == KafkaError.INVALID_RECORD, results[0]
    assert high_watermarks(broker.bootstrap, topic) == {0: 30}


def test_one_bad_record_refuses_its_partition_only(broker):
    """One Produce request, three partitions of two topics: only the partition holding a bad
    record is refused, with the index and reason of each bad record."""
    checked = broker.create_topic(unique_topic("val-mixed"), partitions=2, **VALIDATED)
    plain = broker.create_topic(unique_topic("plain"))
    client = SchemaRegistryClient({"url": broker.registry_url})
    schema_id = client.register_schema(f"{checked}-value", Schema('"string"', "AVRO"))
    good = framed(schema_id, b"\x04hi")  # Avro "hi"
    request = produce_v8({
        checked: {0: batch_of([good, b"raw", framed(schema_id + 1000, b"\x00"), None, good]),
                  1: batch_of([good, good])},
        plain: {0: batch_of([b"raw is fine here"])},
    }, correlation_id=7)
    with Conn(broker.bootstrap) as c:
        answer = parse_produce_v8(c.request(request))

    bad = answer[(checked, 0)]
    assert bad["error"] == INVALID_RECORD, bad
    assert [i for i, _ in bad["record_errors"]] == [1, 2], bad
    assert "not schema-framed" in bad["record_errors"][0][1], bad
    assert f"schema id {schema_id + 1000}" in bad["record_errors"][1][1], bad
    assert bad["error_message"] and "2 of 5 records" in bad["error_message"], bad
    assert bad["base_offset"] == -1

    assert answer[(checked, 1)]["error"] == 0 and answer[(checked, 1)]["base_offset"] == 0, answer
    assert answer[(plain, 0)]["error"] == 0 and answer[(plain, 0)]["base_offset"] == 0, answer
    assert high_watermarks(broker.bootstrap, checked) == {0: 0, 1: 2}
    assert high_watermarks(broker.bootstrap, plain) == {0: 1}
    assert [m.value for m in consume_all(broker.bootstrap, checked)[1]] == [good, good]


def test_full_mode_decodes_payloads(broker):
    id_only = broker.create_topic(unique_topic("val-id"), **VALIDATED)
    full = broker.create_topic(unique_topic("val-full"), **VALIDATED, **{"schema.validation.mode": "full"})
    client = SchemaRegistryClient({"url": broker.registry_url})

    # Avro: a good record passes; its id with a payload that does not decode does not.
    ctx = SerializationContext(full, MessageField.VALUE)
    good = AvroSerializer(client, json.dumps(ORDER_V1))(avro_orders(1)[0], ctx)
    broken = good[:5] + b"\x01"  # id of a registered record schema, then a truncated long
    results = raw_produce(broker.bootstrap, full, [(None, good), (None, broken)])
    assert results[0] is None, results
    assert results[1] is not None and results[1].code() == KafkaError.INVALID_RECORD, results[1]
    # Id-only mode takes the same broken payload: only the id is checked there.
    assert raw_produce(broker.bootstrap, id_only, [(None, broken)]) == [None]

    # Protobuf (message index shortcut 0, then the message), on a topic (subject) of its own.
    full_proto = broker.create_topic(unique_topic("val-full-pb"), **VALIDATED, **{"schema.validation.mode": "full"})
    ctx = SerializationContext(full_proto, MessageField.VALUE)
    cls = order_message_class()
    good = ProtobufSerializer(cls, client, {"use.deprecated.format": False})(proto_orders(cls, 1)[0], ctx)
    assert good[5] == 0, "the serializer writes the one-byte message index shortcut"
    broken = good[:6] + b"\x0a\xff\xff\xff"  # field 1 as length-delimited with a bad length
    results = raw_produce(broker.bootstrap, full_proto, [(None, good), (None, broken)])
    assert results[0] is None, results
    assert results[1] is not None and results[1].code() == KafkaError.INVALID_RECORD, results[1]
    assert high_watermarks(broker.bootstrap, full) == {0: 1}
    assert high_watermarks(broker.bootstrap, full_proto) == {0: 1}


def test_key_validation_alias_and_alter(broker):
    topic = broker.create_topic(unique_topic("val-key"), **{"redpanda.key.schema.id.validation": "true"})
    client = SchemaRegistryClient({"url": broker.registry_url})
    key_id = client.register_schema(f"{topic}-key", Schema('"string"', "AVRO"))
    results = raw_produce(broker.bootstrap, topic, [(b"raw key", b"any value"),
                                                    (framed(key_id, b"\x02a"), b"any value")])
    assert results[0] is not None and results[0].code() == KafkaError.INVALID_RECORD, results
    assert results[1] is None, results
    assert high_watermarks(broker.bootstrap, topic) == {0: 1}

    # Turning validation off takes effect for the next request.
    broker.topic("alter", topic, "--config", "key.schema.id.validation=false")
    assert raw_produce(broker.bootstrap, topic, [(b"raw key", b"v")]) == [None]
    assert high_watermarks(broker.bootstrap, topic) == {0: 2}
