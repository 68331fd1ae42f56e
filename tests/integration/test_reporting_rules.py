"""Every reporting rule of docs/regional-systems.md, one scenario each, through the live
pipeline: Kafka (input topics stamped with the broker's receipt time), Apicurio, `ebi
worker`, `ebi sink` and the Debian ClickHouse server; the outcome is read from the analyst
views and the alerts in ClickHouse.

The worker runs with the bundled policy, its clocks shortened so that they fire within the
test (follow-ups 40 s, the reporting day 90 s with the county's zero report due 20 s into
it, escalation 30 s, the final report 30 s after a disaster is stable, the state horizon
60 s, the timer every second). Every number still comes from the policy file.
"""

from __future__ import annotations

import csv
import io
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from schemas.catalog import default_catalog
from schemas.codec import AvroSerializer, SerializationContext
from streams import clients
from streams.kafkaio import publish
from streams.settings import Settings
from streams.signing.signer import signer_for
from streams.worker.app import changelog_topic
from streams.worker.topics import ensure_topics
from tests.integration.conftest import unique
from tests.integration.test_sink_kit import ebi, env_for
from tests.integration.test_worker_kit import WorkerProcess

pytestmark = pytest.mark.integration
CATALOG = default_catalog()
H = 3_600_000
D = 24 * H
FAST = [  # (text in default.toml, its replacement)
    ('check_every = "30s"', 'check_every = "1s"'),
    ('warn_before = "1h"', 'warn_before = "10s"'),
    ('within = "24h"\nfrom = "previous"', 'within = "40s"\nfrom = "previous"'),
    ('dedup_horizon = "30d"', 'dedup_horizon = "60s"'),
    ('report_to = "PROVINCE"\nwithin = "2h"', 'report_to = "PROVINCE"\nwithin = "30s"'),
    ('day = "24h"', 'day = "90s"'),
    ('county = "9h"', 'county = "20s"'),
    ('city = "10h"', 'city = "25s"'),
    ('province = "12h"', 'province = "30s"'),
    ('county = "2wd"', 'county = "30s"'),
    ('city = "3wd"', 'city = "40s"'),
    ('province = "5wd"', 'province = "50s"'),
]


def fast_policy(path: Path) -> Path:
    text = resources.files("streams.policy").joinpath("default.toml").read_text("utf-8")
    for old, new in FAST:
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    path.write_text(text, "utf-8")
    return path


@dataclass
class Run:
    s: Settings
    run: str
    started: int
    published: int = 0
    ids: dict[str, str] = field(default_factory=dict)

    def id(self, name: str) -> str:
        return self.ids.setdefault(name, f"{self.run}-{name}")

    def q(self, sql: str) -> list[list[str]]:
        done = ebi(self.s, "query", "--format", "csv", sql)
        assert done.returncode == 0, done.stderr
        return list(csv.reader(io.StringIO(done.stdout)))[1:]

    def alerts(self) -> set[tuple[str, str]]:
        rows = self.q(f"SELECT alert_type, subject_id FROM alerts WHERE subject_id LIKE "
                      f"'{self.run}-%'")
        return {(t, s.removeprefix(f"{self.run}-")) for t, s in rows}

    def report(self, name: str, column: str, rid: str = "") -> list[str]:
        where = f"report_id = '{self.id(name)}-{rid}'" if rid else \
            f"incident_id = '{self.id(name)}'"
        return [r[0] for r in self.q(
            f"SELECT {column} FROM incident_reports WHERE {where} ORDER BY reported_at")]


def rep(run: Run, name: str, rid: str, stage: str = "INITIAL", *, at: str = "COUNTY",
        kind: str = "PRODUCTION_SAFETY", occurred: int | None = None,
        reported: int | None = None, **figures: Any) -> tuple[str, str, dict[str, Any]]:
    now = int(time.time() * 1000)
    reported = now - 60_000 if reported is None else reported
    record = {
        "incident_id": run.id(name), "report_id": f"{run.id(name)}-{rid}", "stage": stage,
        "kind": kind, "industry": figures.pop("industry", "coal mining")
        if kind == "PRODUCTION_SAFETY" else None,
        "disaster_category": figures.pop("category", "GEOLOGICAL")
        if kind == "NATURAL_DISASTER" else None,
        "occurred_at": reported - 30 * 60_000 if occurred is None else occurred,
        "reported_at": reported, "reporting_unit": f"{at.lower()} bureau",
        "reporting_level": at, "region_code": "420102",
        "declared_level": figures.pop("level", "ORDINARY"), "deaths": 0, "missing": 0,
        "serious_injuries": 0, "direct_economic_loss_cny": 0.0, "affected_population": 0,
        "description": "reporting-rules scenario", "publication": "INTERNAL"}
    record.update(figures)
    return ("incidents", run.id(name), record)


