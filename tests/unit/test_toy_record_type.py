"""The catalog contract: a record type is its .avsc files, one catalog entry and its
processor. A toy type (tests/toy) goes through the worker pipeline, the output sender, the
sink's decoder, encoder and ledger, and the generated DDL, with fakes for Kafka and
ClickHouse."""

from __future__ import annotations

import asyncio
from typing import Any

from prometheus_client import CollectorRegistry

from schemas.codec import AvroDeserializer, AvroSerializer, SerializationContext
from schemas.records import Source
from schemas.registry import InMemoryRegistry
from sinks.clickhouse.encoding import EnvelopeDecoder
from sinks.clickhouse.migrations import versioned_steps, view_steps
from sinks.clickhouse.sink import ClickHouseSink
from streams.metrics import Metrics
from streams.policy import load_policy
from streams.processors.base import DictStore
from streams.processors.context import ProcessorContext
from streams.processors.reference import ReferenceData
from streams.settings import Settings
from streams.worker.delivery import Deliveries
from streams.worker.outputs import OutputSender
from streams.worker.pipeline import Pipeline
from tests.toy.processor import WELL_LEVEL, toy_catalog
from tests.unit.sinks.fakes import MODERN, FakeBackend

T0 = 1_790_000_000_000
CATALOG = toy_catalog()
SETTINGS = Settings(topic_prefix="toy.")


class Producer:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes | None, bytes]] = []

    def produce(self, topic: str, key: bytes | None, value: bytes,
                deliveries: Deliveries) -> None:
        self.sent.append((topic, key, value))
        deliveries.add()
        deliveries.delivered()


def level(n: int, value: float, site: str = "site-1") -> dict[str, Any]:
    return {"reading_id": f"w-{n}", "site_id": site, "level_m": value,
            "measured_at": T0 + n * 1000}


def run_worker(registry: InMemoryRegistry, records: list[dict[str, Any]]) -> Producer:
    """The toy records through decode -> process -> serialise, as the worker does."""
    policy = load_policy()
    metrics = Metrics.create(CollectorRegistry())
    ctx = ProcessorContext(policy, ReferenceData(policy), metrics)
    pipeline = Pipeline(CATALOG, ctx, AvroDeserializer(registry, CATALOG.schemas, millis=True),
                        {name: DictStore() for name in CATALOG.state_groups()})
    serializer = AvroSerializer(registry, CATALOG.schemas, millis=True)
    producer = Producer()
    sender = OutputSender(producer, SETTINGS, CATALOG, serializer, metrics)
    topic = SETTINGS.topic(WELL_LEVEL.input.name)

    async def go() -> None:
        pending = sender.batch()
        for offset, rec in enumerate(records):
            value = serializer(rec, SerializationContext(topic, WELL_LEVEL.input.record))
            source = Source(topic, 0, offset, None, T0 + offset)
            record, source, out = pipeline.decode(WELL_LEVEL.input.name, source, b"site-1",
                                                  value, T0 + 10_000)
            if record is not None:
                out, _ = pipeline.apply(WELL_LEVEL.input.name, record, source, b"site-1",
                                        value, T0 + 10_000)
            assert out is not None
            sender.send(WELL_LEVEL.input.name, out, pending)
        await sender.flush(pending)

    asyncio.run(go())
    return producer


def test_toy_records_go_through_the_pipeline_and_into_its_table() -> None:
    registry = InMemoryRegistry()
    records = [level(0, 3.0), level(1, 3.2), level(2, 4.9), level(1, 3.2), level(3, 900.0)]
    producer = run_worker(registry, records)
    topics = [t for t, _, _ in producer.sent]
    assert topics.count("toy.wells.clean") == 4      # one per input message but the reject
    assert topics.count("toy.alerts") == 1           # a 1.7 m rise
    assert topics.count("toy.deadletter") == 1       # 900 m is not a well level

    backend = FakeBackend()
    sink = ClickHouseSink(backend, Metrics.create(CollectorRegistry()), 1000, 60.0,
                          catalog=CATALOG)
    decoder = EnvelopeDecoder(CATALOG, registry, SETTINGS.topic)
    for offset, (topic, key, value) in enumerate(producer.sent):
        envelope, rows = decoder(value, key, topic, 0, offset)
        sink.add(envelope, topic, 0, offset, rows)
    sink.flush()
    stored = backend.rows("well_levels_raw")
    assert [r["reading_id"] for r in stored] == ["w-0", "w-1", "w-2"]   # the repeat is not
    assert round(stored[2]["rise_m"], 2) == 1.7
    assert [r["alert_type"] for r in backend.rows("alerts_raw")] == ["WELL_RISE"]
    ledger = backend.rows("ledger")
    assert sorted(r["source_offset"] for r in ledger) == [0, 1, 2, 3, 4]
    assert {r["record_type"] for r in ledger if r["outcome"] == "enriched"} == {"well-level"}
    assert [r["duplicate"] for r in ledger if r["outcome"] == "enriched"] == [0, 0, 0, 1]


def test_toy_table_and_view_are_generated() -> None:
    ddl = "\n".join(s for step in versioned_steps("db", MODERN, CATALOG) for s in step.statements)
    assert "CREATE TABLE IF NOT EXISTS db.well_levels_raw" in ddl
    assert "rise_m Float64" in ddl and "measured_at DateTime64(3, 'UTC')" in ddl
    assert "readings_raw" not in ddl and "readings_1m" not in ddl   # not in this catalog
    views = {s.version for s in view_steps("db", MODERN, CATALOG)}
    assert "view:ledger_v" in views and "view:readings" not in views
