"""Message sequences for the state-layout tests (:mod:`.test_layouts`).

Each state kind has a *prefix* (messages that build a state) and a *suffix* (messages and
clock checks run on it); a suffix returns a summary of everything observable: replays,
alerts (type, id, value), gateway statuses, the clean records' decisions. The tests run the
suffix on a state built by the prefix and on the same state as an earlier version of the
worker wrote it, converted on load: the summaries must be equal. Only the processors'
public methods are used here, never the state's fields.
"""

from __future__ import annotations

from typing import Any

from schemas.records import Source
from streams.processors.common import Outputs
from streams.processors.context import ProcessorContext
from streams.processors.gateways import HeartbeatProcessor
from streams.processors.hazards import HazardProcessor
from streams.processors.incidents import IncidentProcessor
from streams.processors.liveness import enterprise_online_seconds
from streams.processors.telemetry import TelemetryProcessor

T0 = 1_790_000_000_000
H = 3_600_000
D = 24 * H


def summary(out: Outputs) -> dict[str, Any]:
    clean = out.clean or {}
    return {
        "replay": out.replay,
        "alerts": [[a["alert_type"], a["alert_id"], a["value"]] for a in out.alerts],
        "statuses": [[s["status"], s["changed_at"], s["last_seen_at"], s["offline_seconds"]]
                     for s in out.statuses],
        "dead_letters": [d["error_code"] for d in out.dead_letters],
        "clean": {k: clean[k] for k in ("duplicates", "rejected", "reading_id", "flags",
                                        "duplicate", "overdue", "late_by_ms", "deadline_at")
                  if k in clean},
    }


# -- gateways: telemetry and heartbeats -------------------------------------------------------
def _tele(offset: int, ts: int) -> Source:
    return Source("ebi.telemetry", 0, offset, 1, ts)


def _beat_src(offset: int, ts: int) -> Source:
    return Source("ebi.heartbeats", 0, offset, 1, ts)


def _beat(seq: int, sent: int) -> dict[str, Any]:
    return {"gateway_id": "gw-1", "enterprise_id": "ent-1", "sent_at": sent, "sequence": seq,
            "interval_s": 10, "firmware": None}


def _envelope(seq: int, sent: int, readings: list[tuple[str, str, float]]) -> dict[str, Any]:
    units = {"s-1": ("METHANE", "PERCENT_VOL"), "s-3": ("TEMPERATURE", "CELSIUS")}
    return {"gateway_id": "gw-1", "enterprise_id": "ent-1", "sent_at": sent, "sequence": seq,
            "readings": [{"reading_id": rid, "sensor_id": sid, "metric": units[sid][0],
                          "value": v, "unit": units[sid][1], "quality": "GOOD",
                          "event_time": sent - 100 + i}
                         for i, (rid, sid, v) in enumerate(readings)]}


def gateway_prefix(ctx: ProcessorContext) -> Any:
    """Heartbeat, two envelopes (a flatline on s-1, a spike on s-3), offline, back online."""
    tele, beats = TelemetryProcessor(ctx), HeartbeatProcessor(ctx)
    _, state = beats.process(_beat(1, T0), _beat_src(0, T0), b"gw-1", b"x", None, T0)
    flat = [(f"a{i}", "s-1", 0.25) for i in range(31)]
    temps = [(f"t{i}", "s-3", 20.0 + 0.1 * (i % 3)) for i in range(55)]
    _, state = tele.process(_envelope(1, T0 + 1000, flat + temps), _tele(0, T0 + 1000), b"gw-1",
                            b"x", state, T0 + 1000)
    _, state = tele.process(_envelope(2, T0 + 2000, [("b1", "s-1", 0.25), ("b2", "s-3", 55.0)]),
                            _tele(1, T0 + 2000), b"gw-1", b"x", state, T0 + 2000)
    ctx.gateways.check_silence("gw-1", state, T0 + 40_000)
    _, state = beats.process(_beat(2, T0 + 50_000), _beat_src(1, T0 + 50_000), b"gw-1", b"x",
                             state, T0 + 50_000)
    return state


def gateway_suffix(ctx: ProcessorContext, state: Any) -> list[Any]:
    tele, beats = TelemetryProcessor(ctx), HeartbeatProcessor(ctx)
    steps: list[Any] = []

    def run(proc: Any, rec: dict[str, Any], src: Source, now: int) -> None:
        nonlocal state
        out, new = proc.process(rec, src, b"gw-1", b"x", state, now)
        state = new if new is not None else state
        steps.append(summary(out))

    run(beats, _beat(2, T0 + 50_000), _beat_src(1, T0 + 50_000), T0 + 50_000)     # replay
    run(tele, _envelope(2, T0 + 2000, [("b1", "s-1", 0.25)]), _tele(1, T0 + 2000),
        T0 + 51_000)                                                              # replay
    # b1 again from elsewhere (duplicate), t3 repeated, s-1 still flat, s-3 spike over
    run(tele, _envelope(3, T0 + 52_000, [("b1", "s-1", 0.25), ("t3", "s-3", 20.0),
                                         ("c1", "s-1", 0.25), ("c2", "s-3", 20.1),
                                         ("c3", "s-3", 90.0), ("c4", "s-1", 1.2)]),
        _tele(2, T0 + 52_000), T0 + 52_000)
    steps.append(["online", ctx.gateways.online_ms(state, T0 + 55_000),
                  enterprise_online_seconds([state], T0 + 55_000)])
    steps.append(summary(ctx.gateways.check_silence("gw-1", state, T0 + 60_000)))
    steps.append(summary(ctx.gateways.check_silence("gw-1", state, T0 + 90_000)))
    run(beats, _beat(3, T0 + 200_000), _beat_src(2, T0 + 200_000), T0 + 200_000)
    run(tele, _envelope(4, T0 + 201_000, [("c1", "s-1", 0.3)]), _tele(3, T0 + 201_000),
        T0 + 201_000)
    steps.append(["online", ctx.gateways.online_ms(state, T0 + 205_000)])
    return steps


