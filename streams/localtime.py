"""Times as people read them, and the local calendar of the reporting clocks.

Reporting clocks (the daily 09:00 zero report, working days) run in the policy's time zone
(``[time_zone]``, China Standard Time by default), not UTC. A :class:`Zone` is a fixed
offset with a name: China has no daylight saving time, so no zone database is needed.
Alert messages give times with :func:`local_time` ("2026-12-01 09:00 CST (UTC+8)") and
spans with :func:`span` ("1 h 30 min"), never raw epoch milliseconds.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

DAY_MS = 86_400_000
_OFFSET = re.compile(r"^(?:UTC)?([+-])(\d{1,2})(?::?(\d{2}))?$")


@dataclass(frozen=True)
class Zone:
    """A fixed UTC offset (minutes east of UTC) and the name shown with local times."""

    name: str = "CST"
    offset_minutes: int = 480

    @property
    def offset_ms(self) -> int:
        return self.offset_minutes * 60_000

    @property
    def tz(self) -> timezone:
        return timezone(timedelta(minutes=self.offset_minutes), self.name)

    def label(self) -> str:
        """``UTC+8``, ``UTC+5:30``, ``UTC-3``."""
        sign = "-" if self.offset_minutes < 0 else "+"
        hours, minutes = divmod(abs(self.offset_minutes), 60)
        return f"UTC{sign}{hours}" + (f":{minutes:02d}" if minutes else "")

    # -- the local calendar ---------------------------------------------------------------
    def day_start(self, ms: int, day_ms: int = DAY_MS) -> int:
        """Epoch ms of the start of the local day (or of a period of ``day_ms``) holding
        ``ms``: local midnight for the default day."""
        return (ms + self.offset_ms) // day_ms * day_ms - self.offset_ms

    def date_of(self, ms: int) -> date:
        return datetime.fromtimestamp(ms / 1000, self.tz).date()

    def midnight(self, day: date) -> int:
        """Epoch ms of local 00:00 of ``day``."""
        return int(datetime(day.year, day.month, day.day, tzinfo=self.tz).timestamp() * 1000)


CST = Zone()


def parse_zone(name: str, offset: str) -> Zone:
    """A zone from its name and an offset like ``+08:00``, ``+0800``, ``UTC+8``; raises
    ValueError naming the offset when it is not one (or beyond +-14 h)."""
    match = _OFFSET.match(str(offset).strip())
    if not match:
        raise ValueError(f"{offset!r} is not a UTC offset like +08:00")
    sign, hours, minutes = match.group(1), int(match.group(2)), int(match.group(3) or 0)
    total = hours * 60 + minutes
    if minutes >= 60 or total > 14 * 60:
        raise ValueError(f"{offset!r} is not a UTC offset between -14:00 and +14:00")
    if not str(name).strip():
        raise ValueError("a time zone needs a name (e.g. CST)")
    return Zone(str(name).strip(), -total if sign == "-" else total)


def local_time(ms: int | None, zone: Zone = CST, seconds: bool = False) -> str:
    """``2026-12-01 09:00 CST (UTC+8)``; "-" for None."""
    if ms is None:
        return "-"
    moment = datetime.fromtimestamp(ms / 1000, zone.tz)
    text = moment.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")
    return f"{text} {zone.name} ({zone.label()})"


def span(ms: int | float) -> str:
    """A duration for people: ``45 s``, ``12 min``, ``3 h 5 min``, ``2 d 4 h``."""
    ms = abs(int(ms))
    if ms < 60_000:
        return f"{ms // 1000} s"
    minutes = ms // 60_000
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h" + (f" {minutes} min" if minutes else "")
    days, hours = divmod(hours, 24)
    return f"{days} d" + (f" {hours} h" if hours else "")


def add_working_days(start_ms: int, days: int, zone: Zone = CST,
                     holidays: frozenset[date] = frozenset(),
                     workdays: frozenset[date] = frozenset()) -> int:
    """The end (local 24:00) of the ``days``-th working day after the local day holding
    ``start_ms``. Working days are Monday to Friday, except ``holidays``, plus ``workdays``
    (weekend days made working days, 调休)."""
    day = zone.date_of(start_ms)
    left = days
    while left > 0:
        day += timedelta(days=1)
        if day in workdays or (day.weekday() < 5 and day not in holidays):
            left -= 1
    return zone.midnight(day + timedelta(days=1))
