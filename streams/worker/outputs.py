"""Encode and send the processors' outputs, then wait until Kafka acknowledged all of them.

One enriched record per input message (or one dead letter), plus alerts, gateway statuses and
per-reading dead letters. Records are Avro in Confluent framing (int-millis timestamps,
schema ids registered once per subject at start-up). ``flush()`` awaits every delivery of the
batch; a failed delivery raises, and the worker then exits hard so that nothing of the batch
is committed (at-least-once).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

from schemas.catalog import TOPICS
from schemas.codec import SerializationContext
from streams.metrics import Metrics
from streams.processors.common import Outputs, Record
from streams.processors.decode import MillisSerializer
from streams.settings import Settings

CLEAN = {"telemetry": "telemetry.clean", "incidents": "incidents.clean",
         "hazards": "hazards.clean"}
OUTPUTS = ("telemetry.clean", "incidents.clean", "hazards.clean", "gateway.status", "alerts",
           "deadletter")


class OutputSender:
    def __init__(self, producer: Any, settings: Settings, serializer: MillisSerializer,
                 metrics: Metrics) -> None:
        self.producer = producer
        self.serializer = serializer
        self.metrics = metrics
        self.contexts = {name: SerializationContext(settings.topic(name), TOPICS[name].record)
                         for name in OUTPUTS}
        self._out = {name: metrics.records_out.labels(name, TOPICS[name].record)
                     for name in OUTPUTS}

    def register_schemas(self) -> None:
        """Look up (register) every output schema once, before the first message."""
        for ctx in self.contexts.values():
            self.serializer.header(ctx.topic, ctx.record)

    async def _send(self, name: str, key: str | None, record: Record,
                    pending: list[Awaitable[Any]]) -> None:
        ctx = self.contexts[name]
        value = self.serializer(record, ctx)
        fut = await self.producer.send(ctx.topic, key.encode() if key is not None else None,
                                       value, None, None, None)
        pending.append(fut)
        self._out[name].inc()

    async def send(self, logical_input: str, out: Outputs,
                   pending: list[Awaitable[Any]]) -> None:
        """Hand the outputs to the producer; their delivery futures go to ``pending``."""
        if out.clean is not None:
            name = CLEAN[logical_input]
            await self._send(name, out.clean[TOPICS[name].key_field], out.clean, pending)
        for status in out.statuses:
            await self._send("gateway.status", status["gateway_id"], status, pending)
        for alert in out.alerts:
            await self._send("alerts", alert["subject_id"], alert, pending)
            self.metrics.alerts.labels(alert["alert_type"]).inc()
        for dl in out.dead_letters:
            await self._send("deadletter", None, dl, pending)
            self.metrics.rejects.labels(logical_input, dl["error_code"]).inc()
            self.metrics.deadletter_writes.labels(dl["stage"]).inc()

    @staticmethod
    async def flush(pending: list[Awaitable[Any]]) -> int:
        """Wait for every delivery in ``pending``; raises if any failed."""
        if pending:
            await asyncio.gather(*pending)
        return len(pending)
