"""The incident-reporting rules beyond the deadline table: which time counts, the
natural-disaster response levels, escalation, the daily zero report, the final-report
clock, the supplementary window, and the time zone of the reporting clocks.

Each is a section of the policy file (``[receipt]``, ``[[disaster_response]]``,
``[escalation]``, ``[zero_report]``, ``[final_report]``, ``[supplementary]``,
``[time_zone]``) with its ``source``; unknown keys are rejected, and a section the file
leaves out is taken from the bundled ``default.toml``. :class:`ReportingRules` is
``Policy.reporting``, the zone ``Policy.zone``.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from importlib import resources
from typing import Any

from streams.localtime import Zone, parse_zone

RESPONSE_LEVELS = ("NONE", "LEVEL_IV", "LEVEL_III", "LEVEL_II", "LEVEL_I")
RESPONSE_RANK = {name: rank for rank, name in enumerate(RESPONSE_LEVELS)}
REPORTING_LEVELS = ("ENTERPRISE", "COUNTY", "CITY", "PROVINCE")
REPORTING_RANK = {name: rank for rank, name in enumerate(REPORTING_LEVELS)}


@dataclass(frozen=True)
class ResponseRow:
    """One row of the relief plan's table: the level and its lower bounds (inclusive)."""

    level: str
    dead_missing: int
    relocated_or_assisted: int
    houses_collapsed_rooms: int
    houses_collapsed_households: int
    drought_assisted_share: float       # of the farming/herding population
    drought_assisted_population: int
    source: str


@dataclass(frozen=True)
class Escalation:
    """A disaster this large is reported by the county to ``report_to`` (and the
    ministry) at once: a report from a lower level raises ESCALATION_REQUIRED, and one
    from ``report_to`` or above is due ``within`` of it (else ESCALATION_OVERDUE)."""

    dead_missing: int
    houses_collapsed_rooms: int
    houses_collapsed_households: int
    report_to: str
    within: timedelta
    source: str


@dataclass(frozen=True)
class ZeroReport:
    """The daily zero report during a major disaster: each level that reports the disaster
    sends, every reporting day, a report by ``due[level]`` after the day's start (local
    time) with the figures up to its start. ``day`` is the reporting day (24 h)."""

    from_response: str
    with_escalation: bool
    replaces_follow_up: bool
    day: timedelta
    due: Mapping[str, timedelta]
    source: str


@dataclass(frozen=True)
class Allowance:
    """Time allowed: ``working_days`` (ends at local 24:00 of the last one) or ``within``."""

    working_days: int | None = None
    within: timedelta | None = None

    def text(self) -> str:
        if self.working_days is not None:
            return f"{self.working_days} working day(s)"
        return str(self.within)


@dataclass(frozen=True)
class FinalReport:
    """Once a disaster is marked stable, its final (verified) report is due within the
    allowance of the highest level that has reported it."""

    due: Mapping[str, Allowance]
    holidays: frozenset[date]
    workdays: frozenset[date]
    source: str


@dataclass(frozen=True)
class Receipt:
    """A report received more than ``late_after`` after its own ``reported_at``:
    RECEIVED_LATE."""

    late_after: timedelta
    source: str


@dataclass(frozen=True)
class Supplementary:
    """Changes of these figures after the supplementary window (the SUPPLEMENTARY deadline
    rules) are flagged LATE_CASUALTY_CHANGE."""

    casualty_figures: tuple[str, ...]
    source: str


@dataclass(frozen=True)
class ReportingRules:
    response: tuple[ResponseRow, ...]
    escalation: Escalation
    zero_report: ZeroReport
    final_report: FinalReport
    receipt: Receipt
    supplementary: Supplementary


# -- parsing ------------------------------------------------------------------------------

def _error(message: str) -> Exception:
    from streams.policy import PolicyError

    return PolicyError(message)


