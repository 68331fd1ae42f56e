"""Realistic clean-topic records (per the .avsc files) for the sink's tests."""

from __future__ import annotations

from typing import Any

from schemas.columns import columnar

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z in epoch millis
# the signature fields of a record the worker did not verify (streams/signing)
UNSIGNED: dict[str, Any] = {"key_id": None, "signature": None, "signed_digest": None}
METRICS = (("METHANE", "PERCENT_VOL", 0.4), ("FLAMMABLE_GAS", "PERCENT_LEL", 8.0),
           ("CARBON_MONOXIDE", "PPM", 6.0), ("TEMPERATURE", "CELSIUS", 21.0))


def source(topic: str, partition: int, offset: int) -> dict[str, Any]:
    return {"topic": topic, "partition": partition, "offset": offset, "schema_id": 1}


def telemetry(offset: int, *, topic: str = "telemetry", partition: int = 0,
              readings: int = 3, enterprise: int = 1, gateway: int = 1, t0: int = T0,
              sensors: int = 3, duplicates: int = 0, rejected: int = 0,
              late_every: int = 0, region: str = "110101") -> dict[str, Any]:
    """An EnrichedTelemetryBatch (columnar) for input ``topic``/``partition``/``offset``."""
    items = []
    for i in range(readings):
        metric, unit, base = METRICS[i % sensors % len(METRICS)]
        alarm = 1 if metric == "METHANE" and i % 7 == 6 else 0
        items.append({
            "reading_id": f"rd-{partition}-{offset}-{i}",
            "sensor_id": f"s-{enterprise:04d}-{i % sensors:02d}", "metric": metric,
            "value": base + (1.2 if alarm else 0.01 * i), "unit": unit, "quality": "GOOD",
            "event_time": t0 + offset * 1000 + i, "arrival_lag_ms": 250,
            "late": bool(late_every and i % late_every == 0), "alarm_level": alarm,
            "anomalies": ["ALARM_L1"] if alarm else [],
        })
    return {
        "source": source(topic, partition, offset), "gateway_id": f"gw-{gateway:04d}",
        "enterprise_id": f"ent-{enterprise:04d}", "region_code": region,
        "sent_at": t0 + offset * 1000 + readings, "received_at": t0 + offset * 1000 + 500,
        "sequence": offset, "readings_in": readings + duplicates + rejected,
        "duplicates": duplicates, "rejected": rejected,
        **columnar(items), "tag": None, **UNSIGNED,
    }


def incident(offset: int, *, topic: str = "incidents", partition: int = 0,
             incident_id: str = "inc-1", stage: str = "INITIAL", deaths: int = 1,
             declared: str = "ORDINARY", implied: str = "ORDINARY", late: bool = False,
             duplicate: bool = False, flags: list[str] | None = None,
             region: str = "110102", t0: int = T0) -> dict[str, Any]:
    return {
        "source": source(topic, partition, offset), "incident_id": incident_id,
        "report_id": f"{incident_id}-r{offset}", "stage": stage,
        "kind": "PRODUCTION_SAFETY", "industry": "hazardous chemicals",
        "disaster_category": None, "occurred_at": t0, "reported_at": t0 + 3_000_000 + offset,
        "reporting_unit": "county bureau 110102", "reporting_level": "COUNTY",
        "region_code": region, "declared_level": declared, "deaths": deaths, "missing": 0,
        "serious_injuries": 2, "direct_economic_loss_cny": 1.5e6, "affected_population": 0,
        "description": "tank fire", "publication": "INTERNAL",
        "received_at": t0 + 3_000_500 + offset, "duplicate": duplicate,
        "implied_level": implied, "deadline_at": t0 + 3_600_000, "late": late,
        "late_by_ms": 600_000 if late else 0, "flags": flags or [], "tag": None,
        "relocated_or_assisted": 0, "houses_collapsed_rooms": 0,
        "houses_collapsed_households": 0, "drought_assisted_population": 0,
        "farming_population": 0, "declared_response": None, "stable": False,
        "implied_response": None, "receipt_at": t0 + 3_000_400 + offset,
        "receipt_clock": "BROKER",
        **UNSIGNED, "signed_value": None,
    }


def hazard(offset: int, *, topic: str = "hazards", partition: int = 0,
           hazard_id: str = "hz-1", version: int = 1, status: str = "FOUND",
           deadline: int | None = T0 + 86_400_000, duplicate: bool = False,
           t0: int = T0) -> dict[str, Any]:
    return {
        "source": source(topic, partition, offset), "hazard_id": hazard_id,
        "version": version, "enterprise_id": "ent-0001", "region_code": "110101",
        "category": "electrical", "level": "MAJOR", "status": status, "found_at": t0,
        "rectification_deadline": deadline, "updated_at": t0 + version * 1000,
        "description": "exposed wiring", "received_at": t0 + version * 1000 + 50,
        "duplicate": duplicate, "overdue": False, "flags": [], **UNSIGNED,
        "signed_value": None,
    }


def alert(n: int, t0: int = T0) -> dict[str, Any]:
    return {
        "alert_id": f"al-{n}", "alert_type": "ALARM_L1", "severity": "WARNING",
        "subject_type": "sensor", "subject_id": "s-0001-00", "enterprise_id": "ent-0001",
        "region_code": "110101", "raised_at": t0 + n, "event_time": t0 + n, "value": 1.6,
        "threshold": 1.0, "message": "methane over first alarm limit", "tag": None,
    }


def gateway_status(n: int, status: str = "OFFLINE", offline_seconds: int = 0,
                   t0: int = T0) -> dict[str, Any]:
    return {
        "gateway_id": "gw-0001", "enterprise_id": "ent-0001", "region_code": "110101",
        "status": status, "changed_at": t0 + n * 60_000, "last_seen_at": t0 + n * 60_000 - 1,
        "offline_seconds": offline_seconds, "tag": None,
    }


def dead_letter(offset: int, *, topic: str = "telemetry", partition: int = 0,
                record_index: int | None = None, code: str = "TRUNCATED_AVRO",
                stage: str = "decode", t0: int = T0) -> dict[str, Any]:
    return {
        "source": {"topic": topic, "partition": partition, "offset": offset,
                   "schema_id": None},
        "key": b"gw-0001", "value": b"\x00\x00\x00\x00\x01\x02", "error_code": code,
        "error_message": f"{code}: test", "stage": stage, "record_index": record_index,
        "record_id": None if record_index is None else f"rd-{offset}-{record_index}",
        "failed_at": t0 + offset, "tag": None, "key_id": None, "signature": None,
    }
