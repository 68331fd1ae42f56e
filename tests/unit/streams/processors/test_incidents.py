from __future__ import annotations

from typing import Any

import pytest

from schemas.records import Source
from streams.metrics import Metrics
from streams.processors.context import ProcessorContext
from streams.processors.incidents import IncidentProcessor
from tests.unit.streams.processors.conftest import T0, encodes, value_of

H = 3_600_000


def report(rid: str, stage: str = "INITIAL", reported: int = T0, occurred: int = T0 - H // 2,
           level: str = "ORDINARY", deaths: int = 0, injuries: int = 0,
           incident: str = "inc-1", **extra: Any) -> dict[str, Any]:
    rec = {"incident_id": incident, "report_id": rid, "stage": stage,
           "kind": "PRODUCTION_SAFETY", "industry": "hazardous chemicals",
           "disaster_category": None, "occurred_at": occurred, "reported_at": reported,
           "reporting_unit": "county bureau", "reporting_level": "ENTERPRISE",
           "region_code": "110101", "declared_level": level, "deaths": deaths, "missing": 0,
           "serious_injuries": injuries, "direct_economic_loss_cny": 0.0,
           "affected_population": 0, "description": "", "publication": "INTERNAL"}
    rec.update(extra)
    return rec


def src(offset: int, arrived: int = T0 + 72 * H) -> Source:
    """The broker's receipt time of the report (LogAppendTime)."""
    return Source("ebi.incidents", 0, offset, 3, arrived, "LogAppendTime")


@pytest.fixture
def proc(ctx: ProcessorContext) -> IncidentProcessor:
    return IncidentProcessor(ctx)


def chain(proc: IncidentProcessor, *reports: dict[str, Any]) -> tuple[list[Any], Any]:
    state = None
    outs = []
    for i, rep in enumerate(reports):   # each received a second after it was filed
        out, state = proc.process(rep, src(i, rep["reported_at"] + 1000), b"inc-1", b"raw",
                                  state, T0 + 3 * 24 * H)
        outs.append(out)
    return outs, state


def test_initial_on_time(proc: IncidentProcessor) -> None:
    [out], state = chain(proc, report("r1"))
    assert out.clean is not None and not out.alerts and not out.dead_letters
    clean = out.clean
    assert clean["late"] is False and clean["late_by_ms"] == 0 and clean["flags"] == []
    assert clean["deadline_at"] == T0 + H // 2 and clean["implied_level"] == "ORDINARY"
    assert state["next_due_at"] == T0 + 24 * H + 1000 and state["next_due_stage"] == "FOLLOW_UP"
    encodes("EnrichedIncidentReport", clean)


def test_late_initial_has_late_by_and_alert(proc: IncidentProcessor, metrics: Metrics) -> None:
    [out], _ = chain(proc, report("r1", reported=T0 + 2 * H))   # due T0 + 0.5 h
    assert out.clean is not None   # received 1 s after it was filed: that second counts
    assert out.clean["late"] is True and out.clean["late_by_ms"] == 3 * H // 2 + 1000
    assert out.clean["flags"] == ["LATE"]
    [alert] = out.alerts
    assert alert["alert_type"] == "LATE_REPORT" and alert["subject_id"] == "inc-1"
    assert value_of(metrics.late_reports, kind="PRODUCTION_SAFETY") == 1


def test_follow_up_deadline_counts_from_previous_report(proc: IncidentProcessor) -> None:
    outs, _ = chain(proc, report("r1"), report("r2", "FOLLOW_UP", reported=T0 + 25 * H))
    second = outs[1].clean
    assert second is not None and second["duplicate"] is False
    assert second["deadline_at"] == T0 + 24 * H + 1000 and second["late_by_ms"] == H


@pytest.mark.parametrize("stage", ["FOLLOW_UP", "SUPPLEMENTARY", "FINAL"])
def test_stage_before_initial_is_rejected(proc: IncidentProcessor, stage: str) -> None:
    [out], state = chain(proc, report("r1", stage))
    assert out.clean is None and state is None
    [dl] = out.dead_letters
    assert dl["error_code"] == "STAGE_ORDER" and dl["record_id"] == "r1"
    assert f"a {stage} report before any INITIAL report" in dl["error_message"]


