from __future__ import annotations

import json
import math
from typing import Any

import pytest

from schemas.columns import READING_FIELDS, rows
from schemas.records import Source
from streams.metrics import Metrics
from streams.policy import Policy
from streams.processors.context import ProcessorContext
from streams.processors.dedup import id_hash
from streams.processors.reference import ReferenceData
from streams.processors.telemetry import TelemetryProcessor
from tests.unit.streams.processors.conftest import T0, encodes, value_of

RAW = b"\x00\x00\x00\x00\x01envelope"


def reading(rid: str, value: float, sensor: str = "s-1", metric: str = "METHANE",
            unit: str = "PERCENT_VOL", et: int = T0 - 1000,
            quality: str = "GOOD") -> dict[str, Any]:
    return {"reading_id": rid, "sensor_id": sensor, "metric": metric, "value": value,
            "unit": unit, "quality": quality, "event_time": et}


def envelope(readings: list[dict[str, Any]], seq: int = 1, gateway: str = "gw-1",
             enterprise: str = "ent-1") -> dict[str, Any]:
    return {"gateway_id": gateway, "enterprise_id": enterprise, "sent_at": T0 - 500,
            "sequence": seq, "readings": readings}


def src(offset: int, partition: int = 0) -> Source:
    return Source("ebi.telemetry", partition, offset, 1, T0)


@pytest.fixture
def proc(policy: Policy, reference: ReferenceData, metrics: Metrics) -> TelemetryProcessor:
    return TelemetryProcessor(ProcessorContext(policy, reference, metrics, ring_size=4))


def test_good_envelope_is_enriched_once(proc: TelemetryProcessor, metrics: Metrics) -> None:
    env = envelope([reading("r1", 0.2), reading("r2", 10.0, "s-2", "FLAMMABLE_GAS",
                                                "PERCENT_LEL")])
    out, state = proc.process(env, src(7), b"gw-1", RAW, None, T0 + 5)
    assert out.clean is not None and not out.dead_letters and not out.alerts
    clean = out.clean
    assert clean["source"] == {"topic": "ebi.telemetry", "partition": 0, "offset": 7,
                               "schema_id": 1}
    assert (clean["readings_in"], clean["duplicates"], clean["rejected"]) == (2, 0, 0)
    assert clean["region_code"] == "110101" and clean["received_at"] == T0 + 5
    assert clean["reading_id"] == ["r1", "r2"] and clean["metric"] == ["METHANE", "FLAMMABLE_GAS"]
    assert all(len(clean[name]) == 2 for name in READING_FIELDS)
    assert "readings" not in clean
    assert rows(clean)[0]["arrival_lag_ms"] == 1000
    assert rows(clean)[0]["late"] is False and rows(clean)[0]["anomalies"] == []
    encodes("EnrichedTelemetryBatch", clean)
    assert state is not None and set(state["sensors"]) == {"s-1", "s-2"}
    assert value_of(metrics.readings_in) == 2


@pytest.mark.parametrize(("bad", "code", "words"), [
    (reading("r2", 250.0, "s-2", "FLAMMABLE_GAS", "PERCENT_LEL"), "OUT_OF_RANGE",
     "250.0 PERCENT_LEL is outside the physical range [0.0, 100.0] of FLAMMABLE_GAS"),
    (reading("r2", -1.0), "OUT_OF_RANGE", "outside the physical range"),
    (reading("r2", math.nan), "OUT_OF_RANGE", "nan"),
    (reading("r2", 0.3, unit="PPM"), "UNIT_MISMATCH", "METHANE is measured in PERCENT_VOL"),
    (reading("r2", 0.3, et=T0 + 3_600_000), "FUTURE_EVENT_TIME", "beyond the allowed"),
    (reading("r2", 0.3, sensor="s-404"), "UNKNOWN_SENSOR", "sensor s-404 is not registered"),
    (reading("r2", 0.3, sensor="s-3"), "UNKNOWN_SENSOR",
     "sensor s-3 is registered for TEMPERATURE, not METHANE"),
])
def test_bad_reading_goes_to_dead_letters_alone(proc: TelemetryProcessor, bad: dict[str, Any],
                                                code: str, words: str) -> None:
    env = envelope([reading("r1", 0.2), bad, reading("r3", 0.21)])
    out, _ = proc.process(env, src(3), b"gw-1", RAW, None, T0)
    assert out.clean is not None
    assert [r["reading_id"] for r in rows(out.clean)] == ["r1", "r3"]
    assert out.clean["rejected"] == 1
    [dl] = out.dead_letters
    assert dl["error_code"] == code and dl["record_index"] == 1 and dl["record_id"] == "r2"
    alone = json.loads(dl["value"])     # only the reading, as a one-reading envelope
    assert [r["reading_id"] for r in alone["readings"]] == ["r2"]
    assert alone["gateway_id"] == "gw-1" and alone["sequence"] == env["sequence"]
    assert dl["key"] == b"gw-1" and dl["stage"] == "validate"
    assert dl["source"]["offset"] == 3
    assert "reading r2 (index 1) of envelope 1 from gateway gw-1" in dl["error_message"]
    assert words in dl["error_message"]
    encodes("DeadLetter", dl)


