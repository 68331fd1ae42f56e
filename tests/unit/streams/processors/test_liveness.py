from __future__ import annotations

import pytest

from schemas.records import Source
from streams.metrics import Metrics
from streams.policy import Policy
from streams.processors.liveness import (
    GatewayMonitor,
    enterprise_online_seconds,
    partition_caught_up,
)
from streams.processors.reference import ReferenceData
from tests.unit.streams.processors.conftest import T0, encodes


def beat(seq: int, sent: int, interval_s: int = 10, gateway: str = "gw-1",
         enterprise: str = "ent-1") -> dict[str, object]:
    return {"gateway_id": gateway, "enterprise_id": enterprise, "sent_at": sent,
            "sequence": seq, "interval_s": interval_s, "firmware": None}


def at(offset: int, ts: int) -> Source:
    return Source("ebi.heartbeats", 0, offset, 1, ts)


@pytest.fixture
def mon(policy: Policy, reference: ReferenceData, metrics: Metrics) -> GatewayMonitor:
    return GatewayMonitor(policy, reference, metrics)


def test_first_heartbeat_creates_online_state(mon: GatewayMonitor) -> None:
    out, state = mon.heartbeat(beat(1, T0), at(0, T0), b"gw-1", b"x", None, T0)
    assert not out.statuses and not out.alerts
    assert state is not None and state["online"] and state["interval_ms"] == 10_000
    assert state["last_seen_at"] == T0 and state["heartbeat_sequence"] == 1


def test_offline_after_n_intervals_then_back_online(mon: GatewayMonitor) -> None:
    _, state = mon.heartbeat(beat(1, T0), at(0, T0), None, b"x", None, T0)
    assert state is not None
    assert not mon.check_silence("gw-1", state, T0 + 30_000).statuses   # exactly 3 intervals
    out = mon.check_silence("gw-1", state, T0 + 30_001)
    [status] = out.statuses
    assert status["status"] == "OFFLINE" and status["changed_at"] == T0 + 30_000
    assert status["last_seen_at"] == T0 and status["region_code"] == "110101"
    [alert] = out.alerts
    assert alert["alert_type"] == "GATEWAY_OFFLINE" and alert["subject_type"] == "gateway"
    encodes("GatewayStatus", status)
    encodes("Alert", alert)
    assert not mon.check_silence("gw-1", state, T0 + 90_000).statuses   # raised once
    out, state = mon.heartbeat(beat(2, T0 + 95_000), at(1, T0 + 95_000), None, b"x", state,
                               T0 + 95_000)
    [status] = out.statuses
    assert status["status"] == "ONLINE" and status["offline_seconds"] == 95
    assert [a["alert_type"] for a in out.alerts] == ["GATEWAY_ONLINE"]


def test_message_after_silence_decides_without_the_timer(mon: GatewayMonitor) -> None:
    _, s1 = mon.heartbeat(beat(1, T0), at(0, T0), None, b"x", None, T0)
    _, s2 = mon.heartbeat(beat(1, T0), at(0, T0), None, b"x", None, T0)
    assert s1 is not None and s2 is not None
    timer = mon.check_silence("gw-1", s1, T0 + 40_000)
    out1, _ = mon.heartbeat(beat(2, T0 + 60_000), at(1, T0 + 60_000), None, b"x", s1,
                            T0 + 60_000)
    out2, _ = mon.heartbeat(beat(2, T0 + 60_000), at(1, T0 + 60_000), None, b"x", s2,
                            T0 + 60_000)
    ids_timer = {a["alert_id"] for a in timer.alerts + out1.alerts}
    ids_direct = {a["alert_id"] for a in out2.alerts}
    assert ids_timer == ids_direct and len(ids_direct) == 2


def test_heartbeat_replay_is_skipped(mon: GatewayMonitor) -> None:
    _, state = mon.heartbeat(beat(1, T0), at(4, T0), None, b"x", None, T0)
    out, _ = mon.heartbeat(beat(1, T0), at(4, T0), None, b"x", state, T0)
    assert out.replay


@pytest.mark.parametrize(("hb", "code"), [
    (beat(1, T0, interval_s=0), "OUT_OF_RANGE"),
    (beat(1, T0 + 3_600_000), "FUTURE_EVENT_TIME"),
    (beat(1, T0, enterprise="ent-404"), "UNKNOWN_ENTERPRISE"),
])
def test_bad_heartbeats_are_dead_letters(mon: GatewayMonitor, hb: dict[str, object],
                                         code: str) -> None:
    out, state = mon.heartbeat(hb, at(9, T0), b"gw-1", b"raw", None, T0)
    [dl] = out.dead_letters
    assert dl["error_code"] == code and dl["value"] == b"raw" and state is None
    assert "gateway gw-1" in dl["error_message"]


def test_online_time_per_enterprise(mon: GatewayMonitor) -> None:
    _, state = mon.heartbeat(beat(1, T0), at(0, T0), None, b"x", None, T0)
    assert state is not None
    mon.check_silence("gw-1", state, T0 + 60_000)          # offline; online 0 s so far
    mon.heartbeat(beat(2, T0 + 100_000), at(1, T0 + 100_000), None, b"x", state, T0 + 100_000)
    mon.heartbeat(beat(3, T0 + 105_000), at(2, T0 + 105_000), None, b"x", state, T0 + 105_000)
    assert enterprise_online_seconds([state], T0 + 110_000) == {"ent-1": 10.0}


def test_partition_caught_up() -> None:
    assert partition_caught_up(T0 - 60_000, T0 - 5_000, T0)        # idle: nothing to read
    assert partition_caught_up(T0 - 1_000, T0, T0)                 # busy but fresh
    assert not partition_caught_up(T0 - 600_000, T0, T0)           # busy on a backlog


def test_gap_in_gateway_time_found_in_fast_replayed_data(mon: GatewayMonitor) -> None:
    """Silence is a gap between sent_at values, even when the messages arrive together;
    the periodic check looks at arrival times instead."""
    _, state = mon.heartbeat(beat(1, T0 - 120_000), at(0, T0), None, b"x", None, T0)
    assert state is not None
    assert not mon.check_silence("gw-1", state, T0 + 1_000).statuses    # arrived just now
    out, state = mon.heartbeat(beat(2, T0 - 60_000), at(1, T0 + 10), None, b"x", state,
                               T0 + 10)
    assert [s["status"] for s in out.statuses] == ["OFFLINE", "ONLINE"]
    assert out.statuses[0]["changed_at"] == T0 - 120_000 + 30_000
    assert out.statuses[1]["offline_seconds"] == 60
