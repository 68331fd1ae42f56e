import io
import json
import struct
from typing import Any

import fastavro
import pytest

from schemas.catalog import default_catalog
from schemas.codec import AvroDeserializer, AvroSerializer, DecodeError, SerializationContext
from schemas.registry import InMemoryRegistry

CATALOG = default_catalog()
SCHEMAS = CATALOG.schemas

CTX = SerializationContext("t.telemetry", "TelemetryBatch")
BATCH = {"gateway_id": "gw-1", "enterprise_id": "ent-1", "sent_at": 1767225600000,
         "sequence": 7, "readings": [
             {"reading_id": "r1", "sensor_id": "s1", "metric": "METHANE", "value": 0.25,
              "unit": "PERCENT_VOL", "quality": "GOOD", "event_time": 1767225599000}]}


def codec() -> tuple[InMemoryRegistry, AvroSerializer, AvroDeserializer]:
    registry = InMemoryRegistry()
    return registry, AvroSerializer(registry), AvroDeserializer(registry)


def test_round_trip_in_confluent_wire_format() -> None:
    registry, ser, de = codec()
    data = ser(BATCH, CTX)
    magic, schema_id = struct.unpack(">bI", data[:5])
    assert magic == 0 and schema_id == registry.id_for("t.telemetry-value",
                                                       SCHEMAS.text("TelemetryBatch"))
    record, got_id = de(data, CTX)
    assert got_id == schema_id
    assert record["readings"][0]["reading_id"] == "r1"
    assert int(record["sent_at"].timestamp() * 1000) == BATCH["sent_at"]


def test_schema_id_looked_up_once() -> None:
    class Counting(InMemoryRegistry):
        calls = 0

        def id_for(self, subject: str, schema_text: str) -> int:
            Counting.calls += 1
            return super().id_for(subject, schema_text)

    ser = AvroSerializer(Counting())
    for _ in range(5):
        ser(BATCH, CTX)
    assert Counting.calls == 1


@pytest.mark.parametrize(("data", "code"), [
    (b"", "EMPTY_MESSAGE"), (None, "EMPTY_MESSAGE"), (b"{\"json\": 1}", "NOT_CONFLUENT_FRAMED"),
    (b"\x00\x00\x00\x03\xe7" + b"\x02", "UNKNOWN_SCHEMA_ID"),
])
def test_decode_errors(data: bytes | None, code: str) -> None:
    _, _, de = codec()
    with pytest.raises(DecodeError) as info:
        de(data, CTX)
    assert info.value.code == code


def test_truncated_trailing_oversize_and_wrong_schema() -> None:
    registry, ser, de = codec()
    data = ser(BATCH, CTX)
    with pytest.raises(DecodeError) as info:
        de(data[:12], CTX)
    assert info.value.code == "TRUNCATED_AVRO"
    with pytest.raises(DecodeError) as info:
        de(data + b"\x00\x00", CTX)
    assert info.value.code == "TRAILING_BYTES"
    with pytest.raises(DecodeError) as info:
        AvroDeserializer(registry, max_bytes=10)(data, CTX)
    assert info.value.code == "OVERSIZE"
    beat = {"gateway_id": "g", "enterprise_id": "e", "sent_at": 1, "sequence": 1}
    other = ser(beat, SerializationContext("t.heartbeats", "GatewayHeartbeat"))
    with pytest.raises(DecodeError) as info:
        de(other, CTX)
    assert info.value.code == "WRONG_SCHEMA"


def test_invalid_utf8() -> None:
    _, ser, de = codec()
    data = ser(BATCH, CTX)
    corrupt = data.replace(b"gw-1", b"g\xff\xfe1")
    with pytest.raises(DecodeError) as info:
        de(corrupt, CTX)
    assert info.value.code == "INVALID_UTF8"


def test_every_topic_schema_parses_and_keys_exist() -> None:
    for spec in CATALOG.all_topics():
        schema = json.loads(SCHEMAS.text(spec.record))
        assert schema["namespace"] == "ebi.v1"
        names = {f["name"] for f in schema["fields"]}
        assert not spec.key or spec.key in names
        assert SCHEMAS.parsed(spec.record)["name"] == f"ebi.v1.{spec.record}"


def test_old_writer_new_reader_resolution() -> None:
    """Data written with a v1 schema is read with v2 (an added optional field) and back."""
    v1 = json.loads(SCHEMAS.text("GatewayHeartbeat"))
    v2 = json.loads(SCHEMAS.text("GatewayHeartbeat"))
    v2["fields"].append({"name": "uptime_s", "type": ["null", "long"], "default": None})
    p1 = fastavro.parse_schema(v1, named_schemas={})
    p2 = fastavro.parse_schema(v2, named_schemas={})
    beat = {"gateway_id": "g", "enterprise_id": "e", "sent_at": 1767225600000, "sequence": 1,
            "interval_s": 30, "firmware": None}
    out = io.BytesIO()
    fastavro.schemaless_writer(out, p1, beat)
    out.seek(0)
    new: Any = fastavro.schemaless_reader(out, p1, p2)
    assert new["uptime_s"] is None
    out = io.BytesIO()
    fastavro.schemaless_writer(out, p2, {**beat, "uptime_s": 5})
    out.seek(0)
    old: Any = fastavro.schemaless_reader(out, p2, p1)
    assert "uptime_s" not in old
