"""Clean-topic messages -> envelopes -> one list per column, ready for a columnar insert.

:class:`EnvelopeDecoder` is the sink's decoder: a message's bytes, decoded with the shared
codec (timestamps as int epoch millis, no datetime objects), become an :class:`Envelope`
bound for its table, or a dead letter (the codec's reason code, or RAGGED_COLUMNS for a
columnar record whose arrays disagree) bound for the dead-letter table. A columnar record
(e.g. an EnrichedTelemetryBatch: parallel per-reading arrays) extends the table's columns as
it is and the envelope's values repeat on each row, so no per-reading record is built.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import chain
from typing import Any

from schemas.catalog.model import Catalog
from schemas.codec import AvroDeserializer, DecodeError, SchemaSource, SerializationContext
from schemas.columns import ragged
from schemas.records import Source, dead_letter
from sinks.clickhouse.backend import Features
from sinks.clickhouse.schema import Field, TableSpec, table_specs

Columns = dict[str, list[Any]]


@dataclass(frozen=True)
class Envelope:
    """A decoded clean-topic message and where it was read."""

    record: dict[str, Any]
    topic: str        # clean topic (full name)
    partition: int
    offset: int
    table: str = ""   # base table the record goes to
    rows: int = 1     # table rows it makes


class EnvelopeDecoder:
    """``decoder(value, key, topic, partition, offset) -> (envelope, rows)`` for the sink: the
    table a clean-topic message goes to, or a dead letter for the dead-letter table. Counts
    rejects in ``on_reject(topic, code)``."""

    def __init__(self, catalog: Catalog, registry: SchemaSource, topic: Callable[[str], str],
                 on_reject: Callable[[str, str], None] = lambda topic, code: None) -> None:
        specs = table_specs(catalog)
        self.dead_table = catalog.dead_letter_table()
        self.routes = {topic(name): (specs[table.name], SerializationContext(topic(name),
                                                                             t.record))
                       for name, (t, table) in catalog.routes().items()}
        self.codec = AvroDeserializer(registry, catalog.schemas, millis=True)
        self.on_reject = on_reject

    def topics(self) -> list[str]:
        return list(self.routes)

    def __call__(self, value: bytes | None, key: bytes | None, topic: str, partition: int,
                 offset: int) -> tuple[Envelope, int]:
        spec, ctx = self.routes[topic]
        where = Source(topic, partition, offset)
        try:
            record, _ = self.codec(value, ctx)
        except DecodeError as exc:
            self.on_reject(topic, exc.code)
            record = dead_letter(where, key, value or b"", exc.code, exc.message, "sink",
                                 _now_ms())
            return Envelope(record, topic, partition, offset, self.dead_table), 1
        if spec.columnar:
            problem = ragged(record)
            if problem is not None:  # permanent: the whole message goes to the dead letters
                self.on_reject(topic, "RAGGED_COLUMNS")
                src = record["source"]
                record = dead_letter(
                    Source(src["topic"], src["partition"], src["offset"]), key, value or b"",
                    "RAGGED_COLUMNS", f"message on {topic}[{partition}]@{offset}: {problem}",
                    "sink", _now_ms(), tag=record.get("tag"))
                return Envelope(record, topic, partition, offset, self.dead_table), 1
        rows = rows_of(spec, record)
        return Envelope(record, topic, partition, offset, spec.name, rows), rows


def rows_of(spec: TableSpec, record: dict[str, Any]) -> int:
    """Table rows a record makes: one, or one per entry of a columnar record's arrays."""
    if not spec.columnar:
        return 1
    return len(record[spec.row_field])


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _getter(path: tuple[str, ...]) -> Callable[[dict[str, Any]], Any]:
    if len(path) == 1:
        key = path[0]
        return lambda r: r[key]
    first, second = path[0], path[1]
    return lambda r: r[first][second]


class TableEncoder:
    """Builds the columns of one table from envelopes."""

    def __init__(self, spec: TableSpec, features: Features) -> None:
        self.spec = spec
        self.features = features
        self.types: dict[str, str] = dict(spec.columns(features))
        self.fields: list[Field] = spec.fields()
        self._split_ms = not features.datetime64

    @property
    def column_names(self) -> list[str]:
        return list(self.types)

    def encode(self, envelopes: Sequence[Envelope], version: int, now_s: int) -> Columns:
        if self.spec.columnar:
            return self._encode_columnar(envelopes, version, now_s)
        cols: Columns = {}
        n = len(envelopes)
        for f in self.fields:
            self._put(cols, f, _per_envelope(f, envelopes))
        cols["_version"] = [version] * n
        cols["inserted_at"] = [now_s] * n
        return cols

    def _encode_columnar(self, envelopes: Sequence[Envelope], version: int,
                         now_s: int) -> Columns:
        row_field = self.spec.row_field
        items_per = [len(e.record[row_field]) for e in envelopes]
        total = sum(items_per)
        cols: Columns = {}
        per_envelope: Columns = {}
        for f in self.fields:
            if f.sparse:
                self._put(cols, f, _overlay(f, envelopes, items_per, total))
            elif f.item:
                key = f.path[0]
                self._put(cols, f, list(chain.from_iterable(e.record[key] for e in envelopes)))
            else:   # converted once per envelope, then repeated on each of its rows
                self._put(per_envelope, f, _per_envelope(f, envelopes))
        for name, per in per_envelope.items():
            values: list[Any] = []
            for value, count in zip(per, items_per, strict=True):
                values.extend([value] * count)
            cols[name] = values
        cols["_version"] = [version] * total
        cols["inserted_at"] = [now_s] * total
        return cols

    def _put(self, cols: Columns, f: Field, values: list[Any]) -> None:
        if f.kind == "timestamp" and self._split_ms:
            if f.nullable:
                cols[f.name] = [None if v is None else v // 1000 for v in values]
                cols[f.name + "_ms"] = [None if v is None else v % 1000 for v in values]
            else:
                cols[f.name] = [v // 1000 for v in values]
                cols[f.name + "_ms"] = [v % 1000 for v in values]
        else:
            cols[f.name] = values


def _overlay(f: Field, envelopes: Sequence[Envelope], items_per: list[int],
             total: int) -> list[Any]:
    """A per-row column from a sparse overlay: the default, set where an entry names the row."""
    values: list[Any] = [f.default] * total   # one shared default object: nothing mutates it
    key, start = f.path[0], 0
    for e, count in zip(envelopes, items_per, strict=True):
        for entry in e.record[f.sparse]:
            values[start + entry["index"]] = entry[key]
        start += count
    return values


def take(cols: Columns, start: int, stop: int) -> Columns:
    """Rows ``start:stop`` of a column set (for bisecting a rejected batch)."""
    return {name: values[start:stop] for name, values in cols.items()}


def row_count(cols: Columns) -> int:
    return len(next(iter(cols.values()))) if cols else 0


def _per_envelope(f: Any, envelopes: Sequence[Envelope]) -> list[Any]:
    """One value of field ``f`` per envelope: its clean-topic coordinates or a record path."""
    if f.name == "clean_topic":
        return [e.topic for e in envelopes]
    if f.name == "clean_partition":
        return [e.partition for e in envelopes]
    if f.name == "clean_offset":
        return [e.offset for e in envelopes]
    get = _getter(f.path)
    return [get(e.record) for e in envelopes]