# -- incidents ----------------------------------------------------------------------------
def _report(rid: str, stage: str, reported: int, deaths: int = 0, injuries: int = 0,
            level: str = "ORDINARY") -> dict[str, Any]:
    return {"incident_id": "inc-1", "report_id": rid, "stage": stage,
            "kind": "PRODUCTION_SAFETY", "industry": "hazardous chemicals",
            "disaster_category": None, "occurred_at": T0 - H // 2, "reported_at": reported,
            "reporting_unit": "county bureau", "reporting_level": "ENTERPRISE",
            "region_code": "110101", "declared_level": level, "deaths": deaths, "missing": 0,
            "serious_injuries": injuries, "direct_economic_loss_cny": 0.0,
            "affected_population": 0, "description": "", "publication": "INTERNAL"}


def _inc_src(offset: int, ts: int) -> Source:
    return Source("ebi.incidents", 0, offset, 3, ts)


def incident_prefix(ctx: ProcessorContext) -> Any:
    """INITIAL, a FOLLOW_UP, and the due-soon warning of the next follow-up."""
    proc = IncidentProcessor(ctx)
    _, state = proc.process(_report("r1", "INITIAL", T0, injuries=2), _inc_src(0, T0 + 1000),
                            b"inc-1", b"raw", None, T0 + 1000)
    _, state = proc.process(_report("r2", "FOLLOW_UP", T0 + 20 * H, injuries=3),
                            _inc_src(1, T0 + 20 * H), b"inc-1", b"raw", state, T0 + 20 * H)
    proc.check_clock("inc-1", state, T0 + 44 * H - H // 2)
    return state


def incident_suffix(ctx: ProcessorContext, state: Any) -> list[Any]:
    proc = IncidentProcessor(ctx)
    steps: list[Any] = []

    def run(rep: dict[str, Any], src: Source, now: int) -> None:
        nonlocal state
        out, new = proc.process(rep, src, b"inc-1", b"raw", state, now)
        state = new if new is not None else state
        steps.append(summary(out))

    def clock(now: int) -> None:
        steps.append([summary(proc.check_clock("inc-1", state, now)),
                      proc.overdue(state, now), proc.expired(state, now)])

    run(_report("r2", "FOLLOW_UP", T0 + 20 * H, injuries=3), _inc_src(1, T0 + 20 * H),
        T0 + 30 * H)                                                              # replay
    run(_report("r2", "FOLLOW_UP", T0 + 20 * H, injuries=3), _inc_src(2, T0 + 30 * H),
        T0 + 30 * H)                                                              # duplicate
    clock(T0 + 44 * H - H // 4)                       # warned already
    clock(T0 + 44 * H + 1000)                         # overdue
    run(_report("r3", "FOLLOW_UP", T0 + 45 * H, deaths=4, injuries=30), _inc_src(3, T0 + 45 * H),
        T0 + 45 * H)
    run(_report("r1", "INITIAL", T0, injuries=2), _inc_src(4, T0 + 46 * H), T0 + 46 * H)
    run(_report("r4", "FINAL", T0 + 50 * H, deaths=4, injuries=12, level="RELATIVELY_SERIOUS"),
        _inc_src(5, T0 + 50 * H), T0 + 50 * H)
    clock(T0 + 60 * H)
    clock(T0 + 50 * H + 31 * D)
    return steps


# -- hazards ------------------------------------------------------------------------------
def _hazard(version: int, status: str, deadline: int | None) -> dict[str, Any]:
    return {"hazard_id": "hz-1", "version": version, "enterprise_id": "ent-1",
            "region_code": "110101", "category": "fire", "level": "MAJOR", "status": status,
            "found_at": T0 - D, "rectification_deadline": deadline, "updated_at": T0 - D,
            "description": ""}


def _hz_src(offset: int, ts: int) -> Source:
    return Source("ebi.hazards", 0, offset, 2, ts)


def hazard_prefix(ctx: ProcessorContext) -> Any:
    """Two versions past their rectification deadline (alerted once)."""
    proc = HazardProcessor(ctx)
    _, state = proc.process(_hazard(1, "FOUND", T0 + D), _hz_src(0, T0 + 2 * D), b"hz-1",
                            b"raw", None, T0 + 2 * D)
    _, state = proc.process(_hazard(2, "RECTIFYING", T0 + D), _hz_src(1, T0 + 2 * D), b"hz-1",
                            b"raw", state, T0 + 2 * D)
    return state


def hazard_suffix(ctx: ProcessorContext, state: Any) -> list[Any]:
    proc = HazardProcessor(ctx)
    steps: list[Any] = []

    def run(version: int, status: str, deadline: int | None, src: Source) -> None:
        nonlocal state
        out, new = proc.process(_hazard(version, status, deadline), src, b"hz-1", b"raw",
                                state, T0 + 3 * D)
        state = new if new is not None else state
        steps.append(summary(out))

    run(2, "RECTIFYING", T0 + D, _hz_src(1, T0 + 2 * D))          # replay
    run(1, "FOUND", T0 + D, _hz_src(2, T0 + 3 * D))               # duplicate
    run(3, "RECTIFYING", T0 + D, _hz_src(3, T0 + 3 * D))          # same deadline: no alert
    run(4, "RECTIFYING", T0 + 2 * D, _hz_src(4, T0 + 3 * D))      # new deadline passed
    run(2, "RECTIFYING", T0 + D, _hz_src(5, T0 + 3 * D))          # duplicate again
    return steps
