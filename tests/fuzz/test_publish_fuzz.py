"""`ebi publish`'s readers and converter on anything a careless sender might hand them:
every row is either a record or a list of errors; nothing raises."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.cli.publish import prepare
from streams.policy import load_policy
from tests.fuzz.strategies import records

POLICY = load_policy()
NOW = 1_790_000_000_000
KINDS = ["telemetry", "heartbeat", "hazard", "incident", "enterprise", "sensor"]
RECORDS = dict(zip(KINDS, ["TelemetryBatch", "GatewayHeartbeat", "HazardRecord",
                           "IncidentReport", "Enterprise", "Sensor"], strict=True))

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(
        st.text(max_size=10), children, max_size=4), max_leaves=20)


def _prepare(tmp: Path, name: str, text: str, kind: str) -> None:
    path = tmp / name
    path.write_text(text, encoding="utf-8", errors="surrogateescape")
    out = prepare(path, kind, POLICY, NOW)
    assert out.read >= len(out.rejects)
    for row in out.rejects:
        assert row.errors and all(v.code for v in row.errors)


@pytest.mark.parametrize("kind", KINDS)
@given(st.lists(json_values, max_size=5))
def test_any_json_lines(tmp_path_factory: pytest.TempPathFactory, kind: str,
                        values: list[object]) -> None:
    tmp = tmp_path_factory.mktemp("pub")
    _prepare(tmp, "x.jsonl", "\n".join(json.dumps(v) for v in values), kind)
    _prepare(tmp, "a.json", json.dumps(values), kind)


@pytest.mark.parametrize("kind", KINDS)
@given(data=st.data())
def test_schema_shaped_records_with_extreme_values(tmp_path_factory: pytest.TempPathFactory,
                                                    kind: str, data: st.DataObject) -> None:
    record = data.draw(records(RECORDS[kind]))
    tmp = tmp_path_factory.mktemp("pub")
    _prepare(tmp, "x.jsonl", json.dumps(record, default=lambda b: b.hex()), kind)


@given(st.text(max_size=300))
def test_any_text_as_jsonl_json_and_csv(tmp_path_factory: pytest.TempPathFactory,
                                        text: str) -> None:
    tmp = tmp_path_factory.mktemp("pub")
    for name in ("x.jsonl", "x.csv"):
        _prepare(tmp, name, text, "telemetry")
    _prepare(tmp, "x.json", "[" + text, "incident")
