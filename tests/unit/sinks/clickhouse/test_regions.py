"""Scope databases: which tables a scope has, the filtered and masked selects that fill it,
and the build against a fake server."""

from __future__ import annotations

import pytest

from schemas.classification import OPEN, TRADE_SECRET
from sinks.clickhouse import QueryResult
from sinks.clickhouse.regions import (
    Scope,
    ScopeError,
    build,
    masked_views,
    plan,
    rollup_select,
    scope_views,
    sources,
)
from tests.unit.sinks.fakes import MODERN, OLD, FakeBackend


def by_name(scope: Scope) -> dict[str, str]:
    return {s.name: s.select("ebi", scope) for s in sources(scope, OLD)}


def test_a_region_has_the_regional_tables_only() -> None:
    selects = by_name(Scope("r32", "32"))
    assert set(selects) == {"readings_raw", "heartbeats_raw", "incident_reports_raw",
                            "hazards_raw", "alerts_raw", "gateway_status_raw",
                            "alarm_events_raw", "sensor_registrations_raw"}
    assert all(s.endswith(" WHERE region_code LIKE '32%'") for s in selects.values())
    ops = by_name(Scope("ops", dead_letters="full", bookkeeping=True))
    assert {"dead_letters_raw", "ledger", "consumed"} <= set(ops)
    assert not any("WHERE" in s for s in ops.values())


def test_selects_mask_what_the_scope_is_not_cleared_for() -> None:
    plain = by_name(Scope("r32", "32"))
    assert "multiIf(metric IN ('METHANE', 'FLAMMABLE_GAS', 'TOXIC_GAS', 'CARBON_MONOXIDE', " \
           "'DISPLACEMENT'), value, CAST(NULL AS Nullable(Float64))) AS value" in \
           plain["readings_raw"]
    assert "CAST(NULL AS Nullable(String)) AS description" in plain["hazards_raw"]
    assert "multiIf(publication IN ('AUTHORISED'), direct_economic_loss_cny, CAST(NULL AS " \
           "Nullable(Float64))) AS direct_economic_loss_cny" in plain["incident_reports_raw"]
    cleared = by_name(Scope("r32_ts", "32", OPEN | {TRADE_SECRET}))
    assert " value," in cleared["readings_raw"] and "multiIf" not in cleared["readings_raw"]
    assert "CAST(NULL AS Nullable(String)) AS description" in \
        cleared["incident_reports_raw"]   # personal: not cleared


def test_dead_letter_bytes_only_for_operators() -> None:
    audit = by_name(Scope("audit", dead_letters="masked", bookkeeping=True))["dead_letters_raw"]
    assert "CAST(NULL AS Nullable(String)) AS value" in audit
    assert "CAST(NULL AS Nullable(String)) AS key" in audit
    cleared = Scope("audit_ts", allowed=OPEN | {TRADE_SECRET}, dead_letters="masked")
    assert "AS value" in by_name(cleared)["dead_letters_raw"]     # bytes: still masked
    ops = by_name(Scope("ops", dead_letters="full"))["dead_letters_raw"]
    assert "AS value" not in ops and "AS error_message" not in ops


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"name": "R32"}, "lower-case"),
    ({"name": "r3", "region": "3"}, "GB/T 2260"),
    ({"name": "r32", "region": "32", "dead_letters": "full"}, "no region"),
    ({"name": "x", "allowed": frozenset({"secret"})}, "unknown classification"),
])
def test_bad_scopes_are_refused(kwargs: dict, message: str) -> None:
    with pytest.raises(ScopeError, match=message):
        Scope(**kwargs)


def test_rollups_read_the_scopes_copy_and_views_their_own_database() -> None:
    scope = Scope("r32", "32")
    select = rollup_select("ebi", "reading_minutes", f"ebi.{scope.mv('readings_raw')}")
    assert "FROM ebi.scope_r32__readings_raw\n" in select and "ebi.readings_raw" not in select
    views = scope_views("ebi", "ebi_r32", [s.name for s in sources(scope, OLD)] +
                        ["reading_minutes", "incidents_1d"], OLD)
    assert {"readings", "sensor_minutes", "enterprise_days", "incident_days"} <= set(views)
    assert "dead_letters" not in views and "ledger_v" not in views
    assert all("ebi_r32." in sql and "ebi." not in sql.replace("ebi_r32.", "")
               for sql in views.values())
    p = plan("ebi", scope, OLD)
    assert p.checksum() == plan("ebi", scope, OLD).checksum()
    assert p.checksum() != plan("ebi", Scope("r32", "3201"), OLD).checksum()


class ScopeServer(FakeBackend):
    """Answers a select's LIMIT 0 with its column names, String typed."""

    def __init__(self) -> None:
        super().__init__(OLD)
        self.config = self.config.__class__("server", "ebi")
        self.built: list[tuple[str]] = []

    def query(self, sql: str) -> QueryResult:
        if sql.endswith(" LIMIT 0"):
            head = sql.split(" FROM ", 1)[0]
            names = [part.rsplit(" AS ", 1)[-1].strip() for part in head[7:].split(", ")]
            return QueryResult(names, ["String"] * len(names), [])
        if "FROM ebi_r32.scope" in sql:
            return QueryResult(["checksum"], ["String"], self.built)
        return super().query(sql)


def test_build_creates_copies_views_and_backfills_once() -> None:
    server = ScopeServer()
    scope = Scope("r32", "32")
    assert build(server, scope) is True
    creates = [c for c in server.commands if c.startswith("CREATE MATERIALIZED VIEW")]
    assert any(c.startswith("CREATE MATERIALIZED VIEW ebi.scope_r32__readings_raw TO "
                            "ebi_r32.readings_raw AS SELECT") for c in creates)
    assert any("TO ebi_r32.reading_minutes" in c and "FROM ebi.scope_r32__readings_raw" in c
               for c in creates)
    order = [c.split(" ")[0] for c in server.commands]
    assert order.index("INSERT") > max(i for i, c in enumerate(server.commands)
                                       if c.startswith("CREATE MATERIALIZED"))
    assert any(c.startswith("CREATE VIEW ebi_r32.readings AS") for c in server.commands)
    (row,) = [c for t, c in server.inserts if t == "ebi_r32.scope"]
    server.built = [(row["checksum"][0],)]
    server.commands.clear()
    assert build(server, scope) is False and server.commands == []


def test_masked_views_for_servers_with_access_control() -> None:
    views = masked_views("ebi", Scope("r32", "32"), MODERN)
    assert views[0] == "CREATE DATABASE IF NOT EXISTS ebi_r32"
    raw = next(v for v in views if v.startswith("CREATE OR REPLACE VIEW ebi_r32.readings_raw "))
    assert "DEFINER = CURRENT_USER SQL SECURITY DEFINER" in raw
    assert raw.endswith("FROM ebi.readings_raw FINAL WHERE region_code LIKE '32%'")
    minute = next(v for v in views if " ebi_r32.reading_minutes " in v)   # of masked rows
    assert "FROM ebi_r32.readings_raw\n" in minute and "maxState(value)" in minute
    days = next(v for v in views if " ebi_r32.incidents_1d " in v)
    assert "FROM ebi.incidents_1d FINAL WHERE region_code LIKE '32%'" in days
    sensor = next(v for v in views if " ebi_r32.sensor_minutes " in v)
    assert "ebi_r32.reading_minutes" in sensor
