from __future__ import annotations

from typing import Any

import pytest

from schemas.records import Source
from streams.processors.base import DictStore
from streams.processors.context import ProcessorContext
from streams.processors.hazards import (
    HazardClock,
    HazardProcessor,
    HazardState,
    transition_problems,
)
from tests.unit.streams.processors.conftest import T0, encodes

D = 86_400_000


def hazard(version: int, status: str = "FOUND", deadline: int | None = T0 + D,
           **extra: Any) -> dict[str, Any]:
    rec = {"hazard_id": "hz-1", "version": version, "enterprise_id": "ent-1",
           "region_code": "110101", "category": "fire", "level": "MAJOR", "status": status,
           "found_at": T0 - D, "rectification_deadline": deadline, "updated_at": T0 - D,
           "description": ""}
    rec.update(extra)
    return rec


def src(offset: int, ts: int = T0) -> Source:
    return Source("ebi.hazards", 0, offset, 2, ts)


@pytest.fixture
def proc(ctx: ProcessorContext) -> HazardProcessor:
    return HazardProcessor(ctx)


def test_versions_duplicates_and_replays(proc: HazardProcessor) -> None:
    out, state = proc.process(hazard(1), src(0), b"hz-1", b"raw", None, T0)
    assert out.clean is not None and out.clean["duplicate"] is False
    encodes("EnrichedHazardRecord", out.clean)
    out, state = proc.process(hazard(2, "RECTIFYING"), src(1), None, b"raw", state, T0)
    assert out.clean is not None and not out.clean["duplicate"]
    out, state = proc.process(hazard(1), src(2), None, b"raw", state, T0)
    assert out.clean is not None and out.clean["duplicate"] is True
    assert proc.process(hazard(1), src(2), None, b"raw", state, T0)[0].replay


def test_overdue_alerted_once(proc: HazardProcessor) -> None:
    out, state = proc.process(hazard(1), src(0, T0 + 2 * D), None, b"raw", None, T0 + 2 * D)
    assert out.clean is not None and out.clean["overdue"] is True
    assert [a["alert_type"] for a in out.alerts] == ["HAZARD_OVERDUE"]
    out, state = proc.process(hazard(2), src(1, T0 + 3 * D), None, b"raw", state, T0 + 3 * D)
    assert out.clean is not None and out.clean["overdue"] and not out.alerts
    out, _ = proc.process(hazard(3, "CLOSED"), src(2, T0 + 3 * D), None, b"raw", state, T0)
    assert out.clean is not None and not out.clean["overdue"]


@pytest.mark.parametrize(("rec", "code"), [
    (hazard(1, enterprise_id="ent-404"), "UNKNOWN_ENTERPRISE"),
    (hazard(1, region_code="11010"), "BAD_REGION_CODE"),
    (hazard(1, deadline=T0 - 2 * D), "BAD_TIMESTAMP"),
])
def test_invalid_hazards(proc: HazardProcessor, rec: dict[str, Any], code: str) -> None:
    out, state = proc.process(rec, src(0), None, b"raw", None, T0)
    assert out.clean is None and state is None
    assert [d["error_code"] for d in out.dead_letters] == [code]


# -- status order ---------------------------------------------------------------------------
@pytest.mark.parametrize(("known", "version", "status", "wrong"), [
    ({}, 1, "FOUND", False),
    ({}, 1, "RECTIFYING", True),              # RECTIFYING before FOUND
    ({}, 1, "CLOSED", True),
    ({}, 4, "RECTIFYING", False),             # earlier versions unknown to the platform
    ({"1": "FOUND"}, 2, "CLOSED", False),
    ({"1": "FOUND", "2": "RECTIFYING"}, 3, "FOUND", True),
    ({"1": "FOUND", "2": "CLOSED"}, 3, "FOUND", True),    # CLOSED then FOUND
    ({"1": "FOUND", "2": "CLOSED"}, 3, "CLOSED", False),
    ({"1": "FOUND", "3": "CLOSED"}, 2, "RECTIFYING", False),   # late, fits between
    ({"1": "FOUND", "3": "RECTIFYING"}, 2, "CLOSED", True),    # late, CLOSED before RECTIFYING
])
def test_transitions(known: dict[str, str], version: int, status: str, wrong: bool) -> None:
    assert bool(transition_problems(known, version, status, 1)) is wrong


def test_invalid_transition_is_flagged_and_kept(proc: HazardProcessor) -> None:
    out, state = proc.process(hazard(1, "RECTIFYING"), src(0), None, b"raw", None, T0)
    assert out.clean is not None and out.clean["flags"] == ["INVALID_TRANSITION"]
    assert [a["alert_type"] for a in out.alerts] == ["HAZARD_TRANSITION_INVALID"]
    assert "must be FOUND" in out.alerts[0]["message"]
    encodes("EnrichedHazardRecord", out.clean)
    out, state = proc.process(hazard(2, "CLOSED"), src(1), None, b"raw", state, T0)
    assert out.clean is not None and "flags" not in out.clean and not out.alerts
    out, state = proc.process(hazard(3, "FOUND"), src(2), None, b"raw", state, T0)
    assert out.clean is not None and out.clean["flags"] == ["INVALID_TRANSITION"]
    assert "CLOSED (version 2) cannot be followed by FOUND (version 3)" in \
        out.alerts[0]["message"]
    assert state is not None and state["status"] == "FOUND" and state["max_version"] == 3


