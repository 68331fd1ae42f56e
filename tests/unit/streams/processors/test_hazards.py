from __future__ import annotations

from typing import Any

import pytest

from schemas.records import Source
from streams.processors.context import ProcessorContext
from streams.processors.hazards import HazardProcessor
from tests.unit.streams.processors.conftest import T0, encodes

D = 86_400_000


def hazard(version: int, status: str = "FOUND", deadline: int | None = T0 + D,
           **extra: Any) -> dict[str, Any]:
    rec = {"hazard_id": "hz-1", "version": version, "enterprise_id": "ent-1",
           "region_code": "110101", "category": "fire", "level": "MAJOR", "status": status,
           "found_at": T0 - D, "rectification_deadline": deadline, "updated_at": T0 - D,
           "description": ""}
    rec.update(extra)
    return rec


def src(offset: int, ts: int = T0) -> Source:
    return Source("ebi.hazards", 0, offset, 2, ts)


@pytest.fixture
def proc(ctx: ProcessorContext) -> HazardProcessor:
    return HazardProcessor(ctx)


def test_versions_duplicates_and_replays(proc: HazardProcessor) -> None:
    out, state = proc.process(hazard(1), src(0), b"hz-1", b"raw", None, T0)
    assert out.clean is not None and out.clean["duplicate"] is False
    encodes("EnrichedHazardRecord", out.clean)
    out, state = proc.process(hazard(2, "RECTIFYING"), src(1), None, b"raw", state, T0)
    assert out.clean is not None and not out.clean["duplicate"]
    out, state = proc.process(hazard(1), src(2), None, b"raw", state, T0)
    assert out.clean is not None and out.clean["duplicate"] is True
    assert proc.process(hazard(1), src(2), None, b"raw", state, T0)[0].replay


def test_overdue_alerted_once(proc: HazardProcessor) -> None:
    out, state = proc.process(hazard(1), src(0, T0 + 2 * D), None, b"raw", None, T0 + 2 * D)
    assert out.clean is not None and out.clean["overdue"] is True
    assert [a["alert_type"] for a in out.alerts] == ["HAZARD_OVERDUE"]
    out, state = proc.process(hazard(2), src(1, T0 + 3 * D), None, b"raw", state, T0 + 3 * D)
    assert out.clean is not None and out.clean["overdue"] and not out.alerts
    out, _ = proc.process(hazard(3, "CLOSED"), src(2, T0 + 3 * D), None, b"raw", state, T0)
    assert out.clean is not None and not out.clean["overdue"]


@pytest.mark.parametrize(("rec", "code"), [
    (hazard(1, enterprise_id="ent-404"), "UNKNOWN_ENTERPRISE"),
    (hazard(1, region_code="11010"), "BAD_REGION_CODE"),
    (hazard(1, deadline=T0 - 2 * D), "BAD_TIMESTAMP"),
])
def test_invalid_hazards(proc: HazardProcessor, rec: dict[str, Any], code: str) -> None:
    out, state = proc.process(rec, src(0), None, b"raw", None, T0)
    assert out.clean is None and state is None
    assert [d["error_code"] for d in out.dead_letters] == [code]
