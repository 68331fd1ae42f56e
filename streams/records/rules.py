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
from collections.abc import Callable, Mapping
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
           "affected_population")


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


def _future(record: Mapping[str, Any], name: str, limit_ms: int, prefix: str = "") -> list[
        Violation]:
    ts = millis(record.get(name))
    if ts is not None and ts > limit_ms:
        return [Violation(prefix + name, "FUTURE_EVENT_TIME",
                          f"{ts - limit_ms} ms beyond the allowed clock skew into the future")]
    return []


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
    out += _future(reading, "event_time", now_ms + _skew_ms(policy), prefix)
    return out


def check_telemetry(batch: Mapping[str, Any], policy: Policy, now_ms: int) -> list[Violation]:
    """A TelemetryBatch envelope and each reading (fields named ``readings[i].<field>``)."""
    limit = now_ms + _skew_ms(policy)
    out = _future(batch, "sent_at", limit)
    for i, reading in enumerate(batch.get("readings") or ()):
        out += check_reading(reading, policy, now_ms, f"readings[{i}].")
    return out


def check_heartbeat(beat: Mapping[str, Any], policy: Policy, now_ms: int) -> list[Violation]:
    out = _future(beat, "sent_at", now_ms + _skew_ms(policy))
    interval = beat.get("interval_s")
    if isinstance(interval, int) and interval <= 0:
        out.append(Violation("interval_s", "OUT_OF_RANGE",
                             f"heartbeat interval {interval} s must be positive"))
    return out


def check_hazard(hazard: Mapping[str, Any], policy: Policy, now_ms: int) -> list[Violation]:
    limit = now_ms + _skew_ms(policy)
    out = _region(hazard, policy) + _future(hazard, "found_at", limit) + _future(
        hazard, "updated_at", limit)
    found, deadline = millis(hazard.get("found_at")), millis(hazard.get("rectification_deadline"))
    if found is not None and deadline is not None and deadline < found:
        out.append(Violation("rectification_deadline", "BAD_TIMESTAMP",
                             "rectification deadline is before the danger was found"))
    return out


def check_incident(report: Mapping[str, Any], policy: Policy, now_ms: int) -> list[Violation]:
    """Region code, non-negative figures, no future times, reported not before it occurred."""
    limit = now_ms + _skew_ms(policy)
    out = _region(report, policy)
    for name in FIGURES:
        value = report.get(name)
        if isinstance(value, int | float) and value < 0:
            out.append(Violation(name, "NEGATIVE_FIGURE", f"{name} is {value}; figures "
                                 "cannot be negative"))
    out += _future(report, "occurred_at", limit) + _future(report, "reported_at", limit)
    occurred, reported = millis(report.get("occurred_at")), millis(report.get("reported_at"))
    if occurred is not None and reported is not None and reported < occurred:
        out.append(Violation("reported_at", "BAD_TIMESTAMP",
                             f"reported {occurred - reported} ms before the incident occurred"))
    return out


def check_enterprise(enterprise: Mapping[str, Any], policy: Policy, now_ms: int) -> list[
        Violation]:
    return _region(enterprise, policy) + _future(enterprise, "updated_at",
                                                 now_ms + _skew_ms(policy))


def check_sensor(sensor: Mapping[str, Any], policy: Policy, now_ms: int) -> list[Violation]:
    """The unit fits the metric and the alarm limits lie in its range, level 1 <= level 2."""
    out = _future(sensor, "updated_at", now_ms + _skew_ms(policy))
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


Check = Callable[[Mapping[str, Any], Policy, int], list[Violation]]

# record name -> check
CHECKS: dict[str, Check] = {
    "TelemetryBatch": check_telemetry,
    "GatewayHeartbeat": check_heartbeat,
    "HazardRecord": check_hazard,
    "IncidentReport": check_incident,
    "Enterprise": check_enterprise,
    "Sensor": check_sensor,
}