def test_a_version_sent_again_with_another_status_is_a_conflict(proc: HazardProcessor) -> None:
    _, state = proc.process(hazard(1), src(0), None, b"raw", None, T0)
    out, state = proc.process(hazard(1, "CLOSED"), src(1), None, b"raw", state, T0)
    assert out.clean is not None and out.clean["duplicate"] is True
    assert out.clean["flags"] == ["VERSION_CONFLICT"]
    assert [a["alert_type"] for a in out.alerts] == ["HAZARD_TRANSITION_INVALID"]
    assert state is not None and state["status"] == "FOUND"


# -- the rectification clock ----------------------------------------------------------------
@pytest.fixture
def clock(ctx: ProcessorContext) -> HazardClock:
    return HazardClock(ctx)


def _tick(clock: HazardClock, store: DictStore, now: int,
          trusted: bool = True) -> tuple[list[str], list[bytes]]:
    out, changed = clock.tick(store, now, lambda p: trusted)
    return [a["alert_type"] for a in out.alerts], changed


def test_overdue_at_the_deadline_without_any_update(proc: HazardProcessor,
                                                    clock: HazardClock) -> None:
    store = DictStore()
    _, state = proc.process(hazard(1, level="ORDINARY"), src(0), None, b"raw", None, T0)
    store.put(b"hz-1", state)
    assert clock.next_due(state) == T0 + D + 1
    assert _tick(clock, store, T0 + D) == ([], [])
    assert _tick(clock, store, T0 + D + 5000, trusted=False) == ([], [])   # a backlog
    alerts, changed = _tick(clock, store, T0 + D + 5000)
    assert alerts == ["HAZARD_OVERDUE"] and changed == [b"hz-1"]
    assert clock.next_due(store.get(b"hz-1")) is None       # ordinary: once
    assert _tick(clock, store, T0 + 5 * D) == ([], [])
    # the same alert id as when a late update finds it overdue
    late, _ = proc.process(hazard(2, level="ORDINARY"), src(1, T0 + 2 * D), None, b"raw",
                           None, T0 + 2 * D)
    timer, _ = clock.tick(_store_with(proc, hazard(1, level="ORDINARY")), T0 + D + 1,
                          lambda p: True)
    assert late.alerts[0]["alert_id"] == timer.alerts[0]["alert_id"]


def _store_with(proc: HazardProcessor, rec: dict[str, Any]) -> DictStore:
    store = DictStore()
    _, state = proc.process(rec, src(0), None, b"raw", None, T0)
    store.put(rec["hazard_id"].encode(), state)
    return store


def test_major_dangers_are_alerted_again_on_the_policy_schedule(proc: HazardProcessor,
                                                                clock: HazardClock) -> None:
    store = _store_with(proc, hazard(1))               # MAJOR, deadline T0 + D
    every = int(proc.policy.hazards.major_repeat_every.total_seconds() * 1000)
    assert _tick(clock, store, T0 + D + 1)[0] == ["HAZARD_OVERDUE"]
    assert clock.next_due(store.get(b"hz-1")) == T0 + D + every
    assert _tick(clock, store, T0 + D + every - 1)[0] == []
    out, _ = clock.tick(store, T0 + D + every, lambda p: True)
    assert [a["alert_type"] for a in out.alerts] == ["HAZARD_OVERDUE"]
    assert "reminder 1" in out.alerts[0]["message"] and out.alerts[0]["value"] == every / 1000
    # a worker down for three periods raises the latest reminder only
    out, _ = clock.tick(store, T0 + D + 4 * every + 10, lambda p: True)
    assert len(out.alerts) == 1 and "reminder 4" in out.alerts[0]["message"]
    # closing it stops the reminders; a new deadline starts a new clock
    _, state = proc.process(hazard(2, deadline=T0 + 10 * D), src(1), None, b"raw",
                            store.get(b"hz-1"), T0 + 5 * D)
    assert clock.next_due(state) == T0 + 10 * D + 1


def test_closed_hazards_leave_the_state_after_the_horizon(proc: HazardProcessor,
                                                          clock: HazardClock) -> None:
    store = _store_with(proc, hazard(1))
    _, state = proc.process(hazard(2, "CLOSED"), src(1, T0 + 1000), None, b"raw",
                            store.get(b"hz-1"), T0 + 1000)
    store.put(b"hz-1", state)
    forget = int(proc.policy.hazards.forget_closed_after.total_seconds() * 1000)
    assert clock.next_due(state) == T0 + 1000 + forget
    assert _tick(clock, store, T0 + D + 1) == ([], [])            # closed: not overdue
    assert _tick(clock, store, T0 + 1000 + forget) == ([], [b"hz-1"])
    assert store.get(b"hz-1") is None


def test_states_of_the_earlier_layout_wait_for_their_next_version(
        proc: HazardProcessor, clock: HazardClock) -> None:
    old: HazardState = {"versions": {"1": 5}, "max_version": 1, "alerted_deadline": 0}
    assert clock.next_due(old) is None and clock.category(old) is None
    _, state = proc.process(hazard(2, "RECTIFYING"), src(1), None, b"raw", old, T0)
    assert state is not None and state["status"] == "RECTIFYING"
    assert clock.next_due(state) == T0 + D + 1 and clock.category(state) == "open"
