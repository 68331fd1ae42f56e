"""One incident report at a time: validation, stage order, deduplication, timeliness,
grading and concealment, figure changes, escalation, and the incident's next clocks."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from schemas.records import Record, Source, dead_letter
from streams.localtime import local_time, span
from streams.policy.incidents import REPORTING_RANK, RESPONSE_RANK
from streams.processors.common import (
    LEVEL_RANK,
    Outputs,
    already_applied,
    canary_tag,
    make_alert,
    receipt,
    rejection,
)
from streams.processors.incidents.clocks import IncidentClocks
from streams.processors.incidents.deadlines import ms
from streams.processors.incidents.grading import (
    DISASTER,
    Grade,
    dead_missing,
    describe,
    escalation_met,
    grade,
)
from streams.processors.incidents.state import IncidentState, complete, new_incident_state
from streams.records.rules import FIGURES, check_incident

if TYPE_CHECKING:
    from streams.processors.context import ProcessorContext

CASUALTIES = ("deaths", "serious_injuries")
# figures compared between successive reports (the farming population is a denominator)
TRACKED = tuple(name for name in FIGURES if name != "farming_population")
FLAG_ALERTS = ("SUSPECTED_CONCEALMENT", "FIGURE_JUMP", "FIGURE_DROP", "CASUALTIES_FELL",
               "LATE_REPORT", "RECEIVED_LATE", "LATE_CASUALTY_CHANGE", "REPEATED_INITIAL",
               "REPORT_AFTER_FINAL", "ESCALATION_REQUIRED")


class IncidentProcessor:
    def __init__(self, ctx: ProcessorContext) -> None:
        policy = self.policy = ctx.policy
        self.metrics = ctx.metrics
        self.book = ctx.incident_book
        self.zone = policy.zone
        self.rules = policy.reporting
        self.clocks = IncidentClocks(policy)
        self.deadlines = self.clocks.deadlines
        self.horizon_ms = ms(policy.incident_dedup_horizon)
        self.received_late_ms = ms(self.rules.receipt.late_after)
        self.close_after_final = bool(policy.raw.get("clocks", {}).get("close_after_final",
                                                                       True))

    def process(self, rep: Record, source: Source, key: bytes | None, value: bytes,
                state: IncidentState | None, now_ms: int) -> tuple[Outputs, IncidentState | None]:
        if already_applied(state, "applied", source):
            return Outputs(replay=True), state
        out = Outputs()
        incident_id, report_id, stage = rep["incident_id"], rep["report_id"], rep["stage"]
        tag = canary_tag(incident_id, report_id)
        received, receipt_clock = receipt(source, now_ms)
        where = f"report {report_id} ({stage}) of incident {incident_id}"
        problems = check_incident(rep, self.policy, received)
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
        state = new_incident_state() if state is None else complete(state)
        seen = state["reports"].get(report_id)
        duplicate = seen is not None and seen[0] != source.packed
        graded = grade(rep, self.rules.response)
        flags: list[str] = []
        deadline_at: int | None = None
        late_by = 0
        if duplicate:
            flags.append("DUPLICATE")
            self.metrics.duplicates.labels("incident").inc()
        else:
            filed = max(rep["reported_at"], received)
            deadline_at, late_by = self.deadlines.for_report(rep, state, filed)
            if late_by > 0:
                flags.append("LATE")
                self.metrics.late_reports.labels(rep["kind"]).inc()
            if received - rep["reported_at"] > self.received_late_ms:
                flags.append("RECEIVED_LATE")
            if graded.concealed:
                flags.append("SUSPECTED_CONCEALMENT")
            flags += self._figure_flags(rep, state)
            window_end = self._late_change(rep, state, filed)
            if window_end is not None:
                flags.append("LATE_CASUALTY_CHANGE")
            if stage == "INITIAL" and rep["reporting_level"] in state["initial_levels"]:
                flags.append("REPEATED_INITIAL")
            if state["closed"] and stage in ("INITIAL", "FOLLOW_UP"):
                flags.append("REPORT_AFTER_FINAL")
            if self._escalation(rep, state, filed):
                flags.append("ESCALATION_REQUIRED")
            previous = dict(state["figures"])
            self._advance(rep, state, source, graded, filed, received)
            facts = _Facts(rep, graded, deadline_at, late_by, received, filed, window_end,
                           previous, state)
            for flag in flags:
                alert_type = "LATE_REPORT" if flag == "LATE" else flag
                if alert_type in FLAG_ALERTS:
                    out.alerts.append(self._alert(alert_type, facts, now_ms))
        state["applied"] = source.packed
        self.book.note(incident_id.encode(), state)
        out.clean = dict(rep)
        out.clean.update(source=source.record(), received_at=now_ms, duplicate=duplicate,
                         implied_level=graded.implied_level,
                         implied_response=graded.implied_response, deadline_at=deadline_at,
                         late=late_by > 0, late_by_ms=late_by, flags=flags, tag=tag,
                         receipt_at=received, receipt_clock=receipt_clock)
        return out, state

    # -- checks -----------------------------------------------------------------------------
    def _figure_flags(self, rep: Record, state: IncidentState) -> list[str]:
        last = state["figures"]
        if not last:
            return []
        p = self.policy
        flags: list[str] = []
        for name in TRACKED:
            before, now = last.get(name, 0), rep.get(name, 0)
            if now >= before * p.jump_ratio and now - before >= p.jump_min_delta:
                if "FIGURE_JUMP" not in flags:
                    flags.append("FIGURE_JUMP")
            elif before > 0 and now <= before * p.drop_ratio and "FIGURE_DROP" not in flags:
                flags.append("FIGURE_DROP")
        if rep["stage"] != "FINAL" and any(rep.get(n, 0) < last.get(n, 0) for n in CASUALTIES):
            flags.append("CASUALTIES_FELL")
        return flags

    def _late_change(self, rep: Record, state: IncidentState, filed: int) -> int | None:
        """The end of the supplementary window when this report, filed after it, changes
        casualty figures; else None."""
        last = state["figures"]
        end = self.deadlines.window_end(rep)
        if not last or end is None or filed <= end:
            return None
        names = self.rules.supplementary.casualty_figures
        return end if any(rep.get(n, 0) != last.get(n, 0) for n in names) else None

    def _escalation(self, rep: Record, state: IncidentState, filed: int) -> bool:
        """Whether this report makes an escalation required (and starts its clock); a report
        from the escalation level satisfies it."""
        rule = self.rules.escalation
        if rep["kind"] != DISASTER:
            return False
        target = REPORTING_RANK[rule.report_to]
        if REPORTING_RANK[rep["reporting_level"]] >= target:
            state["escalation_due"] = 0
            return False
        if any(REPORTING_RANK.get(lvl, -1) >= target for lvl in state["levels"]):
            return False
        if state["escalation_due"] or state["closed"] or not escalation_met(rep, rule):
            return False
        state["escalation_due"] = filed + ms(rule.within)
        return True

    # -- state --------------------------------------------------------------------------------
    def _advance(self, rep: Record, state: IncidentState, source: Source, graded: Grade,
                 filed: int, received: int) -> None:
        """A new report moves the incident on: figures, stages, levels and its clocks."""
        stage, level = rep["stage"], rep["reporting_level"]
        reports = state["reports"]
        reports[rep["report_id"]] = [source.packed, rep["reported_at"]]
        cutoff = received - self.horizon_ms
        for rid in [rid for rid, (_, at) in reports.items() if at < cutoff]:
            del reports[rid]
        if stage not in state["stages"]:
            state["stages"].append(stage)
        if level not in state["levels"]:
            state["levels"].append(level)
        if stage == "INITIAL" and level not in state["initial_levels"]:
            state["initial_levels"].append(level)
        state["figures"] = {name: rep.get(name, 0) for name in FIGURES}
        state["last_reported_at"] = max(state["last_reported_at"], rep["reported_at"])
        state["last_at"] = max(state["last_at"], filed)
        state["kind"] = rep["kind"]
        state["level"] = max(rep["declared_level"], graded.implied_level,
                             key=LEVEL_RANK.__getitem__)
        state["reporting_level"] = level
        state["industry"] = rep.get("industry")
        state["region_code"] = rep["region_code"]
        state["response"] = graded.response
        if rep.get("stable"):
            if not state["stable"]:
                state["stable"], state["stable_at"] = True, filed
        elif stage == "FOLLOW_UP" and state["stable"] and not state["closed"]:
            state["stable"], state["stable_at"] = False, 0     # the situation changed again
            if state["next_due_stage"] == "FINAL":
                state["next_due_at"], state["next_due_stage"] = 0, ""
        if stage == "FINAL" and self.close_after_final:
            state["closed"] = True
        self._clocks(rep, state, filed)

    def _clocks(self, rep: Record, state: IncidentState, filed: int) -> None:
        if state["closed"]:
            state["next_due_at"], state["next_due_stage"] = 0, ""
            state["daily"], state["escalation_due"] = {}, 0
            return
        if state["stable"]:
            state["daily"] = {}
            if state["kind"] == DISASTER and state["next_due_stage"] != "FINAL":
                due = self.deadlines.final_due(state["stable_at"], state["levels"])
                state["next_due_at"], state["next_due_stage"] = due, "FINAL" if due else ""
            elif state["kind"] != DISASTER:
                state["next_due_at"], state["next_due_stage"] = 0, ""
            return
        zero = self.rules.zero_report
        if self._major(state):
            daily = state["daily"]
            for level in dict.fromkeys([*state["initial_levels"], *state["levels"]]):
                daily_due = self.deadlines.daily_due(level, filed)
                if daily_due is not None and (level == rep["reporting_level"] or
                                              level not in daily):
                    daily[level] = [daily_due, 0]
            if zero.replaces_follow_up and daily:
                state["next_due_at"], state["next_due_stage"] = 0, ""
                return
        else:
            state["daily"] = {}
        due = self.deadlines.follow_up_due(state)
        state["next_due_at"], state["next_due_stage"] = due, "FOLLOW_UP" if due else ""

    def _major(self, state: IncidentState) -> bool:
        """A major disaster: the daily zero report applies."""
        zero = self.rules.zero_report
        if state["kind"] != DISASTER:
            return False
        if RESPONSE_RANK.get(state["response"] or "NONE", 0) >= RESPONSE_RANK[zero.from_response]:
            return True
        return zero.with_escalation and escalation_met(state["figures"], self.rules.escalation)

    # -- the clock, as the processor's (kept for callers of the earlier interface) ---------
    def check_clock(self, incident_id: str, state: IncidentState, now_ms: int) -> Outputs:
        return self.clocks.check(incident_id, state, now_ms)

    def overdue(self, state: IncidentState, now_ms: int) -> bool:
        return self.clocks.overdue(state, now_ms)

    def expired(self, state: IncidentState, now_ms: int) -> bool:
        return self.clocks.expired(state, now_ms)

    # -- alerts -------------------------------------------------------------------------------
    def _alert(self, alert_type: str, f: _Facts, now_ms: int) -> Record:
        rep, z = f.rep, self.zone
        incident, report = rep["incident_id"], rep["report_id"]
        head = f"report {report} ({rep['stage']}, {rep['reporting_level']} level) of incident " \
               f"{incident}"
        value: float | None = None
        threshold: float | None = None
        if alert_type == "LATE_REPORT":
            msg = (f"{head} filed {local_time(f.filed, z)}, {span(f.late_by)} after its "
                   f"deadline {local_time(f.deadline_at, z)}")
            value = f.late_by / 1000
        elif alert_type == "RECEIVED_LATE":
            lag = f.received - rep["reported_at"]
            msg = (f"{head} says it was filed at {local_time(rep['reported_at'], z)} but reached "
                   f"the platform at {local_time(f.received, z)}, {span(lag)} later (over "
                   f"{span(self.received_late_ms)}): its lateness counts from its receipt")
            value, threshold = lag / 1000, self.received_late_ms / 1000
        elif alert_type == "SUSPECTED_CONCEALMENT" and f.grade.disaster:
            msg = (f"{head} declares response {f.grade.declared} but its figures "
                   f"({describe(rep)}) imply {f.grade.implied} under the national relief plan "
                   "(瞒报?)")
            value = float(RESPONSE_RANK[f.grade.declared])
            threshold = float(RESPONSE_RANK[f.grade.implied])
        elif alert_type == "SUSPECTED_CONCEALMENT":
            msg = (f"{head} declares {rep['declared_level']} but its figures (deaths "
                   f"{rep['deaths']}, serious injuries {rep.get('serious_injuries', 0)}, loss "
                   f"{rep.get('direct_economic_loss_cny', 0.0):.0f} CNY) imply "
                   f"{f.grade.implied} (瞒报?)")
            value = float(LEVEL_RANK[rep["declared_level"]])
            threshold = float(LEVEL_RANK[f.grade.implied])
        elif alert_type == "CASUALTIES_FELL":
            msg = f"{head}: casualty figures fell without a final report"
        elif alert_type == "LATE_CASUALTY_CHANGE":
            changes = ", ".join(f"{n} {f.previous.get(n, 0)} -> {rep.get(n, 0)}"
                                for n in self.rules.supplementary.casualty_figures
                                if rep.get(n, 0) != f.previous.get(n, 0))
            msg = (f"{head} changes casualty figures ({changes}) on {local_time(f.filed, z)}, "
                   f"after the supplementary window closed at {local_time(f.window_end, z)}: "
                   "the change must be explained")
        elif alert_type == "REPEATED_INITIAL":
            msg = (f"{head}: incident {incident} already has an INITIAL report from "
                   f"{rep['reporting_level']} level; a later report is a FOLLOW_UP")
        elif alert_type == "REPORT_AFTER_FINAL":
            msg = (f"{head} arrived after the incident's final report (核报): it is stored but "
                   "does not reopen the incident; a correction is a SUPPLEMENTARY or a new "
                   "FINAL report")
        elif alert_type == "ESCALATION_REQUIRED":
            rule = self.rules.escalation
            msg = (f"disaster {incident}: {describe(rep)} reported from "
                   f"{rep['reporting_level']} level only; a disaster this large is reported by "
                   f"the county to the province and the ministry at the same time: a report "
                   f"from {rule.report_to} level is due by "
                   f"{local_time(f.state['escalation_due'], z)}")
            value = float(dead_missing(rep))
            threshold = float(rule.dead_missing)
        else:
            msg = f"{head}: a sharp {'rise' if alert_type == 'FIGURE_JUMP' else 'fall'} in " \
                  "its figures since the previous report must be explained"
        return make_alert(alert_type, "incident", incident, rep["reported_at"], now_ms, msg,
                          region_code=rep["region_code"], value=value, threshold=threshold,
                          id_extra=report, tag=canary_tag(incident, report))


class _Facts:
    """What one report's alerts are written from."""

    __slots__ = ("deadline_at", "filed", "grade", "late_by", "previous", "received", "rep",
                 "state", "window_end")

    def __init__(self, rep: Record, graded: Grade, deadline_at: int | None, late_by: int,
                 received: int, filed: int, window_end: int | None,
                 previous: Mapping[str, Any], state: IncidentState) -> None:
        self.rep, self.grade, self.deadline_at, self.late_by = rep, graded, deadline_at, late_by
        self.received, self.filed, self.window_end = received, filed, window_end
        self.previous, self.state = previous, state
