"""The alarm tables in ClickHouse on both backends (clickhouse-server 18.16 and chdb): the
sink stores AlarmEvents, the ``alarms`` view folds them per alarm, and the alarm queries of
docs/analysts.md and the report's alarm sections run and answer correctly."""

from __future__ import annotations

import datetime as dt
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sinks.clickhouse import Backend, connect
from sinks.clickhouse.migrations import migrate
from streams.report.alarms import alarm_sections
from streams.report.sections import Scope, load
from tests.integration.test_sink_kit import load_in_process

pytestmark = pytest.mark.integration

DOCS = Path(__file__).resolve().parents[2] / "docs" / "analysts.md"
QUERIES = dict(re.findall(r"### (A\d+)\. [^\n]+\n+```sql\n(.*?)```", DOCS.read_text(), re.S))
T0 = (int(time.time()) // 600 * 600 - 3 * 3600) * 1000     # 3 h ago, on a 10-minute boundary
MIN = 60_000


def event(alarm: str, transition: str, at: int, *, raised: int = T0, kind: str = "ALARM_L2",
          severity: str = "CRITICAL", region: str = "320506", subject: str = "ch4-1",
          **extra: Any) -> dict[str, Any]:
    record = {
        "event_id": f"{alarm}|{transition}|{at}", "alarm_id": alarm, "alarm_type": kind,
        "severity": severity, "transition": transition, "subject_type": "sensor",
        "subject_id": subject, "enterprise_id": "ent-1", "gateway_id": "gw-1",
        "region_code": region, "raised_at": raised, "changed_at": at,
        "cleared_at": at if transition == "CLEARED" else None, "value": 1.6, "peak": 1.6,
        "threshold": 1.5, "count": 1, "message_zh": "传感器 ch4-1（甲烷） 二级报警",
        "message_en": "Second-level alarm: sensor ch4-1 (methane)", "acknowledged_by": None,
        "note": None, "tag": None,
    }
    record.update(extra)
    return record


def history() -> list[dict[str, Any]]:
    a, b = "a" * 16 + "@gw-1", "b" * 16 + "@gw-1"
    events = [
        # acknowledged after 5 minutes, cleared after 20, peak 2.2, 4 occurrences
        event(a, "RAISED", T0),
        event(a, "UPDATED", T0 + 2 * MIN, peak=2.2, count=3),
        event(a, "ACKNOWLEDGED", T0 + 5 * MIN, peak=2.2, count=3, acknowledged_by="王工",
              note="已派人现场处置"),
        event(a, "ACKNOWLEDGED", T0 + 6 * MIN, peak=2.2, count=3, acknowledged_by="李工",
              note="复核"),
        event(a, "CLEARED", T0 + 20 * MIN, peak=2.2, count=4, acknowledged_by="王工",
              note="已派人现场处置"),
        # standing, never acknowledged, in Beijing
        event(b, "RAISED", T0 + MIN, raised=T0 + MIN, kind="GATEWAY_OFFLINE",
              severity="WARNING", region="110101", subject="gw-9", value=None, peak=None),
    ]
    # a flood in Jiangsu: 12 alarms within one 10-minute window, all cleared
    for i in range(12):
        alarm = f"{i:016x}@gw-{i}"
        at = T0 + 60 * MIN + i * 30_000
        events += [event(alarm, "RAISED", at, raised=at, kind="SPIKE", severity="WARNING",
                         subject=f"s-{i}"),
                   event(alarm, "CLEARED", at + 15 * MIN, raised=at, kind="SPIKE",
                         severity="WARNING", subject=f"s-{i}")]
    return events


@pytest.fixture(scope="module")
def loaded(clickhouse_url: str) -> Iterator[Backend]:
    backend = connect(clickhouse_url, create_database=True)
    migrate(backend)
    load_in_process(backend, {"alarm.events": history()})
    load_in_process(backend, {"alarm.events": history()[:3]}, skip_ledger=True)   # a replay
    yield backend
    backend.close()


def test_the_docs_hold_the_alarm_questions() -> None:
    assert sorted(QUERIES) == ["A1", "A2", "A3", "A4"]


def test_every_transition_is_stored_once(loaded: Backend) -> None:
    assert loaded.query("SELECT count() FROM alarm_events").scalar() == len(history())
    assert loaded.query("SELECT count() FROM alarms").scalar() == 14


def test_one_row_per_alarm(loaded: Backend) -> None:
    rows = {r["alarm_id"]: r for r in loaded.query(
        "SELECT * FROM alarms WHERE alarm_id LIKE '%@gw-1' ORDER BY alarm_id").dicts()}
    acked = rows["a" * 16 + "@gw-1"]
    assert (acked["acknowledged_by"], acked["note"]) == ("王工", "已派人现场处置")
    assert int(str(acked["seconds_to_ack"])) == 300
    assert int(str(acked["duration_s"])) == 1200
    assert int(str(acked["standing"])) == 0 and acked["cleared_at"] is not None
    assert float(str(acked["peak"])) == 2.2 and int(str(acked["count"])) == 4
    assert int(str(acked["events"])) == 5 and acked["severity"] == "CRITICAL"
    standing = rows["b" * 16 + "@gw-1"]
    assert standing["cleared_at"] is None and int(str(standing["standing"])) == 1
    assert standing["acknowledged_by"] == "" and standing["seconds_to_ack"] is None
    assert int(str(standing["duration_s"])) >= 3 * 3600 - 60 - 5
    assert standing["peak"] is None


@pytest.mark.parametrize("name", ["A1", "A2", "A3", "A4"])
def test_doc_query_runs(loaded: Backend, name: str) -> None:
    assert loaded.query(QUERIES[name]).columns


def test_doc_answers(loaded: Backend) -> None:
    per_day = loaded.query(QUERIES["A1"]).dicts()
    assert sum(int(str(r["alarms"])) for r in per_day) == 14
    assert {(r["province"], r["alarm_type"]) for r in per_day} == {
        ("32", "ALARM_L2"), ("32", "SPIKE"), ("11", "GATEWAY_OFFLINE")}
    ack = {r["alarm_type"]: r for r in loaded.query(QUERIES["A2"]).dicts()}
    assert float(str(ack["ALARM_L2"]["avg_minutes"])) == 5.0
    assert int(str(ack["SPIKE"]["acknowledged"])) == 0
    standing = loaded.query(QUERIES["A3"]).dicts()
    assert [r["subject_id"] for r in standing] == ["gw-9"]
    floods = loaded.query(QUERIES["A4"]).dicts()
    assert [(r["province"], int(str(r["alarms"]))) for r in floods] == [("32", 12)]


def test_the_report_sections(loaded: Backend) -> None:
    now = dt.datetime.now(dt.UTC)
    scope = Scope(now - dt.timedelta(hours=6), now, "", now)
    floods, active = (load(loaded, s) for s in alarm_sections(scope))
    [jiangsu] = [r for r in floods.dicts() if r["province"] == "32"]
    assert (jiangsu["alarms"], jiangsu["peak_per_window"], jiangsu["flood_windows"]) == (13, 12, 1)
    assert str(jiangsu["worst_window"]).startswith(
        dt.datetime.fromtimestamp((T0 + 60 * MIN) / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M"))
    rows = active.dicts()
    assert len(rows) == 14 and rows[0]["subject_id"] == "gw-9" and rows[0]["standing"] == 1
    beijing = load(loaded, alarm_sections(Scope(scope.since, scope.until, "11", now))[1])
    assert [r["subject_id"] for r in beijing.dicts()] == ["gw-9"]
