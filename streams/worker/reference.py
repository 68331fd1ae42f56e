"""Feed the reference data (the catalog's reference record types: enterprises, sensors) from
their compacted topics into memory.

Every worker reads ALL partitions of the reference topics from the beginning (no consumer
group, no commits) in a background thread. :meth:`ReferenceFeed.sync` waits until everything
that was in the topics when it was called has been applied: at start-up (the worker does not
process before that) and when a record names a sensor or enterprise not yet known (a
registration published just before its first readings), at most once per
``min_sync_interval``. Empty reference topics are simply "in sync".

The end offsets are asked of a second consumer, never of the one the feed thread is
consuming with (a confluent-kafka consumer serves one thread at a time: asking it from the
worker while the thread polls blocked the worker for good). Registrations that cannot be
decoded or fail their checks are logged, counted in ``ebi_rejects{topic=...}`` and ignored
(each worker reads them, so they are not dead-lettered once per worker; ``ebi publish``
validates them before they get here). Nothing a message holds can stop the thread; if the
thread dies anyway, :meth:`healthy` says so (``/readyz``) and the metrics show the backlog.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from schemas.catalog.model import Catalog, RecordType
from schemas.codec import AvroDeserializer, DecodeError, SchemaSource, SerializationContext
from streams import clients
from streams.metrics import Metrics
from streams.processors.reference import ReferenceData
from streams.settings import Settings

log = logging.getLogger(__name__)


class ReferenceFeed:
    def __init__(self, settings: Settings, catalog: Catalog, registry: SchemaSource,
                 reference: ReferenceData, metrics: Metrics,
                 min_sync_interval: float = 2.0) -> None:
        self.settings = settings
        self.reference = reference
        self.metrics = metrics
        self.deserializer = AvroDeserializer(registry, catalog.schemas, millis=True)
        self.min_sync_interval = min_sync_interval
        self.kinds: dict[str, RecordType] = {settings.topic(k.input.name): k
                                             for k in catalog.reference}
        self._positions: dict[tuple[str, int], int] = {}
        self._partitions: list[tuple[str, int]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._consumer: Any = None
        self._offsets: Any = None        # watermarks only (never the thread's consumer)
        self._last_sync = 0.0
        self.synced_at = 0.0             # monotonic time of the last successful sync
        self.loaded = threading.Event()

    def start(self) -> None:
        from confluent_kafka import OFFSET_BEGINNING, TopicPartition

        group = f"{self.settings.worker_id}-reference-unused"
        consumer = clients.consumer(self.settings, group, **{"enable.partition.eof": False})
        meta = consumer.list_topics(timeout=30)
        assignment = []
        for topic in self.kinds:
            parts = meta.topics.get(topic)
            if parts is None or parts.error is not None:
                raise RuntimeError(f"reference topic {topic} does not exist")
            assignment += [TopicPartition(topic, p, OFFSET_BEGINNING) for p in parts.partitions]
        self._partitions = [(tp.topic, tp.partition) for tp in assignment]
        consumer.assign(assignment)
        self._consumer = consumer
        self._offsets = clients.consumer(self.settings, group)
        self._thread = threading.Thread(target=self._run, name="reference-feed", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        consumer = self._consumer
        while not self._stop.is_set():
            try:
                for msg in consumer.consume(500, 0.2):
                    if msg.error():
                        log.warning("reference feed: %s", msg.error())
                        continue
                    self._apply(msg)
                    with self._lock:
                        self._positions[(msg.topic(), msg.partition())] = msg.offset() + 1
            except Exception:  # never let one bad message or a client hiccup end the feed
                log.exception("reference feed: consuming failed; continuing")
                self._stop.wait(1.0)
        consumer.close()

    def _apply(self, msg: Any) -> None:
        kind = self.kinds[msg.topic()]
        key = msg.key().decode("utf-8", "replace") if msg.key() else None
        now_ms = int(time.time() * 1000)
        if msg.value() is None:
            self.reference.apply(kind, key, None, now_ms)
            return
        try:
            record, _ = self.deserializer(msg.value(), SerializationContext(
                msg.topic(), kind.input.record))
        except DecodeError as exc:
            log.warning("reference feed: %s[%d]@%d ignored: %s", msg.topic(), msg.partition(),
                        msg.offset(), exc)
            self.metrics.rejects.labels(kind.input.name, exc.code).inc()
            return
        if not self.reference.apply(kind, key, record, now_ms):
            self.metrics.rejects.labels(kind.input.name, "INVALID_REFERENCE").inc()

    def _behind(self, targets: dict[tuple[str, int], int]) -> int:
        with self._lock:
            return sum(max(0, end - self._positions.get(tp, 0)) for tp, end in targets.items())

    def sync(self, timeout: float = 30.0) -> bool:
        """Block until everything in the topics now is applied; False on timeout (or when the
        end offsets cannot be read)."""
        from confluent_kafka import TopicPartition

        self._last_sync = time.monotonic()
        deadline = self._last_sync + timeout
        targets = {}
        try:
            for topic, partition in self._partitions:
                low, high = self._offsets.get_watermark_offsets(
                    TopicPartition(topic, partition), timeout=max(0.5, min(10.0, timeout)))
                if high > low:
                    targets[(topic, partition)] = high
        except Exception as exc:  # a broker hiccup: not in sync, try again later
            log.warning("reference feed: cannot read end offsets: %s", exc)
            return False
        while (behind := self._behind(targets)) > 0:
            self.metrics.reference_behind.set(behind)
            if time.monotonic() > deadline or not self.alive():
                return False
            time.sleep(0.01)
        self.metrics.reference_behind.set(0)
        self._last_sync = self.synced_at = time.monotonic()
        self.loaded.set()
        return True

    def may_sync(self) -> bool:
        return time.monotonic() - self._last_sync >= self.min_sync_interval

    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def healthy(self) -> tuple[bool, str]:
        """For ``/readyz``: the feed thread runs and has caught up at least once."""
        if not self.alive():
            return False, "reference feed thread is not running"
        if not self.loaded.is_set():
            return False, "reference data not loaded yet"
        return True, (f"{len(self.reference.enterprises)} enterprises, "
                      f"{len(self.reference.sensors)} sensors")

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._offsets is not None:
            self._offsets.close()
