"""Semantic checks of single records: region codes, ranges, units, figures, clocks.

Plain, pure functions over records (Avro-ready dicts or decoded records: timestamps may be
int epoch millis or aware datetimes). Each returns a list of :class:`Violation`; an empty list
means the record passes. ``ebi publish`` runs them before sending and the stream worker runs
them on every decoded record, so they stay fast and side-effect free. The only reference data
is the GB/T 2260 division table (:mod:`streams.records.regions`): a region code of the right
shape (else BAD_REGION_CODE) must be a current division (else UNKNOWN_REGION_CODE, which names
the successor of a retired code). The policy names the table (``Policy.region_table``, empty:
the bundled one), which is read once, on the first check.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from streams.policy import Policy
from streams.records import regions

# GB/T 2260 province-level prefixes (11 Beijing ... 65 Xinjiang, 71 Taiwan, 81 Hong Kong,
# 82 Macao).
PROVINCES = frozenset({
    "11", "12", "13", "14", "15", "21", "22", "23", "31", "32", "33", "34", "35", "36", "37",
    "41", "42", "43", "44", "45", "46", "50", "51", "52", "53", "54", "61", "62", "63", "64",
    "65", "71", "81", "82",
})
FIGURES = ("deaths", "missing", "serious_injuries", "direct_economic_loss_cny",
           "affected_population", "relocated_or_assisted", "houses_collapsed_rooms",
           "houses_collapsed_households", "drought_assisted_population", "farming_population")


@dataclass(frozen=True, slots=True)
class Violation:
    """One problem with one field of a record; ``code`` is a dead-letter error code."""

    field: str
    code: str
    message: str

    def line(self) -> str:
        return f"{self.field}: {self.code}: {self.message}"


def millis(value: Any) -> int | None:
    """Epoch millis of an int or an aware datetime (what fastavro decodes); None otherwise."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, datetime):
        return int(value.timestamp() * 1000)
    return None


def region_code_error(code: Any) -> str | None:
    """Why ``code`` is not a GB/T 2260 six-digit division code, or None when it is one."""
    if not isinstance(code, str) or len(code) != 6 or not code.isascii() or not code.isdigit():
        return f"{code!r} is not six digits (GB/T 2260: 2 province, 2 city, 2 county)"
    if code[:2] not in PROVINCES:
        return f"{code!r}: {code[:2]} is not a GB/T 2260 province code (11-65, 71, 81, 82)"
    if code[2:4] == "00" and code[4:] != "00":
        return f"{code!r}: a county part {code[4:]} needs a city part, not 00"
    return None


def implied_level(deaths: int, serious_injuries: int, loss: float) -> str:
    """Accident level implied by the figures (Decree 493 art. 3; highest matching row wins)."""
    if deaths >= 30 or serious_injuries >= 100 or loss >= 100_000_000:
        return "ESPECIALLY_SERIOUS"
    if deaths >= 10 or serious_injuries >= 50 or loss >= 50_000_000:
        return "SERIOUS"
    if deaths >= 3 or serious_injuries >= 10 or loss >= 10_000_000:
        return "RELATIVELY_SERIOUS"
    return "ORDINARY"


def _skew_ms(policy: Policy) -> int:
    return int(policy.max_future_skew.total_seconds() * 1000)


def _times(record: Mapping[str, Any], names: tuple[str, ...], policy: Policy, now_ms: int,
           prefix: str = "") -> list[Violation]:
    """Each named time lies between the policy's earliest time and now plus the allowed
    clock skew."""
    out = []
    limit = now_ms + _skew_ms(policy)
    earliest = policy.limits.earliest_ms
    for name in names:
        ts = millis(record.get(name))
        if ts is None:
            continue
        if ts > limit:
            out.append(Violation(prefix + name, "FUTURE_EVENT_TIME",
                                 f"{ts - limit} ms beyond the allowed clock skew into the "
                                 "future"))
        elif ts < earliest:
            out.append(Violation(prefix + name, "BAD_TIMESTAMP",
                                 f"{ts} is before {earliest} (2000-01-01), the earliest time "
                                 "the platform accepts (policy limits.earliest)"))
    return out


