import copy
import json
from typing import Any

import pytest

from schemas import compat
from schemas.catalog import default_catalog

CATALOG = default_catalog()
SCHEMAS = CATALOG.schemas


def schema(record: str = "TelemetryBatch") -> dict[str, Any]:
    return json.loads(SCHEMAS.text(record))


def reading_fields(s: dict[str, Any]) -> list[dict[str, Any]]:
    return s["fields"][4]["type"]["items"]["fields"]


def test_type_change_names_field_and_rule() -> None:
    v1 = schema()
    v2 = copy.deepcopy(v1)
    next(f for f in reading_fields(v2) if f["name"] == "value")["type"] = "string"
    assert compat.check(v2, [(1, v1)], "BACKWARD_TRANSITIVE") == [
        "TelemetryBatch.readings.value: type changed from double to string "
        "(BACKWARD_TRANSITIVE: a reader with the new schema cannot read data written with "
        "version 1)"]


def test_optional_field_passes_in_every_mode() -> None:
    v1 = schema()
    v2 = copy.deepcopy(v1)
    reading_fields(v2).append({"name": "battery", "type": ["null", "double"], "default": None})
    v2["fields"].append({"name": "site", "type": "string", "default": ""})
    for mode in compat.MODES:
        assert compat.check(v2, [(1, v1)], mode) == []


def test_removing_a_required_field() -> None:
    v1 = schema("IncidentReport")
    v2 = copy.deepcopy(v1)
    v2["fields"] = [f for f in v2["fields"] if f["name"] != "reporting_unit"]
    assert compat.check(v2, [(1, v1)], "BACKWARD_TRANSITIVE") == []   # Avro allows it
    assert compat.check(v2, [(1, v1)], "FULL_TRANSITIVE") == [
        "IncidentReport.reporting_unit: field removed, and it has no default "
        "(FORWARD_TRANSITIVE: a reader with version 1 cannot read data written with the new "
        "schema)"]


def test_adding_required_field_fails_against_all_versions() -> None:
    v1 = schema("Enterprise")
    v2 = copy.deepcopy(v1)
    v2["fields"].append({"name": "tier", "type": ["null", "string"], "default": None})
    v3 = copy.deepcopy(v2)
    v3["fields"].append({"name": "licence", "type": "string"})
    messages = compat.check(v3, [(1, v1), (2, v2)], "BACKWARD_TRANSITIVE")
    assert [m.split("version ")[-1] for m in messages] == ["1)", "2)"]
    assert all(m.startswith("Enterprise.licence: field added without a default") for m in messages)
    assert len(compat.check(v3, [(1, v1), (2, v2)], "BACKWARD")) == 1


@pytest.mark.parametrize(("old", "new", "ok"), [
    ("int", "long", True), ("int", "double", True), ("long", "int", False),
    ("string", "bytes", True), ("double", "float", False), ("string", ["null", "string"], True),
    (["null", "string"], "string", False), ("boolean", "string", False),
])
def test_primitive_promotions(old: Any, new: Any, ok: bool) -> None:
    def rec(t: Any) -> dict[str, Any]:
        return {"type": "record", "name": "R", "fields": [{"name": "x", "type": t}]}
    assert (compat.check(rec(new), [(1, rec(old))], "BACKWARD") == []) is ok


def test_enum_symbols() -> None:
    v1 = schema("Sensor")
    v2 = copy.deepcopy(v1)
    metric = v2["fields"][3]["type"]
    metric["symbols"] = [s for s in metric["symbols"] if s != "DISPLACEMENT"]
    assert compat.check(v2, [(1, v1)], "BACKWARD") == [
        "Sensor.metric: enum symbol(s) DISPLACEMENT removed without an enum default "
        "(BACKWARD: a reader with the new schema cannot read data written with version 1)"]
    metric["default"] = "TEMPERATURE"
    assert compat.check(v2, [(1, v1)], "BACKWARD") == []


@pytest.mark.parametrize("record", SCHEMAS.names())
def test_every_schema_is_compatible_with_itself(record: str) -> None:
    s = schema(record)
    assert compat.check(s, [(1, s)], "FULL_TRANSITIVE") == []


def test_no_versions_and_bad_mode() -> None:
    assert compat.check(schema(), [], "FULL_TRANSITIVE") == []
    with pytest.raises(ValueError, match="unknown compatibility mode"):
        compat.check(schema(), [(1, schema())], "SIDEWAYS")


class FakeRegistry:
    def __init__(self, versions: dict[str, list[tuple[int, str]]], remote_ok: bool = True) -> None:
        self._versions = versions
        self.remote_ok = remote_ok

    def versions(self, subject: str) -> list[tuple[int, str]]:
        return self._versions.get(subject, [])

    def is_compatible(self, subject: str, text: str) -> bool:
        return self.remote_ok


def test_schemas_check_command_reports_field_and_rule() -> None:
    import io

    from streams.cli.schemas import check
    from streams.settings import Settings

    settings = Settings(topic_prefix="p.")
    old = schema()
    next(f for f in reading_fields(old) if f["name"] == "value")["type"] = "string"
    registry = FakeRegistry({"p.telemetry-value": [(1, json.dumps(old))],
                             "p.heartbeats-value": [(1, SCHEMAS.text("GatewayHeartbeat"))]})
    out = io.StringIO()
    assert check(settings, registry, ["telemetry", "heartbeats", "alerts"], out=out) == 1
    text = out.getvalue()
    assert ("p.telemetry-value: INCOMPATIBLE TelemetryBatch.readings.value: type changed from "
            "string to double (BACKWARD_TRANSITIVE") in text
    assert "p.heartbeats-value: compatible with 1 registered version(s)" in text
    assert "p.alerts-value: not registered yet" in text
    out = io.StringIO()
    assert check(settings, FakeRegistry({"p.heartbeats-value": [
        (1, SCHEMAS.text("GatewayHeartbeat"))]}, remote_ok=False), ["heartbeats"], out=out) == 1
    assert "the registry reports" in out.getvalue()
