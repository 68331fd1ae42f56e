"""Confluent-framed Avro in and out, with timestamps as int epoch millis.

The shared codec (:mod:`schemas.codec`) turns every ``timestamp-millis`` into an aware
datetime. Per reading that is measurable, and processors want ints anyway, so this subclass
decodes and encodes with the logical type stripped from both schemas: the bytes on the wire
are identical (a long), only the Python value differs. Writer schemas are fetched once per id
through the same registry cache; when the writer schema equals our reader schema (the normal
case) fastavro's fast path without schema resolution is used.
"""

from __future__ import annotations

import io
import json
import struct
from typing import Any

import fastavro

from schemas.catalog import schema_text
from schemas.codec import (
    MAX_MESSAGE_BYTES,
    AvroDeserializer,
    AvroSerializer,
    DecodeError,
    SchemaSource,
    SerializationContext,
)
from streams.processors.common import Record, Source, canary_tag, dead_letter

_HEADER = struct.Struct(">bI")


def strip_millis(schema: Any) -> Any:
    """A copy of a (parsed or JSON) schema without timestamp-millis logical types."""
    if isinstance(schema, dict):
        return {k: strip_millis(v) for k, v in schema.items()
                if not k.startswith("__")
                and not (k == "logicalType" and v == "timestamp-millis")}
    if isinstance(schema, list):
        return [strip_millis(item) for item in schema]
    return schema


_READERS: dict[str, Any] = {}


def millis_schema(record: str) -> Any:
    """Our current schema for ``record``, parsed, timestamps as plain longs (cached)."""
    schema = _READERS.get(record)
    if schema is None:
        schema = fastavro.parse_schema(strip_millis(json.loads(schema_text(record))),
                                       named_schemas={})
        _READERS[record] = schema
    return schema


class MillisDeserializer(AvroDeserializer):
    """:class:`schemas.codec.AvroDeserializer` with int-millis timestamps (same error codes)."""

    def __init__(self, registry: SchemaSource, max_bytes: int = MAX_MESSAGE_BYTES) -> None:
        super().__init__(registry, max_bytes)
        self._resolved: dict[tuple[int, str], Any] = {}

    def schemas(self, schema_id: int, record: str, where: str) -> tuple[Any, Any]:
        """The registry's writer schema (fetched and name-checked by the base class) with its
        timestamp logical types stripped, so timestamps stay int millis."""
        key = (schema_id, record)
        writer = self._resolved.get(key)
        reader = millis_schema(record)
        if writer is None:
            raw, _ = super().schemas(schema_id, record, where)
            stripped = fastavro.parse_schema(strip_millis(raw), named_schemas={})
            writer = reader if stripped == reader else stripped
            self._resolved[key] = writer
        return writer, reader


class MillisSerializer(AvroSerializer):
    """:class:`schemas.codec.AvroSerializer` taking int-millis timestamps (same bytes)."""

    def __call__(self, obj: dict[str, Any], ctx: SerializationContext) -> bytes:
        out = io.BytesIO()
        out.write(self.header(ctx.topic, ctx.record))
        fastavro.schemaless_writer(out, millis_schema(ctx.record), obj)
        return out.getvalue()


def decode_or_dead_letter(deserializer: AvroDeserializer, record: str, source: Source,
                          key: bytes | None, value: bytes | None, now_ms: int) -> tuple[
        dict[str, Any] | None, Source, Record | None]:
    """(decoded record, source with the writer schema id, None) or (None, source, dead letter
    with the decode error code, the original bytes and the coordinates)."""
    try:
        decoded, schema_id = deserializer(value, SerializationContext(source.topic, record))
    except DecodeError as exc:
        src = source.with_schema(deserializer.schema_id(value))
        return None, src, dead_letter(src, key, value or b"", exc.code, exc.message, "decode",
                                      now_ms, tag=_key_tag(key))
    return decoded, source.with_schema(schema_id), None


def _key_tag(key: bytes | None) -> str | None:
    if not key:
        return None
    try:
        return canary_tag(key.decode("utf-8"))
    except UnicodeDecodeError:
        return None
