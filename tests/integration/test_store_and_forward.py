"""Store-and-forward against a real broker that is down while the gateway publishes.

A private Kafka (own ports and data dir, not the session fixture) so the test can stop it.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka.admin import NewTopic

from schemas.codec import AvroDeserializer, SerializationContext
from schemas.registry import InMemoryRegistry
from streams import clients
from streams.access.declaration import load_declaration
from streams.publisher import GatewayPublisher
from streams.settings import Settings
from streams.stack.kafka import Kafka
from streams.stack.pki import ensure_credentials, ensure_pki
from streams.stack.process import free_port
from tests.integration.conftest import unique

pytestmark = pytest.mark.integration


def envelope(gateway: str, n: int, size: int = 10) -> dict[str, Any]:
    return {"gateway_id": gateway, "enterprise_id": "ent-110101-0001",
            "sent_at": 1767225600000 + n, "sequence": n, "readings": [
                {"reading_id": f"{gateway}-{n}-{i}", "sensor_id": f"{gateway}-s{i}",
                 "metric": "METHANE", "value": 0.2, "unit": "PERCENT_VOL", "quality": "GOOD",
                 "event_time": 1767225600000 + n} for i in range(size)]}


def consume(settings: Settings, topic: str, registry: InMemoryRegistry,
            expected: int) -> list[str]:
    consumer = clients.consumer(settings, unique("sf"), **{"auto.offset.reset": "earliest"})
    consumer.subscribe([topic])
    decode = AvroDeserializer(registry)
    ctx = SerializationContext(topic, "TelemetryBatch")
    ids: list[str] = []
    deadline = time.monotonic() + 60
    quiet = 0
    while quiet < 3 and time.monotonic() < deadline:  # 3 s quiet once all have arrived
        batch = consumer.consume(500, timeout=1.0)
        for msg in batch:
            assert msg.error() is None
            record, _ = decode(msg.value(), ctx)
            ids += [r["reading_id"] for r in record["readings"]]
        quiet = quiet + 1 if not batch and len(set(ids)) >= expected else 0
    consumer.close()
    return ids


def test_publish_while_broker_is_down(stack_settings: Settings, tmp_path: Path) -> None:
    settings = stack_settings.replace(
        data_dir=tmp_path / "kafka-private", kafka_port=free_port(),
        kafka_controller_port=free_port(), kafka_broker_port=free_port(),
        topic_prefix=unique("sf") + ".", kafka_bootstrap="")
    # the gateway's login and the CA exist before its broker does (provisioned up front)
    ensure_pki(settings.data_dir)
    ensure_credentials(settings.data_dir, load_declaration().principals)
    registry = InMemoryRegistry()
    spool = tmp_path / "spool"
    quick: dict[str, Any] = {"reconnect.backoff.max.ms": 1000, "message.timeout.ms": 60_000}
    kafka = Kafka(settings)
    published: set[str] = set()
    try:
        # 1. The broker is not running: publish() still returns once the entry is on disk.
        first = GatewayPublisher(settings, spool, registry, config=quick)
        for n in range(20):
            first.publish("telemetry", envelope("gw-0001-01", n))
            published.update(f"gw-0001-01-{n}-{i}" for i in range(10))
        assert first.drain(timeout=2) == 20          # nothing acknowledged
        assert first.close(timeout=0.5) == 20        # "crash": purge what is in memory
        # 2. A restarted gateway process finds the spool and keeps accumulating.
        second = GatewayPublisher(settings, spool, registry, config=quick)
        assert second.spool.pending() == 20
        for n in range(10):
            second.publish("telemetry", envelope("gw-0001-02", n))
            published.update(f"gw-0001-02-{n}-{i}" for i in range(10))
        second.pump()                                # queued in the client while down
        # 3. The broker comes up: everything is delivered and acknowledged.
        kafka.up()
        topic = settings.topic("telemetry")
        admin = clients.admin(settings)
        for future in admin.create_topics([NewTopic(topic, 4, 1)]).values():
            try:
                future.result(30)
            except Exception as exc:  # created meanwhile by the producer's metadata request
                assert "TOPIC_ALREADY_EXISTS" in str(exc)
        assert second.drain(timeout=90) == 0, second.last_error
        assert second.close() == 0
        assert list(spool.glob("*.seg")) == []
        ids = consume(settings, topic, registry, len(published))
    finally:
        kafka.down()
    assert len(set(ids)) == len(published) == 300
    assert set(ids) == published                     # no reading missing
    # at-least-once: duplicates are possible only for re-sent envelopes, never partial ones
    assert len(ids) % 10 == 0
