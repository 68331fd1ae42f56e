"""The alarm policy (``[alarms]`` in the policy file): how alerts become alarms, how alarms
end, the deadband and on/off delays per metric, and the flood figures.

An alarm is one per (subject, type) at a time (streams/alarms/book.py). How it ends depends
on its type (``[alarms.ends]``, anything not listed is ``quiet``):

- ``limit``: a sensor value at or over an alarm limit. The book evaluates the readings
  itself: raised once the value has stayed at or over the limit for the metric's
  ``on_delay``, cleared once it has stayed under the limit minus the metric's ``deadband``
  for its ``off_delay`` (a value between the two keeps the alarm as it is);
- ``reading``: a code on the sensor's readings (FLATLINE): cleared once the sensor's scored
  readings have been without it for the metric's ``off_delay``;
- ``online``: the gateway is back online (ONLINE status), for the type's ``off_delay``;
- ``report``: the incident's next accepted report that does not carry the alarm's flag
  (any report ends REPORT_OVERDUE and REPORT_DUE_SOON);
- ``hazard``: a version of the hidden danger that is CLOSED or no longer overdue;
- ``quiet``: an event without an end of its own (SPIKE, OUTLIER, LATE_TELEMETRY): cleared once
  it has not recurred for ``quiet_after``.

Alert types in ``not_alarms`` (GATEWAY_ONLINE: it is the end of another alarm) are none.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

ENDS = ("limit", "reading", "online", "report", "hazard", "quiet")


class AlarmPolicyError(ValueError):
    """The ``[alarms]`` section is malformed; the message names the key."""


@dataclass(frozen=True)
class MetricAlarm:
    """Deadband (in the metric's unit) and delays (ms) of one metric's alarms."""

    deadband: float = 0.0
    on_delay_ms: int = 0
    off_delay_ms: int = 0
    source: str = ""


@dataclass(frozen=True)
class AlarmPolicy:
    ends: dict[str, str] = field(default_factory=lambda: {
        "ALARM_L1": "limit", "ALARM_L2": "limit", "FLATLINE": "reading",
        "GATEWAY_OFFLINE": "online", "REPORT_OVERDUE": "report", "REPORT_DUE_SOON": "report",
        "HAZARD_OVERDUE": "hazard"})
    metrics: dict[str, MetricAlarm] = field(default_factory=dict)
    off_delay_ms: dict[str, int] = field(default_factory=dict)   # per alarm type
    not_alarms: frozenset[str] = frozenset({"GATEWAY_ONLINE"})
    update_every_ms: int = 60_000
    quiet_after_ms: int = 15 * 60_000
    expire_after_ms: int = 30 * 86_400_000
    refresh_every_ms: int = 12 * 3_600_000
    max_per_home: int = 256
    flood_window_ms: int = 10 * 60_000
    flood_limit: int = 10

    def ends_of(self, alarm_type: str) -> str | None:
        """How an alarm of this type ends; None: alerts of this type are no alarm."""
        if alarm_type in self.not_alarms:
            return None
        return self.ends.get(alarm_type, "quiet")

    def metric(self, name: str) -> MetricAlarm:
        return self.metrics.get(name) or _NO_BAND

    def off_delay(self, alarm_type: str) -> int:
        return self.off_delay_ms.get(alarm_type, 0)


_NO_BAND = MetricAlarm()


def _ms(value: Any, where: str) -> int:
    from streams.policy import PolicyError, parse_duration

    try:
        return int(parse_duration(value, where) / timedelta(milliseconds=1))
    except PolicyError as exc:
        raise AlarmPolicyError(str(exc)) from None


def _positive(table: dict[str, Any], key: str, default: int) -> int:
    value = table.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise AlarmPolicyError(f"alarms.{key}: {value!r} must be a positive whole number")
    return value


def _metric(name: str, table: Any, units: dict[str, str]) -> MetricAlarm:
    where = f"alarms.metric.{name}"
    if not isinstance(table, dict):
        raise AlarmPolicyError(f"{where}: expected a table")
    unknown = sorted(set(table) - {"deadband", "on_delay", "off_delay", "source"})
    if unknown:
        raise AlarmPolicyError(f"{where}: unknown key(s) {', '.join(unknown)}; expected "
                               "deadband, on_delay, off_delay, source")
    if name not in units:
        raise AlarmPolicyError(f"{where}: no metric {name} in the policy (known: "
                               f"{', '.join(sorted(units))})")
    band = table.get("deadband", 0.0)
    if not isinstance(band, int | float) or isinstance(band, bool) or band < 0:
        raise AlarmPolicyError(f"{where}.deadband: {band!r} must be a number >= 0 "
                               f"({units[name]})")
    if "source" not in table:
        raise AlarmPolicyError(f"{where}: missing key 'source' (where the numbers come from)")
    return MetricAlarm(float(band), _ms(table.get("on_delay", "0s"), f"{where}.on_delay"),
                       _ms(table.get("off_delay", "0s"), f"{where}.off_delay"),
                       str(table["source"]))


KEYS = {"update_every", "quiet_after", "expire_after", "refresh_every", "max_per_home",
        "flood_window", "flood_limit", "not_alarms", "ends", "off_delay", "metric", "source"}


def parse_alarms(data: dict[str, Any], units: dict[str, str]) -> AlarmPolicy:
    """The ``[alarms]`` table; ``units`` maps the policy's metrics to their units."""
    if not isinstance(data, dict):
        raise AlarmPolicyError("alarms: expected a table")
    unknown = sorted(set(data) - KEYS)
    if unknown:
        raise AlarmPolicyError(f"alarms: unknown key(s) {', '.join(unknown)}; known: "
                               f"{', '.join(sorted(KEYS))}")
    d = AlarmPolicy()
    ends = dict(d.ends)
    for alarm_type, end in (data.get("ends") or {}).items():
        if end not in ENDS:
            raise AlarmPolicyError(f"alarms.ends.{alarm_type}: {end!r} is not one of "
                                   f"{', '.join(ENDS)}")
        ends[str(alarm_type)] = str(end)
    off = {str(k): _ms(v, f"alarms.off_delay.{k}")
           for k, v in (data.get("off_delay") or {}).items()}
    not_alarms = data.get("not_alarms", sorted(d.not_alarms))
    if not isinstance(not_alarms, list) or not all(isinstance(t, str) for t in not_alarms):
        raise AlarmPolicyError("alarms.not_alarms: expected a list of alert types")

    def duration(key: str, default_ms: int) -> int:
        value = _ms(data[key], f"alarms.{key}") if key in data else default_ms
        if value <= 0:
            raise AlarmPolicyError(f"alarms.{key}: must be longer than 0")
        return value

    return AlarmPolicy(
        ends=ends,
        metrics={str(k): _metric(str(k), v, units) for k, v in (data.get("metric") or {}).items()},
        off_delay_ms=off, not_alarms=frozenset(not_alarms),
        update_every_ms=duration("update_every", d.update_every_ms),
        quiet_after_ms=duration("quiet_after", d.quiet_after_ms),
        expire_after_ms=duration("expire_after", d.expire_after_ms),
        refresh_every_ms=duration("refresh_every", d.refresh_every_ms),
        max_per_home=_positive(data, "max_per_home", d.max_per_home),
        flood_window_ms=duration("flood_window", d.flood_window_ms),
        flood_limit=_positive(data, "flood_limit", d.flood_limit),
    )
