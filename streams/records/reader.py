"""Read input files (JSON Lines, a JSON array, or CSV) into numbered rows, and validate them.

Bytes that are not UTF-8 are kept (as surrogate escapes) so that the converter can name the
field that holds them (INVALID_UTF8). Telemetry CSV rows (and flat JSON readings) are one
reading each, with gateway/enterprise columns; :func:`envelopes` groups valid ones.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from streams.records.convert import MIN_MILLIS, convert
from streams.records.rules import Violation

ENVELOPE_FIELDS = ("gateway_id", "enterprise_id", "sent_at", "sequence")


@dataclass
class Row:
    """One input record: where it came from, what it holds, and what is wrong with it."""

    line: int
    data: Any
    from_text: bool = False
    errors: list[Violation] = field(default_factory=list)
    record: dict[str, Any] | None = None
    flat_reading: bool = False


def read_rows(path: str | Path) -> Iterator[Row]:
    raw = Path(path).read_bytes()
    text = raw.decode("utf-8", "surrogateescape")
    if str(path).lower().endswith(".csv"):
        yield from _csv_rows(text)
    elif text.lstrip()[:1] == "[":
        yield from _array_rows(text)
    else:
        yield from _jsonl_rows(text)


def _jsonl_rows(text: str) -> Iterator[Row]:
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            yield Row(number, json.loads(line))
        except json.JSONDecodeError as exc:
            yield Row(number, line, errors=[Violation("", "WRONG_TYPE",
                                                      f"not valid JSON: {exc.msg} at column "
                                                      f"{exc.colno}")])


def _array_rows(text: str) -> Iterator[Row]:
    decoder = json.JSONDecoder()
    pos = text.index("[") + 1

    def skip(i: int) -> int:
        while i < len(text) and text[i] in " \t\r\n":
            i += 1
        return i

    pos = skip(pos)
    if pos < len(text) and text[pos] == "]":
        return
    while pos < len(text):
        line = text.count("\n", 0, pos) + 1
        try:
            obj, end = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            yield Row(exc.lineno, None, errors=[Violation("", "WRONG_TYPE", "not valid JSON: "
                                                          f"{exc.msg} at column {exc.colno}")])
            return
        yield Row(line, obj)
        pos = skip(end)
        if pos < len(text) and text[pos] == ",":
            pos = skip(pos + 1)
        elif pos < len(text) and text[pos] == "]":
            return
        else:
            yield Row(text.count("\n", 0, pos) + 1, None, errors=[Violation(
                "", "WRONG_TYPE", "not valid JSON: expected ',' or ']' between array items")])
            return


def _csv_rows(text: str) -> Iterator[Row]:
    reader = csv.DictReader(io.StringIO(text, newline=""))
    start = 2
    for row in reader:
        line = start
        start = reader.line_num + 1
        if None in row:
            yield Row(line, row, True, [Violation("", "WRONG_TYPE", f"{len(row[None])} more "
                                                  "values than there are columns")])
            continue
        yield Row(line, {k: v for k, v in row.items() if k is not None}, True)


def validate(rows: Iterable[Row], record: str) -> Iterator[Row]:
    """Convert each row to ``record``; telemetry rows without ``readings`` are flat readings."""
    for row in rows:
        if row.errors:
            yield row
            continue
        if record == "TelemetryBatch" and isinstance(row.data, dict) and \
                "readings" not in row.data:
            row.flat_reading = True
            row.record, row.errors = _flat_reading(row.data, row.from_text)
        else:
            row.record, row.errors = convert(record, row.data, row.from_text)
        yield row


def _flat_reading(data: dict[str, Any], from_text: bool) -> tuple[dict[str, Any] | None,
                                                                  list[Violation]]:
    reading = {k: v for k, v in data.items() if k not in ENVELOPE_FIELDS}
    envelope = {k: data[k] for k in ENVELOPE_FIELDS if data.get(k) not in (None, "")}
    envelope.setdefault("sent_at", MIN_MILLIS)  # placeholders, filled in by envelopes()
    envelope.setdefault("sequence", 0)
    envelope["readings"] = [reading]
    record, errors = convert("TelemetryBatch", envelope, from_text)
    if errors:
        return None, [Violation(e.field.removeprefix("readings[0]."), e.code, e.message)
                      for e in errors]
    assert record is not None
    for name in ("sent_at", "sequence"):
        if data.get(name) in (None, ""):
            record[name] = None
    return record, []


def envelopes(rows: Iterable[Row], batch_size: int, now_ms: int) -> list[
        tuple[dict[str, Any], list[Row]]]:
    """Group valid flat readings into TelemetryBatch envelopes per gateway, in input order.

    ``sent_at`` is the first row's sent_at or ``now_ms``; ``sequence`` the first row's
    sequence or a counter per gateway starting at ``now_ms`` (increasing across runs)."""
    open_: dict[tuple[str, str], tuple[dict[str, Any], list[Row]]] = {}
    out: list[tuple[dict[str, Any], list[Row]]] = []
    counters: dict[str, int] = {}
    for row in rows:
        assert row.record is not None
        key = (row.record["gateway_id"], row.record["enterprise_id"])
        current = open_.get(key)
        if current is None:
            seq = counters.get(key[0], now_ms)
            counters[key[0]] = seq + 1
            env = {**row.record, "readings": []}
            env["sent_at"] = row.record.get("sent_at") or now_ms
            env["sequence"] = row.record.get("sequence") or seq
            current = open_[key] = (env, [])
            out.append(current)
        current[0]["readings"].extend(row.record["readings"])
        current[1].append(row)
        if len(current[1]) >= batch_size:
            del open_[key]
    return out