def disaster(run: Run, name: str, rid: str, stage: str = "INITIAL", **kw: Any
             ) -> tuple[str, str, dict[str, Any]]:
    return rep(run, name, rid, stage, kind="NATURAL_DISASTER", **kw)


def produce_with_time(s: Settings, item: tuple[str, str, dict[str, Any]], ts_ms: int) -> None:
    """Send a record whose producer claims an arrival time (CreateTime) of ``ts_ms``."""
    logical, key, record = item
    topic = s.topic(logical)
    data = AvroSerializer(clients.registry(s))(record, SerializationContext(
        topic, CATALOG.topic(logical).record))
    signer = signer_for(s, clients.registry(s), CATALOG)     # signed like any bureau's
    assert signer is not None
    signer.prepare([item])
    headers = signer.sign(logical, key.encode(), data, record)
    producer = clients.producer(s, **{"acks": "all"})
    producer.produce(topic, value=data, key=key.encode(), timestamp=ts_ms, headers=headers)
    assert producer.flush(30) == 0


EXPECTED = {
    ("SUSPECTED_CONCEALMENT", "flood"),
    ("ESCALATION_REQUIRED", "quake"), ("ESCALATION_OVERDUE", "quake"),
    ("ESCALATION_REQUIRED", "quake-ok"),
    ("REPEATED_INITIAL", "chain"), ("REPORT_AFTER_FINAL", "chain"),
    ("RECEIVED_LATE", "backdated"), ("LATE_REPORT", "late-receipt"),
    ("RECEIVED_LATE", "late-receipt"),
    ("REPORT_OVERDUE", "follow"), ("DAILY_REPORT_OVERDUE", "daily"),
    ("REPORT_OVERDUE", "final"), ("LATE_CASUALTY_CHANGE", "road"),
}


