"""Fixtures for processor tests: the bundled policy, fresh metrics, reference data."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from schemas.codec import AvroSerializer
from schemas.registry import InMemoryRegistry
from streams.metrics import Metrics
from streams.policy import Policy, load_policy
from streams.processors.context import ProcessorContext
from streams.processors.reference import ReferenceData

T0 = 1_790_000_000_000  # a fixed "now" (ms)


@pytest.fixture
def policy() -> Policy:
    return load_policy()


@pytest.fixture
def metrics() -> Metrics:
    return Metrics.create(CollectorRegistry())


def sensor(sensor_id: str, metric: str = "METHANE", unit: str = "PERCENT_VOL",
           gateway: str = "gw-1", enterprise: str = "ent-1",
           l1: float | None = None, l2: float | None = None) -> dict[str, Any]:
    return {"sensor_id": sensor_id, "enterprise_id": enterprise, "gateway_id": gateway,
            "metric": metric, "unit": unit, "alarm_level1": l1, "alarm_level2": l2,
            "updated_at": T0 - 86_400_000}


@pytest.fixture
def reference(policy: Policy) -> ReferenceData:
    ref = ReferenceData(policy)
    ref.put_enterprise({"enterprise_id": "ent-1", "name": "Plant 1", "region_code": "110101",
                        "industry": "hazardous chemicals", "updated_at": T0 - 86_400_000}, T0)
    ref.put_enterprise({"enterprise_id": "canary-r1-ent", "name": "Canary",
                        "region_code": "110101", "industry": "canary",
                        "updated_at": T0}, T0)
    ref.put_sensor(sensor("s-1"), T0)
    ref.put_sensor(sensor("s-2", "FLAMMABLE_GAS", "PERCENT_LEL"), T0)
    ref.put_sensor(sensor("s-3", "TEMPERATURE", "CELSIUS", l1=60.0, l2=90.0), T0)
    return ref


@pytest.fixture
def ctx(policy: Policy, reference: ReferenceData, metrics: Metrics) -> ProcessorContext:
    return ProcessorContext(policy, reference, metrics)


def encodes(record: str, obj: dict[str, Any]) -> bytes:
    """The record encodes with its Avro schema (int-millis timestamps)."""
    return AvroSerializer(InMemoryRegistry(), millis=True).body(obj, record)


def value_of(metric: Any, **labels: str) -> float:
    sample = metric.labels(**labels) if labels else metric
    return float(sample._value.get())
