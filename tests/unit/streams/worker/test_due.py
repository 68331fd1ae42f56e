"""The due index: a clock's tick looks at the keys that are due, however many keys there are
(counted in keys visited, never in time), and a key its clock drops leaves the state."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from schemas.catalog import default_catalog
from schemas.codec import AvroDeserializer, AvroSerializer, SerializationContext
from schemas.records import Source
from schemas.registry import InMemoryRegistry
from streams.metrics import Metrics
from streams.policy import Policy, load_policy
from streams.processors.base import DictStore
from streams.processors.context import ProcessorContext
from streams.processors.reference import ReferenceData
from streams.worker.due import DueIndex, DueView
from streams.worker.pipeline import Pipeline

CATALOG = default_catalog()
T0 = 1_790_000_000_000
D = 86_400_000


# -- the index itself -------------------------------------------------------------------------
def test_take_returns_each_due_key_once_at_its_latest_due_time() -> None:
    index = DueIndex(lambda key, state: state)
    for n in range(10):
        index.note(f"k{n}".encode(), 100 + n)
    index.note(b"k0", 500)              # moved later: the old entry is skipped
    index.note(b"k9", None)             # nothing due any more
    index.note(b"k5", 50)               # moved earlier
    assert index.take(104) == [b"k5", b"k1", b"k2", b"k3", b"k4"]
    assert index.take(104) == []
    index.soon(b"k8")
    assert index.take(0) == [b"k8"]
    assert index.take(1000) == [b"k6", b"k7", b"k0"]
    assert len(index) == 0


def test_the_heap_stays_small_when_keys_move_often() -> None:
    index = DueIndex(lambda key, state: state)
    for step in range(10_000):
        index.note(b"busy", 1000 + step)        # every message moves the due time
    assert len(index._heap) <= 2 * len(index) + 65
    assert index.take(10_999) == [b"busy"]


def test_rebuild_and_categories() -> None:
    store = DictStore()
    for n in range(6):
        store.put(f"k{n}".encode(), {"due": 10 * n, "kind": "even" if n % 2 == 0 else "odd"})
    index = DueIndex(lambda key, s: s["due"], lambda s: s["kind"])
    assert index.stale
    index.rebuild(store)
    assert not index.stale and len(index) == 6 and index.counts == {"even": 3, "odd": 3}
    index.note(b"k1", None)
    assert index.counts == {"even": 3, "odd": 2}
    view = DueView(store, index.take(25), index)
    assert list(view.owned_keys()) == [b"k0", b"k2"]


# -- through the pipeline -------------------------------------------------------------------
class Harness:
    def __init__(self, policy: Policy) -> None:
        self.registry = InMemoryRegistry()
        self.serializer = AvroSerializer(self.registry)
        self.reference = ReferenceData(policy)
        self.reference.put_enterprise({"enterprise_id": "ent-1", "name": "Plant",
                                       "region_code": "110101", "industry": "chemicals",
                                       "updated_at": T0 - D}, T0)
        self.stores = {name: DictStore() for name in CATALOG.state_groups()}
        self.pipeline = Pipeline(CATALOG, ProcessorContext(
            policy, self.reference, Metrics.create(CollectorRegistry())),
            AvroDeserializer(self.registry, millis=True), self.stores)
        self.offset = 0

    def feed(self, topic: str, key: str, record: dict[str, Any], now: int) -> None:
        data = self.serializer(record, SerializationContext(f"t.{topic}",
                                                            CATALOG.topic(topic).record))
        self.offset += 1
        source = Source(f"t.{topic}", 0, self.offset, None, now)
        rec, source, _ = self.pipeline.decode(topic, source, key.encode(), data, now)
        assert rec is not None
        self.pipeline.apply(topic, rec, source, key.encode(), data, now)

    def hazard(self, hazard_id: str, deadline: int, status: str = "FOUND",
               version: int = 1, now: int = T0) -> None:
        self.feed("hazards", hazard_id, {
            "hazard_id": hazard_id, "version": version, "enterprise_id": "ent-1",
            "region_code": "110101", "category": "fire", "level": "ORDINARY",
            "status": status, "found_at": T0 - D, "rectification_deadline": deadline,
            "updated_at": now, "description": ""}, now)

    def beat(self, gateway: str, now: int) -> None:
        self.feed("heartbeats", gateway, {"gateway_id": gateway, "enterprise_id": "ent-1",
                                          "sent_at": now, "sequence": self.offset,
                                          "interval_s": 60, "firmware": None}, now)


@pytest.fixture
def policy() -> Policy:
    return load_policy()


@pytest.mark.parametrize("keys", [100, 2000])
def test_the_hazard_clock_visits_the_due_hazards_only(policy: Policy, keys: int) -> None:
    h = Harness(policy)
    for n in range(keys):
        h.hazard(f"hz-{n}", T0 + 30 * D)          # due in a month
    for n in range(3):
        h.hazard(f"hz-soon-{n}", T0 + 60_000)      # due in a minute
    out, _ = h.pipeline.tick(T0 + 1000)
    assert not out.alerts and h.pipeline.visited["hazards"] == 0
    out, _ = h.pipeline.tick(T0 + 61_000)
    assert [a["alert_type"] for a in out.alerts] == ["HAZARD_OVERDUE"] * 3
    assert h.pipeline.visited["hazards"] == 3      # 3 due of keys + 3, whatever keys is
    out, _ = h.pipeline.tick(T0 + 120_000)
    assert not out.alerts and h.pipeline.visited["hazards"] == 0


@pytest.mark.parametrize("keys", [50, 500])
def test_the_gateway_clock_visits_the_due_gateways_only(policy: Policy, keys: int) -> None:
    h = Harness(policy)
    for n in range(keys):
        h.beat(f"gw-{n}", T0)
    h.pipeline.tick(T0 + 1000)                    # every new gateway: its first ONLINE status
    assert h.pipeline.visited["gateways"] == keys
    for n in range(keys - 2):                      # all but two keep talking
        h.beat(f"gw-{n}", T0 + 100_000)
    out, _ = h.pipeline.tick(T0 + 150_000)
    assert h.pipeline.visited["gateways"] == 0
    out, _ = h.pipeline.tick(T0 + 181_000)        # 3 intervals of 60 s after T0
    assert sorted(s["gateway_id"] for s in out.statuses) == [f"gw-{keys - 2}",
                                                              f"gw-{keys - 1}"]
    assert h.pipeline.visited["gateways"] == 2


def test_a_key_its_clock_drops_leaves_the_state(policy: Policy) -> None:
    h = Harness(policy)
    h.hazard("hz-1", T0 + D)
    h.hazard("hz-1", T0 + D, status="CLOSED", version=2, now=T0 + 1000)
    forget = int(policy.hazards.forget_closed_after.total_seconds() * 1000)
    _, changed = h.pipeline.tick(T0 + forget)
    assert changed == [] and h.stores["hazards"].get(b"hz-1") is not None
    _, changed = h.pipeline.tick(T0 + 1000 + forget)
    assert [(c.store, c.key) for c in changed] == [("hazards", b"hz-1")]
    assert h.stores["hazards"].get(b"hz-1") is None
    assert h.pipeline.visited["hazards"] == 1


def test_moved_partitions_rebuild_the_index_from_the_table(policy: Policy) -> None:
    h = Harness(policy)
    h.hazard("hz-1", T0 + 60_000)
    h.pipeline.tick(T0)
    # another worker's state arrives with a rebalance (written to the table, not put)
    other = Harness(policy)
    other.hazard("hz-2", T0 + 60_000)
    h.stores["hazards"].data[b"hz-2"] = other.stores["hazards"].get(b"hz-2")
    h.pipeline.reset_partitions()
    out, _ = h.pipeline.tick(T0 + 61_000)
    assert sorted(a["subject_id"] for a in out.alerts) == ["hz-1", "hz-2"]


def test_a_clock_forgetting_a_key_drops_its_state() -> None:
    store = DictStore()
    store.put(b"k", {"due": 1})
    index = DueIndex(lambda key, s: s["due"])
    index.rebuild(store)
    view = DueView(store, index.take(5), index)
    view.forget(b"k")
    assert store.get(b"k") is None
