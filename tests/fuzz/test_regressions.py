"""Every reproducer of the hostile-input findings, kept as a test (W1-W6, R1-R4, S1, the
start-up hang, NaN and out-of-range figures)."""

from __future__ import annotations

import io
import json
import struct
from pathlib import Path
from typing import Any

import fastavro
import pytest
from prometheus_client import CollectorRegistry

from schemas.catalog import default_catalog
from schemas.codec import AvroSerializer, DecodeError, SerializationContext, strip_millis
from schemas.registry import InMemoryRegistry
from streams.cli.publish import prepare
from streams.metrics import Metrics
from streams.policy import load_policy
from streams.worker.state import StateCache
from tests.fuzz.test_worker_fuzz import NOW, harness, run_one

CATALOG = default_catalog()
POLICY = load_policy()


def decode(data: bytes, registry: Any = None, record: str = "TelemetryBatch") -> str:
    from schemas.codec import AvroDeserializer

    try:
        AvroDeserializer(registry or InMemoryRegistry(), millis=True)(
            data, SerializationContext("t", record))
    except DecodeError as exc:
        return exc.code
    return "decoded"


def test_w1_a_schema_id_of_2_31_or_more_is_an_unknown_id_and_its_dead_letter_encodes() -> None:
    assert decode(b"\x00\x80\x00\x00\x00" + b"\x02" * 8) == "UNKNOWN_SCHEMA_ID"
    pipeline, sender, _ = harness()
    run_one(pipeline, sender, "telemetry", b"\x00\xff\xff\xff\xff\x02", 1)


@pytest.mark.parametrize("answer", ["string", ["null", "string"], RuntimeError("HTTP 500"),
                                    ValueError("a PROTOBUF schema")])
def test_w2_whatever_the_registry_answers(answer: Any) -> None:
    from tests.fuzz.test_codec_fuzz import HostileRegistry

    assert decode(b"\x00\x00\x00\x00\x05\x02", HostileRegistry(answer)) in (
        "WRONG_SCHEMA", "REGISTRY_UNAVAILABLE")


def test_w3_times_far_in_the_past_are_rejected_and_nothing_overflows() -> None:
    pipeline, sender, registry = harness()
    env = {"gateway_id": "g-1", "enterprise_id": "e-1", "sent_at": NOW, "sequence": 1,
           "readings": [{"reading_id": "r", "sensor_id": "s-1", "metric": "METHANE",
                         "value": 0.1, "unit": "PERCENT_VOL", "quality": "GOOD",
                         "event_time": -2**63}]}
    ser = AvroSerializer(registry, millis=True)
    run_one(pipeline, sender, "telemetry", ser(env, SerializationContext(
        "f.telemetry", "TelemetryBatch")), 1)
    run_one(pipeline, sender, "telemetry", ser(dict(env, sent_at=-2**63), SerializationContext(
        "f.telemetry", "TelemetryBatch")), 2)


def test_w4_outputs_stay_under_the_producer_limit() -> None:
    pipeline, sender, registry = harness()
    env = {"gateway_id": "g-1", "enterprise_id": "e-1", "sent_at": NOW, "sequence": 1,
           "readings": [{"reading_id": f"{i:0>128}", "sensor_id": "s-1", "metric": "METHANE",
                         "value": 0.1, "unit": "PERCENT_VOL", "quality": "GOOD",
                         "event_time": NOW - 1000} for i in range(POLICY.limits.max_readings)]}
    value = AvroSerializer(registry, millis=True)(env, SerializationContext(
        "f.telemetry", "TelemetryBatch"))
    run_one(pipeline, sender, "telemetry", value, 1)   # OVERSIZE input: one small dead letter


def test_w5_many_rejected_readings_do_not_amplify() -> None:
    pipeline, sender, registry = harness()
    env = {"gateway_id": "g-1", "enterprise_id": "e-1", "sent_at": NOW, "sequence": 1,
           "readings": [{"reading_id": f"r{i}", "sensor_id": "nobody", "metric": "METHANE",
                         "value": 0.1, "unit": "PERCENT_VOL", "quality": "GOOD",
                         "event_time": NOW - 1000} for i in range(9_000)]}
    value = AvroSerializer(registry, millis=True)(env, SerializationContext(
        "f.telemetry", "TelemetryBatch"))
    run_one(pipeline, sender, "telemetry", value, 1)


