"""The generator's ground truth, recomputed independently from the traffic it produced."""

from __future__ import annotations

import io
from collections import Counter, defaultdict
from functools import cache
from typing import Any

import fastavro
import pytest

from schemas.catalog import default_catalog
from schemas.catalog.model import resolve
from schemas.codec import AvroDeserializer, DecodeError, SerializationContext
from schemas.registry import InMemoryRegistry
from streams.policy import LEVELS, load_policy
from streams.records.rules import implied_level
from streams.simulate import SimConfig, Simulator

CATALOG = default_catalog()
SCHEMAS = CATALOG.schemas


def check_of(topic: str) -> Any:
    """The checks of the record type read from ``topic``."""
    return resolve(CATALOG.of_input(topic).checks)

POLICY = load_policy()
BASE = SimConfig(seed=7, rate=1500, duration_s=90, enterprises=6, gateways_per_enterprise=2,
                 sensors_per_gateway=6, anomalies=10, invalid_rate=0.05, incidents_per_min=20,
                 hazards_per_min=10, late_report_rate=0.3, concealment_rate=0.3,
                 figure_jump_rate=0.3, duplicate_report_rate=0.2, late_rate=0.001,
                 duplicate_rate=0.002, silent_gateways=2, silent_for_s=40)


@cache
def run(config: SimConfig) -> tuple[list[Any], list[dict[str, Any]]]:
    sim = Simulator(config, POLICY)
    events = list(sim)
    return events, sim.truth


def limits(events: list[Any]) -> dict[str, tuple[float, float, str]]:
    out = {}
    for topic, _, sensor, _ in events:
        if topic == "sensors":
            mp = POLICY.metrics[sensor["metric"]]
            out[sensor["sensor_id"]] = (sensor["alarm_level1"] or mp.alarm_level1,
                                        sensor["alarm_level2"] or mp.alarm_level2,
                                        sensor["metric"])
    return out


def detect(events: list[Any]) -> dict[str, set]:
    """Reference detectors over the clean, deduplicated readings in arrival order."""
    lim = limits(events)
    seen: set[str] = set()
    last: dict[str, float] = {}
    run_len: Counter[str] = Counter()
    ewma: dict[str, list[float]] = {}
    count: Counter[str] = Counter()
    found: dict[str, set] = defaultdict(set)
    for topic, _, value, _ in events:
        if topic != "telemetry" or isinstance(value, bytes):
            continue
        for r in value["readings"]:
            if r["reading_id"] in seen or check_of("telemetry")(
                    {"readings": [r]}, POLICY, r["event_time"]):
                continue
            seen.add(r["reading_id"])
            sid, v = r["sensor_id"], r["value"]
            l1, l2, _ = lim[sid]
            if l1 < v <= l2:
                found["ALARM_L1"].add(r["reading_id"])
            elif v > l2:
                found["ALARM_L2"].add(r["reading_id"])
            prev = last.get(sid)
            if prev is not None and abs(v - prev) > POLICY.spike_ratio * l1 and v < l1 \
                    and prev < l1:
                found["SPIKE"].add(r["reading_id"])
            run_len[sid] = run_len[sid] + 1 if prev == v else 1
            if run_len[sid] >= POLICY.flatline_count:
                found["FLATLINE"].add(sid)
            state = ewma.setdefault(sid, [v, 0.0])
            count[sid] += 1
            if count[sid] > POLICY.outlier_warmup and state[1] > 0 and \
                    abs(v - state[0]) / state[1] > POLICY.outlier_z:
                found["OUTLIER"].add(sid)
            a = POLICY.ewma_alpha
            state[1] = (1 - a) * state[1] + a * abs(v - state[0])
            state[0] = (1 - a) * state[0] + a * v
            last[sid] = v
    return found


def test_deterministic() -> None:
    cfg = SimConfig(seed=3, duration_s=10, rate=500)
    first = [(t, k, v) for t, k, v, _ in Simulator(cfg, POLICY)]
    again = [(t, k, v) for t, k, v, _ in Simulator(cfg, POLICY)]
    assert first == again
    other = [(t, k, v) for t, k, v, _ in Simulator(SimConfig(seed=4, duration_s=10, rate=500),
                                                   POLICY)]
    assert first != other


