"""`ebi sink` against real Kafka, the registry and both ClickHouse backends: reconciliation
holds after traffic, and a sink killed with SIGKILL mid-stream loses nothing and shows no
duplicate after a restart."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from sinks.clickhouse import connect
from sinks.clickhouse.config import parse_url
from sinks.clickhouse.serve import endpoint_path
from streams.settings import Settings
from tests.integration.conftest import unique
from tests.integration.test_sink_kit import (
    committed,
    ebi,
    ensure_topics,
    produce,
    produce_raw,
    start_sink,
    wait_exit,
    with_database,
)
from tests.unit.sinks import factories as f

pytestmark = pytest.mark.integration
PARTITIONS = 2


@pytest.fixture
def sink_settings(settings: Settings, clickhouse_url: str) -> Settings:
    url = with_database(clickhouse_url, unique("sink"))
    s = settings.replace(clickhouse_url=url, topic_prefix=f"{unique('sk')}.",
                         sink_group=unique("sink"), topic_partitions=PARTITIONS,
                         sink_batch_rows=2000, sink_batch_seconds=0.5)
    ensure_topics(s)
    return s


def traffic(s: Settings, envelopes: int, readings: int, start: int = 0) -> dict[str, int]:
    """Input messages on telemetry/incidents/hazards plus what the worker would publish for
    them (an enriched record each, or a dead letter for every 25th telemetry message)."""
    now = int(time.time() * 1000) - 600_000
    expected = {"readings": 0, "incidents": 0, "dead": 0}
    clean: dict[str, list[dict[str, Any]]] = {"telemetry.clean": [], "incidents.clean": [],
                                              "hazards.clean": [], "deadletter": []}
    for p in range(PARTITIONS):
        offsets = produce_raw(s, "telemetry", [b"raw"] * envelopes, partition=p)
        for o in offsets:
            if o % 25 == 24:
                clean["deadletter"].append(f.dead_letter(o, topic=s.topic("telemetry"),
                                                         partition=p, t0=now))
                expected["dead"] += 1
                continue
            clean["telemetry.clean"].append(f.telemetry(
                o, topic=s.topic("telemetry"), partition=p, readings=readings,
                enterprise=1 + p, gateway=1 + p, sensors=5, t0=now, duplicates=1))
            expected["readings"] += readings
        for o in produce_raw(s, "incidents", [b"raw"] * 5, partition=p):
            clean["incidents.clean"].append(f.incident(
                o, topic=s.topic("incidents"), partition=p, incident_id=f"inc-{p}",
                duplicate=(o == 4), t0=now))
            expected["incidents"] += 0 if o == 4 else 1
        for o in produce_raw(s, "hazards", [b"raw"] * 2, partition=p):
            clean["hazards.clean"].append(f.hazard(o, topic=s.topic("hazards"), partition=p,
                                                   hazard_id=f"hz-{p}", version=o + 1, t0=now))
    for logical, records in clean.items():
        produce(s, logical, records,
                partition_of=lambda r: int(r["source"]["partition"]))
    return expected


def check_store(url: str, expected: dict[str, int]) -> dict[str, int]:
    backend = connect(url)
    try:
        q = backend.query
        readings = q("SELECT count(), uniqExact(reading_id) FROM readings").rows[0]
        assert readings == (expected["readings"], expected["readings"])
        assert q("SELECT sum(readings) FROM sensor_minutes").scalar() == expected["readings"]
        assert q("SELECT sum(readings) FROM enterprise_days").scalar() == expected["readings"]
        assert q("SELECT count() FROM incident_reports").scalar() == expected["incidents"]
        assert q("SELECT count() FROM dead_letters").scalar() == expected["dead"]
        return {"raw_readings": int(q("SELECT count() FROM readings_raw").scalar())}
    finally:
        backend.close()


def test_reconciliation_holds_after_traffic(sink_settings: Settings) -> None:
    s = sink_settings
    expected = traffic(s, envelopes=60, readings=10)
    wait_exit(start_sink(s, "--idle-exit", "3"), timeout=90)
    check_store(s.clickhouse, expected)
    result = ebi(s, "reconcile")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "all 8 input and " in result.stdout, result.stdout
    # an input message nobody accounted for is a gap
    produce_raw(s, "hazards", [b"lost"], partition=1)
    result = ebi(s, "reconcile")
    assert result.returncode == 1
    assert "missing offsets (1): 2" in result.stdout


def test_sigkill_mid_stream_loses_nothing_and_shows_no_duplicate(
        sink_settings: Settings) -> None:
    s = sink_settings
    expected = traffic(s, envelopes=150, readings=40)
    proc = start_sink(s)
    deadline = time.monotonic() + 60
    while committed(s, "telemetry.clean") == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    done = committed(s, "telemetry.clean")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    assert 0 < done < 2 * 150 - 2 * 6, "the kill should land mid-stream"
    if s.clickhouse.startswith("chdb"):  # the store was released by the dead process
        assert ebi(s, "query", "SELECT 1").returncode == 0
    busy_checked = False
    proc = start_sink(s, "--idle-exit", "3")
    if s.clickhouse.startswith("chdb"):
        # while the sink owns the store it answers read-only queries; writes are refused
        endpoint = endpoint_path(parse_url(s.clickhouse).path or Path())

        def serving() -> bool:   # the killed sink left its file behind: wait for the new one
            try:
                return int(json.loads(endpoint.read_text())["pid"]) == proc.pid
            except (OSError, ValueError, KeyError):
                return False

        until = time.monotonic() + 60
        while not serving() and proc.poll() is None and time.monotonic() < until:
            time.sleep(0.1)
        if proc.poll() is None:
            during = ebi(s, "query", "SELECT count() FROM readings")
            assert during.returncode == 0, during.stderr
            write = ebi(s, "migrate")
            assert write.returncode == 1 and "in use by the sink" in (
                write.stdout + write.stderr), write.stdout + write.stderr
            busy_checked = True
    wait_exit(proc, timeout=120)
    stats = check_store(s.clickhouse, expected)
    assert stats["raw_readings"] >= expected["readings"]
    result = ebi(s, "reconcile")
    assert result.returncode == 0, result.stdout + result.stderr
    if s.clickhouse.startswith("chdb"):
        assert busy_checked
