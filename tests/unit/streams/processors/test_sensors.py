"""Blind spots of registered gateways and sensors: never connected, silent sensors, the first
ONLINE status, forgetting, the registry echo, and which worker checks which gateway."""

from __future__ import annotations

from typing import Any

import pytest

from schemas.catalog.declarations import ENTERPRISE, SENSOR
from schemas.records import Source
from streams.processors.base import DictStore
from streams.processors.context import ProcessorContext
from streams.processors.gateways import GatewayClock, HeartbeatProcessor
from streams.processors.reference import ReferenceData
from streams.processors.sensors import candidate_partitions, murmur2, responsible
from streams.processors.telemetry import TelemetryProcessor
from tests.unit.streams.processors.conftest import T0, encodes, sensor, value_of

M = 60_000
H = 3_600_000
REGISTERED = T0 - 86_400_000          # the fixture sensors' updated_at


class Rig:
    """The gateways' clock over a plain store, fed by the real processors."""

    def __init__(self, ctx: ProcessorContext) -> None:
        self.ctx = ctx
        self.clock = GatewayClock(ctx)
        self.beats = HeartbeatProcessor(ctx)
        self.tele = TelemetryProcessor(ctx)
        self.store = DictStore()
        self.offset = 0

    def _src(self, topic: str, ts: int) -> Source:
        self.offset += 1
        return Source(f"ebi.{topic}", 0, self.offset, 1, ts)

    def beat(self, at: int, gateway: str = "gw-1", interval_s: int = 60) -> None:
        rec = {"gateway_id": gateway, "enterprise_id": "ent-1", "sent_at": at,
               "sequence": self.offset, "interval_s": interval_s, "firmware": None}
        key = gateway.encode()
        _, state = self.beats.process(rec, self._src("heartbeats", at), key, b"x",
                                      self.store.get(key), at)
        self.store.put(key, state)

    def reading(self, at: int, sensor_id: str = "s-1") -> None:
        ref = self.ctx.reference.sensors[sensor_id]
        env = {"gateway_id": "gw-1", "enterprise_id": "ent-1", "sent_at": at,
               "sequence": self.offset, "readings": [{
                   "reading_id": f"r-{self.offset}", "sensor_id": sensor_id,
                   "metric": ref.metric, "value": 0.2, "unit": ref.unit,
                   "quality": "GOOD", "event_time": at}]}
        _, state = self.tele.process(env, self._src("telemetry", at), b"gw-1", b"x",
                                     self.store.get(b"gw-1"), at)
        self.store.put(b"gw-1", state)

    def tick(self, now: int, trusted: bool = True) -> Any:
        out, changed = self.clock.tick(self.store, now, lambda p: trusted)
        self.changed = changed
        return out


@pytest.fixture
def rig(ctx: ProcessorContext) -> Rig:
    return Rig(ctx)


def types(out: Any) -> list[str]:
    return sorted(a["alert_type"] for a in out.alerts)


def test_a_registered_gateway_that_never_connects(rig: Rig) -> None:
    out = rig.tick(T0)
    assert types(out) == ["GATEWAY_NEVER_CONNECTED"]
    [status] = out.statuses
    grace = int(rig.ctx.policy.blind_spots.never_connected_after.total_seconds() * 1000)
    assert status["gateway_id"] == "gw-1" and status["status"] == "OFFLINE"
    assert status["changed_at"] == REGISTERED + grace
    assert "3 registered sensor(s)" in out.alerts[0]["message"]
    assert "CST (UTC+8)" in out.alerts[0]["message"]
    encodes("GatewayStatus", status)
    encodes("Alert", out.alerts[0])
    assert not rig.tick(T0 + H).alerts                       # once
    # it connects at last: the first ONLINE status carries the silence since the grace
    rig.beat(T0 + 2 * H)
    out = rig.tick(T0 + 2 * H + 1000)
    [status] = out.statuses
    assert status["status"] == "ONLINE" and status["changed_at"] == T0 + 2 * H
    assert status["offline_seconds"] == (T0 + 2 * H - REGISTERED - grace) // 1000
    assert "GATEWAY_ONLINE" in types(out)
    assert not rig.tick(T0 + 2 * H + 2000).statuses          # announced once


