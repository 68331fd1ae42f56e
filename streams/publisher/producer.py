"""GatewayPublisher: store-and-forward publishing of ebi records for gateway software.

``publish(topic, record)`` serializes the record (Avro body) and appends it to the on-disk
spool; it returns once the entry is fsync'd. ``drain()`` sends spooled entries in order with
an idempotent confluent-kafka producer (acks=all, zstd) and advances the spool checkpoint
only on delivery reports. While the broker is unreachable entries accumulate on disk; after a
crash, unacknowledged entries are sent again (at-least-once; the pipeline drops replays by
reading_id / report_id). The Confluent header (schema id) is added when sending, so a gateway
can publish while offline as long as it can reach the registry once when it reconnects.
Each message is signed when it is sent (the signature covers the framed value): with the
gateway's key (``signing_key_file``, or ``signer``), see docs/security.md.
"""

from __future__ import annotations

import io
import logging
import threading
import time
from pathlib import Path
from typing import Any

import fastavro

from schemas.catalog import default_catalog
from schemas.catalog.model import Catalog, SchemaStore
from schemas.codec import MAX_MESSAGE_BYTES, AvroSerializer, SchemaSource
from streams import clients
from streams.metrics import Metrics
from streams.publisher.spool import Entry, Spool
from streams.settings import Settings

log = logging.getLogger(__name__)


def producer_config(settings: Settings, **overrides: Any) -> dict[str, Any]:
    """The ebi producer settings: idempotent, acks=all, zstd, batched, bounded retries."""
    return clients.kafka_config(settings, **{
        "enable.idempotence": True,
        "acks": "all",
        "compression.type": "zstd",
        "linger.ms": 20,
        "batch.num.messages": 10_000,
        "message.timeout.ms": 30_000,
        "retry.backoff.ms": 200,
        "message.max.bytes": MAX_MESSAGE_BYTES + 64 * 1024,
        "queue.buffering.max.messages": 500_000,
        **overrides,
    })


def make_producer(settings: Settings, **overrides: Any) -> Any:
    return clients.producer(settings, **producer_config(settings, **overrides))


def avro_body(record: str, obj: dict[str, Any], schemas: SchemaStore | None = None) -> bytes:
    """The Avro body of ``obj`` (no Confluent header)."""
    out = io.BytesIO()
    fastavro.schemaless_writer(out, (schemas or default_catalog().schemas).parsed(record), obj)
    return out.getvalue()