@pytest.mark.parametrize(("rep", "code"), [
    (report("r1", deaths=-1), "NEGATIVE_FIGURE"),
    (report("r1", region_code="999999"), "BAD_REGION_CODE"),
    (report("r1", occurred=T0 + 2 * H, reported=T0 + 2 * H), "FUTURE_EVENT_TIME"),
])
def test_invalid_reports_are_dead_letters(proc: IncidentProcessor, rep: dict[str, Any],
                                          code: str) -> None:
    out, _ = proc.process(rep, src(0, T0), b"inc-1", b"raw", None, T0)
    [dl] = out.dead_letters
    assert dl["error_code"] == code and out.clean is None


def test_duplicate_report_is_ledgered_and_changes_nothing(proc: IncidentProcessor,
                                                          metrics: Metrics) -> None:
    outs, state = chain(proc, report("r1"), report("r1", deaths=5))
    dup = outs[1].clean
    assert dup is not None and dup["duplicate"] is True and dup["flags"] == ["DUPLICATE"]
    assert not outs[1].alerts and state["figures"]["deaths"] == 0
    assert value_of(metrics.duplicates, type="incident") == 1
    encodes("EnrichedIncidentReport", dup)


def test_concealment_flagged(proc: IncidentProcessor) -> None:
    [out], _ = chain(proc, report("r1", deaths=4))
    assert out.clean is not None and out.clean["implied_level"] == "RELATIVELY_SERIOUS"
    assert out.clean["flags"] == ["SUSPECTED_CONCEALMENT"]
    assert [a["alert_type"] for a in out.alerts] == ["SUSPECTED_CONCEALMENT"]
    assert out.alerts[0]["severity"] == "CRITICAL"
    [ok], _ = chain(proc, report("r1", deaths=4, level="SERIOUS"))
    assert ok.clean is not None and ok.clean["flags"] == []


def test_jump_drop_and_casualties_falling(proc: IncidentProcessor) -> None:
    outs, _ = chain(proc, report("r1", injuries=2),
                    report("r2", "FOLLOW_UP", injuries=20, level="RELATIVELY_SERIOUS"),
                    report("r3", "FOLLOW_UP", injuries=9),
                    report("r4", "FINAL", injuries=4))
    flags = [o.clean["flags"] for o in outs]
    assert flags[1] == ["FIGURE_JUMP"]
    assert flags[2] == ["FIGURE_DROP", "CASUALTIES_FELL"]
    assert flags[3] == ["FIGURE_DROP"]                       # fell in the final: allowed
    assert "CASUALTIES_FELL" in [a["alert_type"] for a in outs[2].alerts]


def test_small_growth_is_not_a_jump(proc: IncidentProcessor) -> None:
    outs, _ = chain(proc, report("r1", injuries=1), report("r2", "FOLLOW_UP", injuries=3))
    assert outs[1].clean["flags"] == []      # 3x but only +2 (< jump_min_delta 10)


def test_deadline_clock_due_soon_then_overdue_once(proc: IncidentProcessor) -> None:
    _, state = chain(proc, report("r1"))
    due = state["next_due_at"]
    assert not proc.check_clock("inc-1", state, due - 2 * H).alerts
    soon = proc.check_clock("inc-1", state, due - H // 2).alerts
    assert [a["alert_type"] for a in soon] == ["REPORT_DUE_SOON"]
    assert not proc.check_clock("inc-1", state, due - H // 4).alerts
    late = proc.check_clock("inc-1", state, due + 1000).alerts
    assert [a["alert_type"] for a in late] == ["REPORT_OVERDUE"]
    assert not proc.check_clock("inc-1", state, due + 2 * H).alerts
    assert proc.overdue(state, due + 1)
    encodes("Alert", late[0])


def test_overdue_without_due_soon_when_first_checked_late(proc: IncidentProcessor) -> None:
    _, state = chain(proc, report("r1"))
    alerts = proc.check_clock("inc-1", state, state["next_due_at"] + H).alerts
    assert [a["alert_type"] for a in alerts] == ["REPORT_OVERDUE"]


def test_final_report_closes_the_clock(proc: IncidentProcessor) -> None:
    _, state = chain(proc, report("r1"), report("r2", "FINAL"))
    assert state["closed"] and not proc.check_clock("inc-1", state, T0 + 100 * H).alerts
    assert proc.expired(state, T0 + 31 * 24 * H)


def test_replay_is_skipped(proc: IncidentProcessor) -> None:
    _out, state = proc.process(report("r1"), src(3), None, b"raw", None, T0)
    again, _ = proc.process(report("r1"), src(3), None, b"raw", state, T0)
    assert again.replay and again.clean is None
