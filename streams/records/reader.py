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

from streams.records.convert import MIN_MILLIS, convert, record_fields
from streams.records.rules import Violation


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


def _json_error(exc: Exception) -> Violation:
    """Why a JSON text cannot be read: a syntax error, nesting too deep for the parser, or a
    number too long to be one."""
    if isinstance(exc, json.JSONDecodeError):
        return Violation("", "WRONG_TYPE", f"not valid JSON: {exc.msg} at column {exc.colno}")
    if isinstance(exc, RecursionError):
        return Violation("", "WRONG_TYPE", "not valid JSON: nested too deeply")
    return Violation("", "WRONG_TYPE", f"not valid JSON: {str(exc)[:120]}")


def _jsonl_rows(text: str) -> Iterator[Row]:
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            yield Row(number, json.loads(line))
        except (ValueError, RecursionError) as exc:  # JSONDecodeError is a ValueError
            yield Row(number, line[:200], errors=[_json_error(exc)])


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
        except (ValueError, RecursionError) as exc:
            where = exc.lineno if isinstance(exc, json.JSONDecodeError) else line
            yield Row(where, None, errors=[_json_error(exc)])
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
    while True:
        line = start
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:  # e.g. a field over the csv module's 131,072 characters
            start = reader.line_num + 1
            yield Row(line, None, True, [Violation("", "WRONG_TYPE", f"not valid CSV: {exc}")])
            continue
        start = reader.line_num + 1
        if None in row:
            yield Row(line, row, True, [Violation("", "WRONG_TYPE", f"{len(row[None])} more "
                                                  "values than there are columns")])
            continue
        yield Row(line, {k: v for k, v in row.items() if k is not None}, True)


def validate(rows: Iterable[Row], record: str, flat_items: str = "") -> Iterator[Row]:
    """Convert each row to ``record``. With ``flat_items`` (the record type's array of items,
    e.g. a telemetry envelope's ``readings``), a row without that field is one flat item with
    the envelope's fields beside it."""
    layout = EnvelopeLayout.of(record, flat_items) if flat_items else None
    for row in rows:
        if row.errors:
            yield row
            continue
        if layout is not None and isinstance(row.data, dict) and flat_items not in row.data:
            row.flat_reading = True
            row.record, row.errors = layout.flat(row.data, row.from_text)
        else:
            row.record, row.errors = convert(record, row.data, row.from_text)
        yield row


class EnvelopeLayout:
    """An envelope record seen from its flat rows: the items array, the fields that group
    rows into envelopes (the envelope's string fields, e.g. gateway and enterprise), and the
    fields a flat row may leave out: the envelope's time (filled with the publishing time)
    and its counter (a sequence per group)."""

    def __init__(self, record: str, items: str, fields: list[dict[str, Any]]) -> None:
        self.record = record
        self.items = items
        others = [f for f in fields if f["name"] != items and "default" not in f]
        self.group = tuple(f["name"] for f in others if f["type"] == "string")
        self.time = tuple(f["name"] for f in others if isinstance(f["type"], dict)
                          and f["type"].get("logicalType") == "timestamp-millis")
        self.counter = tuple(f["name"] for f in others if f["type"] in ("long", "int"))
        self.fields = self.group + self.time + self.counter

    @classmethod
    def of(cls, record: str, items: str) -> EnvelopeLayout:
        return cls(record, items, record_fields(record))

    def flat(self, data: dict[str, Any], from_text: bool) -> tuple[dict[str, Any] | None,
                                                                  list[Violation]]:
        item = {k: v for k, v in data.items() if k not in self.fields}
        envelope = {k: data[k] for k in self.fields if data.get(k) not in (None, "")}
        for name in self.time:
            envelope.setdefault(name, MIN_MILLIS)  # placeholders, filled in by envelopes()
        for name in self.counter:
            envelope.setdefault(name, 0)
        envelope[self.items] = [item]
        record, errors = convert(self.record, envelope, from_text)
        prefix = f"{self.items}[0]."
        if errors:
            return None, [Violation(e.field.removeprefix(prefix), e.code, e.message)
                          for e in errors]
        assert record is not None
        for name in self.time + self.counter:
            if data.get(name) in (None, ""):
                record[name] = None
        return record, []


def envelopes(rows: Iterable[Row], batch_size: int, now_ms: int, record: str,
              items: str) -> list[tuple[dict[str, Any], list[Row]]]:
    """Group valid flat rows into envelopes per group (e.g. per gateway), in input order.

    The envelope's time is the first row's or ``now_ms``; its counter the first row's or a
    counter per group starting at ``now_ms`` (increasing across runs)."""
    open_: dict[tuple[Any, ...], tuple[dict[str, Any], list[Row]]] = {}
    out: list[tuple[dict[str, Any], list[Row]]] = []
    counters: dict[Any, int] = {}
    layout = EnvelopeLayout.of(record, items)
    for row in rows:
        assert row.record is not None
        key = tuple(row.record[name] for name in layout.group)
        current = open_.get(key)
        if current is None:
            seq = counters.get(key[:1], now_ms)
            counters[key[:1]] = seq + 1
            env = {**row.record, items: []}
            for name in layout.time:
                env[name] = row.record.get(name) or now_ms
            for name in layout.counter:
                env[name] = row.record.get(name) or seq
            current = open_[key] = (env, [])
            out.append(current)
        current[0][items].extend(row.record[items])
        current[1].append(row)
        if len(current[1]) >= batch_size:
            del open_[key]
    return out