@pytest.fixture(scope="module")
def live(settings: Settings, clickhouse_server_url: str,
         tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    db = unique("rules")
    policy = fast_policy(tmp_path_factory.mktemp("rules") / "policy.toml")
    s = settings.replace(topic_prefix=f"{db}.", topic_partitions=1,
                         worker_id=unique("ebi-rules"), sink_group=unique("rules-sink"),
                         clickhouse_url=f"{clickhouse_server_url.rsplit('/', 1)[0]}/{db}",
                         policy_file=str(policy))
    ensure_topics(s, CATALOG)
    ensure_topics(s, CATALOG, changelogs=[changelog_topic(s, t) for t in ("incidents",
                                                                         "gateways")],
                  partitions=1)
    assert ebi(s, "migrate").returncode == 0
    run = Run(s, db.replace("_", "-"), int(time.time() * 1000))
    worker = WorkerProcess(s).start()
    sink_log = open(s.data_dir / f"{s.sink_group}.log", "wb")  # noqa: SIM115 - the child's
    sink = subprocess.Popen([sys.executable, "-m", "streams", "sink"], env=env_for(s),
                            stdout=sink_log, stderr=subprocess.STDOUT)
    try:
        send_scenarios(run)
        run.published = int(time.time() * 1000)
        deadline = time.monotonic() + 420
        while not run.alerts() >= EXPECTED or not run.q(
                f"SELECT 1 FROM readings WHERE reading_id = '{run.id('x1')}'"):
            assert time.monotonic() < deadline, (
                f"missing alerts {sorted(EXPECTED - run.alerts())}\n{worker.tail()}")
            assert worker.alive(), worker.tail()
            assert sink.poll() is None, (s.data_dir / f"{s.sink_group}.log").read_text()
            time.sleep(3)
        # the expiry scenario: its incident ended (FINAL) over 60 s ago
        wait = run.published + 75_000 - int(time.time() * 1000)
        if wait > 0:
            time.sleep(wait / 1000)
        publish(s, clients.registry(s), [rep(run, "expire", "r3", "FOLLOW_UP")])
        deadline = time.monotonic() + 120
        while not run.q(f"SELECT error_code FROM dead_letters WHERE record_id = "
                        f"'{run.id('expire')}-r3'"):
            assert time.monotonic() < deadline, worker.tail()
            time.sleep(2)
        time.sleep(5)       # alerts that must not come would have come by now
        yield run
    finally:
        sink.send_signal(signal.SIGTERM)
        sink.wait(60)
        sink_log.close()
        worker.stop()


def send_scenarios(run: Run) -> None:
    s = run.s
    now = int(time.time() * 1000)
    registry = clients.registry(s)
    ent, gw, sensor = run.id("ent"), run.id("gw"), run.id("s1")
    publish(s, registry, [
        ("enterprises", ent, {"enterprise_id": ent, "name": "rules", "region_code": "420102",
                              "industry": "chemicals", "updated_at": now - D}),
        ("sensors", sensor, {"sensor_id": sensor, "enterprise_id": ent, "gateway_id": gw,
                             "metric": "METHANE", "unit": "PERCENT_VOL", "alarm_level1": None,
                             "alarm_level2": None, "updated_at": now - D})])
    items = [
        # 1. grading: a landslide with 12 dead is below Level IV; a flood understated
        disaster(run, "landslide", "r1", at="PROVINCE", deaths=12),
        disaster(run, "flood", "r1", at="PROVINCE", category="FLOOD_DROUGHT", deaths=30,
                 missing=25, declared_response="LEVEL_IV"),
        # 2. escalation: county only (overdue); county then province (in time)
        disaster(run, "quake", "r1", category="EARTHQUAKE", deaths=8, missing=3),
        disaster(run, "quake-ok", "r1", category="EARTHQUAKE", deaths=12),
        disaster(run, "quake-ok", "r2", at="PROVINCE", category="EARTHQUAKE", deaths=12),
        # 3. the chain: a second INITIAL from the same level, a FOLLOW_UP after the FINAL
        *(rep(run, "chain", f"r{n}", stage, reported=now - (5 - n) * 60_000)
          for n, stage in enumerate(("INITIAL", "INITIAL", "FINAL", "FOLLOW_UP"), 1)),
        # 4. which time counts: filed 1 h before it reached the platform
        rep(run, "backdated", "r1", occurred=now - 90 * 60_000, reported=now - H),
        # 5. clocks: follow-up overdue; a stable accident needs none; the daily zero report;
        # the final report of a stable disaster; a casualty change after the window
        rep(run, "follow", "r1"),
        rep(run, "stable", "r1"), rep(run, "stable", "r2", "FOLLOW_UP", stable=True),
        disaster(run, "daily", "r1", relocated_or_assisted=150_000),
        disaster(run, "final", "r1", relocated_or_assisted=150_000),
        disaster(run, "final", "r2", "FOLLOW_UP", relocated_or_assisted=150_000, stable=True),
        rep(run, "road", "r1", industry="road traffic", occurred=now - 10 * D, deaths=1),
        rep(run, "road", "r2", "SUPPLEMENTARY", industry="road traffic", occurred=now - 10 * D,
            deaths=2),
        # 10. an incident that ends and then leaves the state after the horizon
        rep(run, "expire", "r1"), rep(run, "expire", "r2", "FINAL"),
    ]
    publish(s, registry, items)
    # 4. the sender claims (CreateTime) it sent these on time; the broker's time says not
    late = rep(run, "late-receipt", "r1", occurred=now - 4 * H, reported=now - int(3.5 * H))
    produce_with_time(s, late, now - int(3.5 * H))
    envelope = {"gateway_id": gw, "enterprise_id": ent, "sequence": 1,
                "sent_at": now - 10 * 60_000,
                "readings": [{"reading_id": run.id("x1"), "sensor_id": sensor,
                              "metric": "METHANE", "value": 0.2, "unit": "PERCENT_VOL",
                              "quality": "GOOD", "event_time": now - 10 * 60_000}]}
    produce_with_time(s, ("telemetry", gw, envelope), now - 10 * 60_000)


# -- the tests -------------------------------------------------------------------------------

def test_input_topics_carry_the_brokers_receipt_time(live: Run) -> None:
    from confluent_kafka.admin import ConfigResource

    admin = clients.admin(live.s)
    names = [live.s.topic(name) for name in CATALOG.input_topics()]
    futures = admin.describe_configs([ConfigResource("TOPIC", n) for n in names])
    for resource, future in futures.items():
        assert future.result(30)["message.timestamp.type"].value == "LogAppendTime", resource


def test_disasters_are_graded_by_the_relief_plan(live: Run) -> None:
    assert live.report("landslide", "implied_response") == ["NONE"]
    assert live.report("landslide", "has(flags, 'SUSPECTED_CONCEALMENT')") == ["0"]
    assert ("SUSPECTED_CONCEALMENT", "landslide") not in live.alerts()
    assert live.report("flood", "implied_response") == ["LEVEL_III"]
    assert live.report("flood", "declared_response") == ["LEVEL_IV"]
    [[message]] = live.q(f"SELECT message FROM alerts WHERE alert_type = "
                         f"'SUSPECTED_CONCEALMENT' AND subject_id = '{live.id('flood')}'")
    assert "LEVEL_III" in message


def test_a_county_only_major_disaster_must_escalate(live: Run) -> None:
    alerts = live.alerts()
    assert ("ESCALATION_OVERDUE", "quake-ok") not in alerts
    assert live.report("quake", "has(flags, 'ESCALATION_REQUIRED')") == ["1"]
    [[message]] = live.q(f"SELECT message FROM alerts WHERE alert_type = 'ESCALATION_OVERDUE'"
                         f" AND subject_id = '{live.id('quake')}'")
    assert "PROVINCE level was due at" in message and "CST (UTC+8)" in message


def test_a_second_initial_and_a_report_after_the_final_are_flagged(live: Run) -> None:
    assert live.report("chain", "has(flags, 'REPEATED_INITIAL')", "r2") == ["1"]
    assert live.report("chain", "has(flags, 'REPORT_AFTER_FINAL')", "r4") == ["1"]
    # the incident stays closed: no follow-up clock started again (40 s)
    assert not {a for a in live.alerts() if a[1] == "chain" and "OVERDUE" in a[0]}
    [[stage, flag]] = live.q(f"SELECT stage, has(flags, 'REPORT_AFTER_FINAL') FROM incidents "
                             f"WHERE incident_id = '{live.id('chain')}'")
    assert (stage, flag) == ("FOLLOW_UP", "1")


def test_lateness_counts_at_the_brokers_receipt(live: Run) -> None:
    assert live.report("backdated", "has(flags, 'RECEIVED_LATE')") == ["1"]
    assert live.report("backdated", "late") == ["0"]
    [[late, late_by, receipt, clock]] = live.q(
        f"SELECT late, late_by_ms, toUnixTimestamp(receipt_at), receipt_clock FROM "
        f"incident_reports WHERE incident_id = '{live.id('late-receipt')}'")
    assert late == "1" and clock == "BROKER"
    assert 0.95 * H < int(late_by) < 1.5 * H           # due 1 h before it reached Kafka
    assert int(receipt) * 1000 >= live.started - 5000      # not the claimed CreateTime
    [[message]] = live.q(f"SELECT message FROM alerts WHERE alert_type = 'LATE_REPORT' AND "
                         f"subject_id = '{live.id('late-receipt')}'")
    assert "CST (UTC+8)" in message and not re.search(r"\d{11,}", message)


def test_telemetry_lateness_counts_at_the_same_receipt(live: Run) -> None:
    [[late, lag]] = live.q(f"SELECT late, arrival_lag_ms FROM readings WHERE reading_id = "
                           f"'{live.id('x1')}'")
    assert late == "1" and int(lag) >= 9 * 60_000


def test_clocks_fire_when_nothing_arrives(live: Run) -> None:
    alerts = live.alerts()
    assert ("REPORT_OVERDUE", "stable") not in alerts          # its follow-ups ended
    assert ("DAILY_REPORT_OVERDUE", "final") not in alerts     # stable: no daily reports
    [[message]] = live.q(f"SELECT message FROM alerts WHERE alert_type = 'REPORT_OVERDUE' AND "
                         f"subject_id = '{live.id('final')}'")
    assert message.startswith("a FINAL report")
    [[message]] = live.q(f"SELECT message FROM alerts WHERE alert_type = "
                         f"'DAILY_REPORT_OVERDUE' AND subject_id = '{live.id('daily')}' "
                         "ORDER BY event_time LIMIT 1")
    assert "COUNTY level" in message and "CST (UTC+8)" in message
    assert live.report("road", "has(flags, 'LATE_CASUALTY_CHANGE')", "r2") == ["1"]


def test_an_ended_incident_leaves_the_state_after_the_horizon(live: Run) -> None:
    [[code]] = live.q(f"SELECT error_code FROM dead_letters WHERE record_id = "
                      f"'{live.id('expire')}-r3'")
    assert code == "STAGE_ORDER"     # the worker no longer knows the incident


def test_no_alert_message_gives_raw_epoch_millis(live: Run) -> None:
    rows = live.q(f"SELECT message FROM alerts WHERE subject_id LIKE '{live.run}-%'")
    assert rows and not [r for r in rows if re.search(r"\d{11,}", r[0])]
