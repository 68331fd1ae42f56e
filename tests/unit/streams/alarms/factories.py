"""AlarmEvent dicts for the unit tests (as the codec decodes them: datetimes, enum names)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

T0 = datetime(2026, 11, 28, 8, 0, tzinfo=UTC)


def alarm_event(alarm_id: str = "A1", transition: str = "RAISED", *, at: float = 0.0,
                **fields: Any) -> dict[str, Any]:
    """An event of alarm ``alarm_id``; ``at`` is seconds after T0 (its changed_at)."""
    event: dict[str, Any] = {
        "event_id": f"{alarm_id}:{transition}:{at:g}", "alarm_id": alarm_id,
        "alarm_type": "ALARM_L2", "severity": "CRITICAL", "transition": transition,
        "subject_type": "sensor", "subject_id": "S-7", "enterprise_id": "E-1",
        "gateway_id": "G-3", "region_code": "320506", "raised_at": T0,
        "changed_at": T0 + timedelta(seconds=at), "cleared_at": None, "value": 1.62,
        "peak": 1.7, "threshold": 1.5, "count": 1, "message_zh": "甲烷浓度 1.62% 超过二级报警值",
        "message_en": "methane 1.62 % above the second alarm level", "acknowledged_by": None,
        "note": None, "tag": None,
    }
    if transition == "CLEARED":
        event["cleared_at"] = event["changed_at"]
    event.update(fields)
    return event
