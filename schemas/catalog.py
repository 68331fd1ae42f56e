"""Which record type travels on which topic, and the parsed schemas.

Topic names here are logical; ``Settings.topic(name)`` adds the deployment's prefix.
Subjects follow the topic-name strategy: ``<full topic>-value``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import fastavro


@dataclass(frozen=True)
class TopicSpec:
    name: str          # logical name, without the deployment prefix
    record: str        # schema file name without .avsc
    key_field: str     # record field used as the Kafka key (ordering)
    compacted: bool = False
    output: bool = False


TOPICS: dict[str, TopicSpec] = {t.name: t for t in [
    TopicSpec("telemetry", "TelemetryBatch", "gateway_id"),
    TopicSpec("heartbeats", "GatewayHeartbeat", "gateway_id"),
    TopicSpec("hazards", "HazardRecord", "hazard_id"),
    TopicSpec("incidents", "IncidentReport", "incident_id"),
    TopicSpec("enterprises", "Enterprise", "enterprise_id", compacted=True),
    TopicSpec("sensors", "Sensor", "sensor_id", compacted=True),
    TopicSpec("telemetry.clean", "EnrichedTelemetryBatch", "gateway_id", output=True),
    TopicSpec("incidents.clean", "EnrichedIncidentReport", "incident_id", output=True),
    TopicSpec("hazards.clean", "EnrichedHazardRecord", "hazard_id", output=True),
    TopicSpec("gateway.status", "GatewayStatus", "gateway_id", output=True),
    TopicSpec("alerts", "Alert", "subject_id", output=True),
    TopicSpec("deadletter", "DeadLetter", "", output=True),
]}

# `ebi publish --type` names -> logical topic
PUBLISH_TYPES = {
    "telemetry": "telemetry", "heartbeat": "heartbeats", "hazard": "hazards",
    "incident": "incidents", "enterprise": "enterprises", "sensor": "sensors",
}


def record_names() -> list[str]:
    return sorted(p.name[:-5] for p in resources.files("schemas").joinpath("avro").iterdir()
                  if p.name.endswith(".avsc"))


@cache
def schema_text(record: str) -> str:
    """The schema as stored in ``avro/<record>.avsc`` (what gets registered)."""
    try:
        return resources.files("schemas").joinpath("avro", f"{record}.avsc").read_text("utf-8")
    except FileNotFoundError:
        raise KeyError(f"no schema named {record!r}; known: {', '.join(record_names())}") from None


@cache
def parsed(record: str) -> Any:
    return fastavro.parse_schema(json.loads(schema_text(record)), named_schemas={})


def subject(full_topic: str) -> str:
    return f"{full_topic}-value"