def test_registrations_first_and_records_valid() -> None:
    events, _ = run(BASE)
    topics = [t for t, *_ in events]
    n_ref = topics.count("enterprises") + topics.count("sensors")
    assert set(topics[:n_ref]) == {"enterprises", "sensors"}
    assert "enterprises" not in topics[n_ref:] and "sensors" not in topics[n_ref:]
    for topic, key, value, _ in events:
        if isinstance(value, bytes):
            continue
        spec = CATALOG.topic(topic)
        assert key == value[spec.key]
        fastavro.schemaless_writer(io.BytesIO(), SCHEMAS.parsed(spec.record), value)


def test_clean_mode_has_no_faults_and_no_detections() -> None:
    events, truth = run(BASE.clean())
    assert truth == []
    assert all(f is None for *_, f in events)
    assert not any(isinstance(v, bytes) for _, _, v, _ in events)
    assert dict(detect(events)) == {}
    for topic, _, value, _ in events:
        assert check_of(topic)(value, POLICY, value.get("sent_at") or
                                            value.get("reported_at") or
                                            value.get("updated_at")) == []


def test_anomaly_truth_matches_detections() -> None:
    events, truth = run(BASE)
    found = detect(events)
    anomalies = [t for t in truth if t["fault"] == "anomaly"]
    kinds = Counter(t["anomaly"] for t in anomalies)
    assert {"SPIKE", "FLATLINE", "OUTLIER", "ALARM_L1", "ALARM_L2"} <= set(kinds)
    ids = {k: {rid for t in anomalies if t["anomaly"] == k for rid in t["reading_ids"]}
           for k in kinds}
    assert found["ALARM_L1"] == ids["ALARM_L1"]
    assert found["ALARM_L2"] == ids["ALARM_L2"]
    assert found["SPIKE"] <= ids["SPIKE"] and found["SPIKE"]
    assert found["FLATLINE"] == {t["sensor_id"] for t in anomalies if t["anomaly"] == "FLATLINE"}
    outlier_truth = {t["sensor_id"] for t in anomalies if t["anomaly"] == "OUTLIER"}
    assert outlier_truth <= found["OUTLIER"]
    # outliers show up only on sensors that carry an injected anomaly
    assert found["OUTLIER"] <= {t["sensor_id"] for t in anomalies}
    for t in anomalies:
        if t["anomaly"] == "FLATLINE":
            assert len(t["reading_ids"]) >= POLICY.flatline_count


def test_late_duplicate_and_invalid_truth() -> None:
    events, truth = run(BASE)
    by = defaultdict(list)
    for t in truth:
        by[t["fault"]].append(t)
    assert by["late_telemetry"] and by["duplicate"] and by["invalid"] and by["silent_gateway"]
    readings: dict[str, list[tuple[dict, int]]] = defaultdict(list)
    for topic, _, value, _ in events:
        if topic == "telemetry" and not isinstance(value, bytes):
            for r in value["readings"]:
                readings[r["reading_id"]].append((r, value["sent_at"]))
    late = {t["reading_id"]: t["lag_ms"] for t in by["late_telemetry"]}
    lim = limits(events)
    for rid, seen in readings.items():
        r, sent = seen[0]
        after = POLICY.metrics[lim[r["sensor_id"]][2]].late_after.total_seconds() * 1000
        if rid in late:
            assert sent - r["event_time"] == late[rid] and late[rid] > after
        else:
            assert sent - r["event_time"] < after
    dup_readings = {rid for rid, seen in readings.items() if len(seen) > 1}
    assert dup_readings == {t["record_id"] for t in by["duplicate"] if t["type"] == "telemetry"}
    reports = Counter(v["report_id"] for t, _, v, _ in events if t == "incidents")
    assert {r for r, n in reports.items() if n > 1} == {
        t["record_id"] for t in by["duplicate"] if t["type"] == "incident"}


