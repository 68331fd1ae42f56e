"""Schema registry access through the Confluent-compatible API (Apicurio's ``/apis/ccompat/v7``).

Schemas are fetched once and cached: the codec asks for an id once per subject and for a
writer schema once per id, never per message.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import fastavro

COMPATIBILITY = "BACKWARD_TRANSITIVE"
UNKNOWN_TTL = 60.0    # seconds an id the registry did not have is not asked again
OPEN_FOR = 5.0        # seconds no lookup is tried after the registry failed


class RegistryUnavailable(RuntimeError):
    """The registry cannot answer now (it failed a moment ago)."""


def parse_writer(schema_type: str | None, text: str | None) -> Any:
    """A registry's schema text, parsed; ValueError when it is not an Avro schema (a
    PROTOBUF or JSON schema, or text that does not parse)."""
    if (schema_type or "AVRO").upper() != "AVRO":
        raise ValueError(f"it is a {schema_type} schema")
    try:
        return fastavro.parse_schema(json.loads(text or "null"), named_schemas={})
    except Exception as exc:  # json and fastavro raise assorted errors on bad schemas
        raise ValueError(f"the schema does not parse: {str(exc)[:200]}") from None


class SchemaRegistry:
    """A caching wrapper over confluent-kafka's ``SchemaRegistryClient``."""

    def __init__(self, url: str, timeout: float = 10.0,
                 config: dict[str, Any] | None = None) -> None:
        """``config``: further client settings (basic auth, CA; build them with
        ``streams.clients.registry``, which every caller should use)."""
        from confluent_kafka.schema_registry import SchemaRegistryClient

        self.url = url
        self.client = SchemaRegistryClient({"url": url, "timeout": int(timeout),
                                            **(config or {})})
        self._lock = threading.Lock()
        self._by_id: dict[int, Any] = {}
        self._ids: dict[tuple[str, str], int] = {}
        self._unknown: dict[int, float] = {}    # id -> until when "not in the registry"
        self._open_until = 0.0
        self._why = ""

    def _failed(self, exc: BaseException) -> None:
        with self._lock:
            self._open_until = time.monotonic() + OPEN_FOR
            self._why = f"{type(exc).__name__}: {str(exc)[:200]}"

    def schema_for_id(self, schema_id: int) -> Any:
        """The writer schema of ``schema_id``: KeyError when the registry has no such id
        (remembered for ``UNKNOWN_TTL`` s, so a stream of bogus ids costs one request each
        at most that often), ValueError when it is not an Avro schema, RegistryUnavailable
        while the registry fails (after one failure, for ``OPEN_FOR`` s, without asking:
        messages with new ids must not wait a timeout each)."""
        from confluent_kafka.schema_registry.error import SchemaRegistryError

        now = time.monotonic()
        with self._lock:
            cached = self._by_id.get(schema_id)
            if cached is not None:
                return cached
            if self._unknown.get(schema_id, 0.0) > now:
                raise KeyError(schema_id)
            if self._open_until > now:
                raise RegistryUnavailable(f"the registry at {self.url} failed "
                                          f"{self._open_until - now:.0f} s ago: {self._why}")
        try:
            schema = self.client.get_schema(schema_id)
        except SchemaRegistryError as exc:
            if exc.http_status_code == 404:
                with self._lock:
                    if len(self._unknown) > 10_000:
                        self._unknown.clear()
                    self._unknown[schema_id] = now + UNKNOWN_TTL
                raise KeyError(schema_id) from None
            self._failed(exc)
            raise
        except Exception as exc:  # connection refused, timeouts, bad answers
            self._failed(exc)
            raise
        parsed = parse_writer(schema.schema_type, schema.schema_str)
        with self._lock:
            self._by_id[schema_id] = parsed
        return parsed

    def id_for(self, subject: str, schema_text: str) -> int:
        key = (subject, schema_text)
        with self._lock:
            cached = self._ids.get(key)
        if cached is not None:
            return cached
        schema_id = self.register(subject, schema_text)
        with self._lock:
            self._ids[key] = schema_id
        return schema_id

    def register(self, subject: str, text: str) -> int:
        from confluent_kafka.schema_registry import Schema

        return int(self.client.register_schema(subject, Schema(text, "AVRO")))

    def set_compatibility(self, subject: str, level: str = COMPATIBILITY) -> None:
        self.client.set_compatibility(subject_name=subject, level=level)

    def is_compatible(self, subject: str, text: str) -> bool:
        from confluent_kafka.schema_registry import Schema

        return bool(self.client.test_compatibility(subject, Schema(text, "AVRO")))


class InMemoryRegistry:
    """A registry fake for unit tests: ids in registration order, no compatibility rules."""

    def __init__(self) -> None:
        self._texts: dict[int, str] = {}
        self._subjects: dict[tuple[str, str], int] = {}

    def register(self, subject: str, text: str) -> int:
        canonical = json.dumps(json.loads(text), sort_keys=True)
        for (subj, known), schema_id in self._subjects.items():
            if subj == subject and known == canonical:
                return schema_id
        schema_id = len(self._texts) + 1
        self._texts[schema_id] = text
        self._subjects[(subject, canonical)] = schema_id
        return schema_id

    def id_for(self, subject: str, schema_text: str) -> int:
        return self.register(subject, schema_text)

    def schema_for_id(self, schema_id: int) -> Any:
        if schema_id not in self._texts:
            raise KeyError(schema_id)
        return parse_writer("AVRO", self._texts[schema_id])