def test_w6_a_changelog_value_that_is_not_a_state_starts_the_key_afresh() -> None:
    seen: list[bytes] = []
    cache = StateCache({b"k": b"not json {", b"j": b"[1, 2]"}, "gateways",
                       on_corrupt=lambda key, exc: seen.append(key))
    assert cache.get(b"k") is None and cache.get(b"j") is None
    assert seen == [b"k", b"j"]


def test_int_beyond_avro_int_range_in_an_int_field_is_invalid_avro() -> None:
    registry = InMemoryRegistry()
    text = CATALOG.schemas.text("IncidentReport")
    schema_id = registry.register("t-value", text)
    wide = json.loads(text)
    for f in wide["fields"]:
        if f["name"] == "deaths":
            f["type"] = "long"
    body = io.BytesIO()
    fastavro.schemaless_writer(body, fastavro.parse_schema(strip_millis(wide)), {
        "incident_id": "i", "report_id": "r", "stage": "INITIAL", "kind": "PRODUCTION_SAFETY",
        "industry": None, "disaster_category": None, "occurred_at": NOW, "reported_at": NOW,
        "reporting_unit": "u", "reporting_level": "COUNTY", "region_code": "110101",
        "declared_level": "ORDINARY", "deaths": 2**40, "missing": 0, "serious_injuries": 0,
        "direct_economic_loss_cny": 0.0, "affected_population": 0, "description": "",
        "publication": "INTERNAL"})
    data = struct.pack(">bI", 0, schema_id) + body.getvalue()
    assert decode(data, registry, "IncidentReport") == "INVALID_AVRO"


@pytest.mark.parametrize(("text", "kind", "code"), [
    ("[" * 100_000, "telemetry", "WRONG_TYPE"),                                   # R1
    ('{"incident_id": "i", "deaths": ' + "9" * 5000 + "}", "incident", "WRONG_TYPE"),  # R2
])
def test_r1_r2_deep_nesting_and_huge_numbers(tmp_path: Path, text: str, kind: str,
                                             code: str) -> None:
    path = tmp_path / "x.jsonl"
    path.write_text(text)
    out = prepare(path, kind, POLICY, NOW)
    assert [v.code for r in out.rejects for v in r.errors] == [code]


@pytest.mark.parametrize("stamp", ["²", "1" * 5000, "0001-01-01T00:00:00Z"])
def test_r3_odd_timestamps(tmp_path: Path, stamp: str) -> None:
    path = tmp_path / "x.jsonl"
    path.write_text(json.dumps({"gateway_id": "g", "enterprise_id": "e", "sensor_id": "s",
                                "reading_id": "r", "metric": "METHANE", "unit": "PERCENT_VOL",
                                "value": 0.1, "quality": "GOOD", "event_time": stamp}))
    out = prepare(path, "telemetry", POLICY, NOW)
    assert [v.code for r in out.rejects for v in r.errors] == ["BAD_TIMESTAMP"]


def test_r4_a_csv_field_over_131072_characters(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_text("gateway_id,enterprise_id,sensor_id,reading_id\ng,e,s," + "r" * 200_000)
    out = prepare(path, "telemetry", POLICY, NOW)
    assert [v.code for r in out.rejects for v in r.errors] == ["WRONG_TYPE"]


@pytest.mark.parametrize("loss", [float("nan"), float("inf"), 1e20])
def test_nan_and_unbounded_economic_loss_are_rejected(loss: float) -> None:
    from streams.records.rules import check_incident

    report = {"region_code": "110101", "deaths": 0, "direct_economic_loss_cny": loss,
              "occurred_at": NOW, "reported_at": NOW}
    assert [v.code for v in check_incident(report, POLICY, NOW)] == ["OUT_OF_RANGE"]


def test_the_reference_feed_is_in_sync_at_once_with_empty_topics() -> None:
    """The start-up hang: sync() on empty reference topics returns at once, and it never
    asks the consumer the feed thread polls."""
    from streams.settings import Settings
    from streams.worker.reference import ReferenceFeed

    class Offsets:
        def get_watermark_offsets(self, tp: Any, timeout: float) -> tuple[int, int]:
            return 0, 0

    class Busy:
        def assignment(self) -> Any:
            raise AssertionError("the feed thread's consumer must not be asked")

    from streams.processors.reference import ReferenceData

    feed = ReferenceFeed(Settings(), CATALOG, InMemoryRegistry(), ReferenceData(POLICY),
                         Metrics.create(CollectorRegistry()))
    feed._partitions = [("ebi.enterprises", 0), ("ebi.sensors", 0)]
    feed._offsets, feed._consumer = Offsets(), Busy()
    assert feed.sync(timeout=1.0) is True and feed.loaded.is_set()
