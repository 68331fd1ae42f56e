"""Small Kafka helpers around the pipeline: publish records and read decoded outputs back.

Used by ``ebi canary``, the benchmarks and the integration tests (not by the worker's hot
path). Topics are logical names of the catalog.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from schemas.catalog import default_catalog
from schemas.catalog.model import Catalog
from schemas.codec import (
    AvroDeserializer,
    AvroSerializer,
    DecodeError,
    SchemaSource,
    SerializationContext,
)
from streams import clients
from streams.settings import Settings

Coordinates = tuple[str, int, int]     # topic, partition, offset


AUTO = "auto"


def publish(settings: Settings, registry: SchemaSource,
            items: Iterable[tuple[str, str, dict[str, Any] | bytes | None]],
            producer: Any = None, timeout: float = 60.0,
            catalog: Catalog | None = None, signer: Any = AUTO) -> list[Coordinates]:
    """Send ``(logical topic, key, record, raw bytes or None for a tombstone)`` in order;
    returns the coordinates of each message (in the same order) once all are acknowledged.
    Each message is signed by ``signer`` (:mod:`streams.signing.signer`; by default this
    process's own: its key file or the local dev keyring, whose keys are registered first;
    None: unsigned)."""
    from streams.signing.signer import signer_for

    if producer is None:
        producer = clients.producer(settings, **{"acks": "all", "enable.idempotence": True,
                                                 "linger.ms": 20, "compression.type": "zstd"})
    catalog = catalog or default_catalog()
    items = list(items)
    if signer == AUTO:
        signer = signer_for(settings, registry, catalog)
    if signer is not None:
        signer.prepare(items)
    serializer = AvroSerializer(registry, catalog.schemas)
    coords: list[Coordinates | None] = []
    errors: list[str] = []

    def delivered(index: int) -> Callable[[Any, Any], None]:
        def report(err: Any, msg: Any) -> None:
            if err is not None:
                errors.append(str(err))
            else:
                coords[index] = (msg.topic(), msg.partition(), msg.offset())
        return report

    for index, (logical, key, value) in enumerate(items):
        topic = settings.topic(logical)
        record = value if isinstance(value, dict) else None
        if record is not None:
            value = serializer(record, SerializationContext(topic,
                                                            catalog.topic(logical).record))
        raw_key = key.encode() if key else None
        headers = signer.sign(logical, raw_key, value, record) if signer is not None else None
        coords.append(None)
        while True:
            try:
                producer.produce(topic, value=value, key=raw_key, headers=headers or None,
                                 on_delivery=delivered(index))
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
    left = producer.flush(timeout)
    if left or errors or any(c is None for c in coords):
        raise RuntimeError(f"publishing failed: {left} undelivered, errors: {errors[:3]}")
    return [c for c in coords if c is not None]


def _high(consumer: Any, tp: Any, attempts: int = 50) -> int:
    """High watermark, retrying while a new topic's leader is being elected."""
    from confluent_kafka import KafkaException

    for attempt in range(attempts):
        try:
            return int(consumer.get_watermark_offsets(tp, timeout=10)[1])
        except KafkaException:
            if attempt == attempts - 1:
                raise
            time.sleep(0.2)
    raise AssertionError("unreachable")


@dataclass
class Output:
    topic: str          # logical
    partition: int
    offset: int
    key: bytes | None
    record: dict[str, Any]


