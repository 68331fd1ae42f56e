import io
from pathlib import Path
from typing import Any

import fastavro

from schemas.catalog import default_catalog
from schemas.codec import AvroDeserializer, SerializationContext
from schemas.registry import InMemoryRegistry
from streams.publisher import GatewayPublisher, producer_config
from streams.settings import Secret, Settings

CATALOG = default_catalog()
SCHEMAS = CATALOG.schemas


class FakeProducer:
    """Queues messages; flush delivers them unless the broker is 'down'."""

    def __init__(self) -> None:
        self.queue: list[tuple[str, bytes, bytes | None, Any]] = []
        self.delivered: list[tuple[str, bytes, bytes | None]] = []
        self.down = False
        self.fail_once = False

    def produce(self, topic: str, value: bytes, key: bytes | None, on_delivery: Any) -> None:
        self.queue.append((topic, value, key, on_delivery))

    def poll(self, timeout: float = 0) -> int:
        if self.down:
            return 0
        queue, self.queue = self.queue, []
        for topic, value, key, callback in queue:
            if self.fail_once:
                self.fail_once = False
                callback("Local: Message timed out", None)
                continue
            self.delivered.append((topic, value, key))
            callback(None, None)
        return len(queue)

    def flush(self, timeout: float = 0) -> int:
        self.poll()
        return len(self.queue)

    def purge(self) -> None:
        self.queue = []


def reading(i: int) -> dict:
    return {"gateway_id": "gw-1", "enterprise_id": "ent-1", "sent_at": 1767225600000 + i,
            "sequence": i, "readings": [
                {"reading_id": f"r{i}", "sensor_id": "s1", "metric": "METHANE", "value": 0.2,
                 "unit": "PERCENT_VOL", "quality": "GOOD", "event_time": 1767225600000 + i}]}


def test_config_is_idempotent_acks_all_compressed() -> None:
    config = producer_config(Settings(kafka_bootstrap="b:9092", kafka_username="gw-1",
                                      kafka_password=Secret("pw")))
    assert config["enable.idempotence"] is True and config["acks"] == "all"
    assert config["security.protocol"] == "SASL_SSL" and config["sasl.username"] == "gw-1"
    assert config["compression.type"] in ("zstd", "lz4")
    assert config["bootstrap.servers"] == "b:9092"


def test_store_and_forward_in_order(tmp_path: Path) -> None:
    registry = InMemoryRegistry()
    fake = FakeProducer()
    fake.down = True
    pub = GatewayPublisher(Settings(topic_prefix="x."), tmp_path, registry, producer=fake)
    for i in range(5):
        pub.publish("telemetry", reading(i))
    assert pub.drain(timeout=0.2) == 5       # broker down: nothing acknowledged
    fake.down = False
    fake.fail_once = True                    # the first delivery fails: resent in order
    assert pub.drain(timeout=2) == 0
    decode = AvroDeserializer(registry)
    ctx = SerializationContext("x.telemetry", "TelemetryBatch")
    ids = [decode(v, ctx)[0]["readings"][0]["reading_id"] for _, v, _ in fake.delivered]
    assert sorted(set(ids)) == [f"r{i}" for i in range(5)]
    assert {k for _, _, k in fake.delivered} == {b"gw-1"}
    assert {t for t, _, _ in fake.delivered} == {"x.telemetry"}
    assert pub.close() == 0


def test_crash_resends_unacknowledged(tmp_path: Path) -> None:
    registry = InMemoryRegistry()
    fake = FakeProducer()
    fake.down = True
    first = GatewayPublisher(Settings(), tmp_path, registry, producer=fake)
    for i in range(3):
        first.publish("telemetry", reading(i))
    first.drain(timeout=0.1)
    fake.purge()                              # the process dies with messages in memory
    second_producer = FakeProducer()
    second = GatewayPublisher(Settings(), tmp_path, registry, producer=second_producer)
    assert second.drain(timeout=1) == 0
    assert len(second_producer.delivered) == 3
    body = io.BytesIO(second_producer.delivered[0][1][5:])
    first_record: Any = fastavro.schemaless_reader(body, SCHEMAS.parsed("TelemetryBatch"))
    assert first_record["sequence"] == 0
    third = GatewayPublisher(Settings(), tmp_path, registry, producer=FakeProducer())
    assert third.spool.pending() == 0


def test_background_sender(tmp_path: Path) -> None:
    fake = FakeProducer()
    pub = GatewayPublisher(Settings(), tmp_path, InMemoryRegistry(), producer=fake)
    pub.start(interval=0.05)
    for i in range(20):
        pub.publish("telemetry", reading(i))
    assert pub.close() == 0
    assert len(fake.delivered) == 20


def test_a_record_over_the_platform_limit_is_refused_before_it_is_spooled(
        tmp_path: Path) -> None:
    import pytest

    class Quiet:
        def produce(self, *a: Any, **k: Any) -> None: ...
        def poll(self, t: float) -> int: return 0
        def flush(self, t: float = 0) -> int: return 0

    pub = GatewayPublisher(Settings(), tmp_path / "spool", InMemoryRegistry(), producer=Quiet(),
                           max_message_bytes=1000)
    env = {"gateway_id": "g", "enterprise_id": "e", "sent_at": 1767225600000, "sequence": 1,
           "readings": [{"reading_id": f"r{i}", "sensor_id": "s", "metric": "METHANE",
                         "value": 0.1, "unit": "PERCENT_VOL", "quality": "GOOD",
                         "event_time": 1767225600000} for i in range(100)]}
    with pytest.raises(ValueError, match="over the platform's limit"):
        pub.publish("telemetry", env)
    assert pub.spool.next_seq == pub.spool.checkpoint
    pub.spool.close()
