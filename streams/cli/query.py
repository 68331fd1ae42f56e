"""``ebi query "SQL"``: run SQL against ClickHouse and print a table, CSV or JSON.

It runs as the calling reader (``EBI_CLICKHOUSE_USER``, ``EBI_CLICKHOUSE_PASSWORD_FILE``), in
the one database that reader may open, never with the sink's login; stderr says as whom and
in which scope (:mod:`streams.access.analysts`). The embedded store (chdb) has no users:
everything is readable there, so it is for one person on one machine.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from typing import Any

from sinks.clickhouse import ClickHouseError, QueryResult
from streams.settings import Settings

EPILOG = ("Runs as EBI_CLICKHOUSE_USER (password from EBI_CLICKHOUSE_PASSWORD_FILE), in the "
          "database that user may open: a region analyst sees only the region's rows, with "
          "trade secrets and personal data masked unless cleared. The embedded store (chdb) "
          "has NO users: everything is readable there; single-user only.")


def add(parser: argparse.ArgumentParser) -> None:
    parser.epilog = EPILOG
    parser.add_argument("sql", help="the query; analysts use the views (see docs/analysts.md)")
    parser.add_argument("--format", choices=("table", "csv", "json"), default="table")


def run(args: argparse.Namespace, settings: Settings) -> int:
    from streams.access.analysts import open_reader

    reader = open_reader(settings, "query")
    if reader is None:
        return 1
    backend = reader.backend
    try:
        result = backend.query(args.sql)
    except ClickHouseError as exc:
        print(f"ebi query: {exc}", file=sys.stderr)
        return 1
    finally:
        backend.close()
    sys.stdout.write(render(result, args.format))
    return 0


def _cell(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, list):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def render(result: QueryResult, fmt: str = "table") -> str:
    if fmt == "json":
        return json.dumps(result.dicts(), ensure_ascii=False, default=str) + "\n"
    if fmt == "csv":
        import io

        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(result.columns)
        writer.writerows([["" if v is None else _cell(v) for v in row] for row in result.rows])
        return out.getvalue()
    cells = [[_cell(v) for v in row] for row in result.rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(result.columns)]
    line = "  ".join(c.ljust(w) for c, w in zip(result.columns, widths, strict=True))
    rule = "  ".join("-" * w for w in widths)
    body = ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in cells]
    return "\n".join([line, rule, *body, f"({len(cells)} row{'s' if len(cells) != 1 else ''})"]
                     ) + "\n"
