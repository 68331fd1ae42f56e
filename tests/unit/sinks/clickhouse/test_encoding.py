from __future__ import annotations

import io
import json

import fastavro
import pytest

from schemas.catalog import default_catalog
from schemas.codec import AvroDeserializer, AvroSerializer, DecodeError, SerializationContext
from schemas.registry import InMemoryRegistry
from sinks.clickhouse.encoding import Envelope, TableEncoder, take
from sinks.clickhouse.schema import table_specs
from tests.unit.sinks import factories as f
from tests.unit.sinks.fakes import MODERN, OLD

CATALOG = default_catalog()
SCHEMAS = CATALOG.schemas
SPECS = table_specs(CATALOG)
READINGS, INCIDENT_REPORTS, ALERTS = (SPECS[n] for n in ("readings_raw", "incident_reports_raw",
                                                         "alerts_raw"))


def decode(registry: InMemoryRegistry, record: str, data: bytes, topic: str) -> tuple[dict, int]:
    """What the sink's decoder does with a clean-topic message (the shared codec, millis)."""
    return AvroDeserializer(registry, millis=True)(data, SerializationContext(topic, record))


def test_reading_columns_extend_with_envelope_values_repeated() -> None:
    envs = [Envelope(f.telemetry(7, readings=3), "p.telemetry.clean", 2, 70),
            Envelope(f.telemetry(8, readings=2, gateway=9), "p.telemetry.clean", 2, 71)]
    cols = TableEncoder(READINGS, MODERN).encode(envs, version=5, now_s=100)
    assert len(cols["reading_id"]) == 5
    assert cols["gateway_id"] == ["gw-0001"] * 3 + ["gw-0009"] * 2
    assert cols["source_offset"] == [7, 7, 7, 8, 8]
    assert cols["clean_offset"] == [70, 70, 70, 71, 71]
    assert cols["event_time"][0] == f.T0 + 7000
    assert cols["_version"] == [5] * 5 and cols["inserted_at"] == [100] * 5
    assert set(cols) == set(TableEncoder(READINGS, MODERN).types)


def test_sparse_flags_become_per_row_columns_with_defaults_elsewhere() -> None:
    first = f.telemetry(7, readings=8)               # reading 6 is at alarm level 1
    second = f.telemetry(8, readings=3, late_every=2)  # readings 0 and 2 are late
    assert [x["index"] for x in first["flags"]] == [6]
    envs = [Envelope(first, "p.telemetry.clean", 0, 1), Envelope(second, "p.telemetry.clean", 0, 2)]
    cols = TableEncoder(READINGS, MODERN).encode(envs, version=1, now_s=1)
    assert cols["alarm_level"] == [0] * 6 + [1, 0] + [0, 0, 0]
    assert cols["anomalies"] == [[]] * 6 + [["ALARM_L1"], []] + [[], [], []]
    assert cols["late"] == [False] * 8 + [True, False, True]
    assert "flags" not in cols and "index" not in cols


def test_old_servers_get_seconds_and_millis() -> None:
    env = Envelope(f.incident(3), "p.incidents.clean", 0, 9)
    cols = TableEncoder(INCIDENT_REPORTS, OLD).encode([env], version=1, now_s=1)
    assert cols["reported_at"] == [(f.T0 + 3_000_003) // 1000]
    assert cols["reported_at_ms"] == [3]
    assert cols["deadline_at"] == [(f.T0 + 3_600_000) // 1000]
    assert "duplicate" not in cols


def test_nullable_timestamp_stays_null_on_old_servers() -> None:
    env = Envelope(f.hazard(1, deadline=None), "p.hazards.clean", 0, 1)
    cols = TableEncoder(SPECS["hazards_raw"], OLD).encode([env], version=1, now_s=1)
    assert cols["rectification_deadline"] == [None]
    assert cols["rectification_deadline_ms"] == [None]


def test_take_slices_every_column() -> None:
    envs = [Envelope(f.alert(i), "p.alerts", 0, i) for i in range(4)]
    cols = TableEncoder(ALERTS, MODERN).encode(envs, version=1, now_s=1)
    part = take(cols, 1, 3)
    assert part["alert_id"] == ["al-1", "al-2"]
    assert all(len(v) == 2 for v in part.values())


def _framed(registry: InMemoryRegistry, record: str, obj: dict) -> bytes:
    return AvroSerializer(registry)(obj, SerializationContext("p.telemetry.clean", record))


def test_decoder_keeps_timestamps_as_millis() -> None:
    registry = InMemoryRegistry()
    data = _framed(registry, "EnrichedTelemetryBatch", f.telemetry(4))
    record, schema_id = decode(registry, "EnrichedTelemetryBatch", data, "p.telemetry.clean")
    assert schema_id == 1
    assert record["sent_at"] == f.T0 + 4003
    assert record["event_time"][1] == f.T0 + 4001
    assert record["flags"] == []
    assert record["source"]["offset"] == 4


def test_decoder_resolves_an_older_writer_schema() -> None:
    registry = InMemoryRegistry()
    schema = json.loads(json.dumps(SCHEMAS.parsed("Alert"), default=str))
    schema = {k: v for k, v in schema.items() if not k.startswith("__")}
    schema["fields"] = [x for x in schema["fields"] if x["name"] != "tag"]
    schema_id = registry.register("p.alerts-value", json.dumps(schema))
    out = io.BytesIO()
    out.write(b"\x00" + schema_id.to_bytes(4, "big"))
    obj = {k: v for k, v in f.alert(1).items() if k != "tag"}
    fastavro.schemaless_writer(out, fastavro.parse_schema(schema, named_schemas={}), obj)
    record, _ = decode(registry, "Alert", out.getvalue(), "p.alerts")
    assert record["tag"] is None and record["raised_at"] == f.T0 + 1


@pytest.mark.parametrize(("data", "code"), [
    (b"", "EMPTY_MESSAGE"), (b"{json}", "NOT_CONFLUENT_FRAMED"),
    (b"\x00\x00\x00\x00\x63abc", "UNKNOWN_SCHEMA_ID"),
])
def test_decoder_errors_carry_codec_codes(data: bytes, code: str) -> None:
    with pytest.raises(DecodeError) as info:
        decode(InMemoryRegistry(), "Alert", data, "p.alerts")
    assert info.value.code == code


def test_decoder_truncated_and_wrong_schema() -> None:
    registry = InMemoryRegistry()
    good = _framed(registry, "Alert", f.alert(1))
    with pytest.raises(DecodeError) as info:
        decode(registry, "Alert", good[:-4], "p.alerts")
    assert info.value.code == "TRUNCATED_AVRO"
    other = _framed(registry, "GatewayStatus", f.gateway_status(1))
    with pytest.raises(DecodeError) as info:
        decode(registry, "Alert", other, "p.alerts")
    assert info.value.code == "WRONG_SCHEMA"
