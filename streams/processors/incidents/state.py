"""One incident's state (the ``incidents`` table value keyed by incident_id).

The fields of the first named layout:

- ``reports``: report_id -> ``[packed source coordinates, reported_at]`` for the reports
  within the dedup horizon (30 days by default);
- ``stages``: the stages reported so far, in the order first seen;
- ``figures``: the figures of the last accepted report (:data:`FIGURES`);
- ``last_reported_at``: the latest reported_at of an accepted report (ms, the sender's);
- ``kind``, ``reporting_level``, ``industry``, ``region_code``: those of the last accepted
  report; ``level``: its declared level or the level its figures imply, whichever is higher
  (disasters: the accident level standing for the response level, see :mod:`.grading`);
- ``next_due_at``: when the next report is due (ms; 0: none) and ``next_due_stage``: which
  stage ("FOLLOW_UP", "FINAL" once a disaster is stable; "" for none);
- ``clock_alerts``: the deadline-clock alerts already raised, as ``"TYPE@due"`` (the last 16);
- ``closed``: a FINAL report arrived (the clocks stop; later reports do not reopen it);
- ``applied``: packed coordinates of the last message applied to this state.

Added with the reporting rules (``NotRequired``: a state written before them gets them from
:func:`complete`, which every reader calls first):

- ``last_at``: when the latest accepted report counts as filed: the later of its
  reported_at and its receipt (ms). Clocks count from it;
- ``levels``: the reporting levels that have reported the incident, first seen first;
  ``initial_levels``: those that sent an INITIAL report;
- ``response``: disasters: the higher of the declared and the implied response level of the
  last report ("" for accidents);
- ``stable``, ``stable_at``: a report marked the situation stable (and when it was filed);
- ``daily``: during a major disaster, per reporting level ``[due, alerted]``: when its next
  daily report is due (the first one not yet received) and the last due already alerted
  DAILY_REPORT_OVERDUE (0: none);
- ``escalation_due``: when a report from the escalation level is due (0: none required).
"""

from __future__ import annotations

from typing import Any, NotRequired, TypedDict

from streams.records.rules import FIGURES

MARKS_KEPT = 16


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
    last_at: NotRequired[int]
    levels: NotRequired[list[str]]
    initial_levels: NotRequired[list[str]]
    response: NotRequired[str]
    stable: NotRequired[bool]
    stable_at: NotRequired[int]
    daily: NotRequired[dict[str, list[int]]]
    escalation_due: NotRequired[int]


def new_incident_state() -> IncidentState:
    state: IncidentState = {
        "reports": {}, "stages": [], "figures": {}, "last_reported_at": 0, "kind": "",
        "level": "", "reporting_level": "", "industry": None, "region_code": "",
        "next_due_at": 0, "next_due_stage": "", "clock_alerts": [], "closed": False}
    return complete(state)


def complete(state: Any) -> IncidentState:
    """``state`` with every field of the current layout (in place; idempotent): a state
    written before a field existed gets what that field would have held."""
    level = state.get("reporting_level", "")
    state.setdefault("last_at", state.get("last_reported_at", 0))
    state.setdefault("levels", [level] if level else [])
    # which levels sent the INITIAL was not kept: the last reporting level stands in
    state.setdefault("initial_levels",
                     [level] if level and "INITIAL" in state.get("stages", ()) else [])
    state.setdefault("response", "")
    state.setdefault("stable", False)
    state.setdefault("stable_at", 0)
    state.setdefault("daily", {})
    state.setdefault("escalation_due", 0)
    figures = state.get("figures")
    if figures:
        for name in FIGURES:
            figures.setdefault(name, 0)
    return state


def mark(state: IncidentState, text: str) -> bool:
    """Record a clock alert as raised; False when it was raised before."""
    raised = state["clock_alerts"]
    if text in raised:
        return False
    raised.append(text)
    del raised[:-MARKS_KEPT]
    return True
