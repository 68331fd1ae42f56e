"""Fixed section data for the report's unit tests (what the views would return)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sinks.clickhouse import QueryResult
from streams.report.sections import Scope, SectionData, sections

SINCE = dt.datetime(2026, 3, 9, 16, 0, tzinfo=dt.UTC)     # 2026-03-10 00:00 CST
UNTIL = dt.datetime(2026, 3, 10, 16, 0, tzinfo=dt.UTC)    # 2026-03-11 00:00 CST
NOW = dt.datetime(2026, 3, 10, 16, 5, tzinfo=dt.UTC)

ROWS: dict[str, tuple[list[str], list[tuple[Any, ...]]]] = {
    "incidents": (["declared_level", "kind", "incidents", "deaths", "missing",
                   "serious_injuries"],
                  [("SERIOUS", "PRODUCTION_SAFETY", 1, 11, 0, 3),
                   ("ORDINARY", "NATURAL_DISASTER", 2, 0, 1, 0)]),
    "late_reports": (["report_id", "incident_id", "region_code", "kind", "stage",
                      "declared_level", "reported_at", "deadline_at", "received_at",
                      "minutes_late"],
                     [("inc-1-r1", "inc-1", "110101", "PRODUCTION_SAFETY", "INITIAL",
                       "SERIOUS", "2026-03-10 01:30:00", None, "2026-03-10 01:32:00.250",
                       42.5)]),
    "late_by_province": (["province", "kind", "late_reports", "worst_minutes_late"],
                         [("11", "PRODUCTION_SAFETY", 1, 42.5)]),
    "alarms": (["hour", "severity", "alarms"],
               [("2026-03-10 01:00:00", "WARNING", 3), ("2026-03-10 01:00:00", "CRITICAL", 1),
                ("2026-03-10 09:00:00", "INFO", 2)]),
    "alarm_types": (["alert_type", "severity", "alarms", "enterprises", "last_event"],
                    [("ALARM_L1", "WARNING", 3, 1, "2026-03-10 01:59:00")]),
    "blind_spots": (["enterprise_id", "region_code", "gateways", "blind_spots",
                     "closed_hours", "open_hours", "blind_spot_hours"],
                    [("ent-0001", "110101", 1, 2, 2.5, 0.0, 2.5),
                     ("ent-0002", "110102", 1, 1, 0.0, 3.0, 3.0)]),
    "offline_now": (["gateway_id", "enterprise_id", "region_code", "offline_since"], []),
    "late_readings": (["enterprise_id", "late_readings", "worst_lag_ms"],
                      [("ent-0001", 12, 95000)]),
    "anomalies": (["anomaly", "readings", "sensors"], [("SPIKE", 4, 2)]),
    "dead_letters": (["stage", "error_code", "messages"], [("decode", "TRUNCATED_AVRO", 3)]),
    "floods": (["province", "windows", "alarms", "peak_per_window", "flood_windows",
                "worst_window"], [("32", 6, 31, 14, 1, "2026-03-10 02:10:00")]),
    "standing_alarms": (["alarm_id", "alarm_type", "severity", "subject_type", "subject_id",
                         "enterprise_id", "region_code", "raised_at", "cleared_at", "standing",
                         "hours", "acknowledged_by", "peak", "count"],
                        [("0123456789abcdef@gw-1", "ALARM_L2", "CRITICAL", "sensor", "ch4-1",
                          "ent-0001", "320506", "2026-03-10 02:11:00", None, 1, 13.9, "王工",
                          1.8, 4)]),
}


def scope(region: str = "") -> Scope:
    return Scope(SINCE, UNTIL, region, NOW)


def data(region: str = "", **override: list[tuple[Any, ...]]) -> list[SectionData]:
    """Every section with the rows above (``key=[rows]`` replaces a section's rows)."""
    out = []
    for s in sections(scope(region)):
        columns, rows = ROWS[s.key]
        out.append(SectionData(s, columns, ["String"] * len(columns),
                               list(override.get(s.key, rows))))
    return out


class CannedBackend:
    """Answers each section's SQL with its rows above, the way chdb does (64-bit integers as
    strings); records the SQL it ran."""

    def __init__(self) -> None:
        self.queries: list[str] = []
        self.closed = False
        self._by_sql = {s.sql: s.key for s in sections(scope())}

    def query(self, sql: str) -> QueryResult:
        self.queries.append(sql)
        key = next((k for s, k in self._by_sql.items() if _shape(s) == _shape(sql)), None)
        assert key is not None, f"unexpected SQL {sql[:80]}"
        columns, rows = ROWS[key]
        types = [_type(v) for v in (rows[0] if rows else ["" for _ in columns])]
        return QueryResult(columns, types, [tuple(str(v) if isinstance(v, int) else v
                                                  for v in row) for row in rows])

    def close(self) -> None:
        self.closed = True


def _shape(sql: str) -> str:
    """The SQL without its range, region and epoch literals (to match any scope)."""
    import re

    sql = re.sub(r"toDateTime\('[^']*', 'UTC'\)", "T", sql)
    sql = re.sub(r" AND region_code LIKE '\d+%'", "", sql)
    return re.sub(r"toInt64\(\d+\)", "N", sql)


def _type(value: Any) -> str:
    if isinstance(value, bool):
        return "UInt8"
    if isinstance(value, int):
        return "UInt64"
    if isinstance(value, float):
        return "Float64"
    return "String"
