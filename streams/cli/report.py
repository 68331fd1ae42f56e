"""``ebi report``: the analyst summary for a time range (default: the last 24 hours), as text
or, with ``--html FILE``, as a self-contained daily briefing with charts.

Incidents by level, late reports, alarms, blind spots, offline gateways, late telemetry,
anomalies and dead letters, from the deduplicated views; ``--region`` narrows every section
that has a region to a province, city or county (GB/T 2260 prefix). The SQL is in
:mod:`streams.report.sections`. It runs as the calling reader (:mod:`streams.access.analysts`):
a region analyst's report covers that region only (no ``--region``: theirs; another one is
refused) and leaves out the sections without a region (dead letters).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import re
import sys
from collections.abc import Sequence
from pathlib import Path

from sinks.clickhouse import ClickHouseError
from streams.cli.query import render
from streams.report.sections import (
    Scope,
    ScopeError,
    SectionData,
    load,
    region_prefix,
    sections,
)
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
    parser.add_argument("--format", choices=("table", "csv", "json"), default="table",
                        help="text output format")
    parser.add_argument("--region", default="", metavar="CODE",
                        help="GB/T 2260 prefix: 2 digits a province, 4 a city, 6 a county "
                             "(default: all regions)")
    parser.add_argument("--html", metavar="FILE", type=Path,
                        help="write the daily briefing (charts, times in CST) to FILE instead "
                             "of printing text")


def scope_of(args: argparse.Namespace, now: dt.datetime) -> Scope:
    """The report's range and region from the flags (ValueError/ScopeError when bad)."""
    since = parse_time(args.since, now)
    until = parse_time(args.until, now) if args.until else now
    return Scope(since, until, region_prefix(args.region), now)


def within(scope: Scope, allowed: str) -> Scope:
    """The report's scope narrowed to a reader's region (``allowed``: their GB/T 2260 prefix,
    "" for every region): no ``--region`` is theirs; one outside it is an error."""
    if not allowed:
        return scope
    if not scope.region:
        return dataclasses.replace(scope, region=allowed)
    if not scope.region.startswith(allowed):
        raise ScopeError(f"region {scope.region} is outside your scope (region {allowed})")
    return scope


def run(args: argparse.Namespace, settings: Settings) -> int:
    now = dt.datetime.now(dt.UTC)
    try:
        scope = scope_of(args, now)
    except ScopeError as exc:
        print(f"ebi report: {exc}", file=sys.stderr)
        return 2
    except ValueError as exc:
        print(f"ebi report: bad time: {exc}", file=sys.stderr)
        return 2
    from streams.access.analysts import open_reader
    from streams.policy import PolicyError, load_policy

    try:
        alarms = load_policy(settings.policy_file or None).alarms   # the flood figures
    except PolicyError as exc:
        print(f"ebi report: {exc}", file=sys.stderr)
        return 2
    reader = open_reader(settings, "report")
    if reader is None:
        return 1
    backend = reader.backend
    try:
        scope = within(scope, reader.scope.region if reader.scope else "")
    except ScopeError as exc:
        backend.close()
        print(f"ebi report: {exc}", file=sys.stderr)
        return 2
    shown = [s for s in sections(scope, alarms) if s.regional or reader.scope is None or
             not reader.scope.region]
    try:
        data = [load(backend, s) for s in shown]
    except ClickHouseError as exc:
        print(f"ebi report: {exc}", file=sys.stderr)
        return 1
    finally:
        backend.close()
    if args.html is not None:
        return _write_html(args.html, scope, data, now)
    region = f" region {scope.region}" if scope.region else ""
    print(f"ebi report {scope.since_text} .. {scope.until_text} UTC{region}")
    for d in data:
        note = "" if d.section.regional or not scope.region else " (all regions)"
        print(f"\n== {d.section.title}{note}")
        sys.stdout.write(render(d.result(), args.format))
    return 0


def _write_html(path: Path, scope: Scope, data: Sequence[SectionData], now: dt.datetime) -> int:
    from streams.report import charts, html

    page = html.page(html.Briefing(scope, data, now), charts.render(data, scope))
    try:
        path.write_text(page, encoding="utf-8")
    except OSError as exc:
        print(f"ebi report: cannot write the briefing to {path}: {exc.strerror}",
              file=sys.stderr)
        return 1
    print(f"ebi report: briefing for {scope.region or 'all regions'}, "
          f"{scope.since_text} .. {scope.until_text} UTC, written to {path}")
    return 0
