"""Confluent wire format (magic byte 0, 4-byte schema id, Avro body) with fastavro bodies.

Serializers are small callables ``(obj, ctx) -> bytes`` in the confluent-kafka style; the
decoder raises :class:`DecodeError` with a stable ``code`` and a message that says what,
where and why, so the caller can route the original bytes to the dead letters.
"""

from __future__ import annotations

import io
import json
import struct
from dataclasses import dataclass
from typing import Any, Protocol

import fastavro

from schemas.catalog import parsed

MAGIC = 0
_HEADER = struct.Struct(">bI")
MAX_MESSAGE_BYTES = 4 * 1024 * 1024


class DecodeError(ValueError):
    """An input that cannot be read as the record it should be."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class SchemaSource(Protocol):
    """What the codec needs from a schema registry; see :mod:`schemas.registry`."""

    def schema_for_id(self, schema_id: int) -> Any: ...           # parsed writer schema
    def id_for(self, subject: str, record: str) -> int: ...        # registers if needed


@dataclass(frozen=True)
class SerializationContext:
    topic: str
    record: str


class AvroSerializer:
    """``serializer(obj, ctx) -> bytes``; the schema id is looked up once per subject."""

    def __init__(self, registry: SchemaSource) -> None:
        self.registry = registry
        self._ids: dict[tuple[str, str], bytes] = {}

    def header(self, topic: str, record: str) -> bytes:
        key = (topic, record)
        header = self._ids.get(key)
        if header is None:
            schema_id = self.registry.id_for(f"{topic}-value", record)
            header = self._ids[key] = _HEADER.pack(MAGIC, schema_id)
        return header

    def __call__(self, obj: dict[str, Any], ctx: SerializationContext) -> bytes:
        out = io.BytesIO()
        out.write(self.header(ctx.topic, ctx.record))
        fastavro.schemaless_writer(out, parsed(ctx.record), obj)
        return out.getvalue()


class AvroDeserializer:
    """``deserializer(data, ctx) -> (record dict, schema id)``, resolving the writer's schema
    (fetched once per id) to our current reader schema for ``ctx.record``."""

    def __init__(self, registry: SchemaSource, max_bytes: int = MAX_MESSAGE_BYTES) -> None:
        self.registry = registry
        self.max_bytes = max_bytes
        self._writers: dict[int, Any] = {}

    def schema_id(self, data: bytes | None) -> int | None:
        if data is None or len(data) < 5 or data[0] != MAGIC:
            return None
        return int(_HEADER.unpack_from(data)[1])

    def schemas(self, schema_id: int, record: str, where: str) -> tuple[Any, Any]:
        """The (writer, reader) schemas for a message; the writer is fetched once per id."""
        writer = self._writers.get(schema_id)
        if writer is None:
            try:
                writer = self.registry.schema_for_id(schema_id)
            except KeyError:
                raise DecodeError("UNKNOWN_SCHEMA_ID", f"{where}: schema id {schema_id} is not in "
                                  "the registry") from None
            self._writers[schema_id] = writer
        reader = parsed(record)
        if writer.get("name") != reader.get("name"):
            raise DecodeError("WRONG_SCHEMA", f"{where}: schema id {schema_id} is "
                              f"{writer.get('name')}, this topic carries {reader.get('name')}")
        return writer, reader

    def __call__(self, data: bytes | None, ctx: SerializationContext) -> tuple[dict[str, Any], int]:
        where = f"message on {ctx.topic}"
        if data is None or len(data) == 0:
            raise DecodeError("EMPTY_MESSAGE", f"{where}: no value (tombstone or empty bytes)")
        if len(data) > self.max_bytes:
            raise DecodeError("OVERSIZE", f"{where}: {len(data)} bytes, over the limit of "
                              f"{self.max_bytes}")
        if len(data) < 5 or data[0] != MAGIC:
            raise DecodeError("NOT_CONFLUENT_FRAMED", f"{where}: does not start with magic byte 0 "
                              "and a 4-byte schema id (not Confluent wire format)")
        schema_id = int(_HEADER.unpack_from(data)[1])
        writer, reader = self.schemas(schema_id, ctx.record, where)
        body = io.BytesIO(data)
        body.seek(5)
        try:
            record = fastavro.schemaless_reader(body, writer, reader)
        except (EOFError, IndexError, struct.error):
            raise DecodeError("TRUNCATED_AVRO", f"{where}: the Avro body ends early "
                              f"({len(data) - 5} bytes after the header)") from None
        except UnicodeDecodeError as exc:
            raise DecodeError("INVALID_UTF8", f"{where}: a string field is not UTF-8 "
                              f"({exc.reason} at byte {exc.start})") from None
        except Exception as exc:  # fastavro raises assorted errors on corrupt bodies
            raise DecodeError("INVALID_AVRO", f"{where}: cannot decode as {reader.get('name')} "
                              f"with schema id {schema_id}: {exc}") from None
        if body.tell() != len(data):
            raise DecodeError("TRAILING_BYTES", f"{where}: {len(data) - body.tell()} bytes left "
                              "after the record (wrong schema or corrupt message)")
        if not isinstance(record, dict):  # pragma: no cover - schemas are records
            raise DecodeError("INVALID_AVRO", f"{where}: not a record")
        return record, schema_id


def schema_json(record: str) -> str:
    """Canonical JSON text of a schema (for comparisons in tests and registry calls)."""
    return json.dumps(parsed(record))
