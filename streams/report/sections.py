"""The report's sections: the SQL of each, over the analyst views, for one time range and
region. The text report (``ebi report``) and the HTML briefing (``ebi report --html``) both
run exactly these.

The SQL is what ClickHouse 18.16 and current ClickHouse (chdb) both accept: no CTEs, no
``formatDateTime``, times compared with ``toDateTime('...', 'UTC')`` (a ``DateTime('UTC')``
column on 18.16, ``DateTime64(3, 'UTC')`` on newer servers) and converted with
``toUnixTimestamp`` where seconds are computed. Hour buckets are taken in UTC: China Standard
Time is a whole number of hours ahead, so the buckets are the same hours in CST. Canary
records (``tag`` set) are left out of every section.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

from sinks.clickhouse import Backend, QueryResult
from streams.policy.alarms import AlarmPolicy

# Where alarms come from: the `alerts` view today. The alarm sections read it through this
# name only, so switching them to another view is a one-line change.
ALARM_SOURCE = "alerts"

# Canary traffic (synthetic monitoring, its records tagged ``canary-<run>``) is no statistic:
# every section leaves it out.
REAL = " AND isNull(tag)"

_REGION = re.compile(r"^\d{2}(\d{2}){0,2}$")
_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


class ScopeError(ValueError):
    """A report range or region that cannot be used."""


def region_prefix(code: str) -> str:
    """The GB/T 2260 prefix a ``--region`` value selects: 2 digits a province, 4 a city, 6 a
    county; trailing ``00`` pairs of an official code name the level above (``110000`` is
    the province ``11``, ``110100`` the city ``1101``). Empty: all regions."""
    text = code.strip()
    if not text:
        return ""
    if not _REGION.match(text):
        raise ScopeError(f"region {code!r} is not a GB/T 2260 prefix (2, 4 or 6 digits, "
                         "e.g. 11, 1101 or 110101)")
    while len(text) > 2 and text.endswith("00"):
        text = text[:-2]
    if text == "00":
        raise ScopeError(f"region {code!r}: 00 is no province")
    return text


def region_level(prefix: str) -> str:
    return {0: "all regions", 2: "province", 4: "city", 6: "county"}[len(prefix)]


@dataclass(frozen=True)
class Scope:
    """What a report covers: ``since <= t < until`` (UTC) in the regions under ``region``
    (a prefix from :func:`region_prefix`, empty for all); ``now`` ends open blind spots."""

    since: dt.datetime
    until: dt.datetime
    region: str = ""
    now: dt.datetime | None = None

    def __post_init__(self) -> None:
        for name in ("since", "until", "now"):
            value = getattr(self, name)
            if value is not None and value.tzinfo is None:
                raise ScopeError(f"report {name} {value} has no time zone")
        if self.until <= self.since:
            raise ScopeError(f"report range is empty: until {self.until:{_TIME_FORMAT}} is "
                             f"not after since {self.since:{_TIME_FORMAT}}")
        if self.region and region_prefix(self.region) != self.region:
            raise ScopeError(f"region {self.region!r} is not a normalised prefix")

    @property
    def since_text(self) -> str:
        return self.since.astimezone(dt.UTC).strftime(_TIME_FORMAT)

    @property
    def until_text(self) -> str:
        return self.until.astimezone(dt.UTC).strftime(_TIME_FORMAT)

    @property
    def open_end(self) -> int:
        """Epoch seconds where a blind spot still open is counted up to."""
        end = self.until if self.now is None else min(self.until, self.now)
        return int(end.timestamp())

    def during(self, column: str) -> str:
        return (f"{column} >= toDateTime('{self.since_text}', 'UTC') "
                f"AND {column} < toDateTime('{self.until_text}', 'UTC')")

    def in_region(self, column: str = "region_code") -> str:
        """`` AND <column> LIKE '<prefix>%'`` (the prefix is digits only), or nothing."""
        return f" AND {column} LIKE '{self.region}%'" if self.region else ""


@dataclass(frozen=True)
class Section:
    key: str                       # stable id (the HTML anchor and chart)
    title: str                     # heading of the text report
    title_zh: str
    sql: str
    times: tuple[str, ...] = ()    # columns holding UTC times (the page shows them in CST)
    regional: bool = True          # False: the rows carry no region, the filter cannot apply
    about: str = ""                # one line under the heading of the page


@dataclass(frozen=True)
class SectionData:
    """A section's rows, numbers as numbers (chdb's JSON quotes 64-bit integers)."""

    section: Section
    columns: list[str]
    types: list[str]
    rows: list[tuple[Any, ...]]

    def dicts(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]

    def result(self) -> QueryResult:
        return QueryResult(self.columns, self.types, self.rows)


def sections(scope: Scope, alarms: AlarmPolicy | None = None) -> list[Section]:
    """The report's sections, in the order both outputs show them (``alarms``: the policy's
    flood window and limit, default the bundled ones)."""
    from streams.report.alarms import alarm_sections

    during, region = scope.during, scope.in_region
    levels = "['ESPECIALLY_SERIOUS', 'SERIOUS', 'RELATIVELY_SERIOUS', 'ORDINARY']"
    return [
        Section("incidents", "Incidents by level and kind", "事故灾害（按等级、类型）", f"""
