"""States written in an earlier layout are converted on load and behave the same.

``old_layouts.json`` holds, per state kind, a state as the worker wrote it before the
named-field layout and what that worker did with it on the suffix of
:mod:`.layout_scenarios`; both were captured once from that version of the worker.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from schemas.catalog import default_catalog
from schemas.catalog.model import resolve
from schemas.records import Source
from streams.processors.context import ProcessorContext
from streams.processors.dedup import id_hash
from streams.processors.hazards import HazardState
from streams.processors.incidents import IncidentState
from streams.processors.layouts import (
    upgrade_gateway,
    upgrade_hazard,
    upgrade_incident,
    upgrade_sensor,
)
from streams.processors.liveness import GatewayState
from streams.processors.telemetry import TelemetryProcessor
from tests.unit.streams.processors import layout_scenarios as scenarios
from tests.unit.streams.processors.conftest import T0

OLD = json.loads((Path(__file__).parent / "old_layouts.json").read_text("utf-8"))
KINDS = {"gateway": upgrade_gateway, "incident": upgrade_incident, "hazard": upgrade_hazard}
STATES: dict[str, Any] = {"gateway": GatewayState, "incident": IncidentState,
                          "hazard": HazardState}


def plain(obj: Any) -> Any:
    """As the worker sees it after a write and a read: through JSON."""
    return json.loads(json.dumps(obj))


def prefix(kind: str, ctx: ProcessorContext) -> Any:
    return plain(getattr(scenarios, f"{kind}_prefix")(ctx))


def suffix(kind: str, ctx: ProcessorContext, state: Any) -> Any:
    return plain(getattr(scenarios, f"{kind}_suffix")(ctx, state))


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_current_layout_behaves_as_the_earlier_worker(kind: str, ctx: ProcessorContext) -> None:
    assert suffix(kind, ctx, prefix(kind, ctx)) == OLD[kind]["behaviour"]


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_an_old_layout_state_is_converted_and_behaves_the_same(kind: str,
                                                               ctx: ProcessorContext) -> None:
    old = OLD[kind]["state"]
    upgraded = KINDS[kind](plain(old))
    current = prefix(kind, ctx)                   # the state the current code builds
    assert {k: current[k] for k in upgraded} == upgraded
    # fields added since are optional (NotRequired, read with their default)
    added = set(current) - set(upgraded)
    assert all("NotRequired[" in str(STATES[kind].__annotations__[k]) for k in added)
    assert suffix(kind, ctx, upgraded) == OLD[kind]["behaviour"]


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_a_current_state_passes_unchanged(kind: str, ctx: ProcessorContext) -> None:
    state = prefix(kind, ctx)
    assert KINDS[kind](state) is state


def test_the_catalog_names_the_converters() -> None:
    states = default_catalog().states()
    assert {name: resolve(s.upgrade) for name, s in states.items()
            if s.upgrade} == {
        "gateways": upgrade_gateway, "incidents": upgrade_incident, "hazards": upgrade_hazard}


def test_the_earliest_ring_layout_is_converted(ctx: ProcessorContext) -> None:
    """String ids with per-reading ``src``/``at`` lists, inside an old gateway state."""
    first, second = Source("ebi.telemetry", 0, 10, 1, T0), Source("ebi.telemetry", 0, 11, 1, T0)
    sensor = {"n": 3, "v": 0.2, "t": T0 - 2000, "b": 0.0, "sp": 0, "fr": 1, "fa": 0,
              "m": 0.2, "d": 0.01, "al": 0, "ids": ["r1", "r2", "r3"],
              "src": [first.packed, first.packed, second.packed], "at": [T0, T0, T0 + 5]}
    old = {"e": "ent-1", "ls": T0 - 500, "la": T0, "iv": 60_000, "on": 1, "os": T0 - 500,
           "up": 0, "hs": -1, "s": {"s-1": sensor}, "q": [[2, second.packed]],
           "at_t": second.packed}
    state = upgrade_gateway(old)
    st = state["sensors"]["s-1"]
    assert st["recent_ids"] == [id_hash("r1"), id_hash("r2"), id_hash("r3")]
    assert st["recent_envelopes"] == [[first.packed, T0, 2], [second.packed, T0 + 5, 1]]
    assert upgrade_sensor(st) is st
    env = {"gateway_id": "gw-1", "enterprise_id": "ent-1", "sent_at": T0, "sequence": 3,
           "readings": [{"reading_id": rid, "sensor_id": "s-1", "metric": "METHANE",
                         "value": 0.2, "unit": "PERCENT_VOL", "quality": "GOOD",
                         "event_time": T0 - 1000} for rid in ("r2", "r4")]}
    out, state = TelemetryProcessor(ctx).process(env, Source("ebi.telemetry", 0, 12, 1, T0),
                                                 b"gw-1", b"x", state, T0)
    assert out.clean is not None and out.clean["duplicates"] == 1
    assert out.clean["reading_id"] == ["r4"]
