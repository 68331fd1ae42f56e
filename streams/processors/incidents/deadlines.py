"""When each report of an incident is due, and when a report counts as filed.

A report counts as filed at the later of its ``reported_at`` (the sender's claim) and its
receipt (the broker's time, :func:`streams.processors.common.receipt`): a sender can make a
report look later than it was, never earlier. Deadlines:

- INITIAL: the policy's deadline rule for kind, reporting level, declared level and
  industry, counted from ``occurred_at``;
- FOLLOW_UP: counted from the previous report (its filing time); during a major disaster
  the daily zero report of the sender's level replaces it (:meth:`Deadlines.daily_due`);
- SUPPLEMENTARY: the supplementary window from ``occurred_at`` (30 days, 7 for road traffic
  and fire), which also bounds casualty changes (:meth:`Deadlines.window_end`);
- FINAL: once a disaster is marked stable, the final-report allowance (working days) of
  the highest level that has reported it (:meth:`Deadlines.final_due`); otherwise the FINAL
  rule of the deadline table.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from streams.localtime import add_working_days
from streams.policy import Policy
from streams.policy.incidents import REPORTING_RANK
from streams.processors.incidents.state import IncidentState


def ms(delta: Any) -> int:
    return int(delta.total_seconds() * 1000)


class Deadlines:
    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.zone = policy.zone
        rules = policy.reporting
        self.zero = rules.zero_report
        self.final = rules.final_report
        self.day_ms = ms(self.zero.day)
        self.daily_offsets = {level: ms(d) for level, d in self.zero.due.items()}

    def for_report(self, rep: Mapping[str, Any], state: IncidentState,
                   filed: int) -> tuple[int | None, int]:
        """(when this report was due, how late it was filed) — (None, 0) without a deadline."""
        stage, level = rep["stage"], rep["reporting_level"]
        due: int | None
        if stage == "FOLLOW_UP" and state["closed"]:
            due = None                              # after the final report: nothing is due
        elif stage == "FOLLOW_UP" and level in state["daily"]:
            due = state["daily"][level][0]
        elif stage == "FINAL" and state["next_due_stage"] == "FINAL" and state["next_due_at"]:
            due = state["next_due_at"]
        elif stage == "FOLLOW_UP" and state["stable"]:
            due = None                              # the follow-ups had ended
        else:
            rule = self.policy.deadline_rule(rep["kind"], stage, level, rep["declared_level"],
                                             rep.get("industry"))
            if rule is None:
                return None, 0
            start = rep["occurred_at"]
            if rule.start == "previous" and state["last_at"]:
                start = state["last_at"]
            due = start + ms(rule.within)
        if due is None:
            return None, 0
        return due, max(0, filed - due)

    def follow_up_due(self, state: IncidentState) -> int:
        """When the next follow-up of an open incident is due (0: none), from its last
        report."""
        rule = self.policy.deadline_rule(state["kind"], "FOLLOW_UP", state["reporting_level"],
                                         state["level"], state["industry"])
        return 0 if rule is None else state["last_at"] + ms(rule.within)

    def daily_due(self, level: str, filed: int) -> int | None:
        """The due time of the daily report that a report of ``level`` filed at ``filed``
        does not cover: the next reporting day's (its figures are up to that day's start)."""
        offset = self.daily_offsets.get(level)
        if offset is None:
            return None
        return self.zone.day_start(filed, self.day_ms) + self.day_ms + offset

    def day_start_of(self, due: int, level: str) -> int:
        """The start of the reporting day whose daily report is due at ``due``."""
        return due - self.daily_offsets.get(level, 0)

    def final_due(self, stable_at: int, levels: Iterable[str]) -> int:
        """When the final report is due (0: no allowance for these levels)."""
        ranked = sorted((lvl for lvl in set(levels) if lvl in self.final.due),
                        key=REPORTING_RANK.__getitem__)
        if not ranked:
            return 0
        allowance = self.final.due[ranked[-1]]
        if allowance.working_days is not None:
            return add_working_days(stable_at, allowance.working_days, self.zone,
                                    self.final.holidays, self.final.workdays)
        assert allowance.within is not None
        return stable_at + ms(allowance.within)

    def window_end(self, rep: Mapping[str, Any]) -> int | None:
        """The end of the supplementary window (casualty changes) of this report's incident."""
        rule = self.policy.deadline_rule(rep["kind"], "SUPPLEMENTARY", rep["reporting_level"],
                                         rep["declared_level"], rep.get("industry"))
        return None if rule is None else rep["occurred_at"] + ms(rule.within)