def test_many_bad_readings_make_few_dead_letters_and_one_copy_of_the_message(
        proc: TelemetryProcessor) -> None:
    bad = [reading(f"x{i}", 0.3, sensor="s-404") for i in range(500)]
    out, _ = proc.process(envelope([reading("r1", 0.2), *bad]), src(4), b"gw-1", RAW, None, T0)
    assert out.clean is not None and out.clean["rejected"] == 500
    alone, rest = out.dead_letters[:-1], out.dead_letters[-1]
    assert len(alone) == 10 and all(d["value"] != RAW for d in alone)
    assert rest["value"] == RAW and rest["record_index"] == 11
    assert "490 more readings" in rest["error_message"] and "UNKNOWN_SENSOR x490" in \
        rest["error_message"]
    assert sum(len(d["value"]) for d in out.dead_letters) < 2 * len(RAW) + 10 * 400


@pytest.mark.parametrize(("env", "code"), [
    (envelope([reading("r1", 0.2, et=-2**63)]), "BAD_TIMESTAMP"),
    (dict(envelope([reading("r1", 0.2)]), sent_at=-2**63), "BAD_TIMESTAMP"),
    (envelope([reading("r1", 0.2)] * 10_001), "TOO_MANY_READINGS"),
    (dict(envelope([reading("r1", 0.2)]), gateway_id="g" * 129), "TOO_LONG"),
    (envelope([reading("r" * 129, 0.2)]), "TOO_LONG"),
])
def test_bounds_reject_with_their_code(proc: TelemetryProcessor, env: dict[str, Any],
                                       code: str) -> None:
    out, _ = proc.process(env, src(5), b"gw-1", RAW, None, T0)
    assert [d["error_code"] for d in out.dead_letters][:1] == [code]
    for d in out.dead_letters:
        encodes("DeadLetter", d)
    if out.clean is not None:
        encodes("EnrichedTelemetryBatch", out.clean)


def test_unknown_enterprise_rejects_the_whole_envelope(proc: TelemetryProcessor) -> None:
    out, state = proc.process(envelope([reading("r1", 0.2)], enterprise="ent-x"), src(1),
                              b"gw-1", RAW, None, T0)
    assert out.clean is None and state is None
    [dl] = out.dead_letters
    assert dl["error_code"] == "UNKNOWN_ENTERPRISE" and dl["record_index"] is None


def test_duplicates_across_and_within_envelopes(proc: TelemetryProcessor,
                                                metrics: Metrics) -> None:
    _, state = proc.process(envelope([reading("r1", 0.2), reading("r2", 0.21)]), src(1),
                            None, RAW, None, T0)
    env = envelope([reading("r2", 0.21), reading("r3", 0.22), reading("r3", 0.22)], seq=2)
    out, state = proc.process(env, src(2), None, RAW, state, T0)
    assert out.clean is not None
    assert [r["reading_id"] for r in rows(out.clean)] == ["r3"]
    assert out.clean["duplicates"] == 2 and out.clean["readings_in"] == 3
    assert value_of(metrics.duplicates, type="telemetry") == 2