SELECT declared_level, kind, count() AS incidents, sum(deaths) AS deaths,
       sum(missing) AS missing, sum(serious_injuries) AS serious_injuries
FROM (
    SELECT incident_id, any(kind) AS kind,
           argMax(declared_level, reported_at) AS declared_level,
           argMax(deaths, reported_at) AS deaths, argMax(missing, reported_at) AS missing,
           argMax(serious_injuries, reported_at) AS serious_injuries
    FROM incident_reports
    WHERE {during('reported_at')}{region()}{REAL}
    GROUP BY incident_id
)
GROUP BY declared_level, kind
ORDER BY indexOf({levels}, declared_level), kind""",
                about="Incidents with a report in the period, at the level and with the "
                      "figures of their latest report in it."),
        Section("late_reports", "Late incident reports (worst 50)", "迟报（最迟的50份）", f"""
SELECT report_id, incident_id, region_code, kind, stage, declared_level, reported_at,
       deadline_at, received_at, round(late_by_ms / 60000, 1) AS minutes_late
FROM incident_reports
WHERE late = 1 AND {during('reported_at')}{region()}{REAL}
ORDER BY late_by_ms DESC, report_id
LIMIT 50""", times=("reported_at", "deadline_at", "received_at"),
                about="Reports received after their legal deadline; minutes late counted "
                      "from the deadline to the platform's receipt."),
        Section("late_by_province", "Late incident reports by province and kind",
                "迟报（按省份、类型）", f"""
SELECT substring(region_code, 1, 2) AS province, kind, count() AS late_reports,
       round(max(late_by_ms) / 60000, 1) AS worst_minutes_late
FROM incident_reports WHERE late = 1 AND {during('reported_at')}{region()}{REAL}
GROUP BY province, kind ORDER BY late_reports DESC, province, kind"""),
        Section("alarms", "Alarms by hour and severity", "报警（按小时、级别）", f"""
SELECT toStartOfHour(event_time) AS hour, severity, count() AS alarms
FROM {ALARM_SOURCE}
WHERE {during('event_time')}{region()}{REAL}
GROUP BY hour, severity
ORDER BY hour, severity""", times=("hour",),
                about="Alerts raised by the pipeline, by the hour of the event that caused "
                      "them."),
        Section("alarm_types", "Alarms by type", "报警（按类型）", f"""
SELECT alert_type, severity, count() AS alarms, uniqExact(enterprise_id) AS enterprises,
       max(event_time) AS last_event
FROM {ALARM_SOURCE}
WHERE {during('event_time')}{region()}{REAL}
GROUP BY alert_type, severity
ORDER BY alarms DESC, alert_type, severity""", times=("last_event",)),
        Section("blind_spots", "Blind-spot hours by enterprise (top 20)",
                "监测空白时长（按企业，前20）", f"""
