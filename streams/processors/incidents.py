"""Incident reports: stage order, deduplication, timeliness, concealment and figure changes,
and the deadline clocks of open incidents.

State, one dict per incident (:class:`IncidentState`, the ``incidents`` table value keyed by
incident_id):

- ``reports``: report_id -> ``[packed source coordinates, reported_at]`` for the reports
  within the dedup horizon (30 days by default);
- ``stages``: the stages reported so far, in the order first seen;
- ``figures``: the casualty and loss figures of the last accepted report;
- ``last_reported_at``: the latest reported_at of an accepted report (ms);
- ``kind``, ``reporting_level``, ``industry``, ``region_code``: those of the last accepted
  report; ``level``: its declared level or the level its figures imply, whichever is higher;
- ``next_due_at``: when the next report is due (ms; 0: none) and ``next_due_stage``: which
  stage ("FOLLOW_UP"; "" for none);
- ``clock_alerts``: the deadline-clock alerts already raised, as ``"TYPE@due"`` (the last 8);
- ``closed``: a FINAL report arrived (the clocks stop);
- ``applied``: packed coordinates of the last message applied to this state.

A report id seen before under other coordinates is a duplicate: it is ledgered on the clean
topic with ``duplicate=true`` and changes nothing. A follow-up with a new report id is not a
duplicate: it advances the incident. States written before these field names are converted
when first read (:mod:`.layouts`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, NotRequired, TypedDict

from schemas.records import Record, Source, dead_letter
from streams.processors.common import (
    LEVEL_RANK,
    LEVELS,
    Outputs,
    already_applied,
    arrival_ms,
    canary_tag,
    make_alert,
    rejection,
)
from streams.records.rules import FIGURES, check_incident, implied_level

if TYPE_CHECKING:
    from streams.processors.base import StateStore
    from streams.processors.context import ProcessorContext

CASUALTIES = ("deaths", "serious_injuries")
FLAG_ALERTS = ("SUSPECTED_CONCEALMENT", "FIGURE_JUMP", "FIGURE_DROP", "CASUALTIES_FELL",
               "LATE_REPORT")


class IncidentState(TypedDict):
    """One incident's state (see the module docstring)."""

    reports: dict[str, list[int]]
    stages: list[str]
    figures: dict[str, float]
    last_reported_at: int
    kind: str
    level: str
    reporting_level: str
    industry: str | None
    region_code: str
    next_due_at: int
    next_due_stage: str
    clock_alerts: list[str]
    closed: bool
    applied: NotRequired[int]


def new_incident_state() -> IncidentState:
    return {"reports": {}, "stages": [], "figures": {}, "last_reported_at": 0, "kind": "",
            "level": "", "reporting_level": "", "industry": None, "region_code": "",
            "next_due_at": 0, "next_due_stage": "", "clock_alerts": [], "closed": False}


