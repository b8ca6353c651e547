"""Floe's schema registry, end to end, with Confluent's own Python client.

confluent-kafka's SchemaRegistryClient and its Avro, Protobuf (with a google.protobuf.Timestamp
field) and JSON Schema serializers talk to the registry Floe serves on --registry-addr; records
go through Floe's Kafka port and come back deserialized. Then: compatibility (409 for an
incompatible Avro change, a compatible one accepted), a restart on the same data directory
(every subject, version and id still there, old records still deserialize, ids never reused),
Confluent's error codes over raw HTTP, and a taken registry port failing startup.
"""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request
import uuid

import pytest
from confluent_kafka import KafkaError, Producer
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.schema_registry.json_schema import JSONDeserializer, JSONSerializer
from confluent_kafka.schema_registry.protobuf import ProtobufDeserializer, ProtobufSerializer
from confluent_kafka.serialization import MessageField, SerializationContext
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, timestamp_pb2

from floe_harness import BrokerError, Rec, consume_all, produce, unique_topic

CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"

ORDER_V1 = {
    "type": "record",
    "name": "Order",
    "namespace": "floe.test",
    "fields": [
        {"name": "id", "type": "long"},
        {"name": "customer", "type": "string"},
        {"name": "amount", "type": "double"},
    ],
}
# BACKWARD-incompatible: a new field without a default cannot be read from old records.
ORDER_V2_BREAKING = {**ORDER_V1, "fields": [*ORDER_V1["fields"], {"name": "currency", "type": "string"}]}
# BACKWARD-compatible: the new field has a default.
ORDER_V2 = {**ORDER_V1, "fields": [*ORDER_V1["fields"], {"name": "note", "type": ["null", "string"], "default": None}]}

EVENT_JSON_SCHEMA = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "title": "Event",
    "type": "object",
    "properties": {
        "kind": {"type": "string"},
        "count": {"type": "integer"},
        "tags": {"type": "array", "items": {"type": "string"}},
    },
    "required": ["kind", "count"],
}


def registry_client(broker) -> SchemaRegistryClient:
    return SchemaRegistryClient({"url": broker.registry_url})