SELECT enterprise_id, any(region_code) AS region_code, uniqExact(gateway_id) AS gateways,
       count() AS blind_spots, round(sum(closed_seconds) / 3600, 2) AS closed_hours,
       round(sum(open_seconds) / 3600, 2) AS open_hours,
       round((sum(closed_seconds) + sum(open_seconds)) / 3600, 2) AS blind_spot_hours
FROM (
    SELECT enterprise_id, region_code, gateway_id, offline_seconds AS closed_seconds,
           toInt64(0) AS open_seconds
    FROM gateway_status
    WHERE status = 'ONLINE' AND offline_seconds > 0 AND {during('changed_at')}{region()}{REAL}
    UNION ALL
    SELECT enterprise_id, region_code, gateway_id, toInt64(0) AS closed_seconds,
           greatest(toInt64(0), toInt64({scope.open_end}) - greatest(
               toInt64(toUnixTimestamp(changed_at)), toInt64({int(scope.since.timestamp())})
           )) AS open_seconds
    FROM gateway_state
    WHERE status = 'OFFLINE'
      AND changed_at < toDateTime('{scope.until_text}', 'UTC'){region()}{REAL}
)
GROUP BY enterprise_id
ORDER BY blind_spot_hours DESC, enterprise_id
LIMIT 20""", about="Gateway offline time: blind spots that ended in the period (counted "
                   "whole) and those still open (counted from the start of the period)."),
        Section("offline_now", "Gateways offline now", "当前离线网关", f"""
SELECT gateway_id, enterprise_id, region_code, changed_at AS offline_since
FROM gateway_state WHERE status = 'OFFLINE'{region()}{REAL} ORDER BY changed_at, gateway_id""",
                times=("offline_since",)),
        Section("late_readings", "Late telemetry readings by enterprise (top 20)",
                "迟到监测数据（按企业，前20）", f"""
SELECT enterprise_id, count() AS late_readings, max(arrival_lag_ms) AS worst_lag_ms
FROM readings WHERE late = 1 AND {during('event_time')}{region()}{REAL}
GROUP BY enterprise_id ORDER BY late_readings DESC, enterprise_id LIMIT 20"""),
        Section("anomalies", "Anomalies by type", "异常数据（按类型）", f"""
SELECT anomaly, count() AS readings, uniqExact(sensor_id) AS sensors
FROM readings ARRAY JOIN anomalies AS anomaly
WHERE {during('event_time')}{region()}{REAL}
GROUP BY anomaly ORDER BY readings DESC, anomaly"""),
        Section("dead_letters", "Dead letters by reason", "死信（按阶段、原因）", f"""
SELECT stage, error_code, count() AS messages
FROM dead_letters WHERE {during('failed_at')}{REAL}
GROUP BY stage, error_code ORDER BY messages DESC, stage, error_code""", regional=False,
                about="Input the pipeline rejected, for every region: a rejected message "
                      "has no region it can be trusted for."),
        *alarm_sections(scope, alarms),
    ]


def _number(value: Any, ch_type: str) -> Any:
    t = ch_type
    for wrapper in ("LowCardinality(", "Nullable("):
        if t.startswith(wrapper):
            t = t[len(wrapper):-1]
    if value is None or not isinstance(value, str | int | float):
        return value
    if t.startswith(("Int", "UInt")):
        return int(value)
    if t.startswith(("Float", "Decimal")):
        return float(value)
    return value


def load(backend: Backend, section: Section) -> SectionData:
    """Run a section's SQL (ClickHouseError when ClickHouse refuses it)."""
    result = backend.query(section.sql)
    rows = [tuple(_number(v, t) for v, t in zip(row, result.types, strict=True))
            for row in result.rows]
    return SectionData(section, list(result.columns), list(result.types), rows)


def parse_utc(text: str) -> dt.datetime:
    """A time as a view returns it (``YYYY-MM-DD HH:MM:SS[.fff]``, UTC) as an aware datetime."""
    value = dt.datetime.fromisoformat(str(text).strip().replace(" ", "T"))
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)
