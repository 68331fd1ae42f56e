from __future__ import annotations

from schemas.records import Source, unpack
from streams.processors.common import (
    alert_id,
    already_applied,
    arrival_ms,
    canary_tag,
    make_alert,
)


def test_packed_coordinates() -> None:
    src = Source("t", 3, 123456789, None, 0)
    assert unpack(src.packed) == (3, 123456789)
    assert Source("t", 2, 10**9).packed < Source("t", 3, 0).packed


def test_already_applied() -> None:
    state = {"applied_telemetry": Source("t", 1, 50).packed}
    assert already_applied(state, "applied_telemetry", Source("t", 1, 50))
    assert already_applied(state, "applied_telemetry", Source("t", 1, 3))
    assert not already_applied(state, "applied_telemetry", Source("t", 1, 51))
    assert not already_applied(state, "applied_telemetry", Source("t", 0, 3))
    assert not already_applied(state, "applied_heartbeat", Source("t", 1, 3))
    assert not already_applied(None, "applied_telemetry", Source("t", 1, 3))


def test_arrival_falls_back_to_now() -> None:
    assert arrival_ms(Source("t", 0, 0, None, 5), 9) == 5
    assert arrival_ms(Source("t", 0, 0, None, -1), 9) == 9


def test_alert_ids_are_deterministic() -> None:
    assert alert_id("SPIKE", "s-1", 5) == alert_id("SPIKE", "s-1", 5)
    assert alert_id("SPIKE", "s-1", 5) != alert_id("SPIKE", "s-1", 6)
    a = make_alert("SPIKE", "sensor", "s-1", 5, 100, "m")
    b = make_alert("SPIKE", "sensor", "s-1", 5, 200, "m")
    assert a["alert_id"] == b["alert_id"] and a["raised_at"] != b["raised_at"]


def test_canary_tag() -> None:
    assert canary_tag("canary-7f3a-gw1") == "canary-7f3a"
    assert canary_tag("gw-1", "canary-x") == "canary-x"
    assert canary_tag("gw-1") is None
    assert make_alert("SPIKE", "sensor", "canary-q-s1", 1, 1, "m")["tag"] == "canary-q"