def test_invalid_records_fail_as_the_truth_says() -> None:
    events, truth = run(BASE)
    registry = InMemoryRegistry()
    assert registry.id_for("sim.telemetry-value", SCHEMAS.text("TelemetryBatch")) == 1
    decode = AvroDeserializer(registry)
    ctx = SerializationContext("sim.telemetry", "TelemetryBatch")
    got: Counter[tuple[str | None, str]] = Counter()
    for topic, _, value, faults in events:
        if isinstance(value, bytes):
            with pytest.raises(DecodeError) as info:
                decode(value, ctx)
            assert faults == [{"fault": "invalid", "topic": "telemetry",
                               "error_code": info.value.code, "record_id": None}]
            got[(None, info.value.code)] += 1
            continue
        now = value.get("sent_at") or value.get("reported_at") or value.get("updated_at")
        for v in check_of(topic)(value, POLICY, now):
            rid = value.get("report_id") or value.get("hazard_id")
            if topic == "telemetry":
                rid = value["readings"][int(v.field.split("]")[0].split("[")[1])]["reading_id"]
            got[(rid, v.code)] += 1
    expected = Counter((t["record_id"], t["error_code"]) for t in truth if t["fault"] == "invalid")
    assert got == expected
    assert {code for _, code in expected} >= {"TRUNCATED_AVRO", "UNKNOWN_SCHEMA_ID",
                                               "OUT_OF_RANGE", "UNIT_MISMATCH"}


def test_incident_truth() -> None:
    events, truth = run(BASE)
    reports = [v for t, _, v, _ in events if t == "incidents"]
    late = {t["report_id"]: t["late_by_ms"] for t in truth if t["fault"] == "late_report"}
    conceal = {t["report_id"]: t for t in truth if t["fault"] == "concealment"}
    jumps = {t["report_id"] for t in truth if t["fault"] == "figure_jump"}
    invalid = {t["record_id"] for t in truth if t["fault"] == "invalid"}
    assert late and conceal and jumps
    previous: dict[str, dict] = {}
    for r in reports:
        if r["report_id"] in invalid:
            continue
        implied = implied_level(r["deaths"], r["serious_injuries"], r["direct_economic_loss_cny"])
        if r["report_id"] in conceal:
            assert LEVELS.index(r["declared_level"]) < LEVELS.index(implied)
            assert conceal[r["report_id"]]["implied"] == implied
        else:
            assert r["declared_level"] == implied
        if r["stage"] == "INITIAL":
            rule = POLICY.deadline_rule(r["kind"], "INITIAL", r["reporting_level"],
                                        r["declared_level"], r["industry"])
            assert rule is not None and rule.start == "occurred"
            over = r["reported_at"] - r["occurred_at"] - rule.within.total_seconds() * 1000
            if r["report_id"] in late:
                assert over == late[r["report_id"]] > 0
            else:
                assert over < 0
        prev = previous.get(r["incident_id"])
        if prev is not None and prev["report_id"] != r["report_id"]:
            jumped = any(r[f] >= POLICY.jump_ratio * prev[f] and
                         r[f] - prev[f] >= POLICY.jump_min_delta
                         for f in ("deaths", "missing", "serious_injuries",
                                   "affected_population", "direct_economic_loss_cny"))
            assert jumped == (r["report_id"] in jumps), r
            assert all(r[f] >= prev[f] for f in ("deaths", "missing", "serious_injuries"))
        previous[r["incident_id"]] = r


def test_silent_gateways_are_silent() -> None:
    events, truth = run(BASE)
    for t in (t for t in truth if t["fault"] == "silent_gateway"):
        start, end = t["silent_from_ms"], t["silent_from_ms"] + t["silent_for_s"] * 1000
        for topic, key, value, _ in events:
            if key == t["gateway_id"] and topic == "heartbeats":
                assert not start <= value["sent_at"] < end
            if key == t["gateway_id"] and topic == "telemetry" and not isinstance(value, bytes):
                assert not any(start <= r["event_time"] < end for r in value["readings"])
