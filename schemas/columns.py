"""The columnar layout of an EnrichedTelemetryBatch (the clean telemetry topic): a wire
layout, shared by the worker that writes it and the sink that reads it.

The accepted readings of an envelope travel as parallel arrays, one per reading field
(:data:`READING_FIELDS`), all of the same length: reading ``i`` is the ``i``-th entry of each.
What the worker found about a reading travels sparsely in ``flags``: one entry (its
:data:`FLAG_FIELDS` plus ``index``, the reading's position in the arrays, ascending) only for
a reading that is late, at an alarm level or anomalous; every other reading has the defaults
(:data:`FLAG_DEFAULTS`). On clean traffic ``flags`` is empty, so a reading costs the encoder
and the sink's decoder seven array entries, not eleven.

The worker appends to these lists per accepted reading and the sink extends its table columns
with them, so no per-reading record exists on either side. :func:`ragged` checks the
invariants; :func:`rows` turns a batch back into one dict per reading (tests, canary, tools)
and :func:`columnar` does the opposite.
"""

from __future__ import annotations

from typing import Any

Record = dict[str, Any]

READING_FIELDS = ("reading_id", "sensor_id", "metric", "value", "unit", "quality", "event_time",
                  "arrival_lag_ms")
# the ReadingFlags fields but ``index``, with their Avro defaults (schemas/avro)
FLAG_DEFAULTS: dict[str, Any] = {"late": False, "alarm_level": 0, "anomalies": []}
FLAG_FIELDS = tuple(FLAG_DEFAULTS)


def empty_columns() -> dict[str, list[Any]]:
    """One empty list per reading field."""
    return {name: [] for name in READING_FIELDS}


def reading_count(batch: Record) -> int:
    """Accepted readings in ``batch`` (the length of its ``reading_id`` array)."""
    return len(batch["reading_id"])


def ragged(batch: Record) -> str | None:
    """None when every per-reading array has the same length and every flag entry names a
    reading (ascending, in range), else what is wrong."""
    count = len(batch["reading_id"])
    if any(len(batch[name]) != count for name in READING_FIELDS):   # once per message: cheap
        shown = ", ".join(f"{name}={len(batch[name])}" for name in READING_FIELDS)
        return f"per-reading arrays of unequal length ({shown})"
    last = -1
    for flag in batch.get("flags", ()):
        index = flag["index"]
        if not last < index < count:
            return (f"flags entry for reading index {index} is out of order or out of range "
                    f"(previous index {last}, {count} readings)")
        last = index
    return None


def rows(batch: Record) -> list[Record]:
    """The accepted readings of ``batch`` as one dict per reading (flags filled in)."""
    cols = [batch[name] for name in READING_FIELDS]
    out = [{**dict(zip(READING_FIELDS, values, strict=True)), **FLAG_DEFAULTS, "anomalies": []}
           for values in zip(*cols, strict=True)]   # a list of its own per row
    for flag in batch.get("flags", ()):
        out[flag["index"]].update({name: flag[name] for name in FLAG_FIELDS})
    return out


def columnar(readings: list[Record]) -> Record:
    """Per-reading dicts (with or without flag fields) as the batch's arrays and flags."""
    batch: Record = {name: [r[name] for r in readings] for name in READING_FIELDS}
    batch["flags"] = [{"index": i, **{name: r.get(name, FLAG_DEFAULTS[name])
                                      for name in FLAG_FIELDS}}
                      for i, r in enumerate(readings)
                      if any(r.get(name, FLAG_DEFAULTS[name]) != FLAG_DEFAULTS[name]
                             for name in FLAG_FIELDS)]
    return batch


def keep(batch: Record, wanted: list[bool]) -> Record:
    """``batch`` with only the readings whose entry in ``wanted`` is true (flags re-indexed)."""
    out = dict(batch)
    for name in READING_FIELDS:
        out[name] = [v for v, k in zip(batch[name], wanted, strict=True) if k]
    new_index, n = [], 0
    for k in wanted:
        new_index.append(n if k else -1)
        n += k
    out["flags"] = [{**f, "index": new_index[f["index"]]} for f in batch.get("flags", ())
                    if wanted[f["index"]]]
    return out
