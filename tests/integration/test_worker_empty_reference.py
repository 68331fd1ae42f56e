"""A bureau that starts with incident reporting only: with no enterprise or sensor
registered (empty reference topics) the worker still serves incidents and hazards."""

from __future__ import annotations

import time

import pytest

from streams import clients
from streams.kafkaio import publish
from streams.settings import Settings
from streams.worker.topics import ensure_topics
from tests.integration.conftest import unique
from tests.integration.test_worker_kit import WorkerProcess, reader

pytestmark = pytest.mark.integration


def test_incidents_and_hazards_flow_with_empty_reference_topics(settings: Settings) -> None:
    s = settings.replace(topic_prefix=f"{unique('noref')}.", worker_id=unique("ebi-noref"),
                         topic_partitions=1)
    ensure_topics(s)
    now = int(time.time() * 1000)
    outputs = reader(s)
    worker = WorkerProcess(s).start()
    try:
        publish(s, clients.registry(s), [
            ("incidents", "inc-1", {
                "incident_id": "inc-1", "report_id": "rep-1", "stage": "INITIAL",
                "kind": "NATURAL_DISASTER", "industry": None, "disaster_category": "FLOOD_DROUGHT",
                "occurred_at": now - 600_000, "reported_at": now - 60_000,
                "reporting_unit": "county bureau", "reporting_level": "COUNTY",
                "region_code": "420102", "declared_level": "ORDINARY", "deaths": 0,
                "missing": 0, "serious_injuries": 0, "direct_economic_loss_cny": 0.0,
                "affected_population": 10, "description": "flood", "publication": "INTERNAL"}),
            ("hazards", "hz-1", {
                "hazard_id": "hz-1", "version": 1, "enterprise_id": "ent-unknown",
                "region_code": "420102", "category": "fire", "level": "ORDINARY",
                "status": "FOUND", "found_at": now - 60_000, "rectification_deadline": None,
                "updated_at": now - 60_000, "description": "blocked exit"})])

        def done(outs: list) -> bool:
            return {o.topic for o in outs} >= {"incidents.clean", "deadletter"}

        assert outputs.until(done, 90), worker.tail()
        assert worker.alive(), worker.tail()
    finally:
        outputs.close()
        worker.stop()
    dead = outputs.of("deadletter")
    assert [d["error_code"] for d in dead] == ["UNKNOWN_ENTERPRISE"]
    assert [r["report_id"] for r in outputs.of("incidents.clean")] == ["rep-1"]
