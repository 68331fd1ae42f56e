"""Feed the reference data (enterprises, sensors) from their compacted topics into memory.

Every worker reads ALL partitions of both topics from the beginning (no consumer group, no
commits) in a background thread. :meth:`ReferenceFeed.sync` waits until everything that was
in the topics when it was called has been applied: at start-up (the worker does not process
before that) and when an envelope names a sensor or enterprise not yet known (a registration
published just before its first readings), at most once per ``min_sync_interval``.
Registrations that cannot be decoded or fail their checks are logged, counted in
``ebi_rejects{topic=...}`` and ignored (each worker reads them, so they are not dead-lettered
once per worker; ``ebi publish`` validates them before they get here).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from schemas.catalog import TOPICS
from schemas.codec import DecodeError, SchemaSource, SerializationContext
from streams import clients
from streams.metrics import Metrics
from streams.processors.decode import MillisDeserializer
from streams.processors.reference import ReferenceData
from streams.settings import Settings

log = logging.getLogger(__name__)
REFERENCE_TOPICS = ("enterprises", "sensors")


class ReferenceFeed:
    def __init__(self, settings: Settings, registry: SchemaSource, reference: ReferenceData,
                 metrics: Metrics, min_sync_interval: float = 2.0) -> None:
        self.settings = settings
        self.reference = reference
        self.metrics = metrics
        self.deserializer = MillisDeserializer(registry)
        self.min_sync_interval = min_sync_interval
        self.topics = {settings.topic(name): name for name in REFERENCE_TOPICS}
        self._positions: dict[tuple[str, int], int] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._consumer: Any = None
        self._last_sync = 0.0
        self.loaded = threading.Event()

    def start(self) -> None:
        from confluent_kafka import OFFSET_BEGINNING, TopicPartition

        consumer = clients.consumer(self.settings, f"{self.settings.worker_id}-reference-unused",
                                    **{"enable.partition.eof": False})
        meta = consumer.list_topics(timeout=30)
        assignment = []
        for topic in self.topics:
            parts = meta.topics.get(topic)
            if parts is None or parts.error is not None:
                raise RuntimeError(f"reference topic {topic} does not exist")
            assignment += [TopicPartition(topic, p, OFFSET_BEGINNING) for p in parts.partitions]
        consumer.assign(assignment)
        self._consumer = consumer
        self._thread = threading.Thread(target=self._run, name="reference-feed", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        consumer = self._consumer
        while not self._stop.is_set():
            for msg in consumer.consume(500, 0.2):
                if msg.error():
                    log.warning("reference feed: %s", msg.error())
                    continue
                self._apply(msg)
                with self._lock:
                    self._positions[(msg.topic(), msg.partition())] = msg.offset() + 1
        consumer.close()

    def _apply(self, msg: Any) -> None:
        logical = self.topics[msg.topic()]
        key = msg.key().decode("utf-8", "replace") if msg.key() else None
        now_ms = int(time.time() * 1000)
        if msg.value() is None:
            self.reference.apply(logical, key, None, now_ms)
            return
        try:
            record, _ = self.deserializer(msg.value(), SerializationContext(
                msg.topic(), TOPICS[logical].record))
        except DecodeError as exc:
            log.warning("reference feed: %s[%d]@%d ignored: %s", msg.topic(), msg.partition(),
                        msg.offset(), exc)
            self.metrics.rejects.labels(logical, exc.code).inc()
            return
        if not self.reference.apply(logical, key, record, now_ms):
            self.metrics.rejects.labels(logical, "INVALID_REFERENCE").inc()

    def _caught_up(self, targets: dict[tuple[str, int], int]) -> bool:
        with self._lock:
            return all(self._positions.get(tp, 0) >= end for tp, end in targets.items())

    def sync(self, timeout: float = 30.0) -> bool:
        """Block until everything in the topics now is applied; False on timeout."""
        from confluent_kafka import TopicPartition

        self._last_sync = time.monotonic()
        targets = {}
        for tp in self._consumer.assignment():
            low, high = self._consumer.get_watermark_offsets(
                TopicPartition(tp.topic, tp.partition), timeout=10)
            if high > low:
                targets[(tp.topic, tp.partition)] = high
        deadline = time.monotonic() + timeout
        while not self._caught_up(targets):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        self._last_sync = time.monotonic()
        self.loaded.set()
        return True

    def may_sync(self) -> bool:
        return time.monotonic() - self._last_sync >= self.min_sync_interval

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
