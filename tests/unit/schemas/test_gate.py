"""The schema gate: the current schemas pass against their releases; a breaking change does
not, under the topic's rule."""

from __future__ import annotations

import json
from pathlib import Path

from schemas import gate
from schemas.catalog import default_catalog
from schemas.catalog.model import catalog_from

CATALOG = default_catalog()


def test_current_schemas_pass_against_every_release() -> None:
    results = gate.check(CATALOG)
    assert results and sum(r.releases >= 1 for r in results) >= 12   # new ones: none yet
    failed = [(r.record, r.problems) for r in results if not r.ok]
    assert failed == []


def test_rules_by_who_writes_the_topic() -> None:
    assert gate.rule(CATALOG, "TelemetryBatch") == "FULL_TRANSITIVE"
    assert gate.rule(CATALOG, "Sensor") == "FULL_TRANSITIVE"
    assert gate.rule(CATALOG, "EnrichedTelemetryBatch") == "BACKWARD_TRANSITIVE"
    assert gate.rule(CATALOG, "DeadLetter") == "BACKWARD_TRANSITIVE"


def _changed_catalog(tmp_path: Path, record: str, change: object) -> object:
    """The default catalog with one schema changed by ``change(schema)``."""
    schema = json.loads(CATALOG.schemas.text(record))
    change(schema)  # type: ignore[operator]
    (tmp_path / f"{record}.avsc").write_text(json.dumps(schema))
    return catalog_from(CATALOG.types, CATALOG.outputs, [tmp_path, *CATALOG.schemas.dirs])


def test_a_removed_field_without_default_fails_for_an_input_topic(tmp_path: Path) -> None:
    def drop(schema: dict) -> None:
        schema["fields"] = [f for f in schema["fields"] if f["name"] != "sequence"]

    changed = _changed_catalog(tmp_path, "TelemetryBatch", drop)
    (result,) = [r for r in gate.check(changed) if r.record == "TelemetryBatch"]  # type: ignore[arg-type]
    assert not result.ok
    assert any("TelemetryBatch.sequence" in p and "FORWARD_TRANSITIVE" in p and
               "release 0.1.0" in p for p in result.problems)


def test_a_changed_type_fails_for_an_internal_topic(tmp_path: Path) -> None:
    def retype(schema: dict) -> None:
        for f in schema["fields"]:
            if f["name"] == "sequence":
                f["type"] = "string"

    changed = _changed_catalog(tmp_path, "EnrichedTelemetryBatch", retype)
    (result,) = [r for r in gate.check(changed) if r.record == "EnrichedTelemetryBatch"]  # type: ignore[arg-type]
    assert result.rule == "BACKWARD_TRANSITIVE" and not result.ok


def test_an_added_field_with_default_passes(tmp_path: Path) -> None:
    def add(schema: dict) -> None:
        schema["fields"].append({"name": "site", "type": ["null", "string"], "default": None})

    changed = _changed_catalog(tmp_path, "GatewayHeartbeat", add)
    (result,) = [r for r in gate.check(changed) if r.record == "GatewayHeartbeat"]  # type: ignore[arg-type]
    assert result.ok


def test_release_copies_the_current_schemas(tmp_path: Path) -> None:
    target = gate.release(CATALOG, "9.9.9", tmp_path)
    assert sorted(p.stem for p in target.iterdir()) == sorted(
        {t.record for t in CATALOG.all_topics()})
    assert gate.released("Alert", tmp_path)[0][0] == "9.9.9"
