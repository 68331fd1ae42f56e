"""Schema evolution against the real registry (Apicurio's Confluent-compatible API)."""

from __future__ import annotations

import copy
import io
import json
import struct
from typing import Any

import fastavro
import pytest

from schemas import compat
from schemas.catalog import default_catalog, subject
from schemas.registry import COMPATIBILITY, SchemaRegistry
from streams import clients
from streams.cli import schemas as schemas_cli
from streams.settings import Settings
from tests.integration.conftest import unique

CATALOG = default_catalog()
SCHEMAS = CATALOG.schemas
TOPIC_NAMES = [t.name for t in CATALOG.all_topics()]

pytestmark = pytest.mark.integration


def heartbeat_v1() -> dict[str, Any]:
    return json.loads(SCHEMAS.text("GatewayHeartbeat"))


def with_field(schema: dict[str, Any], field: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(schema)
    out["fields"].append(field)
    return out


def encode(registry: SchemaRegistry, schema_id: int, obj: dict[str, Any]) -> bytes:
    out = io.BytesIO()
    out.write(struct.pack(">bI", 0, schema_id))
    fastavro.schemaless_writer(out, registry.schema_for_id(schema_id), obj)
    return out.getvalue()


def decode(registry: SchemaRegistry, data: bytes, reader: dict[str, Any]) -> Any:
    writer = registry.schema_for_id(struct.unpack(">bI", data[:5])[1])
    return fastavro.schemaless_reader(io.BytesIO(data[5:]), writer,
                                      fastavro.parse_schema(reader, named_schemas={}))


def test_evolution_rules(settings: Settings) -> None:
    registry = clients.registry(settings)
    subj = unique("it-compat") + "-value"
    v1 = heartbeat_v1()
    id1 = registry.register(subj, json.dumps(v1))
    registry.set_compatibility(subj, COMPATIBILITY)
    assert registry.client.get_compatibility(subj) == COMPATIBILITY

    v2 = with_field(v1, {"name": "uptime_s", "type": ["null", "long"], "default": None})
    assert registry.is_compatible(subj, json.dumps(v2))
    assert compat.check(v2, [(1, v1)], "FULL_TRANSITIVE") == []
    id2 = registry.register(subj, json.dumps(v2))
    assert id2 != id1

    changed = copy.deepcopy(v2)
    next(f for f in changed["fields"] if f["name"] == "sequence")["type"] = "string"
    assert not registry.is_compatible(subj, json.dumps(changed))
    versions = [(1, v1), (2, v2)]
    assert compat.check(changed, versions, "BACKWARD_TRANSITIVE") == [
        f"GatewayHeartbeat.sequence: type changed from long to string (BACKWARD_TRANSITIVE: a "
        f"reader with the new schema cannot read data written with version {n})"
        for n in (1, 2)]

    required = with_field(v2, {"name": "site", "type": "string"})
    assert not registry.is_compatible(subj, json.dumps(required))

    removed = copy.deepcopy(v2)
    removed["fields"] = [f for f in removed["fields"] if f["name"] != "enterprise_id"]
    assert compat.check(removed, versions, "FULL_TRANSITIVE") == [
        f"GatewayHeartbeat.enterprise_id: field removed, and it has no default "
        f"(FORWARD_TRANSITIVE: a reader with version {n} cannot read data written with the "
        f"new schema)" for n in (1, 2)]

    # A v1 writer read by a v2 reader, and the reverse (fastavro schema resolution).
    beat = {"gateway_id": "gw-1", "enterprise_id": "ent-1", "sent_at": 1767225600000,
            "sequence": 3, "interval_s": 30, "firmware": "2.3.1"}
    old_data = encode(registry, id1, beat)
    assert decode(registry, old_data, v2)["uptime_s"] is None
    new_data = encode(registry, id2, {**beat, "uptime_s": 120})
    old_view = decode(registry, new_data, v1)
    assert old_view["sequence"] == 3 and "uptime_s" not in old_view


def test_register_and_check_commands(settings: Settings,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    mine = settings.replace(topic_prefix=unique("reg") + ".")
    registry = clients.registry(mine)
    assert schemas_cli.register(mine, registry, TOPIC_NAMES) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(TOPIC_NAMES)
    assert lines[0].startswith(f"{subject(mine.topic('telemetry'))} -> ")
    for name in TOPIC_NAMES:
        assert registry.client.get_compatibility(subject(mine.topic(name))) == COMPATIBILITY
    assert schemas_cli.check(mine, registry, TOPIC_NAMES) == 0
    assert "INCOMPATIBLE" not in capsys.readouterr().out

    # A registered history the local schema cannot follow: value was a string in version 1.
    other = settings.replace(topic_prefix=unique("regbad") + ".")
    old = json.loads(SCHEMAS.text("TelemetryBatch"))
    fields = old["fields"][4]["type"]["items"]["fields"]
    next(f for f in fields if f["name"] == "value")["type"] = "string"
    bad_subject = subject(other.topic("telemetry"))
    registry.register(bad_subject, json.dumps(old))
    registry.set_compatibility(bad_subject, COMPATIBILITY)
    assert schemas_cli.check(other, registry, ["telemetry"]) == 1
    out = capsys.readouterr().out
    assert ("TelemetryBatch.readings.value: type changed from string to double "
            "(BACKWARD_TRANSITIVE: a reader with the new schema cannot read data written "
            "with version 1)") in out
