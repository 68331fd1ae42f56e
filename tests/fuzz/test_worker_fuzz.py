"""The worker's path on anything a sender can put on an input topic: decode -> reference
check -> process -> serialise, with the real size limits. Nothing escapes; every output
fits the producer's limit (or the message is quarantined, and that fits); a message's dead
letters carry its bytes at most once and stay near its own size."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from schemas.catalog import default_catalog
from schemas.codec import AvroDeserializer, AvroSerializer, SerializationContext
from schemas.records import Source
from schemas.registry import InMemoryRegistry
from streams.metrics import Metrics
from streams.policy import load_policy
from streams.processors.base import DictStore
from streams.processors.context import ProcessorContext
from streams.processors.reference import ReferenceData
from streams.settings import Settings
from streams.worker.outputs import OutputError, OutputSender
from streams.worker.pipeline import Pipeline
from tests.fuzz.strategies import for_type, mutations

CATALOG = default_catalog()
POLICY = load_policy()
NOW = 1_790_000_000_000
SENSORS = ("s-1", "s-2", "s-unknown")


class Producer:
    async def send(self, *args: Any) -> Any:
        raise AssertionError("not used")


def harness() -> tuple[Pipeline, OutputSender, InMemoryRegistry]:
    registry = InMemoryRegistry()
    metrics = Metrics.create(CollectorRegistry())
    ref = ReferenceData(POLICY)
    ref.put_enterprise({"enterprise_id": "e-1", "name": "n", "region_code": "110101",
                        "industry": "x", "updated_at": NOW - 10}, NOW)
    for sid, metric, unit in (("s-1", "METHANE", "PERCENT_VOL"),
                              ("s-2", "TEMPERATURE", "CELSIUS")):
        ref.put_sensor({"sensor_id": sid, "enterprise_id": "e-1", "gateway_id": "g-1",
                        "metric": metric, "unit": unit, "alarm_level1": None,
                        "alarm_level2": None, "updated_at": NOW - 10}, NOW)
    ctx = ProcessorContext(POLICY, ref, metrics)
    pipeline = Pipeline(CATALOG, ctx, AvroDeserializer(
        registry, millis=True, max_bytes=POLICY.limits.max_message_bytes),
        {name: DictStore() for name in CATALOG.state_groups()})
    sender = OutputSender(Producer(), Settings(topic_prefix="f."), CATALOG,
                          AvroSerializer(registry, millis=True), metrics,
                          max_bytes=POLICY.limits.max_output_bytes)
    return pipeline, sender, registry


def records_of(record: str) -> st.SearchStrategy[dict[str, Any]]:
    """Schema-shaped records, with ids drawn often from the registered ones."""
    base = for_type(CATALOG.schemas.json(record), {})

    def known(r: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
        r = dict(r)
        if "enterprise_id" in r:
            r["enterprise_id"] = "e-1"
        for reading in r.get("readings") or []:
            reading["sensor_id"] = SENSORS[hash(reading["reading_id"]) % 3]
        return st.just(r)

    return st.one_of(base, base.flatmap(known))


def run_one(pipeline: Pipeline, sender: OutputSender, logical: str, value: bytes | None,
            offset: int) -> None:
    source = Source(f"f.{logical}", 0, offset, None, NOW)
    record, source, out = pipeline.decode(logical, source, b"k", value, NOW)
    if record is not None:
        pipeline.missing_reference(logical, record)
        out, _ = pipeline.apply(logical, record, source, b"k", value or b"", NOW)
    assert out is not None
    try:
        encoded = sender.encode(logical, out)
    except OutputError as exc:
        encoded = sender.encode(logical, pipeline.quarantine(logical, source, b"k",
                                                             value or b"", exc, NOW))
    limit = POLICY.limits.max_output_bytes
    assert all(len(m.value) <= limit for m in encoded)
    dead = [m.record for m in encoded if m.target.role == "deadletter"]
    carrying = [d for d in dead if value and d["value"] == value]
    assert len(carrying) <= 1
    assert sum(len(d["value"]) for d in dead) <= 2 * len(value or b"") + 10 * 4096


INPUTS = [(kind.input.name, kind.input.record) for kind in CATALOG.processed]


@pytest.mark.parametrize(("logical", "record"), INPUTS)
@given(data=st.data())
def test_any_input_message(logical: str, record: str, data: st.DataObject) -> None:
    pipeline, sender, registry = harness()
    obj = data.draw(records_of(record))
    value = AvroSerializer(registry, millis=True)(obj, SerializationContext(f"f.{logical}",
                                                                            record))
    run_one(pipeline, sender, logical, value, 1)
    run_one(pipeline, sender, logical, value, 2)          # a repeat (duplicate) of it
    run_one(pipeline, sender, logical, value, 1)          # a replay of itself
    run_one(pipeline, sender, logical, data.draw(mutations(value)), 3)


@given(st.binary(max_size=200))
def test_any_bytes_on_every_input(value: bytes) -> None:
    pipeline, sender, _ = harness()
    for logical, _ in INPUTS:
        run_one(pipeline, sender, logical, value, 1)
    pipeline.tick(NOW + 3_600_000)
