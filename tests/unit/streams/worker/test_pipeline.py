"""The whole pipeline without Kafka: simulator traffic and the canary scenario through
:class:`Pipeline` with in-memory state."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from schemas.catalog import default_catalog
from schemas.codec import AvroDeserializer, AvroSerializer, SerializationContext
from schemas.columns import rows
from schemas.records import Source
from schemas.registry import InMemoryRegistry
from streams.canary.run import evaluate
from streams.canary.scenario import Scenario
from streams.kafkaio import Output
from streams.metrics import Metrics
from streams.policy import Policy, load_policy
from streams.processors.base import DictStore
from streams.processors.common import Outputs
from streams.processors.context import ProcessorContext
from streams.processors.reference import ReferenceData
from streams.simulate import SimConfig, Simulator
from streams.worker.pipeline import Pipeline

CATALOG = default_catalog()
SCHEMAS = CATALOG.schemas


class Harness:
    def __init__(self, policy: Policy) -> None:
        self.registry = InMemoryRegistry()
        self.serializer = AvroSerializer(self.registry)
        self.reference = ReferenceData(policy)
        self.metrics = Metrics.create(CollectorRegistry())
        self.stores = {name: DictStore() for name in CATALOG.state_groups()}
        self.pipeline = Pipeline(CATALOG, ProcessorContext(policy, self.reference, self.metrics),
                                 AvroDeserializer(self.registry, millis=True), self.stores)
        self.offsets: Counter[tuple[str, int]] = Counter()
        self.results: list[tuple[str, Source, Outputs]] = []

    def header(self, topic: str) -> bytes:
        return self.serializer.header(f"t.{topic}", CATALOG.topic(topic).record)

    def feed(self, topic: str, key: str, value: dict[str, Any] | bytes | None,
             now_ms: int) -> Outputs:
        kind = next(k for k in CATALOG.types if k.input.name == topic)
        if kind.reference is not None:
            self.reference.apply(kind, key, value if isinstance(value, dict) else None, now_ms)
            return Outputs()
        data = value if isinstance(value, bytes) else self.serializer(
            value or {}, SerializationContext(f"t.{topic}", CATALOG.topic(topic).record))
        partition = sum(key.encode()) % 4
        offset = self.offsets[(topic, partition)]
        self.offsets[(topic, partition)] += 1
        source = Source(f"t.{topic}", partition, offset, None, now_ms)
        record, source, out = self.pipeline.decode(topic, source, key.encode(), data, now_ms)
        if record is not None:
            out, _ = self.pipeline.apply(topic, record, source, key.encode(), data, now_ms)
        assert out is not None
        self.results.append((topic, source, out))
        return out

    def outputs(self) -> list[Output]:
        found = []
        for topic, source, out in self.results:
            clean = CATALOG.of_input(topic).clean
            if out.clean is not None and clean is not None:
                found.append(Output(clean.name, source.partition, source.offset, None,
                                    out.clean))
            for o in CATALOG.outputs:
                found += [Output(o.topic.name, 0, 0, None, r) for r in getattr(out, o.field)]
        return found


@pytest.fixture
def policy() -> Policy:
    return load_policy()


def test_simulated_traffic_ledger_and_faults(policy: Policy) -> None:
    h = Harness(policy)
    cfg = SimConfig(seed=5, duration_s=30, rate=400, start_ms=int(time.time() * 1000) - 40_000,
                    duplicate_rate=0.01, incidents_per_min=20, invalid_rate=0.05)
    sim = Simulator(cfg, policy, header=h.header)
    now = int(time.time() * 1000)
    for topic, key, value, _ in sim:
        h.feed(topic, key, value, now)
    ledger = [out for topic, _, out in h.results if topic != "heartbeats"]
    # exactly one ledger output per message: an enriched record or a whole-message dead letter
    for out in ledger:
        whole = [d for d in out.dead_letters if d["record_index"] is None]
        assert (out.clean is not None) + len(whole) == 1
    accepted = Counter(r["reading_id"] for o in h.outputs() if o.topic == "telemetry.clean"
                       for r in rows(o.record))
    assert max(accepted.values()) == 1
    dups = [x["record_id"] for x in sim.truth if x.get("fault") == "duplicate"
            and x["type"] == "telemetry"]
    assert dups and all(accepted[rid] == 1 for rid in dups)
    invalid = {(x["error_code"], x["record_id"]) for x in sim.truth if x.get("fault") == "invalid"}
    got = {(d["error_code"], d["record_id"]) for o in h.outputs() if o.topic == "deadletter"
           for d in [o.record]}
    assert invalid <= got | {(code, None) for code, _ in got}


def test_canary_scenario_is_caught_offline(policy: Policy) -> None:
    h = Harness(policy)
    now = int(time.time() * 1000)
    sc = Scenario("unit1", now, policy)
    for topic, key, value in sc.reference() + sc.traffic():
        h.feed(topic, key, value, now)
    # the worker's timer finds the silent gateway; then it comes back
    out, _ = h.pipeline.tick(now + 10_000)
    h.results.append(("heartbeats", Source("t", 0, 0), out))
    h.feed(*sc.heartbeat(5, now + 12_000)[:2], sc.heartbeat(5, now + 12_000)[2], now + 12_000)
    verdicts = evaluate(sc, h.outputs())
    assert all(v.ok for v in verdicts.values()), [v.line() for v in verdicts.values()]


def test_deregistered_gateways_are_not_watched(policy: Policy) -> None:
    h = Harness(policy)
    now = int(time.time() * 1000)
    sc = Scenario("unit2", now, policy)
    for topic, key, value in sc.reference() + sc.traffic() + sc.cleanup(now):
        h.feed(topic, key, value, now)
    out, _ = h.pipeline.tick(now + 3_600_000)
    assert not out.statuses and not out.alerts


def test_offline_gateways_are_counted_per_province(policy: Policy) -> None:
    h = Harness(policy)
    now = int(time.time() * 1000)
    for enterprise in ("ent-9", "canary-unit3-ent"):
        h.feed("enterprises", enterprise, {"enterprise_id": enterprise, "name": "Plant 9",
                                           "region_code": "420102", "industry": "chemicals",
                                           "updated_at": now}, now)
    for n, (gateway, enterprise) in enumerate((("gw-9", "ent-9"),
                                               ("canary-unit3-gw", "canary-unit3-ent"))):
        h.feed("heartbeats", gateway, {"gateway_id": gateway, "enterprise_id": enterprise,
                                       "sent_at": now, "sequence": n, "interval_s": 10,
                                       "firmware": None}, now)
    h.pipeline.tick(now + 3_600_000)
    offline = {s.labels["province"]: s.value
               for metric in h.metrics.registry.collect() if metric.name == "ebi_gateways_offline"
               for s in metric.samples}
    assert offline == {"42": 1.0}      # the canary's gateway is no business figure
    assert all(len(province) == 2 and province.isdigit() for province in offline)
