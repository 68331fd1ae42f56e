"""The clocks of an incident: alerts raised when a report does not arrive.

- the next report (``next_due_at``: a FOLLOW_UP, or the FINAL of a stable disaster):
  REPORT_DUE_SOON ``warn_before`` ahead, then REPORT_OVERDUE, once per due time;
- the daily zero report of each level during a major disaster: DAILY_REPORT_OVERDUE for
  every reporting day whose report did not arrive by its due time;
- the escalation: ESCALATION_OVERDUE once, when no report from the escalation level has
  arrived within its time.

An incident *ends* with its FINAL report, or when a report marks it stable and no clock is
left (accidents; a stable disaster waits for its final report). An ended incident leaves
the state table when the dedup horizon has passed since its last report
(:meth:`IncidentClocks.expired`). An open incident never expires: its overdue reports are
real.

:meth:`IncidentClocks.next_due` tells the worker's timer when a state next needs a look: the
earliest time its tick could raise anything or drop it (None: never, until a report comes).
The gauges (open incidents, incidents with a report overdue) come from a summary per
incident kept by the processor and the tick (:class:`IncidentBook`), so they do not need a
pass over every state.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from streams.localtime import local_time, span
from streams.policy import Policy
from streams.policy.incidents import REPORTING_LEVELS, REPORTING_RANK
from streams.processors.common import CANARY_PREFIX, Outputs, make_alert
from streams.processors.incidents.deadlines import Deadlines, ms
from streams.processors.incidents.grading import dead_missing
from streams.processors.incidents.state import IncidentState, complete, mark

if TYPE_CHECKING:
    from streams.processors.base import StateStore
    from streams.processors.context import ProcessorContext

CATCH_UP_DAYS = 31     # missed daily reports alerted in one tick at most (a worker outage)


def ended(state: IncidentState) -> bool:
    """No clock runs any more: a final report, or stable with nothing left due."""
    return state["closed"] or (state["stable"] and not state["next_due_at"])


def overdue_from(state: IncidentState) -> int | None:
    """The time after which the incident has a report overdue (None: nothing due)."""
    if ended(state):
        return None
    dues = [d[0] for d in state["daily"].values()]
    dues += [d for d in (state["next_due_at"], state["escalation_due"]) if d]
    return min(dues) if dues else None


class IncidentBook:
    """Per incident key: (open, overdue_from), for the gauges. Kept in memory by the
    processor (each report) and the clock (each tick); not state: rebuilt as keys are seen.
    The canary's incidents are left out (its late report would keep ``ebi_reports_overdue``
    above 0, and the ReportsOverdue alert firing, after every canary run)."""

    def __init__(self) -> None:
        self.entries: dict[bytes, tuple[bool, int | None]] = {}

    def note(self, key: bytes, state: IncidentState | None) -> None:
        if state is None or key.startswith(CANARY_PREFIX.encode()):
            self.entries.pop(key, None)
        else:
            self.entries[key] = (not ended(state), overdue_from(state))

    def counts(self, now_ms: int) -> tuple[int, int]:
        """(open incidents, open incidents with a report overdue)."""
        open_ = overdue = 0
        for is_open, due in self.entries.values():
            if is_open:
                open_ += 1
                overdue += 1 if due is not None and now_ms > due else 0
        return open_, overdue


class IncidentClocks:
    """The clock checks over one incident's state."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.zone = policy.zone
        self.deadlines = Deadlines(policy)
        self.horizon_ms = ms(policy.incident_dedup_horizon)
        self.warn_ms = ms(policy.warn_before)
        self.escalation_to = policy.reporting.escalation.report_to

    def check(self, incident_id: str, state: IncidentState, now_ms: int) -> Outputs:
        """Every clock alert due by ``now_ms`` and not raised before (marks them raised)."""
        complete(state)
        out = Outputs()
        if ended(state):
            return out
        self._next_report(incident_id, state, now_ms, out)
        self._daily(incident_id, state, now_ms, out)
        self._escalation(incident_id, state, now_ms, out)
        return out

    def next_due(self, state: IncidentState) -> int | None:
        """The earliest ``now_ms`` at which :meth:`check` could raise an alert for this state,
        or the tick drop it (None: never, until a report arrives)."""
        complete(state)
        if ended(state):
            return self.expires_at(state)
        times = []
        due = state["next_due_at"]
        if due:
            raised = state["clock_alerts"]
            if f"REPORT_DUE_SOON@{due}" not in raised:
                times.append(due - self.warn_ms)
            elif f"REPORT_OVERDUE@{due}" not in raised:
                times.append(due + 1)
        for level_due, alerted in state["daily"].values():
            times.append((alerted + self.deadlines.day_ms if alerted else level_due) + 1)
        escalation = state["escalation_due"]
        if escalation and f"ESCALATION_OVERDUE@{escalation}" not in state["clock_alerts"]:
            times.append(escalation + 1)
        return min(times) if times else None

    def expires_at(self, state: IncidentState) -> int:
        """The first time an ended incident may be forgotten."""
        return state["last_at"] + self.horizon_ms + 1

    def expired(self, state: IncidentState, now_ms: int) -> bool:
        """An ended incident with no report within the horizon can be forgotten."""
        complete(state)
        return ended(state) and now_ms >= self.expires_at(state)

    def overdue(self, state: IncidentState, now_ms: int) -> bool:
        complete(state)
        due = overdue_from(state)
        return due is not None and now_ms > due

    # -- the clocks ---------------------------------------------------------------------
    def _next_report(self, incident_id: str, state: IncidentState, now_ms: int,
                     out: Outputs) -> None:
        due = state["next_due_at"]
        if not due:
            return
        stage = state["next_due_stage"]
        for alert_type, starts in (("REPORT_DUE_SOON", due - self.warn_ms),
                                   ("REPORT_OVERDUE", due + 1)):
            if now_ms < starts or not mark(state, f"{alert_type}@{due}"):
                continue
            if alert_type == "REPORT_DUE_SOON" and now_ms > due:
                continue       # already overdue: only the overdue alert
            what = f"a {stage} report of incident {incident_id} (level {state['level']})"
            msg = (f"{what} is due at {local_time(due, self.zone)}, in {span(due - now_ms)}"
                   if alert_type == "REPORT_DUE_SOON" else
                   f"{what} was due at {local_time(due, self.zone)}; none has arrived "
                   f"({span(now_ms - due)} overdue)")
            out.alerts.append(make_alert(alert_type, "incident", incident_id, due, now_ms, msg,
                                         region_code=state["region_code"], value=float(due),
                                         id_extra=stage))

    def _daily(self, incident_id: str, state: IncidentState, now_ms: int,
               out: Outputs) -> None:
        day = self.deadlines.day_ms
        for level in sorted(state["daily"], key=REPORTING_RANK.__getitem__):
            first, alerted = state["daily"][level]
            due = alerted + day if alerted else first
            for _ in range(CATCH_UP_DAYS):
                if now_ms <= due:
                    break
                figures_to = self.deadlines.day_start_of(due, level)
                msg = (f"the daily report of {level} level on disaster {incident_id} (figures "
                       f"up to {local_time(figures_to, self.zone)}) was due at "
                       f"{local_time(due, self.zone)}; none has arrived "
                       f"({span(now_ms - due)} overdue). A zero report is due even when "
                       "nothing changed")
                out.alerts.append(make_alert(
                    "DAILY_REPORT_OVERDUE", "incident", incident_id, due, now_ms, msg,
                    region_code=state["region_code"], value=float(due),
                    id_extra=f"DAILY:{level}"))
                state["daily"][level] = [first, due]
                due += day

    def _escalation(self, incident_id: str, state: IncidentState, now_ms: int,
                    out: Outputs) -> None:
        due = state["escalation_due"]
        if not due or now_ms <= due or not mark(state, f"ESCALATION_OVERDUE@{due}"):
            return
        levels = ", ".join(lvl for lvl in REPORTING_LEVELS if lvl in state["levels"]) or "none"
        msg = (f"disaster {incident_id} ({dead_missing(state['figures'])} dead and missing) has "
               f"reports from {levels} level only: a report from {self.escalation_to} level "
               f"was due at {local_time(due, self.zone)} ({span(now_ms - due)} overdue); the "
               "county reports a disaster this large to the province and the ministry at once")
        out.alerts.append(make_alert("ESCALATION_OVERDUE", "incident", incident_id, due, now_ms,
                                     msg, region_code=state["region_code"], value=float(due),
                                     id_extra="ESCALATION"))


