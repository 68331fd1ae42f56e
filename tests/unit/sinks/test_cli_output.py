from __future__ import annotations

import datetime as dt

import pytest

from sinks.clickhouse import QueryResult
from streams.cli.query import render
from streams.cli.report import parse_time

NOW = dt.datetime(2026, 3, 10, 12, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize(("text", "expected"), [
    ("24h", dt.datetime(2026, 3, 9, 12, 0, tzinfo=dt.UTC)),
    ("7d", dt.datetime(2026, 3, 3, 12, 0, tzinfo=dt.UTC)),
    ("90m", dt.datetime(2026, 3, 10, 10, 30, tzinfo=dt.UTC)),
    ("2026-03-01", dt.datetime(2026, 3, 1, tzinfo=dt.UTC)),
    ("2026-03-01T08:00+08:00", dt.datetime(2026, 3, 1, 0, 0, tzinfo=dt.UTC)),
])
def test_parse_time(text: str, expected: dt.datetime) -> None:
    assert parse_time(text, NOW) == expected


def test_render_formats() -> None:
    result = QueryResult(["region", "n", "flags"], [], [("110101", 3, ["LATE"]), ("12", None, [])])
    table = render(result)
    assert table.splitlines()[0].split() == ["region", "n", "flags"]
    assert "NULL" in table and table.endswith("(2 rows)\n")
    assert render(result, "csv").splitlines()[1] == '110101,3,"[""LATE""]"'
    assert render(result, "json").startswith('[{"region": "110101", "n": 3')
