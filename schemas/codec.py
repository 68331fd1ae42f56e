"""Confluent wire format (magic byte 0, 4-byte schema id, Avro body) with fastavro bodies.

The one codec of ebi: the worker, the sink, the reference feed and the tools use it.
Serializers are small callables ``(obj, ctx) -> bytes`` in the confluent-kafka style; the
deserializer raises :class:`DecodeError` with a stable ``code`` and a message that says what,
where and why, so the caller can route the original bytes to the dead letters.

``millis=True`` keeps every ``timestamp-millis`` field an int of epoch milliseconds (the
logical type is stripped from writer and reader schemas: the bytes on the wire are the same
long). The worker and the sink use it; per reading, datetime objects are measurable and
the processors want ints anyway. Writer schemas are fetched once per id; when the writer's
schema equals ours (the normal case) fastavro reads without schema resolution.
"""

from __future__ import annotations

import io
import json
import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import fastavro

if TYPE_CHECKING:
    from schemas.catalog.model import SchemaStore

MAGIC = 0
HEADER = struct.Struct(">bi")   # Confluent schema ids are signed 32-bit ints
MAX_MESSAGE_BYTES = 4 * 1024 * 1024


class DecodeError(ValueError):
    """An input that cannot be read as the record it should be."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class SchemaSource(Protocol):
    """What the codec needs from a schema registry; see :mod:`schemas.registry`.

    ``schema_for_id`` returns the parsed writer schema, raises KeyError for an id the
    registry does not have and ValueError for a schema that is not Avro; any other
    exception means the registry cannot answer now."""

    def schema_for_id(self, schema_id: int) -> Any: ...
    def id_for(self, subject: str, schema_text: str) -> int: ...   # registers if needed


@dataclass(frozen=True)
class SerializationContext:
    topic: str      # full topic name
    record: str     # Avro record name (our schema for the topic)


def _schemas(store: SchemaStore | None) -> SchemaStore:
    if store is not None:
        return store
    from schemas.catalog import default_catalog

    return default_catalog().schemas


def strip_millis(schema: Any) -> Any:
    """A copy of a (parsed or JSON) schema without timestamp-millis logical types."""
    if isinstance(schema, dict):
        return {k: strip_millis(v) for k, v in schema.items()
                if not k.startswith("__")
                and not (k == "logicalType" and v == "timestamp-millis")}
    if isinstance(schema, list):
        return [strip_millis(item) for item in schema]
    return schema


def schema_id(data: bytes | None) -> int | None:
    """The schema id of a Confluent-framed message, None when it is not framed."""
    if data is None or len(data) < HEADER.size or data[0] != MAGIC:
        return None
    return int(HEADER.unpack_from(data)[1])


INT32 = 2**31


def _int_fields(schema: Any) -> tuple[str, ...]:
    """Top-level fields of type int (or [null, int]): fastavro decodes an over-long varint
    into an int beyond 32 bits, which must not pass as one."""
    def is_int(t: Any) -> bool:
        return t == "int" or (isinstance(t, list) and "int" in t)
    return tuple(f["name"] for f in schema.get("fields", ()) if is_int(f["type"]))


class _Readers:
    """Our schemas as the codec reads and writes them (timestamps as datetimes or millis)."""

    def __init__(self, store: SchemaStore, millis: bool) -> None:
        self.store = store
        self.millis = millis
        self._parsed: dict[str, Any] = {}
        self._ints: dict[str, tuple[str, ...]] = {}

    def ints(self, record: str) -> tuple[str, ...]:
        found = self._ints.get(record)
        if found is None:
            found = self._ints[record] = _int_fields(self.store.json(record))
        return found

    def __call__(self, record: str) -> Any:
        schema = self._parsed.get(record)
        if schema is None:
            raw = self.store.json(record)
            schema = fastavro.parse_schema(strip_millis(raw) if self.millis else raw,
                                           named_schemas={})
            self._parsed[record] = schema
        return schema


class AvroSerializer:
    """``serializer(obj, ctx) -> bytes``; the schema id is looked up once per subject."""

    def __init__(self, registry: SchemaSource, schemas: SchemaStore | None = None, *,
                 millis: bool = False) -> None:
        self.registry = registry
        self.schemas = _schemas(schemas)
        self.reader = _Readers(self.schemas, millis)
        self._ids: dict[tuple[str, str], bytes] = {}

    def header(self, topic: str, record: str) -> bytes:
        key = (topic, record)
        header = self._ids.get(key)
        if header is None:
            schema_id = self.registry.id_for(f"{topic}-value", self.schemas.text(record))
            header = self._ids[key] = HEADER.pack(MAGIC, schema_id)
        return header

    def body(self, obj: dict[str, Any], record: str) -> bytes:
        """The Avro body alone (what a spool keeps; the header is added when sending)."""
        out = io.BytesIO()
        fastavro.schemaless_writer(out, self.reader(record), obj)
        return out.getvalue()

    def __call__(self, obj: dict[str, Any], ctx: SerializationContext) -> bytes:
        out = io.BytesIO()
        out.write(self.header(ctx.topic, ctx.record))
        fastavro.schemaless_writer(out, self.reader(ctx.record), obj)
        return out.getvalue()


class AvroDeserializer:
    """``deserializer(data, ctx) -> (record dict, schema id)``, resolving the writer's schema
    (fetched once per id) to our current schema for ``ctx.record``."""

    def __init__(self, registry: SchemaSource, schemas: SchemaStore | None = None, *,
                 millis: bool = False, max_bytes: int = MAX_MESSAGE_BYTES) -> None:
        self.registry = registry
        self.schemas = _schemas(schemas)
        self.millis = millis
        self.max_bytes = max_bytes
        self.reader = _Readers(self.schemas, millis)
        self._writers: dict[int, Any] = {}
        self._resolved: dict[tuple[int, str], tuple[Any, Any]] = {}

    schema_id = staticmethod(schema_id)

    def writer(self, schema_id: int, where: str) -> Any:
        """The registry's schema for ``schema_id`` (fetched once; failures are not cached)."""
        writer = self._writers.get(schema_id)
        if writer is not None:
            return writer
        try:
            writer = self.registry.schema_for_id(schema_id)
        except KeyError:
            raise DecodeError("UNKNOWN_SCHEMA_ID", f"{where}: schema id {schema_id} is not in "
                              "the registry") from None
        except ValueError as exc:
            raise DecodeError("WRONG_SCHEMA", f"{where}: schema id {schema_id} is not an Avro "
                              f"schema: {exc}") from None
        except Exception as exc:  # the registry is down or answered garbage: not our data
            raise DecodeError("REGISTRY_UNAVAILABLE", f"{where}: the schema registry could "
                              f"not give schema id {schema_id}: {type(exc).__name__}: "
                              f"{str(exc)[:200]}") from None
        self._writers[schema_id] = writer
        return writer

    def schemas_for(self, schema_id: int, record: str, where: str) -> tuple[Any, Any]:
        """(writer, reader) to decode with; reader None when no resolution is needed."""
        key = (schema_id, record)
        found = self._resolved.get(key)
        if found is not None:
            return found
        raw = self.writer(schema_id, where)
        reader = self.reader(record)
        name = raw.get("name") if isinstance(raw, dict) else None
        if name != reader.get("name") or raw.get("type") != "record":
            shown = name or (raw.get("type") if isinstance(raw, dict) else json.dumps(raw)[:80])
            raise DecodeError("WRONG_SCHEMA", f"{where}: schema id {schema_id} is {shown}, "
                              f"this topic carries {reader.get('name')}")
        writer = fastavro.parse_schema(strip_millis(raw), named_schemas={}) \
            if self.millis else raw
        found = self._resolved[key] = (writer, None if writer == reader else reader)
        return found

    def __call__(self, data: bytes | None, ctx: SerializationContext) -> tuple[dict[str, Any], int]:
        where = f"message on {ctx.topic}"
        if data is None or len(data) == 0:
            raise DecodeError("EMPTY_MESSAGE", f"{where}: no value (tombstone or empty bytes)")
        if len(data) > self.max_bytes:
            raise DecodeError("OVERSIZE", f"{where}: {len(data)} bytes, over the limit of "
                              f"{self.max_bytes}")
        if len(data) < HEADER.size or data[0] != MAGIC:
            raise DecodeError("NOT_CONFLUENT_FRAMED", f"{where}: does not start with magic byte 0 "
                              "and a 4-byte schema id (not Confluent wire format)")
        sid = int(HEADER.unpack_from(data)[1])
        if sid <= 0:   # registries number schemas from 1
            raise DecodeError("UNKNOWN_SCHEMA_ID", f"{where}: schema id {sid} is not a "
                              "registry id")
        writer, reader = self.schemas_for(sid, ctx.record, where)
        body = io.BytesIO(data)
        body.seek(HEADER.size)
        try:
            record = fastavro.schemaless_reader(body, writer, reader)
        except (EOFError, IndexError, struct.error):
            raise DecodeError("TRUNCATED_AVRO", f"{where}: the Avro body ends early "
                              f"({len(data) - HEADER.size} bytes after the header)") from None
        except UnicodeDecodeError as exc:
            raise DecodeError("INVALID_UTF8", f"{where}: a string field is not UTF-8 "
                              f"({exc.reason} at byte {exc.start})") from None
        except RecursionError:
            raise DecodeError("INVALID_AVRO", f"{where}: nested too deeply") from None
        except Exception as exc:  # fastavro raises assorted errors on corrupt bodies
            raise DecodeError("INVALID_AVRO", f"{where}: cannot decode as {ctx.record} "
                              f"with schema id {sid}: {str(exc)[:200]}") from None
        if body.tell() != len(data):
            raise DecodeError("TRAILING_BYTES", f"{where}: {len(data) - body.tell()} bytes left "
                              "after the record (wrong schema or corrupt message)")
        if not isinstance(record, dict):
            raise DecodeError("INVALID_AVRO", f"{where}: not a record")
        for name in self.reader.ints(ctx.record):
            value = record.get(name)
            if value is not None and not -INT32 <= value < INT32:
                raise DecodeError("INVALID_AVRO", f"{where}: field {name} holds {value}, which "
                                  "does not fit an Avro int (corrupt varint)")
        return record, sid