def _strings(record: Mapping[str, Any], policy: Policy, prefix: str = "",
             texts: tuple[str, ...] = ("description",)) -> list[Violation]:
    """Every string field of the record within its length bound: free texts (``texts``)
    ``max_text_length``, ids, codes and names ``max_id_length``."""
    out = []
    limits = policy.limits
    for name, value in record.items():
        if isinstance(value, str):
            bound = limits.max_text if name in texts else limits.max_id
            if len(value) > bound:
                out.append(Violation(prefix + name, "TOO_LONG",
                                     f"{len(value)} characters, over the limit of {bound}"))
    return out


def _region(record: Mapping[str, Any], policy: Policy) -> list[Violation]:
    code = record.get("region_code")
    why = region_code_error(code)
    if why:
        return [Violation("region_code", "BAD_REGION_CODE", why)]
    why = regions.table(policy.region_table).check(str(code))
    return [Violation("region_code", "UNKNOWN_REGION_CODE", why)] if why else []


def check_reading(reading: Mapping[str, Any], policy: Policy, now_ms: int,
                  prefix: str = "") -> list[Violation]:
    """One sensor reading: unit matches the metric, value within the physical range, not from
    the future. ``prefix`` is prepended to field names (e.g. ``readings[3].``)."""
    out: list[Violation] = []
    metric = policy.metrics.get(str(reading.get("metric")))
    value = reading.get("value")
    if metric is not None:
        unit = reading.get("unit")
        if unit != metric.unit:
            out.append(Violation(prefix + "unit", "UNIT_MISMATCH",
                                 f"{reading.get('metric')} is measured in {metric.unit}, "
                                 f"not {unit}"))
        elif isinstance(value, int | float) and not (
                math.isfinite(value) and metric.low <= value <= metric.high):
            out.append(Violation(prefix + "value", "OUT_OF_RANGE",
                                 f"{value} {unit} is outside the physical range "
                                 f"[{metric.low}, {metric.high}] of {reading.get('metric')}"))
    elif isinstance(value, float) and not math.isfinite(value):
        out.append(Violation(prefix + "value", "OUT_OF_RANGE", f"{value} is not a number"))
    out += _times(reading, ("event_time",), policy, now_ms, prefix)
    out += _strings(reading, policy, prefix)
    return out


def check_telemetry(batch: Mapping[str, Any], policy: Policy, now_ms: int) -> list[Violation]:
    """A TelemetryBatch envelope and each reading (fields named ``readings[i].<field>``)."""
    out = _times(batch, ("sent_at",), policy, now_ms) + _strings(batch, policy)
    readings = batch.get("readings") or ()
    if len(readings) > policy.limits.max_readings:
        out.append(Violation("readings", "TOO_MANY_READINGS",
                             f"{len(readings)} readings in one envelope, over the limit of "
                             f"{policy.limits.max_readings} (split them into envelopes)"))
        return out
    for i, reading in enumerate(readings):
        out += check_reading(reading, policy, now_ms, f"readings[{i}].")
    return out


def check_heartbeat(beat: Mapping[str, Any], policy: Policy, now_ms: int) -> list[Violation]:
    out = _times(beat, ("sent_at",), policy, now_ms) + _strings(beat, policy)
    interval = beat.get("interval_s")
    if isinstance(interval, int) and interval <= 0:
        out.append(Violation("interval_s", "OUT_OF_RANGE",
                             f"heartbeat interval {interval} s must be positive"))
    return out


