"""Every field of every schema is classified, and ``ebi schemas check`` fails when one is
not."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pytest

from schemas.catalog import default_catalog
from schemas.catalog.declarations import OUTPUTS, TYPES
from schemas.catalog.model import catalog_from
from schemas.classification import (
    CLASSES,
    OPEN,
    TRADE_SECRET,
    ClassificationError,
    Rule,
    problems,
    rule_of,
    store_problems,
)
from streams.cli.schemas import check_classification

AVRO = Path(__file__).resolve().parents[3] / "schemas" / "avro"
TOY = Path(__file__).resolve().parents[3] / "tests" / "toy"


def _record(*fields: dict) -> dict:
    return {"type": "record", "name": "R", "fields": list(fields)}


def test_every_bundled_schema_and_the_toy_are_fully_classified() -> None:
    assert store_problems(default_catalog().schemas) == []
    for path in TOY.glob("*.avsc"):
        assert problems(json.loads(path.read_text())) == [], path.name


def test_the_decisions_of_docs_security() -> None:
    schemas = default_catalog().schemas

    def rule(record: str, name: str) -> Rule:
        fields = {f["name"]: f for f in schemas.json(record)["fields"]}
        found = rule_of(fields[name])
        assert found is not None
        return found

    value = rule("EnrichedTelemetryBatch", "value")
    assert value.base == TRADE_SECRET            # a new metric starts as a trade secret
    assert set(value.when[0].values) >= {"METHANE", "CARBON_MONOXIDE"}
    assert "PRESSURE" not in value.when[0].values
    assert rule("EnrichedHazardRecord", "description").base == TRADE_SECRET
    loss = rule("EnrichedIncidentReport", "direct_economic_loss_cny")
    assert (loss.base, loss.when[0].values, loss.when[0].classification) == (
        TRADE_SECRET, ("AUTHORISED",), "public")
    assert rule("EnrichedIncidentReport", "description").base == "personal"
    assert rule("AlarmEvent", "acknowledged_by").base == "personal"
    assert rule("DeadLetter", "value").base == TRADE_SECRET
    assert rule("Enterprise", "name").base == "internal"
    assert rule("EnrichedTelemetryBatch", "region_code").base == "public"


def test_missing_unknown_and_dangling_classifications_are_named() -> None:
    schema = _record(
        {"name": "a", "type": "string"},
        {"name": "b", "type": "string", "classification": "secret"},
        {"name": "m", "type": {"type": "enum", "name": "M", "symbols": ["X", "Y"]},
         "classification": "public"},
        {"name": "c", "type": "double", "classification": "trade_secret",
         "classification_when": [{"field": "m", "in": ["Z"], "classification": "internal"}]},
        {"name": "d", "type": "double", "classification": "trade_secret",
         "classification_when": [{"field": "nope", "in": ["X"],
                                  "classification": "internal"}]},
        {"name": "n", "type": {"type": "record", "name": "N", "fields": [
            {"name": "inner", "type": "int"}]}, "classification": "internal"},
    )
    found = problems(schema)
    assert any(p.startswith("R.a: no \"classification\"") for p in found)
    assert any(p.startswith("R.b:") and "secret" in p for p in found)
    assert any(p.startswith("R.c:") and "Z not symbols of m" in p for p in found)
    assert any(p.startswith("R.d:") and "'nope'" in p for p in found)
    assert any(p.startswith("R.n.inner: no") for p in found)
    assert len(found) == 5


def test_conditions_may_name_a_parallel_array_of_a_columnar_record() -> None:
    schema = _record(
        {"name": "metric", "classification": "public", "type": {
            "type": "array", "items": {"type": "enum", "name": "M", "symbols": ["A"]}}},
        {"name": "value", "classification": "trade_secret", "type": {
            "type": "array", "items": "double"},
         "classification_when": [{"field": "metric", "in": ["A"],
                                  "classification": "internal"}]})
    assert problems(schema) == []


def test_rules_say_which_rows_a_clearance_shows() -> None:
    rule = rule_of({"name": "v", "classification": "trade_secret", "classification_when": [
        {"field": "m", "in": ["A"], "classification": "internal"}]})
    assert rule is not None
    assert rule.visible(OPEN) is None
    assert rule.visible(OPEN | {TRADE_SECRET}) is True
    assert Rule("personal").visible(OPEN) is False
    assert rule.text() == "trade_secret; internal where m in A"
    with pytest.raises(ClassificationError, match="exactly"):
        rule_of({"name": "v", "classification": "internal",
                 "classification_when": [{"field": "m"}]})
    assert set(CLASSES) == {"public", "internal", "trade_secret", "personal"}


def test_schemas_check_fails_on_an_unclassified_field(tmp_path: Path) -> None:
    for path in AVRO.glob("*.avsc"):
        shutil.copy(path, tmp_path / path.name)
    alert = json.loads((tmp_path / "Alert.avsc").read_text())
    del alert["fields"][0]["classification"]
    (tmp_path / "Alert.avsc").write_text(json.dumps(alert))
    out = io.StringIO()
    assert check_classification(catalog_from(TYPES, OUTPUTS, [tmp_path]), out) == 1
    assert "UNCLASSIFIED Alert.alert_id" in out.getvalue()
    assert check_classification(default_catalog(), io.StringIO()) == 0
