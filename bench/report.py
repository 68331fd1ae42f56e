"""Pure helpers for the bench report: percentiles, ratios, the printed table, the JSON files."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
COLUMNS = ("scenario", "readings", "seconds", "readings/s", "x baseline", "CPU s/M",
           "peak MB")


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) with linear interpolation; nan for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def ratio(value: float, reference: float) -> float | None:
    """value / reference rounded to 3 places; None when the reference is missing or 0."""
    if not reference or math.isnan(reference) or math.isnan(value):
        return None
    return round(value / reference, 3)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if math.isnan(value):
            return "-"
        return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def table(rows: Sequence[Sequence[Any]], columns: Sequence[str] = COLUMNS) -> str:
    """A plain text table: first column left-aligned, the others right-aligned."""
    cells = [[str(c) for c in columns]] + [[_cell(v) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(columns))]

    def line(row: list[str]) -> str:
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                         for i, (c, w) in enumerate(zip(row, widths, strict=True)))

    out = [line(cells[0]), "  ".join("-" * w for w in widths)]
    out += [line(r) for r in cells[1:]]
    return "\n".join(out)


def run_row(run: dict[str, Any], baseline_rate: float | None) -> list[Any]:
    """A table row for one throughput run (``pipeline.Run.as_dict()``)."""
    usage = run.get("usage", {})
    cpu = sum(u.get("cpu_s_per_m", u.get("cpu_s_per_m_total", 0.0)) for u in usage.values())
    peak = sum(u.get("peak_rss_mb", 0.0) for u in usage.values())
    rate = float(run.get("readings_per_s", 0.0))
    name = run["name"] + ("" if run.get("complete", True) else " (INCOMPLETE)")
    return [name, int(run.get("readings", 0)), float(run.get("total_s", 0.0)), rate,
            ratio(rate, baseline_rate or 0.0), float(cpu) if usage else None,
            float(peak) if usage else None]


def write(result: dict[str, Any], directory: Path = RESULTS,
          now: datetime | None = None) -> tuple[Path, Path]:
    """latest.json and a dated copy (<UTC date and time>.json); returns both paths."""
    directory.mkdir(parents=True, exist_ok=True)
    stamp = (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H%M%SZ")
    text = json.dumps(result, indent=2, sort_keys=True) + "\n"
    latest, dated = directory / "latest.json", directory / f"{stamp}.json"
    latest.write_text(text)
    dated.write_text(text)
    return latest, dated
