"""Pure helpers of the bench: percentiles, ratios, the table, the JSON files (no timing)."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from pathlib import Path

from bench.report import percentile, ratio, run_row, table, write


def test_percentile_interpolates_and_handles_edges() -> None:
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    assert percentile([5.0], 99) == 5.0
    assert percentile(list(range(101)), 99) == 99.0
    assert math.isnan(percentile([], 50))


def test_ratio_rounds_and_refuses_a_missing_reference() -> None:
    assert ratio(50_000.0, 100_000.0) == 0.5
    assert ratio(1.0, 3.0) == 0.333
    assert ratio(1.0, 0.0) is None
    assert ratio(1.0, math.nan) is None


def test_table_aligns_columns() -> None:
    text = table([["b100", 1_000_000, 12.5, 80_000.0, 0.5, 3.25, None]])
    header, rule, row = text.splitlines()
    assert header.startswith("scenario")
    assert set(rule) <= {"-", " "}
    assert "1,000,000" in row and "80,000" in row and row.rstrip().endswith("-")
    assert len(header) == len(row)


def test_run_row_sums_usage_and_marks_incomplete_runs() -> None:
    run = {"name": "b100", "readings": 900, "complete": False, "readings_per_s": 50.0,
           "total_s": 18.0, "usage": {"w": {"cpu_s_per_m": 10.0, "peak_rss_mb": 100.0},
                                      "s": {"cpu_s_per_m": 5.0, "peak_rss_mb": 50.0}}}
    assert run_row(run, 100.0) == ["b100 (INCOMPLETE)", 900, 18.0, 50.0, 0.5, 15.0, 150.0]


def test_write_makes_latest_and_a_dated_copy(tmp_path: Path) -> None:
    latest, dated = write({"cores": 2}, tmp_path, now=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC))
    assert latest.name == "latest.json" and dated.name == "2026-01-02T030405Z.json"
    assert json.loads(latest.read_text()) == json.loads(dated.read_text()) == {"cores": 2}