def check_hazard(hazard: Mapping[str, Any], policy: Policy, now_ms: int) -> list[Violation]:
    out = _region(hazard, policy) + _strings(hazard, policy) + _times(
        hazard, ("found_at", "updated_at"), policy, now_ms)
    found, deadline = millis(hazard.get("found_at")), millis(hazard.get("rectification_deadline"))
    if deadline is not None and deadline < policy.limits.earliest_ms:
        out.append(Violation("rectification_deadline", "BAD_TIMESTAMP",
                             "the rectification deadline is before the earliest time the "
                             "platform accepts"))
    elif found is not None and deadline is not None and deadline < found:
        out.append(Violation("rectification_deadline", "BAD_TIMESTAMP",
                             "rectification deadline is before the danger was found"))
    return out


def check_incident(report: Mapping[str, Any], policy: Policy, now_ms: int) -> list[Violation]:
    """Region code, non-negative figures, no future times, reported not before it occurred."""
    out = _region(report, policy) + _strings(report, policy)
    out += _figures(report, policy)
    out += _times(report, ("occurred_at", "reported_at"), policy, now_ms)
    occurred, reported = millis(report.get("occurred_at")), millis(report.get("reported_at"))
    if occurred is not None and reported is not None and reported < occurred:
        out.append(Violation("reported_at", "BAD_TIMESTAMP",
                             f"reported {occurred - reported} ms before the incident occurred"))
    return out


def _figures(report: Mapping[str, Any], policy: Policy) -> list[Violation]:
    """Figures are finite, not negative, and within the policy's bounds."""
    out = []
    for name in FIGURES:
        value = report.get(name)
        if not isinstance(value, int | float) or isinstance(value, bool):
            continue
        bound = policy.limits.max_loss_cny if name == "direct_economic_loss_cny" \
            else policy.limits.max_count
        if isinstance(value, float) and not math.isfinite(value):
            out.append(Violation(name, "OUT_OF_RANGE", f"{name} is {value}, not a number"))
        elif value < 0:
            out.append(Violation(name, "NEGATIVE_FIGURE", f"{name} is {value}; figures "
                                 "cannot be negative"))
        elif value > bound:
            out.append(Violation(name, "OUT_OF_RANGE", f"{name} is {value}, over the bound "
                                 f"{bound:g} (policy limits)"))
    return out


def check_enterprise(enterprise: Mapping[str, Any], policy: Policy, now_ms: int) -> list[
        Violation]:
    return _region(enterprise, policy) + _strings(enterprise, policy) + _times(
        enterprise, ("updated_at",), policy, now_ms)


def check_sensor(sensor: Mapping[str, Any], policy: Policy, now_ms: int) -> list[Violation]:
    """The unit fits the metric and the alarm limits lie in its range, level 1 <= level 2;
    a reporting interval, when given, is positive."""
    out = _times(sensor, ("updated_at",), policy, now_ms) + _strings(sensor, policy)
    interval = sensor.get("expected_interval_s")
    if isinstance(interval, int) and not isinstance(interval, bool) and interval <= 0:
        out.append(Violation("expected_interval_s", "OUT_OF_RANGE",
                             f"reporting interval {interval} s must be positive"))
    metric = policy.metrics.get(str(sensor.get("metric")))
    if metric is None:
        return out
    if sensor.get("unit") != metric.unit:
        out.append(Violation("unit", "UNIT_MISMATCH", f"{sensor.get('metric')} is measured in "
                             f"{metric.unit}, not {sensor.get('unit')}"))
    limits = {k: sensor.get(k) for k in ("alarm_level1", "alarm_level2")}
    for name, value in limits.items():
        if isinstance(value, int | float) and not (
                math.isfinite(value) and metric.low <= value <= metric.high):
            out.append(Violation(name, "OUT_OF_RANGE", f"alarm limit {value} is outside the "
                                 f"range [{metric.low}, {metric.high}] of {sensor.get('metric')}"))
    one, two = limits["alarm_level1"], limits["alarm_level2"]
    if isinstance(one, int | float) and isinstance(two, int | float) and one > two:
        out.append(Violation("alarm_level2", "OUT_OF_RANGE",
                             f"alarm level 2 ({two}) is below level 1 ({one})"))
    return out
