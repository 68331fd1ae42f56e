"""Hidden dangers and blind spots through the live pipeline: ``ebi worker`` and ``ebi sink``
as processes, real Kafka and the registry, and ClickHouse 18.16 (Debian's server).

The policy is the bundled one with its clocks shortened (timer every second, a 5 s grace for
gateways, 2 s reporting intervals, 4 s reminders, closed hazards forgotten after 3 s, a 1 s
telemetry dedup horizon), so every rule fires within a minute. One scenario per rule:

- a hazard nobody updates is HAZARD_OVERDUE at its deadline (the timer), a major one again on
  the reminder schedule, a late one at once (and ``hazards.days_overdue`` says 3);
- RECTIFYING as a first version is HAZARD_TRANSITION_INVALID, flagged on the stored version;
- a closed hazard leaves the worker's state table (a tombstone in its changelog);
- a registered gateway that never connects is GATEWAY_NEVER_CONNECTED and OFFLINE, and its
  enterprise (no readings at all) has its open blind spot in ``enterprise_days``;
- of an online gateway's sensors, the one that stops and the one that never reports are
  SENSOR_SILENT, the one that keeps reporting is not; ``spot_checks`` gives 2 of 3;
- a duplicate reading the worker no longer remembers is stored but counted once;
- canary traffic is in ``readings`` but in no statistics view and no report section.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sinks.clickhouse import Backend, connect
from streams import clients
from streams.kafkaio import publish
from streams.report.sections import Scope, load, sections
from streams.settings import Settings
from streams.worker.topics import ensure_topics
from tests.integration.conftest import unique
from tests.integration.test_worker_kit import WorkerProcess, pipeline_env

pytestmark = pytest.mark.integration

S = 1000
D = 86_400_000
RUN = unique("hb").replace("_", "")
CANARY = f"canary-{RUN}"
FAST = {
    'check_every = "30s"': 'check_every = "1s"',
    'dedup_horizon = "24h"': 'dedup_horizon = "1s"',
    'major_repeat_every = "24h"': 'major_repeat_every = "4s"',
    'forget_closed_after = "90d"': 'forget_closed_after = "3s"',
    'never_connected_after = "1h"': 'never_connected_after = "5s"',
    'sensor_expected_interval = "5m"': 'sensor_expected_interval = "2s"',
}


def fast_policy(directory: Path) -> str:
    text = (Path(__file__).resolve().parents[2] / "streams" / "policy" / "default.toml") \
        .read_text("utf-8")
    for old, new in FAST.items():
        assert old in text, old
        text = text.replace(old, new)
    path = directory / "policy-blind-spots.toml"
    path.write_text(text, "utf-8")
    return str(path)


@pytest.fixture(scope="module")
def live(settings: Settings, clickhouse_server_url: str,
         tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Settings, WorkerProcess]]:
    directory = tmp_path_factory.mktemp("blindspots")
    st = settings.replace(topic_prefix=f"{unique('hb')}.", worker_id=unique("ebi-hb"),
                          sink_group=unique("ebi-hb-sink"), policy_file=fast_policy(directory),
                          topic_partitions=2,
                          clickhouse_url=f"{clickhouse_server_url.rsplit('/', 1)[0]}/"
                                         f"{unique('hb')}")
    ensure_topics(st)
    worker = WorkerProcess(st).start()
    log = open(directory / "sink.log", "wb")  # noqa: SIM115 - closed below
    sink = subprocess.Popen([sys.executable, "-m", "streams", "sink"], env=pipeline_env(st),
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        yield st, worker
    finally:
        if sink.poll() is None:
            os.killpg(sink.pid, 15)
            sink.wait(30)
        log.close()
        worker.stop()


def enterprise(eid: str, now: int) -> tuple[str, str, dict[str, Any]]:
    return ("enterprises", eid, {"enterprise_id": eid, "name": eid, "region_code": "420102",
                                 "industry": "hazardous chemicals", "updated_at": now})


def sensor(sid: str, gateway: str, ent: str, now: int,
           interval_s: int | None = None) -> tuple[str, str, dict[str, Any]]:
    return ("sensors", sid, {"sensor_id": sid, "enterprise_id": ent, "gateway_id": gateway,
                             "metric": "METHANE", "unit": "PERCENT_VOL", "alarm_level1": None,
                             "alarm_level2": None, "expected_interval_s": interval_s,
                             "updated_at": now})


def hazard(hid: str, now: int, deadline: int | None, status: str = "FOUND", version: int = 1,
           level: str = "ORDINARY", ent: str = "ent-hz") -> tuple[str, str, dict[str, Any]]:
    return ("hazards", hid, {"hazard_id": hid, "version": version, "enterprise_id": ent,
                             "region_code": "420102", "category": "fire", "level": level,
                             "status": status, "found_at": now - 5 * D,
                             "rectification_deadline": deadline, "updated_at": now,
                             "description": "blocked fire exit"})


def reading(rid: str, sid: str, at: int) -> dict[str, Any]:
    return {"reading_id": rid, "sensor_id": sid, "metric": "METHANE", "value": 0.3,
            "unit": "PERCENT_VOL", "quality": "GOOD", "event_time": at}


def wait_for(backend: Backend, sql: str, ok: Any, timeout: float, what: str,
             worker: WorkerProcess) -> list[tuple[Any, ...]]:
    deadline = time.monotonic() + timeout
    rows: list[tuple[Any, ...]] = []
    while time.monotonic() < deadline:
        try:
            rows = backend.query(sql).rows
        except Exception as exc:  # a view not created yet by the sink's migration
            rows = [("error", str(exc)[:200])]
        if ok(rows):
            return rows
        time.sleep(1.0)
    raise AssertionError(f"{what}: {rows}\n--- worker log ---\n{worker.tail(60)}")


class Gateways(threading.Thread):
    """Heartbeats and readings of the online gateway (and the canary's) once a second."""

    def __init__(self, st: Settings, seconds: int) -> None:
        super().__init__(daemon=True)
        self.st, self.seconds = st, seconds
        self.registry = clients.registry(st)
        self.producer = clients.producer(st, **{"acks": "all", "enable.idempotence": True,
                                                "linger.ms": 5})
        self.dup_at = 0

    def run(self) -> None:
        for n in range(self.seconds):
            now = int(time.time() * 1000)
            if n == 2:
                self.dup_at = now
            items: list[tuple[str, str, Any]] = []
            for gw, ent in (("gw-live", "ent-hz"), (f"{CANARY}-gw", f"{CANARY}-ent")):
                items.append(("heartbeats", gw, {"gateway_id": gw, "enterprise_id": ent,
                                                 "sent_at": now, "sequence": n,
                                                 "interval_s": 5, "firmware": None}))
            readings = [reading(f"r-a-{n}", "s-live-a", now)]
            if n < 3:
                readings.append(reading(f"r-b-{n}", "s-live-b", now))
            if n == 2:
                readings.append(reading("r-dup", "s-live-a", now))
            if n == 6:   # r-dup again: the ring (1 s horizon) has forgotten it
                readings.append(reading("r-dup", "s-live-a", self.dup_at))
            items.append(("telemetry", "gw-live", {"gateway_id": "gw-live",
                                                   "enterprise_id": "ent-hz", "sent_at": now,
                                                   "sequence": n, "readings": readings}))
            items.append(("telemetry", f"{CANARY}-gw", {
                "gateway_id": f"{CANARY}-gw", "enterprise_id": f"{CANARY}-ent",
                "sent_at": now, "sequence": n,
                "readings": [reading(f"{CANARY}-r-{n}", f"{CANARY}-s", now - 600 * S)]}))
            publish(self.st, self.registry, items, producer=self.producer)
            time.sleep(max(0.0, 1.0 - (time.time() * 1000 - now) / 1000))


def test_hidden_dangers_and_blind_spots(live: tuple[Settings, WorkerProcess]) -> None:
    st, worker = live
    registry = clients.registry(st)
    now = int(time.time() * 1000)
    publish(st, registry, [enterprise("ent-hz", now), enterprise("ent-nc", now),
                           enterprise(f"{CANARY}-ent", now),
                           hazard("hz-probe", now, None, ent="ent-hz")])
    backend = connect(st.clickhouse, create_database=True)
    try:
        wait_for(backend, "SELECT count() FROM hazards WHERE hazard_id = 'hz-probe'",
                 lambda r: r and r[0][0] == 1, 240, "the pipeline never came up", worker)
        _scenario(st, backend, worker)
    finally:
        backend.close()


def _scenario(st: Settings, backend: Backend, worker: WorkerProcess) -> None:
    registry = clients.registry(st)
    now = int(time.time() * 1000)
    publish(st, registry, [
        sensor("s-live-a", "gw-live", "ent-hz", now, interval_s=10),
        sensor("s-live-b", "gw-live", "ent-hz", now),
        sensor("s-live-c", "gw-live", "ent-hz", now),
        sensor("s-nc", "gw-nc", "ent-nc", now),
        sensor(f"{CANARY}-s", f"{CANARY}-gw", f"{CANARY}-ent", now, interval_s=60),
    ])
    time.sleep(2)       # the feed applies the registrations before the traffic arrives
    feeder = Gateways(st, 20)
    feeder.start()
    now = int(time.time() * 1000)
    publish(st, registry, [
        hazard("hz-timer", now, now + 6 * S),
        hazard("hz-major", now, now + 4 * S, level="MAJOR"),
        hazard("hz-late", now, now - 3 * D),
        hazard("hz-bad", now, now + D, status="RECTIFYING"),
        hazard("hz-closed", now, now + D),
        hazard("hz-closed", now, now + D, status="CLOSED", version=2),
    ])
    feeder.join(60)

    def alerts(kind: str) -> str:
        return (f"SELECT subject_id, count() FROM alerts WHERE alert_type = '{kind}' "
                "GROUP BY subject_id ORDER BY subject_id")

    # -- hidden dangers ------------------------------------------------------------------
    rows = wait_for(backend, alerts("HAZARD_OVERDUE"),
                    lambda r: {s for s, _ in r} >= {"hz-timer", "hz-late", "hz-major"}
                    and dict(r).get("hz-major", 0) >= 2, 90, "overdue alerts", worker)
    counts = dict(rows)
    assert counts["hz-timer"] == 1 and counts["hz-late"] == 1     # ordinary: once
    event = backend.query("SELECT toUnixTimestamp(event_time) FROM alerts WHERE alert_type = "
                          "'HAZARD_OVERDUE' AND subject_id = 'hz-timer'").scalar()
    deadline = backend.query("SELECT toUnixTimestamp(rectification_deadline) FROM hazards "
                             "WHERE hazard_id = 'hz-timer'").scalar()
    assert event == deadline                            # raised by the timer, at the deadline
    days = {h: int(str(d)) for h, d in backend.query(
        "SELECT hazard_id, days_overdue FROM hazards "
        "WHERE hazard_id IN ('hz-late', 'hz-timer', 'hz-bad')").rows}
    assert days == {"hz-late": 3, "hz-timer": 0, "hz-bad": 0}
    wait_for(backend, alerts("HAZARD_TRANSITION_INVALID"), lambda r: r == [("hz-bad", 1)], 30,
             "invalid transition", worker)
    assert backend.query("SELECT flags FROM hazard_versions WHERE hazard_id = 'hz-bad'"
                         ).rows == [(["INVALID_TRANSITION"],)]
    assert _tombstoned(st, "hazards", b"hz-closed", timeout=60), worker.tail(60)

    # -- gateways and sensors ------------------------------------------------------------
    wait_for(backend, alerts("GATEWAY_NEVER_CONNECTED"), lambda r: r == [("gw-nc", 1)], 60,
             "never connected", worker)
    assert backend.query("SELECT status FROM gateway_state WHERE gateway_id = 'gw-nc'"
                         ).rows == [("OFFLINE",)]
    [(readings, outages, ratio)] = wait_for(
        backend, "SELECT readings, open_outages, online_ratio FROM enterprise_days "
                 "WHERE enterprise_id = 'ent-nc' AND day = today()",
        lambda r: len(r) == 1, 30, "the never-connected enterprise's day", worker)
    assert int(str(readings)) == 0 and int(str(outages)) == 1 and float(ratio) < 1
    silent = wait_for(backend, alerts("SENSOR_SILENT"),
                      lambda r: {s for s, _ in r} >= {"s-live-b", "s-live-c"}, 60,
                      "silent sensors", worker)
    assert "s-live-a" not in dict(silent)
    assert backend.query("SELECT status, offline_seconds FROM gateway_status "
                         "WHERE gateway_id = 'gw-live' ORDER BY changed_at LIMIT 1"
                         ).rows == [("ONLINE", 0)]        # its first contact
    spot = wait_for(backend, "SELECT enterprise_id, toString(registered_sensors), "
                             "toString(reporting_sensors) FROM spot_checks ORDER BY enterprise_id",
                    lambda r: ("ent-hz", "3", "2") in r, 30, "spot checks", worker)
    assert spot == [("ent-hz", "3", "2"), ("ent-nc", "1", "0")]     # no canary

    # -- counted once, canary left out --------------------------------------------------
    accepted = backend.query("SELECT sum(accepted) FROM ledger_v WHERE record_type = "
                             "'telemetry' AND record_id LIKE 'gw-live/%'").scalar()
    distinct = backend.query("SELECT uniqExact(reading_id) FROM readings "
                             "WHERE gateway_id = 'gw-live'").scalar()
    assert int(str(accepted)) == int(str(distinct)) + 1   # r-dup went through twice...
    per_minute = backend.query("SELECT sum(readings) FROM sensor_minutes "
                               "WHERE enterprise_id = 'ent-hz'").scalar()
    per_day = backend.query("SELECT sum(readings) FROM enterprise_days "
                            "WHERE enterprise_id = 'ent-hz'").scalar()
    assert int(str(per_minute)) == int(str(per_day)) == int(str(distinct))  # ...counted once
    wait_for(backend, f"SELECT count() FROM readings WHERE enterprise_id = '{CANARY}-ent'",
             lambda r: r and int(str(r[0][0])) == 20, 30, "canary readings stored", worker)
    for view in ("sensor_minutes", "enterprise_days", "spot_checks"):
        assert backend.query(f"SELECT count() FROM {view} WHERE enterprise_id = "
                             f"'{CANARY}-ent'").scalar() in (0, "0"), view
    scope = Scope(_dt(int(time.time() * 1000) - 3600 * S), _dt(int(time.time() * 1000) + S))
    for section in sections(scope):
        data = load(backend, section)
        assert not any(CANARY in str(value) for row in data.rows for value in row), section.key


def _dt(ms: int) -> Any:
    import datetime as dt

    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC)


def _tombstoned(st: Settings, table: str, key: bytes, timeout: float) -> bool:
    """Whether the latest changelog message of ``key`` in the worker's table is a
    tombstone (the state left the table)."""
    consumer = clients.consumer(st, unique("hb-changelog"), **{"auto.offset.reset": "earliest",
                                                                "enable.auto.commit": False})
    topic = f"{st.worker_id}-{table}-changelog"
    consumer.subscribe([topic])
    latest: dict[bytes, bytes | None] = {}
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            msg = consumer.poll(1.0)
            if msg is None or msg.error():
                if key in latest and latest[key] is None:
                    return True
                continue
            if msg.key() == key:
                latest[key] = msg.value()
        return key in latest and latest[key] is None
    finally:
        consumer.close()
