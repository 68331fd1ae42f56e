"""Schema registry access through the Confluent-compatible API (Apicurio's ``/apis/ccompat/v7``).

Schemas are fetched once and cached: the codec asks for an id once per subject and for a
writer schema once per id, never per message.
"""

from __future__ import annotations

import json
import threading
from typing import Any

import fastavro

from schemas.catalog import schema_text

COMPATIBILITY = "BACKWARD_TRANSITIVE"


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

    def schema_for_id(self, schema_id: int) -> Any:
        from confluent_kafka.schema_registry.error import SchemaRegistryError

        with self._lock:
            cached = self._by_id.get(schema_id)
        if cached is not None:
            return cached
        try:
            schema = self.client.get_schema(schema_id)
        except SchemaRegistryError as exc:
            if exc.http_status_code == 404:
                raise KeyError(schema_id) from None
            raise
        parsed = fastavro.parse_schema(json.loads(schema.schema_str or "null"), named_schemas={})
        with self._lock:
            self._by_id[schema_id] = parsed
        return parsed

    def id_for(self, subject: str, record: str) -> int:
        key = (subject, record)
        with self._lock:
            cached = self._ids.get(key)
        if cached is not None:
            return cached
        schema_id = self.register(subject, schema_text(record))
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

    def id_for(self, subject: str, record: str) -> int:
        return self.register(subject, schema_text(record))

    def schema_for_id(self, schema_id: int) -> Any:
        if schema_id not in self._texts:
            raise KeyError(schema_id)
        return fastavro.parse_schema(json.loads(self._texts[schema_id]), named_schemas={})
