"""An AlarmEvent (schemas/avro/AlarmEvent.avsc) as an Alertmanager alert (API v2).

Labels identify the alarm and drive routing, grouping and inhibition in
deploy/alertmanager/alertmanager.yml: ``alertname`` (the alarm type), ``severity`` (lower
case), ``province`` (the first two digits of the GB/T 2260 region code), ``region_code``,
``enterprise_id``, ``gateway_id``, ``subject`` (``subject_type:subject_id``), ``alarm_id``,
and ``tag`` on canary data. Empty values are left out (Alertmanager treats an empty label as
an absent one). Nothing that changes while an alarm lasts (value, peak, count) is a label:
those are annotations, so an update never looks like a new alert.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

SEVERITIES = ("INFO", "WARNING", "CRITICAL")
TRANSITIONS = ("RAISED", "UPDATED", "CLEARED", "ACKNOWLEDGED")


class AlarmEventError(ValueError):
    """An AlarmEvent that cannot become an alert (a required field is missing or wrong)."""


def instant(value: object, field: str = "time") -> datetime:
    """A timestamp-millis field as an aware UTC datetime (fastavro gives datetimes; plain
    epoch milliseconds are accepted too)."""
    if isinstance(value, datetime):
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value / 1000, UTC)
    raise AlarmEventError(f"{field}: expected a timestamp, got {value!r}")


def rfc3339(value: object, field: str = "time") -> str:
    """``2026-11-28T17:15:17.123Z``."""
    return instant(value, field).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _text(event: Mapping[str, Any], field: str) -> str:
    value = event.get(field)
    return "" if value is None else str(value)


def _required(event: Mapping[str, Any], field: str) -> str:
    value = _text(event, field)
    if not value:
        raise AlarmEventError(f"AlarmEvent without {field} (alarm_id "
                              f"{_text(event, 'alarm_id') or '?'})")
    return value


def severity(event: Mapping[str, Any]) -> str:
    """The severity in upper case (INFO, WARNING or CRITICAL)."""
    value = _text(event, "severity").upper()
    if value not in SEVERITIES:
        raise AlarmEventError(f"alarm {_text(event, 'alarm_id') or '?'}: severity {value!r} is "
                              f"not one of {', '.join(SEVERITIES)}")
    return value


def transition(event: Mapping[str, Any]) -> str:
    value = _text(event, "transition").upper()
    if value not in TRANSITIONS:
        raise AlarmEventError(f"alarm {_text(event, 'alarm_id') or '?'}: transition {value!r} "
                              f"is not one of {', '.join(TRANSITIONS)}")
    return value


def province(region_code: str) -> str:
    """The province of a GB/T 2260 code ("320506" -> "32"); empty when unknown."""
    head = region_code[:2]
    return head if len(head) == 2 and head.isdigit() and head != "00" else ""


def alarm_labels(event: Mapping[str, Any]) -> dict[str, str]:
    region = _text(event, "region_code")
    labels = {
        "alertname": _required(event, "alarm_type"),
        "severity": severity(event).lower(),
        "province": province(region),
        "region_code": region,
        "enterprise_id": _text(event, "enterprise_id"),
        "gateway_id": _text(event, "gateway_id"),
        "subject": f"{_required(event, 'subject_type')}:{_required(event, 'subject_id')}",
        "alarm_id": _required(event, "alarm_id"),
        "tag": _text(event, "tag"),
    }
    return {name: value for name, value in labels.items() if value}


def _number(value: object) -> str:
    return f"{value:g}" if isinstance(value, int | float) and not isinstance(value, bool) else "-"


def alarm_annotations(event: Mapping[str, Any]) -> dict[str, str]:
    """Summary and description in Chinese (``summary``, ``description``) and English
    (``summary_en``, ``description_en``); who acknowledged it, once someone has."""
    zh, en = _text(event, "message_zh"), _text(event, "message_en")
    subject = f"{_text(event, 'subject_type')}:{_text(event, 'subject_id')}"
    kind = _text(event, "alarm_type")
    value, peak = _number(event.get("value")), _number(event.get("peak"))
    threshold = _number(event.get("threshold"))
    count = event.get("count")
    count_text = str(count) if isinstance(count, int) and not isinstance(count, bool) else "-"
    since = rfc3339(event["raised_at"], "raised_at") if event.get("raised_at") is not None else "-"
    region = _text(event, "region_code") or "-"
    enterprise = _text(event, "enterprise_id") or "-"
    notes = {
        "summary": zh or en or f"{kind} {subject}",
        "summary_en": en or zh or f"{kind} {subject}",
        "description": (f"{kind}（{subject}，企业 {enterprise}，行政区划 {region}）：当前值 "
                        f"{value}，峰值 {peak}，阈值 {threshold}，持续期间发生 {count_text} 次，"
                        f"自 {since} 起。"),
        "description_en": (f"{kind} on {subject} (enterprise {enterprise}, region {region}): "
                           f"value {value}, peak {peak}, threshold {threshold}, "
                           f"{count_text} occurrence(s) since {since}."),
    }
    by = _text(event, "acknowledged_by")
    if by:
        note = _text(event, "note")
        notes["acknowledged"] = f"{by}: {note}" if note else by
    return notes


def to_alert(event: Mapping[str, Any], ends_at: datetime, generator_url: str = "",
             labels: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The postable alert for ``POST /api/v2/alerts``: starts when the alarm was raised, ends
    at ``ends_at`` (a lease while active, the clear time once cleared). ``generator_url`` may
    hold ``{alarm_id}``. ``labels`` overrides the event's (to resolve an older label set)."""
    starts = instant(event.get("raised_at"), "raised_at")
    ends = max(instant(ends_at, "ends_at"), starts)
    alert: dict[str, Any] = {
        "labels": dict(labels) if labels is not None else alarm_labels(event),
        "annotations": alarm_annotations(event),
        "startsAt": rfc3339(starts),
        "endsAt": rfc3339(ends),
    }
    if generator_url:
        alert["generatorURL"] = generator_url.replace(
            "{alarm_id}", urllib.parse.quote(_text(event, "alarm_id"), safe=""))
    return alert
