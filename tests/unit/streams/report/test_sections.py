from __future__ import annotations

import datetime as dt

import pytest

from streams.report.sections import (
    ALARM_SOURCE,
    Scope,
    ScopeError,
    load,
    parse_utc,
    region_level,
    region_prefix,
    sections,
)
from tests.unit.streams.report.fixtures import NOW, SINCE, UNTIL, CannedBackend, scope


@pytest.mark.parametrize(("code", "prefix"), [
    ("", ""), ("11", "11"), ("1101", "1101"), ("110101", "110101"),
    ("110000", "11"), ("110100", "1101"), ("1100", "11"), (" 130102 ", "130102"),
])
def test_region_prefix(code: str, prefix: str) -> None:
    assert region_prefix(code) == prefix


@pytest.mark.parametrize("code", ["1", "111", "11010a", "1101011", "11%", "11' OR 1=1", "00"])
def test_region_prefix_rejects(code: str) -> None:
    with pytest.raises(ScopeError, match="region"):
        region_prefix(code)


def test_region_level() -> None:
    assert [region_level(p) for p in ("", "11", "1101", "110101")] == [
        "all regions", "province", "city", "county"]


def test_scope_checks() -> None:
    with pytest.raises(ScopeError, match="empty"):
        Scope(UNTIL, SINCE)
    with pytest.raises(ScopeError, match="time zone"):
        Scope(SINCE.replace(tzinfo=None), UNTIL)
    with pytest.raises(ScopeError, match="normalised"):
        Scope(SINCE, UNTIL, "110000")
    assert scope().open_end == int(UNTIL.timestamp())       # until before now
    assert Scope(SINCE, NOW + dt.timedelta(hours=2), now=NOW).open_end == int(NOW.timestamp())


def test_every_section_uses_the_range() -> None:
    for s in sections(scope()):
        if s.key == "offline_now":   # the current state, whatever the range
            continue
        assert "toDateTime('2026-03-09 16:00:00', 'UTC')" in s.sql, s.key


def test_region_filter_applies_where_rows_have_a_region() -> None:
    everywhere = {s.key: s for s in sections(scope())}
    beijing = {s.key: s for s in sections(scope("11"))}
    for key, s in beijing.items():
        if s.regional:
            assert "region_code LIKE '11%'" in s.sql, key
        else:
            assert "LIKE" not in s.sql, key
        assert "LIKE" not in everywhere[key].sql, key
    assert [k for k, s in beijing.items() if not s.regional] == ["dead_letters"]
    blind = beijing["blind_spots"].sql
    assert blind.count("region_code LIKE '11%'") == 2     # closed and open blind spots


def test_sql_is_portable() -> None:
    """What 18.16 lacks: CTEs, DateTime64 literals, formatDateTime."""
    for s in sections(scope("1101")):
        upper = s.sql.upper()
        assert "WITH " not in upper and "DATETIME64" not in upper, s.key
        assert "FORMATDATETIME" not in upper, s.key


def test_alarm_sections_read_one_source() -> None:
    alarm_sql = [s.sql for s in sections(scope()) if s.key.startswith("alarm")]
    assert len(alarm_sql) == 2
    assert all(f"FROM {ALARM_SOURCE}\n" in q for q in alarm_sql)


def test_keys_and_titles_are_unique() -> None:
    found = sections(scope())
    assert len({s.key for s in found}) == len({s.title for s in found}) == len(found)
    # the titles the text report had before the briefing (scripts may look for them)
    assert {"Late incident reports by province and kind",
            "Late telemetry readings by enterprise (top 20)", "Anomalies by type",
            "Gateways offline now", "Dead letters by reason"} <= {s.title for s in found}


def test_load_turns_quoted_integers_into_numbers() -> None:
    backend = CannedBackend()
    section = next(s for s in sections(scope()) if s.key == "incidents")
    got = load(backend, section)   # type: ignore[arg-type]
    assert got.rows[0] == ("SERIOUS", "PRODUCTION_SAFETY", 1, 11, 0, 3)
    assert got.result().columns == got.columns


def test_parse_utc() -> None:
    assert parse_utc("2026-03-10 01:32:00.250") == dt.datetime(
        2026, 3, 10, 1, 32, 0, 250000, tzinfo=dt.UTC)
    assert parse_utc("2026-03-10 01:32:00") == dt.datetime(2026, 3, 10, 1, 32, tzinfo=dt.UTC)
