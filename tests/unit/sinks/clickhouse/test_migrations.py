from __future__ import annotations

from sinks.clickhouse.migrations import migrate
from sinks.clickhouse.schema import table_specs
from tests.unit.sinks.fakes import MODERN, OLD, FakeBackend


def test_first_run_creates_everything_and_records_it() -> None:
    backend = FakeBackend(OLD)
    report = migrate(backend)
    versions = [s.version for s in report.applied]
    assert versions[:3] == ["0001", "0002", "0003"]
    assert "view:readings" in versions and "view:enterprise_days" in versions
    sql = "\n".join(backend.commands)
    assert "CREATE TABLE IF NOT EXISTS ebi.schema_migrations" in sql
    assert "CREATE MATERIALIZED VIEW IF NOT EXISTS ebi.readings_1m_mv" in sql
    assert "DateTime64" not in sql  # 18.16 has no DateTime64
    assert set(backend.migrations) == set(versions)


def test_second_run_changes_nothing() -> None:
    backend = FakeBackend(MODERN)
    migrate(backend)
    backend.columns = {t.name: {n for n, _ in t.columns(MODERN)} for t in table_specs().values()}
    before = len(backend.commands)
    report = migrate(backend)
    assert report.applied == []
    assert backend.commands[before:] == [backend.commands[0]]  # only the IF NOT EXISTS table
    assert "up to date" in report.summary()


def test_a_new_avro_field_adds_a_column_and_rebuilds_views() -> None:
    backend = FakeBackend(MODERN)
    migrate(backend)
    backend.columns = {t.name: {n for n, _ in t.columns(MODERN)} for t in table_specs().values()}
    backend.columns["alerts_raw"].discard("tag")  # as if `tag` were new in Alert.avsc
    backend.commands.clear()
    report = migrate(backend)
    assert [s.version for s in report.applied] == ["column:alerts_raw.tag"]
    assert backend.commands[-1] == (
        "ALTER TABLE ebi.alerts_raw ADD COLUMN tag LowCardinality(Nullable(String)) "
        "DEFAULT NULL")


def test_views_are_recreated_when_their_sql_changes() -> None:
    backend = FakeBackend(MODERN)
    migrate(backend)
    backend.migrations["view:alerts"] = "stale"
    backend.columns = {t.name: {n for n, _ in t.columns(MODERN)} for t in table_specs().values()}
    report = migrate(backend)
    assert [s.version for s in report.applied] == ["view:alerts"]
