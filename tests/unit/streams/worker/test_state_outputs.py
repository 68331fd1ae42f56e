from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from schemas.catalog import default_catalog
from schemas.catalog.model import resolve
from schemas.codec import AvroDeserializer, AvroSerializer
from schemas.registry import InMemoryRegistry
from streams.metrics import Metrics
from streams.processors.common import Outputs
from streams.settings import Settings
from streams.worker.delivery import Deliveries, DeliveryFailed
from streams.worker.outputs import OutputSender
from streams.worker.state import StateCache


class FakeTable(dict[bytes, bytes]):
    """A faust table stand-in that records the partition of the current event on writes."""

    def __init__(self) -> None:
        super().__init__()
        self.partitions: dict[bytes, int] = {}

    def __setitem__(self, key: bytes, value: bytes) -> None:
        from faust.streams import current_event

        event = current_event()
        assert event is not None, "table written outside an event context"
        self.partitions[key] = event.message.partition
        super().__setitem__(key, value)


class Msg:
    def __init__(self, partition: int) -> None:
        self.partition = partition


class Event:
    def __init__(self, partition: int) -> None:
        self.message = Msg(partition)


def test_state_cache_reads_through_and_persists_with_the_event_partition() -> None:
    table = FakeTable()
    dict.__setitem__(table, b"gw-1", json.dumps({"n": 1}).encode())
    cache = StateCache(table, "gateways")
    state = cache.get(b"gw-1")
    assert state == {"n": 1} and cache.get(b"gw-1") is state      # decoded once
    state["n"] = 2
    cache.put(b"gw-1", state)
    cache.persist(b"gw-1", Event(3))
    assert json.loads(table[b"gw-1"]) == {"n": 2} and table.partitions[b"gw-1"] == 3
    assert cache.partition_of(b"gw-1") == 3
    cache.put(b"gw-2", {"n": 9})
    snapshot = cache.snapshot(b"gw-2")
    cache.put(b"gw-2", {"n": 10})                                   # later changes ...
    cache.write(b"gw-2", snapshot, Event(3))                        # ... are not written
    assert json.loads(table[b"gw-2"]) == {"n": 9} and table.partitions[b"gw-2"] == 3
    cache.forget(b"gw-3")
    cache.write(b"gw-3", cache.snapshot(b"gw-3"), Event(3))        # nothing cached: no-op
    assert b"gw-3" not in table
    cache.forget(b"gw-1")
    assert cache.get(b"gw-1") == {"n": 2}                           # back from the table
    cache.put(b"gw-1", None)
    cache.persist(b"gw-1", Event(3))
    assert b"gw-1" not in table and cache.get(b"gw-1") is None
    cache.clear()
    assert len(cache) == 0 and sorted(cache.owned_keys()) == [b"gw-2"]


def test_state_cache_converts_an_old_layout_once_per_key_and_writes_the_new_one() -> None:
    table = FakeTable()
    old = {"v": {"1": 7}, "max": 1, "od": 0, "at_z": 7}      # the earlier hazard layout
    dict.__setitem__(table, b"hz-1", json.dumps(old).encode())
    convert = resolve(default_catalog().states()["hazards"].upgrade)
    seen: list[Any] = []

    def upgrade(state: Any) -> Any:
        seen.append(state)
        return convert(state)

    cache = StateCache(table, "hazards", upgrade)
    state = cache.get(b"hz-1")
    assert state == {"versions": {"1": 7}, "max_version": 1, "alerted_deadline": 0,
                     "applied": 7}
    assert cache.get(b"hz-1") is state and seen == [old]             # once per key
    cache.persist(b"hz-1", Event(0))
    assert json.loads(table[b"hz-1"]) == state                      # the new layout
    cache.forget(b"hz-1")
    assert cache.get(b"hz-1") == state and seen[-1] == state         # passes unchanged


class FakeProducer:
    def __init__(self, fail: bool = False) -> None:
        self.sent: list[tuple[str, bytes | None, bytes]] = []
        self.fail = fail

    def produce(self, topic: str, key: bytes | None, value: bytes,
                deliveries: Deliveries) -> None:
        self.sent.append((topic, key, value))
        deliveries.add()
        deliveries.delivered("broker said no" if self.fail else None)


def _outputs() -> Outputs:
    alert = {"alert_id": "a1", "alert_type": "SPIKE", "severity": "WARNING",
             "subject_type": "sensor", "subject_id": "s-1", "enterprise_id": "e",
             "region_code": "", "raised_at": 1, "event_time": 1, "value": 1.0,
             "threshold": 0.5, "message": "m", "tag": None}
    dl = {"source": {"topic": "t", "partition": 0, "offset": 1, "schema_id": None},
          "key": None, "value": b"x", "error_code": "OUT_OF_RANGE", "error_message": "m",
          "stage": "validate", "record_index": 2, "record_id": "r", "failed_at": 1, "tag": None}
    return Outputs(alerts=[alert], dead_letters=[dl])


def test_sender_encodes_sends_and_awaits_acks() -> None:
    registry = InMemoryRegistry()
    metrics = Metrics.create(CollectorRegistry())
    producer = FakeProducer()
    sender = OutputSender(producer, Settings(topic_prefix="p."), default_catalog(),
                          AvroSerializer(registry, millis=True), metrics)
    sender.register_schemas()

    async def go() -> int:
        pending = sender.batch()
        sender.send("telemetry", _outputs(), pending)
        return await sender.flush(pending)

    assert asyncio.run(go()) == 2
    assert [(t, k) for t, k, _ in producer.sent] == [("p.alerts", b"s-1"), ("p.deadletter", None)]
    from schemas.codec import SerializationContext
    record, _ = AvroDeserializer(registry, millis=True)(
        producer.sent[0][2], SerializationContext("p.alerts", "Alert"))
    assert record["alert_id"] == "a1"
    assert metrics.rejects.labels("telemetry", "OUT_OF_RANGE")._value.get() == 1


def test_sender_flush_raises_on_a_failed_delivery() -> None:
    sender = OutputSender(FakeProducer(fail=True), Settings(), default_catalog(), AvroSerializer(
        InMemoryRegistry(), millis=True), Metrics.create(CollectorRegistry()))

    async def go() -> None:
        pending = sender.batch()
        sender.send("telemetry", _outputs(), pending)
        await sender.flush(pending)

    with pytest.raises(DeliveryFailed, match="broker said no"):
        asyncio.run(go())


def test_state_snapshots_read_back_as_they_were() -> None:
    import json
    import math

    from streams.worker.state import encode_state

    plain = {"sensors": {"s-1": {"mean": 0.1, "recent_ids": [2**63 - 1, -5]}}, "on": True,
             "name": "泵站"}
    assert json.loads(encode_state(plain)) == plain
    odd = {"mean": math.inf, "low": -math.inf, "none": None, 7: "int key", "big": 2**70}
    back = json.loads(encode_state(odd))
    assert back["mean"] == math.inf and back["low"] == -math.inf and back["none"] is None
    assert back["7"] == "int key" and back["big"] == 2**70
    assert math.isnan(json.loads(encode_state({"x": math.nan}))["x"])
