"""Encode and send the processors' outputs, then wait until Kafka acknowledged all of them.

One clean record per input message (or one dead letter) on the record type's clean topic,
plus the catalog's shared outputs (alerts, gateway statuses, per-reading dead letters), each
read from its ``Outputs`` field. Records are Avro in Confluent framing (int-millis
timestamps, schema ids registered once per subject at start-up). ``encode()`` turns one
message's outputs into bytes and raises :class:`OutputError` for one that cannot be encoded
or is larger than ``max_bytes`` (the producer's and the topics' limit): the caller sets that
message aside instead. ``produce()`` hands the bytes to the producer (see :mod:`.delivery`),
counted in the batch's :class:`~.delivery.Deliveries`; ``flush()`` awaits every delivery of
the batch; a failed delivery raises, and the worker then exits hard so that nothing of the
batch is committed (at-least-once).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from schemas.catalog.model import Catalog, Topic
from schemas.codec import AvroSerializer, SerializationContext
from schemas.records import Record
from streams.metrics import Metrics
from streams.processors.common import Outputs
from streams.settings import Settings
from streams.worker.delivery import Deliveries


class OutputError(ValueError):
    """An output that cannot be written (it does not encode, or it is too large)."""


@dataclass(frozen=True)
class Encoded:
    """One output message, ready for the producer."""

    target: _Target
    key: bytes | None
    value: bytes
    record: Record


@dataclass(frozen=True)
class _Target:
    topic: Topic
    ctx: SerializationContext
    counter: Any       # records_out child
    field: str = ""    # Outputs attribute (shared outputs)
    role: str = ""


def _counters(metrics: Metrics) -> dict[str, Callable[[str, Record], None]]:
    """Per-role counts beyond records_out: alerts by type (canary alerts left out), dead
    letters by reason and stage."""
    def alert(_input: str, record: Record) -> None:
        if record.get("tag") is None:        # canary alerts are no business figure
            metrics.alerts.labels(record["alert_type"]).inc()

    def dead(input_topic: str, record: Record) -> None:
        metrics.rejects.labels(input_topic, record["error_code"]).inc()
        metrics.deadletter_writes.labels(record["stage"]).inc()

    return {"alert": alert, "deadletter": dead}


class OutputSender:
    def __init__(self, producer: Any, settings: Settings, catalog: Catalog,
                 serializer: AvroSerializer, metrics: Metrics,
                 max_bytes: int = 8 * 1024 * 1024) -> None:
        self.producer = producer
        self.max_bytes = max_bytes
        self.serializer = serializer
        self.metrics = metrics

        def target(topic: Topic, field: str = "", role: str = "") -> _Target:
            return _Target(topic, SerializationContext(settings.topic(topic.name), topic.record),
                           metrics.records_out.labels(topic.name, topic.record), field, role)

        self.clean = {kind.input.name: target(kind.clean) for kind in catalog.processed
                      if kind.clean is not None}
        self.shared = [target(o.topic, o.field, o.role) for o in catalog.outputs]
        counters = _counters(metrics)
        self._count: dict[str, Callable[[str, Record], None] | None] = {
            t.field: counters.get(t.role) for t in self.shared}

    def register_schemas(self) -> None:
        """Look up (register) every output schema once, before the first message."""
        for t in [*self.clean.values(), *self.shared]:
            self.serializer.header(t.ctx.topic, t.ctx.record)

    def _encode(self, t: _Target, record: Record) -> Encoded:
        key = record.get(t.topic.key) if t.topic.key else None
        try:
            value = self.serializer(record, t.ctx)
        except Exception as exc:  # fastavro raises assorted errors on values it cannot write
            raise OutputError(f"the {t.topic.name} record does not encode as {t.topic.record}: "
                              f"{type(exc).__name__}: {str(exc)[:300]}") from exc
        if len(value) > self.max_bytes:
            raise OutputError(f"the {t.topic.name} record is {len(value)} bytes, over the "
                              f"limit of {self.max_bytes}")
        return Encoded(t, None if key is None else str(key).encode(), value, record)

    def encode(self, logical_input: str, out: Outputs) -> list[Encoded]:
        """The outputs of one input message as bytes; OutputError if any cannot be written."""
        found = []
        if out.clean is not None:
            found.append(self._encode(self.clean[logical_input], out.clean))
        for t in self.shared:
            for record in getattr(out, t.field):
                found.append(self._encode(t, record))
        return found

    @staticmethod
    def batch() -> Deliveries:
        """The deliveries of one batch of outputs."""
        return Deliveries()

    def produce(self, logical_input: str, messages: list[Encoded],
                pending: Deliveries) -> None:
        """Hand encoded outputs to the producer, counted in ``pending``."""
        for m in messages:
            t = m.target
            self.producer.produce(t.ctx.topic, m.key, m.value, pending)
            t.counter.inc()
            count = self._count.get(t.field)
            if count is not None:
                count(logical_input, m.record)

    def send(self, logical_input: str, out: Outputs, pending: Deliveries) -> None:
        """Encode and hand the outputs to the producer (raises OutputError)."""
        self.produce(logical_input, self.encode(logical_input, out), pending)

    @staticmethod
    async def flush(pending: Deliveries) -> int:
        """Wait for every delivery in ``pending``; raises if any failed."""
        return await pending.wait()