def http(broker, method: str, path: str, body=None):
    """(status, JSON body, content type) of a raw registry request."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(broker.registry_url + path, data=data, method=method,
                                 headers={"Content-Type": CONTENT_TYPE})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read() or b"null"), resp.headers.get("Content-Type")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null"), e.headers.get("Content-Type")


def order_message_class():
    """A generated Protobuf class `floe.test.Order` with a google.protobuf.Timestamp field,
    built from a FileDescriptorProto at test time (no protoc)."""
    pool = descriptor_pool.Default()
    name = "floe/test/order.proto"
    try:
        return message_factory.GetMessageClass(pool.FindMessageTypeByName("floe.test.Order"))
    except KeyError:
        pass
    fdp = descriptor_pb2.FileDescriptorProto(
        name=name, package="floe.test", syntax="proto3",
        dependency=[timestamp_pb2.DESCRIPTOR.name],
    )
    msg = fdp.message_type.add(name="Order")
    F = descriptor_pb2.FieldDescriptorProto
    msg.field.add(name="id", number=1, type=F.TYPE_INT64, label=F.LABEL_OPTIONAL)
    msg.field.add(name="customer", number=2, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
    msg.field.add(name="created_at", number=3, type=F.TYPE_MESSAGE, label=F.LABEL_OPTIONAL,
                  type_name=".google.protobuf.Timestamp")
    msg.field.add(name="tags", number=4, type=F.TYPE_STRING, label=F.LABEL_REPEATED)
    pool.Add(fdp)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("floe.test.Order"))


def produce_values(broker, topic: str, values: list[bytes]) -> list[tuple[int, int]]:
    return produce(broker.bootstrap, topic, [Rec(key=b"k%d" % i, value=v) for i, v in enumerate(values)])


def consumed_values(broker, topic: str) -> list[bytes]:
    """Every value of the topic, in the order produced (keys are b"k<i>", partitions interleave)."""
    consumed = consume_all(broker.bootstrap, topic)
    records = [m for p in consumed for m in consumed[p]]
    records.sort(key=lambda m: (int(m.key[1:]), m.partition, m.offset))
    return [m.value for m in records]


def avro_orders(n: int) -> list[dict]:
    return [{"id": i, "customer": f"customer-{i}", "amount": i * 1.25} for i in range(n)]


def proto_orders(cls, n: int) -> list:
    out = []
    for i in range(n):
        o = cls(id=i, customer=f"c{i}", tags=[f"t{i}", "x"])
        o.created_at.seconds = 1_750_000_000 + i
        o.created_at.nanos = i * 1000
        out.append(o)
    return out


def json_events(n: int) -> list[dict]:
    return [{"kind": "click" if i % 2 else "view", "count": i, "tags": ["a", str(i)]} for i in range(n)]


def round_trip_avro(broker, client, topic: str, n: int = 50) -> list[dict]:
    ctx = SerializationContext(topic, MessageField.VALUE)
    ser = AvroSerializer(client, json.dumps(ORDER_V1))
    orders = avro_orders(n)
    produce_values(broker, topic, [ser(o, ctx) for o in orders])
    de = AvroDeserializer(client)
    assert [de(v, ctx) for v in consumed_values(broker, topic)] == orders
    return orders


def round_trip_protobuf(broker, client, topic: str, n: int = 50) -> list:
    cls = order_message_class()
    ctx = SerializationContext(topic, MessageField.VALUE)
    ser = ProtobufSerializer(cls, client, {"use.deprecated.format": False})
    orders = proto_orders(cls, n)
    produce_values(broker, topic, [ser(o, ctx) for o in orders])
    de = ProtobufDeserializer(cls, {"use.deprecated.format": False})
    got = [de(v, ctx) for v in consumed_values(broker, topic)]
    assert got == orders
    assert got[3].created_at.ToSeconds() == 1_750_000_003
    return orders


def round_trip_json(broker, client, topic: str, n: int = 50) -> list[dict]:
    ctx = SerializationContext(topic, MessageField.VALUE)
    ser = JSONSerializer(json.dumps(EVENT_JSON_SCHEMA), client)
    events = json_events(n)
    produce_values(broker, topic, [ser(e, ctx) for e in events])
    de = JSONDeserializer(None, schema_registry_client=client)
    assert [de(v, ctx) for v in consumed_values(broker, topic)] == events
    return events


def registry_snapshot(broker) -> dict:
    """Every subject -> version -> (id, schemaType, schema, references), via raw HTTP."""
    status, subjects, _ = http(broker, "GET", "/subjects")
    assert status == 200, subjects
    out = {}
    for s in subjects:
        status, versions, _ = http(broker, "GET", f"/subjects/{s}/versions")
        assert status == 200, versions
        out[s] = {}
        for v in versions:
            status, body, _ = http(broker, "GET", f"/subjects/{s}/versions/{v}")
            assert status == 200, body
            out[s][v] = (body["id"], body.get("schemaType", "AVRO"), body["schema"], body.get("references", []))
    return out


# --- tests ----------------------------------------------------------------------------------


def test_avro_round_trip_and_compatibility(broker):
    client = registry_client(broker)
    topic = broker.create_topic(unique_topic("sr-avro"), partitions=3)
    round_trip_avro(broker, client, topic)
    subject = f"{topic}-value"
    assert client.get_subjects() == [subject]
    v1 = client.get_latest_version(subject)
    assert v1.version == 1

    with pytest.raises(SchemaRegistryError) as refused:
        client.register_schema(subject, Schema(json.dumps(ORDER_V2_BREAKING), "AVRO"))
    assert refused.value.http_status_code == 409, refused.value
    assert refused.value.error_code == 409, refused.value
    assert "currency" in refused.value.error_message, refused.value.error_message
    assert http(broker, "GET", f"/subjects/{subject}/versions")[1] == [1], "a refused schema was stored"

    new_id = client.register_schema(subject, Schema(json.dumps(ORDER_V2), "AVRO"))
    assert new_id != v1.schema_id
    client.clear_latest_caches()  # the client caches "latest"
    latest = client.get_latest_version(subject)
    assert (latest.version, latest.schema_id) == (2, new_id)
    # The same schema again: same id, no new version.
    assert client.register_schema(subject, Schema(json.dumps(ORDER_V2), "AVRO")) == new_id
    assert client.get_versions(subject) == [1, 2]

    # v2 writers, read back with the reader's own (v2) schema.
    ctx = SerializationContext(topic, MessageField.VALUE)
    ser = AvroSerializer(client, json.dumps(ORDER_V2), conf={"auto.register.schemas": False,
                                                              "use.latest.version": True})
    value = ser({"id": 99, "customer": "late", "amount": 1.0, "note": "hi"}, ctx)
    assert value[1:5] == new_id.to_bytes(4, "big")
    produce_values(broker, topic, [value])
    decoded = [AvroDeserializer(client)(v, ctx) for v in consumed_values(broker, topic)]
    assert {"id": 99, "customer": "late", "amount": 1.0, "note": "hi"} in decoded
    assert len(decoded) == 51


def test_protobuf_with_timestamp_round_trip(broker):
    client = registry_client(broker)
    topic = broker.create_topic(unique_topic("sr-proto"), partitions=2)
    round_trip_protobuf(broker, client, topic)
    latest = client.get_latest_version(f"{topic}-value")
    assert latest.schema.schema_type == "PROTOBUF"
    # The text form names the Timestamp import; the registry resolved it.
    status, body, _ = http(broker, "GET", f"/schemas/ids/{latest.schema_id}")
    assert status == 200
    assert "google/protobuf/timestamp.proto" in body["schema"], body
    assert "google.protobuf.Timestamp" in body["schema"], body


def test_json_schema_round_trip(broker):
    client = registry_client(broker)
    topic = broker.create_topic(unique_topic("sr-json"))
    round_trip_json(broker, client, topic)
    latest = client.get_latest_version(f"{topic}-value")
    assert latest.schema.schema_type == "JSON"
    # The serializer validates against the registered schema: a bad event never leaves.
    ser = JSONSerializer(json.dumps(EVENT_JSON_SCHEMA), client)
    with pytest.raises(Exception):
        ser({"kind": "view"}, SerializationContext(topic, MessageField.VALUE))


def test_restart_keeps_subjects_versions_and_ids(broker):
    client = registry_client(broker)
    avro_topic = broker.create_topic(unique_topic("sr-r-avro"))
    proto_topic = broker.create_topic(unique_topic("sr-r-proto"))
    json_topic = broker.create_topic(unique_topic("sr-r-json"))
    orders = round_trip_avro(broker, client, avro_topic, n=20)
    client.register_schema(f"{avro_topic}-value", Schema(json.dumps(ORDER_V2), "AVRO"))
    protos = round_trip_protobuf(broker, client, proto_topic, n=20)
    events = round_trip_json(broker, client, json_topic, n=20)
    client.set_compatibility(f"{json_topic}-value", "FULL")
    # A soft-deleted version stays deleted, and its id stays taken.
    extra = f"extra-{uuid.uuid4().hex[:6]}"
    extra_id = client.register_schema(extra, Schema('"string"', "AVRO"))
    client.delete_version(extra, 1)
    before = registry_snapshot(broker)
    assert len(before) == 3 and all(before.values()), before
    max_id = max(vid for versions in before.values() for vid, *_ in versions.values())

    broker.restart()
    assert "schema registry loaded" in broker.log_text()

    assert registry_snapshot(broker) == before
    fresh = registry_client(broker)  # no cached ids
    assert fresh.get_compatibility(f"{json_topic}-value") == "FULL"
    status, body, _ = http(broker, "GET", f"/subjects/{extra}/versions")
    assert (status, body["error_code"]) == (404, 40401), body
    status, body, _ = http(broker, "GET", f"/subjects/{extra}/versions?deleted=true")
    assert (status, body) == (200, [1])

    ctx = lambda t: SerializationContext(t, MessageField.VALUE)  # noqa: E731
    assert [AvroDeserializer(fresh)(v, ctx(avro_topic)) for v in consumed_values(broker, avro_topic)] == orders
    cls = order_message_class()
    de = ProtobufDeserializer(cls, {"use.deprecated.format": False})
    assert [de(v, ctx(proto_topic)) for v in consumed_values(broker, proto_topic)] == protos
    de = JSONDeserializer(None, schema_registry_client=fresh)
    assert [de(v, ctx(json_topic)) for v in consumed_values(broker, json_topic)] == events

    # Ids are never reused after a restart.
    new_id = fresh.register_schema(f"new-{uuid.uuid4().hex[:6]}", Schema('{"type":"fixed","name":"F","size":4}', "AVRO"))
    assert new_id > max(max_id, extra_id)


def test_confluent_error_codes_over_http(broker):
    subject = f"codes-{uuid.uuid4().hex[:6]}"
    status, body, ctype = http(broker, "GET", f"/subjects/{subject}/versions")
    assert (status, body["error_code"]) == (404, 40401), body
    assert ctype.startswith(CONTENT_TYPE), ctype

    status, body, ctype = http(broker, "POST", f"/subjects/{subject}/versions", {"schema": '"string"'})
    assert status == 200 and isinstance(body["id"], int), body
    assert ctype.startswith(CONTENT_TYPE), ctype

    status, body, _ = http(broker, "GET", f"/subjects/{subject}/versions/99")
    assert (status, body["error_code"]) == (404, 40402), body
    status, body, _ = http(broker, "GET", "/schemas/ids/987654")
    assert (status, body["error_code"]) == (404, 40403), body

    status, body, _ = http(broker, "POST", f"/subjects/{subject}/versions", {"schema": '{"type": "record", "name":'})
    assert (status, body["error_code"]) == (422, 42201), body
    assert body["message"], body
    status, body, _ = http(broker, "POST", f"/subjects/{subject}/versions",
                           {"schema": "syntax = \"proto3\"; message M { strin x = 1; }", "schemaType": "PROTOBUF"})
    assert (status, body["error_code"]) == (422, 42201), body

    # What confluent-kafka's serializers ask first: no association is a JSON 404.
    status, body, ctype = http(broker, "GET",
                               f"/associations/resources/-/{subject}?resourceType=topic&associationType=value")
    assert status == 404 and "error_code" in body, body
    status, body, _ = http(broker, "GET", "/schemas/types")
    assert (status, sorted(body)) == (200, ["AVRO", "JSON", "PROTOBUF"])


def test_schemas_topic_is_internal_and_durable(broker):
    """Registry changes are records of `_schemas`, which clients cannot write."""
    client = registry_client(broker)
    client.register_schema("durable-value", Schema('"long"', "AVRO"))
    p = Producer({"bootstrap.servers": broker.bootstrap, "acks": "all", "message.timeout.ms": 10_000})
    errors = []
    p.produce("_schemas", key=b'{"keytype":"NOOP","magic":0}', value=b"{}",
              on_delivery=lambda err, msg: errors.append(err))
    p.flush(30)
    assert len(errors) == 1 and errors[0] is not None, errors
    assert errors[0].code() == KafkaError.TOPIC_EXCEPTION, errors[0]
    consumed = consume_all(broker.bootstrap, "_schemas")
    keys = [json.loads(m.key) for m in consumed[0]]
    assert {"keytype": "SCHEMA", "subject": "durable-value", "version": 1, "magic": 1} in keys


def test_taken_registry_port_fails_startup(make_broker, tmp_path):
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen(1)
    try:
        b = make_broker(tmp_path / "b", start=False)
        b.registry_addr = f"127.0.0.1:{holder.getsockname()[1]}"
        with pytest.raises(BrokerError) as failed:
            b.start(timeout=30)
        assert "exited with code" in str(failed.value), failed.value
        assert f"cannot bind {b.registry_addr}" in b.log_text(), b.log_tail()
    finally:
        holder.close()


def test_registration_survives_a_crash(broker):
    """acks=all: a registration answered before kill -9 is there after recovery."""
    client = registry_client(broker)
    ids = [client.register_schema(f"crash-{i}", Schema(json.dumps({"type": "enum", "name": f"E{i}",
                                                                    "symbols": ["A", "B"]}), "AVRO"))
           for i in range(10)]
    broker.restart(hard=True)
    fresh = registry_client(broker)
    assert [fresh.get_latest_version(f"crash-{i}").schema_id for i in range(10)] == ids
