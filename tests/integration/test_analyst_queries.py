"""Every SQL block of docs/analysts.md runs on both backends and answers correctly."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sinks.clickhouse import Backend, connect
from sinks.clickhouse.migrations import migrate
from tests.integration.conftest import unique
from tests.integration.test_sink_kit import load_in_process, with_database
from tests.unit.sinks import factories as f

pytestmark = pytest.mark.integration

DOCS = Path(__file__).resolve().parents[2] / "docs" / "analysts.md"


def doc_queries() -> list[tuple[str, str]]:
    text = DOCS.read_text()
    found = re.findall(r"### (\d+)\. ([^\n]+)\n+```sql\n(.*?)```", text, re.S)
    return [(f"{n}. {title}", sql) for n, title, sql in found]


QUERIES = doc_queries()


def _t0() -> int:
    """55 minutes ago, but inside the current month (the docs ask about 'this month')."""
    now = time.time()
    month = time.gmtime(now)
    month_start = time.mktime((month.tm_year, month.tm_mon, 1, 0, 0, 0, 0, 0, 0)) - time.timezone
    return int(max(now - 3300, month_start + 60) * 1000)


T0 = _t0()


@pytest.fixture(scope="module")
def loaded(clickhouse_url: str) -> Iterator[Backend]:
    # a database of its own: other modules write the session's database
    backend = connect(with_database(clickhouse_url, unique("aq")), create_database=True)
    migrate(backend)
    t0 = T0
    records = {
        "telemetry.clean": [f.telemetry(i, readings=7, enterprise=1 + i % 2, gateway=1 + i % 2,
                                        t0=t0, late_every=3, topic="it.telemetry")
                            for i in range(6)],
        "incidents.clean": [
            f.incident(0, t0=t0, topic="it.incidents", late=True),
            f.incident(1, t0=t0, topic="it.incidents", stage="FOLLOW_UP", deaths=4,
                       implied="RELATIVELY_SERIOUS", flags=["SUSPECTED_CONCEALMENT"]),
            f.incident(2, t0=t0 - 40 * 86_400_000, topic="it.incidents", incident_id="inc-2"),
        ],
        "hazards.clean": [f.hazard(0, t0=t0 - 3 * 86_400_000, topic="it.hazards"),
                          f.hazard(1, hazard_id="hz-2", t0=t0, topic="it.hazards",
                                   status="CLOSED")],
        "gateway.status": [f.gateway_status(0, "OFFLINE", t0=t0),
                           f.gateway_status(30, "ONLINE", offline_seconds=1800, t0=t0)],
        "deadletter": [f.dead_letter(9, t0=t0, topic="it.telemetry")],
    }
    load_in_process(backend, records)
    yield backend
    backend.close()


def test_the_docs_hold_ten_questions() -> None:
    assert len(QUERIES) == 10
    assert "Minimum ClickHouse version: 18.16" in DOCS.read_text()


@pytest.mark.parametrize(("title", "sql"), QUERIES, ids=[q[0].split(".")[0] for q in QUERIES])
def test_doc_query_runs(loaded: Backend, title: str, sql: str) -> None:
    result = loaded.query(sql)
    assert result.columns, title


def _run(backend: Backend, number: int) -> list[dict[str, object]]:
    return backend.query(QUERIES[number - 1][1]).dicts()


def test_answers(loaded: Backend) -> None:
    late = _run(loaded, 1)
    assert [(r["region_code"], r["late_reports"]) for r in late] == [("110102", 1)]
    blind = _run(loaded, 2)
    assert blind[0]["enterprise_id"] == "ent-0001" and blind[0]["blind_spots"] == 1
    concealment = _run(loaded, 4)
    assert [r["report_id"] for r in concealment] == ["inc-1-r1"]
    overdue = _run(loaded, 5)
    assert [r["hazard_id"] for r in overdue] == ["hz-1"]
    minutes = _run(loaded, 6)
    assert sum(int(str(r["readings"])) for r in minutes) == 42
    incidents = _run(loaded, 8)
    assert sum(int(str(r["incidents"])) for r in incidents) == 1  # inc-2 is 40 days older
    assert {r["error_code"] for r in _run(loaded, 10)} == {"TRUNCATED_AVRO"}


def test_views_hide_replays(loaded: Backend) -> None:
    before = loaded.query("SELECT count() FROM readings").scalar()
    t0 = T0
    load_in_process(loaded, {"telemetry.clean": [
        f.telemetry(i, readings=7, enterprise=1 + i % 2, gateway=1 + i % 2, t0=t0,
                    late_every=3, topic="it.telemetry") for i in range(6)]}, skip_ledger=True)
    assert loaded.query("SELECT count() FROM readings").scalar() == before == 42
    assert loaded.query("SELECT sum(readings) FROM sensor_minutes").scalar() == 42
    assert loaded.query("SELECT sum(readings) FROM enterprise_days").scalar() == 42
