"""Avro records of the clean topics -> one list per column, ready for a columnar insert.

Decoding keeps timestamps as int epoch millis (no datetime objects): the writer and reader
schemas are used without their logical types. An EnrichedTelemetryBatch is columnar (parallel
per-reading arrays): its arrays extend the table's columns as they are and the envelope's
values repeat on each row, so no per-reading record is built. Errors keep the codes of
:mod:`schemas.codec` so the sink can route a bad message to the dead letters.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import chain
from typing import Any

import fastavro

from schemas.catalog import parsed
from schemas.codec import AvroDeserializer, DecodeError, SchemaSource, SerializationContext
from sinks.clickhouse.schema import Features, Field, TableSpec

_HEADER = struct.Struct(">bI")
Columns = dict[str, list[Any]]


def _strip(schema: Any) -> Any:
    if isinstance(schema, dict):
        return {k: _strip(v) for k, v in schema.items()
                if k != "logicalType" and not k.startswith("__")}
    if isinstance(schema, list):
        return [_strip(s) for s in schema]
    return schema


class RecordDecoder:
    """``decoder(data, topic) -> (record, schema_id)`` for one record type, timestamps as
    epoch millis. Raises :class:`DecodeError` (same codes as :class:`AvroDeserializer`)."""

    def __init__(self, registry: SchemaSource, record: str) -> None:
        self.registry = registry
        self.record = record
        self._reader_raw = _strip(parsed(record))
        self._reader = fastavro.parse_schema(self._reader_raw, named_schemas={})
        self._writers: dict[int, tuple[Any, Any]] = {}  # id -> (writer, reader or None)

    def _writer(self, schema_id: int, topic: str) -> tuple[Any, Any]:
        found = self._writers.get(schema_id)
        if found is None:
            try:
                full = self.registry.schema_for_id(schema_id)
            except KeyError:
                raise DecodeError("UNKNOWN_SCHEMA_ID", f"message on {topic}: schema id "
                                  f"{schema_id} is not in the registry") from None
            raw = _strip(full)
            if raw.get("name") != self._reader_raw.get("name"):
                raise DecodeError("WRONG_SCHEMA", f"message on {topic}: schema id {schema_id} "
                                  f"is {raw.get('name')}, this topic carries {self.record}")
            writer = fastavro.parse_schema(raw, named_schemas={})
            found = (writer, None if raw == self._reader_raw else self._reader)
            self._writers[schema_id] = found
        return found

    def __call__(self, data: bytes | None, topic: str) -> tuple[dict[str, Any], int]:
        if not data or len(data) < 5 or data[0] != 0:
            return self._slow(data, topic)
        schema_id = int(_HEADER.unpack_from(data)[1])
        writer, reader = self._writer(schema_id, topic)
        body = io.BytesIO(data)
        body.seek(5)
        try:
            record = fastavro.schemaless_reader(body, writer, reader)
        except Exception:
            return self._slow(data, topic)
        if body.tell() != len(data) or not isinstance(record, dict):
            return self._slow(data, topic)
        return record, schema_id

    def _slow(self, data: bytes | None, topic: str) -> tuple[dict[str, Any], int]:
        """Let the shared codec explain what is wrong (it raises the right DecodeError)."""
        AvroDeserializer(self.registry)(data, SerializationContext(topic, self.record))
        raise DecodeError("INVALID_AVRO", f"message on {topic}: cannot decode as {self.record}")


@dataclass(frozen=True)
class Envelope:
    """A decoded clean-topic message and where it was read."""

    record: dict[str, Any]
    topic: str        # clean topic (full name)
    partition: int
    offset: int
    table: str = ""   # base table the record goes to


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
        rows_of = next(f.path[0] for f in self.fields if f.item and not f.sparse)
        items_per = [len(e.record[rows_of]) for e in envelopes]
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