def test_within_the_grace_nothing_is_raised(ctx: ProcessorContext) -> None:
    ref = ctx.reference
    ref.put_sensor({**sensor("s-9", gateway="gw-new"), "updated_at": T0 - 1000}, T0)
    rig = Rig(ctx)
    out = rig.tick(T0)
    assert [s["gateway_id"] for s in out.statuses] == ["gw-1"]   # the fixture's, a day old
    rig.beat(T0 + 10 * M, gateway="gw-new")
    out = rig.tick(T0 + 10 * M + 1)
    assert [(s["gateway_id"], s["offline_seconds"]) for s in out.statuses] == [("gw-new", 0)]
    assert not out.alerts


def test_a_worker_checks_only_gateways_it_sees_every_message_of(rig: Rig) -> None:
    parts = candidate_partitions(b"gw-1", 8)
    others = frozenset(range(8)) - parts
    assert responsible(b"gw-1", None) and responsible(b"gw-1", (frozenset(range(8)), 8))
    assert responsible(b"gw-1", (parts, 8)) and not responsible(b"gw-1", (others, 8))
    view = DictStore()
    view.assignment = (others, 8)  # type: ignore[attr-defined]
    out, _ = rig.clock.tick(view, T0, lambda p: True)
    assert not out.alerts
    view.assignment = (parts, 8)  # type: ignore[attr-defined]    # partitions moved
    out, _ = rig.clock.tick(view, T0, lambda p: True)
    assert types(out) == ["GATEWAY_NEVER_CONNECTED"]


def test_murmur2_is_kafkas() -> None:
    # values of Kafka's own tests (org.apache.kafka.common.utils.UtilsTest)
    assert murmur2(b"21") == -973932308
    assert murmur2(b"foobar") == -790332482
    assert murmur2(b"a-little-bit-long-string") == -985981536
    assert murmur2(b"abc") == 479470107


def test_a_sensor_silent_while_its_gateway_is_online(rig: Rig) -> None:
    rig.beat(T0)
    rig.reading(T0, "s-1")
    rig.tick(T0 + 1)                                          # first ONLINE status
    allowed = 3 * 5 * M                                       # 3 x the policy's 5 min
    for minute in range(1, 17):
        rig.beat(T0 + minute * M)
    rig.reading(T0 + 10 * M, "s-2")
    out = rig.tick(T0 + allowed)
    assert types(out) == []                                   # exactly the allowed silence
    out = rig.tick(T0 + allowed + 1)
    silent = sorted(a["subject_id"] for a in out.alerts if a["alert_type"] == "SENSOR_SILENT")
    assert silent == ["s-1", "s-3"]                   # s-3 never reported, s-2 did at 10 min
    assert "while the gateway is online" in out.alerts[0]["message"]
    watch = rig.clock.watch
    assert watch.sensor_due("gw-1", rig.store.get(b"gw-1")) == T0 + 10 * M + allowed + 1
    # the gateway's own silence check comes first: last heartbeat + 3 intervals
    assert rig.clock.next_due_of(b"gw-1", rig.store.get(b"gw-1")) == T0 + 16 * M + 3 * M + 1
    assert not [a for a in rig.tick(T0 + allowed + 2).alerts
                if a["subject_id"] in ("s-1", "s-3")]          # once per silence
    rig.reading(T0 + 17 * M, "s-1")
    assert rig.clock.next_due_of(b"gw-1", rig.store.get(b"gw-1")) == 0   # s-1 is back
    out = rig.tick(T0 + 17 * M + 1)
    assert [(a["alert_type"], a["subject_id"]) for a in out.alerts] == [
        ("SENSOR_RESUMED", "s-1")]


def test_the_registration_sets_the_expected_interval(ctx: ProcessorContext) -> None:
    ctx.reference.put_sensor({**sensor("s-1"), "expected_interval_s": 10}, T0)
    rig = Rig(ctx)
    rig.beat(T0)
    rig.reading(T0)
    rig.tick(T0 + 1)
    out = rig.tick(T0 + 30_001)
    assert [a["subject_id"] for a in out.alerts if a["alert_type"] == "SENSOR_SILENT"] == \
        ["s-1"]
    assert out.alerts[0]["threshold"] == 30


def test_sensors_of_an_offline_gateway_are_not_checked(rig: Rig) -> None:
    rig.beat(T0, interval_s=60)
    rig.tick(T0 + 1)
    out = rig.tick(T0 + H)
    assert types(out) == ["GATEWAY_OFFLINE"]                 # the gateway's blind spot only
    # back online: its sensors get their allowed silence from then on
    rig.beat(T0 + 2 * H)
    assert not [a for a in rig.tick(T0 + 2 * H + 1).alerts if a["alert_type"] == "SENSOR_SILENT"]


