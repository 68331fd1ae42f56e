"""The statistics views on both backends (ClickHouse 18.16 and chdb): each reading counted
once, canary traffic left out, outages split by day with open ones counted up to now,
enterprises with no readings, the online spot check and days overdue; and step 0005 builds
the new rollup from the readings already stored."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from sinks.clickhouse import Backend, connect
from sinks.clickhouse.migrations import migrate
from tests.integration.conftest import unique
from tests.integration.test_sink_kit import load_in_process, with_database
from tests.unit.sinks import factories as f

pytestmark = pytest.mark.integration

H = 3_600_000
D = 24 * H
NOW = int(time.time() * 1000)
T0 = NOW - 1_800_000            # half an hour ago


def registration(sid: str, ent: str, registered: bool = True, at: int = T0 - D,
                 tag: str | None = None) -> dict[str, Any]:
    return {"sensor_id": sid, "enterprise_id": ent, "gateway_id": "gw-0001",
            "region_code": "110101", "metric": "METHANE", "unit": "PERCENT_VOL",
            "alarm_level1": 1.0, "alarm_level2": 1.5, "expected_interval_s": 300,
            "registered": registered, "updated_at": at, "tag": tag}


def status(gateway: str, ent: str, state: str, at: int, offline_s: int = 0) -> dict[str, Any]:
    return {"gateway_id": gateway, "enterprise_id": ent, "region_code": "110101",
            "status": state, "changed_at": at, "last_seen_at": at - 1,
            "offline_seconds": offline_s, "tag": None}


@pytest.fixture(scope="module")
def loaded(clickhouse_url: str) -> Iterator[Backend]:
    backend = connect(with_database(clickhouse_url, unique("stats")), create_database=True)
    migrate(backend)
    telemetry = [f.telemetry(i, readings=6, t0=T0, late_every=3, topic="it.telemetry")
                 for i in range(4)]
    again = f.telemetry(0, readings=6, t0=T0, late_every=3, topic="it.telemetry")
    again["source"]["offset"] = 99         # the same readings in another envelope
    canary = f.telemetry(50, readings=6, t0=T0, topic="it.telemetry", enterprise=7)
    canary["tag"] = "canary-x"
    load_in_process(backend, {
        "telemetry.clean": [*telemetry, again, canary],
        "sensors.registered": [
            registration("s-0001-00", "ent-0001"), registration("s-0001-01", "ent-0001"),
            registration("s-0001-02", "ent-0001"), registration("s-0001-09", "ent-0001"),
            registration("s-0001-08", "ent-0001"),
            registration("s-0001-08", "ent-0001", registered=False, at=T0 - D + 1000),
            registration("canary-x-s", "canary-x-ent", tag="canary-x")],
        "gateway.status": [
            # a closed blind spot of 48 h that ended an hour ago; one open for 30 h
            status("gw-0002", "ent-0002", "OFFLINE", NOW - 49 * H),
            status("gw-0002", "ent-0002", "ONLINE", NOW - H, 48 * 3600),
            status("gw-0003", "ent-0003", "OFFLINE", NOW - 30 * H)],
        "hazards.clean": [
            f.hazard(0, t0=NOW - 5 * D, deadline=NOW - 3 * D, topic="it.hazards"),
            f.hazard(1, hazard_id="hz-2", t0=NOW - 5 * D, deadline=NOW - 4 * D,
                     status="CLOSED", topic="it.hazards")],
    })
    yield backend
    backend.close()


def rows(backend: Backend, sql: str) -> list[tuple[Any, ...]]:
    return [tuple(int(v) if isinstance(v, str) and v.isdigit() else v for v in row)
            for row in backend.query(sql).rows]


def test_each_reading_is_counted_once_and_canary_is_left_out(loaded: Backend) -> None:
    assert rows(loaded, "SELECT count() FROM readings") == [(30,)]     # the canary's included
    assert rows(loaded, "SELECT sum(readings) FROM sensor_minutes") == [(24,)]
    assert rows(loaded, "SELECT readings, late_readings FROM enterprise_days "
                        "WHERE enterprise_id = 'ent-0001'") == [(24, 8)]
    for view in ("sensor_minutes", "enterprise_days", "spot_checks"):
        assert rows(loaded, f"SELECT count() FROM {view} WHERE enterprise_id = "
                            "'ent-0007' OR enterprise_id = 'canary-x-ent'") == [(0,)]


def test_outages_are_split_by_day_and_open_ones_count(loaded: Backend) -> None:
    days = rows(loaded, "SELECT enterprise_id, toString(day), offline_seconds, open_outages, "
                        "online_ratio FROM enterprise_days WHERE enterprise_id IN "
                        "('ent-0002', 'ent-0003') ORDER BY enterprise_id, day")
    closed = [d for d in days if d[0] == "ent-0002"]
    still_open = [d for d in days if d[0] == "ent-0003"]
    assert sum(d[2] for d in closed) == 48 * 3600
    assert 2 <= len(closed) <= 3 and len(still_open) in (2, 3)
    open_for = time.time() - (NOW / 1000 - 30 * 3600)       # up to now (NOW is the module's)
    assert abs(sum(d[2] for d in still_open) - open_for) <= 120
    assert all(d[3] == 1 for d in still_open) and all(d[3] == 0 for d in closed)
    assert all(0 <= float(d[4]) < 1 for d in days)                 # no readings, still there


def test_spot_checks_count_registered_sensors_that_report(loaded: Backend) -> None:
    assert rows(loaded, "SELECT enterprise_id, registered_sensors, reporting_sensors, "
                        "silent_sensors, reporting_share FROM spot_checks") == [
        ("ent-0001", 4, 3, 1, 0.75)]      # s-0001-08 removed, the canary left out


def test_hazards_show_days_overdue(loaded: Backend) -> None:
    assert rows(loaded, "SELECT hazard_id, days_overdue FROM hazards ORDER BY hazard_id") == [
        ("hz-1", 3), ("hz-2", 0)]          # hz-2 was closed before its deadline


def test_step_0005_builds_the_rollup_from_stored_readings(loaded: Backend) -> None:
    """As on a database of the first release: the rollup is missing, readings are stored."""
    db = loaded.config.database
    loaded.command(f"DROP TABLE {db}.reading_minutes_mv")
    loaded.command(f"DROP TABLE {db}.reading_minutes")
    loaded.command(f"ALTER TABLE {db}.schema_migrations DELETE WHERE version = '0005'")
    for _ in range(100):        # the mutation is asynchronous
        if not rows(loaded, "SELECT count() FROM schema_migrations "
                            "WHERE version = '0005'")[0][0]:
            break
        time.sleep(0.2)
    report = migrate(loaded)
    assert [s.version for s in report.applied][:1] == ["0005"]
    assert rows(loaded, "SELECT sum(readings) FROM sensor_minutes") == [(24,)]
    assert rows(loaded, "SELECT count() FROM system.tables WHERE database = currentDatabase() "
                        "AND name IN ('readings_1m', 'readings_1d')") == [(0,)]
