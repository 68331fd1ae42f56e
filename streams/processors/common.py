"""Shared pieces of the processors: outputs, alerts, replay checks and canary tags.

Alert ids are deterministic (sha1 of type, subject and the event that caused the alert), so a
message processed twice after a crash raises the same alert id and the sink keeps one.
Canary data is recognised by its ids: ``canary-<run>-...``; its outputs carry the tag
``canary-<run>``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from schemas.records import CREATE_TIME, PARTITION_SHIFT, Record, Source
from streams.records.rules import Violation

LEVELS = ("ORDINARY", "RELATIVELY_SERIOUS", "SERIOUS", "ESPECIALLY_SERIOUS")
LEVEL_RANK = {name: rank for rank, name in enumerate(LEVELS)}
CANARY_PREFIX = "canary-"


def arrival_ms(source: Source, now_ms: int) -> int:
    """When the message reached Kafka; the worker's clock if the broker gave no timestamp.

    Arrival times come from the message, not from when the worker got round to it, so a
    backlog does not make readings late and a replay after a crash decides the same way."""
    return source.timestamp_ms if source.timestamp_ms > 0 else now_ms


def receipt(source: Source, now_ms: int) -> tuple[int, str]:
    """When the platform received the message, and whose clock says so.

    ``BROKER``: the broker's timestamp of a LogAppendTime topic (the input topics are
    declared so), which the sender cannot set. A CreateTime timestamp is the sender's claim,
    so the worker's clock stands in (``WORKER``): never earlier than the truth, but a
    backlog makes messages late. A message without a timestamp gets the worker's clock; a
    timestamp of unknown type (tools, tests) is taken as the broker's. Deterministic for a
    message read again on a LogAppendTime topic."""
    if source.timestamp_ms > 0 and source.timestamp_type != CREATE_TIME:
        return source.timestamp_ms, "BROKER"
    return now_ms, "WORKER"


def receipt_ms(source: Source, now_ms: int) -> int:
    """:func:`receipt`'s time: what lateness is measured at (with the sender's own time
    when that is later)."""
    return receipt(source, now_ms)[0]


def already_applied(state: Mapping[str, Any] | None, field: str, source: Source) -> bool:
    """Whether ``state`` already reflects this message: ``state[field]`` holds the packed
    coordinates of the last message applied, and this one is on the same partition and not
    newer. Its outputs were acknowledged before that state was written, so it is skipped."""
    if state is None:
        return False
    applied = state.get(field)
    return applied is not None and applied // PARTITION_SHIFT == source.partition and \
        applied >= source.packed


def canary_tag(*ids: str) -> str | None:
    """``canary-<run>`` for canary ids (``canary-<run>-...``), else None."""
    for ident in ids:
        if ident.startswith(CANARY_PREFIX):
            run = ident[len(CANARY_PREFIX):].split("-", 1)[0]
            return CANARY_PREFIX + run
    return None


@dataclass(slots=True)
class Outputs:
    """What one input produced: at most one ledger record and any number of extras."""

    clean: Record | None = None           # enriched record for the clean topic
    dead_letters: list[Record] = field(default_factory=list)
    alerts: list[Record] = field(default_factory=list)
    statuses: list[Record] = field(default_factory=list)   # GatewayStatus
    alarms: list[Record] = field(default_factory=list)     # AlarmEvent (the alarm book's)
    registrations: list[Record] = field(default_factory=list)   # SensorRegistration
    replay: bool = False      # already applied before a crash or rebalance: nothing to send

    def extend(self, other: Outputs) -> None:
        self.dead_letters.extend(other.dead_letters)
        self.alerts.extend(other.alerts)
        self.statuses.extend(other.statuses)
        self.alarms.extend(other.alarms)
        self.registrations.extend(other.registrations)


def alert_id(alert_type: str, subject_id: str, event_ms: int, extra: str = "") -> str:
    text = f"{alert_type}|{subject_id}|{event_ms}|{extra}"
    return hashlib.sha1(text.encode()).hexdigest()[:32]


SEVERITY = {
    "ALARM_L1": "WARNING", "ALARM_L2": "CRITICAL", "SPIKE": "WARNING", "FLATLINE": "WARNING",
    "OUTLIER": "INFO", "LATE_TELEMETRY": "INFO", "LATE_REPORT": "WARNING",
    "REPORT_DUE_SOON": "INFO", "REPORT_OVERDUE": "WARNING", "SUSPECTED_CONCEALMENT": "CRITICAL",
    "FIGURE_JUMP": "WARNING", "FIGURE_DROP": "WARNING", "CASUALTIES_FELL": "WARNING",
    "GATEWAY_OFFLINE": "WARNING", "GATEWAY_ONLINE": "INFO", "HAZARD_OVERDUE": "WARNING",
    # incident reporting rules (streams/processors/incidents)
    "RECEIVED_LATE": "WARNING", "REPEATED_INITIAL": "WARNING", "REPORT_AFTER_FINAL": "WARNING",
    "LATE_CASUALTY_CHANGE": "WARNING", "ESCALATION_REQUIRED": "WARNING",
    "ESCALATION_OVERDUE": "CRITICAL", "DAILY_REPORT_OVERDUE": "WARNING",
    "HAZARD_TRANSITION_INVALID": "WARNING", "GATEWAY_NEVER_CONNECTED": "WARNING",
    "SENSOR_SILENT": "WARNING", "SENSOR_RESUMED": "INFO",
    "UNAUTHORISED_PUBLICATION": "CRITICAL",
}


def make_alert(alert_type: str, subject_type: str, subject_id: str, event_ms: int, now_ms: int,
               message: str, *, enterprise_id: str = "", region_code: str = "",
               value: float | None = None, threshold: float | None = None,
               id_extra: str = "", tag: str | None = None) -> Record:
    return {
        "alert_id": alert_id(alert_type, subject_id, event_ms, id_extra),
        "alert_type": alert_type, "severity": SEVERITY.get(alert_type, "WARNING"),
        "subject_type": subject_type, "subject_id": subject_id,
        "enterprise_id": enterprise_id, "region_code": region_code,
        "raised_at": now_ms, "event_time": event_ms, "value": value, "threshold": threshold,
        "message": message,
        "tag": tag if tag is not None else canary_tag(subject_id, enterprise_id),
    }


def rejection(problems: Sequence[Violation]) -> tuple[str, str]:
    """A dead letter's reason code (the first violation's) and a message naming every field."""
    return problems[0].code, "; ".join(f"{p.field}: {p.message}" for p in problems)
