"""The foundation against real services: Kafka round trip, a schema in Apicurio, and inserts
and queries on both ClickHouse modes; the stack is idempotent, persists its schemas and
leaves no process behind."""

from __future__ import annotations

import datetime as dt
import urllib.parse
import uuid

import pytest

from schemas.catalog import default_catalog
from schemas.codec import AvroDeserializer, AvroSerializer, SerializationContext
from streams import clients
from streams.settings import Settings
from streams.stack import Stack
from streams.stack.process import free_port

SCHEMAS = default_catalog().schemas

pytestmark = pytest.mark.integration


def test_kafka_produce_and_consume(settings: Settings) -> None:
    topic = f"it-roundtrip-{uuid.uuid4().hex[:6]}"
    producer = clients.producer(settings, **{"enable.idempotence": True})
    for i in range(10):
        producer.produce(topic, key=b"k", value=f"v{i}".encode())
    assert producer.flush(30) == 0
    consumer = clients.consumer(settings, topic, **{"auto.offset.reset": "earliest"})
    consumer.subscribe([topic])
    seen: list[bytes] = []
    for _ in range(60):
        for msg in consumer.consume(10, timeout=1.0):
            assert msg.error() is None
            seen.append(msg.value())
        if len(seen) == 10:
            break
    consumer.close()
    assert seen == [f"v{i}".encode() for i in range(10)]


def test_schema_registered_in_apicurio_round_trips(settings: Settings) -> None:
    registry = clients.registry(settings)
    topic = f"it-reg-{uuid.uuid4().hex[:6]}"
    ctx = SerializationContext(topic, "GatewayHeartbeat")
    heartbeat = {"gateway_id": "gw-1", "enterprise_id": "ent-1",
                 "sent_at": dt.datetime(2026, 1, 1, tzinfo=dt.UTC), "sequence": 7,
                 "interval_s": 60, "firmware": None}
    data = AvroSerializer(registry)(heartbeat, ctx)
    fresh = clients.registry(settings)  # a new client must find the schema by id
    record, schema_id = AvroDeserializer(fresh)(data, ctx)
    assert record == heartbeat
    assert schema_id == registry.id_for(f"{topic}-value", SCHEMAS.text("GatewayHeartbeat"))


def test_clickhouse_server_insert_and_query(clickhouse_server_url: str) -> None:
    from clickhouse_driver import Client

    parts = urllib.parse.urlparse(clickhouse_server_url)
    client = Client(host=parts.hostname, port=parts.port, database=parts.path.strip("/"),
                    user=urllib.parse.unquote(parts.username or ""),
                    password=urllib.parse.unquote(parts.password or ""))
    client.execute("CREATE TABLE t_stack (id UInt32, name String) ENGINE = MergeTree ORDER BY id")
    client.execute("INSERT INTO t_stack (id, name) VALUES", [[1, 2], ["a", "b"]], columnar=True)
    assert client.execute("SELECT count(), max(name) FROM t_stack") == [(2, "b")]


def test_chdb_insert_and_query(chdb_url: str) -> None:
    from chdb import session

    path = urllib.parse.urlparse(chdb_url).path
    sess = session.Session(path)
    try:
        sess.query("CREATE DATABASE IF NOT EXISTS it")
        sess.query("CREATE TABLE it.t_stack (id UInt32, name String) "
                   "ENGINE = MergeTree ORDER BY id")
        sess.query("INSERT INTO it.t_stack VALUES (1, 'a'), (2, 'b')")
        result = sess.query("SELECT count(), max(name) FROM it.t_stack", "CSV")
        assert str(result).strip() == '2,"b"'
    finally:
        sess.close()


def test_stack_is_idempotent_persists_schemas_and_leaves_nothing(tmp_path: object) -> None:
    """A private stack: up twice, a schema id survives down/up, down leaves no process."""
    from pathlib import Path

    settings = Settings(data_dir=Path(str(tmp_path)), kafka_port=free_port(),
                        kafka_controller_port=free_port(), kafka_broker_port=free_port(),
                        registry_port=free_port())
    stack = Stack(settings)
    try:
        stack.up()
        pids = [s.proc.pid() for s in stack.services if s.managed]  # type: ignore[attr-defined]
        stack.up()  # a second up is a no-op
        assert [s.proc.pid() for s in stack.services if s.managed] == pids  # type: ignore[attr-defined]
        registry = clients.registry(settings)
        schema_id = registry.id_for("persist-value", SCHEMAS.text("Enterprise"))
        stack.down()
        assert stack.leftover_processes() == []
        stack.up()
        again = clients.registry(settings).id_for("persist-value", SCHEMAS.text("Enterprise"))
        assert again == schema_id
        assert all(s.healthy for s in stack.status())
    finally:
        stack.down()
    assert stack.leftover_processes() == []