class GatewayPublisher:
    """Store-and-forward publisher. Call ``publish``/``publish_many``, then ``drain`` (or
    ``start()`` a background sender), and ``close`` at the end. ``config`` overrides
    librdkafka settings of :func:`producer_config`; ``producer`` injects a client (tests)."""

    def __init__(self, settings: Settings, spool_dir: str | Path, registry: SchemaSource,
                 *, spool_max_bytes: int = 256 * 1024 * 1024, metrics: Metrics | None = None,
                 producer: Any = None, config: dict[str, Any] | None = None,
                 catalog: Catalog | None = None, max_message_bytes: int = 1_048_576,
                 signer: Any = "auto") -> None:
        from streams.signing.signer import signer_for

        self.settings = settings
        self.catalog = catalog or default_catalog()
        # the gateway's key (None: unsigned; "auto": signing_key_file or the dev keyring)
        self.signer = signer_for(settings, registry, self.catalog) if signer == "auto" \
            else signer
        self.max_message_bytes = max_message_bytes   # the platform's limits.max_message_bytes
        self.spool = Spool(spool_dir, max_bytes=spool_max_bytes)
        self.serializer = AvroSerializer(registry, self.catalog.schemas)
        self.metrics = metrics
        self.producer = producer or make_producer(settings, **(config or {}))
        self._cursor = self.spool.checkpoint   # next seq to hand to the producer
        self._failed: int | None = None        # lowest seq whose delivery failed
        self._last_error = ""
        self._lock = threading.Lock()
        self._drain_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- publishing (durable before returning) ------------------------------------------
    def publish(self, topic: str, record: dict[str, Any]) -> int:
        """Spool one record for logical ``topic`` ("telemetry", "incidents", ...)."""
        return self.publish_many(topic, [record])[0]

    def publish_many(self, topic: str, records: list[dict[str, Any]]) -> list[int]:
        spec = self.catalog.topic(topic)
        full = self.settings.topic(topic)
        items = []
        for obj in records:
            key = obj.get(spec.key) if spec.key else None
            body = avro_body(spec.record, obj, self.catalog.schemas)
            if len(body) + 5 > self.max_message_bytes:
                raise ValueError(f"a {spec.record} of {len(body) + 5} bytes is over the "
                                 f"platform's limit of {self.max_message_bytes}: split it "
                                 "(fewer readings per envelope)")
            items.append((full, spec.record, None if key is None else str(key).encode(), body))
        return self.spool.append_many(items)

    # -- sending --------------------------------------------------------------------------
    def _on_delivery(self, seq: int, topic: str) -> Any:
        def report(err: Any, msg: Any) -> None:
            if err is None:
                self.spool.ack(seq)
                if self.metrics is not None:
                    self.metrics.records_out.labels(topic, "publish").inc()
            else:
                with self._lock:
                    self._failed = seq if self._failed is None else min(self._failed, seq)
                    self._last_error = str(err)
        return report

    def _send(self, entry: Entry) -> None:
        value = self.serializer.header(entry.topic, entry.record) + entry.body
        headers = None
        if self.signer is not None:
            logical = entry.topic.removeprefix(self.settings.topic_prefix)
            headers = self.signer.sign(logical, entry.key, value) or None
        extra = {"headers": headers} if headers else {}
        while True:
            try:
                self.producer.produce(entry.topic, value=value, key=entry.key,
                                      on_delivery=self._on_delivery(entry.seq, entry.topic),
                                      **extra)
                return
            except BufferError:  # local queue full: serve delivery reports and retry
                self.producer.poll(0.1)

    def pump(self, limit: int = 10_000) -> int:
        """Hand up to ``limit`` spooled entries to the producer; returns how many."""
        with self._lock:
            if self._failed is not None:   # resend from the first failure on, in order
                log.warning("delivery failed (%s); resending from spool entry %d",
                            self._last_error, self._failed)
                self._cursor = min(self._cursor, self._failed)
                self._failed = None
            start = max(self._cursor, self.spool.acked_through())
        count = 0
        for entry in self.spool.read(start, limit):
            self._send(entry)
            self._cursor = entry.seq + 1
            count += 1
        self.producer.poll(0)
        return count

    def drain(self, timeout: float = 30.0) -> int:
        """Send everything spooled and wait for delivery reports up to ``timeout`` seconds;
        commits the checkpoint and returns the number of entries still undelivered."""
        deadline = time.monotonic() + timeout
        with self._drain_lock:
            while True:
                self.pump()
                self.producer.flush(max(0.0, min(1.0, deadline - time.monotonic())))
                done = self.spool.acked_through() >= self.spool.next_seq
                if done or time.monotonic() >= deadline:
                    break
            self.spool.commit()
            return self.spool.next_seq - self.spool.acked_through()

    flush = drain

    @property
    def last_error(self) -> str:
        return self._last_error

    # -- background sender -------------------------------------------------------------------
    def start(self, interval: float = 1.0) -> None:
        """Drain in a background thread every ``interval`` seconds until ``close``."""
        if self._thread is not None:
            return
        self._stop.clear()

        def loop() -> None:
            while not self._stop.is_set():
                try:
                    self.drain(timeout=interval)
                except Exception:  # keep the sender alive; the spool keeps the data
                    log.exception("background drain failed; will retry")
                self._stop.wait(interval)

        self._thread = threading.Thread(target=loop, name="ebi-publisher", daemon=True)
        self._thread.start()

    def close(self, timeout: float = 10.0) -> int:
        """Stop the background sender, try a last drain, close the spool; returns the
        number of entries left for the next run."""
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None
        left = self.drain(timeout)
        if left:
            self.producer.purge()
            self.producer.flush(0)
        self.spool.close()
        return left