class OutputReader:
    """Reads logical topics from given start offsets (default: the beginning), decoded."""

    def __init__(self, settings: Settings, registry: SchemaSource, logical: Iterable[str],
                 start: dict[tuple[str, int], int] | None = None,
                 catalog: Catalog | None = None) -> None:
        from confluent_kafka import OFFSET_BEGINNING, TopicPartition

        self.settings = settings
        self.names = {settings.topic(name): name for name in logical}
        self.catalog = catalog or default_catalog()
        self.deserializer = AvroDeserializer(registry, self.catalog.schemas, millis=True)
        self.consumer = clients.consumer(settings, f"{settings.worker_id}-reader")
        meta = self.consumer.list_topics(timeout=30)
        assignment = []
        for topic in self.names:
            for p in meta.topics[topic].partitions:
                offset = (start or {}).get((topic, p), OFFSET_BEGINNING)
                assignment.append(TopicPartition(topic, p, offset))
        self.consumer.assign(assignment)
        self.outputs: list[Output] = []
        self.undecodable = 0

    @staticmethod
    def end_offsets(settings: Settings, logical: Iterable[str]) -> dict[tuple[str, int], int]:
        """Current end of each partition (to read only what comes after)."""
        from confluent_kafka import TopicPartition

        consumer = clients.consumer(settings, f"{settings.worker_id}-offsets")
        try:
            meta = consumer.list_topics(timeout=30)
            ends = {}
            for name in logical:
                topic = settings.topic(name)
                for p in meta.topics[topic].partitions:
                    ends[(topic, p)] = _high(consumer, TopicPartition(topic, p))
            return ends
        finally:
            consumer.close()

    def poll(self, seconds: float = 0.5) -> int:
        """Read what is there for up to ``seconds``; returns how many new outputs."""
        got = 0
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            batch = self.consumer.consume(1000, 0.1)
            for msg in batch:
                if msg.error():
                    continue
                topic = str(msg.topic())
                name = self.names[topic]
                try:
                    record, _ = self.deserializer(msg.value(), SerializationContext(
                        topic, self.catalog.topic(name).record))
                except DecodeError:
                    self.undecodable += 1
                    continue
                self.outputs.append(Output(name, int(msg.partition() or 0),
                                           int(msg.offset() or 0), msg.key(), record))
                got += 1
            if not batch and got:
                break
        return got

    def until(self, done: Callable[[list[Output]], bool], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.poll(0.5)
            if done(self.outputs):
                return True
        return done(self.outputs)

    def of(self, logical: str) -> list[dict[str, Any]]:
        return [o.record for o in self.outputs if o.topic == logical]

    def close(self) -> None:
        self.consumer.close()


def watermarks(settings: Settings, topics: Iterable[str], timeout: float = 10.0
               ) -> dict[tuple[str, int], tuple[int, int]]:
    """(full topic, partition) -> (low, high) watermarks of logical ``topics``."""
    from confluent_kafka import TopicPartition

    consumer = clients.consumer(settings, f"ebi-offsets-{uuid.uuid4().hex[:8]}")
    try:
        meta = consumer.list_topics(timeout=timeout)
        out = {}
        for logical in topics:
            name = settings.topic(logical)
            if name not in meta.topics:
                continue
            for partition in sorted(meta.topics[name].partitions):
                low, high = consumer.get_watermark_offsets(
                    TopicPartition(name, partition), timeout=timeout)
                out[(name, partition)] = (int(low), int(high))
        return out
    finally:
        consumer.close()


def committed(settings: Settings, group: str, marks: dict[tuple[str, int], tuple[int, int]],
              timeout: float = 5.0) -> dict[tuple[str, int], int]:
    """The committed offsets of ``group`` on the partitions of ``marks`` (those it has)."""
    from confluent_kafka import TopicPartition

    consumer = clients.consumer(settings, group)
    try:
        tps = consumer.committed([TopicPartition(t, p) for t, p in marks], timeout=timeout)
        return {(tp.topic, tp.partition): int(tp.offset) for tp in tps if tp.offset >= 0}
    finally:
        consumer.close()


def behind(settings: Settings, group: str, topics: Iterable[str],
           timeout: float = 5.0) -> int:
    """Messages of logical ``topics`` that ``group`` has not committed yet."""
    marks = watermarks(settings, topics, timeout)
    done = committed(settings, group, marks, timeout)
    return sum(high - max(done.get(key, low), low) for key, (low, high) in marks.items())
