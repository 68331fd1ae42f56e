from __future__ import annotations

from datetime import UTC, datetime

import pytest
from prometheus_client import CollectorRegistry

from schemas.catalog import default_catalog
from schemas.codec import AvroDeserializer, AvroSerializer, SerializationContext, strip_millis
from schemas.records import Record, Source
from schemas.registry import InMemoryRegistry
from streams.metrics import Metrics
from streams.policy import load_policy
from streams.processors.base import DictStore
from streams.processors.context import ProcessorContext
from streams.processors.reference import ReferenceData
from streams.worker.pipeline import Pipeline
from tests.unit.streams.processors.conftest import T0

CATALOG = default_catalog()
SCHEMAS = CATALOG.schemas

def MillisDeserializer(registry: InMemoryRegistry) -> AvroDeserializer:
    return AvroDeserializer(registry, millis=True)


def MillisSerializer(registry: InMemoryRegistry) -> AvroSerializer:
    return AvroSerializer(registry, millis=True)


def decode_or_dead_letter(deserializer: AvroDeserializer, record: str, source: Source,
                          key: bytes | None, value: bytes | None, now_ms: int
                          ) -> tuple[Record | None, Source, Record | None]:
    """The worker's decode step (:meth:`Pipeline.decode`) for a telemetry message."""
    policy = load_policy()
    ctx = ProcessorContext(policy, ReferenceData(policy), Metrics.create(CollectorRegistry()))
    stores = {name: DictStore() for name in CATALOG.state_groups()}
    pipeline = Pipeline(CATALOG, ctx, deserializer, stores)
    logical = next(k.input.name for k in CATALOG.processed if k.input.record == record)
    found, src, out = pipeline.decode(logical, source, key, value, now_ms)
    return found, src, (out.dead_letters[0] if out is not None else None)


TOPIC = "ebi.telemetry"
CTX = SerializationContext(TOPIC, "TelemetryBatch")
SRC = Source(TOPIC, 2, 41, None, T0)


def batch() -> dict[str, object]:
    return {"gateway_id": "gw-1", "enterprise_id": "ent-1", "sent_at": T0, "sequence": 3,
            "readings": [{"reading_id": "r1", "sensor_id": "s-1", "metric": "METHANE",
                          "value": 0.3, "unit": "PERCENT_VOL", "quality": "GOOD",
                          "event_time": T0 - 5}]}


@pytest.fixture
def registry() -> InMemoryRegistry:
    return InMemoryRegistry()


def test_int_millis_round_trip_and_same_bytes_as_shared_codec(
        registry: InMemoryRegistry) -> None:
    data = MillisSerializer(registry)(batch(), CTX)
    as_datetimes = dict(batch(), sent_at=datetime.fromtimestamp(T0 / 1000, UTC))
    assert AvroSerializer(registry)(as_datetimes, CTX) == data
    record, schema_id = MillisDeserializer(registry)(data, CTX)
    assert record == batch() and schema_id == 1


def test_older_writer_schema_is_resolved(registry: InMemoryRegistry) -> None:
    """A writer schema that differs from ours (e.g. an older version) goes through resolution."""
    import json

    old = json.loads(SCHEMAS.text("GatewayHeartbeat"))
    old["fields"] = [f for f in old["fields"] if f["name"] != "firmware"]
    old_id = registry.register("ebi.heartbeats-value", json.dumps(old))
    import io

    import fastavro

    body = io.BytesIO()
    fastavro.schemaless_writer(body, fastavro.parse_schema(strip_millis(old)),
                               {"gateway_id": "gw", "enterprise_id": "e", "sent_at": T0,
                                "sequence": 1, "interval_s": 5})
    data = b"\x00" + old_id.to_bytes(4, "big") + body.getvalue()
    record, _ = MillisDeserializer(registry)(data, SerializationContext(
        "ebi.heartbeats", "GatewayHeartbeat"))
    assert record["firmware"] is None and record["sent_at"] == T0


@pytest.mark.parametrize(("data", "code"), [
    (b"", "EMPTY_MESSAGE"),
    (None, "EMPTY_MESSAGE"),
    (b'{"json": true}', "NOT_CONFLUENT_FRAMED"),
    (b"\x00\x00\x00\x00\x63abc", "UNKNOWN_SCHEMA_ID"),
])
def test_framing_errors(registry: InMemoryRegistry, data: bytes | None, code: str) -> None:
    record, _src, dl = decode_or_dead_letter(MillisDeserializer(registry), "TelemetryBatch", SRC,
                                            b"gw-1", data, T0)
    assert record is None and dl is not None
    assert dl["error_code"] == code and dl["stage"] == "decode"
    assert dl["value"] == (data or b"") and dl["key"] == b"gw-1"
    assert dl["source"]["partition"] == 2 and dl["source"]["offset"] == 41


def test_body_errors(registry: InMemoryRegistry) -> None:
    des = MillisDeserializer(registry)
    good = MillisSerializer(registry)(batch(), CTX)
    cases = {"TRUNCATED_AVRO": good[:-4], "TRAILING_BYTES": good + b"\x00\x01"}
    wrong = MillisSerializer(registry)({"gateway_id": "g", "enterprise_id": "e", "sent_at": T0,
                                        "sequence": 1, "interval_s": 5, "firmware": None},
                                       SerializationContext("ebi.heartbeats", "GatewayHeartbeat"))
    cases["WRONG_SCHEMA"] = wrong
    for code, data in cases.items():
        _, src, dl = decode_or_dead_letter(des, "TelemetryBatch", SRC, None, data, T0)
        assert dl is not None and dl["error_code"] == code, code
        assert dl["source"]["schema_id"] == src.schema_id is not None


def test_canary_key_tags_dead_letters(registry: InMemoryRegistry) -> None:
    _, _, dl = decode_or_dead_letter(MillisDeserializer(registry), "TelemetryBatch", SRC,
                                     b"canary-abc-gw1", b"junk", T0)
    assert dl is not None and dl["tag"] == "canary-abc"
