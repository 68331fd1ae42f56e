"""Times in alert messages as people read them: China Standard Time with the zone named.

Reporting clocks and the people reading the alerts are in China Standard Time (UTC+8, no
daylight saving); the records keep UTC epoch milliseconds.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

CST = timezone(timedelta(hours=8), "CST")


def local_time(ms: int) -> str:
    """``2026-03-01 09:30 CST (UTC+8)`` for epoch milliseconds."""
    when = datetime.fromtimestamp(ms / 1000, UTC).astimezone(CST)
    return when.strftime("%Y-%m-%d %H:%M CST (UTC+8)")


def span(ms: int) -> str:
    """A duration as ``3 d 4 h``, ``2 h 5 min`` or ``45 s``."""
    seconds = max(0, ms // 1000)
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    if minutes:
        return f"{minutes} min"
    return f"{secs} s"
