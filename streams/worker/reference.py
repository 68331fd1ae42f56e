"""Feed the reference data (the catalog's reference record types: enterprises, sensors) from
their compacted topics into memory.

Every worker reads ALL partitions of the reference topics from the beginning (no consumer
group, no commits) in a background thread. :meth:`ReferenceFeed.sync` waits until everything
that was in the topics when it was called has been applied: at start-up (the worker does not
process before that) and when a record names a sensor or enterprise not yet known (a
registration published just before its first readings) or a signing key not yet known:
:meth:`ReferenceFeed.catch_up`. A catch-up serves every message the broker received before it
began, so one serves a whole burst; one runs at a time, and a message that arrived before the
one under way began waits for it rather than going on without it. Unknown keys catch up at
most 20 times a second, unknown sensors and enterprises once per ``min_sync_interval``.
Empty reference topics are simply "in sync".

The end offsets are asked of a second consumer, never of the one the feed thread is
consuming with (a confluent-kafka consumer serves one thread at a time: asking it from the
worker while the thread polls blocked the worker for good). Registrations that cannot be
decoded or fail their checks are logged, counted in ``ebi_rejects{topic=...}`` and ignored
(each worker reads them, so they are not dead-lettered once per worker; ``ebi publish``
validates them before they get here). Nothing a message holds can stop the thread; if the
thread dies anyway, :meth:`healthy` says so (``/readyz``) and the metrics show the backlog.

Registrations are signed by the registration authority (:mod:`streams.signing`): with a
``verifier``, a registration or tombstone whose signature is not a trust anchor's is not
applied; it is counted (``ebi_rejects``) and written to the dead letters (stage ``verify``,
with its bytes: every worker writes the same one, which ClickHouse keeps once), so a forged
deregistration is seen and the authority can publish the registration again.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from schemas.catalog.model import Catalog, RecordType
from schemas.codec import (
    AvroDeserializer,
    AvroSerializer,
    DecodeError,
    SchemaSource,
    SerializationContext,
)
from schemas.records import Source, dead_letter
from streams import clients
from streams.metrics import Metrics
from streams.processors.reference import ReferenceData
from streams.settings import Settings
from streams.signing.senders import rejected_fields
from streams.signing.verify import Rejected, Verifier

log = logging.getLogger(__name__)


class ReferenceFeed:
    def __init__(self, settings: Settings, catalog: Catalog, registry: SchemaSource,
                 reference: ReferenceData, metrics: Metrics,
                 min_sync_interval: float = 2.0, verifier: Verifier | None = None) -> None:
        self.settings = settings
        self.catalog = catalog
        self.registry = registry
        self.verifier = verifier
        self._dead: Any = None           # producer of the rejected registrations' dead letters
        self._caught_up_from_ms = 0      # wall clock: when the last completed catch-up began
        self._last_catch_up = 0.0        # monotonic: when the last catch-up ended
        self._catch_up_lock = threading.Lock()   # one catch-up at a time, the others wait
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
        if self.verifier is not None and kind.signed is not None:
            stamp = msg.timestamp()[1] if msg.timestamp() else 0
            verdict = self.verifier.verify(kind.signed, kind.input.name, msg.key(), msg.value(),
                                           msg.headers(), stamp if stamp > 0 else now_ms)
            if isinstance(verdict, Rejected):
                self._reject(kind, msg, verdict, now_ms)
                return
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

    def _reject(self, kind: RecordType, msg: Any, why: Rejected, now_ms: int) -> None:
        """A registration not signed by the authority: not applied, counted, dead-lettered."""
        log.warning("reference feed: %s[%d]@%d not applied: %s: %s", msg.topic(),
                    msg.partition(), msg.offset(), why.code, why.message)
        self.metrics.rejects.labels(kind.input.name, why.code).inc()
        letter = dead_letter(Source(msg.topic(), msg.partition(), msg.offset()), msg.key(),
                             msg.value() or b"", why.code,
                             f"{kind.name} registration at {msg.topic()}[{msg.partition()}]@"
                             f"{msg.offset()} not applied: {why.message}", "verify", now_ms,
                             record_id=(msg.key() or b"").decode("utf-8", "replace")[:200])
        letter.update(rejected_fields(why))
        try:
            if self._dead is None:
                topic = self.catalog.output("deadletter").topic
                serializer = AvroSerializer(self.registry, self.catalog.schemas, millis=True)
                ctx = SerializationContext(self.settings.topic(topic.name), topic.record)
                producer = clients.producer(self.settings, **{"acks": "all", "linger.ms": 50})
                self._dead = (producer, serializer, ctx)
            producer, serializer, ctx = self._dead
            producer.produce(ctx.topic, value=serializer(letter, ctx))
            producer.poll(0)
        except Exception:  # the warning and the counter stand; the dead letter is a courtesy
            log.exception("reference feed: cannot write the dead letter of %s[%d]@%d",
                          msg.topic(), msg.partition(), msg.offset())

    def _served(self, received_ms: int) -> bool:
        """A catch-up that began after the broker received the message (``received_ms``,
        the input topics' LogAppendTime) has completed: whatever was registered before the
        message was on its topic is applied. (Worker and broker clocks are taken to agree, as
        the lateness rules take them.)"""
        return bool(received_ms) and received_ms <= self._caught_up_from_ms

    def may_sync_key(self, key_id: str | None, received_ms: int = 0) -> bool:
        """A message names a key this worker does not know: could a catch-up find it? Yes
        unless one that began after the message arrived has completed (forged key ids
        included: one catch-up serves a whole burst)."""
        return key_id is not None and not self._served(received_ms)

    def may_sync(self, received_ms: int = 0) -> bool:
        """A record names a sensor or enterprise this worker does not know: catch up? Not
        when a completed one began after it arrived, nor within ``min_sync_interval`` of the
        last sync, unless one is under way (the record then waits for it)."""
        if self._served(received_ms):
            return False
        return self._catch_up_lock.locked() or \
            time.monotonic() - self._last_sync >= self.min_sync_interval

    def catch_up(self, received_ms: int = 0, timeout: float = 10.0) -> bool:
        """:meth:`sync` for a message the broker received at ``received_ms`` that names
        something unknown, at most 20 times a second (a later message of a flood of forged
        key ids waits for the next, it cannot keep the worker syncing). One runs at a time:
        a message that arrived before the one under way began waits for it to end and syncs
        no more."""
        with self._catch_up_lock:
            if self._served(received_ms):
                return True
            wait = self._last_catch_up + 0.05 - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            began_ms = int(time.time() * 1000)
            try:
                synced = self.sync(timeout)
            finally:
                self._last_catch_up = time.monotonic()
            if synced:     # a failed sync proves nothing: the next message asks again
                self._caught_up_from_ms = max(self._caught_up_from_ms, began_ms)
            return synced

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

    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def healthy(self) -> tuple[bool, str]:
        """For ``/readyz``: the feed thread runs and has caught up at least once."""
        if not self.alive():
            return False, "reference feed thread is not running"
        if not self.loaded.is_set():
            return False, "reference data not loaded yet"
        return True, (f"{len(self.reference.enterprises)} enterprises, "
                      f"{len(self.reference.sensors)} sensors, "
                      f"{len(self.reference.keys)} signing keys")

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._offsets is not None:
            self._offsets.close()
        if self._dead is not None:
            self._dead[0].flush(5)
