"""``ebi report``: the analyst summary for a time range (default: the last 24 hours).

Late reports, anomalies, offline gateways and dead letters by reason, from the
deduplicated views.
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
import sys

from sinks.clickhouse import ClickHouseError
from sinks.store import open_store
from streams.cli.query import render
from streams.settings import Settings

_RELATIVE = re.compile(r"^(\d+)([mhd])$")


def parse_time(text: str, now: dt.datetime) -> dt.datetime:
    """``2026-01-01``, ``2026-01-01T08:00`` (UTC), or relative to now: ``90m``, ``24h``,
    ``7d``."""
    found = _RELATIVE.match(text.strip())
    if found:
        unit = {"m": "minutes", "h": "hours", "d": "days"}[found.group(2)]
        return now - dt.timedelta(**{unit: int(found.group(1))})
    value = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def add(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--since", default="24h", help="start (ISO time in UTC, or 24h, 7d)")
    parser.add_argument("--until", default="", help="end (default: now)")
    parser.add_argument("--format", choices=("table", "csv", "json"), default="table")


def sections(since: str, until: str) -> dict[str, str]:
    """Title -> SQL for the report (times as 'YYYY-MM-DD HH:MM:SS' UTC)."""
    s, u = f"toDateTime('{since}', 'UTC')", f"toDateTime('{until}', 'UTC')"
    return {
        "Late incident reports by province and kind": f"""
SELECT substring(region_code, 1, 2) AS province, kind, count() AS late_reports,
       round(max(late_by_ms) / 60000, 1) AS worst_minutes_late
FROM incident_reports WHERE late = 1 AND reported_at >= {s} AND reported_at < {u}
GROUP BY province, kind ORDER BY late_reports DESC""",
        "Late telemetry readings by enterprise (top 20)": f"""
SELECT enterprise_id, count() AS late_readings, max(arrival_lag_ms) AS worst_lag_ms
FROM readings WHERE late = 1 AND event_time >= {s} AND event_time < {u}
GROUP BY enterprise_id ORDER BY late_readings DESC LIMIT 20""",
        "Anomalies by type": f"""
SELECT anomaly, count() AS readings, uniqExact(sensor_id) AS sensors
FROM readings ARRAY JOIN anomalies AS anomaly
WHERE event_time >= {s} AND event_time < {u}
GROUP BY anomaly ORDER BY readings DESC""",
        "Gateways offline now": """
SELECT gateway_id, enterprise_id, region_code, changed_at AS offline_since
FROM gateway_state WHERE status = 'OFFLINE' ORDER BY changed_at""",
        "Dead letters by reason": f"""
SELECT stage, error_code, count() AS messages
FROM dead_letters WHERE failed_at >= {s} AND failed_at < {u}
GROUP BY stage, error_code ORDER BY messages DESC""",
    }


def run(args: argparse.Namespace, settings: Settings) -> int:
    now = dt.datetime.now(dt.UTC)
    try:
        since = parse_time(args.since, now)
        until = parse_time(args.until, now) if args.until else now
    except ValueError as exc:
        print(f"ebi report: bad time: {exc}", file=sys.stderr)
        return 2
    backend = open_store(settings, "report")
    if backend is None:
        return 1
    fmt = "%Y-%m-%d %H:%M:%S"
    print(f"ebi report {since.strftime(fmt)} .. {until.strftime(fmt)} UTC")
    try:
        for title, sql in sections(since.strftime(fmt), until.strftime(fmt)).items():
            print(f"\n== {title}")
            sys.stdout.write(render(backend.query(sql), args.format))
    except ClickHouseError as exc:
        print(f"ebi report: {exc}", file=sys.stderr)
        return 1
    finally:
        backend.close()
    return 0
