"""The columnar layout of an EnrichedTelemetryBatch (the clean telemetry topic).

The accepted readings of an envelope travel as parallel arrays, one per reading field
(:data:`READING_FIELDS`), all of the same length: reading ``i`` is the ``i``-th entry of each.
The worker appends to these lists per accepted reading and the sink extends its table columns
with them, so no per-reading record exists on either side. :func:`ragged` checks the
invariant; :func:`rows` turns a batch back into one dict per reading (tests, canary, tools).
"""

from __future__ import annotations

from typing import Any

Record = dict[str, Any]

READING_FIELDS = ("reading_id", "sensor_id", "metric", "value", "unit", "quality", "event_time",
                  "arrival_lag_ms", "late", "alarm_level", "anomalies")


def empty_columns() -> dict[str, list[Any]]:
    """One empty list per reading field."""
    return {name: [] for name in READING_FIELDS}


def reading_count(batch: Record) -> int:
    """Accepted readings in ``batch`` (the length of its ``reading_id`` array)."""
    return len(batch["reading_id"])


def ragged(batch: Record) -> str | None:
    """None when every per-reading array has the same length, else what is wrong."""
    lengths = {name: len(batch[name]) for name in READING_FIELDS}
    if len(set(lengths.values())) <= 1:
        return None
    shown = ", ".join(f"{name}={n}" for name, n in lengths.items())
    return f"per-reading arrays of unequal length ({shown})"


def rows(batch: Record) -> list[Record]:
    """The accepted readings of ``batch`` as one dict per reading."""
    cols = [batch[name] for name in READING_FIELDS]
    return [dict(zip(READING_FIELDS, values, strict=True)) for values in zip(*cols, strict=True)]