def _bundled() -> dict[str, Any]:
    text = resources.files("streams.policy").joinpath("default.toml").read_text("utf-8")
    return tomllib.loads(text)


def _section(data: Mapping[str, Any], name: str, defaults: dict[str, Any] | None) -> Any:
    if name in data:
        return data[name]
    return (defaults if defaults is not None else _bundled())[name]


def _keys(table: Any, where: str, required: set[str],
          optional: set[str] | frozenset[str] = frozenset()) -> dict[str, Any]:
    if not isinstance(table, dict):
        raise _error(f"{where}: must be a table")
    unknown = sorted(set(table) - required - optional)
    if unknown:
        raise _error(f"{where}: unknown key(s) {', '.join(unknown)}; known: "
                     f"{', '.join(sorted(required | optional))}")
    missing = sorted(required - set(table))
    if missing:
        raise _error(f"{where}: missing key(s) {', '.join(missing)}")
    return table


def _duration(text: Any, where: str) -> timedelta:
    from streams.policy import parse_duration

    return parse_duration(text, where)


def _count(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _error(f"{where}: {value!r} is not a count (a whole number >= 0)")
    return value


def _level(value: Any, where: str, known: tuple[str, ...]) -> str:
    if value not in known:
        raise _error(f"{where}: {value!r} is not one of {', '.join(known)}")
    return str(value)


def _response(rows: Any) -> tuple[ResponseRow, ...]:
    if not isinstance(rows, list) or not rows:
        raise _error("disaster_response: needs at least one [[disaster_response]] row")
    fields = {"level", "dead_missing", "relocated_or_assisted", "houses_collapsed_rooms",
              "houses_collapsed_households", "drought_assisted_share",
              "drought_assisted_population", "source"}
    out = []
    for i, row in enumerate(rows):
        where = f"disaster_response #{i + 1}"
        _keys(row, where, fields)
        share = row["drought_assisted_share"]
        if isinstance(share, bool) or not isinstance(share, int | float) or not 0 < share <= 1:
            raise _error(f"{where}: drought_assisted_share {share!r} is not a share in (0, 1]")
        out.append(ResponseRow(
            level=_level(row["level"], f"{where} level", RESPONSE_LEVELS[1:]),
            **{name: _count(row[name], f"{where} {name}") for name in (
                "dead_missing", "relocated_or_assisted", "houses_collapsed_rooms",
                "houses_collapsed_households", "drought_assisted_population")},
            drought_assisted_share=float(share), source=str(row["source"])))
    levels = [r.level for r in out]
    if levels != sorted(levels, key=RESPONSE_RANK.__getitem__, reverse=True) or \
            len(set(levels)) != len(levels):
        raise _error("disaster_response: rows must run from the highest level down, each "
                     f"level once (got {', '.join(levels)})")
    return tuple(out)


def _escalation(table: Any) -> Escalation:
    where = "escalation"
    _keys(table, where, {"dead_missing", "houses_collapsed_rooms",
                         "houses_collapsed_households", "report_to", "within", "source"})
    return Escalation(
        dead_missing=_count(table["dead_missing"], f"{where} dead_missing"),
        houses_collapsed_rooms=_count(table["houses_collapsed_rooms"],
                                      f"{where} houses_collapsed_rooms"),
        houses_collapsed_households=_count(table["houses_collapsed_households"],
                                           f"{where} houses_collapsed_households"),
        report_to=_level(table["report_to"], f"{where} report_to", REPORTING_LEVELS[1:]),
        within=_duration(table["within"], f"{where} within"), source=str(table["source"]))


def _by_level(table: Mapping[str, Any], where: str, parse: Any) -> dict[str, Any]:
    return {level.upper(): parse(table[level.lower()], f"{where} {level.lower()}")
            for level in REPORTING_LEVELS if level.lower() in table}


def _zero_report(table: Any) -> ZeroReport:
    where = "zero_report"
    levels = {level.lower() for level in REPORTING_LEVELS}
    _keys(table, where, {"from_response", "with_escalation", "replaces_follow_up", "day",
                         "source"}, levels)
    day = _duration(table["day"], f"{where} day")
    due = _by_level(table, where, _duration)
    if day <= timedelta(0) or any(not timedelta(0) <= d < day for d in due.values()):
        raise _error(f"{where}: day must be positive and each level's due time within it")
    for key in ("with_escalation", "replaces_follow_up"):
        if not isinstance(table[key], bool):
            raise _error(f"{where} {key}: {table[key]!r} is not true or false")
    return ZeroReport(
        from_response=_level(table["from_response"], f"{where} from_response",
                             RESPONSE_LEVELS[1:]),
        with_escalation=table["with_escalation"], replaces_follow_up=table["replaces_follow_up"],
        day=day, due=due, source=str(table["source"]))


def _allowance(text: Any, where: str) -> Allowance:
    value = str(text).strip()
    if value.endswith("wd") and value[:-2].strip().isdigit():
        return Allowance(working_days=int(value[:-2]))
    return Allowance(within=_duration(value, f"{where} (working days like 2wd, or a duration)"))


def _dates(values: Any, where: str) -> frozenset[date]:
    if not isinstance(values, list):
        raise _error(f"{where}: must be a list of dates like \"2026-10-01\"")
    out = set()
    for value in values:
        try:
            out.add(value if isinstance(value, date) else date.fromisoformat(str(value)))
        except ValueError:
            raise _error(f"{where}: {value!r} is not a date like 2026-10-01") from None
    return frozenset(out)


def _final_report(table: Any) -> FinalReport:
    where = "final_report"
    levels = {level.lower() for level in REPORTING_LEVELS}
    _keys(table, where, {"source"}, levels | {"holidays", "workdays"})
    return FinalReport(due=_by_level(table, where, _allowance),
                       holidays=_dates(table.get("holidays", []), f"{where} holidays"),
                       workdays=_dates(table.get("workdays", []), f"{where} workdays"),
                       source=str(table["source"]))


def _receipt(table: Any) -> Receipt:
    _keys(table, "receipt", {"late_after", "source"})
    return Receipt(_duration(table["late_after"], "receipt late_after"), str(table["source"]))


def _supplementary(table: Any) -> Supplementary:
    from streams.records.rules import FIGURES

    _keys(table, "supplementary", {"casualty_figures", "source"})
    names = table["casualty_figures"]
    if not isinstance(names, list) or any(n not in FIGURES for n in names):
        raise _error(f"supplementary casualty_figures: {names!r} must name figures of "
                     f"{', '.join(FIGURES)}")
    return Supplementary(tuple(names), str(table["source"]))


def parse_reporting(data: Mapping[str, Any], defaults: dict[str, Any] | None = None
                    ) -> ReportingRules:
    """The reporting rules of a policy file's data (missing sections: the bundled ones)."""
    if defaults is None and not all(name in data for name in _SECTIONS):
        defaults = _bundled()
    return ReportingRules(
        response=_response(_section(data, "disaster_response", defaults)),
        escalation=_escalation(_section(data, "escalation", defaults)),
        zero_report=_zero_report(_section(data, "zero_report", defaults)),
        final_report=_final_report(_section(data, "final_report", defaults)),
        receipt=_receipt(_section(data, "receipt", defaults)),
        supplementary=_supplementary(_section(data, "supplementary", defaults)))


def parse_time_zone(data: Mapping[str, Any]) -> Zone:
    table = _keys(_section(data, "time_zone", None), "time_zone",
                  {"name", "utc_offset", "source"})
    try:
        return parse_zone(table["name"], table["utc_offset"])
    except ValueError as exc:
        raise _error(f"time_zone: {exc}") from None


def default_reporting() -> ReportingRules:
    return parse_reporting(_bundled())


_SECTIONS = ("disaster_response", "escalation", "zero_report", "final_report", "receipt",
             "supplementary")
