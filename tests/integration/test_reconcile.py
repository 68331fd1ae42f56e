"""`ebi reconcile` on both backends: Kafka's input offsets against the ledger and readings."""

from __future__ import annotations

import time

import pytest

from sinks.clickhouse import connect
from sinks.clickhouse.migrations import migrate
from streams.settings import Settings
from tests.integration.conftest import unique
from tests.integration.test_sink_kit import (
    ebi,
    ensure_topics,
    load_in_process,
    produce_raw,
    with_database,
)
from tests.unit.sinks import factories as f

pytestmark = pytest.mark.integration


def test_reconcile_reports_every_kind_of_gap(settings: Settings, clickhouse_url: str) -> None:
    s = settings.replace(clickhouse_url=with_database(clickhouse_url, unique("rec")),
                         topic_prefix=f"{unique('rec')}.", topic_partitions=1)
    ensure_topics(s)
    telemetry = produce_raw(s, "telemetry", [b"raw"] * 6)
    incidents = produce_raw(s, "incidents", [b"raw"] * 3)
    backend = connect(s.clickhouse, create_database=True)
    try:
        migrate(backend)
        t, i = s.topic("telemetry"), s.topic("incidents")
        load_in_process(backend, {
            "telemetry.clean": [f.telemetry(o, topic=t, readings=4) for o in telemetry[:5]],
            "deadletter": [f.dead_letter(telemetry[5], topic=t)],
            "incidents.clean": [f.incident(o, topic=i, duplicate=o == 2) for o in incidents],
        })
    finally:
        backend.close()
    ok = ebi(s, "reconcile")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "all 4 input and " in ok.stdout and " partition(s) reconcile" in ok.stdout

    produce_raw(s, "incidents", [b"never processed"] * 2)
    backend = connect(s.clickhouse)
    try:  # readings the ledger counts as accepted but the table lacks
        backend.command(f"ALTER TABLE {backend.config.database}.readings_raw DELETE "
                        "WHERE reading_id = 'rd-0-1-0'")
        deadline = time.monotonic() + 20  # mutations finish in the background
        while backend.query("SELECT count() FROM readings_raw").scalar() != 19:
            assert time.monotonic() < deadline, "the DELETE mutation did not finish"
            time.sleep(0.2)
    finally:
        backend.close()
    bad = ebi(s, "reconcile")
    assert bad.returncode == 1
    assert "missing offsets (2): 3-4" in bad.stdout
    assert "readings table holds 19, ledger expects 20" in bad.stdout
