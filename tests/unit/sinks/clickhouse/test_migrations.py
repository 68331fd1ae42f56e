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


def test_step_0005_builds_the_reading_rollup_and_retires_the_first_ones() -> None:
    backend = FakeBackend(OLD)
    report = migrate(backend)
    [step] = [s for s in report.applied if s.version == "0005"]
    sql = "\n".join(step.statements)
    assert "ENGINE = AggregatingMergeTree" in sql and "SimpleAggregateFunction" not in sql
    assert "INSERT INTO ebi.reading_minutes SELECT" in sql and "WHERE isNull(tag)" in sql
    assert step.statements[-4:] == tuple(f"DROP TABLE IF EXISTS ebi.{t}" for t in (
        "readings_1m_mv", "readings_1d_mv", "readings_1m", "readings_1d"))
    views = [c for c in backend.commands if c.startswith("CREATE VIEW")]
    assert not [v for v in views if "readings_1m" in v or "readings_1d" in v]
    assert any("days_overdue" in v for v in views)
    assert any(v.startswith("CREATE VIEW ebi.spot_checks") for v in views)