def test_replay_of_applied_message_is_skipped(proc: TelemetryProcessor) -> None:
    _, state = proc.process(envelope([reading("r1", 0.2)]), src(5), None, RAW, None, T0)
    out, state2 = proc.process(envelope([reading("r1", 0.2)]), src(5), None, RAW, state, T0)
    assert out.replay and out.clean is None and state2 is state
    # an older offset of the same partition too; another partition is not "applied"
    assert proc.process(envelope([reading("r0", 0.2)]), src(4), None, RAW, state, T0)[0].replay
    other = proc.process(envelope([reading("r9", 0.2)]), src(1, partition=1), None, RAW,
                         state, T0)[0]
    assert not other.replay and other.clean is not None


def test_same_coordinates_in_ring_are_not_duplicates(proc: TelemetryProcessor) -> None:
    """State written before the crash but older than this message's offset cannot happen;
    a ring hit with the same coordinates (state restored without applied_telemetry) is not a
    duplicate."""
    _, state = proc.process(envelope([reading("r1", 0.2)]), src(5), None, RAW, None, T0)
    assert state is not None
    del state["applied_telemetry"]
    out, _ = proc.process(envelope([reading("r1", 0.2)]), src(5), None, RAW, state, T0)
    assert out.clean is not None and out.clean["duplicates"] == 0


def test_ring_keeps_last_k_or_whole_latest_envelope(proc: TelemetryProcessor) -> None:
    big = envelope([reading(f"r{i}", 0.2 + i / 1000) for i in range(10)])
    _, state = proc.process(big, src(1), None, RAW, None, T0)
    assert state is not None and len(state["sensors"]["s-1"]["recent_ids"]) == 10   # > ring_size 4
    out, state = proc.process(big | {"sequence": 2}, src(2), None, RAW, state, T0)
    assert out.clean is not None and out.clean["duplicates"] == 10
    _, state = proc.process(envelope([reading("x1", 0.3)], seq=3), src(3), None, RAW, state, T0)
    assert state is not None
    ring = state["sensors"]["s-1"]
    assert ring["recent_ids"] == [id_hash(r) for r in ("r7", "r8", "r9", "x1")]
    assert ring["recent_envelopes"] == [[src(1).packed, T0, 3], [src(3).packed, T0, 1]]


def test_ring_forgets_readings_beyond_the_horizon(proc: TelemetryProcessor) -> None:
    _, state = proc.process(envelope([reading("r1", 0.2)]), src(1), None, RAW, None, T0)
    day = 86_400_000
    later = Source("ebi.telemetry", 0, 2, 1, T0 + day + 1)
    env = envelope([reading("r2", 0.2, et=T0 + day)], seq=2)
    _, state = proc.process(env, later, None, RAW, state, T0 + day)
    assert state is not None and state["sensors"]["s-1"]["recent_ids"] == [id_hash("r2")]
    assert state["sensors"]["s-1"]["recent_envelopes"] == [[later.packed, T0 + day + 1, 1]]


def test_late_readings_flagged_with_lag_and_one_alert(proc: TelemetryProcessor,
                                                      metrics: Metrics) -> None:
    env = envelope([reading("r1", 0.2, et=T0 - 180_000), reading("r2", 0.2, et=T0 - 60_000),
                    reading("r3", 10.0, "s-2", "FLAMMABLE_GAS", "PERCENT_LEL",
                            et=T0 - 121_000)])
    out, _ = proc.process(env, src(1), None, RAW, None, T0 + 999_999)   # worker clock ignored
    assert out.clean is not None
    flags = [(r["late"], r["arrival_lag_ms"]) for r in rows(out.clean)]
    assert flags == [(True, 180_000), (False, 60_000), (True, 121_000)]
    [alert] = out.alerts
    assert alert["alert_type"] == "LATE_TELEMETRY" and alert["subject_id"] == "gw-1"
    assert value_of(metrics.late_reports, kind="telemetry") == 2