class IncidentClock:
    """The periodic part: the clocks of open incidents, ended incidents leaving the state
    table after the horizon, and the gauges."""

    def __init__(self, ctx: ProcessorContext) -> None:
        self.clocks = IncidentClocks(ctx.policy)
        self.book: IncidentBook = ctx.incident_book
        self.metrics = ctx.metrics

    def next_due(self, state: IncidentState) -> int | None:
        return self.clocks.next_due(state)

    def tick(self, store: StateStore, now_ms: int,
             trusted: Callable[[int | None], bool]) -> tuple[Outputs, list[bytes]]:
        """Over the keys ``store`` offers (all, or those due): alerts due, and ended
        incidents past the horizon removed (``store.put(key, None)``; returned as changed)."""
        out = Outputs()
        changed: list[bytes] = []
        for key in store.owned_keys():
            state = store.get(key)
            if state is None:
                self.book.note(key, None)
                continue
            if self.clocks.expired(state, now_ms):
                store.put(key, None)
                self.book.note(key, None)
                changed.append(key)
                continue
            before = (list(state["clock_alerts"]), {k: list(v) for k, v in
                                                    state.get("daily", {}).items()})
            res = self.clocks.check(key.decode(), state, now_ms)
            out.extend(res)
            if res.alerts or before != (state["clock_alerts"], state["daily"]):
                changed.append(key)
            self.book.note(key, state)
        open_, overdue = self.book.counts(now_ms)
        self.metrics.open_incidents.set(open_)
        self.metrics.reports_overdue.set(overdue)
        return out, changed