def test_state_nobody_registers_is_forgotten(rig: Rig) -> None:
    forget = int(rig.ctx.policy.blind_spots.forget_after.total_seconds() * 1000)
    rig.beat(T0)
    rig.reading(T0, "s-1")
    rig.tick(T0 + 1)
    rig.ctx.reference.apply(SENSOR, "s-1", None, T0 + 2)      # s-1 deregistered
    assert "s-1" in rig.store.get(b"gw-1")["sensors"]
    rig.tick(T0 + forget + 10)
    assert "s-1" not in rig.store.get(b"gw-1")["sensors"]
    rig.ctx.reference.apply(ENTERPRISE, "ent-1", None, T0 + 3)  # the enterprise, too
    state = rig.store.get(b"gw-1")
    assert rig.clock.next_due_of(b"gw-1", state) == T0 + forget   # since its last message
    rig.tick(T0 + forget + 20)
    assert rig.store.get(b"gw-1") is None and rig.changed == [b"gw-1"]


def test_a_deregistered_gateway_is_kept_while_it_still_talks(rig: Rig) -> None:
    forget = int(rig.ctx.policy.blind_spots.forget_after.total_seconds() * 1000)
    rig.ctx.reference.apply(ENTERPRISE, "ent-1", None, T0)
    rig.beat(T0)                    # rejected (unknown enterprise): no state
    assert rig.store.get(b"gw-1") is None
    rig.ctx.reference.put_enterprise({"enterprise_id": "ent-1", "name": "Plant 1",
                                      "region_code": "110101", "industry": "x",
                                      "updated_at": T0}, T0)
    rig.beat(T0)
    rig.ctx.reference.apply(ENTERPRISE, "ent-1", None, T0)
    rig.tick(T0 + forget - 1)
    assert rig.store.get(b"gw-1") is not None and rig.changed == []


def test_the_registry_echo(ctx: ProcessorContext) -> None:
    rig = Rig(ctx)
    out = rig.tick(T0)
    assert sorted(r["sensor_id"] for r in out.registrations) == ["s-1", "s-2", "s-3"]
    [s3] = [r for r in out.registrations if r["sensor_id"] == "s-3"]
    assert (s3["alarm_level1"], s3["alarm_level2"], s3["expected_interval_s"]) == (60, 90, 300)
    assert s3["registered"] and s3["region_code"] == "110101" and s3["tag"] is None
    encodes("SensorRegistration", s3)
    assert not rig.tick(T0 + 1).registrations               # changes only
    ctx.reference.apply(SENSOR, "s-3", None, T0 + 2)
    [gone] = rig.tick(T0 + 3).registrations
    assert not gone["registered"] and gone["updated_at"] == REGISTERED + 1000


def test_gauges_leave_the_canary_out(ctx: ProcessorContext, reference: ReferenceData) -> None:
    rig = Rig(ctx)
    rig.beat(T0)
    key = b"canary-r1-gw"
    _, state = rig.beats.process({"gateway_id": "canary-r1-gw", "enterprise_id": "canary-r1-ent",
                                  "sent_at": T0, "sequence": 1, "interval_s": 60,
                                  "firmware": None}, rig._src("heartbeats", T0), key, b"x",
                                 None, T0)
    rig.store.put(key, state)
    rig.tick(T0 + 1)
    assert value_of(ctx.metrics.gateways, state="online") == 1


def test_a_gateway_of_an_enterprise_registered_later_is_looked_at_again(
        ctx: ProcessorContext) -> None:
    ctx.reference.put_sensor({**sensor("s-x", gateway="gw-x", enterprise="ent-x"),
                              "updated_at": T0 - 2 * H}, T0)
    rig = Rig(ctx)
    assert [a["subject_id"] for a in rig.tick(T0).alerts] == ["gw-1"]    # not gw-x yet
    ctx.reference.put_enterprise({"enterprise_id": "ent-x", "name": "X", "region_code": "110101",
                                  "industry": "x", "updated_at": T0}, T0)
    assert not rig.tick(T0 + 1000).alerts
    grace = rig.clock.registry.grace_ms
    assert [a["subject_id"] for a in rig.tick(T0 + grace).alerts] == ["gw-x"]