def test_alarm_limits_flag_readings_and_alert_on_rising_edge(proc: TelemetryProcessor) -> None:
    values = [0.5, 1.2, 1.3, 1.6, 0.4]
    env = envelope([reading(f"r{i}", v, et=T0 - 10_000 + i) for i, v in enumerate(values)])
    out, _ = proc.process(env, src(1), None, RAW, None, T0)
    assert out.clean is not None
    levels = [r["alarm_level"] for r in rows(out.clean)]
    assert levels == [0, 1, 1, 2, 0]
    assert [r["anomalies"][:1] for r in rows(out.clean)][1:4] == [
        ["ALARM_L1"], ["ALARM_L1"], ["ALARM_L2"]]
    types = [a["alert_type"] for a in out.alerts if a["alert_type"].startswith("ALARM")]
    assert types == ["ALARM_L1", "ALARM_L2"]
    l1 = next(a for a in out.alerts if a["alert_type"] == "ALARM_L1")
    assert l1["subject_type"] == "sensor" and l1["subject_id"] == "s-1"
    assert l1["value"] == 1.2 and l1["threshold"] == 1.0 and l1["severity"] == "WARNING"
    assert l1["region_code"] == "110101" and l1["enterprise_id"] == "ent-1"
    encodes("Alert", l1)


def test_sensor_own_limits_take_precedence(proc: TelemetryProcessor) -> None:
    env = envelope([reading("r1", 61.0, "s-3", "TEMPERATURE", "CELSIUS")])
    out, _ = proc.process(env, src(1), None, RAW, None, T0)
    assert out.clean is not None and rows(out.clean)[0]["alarm_level"] == 1


def test_bad_quality_readings_pass_unscored(proc: TelemetryProcessor) -> None:
    env = envelope([reading("r1", 1.4, quality="BAD")])
    out, state = proc.process(env, src(1), None, RAW, None, T0)
    assert out.clean is not None and rows(out.clean)[0]["anomalies"] == []
    assert not out.alerts and state is not None and state["sensors"]["s-1"]["readings_scored"] == 0


def test_canary_envelopes_are_tagged(proc: TelemetryProcessor) -> None:
    env = envelope([reading("r1", 0.2)], gateway="canary-r1-gw", enterprise="canary-r1-ent")
    out, _ = proc.process(env, src(1), None, RAW, None, T0)
    assert out.clean is not None and out.clean["tag"] == "canary-r1"


def test_gateway_back_online_from_telemetry(proc: TelemetryProcessor) -> None:
    _, state = proc.process(envelope([reading("r1", 0.2)]), src(1), None, RAW, None, T0)
    later = Source("ebi.telemetry", 0, 2, 1, T0 + 600_000)
    env = envelope([reading("r2", 0.3, et=T0 + 599_000)], seq=2) | {"sent_at": T0 + 599_500}
    out, state = proc.process(env, later, None, RAW, state, T0 + 600_000)
    assert [s["status"] for s in out.statuses] == ["OFFLINE", "ONLINE"]
    assert {a["alert_type"] for a in out.alerts} == {"GATEWAY_OFFLINE", "GATEWAY_ONLINE"}


def test_envelope_from_the_future_is_rejected_whole(proc: TelemetryProcessor) -> None:
    env = envelope([reading("r1", 0.2)]) | {"sent_at": T0 + 3_600_000}
    out, state = proc.process(env, src(1), None, RAW, None, T0)
    assert out.clean is None and state is None
    assert [d["error_code"] for d in out.dead_letters] == ["FUTURE_EVENT_TIME"]


def test_an_envelope_older_than_what_the_ring_remembers_is_marked_for_a_recheck(
        proc: TelemetryProcessor) -> None:
    first = envelope([reading(f"a{i}", 0.2, et=T0 - 60_000 + i) for i in range(10)], seq=1)
    out, state = proc.process(first, src(1), b"gw-1", RAW, None, T0)
    assert out.clean is not None and not out.clean["recheck"]
    later = envelope([reading(f"b{i}", 0.2, et=T0 - 30_000 + i) for i in range(10)], seq=2)
    out, state = proc.process(later, src(2), b"gw-1", RAW, state, T0)
    assert out.clean is not None and not out.clean["recheck"]    # in order: nothing to check
    replay = envelope([reading("a3", 0.2, et=T0 - 60_000 + 3)], seq=1)
    out, state = proc.process(replay, src(3), b"gw-1", RAW, state, T0)
    assert out.clean is not None and out.clean["recheck"]         # ring (4) forgot a3
    encodes("EnrichedTelemetryBatch", out.clean)
