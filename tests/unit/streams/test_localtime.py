"""Local times for people, and the local calendar of the reporting clocks."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from streams.localtime import CST, Zone, add_working_days, local_time, parse_zone, span

UTC8 = timezone(timedelta(hours=8))


def at(*args: int) -> int:
    return int(datetime(*args, tzinfo=UTC8).timestamp() * 1000)  # type: ignore[misc]


def test_local_time_names_the_zone() -> None:
    assert local_time(at(2026, 12, 1, 9, 0)) == "2026-12-01 09:00 CST (UTC+8)"
    assert local_time(at(2026, 12, 1, 9, 0, 5), seconds=True) == "2026-12-01 09:00:05 CST (UTC+8)"
    assert local_time(0, Zone("IST", 330)) == "1970-01-01 05:30 IST (UTC+5:30)"
    assert local_time(None) == "-"


@pytest.mark.parametrize(("ms", "text"), [(45_000, "45 s"), (12 * 60_000, "12 min"),
                                          (3 * 3_600_000 + 5 * 60_000, "3 h 5 min"),
                                          (52 * 3_600_000, "2 d 4 h"), (-60_000, "1 min")])
def test_span(ms: int, text: str) -> None:
    assert span(ms) == text


def test_zones_parse_and_reject() -> None:
    assert parse_zone("CST", "+08:00") == CST
    assert parse_zone("X", "UTC-3") == Zone("X", -180)
    assert parse_zone("X", "+0530").offset_minutes == 330
    for bad in ("8", "+08:60", "+15:00", "Asia/Shanghai"):
        with pytest.raises(ValueError):
            parse_zone("X", bad)


def test_local_days() -> None:
    assert CST.day_start(at(2026, 12, 1, 23, 59)) == at(2026, 12, 1)
    assert CST.day_start(at(2026, 12, 2, 0, 0)) == at(2026, 12, 2)
    assert CST.day_start(at(2026, 12, 1, 0, 1, 30), 60_000) == at(2026, 12, 1, 0, 1)


def test_working_days_skip_weekends_and_holidays() -> None:
    friday = at(2026, 12, 4, 15)
    assert add_working_days(friday, 2) == at(2026, 12, 9)          # Mon, Tue: end of Tuesday
    assert add_working_days(friday, 0) == at(2026, 12, 5)          # the end of the same day
    assert add_working_days(friday, 2, holidays=frozenset({date(2026, 12, 7)})) == \
        at(2026, 12, 10)
    assert add_working_days(friday, 1, workdays=frozenset({date(2026, 12, 5)})) == \
        at(2026, 12, 6)
