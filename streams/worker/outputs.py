"""Encode and send the processors' outputs, then wait until Kafka acknowledged all of them.

One clean record per input message (or one dead letter) on the record type's clean topic,
plus the catalog's shared outputs (alerts, gateway statuses, per-reading dead letters), each
read from its ``Outputs`` field. Records are Avro in Confluent framing (int-millis
timestamps, schema ids registered once per subject at start-up). ``flush()`` awaits every
delivery of the batch; a failed delivery raises, and the worker then exits hard so that
nothing of the batch is committed (at-least-once).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from schemas.catalog.model import Catalog, Topic
from schemas.codec import AvroSerializer, SerializationContext
from schemas.records import Record
from streams.metrics import Metrics
from streams.processors.common import Outputs
from streams.settings import Settings


@dataclass(frozen=True)
class _Target:
    topic: Topic
    ctx: SerializationContext
    counter: Any       # records_out child
    field: str = ""    # Outputs attribute (shared outputs)
    role: str = ""


def _counters(metrics: Metrics) -> dict[str, Callable[[str, Record], None]]:
    """Per-role counts beyond records_out: alerts by type, dead letters by reason and stage."""
    def alert(_input: str, record: Record) -> None:
        metrics.alerts.labels(record["alert_type"]).inc()

    def dead(input_topic: str, record: Record) -> None:
        metrics.rejects.labels(input_topic, record["error_code"]).inc()
        metrics.deadletter_writes.labels(record["stage"]).inc()

    return {"alert": alert, "deadletter": dead}


class OutputSender:
    def __init__(self, producer: Any, settings: Settings, catalog: Catalog,
                 serializer: AvroSerializer, metrics: Metrics) -> None:
        self.producer = producer
        self.serializer = serializer
        self.metrics = metrics

        def target(topic: Topic, field: str = "", role: str = "") -> _Target:
            return _Target(topic, SerializationContext(settings.topic(topic.name), topic.record),
                           metrics.records_out.labels(topic.name, topic.record), field, role)

        self.clean = {kind.input.name: target(kind.clean) for kind in catalog.processed
                      if kind.clean is not None}
        self.shared = [target(o.topic, o.field, o.role) for o in catalog.outputs]
        counters = _counters(metrics)
        self._count = {t.field: counters.get(t.role) for t in self.shared}

    def register_schemas(self) -> None:
        """Look up (register) every output schema once, before the first message."""
        for t in [*self.clean.values(), *self.shared]:
            self.serializer.header(t.ctx.topic, t.ctx.record)

    async def _send(self, t: _Target, record: Record, pending: list[Awaitable[Any]]) -> None:
        key = record.get(t.topic.key) if t.topic.key else None
        value = self.serializer(record, t.ctx)
        fut = await self.producer.send(t.ctx.topic, None if key is None else str(key).encode(),
                                       value, None, None, None)
        pending.append(fut)
        t.counter.inc()

    async def send(self, logical_input: str, out: Outputs,
                   pending: list[Awaitable[Any]]) -> None:
        """Hand the outputs to the producer; their delivery futures go to ``pending``."""
        if out.clean is not None:
            await self._send(self.clean[logical_input], out.clean, pending)
        for t in self.shared:
            records = getattr(out, t.field)
            if not records:
                continue
            count = self._count[t.field]
            for record in records:
                await self._send(t, record, pending)
                if count is not None:
                    count(logical_input, record)

    @staticmethod
    async def flush(pending: list[Awaitable[Any]]) -> int:
        """Wait for every delivery in ``pending``; raises if any failed."""
        if pending:
            await asyncio.gather(*pending)
        return len(pending)