class IncidentProcessor:
    def __init__(self, ctx: ProcessorContext) -> None:
        policy = self.policy = ctx.policy
        self.metrics = ctx.metrics
        self.horizon_ms = int(policy.incident_dedup_horizon.total_seconds() * 1000)
        self.warn_ms = int(policy.warn_before.total_seconds() * 1000)
        self.close_after_final = bool(policy.raw.get("clocks", {}).get("close_after_final",
                                                                       True))

    def process(self, rep: Record, source: Source, key: bytes | None, value: bytes,
                state: IncidentState | None, now_ms: int) -> tuple[Outputs, IncidentState | None]:
        if already_applied(state, "applied", source):
            return Outputs(replay=True), state
        out = Outputs()
        incident_id, report_id, stage = rep["incident_id"], rep["report_id"], rep["stage"]
        tag = canary_tag(incident_id, report_id)
        arrival = arrival_ms(source, now_ms)
        where = f"report {report_id} ({stage}) of incident {incident_id}"
        problems = check_incident(rep, self.policy, arrival)
        if not problems and stage != "INITIAL" and (
                state is None or "INITIAL" not in state["stages"]):
            code, why = "STAGE_ORDER", f"a {stage} report before any INITIAL report"
        elif problems:
            code, why = rejection(problems)
        else:
            code = ""
        if code:
            out.dead_letters.append(dead_letter(source, key, value, code, f"{where}: {why}",
                                                "validate", now_ms, record_id=report_id, tag=tag))
            return out, state
        if state is None:
            state = new_incident_state()
        seen = state["reports"].get(report_id)
        duplicate = seen is not None and seen[0] != source.packed
        implied = implied_level(rep["deaths"], rep.get("serious_injuries", 0),
                                rep.get("direct_economic_loss_cny", 0.0))
        flags: list[str] = []
        deadline_at: int | None = None
        late_by = 0
        if duplicate:
            flags.append("DUPLICATE")
            self.metrics.duplicates.labels("incident").inc()
        else:
            deadline_at, late_by = self._deadline(rep, state)
            if late_by > 0:
                flags.append("LATE")
                self.metrics.late_reports.labels(rep["kind"]).inc()
            if LEVEL_RANK[rep["declared_level"]] < LEVEL_RANK[implied]:
                flags.append("SUSPECTED_CONCEALMENT")
            flags += self._figure_flags(rep, state)
            self._advance(rep, state, source, implied, arrival)
            for flag in flags:
                alert_type = "LATE_REPORT" if flag == "LATE" else flag
                if alert_type in FLAG_ALERTS:
                    out.alerts.append(self._alert(alert_type, rep, implied, deadline_at,
                                                  late_by, now_ms))
        state["applied"] = source.packed
        out.clean = dict(rep)
        out.clean.update(source=source.record(), received_at=now_ms, duplicate=duplicate,
                         implied_level=implied, deadline_at=deadline_at, late=late_by > 0,
                         late_by_ms=late_by, flags=flags, tag=tag)
        return out, state

    def _deadline(self, rep: Record, state: IncidentState) -> tuple[int | None, int]:
        rule = self.policy.deadline_rule(rep["kind"], rep["stage"], rep["reporting_level"],
                                         rep["declared_level"], rep.get("industry"))
        if rule is None:
            return None, 0
        start = rep["occurred_at"]
        if rule.start == "previous" and state["last_reported_at"]:
            start = state["last_reported_at"]
        deadline_at = start + int(rule.within.total_seconds() * 1000)
        return deadline_at, max(0, rep["reported_at"] - deadline_at)

    def _figure_flags(self, rep: Record, state: IncidentState) -> list[str]:
        last = state["figures"]
        if not last:
            return []
        p = self.policy
        flags: list[str] = []
        for name in FIGURES:
            before, now = last.get(name, 0), rep.get(name, 0)
            if now >= before * p.jump_ratio and now - before >= p.jump_min_delta:
                if "FIGURE_JUMP" not in flags:
                    flags.append("FIGURE_JUMP")
            elif before > 0 and now <= before * p.drop_ratio and "FIGURE_DROP" not in flags:
                flags.append("FIGURE_DROP")
        if rep["stage"] != "FINAL" and any(rep.get(n, 0) < last.get(n, 0) for n in CASUALTIES):
            flags.append("CASUALTIES_FELL")
        return flags

    def _advance(self, rep: Record, state: IncidentState, source: Source, implied: str,
                 arrival: int) -> None:
        """A new report moves the incident on: figures, stages and the next deadline."""
        reported = rep["reported_at"]
        reports = state["reports"]
        reports[rep["report_id"]] = [source.packed, reported]
        cutoff = arrival - self.horizon_ms
        for rid in [rid for rid, (_, at) in reports.items() if at < cutoff]:
            del reports[rid]
        if rep["stage"] not in state["stages"]:
            state["stages"].append(rep["stage"])
        state["figures"] = {name: rep.get(name, 0) for name in FIGURES}
        state["last_reported_at"] = max(state["last_reported_at"], reported)
        level = max(rep["declared_level"], implied, key=LEVEL_RANK.__getitem__)
        state["kind"] = rep["kind"]
        state["level"] = level
        state["reporting_level"] = rep["reporting_level"]
        state["industry"] = rep.get("industry")
        state["region_code"] = rep["region_code"]
        if rep["stage"] == "FINAL" and self.close_after_final:
            state["closed"] = True
            rule = None
        else:
            rule = self.policy.deadline_rule(rep["kind"], "FOLLOW_UP", rep["reporting_level"],
                                             level, rep.get("industry"))
        state["next_due_at"] = 0 if rule is None else \
            state["last_reported_at"] + int(rule.within.total_seconds() * 1000)
        state["next_due_stage"] = "" if rule is None else "FOLLOW_UP"

    def _alert(self, alert_type: str, rep: Record, implied: str, deadline_at: int | None,
               late_by: int, now_ms: int) -> Record:
        incident, report = rep["incident_id"], rep["report_id"]
        head = f"report {report} ({rep['stage']}) of incident {incident}"
        value: float | None = None
        threshold: float | None = None
        if alert_type == "LATE_REPORT":
            msg = f"{head} filed {late_by / 60000:.1f} min after its deadline {deadline_at}"
            value = late_by / 1000
        elif alert_type == "SUSPECTED_CONCEALMENT":
            msg = (f"{head} declares {rep['declared_level']} but its figures (deaths "
                   f"{rep['deaths']}, serious injuries {rep.get('serious_injuries', 0)}, loss "
                   f"{rep.get('direct_economic_loss_cny', 0.0):.0f} CNY) imply {implied} (瞒报?)")
            value, threshold = float(LEVEL_RANK[rep["declared_level"]]), float(LEVEL_RANK[implied])
        elif alert_type == "CASUALTIES_FELL":
            msg = f"{head}: casualty figures fell without a final report"
        else:
            msg = f"{head}: a sharp {'rise' if alert_type == 'FIGURE_JUMP' else 'fall'} in " \
                  "its figures since the previous report must be explained"
        return make_alert(alert_type, "incident", incident, rep["reported_at"], now_ms, msg,
                          region_code=rep["region_code"], value=value, threshold=threshold,
                          id_extra=report, tag=canary_tag(incident, report))

    def check_clock(self, incident_id: str, state: IncidentState, now_ms: int) -> Outputs:
        """The periodic check: REPORT_DUE_SOON, then REPORT_OVERDUE, once per due report."""
        out = Outputs()
        due = state["next_due_at"]
        if not due or state["closed"]:
            return out
        for alert_type, starts in (("REPORT_DUE_SOON", due - self.warn_ms),
                                   ("REPORT_OVERDUE", due + 1)):
            mark = f"{alert_type}@{due}"
            raised = state["clock_alerts"]
            if now_ms >= starts and mark not in raised:
                raised.append(mark)
                del raised[:-8]
                if alert_type == "REPORT_DUE_SOON" and now_ms > due:
                    continue       # already overdue: only the overdue alert
                what = (f"a {state['next_due_stage']} report of incident {incident_id} "
                        f"(level {state['level']})")
                msg = (f"{what} is due at {due}, in {(due - now_ms) // 60000} min"
                       if alert_type == "REPORT_DUE_SOON" else
                       f"{what} was due at {due}; none has arrived "
                       f"({(now_ms - due) // 60000} min overdue)")
                out.alerts.append(make_alert(alert_type, "incident", incident_id, due, now_ms,
                                             msg, region_code=state["region_code"],
                                             value=float(due),
                                             id_extra=state["next_due_stage"]))
        return out

    @staticmethod
    def overdue(state: IncidentState, now_ms: int) -> bool:
        due = state["next_due_at"]
        return bool(due) and not state["closed"] and now_ms > due

    def expired(self, state: IncidentState, now_ms: int) -> bool:
        """A closed incident with no report within the horizon can be forgotten."""
        return state["closed"] and now_ms - state["last_reported_at"] > self.horizon_ms


class IncidentClock:
    """The periodic part: deadline clocks of open incidents, and their gauges."""

    def __init__(self, ctx: ProcessorContext) -> None:
        self.incidents = IncidentProcessor(ctx)
        self.metrics = ctx.metrics

    def tick(self, store: StateStore, now_ms: int,
             trusted: Callable[[int | None], bool]) -> tuple[Outputs, list[bytes]]:
        out = Outputs()
        changed: list[bytes] = []
        open_, overdue = 0, 0
        for key in store.owned_keys():
            state = store.get(key)
            if state is None or state["closed"]:
                continue
            open_ += 1
            overdue += 1 if self.incidents.overdue(state, now_ms) else 0
            res = self.incidents.check_clock(key.decode(), state, now_ms)
            if res.alerts:
                out.extend(res)
                changed.append(key)
        self.metrics.open_incidents.set(open_)
        self.metrics.reports_overdue.set(overdue)
        return out, changed


__all__ = ["LEVELS", "IncidentClock", "IncidentProcessor", "IncidentState", "new_incident_state"]
